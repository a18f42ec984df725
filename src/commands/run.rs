//! `mnist-bn run` and `mnist-bn train`: the lesson (or one model), trained, tested and written
//! into a run directory, with the summary table and the exit code of how it ended.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use mnist_bn_model::NetConfig;
use mnist_bn_train::{
    LessonOptions, ModelSpec, ProgressMode, RunReport, Stop, TestMode, TrainingConfig, run_lesson,
};

use super::setup::{load_data, prepare_out_dir};
use crate::backend::{self, Backend};
use crate::cli::CommonArgs;

/// Exit code of a run whose training diverged.
const EXIT_DIVERGED: u8 = 3;
/// Exit code of a run stopped by Ctrl-C (128 + SIGINT).
const EXIT_INTERRUPTED: u8 = 130;

/// Trains and tests `models` (`run`), or the one model of `train` (`only`: its name, for the
/// resume hint).
pub fn run(
    backend: Backend,
    args: &CommonArgs,
    models: &[ModelSpec],
    only: Option<&str>,
) -> Result<ExitCode> {
    println!("backend: {}", backend.name);
    let models = model_specs(args, models, only.is_some())?;
    let training = TrainingConfig::new()
        .with_epochs(args.epochs as usize)
        .with_lr(args.lr)
        .with_batch_size(args.batch_size as usize)
        .with_shuffle_seed(args.shuffle.then_some(args.seed))
        .with_seed(args.seed)
        .with_momentum(args.momentum);
    let out = prepare_out_dir(args.out.as_deref(), "", args.force, args.resume)?;
    let (train, test) = load_data(&args.io, args.train_limit)?;
    let mut tuning = backend.tuning;
    if let Some(n) = args.loss_reads_every {
        tuning.loss_reads_every = n as usize;
    }
    let options = LessonOptions {
        out: out.clone(),
        training,
        test_batch_size: args.batch_size as usize,
        resume: args.resume,
        progress: if args.quiet {
            ProgressMode::Quiet
        } else {
            ProgressMode::Auto
        },
        backend: backend.name.clone(),
        side_by_side: match args.side_by_side {
            Some(n) => n as usize,
            None if backend.kind.is_gpu() => 1,
            // One model uses a second core poorly at batch 64; two models use both.
            None => rayon::current_num_threads(),
        },
        init_device: backend::init_device(),
        tuning,
    };
    let interrupt = interrupt_flag()?;
    let report = run_lesson(
        &models,
        &train,
        &test,
        &options,
        &backend.device,
        &interrupt,
    )?;
    println!("{}", summary(&report));
    println!("wrote {}", out.display());
    Ok(outcome(&report, &out, only))
}

fn model_specs(args: &CommonArgs, models: &[ModelSpec], single: bool) -> Result<Vec<ModelSpec>> {
    let bn_init = args.bn_init;
    let mut specs: Vec<ModelSpec> = Vec::new();
    for model in models {
        if specs.iter().any(|s| s.name == model.name) {
            bail!("--models: {} is listed twice", model.name);
        }
        let mut spec = model.clone();
        spec.config = match spec.config {
            NetConfig::Mlp(config) => NetConfig::Mlp(config.with_bn_init(bn_init)),
            NetConfig::Rnn(config) => NetConfig::Rnn(config.with_bn_gamma(args.rnn_bn_gamma)),
            other => other,
        };
        spec.init_from = match &args.init_from {
            None => None,
            Some(path) if single => Some(path.clone()),
            Some(dir) => Some(init_file_for(dir, &spec.name)?),
        };
        specs.push(spec);
    }
    Ok(specs)
}

