//! The batch-norm lab: the classic experiments that show what batch norm does, each a list of
//! runs (pure data) that one driver trains side by side, then a table, a figure and a paragraph
//! computed from the results.
//!
//! - [`Experiment`] names the experiments; `experiments/` turns each into runs (`Run`)
//!   and its outcomes into a [`Section`] with a typed [`Summary`].
//! - `driver.rs` trains many small networks at once, one per thread, with the learner's
//!   [`Learner::fit_steps`](crate::Learner::fit_steps), measuring them as they train.
//! - [`run_lab`] runs the chosen experiments one after another and writes `lab.md`,
//!   `lab.json` and a figure per experiment after each.

mod driver;
mod experiments;
mod progress;

use std::fmt;
use std::path::{Path, PathBuf};
use web_time::Instant;

use burn::tensor::Device;
use mnist_bn_data::Mnist;
use serde::Serialize;

pub use driver::{LabData, Outcome, Point};
pub use experiments::{
    BatchSizeNetwork, BatchSizeRow, BatchSizeSummary, DistributionsRow, DistributionsSummary,
    GridRow, GridSummary, InferencePass, InferenceSummary, InitScaleNetwork, InitScaleRow,
    InitScaleSummary, Published,
};

use crate::TrainError;
use crate::fsutil::write_atomic;
use crate::progress::ProgressMode;

/// Version of `lab.json`'s layout.
pub const LAB_SCHEMA: u32 = 1;

/// The lab's experiments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Experiment {
    /// Activation × learning rate × initial weights, with and without batch norm (the older
    /// TensorFlow version of the lesson).
    Grid,
    /// How the input of a sigmoid drifts during training (Ioffe & Szegedy 2015, Figure 1).
    Distributions,
    /// Testing with batch statistics: batches of 1 to 10,000, and running statistics.
    Inference,
    /// Batch norm against none at batch sizes 2 to 256.
    BatchSize,
    /// Eight hidden layers at initial weight scales from 1e-4 to 1 (cs231n).
    InitScale,
}

impl Experiment {
    /// Every experiment, in the order `mnist-bn lab` runs them.
    pub const ALL: [Experiment; 5] = [
        Experiment::Grid,
        Experiment::Distributions,
        Experiment::Inference,
        Experiment::BatchSize,
        Experiment::InitScale,
    ];

    /// The name on the command line and of the figure's files.
    pub fn name(self) -> &'static str {
        match self {
            Experiment::Grid => "grid",
            Experiment::Distributions => "distributions",
            Experiment::Inference => "inference",
            Experiment::BatchSize => "batch-size",
            Experiment::InitScale => "init-scale",
        }
    }

    /// The experiment of a name.
    pub fn parse(name: &str) -> Option<Experiment> {
        Self::ALL.into_iter().find(|e| e.name() == name)
    }
}

impl fmt::Display for Experiment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Settings of a lab run.
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// The directory to write into.
    pub out: PathBuf,
    /// SGD steps of `grid`, `distributions` and `init-scale`; `None`: each one's default
    /// (2,000, 10,000 and 2,000).
    pub steps: Option<usize>,
    /// Seed of every initial weight; the networks of a pair share it.
    pub seed: u64,
    /// `inference` tests this checkpoint of the lesson's batch-norm MLP instead of training
    /// one as the lesson does.
    pub checkpoint: Option<PathBuf>,
    /// How progress is shown.
    pub progress: ProgressMode,
    /// The backend and device, for the report.
    pub backend: String,
    /// Networks trained at the same time, one per thread.
    pub threads: usize,
    /// Where the networks draw their initial weights before moving to the training device
    /// (`None`: on it), as [`ExperimentOptions::init_device`](crate::ExperimentOptions).
    pub init_device: Option<Device>,
    /// Take plain SGD's update on the host (see
    /// [`Learner::with_host_sgd`](crate::Learner::with_host_sgd)); for CPU backends.
    pub host_sgd: bool,
}

/// One experiment's results: what `lab.md` shows of it, and every number in `lab.json`.
#[derive(Debug, Serialize)]
pub struct Section {
    /// The experiment.
    pub experiment: Experiment,
    /// What it asks.
    pub question: String,
    /// How it is set up.
    pub setup: String,
    /// Wall time.
    pub seconds: f64,
    /// The figure's file name (PNG; an SVG sits beside it).
    pub figure: String,
    /// The results table, in Markdown.
    #[serde(skip)]
    pub table: String,
    /// What the numbers show, written from them.
    pub findings: String,
    /// The experiment's own summary numbers, which its findings are written from.
    pub summary: Summary,
    /// Every run.
    pub runs: Vec<Outcome>,
}

