//! One of the lab's small networks trained alone, timed per step: a 784-100-100-100-10 ReLU MLP,
//! batch 60, plain SGD at lr 0.01, MNIST in file order, on Burn's flex backend on one thread,
//! through the lab's own learner (`Learner::fit_steps`, on a one-thread rayon pool, with the
//! app's flex tuning). `scripts/small-net-pytorch.py` is the same work in PyTorch, with the same
//! flags and output lines; `docs/performance.md` says how the two are compared.
//!
//! Run: `cargo run --release --example small_net_step -- [--norm batch|none] [--steps 2000]`
//!
//! It prints the steps, the seconds of the training loop alone (loading MNIST and drawing the
//! weights left out), ms/step, and the last step's loss with the mean of the last 100.

use std::collections::VecDeque;
use std::time::Instant;

#[path = "../src/threads.rs"]
mod threads;
#[path = "../src/backend/tuning.rs"]
mod tuning;

use burn::tensor::Device;
use mnist_bn_data::{Mnist, Split};
use mnist_bn_model::{MlpConfig, NetConfig, Norm};
use mnist_bn_train::{Learner, TrainingConfig, seeded_model};

// The app's allocator, so that the step allocates as it does in the lab.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: small_net_step [--norm batch|none] [--steps N]";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (norm, steps) = parse_args()?;
    threads::apply_policy();
    // The app's tuning for flex (its `MNIST_BN_*` switches apply): of it, `fit_steps` takes
    // SGD on the host, as in the lab.
    let tuning = tuning::decide(true, false)?;
    let device = Device::flex();
    let train = Mnist::load(Split::Train, None)?;
    let config = NetConfig::Mlp(MlpConfig::new(norm).with_hidden(vec![100; 3]));
    let training = TrainingConfig::new().with_lr(0.01).with_batch_size(60);
    let model = seeded_model(&config, training.seed, Some(&device), &device);

    // One network on a one-thread pool, as the lab's driver trains each (`lab::driver::run_all`).
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let mut last = VecDeque::with_capacity(100);
    let started = Instant::now();
    let (_, diverged) = pool.install(|| {
        let learner = Learner::new(training, &device).with_tuning(tuning);
        learner.fit_steps(model, &train, steps, |_, _, loss| {
            if last.len() == 100 {
                last.pop_front();
            }
            last.push_back(loss);
        })
    })?;
    let seconds = started.elapsed().as_secs_f64();

    let norm = norm.short_name();
    println!(
        "network: 784-100-100-100-10 relu, norm {norm}, batch 60, SGD lr 0.01 (flex, 1 thread)"
    );
    println!("steps: {steps}");
    println!("loop seconds: {seconds:.3}");
    println!("ms/step: {:.4}", 1e3 * seconds / steps as f64);
    // The losses seen: fewer than `steps` only when the run diverged.
    let mean = last.iter().sum::<f64>() / last.len() as f64;
    let final_loss = last.back().copied().unwrap_or(f64::NAN);
    println!(
        "final loss: {final_loss:.6} (mean of the last {}: {mean:.6})",
        last.len()
    );
    if let Some(step) = diverged {
        println!("diverged at step {step}");
    }
    Ok(())
}

/// `--norm batch|none` (default batch) and `--steps N` (default 2000, at least 1).
fn parse_args() -> Result<(Norm, usize), String> {
    let (mut norm, mut steps) = (Norm::Batch, 2000);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value; {USAGE}"))?;
        match flag.as_str() {
            "--norm" => {
                norm = match value.as_str() {
                    "batch" => Norm::Batch,
                    "none" => Norm::None,
                    _ => return Err(format!("--norm {value}: expected batch or none")),
                }
            }
            "--steps" => {
                steps = value.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                    format!("--steps {value}: expected a number of steps, at least 1")
                })?;
            }
            _ => return Err(format!("unknown flag {flag}; {USAGE}")),
        }
    }
    Ok((norm, steps))
}
