//! The wgpu backend (built with `--features wgpu`; in CI on the lavapipe software Vulkan
//! driver): it trains, tests and checkpoints like the CPU backend, and gives the same numbers.

use std::sync::atomic::AtomicBool;

use burn::tensor::{Device, DeviceKind};
use mnist_bn_data::{Mnist, Split};
use mnist_bn_model::{MlpConfig, NetConfig, Norm};
use mnist_bn_train::{
    EpochStats, Learner, ProgressMode, TrainingConfig, model_bytes, model_from_bytes,
};

use crate::util::{Args, Run, command, losses, mnist_bn_on, read_json, report, shipped_data};

/// Whether wgpu finds an adapter. Without one the GPU tests say so and pass, unless
/// `MNIST_BN_REQUIRE_GPU` is set (CI sets it, with lavapipe installed), where they fail.
fn gpu_available() -> bool {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    // Vulkan, Metal or DX12: wgpu's GL fallback cannot run Burn's kernels.
    let backends = wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12;
    let found = !pollster::block_on(instance.enumerate_adapters(backends)).is_empty();
    if !found {
        assert!(
            std::env::var_os("MNIST_BN_REQUIRE_GPU").is_none(),
            "MNIST_BN_REQUIRE_GPU is set but wgpu finds no adapter (install mesa-vulkan-drivers and libvulkan1)"
        );
        eprintln!("skipped: wgpu finds no adapter (apt install mesa-vulkan-drivers libvulkan1)");
    }
    found
}

/// Largest difference allowed between the per-step losses on the CPU and on wgpu. Both compute
/// in f32 with different summation orders; after 50 SGD steps the losses measured here differ
/// by about 1e-6, and a wrong kernel would differ by far more than this.
const LOSS_TOLERANCE: f64 = 1e-4;

/// Trains `steps` batches of 64 (file order) from the same initial weights and returns each
/// batch's loss: one epoch per batch, so that each epoch's mean loss is that batch's loss.
fn losses_per_step(norm: Norm, device: &Device, initial: &[u8], steps: usize) -> Vec<f64> {
    let train = Mnist::load(Split::Train, Some(&shipped_data())).unwrap();
    let learner = Learner::new(TrainingConfig::new().with_epochs(1), device)
        .with_progress(ProgressMode::Quiet, "gpu-test");
    let config: NetConfig = MlpConfig::new(norm).into();
    let mut model = model_from_bytes(
        &config,
        initial.to_vec(),
        learner.device(),
        "initial".as_ref(),
    )
    .unwrap();
    let mut optim = learner.optimizer();
    let never = AtomicBool::new(false);
    let mut losses = Vec::new();
    for step in 0..steps {
        let mut history: Vec<EpochStats> = Vec::new();
        let batch = train_slice(&train, step);
        let (next, _) = learner
            .fit(
                model,
                &mut optim,
                &batch,
                &mut history,
                &never,
                |_, _, _| Ok(()),
            )
            .unwrap();
        model = next;
        losses.push(history[0].train_loss);
    }
    losses
}

fn train_slice(train: &Mnist, step: usize) -> Mnist {
    let pixels = train.pixels()[step * 64 * 784..(step + 1) * 64 * 784].to_vec();
    let labels = train.labels()[step * 64..(step + 1) * 64].to_vec();
    Mnist::from_raw(pixels, labels)
}

#[test]
fn cpu_and_wgpu_give_the_same_losses_step_by_step() {
    if !gpu_available() {
        return;
    }
    let cpu = Device::flex();
    let gpu = Device::wgpu(DeviceKind::DefaultDevice);
    for norm in [Norm::Batch, Norm::None] {
        cpu.seed(0);
        let config: NetConfig = MlpConfig::new(norm).into();
        let initial = model_bytes(&config.init(&cpu), "initial".as_ref()).unwrap();
        let a = losses_per_step(norm, &cpu, &initial, 50);
        let b = losses_per_step(norm, &gpu, &initial, 50);
        let max = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max);
        println!("{norm:?}: 50 steps, largest |cpu - wgpu| loss difference {max:.2e}");
        assert!(max < LOSS_TOLERANCE, "{norm:?}: cpu {a:?}\nwgpu {b:?}");
        assert!(a[49] < a[0], "{norm:?} learns: {a:?}");
    }
}

