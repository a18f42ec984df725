//! Reading IDX files (the MNIST container format), plain or gzip-compressed.
//!
//! An IDX file is a 4-byte magic number (`0x00 0x00 <type> <rank>`), `rank` big-endian `u32`
//! dimensions, then the values in row-major order. MNIST uses unsigned bytes (type `0x08`):
//! rank 3 `[n, 28, 28]` for images, rank 1 `[n]` for labels.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use flate2::read::GzDecoder;

use crate::DataError;

/// The IDX type code of unsigned bytes, the only one MNIST uses.
const UNSIGNED_BYTE: u8 = 0x08;

/// Height and width of an MNIST image.
pub const IMAGE_SIDE: usize = 28;
/// Pixels in an MNIST image.
pub const IMAGE_PIXELS: usize = IMAGE_SIDE * IMAGE_SIDE;
/// Number of classes (digits 0 to 9).
pub const NUM_CLASSES: usize = 10;

/// MNIST images read from an idx3 file: `count` images of 28×28 bytes, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// `count * 784` pixels, 0 (background) to 255 (ink).
    pub pixels: Vec<u8>,
}

/// Reads an idx3 image file (plain, or gzip when the name ends in `.gz`) and checks that it
/// holds 28×28 unsigned-byte images and exactly as many bytes as its header says.
pub fn read_images(path: &Path) -> Result<IdxImages, DataError> {
    check_images(path, read_idx(path, 3)?)
}

fn check_images(
    path: &Path,
    (dims, pixels): (Vec<usize>, Vec<u8>),
) -> Result<IdxImages, DataError> {
    if dims[1..] != [IMAGE_SIDE, IMAGE_SIDE] {
        return Err(DataError::format(
            path,
            format!(
                "images are {}x{}, expected {IMAGE_SIDE}x{IMAGE_SIDE}",
                dims[1], dims[2]
            ),
        ));
    }
    Ok(IdxImages {
        count: dims[0],
        pixels,
    })
}

/// Reads an idx1 label file (plain, or gzip when the name ends in `.gz`) and checks that
/// every label is a digit (0 to 9).
pub fn read_labels(path: &Path) -> Result<Vec<u8>, DataError> {
    check_labels(path, read_idx(path, 1)?.1)
}

fn check_labels(path: &Path, labels: Vec<u8>) -> Result<Vec<u8>, DataError> {
    if let Some((index, label)) = labels
        .iter()
        .enumerate()
        .find(|(_, label)| usize::from(**label) >= NUM_CLASSES)
    {
        return Err(DataError::format(
            path,
            format!("label {label} at index {index} is not a digit 0..=9"),
        ));
    }
    Ok(labels)
}

/// Decodes idx3 images from the bytes of a file (gzip-compressed when `gzip`), with the same
/// checks as [`read_images`]; `name` is used in errors. This is what the fuzzer drives.
pub fn decode_images(bytes: &[u8], gzip: bool, name: &Path) -> Result<IdxImages, DataError> {
    check_images(name, decode(bytes, gzip, name, 3)?)
}

/// Decodes idx1 labels from the bytes of a file (gzip-compressed when `gzip`), with the same
/// checks as [`read_labels`]; `name` is used in errors.
pub fn decode_labels(bytes: &[u8], gzip: bool, name: &Path) -> Result<Vec<u8>, DataError> {
    check_labels(name, decode(bytes, gzip, name, 1)?.1)
}

fn decode(
    bytes: &[u8],
    gzip: bool,
    name: &Path,
    rank: u8,
) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    if bytes.is_empty() {
        return Err(DataError::format(name, "file is empty"));
    }
    let reader: Box<dyn Read + '_> = if gzip {
        Box::new(GzDecoder::new(bytes))
    } else {
        Box::new(bytes)
    };
    read_idx_from(reader, name, gzip, rank)
}

