//! `depth`: MLPs of 2 to 50 hidden layers of 100 units, with and without batch norm: the
//! gradient of each layer's weights at initialization, and whether each depth trains in a fixed
//! number of steps (Yang, Pennington, Rao, Sohl-Dickstein & Schoenholz 2019, "A Mean Field
//! Theory of Batch Normalization"). Its figure is drawn in `figure.rs`.

use burn::nn::Initializer;
use mnist_bn_model::{Activation, MlpConfig, Norm};

mod figure;
mod summary;

pub use summary::{DepthNetwork, DepthRow, DepthSummary};

use super::common::{Analysis, pair, sgd};
use super::seeds::{Spread, in_seeds, mean_word, score, transpose};
use crate::lab::run::{LabData, Outcome, Run};
use crate::plot::figure::Figure;
use figure::figure;
use summary::{BN, PLAIN_NET, Which, accuracy, activation_name, display, summarize};

/// Hidden layers of the networks.
const DEPTHS: [usize; 6] = [2, 5, 10, 20, 35, 50];

/// Units in every hidden layer.
const WIDTH: usize = 100;

/// The two learning rates each depth trains at.
const LRS: [f64; 2] = [0.01, 0.1];

/// Batch size.
const BATCH: usize = 60;

/// Test accuracy above which a network counts as having trained.
const TRAINED: f64 = 0.5;

/// The depths whose per-layer gradients the figure draws.
const PROFILED: [usize; 3] = [10, 20, 50];

/// The two kinds of network: ReLU with He initialization, and tanh with weights of variance
/// 1/fan_in (both the initializations their activations are usually given).
const FAMILIES: [(Activation, f64); 2] = [
    (Activation::Relu, std::f64::consts::SQRT_2),
    (Activation::Tanh, 1.0),
];

/// Every family, depth and learning rate, with and without batch norm; the runs at the first
/// learning rate record the gradients at initialization (the same at both rates).
pub(super) fn runs(steps: usize, seed: u64) -> Vec<Run> {
    let mut runs = Vec::new();
    for (activation, gain) in FAMILIES {
        for depth in DEPTHS {
            for (i, lr) in LRS.into_iter().enumerate() {
                let config = MlpConfig::new(Norm::Batch)
                    .with_hidden(vec![WIDTH; depth])
                    .with_activation(activation)
                    .with_weight_init(Some(Initializer::KaimingNormal {
                        gain,
                        fan_out_only: false,
                    }));
                let setting = format!("{}, depth {depth}, lr {lr}", activation_name(activation));
                runs.extend(pair(&setting, config, |name, config| Run {
                    initial_gradients: i == 0,
                    ..Run::new(name, config, sgd(lr, BATCH, seed), steps)
                }));
            }
        }
    }
    runs
}

/// The section and figure of the outcomes of [`runs`], one list per seed.
pub(super) fn report(
    per_seed: Vec<Vec<Outcome>>,
    data: &LabData,
) -> (Analysis<DepthSummary>, Figure) {
    let steps = per_seed.iter().flatten().next().map_or(0, |o| o.steps);
    let seeds: Vec<DepthSummary> = per_seed.iter().map(|o| summarize(o, LRS.len())).collect();
    let (table, findings, figure) = (
        table(&seeds),
        findings(&seeds, steps),
        figure(&seeds, &LRS, &PROFILED),
    );
    let analysis = Analysis {
        question: "Does batch norm make gradients explode in a deep network at initialization, \
             and how deep a network still trains? (Yang et al. 2019)",
        setup: format!(
            "784, then 2 to 50 hidden layers of {WIDTH} units, 10; ReLU with He initialization \
             (weights normal with variance 2/fan_in) or tanh (variance 1/fan_in), biases 0, the \
             same weights with and without batch norm. At initialization, the norm of the \
             loss's gradient with respect to each layer's weights on the first {BATCH} training \
             images (batch statistics, as the first step sees them). Then {steps} steps of \
             plain SGD, batch {BATCH}, over the {} training images at lr {} and at lr {}; a \
             network trained if its {}test accuracy (eval mode) is above {:.0}%.",
            data.train.len(),
            LRS[0],
            LRS[1],
            mean_word(seeds.len()),
            100.0 * TRAINED
        ),
        table,
        findings,
        summary: seeds,
        runs: per_seed.into_iter().flatten().collect(),
    };
    (analysis, figure)
}

