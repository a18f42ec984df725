//! The page's session, natively: the same training step as the CLI's learner, the shipped
//! weights, drawn digits, and the logits the browser test holds the WebAssembly build to.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use burn::tensor::Device;
use mnist_bn_data::{Mnist, Split};
use mnist_bn_train::{Learner, ModelSpec, TrainingConfig, seeded_model};
use mnist_bn_web::{MODEL_NAMES, Session};
use serde_json::{Value, json};

/// Seeding is per backend, not per device value, and a model being built may draw from the
/// generator: the tests take turns, so that the seeded one is never drawn from in between.
static SEEDING: Mutex<()> = Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    SEEDING.lock().unwrap_or_else(|e| e.into_inner())
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(root().join(path)).unwrap()
}

fn shipped() -> Session {
    Session::new(
        read("pretrained/batchnorm.bpk"),
        read("pretrained/plain.bpk"),
    )
    .unwrap()
}

fn with_training_data(session: &mut Session) -> usize {
    session
        .set_training_data(
            &read("data/mnist/train-images.idx3-ubyte.gz"),
            &read("data/mnist/train-labels.idx1-ubyte.gz"),
        )
        .unwrap()
}

fn test_set(n: usize) -> Mnist {
    Mnist::load(Split::Test, Some(&root().join("data/mnist")))
        .unwrap()
        .truncate(n)
}

#[test]
fn the_page_trains_with_the_learners_step_from_the_runs_initial_weights() {
    let _turn = turn();
    let mut session = shipped();
    assert!(!session.trained());
    assert_eq!(with_training_data(&mut session), 60_000);
    // 640 images, batch 64: 10 batches per epoch, 2 epochs.
    assert_eq!(session.start(2, 640, 7).unwrap(), 20);
    let mut losses = session.train(3).unwrap();
    assert_eq!(losses.len(), 3);
    let progress = session.progress().unwrap();
    assert_eq!((progress.batches_done, progress.epoch), (3, 1));
    losses.extend(session.train(100).unwrap());
    assert_eq!(losses.len(), 20, "the run ends after its batches");
    assert!(session.train(5).unwrap().is_empty());
    assert!(session.trained());

    // The CLI's learner, from `seeded_model` (what `mnist-bn run --seed 7` starts from), on the
    // same 640 images in file order, for the same 20 steps: the same losses, bit for bit.
    let device = Device::flex();
    let data = Mnist::load(Split::Train, Some(&root().join("data/mnist")))
        .unwrap()
        .truncate(640);
    for (i, name) in MODEL_NAMES.iter().enumerate() {
        let config = ModelSpec::parse(name).unwrap().config;
        let learner = Learner::new(TrainingConfig::new().with_seed(7), &device);
        let mut expected = Vec::new();
        learner
            .fit_steps(
                seeded_model(&config, 7, None, &device),
                &data,
                20,
                |_, _, loss| expected.push(loss),
            )
            .unwrap();
        let got: Vec<f64> = losses.iter().map(|pair| pair[i]).collect();
        assert_eq!(got, expected, "{name}");
    }
    // Batch norm learns faster, as in the lesson.
    let last = |i: usize| losses[15..].iter().map(|p| p[i]).sum::<f64>() / 5.0;
    assert!(last(0) < last(1), "{} vs {}", last(0), last(1));
}

#[test]
fn training_needs_data_and_a_batch_norm_friendly_subset() {
    let _turn = turn();
    let mut session = shipped();
    assert!(
        session
            .start(1, 640, 0)
            .unwrap_err()
            .to_string()
            .contains("no training data")
    );
    assert!(
        session
            .train(1)
            .unwrap_err()
            .to_string()
            .contains("no training run")
    );
    with_training_data(&mut session);
    // 641 images leave a last batch of one, which batch norm cannot train on.
    let msg = session.start(1, 641, 0).unwrap_err().to_string();
    assert!(msg.contains("batch of 1"), "{msg}");
    assert!(session.set_training_data(b"not gzip", b"x").is_err());
}

