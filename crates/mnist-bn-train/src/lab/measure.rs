//! What the lab measures a network on: images converted once and kept on the device, the
//! share a network classifies right, and the probe of one unit's input to its activation.
//! What it measures of the gradients is in `gradients.rs`.

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData, read_sync};
use mnist_bn_data::{IMAGE_PIXELS, Mnist, pixel_to_f32};
use mnist_bn_model::{Mlp, Net};

use super::run::Probe;

/// The percentiles the probe records.
pub(crate) const PROBE_PERCENTILES: [f64; 3] = [0.15, 0.50, 0.85];

/// An inference copy of `model` with batch norm on its running statistics (its own copy of
/// them, so measuring never moves the trained model's).
pub(super) fn inference(model: &Net) -> Net {
    model.valid().with_batch_statistics(false)
}

/// Images to measure on, converted once and kept on the device.
pub(super) struct EvalImages {
    images: Tensor<2>,
    labels: Vec<u8>,
}

impl EvalImages {
    pub(super) fn new(data: &Mnist, device: &Device) -> Self {
        let pixels: Vec<f32> = data.pixels().iter().copied().map(pixel_to_f32).collect();
        Self {
            images: Tensor::from_data(TensorData::new(pixels, [data.len(), IMAGE_PIXELS]), device),
            labels: data.labels().to_vec(),
        }
    }

    /// The share of images `model` classifies right.
    pub(super) fn accuracy(&self, model: &Net) -> f64 {
        read_sync(self.accuracy_async(model))
    }

    /// [`EvalImages::accuracy`], reading without blocking (a browser's WebGPU device).
    pub(super) async fn accuracy_async(&self, model: &Net) -> f64 {
        let predictions = model
            .forward(self.images.clone())
            .argmax(1)
            .into_data_async()
            .await
            .expect("the device reads the predictions")
            .convert::<i64>();
        let predictions = predictions.as_slice::<i64>().expect("converted to i64");
        let correct = predictions
            .iter()
            .zip(&self.labels)
            .filter(|&(&p, &l)| p == i64::from(l))
            .count();
        correct as f64 / self.labels.len().max(1) as f64
    }

    /// [`PROBE_PERCENTILES`] of the input to `probe`'s unit's activation in `model` (an MLP;
    /// `None` for another network); see [`EvalImages::probe_async`].
    #[cfg(test)]
    pub(super) fn probe(&self, model: &Net, probe: Probe) -> Option<[f64; 3]> {
        read_sync(self.probe_async(model, probe))
    }

    /// [`PROBE_PERCENTILES`] of the input to `probe`'s unit's activation in `model` (an MLP;
    /// `None` for another network), over the images normalized as one batch: with batch
    /// statistics, as the activation sees its input while the network trains (on a copy, whose
    /// running statistics move, not the model's).
    pub(super) async fn probe_async(&self, model: &Net, probe: Probe) -> Option<[f64; 3]> {
        let training = model.valid().with_batch_statistics(true);
        Some(self.percentiles(training.as_mlp()?, probe).await)
    }

