//! Bad input, tried systematically: every case is a clear error and a non-zero exit, never a
//! panic.

use std::path::Path;

use crate::util::{mnist_bn, path_str, root};

/// Copies the shipped data into `dir`, replacing `broken` (if any) with `bytes`.
fn data_dir_with(dir: &Path, broken: Option<(&str, &[u8])>) {
    std::fs::create_dir_all(dir).unwrap();
    for entry in std::fs::read_dir(root().join("data/mnist")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    if let Some((name, bytes)) = broken {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

#[test]
fn bad_flags_and_files_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let out = t.join("out");
    let out_s = path_str(&out);
    let file = t.join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let bad_magic = t.join("bad-magic");
    data_dir_with(
        &bad_magic,
        Some(("t10k-labels.idx1-ubyte.gz", b"\x1f\x8b\x08\x00garbage")),
    );
    let empty = t.join("empty");
    data_dir_with(&empty, Some(("train-labels.idx1-ubyte.gz", b"")));
    let broken_checkpoint = t.join("ckpt");
    mnist_bn(&[
        "import",
        "--pytorch",
        path_str(&root().join("tests/fixtures/init_bn.safetensors")),
        "--model",
        "batchnorm",
        "--out",
        path_str(&broken_checkpoint),
    ])
    .assert_ok();
    std::fs::write(broken_checkpoint.join("model.bpk"), b"truncated").unwrap();
    let bad_config = t.join("ckpt2");
    mnist_bn(&[
        "import",
        "--pytorch",
        path_str(&root().join("tests/fixtures/init_bn.safetensors")),
        "--model",
        "batchnorm",
        "--out",
        path_str(&bad_config),
    ])
    .assert_ok();
    std::fs::write(bad_config.join("model.json"), br#"{"norm": 3}"#).unwrap();

    let q = [
        "--train-limit",
        "128",
        "--test-limit",
        "64",
        "--epochs",
        "1",
    ];
    let with =
        |extra: &[&str]| -> Vec<String> { q.iter().chain(extra).map(|s| s.to_string()).collect() };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--no-such-flag".into()], "unexpected argument"),
        (with(&["--batch-size", "0", "--out", out_s]), "--batch-size"),
        (
            with(&["--lr", "-1", "--out", out_s]),
            "must be a positive finite number",
        ),
        (
            with(&["--lr", "NaN", "--out", out_s]),
            "must be a positive finite number",
        ),
        (vec!["--epochs".into(), "0".into()], "--epochs"),
        (
            vec![
                "--train-limit".into(),
                "70000".into(),
                "--out".into(),
                out_s.into(),
            ],
            "--train-limit 70000: the data set has only 60000",
        ),
        (
            with(&["--data-dir", "/nonexistent/mnist", "--out", out_s]),
            "cannot find MNIST file train-images-idx3-ubyte",
        ),
        (
            with(&[
                "--data-dir",
                path_str(&bad_magic),
                "--force",
                "--out",
                out_s,
            ]),
            "corrupt gzip data",
        ),
        (
            with(&["--data-dir", path_str(&empty), "--force", "--out", out_s]),
            "file is empty",
        ),
        (
            with(&["--out", path_str(&file)]),
            "exists and is not a directory",
        ),
        (with(&["--out", "/proc/no-such-dir/x"]), "cannot create"),
        (
            with(&["--resume", "--out", path_str(&t.join("none"))]),
            "is not a run directory",
        ),
        (
            vec![
                "--train-limit".into(),
                "129".into(),
                "--out".into(),
                out_s.into(),
                "--force".into(),
            ],
            "batch norm needs at least 2 images per batch",
        ),
        (
            vec![
                "eval".into(),
                "--checkpoint".into(),
                path_str(&t.join("none")).into(),
            ],
            "does not exist",
        ),
        (
            vec![
                "eval".into(),
                "--checkpoint".into(),
                path_str(&broken_checkpoint).into(),
            ],
            "model.bpk",
        ),
        (
            vec![
                "eval".into(),
                "--checkpoint".into(),
                path_str(&bad_config).into(),
            ],
            "model.json: invalid JSON",
        ),
        (
            vec![
                "import".into(),
                "--pytorch".into(),
                path_str(&file).into(),
                "--model".into(),
                "plain".into(),
                "--out".into(),
                path_str(&t.join("i")).into(),
            ],
            "a-file",
        ),
    ];
    for (args, needle) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = mnist_bn(&args);
        println!("{args:?} -> {:?}: {}", run.code, run.stderr.trim());
        run.assert_error(needle);
    }
}
