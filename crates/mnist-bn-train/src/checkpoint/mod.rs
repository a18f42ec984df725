//! Checkpoints: the model, its config, the training state and the optimizer, after every epoch.
//!
//! A model's checkpoints live in `<model dir>/checkpoints/epoch-NNN/`, each holding
//! `model.bpk` (Burn's burnpack: weights and running statistics), `model.json` (the
//! [`NetConfig`]), `training.json` (the [`TrainState`]: training config and per-epoch history)
//! and `optimizer.bin` (the optimizer's record). A checkpoint is written into a hidden
//! temporary directory and renamed into place, so `epoch-NNN` is always complete; the two
//! newest are kept.

mod pytorch;

pub use pytorch::{export_pytorch, import_pytorch};

use std::fs;
use std::path::{Path, PathBuf};

use burn::optim::{ModuleOptimizer, OptimizerRecord};
use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::{Bytes, Device};
use mnist_bn_model::{Net, NetConfig};
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::files::{sync_dir, to_json};
use crate::learner::{EpochStats, TrainingConfig};

/// Version of the checkpoint layout; a reader refuses others. 2: the MLP as a list of hidden
/// blocks and an output layer (`hidden.0.linear`, ..., `output`), its config with `hidden`,
/// `activation` and `weight_init`.
pub const CHECKPOINT_FORMAT: u32 = 2;
/// How many epoch checkpoints of a model are kept.
const KEEP: usize = 2;

/// The training state saved next to the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// [`CHECKPOINT_FORMAT`] of the writer.
    pub format: u32,
    /// How the model is trained.
    pub training: TrainingConfig,
    /// Every complete epoch so far; its length is the number of epochs done.
    pub history: Vec<EpochStats>,
    /// Training batches seen so far (PyTorch's `num_batches_tracked`).
    #[serde(default)]
    pub batches_seen: u64,
}

/// A checkpoint read back.
#[derive(Debug)]
pub struct Checkpoint {
    /// The checkpoint's directory.
    pub path: PathBuf,
    /// The model's config.
    pub config: NetConfig,
    /// The model, on the device it was loaded to.
    pub model: Net,
    /// The training state.
    pub state: TrainState,
    /// The optimizer's record, when the checkpoint has one.
    pub optimizer: Option<OptimizerRecord>,
}

/// The directory of a model's checkpoints inside its output directory.
pub fn checkpoints_dir(model_dir: &Path) -> PathBuf {
    model_dir.join("checkpoints")
}

/// Writes a checkpoint of `model` after `state.history.len()` epochs into
/// `<model_dir>/checkpoints/epoch-NNN`, atomically, and prunes older ones.
pub fn save_checkpoint(
    model_dir: &Path,
    config: &NetConfig,
    model: &Net,
    optimizer: Option<&ModuleOptimizer>,
    state: &TrainState,
) -> Result<PathBuf, TrainError> {
    let root = checkpoints_dir(model_dir);
    fs::create_dir_all(&root).map_err(TrainError::io(&root))?;
    let target = root.join(format!("epoch-{:03}", state.history.len()));
    write_checkpoint_dir(&target, config, model, optimizer, state)?;
    prune(&root, state.history.len());
    Ok(target)
}

/// Writes a checkpoint into the directory `target` (replacing one that is there), atomically:
/// the files go into a hidden sibling directory that is then renamed to `target`.
pub fn write_checkpoint_dir(
    target: &Path,
    config: &NetConfig,
    model: &Net,
    optimizer: Option<&ModuleOptimizer>,
    state: &TrainState,
) -> Result<(), TrainError> {
    let root = crate::files::parent(target);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = root.join(format!(".{name}.partial-{}", std::process::id()));
    let written = write_files(&tmp, config, model, optimizer, state).and_then(|()| {
        if target.exists() {
            let old = root.join(format!(".{name}.old-{}", std::process::id()));
            fs::rename(target, &old).map_err(TrainError::io(target))?;
            let _ = fs::remove_dir_all(&old);
        }
        fs::rename(&tmp, target).map_err(TrainError::io(target))?;
        sync_dir(root);
        Ok(())
    });
    if written.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    // A file that could not be written is named by where it was going, not by the temporary
    // directory that no longer exists.
    written.map_err(|err| match err {
        TrainError::Io { path, error } if path.starts_with(&tmp) => TrainError::Io {
            path: target.join(path.strip_prefix(&tmp).unwrap_or(&path)),
            error,
        },
        other => other,
    })
}

