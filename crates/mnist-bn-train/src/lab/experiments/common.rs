//! What the experiments share: pairs of runs, the analysis each returns, and the small pieces
//! of their tables and figures.

use burn::nn::Initializer;
use mnist_bn_model::{MlpConfig, Net, Norm};
use plotters::style::RGBColor;

use super::seeds::{Diverged, Spread, band, curve_spread, loss, score};
use crate::lab::run::{Outcome, Run};
use crate::learner::TrainingConfig;
use crate::plot::figure::{BATCH_NORM, Figure, Mark, PLAIN, Panel, Series, XAxis};
use plotters::chart::SeriesLabelPosition;

/// A model for `inference` to test, and where it came from.
pub(super) type Tested = (Net, String);

/// What an experiment's analysis gives (the section of `lab.md` and `lab.json` without what
/// the driver measures: the figure's name and the time).
#[derive(Debug)]
pub(super) struct Analysis<S> {
    /// What it asks.
    pub question: &'static str,
    /// How it is set up.
    pub setup: String,
    /// The summaries its table and findings are computed from, one per seed.
    pub summary: Vec<S>,
    /// The results table, in Markdown.
    pub table: String,
    /// What the numbers show, written from the summary.
    pub findings: String,
    /// Every run.
    pub runs: Vec<Outcome>,
}

/// The two networks of a setting, with batch norm first; they start from the same weights.
pub(super) fn pair(
    setting: &str,
    config: MlpConfig,
    run: impl Fn(String, MlpConfig) -> Run,
) -> [Run; 2] {
    [(Norm::Batch, "bn"), (Norm::None, "plain")].map(|(norm, suffix)| {
        let mut config = config.clone();
        config.norm = norm;
        run(format!("{setting}, {suffix}"), config)
    })
}

/// The lesson's MLP with PyTorch's default weights, uniform in ±1/√fan_in (Burn's default
/// `KaimingUniform` with gain 1/√3), but biases at zero, so that the network with batch norm
/// gets exactly its plain twin's weights.
pub(super) fn lesson_weights() -> MlpConfig {
    MlpConfig::new(Norm::Batch).with_weight_init(Some(Initializer::KaimingUniform {
        gain: 1.0 / 3f64.sqrt(),
        fan_out_only: false,
    }))
}

/// The grid's network, 784-100-100-100-10 with ReLUs, with [`lesson_weights`]: what
/// `landscape` and `ics` measure.
pub(super) fn relu_3x100() -> MlpConfig {
    MlpConfig {
        hidden: vec![100; 3],
        ..lesson_weights()
    }
}

pub(super) fn normal(std: f64) -> Option<Initializer> {
    Some(Initializer::Normal { mean: 0.0, std })
}

pub(super) fn sgd(lr: f64, batch_size: usize, seed: u64) -> TrainingConfig {
    TrainingConfig::new()
        .with_lr(lr)
        .with_batch_size(batch_size)
        .with_seed(seed)
}

/// One network of a pair at one value of a sweep, over the seeds: its training loss, test
/// accuracy and divergences.
pub(super) type Measured = (Spread, Spread, Diverged);

/// A network of a sweep at one value of its setting, in one seed: what its table cells and the
/// findings read (`batch-size`, `init-scale`, `learning-rate`).
pub(super) trait SweepNetwork {
    /// The training loss the sweep reports (the epoch's mean, or the last 100 steps').
    fn loss(&self) -> f64;
    /// Test accuracy.
    fn accuracy(&self) -> f64;
    /// The step at which it diverged, if it did.
    fn diverged_at(&self) -> Option<usize>;
}

/// Network `net` of a sweep's row over the seeds (each seed's row): its training loss, test
/// accuracy and divergences.
pub(super) fn measured<R, N: SweepNetwork>(row: &[&R], net: fn(&R) -> &N) -> Measured {
    (
        Spread::over(row, |r| net(r).loss()),
        Spread::over(row, |r| net(r).accuracy()),
        Diverged::over(row, |r| net(r).diverged_at()),
    )
}

/// A sweep's four table cells for one value of its setting: the training loss with batch norm
/// and without, then the test accuracy with and without, each naming its divergences.
pub(super) fn pair_cells(bn: Measured, plain: Measured) -> [String; 4] {
    [
        loss(bn.0, bn.2),
        loss(plain.0, plain.2),
        score(bn.1, bn.2),
        score(plain.1, plain.2),
    ]
}

