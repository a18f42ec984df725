//! The operations of one training step of the lesson's MLPs, timed one by one on the CPU
//! backend, with the figures to set beside PyTorch's (`scripts/ops-pytorch.py`).
//!
//! `cargo bench --bench ops` (add `--features ndarray` and `MNIST_BN_BACKEND=ndarray` for
//! ndarray). Not a test: it prints, for each matrix product of a step at batch 64 (forward,
//! weight gradient, input gradient, with the transposes autodiff uses), the median time per
//! call, GFLOP/s and seconds per epoch (938 calls), at one thread and at two (each on a rayon
//! pool of that size); then each hidden linear layer's forward + backward, whole and split as a
//! model spreads its step over the pool (`DeviceTuning::parallel_step`); then the batch norms'
//! forward + backward (Burn's operation and the model's fused kernel) and the largest SGD
//! update, with Burn's operations and on the host.
//! The app's threading policy (`src/threads.rs`) is applied first, so every setting it makes
//! shows here; `MNIST_BN_GEMM_THRESHOLD=N` overrides gemm's threading threshold to try others.
//! `RAYON_NUM_THREADS=N` times N threads only.

use std::time::Instant;

#[path = "../src/threads.rs"]
mod threads;

use burn::optim::Optimizer;
use burn::tensor::module::BatchNormTrainOutput;
use burn::tensor::{Device, Distribution, Tensor};

// The app's allocator, so that the products allocate as they do in training.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const STEPS_PER_EPOCH: f64 = 938.0;

fn device() -> Device {
    match std::env::var("MNIST_BN_BACKEND").as_deref() {
        #[cfg(feature = "ndarray")]
        Ok("ndarray") =>
        {
            #[allow(deprecated)]
            Device::ndarray()
        }
        #[cfg(feature = "flex")]
        _ => Device::flex(),
        #[cfg(not(feature = "flex"))]
        _ => panic!("set MNIST_BN_BACKEND to a compiled-in CPU backend"),
    }
}

/// Median seconds of `f` over `reps` calls after `warmup` calls.
fn time(f: &(dyn Fn() + Sync), warmup: usize, reps: usize) -> f64 {
    for _ in 0..warmup {
        f();
    }
    let mut secs: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    secs.sort_by(f64::total_cmp);
    secs[secs.len() / 2]
}

/// A product `lhs @ rhs`: its name, the stored shapes, and whether each side is transposed.
type Product = (&'static str, [usize; 2], [usize; 2], bool, bool);

fn random(shape: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::random(shape, Distribution::Uniform(-1.0, 1.0), device)
}

fn main() {
    threads::apply_policy();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let counts: Vec<usize> = match std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(n) => vec![n],
        None => (1..=cores.min(2)).collect(),
    };
    // One pool per thread count; every op runs on a worker of the pool, as the app's work does,
    // so that parallel products start in place.
    let pools: Vec<rayon::ThreadPool> = counts
        .iter()
        .map(|&n| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .expect("a rayon thread pool")
        })
        .collect();
    run(&counts, &pools);
}

/// Times `f` on each pool: median seconds per call.
fn on_each(pools: &[rayon::ThreadPool], f: &(dyn Fn() + Sync)) -> Vec<f64> {
    pools
        .iter()
        .map(|pool| pool.install(|| time(f, 20, 300)))
        .collect()
}

fn row(name: &str, secs: &[f64], flops: Option<f64>) {
    let mut line = format!("{name:<34}");
    for s in secs {
        line.push_str(&format!(" {:>9.1}", s * 1e6));
    }
    for s in secs {
        match flops {
            Some(f) => line.push_str(&format!(" {:>8.1}", f / s / 1e9)),
            None => line.push_str(&format!(" {:>8}", "")),
        }
    }
    for s in secs {
        line.push_str(&format!(" {:>8.3}", s * STEPS_PER_EPOCH));
    }
    println!("{line}");
}

