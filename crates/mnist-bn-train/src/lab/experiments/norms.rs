//! `norms`: what to use instead of batch norm. The lesson's MLP without a norm and with batch
//! norm, layer norm (Ba et al. 2016), group norm (Wu & He 2018) and batch renorm (Ioffe 2017),
//! at batch sizes 2 to 256 on the same images; then each norm's network from batch 64 tested
//! in train mode on batches of 1, 2 and 16 and in eval mode.

use burn::tensor::Device;
use mnist_bn_model::{MlpConfig, Net, Norm, RenormSchedule};
use plotters::chart::SeriesLabelPosition;
use plotters::style::RGBColor;
use serde::Serialize;

use super::common::{Analysis, lesson_weights, sgd};
use super::seeds::{Diverged, Spread, band, in_seeds, mean_word, score, transpose};
use crate::evaluate::{TestMode, test_pass};
use crate::lab::driver::{LabData, Outcome, Run};
use crate::plot::figure::{
    BATCH_NORM, Figure, GROUP_NORM, LAYER_NORM, Mark, PLAIN, Panel, RENORM, Series, XAxis,
};

const BATCH_SIZES: [usize; 6] = [2, 4, 8, 16, 64, 256];
/// The training images every run sees once, in file order: fewer than `batch-size`'s 60,000,
/// so that five networks per batch size fit the lab's time, and a multiple of every batch
/// size (80 batches of 256).
const IMAGES: usize = 20_480;
/// The batch size whose networks are tested every way.
const TESTED_BATCH: usize = 64;
/// The train-mode test batches.
const TEST_BATCHES: [usize; 3] = [1, 2, 16];

/// Batch renorm's schedule here: Ioffe's (5,000 steps of batch norm, then `r_max` 3 at 40,000
/// steps and `d_max` 5 at 25,000) scaled down 100 times for runs of 78 to 10,000 steps.
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

fn color(norm: &str) -> RGBColor {
    match norm {
        "none" => PLAIN,
        "batch" => BATCH_NORM,
        "layer" => LAYER_NORM,
        "group" => GROUP_NORM,
        _ => RENORM,
    }
}

/// What `norms` found in one seed.
#[derive(Debug, Clone, Serialize)]
pub struct NormsSummary {
    /// One row per batch size, smallest first.
    pub sizes: Vec<NormsRow>,
    /// Each norm's network from batch 64, tested every way, in the order of the rows'
    /// networks.
    pub inference: Vec<NormsInference>,
}

/// One batch size of `norms`.
#[derive(Debug, Clone, Serialize)]
pub struct NormsRow {
    /// The batch size.
    pub batch_size: usize,
    /// SGD steps (one pass over the images).
    pub steps: usize,
    /// Each norm's network: none, batch, layer, group, renorm.
    pub networks: Vec<NormsNetwork>,
}

/// One network of `norms` after its pass over the images.
#[derive(Debug, Clone, Serialize)]
pub struct NormsNetwork {
    /// The norm's short name (`none`, `batch`, `layer`, `group`, `renorm`).
    pub norm: String,
    /// The step at which it diverged, if it did.
    pub diverged_at: Option<usize>,
    /// Test accuracy, eval mode.
    pub test_accuracy: f64,
    /// Mean training loss over the pass.
    pub train_loss: f64,
}

/// One norm's network tested every way.
#[derive(Debug, Clone, Serialize)]
pub struct NormsInference {
    /// The norm's short name.
    pub norm: String,
    /// Test accuracy in train mode on batches of 1, 2 and 16, in that order.
    pub train_mode: Vec<f64>,
    /// Test accuracy in eval mode.
    pub eval_mode: f64,
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

/// Each norm's network at each batch size, over the seeds: `rows[size][seed]`.
fn rows(seeds: &[NormsSummary]) -> Vec<Vec<&NormsRow>> {
    transpose(seeds, |s| &s.sizes)
}

/// Network `i` of a row over the seeds.
fn accuracy(row: &[&NormsRow], i: usize) -> Spread {
    Spread::over(row, |r| r.networks[i].test_accuracy)
}

/// The norms' short names, in the order of the networks.
fn names(seeds: &[NormsSummary]) -> Vec<String> {
    seeds.first().map_or(Vec::new(), |s| {
        s.sizes.first().map_or(Vec::new(), |r| {
            r.networks.iter().map(|n| n.norm.clone()).collect()
        })
    })
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
    header.extend(rows.iter().map(|r| {
        format!("batch {} ({} steps)", r[0].batch_size, r[0].steps)
    }));
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

/// How much a norm's lead over no norm moves across the batch sizes in one seed (the largest
/// lead minus the smallest): flat is small.
fn lead_swing(seed: &NormsSummary, i: usize) -> f64 {
    let leads = seed
        .sizes
        .iter()
        .map(|r| r.networks[i].test_accuracy - r.networks[0].test_accuracy);
    let (lo, hi) = leads.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), l| {
        (lo.min(l), hi.max(l))
    });
    hi - lo
}