/// A ratio of gradient norms over the seeds: `1.2e3`, over several `1.2e3 (8.1e2–1.6e3)`.
fn ratio(spread: Spread) -> String {
    match spread.seeds {
        1 => format!("{:.1e}", spread.mean),
        _ => format!(
            "{:.1e} ({:.1e}–{:.1e})",
            spread.mean, spread.min, spread.max
        ),
    }
}

fn table(seeds: &[DepthSummary]) -> String {
    let rows: Vec<Vec<String>> = transpose(seeds, |s| &s.rows)
        .iter()
        .map(|row| {
            let mut cells = vec![
                display(&row[0].activation).to_string(),
                row[0].depth.to_string(),
            ];
            for net in [BN, PLAIN_NET] {
                cells.push(ratio(Spread::over(row, |r| net.of(r).first_to_last)));
            }
            for i in 0..LRS.len() {
                for net in [BN, PLAIN_NET] {
                    let (a, d) = accuracy(row, net, i);
                    cells.push(score(a, d));
                }
            }
            cells
        })
        .collect();
    let header: Vec<String> = [
        "activation".to_string(),
        "hidden layers".into(),
        "‖∇W₁‖ / ‖∇W_out‖ at init, BN".into(),
        "‖∇W₁‖ / ‖∇W_out‖ at init, plain".into(),
    ]
    .into_iter()
    .chain(LRS.iter().flat_map(|lr| {
        [
            format!("test accuracy, lr {lr}, BN"),
            format!("test accuracy, lr {lr}, plain"),
        ]
    }))
    .collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    super::common::table(&header, &rows)
}

/// Whether the gradients exploded with depth in one family (its rows, shallowest first): with
/// batch norm the first-to-last ratio at the deepest network is more than 10 times that at the
/// shallowest, and more than 10 times the plain network's at the deepest.
fn exploded(first_to_last: impl Fn(usize, Which) -> f64, depths: usize) -> bool {
    let (shallow, deep) = (0, depths - 1);
    first_to_last(deep, BN) > 10.0 * first_to_last(shallow, BN)
        && first_to_last(deep, BN) > 10.0 * first_to_last(deep, PLAIN_NET)
}

