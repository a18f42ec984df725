//! MNIST for the lesson: IDX reading (plain or gzip) with thorough validation, the data set
//! as Burn's [`Dataset`](burn::data::dataset::Dataset), a Burn
//! [`Batcher`](burn::data::dataloader::batcher::Batcher), and the epoch order (file order, or
//! a seeded shuffle).
//!
//! ```no_run
//! use burn::tensor::Device;
//! use mnist_bn_data::{Batches, Mnist, Split, epoch_order};
//!
//! // `None`: $MNIST_DIR, ./data/mnist, then the copy shipped with this project.
//! let train = Mnist::load(Split::Train, None)?;
//! let device = Device::flex();
//! let batches = Batches::new(&train, epoch_order(train.len(), None, 0), 64, &device);
//! assert_eq!(batches.num_batches(), 938);
//! # Ok::<(), mnist_bn_data::DataError>(())
//! ```
//!
//! # Features
//!
//! - `burn` (default): Burn's [`Dataset`](burn::data::dataset::Dataset) for [`Mnist`], the
//!   [`MnistBatcher`], [`Batches`], [`DeviceMnist`] and [`epoch_order`] (turns on Burn's
//!   `dataset`).
//! - `image` (default): [`read_digit`] and [`digit_from_grey`], a picture converted like
//!   MNIST's digits.
//!
//! Without default features the crate reads IDX files into memory ([`Mnist`], [`read_images`],
//! [`decode_images`], ...) and nothing else.
#![warn(missing_docs)]

// The README's example, compiled and run as a doc test.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

#[cfg(feature = "burn")]
mod batch;
#[cfg(feature = "image")]
mod digit;
mod error;
mod idx;
mod mnist;

#[cfg(feature = "burn")]
pub use batch::{Batches, DeviceMnist, MnistBatch, MnistBatcher, epoch_order, pixel_to_f32};
#[cfg(feature = "image")]
pub use digit::{digit_from_grey, read_digit};
pub use error::DataError;
pub use idx::{
    IMAGE_PIXELS, IMAGE_SIDE, IdxImages, NUM_CLASSES, decode_images, decode_labels, read_images,
    read_labels,
};
pub use mnist::{MNIST_DIR_ENV, Mnist, MnistItem, Split, find_file, search_dirs};
