//! What can go wrong in the page's worker.

use mnist_bn_train::TrainError;

/// What can go wrong in the page's session.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// Shipped or served weights that do not load.
    #[error(transparent)]
    Weights(#[from] TrainError),
    /// MNIST files that do not decode.
    #[error(transparent)]
    Data(#[from] mnist_bn_data::DataError),
    /// A request the session cannot follow.
    #[error("{0}")]
    Invalid(String),
}