    async fn percentiles(&self, mlp: &Mlp, probe: Probe) -> [f64; 3] {
        let (_, pre) = mlp.forward_with_pre_activations(self.images.clone());
        let Some(layer) = pre.get(probe.layer) else {
            return [f64::NAN; 3];
        };
        let n = self.labels.len();
        if probe.unit >= layer.dims()[1] {
            return [f64::NAN; 3];
        }
        let column = layer
            .clone()
            .slice([0..n, probe.unit..probe.unit + 1])
            .into_data_async()
            .await
            .expect("the device reads the probe")
            .convert::<f32>();
        let mut values: Vec<f32> = column.as_slice::<f32>().expect("converted to f32").to_vec();
        values.sort_by(f32::total_cmp);
        PROBE_PERCENTILES.map(|p| {
            let i = (p * (n.max(1) - 1) as f64).round() as usize;
            values.get(i).map_or(f64::NAN, |&v| f64::from(v))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learner::seeded_model;
    use mnist_bn_data::Split;
    use mnist_bn_model::{Activation, MlpConfig, NetConfig, Norm};

    /// The host's values of a parameter.
    fn host(tensor: Tensor<1>) -> Vec<f64> {
        tensor
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap()
            .into_iter()
            .map(f64::from)
            .collect()
    }

    /// The probe, computed by hand on the host from a network's parameters: the
    /// input of the first unit's activation in the *last* hidden layer over the measurement
    /// images, batch norm normalizing with those images' own statistics (train mode).
    fn probe_by_hand(mlp: &Mlp, images: &Mnist) -> [f64; 3] {
        let n = images.len();
        let mut x: Vec<Vec<f64>> = (0..n)
            .map(|i| {
                images
                    .image(i)
                    .iter()
                    .map(|&p| f64::from(pixel_to_f32(p)))
                    .collect()
            })
            .collect();
        for (layer, block) in mlp.hidden.iter().enumerate() {
            let [inputs, outputs] = block.linear.weight.dims();
            let weight = host(block.linear.weight.val().reshape([inputs * outputs]));
            let bias = block.linear.bias.as_ref().map(|b| host(b.val()));
            let mut y: Vec<Vec<f64>> = x
                .iter()
                .map(|row| {
                    (0..outputs)
                        .map(|o| {
                            let dot: f64 =
                                (0..inputs).map(|i| row[i] * weight[i * outputs + o]).sum();
                            dot + bias.as_ref().map_or(0.0, |b| b[o])
                        })
                        .collect()
                })
                .collect();
            if let Some(bn) = &block.norm {
                let (gamma, beta) = (host(bn.weight.val()), host(bn.bias.val()));
                for o in 0..outputs {
                    let mean = y.iter().map(|r| r[o]).sum::<f64>() / n as f64;
                    let var = y.iter().map(|r| (r[o] - mean).powi(2)).sum::<f64>() / n as f64;
                    for r in &mut y {
                        r[o] = (r[o] - mean) / (var + bn.epsilon).sqrt() * gamma[o] + beta[o];
                    }
                }
            }
            if layer + 1 == mlp.hidden.len() {
                let mut column: Vec<f64> = y.iter().map(|r| r[0]).collect();
                column.sort_by(f64::total_cmp);
                return PROBE_PERCENTILES.map(|p| column[(p * (n - 1) as f64).round() as usize]);
            }
            x = y
                .into_iter()
                .map(|r| r.into_iter().map(|v| 1.0 / (1.0 + (-v).exp())).collect())
                .collect();
        }
        unreachable!("a network with hidden layers")
    }

    /// The lab's claim for `distributions`: the probe follows the first unit of the last hidden
    /// layer, after batch norm (with the measurement images' own statistics, as the sigmoid
    /// sees its input in training, not the running statistics, which start at 0 and 1) and
    /// before the sigmoid; without batch norm, the linear layer's output.
    #[test]
    fn the_probe_reads_the_last_hidden_layers_first_unit_with_batch_statistics() {
        let test = Mnist::load(Split::Test, None).unwrap().truncate(97);
        let device = Device::flex();
        let images = EvalImages::new(&test, &device);
        let (_generator, init) = crate::test_support::seeded_init_device();
        for norm in [Norm::Batch, Norm::None] {
            let config = MlpConfig::new(norm)
                .with_hidden(vec![16, 8, 4])
                .with_activation(Activation::Sigmoid);
            let probe = Probe::last_layer(&config);
            let model = seeded_model(&NetConfig::Mlp(config), 5, Some(&init), &device);
            let recorded = images.probe(&model, probe).unwrap();
            let expected = probe_by_hand(model.as_mlp().unwrap(), &test);
            for (r, e) in recorded.iter().zip(expected) {
                assert!(
                    (r - e).abs() <= 1e-4 * e.abs().max(1.0),
                    "{norm:?}: {recorded:?} vs {expected:?}"
                );
            }
        }
    }
}
