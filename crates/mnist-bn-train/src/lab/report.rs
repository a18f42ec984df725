//! What a lab leaves behind: each experiment's [`Section`] with its typed [`Summary`], and the
//! [`LabReport`] written as `lab.md` and `lab.json`.

use std::path::Path;

use serde::Serialize;

use super::experiments::{
    BatchSizeSummary, DepthSummary, DistributionsSummary, GridSummary, IcsSummary,
    InferenceSummary, InitScaleSummary, LandscapeSummary, LearningRateSummary, NormsSummary,
};
use super::plan::Experiment;
use super::run::Outcome;
use crate::TrainError;
use crate::files::write_atomic;

/// Version of `lab.json`'s layout.
pub const LAB_SCHEMA: u32 = 1;

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

/// An experiment's summary, one per seed: the numbers its table and findings are computed
/// from. In `lab.json` it is a list with the experiment's own summary for each seed (each a
/// list of rows), with no tag: the section's `experiment` says which it is.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Summary {
    /// [`Experiment::Grid`]'s.
    Grid(Vec<GridSummary>),
    /// [`Experiment::Distributions`]'s.
    Distributions(Vec<DistributionsSummary>),
    /// [`Experiment::Inference`]'s.
    Inference(Vec<InferenceSummary>),
    /// [`Experiment::BatchSize`]'s.
    BatchSize(Vec<BatchSizeSummary>),
    /// [`Experiment::InitScale`]'s.
    InitScale(Vec<InitScaleSummary>),
    /// [`Experiment::LearningRate`]'s.
    LearningRate(Vec<LearningRateSummary>),
    /// [`Experiment::Landscape`]'s.
    Landscape(Vec<LandscapeSummary>),
    /// [`Experiment::Depth`]'s.
    Depth(Vec<DepthSummary>),
    /// [`Experiment::Ics`]'s.
    Ics(Vec<IcsSummary>),
    /// [`Experiment::Norms`]'s.
    Norms(Vec<NormsSummary>),
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
    /// The first seed of the initial weights.
    pub seed: u64,
    /// How many seeds each network trained from (`seed`, `seed + 1`, …); each section's
    /// summary has one entry per seed, in this order (but `inference` of a `--checkpoint`,
    /// which trains nothing: one).
    pub seeds: usize,
    /// The experiments, in the order they ran.
    pub experiments: Vec<Section>,
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
             {} test images; backend {}; {}; {:.0} s in all.\n",
            self.train_images,
            self.validation_images,
            self.test_images,
            self.backend,
            self.seeds_line(),
            self.total_seconds
        );
        if self.seeds > 1 {
            md.push_str(&format!(
                "\nEvery network trained from {} seeds, the networks of a pair sharing each \
                 seed's initial weights. A table shows the mean over the seeds and, in brackets, \
                 the lowest and the highest seed's; a figure draws the mean with a band from \
                 the lowest to the highest seed; findings use the means and say in how many \
                 seeds a claim holds.\n",
                self.seeds
            ));
        }
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

    /// `seed 0`, or `seeds 0 to 2`.
    fn seeds_line(&self) -> String {
        match self.seeds {
            0 | 1 => format!("seed {}", self.seed),
            n => format!(
                "seeds {} to {}",
                self.seed,
                self.seed.wrapping_add(n as u64 - 1)
            ),
        }
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