#[test]
fn wgpu_runs_the_lesson_and_its_checkpoints_load_on_the_cpu() {
    if !gpu_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let run = mnist_bn_on("wgpu", &Args::lesson().limits(640, 128).epochs(1).out(&out));
    run.assert_ok();
    assert!(
        run.stdout
            .contains("backend: wgpu, device DefaultDevice (adapters: "),
        "{}",
        run.stdout
    );
    let report = report(&out);
    assert_eq!(report["models"].as_array().unwrap().len(), 2);
    assert!(out.join("loss.png").is_file());

    // Both models' checkpoints, written on wgpu (the BN model's running statistics too), test
    // the same on the CPU, in eval mode (running statistics) and train mode (batch statistics).
    for model in ["plain", "batchnorm"] {
        let (gpu, cpu) = (
            eval_checkpoint(&tmp, &out, model, "wgpu"),
            eval_checkpoint(&tmp, &out, model, "flex"),
        );
        let tests = gpu.as_array().unwrap().len();
        assert_eq!(tests, 2);
        for i in 0..tests {
            assert_eq!(gpu[i]["mode"], cpu[i]["mode"]);
            assert_eq!(
                gpu[i]["correct"], cpu[i]["correct"],
                "{model} {}",
                gpu[i]["mode"]
            );
            let (a, b) = (
                gpu[i]["loss"].as_f64().unwrap(),
                cpu[i]["loss"].as_f64().unwrap(),
            );
            assert!(
                (a - b).abs() < 1e-4,
                "{model} {}: {a} vs {b}",
                gpu[i]["mode"]
            );
        }
    }
}

/// `eval --mode both` of `model`'s checkpoint in run directory `out` on `backend`.
fn eval_checkpoint(
    tmp: &tempfile::TempDir,
    out: &std::path::Path,
    model: &str,
    backend: &str,
) -> serde_json::Value {
    let json = tmp.path().join(format!("{model}-{backend}.json"));
    mnist_bn_on(
        backend,
        &Args::eval(&out.join(model))
            .test_limit(128)
            .opt("--mode", "both")
            .path("--json", &json),
    )
    .assert_ok();
    read_json(&json)
}

#[test]
fn a_bad_adapter_choice_is_a_clear_error() {
    mnist_bn_on("wgpu", &["--device", "quantum", "--epochs", "1"])
        .assert_error("--device quantum: expected");
}

#[test]
fn no_vulkan_device_is_a_plain_error_that_says_what_to_do() {
    // Point the Vulkan loader at no driver: wgpu then finds GL at most, which Burn cannot use.
    let run = Run::of(
        command("wgpu")
            .args(["--backend", "wgpu", "--epochs", "1", "--train-limit", "640"])
            .env("VK_ICD_FILENAMES", "/nonexistent/icd.json")
            .env("VK_DRIVER_FILES", "/nonexistent/icd.json")
            .env_remove("MNIST_BN_BACKEND"),
    )
    .past_driver_exit_crash_after_error();
    run.assert_exit(1, "no GPU adapter found");
    let stderr = &run.stderr;
    assert!(
        stderr.contains("mesa-vulkan-drivers") && stderr.contains("--backend flex"),
        "{stderr}"
    );
}

#[test]
fn a_build_with_wgpu_trains_on_it_unless_told_otherwise() {
    // "A backend you enable explicitly wins": no --backend, no MNIST_BN_BACKEND.
    if !gpu_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let args = Args::train("plain")
        .epochs(1)
        .limits(128, 64)
        .quiet()
        .out(&out);
    let run = Run::of(command("wgpu").env_remove("MNIST_BN_BACKEND").args(&args))
        .past_driver_exit_crash();
    let stdout = &run.stdout;
    assert_eq!(run.code, Some(0), "{stdout}");
    assert!(stdout.starts_with("backend: wgpu"), "{stdout}");
    assert!(
        report(&out)["backend"]
            .as_str()
            .unwrap()
            .starts_with("wgpu")
    );
}

#[test]
fn the_same_seed_starts_wgpu_and_the_cpu_from_the_same_weights() {
    // Initial weights are drawn on the CPU and moved, so the same command gives the same
    // epoch losses on wgpu and on flex (before, each device's own generator gave 1.3818 on
    // wgpu against 1.4199 on flex for the BN model here).
    if !gpu_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let run = |backend: &str| {
        let out = tmp.path().join(backend);
        mnist_bn_on(
            backend,
            &Args::lesson().epochs(1).limits(3000, 200).quiet().out(&out),
        )
        .assert_ok();
        report(&out)
    };
    let (gpu, cpu) = (run("wgpu"), run("flex"));
    for model in 0..2 {
        let (a, b) = (losses(&gpu, model)[0], losses(&cpu, model)[0]);
        assert!((a - b).abs() < 1e-4, "model {model}: wgpu {a} vs flex {b}");
    }
}
