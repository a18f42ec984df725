//! Fuzzes the optimizer state of a checkpoint: any bytes as `optimizer.bin` beside a valid
//! `model.bpk`, `model.json` and `training.json` of the lesson's batch-norm MLP must load or
//! give a `TrainError`, never a panic, an abort, a hang or an allocation beyond what the model
//! needs.
//!
//! Run: `cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run optimizer corpus/optimizer seeds/optimizer -- -max_total_time=600 -malloc_limit_mb=256`
#![no_main]

use burn::tensor::Device;
use libfuzzer_sys::fuzz_target;
use mnist_bn_train::load_checkpoint;

const MODEL_BPK: &[u8] = include_bytes!("../seeds/checkpoint/model.bpk");
const MODEL_JSON: &str = include_str!("../seeds/checkpoint/model.json");
const TRAINING_JSON: &str = include_str!("../seeds/checkpoint/training.json");

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for (file, bytes) in [
        ("model.bpk", MODEL_BPK),
        ("model.json", MODEL_JSON.as_bytes()),
        ("training.json", TRAINING_JSON.as_bytes()),
        ("optimizer.bin", data),
    ] {
        std::fs::write(dir.path().join(file), bytes).expect("write");
    }
    let _ = load_checkpoint(dir.path(), &Device::flex());
});