/// How the gradient ratio grows with depth in each family (means over the seeds), the deepest
/// network that trained at each learning rate, and in how many seeds the explosion Yang et al.
/// predict shows.
fn findings(seeds: &[DepthSummary], steps: usize) -> String {
    let n = seeds.len();
    let rows = transpose(seeds, |s| &s.rows);
    let word = mean_word(n);
    let mut sentences = Vec::new();
    let mut verdicts = Vec::new();
    for (activation, _) in FAMILIES {
        let name = activation.name();
        let family: Vec<&Vec<&DepthRow>> =
            rows.iter().filter(|r| r[0].activation == name).collect();
        let (Some(shallow), Some(deep)) = (family.first(), family.last()) else {
            continue;
        };
        let ratio_of =
            |row: &[&DepthRow], net: Which| Spread::over(row, |r| net.of(r).first_to_last);
        let depth = deep[0].depth;
        // The growth per layer: the deepest network's ratio spread over its layers.
        let per_layer = |net: Which| ratio_of(deep, net).mean.powf(1.0 / depth as f64);
        sentences.push(format!(
            "{}: with batch norm the first layer's gradient is {} times the output layer's at {} \
             hidden layers and {} times at {depth} (a factor of {:.2} per layer); without, {} \
             and {} ({:.2} per layer).",
            activation_name(activation),
            ratio(ratio_of(shallow, BN)),
            shallow[0].depth,
            ratio(ratio_of(deep, BN)),
            per_layer(BN),
            ratio(ratio_of(shallow, PLAIN_NET)),
            ratio(ratio_of(deep, PLAIN_NET)),
            per_layer(PLAIN_NET),
        ));
        let deepest = |net: Which, i: usize| {
            family
                .iter()
                .filter(|row| accuracy(row, net, i).0.mean > TRAINED)
                .map(|row| row[0].depth)
                .max()
                .map_or("at no depth".to_string(), |d| {
                    format!("up to {d} hidden layers")
                })
        };
        let trained: Vec<String> = LRS
            .iter()
            .enumerate()
            .map(|(i, lr)| {
                format!(
                    "at lr {lr} {} with batch norm and {} without",
                    deepest(BN, i),
                    deepest(PLAIN_NET, i)
                )
            })
            .collect();
        sentences.push(format!(
            "After {steps} steps the {} networks trained ({word}test accuracy above {:.0}%) {}.",
            activation_name(activation),
            100.0 * TRAINED,
            trained.join("; ")
        ));
        let k = seeds
            .iter()
            .filter(|s| {
                let rows: Vec<&DepthRow> = s.rows.iter().filter(|r| r.activation == name).collect();
                exploded(|i, net| net.of(rows[i]).first_to_last, rows.len())
            })
            .count();
        verdicts.push((activation_name(activation), k));
    }
    let verdict = verdicts
        .iter()
        .map(|(name, k)| format!("{name} {}", in_seeds(*k, n)))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "{} Yang et al. (2019) prove that batch norm itself makes the gradient grow \
         exponentially from the last layer to the first at initialization in a deep network \
         without skip connections, whatever the activation and weight scale; we count it \
         reproduced where the ratio with batch norm at the deepest network is more than 10 times \
         that at the shallowest and more than 10 times the plain network's: {verdict}.",
        sentences.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A network whose gradient norms fall by `factor` per layer from the first to the output
    /// layer, with the given test accuracies at the two rates.
    fn network(depth: usize, factor: f64, accuracy: [f64; 2]) -> DepthNetwork {
        let gradient_norms: Vec<f64> = (0..=depth)
            .map(|l| factor.powi((depth - l) as i32))
            .collect();
        DepthNetwork {
            first_to_last: gradient_norms[0] / gradient_norms[depth],
            gradient_norms,
            test_accuracy: accuracy.to_vec(),
            diverged_at: vec![None, None],
        }
    }

    /// Every family and depth: batch norm's gradients grow by `bn` per layer, the plain
    /// network's by `plain`; batch norm trains up to `bn_trains` hidden layers, the plain
    /// network at every depth.
    fn summary(bn: f64, plain: f64, bn_trains: usize) -> DepthSummary {
        let rows = FAMILIES
            .iter()
            .flat_map(|(activation, _)| {
                DEPTHS.map(|depth| {
                    let bn_accuracy = if depth <= bn_trains { 0.9 } else { 0.1 };
                    DepthRow {
                        activation: activation.name().to_string(),
                        depth,
                        batch_norm: network(depth, bn, [bn_accuracy, bn_accuracy]),
                        plain: network(depth, plain, [0.8, 0.85]),
                    }
                })
            })
            .collect();
        DepthSummary { rows }
    }

    #[test]
    fn every_family_depth_and_rate_in_pairs_that_share_their_weights() {
        let runs = runs(7, 3);
        assert_eq!(runs.len(), FAMILIES.len() * DEPTHS.len() * LRS.len() * 2);
        for (i, pair) in runs.chunks(2).enumerate() {
            assert_eq!(
                (pair[0].config.norm, pair[1].config.norm),
                (Norm::Batch, Norm::None)
            );
            assert_eq!(pair[0].config.weight_init, pair[1].config.weight_init);
            assert_eq!(pair[0].config.hidden, pair[1].config.hidden);
            let depth = DEPTHS[(i / LRS.len()) % DEPTHS.len()];
            assert_eq!(pair[0].config.hidden, vec![WIDTH; depth]);
            for run in pair {
                assert_eq!(run.training.lr, LRS[i % LRS.len()]);
                assert_eq!(
                    (run.training.seed, run.steps, run.training.batch_size),
                    (3, 7, BATCH)
                );
                // The gradients at initialization, once per network (they are the same at
                // both rates).
                assert_eq!(run.initial_gradients, i % LRS.len() == 0);
            }
        }
        assert_eq!(runs[0].name, "ReLU, depth 2, lr 0.01, bn");
        assert_eq!(runs.last().unwrap().name, "tanh, depth 50, lr 0.1, plain");
    }

    #[test]
    fn exploding_gradients_with_batch_norm_are_read_as_reproducing_yang() {
        let findings = findings(&[summary(1.5, 1.0, 20)], 500);
        assert!(
            findings.starts_with(&format!(
                "ReLU: with batch norm the first layer's gradient is {:.1e} times the output \
                 layer's at 2 hidden layers and {:.1e} times at 50 (a factor of 1.50 per layer); \
                 without, 1.0e0 and 1.0e0 (1.00 per layer). After 500 steps the ReLU networks \
                 trained (test accuracy above 50%) at lr 0.01 up to 20 hidden layers with batch \
                 norm and up to 50 hidden layers without; at lr 0.1 up to 20 hidden layers with \
                 batch norm and up to 50 hidden layers without. tanh:",
                1.5f64.powi(2),
                1.5f64.powi(50)
            )),
            "{findings}"
        );
        assert!(
            findings.ends_with(": ReLU in this run, tanh in this run."),
            "{findings}"
        );
    }

    #[test]
    fn gradients_that_do_not_grow_with_depth_are_no_reproduction() {
        // The same growth with and without batch norm: no explosion of batch norm's own.
        let findings = findings(&[summary(1.5, 1.5, 50)], 500);
        assert!(
            findings.ends_with(": ReLU in no seed, tanh in no seed."),
            "{findings}"
        );
        // Over seeds: one seed explodes, the other does not.
        let findings = super::findings(&[summary(1.5, 1.0, 50), summary(1.0, 1.0, 0)], 500);
        assert!(
            findings.ends_with(": ReLU in 1 of 2 seeds, tanh in 1 of 2 seeds."),
            "{findings}"
        );
        assert!(
            findings.contains(
                "at lr 0.01 at no depth with batch norm and up to 50 hidden layers without"
            ),
            "mean accuracy 0.5 at depth 50 with batch norm is not above 50%: {findings}"
        );
    }

    #[test]
    fn the_summary_takes_each_networks_gradients_and_both_rates() {
        let outcome = |norm, lr, gradients: Option<Vec<f64>>, accuracy| Outcome {
            name: String::new(),
            config: MlpConfig::new(norm).with_hidden(vec![WIDTH; 2]),
            seed: 0,
            lr,
            batch_size: BATCH,
            steps: 10,
            diverged_at: None,
            mean_loss: 1.0,
            final_loss: 1.0,
            test_accuracy: accuracy,
            curve: Vec::new(),
            initial_gradients: gradients,
            seconds: 0.0,
            model: None,
        };
        let summary = summarize(
            &[
                outcome(Norm::Batch, 0.01, Some(vec![8.0, 4.0, 2.0]), 0.9),
                outcome(Norm::None, 0.01, Some(vec![1.0, 1.0, 2.0]), 0.8),
                outcome(Norm::Batch, 0.1, None, 0.7),
                outcome(Norm::None, 0.1, None, 0.6),
            ],
            LRS.len(),
        );
        let row = &summary.rows[0];
        assert_eq!((row.activation.as_str(), row.depth), ("relu", 2));
        assert_eq!(row.batch_norm.gradient_norms, [8.0, 4.0, 2.0]);
        assert_eq!(
            (row.batch_norm.first_to_last, row.plain.first_to_last),
            (4.0, 0.5)
        );
        assert_eq!(row.batch_norm.test_accuracy, [0.9, 0.7]);
        assert_eq!(row.plain.test_accuracy, [0.8, 0.6]);
    }

    #[test]
    fn the_table_gives_the_ratio_and_each_rates_accuracy() {
        let table = table(&[summary(1.5, 1.0, 20)]);
        assert!(
            table.contains("| ReLU | 2 | 2.2e0 | 1.0e0 | 90.00% | 80.00% | 90.00% | 85.00% |"),
            "{table}"
        );
        let table = super::table(&[summary(1.5, 1.0, 20), summary(2.0, 1.0, 20)]);
        assert!(
            table.contains("| ReLU | 2 | 3.1e0 (2.2e0–4.0e0) | 1.0e0 (1.0e0–1.0e0) |"),
            "{table}"
        );
    }
}
