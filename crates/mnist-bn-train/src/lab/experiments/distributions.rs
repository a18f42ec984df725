//! `distributions`: how the input of a sigmoid drifts during training, with and without batch
//! norm (Ioffe & Szegedy 2015, Figure 1).

use mnist_bn_model::{Activation, MlpConfig, Norm};
use plotters::chart::SeriesLabelPosition;
use serde::Serialize;

use super::common::{
    Analysis, accuracy_curve, capitalize, line, normal, pair, percentile_series, probe_range, sgd,
};
use super::seeds::{Diverged, Spread, band, curve_spread, in_seeds, score, transpose};
use crate::lab::run::{LabData, Outcome, Probe, Run};
use crate::plot::figure::{BATCH_NORM, Figure, PLAIN, Panel, XAxis};

/// Learning rate of `distributions`: high enough for the plain sigmoid network to leave its
/// plateau within the default steps.
const DISTRIBUTIONS_LR: f64 = 0.5;

/// What `distributions` found: how the probed sigmoid input moved in each network.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct DistributionsSummary {
    /// The early measurement: the first at or after a tenth of the steps. Not in `lab.json`
    /// (the table's header names it).
    #[serde(skip)]
    pub early: usize,
    /// The two networks, batch norm first.
    pub networks: Vec<DistributionsRow>,
}

/// One network of `distributions`. Percentiles are of the probed sigmoid input over the test
/// images; "start" and "end" are its first and last measurements.
///
/// The fields `lab.json` holds are in alphabetical order: this summary used to be a
/// `serde_json` map, which sorts its keys, and `lab.json` keeps that order.
#[derive(Debug, Clone, Serialize)]
pub struct DistributionsRow {
    /// Test accuracy at the early measurement ([`DistributionsSummary::early`]).
    pub accuracy_at_tenth: f64,
    /// The median at the end.
    pub median_end: f64,
    /// The median at the start.
    pub median_start: f64,
    /// The median's highest value minus its lowest, over every measurement.
    pub median_swing: f64,
    /// The run's name.
    pub network: String,
    /// The 85th minus the 15th percentile at the end.
    pub spread_end: f64,
    /// The 85th minus the 15th percentile at the start.
    pub spread_start: f64,
    /// Test accuracy at the end.
    pub test_accuracy: f64,
    /// Whether the network has batch norm (not in `lab.json`: its name says so).
    #[serde(skip)]
    pub norm: Norm,
    /// The step at which the network diverged, if it did (not in `lab.json`: the run has it).
    #[serde(skip)]
    pub diverged_at: Option<usize>,
}

/// The sigmoid network with and without batch norm, probed as it trains.
pub(super) fn runs(steps: usize, seed: u64) -> Vec<Run> {
    let config = MlpConfig::new(Norm::Batch)
        .with_hidden(vec![100; 3])
        .with_activation(Activation::Sigmoid)
        .with_weight_init(normal(0.05));
    pair("sigmoid 3×100", config, |name, config| Run {
        measure_every: (steps / 200).max(50),
        probe: Some(Probe::last_layer(&config)),
        ..Run::new(name, config, sgd(DISTRIBUTIONS_LR, 60, seed), steps)
    })
    .into()
}

