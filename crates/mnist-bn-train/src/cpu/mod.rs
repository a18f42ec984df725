//! The CPU speed machinery (feature `flex`): what lets one model use both cores of Burn's flex
//! backend at batch 64. The learner uses it when its [`DeviceTuning`](crate::DeviceTuning) says
//! so; the ops bench reaches it here. Measured in the project's `docs/performance.md`.
//!
//! - [`HotPool`]: keeps a rayon pool's other threads spinning while one model trains on all of
//!   them, so that split products start on them at once.
//! - [`HostSgd`]: plain SGD's update in one pass over each parameter, on the host.
//! - the parallel step: a model's products split for the pool's threads while a `HotPool`
//!   lives (`mnist_bn_model::flex::split_products`).

mod host_sgd;
mod hot_pool;

pub use host_sgd::HostSgd;
pub use hot_pool::HotPool;

use mnist_bn_model::Net;
use mnist_bn_model::flex::{split_products, splits_products};

use crate::TrainError;

/// Runs `fit` on `model` with its products split for every thread of the current rayon pool and
/// the pool's other workers spinning, when that pays: the model splits at `batch_size` and a
/// [`HotPool`] could be started (split products that wake sleeping workers cost more than they
/// save, so nothing is split without it). The model comes back computing its products whole.
pub(crate) fn parallel_step<T>(
    model: Net,
    batch_size: usize,
    fit: impl FnOnce(Net) -> Result<(Net, T), TrainError>,
) -> Result<(Net, T), TrainError> {
    let threads = rayon::current_num_threads();
    let hot = splits_products(&model, batch_size, threads)
        .then(HotPool::start)
        .flatten();
    let threads = if hot.is_some() { threads } else { 1 };
    let result = fit(split_products(model, threads));
    drop(hot);
    result.map(|(model, stop)| (split_products(model, 1), stop))
}