fn write_files(
    dir: &Path,
    config: &NetConfig,
    model: &Net,
    optimizer: Option<&ModuleOptimizer>,
    state: &TrainState,
) -> Result<(), TrainError> {
    fs::create_dir_all(dir).map_err(TrainError::io(dir))?;
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        fs::write(&path, bytes)
            .and_then(|()| fs::File::open(&path)?.sync_all())
            .map_err(TrainError::io(path))
    };
    write("model.bpk", &model_bytes(model, &dir.join("model.bpk"))?)?;
    write("model.json", &to_json(config))?;
    write("training.json", &to_json(state))?;
    if let Some(optimizer) = optimizer {
        let bytes = optimizer
            .to_record()
            .into_bytes()
            .map_err(|e| TrainError::checkpoint(dir.join("optimizer.bin"), e.to_string()))?;
        write("optimizer.bin", &bytes)?;
    }
    sync_dir(dir);
    Ok(())
}

/// Serializes a model's weights and running statistics as burnpack bytes.
pub fn model_bytes(model: &Net, path_for_errors: &Path) -> Result<Vec<u8>, TrainError> {
    let mut store = BurnpackStore::from_bytes(None);
    model
        .save_into(&mut store)
        .map_err(|e| TrainError::checkpoint(path_for_errors, e.to_string()))?;
    let bytes = store
        .get_bytes()
        .map_err(|e| TrainError::checkpoint(path_for_errors, e.to_string()))?;
    Ok(bytes.to_vec())
}

/// Loads burnpack bytes into a model built from `config` on `device`, refusing any file whose
/// tensors do not match the model exactly (missing, extra or wrongly shaped).
pub fn model_from_bytes(
    config: &NetConfig,
    bytes: Vec<u8>,
    device: &Device,
    path_for_errors: &Path,
) -> Result<Net, TrainError> {
    let mut model = config.init(device);
    let mut store = BurnpackStore::from_bytes(Some(Bytes::from_bytes_vec(bytes)))
        .allow_partial(true)
        .validate(false);
    let result = model
        .load_from(&mut store)
        .map_err(|e| TrainError::checkpoint(path_for_errors, e.to_string()))?;
    let mut problems = Vec::new();
    if !result.missing.is_empty() {
        let keys: Vec<_> = result.missing.iter().map(|(k, _)| k.as_str()).collect();
        problems.push(format!("missing tensors: {}", keys.join(", ")));
    }
    if !result.unused.is_empty() {
        problems.push(format!("unexpected tensors: {}", result.unused.join(", ")));
    }
    if !result.errors.is_empty() {
        let errors: Vec<_> = result.errors.iter().map(|e| e.to_string()).collect();
        problems.push(errors.join("; "));
    }
    if !problems.is_empty() {
        return Err(TrainError::checkpoint(
            path_for_errors,
            format!(
                "does not match a model with {}: {}",
                config.norm().describe(),
                problems.join("; ")
            ),
        ));
    }
    Ok(model)
}

