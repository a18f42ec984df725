//! `mnist-bn lab`: the chosen experiments, written into a lab directory.

use std::process::ExitCode;

use anyhow::{Result, bail};
use mnist_bn_train::lab::Experiment;
use mnist_bn_train::{LabOptions, ProgressMode, run_lab};

use super::setup::{load_data, prepare_out_dir};
use crate::backend::{self, Backend};
use crate::cli::LabArgs;

pub fn lab(backend: Backend, args: &LabArgs) -> Result<ExitCode> {
    println!("backend: {}", backend.name);
    let experiments: Vec<Experiment> = if args.experiments.is_empty() {
        Experiment::ALL.to_vec()
    } else {
        let mut chosen: Vec<Experiment> = Vec::new();
        for &experiment in &args.experiments {
            if chosen.contains(&experiment) {
                bail!("lab: {experiment} is listed twice");
            }
            chosen.push(experiment);
        }
        chosen
    };
    if args.checkpoint.is_some() && !experiments.contains(&Experiment::Inference) {
        bail!("--checkpoint is for the inference experiment, which is not among those chosen");
    }
    let out = prepare_out_dir(args.out.as_deref(), "lab-", args.force, false)?;
    let (train, test) = load_data(&args.io, args.train_limit)?;
    let options = LabOptions {
        out: out.clone(),
        steps: args.steps.map(|n| n as usize),
        seed: args.seed,
        seeds: args.seeds as usize,
        checkpoint: args.checkpoint.clone(),
        progress: if args.quiet {
            ProgressMode::Quiet
        } else {
            ProgressMode::Auto
        },
        backend: backend.name.clone(),
        threads: if backend.kind.is_gpu() {
            1
        } else {
            rayon::current_num_threads()
        },
        init_device: backend::init_device(),
        tuning: backend.tuning,
    };
    let report = run_lab(&experiments, train, test, &options, &backend.device)?;
    println!("{}", report.summary());
    println!("wrote {}", out.join("lab.md").display());
    Ok(ExitCode::SUCCESS)
}
