//! The lesson as one call: train each model, test it, and write checkpoints, report and charts.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use web_time::Instant;

use burn::module::Module;
use burn::tensor::Device;
use mnist_bn_data::Mnist;
use mnist_bn_model::{
    ConvNetConfig, MlpConfig, Net, NetConfig, Norm, RenormSchedule, RowRnnConfig, draw_parameters,
};

use crate::TrainError;
use crate::checkpoint::{
    CHECKPOINT_FORMAT, TrainState, checkpoints_dir, import_pytorch, latest_checkpoint,
    load_checkpoint, remove_checkpoints, save_checkpoint,
};
use crate::evaluate::{TestMode, evaluate, test_modes};
use crate::files::RunDirLock;
use crate::learner::{
    DeviceTuning, EpochStats, Learner, Stop, TrainingConfig, check_batches, seeded_model,
};
use crate::output::console::Console;
use crate::output::progress::ProgressMode;
use crate::output::report::{ModelReport, REPORT_SCHEMA, RunReport};
use crate::plot::{Curve, confusion_chart, loss_chart};

/// A model to train in the lesson.
#[derive(Debug, Clone)]
pub struct ModelSpec {
    /// Its name: the output subdirectory and the label in reports and charts.
    pub name: String,
    /// Its architecture.
    pub config: NetConfig,
    /// Start from these weights instead of a random init: a PyTorch `state_dict`
    /// (`.safetensors`, `.pt`) or one of our checkpoints.
    pub init_from: Option<PathBuf>,
}

impl ModelSpec {
    /// The lesson's two models: `batchnorm` then `plain`.
    pub fn lesson() -> Vec<ModelSpec> {
        vec![Self::named(Norm::Batch), Self::named(Norm::None)]
    }

    /// The lesson's MLP with the given normalization, named as [`ModelSpec::parse`] knows it
    /// (`batchnorm`, `plain`, `layernorm`, `groupnorm`, `batchrenorm`), with that norm's
    /// settings (group norm's groups, batch renorm's schedule); the name is the norm's kind, so
    /// `parse` of it gives back the default settings.
    pub fn named(norm: Norm) -> ModelSpec {
        let name = match norm {
            Norm::Batch => "batchnorm",
            Norm::None => "plain",
            Norm::Layer => "layernorm",
            Norm::Group { .. } => "groupnorm",
            Norm::BatchRenorm(_) => "batchrenorm",
        };
        ModelSpec {
            name: name.to_string(),
            config: MlpConfig::new(norm).into(),
            init_from: None,
        }
    }

    /// The names [`ModelSpec::parse`] knows: the lesson's two, then the lesson's MLP with
    /// each other norm, then the ConvNet and the RNN with and without batch norm.
    pub const NAMES: [&'static str; 9] = [
        "batchnorm",
        "plain",
        "layernorm",
        "groupnorm",
        "batchrenorm",
        "conv-bn",
        "conv",
        "rnn-bn",
        "rnn",
    ];

    /// A model by name: the lesson's MLP (`batchnorm`, `plain`), the lesson's MLP with layer
    /// norm, group norm (32 groups) or batch renorm (the default schedule) instead of batch
    /// norm (`layernorm`, `groupnorm`, `batchrenorm`), the ConvNet (`conv-bn`, `conv`) or the
    /// row-by-row RNN (`rnn-bn`, `rnn`), each with its default config.
    pub fn parse(name: &str) -> Option<ModelSpec> {
        // The lesson's MLP with each norm: the names `named` gives.
        let mlp = [
            Norm::Batch,
            Norm::None,
            Norm::Layer,
            Norm::GROUP,
            Norm::BatchRenorm(RenormSchedule::new()),
        ]
        .map(Self::named)
        .into_iter()
        .find(|spec| spec.name == name);
        if mlp.is_some() {
            return mlp;
        }
        let config: NetConfig = match name {
            "conv-bn" => NetConfig::Conv(ConvNetConfig::new(Norm::Batch)),
            "conv" => NetConfig::Conv(ConvNetConfig::new(Norm::None)),
            "rnn-bn" => NetConfig::Rnn(RowRnnConfig::new(Norm::Batch)),
            "rnn" => NetConfig::Rnn(RowRnnConfig::new(Norm::None)),
            _ => return None,
        };
        Some(ModelSpec {
            name: name.to_string(),
            config,
            init_from: None,
        })
    }
}

