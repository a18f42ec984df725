//! Speed on Burn's flex (CPU) backend, kept out of the models' API: what is computed is the
//! models' business (`mlp.rs`, `batch_norm.rs`), how fast it runs on flex is this module's.
//!
//! - [`split`]: a linear layer computed as a batch of products over slices of its inputs, so
//!   that one model at a small batch uses more than one of flex's threads. A learner turns it
//!   on for a model with [`split_products`] (the train crate's parallel step).
//! - [`fused_batch_norm`]: batch norm's training step over `[batch, channels]` as one host
//!   kernel per direction, which [`TorchBatchNorm`](crate::TorchBatchNorm) uses on flex.
//!
//! Behind the crate's `flex` feature. What each gains is measured in the project's
//! `docs/performance.md`.

pub mod fused_batch_norm;
pub mod split;

use crate::{Mlp, Net};

/// Returns `net` with its products split into independent pieces for `threads` threads (1:
/// whole products, the default of every model), so that flex can spread one model's step over
/// several threads of its rayon pool; see [`split`] for how and for what changes (float
/// rounding only). Only the MLP splits; the ConvNet and the RNN are returned as they are. Only
/// worth it on flex with that many threads available: on one thread, or on a backend that does
/// not run a batch of matrices in parallel, the pieces cost time. Not part of the record.
pub fn split_products(net: Net, threads: usize) -> Net {
    match net {
        Net::Mlp(mut mlp) => {
            mlp.product_threads = threads.max(1);
            Net::Mlp(mlp)
        }
        other => other,
    }
}

/// The threads `net`'s products are split for: 1 (whole products) unless
/// [`split_products`] asked for more; 1 for the ConvNet and the RNN.
pub fn product_threads(net: &Net) -> usize {
    net.as_mlp().map_or(1, |mlp| mlp.product_threads)
}

/// Whether [`split_products`]`(net, threads)` would split any of its products at batch size
/// `batch` (see [`split::pieces`]); never for the ConvNet and the RNN.
pub fn splits_products(net: &Net, batch: usize, threads: usize) -> bool {
    net.as_mlp()
        .is_some_and(|mlp| mlp_splits(mlp, batch, threads))
}

fn mlp_splits(mlp: &Mlp, batch: usize, threads: usize) -> bool {
    mlp.hidden
        .iter()
        .map(|block| &block.linear)
        .chain([&mlp.output])
        .any(|linear| {
            let [d_in, d_out] = linear.weight.dims();
            split::pieces(batch, d_in, d_out, threads) > 1
        })
}
