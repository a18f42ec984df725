//! PyTorch interop: load a `state_dict` of the lesson's `NeuralNet`, write ours back.
//!
//! PyTorch stores linear weights as `[out, in]`, Burn as `[in, out]`: burn-store's PyTorch
//! adapters transpose them. The lesson names its layers `fc1`, `batch_norm1`, `fc2`, ...; our
//! [`Mlp`] keeps them in a list (`hidden.0.linear`, `hidden.0.norm`, ..., `output`), so the
//! stores rename layer prefixes both ways ([`layer_names`]). With layer or group norm instead
//! of batch norm the PyTorch layers are `layer_norm1`, ... (`nn.LayerNorm`) and
//! `group_norm1`, ... (`nn.GroupNorm`). Inside a layer:
//! [`TorchBatchNorm`](mnist_bn_model::TorchBatchNorm) already uses PyTorch's parameter names,
//! and the adapters rename Burn's `gamma` and `beta` of `LayerNorm` and `GroupNorm` to
//! PyTorch's `weight` and `bias`. Batch renorm has no PyTorch module, so no PyTorch name.

use std::path::Path;

use burn::store::{
    ApplyResult, BurnToPyTorchAdapter, ModuleSnapshot, PyTorchToBurnAdapter, PytorchStore,
    SafetensorsStore,
};
use burn::tensor::Device;
use mnist_bn_model::{Mlp, MlpConfig, Norm};
use safetensors::tensor::{Dtype, TensorView};

use crate::TrainError;
use crate::files::write_atomic;

/// PyTorch's batch-norm counter, which this model does not keep.
const NUM_BATCHES_TRACKED: &str = "num_batches_tracked";

/// Loads a PyTorch `state_dict` of the lesson's model (`.safetensors`, or a `.pt`/`.pth`
/// pickle) into a new [`Mlp`] built from `config` on `device`.
///
/// The file must hold exactly the model's tensors with the right shapes (PyTorch's
/// `num_batches_tracked` counters are accepted and ignored); otherwise the error lists the
/// missing, unexpected and misshapen keys, and says when the file looks like the other variant.
pub fn import_pytorch(path: &Path, config: &MlpConfig, device: &Device) -> Result<Mlp, TrainError> {
    if !path.is_file() {
        return Err(TrainError::checkpoint(path, "is not a file"));
    }
    let names = layer_names(config.norm, config.hidden.len()).map_err(|problem| {
        TrainError::checkpoint(path, format!("cannot be imported: {problem}"))
    })?;
    let mut model = config.init(device);
    let is_safetensors = path.extension().is_some_and(|e| e == "safetensors");
    check_shapes_before_reading(path, is_safetensors, &model, &names)?;
    let result = if is_safetensors {
        let mut store = SafetensorsStore::from_file(path)
            .with_from_adapter(PyTorchToBurnAdapter)
            .allow_partial(true)
            .validate(false);
        for (burn, torch) in &names {
            store = store.with_key_remapping(prefix_pattern(torch), format!("{burn}."));
        }
        model
            .load_from(&mut store)
            .map_err(|e| TrainError::checkpoint(path, e.to_string()))
    } else {
        let mut store = PytorchStore::from_file(path)
            .allow_partial(true)
            .validate(false);
        for (burn, torch) in &names {
            store = store.with_key_remapping(prefix_pattern(torch), format!("{burn}."));
        }
        model
            .load_from(&mut store)
            .map_err(|e| TrainError::checkpoint(path, e.to_string()))
    }?;
    check_applied(&result, &names, config.norm, path)?;
    Ok(model)
}

/// Largest safetensors header read (the format's own limit is 100 MB; ours is a few KB).
const MAX_HEADER: u64 = 1 << 20;

/// Compares the shape of every tensor the file declares for one of `model`'s parameters with
/// the parameter's, from the file's metadata alone, before any tensor data is read: a file
/// that claims a 16 GiB tensor (or a zip entry that would inflate to gigabytes) is refused
/// without allocating it. Tensors of no parameter are left to [`check_applied`] (their data is
/// never read).
fn check_shapes_before_reading(
    path: &Path,
    is_safetensors: bool,
    model: &Mlp,
    names: &[(String, String)],
) -> Result<(), TrainError> {
    let declared = if is_safetensors {
        safetensors_shapes(path)?
    } else {
        let reader = pytorch_reader::PytorchReader::new(path)
            .map_err(|e| TrainError::checkpoint(path, format!("not a readable .pt file: {e}")))?;
        reader
            .tensors()
            .iter()
            .map(|(key, t)| (key.clone(), t.shape().to_vec()))
            .collect()
    };
    let expected: std::collections::HashMap<String, Vec<usize>> = model
        .collect(None, Some(Box::new(BurnToPyTorchAdapter)), false)
        .into_iter()
        .map(|t| (torch_key(&t.name, names), t.shape.to_vec()))
        .collect();
    let mut wrong: Vec<String> = declared
        .iter()
        .filter_map(|(key, shape)| {
            let want = expected.get(key)?;
            (want != shape).then(|| format!("{key} is {shape:?}, expected {want:?}"))
        })
        .collect();
    if wrong.is_empty() {
        return Ok(());
    }
    wrong.sort();
    Err(TrainError::checkpoint(
        path,
        format!(
            "not a state_dict of this model (nothing read): {}",
            wrong.join("; ")
        ),
    ))
}

