//! `init-scale`: eight hidden layers at initial weight scales from 1e-4 to 1, with and without
//! batch norm (cs231n).

use mnist_bn_model::{MlpConfig, Norm};
use plotters::chart::SeriesLabelPosition;
use serde::Serialize;

use super::common::{Analysis, Sweep, SweepNetwork, measured, normal, pair, pair_cells, sgd};
use super::seeds::{mean_word, transpose};
use crate::lab::run::{LabData, Outcome, Run};
use crate::plot::figure::{Figure, XAxis};

/// Learning rate of `init-scale` (plain SGD, as everywhere in the lab).
const INIT_SCALE_LR: f64 = 0.01;

/// What `init-scale` found: one row per weight scale, smallest first, and the two numbers that
/// explain a failure at the smallest scale.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct InitScaleSummary {
    /// The mean over the training images of ‖x‖², pixels scaled to [0, 1] (not in
    /// `lab.json`).
    #[serde(skip)]
    pub mean_squared_norm: f64,
    /// Batch norm's ε (not in `lab.json`: each run's config has it).
    #[serde(skip)]
    pub bn_epsilon: f64,
    /// Every scale tried.
    pub scales: Vec<InitScaleRow>,
}

/// One weight scale of `init-scale`.
///
/// The fields `lab.json` holds are in alphabetical order: this summary used to be a
/// `serde_json` map, which sorts its keys, and `lab.json` keeps that order.
#[derive(Debug, Clone, Serialize)]
pub struct InitScaleRow {
    /// The network with batch norm.
    pub batch_norm: InitScaleNetwork,
    /// The network without.
    pub plain: InitScaleNetwork,
    /// Standard deviation of the initial weights.
    pub std: f64,
}

/// One network at one weight scale.
#[derive(Debug, Clone, Serialize)]
pub struct InitScaleNetwork {
    /// The step at which it diverged, if it did.
    pub diverged_at: Option<usize>,
    /// Mean training loss of the last 100 steps.
    pub final_loss: f64,
    /// Test accuracy, eval mode.
    pub test_accuracy: f64,
}

/// The mean over images of ‖x‖², pixels scaled to [0, 1].
fn mean_squared_norm(data: &mnist_bn_data::Mnist) -> f64 {
    let sum: f64 = data
        .pixels()
        .iter()
        .map(|&p| f64::from(mnist_bn_data::pixel_to_f32(p)).powi(2))
        .sum();
    sum / data.len().max(1) as f64
}

fn init_scales() -> Vec<f64> {
    (0..10)
        .map(|i| 10f64.powf(-4.0 + 4.0 * i as f64 / 9.0))
        .collect()
}

/// The deep network with and without batch norm at each scale.
pub(super) fn runs(steps: usize, seed: u64) -> Vec<Run> {
    init_scales()
        .into_iter()
        .flat_map(|std| {
            let config = MlpConfig::new(Norm::Batch)
                .with_hidden(vec![100; 8])
                .with_weight_init(normal(std));
            pair(&format!("std {std:.1e}"), config, |name, config| {
                Run::new(name, config, sgd(INIT_SCALE_LR, 60, seed), steps)
            })
        })
        .collect()
}

/// The section and figure of the outcomes of [`runs`], one list per seed.
pub(super) fn report(
    per_seed: Vec<Vec<Outcome>>,
    data: &LabData,
) -> (Analysis<InitScaleSummary>, Figure) {
    let steps = per_seed.iter().flatten().next().map_or(0, |o| o.steps);
    let seeds: Vec<InitScaleSummary> = per_seed.iter().map(|o| summarize(o, data)).collect();
    let (table, findings) = (table(&seeds), findings(&seeds));
    let figure = figure(&seeds, steps);
    let analysis = Analysis {
        question: "How much does the initial scale of the weights matter in a deep network, with and \
             without batch norm? (cs231n)",
        setup: format!(
            "784, 8 hidden layers of 100 ReLUs, 10; initial weights normal with the standard \
                 deviation on the x axis (biases 0), the same for both networks; batch 60, plain SGD \
                 with lr {INIT_SCALE_LR}, {steps} steps over the {} training images. Final training loss: the mean of the last 100 \
                 steps; test accuracy in eval mode.",
            data.train.len()
        ),
        table,
        findings,
        summary: seeds,
        runs: per_seed.into_iter().flatten().collect(),
    };
    (analysis, figure)
}

fn summarize(outcomes: &[Outcome], data: &LabData) -> InitScaleSummary {
    let network = |o: &Outcome| InitScaleNetwork {
        diverged_at: o.diverged_at,
        final_loss: o.final_loss,
        test_accuracy: o.test_accuracy,
    };
    let scales = init_scales()
        .into_iter()
        .zip(outcomes.chunks(2))
        .map(|(std, pair)| InitScaleRow {
            batch_norm: network(&pair[0]),
            plain: network(&pair[1]),
            std,
        })
        .collect();
    InitScaleSummary {
        mean_squared_norm: mean_squared_norm(&data.train),
        bn_epsilon: outcomes.first().map_or(f64::NAN, |o| o.config.bn_epsilon),
        scales,
    }
}

