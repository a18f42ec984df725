//! What the page's worker holds: the two lesson models (shipped weights at first, then the
//! page's own), the training data, and a training run advanced a few batches at a time so that
//! the worker can answer the page between them. Plain Rust, tested natively; `bindings.rs`
//! hands it to JavaScript.

use std::path::Path;
use std::sync::Arc;

use burn::nn::loss::CrossEntropyLoss;
use burn::optim::ModuleOptimizer;
use burn::tensor::{Device, read_sync};
use mnist_bn_data::{IMAGE_PIXELS, Mnist, MnistBatch, NUM_CLASSES, decode_images, decode_labels};
use mnist_bn_model::{Net, NetConfig};
use mnist_bn_train::{
    Learner, ModelSpec, TestMode, TrainingConfig, logits_in_async, model_from_bytes,
    predict_in_async, seeded_model,
};
use web_time::Instant;

use crate::error::WebError;
use crate::playground::{Playground, Settings};

/// The lesson's two models, in the order the page shows them.
pub const MODEL_NAMES: [&str; 2] = ["batchnorm", "plain"];

/// One model's answer for a drawn digit.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The digit as the models see it: 28×28, white on black (what `predict` makes of a file).
    pub pixels: [u8; IMAGE_PIXELS],
    /// The batch-norm model on its running statistics (eval mode).
    pub batchnorm_eval: [f32; NUM_CLASSES],
    /// The batch-norm model in train mode on this one image: batch statistics of a batch of
    /// one, so every image gets the same answer.
    pub batchnorm_train: [f32; NUM_CLASSES],
    /// The model without batch norm.
    pub plain: [f32; NUM_CLASSES],
}

/// Where a training run stands.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Batches trained (each by both models), over all epochs.
    pub batches_done: usize,
    /// Batches the run will train.
    pub batches_total: usize,
    /// The epoch of the next batch, from 1 (the last epoch once done).
    pub epoch: usize,
    /// Images each model has trained on, per second of training.
    pub images_per_sec: f64,
}

/// A training run: both models from the same seed as `mnist-bn run`'s, stepped on the same
/// batches in turn.
struct Run {
    learner: Learner,
    loss_fn: CrossEntropyLoss,
    optims: [ModuleOptimizer; 2],
    data: Arc<Mnist>,
    order: Vec<usize>,
    batches_per_epoch: usize,
    batches_total: usize,
    done: usize,
    images: usize,
    seconds: f64,
}

/// The worker's state.
#[derive(Debug)]
pub struct Session {
    device: Device,
    /// Where fresh weights are drawn before they move to `device`: flex, so that every device
    /// starts from the weights the CPU build draws (`None` when `device` is flex).
    init_device: Option<Device>,
    backend: String,
    models: [Net; 2],
    trained: bool,
    train_data: Option<Arc<Mnist>>,
    test_data: Option<Mnist>,
    playground: Option<Playground>,
    run: Option<Run>,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run")
            .field("batches_done", &self.done)
            .field("batches_total", &self.batches_total)
            .finish_non_exhaustive()
    }
}

/// One split of MNIST from the bytes of its gzip IDX files, named in errors as the page fetches
/// them (`{prefix}-images-idx3-ubyte.gz`); `what` names the split in a count mismatch.
fn decode_split(images: &[u8], labels: &[u8], prefix: &str, what: &str) -> Result<Mnist, WebError> {
    let images = decode_images(
        images,
        true,
        Path::new(&format!("{prefix}-images-idx3-ubyte.gz")),
    )?;
    let labels = decode_labels(
        labels,
        true,
        Path::new(&format!("{prefix}-labels-idx1-ubyte.gz")),
    )?;
    if images.count != labels.len() {
        return Err(WebError::Invalid(format!(
            "the {what} images ({}) and labels ({}) disagree",
            images.count,
            labels.len()
        )));
    }
    Ok(Mnist::from_raw(images.pixels, labels))
}

fn lesson_config(index: usize) -> NetConfig {
    ModelSpec::parse(MODEL_NAMES[index])
        .expect("a lesson model")
        .config
}

impl Session {
    /// A session answering with the shipped weights (burnpack bytes of `batchnorm.bpk` and
    /// `plain.bpk`), on Burn's CPU backend.
    pub fn new(batchnorm: Vec<u8>, plain: Vec<u8>) -> Result<Self, WebError> {
        Self::on_device(
            batchnorm,
            plain,
            Device::flex(),
            "CPU (WebAssembly, Burn's flex)",
        )
    }

