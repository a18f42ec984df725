//! Faults survived: a run killed mid-training resumes to the same result, Ctrl-C mid-epoch
//! checkpoints and says how to resume, and a run that diverges after a good epoch stops with
//! that epoch's finite weights kept.
//!
//! Each test first proves that the fault landed where it is meant to (the kill and the
//! interrupt mid-epoch 2, the divergence in epoch 2) and fails, rather than passing, when it
//! did not.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use safetensors::SafeTensors;

use crate::util::{
    Args, Run, command, epoch_dir, exported_weights, losses, mnist_bn, mnist_bn_with,
    mnist_bn_with_limit, printed_epochs, read_json, report,
};

/// A plain-model run of 3 epochs of 20,000 images (about a second each here) with progress
/// lines (three per epoch, as on any non-terminal stdout).
fn args(out: &Path, extra: &[&str]) -> Args {
    Args::train("plain")
        .limits(20000, 200)
        .epochs(3)
        .out(out)
        .args(extra)
}

/// A quiet batch-norm run of 2 epochs of 640 images (10 batches each).
fn short_args(out: &Path, extra: &[&str]) -> Args {
    Args::train("batchnorm")
        .epochs(2)
        .limits(640, 100)
        .quiet()
        .out(out)
        .args(extra)
}

fn spawn(args: &Args) -> Child {
    command("flex")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts")
}

/// Reads the child's stdout on a thread; returns a receiver of its lines.
fn lines(stdout: ChildStdout) -> mpsc::Receiver<String> {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if send.send(line).is_err() {
                break;
            }
        }
    });
    receive
}

/// Waits for the first progress line of epoch 2 (`  plain 2 N/313 batches, ...`): epoch 1 is
/// checkpointed and epoch 2 is under way. Panics if the run ends or prints nothing for two
/// minutes first.
fn wait_until_mid_epoch_2(lines: &mpsc::Receiver<String>) {
    let mut seen = Vec::new();
    loop {
        match lines.recv_timeout(Duration::from_secs(120)) {
            Ok(line) if line.starts_with("  plain 2 ") => return,
            Ok(line) => seen.push(line),
            Err(_) => panic!(
                "the run ended or stalled before epoch 2 was under way; it printed:\n{}",
                seen.join("\n")
            ),
        }
    }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([name, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn checkpoint(out: &Path, epoch: usize) -> PathBuf {
    epoch_dir(out, "plain", epoch)
}

#[test]
fn a_run_killed_mid_epoch_resumes_to_exactly_the_uninterrupted_result() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    mnist_bn(&args(&whole, &["--quiet"])).assert_ok();

    let killed = tmp.path().join("killed");
    let mut child = spawn(&args(&killed, &[]));
    let out = lines(child.stdout.take().unwrap());
    wait_until_mid_epoch_2(&out);
    signal(&child, "-KILL");
    let status = child.wait().unwrap();
    assert!(!status.success(), "the run finished before the kill");
    // The kill landed mid-training: epoch 1 saved, epoch 2 not, no report.
    assert!(checkpoint(&killed, 1).join("model.json").is_file());
    assert!(!checkpoint(&killed, 2).exists(), "epoch 2 finished first");
    assert!(!killed.join("report.json").exists());

    let resumed = mnist_bn(&args(&killed, &["--quiet", "--resume"]));
    resumed.assert_ok();
    assert_eq!(
        printed_epochs(&resumed.stdout),
        [2, 3],
        "{}",
        resumed.stdout
    );
    let (a, b) = (report(&whole), report(&killed));
    assert_eq!(losses(&a, 0), losses(&b, 0));
    assert_eq!(a["models"][0]["tests"], b["models"][0]["tests"]);
    assert_eq!(
        exported_weights(&whole, "plain"),
        exported_weights(&killed, "plain"),
        "final weights differ"
    );
}

#[test]
fn ctrl_c_mid_epoch_keeps_the_last_checkpoint_and_says_how_to_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let mut child = spawn(&args(&out, &[]));
    let lines = lines(child.stdout.take().unwrap());
    wait_until_mid_epoch_2(&lines);
    signal(&child, "-INT");
    let run = Run::from(child.wait_with_output().unwrap());
    assert!(
        run.code != Some(0),
        "the run finished before the interrupt landed: {}",
        run.stderr
    );
    run.assert_exit(130, "Resume with: mnist-bn train --model plain --out");
    assert!(checkpoint(&out, 1).join("model.bpk").is_file());
    assert!(!checkpoint(&out, 2).exists());
    let stopped = report(&out);
    assert_eq!(stopped["models"][0]["stop"]["status"], "interrupted");
    assert_eq!(stopped["models"][0]["stop"]["epoch"], 2);
    assert_eq!(losses(&stopped, 0).len(), 1);

    let resumed = mnist_bn(&args(&out, &["--quiet", "--resume"]));
    resumed.assert_ok();
    assert_eq!(
        printed_epochs(&resumed.stdout),
        [2, 3],
        "{}",
        resumed.stdout
    );
    assert_eq!(losses(&report(&out), 0).len(), 3);
}

/// Every value of a safetensors file of f32 tensors is finite.
fn all_finite(file: &Path) -> bool {
    let bytes = std::fs::read(file).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    assert!(!st.tensors().is_empty(), "{}: no tensors", file.display());
    st.tensors().iter().all(|(name, view)| {
        assert_eq!(view.dtype(), safetensors::Dtype::F32, "{name}");
        view.data()
            .chunks_exact(4)
            .all(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]).is_finite())
    })
}

