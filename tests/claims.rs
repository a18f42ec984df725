//! What the README promises and no other test covers: `bench`, the ConvNet and RNN run end to
//! end, the backend a build picks, where the data is searched, which checkpoints are kept,
//! `--quiet`, `eval --mode train`, and the fields of `report.json`.

use std::path::Path;

use crate::util::{
    Args, Run, command, epoch_dir, losses, mnist_bn, mnist_bn_with, path_str, read_json, report,
    shipped_data,
};

#[test]
fn bench_prints_and_writes_its_figures() {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("bench.json");
    let run = mnist_bn(
        &Args::command("bench")
            .opt("--models", "plain")
            .epochs(1)
            .path("--json", &json),
    );
    run.assert_ok();
    assert!(
        run.stdout.contains("load+decode 70,000 images: "),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("plain: epochs ["), "{}", run.stdout);
    assert!(
        run.stdout.contains("SGD update: on the host"),
        "{}",
        run.stdout
    );
    let report = read_json(&json);
    assert_eq!(report["backend"], "flex (CPU, pure Rust)");
    assert_eq!(report["host_sgd"], true);
    assert!(report["load_seconds"].as_f64().unwrap() > 0.0);
    assert!(report["peak_rss_mb"].as_f64().unwrap() > 10.0);
    let model = &report["models"][0];
    assert_eq!(model["name"], "plain");
    let seconds = model["epoch_seconds"].as_array().unwrap();
    assert_eq!(seconds.len(), 1);
    let median = model["median_epoch_seconds"].as_f64().unwrap();
    assert_eq!(seconds[0].as_f64().unwrap(), median);
    let rate = model["images_per_sec"].as_f64().unwrap();
    assert!((rate - 60_000.0 / median).abs() < 1e-6 * rate);
    assert!(model["eval_seconds"].as_f64().unwrap() > 0.0);
    // A full epoch of the lesson's plain model: near PyTorch's first-epoch loss, 1.586
    // (tests/fixtures/pytorch3_reference_results.json; other initial weights here).
    let loss = model["losses"][0].as_f64().unwrap();
    assert!((1.3..1.9).contains(&loss), "{loss}");
}

#[test]
fn run_trains_and_tests_the_convnet_and_the_rnn_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let run = mnist_bn(
        &Args::command("run")
            .opt("--models", "conv-bn,conv,rnn-bn,rnn")
            .limits(640, 128)
            .epochs(2)
            .quiet()
            .out(&out),
    );
    run.assert_ok();
    let report = report(&out);
    let models = report["models"].as_array().unwrap();
    let names: Vec<&str> = models.iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["conv-bn", "conv", "rnn-bn", "rnn"]);
    for (m, kind) in models.iter().zip(["Conv", "Conv", "Rnn", "Rnn"]) {
        let name = m["name"].as_str().unwrap();
        assert!(m["config"].get(kind).is_some(), "{name}: {}", m["config"]);
        assert_eq!(m["stop"]["status"], "completed", "{name}");
        let l = losses(&report, names.iter().position(|n| *n == name).unwrap());
        assert_eq!(l.len(), 2, "{name}");
        assert!(
            l.iter().all(|x| x.is_finite()) && l[1] < l[0],
            "{name}: {l:?}"
        );
        let modes: Vec<&str> = m["tests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["mode"].as_str().unwrap())
            .collect();
        let expected: &[&str] = if name.ends_with("-bn") {
            &["train", "eval"]
        } else {
            &["eval"]
        };
        assert_eq!(modes, expected, "{name}");
        assert!(
            epoch_dir(&out, name, 2).join("model.bpk").is_file(),
            "{name}"
        );
        assert!(
            out.join(format!("confusion_{name}.png")).is_file(),
            "{name}"
        );
    }
    let svg = std::fs::read_to_string(out.join("loss.svg")).unwrap();
    for name in names {
        assert!(svg.contains(name), "{name} missing from the loss chart");
    }
    assert!(run.stdout.contains("== rnn-bn =="), "{}", run.stdout);
}

