//! `TorchBatchNorm` against Burn's own `nn::BatchNorm` (0.22), on numbers: where the two agree
//! and each difference its documentation lists (the table in `TorchBatchNorm`'s doc), so that a
//! Burn release that changes one of them shows here.

use burn::module::{Module, Param};
use burn::nn::{BatchNorm, BatchNormConfig};
use burn::tensor::{Device, Tensor, TensorData, Tolerance};
use mnist_bn_model::{TorchBatchNorm, TorchBatchNormConfig};

/// `[4, 2]`: channel 0 = 1, 2, 3, 4 (mean 2.5, biased variance 1.25, unbiased 5/3); channel
/// 1 = 0, 0, 2, 6 (mean 2, biased 6, unbiased 8).
fn batch(device: &Device) -> Tensor<2> {
    Tensor::from_data(
        TensorData::from([[1.0f32, 0.0], [2.0, 0.0], [3.0, 2.0], [4.0, 6.0]]),
        device,
    )
}

/// Both layers with γ = (0.5, 2) and β = (0.1, -0.3).
fn layers(device: &Device) -> (TorchBatchNorm, BatchNorm) {
    let gamma = || Tensor::<1>::from_data(TensorData::from([0.5f32, 2.0]), device);
    let beta = || Tensor::<1>::from_data(TensorData::from([0.1f32, -0.3]), device);
    let mut ours = TorchBatchNormConfig::new(2).init(device);
    ours.weight = Param::from_tensor(gamma());
    ours.bias = Param::from_tensor(beta());
    let mut burns = BatchNormConfig::new(2).init(device);
    burns.gamma = Param::from_tensor(gamma());
    burns.beta = Param::from_tensor(beta());
    (ours, burns)
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

#[test]
fn training_outputs_and_the_running_mean_agree() {
    let device = Device::flex().autodiff();
    let (ours, burns) = layers(&device);
    let (a, b) = (ours.forward(batch(&device)), burns.forward(batch(&device)));
    a.into_data()
        .assert_approx_eq::<f32>(&b.into_data(), Tolerance::absolute(1e-6));
    // The same momentum convention: 0.9 · old + 0.1 · the batch's mean.
    let expected = [0.25f32, 0.2];
    for mean in [
        values(ours.running_mean.value_sync()),
        values(burns.running_mean.value_sync()),
    ] {
        for (m, e) in mean.iter().zip(expected) {
            assert!((m - e).abs() < 1e-6, "{mean:?}");
        }
    }
}

#[test]
fn the_running_variance_takes_the_unbiased_batch_variance_in_ours_and_the_biased_in_burns() {
    let device = Device::flex().autodiff();
    let (ours, burns) = layers(&device);
    let _ = (ours.forward(batch(&device)), burns.forward(batch(&device)));
    // PyTorch: 0.9 · 1 + 0.1 · (5/3, 8); Burn: 0.9 · 1 + 0.1 · (1.25, 6).
    let close = |got: Vec<f32>, want: [f32; 2]| {
        assert!(
            got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-6),
            "{got:?} against {want:?}"
        );
    };
    close(
        values(ours.running_var.value_sync()),
        [0.9 + 0.1 * 5.0 / 3.0, 0.9 + 0.8],
    );
    close(
        values(burns.running_var.value_sync()),
        [0.9 + 0.125, 0.9 + 0.6],
    );
}

#[test]
fn the_mode_is_the_training_flag_in_ours_and_the_flag_and_autodiff_in_burns() {
    // No autodiff, training flag on (as PyTorch's `model.train()` before a test pass).
    let device = Device::flex();
    let (ours, burns) = layers(&device);
    let ours = ours.with_batch_statistics(true);
    let (a, b) = (
        values(ours.forward(batch(&device))),
        values(burns.forward(batch(&device))),
    );
    // Ours normalizes with the batch: channel 0's first value (1 - 2.5) / sqrt(1.25 + ε).
    let z = (1.0f32 - 2.5) / (1.25f32 + 1e-5).sqrt();
    assert!((a[0] - (0.5 * z + 0.1)).abs() < 1e-5, "{a:?}");
    // Burn's uses the running statistics (0 and 1) without autodiff, whatever the flag.
    let running = 0.5 * 1.0 / (1.0f32 + 1e-5).sqrt() + 0.1;
    assert!((b[0] - running).abs() < 1e-5, "{b:?}");
    // And `valid` turns both to the running statistics.
    let (ours, burns) = layers(&device.clone().autodiff());
    let (a, b) = (
        values(ours.valid().forward(batch(&device))),
        values(burns.valid().forward(batch(&device))),
    );
    assert!((a[0] - running).abs() < 1e-5 && (b[0] - running).abs() < 1e-5);
}

#[test]
fn a_batch_of_one_leaves_our_running_statistics_and_moves_burns() {
    let device = Device::flex().autodiff();
    let (ours, burns) = layers(&device);
    let one = || Tensor::<2>::from_data(TensorData::from([[3.0f32, -1.0]]), &device);
    let (a, b) = (values(ours.forward(one())), values(burns.forward(one())));
    // Both output beta (one value per channel is its own mean, with variance 0).
    for out in [&a, &b] {
        assert!(
            (out[0] - 0.1).abs() < 1e-6 && (out[1] + 0.3).abs() < 1e-6,
            "{out:?}"
        );
    }
    // PyTorch refuses such a batch; ours leaves the statistics as they were, Burn's moves
    // them toward (3, -1) and a variance of 0.
    assert_eq!(values(ours.running_var.value_sync()), [1.0, 1.0]);
    assert_eq!(values(ours.running_mean.value_sync()), [0.0, 0.0]);
    let var = values(burns.running_var.value_sync());
    assert!(var.iter().all(|v| (v - 0.9).abs() < 1e-6), "{var:?}");
}
