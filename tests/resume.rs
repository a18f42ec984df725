//! Checkpoints and resume: a run continued from its checkpoint ends where an uninterrupted
//! run ends, and the same seed gives the same numbers.

use crate::util::{exported_weights, losses, mnist_bn, path_str, read_json};

/// The arguments of a small shuffled batch-norm run into `out`.
fn train_args<'a>(out: &'a std::path::Path, epochs: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "train",
        "--model",
        "batchnorm",
        "--train-limit",
        "960",
        "--test-limit",
        "200",
        "--shuffle",
        "--seed",
        "7",
        "--epochs",
        epochs,
        "--out",
        path_str(out),
    ];
    args.extend_from_slice(extra);
    args
}

fn train(out: &std::path::Path, epochs: &str, extra: &[&str]) -> serde_json::Value {
    mnist_bn(&train_args(out, epochs, extra)).assert_ok();
    read_json(&out.join("report.json"))
}

#[test]
fn resuming_gives_the_same_losses_and_weights_as_an_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    let split = tmp.path().join("split");
    let full = train(&whole, "3", &[]);
    train(&split, "1", &[]);
    let resumed = train(&split, "3", &["--resume"]);
    assert_eq!(losses(&full, 0), losses(&resumed, 0));
    assert_eq!(losses(&full, 0).len(), 3);
    assert_eq!(
        exported_weights(&whole, "batchnorm"),
        exported_weights(&split, "batchnorm"),
        "final weights differ"
    );
    assert_eq!(full["models"][0]["tests"], resumed["models"][0]["tests"]);
}

#[test]
fn the_same_seed_gives_the_same_losses() {
    let tmp = tempfile::tempdir().unwrap();
    let a = train(&tmp.path().join("a"), "2", &[]);
    let b = train(&tmp.path().join("b"), "2", &[]);
    assert_eq!(losses(&a, 0), losses(&b, 0));
}

#[test]
fn resume_refuses_other_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    train(&out, "1", &[]);
    let run = mnist_bn(&train_args(&out, "2", &["--lr", "0.1", "--resume"]));
    run.assert_error("was trained with other settings");
}
