//! One driver for many runs: trains the lab's networks side by side, one per CPU thread, and
//! measures them as they train.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use web_time::Instant;

use burn::tensor::Device;
use mnist_bn_data::{Mnist, MnistBatch};
use mnist_bn_model::{MlpConfig, Net, NetConfig};
use serde::Serialize;

use super::gradients::{ics, landscape, weight_gradient_norms};
use super::measure::{EvalImages, inference};
use super::plan::LabOptions;
use super::progress::LabProgress;
use crate::TrainError;
use crate::learner::{Learner, TrainingConfig, seeded_model};

/// The lab's data: the training set, the same with 1/12 (at most 5,000 images) held out for
/// validation, and the test set.
#[derive(Debug)]
pub struct LabData {
    /// Every training image (what the lesson trains on).
    pub train: Mnist,
    /// The training images minus the held-out ones.
    pub fit: Mnist,
    /// The held-out training images (the last ones in file order).
    pub validation: Mnist,
    /// The test set.
    pub test: Mnist,
}

impl LabData {
    /// Holds out the last `train.len() / 12` training images (5,000 of MNIST's 60,000).
    pub fn new(train: Mnist, test: Mnist) -> Self {
        let (fit, validation) = train.hold_out((train.len() / 12).min(5000));
        Self {
            train,
            fit,
            validation,
            test,
        }
    }
}

/// Which images a run trains on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TrainOn {
    /// Every training image.
    All,
    /// The training images minus the validation ones.
    Fit,
}

/// Which images a run is measured on while it trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MeasureOn {
    /// The held-out training images.
    Validation,
    /// The test set.
    Test,
}

/// One network to train and measure: pure data, built by the experiments.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    /// Unique within its experiment: the setting and the network.
    pub name: String,
    /// The network.
    pub config: MlpConfig,
    /// Learning rate, batch size and the seed of the initial weights (twins share a seed).
    pub training: TrainingConfig,
    /// SGD steps.
    pub steps: usize,
    /// The images it trains on.
    pub train_on: TrainOn,
    /// Measure every this many steps (and at steps 0 and the last); 0: at the end only.
    pub measure_every: usize,
    /// The images it is measured on.
    pub measure_on: MeasureOn,
    /// Also record percentiles of the input to the first unit's activation in the last
    /// hidden layer, over the measurement images as one batch with batch statistics.
    pub probe: bool,
    /// Keep the trained network for the experiment's own analysis.
    pub keep_model: bool,
    /// Also record, before the first step, the norm of the loss's gradient with respect to
    /// each linear layer's weights on the first batch (see [`weight_gradient_norms`]).
    pub initial_gradients: bool,
    /// At every measurement, also measure the loss landscape along the gradient with these
    /// step sizes, on the first batch of the training images (see [`landscape`]); empty: not.
    pub landscape: Vec<f64>,
    /// At every measurement, also measure internal covariate shift with the lower layers'
    /// steps of this size, on the first batch of the training images (see [`ics`]).
    pub ics: Option<f64>,
}

impl Run {
    /// A run trained on every training image and measured once, at the end, on the test set;
    /// set the other fields with struct update syntax.
    pub(crate) fn new(
        name: String,
        config: MlpConfig,
        training: TrainingConfig,
        steps: usize,
    ) -> Self {
        Self {
            name,
            config,
            training,
            steps,
            train_on: TrainOn::All,
            measure_every: 0,
            measure_on: MeasureOn::Test,
            probe: false,
            keep_model: false,
            initial_gradients: false,
            landscape: Vec::new(),
            ics: None,
        }
    }
}

/// A measurement during training.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// SGD steps done.
    pub step: usize,
    /// Accuracy on the measurement images, batch norm on its running statistics.
    pub accuracy: f64,
    /// Mean training loss of the steps since the previous point (none at step 0).
    pub train_loss: Option<f64>,
    /// The 15th, 50th and 85th percentiles of the probed activation input, over the
    /// measurement images normalized as one batch (batch statistics, as in training).
    pub probe: Option<[f64; 3]>,
    /// The loss landscape along the gradient, when the run measures it: the range of the loss,
    /// the largest change of the gradient and the effective β-smoothness (see [`landscape`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub landscape: Option<[f64; 3]>,
    /// Internal covariate shift, when the run measures it: for each layer after the first, the
    /// ℓ2 distance and the cosine between its gradient before and after the layers below took
    /// their step (see [`ics`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ics: Option<Vec<[f64; 2]>>,
}

