//! Fuzzes the picture reader of `predict`: any bytes as a PNG or JPEG file must give a digit
//! or a `DataError`, never a panic, an abort or an allocation beyond the picture's size.
//!
//! Run: `cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run picture corpus/picture seeds/picture -- -max_total_time=600 -rss_limit_mb=512`
#![no_main]

use libfuzzer_sys::fuzz_target;
use mnist_bn_data::read_digit;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for name in ["digit.png", "digit.jpg"] {
        let path = dir.path().join(name);
        std::fs::write(&path, data).expect("write the input");
        let _ = read_digit(&path);
    }
});
