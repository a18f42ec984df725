//! `grid`: activation × learning rate × initial weights, with and without batch norm.

use mnist_bn_model::{Activation, MlpConfig, Norm};
use plotters::chart::SeriesLabelPosition;
use serde::{Serialize, Serializer};

use super::common::{Analysis, accuracy_curve, line, normal, pair, sgd};
use super::seeds::{Diverged, Spread, band, curve_spread, in_seeds, mean_word, score, transpose};
use crate::lab::run::{LabData, MeasureOn, Outcome, Run, TrainOn};
use crate::plot::figure::{BATCH_NORM, Figure, PLAIN, Panel, XAxis};

/// One setting of the grid.
#[derive(Debug, Clone, Copy)]
struct Setting {
    activation: Activation,
    lr: f64,
    std: f64,
}

const GRID_LRS: [f64; 3] = [0.01, 1.0, 2.0];
const GRID_STDS: [f64; 2] = [0.05, 5.0];

/// Rows of the figure: activation × initial weights; columns: learning rate.
fn grid_settings() -> Vec<Setting> {
    let mut settings = Vec::new();
    for activation in [Activation::Relu, Activation::Sigmoid] {
        for std in GRID_STDS {
            for lr in GRID_LRS {
                settings.push(Setting {
                    activation,
                    lr,
                    std,
                });
            }
        }
    }
    settings
}

impl Setting {
    fn label(&self) -> String {
        format!(
            "{}, lr {}, std {} ({})",
            self.activation_name(),
            self.lr,
            self.std,
            self.init_name()
        )
    }

    fn activation_name(&self) -> &'static str {
        match self.activation {
            Activation::Relu => "ReLU",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
        }
    }

    fn init_name(&self) -> &'static str {
        if self.std < 1.0 { "reasonable" } else { "bad" }
    }

    /// The older TensorFlow lesson's published test accuracy after 50,000 steps, with and
    /// without batch norm, where it states one.
    fn published(&self) -> Option<Published> {
        let (batch_norm, plain) = match (self.activation, self.lr, self.std) {
            (Activation::Relu, lr, std) if lr == 1.0 && std == 0.05 => (0.98, 0.10),
            (Activation::Sigmoid, lr, std) if lr == 0.01 && std == 0.05 => (0.97, 0.83),
            (Activation::Relu, lr, std) if lr == 0.01 && std == 5.0 => (0.80, 0.10),
            _ => return None,
        };
        Some(Published { batch_norm, plain })
    }
}

/// What `grid` found: one row per setting, in the order of the figure's panels.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct GridSummary {
    /// Every setting: ReLU then sigmoid, reasonable then bad weights, learning rates rising.
    pub settings: Vec<GridRow>,
}

/// One setting of `grid`: its two networks' test accuracy.
///
/// The fields `lab.json` holds are in alphabetical order: this summary used to be a
/// `serde_json` map, which sorts its keys, and `lab.json` keeps that order.
#[derive(Debug, Clone, Serialize)]
pub struct GridRow {
    /// The activation, by its lowercase name in `lab.json`.
    #[serde(serialize_with = "activation_name")]
    pub activation: Activation,
    /// Test accuracy with batch norm.
    pub batch_norm: f64,
    /// The step at which the network with batch norm diverged, if it did.
    pub batch_norm_diverged_at: Option<usize>,
    /// Learning rate.
    pub lr: f64,
    /// Test accuracy without batch norm.
    pub plain: f64,
    /// The step at which the network without batch norm diverged, if it did.
    pub plain_diverged_at: Option<usize>,
    /// The older TensorFlow lesson's test accuracy after 50,000 steps, where it states one.
    #[serde(rename = "published_50000_steps")]
    pub published: Option<Published>,
    /// Standard deviation of the initial weights.
    pub std: f64,
}

/// A published pair of test accuracies.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Published {
    /// With batch norm.
    pub batch_norm: f64,
    /// Without.
    pub plain: f64,
}

fn activation_name<S: Serializer>(activation: &Activation, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(activation.name())
}

impl GridRow {
    fn setting(&self) -> Setting {
        Setting {
            activation: self.activation,
            lr: self.lr,
            std: self.std,
        }
    }
}

