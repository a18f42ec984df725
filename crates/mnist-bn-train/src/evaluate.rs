//! Testing a model: loss, accuracy per digit, and the confusion matrix, in the lesson's format.

use std::fmt;

use burn::module::Module;
use burn::module::{ModuleVisitor, Param};
use burn::nn::loss::CrossEntropyLoss;
use burn::tensor::Device;
use burn::tensor::Tensor;
use burn::tensor::TensorData;
use burn::tensor::activation::softmax;
use burn::tensor::read_sync;
use mnist_bn_data::{Batches, IMAGE_PIXELS, Mnist, NUM_CLASSES, epoch_order, pixel_to_f32};
use mnist_bn_model::{Net, Norm};
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::learner::check_batches;

/// Which statistics batch norm uses while testing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TestMode {
    /// Batch statistics, as after PyTorch's `model.train()`; every test batch also moves the
    /// running statistics.
    Train,
    /// Running statistics, as after PyTorch's `model.eval()`.
    Eval,
}

impl fmt::Display for TestMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TestMode::Train => "train",
            TestMode::Eval => "eval",
        })
    }
}

/// Accuracy on one digit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigitAccuracy {
    /// The digit.
    pub digit: usize,
    /// Test images of this digit classified right.
    pub correct: usize,
    /// Test images of this digit.
    pub total: usize,
}

/// The result of one test pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestReport {
    /// The batch norm mode of the pass.
    pub mode: TestMode,
    /// Mean cross-entropy over the test images.
    pub loss: f64,
    /// Images classified right.
    pub correct: usize,
    /// Images tested.
    pub total: usize,
    /// `correct / total`.
    pub accuracy: f64,
    /// Accuracy per digit, 0 to 9.
    pub per_digit: Vec<DigitAccuracy>,
    /// `confusion[label][prediction]`: how many images of each digit got each prediction.
    pub confusion: Vec<Vec<usize>>,
}

/// Tests `model` (an inference model, `model.valid()`) on `data` in batches of `batch_size`,
/// in file order, on `device` (without autodiff).
///
/// In [`TestMode::Train`] a batch-norm model normalizes with batch statistics and updates
/// its running statistics (which the model's clones share), exactly as a PyTorch test pass
/// after `model.train()`; a model without batch norm behaves the same in both modes.
pub fn evaluate(
    model: &Net,
    data: &Mnist,
    batch_size: usize,
    mode: TestMode,
    device: &Device,
) -> Result<TestReport, TrainError> {
    if batch_size == 0 {
        return Err(TrainError::Invalid("batch size must be at least 1".into()));
    }
    if data.is_empty() {
        return Err(TrainError::Invalid("the test set is empty".into()));
    }
    if mode == TestMode::Train {
        check_batches(model.norm(), data.len(), batch_size, "test")?;
    }
    Ok(test_pass(model, data, batch_size, mode, device))
}

/// [`evaluate`] without its checks: in train mode a batch of one image is allowed (batch norm
/// then outputs beta for it, see `TorchBatchNorm::forward`), as the lab's `inference`
/// experiment needs. `batch_size` and `data` must not be empty.
pub fn test_pass(
    model: &Net,
    data: &Mnist,
    batch_size: usize,
    mode: TestMode,
    device: &Device,
) -> TestReport {
    read_sync(test_pass_async(model, data, batch_size, mode, device))
}

