//! `norms`: what to use instead of batch norm. The lesson's MLP without a norm and with batch
//! norm, layer norm (Ba et al. 2016), group norm (Wu & He 2018) and batch renorm (Ioffe 2017),
//! at batch sizes 2 to 256 on the same images; then each norm's network from batch 64 tested
//! in train mode on batches of 1, 2 and 16 and in eval mode.

use burn::tensor::Device;
use mnist_bn_model::{MlpConfig, Net, Norm, RenormSchedule};

use super::common::{Analysis, lesson_weights, sgd};
use super::seeds::{Diverged, Spread, in_seeds, mean_word, score, transpose};
use crate::evaluate::{TestMode, test_pass};
use crate::lab::run::{LabData, Outcome, Run};
use crate::plot::figure::Figure;

mod figure;
mod summary;

use figure::figure;
use summary::{BATCH_SIZES, TEST_BATCHES, accuracy, names, rows};
pub use summary::{NormsInference, NormsNetwork, NormsRow, NormsSummary};

/// The training images every run sees once, in file order: fewer than `batch-size`'s 60,000,
/// so that five networks per batch size fit the lab's time, and a multiple of every batch
/// size (80 batches of 256).
const IMAGES: usize = 20_480;
/// The batch size whose networks are tested every way.
const TESTED_BATCH: usize = 64;

/// Batch renorm's schedule here: Ioffe's (5,000 steps of batch norm, then `r_max` 3 at 40,000
/// steps and `d_max` 5 at 25,000) scaled down 100 times for runs of 80 to 10,240 steps.
fn lab_schedule() -> RenormSchedule {
    RenormSchedule::new()
        .with_warmup_steps(50)
        .with_r_max_step(400)
        .with_d_max_step(250)
}

/// The norms compared, in the order of the tables: none first.
fn norms() -> [Norm; 5] {
    [
        Norm::None,
        Norm::Batch,
        Norm::Layer,
        Norm::GROUP,
        Norm::BatchRenorm(lab_schedule()),
    ]
}

/// Each norm at each batch size, one pass over the first [`IMAGES`] training images; the
/// networks from batch 64 are kept for the inference tests.
pub(super) fn runs(data: &LabData, seed: u64) -> Vec<Run> {
    let images = IMAGES.min(data.train.len());
    BATCH_SIZES
        .iter()
        .flat_map(|&batch| {
            norms().map(|norm| Run {
                keep_model: batch == TESTED_BATCH,
                ..Run::new(
                    format!("batch {batch}, {}", norm.short_name()),
                    MlpConfig {
                        norm,
                        ..lesson_weights()
                    },
                    sgd(0.01, batch, seed),
                    images.div_ceil(batch),
                )
            })
        })
        .collect()
}

/// The section and figure of the outcomes of [`runs`], one list per seed; the kept networks
/// are tested on `device`.
pub(super) fn report(
    mut per_seed: Vec<Vec<Outcome>>,
    data: &LabData,
    device: &Device,
) -> (Analysis<NormsSummary>, Figure) {
    let seeds: Vec<NormsSummary> = per_seed
        .iter_mut()
        .map(|o| summarize(o, data, device))
        .collect();
    let (table, findings, figure) = (table(&seeds), findings(&seeds), figure(&seeds));
    let analysis = Analysis {
        question: "What instead of batch norm, and when? Layer, group and batch renorm against \
                   batch norm and none, from batch 256 down to 2",
        setup: format!(
            "The lesson's MLP (784-512-256-10; weights uniform in ±1/√fan_in as PyTorch draws \
             them, biases 0, the same for every network of a seed) with no norm, batch norm, \
             layer norm, group norm (32 groups: 16 and 8 features each) or batch renorm after \
             each hidden layer; lr 0.01, one pass over the first {} training images in file \
             order at each batch size (smaller batches take more steps). Batch renorm's \
             schedule is Ioffe's scaled down 100 times: batch norm for 50 steps, then r_max \
             relaxed to 3 by step 400 and d_max to 5 by step 250. Test accuracy in eval mode. \
             Then each norm's network from batch {TESTED_BATCH} is tested in train mode \
             (statistics of each test batch, for the norms that use a batch's) on batches of \
             1, 2 and 16, and in eval mode.",
            IMAGES.min(data.train.len())
        ),
        table,
        findings,
        summary: seeds,
        runs: per_seed.into_iter().flatten().collect(),
    };
    (analysis, figure)
}

