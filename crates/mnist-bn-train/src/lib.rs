//! The learner for the lesson: a training loop (cross-entropy, plain SGD), testing in the
//! lesson's format with batch norm in train and eval mode, atomic checkpoints with resume,
//! the run's report and charts, and the lab of experiments around the lesson.
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! use burn::tensor::Device;
//! use mnist_bn_data::{Mnist, Split};
//! use mnist_bn_train::{
//!     DeviceTuning, LessonOptions, ModelSpec, ProgressMode, TrainingConfig, run_lesson,
//! };
//!
//! let train = Mnist::load(Split::Train, None)?.truncate(2000);
//! let test = Mnist::load(Split::Test, None)?.truncate(500);
//! let options = LessonOptions {
//!     out: "runs/example".into(),
//!     training: TrainingConfig::new().with_epochs(2),
//!     test_batch_size: 64,
//!     resume: false,
//!     progress: ProgressMode::Auto,
//!     backend: "flex".into(),
//!     side_by_side: 2,
//!     init_device: None,
//!     tuning: DeviceTuning::default(),
//! };
//! let report = run_lesson(&ModelSpec::lesson(), &train, &test, &options, &Device::flex(), &AtomicBool::new(false))?;
//! println!("{}", report.markdown(None));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Where things are: `learner/` (the training loop and its [`DeviceTuning`]), `lesson.rs` (the
//! lesson as one call), `evaluate.rs` (test passes), `checkpoint/` (checkpoints and PyTorch
//! import/export), `output/` (console, progress, report), `plot/` (charts and the lab's
//! figures), `files/` (atomic writes, the run-directory lock), [`lab`] (the experiments) and,
//! with the `flex` feature, [`cpu`] (the CPU speed machinery).
#![warn(missing_docs)]

mod checkpoint;
#[cfg(feature = "flex")]
pub mod cpu;
mod error;
mod evaluate;
mod files;
pub mod lab;
mod learner;
mod lesson;
mod output;
mod plot;

pub use checkpoint::{
    CHECKPOINT_FORMAT, Checkpoint, TrainState, checkpoints_dir, export_pytorch, import_pytorch,
    latest_checkpoint, load_checkpoint, model_bytes, model_from_bytes, resolve_checkpoint,
    save_checkpoint, write_checkpoint_dir,
};
pub use error::TrainError;
pub use evaluate::{
    DigitAccuracy, TestMode, TestReport, evaluate, logits_in, logits_in_async, predict, predict_in,
    predict_in_async, test_modes, test_pass, test_pass_async,
};
pub use files::{LOCK_FILE, RunDirLock, write_atomic};
pub use lab::{LabOptions, LabReport, run_lab};
pub use learner::{DeviceTuning, EpochStats, Learner, Steps, Stop, TrainingConfig, seeded_model};
pub use lesson::{LessonOptions, ModelSpec, initial_weights, run_lesson, write_outputs};
pub use output::progress::ProgressMode;
pub use output::report::{ModelReport, REPORT_SCHEMA, RunReport};
pub use plot::{Curve, confusion_chart, loss_chart};

/// What the unit tests share.
#[cfg(test)]
pub(crate) mod test_support {
    use std::sync::{Mutex, MutexGuard};

    use burn::tensor::Device;

    static SEEDED: Mutex<()> = Mutex::new(());

    /// A device to draw seeded weights on, with its generator to the caller while the guard
    /// lives. The unit tests run on threads of one process and draw from flex's one generator
    /// whenever they build a model; a test that compares two seeded draws takes its weights
    /// from NdArray's generator instead, which only the tests holding this guard use.
    #[allow(deprecated)] // NdArray is deprecated in Burn 0.22; here it is only a generator.
    pub(crate) fn seeded_init_device() -> (MutexGuard<'static, ()>, Device) {
        let guard = SEEDED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (guard, Device::ndarray())
    }
}