#[test]
fn divergence_in_epoch_2_stops_there_and_keeps_epoch_1s_finite_weights() {
    // One batch per epoch and an absurd learning rate: the first step (loss 2.3) leaves
    // weights of about 1e19, finite, so epoch 1 completes and is checkpointed; the next
    // forward pass overflows, on any machine.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let run = mnist_bn(
        &Args::train("plain")
            .opt("--lr", "1e20")
            .limits(64, 100)
            .epochs(3)
            .quiet()
            .out(&out),
    );
    run.assert_exit(3, "diverged at epoch 2, batch 1 (loss NaN)");
    assert!(
        run.stderr.contains("try a lower learning rate"),
        "{}",
        run.stderr
    );
    assert_eq!(printed_epochs(&run.stdout), [1], "{}", run.stdout);
    let report = report(&out);
    let model = &report["models"][0];
    assert_eq!(model["stop"]["status"], "diverged");
    assert_eq!(model["stop"]["epoch"], 2);
    assert_eq!(model["stop"]["batch"], 1);
    assert!(
        model["stop"]["loss"].is_null(),
        "a NaN loss is null in JSON"
    );
    assert!(model["tests"].as_array().unwrap().is_empty());
    assert_eq!(losses(&report, 0).len(), 1);
    // The last good checkpoint is epoch 1's, and its weights are finite.
    assert!(checkpoint(&out, 1).join("model.bpk").is_file());
    assert!(!checkpoint(&out, 2).exists());
    let file = tmp.path().join("epoch1.safetensors");
    mnist_bn(&Args::export(&checkpoint(&out, 1), &file)).assert_ok();
    assert!(
        all_finite(&file),
        "epoch 1's checkpoint holds non-finite weights"
    );
}

