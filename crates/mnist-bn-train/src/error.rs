//! The training crate's error type.

use std::path::PathBuf;

use mnist_bn_data::DataError;

/// Everything that can go wrong while training, testing, checkpointing or reporting.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A file or directory could not be written or read.
    #[error("{path}: {error}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        error: std::io::Error,
    },
    /// A checkpoint is missing, damaged, or does not fit the model.
    #[error("checkpoint {path}: {problem}")]
    Checkpoint {
        /// The checkpoint directory or file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A setting cannot work (checked before any long work starts).
    #[error("{0}")]
    Invalid(String),
    /// A chart could not be drawn or written.
    #[error("plot {path}: {problem}")]
    Plot {
        /// The chart's file.
        path: PathBuf,
        /// What went wrong.
        problem: String,
    },
    /// Another process is writing the run directory.
    #[error(
        "{dir}: in use by {holder}, which is still writing this run directory; wait for it to \
         finish (or stop it) or choose another output directory"
    )]
    Busy {
        /// The run directory.
        dir: PathBuf,
        /// Who holds it: `process <pid>`.
        holder: String,
    },
    /// Reading the data failed.
    #[error(transparent)]
    Data(#[from] DataError),
}

impl TrainError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |error| Self::Io { path, error }
    }

    pub(crate) fn checkpoint(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        Self::Checkpoint {
            path: path.into(),
            problem: problem.into(),
        }
    }
}
