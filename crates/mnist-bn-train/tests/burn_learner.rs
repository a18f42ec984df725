//! burn-train's `Learner` trains the lesson's batch-norm MLP, through the model crate's
//! `TrainStep` and `InferenceStep` (its feature `train`), to the numbers this project's learner
//! reaches from the same weights on the same batches in the same order.
//!
//! One test in a binary of its own: it seeds flex's one generator, which no other test may
//! draw from meanwhile.

use std::path::Path;

use burn::data::dataloader::DataLoaderBuilder;
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::SgdConfig;
use burn::tensor::{Device, Tensor};
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::{Learner as BurnLearner, SupervisedTraining};
use mnist_bn_data::{Mnist, MnistBatcher, Split};
use mnist_bn_model::{MlpConfig, Net, NetConfig, Norm};
use mnist_bn_train::{Learner, TrainingConfig, seeded_model};

/// Every parameter and running statistic of `net`, in order, as f32.
fn values(net: &Net) -> Vec<Vec<f32>> {
    struct All(Vec<Vec<f32>>);
    impl ModuleVisitor for All {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let data = param.val().into_data().convert::<f32>();
            self.0.push(data.try_to_vec::<f32>().expect("f32 values"));
        }
    }
    let mut all = All(Vec::new());
    net.visit(&mut all);
    all.0
}

/// The epoch's value of a metric in burn-train's log (`<dir>/train/epoch-1/<Metric>.log`, one
/// `value,count` line per batch): the mean over the batches, as burn-train's LossMetric
/// reports it for a loss of one value per batch.
fn logged_mean(dir: &Path, metric: &str) -> f64 {
    let path = dir.join("train/epoch-1").join(format!("{metric}.log"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let values: Vec<f64> = text
        .lines()
        .filter_map(|line| line.split(',').next()?.parse().ok())
        .collect();
    assert!(!values.is_empty(), "{}: {text}", path.display());
    values.iter().sum::<f64>() / values.len() as f64
}

#[test]
fn burns_learner_trains_the_lesson_mlp_as_ours_does() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
    // 3,200 images: 50 batches of 64.
    let train = Mnist::load(Split::Train, Some(&dir))
        .unwrap()
        .truncate(3200);
    let test = Mnist::load(Split::Test, Some(&dir)).unwrap().truncate(1000);
    let device = Device::flex();
    let config = NetConfig::Mlp(MlpConfig::new(Norm::Batch));

    // Ours: the lesson's recipe, one epoch.
    let ours = Learner::new(TrainingConfig::new().with_epochs(1), &device);
    let (mine, stats, _) = ours
        .fit_epochs(seeded_model(&config, 0, None, &device), &train)
        .unwrap();

    // Burn's, from the same weights, on the data crate's Dataset and Batcher in file order.
    let start = ours.training_model(seeded_model(&config, 0, None, &device));
    assert_eq!(
        values(&start),
        values(&seeded_model(&config, 0, None, &device))
    );
    let out = tempfile::tempdir().unwrap();
    let result = SupervisedTraining::new(
        out.path(),
        DataLoaderBuilder::new(MnistBatcher)
            .batch_size(64)
            .build(train.clone()),
        DataLoaderBuilder::new(MnistBatcher)
            .batch_size(1000)
            .build(test),
    )
    .metrics((AccuracyMetric::new(), LossMetric::new()))
    .num_epochs(1)
    .with_application_logger(None)
    .launch(BurnLearner::new(start, SgdConfig::new().init(), 0.01));
    assert!(result.error.is_none(), "{:?}", result.error);
    let theirs = result.model;

    // The same epoch loss: the mean of the 50 batch losses, each before its step.
    let logged = logged_mean(out.path(), "Loss");
    assert!(
        (logged - stats[0].train_loss).abs() <= 1e-6,
        "burn-train's epoch loss {logged} against ours {}",
        stats[0].train_loss
    );
    // And the same weights and running statistics after the epoch.
    let (a, b) = (values(&mine.valid()), values(&theirs));
    assert_eq!(a.len(), b.len());
    let worst = a
        .iter()
        .flatten()
        .zip(b.iter().flatten())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(worst <= 1e-6, "the weights differ by {worst}");
    println!(
        "epoch loss: ours {} burn-train {logged}; weights within {worst}",
        stats[0].train_loss
    );
}
