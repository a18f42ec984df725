//! Batches: Burn's `Batcher` for MNIST items, and the order of an epoch's samples.

use burn::data::dataloader::batcher::Batcher;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::idx::IMAGE_PIXELS;
use crate::mnist::{Mnist, MnistItem};

/// A batch of images and their labels on a device.
#[derive(Debug, Clone)]
pub struct MnistBatch {
    /// Pixels as f32 in [0, 1] (pixel / 255, torchvision's `ToTensor`), `[batch, 784]`.
    pub images: Tensor<2>,
    /// The digits, `[batch]`.
    pub targets: Tensor<1, Int>,
}

impl MnistBatch {
    /// The images of `data` at `indices`, in that order, as a batch on `device`.
    ///
    /// # Panics
    ///
    /// Panics if an index is out of range.
    pub fn from_indices(data: &Mnist, indices: &[usize], device: &Device) -> Self {
        let pixels = indices.iter().flat_map(|&i| data.image(i).iter().copied());
        let labels = indices.iter().map(|&i| data.labels()[i]);
        make_batch(pixels, labels, indices.len(), device)
    }
}

/// Turns MNIST items into an [`MnistBatch`]; usable with Burn's `DataLoaderBuilder`.
#[derive(Debug, Clone, Copy, Default)]
pub struct MnistBatcher;

impl Batcher<MnistItem, MnistBatch> for MnistBatcher {
    fn batch(&self, items: Vec<MnistItem>, device: &Device) -> MnistBatch {
        let pixels = items.iter().flat_map(|item| item.pixels);
        let labels = items.iter().map(|item| item.label);
        make_batch(pixels, labels, items.len(), device)
    }
}

/// Scales a pixel like torchvision's `ToTensor`: `f32(pixel) / 255`.
#[inline]
pub fn pixel_to_f32(pixel: u8) -> f32 {
    f32::from(pixel) / 255.0
}

fn make_batch(
    pixels: impl Iterator<Item = u8>,
    labels: impl Iterator<Item = u8>,
    len: usize,
    device: &Device,
) -> MnistBatch {
    let images: Vec<f32> = pixels.map(pixel_to_f32).collect();
    let targets: Vec<i64> = labels.map(i64::from).collect();
    MnistBatch {
        images: Tensor::from_data(TensorData::new(images, [len, IMAGE_PIXELS]), device),
        targets: Tensor::from_data(TensorData::new(targets, [len]), device),
    }
}

/// The order in which an epoch visits the samples: file order without a seed (the lesson's
/// loader does not shuffle), or a permutation that depends only on `(seed, epoch)`.
pub fn epoch_order(len: usize, shuffle_seed: Option<u64>, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    if let Some(seed) = shuffle_seed {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(epoch as u64);
        order.shuffle(&mut rng);
    }
    order
}

/// A split uploaded to a device once: every image already scaled to f32 (`[n, 784]`, the same
/// values as [`pixel_to_f32`] gives on the host) and the labels (`[n]`). Batches are then
/// gathered on the device by index ([`Batches::on_device`]), so that a GPU gets a few hundred
/// bytes of indices per batch instead of 200 KB of pixels. It takes 4 bytes per pixel
/// (188 MB for the 60,000 training images).
#[derive(Debug, Clone)]
pub struct DeviceMnist {
    images: Tensor<2>,
    labels: Tensor<1, Int>,
    len: usize,
}

impl DeviceMnist {
    /// Uploads `data` to `device`.
    pub fn upload(data: &Mnist, device: &Device) -> Self {
        let all: Vec<usize> = (0..data.len()).collect();
        let MnistBatch { images, targets } = MnistBatch::from_indices(data, &all, device);
        Self {
            images,
            labels: targets,
            len: data.len(),
        }
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The images at `indices`, gathered on the device.
    fn batch(&self, indices: &[usize]) -> MnistBatch {
        let device = self.images.device();
        let indices: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
        let n = indices.len();
        let indices = Tensor::<1, Int>::from_data(TensorData::new(indices, [n]), &device);
        MnistBatch {
            images: self.images.clone().select(0, indices.clone()),
            targets: self.labels.clone().select(0, indices),
        }
    }
}

/// Where a pass's batches come from.
#[derive(Debug)]
enum Source<'a> {
    /// Built on the host and moved to the device one by one.
    Host(&'a Mnist, Device),
    /// Gathered on the device from an uploaded copy.
    Device(&'a DeviceMnist),
}

/// The batches of one pass over the data, in a given order: built on the host and moved to the
/// device one by one ([`Batches::new`]), or gathered on the device from a copy uploaded once
/// ([`Batches::on_device`]); the values are the same.
///
/// Batches hold `batch_size` images; the last one holds the rest (60,000 images make 937 full
/// batches and one of 32, as PyTorch's `DataLoader(drop_last=False)`).
#[derive(Debug)]
pub struct Batches<'a> {
    source: Source<'a>,
    order: Vec<usize>,
    batch_size: usize,
    next: usize,
}

impl<'a> Batches<'a> {
    /// Batches of `data` in `order` (see [`epoch_order`]).
    ///
    /// # Panics
    ///
    /// Panics if `batch_size` is zero or `order` names an image `data` does not have.
    pub fn new(data: &'a Mnist, order: Vec<usize>, batch_size: usize, device: &Device) -> Self {
        Self::from_source(
            Source::Host(data, device.clone()),
            data.len(),
            order,
            batch_size,
        )
    }

