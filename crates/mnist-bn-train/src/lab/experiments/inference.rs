//! `inference`: the lesson's batch-norm MLP tested with batch statistics (batches of one image
//! to the whole test set) and with its running statistics.

use burn::module::Module;
use burn::tensor::Device;
use mnist_bn_model::{MlpConfig, Norm};
use plotters::chart::SeriesLabelPosition;
use serde::Serialize;

use super::common::{Analysis, Tested, sgd};
use super::seeds::{Spread, transpose};
use crate::evaluate::{TestMode, TestReport, test_pass};
use crate::lab::run::{LabData, Outcome, Run};
use crate::plot::figure::{BATCH_NORM, Figure, Mark, Panel, Series, XAxis};

/// What `inference` found: one row per test pass.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct InferenceSummary {
    /// The batch sizes of the train-mode passes, smallest first (not in `lab.json`: each
    /// pass's label has its size).
    #[serde(skip)]
    pub sizes: Vec<usize>,
    /// The train-mode passes by batch size (labelled `train, {size}`), then eval mode
    /// (`eval`), then eval mode after a train-mode pass in batches of 64
    /// (`eval after train pass`).
    pub passes: Vec<InferencePass>,
}

/// One test pass of `inference`.
///
/// The fields `lab.json` holds are in alphabetical order: this summary used to be a
/// `serde_json` map, which sorts its keys, and `lab.json` keeps that order.
#[derive(Debug, Clone, Serialize)]
pub struct InferencePass {
    /// Test accuracy.
    pub accuracy: f64,
    /// How many of the ten digits the network predicted for at least one image.
    pub digits_predicted: usize,
    /// The short name on the figure, which the findings look passes up by.
    pub label: String,
    /// Mean test loss.
    pub loss: f64,
    /// What the pass did, in words.
    pub pass: String,
}

