//! What a lab is asked to do: the experiments ([`Experiment`], the one list the command line
//! offers) and the settings of a run ([`LabOptions`]).

use std::fmt;
use std::path::PathBuf;

use burn::tensor::Device;
use serde::Serialize;

use crate::learner::DeviceTuning;
use crate::output::progress::ProgressMode;

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
    /// Batch norm against none at learning rates from 1e-3 to 10 (Bjorck et al. 2018,
    /// Figure 1).
    LearningRate,
    /// The loss landscape along the gradient over training (Santurkar et al. 2018, Figure 4).
    Landscape,
    /// Batch norm against none at 2 to 50 hidden layers: gradients at initialization and
    /// trainability (Yang et al. 2019).
    Depth,
    /// Plain, batch norm and noisy batch norm; internal covariate shift measured (Santurkar et
    /// al. 2018, Figures 2 and 5).
    Ics,
    /// What instead of batch norm: none, batch, layer, group norm and batch renorm at batch
    /// sizes 2 to 256, and each tested in train and eval mode (Wu & He 2018, Figure 1; Ioffe
    /// 2017, Figure 2).
    Norms,
}

impl Experiment {
    /// Every experiment, in the order `mnist-bn lab` runs them.
    pub const ALL: [Experiment; 10] = [
        Experiment::Grid,
        Experiment::Distributions,
        Experiment::Inference,
        Experiment::BatchSize,
        Experiment::InitScale,
        Experiment::LearningRate,
        Experiment::Landscape,
        Experiment::Depth,
        Experiment::Ics,
        Experiment::Norms,
    ];

    /// The name on the command line and of the figure's files.
    pub fn name(self) -> &'static str {
        match self {
            Experiment::Grid => "grid",
            Experiment::Distributions => "distributions",
            Experiment::Inference => "inference",
            Experiment::BatchSize => "batch-size",
            Experiment::InitScale => "init-scale",
            Experiment::LearningRate => "learning-rate",
            Experiment::Landscape => "landscape",
            Experiment::Depth => "depth",
            Experiment::Ics => "ics",
            Experiment::Norms => "norms",
        }
    }

    /// What it shows, in a line (the command line's help).
    pub fn about(self) -> &'static str {
        match self {
            Experiment::Grid => {
                "ReLU/sigmoid × lr 0.01/1/2 × good/bad initial weights, with and without batch norm"
            }
            Experiment::Distributions => {
                "How a sigmoid's input drifts during training (Ioffe & Szegedy 2015, Figure 1)"
            }
            Experiment::Inference => {
                "Testing with batch statistics on batches of 1 to 10,000, and with running statistics"
            }
            Experiment::BatchSize => "Batch norm vs none at batch sizes 2 to 256",
            Experiment::InitScale => {
                "8 hidden layers at initial weight scales from 1e-4 to 1 (cs231n)"
            }
            Experiment::LearningRate => {
                "Batch norm vs none at learning rates from 1e-3 to 10 (Bjorck et al. 2018, Figure 1)"
            }
            Experiment::Landscape => {
                "How smooth the loss is along the gradient, over training (Santurkar et al. 2018, Fig. 4)"
            }
            Experiment::Depth => {
                "2 to 50 hidden layers: gradients at init and trainability (Yang et al. 2019)"
            }
            Experiment::Ics => {
                "Noisy batch norm and internal covariate shift (Santurkar et al. 2018, Figs. 2, 5)"
            }
            Experiment::Norms => {
                "Layer, group norm, batch renorm vs batch norm at batch sizes 2 to 256 (Wu & He 2018)"
            }
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

/// Seeds each network trains from unless told otherwise (`mnist-bn lab --seeds`).
pub const DEFAULT_SEEDS: usize = 3;

/// Settings of a lab run.
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// The directory to write into.
    pub out: PathBuf,
    /// SGD steps of `grid`, `distributions`, `init-scale`, `landscape`, `depth` and `ics`;
    /// `None`: each one's default (2,000, 10,000, 2,000, 2,000, 250 and 2,000).
    pub steps: Option<usize>,
    /// The first seed of the initial weights; the networks of a pair share each seed.
    pub seed: u64,
    /// How many seeds each network trains from: `seed`, `seed + 1`, … (at least 1).
    pub seeds: usize,
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
    /// (`None`: on it), as [`LessonOptions::init_device`](crate::LessonOptions).
    pub init_device: Option<Device>,
    /// How the learners use the device; of its decisions only SGD on the host applies here
    /// (see [`DeviceTuning`]).
    pub tuning: DeviceTuning,
}

#[cfg(test)]
impl LabOptions {
    /// Options for the unit tests: quiet, one thread, seed 0, nothing written, the weights drawn
    /// on `init` (see `test_support::seeded_init_device`).
    pub(crate) fn for_tests(init: &Device) -> Self {
        Self {
            out: PathBuf::new(),
            steps: None,
            seed: 0,
            seeds: 1,
            checkpoint: None,
            progress: ProgressMode::Quiet,
            backend: String::new(),
            threads: 1,
            init_device: Some(init.clone()),
            tuning: DeviceTuning::default(),
        }
    }
}

impl LabOptions {
    /// The seeds every network trains from, in order.
    pub fn seed_list(&self) -> Vec<u64> {
        (0..self.seeds.max(1) as u64)
            .map(|k| self.seed.wrapping_add(k))
            .collect()
    }
}
