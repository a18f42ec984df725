//! The learner: trains a model ([`Net`]) with cross-entropy and plain SGD, one epoch at a time.

mod config;
mod tuning;

pub(crate) use config::check_batches;
pub use config::{EpochStats, Stop, TrainingConfig};
pub use tuning::DeviceTuning;

use std::sync::atomic::{AtomicBool, Ordering};
use web_time::Instant;

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::loss::CrossEntropyLoss;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::Device;
use burn::tensor::Tensor;
use mnist_bn_data::{Batches, DeviceMnist, Mnist, MnistBatch, epoch_order};
use mnist_bn_model::{Net, NetConfig, draw_parameters};

use crate::TrainError;
use crate::output::console::Console;
use crate::output::progress::{EpochProgress, ProgressMode};

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
    config: TrainingConfig,
    device: Device,
    progress: ProgressMode,
    label: String,
    console: Console,
    tuning: DeviceTuning,
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
        #[cfg(feature = "flex")]
        if self.tuning.parallel_step {
            return crate::cpu::parallel_step(model, self.config.batch_size, |model| {
                self.fit_epochs_from(model, optim, data, history, interrupt, after_epoch)
            });
        }
        self.fit_epochs_from(model, optim, data, history, interrupt, after_epoch)
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
            .tuning
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
                Vec::with_capacity(self.tuning.loss_reads_every.min(batches.num_batches()));
            let mut batches = batches.peekable();
            while let Some(batch) = batches.next() {
                if interrupt.load(Ordering::Relaxed) {
                    progress.finish();
                    return Ok((model, Stop::Interrupted { epoch }));
                }
                let n = batch.targets.dims()[0];
                let values = if self.tuning.loss_reads_every == 1 {
                    let value;
                    (model, value) = self.step(model, optim, &loss_fn, batch);
                    vec![(value, n)]
                } else {
                    let loss;
                    (model, loss) = self.step_unread(model, optim, &loss_fn, batch);
                    pending.push((loss, n));
                    if pending.len() < self.tuning.loss_reads_every && batches.peek().is_some() {
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

/// A freshly initialized model on `device` whose weights depend on `seed` alone: the
/// generator of `init_device` (or of `device` when `None`) is seeded, the model built there and
/// every parameter drawn at once (see [`draw_parameters`]), then moved to `device`. The one
/// seeded initialisation of the project: the lesson's fresh start, every lab network, `bench`
/// and the web page's session. The same seed gives the same weights as a run's (`mnist-bn run
/// --seed`) with the same `init_device` (or the same kind of device); one CPU device for every
/// backend gives every backend the same start (each device has its own generator).
pub fn seeded_model(
    config: &NetConfig,
    seed: u64,
    init_device: Option<&Device>,
    device: &Device,
) -> Net {
    let init = init_device.unwrap_or(device);
    init.seed(seed);
    let model = config.init(init);
    draw_parameters(&model);
    model.to_device(device)
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

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::Initializer;
    use mnist_bn_data::Split;
    use mnist_bn_model::{MlpConfig, Norm};

    /// A small plain MLP whose SGD overflows within a few steps at this learning rate.
    fn exploding() -> (NetConfig, TrainingConfig) {
        let config = MlpConfig::new(Norm::None)
            .with_hidden(vec![32])
            .with_weight_init(Some(Initializer::Normal {
                mean: 0.0,
                std: 1.0,
            }));
        (config.into(), TrainingConfig::new().with_lr(1e30))
    }

    fn data() -> Mnist {
        Mnist::load(Split::Train, None)
            .expect("the shipped MNIST")
            .truncate(256)
    }

    /// The losses of stepping `config`'s seeded model with `Learner::step` over the batches in
    /// file order, one after another, until a loss is not finite or `steps` are taken.
    fn stepped_by_hand(config: &NetConfig, training: &TrainingConfig, steps: usize) -> Vec<f64> {
        let (_generator, init) = crate::test_support::seeded_init_device();
        let learner = Learner::new(training.clone(), &Device::flex());
        let data = data();
        let loss_fn = CrossEntropyLoss::new(None, learner.device());
        let mut optim = learner.optimizer();
        let mut model =
            learner.training_model(seeded_model(config, 0, Some(&init), &Device::flex()));
        let mut losses = Vec::new();
        for epoch in 0.. {
            let order = epoch_order(data.len(), None, epoch);
            for batch in Batches::new(&data, order, training.batch_size, learner.device()) {
                let loss;
                (model, loss) = learner.step(model, &mut optim, &loss_fn, batch);
                losses.push(loss);
                if !loss.is_finite() || losses.len() == steps {
                    return losses;
                }
            }
        }
        unreachable!("the loop returns")
    }

    /// `fit_steps` of `config`'s seeded model for `steps`: the step it reports diverging at, and
    /// every `(step, loss)` it called back with.
    fn fit_steps_seen(
        config: &NetConfig,
        training: TrainingConfig,
        steps: usize,
    ) -> (Option<usize>, Vec<(usize, f64)>) {
        let (_generator, init) = crate::test_support::seeded_init_device();
        let learner = Learner::new(training, &Device::flex());
        let model = seeded_model(config, 0, Some(&init), &Device::flex());
        let mut seen = Vec::new();
        let (_, diverged) = learner
            .fit_steps(model, &data(), steps, |step, _, loss| {
                seen.push((step, loss))
            })
            .unwrap();
        (diverged, seen)
    }

    #[test]
    fn fit_steps_names_the_step_whose_loss_was_not_finite() {
        let (config, training) = exploding();
        let by_hand = stepped_by_hand(&config, &training, 100);
        let first_bad = by_hand
            .iter()
            .position(|l| !l.is_finite())
            .expect("it overflows")
            + 1;
        assert!(
            first_bad > 1,
            "the first step's loss is finite: {by_hand:?}"
        );

        let (diverged, seen) = fit_steps_seen(&config, training, 100);
        assert_eq!(diverged, Some(first_bad), "{by_hand:?}");
        // Called back after every step before it, with that step's number and loss.
        let expected: Vec<(usize, f64)> = (1..).zip(by_hand[..first_bad - 1].to_vec()).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn fit_steps_takes_the_steps_asked_for_across_epochs() {
        let (config, _) = exploding();
        let training = TrainingConfig::new();
        // 256 images in batches of 64: 10 steps run into a third pass over the data.
        let by_hand = stepped_by_hand(&config, &training, 10);
        let (diverged, seen) = fit_steps_seen(&config, training, 10);
        assert_eq!(diverged, None);
        assert_eq!(seen, (1..).zip(by_hand).collect::<Vec<_>>());
    }
}
