//! One lab run trained a few steps at a time ([`LiveRun`]): the lab's driver runs each to its
//! end on a thread of its own; the web page's playground advances two of them between
//! answering the page. Either way a run gives the same numbers: its training is
//! [`Learner::steps`], and its measurements happen at the same steps.

use std::collections::VecDeque;

use burn::tensor::{Device, read_sync};
use mnist_bn_data::{Mnist, MnistBatch};
use mnist_bn_model::{Net, NetConfig};
use web_time::Instant;

use super::gradients::{ics, landscape, weight_gradient_norms};
use super::measure::{EvalImages, inference};
use super::run::{LabData, MeasureOn, Outcome, Point, Run, TrainOn};
use crate::TrainError;
use crate::learner::{DeviceTuning, Learner, Steps, seeded_model};

/// The images a lab's runs are measured on, converted once for all of them and kept on the
/// device.
pub struct MeasureImages {
    test: EvalImages,
    validation: Option<EvalImages>,
}

impl std::fmt::Debug for MeasureImages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeasureImages").finish_non_exhaustive()
    }
}

impl MeasureImages {
    /// The test images, and the validation images when one of `runs` is measured on them.
    pub fn new(data: &LabData, runs: &[Run], device: &Device) -> Self {
        let validation = runs
            .iter()
            .any(|run| run.measure_on == MeasureOn::Validation)
            .then(|| EvalImages::new(&data.validation, device));
        Self {
            test: EvalImages::new(&data.test, device),
            validation,
        }
    }

    fn of(&self, on: MeasureOn) -> &EvalImages {
        match on {
            MeasureOn::Test => &self.test,
            MeasureOn::Validation => self.validation.as_ref().unwrap_or(&self.test),
        }
    }
}

/// The images `run` trains on.
pub(super) fn train_set<'a>(run: &Run, data: &'a LabData) -> &'a Mnist {
    match run.train_on {
        TrainOn::All => &data.train,
        TrainOn::Fit => &data.fit,
    }
}

/// A lab run in progress: its network, its steps and what it has measured so far.
pub struct LiveRun {
    run: Run,
    learner: Learner,
    steps: Steps,
    /// The batch the gradient measurements use: the run's first.
    first_batch: Option<MnistBatch>,
    initial_gradients: Option<Vec<f64>>,
    curve: Vec<Point>,
    /// Steps between measurements.
    every: usize,
    window: (f64, usize),
    sum: f64,
    tail: VecDeque<f64>,
    seconds: f64,
}

impl std::fmt::Debug for LiveRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveRun")
            .field("name", &self.run.name)
            .field("steps", &self.steps)
            .finish_non_exhaustive()
    }
}

impl LiveRun {
    /// `run` with its seeded network ([`seeded_model`], drawn on `init_device` when given) on
    /// `device`: the network is drawn now, and measured at step 0 (when the run measures during
    /// training) by the first [`LiveRun::advance`].
    pub fn start(
        run: Run,
        data: &LabData,
        tuning: DeviceTuning,
        init_device: Option<&Device>,
        device: &Device,
    ) -> Result<Self, TrainError> {
        let config = NetConfig::Mlp(run.config.clone());
        let model = seeded_model(&config, run.training.seed, init_device, device);
        Self::with_model(run, model, data, tuning, device)
    }

    /// `run` with `model` as its initial network (the driver draws every run's network before
    /// any trains).
    pub(super) fn with_model(
        run: Run,
        model: Net,
        data: &LabData,
        tuning: DeviceTuning,
        device: &Device,
    ) -> Result<Self, TrainError> {
        let started = Instant::now();
        let learner = Learner::new(run.training.clone(), device).with_tuning(tuning);
        let train = train_set(&run, data);
        let first_batch = (!run.landscape.is_empty() || run.ics.is_some()).then(|| {
            let indices: Vec<usize> = (0..run.training.batch_size.min(train.len())).collect();
            MnistBatch::from_indices(train, &indices, learner.device())
        });
        let initial_gradients = run
            .initial_gradients
            .then(|| weight_gradient_norms(&model, train, run.training.batch_size, &learner));
        let every = match run.measure_every {
            0 => run.steps,
            n => n,
        };
        let steps = learner.steps(model, train.len(), run.steps)?;
        let mut live = Self {
            learner,
            steps,
            first_batch,
            initial_gradients,
            curve: Vec::new(),
            every,
            window: (0.0, 0),
            sum: 0.0,
            tail: VecDeque::with_capacity(100),
            seconds: 0.0,
            run,
        };
        live.seconds = started.elapsed().as_secs_f64();
        Ok(live)
    }

