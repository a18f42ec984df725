//! Bad input, tried systematically: every case is a clear error that names the problem and a
//! non-zero exit, never a panic.

use std::io::Write;
use std::path::Path;

use crate::util::{mnist_bn, root};

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

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// Imports a reference model as a checkpoint directory.
fn import(fixture: &str, model: &str, out: &Path) {
    let file = root().join("tests/fixtures").join(fixture);
    let args = format!(
        "import --pytorch {} --model {model} --out {}",
        file.display(),
        out.display()
    );
    mnist_bn(&args.split(' ').collect::<Vec<_>>()).assert_ok();
}

#[test]
fn bad_flags_files_and_checkpoints_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let p = |name: &str| t.join(name).display().to_string();

    std::fs::write(t.join("a-file"), b"x").unwrap();
    data_dir_with(
        &t.join("corrupt-gzip"),
        Some(("t10k-labels.idx1-ubyte.gz", b"\x1f\x8b\x08\x00garbage")),
    );
    data_dir_with(&t.join("empty"), Some(("train-labels.idx1-ubyte.gz", b"")));
    let label_12 = gzip(&[0, 0, 8, 1, 0, 0, 0, 2, 3, 12]);
    data_dir_with(
        &t.join("bad-label"),
        Some(("t10k-labels.idx1-ubyte.gz", &label_12)),
    );
    let three_labels = gzip(&[0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3]);
    data_dir_with(
        &t.join("few-labels"),
        Some(("t10k-labels.idx1-ubyte.gz", &three_labels)),
    );
    let bad_magic = gzip(&[0, 0, 8, 1, 0, 0, 0, 1, 0]);
    data_dir_with(
        &t.join("bad-magic"),
        Some(("train-images.idx3-ubyte.gz", &bad_magic)),
    );
    let dir_not_file = t.join("dir-not-file");
    data_dir_with(&dir_not_file, None);
    std::fs::remove_file(dir_not_file.join("train-images.idx3-ubyte.gz")).unwrap();
    std::fs::create_dir(dir_not_file.join("train-images.idx3-ubyte.gz")).unwrap();

    // Checkpoints: truncated weights, config JSON with wrong types, the other variant's
    // weights, weights that do not fit the config.
    import("init_bn.safetensors", "batchnorm", &t.join("truncated"));
    std::fs::write(t.join("truncated/model.bpk"), b"truncated").unwrap();
    import("init_bn.safetensors", "batchnorm", &t.join("bad-json"));
    std::fs::write(t.join("bad-json/model.json"), br#"{"norm": 3}"#).unwrap();
    import("init_bn.safetensors", "batchnorm", &t.join("other-variant"));
    import("init_nonorm.safetensors", "plain", &t.join("plain"));
    std::fs::copy(t.join("plain/model.bpk"), t.join("other-variant/model.bpk")).unwrap();
    import("init_nonorm.safetensors", "plain", &t.join("other-config"));
    let config = std::fs::read_to_string(t.join("other-config/model.json")).unwrap();
    let config = config.replace("\"output_size\": 10", "\"output_size\": 12");
    std::fs::write(t.join("other-config/model.json"), config).unwrap();

    let quick = format!(
        "--train-limit 128 --test-limit 64 --epochs 1 --force --out {}",
        p("out")
    );
    let cases: Vec<(String, &str)> = vec![
        (
            "--no-such-flag".into(),
            "unexpected argument '--no-such-flag'",
        ),
        (
            format!("{quick} --batch-size 0"),
            "invalid value '0' for '--batch-size",
        ),
        (
            format!("{quick} --side-by-side 0"),
            "invalid value '0' for '--side-by-side",
        ),
        (
            format!("{quick} --lr -1"),
            "must be a positive finite number, got -1",
        ),
        (
            format!("{quick} --lr NaN"),
            "must be a positive finite number, got NaN",
        ),
        ("--epochs 0".into(), "invalid value '0' for '--epochs"),
        ("--epochs many".into(), "invalid value 'many' for '--epochs"),
        ("--backend tpu".into(), "invalid value 'tpu'"),
        (
            "--epochs 3 eval --checkpoint x".into(),
            "--epochs must come after the subcommand",
        ),
        (
            format!("--train-limit 70000 --out {}", p("out")),
            "--train-limit 70000: the data set has only 60000 images",
        ),
        (
            format!("--test-limit 10001 --out {}", p("out")),
            "--test-limit 10001: the data set has only 10000 images",
        ),
        (
            format!("--train-limit 129 --force --out {}", p("out")),
            "batch norm needs at least 2 images per batch",
        ),
        (
            format!("{quick} --data-dir /nonexistent/mnist"),
            "cannot find MNIST file train-images-idx3-ubyte",
        ),
        (
            format!("{quick} --data-dir {}", p("corrupt-gzip")),
            "t10k-labels.idx1-ubyte.gz: corrupt gzip data",
        ),
        (
            format!("{quick} --data-dir {}", p("empty")),
            "train-labels.idx1-ubyte.gz: file is empty",
        ),
        (
            format!("{quick} --data-dir {}", p("bad-label")),
            "label 12 at index 1 is not a digit",
        ),
        (
            format!("{quick} --data-dir {}", p("few-labels")),
            "holds 10000 images but",
        ),
        (
            format!("{quick} --data-dir {}", p("bad-magic")),
            "incorrect magic number 0x00000801 != 0x00000803",
        ),
        (
            format!("{quick} --data-dir {}", p("dir-not-file")),
            "is a directory, expected a file",
        ),
        (
            format!("--epochs 1 --out {}", p("a-file")),
            "exists and is not a directory",
        ),
        (
            "--epochs 1 --out /proc/no-such-dir/x".into(),
            "cannot create",
        ),
        (
            format!("--resume --out {}", p("none")),
            "is not a run directory",
        ),
        (format!("eval --checkpoint {}", p("none")), "does not exist"),
        (
            format!("eval --checkpoint {}", p("a-file")),
            "holds no checkpoint",
        ),
        (
            format!("eval --checkpoint {}", p("truncated")),
            "truncated/model.bpk",
        ),
        (
            format!("eval --checkpoint {}", p("bad-json")),
            "bad-json/model.json: invalid JSON",
        ),
        (
            format!("eval --checkpoint {}", p("other-variant")),
            "missing tensors: Mlp.hidden.0.norm.bias",
        ),
        (
            format!("eval --checkpoint {}", p("other-config")),
            "other-config/model.bpk",
        ),
        (
            format!(
                "import --pytorch {} --model plain --out {}",
                p("a-file"),
                p("i")
            ),
            "a-file: not a readable .pt file",
        ),
        (
            format!(
                "import --pytorch {} --model plain --out {}",
                p("none"),
                p("i")
            ),
            "none: is not a file",
        ),
        (
            format!(
                "export --checkpoint {} --safetensors /proc/x.safetensors",
                p("plain")
            ),
            "/proc/x.safetensors",
        ),
    ];
    for (args, needle) in cases {
        let args: Vec<&str> = args.split(' ').collect();
        let run = mnist_bn(&args);
        println!(
            "{args:?} -> {:?}: {}",
            run.code,
            run.stderr.lines().next().unwrap_or("")
        );
        run.assert_error(needle);
    }
}

