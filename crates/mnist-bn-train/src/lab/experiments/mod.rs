//! The experiments: each is a list of runs (data for the driver), then a typed summary of the
//! outcomes, and from that summary a table and a paragraph; the figure draws the outcomes.
//!
//! One file per experiment (`grid.rs`, `distributions.rs`, `inference.rs`, `batch_size.rs`,
//! `init_scale.rs`, `learning_rate.rs`, `landscape.rs`, `depth/`, `ics.rs`, `norms/`), each with its runs, its
//! summary (one per seed), its findings (a function of the summaries alone, so that tests can
//! hand it summaries where the answer flips), its table and its figure. `common.rs` holds what
//! they share, `seeds.rs` how a number reads over the seeds; this file plans and runs an
//! experiment.

mod batch_size;
mod common;
mod depth;
mod distributions;
mod grid;
mod ics;
mod inference;
mod init_scale;
mod landscape;
mod learning_rate;
mod norms;
mod seeds;

pub use batch_size::{BatchSizeNetwork, BatchSizeRow, BatchSizeSummary};
pub use depth::{DepthNetwork, DepthRow, DepthSummary};
pub use distributions::{DistributionsRow, DistributionsSummary};
pub use grid::{GridRow, GridSummary, Published};
pub use ics::{IcsNetwork, IcsSummary};
pub use inference::{InferencePass, InferenceSummary};
pub use init_scale::{InitScaleNetwork, InitScaleRow, InitScaleSummary};
pub use landscape::{LandscapeNetwork, LandscapeSummary};
pub use learning_rate::{LearningRateNetwork, LearningRateRow, LearningRateSummary};
pub use norms::{NormsInference, NormsNetwork, NormsRow, NormsSummary};

use std::path::Path;
use web_time::Instant;

use burn::tensor::Device;
use mnist_bn_model::{NetConfig, Norm};

use super::driver::run_all;
use super::plan::{Experiment, LabOptions};
use super::progress::LabProgress;
use super::report::{Section, Summary};
use super::run::{LabData, Run};
use crate::TrainError;
use crate::checkpoint::load_checkpoint;
use crate::plot::figure::Figure;
use common::{Analysis, Tested};

/// The runs of an experiment, one list per seed of `options` (a single empty list for
/// `inference` given a checkpoint to test: nothing trains).
pub(super) fn plan(experiment: Experiment, data: &LabData, options: &LabOptions) -> Vec<Vec<Run>> {
    if experiment == Experiment::Inference && options.checkpoint.is_some() {
        return vec![Vec::new()];
    }
    let steps = |default| options.steps.unwrap_or(default);
    let runs = |seed| match experiment {
        Experiment::Grid => grid::runs(steps(2000), seed),
        Experiment::Distributions => distributions::runs(steps(10_000), seed),
        Experiment::Inference => vec![inference::lesson_run(data, seed)],
        Experiment::BatchSize => batch_size::runs(data, seed),
        Experiment::InitScale => init_scale::runs(steps(2000), seed),
        Experiment::LearningRate => learning_rate::runs(data, seed),
        Experiment::Landscape => landscape::runs(steps(2000), seed),
        Experiment::Depth => depth::runs(steps(250), seed),
        Experiment::Ics => ics::runs(steps(2000), seed),
        Experiment::Norms => norms::runs(data, seed),
    };
    options.seed_list().into_iter().map(runs).collect()
}

/// Loads `--checkpoint` for `inference` (onto the autodiff device, so that each test pass can
/// take its own copy of the running statistics); it must hold an MLP with batch norm.
pub(super) fn load_tested(path: &Path, device: &Device) -> Result<Tested, TrainError> {
    let checkpoint = load_checkpoint(path, &device.clone().autodiff())?;
    let is_bn_mlp = matches!(&checkpoint.config, NetConfig::Mlp(c) if c.norm == Norm::Batch);
    if !is_bn_mlp {
        return Err(TrainError::checkpoint(
            &checkpoint.path,
            "does not hold an MLP with batch norm; the inference experiment needs one",
        ));
    }
    let source = format!("the checkpoint {}", checkpoint.path.display());
    Ok((checkpoint.model, source))
}

