//! Batch norm over `[batch, channels]` in training mode as one pass per direction on Burn's
//! flex (CPU) backend: a Burn backend extension (`#[backend_extension]`, Burn's mechanism for
//! custom operations) with its own autodiff backward.
//!
//! Burn 0.22's `batch_norm_train` is a composition of tensor operations (burn-flex has no kernel
//! of its own): about ten passes over the `[64, 512]` activations forward and as many backward,
//! two of them transposed copies (swap the axes, then reshape), each in a freshly allocated
//! tensor. PyTorch runs one native kernel each way; at batch 64 the difference is most of what
//! a two-thread BN epoch spent above PyTorch's (`cargo bench --bench ops`, `docs/performance.md`).
//!
//! Here each direction reads the batch a few times in row order and writes its output once:
//!
//! ```text
//! forward:  Σx → mean;  Σ(x − mean)² → var;  y = (x − mean) / √(var + ε) · γ + β
//! backward: x̂ = (x − mean) / √(var + ε);  Σdy → dβ;  Σdy·x̂ → dγ;
//!           dx = γ/√(var + ε) · ((dy − dβ/n) − x̂ · dγ/n)     (written over dy when it can)
//! ```
//!
//! The formulas are Burn's (`ModuleOps::batch_norm_train` and `batch_norm_train_backward`),
//! element by element with the same float operations; only the sums differ in order: each
//! channel's values are added in batch order, one after another, where burn-flex sums a
//! transposed copy with SIMD lanes. The sums, and so the numbers, do not depend on the machine
//! or the thread count. Every backend other than flex takes Burn's operation ([`batch_norm_train`]
//! chooses by the device); on flex, inputs that are not contiguous f32 `[batch, channels]`
//! matrices with at least one row and one channel do too (the flex implementation checks).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, DispatchDevice, Flex, backend_extension};
use burn::tensor::module::BatchNormTrainOutput;
use burn::tensor::{Bytes, DType, Shape, Tensor};

/// Batch norm in training mode as one operation per direction, with a kernel of its own on the
/// flex backend (and autodiff over it).
#[backend_extension(Flex, Autodiff)]
pub trait FusedBatchNormBackend: Backend {
    /// Normalizes `x: [batch, channels]` with its own batch statistics and scales by `gamma`,
    /// shifts by `beta`; returns the output, the batch mean and the biased batch variance (each
    /// `[channels]`), as Burn's `batch_norm_train`.
    fn fused_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// The gradients of [`fused_batch_norm_train`](Self::fused_batch_norm_train) with respect
    /// to `x`, `gamma` and `beta`, given the gradient of its output and the statistics it
    /// returned.
    fn fused_batch_norm_train_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        epsilon: f64,
        output_grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// Whether [`batch_norm_train`] runs the fused kernel on this device: flex, with or without
/// autodiff.
pub fn fused_on(device: &burn::tensor::Device) -> bool {
    matches!(
        device.as_dispatch().clone().inner(),
        DispatchDevice::Flex(_)
    )
}

/// Burn's `batch_norm_train` over `[batch, channels]`, as one operation per direction on flex
/// (see the module's documentation) and Burn's own elsewhere.
pub fn batch_norm_train(
    x: Tensor<2>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
) -> BatchNormTrainOutput<2> {
    if !fused_on(&x.device()) {
        return burn::tensor::module::batch_norm_train(x, gamma, beta, epsilon);
    }
    let (output, mean, variance) =
        <burn::backend::Dispatch as FusedBatchNormBackend>::fused_batch_norm_train(
            x.into_dispatch(),
            gamma.into_dispatch(),
            beta.into_dispatch(),
            epsilon,
        );
    BatchNormTrainOutput {
        output: Tensor::from_dispatch(output),
        mean: Tensor::from_dispatch(mean),
        variance: Tensor::from_dispatch(variance),
    }
}

/// A contiguous f32 `[batch, channels]` tensor's values and its channels, or `None` (Burn's path
/// then).
fn matrix(x: &FlexTensor) -> Option<(&[f32], usize)> {
    let dims = x.layout().shape();
    if x.dtype() != DType::F32 || dims.num_dims() != 2 {
        return None;
    }
    let (batch, channels) = (dims[0], dims[1]);
    let values = x.as_slice::<f32>()?;
    (batch > 0 && channels > 0 && values.len() == batch * channels).then_some((values, channels))
}

/// A contiguous f32 `[channels]` tensor's values, or `None`.
fn vector(x: &FlexTensor, channels: usize) -> Option<&[f32]> {
    // `as_slice` is `None` for another dtype or a strided layout.
    let values = x.as_slice::<f32>()?;
    (values.len() == channels).then_some(values)
}

/// A new flex tensor holding `values` (no copy).
fn flex_tensor(values: Vec<f32>, shape: Shape) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(values),
        Layout::contiguous(shape),
        DType::F32,
    )
}

