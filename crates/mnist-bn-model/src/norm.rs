//! Which normalization follows a hidden layer: none, batch norm, or what is used instead of it.

use burn::config::Config;

use crate::batch_renorm::RenormSchedule;

/// Which normalization follows each hidden linear layer.
///
/// The MLP takes every one; the ConvNet and the RNN take `None` and `Batch`
/// ([`NetConfig::validate`](crate::NetConfig::validate) says so).
#[derive(Config, Debug, Copy, PartialEq)]
pub enum Norm {
    /// No normalization: the hidden linear layers have a bias.
    None,
    /// Batch normalization (Ioffe & Szegedy 2015) after each hidden linear layer, which then
    /// has no bias: [`TorchBatchNorm`](crate::TorchBatchNorm), PyTorch's `BatchNorm1d`.
    Batch,
    /// Layer normalization (Ba, Kiros & Hinton 2016): each example normalized over its own
    /// features, the same in training and inference: Burn's `LayerNorm`, PyTorch's
    /// `nn.LayerNorm(width)`. The linear layers keep their bias (a per-feature bias is not
    /// removed by a mean over the features).
    Layer,
    /// Group normalization (Wu & He 2018): each example normalized over groups of
    /// `width / groups` consecutive features: Burn's `GroupNorm`, PyTorch's
    /// `nn.GroupNorm(groups, width)`. One group is layer norm; a group of one feature would
    /// turn every feature into its beta, so groups must hold two features or more. The linear
    /// layers keep their bias.
    Group {
        /// The number of groups; it must divide every hidden width.
        groups: usize,
    },
    /// Batch renormalization (Ioffe 2017): batch norm whose batch statistics are corrected
    /// toward the running ones within limits that relax with the schedule
    /// ([`BatchRenorm`](crate::BatchRenorm)). The linear layers have no bias.
    BatchRenorm(RenormSchedule),
}

impl Norm {
    /// Group norm with Wu & He's default of 32 groups.
    pub const GROUP: Norm = Norm::Group { groups: 32 };

    /// Whether the norm normalizes with statistics over the batch in training mode (batch
    /// norm and batch renorm): such a network cannot train on a batch of one, and tests
    /// differently in train mode and eval mode.
    pub fn uses_batch_statistics(&self) -> bool {
        matches!(self, Norm::Batch | Norm::BatchRenorm(_))
    }

    /// Whether the linear layer before the norm has a bias: not before batch norm or batch
    /// renorm, whose mean subtraction removes it.
    pub fn linear_bias(&self) -> bool {
        !self.uses_batch_statistics()
    }

