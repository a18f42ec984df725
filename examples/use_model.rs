//! Using the model crate as another Burn project would: build the lesson's batch-norm MLP,
//! train it for a few steps on real MNIST images with a hand-written loop, and classify.
//!
//! Run: `cargo run --release --example use_model`

use burn::module::Module;
use burn::nn::loss::CrossEntropyLoss;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::Device;
use mnist_bn_data::{Batches, Mnist, Split, epoch_order};
use mnist_bn_model::{MlpConfig, Norm};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = Device::flex().autodiff();
    device.seed(0);
    let mut model = MlpConfig::new(Norm::Batch).init(&device);
    let mut optim = SgdConfig::new().init();
    let loss_fn = CrossEntropyLoss::new(None, &device);

    // 100 batches of 64 images, in file order.
    let train = Mnist::load(Split::Train, None)?.truncate(6400);
    for (step, batch) in
        Batches::new(&train, epoch_order(train.len(), None, 0), 64, &device).enumerate()
    {
        let loss = loss_fn.forward(model.forward(batch.images), batch.targets);
        if step % 25 == 0 {
            println!(
                "step {step:3}: loss {:.4}",
                loss.clone().into_scalar::<f32>()
            );
        }
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(0.01, model, grads);
    }

    // Inference uses the running statistics.
    let model = model.valid();
    let test = Mnist::load(Split::Test, None)?.truncate(8);
    let inference = device.clone().without_autodiff();
    let batch = Batches::new(&test, epoch_order(8, None, 0), 8, &inference)
        .next()
        .expect("one batch");
    let predicted = model
        .forward(batch.images)
        .argmax(1)
        .into_data()
        .convert::<i64>();
    println!("predicted: {:?}", predicted.as_slice::<i64>().expect("i64"));
    println!("labels:    {:?}", test.labels());
    Ok(())
}
