//! The run report: `report.json` (machine-readable) and `report.md` (the summary a person
//! reads first).

use std::fmt::Write as _;
use std::path::Path;

use mnist_bn_model::NetConfig;
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::evaluate::{TestMode, TestReport};
use crate::files::{to_json, write_atomic};
use crate::learner::{EpochStats, Stop, TrainingConfig};

/// Version of the `report.json` schema. 2: a model config of the general MLP (`hidden`,
/// `activation`, `weight_init` instead of `hidden_dim`).
pub const REPORT_SCHEMA: u32 = 2;

/// Everything a run produced, as written to `report.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// [`REPORT_SCHEMA`].
    pub schema: u32,
    /// The backend and device the run used, e.g. `flex (cpu)`.
    pub backend: String,
    /// When the run started (RFC 3339).
    pub started: String,
    /// Wall time of the whole run so far, in seconds.
    pub total_seconds: f64,
    /// Training images used.
    pub train_images: usize,
    /// Test images used.
    pub test_images: usize,
    /// One entry per model, in training order.
    pub models: Vec<ModelReport>,
}

/// One model's part of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelReport {
    /// The model's name (`batchnorm`, `plain`).
    pub name: String,
    /// The model's config.
    pub config: NetConfig,
    /// How it was trained.
    pub training: TrainingConfig,
    /// Figures of every epoch.
    pub epochs: Vec<EpochStats>,
    /// How training ended.
    pub stop: Stop,
    /// Test passes, in the order they ran.
    pub tests: Vec<TestReport>,
}

impl ModelReport {
    /// The test pass in `mode`, if it ran.
    pub fn test(&self, mode: TestMode) -> Option<&TestReport> {
        self.tests.iter().find(|t| t.mode == mode)
    }
}

impl RunReport {
    /// Writes `report.json` and `report.md` into `dir`, atomically.
    pub fn write(&self, dir: &Path, plot: Option<&str>) -> Result<(), TrainError> {
        write_atomic(&dir.join("report.json"), &to_json(self))?;
        write_atomic(&dir.join("report.md"), self.markdown(plot).as_bytes())
    }

    /// The summary table, with the loss plot linked when there is one.
    pub fn markdown(&self, plot: Option<&str>) -> String {
        let mut md = String::from("# Batch normalization on MNIST\n\n");
        let _ = writeln!(
            md,
            "Backend: {}. Started {}; {:.1} s in all. {} training images, {} test images.\n",
            self.backend, self.started, self.total_seconds, self.train_images, self.test_images
        );
        md.push_str(
            "| model | epochs | first loss | final loss | s/epoch | test acc. (train mode) | \
             test acc. (eval mode) | test loss (eval) | status |\n\
             |---|---|---|---|---|---|---|---|---|\n",
        );
        for m in &self.models {
            let first = m.epochs.first().map(|e| format!("{:.4}", e.train_loss));
            let last = m.epochs.last().map(|e| format!("{:.4}", e.train_loss));
            let secs = (!m.epochs.is_empty())
                .then(|| m.epochs.iter().map(|e| e.seconds).sum::<f64>() / m.epochs.len() as f64);
            let acc = |mode| m.test(mode).map(|t| format!("{:.2}%", 100.0 * t.accuracy));
            let dash = || "–".to_string();
            let status = match &m.stop {
                Stop::Completed => "completed".to_string(),
                Stop::Diverged { epoch, batch, .. } => {
                    format!("diverged (epoch {epoch}, batch {batch})")
                }
                Stop::Interrupted { epoch } => format!("interrupted (epoch {epoch})"),
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                m.name,
                m.epochs.len(),
                first.unwrap_or_else(dash),
                last.unwrap_or_else(dash),
                secs.map(|s| format!("{s:.2}")).unwrap_or_else(dash),
                acc(TestMode::Train).unwrap_or_else(dash),
                acc(TestMode::Eval).unwrap_or_else(dash),
                m.test(TestMode::Eval)
                    .map(|t| format!("{:.4}", t.loss))
                    .unwrap_or_else(dash),
                status
            );
        }
        md.push_str(
            "\nThe batch-norm model is tested in train mode (batch statistics) first, then in \
             eval mode, as in the lesson: the train-mode pass moves the running statistics the \
             eval pass uses.\n",
        );
        if let Some(plot) = plot {
            let _ = writeln!(md, "\n![Training loss]({plot})");
        }
        md.push_str("\n## Training loss per epoch\n\n| epoch |");
        for m in &self.models {
            let _ = write!(md, " {} |", m.name);
        }
        md.push_str("\n|---|");
        md.push_str(&"---|".repeat(self.models.len()));
        md.push('\n');
        let epochs = self
            .models
            .iter()
            .map(|m| m.epochs.len())
            .max()
            .unwrap_or(0);
        for i in 0..epochs {
            let _ = write!(md, "| {} |", i + 1);
            for m in &self.models {
                match m.epochs.get(i) {
                    Some(e) => {
                        let _ = write!(md, " {:.6} |", e.train_loss);
                    }
                    None => md.push_str(" – |"),
                }
            }
            md.push('\n');
        }
        md
    }
}
