//! Checkpoints and resume: a resumed run trains only the epochs it lacks, from the
//! checkpoint's weights and optimizer state, and ends where an uninterrupted run ends; seeds,
//! shuffling and `--force` do what they say.
//!
//! Training is seeded and deterministic, so "the same losses as an uninterrupted run" alone
//! would also hold for a `--resume` that ignored the checkpoint and trained again from epoch 1.
//! Each test therefore also checks what the resumed run itself did: the epochs it printed, the
//! first epoch's record carried over untouched (its wall-clock seconds cannot be reproduced by
//! training again), and a result that changes when the checkpoint's weights or optimizer state
//! are changed on purpose. The runs use SGD with momentum, so that the optimizer state matters.

use std::path::{Path, PathBuf};

use crate::util::{
    Args, epoch_dir, exported_weights, losses, mnist_bn, path_str, printed_epochs, report,
};

/// The arguments of a small shuffled batch-norm run with momentum into `out`.
fn train_args(out: &Path, epochs: usize, extra: &[&str]) -> Args {
    Args::train("batchnorm")
        .limits(960, 200)
        .flag("--shuffle")
        .opt("--seed", 7)
        .opt("--momentum", 0.9)
        .epochs(epochs)
        .quiet()
        .out(out)
        .args(extra)
}

/// Trains; returns the report and what the run printed.
fn train(out: &Path, epochs: usize, extra: &[&str]) -> (serde_json::Value, String) {
    let run = mnist_bn(&train_args(out, epochs, extra));
    run.assert_ok();
    (report(out), run.stdout.clone())
}

fn epoch_seconds(report: &serde_json::Value, epoch: usize) -> f64 {
    report["models"][0]["epochs"][epoch - 1]["seconds"]
        .as_f64()
        .unwrap()
}

fn checkpoint(out: &Path, epoch: usize) -> PathBuf {
    epoch_dir(out, "batchnorm", epoch)
}

#[test]
fn a_resumed_run_trains_only_the_missing_epochs_and_ends_as_an_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    let split = tmp.path().join("split");
    let (full, _) = train(&whole, 3, &[]);
    let (first, _) = train(&split, 1, &[]);
    let (resumed, printed) = train(&split, 3, &["--resume"]);

    assert_eq!(printed_epochs(&printed), [2, 3], "{printed}");
    assert_eq!(
        epoch_seconds(&resumed, 1),
        epoch_seconds(&first, 1),
        "epoch 1's record was not carried over from the checkpoint"
    );
    assert_eq!(losses(&full, 0).len(), 3);
    assert_eq!(losses(&full, 0), losses(&resumed, 0));
    assert_eq!(
        exported_weights(&whole, "batchnorm"),
        exported_weights(&split, "batchnorm"),
        "final weights differ"
    );
    assert_eq!(full["models"][0]["tests"], resumed["models"][0]["tests"]);
}

#[test]
fn a_resume_starts_from_the_checkpoints_weights_and_optimizer_state() {
    // Another run ("other": same settings, other initial weights) is given the uninterrupted
    // run's epoch-1 weights and optimizer state (they belong together: Burn files the
    // momentum under the weights' parameter ids). Resumed, it must train epoch 2 exactly as
    // the uninterrupted run did, although its own epoch 1 was different: nothing but the
    // checkpoint can carry that state over.
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    let other = tmp.path().join("other");
    let (full, _) = train(&whole, 2, &[]);
    let whole_model = whole.join("batchnorm");
    let (before, _) = train(&other, 1, &["--init-from", path_str(&whole_model)]);
    for file in ["model.bpk", "optimizer.bin"] {
        std::fs::copy(
            checkpoint(&whole, 1).join(file),
            checkpoint(&other, 1).join(file),
        )
        .unwrap();
    }
    let (resumed, printed) = train(&other, 2, &["--resume"]);
    assert_eq!(printed_epochs(&printed), [2], "{printed}");
    let (a, b) = (losses(&full, 0), losses(&resumed, 0));
    assert_ne!(
        a[0],
        losses(&before, 0)[0],
        "the two runs' epoch 1 must differ"
    );
    assert_eq!(
        b[0],
        losses(&before, 0)[0],
        "epoch 1 is the resumed run's own record"
    );
    assert_eq!(
        a[1], b[1],
        "epoch 2 did not start from the checkpoint's state"
    );
    assert_eq!(full["models"][0]["tests"], resumed["models"][0]["tests"]);
}

