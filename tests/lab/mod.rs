//! `mnist-bn lab`: every experiment end to end on a small subset of real MNIST, every number
//! and sentence of its report recomputed from the runs it came from.

mod markdown;
mod recompute;

use std::path::Path;

use serde_json::Value;

use crate::util::{Args, mnist_bn, path_str, read_json};

const NAMES: [&str; 10] = [
    "grid",
    "distributions",
    "inference",
    "batch-size",
    "init-scale",
    "learning-rate",
    "landscape",
    "depth",
    "ics",
    "norms",
];

fn runs(section: &Value) -> &Vec<Value> {
    section["runs"].as_array().unwrap()
}

#[test]
fn the_lab_runs_every_experiment_and_writes_its_report_and_figures() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lab");
    let run = mnist_bn(
        &Args::command("lab")
            .limits(1200, 300)
            .opt("--steps", 100)
            .opt("--seeds", 2)
            .quiet()
            .out(&out),
    );
    run.assert_ok();
    for name in NAMES {
        assert!(
            run.stdout.contains(&format!("== lab: {name}")),
            "{}",
            run.stdout
        );
        for ext in ["png", "svg"] {
            let figure = out.join(format!("{name}.{ext}"));
            let len = std::fs::metadata(&figure).map_or(0, |m| m.len());
            assert!(len > 2000, "{} has {len} bytes", figure.display());
        }
    }
    let report = read_json(&out.join("lab.json"));
    assert_eq!(report["schema"], 1);
    assert_eq!(
        (report["seed"].as_u64(), report["seeds"].as_u64()),
        (Some(0), Some(2))
    );
    assert_eq!(
        (
            report["train_images"].as_u64(),
            report["validation_images"].as_u64()
        ),
        (Some(1200), Some(100))
    );
    let sections = report["experiments"].as_array().unwrap();
    let names: Vec<&str> = sections
        .iter()
        .map(|s| s["experiment"].as_str().unwrap())
        .collect();
    assert_eq!(names, NAMES);
    for section in sections {
        for r in runs(section) {
            let accuracy = r["test_accuracy"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&accuracy), "{r}");
        }
        assert!(!section["findings"].as_str().unwrap().is_empty());
    }

    // grid: 12 settings × (batch norm, plain) × 2 seeds, measured at steps 0, 50 and 100,
    // paired.
    let grid = runs(&sections[0]);
    assert_eq!(grid.len(), 48);
    for pair in grid.chunks(2) {
        assert_eq!(pair[0]["config"]["norm"], "Batch");
        assert_eq!(pair[1]["config"]["norm"], "None");
        assert_eq!(
            pair[0]["config"]["weight_init"],
            pair[1]["config"]["weight_init"]
        );
        assert_eq!(
            pair[0]["config"]["hidden"],
            serde_json::json!([100, 100, 100])
        );
        for r in pair {
            let steps: Vec<u64> = r["curve"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["step"].as_u64().unwrap())
                .collect();
            match r["diverged_at"].as_u64() {
                None => assert_eq!(steps, [0, 50, 100], "{}", r["name"]),
                Some(step) => assert!(steps.iter().all(|&s| s < step), "{}", r["name"]),
            }
        }
    }
    // ReLU, lr 0.01, std 0.05 with batch norm learns something in 100 steps.
    let accuracy = |r: &Value| r["test_accuracy"].as_f64().unwrap();
    assert!(accuracy(&grid[0]) > 0.5, "{}", grid[0]);
    // Plain ReLU networks with weights of std 5 overflow within a few steps: recorded with
    // the step, scored as they are, and the lab goes on.
    let diverged: Vec<&Value> = grid
        .iter()
        .filter(|r| r["diverged_at"].as_u64().is_some())
        .collect();
    assert!(!diverged.is_empty());
    for r in diverged {
        assert_eq!(r["config"]["norm"], "None", "{}", r["name"]);
        assert!(r["final_loss"].is_null() && accuracy(r) < 0.3, "{r}");
    }

    // distributions: percentiles in order at every measurement.
    for r in runs(&sections[1]) {
        for point in r["curve"].as_array().unwrap() {
            let q: Vec<f64> = point["probe"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            assert!(q[0] <= q[1] && q[1] <= q[2], "{point}");
        }
    }

    // inference: one image at a time, batch statistics give every image the same answer.
    let cases = sections[2]["summary"][0].as_array().unwrap();
    let case = |label: &str| cases.iter().find(|c| c["label"] == label).unwrap();
    assert_eq!(case("train, 1")["digits_predicted"], 1);
    let single = case("train, 1")["accuracy"].as_f64().unwrap();
    let eval = case("eval")["accuracy"].as_f64().unwrap();
    assert!(
        single < 0.35 && eval > 0.6,
        "batch of 1: {single}, eval: {eval}"
    );
    assert!(case("train, 300")["accuracy"].as_f64().unwrap() > 0.6);
    assert_eq!(runs(&sections[2])[0]["steps"], 10 * 1200_u64.div_ceil(64));

    // batch-size: one epoch at each batch size.
    let steps: Vec<u64> = runs(&sections[3])
        .iter()
        .map(|r| r["steps"].as_u64().unwrap())
        .collect();
    assert_eq!(
        steps,
        [600, 600, 300, 300, 150, 150, 75, 75, 19, 19, 5, 5].repeat(2)
    );

    // init-scale: ten scales from 1e-4 to 1, eight hidden layers.
    let scales = runs(&sections[4]);
    assert_eq!(scales.len(), 40);
    assert_eq!(scales[0]["config"]["hidden"].as_array().unwrap().len(), 8);

    let md = std::fs::read_to_string(out.join("lab.md")).unwrap();
    for name in NAMES {
        assert!(md.contains(&format!("## {name}\n")), "{md}");
        assert!(md.contains(&format!("![{name}]({name}.png)")), "{md}");
    }
    check_every_number(&out);
}

