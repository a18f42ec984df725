//! The playground, natively: its presets are the lab's runs, and it trains them to the same
//! numbers as `mnist-bn lab`'s driver, bit for bit. Writes nothing unless `MNIST_BN_BLESS=1`;
//! holds this build to `web/tests/fixtures/native_playground.json`, which the browser test
//! holds the WebAssembly build to.
//!
//! One test in a binary of its own: it seeds flex's one generator, which no other test may draw
//! from meanwhile.

use std::path::PathBuf;

use burn::tensor::Device;
use mnist_bn_data::{Mnist, Split};
use mnist_bn_train::lab::{self, Experiment, LabData, LabOptions, Outcome, Run, TrainOn};
use mnist_bn_train::{DeviceTuning, ProgressMode};
use mnist_bn_web::Session;
use mnist_bn_web::playground::{NormChoice, Settings, presets};
use serde_json::{Value, json};

mod common;

use common::{read, root};

fn session() -> Session {
    let mut session = Session::new(
        read("pretrained/batchnorm.bpk"),
        read("pretrained/plain.bpk"),
    )
    .unwrap();
    session
        .set_training_data(
            &read("data/mnist/train-images.idx3-ubyte.gz"),
            &read("data/mnist/train-labels.idx1-ubyte.gz"),
        )
        .unwrap();
    session
        .set_test_data(
            &read("data/mnist/t10k-images.idx3-ubyte.gz"),
            &read("data/mnist/t10k-labels.idx1-ubyte.gz"),
        )
        .unwrap();
    session
}

fn options(steps: Option<usize>) -> LabOptions {
    LabOptions {
        out: PathBuf::new(),
        steps,
        seed: 0,
        seeds: 1,
        checkpoint: None,
        progress: ProgressMode::Quiet,
        backend: String::new(),
        threads: 1,
        init_device: None,
        tuning: DeviceTuning::default(),
    }
}

fn lab_data() -> LabData {
    let dir = root().join("data/mnist");
    LabData::new(
        Mnist::load(Split::Train, Some(&dir)).unwrap(),
        Mnist::load(Split::Test, Some(&dir)).unwrap(),
    )
}

/// What makes a run's numbers: the network, the training settings and the steps.
fn recipe(run: &Run) -> String {
    format!("{:?} {:?} {}", run.config, run.training, run.steps)
}

/// The lab's run named `name` of `experiment` (seed 0, its default steps).
fn lab_run(experiment: Experiment, name: &str, data: &LabData) -> Run {
    lab::runs(experiment, data, &options(None))
        .remove(0)
        .into_iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("{experiment}: no run {name:?}"))
}

/// Each preset's A and B are the lab's runs of that setting, network for network; the
/// playground trains on the images the lab's `grid` trains on, and measures on the held-out
/// ones as `grid` does.
fn presets_are_the_labs_runs(data: &LabData) {
    for p in presets() {
        let [a, b] = p.settings.runs();
        for run in [&a, &b] {
            assert_eq!(run.train_on, TrainOn::Fit, "{}", p.id);
        }
        let s = &p.settings;
        let (experiment, names, steps) = if let Some(rest) = p.id.strip_prefix("grid-") {
            let activation = if rest.starts_with("relu") {
                "ReLU"
            } else {
                "sigmoid"
            };
            let init = if s.std < 1.0 { "reasonable" } else { "bad" };
            let setting = format!("{activation}, lr {}, std {} ({init})", s.lr, s.std);
            let names = [format!("{setting}, bn"), format!("{setting}, plain")];
            (Experiment::Grid, names, s.steps)
        } else if p.id == "ioffe-fig1" {
            let names = ["sigmoid 3×100, bn".into(), "sigmoid 3×100, plain".into()];
            (Experiment::Distributions, names, s.steps)
        } else if let Some(std) = p.id.strip_prefix("init-scale-") {
            let std: f64 = std.parse().unwrap();
            let names = [
                format!("std {std:.1e}, bn"),
                format!("std {std:.1e}, plain"),
            ];
            (Experiment::InitScale, names, s.steps)
        } else if p.id == "batch-2" {
            let names = ["batch 2, bn".into(), "batch 2, plain".into()];
            // The lab's pass covers all 60,000 training images; the page's the 55,000 it
            // trains on.
            (Experiment::BatchSize, names, 30_000)
        } else {
            let b = match s.b {
                NormChoice::Group => "group",
                NormChoice::Renorm => "renorm",
                other => panic!("{}: {other:?}", p.id),
            };
            let names = ["batch 2, batch".into(), format!("batch 2, {b}")];
            (Experiment::Norms, names, s.steps)
        };
        for (run, name) in [&a, &b].into_iter().zip(&names) {
            let lab = lab_run(experiment, name, data);
            let page = Run {
                steps,
                ..(*run).clone()
            };
            assert_eq!(recipe(&page), recipe(&lab), "{}: {name}", p.id);
            if experiment == Experiment::Grid {
                assert_eq!(
                    (run.measure_on, run.measure_every),
                    (lab.measure_on, lab.measure_every),
                    "{}",
                    p.id
                );
            }
        }
    }
}

