//! `mnist-bn export`: a checkpoint of the lesson's MLP written as a PyTorch state_dict.

use std::process::ExitCode;

use anyhow::{Result, bail};
use mnist_bn_train::{export_pytorch, load_checkpoint};

use crate::backend::Backend;
use crate::cli::ExportArgs;

pub fn export(backend: Backend, args: &ExportArgs) -> Result<ExitCode> {
    let device = backend.device;
    let checkpoint = load_checkpoint(&args.checkpoint.path, &device)?;
    let batches = i64::try_from(checkpoint.state.batches_seen).unwrap_or(i64::MAX);
    let Some(mlp) = checkpoint.model.as_mlp() else {
        bail!(
            "--checkpoint {}: only the lesson's MLPs have a PyTorch counterpart to export to",
            checkpoint.path.display()
        );
    };
    export_pytorch(mlp, &args.safetensors, batches)?;
    println!(
        "exported {} to {} (PyTorch state_dict; load with \
         model.load_state_dict(safetensors.torch.load_file(...)))",
        checkpoint.path.display(),
        args.safetensors.display()
    );
    Ok(ExitCode::SUCCESS)
}