/// Every table cell and findings sentence of `lab.md` and every summary number of `lab.json`
/// in `out`, recomputed from the per-network outcomes (`runs`) of each experiment there.
fn check_every_number(out: &Path) {
    let report = read_json(&out.join("lab.json"));
    let md = std::fs::read_to_string(out.join("lab.md")).unwrap();
    let sections = markdown::sections(&md);
    let experiments = report["experiments"].as_array().unwrap();
    assert_eq!(sections.len(), experiments.len());
    for section in experiments {
        let name = section["experiment"].as_str().unwrap();
        let md = &sections[name];
        let check = match name {
            "grid" => recompute::grid,
            "distributions" => recompute::distributions,
            "inference" => recompute::inference,
            "batch-size" => recompute::batch_size,
            "init-scale" => recompute::init_scale,
            "learning-rate" => recompute::learning_rate,
            "landscape" => recompute::landscape,
            "depth" => recompute::depth,
            "ics" => recompute::ics,
            "norms" => recompute::norms,
            other => panic!("no check for {other}"),
        };
        check(section, md, &report);
    }
}

/// `lab.json` without what a clock measures (when it started, how long each part took), and
/// `lab.md` without its times.
fn without_times(out: &Path) -> (Value, String) {
    let mut report = read_json(&out.join("lab.json"));
    report["started"] = Value::Null;
    report["total_seconds"] = Value::Null;
    for section in report["experiments"].as_array_mut().unwrap() {
        section["seconds"] = Value::Null;
        for run in section["runs"].as_array_mut().unwrap() {
            run["seconds"] = Value::Null;
        }
    }
    let md = std::fs::read_to_string(out.join("lab.md")).unwrap();
    let md = md
        .lines()
        .filter(|l| !(l.starts_with('_') && l.ends_with(" s._")))
        .map(|l| match l.find("; seed") {
            // The header's total time.
            Some(i) if l.ends_with(" s in all.") => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    (report, md)
}

#[test]
fn the_same_seed_gives_the_same_lab_and_another_seed_another() {
    let dir = tempfile::tempdir().unwrap();
    // Every experiment, on fewer images and steps than the test above.
    let lab = |name: &str, seed: &str, seeds: &str| {
        let out = dir.path().join(name);
        mnist_bn(
            &Args::command("lab")
                .limits(600, 100)
                .opt("--steps", 30)
                .opt("--seed", seed)
                .opt("--seeds", seeds)
                .quiet()
                .out(&out),
        )
        .assert_ok();
        without_times(&out)
    };
    let (a, a_md) = lab("a", "5", "2");
    let (b, b_md) = lab("b", "5", "2");
    assert_eq!(a_md, b_md);
    let experiments = |r: &Value| r["experiments"].as_array().unwrap().clone();
    for (x, y) in experiments(&a).iter().zip(experiments(&b).iter()) {
        assert_eq!(x, y, "{}: seeds 5 and 6 twice", x["experiment"]);
    }
    assert_eq!(a, b);
    // Seed 6 alone trains exactly the networks that seeds 5 and 6 trained from seed 6, and
    // other initial weights than seed 5 in every experiment.
    let (c, _) = lab("c", "6", "1");
    for (x, y) in experiments(&a).iter().zip(experiments(&c).iter()) {
        let from = |section: &Value, seed: u64| -> Vec<Value> {
            runs(section)
                .iter()
                .filter(|r| r["seed"] == seed)
                .cloned()
                .collect()
        };
        let name = &x["experiment"];
        assert!(!from(y, 6).is_empty(), "{name}");
        assert_eq!(from(x, 6), from(y, 6), "{name}: seed 6 alone and second");
        assert_eq!(x["summary"][1], y["summary"][0], "{name}: seed 6's summary");
        assert_ne!(from(x, 5), from(y, 6), "{name}: seeds 5 and 6");
    }
}

#[test]
fn inference_tests_a_checkpoint_and_refuses_one_without_batch_norm() {
    let dir = tempfile::tempdir().unwrap();
    let trained = dir.path().join("trained");
    for model in ["batchnorm", "plain"] {
        mnist_bn(
            &Args::train(model)
                .epochs(1)
                .limits(640, 64)
                .quiet()
                .out(&trained)
                .flag("--force"),
        )
        .assert_ok();
    }
    let out = dir.path().join("lab");
    let inference = || Args::command("lab").args(["inference"]);
    let run = mnist_bn(
        &inference()
            .path("--checkpoint", &trained.join("batchnorm"))
            .test_limit(200)
            .quiet()
            .out(&out),
    );
    run.assert_ok();
    let report = read_json(&out.join("lab.json"));
    let section = &report["experiments"][0];
    assert!(runs(section).is_empty(), "nothing is trained");
    assert!(
        section["setup"]
            .as_str()
            .unwrap()
            .contains("the checkpoint")
    );
    assert_eq!(section["summary"][0].as_array().unwrap().len(), 6 + 2);
    check_passes_against_eval(section, &trained.join("batchnorm"), dir.path());
    check_every_number(&out);

    mnist_bn(
        &inference()
            .path("--checkpoint", &trained.join("plain"))
            .test_limit(64)
            .quiet()
            .flag("--force")
            .out(&out),
    )
    .assert_error("does not hold an MLP with batch norm");
}

/// Every row of `inference`'s table read against `mnist-bn eval` of the same checkpoint on the
/// same 200 test images: each train-mode batch size (but 1, which `eval` refuses), eval mode,
/// and eval mode after a train-mode pass in batches of 64 (`eval --mode both`), which must
/// differ from the untouched model's.
fn check_passes_against_eval(section: &Value, checkpoint: &std::path::Path, dir: &std::path::Path) {
    let passes = section["summary"][0].as_array().unwrap();
    let row = |label: &str| {
        passes
            .iter()
            .find(|p| p["label"] == label)
            .unwrap_or_else(|| panic!("no row {label}: {passes:?}"))
    };
    let eval = |mode: &str, batch: usize| -> Vec<Value> {
        let json = dir.join(format!("eval-{mode}-{batch}.json"));
        mnist_bn(
            &Args::eval(checkpoint)
                .opt("--mode", mode)
                .opt("--batch-size", batch)
                .test_limit(200)
                .path("--json", &json),
        )
        .assert_ok();
        read_json(&json).as_array().unwrap().clone()
    };
    let same = |row: &Value, result: &Value, what: &str| {
        assert_eq!(
            row["accuracy"], result["accuracy"],
            "{what}: {row} vs {result}"
        );
        let (a, b) = (
            row["loss"].as_f64().unwrap(),
            result["loss"].as_f64().unwrap(),
        );
        assert!(
            (a - b).abs() <= 1e-5 * b.abs().max(1.0),
            "{what}: loss {a} vs {b}"
        );
    };
    for batch in [2, 4, 16, 64, 200] {
        let label = format!("train, {batch}");
        same(row(&label), &eval("train", batch)[0], &label);
    }
    let pristine = row("eval");
    same(pristine, &eval("eval", 1000)[0], "eval");
    let after = row("eval after train pass");
    let both = eval("both", 64);
    same(after, &both[1], "eval after train pass");
    let moved = (after["loss"].as_f64().unwrap() - pristine["loss"].as_f64().unwrap()).abs();
    assert!(
        moved > 1e-4,
        "the train-mode pass moved nothing: {after} vs {pristine}"
    );
}

#[test]
fn bad_lab_flags_are_clear_errors() {
    mnist_bn(&["lab", "everything"]).assert_error("invalid value 'everything'");
    mnist_bn(&["lab", "--steps", "0"]).assert_error("--steps");
    mnist_bn(&["lab", "grid", "grid", "--train-limit", "120"]).assert_error("listed twice");
    mnist_bn(&["lab", "grid", "--checkpoint", "runs"]).assert_error("inference experiment");
    // Refused before anything trains: batch-size's batches of 2 would leave one image of 1,203
    // alone, and 11 training images leave none to validate the grid on.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lab");
    mnist_bn(&["lab", "--train-limit", "1203", "--out", path_str(&out)])
        .assert_error("batch 2, bn: batch norm needs at least 2 images per batch");
    assert!(!out.join("lab.json").exists(), "nothing ran");
    mnist_bn(&[
        "lab",
        "grid",
        "--train-limit",
        "11",
        "--out",
        path_str(&out),
    ])
    .assert_error("no validation images");
}