fn summarize(outcomes: &mut [Outcome], data: &LabData, device: &Device) -> NormsSummary {
    let network = |o: &Outcome| NormsNetwork {
        norm: o.config.norm.short_name().to_string(),
        diverged_at: o.diverged_at,
        test_accuracy: o.test_accuracy,
        train_loss: o.mean_loss,
    };
    let n = norms().len();
    let sizes = BATCH_SIZES
        .iter()
        .zip(outcomes.chunks(n))
        .map(|(&batch, row)| NormsRow {
            batch_size: batch,
            steps: row[0].steps,
            networks: row.iter().map(network).collect(),
        })
        .collect();
    let inference = outcomes
        .iter_mut()
        .filter_map(|o| Some((o.config.norm, o.model.take()?)))
        .map(|(norm, model)| tested(norm, &model, data, device))
        .collect();
    NormsSummary { sizes, inference }
}

/// `model` tested in train mode on each of [`TEST_BATCHES`] and in eval mode.
fn tested(norm: Norm, model: &Net, data: &LabData, device: &Device) -> NormsInference {
    let accuracy = |batch: usize, mode| test_pass(model, &data.test, batch, mode, device).accuracy;
    NormsInference {
        norm: norm.short_name().to_string(),
        train_mode: TEST_BATCHES
            .iter()
            .map(|&b| accuracy(b.min(data.test.len()), TestMode::Train))
            .collect(),
        eval_mode: accuracy(1000, TestMode::Eval),
    }
}

/// One row per norm: its test accuracy at each batch size, then its batch-64 network's test
/// passes.
fn table(seeds: &[NormsSummary]) -> String {
    let names = names(seeds);
    let rows = rows(seeds);
    let tests = transpose(seeds, |s| &s.inference);
    let table: Vec<Vec<String>> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut cells = vec![name.clone()];
            cells.extend(rows.iter().map(|row| {
                score(
                    accuracy(row, i),
                    Diverged::over(row, |r| r.networks[i].diverged_at),
                )
            }));
            if let Some(t) = tests.iter().find(|t| &t[0].norm == name) {
                cells.extend(
                    (0..TEST_BATCHES.len()).map(|j| Spread::over(t, |t| t.train_mode[j]).pct()),
                );
                cells.push(Spread::over(t, |t| t.eval_mode).pct());
            }
            cells
        })
        .collect();
    let mut header = vec!["norm".to_string()];
    header.extend(
        rows.iter()
            .map(|r| format!("batch {} ({} steps)", r[0].batch_size, r[0].steps)),
    );
    header.extend(
        TEST_BATCHES
            .iter()
            .map(|b| format!("batch-{TESTED_BATCH} net, train mode, test batch {b}")),
    );
    header.push(format!("batch-{TESTED_BATCH} net, eval mode"));
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    super::common::table(&header, &table)
}

/// The norm with the best mean test accuracy in a row, and its margin over the second.
fn best<'a>(row: &[&NormsRow], names: &'a [String]) -> (&'a str, f64) {
    let mut order: Vec<(usize, f64)> = (0..names.len())
        .map(|i| (i, accuracy(row, i).mean))
        .collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1));
    let margin = order.get(1).map_or(0.0, |second| order[0].1 - second.1);
    (&names[order[0].0], margin)
}

