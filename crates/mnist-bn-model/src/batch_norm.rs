//! Batch normalization with PyTorch's semantics and parameter names.

use burn::config::Config;
use burn::module::{Flag, Module, Param, RunningState};
use burn::nn::Initializer;
use burn::tensor::{Device, Tensor};

/// How the scale (gamma) of a batch norm starts.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum BatchNormInit {
    /// Gamma starts at 1 and beta at 0, as in Burn and PyTorch ≥ 1.2.
    Ones,
    /// Gamma drawn uniformly from [0, 1] and beta at 0, as PyTorch 0.4 did: the init the
    /// lesson's published numbers came from.
    Lesson,
}

impl BatchNormInit {
    /// Every initialization, in the order a command line lists them.
    pub const ALL: [BatchNormInit; 2] = [BatchNormInit::Ones, BatchNormInit::Lesson];

    /// Its name on a command line: `modern` (gamma 1) or `lesson` (gamma uniform in [0, 1]).
    pub fn name(self) -> &'static str {
        match self {
            BatchNormInit::Ones => "modern",
            BatchNormInit::Lesson => "lesson",
        }
    }

    /// What it is, in a line.
    pub fn about(self) -> &'static str {
        match self {
            BatchNormInit::Ones => "Gamma = 1 (PyTorch >= 1.2 and Burn)",
            BatchNormInit::Lesson => {
                "Gamma uniform in [0, 1] (PyTorch 0.4, which produced the lesson's numbers)"
            }
        }
    }

    /// The initialization of a [`name`](Self::name).
    pub fn parse(name: &str) -> Option<BatchNormInit> {
        Self::ALL.into_iter().find(|init| init.name() == name)
    }
}

/// Which batch variance feeds the running variance.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum RunningVariance {
    /// The unbiased variance (`n / (n - 1)` times the biased one), as PyTorch does.
    Unbiased,
    /// The biased (population) variance, as Burn's own `BatchNorm` does.
    Biased,
}

/// Configuration of a [`TorchBatchNorm`] layer.
#[derive(Config, Debug)]
pub struct TorchBatchNormConfig {
    /// The number of features (channels).
    pub num_features: usize,
    /// Added to the variance for numerical stability. Default: 1e-5.
    #[config(default = 1e-5)]
    pub epsilon: f64,
    /// Weight of the newest batch in the running statistics. Default: 0.1.
    #[config(default = 0.1)]
    pub momentum: f64,
    /// How gamma starts. Default: `Ones`.
    #[config(default = "BatchNormInit::Ones")]
    pub init: BatchNormInit,
    /// Which batch variance updates the running variance. Default: `Unbiased` (PyTorch).
    #[config(default = "RunningVariance::Unbiased")]
    pub running_variance: RunningVariance,
}

