//! The lesson's multilayer perceptron, with or without batch normalization.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::batch_norm::{
    BatchNormInit, RunningVariance, TorchBatchNorm, TorchBatchNormConfig, normalize,
};

/// Which normalization follows each hidden linear layer.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum Norm {
    /// No normalization: the hidden linear layers have a bias.
    None,
    /// Batch normalization after each hidden linear layer (which then has no bias).
    Batch,
}

/// Configuration of an [`Mlp`]: the lesson's
/// `NeuralNet(use_batch_norm, input_size=784, hidden_dim=256, output_size=10)`.
#[derive(Config, Debug, PartialEq)]
pub struct MlpConfig {
    /// The normalization after the hidden linear layers.
    pub norm: Norm,
    /// Input features (a flattened 28×28 image). Default: 784.
    #[config(default = 784)]
    pub input_size: usize,
    /// Width of the second hidden layer; the first is twice as wide. Default: 256.
    #[config(default = 256)]
    pub hidden_dim: usize,
    /// Number of classes. Default: 10.
    #[config(default = 10)]
    pub output_size: usize,
    /// Batch norm epsilon. Default: 1e-5.
    #[config(default = 1e-5)]
    pub bn_epsilon: f64,
    /// Batch norm momentum of the running statistics. Default: 0.1.
    #[config(default = 0.1)]
    pub bn_momentum: f64,
    /// How batch norm's gamma starts. Default: `Ones` (today's PyTorch and Burn).
    #[config(default = "BatchNormInit::Ones")]
    pub bn_init: BatchNormInit,
    /// Which batch variance feeds the running variance. Default: `Unbiased` (PyTorch).
    #[config(default = "RunningVariance::Unbiased")]
    pub bn_running_variance: RunningVariance,
}

/// The lesson's MLP: `fc1 → [batch_norm1] → ReLU → fc2 → [batch_norm2] → ReLU → fc3`.
///
/// Field names are the PyTorch attribute names, so a `state_dict` of the lesson's
/// `NeuralNet` maps onto this module without renaming.
#[derive(Module, Debug)]
pub struct Mlp {
    /// `input_size → 2 * hidden_dim`; no bias when followed by batch norm.
    pub fc1: Linear,
    /// Batch norm over `2 * hidden_dim` features (with [`Norm::Batch`] only).
    pub batch_norm1: Option<TorchBatchNorm>,
    /// `2 * hidden_dim → hidden_dim`; no bias when followed by batch norm.
    pub fc2: Linear,
    /// Batch norm over `hidden_dim` features (with [`Norm::Batch`] only).
    pub batch_norm2: Option<TorchBatchNorm>,
    /// `hidden_dim → output_size`, always with a bias.
    pub fc3: Linear,
}

impl MlpConfig {
    /// Initializes an [`Mlp`] on `device`, with PyTorch's default initialization
    /// (weights and biases uniform in ±1/√fan_in).
    pub fn init(&self, device: &Device) -> Mlp {
        let batch_norm = self.norm == Norm::Batch;
        let wide = 2 * self.hidden_dim;
        let norm = |features: usize| {
            batch_norm.then(|| {
                TorchBatchNormConfig::new(features)
                    .with_epsilon(self.bn_epsilon)
                    .with_momentum(self.bn_momentum)
                    .with_init(self.bn_init)
                    .with_running_variance(self.bn_running_variance)
                    .init(device)
            })
        };
        Mlp {
            fc1: LinearConfig::new(self.input_size, wide)
                .with_bias(!batch_norm)
                .init(device),
            batch_norm1: norm(wide),
            fc2: LinearConfig::new(wide, self.hidden_dim)
                .with_bias(!batch_norm)
                .init(device),
            batch_norm2: norm(self.hidden_dim),
            fc3: LinearConfig::new(self.hidden_dim, self.output_size).init(device),
        }
    }
}

