//! The whole lesson on a subset: what the app prints and writes.

use crate::util::{Args, epoch_dir, losses, mnist_bn, mnist_bn_with, read_json, report};

#[test]
fn the_lesson_on_a_subset_prints_and_writes_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let run = mnist_bn(&Args::lesson().limits(2000, 500).epochs(2).out(&out));
    run.assert_ok();
    let stdout = &run.stdout;

    // The lesson's lines, for both models, and no control characters when not on a terminal.
    assert!(stdout.contains("backend: "), "{stdout}");
    for epoch in 1..=2 {
        let line = format!("Epoch: {epoch} \tTraining Loss: ");
        assert_eq!(stdout.matches(&line).count(), 2, "{stdout}");
    }
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("Epoch: 2 \tTraining Loss: ") && l.len() == 33)
    );
    assert_eq!(
        stdout.matches("Test Loss: ").count(),
        3,
        "BN twice, plain once"
    );
    assert_eq!(stdout.matches("Test Accuracy of     7: ").count(), 3);
    assert_eq!(stdout.matches("Test Accuracy (Overall): ").count(), 3);
    assert!(
        !stdout.contains('\u{1b}') && !stdout.contains('\r'),
        "control characters"
    );
    // In the lesson's order, model by model, although they train side by side.
    assert_eq!(lesson_lines(stdout), LESSON_ORDER, "{stdout}");

    // report.json: its schema and numbers that hang together.
    let report = report(&out);
    assert_eq!(report["schema"], 2);
    assert_eq!(report["train_images"], 2000);
    assert_eq!(report["test_images"], 500);
    let models = report["models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    assert_eq!(models[0]["name"], "batchnorm");
    assert_eq!(models[1]["name"], "plain");
    assert_eq!(models[0]["config"]["Mlp"]["norm"], "Batch");
    assert_eq!(models[0]["training"]["lr"], 0.01);
    assert_eq!(models[0]["training"]["batch_size"], 64);
    for (i, modes) in [(0, vec!["train", "eval"]), (1, vec!["eval"])] {
        let m = &models[i];
        assert_eq!(m["stop"]["status"], "completed");
        let epochs = m["epochs"].as_array().unwrap();
        assert_eq!(epochs.len(), 2);
        for (n, e) in epochs.iter().enumerate() {
            assert_eq!(e["epoch"], n + 1);
            assert!(e["seconds"].as_f64().unwrap() > 0.0);
            assert!(e["images_per_sec"].as_f64().unwrap() > 0.0);
        }
        let tests = m["tests"].as_array().unwrap();
        let got: Vec<&str> = tests.iter().map(|t| t["mode"].as_str().unwrap()).collect();
        assert_eq!(got, modes);
        for t in tests {
            assert_eq!(t["total"], 500);
            let per_digit = t["per_digit"].as_array().unwrap();
            assert_eq!(per_digit.len(), 10);
            let correct: u64 = per_digit
                .iter()
                .map(|d| d["correct"].as_u64().unwrap())
                .sum();
            assert_eq!(t["correct"].as_u64().unwrap(), correct);
            let confusion = t["confusion"].as_array().unwrap();
            let cells: u64 = confusion
                .iter()
                .flat_map(|row| row.as_array().unwrap())
                .map(|c| c.as_u64().unwrap())
                .sum();
            assert_eq!(cells, 500);
            let diagonal: u64 = (0..10).map(|d| confusion[d][d].as_u64().unwrap()).sum();
            assert_eq!(diagonal, correct);
        }
    }
    // Batch norm learns faster: the lesson's point, visible even on 2,000 images.
    let (bn, plain) = (losses(&report, 0), losses(&report, 1));
    assert!(bn[1] < bn[0] && plain[1] < plain[0], "{bn:?} {plain:?}");
    assert!(bn[1] < plain[1], "{bn:?} {plain:?}");

    // Charts and the summary.
    for png in ["loss.png", "confusion_batchnorm.png", "confusion_plain.png"] {
        let bytes = std::fs::read(out.join(png)).unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 10_000,
            "{png}"
        );
    }
    let svg = std::fs::read_to_string(out.join("loss.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("batchnorm") && svg.contains("plain"));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("| batchnorm | 2 |") && md.contains("![Training loss](loss.png)"),
        "{md}"
    );

    // Checkpoints after every epoch, complete, and no temporary files left.
    for model in ["batchnorm", "plain"] {
        for epoch in [1, 2] {
            let dir = epoch_dir(&out, model, epoch);
            for file in ["model.bpk", "model.json", "training.json", "optimizer.bin"] {
                assert!(dir.join(file).is_file(), "{}", dir.join(file).display());
            }
        }
        let leftovers: Vec<_> = std::fs::read_dir(out.join(model).join("checkpoints"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    // `eval` of the plain model's checkpoint gives exactly the report's eval-mode figures.
    let json = tmp.path().join("eval.json");
    let plain = out.join("plain");
    let eval = mnist_bn(&Args::eval(&plain).test_limit(500).path("--json", &json));
    eval.assert_ok();
    let tests = read_json(&json);
    assert_eq!(tests[0]["correct"], models[1]["tests"][0]["correct"]);
    assert_eq!(tests[0]["confusion"], models[1]["tests"][0]["confusion"]);
    let (a, b) = (
        tests[0]["loss"].as_f64().unwrap(),
        models[1]["tests"][0]["loss"].as_f64().unwrap(),
    );
    assert!((a - b).abs() < 1e-9, "{a} vs {b}");

    // An existing run directory is never overwritten without --force.
    mnist_bn(&Args::lesson().epochs(1).opt("--train-limit", 100).out(&out))
        .assert_error("not empty; pass --force");
}

#[test]
fn train_runs_one_model_and_bn_init_lesson_changes_the_start() {
    let tmp = tempfile::tempdir().unwrap();
    let mut first = Vec::new();
    for init in ["modern", "lesson"] {
        let out = tmp.path().join(init);
        let args = Args::train("batchnorm")
            .opt("--bn-init", init)
            .epochs(1)
            .limits(640, 100)
            .out(&out);
        let run = mnist_bn(&args);
        run.assert_ok();
        assert_eq!(run.stdout.matches("Test Loss: ").count(), 2);
        let report = report(&out);
        assert_eq!(report["models"].as_array().unwrap().len(), 1);
        let expected = if init == "lesson" { "Lesson" } else { "Ones" };
        assert_eq!(report["models"][0]["config"]["Mlp"]["bn_init"], expected);
        first.push(losses(&report, 0)[0]);
    }
    assert_ne!(first[0], first[1]);
}

/// The headings and epoch lines of a run's printout, without the figures.
fn lesson_lines(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| l.starts_with("==") || l.starts_with("--") || l.starts_with("Epoch: "))
        .map(|l| l.split(" \tTraining Loss").next().unwrap().to_string())
        .collect()
}

const LESSON_ORDER: [&str; 9] = [
    "== batchnorm ==",
    "Epoch: 1",
    "Epoch: 2",
    "-- test batchnorm: train mode --",
    "-- test batchnorm: eval mode --",
    "== plain ==",
    "Epoch: 1",
    "Epoch: 2",
    "-- test plain: eval mode --",
];

#[test]
fn side_by_side_prints_and_computes_what_one_after_another_does() {
    let tmp = tempfile::tempdir().unwrap();
    // Side by side, each model has one of two threads; one after another, each has the one
    // thread (with two, a lone model would spread its step over both: `parallel_step`).
    let run = |side_by_side: &str| {
        let out = tmp.path().join(side_by_side);
        let run = mnist_bn_with(
            "flex",
            // Two threads even on a one-core machine, so that two models train at once.
            &[(
                "RAYON_NUM_THREADS",
                if side_by_side == "2" { "2" } else { "1" },
            )],
            &Args::lesson()
                .limits(1000, 300)
                .epochs(2)
                .opt("--side-by-side", side_by_side)
                .quiet()
                .out(&out),
        );
        run.assert_ok();
        // Everything but the timings.
        let printed: Vec<String> = run
            .stdout
            .lines()
            .take_while(|l| !l.starts_with("model "))
            .filter(|l| !l.starts_with("data: "))
            .map(String::from)
            .collect();
        (printed, report(&out))
    };
    let (together, report_together) = run("2");
    let (alone, report_alone) = run("1");
    assert_eq!(together, alone);
    for i in 0..2 {
        assert_eq!(losses(&report_together, i), losses(&report_alone, i));
        assert_eq!(
            report_together["models"][i]["tests"],
            report_alone["models"][i]["tests"]
        );
    }
}