/// A directory holding all four MNIST files, each of them broken.
fn broken_data_dir(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for name in [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ] {
        std::fs::write(dir.join(name), b"not an IDX file").unwrap();
    }
}

#[test]
fn the_data_is_searched_in_the_documented_order() {
    // --data-dir, then MNIST_DIR, then ./data/mnist, then the shipped copy.
    let tmp = tempfile::tempdir().unwrap();
    let broken = tmp.path().join("broken");
    broken_data_dir(&broken);
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let shipped = shipped_data();
    let train = |env: &[(&str, &str)], extra: &[&str]| {
        let out = tempfile::tempdir().unwrap();
        let args = Args::quick_train("plain", &out.path().join("run")).args(extra);
        mnist_bn_with("flex", env, &args)
    };
    // MNIST_DIR is searched before ./data/mnist: its broken file is the one read.
    train(&[("MNIST_DIR", path_str(&broken))], &[])
        .assert_error(path_str(&broken.join("train-images-idx3-ubyte")));
    // --data-dir comes before MNIST_DIR.
    train(
        &[("MNIST_DIR", path_str(&broken))],
        &["--data-dir", path_str(&shipped)],
    )
    .assert_ok();
    // A --data-dir is the only place searched: no fallback to the shipped copy.
    train(&[], &["--data-dir", path_str(&empty)]).assert_error(path_str(&empty));
    // A MNIST_DIR without the files falls through to ./data/mnist.
    let run = train(&[("MNIST_DIR", path_str(&empty))], &[]);
    run.assert_ok();

    // ./data/mnist (of the working directory) comes before the shipped copy; without one,
    // the shipped copy is used.
    let elsewhere = |cwd: &Path| {
        let args = Args::quick_train("plain", &cwd.join("run"));
        Run::of(command("flex").current_dir(cwd).args(&args))
    };
    let with_local = tmp.path().join("with-local");
    broken_data_dir(&with_local.join("data/mnist"));
    elsewhere(&with_local).assert_error("data/mnist/train-images-idx3-ubyte");
    let without = tmp.path().join("without");
    std::fs::create_dir_all(&without).unwrap();
    elsewhere(&without).assert_ok();
}

#[test]
fn only_the_two_newest_checkpoints_are_kept_and_quiet_prints_no_progress() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str, quiet: bool| {
        let out = tmp.path().join(name);
        let mut args = Args::train("plain").epochs(3).limits(1280, 64).out(&out);
        if quiet {
            args = args.quiet();
        }
        let run = mnist_bn(&args);
        run.assert_ok();
        (out, run.stdout.clone())
    };
    let (out, loud) = run("loud", false);
    let kept: Vec<String> = std::fs::read_dir(out.join("plain/checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(kept, ["epoch-002", "epoch-003"]);

    // Without a terminal: progress lines within each epoch; with --quiet, none.
    let progress = |stdout: &str| {
        stdout
            .lines()
            .filter(|l| l.starts_with("  plain ") && l.contains(" batches, loss "))
            .count()
    };
    let (_, quiet) = run("quiet", true);
    assert_eq!(progress(&loud), 9, "three per epoch of 20 batches:\n{loud}");
    assert_eq!(progress(&quiet), 0, "{quiet}");
    let epoch_lines = |s: &str| s.lines().filter(|l| l.starts_with("Epoch: ")).count();
    assert_eq!(epoch_lines(&loud), 3);
    assert_eq!(epoch_lines(&quiet), 3);
}

#[test]
fn eval_mode_train_uses_each_batchs_statistics_and_report_fields_hang_together() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let run = mnist_bn(
        &Args::train("batchnorm")
            .epochs(2)
            .limits(1280, 256)
            .quiet()
            .out(&out),
    );
    run.assert_ok();
    let report = report(&out);

    // The report's fields the README documents.
    assert_eq!(report["backend"], "flex (CPU, pure Rust)");
    let started = report["started"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(started).is_ok(),
        "started: {started}"
    );
    let model = &report["models"][0];
    let epoch_seconds: f64 = model["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seconds"].as_f64().unwrap())
        .sum();
    let total = report["total_seconds"].as_f64().unwrap();
    assert!(
        total >= epoch_seconds && total < 600.0,
        "{total} vs {epoch_seconds}"
    );
    for t in model["tests"].as_array().unwrap() {
        let (correct, all) = (t["correct"].as_f64().unwrap(), t["total"].as_f64().unwrap());
        assert_eq!(t["accuracy"].as_f64().unwrap(), correct / all);
    }

    // `eval --mode train` of the checkpoint gives the run's train-mode test, which used each
    // test batch's own statistics; `--mode eval` differs from it (running statistics).
    let eval = |mode: &str| {
        let json = tmp.path().join(format!("{mode}.json"));
        mnist_bn(
            &Args::eval(&out.join("batchnorm"))
                .opt("--mode", mode)
                .test_limit(256)
                .path("--json", &json),
        )
        .assert_ok();
        read_json(&json)
    };
    let train_mode = eval("train");
    let in_report = &model["tests"][0];
    assert_eq!(in_report["mode"], "train");
    assert_eq!(train_mode[0]["mode"], "train");
    assert_eq!(train_mode[0]["confusion"], in_report["confusion"]);
    let (a, b) = (
        train_mode[0]["loss"].as_f64().unwrap(),
        in_report["loss"].as_f64().unwrap(),
    );
    assert!((a - b).abs() < 1e-9, "{a} vs {b}");
    let eval_mode = eval("eval");
    assert_ne!(
        eval_mode[0]["loss"], train_mode[0]["loss"],
        "train mode must not use the running statistics"
    );
    // Each batch's own: the 256 images as one batch test differently from four of 64.
    let json = tmp.path().join("one-batch.json");
    mnist_bn(
        &Args::eval(&out.join("batchnorm"))
            .opt("--mode", "train")
            .opt("--batch-size", 256)
            .test_limit(256)
            .path("--json", &json),
    )
    .assert_ok();
    assert_ne!(
        read_json(&json)[0]["loss"],
        train_mode[0]["loss"],
        "train mode must normalize each batch with its own statistics"
    );
}

