//! Files the user cannot read and directories they cannot write are clear errors naming the
//! path. Sessions and CI run as root, for whom permission bits do not stop anything, so as
//! root these tests run the binary as the unprivileged user 65534 (`setpriv`, util-linux).

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{Args, Run, copy_shipped_data, epoch_dir, path_str};

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("id runs");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// What the unprivileged user runs and reads, copied where it can reach them: the checkout
/// and the build directory may sit under a home directory it cannot enter (CI builds in
/// `$HOME/.cache`). The binary is copied without its debug information (600 MB → 30 MB).
struct Sandbox {
    tmp: tempfile::TempDir,
    bin: PathBuf,
    data: PathBuf,
}

impl Sandbox {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        chmod(tmp.path(), 0o777);
        let bin = tmp.path().join("mnist-bn");
        let stripped = Command::new("objcopy")
            .arg("--strip-debug")
            .arg(env!("CARGO_BIN_EXE_mnist-bn"))
            .arg(&bin)
            .status()
            .is_ok_and(|s| s.success());
        if !stripped {
            std::fs::copy(env!("CARGO_BIN_EXE_mnist-bn"), &bin).unwrap();
        }
        chmod(&bin, 0o755);
        let data = tmp.path().join("data");
        for file in copy_shipped_data(&data) {
            chmod(&file, 0o644);
        }
        chmod(&data, 0o755);
        Self { tmp, bin, data }
    }

    fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// Runs the copied binary as an unprivileged user (65534 when the tests run as root, else
    /// the tests' own user) in the sandbox; `None` when this machine cannot drop privileges.
    fn run<I>(&self, args: I) -> Option<Run>
    where
        I: IntoIterator,
        I::Item: AsRef<OsStr>,
    {
        let mut command = if is_root() {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
            c.arg(&self.bin);
            c
        } else {
            Command::new(&self.bin)
        };
        let output = command
            .args(args)
            .current_dir(self.path())
            .env_remove("MNIST_DIR")
            .env("MNIST_BN_BACKEND", "flex")
            .output()
            .expect("the binary runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.starts_with("setpriv: ") {
            eprintln!("skipped: cannot run as an unprivileged user here: {stderr}");
            return None;
        }
        Some(Run::from(output))
    }

    /// `train` of the plain model for one epoch on 64 images of the sandbox's data, into
    /// `out`.
    fn train_args(&self, out: &Path) -> Args {
        Args::train("plain")
            .epochs(1)
            .limits(64, 64)
            .quiet()
            .path("--data-dir", &self.data)
            .out(out)
    }
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn an_unwritable_output_directory_is_a_clear_error() {
    let sandbox = Sandbox::new();
    let locked = sandbox.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    chmod(&locked, 0o555);
    // A new run directory inside it cannot be made; the existing one cannot be written.
    let inside = locked.join("run");
    let Some(run) = sandbox.run(&sandbox.train_args(&inside)) else {
        return;
    };
    run.assert_error(&format!("--out {}: cannot create", inside.display()));
    let run = sandbox.run(&sandbox.train_args(&locked));
    run.unwrap()
        .assert_error(&format!("--out {}: cannot write there", locked.display()));
    // The user can write where it may: the same run into the sandbox works.
    let ok = sandbox.path().join("ok");
    sandbox.run(&sandbox.train_args(&ok)).unwrap().assert_ok();
}

#[test]
fn an_unreadable_data_file_is_a_clear_error_naming_it() {
    let sandbox = Sandbox::new();
    let hidden = sandbox.data.join("train-labels.idx1-ubyte.gz");
    chmod(&hidden, 0o000);
    let out = sandbox.path().join("run");
    let Some(run) = sandbox.run(&sandbox.train_args(&out)) else {
        return;
    };
    run.assert_error(path_str(&hidden));
    assert!(run.stderr.contains("Permission denied"), "{}", run.stderr);
}

#[test]
fn an_unreadable_checkpoint_file_is_a_clear_error_naming_it() {
    let sandbox = Sandbox::new();
    let out = sandbox.path().join("run");
    let Some(run) = sandbox.run(&sandbox.train_args(&out)) else {
        return;
    };
    run.assert_ok();
    let weights = epoch_dir(&out, "plain", 1).join("model.bpk");
    chmod(&weights, 0o000);
    let checkpoint = out.join("plain");
    let run = sandbox
        .run(
            &Args::eval(&checkpoint)
                .test_limit(64)
                .path("--data-dir", &sandbox.data),
        )
        .unwrap();
    run.assert_error(path_str(&weights));
    assert!(run.stderr.contains("Permission denied"), "{}", run.stderr);
}
