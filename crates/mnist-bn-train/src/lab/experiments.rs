//! The experiments: each is a list of runs (data for the driver), then a table, a figure and a
//! paragraph computed from the outcomes.

use std::path::Path;
use web_time::Instant;

use burn::module::Module;
use burn::nn::Initializer;
use burn::tensor::Device;
use mnist_bn_model::{Activation, MlpConfig, Net, NetConfig, Norm};
use serde_json::json;

use super::driver::{LabData, MeasureOn, Outcome, Run, TrainOn, run_all};
use super::progress::LabProgress;
use super::{Experiment, LabOptions, Section};
use crate::TrainError;
use crate::checkpoint::load_checkpoint;
use crate::evaluate::{TestMode, TestReport, test_pass};
use crate::learner::TrainingConfig;
use crate::plot::figure::{BATCH_NORM, Figure, Mark, PLAIN, Panel, Series, XAxis};
use plotters::chart::SeriesLabelPosition;
use plotters::style::RGBColor;

/// The runs of an experiment (none for `inference` given a checkpoint to test).
pub(super) fn plan(experiment: Experiment, data: &LabData, options: &LabOptions) -> Vec<Run> {
    let steps = |default| options.steps.unwrap_or(default);
    match experiment {
        Experiment::Grid => grid_runs(steps(2000), options.seed),
        Experiment::Distributions => distributions_runs(steps(10_000), options.seed),
        Experiment::Inference if options.checkpoint.is_some() => Vec::new(),
        Experiment::Inference => vec![lesson_run(data, options.seed)],
        Experiment::BatchSize => batch_size_runs(data, options.seed),
        Experiment::InitScale => init_scale_runs(steps(2000), options.seed),
    }
}

/// A model for `inference` to test, and where it came from.
pub(super) type Tested = (Net, String);

/// Loads `--checkpoint` for `inference` (onto the autodiff device, so that each test pass can
/// take its own copy of the running statistics); it must hold an MLP with batch norm.
pub(super) fn load_tested(path: &Path, device: &Device) -> Result<Tested, TrainError> {
    let checkpoint = load_checkpoint(path, &device.clone().autodiff())?;
    let is_bn_mlp = matches!(&checkpoint.config, NetConfig::Mlp(c) if c.norm == Norm::Batch);
    if !is_bn_mlp {
        return Err(TrainError::checkpoint(
            &checkpoint.path,
            "does not hold an MLP with batch norm; the inference experiment needs one",
        ));
    }
    let source = format!("the checkpoint {}", checkpoint.path.display());
    Ok((checkpoint.model, source))
}

/// Runs one experiment's `runs` on the driver, then its analysis, table and figure.
pub(super) fn run(
    experiment: Experiment,
    runs: &[Run],
    tested: Option<Tested>,
    data: &LabData,
    options: &LabOptions,
    device: &Device,
) -> Result<Section, TrainError> {
    let started = Instant::now();
    let networks = match runs.len() {
        1 => "1 network".to_string(),
        n => format!("{n} networks"),
    };
    println!("== lab: {experiment} ({networks}) ==");
    let progress = LabProgress::new(
        options.progress,
        experiment.name(),
        runs.iter().map(|r| r.steps).sum(),
    );
    let outcomes = run_all(runs, data, device, options, &progress)?;
    progress.finish();
    let (mut section, figure) = match experiment {
        Experiment::Grid => grid_section(outcomes, data),
        Experiment::Distributions => distributions_section(outcomes, data),
        Experiment::Inference => inference_section(outcomes, tested, data, device),
        Experiment::BatchSize => batch_size_section(outcomes, data),
        Experiment::InitScale => init_scale_section(outcomes, data),
    };
    figure.write(&options.out.join(experiment.name()))?;
    section.figure = format!("{}.png", experiment.name());
    section.seconds = started.elapsed().as_secs_f64();
    Ok(section)
}

/// The two networks of a setting, with batch norm first; they start from the same weights.
fn pair(setting: &str, config: MlpConfig, run: impl Fn(String, MlpConfig) -> Run) -> [Run; 2] {
    [Norm::Batch, Norm::None].map(|norm| {
        let suffix = match norm {
            Norm::Batch => "bn",
            Norm::None => "plain",
        };
        let mut config = config.clone();
        config.norm = norm;
        run(format!("{setting}, {suffix}"), config)
    })
}

fn normal(std: f64) -> Option<Initializer> {
    Some(Initializer::Normal { mean: 0.0, std })
}

fn sgd(lr: f64, batch_size: usize, seed: u64) -> TrainingConfig {
    TrainingConfig::new()
        .with_lr(lr)
        .with_batch_size(batch_size)
        .with_seed(seed)
}

fn section(experiment: Experiment, question: &str, setup: String) -> Section {
    Section {
        experiment,
        question: question.to_string(),
        setup,
        seconds: 0.0,
        figure: String::new(),
        table: String::new(),
        findings: String::new(),
        summary: serde_json::Value::Null,
        runs: Vec::new(),
    }
}

fn pct(accuracy: f64) -> String {
    format!("{:.2}%", 100.0 * accuracy)
}