    /// Batches of an uploaded split in `order`, gathered on its device.
    ///
    /// # Panics
    ///
    /// Panics if `batch_size` is zero or `order` names an image `data` does not have.
    pub fn on_device(data: &'a DeviceMnist, order: Vec<usize>, batch_size: usize) -> Self {
        Self::from_source(Source::Device(data), data.len(), order, batch_size)
    }

    fn from_source(source: Source<'a>, len: usize, order: Vec<usize>, batch_size: usize) -> Self {
        assert!(batch_size > 0, "batch size must be positive");
        assert!(order.iter().all(|&i| i < len), "order out of range");
        Self {
            source,
            order,
            batch_size,
            next: 0,
        }
    }

    /// Number of batches in the pass.
    pub fn num_batches(&self) -> usize {
        self.order.len().div_ceil(self.batch_size)
    }
}

impl Iterator for Batches<'_> {
    type Item = MnistBatch;

    fn next(&mut self) -> Option<MnistBatch> {
        if self.next >= self.order.len() {
            return None;
        }
        let end = (self.next + self.batch_size).min(self.order.len());
        let indices = &self.order[self.next..end];
        self.next = end;
        Some(match &self.source {
            Source::Host(data, device) => MnistBatch::from_indices(data, indices, device),
            Source::Device(data) => data.batch(indices),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::data::dataset::Dataset;

    fn data(n: usize) -> Mnist {
        let pixels = (0..n * IMAGE_PIXELS).map(|i| (i % 256) as u8).collect();
        let labels = (0..n).map(|i| (i % 10) as u8).collect();
        Mnist::from_raw(pixels, labels)
    }

    #[test]
    fn batches_gathered_on_the_device_equal_those_built_on_the_host() {
        let device = Device::flex();
        let data = data(10);
        let uploaded = DeviceMnist::upload(&data, &device);
        assert_eq!(uploaded.len(), 10);
        let order = epoch_order(10, Some(3), 1);
        let host: Vec<_> = Batches::new(&data, order.clone(), 4, &device).collect();
        let gathered: Vec<_> = Batches::on_device(&uploaded, order, 4).collect();
        assert_eq!(host.len(), gathered.len());
        for (h, g) in host.iter().zip(&gathered) {
            assert_eq!(h.images.clone().into_data(), g.images.clone().into_data());
            assert_eq!(
                h.targets.clone().into_data().convert::<i64>(),
                g.targets.clone().into_data().convert::<i64>()
            );
        }
    }

    #[test]
    fn file_order_and_the_last_partial_batch_is_kept() {
        let device = Device::flex();
        let data = data(10);
        let batches: Vec<_> = Batches::new(&data, epoch_order(10, None, 0), 4, &device).collect();
        assert_eq!(batches.len(), 3);
        assert_eq!(batches[2].images.dims(), [2, 784]);
        let targets = batches[1].targets.clone().into_data().convert::<i64>();
        assert_eq!(targets.try_to_vec::<i64>().unwrap(), vec![4, 5, 6, 7]);
        assert_eq!(
            Batches::new(&data, epoch_order(60_000 / 6000, None, 0), 64, &device).num_batches(),
            1
        );
        assert_eq!(60_000usize.div_ceil(64), 938);
    }

    #[test]
    fn pixels_are_scaled_like_to_tensor() {
        assert_eq!(pixel_to_f32(0), 0.0);
        assert_eq!(pixel_to_f32(255), 1.0);
        assert_eq!(pixel_to_f32(128), 128.0f32 / 255.0);
    }

    #[test]
    fn the_batcher_and_the_fast_path_give_the_same_batches() {
        let device = Device::flex();
        let data = data(7);
        let order = epoch_order(7, Some(3), 1);
        let fast: Vec<_> = Batches::new(&data, order.clone(), 3, &device).collect();
        for (chunk, batch) in order.chunks(3).zip(fast) {
            let items = chunk.iter().map(|&i| data.get(i).unwrap()).collect();
            let slow = MnistBatcher.batch(items, &device);
            assert_eq!(slow.images.into_data(), batch.images.into_data());
            assert_eq!(slow.targets.into_data(), batch.targets.into_data());
        }
    }

    #[test]
    fn shuffling_is_a_seeded_permutation_that_changes_per_epoch() {
        let a = epoch_order(100, Some(7), 0);
        assert_eq!(a, epoch_order(100, Some(7), 0));
        assert_ne!(a, epoch_order(100, Some(7), 1));
        assert_ne!(a, epoch_order(100, Some(8), 0));
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_eq!(epoch_order(5, None, 3), vec![0, 1, 2, 3, 4]);
    }
}
