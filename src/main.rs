//! `mnist-bn`: parse the arguments, run the command, turn the outcome into an exit code.

mod backend;
mod bench;
mod cli;
mod commands;
#[cfg(feature = "wgpu")]
mod gpu;
mod threads;

use std::process::ExitCode;

// The allocator is the app's choice: glibc's returns large buffers to the OS and faults them in
// again every training step, which cost 35–45% of an epoch here.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    threads::apply_policy();
    let cli = match cli::parse() {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    };
    // Work on a thread of the rayon pool (RAYON_NUM_THREADS threads, or one per core), so that
    // the backend's parallel matrix products start in place instead of waking the pool from
    // outside: 8-19% off a two-thread epoch here.
    let result = match rayon::ThreadPoolBuilder::new().build() {
        Ok(pool) => pool.install(|| commands::dispatch(cli)),
        Err(_) => commands::dispatch(cli),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