/// Test accuracy, with the step of divergence when there was one.
fn score(outcome: &Outcome) -> String {
    match outcome.diverged_at {
        Some(step) => format!("{} (diverged at step {step})", pct(outcome.test_accuracy)),
        None => pct(outcome.test_accuracy),
    }
}

fn loss(outcome: &Outcome, value: f64) -> String {
    match outcome.diverged_at {
        Some(step) => format!("diverged at step {step}"),
        None => format!("{value:.4}"),
    }
}

fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut md = format!(
        "| {} |\n|{}\n",
        header.join(" | "),
        "---|".repeat(header.len())
    );
    for row in rows {
        md.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    md
}

fn line(label: &str, color: RGBColor, points: Vec<(f64, f64)>) -> Series {
    Series {
        label: label.to_string(),
        color,
        mark: Mark::Line { width: 2 },
        points,
    }
}

fn dots(label: &str, color: RGBColor, points: Vec<(f64, f64)>) -> Series {
    Series {
        label: label.to_string(),
        color,
        mark: Mark::LineDots,
        points,
    }
}

fn accuracy_curve(outcome: &Outcome) -> Vec<(f64, f64)> {
    outcome
        .curve
        .iter()
        .map(|p| (p.step as f64, p.accuracy))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// grid

/// One setting of the grid.
#[derive(Debug, Clone, Copy)]
struct Setting {
    activation: Activation,
    lr: f64,
    std: f64,
}

const GRID_LRS: [f64; 3] = [0.01, 1.0, 2.0];
const GRID_STDS: [f64; 2] = [0.05, 5.0];

/// Rows of the figure: activation × initial weights; columns: learning rate.
fn grid_settings() -> Vec<Setting> {
    let mut settings = Vec::new();
    for activation in [Activation::Relu, Activation::Sigmoid] {
        for std in GRID_STDS {
            for lr in GRID_LRS {
                settings.push(Setting {
                    activation,
                    lr,
                    std,
                });
            }
        }
    }
    settings
}

impl Setting {
    fn label(&self) -> String {
        format!(
            "{}, lr {}, std {} ({})",
            self.activation_name(),
            self.lr,
            self.std,
            self.init_name()
        )
    }

    fn activation_name(&self) -> &'static str {
        match self.activation {
            Activation::Relu => "ReLU",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
        }
    }

    fn init_name(&self) -> &'static str {
        if self.std < 1.0 { "reasonable" } else { "bad" }
    }

    /// The older TensorFlow lesson's published test accuracy after 50,000 steps, with and
    /// without batch norm, where it states one.
    fn published(&self) -> Option<(f64, f64)> {
        match (self.activation, self.lr, self.std) {
            (Activation::Relu, lr, std) if lr == 1.0 && std == 0.05 => Some((0.98, 0.10)),
            (Activation::Sigmoid, lr, std) if lr == 0.01 && std == 0.05 => Some((0.97, 0.83)),
            (Activation::Relu, lr, std) if lr == 0.01 && std == 5.0 => Some((0.80, 0.10)),
            _ => None,
        }
    }
}

fn grid_runs(steps: usize, seed: u64) -> Vec<Run> {
    grid_settings()
        .iter()
        .flat_map(|s| {
            let config = MlpConfig::new(Norm::Batch)
                .with_hidden(vec![100; 3])
                .with_activation(s.activation)
                .with_weight_init(normal(s.std));
            pair(&s.label(), config, |name, config| Run {
                train_on: TrainOn::Fit,
                measure_every: 50,
                measure_on: MeasureOn::Validation,
                ..Run::new(name, config, sgd(s.lr, 60, seed), steps)
            })
        })
        .collect()
}

