//! Numerical parity with PyTorch: one training step from the same weights on the same batch.
//!
//! The fixtures in `tests/fixtures/` come from `../shared/reference/seed_pytorch.py`
//! (PyTorch 2.15, CPU): `init_{bn,nonorm}.safetensors` are the models before training and
//! `golden_step_{bn,nonorm}.safetensors` hold the first 64 training images, their labels, the
//! train-mode logits, the loss, every gradient (`grad.*`) and the whole state after one SGD
//! step with lr 0.01 (`after.*`), running statistics included.
//!
//! Tolerances: `|ours - theirs| <= ATOL + RTOL * |theirs|` with RTOL = 1e-5 and ATOL = 1e-6
//! (gradients: ATOL 1e-7). Both sides compute in f32 with different summation orders
//! (matmul blocking, reductions), so agreement to a few ulps of the largest terms is what
//! exact arithmetic allows; anything wrong in the model (a bias, the variance, the ReLU
//! order) is off by orders of magnitude more.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::nn::loss::CrossEntropyLoss;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use mnist_bn_model::{Mlp, MlpConfig, Norm};
use mnist_bn_train::{export_pytorch, import_pytorch};
use safetensors::SafeTensors;

const RTOL: f64 = 1e-5;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

fn f32s(st: &SafeTensors<'_>, key: &str) -> Vec<f32> {
    let view = st.tensor(key).unwrap_or_else(|e| panic!("{key}: {e}"));
    view.data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Compares two tensors; returns the largest absolute and relative differences.
fn compare(what: &str, ours: &[f32], theirs: &[f32], atol: f64) -> (f64, f64) {
    assert_eq!(ours.len(), theirs.len(), "{what}: length");
    let (mut max_abs, mut max_rel) = (0.0f64, 0.0f64);
    for (i, (&a, &b)) in ours.iter().zip(theirs).enumerate() {
        let (a, b) = (f64::from(a), f64::from(b));
        let diff = (a - b).abs();
        assert!(
            diff <= atol + RTOL * b.abs(),
            "{what}[{i}]: ours {a} vs PyTorch {b} (diff {diff:e})"
        );
        max_abs = max_abs.max(diff);
        if b.abs() > 1e-4 {
            max_rel = max_rel.max(diff / b.abs());
        }
    }
    println!("{what:<28} max |diff| {max_abs:.2e}   max rel {max_rel:.2e}");
    (max_abs, max_rel)
}

fn data_of<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// A linear weight in PyTorch's `[out, in]` layout.
fn torch_layout(t: Tensor<2>) -> Vec<f32> {
    data_of(t.transpose())
}

fn golden_step(norm: Norm, init: &str, golden: &str) {
    let device = Device::flex().autodiff();
    let config = MlpConfig::new(norm);
    let model: Mlp = import_pytorch(&fixture(init), &config, &device).unwrap();
    let model = model.train().with_batch_statistics(true);

    let bytes = std::fs::read(fixture(golden)).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let input = Tensor::<2>::from_data(TensorData::new(f32s(&st, "input"), [64, 784]), &device);
    let target_bytes = st.tensor("target").unwrap();
    let targets: Vec<i64> = target_bytes
        .data()
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let targets = Tensor::<1, Int>::from_data(TensorData::new(targets, [64]), &device);

    let logits = model.forward(input);
    compare(
        "logits",
        &data_of(logits.clone()),
        &f32s(&st, "logits"),
        1e-6,
    );
    let loss = CrossEntropyLoss::new(None, &device).forward(logits, targets);
    compare("loss", &data_of(loss.clone()), &f32s(&st, "loss"), 1e-6);

    let grads = loss.backward();
    let linear = [
        ("fc1", &model.hidden[0].linear),
        ("fc2", &model.hidden[1].linear),
        ("fc3", &model.output),
    ];
    for (name, layer) in linear {
        let g = layer
            .weight
            .val()
            .grad(&grads)
            .expect("weight has a gradient");
        compare(
            &format!("grad.{name}.weight"),
            &torch_layout(g),
            &f32s(&st, &format!("grad.{name}.weight")),
            1e-7,
        );
        if let Some(bias) = &layer.bias {
            let g = bias.val().grad(&grads).expect("bias has a gradient");
            compare(
                &format!("grad.{name}.bias"),
                &data_of(g),
                &f32s(&st, &format!("grad.{name}.bias")),
                1e-7,
            );
        }
    }
    for (name, bn) in [
        ("batch_norm1", &model.hidden[0].norm),
        ("batch_norm2", &model.hidden[1].norm),
    ] {
        if let Some(bn) = bn {
            for (param, p) in [("weight", &bn.weight), ("bias", &bn.bias)] {
                let key = format!("grad.{name}.{param}");
                let g = p
                    .val()
                    .grad(&grads)
                    .expect("batch norm parameter has a gradient");
                compare(&key, &data_of(g), &f32s(&st, &key), 1e-7);
            }
        }
    }

    // One SGD step, then every tensor of the state against PyTorch's, through our export.
    let grads = GradientsParams::from_grads(grads, &model);
    let model = SgdConfig::new().init().step(0.01, model, grads);
    let dir = tempfile::tempdir().unwrap();
    let exported = dir.path().join("after.safetensors");
    export_pytorch(&model, &exported, 1).unwrap();
    let ours_bytes = std::fs::read(&exported).unwrap();
    let ours = SafeTensors::deserialize(&ours_bytes).unwrap();
    let mut compared = 0;
    for key in st.names() {
        let Some(name) = key.strip_prefix("after.") else {
            continue;
        };
        if name.ends_with("num_batches_tracked") {
            let view = ours.tensor(name).unwrap();
            assert_eq!(view.data(), st.tensor(key).unwrap().data(), "{name}");
            continue;
        }
        compare(key, &f32s(&ours, name), &f32s(&st, key), 1e-6);
        compared += 1;
    }
    let expected = match norm {
        Norm::Batch => 3 + 1 + 2 * 4, // linear weights, fc3 bias, 4 tensors per batch norm
        Norm::None => 6,
    };
    assert_eq!(compared, expected, "every tensor of the state is compared");
    assert_eq!(
        ours.names().len(),
        st.names()
            .iter()
            .filter(|k| k.starts_with("after."))
            .count()
    );
}

#[test]
fn one_training_step_matches_pytorch_with_batch_norm() {
    golden_step(
        Norm::Batch,
        "init_bn.safetensors",
        "golden_step_bn.safetensors",
    );
}

#[test]
fn one_training_step_matches_pytorch_without_batch_norm() {
    golden_step(
        Norm::None,
        "init_nonorm.safetensors",
        "golden_step_nonorm.safetensors",
    );
}

#[test]
fn the_pickle_and_the_safetensors_file_give_the_same_model() {
    let device = Device::flex();
    let config = MlpConfig::new(Norm::Batch);
    let a = import_pytorch(&fixture("init_bn.pt"), &config, &device).unwrap();
    let b = import_pytorch(&fixture("init_bn.safetensors"), &config, &device).unwrap();
    assert_eq!(
        data_of(a.hidden[0].linear.weight.val()),
        data_of(b.hidden[0].linear.weight.val())
    );
    let bn = |m: &Mlp| data_of(m.hidden[1].norm.as_ref().unwrap().running_var.value());
    assert_eq!(bn(&a), bn(&b));
}

#[test]
fn the_wrong_variant_is_a_clear_error() {
    let device = Device::flex();
    let err = import_pytorch(
        &fixture("init_nonorm.safetensors"),
        &MlpConfig::new(Norm::Batch),
        &device,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("missing tensors: ") && err.contains("batch_norm1.weight"),
        "{err}"
    );
    assert!(
        err.contains("unexpected tensors: ") && err.contains("fc1.bias"),
        "{err}"
    );
    assert!(err.contains("use --model plain"), "{err}");
    let err = import_pytorch(&fixture("init_bn.pt"), &MlpConfig::new(Norm::None), &device)
        .unwrap_err()
        .to_string();
    assert!(err.contains("use --model batchnorm"), "{err}");
}

#[test]
fn export_then_import_gives_the_same_model() {
    let device = Device::flex();
    let config = MlpConfig::new(Norm::Batch);
    let a = import_pytorch(&fixture("init_bn.safetensors"), &config, &device).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    export_pytorch(&a, &path, 0).unwrap();
    let b = import_pytorch(&path, &config, &device).unwrap();
    let layers = |m: &Mlp| {
        [
            m.hidden[0].linear.clone(),
            m.hidden[1].linear.clone(),
            m.output.clone(),
        ]
    };
    for (x, y) in layers(&a).iter().zip(&layers(&b)) {
        assert_eq!(data_of(x.weight.val()), data_of(y.weight.val()));
    }
    // The exported file is byte-for-byte PyTorch's layout: the same tensors as the original.
    let original = std::fs::read(fixture("init_bn.safetensors")).unwrap();
    let original = SafeTensors::deserialize(&original).unwrap();
    let exported = std::fs::read(&path).unwrap();
    let exported = SafeTensors::deserialize(&exported).unwrap();
    let mut names = original.names();
    names.sort();
    let mut ours = exported.names();
    ours.sort();
    assert_eq!(names, ours);
    for name in names {
        let (x, y) = (
            original.tensor(name).unwrap(),
            exported.tensor(name).unwrap(),
        );
        assert_eq!(x.shape(), y.shape(), "{name}");
        assert_eq!(x.dtype(), y.dtype(), "{name}");
        assert_eq!(x.data(), y.data(), "{name}");
    }
}

// ---------------------------------------------------------------------------------------------
// Testing PyTorch-trained weights, and training from PyTorch's init for a whole epoch.
//
// `pytorch3_*` fixtures: `seed_pytorch.py --epochs 3 --threads 2 --seed 0` on this project's
// data (2026-11-29, PyTorch 2.15 CPU): the trained state_dicts, the BN model's state after its
// train-mode test pass, and `reference_results.json` with PyTorch's losses and test results.

fn reference() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(fixture("pytorch3_reference_results.json")).unwrap())
        .unwrap()
}

