//! burn-train's [`TrainStep`] and [`InferenceStep`] for [`Net`] and [`Mlp`] (feature `train`),
//! so that burn-train's `Learner` (`burn::train::Learner`, with its metrics, its dashboard,
//! checkpoints and early stopping) trains the models on mnist-bn-data's [`MnistBatch`]. Only
//! this crate can write these impls: the orphan rule forbids them in a user's crate.
//!
//! A training step normalizes with batch statistics and an inference step with the running
//! ones, whatever the model's own batch-statistics flag: burn-train validates on
//! `model.valid()`, and here, as in PyTorch, the mode is the model's flag, not the device.
//!
//! ```no_run
//! use burn::data::dataloader::DataLoaderBuilder;
//! use burn::optim::SgdConfig;
//! use burn::tensor::Device;
//! use burn::train::metric::{AccuracyMetric, LossMetric};
//! use burn::train::{Learner, SupervisedTraining};
//! use mnist_bn_data::{Mnist, MnistBatcher, Split};
//! use mnist_bn_model::{MlpConfig, Norm};
//!
//! let device = Device::flex().autodiff();
//! let train = Mnist::load(Split::Train, None).expect("the MNIST files");
//! let test = Mnist::load(Split::Test, None).expect("the MNIST files");
//! let model = MlpConfig::new(Norm::Batch).init(&device); // the lesson's MLP
//! let result = SupervisedTraining::new(
//!     "runs/burn-learner",
//!     DataLoaderBuilder::new(MnistBatcher).batch_size(64).build(train),
//!     DataLoaderBuilder::new(MnistBatcher).batch_size(1000).build(test),
//! )
//! .metrics((AccuracyMetric::new(), LossMetric::new()))
//! .num_epochs(1)
//! .launch(Learner::new(model, SgdConfig::new().init(), 0.01));
//! let trained = result.model;
//! ```

use burn::nn::loss::CrossEntropyLoss;
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};
use mnist_bn_data::MnistBatch;

use crate::{Mlp, Net};

/// The cross-entropy loss of `logits` against the batch's digits, with the logits and digits
/// for burn-train's metrics.
fn classification(logits: burn::tensor::Tensor<2>, batch: MnistBatch) -> ClassificationOutput {
    let loss = CrossEntropyLoss::new(None, &logits.device())
        .forward(logits.clone(), batch.targets.clone());
    ClassificationOutput::new(loss, logits, batch.targets)
}

impl TrainStep for Net {
    type Input = MnistBatch;
    type Output = ClassificationOutput;

    /// Cross-entropy on `batch` with batch statistics, and its gradients.
    fn step(&self, batch: MnistBatch) -> TrainOutput<ClassificationOutput> {
        let model = self.clone().with_batch_statistics(true);
        let item = classification(model.forward(batch.images.clone()), batch);
        TrainOutput::new(self, item.loss.backward(), item)
    }
}

impl InferenceStep for Net {
    type Input = MnistBatch;
    type Output = ClassificationOutput;

    /// Cross-entropy on `batch` with the running statistics.
    fn step(&self, batch: MnistBatch) -> ClassificationOutput {
        let model = self.clone().with_batch_statistics(false);
        classification(model.forward(batch.images.clone()), batch)
    }
}

impl TrainStep for Mlp {
    type Input = MnistBatch;
    type Output = ClassificationOutput;

    /// Cross-entropy on `batch` with batch statistics, and its gradients.
    fn step(&self, batch: MnistBatch) -> TrainOutput<ClassificationOutput> {
        let model = self.clone().with_batch_statistics(true);
        let item = classification(model.forward(batch.images.clone()), batch);
        TrainOutput::new(self, item.loss.backward(), item)
    }
}

impl InferenceStep for Mlp {
    type Input = MnistBatch;
    type Output = ClassificationOutput;

    /// Cross-entropy on `batch` with the running statistics.
    fn step(&self, batch: MnistBatch) -> ClassificationOutput {
        let model = self.clone().with_batch_statistics(false);
        classification(model.forward(batch.images.clone()), batch)
    }
}
