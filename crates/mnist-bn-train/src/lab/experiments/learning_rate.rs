//! `learning-rate`: one epoch of the lesson's MLP with and without batch norm at twelve
//! learning rates from 1e-3 to 10 (Bjorck, Gomes, Selman & Weinberger 2018, Figure 1).

use plotters::chart::SeriesLabelPosition;
use serde::Serialize;

use super::common::{Analysis, Sweep, lesson_weights, pair, pair_cells, pct, sgd};
use crate::lab::driver::{LabData, Outcome, Run};
use crate::plot::figure::{Figure, XAxis};

/// Batch size of `learning-rate` (the lesson's).
const BATCH: usize = 64;

/// The highest training loss the figure draws.
const LOSS_DRAWN: f64 = 10.0;

/// Test accuracy above which a network counts as having learned in its one epoch.
const LEARNED: f64 = 0.9;

/// Twelve learning rates, evenly spaced in log10 from 1e-3 to 10.
fn learning_rates() -> Vec<f64> {
    (0..12)
        .map(|i| 10f64.powf(-3.0 + 4.0 * i as f64 / 11.0))
        .collect()
}

/// What `learning-rate` found: one row per learning rate, smallest first.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct LearningRateSummary {
    /// Every learning rate tried.
    pub rates: Vec<LearningRateRow>,
}

/// One learning rate of `learning-rate`.
#[derive(Debug, Clone, Serialize)]
pub struct LearningRateRow {
    /// The network with batch norm.
    pub batch_norm: LearningRateNetwork,
    /// The learning rate.
    pub lr: f64,
    /// The network without.
    pub plain: LearningRateNetwork,
}

/// One network after an epoch at one learning rate.
#[derive(Debug, Clone, Serialize)]
pub struct LearningRateNetwork {
    /// The step at which it diverged, if it did.
    pub diverged_at: Option<usize>,
    /// Test accuracy, eval mode.
    pub test_accuracy: f64,
    /// Mean training loss over the epoch (not a number when it diverged).
    pub train_loss: f64,
}

/// One epoch at each learning rate, with and without batch norm.
pub(super) fn runs(data: &LabData, seed: u64) -> Vec<Run> {
    let steps = data.train.len().div_ceil(BATCH);
    learning_rates()
        .into_iter()
        .flat_map(|lr| {
            pair(&format!("lr {lr:.1e}"), lesson_weights(), |name, config| {
                Run::new(name, config, sgd(lr, BATCH, seed), steps)
            })
        })
        .collect()
}

/// The section and figure of the outcomes of [`runs`].
pub(super) fn report(
    outcomes: Vec<Outcome>,
    data: &LabData,
) -> (Analysis<LearningRateSummary>, Figure) {
    let summary = summarize(&outcomes);
    let (table, findings, figure) = (table(&summary), findings(&summary), figure(&summary));
    let analysis = Analysis {
        question: "At which learning rates does each network train, with and without batch norm? \
             (Bjorck et al. 2018, Figure 1)",
        setup: format!(
            "The lesson's MLP (784-512-256-10; weights uniform in ±1/√fan_in as PyTorch draws \
             them, biases 0, the same for both networks), plain SGD, batch {BATCH}, one epoch \
             over the {} training images in file order at each of twelve learning rates from \
             1e-3 to 10, evenly spaced in log10; training loss is the mean over the epoch, test \
             accuracy in eval mode; a network learned if its test accuracy is above {:.0}%.",
            data.train.len(),
            100.0 * LEARNED
        ),
        table,
        findings,
        summary,
        runs: outcomes,
    };
    (analysis, figure)
}

fn summarize(outcomes: &[Outcome]) -> LearningRateSummary {
    let network = |o: &Outcome| LearningRateNetwork {
        diverged_at: o.diverged_at,
        test_accuracy: o.test_accuracy,
        train_loss: o.mean_loss,
    };
    let rates = outcomes
        .chunks(2)
        .map(|pair| LearningRateRow {
            batch_norm: network(&pair[0]),
            lr: pair[0].lr,
            plain: network(&pair[1]),
        })
        .collect();
    LearningRateSummary { rates }
}

fn table(summary: &LearningRateSummary) -> String {
    let rows: Vec<Vec<String>> = summary
        .rates
        .iter()
        .map(|r| {
            let n = |n: &LearningRateNetwork| (n.train_loss, n.test_accuracy, n.diverged_at);
            let mut cells = vec![format!("{:.1e}", r.lr)];
            cells.extend(pair_cells(n(&r.batch_norm), n(&r.plain)));
            cells
        })
        .collect();
    super::common::table(
        &[
            "learning rate",
            "training loss, BN",
            "training loss, plain",
            "test accuracy, BN",
            "test accuracy, plain",
        ],
        &rows,
    )
}