fn mnist(split: mnist_bn_data::Split) -> mnist_bn_data::Mnist {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
    mnist_bn_data::Mnist::load(split, Some(&dir)).unwrap()
}

fn check_test(ours: &mnist_bn_train::TestReport, theirs: &serde_json::Value, what: &str) {
    let loss = theirs["test_loss"].as_f64().unwrap();
    let correct: Vec<u64> = ours.per_digit.iter().map(|d| d.correct as u64).collect();
    let expected: Vec<u64> = theirs["class_correct"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    println!(
        "{what}: loss ours {:.7} PyTorch {loss:.7} (diff {:.1e}); correct {} vs {}",
        ours.loss,
        (ours.loss - loss).abs(),
        ours.correct,
        theirs["correct"]
    );
    assert!(
        (ours.loss - loss).abs() < 1e-4,
        "{what}: loss {} vs {loss}",
        ours.loss
    );
    assert_eq!(correct, expected, "{what}: correct per digit");
}

#[test]
fn pytorch_trained_weights_test_exactly_like_pytorch() {
    use mnist_bn_train::{TestMode, evaluate};
    let device = Device::flex();
    let test = mnist(mnist_bn_data::Split::Test);
    let results = reference();
    let results = &results["test"];

    let bn = MlpConfig::new(Norm::Batch);
    let pristine: mnist_bn_model::Net =
        import_pytorch(&fixture("pytorch3_trained_bn.safetensors"), &bn, &device)
            .unwrap()
            .into();
    let eval = evaluate(&pristine, &test, 64, TestMode::Eval, &device).unwrap();
    check_test(&eval, &results["bn_eval_mode_pristine"], "BN eval mode");

    // The lesson's order: train mode (moves the running statistics), then eval mode.
    let model: mnist_bn_model::Net =
        import_pytorch(&fixture("pytorch3_trained_bn.safetensors"), &bn, &device)
            .unwrap()
            .into();
    let train = evaluate(&model, &test, 64, TestMode::Train, &device).unwrap();
    check_test(&train, &results["bn_train_mode"], "BN train mode");
    let after = evaluate(&model, &test, 64, TestMode::Eval, &device).unwrap();
    check_test(
        &after,
        &results["bn_eval_mode_after_trainmode_pass"],
        "BN eval mode after",
    );
    // The running statistics after 157 train-mode test batches, against PyTorch's.
    let dir = tempfile::tempdir().unwrap();
    let exported = dir.path().join("after.safetensors");
    export_pytorch(model.as_mlp().unwrap(), &exported, 0).unwrap();
    let ours = std::fs::read(&exported).unwrap();
    let ours = SafeTensors::deserialize(&ours).unwrap();
    let theirs = std::fs::read(fixture("pytorch3_bn_after_trainmode_test.safetensors")).unwrap();
    let theirs = SafeTensors::deserialize(&theirs).unwrap();
    for key in [
        "batch_norm1.running_mean",
        "batch_norm1.running_var",
        "batch_norm2.running_mean",
        "batch_norm2.running_var",
    ] {
        compare(key, &f32s(&ours, key), &f32s(&theirs, key), 1e-6);
    }

    let plain = MlpConfig::new(Norm::None);
    let model: mnist_bn_model::Net = import_pytorch(
        &fixture("pytorch3_trained_nonorm.safetensors"),
        &plain,
        &device,
    )
    .unwrap()
    .into();
    let eval = evaluate(&model, &test, 64, TestMode::Eval, &device).unwrap();
    check_test(&eval, &results["nonorm_eval_mode"], "plain eval mode");
}

/// A whole epoch from PyTorch's initial weights, on one thread and with the step spread over
/// two (`DeviceTuning::parallel_step`: split products, which change the float rounding only;
/// the train crate's `flex` feature).
#[test]
#[cfg(feature = "flex")]
fn a_whole_epoch_from_pytorchs_init_gives_pytorchs_loss() {
    use mnist_bn_model::flex::product_threads;
    use mnist_bn_train::{DeviceTuning, Learner, ProgressMode, TrainingConfig};
    use std::sync::atomic::AtomicBool;
    let device = Device::flex();
    let train = mnist(mnist_bn_data::Split::Train);
    let results = reference();
    for (threads, parallel) in [(1, false), (2, true)] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        for (norm, init, key) in [
            (Norm::Batch, "init_bn.safetensors", "bn"),
            (Norm::None, "init_nonorm.safetensors", "nonorm"),
        ] {
            let learner = Learner::new(TrainingConfig::new().with_epochs(1), &device)
                .with_progress(ProgressMode::Quiet, key)
                .with_tuning(DeviceTuning {
                    parallel_step: parallel,
                    ..DeviceTuning::default()
                });
            let model: mnist_bn_model::Net =
                import_pytorch(&fixture(init), &MlpConfig::new(norm), learner.device())
                    .unwrap()
                    .into();
            let mut history = Vec::new();
            let mut split_for = 0;
            let (model, _) = pool
                .install(|| {
                    learner.fit(
                        model,
                        &mut learner.optimizer(),
                        &train,
                        &mut history,
                        &AtomicBool::new(false),
                        |model, _, _| {
                            split_for = product_threads(model);
                            Ok(())
                        },
                    )
                })
                .unwrap();
            // Split while training on the pool's threads, whole again once trained.
            assert_eq!(split_for, threads, "{key}, {threads} threads");
            assert_eq!(product_threads(&model), 1);
            let theirs = results["train"][key]["epoch_losses"][0].as_f64().unwrap();
            let ours = history[0].train_loss;
            println!(
                "{key}, {threads} threads: epoch 1 loss ours {ours:.7}, PyTorch {theirs:.7} (diff {:.1e})",
                (ours - theirs).abs()
            );
            // 938 SGD steps in f32 on both sides: rounding differences grow a little with every
            // step.
            assert!((ours - theirs).abs() < 1e-4, "{key}: {ours} vs {theirs}");
        }
    }
}