/// The forward pass on the host: `(output, mean, biased variance)`.
fn forward(
    x: &[f32],
    channels: usize,
    gamma: &[f32],
    beta: &[f32],
    epsilon: f32,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let batch = (x.len() / channels) as f32;
    let mut mean = vec![0.0f32; channels];
    for row in x.chunks_exact(channels) {
        for (sum, &v) in mean.iter_mut().zip(row) {
            *sum += v;
        }
    }
    mean.iter_mut().for_each(|m| *m /= batch);
    let mut variance = vec![0.0f32; channels];
    for row in x.chunks_exact(channels) {
        for ((sum, &v), &m) in variance.iter_mut().zip(row).zip(&mean) {
            let centered = v - m;
            *sum += centered * centered;
        }
    }
    variance.iter_mut().for_each(|v| *v /= batch);
    let std: Vec<f32> = variance.iter().map(|v| (v + epsilon).sqrt()).collect();
    let mut output = vec![0.0f32; x.len()];
    for (out, row) in output
        .chunks_exact_mut(channels)
        .zip(x.chunks_exact(channels))
    {
        let per_channel = mean.iter().zip(&std).zip(gamma.iter().zip(beta));
        for ((y, &v), ((&m, &s), (&g, &b))) in out.iter_mut().zip(row).zip(per_channel) {
            *y = (v - m) / s * g + b;
        }
    }
    (output, mean, variance)
}

/// The backward pass on the host: writes `dx` over `grad` and returns `(dgamma, dbeta)`.
fn backward(
    x: &[f32],
    channels: usize,
    gamma: &[f32],
    mean: &[f32],
    variance: &[f32],
    epsilon: f32,
    grad: &mut [f32],
) -> (Vec<f32>, Vec<f32>) {
    let batch = (x.len() / channels) as f32;
    let inv_std: Vec<f32> = variance
        .iter()
        .map(|v| (v + epsilon).sqrt().recip())
        .collect();
    let mut beta_grad = vec![0.0f32; channels];
    let mut gamma_grad = vec![0.0f32; channels];
    for (row, dy) in x.chunks_exact(channels).zip(grad.chunks_exact(channels)) {
        let sums = beta_grad.iter_mut().zip(gamma_grad.iter_mut());
        for (((db, dg), (&v, &d)), (&m, &s)) in
            sums.zip(row.iter().zip(dy)).zip(mean.iter().zip(&inv_std))
        {
            *db += d;
            *dg += d * ((v - m) * s);
        }
    }
    let mean_grad: Vec<f32> = beta_grad.iter().map(|g| g / batch).collect();
    let mean_normalized_grad: Vec<f32> = gamma_grad.iter().map(|g| g / batch).collect();
    let scale: Vec<f32> = gamma.iter().zip(&inv_std).map(|(g, s)| g * s).collect();
    for (row, dy) in x
        .chunks_exact(channels)
        .zip(grad.chunks_exact_mut(channels))
    {
        let stats = mean.iter().zip(&inv_std);
        let terms = mean_grad.iter().zip(&mean_normalized_grad).zip(&scale);
        for (((d, &v), (&m, &s)), ((&mg, &mng), &k)) in dy.iter_mut().zip(row).zip(stats).zip(terms)
        {
            let normalized = (v - m) * s;
            *d = k * ((*d - mg) - normalized * mng);
        }
    }
    (gamma_grad, beta_grad)
}

