//! `mnist-bn bench`: the figures of the performance goals, measured on the selected backend.
//!
//! Not a test: it prints seconds per epoch for each model (full MNIST, batch 64, the lesson's
//! recipe), images per second, the time to evaluate the 10,000 test images, the time to load and
//! decode MNIST, and the process's peak resident memory.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use mnist_bn_data::{Mnist, Split, search_dirs};
use mnist_bn_train::{
    Learner, ProgressMode, TestMode, TrainingConfig, evaluate, seeded_model, write_atomic,
};
use serde_json::json;

use crate::backend::{self, Backend};
use crate::cli::BenchArgs;

pub fn bench(backend: Backend, args: &BenchArgs) -> Result<std::process::ExitCode> {
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into());
    println!("backend: {} (rayon threads: {threads})", backend.name);
    let tuning = backend.tuning;
    println!("{tuning}");
    let started = Instant::now();
    let dirs = search_dirs(args.data_dir.as_deref());
    let train = Mnist::load_from(Split::Train, &dirs).context("loading the training set")?;
    let test = Mnist::load_from(Split::Test, &dirs).context("loading the test set")?;
    let load_seconds = started.elapsed().as_secs_f64();
    println!("load+decode 70,000 images: {load_seconds:.3} s");

    let mut models = Vec::new();
    for spec in &args.models {
        let name = spec.name.as_str();
        let training = TrainingConfig::new().with_epochs(args.epochs as usize);
        let learner = Learner::new(training, &backend.device)
            .with_progress(ProgressMode::Quiet, name)
            .with_tuning(tuning);
        // Drawn where `run` draws them, so that every backend starts from the same weights.
        let init = backend::init_device();
        let model = seeded_model(&spec.config, 0, init.as_ref(), learner.device());
        let (model, history, stop) = learner.fit_epochs(model, &train)?;
        if history.is_empty() {
            bail!("{name}: training stopped before its first epoch ended ({stop:?})");
        }
        let eval_started = Instant::now();
        let result = evaluate(&model, &test, 64, TestMode::Eval, &backend.device)?;
        let eval_seconds = eval_started.elapsed().as_secs_f64();
        let median = median(history.iter().map(|e| e.seconds).collect());
        println!(
            "{name}: epochs {:?} s, median {median:.3} s ({:.0} images/s); eval of {} images {eval_seconds:.3} s ({:.2}%)",
            history
                .iter()
                .map(|e| (e.seconds * 1000.0).round() / 1000.0)
                .collect::<Vec<_>>(),
            60_000.0 / median,
            result.total,
            100.0 * result.accuracy
        );
        models.push(json!({
            "name": name,
            "epoch_seconds": history.iter().map(|e| e.seconds).collect::<Vec<_>>(),
            "median_epoch_seconds": median,
            "images_per_sec": 60_000.0 / median,
            "eval_seconds": eval_seconds,
            "losses": history.iter().map(|e| e.train_loss).collect::<Vec<_>>(),
        }));
    }
    let peak = peak_rss_mb();
    if let Some(mb) = peak {
        println!("peak RSS: {mb:.0} MB");
    }
    if let Some(path) = &args.json {
        let report = json!({
            "backend": backend.name,
            "rayon_threads": threads,
            "loss_reads_every": tuning.loss_reads_every,
            "data_on_device": tuning.data_on_device,
            "parallel_step": tuning.parallel_step,
            "host_sgd": tuning.host_sgd,
            "load_seconds": load_seconds,
            "peak_rss_mb": peak,
            "models": models,
        });
        let mut bytes = serde_json::to_vec_pretty(&report)?;
        bytes.push(b'\n');
        write_atomic(path, &bytes)?;
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// The process's peak resident set size (Linux: `VmHWM` in /proc/self/status).
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The median of `values` (the mean of the middle two for an even count: two epochs give their
/// mean, not the slower one).
///
/// # Panics
/// If `values` is empty.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(vec![3.0]), 3.0);
        assert_eq!(median(vec![2.5, 2.0]), 2.25);
        assert_eq!(median(vec![4.0, 1.0, 3.0]), 3.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
    }
}