/// Runs one experiment's runs (one list per seed, as [`plan`] gives them) on the driver, all
/// seeds at once, then its analysis, table and figure.
pub(super) fn run(
    experiment: Experiment,
    plans: &[Vec<Run>],
    tested: Option<Tested>,
    data: &LabData,
    options: &LabOptions,
    device: &Device,
) -> Result<Section, TrainError> {
    let started = Instant::now();
    let runs = plans.concat();
    let networks = match runs.len() {
        1 => "1 network".to_string(),
        n => format!("{n} networks"),
    };
    println!("== lab: {experiment} ({networks}) ==");
    let progress = LabProgress::new(
        options.progress,
        experiment.name(),
        runs.iter().map(|r| r.steps).sum(),
    );
    let outcomes = run_all(&runs, data, device, options, &progress)?;
    progress.finish();
    // Back into one list per seed.
    let mut outcomes = outcomes.into_iter();
    let outcomes: Vec<Vec<_>> = plans
        .iter()
        .map(|plan| outcomes.by_ref().take(plan.len()).collect())
        .collect();
    let (mut section, figure) = match experiment {
        Experiment::Grid => section(experiment, grid::report(outcomes, data), Summary::Grid),
        Experiment::Distributions => section(
            experiment,
            distributions::report(outcomes, data),
            Summary::Distributions,
        ),
        Experiment::Inference => section(
            experiment,
            inference::report(outcomes, tested, data, device),
            Summary::Inference,
        ),
        Experiment::BatchSize => section(
            experiment,
            batch_size::report(outcomes, data),
            Summary::BatchSize,
        ),
        Experiment::InitScale => section(
            experiment,
            init_scale::report(outcomes, data),
            Summary::InitScale,
        ),
        Experiment::LearningRate => section(
            experiment,
            learning_rate::report(outcomes, data),
            Summary::LearningRate,
        ),
        Experiment::Landscape => section(
            experiment,
            landscape::report(outcomes, data),
            Summary::Landscape,
        ),
        Experiment::Depth => section(experiment, depth::report(outcomes, data), Summary::Depth),
        Experiment::Ics => section(experiment, ics::report(outcomes, data), Summary::Ics),
        Experiment::Norms => section(
            experiment,
            norms::report(outcomes, data, device),
            Summary::Norms,
        ),
    };
    figure.write(&options.out.join(experiment.name()))?;
    section.figure = format!("{}.png", experiment.name());
    section.seconds = started.elapsed().as_secs_f64();
    Ok(section)
}

/// An experiment's analysis as its section of the report (the figure's name and the time are
/// the caller's to fill in), and its figure.
fn section<S>(
    experiment: Experiment,
    (analysis, figure): (Analysis<S>, Figure),
    summary: fn(Vec<S>) -> Summary,
) -> (Section, Figure) {
    let section = Section {
        experiment,
        question: analysis.question.to_string(),
        setup: analysis.setup,
        seconds: 0.0,
        figure: String::new(),
        table: analysis.table,
        findings: analysis.findings,
        summary: summary(analysis.summary),
        runs: analysis.runs,
    };
    (section, figure)
}

#[cfg(test)]
mod tests {

    use mnist_bn_data::{Mnist, Split};

    use super::*;
    use crate::output::progress::ProgressMode;

    /// Every linear weight of an outcome's kept network, from the input side.
    fn linear_weights(outcome: &crate::lab::run::Outcome) -> Vec<Vec<f32>> {
        let net = outcome.model.as_ref().expect("kept");
        let mlp = net.as_mlp().expect("an MLP");
        mlp.hidden
            .iter()
            .map(|block| &block.linear)
            .chain([&mlp.output])
            .map(|linear| linear.weight.val().into_data().try_to_vec::<f32>().unwrap())
            .collect()
    }

    /// The lab's claim that both networks of a pair start from the same weights, checked on the
    /// weights the driver draws (not on the configs), for every experiment's pairs.
    #[test]
    fn the_networks_of_a_pair_start_from_the_same_drawn_weights() {
        let train = Mnist::load(Split::Train, None).unwrap().truncate(1200);
        let test = Mnist::load(Split::Test, None).unwrap().truncate(100);
        let data = LabData::new(train, test);
        let (_generator, init) = crate::test_support::seeded_init_device();
        let options = LabOptions {
            steps: Some(1),
            seed: 3,
            threads: 2,
            ..LabOptions::for_tests(&init)
        };
        let device = Device::flex();
        for experiment in Experiment::ALL {
            let mut runs = plan(experiment, &data, &options).concat();
            // No step: the outcome's network is the one the driver drew.
            for run in &mut runs {
                run.steps = 0;
                run.keep_model = true;
            }
            let progress = LabProgress::new(ProgressMode::Quiet, experiment.name(), 0);
            let outcomes = run_all(&runs, &data, &device, &options, &progress).unwrap();
            let mut pairs = 0;
            for bn in outcomes.iter().filter(|o| o.name.ends_with(", bn")) {
                let setting = bn.name.trim_end_matches(", bn");
                let plain = outcomes
                    .iter()
                    .find(|o| o.name == format!("{setting}, plain"))
                    .unwrap_or_else(|| panic!("{experiment}: no plain twin of {}", bn.name));
                assert_eq!(bn.config.norm, Norm::Batch);
                assert_eq!(plain.config.norm, Norm::None);
                assert!(
                    linear_weights(bn) == linear_weights(plain),
                    "{experiment}: {setting}: the twins start from different weights"
                );
                pairs += 1;
            }
            match experiment {
                Experiment::Inference => assert_eq!(pairs, 0),
                // Five norms per batch size, all from the same linear weights.
                Experiment::Norms => {
                    assert_eq!(pairs, 0);
                    assert_eq!(outcomes.len(), 5 * 6);
                    for group in outcomes.chunks(5) {
                        for other in &group[1..] {
                            assert!(
                                linear_weights(other) == linear_weights(&group[0]),
                                "norms: {} starts from other weights than {}",
                                other.name,
                                group[0].name
                            );
                        }
                    }
                }
                // A pair, and the noisy network from the same weights as its batch-norm twin.
                Experiment::Ics => {
                    assert_eq!(2 * pairs + 1, outcomes.len());
                    assert!(linear_weights(&outcomes[2]) == linear_weights(&outcomes[0]));
                }
                _ => assert_eq!(2 * pairs, outcomes.len(), "{experiment}: unpaired runs"),
            }
        }
    }
}