/// Finds the checkpoint a path names: an `epoch-NNN` directory itself, the newest one in a
/// model directory or its `checkpoints` directory, or, in a run directory that holds one
/// model, that model's newest. A run directory with several models is refused with their
/// names.
pub fn resolve_checkpoint(path: &Path) -> Result<PathBuf, TrainError> {
    if !path.exists() {
        return Err(TrainError::checkpoint(path, "does not exist"));
    }
    if let Some(found) = newest_in_model_dir(path) {
        return Ok(found);
    }
    // A run directory: its model directories, with the newest checkpoint of each (a model
    // that has not finished an epoch yet has none, but still makes the choice ambiguous).
    let mut models: Vec<(String, Option<PathBuf>)> = fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| {
                    e.path().join("model.json").is_file() || checkpoints_dir(&e.path()).is_dir()
                })
                .map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    (name, newest_in_model_dir(&e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    models.sort();
    match models.as_slice() {
        [(_, Some(found))] => Ok(found.clone()),
        [(name, None)] => Err(TrainError::checkpoint(
            path.join(name),
            "holds no complete checkpoint yet",
        )),
        [] => Err(TrainError::checkpoint(
            path,
            "holds no checkpoint (expected model.json, checkpoints/epoch-NNN directories, or a \
             run directory's model directories)",
        )),
        _ => {
            let names: Vec<&str> = models.iter().map(|(name, _)| name.as_str()).collect();
            Err(TrainError::checkpoint(
                path,
                format!(
                    "is a run directory with several models ({}); name one, e.g. {}",
                    names.join(", "),
                    path.join(names[0]).display()
                ),
            ))
        }
    }
}

/// A checkpoint directory itself, or the newest checkpoint of a model directory.
fn newest_in_model_dir(path: &Path) -> Option<PathBuf> {
    if path.join("model.json").is_file() {
        return Some(path.to_path_buf());
    }
    [checkpoints_dir(path), path.to_path_buf()]
        .iter()
        .find_map(|root| latest_checkpoint(root))
}

/// The newest complete `epoch-NNN` directory in `root`, if any.
pub fn latest_checkpoint(root: &Path) -> Option<PathBuf> {
    epochs(root)
        .into_iter()
        .max()
        .map(|n| root.join(format!("epoch-{n:03}")))
}

fn epochs(root: &Path) -> Vec<usize> {
    let Ok(entries) = fs::read_dir(root) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("model.json").is_file())
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("epoch-")?.parse().ok())
        .collect()
}

/// Removes every `epoch-NNN` checkpoint in `root`: a new run written over an old one (`--force`)
/// must not leave the old run's later epochs to be taken for its own by `--resume`.
pub(crate) fn remove_checkpoints(root: &Path) -> Result<(), TrainError> {
    for n in epochs(root) {
        let dir = root.join(format!("epoch-{n:03}"));
        fs::remove_dir_all(&dir).map_err(TrainError::io(&dir))?;
    }
    Ok(())
}

fn prune(root: &Path, newest: usize) {
    for n in epochs(root) {
        if n + KEEP <= newest {
            let _ = fs::remove_dir_all(root.join(format!("epoch-{n:03}")));
        }
    }
}

