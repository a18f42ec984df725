//! Initial weights drawn from a seed: in a test binary of its own, because the device's
//! generator is shared by every test running in the same process.

use burn::nn::Initializer;
use burn::tensor::Device;
use mnist_bn_model::{MlpConfig, Norm, draw_parameters};

/// With a weight initializer the biases start at zero, batch norm draws nothing, and so the
/// same seed gives a network with batch norm exactly the weights of its twin without (what the
/// lab's pairs rely on).
#[test]
fn a_weight_initializer_gives_zero_biases_and_twins_the_same_weights() {
    let init = Some(Initializer::Normal {
        mean: 0.0,
        std: 5.0,
    });
    let make = |norm| {
        let device = Device::flex();
        device.seed(0);
        let model = MlpConfig::new(norm)
            .with_hidden(vec![100, 100])
            .with_weight_init(init.clone())
            .init(&device);
        draw_parameters(&model);
        model
    };
    let (bn, plain) = (make(Norm::Batch), make(Norm::None));
    for (a, b) in bn.hidden.iter().zip(&plain.hidden) {
        a.linear
            .weight
            .val()
            .into_data()
            .assert_eq(&b.linear.weight.val().into_data(), true);
        let bias = b.linear.bias.as_ref().unwrap().val();
        assert_eq!(bias.abs().sum().into_scalar::<f32>(), 0.0);
    }
    let std = {
        let w = plain.hidden[1].linear.weight.val().reshape([100 * 100]);
        w.var(0).sqrt().into_scalar::<f32>()
    };
    assert!((std - 5.0).abs() < 0.25, "std {std}");
    bn.output
        .weight
        .val()
        .into_data()
        .assert_eq(&plain.output.weight.val().into_data(), true);
}
