//! Predicting digits in pictures through the library: read a checkpoint, convert each picture
//! like MNIST, print the most likely digit.
//!
//! Run: `cargo run --release --example predict -- CHECKPOINT_DIR IMAGE...`
//! (a checkpoint comes from e.g. `cargo run --release -- train --model batchnorm --out runs/x`,
//! then `runs/x/batchnorm`).

use std::path::PathBuf;

use burn::tensor::Device;
use mnist_bn_data::read_digit;
use mnist_bn_train::{load_checkpoint, predict};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let checkpoint = args
        .next()
        .ok_or("usage: predict CHECKPOINT_DIR IMAGE...")?;
    let images: Vec<PathBuf> = args.collect();
    let device = Device::flex();
    let checkpoint = load_checkpoint(&checkpoint, &device)?;
    let pixels = images
        .iter()
        .map(|p| read_digit(p))
        .collect::<Result<Vec<_>, _>>()?;
    for (path, p) in images
        .iter()
        .zip(predict(&checkpoint.model, &pixels, &device))
    {
        let digit = (0..10).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap_or(0);
        println!("{}: {digit} ({:.1}%)", path.display(), 100.0 * p[digit]);
    }
    Ok(())
}