fn grid_section(outcomes: Vec<Outcome>, data: &LabData) -> (Section, Figure) {
    let settings = grid_settings();
    let steps = outcomes.first().map_or(0, |o| o.steps);
    let mut s = section(
        Experiment::Grid,
        "Where does a plain network fail and the same network with batch norm train?",
        format!(
            "784-100-100-100-10, batch 60, plain SGD, {steps} steps on the first {} training \
             images; validation accuracy every 50 steps on the last {}, test accuracy at the \
             end. Both networks of a setting start from the same weights (normal, biases 0); with \
             batch norm the hidden layers have no bias and batch norm comes before the activation.",
            data.fit.len(),
            data.validation.len()
        ),
    );
    let mut rows = Vec::new();
    let mut panels = Vec::new();
    let mut summary = Vec::new();
    let (mut ahead, mut behind, mut plain_failed, mut bn_failed) = (0, 0, Vec::new(), Vec::new());
    let mut gap: Option<(f64, String, f64, f64)> = None;
    for (setting, pair) in settings.iter().zip(outcomes.chunks(2)) {
        let (bn, plain) = (&pair[0], &pair[1]);
        let lead = bn.test_accuracy - plain.test_accuracy;
        ahead += usize::from(lead > 0.05);
        behind += usize::from(lead < -0.05);
        if plain.test_accuracy < 0.2 {
            plain_failed.push(setting.label());
        }
        if bn.test_accuracy < 0.2 {
            bn_failed.push(setting.label());
        }
        if gap.as_ref().is_none_or(|g| lead.abs() > g.0.abs()) {
            gap = Some((lead, setting.label(), bn.test_accuracy, plain.test_accuracy));
        }
        let published = setting.published().map_or("–".to_string(), |(b, p)| {
            format!("≈{:.0}% / ≈{:.0}%", 100.0 * b, 100.0 * p)
        });
        rows.push(vec![
            setting.activation_name().to_string(),
            setting.lr.to_string(),
            format!("{} ({})", setting.std, setting.init_name()),
            score(bn),
            score(plain),
            published,
        ]);
        summary.push(json!({
            "activation": setting.activation.name(), "lr": setting.lr, "std": setting.std,
            "batch_norm": bn.test_accuracy, "plain": plain.test_accuracy,
            "batch_norm_diverged_at": bn.diverged_at, "plain_diverged_at": plain.diverged_at,
            "published_50000_steps": setting.published().map(|(b, p)| json!({"batch_norm": b, "plain": p})),
        }));
        let diverged = |o: &Outcome, who: &str| {
            o.diverged_at
                .map_or(String::new(), |step| format!(", {who} NaN@{step}"))
        };
        let first = panels.is_empty();
        let label = |name: &str| {
            if first {
                name.to_string()
            } else {
                String::new()
            }
        };
        panels.push(Panel {
            title: format!(
                "{} · lr {} · std {}{}{}",
                setting.activation_name(),
                setting.lr,
                setting.std,
                diverged(bn, "BN"),
                diverged(plain, "plain")
            ),
            x_axis: XAxis::Linear,
            x_label: "step".into(),
            y_label: "validation accuracy".into(),
            y_range: Some((0.0, 1.0)),
            series: vec![
                line(&label("batch norm"), BATCH_NORM, accuracy_curve(bn)),
                line(&label("plain"), PLAIN, accuracy_curve(plain)),
            ],
            legend: SeriesLabelPosition::LowerRight,
        });
    }
    s.table = table(
        &[
            "activation",
            "lr",
            "initial weights (std)",
            "test accuracy, batch norm",
            "test accuracy, plain",
            "published, 50,000 steps (BN / plain)",
        ],
        &rows,
    );
    let list = |names: &[String]| {
        if names.is_empty() {
            String::new()
        } else {
            format!(": {}", names.join("; "))
        }
    };
    let diverged = |norm: Norm| {
        outcomes
            .iter()
            .filter(|o| o.config.norm == norm && o.diverged_at.is_some())
            .count()
    };
    let n = settings.len();
    let mut findings = format!(
        "With batch norm the network ended more than 5 points ahead in {ahead} of {n} settings \
         and more than 5 points behind in {behind}. Without batch norm {} of {n} networks did not \
         learn (test accuracy under 20%{}); with it, {}{}. {} plain and {} batch-norm networks \
         diverged (a loss that was not a number).",
        plain_failed.len(),
        list(&plain_failed),
        bn_failed.len(),
        list(&bn_failed),
        diverged(Norm::None),
        diverged(Norm::Batch),
    );
    if let Some((lead, label, bn, plain)) = gap {
        findings.push_str(&format!(
            " The largest gap ({:+.1} points) is {label}: {} with batch norm against {} without.",
            100.0 * lead,
            pct(bn),
            pct(plain)
        ));
    }
    if bn_failed.is_empty() && !plain_failed.is_empty() {
        findings.push_str(
            " Batch norm keeps every hidden layer's input to the activation at the mean and \
             scale it learns, whatever the scale of the weights before it: here neither a large \
             learning rate nor a bad initial scale stopped a network with it from learning.",
        );
    }
    s.findings = findings;
    s.summary = json!(summary);
    s.runs = outcomes;
    let figure = Figure {
        title: format!(
            "Validation accuracy over {steps} steps: batch norm (blue) vs plain (orange)"
        ),
        columns: GRID_LRS.len(),
        panel_size: (440, 300),
        panels,
    };
    (s, figure)
}

// ---------------------------------------------------------------------------------------------
// distributions

/// Learning rate of `distributions`: high enough for the plain sigmoid network to leave its
/// plateau within the default steps.
const DISTRIBUTIONS_LR: f64 = 0.5;

fn distributions_runs(steps: usize, seed: u64) -> Vec<Run> {
    let config = MlpConfig::new(Norm::Batch)
        .with_hidden(vec![100; 3])
        .with_activation(Activation::Sigmoid)
        .with_weight_init(normal(0.05));
    pair("sigmoid 3×100", config, |name, config| Run {
        measure_every: (steps / 200).max(50),
        probe: true,
        ..Run::new(name, config, sgd(DISTRIBUTIONS_LR, 60, seed), steps)
    })
    .into()
}

