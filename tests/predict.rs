//! `predict` on pictures: test-set digits written out as PNG files.

use burn::tensor::Device;
use image::{GrayImage, Luma};
use mnist_bn_data::{IMAGE_PIXELS, Mnist, Split};
use mnist_bn_model::NetConfig;
use mnist_bn_train::{ModelSpec, load_checkpoint, model_from_bytes, predict};

use crate::util::{Args, epoch_dir, mnist_bn, path_str, root, shipped_data};

#[test]
fn predict_reads_pngs_like_the_test_set() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    mnist_bn(
        &Args::train("plain")
            .epochs(1)
            .limits(6400, 64)
            .quiet()
            .out(&out),
    )
    .assert_ok();

    // The first eight test digits as 28×28 PNGs, and the first one again as a big, dark-on-light
    // RGB picture.
    let (files, test) = test_digit_files(tmp.path(), 8);
    let mut big = GrayImage::new(112, 140);
    for (x, y, Luma([v])) in GrayImage::from_raw(28, 28, test.image(0).to_vec())
        .unwrap()
        .enumerate_pixels()
    {
        for (dx, dy) in [
            (0, 0),
            (1, 0),
            (0, 1),
            (1, 1),
            (2, 2),
            (3, 3),
            (2, 3),
            (3, 2),
        ] {
            big.put_pixel(20 + 3 * x + dx % 3, 30 + 3 * y + dy % 3, Luma([255 - v]));
        }
    }
    let paper = tmp.path().join("paper.jpg");
    image::DynamicImage::ImageLuma8(big)
        .to_rgb8()
        .save(&paper)
        .unwrap();

    // The run directory holds one model: it names it.
    let mut args = vec!["predict", "--checkpoint", path_str(&out)];
    args.extend(files.iter().map(|p| path_str(p)));
    args.push(path_str(&paper));
    let run = mnist_bn(&args);
    run.assert_ok();

    // The same model on the raw test pixels, through the library.
    let device = Device::flex();
    let checkpoint = load_checkpoint(&out.join("plain"), &device).unwrap();
    let images: Vec<[u8; IMAGE_PIXELS]> = (0..test.len())
        .map(|i| test.image(i).try_into().unwrap())
        .collect();
    let expected = predict(&checkpoint.model, &images, &device);
    for (i, p) in expected.iter().enumerate() {
        let digit = (0..10).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
        let line = run
            .stdout
            .lines()
            .find(|l| l.contains(&format!("digit{i}.png")))
            .unwrap();
        assert!(
            line.contains(&format!("digit{i}.png: {digit} (p = ")),
            "{line}"
        );
    }
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains("paper.jpg: "))
        .unwrap();
    assert!(line.contains("(p = "), "{line}");

    let not_image = tmp.path().join("notes.png");
    std::fs::write(&not_image, b"hello").unwrap();
    let plain = out.join("plain");
    mnist_bn(&[
        "predict",
        "--checkpoint",
        path_str(&plain),
        path_str(&not_image),
    ])
    .assert_error("notes.png: not a readable PNG or JPEG image");
}

/// The first `n` test digits written as 28×28 PNGs in `dir`, with their pixels and labels.
fn test_digit_files(dir: &std::path::Path, n: usize) -> (Vec<std::path::PathBuf>, Mnist) {
    let test = Mnist::load(Split::Test, Some(&shipped_data()))
        .unwrap()
        .truncate(n);
    let files = (0..test.len())
        .map(|i| {
            let path = dir.join(format!("digit{i}.png"));
            GrayImage::from_raw(28, 28, test.image(i).to_vec())
                .unwrap()
                .save(&path)
                .unwrap();
            path
        })
        .collect();
    (files, test)
}

#[test]
fn without_a_checkpoint_both_shipped_models_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let (files, test) = test_digit_files(tmp.path(), 16);
    let mut args = vec!["predict"];
    args.extend(files.iter().map(|p| path_str(p)));
    let run = mnist_bn(&args);
    run.assert_ok();

    let device = Device::flex();
    let images: Vec<[u8; IMAGE_PIXELS]> = (0..test.len())
        .map(|i| test.image(i).try_into().unwrap())
        .collect();
    for name in ["batchnorm", "plain"] {
        // Each model's section: a header, then one line per picture.
        let header = format!("{name} (shipped, pretrained/{name}.bpk):");
        let section: Vec<&str> = run
            .stdout
            .lines()
            .skip_while(|l| *l != header)
            .skip(1)
            .take(files.len())
            .collect();
        assert_eq!(section.len(), files.len(), "{header} in:\n{}", run.stdout);
        // The same answers as the shipped file read through the library.
        let config: NetConfig = ModelSpec::parse(name).unwrap().config;
        let path = root().join(format!("pretrained/{name}.bpk"));
        let model =
            model_from_bytes(&config, std::fs::read(&path).unwrap(), &device, &path).unwrap();
        let mut right = 0;
        for (i, p) in predict(&model, &images, &device).iter().enumerate() {
            let digit = (0..10).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
            let expected = format!("digit{i}.png: {digit} (p = {:.3})", p[digit]);
            assert!(
                section[i].contains(&expected),
                "{} vs {expected}",
                section[i]
            );
            right += usize::from(digit == usize::from(test.labels()[i]));
        }
        // Trained models: 97.9 % and 94.2 % on the test set.
        assert!(right >= 15, "{name}: {right} of 16 right");
    }
}

#[test]
fn a_run_directory_with_several_models_is_refused_with_their_names() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    mnist_bn(
        &Args::command("run")
            .limits(640, 64)
            .epochs(1)
            .quiet()
            .out(&out),
    )
    .assert_ok();
    let (files, _) = test_digit_files(tmp.path(), 1);
    mnist_bn(&[
        "predict",
        "--checkpoint",
        path_str(&out),
        path_str(&files[0]),
    ])
    .assert_error("is a run directory with several models (batchnorm, plain); name one, e.g. ");
    // A model that has no complete epoch yet (trained second, or stopped in epoch 1) still
    // counts: the run directory does not quietly mean the other one.
    std::fs::remove_dir_all(epoch_dir(&out, "plain", 1)).unwrap();
    mnist_bn(&[
        "predict",
        "--checkpoint",
        path_str(&out),
        path_str(&files[0]),
    ])
    .assert_error("is a run directory with several models (batchnorm, plain)");
    let model = out.join("batchnorm");
    let run = mnist_bn(&[
        "predict",
        "--checkpoint",
        path_str(&model),
        path_str(&files[0]),
    ]);
    run.assert_ok();
    // It says which checkpoint answered.
    let expected = format!("checkpoint: {}", epoch_dir(&out, "batchnorm", 1).display());
    assert!(run.stdout.contains(&expected), "{}", run.stdout);
}
