//! What the commands that train share: their output directory, checked before any long work,
//! and the data, loaded and limited by the flags.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use mnist_bn_data::{Mnist, Split, search_dirs};

use crate::cli::IoArgs;

/// Creates (or, with --resume/--force, reuses) the output directory and checks that it can be
/// written, before any long work starts. Without `--out` it is `runs/<prefix><timestamp>`.
pub fn prepare_out_dir(
    out: Option<&Path>,
    prefix: &str,
    force: bool,
    resume: bool,
) -> Result<PathBuf> {
    let out = match out {
        Some(dir) => dir.to_path_buf(),
        None => PathBuf::from("runs").join(format!(
            "{prefix}{}",
            chrono::Local::now().format("%Y%m%d-%H%M%S")
        )),
    };
    if resume && !out.is_dir() {
        bail!("--resume: {} is not a run directory", out.display());
    }
    if out.exists() && !out.is_dir() {
        bail!("--out {}: exists and is not a directory", out.display());
    }
    let non_empty = out
        .read_dir()
        .is_ok_and(|mut entries| entries.next().is_some());
    if non_empty && !force && !resume {
        bail!(
            "--out {}: directory exists and is not empty; pass --force to write into it or \
             --resume to continue its run",
            out.display()
        );
    }
    std::fs::create_dir_all(&out)
        .with_context(|| format!("--out {}: cannot create", out.display()))?;
    let probe = out.join(".write-test");
    std::fs::write(&probe, b"")
        .with_context(|| format!("--out {}: cannot write there", out.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(out)
}

pub fn load_data(io: &IoArgs, train_limit: Option<u64>) -> Result<(Mnist, Mnist)> {
    let started = Instant::now();
    let dirs = search_dirs(io.data_dir.as_deref());
    let train = load(Split::Train, &dirs)?;
    let test = load(Split::Test, &dirs)?;
    let train = limit(train, train_limit, "--train-limit")?;
    let test = limit(test, io.test_limit, "--test-limit")?;
    println!(
        "data: {} training and {} test images, loaded in {:.2} s",
        train.len(),
        test.len(),
        started.elapsed().as_secs_f64()
    );
    Ok((train, test))
}

fn limit(data: Mnist, limit: Option<u64>, flag: &str) -> Result<Mnist> {
    match limit {
        Some(n) if n as usize > data.len() => {
            bail!("{flag} {n}: the data set has only {} images", data.len())
        }
        Some(n) => Ok(data.truncate(n as usize)),
        None => Ok(data),
    }
}

/// The test set alone, limited by `--test-limit` (for `eval`).
pub fn load_test(io: &IoArgs) -> Result<Mnist> {
    let test = load(Split::Test, &search_dirs(io.data_dir.as_deref()))?;
    limit(test, io.test_limit, "--test-limit")
}

/// One split of MNIST from the first of `dirs` that holds it.
fn load(split: Split, dirs: &[PathBuf]) -> Result<Mnist> {
    let what = match split {
        Split::Train => "training",
        Split::Test => "test",
    };
    Mnist::load_from(split, dirs).with_context(|| format!("loading the MNIST {what} set"))
}
