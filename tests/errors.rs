//! Bad input, tried systematically: every case is a clear error that names the problem and a
//! non-zero exit, never a panic.

use std::io::Write;
use std::path::Path;

use crate::util::{Args, copy_shipped_data, epoch_dir, fixture, mnist_bn, mnist_bn_with_limit};

/// Copies the shipped data into `dir`, replacing `broken` (if any) with `bytes`.
fn data_dir_with(dir: &Path, broken: Option<(&str, &[u8])>) {
    copy_shipped_data(dir);
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
fn import(fixture_name: &str, model: &str, out: &Path) {
    mnist_bn(&Args::import(&fixture(fixture_name), model, out)).assert_ok();
}

/// Exit code of a command line the argument parser refuses.
const BAD_FLAGS: i32 = 2;
/// Exit code of an error found while running.
const ERROR: i32 = 1;

/// One bad command line and how it must fail: exit code `code`, `stderr` in the error, no
/// panic.
struct Case {
    name: &'static str,
    args: Args,
    code: i32,
    stderr: &'static str,
}

fn case(name: &'static str, args: Args, code: i32, stderr: &'static str) -> Case {
    Case {
        name,
        args,
        code,
        stderr,
    }
}

/// Broken data directories and checkpoints in `t`, for the cases to point at.
fn broken_inputs(t: &Path) {
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
}

/// Every bad command line, with the broken inputs of [`broken_inputs`] in `t`.
fn cases(t: &Path) -> Vec<Case> {
    let p = |name: &str| t.join(name);
    let out = p("out");
    let lesson = Args::lesson;
    // A small lesson run, valid until a case adds the bad part.
    let quick = || lesson().limits(128, 64).epochs(1).flag("--force").out(&out);
    let data = |dir: &str| quick().path("--data-dir", &p(dir));
    let eval = |dir: &str| Args::eval(&p(dir));
    let import = |file: &str| Args::import(&p(file), "plain", &p("i"));
    vec![
        case(
            "unknown flag",
            lesson().flag("--no-such-flag"),
            BAD_FLAGS,
            "unexpected argument '--no-such-flag'",
        ),
        case(
            "batch size 0",
            quick().opt("--batch-size", 0),
            BAD_FLAGS,
            "invalid value '0' for '--batch-size",
        ),
        case(
            "side by side 0",
            quick().opt("--side-by-side", 0),
            BAD_FLAGS,
            "invalid value '0' for '--side-by-side",
        ),
        case(
            "negative learning rate",
            quick().opt("--lr", -1),
            BAD_FLAGS,
            "must be a positive finite number, got -1",
        ),
        case(
            "NaN learning rate",
            quick().opt("--lr", "NaN"),
            BAD_FLAGS,
            "must be a positive finite number, got NaN",
        ),
        case(
            "0 epochs",
            lesson().epochs(0),
            BAD_FLAGS,
            "invalid value '0' for '--epochs",
        ),
        case(
            "epochs not a number",
            lesson().opt("--epochs", "many"),
            BAD_FLAGS,
            "invalid value 'many' for '--epochs",
        ),
        case(
            "unknown backend",
            lesson().opt("--backend", "tpu"),
            BAD_FLAGS,
            "invalid value 'tpu'",
        ),
        case(
            "run flag before a subcommand",
            lesson().epochs(3).args(["eval", "--checkpoint", "x"]),
            BAD_FLAGS,
            "--epochs must come after the subcommand",
        ),
        case(
            "train limit above the data set",
            lesson().opt("--train-limit", 70000).out(&out),
            ERROR,
            "--train-limit 70000: the data set has only 60000 images",
        ),
        case(
            "test limit above the data set",
            lesson().test_limit(10001).out(&out),
            ERROR,
            "--test-limit 10001: the data set has only 10000 images",
        ),
        case(
            "last batch of one image",
            lesson().opt("--train-limit", 129).flag("--force").out(&out),
            ERROR,
            "batch norm needs at least 2 images per batch",
        ),
        case(
            "missing data directory",
            quick().opt("--data-dir", "/nonexistent/mnist"),
            ERROR,
            "cannot find MNIST file train-images-idx3-ubyte",
        ),
        case(
            "corrupt gzip",
            data("corrupt-gzip"),
            ERROR,
            "t10k-labels.idx1-ubyte.gz: corrupt gzip data",
        ),
        case(
            "empty data file",
            data("empty"),
            ERROR,
            "train-labels.idx1-ubyte.gz: file is empty",
        ),
        case(
            "label not a digit",
            data("bad-label"),
            ERROR,
            "label 12 at index 1 is not a digit",
        ),
        case(
            "fewer labels than images",
            data("few-labels"),
            ERROR,
            "holds 10000 images but",
        ),
        case(
            "bad magic number",
            data("bad-magic"),
            ERROR,
            "incorrect magic number 0x00000801 != 0x00000803",
        ),
        case(
            "data file is a directory",
            data("dir-not-file"),
            ERROR,
            "is a directory, expected a file",
        ),
        case(
            "output is a file",
            lesson().epochs(1).out(&p("a-file")),
            ERROR,
            "exists and is not a directory",
        ),
        case(
            "output cannot be created",
            lesson().epochs(1).opt("--out", "/proc/no-such-dir/x"),
            ERROR,
            "cannot create",
        ),
        case(
            "resume without a run",
            lesson().flag("--resume").out(&p("none")),
            ERROR,
            "is not a run directory",
        ),
        case("missing checkpoint", eval("none"), ERROR, "does not exist"),
        case(
            "checkpoint is a file",
            eval("a-file"),
            ERROR,
            "holds no checkpoint",
        ),
        case(
            "truncated weights",
            eval("truncated"),
            ERROR,
            "truncated/model.bpk",
        ),
        case(
            "config of the wrong types",
            eval("bad-json"),
            ERROR,
            "bad-json/model.json: invalid JSON",
        ),
        case(
            "the other variant's weights",
            eval("other-variant"),
            ERROR,
            "missing tensors: Mlp.hidden.0.norm.bias",
        ),
        case(
            "weights that do not fit the config",
            eval("other-config"),
            ERROR,
            "other-config/model.bpk",
        ),
        case(
            "import of a file that is no .pt",
            import("a-file"),
            ERROR,
            "a-file: not a readable .pt file",
        ),
        case(
            "import of a missing file",
            import("none"),
            ERROR,
            "none: is not a file",
        ),
        case(
            "export where nothing can be written",
            Args::export(&p("plain"), Path::new("/proc/x.safetensors")),
            ERROR,
            "/proc/x.safetensors",
        ),
    ]
}

#[test]
fn bad_flags_files_and_checkpoints_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    broken_inputs(tmp.path());
    let cases = cases(tmp.path());
    // Every case runs, and the test fails at the end naming each case that did not fail as
    // it should, so that one broken case does not hide another.
    let mut failed = Vec::new();
    for Case {
        name,
        args,
        code,
        stderr,
    } in &cases
    {
        let run = mnist_bn(args);
        let words: Vec<&str> = args.into_iter().map(String::as_str).collect();
        let command = words.join(" ");
        println!(
            "{name}: {command} -> {:?}: {}",
            run.code,
            run.stderr.lines().next().unwrap_or("")
        );
        if let Err(problem) = run.check_error(Some(*code), stderr) {
            failed.push(format!("case {name:?}: mnist-bn {command}\n{problem}"));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failed.len(),
        cases.len(),
        failed.join("\n\n")
    );
}

/// At most 400 MB of address space (the lesson's model is 2 MB): a run that read a huge
/// tensor, or a file whole, would fail to allocate instead of reporting the problem.
const MEMORY_LIMIT: &str = "--as=400000000";

#[test]
fn weight_files_that_claim_huge_tensors_are_refused_before_any_allocation() {
    // Both would need gigabytes if their data were read; both are refused from their metadata
    // within a 400 MB address space (the lesson's model is 2 MB).
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("i");
    // A 1.5 MB .pt whose deflated fc1.weight inflates to 1 GiB (tests/fixtures/make_bomb.py).
    let bomb = fixture("bomb_fc1_1gib.pt");
    mnist_bn_with_limit(MEMORY_LIMIT, &Args::import(&bomb, "batchnorm", &out))
        .assert_error("fc1.weight is [268435456], expected [512, 784]");
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
    mnist_bn_with_limit(MEMORY_LIMIT, &Args::import(&big, "plain", &out))
        .assert_error("fc1.weight is [4294967296], expected [512, 784]");
    // A header that claims to be a gigabyte long is not read either.
    let long = tmp.path().join("long.safetensors");
    std::fs::write(&long, (1u64 << 30).to_le_bytes()).unwrap();
    mnist_bn_with_limit(MEMORY_LIMIT, &Args::import(&long, "plain", &out))
        .assert_error("a 1073741824-byte header");
}

/// The lesson's tensors by their PyTorch names, with and without batch norm.
fn lesson_tensors(model: &str) -> Vec<(String, Vec<usize>)> {
    let mut tensors = Vec::new();
    for (i, [rows, cols]) in [[512, 784], [256, 512], [10, 256]].into_iter().enumerate() {
        let n = i + 1;
        tensors.push((format!("fc{n}.weight"), vec![rows, cols]));
        if model == "plain" || n == 3 {
            tensors.push((format!("fc{n}.bias"), vec![rows]));
        } else {
            for part in ["weight", "bias", "running_mean", "running_var"] {
                tensors.push((format!("batch_norm{n}.{part}"), vec![rows]));
            }
        }
    }
    tensors
}

/// A `.safetensors` file declaring `tensors` (float32), its data all zeros (a sparse file).
fn safetensors_file(path: &Path, tensors: &[(String, Vec<usize>)]) {
    let mut header = serde_json::Map::new();
    let mut offset = 0u64;
    for (name, shape) in tensors {
        let bytes = 4 * shape.iter().product::<usize>() as u64;
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + bytes]}),
        );
        offset += bytes;
    }
    let header = serde_json::to_vec(&header).unwrap();
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(&header);
    std::fs::write(path, &bytes).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(bytes.len() as u64 + offset)
        .unwrap();
}

