//! What the lab measures a network on: images converted once and kept on the device, the
//! share a network classifies right, and the probe of one unit's input to its activation.

use burn::module::Module;
use burn::nn::loss::CrossEntropyLoss;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use mnist_bn_data::{IMAGE_PIXELS, Mnist, MnistBatch, pixel_to_f32};
use mnist_bn_model::{Mlp, Net};

use crate::learner::Learner;

/// The percentiles the probe records.
pub(crate) const PROBE_PERCENTILES: [f64; 3] = [0.15, 0.50, 0.85];

/// An inference copy of `model` with batch norm on its running statistics (its own copy of
/// them, so measuring never moves the trained model's).
pub(super) fn inference(model: &Net) -> Net {
    model.valid().with_batch_statistics(false)
}

/// The Frobenius norm of the loss's gradient with respect to each linear layer's weights of
/// `model` (an MLP; empty for another network), the hidden layers from the input side, then the
/// output layer: on the first `batch` images of `data` in train mode (batch statistics), the
/// gradient `learner`'s first SGD step would take on a run in file order (on a copy: the
/// model's running statistics do not move). Summed on the host in f64.
pub(crate) fn weight_gradient_norms(
    model: &Net,
    data: &Mnist,
    batch: usize,
    learner: &Learner,
) -> Vec<f64> {
    let device = learner.device();
    // On a copy with its own running statistics, which the forward pass moves.
    let training = learner.training_model(model.valid());
    let Some(mlp) = training.as_mlp() else {
        return Vec::new();
    };
    let indices: Vec<usize> = (0..batch.min(data.len())).collect();
    let batch = MnistBatch::from_indices(data, &indices, device);
    let loss =
        CrossEntropyLoss::new(None, device).forward(mlp.forward(batch.images), batch.targets);
    let grads = loss.backward();
    mlp.hidden
        .iter()
        .map(|block| &block.linear)
        .chain([&mlp.output])
        .map(|linear| {
            linear.weight.val().grad(&grads).map_or(f64::NAN, |g| {
                let g = g.into_data().convert::<f32>();
                let values = g.as_slice::<f32>().expect("converted to f32");
                values
                    .iter()
                    .map(|&v| f64::from(v).powi(2))
                    .sum::<f64>()
                    .sqrt()
            })
        })
        .collect()
}

/// The loss landscape along the gradient at `model` (Santurkar et al. 2018, Figure 4), on
/// `batch` with batch statistics (on a copy: the model's running statistics do not move): with
/// `g` the gradient at the weights `w`, the loss and the gradient at `w − η·g` for each step
/// size `η` in `step_sizes`. Returns the range (max − min) of the loss over `w` and the moved
/// points, the largest ℓ2 change of the gradient, ‖∇L(w − η·g) − g‖, and the largest ratio of
/// that change to the distance moved, ‖η·g‖ (the "effective β-smoothness"). `NaN`s for a
/// network that is not an MLP.
pub(crate) fn landscape(
    model: &Net,
    batch: &MnistBatch,
    step_sizes: &[f64],
    learner: &Learner,
) -> [f64; 3] {
    let loss_fn = CrossEntropyLoss::new(None, learner.device());
    let base = learner.training_model(model.valid());
    // The loss, the gradient as one host vector and as the optimizer takes it.
    let at = |net: &Net| -> Option<(f64, Vec<f64>, GradientsParams)> {
        let mlp = net.as_mlp()?;
        let loss = loss_fn.forward(mlp.forward(batch.images.clone()), batch.targets.clone());
        let value = f64::from(loss.clone().into_scalar::<f32>());
        let grads = GradientsParams::from_grads(loss.backward(), net);
        let flat = flat_gradient(mlp, &grads);
        Some((value, flat, grads))
    };
    let Some((loss, gradient, _)) = at(&base) else {
        return [f64::NAN; 3];
    };
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let gradient_norm = norm(&gradient);
    let (mut low, mut high) = (loss, loss);
    let (mut change, mut beta) = (0.0f64, 0.0f64);
    for &eta in step_sizes {
        // w − η·g: one plain SGD step of size η (a fresh gradient: the optimizer takes it).
        let Some((_, _, grads)) = at(&base) else {
            return [f64::NAN; 3];
        };
        let moved = learner.optimizer().step(eta, base.clone(), grads);
        let Some((moved_loss, moved_gradient, _)) = at(&moved) else {
            return [f64::NAN; 3];
        };
        (low, high) = (low.min(moved_loss), high.max(moved_loss));
        let difference: Vec<f64> = moved_gradient
            .iter()
            .zip(&gradient)
            .map(|(a, b)| a - b)
            .collect();
        let moved_by = norm(&difference);
        change = change.max(moved_by);
        beta = beta.max(moved_by / (eta * gradient_norm));
    }
    [high - low, change, beta]
}

/// Every parameter's gradient of `mlp` in one vector, layer by layer from the input side
/// (linear weights and biases, batch norm's scale and shift), in f64.
fn flat_gradient(mlp: &Mlp, grads: &GradientsParams) -> Vec<f64> {
    let mut flat = Vec::new();
    let mut push = |data: Option<TensorData>| {
        if let Some(data) = data {
            let data = data.convert::<f32>();
            flat.extend(
                data.as_slice::<f32>()
                    .expect("f32")
                    .iter()
                    .map(|&v| f64::from(v)),
            );
        }
    };
    let linears = mlp.hidden.iter().map(|b| &b.linear).chain([&mlp.output]);
    for (i, linear) in linears.enumerate() {
        push(grads.get::<2>(linear.weight.id).map(|g| g.into_data()));
        if let Some(bias) = &linear.bias {
            push(grads.get::<1>(bias.id).map(|g| g.into_data()));
        }
        if let Some(norm) = mlp.hidden.get(i).and_then(|b| b.norm.as_ref()) {
            push(grads.get::<1>(norm.weight.id).map(|g| g.into_data()));
            push(grads.get::<1>(norm.bias.id).map(|g| g.into_data()));
        }
    }
    flat
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
        let predictions = model
            .forward(self.images.clone())
            .argmax(1)
            .into_data()
            .convert::<i64>();
        let predictions = predictions.as_slice::<i64>().expect("converted to i64");
        let correct = predictions
            .iter()
            .zip(&self.labels)
            .filter(|&(&p, &l)| p == i64::from(l))
            .count();
        correct as f64 / self.labels.len().max(1) as f64
    }

    /// [`PROBE_PERCENTILES`] of the input to the first unit's activation in the last hidden
    /// layer of `model` (an MLP; `None` for another network), over the images normalized as
    /// one batch: with batch statistics, as the activation sees its input while the network
    /// trains (on a copy, whose running statistics move, not the model's).
    pub(super) fn probe(&self, model: &Net) -> Option<[f64; 3]> {
        let training = model.valid().with_batch_statistics(true);
        Some(self.percentiles(training.as_mlp()?))
    }

    fn percentiles(&self, mlp: &Mlp) -> [f64; 3] {
        let (_, pre) = mlp.forward_with_pre_activations(self.images.clone());
        let Some(last) = pre.last() else {
            return [f64::NAN; 3];
        };
        let n = self.labels.len();
        let column = last
            .clone()
            .slice([0..n, 0..1])
            .into_data()
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
            let model = seeded_model(&NetConfig::Mlp(config), 5, Some(&init), &device);
            let recorded = images.probe(&model).unwrap();
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