impl FusedBatchNormBackend for Flex {
    fn fused_batch_norm_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let host = matrix(&x).and_then(|(values, channels)| {
            let gamma = vector(&gamma, channels)?;
            let beta = vector(&beta, channels)?;
            Some((
                forward(values, channels, gamma, beta, epsilon as f32),
                channels,
            ))
        });
        match host {
            Some(((output, mean, variance), channels)) => (
                flex_tensor(output, x.layout().shape().clone()),
                flex_tensor(mean, Shape::new([channels])),
                flex_tensor(variance, Shape::new([channels])),
            ),
            None => {
                let result = <Flex as ModuleOps<Flex>>::batch_norm_train(x, gamma, beta, epsilon);
                (result.output, result.mean, result.variance)
            }
        }
    }

    fn fused_batch_norm_train_backward(
        x: FlexTensor,
        gamma: FlexTensor,
        mean: FlexTensor,
        variance: FlexTensor,
        epsilon: f64,
        output_grad: FlexTensor,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let same_shape = output_grad.layout().shape() == x.layout().shape();
        let host = matrix(&x).and_then(|(values, channels)| {
            let grad = output_grad.layout().contiguous_offsets();
            let stats = (
                vector(&gamma, channels)?.to_vec(),
                vector(&mean, channels)?.to_vec(),
                vector(&variance, channels)?.to_vec(),
            );
            (same_shape && output_grad.dtype() == DType::F32)
                .then_some((values, channels, grad?, stats))
        });
        let Some((values, channels, (start, end), (gamma, mean, variance))) = host else {
            let result = <Flex as ModuleOps<Flex>>::batch_norm_train_backward(
                x,
                gamma,
                mean,
                variance,
                epsilon,
                output_grad,
            );
            return (result.x_grad, result.gamma_grad, result.beta_grad);
        };
        // The input's gradient is written over the output's: in place when nothing else holds
        // that buffer, else in a copy (flex's copy on write).
        let mut x_grad = output_grad;
        let grad = &mut x_grad.storage_mut::<f32>()[start..end];
        let (gamma_grad, beta_grad) = backward(
            values,
            channels,
            &gamma,
            &mean,
            &variance,
            epsilon as f32,
            grad,
        );
        (
            x_grad,
            flex_tensor(gamma_grad, Shape::new([channels])),
            flex_tensor(beta_grad, Shape::new([channels])),
        )
    }
}

/// The autodiff step: the backward of the fused forward is the fused backward.
#[derive(Debug)]
struct FusedBatchNormStep;