/// The section and figure of the outcomes of [`runs`], one list per seed.
pub(super) fn report(
    per_seed: Vec<Vec<Outcome>>,
    data: &LabData,
) -> (Analysis<DistributionsSummary>, Figure) {
    let first = per_seed.iter().flatten().next();
    let steps = first.map_or(0, |o| o.steps);
    let every = first.and_then(|o| o.curve.get(1)).map_or(0, |p| p.step);
    let seeds: Vec<DistributionsSummary> = per_seed.iter().map(|o| summarize(o, steps)).collect();
    let (table, findings) = (table(&seeds), findings(&seeds));
    let figure = figure(&per_seed, steps);
    let analysis = Analysis {
        question: "How does the input of a sigmoid move during training, with and without batch norm? \
             (Ioffe & Szegedy 2015, Figure 1)",
        setup: format!(
            "784-100-100-100-10 with sigmoids, batch 60, plain SGD with lr {DISTRIBUTIONS_LR}, \
                 {steps} steps over the {} training images; initial weights normal with std 0.05 \
                 (the same for both). Every {every} steps: test accuracy, and the 15th, 50th and 85th percentiles over the test \
                 images of the input to the first sigmoid of the last hidden layer (the batch norm's \
                 output with batch norm, the linear layer's without), the test images normalized as \
                 one batch as in training; test accuracy with batch norm on its running statistics.",
            data.train.len()
        ),
        table,
        findings,
        summary: seeds,
        runs: per_seed.into_iter().flatten().collect(),
    };
    (analysis, figure)
}

fn summarize(outcomes: &[Outcome], steps: usize) -> DistributionsSummary {
    let early = outcomes
        .first()
        .and_then(|o| o.curve.iter().find(|p| p.step >= steps / 10))
        .map_or(steps, |p| p.step);
    let networks = outcomes
        .iter()
        .map(|o| {
            let at_early = o
                .curve
                .iter()
                .find(|p| p.step >= early)
                .map_or(f64::NAN, |p| p.accuracy);
            let probes: Vec<[f64; 3]> = o.curve.iter().filter_map(|p| p.probe).collect();
            let (first, last) = (
                probes.first().copied().unwrap_or([f64::NAN; 3]),
                probes.last().copied().unwrap_or([f64::NAN; 3]),
            );
            let (low, high) = probes.iter().fold((f64::MAX, f64::MIN), |(lo, hi), q| {
                (lo.min(q[1]), hi.max(q[1]))
            });
            DistributionsRow {
                accuracy_at_tenth: at_early,
                norm: o.config.norm,
                diverged_at: o.diverged_at,
                median_end: last[1],
                median_start: first[1],
                median_swing: high - low,
                network: o.name.clone(),
                spread_end: last[2] - last[0],
                spread_start: first[2] - first[0],
                test_accuracy: o.test_accuracy,
            }
        })
        .collect();
    DistributionsSummary { early, networks }
}

fn who(row: &DistributionsRow) -> &'static str {
    if row.norm == Norm::Batch {
        "with batch norm"
    } else {
        "without batch norm"
    }
}

/// One number of a network over the seeds (each seed's row).
fn over(row: &[&DistributionsRow], value: fn(&DistributionsRow) -> f64) -> Spread {
    Spread::over(row, |r| value(r))
}

fn table(seeds: &[DistributionsSummary]) -> String {
    let early = seeds.first().map_or(0, |s| s.early);
    let rows: Vec<Vec<String>> = transpose(seeds, |s| &s.networks)
        .iter()
        .map(|row| {
            let f = |value: fn(&DistributionsRow) -> f64| over(row, value).fixed(2);
            vec![
                who(row[0]).to_string(),
                over(row, |r| r.accuracy_at_tenth).pct(),
                score(
                    over(row, |r| r.test_accuracy),
                    Diverged::over(row, |r| r.diverged_at),
                ),
                format!("{} → {}", f(|r| r.median_start), f(|r| r.median_end)),
                format!("{} → {}", f(|r| r.spread_start), f(|r| r.spread_end)),
                f(|r| r.median_swing),
            ]
        })
        .collect();
    super::common::table(
        &[
            "network",
            &format!("test accuracy after {early} steps"),
            "test accuracy at the end",
            "median input: start → end",
            "15–85 spread: start → end",
            "median's swing (max − min)",
        ],
        &rows,
    )
}

/// Whether batch norm held the median steadier than the plain network (the networks come in
/// a pair, batch norm first).
fn held(swings: &[f64]) -> bool {
    swings.len() == 2 && swings[0] < swings[1]
}