/// The playground's run of `settings` to its end, as the page takes it (a few steps per call):
/// every step's losses, A then B, and the measurements.
fn page_run(session: &mut Session, settings: &Settings) -> (Vec<[Option<f64>; 2]>, Vec<Value>) {
    session.playground_start(settings).unwrap();
    let (mut losses, mut points) = (Vec::new(), Vec::new());
    loop {
        let tick = session.playground().unwrap().train(7).unwrap();
        if tick.losses.is_empty() {
            break;
        }
        losses.extend(tick.losses);
        points.extend(tick.points.iter().map(|p| serde_json::to_value(p).unwrap()));
    }
    assert!(session.playground().unwrap().finished());
    (losses, points)
}

/// The lab's measurements of `outcome`, as the page reports them for network `net`.
fn lab_points(outcome: &Outcome, net: usize) -> Vec<Value> {
    outcome
        .curve
        .iter()
        .map(|p| {
            let mut v = serde_json::to_value(p).unwrap();
            v["net"] = json!(net);
            v
        })
        .collect()
}

#[test]
fn the_playground_is_the_lab_in_the_page() {
    let data = lab_data();
    presets_are_the_labs_runs(&data);

    // The default preset (ReLU at lr 2: the plain network dies) for 300 steps, in the page's
    // session and on the lab's driver, each on one thread.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let settings = Settings {
        steps: 300,
        ..presets()[0].settings.clone()
    };
    let mut session = session();
    let (losses, points) = pool.install(|| page_run(&mut session, &settings));
    let runs = settings.runs();
    let outcomes = pool
        .install(|| lab::train_runs(&runs, &data, &Device::flex(), &options(None)))
        .unwrap();
    let mut expected: Vec<Value> = lab_points(&outcomes[0], 0);
    expected.extend(lab_points(&outcomes[1], 1));
    let mut got = points.clone();
    let key = |v: &Value| (v["net"].as_u64(), v["step"].as_u64());
    got.sort_by_key(key);
    expected.sort_by_key(key);
    assert_eq!(
        got, expected,
        "the page's measurements are the lab's, bit for bit"
    );
    assert_eq!(losses.len(), 300);
    for (net, outcome) in outcomes.iter().enumerate() {
        let mean = losses.iter().map(|l| l[net].unwrap()).sum::<f64>() / 300.0;
        assert_eq!(mean, outcome.mean_loss, "{}", outcome.name);
    }
    // What the browser test checks on this preset: B (no norm) dies, A trains.
    let last = |net: usize| {
        points.iter().rfind(|p| p["net"] == json!(net)).unwrap()["accuracy"]
            .as_f64()
            .unwrap()
    };
    assert!(
        last(0) >= 0.85 && last(1) <= 0.20,
        "A {} B {}",
        last(0),
        last(1)
    );

    // The pitfall: A (batch norm) tested in train mode on one image at a time answers one digit
    // for every image; in eval mode it scores what the lab measured.
    let [a, b] = session.playground().unwrap().pitfall().unwrap();
    assert_eq!(a.eval, outcomes[0].test_accuracy);
    assert_eq!(b.eval, outcomes[1].test_accuracy);
    assert!(a.train[0] <= 0.15 && a.eval >= 0.85, "{a:?}");
    assert!(
        b.train.iter().all(|&t| t == b.eval),
        "without a norm, train and eval mode are one: {b:?}"
    );

    check_fixture(&settings, &losses, &points);
}

/// `web/tests/fixtures/native_playground.json`: the settings, the first 20 steps' losses of A
/// and B and their measurements at step 0, within 1e-5 of this build's (float results differ
/// between CPU kinds in the last digits). Only the first steps: at lr 2 the plain network is
/// chaotic, and a difference in the last digit grows to 1e-3 in its loss within 50 steps.
/// `MNIST_BN_BLESS=1` rewrites it first.
fn check_fixture(settings: &Settings, losses: &[[Option<f64>; 2]], points: &[Value]) {
    let path = root().join("web/tests/fixtures/native_playground.json");
    let first: Vec<&Value> = points.iter().filter(|p| p["step"] == json!(0)).collect();
    assert_eq!(first.len(), 2);
    let fixture = json!({
        "settings": settings,
        "losses": losses[..20],
        "points": first,
    });
    if std::env::var_os("MNIST_BN_BLESS").is_some() {
        std::fs::write(&path, serde_json::to_string(&fixture).unwrap() + "\n").unwrap();
    }
    let stored: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(stored["settings"], fixture["settings"]);
    let numbers = |v: &Value| -> Vec<f64> {
        let mut out = Vec::new();
        fn walk(v: &Value, out: &mut Vec<f64>) {
            match v {
                Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
                Value::Object(map) => map.values().for_each(|i| walk(i, out)),
                Value::Number(n) => out.push(n.as_f64().unwrap()),
                _ => out.push(f64::NAN),
            }
        }
        walk(v, &mut out);
        out
    };
    for part in ["losses", "points"] {
        let (a, b) = (numbers(&stored[part]), numbers(&fixture[part]));
        assert_eq!(a.len(), b.len(), "{part}");
        let worst = a
            .iter()
            .zip(&b)
            .map(|(x, y)| {
                if x.is_nan() && y.is_nan() {
                    0.0
                } else {
                    (x - y).abs()
                }
            })
            .fold(0.0, f64::max);
        assert!(
            worst <= 1e-5,
            "native_playground.json: {part}: {worst} (MNIST_BN_BLESS=1 rewrites the fixture)"
        );
    }
}
