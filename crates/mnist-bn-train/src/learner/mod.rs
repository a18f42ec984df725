//! The learner: trains a model ([`Net`]) with cross-entropy and plain SGD, one epoch at a time.

mod base;
mod config;
mod steps;
mod tuning;

pub use base::Learner;
pub(crate) use config::check_batches;
pub use config::{EpochStats, Stop, TrainingConfig};
pub use steps::Steps;
use steps::weights_are_finite;
pub use tuning::DeviceTuning;

use std::sync::atomic::{AtomicBool, Ordering};
use web_time::Instant;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLoss;
use burn::optim::ModuleOptimizer;
use burn::tensor::Device;
use burn::tensor::Tensor;
use mnist_bn_data::{Batches, DeviceMnist, Mnist, epoch_order};
use mnist_bn_model::{Net, NetConfig, draw_parameters};

use crate::TrainError;
use crate::output::progress::EpochProgress;

impl Learner {
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
        let mut steps = self.steps(model, data.len(), steps)?;
        while let Some(loss) = steps.step(self, data) {
            if loss.is_finite() {
                after_step(steps.done(), steps.model(), loss);
            }
        }
        Ok(steps.finish())
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
