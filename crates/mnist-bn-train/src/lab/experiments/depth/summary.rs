//! `depth`'s numbers: one seed's summary of its runs, and how the table, the findings and the
//! figure read a network's numbers out of it.

use mnist_bn_model::Activation;
use serde::Serialize;

use crate::lab::experiments::common::lighter;
use crate::lab::experiments::seeds::{Diverged, Spread};
use crate::lab::run::Outcome;
use crate::plot::figure::{BATCH_NORM, PLAIN};

/// What `depth` found: one row per activation and depth.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct DepthSummary {
    /// ReLU then tanh, each from the shallowest network to the deepest.
    pub rows: Vec<DepthRow>,
}

/// One activation and depth of `depth`.
#[derive(Debug, Clone, Serialize)]
pub struct DepthRow {
    /// The activation, by its lowercase name.
    pub activation: String,
    /// Hidden layers.
    pub depth: usize,
    /// The network with batch norm.
    pub batch_norm: DepthNetwork,
    /// The network without.
    pub plain: DepthNetwork,
}

/// One network of `depth`.
#[derive(Debug, Clone, Serialize)]
pub struct DepthNetwork {
    /// At initialization, the norm of the loss's gradient with respect to each linear layer's
    /// weights on the first batch, from the input side (the output layer last).
    pub gradient_norms: Vec<f64>,
    /// The first layer's gradient norm over the output layer's.
    pub first_to_last: f64,
    /// Test accuracy after training, at each of the learning rates.
    pub test_accuracy: Vec<f64>,
    /// The step at which it diverged at each learning rate, if it did.
    pub diverged_at: Vec<Option<usize>>,
}

/// An activation's name as the text writes it, from its name in `lab.json`.
pub(super) fn display(activation: &str) -> &str {
    if activation == "relu" {
        "ReLU"
    } else {
        activation
    }
}

pub(super) fn activation_name(activation: Activation) -> &'static str {
    match activation {
        Activation::Relu => "ReLU",
        Activation::Sigmoid => "sigmoid",
        Activation::Tanh => "tanh",
    }
}

/// One seed's summary of its outcomes: per family and depth, the pair at each of `rates`
/// learning rates in turn.
pub(super) fn summarize(outcomes: &[Outcome], rates: usize) -> DepthSummary {
    let per_setting = 2 * rates;
    let rows = outcomes
        .chunks(per_setting)
        .map(|setting| {
            let network = |k: usize| {
                let runs: Vec<&Outcome> = setting.iter().skip(k).step_by(2).collect();
                let gradient_norms = runs[0].initial_gradients.clone().unwrap_or_default();
                let first_to_last = match (gradient_norms.first(), gradient_norms.last()) {
                    (Some(first), Some(last)) => first / last,
                    _ => f64::NAN,
                };
                DepthNetwork {
                    gradient_norms,
                    first_to_last,
                    test_accuracy: runs.iter().map(|o| o.test_accuracy).collect(),
                    diverged_at: runs.iter().map(|o| o.diverged_at).collect(),
                }
            };
            let config = &setting[0].config;
            DepthRow {
                activation: config.activation.name().to_string(),
                depth: config.hidden.len(),
                batch_norm: network(0),
                plain: network(1),
            }
        })
        .collect();
    DepthSummary { rows }
}

/// One network of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Which {
    BatchNorm,
    Plain,
}

pub(super) use Which::{BatchNorm as BN, Plain as PLAIN_NET};

impl Which {
    pub(super) fn of(self, row: &DepthRow) -> &DepthNetwork {
        match self {
            BN => &row.batch_norm,
            PLAIN_NET => &row.plain,
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            BN => "batch norm",
            PLAIN_NET => "plain",
        }
    }

    /// Its colour: blue or orange, lighter for tanh.
    pub(super) fn color(self, tanh: bool) -> plotters::style::RGBColor {
        let color = if self == BN { BATCH_NORM } else { PLAIN };
        if tanh { lighter(color) } else { color }
    }
}

/// Test accuracy at learning rate `i` over the seeds, with its divergences.
pub(super) fn accuracy(row: &[&DepthRow], net: Which, i: usize) -> (Spread, Diverged) {
    (
        Spread::over(row, |r| net.of(r).test_accuracy[i]),
        Diverged::over(row, |r| net.of(r).diverged_at[i]),
    )
}