/// Reads an unsigned-byte IDX file of the given rank: its dimensions and its values.
fn read_idx(path: &Path, rank: u8) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    let io = |source| DataError::Io {
        path: path.to_path_buf(),
        error: source,
    };
    let file = File::open(path).map_err(io)?;
    let metadata = file.metadata().map_err(io)?;
    if metadata.is_dir() {
        return Err(DataError::format(path, "is a directory, expected a file"));
    }
    if metadata.len() == 0 {
        return Err(DataError::format(path, "file is empty"));
    }
    let gzip = path.extension().is_some_and(|ext| ext == "gz");
    let reader: Box<dyn Read> = if gzip {
        Box::new(GzDecoder::new(BufReader::with_capacity(1 << 16, file)))
    } else {
        Box::new(BufReader::with_capacity(1 << 16, file))
    };
    read_idx_from(reader, path, gzip, rank)
}

fn read_idx_from(
    mut reader: impl Read,
    path: &Path,
    gzip: bool,
    rank: u8,
) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    let io = |source| DataError::Io {
        path: path.to_path_buf(),
        error: source,
    };
    // Decoding errors of a corrupt gzip stream surface as I/O errors; say what they are.
    let read_err = |source: std::io::Error| {
        if gzip && source.kind() != std::io::ErrorKind::PermissionDenied {
            DataError::format(path, format!("corrupt gzip data: {source}"))
        } else {
            io(source)
        }
    };

    let mut magic = [0u8; 4];
    let got = read_up_to(&mut reader, &mut magic).map_err(read_err)?;
    if got == 0 {
        return Err(DataError::format(path, "file is empty"));
    }
    if got < 4 {
        return Err(DataError::format(path, "file too short for an IDX header"));
    }
    let expected_magic = [0, 0, UNSIGNED_BYTE, rank];
    if magic != expected_magic {
        return Err(DataError::format(
            path,
            format!(
                "incorrect magic number 0x{:08x} != 0x{:08x} (an idx{rank} unsigned-byte file)",
                u32::from_be_bytes(magic),
                u32::from_be_bytes(expected_magic)
            ),
        ));
    }

    let mut raw_dims = vec![0u8; 4 * usize::from(rank)];
    if read_up_to(&mut reader, &mut raw_dims).map_err(read_err)? < raw_dims.len() {
        return Err(DataError::format(path, "file ends inside the IDX header"));
    }
    let dims: Vec<usize> = raw_dims
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    let len = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&len| len as u64 <= 1 << 34)
        .ok_or_else(|| DataError::format(path, format!("dimensions {dims:?} are too large")))?;

    // Read what the header promises and one byte more, to tell a truncated file and one with
    // trailing bytes apart. Memory grows with the data actually read, not with the header's
    // claim (a corrupt header can claim gigabytes).
    let mut values = Vec::with_capacity(len.min(64 << 20));
    reader
        .take(len as u64 + 1)
        .read_to_end(&mut values)
        .map_err(read_err)?;
    if values.len() < len {
        return Err(DataError::format(
            path,
            format!(
                "truncated: header {dims:?} promises {len} bytes of data, found {}",
                values.len()
            ),
        ));
    }
    if values.len() > len {
        return Err(DataError::format(
            path,
            format!("trailing bytes after the {len} bytes of data that header {dims:?} promises"),
        ));
    }
    Ok((dims, values))
}

