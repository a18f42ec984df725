//! What `norms` keeps of each seed: its summary, and how the table, the findings and the figure
//! read it over the seeds.

use serde::Serialize;

use super::super::seeds::{Spread, transpose};

/// The batch sizes trained at, smallest first.
pub(super) const BATCH_SIZES: [usize; 6] = [2, 4, 8, 16, 64, 256];
/// The train-mode test batches.
pub(super) const TEST_BATCHES: [usize; 3] = [1, 2, 16];

/// What `norms` found in one seed.
#[derive(Debug, Clone, Serialize)]
pub struct NormsSummary {
    /// One row per batch size, smallest first.
    pub sizes: Vec<NormsRow>,
    /// Each norm's network from batch 64, tested every way, in the order of the rows'
    /// networks.
    pub inference: Vec<NormsInference>,
}

/// One batch size of `norms`.
#[derive(Debug, Clone, Serialize)]
pub struct NormsRow {
    /// The batch size.
    pub batch_size: usize,
    /// SGD steps (one pass over the images).
    pub steps: usize,
    /// Each norm's network: none, batch, layer, group, renorm.
    pub networks: Vec<NormsNetwork>,
}

/// One network of `norms` after its pass over the images.
#[derive(Debug, Clone, Serialize)]
pub struct NormsNetwork {
    /// The norm's short name (`none`, `batch`, `layer`, `group`, `renorm`).
    pub norm: String,
    /// The step at which it diverged, if it did.
    pub diverged_at: Option<usize>,
    /// Test accuracy, eval mode.
    pub test_accuracy: f64,
    /// Mean training loss over the pass.
    pub train_loss: f64,
}

/// One norm's network tested every way.
#[derive(Debug, Clone, Serialize)]
pub struct NormsInference {
    /// The norm's short name.
    pub norm: String,
    /// Test accuracy in train mode on batches of 1, 2 and 16, in that order.
    pub train_mode: Vec<f64>,
    /// Test accuracy in eval mode.
    pub eval_mode: f64,
}

/// Each norm's network at each batch size, over the seeds: `rows[size][seed]`.
pub(super) fn rows(seeds: &[NormsSummary]) -> Vec<Vec<&NormsRow>> {
    transpose(seeds, |s| &s.sizes)
}

/// Network `i` of a row over the seeds.
pub(super) fn accuracy(row: &[&NormsRow], i: usize) -> Spread {
    Spread::over(row, |r| r.networks[i].test_accuracy)
}

/// The norms' short names, in the order of the networks.
pub(super) fn names(seeds: &[NormsSummary]) -> Vec<String> {
    seeds.first().map_or(Vec::new(), |s| {
        s.sizes.first().map_or(Vec::new(), |r| {
            r.networks.iter().map(|n| n.norm.clone()).collect()
        })
    })
}
