//! The subcommands, one file each: gather their inputs, call the libraries, report the
//! outcome. `setup.rs` holds what the training commands share (output directory, data).

mod bench;
mod eval;
mod export;
mod import;
mod lab;
mod predict;
mod run;
mod setup;

use std::process::ExitCode;

use anyhow::Result;

use crate::backend;
use crate::cli::{Cli, Command};

/// Runs the command `cli` asks for on the backend it selects.
pub fn dispatch(cli: Cli) -> Result<ExitCode> {
    let backend = || backend::select(cli.backend.backend, cli.backend.device.as_deref());
    match &cli.command {
        None => run::run(backend()?, &cli.run.common, &cli.run.models, None),
        Some(Command::Run(args)) => run::run(backend()?, &args.common, &args.models, None),
        Some(Command::Train(args)) => run::run(
            backend()?,
            &args.common,
            std::slice::from_ref(&args.model),
            Some(&args.model.name),
        ),
        Some(Command::Eval(args)) => eval::eval(backend()?, args),
        Some(Command::Import(args)) => import::import(backend()?, args),
        Some(Command::Export(args)) => export::export(backend()?, args),
        Some(Command::Predict(args)) => predict::predict(backend()?, args),
        Some(Command::Bench(args)) => bench::bench(backend()?, args),
        Some(Command::Lab(args)) => lab::lab(backend()?, args),
    }
}
