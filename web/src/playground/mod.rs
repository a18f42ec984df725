//! The playground: two of the lab's runs (networks A and B on shared [`Settings`]) trained
//! step by step in turn, as the lab's driver trains them ([`LiveRun`]), so that the page
//! shows a setting's numbers as `mnist-bn lab` computes them; then each tested in train mode on
//! test batches of several sizes against eval mode.

mod presets;
mod settings;

pub use presets::{GRID_LRS, GRID_STDS, Preset, presets};
pub use settings::{ActivationChoice, InitChoice, NormChoice, Settings};

use burn::tensor::{Device, read_sync};
use mnist_bn_data::Mnist;
use mnist_bn_train::lab::{LabData, LiveRun, MeasureImages, Point};
use mnist_bn_train::{DeviceTuning, TestMode, test_pass_async};
use serde::Serialize;

use crate::error::WebError;

/// The test batch sizes of the pitfall's train-mode passes.
pub const PITFALL_BATCHES: [usize; 5] = [1, 2, 4, 16, 64];

/// A measurement of network `net` (0 for A, 1 for B).
#[derive(Debug, Clone, Serialize)]
pub struct NetPoint {
    /// 0 for A, 1 for B.
    pub net: usize,
    /// The measurement, as the lab records it.
    #[serde(flatten)]
    pub point: Point,
}

/// What a call to [`Playground::train`] did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tick {
    /// Each step's losses, A then B; `None` once a network has stopped (a loss that is not
    /// finite is `null` in JSON too).
    pub losses: Vec<[Option<f64>; 2]>,
    /// The measurements taken.
    pub points: Vec<NetPoint>,
    /// Steps done (the furthest of the two).
    pub done: usize,
    /// Steps of the run.
    pub total: usize,
    /// The step at which each network diverged, if it did.
    pub diverged: [Option<usize>; 2],
    /// Training images per second, both networks together.
    pub images_per_sec: f64,
}

/// The test accuracy of one network in train mode on test batches of [`PITFALL_BATCHES`],
/// and in eval mode.
#[derive(Debug, Clone, Serialize)]
pub struct PitfallNet {
    /// Train mode, one accuracy per batch size of [`PITFALL_BATCHES`].
    pub train: Vec<f64>,
    /// Eval mode (running statistics).
    pub eval: f64,
}

struct Live {
    runs: [LiveRun; 2],
    images: MeasureImages,
    /// Each network's measurements already handed out.
    reported: [usize; 2],
}

/// The playground's state: the lab's data and, once started, the two runs.
pub struct Playground {
    data: LabData,
    device: Device,
    live: Option<Live>,
}

impl std::fmt::Debug for Playground {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Playground")
            .field("running", &self.live.is_some())
            .finish_non_exhaustive()
    }
}

impl Playground {
    /// The lab's data (the last 1/12 of `train`, at most 5,000 images, held out) on `device`.
    pub fn new(train: Mnist, test: Mnist, device: &Device) -> Self {
        Self {
            data: LabData::new(train, test),
            device: device.clone(),
            live: None,
        }
    }

    /// The lab's data.
    pub fn data(&self) -> &LabData {
        &self.data
    }

    /// Starts A and B afresh with `settings`, drawing their seeded weights (on `init_device`
    /// when given, as the lab's `--init-device`); returns the steps the run will take.
    pub fn start(
        &mut self,
        settings: &Settings,
        init_device: Option<&Device>,
    ) -> Result<usize, WebError> {
        settings.validate()?;
        let runs = settings.runs();
        mnist_bn_train::lab::validate(&runs, &self.data)?;
        self.live = None;
        let images = MeasureImages::new(&self.data, &runs, &self.device);
        let [a, b] = runs;
        let start = |run| {
            LiveRun::start(
                run,
                &self.data,
                DeviceTuning::default(),
                init_device,
                &self.device,
            )
        };
        let runs = [start(a)?, start(b)?];
        self.live = Some(Live {
            runs,
            images,
            reported: [0; 2],
        });
        Ok(settings.steps)
    }

    /// Takes up to `steps` more steps of each network, A then B at each step (a network that
    /// has stopped sits out).
    pub fn train(&mut self, steps: usize) -> Result<Tick, WebError> {
        read_sync(self.train_async(steps))
    }

    /// [`Playground::train`], reading without blocking (a browser's WebGPU device).
    pub async fn train_async(&mut self, steps: usize) -> Result<Tick, WebError> {
        let Some(live) = &mut self.live else {
            return Err(WebError::Invalid("no playground run; start one".into()));
        };
        let mut tick = Tick {
            losses: Vec::new(),
            points: Vec::new(),
            done: 0,
            total: live.runs[0].run().steps,
            diverged: [None; 2],
            images_per_sec: 0.0,
        };
        for _ in 0..steps {
            if live.runs.iter().all(LiveRun::finished) {
                break;
            }
            let mut pair = [None; 2];
            for (loss, run) in pair.iter_mut().zip(&mut live.runs) {
                let losses = run.advance_async(1, &self.data, &live.images).await;
                *loss = losses.first().copied();
            }
            tick.losses.push(pair);
        }
        for (net, run) in live.runs.iter().enumerate() {
            let new = &run.curve()[live.reported[net]..];
            tick.points.extend(new.iter().map(|p| NetPoint {
                net,
                point: p.clone(),
            }));
            live.reported[net] += new.len();
            tick.diverged[net] = run.diverged_at();
        }
        tick.done = live.runs.iter().map(LiveRun::done).max().unwrap_or(0);
        // Images per step counted as a whole batch's, as before the epoch's last, shorter one.
        let images: usize = (live.runs.iter())
            .map(|run| run.done() * run.run().training.batch_size)
            .sum();
        let seconds: f64 = live.runs.iter().map(LiveRun::seconds).sum();
        if seconds > 0.0 {
            tick.images_per_sec = images as f64 / seconds;
        }
        Ok(tick)
    }

    /// Whether both networks have finished (every step taken, or diverged).
    pub fn finished(&self) -> bool {
        self.live
            .as_ref()
            .is_some_and(|live| live.runs.iter().all(LiveRun::finished))
    }

    /// Both networks as they are now, tested on the test set in train mode with batches of
    /// [`PITFALL_BATCHES`] and in eval mode (each pass on a copy with its own running
    /// statistics, so testing never moves the networks').
    pub fn pitfall(&self) -> Result<[PitfallNet; 2], WebError> {
        read_sync(self.pitfall_async())
    }

    /// [`Playground::pitfall`], reading without blocking (a browser's WebGPU device).
    pub async fn pitfall_async(&self) -> Result<[PitfallNet; 2], WebError> {
        let Some(live) = &self.live else {
            return Err(WebError::Invalid("no playground run; start one".into()));
        };
        let test = &self.data.test;
        // `test_pass` rather than `evaluate`: a train-mode batch of one image is the point here.
        // The networks are on the autodiff device, so each pass tests a copy (`valid`).
        let accuracy = async |run: &LiveRun, batch, mode| {
            test_pass_async(run.model(), test, batch, mode, &self.device)
                .await
                .accuracy
        };
        let mut nets = Vec::new();
        for run in &live.runs {
            let mut train = Vec::new();
            for batch in PITFALL_BATCHES {
                train.push(accuracy(run, batch, TestMode::Train).await);
            }
            let eval = accuracy(run, 1000, TestMode::Eval).await;
            nets.push(PitfallNet { train, eval });
        }
        Ok(nets.try_into().expect("two networks"))
    }
}
