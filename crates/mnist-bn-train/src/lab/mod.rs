//! The batch-norm lab: the classic experiments that show what batch norm does, each a list of
//! runs (pure data) that one driver trains side by side, then a table, a figure and a paragraph
//! computed from the results.
//!
//! - `plan.rs`: [`Experiment`] names the experiments, [`LabOptions`] sets a run.
//! - `experiments/` turns each experiment into runs (`Run`) and its outcomes into a
//!   [`Section`] with a typed [`Summary`] (`report.rs`, with the [`LabReport`]).
//! - `driver.rs` trains many small networks at once, one per thread, with the learner's
//!   [`Learner::fit_steps`](crate::Learner::fit_steps), measuring them as they train
//!   (`measure.rs`: accuracy and the probe).
//! - `progress.rs` shows an experiment's progress.
//! - [`run_lab`] (this file) runs the chosen experiments one after another and writes `lab.md`,
//!   `lab.json` and a figure per experiment after each.

mod driver;
mod experiments;
mod gradients;
mod live;
mod measure;
mod plan;
mod progress;
mod report;
mod run;

use web_time::Instant;

use burn::tensor::Device;
use mnist_bn_data::Mnist;

pub use driver::{train_runs, validate};
pub use experiments::{
    BatchSizeNetwork, BatchSizeRow, BatchSizeSummary, DepthNetwork, DepthRow, DepthSummary,
    DistributionsRow, DistributionsSummary, GridRow, GridSummary, IcsNetwork, IcsSummary,
    InferencePass, InferenceSummary, InitScaleNetwork, InitScaleRow, InitScaleSummary,
    LandscapeNetwork, LandscapeSummary, LearningRateNetwork, LearningRateRow, LearningRateSummary,
    NormsInference, NormsNetwork, NormsRow, NormsSummary, Published,
};
pub use live::{LiveRun, MeasureImages};
pub use plan::{DEFAULT_SEEDS, Experiment, LabOptions};
pub use report::{LAB_SCHEMA, LabReport, Section, Summary};
pub use run::{LabData, MeasureOn, Outcome, Point, Probe, Run, TrainOn};

use crate::TrainError;
use crate::files::RunDirLock;

/// The runs of `experiment` as `mnist-bn lab` would train them with `options` (its steps and
/// seeds): one list per seed. The web page's playground holds its presets to these.
pub fn runs(experiment: Experiment, data: &LabData, options: &LabOptions) -> Vec<Vec<Run>> {
    experiments::plan(experiment, data, options)
}

/// Runs `experiments` one after another on `device` and writes `lab.md`, `lab.json` and the
/// figures into `options.out` after each, so a stopped lab keeps what it finished.
pub fn run_lab(
    experiments: &[Experiment],
    train: Mnist,
    test: Mnist,
    options: &LabOptions,
    device: &Device,
) -> Result<LabReport, TrainError> {
    let started = Instant::now();
    if test.is_empty() {
        return Err(TrainError::Invalid("the test set is empty".into()));
    }
    if options.steps == Some(0) {
        return Err(TrainError::Invalid("steps must be at least 1".into()));
    }
    if options.seeds == 0 {
        return Err(TrainError::Invalid("seeds must be at least 1".into()));
    }
    let data = LabData::new(train, test);
    // Everything that can be refused is refused before the first network trains.
    let plans: Vec<Vec<Vec<run::Run>>> = experiments
        .iter()
        .map(|&e| experiments::plan(e, &data, options))
        .collect();
    for runs in plans.iter().flatten() {
        driver::validate(runs, &data)?;
    }
    let mut tested = match &options.checkpoint {
        Some(path) if experiments.contains(&Experiment::Inference) => {
            Some(experiments::load_tested(path, device)?)
        }
        _ => None,
    };
    std::fs::create_dir_all(&options.out).map_err(TrainError::io(&options.out))?;
    let _lock = RunDirLock::acquire(&options.out)?;
    let mut report = LabReport {
        schema: LAB_SCHEMA,
        backend: options.backend.clone(),
        started: chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        total_seconds: 0.0,
        train_images: data.train.len(),
        validation_images: data.validation.len(),
        test_images: data.test.len(),
        seed: options.seed,
        seeds: options.seeds,
        experiments: Vec::new(),
    };
    for (&experiment, runs) in experiments.iter().zip(&plans) {
        let tested = match experiment {
            Experiment::Inference => tested.take(),
            _ => None,
        };
        let section = experiments::run(experiment, runs, tested, &data, options, device)?;
        report.experiments.push(section);
        report.total_seconds = started.elapsed().as_secs_f64();
        report.write(&options.out)?;
    }
    Ok(report)
}
