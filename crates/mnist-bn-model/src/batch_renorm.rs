//! Batch renormalization (Ioffe 2017, "Batch Renormalization: Towards Reducing Minibatch
//! Dependence in Batch-Normalized Models", Algorithm 1).
//!
//! Batch norm trains on each batch's own statistics and is tested on running averages of
//! them; with small or unrepresentative batches the two differ and the network learns to
//! depend on the batch. Batch renorm normalizes with the batch's statistics too, then corrects
//! the result toward what the running statistics would give, by a scale `r` and a shift `d`
//! that are treated as constants by the gradient:
//!
//! ```text
//! σ_B = sqrt(var_B + ε)          r = clip(σ_B / σ, 1/r_max, r_max)
//! x̂ = (x − μ_B) / σ_B · r + d    d = clip((μ_B − μ) / σ, −d_max, d_max)
//! y = γ x̂ + β                    μ ← μ + α(μ_B − μ),  σ ← σ + α(σ_B − σ)
//! ```
//!
//! Unclipped, `x̂ = (x − μ) / σ`: training and inference compute the same function. With
//! `r_max = 1, d_max = 0` its training forward is batch norm's (its running statistics stay
//! Algorithm 1's: a running σ of `sqrt(var_B + ε)`, not PyTorch's unbiased running variance). The paper starts there and relaxes the limits
//! ([`RenormSchedule`]). PyTorch has no such module; the tests check it against Algorithm 1
//! written out in PyTorch (`tests/fixtures/batch_renorm_case.py`).

use burn::config::Config;
use burn::module::{Flag, Module, Param, RunningState};
use burn::nn::Initializer;
use burn::tensor::{Device, Tensor};

use crate::batch_norm::check_settings;

/// How the limits of batch renorm's corrections are relaxed, step by step: `r_max = 1` and
/// `d_max = 0` (batch norm) for the first `warmup_steps` training steps, then linearly to
/// `r_max` at step `r_max_step` and to `d_max` at step `d_max_step`.
///
/// Ioffe (2017, Section 4.1) uses `r_max` 3 and `d_max` 5, reached at 40,000 and 25,000 steps
/// after 5,000 steps of batch norm, for Inception on ImageNet. The defaults here are that
/// schedule scaled down ten times, for MNIST's shorter runs: 500, 4,000 and 2,500 steps.
#[derive(Config, Debug, Copy, PartialEq)]
pub struct RenormSchedule {
    /// The final limit of `r`, at least 1. Default: 3.
    #[config(default = 3.0)]
    pub r_max: f64,
    /// The final limit of `d`, at least 0. Default: 5.
    #[config(default = 5.0)]
    pub d_max: f64,
    /// Steps trained as batch norm (`r_max = 1`, `d_max = 0`). Default: 500.
    #[config(default = 500)]
    pub warmup_steps: usize,
    /// The step at which `r_max` is reached. Default: 4,000.
    #[config(default = 4000)]
    pub r_max_step: usize,
    /// The step at which `d_max` is reached. Default: 2,500.
    #[config(default = 2500)]
    pub d_max_step: usize,
}

impl Default for RenormSchedule {
    fn default() -> Self {
        Self::new()
    }
}

impl RenormSchedule {
    /// The limits `(r_max, d_max)` at `step` (counted from 0), on the host.
    pub fn limits(&self, step: usize) -> (f64, f64) {
        let ramp = |end: usize| ramp(step as f64, self.warmup_steps as f64, end as f64);
        (
            1.0 + (self.r_max - 1.0) * ramp(self.r_max_step),
            self.d_max * ramp(self.d_max_step),
        )
    }

    /// Checks what [`BatchRenormConfig::init`] would otherwise panic on.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.r_max.is_finite() && self.r_max >= 1.0) {
            return Err(format!(
                "batch renorm r_max {} is not at least 1",
                self.r_max
            ));
        }
        if !(self.d_max.is_finite() && self.d_max >= 0.0) {
            return Err(format!(
                "batch renorm d_max {} is not at least 0",
                self.d_max
            ));
        }
        Ok(())
    }
}

/// 0 before `start`, then linearly to 1 at `end` (at once, a step after `start`, when `end`
/// is not after it).
fn ramp(step: f64, start: f64, end: f64) -> f64 {
    ((step - start) / (end - start).max(1.0)).clamp(0.0, 1.0)
}

