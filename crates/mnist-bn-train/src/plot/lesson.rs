//! The lesson's charts: the training-loss curves (PNG and SVG) and confusion-matrix heat maps
//! (PNG).

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::chart::{Chart, FAMILY, encode_png, plot_err, register_font, write_png_and_svg};
use crate::TrainError;
use crate::files::write_atomic;

/// A curve of the loss chart.
#[derive(Debug, Clone)]
pub struct Curve {
    /// The legend entry.
    pub label: String,
    /// The training loss of epochs 1, 2, ...
    pub losses: Vec<f64>,
}

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Draws the training-loss curves into `<stem>.png` and `<stem>.svg`, written atomically.
pub fn loss_chart(curves: &[Curve], stem: &Path) -> Result<(), TrainError> {
    write_png_and_svg(&LossChart(curves), (960, 600), stem)
}

struct LossChart<'a>(&'a [Curve]);

impl Chart for LossChart<'_> {
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        draw_losses(root, self.0)
    }
}

fn draw_losses<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    curves: &[Curve],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let epochs = curves
        .iter()
        .map(|c| c.losses.len())
        .max()
        .unwrap_or(1)
        .max(2);
    let finite = curves
        .iter()
        .flat_map(|c| &c.losses)
        .copied()
        .filter(|l| l.is_finite());
    let top = finite.fold(0.0f64, f64::max).max(1e-3) * 1.08;
    let mut chart = ChartBuilder::on(root)
        .caption(
            "Training loss: batch norm vs. no normalization",
            (FAMILY, 26),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(1f64..epochs as f64, 0f64..top)?;
    chart
        .configure_mesh()
        .x_desc("Epoch")
        .y_desc("Training loss (mean of batch losses)")
        .x_labels(epochs.min(20))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.2}"))
        .label_style((FAMILY, 16))
        .axis_desc_style((FAMILY, 18))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    for (i, curve) in curves.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let points: Vec<(f64, f64)> = curve
            .losses
            .iter()
            .enumerate()
            .filter(|(_, l)| l.is_finite())
            .map(|(e, &l)| ((e + 1) as f64, l))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(3)))?
            .label(curve.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
            });
        chart.draw_series(
            points
                .into_iter()
                .map(|p| Circle::new(p, 4, color.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(180, 180, 180))
        .label_font((FAMILY, 18))
        .draw()?;
    Ok(())
}

/// Draws a confusion matrix (`confusion[label][prediction]`) as a heat map into `path` (PNG).
pub fn confusion_chart(
    confusion: &[Vec<usize>],
    title: &str,
    path: &Path,
) -> Result<(), TrainError> {
    register_font();
    let (w, h) = (760u32, 720u32);
    let mut pixels = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
        draw_confusion(&root, confusion, title).map_err(|e| plot_err(path, e))?;
        root.present().map_err(|e| plot_err(path, e))?;
    }
    write_atomic(
        path,
        &encode_png(&pixels, w, h).map_err(|e| plot_err(path, e))?,
    )
}

fn draw_confusion<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    confusion: &[Vec<usize>],
    title: &str,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let n = confusion.len();
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FAMILY, 24))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..n as f64, n as f64..0f64)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("Predicted digit")
        .y_desc("True digit")
        .x_labels(n + 1)
        .y_labels(n + 1)
        .x_label_formatter(&|x| digit_label(*x, n))
        .y_label_formatter(&|y| digit_label(*y, n))
        .x_label_offset(32)
        .y_label_offset(30)
        .label_style((FAMILY, 16))
        .axis_desc_style((FAMILY, 18))
        .draw()?;
    for (label, row) in confusion.iter().enumerate() {
        let total = row.iter().sum::<usize>().max(1) as f64;
        for (predicted, &count) in row.iter().enumerate() {
            // Share of the true digit's images, on a square-root scale so that small
            // confusions stay visible next to the diagonal.
            let share = (count as f64 / total).sqrt();
            let shade = |full: f64| (255.0 - share * (255.0 - full)) as u8;
            let fill = if label == predicted {
                RGBColor(shade(31.0), shade(119.0), shade(180.0))
            } else {
                RGBColor(shade(214.0), shade(39.0), shade(40.0))
            };
            let (x, y) = (predicted as f64, label as f64);
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x, y), (x + 1.0, y + 1.0)],
                fill.filled(),
            )))?;
            if count > 0 {
                let color = if share > 0.6 { WHITE } else { BLACK };
                let style = TextStyle::from((FAMILY, 15).into_font())
                    .color(&color)
                    .pos(Pos::new(HPos::Center, VPos::Center));
                chart.draw_series(std::iter::once(Text::new(
                    count.to_string(),
                    (x + 0.5, y + 0.5),
                    style,
                )))?;
            }
        }
    }
    Ok(())
}

/// An axis label in the middle of a digit's cell (the offset moves it there); none at the end.
fn digit_label(v: f64, n: usize) -> String {
    let digit = v.round();
    if (v - digit).abs() < 1e-6 && digit >= 0.0 && (digit as usize) < n {
        format!("{digit:.0}")
    } else {
        String::new()
    }
}
