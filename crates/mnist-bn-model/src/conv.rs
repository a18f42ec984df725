//! A small ConvNet for MNIST, with or without batch normalization (BatchNorm2d).

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::batch_norm::{BatchNormInit, TorchBatchNorm, TorchBatchNormConfig, normalize};
use crate::norm::Norm;

/// Configuration of a [`ConvNet`].
#[derive(Config, Debug, PartialEq)]
pub struct ConvNetConfig {
    /// The normalization after each convolution.
    pub norm: Norm,
    /// Channels of the first convolution. Default: 16.
    #[config(default = 16)]
    pub channels1: usize,
    /// Channels of the second convolution. Default: 32.
    #[config(default = 32)]
    pub channels2: usize,
    /// Number of classes. Default: 10.
    #[config(default = 10)]
    pub output_size: usize,
    /// Batch norm epsilon. Default: 1e-5.
    #[config(default = 1e-5)]
    pub bn_epsilon: f64,
    /// Batch norm momentum of the running statistics. Default: 0.1.
    #[config(default = 0.1)]
    pub bn_momentum: f64,
}

/// `conv1 3×3 → [batch_norm1] → ReLU → max-pool 2 → conv2 3×3 → [batch_norm2] → ReLU →
/// max-pool 2 → fc` on 28×28 images. A convolution followed by batch norm has no bias: the
/// norm's shift replaces it. Batch norm here keeps one mean and variance per channel, over
/// the batch, height and width (PyTorch's `BatchNorm2d`).
#[derive(Module, Debug)]
pub struct ConvNet {
    /// `1 → channels1`, 3×3, padding 1.
    pub conv1: Conv2d,
    /// Batch norm over `channels1` feature maps (with [`Norm::Batch`] only).
    pub batch_norm1: Option<TorchBatchNorm>,
    /// `channels1 → channels2`, 3×3, padding 1.
    pub conv2: Conv2d,
    /// Batch norm over `channels2` feature maps (with [`Norm::Batch`] only).
    pub batch_norm2: Option<TorchBatchNorm>,
    /// 2×2 max-pooling, stride 2.
    pub pool: MaxPool2d,
    /// `channels2 * 7 * 7 → output_size`.
    pub fc: Linear,
}

impl ConvNetConfig {
    /// Initializes a [`ConvNet`] on `device`.
    ///
    /// # Panics
    ///
    /// Panics with a norm other than none or batch norm (the other norms are the MLP's).
    pub fn init(&self, device: &Device) -> ConvNet {
        assert!(
            matches!(self.norm, Norm::None | Norm::Batch),
            "{} is offered for the MLP only",
            self.norm.describe()
        );
        let batch_norm = self.norm == Norm::Batch;
        let conv = |c_in, c_out| {
            Conv2dConfig::new([c_in, c_out], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_bias(!batch_norm)
                .init(device)
        };
        let norm = |features| {
            batch_norm.then(|| {
                TorchBatchNormConfig::new(features)
                    .with_epsilon(self.bn_epsilon)
                    .with_momentum(self.bn_momentum)
                    .with_init(BatchNormInit::Ones)
                    .init(device)
            })
        };
        ConvNet {
            conv1: conv(1, self.channels1),
            batch_norm1: norm(self.channels1),
            conv2: conv(self.channels1, self.channels2),
            batch_norm2: norm(self.channels2),
            pool: MaxPool2dConfig::new([2, 2]).init(),
            fc: LinearConfig::new(self.channels2 * 7 * 7, self.output_size).init(device),
        }
    }
}

impl ConvNet {
    /// Computes the logits of a batch of 28×28 images.
    ///
    /// # Shapes
    ///
    /// - `images`: `[batch, 784]`, `[batch, 28, 28]` or `[batch, 1, 28, 28]`
    /// - output: `[batch, output_size]`
    ///
    /// # Panics
    ///
    /// Panics if an image does not hold 784 values, or, with batch norm in training mode, if
    /// the batch holds a single image.
    pub fn forward<const D: usize>(&self, images: Tensor<D>) -> Tensor<2> {
        let dims = images.dims();
        let pixels: usize = dims[1..].iter().product();
        assert_eq!(pixels, 784, "expected 28x28 images, got shape {dims:?}");
        let batch = dims[0];
        let x: Tensor<4> = images.reshape([batch, 1, 28, 28]);
        let x = self.conv1.forward(x); // [batch, c1, 28, 28]
        let x = self.pool.forward(relu(normalize(&self.batch_norm1, x))); // [batch, c1, 14, 14]
        let x = self.conv2.forward(x); // [batch, c2, 14, 14]
        let x = self.pool.forward(relu(normalize(&self.batch_norm2, x))); // [batch, c2, 7, 7]
        let [_, c, h, w] = x.dims();
        self.fc.forward(x.reshape([batch, c * h * w])) // [batch, 10]
    }

    /// The normalization this model was built with.
    pub fn norm(&self) -> Norm {
        if self.batch_norm1.is_some() {
            Norm::Batch
        } else {
            Norm::None
        }
    }

    /// Returns the model with its batch norms using batch statistics or running ones.
    pub fn with_batch_statistics(mut self, enabled: bool) -> Self {
        self.batch_norm1 = self.batch_norm1.map(|bn| bn.with_batch_statistics(enabled));
        self.batch_norm2 = self.batch_norm2.map(|bn| bn.with_batch_statistics(enabled));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, Tolerance};

    #[test]
    fn shapes_and_biases() {
        let device = Device::flex();
        let model = ConvNetConfig::new(Norm::Batch).init(&device);
        assert!(model.conv1.bias.is_none() && model.conv2.bias.is_none());
        let plain = ConvNetConfig::new(Norm::None).init(&device);
        assert!(plain.conv1.bias.is_some() && plain.batch_norm1.is_none());
        let images = Tensor::<4>::random([3, 1, 28, 28], Distribution::Default, &device);
        assert_eq!(model.forward(images).dims(), [3, 10]);
    }

    #[test]
    fn batch_norm_2d_keeps_one_mean_and_variance_per_channel() {
        let device = Device::flex();
        device.seed(1);
        let model = ConvNetConfig::new(Norm::Batch).init(&device);
        let images = Tensor::<4>::random([4, 1, 28, 28], Distribution::Default, &device);
        let _ = model.forward(images.clone());
        // By hand: conv1's output, statistics over batch, height and width for each channel.
        let y = model.conv1.forward(images); // [4, 16, 28, 28]
        let per_channel: Tensor<2> = y.swap_dims(0, 1).reshape([16, 4 * 28 * 28]);
        let mean = per_channel.clone().mean_dim(1).reshape([16]);
        let var = per_channel.var(1).reshape([16]); // unbiased, as PyTorch feeds the running var
        let bn = model.batch_norm1.as_ref().unwrap();
        assert_eq!(bn.running_mean.value().dims(), [16]);
        bn.running_mean
            .value()
            .into_data()
            .assert_approx_eq::<f32>(&mean.mul_scalar(0.1).into_data(), Tolerance::absolute(1e-6));
        bn.running_var.value().into_data().assert_approx_eq::<f32>(
            &var.mul_scalar(0.1).add_scalar(0.9).into_data(),
            Tolerance::absolute(1e-5),
        );
    }
}