fn findings(seeds: &[NormsSummary]) -> String {
    let names = names(seeds);
    let rows = rows(seeds);
    let find = |name: &str| names.iter().position(|n| n == name);
    let (Some(batch), Some(layer), Some(group), Some(renorm)) =
        (find("batch"), find("layer"), find("group"), find("renorm"))
    else {
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
            r.networks[i].test_accuracy - r.networks[0].test_accuracy
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
    // 3. Wu & He, Fig. 1: is group norm flatter than batch norm?
    let swing = |i: usize| Spread::over(seeds, |s| 100.0 * lead_swing(s, i)).fixed(2);
    let flatter = seeds
        .iter()
        .filter(|s| lead_swing(s, group) < lead_swing(s, batch))
        .count();
    // 4. Where batch norm falls behind layer norm: every batch size at which it does.
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
    // 5. The inference tests.
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
         images per batch while group norm's stays flat: here group norm's lead over no norm \
         moves by {} points across the batch sizes and batch norm's by {} (layer norm's {}, \
         batch renorm's {}); group norm is the flatter of the two {}. {} In train mode, layer \
         and group norm give the eval-mode accuracy on every test batch (largest difference \
         {:.2} and {:.2} points: each image is normalized on its own). Batch norm gives {}; \
         batch renorm gives {}.",
        winners.join(", "),
        leads.join("; "),
        swing(group),
        swing(batch),
        swing(layer),
        swing(renorm),
        in_seeds(flatter, n),
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

/// Test accuracy against batch size, one line per norm with its band; and the batch-64
/// networks' test passes.
fn figure(seeds: &[NormsSummary]) -> Figure {
    let names = names(seeds);
    let rows = rows(seeds);
    let mut sweep = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let points: Vec<(f64, Spread)> = rows
            .iter()
            .enumerate()
            .map(|(x, row)| (x as f64, accuracy(row, i)))
            .collect();
        sweep.extend(band(super::common::lighter(color(name)), points.clone()));
        sweep.push(Series {
            label: name.clone(),
            color: color(name),
            mark: Mark::LineDots,
            points: points.iter().map(|(x, s)| (*x, s.mean)).collect(),
        });
    }
    let tests = transpose(seeds, |s| &s.inference);
    let mut passes = Vec::new();
    for t in &tests {
        let name = &t[0].norm;
        let at = |j: usize| {
            if j < TEST_BATCHES.len() {
                Spread::over(t, |t| t.train_mode[j])
            } else {
                Spread::over(t, |t| t.eval_mode)
            }
        };
        let points: Vec<(f64, Spread)> = (0..=TEST_BATCHES.len())
            .map(|j| (j as f64, at(j)))
            .collect();
        passes.extend(band(super::common::lighter(color(name)), points.clone()));
        passes.push(Series {
            label: name.clone(),
            color: color(name),
            mark: Mark::LineDots,
            points: points.iter().map(|(x, s)| (*x, s.mean)).collect(),
        });
    }
    let mut categories: Vec<String> = TEST_BATCHES
        .iter()
        .map(|b| format!("train, {b}"))
        .collect();
    categories.push("eval".into());
    Figure {
        title: "Norms against batch size, and the batch-64 networks tested every way".into(),
        columns: 2,
        panel_size: (640, 420),
        panels: vec![
            Panel {
                title: "test accuracy after one pass (eval mode)".into(),
                x_axis: XAxis::Categories(BATCH_SIZES.iter().map(|b| b.to_string()).collect()),
                x_label: "batch size".into(),
                y_label: "test accuracy".into(),
                y_range: None,
                series: sweep,
                legend: SeriesLabelPosition::LowerRight,
            },
            Panel {
                title: "batch-64 networks: train mode by test batch, and eval mode".into(),
                x_axis: XAxis::Categories(categories),
                x_label: "test pass".into(),
                y_label: "test accuracy".into(),
                y_range: Some((0.0, 1.0)),
                series: passes,
                legend: SeriesLabelPosition::LowerRight,
            },
        ],
    }
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
            [0.80, 0.70, 0.85, 0.86, 0.75],
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
                "The best test accuracy at each batch size: group at 2 (by 1.00 points), group \
                 at 4 (by 1.00 points), group at 8 (by 1.00 points), batch at 16 (by 0.00 \
                 points), batch at 64 (by 0.00 points), batch at 256 (by 0.00 points). Each \
                 norm's lead over no norm, in points: batch +25.00 at batch 256 and -10.00 at \
                 batch 2; layer +10.00 at batch 256 and +5.00 at batch 2;"
            ),
            "{f}"
        );
        // Group norm's lead: 6, 5, 3, 3, 5, 6 → swings 3 points; batch norm's -10 … +25: 35.
        assert!(
            f.contains(
                "group norm's lead over no norm moves by 3.00 points across the batch sizes \
                 and batch norm's by 35.00"
            ),
            "{f}"
        );
        assert!(f.contains("group norm is the flatter of the two in this run."), "{f}");
        assert!(
            f.contains("Batch norm falls behind layer norm at batch 2 (in this run), 4 (in this run)."),
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
    fn where_batch_norm_leads_everywhere_and_group_norm_swings_the_findings_say_so() {
        let mut s = summary([[0.5, 0.9, 0.8, 0.6, 0.9]; 6]);
        s.sizes[0].networks[3].test_accuracy = 0.95;
        let two = [s.clone(), wu_and_he()];
        let f = findings(&[s.clone()]);
        assert!(
            f.contains("Batch norm is ahead of layer norm at every batch size tried."),
            "{f}"
        );
        assert!(f.contains("group norm is the flatter of the two in no seed."), "{f}");
        // Over two seeds: means with their ranges, and claims counted per seed.
        let f = findings(&two);
        assert!(f.starts_with("The best mean test accuracy at each batch size:"), "{f}");
        assert!(f.contains("flatter of the two in 1 of 2 seeds"), "{f}");
        assert!(f.contains("Batch norm falls behind layer norm at batch 2 (in 1 of 2 seeds)"), "{f}");
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
