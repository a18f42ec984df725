//! The lesson's two models as trained by a full `mnist-bn run` (the recipe and their figures
//! are in `pretrained/README.md`), built into the binary: what `predict` uses without
//! `--checkpoint`. The web page serves the same files.

use std::path::Path;

use anyhow::Result;
use burn::tensor::Device;
use mnist_bn_model::Net;
use mnist_bn_train::{ModelSpec, model_from_bytes};

/// A shipped model: its name (`batchnorm`, `plain`), the file it came from, its weights.
struct Shipped {
    name: &'static str,
    file: &'static str,
    bytes: &'static [u8],
}

const SHIPPED: [Shipped; 2] = [
    Shipped {
        name: "batchnorm",
        file: "pretrained/batchnorm.bpk",
        bytes: include_bytes!("../pretrained/batchnorm.bpk"),
    },
    Shipped {
        name: "plain",
        file: "pretrained/plain.bpk",
        bytes: include_bytes!("../pretrained/plain.bpk"),
    },
];

/// Both shipped models on `device`, with their names, batch norm first.
pub fn lesson_models(device: &Device) -> Result<Vec<(&'static str, Net)>> {
    SHIPPED
        .iter()
        .map(|shipped| {
            let config = ModelSpec::parse(shipped.name)
                .expect("a lesson model")
                .config;
            let model = model_from_bytes(
                &config,
                shipped.bytes.to_vec(),
                device,
                Path::new(shipped.file),
            )?;
            Ok((shipped.name, model))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_models_load_and_tell_a_zero_from_a_one() {
        let device = Device::flex();
        let models = lesson_models(&device).unwrap();
        assert_eq!(models.len(), 2);
        // A bar is a one; a ring is a zero, for both models.
        let mut one = [0u8; 784];
        let mut zero = [0u8; 784];
        for y in 4..24 {
            for x in 13..16 {
                one[y * 28 + x] = 255;
            }
        }
        for y in 0..28i32 {
            for x in 0..28i32 {
                let r2 = (x - 14).pow(2) * 2 + (y - 14).pow(2);
                if (49..=100).contains(&(r2 / 2)) {
                    zero[(y * 28 + x) as usize] = 255;
                }
            }
        }
        for (name, model) in &models {
            let p = mnist_bn_train::predict(model, &[one, zero], &device);
            let digit = |p: &[f32; 10]| (0..10).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
            assert_eq!((digit(&p[0]), digit(&p[1])), (1, 0), "{name}: {p:?}");
        }
    }
}