/// Every setting's two networks, batch norm first.
pub(super) fn runs(steps: usize, seed: u64) -> Vec<Run> {
    grid_settings()
        .iter()
        .flat_map(|s| {
            let config = MlpConfig::new(Norm::Batch)
                .with_hidden(vec![100; 3])
                .with_activation(s.activation)
                .with_weight_init(normal(s.std));
            pair(&s.label(), config, |name, config| Run {
                train_on: TrainOn::Fit,
                measure_every: 50,
                measure_on: MeasureOn::Validation,
                ..Run::new(name, config, sgd(s.lr, 60, seed), steps)
            })
        })
        .collect()
}

/// The section and figure of the outcomes of [`runs`], one list per seed.
pub(super) fn report(
    per_seed: Vec<Vec<Outcome>>,
    data: &LabData,
) -> (Analysis<GridSummary>, Figure) {
    let steps = per_seed.iter().flatten().next().map_or(0, |o| o.steps);
    let seeds: Vec<GridSummary> = per_seed.iter().map(|o| summarize(o)).collect();
    let (table, findings) = (table(&seeds), findings(&seeds));
    let figure = figure(&per_seed, steps);
    let analysis = Analysis {
        question: "Where does a plain network fail and the same network with batch norm train?",
        setup: format!(
            "784-100-100-100-10, batch 60, plain SGD, {steps} steps on the first {} training \
                 images; validation accuracy every 50 steps on the last {}, test accuracy at the \
                 end. Both networks of a setting start from the same weights (normal, biases 0); with \
                 batch norm the hidden layers have no bias and batch norm comes before the activation.",
            data.fit.len(),
            data.validation.len()
        ),
        table,
        findings,
        summary: seeds,
        runs: per_seed.into_iter().flatten().collect(),
    };
    (analysis, figure)
}

fn summarize(outcomes: &[Outcome]) -> GridSummary {
    let settings = grid_settings()
        .iter()
        .zip(outcomes.chunks(2))
        .map(|(setting, pair)| {
            let (bn, plain) = (&pair[0], &pair[1]);
            GridRow {
                activation: setting.activation,
                batch_norm: bn.test_accuracy,
                batch_norm_diverged_at: bn.diverged_at,
                lr: setting.lr,
                plain: plain.test_accuracy,
                plain_diverged_at: plain.diverged_at,
                published: setting.published(),
                std: setting.std,
            }
        })
        .collect();
    GridSummary { settings }
}

/// Both networks of a setting over the seeds (each seed's row): test accuracy with batch norm
/// and without, and their divergences.
fn measured(row: &[&GridRow]) -> [(Spread, Diverged); 2] {
    [
        (
            Spread::over(row, |r| r.batch_norm),
            Diverged::over(row, |r| r.batch_norm_diverged_at),
        ),
        (
            Spread::over(row, |r| r.plain),
            Diverged::over(row, |r| r.plain_diverged_at),
        ),
    ]
}

fn table(seeds: &[GridSummary]) -> String {
    let rows: Vec<Vec<String>> = transpose(seeds, |s| &s.settings)
        .iter()
        .map(|row| {
            let setting = row[0].setting();
            let published = row[0].published.map_or("–".to_string(), |p| {
                format!("≈{:.0}% / ≈{:.0}%", 100.0 * p.batch_norm, 100.0 * p.plain)
            });
            let [bn, plain] = measured(row);
            vec![
                setting.activation_name().to_string(),
                setting.lr.to_string(),
                format!("{} ({})", setting.std, setting.init_name()),
                score(bn.0, bn.1),
                score(plain.0, plain.1),
                published,
            ]
        })
        .collect();
    super::common::table(
        &[
            "activation",
            "lr",
            "initial weights (std)",
            "test accuracy, batch norm",
            "test accuracy, plain",
            "published, 50,000 steps (BN / plain)",
        ],
        &rows,
    )
}

/// The settings where a network did not learn (accuracy under 20%), given each row's accuracy.
fn failed(rows: &[Vec<&GridRow>], accuracy: impl Fn(&[&GridRow]) -> f64) -> Vec<String> {
    rows.iter()
        .filter(|row| accuracy(row) < 0.2)
        .map(|row| row[0].setting().label())
        .collect()
}