/// Batch normalization over the channel axis (axis 1) of `[batch, channels, ...]` inputs.
///
/// It is `torch.nn.BatchNorm1d`/`BatchNorm2d`: in training mode it normalizes with the batch's
/// own statistics (over every axis but the channel axis) and moves the running statistics
/// towards them with `momentum`; in inference mode it normalizes with the running statistics.
/// Unlike Burn's `BatchNorm`, the running variance is updated with the *unbiased* batch variance
/// (as PyTorch does), and the parameters carry PyTorch's names (`weight`, `bias`,
/// `running_mean`, `running_var`), so a PyTorch `state_dict` maps onto it without renaming.
/// (It is not named `BatchNorm` because burn-store's PyTorch adapters rename `weight` and
/// `bias` to `gamma` and `beta` in any module of that name.)
///
/// The mode is the module's training flag alone, not the device: [`Module::valid`] turns it
/// off, and [`TorchBatchNorm::with_batch_statistics`] sets it, so that a model can be *tested* with
/// batch statistics (PyTorch's `model.train()` at test time) without an autodiff graph.
///
/// # A drop-in for PyTorch's `BatchNorm1d` and `BatchNorm2d`
///
/// Porting a PyTorch model to Burn, use this where the model has `nn.BatchNorm1d(n)` or
/// `nn.BatchNorm2d(n)` (`eps`, `momentum` and the init as there): its state dict loads without
/// renaming, and training gives PyTorch's numbers, running statistics included
/// (`crates/mnist-bn-train/tests/parity.rs`). Where Burn 0.22's own `nn::BatchNorm` differs,
/// each difference shown on numbers by `crates/mnist-bn-model/tests/torch_batch_norm.rs`:
///
/// | | PyTorch and `TorchBatchNorm` | Burn's `nn::BatchNorm` |
/// |---|---|---|
/// | training output | batch statistics, biased variance | the same |
/// | momentum | `(1 − m) · running + m · batch` | the same |
/// | running variance fed with | the *unbiased* batch variance (`n / (n − 1)` × biased) | the biased one |
/// | batch statistics used when | the training flag is on (`model.train()`) | the flag is on *and* the device is autodiff: a train-mode test pass without autodiff uses the running statistics |
/// | a batch of one value per channel | PyTorch refuses; here: output β, statistics unchanged | output β, running variance pulled toward 0 |
/// | parameter names | `weight`, `bias`, `running_mean`, `running_var` | `gamma`, `beta`, `running_mean`, `running_var` |
/// | `num_batches_tracked` | PyTorch keeps it; not kept here (mnist-bn-train's import ignores it, its export writes it) | none |
/// | BatchNorm2d's statistics | per channel over batch, height and width, summed one axis at a time (PyTorch's precision) | one reduction over all of them (off by up to 3.7e-4 relative on 50,176 values per channel) |
#[derive(Module, Debug)]
pub struct TorchBatchNorm {
    /// The learnable scale gamma, `[num_features]`.
    pub weight: Param<Tensor<1>>,
    /// The learnable shift beta, `[num_features]`.
    pub bias: Param<Tensor<1>>,
    /// The running mean, `[num_features]`.
    pub running_mean: RunningState<Tensor<1>>,
    /// The running variance, `[num_features]`.
    pub running_var: RunningState<Tensor<1>>,
    /// Whether the layer normalizes with batch statistics (training mode).
    pub training: Param<Flag>,
    /// Weight of the newest batch in the running statistics.
    pub momentum: f64,
    /// Added to the variance for numerical stability.
    pub epsilon: f64,
    /// Whether the running variance takes the unbiased batch variance.
    pub unbiased_running_var: bool,
}

impl TorchBatchNormConfig {
    /// Initializes a [`TorchBatchNorm`] on `device`.
    ///
    /// # Panics
    ///
    /// Panics if `num_features` is zero, `epsilon` is not finite and positive, or `momentum`
    /// is not within `[0, 1]`.
    pub fn init(&self, device: &Device) -> TorchBatchNorm {
        check_settings(self.num_features, self.epsilon, self.momentum);
        let shape = [self.num_features];
        let weight = match self.init {
            BatchNormInit::Ones => Initializer::Ones.init(shape, device),
            BatchNormInit::Lesson => {
                Initializer::Uniform { min: 0.0, max: 1.0 }.init(shape, device)
            }
        };
        TorchBatchNorm {
            weight,
            bias: Initializer::Zeros.init(shape, device),
            running_mean: RunningState::new(Tensor::zeros(shape, device)),
            running_var: RunningState::new(Tensor::ones(shape, device)),
            training: Param::from_bool(true),
            momentum: self.momentum,
            epsilon: self.epsilon,
            unbiased_running_var: self.running_variance == RunningVariance::Unbiased,
        }
    }
}

