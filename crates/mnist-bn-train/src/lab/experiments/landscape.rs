//! `landscape`: how smooth the loss is along the gradient as training goes, with and without
//! batch norm (Santurkar, Tsipras, Ilyas & Madry 2018, "How Does Batch Normalization Help
//! Optimization?", Figure 4).

use plotters::chart::SeriesLabelPosition;
use serde::Serialize;

use super::common::{Analysis, line, pair, relu_3x100, sgd};
use super::seeds::{Diverged, Spread, band, curve_spread, in_seeds, score, transpose};
use crate::lab::run::{LabData, Outcome, Run};
use crate::plot::figure::{BATCH_NORM, Figure, PLAIN, Panel, XAxis};

/// Learning rate: one at which both networks train.
const LR: f64 = 0.1;

/// Batch size.
const BATCH: usize = 60;

/// Steps between measurements.
const EVERY: usize = 100;

/// The step sizes moved along the gradient, as multiples of the learning rate.
const STEP_SIZES: [f64; 5] = [0.25, 0.5, 1.0, 2.0, 4.0];

/// What the figure's panels and the table's columns show, in the order [`LandscapeNetwork`]
/// keeps them.
const MEASURES: [&str; 3] = [
    "range of the loss along the gradient",
    "largest ℓ2 change of the gradient",
    "effective β-smoothness",
];

/// What `landscape` found: the two networks, batch norm first.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct LandscapeSummary {
    /// With batch norm, then without.
    pub networks: Vec<LandscapeNetwork>,
}

/// One network of `landscape`: its landscape at every measurement and the means over them.
#[derive(Debug, Clone, Serialize)]
pub struct LandscapeNetwork {
    /// The run's name.
    pub network: String,
    /// The steps measured at.
    pub steps: Vec<usize>,
    /// At each of them: the range of the loss, the largest change of the gradient and the
    /// effective β-smoothness.
    pub landscape: Vec<[f64; 3]>,
    /// The mean of each of the three over the measurements.
    pub means: [f64; 3],
    /// Test accuracy at the end.
    pub test_accuracy: f64,
    /// The step at which it diverged, if it did.
    pub diverged_at: Option<usize>,
}

/// The two networks, measured every [`EVERY`] steps.
pub(super) fn runs(steps: usize, seed: u64) -> Vec<Run> {
    let config = relu_3x100();
    let step_sizes: Vec<f64> = STEP_SIZES.iter().map(|m| m * LR).collect();
    pair("ReLU 3×100", config, |name, config| Run {
        measure_every: EVERY,
        landscape: step_sizes.clone(),
        ..Run::new(name, config, sgd(LR, BATCH, seed), steps)
    })
    .into()
}

/// The section and figure of the outcomes of [`runs`], one list per seed.
pub(super) fn report(
    per_seed: Vec<Vec<Outcome>>,
    data: &LabData,
) -> (Analysis<LandscapeSummary>, Figure) {
    let steps = per_seed.iter().flatten().next().map_or(0, |o| o.steps);
    let seeds: Vec<LandscapeSummary> = per_seed.iter().map(|o| summarize(o)).collect();
    let (table, findings, figure) = (table(&seeds), findings(&seeds), figure(&seeds, steps));
    let sizes: Vec<String> = STEP_SIZES.iter().map(|m| format!("{}", m * LR)).collect();
    let analysis = Analysis {
        question: "Does batch norm make the loss smoother along the gradient? (Santurkar et al. \
             2018, Figure 4)",
        setup: format!(
            "784-100-100-100-10 with ReLUs (weights uniform in ±1/√fan_in as PyTorch draws \
             them, biases 0, the same for both networks), plain SGD with lr {LR}, batch \
             {BATCH}, {steps} steps over the {} training images. Every {EVERY} steps, on the \
             first {BATCH} training images with batch statistics: the gradient g at the \
             weights w, then the loss and the gradient at w − η·g for η = {}. Measured: the \
             range of the loss over these points, the largest ℓ2 change of the gradient \
             ‖∇L(w − η·g) − g‖ (how predictive the gradient is), and the largest ratio of that \
             change to the distance moved, ‖η·g‖ (the effective β-smoothness); the table gives \
             each one's mean over the measurements.",
            data.train.len(),
            sizes.join(", ")
        ),
        table,
        findings,
        summary: seeds,
        runs: per_seed.into_iter().flatten().collect(),
    };
    (analysis, figure)
}

