//! The MNIST copy shipped in `data/mnist`.

use mnist_bn_data::{Mnist, Split};
use sha2::{Digest, Sha256};

use crate::util::shipped_data;

#[test]
fn shipped_files_match_their_checksums() {
    let dir = shipped_data();
    let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
    let mut checked = 0;
    for line in sums.lines().filter(|l| !l.trim().is_empty()) {
        let (hash, name) = line.split_once(char::is_whitespace).unwrap();
        let name = name.trim().trim_start_matches('*');
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let digest = Sha256::digest(&bytes);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, hash, "{name}");
        checked += 1;
    }
    assert_eq!(checked, 4);
}

#[test]
fn the_full_data_set_loads_with_the_known_label_counts() {
    let dir = shipped_data();
    let started = std::time::Instant::now();
    let train = Mnist::load(Split::Train, Some(&dir)).unwrap();
    let test = Mnist::load(Split::Test, Some(&dir)).unwrap();
    println!(
        "loaded and decoded 70,000 images in {:.3} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(train.len(), 60_000);
    assert_eq!(test.len(), 10_000);
    assert_eq!(
        train.label_counts(),
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
    assert_eq!(
        test.label_counts(),
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
    // The first training image is a 5, the first test image a 7.
    assert_eq!((train.labels()[0], test.labels()[0]), (5, 7));
}
