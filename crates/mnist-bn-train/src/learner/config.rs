//! What the learner is told (`TrainingConfig`) and what it reports back (`EpochStats`, `Stop`).

use burn::config::Config;
use mnist_bn_model::Norm;
use serde::{Deserialize, Serialize};

use crate::TrainError;

/// How a model is trained: the lesson's recipe by default.
#[derive(Config, Debug, PartialEq)]
pub struct TrainingConfig {
    /// Passes over the training set. Default: 10.
    #[config(default = 10)]
    pub epochs: usize,
    /// SGD learning rate. Default: 0.01.
    #[config(default = 0.01)]
    pub lr: f64,
    /// Images per batch; the last batch holds the rest. Default: 64.
    #[config(default = 64)]
    pub batch_size: usize,
    /// Shuffle the training set each epoch with this seed; `None` keeps file order, as the
    /// lesson does. Default: `None`.
    #[config(default = "None")]
    pub shuffle_seed: Option<u64>,
    /// Seed of the weight initialization. Default: 0.
    #[config(default = 0)]
    pub seed: u64,
    /// SGD momentum μ, as PyTorch applies it (`v = μ·v + g`, `w -= lr·v`, no dampening); 0
    /// is plain SGD, the lesson's. Default: 0.
    #[config(default = 0.0)]
    pub momentum: f64,
}

impl TrainingConfig {
    /// Checks the settings against each other and the data, before any long work starts.
    pub fn validate(&self, norm: Norm, train_len: usize) -> Result<(), TrainError> {
        let invalid = |msg: String| Err(TrainError::Invalid(msg));
        if self.epochs == 0 {
            return invalid("epochs must be at least 1".into());
        }
        if self.batch_size == 0 {
            return invalid("batch size must be at least 1".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return invalid(format!(
                "learning rate must be a positive number, got {}",
                self.lr
            ));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return invalid(format!(
                "momentum must be at least 0 and below 1, got {}",
                self.momentum
            ));
        }
        if train_len == 0 {
            return invalid("the training set is empty".into());
        }
        check_batches(norm, train_len, self.batch_size, "training")
    }
}

/// Batch norm (or batch renorm) in training mode cannot normalize a batch of one image
/// (PyTorch's `BatchNorm1d` refuses too).
pub(crate) fn check_batches(
    norm: Norm,
    len: usize,
    batch_size: usize,
    what: &str,
) -> Result<(), TrainError> {
    if norm.uses_batch_statistics() && (batch_size == 1 || len % batch_size == 1) {
        return Err(TrainError::Invalid(format!(
            "{} needs at least 2 images per batch, but {len} {what} images in batches of \
             {batch_size} leave a batch of 1; choose another batch size or limit",
            norm.describe()
        )));
    }
    Ok(())
}

/// What one epoch gave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    /// The epoch, from 1.
    pub epoch: usize,
    /// Mean of the epoch's batch losses (what the lesson prints).
    pub train_loss: f64,
    /// Wall time of the epoch.
    pub seconds: f64,
    /// Training images per second.
    pub images_per_sec: f64,
}

/// Why training stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Stop {
    /// Every epoch ran.
    Completed,
    /// A batch loss was NaN or infinite, or a step left weights that are; the model of the
    /// last complete epoch is kept.
    Diverged {
        /// The epoch, from 1.
        epoch: usize,
        /// The batch within the epoch, from 1.
        batch: usize,
        /// The batch's loss: not finite, or finite when the step after it overflowed the
        /// weights (`null` in JSON when not finite).
        loss: f64,
    },
    /// The user asked to stop (Ctrl-C); the last complete epoch is checkpointed.
    Interrupted {
        /// The epoch that was running, from 1.
        epoch: usize,
    },
}