fn summarize(outcomes: &[Outcome]) -> LandscapeSummary {
    let networks = outcomes
        .iter()
        .map(|o| {
            let points: Vec<(usize, [f64; 3])> = o
                .curve
                .iter()
                .filter_map(|p| p.landscape.map(|l| (p.step, l)))
                .collect();
            let means = [0, 1, 2].map(|i| {
                points.iter().map(|(_, l)| l[i]).sum::<f64>() / points.len().max(1) as f64
            });
            LandscapeNetwork {
                network: o.name.clone(),
                steps: points.iter().map(|p| p.0).collect(),
                landscape: points.iter().map(|p| p.1).collect(),
                means,
                test_accuracy: o.test_accuracy,
                diverged_at: o.diverged_at,
            }
        })
        .collect();
    LandscapeSummary { networks }
}

fn who(network: &LandscapeNetwork) -> &'static str {
    if network.network.ends_with(", bn") {
        "with batch norm"
    } else {
        "without batch norm"
    }
}

/// Measure `i`'s mean over the measurements, over the seeds.
fn mean_of(row: &[&LandscapeNetwork], i: usize) -> Spread {
    Spread::over(row, |n| n.means[i])
}

fn table(seeds: &[LandscapeSummary]) -> String {
    let rows: Vec<Vec<String>> = transpose(seeds, |s| &s.networks)
        .iter()
        .map(|row| {
            let mut cells = vec![who(row[0]).to_string()];
            cells.extend((0..3).map(|i| mean_of(row, i).fixed(4)));
            cells.push(score(
                Spread::over(row, |n| n.test_accuracy),
                Diverged::over(row, |n| n.diverged_at),
            ));
            cells
        })
        .collect();
    let header: Vec<String> = ["network".to_string()]
        .into_iter()
        .chain(MEASURES.iter().map(|m| format!("{m} (mean)")))
        .chain(["test accuracy at the end".to_string()])
        .collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    super::common::table(&header, &rows)
}

/// The names the findings give the three measures, in [`MEASURES`]' order.
const FINDINGS_NAMES: [&str; 3] = [
    "the range of the loss",
    "the change of the gradient",
    "the effective β-smoothness",
];

/// `4.0 times smaller`, or `1.7 times larger` (batch norm's against the plain network's).
fn times(bn: f64, plain: f64) -> String {
    if bn <= plain {
        format!("{:.1} times smaller", plain / bn)
    } else {
        format!("{:.1} times larger", bn / plain)
    }
}

