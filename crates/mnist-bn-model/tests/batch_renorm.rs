//! Batch renorm against Algorithm 1 of Ioffe (2017), written out in PyTorch (float64, r and d
//! detached) by `tests/fixtures/batch_renorm_case.py`: four training steps through the warm-up
//! (batch norm), a relaxed step where r is clipped at the top and the bottom and d at the top,
//! and a step with neither clipped in some channels; each step's output, the gradients of
//! `sum(y · w)` with respect to the input, γ and β, the running statistics after it and the
//! schedule's limits; then inference with the final running statistics and a training step on
//! a single example.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};
use mnist_bn_model::{BatchRenorm, BatchRenormConfig, RenormSchedule};
use serde_json::Value;

fn case() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/batch_renorm_case.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect(path)).expect("JSON")
}

fn floats(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(items) => items.iter().flat_map(floats).collect(),
        Value::Number(n) => vec![n.as_f64().expect("a float")],
        other => panic!("not numbers: {other}"),
    }
}

fn matrix(v: &Value, device: &Device) -> Tensor<2> {
    let rows = v.as_array().expect("rows").len();
    let values: Vec<f32> = floats(v).iter().map(|&x| x as f32).collect();
    let cols = values.len() / rows;
    Tensor::from_data(TensorData::new(values, [rows, cols]), device)
}

fn vector(v: &Value, device: &Device) -> Tensor<1> {
    let values: Vec<f32> = floats(v).iter().map(|&x| x as f32).collect();
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), device)
}

/// `ours` against the f64 reference: within 2e-5 absolute plus 2e-5 relative (f32 against
/// f64; the values are of order 1 to 10).
fn assert_close<const D: usize>(what: &str, ours: Tensor<D>, theirs: &Value) {
    let ours = ours
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap();
    let theirs = floats(theirs);
    assert_eq!(ours.len(), theirs.len(), "{what}: length");
    for (i, (&a, &b)) in ours.iter().zip(&theirs).enumerate() {
        assert!(
            (f64::from(a) - b).abs() <= 2e-5 + 2e-5 * b.abs(),
            "{what}[{i}]: ours {a}, Algorithm 1 {b}\nours {ours:?}\ntheirs {theirs:?}"
        );
    }
}

fn module(case: &Value, device: &Device) -> BatchRenorm {
    let c = &case["config"];
    let int = |k: &str| c[k].as_u64().unwrap() as usize;
    let schedule = RenormSchedule::new()
        .with_r_max(c["r_max"].as_f64().unwrap())
        .with_d_max(c["d_max"].as_f64().unwrap())
        .with_warmup_steps(int("warmup_steps"))
        .with_r_max_step(int("r_max_step"))
        .with_d_max_step(int("d_max_step"));
    let mut bn = BatchRenormConfig::new(int("channels"))
        .with_epsilon(c["eps"].as_f64().unwrap())
        .with_momentum(c["momentum"].as_f64().unwrap())
        .with_schedule(schedule)
        .init(device);
    bn.weight = Param::from_tensor(vector(&c["gamma"], device));
    bn.bias = Param::from_tensor(vector(&c["beta"], device));
    bn
}

#[test]
fn batch_renorm_follows_algorithm_1_step_by_step() {
    let case = case();
    let device = Device::flex().autodiff();
    let bn = module(&case, &device);
    let schedule = bn.schedule();
    let w = matrix(&case["loss_weight"], &device);
    for step in case["train_steps"].as_array().unwrap() {
        let t = step["t"].as_u64().unwrap() as usize;
        let (r_max, d_max) = schedule.limits(t);
        assert_eq!(r_max, step["r_max"].as_f64().unwrap(), "r_max at step {t}");
        assert_eq!(d_max, step["d_max"].as_f64().unwrap(), "d_max at step {t}");
        let x = matrix(&step["x"], &device).require_grad();
        let y = bn.forward(x.clone());
        assert_close(&format!("y at step {t}"), y.clone(), &step["y"]);
        let grads = (y * w.clone()).sum().backward();
        let grad = |p: &Tensor<1>| p.grad(&grads).expect("a gradient");
        assert_close(
            &format!("dL/dx at step {t}"),
            x.grad(&grads).unwrap(),
            &step["grad_x"],
        );
        assert_close(
            &format!("dL/dgamma at step {t}"),
            grad(&bn.weight.val()),
            &step["grad_gamma"],
        );
        assert_close(
            &format!("dL/dbeta at step {t}"),
            grad(&bn.bias.val()),
            &step["grad_beta"],
        );
        assert_close(
            &format!("running mean after step {t}"),
            bn.running_mean.value_sync(),
            &step["running_mean_after"],
        );
        assert_close(
            &format!("running sigma after step {t}"),
            bn.running_std.value_sync(),
            &step["running_sigma_after"],
        );
    }
    // The clock counted the four training steps.
    assert_close("steps", bn.steps.value_sync(), &Value::from(vec![4.0]));

    // Inference: (x − μ) / σ with the running statistics.
    let inference = &case["inference"];
    let y = bn
        .clone()
        .valid()
        .forward(matrix(&inference["x"], &device.clone().without_autodiff()));
    assert_close("inference y", y, &inference["y"]);

    // One example in training mode: x − μ_B = 0, so y = γ·d + β with d clipped.
    let single = &case["single_example_step"];
    let x = matrix(&single["x"], &device).require_grad();
    let y = bn.forward(x);
    assert_close("single-example y", y, &single["y"]);
    // Its variance is 0: the running statistics and the clock stay as they were (our choice,
    // as batch norm's).
    assert_close(
        "running mean after a single example",
        bn.running_mean.value_sync(),
        &single["running_mean_before"],
    );
    assert_close("steps", bn.steps.value_sync(), &Value::from(vec![4.0]));
}

#[test]
fn a_train_mode_pass_without_gradients_moves_the_statistics_and_the_clock() {
    let case = case();
    let device = Device::flex();
    let bn = module(&case, &device);
    let step = &case["train_steps"][0];
    // Training mode (batch statistics), no autodiff: a train-mode test pass.
    let y = bn.forward(matrix(&step["x"], &device));
    assert_close("y", y, &step["y"]);
    assert_close("steps", bn.steps.value_sync(), &Value::from(vec![1.0]));
    assert_close(
        "running mean",
        bn.running_mean.value_sync(),
        &step["running_mean_after"],
    );
    // A copy made by `valid` has its own statistics and clock.
    let copy = bn.clone().valid().with_batch_statistics(true);
    let _ = copy.forward(matrix(&case["train_steps"][1]["x"], &device));
    assert_close(
        "copy's steps",
        copy.steps.value_sync(),
        &Value::from(vec![2.0]),
    );
    assert_close("steps", bn.steps.value_sync(), &Value::from(vec![1.0]));
}
