//! The wgpu backend: choosing the adapter, and saying plainly when there is none.

use anyhow::{Result, bail};
use burn::tensor::{Device, DeviceKind};

use super::open::{Opened, probe};

/// Builds the wgpu device for a selector (`default`, `discrete[:N]`, `integrated[:N]`,
/// `virtual[:N]`, `cpu`), after checking that wgpu finds an adapter at all.
pub fn open(selector: &str) -> Result<Opened> {
    let kind = parse(selector)?;
    let adapters = adapters();
    // Burn's kernels need Vulkan, Metal or DX12; wgpu's GL fallback lacks 64-bit integers in
    // shaders and panics on the first kernel, so a GL-only machine counts as having none.
    if !adapters.iter().any(|a| a.usable) {
        bail!(
            "no GPU adapter found: wgpu sees no Vulkan, Metal or DX12 device on this machine. \
             Run on the CPU instead (build without `--features wgpu`, or pass --backend flex), \
             or install a GPU driver; on Debian/Ubuntu, `apt install mesa-vulkan-drivers \
             libvulkan1` gives a software Vulkan device (lavapipe)"
        );
    }
    let device = Device::wgpu(kind.clone());
    match probe(&device) {
        Ok(3.0) => {}
        Ok(sum) => bail!("the wgpu device {kind:?} computes wrongly (1 + 2 = {sum})"),
        Err(message) => bail!(
            "cannot open the wgpu device {kind:?} ({message}); adapters found: {}. Pick \
             another with --device, or run on the CPU with --backend flex",
            names(&adapters)
        ),
    }
    // A CPU-type adapter (lavapipe) runs on the cores the app runs on.
    let software = match kind {
        DeviceKind::Cpu => true,
        DeviceKind::DefaultDevice => adapters.iter().filter(|a| a.usable).all(|a| a.cpu),
        _ => false,
    };
    Ok(Opened {
        device,
        name: format!("wgpu, device {kind:?} (adapters: {})", names(&adapters)),
        software,
    })
}

fn parse(selector: &str) -> Result<DeviceKind> {
    let (name, index) = match selector.split_once(':') {
        Some((name, index)) => match index.parse::<usize>() {
            Ok(i) => (name, i),
            Err(_) => bail!("--device {selector}: `{index}` is not an adapter index"),
        },
        None => (selector, 0),
    };
    Ok(match name {
        "default" => DeviceKind::DefaultDevice,
        "discrete" => DeviceKind::DiscreteGpu(index),
        "integrated" => DeviceKind::IntegratedGpu(index),
        "virtual" => DeviceKind::VirtualGpu(index),
        "cpu" => DeviceKind::Cpu,
        _ => bail!(
            "--device {selector}: expected default, discrete[:N], integrated[:N], virtual[:N] or cpu"
        ),
    })
}

/// An adapter wgpu finds.
struct Adapter {
    /// `name (backend, type)`.
    description: String,
    /// Whether Burn can run on it (Vulkan, Metal or DX12).
    usable: bool,
    /// Whether it is a software device on the CPU (lavapipe, SwiftShader).
    cpu: bool,
}

fn names(adapters: &[Adapter]) -> String {
    let names: Vec<&str> = adapters.iter().map(|a| a.description.as_str()).collect();
    names.join("; ")
}

/// The adapters wgpu finds.
fn adapters() -> Vec<Adapter> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
        .into_iter()
        .map(|adapter| {
            let info = adapter.get_info();
            Adapter {
                description: format!("{} ({:?}, {:?})", info.name, info.backend, info.device_type),
                usable: matches!(
                    info.backend,
                    wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12
                ),
                cpu: info.device_type == wgpu::DeviceType::Cpu,
            }
        })
        .collect()
}
