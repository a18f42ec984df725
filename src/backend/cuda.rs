//! Burn's CUDA backend: the device, and a clear error naming what the machine lacks.
//!
//! The backend builds without the CUDA toolkit: cudarc loads the driver (`libcuda.so`) and NVRTC
//! (`libnvrtc.so`) when the first kernel runs, and cubecl compiles its kernels at run time with
//! NVRTC against the CUDA headers (`$CUDA_PATH/include`, else `/usr/local/cuda`, `/opt/cuda`,
//! or `/usr` when `/usr/bin/nvcc` exists).

use anyhow::{Result, bail};
use burn::tensor::Device;

use super::open::{Opened, probe};

/// The CUDA device for a selector (`default` or an index), after one small computation on it.
pub fn open(selector: &str) -> Result<Opened> {
    let index: usize = match selector {
        "default" => 0,
        n => match n.parse() {
            Ok(i) => i,
            Err(_) => bail!("--device {selector}: for cuda, expected default or a device index"),
        },
    };
    let device = Device::cuda(index);
    match probe(&device) {
        Ok(3.0) => {}
        Ok(sum) => bail!("the CUDA device {index} computes wrongly (1 + 2 = {sum})"),
        Err(message) => bail!(explain(index, &message)),
    }
    Ok(Opened {
        device,
        name: format!("cuda (NVIDIA GPU {index})"),
        software: false,
    })
}

/// What is missing, from Burn's panic message, and what a CUDA machine needs.
fn explain(index: usize, message: &str) -> String {
    let headers = match cubecl_cuda::install::cuda_path() {
        Some(path) if path.join("include").is_dir() => {
            format!("CUDA headers: found in {}", path.join("include").display())
        }
        Some(path) => format!("CUDA headers: missing, {} has no include/", path.display()),
        None => "CUDA headers: missing (CUDA_PATH is not set and there is no /usr/local/cuda, \
                 /opt/cuda or /usr/bin/nvcc)"
            .into(),
    };
    let missing = if message.contains("\"cuda\" shared library") {
        "the NVIDIA driver: libcuda.so was not found (install the driver; in a container, run \
         it with the NVIDIA container toolkit)"
    } else if message.contains("nvrtc") {
        "NVRTC: libnvrtc.so was not found (the CUDA toolkit's, or a package such as \
         cuda-nvrtc; add its directory to LD_LIBRARY_PATH)"
    } else if message.contains("CUDA installation not found") || message.contains("include") {
        "the CUDA headers (set CUDA_PATH to a CUDA installation that has include/)"
    } else if message.contains("NO_DEVICE") || message.contains("INVALID_DEVICE") {
        "a CUDA device: the driver sees none at this index"
    } else {
        "a working CUDA setup"
    };
    format!(
        "the CUDA backend cannot start on device {index}: missing {missing}. It needs the \
         NVIDIA driver, NVRTC and the CUDA headers at run time ({headers}). Or run on another \
         backend: --backend wgpu or --backend flex. (Burn: {message})"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_missing_part_is_named() {
        let driver = explain(
            0,
            "Unable to dynamically load the \"cuda\" shared library - searched for library names",
        );
        assert!(
            driver.contains("missing the NVIDIA driver: libcuda.so"),
            "{driver}"
        );
        assert!(driver.contains("CUDA headers: "), "{driver}");
        let nvrtc = explain(0, "Unable to dynamically load the \"nvrtc\" shared library");
        assert!(nvrtc.contains("missing NVRTC"), "{nvrtc}");
        let headers = explain(1, "CUDA installation not found.");
        assert!(
            headers.contains("device 1: missing the CUDA headers"),
            "{headers}"
        );
        assert!(explain(0, "CUDA_ERROR_NO_DEVICE").contains("missing a CUDA device"));
    }
}
