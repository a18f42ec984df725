//! `mnist-bn predict`: the digit in each picture, from a checkpoint or the shipped models.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use mnist_bn_data::read_digit;
use mnist_bn_train::load_checkpoint;

use crate::backend::Backend;
use crate::cli::PredictArgs;

pub fn predict(backend: Backend, args: &PredictArgs) -> Result<ExitCode> {
    let mut images = Vec::new();
    for path in &args.images {
        images.push(read_digit(path)?);
    }
    let Some(path) = &args.checkpoint else {
        // No checkpoint: the two shipped lesson models, each named before its lines.
        for (name, model) in crate::pretrained::lesson_models(&backend.device)? {
            println!("{name} (shipped, pretrained/{name}.bpk):");
            let probabilities = mnist_bn_train::predict(&model, &images, &backend.device);
            print_predictions(&args.images, probabilities);
        }
        return Ok(ExitCode::SUCCESS);
    };
    let checkpoint = load_checkpoint(path, &backend.device)?;
    println!("checkpoint: {}", checkpoint.path.display());
    let probabilities = mnist_bn_train::predict(&checkpoint.model, &images, &backend.device);
    print_predictions(&args.images, probabilities);
    Ok(ExitCode::SUCCESS)
}

/// One line per picture: the digit, its probability, and all ten.
fn print_predictions(paths: &[PathBuf], probabilities: Vec<[f32; 10]>) {
    for (path, p) in paths.iter().zip(probabilities) {
        let (digit, best) =
            p.iter().enumerate().fold(
                (0, f32::MIN),
                |acc, (d, &q)| if q > acc.1 { (d, q) } else { acc },
            );
        let all: Vec<String> = p
            .iter()
            .enumerate()
            .map(|(d, q)| format!("{d}: {q:.3}"))
            .collect();
        println!(
            "{}: {digit} (p = {best:.3})  [{}]",
            path.display(),
            all.join(", ")
        );
    }
}
