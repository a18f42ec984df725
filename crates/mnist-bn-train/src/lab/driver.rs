//! One driver for many runs: trains the lab's networks side by side, one per CPU thread, and
//! measures them as they train.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::tensor::Device;
use mnist_bn_model::{Net, NetConfig};

use super::live::{LiveRun, MeasureImages, train_set};
use super::plan::LabOptions;
use super::progress::LabProgress;
use super::run::{LabData, MeasureOn, Outcome, Run};
use crate::TrainError;
use crate::learner::seeded_model;
use crate::output::progress::ProgressMode;

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
    let images = MeasureImages::new(data, runs, device);
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Result<Outcome, TrainError>>>> =
        runs.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..options.threads.clamp(1, runs.len().max(1)) {
            scope.spawn(|| {
                let work = || {
                    while let Some(&index) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let model = lock(&models[index]).take().expect("each run is taken once");
                        let run = runs[index].clone();
                        let outcome =
                            train_one(run, model, data, &images, device, options, progress);
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

/// Trains `runs` on `device`, side by side on `options.threads` threads, and returns what each
/// gave, in order: the lab's driver for runs made outside an experiment (the web page's
/// playground checks its numbers against it). The runs are validated first; nothing is shown
/// or written.
pub fn train_runs(
    runs: &[Run],
    data: &LabData,
    device: &Device,
    options: &LabOptions,
) -> Result<Vec<Outcome>, TrainError> {
    validate(runs, data)?;
    let progress = LabProgress::new(ProgressMode::Quiet, "runs", 0);
    run_all(runs, data, device, options, &progress)
}

/// Checks every run against the data, so that a lab fails before it trains anything.
pub fn validate(runs: &[Run], data: &LabData) -> Result<(), TrainError> {
    for run in runs {
        if run.measure_on == MeasureOn::Validation && data.validation.is_empty() {
            return Err(TrainError::Invalid(format!(
                "{}: no validation images: the lab holds out 1/12 of the training images, so \
                 it needs at least 12",
                run.name
            )));
        }
        if let Some(probe) = run.probe {
            probe
                .check(&run.config)
                .map_err(|e| TrainError::Invalid(format!("{}: {e}", run.name)))?;
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

/// One run to its end, showing its progress at each measurement.
fn train_one(
    run: Run,
    model: Net,
    data: &LabData,
    images: &MeasureImages,
    device: &Device,
    options: &LabOptions,
    progress: &LabProgress,
) -> Result<Outcome, TrainError> {
    let mut live = LiveRun::with_model(run, model, data, options.tuning, device)?;
    let mut reported = 0;
    while !live.finished() {
        live.advance(live.measure_every(), data, images);
        progress.advance(live.done() - reported);
        reported = live.done();
    }
    progress.advance(live.run().steps - reported);
    let outcome = live.finish(images);
    progress.finished(&outcome.progress_line());
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::run::TrainOn;
    use crate::learner::{Learner, TrainingConfig};
    use mnist_bn_data::{IMAGE_PIXELS, Mnist};
    use mnist_bn_model::MlpConfig;

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
