//! A digit from an ordinary picture (PNG or JPEG, any size, colour or grey, dark on light or
//! light on dark), converted like MNIST: 28×28 grey, white digit on black, centred.

use std::path::Path;

use image::imageops::FilterType;
use image::{GrayImage, Luma};

use crate::DataError;
use crate::idx::{IMAGE_PIXELS, IMAGE_SIDE};

/// Side of the box MNIST fits each digit into, inside the 28×28 image.
const DIGIT_BOX: u32 = 20;

/// Reads a picture of a digit and converts it like MNIST.
///
/// The picture is turned grey; if its border is light (a dark digit on paper), it is inverted
/// so that the digit is white on black. A 28×28 picture is then used as it is; any other size
/// is cropped to the digit's bounding box, scaled to fit 20×20 keeping its aspect ratio, and
/// placed in 28×28 with its centre of mass in the middle, as MNIST's digits were.
pub fn read_digit(path: &Path) -> Result<[u8; IMAGE_PIXELS], DataError> {
    let picture = image::ImageReader::open(path)
        .map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            error: source,
        })?
        .with_guessed_format()
        .map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            error: source,
        })?
        .decode()
        .map_err(|e| DataError::format(path, format!("not a readable PNG or JPEG image: {e}")))?;
    let grey = picture.to_luma8();
    if grey.width() == 0 || grey.height() == 0 {
        return Err(DataError::format(path, "the image is empty"));
    }
    Ok(convert(grey))
}

/// Converts a grey picture of a digit (`width × height` pixels, row after row, 0 black to 255
/// white) like [`read_digit`] converts a file: what the web page does with its canvas.
/// Returns `None` when the sizes disagree or the picture is empty.
pub fn digit_from_grey(width: u32, height: u32, pixels: Vec<u8>) -> Option<[u8; IMAGE_PIXELS]> {
    if width == 0 || height == 0 || pixels.len() as u64 != u64::from(width) * u64::from(height) {
        return None;
    }
    GrayImage::from_raw(width, height, pixels).map(convert)
}

/// Light border → inverted; not 28×28 → cropped, scaled and centred like MNIST.
fn convert(mut grey: GrayImage) -> [u8; IMAGE_PIXELS] {
    if border_mean(&grey) > 127.0 {
        image::imageops::invert(&mut grey);
    }
    let side = IMAGE_SIDE as u32;
    let grey = if grey.dimensions() == (side, side) {
        grey
    } else {
        center_like_mnist(&grey)
    };
    let mut pixels = [0u8; IMAGE_PIXELS];
    pixels.copy_from_slice(grey.as_raw());
    pixels
}

fn border_mean(image: &GrayImage) -> f64 {
    let (w, h) = image.dimensions();
    let mut sum = 0u64;
    let mut count = 0u64;
    for (x, y, Luma([v])) in image.enumerate_pixels() {
        if x == 0 || y == 0 || x == w - 1 || y == h - 1 {
            sum += u64::from(*v);
            count += 1;
        }
    }
    sum as f64 / count.max(1) as f64
}