/// The batch sizes Wu & He's claim spans here: from 16 images per batch down to 2.
const FROM: usize = 16;
const TO: usize = 2;

/// How network `i`'s test accuracy changes from batch [`FROM`] to batch [`TO`] in one seed
/// (a fraction; `NaN` without those rows).
fn small_batch_change(seed: &NormsSummary, i: usize) -> f64 {
    let at = |b: usize| {
        seed.sizes
            .iter()
            .find(|r| r.batch_size == b)
            .map_or(f64::NAN, |r| r.networks[i].test_accuracy)
    };
    at(TO) - at(FROM)
}

/// Wu & He's picture in one seed: group norm within a point of its batch-16 accuracy at
/// batch 2, and batch norm more than 5 points below its own.
fn wu_and_he_holds(seed: &NormsSummary, batch: usize, group: usize) -> bool {
    small_batch_change(seed, group).abs() <= 0.01 && small_batch_change(seed, batch) < -0.05
}

fn findings(seeds: &[NormsSummary]) -> String {
    let names = names(seeds);
    let rows = rows(seeds);
    let find = |name: &str| names.iter().position(|n| n == name);
    let (Some(none), Some(batch), Some(layer), Some(group), Some(renorm)) = (
        find("none"),
        find("batch"),
        find("layer"),
        find("group"),
        find("renorm"),
    ) else {
        return String::new();
    };
    let word = mean_word(seeds.len());
    let n = seeds.len();
    // 1. The winner at each batch size.
    let winners: Vec<String> = rows
        .iter()
        .map(|row| {
            let (name, margin) = best(row, &names);
            format!(
                "{name} at {} (by {:.2} points)",
                row[0].batch_size,
                100.0 * margin
            )
        })
        .collect();
    // 2. Each norm's lead over none, at the largest and the smallest batch.
    let (Some(large), Some(small)) = (rows.last(), rows.first()) else {
        return String::new();
    };
    let lead = |row: &[&NormsRow], i: usize| {
        Spread::over(row, |r| {
            r.networks[i].test_accuracy - r.networks[none].test_accuracy
        })
    };
    let leads: Vec<String> = [batch, layer, group, renorm]
        .iter()
        .map(|&i| {
            format!(
                "{} {} at batch {} and {} at batch {}",
                names[i],
                lead(large, i).points(),
                large[0].batch_size,
                lead(small, i).points(),
                small[0].batch_size
            )
        })
        .collect();
    // 3. Wu & He, Fig. 1: from batch 16 down to 2, does group norm stay flat while batch
    // norm falls?
    let change = |i: usize| Spread::over(seeds, |s| small_batch_change(s, i)).points();
    let holds = seeds
        .iter()
        .filter(|s| wu_and_he_holds(s, batch, group))
        .count();
    // 4. Ioffe 2017, Fig. 2: batch renorm ahead of batch norm at the smallest batches.
    let small: Vec<&Vec<&NormsRow>> = rows.iter().filter(|r| r[0].batch_size <= 4).collect();
    let renorm_lead = |row: &[&NormsRow]| {
        Spread::over(row, |r| {
            r.networks[renorm].test_accuracy - r.networks[batch].test_accuracy
        })
    };
    let renorm_leads: Vec<String> = small
        .iter()
        .map(|row| {
            format!(
                "{} at batch {}",
                renorm_lead(row).points(),
                row[0].batch_size
            )
        })
        .collect();
    let renorm_ahead = (0..n)
        .filter(|&k| {
            small.iter().all(|row| {
                row[k].networks[renorm].test_accuracy > row[k].networks[batch].test_accuracy
            })
        })
        .count();
    // 5. Where batch norm falls behind layer norm: every batch size at which it does.
    let behind: Vec<String> = rows
        .iter()
        .filter(|row| accuracy(row, batch).mean < accuracy(row, layer).mean)
        .map(|row| {
            let count = row
                .iter()
                .filter(|r| r.networks[batch].test_accuracy < r.networks[layer].test_accuracy)
                .count();
            format!("{} ({})", row[0].batch_size, in_seeds(count, n))
        })
        .collect();
    // 6. The inference tests.
    let tests = transpose(seeds, |s| &s.inference);
    let test = |name: &str| tests.iter().find(|t| t[0].norm == name);
    let same = |name: &str| {
        test(name).map_or(f64::NAN, |t| {
            t.iter()
                .flat_map(|t| t.train_mode.iter().map(|a| (a - t.eval_mode).abs()))
                .fold(0.0, f64::max)
        })
    };
    let at_one = |name: &str| {
        test(name).map_or(String::new(), |t| {
            format!(
                "{} with one image per batch in train mode against {} in eval mode",
                Spread::over(t, |t| t.train_mode[0]).pct(),
                Spread::over(t, |t| t.eval_mode).pct()
            )
        })
    };
    format!(
        "The best {word}test accuracy at each batch size: {}. Each norm's {word}lead over no \
         norm, in points: {}. Wu & He (2018, Fig. 1) find batch norm's error climbing below 16 \
         images per batch while group norm's stays flat. Here, from batch {FROM} down to {TO}, \
         the {word}test accuracy changes by {} points with batch norm, {} with batch renorm, {} \
         with layer norm and {} with group norm ({} without a norm); group norm within a point of \
         its batch-{FROM} accuracy while batch norm falls by more than 5 points holds {}. Ioffe (2017, Fig. 2) finds batch renorm ahead of \
         batch norm with 4 examples per batch: here its {word}lead over batch norm is {}, ahead \
         at every batch size up to 4 {}. {} In train mode, layer and group norm give the \
         eval-mode accuracy on every test batch (largest difference {:.2} and {:.2} points: \
         each image is normalized on its own). Batch norm gives {}; batch renorm gives {}.",
        winners.join(", "),
        leads.join("; "),
        change(batch),
        change(renorm),
        change(layer),
        change(group),
        change(none),
        in_seeds(holds, n),
        renorm_leads.join(" and "),
        in_seeds(renorm_ahead, n),
        if behind.is_empty() {
            "Batch norm is ahead of layer norm at every batch size tried.".to_string()
        } else {
            format!(
                "Batch norm falls behind layer norm at batch {}.",
                behind.join(", ")
            )
        },
        100.0 * same("layer"),
        100.0 * same("group"),
        at_one("batch"),
        at_one("renorm"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A seed's summary with the given test accuracies per batch size (none, batch, layer,
    /// group, renorm), and inference passes where batch norm and renorm fail at one image.
    fn summary(accuracies: [[f64; 5]; 6]) -> NormsSummary {
        let names = ["none", "batch", "layer", "group", "renorm"];
        let sizes = BATCH_SIZES
            .iter()
            .zip(accuracies)
            .map(|(&batch, row)| NormsRow {
                batch_size: batch,
                steps: IMAGES / batch,
                networks: names
                    .iter()
                    .zip(row)
                    .map(|(n, a)| NormsNetwork {
                        norm: n.to_string(),
                        diverged_at: None,
                        test_accuracy: a,
                        train_loss: 0.3,
                    })
                    .collect(),
            })
            .collect();
        let inference = names
            .iter()
            .map(|n| NormsInference {
                norm: n.to_string(),
                train_mode: match *n {
                    "batch" | "renorm" => vec![0.1, 0.8, 0.9],
                    _ => vec![0.9, 0.9, 0.9],
                },
                eval_mode: 0.9,
            })
            .collect();
        NormsSummary { sizes, inference }
    }

    /// Batch norm best at large batches and worst at small ones; group norm flat.
    fn wu_and_he() -> NormsSummary {
        summary([
            [0.80, 0.70, 0.85, 0.88, 0.75],
            [0.82, 0.80, 0.86, 0.87, 0.82],
            [0.84, 0.86, 0.86, 0.87, 0.86],
            [0.85, 0.88, 0.87, 0.88, 0.88],
            [0.80, 0.90, 0.86, 0.85, 0.90],
            [0.60, 0.85, 0.70, 0.66, 0.85],
        ])
    }

    #[test]
    fn the_findings_name_the_winners_the_flat_norm_and_where_batch_norm_falls_behind() {
        let f = findings(&[wu_and_he()]);
        assert!(
            f.starts_with(
                "The best test accuracy at each batch size: group at 2 (by 3.00 points), group \
                 at 4 (by 1.00 points), group at 8 (by 1.00 points), batch at 16 (by 0.00 \
                 points), batch at 64 (by 0.00 points), batch at 256 (by 0.00 points). Each \
                 norm's lead over no norm, in points: batch +25.00 at batch 256 and -10.00 at \
                 batch 2; layer +10.00 at batch 256 and +5.00 at batch 2;"
            ),
            "{f}"
        );
        assert!(
            f.contains(
                "Here, from batch 16 down to 2, the test accuracy changes by -18.00 points with \
                 batch norm, -13.00 with batch renorm, -2.00 with layer norm and +0.00 with group \
                 norm (-5.00 without a norm); group norm within a point of its batch-16 accuracy while batch norm falls by more than 5 \
                 points holds in this run. Ioffe (2017, Fig. 2) finds batch renorm ahead of \
                 batch norm with 4 examples per batch: here its lead over batch norm is +5.00 at \
                 batch 2 and +2.00 at batch 4, ahead at every batch size up to 4 in this run."
            ),
            "{f}"
        );
        assert!(
            f.contains(
                "Batch norm falls behind layer norm at batch 2 (in this run), 4 (in this run)."
            ),
            "{f}"
        );
        assert!(
            f.ends_with(
                "largest difference 0.00 and 0.00 points: each image is normalized on its \
                 own). Batch norm gives 10.00% with one image per batch in train mode against \
                 90.00% in eval mode; batch renorm gives 10.00% with one image per batch in \
                 train mode against 90.00% in eval mode."
            ),
            "{f}"
        );
    }

    #[test]
    fn where_batch_norm_leads_everywhere_and_group_norm_moves_the_findings_say_so() {
        let mut s = summary([[0.5, 0.9, 0.8, 0.6, 0.9]; 6]);
        s.sizes[0].networks[3].test_accuracy = 0.95;
        let two = [s.clone(), wu_and_he()];
        let f = findings(&[s.clone()]);
        assert!(
            f.contains("Batch norm is ahead of layer norm at every batch size tried."),
            "{f}"
        );
        assert!(f.contains("more than 5 points holds in no seed."), "{f}");
        assert!(
            f.contains(
                "its lead over batch norm is +0.00 at batch 2 and +0.00 at batch 4, ahead \
                 at every batch size up to 4 in no seed."
            ),
            "{f}"
        );
        // Over two seeds: means with their ranges, and claims counted per seed.
        let f = findings(&two);
        assert!(
            f.starts_with("The best mean test accuracy at each batch size:"),
            "{f}"
        );
        assert!(
            f.contains("more than 5 points holds in 1 of 2 seeds"),
            "{f}"
        );
        assert!(
            f.contains("Batch norm falls behind layer norm at batch 2 (in 1 of 2 seeds)"),
            "{f}"
        );
    }

    #[test]
    fn the_table_has_a_row_per_norm_with_its_test_passes() {
        let table = table(&[wu_and_he()]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 2 + 5);
        assert!(lines[0].starts_with("| norm | batch 2 (10240 steps) | batch 4 (5120 steps) |"));
        assert_eq!(
            lines[3],
            "| batch | 70.00% | 80.00% | 86.00% | 88.00% | 90.00% | 85.00% | 10.00% | 80.00% \
             | 90.00% | 90.00% |"
        );
    }
}
