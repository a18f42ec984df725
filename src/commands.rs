//! The subcommands: gather their inputs, call the libraries, report the outcome.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use mnist_bn_data::{Mnist, Split, read_digit, search_dirs};
use mnist_bn_model::{BatchNormInit, MlpConfig, NetConfig, Norm};
use mnist_bn_train::{
    CHECKPOINT_FORMAT, Experiment, ExperimentOptions, LabOptions, ModelSpec, ProgressMode,
    RunReport, Stop, TestMode, TrainState, TrainingConfig, evaluate, export_pytorch,
    import_pytorch, load_checkpoint, run_experiment, run_lab, write_atomic, write_checkpoint_dir,
};

use crate::backend::{self, Backend};
use crate::cli::{
    BnInit, Cli, Command, CommonArgs, EvalArgs, EvalMode, ExportArgs, ImportArgs, IoArgs, LabArgs,
    LabExperiment, ModelKind, PredictArgs,
};

/// How many batches a hardware GPU trains between loss reads by default (see
/// `--loss-reads-every`): each read stalls the device until the host has seen the loss.
/// Not measured on a hardware GPU (none was lent); on lavapipe, which shares the 2 cores
/// with the app, grouped reads were slower (BN epoch of 6,400 images 4.57 s against 3.70 s
/// read every batch), so a software device reads every batch.
const GPU_LOSS_READS: usize = 16;

/// Batches between loss reads: the flag, else [`GPU_LOSS_READS`] on a hardware GPU and 1 on a
/// CPU or a software GPU.
pub fn loss_reads_every(backend: &Backend, flag: Option<u32>) -> usize {
    match flag {
        Some(n) => n as usize,
        None if backend.kind.is_gpu() && !backend.software => GPU_LOSS_READS,
        None => 1,
    }
}

/// Whether batches are gathered on the device from a copy of the training set uploaded once:
/// `MNIST_BN_DATA_ON_DEVICE=1|0`, else on a hardware GPU only. Not measured on one (none was
/// lent); on lavapipe it was slower for the BN model (epoch of 6,400 images 4.49 s against
/// 3.96 s built on the host) and about even for the plain one (2.79 s against 2.92 s).
pub fn data_on_device(backend: &Backend) -> Result<bool> {
    env_switch(
        "MNIST_BN_DATA_ON_DEVICE",
        backend.kind.is_gpu() && !backend.software,
    )
}

/// Whether one model's training step is spread over every thread of its pool (split products,
/// other threads kept spinning: `Learner::with_parallel_step`): `MNIST_BN_PARALLEL_STEP=1|0`,
/// else on flex only (the split relies on flex running a batch of matrices in parallel; the
/// other backends would only pay for the pieces).
pub fn parallel_step(backend: &Backend) -> Result<bool> {
    env_switch(
        "MNIST_BN_PARALLEL_STEP",
        backend.kind == backend::BackendKind::Flex,
    )
}

/// Whether plain SGD's update is taken on the host, over the model's pool
/// (`Learner::with_host_sgd`): `MNIST_BN_HOST_SGD=1|0`, else on flex only (whose tensors it
/// takes and gives back without a copy; on a GPU it would move every parameter each step).
pub fn host_sgd(backend: &Backend) -> Result<bool> {
    env_switch(
        "MNIST_BN_HOST_SGD",
        backend.kind == backend::BackendKind::Flex,
    )
}

/// The environment variable `name` as a switch (`1` on, `0` off), else `default`.
fn env_switch(name: &str, default: bool) -> Result<bool> {
    match std::env::var(name).ok().as_deref() {
        Some("1") => Ok(true),
        Some("0") => Ok(false),
        Some(other) => bail!("{name}={other}: expected 1 or 0"),
        None => Ok(default),
    }
}

/// Exit code of a run whose training diverged.
const EXIT_DIVERGED: u8 = 3;
/// Exit code of a run stopped by Ctrl-C (128 + SIGINT).
const EXIT_INTERRUPTED: u8 = 130;

pub fn dispatch(cli: Cli) -> Result<ExitCode> {
    let backend = || backend::select(cli.backend.backend, cli.backend.device.as_deref());
    match &cli.command {
        None => run(backend()?, &cli.run.common, &cli.run.models, None),
        Some(Command::Run(args)) => run(backend()?, &args.common, &args.models, None),
        Some(Command::Train(args)) => {
            run(backend()?, &args.common, &[args.model], Some(args.model))
        }
        Some(Command::Eval(args)) => eval(backend()?, args),
        Some(Command::Import(args)) => import(backend()?, args),
        Some(Command::Export(args)) => export(backend()?, args),
        Some(Command::Predict(args)) => predict(backend()?, args),
        Some(Command::Bench(args)) => crate::bench::bench(backend()?, args),
        Some(Command::Lab(args)) => lab(backend()?, args),
    }
}