/// Fills `buf` as far as the reader allows; returns how many bytes were read.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;
    use std::path::PathBuf;

    /// Builds an IDX file's bytes: magic, dims, values.
    pub(crate) fn idx_bytes(type_code: u8, dims: &[u32], values: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0, 0, type_code, dims.len() as u8];
        for d in dims {
            bytes.extend_from_slice(&d.to_be_bytes());
        }
        bytes.extend_from_slice(values);
        bytes
    }

    pub(crate) fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        if name.ends_with(".gz") {
            let file = File::create(&path).unwrap();
            let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
            gz.write_all(bytes).unwrap();
            gz.finish().unwrap();
        } else {
            std::fs::write(&path, bytes).unwrap();
        }
        path
    }

    fn message(err: DataError) -> String {
        err.to_string()
    }

    #[test]
    fn reads_images_plain_and_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let pixels: Vec<u8> = (0..2 * 784).map(|i| (i % 251) as u8).collect();
        let bytes = idx_bytes(8, &[2, 28, 28], &pixels);
        for name in ["imgs", "imgs.gz"] {
            let images = read_images(&write(dir.path(), name, &bytes)).unwrap();
            assert_eq!(images.count, 2);
            assert_eq!(images.pixels, pixels);
        }
    }

    #[test]
    fn reads_labels() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "l.gz", &idx_bytes(8, &[3], &[0, 9, 5]));
        assert_eq!(read_labels(&path).unwrap(), vec![0, 9, 5]);
    }

    #[test]
    fn malformed_files_give_errors_that_name_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let img = |dims: &[u32], n: usize| idx_bytes(8, dims, &vec![0; n]);
        let cases: Vec<(&str, Vec<u8>, bool, &str)> = vec![
            ("empty", vec![], true, "file is empty"),
            ("short", vec![0, 0], true, "too short"),
            (
                "magic",
                idx_bytes(8, &[1], &[0]),
                true,
                "incorrect magic number 0x00000801 != 0x00000803",
            ),
            (
                "type",
                idx_bytes(0x0d, &[1, 28, 28], &[0; 784]),
                true,
                "incorrect magic number",
            ),
            (
                "header",
                vec![0, 0, 8, 3, 0, 0, 0, 1],
                true,
                "ends inside the IDX header",
            ),
            (
                "dims",
                img(&[1, 28, 27], 756),
                true,
                "images are 28x27, expected 28x28",
            ),
            (
                "truncated",
                img(&[2, 28, 28], 784),
                true,
                "truncated: header [2, 28, 28] promises 1568 bytes of data, found 784",
            ),
            (
                "count",
                img(&[1000, 28, 28], 10),
                true,
                "promises 784000 bytes",
            ),
            ("trailing", img(&[1, 28, 28], 785), true, "trailing bytes"),
            ("huge", img(&[u32::MAX, u32::MAX, 28], 0), true, "too large"),
            (
                "label",
                idx_bytes(8, &[3], &[1, 10, 2]),
                false,
                "label 10 at index 1 is not a digit",
            ),
            (
                "labelrank",
                img(&[1, 28, 28], 784),
                false,
                "incorrect magic number 0x00000803 != 0x00000801",
            ),
        ];
        for (name, bytes, images, expected) in cases {
            for file in [name.to_string(), format!("{name}.gz")] {
                let path = write(dir.path(), &file, &bytes);
                let err = if images {
                    read_images(&path).map(|_| ()).unwrap_err()
                } else {
                    read_labels(&path).map(|_| ()).unwrap_err()
                };
                let msg = message(err);
                assert!(msg.contains(&file), "{file}: {msg}");
                assert!(
                    msg.contains(expected),
                    "{file}: expected {expected:?} in {msg:?}"
                );
            }
        }
    }

    #[test]
    fn corrupt_gzip_missing_file_and_directory_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.gz");
        std::fs::write(&path, b"\x1f\x8b\x08\x00garbage that is not deflate").unwrap();
        let msg = message(read_images(&path).unwrap_err());
        assert!(msg.contains("corrupt gzip data"), "{msg}");

        let missing = dir.path().join("missing");
        let msg = message(read_images(&missing).unwrap_err());
        assert!(
            msg.contains("missing") && msg.contains("No such file"),
            "{msg}"
        );

        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let msg = message(read_labels(&sub).unwrap_err());
        assert!(msg.contains("is a directory"), "{msg}");
    }
}