    /// A session on `device` (a browser's WebGPU device, say), named `backend` for the page;
    /// fresh weights are still drawn on flex, so every device starts where the CPU build does.
    pub fn on_device(
        batchnorm: Vec<u8>,
        plain: Vec<u8>,
        device: Device,
        backend: &str,
    ) -> Result<Self, WebError> {
        let flex = Device::flex();
        let init_device = (device != flex).then_some(flex);
        let load = |i: usize, bytes: Vec<u8>| {
            let name = format!("pretrained/{}.bpk", MODEL_NAMES[i]);
            model_from_bytes(&lesson_config(i), bytes, &device, Path::new(&name))
        };
        Ok(Self {
            models: [load(0, batchnorm)?, load(1, plain)?],
            device,
            init_device,
            backend: backend.to_string(),
            trained: false,
            train_data: None,
            test_data: None,
            playground: None,
            run: None,
        })
    }

    /// Decodes the training set from the bytes of its gzip IDX files; returns its size.
    pub fn set_training_data(&mut self, images: &[u8], labels: &[u8]) -> Result<usize, WebError> {
        let data = decode_split(images, labels, "train", "training")?;
        let len = data.len();
        self.train_data = Some(Arc::new(data));
        self.playground = None;
        Ok(len)
    }

    /// Decodes the test set from the bytes of its gzip IDX files (what the playground
    /// measures on); returns its size.
    pub fn set_test_data(&mut self, images: &[u8], labels: &[u8]) -> Result<usize, WebError> {
        let data = decode_split(images, labels, "t10k", "test")?;
        let len = data.len();
        self.test_data = Some(data);
        self.playground = None;
        Ok(len)
    }

    /// Starts the playground's two networks with `settings` (their weights drawn on the
    /// session's device, seeded like `mnist-bn lab`'s); returns the steps the run will take.
    pub fn playground_start(&mut self, settings: &Settings) -> Result<usize, WebError> {
        if self.playground.is_none() {
            let (Some(train), Some(test)) = (&self.train_data, &self.test_data) else {
                return Err(WebError::Invalid(
                    "the training and test images are not loaded yet".into(),
                ));
            };
            let train = Mnist::clone(train);
            self.playground = Some(Playground::new(train, test.clone(), &self.device));
        }
        let playground = self.playground.as_mut().expect("made above");
        playground.start(settings, self.init_device.as_ref())
    }

    /// The playground's run, if one was started.
    pub fn playground(&mut self) -> Result<&mut Playground, WebError> {
        self.playground
            .as_mut()
            .ok_or_else(|| WebError::Invalid("no playground run; start one".into()))
    }

    /// Starts training both models afresh (seeded like `mnist-bn run --seed SEED`) on the
    /// first `limit` training images (all of them for 0) for `epochs` epochs, with the
    /// lesson's recipe; returns the number of batches the run will take.
    pub fn start(&mut self, epochs: usize, limit: usize, seed: u64) -> Result<usize, WebError> {
        let Some(data) = &self.train_data else {
            return Err(WebError::Invalid("no training data yet".into()));
        };
        // The first `limit` images, by index: the data set is not copied.
        let len = if limit == 0 {
            data.len()
        } else {
            limit.min(data.len())
        };
        let config = TrainingConfig::new().with_epochs(epochs).with_seed(seed);
        for i in 0..MODEL_NAMES.len() {
            config.validate(lesson_config(i).norm(), len)?;
        }
        let learner = Learner::new(config.clone(), &self.device);
        self.models = [0, 1].map(|i| {
            learner.training_model(seeded_model(
                &lesson_config(i),
                seed,
                self.init_device.as_ref(),
                &self.device,
            ))
        });
        self.trained = true;
        let batches_per_epoch = len.div_ceil(config.batch_size);
        self.run = Some(Run {
            loss_fn: CrossEntropyLoss::new(None, learner.device()),
            optims: [learner.optimizer(), learner.optimizer()],
            learner,
            order: (0..len).collect(),
            data: data.clone(),
            batches_per_epoch,
            batches_total: batches_per_epoch * epochs,
            done: 0,
            images: 0,
            seconds: 0.0,
        });
        Ok(batches_per_epoch * epochs)
    }

    /// Trains up to `batches` more batches, each by the batch-norm model and then by the plain
    /// one; returns their losses as `[batchnorm, plain]` pairs (fewer when the run ends). A
    /// loss that is not finite ends the run with an error naming the model, epoch and batch.
    pub fn train(&mut self, batches: usize) -> Result<Vec<[f64; 2]>, WebError> {
        read_sync(self.train_async(batches))
    }