/// Where each network learned and diverged, where it did best, and whether batch norm trained
/// at higher learning rates than the plain network, as Bjorck et al. found.
fn findings(summary: &LearningRateSummary) -> String {
    let rows = &summary.rates;
    let Some(first) = rows.first() else {
        return String::new();
    };
    type Pick = fn(&LearningRateRow) -> &LearningRateNetwork;
    let (bn, plain): (Pick, Pick) = (|r| &r.batch_norm, |r| &r.plain);
    let learned = |net: Pick| -> Vec<f64> {
        rows.iter()
            .filter(|r| net(r).test_accuracy > LEARNED)
            .map(|r| r.lr)
            .collect()
    };
    let range = |lrs: &[f64]| match lrs {
        [] => "at none of the learning rates".to_string(),
        [a] => format!("only at lr {a:.1e}"),
        [a, .., b] => format!(
            "from lr {a:.1e} to {b:.1e} ({} of {})",
            lrs.len(),
            rows.len()
        ),
    };
    let diverged = |net: Pick| -> String {
        let lrs: Vec<String> = rows
            .iter()
            .filter(|r| net(r).diverged_at.is_some())
            .map(|r| format!("{:.1e}", r.lr))
            .collect();
        match lrs.as_slice() {
            [] => "at none".to_string(),
            lrs => format!("at lr {}", lrs.join(", ")),
        }
    };
    let best = |net: Pick| {
        rows.iter().fold(first, |best, r| {
            if net(r).test_accuracy > net(best).test_accuracy {
                r
            } else {
                best
            }
        })
    };
    let (bn_best, plain_best) = (best(bn), best(plain));
    let (bn_learned, plain_learned) = (learned(bn), learned(plain));
    let higher = match (bn_learned.last(), plain_learned.last()) {
        (Some(b), Some(p)) => b > p,
        (Some(_), None) => true,
        _ => false,
    };
    format!(
        "With batch norm the network learned (test accuracy above {:.0}%) {}; without, {}. It \
         diverged {} with batch norm and {} without. The best test accuracy is {} at lr {:.1e} \
         with batch norm and {} at lr {:.1e} without. {}",
        100.0 * LEARNED,
        range(&bn_learned),
        range(&plain_learned),
        diverged(bn),
        diverged(plain),
        pct(bn_best.batch_norm.test_accuracy),
        bn_best.lr,
        pct(plain_best.plain.test_accuracy),
        plain_best.lr,
        if higher {
            "As Bjorck et al. (2018, Figure 1) found, batch norm lets the network learn at \
             learning rates where the plain one does not: reproduced in this run."
        } else {
            "Bjorck et al. (2018, Figure 1) found that batch norm lets a network learn at \
             higher learning rates than without; in this run it did not learn at a higher one: \
             not reproduced here."
        }
    )
}

