//! Faults survived: a killed run resumes to the same result, Ctrl-C checkpoints and says how to
//! resume, and a diverging run stops cleanly without writing NaN weights.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{exported_weights, losses, mnist_bn, path_str, read_json, root};

fn args<'a>(out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "train",
        "--model",
        "plain",
        "--train-limit",
        "20000",
        "--test-limit",
        "200",
        "--epochs",
        "3",
        "--quiet",
        "--out",
        path_str(out),
    ];
    args.extend_from_slice(extra);
    args
}

fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_mnist-bn"))
        .args(args)
        .current_dir(root())
        .env_remove("MNIST_DIR")
        .env("MNIST_BN_BACKEND", "flex")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts")
}

/// Waits until the first epoch's checkpoint is complete, then a little into the next epoch.
fn wait_for_first_checkpoint(out: &Path) {
    let done = out.join("plain/checkpoints/epoch-001/model.json");
    let started = Instant::now();
    while !done.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no checkpoint after 2 minutes"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(150));
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([name, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_killed_run_resumes_to_exactly_the_uninterrupted_result() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    mnist_bn(&args(&whole, &[])).assert_ok();

    let killed = tmp.path().join("killed");
    let mut child = spawn(&args(&killed, &[]));
    wait_for_first_checkpoint(&killed);
    signal(&child, "-KILL");
    let status = child.wait().unwrap();
    println!("killed run exited with {status:?}");
    mnist_bn(&args(&killed, &["--resume"])).assert_ok();

    let (a, b) = (
        read_json(&whole.join("report.json")),
        read_json(&killed.join("report.json")),
    );
    assert_eq!(losses(&a, 0), losses(&b, 0));
    assert_eq!(a["models"][0]["tests"], b["models"][0]["tests"]);
    assert_eq!(
        exported_weights(&whole, "plain"),
        exported_weights(&killed, "plain"),
        "final weights differ"
    );
}

#[test]
fn ctrl_c_keeps_the_last_checkpoint_and_says_how_to_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let child = spawn(&args(&out, &[]));
    wait_for_first_checkpoint(&out);
    signal(&child, "-INT");
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.success() {
        // The machine finished the run before the signal landed; nothing to check.
        println!("run finished before the interrupt");
        return;
    }
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("Resume with: mnist-bn train --model plain --out"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.join("plain/checkpoints/epoch-001/model.bpk").is_file());
    let report = read_json(&out.join("report.json"));
    assert_eq!(report["models"][0]["stop"]["status"], "interrupted");
    mnist_bn(&args(&out, &["--resume"])).assert_ok();
    assert_eq!(losses(&read_json(&out.join("report.json")), 0).len(), 3);
}

#[test]
fn divergence_stops_at_the_batch_and_keeps_finite_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let run = mnist_bn(&[
        "train",
        "--model",
        "plain",
        "--lr",
        "100",
        "--train-limit",
        "2000",
        "--test-limit",
        "100",
        "--epochs",
        "2",
        "--out",
        path_str(&out),
    ]);
    assert_eq!(run.code, Some(3), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("diverged at epoch 1, batch"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("try a lower learning rate"),
        "{}",
        run.stderr
    );
    let report = read_json(&out.join("report.json"));
    assert_eq!(report["models"][0]["stop"]["status"], "diverged");
    assert!(report["models"][0]["tests"].as_array().unwrap().is_empty());
    // Nothing was checkpointed: the first epoch never completed.
    assert!(!out.join("plain/checkpoints/epoch-001").exists());
}