/// A shape changed into the one a lying file declares.
type Reshape = fn(&[usize]) -> Vec<usize>;

/// `import` refuses a weight file whose tensors are declared at any other shape than the
/// model's, one more or one fewer row as well as gigabytes, and names every wrong tensor,
/// not only the first; at the model's shapes it imports. The `.pt` files hold no tensor data
/// (tests/fixtures/make_shape_lies.py), so only their declared shapes can be refused.
#[test]
fn every_tensor_a_weight_file_declares_is_checked_against_the_models_shape() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("imported");
    let changes: [(&str, Reshape); 3] = [
        ("plus_one", |s| [vec![s[0] + 1], s[1..].to_vec()].concat()),
        ("minus_one", |s| [vec![s[0] - 1], s[1..].to_vec()].concat()),
        ("huge", |_| vec![1 << 28]),
    ];
    let refused = |run: crate::util::Run,
                   tensors: &[(String, Vec<usize>)],
                   change: fn(&[usize]) -> Vec<usize>| {
        let mut needles = vec!["not a state_dict of this model (nothing read)".to_string()];
        needles.extend(
            tensors
                .iter()
                .map(|(name, shape)| format!("{name} is {:?}, expected {shape:?}", change(shape))),
        );
        for needle in needles {
            run.assert_error(&needle);
        }
    };
    for (name, change) in changes {
        let file = fixture(&format!("lie_{name}.pt"));
        let run = mnist_bn_with_limit(MEMORY_LIMIT, &Args::import(&file, "batchnorm", &out));
        refused(run, &lesson_tensors("batchnorm"), change);
        for model in ["batchnorm", "plain"] {
            let tensors: Vec<(String, Vec<usize>)> = lesson_tensors(model)
                .into_iter()
                .map(|(n, s)| (n, change(&s)))
                .collect();
            let file = tmp.path().join(format!("{model}_{name}.safetensors"));
            safetensors_file(&file, &tensors);
            let run = mnist_bn_with_limit(MEMORY_LIMIT, &Args::import(&file, model, &out));
            refused(run, &lesson_tensors(model), change);
        }
    }
    assert!(!out.exists(), "nothing imported");
    // At the model's own shapes the same files import (zeros here; the shipped fixture's
    // weights for the .pt).
    for model in ["batchnorm", "plain"] {
        let file = tmp.path().join(format!("{model}.safetensors"));
        safetensors_file(&file, &lesson_tensors(model));
        mnist_bn_with_limit(
            MEMORY_LIMIT,
            &Args::import(&file, model, &out).flag("--force"),
        )
        .assert_ok();
    }
    mnist_bn_with_limit(
        MEMORY_LIMIT,
        &Args::import(&fixture("init_bn.pt"), "batchnorm", &out).flag("--force"),
    )
    .assert_ok();
}