/// What the grid shows, on the mean over the seeds: where each network leads, fails and
/// diverges, and the largest gap; and in how many seeds batch norm learned everywhere a plain
/// network failed somewhere.
fn findings(seeds: &[GridSummary]) -> String {
    let n = seeds.len();
    let rows = transpose(seeds, |s| &s.settings);
    let (mut ahead, mut behind) = (0, 0);
    let mut gap: Option<(f64, String, Spread, Spread)> = None;
    for row in &rows {
        let [bn, plain] = measured(row);
        let lead = bn.0.mean - plain.0.mean;
        ahead += usize::from(lead > 0.05);
        behind += usize::from(lead < -0.05);
        if gap.as_ref().is_none_or(|g| lead.abs() > g.0.abs()) {
            gap = Some((lead, row[0].setting().label(), bn.0, plain.0));
        }
    }
    let mean = |net: usize| move |row: &[&GridRow]| measured(row)[net].0.mean;
    let (bn_failed, plain_failed) = (failed(&rows, mean(0)), failed(&rows, mean(1)));
    let list = |names: &[String]| {
        if names.is_empty() {
            String::new()
        } else {
            format!(": {}", names.join("; "))
        }
    };
    let diverged =
        |net: usize| -> usize { rows.iter().map(|row| measured(row)[net].1.count).sum() };
    let settings = rows.len();
    let word = mean_word(n);
    let mut findings = format!(
        "With batch norm the network ended more than 5 points ahead in {ahead} of {settings} \
         settings and more than 5 points behind in {behind}{}. Without batch norm {} of \
         {settings} networks did not learn ({word}test accuracy under 20%{}); with it, {}{}. {} \
         of {} plain and {} of {} batch-norm networks diverged (a loss that was not a number).",
        if n > 1 { " (on the means)" } else { "" },
        plain_failed.len(),
        list(&plain_failed),
        bn_failed.len(),
        list(&bn_failed),
        diverged(1),
        settings * n,
        diverged(0),
        settings * n,
    );
    if let Some((lead, label, bn, plain)) = gap {
        findings.push_str(&format!(
            " The largest gap ({:+.1} points) is {label}: {} with batch norm against {} without.",
            100.0 * lead,
            bn.pct(),
            plain.pct()
        ));
    }
    // In each seed alone: batch norm learned everywhere, the plain network failed somewhere.
    let holds = |s: &GridSummary| {
        let rows: Vec<Vec<&GridRow>> = s.settings.iter().map(|r| vec![r]).collect();
        failed(&rows, mean(0)).is_empty() && !failed(&rows, mean(1)).is_empty()
    };
    if bn_failed.is_empty() && !plain_failed.is_empty() {
        findings.push_str(
            " Batch norm keeps every hidden layer's input to the activation at the mean and \
             scale it learns, whatever the scale of the weights before it: here neither a large \
             learning rate nor a bad initial scale stopped a network with it from learning.",
        );
        if n > 1 {
            let k = seeds.iter().filter(|s| holds(s)).count();
            findings.push_str(&format!(
                " Seed by seed, this held {} (batch norm learned in every setting and a plain \
                 network failed in at least one).",
                in_seeds(k, n)
            ));
        }
    }
    findings
}