/// Training loss and test accuracy against the learning rate (log axis).
fn figure(summary: &LearningRateSummary) -> Figure {
    Sweep {
        title: format!("One epoch of the lesson's MLP at each learning rate (batch {BATCH})"),
        x_axis: XAxis::Log10,
        x_label: "learning rate",
        points: summary
            .rates
            .iter()
            .map(|r| {
                // A blown-up loss (the plain network's reaches 1e10) would flatten the
                // panel: losses above the cap are not drawn.
                let shown = |loss: f64| if loss <= LOSS_DRAWN { loss } else { f64::NAN };
                let n = |n: &LearningRateNetwork| (shown(n.train_loss), n.test_accuracy);
                (r.lr, [n(&r.batch_norm), n(&r.plain)])
            })
            .collect(),
        titles: [
            "training loss (mean over the epoch; above 10 not drawn)",
            "test accuracy (eval mode)",
        ],
        loss_label: "training loss",
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
    use mnist_bn_model::Norm;

    /// The twelve learning rates with the given test accuracies (batch norm, plain), none
    /// diverged.
    fn summary(accuracies: [(f64, f64); 12]) -> LearningRateSummary {
        let network = |test_accuracy| LearningRateNetwork {
            diverged_at: None,
            test_accuracy,
            train_loss: 0.3,
        };
        let rates = learning_rates()
            .into_iter()
            .zip(accuracies)
            .map(|(lr, (bn, plain))| LearningRateRow {
                batch_norm: network(bn),
                lr,
                plain: network(plain),
            })
            .collect();
        LearningRateSummary { rates }
    }

    #[test]
    fn twelve_rates_from_1e_3_to_10_in_pairs_from_the_same_weights() {
        let lrs = learning_rates();
        assert_eq!(lrs.len(), 12);
        assert!((lrs[0] - 1e-3).abs() < 1e-15 && (lrs[11] - 10.0).abs() < 1e-12);
        for w in lrs.windows(2) {
            assert!((w[1] / w[0] - 10f64.powf(4.0 / 11.0)).abs() < 1e-12);
        }
        let train = mnist_bn_data::Mnist::from_raw(vec![0; 130 * 784], vec![0; 130]);
        let test = mnist_bn_data::Mnist::from_raw(vec![0; 784], vec![0]);
        let runs = runs(&LabData::new(train, test), 4);
        assert_eq!(runs.len(), 24);
        for (pair, lr) in runs.chunks(2).zip(lrs) {
            assert_eq!(
                (pair[0].config.norm, pair[1].config.norm),
                (Norm::Batch, Norm::None)
            );
            assert_eq!(pair[0].config.weight_init, pair[1].config.weight_init);
            for run in pair {
                assert_eq!((run.training.lr, run.training.batch_size), (lr, 64));
                assert_eq!((run.training.seed, run.steps), (4, 3));
            }
        }
    }

    #[test]
    fn batch_norm_learning_at_higher_rates_is_read_as_reproducing_bjorck() {
        let mut s = summary([
            (0.85, 0.80),
            (0.92, 0.86),
            (0.95, 0.91),
            (0.96, 0.93),
            (0.97, 0.94),
            (0.975, 0.92),
            (0.97, 0.5),
            (0.96, 0.1),
            (0.93, 0.1),
            (0.6, 0.1),
            (0.1, 0.1),
            (0.1, 0.1),
        ]);
        for r in &mut s.rates[7..] {
            r.plain.diverged_at = Some(3);
        }
        s.rates[11].batch_norm.diverged_at = Some(9);
        let findings = findings(&s);
        assert_eq!(
            findings,
            "With batch norm the network learned (test accuracy above 90%) from lr 2.3e-3 to \
             8.1e-1 (8 of 12); without, from lr 5.3e-3 to 6.6e-2 (4 of 12). It diverged at lr \
             1.0e1 with batch norm and at lr 3.5e-1, 8.1e-1, 1.9e0, 4.3e0, 1.0e1 without. The \
             best test accuracy is 97.50% at lr 6.6e-2 with batch norm and 94.00% at lr 2.8e-2 \
             without. As Bjorck et al. (2018, Figure 1) found, batch norm lets the network \
             learn at learning rates where the plain one does not: reproduced in this run."
        );
    }

    #[test]
    fn where_batch_norm_learns_at_no_higher_rate_the_findings_say_so() {
        let mut s = summary([(0.5, 0.5); 12]);
        s.rates[3].plain.test_accuracy = 0.95;
        s.rates[2].batch_norm.test_accuracy = 0.95;
        let findings = findings(&s);
        assert!(
            findings.starts_with(
                "With batch norm the network learned (test accuracy above 90%) only at lr \
                 5.3e-3; without, only at lr 1.2e-2. It diverged at none with batch norm and at \
                 none without."
            ),
            "{findings}"
        );
        assert!(findings.ends_with("not reproduced here."), "{findings}");
        // Neither network learning anywhere is no reproduction either.
        let findings = super::findings(&summary([(0.5, 0.5); 12]));
        assert!(findings.contains("at none of the learning rates; without, at none of the"));
        assert!(findings.ends_with("not reproduced here."), "{findings}");
    }

    #[test]
    fn the_summary_takes_each_networks_epoch_mean_and_its_own_rate() {
        let outcome = |name: &str, norm, lr, mean_loss| Outcome {
            name: name.into(),
            config: mnist_bn_model::MlpConfig {
                norm,
                ..lesson_weights()
            },
            lr,
            batch_size: BATCH,
            steps: 938,
            diverged_at: None,
            mean_loss,
            final_loss: mean_loss / 2.0,
            test_accuracy: 0.5,
            curve: Vec::new(),
            seconds: 0.0,
            model: None,
        };
        let summary = summarize(&[
            outcome("lr 1.0e-3, bn", Norm::Batch, 1e-3, 0.8),
            outcome("lr 1.0e-3, plain", Norm::None, 1e-3, 1.6),
        ]);
        let row = &summary.rates[0];
        assert_eq!(row.lr, 1e-3);
        assert_eq!(
            (row.batch_norm.train_loss, row.plain.train_loss),
            (0.8, 1.6)
        );
    }

    #[test]
    fn a_tie_for_the_best_accuracy_names_the_lowest_rate() {
        let mut s = summary([(0.5, 0.5); 12]);
        s.rates[4].batch_norm.test_accuracy = 0.97;
        s.rates[6].batch_norm.test_accuracy = 0.97;
        assert!(
            findings(&s).contains("The best test accuracy is 97.00% at lr 2.8e-2 with batch norm"),
            "{}",
            findings(&s)
        );
    }

    #[test]
    fn the_table_names_each_rate_and_divergence() {
        let mut s = summary([(0.9, 0.8); 12]);
        s.rates[11].plain.diverged_at = Some(2);
        let table = table(&s);
        assert!(
            table.contains("| 1.0e-3 | 0.3000 | 0.3000 | 90.00% | 80.00% |"),
            "{table}"
        );
        assert!(
            table.contains(
                "| 1.0e1 | 0.3000 | diverged at step 2 | 90.00% | 80.00% (diverged at step 2) |"
            ),
            "{table}"
        );
    }
}