/// How far each network's sigmoid input moved (the mean over the seeds), and whether batch
/// norm held it steadier, on the mean and seed by seed.
fn findings(seeds: &[DistributionsSummary]) -> String {
    let n = seeds.len();
    let early = seeds.first().map_or(0, |s| s.early);
    let rows = transpose(seeds, |s| &s.networks);
    let mean =
        |row: &[&DistributionsRow], value: fn(&DistributionsRow) -> f64| over(row, value).mean;
    let sentences: Vec<String> = rows
        .iter()
        .map(|row| {
            format!(
                "{} the median moved from {:.2} to {:.2} (spanning {:.2} between its lowest \
                 and highest) and the 15–85 band went from {:.2} to {:.2} wide; test accuracy was {} after {early} steps \
                 and {} at the end",
                who(row[0]),
                mean(row, |r| r.median_start),
                mean(row, |r| r.median_end),
                mean(row, |r| r.median_swing),
                mean(row, |r| r.spread_start),
                mean(row, |r| r.spread_end),
                over(row, |r| r.accuracy_at_tenth).pct(),
                over(row, |r| r.test_accuracy).pct()
            )
        })
        .collect();
    let swings: Vec<f64> = rows
        .iter()
        .map(|row| mean(row, |r| r.median_swing))
        .collect();
    let k = seeds
        .iter()
        .filter(|s| {
            held(
                &s.networks
                    .iter()
                    .map(|r| r.median_swing)
                    .collect::<Vec<_>>(),
            )
        })
        .count();
    let prefix = if n > 1 {
        format!("On the mean over {n} seeds: ")
    } else {
        String::new()
    };
    let sentences = sentences.join("; ");
    format!(
        "{}.{}",
        if n > 1 {
            prefix + &sentences
        } else {
            capitalize(&sentences)
        },
        match (held(&swings), n) {
            (true, _) => format!(
                " Without batch norm the sigmoid's input wanders as the layers below it learn, \
                 so the layer above keeps chasing a moving distribution (what Ioffe and Szegedy \
                 called internal covariate shift); with batch norm its median stays closer to \
                 where gamma and beta put it{}.",
                if n > 1 {
                    format!(" (seed by seed: {})", in_seeds(k, n))
                } else {
                    String::new()
                }
            ),
            (false, 1) => " In this run the median moved at least as much with batch norm as \
                 without."
                .to_string(),
            (false, _) => format!(
                " On the mean the median moved at least as much with batch norm as without; \
                 it moved less with batch norm {}.",
                in_seeds(k, n)
            ),
        }
    )
}

