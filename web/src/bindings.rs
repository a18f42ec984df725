//! The session as JavaScript sees it (wasm-bindgen): `new Session(bn, plain)` on the CPU, or
//! `await Session.webgpu(bn, plain)` on the browser's WebGPU device; then `setTrainingData`,
//! `start`, `train`, `predict`, `logits` for the lesson, and `setTestData`, `playgroundPresets`,
//! `playgroundStart`, `playgroundTrain`, `playgroundPitfall` for the playground (whose settings
//! and reports cross as JSON). Every call that reads from the device is async (a WebGPU device
//! cannot be read without yielding to the browser); the worker makes one call at a time, and a
//! call made while another is under way is refused. Errors become JavaScript `Error`s with the
//! session's message.

use std::cell::{Ref, RefCell, RefMut};

#[cfg(feature = "webgpu")]
use burn::tensor::Device;
use wasm_bindgen::prelude::*;

use crate::WebError;
use crate::playground::{PITFALL_BATCHES, Settings, presets};
use crate::session;

fn js(error: WebError) -> JsError {
    JsError::new(&error.to_string())
}

/// `value` as JSON, for JavaScript's `JSON.parse`.
fn json(value: &impl serde::Serialize) -> Result<String, JsError> {
    serde_json::to_string(value).map_err(|e| JsError::new(&e.to_string()))
}

/// The worker's session (see `session::Session`).
#[wasm_bindgen]
#[derive(Debug)]
pub struct Session(RefCell<session::Session>);

const BUSY: &str = "the session is busy with another call (the worker makes one at a time)";

impl Session {
    fn get(&self) -> Result<Ref<'_, session::Session>, JsError> {
        self.0.try_borrow().map_err(|_| JsError::new(BUSY))
    }

    fn get_mut(&self) -> Result<RefMut<'_, session::Session>, JsError> {
        self.0.try_borrow_mut().map_err(|_| JsError::new(BUSY))
    }
}

// The async calls hold the session's borrow while they wait for the device: a call made
// meanwhile is refused with `BUSY` (try_borrow), never a panic, and the worker makes one call
// at a time anyway.
#[allow(clippy::await_holding_refcell_ref)]
#[wasm_bindgen]
impl Session {
    /// Loads the shipped weights (the bytes of `batchnorm.bpk` and `plain.bpk`) on the CPU
    /// (Burn's flex backend). A panic, should one happen, is written to the console before
    /// WebAssembly stops.
    #[wasm_bindgen(constructor)]
    pub fn new(batchnorm: Vec<u8>, plain: Vec<u8>) -> Result<Session, JsError> {
        console_error_panic_hook::set_once();
        session::Session::new(batchnorm, plain)
            .map(|s| Session(RefCell::new(s)))
            .map_err(js)
    }

    /// Loads the shipped weights on the browser's WebGPU device (Burn's wgpu backend), set up
    /// without blocking; fails when the browser has no WebGPU adapter. Only in the build with
    /// the `webgpu` feature (`pkg-webgpu/`).
    #[cfg(feature = "webgpu")]
    pub async fn webgpu(batchnorm: Vec<u8>, plain: Vec<u8>) -> Result<Session, JsError> {
        console_error_panic_hook::set_once();
        let device = Device::wgpu_options()
            .init_async()
            .await
            .map_err(|e| JsError::new(&format!("cannot set up WebGPU: {e}")))?;
        session::Session::on_device(batchnorm, plain, device, "GPU (WebGPU, Burn's wgpu)")
            .map(|s| Session(RefCell::new(s)))
            .map_err(js)
    }

    /// Which backend runs, as the page shows it.
    pub fn backend(&self) -> Result<String, JsError> {
        Ok(self.get()?.backend().to_string())
    }

    /// Decodes the training set (gzip IDX bytes); returns its number of images.
    #[wasm_bindgen(js_name = setTrainingData)]
    pub fn set_training_data(&self, images: &[u8], labels: &[u8]) -> Result<usize, JsError> {
        self.get_mut()?
            .set_training_data(images, labels)
            .map_err(js)
    }

    /// Decodes the test set (gzip IDX bytes), which the playground measures on; returns its
    /// number of images.
    #[wasm_bindgen(js_name = setTestData)]
    pub fn set_test_data(&self, images: &[u8], labels: &[u8]) -> Result<usize, JsError> {
        self.get_mut()?.set_test_data(images, labels).map_err(js)
    }