/// Reads a checkpoint (see [`resolve_checkpoint`] for what `path` may name) onto `device`.
pub fn load_checkpoint(path: &Path, device: &Device) -> Result<Checkpoint, TrainError> {
    let dir = resolve_checkpoint(path)?;
    let read_at_most = |name: &str, limit: u64| {
        let file = dir.join(name);
        read_bounded(&file, limit)
    };
    let read = |name: &str| read_at_most(name, MAX_JSON);
    // The format first: an older checkpoint's model.json may not parse as today's config.
    let state = train_state(&dir.join("training.json"), &read("training.json")?)?;
    if state.format != CHECKPOINT_FORMAT {
        return Err(TrainError::checkpoint(
            dir.join("training.json"),
            format!(
                "checkpoint format {} is not {CHECKPOINT_FORMAT} (written by another version \
                 of mnist-bn; export it to PyTorch there and import it here)",
                state.format
            ),
        ));
    }
    let config: NetConfig = from_json(&dir.join("model.json"), &read("model.json")?)?;
    config.validate().map_err(|e| {
        TrainError::checkpoint(dir.join("model.json"), format!("invalid model config: {e}"))
    })?;
    // The model is built (allocated) only if model.bpk can hold it, and weights and optimizer
    // state are bounded by what the model needs, so that a file that is not what it claims is
    // refused before it is read into memory.
    let tensor_bytes = config.tensor_elements().saturating_mul(4);
    let bpk = dir.join("model.bpk");
    let bpk_len = fs::metadata(&bpk).map_err(TrainError::io(&bpk))?.len();
    if tensor_bytes > bpk_len.saturating_add(1 << 20) {
        return Err(TrainError::checkpoint(
            bpk,
            format!(
                "holds {bpk_len} bytes, too few for the model model.json describes (up to \
                 {tensor_bytes} bytes of tensors)"
            ),
        ));
    }
    let limit = tensor_bytes.saturating_mul(2).saturating_add(1 << 20);
    let model = model_from_bytes(
        &config,
        read_at_most("model.bpk", limit)?,
        device,
        &dir.join("model.bpk"),
    )?;
    let optimizer = match dir.join("optimizer.bin") {
        file if file.exists() => {
            read_bounded(&file, limit)?;
            Some(OptimizerRecord::load(&file).map_err(|e| {
                TrainError::checkpoint(&file, format!("unreadable optimizer state: {e}"))
            })?)
        }
        _ => None,
    };
    Ok(Checkpoint {
        path: dir,
        config,
        model,
        state,
        optimizer,
    })
}

/// Largest `model.json` or `training.json` read (a long run's history is a few hundred KB).
const MAX_JSON: u64 = 16 << 20;

/// Reads `file`, refusing one larger than `limit` bytes before reading it.
fn read_bounded(file: &Path, limit: u64) -> Result<Vec<u8>, TrainError> {
    let len = fs::metadata(file).map_err(TrainError::io(file))?.len();
    if len > limit {
        return Err(TrainError::checkpoint(
            file,
            format!("is {len} bytes, more than this model's checkpoint can hold ({limit})"),
        ));
    }
    fs::read(file).map_err(TrainError::io(file))
}

/// Parses `training.json`. Checkpoints written before `momentum` existed trained with plain
/// SGD: a missing momentum reads as 0.
fn train_state(path: &Path, bytes: &[u8]) -> Result<TrainState, TrainError> {
    let mut value: serde_json::Value = from_json(path, bytes)?;
    if let Some(training) = value.get_mut("training").and_then(|t| t.as_object_mut()) {
        training
            .entry("momentum")
            .or_insert(serde_json::Value::from(0.0));
    }
    serde_json::from_value(value)
        .map_err(|e| TrainError::checkpoint(path, format!("invalid JSON: {e}")))
}

/// A checkpoint's JSON file, or an error that names it.
fn from_json<T: serde::de::DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T, TrainError> {
    serde_json::from_slice(bytes)
        .map_err(|e| TrainError::checkpoint(path, format!("invalid JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = r#"{"format": 2, "training": {"epochs": 3, "lr": 0.01, "batch_size": 64,
        "shuffle_seed": null, "seed": 0}, "history": [], "batches_seen": 0}"#;

    #[test]
    fn a_training_state_without_momentum_reads_as_plain_sgd() {
        let state = train_state(Path::new("training.json"), OLD.as_bytes()).unwrap();
        assert_eq!(state.training.momentum, 0.0);
        assert_eq!(state.training.epochs, 3);
    }

    #[test]
    fn a_saved_momentum_is_kept() {
        let with = OLD.replace(r#""seed": 0}"#, r#""seed": 0, "momentum": 0.9}"#);
        let state = train_state(Path::new("training.json"), with.as_bytes()).unwrap();
        assert_eq!(state.training.momentum, 0.9);
    }

    #[test]
    fn a_broken_training_state_names_the_file() {
        let err = train_state(Path::new("x/training.json"), b"{\"format\": 2}").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("x/training.json") && msg.contains("invalid JSON"),
            "{msg}"
        );
    }
}