impl Mlp {
    /// Computes the logits of a batch of images.
    ///
    /// # Shapes
    ///
    /// - `images`: `[batch, input_size]`, or any shape whose trailing axes multiply to
    ///   `input_size` (`[batch, 28, 28]`, `[batch, 1, 28, 28]`): it is flattened like
    ///   PyTorch's `x.view(-1, 784)`.
    /// - output: `[batch, output_size]`
    ///
    /// # Panics
    ///
    /// Panics if the trailing axes do not hold `input_size` values, or, with batch norm in
    /// training mode, if the batch holds a single image.
    pub fn forward<const D: usize>(&self, images: Tensor<D>) -> Tensor<2> {
        let [input_size, _] = self.fc1.weight.dims();
        let dims = images.dims();
        let features: usize = dims[1..].iter().product();
        assert_eq!(
            features, input_size,
            "expected images with {input_size} values each, got shape {dims:?}"
        );
        let x: Tensor<2> = images.reshape([dims[0], input_size]); // [batch, 784]
        let x = self.fc1.forward(x); // [batch, 512]
        let x = relu(normalize(&self.batch_norm1, x));
        let x = self.fc2.forward(x); // [batch, 256]
        let x = relu(normalize(&self.batch_norm2, x));
        self.fc3.forward(x) // [batch, 10]
    }

    /// The normalization this model was built with.
    pub fn norm(&self) -> Norm {
        match self.batch_norm1 {
            Some(_) => Norm::Batch,
            None => Norm::None,
        }
    }

    /// Returns the model with its batch norms in training mode (batch statistics) or not
    /// (running statistics). Without batch norm the model is unchanged.
    ///
    /// [`Module::valid`] switches batch statistics off; use this on the result to test with
    /// batch statistics, as PyTorch's `model.train()` does before a test pass. In that mode
    /// each forward pass also updates the running statistics, which clones of the model share.
    pub fn with_batch_statistics(mut self, enabled: bool) -> Self {
        self.batch_norm1 = self.batch_norm1.map(|bn| bn.with_batch_statistics(enabled));
        self.batch_norm2 = self.batch_norm2.map(|bn| bn.with_batch_statistics(enabled));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, TensorData, Tolerance};

    fn device() -> Device {
        let device = Device::flex();
        device.seed(0);
        device
    }

    /// Trainable parameters: every float tensor but the running statistics.
    fn trainable(model: &Mlp) -> usize {
        let running: usize = [&model.batch_norm1, &model.batch_norm2]
            .into_iter()
            .flatten()
            .map(|bn| 2 * bn.running_mean.value().dims()[0])
            .sum();
        model.num_params() - running
    }

    #[test]
    fn parameter_counts_match_the_lesson() {
        let bn = MlpConfig::new(Norm::Batch).init(&device());
        let plain = MlpConfig::new(Norm::None).init(&device());
        println!(
            "parameters: batch norm {} trainable + {} running statistics; plain {}",
            trainable(&bn),
            bn.num_params() - trainable(&bn),
            trainable(&plain)
        );
        assert_eq!(trainable(&bn), 536_586);
        assert_eq!(bn.num_params() - trainable(&bn), 2 * (512 + 256));
        assert_eq!(trainable(&plain), 535_818);
        assert_eq!(plain.num_params(), 535_818);
    }

    #[test]
    fn biases_follow_the_lesson() {
        let bn = MlpConfig::new(Norm::Batch).init(&device());
        assert!(bn.fc1.bias.is_none() && bn.fc2.bias.is_none() && bn.fc3.bias.is_some());
        assert!(bn.batch_norm1.is_some() && bn.batch_norm2.is_some());
        assert_eq!(bn.norm(), Norm::Batch);
        let plain = MlpConfig::new(Norm::None).init(&device());
        assert!(plain.fc1.bias.is_some() && plain.fc2.bias.is_some() && plain.fc3.bias.is_some());
        assert!(plain.batch_norm1.is_none() && plain.batch_norm2.is_none());
        assert_eq!(plain.norm(), Norm::None);
    }

