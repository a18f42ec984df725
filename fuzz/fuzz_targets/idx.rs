//! Fuzzes the IDX reader: any bytes, plain or gzip, as images and as labels, must give a
//! value or a `DataError`, never a panic, a hang or an allocation the input does not justify.
//!
//! Run: `cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run idx -- -max_total_time=600`
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use mnist_bn_data::{IMAGE_PIXELS, decode_images, decode_labels};

fuzz_target!(|data: &[u8]| {
    let name = Path::new("fuzz-input");
    for gzip in [false, true] {
        if let Ok(images) = decode_images(data, gzip, name) {
            assert_eq!(images.pixels.len(), images.count * IMAGE_PIXELS);
        }
        if let Ok(labels) = decode_labels(data, gzip, name) {
            assert!(labels.iter().all(|&l| l < 10));
        }
    }
});
