//! Picking the backend and device from the enabled cargo features.
//!
//! A backend the user enables explicitly wins over the default one: `wgpu`, then `ndarray`,
//! then `flex` (the default CPU backend).

use burn::tensor::Device;

/// The device the app computes on, and a human-readable name of its backend.
pub struct Backend {
    /// The device (without autodiff; the learner adds it).
    pub device: Device,
    /// E.g. `flex (CPU, pure Rust)`.
    pub name: String,
}

/// Selects the backend of the highest priority among the enabled features.
#[cfg(feature = "wgpu")]
pub fn select() -> Backend {
    Backend {
        device: Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
        name: "wgpu (GPU; adapter chosen by wgpu, override with CUBECL_WGPU_DEFAULT_DEVICE)".into(),
    }
}

/// Selects the backend of the highest priority among the enabled features.
#[cfg(all(feature = "ndarray", not(feature = "wgpu")))]
#[allow(deprecated)] // NdArray is deprecated in Burn 0.22, but promised to our users.
pub fn select() -> Backend {
    Backend {
        device: Device::ndarray(),
        name: "ndarray (CPU)".into(),
    }
}

/// Selects the backend of the highest priority among the enabled features.
#[cfg(all(feature = "flex", not(any(feature = "wgpu", feature = "ndarray"))))]
pub fn select() -> Backend {
    Backend {
        device: Device::flex(),
        name: "flex (CPU, pure Rust)".into(),
    }
}

#[cfg(not(any(feature = "flex", feature = "ndarray", feature = "wgpu")))]
compile_error!("enable a backend feature: flex (default), ndarray or wgpu");