/// Runs `mnist-bn` (flex) with at most `bytes` of address space (prlimit, util-linux).
fn with_memory_limit(bytes: u64, args: &[&str]) -> crate::util::Run {
    let output = std::process::Command::new("prlimit")
        .arg(format!("--as={bytes}"))
        .arg(env!("CARGO_BIN_EXE_mnist-bn"))
        .args(args)
        .current_dir(root())
        .env("MNIST_BN_BACKEND", "flex")
        .output()
        .expect("prlimit (util-linux) runs");
    crate::util::Run::from(output)
}

#[test]
fn weight_files_that_claim_huge_tensors_are_refused_before_any_allocation() {
    // Both would need gigabytes if their data were read; both are refused from their metadata
    // within a 400 MB address space (the lesson's model is 2 MB).
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("i");
    let out = out.to_str().unwrap();
    // A 1.5 MB .pt whose deflated fc1.weight inflates to 1 GiB (tests/fixtures/make_bomb.py).
    let bomb = root().join("tests/fixtures/bomb_fc1_1gib.pt");
    let run = with_memory_limit(
        400_000_000,
        &[
            "import",
            "--pytorch",
            bomb.to_str().unwrap(),
            "--model",
            "batchnorm",
            "--out",
            out,
        ],
    );
    run.assert_error("fc1.weight is [268435456], expected [512, 784]");
    // A sparse 16 GiB .safetensors whose header declares fc1.weight as 2^32 floats.
    let big = tmp.path().join("huge.safetensors");
    let header =
        br#"{"fc1.weight":{"dtype":"F32","shape":[4294967296],"data_offsets":[0,17179869184]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    std::fs::write(&big, &bytes).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&big)
        .unwrap()
        .set_len(bytes.len() as u64 + (1 << 34))
        .unwrap();
    let run = with_memory_limit(
        400_000_000,
        &[
            "import",
            "--pytorch",
            big.to_str().unwrap(),
            "--model",
            "plain",
            "--out",
            out,
        ],
    );
    run.assert_error("fc1.weight is [4294967296], expected [512, 784]");
    // A header that claims to be a gigabyte long is not read either.
    let long = tmp.path().join("long.safetensors");
    std::fs::write(&long, (1u64 << 30).to_le_bytes()).unwrap();
    with_memory_limit(
        400_000_000,
        &[
            "import",
            "--pytorch",
            long.to_str().unwrap(),
            "--model",
            "plain",
            "--out",
            out,
        ],
    )
    .assert_error("a 1073741824-byte header");
}

