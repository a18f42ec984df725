//! `ics`: does batch norm work by reducing internal covariate shift? A plain network, the same
//! with batch norm, and with *noisy* batch norm, whose layer inputs move more than the plain
//! network's; and internal covariate shift measured directly (Santurkar, Tsipras, Ilyas &
//! Madry 2018, "How Does Batch Normalization Help Optimization?", Figures 2 and 5).

use mnist_bn_model::{BnNoiseConfig, MlpConfig, Norm};
use plotters::chart::SeriesLabelPosition;
use serde::Serialize;

use super::common::{Analysis, line, pair, percentile_series, probe_range, relu_3x100, sgd};
use super::seeds::{Diverged, Spread, band, curve_spread, in_seeds, mean_word, score, transpose};
use crate::lab::run::{LabData, Outcome, Probe, Run};
use crate::plot::figure::{BATCH_NORM, Figure, NOISY, PLAIN, Panel, XAxis};

/// Learning rate: one at which all three train.
const LR: f64 = 0.1;

/// Batch size.
const BATCH: usize = 60;

/// Steps between measurements.
const EVERY: usize = 100;

/// Test accuracy within this of batch norm's counts as training like it (a fraction).
const LIKE_BN: f64 = 0.01;

/// What `ics` found: the three networks, batch norm, plain, noisy batch norm.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct IcsSummary {
    /// With batch norm, without, with noisy batch norm.
    pub networks: Vec<IcsNetwork>,
}

/// One network of `ics`.
#[derive(Debug, Clone, Serialize)]
pub struct IcsNetwork {
    /// The run's name.
    pub network: String,
    /// The steps measured at.
    pub steps: Vec<usize>,
    /// At each, the median of the probed unit's input (the last hidden layer's first unit,
    /// over the test images with batch statistics, noise included).
    pub median: Vec<f64>,
    /// The mean absolute change of that median from one measurement to the next.
    pub median_drift: f64,
    /// Its highest value minus its lowest.
    pub median_swing: f64,
    /// At each measurement, the ℓ2 distance and the cosine of internal covariate shift,
    /// averaged over the layers after the first.
    pub ics: Vec<[f64; 2]>,
    /// Their means over the measurements after step 0.
    pub ics_means: [f64; 2],
    /// Test accuracy at the end.
    pub test_accuracy: f64,
    /// The step at which it diverged, if it did.
    pub diverged_at: Option<usize>,
}

/// The three networks (the noisy one with its noise seeded by `seed`), measured every
/// [`EVERY`] steps.
pub(super) fn runs(steps: usize, seed: u64) -> Vec<Run> {
    let config = relu_3x100();
    let run = |name: String, config: MlpConfig| Run {
        measure_every: EVERY,
        probe: Some(Probe::last_layer(&config)),
        ics: Some(LR),
        ..Run::new(name, config, sgd(LR, BATCH, seed), steps)
    };
    let mut runs: Vec<Run> = pair("ReLU 3×100", config.clone(), run).into();
    let noisy = MlpConfig {
        norm: Norm::Batch,
        bn_noise: Some(BnNoiseConfig::new(seed)),
        ..config
    };
    runs.push(run("ReLU 3×100, noisy bn".into(), noisy));
    runs
}

