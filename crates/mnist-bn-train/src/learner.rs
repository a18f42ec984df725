//! The learner: trains a model ([`Net`]) with cross-entropy and plain SGD, one epoch at a time.

use std::sync::atomic::{AtomicBool, Ordering};
use web_time::Instant;

use burn::config::Config;
use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::loss::CrossEntropyLoss;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::Device;
use burn::tensor::Tensor;
use mnist_bn_data::{Batches, DeviceMnist, Mnist, MnistBatch, epoch_order};
use mnist_bn_model::{Net, Norm};
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::console::Console;
use crate::host_sgd::HostSgd;
use crate::hot_pool::HotPool;
use crate::progress::{EpochProgress, ProgressMode};

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

/// Batch norm in training mode cannot normalize a batch of one image (PyTorch refuses too).
pub(crate) fn check_batches(
    norm: Norm,
    len: usize,
    batch_size: usize,
    what: &str,
) -> Result<(), TrainError> {
    if norm == Norm::Batch && (batch_size == 1 || len % batch_size == 1) {
        return Err(TrainError::Invalid(format!(
            "batch norm needs at least 2 images per batch, but {len} {what} images in batches of \
             {batch_size} leave a batch of 1; choose another batch size or limit"
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

/// Trains models on a device with autodiff.
#[derive(Debug)]
pub struct Learner {
    config: TrainingConfig,
    device: Device,
    progress: ProgressMode,
    label: String,
    console: Console,
    loss_reads: usize,
    data_on_device: bool,
    parallel_step: bool,
    host_sgd: bool,
}

impl Learner {
    /// A learner on `device` (autodiff is enabled on it) following `config`.
    pub fn new(config: TrainingConfig, device: &Device) -> Self {
        Self {
            config,
            device: device.clone().autodiff(),
            progress: ProgressMode::Auto,
            label: String::from("train"),
            console: Console::default(),
            loss_reads: 1,
            data_on_device: false,
            parallel_step: false,
            host_sgd: false,
        }
    }

    /// Spreads each step of one model over every thread of the rayon pool `fit` runs on
    /// (default: off), when `fit` runs on a worker of a pool of more than one thread and the
    /// model is an MLP whose products split at the configured batch size
    /// ([`Net::splits_products`]): its products are split into independent pieces
    /// ([`Net::with_product_threads`]) and the pool's other threads are kept spinning while it
    /// trains, so that each piece starts at once (see `hot_pool.rs`; one model at a time per
    /// process, a second `fit` meanwhile trains as without it). Made for Burn's CPU backend
    /// (flex), which runs the pieces on separate threads; other backends would only pay for
    /// them. The model `fit` returns computes its products whole again. The losses differ from
    /// one thread's by float rounding only (the forward products add their pieces' sums).
    pub fn with_parallel_step(mut self, enabled: bool) -> Self {
        self.parallel_step = enabled;
        self
    }

    /// Takes plain SGD's update on the host, one pass over each parameter's values ([`HostSgd`]:
    /// shared by the pool's threads while [`Learner::with_parallel_step`] keeps them spinning,
    /// else on the step's thread), instead of with Burn's tensor operations (default: off).
    /// On flex the weights are the same to the bit. For CPU backends, whose tensors live in
    /// host memory (flex hands them over without a copy); on a GPU it would move every
    /// parameter to the host and back each step. With a momentum the learner keeps Burn's SGD
    /// either way.
    pub fn with_host_sgd(mut self, enabled: bool) -> Self {
        self.host_sgd = enabled;
        self
    }

    /// Uploads the training set to the device once per `fit` and gathers each batch there
    /// ([`Batches::on_device`]) instead of building it on the host (the default). The values
    /// are the same; on a GPU it saves an upload of 200 KB per batch, for 4 bytes per pixel of
    /// device memory (188 MB for MNIST's training set).
    pub fn with_data_on_device(mut self, on_device: bool) -> Self {
        self.data_on_device = on_device;
        self
    }

    /// Reads the batch losses to the host every `batches` batches instead of after each one
    /// (`fit` only; 1, the default, reads each loss before its backward pass). Each read waits
    /// for the device to finish everything queued; on a GPU, reading in groups lets it run
    /// ahead of the host. The numbers are the same either way; what changes on divergence is
    /// that the steps after the first non-finite loss of a group are taken before it is seen
    /// (the stop still names its exact batch, and the model of a diverged run is not kept).
    pub fn with_loss_reads_every(mut self, batches: usize) -> Self {
        self.loss_reads = batches.max(1);
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
    /// sets a momentum; plain SGD on the host with [`Learner::with_host_sgd`]. Both write
    /// Burn's SGD records, so a checkpoint resumes with either.
    pub fn optimizer(&self) -> ModuleOptimizer {
        let momentum = (self.config.momentum > 0.0).then(|| {
            MomentumConfig::new()
                .with_momentum(self.config.momentum)
                .with_dampening(0.0)
        });
        match momentum {
            None if self.host_sgd => ModuleOptimizer::from(HostSgd),
            momentum => SgdConfig::new().with_momentum(momentum).init(),
        }
    }

    /// Trains `model` for the configured epochs with a fresh optimizer, no checkpoints and no
    /// interrupt; returns the trained model and every epoch's figures. For benchmarks and
    /// experiments that keep nothing on disk.
    pub fn fit_epochs(
        &self,
        model: Net,
        data: &Mnist,
    ) -> Result<(Net, Vec<EpochStats>, Stop), TrainError> {
        let mut optim = self.optimizer();
        let mut history = Vec::new();
        let never = AtomicBool::new(false);
        let (model, stop) =
            self.fit(model, &mut optim, data, &mut history, &never, |_, _, _| {
                Ok(())
            })?;
        Ok((model, history, stop))
    }

    /// Trains `model` from epoch `history.len() + 1` to the configured number of epochs.
    ///
    /// After each epoch it prints the lesson's line (`Epoch: 3 \tTraining Loss: 0.123456`),
    /// appends the epoch's figures to `history`, and calls `after_epoch` (to checkpoint).
    /// It stops early, returning why, when a batch loss is not finite or when `interrupt` is
    /// set (checked between batches). The model returned then is mid-epoch: the last complete
    /// epoch is the one `after_epoch` last saw.
    pub fn fit(
        &self,
        model: Net,
        optim: &mut ModuleOptimizer,
        data: &Mnist,
        history: &mut Vec<EpochStats>,
        interrupt: &AtomicBool,
        after_epoch: impl FnMut(&Net, &ModuleOptimizer, &[EpochStats]) -> Result<(), TrainError>,
    ) -> Result<(Net, Stop), TrainError> {
        // Split only with the other workers spinning (split products that wake sleeping
        // workers cost more than they save), and spin only for a model that splits.
        let threads = rayon::current_num_threads();
        let hot = (self.parallel_step && model.splits_products(self.config.batch_size, threads))
            .then(HotPool::start)
            .flatten();
        let threads = if hot.is_some() { threads } else { 1 };
        let model = model.with_product_threads(threads);
        let result = self.fit_epochs_from(model, optim, data, history, interrupt, after_epoch);
        drop(hot);
        result.map(|(model, stop)| (model.with_product_threads(1), stop))
    }

    fn fit_epochs_from(
        &self,
        mut model: Net,
        optim: &mut ModuleOptimizer,
        data: &Mnist,
        history: &mut Vec<EpochStats>,
        interrupt: &AtomicBool,
        mut after_epoch: impl FnMut(&Net, &ModuleOptimizer, &[EpochStats]) -> Result<(), TrainError>,
    ) -> Result<(Net, Stop), TrainError> {
        self.config.validate(model.norm(), data.len())?;
        let loss_fn = CrossEntropyLoss::new(None, &self.device);
        model = self.training_model(model);
        let uploaded = self
            .data_on_device
            .then(|| DeviceMnist::upload(data, &self.device));
        for epoch in history.len() + 1..=self.config.epochs {
            let started = Instant::now();
            let order = epoch_order(data.len(), self.config.shuffle_seed, epoch - 1);
            let batches = match &uploaded {
                Some(uploaded) => Batches::on_device(uploaded, order, self.config.batch_size),
                None => Batches::new(data, order, self.config.batch_size, &self.device),
            };
            let progress = EpochProgress::new(
                self.progress,
                format!("{} {epoch}", self.label),
                batches.num_batches(),
                &self.console,
            );
            let (mut loss_sum, mut count, mut images) = (0.0f64, 0usize, 0usize);
            let mut last_loss = f64::NAN;
            // Losses on the device not yet read, with their batch sizes.
            let mut pending: Vec<(Tensor<1>, usize)> =
                Vec::with_capacity(self.loss_reads.min(batches.num_batches()));
            let mut batches = batches.peekable();
            while let Some(batch) = batches.next() {
                if interrupt.load(Ordering::Relaxed) {
                    progress.finish();
                    return Ok((model, Stop::Interrupted { epoch }));
                }
                let n = batch.targets.dims()[0];
                let values = if self.loss_reads == 1 {
                    let value;
                    (model, value) = self.step(model, optim, &loss_fn, batch);
                    vec![(value, n)]
                } else {
                    let loss;
                    (model, loss) = self.step_unread(model, optim, &loss_fn, batch);
                    pending.push((loss, n));
                    if pending.len() < self.loss_reads && batches.peek().is_some() {
                        continue;
                    }
                    read_losses(std::mem::take(&mut pending))
                };
                for (value, n) in values {
                    count += 1;
                    if !value.is_finite() {
                        progress.finish();
                        let stop = Stop::Diverged {
                            epoch,
                            batch: count,
                            loss: value,
                        };
                        return Ok((model, stop));
                    }
                    loss_sum += value;
                    last_loss = value;
                    images += n;
                    progress.update(count, images, value);
                }
            }
            progress.finish();
            // The last step of an epoch can overflow the weights although every loss was finite;
            // such a model must not become the "last good" checkpoint.
            if !weights_are_finite(&model) {
                let stop = Stop::Diverged {
                    epoch,
                    batch: count,
                    loss: last_loss,
                };
                return Ok((model, stop));
            }
            let seconds = started.elapsed().as_secs_f64();
            let stats = EpochStats {
                epoch,
                train_loss: loss_sum / count as f64,
                seconds,
                images_per_sec: images as f64 / seconds,
            };
            self.console.println(format!(
                "Epoch: {} \tTraining Loss: {:.6}",
                stats.epoch, stats.train_loss
            ));
            history.push(stats);
            after_epoch(&model, optim, history)?;
        }
        Ok((model, Stop::Completed))
    }
}

impl Learner {
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
    pub fn step(
        &self,
        model: Net,
        optim: &mut ModuleOptimizer,
        loss_fn: &CrossEntropyLoss,
        batch: MnistBatch,
    ) -> (Net, f64) {
        let loss = loss_fn.forward(model.forward(batch.images), batch.targets);
        let value = f64::from(loss.clone().into_scalar::<f32>());
        if !value.is_finite() {
            return (model, value);
        }
        (self.descend(model, optim, loss), value)
    }

    /// The SGD step down `loss`'s gradient.
    fn descend(&self, model: Net, optim: &mut ModuleOptimizer, loss: Tensor<1>) -> Net {
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        optim.step(self.config.lr, model, grads)
    }

    /// [`Learner::step`] without reading the loss: the step is taken whatever the loss, which
    /// stays on the device (`[1]`).
    fn step_unread(
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

    /// Trains `model` for `steps` SGD steps with a fresh optimizer, passing over the training
    /// data in the configured order and batch size as often as it takes (the `epochs` setting
    /// is not used), without printing. After every step it calls `after_step(step, &model,
    /// loss)` with the step counted from 1. It stops early at the first loss that is not
    /// finite, returning the step (the model returned is then the one before that step), and
    /// returns the last step as well when the weights it leaves are not finite.
    ///
    /// The lab runs its experiments with this: many small networks, each measured every few
    /// steps rather than once per epoch.
    pub fn fit_steps(
        &self,
        model: Net,
        data: &Mnist,
        steps: usize,
        mut after_step: impl FnMut(usize, &Net, f64),
    ) -> Result<(Net, Option<usize>), TrainError> {
        let mut config = self.config.clone();
        config.epochs = 1;
        config.validate(model.norm(), data.len())?;
        let loss_fn = CrossEntropyLoss::new(None, &self.device);
        let mut optim = self.optimizer();
        let mut model = self.training_model(model);
        let (mut step, mut epoch) = (0, 0);
        loop {
            let order = epoch_order(data.len(), self.config.shuffle_seed, epoch);
            for batch in Batches::new(data, order, self.config.batch_size, &self.device) {
                if step == steps {
                    // The last step can overflow the weights although its loss was finite.
                    let diverged = (!weights_are_finite(&model)).then_some(steps);
                    return Ok((model, diverged));
                }
                step += 1;
                let loss;
                (model, loss) = self.step(model, &mut optim, &loss_fn, batch);
                if !loss.is_finite() {
                    return Ok((model, Some(step)));
                }
                after_step(step, &model, loss);
            }
            epoch += 1;
        }
    }
}

/// Reads losses left on the device in one transfer, in order, with their batch sizes.
fn read_losses(pending: Vec<(Tensor<1>, usize)>) -> Vec<(f64, usize)> {
    let (losses, sizes): (Vec<_>, Vec<_>) = pending.into_iter().unzip();
    let data = Tensor::cat(losses, 0).into_data().convert::<f32>();
    let values = data.as_slice::<f32>().expect("converted to f32");
    values.iter().map(|&v| f64::from(v)).zip(sizes).collect()
}

/// Whether every parameter and running statistic of the model is finite (one reduction per
/// tensor).
fn weights_are_finite(model: &Net) -> bool {
    struct Finite(bool);
    impl ModuleVisitor for Finite {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if self.0 {
                self.0 = param.val().abs().sum().into_scalar::<f32>().is_finite();
            }
        }
    }
    let mut visitor = Finite(true);
    model.visit(&mut visitor);
    visitor.0
}