#[test]
fn losses_read_in_groups_give_the_same_run_and_name_the_same_diverging_batch() {
    // Ten batches per epoch; groups of 4 leave a group of 2 at each epoch's end.
    let tmp = tempfile::tempdir().unwrap();
    let train = |name: &str, extra: &[&str]| {
        let out = tmp.path().join(name);
        (mnist_bn(&short_args(&out, extra)), out)
    };
    let (every, out_every) = train("every", &["--loss-reads-every", "1"]);
    let (grouped, out_grouped) = train("grouped", &["--loss-reads-every", "4"]);
    every.assert_ok();
    grouped.assert_ok();
    assert_eq!(printed_epochs(&grouped.stdout), [1, 2]);
    let epoch_lines = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| l.starts_with("Epoch: "))
            .map(String::from)
            .collect()
    };
    assert_eq!(epoch_lines(&every.stdout), epoch_lines(&grouped.stdout));
    let (a, b) = (report(&out_every), report(&out_grouped));
    assert_eq!(losses(&a, 0), losses(&b, 0));
    assert_eq!(a["models"][0]["tests"], b["models"][0]["tests"]);

    // lr 1e20: batch 1's step leaves weights near 1e19 and batch 2's loss is NaN, in the
    // middle of the first group of 4; the stop still names batch 2.
    for reads in ["1", "4"] {
        let (run, out) = train(
            &format!("diverge{reads}"),
            &["--lr", "1e20", "--loss-reads-every", reads],
        );
        if let Err(problem) = run.check_error(Some(3), "diverged at epoch 1, batch 2 (loss NaN)") {
            panic!("reads every {reads}: {problem}");
        }
        let report = report(&out);
        assert_eq!(report["models"][0]["stop"]["batch"], 2);
    }
}

#[test]
fn batches_gathered_on_the_device_train_the_same_run() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |on_device| {
        report_with(
            tmp.path(),
            &[("MNIST_BN_DATA_ON_DEVICE", on_device)],
            &["--shuffle"],
        )
    };
    let (host, device) = (run("0"), run("1"));
    assert_eq!(losses(&host, 0), losses(&device, 0));
    assert_eq!(host["models"][0]["tests"], device["models"][0]["tests"]);
    refuses_a_bad_switch(tmp.path(), "MNIST_BN_DATA_ON_DEVICE");
}

#[test]
fn sgd_on_the_host_trains_the_same_run_to_the_bit() {
    let tmp = tempfile::tempdir().unwrap();
    // Two threads, so that a lone model's update is shared between them.
    let run = |host| {
        let env = [("RAYON_NUM_THREADS", "2"), ("MNIST_BN_HOST_SGD", host)];
        report_with(tmp.path(), &env, &[])
    };
    let (burns, host) = (run("0"), run("1"));
    assert_eq!(losses(&burns, 0), losses(&host, 0));
    assert_eq!(burns["models"][0]["tests"], host["models"][0]["tests"]);
    // The switch is read: `bench` says which update it took (on by default on flex, checked in
    // `claims.rs`).
    let json = tmp.path().join("bench.json");
    let args = Args::command("bench")
        .opt("--models", "plain")
        .epochs(1)
        .path("--json", &json);
    let bench = mnist_bn_with("flex", &[("MNIST_BN_HOST_SGD", "0")], &args);
    bench.assert_ok();
    assert!(
        bench
            .stdout
            .contains("SGD update: Burn's tensor operations"),
        "{}",
        bench.stdout
    );
    assert_eq!(read_json(&json)["host_sgd"], false);
    refuses_a_bad_switch(tmp.path(), "MNIST_BN_HOST_SGD");
}

/// The report of a short run (seed 3, `extra` flags) with `env` set, in a directory of `tmp`
/// named after `env`.
fn report_with(tmp: &Path, env: &[(&str, &str)], extra: &[&str]) -> serde_json::Value {
    let name: Vec<String> = env.iter().map(|(k, v)| format!("{k}-{v}")).collect();
    let out = tmp.join(name.join("-"));
    let args = short_args(&out, &[]).opt("--seed", 3).args(extra);
    mnist_bn_with("flex", env, &args).assert_ok();
    report(&out)
}

/// A switch set to neither 1 nor 0 is refused by name.
fn refuses_a_bad_switch(tmp: &Path, name: &str) {
    let out = tmp.join(format!("{name}-yes"));
    mnist_bn_with("flex", &[(name, "yes")], &short_args(&out, &[]))
        .assert_error(&format!("{name}=yes: expected 1 or 0"));
}

