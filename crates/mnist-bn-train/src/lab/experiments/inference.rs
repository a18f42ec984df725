//! `inference`: the lesson's batch-norm MLP tested with batch statistics (batches of one image
//! to the whole test set) and with its running statistics.

use burn::module::Module;
use burn::tensor::Device;
use mnist_bn_model::{MlpConfig, Norm};
use plotters::chart::SeriesLabelPosition;
use serde::Serialize;

use super::common::{Analysis, Tested, pct, sgd};
use crate::evaluate::{TestMode, TestReport, test_pass};
use crate::lab::driver::{LabData, Outcome, Run};
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

/// Tests `tested`, or the model [`lesson_run`] kept, every way; its section and figure.
pub(super) fn report(
    mut outcomes: Vec<Outcome>,
    tested: Option<Tested>,
    data: &LabData,
    device: &Device,
) -> (Analysis<InferenceSummary>, Figure) {
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
            let report = test_pass(&model, test, b, TestMode::Train, device);
            pass(
                format!("train mode (batch statistics), batch {b}"),
                format!("train, {b}"),
                report,
            )
        })
        .collect();
    let pristine = test_pass(&model, test, 1000, TestMode::Eval, device);
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
    let summary = InferenceSummary { sizes, passes };
    let (table, findings, figure) = (table(&summary), findings(&summary), figure(&summary));
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
        summary,
        runs: outcomes,
    };
    (analysis, figure)
}

/// How many digits a pass predicted for at least one image.
fn digits(r: &TestReport) -> usize {
    (0..r.confusion.len())
        .filter(|&p| r.confusion.iter().any(|row| row[p] > 0))
        .count()
}

fn table(summary: &InferenceSummary) -> String {
    let rows: Vec<Vec<String>> = summary
        .passes
        .iter()
        .map(|p| {
            vec![
                p.pass.clone(),
                pct(p.accuracy),
                format!("{:.4}", p.loss),
                p.digits_predicted.to_string(),
            ]
        })
        .collect();
    super::common::table(
        &["test pass", "accuracy", "loss", "digits ever predicted"],
        &rows,
    )
}

/// What batch statistics do to one image, to a few, and what the lesson's order does to the
/// running statistics.
fn findings(summary: &InferenceSummary) -> String {
    let find = |label: &str| summary.passes.iter().find(|p| p.label == label);
    let acc = |label: &str| find(label).map_or(f64::NAN, |p| p.accuracy);
    let one = summary
        .sizes
        .first()
        .and_then(|b| find(&format!("train, {b}")));
    let others: Vec<String> = summary
        .sizes
        .iter()
        .skip(1)
        .map(|b| format!("{} with batches of {b}", pct(acc(&format!("train, {b}")))))
        .collect();
    let moved = 100.0 * (acc("eval after train pass") - acc("eval"));
    format!(
        "One image at a time with batch statistics, every image is normalized to the same \
         vector (beta), so the network gives every image the same answer: {} digit(s) ever \
         predicted, {} accuracy. With more images sharing the statistics: {}. With running \
         statistics (eval mode) each image is classified on its own, whatever the batch: {}. \
         After a train-mode pass in batches of 64 (the lesson tests in that order) the running \
         statistics have moved toward the test batches', and eval mode gives {} ({moved:+.2} \
         points){}.",
        one.map_or(0, |p| p.digits_predicted),
        pct(one.map_or(f64::NAN, |p| p.accuracy)),
        others.join(", "),
        pct(acc("eval")),
        pct(acc("eval after train pass")),
        if moved.abs() < 0.005 {
            ": here the lesson's order did not change the eval-mode figure"
        } else {
            ": the lesson's eval-mode figure is not quite that of the trained model"
        },
    )
}

/// One bar per test pass.
fn figure(summary: &InferenceSummary) -> Figure {
    Figure {
        title: "Test accuracy of the lesson's batch-norm MLP, by how it is tested".into(),
        columns: 1,
        panel_size: (1100, 460),
        panels: vec![Panel {
            title: "train mode: batch statistics of test batches of 1 … N; eval mode: running statistics".into(),
            x_axis: XAxis::Categories(summary.passes.iter().map(|p| p.label.clone()).collect()),
            x_label: "test pass (mode, batch size)".into(),
            y_label: "test accuracy".into(),
            y_range: Some((0.0, 1.0)),
            series: vec![Series {
                label: String::new(),
                color: BATCH_NORM,
                mark: Mark::Bars,
                points: summary
                    .passes
                    .iter()
                    .enumerate()
                    .map(|(i, p)| (i as f64, p.accuracy))
                    .collect(),
            }],
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
        let findings = findings(&summary(0.96, 0.955));
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
        let findings = findings(&summary(0.96, 0.96));
        assert!(
            findings.ends_with(
                "eval mode gives 96.00% (+0.00 points): here the lesson's order did not change \
                 the eval-mode figure."
            ),
            "{findings}"
        );
    }

    #[test]
    fn the_table_has_a_row_per_pass() {
        let table = table(&summary(0.96, 0.96));
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
