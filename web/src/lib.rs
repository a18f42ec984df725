//! The lesson and the lab in the browser: the lesson's two MLPs, and the playground's two
//! networks on any of the lab's settings ([`playground`]), trained live in a Web Worker on the
//! same model, data and training-step code as the `mnist-bn` CLI, compiled to WebAssembly with
//! Burn's CPU backend (flex). [`Session`] is the worker's state; in WebAssembly the `bindings`
//! module hands it to JavaScript. The page itself is in `web/www/`; `cargo run -p xtask -- web`
//! builds and serves it.
#![warn(missing_docs)]

#[cfg(target_arch = "wasm32")]
mod bindings;
mod error;
pub mod playground;
mod session;

pub use error::WebError;
pub use session::{MODEL_NAMES, Prediction, Progress, Session};
