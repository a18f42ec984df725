//! Fuzzes the checkpoint loader: any bytes as `model.bpk` (burnpack) of the lesson's batch-norm
//! MLP, and as `model.json` and `training.json`, must load or give a `TrainError`, never a panic,
//! an abort, a hang or an allocation beyond what the model needs.
//!
//! Run: `cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run checkpoint corpus/checkpoint seeds/checkpoint -- -max_total_time=600 -rss_limit_mb=512`
#![no_main]

use burn::tensor::Device;
use libfuzzer_sys::fuzz_target;
use mnist_bn_model::{MlpConfig, NetConfig, Norm};
use mnist_bn_train::{load_checkpoint, model_from_bytes};

/// A valid checkpoint's JSON files, so that the fuzzed bytes reach each reader.
const MODEL_JSON: &str = include_str!("../seeds/checkpoint/model.json");
const TRAINING_JSON: &str = include_str!("../seeds/checkpoint/training.json");

fuzz_target!(|data: &[u8]| {
    let device = Device::flex();
    let config = NetConfig::Mlp(MlpConfig::new(Norm::Batch));
    let name = std::path::Path::new("model.bpk");
    let _ = model_from_bytes(&config, data.to_vec(), &device, name);

    // The same bytes as each file of a checkpoint directory whose other files are valid.
    let dir = tempfile::tempdir().expect("a temporary directory");
    for fuzzed in ["model.json", "training.json"] {
        for (file, text) in [("model.json", MODEL_JSON), ("training.json", TRAINING_JSON)] {
            let bytes = if file == fuzzed {
                data
            } else {
                text.as_bytes()
            };
            std::fs::write(dir.path().join(file), bytes).expect("write");
        }
        std::fs::write(dir.path().join("model.bpk"), b"").expect("write");
        let _ = load_checkpoint(dir.path(), &device);
    }
});
