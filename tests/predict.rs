//! `predict` on pictures: test-set digits written out as PNG files.

use burn::tensor::Device;
use image::{GrayImage, Luma};
use mnist_bn_data::{IMAGE_PIXELS, Mnist, Split};
use mnist_bn_train::{load_checkpoint, predict};

use crate::util::{mnist_bn, path_str, root};

#[test]
fn predict_reads_pngs_like_the_test_set() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let args = [
        "train",
        "--model",
        "plain",
        "--train-limit",
        "6400",
        "--test-limit",
        "64",
        "--epochs",
        "1",
        "--quiet",
        "--out",
        path_str(&out),
    ];
    mnist_bn(&args).assert_ok();

    // The first eight test digits as 28×28 PNGs, and the first one again as a big, dark-on-light
    // RGB picture.
    let test = Mnist::load(Split::Test, Some(&root().join("data/mnist")))
        .unwrap()
        .truncate(8);
    let mut files = Vec::new();
    for i in 0..test.len() {
        let img = GrayImage::from_raw(28, 28, test.image(i).to_vec()).unwrap();
        let path = tmp.path().join(format!("digit{i}.png"));
        img.save(&path).unwrap();
        files.push(path);
    }
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

    let plain = out.join("plain");
    let mut args = vec!["predict", "--checkpoint", path_str(&plain)];
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
