//! The multilayer perceptron: the lesson's, and every other depth, width, activation and
//! initialization the lab varies, with or without batch normalization.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{
    GroupNorm, GroupNormConfig, Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig,
};
use burn::tensor::activation::{relu, sigmoid, tanh};
use burn::tensor::{Device, Tensor};

use crate::batch_norm::{
    BatchNormInit, RunningVariance, TorchBatchNorm, TorchBatchNormConfig, normalize,
};
use crate::batch_renorm::{BatchRenorm, BatchRenormConfig};
use crate::bn_noise::{BnNoise, BnNoiseConfig};
use crate::norm::Norm;

/// The nonlinearity after each hidden layer (after its batch norm, if any).
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `max(0, x)`.
    Relu,
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// `tanh(x)`.
    Tanh,
}

impl Activation {
    /// Applies the activation element-wise.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::Relu => relu(x),
            Activation::Sigmoid => sigmoid(x),
            Activation::Tanh => tanh(x),
        }
    }

    /// The lowercase name (`relu`, `sigmoid`, `tanh`).
    pub fn name(&self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
        }
    }
}

/// Configuration of an [`Mlp`]. The defaults are the lesson's
/// `NeuralNet(use_batch_norm, input_size=784, hidden_dim=256, output_size=10)`:
/// `784 → 512 → 256 → 10`, ReLU, PyTorch's default initialization.
#[derive(Config, Debug, PartialEq)]
pub struct MlpConfig {
    /// The normalization after the hidden linear layers.
    pub norm: Norm,
    /// Input features (a flattened 28×28 image). Default: 784.
    #[config(default = 784)]
    pub input_size: usize,
    /// Widths of the hidden layers, from the input side. Default: `[512, 256]`.
    #[config(default = "vec![512, 256]")]
    pub hidden: Vec<usize>,
    /// Number of classes. Default: 10.
    #[config(default = 10)]
    pub output_size: usize,
    /// The activation after each hidden layer. Default: `Relu`.
    #[config(default = "Activation::Relu")]
    pub activation: Activation,
    /// How every linear weight starts: `None` for PyTorch's default (weights and biases
    /// uniform in ±1/√fan_in), or an initializer for the weights, the biases then starting at
    /// zero (the older TensorFlow lesson's `tf.random_normal` weights, for example). Default:
    /// `None`.
    #[config(default = "None")]
    pub weight_init: Option<Initializer>,
    /// The norm's epsilon, added to the variance (every norm). Default: 1e-5.
    #[config(default = 1e-5)]
    pub bn_epsilon: f64,
    /// Momentum of the running statistics (batch norm and batch renorm). Default: 0.1.
    #[config(default = 0.1)]
    pub bn_momentum: f64,
    /// How batch norm's gamma starts. Default: `Ones` (today's PyTorch and Burn).
    #[config(default = "BatchNormInit::Ones")]
    pub bn_init: BatchNormInit,
    /// Which batch variance feeds the running variance. Default: `Unbiased` (PyTorch).
    #[config(default = "RunningVariance::Unbiased")]
    pub bn_running_variance: RunningVariance,
    /// With [`Norm::Batch`], noise after each batch norm in training mode ("noisy batch
    /// norm", Santurkar et al. 2018; see [`BnNoiseConfig`]). Default: `None`.
    #[config(default = "None")]
    pub bn_noise: Option<BnNoiseConfig>,
}

/// One hidden layer: a linear layer and the norm after it, if any (at most one of the
/// optional fields is set, by [`MlpConfig::init`]).
///
/// Each norm has a field of its own, so that a checkpoint's keys name the norm
/// (`hidden.0.norm.weight` for batch norm, as in every checkpoint before the other norms,
/// `hidden.0.layer_norm.gamma`, ...), and the PyTorch names map onto them one to one.
#[derive(Module, Debug)]
pub struct MlpBlock {
    /// The linear layer; no bias when followed by batch norm or batch renorm.
    pub linear: Linear,
    /// The batch norm over its outputs (with [`Norm::Batch`] only).
    pub norm: Option<TorchBatchNorm>,
    /// The layer norm over its outputs (with [`Norm::Layer`] only).
    pub layer_norm: Option<LayerNorm>,
    /// The group norm over its outputs (with [`Norm::Group`] only).
    pub group_norm: Option<GroupNorm>,
    /// The batch renorm over its outputs (with [`Norm::BatchRenorm`] only).
    pub batch_renorm: Option<BatchRenorm>,
}

