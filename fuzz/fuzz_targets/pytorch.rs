//! Fuzzes the PyTorch importer: any bytes as a `.pt` (zip + pickle) and as a `.safetensors`
//! state_dict of a batch-norm MLP must load or give a `TrainError`, never a panic, an abort, a
//! hang or an allocation beyond what the model needs. The MLP is the lesson's layout at a tiny
//! size (8-4-3-2), so that the seeds (`seeds/pytorch`, from PyTorch) are a few KB and every
//! mutation reaches the readers quickly.
//!
//! Run: `cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run pytorch corpus/pytorch seeds/pytorch -- -max_total_time=600 -rss_limit_mb=512`
#![no_main]

use burn::tensor::Device;
use libfuzzer_sys::fuzz_target;
use mnist_bn_model::{MlpConfig, Norm};
use mnist_bn_train::import_pytorch;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let device = Device::flex();
    let config = MlpConfig::new(Norm::Batch)
        .with_input_size(8)
        .with_hidden(vec![4, 3])
        .with_output_size(2);
    for name in ["state.pt", "state.safetensors"] {
        let path = dir.path().join(name);
        std::fs::write(&path, data).expect("write the input");
        let _ = import_pytorch(&path, &config, &device);
    }
});
