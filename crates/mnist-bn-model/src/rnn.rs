//! A recurrent classifier that reads an image row by row, with or without recurrent batch
//! normalization (Cooijmans et al. 2016, "Recurrent Batch Normalization").

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::activation::tanh;
use burn::tensor::{Device, Tensor};

use crate::batch_norm::{BatchNormInit, TorchBatchNorm, TorchBatchNormConfig};
use crate::norm::Norm;

/// Configuration of a [`RowRnn`].
#[derive(Config, Debug, PartialEq)]
pub struct RowRnnConfig {
    /// The normalization of the input-to-hidden and hidden-to-hidden terms.
    pub norm: Norm,
    /// Width of the hidden state. Default: 128.
    #[config(default = 128)]
    pub hidden_size: usize,
    /// Time steps (image rows). Default: 28.
    #[config(default = 28)]
    pub steps: usize,
    /// Inputs per time step (pixels per row). Default: 28.
    #[config(default = 28)]
    pub input_size: usize,
    /// Number of classes. Default: 10.
    #[config(default = 10)]
    pub output_size: usize,
    /// Initial gamma of the recurrent batch norms; the paper recommends 0.1, which keeps
    /// `tanh` out of saturation. Default: 0.1.
    #[config(default = 0.1)]
    pub bn_gamma: f64,
}

/// An Elman RNN over the rows of an image, then a linear classifier on the last hidden state:
///
/// `h_t = tanh(BN_x,t(W_x x_t) + BN_h,t(W_h h_{t-1}) + b)`, `logits = W_o h_T + b_o`.
///
/// With [`Norm::Batch`], each time step `t` has its own batch norms (`input_norm[t]`,
/// `hidden_norm[t]`) and so its own running statistics, as in "Recurrent Batch
/// Normalization" (Cooijmans et al. 2016); the norms' shifts start at 0 and the shared bias `b`
/// carries the offset. Without it, the cell is a plain tanh RNN.
#[derive(Module, Debug)]
pub struct RowRnn {
    /// `W_x`: `input_size → hidden_size`, no bias.
    pub input: Linear,
    /// `W_h`: `hidden_size → hidden_size`, no bias.
    pub hidden: Linear,
    /// `b`, `[hidden_size]`.
    pub bias: Param<Tensor<1>>,
    /// Batch norm of the input-to-hidden term, one per time step (empty without batch norm).
    pub input_norm: Vec<TorchBatchNorm>,
    /// Batch norm of the hidden-to-hidden term, one per time step (empty without batch norm).
    pub hidden_norm: Vec<TorchBatchNorm>,
    /// `W_o`: `hidden_size → output_size`.
    pub head: Linear,
}

impl RowRnnConfig {
    /// Initializes a [`RowRnn`] on `device`.
    ///
    /// # Panics
    ///
    /// Panics with a norm other than none or batch norm (the other norms are the MLP's).
    pub fn init(&self, device: &Device) -> RowRnn {
        assert!(
            matches!(self.norm, Norm::None | Norm::Batch),
            "{} is offered for the MLP only",
            self.norm.describe()
        );
        let norms = || {
            if self.norm == Norm::Batch {
                (0..self.steps)
                    .map(|_| {
                        TorchBatchNormConfig::new(self.hidden_size)
                            .with_init(BatchNormInit::Ones)
                            .init(device)
                            .with_weight(self.bn_gamma, device)
                    })
                    .collect()
            } else {
                Vec::new()
            }
        };
        RowRnn {
            input: LinearConfig::new(self.input_size, self.hidden_size)
                .with_bias(false)
                .init(device),
            hidden: LinearConfig::new(self.hidden_size, self.hidden_size)
                .with_bias(false)
                .with_initializer(Initializer::Orthogonal { gain: 1.0 })
                .init(device),
            bias: Initializer::Zeros.init([self.hidden_size], device),
            input_norm: norms(),
            hidden_norm: norms(),
            head: LinearConfig::new(self.hidden_size, self.output_size).init(device),
        }
    }
}