    /// [`Session::train`], reading the losses without blocking (a browser's WebGPU device).
    pub async fn train_async(&mut self, batches: usize) -> Result<Vec<[f64; 2]>, WebError> {
        let Some(run) = &mut self.run else {
            return Err(WebError::Invalid("no training run; start one".into()));
        };
        let started = Instant::now();
        let mut losses = Vec::new();
        let batch_size = run.learner.config().batch_size;
        while losses.len() < batches && run.done < run.batches_total {
            let in_epoch = run.done % run.batches_per_epoch;
            let indices = &run.order
                [in_epoch * batch_size..((in_epoch + 1) * batch_size).min(run.order.len())];
            let batch = MnistBatch::from_indices(&run.data, indices, run.learner.device());
            let mut pair = [0.0; 2];
            for (i, loss) in pair.iter_mut().enumerate() {
                let model = self.models[i].clone();
                let (model, value) = run
                    .learner
                    .step_async(model, &mut run.optims[i], &run.loss_fn, batch.clone())
                    .await;
                self.models[i] = model;
                if !value.is_finite() {
                    let (epoch, batch) = (run.done / run.batches_per_epoch + 1, in_epoch + 1);
                    self.run = None;
                    return Err(WebError::Invalid(format!(
                        "the {} model diverged at epoch {epoch}, batch {batch} (loss {value})",
                        MODEL_NAMES[i]
                    )));
                }
                *loss = value;
            }
            losses.push(pair);
            run.done += 1;
            run.images += indices.len();
        }
        run.seconds += started.elapsed().as_secs_f64();
        Ok(losses)
    }

    /// Where the run stands, if one was started.
    pub fn progress(&self) -> Option<Progress> {
        let run = self.run.as_ref()?;
        Some(Progress {
            batches_done: run.done,
            batches_total: run.batches_total,
            epoch: (run.done.min(run.batches_total - 1)) / run.batches_per_epoch + 1,
            images_per_sec: if run.seconds > 0.0 {
                run.images as f64 / run.seconds
            } else {
                0.0
            },
        })
    }

    /// Which backend the session runs on, as the page shows it.
    pub fn backend(&self) -> &str {
        &self.backend
    }

    /// Whether the models answering are the page's own (a run was started) rather than the
    /// shipped ones.
    pub fn trained(&self) -> bool {
        self.trained
    }

    /// What the models make of a grey picture (`width × height`, 0 black to 255 white, any
    /// size, dark on light or light on dark), converted like `mnist-bn predict` converts a
    /// file; `None` when the sizes disagree.
    pub fn predict(&self, width: u32, height: u32, grey: Vec<u8>) -> Option<Prediction> {
        read_sync(self.predict_async(width, height, grey))
    }

    /// [`Session::predict`], reading without blocking (a browser's WebGPU device).
    pub async fn predict_async(
        &self,
        width: u32,
        height: u32,
        grey: Vec<u8>,
    ) -> Option<Prediction> {
        let pixels = mnist_bn_data::digit_from_grey(width, height, grey)?;
        let one = async |i: usize, mode| {
            predict_in_async(&self.models[i], &[pixels], mode, &self.device).await[0]
        };
        Some(Prediction {
            pixels,
            batchnorm_eval: one(0, TestMode::Eval).await,
            // A batch of one leaves the running statistics as they are.
            batchnorm_train: one(0, TestMode::Train).await,
            plain: one(1, TestMode::Eval).await,
        })
    }

    /// The logits of model `name` in eval mode for images of 784 pixels each (0–255, white
    /// on black): what the browser test compares with the native build's.
    pub fn logits(&self, name: &str, pixels: &[u8]) -> Result<Vec<f32>, WebError> {
        read_sync(self.logits_async(name, pixels))
    }

    /// [`Session::logits`], reading without blocking (a browser's WebGPU device).
    pub async fn logits_async(&self, name: &str, pixels: &[u8]) -> Result<Vec<f32>, WebError> {
        let index = MODEL_NAMES
            .iter()
            .position(|&n| n == name)
            .ok_or_else(|| WebError::Invalid(format!("no model named {name:?}")))?;
        if pixels.is_empty() || !pixels.len().is_multiple_of(IMAGE_PIXELS) {
            return Err(WebError::Invalid(format!(
                "{} bytes are not whole images of {IMAGE_PIXELS} pixels",
                pixels.len()
            )));
        }
        let images: Vec<[u8; IMAGE_PIXELS]> = pixels
            .chunks_exact(IMAGE_PIXELS)
            .map(|c| c.try_into().expect("784 pixels"))
            .collect();
        let logits =
            logits_in_async(&self.models[index], &images, TestMode::Eval, &self.device).await;
        Ok(logits.into_iter().flatten().collect())
    }
}
