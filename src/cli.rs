//! The command line: subcommands and flags.

use std::path::PathBuf;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};
use mnist_bn_model::BatchNormInit;
use mnist_bn_train::ModelSpec;
use mnist_bn_train::lab::Experiment;

use crate::backend::BackendKind;

/// The PyTorch lesson "Batch Normalization" on MNIST, in Rust on Burn: trains an MLP with
/// batch norm and one without, tests both, and writes a report, plots and checkpoints.
///
/// With no subcommand it runs the whole lesson (`run`).
#[derive(Debug, Parser)]
#[command(name = "mnist-bn", version)]
pub struct Cli {
    /// What to do (default: run).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Flags of `run` when no subcommand is given.
    #[command(flatten)]
    pub run: RunArgs,
    /// Where to compute.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// Which backend and device to compute on.
#[derive(Debug, Args)]
pub struct BackendArgs {
    /// Backend, among those compiled in (default: cuda if compiled in, else wgpu, else ndarray,
    /// else flex).
    #[arg(long, global = true, value_enum, env = "MNIST_BN_BACKEND")]
    pub backend: Option<BackendKind>,
    /// GPU: for wgpu, default, discrete[:N], integrated[:N], virtual[:N] or cpu; for cuda,
    /// default or the device index.
    #[arg(long, global = true, value_name = "ADAPTER", env = "MNIST_BN_DEVICE")]
    pub device: Option<String>,
}

/// Parses the command line. Flags of the default `run` given before a subcommand are an error
/// (clap's own `args_conflicts_with_subcommands` would also refuse `--backend` there).
pub fn parse() -> Result<Cli, clap::Error> {
    use clap::parser::ValueSource;
    use clap::{CommandFactory, FromArgMatches};
    let mut command = Cli::command();
    let matches = command.clone().get_matches();
    if let Some((name, _)) = matches.subcommand() {
        let misplaced: Vec<String> = command
            .get_arguments()
            .filter(|arg| !arg.is_global_set())
            .map(|arg| arg.get_id().as_str())
            .filter(|id| matches.value_source(id) == Some(ValueSource::CommandLine))
            .map(|id| format!("--{}", id.replace('_', "-")))
            .collect();
        if !misplaced.is_empty() {
            return Err(command.error(
                clap::error::ErrorKind::ArgumentConflict,
                format!(
                    "{} must come after the subcommand (`mnist-bn {name} {} ...`), or drop `{name}`",
                    misplaced.join(", "),
                    misplaced[0]
                ),
            ));
        }
    }
    Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut command))
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train the batch-norm and the plain model, test both, and write everything (the lesson).
    Run(RunArgs),
    /// Train and test one model.
    Train(TrainArgs),
    /// Test a checkpoint on the test set.
    Eval(EvalArgs),
    /// Turn a PyTorch state_dict of the lesson's model into a checkpoint.
    Import(ImportArgs),
    /// Write a checkpoint's weights as a PyTorch state_dict (safetensors).
    Export(ExportArgs),
    /// Predict the digits in pictures (PNG or JPEG, any size, dark on light or light on dark).
    Predict(PredictArgs),
    /// Measure: data loading, seconds per training epoch, test-set evaluation, peak memory.
    Bench(BenchArgs),
    /// The batch-norm lab: the classic experiments that show what batch norm does, each with
    /// its table and figure (lab.md, lab.json, PNG and SVG).
    Lab(LabArgs),
}

/// Flags of `lab`.
#[derive(Debug, Args)]
pub struct LabArgs {
    /// The experiments to run (default: all of them, in this order).
    #[arg(value_name = "EXPERIMENT", value_parser = experiment_parser())]
    pub experiments: Vec<Experiment>,
    /// SGD steps of grid, distributions and init-scale [default: 2000, 10000 and 2000;
    /// `--steps 50000` is the published grid's long run].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub steps: Option<u64>,
    /// The first seed of the initial weights (both networks of a pair share each seed).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Train every network from this many seeds (`--seed`, `--seed` + 1, …): tables show the
    /// mean and the range, figures a band, findings how many seeds agree.
    #[arg(long, value_name = "N", default_value_t = mnist_bn_train::lab::DEFAULT_SEEDS as u64,
          value_parser = clap::value_parser!(u64).range(1..=100))]
    pub seeds: u64,
    /// Test this checkpoint of the lesson's batch-norm MLP in `inference` instead of training
    /// one as the lesson does.
    #[arg(long, value_name = "DIR")]
    pub checkpoint: Option<PathBuf>,
    /// Use only the first N training images (quick runs and tests).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub train_limit: Option<u64>,
    /// Data flags.
    #[command(flatten)]
    pub io: IoArgs,
    /// Output directory (default: runs/lab-<timestamp>).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write into an existing, non-empty output directory.
    #[arg(long)]
    pub force: bool,
    /// Show no progress, only each experiment's heading and the summary.
    #[arg(long)]
    pub quiet: bool,
}

