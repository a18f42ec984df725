//! Linear layers computed as independent pieces, so that one model at a small batch can use
//! more than one thread of Burn's CPU backend.
//!
//! burn-flex runs a plain matrix product on one thread at these sizes (gemm's own splitting
//! costs more than it saves at batch 64; see the app's thread policy), but it runs the matrices
//! of a *batched* product on separate rayon threads, one call to gemm each, when the whole
//! product holds at least 128³ multiply-adds and either each matrix holds under 192³ or there
//! are at least four of them (burn-flex 0.22.1, `ops/matmul.rs`). [`linear`] therefore computes
//! `x·W` as a batch of at least four products over slices of the input features:
//!
//! ```text
//! x [b, in] → [p, b, in/p]    W [in, out] → [p, in/p, out]    y = Σ_p x_p·W_p  [b, out]
//! ```
//!
//! Both reshapes are views (no copy), and so is the weight gradient's way back: autodiff's
//! `x_pᵀ·dy` lands as `[p, in/p, out]`, which is `[in, out]` in memory. Each of the three
//! products of a layer's step (forward, weight gradient, input gradient) becomes `p`
//! independent gemm calls. The values are those of the plain product up to the order of the
//! forward sum (each output adds `p` partial sums instead of running through all inputs at
//! once), a difference of float rounding.

use burn::nn::Linear;
use burn::tensor::Tensor;

/// Products smaller than this many multiply-adds stay whole (burn-flex runs a smaller batched
/// product on one thread anyway).
pub const MIN_SPLIT_WORK: usize = 128 * 128 * 128;

/// The fewest pieces burn-flex spreads over its threads whatever their size.
const MIN_PIECES: usize = 4;

/// Into how many pieces [`linear`] splits a `[batch, d_in] · [d_in, d_out]` product for
/// `threads` threads: 1 (no split) for one thread or a small product; else `threads`, or
/// `MIN_PIECES` (4) if that is more, lowered to a divisor of `d_in`; 1 again if no divisor of at
/// least `MIN_PIECES` (4) is found (fewer, larger pieces may run one after another).
pub fn pieces(batch: usize, d_in: usize, d_out: usize, threads: usize) -> usize {
    let work = batch.saturating_mul(d_in).saturating_mul(d_out);
    if threads < 2 || work < MIN_SPLIT_WORK {
        return 1;
    }
    let mut pieces = threads.max(MIN_PIECES).min(d_in);
    while pieces > MIN_PIECES && !d_in.is_multiple_of(pieces) {
        pieces -= 1;
    }
    if d_in.is_multiple_of(pieces) {
        pieces
    } else {
        1
    }
}

/// `layer.forward(x)` for `x: [batch, d_in]`, computed in [`pieces`] pieces for `threads`
/// threads (exactly `layer.forward(x)` when that is 1).
pub fn linear(layer: &Linear, x: Tensor<2>, threads: usize) -> Tensor<2> {
    let [d_in, d_out] = layer.weight.dims();
    let [batch, _] = x.dims();
    let p = pieces(batch, d_in, d_out, threads);
    if p == 1 {
        return layer.forward(x);
    }
    let w: Tensor<3> = layer.weight.val().reshape([p, d_in / p, d_out]);
    let x: Tensor<3> = x.reshape([batch, p, d_in / p]).swap_dims(0, 1);
    let y: Tensor<2> = x.matmul(w).sum_dim(0).reshape([batch, d_out]);
    match &layer.bias {
        Some(bias) => y + bias.val().unsqueeze(),
        None => y,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::LinearConfig;
    use burn::tensor::{Device, Distribution, Tolerance};

    #[test]
    fn pieces_follow_threads_size_and_divisors() {
        assert_eq!(pieces(64, 784, 512, 1), 1);
        assert_eq!(pieces(64, 784, 512, 2), 4);
        assert_eq!(pieces(64, 512, 256, 2), 4);
        assert_eq!(pieces(64, 784, 512, 8), 8);
        // The output layer is too small to gain anything.
        assert_eq!(pieces(64, 256, 10, 2), 1);
        // 7 threads, 784 = 2^4 · 7^2 inputs: 7 pieces; 5 threads: lowered to 4.
        assert_eq!(pieces(64, 784, 512, 7), 7);
        assert_eq!(pieces(64, 784, 512, 5), 4);
        // A large batch splits the output layer too.
        assert_eq!(pieces(1000, 256, 10, 2), 4);
        // No divisor of at least 4: whole (a prime width, or 1022 = 2 · 7 · 73).
        assert_eq!(pieces(1024, 1021, 512, 2), 1);
        assert_eq!(pieces(1024, 1022, 512, 2), 1);
    }

    #[test]
    fn split_forward_and_gradients_match_the_plain_layer() {
        let device = Device::flex().autodiff();
        // (batch, inputs, threads): 4 pieces; 7 pieces of a batch that is not 64.
        for (batch, d_in, threads) in [(64, 784, 2), (100, 784, 7)] {
            assert!(pieces(batch, d_in, 512, threads) > 1);
            for bias in [false, true] {
                let layer = LinearConfig::new(d_in, 512).with_bias(bias).init(&device);
                let x = Tensor::<2>::random([batch, d_in], Distribution::Normal(0.0, 1.0), &device)
                    .require_grad();
                let target =
                    Tensor::<2>::random([batch, 512], Distribution::Normal(0.0, 1.0), &device);
                let run = |threads| {
                    let y = linear(&layer, x.clone(), threads);
                    let loss = (y.clone() * target.clone()).sum();
                    let grads = loss.backward();
                    (
                        y.inner(),
                        layer.weight.grad(&grads).unwrap(),
                        x.grad(&grads).unwrap(),
                    )
                };
                let (y1, w1, x1) = run(1);
                let (y2, w2, x2) = run(threads);
                let tolerance = Tolerance::<f32>::absolute(1e-4);
                y2.into_data().assert_approx_eq(&y1.into_data(), tolerance);
                w2.into_data().assert_approx_eq(&w1.into_data(), tolerance);
                x2.into_data().assert_approx_eq(&x1.into_data(), tolerance);
            }
        }
    }
}