impl MlpBlock {
    /// The block's norm applied to the linear layer's output `y` (`[batch, width]`).
    fn normalize(&self, y: Tensor<2>) -> Tensor<2> {
        if let Some(norm) = &self.layer_norm {
            norm.forward(y)
        } else if let Some(norm) = &self.group_norm {
            norm.forward(y)
        } else if let Some(norm) = &self.batch_renorm {
            norm.forward(y)
        } else {
            normalize(&self.norm, y)
        }
    }

    /// Which norm the block has.
    fn kind(&self) -> Norm {
        if self.norm.is_some() {
            Norm::Batch
        } else if self.layer_norm.is_some() {
            Norm::Layer
        } else if let Some(norm) = &self.group_norm {
            Norm::Group {
                groups: norm.num_groups,
            }
        } else if let Some(norm) = &self.batch_renorm {
            Norm::BatchRenorm(norm.schedule())
        } else {
            Norm::None
        }
    }
}

/// A multilayer perceptron: for each hidden layer `linear → [batch norm] → activation`, then
/// an output `linear`. With the default [`MlpConfig`] it is the lesson's
/// `fc1 → [batch_norm1] → ReLU → fc2 → [batch_norm2] → ReLU → fc3`.
///
/// The lesson's PyTorch names map onto it one to one (`fc1` is `hidden.0.linear`,
/// `batch_norm1` is `hidden.0.norm`, the last `fc` is `output`); the train crate's PyTorch
/// import and export do that renaming.
#[derive(Module, Debug)]
pub struct Mlp {
    /// The hidden layers, from the input side.
    pub hidden: Vec<MlpBlock>,
    /// The output layer (last hidden width → classes), always with a bias.
    pub output: Linear,
    /// The activation after each hidden layer.
    #[module(skip)]
    pub activation: Activation,
    /// The threads the products are split for (`flex::split_products`, feature `flex`); 1,
    /// the default, computes each as one product. A speed setting, not part of the record.
    #[module(skip)]
    pub(crate) product_threads: usize,
    /// Noise after each batch norm while it uses batch statistics (training), one draw per
    /// forward pass; `None` for none ([`MlpConfig::bn_noise`]). Not part of the record.
    #[module(skip)]
    pub bn_noise: Option<BnNoise>,
}

impl MlpConfig {
    /// Initializes an [`Mlp`] on `device`.
    ///
    /// Parameters are drawn lazily, on first use, from the device's generator, layer by layer
    /// from the input side. With a `weight_init` the biases start at zero and batch norm
    /// (unless `bn_init` is `Lesson`) draws nothing, so the same seed gives a network with
    /// batch norm exactly the weights of its twin without.
    ///
    /// # Panics
    ///
    /// Panics if the norm does not fit the widths ([`Norm::validate`]).
    pub fn init(&self, device: &Device) -> Mlp {
        if let Err(problem) = self.norm.validate(&self.hidden) {
            panic!("{problem}");
        }
        let batch_norm = self.norm == Norm::Batch;
        let mut fan_in = self.input_size;
        let mut hidden = Vec::with_capacity(self.hidden.len());
        for &width in &self.hidden {
            hidden.push(MlpBlock {
                linear: self.linear(fan_in, width, self.norm.linear_bias(), device),
                norm: batch_norm.then(|| {
                    TorchBatchNormConfig::new(width)
                        .with_epsilon(self.bn_epsilon)
                        .with_momentum(self.bn_momentum)
                        .with_init(self.bn_init)
                        .with_running_variance(self.bn_running_variance)
                        .init(device)
                }),
                layer_norm: (self.norm == Norm::Layer).then(|| {
                    LayerNormConfig::new(width)
                        .with_epsilon(self.bn_epsilon)
                        .init(device)
                }),
                group_norm: match self.norm {
                    Norm::Group { groups } => Some(
                        GroupNormConfig::new(groups, width)
                            .with_epsilon(self.bn_epsilon)
                            .init(device),
                    ),
                    _ => None,
                },
                batch_renorm: match self.norm {
                    Norm::BatchRenorm(schedule) => Some(
                        BatchRenormConfig::new(width)
                            .with_epsilon(self.bn_epsilon)
                            .with_momentum(self.bn_momentum)
                            .with_schedule(schedule)
                            .init(device),
                    ),
                    _ => None,
                },
            });
            fan_in = width;
        }
        Mlp {
            hidden,
            output: self.linear(fan_in, self.output_size, true, device),
            activation: self.activation,
            product_threads: 1,
            bn_noise: self
                .bn_noise
                .clone()
                .filter(|_| batch_norm)
                .map(BnNoise::new),
        }
    }