/// [`test_pass`], reading without blocking (a browser's WebGPU device).
pub async fn test_pass_async(
    model: &Net,
    data: &Mnist,
    batch_size: usize,
    mode: TestMode,
    device: &Device,
) -> TestReport {
    let device = device.clone().without_autodiff();
    // A clone shares the running statistics, so a train-mode pass moves the caller's; `valid`
    // would copy them, so it is only taken for a model still on an autodiff device.
    let model = if on_autodiff(model) {
        model.valid()
    } else {
        model.clone()
    };
    let model = model.with_batch_statistics(mode == TestMode::Train);
    let loss_fn = CrossEntropyLoss::new(None, &device);
    let mut confusion = vec![vec![0usize; NUM_CLASSES]; NUM_CLASSES];
    let mut loss_sum = 0.0f64;
    let mut offset = 0;
    for batch in Batches::new(data, epoch_order(data.len(), None, 0), batch_size, &device) {
        let n = batch.targets.dims()[0];
        let logits = model.forward(batch.images);
        let predictions = logits
            .clone()
            .argmax(1)
            .into_data_async()
            .await
            .expect("the device reads the predictions")
            .convert::<i64>();
        let loss = loss_fn
            .forward(logits, batch.targets)
            .into_scalar_async::<f32>()
            .await
            .expect("the device reads the loss");
        loss_sum += f64::from(loss) * n as f64;
        let labels = &data.labels()[offset..offset + n];
        let predictions = predictions.as_slice::<i64>().expect("converted to i64");
        for (&label, &predicted) in labels.iter().zip(predictions) {
            confusion[usize::from(label)][predicted as usize] += 1;
        }
        offset += n;
    }
    TestReport::from_confusion(mode, loss_sum / data.len() as f64, confusion)
}

/// Class probabilities for images (784 pixels each, 0 to 255, white digit on black), with
/// batch norm on its running statistics (eval mode).
pub fn predict(
    model: &Net,
    images: &[[u8; IMAGE_PIXELS]],
    device: &Device,
) -> Vec<[f32; NUM_CLASSES]> {
    predict_in(model, images, TestMode::Eval, device)
}

/// [`predict`] in either mode. In [`TestMode::Train`] the images are one batch normalized with
/// its own statistics, as PyTorch does after `model.train()`: a single image then normalizes
/// to zero at every batch norm, and the model gives the same answer whatever the image (the
/// batch-of-one pitfall the web page shows). A batch of two or more also moves the running
/// statistics, as in PyTorch; a batch of one leaves them.
pub fn predict_in(
    model: &Net,
    images: &[[u8; IMAGE_PIXELS]],
    mode: TestMode,
    device: &Device,
) -> Vec<[f32; NUM_CLASSES]> {
    read_sync(predict_in_async(model, images, mode, device))
}

/// [`predict_in`], reading without blocking (a browser's WebGPU device).
pub async fn predict_in_async(
    model: &Net,
    images: &[[u8; IMAGE_PIXELS]],
    mode: TestMode,
    device: &Device,
) -> Vec<[f32; NUM_CLASSES]> {
    rows(forward_images(model, images, mode, device).map(|l| softmax(l, 1))).await
}

/// The logits (before softmax) [`predict_in`] turns into probabilities.
pub fn logits_in(
    model: &Net,
    images: &[[u8; IMAGE_PIXELS]],
    mode: TestMode,
    device: &Device,
) -> Vec<[f32; NUM_CLASSES]> {
    read_sync(logits_in_async(model, images, mode, device))
}

/// [`logits_in`], reading without blocking (a browser's WebGPU device).
pub async fn logits_in_async(
    model: &Net,
    images: &[[u8; IMAGE_PIXELS]],
    mode: TestMode,
    device: &Device,
) -> Vec<[f32; NUM_CLASSES]> {
    rows(forward_images(model, images, mode, device)).await
}

/// The model's output for the images, scaled like the training data; `None` for no images.
fn forward_images(
    model: &Net,
    images: &[[u8; IMAGE_PIXELS]],
    mode: TestMode,
    device: &Device,
) -> Option<Tensor<2>> {
    if images.is_empty() {
        return None;
    }
    let device = device.clone().without_autodiff();
    let model = if on_autodiff(model) {
        model.valid()
    } else {
        model.clone()
    };
    let model = model.with_batch_statistics(mode == TestMode::Train);
    let pixels: Vec<f32> = images.iter().flatten().copied().map(pixel_to_f32).collect();
    let input = Tensor::<2>::from_data(
        TensorData::new(pixels, [images.len(), IMAGE_PIXELS]),
        &device,
    );
    Some(model.forward(input))
}

