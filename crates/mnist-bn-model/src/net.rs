//! Every model of the project behind one type, so that one learner trains them all.

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::conv::{ConvNet, ConvNetConfig};
use crate::mlp::{Mlp, MlpConfig};
use crate::norm::Norm;
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

    /// Checks what [`init`](Self::init) would otherwise panic on (zero sizes, a norm that
    /// does not fit the widths or the model, a norm epsilon that is not finite and positive,
    /// a momentum outside [0, 1], an initializer with impossible bounds), for a config read
    /// from a file.
    pub fn validate(&self) -> Result<(), String> {
        let sizes: Vec<(&str, usize)> = match self {
            NetConfig::Mlp(c) => {
                let mut s = vec![("input_size", c.input_size), ("output_size", c.output_size)];
                s.extend(c.hidden.iter().map(|&h| ("hidden", h)));
                s
            }
            NetConfig::Conv(c) => vec![
                ("channels1", c.channels1),
                ("channels2", c.channels2),
                ("output_size", c.output_size),
            ],
            NetConfig::Rnn(c) => vec![
                ("hidden_size", c.hidden_size),
                ("steps", c.steps),
                ("input_size", c.input_size),
                ("output_size", c.output_size),
            ],
        };
        if let Some((name, _)) = sizes.iter().find(|(_, n)| *n == 0) {
            return Err(format!("{name} is 0"));
        }
        match self {
            NetConfig::Mlp(c) => c.norm.validate(&c.hidden)?,
            NetConfig::Conv(ConvNetConfig { norm, .. })
            | NetConfig::Rnn(RowRnnConfig { norm, .. })
                if !matches!(norm, Norm::None | Norm::Batch) =>
            {
                return Err(format!(
                    "{} is offered for the MLP only; the ConvNet and the RNN take none or batch \
                     norm",
                    norm.describe()
                ));
            }
            _ => {}
        }
        let (epsilon, momentum) = match self {
            NetConfig::Mlp(c) => (c.bn_epsilon, c.bn_momentum),
            NetConfig::Conv(c) => (c.bn_epsilon, c.bn_momentum),
            NetConfig::Rnn(c) if !c.bn_gamma.is_finite() => {
                return Err(format!("bn_gamma {} is not finite", c.bn_gamma));
            }
            NetConfig::Rnn(_) => (1e-5, 0.1),
        };
        if !(epsilon.is_finite() && epsilon > 0.0) {
            return Err(format!("bn_epsilon {epsilon} is not finite and positive"));
        }
        if !(0.0..=1.0).contains(&momentum) {
            return Err(format!("bn_momentum {momentum} is not within [0, 1]"));
        }
        if let NetConfig::Mlp(c) = self {
            match &c.weight_init {
                Some(burn::nn::Initializer::Uniform { min, max })
                    if !(min.is_finite() && max.is_finite() && min < max) =>
                {
                    return Err(format!("weight_init Uniform [{min}, {max}] is not a range"));
                }
                Some(burn::nn::Initializer::Normal { mean, std })
                    if !(mean.is_finite() && std.is_finite() && *std >= 0.0) =>
                {
                    return Err(format!(
                        "weight_init Normal({mean}, {std}) is not a distribution"
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// An upper bound of the number of values in the model's tensors (weights, biases and
    /// batch-norm parameters and statistics), computed from the config alone: what loading
    /// such a model can cost before any tensor is allocated. Saturates instead of
    /// overflowing.
    pub fn tensor_elements(&self) -> u64 {
        let mul = |a: usize, b: usize| (a as u64).saturating_mul(b as u64);
        match self {
            NetConfig::Mlp(c) => {
                let mut widths = vec![c.input_size];
                widths.extend(&c.hidden);
                widths.push(c.output_size);
                widths
                    .windows(2)
                    .map(|w| mul(w[0].saturating_add(5), w[1]))
                    .fold(0u64, u64::saturating_add)
            }
            NetConfig::Conv(c) => [
                mul(9 + 5, c.channels1),
                mul(mul(9, c.channels1).saturating_add(5) as usize, c.channels2),
                mul(
                    mul(49, c.channels2).saturating_add(1) as usize,
                    c.output_size,
                ),
            ]
            .into_iter()
            .fold(0u64, u64::saturating_add),
            NetConfig::Rnn(c) => [
                mul(
                    c.input_size.saturating_add(c.hidden_size).saturating_add(1),
                    c.hidden_size,
                ),
                mul(mul(8, c.steps) as usize, c.hidden_size),
                mul(c.hidden_size.saturating_add(1), c.output_size),
            ]
            .into_iter()
            .fold(0u64, u64::saturating_add),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_names_what_init_would_panic_on() {
        let lesson = NetConfig::Mlp(MlpConfig::new(Norm::Batch));
        assert_eq!(lesson.validate(), Ok(()));
        let bad = [
            (
                MlpConfig::new(Norm::Batch).with_bn_epsilon(0.0),
                "bn_epsilon 0",
            ),
            (
                MlpConfig::new(Norm::Batch).with_bn_momentum(1.5),
                "bn_momentum 1.5",
            ),
            (
                MlpConfig::new(Norm::Batch).with_hidden(vec![512, 0]),
                "hidden is 0",
            ),
            (
                MlpConfig::new(Norm::None).with_input_size(0),
                "input_size is 0",
            ),
        ];
        for (config, needle) in bad {
            let err = NetConfig::Mlp(config).validate().unwrap_err();
            assert!(err.contains(needle), "{err}");
        }
    }

    #[test]
    fn tensor_elements_bound_every_model_from_above_and_saturate() {
        let device = Device::flex();
        for config in [
            NetConfig::Mlp(MlpConfig::new(Norm::Batch)),
            NetConfig::Mlp(MlpConfig::new(Norm::None)),
            NetConfig::Conv(ConvNetConfig::new(Norm::Batch)),
            NetConfig::Rnn(RowRnnConfig::new(Norm::Batch)),
        ] {
            let actual = config.init(&device).num_params() as u64;
            let bound = config.tensor_elements();
            assert!(bound >= actual, "{config:?}: {bound} < {actual}");
            assert!(
                bound < actual * 2,
                "{config:?}: {bound} is no bound of {actual}"
            );
        }
        let huge = NetConfig::Mlp(MlpConfig::new(Norm::None).with_hidden(vec![usize::MAX; 3]));
        assert_eq!(huge.tensor_elements(), u64::MAX);
    }
}