/// What a run gave.
#[derive(Debug, Serialize)]
pub struct Outcome {
    /// The run's name.
    pub name: String,
    /// The network.
    pub config: MlpConfig,
    /// The seed of its initial weights (the networks of a pair share it).
    pub seed: u64,
    /// Learning rate.
    pub lr: f64,
    /// Batch size.
    pub batch_size: usize,
    /// SGD steps asked for.
    pub steps: usize,
    /// The step whose loss was not finite, if any; training stopped there.
    pub diverged_at: Option<usize>,
    /// Mean of every step's training loss (for one epoch, what the lesson prints); not a
    /// number (`null`) when the run diverged.
    pub mean_loss: f64,
    /// Mean training loss of the last 100 steps (`null` when the run diverged).
    pub final_loss: f64,
    /// Test accuracy at the end, batch norm on its running statistics; a diverged network
    /// is scored as it is.
    pub test_accuracy: f64,
    /// Measurements during training.
    pub curve: Vec<Point>,
    /// Before the first step, the norm of the gradient of each linear layer's weights, from
    /// the input side (when the run asked for them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_gradients: Option<Vec<f64>>,
    /// Wall time of the run.
    pub seconds: f64,
    /// The trained network, when the run asked to keep it.
    #[serde(skip)]
    pub model: Option<Net>,
}

impl Outcome {
    /// What the run gave, in a line: its name, test accuracy, steps, divergence and time.
    fn progress_line(&self) -> String {
        let diverged = self
            .diverged_at
            .map_or(String::new(), |step| format!(", diverged at step {step}"));
        format!(
            "{}: test accuracy {:.2}% ({} steps{diverged}, {:.1} s)",
            self.name,
            100.0 * self.test_accuracy,
            self.steps,
            self.seconds
        )
    }
}

/// Trains and measures `runs` on `threads` threads, one run per thread at a time (each on a
/// one-thread rayon pool: these networks are too small for a second thread to pay), longest
/// first. Every run's initial weights are drawn first, one run after another from its seed,
/// so that results do not depend on the threads' timing; the measurement images are converted
/// once, for every run. Returns the outcomes in the order of `runs`, which should have passed
/// [`validate`] (the learner refuses them otherwise, but only once their turn comes).
/// `options` gives the threads, where the weights are drawn and the learners' tuning (of
/// which only SGD on the host applies: the lab's steps read every loss, gather batches on the
/// host and run one network per thread).
pub(crate) fn run_all(
    runs: &[Run],
    data: &LabData,
    device: &Device,
    options: &LabOptions,
    progress: &LabProgress,
) -> Result<Vec<Outcome>, TrainError> {
    let models: Vec<Mutex<Option<Net>>> = runs
        .iter()
        .map(|run| {
            let config = NetConfig::Mlp(run.config.clone());
            let init_device = options.init_device.as_ref();
            Mutex::new(Some(seeded_model(
                &config,
                run.training.seed,
                init_device,
                device,
            )))
        })
        .collect();
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_by(|&a, &b| cost(&runs[b]).total_cmp(&cost(&runs[a])));
    let test = EvalImages::new(&data.test, device);
    let validation = runs
        .iter()
        .any(|run| run.measure_on == MeasureOn::Validation)
        .then(|| EvalImages::new(&data.validation, device));
    let images = Images {
        test: &test,
        validation: validation.as_ref().unwrap_or(&test),
    };
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Result<Outcome, TrainError>>>> =
        runs.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..options.threads.clamp(1, runs.len().max(1)) {
            scope.spawn(|| {
                let work = || {
                    while let Some(&index) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let model = lock(&models[index]).take().expect("each run is taken once");
                        let learner = Learner::new(runs[index].training.clone(), device)
                            .with_tuning(options.tuning);
                        let outcome =
                            train_one(&runs[index], &learner, model, data, &images, progress);
                        *lock(&results[index]) = Some(outcome);
                    }
                };
                match rayon::ThreadPoolBuilder::new().num_threads(1).build() {
                    Ok(pool) => pool.install(work),
                    Err(_) => work(),
                }
            });
        }
    });
    results
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .expect("every run ran")
        })
        .collect()
}

