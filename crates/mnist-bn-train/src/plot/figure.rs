//! Small multiples: a grid of panels with shared styling, each with line series or grouped
//! bars, written as PNG and SVG. The lab's figures are all drawn with this.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::chart::{Chart, FAMILY, write_png_and_svg};
use crate::TrainError;

/// The colour of the network with batch norm, in every figure.
pub const BATCH_NORM: RGBColor = RGBColor(31, 119, 180);
/// The colour of the network without normalization, in every figure.
pub const PLAIN: RGBColor = RGBColor(255, 127, 14);
/// The colour of a network with noisy batch norm in every figure (green).
pub const NOISY: RGBColor = RGBColor(44, 160, 44);
/// Layer norm's colour (the `norms` experiment).
pub const LAYER_NORM: RGBColor = RGBColor(214, 39, 40);
/// Group norm's colour.
pub const GROUP_NORM: RGBColor = RGBColor(148, 103, 189);
/// Batch renorm's colour.
pub const RENORM: RGBColor = RGBColor(140, 86, 75);

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mark {
    /// A line through the points, `width` pixels wide.
    Line {
        /// Stroke width in pixels.
        width: u32,
    },
    /// A line with a dot on every point.
    LineDots,
    /// A bar per point, side by side with the panel's other bar series.
    Bars,
    /// A filled area, light in the series' colour, whose outline is the points (along the
    /// lower edge, then back along the upper: a band over seeds), drawn under the lines.
    Band,
    /// A small dot on every point, no line (one seed's value beside the mean's bar).
    Dots,
}

/// One series of a panel.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend entry (empty: none).
    pub label: String,
    /// Its colour.
    pub color: RGBColor,
    /// How it is drawn.
    pub mark: Mark,
    /// `(x, y)` points; non-finite ones are left out.
    pub points: Vec<(f64, f64)>,
}

/// How a panel's x axis reads.
#[derive(Debug, Clone, PartialEq)]
pub enum XAxis {
    /// Linear.
    Linear,
    /// Logarithmic: points are given as they are and placed by their log10.
    Log10,
    /// One category per integer x from 0, labelled with these names.
    Categories(Vec<String>),
}

/// One panel of a figure.
#[derive(Debug, Clone)]
pub struct Panel {
    /// Title over the panel.
    pub title: String,
    /// The x axis.
    pub x_axis: XAxis,
    /// Label of the x axis.
    pub x_label: String,
    /// Label of the y axis.
    pub y_label: String,
    /// The y range; `None` fits the data.
    pub y_range: Option<(f64, f64)>,
    /// What the panel shows.
    pub series: Vec<Series>,
    /// Where the legend goes (drawn only when a series has a label): a corner the data
    /// leaves free.
    pub legend: SeriesLabelPosition,
}

/// Panels in a grid under one title.
#[derive(Debug, Clone)]
pub struct Figure {
    /// Title over the whole figure.
    pub title: String,
    /// Panels per row.
    pub columns: usize,
    /// Size of one panel in pixels.
    pub panel_size: (u32, u32),
    /// The panels, row by row.
    pub panels: Vec<Panel>,
}

impl Figure {
    /// Draws the figure into `<stem>.png` and `<stem>.svg`, written atomically.
    pub fn write(&self, stem: &Path) -> Result<(), TrainError> {
        let (rows, columns) = self.grid();
        let size = (
            self.panel_size.0 * columns as u32,
            self.panel_size.1 * rows as u32 + 50,
        );
        write_png_and_svg(self, size, stem)
    }

    /// Rows and columns of panels.
    fn grid(&self) -> (usize, usize) {
        let columns = self.columns.max(1);
        (self.panels.len().div_ceil(columns).max(1), columns)
    }
}