/// The figure of a sweep (one setting varied, the networks with and without batch norm at each
/// value: `batch-size`, `init-scale`, `learning-rate`): training loss and test accuracy against
/// the setting, side by side, batch norm blue and plain orange, each the mean over the seeds
/// with a band from the lowest to the highest seed.
#[derive(Debug)]
pub(super) struct Sweep {
    /// The figure's title.
    pub title: String,
    /// The x axis of both panels.
    pub x_axis: XAxis,
    /// Its label.
    pub x_label: &'static str,
    /// Per value: its x, and (training loss, test accuracy) with batch norm and without.
    pub points: Vec<(f64, [(Spread, Spread); 2])>,
    /// The titles of the loss panel and the accuracy panel.
    pub titles: [&'static str; 2],
    /// The loss panel's y label.
    pub loss_label: &'static str,
    /// The accuracy panel's y range (`None` fits the data).
    pub accuracy_range: Option<(f64, f64)>,
    /// Where each panel's legend goes.
    pub legends: [SeriesLabelPosition; 2],
}

impl Sweep {
    pub(super) fn figure(self) -> Figure {
        let values = |which: fn((Spread, Spread)) -> Spread, k: usize| -> Vec<(f64, Spread)> {
            self.points.iter().map(|(x, n)| (*x, which(n[k]))).collect()
        };
        let panel = |i: usize, y_label: &str, which: fn((Spread, Spread)) -> Spread, y_range| {
            let networks = [("batch norm", BATCH_NORM, 0), ("plain", PLAIN, 1)];
            let bands = networks
                .iter()
                .filter_map(|&(_, color, k)| band(color, values(which, k)));
            let means = networks.iter().map(|&(label, color, k)| {
                let points = values(which, k).into_iter().map(|(x, s)| (x, s.mean));
                dots(label, color, points.collect())
            });
            Panel {
                title: self.titles[i].into(),
                x_axis: self.x_axis.clone(),
                x_label: self.x_label.into(),
                y_label: y_label.into(),
                y_range,
                series: bands.chain(means).collect(),
                legend: self.legends[i].clone(),
            }
        };
        let panels = vec![
            panel(0, self.loss_label, |n| n.0, None),
            panel(1, "test accuracy", |n| n.1, self.accuracy_range),
        ];
        Figure {
            title: self.title,
            columns: 2,
            panel_size: (560, 400),
            panels,
        }
    }
}

/// One y range, padded, for every probed percentile of the runs of `per_seed`: the scale of an
/// experiment's percentile panels.
pub(super) fn probe_range(per_seed: &[Vec<Outcome>]) -> Option<(f64, f64)> {
    let values = per_seed
        .iter()
        .flatten()
        .flat_map(|o| o.curve.iter().filter_map(|p| p.probe))
        .flatten()
        .filter(|v| v.is_finite());
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let pad = ((hi - lo) * 0.05).max(0.05);
    (lo <= hi).then_some((lo - pad, hi + pad))
}

/// Run `k`'s probed 15th, 50th and 85th percentiles over steps in each seed's list of
/// `per_seed`, as series: the mean over the seeds, the median thick in `color` with a band from
/// the lowest to the highest seed, the outer two thin and lighter; labelled when `legend`.
pub(super) fn percentile_series(
    per_seed: &[Vec<Outcome>],
    k: usize,
    color: RGBColor,
    legend: bool,
) -> Vec<Series> {
    let spread = |i: usize| {
        let curves: Vec<Vec<(f64, f64)>> = per_seed
            .iter()
            .map(|o| {
                o[k].curve
                    .iter()
                    .filter_map(|p| p.probe.map(|q| (p.step as f64, q[i])))
                    .collect()
            })
            .collect();
        curve_spread(&curves)
    };
    let lines = (0..3).map(|i| Series {
        label: if legend {
            ["15th", "50th", "85th"][i].to_string() + " percentile"
        } else {
            String::new()
        },
        color: if i == 1 { color } else { lighter(color) },
        mark: Mark::Line {
            width: if i == 1 { 3 } else { 1 },
        },
        points: spread(i).iter().map(|(x, s)| (*x, s.mean)).collect(),
    });
    band(color, spread(1)).into_iter().chain(lines).collect()
}

pub(super) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut md = format!(
        "| {} |\n|{}\n",
        header.join(" | "),
        "---|".repeat(header.len())
    );
    for row in rows {
        md.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    md
}

pub(super) fn line(label: &str, color: RGBColor, points: Vec<(f64, f64)>) -> Series {
    Series {
        label: label.to_string(),
        color,
        mark: Mark::Line { width: 2 },
        points,
    }
}

pub(super) fn dots(label: &str, color: RGBColor, points: Vec<(f64, f64)>) -> Series {
    Series {
        label: label.to_string(),
        color,
        mark: Mark::LineDots,
        points,
    }
}

pub(super) fn accuracy_curve(outcome: &Outcome) -> Vec<(f64, f64)> {
    outcome
        .curve
        .iter()
        .map(|p| (p.step as f64, p.accuracy))
        .collect()
}

/// Halfway between `color` and white.
pub(super) fn lighter(color: RGBColor) -> RGBColor {
    let half = |c: u8| ((u16::from(c) + 255) / 2) as u8;
    RGBColor(half(color.0), half(color.1), half(color.2))
}

pub(super) fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or(String::new(), |c| {
        c.to_uppercase().collect::<String>() + chars.as_str()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_tables_have_a_separator_per_column() {
        let md = table(&["a", "b"], &[vec!["1".into(), "2".into()]]);
        assert_eq!(md, "| a | b |\n|---|---|\n| 1 | 2 |\n");
    }

    #[test]
    fn pairs_put_batch_norm_first_with_the_same_settings() {
        let runs = pair("x", MlpConfig::new(Norm::None), |name, config| {
            Run::new(name, config, sgd(0.1, 8, 3), 5)
        });
        assert_eq!(runs[0].name, "x, bn");
        assert_eq!(runs[1].name, "x, plain");
        assert_eq!(runs[0].config.norm, Norm::Batch);
        assert_eq!(runs[1].config.norm, Norm::None);
    }

    #[test]
    fn capitalize_uppercases_only_the_first_letter() {
        assert_eq!(capitalize("with batch norm"), "With batch norm");
        assert_eq!(capitalize(""), "");
    }
}