/// Checks every run against the data, so that a lab fails before it trains anything.
pub(crate) fn validate(runs: &[Run], data: &LabData) -> Result<(), TrainError> {
    for run in runs {
        if run.measure_on == MeasureOn::Validation && data.validation.is_empty() {
            return Err(TrainError::Invalid(format!(
                "{}: no validation images: the lab holds out 1/12 of the training images, so \
                 it needs at least 12",
                run.name
            )));
        }
        run.training
            .validate(run.config.norm, train_set(run, data).len())
            .map_err(|e| TrainError::Invalid(format!("{}: {e}", run.name)))?;
    }
    Ok(())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A rough cost, to start the longest runs first: a fixed cost per step plus the arithmetic.
fn cost(run: &Run) -> f64 {
    let mut widths = vec![run.config.input_size];
    widths.extend(&run.config.hidden);
    widths.push(run.config.output_size);
    let weights: usize = widths.windows(2).map(|w| w[0] * w[1]).sum();
    run.steps as f64 * (2e5 + (run.training.batch_size * weights) as f64)
}

fn train_set<'a>(run: &Run, data: &'a LabData) -> &'a Mnist {
    match run.train_on {
        TrainOn::All => &data.train,
        TrainOn::Fit => &data.fit,
    }
}

/// The measurement images of an experiment's runs.
#[derive(Clone, Copy)]
struct Images<'a> {
    test: &'a EvalImages,
    validation: &'a EvalImages,
}

