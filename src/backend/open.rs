//! Opening a device: one small computation that turns Burn's panic on a device it cannot open
//! into an error, and what an opened device is.

use burn::tensor::{Device, Tensor};

/// A device that computed `1 + 2`, with what the app prints of it.
pub struct Opened {
    /// The device.
    pub device: Device,
    /// E.g. `flex (CPU, pure Rust)`.
    pub name: String,
    /// A GPU backend on a software device that shares the CPU with the app (lavapipe).
    pub software: bool,
}

/// Computes `1 + 2` on `device`: Burn panics on a device it cannot open (or a GPU library it
/// cannot load), and this turns the panic into its message, printing nothing.
pub fn probe(device: &Device) -> Result<f32, String> {
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
