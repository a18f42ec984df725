//! `mnist-bn eval`: a checkpoint tested on the test set, in train mode, eval mode or both.

use std::process::ExitCode;

use anyhow::Result;
use burn::tensor::Device;
use mnist_bn_train::{TestMode, evaluate, load_checkpoint, write_atomic};

use super::setup::load_test;
use crate::backend::Backend;
use crate::cli::{EvalArgs, EvalMode};

pub fn eval(backend: Backend, args: &EvalArgs) -> Result<ExitCode> {
    println!("backend: {}", backend.name);
    let device: Device = backend.device;
    let checkpoint = load_checkpoint(&args.checkpoint.path, &device)?;
    println!(
        "checkpoint: {} ({}, {} epochs)",
        checkpoint.path.display(),
        checkpoint.config.norm().describe(),
        checkpoint.state.history.len()
    );
    let test = load_test(&args.io)?;
    let modes: &[TestMode] = match args.mode {
        EvalMode::Train => &[TestMode::Train],
        EvalMode::Eval => &[TestMode::Eval],
        EvalMode::Both => &[TestMode::Train, TestMode::Eval],
    };
    let mut results = Vec::new();
    for &mode in modes {
        let result = evaluate(
            &checkpoint.model,
            &test,
            args.batch_size as usize,
            mode,
            &device,
        )?;
        println!("-- test: {mode} mode --\n{result}\n");
        results.push(result);
    }
    if let Some(path) = &args.json {
        let mut json = serde_json::to_vec_pretty(&results)?;
        json.push(b'\n');
        write_atomic(path, &json)?;
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