/// Settings of the lesson beyond the models.
#[derive(Debug, Clone)]
pub struct LessonOptions {
    /// The run directory: a subdirectory per model, the report and the charts.
    pub out: PathBuf,
    /// How every model is trained.
    pub training: TrainingConfig,
    /// Images per test batch (the lesson tests in batches of 64, which matters in train mode).
    pub test_batch_size: usize,
    /// Continue each model from its newest checkpoint in `out`, if it has one.
    pub resume: bool,
    /// How progress within an epoch is shown.
    pub progress: ProgressMode,
    /// The backend and device, for the report (e.g. `flex (cpu)`).
    pub backend: String,
    /// How many models train at the same time, each on its share of the rayon threads (on a
    /// CPU backend, where one model uses a second core poorly at batch 64). 1 trains them one
    /// after another, each with every thread. The printout is the same either way, and so are
    /// the numbers unless the tuning's `parallel_step` splits a lone model's products (float
    /// rounding).
    pub side_by_side: usize,
    /// Where fresh models draw their initial weights before moving to the training device;
    /// `None` draws on the training device. One CPU device for every backend gives the same
    /// initial weights for the same seed on each of them (each device has its own generator),
    /// so that a GPU run compares with a CPU run epoch by epoch.
    pub init_device: Option<Device>,
    /// How the learners use the device (loss reads, data on the device, the parallel step,
    /// SGD on the host), decided once where the backend was chosen. The parallel step applies
    /// to a model that trains alone (a group of one, see `side_by_side`): models trained side
    /// by side never split their products.
    pub tuning: DeviceTuning,
}

/// Trains and tests `models` on `device` and writes everything into `options.out`.
///
/// For each model in turn: train it (printing the lesson's epoch lines and checkpointing after
/// every epoch), then test it: a batch-norm model in train mode and then in eval mode (the
/// lesson's order), a plain one in eval mode. After each model it writes `report.json`,
/// `report.md`, `loss.png`/`loss.svg` and `confusion_<name>.png`. A model whose training
/// diverged or was interrupted is not tested, and the models after it are not trained.
///
/// With `options.side_by_side` above 1, the models train in groups of that many at a time
/// (at most one per rayon thread), each on its share of the threads; the printout and the
/// numbers are those of a run one after another. A model that stops early then lets the
/// others of its group finish, and the groups after it are not trained.
pub fn run_lesson(
    models: &[ModelSpec],
    train: &Mnist,
    test: &Mnist,
    options: &LessonOptions,
    device: &Device,
    interrupt: &AtomicBool,
) -> Result<RunReport, TrainError> {
    let started = Instant::now();
    validate(models, train, test, options)?;
    std::fs::create_dir_all(&options.out).map_err(TrainError::io(&options.out))?;
    let _lock = RunDirLock::acquire(&options.out)?;
    let mut report = RunReport {
        schema: REPORT_SCHEMA,
        backend: options.backend.clone(),
        started: chrono_now(),
        total_seconds: 0.0,
        train_images: train.len(),
        test_images: test.len(),
        models: Vec::new(),
    };
    let threads = rayon::current_num_threads();
    for group in models.chunks(options.side_by_side.clamp(1, threads.max(1))) {
        let reports = if group.len() == 1 {
            let spec = &group[0];
            let started = start(
                spec,
                options,
                learner(spec, options, options.tuning, device),
            )?;
            vec![train_and_test(
                spec, started, train, test, options, device, interrupt,
            )]
        } else {
            side_by_side(group, threads, train, test, options, device, interrupt)?
        };
        let mut stopped = false;
        for model_report in reports {
            let model_report = model_report?;
            stopped |= model_report.stop != Stop::Completed;
            report.models.push(model_report);
            report.total_seconds = started.elapsed().as_secs_f64();
            write_outputs(&report, &options.out)?;
        }
        if stopped {
            break;
        }
    }
    Ok(report)
}