    /// The short name used in tables and on the command line's model names: `none`, `batch`,
    /// `layer`, `group`, `renorm`.
    pub fn short_name(&self) -> &'static str {
        match self {
            Norm::None => "none",
            Norm::Batch => "batch",
            Norm::Layer => "layer",
            Norm::Group { .. } => "group",
            Norm::BatchRenorm(_) => "renorm",
        }
    }

    /// What it is, in words: `batch norm`, `group norm (32 groups)`, ...
    pub fn describe(&self) -> String {
        match self {
            Norm::None => "no norm".into(),
            Norm::Batch => "batch norm".into(),
            Norm::Layer => "layer norm".into(),
            Norm::Group { groups } => format!("group norm ({groups} groups)"),
            Norm::BatchRenorm(_) => "batch renorm".into(),
        }
    }

    /// Checks the norm against the hidden widths it follows.
    pub fn validate(&self, widths: &[usize]) -> Result<(), String> {
        match self {
            Norm::Group { groups: 0 } => Err("group norm with 0 groups".into()),
            Norm::Group { groups } => match widths.iter().find(|&&w| w % groups != 0) {
                Some(w) => Err(format!(
                    "group norm's {groups} groups do not divide a hidden width of {w}"
                )),
                None => match widths.iter().find(|&&w| w == *groups) {
                    Some(w) => Err(format!(
                        "group norm's {groups} groups of a hidden width of {w} hold one feature \
                         each, which normalizes every feature to its beta"
                    )),
                    None => Ok(()),
                },
            },
            Norm::BatchRenorm(schedule) => schedule.validate(),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Mlp, MlpConfig};
    use burn::module::Module;
    use burn::tensor::{Device, Distribution, Tensor, Tolerance};

    fn device() -> Device {
        let device = Device::flex();
        device.seed(0);
        device
    }

    fn all() -> [Norm; 5] {
        [
            Norm::None,
            Norm::Batch,
            Norm::Layer,
            Norm::GROUP,
            Norm::BatchRenorm(RenormSchedule::new()),
        ]
    }

    #[test]
    fn every_norm_builds_its_layers_and_reads_back() {
        for norm in all() {
            let model = MlpConfig::new(norm).init(&device());
            assert_eq!(model.norm(), norm);
            for block in &model.hidden {
                let set = [
                    block.norm.is_some(),
                    block.layer_norm.is_some(),
                    block.group_norm.is_some(),
                    block.batch_renorm.is_some(),
                ];
                assert_eq!(
                    set.iter().filter(|&&s| s).count(),
                    (norm != Norm::None) as usize
                );
                assert_eq!(block.linear.bias.is_some(), norm.linear_bias(), "{norm:?}");
            }
            if let Some(group) = &model.hidden[0].group_norm {
                assert_eq!((group.num_groups, group.num_channels), (32, 512));
            }
            // The config survives JSON, as in a checkpoint's model.json.
            let json = serde_json::to_string(&MlpConfig::new(norm)).unwrap();
            let back: MlpConfig = serde_json::from_str(&json).unwrap();
            assert_eq!(back.norm, norm, "{json}");
        }
    }

    #[test]
    fn layer_and_group_norm_normalize_each_image_alone_in_either_mode() {
        let device = device();
        let images = Tensor::<2>::random([8, 784], Distribution::Default, &device);
        for norm in [Norm::Layer, Norm::GROUP] {
            let model: Mlp = MlpConfig::new(norm).init(&device);
            let whole = model.forward(images.clone());
            let half = model.forward(images.clone().slice([0..4, 0..784]));
            whole
                .clone()
                .slice([0..4, 0..10])
                .into_data()
                .assert_approx_eq::<f32>(&half.into_data(), Tolerance::absolute(1e-5));
            let eval = model.valid().forward(images.clone());
            eval.into_data()
                .assert_approx_eq::<f32>(&whole.into_data(), Tolerance::absolute(0.0));
        }
    }

    #[test]
    fn group_norm_with_one_group_is_layer_norm() {
        let device = device();
        let layer: Mlp = MlpConfig::new(Norm::Layer).init(&device);
        let mut group: Mlp = MlpConfig::new(Norm::Group { groups: 1 }).init(&device);
        for (g, l) in group.hidden.iter_mut().zip(&layer.hidden) {
            g.linear = l.linear.clone();
        }
        group.output = layer.output.clone();
        let images = Tensor::<2>::random([6, 784], Distribution::Default, &device);
        layer
            .forward(images.clone())
            .into_data()
            .assert_approx_eq::<f32>(
                &group.forward(images).into_data(),
                Tolerance::absolute(1e-5),
            );
    }

    #[test]
    fn norms_that_do_not_fit_are_refused_with_the_reason() {
        assert_eq!(
            Norm::Group { groups: 3 }.validate(&[512, 256]).unwrap_err(),
            "group norm's 3 groups do not divide a hidden width of 512"
        );
        assert!(Norm::Group { groups: 0 }.validate(&[8]).is_err());
        assert!(Norm::Group { groups: 8 }.validate(&[16, 8]).is_err());
        assert!(Norm::GROUP.validate(&[512, 256]).is_ok());
        let bad = Norm::BatchRenorm(RenormSchedule::new().with_r_max(0.5));
        assert!(bad.validate(&[8]).is_err());
        assert!(Norm::Batch.uses_batch_statistics() && !Norm::Layer.uses_batch_statistics());
    }
}
