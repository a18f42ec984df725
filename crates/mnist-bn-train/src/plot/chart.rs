//! What every chart shares: the bundled font, and drawing a chart into PNG and SVG files.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::TrainError;
use crate::files::write_atomic;

/// DejaVu Sans, bundled so that charts need no system fonts (license in `assets/`).
#[cfg(not(target_arch = "wasm32"))]
static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
pub(crate) const FAMILY: &str = "sans-serif";

pub(crate) fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bundled font is valid; a failure here would only lose the labels. In WebAssembly
        // plotters measures text through the browser's canvas instead: the web page draws its
        // charts itself and never calls these.
        #[cfg(not(target_arch = "wasm32"))]
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
    });
}

/// Something plotters can draw on any backend.
pub(crate) trait Chart {
    /// Draws the chart on `root`.
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>;
}

/// Draws `chart` at `size` pixels into `<stem>.png` and `<stem>.svg`, each written atomically.
pub(crate) fn write_png_and_svg(
    chart: &impl Chart,
    (w, h): (u32, u32),
    stem: &Path,
) -> Result<(), TrainError> {
    register_font();
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    let mut pixels = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
        chart.draw(&root).map_err(|e| plot_err(&png, e))?;
        root.present().map_err(|e| plot_err(&png, e))?;
    }
    write_atomic(
        &png,
        &encode_png(&pixels, w, h).map_err(|e| plot_err(&png, e))?,
    )?;
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, (w, h)).into_drawing_area();
        chart.draw(&root).map_err(|e| plot_err(&svg, e))?;
        root.present().map_err(|e| plot_err(&svg, e))?;
    }
    write_atomic(&svg, text.as_bytes())
}

pub(crate) fn encode_png(pixels: &[u8], w: u32, h: u32) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(pixels).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

pub(crate) fn plot_err(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Plot {
        path: path.to_path_buf(),
        problem: e.to_string(),
    }
}