/// `--checkpoint DIR`, shared by the commands that read one.
#[derive(Debug, Args)]
pub struct CheckpointArg {
    /// A checkpoint: an epoch-NNN directory, a model directory (its newest checkpoint), or a
    /// run directory that holds one model.
    #[arg(long = "checkpoint", value_name = "DIR")]
    pub path: PathBuf,
}

/// Flags of `predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// The checkpoint to read: an epoch-NNN directory, a model directory (its newest
    /// checkpoint), or a run directory that holds one model. Without it, both lesson models
    /// shipped with mnist-bn (pretrained/) answer.
    #[arg(long = "checkpoint", value_name = "DIR")]
    pub checkpoint: Option<PathBuf>,
    /// The pictures.
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
}

/// Flags of `bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The models to time, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "batchnorm,plain",
        value_parser = model_parser()
    )]
    pub models: Vec<ModelSpec>,
    /// Training epochs to time per model.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub epochs: u32,
    /// Directory with the MNIST IDX files.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Also write the figures as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// Flags of `import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The PyTorch file: `.safetensors`, or a `.pt`/`.pth` pickle of the state_dict.
    #[arg(long, value_name = "FILE")]
    pub pytorch: PathBuf,
    /// Which of the lesson's models the file holds.
    #[arg(long, value_parser = model_parser())]
    pub model: ModelSpec,
    /// The checkpoint directory to write (must not exist yet, unless --force).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace an existing checkpoint directory.
    #[arg(long)]
    pub force: bool,
}

/// Flags of `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The checkpoint to read.
    #[command(flatten)]
    pub checkpoint: CheckpointArg,
    /// The safetensors file to write (replaced atomically if it exists).
    #[arg(long, value_name = "FILE")]
    pub safetensors: PathBuf,
}