/// A safetensors header is read up to 1 MiB: one of exactly 1 MiB (the model's tensors, padded
/// with spaces as the format allows) imports, one a byte longer is refused unread.
#[test]
fn a_safetensors_header_of_one_mib_is_read_and_one_byte_more_is_not() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("imported");
    let base = tmp.path().join("base.safetensors");
    safetensors_file(&base, &lesson_tensors("plain"));
    let bytes = std::fs::read(&base).unwrap();
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let (header, data) = (&bytes[8..8 + len], &bytes[8 + len..]);
    for (padded, ok) in [(1 << 20, true), ((1 << 20) + 1, false)] {
        let mut file = (padded as u64).to_le_bytes().to_vec();
        file.extend_from_slice(header);
        file.resize(8 + padded, b' ');
        file.extend_from_slice(data);
        let path = tmp.path().join(format!("padded-{padded}.safetensors"));
        std::fs::write(&path, file).unwrap();
        let run = mnist_bn(&Args::import(&path, "plain", &out).flag("--force"));
        if ok {
            run.assert_ok();
        } else {
            run.assert_error(&format!("a {padded}-byte header"));
        }
    }
}

#[test]
fn checkpoint_files_larger_than_the_model_can_hold_are_refused_unread() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    mnist_bn(&Args::quick_train("plain", &out)).assert_ok();
    let epoch = epoch_dir(&out, "plain", 1);
    let eval = Args::eval(&out.join("plain")).test_limit(64);
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
        mnist_bn_with_limit(MEMORY_LIMIT, &eval)
            .assert_error(&format!("{file}: is 8589934592 bytes, more than"));
        std::fs::copy(&copy, epoch.join(file)).unwrap();
    }
    mnist_bn(&eval).assert_ok();
}