/// The section and figure of the outcomes of [`runs`], one list per seed.
pub(super) fn report(
    per_seed: Vec<Vec<Outcome>>,
    data: &LabData,
) -> (Analysis<IcsSummary>, Figure) {
    let steps = per_seed.iter().flatten().next().map_or(0, |o| o.steps);
    let seeds: Vec<IcsSummary> = per_seed.iter().map(|o| summarize(o)).collect();
    let (table, findings, figure) = (
        table(&seeds),
        findings(&seeds),
        figure(&per_seed, &seeds, steps),
    );
    let analysis = Analysis {
        question: "Does batch norm help by reducing internal covariate shift? (Santurkar et al. \
             2018, Figures 2 and 5)",
        setup: format!(
            "784-100-100-100-10 with ReLUs (weights uniform in ±1/√fan_in as PyTorch draws \
             them, biases 0, the same for all three networks): without batch norm, with it, and \
             with noisy batch norm (after each batch norm in training, every unit's output \
             scaled by ν + τ·a and shifted by μ + σ·b, a and b standard normal, with μ, σ, ν, τ \
             drawn anew at every step from U(−1, 1), U(0, 1), U(0.5, 1.5) and U(0, 0.5)); plain \
             SGD with lr {LR}, batch {BATCH}, {steps} steps over the {} training images. Every \
             {EVERY} steps: test accuracy; the 15th, 50th and 85th percentiles over the test \
             images of the input to the last hidden layer's first ReLU (batch statistics, noise \
             included; the table follows the median); and internal \
             covariate shift on the first {BATCH} training images (no noise): for each layer \
             after the first, its weights' gradient before and after the layers below take an \
             SGD step of size {LR}, compared by ℓ2 distance and cosine, averaged over the layers.",
            data.train.len()
        ),
        table,
        findings,
        summary: seeds,
        runs: per_seed.into_iter().flatten().collect(),
    };
    (analysis, figure)
}

fn summarize(outcomes: &[Outcome]) -> IcsSummary {
    let networks = outcomes
        .iter()
        .map(|o| {
            let probed: Vec<(usize, f64)> = o
                .curve
                .iter()
                .filter_map(|p| p.probe.map(|q| (p.step, q[1])))
                .collect();
            let median: Vec<f64> = probed.iter().map(|p| p.1).collect();
            let drift = median.windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f64>()
                / median.len().saturating_sub(1).max(1) as f64;
            let swing = median.iter().cloned().fold(f64::MIN, f64::max)
                - median.iter().cloned().fold(f64::MAX, f64::min);
            let ics: Vec<[f64; 2]> = o
                .curve
                .iter()
                .filter_map(|p| p.ics.as_ref())
                .map(|layers| {
                    let n = layers.len().max(1) as f64;
                    [0, 1].map(|k| layers.iter().map(|l| l[k]).sum::<f64>() / n)
                })
                .collect();
            // After step 0: at initialization a plain network's gradients are near zero.
            let later = &ics[ics.len().min(1)..];
            let ics_means =
                [0, 1].map(|k| later.iter().map(|l| l[k]).sum::<f64>() / later.len().max(1) as f64);
            IcsNetwork {
                network: o.name.clone(),
                steps: probed.iter().map(|p| p.0).collect(),
                median,
                median_drift: drift,
                median_swing: swing,
                ics,
                ics_means,
                test_accuracy: o.test_accuracy,
                diverged_at: o.diverged_at,
            }
        })
        .collect();
    IcsSummary { networks }
}

/// The three networks' names in the text.
const WHO: [&str; 3] = [
    "with batch norm",
    "without batch norm",
    "with noisy batch norm",
];

fn table(seeds: &[IcsSummary]) -> String {
    let rows: Vec<Vec<String>> = transpose(seeds, |s| &s.networks)
        .iter()
        .zip(WHO)
        .map(|(row, who)| {
            vec![
                who.to_string(),
                score(
                    Spread::over(row, |n| n.test_accuracy),
                    Diverged::over(row, |n| n.diverged_at),
                ),
                Spread::over(row, |n| n.median_drift).fixed(3),
                Spread::over(row, |n| n.median_swing).fixed(2),
                Spread::over(row, |n| n.ics_means[0]).fixed(4),
                Spread::over(row, |n| n.ics_means[1]).fixed(3),
            ]
        })
        .collect();
    super::common::table(
        &[
            "network",
            "test accuracy at the end",
            "median input: mean change per measurement",
            "median input: swing (max − min)",
            "ICS: ℓ2 distance (mean)",
            "ICS: cosine (mean)",
        ],
        &rows,
    )
}