impl Chart for Figure {
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let (rows, columns) = self.grid();
        root.fill(&WHITE)?;
        let root = root.titled(&self.title, (FAMILY, 26))?;
        let areas = root.split_evenly((rows, columns));
        for (panel, area) in self.panels.iter().zip(&areas) {
            draw_panel(area, panel)?;
        }
        Ok(())
    }
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let place = |x: f64| match panel.x_axis {
        XAxis::Log10 => x.log10(),
        _ => x,
    };
    let finite = |p: &&(f64, f64)| p.0.is_finite() && p.1.is_finite() && place(p.0).is_finite();
    let points = || {
        panel
            .series
            .iter()
            .flat_map(|s| s.points.iter())
            .filter(finite)
    };
    let (x0, x1) = match &panel.x_axis {
        XAxis::Categories(names) => (-0.5, names.len() as f64 - 0.5),
        _ => {
            let (lo, hi) = points().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
                (lo.min(place(p.0)), hi.max(place(p.0)))
            });
            if lo > hi {
                (0.0, 1.0)
            } else if lo == hi {
                (lo - 0.5, hi + 0.5)
            } else {
                (lo, hi)
            }
        }
    };
    let (y0, y1) = panel.y_range.unwrap_or_else(|| {
        let (lo, hi) = points().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });
        if lo > hi {
            (0.0, 1.0)
        } else {
            let pad = ((hi - lo) * 0.06).max(1e-3);
            (lo - pad, hi + pad)
        }
    });
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, (FAMILY, 17))
        .margin(10)
        .margin_right(24)
        .x_label_area_size(38)
        .y_label_area_size(52)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    let x_axis = panel.x_axis.clone();
    let x_format = move |x: &f64| match &x_axis {
        XAxis::Linear => compact(*x),
        XAxis::Log10 => compact(10f64.powf(*x)),
        XAxis::Categories(names) => {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < names.len() {
                names[i as usize].clone()
            } else {
                String::new()
            }
        }
    };
    let x_labels = match &panel.x_axis {
        XAxis::Categories(names) => names.len() * 2 + 1,
        _ => 6,
    };
    chart
        .configure_mesh()
        .x_desc(panel.x_label.as_str())
        .y_desc(panel.y_label.as_str())
        .x_labels(x_labels)
        .y_labels(6)
        .x_label_formatter(&x_format)
        .y_label_formatter(&|y| compact(*y))
        .label_style((FAMILY, 13))
        .axis_desc_style((FAMILY, 14))
        .light_line_style(TRANSPARENT)
        .draw()?;
    let bar_series: Vec<usize> = panel
        .series
        .iter()
        .enumerate()
        .filter(|(_, s)| s.mark == Mark::Bars)
        .map(|(i, _)| i)
        .collect();
    // The centre of bar series `i`'s bar at x = 0; a dot series sits on the bar series
    // before it.
    let bar_slot = |i: usize| {
        let width = 0.8 / bar_series.len().max(1) as f64;
        let owner = bar_series.iter().rposition(|&j| j <= i).unwrap_or(0);
        -0.4 + owner as f64 * width + width * 0.46
    };
    let mut labelled = false;
    for (i, series) in panel.series.iter().enumerate() {
        let color = series.color;
        let points: Vec<(f64, f64)> = series
            .points
            .iter()
            .filter(finite)
            .map(|&(x, y)| (place(x), y.clamp(y0, y1)))
            .collect();
        let drawn = match series.mark {
            Mark::Band => chart.draw_series(std::iter::once(Polygon::new(
                points,
                color.mix(0.22).filled(),
            )))?,
            Mark::Dots => {
                let slot = bar_slot(i);
                chart.draw_series(
                    points
                        .iter()
                        .map(|&(x, y)| Circle::new((x + slot, y), 2, BLACK.mix(0.6).filled())),
                )?
            }
            Mark::Line { width } => {
                chart.draw_series(LineSeries::new(points, color.stroke_width(width)))?
            }
            Mark::LineDots => {
                chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
                chart.draw_series(LineSeries::new(points, color.stroke_width(2)))?
            }
            Mark::Bars => {
                let width = 0.8 / bar_series.len().max(1) as f64;
                let base = y0.max(0.0).min(y1);
                let offset = bar_slot(i) - width * 0.46;
                chart.draw_series(points.into_iter().map(|(x, y)| {
                    let left = x + offset;
                    Rectangle::new([(left, base), (left + width * 0.92, y)], color.filled())
                }))?
            }
        };
        if !series.label.is_empty() {
            labelled = true;
            drawn.label(series.label.clone()).legend(move |(x, y)| {
                Rectangle::new([(x, y - 4), (x + 18, y + 4)], color.filled())
            });
        }
    }
    if labelled {
        chart
            .configure_series_labels()
            .position(panel.legend.clone())
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .label_font((FAMILY, 13))
            .draw()?;
    }
    Ok(())
}

/// A short axis label: `0.05`, `2000`, `1e-4`.
fn compact(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        let exponent = a.log10().floor();
        let mantissa = v / 10f64.powf(exponent);
        if (mantissa.abs() - 1.0).abs() < 0.05 {
            format!("{}1e{exponent:.0}", if v < 0.0 { "-" } else { "" })
        } else {
            format!("{mantissa:.1}e{exponent:.0}")
        }
    } else if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_labels_read_well() {
        assert_eq!(compact(0.0), "0");
        assert_eq!(compact(2000.0), "2000");
        assert_eq!(compact(0.05), "0.05");
        assert_eq!(compact(1e-4), "1e-4");
        assert_eq!(compact(0.25), "0.25");
    }

    #[test]
    fn a_figure_with_every_mark_and_axis_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let line = |mark, color| Series {
            label: "a".into(),
            color,
            mark,
            points: vec![(1.0, 0.5), (10.0, f64::NAN), (100.0, 0.9)],
        };
        let figure = Figure {
            title: "test".into(),
            columns: 2,
            panel_size: (300, 200),
            panels: vec![
                Panel {
                    title: "log".into(),
                    x_axis: XAxis::Log10,
                    x_label: "x".into(),
                    y_label: "y".into(),
                    y_range: None,
                    series: vec![
                        line(Mark::LineDots, BATCH_NORM),
                        line(Mark::Line { width: 1 }, PLAIN),
                    ],
                    legend: SeriesLabelPosition::MiddleMiddle,
                },
                Panel {
                    title: "bars".into(),
                    x_axis: XAxis::Categories(vec!["one".into(), "two".into()]),
                    x_label: String::new(),
                    y_label: "%".into(),
                    y_range: Some((0.0, 1.0)),
                    series: vec![Series {
                        label: String::new(),
                        color: PLAIN,
                        mark: Mark::Bars,
                        points: vec![(0.0, 0.3), (1.0, 0.7)],
                    }],
                    legend: SeriesLabelPosition::UpperLeft,
                },
            ],
        };
        figure.write(&dir.path().join("f")).unwrap();
        assert!(std::fs::metadata(dir.path().join("f.png")).unwrap().len() > 1000);
        let svg = std::fs::read_to_string(dir.path().join("f.svg")).unwrap();
        assert!(svg.contains("bars") && svg.contains("<svg"));
    }
}
