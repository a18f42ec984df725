//! Noisy batch norm (Santurkar, Tsipras, Ilyas & Madry 2018, "How Does Batch Normalization Help
//! Optimization?", Section 2.1): after each batch norm, in training mode, every unit's output is
//! scaled and shifted by random noise whose mean and spread are themselves drawn anew at every
//! step, so that the distribution of each layer's inputs moves *more* than without batch norm.
//! Santurkar et al. show that such a network still trains as well as with plain batch norm,
//! against the idea that batch norm helps by keeping those distributions steady.
//!
//! The noise comes from a generator of its own, seeded by [`BnNoiseConfig::seed`] and the step,
//! not from the device's: the same seed gives the same noise whatever other networks train
//! beside it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use burn::config::Config;
use burn::tensor::{Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The noise after each batch norm: at each training step and for each layer, a shift mean
/// `μ ~ U(−shift_mean, shift_mean)`, a shift spread `σ ~ U(0, shift_std)`, a scale mean
/// `ν ~ U(1 − scale_mean, 1 + scale_mean)` and a scale spread `τ ~ U(0, scale_std)`; then for
/// each unit `j` the output `y_j` becomes `y_j · (ν + τ·a_j) + (μ + σ·b_j)` with `a_j`, `b_j`
/// standard normal. The defaults give a shift of the order of the normalized output itself.
#[derive(Config, Debug, PartialEq)]
pub struct BnNoiseConfig {
    /// Seed of the noise's generator.
    pub seed: u64,
    /// Bound of the shift's mean. Default: 1.
    #[config(default = 1.0)]
    pub shift_mean: f64,
    /// Bound of the shift's standard deviation. Default: 1.
    #[config(default = 1.0)]
    pub shift_std: f64,
    /// Bound of the scale's mean's distance from 1. Default: 0.5.
    #[config(default = 0.5)]
    pub scale_mean: f64,
    /// Bound of the scale's standard deviation. Default: 0.5.
    #[config(default = 0.5)]
    pub scale_std: f64,
}

/// The noise of one network: its configuration and the count of training steps so far, which
/// clones of the network share (as they share batch norm's running statistics).
#[derive(Debug, Clone)]
pub struct BnNoise {
    config: BnNoiseConfig,
    steps: Arc<AtomicU64>,
}

impl BnNoise {
    /// The noise of `config`, from step 0.
    pub fn new(config: BnNoiseConfig) -> Self {
        Self {
            config,
            steps: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Counts a training step and returns its number, from 0.
    pub(crate) fn next_step(&self) -> u64 {
        self.steps.fetch_add(1, Ordering::Relaxed)
    }

    /// The per-unit scale and shift of `layer` (from the input side) at `step`, for `width`
    /// units: the same for the same seed, step and layer.
    pub fn sample(&self, step: u64, layer: usize, width: usize) -> (Vec<f32>, Vec<f32>) {
        let c = &self.config;
        // One stream per seed, step and layer.
        let mut rng = ChaCha8Rng::seed_from_u64(c.seed);
        rng.set_stream((step << 16) | layer as u64);
        let uniform =
            |rng: &mut ChaCha8Rng, low: f64, high: f64| low + (high - low) * rng.random::<f64>();
        let shift_mean = uniform(&mut rng, -c.shift_mean, c.shift_mean);
        let shift_std = uniform(&mut rng, 0.0, c.shift_std);
        let scale_mean = uniform(&mut rng, 1.0 - c.scale_mean, 1.0 + c.scale_mean);
        let scale_std = uniform(&mut rng, 0.0, c.scale_std);
        let mut normal = || {
            // Box–Muller: rand 0.9 has no normal distribution of its own, and the workspace's
            // rand_distr is built for another rand.
            let (u, v): (f64, f64) = (1.0 - rng.random::<f64>(), rng.random::<f64>());
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        };
        let scale = (0..width)
            .map(|_| (scale_mean + scale_std * normal()) as f32)
            .collect();
        let shift = (0..width)
            .map(|_| (shift_mean + shift_std * normal()) as f32)
            .collect();
        (scale, shift)
    }

    /// `output` (`[batch, width]`, the batch norm's output of `layer`) with the noise of
    /// `step`.
    pub(crate) fn apply(&self, output: Tensor<2>, step: u64, layer: usize) -> Tensor<2> {
        let [_, width] = output.dims();
        let device = output.device();
        let (scale, shift) = self.sample(step, layer, width);
        let scale = Tensor::<1>::from_data(TensorData::new(scale, [width]), &device);
        let shift = Tensor::<1>::from_data(TensorData::new(shift, [width]), &device);
        output * scale.unsqueeze::<2>() + shift.unsqueeze::<2>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_step_and_layer_give_the_same_noise_and_others_other_noise() {
        let noise = BnNoise::new(BnNoiseConfig::new(7));
        let (a, b) = (noise.sample(3, 1, 100), noise.sample(3, 1, 100));
        assert_eq!(a, b);
        assert_ne!(a, noise.sample(4, 1, 100), "another step");
        assert_ne!(a, noise.sample(3, 0, 100), "another layer");
        assert_ne!(
            a,
            BnNoise::new(BnNoiseConfig::new(8)).sample(3, 1, 100),
            "another seed"
        );
    }

    #[test]
    fn the_noise_has_a_moving_non_zero_mean_and_a_non_unit_scale() {
        let noise = BnNoise::new(BnNoiseConfig::new(1));
        let mean = |v: &[f32]| v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64;
        let steps: Vec<(f64, f64)> = (0..20)
            .map(|step| {
                let (scale, shift) = noise.sample(step, 0, 2000);
                (mean(&scale), mean(&shift))
            })
            .collect();
        // Each step's means lie in their bounds (up to the sampling error of 2,000 units) and
        // move from step to step.
        for &(scale, shift) in &steps {
            assert!((0.45..=1.55).contains(&scale), "{scale}");
            assert!((-1.1..=1.1).contains(&shift), "{shift}");
        }
        let spread = |f: fn(&(f64, f64)) -> f64| {
            let values: Vec<f64> = steps.iter().map(f).collect();
            values.iter().cloned().fold(f64::MIN, f64::max)
                - values.iter().cloned().fold(f64::MAX, f64::min)
        };
        assert!(spread(|s| s.0) > 0.3 && spread(|s| s.1) > 0.6, "{steps:?}");
    }

    #[test]
    fn clones_count_the_same_steps() {
        let noise = BnNoise::new(BnNoiseConfig::new(1));
        let clone = noise.clone();
        assert_eq!(
            (noise.next_step(), clone.next_step(), noise.next_step()),
            (0, 1, 2)
        );
    }
}
