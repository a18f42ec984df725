//! The PyTorch lesson "Batch Normalization" as Burn modules: the lesson's MLP with or without
//! batch normalization, a batch norm with PyTorch's semantics, and where the lesson points
//! further: a ConvNet with BatchNorm2d and an RNN with recurrent batch norm (statistics per
//! time step). [`Net`] holds any of them.
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
mod conv;
mod mlp;
mod net;
mod rnn;

pub use batch_norm::{BatchNormInit, RunningVariance, TorchBatchNorm, TorchBatchNormConfig};
pub use conv::{ConvNet, ConvNetConfig};
pub use mlp::{Mlp, MlpConfig, Norm};
pub use net::{Net, NetConfig};
pub use rnn::{RowRnn, RowRnnConfig};