fn run(counts: &[usize], pools: &[rayon::ThreadPool]) {
    let device = device();
    println!(
        "ops of one batch-64 step ({device:?}; threads {counts:?}; gemm threading threshold {})",
        threads::gemm_threshold_label()
    );
    let heads = |what: &str| {
        counts
            .iter()
            .map(|t| format!("{what}@{t}"))
            .collect::<Vec<_>>()
    };
    let mut header = format!("{:<34}", "operation");
    for h in heads("µs") {
        header.push_str(&format!(" {h:>9}"));
    }
    for h in heads("GF/s") {
        header.push_str(&format!(" {h:>8}"));
    }
    for h in heads("s/ep") {
        header.push_str(&format!(" {h:>8}"));
    }
    println!("{header}");
    // (name, lhs shape, rhs shape, lhs transposed, rhs transposed): `lhs @ rhs` with the
    // stored layouts of the step (Burn's Linear keeps weights as [in, out]).
    let products: [Product; 8] = [
        ("fc1 forward  x·W1", [64, 784], [784, 512], false, false),
        ("fc1 weight grad  xᵀ·dy", [64, 784], [64, 512], true, false),
        ("fc2 forward  h·W2", [64, 512], [512, 256], false, false),
        ("fc2 weight grad  hᵀ·dy", [64, 512], [64, 256], true, false),
        ("fc2 input grad  dy·W2ᵀ", [64, 256], [512, 256], false, true),
        ("fc3 forward  h·W3", [64, 256], [256, 10], false, false),
        ("fc3 weight grad  hᵀ·dy", [64, 256], [64, 10], true, false),
        ("fc3 input grad  dy·W3ᵀ", [64, 10], [256, 10], false, true),
    ];
    let mut total = vec![0.0; counts.len()];
    for (name, ls, rs, lt, rt) in products {
        let lhs = random(ls, &device);
        let rhs = random(rs, &device);
        let lhs = if lt { lhs.transpose() } else { lhs };
        let rhs = if rt { rhs.transpose() } else { rhs };
        let [m, k] = lhs.dims();
        let [_, n] = rhs.dims();
        let secs = on_each(pools, &|| {
            let out = lhs.clone().matmul(rhs.clone());
            std::hint::black_box(out);
        });
        for (t, s) in total.iter_mut().zip(&secs) {
            *t += s;
        }
        row(name, &secs, Some(2.0 * (m * n * k) as f64));
    }
    row("all products of a step", &total, None);

    // Each hidden linear layer as the model runs it: forward and backward (the weight gradient,
    // and the input gradient for fc2) on an autodiff device, whole, then split for the pool's
    // threads with its other threads kept spinning (`DeviceTuning::parallel_step`, the app's
    // default on flex). On one thread both rows are the whole layer.
    let ad = device.clone().autodiff();
    for (name, d_in, d_out, input_grad) in [("fc1", 784, 512, false), ("fc2", 512, 256, true)] {
        let layer = burn::nn::LinearConfig::new(d_in, d_out)
            .with_bias(false)
            .init(&ad);
        let x = random([64, d_in], &ad);
        let x = if input_grad { x.require_grad() } else { x };
        let dy = random([64, d_out], &ad);
        for split in [false, true] {
            let secs: Vec<f64> = pools
                .iter()
                .map(|pool| {
                    pool.install(|| {
                        let threads = if split {
                            rayon::current_num_threads()
                        } else {
                            1
                        };
                        let _hot = (threads > 1)
                            .then(mnist_bn_train::cpu::HotPool::start)
                            .flatten();
                        let step = || {
                            let y = mnist_bn_model::flex::split::linear(&layer, x.clone(), threads);
                            std::hint::black_box((y * dy.clone()).sum().backward());
                        };
                        time(&step, 20, 300)
                    })
                })
                .collect();
            let how = if split { "split, hot pool" } else { "whole" };
            let products = if input_grad { 3.0 } else { 2.0 };
            let flops = products * 2.0 * (64 * d_in * d_out) as f64;
            row(&format!("{name} layer fwd+bwd, {how}"), &secs, Some(flops));
        }
    }

    // Batch norm over [64, C] in training mode, forward and backward on an autodiff device.
    for channels in [512, 256] {
        let x = random([64, channels], &ad).require_grad();
        let gamma = Tensor::<1>::ones([channels], &ad).require_grad();
        let beta = Tensor::<1>::zeros([channels], &ad).require_grad();
        let dy = random([64, channels], &ad);
        type BatchNorm = fn(Tensor<2>, Tensor<1>, Tensor<1>, f64) -> BatchNormTrainOutput<2>;
        let time_batch_norm = |batch_norm: BatchNorm| {
            on_each(pools, &|| {
                let r = batch_norm(x.clone(), gamma.clone(), beta.clone(), 1e-5);
                let grads = (r.output * dy.clone()).sum().backward();
                std::hint::black_box(grads);
            })
        };
        let secs = time_batch_norm(burn::tensor::module::batch_norm_train);
        row(&format!("batch norm [64, {channels}] fwd+bwd"), &secs, None);
        // The model's own kernel on flex (what `TorchBatchNorm` runs there).
        #[cfg(feature = "flex")]
        if mnist_bn_model::flex::fused_batch_norm::fused_on(&ad) {
            let secs = time_batch_norm(mnist_bn_model::flex::fused_batch_norm::batch_norm_train);
            row("  fused (mnist_bn_model::fused_batch_norm)", &secs, None);
        }
    }

    // The SGD update of the largest weight, w - lr·g over 784 × 512, as an optimizer takes it in
    // a step: on a weight and a gradient nothing else holds. Burn's `Sgd`, then `HostSgd` (the
    // app's on flex: `DeviceTuning::host_sgd`).
    let sgd = burn::optim::SgdConfig::new().build();
    let secs = time_update(pools, &device, false, &|w, g| sgd.step(0.01, w, g, None).0);
    row("SGD update w − lr·g [784, 512]", &secs, None);
    let host = mnist_bn_train::cpu::HostSgd;
    let secs = time_update(pools, &device, false, &|w, g| host.step(0.01, w, g, None).0);
    row("  on the host (HostSgd)", &secs, None);
    // As it runs in the app's default step on flex, where the pool's other workers spin while
    // one model trains (`HotPool`), so its chunks are taken at once.
    let secs = time_update(pools, &device, true, &|w, g| host.step(0.01, w, g, None).0);
    row("  on the host, other workers spinning", &secs, None);
}

/// Median time of `update(w, g)` over 300 calls after 20, on each pool, with a weight and a
/// gradient that nothing else holds (flex then works in place, as in a training step); each
/// call's gradient is a fresh copy made before its timer starts. With `spin`, the pool's other
/// workers are kept spinning meanwhile (`HotPool`).
fn time_update(
    pools: &[rayon::ThreadPool],
    device: &Device,
    spin: bool,
    update: &(dyn Fn(Tensor<2>, Tensor<2>) -> Tensor<2> + Sync),
) -> Vec<f64> {
    pools
        .iter()
        .map(|pool| {
            pool.install(|| {
                let _hot = spin.then(mnist_bn_train::cpu::HotPool::start).flatten();
                let mut w = Some(random([784, 512], device));
                let g = random([784, 512], device).into_data();
                let mut secs: Vec<f64> = (0..320)
                    .map(|_| {
                        let g = Tensor::from_data(g.clone(), device);
                        let weight = w.take().expect("put back after each call");
                        let t = Instant::now();
                        w = Some(update(weight, g));
                        t.elapsed().as_secs_f64()
                    })
                    .skip(20)
                    .collect();
                secs.sort_by(f64::total_cmp);
                secs[secs.len() / 2]
            })
        })
        .collect()
}
