//! Plain SGD computed where a CPU backend's tensors already are: in host memory, one pass over
//! each parameter, spread over the rayon pool.
//!
//! Burn's [`Sgd`](burn::optim::Sgd) updates a parameter with two tensor operations,
//! `grad · lr` and then `weight − that`; on the CPU backend (flex) each is a pass over the
//! values on one thread. [`HostSgd`] takes the same two operations in one pass, with the same
//! float operations in the same order (so on flex the weights are the same to the bit), on
//! chunks of values that the pool's threads share. On flex, [`Tensor::into_data`] and
//! [`Tensor::from_data`] hand over the buffer of a tensor nothing else holds without copying it
//! (and copy one that is shared, so no other owner sees the write); on a GPU they would
//! download and upload every parameter every step, so the learner uses it only where it is told
//! to ([`DeviceTuning::host_sgd`](crate::DeviceTuning::host_sgd)). What it gains is measured in
//! the project's `docs/performance.md`.

use burn::optim::{LearningRate, Optimizer, SgdState};
use burn::tensor::{DType, Device, Tensor};
use rayon::prelude::*;

use super::hot_pool::HotPool;

/// Values updated by one rayon task: 128 KB of weights, so that W1 (401,408 values) makes 13
/// tasks the pool's threads share, and the batch norms' vectors (256–512 values) one.
const CHUNK: usize = 32 * 1024;

/// Plain SGD (`w ← w − lr·g`: no momentum, no weight decay), on flex the same numbers to the
/// bit as Burn's [`Sgd`](burn::optim::Sgd) without momentum, computed on the host in one pass over each
/// parameter's values by the threads of the current rayon pool. Its state is Burn's
/// [`SgdState`] (always without momentum), so its optimizer records are Burn's SGD records.
/// Tensors that are not `f32` take Burn's tensor operations instead.
#[derive(Clone, Debug, Default)]
pub struct HostSgd;

impl Optimizer for HostSgd {
    type State<const D: usize> = SgdState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        _state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        debug_assert_eq!(tensor.shape(), grad.shape(), "a gradient of another shape");
        let state = Some(SgdState { momentum: None });
        if tensor.dtype() != DType::F32 || grad.dtype() != DType::F32 {
            return (tensor - grad.mul_scalar(lr), state);
        }
        let device = tensor.device();
        let mut weights = tensor.into_data();
        let grad = grad.into_data();
        Self::update_in_place(
            weights.as_mut_slice::<f32>().expect("an f32 tensor's data"),
            grad.as_slice::<f32>().expect("an f32 tensor's data"),
            lr as f32,
            HotPool::held_here(),
        );
        (Tensor::from_data(weights, (&device, DType::F32)), state)
    }

    fn to_device<const D: usize>(state: Self::State<D>, _device: &Device) -> Self::State<D> {
        state
    }
}

