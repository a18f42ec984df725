//! [`Steps`]: a number of SGD steps over a training set, taken one at a time by the caller.
//! [`Learner::fit_steps`] is a loop over it (the lab's driver); the web page's playground
//! takes a few of its steps between answering the page.

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::loss::CrossEntropyLoss;
use burn::optim::ModuleOptimizer;
use burn::tensor::{Tensor, read_sync};
use mnist_bn_data::{Mnist, MnistBatch, epoch_order};
use mnist_bn_model::Net;

use super::base::Learner;
use crate::TrainError;

/// `steps` SGD steps of one model with a fresh optimizer, passing over the training data in the
/// learner's order and batch size as often as it takes (the `epochs` setting is not used).
/// Made by [`Learner::steps`]; each [`Steps::step`] takes one.
///
/// It stops at the first loss that is not finite ([`Steps::diverged_at`]); the model is then
/// the one before that step.
pub struct Steps {
    model: Option<Net>,
    optim: ModuleOptimizer,
    loss_fn: CrossEntropyLoss,
    images: usize,
    order: Vec<usize>,
    next: usize,
    epoch: usize,
    done: usize,
    steps: usize,
    diverged_at: Option<usize>,
}

impl std::fmt::Debug for Steps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Steps")
            .field("done", &self.done)
            .field("steps", &self.steps)
            .field("diverged_at", &self.diverged_at)
            .finish_non_exhaustive()
    }
}

impl Learner {
    /// `steps` SGD steps of `model` over a training set of `images` images (the set each
    /// [`Steps::step`] is then given), checked against the learner's settings first.
    pub fn steps(&self, model: Net, images: usize, steps: usize) -> Result<Steps, TrainError> {
        let mut config = self.config.clone();
        config.epochs = 1;
        config.validate(model.norm(), images)?;
        Ok(Steps {
            model: Some(self.training_model(model)),
            optim: self.optimizer(),
            loss_fn: CrossEntropyLoss::new(None, &self.device),
            images,
            order: epoch_order(images, self.config.shuffle_seed, 0),
            next: 0,
            epoch: 0,
            done: 0,
            steps,
            diverged_at: None,
        })
    }
}

impl Steps {
    /// Takes the next step on `data` (the training set of [`Learner::steps`]) with
    /// [`Learner::step`]: returns its loss, or `None` once every step is taken or a loss was
    /// not finite. A loss that is not finite is returned once, ends the steps and is recorded
    /// in [`Steps::diverged_at`].
    ///
    /// # Panics
    ///
    /// Panics if `data` is not as long as the training set the steps were made for.
    pub fn step(&mut self, learner: &Learner, data: &Mnist) -> Option<f64> {
        read_sync(self.step_async(learner, data))
    }

    /// [`Steps::step`] with [`Learner::step_async`]: what a browser's WebGPU device needs.
    pub async fn step_async(&mut self, learner: &Learner, data: &Mnist) -> Option<f64> {
        assert_eq!(
            data.len(),
            self.images,
            "the training set of Learner::steps"
        );
        if self.finished() {
            return None;
        }
        if self.next >= self.order.len() {
            self.epoch += 1;
            self.order = epoch_order(self.images, learner.config.shuffle_seed, self.epoch);
            self.next = 0;
        }
        let end = (self.next + learner.config.batch_size).min(self.order.len());
        let batch = MnistBatch::from_indices(data, &self.order[self.next..end], learner.device());
        self.next = end;
        self.done += 1;
        let model = self.model.take().expect("a model between steps");
        let (model, loss) = learner
            .step_async(model, &mut self.optim, &self.loss_fn, batch)
            .await;
        self.model = Some(model);
        if !loss.is_finite() {
            self.diverged_at = Some(self.done);
        }
        Some(loss)
    }

    /// Whether every step is taken or the steps stopped at a loss that was not finite.
    pub fn finished(&self) -> bool {
        self.done == self.steps || self.diverged_at.is_some()
    }

    /// Steps taken, counting one whose loss was not finite.
    pub fn done(&self) -> usize {
        self.done
    }

    /// The steps asked for.
    pub fn total(&self) -> usize {
        self.steps
    }

    /// The step whose loss was not finite, if one was.
    pub fn diverged_at(&self) -> Option<usize> {
        self.diverged_at
    }

    /// The model after the last step (before it, when its loss was not finite).
    pub fn model(&self) -> &Net {
        self.model.as_ref().expect("a model between steps")
    }

    /// The model, and the step at which it diverged: the step whose loss was not finite, or,
    /// when every step was taken, the last step if it left weights that are not finite.
    pub fn finish(mut self) -> (Net, Option<usize>) {
        let model = self.model.take().expect("a model between steps");
        let diverged_at = self.diverged_at.or_else(|| {
            (self.done == self.steps && !weights_are_finite(&model)).then_some(self.steps)
        });
        (model, diverged_at)
    }
}

/// Whether every parameter and running statistic of the model is finite (one reduction per
/// tensor).
pub(super) fn weights_are_finite(model: &Net) -> bool {
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
