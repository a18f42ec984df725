//! `batch-size`: one epoch of the lesson's MLP with and without batch norm at batch sizes 2
//! to 256.

use plotters::chart::SeriesLabelPosition;
use serde::Serialize;

use super::common::{
    Analysis, Sweep, SweepNetwork, lesson_weights, measured, pair, pair_cells, sgd,
};
use super::seeds::{Spread, mean_word, transpose};
use crate::lab::run::{LabData, Outcome, Run};
use crate::plot::figure::{Figure, XAxis};

const BATCH_SIZES: [usize; 6] = [2, 4, 8, 16, 64, 256];

/// What `batch-size` found: one row per batch size, smallest first.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct BatchSizeSummary {
    /// Every batch size tried.
    pub sizes: Vec<BatchSizeRow>,
}

/// One batch size of `batch-size`.
///
/// The fields `lab.json` holds are in alphabetical order: this summary used to be a
/// `serde_json` map, which sorts its keys, and `lab.json` keeps that order.
#[derive(Debug, Clone, Serialize)]
pub struct BatchSizeRow {
    /// The network with batch norm.
    pub batch_norm: BatchSizeNetwork,
    /// The batch size.
    pub batch_size: usize,
    /// The network without.
    pub plain: BatchSizeNetwork,
    /// SGD steps of the epoch.
    pub steps: usize,
}

/// One network after an epoch at one batch size.
#[derive(Debug, Clone, Serialize)]
pub struct BatchSizeNetwork {
    /// The step at which it diverged, if it did (not in `lab.json`: the run has it).
    #[serde(skip)]
    pub diverged_at: Option<usize>,
    /// Test accuracy, eval mode.
    pub test_accuracy: f64,
    /// Mean training loss over the epoch.
    pub train_loss: f64,
}

/// One epoch at each batch size, with and without batch norm.
pub(super) fn runs(data: &LabData, seed: u64) -> Vec<Run> {
    BATCH_SIZES
        .iter()
        .flat_map(|&batch| {
            let steps = data.train.len().div_ceil(batch);
            pair(
                &format!("batch {batch}"),
                lesson_weights(),
                |name, config| Run::new(name, config, sgd(0.01, batch, seed), steps),
            )
        })
        .collect()
}

/// The section and figure of the outcomes of [`runs`], one list per seed.
pub(super) fn report(
    per_seed: Vec<Vec<Outcome>>,
    data: &LabData,
) -> (Analysis<BatchSizeSummary>, Figure) {
    let seeds: Vec<BatchSizeSummary> = per_seed.iter().map(|o| summarize(o)).collect();
    let (table, findings, figure) = (table(&seeds), findings(&seeds), figure(&seeds));
    let analysis = Analysis {
        question: "How small can the batch get before batch norm stops helping?",
        setup: format!(
            "The lesson's MLP (784-512-256-10; weights uniform in ±1/√fan_in as PyTorch draws \
                 them, biases 0, the same for both networks), lr 0.01, one epoch over the {} \
                 training images in file order at each batch size (so smaller batches take more \
                 steps); training loss is the mean over the epoch (what the lesson prints), test \
                 accuracy in eval mode.",
            data.train.len()
        ),
        table,
        findings,
        summary: seeds,
        runs: per_seed.into_iter().flatten().collect(),
    };
    (analysis, figure)
}

fn summarize(outcomes: &[Outcome]) -> BatchSizeSummary {
    let network = |o: &Outcome| BatchSizeNetwork {
        diverged_at: o.diverged_at,
        test_accuracy: o.test_accuracy,
        train_loss: o.mean_loss,
    };
    let sizes = BATCH_SIZES
        .iter()
        .zip(outcomes.chunks(2))
        .map(|(&batch, pair)| BatchSizeRow {
            batch_norm: network(&pair[0]),
            batch_size: batch,
            plain: network(&pair[1]),
            steps: pair[0].steps,
        })
        .collect();
    BatchSizeSummary { sizes }
}

type Pick = fn(&BatchSizeRow) -> &BatchSizeNetwork;
const BN: Pick = |r| &r.batch_norm;
const PLAIN: Pick = |r| &r.plain;

