//! The playground's settings (what the page's controls and its link hold) and the two lab runs
//! they make.

use burn::nn::Initializer;
use mnist_bn_model::{Activation, MlpConfig, Norm, RenormSchedule};
use mnist_bn_train::TrainingConfig;
use mnist_bn_train::lab::{MeasureOn, Probe, Run, TrainOn};
use serde::{Deserialize, Serialize};

use crate::error::WebError;

/// A norm the page offers for network A or B.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NormChoice {
    /// No normalization.
    None,
    /// Batch norm.
    Batch,
    /// Layer norm.
    Layer,
    /// Group norm, with the most groups up to 32 that divide every hidden width into groups of
    /// at least 2 features.
    Group,
    /// Batch renorm with the lab's schedule (Ioffe 2017's, 100 times shorter).
    Renorm,
}

/// The activation after each hidden layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActivationChoice {
    /// ReLU.
    Relu,
    /// The logistic sigmoid.
    Sigmoid,
    /// tanh.
    Tanh,
}

/// How the linear weights start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InitChoice {
    /// PyTorch's default: uniform in ±1/√fan_in (biases at zero, so A and B start alike).
    Default,
    /// Normal with mean 0 and the settings' `std` (biases at zero).
    Normal,
}

/// Everything a playground run is: two networks, A and B, that differ only in their norm, on
/// shared settings. The page's controls and its link hold exactly these fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// Network A's norm.
    pub a: NormChoice,
    /// Network B's norm.
    pub b: NormChoice,
    /// The activation.
    pub activation: ActivationChoice,
    /// Widths of the hidden layers, from the input side (1 to 8 layers of 1 to 1,024 units).
    pub hidden: Vec<usize>,
    /// How the weights start.
    pub init: InitChoice,
    /// The standard deviation of normal initial weights (1e-4 to 10).
    pub std: f64,
    /// The learning rate of plain SGD (1e-3 to 10).
    pub lr: f64,
    /// Images per step (2 to 256).
    pub batch: usize,
    /// SGD steps (1 to 100,000).
    pub steps: usize,
    /// The seed of the initial weights, shared by A and B.
    pub seed: u64,
    /// The hidden layer whose unit is probed, from 1.
    pub probe_layer: usize,
    /// The probed unit of that layer, from 0.
    pub probe_unit: usize,
}

/// The most hidden layers the page trains.
pub const MAX_LAYERS: usize = 8;
/// The widest hidden layer the page trains.
pub const MAX_WIDTH: usize = 1024;
/// The most steps of a run.
pub const MAX_STEPS: usize = 100_000;

/// Batch renorm's schedule in the playground: the lab's (`mnist-bn lab norms`), Ioffe's
/// scaled down 100 times.
fn renorm_schedule() -> RenormSchedule {
    RenormSchedule::new()
        .with_warmup_steps(50)
        .with_r_max_step(400)
        .with_d_max_step(250)
}