/// A `[n, 10]` tensor's rows (none for `None`).
async fn rows(output: Option<Tensor<2>>) -> Vec<[f32; NUM_CLASSES]> {
    let Some(output) = output else {
        return Vec::new();
    };
    let data = output
        .into_data_async()
        .await
        .expect("the device reads the outputs")
        .convert::<f32>();
    let values = data.as_slice::<f32>().expect("converted to f32");
    values
        .chunks_exact(NUM_CLASSES)
        .map(|row| row.try_into().expect("10 classes"))
        .collect()
}

/// Whether the model's parameters are on an autodiff device (a training model).
fn on_autodiff(model: &Net) -> bool {
    struct FirstParam(Option<bool>);
    impl ModuleVisitor for FirstParam {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if self.0.is_none() {
                self.0 = Some(param.val().is_autodiff());
            }
        }
    }
    let mut visitor = FirstParam(None);
    model.visit(&mut visitor);
    visitor.0.unwrap_or(false)
}

/// The modes a model of this kind is tested in, in the lesson's order: a model with batch
/// norm (or batch renorm) in train mode, then in eval mode (with the running statistics the
/// train-mode pass moved); any other in eval mode (layer and group norm compute the same in
/// both).
pub fn test_modes(norm: Norm) -> &'static [TestMode] {
    if norm.uses_batch_statistics() {
        &[TestMode::Train, TestMode::Eval]
    } else {
        &[TestMode::Eval]
    }
}

impl TestReport {
    /// Builds the report from the summed loss and the confusion matrix.
    pub fn from_confusion(mode: TestMode, loss: f64, confusion: Vec<Vec<usize>>) -> Self {
        let per_digit: Vec<DigitAccuracy> = confusion
            .iter()
            .enumerate()
            .map(|(digit, row)| DigitAccuracy {
                digit,
                correct: row[digit],
                total: row.iter().sum(),
            })
            .collect();
        let correct = per_digit.iter().map(|d| d.correct).sum();
        let total = per_digit.iter().map(|d| d.total).sum();
        Self {
            mode,
            loss,
            correct,
            total,
            accuracy: correct as f64 / total.max(1) as f64,
            per_digit,
            confusion,
        }
    }
}

/// The lesson's test printout: loss, accuracy per digit, overall accuracy.
impl fmt::Display for TestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Test Loss: {:.6}", self.loss)?;
        writeln!(f)?;
        for d in &self.per_digit {
            // Python's '%2d' of a float truncates toward zero, as integer division does.
            match (100 * d.correct).checked_div(d.total) {
                Some(percent) => writeln!(
                    f,
                    "Test Accuracy of {:>5}: {percent:>2}% ({:>2}/{:>2})",
                    d.digit, d.correct, d.total
                )?,
                None => writeln!(f, "Test Accuracy of {:>5}: N/A (no test images)", d.digit)?,
            }
        }
        writeln!(f)?;
        let percent = (100 * self.correct) / self.total.max(1);
        write!(
            f,
            "Test Accuracy (Overall): {percent:>2}% ({:>2}/{:>2})",
            self.correct, self.total
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_the_lessons_lines() {
        let mut confusion = vec![vec![0; 10]; 10];
        confusion[3][3] = 990;
        confusion[3][5] = 20;
        confusion[0][0] = 7;
        let report = TestReport::from_confusion(TestMode::Eval, 0.0732, confusion);
        let text = report.to_string();
        assert!(text.starts_with("Test Loss: 0.073200\n\n"), "{text}");
        assert!(
            text.contains("Test Accuracy of     3: 98% (990/1010)\n"),
            "{text}"
        );
        assert!(
            text.contains("Test Accuracy of     0: 100% ( 7/ 7)\n"),
            "{text}"
        );
        assert!(text.contains("Test Accuracy of     1: N/A"), "{text}");
        assert!(
            text.ends_with("Test Accuracy (Overall): 98% (997/1017)"),
            "{text}"
        );
        assert_eq!(report.per_digit[3].total, 1010);
        assert_eq!((report.correct, report.total), (997, 1017));
    }
}
