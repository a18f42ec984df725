//! The PyTorch lesson "Batch Normalization" as Burn modules: the lesson's MLP with or without
//! batch normalization, a batch norm with PyTorch's semantics, and where the lesson points
//! further: a ConvNet with BatchNorm2d and an RNN with recurrent batch norm (statistics per
//! time step). [`Net`] holds any of them.
//!
//! This crate does no file or network I/O and by default enables no backend: depend on it from
//! any Burn project and pick the device there. Its `flex` feature adds the module `flex`: speed
//! on Burn's flex backend (a batch-norm kernel of its own, which [`TorchBatchNorm`] then uses
//! there, and split products for one model on several threads), outside the models' API.
//!
//! ```
//! use burn::module::Module;
//! use burn::tensor::{Device, Tensor};
//! use mnist_bn_model::{MlpConfig, Norm};
//!
//! let device = Device::flex();
//! let model = MlpConfig::new(Norm::Batch).init(&device);
//! let images = Tensor::<4>::zeros([64, 1, 28, 28], &device);
//! let logits = model.valid().forward(images);
//! assert_eq!(logits.dims(), [64, 10]);
//! ```
//!
//! # Features
//!
//! - none by default: the modules, on any device the caller picks.
//! - `flex`: the module `flex` (a fused batch-norm kernel on Burn's flex backend, which
//!   [`TorchBatchNorm`] then uses there, and split products for one model on several threads;
//!   turns on Burn's `flex`, `autodiff` and `extension`).
//! - `train`: burn-train's `TrainStep` and `InferenceStep` for [`Net`] and [`Mlp`] on
//!   mnist-bn-data's `MnistBatch`, so that burn-train's `Learner` trains them (turns on Burn's
//!   `train`, without its terminal dashboard).
#![warn(missing_docs)]

// The README's example, compiled and run as a doc test.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

mod batch_norm;
mod batch_renorm;
mod bn_noise;
mod conv;
#[cfg(feature = "flex")]
pub mod flex;
mod mlp;
mod net;
mod norm;
mod rnn;
#[cfg(feature = "train")]
mod train;

pub use batch_norm::{BatchNormInit, RunningVariance, TorchBatchNorm, TorchBatchNormConfig};
pub use batch_renorm::{BatchRenorm, BatchRenormConfig, RenormSchedule};
pub use bn_noise::{BnNoise, BnNoiseConfig};
pub use conv::{ConvNet, ConvNetConfig};
pub use mlp::{Activation, Mlp, MlpBlock, MlpConfig};
pub use net::{Net, NetConfig};
pub use norm::Norm;
pub use rnn::{RowRnn, RowRnnConfig};

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;

/// Draws every lazily initialized parameter of `module` now.
///
/// Burn draws a parameter from the device's generator on first use. Call this right after
/// seeding the device and building a model, so that its weights depend on the seed alone: left
/// to the first forward pass, models built one after another and trained side by side would
/// draw from the one generator in turn, and their weights would depend on the threads' timing.
pub fn draw_parameters<M: Module>(module: &M) {
    struct Touch;
    impl ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    module.visit(&mut Touch);
}