/// The most groups up to [`Norm::GROUP`]'s 32 that divide every width in `hidden` into groups
/// of at least two features.
fn groups(hidden: &[usize]) -> Option<usize> {
    let gcd = hidden.iter().fold(0, |a, &b| gcd(a, b));
    (1..=32)
        .rev()
        .find(|&g| gcd.is_multiple_of(g) && gcd / g >= 2)
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl Settings {
    /// Refuses settings outside the page's ranges, naming the setting.
    pub fn validate(&self) -> Result<(), WebError> {
        let invalid = |msg: String| Err(WebError::Invalid(msg));
        if self.hidden.is_empty() || self.hidden.len() > MAX_LAYERS {
            return invalid(format!(
                "hidden layers: 1 to {MAX_LAYERS}, got {}",
                self.hidden.len()
            ));
        }
        if let Some(w) = self.hidden.iter().find(|&&w| w == 0 || w > MAX_WIDTH) {
            return invalid(format!("hidden widths: 1 to {MAX_WIDTH}, got {w}"));
        }
        if !(1e-4..=10.0).contains(&self.std) {
            return invalid(format!("std: 1e-4 to 10, got {}", self.std));
        }
        if !(1e-3..=10.0).contains(&self.lr) {
            return invalid(format!("learning rate: 1e-3 to 10, got {}", self.lr));
        }
        if !(2..=256).contains(&self.batch) {
            return invalid(format!("batch size: 2 to 256, got {}", self.batch));
        }
        if !(1..=MAX_STEPS).contains(&self.steps) {
            return invalid(format!("steps: 1 to {MAX_STEPS}, got {}", self.steps));
        }
        for (name, choice) in [("A", self.a), ("B", self.b)] {
            self.norm(choice)
                .validate(&self.hidden)
                .or_else(|e| invalid(format!("network {name}: {e}")))?;
        }
        self.probe().check(&self.config(self.a)).or_else(invalid)
    }

    fn norm(&self, choice: NormChoice) -> Norm {
        match choice {
            NormChoice::None => Norm::None,
            NormChoice::Batch => Norm::Batch,
            NormChoice::Layer => Norm::Layer,
            // No number of groups fits (a width of 1): one group, which `validate` refuses.
            NormChoice::Group => Norm::Group {
                groups: groups(&self.hidden).unwrap_or(1),
            },
            NormChoice::Renorm => Norm::BatchRenorm(renorm_schedule()),
        }
    }

    fn probe(&self) -> Probe {
        Probe {
            layer: self.probe_layer.saturating_sub(1),
            unit: self.probe_unit,
        }
    }

    /// The network with norm `choice`.
    fn config(&self, choice: NormChoice) -> MlpConfig {
        let weight_init = match self.init {
            // The lab's `lesson_weights`: Burn's KaimingUniform with gain 1/√3 is PyTorch's
            // uniform ±1/√fan_in.
            InitChoice::Default => Initializer::KaimingUniform {
                gain: 1.0 / 3f64.sqrt(),
                fan_out_only: false,
            },
            InitChoice::Normal => Initializer::Normal {
                mean: 0.0,
                std: self.std,
            },
        };
        MlpConfig::new(self.norm(choice))
            .with_hidden(self.hidden.clone())
            .with_activation(match self.activation {
                ActivationChoice::Relu => Activation::Relu,
                ActivationChoice::Sigmoid => Activation::Sigmoid,
                ActivationChoice::Tanh => Activation::Tanh,
            })
            .with_weight_init(Some(weight_init))
    }

    /// Network `choice`'s name as the page shows it ("batch norm", "group norm (25 groups)").
    pub fn describe(&self, choice: NormChoice) -> String {
        match self.norm(choice) {
            Norm::Group { groups } => format!("group norm ({groups} groups)"),
            norm => norm.describe(),
        }
    }

    /// Steps between measurements: every 50 steps (as the lab's `grid`), fewer for long runs
    /// (at most about 40 measurements after step 0).
    pub fn measure_every(&self) -> usize {
        (self.steps / 40).max(50)
    }

    /// The two lab runs, A then B: trained on the training images minus the held-out ones,
    /// measured on those every [`Settings::measure_every`] steps, probed at the chosen unit.
    /// Call [`Settings::validate`] first.
    pub fn runs(&self) -> [Run; 2] {
        [("A", self.a), ("B", self.b)].map(|(name, choice)| Run {
            train_on: TrainOn::Fit,
            measure_on: MeasureOn::Validation,
            measure_every: self.measure_every(),
            probe: Some(self.probe()),
            ..Run::new(
                format!("{name}: {}", self.describe(choice)),
                self.config(choice),
                TrainingConfig::new()
                    .with_lr(self.lr)
                    .with_batch_size(self.batch)
                    .with_seed(self.seed),
                self.steps,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> Settings {
        Settings {
            a: NormChoice::Batch,
            b: NormChoice::None,
            activation: ActivationChoice::Relu,
            hidden: vec![100; 3],
            init: InitChoice::Normal,
            std: 0.05,
            lr: 2.0,
            batch: 60,
            steps: 2000,
            seed: 0,
            probe_layer: 3,
            probe_unit: 0,
        }
    }

    #[test]
    fn group_norm_takes_the_most_groups_of_two_or_more_up_to_32() {
        assert_eq!(groups(&[100, 100]), Some(25));
        assert_eq!(groups(&[512, 256]), Some(32));
        assert_eq!(groups(&[6]), Some(3));
        // Three features: one group of three (layer norm over them), not three groups of one.
        assert_eq!(groups(&[3]), Some(1));
        assert_eq!(groups(&[1]), None);
        let settings = Settings {
            b: NormChoice::Group,
            hidden: vec![1],
            probe_layer: 1,
            ..grid()
        };
        let error = settings.validate().unwrap_err().to_string();
        assert!(error.starts_with("network B: group norm"), "{error}");
    }

    #[test]
    fn settings_outside_the_pages_ranges_are_refused_by_name() {
        assert!(grid().validate().is_ok());
        let refused = |s: Settings, what: &str| {
            let error = s.validate().unwrap_err().to_string();
            assert!(error.contains(what), "{error} should name {what}");
        };
        refused(
            Settings {
                hidden: vec![],
                ..grid()
            },
            "hidden layers",
        );
        refused(
            Settings {
                hidden: vec![10; 9],
                ..grid()
            },
            "hidden layers",
        );
        refused(
            Settings {
                hidden: vec![0],
                ..grid()
            },
            "hidden widths",
        );
        refused(Settings { lr: 11.0, ..grid() }, "learning rate");
        refused(Settings { std: 0.0, ..grid() }, "std");
        refused(Settings { batch: 1, ..grid() }, "batch size");
        refused(Settings { steps: 0, ..grid() }, "steps");
        refused(
            Settings {
                probe_layer: 4,
                ..grid()
            },
            "hidden layer 4",
        );
        refused(
            Settings {
                probe_unit: 100,
                ..grid()
            },
            "unit 100",
        );
    }

    #[test]
    fn the_link_holds_the_settings_in_json_as_the_page_writes_them() {
        let json = serde_json::to_string(&grid()).unwrap();
        assert_eq!(
            json,
            r#"{"a":"batch","b":"none","activation":"relu","hidden":[100,100,100],"init":"normal","std":0.05,"lr":2.0,"batch":60,"steps":2000,"seed":0,"probeLayer":3,"probeUnit":0}"#
        );
        assert_eq!(serde_json::from_str::<Settings>(&json).unwrap(), grid());
        assert!(serde_json::from_str::<Settings>(r#"{"a":"batch"}"#).is_err());
    }
}