/// Configuration of a [`BatchRenorm`] layer.
#[derive(Config, Debug)]
pub struct BatchRenormConfig {
    /// The number of features.
    pub num_features: usize,
    /// Added to the batch variance. Default: 1e-5.
    #[config(default = 1e-5)]
    pub epsilon: f64,
    /// Weight α of the newest batch in the running statistics. Default: 0.1.
    #[config(default = 0.1)]
    pub momentum: f64,
    /// How the limits of `r` and `d` relax. Default: [`RenormSchedule::new`].
    #[config(default = "RenormSchedule::new()")]
    pub schedule: RenormSchedule,
}

/// Batch renormalization over the features of `[batch, features]` inputs (see the module's
/// doc for the arithmetic).
///
/// Like [`TorchBatchNorm`](crate::TorchBatchNorm), the mode is the training flag alone
/// ([`Module::valid`] switches it off, [`BatchRenorm::with_batch_statistics`] sets it). The
/// schedule's clock, `steps`, counts the batches that moved the running statistics, as
/// PyTorch's `num_batches_tracked` does: every forward pass in training mode, a train-mode
/// test pass included (test a copy, as [`Module::valid`] makes one, to leave the model's
/// statistics and clock alone). A batch of one example leaves the running statistics and the
/// clock alone (its variance is 0), as in [`TorchBatchNorm`](crate::TorchBatchNorm).
#[derive(Module, Debug)]
pub struct BatchRenorm {
    /// The learnable scale γ, `[num_features]`.
    pub weight: Param<Tensor<1>>,
    /// The learnable shift β, `[num_features]`.
    pub bias: Param<Tensor<1>>,
    /// The running mean μ, `[num_features]`.
    pub running_mean: RunningState<Tensor<1>>,
    /// The running standard deviation σ (of `sqrt(var + ε)`, as in Algorithm 1),
    /// `[num_features]`, starting at 1.
    pub running_std: RunningState<Tensor<1>>,
    /// Batches that moved the running statistics so far, `[1]`: the schedule's clock.
    pub steps: RunningState<Tensor<1>>,
    /// Whether the layer normalizes with batch statistics (training mode).
    pub training: Param<Flag>,
    /// Weight α of the newest batch in the running statistics.
    pub momentum: f64,
    /// Added to the batch variance.
    pub epsilon: f64,
    /// The final `r_max`.
    pub r_max: f64,
    /// The final `d_max`.
    pub d_max: f64,
    /// Steps trained as batch norm.
    pub warmup_steps: usize,
    /// The step at which `r_max` is reached.
    pub r_max_step: usize,
    /// The step at which `d_max` is reached.
    pub d_max_step: usize,
}

impl BatchRenormConfig {
    /// Initializes a [`BatchRenorm`] on `device`: γ 1, β 0, μ 0, σ 1, step 0.
    ///
    /// # Panics
    ///
    /// Panics if `num_features` is zero, `epsilon` is not finite and positive, `momentum` is
    /// not within `[0, 1]`, or the schedule is invalid ([`RenormSchedule::validate`]).
    pub fn init(&self, device: &Device) -> BatchRenorm {
        check_settings(self.num_features, self.epsilon, self.momentum);
        if let Err(problem) = self.schedule.validate() {
            panic!("{problem}");
        }
        let shape = [self.num_features];
        let s = self.schedule;
        BatchRenorm {
            weight: Initializer::Ones.init(shape, device),
            bias: Initializer::Zeros.init(shape, device),
            running_mean: RunningState::new(Tensor::zeros(shape, device)),
            running_std: RunningState::new(Tensor::ones(shape, device)),
            steps: RunningState::new(Tensor::zeros([1], device)),
            training: Param::from_bool(true),
            momentum: self.momentum,
            epsilon: self.epsilon,
            r_max: s.r_max,
            d_max: s.d_max,
            warmup_steps: s.warmup_steps,
            r_max_step: s.r_max_step,
            d_max_step: s.d_max_step,
        }
    }
}