#[test]
fn a_lone_model_on_two_threads_trains_the_same_run_up_to_rounding() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |parallel| {
        let env = [
            ("RAYON_NUM_THREADS", "2"),
            ("MNIST_BN_PARALLEL_STEP", parallel),
        ];
        losses(&report_with(tmp.path(), &env, &[]), 0)
    };
    let (whole, split) = (run("0"), run("1"));
    assert_eq!(whole.len(), split.len());
    for (w, s) in whole.iter().zip(&split) {
        assert!(
            (w - s).abs() < 1e-4,
            "whole products {whole:?}, split {split:?}"
        );
    }
    // The switch took effect: the split forward sums round differently.
    assert_ne!(whole, split);
    refuses_a_bad_switch(tmp.path(), "MNIST_BN_PARALLEL_STEP");
}

#[test]
fn weights_that_overflow_on_an_epochs_last_step_are_not_checkpointed() {
    // lr 1e39 (infinite in f32) on one batch per epoch: the loss of the first step is finite,
    // but the step leaves infinite weights; epoch 1 must not become the "last good" checkpoint.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let run = mnist_bn(
        &Args::train("plain")
            .opt("--lr", "1e39")
            .limits(64, 100)
            .epochs(2)
            .quiet()
            .out(&out),
    );
    run.assert_exit(3, "diverged at epoch 1, batch 1 (loss 2.3");
    assert!(
        run.stderr
            .contains("but the step left weights that are not finite"),
        "{}",
        run.stderr
    );
    assert!(!checkpoint(&out, 1).exists());
    let report = report(&out);
    let stop = &report["models"][0]["stop"];
    assert_eq!(stop["status"], "diverged");
    assert_eq!((&stop["epoch"], &stop["batch"]), (&1.into(), &1.into()));
    let loss = stop["loss"].as_f64().expect("the last loss was finite");
    assert!((2.0..2.6).contains(&loss), "{loss}");
}

#[test]
fn a_second_writer_of_a_live_run_directory_is_refused_and_a_killed_one_leaves_no_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let mut child = spawn(&args(&out, &[]));
    let lines = lines(child.stdout.take().unwrap());
    wait_until_mid_epoch_2(&lines);
    let holder = format!("in use by process {}", child.id());
    // A second run with --force, and a --resume, while the first is still writing.
    mnist_bn(&args(&out, &["--quiet", "--force"])).assert_error(&holder);
    mnist_bn(&args(&out, &["--quiet", "--resume"])).assert_error(&holder);
    assert!(
        child.try_wait().unwrap().is_none(),
        "the first run ended before the second was refused"
    );
    signal(&child, "-KILL");
    let _ = child.wait();
    // The epochs the killed run finished: 1, or 2 as well when epoch 2 ended while the second
    // writers were being refused (a fast or a busy machine). Its stdout ends with the kill.
    let mut finished = 1;
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(10)) {
        finished = finished.max(printed_epochs(&line).first().copied().unwrap_or(0));
    }
    // The lock died with its process: the run resumes from the last checkpoint, which is the
    // last finished epoch's, or the one before when the kill landed between an epoch's line
    // and its checkpoint (resuming a mid-epoch kill exactly: `a_run_killed_mid_epoch_resumes_...`).
    let resumed = mnist_bn(&args(&out, &["--quiet", "--resume"]));
    resumed.assert_ok();
    let from: usize = resumed
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("resuming plain after epoch ")?.parse().ok())
        .unwrap_or_else(|| panic!("no resume line:\n{}", resumed.stdout));
    assert!(
        (1..=finished).contains(&from) && from + 1 >= finished,
        "killed after epoch {finished}, resumed after epoch {from}"
    );
    assert_eq!(
        printed_epochs(&resumed.stdout),
        (from + 1..=3).collect::<Vec<_>>(),
        "{}",
        resumed.stdout
    );
}

