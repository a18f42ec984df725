//! The session as JavaScript sees it (wasm-bindgen): `new Session(bn, plain)`, then
//! `setTrainingData`, `start`, `train`, `predict`, `logits` for the lesson, and `setTestData`,
//! `playgroundPresets`, `playgroundStart`, `playgroundTrain`, `playgroundPitfall` for the
//! playground (whose settings and reports cross as JSON). Errors become JavaScript `Error`s with
//! the session's message.

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
pub struct Session(session::Session);

#[wasm_bindgen]
impl Session {
    /// Loads the shipped weights (the bytes of `batchnorm.bpk` and `plain.bpk`). A panic, should
    /// one happen, is written to the console before WebAssembly stops.
    #[wasm_bindgen(constructor)]
    pub fn new(batchnorm: Vec<u8>, plain: Vec<u8>) -> Result<Session, JsError> {
        console_error_panic_hook::set_once();
        session::Session::new(batchnorm, plain)
            .map(Session)
            .map_err(js)
    }

    /// Decodes the training set (gzip IDX bytes); returns its number of images.
    #[wasm_bindgen(js_name = setTrainingData)]
    pub fn set_training_data(&mut self, images: &[u8], labels: &[u8]) -> Result<usize, JsError> {
        self.0.set_training_data(images, labels).map_err(js)
    }

    /// Decodes the test set (gzip IDX bytes), which the playground measures on; returns its
    /// number of images.
    #[wasm_bindgen(js_name = setTestData)]
    pub fn set_test_data(&mut self, images: &[u8], labels: &[u8]) -> Result<usize, JsError> {
        self.0.set_test_data(images, labels).map_err(js)
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
    pub fn playground_start(&mut self, settings: &str) -> Result<String, JsError> {
        let settings: Settings = serde_json::from_str(settings)
            .map_err(|e| JsError::new(&format!("the playground's settings: {e}")))?;
        let total = self.0.playground_start(&settings).map_err(js)?;
        let names = settings.runs().map(|run| run.name);
        json(&serde_json::json!({
            "total": total,
            "measureEvery": settings.measure_every(),
            "names": names,
        }))
    }

    /// Takes up to `steps` steps of both networks; returns what happened as JSON (`Tick`).
    #[wasm_bindgen(js_name = playgroundTrain)]
    pub fn playground_train(&mut self, steps: usize) -> Result<String, JsError> {
        let tick = self
            .0
            .playground()
            .and_then(|p| p.train(steps))
            .map_err(js)?;
        json(&tick)
    }

    /// Whether both playground networks have finished.
    #[wasm_bindgen(js_name = playgroundFinished)]
    pub fn playground_finished(&mut self) -> bool {
        self.0.playground().is_ok_and(|p| p.finished())
    }

    /// The pitfall as JSON: `{batches, nets: [{train, eval}, {train, eval}]}`.
    #[wasm_bindgen(js_name = playgroundPitfall)]
    pub fn playground_pitfall(&mut self) -> Result<String, JsError> {
        let nets = self.0.playground().and_then(|p| p.pitfall()).map_err(js)?;
        json(&serde_json::json!({ "batches": PITFALL_BATCHES, "nets": nets }))
    }

    /// Starts a fresh run; returns the number of batches it will take.
    pub fn start(&mut self, epochs: usize, limit: usize, seed: u64) -> Result<usize, JsError> {
        self.0.start(epochs, limit, seed).map_err(js)
    }

    /// Trains up to `batches` batches; returns their losses, `[bn, plain, bn, plain, …]`.
    pub fn train(&mut self, batches: usize) -> Result<Vec<f64>, JsError> {
        let losses = self.0.train(batches).map_err(js)?;
        Ok(losses.into_iter().flatten().collect())
    }

    /// `[batches done, batches in all, epoch, images/s per model]`, or nothing before a run.
    pub fn progress(&self) -> Option<Vec<f64>> {
        self.0.progress().map(|p| {
            vec![
                p.batches_done as f64,
                p.batches_total as f64,
                p.epoch as f64,
                p.images_per_sec,
            ]
        })
    }

    /// Whether the page's own models answer (a run was started).
    pub fn trained(&self) -> bool {
        self.0.trained()
    }

    /// A grey picture's digit as the models see it and their probabilities: 784 pixels, then
    /// ten each for batch norm in eval mode, batch norm in train mode, and plain.
    pub fn predict(&self, width: u32, height: u32, grey: Vec<u8>) -> Option<Vec<f32>> {
        let p = self.0.predict(width, height, grey)?;
        let mut out: Vec<f32> = p.pixels.iter().map(|&v| f32::from(v)).collect();
        out.extend(p.batchnorm_eval);
        out.extend(p.batchnorm_train);
        out.extend(p.plain);
        Some(out)
    }

    /// Eval-mode logits of `batchnorm` or `plain` for whole 784-pixel images.
    pub fn logits(&self, name: &str, pixels: &[u8]) -> Result<Vec<f32>, JsError> {
        self.0.logits(name, pixels).map_err(js)
    }
}