impl<B: FusedBatchNormBackend> Backward<B, 3> for FusedBatchNormStep {
    // x, gamma, and the batch statistics the forward computed.
    type State = (
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
        f64,
    );

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x, gamma, mean, variance, epsilon) = ops.state;
        let (x_grad, gamma_grad, beta_grad) =
            B::fused_batch_norm_train_backward(x, gamma, mean, variance, epsilon, grad);
        for (node, grad) in [
            (node_x, x_grad),
            (node_gamma, gamma_grad),
            (node_beta, beta_grad),
        ] {
            if let Some(node) = node {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

impl<B: FusedBatchNormBackend, C: CheckpointStrategy> FusedBatchNormBackend for Autodiff<B, C> {
    fn fused_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let prepared = FusedBatchNormStep
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful();
        let (x, gamma, beta) = (
            x.into_primitive(),
            gamma.into_primitive(),
            beta.into_primitive(),
        );
        match prepared {
            OpsKind::Tracked(prep) => {
                let (output, mean, variance) =
                    B::fused_batch_norm_train(x.clone(), gamma.clone(), beta, epsilon);
                let state = (x, gamma, mean.clone(), variance.clone(), epsilon);
                (
                    prep.finish(state, output),
                    <FloatTensor<Self>>::new(mean),
                    <FloatTensor<Self>>::new(variance),
                )
            }
            OpsKind::UnTracked(prep) => {
                let (output, mean, variance) = B::fused_batch_norm_train(x, gamma, beta, epsilon);
                (
                    prep.finish(output),
                    <FloatTensor<Self>>::new(mean),
                    <FloatTensor<Self>>::new(variance),
                )
            }
        }
    }

    fn fused_batch_norm_train_backward(
        _x: FloatTensor<Self>,
        _gamma: FloatTensor<Self>,
        _mean: FloatTensor<Self>,
        _variance: FloatTensor<Self>,
        _epsilon: f64,
        _output_grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        // As Burn's own batch_norm_train_backward: a second derivative is not supported.
        unimplemented!("the fused batch norm's backward is not differentiable")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution, TensorData, Tolerance};

    fn random<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
        Tensor::random(shape, Distribution::Normal(0.5, 2.0), device)
    }

    fn flex(values: &[f32], shape: &[usize]) -> FlexTensor {
        FlexTensor::from_data(TensorData::new(values.to_vec(), shape.to_vec()))
    }

    fn values(tensor: &FlexTensor) -> Vec<f32> {
        tensor.as_slice::<f32>().expect("contiguous f32").to_vec()
    }

    /// A `[4, 3]` input on flex, its gamma, the batch statistics its forward computed, and an
    /// output gradient's values.
    struct SmallCase {
        x: FlexTensor,
        gamma: FlexTensor,
        mean: FlexTensor,
        variance: FlexTensor,
        dys: Vec<f32>,
    }

    impl SmallCase {
        const SHAPE: [usize; 2] = [4, 3];

        fn new() -> Self {
            let [batch, channels] = Self::SHAPE;
            let xs: Vec<f32> = (0..batch * channels).map(|i| (i * i % 7) as f32).collect();
            let x = flex(&xs, &Self::SHAPE);
            let gamma = flex(&[1.0, 2.0, 0.5], &[channels]);
            let beta = flex(&[0.0, 1.0, -1.0], &[channels]);
            let (_, mean, variance) =
                Flex::fused_batch_norm_train(x.clone(), gamma.clone(), beta, 1e-5);
            let dys = (0..batch * channels).map(|i| i as f32 - 5.0).collect();
            Self {
                x,
                gamma,
                mean,
                variance,
                dys,
            }
        }

        /// `[dx, dgamma, dbeta]` from the fused backward (`fused`) or Burn's.
        fn backward(&self, dy: FlexTensor, fused: bool) -> [Vec<f32>; 3] {
            let (x, gamma) = (self.x.clone(), self.gamma.clone());
            let (mean, variance) = (self.mean.clone(), self.variance.clone());
            let grads = if fused {
                Flex::fused_batch_norm_train_backward(x, gamma, mean, variance, 1e-5, dy)
            } else {
                let r = <Flex as ModuleOps<Flex>>::batch_norm_train_backward(
                    x, gamma, mean, variance, 1e-5, dy,
                );
                (r.x_grad, r.gamma_grad, r.beta_grad)
            };
            let all = |t: FlexTensor| t.into_data().try_to_vec::<f32>().expect("f32");
            [all(grads.0), all(grads.1), all(grads.2)]
        }
    }

    #[test]
    fn it_runs_on_flex_with_or_without_autodiff() {
        assert!(fused_on(&Device::flex()));
        assert!(fused_on(&Device::flex().autodiff()));
    }

    /// Output, statistics and the three gradients, against Burn's `batch_norm_train`.
    #[test]
    fn forward_and_gradients_match_burns_batch_norm() {
        let device = Device::flex().autodiff();
        for [batch, channels] in [[64, 512], [64, 256], [3, 5], [2, 7]] {
            let x = random([batch, channels], &device).require_grad();
            let gamma = random([channels], &device).require_grad();
            let beta = random([channels], &device).require_grad();
            let dy = random([batch, channels], &device);
            let run = |fused: bool| {
                let result = if fused {
                    batch_norm_train(x.clone(), gamma.clone(), beta.clone(), 1e-5)
                } else {
                    burn::tensor::module::batch_norm_train(
                        x.clone(),
                        gamma.clone(),
                        beta.clone(),
                        1e-5,
                    )
                };
                let grads = (result.output.clone() * dy.clone()).sum().backward();
                [
                    result.output.inner().into_data(),
                    result.mean.inner().into_data(),
                    result.variance.inner().into_data(),
                    x.grad(&grads).expect("x's gradient").into_data(),
                    gamma.grad(&grads).expect("gamma's gradient").into_data(),
                    beta.grad(&grads).expect("beta's gradient").into_data(),
                ]
            };
            let ours = run(true);
            let burns = run(false);
            // Relative, with a floor for values near zero: sums of 64 terms of size ~2 that
            // cancel (dx, dgamma) carry rounding errors of ~1e-5 in either summation order.
            let tolerance = Tolerance::<f32>::rel_abs(1e-4, 1e-4);
            for (name, (a, b)) in ["output", "mean", "variance", "dx", "dgamma", "dbeta"]
                .iter()
                .zip(ours.iter().zip(&burns))
            {
                assert_eq!(a.shape(), b.shape(), "{name} [{batch}, {channels}]");
                a.assert_approx_eq(b, tolerance);
            }
        }
    }

    /// The tensors that come out are the host kernel's, to the bit: the fused path is taken.
    #[test]
    fn the_host_kernel_is_what_runs() {
        let device = Device::flex().autodiff();
        let [batch, channels] = [64, 256];
        let x = random([batch, channels], &device).require_grad();
        let gamma = random([channels], &device).require_grad();
        let beta = random([channels], &device).require_grad();
        let dy = random([batch, channels], &device);
        let host = |t: &Tensor<2>| t.to_data().try_to_vec::<f32>().expect("f32");
        let host1 = |t: &Tensor<1>| t.to_data().try_to_vec::<f32>().expect("f32");
        let (xs, gs, bs, dys) = (host(&x), host1(&gamma), host1(&beta), host(&dy));

        let result = batch_norm_train(x.clone(), gamma.clone(), beta.clone(), 1e-5);
        let (output, mean, variance) = forward(&xs, channels, &gs, &bs, 1e-5);
        assert_eq!(host(&result.output), output);
        // Burn's operation sums in another order: were it equal to the bit, this test would
        // prove nothing.
        let burns = burn::tensor::module::batch_norm_train(
            x.clone().detach(),
            gamma.clone().detach(),
            beta.clone().detach(),
            1e-5,
        );
        assert_ne!(host(&burns.output), output);
        assert_eq!(host1(&result.mean), mean);
        assert_eq!(host1(&result.variance), variance);

        let grads = (result.output * dy).sum().backward();
        let mut dx = dys;
        let (dgamma, dbeta) = backward(&xs, channels, &gs, &mean, &variance, 1e-5, &mut dx);
        let grad = |t: Option<Tensor<2>>| t.expect("a gradient").into_data().try_to_vec::<f32>();
        assert_eq!(grad(x.grad(&grads)).expect("f32"), dx);
        let grad1 = |t: Option<Tensor<1>>| t.expect("a gradient").into_data().try_to_vec::<f32>();
        assert_eq!(grad1(gamma.grad(&grads)).expect("f32"), dgamma);
        assert_eq!(grad1(beta.grad(&grads)).expect("f32"), dbeta);
    }

    /// The backward writes the input's gradient over the output's only when nothing else
    /// holds it; a shared one is left as it was, and both give the same gradients.
    #[test]
    fn a_shared_output_gradient_is_left_alone() {
        let case = SmallCase::new();
        let shared = flex(&case.dys, &SmallCase::SHAPE);
        let from_shared = case.backward(shared.clone(), true);
        assert_eq!(
            values(&shared),
            case.dys,
            "the shared gradient was written over"
        );
        let from_unique = case.backward(flex(&case.dys, &SmallCase::SHAPE), true);
        assert_eq!(from_shared, from_unique);
        assert_ne!(from_unique[0], case.dys);
    }

    /// Without autodiff (testing with batch statistics) the forward is the kernel's too.
    #[test]
    fn without_autodiff_the_forward_is_the_kernels() {
        let device = Device::flex();
        let x = random([16, 8], &device);
        let gamma = random([8], &device);
        let beta = random([8], &device);
        let host = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().expect("f32");
        let (output, mean, variance) = forward(
            &host(x.clone().reshape([16 * 8])),
            8,
            &host(gamma.clone()),
            &host(beta.clone()),
            1e-5,
        );
        let result = batch_norm_train(x, gamma, beta, 1e-5);
        assert_eq!(host(result.output.reshape([16 * 8])), output);
        assert_eq!(host(result.mean), mean);
        assert_eq!(host(result.variance), variance);
    }

    /// A strided output gradient (here a transposed view) takes Burn's backward, with its
    /// values.
    #[test]
    fn a_strided_output_gradient_takes_burns_backward() {
        let case = SmallCase::new();
        let [batch, channels] = SmallCase::SHAPE;
        let strided = flex(&case.dys, &[channels, batch]).transpose(0, 1);
        assert!(!strided.is_contiguous());
        assert_eq!(
            case.backward(strided.clone(), true),
            case.backward(strided, false)
        );
    }

    /// A transposed (strided) input takes Burn's own operation, with the same values.
    #[test]
    fn a_strided_input_takes_burns_path() {
        let device = Device::flex();
        let x: Tensor<2> = random([16, 64], &device).transpose();
        let gamma = random([16], &device);
        let beta = random([16], &device);
        let ours = batch_norm_train(x.clone(), gamma.clone(), beta.clone(), 1e-5);
        let burns = burn::tensor::module::batch_norm_train(x, gamma, beta, 1e-5);
        ours.output
            .into_data()
            .assert_eq(&burns.output.into_data(), true);
        ours.variance
            .into_data()
            .assert_eq(&burns.variance.into_data(), true);
    }
}