impl SweepNetwork for BatchSizeNetwork {
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

/// Batch norm's lead in test accuracy over the seeds (a fraction; the report gives it in
/// points).
fn lead(row: &[&BatchSizeRow]) -> Spread {
    Spread::over(row, |r| r.batch_norm.test_accuracy - r.plain.test_accuracy)
}

fn table(seeds: &[BatchSizeSummary]) -> String {
    let rows: Vec<Vec<String>> = transpose(seeds, |s| &s.sizes)
        .iter()
        .map(|row| {
            let mut cells = vec![row[0].batch_size.to_string(), row[0].steps.to_string()];
            cells.extend(pair_cells(measured(row, BN), measured(row, PLAIN)));
            cells.push(lead(row).points());
            cells
        })
        .collect();
    super::common::table(
        &[
            "batch",
            "steps",
            "training loss, BN",
            "training loss, plain",
            "test accuracy, BN",
            "test accuracy, plain",
            "BN − plain (points)",
        ],
        &rows,
    )
}

/// Batch norm's lead at each batch size (the mean over the seeds), where it is largest and
/// smallest, and where it is under half a point.
fn findings(seeds: &[BatchSizeSummary]) -> String {
    let rows = transpose(seeds, |s| &s.sizes);
    let (Some(smallest), Some(largest)) = (rows.first(), rows.last()) else {
        return String::new();
    };
    let leads: Vec<(usize, Spread)> = rows.iter().map(|r| (r[0].batch_size, lead(r))).collect();
    let fmt_lead = |(b, l): &(usize, Spread)| format!("{} at {b}", l.points());
    let (best, worst) = leads
        .iter()
        .fold((leads[0], leads[0]), |(best, worst), &l| {
            (
                if l.1.mean > best.1.mean { l } else { best },
                if l.1.mean < worst.1.mean { l } else { worst },
            )
        });
    let not_ahead: Vec<String> = leads
        .iter()
        .filter(|(_, l)| l.mean < 0.005)
        .map(|(b, _)| b.to_string())
        .collect();
    let word = mean_word(seeds.len());
    format!(
        "Batch norm's {word}lead in test accuracy, in points by batch size: {}. The lead is \
         largest at batch {} and smallest at batch {}. {} Smaller batches take more steps over \
         the same images: the plain network's {word}test accuracy is {} at batch {} and {} at \
         batch {}. With batch norm a small batch also makes its statistics a noisy estimate of \
         the population's, so the network trains on normalizations that eval mode will not \
         reproduce.",
        leads.iter().map(fmt_lead).collect::<Vec<_>>().join(", "),
        best.0,
        worst.0,
        if not_ahead.is_empty() {
            "It is half a point or more ahead at every batch size tried.".to_string()
        } else {
            format!(
                "It is not even half a point ahead at batch {}.",
                not_ahead.join(" and ")
            )
        },
        measured(largest, PLAIN).1.pct(),
        largest[0].batch_size,
        measured(smallest, PLAIN).1.pct(),
        smallest[0].batch_size,
    )
}

/// Training loss and test accuracy by batch size, the two networks side by side.
fn figure(seeds: &[BatchSizeSummary]) -> Figure {
    let rows = transpose(seeds, |s| &s.sizes);
    Sweep {
        title: "One epoch of the lesson's MLP at each batch size (lr 0.01)".into(),
        x_axis: XAxis::Categories(rows.iter().map(|r| r[0].batch_size.to_string()).collect()),
        x_label: "batch size (one epoch)",
        points: rows
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let n = |net: Pick| {
                    let (loss, accuracy, _) = measured(row, net);
                    (loss, accuracy)
                };
                (i as f64, [n(BN), n(PLAIN)])
            })
            .collect(),
        titles: [
            "training loss (mean over the epoch)",
            "test accuracy (eval mode)",
        ],
        loss_label: "training loss",
        accuracy_range: None,
        legends: [
            SeriesLabelPosition::UpperMiddle,
            SeriesLabelPosition::LowerMiddle,
        ],
    }
    .figure()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One epoch at each of the lab's batch sizes, with the given test accuracies (batch norm,
    /// plain).
    fn summary(accuracies: [(f64, f64); 6]) -> BatchSizeSummary {
        let network = |test_accuracy| BatchSizeNetwork {
            diverged_at: None,
            test_accuracy,
            train_loss: 0.3,
        };
        let sizes = BATCH_SIZES
            .iter()
            .zip(accuracies)
            .map(|(&batch, (bn, plain))| BatchSizeRow {
                batch_norm: network(bn),
                batch_size: batch,
                plain: network(plain),
                steps: 1200 / batch,
            })
            .collect();
        BatchSizeSummary { sizes }
    }

    #[test]
    fn a_lead_at_every_batch_size_is_reported_with_where_it_peaks() {
        let findings = findings(&[summary([
            (0.80, 0.70),
            (0.85, 0.80),
            (0.90, 0.88),
            (0.91, 0.90),
            (0.93, 0.85),
            (0.90, 0.60),
        ])]);
        assert!(
            findings.starts_with(
                "Batch norm's lead in test accuracy, in points by batch size: +10.00 at 2, \
                 +5.00 at 4, +2.00 at 8, +1.00 at 16, +8.00 at 64, +30.00 at 256. The lead is \
                 largest at batch 256 and smallest at batch 16. It is half a point or more \
                 ahead at every batch size tried. Smaller batches take more steps over the \
                 same images: the plain network's test accuracy is 60.00% at batch 256 and \
                 70.00% at batch 2."
            ),
            "{findings}"
        );
    }

    #[test]
    fn where_plain_wins_at_every_batch_size_the_findings_say_so() {
        let findings = findings(&[summary([
            (0.55, 0.70),
            (0.70, 0.80),
            (0.85, 0.88),
            (0.89, 0.90),
            (0.80, 0.85),
            (0.58, 0.60),
        ])]);
        assert!(
            findings.contains(
                "-15.00 at 2, -10.00 at 4, -3.00 at 8, -1.00 at 16, -5.00 at 64, -2.00 at 256. \
                 The lead is largest at batch 16 and smallest at batch 2. It is not even half a \
                 point ahead at batch 2 and 4 and 8 and 16 and 64 and 256."
            ),
            "{findings}"
        );
        assert!(
            !findings.contains("at every batch size tried"),
            "{findings}"
        );
    }

    #[test]
    fn the_table_gives_the_lead_in_points_and_divergence() {
        let mut s = summary([(0.9, 0.8); 6]);
        s.sizes[0].plain.diverged_at = Some(5);
        let table = table(&[s]);
        assert!(
            table.contains(
                "| 2 | 600 | 0.3000 | diverged at step 5 | 90.00% | 80.00%, diverged at step 5 \
                 | +10.00 |"
            ),
            "{table}"
        );
    }

    #[test]
    fn over_seeds_the_leads_are_means_with_their_range() {
        let a = summary([(0.9, 0.8); 6]);
        let mut b = summary([(0.9, 0.8); 6]);
        b.sizes[0].batch_norm.test_accuracy = 0.6;
        b.sizes[5].plain.test_accuracy = 0.6;
        let findings = findings(&[a.clone(), b.clone()]);
        assert!(
            findings.starts_with(
                "Batch norm's mean lead in test accuracy, in points by batch size: -5.00 \
                 (-20.00 to +10.00) at 2, +10.00 (+10.00 to +10.00) at 4,"
            ),
            "{findings}"
        );
        assert!(
            findings.contains(
                "largest at batch 256 and smallest at batch 2. It is not even half a point \
                 ahead at batch 2. Smaller batches take more steps over the same images: the \
                 plain network's mean test accuracy is 70.00% (60.00–80.00) at batch 256 and \
                 80.00% (80.00–80.00) at batch 2."
            ),
            "{findings}"
        );
        let table = table(&[a, b]);
        assert!(
            table.contains(
                "| 75.00% (60.00–90.00) | 80.00% (80.00–80.00) | -5.00 (-20.00 to +10.00) |"
            ),
            "{table}"
        );
    }

    #[test]
    fn the_summary_keeps_lab_json_keys_and_values() {
        let mut s = summary([(0.5, 0.25); 6]);
        s.sizes.truncate(1);
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            "[{\"batch_norm\":{\"test_accuracy\":0.5,\"train_loss\":0.3},\"batch_size\":2,\
             \"plain\":{\"test_accuracy\":0.25,\"train_loss\":0.3},\"steps\":600}]"
        );
    }
}