type Pick = fn(&InitScaleRow) -> &InitScaleNetwork;
const BN: Pick = |r| &r.batch_norm;
const PLAIN: Pick = |r| &r.plain;

impl SweepNetwork for InitScaleNetwork {
    fn loss(&self) -> f64 {
        self.final_loss
    }

    fn accuracy(&self) -> f64 {
        self.test_accuracy
    }

    fn diverged_at(&self) -> Option<usize> {
        self.diverged_at
    }
}

fn table(seeds: &[InitScaleSummary]) -> String {
    let rows: Vec<Vec<String>> = transpose(seeds, |s| &s.scales)
        .iter()
        .map(|row| {
            let mut cells = vec![format!("{:.1e}", row[0].std)];
            cells.extend(pair_cells(measured(row, BN), measured(row, PLAIN)));
            cells
        })
        .collect();
    super::common::table(
        &[
            "weight std",
            "final training loss, BN",
            "final training loss, plain",
            "test accuracy, BN",
            "test accuracy, plain",
        ],
        &rows,
    )
}

/// Over which scales each network learned (on the mean over the seeds), and why batch norm
/// fails at the smallest one when it does.
fn findings(seeds: &[InitScaleSummary]) -> String {
    let Some(summary) = seeds.first() else {
        return String::new();
    };
    let rows = transpose(seeds, |s| &s.scales);
    let accuracy = |row: &[&InitScaleRow], net: Pick| measured(row, net).1;
    let trained = |net: Pick| -> Vec<f64> {
        rows.iter()
            .filter(|row| accuracy(row, net).mean > 0.9)
            .map(|row| row[0].std)
            .collect()
    };
    let range = |stds: &[f64]| match (stds.first(), stds.last()) {
        (Some(a), Some(_)) if stds.len() == 1 => format!("only at std {a:.1e}"),
        (Some(a), Some(b)) => format!(
            "for std from {a:.1e} to {b:.1e} ({} of {} scales)",
            stds.len(),
            rows.len()
        ),
        _ => "at none of the scales".into(),
    };
    let he = (2.0f64 / 100.0).sqrt();
    format!(
        "Without batch norm the 8-layer network learned ({}test accuracy above 90%) {}; with \
         batch norm {}. He initialization for 100 inputs, √(2/100) ≈ {he:.2}, is the scale a \
         plain ReLU network needs: smaller weights shrink the signal layer after layer until \
         the gradients vanish, larger ones blow it up until the loss overflows. Batch norm \
         rescales every hidden layer's output, which makes it (up to ε) independent of the \
         scale of the weights before it; the scale still changes how fast those weights move \
         relative to their size (large weights move slowly).{}",
        mean_word(seeds.len()),
        range(&trained(PLAIN)),
        range(&trained(BN)),
        match rows.first() {
            Some(row) if accuracy(row, BN).mean < 0.5 => {
                let std = row[0].std;
                // The variance of w·x over weights drawn N(0, std²) is std²·‖x‖².
                let variance = std.powi(2) * summary.mean_squared_norm;
                let bn = accuracy(row, BN).pct();
                if variance < summary.bn_epsilon {
                    format!(
                        " At std {std:.1e} batch norm fails too ({bn}): the first hidden \
                         layer's outputs start with a variance of about {variance:.1e} (std² \
                         times the images' mean ‖x‖²), below batch norm's ε = {:.0e}, so \
                         dividing by √(variance + ε) no longer restores unit variance, and each \
                         layer after it shrinks the signal further.",
                        summary.bn_epsilon
                    )
                } else {
                    format!(" At std {std:.1e} batch norm fails too ({bn}).")
                }
            }
            _ => String::new(),
        }
    )
}

