//! The PyTorch lesson "Batch Normalization" as Burn modules: the lesson's MLP with or without
//! batch normalization, and a batch norm with PyTorch's semantics.
//!
//! This crate does no file or network I/O and enables no backend: depend on it from any Burn
//! project and pick the device there.
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
#![warn(missing_docs)]

mod batch_norm;
mod mlp;

pub use batch_norm::{BatchNormInit, RunningVariance, TorchBatchNorm, TorchBatchNormConfig};
pub use mlp::{Mlp, MlpConfig, Norm};