/// A test digit drawn large, dark on a white 280×280 canvas, as the page's pad gives it.
fn drawn(pixels: &[u8]) -> Vec<u8> {
    let mut canvas = vec![255u8; 280 * 280];
    for y in 0..280 {
        for x in 0..280 {
            canvas[y * 280 + x] = 255 - pixels[(y / 10) * 28 + x / 10];
        }
    }
    canvas
}

#[test]
fn drawn_digits_are_recognized_by_the_shipped_models_and_not_in_train_mode() {
    let _turn = turn();
    let session = shipped();
    let argmax = |p: &[f32; 10]| (0..10).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
    // The first eight test digits (the browser test draws them too): every one right.
    let test = test_set(200);
    let mut train_mode_answers = Vec::new();
    let mut right = [0usize; 2];
    for i in 0..test.len() {
        let label = usize::from(test.labels()[i]);
        let p = session.predict(280, 280, drawn(test.image(i))).unwrap();
        let answers = [argmax(&p.batchnorm_eval), argmax(&p.plain)];
        if i < 8 {
            assert_eq!(answers, [label, label], "digit {i}");
        }
        for (r, answer) in right.iter_mut().zip(answers) {
            *r += usize::from(answer == label);
        }
        train_mode_answers.push(p.batchnorm_train);
    }
    // Through the pad's conversion (crop, scale, centre of mass) the models keep most of their
    // test accuracy (97.9 % and 94.2 % on the raw images).
    eprintln!("drawn and converted, right of 200: {right:?}");
    // Measured: 192 and 184 (Intel); the margin allows a near-tie to fall the other way on
    // another CPU.
    assert!(right[0] >= 188 && right[1] >= 178, "{right:?} of 200");
    // A batch of one normalizes to zero: the same answer whatever the digit.
    assert!(train_mode_answers.windows(2).all(|w| w[0] == w[1]));
    // The running statistics were left alone: eval mode answers as before.
    let again = session.predict(280, 280, drawn(test.image(0))).unwrap();
    assert_eq!(argmax(&again.batchnorm_eval), usize::from(test.labels()[0]));
    assert!(session.predict(280, 279, vec![0; 280 * 280]).is_none());
}

/// `web/tests/fixtures/native_logits.json`: the first eight test digits and both shipped
/// models' eval-mode logits for them, from this native build. The browser test holds the
/// WebAssembly build to these (1e-5). `MNIST_BN_BLESS=1` rewrites the file after the shipped
/// weights change.
#[test]
fn the_native_logits_fixture_matches_this_build() {
    let _turn = turn();
    let session = shipped();
    let test = test_set(8);
    let mut fixture = json!({
        "images": (0..test.len()).map(|i| test.image(i).to_vec()).collect::<Vec<_>>(),
        "labels": test.labels(),
    });
    for name in MODEL_NAMES {
        let logits = session.logits(name, test.pixels()).unwrap();
        fixture[name] = json!(logits.chunks(10).collect::<Vec<_>>());
    }
    let path = root().join("web/tests/fixtures/native_logits.json");
    if std::env::var_os("MNIST_BN_BLESS").is_some() {
        std::fs::write(&path, serde_json::to_string(&fixture).unwrap() + "\n").unwrap();
    }
    let stored: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(stored["images"], fixture["images"]);
    for name in MODEL_NAMES {
        let flat = |v: &Value| -> Vec<f64> {
            v.as_array()
                .unwrap()
                .iter()
                .flat_map(|row| row.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()))
                .collect()
        };
        let (a, b) = (flat(&stored[name]), flat(&fixture[name]));
        assert_eq!(a.len(), 80);
        let worst = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max);
        assert!(
            worst <= 1e-5,
            "{name}: {worst} (MNIST_BN_BLESS=1 rewrites the fixture)"
        );
    }
    assert!(session.logits("resnet", test.pixels()).is_err());
    assert!(session.logits("plain", &[0; 100]).is_err());
}