fn distributions_section(outcomes: Vec<Outcome>, data: &LabData) -> (Section, Figure) {
    let steps = outcomes.first().map_or(0, |o| o.steps);
    let every = outcomes
        .first()
        .and_then(|o| o.curve.get(1))
        .map_or(0, |p| p.step);
    let mut s = section(
        Experiment::Distributions,
        "How does the input of a sigmoid move during training, with and without batch norm? \
         (Ioffe & Szegedy 2015, Figure 1)",
        format!(
            "784-100-100-100-10 with sigmoids, batch 60, plain SGD with lr {DISTRIBUTIONS_LR}, \
             {steps} steps over the {} training images; initial weights normal with std 0.05 \
             (the same for both). Every {every} steps: test accuracy, and the 15th, 50th and 85th percentiles over the test \
             images of the input to the first sigmoid of the last hidden layer (the batch norm's \
             output with batch norm, the linear layer's without), the test images normalized as \
             one batch as in training; test accuracy with batch norm on its running statistics.",
            data.train.len()
        ),
    );
    let probe = |o: &Outcome, i: usize| -> Vec<(f64, f64)> {
        o.curve
            .iter()
            .filter_map(|p| p.probe.map(|q| (p.step as f64, q[i])))
            .collect()
    };
    let band = |o: &Outcome, legend: bool| -> Vec<Series> {
        let color = if o.config.norm == Norm::Batch {
            BATCH_NORM
        } else {
            PLAIN
        };
        (0..3)
            .map(|i| Series {
                label: if legend {
                    ["15th", "50th", "85th"][i].to_string() + " percentile"
                } else {
                    String::new()
                },
                color: if i == 1 { color } else { lighter(color) },
                mark: Mark::Line {
                    width: if i == 1 { 3 } else { 1 },
                },
                points: probe(o, i),
            })
            .collect()
    };
    let values = outcomes
        .iter()
        .flat_map(|o| o.curve.iter().filter_map(|p| p.probe))
        .flatten()
        .filter(|v| v.is_finite());
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let pad = ((hi - lo) * 0.05).max(0.05);
    let probe_range = (lo <= hi).then_some((lo - pad, hi + pad));
    let mut rows = Vec::new();
    let mut summary = Vec::new();
    let mut sentences = Vec::new();
    let mut swings = Vec::new();
    let early = outcomes
        .first()
        .and_then(|o| o.curve.iter().find(|p| p.step >= steps / 10))
        .map_or(steps, |p| p.step);
    for o in &outcomes {
        let who = if o.config.norm == Norm::Batch {
            "with batch norm"
        } else {
            "without batch norm"
        };
        let at_early = o
            .curve
            .iter()
            .find(|p| p.step >= early)
            .map_or(f64::NAN, |p| p.accuracy);
        let probes: Vec<[f64; 3]> = o.curve.iter().filter_map(|p| p.probe).collect();
        let (first, last) = (
            probes.first().copied().unwrap_or([f64::NAN; 3]),
            probes.last().copied().unwrap_or([f64::NAN; 3]),
        );
        let (low, high) = probes.iter().fold((f64::MAX, f64::MIN), |(lo, hi), q| {
            (lo.min(q[1]), hi.max(q[1]))
        });
        let swing = high - low;
        swings.push(swing);
        rows.push(vec![
            who.to_string(),
            pct(at_early),
            score(o),
            format!("{:.2} → {:.2}", first[1], last[1]),
            format!("{:.2} → {:.2}", first[2] - first[0], last[2] - last[0]),
            format!("{swing:.2}"),
        ]);
        summary.push(json!({
            "network": o.name, "accuracy_at_tenth": at_early, "test_accuracy": o.test_accuracy,
            "median_start": first[1], "median_end": last[1],
            "spread_start": first[2] - first[0], "spread_end": last[2] - last[0],
            "median_swing": swing,
        }));
        sentences.push(format!(
            "{who} the median moved from {:.2} to {:.2} (spanning {swing:.2} between its lowest \
             and highest) and the 15–85 band went from {:.2} to {:.2} wide; test accuracy was {} after {early} steps \
             and {} at the end",
            first[1],
            last[1],
            first[2] - first[0],
            last[2] - last[0],
            pct(at_early),
            pct(o.test_accuracy)
        ));
    }
    s.table = table(
        &[
            "network",
            &format!("test accuracy after {early} steps"),
            "test accuracy at the end",
            "median input: start → end",
            "15–85 spread: start → end",
            "median's swing (max − min)",
        ],
        &rows,
    );
    // Outcomes come in pairs, batch norm first.
    let held = swings.len() == 2 && swings[0] < swings[1];
    s.findings = format!(
        "{}.{}",
        capitalize(&sentences.join("; ")),
        if held {
            " Without batch norm the sigmoid's input wanders as the layers below it learn, so \
             the layer above keeps chasing a moving distribution (what Ioffe and Szegedy called \
             internal covariate shift); with batch norm its median stays closer to where gamma \
             and beta put it."
        } else {
            " In this run the median moved at least as much with batch norm as without."
        }
    );
    s.summary = json!(summary);
    let (bn, plain) = (&outcomes[0], &outcomes[1]);
    let figure = Figure {
        title: format!("Sigmoid MLP over {steps} steps (Ioffe & Szegedy 2015, Fig. 1)"),
        columns: 3,
        panel_size: (480, 360),
        panels: vec![
            Panel {
                title: "(a) test accuracy".into(),
                x_axis: XAxis::Linear,
                x_label: "step".into(),
                y_label: "test accuracy".into(),
                y_range: Some((0.0, 1.0)),
                series: vec![
                    line("batch norm", BATCH_NORM, accuracy_curve(bn)),
                    line("plain", PLAIN, accuracy_curve(plain)),
                ],
                legend: SeriesLabelPosition::LowerRight,
            },
            Panel {
                title: "(b) without batch norm: sigmoid input".into(),
                x_axis: XAxis::Linear,
                x_label: "step".into(),
                y_label: "15th / 50th / 85th percentile".into(),
                y_range: probe_range,
                series: band(plain, true),
                legend: SeriesLabelPosition::UpperRight,
            },
            Panel {
                title: "(c) with batch norm: sigmoid input".into(),
                x_axis: XAxis::Linear,
                x_label: "step".into(),
                y_label: "15th / 50th / 85th percentile".into(),
                y_range: probe_range,
                series: band(bn, false),
                legend: SeriesLabelPosition::MiddleRight,
            },
        ],
    };
    s.runs = outcomes;
    (s, figure)
}

