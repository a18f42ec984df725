//! The PyTorch golden fixtures of the parity tests (`parity.rs`, `parity_conv_rnn.rs`): where
//! they are, reading their tensors, and comparing ours with them within a tolerance.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Int, Tensor, TensorData};
use mnist_bn_data::{Mnist, Split};
use safetensors::{Dtype, SafeTensors};

/// Relative tolerance of every comparison: `|ours - theirs| <= atol + RTOL * |theirs|`.
pub const RTOL: f64 = 1e-5;

/// Images in a golden step's batch.
pub const BATCH: usize = 64;

/// A file of the project's `tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

/// A split of the project's MNIST copy (`data/mnist`), which the fixtures were made from.
pub fn mnist(split: Split) -> Mnist {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
    Mnist::load(split, Some(&dir)).unwrap()
}

/// A safetensors file (a fixture, or an export of ours), read whole; its tensors by name.
#[derive(Debug)]
pub struct SafetensorsFile {
    what: String,
    bytes: Vec<u8>,
}

impl SafetensorsFile {
    pub fn read(path: &Path) -> Self {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Self::from_bytes(path.display().to_string(), bytes)
    }

    /// A file of `tests/fixtures`.
    pub fn fixture(name: &str) -> Self {
        Self::read(&fixture(name))
    }

    /// The bytes of a file, `what` naming them in messages.
    pub fn from_bytes(what: impl Into<String>, bytes: Vec<u8>) -> Self {
        Self {
            what: what.into(),
            bytes,
        }
    }

    pub fn tensors(&self) -> SafeTensors<'_> {
        SafeTensors::deserialize(&self.bytes).unwrap_or_else(|e| panic!("{}: {e}", self.what))
    }

    /// The values of the f32 tensor `key`.
    pub fn f32s(&self, key: &str) -> Vec<f32> {
        let tensors = self.tensors();
        let view = self.view(&tensors, key, Dtype::F32);
        view.data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect()
    }

    /// The values of the i64 tensor `key`.
    pub fn i64s(&self, key: &str) -> Vec<i64> {
        let tensors = self.tensors();
        let view = self.view(&tensors, key, Dtype::I64);
        view.data()
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
            .collect()
    }

    /// The golden batch: `input` (`[BATCH, 784]`, pixel / 255) and `target` (the labels).
    pub fn batch(&self, device: &Device) -> (Tensor<2>, Tensor<1, Int>) {
        let input = TensorData::new(self.f32s("input"), [BATCH, 784]);
        let targets = TensorData::new(self.i64s("target"), [BATCH]);
        (
            Tensor::from_data(input, device),
            Tensor::from_data(targets, device),
        )
    }

    fn view<'a>(
        &self,
        tensors: &'a SafeTensors<'a>,
        key: &str,
        dtype: Dtype,
    ) -> safetensors::tensor::TensorView<'a> {
        let view = tensors
            .tensor(key)
            .unwrap_or_else(|e| panic!("{}: {key}: {e}", self.what));
        assert_eq!(view.dtype(), dtype, "{}: {key}", self.what);
        view
    }
}

/// Data of a tensor, as f32.
pub fn data_of<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// Compares two tensors element by element within `atol + RTOL * |theirs|`; returns the largest
/// absolute and relative differences.
pub fn compare(what: &str, ours: &[f32], theirs: &[f32], atol: f64) -> (f64, f64) {
    assert_eq!(ours.len(), theirs.len(), "{what}: length");
    let (mut max_abs, mut max_rel) = (0.0f64, 0.0f64);
    for (i, (&a, &b)) in ours.iter().zip(theirs).enumerate() {
        let (a, b) = (f64::from(a), f64::from(b));
        let diff = (a - b).abs();
        assert!(
            diff <= atol + RTOL * b.abs(),
            "{what}[{i}]: ours {a} vs PyTorch {b} (diff {diff:e}, atol {atol:e})"
        );
        max_abs = max_abs.max(diff);
        if b.abs() > 1e-4 {
            max_rel = max_rel.max(diff / b.abs());
        }
    }
    (max_abs, max_rel)
}

/// The largest differences per group of tensors: a key with its time step replaced by `*`
/// (`grad.input_norm.*.weight`), so that the RNN's 28 steps print as one line.
#[derive(Debug, Default)]
pub struct Report {
    groups: BTreeMap<String, (usize, f64, f64)>,
}

impl Report {
    /// [`compare`]s, and keeps the differences for [`Report::print`].
    pub fn compare(&mut self, key: &str, ours: &[f32], theirs: &[f32], atol: f64) {
        let (abs, rel) = compare(key, ours, theirs, atol);
        let group = key
            .split('.')
            .map(|part| {
                if part.bytes().all(|b| b.is_ascii_digit()) {
                    "*"
                } else {
                    part
                }
            })
            .collect::<Vec<_>>()
            .join(".");
        let entry = self.groups.entry(group).or_default();
        entry.0 += 1;
        entry.1 = entry.1.max(abs);
        entry.2 = entry.2.max(rel);
    }

    pub fn print(&self, title: &str) {
        println!("== {title}");
        for (group, (count, abs, rel)) in &self.groups {
            let count = if *count > 1 {
                format!(" ({count} tensors)")
            } else {
                String::new()
            };
            println!(
                "{:<44} max |diff| {abs:.2e}   max rel {rel:.2e}",
                format!("{group}{count}")
            );
        }
    }
}