/// The documented bounds of a checkpoint's files, each tried at the bound and one byte past
/// it: `model.bpk` and `optimizer.bin` at most twice the model's tensors plus 1 MiB,
/// `model.json` and `training.json` at most 16 MiB, and `model.bpk` at least the model's
/// tensors less 1 MiB.
#[test]
fn checkpoint_files_are_read_up_to_their_bounds_and_refused_one_byte_past_them() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    mnist_bn(&Args::quick_train("plain", &out)).assert_ok();
    let epoch = epoch_dir(&out, "plain", 1);
    let eval = Args::eval(&out.join("plain")).test_limit(64);
    // The bound on the plain lesson MLP's float32 tensors that the bounds are taken from:
    // per layer, (fan-in + 5) × width, room for the weights, a bias and batch norm's four
    // vectors.
    let tensor_bytes: u64 = 4 * ((784 + 5) * 512 + (512 + 5) * 256 + (256 + 5) * 10);
    let most = 2 * tensor_bytes + (1 << 20);
    let too_big = |file: &str, len: u64, limit: u64| {
        format!("{file}: is {len} bytes, more than this model's checkpoint can hold ({limit})")
    };
    let resized = |file: &str, len: u64, pad: u8, check: &dyn Fn(crate::util::Run)| {
        let path = epoch.join(file);
        let saved = std::fs::read(&path).unwrap();
        let mut bytes = saved.clone();
        bytes.resize(len as usize, pad);
        std::fs::write(&path, bytes).unwrap();
        check(mnist_bn_with_limit(MEMORY_LIMIT, &eval));
        std::fs::write(&path, saved).unwrap();
    };
    for file in ["model.bpk", "optimizer.bin"] {
        // At the bound the size is accepted (what follows the record is then the reader's
        // to refuse, or not).
        resized(file, most, 0, &|run| {
            assert!(
                !run.stderr.contains("more than this model's"),
                "{file}: {}",
                run.stderr
            );
        });
        resized(file, most + 1, 0, &|run| {
            run.assert_error(&too_big(file, most + 1, most))
        });
    }
    let json_most = 16u64 << 20;
    for file in ["model.json", "training.json"] {
        // Padded with spaces, still valid JSON: at 16 MiB the checkpoint is read.
        resized(file, json_most, b' ', &|run| {
            run.assert_ok();
        });
        resized(file, json_most + 1, b' ', &|run| {
            run.assert_error(&too_big(file, json_most + 1, json_most))
        });
    }
    let least = tensor_bytes - (1 << 20);
    resized("model.bpk", least - 1, 0, &|run| {
        run.assert_error(&format!(
            "model.bpk: holds {} bytes, too few for the model model.json describes (up to \
             {tensor_bytes} bytes of tensors)",
            least - 1
        ))
    });
    resized("model.bpk", least, 0, &|run| {
        assert!(
            run.code != Some(0) && !run.stderr.contains("too few"),
            "{}",
            run.stderr
        );
    });
    mnist_bn(&eval).assert_ok();
}

#[test]
fn a_model_json_that_init_would_panic_on_is_a_clear_error() {
    // Found by the checkpoint fuzzer: bn_epsilon 0 reached an assertion in batch norm's init.
    // A model.json describing a model far larger than its model.bpk is refused before the
    // model is built.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    mnist_bn(&Args::quick_train("batchnorm", &out)).assert_ok();
    let json = epoch_dir(&out, "batchnorm", 1).join("model.json");
    let original = std::fs::read_to_string(&json).unwrap();
    let eval = Args::eval(&out.join("batchnorm")).test_limit(64);
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
        mnist_bn_with_limit(MEMORY_LIMIT, &eval).assert_error(needle);
    }
}
