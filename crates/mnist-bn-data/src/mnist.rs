//! The MNIST data set: where its files are, loading a split, and Burn's `Dataset` over it.

use std::path::{Path, PathBuf};

#[cfg(feature = "burn")]
use burn::data::dataset::{Dataset, DatasetError};

use crate::DataError;
use crate::idx::{IMAGE_PIXELS, NUM_CLASSES, read_images, read_labels};

/// The environment variable that names a directory holding the MNIST files.
pub const MNIST_DIR_ENV: &str = "MNIST_DIR";

/// One of MNIST's two splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// 60,000 training images.
    Train,
    /// 10,000 test images.
    Test,
}

impl Split {
    /// The canonical file names of the split's images and labels, without extension.
    fn stems(self) -> [&'static str; 2] {
        match self {
            Split::Train => ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"],
            Split::Test => ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"],
        }
    }
}

/// The directories searched for MNIST, in order: `explicit` (e.g. the app's `--data-dir`),
/// then `$MNIST_DIR`, then `data/mnist` in the current directory, then the copy shipped in
/// this project's `data/mnist`.
///
/// An explicit directory is the only one searched when given: a user who names a directory
/// wants that data, not a fallback.
pub fn search_dirs(explicit: Option<&Path>) -> Vec<PathBuf> {
    if let Some(dir) = explicit {
        return vec![dir.to_path_buf()];
    }
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::var_os(MNIST_DIR_ENV).filter(|d| !d.is_empty()) {
        dirs.push(PathBuf::from(dir));
    }
    dirs.push(PathBuf::from("data/mnist"));
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
    if let Ok(shipped) = shipped.canonicalize()
        && !dirs
            .iter()
            .any(|d| d.canonicalize().is_ok_and(|d| d == shipped))
    {
        dirs.push(shipped);
    }
    dirs
}

/// Finds a file of the data set in `dirs`, named like the canonical distribution
/// (`train-images-idx3-ubyte`) or with a dot (`train-images.idx3-ubyte`), plain or `.gz`.
pub fn find_file(stem: &str, dirs: &[PathBuf]) -> Result<PathBuf, DataError> {
    let dotted = stem.replacen("-idx", ".idx", 1);
    for dir in dirs {
        for name in [stem, dotted.as_str()] {
            for ext in ["", ".gz"] {
                let path = dir.join(format!("{name}{ext}"));
                if path.exists() {
                    return Ok(path);
                }
            }
        }
    }
    Err(DataError::NotFound {
        name: format!("{stem}[.gz] or {dotted}[.gz]"),
        looked_in: dirs.to_vec(),
    })
}

/// One split of MNIST in memory: raw pixels and labels.
#[derive(Debug, Clone)]
pub struct Mnist {
    /// `len() * 784` pixels, 0 to 255, image after image.
    pixels: Vec<u8>,
    /// One digit per image.
    labels: Vec<u8>,
}

/// One image and its label, as [`Dataset::get`] returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct MnistItem {
    /// 784 pixels, 0 (background) to 255 (ink), row-major.
    pub pixels: [u8; IMAGE_PIXELS],
    /// The digit, 0 to 9.
    pub label: u8,
}

impl Mnist {
    /// Loads a split from the first of [`search_dirs`]`(explicit)` that holds its files.
    pub fn load(split: Split, explicit: Option<&Path>) -> Result<Self, DataError> {
        Self::load_from(split, &search_dirs(explicit))
    }

    /// Loads a split from the first of `dirs` that holds each of its files.
    pub fn load_from(split: Split, dirs: &[PathBuf]) -> Result<Self, DataError> {
        let [images, labels] = split.stems().map(|stem| find_file(stem, dirs));
        Self::from_files(&images?, &labels?)
    }

    /// Loads a split from an image file and a label file.
    pub fn from_files(images_path: &Path, labels_path: &Path) -> Result<Self, DataError> {
        let images = read_images(images_path)?;
        let labels = read_labels(labels_path)?;
        if images.count != labels.len() {
            return Err(DataError::CountMismatch {
                images: images_path.to_path_buf(),
                image_count: images.count,
                labels: labels_path.to_path_buf(),
                label_count: labels.len(),
            });
        }
        Ok(Self {
            pixels: images.pixels,
            labels,
        })
    }

    /// Builds a split from raw pixels (`784` per image) and labels.
    ///
    /// # Panics
    ///
    /// Panics if the lengths disagree or a label is not a digit.
    pub fn from_raw(pixels: Vec<u8>, labels: Vec<u8>) -> Self {
        assert_eq!(
            pixels.len(),
            labels.len() * IMAGE_PIXELS,
            "one image per label"
        );
        assert!(
            labels.iter().all(|&l| usize::from(l) < NUM_CLASSES),
            "labels are digits"
        );
        Self { pixels, labels }
    }

    /// Splits off the last `n` images (all of them when there are fewer): returns the first
    /// part and the held-out part, in file order.
    pub fn hold_out(&self, n: usize) -> (Mnist, Mnist) {
        let at = self.labels.len() - n.min(self.labels.len());
        let part = |range: std::ops::Range<usize>| Mnist {
            pixels: self.pixels[range.start * IMAGE_PIXELS..range.end * IMAGE_PIXELS].to_vec(),
            labels: self.labels[range].to_vec(),
        };
        (part(0..at), part(at..self.labels.len()))
    }

