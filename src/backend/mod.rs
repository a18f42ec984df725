//! Picking the backend and device, and how the learner is to use it ([`DeviceTuning`]).
//!
//! The backends compiled in are the cargo features `flex`, `ndarray`, `wgpu` and `cuda`.
//! Without `--backend`, the one the user enabled explicitly wins over the default: `cuda`, then
//! `wgpu`, then `ndarray`, then `flex` (the default feature). `--backend` (or `MNIST_BN_BACKEND`) picks
//! another compiled-in one, e.g. the CPU in a build that also has the GPU.

#[cfg(feature = "cuda")]
mod cuda;
mod open;
mod tuning;
#[cfg(feature = "wgpu")]
mod wgpu;

use anyhow::{Result, bail};
use burn::tensor::Device;
use clap::ValueEnum;
use mnist_bn_train::DeviceTuning;

use open::Opened;

/// A backend the app can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// Burn's pure-Rust CPU backend (cargo feature `flex`, the default).
    Flex,
    /// Burn's NdArray CPU backend (cargo feature `ndarray`).
    Ndarray,
    /// The GPU through wgpu: Vulkan, Metal or DX12 (cargo feature `wgpu`).
    Wgpu,
    /// An NVIDIA GPU through Burn's CUDA backend (cargo feature `cuda`).
    Cuda,
}

impl BackendKind {
    /// Whether it computes on a GPU (one model at a time; nothing to share between threads).
    pub fn is_gpu(self) -> bool {
        matches!(self, BackendKind::Wgpu | BackendKind::Cuda)
    }
}

/// The device the app computes on, and a human-readable description of it.
pub struct Backend {
    /// The device (without autodiff; the learner adds it).
    pub device: Device,
    /// E.g. `flex (CPU, pure Rust)`.
    pub name: String,
    /// Which backend it is.
    pub kind: BackendKind,
    /// How the learner uses this device: decided once, here, from the backend and the
    /// `MNIST_BN_*` switches (see `tuning.rs`).
    pub tuning: DeviceTuning,
}

/// The compiled-in backends, highest priority first.
pub fn compiled() -> Vec<BackendKind> {
    let mut kinds = Vec::new();
    if cfg!(feature = "cuda") {
        kinds.push(BackendKind::Cuda);
    }
    if cfg!(feature = "wgpu") {
        kinds.push(BackendKind::Wgpu);
    }
    if cfg!(feature = "ndarray") {
        kinds.push(BackendKind::Ndarray);
    }
    if cfg!(feature = "flex") {
        kinds.push(BackendKind::Flex);
    }
    kinds
}

/// Selects `requested`, or the compiled-in backend of the highest priority; `device` picks the
/// wgpu adapter (`default`, `discrete[:N]`, `integrated[:N]`, `virtual[:N]`, `cpu`) or the
/// CUDA device (`default` or its index).
pub fn select(requested: Option<BackendKind>, device: Option<&str>) -> Result<Backend> {
    let compiled = compiled();
    let kind = match requested {
        Some(kind) if compiled.contains(&kind) => kind,
        Some(kind) => bail!(
            "backend {kind:?} is not compiled in; rebuild with `--features {}` (compiled in: {compiled:?})",
            format!("{kind:?}").to_lowercase()
        ),
        None => match compiled.first() {
            Some(&kind) => kind,
            None => bail!("no backend compiled in: enable a feature (flex, ndarray, wgpu or cuda)"),
        },
    };
    if device.is_some() && !kind.is_gpu() {
        bail!("--device picks a GPU; the {kind:?} backend runs on the CPU");
    }
    let opened = match kind {
        BackendKind::Flex => open_flex(),
        BackendKind::Ndarray => open_ndarray(),
        BackendKind::Wgpu => open_wgpu(device.unwrap_or("default")),
        BackendKind::Cuda => open_cuda(device.unwrap_or("default")),
    }?;
    let tuning = tuning::decide(kind == BackendKind::Flex, kind.is_gpu() && !opened.software)?;
    Ok(Backend {
        device: opened.device,
        name: opened.name,
        kind,
        tuning,
    })
}

/// Where fresh models draw their initial weights, whatever they train on: the CPU backend of
/// highest priority among those compiled in (flex, then ndarray), so that the same `--seed`
/// starts every backend from the same weights; `None` (draw on the training device) in a
/// build with no CPU backend.
pub fn init_device() -> Option<Device> {
    #[cfg(feature = "flex")]
    {
        Some(Device::flex())
    }
    #[cfg(all(not(feature = "flex"), feature = "ndarray"))]
    {
        #[allow(deprecated)]
        Some(Device::ndarray())
    }
    #[cfg(not(any(feature = "flex", feature = "ndarray")))]
    {
        None
    }
}

#[cfg(feature = "flex")]
fn open_flex() -> Result<Opened> {
    Ok(Opened {
        device: Device::flex(),
        name: "flex (CPU, pure Rust)".into(),
        software: false,
    })
}

#[cfg(not(feature = "flex"))]
fn open_flex() -> Result<Opened> {
    unreachable!("only compiled-in backends are selected")
}

#[cfg(feature = "ndarray")]
#[allow(deprecated)] // NdArray is deprecated in Burn 0.22, but promised to our users.
fn open_ndarray() -> Result<Opened> {
    Ok(Opened {
        device: Device::ndarray(),
        name: "ndarray (CPU)".into(),
        software: false,
    })
}

#[cfg(not(feature = "ndarray"))]
fn open_ndarray() -> Result<Opened> {
    unreachable!("only compiled-in backends are selected")
}

#[cfg(feature = "wgpu")]
fn open_wgpu(device: &str) -> Result<Opened> {
    self::wgpu::open(device)
}

#[cfg(not(feature = "wgpu"))]
fn open_wgpu(_device: &str) -> Result<Opened> {
    unreachable!("only compiled-in backends are selected")
}

#[cfg(feature = "cuda")]
fn open_cuda(device: &str) -> Result<Opened> {
    cuda::open(device)
}

#[cfg(not(feature = "cuda"))]
fn open_cuda(_device: &str) -> Result<Opened> {
    unreachable!("only compiled-in backends are selected")
}
