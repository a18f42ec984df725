//! The operations of one training step of the lesson's MLPs, timed one by one on the CPU
//! backend, with the figures to set beside PyTorch's (`scripts/ops-pytorch.py`).
//!
//! `cargo bench --bench ops` (add `--features ndarray` and `MNIST_BN_BACKEND=ndarray` for
//! ndarray). Not a test: it prints, for each matrix product of a step at batch 64 (forward,
//! weight gradient, input gradient, with the transposes autodiff uses), the median time per
//! call, GFLOP/s and seconds per epoch (938 calls); then the batch norms' forward + backward
//! and an SGD step. Set `RAYON_NUM_THREADS` to fix the threads.

use std::time::Instant;

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
fn time(mut f: impl FnMut(), warmup: usize, reps: usize) -> f64 {
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
    if std::env::var_os("OPS_OUTSIDE_POOL").is_some() {
        run();
    } else {
        // Run on a rayon worker, as the app does, so that parallel products start in place.
        rayon::ThreadPoolBuilder::new()
            .build()
            .expect("a rayon thread pool")
            .install(run);
    }
}

fn run() {
    let device = device();
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into());
    println!("ops of one batch-64 step ({device:?}, rayon threads: {threads})");
    println!(
        "{:<34} {:>10} {:>9} {:>11}",
        "matrix product", "µs/call", "GFLOP/s", "s/epoch"
    );
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
    let mut total = 0.0;
    for (name, ls, rs, lt, rt) in products {
        let lhs = random(ls, &device);
        let rhs = random(rs, &device);
        let lhs = if lt { lhs.transpose() } else { lhs };
        let rhs = if rt { rhs.transpose() } else { rhs };
        let [m, k] = lhs.dims();
        let [_, n] = rhs.dims();
        let secs = time(
            || {
                let out = lhs.clone().matmul(rhs.clone());
                std::hint::black_box(out);
            },
            20,
            300,
        );
        let flops = 2.0 * (m * n * k) as f64;
        total += secs * STEPS_PER_EPOCH;
        println!(
            "{name:<34} {:>10.1} {:>9.1} {:>11.3}",
            secs * 1e6,
            flops / secs / 1e9,
            secs * STEPS_PER_EPOCH
        );
    }
    println!(
        "{:<34} {:>10} {:>9} {:>11.3}",
        "all products of a step", "", "", total
    );

    // Batch norm over [64, C] in training mode, forward and backward on an autodiff device.
    let ad = device.clone().autodiff();
    for channels in [512, 256] {
        let x = random([64, channels], &ad).require_grad();
        let gamma = Tensor::<1>::ones([channels], &ad).require_grad();
        let beta = Tensor::<1>::zeros([channels], &ad).require_grad();
        let dy = random([64, channels], &ad);
        let secs = time(
            || {
                let r = burn::tensor::module::batch_norm_train(
                    x.clone(),
                    gamma.clone(),
                    beta.clone(),
                    1e-5,
                );
                let grads = (r.output * dy.clone()).sum().backward();
                std::hint::black_box(grads);
            },
            20,
            300,
        );
        println!(
            "{:<34} {:>10.1} {:>9} {:>11.3}",
            format!("batch norm [64, {channels}] fwd+bwd"),
            secs * 1e6,
            "",
            secs * STEPS_PER_EPOCH
        );
    }
}
