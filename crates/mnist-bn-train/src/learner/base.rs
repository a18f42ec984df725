//! [`Learner`]: what it holds, its settings and its one SGD step ([`Learner::step`]); its
//! loops over epochs are in `mod.rs`, its loop over steps in `steps.rs`.

use burn::module::Module;
use burn::nn::loss::CrossEntropyLoss;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Tensor, read_sync};
use mnist_bn_data::MnistBatch;
use mnist_bn_model::Net;

use super::config::TrainingConfig;
use super::tuning::DeviceTuning;
use crate::output::console::Console;
use crate::output::progress::ProgressMode;

/// Trains models on a device with autodiff: the project's one training loop.
///
/// It plays the part of burn-train's [`Learner`](https://docs.rs/burn-train/0.22.1/burn_train/struct.Learner.html)
/// (`burn::train::Learner`), whose name it shares; a file that uses both imports one under
/// another name. It is written by hand rather than on burn-train: the lesson's exact per-epoch
/// line, the mean of the batch losses as the epoch loss, a NaN check on every batch, Ctrl-C
/// between batches and a checkpoint callback after each epoch are each a line here and would
/// each be a custom metric, event processor or interrupter there, and [`Learner::step`] is the
/// one SGD step that the CLI's epochs, the lab's runs and the web page's live training all
/// take. Burn's optimizers (`ModuleOptimizer`, `SgdConfig`, `GradientsParams`) and records are
/// used as they are.
#[derive(Debug)]
pub struct Learner {
    pub(super) config: TrainingConfig,
    pub(super) device: Device,
    pub(super) progress: ProgressMode,
    pub(super) label: String,
    pub(super) console: Console,
    pub(super) tuning: DeviceTuning,
}

impl Learner {
    /// A learner on `device` (autodiff is enabled on it) following `config`, with no tuning
    /// ([`DeviceTuning::default`]).
    pub fn new(config: TrainingConfig, device: &Device) -> Self {
        Self {
            config,
            device: device.clone().autodiff(),
            progress: ProgressMode::Auto,
            label: String::from("train"),
            console: Console::default(),
            tuning: DeviceTuning::default(),
        }
    }

    /// Runs with `tuning`: how the device is used (loss reads, data on the device, the parallel
    /// step, SGD on the host), decided once where the backend is chosen. See [`DeviceTuning`]
    /// for what each changes; none changes the numbers beyond float rounding.
    pub fn with_tuning(mut self, tuning: DeviceTuning) -> Self {
        self.tuning = DeviceTuning {
            loss_reads_every: tuning.loss_reads_every.max(1),
            ..tuning
        };
        self
    }

    /// Sets how progress within an epoch is shown, and the label before it.
    pub fn with_progress(mut self, mode: ProgressMode, label: impl Into<String>) -> Self {
        self.progress = mode;
        self.label = label.into();
        self
    }

    /// Sends the learner's lines to `console` (a slot when models train side by side).
    pub(crate) fn with_console(mut self, console: Console) -> Self {
        self.console = console;
        self
    }

    /// Where the learner's lines go.
    pub(crate) fn console(&self) -> &Console {
        &self.console
    }

    /// The autodiff device the learner trains on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The training settings.
    pub fn config(&self) -> &TrainingConfig {
        &self.config
    }

    /// A fresh optimizer: SGD without weight decay, plain (as in the lesson) unless the config
    /// sets a momentum; plain SGD on the host with [`DeviceTuning::host_sgd`] (feature `flex`).
    /// Both write Burn's SGD records, so a checkpoint resumes with either.
    pub fn optimizer(&self) -> ModuleOptimizer {
        let momentum = (self.config.momentum > 0.0).then(|| {
            MomentumConfig::new()
                .with_momentum(self.config.momentum)
                .with_dampening(0.0)
        });
        #[cfg(feature = "flex")]
        if momentum.is_none() && self.tuning.host_sgd {
            return ModuleOptimizer::from(crate::cpu::HostSgd);
        }
        SgdConfig::new().with_momentum(momentum).init()
    }
    /// `model` on the learner's autodiff device, batch norm on batch statistics: what
    /// [`Learner::step`] takes. (`Module::train` moves a checkpointed, imported or freshly
    /// initialized model onto the autodiff device.)
    pub fn training_model(&self, model: Net) -> Net {
        Module::train(model).with_batch_statistics(true)
    }

    /// One SGD step on `batch` (on the learner's device) with the learner's settings: returns
    /// the updated model and the batch's loss. A loss that is not finite is returned with the
    /// model as it was, not stepped. `model` comes from [`Learner::training_model`]; `optim`
    /// from [`Learner::optimizer`]; `loss_fn` is `CrossEntropyLoss::new(None, learner.device())`.
    /// Every training loop of the project (the CLI's epochs, the
    /// lab's steps, the web page's interleaved batches) steps with this.
    ///
    /// It reads the loss synchronously, which a browser's WebGPU device cannot do: there, the
    /// page takes the same step with [`Learner::step_async`].
    pub fn step(
        &self,
        model: Net,
        optim: &mut ModuleOptimizer,
        loss_fn: &CrossEntropyLoss,
        batch: MnistBatch,
    ) -> (Net, f64) {
        read_sync(self.step_async(model, optim, loss_fn, batch))
    }

    /// [`Learner::step`], reading the loss without blocking: [`Learner::step`] is this future
    /// run to its end. A device whose reads complete at once (the CPU backends) finishes it at
    /// its first poll.
    pub async fn step_async(
        &self,
        model: Net,
        optim: &mut ModuleOptimizer,
        loss_fn: &CrossEntropyLoss,
        batch: MnistBatch,
    ) -> (Net, f64) {
        let loss = loss_fn.forward(model.forward(batch.images), batch.targets);
        let value = loss
            .clone()
            .into_scalar_async::<f32>()
            .await
            .expect("the device reads the loss");
        let value = f64::from(value);
        if !value.is_finite() {
            return (model, value);
        }
        (self.descend(model, optim, loss), value)
    }

    /// The SGD step down `loss`'s gradient.
    pub(super) fn descend(&self, model: Net, optim: &mut ModuleOptimizer, loss: Tensor<1>) -> Net {
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        optim.step(self.config.lr, model, grads)
    }

    /// [`Learner::step`] without reading the loss: the step is taken whatever the loss, which
    /// stays on the device (`[1]`).
    pub(super) fn step_unread(
        &self,
        model: Net,
        optim: &mut ModuleOptimizer,
        loss_fn: &CrossEntropyLoss,
        batch: MnistBatch,
    ) -> (Net, Tensor<1>) {
        let loss = loss_fn.forward(model.forward(batch.images), batch.targets);
        let value = loss.clone().detach();
        (self.descend(model, optim, loss), value)
    }
}
