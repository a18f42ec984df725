//! The learner for the lesson: a training loop (cross-entropy, plain SGD), testing in the
//! lesson's format with batch norm in train and eval mode, atomic checkpoints with resume,
//! and the run's report and charts.
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! use burn::tensor::Device;
//! use mnist_bn_data::{Mnist, Split};
//! use mnist_bn_train::{ExperimentOptions, ModelSpec, ProgressMode, TrainingConfig, run_experiment};
//!
//! let train = Mnist::load(Split::Train, None)?.truncate(2000);
//! let test = Mnist::load(Split::Test, None)?.truncate(500);
//! let options = ExperimentOptions {
//!     out: "runs/example".into(),
//!     training: TrainingConfig::new().with_epochs(2),
//!     test_batch_size: 64,
//!     resume: false,
//!     progress: ProgressMode::Auto,
//!     backend: "flex".into(),
//!     side_by_side: 2,
//!     init_device: None,
//!     loss_reads_every: 1,
//!     data_on_device: false,
//!     parallel_step: true,
//!     host_sgd: true,
//! };
//! let report = run_experiment(&ModelSpec::lesson(), &train, &test, &options, &Device::flex(), &AtomicBool::new(false))?;
//! println!("{}", report.markdown(None));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

mod checkpoint;
mod console;
mod error;
mod evaluate;
mod experiment;
mod figure;
mod fsutil;
mod host_sgd;
mod hot_pool;
pub mod lab;
mod learner;
mod plot;
mod progress;
mod pytorch;
mod report;
mod run_lock;

pub use checkpoint::{
    CHECKPOINT_FORMAT, Checkpoint, TrainState, checkpoints_dir, latest_checkpoint, load_checkpoint,
    model_bytes, model_from_bytes, resolve_checkpoint, save_checkpoint, write_checkpoint_dir,
};
pub use error::TrainError;
pub use evaluate::{
    DigitAccuracy, TestMode, TestReport, evaluate, logits_in, predict, predict_in, test_modes,
};
pub use experiment::{
    ExperimentOptions, ModelSpec, initial_weights, run_experiment, seeded_model, write_outputs,
};
pub use fsutil::write_atomic;
pub use host_sgd::HostSgd;
pub use hot_pool::HotPool;
pub use lab::{Experiment, LabOptions, LabReport, run_lab};
pub use learner::{EpochStats, Learner, Stop, TrainingConfig};
pub use plot::{Curve, confusion_chart, loss_chart};
pub use progress::ProgressMode;
pub use pytorch::{export_pytorch, import_pytorch};
pub use report::{ModelReport, REPORT_SCHEMA, RunReport};
pub use run_lock::{LOCK_FILE, RunDirLock};
