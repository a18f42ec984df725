//! `depth`'s figure: the ReLU networks' per-layer gradients at a few depths, the first-to-last
//! ratio against depth, and test accuracy against depth at each learning rate.

use mnist_bn_model::Activation;
use plotters::chart::SeriesLabelPosition;

use super::summary::{BN, DepthRow, DepthSummary, PLAIN_NET, Which, accuracy, activation_name};
use crate::lab::experiments::seeds::{Spread, band, transpose};
use crate::plot::figure::{Figure, Mark, Panel, Series, XAxis};

/// log10 of the mean of a positive quantity, for the figure's log-scaled y values.
fn log10(v: f64) -> f64 {
    if v > 0.0 { v.log10() } else { f64::NAN }
}

/// The ReLU networks' per-layer gradients at a few depths; the first-to-last ratio against
/// depth; test accuracy against depth at each learning rate.
pub(super) fn figure(seeds: &[DepthSummary], rates: &[f64], profiled: &[usize]) -> Figure {
    let rows = transpose(seeds, |s| &s.rows);
    let family = |name: &'static str| -> Vec<&Vec<&DepthRow>> {
        rows.iter().filter(|r| r[0].activation == name).collect()
    };
    // (a) per-layer gradient norms of the ReLU networks at a few depths, mean over the seeds.
    let mut profile = Vec::new();
    for row in family("relu") {
        if !profiled.contains(&row[0].depth) {
            continue;
        }
        for net in [BN, PLAIN_NET] {
            let layers = row[0].batch_norm.gradient_norms.len();
            let points = (0..layers)
                .map(|l| {
                    let norm = Spread::over(row, |r| {
                        net.of(r).gradient_norms.get(l).copied().unwrap_or(f64::NAN)
                    });
                    ((l + 1) as f64, log10(norm.mean))
                })
                .collect();
            let deepest = row[0].depth == profiled[profiled.len() - 1];
            profile.push(Series {
                label: if deepest {
                    net.name().into()
                } else {
                    String::new()
                },
                color: net.color(false),
                mark: Mark::Line {
                    width: if deepest { 3 } else { 1 },
                },
                points,
            });
        }
    }
    // (b) the ratio against depth, and (c, d) test accuracy against depth.
    let against_depth = |value: &dyn Fn(&[&DepthRow], Which) -> Spread, log: bool| -> Vec<Series> {
        let mut series = Vec::new();
        for (name, tanh) in [("relu", false), ("tanh", true)] {
            for net in [BN, PLAIN_NET] {
                let spreads: Vec<(f64, Spread)> = family(name)
                    .iter()
                    .map(|row| (row[0].depth as f64, value(row, net)))
                    .collect();
                let shown = |v: f64| if log { log10(v) } else { v };
                if !log {
                    series.extend(band(net.color(tanh), spreads.clone()));
                }
                series.push(Series {
                    label: format!(
                        "{}, {}",
                        activation_name(if tanh {
                            Activation::Tanh
                        } else {
                            Activation::Relu
                        }),
                        net.name()
                    ),
                    color: net.color(tanh),
                    mark: Mark::LineDots,
                    points: spreads.iter().map(|(x, s)| (*x, shown(s.mean))).collect(),
                });
            }
        }
        series
    };
    let ratio_panel = Panel {
        title: "first layer's gradient over the output layer's, at init".into(),
        x_axis: XAxis::Linear,
        x_label: "hidden layers".into(),
        y_label: "log10 ‖∇W₁‖ / ‖∇W_out‖".into(),
        y_range: None,
        series: against_depth(
            &|row, net| Spread::over(row, |r| net.of(r).first_to_last),
            true,
        ),
        legend: SeriesLabelPosition::UpperLeft,
    };
    let accuracy_panel = |i: usize| Panel {
        title: format!("test accuracy after training at lr {}", rates[i]),
        x_axis: XAxis::Linear,
        x_label: "hidden layers".into(),
        y_label: "test accuracy".into(),
        y_range: Some((0.0, 1.0)),
        series: against_depth(&|row, net| accuracy(row, net, i).0, false),
        legend: SeriesLabelPosition::LowerLeft,
    };
    let profile_panel = Panel {
        title: format!(
            "ReLU: each layer's gradient at init ({} hidden layers; {} thickest)",
            profiled
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            profiled[profiled.len() - 1]
        ),
        x_axis: XAxis::Linear,
        x_label: "layer (1 = first, last = output)".into(),
        y_label: "log10 ‖∇W‖".into(),
        y_range: None,
        series: profile,
        legend: SeriesLabelPosition::UpperRight,
    };
    Figure {
        title: "Depth with and without batch norm (Yang et al. 2019)".into(),
        columns: 2,
        panel_size: (560, 400),
        panels: vec![
            profile_panel,
            ratio_panel,
            accuracy_panel(0),
            accuracy_panel(1),
        ],
    }
}