#[test]
fn without_optimizer_bin_the_momentum_restarts_from_zero() {
    // The optimizer state matters with momentum: without it epoch 2 ends elsewhere, so the
    // equalities above are reached only by loading it.
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    let split = tmp.path().join("split");
    let (full, _) = train(&whole, 2, &[]);
    train(&split, 1, &[]);
    std::fs::remove_file(checkpoint(&split, 1).join("optimizer.bin")).unwrap();
    let (resumed, _) = train(&split, 2, &["--resume"]);
    let (a, b) = (losses(&full, 0), losses(&resumed, 0));
    assert_eq!(a[0], b[0]);
    assert_ne!(a[1], b[1], "the momentum buffers made no difference");
}

#[test]
fn the_same_seed_gives_the_same_losses_and_another_seed_other_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, _) = train(&tmp.path().join("a"), 2, &[]);
    let (b, _) = train(&tmp.path().join("b"), 2, &[]);
    assert_eq!(losses(&a, 0), losses(&b, 0));
    let c = tmp.path().join("c");
    mnist_bn(&train_args(&c, 2, &[]).set("--seed", 8)).assert_ok();
    let c = report(&c);
    assert_ne!(losses(&a, 0), losses(&c, 0));
}

#[test]
fn the_seed_shuffles_only_with_shuffle() {
    // The same initial weights (--init-from a checkpoint directory), two seeds: with
    // --shuffle the order, and so the losses, differ; without it both see file order.
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("init");
    train(&run_dir, 1, &[]);
    let init = run_dir.join("batchnorm");
    let run = |name: &str, seed: &str, shuffle: bool| {
        let out = tmp.path().join(name);
        let mut args = Args::train("batchnorm")
            .limits(960, 200)
            .opt("--seed", seed)
            .epochs(1)
            .quiet()
            .path("--init-from", &init)
            .out(&out);
        if shuffle {
            args = args.flag("--shuffle");
        }
        mnist_bn(&args).assert_ok();
        losses(&report(&out), 0)
    };
    assert_ne!(run("s1", "1", true), run("s2", "2", true));
    assert_eq!(run("f1", "1", false), run("f2", "2", false));
}

#[test]
fn resume_refuses_other_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    train(&out, 1, &[]);
    // A flag the base arguments hold is replaced (clap refuses it twice), others added.
    for (flag, value) in [
        ("--lr", "0.1"),
        ("--batch-size", "32"),
        ("--seed", "8"),
        ("--momentum", "0.5"),
    ] {
        let args = train_args(&out, 2, &["--resume"]).set(flag, value);
        mnist_bn(&args).assert_error("was trained with other settings");
    }
}

#[test]
fn a_forced_new_run_replaces_the_old_runs_checkpoints() {
    // An old run's later epochs must not survive `--force` to be taken by `--resume`.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    train(&out, 3, &[]);
    let (fresh, _) = train(&out, 1, &["--force", "--lr", "0.02"]);
    assert!(checkpoint(&out, 1).is_dir());
    assert!(!checkpoint(&out, 2).exists() && !checkpoint(&out, 3).exists());
    mnist_bn(&train_args(&out, 2, &["--resume", "--lr", "0.02"])).assert_ok();
    let resumed = report(&out);
    assert_eq!(losses(&resumed, 0).len(), 2);
    assert_eq!(losses(&resumed, 0)[0], losses(&fresh, 0)[0]);
}
