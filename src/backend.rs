//! Picking the backend and device.
//!
//! The backends compiled in are the cargo features `flex`, `ndarray`, `wgpu` and `cuda`.
//! Without `--backend`, the one the user enabled explicitly wins over the default: `cuda`, then
//! `wgpu`, then `ndarray`, then `flex` (the default feature). `--backend` (or `MNIST_BN_BACKEND`) picks
//! another compiled-in one, e.g. the CPU in a build that also has the GPU.

use anyhow::{Result, bail};
use burn::tensor::{Device, Tensor};
use clap::ValueEnum;

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
    /// A GPU backend on a software device that shares the CPU with the app (lavapipe).
    pub software: bool,
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
    match kind {
        BackendKind::Flex => flex(),
        BackendKind::Ndarray => ndarray(),
        BackendKind::Wgpu => wgpu(device.unwrap_or("default")),
        BackendKind::Cuda => cuda(device.unwrap_or("default")),
    }
}

/// Computes `1 + 2` on `device`: Burn panics on a device it cannot open (or a GPU library it
/// cannot load), and this turns the panic into its message, printing nothing.
pub(crate) fn probe(device: &Device) -> Result<f32, String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(|| {
        Tensor::<1>::from_floats([1.0, 2.0], device)
            .sum()
            .into_scalar::<f32>()
    });
    std::panic::set_hook(hook);
    result.map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "no message".into())
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
fn flex() -> Result<Backend> {
    Ok(Backend {
        device: Device::flex(),
        name: "flex (CPU, pure Rust)".into(),
        kind: BackendKind::Flex,
        software: false,
    })
}

#[cfg(not(feature = "flex"))]
fn flex() -> Result<Backend> {
    unreachable!("only compiled-in backends are selected")
}

#[cfg(feature = "ndarray")]
#[allow(deprecated)] // NdArray is deprecated in Burn 0.22, but promised to our users.
fn ndarray() -> Result<Backend> {
    Ok(Backend {
        device: Device::ndarray(),
        name: "ndarray (CPU)".into(),
        kind: BackendKind::Ndarray,
        software: false,
    })
}

#[cfg(not(feature = "ndarray"))]
fn ndarray() -> Result<Backend> {
    unreachable!("only compiled-in backends are selected")
}

#[cfg(feature = "wgpu")]
fn wgpu(device: &str) -> Result<Backend> {
    crate::gpu::select(device)
}

#[cfg(not(feature = "wgpu"))]
fn wgpu(_device: &str) -> Result<Backend> {
    unreachable!("only compiled-in backends are selected")
}

#[cfg(feature = "cuda")]
fn cuda(device: &str) -> Result<Backend> {
    crate::cuda::select(device)
}

#[cfg(not(feature = "cuda"))]
fn cuda(_device: &str) -> Result<Backend> {
    unreachable!("only compiled-in backends are selected")
}