#[cfg(feature = "ndarray")]
#[test]
fn the_ndarray_backend_trains_like_flex() {
    // From the same weights (a checkpoint), one epoch on each CPU backend: the same losses to
    // within f32 summation order, the same report shape.
    let tmp = tempfile::tempdir().unwrap();
    let start = tmp.path().join("start");
    let args = |out: &Path, init: Option<&Path>| {
        let args = Args::train("batchnorm")
            .epochs(1)
            .limits(1280, 256)
            .quiet()
            .out(out);
        match init {
            Some(init) => args.path("--init-from", init),
            None => args,
        }
    };
    mnist_bn(&args(&start, None)).assert_ok();
    let init = start.join("batchnorm");
    let mut reports = Vec::new();
    for backend in ["flex", "ndarray"] {
        let out = tmp.path().join(backend);
        let run = mnist_bn_with(backend, &[], &args(&out, Some(&init)));
        run.assert_ok();
        assert!(
            run.stdout.starts_with(&format!("backend: {backend}")),
            "{}",
            run.stdout
        );
        reports.push(report(&out));
    }
    let (a, b) = (losses(&reports[0], 0), losses(&reports[1], 0));
    assert!((a[0] - b[0]).abs() < 1e-4, "{a:?} vs {b:?}");
    // Without --init-from the same seed starts both from the same weights too (drawn on flex).
    let fresh = tmp.path().join("ndarray-fresh");
    mnist_bn_with("ndarray", &[], &args(&fresh, None)).assert_ok();
    let (a, b) = (losses(&report(&start), 0), losses(&report(&fresh), 0));
    assert!((a[0] - b[0]).abs() < 1e-4, "{a:?} vs {b:?}");
    let (ta, tb) = (
        &reports[0]["models"][0]["tests"],
        &reports[1]["models"][0]["tests"],
    );
    for i in 0..2 {
        let (x, y) = (
            ta[i]["loss"].as_f64().unwrap(),
            tb[i]["loss"].as_f64().unwrap(),
        );
        assert!((x - y).abs() < 1e-3, "test {i}: {x} vs {y}");
    }
}