/// Test accuracy, then each network's percentiles over steps on one shared y range: the mean
/// over the seeds, with a band from the lowest to the highest seed for accuracy and median.
fn figure(per_seed: &[Vec<Outcome>], steps: usize) -> Figure {
    // Each seed's network `net` (batch norm 0, plain 1).
    let of = |net: usize| -> Vec<&Outcome> { per_seed.iter().map(|o| &o[net]).collect() };
    let spread = |net: usize, curve: &dyn Fn(&Outcome) -> Vec<(f64, f64)>| {
        let curves: Vec<Vec<(f64, f64)>> = of(net).into_iter().map(curve).collect();
        curve_spread(&curves)
    };
    let mean =
        |s: &[(f64, Spread)]| -> Vec<(f64, f64)> { s.iter().map(|(x, s)| (*x, s.mean)).collect() };
    let probe_range = probe_range(per_seed);
    let percentiles = |net: usize, legend: bool| {
        let color = if net == 0 { BATCH_NORM } else { PLAIN };
        percentile_series(per_seed, net, color, legend)
    };
    let accuracy = |net: usize| spread(net, &|o: &Outcome| accuracy_curve(o));
    let (bn, plain) = (accuracy(0), accuracy(1));
    Figure {
        title: format!("Sigmoid MLP over {steps} steps (Ioffe & Szegedy 2015, Fig. 1)"),
        columns: 3,
        panel_size: (480, 360),
        panels: vec![
            Panel {
                title: "(a) test accuracy".into(),
                x_axis: XAxis::Linear,
                x_label: "step".into(),
                y_label: "test accuracy".into(),
                y_range: Some((0.0, 1.0)),
                series: [band(BATCH_NORM, bn.clone()), band(PLAIN, plain.clone())]
                    .into_iter()
                    .flatten()
                    .chain([
                        line("batch norm", BATCH_NORM, mean(&bn)),
                        line("plain", PLAIN, mean(&plain)),
                    ])
                    .collect(),
                legend: SeriesLabelPosition::LowerRight,
            },
            Panel {
                title: "(b) without batch norm: sigmoid input".into(),
                x_axis: XAxis::Linear,
                x_label: "step".into(),
                y_label: "15th / 50th / 85th percentile".into(),
                y_range: probe_range,
                series: percentiles(1, true),
                legend: SeriesLabelPosition::UpperRight,
            },
            Panel {
                title: "(c) with batch norm: sigmoid input".into(),
                x_axis: XAxis::Linear,
                x_label: "step".into(),
                y_label: "15th / 50th / 85th percentile".into(),
                y_range: probe_range,
                series: percentiles(0, false),
                legend: SeriesLabelPosition::MiddleRight,
            },
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A network whose median went from 0 to `median_end`, swinging `swing`.
    fn row(norm: Norm, median_end: f64, swing: f64) -> DistributionsRow {
        DistributionsRow {
            accuracy_at_tenth: 0.5,
            norm,
            diverged_at: None,
            median_end,
            median_start: 0.0,
            median_swing: swing,
            network: String::new(),
            spread_end: 2.5,
            spread_start: 0.25,
            test_accuracy: 0.9,
        }
    }

    /// An outcome measured every `every` steps of `steps`, its accuracy the step / 1000 and
    /// its median the step / 100 (percentiles median ∓ 1).
    fn outcome(steps: usize, every: usize) -> Outcome {
        let curve = (0..=steps)
            .step_by(every)
            .map(|step| crate::lab::run::Point {
                step,
                accuracy: step as f64 / 1000.0,
                train_loss: None,
                probe: Some([-1.0, 0.0, 1.0].map(|d| d + step as f64 / 100.0)),
                landscape: None,
                ics: None,
            })
            .collect();
        Outcome {
            name: "probed".into(),
            config: MlpConfig::new(Norm::None),
            seed: 0,
            lr: 0.5,
            batch_size: 60,
            steps,
            diverged_at: None,
            mean_loss: 1.0,
            final_loss: 1.0,
            test_accuracy: 0.75,
            curve,
            initial_gradients: None,
            seconds: 0.0,
            model: None,
        }
    }

    #[test]
    fn the_early_measurement_is_the_first_at_or_after_a_tenth_of_the_steps() {
        // 500 steps measured every 50: a tenth is step 50 itself.
        let summary = summarize(&[outcome(500, 50)], 500);
        assert_eq!(summary.early, 50);
        let row = &summary.networks[0];
        assert_eq!(row.accuracy_at_tenth, 0.05);
        assert_eq!(
            (row.median_start, row.median_end, row.median_swing),
            (0.0, 5.0, 5.0)
        );
        assert_eq!((row.spread_start, row.spread_end), (2.0, 2.0));
        // 1,000 steps measured every 300: the first at or after step 100 is 300.
        assert_eq!(summarize(&[outcome(1000, 300)], 1000).early, 300);
    }

    #[test]
    fn a_steadier_median_with_batch_norm_is_read_as_less_covariate_shift() {
        let summary = DistributionsSummary {
            early: 1000,
            networks: vec![row(Norm::Batch, 0.1, 0.3), row(Norm::None, -2.0, 2.5)],
        };
        let findings = findings(&[summary]);
        assert!(
            findings.starts_with(
                "With batch norm the median moved from 0.00 to 0.10 (spanning 0.30 between its \
                 lowest and highest) and the 15–85 band went from 0.25 to 2.50 wide; test \
                 accuracy was 50.00% after 1000 steps and 90.00% at the end; without batch norm \
                 the median moved from 0.00 to -2.00 (spanning 2.50"
            ),
            "{findings}"
        );
        assert!(findings.contains("internal covariate shift"), "{findings}");
        assert!(!findings.contains("at least as much"), "{findings}");
    }

    #[test]
    fn a_median_that_moves_as_much_with_batch_norm_is_reported_as_such() {
        let summary = DistributionsSummary {
            early: 1000,
            networks: vec![row(Norm::Batch, 0.1, 2.5), row(Norm::None, -2.0, 2.5)],
        };
        let findings = findings(&[summary]);
        assert!(
            findings.ends_with(
                "at the end. In this run the median moved at least as much with batch norm as \
                 without."
            ),
            "{findings}"
        );
        assert!(!findings.contains("covariate shift"), "{findings}");
    }

    #[test]
    fn over_seeds_the_findings_give_the_means_and_count_the_seeds() {
        let seed = |bn_swing| DistributionsSummary {
            early: 1000,
            networks: vec![row(Norm::Batch, 0.1, bn_swing), row(Norm::None, -2.0, 2.5)],
        };
        // Batch norm's median swings less in two seeds of three, and on the mean.
        let findings = findings(&[seed(0.5), seed(3.0), seed(0.5)]);
        assert!(
            findings.starts_with(
                "On the mean over 3 seeds: with batch norm the median moved from 0.00 to 0.10 \
                 (spanning 1.33 between its lowest and highest)"
            ),
            "{findings}"
        );
        assert!(
            findings.contains("test accuracy was 50.00% (50.00–50.00) after 1000 steps"),
            "{findings}"
        );
        assert!(
            findings.ends_with("where gamma and beta put it (seed by seed: in 2 of 3 seeds)."),
            "{findings}"
        );
        let findings = super::findings(&[seed(3.0), seed(4.0), seed(0.5)]);
        assert!(
            findings.ends_with(
                "On the mean the median moved at least as much with batch norm as without; it \
                 moved less with batch norm in 1 of 3 seeds."
            ),
            "{findings}"
        );
        let table = table(&[seed(0.5), seed(3.0)]);
        assert!(
            table.contains(
                "| with batch norm | 50.00% (50.00–50.00) | 90.00% (90.00–90.00) | 0.00 \
                 (0.00–0.00) → 0.10 (0.10–0.10) | 0.25 (0.25–0.25) → 2.50 (2.50–2.50) | 1.75 \
                 (0.50–3.00) |"
            ),
            "{table}"
        );
    }

    #[test]
    fn the_table_names_the_early_step_and_the_divergence() {
        let mut plain = row(Norm::None, -2.0, 2.5);
        plain.diverged_at = Some(9);
        let summary = DistributionsSummary {
            early: 1000,
            networks: vec![row(Norm::Batch, 0.1, 0.3), plain],
        };
        let table = table(&[summary]);
        assert!(
            table.contains("| test accuracy after 1000 steps |"),
            "{table}"
        );
        assert!(
            table.contains(
                "| without batch norm | 50.00% | 90.00%, diverged at step 9 | 0.00 → -2.00 | \
                 0.25 → 2.50 | 2.50 |"
            ),
            "{table}"
        );
    }

    #[test]
    fn the_summary_keeps_lab_json_keys_and_values() {
        let mut r = row(Norm::Batch, 0.1, f64::NAN);
        r.network = "sigmoid 3×100, bn".into();
        let summary = DistributionsSummary {
            early: 1000,
            networks: vec![r],
        };
        assert_eq!(
            serde_json::to_string(&summary).unwrap(),
            "[{\"accuracy_at_tenth\":0.5,\"median_end\":0.1,\"median_start\":0.0,\
             \"median_swing\":null,\"network\":\"sigmoid 3×100, bn\",\"spread_end\":2.5,\
             \"spread_start\":0.25,\"test_accuracy\":0.9}]"
        );
    }
}
