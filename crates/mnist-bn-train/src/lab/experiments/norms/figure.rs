//! `norms`' figure: test accuracy against batch size, one line per norm, and the batch-64
//! networks' test passes.

use plotters::chart::SeriesLabelPosition;
use plotters::style::RGBColor;

use super::super::common::lighter;
use super::super::seeds::{Spread, band, transpose};
use super::summary::{BATCH_SIZES, NormsSummary, TEST_BATCHES, accuracy, names, rows};
use crate::plot::figure::{
    BATCH_NORM, Figure, GROUP_NORM, LAYER_NORM, Mark, PLAIN, Panel, RENORM, Series, XAxis,
};

/// Each norm's colour, by its short name.
fn color(norm: &str) -> RGBColor {
    match norm {
        "none" => PLAIN,
        "batch" => BATCH_NORM,
        "layer" => LAYER_NORM,
        "group" => GROUP_NORM,
        _ => RENORM,
    }
}

/// A norm's line through the means over the seeds, with its band.
fn with_band(name: &str, points: Vec<(f64, Spread)>) -> Vec<Series> {
    let line = Series {
        label: name.to_string(),
        color: color(name),
        mark: Mark::LineDots,
        points: points.iter().map(|(x, s)| (*x, s.mean)).collect(),
    };
    band(lighter(color(name)), points)
        .into_iter()
        .chain([line])
        .collect()
}

/// Test accuracy against batch size, one line per norm with its band; and the batch-64
/// networks' test passes.
pub(super) fn figure(seeds: &[NormsSummary]) -> Figure {
    let names = names(seeds);
    let rows = rows(seeds);
    let mut sweep = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let points: Vec<(f64, Spread)> = rows
            .iter()
            .enumerate()
            .map(|(x, row)| (x as f64, accuracy(row, i)))
            .collect();
        sweep.extend(with_band(name, points));
    }
    let tests = transpose(seeds, |s| &s.inference);
    let mut passes = Vec::new();
    for t in &tests {
        let name = &t[0].norm;
        let at = |j: usize| {
            if j < TEST_BATCHES.len() {
                Spread::over(t, |t| t.train_mode[j])
            } else {
                Spread::over(t, |t| t.eval_mode)
            }
        };
        let points: Vec<(f64, Spread)> = (0..=TEST_BATCHES.len())
            .map(|j| (j as f64, at(j)))
            .collect();
        passes.extend(with_band(name, points));
    }
    let mut categories: Vec<String> = TEST_BATCHES.iter().map(|b| format!("train, {b}")).collect();
    categories.push("eval".into());
    Figure {
        title: "Norms against batch size, and the batch-64 networks tested every way".into(),
        columns: 2,
        panel_size: (640, 420),
        panels: vec![
            Panel {
                title: "test accuracy after one pass (eval mode)".into(),
                x_axis: XAxis::Categories(BATCH_SIZES.iter().map(|b| b.to_string()).collect()),
                x_label: "batch size".into(),
                y_label: "test accuracy".into(),
                y_range: None,
                series: sweep,
                legend: SeriesLabelPosition::LowerLeft,
            },
            Panel {
                title: "batch-64 networks: train mode by test batch, and eval mode".into(),
                x_axis: XAxis::Categories(categories),
                x_label: "test pass".into(),
                y_label: "test accuracy".into(),
                y_range: Some((0.0, 1.0)),
                series: passes,
                legend: SeriesLabelPosition::LowerRight,
            },
        ],
    }
}