/// The three measures with and without batch norm (means over the measurements and the seeds),
/// and for each in how many seeds it is smaller with batch norm, as Santurkar et al. found all
/// three.
fn findings(seeds: &[LandscapeSummary]) -> String {
    let n = seeds.len();
    let rows = transpose(seeds, |s| &s.networks);
    let [bn, plain] = match rows.as_slice() {
        [bn, plain] => [bn, plain],
        _ => return String::new(),
    };
    let compare = |i: usize, what: &str| {
        let (b, p) = (mean_of(bn, i), mean_of(plain, i));
        format!(
            "{what} {} with batch norm against {} without ({})",
            b.fixed(4),
            p.fixed(4),
            times(b.mean, p.mean)
        )
    };
    // Per measure, the seeds in which batch norm's is smaller.
    let smaller: Vec<usize> = (0..3)
        .map(|i| {
            seeds
                .iter()
                .filter(|s| s.networks[0].means[i] < s.networks[1].means[i])
                .count()
        })
        .collect();
    let counts: Vec<String> = (0..3)
        .map(|i| format!("{} {}", FINDINGS_NAMES[i], in_seeds(smaller[i], n)))
        .collect();
    let verdict = if smaller.iter().all(|&k| k == n) {
        "reproduced"
    } else if smaller.iter().all(|&k| k == 0) {
        "not reproduced"
    } else {
        "partly reproduced"
    };
    format!(
        "Averaged over the measurements{}: {}; {}; {}. Santurkar et al. (2018, Figure 4) found \
         all three smaller with batch norm: the loss changes less along the gradient, the \
         gradient is more predictive, the landscape smoother. Here batch norm's was smaller for \
         {}: {verdict}.",
        if n > 1 {
            format!(" and the {n} seeds")
        } else {
            String::new()
        },
        compare(0, "the loss along the gradient ranged over"),
        compare(1, "the gradient changed by up to"),
        compare(2, "the effective β-smoothness was"),
        counts.join(", "),
    )
}

/// log10 of a positive value, for the figure's log-scaled y values.
fn log10(v: f64) -> f64 {
    if v > 0.0 { v.log10() } else { f64::NAN }
}