/// An experiment's summary: the numbers its table and findings are computed from. In
/// `lab.json` it is the experiment's own summary as it is (a list of rows), with no tag: the
/// section's `experiment` says which it is.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Summary {
    /// [`Experiment::Grid`]'s.
    Grid(GridSummary),
    /// [`Experiment::Distributions`]'s.
    Distributions(DistributionsSummary),
    /// [`Experiment::Inference`]'s.
    Inference(InferenceSummary),
    /// [`Experiment::BatchSize`]'s.
    BatchSize(BatchSizeSummary),
    /// [`Experiment::InitScale`]'s.
    InitScale(InitScaleSummary),
}

/// Everything a lab run produced (`lab.json`).
#[derive(Debug, Serialize)]
pub struct LabReport {
    /// [`LAB_SCHEMA`].
    pub schema: u32,
    /// The backend and device.
    pub backend: String,
    /// When the run started (RFC 3339).
    pub started: String,
    /// Wall time so far.
    pub total_seconds: f64,
    /// Training images.
    pub train_images: usize,
    /// Held-out validation images (the last training images).
    pub validation_images: usize,
    /// Test images.
    pub test_images: usize,
    /// The seed of the initial weights.
    pub seed: u64,
    /// The experiments, in the order they ran.
    pub experiments: Vec<Section>,
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
    let data = LabData::new(train, test);
    // Everything that can be refused is refused before the first network trains.
    let plans: Vec<Vec<driver::Run>> = experiments
        .iter()
        .map(|&e| experiments::plan(e, &data, options))
        .collect();
    for runs in &plans {
        driver::validate(runs, &data)?;
    }
    let mut tested = match &options.checkpoint {
        Some(path) if experiments.contains(&Experiment::Inference) => {
            Some(experiments::load_tested(path, device)?)
        }
        _ => None,
    };
    std::fs::create_dir_all(&options.out).map_err(TrainError::io(&options.out))?;
    let _lock = crate::RunDirLock::acquire(&options.out)?;
    let mut report = LabReport {
        schema: LAB_SCHEMA,
        backend: options.backend.clone(),
        started: chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        total_seconds: 0.0,
        train_images: data.train.len(),
        validation_images: data.validation.len(),
        test_images: data.test.len(),
        seed: options.seed,
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

impl LabReport {
    /// Writes `lab.json` and `lab.md` into `dir`, atomically.
    pub fn write(&self, dir: &Path) -> Result<(), TrainError> {
        let mut json = serde_json::to_vec_pretty(self)
            .map_err(|e| TrainError::Invalid(format!("cannot encode lab.json: {e}")))?;
        json.push(b'\n');
        write_atomic(&dir.join("lab.json"), &json)?;
        write_atomic(&dir.join("lab.md"), self.markdown().as_bytes())
    }

    /// The report a person reads: per experiment the question, the figure, the table and
    /// what it shows.
    pub fn markdown(&self) -> String {
        let mut md = format!(
            "# The batch-norm lab\n\n{} training images ({} of them held out for validation), \
             {} test images; backend {}; seed {}; {:.0} s in all.\n",
            self.train_images,
            self.validation_images,
            self.test_images,
            self.backend,
            self.seed,
            self.total_seconds
        );
        for s in &self.experiments {
            md.push_str(&format!(
                "\n## {}\n\n**{}**\n\n{}\n\n![{}]({})\n\n{}\n{}\n\n_{:.0} s._\n",
                s.experiment,
                s.question,
                s.setup,
                s.experiment,
                s.figure,
                s.table,
                s.findings,
                s.seconds
            ));
        }
        md
    }

    /// A short summary for the terminal: one line per experiment.
    pub fn summary(&self) -> String {
        let mut lines: Vec<String> = self
            .experiments
            .iter()
            .map(|s| {
                format!(
                    "{:<14} {:>6.1} s  {}",
                    s.experiment.name(),
                    s.seconds,
                    s.figure
                )
            })
            .collect();
        lines.push(format!("total {:.1} s", self.total_seconds));
        lines.join("\n")
    }
}