    #[test]
    fn accepts_flat_and_image_shaped_input() {
        let device = device();
        let model = MlpConfig::new(Norm::Batch).init(&device);
        let images = Tensor::<4>::random([5, 1, 28, 28], Distribution::Default, &device);
        let flat: Tensor<2> = images.clone().reshape([5, 784]);
        let square: Tensor<3> = images.clone().reshape([5, 28, 28]);
        let model = model.valid();
        let expected = model.forward(flat);
        assert_eq!(expected.dims(), [5, 10]);
        for out in [model.forward(images), model.forward(square)] {
            out.into_data()
                .assert_approx_eq::<f32>(&expected.clone().into_data(), Tolerance::absolute(0.0));
        }
    }

    #[test]
    #[should_panic(expected = "expected images with 784 values each")]
    fn rejects_wrongly_sized_input() {
        let device = device();
        let model = MlpConfig::new(Norm::None).init(&device);
        let _ = model.forward(Tensor::<2>::zeros([2, 100], &device));
    }

    #[test]
    fn training_mode_uses_batch_statistics_and_inference_running_ones() {
        let device = device();
        let model = MlpConfig::new(Norm::Batch).init(&device);
        let images = Tensor::<2>::random([8, 784], Distribution::Default, &device);
        // In training mode each image's logits depend on the rest of the batch.
        let batch = model.forward(images.clone());
        let half = model.forward(images.clone().slice([0..4, 0..784]));
        let diff = batch
            .slice([0..4, 0..10])
            .sub(half)
            .abs()
            .max()
            .into_scalar::<f32>();
        assert!(
            diff > 1e-3,
            "batch statistics should couple the images ({diff})"
        );
        // In inference mode they do not.
        let model = model.valid();
        let batch = model.forward(images.clone());
        let half = model.forward(images.slice([0..4, 0..784]));
        batch
            .slice([0..4, 0..10])
            .into_data()
            .assert_approx_eq::<f32>(&half.into_data(), Tolerance::absolute(1e-5));
    }

    #[test]
    fn one_training_forward_updates_running_statistics_with_momentum() {
        let device = device();
        let model = MlpConfig::new(Norm::Batch).init(&device);
        let images = Tensor::<2>::random([16, 784], Distribution::Default, &device);
        let _ = model.forward(images.clone());
        // By hand: fc1's batch mean and unbiased variance, mixed 0.1 into (0, 1).
        let h = model.fc1.forward(images); // [16, 512]
        let mean = h.clone().mean_dim(0).reshape([512]);
        let var = h.var(0).reshape([512]); // unbiased
        let bn = model.batch_norm1.as_ref().unwrap();
        bn.running_mean
            .value_sync()
            .into_data()
            .assert_approx_eq::<f32>(&mean.mul_scalar(0.1).into_data(), Tolerance::absolute(1e-6));
        bn.running_var
            .value_sync()
            .into_data()
            .assert_approx_eq::<f32>(
                &var.mul_scalar(0.1).add_scalar(0.9).into_data(),
                Tolerance::absolute(1e-5),
            );
    }

    #[test]
    fn with_batch_statistics_switches_an_inference_model_back() {
        let device = device();
        let model = MlpConfig::new(Norm::Batch).init(&device).valid();
        let model = model.with_batch_statistics(true);
        let before = model
            .batch_norm1
            .as_ref()
            .unwrap()
            .running_mean
            .value_sync();
        let _ = model.forward(Tensor::<2>::random(
            [4, 784],
            Distribution::Default,
            &device,
        ));
        let after = model
            .batch_norm1
            .as_ref()
            .unwrap()
            .running_mean
            .value_sync();
        assert!(before.sub(after).abs().sum().into_scalar::<f32>() > 0.0);
        let _ = TensorData::from([0.0f32]);
    }
}