impl HostSgd {
    /// `weights[i] -= grad[i] · lr`, with the same two roundings as flex's `mul_scalar` then
    /// `sub` (Rust does not contract them into a fused multiply-add). With `spread`, in chunks
    /// of 32 K values that the current rayon pool's threads share; `step` spreads only while
    /// its thread holds a [`HotPool`] (the parallel step), since waking a sleeping worker for
    /// each parameter cost more than it saved (a two-thread BN epoch 2.41 → 2.57 s).
    ///
    /// # Panics
    /// If the two slices differ in length.
    pub fn update_in_place(weights: &mut [f32], grad: &[f32], lr: f32, spread: bool) {
        assert_eq!(
            weights.len(),
            grad.len(),
            "weights and gradient differ in size"
        );
        let update = |(weights, grad): (&mut [f32], &[f32])| {
            for (w, &g) in weights.iter_mut().zip(grad) {
                *w -= g * lr;
            }
        };
        if spread {
            weights
                .par_chunks_mut(CHUNK)
                .zip(grad.par_chunks(CHUNK))
                .for_each(update);
        } else {
            update((weights, grad));
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::module::Module;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
    use burn::tensor::{Distribution, TensorData};

    use super::*;
    use crate::cpu::hot_pool::{TEST_TURN, test_pool as pool};

    fn values(tensor: Tensor<2>) -> Vec<f32> {
        tensor
            .into_data()
            .try_into_vec::<f32>()
            .expect("f32 values")
    }

    #[test]
    fn the_update_is_burns_mul_then_sub_to_the_bit_on_one_thread_and_two() {
        let device = Device::flex();
        // Not a multiple of CHUNK, so the last task is a short one.
        let shape = [CHUNK / 100 + 3, 301];
        let w = Tensor::<2>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        let g = Tensor::<2>::random(shape, Distribution::Normal(0.0, 3.0), &device);
        let lr = 0.01;
        let burns = values(w.clone() - g.clone().mul_scalar(lr));
        for (threads, spread) in [(1, false), (2, false), (1, true), (2, true)] {
            let mut ours = values(w.clone());
            let g = values(g.clone());
            pool(threads).install(|| HostSgd::update_in_place(&mut ours, &g, lr as f32, spread));
            assert!(
                ours.iter()
                    .zip(&burns)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{threads} thread(s), spread: {spread}"
            );
        }
    }

    /// Five steps of `optim` on `model`, a linear layer, with a squared loss; the weights after
    /// them and the optimizer.
    fn train(
        model: &Linear,
        mut optim: ModuleOptimizer,
        device: &Device,
    ) -> (Vec<f32>, ModuleOptimizer) {
        let device = device.clone().autodiff();
        let mut model = Module::train(model.clone());
        device.seed(4);
        let x = Tensor::<2>::random([64, 300], Distribution::Default, &device);
        for _ in 0..5 {
            let loss = model.forward(x.clone()).square().mean();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(0.05, model, grads);
        }
        (values(model.valid().weight.val()), optim)
    }

    #[test]
    fn trains_the_same_weights_as_burns_sgd_and_writes_the_same_records() {
        let device = Device::flex();
        device.seed(3);
        let model = LinearConfig::new(300, 200).init(&device);
        let (burns, burn_optim) = train(&model, SgdConfig::new().init(), &device);
        // On two threads, the other one spinning: the update spread over both, as in the app.
        let (ours, host_optim) = {
            let _turn = TEST_TURN.lock().unwrap();
            pool(2).install(|| {
                let _hot = HotPool::start().expect("a pool of two");
                assert!(HotPool::held_here());
                train(&model, ModuleOptimizer::from(HostSgd), &device)
            })
        };
        assert_ne!(
            burns,
            values(model.weight.val()),
            "the steps moved the weights"
        );
        assert!(
            ours.iter()
                .zip(&burns)
                .all(|(a, b)| a.to_bits() == b.to_bits())
        );
        // The same parameters (the model was cloned), the same record: a checkpoint's optimizer
        // written by either loads into the other.
        let bytes = |optim: &ModuleOptimizer| optim.into_bytes().expect("a record").to_vec();
        assert_eq!(bytes(&host_optim), bytes(&burn_optim));
        let loaded = SgdConfig::new()
            .init()
            .from_bytes(host_optim.into_bytes().unwrap());
        assert!(loaded.is_ok(), "{:?}", loaded.err());
        let loaded = ModuleOptimizer::from(HostSgd).from_bytes(burn_optim.into_bytes().unwrap());
        assert!(loaded.is_ok(), "{:?}", loaded.err());
    }

    #[test]
    fn other_float_types_take_burns_operations() {
        let device = Device::flex();
        let f64s =
            |v: Vec<f64>| Tensor::<1>::from_data(TensorData::new(v, [3]), (&device, DType::F64));
        let (out, state) = HostSgd.step(
            0.5,
            f64s(vec![1.0, 2.0, 3.0]),
            f64s(vec![2.0, -2.0, 0.0]),
            None,
        );
        assert_eq!(out.dtype(), DType::F64);
        assert_eq!(
            out.into_data().try_into_vec::<f64>().unwrap(),
            [0.0, 3.0, 3.0]
        );
        assert!(state.is_some_and(|s| s.momentum.is_none()));
    }
}
