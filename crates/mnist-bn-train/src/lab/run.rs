//! What a lab trains: its data ([`LabData`]), a run (`Run`: one network with its settings and
//! what to measure, pure data built by the experiments) and what a run gives ([`Outcome`], with
//! its measurements, [`Point`]).

use mnist_bn_data::Mnist;
use mnist_bn_model::{MlpConfig, Net};
use serde::Serialize;

use crate::learner::TrainingConfig;

/// The lab's data: the training set, the same with 1/12 (at most 5,000 images) held out for
/// validation, and the test set.
#[derive(Debug)]
pub struct LabData {
    /// Every training image (what the lesson trains on).
    pub train: Mnist,
    /// The training images minus the held-out ones.
    pub fit: Mnist,
    /// The held-out training images (the last ones in file order).
    pub validation: Mnist,
    /// The test set.
    pub test: Mnist,
}

impl LabData {
    /// Holds out the last `train.len() / 12` training images (5,000 of MNIST's 60,000).
    pub fn new(train: Mnist, test: Mnist) -> Self {
        let (fit, validation) = train.hold_out((train.len() / 12).min(5000));
        Self {
            train,
            fit,
            validation,
            test,
        }
    }
}

/// Which images a run trains on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainOn {
    /// Every training image.
    All,
    /// The training images minus the validation ones.
    Fit,
}

/// Which images a run is measured on while it trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeasureOn {
    /// The held-out training images.
    Validation,
    /// The test set.
    Test,
}

/// One network to train and measure: pure data, built by the experiments.
#[derive(Debug, Clone)]
pub struct Run {
    /// Unique within its experiment: the setting and the network.
    pub name: String,
    /// The network.
    pub config: MlpConfig,
    /// Learning rate, batch size and the seed of the initial weights (twins share a seed).
    pub training: TrainingConfig,
    /// SGD steps.
    pub steps: usize,
    /// The images it trains on.
    pub train_on: TrainOn,
    /// Measure every this many steps (and at steps 0 and the last); 0: at the end only.
    pub measure_every: usize,
    /// The images it is measured on.
    pub measure_on: MeasureOn,
    /// Also record percentiles of the input to one unit's activation, over the measurement
    /// images as one batch with batch statistics.
    pub probe: Option<Probe>,
    /// Keep the trained network for the experiment's own analysis.
    pub keep_model: bool,
    /// Also record, before the first step, the norm of the loss's gradient with respect to
    /// each linear layer's weights on the first batch (see [`weight_gradient_norms`]).
    pub initial_gradients: bool,
    /// At every measurement, also measure the loss landscape along the gradient with these
    /// step sizes, on the first batch of the training images (see [`landscape`]); empty: not.
    pub landscape: Vec<f64>,
    /// At every measurement, also measure internal covariate shift with the lower layers'
    /// steps of this size, on the first batch of the training images (see [`ics`]).
    pub ics: Option<f64>,
}

impl Run {
    /// A run trained on every training image and measured once, at the end, on the test set;
    /// set the other fields with struct update syntax.
    pub fn new(name: String, config: MlpConfig, training: TrainingConfig, steps: usize) -> Self {
        Self {
            name,
            config,
            training,
            steps,
            train_on: TrainOn::All,
            measure_every: 0,
            measure_on: MeasureOn::Test,
            probe: None,
            keep_model: false,
            initial_gradients: false,
            landscape: Vec::new(),
            ics: None,
        }
    }
}

/// Which unit's input to its activation a run probes: hidden layer `layer` (from 0, on the
/// input side), unit `unit` of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Probe {
    /// The hidden layer, from 0.
    pub layer: usize,
    /// The unit within it, from 0.
    pub unit: usize,
}

impl Probe {
    /// The first unit of the last hidden layer of `config` (what `distributions` probes,
    /// after Ioffe & Szegedy 2015, Figure 1).
    pub fn last_layer(config: &MlpConfig) -> Self {
        Self {
            layer: config.hidden.len().saturating_sub(1),
            unit: 0,
        }
    }

    /// Refuses a layer or unit `config` does not have.
    pub fn check(&self, config: &MlpConfig) -> Result<(), String> {
        let layers = config.hidden.len();
        let width = config.hidden.get(self.layer).copied().ok_or_else(|| {
            format!(
                "the probe's hidden layer {} is not among the network's {layers}",
                self.layer + 1
            )
        })?;
        if self.unit >= width {
            return Err(format!(
                "the probe's unit {} is not among hidden layer {}'s {width} units (0 to {})",
                self.unit,
                self.layer + 1,
                width - 1
            ));
        }
        Ok(())
    }
}

/// A measurement during training.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// SGD steps done.
    pub step: usize,
    /// Accuracy on the measurement images, batch norm on its running statistics.
    pub accuracy: f64,
    /// Mean training loss of the steps since the previous point (none at step 0).
    pub train_loss: Option<f64>,
    /// The 15th, 50th and 85th percentiles of the probed activation input, over the
    /// measurement images normalized as one batch (batch statistics, as in training).
    pub probe: Option<[f64; 3]>,
    /// The loss landscape along the gradient, when the run measures it: the range of the loss,
    /// the largest change of the gradient and the effective β-smoothness (see [`landscape`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub landscape: Option<[f64; 3]>,
    /// Internal covariate shift, when the run measures it: for each layer after the first, the
    /// ℓ2 distance and the cosine between its gradient before and after the layers below took
    /// their step (see [`ics`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ics: Option<Vec<[f64; 2]>>,
}

/// What a run gave.
#[derive(Debug, Serialize)]
pub struct Outcome {
    /// The run's name.
    pub name: String,
    /// The network.
    pub config: MlpConfig,
    /// The seed of its initial weights (the networks of a pair share it).
    pub seed: u64,
    /// Learning rate.
    pub lr: f64,
    /// Batch size.
    pub batch_size: usize,
    /// SGD steps asked for.
    pub steps: usize,
    /// The step whose loss was not finite, if any; training stopped there.
    pub diverged_at: Option<usize>,
    /// Mean of every step's training loss (for one epoch, what the lesson prints); not a
    /// number (`null`) when the run diverged.
    pub mean_loss: f64,
    /// Mean training loss of the last 100 steps (`null` when the run diverged).
    pub final_loss: f64,
    /// Test accuracy at the end, batch norm on its running statistics; a diverged network
    /// is scored as it is.
    pub test_accuracy: f64,
    /// Measurements during training.
    pub curve: Vec<Point>,
    /// Before the first step, the norm of the gradient of each linear layer's weights, from
    /// the input side (when the run asked for them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_gradients: Option<Vec<f64>>,
    /// Wall time of the run.
    pub seconds: f64,
    /// The trained network, when the run asked to keep it.
    #[serde(skip)]
    pub model: Option<Net>,
}

impl Outcome {
    /// What the run gave, in a line: its name, test accuracy, steps, divergence and time.
    pub(super) fn progress_line(&self) -> String {
        let diverged = self
            .diverged_at
            .map_or(String::new(), |step| format!(", diverged at step {step}"));
        format!(
            "{}: test accuracy {:.2}% ({} steps{diverged}, {:.1} s)",
            self.name,
            100.0 * self.test_accuracy,
            self.steps,
            self.seconds
        )
    }
}