/// Halfway between `color` and white.
fn lighter(color: RGBColor) -> RGBColor {
    let half = |c: u8| ((u16::from(c) + 255) / 2) as u8;
    RGBColor(half(color.0), half(color.1), half(color.2))
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or(String::new(), |c| {
        c.to_uppercase().collect::<String>() + chars.as_str()
    })
}

// ---------------------------------------------------------------------------------------------
// inference

/// The lesson's batch-norm MLP trained as the lesson trains it: 10 epochs in file order.
fn lesson_run(data: &LabData, seed: u64) -> Run {
    let training = sgd(0.01, 64, seed);
    let steps = 10 * data.train.len().div_ceil(training.batch_size);
    Run {
        keep_model: true,
        ..Run::new(
            "lesson batchnorm".into(),
            MlpConfig::new(Norm::Batch),
            training,
            steps,
        )
    }
}

fn inference_section(
    mut outcomes: Vec<Outcome>,
    tested: Option<Tested>,
    data: &LabData,
    device: &Device,
) -> (Section, Figure) {
    let (model, source) = match tested {
        Some(tested) => tested,
        None => {
            let outcome = outcomes.first_mut().expect("the lesson run");
            let model = outcome
                .model
                .take()
                .expect("the lesson run keeps its model");
            let source = format!(
                "the lesson's batch-norm MLP trained as in the lesson ({} steps: 10 epochs of \
                 batch 64 in file order, lr 0.01)",
                outcome.steps
            );
            (model, source)
        }
    };
    let test = &data.test;
    let mut sizes: Vec<usize> = [1, 2, 4, 16, 64, 10_000]
        .map(|b: usize| b.min(test.len()))
        .to_vec();
    sizes.dedup();
    let digits = |r: &TestReport| {
        (0..r.confusion.len())
            .filter(|&p| r.confusion.iter().any(|row| row[p] > 0))
            .count()
    };
    // The model is on the autodiff device: every pass below tests its own copy of the running
    // statistics, except the pair that shows the lesson's order.
    let mut cases: Vec<(String, String, TestReport)> = sizes
        .iter()
        .map(|&b| {
            let report = test_pass(&model, test, b, TestMode::Train, device);
            (
                format!("train mode (batch statistics), batch {b}"),
                format!("train, {b}"),
                report,
            )
        })
        .collect();
    let pristine = test_pass(&model, test, 1000, TestMode::Eval, device);
    cases.push((
        "eval mode (running statistics)".into(),
        "eval".into(),
        pristine,
    ));
    let copy = model.valid();
    let _ = test_pass(&copy, test, 64, TestMode::Train, device);
    let after = test_pass(&copy, test, 1000, TestMode::Eval, device);
    cases.push((
        "eval mode after a train-mode pass in batches of 64 (the lesson's order)".into(),
        "eval after train pass".into(),
        after,
    ));
    let mut s = section(
        Experiment::Inference,
        "What happens when a batch-norm network is tested with batch statistics, one image or a \
         few at a time?",
        format!(
            "Tested: {source}. Train mode normalizes each test batch with its own statistics \
             (PyTorch's `model.train()`); each such pass starts from the trained running \
             statistics. Eval mode uses the running statistics. A batch of one image has its own \
             values as mean and zero variance, so batch norm outputs beta for it (TensorFlow's \
             arithmetic; PyTorch refuses such a batch)."
        ),
    );
    let rows: Vec<Vec<String>> = cases
        .iter()
        .map(|(name, _, r)| {
            vec![
                name.clone(),
                pct(r.accuracy),
                format!("{:.4}", r.loss),
                digits(r).to_string(),
            ]
        })
        .collect();
    s.table = table(
        &["test pass", "accuracy", "loss", "digits ever predicted"],
        &rows,
    );
    let find = |short: &str| cases.iter().find(|c| c.1 == short).map(|c| &c.2);
    let acc = |short: &str| find(short).map_or(f64::NAN, |r| r.accuracy);
    let one = find(&format!("train, {}", sizes[0]));
    let others: Vec<String> = sizes[1..]
        .iter()
        .map(|b| format!("{} with batches of {b}", pct(acc(&format!("train, {b}")))))
        .collect();
    let moved = 100.0 * (acc("eval after train pass") - acc("eval"));
    s.findings = format!(
        "One image at a time with batch statistics, every image is normalized to the same \
         vector (beta), so the network gives every image the same answer: {} digit(s) ever \
         predicted, {} accuracy. With more images sharing the statistics: {}. With running \
         statistics (eval mode) each image is classified on its own, whatever the batch: {}. \
         After a train-mode pass in batches of 64 (the lesson tests in that order) the running \
         statistics have moved toward the test batches', and eval mode gives {} ({moved:+.2} \
         points){}.",
        one.map_or(0, digits),
        pct(one.map_or(f64::NAN, |r| r.accuracy)),
        others.join(", "),
        pct(acc("eval")),
        pct(acc("eval after train pass")),
        if moved.abs() < 0.005 {
            ": here the lesson's order did not change the eval-mode figure"
        } else {
            ": the lesson's eval-mode figure is not quite that of the trained model"
        },
    );
    s.summary = json!(
        cases
            .iter()
            .map(|(name, short, r)| json!({
                "pass": name, "label": short, "accuracy": r.accuracy, "loss": r.loss,
                "digits_predicted": digits(r),
            }))
            .collect::<Vec<_>>()
    );
    let figure = Figure {
        title: "Test accuracy of the lesson's batch-norm MLP, by how it is tested".into(),
        columns: 1,
        panel_size: (1100, 460),
        panels: vec![Panel {
            title: "train mode: batch statistics of test batches of 1 … N; eval mode: running statistics".into(),
            x_axis: XAxis::Categories(cases.iter().map(|c| c.1.clone()).collect()),
            x_label: "test pass (mode, batch size)".into(),
            y_label: "test accuracy".into(),
            y_range: Some((0.0, 1.0)),
            series: vec![Series {
                label: String::new(),
                color: BATCH_NORM,
                mark: Mark::Bars,
                points: cases
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (i as f64, c.2.accuracy))
                    .collect(),
            }],
            legend: SeriesLabelPosition::UpperLeft,
        }],
    };
    s.runs = outcomes;
    (s, figure)
}