#[test]
fn checkpoint_files_larger_than_the_model_can_hold_are_refused_unread() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let out_str = out.to_str().unwrap();
    mnist_bn(&crate::util::quick_train_args("plain", out_str)).assert_ok();
    let epoch = out.join("plain/checkpoints/epoch-001");
    let checkpoint = out.join("plain");
    for file in ["model.bpk", "optimizer.bin", "model.json"] {
        // Grown (sparse) to 8 GiB: read whole, it would need 8 GiB of memory.
        let copy = tmp.path().join("saved");
        std::fs::copy(epoch.join(file), &copy).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(epoch.join(file))
            .unwrap()
            .set_len(8 << 30)
            .unwrap();
        with_memory_limit(
            400_000_000,
            &[
                "eval",
                "--checkpoint",
                checkpoint.to_str().unwrap(),
                "--test-limit",
                "64",
            ],
        )
        .assert_error(&format!("{file}: is 8589934592 bytes, more than"));
        std::fs::copy(&copy, epoch.join(file)).unwrap();
    }
    mnist_bn(&[
        "eval",
        "--checkpoint",
        checkpoint.to_str().unwrap(),
        "--test-limit",
        "64",
    ])
    .assert_ok();
}

#[test]
fn a_model_json_that_init_would_panic_on_is_a_clear_error() {
    // Found by the checkpoint fuzzer: bn_epsilon 0 reached an assertion in batch norm's init.
    // A model.json describing a model far larger than its model.bpk is refused before the
    // model is built.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    mnist_bn(&crate::util::quick_train_args(
        "batchnorm",
        out.to_str().unwrap(),
    ))
    .assert_ok();
    let json = out.join("batchnorm/checkpoints/epoch-001/model.json");
    let original = std::fs::read_to_string(&json).unwrap();
    let checkpoint = out.join("batchnorm");
    let eval = || {
        with_memory_limit(
            400_000_000,
            &[
                "eval",
                "--checkpoint",
                checkpoint.to_str().unwrap(),
                "--test-limit",
                "64",
            ],
        )
    };
    for (from, to, needle) in [
        (
            "\"bn_epsilon\": 0.00001",
            "\"bn_epsilon\": 0.0",
            "invalid model config: bn_epsilon 0",
        ),
        (
            "\"bn_momentum\": 0.1",
            "\"bn_momentum\": -1",
            "invalid model config: bn_momentum -1",
        ),
        (
            "512,",
            "4000000000,",
            "too few for the model model.json describes",
        ),
    ] {
        assert!(original.contains(from), "{from} not in {original}");
        std::fs::write(&json, original.replacen(from, to, 1)).unwrap();
        eval().assert_error(needle);
    }
}