/// Waits for a line of the child's stdout that starts with `prefix`.
fn wait_for(lines: &mpsc::Receiver<String>, prefix: &str) {
    let mut seen = Vec::new();
    loop {
        match lines.recv_timeout(Duration::from_secs(120)) {
            Ok(line) if line.starts_with(prefix) => return,
            Ok(line) => seen.push(line),
            Err(_) => panic!(
                "no line {prefix:?}; the child printed:\n{}",
                seen.join("\n")
            ),
        }
    }
}

#[test]
fn every_command_that_writes_into_a_live_run_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (run_dir, lab_dir) = (tmp.path().join("run"), tmp.path().join("lab"));
    // Two live writers: a lesson run of 100 epochs and a lab of every experiment on all of
    // MNIST, each well under way; both are killed at the end.
    let mut lesson = spawn(&args(&run_dir, &[]).set("--epochs", 100));
    let lesson_lines = lines(lesson.stdout.take().unwrap());
    wait_until_mid_epoch_2(&lesson_lines);
    let mut lab = spawn(&Args::command("lab").quiet().out(&lab_dir));
    let lab_lines = lines(lab.stdout.take().unwrap());
    wait_for(&lab_lines, "== lab: grid");
    let weights = crate::util::fixture("init_bn.pt");
    for (dir, holder) in [(&run_dir, &mut lesson), (&lab_dir, &mut lab)] {
        let in_use = format!("in use by process {}", holder.id());
        let writers = [
            ("run", Args::lesson().limits(640, 64).epochs(1).quiet()),
            (
                "train",
                Args::train("batchnorm").limits(640, 64).epochs(1).quiet(),
            ),
            (
                "lab",
                Args::command("lab")
                    .args(["grid"])
                    .limits(600, 64)
                    .opt("--steps", 10)
                    .quiet(),
            ),
        ];
        for (command, writer) in writers {
            eprintln!("{command} --force into {}", dir.display());
            mnist_bn(&writer.out(dir).flag("--force")).assert_exit(1, &in_use);
        }
        // `import --force` replaces its --out: neither the run directory nor a directory in it.
        for out in [dir.clone(), dir.join("plain")] {
            mnist_bn(&Args::import(&weights, "batchnorm", &out).flag("--force"))
                .assert_error(&in_use);
        }
        assert!(
            holder.try_wait().unwrap().is_none(),
            "the writer of {} ended before the others were refused",
            dir.display()
        );
    }
    assert!(
        run_dir.join("plain").is_dir(),
        "the live run's directory is still there"
    );
    for mut holder in [lesson, lab] {
        let _ = holder.kill();
        let _ = holder.wait();
    }
}

#[test]
fn a_checkpoint_that_cannot_be_written_is_a_clear_error_and_the_last_one_survives() {
    // A file-size limit (prlimit, util-linux) below model.bpk's 2.1 MB stands in for a full
    // disk: the epoch-2 checkpoint's first file fails to write (EFBIG, like ENOSPC).
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let small = |epochs: usize| {
        Args::train("plain")
            .limits(640, 64)
            .quiet()
            .out(&out)
            .epochs(epochs)
    };
    mnist_bn(&small(1)).assert_ok();
    let target = checkpoint(&out, 2).join("model.bpk");
    mnist_bn_with_limit("--fsize=500000", &small(2).flag("--resume"))
        .assert_exit(1, &format!("{}: File too large", target.display()));
    // Epoch 1's checkpoint is whole, epoch 2's does not exist, nothing temporary is left.
    assert!(!checkpoint(&out, 2).exists());
    let entries: Vec<String> = std::fs::read_dir(out.join("plain/checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries, ["epoch-001"]);
    let strays: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-") || n.contains(".partial-"))
        .collect();
    assert!(strays.is_empty(), "{strays:?}");
    // With room again, the run resumes from epoch 1's checkpoint.
    let resumed = mnist_bn(&small(2).flag("--resume"));
    resumed.assert_ok();
    assert_eq!(printed_epochs(&resumed.stdout), [2], "{}", resumed.stdout);
}
