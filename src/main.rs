//! `mnist-bn`: parse the arguments, run the command, turn the outcome into an exit code.

mod backend;
mod cli;
mod commands;
mod pretrained;
mod threads;

use std::process::ExitCode;

// The allocator is the app's choice: glibc's returns large buffers to the OS and faults them in
// again every training step, which cost 35–45% of an epoch here.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    threads::apply_policy();
    catch_file_size_signal();
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

/// A write that would take a file past the process's file-size limit (`ulimit -f`, a quota
/// enforced that way) raises SIGXFSZ, which by default kills the process and leaves a
/// half-written checkpoint directory behind. With the signal caught, the write fails with
/// `EFBIG` instead, like a full disk's `ENOSPC`: the atomic writers report the file, remove
/// their temporary files and keep the last complete checkpoint.
fn catch_file_size_signal() {
    #[cfg(unix)]
    {
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let _ = signal_hook::flag::register(signal_hook::consts::SIGXFSZ, seen);
    }
}