/// Small multiples: one panel per setting, the two networks' validation accuracy over steps
/// (the mean over the seeds, with a band from the lowest to the highest seed).
fn figure(per_seed: &[Vec<Outcome>], steps: usize) -> Figure {
    let mut panels = Vec::new();
    for (i, setting) in grid_settings().iter().enumerate() {
        // Each seed's network of this setting (batch norm `0`, plain `1`).
        let of =
            |net: usize| -> Vec<&Outcome> { per_seed.iter().map(|o| &o[2 * i + net]).collect() };
        let diverged = |net: usize, who: &str| {
            let d = Diverged::over(&of(net), |o| o.diverged_at);
            match (d.first, d.seeds) {
                (None, _) => String::new(),
                (Some(step), 1) => format!(", {who} NaN@{step}"),
                (Some(step), n) => format!(", {who} NaN@{step} ({}/{n})", d.count),
            }
        };
        let first = panels.is_empty();
        let label = |name: &str| {
            if first {
                name.to_string()
            } else {
                String::new()
            }
        };
        let curves = |net: usize| {
            let curves: Vec<Vec<(f64, f64)>> = of(net).iter().map(|o| accuracy_curve(o)).collect();
            curve_spread(&curves)
        };
        let mean = |spread: &[(f64, Spread)]| spread.iter().map(|(x, s)| (*x, s.mean)).collect();
        let (bn, plain) = (curves(0), curves(1));
        let bands = [band(BATCH_NORM, bn.clone()), band(PLAIN, plain.clone())];
        panels.push(Panel {
            title: format!(
                "{} · lr {} · std {}{}{}",
                setting.activation_name(),
                setting.lr,
                setting.std,
                diverged(0, "BN"),
                diverged(1, "plain")
            ),
            x_axis: XAxis::Linear,
            x_label: "step".into(),
            y_label: "validation accuracy".into(),
            y_range: Some((0.0, 1.0)),
            series: bands
                .into_iter()
                .flatten()
                .chain([
                    line(&label("batch norm"), BATCH_NORM, mean(&bn)),
                    line(&label("plain"), PLAIN, mean(&plain)),
                ])
                .collect(),
            legend: SeriesLabelPosition::LowerRight,
        });
    }
    Figure {
        title: format!(
            "Validation accuracy over {steps} steps: batch norm (blue) vs plain (orange)"
        ),
        columns: GRID_LRS.len(),
        panel_size: (440, 300),
        panels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A grid with the given test accuracies (batch norm, plain) per setting, none diverged.
    fn summary(accuracies: &[(f64, f64)]) -> GridSummary {
        let settings = grid_settings()
            .iter()
            .zip(accuracies)
            .map(|(s, &(batch_norm, plain))| GridRow {
                activation: s.activation,
                batch_norm,
                batch_norm_diverged_at: None,
                lr: s.lr,
                plain,
                plain_diverged_at: None,
                published: s.published(),
                std: s.std,
            })
            .collect();
        GridSummary { settings }
    }

    #[test]
    fn the_grid_has_twelve_settings_in_pairs_with_the_same_seed() {
        let runs = runs(100, 7);
        assert_eq!(runs.len(), 24);
        for pair in runs.chunks(2) {
            assert_eq!(pair[0].config.norm, Norm::Batch);
            assert_eq!(pair[1].config.norm, Norm::None);
            assert_eq!(pair[0].training.seed, pair[1].training.seed);
            assert_eq!(pair[0].config.weight_init, pair[1].config.weight_init);
            assert_eq!(pair[0].config.hidden, vec![100; 3]);
        }
        let published: Vec<_> = grid_settings()
            .iter()
            .filter_map(|s| s.published())
            .collect();
        assert_eq!(published.len(), 3);
    }

    #[test]
    fn where_plain_networks_fail_and_batch_norm_learns_the_findings_say_so() {
        let mut s = summary(&[(0.9, 0.88); 12]);
        // ReLU, lr 1, std 0.05: batch norm learns, the plain network diverges.
        s.settings[1].plain = 0.1;
        s.settings[1].plain_diverged_at = Some(7);
        let findings = findings(&[s]);
        assert!(findings.starts_with(
            "With batch norm the network ended more than 5 points ahead in 1 of 12 settings \
             and more than 5 points behind in 0. Without batch norm 1 of 12 networks did not \
             learn (test accuracy under 20%: ReLU, lr 1, std 0.05 (reasonable)); with it, 0. \
             1 of 12 plain and 0 of 12 batch-norm networks diverged"
        ));
        assert!(findings.contains(
            "The largest gap (+80.0 points) is ReLU, lr 1, std 0.05 (reasonable): 90.00% with \
             batch norm against 10.00% without."
        ));
        assert!(findings.contains("neither a large learning rate nor a bad initial scale"));
    }

    #[test]
    fn where_batch_norm_loses_the_findings_say_so() {
        let mut s = summary(&[(0.9, 0.9); 12]);
        // Sigmoid, lr 2, std 5: only the network with batch norm fails.
        s.settings[11].batch_norm = 0.15;
        s.settings[11].batch_norm_diverged_at = Some(40);
        // ReLU, lr 0.01, std 0.05: batch norm 3 points behind, under the 5-point threshold;
        // ReLU, lr 2, std 5: 10 points behind.
        s.settings[0].batch_norm = 0.87;
        s.settings[5].batch_norm = 0.8;
        let findings = findings(&[s]);
        assert!(findings.starts_with(
            "With batch norm the network ended more than 5 points ahead in 0 of 12 settings \
             and more than 5 points behind in 2. Without batch norm 0 of 12 networks did not \
             learn (test accuracy under 20%); with it, 1: sigmoid, lr 2, std 5 (bad). \
             0 of 12 plain and 1 of 12 batch-norm networks diverged"
        ));
        assert!(findings.contains(
            "The largest gap (-75.0 points) is sigmoid, lr 2, std 5 (bad): 15.00% with batch \
             norm against 90.00% without."
        ));
        assert!(!findings.contains("neither a large learning rate"));
    }

    #[test]
    fn over_seeds_the_findings_read_the_means_and_count_the_seeds_that_agree() {
        let mut a = summary(&[(0.9, 0.88); 12]);
        a.settings[1].plain = 0.1;
        a.settings[1].plain_diverged_at = Some(7);
        let mut b = a.clone();
        b.settings[1].plain_diverged_at = None;
        // Seed 2: the plain network learns there, so no plain network fails in that seed.
        let mut c = a.clone();
        c.settings[1].plain = 0.25;
        c.settings[1].plain_diverged_at = Some(9);
        let findings = findings(&[a, b, c]);
        assert!(
            findings.starts_with(
                "With batch norm the network ended more than 5 points ahead in 1 of 12 settings \
                 and more than 5 points behind in 0 (on the means). Without batch norm 1 of 12 \
                 networks did not learn (mean test accuracy under 20%: ReLU, lr 1, std 0.05 \
                 (reasonable)); with it, 0. 2 of 36 plain and 0 of 36 batch-norm networks \
                 diverged"
            ),
            "{findings}"
        );
        assert!(
            findings.contains(
                "The largest gap (+75.0 points) is ReLU, lr 1, std 0.05 (reasonable): 90.00% \
                 (90.00–90.00) with batch norm against 15.00% (10.00–25.00) without."
            ),
            "{findings}"
        );
        assert!(
            findings.ends_with(
                "Seed by seed, this held in 2 of 3 seeds (batch norm learned in every setting \
                 and a plain network failed in at least one)."
            ),
            "{findings}"
        );
    }

    #[test]
    fn the_table_scores_each_setting_with_its_published_figures() {
        let mut s = summary(&[(0.5, 0.25); 12]);
        s.settings[1].plain_diverged_at = Some(3);
        let table = table(&[s]);
        assert!(
            table.contains("| ReLU | 1 | 0.05 (reasonable) | 50.00% | 25.00%, diverged at step 3 | ≈98% / ≈10% |"),
            "{table}"
        );
        assert!(
            table.contains("| sigmoid | 2 | 5 (bad) | 50.00% | 25.00% | – |"),
            "{table}"
        );
    }

    #[test]
    fn the_summary_keeps_lab_json_keys_and_values() {
        let mut s = summary(&[(0.5, 0.25); 2]);
        s.settings[1].plain_diverged_at = Some(3);
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            "[{\"activation\":\"relu\",\"batch_norm\":0.5,\"batch_norm_diverged_at\":null,\
             \"lr\":0.01,\"plain\":0.25,\"plain_diverged_at\":null,\
             \"published_50000_steps\":null,\"std\":0.05},\
             {\"activation\":\"relu\",\"batch_norm\":0.5,\"batch_norm_diverged_at\":null,\
             \"lr\":1.0,\"plain\":0.25,\"plain_diverged_at\":3,\
             \"published_50000_steps\":{\"batch_norm\":0.98,\"plain\":0.1},\"std\":0.05}]"
        );
    }
}