/// The lesson's batch-norm MLP trained as the lesson trains it: 10 epochs in file order.
pub(super) fn lesson_run(data: &LabData, seed: u64) -> Run {
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

/// Tests `tested`, or the model [`lesson_run`] kept from each seed, every way; its section and
/// figure.
pub(super) fn report(
    mut per_seed: Vec<Vec<Outcome>>,
    tested: Option<Tested>,
    data: &LabData,
    device: &Device,
) -> (Analysis<InferenceSummary>, Figure) {
    let (seeds, source) = match tested {
        Some((model, source)) => (vec![passes(&model, data, device)], source),
        None => {
            let seeds: Vec<InferenceSummary> = per_seed
                .iter_mut()
                .map(|outcomes| {
                    let outcome = outcomes.first_mut().expect("the lesson run");
                    let model = outcome
                        .model
                        .take()
                        .expect("the lesson run keeps its model");
                    passes(&model, data, device)
                })
                .collect();
            let steps = per_seed.iter().flatten().next().map_or(0, |o| o.steps);
            let source = format!(
                "the lesson's batch-norm MLP trained as in the lesson ({steps} steps: 10 epochs \
                 of batch 64 in file order, lr 0.01){}",
                match seeds.len() {
                    1 => String::new(),
                    n => format!(", once from each of {n} seeds"),
                }
            );
            (seeds, source)
        }
    };
    let (table, findings, figure) = (table(&seeds), findings(&seeds), figure(&seeds));
    let analysis = Analysis {
        question: "What happens when a batch-norm network is tested with batch statistics, one image or a \
             few at a time?",
        setup: format!(
            "Tested: {source}. Train mode normalizes each test batch with its own statistics \
                 (PyTorch's `model.train()`); each such pass starts from the trained running \
                 statistics. Eval mode uses the running statistics. A batch of one image has its own \
                 values as mean and zero variance, so batch norm outputs beta for it (TensorFlow's \
                 arithmetic; PyTorch refuses such a batch)."
        ),
        table,
        findings,
        summary: seeds,
        runs: per_seed.into_iter().flatten().collect(),
    };
    (analysis, figure)
}

/// Every test pass of one trained model (on the autodiff device).
fn passes(model: &mnist_bn_model::Net, data: &LabData, device: &Device) -> InferenceSummary {
    let test = &data.test;
    let mut sizes: Vec<usize> = [1, 2, 4, 16, 64, 10_000]
        .map(|b: usize| b.min(test.len()))
        .to_vec();
    sizes.dedup();
    let pass = |name: String, label: String, r: TestReport| InferencePass {
        accuracy: r.accuracy,
        digits_predicted: digits(&r),
        label,
        loss: r.loss,
        pass: name,
    };
    // The model is on the autodiff device: every pass below tests its own copy of the running
    // statistics, except the pair that shows the lesson's order.
    let mut passes: Vec<InferencePass> = sizes
        .iter()
        .map(|&b| {
            let report = test_pass(model, test, b, TestMode::Train, device);
            pass(
                format!("train mode (batch statistics), batch {b}"),
                format!("train, {b}"),
                report,
            )
        })
        .collect();
    let pristine = test_pass(model, test, 1000, TestMode::Eval, device);
    passes.push(pass(
        "eval mode (running statistics)".into(),
        "eval".into(),
        pristine,
    ));
    let copy = model.valid();
    let _ = test_pass(&copy, test, 64, TestMode::Train, device);
    let after = test_pass(&copy, test, 1000, TestMode::Eval, device);
    passes.push(pass(
        "eval mode after a train-mode pass in batches of 64 (the lesson's order)".into(),
        "eval after train pass".into(),
        after,
    ));
    InferenceSummary { sizes, passes }
}

/// How many digits a pass predicted for at least one image.
fn digits(r: &TestReport) -> usize {
    (0..r.confusion.len())
        .filter(|&p| r.confusion.iter().any(|row| row[p] > 0))
        .count()
}

/// Digits ever predicted over the seeds: `10`, or `9–10` where the seeds differ.
fn digits_cell(pass: &[&InferencePass]) -> String {
    let d = Spread::over(pass, |p| p.digits_predicted as f64);
    if d.min == d.max {
        format!("{}", d.min)
    } else {
        format!("{}–{}", d.min, d.max)
    }
}

fn table(seeds: &[InferenceSummary]) -> String {
    let rows: Vec<Vec<String>> = transpose(seeds, |s| &s.passes)
        .iter()
        .map(|p| {
            vec![
                p[0].pass.clone(),
                Spread::over(p, |p| p.accuracy).pct(),
                Spread::over(p, |p| p.loss).fixed(4),
                digits_cell(p),
            ]
        })
        .collect();
    super::common::table(
        &["test pass", "accuracy", "loss", "digits ever predicted"],
        &rows,
    )
}

/// What batch statistics do to one image, to a few, and what the lesson's order does to the
/// running statistics (the mean over the seeds).
fn findings(seeds: &[InferenceSummary]) -> String {
    let Some(first) = seeds.first() else {
        return String::new();
    };
    let passes = transpose(seeds, |s| &s.passes);
    let find = |label: &str| passes.iter().find(|p| p[0].label == label);
    let acc = |label: &str| Spread::over(find(label).map_or(&[][..], |p| &p[..]), |p| p.accuracy);
    let one = first
        .sizes
        .first()
        .and_then(|b| find(&format!("train, {b}")));
    let others: Vec<String> = first
        .sizes
        .iter()
        .skip(1)
        .map(|b| format!("{} with batches of {b}", acc(&format!("train, {b}")).pct()))
        .collect();
    let moved = 100.0 * (acc("eval after train pass").mean - acc("eval").mean);
    format!(
        "One image at a time with batch statistics, every image is normalized to the same \
         vector (beta), so the network gives every image the same answer: {} digit(s) ever \
         predicted, {} accuracy. With more images sharing the statistics: {}. With running \
         statistics (eval mode) each image is classified on its own, whatever the batch: {}. \
         After a train-mode pass in batches of 64 (the lesson tests in that order) the running \
         statistics have moved toward the test batches', and eval mode gives {} ({moved:+.2} \
         points{}){}.",
        one.map_or("0".into(), |p| digits_cell(p)),
        one.map_or(Spread::of([f64::NAN]), |p| Spread::over(p, |p| p.accuracy))
            .pct(),
        others.join(", "),
        acc("eval").pct(),
        acc("eval after train pass").pct(),
        if seeds.len() > 1 { " on the mean" } else { "" },
        if moved.abs() < 0.005 {
            ": here the lesson's order did not change the eval-mode figure"
        } else {
            ": the lesson's eval-mode figure is not quite that of the trained model"
        },
    )
}

/// One bar per test pass (the mean over the seeds), with a dot for each seed's.
fn figure(seeds: &[InferenceSummary]) -> Figure {
    let passes = transpose(seeds, |s| &s.passes);
    let bars = Series {
        label: String::new(),
        color: BATCH_NORM,
        mark: Mark::Bars,
        points: passes
            .iter()
            .enumerate()
            .map(|(i, p)| (i as f64, Spread::over(p, |p| p.accuracy).mean))
            .collect(),
    };
    let dots = Series {
        label: String::new(),
        color: BATCH_NORM,
        mark: Mark::Dots,
        points: passes
            .iter()
            .enumerate()
            .flat_map(|(i, p)| p.iter().map(move |p| (i as f64, p.accuracy)))
            .collect(),
    };
    Figure {
        title: "Test accuracy of the lesson's batch-norm MLP, by how it is tested".into(),
        columns: 1,
        panel_size: (1100, 460),
        panels: vec![Panel {
            title: "train mode: batch statistics of test batches of 1 … N; eval mode: running statistics".into(),
            x_axis: XAxis::Categories(passes.iter().map(|p| p[0].label.clone()).collect()),
            x_label: "test pass (mode, batch size)".into(),
            y_label: "test accuracy".into(),
            y_range: Some((0.0, 1.0)),
            series: if seeds.len() > 1 { vec![bars, dots] } else { vec![bars] },
            legend: SeriesLabelPosition::UpperLeft,
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(label: &str, accuracy: f64, digits_predicted: usize) -> InferencePass {
        InferencePass {
            accuracy,
            digits_predicted,
            label: label.into(),
            loss: 0.5,
            pass: format!("the pass {label}"),
        }
    }

    /// Batches of 1, 4 and 100, then eval mode before and after the lesson's train pass.
    fn summary(eval: f64, eval_after: f64) -> InferenceSummary {
        InferenceSummary {
            sizes: vec![1, 4, 100],
            passes: vec![
                pass("train, 1", 0.098, 1),
                pass("train, 4", 0.7, 10),
                pass("train, 100", 0.95, 10),
                pass("eval", eval, 10),
                pass("eval after train pass", eval_after, 10),
            ],
        }
    }

    #[test]
    fn the_findings_read_every_pass_and_a_moved_eval_figure() {
        let findings = findings(&[summary(0.96, 0.955)]);
        assert!(
            findings.contains(
                "the same answer: 1 digit(s) ever predicted, 9.80% accuracy. With more images \
                 sharing the statistics: 70.00% with batches of 4, 95.00% with batches of 100. \
                 With running statistics (eval mode) each image is classified on its own, \
                 whatever the batch: 96.00%."
            ),
            "{findings}"
        );
        assert!(
            findings.ends_with(
                "eval mode gives 95.50% (-0.50 points): the lesson's eval-mode figure is not \
                 quite that of the trained model."
            ),
            "{findings}"
        );
    }

    #[test]
    fn an_eval_figure_the_lessons_order_did_not_move_is_reported_as_such() {
        let findings = findings(&[summary(0.96, 0.96)]);
        assert!(
            findings.ends_with(
                "eval mode gives 96.00% (+0.00 points): here the lesson's order did not change \
                 the eval-mode figure."
            ),
            "{findings}"
        );
    }

    #[test]
    fn over_seeds_every_pass_is_a_mean_with_its_range() {
        let mut b = summary(0.94, 0.95);
        b.passes[0].digits_predicted = 2;
        let findings = findings(&[summary(0.96, 0.955), b.clone()]);
        assert!(
            findings.contains(
                "the same answer: 1–2 digit(s) ever predicted, 9.80% (9.80–9.80) accuracy."
            ),
            "{findings}"
        );
        assert!(
            findings.ends_with(
                "eval mode gives 95.25% (95.00–95.50) (+0.25 points on the mean): the lesson's \
                 eval-mode figure is not quite that of the trained model."
            ),
            "{findings}"
        );
        let table = table(&[summary(0.96, 0.955), b]);
        assert!(
            table
                .contains("| the pass eval | 95.00% (94.00–96.00) | 0.5000 (0.5000–0.5000) | 10 |"),
            "{table}"
        );
        assert!(table.contains("| 1–2 |"), "{table}");
    }

    #[test]
    fn the_table_has_a_row_per_pass() {
        let table = table(&[summary(0.96, 0.96)]);
        assert_eq!(table.lines().count(), 2 + 5);
        assert!(
            table.contains("| the pass train, 1 | 9.80% | 0.5000 | 1 |"),
            "{table}"
        );
    }

    #[test]
    fn the_summary_keeps_lab_json_keys_and_values() {
        let summary = InferenceSummary {
            sizes: vec![1],
            passes: vec![pass("train, 1", 0.25, 1)],
        };
        assert_eq!(
            serde_json::to_string(&summary).unwrap(),
            "[{\"accuracy\":0.25,\"digits_predicted\":1,\"label\":\"train, 1\",\"loss\":0.5,\
             \"pass\":\"the pass train, 1\"}]"
        );
    }
}