/// With `run --init-from DIR`: the file or checkpoint in DIR for the model `name`.
fn init_file_for(dir: &Path, name: &str) -> Result<PathBuf> {
    if !dir.is_dir() {
        bail!(
            "--init-from {}: with `run`, give a directory holding one file per model (or use \
             `train --model ... --init-from FILE`)",
            dir.display()
        );
    }
    // The lesson's notebook names its two initial state_dicts so.
    let lesson = match name {
        "batchnorm" => "init_bn",
        "plain" => "init_nonorm",
        "layernorm" => "init_layernorm",
        "groupnorm" => "init_groupnorm",
        _ => name,
    };
    let candidates = [
        dir.join(name),
        dir.join(format!("{name}.safetensors")),
        dir.join(format!("{name}.pt")),
        dir.join(format!("{lesson}.safetensors")),
        dir.join(format!("{lesson}.pt")),
    ];
    candidates
        .iter()
        .find(|p| p.exists())
        .cloned()
        .with_context(|| {
            let names: Vec<String> = candidates
                .iter()
                .map(|p| {
                    p.file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect();
            format!(
                "--init-from {}: no weights for the {name} model; looked for {}",
                dir.display(),
                names.join(", ")
            )
        })
}

/// A flag that Ctrl-C sets; training stops at the next batch and keeps its last checkpoint.
fn interrupt_flag() -> Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    let handler_flag = Arc::clone(&flag);
    ctrlc::set_handler(move || {
        if handler_flag.swap(true, Ordering::SeqCst) {
            // A second Ctrl-C means now.
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        }
        eprintln!("\ninterrupt: stopping after this batch (Ctrl-C again to quit at once)");
    })
    .context("installing the Ctrl-C handler")?;
    Ok(flag)
}

fn summary(report: &RunReport) -> String {
    // The name column: 10 wide, wider for a longer name (`batchrenorm`).
    let w = report
        .models
        .iter()
        .map(|m| m.name.len())
        .fold(10, usize::max);
    let mut lines = vec![format!(
        "{:<w$} {:>11} {:>11} {:>9} {:>16} {:>16}",
        "model", "first loss", "final loss", "s/epoch", "test acc. train", "test acc. eval"
    )];
    for m in &report.models {
        // A model that stopped in its first epoch has no losses or times: dashes, not NaN.
        let dash = || "–".to_string();
        let first = m.epochs.first().map(|e| format!("{:.6}", e.train_loss));
        let last = m.epochs.last().map(|e| format!("{:.6}", e.train_loss));
        let secs = (!m.epochs.is_empty()).then(|| {
            let mean = m.epochs.iter().map(|e| e.seconds).sum::<f64>() / m.epochs.len() as f64;
            format!("{mean:.2}")
        });
        let acc = |mode| {
            m.test(mode)
                .map_or_else(dash, |t| format!("{:.2}%", 100.0 * t.accuracy))
        };
        lines.push(format!(
            "{:<w$} {:>11} {:>11} {:>9} {:>16} {:>16}",
            m.name,
            first.unwrap_or_else(dash),
            last.unwrap_or_else(dash),
            secs.unwrap_or_else(dash),
            acc(TestMode::Train),
            acc(TestMode::Eval)
        ));
    }
    lines.push(format!("total time: {:.1} s", report.total_seconds));
    lines.join("\n")
}

fn outcome(report: &RunReport, out: &Path, only: Option<&str>) -> ExitCode {
    let resume = match only {
        None => format!("mnist-bn run --out {} --resume", out.display()),
        Some(name) => format!(
            "mnist-bn train --model {name} --out {} --resume",
            out.display()
        ),
    };
    for m in &report.models {
        match &m.stop {
            Stop::Completed => {}
            Stop::Diverged { epoch, batch, loss } => {
                let why = if loss.is_finite() {
                    format!("loss {loss}, but the step left weights that are not finite")
                } else {
                    format!("loss {loss}")
                };
                eprintln!(
                    "error: training of {} diverged at epoch {epoch}, batch {batch} ({why}); \
                     try a lower learning rate (--lr). The last good checkpoint is kept.",
                    m.name
                );
                return ExitCode::from(EXIT_DIVERGED);
            }
            Stop::Interrupted { epoch } => {
                eprintln!(
                    "interrupted during epoch {epoch} of {}; the last complete epoch is \
                     checkpointed. Resume with: {resume}",
                    m.name
                );
                return ExitCode::from(EXIT_INTERRUPTED);
            }
        }
    }
    ExitCode::SUCCESS
}