// ---------------------------------------------------------------------------------------------
// batch-size

const BATCH_SIZES: [usize; 6] = [2, 4, 8, 16, 64, 256];

/// The lesson's MLP with PyTorch's default weights, uniform in ±1/√fan_in (Burn's default
/// `KaimingUniform` with gain 1/√3), but biases at zero, so that the network with batch norm
/// gets exactly its plain twin's weights.
fn lesson_weights() -> MlpConfig {
    MlpConfig::new(Norm::Batch).with_weight_init(Some(Initializer::KaimingUniform {
        gain: 1.0 / 3f64.sqrt(),
        fan_out_only: false,
    }))
}

fn batch_size_runs(data: &LabData, seed: u64) -> Vec<Run> {
    BATCH_SIZES
        .iter()
        .flat_map(|&batch| {
            let steps = data.train.len().div_ceil(batch);
            pair(
                &format!("batch {batch}"),
                lesson_weights(),
                |name, config| Run::new(name, config, sgd(0.01, batch, seed), steps),
            )
        })
        .collect()
}

fn batch_size_section(outcomes: Vec<Outcome>, data: &LabData) -> (Section, Figure) {
    let mut s = section(
        Experiment::BatchSize,
        "How small can the batch get before batch norm stops helping?",
        format!(
            "The lesson's MLP (784-512-256-10; weights uniform in ±1/√fan_in as PyTorch draws \
             them, biases 0, the same for both networks), lr 0.01, one epoch over the {} \
             training images in file order at each batch size (so smaller batches take more \
             steps); training loss is the mean over the epoch (what the lesson prints), test \
             accuracy in eval mode.",
            data.train.len()
        ),
    );
    let mut rows = Vec::new();
    let mut summary = Vec::new();
    let mut leads = Vec::new();
    let labels: Vec<String> = BATCH_SIZES.iter().map(|b| b.to_string()).collect();
    let mut series = [[Vec::new(), Vec::new()], [Vec::new(), Vec::new()]];
    for (i, (&batch, pair)) in BATCH_SIZES.iter().zip(outcomes.chunks(2)).enumerate() {
        let (bn, plain) = (&pair[0], &pair[1]);
        let lead = bn.test_accuracy - plain.test_accuracy;
        leads.push((batch, lead));
        rows.push(vec![
            batch.to_string(),
            bn.steps.to_string(),
            loss(bn, bn.mean_loss),
            loss(plain, plain.mean_loss),
            score(bn),
            score(plain),
            format!("{:+.2}", 100.0 * lead),
        ]);
        summary.push(json!({
            "batch_size": batch, "steps": bn.steps,
            "batch_norm": {"train_loss": bn.mean_loss, "test_accuracy": bn.test_accuracy},
            "plain": {"train_loss": plain.mean_loss, "test_accuracy": plain.test_accuracy},
        }));
        for (k, o) in [bn, plain].into_iter().enumerate() {
            series[0][k].push((i as f64, o.mean_loss));
            series[1][k].push((i as f64, o.test_accuracy));
        }
    }
    s.table = table(
        &[
            "batch",
            "steps",
            "training loss, BN",
            "training loss, plain",
            "test accuracy, BN",
            "test accuracy, plain",
            "BN − plain (points)",
        ],
        &rows,
    );
    let fmt_lead = |(b, l): &(usize, f64)| format!("{:+.2} at {b}", 100.0 * l);
    let (best, worst) = leads
        .iter()
        .fold((leads[0], leads[0]), |(best, worst), &l| {
            (
                if l.1 > best.1 { l } else { best },
                if l.1 < worst.1 { l } else { worst },
            )
        });
    let plain_at = |i: usize| outcomes[2 * i + 1].test_accuracy;
    let not_ahead: Vec<String> = leads
        .iter()
        .filter(|(_, l)| *l < 0.005)
        .map(|(b, _)| b.to_string())
        .collect();
    s.findings = format!(
        "Batch norm's lead in test accuracy, in points by batch size: {}. The lead is largest at \
         batch {} and smallest at batch {}. {} Smaller batches take more steps over the same \
         images: the plain network's test accuracy is {} at batch {} and {} at batch {}. With \
         batch norm a small batch also makes its statistics a noisy estimate of the \
         population's, so the network trains on normalizations that eval mode will not \
         reproduce.",
        leads.iter().map(fmt_lead).collect::<Vec<_>>().join(", "),
        best.0,
        worst.0,
        if not_ahead.is_empty() {
            "It is half a point or more ahead at every batch size tried.".to_string()
        } else {
            format!(
                "It is not even half a point ahead at batch {}.",
                not_ahead.join(" and ")
            )
        },
        pct(plain_at(BATCH_SIZES.len() - 1)),
        BATCH_SIZES[BATCH_SIZES.len() - 1],
        pct(plain_at(0)),
        BATCH_SIZES[0],
    );
    s.summary = json!(summary);
    let [[bn_loss, plain_loss], [bn_acc, plain_acc]] = series;
    let panel = |title: &str, y: &str, bn, plain, legend| Panel {
        title: title.into(),
        x_axis: XAxis::Categories(labels.clone()),
        x_label: "batch size (one epoch)".into(),
        y_label: y.into(),
        y_range: None,
        series: vec![
            dots("batch norm", BATCH_NORM, bn),
            dots("plain", PLAIN, plain),
        ],
        legend,
    };
    let figure = Figure {
        title: "One epoch of the lesson's MLP at each batch size (lr 0.01)".into(),
        columns: 2,
        panel_size: (560, 400),
        panels: vec![
            panel(
                "training loss (mean over the epoch)",
                "training loss",
                bn_loss,
                plain_loss,
                SeriesLabelPosition::UpperMiddle,
            ),
            panel(
                "test accuracy (eval mode)",
                "test accuracy",
                bn_acc,
                plain_acc,
                SeriesLabelPosition::LowerMiddle,
            ),
        ],
    };
    s.runs = outcomes;
    (s, figure)
}

