//! The data crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong while finding, reading or decoding MNIST.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file could not be opened or read.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        error: std::io::Error,
    },
    /// A file is not a valid IDX file of the expected kind.
    #[error("{path}: {problem}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// An image file and its label file disagree.
    #[error("{images} holds {image_count} images but {labels} holds {label_count} labels")]
    CountMismatch {
        /// The image file.
        images: PathBuf,
        /// Its number of images.
        image_count: usize,
        /// The label file.
        labels: PathBuf,
        /// Its number of labels.
        label_count: usize,
    },
    /// A file of the data set was found in none of the places looked at.
    #[error("cannot find MNIST file {name}; looked in: {}", looked_in.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    NotFound {
        /// The canonical file name (e.g. `train-images-idx3-ubyte`).
        name: String,
        /// Every directory searched, in order.
        looked_in: Vec<PathBuf>,
    },
}

impl DataError {
    pub(crate) fn format(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        Self::Format {
            path: path.into(),
            problem: problem.into(),
        }
    }
}
