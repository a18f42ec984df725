//! Numerical parity with PyTorch: one training step from the same weights on the same batch.
//!
//! The fixtures in `tests/fixtures/` come from `../shared/reference/seed_pytorch.py`
//! (PyTorch 2.15, CPU), and for layer and group norm from `tests/fixtures/golden_norms.py`
//! (`nn.LayerNorm`, `nn.GroupNorm(32, ·)`, non-trivial scales and shifts):
//! `init_{bn,nonorm,layernorm,groupnorm}.safetensors` are the models before training and
//! `golden_step_*.safetensors` hold the first 64 training images, their labels, the
//! train-mode logits, the loss, every gradient (`grad.*`) and the whole state after one SGD
//! step with lr 0.01 (`after.*`), running statistics included.
//!
//! Tolerances: `|ours - theirs| <= ATOL + RTOL * |theirs|` with RTOL = 1e-5 and ATOL = 1e-6
//! (gradients: ATOL 1e-7). Both sides compute in f32 with different summation orders
//! (matmul blocking, reductions), so agreement to a few ulps of the largest terms is what
//! exact arithmetic allows; anything wrong in the model (a bias, the variance, the ReLU
//! order) is off by orders of magnitude more.

mod golden;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLoss;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{Device, Tensor};
use mnist_bn_data::Split;
use mnist_bn_model::{Mlp, MlpConfig, Norm};
use mnist_bn_train::{export_pytorch, import_pytorch};

use golden::{Report, SafetensorsFile, data_of, fixture, mnist};

/// A linear weight in PyTorch's `[out, in]` layout.
fn torch_layout(t: Tensor<2>) -> Vec<f32> {
    data_of(t.transpose())
}

fn golden_step(norm: Norm, init: &str, golden: &str) {
    let device = Device::flex().autodiff();
    let config = MlpConfig::new(norm);
    let model: Mlp = import_pytorch(&fixture(init), &config, &device).unwrap();
    let model = model.train().with_batch_statistics(true);

    let file = SafetensorsFile::fixture(golden);
    let st = file.tensors();
    let (input, targets) = file.batch(&device);
    let mut report = Report::default();

    let logits = model.forward(input);
    let ours = data_of(logits.clone());
    report.compare("logits", &ours, &file.f32s("logits"), 1e-6);
    let loss = CrossEntropyLoss::new(None, &device).forward(logits, targets);
    let ours = data_of(loss.clone());
    report.compare("loss", &ours, &file.f32s("loss"), 1e-6);

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
        let key = format!("grad.{name}.weight");
        report.compare(&key, &torch_layout(g), &file.f32s(&key), 1e-7);
        if let Some(bias) = &layer.bias {
            let g = bias.val().grad(&grads).expect("bias has a gradient");
            let key = format!("grad.{name}.bias");
            report.compare(&key, &data_of(g), &file.f32s(&key), 1e-7);
        }
    }
    for (i, block) in model.hidden.iter().enumerate() {
        // The norm's PyTorch name and its scale and shift, whichever norm it is.
        let (name, scale, shift) = if let Some(bn) = &block.norm {
            ("batch_norm", &bn.weight, &bn.bias)
        } else if let Some(ln) = &block.layer_norm {
            ("layer_norm", &ln.gamma, ln.beta.as_ref().expect("a shift"))
        } else if let Some(gn) = &block.group_norm {
            let gamma = gn.gamma.as_ref().expect("affine");
            ("group_norm", gamma, gn.beta.as_ref().expect("affine"))
        } else {
            continue;
        };
        for (param, p) in [("weight", scale), ("bias", shift)] {
            let key = format!("grad.{name}{}.{param}", i + 1);
            let g = p
                .val()
                .grad(&grads)
                .expect("a norm parameter has a gradient");
            report.compare(&key, &data_of(g), &file.f32s(&key), 1e-7);
        }
    }

    // One SGD step, then every tensor of the state against PyTorch's, through our export.
    let grads = GradientsParams::from_grads(grads, &model);
    let model = SgdConfig::new().init().step(0.01, model, grads);
    let dir = tempfile::tempdir().unwrap();
    let exported = dir.path().join("after.safetensors");
    export_pytorch(&model, &exported, 1).unwrap();
    let ours_file = SafetensorsFile::read(&exported);
    let ours = ours_file.tensors();
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
        report.compare(key, &ours_file.f32s(name), &file.f32s(key), 1e-6);
        compared += 1;
    }
    let expected = match norm {
        Norm::Batch => 3 + 1 + 2 * 4, // linear weights, fc3 bias, 4 tensors per batch norm
        Norm::None => 6,
        // Linear weights and biases, the scale and shift of each norm.
        Norm::Layer | Norm::Group { .. } => 6 + 2 * 2,
        Norm::BatchRenorm(_) => unreachable!("PyTorch has no batch renorm"),
    };
    assert_eq!(compared, expected, "every tensor of the state is compared");
    assert_eq!(
        ours.names().len(),
        st.names()
            .iter()
            .filter(|k| k.starts_with("after."))
            .count()
    );
    report.print(golden);
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
fn one_training_step_matches_pytorch_with_layer_norm() {
    golden_step(
        Norm::Layer,
        "init_layernorm.safetensors",
        "golden_step_layernorm.safetensors",
    );
}

#[test]
fn one_training_step_matches_pytorch_with_group_norm() {
    golden_step(
        Norm::Group { groups: 32 },
        "init_groupnorm.safetensors",
        "golden_step_groupnorm.safetensors",
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
    // Layer norm's weights into the group-norm model: PyTorch's names, and the hint.
    let err = import_pytorch(
        &fixture("init_layernorm.safetensors"),
        &MlpConfig::new(Norm::GROUP),
        &device,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("missing tensors: group_norm1.bias, group_norm1.weight"),
        "{err}"
    );
    assert!(err.contains("use --model layernorm"), "{err}");
    // Batch renorm has no PyTorch twin.
    let renorm = MlpConfig::new(Norm::BatchRenorm(Default::default()));
    let err = import_pytorch(&fixture("init_bn.safetensors"), &renorm, &device)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("PyTorch has no batch renormalization module"),
        "{err}"
    );
    // Nor can one be exported: refused, and nothing written.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("renorm.safetensors");
    let model = renorm.init(&device);
    let err = export_pytorch(&model, &out, 0).unwrap_err().to_string();
    assert!(
        err.contains("a model with batch renorm cannot be exported"),
        "{err}"
    );
    assert!(!out.exists());
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
    let original = SafetensorsFile::fixture("init_bn.safetensors");
    let original = original.tensors();
    let exported = SafetensorsFile::read(&path);
    let exported = exported.tensors();
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
    let test = mnist(Split::Test);
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
    let ours = SafetensorsFile::read(&exported);
    let theirs = SafetensorsFile::fixture("pytorch3_bn_after_trainmode_test.safetensors");
    let mut report = Report::default();
    for key in [
        "batch_norm1.running_mean",
        "batch_norm1.running_var",
        "batch_norm2.running_mean",
        "batch_norm2.running_var",
    ] {
        report.compare(key, &ours.f32s(key), &theirs.f32s(key), 1e-6);
    }
    report.print("running statistics after the train-mode test");

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
    let train = mnist(Split::Train);
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