// ---------------------------------------------------------------------------------------------
// init-scale

/// Learning rate of `init-scale` (plain SGD, as everywhere in the lab).
const INIT_SCALE_LR: f64 = 0.01;

/// The mean over images of ‖x‖², pixels scaled to [0, 1].
fn mean_squared_norm(data: &mnist_bn_data::Mnist) -> f64 {
    let sum: f64 = data
        .pixels()
        .iter()
        .map(|&p| f64::from(mnist_bn_data::pixel_to_f32(p)).powi(2))
        .sum();
    sum / data.len().max(1) as f64
}

fn init_scales() -> Vec<f64> {
    (0..10)
        .map(|i| 10f64.powf(-4.0 + 4.0 * i as f64 / 9.0))
        .collect()
}

fn init_scale_runs(steps: usize, seed: u64) -> Vec<Run> {
    init_scales()
        .into_iter()
        .flat_map(|std| {
            let config = MlpConfig::new(Norm::Batch)
                .with_hidden(vec![100; 8])
                .with_weight_init(normal(std));
            pair(&format!("std {std:.1e}"), config, |name, config| {
                Run::new(name, config, sgd(INIT_SCALE_LR, 60, seed), steps)
            })
        })
        .collect()
}

fn init_scale_section(outcomes: Vec<Outcome>, data: &LabData) -> (Section, Figure) {
    let steps = outcomes.first().map_or(0, |o| o.steps);
    let mut s = section(
        Experiment::InitScale,
        "How much does the initial scale of the weights matter in a deep network, with and \
         without batch norm? (cs231n)",
        format!(
            "784, 8 hidden layers of 100 ReLUs, 10; initial weights normal with the standard \
             deviation on the x axis (biases 0), the same for both networks; batch 60, plain SGD \
             with lr {INIT_SCALE_LR}, {steps} steps over the {} training images. Final training loss: the mean of the last 100 \
             steps; test accuracy in eval mode.",
            data.train.len()
        ),
    );
    let scales = init_scales();
    let mut rows = Vec::new();
    let mut summary = Vec::new();
    let mut series = [[Vec::new(), Vec::new()], [Vec::new(), Vec::new()]];
    let mut trained = [Vec::new(), Vec::new()];
    for (&std, pair) in scales.iter().zip(outcomes.chunks(2)) {
        let (bn, plain) = (&pair[0], &pair[1]);
        rows.push(vec![
            format!("{std:.1e}"),
            loss(bn, bn.final_loss),
            loss(plain, plain.final_loss),
            score(bn),
            score(plain),
        ]);
        summary.push(json!({
            "std": std,
            "batch_norm": {"final_loss": bn.final_loss, "test_accuracy": bn.test_accuracy, "diverged_at": bn.diverged_at},
            "plain": {"final_loss": plain.final_loss, "test_accuracy": plain.test_accuracy, "diverged_at": plain.diverged_at},
        }));
        for (k, o) in [bn, plain].into_iter().enumerate() {
            series[0][k].push((std, o.final_loss));
            series[1][k].push((std, o.test_accuracy));
            if o.test_accuracy > 0.9 {
                trained[k].push(std);
            }
        }
    }
    s.table = table(
        &[
            "weight std",
            "final training loss, BN",
            "final training loss, plain",
            "test accuracy, BN",
            "test accuracy, plain",
        ],
        &rows,
    );
    let range = |stds: &[f64]| match (stds.first(), stds.last()) {
        (Some(a), Some(_)) if stds.len() == 1 => format!("only at std {a:.1e}"),
        (Some(a), Some(b)) => format!(
            "for std from {a:.1e} to {b:.1e} ({} of 10 scales)",
            stds.len()
        ),
        _ => "at none of the scales".into(),
    };
    let he = (2.0f64 / 100.0).sqrt();
    s.findings = format!(
        "Without batch norm the 8-layer network learned (test accuracy above 90%) {}; with \
         batch norm {}. He initialization for 100 inputs, √(2/100) ≈ {he:.2}, is the scale a \
         plain ReLU network needs: smaller weights shrink the signal layer after layer until \
         the gradients vanish, larger ones blow it up until the loss overflows. Batch norm \
         rescales every hidden layer's output, which makes it (up to ε) independent of the \
         scale of the weights before it; the scale still changes how fast those weights move \
         relative to their size (large weights move slowly).{}",
        range(&trained[1]),
        range(&trained[0]),
        match outcomes.first() {
            Some(bn) if bn.test_accuracy < 0.5 => {
                // The variance of w·x over weights drawn N(0, std²) is std²·‖x‖².
                let variance = scales[0].powi(2) * mean_squared_norm(&data.train);
                if variance < bn.config.bn_epsilon {
                    format!(
                        " At std {:.1e} batch norm fails too ({}): the first hidden layer's \
                         outputs start with a variance of about {variance:.1e} (std² times the \
                         images' mean ‖x‖²), below batch norm's ε = {:.0e}, so dividing by \
                         √(variance + ε) no longer restores unit variance, and each layer after \
                         it shrinks the signal further.",
                        scales[0],
                        pct(bn.test_accuracy),
                        bn.config.bn_epsilon
                    )
                } else {
                    format!(
                        " At std {:.1e} batch norm fails too ({}).",
                        scales[0],
                        pct(bn.test_accuracy)
                    )
                }
            }
            _ => String::new(),
        }
    );
    s.summary = json!(summary);
    let [[bn_loss, plain_loss], [bn_acc, plain_acc]] = series;
    let panel = |title: &str, y: &str, bn, plain, y_range| Panel {
        title: title.into(),
        x_axis: XAxis::Log10,
        x_label: "initial weight std".into(),
        y_label: y.into(),
        y_range,
        series: vec![
            dots("batch norm", BATCH_NORM, bn),
            dots("plain", PLAIN, plain),
        ],
        legend: SeriesLabelPosition::MiddleMiddle,
    };
    let figure = Figure {
        title: format!("8 hidden layers, {steps} steps, by initial weight scale"),
        columns: 2,
        panel_size: (560, 400),
        panels: vec![
            panel(
                "final training loss",
                "training loss (last 100 steps)",
                bn_loss,
                plain_loss,
                None,
            ),
            panel(
                "test accuracy",
                "test accuracy",
                bn_acc,
                plain_acc,
                Some((0.0, 1.0)),
            ),
        ],
    };
    s.runs = outcomes;
    (s, figure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_has_twelve_settings_in_pairs_with_the_same_seed() {
        let runs = grid_runs(100, 7);
        assert_eq!(runs.len(), 24);
        for pair in runs.chunks(2) {
            assert_eq!(pair[0].config.norm, Norm::Batch);
            assert_eq!(pair[1].config.norm, Norm::None);
            assert_eq!(pair[0].training.seed, pair[1].training.seed);
            assert_eq!(pair[0].config.weight_init, pair[1].config.weight_init);
            assert_eq!(pair[0].config.hidden, vec![100; 3]);
        }
        let published: Vec<_> = grid_settings()
            .iter()
            .filter_map(|s| s.published())
            .collect();
        assert_eq!(published.len(), 3);
    }

    #[test]
    fn init_scales_span_four_decades() {
        let scales = init_scales();
        assert_eq!(scales.len(), 10);
        assert!((scales[0] - 1e-4).abs() < 1e-12 && (scales[9] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn markdown_tables_have_a_separator_per_column() {
        let md = table(&["a", "b"], &[vec!["1".into(), "2".into()]]);
        assert_eq!(md, "| a | b |\n|---|---|\n| 1 | 2 |\n");
    }
}
