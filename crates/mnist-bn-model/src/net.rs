//! Every model of the project behind one type, so that one learner trains them all.

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::conv::{ConvNet, ConvNetConfig};
use crate::mlp::{Mlp, MlpConfig, Norm};
use crate::rnn::{RowRnn, RowRnnConfig};

/// The configuration of any of the models.
#[derive(Config, Debug, PartialEq)]
pub enum NetConfig {
    /// The lesson's multilayer perceptron.
    Mlp(MlpConfig),
    /// A small ConvNet (BatchNorm2d).
    Conv(ConvNetConfig),
    /// A row-by-row RNN (recurrent batch norm).
    Rnn(RowRnnConfig),
}

/// Any of the models.
// A model is built once and moved a handful of times per step; the variants' size difference
// (a few hundred bytes of layer descriptors, not tensors) does not matter, and Burn's Module
// derive does not box.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Net {
    /// The lesson's multilayer perceptron.
    Mlp(Mlp),
    /// A small ConvNet.
    Conv(ConvNet),
    /// A row-by-row RNN.
    Rnn(RowRnn),
}

impl NetConfig {
    /// Initializes the model on `device`.
    pub fn init(&self, device: &Device) -> Net {
        match self {
            NetConfig::Mlp(c) => Net::Mlp(c.init(device)),
            NetConfig::Conv(c) => Net::Conv(c.init(device)),
            NetConfig::Rnn(c) => Net::Rnn(c.init(device)),
        }
    }

    /// The normalization of the model.
    pub fn norm(&self) -> Norm {
        match self {
            NetConfig::Mlp(c) => c.norm,
            NetConfig::Conv(c) => c.norm,
            NetConfig::Rnn(c) => c.norm,
        }
    }
}

impl From<MlpConfig> for NetConfig {
    fn from(config: MlpConfig) -> Self {
        NetConfig::Mlp(config)
    }
}

impl Net {
    /// Computes the logits of a batch of images (`[batch, 784]`, `[batch, 28, 28]` or
    /// `[batch, 1, 28, 28]`); see each model's `forward`.
    pub fn forward<const D: usize>(&self, images: Tensor<D>) -> Tensor<2> {
        match self {
            Net::Mlp(m) => m.forward(images),
            Net::Conv(m) => m.forward(images),
            Net::Rnn(m) => m.forward(images),
        }
    }

    /// The normalization the model was built with.
    pub fn norm(&self) -> Norm {
        match self {
            Net::Mlp(m) => m.norm(),
            Net::Conv(m) => m.norm(),
            Net::Rnn(m) => m.norm(),
        }
    }

    /// Returns the model with its batch norms using batch statistics or running ones.
    pub fn with_batch_statistics(self, enabled: bool) -> Self {
        match self {
            Net::Mlp(m) => Net::Mlp(m.with_batch_statistics(enabled)),
            Net::Conv(m) => Net::Conv(m.with_batch_statistics(enabled)),
            Net::Rnn(m) => Net::Rnn(m.with_batch_statistics(enabled)),
        }
    }

    /// The MLP, if this is one.
    pub fn as_mlp(&self) -> Option<&Mlp> {
        match self {
            Net::Mlp(m) => Some(m),
            _ => None,
        }
    }
}

impl From<Mlp> for Net {
    fn from(model: Mlp) -> Self {
        Net::Mlp(model)
    }
}