    /// Takes up to `max` more steps on `data` (the lab data the run started with), measuring
    /// the network at its measurement steps; returns each step's loss. The last loss is not
    /// finite when the run diverged there; the run then ends.
    pub fn advance(&mut self, max: usize, data: &LabData, images: &MeasureImages) -> Vec<f64> {
        read_sync(self.advance_async(max, data, images))
    }

    /// [`LiveRun::advance`], reading without blocking: what a browser's WebGPU device needs.
    /// (The gradient measurements, `landscape` and `ics`, still read synchronously.)
    pub async fn advance_async(
        &mut self,
        max: usize,
        data: &LabData,
        images: &MeasureImages,
    ) -> Vec<f64> {
        let started = Instant::now();
        // Measured at step 0 only when measured during training (a test pass of a deep network
        // over 10,000 images costs as much as dozens of its steps), before the first step.
        if self.run.measure_every != 0 && self.curve.is_empty() {
            let point = self.point(images, None).await;
            self.curve.push(point);
        }
        let train = train_set(&self.run, data);
        let mut losses = Vec::new();
        while losses.len() < max {
            let Some(loss) = self.steps.step_async(&self.learner, train).await else {
                break;
            };
            losses.push(loss);
            if !loss.is_finite() {
                break;
            }
            self.window = (self.window.0 + loss, self.window.1 + 1);
            self.sum += loss;
            if self.tail.len() == 100 {
                self.tail.pop_front();
            }
            self.tail.push_back(loss);
            let step = self.steps.done();
            if step.is_multiple_of(self.every) || step == self.run.steps {
                let train_loss = self.window.0 / self.window.1 as f64;
                let point = self.point(images, Some(train_loss)).await;
                self.curve.push(point);
                self.window = (0.0, 0);
            }
        }
        self.seconds += started.elapsed().as_secs_f64();
        losses
    }

    async fn point(&self, images: &MeasureImages, train_loss: Option<f64>) -> Point {
        let model = self.steps.model();
        let measured = images.of(self.run.measure_on);
        let batch = self.first_batch.as_ref();
        let probe = match self.run.probe {
            Some(probe) => measured.probe_async(model, probe).await,
            None => None,
        };
        Point {
            step: self.steps.done(),
            accuracy: measured.accuracy_async(&inference(model)).await,
            train_loss,
            probe,
            landscape: batch
                .filter(|_| !self.run.landscape.is_empty())
                .map(|b| landscape(model, b, &self.run.landscape, &self.learner)),
            ics: self
                .run
                .ics
                .zip(batch)
                .map(|(step, b)| ics(model, b, step, &self.learner)),
        }
    }

    /// The run.
    pub fn run(&self) -> &Run {
        &self.run
    }

    /// Steps taken (counting one whose loss was not finite).
    pub fn done(&self) -> usize {
        self.steps.done()
    }

    /// Steps between measurements.
    pub fn measure_every(&self) -> usize {
        self.every
    }

    /// Whether every step is taken or the run diverged.
    pub fn finished(&self) -> bool {
        self.steps.finished()
    }

    /// The step whose loss was not finite, if one was.
    pub fn diverged_at(&self) -> Option<usize> {
        self.steps.diverged_at()
    }

    /// The measurements so far.
    pub fn curve(&self) -> &[Point] {
        &self.curve
    }

    /// The network now.
    pub fn model(&self) -> &Net {
        self.steps.model()
    }

    /// Seconds spent training and measuring so far.
    pub fn seconds(&self) -> f64 {
        self.seconds
    }

    /// What the run gave: its test accuracy is measured now, on the network as it is (a
    /// diverged one is scored as it is).
    pub fn finish(self, images: &MeasureImages) -> Outcome {
        let started = Instant::now();
        let (model, diverged_at) = self.steps.finish();
        let (mean_loss, final_loss) = match diverged_at {
            Some(_) => (f64::NAN, f64::NAN),
            None => (
                self.sum / self.run.steps as f64,
                self.tail.iter().sum::<f64>() / self.tail.len().max(1) as f64,
            ),
        };
        let test_accuracy = images.test.accuracy(&inference(&model));
        let run = self.run;
        Outcome {
            name: run.name,
            config: run.config,
            seed: run.training.seed,
            lr: run.training.lr,
            batch_size: run.training.batch_size,
            steps: run.steps,
            diverged_at,
            mean_loss,
            final_loss,
            test_accuracy,
            curve: self.curve,
            initial_gradients: self.initial_gradients,
            seconds: self.seconds + started.elapsed().as_secs_f64(),
            model: run.keep_model.then_some(model),
        }
    }
}