fn lab(backend: Backend, args: &LabArgs) -> Result<ExitCode> {
    println!("backend: {}", backend.name);
    let experiments: Vec<Experiment> = if args.experiments.is_empty() {
        Experiment::ALL.to_vec()
    } else {
        let mut chosen: Vec<Experiment> = Vec::new();
        for kind in &args.experiments {
            let experiment = match kind {
                LabExperiment::Grid => Experiment::Grid,
                LabExperiment::Distributions => Experiment::Distributions,
                LabExperiment::Inference => Experiment::Inference,
                LabExperiment::BatchSize => Experiment::BatchSize,
                LabExperiment::InitScale => Experiment::InitScale,
            };
            if chosen.contains(&experiment) {
                bail!("lab: {experiment} is listed twice");
            }
            chosen.push(experiment);
        }
        chosen
    };
    if args.checkpoint.is_some() && !experiments.contains(&Experiment::Inference) {
        bail!("--checkpoint is for the inference experiment, which is not among those chosen");
    }
    let out = prepare_out_dir(args.out.as_deref(), "lab-", args.force, false)?;
    let (train, test) = load_data(&args.io, args.train_limit)?;
    let options = LabOptions {
        out: out.clone(),
        steps: args.steps.map(|n| n as usize),
        seed: args.seed,
        checkpoint: args.checkpoint.clone(),
        progress: if args.quiet {
            ProgressMode::Quiet
        } else {
            ProgressMode::Auto
        },
        backend: backend.name.clone(),
        threads: if backend.kind.is_gpu() {
            1
        } else {
            rayon::current_num_threads()
        },
        init_device: backend::init_device(),
        host_sgd: host_sgd(&backend)?,
    };
    let report = run_lab(&experiments, train, test, &options, &backend.device)?;
    println!("{}", report.summary());
    println!("wrote {}", out.join("lab.md").display());
    Ok(ExitCode::SUCCESS)
}

