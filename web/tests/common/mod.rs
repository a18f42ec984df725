//! What the web crate's native tests share: the repository's files.

use std::path::{Path, PathBuf};

/// The repository's root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The bytes of a file of the repository.
pub fn read(path: &str) -> Vec<u8> {
    std::fs::read(root().join(path)).unwrap()
}
