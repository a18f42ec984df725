//! The playground's presets: settings that rerun the lab's experiments (`mnist-bn lab`) in the
//! page. Each gives the lab's networks, seed for seed; the page trains on the training images
//! minus the lab's held-out ones and measures on those, so a lab run over all training images
//! is followed exactly up to the end of the held-out-free images.

use serde::Serialize;

use super::settings::{ActivationChoice, InitChoice, NormChoice, Settings};

/// A named setting of the page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Preset {
    /// The preset's key in the page.
    pub id: String,
    /// Its name in the list.
    pub title: String,
    /// What it shows, in a sentence or two.
    pub about: String,
    /// The settings it applies.
    pub settings: Settings,
}

/// The grid's learning rates and initial standard deviations (`mnist-bn lab grid`).
pub const GRID_LRS: [f64; 3] = [0.01, 1.0, 2.0];
/// The grid's standard deviations of the initial weights.
pub const GRID_STDS: [f64; 2] = [0.05, 5.0];

/// The grid's network: 784-100-100-100-10, normal weights, batch 60, 2,000 steps, batch norm
/// against none.
fn grid(activation: ActivationChoice, lr: f64, std: f64) -> Settings {
    Settings {
        a: NormChoice::Batch,
        b: NormChoice::None,
        activation,
        hidden: vec![100; 3],
        init: InitChoice::Normal,
        std,
        lr,
        batch: 60,
        steps: 2000,
        seed: 0,
        probe_layer: 3,
        probe_unit: 0,
    }
}

/// The lesson's MLP (784-512-256-10, PyTorch's default weights) at batch 2 for `steps` steps.
fn lesson_at_batch_2(b: NormChoice, steps: usize) -> Settings {
    Settings {
        b,
        hidden: vec![512, 256],
        init: InitChoice::Default,
        lr: 0.01,
        batch: 2,
        steps,
        probe_layer: 2,
        ..grid(ActivationChoice::Relu, 0.01, 0.05)
    }
}

/// Every preset, the default first.
pub fn presets() -> Vec<Preset> {
    let mut presets = Vec::new();
    let name = |a: ActivationChoice| match a {
        ActivationChoice::Relu => "ReLU",
        ActivationChoice::Sigmoid => "sigmoid",
        ActivationChoice::Tanh => "tanh",
    };
    for activation in [ActivationChoice::Relu, ActivationChoice::Sigmoid] {
        for std in GRID_STDS {
            for lr in GRID_LRS {
                let init = if std < 1.0 { "reasonable" } else { "bad" };
                presets.push(Preset {
                    id: format!("grid-{}-lr{lr}-std{std}", name(activation).to_lowercase()),
                    title: format!("Grid: {}, lr {lr}, std {std}", name(activation)),
                    about: format!(
                        "`mnist-bn lab grid`: 784-100-100-100-10 with {}s, {init} initial \
                         weights (normal, std {std}), lr {lr}, batch 60, 2,000 steps; batch norm \
                         against none.",
                        name(activation)
                    ),
                    settings: grid(activation, lr, std),
                });
            }
        }
    }
    // The default: where the plain network dies and the one with batch norm trains.
    let default = presets
        .iter()
        .position(|p| p.id == "grid-relu-lr2-std0.05")
        .expect("a grid preset");
    presets[..=default].rotate_right(1);
    presets.push(Preset {
        id: "ioffe-fig1".into(),
        title: "Ioffe & Szegedy 2015, Fig. 1".into(),
        about: "`mnist-bn lab distributions`: a sigmoid's input as the network trains \
                (784-100-100-100-10 sigmoids, std 0.05, lr 0.5, batch 60, 10,000 steps). With \
                batch norm its 15/50/85th percentiles hold still; without, they drift."
            .into(),
        settings: Settings {
            steps: 10_000,
            ..grid(ActivationChoice::Sigmoid, 0.5, 0.05)
        },
    });
    for (std, what) in [(1e-4, "too small"), (1.0, "too large")] {
        presets.push(Preset {
            id: format!("init-scale-{std}"),
            title: format!("Init scale {std}: 8 layers"),
            about: format!(
                "`mnist-bn lab init-scale` at its extreme: 8 hidden layers of 100 ReLUs with \
                 initial weights {what} (normal, std {std}), lr 0.01, batch 60, 2,000 steps."
            ),
            settings: Settings {
                hidden: vec![100; 8],
                probe_layer: 8,
                ..grid(ActivationChoice::Relu, 0.01, std)
            },
        });
    }
    presets.push(Preset {
        id: "batch-2".into(),
        title: "Batch 2: batch norm vs none".into(),
        about: "`mnist-bn lab batch-size` at batch 2: the lesson's MLP (784-512-256-10, PyTorch's \
                default weights), lr 0.01, one pass over the 55,000 training images. Batch \
                norm's statistics of two images are noise."
            .into(),
        settings: lesson_at_batch_2(NormChoice::None, 27_500),
    });
    for (b, id, title, about) in [
        (
            NormChoice::Group,
            "batch-2-group-norm",
            "Batch 2: batch norm vs group norm (Wu & He 2018)",
            "`mnist-bn lab norms` at batch 2: group norm's statistics do not depend on the \
             batch, so it trains where batch norm struggles (Wu & He 2018, Fig. 1).",
        ),
        (
            NormChoice::Renorm,
            "batch-2-renorm",
            "Batch 2: batch norm vs batch renorm (Ioffe 2017)",
            "`mnist-bn lab norms` at batch 2: batch renorm corrects batch norm's statistics \
             toward the running ones once its warm-up ends (Ioffe 2017, Fig. 2).",
        ),
    ] {
        presets.push(Preset {
            id: id.into(),
            title: title.into(),
            about: about.into(),
            // One pass over the lab's 20,480 images.
            settings: lesson_at_batch_2(b, 10_240),
        });
    }
    presets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_is_valid_and_named_once() {
        let presets = presets();
        assert_eq!(presets.len(), 12 + 1 + 2 + 3);
        assert_eq!(presets[0].id, "grid-relu-lr2-std0.05");
        for p in &presets {
            p.settings
                .validate()
                .unwrap_or_else(|e| panic!("{}: {e}", p.id));
            assert_eq!(
                presets.iter().filter(|q| q.id == p.id).count(),
                1,
                "{}",
                p.id
            );
        }
    }
}