fn run(
    backend: Backend,
    args: &CommonArgs,
    kinds: &[ModelKind],
    only: Option<ModelKind>,
) -> Result<ExitCode> {
    println!("backend: {}", backend.name);
    let models = model_specs(args, kinds, only.is_some())?;
    let data_on_device = data_on_device(&backend)?;
    let parallel_step = parallel_step(&backend)?;
    let host_sgd = host_sgd(&backend)?;
    let training = TrainingConfig::new()
        .with_epochs(args.epochs as usize)
        .with_lr(args.lr)
        .with_batch_size(args.batch_size as usize)
        .with_shuffle_seed(args.shuffle.then_some(args.seed))
        .with_seed(args.seed)
        .with_momentum(args.momentum);
    let out = prepare_out_dir(args.out.as_deref(), "", args.force, args.resume)?;
    let (train, test) = load_data(&args.io, args.train_limit)?;
    let options = ExperimentOptions {
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
        loss_reads_every: loss_reads_every(&backend, args.loss_reads_every),
        data_on_device,
        parallel_step,
        host_sgd,
    };
    let interrupt = interrupt_flag()?;
    let report = run_experiment(
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

fn model_specs(args: &CommonArgs, kinds: &[ModelKind], single: bool) -> Result<Vec<ModelSpec>> {
    let bn_init = match args.bn_init {
        BnInit::Modern => BatchNormInit::Ones,
        BnInit::Lesson => BatchNormInit::Lesson,
    };
    let mut specs: Vec<ModelSpec> = Vec::new();
    for &kind in kinds {
        if specs.iter().any(|s| s.name == kind.name()) {
            bail!("--models: {} is listed twice", kind.name());
        }
        let mut spec = ModelSpec::parse(kind.name()).expect("every kind has a spec");
        spec.config = match spec.config {
            NetConfig::Mlp(config) => NetConfig::Mlp(config.with_bn_init(bn_init)),
            NetConfig::Rnn(config) => NetConfig::Rnn(config.with_bn_gamma(args.rnn_bn_gamma)),
            other => other,
        };
        spec.init_from = match &args.init_from {
            None => None,
            Some(path) if single => Some(path.clone()),
            Some(dir) => Some(init_file_for(dir, kind)?),
        };
        specs.push(spec);
    }
    Ok(specs)
}

/// With `run --init-from DIR`: the file or checkpoint in DIR for the model `kind`.
fn init_file_for(dir: &Path, kind: ModelKind) -> Result<PathBuf> {
    if !dir.is_dir() {
        bail!(
            "--init-from {}: with `run`, give a directory holding one file per model (or use \
             `train --model ... --init-from FILE`)",
            dir.display()
        );
    }
    let name = kind.name();
    let lesson = match kind {
        ModelKind::Batchnorm => "init_bn",
        ModelKind::Plain => "init_nonorm",
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

fn import(backend: Backend, args: &ImportArgs) -> Result<ExitCode> {
    let device = backend.device;
    if args.out.exists() && !args.force {
        bail!(
            "--out {}: already exists; pass --force to replace it",
            args.out.display()
        );
    }
    let norm = match args.model {
        ModelKind::Batchnorm => Norm::Batch,
        ModelKind::Plain => Norm::None,
        other => bail!(
            "--model {}: PyTorch weights can be imported for the lesson's models only \
             (batchnorm, plain)",
            other.name()
        ),
    };
    let config = MlpConfig::new(norm);
    let model = import_pytorch(&args.pytorch, &config, &device)?;
    let state = TrainState {
        format: CHECKPOINT_FORMAT,
        training: TrainingConfig::new(),
        history: Vec::new(),
        batches_seen: 0,
    };
    if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    write_checkpoint_dir(&args.out, &config.into(), &model.into(), None, &state)?;
    println!(
        "imported {} into checkpoint {}",
        args.pytorch.display(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn export(backend: Backend, args: &ExportArgs) -> Result<ExitCode> {
    let device = backend.device;
    let checkpoint = load_checkpoint(&args.checkpoint.path, &device)?;
    let batches = i64::try_from(checkpoint.state.batches_seen).unwrap_or(i64::MAX);
    let Some(mlp) = checkpoint.model.as_mlp() else {
        bail!(
            "--checkpoint {}: only the lesson's MLPs have a PyTorch counterpart to export to",
            checkpoint.path.display()
        );
    };
    export_pytorch(mlp, &args.safetensors, batches)?;
    println!(
        "exported {} to {} (PyTorch state_dict; load with \
         model.load_state_dict(safetensors.torch.load_file(...)))",
        checkpoint.path.display(),
        args.safetensors.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Creates (or, with --resume/--force, reuses) the output directory and checks that it can be
/// written, before any long work starts. Without `--out` it is `runs/<prefix><timestamp>`.
fn prepare_out_dir(out: Option<&Path>, prefix: &str, force: bool, resume: bool) -> Result<PathBuf> {
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

fn load_data(io: &IoArgs, train_limit: Option<u64>) -> Result<(Mnist, Mnist)> {
    let started = Instant::now();
    let dirs = search_dirs(io.data_dir.as_deref());
    let train = Mnist::load_from(Split::Train, &dirs).context("loading the MNIST training set")?;
    let test = Mnist::load_from(Split::Test, &dirs).context("loading the MNIST test set")?;
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
    let mut lines = vec![format!(
        "{:<10} {:>11} {:>11} {:>9} {:>16} {:>16}",
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
            "{:<10} {:>11} {:>11} {:>9} {:>16} {:>16}",
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

fn outcome(report: &RunReport, out: &Path, only: Option<ModelKind>) -> ExitCode {
    let resume = match only {
        None => format!("mnist-bn run --out {} --resume", out.display()),
        Some(kind) => format!(
            "mnist-bn train --model {} --out {} --resume",
            kind.name(),
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

fn predict(backend: Backend, args: &PredictArgs) -> Result<ExitCode> {
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

fn eval(backend: Backend, args: &EvalArgs) -> Result<ExitCode> {
    println!("backend: {}", backend.name);
    let device: Device = backend.device;
    let checkpoint = load_checkpoint(&args.checkpoint.path, &device)?;
    println!(
        "checkpoint: {} ({:?} norm, {} epochs)",
        checkpoint.path.display(),
        checkpoint.config.norm(),
        checkpoint.state.history.len()
    );
    let dirs = search_dirs(args.io.data_dir.as_deref());
    let test = Mnist::load_from(Split::Test, &dirs).context("loading the MNIST test set")?;
    let test = limit(test, args.io.test_limit, "--test-limit")?;
    let modes: &[TestMode] = match args.mode {
        EvalMode::Train => &[TestMode::Train],
        EvalMode::Eval => &[TestMode::Eval],
        EvalMode::Both => &[TestMode::Train, TestMode::Eval],
    };
    let mut results = Vec::new();
    for &mode in modes {
        let result = evaluate(
            &checkpoint.model,
            &test,
            args.batch_size as usize,
            mode,
            &device,
        )?;
        println!("-- test: {mode} mode --\n{result}\n");
        results.push(result);
    }
    if let Some(path) = &args.json {
        let mut json = serde_json::to_vec_pretty(&results)?;
        json.push(b'\n');
        write_atomic(path, &json)?;
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