/// Flags of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The models to train and compare, comma-separated (default: batchnorm,plain): the
    /// lesson's MLP with and without batch norm (batchnorm, plain), the lesson's MLP with layer
    /// norm, group norm (32 groups) or batch renorm instead (layernorm, groupnorm,
    /// batchrenorm), a ConvNet with BatchNorm2d and without (conv-bn, conv), an RNN over the
    /// image rows with recurrent batch norm and without (rnn-bn, rnn).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "batchnorm,plain",
        value_parser = model_parser()
    )]
    pub models: Vec<ModelSpec>,
    /// Flags shared with `train`.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Flags of `train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Which model to train (see `run --models`).
    #[arg(long, value_parser = model_parser())]
    pub model: ModelSpec,
    /// Flags shared with `run`.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Flags shared by `run` and `train`.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Passes over the training set.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub epochs: u32,
    /// SGD learning rate (a positive number).
    #[arg(long, default_value_t = 0.01, value_parser = positive_f64, allow_negative_numbers = true)]
    pub lr: f64,
    /// Images per training and test batch.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: u32,
    /// SGD momentum in [0, 1), PyTorch's (no dampening); 0 is the lesson's plain SGD.
    #[arg(long, default_value_t = 0.0, value_parser = momentum)]
    pub momentum: f64,
    /// Shuffle the training set every epoch (the lesson keeps file order).
    #[arg(long)]
    pub shuffle: bool,
    /// Seed of the weight initialization and of the shuffling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// How batch norm's gamma starts: `modern` (1) or `lesson` (uniform in [0, 1]).
    #[arg(long, default_value = "modern", value_parser = bn_init_parser())]
    pub bn_init: BatchNormInit,
    /// Initial gamma of the RNN's recurrent batch norms (0.1 as in Cooijmans et al. 2016).
    #[arg(long, default_value_t = 0.1, value_parser = positive_f64)]
    pub rnn_bn_gamma: f64,
    /// Start from these weights instead of a random init. With `train`: a PyTorch state_dict
    /// (.safetensors, .pt) or a checkpoint directory. With `run`: a directory holding one file
    /// per model (`batchnorm.*`/`init_bn.*`, `plain.*`/`init_nonorm.*`,
    /// `layernorm.*`/`init_layernorm.*`, `groupnorm.*`/`init_groupnorm.*`) or a run directory.
    #[arg(long, value_name = "PATH")]
    pub init_from: Option<PathBuf>,
    /// Use only the first N training images (quick runs and tests).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub train_limit: Option<u64>,
    /// Shared data and output flags.
    #[command(flatten)]
    pub io: IoArgs,
    /// Output directory (default: runs/<timestamp>).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write into an existing, non-empty output directory.
    #[arg(long)]
    pub force: bool,
    /// Continue from the newest checkpoints in --out.
    #[arg(long, requires = "out")]
    pub resume: bool,
    /// Show no progress within an epoch, only the per-epoch lines.
    #[arg(long)]
    pub quiet: bool,
    /// Train up to N models at the same time, each on its share of the CPU threads; 1 trains
    /// them one after another. The printout is the same either way, and so are the numbers
    /// (a model alone on several threads differs by float rounding: split products).
    /// [default: the number of CPU threads on a CPU backend, 1 on the GPU]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub side_by_side: Option<u32>,
    /// Read the batch losses from the device every N batches instead of after each one (a
    /// read waits for the device; on a GPU, fewer reads let it run ahead). The numbers are the
    /// same. [default: 16 on a hardware GPU, 1 on a CPU or a software GPU such as lavapipe]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub loss_reads_every: Option<u32>,
}

/// Where the data comes from and how much of the test set is used.
#[derive(Debug, Args)]
pub struct IoArgs {
    /// Directory with the MNIST IDX files (default: $MNIST_DIR, then ./data/mnist, then the
    /// copy shipped with this project).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Use only the first N test images.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub test_limit: Option<u64>,
}

/// Flags of `eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The checkpoint to read.
    #[command(flatten)]
    pub checkpoint: CheckpointArg,
    /// Batch norm mode: `train` (batch statistics), `eval` (running statistics), or `both`
    /// (train then eval, as in the lesson).
    #[arg(long, value_enum, default_value_t = EvalMode::Eval)]
    pub mode: EvalMode,
    /// Images per test batch.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: u32,
    /// Also write the test results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Data flags.
    #[command(flatten)]
    pub io: IoArgs,
}

/// Test modes of `eval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EvalMode {
    /// Batch statistics (PyTorch's `model.train()`).
    Train,
    /// Running statistics (PyTorch's `model.eval()`).
    Eval,
    /// Train mode, then eval mode.
    Both,
}

fn positive_f64(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!("must be a positive finite number, got {s}"))
    }
}

fn momentum(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("must be at least 0 and below 1, got {s}"))
    }
}

/// The models `ModelSpec::parse` knows, by name ([`ModelSpec::NAMES`]).
fn model_parser() -> impl TypedValueParser<Value = ModelSpec> {
    PossibleValuesParser::new(ModelSpec::NAMES)
        .map(|name| ModelSpec::parse(&name).expect("every listed name parses"))
}

/// The lab's experiments, by name ([`Experiment::ALL`]), each with its one-line description.
fn experiment_parser() -> impl TypedValueParser<Value = Experiment> {
    let values = Experiment::ALL.map(|e| PossibleValue::new(e.name()).help(e.about()));
    PossibleValuesParser::new(values)
        .map(|name| Experiment::parse(&name).expect("every listed name parses"))
}

/// Batch norm's initial gamma, by name ([`BatchNormInit::ALL`]).
fn bn_init_parser() -> impl TypedValueParser<Value = BatchNormInit> {
    let values = BatchNormInit::ALL.map(|i| PossibleValue::new(i.name()).help(i.about()));
    PossibleValuesParser::new(values)
        .map(|name| BatchNormInit::parse(&name).expect("every listed name parses"))
}