    /// The playground's presets as JSON: `{presets: [{id, title, about, settings}], defaults}`.
    #[wasm_bindgen(js_name = playgroundPresets)]
    pub fn playground_presets(&self) -> Result<String, JsError> {
        let presets = presets();
        json(&serde_json::json!({
            "defaults": presets[0].settings,
            "presets": presets,
        }))
    }

    /// Starts the playground's networks on settings given as JSON; returns, as JSON, the steps
    /// the run will take (`total`), the steps between measurements (`measureEvery`) and the
    /// networks' names (`names`). Settings that do not parse or are out of range give an error
    /// naming them.
    #[wasm_bindgen(js_name = playgroundStart)]
    pub fn playground_start(&self, settings: &str) -> Result<String, JsError> {
        let settings: Settings = serde_json::from_str(settings)
            .map_err(|e| JsError::new(&format!("the playground's settings: {e}")))?;
        let total = self.get_mut()?.playground_start(&settings).map_err(js)?;
        let names = settings.runs().map(|run| run.name);
        json(&serde_json::json!({
            "total": total,
            "measureEvery": settings.measure_every(),
            "names": names,
        }))
    }

    /// Takes up to `steps` steps of both networks; returns what happened as JSON (`Tick`).
    #[wasm_bindgen(js_name = playgroundTrain)]
    pub async fn playground_train(&self, steps: usize) -> Result<String, JsError> {
        let mut session = self.get_mut()?;
        let tick = session.playground().map_err(js)?.train_async(steps).await;
        json(&tick.map_err(js)?)
    }

    /// Whether both playground networks have finished.
    #[wasm_bindgen(js_name = playgroundFinished)]
    pub fn playground_finished(&self) -> Result<bool, JsError> {
        Ok(self.get_mut()?.playground().is_ok_and(|p| p.finished()))
    }

    /// The pitfall as JSON: `{batches, nets: [{train, eval}, {train, eval}]}`.
    #[wasm_bindgen(js_name = playgroundPitfall)]
    pub async fn playground_pitfall(&self) -> Result<String, JsError> {
        let mut session = self.get_mut()?;
        let nets = session.playground().map_err(js)?.pitfall_async().await;
        json(&serde_json::json!({ "batches": PITFALL_BATCHES, "nets": nets.map_err(js)? }))
    }

    /// Starts a fresh run; returns the number of batches it will take.
    pub fn start(&self, epochs: usize, limit: usize, seed: u64) -> Result<usize, JsError> {
        self.get_mut()?.start(epochs, limit, seed).map_err(js)
    }

    /// Trains up to `batches` batches; returns their losses, `[bn, plain, bn, plain, …]`.
    pub async fn train(&self, batches: usize) -> Result<Vec<f64>, JsError> {
        let losses = self.get_mut()?.train_async(batches).await.map_err(js)?;
        Ok(losses.into_iter().flatten().collect())
    }

    /// `[batches done, batches in all, epoch, images/s per model]`, or nothing before a run.
    pub fn progress(&self) -> Result<Option<Vec<f64>>, JsError> {
        Ok(self.get()?.progress().map(|p| {
            vec![
                p.batches_done as f64,
                p.batches_total as f64,
                p.epoch as f64,
                p.images_per_sec,
            ]
        }))
    }

    /// Whether the page's own models answer (a run was started).
    pub fn trained(&self) -> Result<bool, JsError> {
        Ok(self.get()?.trained())
    }

    /// A grey picture's digit as the models see it and their probabilities: 784 pixels, then
    /// ten each for batch norm in eval mode, batch norm in train mode, and plain.
    pub async fn predict(
        &self,
        width: u32,
        height: u32,
        grey: Vec<u8>,
    ) -> Result<Option<Vec<f32>>, JsError> {
        let session = self.get()?;
        let Some(p) = session.predict_async(width, height, grey).await else {
            return Ok(None);
        };
        let mut out: Vec<f32> = p.pixels.iter().map(|&v| f32::from(v)).collect();
        out.extend(p.batchnorm_eval);
        out.extend(p.batchnorm_train);
        out.extend(p.plain);
        Ok(Some(out))
    }

    /// Eval-mode logits of `batchnorm` or `plain` for whole 784-pixel images.
    pub async fn logits(&self, name: String, pixels: Vec<u8>) -> Result<Vec<f32>, JsError> {
        let session = self.get()?;
        session.logits_async(&name, &pixels).await.map_err(js)
    }
}
