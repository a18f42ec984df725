//! `batch-size`: one epoch of the lesson's MLP with and without batch norm at batch sizes 2
//! to 256.

use plotters::chart::SeriesLabelPosition;
use serde::Serialize;

use super::common::{Analysis, Sweep, lesson_weights, pair, pair_cells, pct, sgd};
use crate::lab::driver::{LabData, Outcome, Run};
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

/// The section and figure of the outcomes of [`runs`].
pub(super) fn report(
    outcomes: Vec<Outcome>,
    data: &LabData,
) -> (Analysis<BatchSizeSummary>, Figure) {
    let summary = summarize(&outcomes);
    let (table, findings, figure) = (table(&summary), findings(&summary), figure(&summary));
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
        summary,
        runs: outcomes,
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

/// Batch norm's lead in test accuracy (a fraction; the report gives it in points).
fn lead(row: &BatchSizeRow) -> f64 {
    row.batch_norm.test_accuracy - row.plain.test_accuracy
}

fn table(summary: &BatchSizeSummary) -> String {
    let rows: Vec<Vec<String>> = summary
        .sizes
        .iter()
        .map(|r| {
            let n = |n: &BatchSizeNetwork| (n.train_loss, n.test_accuracy, n.diverged_at);
            let mut cells = vec![r.batch_size.to_string(), r.steps.to_string()];
            cells.extend(pair_cells(n(&r.batch_norm), n(&r.plain)));
            cells.push(format!("{:+.2}", 100.0 * lead(r)));
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

/// Batch norm's lead at each batch size, where it is largest and smallest, and where it is
/// under half a point.
fn findings(summary: &BatchSizeSummary) -> String {
    let rows = &summary.sizes;
    let (Some(smallest), Some(largest)) = (rows.first(), rows.last()) else {
        return String::new();
    };
    let leads: Vec<(usize, f64)> = rows.iter().map(|r| (r.batch_size, lead(r))).collect();
    let fmt_lead = |(b, l): &(usize, f64)| format!("{:+.2} at {b}", 100.0 * l);
    let (best, worst) = leads
        .iter()
        .fold((leads[0], leads[0]), |(best, worst), &l| {
            (
                if l.1 > best.1 { l } else { best },
                if l.1 < worst.1 { l } else { worst },
            )
        });
    let not_ahead: Vec<String> = leads
        .iter()
        .filter(|(_, l)| *l < 0.005)
        .map(|(b, _)| b.to_string())
        .collect();
    format!(
        "Batch norm's lead in test accuracy, in points by batch size: {}. The lead is largest at \
         batch {} and smallest at batch {}. {} Smaller batches take more steps over the same \
         images: the plain network's test accuracy is {} at batch {} and {} at batch {}. With \
         batch norm a small batch also makes its statistics a noisy estimate of the \
         population's, so the network trains on normalizations that eval mode will not \
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
        pct(largest.plain.test_accuracy),
        largest.batch_size,
        pct(smallest.plain.test_accuracy),
        smallest.batch_size,
    )
}

/// Training loss and test accuracy by batch size, the two networks side by side.
fn figure(summary: &BatchSizeSummary) -> Figure {
    Sweep {
        title: "One epoch of the lesson's MLP at each batch size (lr 0.01)".into(),
        x_axis: XAxis::Categories(
            summary
                .sizes
                .iter()
                .map(|r| r.batch_size.to_string())
                .collect(),
        ),
        x_label: "batch size (one epoch)",
        points: summary
            .sizes
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let n = |n: &BatchSizeNetwork| (n.train_loss, n.test_accuracy);
                (i as f64, [n(&r.batch_norm), n(&r.plain)])
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
        let findings = findings(&summary([
            (0.80, 0.70),
            (0.85, 0.80),
            (0.90, 0.88),
            (0.91, 0.90),
            (0.93, 0.85),
            (0.90, 0.60),
        ]));
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
        let findings = findings(&summary([
            (0.55, 0.70),
            (0.70, 0.80),
            (0.85, 0.88),
            (0.89, 0.90),
            (0.80, 0.85),
            (0.58, 0.60),
        ]));
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
        let table = table(&s);
        assert!(
            table.contains(
                "| 2 | 600 | 0.3000 | diverged at step 5 | 90.00% | 80.00% (diverged at step 5) \
                 | +10.00 |"
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
