//! `mnist-bn import`: a PyTorch state_dict of the lesson's MLP turned into a checkpoint.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use mnist_bn_model::NetConfig;
use mnist_bn_train::{
    CHECKPOINT_FORMAT, RunDirLock, TrainState, TrainingConfig, import_pytorch, write_checkpoint_dir,
};

use crate::backend::Backend;
use crate::cli::ImportArgs;

pub fn import(backend: Backend, args: &ImportArgs) -> Result<ExitCode> {
    let device = backend.device;
    if args.out.exists() && !args.force {
        bail!(
            "--out {}: already exists; pass --force to replace it",
            args.out.display()
        );
    }
    let config = match &args.model.config {
        NetConfig::Mlp(config) => config.clone(),
        _ => bail!(
            "--model {}: PyTorch weights can be imported for the lesson's MLP only \
             (batchnorm, plain, layernorm, groupnorm)",
            args.model.name
        ),
    };
    let model = import_pytorch(&args.pytorch, &config, &device)?;
    let state = TrainState {
        format: CHECKPOINT_FORMAT,
        training: TrainingConfig::new(),
        history: Vec::new(),
        batches_seen: 0,
    };
    // `--out` may be, or lie inside, a run directory that a live run is writing.
    let _locks = RunDirLock::acquire_enclosing(&args.out)?;
    if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    write_checkpoint_dir(&args.out, &config.into(), &model.into(), None, &state)?;
    println!(
        "imported {} into checkpoint {}",
        args.pytorch.display(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
