//! The lesson in the browser: the two MLPs trained live in a Web Worker, on the same model,
//! data and training-step code as the `mnist-bn` CLI, compiled to WebAssembly with Burn's CPU
//! backend (flex). [`Session`] is the worker's state; in WebAssembly the `bindings` module hands
//! it to JavaScript. The page itself is in `web/www/`; `cargo run -p xtask -- web` builds and
//! serves it.
#![warn(missing_docs)]

#[cfg(target_arch = "wasm32")]
mod bindings;
mod session;

pub use session::{MODEL_NAMES, Prediction, Progress, Session, WebError};
