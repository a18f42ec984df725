//! Files the user cannot read and directories they cannot write are clear errors naming the
//! path. Sessions and CI run as root, for whom permission bits do not stop anything, so as
//! root these tests run the binary as the unprivileged user 65534 (`setpriv`, util-linux).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::util::{Run, path_str, root};

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("id runs");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// Runs `mnist-bn` as an unprivileged user: 65534 when the tests run as root, else the
/// tests' own user.
fn unprivileged(args: &[&str]) -> Run {
    let bin = env!("CARGO_BIN_EXE_mnist-bn");
    let mut command = if is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", bin]);
        c
    } else {
        Command::new(bin)
    };
    let output = command
        .args(args)
        .current_dir(root())
        .env_remove("MNIST_DIR")
        .env("MNIST_BN_BACKEND", "flex")
        .output()
        .expect("the binary runs");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A temporary directory the unprivileged user may enter and write into.
fn shared_tempdir() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    chmod(tmp.path(), 0o777);
    tmp
}

fn train_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "train",
        "--model",
        "plain",
        "--epochs",
        "1",
        "--train-limit",
        "64",
        "--test-limit",
        "64",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn an_unwritable_output_directory_is_a_clear_error() {
    let tmp = shared_tempdir();
    let locked = tmp.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    chmod(&locked, 0o555);
    // A new run directory inside it cannot be made; the existing one cannot be written.
    let inside = locked.join("run");
    unprivileged(&train_args(&["--out", path_str(&inside)]))
        .assert_error(&format!("--out {}: cannot create", inside.display()));
    unprivileged(&train_args(&["--out", path_str(&locked)]))
        .assert_error(&format!("--out {}: cannot write there", locked.display()));
    // A sanity check that the user can write where it may: the same run into tmp works.
    let ok = tmp.path().join("ok");
    unprivileged(&train_args(&["--out", path_str(&ok)])).assert_ok();
}

#[test]
fn an_unreadable_data_file_is_a_clear_error_naming_it() {
    let tmp = shared_tempdir();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    chmod(&data, 0o755);
    for entry in std::fs::read_dir(root().join("data/mnist")).unwrap() {
        let entry = entry.unwrap();
        let to = data.join(entry.file_name());
        std::fs::copy(entry.path(), &to).unwrap();
        chmod(&to, 0o644);
    }
    let hidden = data.join("train-labels.idx1-ubyte.gz");
    chmod(&hidden, 0o000);
    let out = tmp.path().join("run");
    let run = unprivileged(&train_args(&[
        "--data-dir",
        path_str(&data),
        "--out",
        path_str(&out),
    ]));
    run.assert_error(path_str(&hidden));
    assert!(run.stderr.contains("Permission denied"), "{}", run.stderr);
}

#[test]
fn an_unreadable_checkpoint_file_is_a_clear_error_naming_it() {
    let tmp = shared_tempdir();
    let out = tmp.path().join("run");
    unprivileged(&train_args(&["--out", path_str(&out)])).assert_ok();
    let weights = out.join("plain/checkpoints/epoch-001/model.bpk");
    chmod(&weights, 0o000);
    let checkpoint = out.join("plain");
    let run = unprivileged(&[
        "eval",
        "--checkpoint",
        path_str(&checkpoint),
        "--test-limit",
        "64",
    ]);
    run.assert_error(path_str(&weights));
    assert!(run.stderr.contains("Permission denied"), "{}", run.stderr);
}