impl RowRnn {
    /// Computes the logits of a batch of images, read one row per time step.
    ///
    /// # Shapes
    ///
    /// - `images`: `[batch, steps * input_size]`, `[batch, steps, input_size]` or
    ///   `[batch, 1, steps, input_size]`
    /// - output: `[batch, output_size]`
    ///
    /// # Panics
    ///
    /// Panics if an image is not a whole number of rows of `input_size` values; with batch
    /// norm (one pair of norms per time step), if it does not hold exactly the configured
    /// `steps` rows. Without batch norm any number of rows is read.
    pub fn forward<const D: usize>(&self, images: Tensor<D>) -> Tensor<2> {
        let [input_size, hidden_size] = self.input.weight.dims();
        let dims = images.dims();
        let values: usize = dims[1..].iter().product();
        assert_eq!(
            values % input_size,
            0,
            "expected rows of {input_size} values, got shape {dims:?}"
        );
        let steps = values / input_size;
        assert!(
            self.input_norm.is_empty() || steps == self.input_norm.len(),
            "expected {} rows of {input_size} values (one batch norm per time step), got shape \
             {dims:?}",
            self.input_norm.len()
        );
        let batch = dims[0];
        let rows: Tensor<3> = images.reshape([batch, steps, input_size]);
        // All input-to-hidden terms in one matmul: [batch * steps, hidden].
        let inputs: Tensor<3> = self
            .input
            .forward(rows)
            .reshape([batch, steps, hidden_size]);
        let bias = self.bias.val().unsqueeze_dim::<2>(0); // [1, hidden]
        let mut h = Tensor::<2>::zeros([batch, hidden_size], &bias.device());
        for t in 0..steps {
            let x_t: Tensor<2> = inputs
                .clone()
                .slice([0..batch, t..t + 1, 0..hidden_size])
                .reshape([batch, hidden_size]);
            let h_t = self.hidden.forward(h); // [batch, hidden]
            let (x_t, h_t) = match (self.input_norm.get(t), self.hidden_norm.get(t)) {
                (Some(bn_x), Some(bn_h)) => (bn_x.forward(x_t), bn_h.forward(h_t)),
                _ => (x_t, h_t),
            };
            h = tanh(x_t + h_t + bias.clone());
        }
        self.head.forward(h)
    }

    /// The normalization this model was built with.
    pub fn norm(&self) -> Norm {
        if self.input_norm.is_empty() {
            Norm::None
        } else {
            Norm::Batch
        }
    }

    /// Returns the model with its batch norms using batch statistics or running ones.
    pub fn with_batch_statistics(mut self, enabled: bool) -> Self {
        let switch = |norms: Vec<TorchBatchNorm>| {
            norms
                .into_iter()
                .map(|bn| bn.with_batch_statistics(enabled))
                .collect()
        };
        self.input_norm = switch(self.input_norm);
        self.hidden_norm = switch(self.hidden_norm);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    #[test]
    fn each_time_step_has_its_own_running_statistics() {
        let device = Device::flex();
        device.seed(2);
        let model = RowRnnConfig::new(Norm::Batch).init(&device);
        assert_eq!((model.input_norm.len(), model.hidden_norm.len()), (28, 28));
        let images = Tensor::<4>::random([8, 1, 28, 28], Distribution::Default, &device);
        assert_eq!(model.forward(images).dims(), [8, 10]);
        let mean = |bn: &TorchBatchNorm| {
            bn.running_mean
                .value()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        // Every step moved its own statistics, and the steps saw different inputs.
        let (first, later) = (mean(&model.input_norm[0]), mean(&model.input_norm[14]));
        assert!(first.iter().any(|&m| m != 0.0) && later.iter().any(|&m| m != 0.0));
        assert_ne!(first, later);
        // The hidden state is zero at step 0, so its term has zero mean there only.
        assert!(mean(&model.hidden_norm[0]).iter().all(|&m| m == 0.0));
        assert!(mean(&model.hidden_norm[5]).iter().any(|&m| m != 0.0));
    }

    #[test]
    #[should_panic(expected = "expected 28 rows of 28 values (one batch norm per time step)")]
    fn a_normalized_rnn_refuses_more_rows_than_it_has_norms() {
        let device = Device::flex();
        let model = RowRnnConfig::new(Norm::Batch).init(&device);
        let images = Tensor::<3>::zeros([4, 30, 28], &device);
        let _ = model.forward(images);
    }

    #[test]
    fn a_plain_rnn_reads_any_number_of_rows() {
        let device = Device::flex();
        let model = RowRnnConfig::new(Norm::None).init(&device);
        let images = Tensor::<3>::zeros([4, 30, 28], &device);
        assert_eq!(model.forward(images).dims(), [4, 10]);
    }

    #[test]
    fn plain_rnn_has_no_norms() {
        let device = Device::flex();
        let model = RowRnnConfig::new(Norm::None).init(&device);
        assert_eq!(model.norm(), Norm::None);
        let images = Tensor::<2>::random([2, 784], Distribution::Default, &device);
        assert_eq!(model.valid().forward(images).dims(), [2, 10]);
    }

    #[test]
    fn recurrent_batch_norm_starts_gamma_at_the_configured_value_and_it_matters() {
        let device = Device::flex();
        device.seed(5);
        let images = Tensor::<2>::random([8, 784], Distribution::Default, &device);
        let mut outs = Vec::new();
        for gamma in [0.1, 1.0] {
            device.seed(3);
            let model = RowRnnConfig::new(Norm::Batch)
                .with_bn_gamma(gamma)
                .init(&device);
            let w = model.input_norm[3]
                .weight
                .val()
                .into_data()
                .convert::<f32>();
            let w = w.as_slice::<f32>().unwrap();
            assert!(
                w.iter().all(|&v| (f64::from(v) - gamma).abs() < 1e-7),
                "{w:?}"
            );
            let out = model.forward(images.clone()).into_data().convert::<f32>();
            outs.push(out.try_to_vec::<f32>().unwrap());
        }
        assert_ne!(outs[0], outs[1]);
    }
}