/// The three claims Santurkar et al. make, each counted seed by seed: noisy batch norm's inputs
/// move more than the plain network's; it trains like batch norm; batch norm does not reduce
/// internal covariate shift (its gradients are no better aligned before and after the lower
/// layers' step than the plain network's).
fn findings(seeds: &[IcsSummary]) -> String {
    let n = seeds.len();
    let rows = transpose(seeds, |s| &s.networks);
    let [bn, plain, noisy] = match rows.as_slice() {
        [a, b, c] => [a, b, c],
        _ => return String::new(),
    };
    let over = |row: &[&IcsNetwork], f: fn(&IcsNetwork) -> f64| Spread::over(row, |n| f(n));
    let drift = |row: &[&IcsNetwork]| over(row, |n| n.median_drift);
    let accuracy = |row: &[&IcsNetwork]| over(row, |n| n.test_accuracy);
    let count =
        |claim: fn(&[IcsNetwork]) -> bool| seeds.iter().filter(|s| claim(&s.networks)).count();
    let moves_more = count(|n| n[2].median_drift > n[1].median_drift);
    let trains_like = count(|n| (n[2].test_accuracy - n[0].test_accuracy).abs() <= LIKE_BN);
    let not_reduced = count(|n| n[0].ics_means[1] <= n[1].ics_means[1]);
    let word = mean_word(n);
    format!(
        "The probed unit's median input changed by {} per measurement with noisy batch norm, \
         {} without batch norm and {} with it ({word}absolute change between measurements): \
         more with noisy batch norm than without {}. Noisy batch norm ended at {} test accuracy, \
         batch norm at {} and the plain network at {}: within {:.0} point of batch norm {}. When \
         the layers below took their step, a layer's gradient moved by {} with batch norm and \
         {} without ({word}ℓ2 distance), at a cosine of {} against {}: no better aligned with \
         batch norm {}. Santurkar et al. (2018) found that noisy batch norm, whose inputs move \
         more than a plain network's, trains like batch norm (Figure 2), and that batch norm \
         does not reduce internal covariate shift measured this way (Figure 5): {}.",
        drift(noisy).fixed(3),
        drift(plain).fixed(3),
        drift(bn).fixed(3),
        in_seeds(moves_more, n),
        accuracy(noisy).pct(),
        accuracy(bn).pct(),
        accuracy(plain).pct(),
        100.0 * LIKE_BN,
        in_seeds(trains_like, n),
        over(bn, |n| n.ics_means[0]).fixed(4),
        over(plain, |n| n.ics_means[0]).fixed(4),
        over(bn, |n| n.ics_means[1]).fixed(3),
        over(plain, |n| n.ics_means[1]).fixed(3),
        in_seeds(not_reduced, n),
        match (
            moves_more.min(trains_like).min(not_reduced),
            moves_more.max(trains_like).max(not_reduced)
        ) {
            (k, _) if k == n => "reproduced in every seed",
            (_, 0) => "not reproduced",
            _ => "partly reproduced",
        }
    )
}