/// Trains and tests `group` at the same time, each model on its own thread pool with an equal
/// share of `threads`; each prints into a slot of an ordered console, so the output reads as
/// if they had run one after another. The models start (and draw their initial weights) one
/// after another first, exactly as they would alone.
fn side_by_side(
    group: &[ModelSpec],
    threads: usize,
    train: &Mnist,
    test: &Mnist,
    options: &LessonOptions,
    device: &Device,
    interrupt: &AtomicBool,
) -> Result<Vec<Result<ModelReport, TrainError>>, TrainError> {
    let consoles = Console::ordered(group.len());
    let mut starts = Vec::with_capacity(group.len());
    for (spec, console) in group.iter().zip(&consoles) {
        // One thread each is what the models get here; with more (8 cores, two models), a
        // split step would make their numbers depend on the core count.
        let tuning = DeviceTuning {
            parallel_step: false,
            ..options.tuning
        };
        let learner = learner(spec, options, tuning, device).with_console(console.clone());
        starts.push(start(spec, options, learner)?);
    }
    let per_model = (threads / group.len()).max(1);
    Ok(std::thread::scope(|scope| {
        let handles: Vec<_> = group
            .iter()
            .zip(starts)
            .zip(&consoles)
            .map(|((spec, started), console)| {
                scope.spawn(move || {
                    let report = match rayon::ThreadPoolBuilder::new()
                        .num_threads(per_model)
                        .build()
                    {
                        Ok(pool) => pool.install(|| {
                            train_and_test(spec, started, train, test, options, device, interrupt)
                        }),
                        Err(err) => Err(TrainError::Invalid(format!(
                            "cannot start a thread pool for {}: {err}",
                            spec.name
                        ))),
                    };
                    console.finish();
                    report
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| match handle.join() {
                Ok(report) => report,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    }))
}

fn validate(
    models: &[ModelSpec],
    train: &Mnist,
    test: &Mnist,
    options: &LessonOptions,
) -> Result<(), TrainError> {
    if options.test_batch_size == 0 {
        return Err(TrainError::Invalid(
            "test batch size must be at least 1".into(),
        ));
    }
    if test.is_empty() {
        return Err(TrainError::Invalid("the test set is empty".into()));
    }
    for spec in models {
        options.training.validate(spec.config.norm(), train.len())?;
        check_batches(
            spec.config.norm(),
            test.len(),
            options.test_batch_size,
            "test",
        )?;
    }
    Ok(())
}

fn train_and_test(
    spec: &ModelSpec,
    started: Started,
    train: &Mnist,
    test: &Mnist,
    options: &LessonOptions,
    device: &Device,
    interrupt: &AtomicBool,
) -> Result<ModelReport, TrainError> {
    let Started {
        learner,
        model,
        mut optim,
        mut history,
    } = started;
    let model_dir = options.out.join(&spec.name);
    let console = learner.console().clone();
    console.println(format!("== {} ==", spec.name));
    if !history.is_empty() {
        console.println(format!(
            "resuming {} after epoch {}",
            spec.name,
            history.len()
        ));
    }
    let save = |model: &Net, optim: &burn::optim::ModuleOptimizer, history: &[_]| {
        let state = TrainState {
            format: CHECKPOINT_FORMAT,
            training: options.training.clone(),
            history: history.to_vec(),
            batches_seen: (history.len() * train.len().div_ceil(options.training.batch_size))
                as u64,
        };
        save_checkpoint(&model_dir, &spec.config, model, Some(optim), &state).map(|_| ())
    };
    let (model, stop) = learner.fit(model, &mut optim, train, &mut history, interrupt, save)?;
    let mut tests = Vec::new();
    if stop == Stop::Completed {
        // One inference copy for every pass: the train-mode pass moves its running statistics,
        // and the eval-mode pass after it sees them, as in the lesson.
        let model = model.valid();
        for &mode in test_modes(spec.config.norm()) {
            console.println(format!("-- test {}: {} mode --", spec.name, mode));
            let result = evaluate(&model, test, options.test_batch_size, mode, device)?;
            console.println(format!("{result}\n"));
            tests.push(result);
        }
    }
    Ok(ModelReport {
        name: spec.name.clone(),
        config: spec.config.clone(),
        training: options.training.clone(),
        epochs: history,
        stop,
        tests,
    })
}

/// The learner for `spec` with `tuning`, printing to stdout.
fn learner(
    spec: &ModelSpec,
    options: &LessonOptions,
    tuning: DeviceTuning,
    device: &Device,
) -> Learner {
    Learner::new(options.training.clone(), device)
        .with_progress(options.progress, spec.name.clone())
        .with_tuning(tuning)
}

/// A model ready to train: its learner, weights, optimizer and the epochs already done.
struct Started {
    learner: Learner,
    model: Net,
    optim: burn::optim::ModuleOptimizer,
    history: Vec<EpochStats>,
}

/// A fresh model, or with `resume` the newest checkpoint's model, optimizer and history.
fn start(
    spec: &ModelSpec,
    options: &LessonOptions,
    learner: Learner,
) -> Result<Started, TrainError> {
    let model_dir = options.out.join(&spec.name);
    let root = checkpoints_dir(&model_dir);
    let latest = latest_checkpoint(&root);
    let device = learner.device();
    match latest {
        Some(path) if options.resume => {
            let checkpoint = load_checkpoint(&path, device)?;
            if checkpoint.config != spec.config {
                return Err(TrainError::checkpoint(
                    &path,
                    "was written for a different model config; start a new run",
                ));
            }
            let mut saved = checkpoint.state.training.clone();
            saved.epochs = options.training.epochs;
            if saved != options.training {
                return Err(TrainError::checkpoint(
                    &path,
                    "was trained with other settings (lr, batch size, momentum, shuffle or seed); \
                     resume with the same ones",
                ));
            }
            let mut optim = learner.optimizer();
            if let Some(record) = checkpoint.optimizer {
                optim = optim.load_record(record);
            }
            Ok(Started {
                learner,
                model: checkpoint.model,
                optim,
                history: checkpoint.state.history,
            })
        }
        _ => {
            device.seed(options.training.seed);
            let model = match &spec.init_from {
                Some(path) => initial_weights(path, &spec.config, device)?,
                None => seeded_model(
                    &spec.config,
                    options.training.seed,
                    options.init_device.as_ref(),
                    device,
                ),
            };
            draw_parameters(&model);
            remove_checkpoints(&root)?;
            let optim = learner.optimizer();
            Ok(Started {
                learner,
                model,
                optim,
                history: Vec::new(),
            })
        }
    }
}

/// Loads starting weights: one of our checkpoints (a directory) or a PyTorch `state_dict`.
pub fn initial_weights(
    path: &Path,
    config: &NetConfig,
    device: &Device,
) -> Result<Net, TrainError> {
    if path.is_dir() {
        let checkpoint = load_checkpoint(path, device)?;
        if checkpoint.config != *config {
            return Err(TrainError::checkpoint(
                &checkpoint.path,
                format!(
                    "holds a model with {}, not the model with {} asked for",
                    checkpoint.config.norm().describe(),
                    config.norm().describe()
                ),
            ));
        }
        Ok(checkpoint.model)
    } else {
        match config {
            NetConfig::Mlp(config) => Ok(import_pytorch(path, config, device)?.into()),
            _ => Err(TrainError::Invalid(format!(
                "{}: PyTorch weights can only be imported into the lesson's MLP",
                path.display()
            ))),
        }
    }
}

/// Writes the report, the loss chart and the confusion heat maps.
pub fn write_outputs(report: &RunReport, out: &Path) -> Result<(), TrainError> {
    let curves: Vec<Curve> = report
        .models
        .iter()
        .filter(|m| !m.epochs.is_empty())
        .map(|m| Curve {
            label: m.name.clone(),
            losses: m.epochs.iter().map(|e| e.train_loss).collect(),
        })
        .collect();
    let plot = if curves.is_empty() {
        None
    } else {
        loss_chart(&curves, &out.join("loss"))?;
        Some("loss.png")
    };
    for m in &report.models {
        if let Some(test) = m.test(TestMode::Eval) {
            let title = format!(
                "Confusion matrix: {} (eval mode, {:.2}%)",
                m.name,
                100.0 * test.accuracy
            );
            confusion_chart(
                &test.confusion,
                &title,
                &out.join(format!("confusion_{}.png", m.name)),
            )?;
        }
    }
    report.write(out, plot)
}

fn chrono_now() -> String {
    chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_name_parses_to_its_norm() {
        let norms = [
            Norm::Batch,
            Norm::None,
            Norm::Layer,
            Norm::GROUP,
            Norm::BatchRenorm(RenormSchedule::new()),
            Norm::Batch,
            Norm::None,
            Norm::Batch,
            Norm::None,
        ];
        for (name, norm) in ModelSpec::NAMES.iter().zip(norms) {
            let spec = ModelSpec::parse(name).unwrap();
            assert_eq!((spec.name.as_str(), spec.config.norm()), (*name, norm));
            // The lesson's MLP by its norm gets the same name and config back.
            if let NetConfig::Mlp(config) = &spec.config {
                let named = ModelSpec::named(norm);
                assert_eq!((named.name, &named.config), (spec.name, &spec.config));
                assert_eq!(config.norm, norm);
            }
        }
        assert!(ModelSpec::parse("transformer").is_none());
        assert_eq!(ModelSpec::lesson()[0].name, "batchnorm");
    }
}