impl TorchBatchNorm {
    /// Normalizes `input` with batch statistics (training mode) or running statistics.
    ///
    /// # Shapes
    ///
    /// - `input`: `[batch, num_features, ...]`
    /// - output: the same as `input`
    ///
    /// # Panics
    ///
    /// Panics if axis 1 of `input` is not `num_features`.
    ///
    /// In training mode a batch of a single value per channel (one image, for
    /// `BatchNorm1d`) is normalized to beta for every input, as TensorFlow does, and leaves the
    /// running statistics alone (PyTorch refuses such a batch; the learner refuses to train on
    /// one). The lab's `inference` experiment shows what that does to predictions.
    pub fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        if self.training.is_enabled() {
            self.forward_train(input)
        } else {
            self.forward_inference(input)
        }
    }

    /// Returns the layer with training mode (batch statistics) switched on or off.
    pub fn with_batch_statistics(mut self, enabled: bool) -> Self {
        self.training = Param::from_bool(enabled);
        self
    }

    /// Returns the layer with gamma set to `value` in every channel.
    pub fn with_weight(mut self, value: f64, device: &Device) -> Self {
        let [n] = self.weight.dims();
        self.weight = Param::from_tensor(Tensor::full([n], value, device));
        self
    }

    /// Whether the layer normalizes with batch statistics.
    pub fn uses_batch_statistics(&self) -> bool {
        self.training.is_enabled()
    }

    fn forward_inference<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        let device = input.device();
        burn::tensor::module::batch_norm(
            input,
            self.weight.val(),
            self.bias.val(),
            self.running_mean.value_sync().to_device(&device),
            self.running_var.value_sync().to_device(&device),
            self.epsilon,
        )
    }

    fn forward_train<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        let dims = input.dims();
        let per_channel = dims.iter().product::<usize>() / dims[1];
        let device = input.device();
        let result = if D > 2 {
            self.batch_norm_train_staged(input)
        } else {
            batch_norm_train(input, self.weight.val(), self.bias.val(), self.epsilon)
        };
        if per_channel == 1 {
            // One value per channel is its own mean, with variance 0: the output is beta,
            // whatever the input (what TensorFlow computes; PyTorch refuses). The unbiased
            // variance is undefined, so the running statistics stay as they are.
            return result.output;
        }

        // PyTorch feeds the running variance with the unbiased estimate.
        let correction = if self.unbiased_running_var {
            per_channel as f64 / (per_channel as f64 - 1.0)
        } else {
            1.0
        };
        let mean = result.mean.detach();
        let var = result.variance.detach().mul_scalar(correction);
        let running_mean = self.running_mean.value_sync().to_device(&device);
        let running_var = self.running_var.value_sync().to_device(&device);
        self.running_mean.update(
            running_mean
                .mul_scalar(1.0 - self.momentum)
                .add(mean.mul_scalar(self.momentum))
                .detach(),
        );
        self.running_var.update(
            running_var
                .mul_scalar(1.0 - self.momentum)
                .add(var.mul_scalar(self.momentum))
                .detach(),
        );
        // `update` only records the value for this thread; fold it in now, so that whatever
        // reads the module next (a checkpoint, an export, `valid`) sees this batch's statistics.
        let _ = self.running_mean.value_sync();
        let _ = self.running_var.value_sync();
        result.output
    }
}

impl TorchBatchNorm {
    /// Batch norm in training mode over `[batch, channels, d2, ...]`, with each channel's
    /// statistics reduced one axis at a time (the last spatial axis first, the batch last).
    ///
    /// Burn's `batch_norm_train` on the CPU backend sums each channel's `batch × d2 × ...`
    /// values (50,176 in the ConvNet's first norm) left to right in f32, which leaves its batch
    /// variance off by up to 3.7e-4 relative and the convolutions' gradients by 0.7 % against
    /// PyTorch (`crates/mnist-bn-train/tests/parity_conv_rnn.rs`); summing 28, 28 and then 64
    /// values keeps every partial sum short. Autodiff differentiates the composition. Batch
    /// norm over `[batch, channels]` (the MLP, the RNN) sums only the batch and keeps the
    /// fused operation.
    fn batch_norm_train_staged<const D: usize>(
        &self,
        input: Tensor<D>,
    ) -> burn::tensor::module::BatchNormTrainOutput<D> {
        let channels = input.dims()[1];
        let mean_over = |x: Tensor<D>| {
            let mut x = x;
            for axis in (2..D).rev() {
                x = x.mean_dim(axis);
            }
            x.mean_dim(0)
        };
        let mean = mean_over(input.clone());
        let centered = input - mean.clone();
        let variance = mean_over(centered.clone().square());
        let mut shape = [1usize; D];
        shape[1] = channels;
        let scale =
            self.weight.val().reshape(shape) / variance.clone().add_scalar(self.epsilon).sqrt();
        let output = centered * scale + self.bias.val().reshape(shape);
        burn::tensor::module::BatchNormTrainOutput {
            output,
            mean: mean.reshape([channels]),
            variance: variance.reshape([channels]),
        }
    }
}

