//! How the learner is to use the device, decided once: the defaults for the backend, and the
//! `MNIST_BN_*` switches that override them (read before any work, so a bad one stops the app
//! at once).

use anyhow::{Result, bail};
use mnist_bn_train::DeviceTuning;

/// How many batches a hardware GPU trains between loss reads by default (`--loss-reads-every`
/// overrides it): each read stalls the device until the host has seen the loss. A software GPU
/// (lavapipe), which shares the cores with the app, reads every batch: grouped reads measured
/// slower there (`docs/gpu.md`).
const GPU_LOSS_READS: usize = 16;

/// The tuning for a backend: `flex` for Burn's flex backend, `hardware_gpu` for a GPU that is
/// not a software device.
///
/// - loss reads: every [`GPU_LOSS_READS`] batches on a hardware GPU, else every batch;
/// - data on the device: `MNIST_BN_DATA_ON_DEVICE=1|0`, else on a hardware GPU only (on
///   lavapipe it measured slower);
/// - the parallel step: `MNIST_BN_PARALLEL_STEP=1|0`, else on flex only (the split relies on
///   flex running a batch of matrices in parallel; other backends would only pay for the
///   pieces);
/// - SGD on the host: `MNIST_BN_HOST_SGD=1|0`, else on flex only (whose tensors it takes and
///   gives back without a copy; on a GPU it would move every parameter each step).
pub fn decide(flex: bool, hardware_gpu: bool) -> Result<DeviceTuning> {
    Ok(DeviceTuning {
        loss_reads_every: if hardware_gpu { GPU_LOSS_READS } else { 1 },
        data_on_device: env_switch("MNIST_BN_DATA_ON_DEVICE", hardware_gpu)?,
        parallel_step: env_switch("MNIST_BN_PARALLEL_STEP", flex)?,
        host_sgd: env_switch("MNIST_BN_HOST_SGD", flex)?,
    })
}

/// The environment variable `name` as a switch (`1` on, `0` off), else `default`.
fn env_switch(name: &str, default: bool) -> Result<bool> {
    match std::env::var(name).ok().as_deref() {
        Some("1") => Ok(true),
        Some("0") => Ok(false),
        Some(other) => bail!("{name}={other}: expected 1 or 0"),
        None => Ok(default),
    }
}