    /// Keeps only the first `n` images (all of them when there are fewer).
    pub fn truncate(mut self, n: usize) -> Self {
        let n = n.min(self.labels.len());
        self.labels.truncate(n);
        self.pixels.truncate(n * IMAGE_PIXELS);
        self
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// All pixels, image after image.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// All labels.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// The pixels of image `index`.
    ///
    /// # Panics
    ///
    /// Panics if `index >= len()`.
    pub fn image(&self, index: usize) -> &[u8] {
        &self.pixels[index * IMAGE_PIXELS..(index + 1) * IMAGE_PIXELS]
    }

    /// How many images of each digit there are.
    pub fn label_counts(&self) -> [usize; NUM_CLASSES] {
        let mut counts = [0; NUM_CLASSES];
        for &label in &self.labels {
            counts[usize::from(label)] += 1;
        }
        counts
    }
}

#[cfg(feature = "burn")]
impl Dataset<MnistItem> for Mnist {
    fn get(&self, index: usize) -> Result<MnistItem, DatasetError> {
        let mut pixels = [0u8; IMAGE_PIXELS];
        pixels.copy_from_slice(self.image(index));
        Ok(MnistItem {
            pixels,
            label: self.labels[index],
        })
    }

    fn len(&self) -> usize {
        self.labels.len()
    }
}

#[cfg(all(test, feature = "burn"))]
mod tests {
    use super::*;
    use crate::idx::tests::{idx_bytes, write};

    fn tiny(dir: &Path, prefix: &str, n: u32, gz: bool, dotted: bool) {
        let ext = if gz { ".gz" } else { "" };
        let sep = if dotted { '.' } else { '-' };
        let pixels: Vec<u8> = (0..n as usize * 784).map(|i| (i % 256) as u8).collect();
        let labels: Vec<u8> = (0..n as u8).map(|i| i % 10).collect();
        let (img, lab) = match prefix {
            "train" => ("train-images", "train-labels"),
            _ => ("t10k-images", "t10k-labels"),
        };
        write(
            dir,
            &format!("{img}{sep}idx3-ubyte{ext}"),
            &idx_bytes(8, &[n, 28, 28], &pixels),
        );
        write(
            dir,
            &format!("{lab}{sep}idx1-ubyte{ext}"),
            &idx_bytes(8, &[n], &labels),
        );
    }

    #[test]
    fn loads_both_naming_styles_plain_and_gzip() {
        for (gz, dotted) in [(false, false), (true, false), (false, true), (true, true)] {
            let dir = tempfile::tempdir().unwrap();
            tiny(dir.path(), "train", 12, gz, dotted);
            tiny(dir.path(), "test", 3, gz, dotted);
            let train = Mnist::load(Split::Train, Some(dir.path())).unwrap();
            let test = Mnist::load(Split::Test, Some(dir.path())).unwrap();
            assert_eq!((train.len(), test.len()), (12, 3));
            let item = train.get(11).unwrap();
            assert_eq!(item.label, 1);
            assert_eq!(item.pixels[0], ((11 * 784) % 256) as u8);
            assert_eq!(train.label_counts()[0], 2);
            assert_eq!(train.truncate(5).len(), 5);
        }
    }

    #[test]
    fn hold_out_splits_off_the_last_images() {
        let labels: Vec<u8> = (0..10).collect();
        let pixels: Vec<u8> = (0..10u8).flat_map(|i| [i; IMAGE_PIXELS]).collect();
        let data = Mnist::from_raw(pixels, labels);
        let (first, held) = data.hold_out(3);
        assert_eq!(first.labels(), &[0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(held.labels(), &[7, 8, 9]);
        assert_eq!(held.image(0)[IMAGE_PIXELS - 1], 7);
        let (none, all) = data.hold_out(20);
        assert_eq!((none.len(), all.len()), (0, 10));
    }

    #[test]
    fn counts_that_disagree_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "train-images-idx3-ubyte",
            &idx_bytes(8, &[2, 28, 28], &[0; 1568]),
        );
        write(
            dir.path(),
            "train-labels-idx1-ubyte",
            &idx_bytes(8, &[3], &[0, 1, 2]),
        );
        let msg = Mnist::load(Split::Train, Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("holds 2 images but") && msg.contains("holds 3 labels"),
            "{msg}"
        );
    }

    #[test]
    fn a_missing_file_lists_where_it_looked() {
        let dir = tempfile::tempdir().unwrap();
        let msg = Mnist::load(Split::Test, Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("t10k-images-idx3-ubyte"), "{msg}");
        assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
    }

    #[test]
    fn without_an_explicit_directory_the_shipped_copy_is_searched() {
        // Tests run in the crate's directory, which has no data/mnist of its own: the
        // relative ./data/mnist comes first (MNIST_DIR aside), the shipped copy last.
        let dirs: Vec<PathBuf> = search_dirs(None)
            .into_iter()
            .filter(|d| std::env::var_os(MNIST_DIR_ENV).is_none_or(|env| d.as_os_str() != env))
            .collect();
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../data/mnist")
            .canonicalize()
            .unwrap();
        assert_eq!(dirs, vec![PathBuf::from("data/mnist"), shipped]);
        assert_eq!(
            search_dirs(Some(Path::new("/x"))),
            vec![PathBuf::from("/x")]
        );
    }
}