/// Burn's `batch_norm_train`; with the `flex` feature, over `[batch, channels]`,
/// [`crate::flex::fused_batch_norm::batch_norm_train`] (its own kernel on flex, Burn's elsewhere).
fn batch_norm_train<const D: usize>(
    input: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
) -> burn::tensor::module::BatchNormTrainOutput<D> {
    #[cfg(feature = "flex")]
    if D == 2 {
        let dims = input.dims();
        let result = crate::flex::fused_batch_norm::batch_norm_train(
            input.reshape([dims[0], dims[1]]),
            gamma,
            beta,
            epsilon,
        );
        return burn::tensor::module::BatchNormTrainOutput {
            output: result.output.reshape(dims),
            mean: result.mean,
            variance: result.variance,
        };
    }
    burn::tensor::module::batch_norm_train(input, gamma, beta, epsilon)
}

/// Panics unless `num_features` is positive, `epsilon` finite and positive and `momentum`
/// within `[0, 1]`: what every norm with running statistics needs.
pub(crate) fn check_settings(num_features: usize, epsilon: f64, momentum: f64) {
    assert!(num_features > 0, "num_features must be greater than zero");
    assert!(
        epsilon.is_finite() && epsilon > 0.0,
        "epsilon must be finite and positive"
    );
    assert!(
        (0.0..=1.0).contains(&momentum),
        "momentum must be within [0, 1]"
    );
}