/// Final training loss and test accuracy against the weight scale (log axis).
fn figure(seeds: &[InitScaleSummary], steps: usize) -> Figure {
    Sweep {
        title: format!("8 hidden layers, {steps} steps, by initial weight scale"),
        x_axis: XAxis::Log10,
        x_label: "initial weight std",
        points: transpose(seeds, |s| &s.scales)
            .iter()
            .map(|row| {
                let n = |net: Pick| {
                    let (loss, accuracy, _) = measured(row, net);
                    (loss, accuracy)
                };
                (row[0].std, [n(BN), n(PLAIN)])
            })
            .collect(),
        titles: ["final training loss", "test accuracy"],
        loss_label: "training loss (last 100 steps)",
        accuracy_range: Some((0.0, 1.0)),
        legends: [
            SeriesLabelPosition::MiddleMiddle,
            SeriesLabelPosition::MiddleMiddle,
        ],
    }
    .figure()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lab's ten scales with the given test accuracies (batch norm, plain); ε = 1e-5 and
    /// a mean ‖x‖² of 100.
    fn summary(accuracies: [(f64, f64); 10]) -> InitScaleSummary {
        let network = |test_accuracy| InitScaleNetwork {
            diverged_at: None,
            final_loss: 0.2,
            test_accuracy,
        };
        let scales = init_scales()
            .into_iter()
            .zip(accuracies)
            .map(|(std, (bn, plain))| InitScaleRow {
                batch_norm: network(bn),
                plain: network(plain),
                std,
            })
            .collect();
        InitScaleSummary {
            mean_squared_norm: 100.0,
            bn_epsilon: 1e-5,
            scales,
        }
    }

    /// Plain learns only at the eighth scale (0.13); batch norm from the second on, failing
    /// at the first with `first` test accuracy.
    fn typical(first: f64) -> InitScaleSummary {
        let mut accuracies = [(0.95, 0.1); 10];
        accuracies[0].0 = first;
        accuracies[7].1 = 0.93;
        summary(accuracies)
    }

    #[test]
    fn the_init_scales_span_four_decades() {
        let scales = init_scales();
        assert_eq!(scales.len(), 10);
        assert!((scales[0] - 1e-4).abs() < 1e-12 && (scales[9] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn where_each_network_learned_is_read_from_the_scales() {
        let findings = findings(&[typical(0.98)]);
        assert!(
            findings.starts_with(
                "Without batch norm the 8-layer network learned (test accuracy above 90%) only \
                 at std 1.3e-1; with batch norm for std from 1.0e-4 to 1.0e0 (10 of 10 scales). \
                 He initialization for 100 inputs, √(2/100) ≈ 0.14,"
            ),
            "{findings}"
        );
        assert!(
            findings.ends_with("(large weights move slowly)."),
            "{findings}"
        );
    }

    #[test]
    fn batch_norm_failing_under_its_epsilon_is_explained_by_the_variance() {
        // std 1e-4: variance 1e-8 × 100 = 1e-6 < ε = 1e-5.
        let findings = findings(&[typical(0.125)]);
        assert!(
            findings.contains("with batch norm for std from 2.8e-4 to 1.0e0 (9 of 10 scales)."),
            "{findings}"
        );
        assert!(
            findings.ends_with(
                " At std 1.0e-4 batch norm fails too (12.50%): the first hidden layer's outputs \
                 start with a variance of about 1.0e-6 (std² times the images' mean ‖x‖²), below \
                 batch norm's ε = 1e-5, so dividing by √(variance + ε) no longer restores unit \
                 variance, and each layer after it shrinks the signal further."
            ),
            "{findings}"
        );
    }

    #[test]
    fn batch_norm_failing_above_its_epsilon_is_reported_without_a_cause() {
        let mut s = typical(0.3);
        s.mean_squared_norm = 1e4; // variance 1e-4 > ε
        let findings = findings(&[s]);
        assert!(
            findings.ends_with(
                "(large weights move slowly). At std 1.0e-4 batch norm fails too (30.00%)."
            ),
            "{findings}"
        );
    }

    #[test]
    fn a_network_that_learned_nowhere_is_reported_as_such() {
        let findings = findings(&[summary([(0.95, 0.5); 10])]);
        assert!(
            findings.starts_with(
                "Without batch norm the 8-layer network learned (test accuracy above 90%) at \
                 none of the scales; with batch norm for std from"
            ),
            "{findings}"
        );
    }

    #[test]
    fn over_seeds_a_failure_at_the_smallest_scale_is_read_from_the_mean() {
        // One seed fails at 1e-4 (12.5%), the other learns (95%): the mean, 53.75%, is no
        // failure; two failing seeds are, with their range.
        let findings = findings(&[typical(0.125), typical(0.95)]);
        assert!(
            findings.starts_with(
                "Without batch norm the 8-layer network learned (mean test accuracy above 90%)"
            ),
            "{findings}"
        );
        assert!(
            findings.ends_with("(large weights move slowly)."),
            "{findings}"
        );
        let findings = super::findings(&[typical(0.125), typical(0.3)]);
        assert!(
            findings.contains(" At std 1.0e-4 batch norm fails too (21.25% (12.50–30.00)): "),
            "{findings}"
        );
    }

    #[test]
    fn the_summary_keeps_lab_json_keys_and_values() {
        let mut s = summary([(0.5, 0.25); 10]);
        s.scales.truncate(1);
        s.scales[0].plain.diverged_at = Some(4);
        s.scales[0].plain.final_loss = f64::NAN;
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            "[{\"batch_norm\":{\"diverged_at\":null,\"final_loss\":0.2,\"test_accuracy\":0.5},\
             \"plain\":{\"diverged_at\":4,\"final_loss\":null,\"test_accuracy\":0.25},\
             \"std\":0.0001}]"
        );
    }
}
