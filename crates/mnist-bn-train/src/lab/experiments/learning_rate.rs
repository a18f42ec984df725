//! `learning-rate`: one epoch of the lesson's MLP with and without batch norm at twelve
//! learning rates from 1e-3 to 10 (Bjorck, Gomes, Selman & Weinberger 2018, Figure 1).

use plotters::chart::SeriesLabelPosition;
use serde::Serialize;

use super::common::{
    Analysis, Sweep, SweepNetwork, lesson_weights, measured, pair, pair_cells, sgd,
};
use super::seeds::{Spread, in_seeds, mean_word, transpose};
use crate::lab::run::{LabData, Outcome, Run};
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

/// The section and figure of the outcomes of [`runs`], one list per seed.
pub(super) fn report(
    per_seed: Vec<Vec<Outcome>>,
    data: &LabData,
) -> (Analysis<LearningRateSummary>, Figure) {
    let seeds: Vec<LearningRateSummary> = per_seed.iter().map(|o| summarize(o)).collect();
    let (table, findings, figure) = (table(&seeds), findings(&seeds), figure(&seeds));
    let analysis = Analysis {
        question: "At which learning rates does each network train, with and without batch norm? \
             (Bjorck et al. 2018, Figure 1)",
        setup: format!(
            "The lesson's MLP (784-512-256-10; weights uniform in ±1/√fan_in as PyTorch draws \
             them, biases 0, the same for both networks), plain SGD, batch {BATCH}, one epoch \
             over the {} training images in file order at each of twelve learning rates from \
             1e-3 to 10, evenly spaced in log10; training loss is the mean over the epoch, test \
             accuracy in eval mode; a network learned if its {}test accuracy is above {:.0}%.",
            data.train.len(),
            mean_word(seeds.len()),
            100.0 * LEARNED
        ),
        table,
        findings,
        summary: seeds,
        runs: per_seed.into_iter().flatten().collect(),
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

type Pick = fn(&LearningRateRow) -> &LearningRateNetwork;
const BN: Pick = |r| &r.batch_norm;
const PLAIN: Pick = |r| &r.plain;

impl SweepNetwork for LearningRateNetwork {
    fn loss(&self) -> f64 {
        self.train_loss
    }

    fn accuracy(&self) -> f64 {
        self.test_accuracy
    }

    fn diverged_at(&self) -> Option<usize> {
        self.diverged_at
    }
}

fn table(seeds: &[LearningRateSummary]) -> String {
    let rows: Vec<Vec<String>> = transpose(seeds, |s| &s.rates)
        .iter()
        .map(|row| {
            let mut cells = vec![format!("{:.1e}", row[0].lr)];
            cells.extend(pair_cells(measured(row, BN), measured(row, PLAIN)));
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

/// The learning rates at which `net` learned (test accuracy above [`LEARNED`]), given each
/// rate's accuracy.
fn learned(
    rows: &[Vec<&LearningRateRow>],
    accuracy: impl Fn(&[&LearningRateRow]) -> f64,
) -> Vec<f64> {
    rows.iter()
        .filter(|row| accuracy(row) > LEARNED)
        .map(|row| row[0].lr)
        .collect()
}

/// Whether batch norm learned at a higher learning rate than the plain network (given the
/// rates where each learned).
fn higher(bn: &[f64], plain: &[f64]) -> bool {
    match (bn.last(), plain.last()) {
        (Some(b), Some(p)) => b > p,
        (Some(_), None) => true,
        _ => false,
    }
}

/// Where each network learned and diverged, where it did best (on the mean over the seeds), and
/// in how many seeds batch norm trained at higher learning rates than the plain network, as
/// Bjorck et al. found.
fn findings(seeds: &[LearningRateSummary]) -> String {
    let n = seeds.len();
    let rows = transpose(seeds, |s| &s.rates);
    if rows.is_empty() {
        return String::new();
    }
    let mean = |net: Pick| move |row: &[&LearningRateRow]| measured(row, net).1.mean;
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
            .filter_map(|row| {
                let d = measured(row, net).2;
                let lr = format!("{:.1e}", row[0].lr);
                match d.count {
                    0 => None,
                    c if c == n => Some(lr),
                    c => Some(format!("{lr} ({c} of {n} seeds)")),
                }
            })
            .collect();
        match lrs.as_slice() {
            [] => "at none".to_string(),
            lrs => format!("at lr {}", lrs.join(", ")),
        }
    };
    let best = |net: Pick| {
        let mut best = 0;
        for (i, row) in rows.iter().enumerate() {
            if mean(net)(row) > mean(net)(&rows[best]) {
                best = i;
            }
        }
        (measured(&rows[best], net).1, rows[best][0].lr)
    };
    let ((bn_best, bn_lr), (plain_best, plain_lr)) = (best(BN), best(PLAIN));
    let per_seed = |s: &LearningRateSummary| {
        let rows: Vec<Vec<&LearningRateRow>> = s.rates.iter().map(|r| vec![r]).collect();
        let acc = |net: Pick| move |row: &[&LearningRateRow]| net(row[0]).test_accuracy;
        higher(&learned(&rows, acc(BN)), &learned(&rows, acc(PLAIN)))
    };
    let reproduced = seeds.iter().filter(|s| per_seed(s)).count();
    let claim = "batch norm lets a network learn at higher learning rates than without";
    let verdict = match reproduced {
        k if k == n => format!(
            "As Bjorck et al. (2018, Figure 1) found, batch norm lets the network learn at \
             learning rates where the plain one does not: reproduced {}.",
            in_seeds(k, n)
        ),
        0 => format!(
            "Bjorck et al. (2018, Figure 1) found that {claim}; here it did not learn at a \
             higher one {}: not reproduced.",
            if n == 1 { "in this run" } else { "in any seed" }
        ),
        k => format!(
            "Bjorck et al. (2018, Figure 1) found that {claim}; here it learned at a higher \
             one {}: reproduced in some seeds only.",
            in_seeds(k, n)
        ),
    };
    let word = mean_word(n);
    format!(
        "With batch norm the network learned ({word}test accuracy above {:.0}%) {}; without, {}. \
         It diverged {} with batch norm and {} without. The best {word}test accuracy is {} at \
         lr {bn_lr:.1e} with batch norm and {} at lr {plain_lr:.1e} without. {verdict}",
        100.0 * LEARNED,
        range(&learned(&rows, mean(BN))),
        range(&learned(&rows, mean(PLAIN))),
        diverged(BN),
        diverged(PLAIN),
        bn_best.pct(),
        plain_best.pct(),
    )
}

/// Training loss and test accuracy against the learning rate (log axis).
fn figure(seeds: &[LearningRateSummary]) -> Figure {
    Sweep {
        title: format!("One epoch of the lesson's MLP at each learning rate (batch {BATCH})"),
        x_axis: XAxis::Log10,
        x_label: "learning rate",
        points: transpose(seeds, |s| &s.rates)
            .iter()
            .map(|row| {
                // A blown-up loss (the plain network's reaches 1e10) would flatten the
                // panel: losses above the cap are not drawn (nor the mean of a rate where a
                // seed's is).
                let shown = |loss: f64| if loss <= LOSS_DRAWN { loss } else { f64::NAN };
                let n = |net: Pick| {
                    let loss = Spread::over(row, |r| shown(net(r).train_loss));
                    (loss, measured(row, net).1)
                };
                (row[0].lr, [n(BN), n(PLAIN)])
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
        let findings = findings(&[s]);
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
        let findings = findings(&[s]);
        assert!(
            findings.starts_with(
                "With batch norm the network learned (test accuracy above 90%) only at lr \
                 5.3e-3; without, only at lr 1.2e-2. It diverged at none with batch norm and at \
                 none without."
            ),
            "{findings}"
        );
        assert!(findings.ends_with("not reproduced."), "{findings}");
        // Neither network learning anywhere is no reproduction either.
        let findings = super::findings(&[summary([(0.5, 0.5); 12])]);
        assert!(findings.contains("at none of the learning rates; without, at none of the"));
        assert!(findings.ends_with("not reproduced."), "{findings}");
    }

    #[test]
    fn the_summary_takes_each_networks_epoch_mean_and_its_own_rate() {
        let outcome = |name: &str, norm, lr, mean_loss| Outcome {
            name: name.into(),
            config: mnist_bn_model::MlpConfig {
                norm,
                ..lesson_weights()
            },
            seed: 0,
            lr,
            batch_size: BATCH,
            steps: 938,
            diverged_at: None,
            mean_loss,
            final_loss: mean_loss / 2.0,
            test_accuracy: 0.5,
            curve: Vec::new(),
            initial_gradients: None,
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
            findings(&[s.clone()])
                .contains("The best test accuracy is 97.00% at lr 2.8e-2 with batch norm"),
            "{}",
            findings(&[s])
        );
    }

    #[test]
    fn over_seeds_the_findings_use_the_means_and_count_the_seeds() {
        // Seed 0 reproduces Bjorck (batch norm learns up to the highest rate, the plain network
        // only at the lowest); seed 1 does not (neither learns anywhere).
        let mut a = summary([(0.5, 0.5); 12]);
        a.rates[0].plain.test_accuracy = 0.95;
        for r in &mut a.rates {
            r.batch_norm.test_accuracy = 0.99;
        }
        let mut b = summary([(0.5, 0.5); 12]);
        b.rates[11].plain.diverged_at = Some(4);
        a.rates[11].plain.diverged_at = Some(2);
        b.rates[10].plain.diverged_at = Some(8);
        let findings = findings(&[a, b]);
        assert_eq!(
            findings,
            "With batch norm the network learned (mean test accuracy above 90%) at none of the \
             learning rates; without, at none of the learning rates. It diverged at none with \
             batch norm and at lr 4.3e0 (1 of 2 seeds), 1.0e1 without. The best mean test \
             accuracy is 74.50% (50.00–99.00) at lr 1.0e-3 with batch norm and 72.50% \
             (50.00–95.00) at lr 1.0e-3 without. Bjorck et al. (2018, Figure 1) found that \
             batch norm lets a network learn at higher learning rates than without; here it \
             learned at a higher one in 1 of 2 seeds: reproduced in some seeds only."
        );
        let table = table(&[summary([(0.9, 0.8); 12]), summary([(0.7, 0.8); 12])]);
        assert!(
            table.contains(
                "| 1.0e-3 | 0.3000 (0.3000–0.3000) | 0.3000 (0.3000–0.3000) | 80.00% \
                 (70.00–90.00) | 80.00% (80.00–80.00) |"
            ),
            "{table}"
        );
    }

    #[test]
    fn the_table_names_each_rate_and_divergence() {
        let mut s = summary([(0.9, 0.8); 12]);
        s.rates[11].plain.diverged_at = Some(2);
        let table = table(&[s]);
        assert!(
            table.contains("| 1.0e-3 | 0.3000 | 0.3000 | 90.00% | 80.00% |"),
            "{table}"
        );
        assert!(
            table.contains(
                "| 1.0e1 | 0.3000 | diverged at step 2 | 90.00% | 80.00%, diverged at step 2 |"
            ),
            "{table}"
        );
    }
}
