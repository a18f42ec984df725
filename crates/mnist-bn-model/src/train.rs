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
use burn::tensor::{Int, Tensor};
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};
use mnist_bn_data::MnistBatch;

use crate::{Mlp, Net};

/// The cross-entropy loss of `logits` against the digits `targets`, with both for burn-train's
/// metrics.
fn classification(logits: Tensor<2>, targets: Tensor<1, Int>) -> ClassificationOutput {
    let loss =
        CrossEntropyLoss::new(None, &logits.device()).forward(logits.clone(), targets.clone());
    ClassificationOutput::new(loss, logits, targets)
}

/// The two steps for a model with `with_batch_statistics` and a `forward` to logits: `Net`, and
/// `Mlp` for a project that holds the MLP itself.
macro_rules! steps {
    ($model:ty) => {
        impl TrainStep for $model {
            type Input = MnistBatch;
            type Output = ClassificationOutput;

            /// Cross-entropy on `batch` with batch statistics, and its gradients.
            fn step(&self, batch: MnistBatch) -> TrainOutput<ClassificationOutput> {
                let model = self.clone().with_batch_statistics(true);
                let item = classification(model.forward(batch.images), batch.targets);
                TrainOutput::new(self, item.loss.backward(), item)
            }
        }

        impl InferenceStep for $model {
            type Input = MnistBatch;
            type Output = ClassificationOutput;

            /// Cross-entropy on `batch` with the running statistics.
            fn step(&self, batch: MnistBatch) -> ClassificationOutput {
                let model = self.clone().with_batch_statistics(false);
                classification(model.forward(batch.images), batch.targets)
            }
        }
    };
}

steps!(Net);
steps!(Mlp);