/// The shapes a safetensors file declares, from its header alone.
fn safetensors_shapes(path: &Path) -> Result<Vec<(String, Vec<usize>)>, TrainError> {
    use std::io::Read;
    let bad = |problem: String| TrainError::checkpoint(path, problem);
    let mut file = std::fs::File::open(path).map_err(TrainError::io(path))?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len)
        .map_err(|_| bad("not a safetensors file: shorter than its header".into()))?;
    let len = u64::from_le_bytes(len);
    if len > MAX_HEADER {
        return Err(bad(format!(
            "not a safetensors file of this model: a {len}-byte header"
        )));
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header)
        .map_err(|_| bad("not a safetensors file: its header is cut short".into()))?;
    let header: std::collections::BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&header)
            .map_err(|e| bad(format!("not a safetensors file: header: {e}")))?;
    Ok(header
        .into_iter()
        .filter(|(key, _)| key != "__metadata__")
        .map(|(key, info)| {
            let shape = info["shape"]
                .as_array()
                .map(|dims| {
                    dims.iter()
                        .map(|d| d.as_u64().map_or(usize::MAX, |d| d as usize))
                        .collect()
                })
                .unwrap_or_default();
            (key, shape)
        })
        .collect())
}

/// The PyTorch name of the lesson's norm layers with `norm` (less the layer's number): `None`
/// without a norm.
fn torch_norm(norm: Norm) -> Option<&'static str> {
    match norm {
        Norm::Batch => Some("batch_norm"),
        Norm::Layer => Some("layer_norm"),
        Norm::Group { .. } => Some("group_norm"),
        Norm::None | Norm::BatchRenorm(_) => None,
    }
}

/// The lesson's PyTorch name of each layer of an [`Mlp`] with `norm` and `depth` hidden
/// layers, as `(our path, PyTorch name)`: `hidden.{i}.linear` is `fc{i+1}`, `hidden.{i}.norm`
/// is `batch_norm{i+1}` (`hidden.{i}.layer_norm` is `layer_norm{i+1}`,
/// `hidden.{i}.group_norm` is `group_norm{i+1}`), and `output` is the last `fc`. Batch renorm
/// has no PyTorch twin: an error says so.
fn layer_names(norm: Norm, depth: usize) -> Result<Vec<(String, String)>, String> {
    if let Norm::BatchRenorm(_) = norm {
        return Err("PyTorch has no batch renormalization module to hold batch renorm".into());
    }
    let mut names = Vec::with_capacity(2 * depth + 1);
    for i in 0..depth {
        names.push((format!("hidden.{i}.linear"), format!("fc{}", i + 1)));
        // Every norm's field is named even where the model has none, so that a file of
        // another norm reads as unexpected tensors under their PyTorch names.
        for (field, torch) in [
            ("norm", "batch_norm"),
            ("layer_norm", "layer_norm"),
            ("group_norm", "group_norm"),
        ] {
            names.push((format!("hidden.{i}.{field}"), format!("{torch}{}", i + 1)));
        }
    }
    names.push(("output".to_string(), format!("fc{}", depth + 1)));
    Ok(names)
}

/// A regex matching the layer `name` at the start of a tensor key (`^fc1\.`).
fn prefix_pattern(name: &str) -> String {
    format!("^{}\\.", name.replace('.', "\\."))
}

/// A tensor key with its layer named as PyTorch names it (keys of no layer stay as they are),
/// and Burn's `gamma` and `beta` of layer and group norm as PyTorch's `weight` and `bias`.
fn torch_key(key: &str, names: &[(String, String)]) -> String {
    names
        .iter()
        .find_map(|(burn, torch)| {
            let rest = key.strip_prefix(burn.as_str())?;
            let rest = match rest {
                ".gamma" if !torch.starts_with("batch_norm") => ".weight",
                ".beta" if !torch.starts_with("batch_norm") => ".bias",
                rest if rest.starts_with('.') => rest,
                _ => return None,
            };
            Some(format!("{torch}{rest}"))
        })
        .unwrap_or_else(|| key.to_string())
}

