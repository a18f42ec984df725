//! The lesson's batch-norm MLP trained by Burn's own training loop: burn-train's `Learner`
//! (`burn::train::Learner`), with its loss and accuracy metrics, on the data crate's MNIST
//! `Dataset` and `Batcher`, one epoch, validated on the test set. The model crate's feature
//! `train` gives the models burn-train's `TrainStep` and `InferenceStep`; this is all a Burn
//! project needs to write. It ends with burn-train's summary of the metrics.
//!
//! Run: `cargo run --release --example burn_learner`

use burn::data::dataloader::DataLoaderBuilder;
use burn::optim::SgdConfig;
use burn::tensor::Device;
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::{Learner, SupervisedTraining};
use mnist_bn_data::{Mnist, MnistBatcher, Split};
use mnist_bn_model::{MlpConfig, Norm};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = Device::flex().autodiff();
    device.seed(0);
    // The lesson: 784 → 512 → 256 → 10, batch norm after each hidden layer, plain SGD at 0.01,
    // batches of 64 in file order.
    let model = MlpConfig::new(Norm::Batch).init(&device);
    let train = DataLoaderBuilder::new(MnistBatcher)
        .batch_size(64)
        .build(Mnist::load(Split::Train, None)?);
    let test = DataLoaderBuilder::new(MnistBatcher)
        .batch_size(1000)
        .build(Mnist::load(Split::Test, None)?);
    let artifacts = std::env::temp_dir().join("mnist-bn-burn-learner");
    let result = SupervisedTraining::new(&artifacts, train, test)
        .metrics((AccuracyMetric::new(), LossMetric::new()))
        .num_epochs(1)
        .summary()
        .launch(Learner::new(model, SgdConfig::new().init(), 0.01));
    if let Some(error) = result.error {
        return Err(format!("training failed: {error}").into());
    }
    println!("burn-train's logs and metrics: {}", artifacts.display());
    Ok(())
}