    fn linear(&self, d_input: usize, d_output: usize, bias: bool, device: &Device) -> Linear {
        let config = LinearConfig::new(d_input, d_output).with_bias(bias);
        match &self.weight_init {
            None => config.init(device),
            Some(initializer) => {
                let mut linear = config
                    .with_initializer(initializer.clone())
                    .with_bias(false)
                    .init(device);
                if bias {
                    linear.bias = Some(Initializer::Zeros.init([d_output], device));
                }
                linear
            }
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
    /// Panics if the trailing axes do not hold `input_size` values.
    pub fn forward<const D: usize>(&self, images: Tensor<D>) -> Tensor<2> {
        self.forward_probed(images, false).0
    }

    /// Computes the logits and, for each hidden layer, the input of its activation (the batch
    /// norm's output with batch norm, the linear layer's without): what Ioffe and Szegedy
    /// (2015, Figure 1) follow over training.
    ///
    /// # Shapes
    ///
    /// As [`Mlp::forward`]; pre-activation `i` is `[batch, hidden[i]]`.
    pub fn forward_with_pre_activations<const D: usize>(
        &self,
        images: Tensor<D>,
    ) -> (Tensor<2>, Vec<Tensor<2>>) {
        self.forward_probed(images, true)
    }

    fn forward_probed<const D: usize>(
        &self,
        images: Tensor<D>,
        keep: bool,
    ) -> (Tensor<2>, Vec<Tensor<2>>) {
        let [input_size, _] = self
            .hidden
            .first()
            .map_or(&self.output, |block| &block.linear)
            .weight
            .dims();
        let dims = images.dims();
        let features: usize = dims[1..].iter().product();
        assert_eq!(
            features, input_size,
            "expected images with {input_size} values each, got shape {dims:?}"
        );
        let mut x: Tensor<2> = images.reshape([dims[0], input_size]); // [batch, 784]
        let mut pre_activations = Vec::new();
        // Noisy batch norm: one step's noise for every layer of this pass, in training mode.
        let noise = self.bn_noise.as_ref().filter(|_| {
            self.batch_norms()
                .any(TorchBatchNorm::uses_batch_statistics)
        });
        let step = noise.map(BnNoise::next_step);
        for (layer, block) in self.hidden.iter().enumerate() {
            let y = self.linear(&block.linear, x); // [batch, width]
            let mut z = block.normalize(y);
            if let (Some(noise), Some(step), Some(_)) = (noise, step, &block.norm) {
                z = noise.apply(z, step, layer);
            }
            if keep {
                pre_activations.push(z.clone());
            }
            x = self.activation.forward(z);
        }
        let logits = self.linear(&self.output, x);
        (logits, pre_activations) // [batch, output_size]
    }

    /// `layer.forward(x)`; on flex, in the pieces [`crate::flex::split_products`] asked for.
    fn linear(&self, layer: &Linear, x: Tensor<2>) -> Tensor<2> {
        #[cfg(feature = "flex")]
        return crate::flex::split::linear(layer, x, self.product_threads);
        #[cfg(not(feature = "flex"))]
        layer.forward(x)
    }

    /// The normalization this model was built with.
    pub fn norm(&self) -> Norm {
        self.hidden.first().map_or(Norm::None, MlpBlock::kind)
    }

    /// The model without its batch-norm noise (a noisy batch norm made plain).
    pub fn without_bn_noise(mut self) -> Self {
        self.bn_noise = None;
        self
    }

    /// The batch norms, from the input side (none without batch norm).
    pub fn batch_norms(&self) -> impl Iterator<Item = &TorchBatchNorm> {
        self.hidden.iter().filter_map(|block| block.norm.as_ref())
    }

    /// Returns the model with its batch norms (or batch renorms) in training mode (batch
    /// statistics) or not (running statistics). With another norm or none the model is
    /// unchanged: layer and group norm compute the same in both modes.
    ///
    /// [`Module::valid`] switches batch statistics off; use this on the result to test with
    /// batch statistics, as PyTorch's `model.train()` does before a test pass. In that mode
    /// each forward pass also updates the running statistics, which clones of the model share.
    pub fn with_batch_statistics(mut self, enabled: bool) -> Self {
        for block in &mut self.hidden {
            block.norm = block
                .norm
                .take()
                .map(|bn| bn.with_batch_statistics(enabled));
            block.batch_renorm = block
                .batch_renorm
                .take()
                .map(|bn| bn.with_batch_statistics(enabled));
        }
        self
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, Tolerance};

    fn device() -> Device {
        let device = Device::flex();
        device.seed(0);
        device
    }

    /// Trainable parameters: every float tensor but the running statistics.
    fn trainable(model: &Mlp) -> usize {
        let running: usize = model
            .batch_norms()
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
        assert_eq!(bn.hidden.len(), 2);
        assert!(
            bn.hidden
                .iter()
                .all(|b| b.linear.bias.is_none() && b.norm.is_some())
        );
        assert!(bn.output.bias.is_some());
        assert_eq!(bn.norm(), Norm::Batch);
        let plain = MlpConfig::new(Norm::None).init(&device());
        assert!(
            plain
                .hidden
                .iter()
                .all(|b| b.linear.bias.is_some() && b.norm.is_none())
        );
        assert!(plain.output.bias.is_some());
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
        let h = model.hidden[0].linear.forward(images); // [16, 512]
        let mean = h.clone().mean_dim(0).reshape([512]);
        let var = h.var(0).reshape([512]); // unbiased
        let bn = model.hidden[0].norm.as_ref().unwrap();
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
        let bn = |m: &Mlp| m.hidden[0].norm.as_ref().unwrap().running_mean.value_sync();
        let before = bn(&model);
        let _ = model.forward(Tensor::<2>::random(
            [4, 784],
            Distribution::Default,
            &device,
        ));
        let after = bn(&model);
        assert!(before.sub(after).abs().sum().into_scalar::<f32>() > 0.0);
    }

    #[test]
    fn a_general_config_builds_the_layers_it_names() {
        let config = MlpConfig::new(Norm::Batch)
            .with_hidden(vec![100, 100, 100])
            .with_activation(Activation::Sigmoid);
        let model = config.init(&device());
        let widths: Vec<[usize; 2]> = model
            .hidden
            .iter()
            .map(|b| b.linear.weight.dims())
            .collect();
        assert_eq!(widths, [[784, 100], [100, 100], [100, 100]]);
        assert_eq!(model.output.weight.dims(), [100, 10]);
        assert_eq!(model.activation, Activation::Sigmoid);
        let images = Tensor::<2>::random([6, 784], Distribution::Default, &device());
        let (logits, pre) = model.valid().forward_with_pre_activations(images);
        assert_eq!(logits.dims(), [6, 10]);
        assert_eq!(
            pre.iter().map(|p| p.dims()).collect::<Vec<_>>(),
            [[6, 100]; 3]
        );
    }

    #[test]
    fn noisy_batch_norm_moves_the_training_output_step_by_step_and_leaves_eval_mode_alone() {
        let device = device();
        let config = MlpConfig::new(Norm::Batch)
            .with_hidden(vec![16, 8])
            .with_bn_noise(Some(BnNoiseConfig::new(5)));
        let noisy = config.init(&device);
        // The same weights without the noise.
        let plain = noisy.clone().without_bn_noise();
        let images = Tensor::<2>::random([32, 784], Distribution::Default, &device);
        let out = |m: &Mlp| m.forward(images.clone()).into_data();
        // Training mode: the noise changes the output, and again at the next step.
        let (first, second) = (out(&noisy), out(&noisy));
        assert_ne!(first, out(&plain));
        assert_ne!(first, second);
        // Eval mode: no noise.
        let (noisy_eval, plain_eval) = (noisy.clone().valid(), plain.valid());
        assert_eq!(out(&noisy_eval), out(&plain_eval));
        // The same seed draws the same noise at the same step.
        let again = config.init(&device);
        let again = Mlp {
            hidden: noisy.hidden.clone(),
            output: noisy.output.clone(),
            ..again
        };
        assert_eq!(out(&again), first);
        // No batch norm, no noise.
        let none = MlpConfig::new(Norm::None)
            .with_bn_noise(Some(BnNoiseConfig::new(5)))
            .init(&device);
        assert!(none.bn_noise.is_none());
    }
}