fn check_applied(
    result: &ApplyResult,
    names: &[(String, String)],
    norm: Norm,
    path: &Path,
) -> Result<(), TrainError> {
    let missing: Vec<String> = result
        .missing
        .iter()
        .map(|(k, _)| torch_key(k, names))
        .collect();
    let unexpected: Vec<String> = result
        .unused
        .iter()
        .filter(|k| !k.ends_with(NUM_BATCHES_TRACKED))
        .map(|k| torch_key(k, names))
        .collect();
    let errors: Vec<String> = result.errors.iter().map(|e| e.to_string()).collect();
    if missing.is_empty() && unexpected.is_empty() && errors.is_empty() {
        return Ok(());
    }
    let mut problems = Vec::new();
    if !missing.is_empty() {
        problems.push(format!("missing tensors: {}", missing.join(", ")));
    }
    if !unexpected.is_empty() {
        problems.push(format!("unexpected tensors: {}", unexpected.join(", ")));
    }
    problems.extend(errors);
    // Which model the file's tensors look like: the norm whose layers it holds, or none.
    let file_keys: Vec<String> = unexpected
        .iter()
        .cloned()
        .chain(
            result
                .applied
                .iter()
                .map(|k| torch_key(k, names))
                .filter(|k| !missing.contains(k)),
        )
        .collect();
    let looks_like = [
        ("batch_norm", "batchnorm", "the batch-norm model"),
        ("layer_norm", "layernorm", "the layer-norm model"),
        ("group_norm", "groupnorm", "the group-norm model"),
    ]
    .into_iter()
    .find(|(prefix, _, _)| file_keys.iter().any(|k| k.starts_with(prefix)));
    let hint = match looks_like {
        Some((prefix, _, _)) if Some(prefix) == torch_norm(norm) => String::new(),
        None if norm == Norm::None => String::new(),
        Some((_, name, what)) => format!(" (this looks like {what}'s weights: use --model {name})"),
        None => " (this looks like the plain model's weights: use --model plain)".to_string(),
    };
    Err(TrainError::checkpoint(
        path,
        format!(
            "not a state_dict of the lesson's MLP with {}: {}{hint}",
            norm.describe(),
            problems.join("; ")
        ),
    ))
}

/// Writes `model` as a PyTorch `state_dict` in safetensors format (atomically), with the
/// lesson's names and layouts: `[out, in]` linear weights, batch-norm `weight`, `bias`,
/// `running_mean`, `running_var`, and `num_batches_tracked` set to `num_batches_tracked`
/// (this model does not count batches; pass what the training history implies); layer and
/// group norm as `nn.LayerNorm`'s and `nn.GroupNorm`'s `weight` and `bias`. A model with
/// batch renorm is refused (PyTorch has no such module).
///
/// `model.load_state_dict(safetensors.torch.load_file(path))` then works in the lesson's code.
pub fn export_pytorch(
    model: &Mlp,
    path: &Path,
    num_batches_tracked: i64,
) -> Result<(), TrainError> {
    let err = |e: &dyn std::fmt::Display| TrainError::checkpoint(path, e.to_string());
    let names = layer_names(model.norm(), model.hidden.len()).map_err(|problem| {
        TrainError::Invalid(format!(
            "a model with batch renorm cannot be exported ({problem}); nothing written to {}",
            path.display()
        ))
    })?;
    let mut store = SafetensorsStore::from_bytes(None).with_to_adapter(BurnToPyTorchAdapter);
    for (burn, torch) in &names {
        store = store.with_key_remapping(prefix_pattern(burn), format!("{torch}."));
    }
    model.save_into(&mut store).map_err(|e| err(&e))?;
    let bytes = store.get_bytes().map_err(|e| err(&e))?;
    let parsed = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| err(&e))?;
    let counter = num_batches_tracked.to_le_bytes();
    let mut tensors: Vec<(String, TensorView<'_>)> = parsed
        .tensors()
        .into_iter()
        .filter(|(name, _)| !name.ends_with(".training"))
        .collect();
    for (_, layer) in names.iter().filter(|(burn, _)| burn.ends_with(".norm")) {
        if tensors
            .iter()
            .any(|(name, _)| name.starts_with(&format!("{layer}.")))
        {
            let view = TensorView::new(Dtype::I64, Vec::new(), &counter).map_err(|e| err(&e))?;
            tensors.push((format!("{layer}.{NUM_BATCHES_TRACKED}"), view));
        }
    }
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let metadata = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
    let out = safetensors::serialize(tensors, Some(metadata)).map_err(|e| err(&e))?;
    write_atomic(path, &out)
}