/// Crops to the ink, scales into a 20×20 box and centres its centre of mass in 28×28, as MNIST's
/// digits were made.
fn center_like_mnist(image: &GrayImage) -> GrayImage {
    let side = IMAGE_SIDE as u32;
    // Ink: brighter than a third of the brightest pixel.
    let max = image.pixels().map(|p| p.0[0]).max().unwrap_or(0);
    let threshold = max / 3;
    let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
    for (x, y, Luma([v])) in image.enumerate_pixels() {
        if *v > threshold {
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
        }
    }
    let mut out = GrayImage::new(side, side);
    if x0 > x1 {
        return out; // A blank picture stays blank.
    }
    let crop = image::imageops::crop_imm(image, x0, y0, x1 - x0 + 1, y1 - y0 + 1).to_image();
    let scale = DIGIT_BOX as f64 / f64::from(crop.width().max(crop.height()));
    let w = ((f64::from(crop.width()) * scale).round() as u32).clamp(1, DIGIT_BOX);
    let h = ((f64::from(crop.height()) * scale).round() as u32).clamp(1, DIGIT_BOX);
    let digit = image::imageops::resize(&crop, w, h, FilterType::Triangle);
    // As MNIST: the centre of mass goes to the centre of the 28×28 field (kept inside it).
    let (mut mass, mut mx, mut my) = (0f64, 0f64, 0f64);
    for (x, y, Luma([v])) in digit.enumerate_pixels() {
        let v = f64::from(*v);
        (mass, mx, my) = (mass + v, mx + v * f64::from(x), my + v * f64::from(y));
    }
    let place = |centre: f64, size: u32| {
        let at = (f64::from(side) / 2.0 - 0.5 - centre).round() as i64;
        at.clamp(0, i64::from(side - size))
    };
    let (x, y) = if mass > 0.0 {
        (place(mx / mass, w), place(my / mass, h))
    } else {
        (i64::from((side - w) / 2), i64::from((side - h) / 2))
    };
    image::imageops::overlay(&mut out, &digit, x, y);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn save(image: &GrayImage, path: &Path) {
        image.save(path).unwrap();
    }

    #[test]
    fn a_28x28_digit_is_kept_and_a_light_background_inverted() {
        let dir = tempfile::tempdir().unwrap();
        let mut img = GrayImage::new(28, 28);
        img.put_pixel(14, 14, Luma([200]));
        let path = dir.path().join("d.png");
        save(&img, &path);
        let pixels = read_digit(&path).unwrap();
        assert_eq!(pixels[14 * 28 + 14], 200);
        assert_eq!(pixels.iter().filter(|&&p| p != 0).count(), 1);

        image::imageops::invert(&mut img);
        save(&img, &path);
        assert_eq!(read_digit(&path).unwrap(), pixels);
    }

    #[test]
    fn a_large_dark_on_light_picture_is_cropped_scaled_and_centred() {
        let dir = tempfile::tempdir().unwrap();
        let mut img = GrayImage::from_pixel(200, 100, Luma([255]));
        for y in 10..90 {
            for x in 20..40 {
                img.put_pixel(x, y, Luma([0])); // a dark bar, 20 wide, 80 high, off-centre
            }
        }
        let path = dir.path().join("bar.jpg");
        image::DynamicImage::ImageLuma8(img)
            .to_rgb8()
            .save(&path)
            .unwrap();
        let pixels = read_digit(&path).unwrap();
        // Scaled to 20 high and 5 wide, centred: rows 4..24, columns 11..16.
        let ink: Vec<(usize, usize)> = (0..784)
            .filter(|&i| pixels[i] > 128)
            .map(|i| (i / 28, i % 28))
            .collect();
        let rows: Vec<usize> = ink.iter().map(|p| p.0).collect();
        let cols: Vec<usize> = ink.iter().map(|p| p.1).collect();
        assert_eq!(
            (*rows.iter().min().unwrap(), *rows.iter().max().unwrap()),
            (4, 23)
        );
        assert!(
            *cols.iter().min().unwrap() >= 10 && *cols.iter().max().unwrap() <= 17,
            "{cols:?}"
        );
    }

    #[test]
    fn a_grey_canvas_converts_like_the_same_picture_read_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut img = GrayImage::from_pixel(280, 280, Luma([255]));
        for y in 40..240 {
            for x in 120..150 {
                img.put_pixel(x, y, Luma([0])); // a dark "1" on white
            }
        }
        let path = dir.path().join("one.png");
        save(&img, &path);
        let from_canvas = digit_from_grey(280, 280, img.as_raw().clone()).unwrap();
        assert_eq!(from_canvas, read_digit(&path).unwrap());
        assert!(
            from_canvas.iter().any(|&p| p > 200),
            "the ink is white after inversion"
        );
        assert_eq!(from_canvas[0], 0, "the background is black");
        assert!(digit_from_grey(280, 279, img.into_raw()).is_none());
        assert!(digit_from_grey(0, 0, Vec::new()).is_none());
    }

    #[test]
    fn a_file_that_is_not_an_image_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.png");
        std::fs::write(&path, b"not an image").unwrap();
        let msg = read_digit(&path).unwrap_err().to_string();
        assert!(
            msg.contains("notes.png") && msg.contains("not a readable PNG or JPEG"),
            "{msg}"
        );
        let msg = read_digit(&dir.path().join("missing.png"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("missing.png"), "{msg}");
    }
}
