//! Plain SGD computed where a CPU backend's tensors already are: in host memory, one pass over
//! each parameter, spread over the rayon pool.
//!
//! Burn's [`Sgd`](burn::optim::Sgd) updates a parameter with two tensor operations,
//! `grad · lr` and then `weight − that`; on the CPU backend (flex) each is a pass over the
//! values on one thread. For the lesson's MLP that is 14 % of a two-thread epoch (W1 alone is
//! 401,408 values: ~250 µs a step, where PyTorch's fused update on two threads takes ~50 µs).
//! [`HostSgd`] takes the same two operations in one pass, with the same float operations in the
//! same order (so the weights are the same to the bit), on chunks of [`CHUNK`] values that the
//! pool's threads share. On flex, [`Tensor::into_data`] and [`Tensor::from_data`] hand over the
//! buffer of a tensor nothing else holds without copying it; on a GPU they would download and
//! upload every parameter every step, so the learner uses it only where it is told to
//! ([`Learner::with_host_sgd`](crate::Learner::with_host_sgd)).

use burn::optim::{LearningRate, Optimizer, SgdState};
use burn::tensor::{DType, Device, Tensor};
use rayon::prelude::*;

/// Values updated by one rayon task: 128 KB of weights, so that W1 (401,408 values) makes 13
/// tasks the pool's threads share, and the batch norms' vectors (256–512 values) one.
pub const CHUNK: usize = 32 * 1024;

/// Plain SGD (`w ← w − lr·g`: no momentum, no weight decay), the same numbers as Burn's
/// [`Sgd`](burn::optim::Sgd) without momentum, computed on the host in one pass over each
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
        let state = Some(SgdState { momentum: None });
        if tensor.dtype() != DType::F32 || grad.dtype() != DType::F32 {
            return (tensor - grad.mul_scalar(lr), state);
        }
        let device = tensor.device();
        let mut weights = tensor.into_data();
        let grad = grad.into_data();
        Self::descend(
            weights.as_mut_slice::<f32>().expect("an f32 tensor's data"),
            grad.as_slice::<f32>().expect("an f32 tensor's data"),
            lr as f32,
        );
        (Tensor::from_data(weights, (&device, DType::F32)), state)
    }

    fn to_device<const D: usize>(state: Self::State<D>, _device: &Device) -> Self::State<D> {
        state
    }
}

impl HostSgd {
    /// `weights[i] -= grad[i] · lr` on the current rayon pool, [`CHUNK`] values per task; the
    /// same two roundings as Burn's `mul_scalar` then `sub` (Rust does not contract them into
    /// a fused multiply-add).
    ///
    /// # Panics
    /// If the two slices differ in length.
    pub fn descend(weights: &mut [f32], grad: &[f32], lr: f32) {
        assert_eq!(
            weights.len(),
            grad.len(),
            "weights and gradient differ in size"
        );
        weights
            .par_chunks_mut(CHUNK)
            .zip(grad.par_chunks(CHUNK))
            .for_each(|(weights, grad)| {
                for (w, &g) in weights.iter_mut().zip(grad) {
                    *w -= g * lr;
                }
            });
    }
}

#[cfg(test)]
mod tests {
    use burn::module::Module;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
    use burn::tensor::{Distribution, TensorData};

    use super::*;

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a rayon pool")
    }

    fn values(tensor: Tensor<2>) -> Vec<f32> {
        tensor
            .into_data()
            .try_into_vec::<f32>()
            .expect("f32 values")
    }

    #[test]
    fn descend_is_burns_mul_then_sub_to_the_bit_on_one_thread_and_two() {
        let device = Device::flex();
        // Not a multiple of CHUNK, so the last task is a short one.
        let shape = [CHUNK / 100 + 3, 301];
        let w = Tensor::<2>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        let g = Tensor::<2>::random(shape, Distribution::Normal(0.0, 3.0), &device);
        let lr = 0.01;
        let burns = values(w.clone() - g.clone().mul_scalar(lr));
        for threads in [1, 2] {
            let mut ours = values(w.clone());
            pool(threads).install(|| HostSgd::descend(&mut ours, &values(g.clone()), lr as f32));
            assert!(
                ours.iter()
                    .zip(&burns)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{threads} thread(s)"
            );
        }
    }

    fn layer(device: &Device) -> Linear {
        device.seed(3);
        LinearConfig::new(300, 200).init(device)
    }

    /// Five steps of `optim` on a linear layer with a squared loss; the weights after them.
    fn train(mut optim: ModuleOptimizer, device: &Device) -> (Vec<f32>, ModuleOptimizer) {
        let device = device.clone().autodiff();
        let mut model = layer(&device);
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
    fn trains_the_same_weights_as_burns_sgd_and_writes_records_it_reads() {
        let device = Device::flex();
        let (burns, _) = train(SgdConfig::new().init(), &device);
        let (ours, optim) = pool(2).install(|| train(ModuleOptimizer::from(HostSgd), &device));
        let before = values(layer(&device).weight.val());
        assert_ne!(burns, before, "the steps moved the weights");
        assert!(
            ours.iter()
                .zip(&burns)
                .all(|(a, b)| a.to_bits() == b.to_bits())
        );
        // A checkpoint's optimizer written by one loads into the other.
        let bytes = optim.into_bytes().expect("a record");
        let loaded = SgdConfig::new().init().from_bytes(bytes);
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