/// Applies an optional batch norm: the identity without one.
pub(crate) fn normalize<const D: usize>(norm: &Option<TorchBatchNorm>, x: Tensor<D>) -> Tensor<D> {
    match norm {
        Some(bn) => bn.forward(x),
        None => x,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{TensorData, Tolerance};

    fn input(device: &Device) -> Tensor<2> {
        // [4, 2]: channel 0 = 1, 2, 3, 4; channel 1 = 0, 0, 2, 6.
        Tensor::from_data(
            TensorData::from([[1.0f32, 0.0], [2.0, 0.0], [3.0, 2.0], [4.0, 6.0]]),
            device,
        )
    }

    #[test]
    fn the_lesson_init_draws_gamma_in_0_1_and_sets_beta_to_0() {
        let device = Device::flex();
        device.seed(3);
        let bn = TorchBatchNormConfig::new(512)
            .with_init(BatchNormInit::Lesson)
            .init(&device);
        let gamma = bn.weight.val().into_data().try_to_vec::<f32>().unwrap();
        assert!(gamma.iter().all(|g| (0.0..=1.0).contains(g)), "{gamma:?}");
        // Drawn, not constant: 512 uniform draws spread over most of [0, 1].
        let (lo, hi) = gamma
            .iter()
            .fold((1.0f32, 0.0f32), |(lo, hi), &g| (lo.min(g), hi.max(g)));
        assert!(lo < 0.05 && hi > 0.95, "{lo} {hi}");
        let beta = bn.bias.val().into_data().try_to_vec::<f32>().unwrap();
        assert!(beta.iter().all(|&b| b == 0.0), "{beta:?}");
        let modern = TorchBatchNormConfig::new(4).init(&device);
        let gamma = modern.weight.val().into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(gamma, [1.0; 4]);
    }

    #[test]
    fn training_mode_normalizes_with_batch_statistics() {
        let device = Device::flex();
        let bn = TorchBatchNormConfig::new(2).init(&device);
        let out = bn.forward(input(&device));
        // Channel 0: mean 2.5, biased var 1.25 → (x - 2.5) / sqrt(1.25 + 1e-5).
        let s0 = (1.25f32 + 1e-5).sqrt();
        // Channel 1: mean 2, biased var (4 + 4 + 0 + 16) / 4 = 6.
        let s1 = (6.0f32 + 1e-5).sqrt();
        let expected = TensorData::from([
            [-1.5 / s0, -2.0 / s1],
            [-0.5 / s0, -2.0 / s1],
            [0.5 / s0, 0.0],
            [1.5 / s0, 4.0 / s1],
        ]);
        out.into_data()
            .assert_approx_eq::<f32>(&expected, Tolerance::absolute(1e-6));
    }

    #[test]
    fn a_batch_of_one_becomes_beta_and_leaves_the_running_statistics() {
        let device = Device::flex();
        let bn = TorchBatchNormConfig::new(2).init(&device);
        let bias = Tensor::<1>::from_data(TensorData::from([0.5f32, -1.0]), &device);
        let bn = TorchBatchNorm {
            bias: Param::from_tensor(bias),
            ..bn
        };
        for row in [[7.0f32, -3.0], [0.0, 100.0]] {
            let x = Tensor::<2>::from_data(TensorData::from([row]), &device);
            bn.forward(x).into_data().assert_approx_eq::<f32>(
                &TensorData::from([[0.5f32, -1.0]]),
                Tolerance::absolute(1e-6),
            );
        }
        let stats = |t: &RunningState<Tensor<1>>| t.value_sync().into_data();
        stats(&bn.running_mean).assert_eq(&TensorData::from([0.0f32, 0.0]), true);
        stats(&bn.running_var).assert_eq(&TensorData::from([1.0f32, 1.0]), true);
    }

    #[test]
    fn running_statistics_move_with_momentum_and_unbiased_variance() {
        // Expected values, as PyTorch computes them:
        //   bn = torch.nn.BatchNorm1d(2); bn(torch.tensor([[1., 0.], [2., 0.], [3., 2.], [4., 6.]]))
        //   bn.running_mean -> [0.25, 0.2]; bn.running_var -> [1.0666667, 1.7]
        // (0.9 * 0 + 0.1 * mean; 0.9 * 1 + 0.1 * unbiased var, var = 5/3 and 8).
        let device = Device::flex();
        let bn = TorchBatchNormConfig::new(2).init(&device);
        let _ = bn.forward(input(&device));
        bn.running_mean
            .value_sync()
            .into_data()
            .assert_approx_eq::<f32>(&TensorData::from([0.25f32, 0.2]), Tolerance::absolute(1e-6));
        bn.running_var
            .value_sync()
            .into_data()
            .assert_approx_eq::<f32>(
                &TensorData::from([0.9 + 0.1 * 5.0 / 3.0, 1.7f32]),
                Tolerance::absolute(1e-6),
            );
    }

    #[test]
    fn biased_running_variance_is_an_option() {
        let device = Device::flex();
        let bn = TorchBatchNormConfig::new(2)
            .with_running_variance(RunningVariance::Biased)
            .init(&device);
        let _ = bn.forward(input(&device));
        bn.running_var
            .value_sync()
            .into_data()
            .assert_approx_eq::<f32>(
                &TensorData::from([0.9 + 0.1 * 1.25, 0.9 + 0.1 * 6.0f32]),
                Tolerance::absolute(1e-6),
            );
    }

    #[test]
    fn inference_mode_uses_running_statistics_and_leaves_them_alone() {
        let device = Device::flex();
        let bn = TorchBatchNormConfig::new(2).init(&device).valid();
        assert!(!bn.uses_batch_statistics());
        let out = bn.forward(input(&device));
        // Running mean 0, var 1: the output is the input scaled by 1 / sqrt(1 + eps).
        let expected = input(&device).div_scalar((1.0f64 + 1e-5).sqrt());
        out.into_data()
            .assert_approx_eq::<f32>(&expected.into_data(), Tolerance::absolute(1e-6));
        bn.running_mean
            .value_sync()
            .into_data()
            .assert_approx_eq::<f32>(&TensorData::from([0.0f32, 0.0]), Tolerance::absolute(0.0));
    }

    #[test]
    fn batch_norm_2d_keeps_one_statistic_per_channel() {
        let device = Device::flex();
        let bn = TorchBatchNormConfig::new(3).init(&device);
        // [2, 3, 2, 2]: channel c holds the value c everywhere but one pixel.
        let mut values = vec![0.0f32; 24];
        for b in 0..2 {
            for c in 0..3 {
                for p in 0..4 {
                    values[b * 12 + c * 4 + p] =
                        c as f32 + if p == 0 && b == 0 { 8.0 } else { 0.0 };
                }
            }
        }
        let x = Tensor::<4>::from_data(TensorData::new(values, [2, 3, 2, 2]), &device);
        let _ = bn.forward(x);
        // Channel c: mean c + 1 over 8 values, momentum 0.1 from 0.
        bn.running_mean
            .value_sync()
            .into_data()
            .assert_approx_eq::<f32>(
                &TensorData::from([0.1f32, 0.2, 0.3]),
                Tolerance::absolute(1e-6),
            );
    }
}