impl BatchRenorm {
    /// Normalizes `input` with corrected batch statistics (training mode) or running ones.
    ///
    /// # Shapes
    ///
    /// - `input`: `[batch, num_features]`
    /// - output: the same
    pub fn forward(&self, input: Tensor<2>) -> Tensor<2> {
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

    /// Whether the layer normalizes with batch statistics.
    pub fn uses_batch_statistics(&self) -> bool {
        self.training.is_enabled()
    }

    /// The schedule the layer was built with.
    pub fn schedule(&self) -> RenormSchedule {
        RenormSchedule {
            r_max: self.r_max,
            d_max: self.d_max,
            warmup_steps: self.warmup_steps,
            r_max_step: self.r_max_step,
            d_max_step: self.d_max_step,
        }
    }

    /// `[1, num_features]` views of the running statistics on `device`.
    fn running(&self, device: &Device) -> (Tensor<2>, Tensor<2>) {
        let n = self.weight.dims()[0];
        (
            self.running_mean
                .value_sync()
                .to_device(device)
                .reshape([1, n]),
            self.running_std
                .value_sync()
                .to_device(device)
                .reshape([1, n]),
        )
    }

    fn affine(&self, x_hat: Tensor<2>) -> Tensor<2> {
        let n = self.weight.dims()[0];
        x_hat * self.weight.val().reshape([1, n]) + self.bias.val().reshape([1, n])
    }

    fn forward_inference(&self, input: Tensor<2>) -> Tensor<2> {
        let (mean, std) = self.running(&input.device());
        self.affine((input - mean) / std)
    }

    fn forward_train(&self, input: Tensor<2>) -> Tensor<2> {
        let [batch, n] = input.dims();
        let device = input.device();
        let batch_mean = input.clone().mean_dim(0); // [1, n]
        let centered = input - batch_mean.clone();
        let batch_std = centered
            .clone()
            .square()
            .mean_dim(0)
            .add_scalar(self.epsilon)
            .sqrt(); // [1, n]
        let (mean, std) = self.running(&device);
        // The limits at this step, computed on the device from its clock (no read back).
        let steps = self.steps.value_sync().to_device(&device);
        let limit = |end: usize, max: f64| {
            let span = (end as f64 - self.warmup_steps as f64).max(1.0);
            steps
                .clone()
                .sub_scalar(self.warmup_steps as f64)
                .div_scalar(span)
                .clamp(0.0, 1.0)
                .mul_scalar(max)
                .reshape([1, 1])
                .expand([1, n])
        };
        let r_max = limit(self.r_max_step, self.r_max - 1.0).add_scalar(1.0);
        let d_max = limit(self.d_max_step, self.d_max);
        // r and d are constants to the gradient (stop_gradient in Algorithm 1).
        let r = (batch_std.clone().detach() / std.clone())
            .max_pair(r_max.clone().recip())
            .min_pair(r_max);
        let d = ((batch_mean.clone().detach() - mean.clone()) / std.clone())
            .max_pair(d_max.clone().neg())
            .min_pair(d_max);
        let output = self.affine(centered / batch_std.clone() * r + d);
        if batch > 1 {
            let alpha = self.momentum;
            let update = |running: Tensor<2>, batch: Tensor<2>| {
                running
                    .mul_scalar(1.0 - alpha)
                    .add(batch.detach().mul_scalar(alpha))
                    .reshape([n])
            };
            self.running_mean.update(update(mean, batch_mean));
            self.running_std.update(update(std, batch_std));
            self.steps.update(steps.add_scalar(1.0));
            // Fold the values in now, as TorchBatchNorm does (see there).
            let _ = self.running_mean.value_sync();
            let _ = self.running_std.value_sync();
            let _ = self.steps.value_sync();
        }
        output
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_is_batch_norm_then_relaxes_linearly() {
        let s = RenormSchedule::new();
        assert_eq!(s.limits(0), (1.0, 0.0));
        assert_eq!(s.limits(500), (1.0, 0.0));
        assert_eq!(s.limits(1000), (1.0 + 2.0 / 7.0, 1.25));
        assert_eq!(s.limits(2500), (1.0 + 2.0 * 2000.0 / 3500.0, 5.0));
        assert_eq!(s.limits(4000), (3.0, 5.0));
        assert_eq!(s.limits(1_000_000), (3.0, 5.0));
        // An end not after the warm-up: the limits jump a step after it.
        let s = RenormSchedule::new()
            .with_warmup_steps(10)
            .with_r_max_step(10)
            .with_d_max_step(0);
        assert_eq!(s.limits(10), (1.0, 0.0));
        assert_eq!(s.limits(11), (3.0, 5.0));
        assert!(RenormSchedule::new().with_r_max(0.5).validate().is_err());
        assert!(RenormSchedule::new().with_d_max(-1.0).validate().is_err());
        assert!(RenormSchedule::new().validate().is_ok());
    }
}
