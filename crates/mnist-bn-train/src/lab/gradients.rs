//! What the lab measures of a network's gradients, each on a copy with its own running
//! statistics (the network's never move): each layer's weight gradient at initialization
//! ([`weight_gradient_norms`], for `depth`), the loss landscape along the gradient
//! ([`landscape`], Santurkar et al. 2018, Figure 4) and internal covariate shift ([`ics`],
//! their Definition 2.1).

use burn::module::{Module, ModuleVisitor, Param, ParamId, list_param_ids};
use burn::nn::Linear;
use burn::nn::loss::CrossEntropyLoss;
use burn::optim::GradientsParams;
use burn::tensor::{Tensor, TensorData};
use mnist_bn_data::{Mnist, MnistBatch};
use mnist_bn_model::{Mlp, Net};

use crate::learner::Learner;

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
/// network that is not an MLP, or where a loss, a change or a ratio is not a finite number.
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
        // A point that is not a number makes the measure not one (`f64::min` would skip it,
        // and a landscape that blows up would read smoother).
        if !moved_loss.is_finite() {
            return [f64::NAN; 3];
        }
        (low, high) = (low.min(moved_loss), high.max(moved_loss));
        let difference: Vec<f64> = moved_gradient
            .iter()
            .zip(&gradient)
            .map(|(a, b)| a - b)
            .collect();
        let moved_by = norm(&difference);
        let ratio = moved_by / (eta * gradient_norm);
        if !moved_by.is_finite() || !ratio.is_finite() {
            return [f64::NAN; 3];
        }
        change = change.max(moved_by);
        beta = beta.max(ratio);
    }
    [high - low, change, beta]
}

/// Internal covariate shift as Santurkar et al. (2018, Definition 2.1) measure it, at `model`
/// on `batch` (batch statistics, batch-norm noise off, on a copy: the model's running
/// statistics do not move): for each layer `i` after the first, the gradient `G` of the loss
/// with respect to its weights, and `G'` the same once every layer below it has taken its SGD
/// step of size `lr` (the layer itself and those above unchanged). Returns, from the second
/// layer to the output layer, `‖G − G'‖` and the cosine between `G` and `G'`. Empty for a
/// network that is not an MLP.
pub(crate) fn ics(model: &Net, batch: &MnistBatch, lr: f64, learner: &Learner) -> Vec<[f64; 2]> {
    let base = match model.valid() {
        Net::Mlp(mlp) => learner.training_model(Net::Mlp(mlp.without_bn_noise())),
        _ => return Vec::new(),
    };
    let loss_fn = CrossEntropyLoss::new(None, learner.device());
    let Some(mlp) = base.as_mlp() else {
        return Vec::new();
    };
    let loss_at = |net: &Net| {
        let mlp = net.as_mlp().expect("an MLP");
        loss_fn.forward(mlp.forward(batch.images.clone()), batch.targets.clone())
    };
    // Layer `i`'s linear layer: the hidden ones, then the output layer.
    let linear = |mlp: &Mlp, i: usize| -> Linear {
        mlp.hidden
            .get(i)
            .map_or_else(|| mlp.output.clone(), |block| block.linear.clone())
    };
    let weight_gradient = |net: &Net, grads: &burn::tensor::Gradients, i: usize| -> Vec<f64> {
        let g = linear(net.as_mlp().expect("an MLP"), i)
            .weight
            .val()
            .grad(grads);
        g.map_or_else(Vec::new, |g| host_values(g.into_data()))
    };
    // Every parameter of layer `i`: its linear layer's and its norm's, whichever norm it is.
    let params = |i: usize| -> Vec<ParamId> {
        match mlp.hidden.get(i) {
            Some(block) => list_param_ids(block),
            None => list_param_ids(&mlp.output),
        }
    };
    let before = loss_at(&base).backward();
    (1..=mlp.hidden.len())
        .map(|i| {
            let g = weight_gradient(&base, &before, i);
            let below: Vec<ParamId> = (0..i).flat_map(params).collect();
            let mut grads = loss_at(&base).backward();
            let step = GradientsParams::from_params(&mut grads, &base, &below);
            let moved = learner.optimizer().step(lr, base.clone(), step);
            let after = loss_at(&moved).backward();
            let g_moved = weight_gradient(&moved, &after, i);
            let dot: f64 = g.iter().zip(&g_moved).map(|(a, b)| a * b).sum();
            let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
            let distance = g
                .iter()
                .zip(&g_moved)
                .map(|(a, b)| (a - b).powi(2))
                .sum::<f64>()
                .sqrt();
            [distance, dot / (norm(&g) * norm(&g_moved))]
        })
        .collect()
}