/// The three measures over training (log scale), the mean over the seeds with a band.
fn figure(seeds: &[LandscapeSummary], steps: usize) -> Figure {
    let panel = |i: usize| {
        let series =
            [(0, "batch norm", BATCH_NORM), (1, "plain", PLAIN)].map(|(k, label, color)| {
                let curves: Vec<Vec<(f64, f64)>> = seeds
                    .iter()
                    .map(|s| {
                        let net = &s.networks[k];
                        net.steps
                            .iter()
                            .zip(&net.landscape)
                            .map(|(&step, l)| (step as f64, l[i]))
                            .collect()
                    })
                    .collect();
                // The mean and the seeds' range, drawn on a log scale.
                let spread: Vec<(f64, Spread)> = curve_spread(&curves)
                    .into_iter()
                    .map(|(x, s)| {
                        let logged = Spread {
                            mean: log10(s.mean),
                            min: log10(s.min),
                            max: log10(s.max),
                            seeds: s.seeds,
                        };
                        (x, logged)
                    })
                    .collect();
                let mean = spread.iter().map(|(x, s)| (*x, s.mean)).collect();
                (
                    band(color, spread),
                    line(if i == 0 { label } else { "" }, color, mean),
                )
            });
        let (bands, lines): (Vec<_>, Vec<_>) = series.into_iter().unzip();
        Panel {
            title: format!("({}) {}", ["a", "b", "c"][i], MEASURES[i]),
            x_axis: XAxis::Linear,
            x_label: "step".into(),
            y_label: format!("log10 {}", ["loss range", "‖Δ gradient‖", "β"][i]),
            y_range: None,
            series: bands.into_iter().flatten().chain(lines).collect(),
            legend: SeriesLabelPosition::UpperRight,
        }
    };
    Figure {
        title: format!(
            "The loss landscape along the gradient over {steps} steps (Santurkar et al. 2018, Fig. 4)"
        ),
        columns: 3,
        panel_size: (480, 360),
        panels: vec![panel(0), panel(1), panel(2)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn network(name: &str, means: [f64; 3]) -> LandscapeNetwork {
        LandscapeNetwork {
            network: name.into(),
            steps: vec![0, 100],
            landscape: vec![means, means],
            means,
            test_accuracy: 0.9,
            diverged_at: None,
        }
    }

    fn summary(bn: [f64; 3], plain: [f64; 3]) -> LandscapeSummary {
        LandscapeSummary {
            networks: vec![
                network("ReLU 3×100, bn", bn),
                network("ReLU 3×100, plain", plain),
            ],
        }
    }

    #[test]
    fn a_pair_measured_along_the_gradient_at_multiples_of_the_rate() {
        let runs = runs(300, 2);
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].config.weight_init, runs[1].config.weight_init);
        for run in &runs {
            assert_eq!(run.landscape, [0.025, 0.05, 0.1, 0.2, 0.4]);
            assert_eq!(
                (run.measure_every, run.steps, run.training.seed),
                (EVERY, 300, 2)
            );
            assert_eq!((run.training.lr, run.training.batch_size), (LR, BATCH));
        }
    }

    #[test]
    fn the_summary_takes_the_mean_of_every_measurement() {
        let point = |step, landscape| crate::lab::run::Point {
            step,
            accuracy: 0.5,
            train_loss: None,
            probe: None,
            landscape: Some(landscape),
            ics: None,
        };
        let outcome = Outcome {
            name: "ReLU 3×100, bn".into(),
            config: mnist_bn_model::MlpConfig::new(mnist_bn_model::Norm::Batch),
            seed: 0,
            lr: LR,
            batch_size: BATCH,
            steps: 100,
            diverged_at: None,
            mean_loss: 1.0,
            final_loss: 1.0,
            test_accuracy: 0.75,
            curve: vec![point(0, [1.0, 2.0, 3.0]), point(100, [3.0, 4.0, 5.0])],
            initial_gradients: None,
            seconds: 0.0,
            model: None,
        };
        let summary = summarize(&[outcome]);
        let net = &summary.networks[0];
        assert_eq!(net.steps, [0, 100]);
        assert_eq!(net.means, [2.0, 3.0, 4.0]);
        assert_eq!(who(net), "with batch norm");
    }

    #[test]
    fn a_smoother_landscape_with_batch_norm_reproduces_santurkar() {
        let findings = findings(&[summary([0.1, 0.5, 2.0], [0.4, 1.0, 10.0])]);
        assert_eq!(
            findings,
            "Averaged over the measurements: the loss along the gradient ranged over 0.1000 \
             with batch norm against 0.4000 without (4.0 times smaller); the gradient changed \
             by up to 0.5000 with batch norm against 1.0000 without (2.0 times smaller); the \
             effective β-smoothness was 2.0000 with batch norm against 10.0000 without (5.0 \
             times smaller). Santurkar et al. (2018, Figure 4) found all three smaller with \
             batch norm: the loss changes less along the gradient, the gradient is more \
             predictive, the landscape smoother. Here batch norm's was smaller for the range of \
             the loss in this run, the change of the gradient in this run, the effective \
             β-smoothness in this run: reproduced."
        );
    }

    #[test]
    fn each_measure_counts_its_own_seeds() {
        let findings = findings(&[
            summary([0.1, 0.5, 20.0], [0.4, 1.0, 10.0]),
            summary([0.5, 0.5, 20.0], [0.4, 1.0, 10.0]),
        ]);
        assert!(findings.starts_with("Averaged over the measurements and the 2 seeds: "));
        assert!(
            findings.contains("against 10.0000 (10.0000–10.0000) without (2.0 times larger)"),
            "{findings}"
        );
        assert!(
            findings.ends_with(
                "Here batch norm's was smaller for the range of the loss in 1 of 2 seeds, the \
                 change of the gradient in all 2 seeds, the effective β-smoothness in no seed: \
                 partly reproduced."
            ),
            "{findings}"
        );
        let findings = super::findings(&[summary([1.0; 3], [0.5; 3])]);
        assert!(
            findings.ends_with("in no seed: not reproduced."),
            "{findings}"
        );
    }

    #[test]
    fn the_table_gives_each_measures_mean() {
        let table = table(&[summary([0.1, 0.5, 2.0], [0.4, 1.0, 10.0])]);
        assert!(
            table.contains("| with batch norm | 0.1000 | 0.5000 | 2.0000 | 90.00% |"),
            "{table}"
        );
    }
}