fn train_one(
    run: &Run,
    learner: &Learner,
    model: Net,
    data: &LabData,
    images: &Images<'_>,
    progress: &LabProgress,
) -> Result<Outcome, TrainError> {
    let started = Instant::now();
    let test = images.test;
    let measured = match run.measure_on {
        MeasureOn::Test => images.test,
        MeasureOn::Validation => images.validation,
    };
    let every = match run.measure_every {
        0 => run.steps,
        n => n,
    };
    // The batch the gradient measurements use: the run's first.
    let first_batch = (!run.landscape.is_empty() || run.ics.is_some()).then(|| {
        let data = train_set(run, data);
        let indices: Vec<usize> = (0..run.training.batch_size.min(data.len())).collect();
        MnistBatch::from_indices(data, &indices, learner.device())
    });
    let point = |step, model: &Net, train_loss| Point {
        step,
        accuracy: measured.accuracy(&inference(model)),
        train_loss,
        probe: run.probe.then(|| measured.probe(model)).flatten(),
        landscape: first_batch
            .as_ref()
            .filter(|_| !run.landscape.is_empty())
            .map(|batch| landscape(model, batch, &run.landscape, learner)),
        ics: run
            .ics
            .zip(first_batch.as_ref())
            .map(|(step, batch)| ics(model, batch, step, learner)),
    };
    let initial_gradients = run.initial_gradients.then(|| {
        weight_gradient_norms(
            &model,
            train_set(run, data),
            run.training.batch_size,
            learner,
        )
    });
    // Measured at step 0 only when measured during training (a test pass of a deep network
    // over 10,000 images costs as much as dozens of its steps).
    let mut curve = match run.measure_every {
        0 => Vec::new(),
        _ => vec![point(0, &model, None)],
    };
    let (mut window, mut window_steps, mut sum) = (0.0, 0usize, 0.0);
    let mut tail = VecDeque::with_capacity(100);
    let mut reported = 0;
    let (model, diverged_at) = learner.fit_steps(
        model,
        train_set(run, data),
        run.steps,
        |step, model, loss| {
            window += loss;
            window_steps += 1;
            sum += loss;
            if tail.len() == 100 {
                tail.pop_front();
            }
            tail.push_back(loss);
            if step % every == 0 || step == run.steps {
                curve.push(point(step, model, Some(window / window_steps as f64)));
                (window, window_steps) = (0.0, 0);
                progress.advance(step - reported);
                reported = step;
            }
        },
    )?;
    progress.advance(run.steps - reported);
    let (mean_loss, final_loss) = match diverged_at {
        Some(_) => (f64::NAN, f64::NAN),
        None => (
            sum / run.steps as f64,
            tail.iter().sum::<f64>() / tail.len().max(1) as f64,
        ),
    };
    let outcome = Outcome {
        name: run.name.clone(),
        config: run.config.clone(),
        seed: run.training.seed,
        lr: run.training.lr,
        batch_size: run.training.batch_size,
        steps: run.steps,
        diverged_at,
        mean_loss,
        final_loss,
        test_accuracy: test.accuracy(&inference(&model)),
        curve,
        initial_gradients,
        seconds: started.elapsed().as_secs_f64(),
        model: run.keep_model.then_some(model),
    };
    progress.finished(&outcome.progress_line());
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mnist_bn_data::IMAGE_PIXELS;

    #[test]
    fn longer_and_wider_runs_cost_more() {
        let run = |steps, hidden: Vec<usize>, batch| {
            Run::new(
                String::new(),
                MlpConfig::new(mnist_bn_model::Norm::None).with_hidden(hidden),
                TrainingConfig::new().with_batch_size(batch),
                steps,
            )
        };
        assert!(cost(&run(2000, vec![100], 60)) > cost(&run(1000, vec![100], 60)));
        assert!(cost(&run(1000, vec![512, 256], 64)) > cost(&run(1000, vec![100], 64)));
    }

    fn lab_data() -> LabData {
        use mnist_bn_data::Split;
        // 1,200 training images: 1,100 to fit, the last 100 held out; 97 test images, so that
        // a validation and a test accuracy cannot be equal by chance (k/100 against j/97).
        let train = Mnist::load(Split::Train, None).unwrap().truncate(1200);
        let test = Mnist::load(Split::Test, None).unwrap().truncate(97);
        LabData::new(train, test)
    }

    /// A grid-like run: trained on the images left after the held-out ones, measured on those.
    fn held_out_run(steps: usize) -> Run {
        Run {
            train_on: TrainOn::Fit,
            measure_on: MeasureOn::Validation,
            measure_every: 5,
            keep_model: true,
            ..Run::new(
                "held out".into(),
                MlpConfig::new(mnist_bn_model::Norm::None).with_hidden(vec![32]),
                TrainingConfig::new(),
                steps,
            )
        }
    }

    fn run_one(run: Run, data: &LabData, init: &Device) -> Outcome {
        let progress = LabProgress::new(crate::output::progress::ProgressMode::Quiet, "test", 0);
        let mut outcomes = run_all(
            &[run],
            data,
            &Device::flex(),
            &LabOptions::for_tests(init),
            &progress,
        )
        .unwrap();
        outcomes.remove(0)
    }

    #[test]
    fn the_validation_images_are_the_last_training_images_and_are_not_trained_on() {
        let data = lab_data();
        assert_eq!((data.fit.len(), data.validation.len()), (1100, 100));
        assert_eq!(
            data.fit.pixels(),
            &data.train.pixels()[..1100 * IMAGE_PIXELS]
        );
        assert_eq!(
            data.validation.pixels(),
            &data.train.pixels()[1100 * IMAGE_PIXELS..]
        );
        // 20 steps of 64 wrap past the end of the 1,100 images (18 batches an epoch): trained
        // on all 1,200, the 18th batch would hold validation images and the weights would differ.
        let (_generator, init) = crate::test_support::seeded_init_device();
        let outcome = run_one(held_out_run(20), &data, &init);
        let run = held_out_run(20);
        let learner = Learner::new(run.training.clone(), &Device::flex());
        let config = NetConfig::Mlp(run.config.clone());
        let fresh = seeded_model(&config, 0, Some(&init), &Device::flex());
        let (expected, _) = learner
            .fit_steps(fresh, &data.fit, 20, |_, _, _| {})
            .unwrap();
        let weights = |net: &Net| -> Vec<f32> {
            let mlp = net.as_mlp().unwrap();
            mlp.hidden[0]
                .linear
                .weight
                .val()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        assert_eq!(weights(outcome.model.as_ref().unwrap()), weights(&expected));
    }

    #[test]
    fn a_run_measured_on_validation_images_reports_its_test_accuracy_on_the_test_set() {
        use crate::evaluate::{TestMode, evaluate};
        let data = lab_data();
        let (_generator, init) = crate::test_support::seeded_init_device();
        let outcome = run_one(held_out_run(10), &data, &init);
        let model = outcome.model.as_ref().unwrap();
        let on = |images: &Mnist| {
            evaluate(model, images, 1000, TestMode::Eval, &Device::flex())
                .unwrap()
                .accuracy
        };
        assert_eq!(outcome.test_accuracy, on(&data.test));
        let last = outcome.curve.last().unwrap();
        assert_eq!((last.step, last.accuracy), (10, on(&data.validation)));
        assert_eq!(
            outcome.curve.iter().map(|p| p.step).collect::<Vec<_>>(),
            [0, 5, 10]
        );
    }
}