/// A tensor's values on the host, in f64.
fn host_values(data: TensorData) -> Vec<f64> {
    let data = data.convert::<f32>();
    data.as_slice::<f32>()
        .expect("f32")
        .iter()
        .map(|&v| f64::from(v))
        .collect()
}

/// Every parameter's gradient of `mlp` in one vector, in the module's own order (layer by
/// layer from the input side: the linear weights and biases, then the norm's parameters,
/// whichever norm it is), in f64.
fn flat_gradient(mlp: &Mlp, grads: &GradientsParams) -> Vec<f64> {
    struct Flatten<'a> {
        grads: &'a GradientsParams,
        flat: Vec<f64>,
    }
    impl ModuleVisitor for Flatten<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            // Running statistics are visited too, and have no gradient.
            if let Some(g) = self.grads.get::<D>(param.id) {
                self.flat.extend(host_values(g.into_data()));
            }
        }
    }
    let mut flatten = Flatten {
        grads,
        flat: Vec::new(),
    };
    mlp.visit(&mut flatten);
    flatten.flat
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::measure::inference;
    use crate::learner::seeded_model;
    use burn::tensor::{Device, Tensor};
    use mnist_bn_data::Split;
    use mnist_bn_model::{MlpConfig, NetConfig, Norm};

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

    /// A small MLP drawn from seed 3 (`norm` after its hidden layers), the first 12 training
    /// images, and a learner of batch 6 on flex.
    fn small(norm: Norm) -> (Net, Mnist, Learner) {
        let (_generator, init) = crate::test_support::seeded_init_device();
        let device = Device::flex();
        let config = MlpConfig::new(norm).with_hidden(vec![8, 6]);
        let model = seeded_model(&NetConfig::Mlp(config), 3, Some(&init), &device);
        let data = Mnist::load(Split::Train, None).unwrap().truncate(12);
        let training = crate::learner::TrainingConfig::new().with_batch_size(6);
        (model, data, Learner::new(training, &device))
    }

    /// The loss of `model` on `batch` in train mode (batch statistics), on a copy.
    fn loss_of(model: &Net, batch: &MnistBatch) -> f64 {
        let copy = model.valid().with_batch_statistics(true);
        let device = batch.images.device();
        let loss = CrossEntropyLoss::new(None, &device)
            .forward(copy.forward(batch.images.clone()), batch.targets.clone());
        f64::from(loss.into_scalar::<f32>())
    }

    /// Each linear layer's weights, from the input side, on the host.
    fn weights(net: &Net) -> Vec<Vec<f32>> {
        let mlp = net.as_mlp().unwrap();
        mlp.hidden
            .iter()
            .map(|b| &b.linear)
            .chain([&mlp.output])
            .map(|l| {
                l.weight
                    .val()
                    .into_data()
                    .convert::<f32>()
                    .try_to_vec::<f32>()
                    .unwrap()
            })
            .collect()
    }

    /// The norm each layer's gradient is reported with is the slope of the loss along that
    /// gradient, measured by finite differences: W ± ε·u with u the unit gradient direction
    /// (read from `weight_gradient_norms`' own backward pass on the same batch).
    #[test]
    fn each_layers_gradient_norm_is_the_slope_of_the_loss_along_it() {
        for norm in [Norm::Batch, Norm::None] {
            let (model, data, learner) = small(norm);
            let norms = weight_gradient_norms(&model, &data, 6, &learner);
            assert_eq!(norms.len(), 3, "two hidden layers and the output layer");
            let batch = MnistBatch::from_indices(&data, &[0, 1, 2, 3, 4, 5], learner.device());
            // The gradients, to take their directions.
            let training = learner.training_model(model.valid());
            let mlp = training.as_mlp().unwrap();
            let loss = CrossEntropyLoss::new(None, learner.device())
                .forward(mlp.forward(batch.images.clone()), batch.targets.clone());
            let grads = loss.backward();
            assert_eq!(norms.len(), mlp.hidden.len() + 1);
            for (layer, &expected) in norms.iter().enumerate() {
                let linear = |m: &Mlp| {
                    if layer < m.hidden.len() {
                        m.hidden[layer].linear.clone()
                    } else {
                        m.output.clone()
                    }
                };
                let g = linear(mlp).weight.val().grad(&grads).unwrap();
                let unit = g.clone().div_scalar(expected as f32);
                let eps = 1e-3;
                let moved = |sign: f32| {
                    let mut net = model.clone().valid();
                    let shift =
                        Tensor::from_data(unit.clone().into_data(), &learner.device().clone());
                    let Net::Mlp(mlp) = &mut net else {
                        panic!("an MLP")
                    };
                    let target = if layer < mlp.hidden.len() {
                        &mut mlp.hidden[layer].linear
                    } else {
                        &mut mlp.output
                    };
                    target.weight = target
                        .weight
                        .clone()
                        .map(|w| w + shift.mul_scalar(sign * eps));
                    loss_of(&net, &batch)
                };
                let slope = (moved(1.0) - moved(-1.0)) / (2.0 * f64::from(eps));
                let relative = (slope - expected).abs() / expected;
                assert!(
                    relative < 0.02,
                    "{norm:?}, layer {layer}: slope {slope} against norm {expected}"
                );
            }
            // Measuring moved neither the weights nor the running statistics.
            let (again, _, _) = small(norm);
            assert_eq!(weights(&model), weights(&again));
            assert_eq!(
                inference(&model).forward(batch.images.clone()).into_data(),
                inference(&again).forward(batch.images).into_data()
            );
        }
    }

    /// The landscape at one step size, computed again by hand: the weights moved to w − η·g
    /// parameter by parameter from the backward pass, the loss there, every parameter's gradient
    /// there, the change and the ratio to ‖η·g‖ over every parameter.
    #[test]
    fn the_landscape_is_the_loss_and_gradient_change_at_w_minus_eta_g() {
        for norm in [Norm::Batch, Norm::None] {
            let (model, data, learner) = small(norm);
            let batch = MnistBatch::from_indices(&data, &[6, 7, 8, 9, 10, 11], learner.device());
            let eta = 0.5;
            let [range, change, beta] = landscape(&model, &batch, &[eta], &learner);
            // By hand: every parameter's gradient at w, and at w − η·g.
            let gradient_at = |net: &Net| -> (f64, Vec<Vec<f32>>, Net) {
                let training = learner.training_model(net.valid());
                let mlp = training.as_mlp().unwrap();
                let loss = CrossEntropyLoss::new(None, learner.device())
                    .forward(mlp.forward(batch.images.clone()), batch.targets.clone());
                let value = f64::from(loss.clone().into_scalar::<f32>());
                let grads = loss.backward();
                let mut all = Vec::new();
                let mut moved = training.clone().valid();
                let Net::Mlp(mlp_moved) = &mut moved else {
                    panic!("an MLP")
                };
                let step = |p: &burn::module::Param<Tensor<2>>| p.val().grad(&grads).unwrap();
                let step1 = |p: &burn::module::Param<Tensor<1>>| p.val().grad(&grads).unwrap();
                let to_host2 =
                    |t: Tensor<2>| t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
                let to_host1 =
                    |t: Tensor<1>| t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
                for (i, block) in mlp.hidden.iter().enumerate() {
                    let g = step(&block.linear.weight);
                    all.push(to_host2(g.clone()));
                    let target = &mut mlp_moved.hidden[i];
                    let device = target.linear.weight.val().device();
                    let g = Tensor::from_data(g.into_data(), &device);
                    target.linear.weight =
                        target.linear.weight.clone().map(|w| w - g.mul_scalar(eta));
                    if let Some(bias) = &block.linear.bias {
                        let g = step1(bias);
                        all.push(to_host1(g.clone()));
                        let g = Tensor::from_data(g.into_data(), &device);
                        let b = target.linear.bias.take().unwrap();
                        target.linear.bias = Some(b.map(|b| b - g.mul_scalar(eta)));
                    }
                    if let Some(bn) = &block.norm {
                        let (gw, gb) = (step1(&bn.weight), step1(&bn.bias));
                        all.push(to_host1(gw.clone()));
                        all.push(to_host1(gb.clone()));
                        let target = target.norm.as_mut().unwrap();
                        let gw = Tensor::from_data(gw.into_data(), &device);
                        let gb = Tensor::from_data(gb.into_data(), &device);
                        target.weight = target.weight.clone().map(|w| w - gw.mul_scalar(eta));
                        target.bias = target.bias.clone().map(|b| b - gb.mul_scalar(eta));
                    }
                }
                let device = mlp_moved.output.weight.val().device();
                let g = step(&mlp.output.weight);
                all.push(to_host2(g.clone()));
                let g = Tensor::from_data(g.into_data(), &device);
                mlp_moved.output.weight = mlp_moved
                    .output
                    .weight
                    .clone()
                    .map(|w| w - g.mul_scalar(eta));
                let g = step1(mlp.output.bias.as_ref().unwrap());
                all.push(to_host1(g.clone()));
                let g = Tensor::from_data(g.into_data(), &device);
                let b = mlp_moved.output.bias.take().unwrap();
                mlp_moved.output.bias = Some(b.map(|b| b - g.mul_scalar(eta)));
                (value, all, moved)
            };
            let (loss, g, moved) = gradient_at(&model);
            let (moved_loss, moved_g, _) = gradient_at(&moved);
            let flat = |v: &[Vec<f32>]| -> Vec<f64> {
                v.iter().flatten().map(|&x| f64::from(x)).collect()
            };
            let (g, moved_g) = (flat(&g), flat(&moved_g));
            let norm_of = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
            let difference: Vec<f64> = moved_g.iter().zip(&g).map(|(a, b)| a - b).collect();
            let close = |a: f64, b: f64, what: &str| {
                assert!(
                    (a - b).abs() <= 1e-4 * b.abs().max(1e-3),
                    "{norm:?}: {what} {a} by hand {b}"
                );
            };
            close(range, (moved_loss - loss).abs(), "range");
            close(change, norm_of(&difference), "change");
            close(beta, norm_of(&difference) / (eta * norm_of(&g)), "β");
            assert!(
                range > 0.0 && change > 0.0,
                "{norm:?}: the step moved something"
            );
        }
    }

    /// Internal covariate shift at the second layer, computed again by hand: the first layer's
    /// parameters (weights, and bias or batch norm) moved by −lr·gradient, everything else as it
    /// was, then the second layer's weight gradient there; a step of 0 shifts nothing.
    #[test]
    fn ics_is_the_change_of_a_layers_gradient_when_the_layers_below_step() {
        for norm in [Norm::Batch, Norm::None] {
            let (model, data, learner) = small(norm);
            let batch = MnistBatch::from_indices(&data, &[0, 2, 4, 6, 8, 10], learner.device());
            for [distance, cosine] in ics(&model, &batch, 0.0, &learner) {
                assert!(distance == 0.0 && (cosine - 1.0).abs() < 1e-6, "{norm:?}");
            }
            let lr = 0.3;
            let shift = ics(&model, &batch, lr, &learner);
            assert_eq!(
                shift.len(),
                2,
                "the second hidden layer and the output layer"
            );
            // By hand.
            let gradients = |net: &Net| {
                let training = learner.training_model(net.valid());
                let mlp = training.as_mlp().unwrap();
                let loss = CrossEntropyLoss::new(None, learner.device())
                    .forward(mlp.forward(batch.images.clone()), batch.targets.clone());
                (training.clone(), loss.backward())
            };
            let (training, grads) = gradients(&model);
            let mlp = training.as_mlp().unwrap();
            let second = |m: &Mlp, g: &burn::tensor::Gradients| -> Vec<f64> {
                let g = m.hidden[1].linear.weight.val().grad(g).unwrap();
                host(g.reshape([-1]))
            };
            let before = second(mlp, &grads);
            let mut moved = training.clone().valid();
            let Net::Mlp(target) = &mut moved else {
                panic!("an MLP")
            };
            let first = &mlp.hidden[0];
            let device = target.output.weight.val().device();
            let on = |t: Tensor<2>| Tensor::<2>::from_data(t.into_data(), &device);
            let on1 = |t: Tensor<1>| Tensor::<1>::from_data(t.into_data(), &device);
            let gw = on(first.linear.weight.val().grad(&grads).unwrap());
            target.hidden[0].linear.weight = target.hidden[0]
                .linear
                .weight
                .clone()
                .map(|w| w - gw.mul_scalar(lr));
            if let Some(bias) = &first.linear.bias {
                let gb = on1(bias.val().grad(&grads).unwrap());
                let b = target.hidden[0].linear.bias.take().unwrap();
                target.hidden[0].linear.bias = Some(b.map(|b| b - gb.mul_scalar(lr)));
            }
            if let Some(bn) = &first.norm {
                let (gw, gb) = (
                    on1(bn.weight.val().grad(&grads).unwrap()),
                    on1(bn.bias.val().grad(&grads).unwrap()),
                );
                let target = target.hidden[0].norm.as_mut().unwrap();
                target.weight = target.weight.clone().map(|w| w - gw.mul_scalar(lr));
                target.bias = target.bias.clone().map(|b| b - gb.mul_scalar(lr));
            }
            let (moved_training, moved_grads) = gradients(&moved);
            let after = second(moved_training.as_mlp().unwrap(), &moved_grads);
            let norm_of = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
            let distance: f64 = before
                .iter()
                .zip(&after)
                .map(|(a, b)| (a - b).powi(2))
                .sum::<f64>()
                .sqrt();
            let dot: f64 = before.iter().zip(&after).map(|(a, b)| a * b).sum();
            let cosine = dot / (norm_of(&before) * norm_of(&after));
            let [got_distance, got_cosine] = shift[0];
            assert!(distance > 0.0, "{norm:?}: the step moved the gradient");
            assert!(
                (got_distance - distance).abs() <= 1e-4 * distance,
                "{norm:?}: distance {got_distance} by hand {distance}"
            );
            assert!(
                (got_cosine - cosine).abs() <= 1e-5,
                "{norm:?}: cosine {got_cosine} by hand {cosine}"
            );
        }
    }
}