/// Test accuracy and the two ICS measures over training, the three networks each the mean
/// over the seeds with a band; then each network's 15th, 50th and 85th percentiles of the
/// probed unit's input (as `distributions` draws them), the median with a band.
fn figure(per_seed: &[Vec<Outcome>], seeds: &[IcsSummary], steps: usize) -> Figure {
    let networks = [
        (0, "batch norm", BATCH_NORM),
        (1, "plain", PLAIN),
        (2, "noisy batch norm", NOISY),
    ];
    let panel = |title: &str,
                 y_label: &str,
                 y_range,
                 curve: &dyn Fn(usize, usize) -> Vec<(f64, f64)>,
                 legend: bool| {
        let mut bands = Vec::new();
        let mut lines = Vec::new();
        for (k, label, color) in networks {
            let curves: Vec<Vec<(f64, f64)>> = (0..seeds.len()).map(|s| curve(s, k)).collect();
            let spread = curve_spread(&curves);
            lines.push(line(
                if legend { label } else { "" },
                color,
                spread.iter().map(|(x, s)| (*x, s.mean)).collect(),
            ));
            bands.extend(band(color, spread));
        }
        Panel {
            title: title.into(),
            x_axis: XAxis::Linear,
            x_label: "step".into(),
            y_label: y_label.into(),
            y_range,
            series: bands.into_iter().chain(lines).collect(),
            legend: SeriesLabelPosition::LowerRight,
        }
    };
    let accuracy = |s: usize, k: usize| super::common::accuracy_curve(&per_seed[s][k]);
    let ics = |i: usize| {
        move |s: usize, k: usize| -> Vec<(f64, f64)> {
            let n = &seeds[s].networks[k];
            n.steps
                .iter()
                .zip(&n.ics)
                .skip(1)
                .map(|(&x, v)| (x as f64, v[i]))
                .collect()
        }
    };
    // The probed unit's 15th, 50th and 85th percentiles, on one y range for the three.
    let probe_range = probe_range(per_seed);
    let percentiles = |k: usize, title: &str, color| Panel {
        title: title.into(),
        x_axis: XAxis::Linear,
        x_label: "step".into(),
        y_label: "15th / 50th / 85th percentile".into(),
        y_range: probe_range,
        series: percentile_series(per_seed, k, color, k == 1),
        legend: SeriesLabelPosition::UpperRight,
    };
    Figure {
        title: format!(
            "Internal covariate shift over {steps} steps (Santurkar et al. 2018, Figs. 2 and 5)"
        ),
        columns: 3,
        panel_size: (480, 360),
        panels: vec![
            panel(
                "(a) test accuracy",
                "test accuracy",
                Some((0.0, 1.0)),
                &accuracy,
                true,
            ),
            panel(
                "(b) ICS: ℓ2 distance of a layer's gradient",
                "ℓ2 distance",
                None,
                &ics(0),
                false,
            ),
            panel(
                "(c) ICS: cosine of a layer's gradient",
                "cosine",
                None,
                &ics(1),
                false,
            ),
            percentiles(1, "(d) without batch norm: the unit's input", PLAIN),
            percentiles(0, "(e) with batch norm: the unit's input", BATCH_NORM),
            percentiles(2, "(f) with noisy batch norm: the unit's input", NOISY),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn network(name: &str, drift: f64, accuracy: f64, ics: [f64; 2]) -> IcsNetwork {
        IcsNetwork {
            network: name.into(),
            steps: vec![0, 100],
            median: vec![0.0, drift],
            median_drift: drift,
            median_swing: drift,
            ics: vec![[0.0, 1.0], ics],
            ics_means: ics,
            test_accuracy: accuracy,
            diverged_at: None,
        }
    }

    /// Batch norm, plain, noisy: noisy drifts `noisy_drift` against the plain 0.1, ends at
    /// `noisy_accuracy` against batch norm's 0.95, and batch norm's ICS cosine is `bn_cosine`
    /// against the plain 0.9.
    fn summary(noisy_drift: f64, noisy_accuracy: f64, bn_cosine: f64) -> IcsSummary {
        IcsSummary {
            networks: vec![
                network("ReLU 3×100, bn", 0.05, 0.95, [0.5, bn_cosine]),
                network("ReLU 3×100, plain", 0.1, 0.9, [0.2, 0.9]),
                network(
                    "ReLU 3×100, noisy bn",
                    noisy_drift,
                    noisy_accuracy,
                    [0.6, 0.7],
                ),
            ],
        }
    }

    #[test]
    fn three_networks_from_the_same_weights_the_noisy_one_seeded_by_the_run() {
        let runs = runs(300, 4);
        assert_eq!(runs.len(), 3);
        let names: Vec<&str> = runs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "ReLU 3×100, bn",
                "ReLU 3×100, plain",
                "ReLU 3×100, noisy bn"
            ]
        );
        assert_eq!(runs[2].config.bn_noise, Some(BnNoiseConfig::new(4)));
        assert_eq!(
            (runs[0].config.bn_noise.as_ref(), runs[2].config.norm),
            (None, Norm::Batch)
        );
        for run in &runs {
            assert_eq!(run.config.weight_init, runs[0].config.weight_init);
            assert_eq!(
                (run.ics, run.probe, run.measure_every),
                (Some(LR), Some(Probe { layer: 2, unit: 0 }), EVERY)
            );
        }
    }

    #[test]
    fn santurkars_three_claims_are_each_counted() {
        let findings = findings(&[summary(0.3, 0.948, 0.8)]);
        assert_eq!(
            findings,
            "The probed unit's median input changed by 0.300 per measurement with noisy batch \
             norm, 0.100 without batch norm and 0.050 with it (absolute change between \
             measurements): more with noisy batch norm than without in this run. Noisy batch \
             norm ended at 94.80% test accuracy, batch norm at 95.00% and the plain network at \
             90.00%: within 1 point of batch norm in this run. When the layers below took their \
             step, a layer's gradient moved by 0.5000 with batch norm and 0.2000 without (ℓ2 \
             distance), at a cosine of 0.800 against 0.900: no better aligned with batch norm in \
             this run. Santurkar et al. (2018) found that noisy batch norm, whose inputs move \
             more than a plain network's, trains like batch norm (Figure 2), and that batch norm \
             does not reduce internal covariate shift measured this way (Figure 5): reproduced \
             in every seed."
        );
        let findings = super::findings(&[summary(0.3, 0.948, 0.8), summary(0.05, 0.9, 0.95)]);
        assert!(
            findings.contains("more with noisy batch norm than without in 1 of 2 seeds"),
            "{findings}"
        );
        assert!(
            findings.contains("within 1 point of batch norm in 1 of 2 seeds"),
            "{findings}"
        );
        assert!(
            findings.ends_with("(Figure 5): partly reproduced."),
            "{findings}"
        );
        let findings = super::findings(&[summary(0.05, 0.5, 0.95)]);
        assert!(
            findings.ends_with("(Figure 5): not reproduced."),
            "{findings}"
        );
    }

    #[test]
    fn the_summary_reads_the_median_and_the_shift_after_step_0() {
        let point = |step, median: f64, ics: Vec<[f64; 2]>| crate::lab::run::Point {
            step,
            accuracy: 0.5,
            train_loss: None,
            probe: Some([median - 1.0, median, median + 1.0]),
            landscape: None,
            ics: Some(ics),
        };
        let outcome = Outcome {
            name: "ReLU 3×100, bn".into(),
            config: MlpConfig::new(Norm::Batch),
            seed: 0,
            lr: LR,
            batch_size: BATCH,
            steps: 200,
            diverged_at: None,
            mean_loss: 1.0,
            final_loss: 1.0,
            test_accuracy: 0.75,
            curve: vec![
                point(0, 0.0, vec![[9.0, 0.0], [9.0, 0.0]]),
                point(100, 1.0, vec![[1.0, 0.5], [3.0, 0.7]]),
                point(200, 0.5, vec![[2.0, 0.9], [2.0, 0.9]]),
            ],
            initial_gradients: None,
            seconds: 0.0,
            model: None,
        };
        let n = &summarize(&[outcome]).networks[0];
        assert_eq!(n.median, [0.0, 1.0, 0.5]);
        assert_eq!((n.median_drift, n.median_swing), (0.75, 1.0));
        assert_eq!(n.ics, [[9.0, 0.0], [2.0, 0.6], [2.0, 0.9]]);
        assert_eq!(n.ics_means, [2.0, 0.75]);
    }
}
