//! The experiments: each is a list of runs (data for the driver), then a typed summary of the
//! outcomes, and from that summary a table and a paragraph; the figure draws the outcomes.
//!
//! One file per experiment (`grid.rs`, `distributions.rs`, `inference.rs`, `batch_size.rs`,
//! `init_scale.rs`), each with its runs, its summary, its findings (a function of the summary
//! alone, so that tests can hand it summaries where the answer flips), its table and its
//! figure. This file holds what they share.

mod batch_size;
mod distributions;
mod grid;
mod inference;
mod init_scale;

pub use batch_size::{BatchSizeNetwork, BatchSizeRow, BatchSizeSummary};
pub use distributions::{DistributionsRow, DistributionsSummary};
pub use grid::{GridRow, GridSummary, Published};
pub use inference::{InferencePass, InferenceSummary};
pub use init_scale::{InitScaleNetwork, InitScaleRow, InitScaleSummary};

use std::path::Path;
use web_time::Instant;

use burn::nn::Initializer;
use burn::tensor::Device;
use mnist_bn_model::{MlpConfig, Net, NetConfig, Norm};
use plotters::style::RGBColor;

use super::driver::{LabData, Outcome, Run, run_all};
use super::progress::LabProgress;
use super::{Experiment, LabOptions, Section, Summary};
use crate::TrainError;
use crate::checkpoint::load_checkpoint;
use crate::figure::{Mark, Series};
use crate::learner::TrainingConfig;

/// The runs of an experiment (none for `inference` given a checkpoint to test).
pub(super) fn plan(experiment: Experiment, data: &LabData, options: &LabOptions) -> Vec<Run> {
    let steps = |default| options.steps.unwrap_or(default);
    match experiment {
        Experiment::Grid => grid::runs(steps(2000), options.seed),
        Experiment::Distributions => distributions::runs(steps(10_000), options.seed),
        Experiment::Inference if options.checkpoint.is_some() => Vec::new(),
        Experiment::Inference => vec![inference::lesson_run(data, options.seed)],
        Experiment::BatchSize => batch_size::runs(data, options.seed),
        Experiment::InitScale => init_scale::runs(steps(2000), options.seed),
    }
}

/// A model for `inference` to test, and where it came from.
pub(super) type Tested = (Net, String);

/// Loads `--checkpoint` for `inference` (onto the autodiff device, so that each test pass can
/// take its own copy of the running statistics); it must hold an MLP with batch norm.
pub(super) fn load_tested(path: &Path, device: &Device) -> Result<Tested, TrainError> {
    let checkpoint = load_checkpoint(path, &device.clone().autodiff())?;
    let is_bn_mlp = matches!(&checkpoint.config, NetConfig::Mlp(c) if c.norm == Norm::Batch);
    if !is_bn_mlp {
        return Err(TrainError::checkpoint(
            &checkpoint.path,
            "does not hold an MLP with batch norm; the inference experiment needs one",
        ));
    }
    let source = format!("the checkpoint {}", checkpoint.path.display());
    Ok((checkpoint.model, source))
}

/// Runs one experiment's `runs` on the driver, then its analysis, table and figure.
pub(super) fn run(
    experiment: Experiment,
    runs: &[Run],
    tested: Option<Tested>,
    data: &LabData,
    options: &LabOptions,
    device: &Device,
) -> Result<Section, TrainError> {
    let started = Instant::now();
    let networks = match runs.len() {
        1 => "1 network".to_string(),
        n => format!("{n} networks"),
    };
    println!("== lab: {experiment} ({networks}) ==");
    let progress = LabProgress::new(
        options.progress,
        experiment.name(),
        runs.iter().map(|r| r.steps).sum(),
    );
    let outcomes = run_all(runs, data, device, options, &progress)?;
    progress.finish();
    let (mut section, figure) = match experiment {
        Experiment::Grid => grid::report(outcomes, data),
        Experiment::Distributions => distributions::report(outcomes, data),
        Experiment::Inference => inference::report(outcomes, tested, data, device),
        Experiment::BatchSize => batch_size::report(outcomes, data),
        Experiment::InitScale => init_scale::report(outcomes, data),
    };
    figure.write(&options.out.join(experiment.name()))?;
    section.figure = format!("{}.png", experiment.name());
    section.seconds = started.elapsed().as_secs_f64();
    Ok(section)
}

/// The two networks of a setting, with batch norm first; they start from the same weights.
fn pair(setting: &str, config: MlpConfig, run: impl Fn(String, MlpConfig) -> Run) -> [Run; 2] {
    [Norm::Batch, Norm::None].map(|norm| {
        let suffix = match norm {
            Norm::Batch => "bn",
            Norm::None => "plain",
        };
        let mut config = config.clone();
        config.norm = norm;
        run(format!("{setting}, {suffix}"), config)
    })
}

fn normal(std: f64) -> Option<Initializer> {
    Some(Initializer::Normal { mean: 0.0, std })
}

fn sgd(lr: f64, batch_size: usize, seed: u64) -> TrainingConfig {
    TrainingConfig::new()
        .with_lr(lr)
        .with_batch_size(batch_size)
        .with_seed(seed)
}

/// A section with its question, setup and summary; the caller fills in the table, the
/// findings and the runs, and [`run`] the figure and the time.
fn section(experiment: Experiment, question: &str, setup: String, summary: Summary) -> Section {
    Section {
        experiment,
        question: question.to_string(),
        setup,
        seconds: 0.0,
        figure: String::new(),
        table: String::new(),
        findings: String::new(),
        summary,
        runs: Vec::new(),
    }
}

fn pct(accuracy: f64) -> String {
    format!("{:.2}%", 100.0 * accuracy)
}

/// Test accuracy, with the step of divergence when there was one.
fn score(accuracy: f64, diverged_at: Option<usize>) -> String {
    match diverged_at {
        Some(step) => format!("{} (diverged at step {step})", pct(accuracy)),
        None => pct(accuracy),
    }
}

/// A training loss, or the step of divergence when there was one.
fn loss(value: f64, diverged_at: Option<usize>) -> String {
    match diverged_at {
        Some(step) => format!("diverged at step {step}"),
        None => format!("{value:.4}"),
    }
}

fn table(header: &[&str], rows: &[Vec<String>]) -> String {
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

fn line(label: &str, color: RGBColor, points: Vec<(f64, f64)>) -> Series {
    Series {
        label: label.to_string(),
        color,
        mark: Mark::Line { width: 2 },
        points,
    }
}

fn dots(label: &str, color: RGBColor, points: Vec<(f64, f64)>) -> Series {
    Series {
        label: label.to_string(),
        color,
        mark: Mark::LineDots,
        points,
    }
}

fn accuracy_curve(outcome: &Outcome) -> Vec<(f64, f64)> {
    outcome
        .curve
        .iter()
        .map(|p| (p.step as f64, p.accuracy))
        .collect()
}

/// Halfway between `color` and white.
fn lighter(color: RGBColor) -> RGBColor {
    let half = |c: u8| ((u16::from(c) + 255) / 2) as u8;
    RGBColor(half(color.0), half(color.1), half(color.2))
}

fn capitalize(text: &str) -> String {
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
    fn scores_and_losses_name_the_step_of_divergence() {
        assert_eq!(score(0.98765, None), "98.77%");
        assert_eq!(score(0.1, Some(12)), "10.00% (diverged at step 12)");
        assert_eq!(loss(0.123456, None), "0.1235");
        assert_eq!(loss(f64::NAN, Some(3)), "diverged at step 3");
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
