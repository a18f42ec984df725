//! End-to-end tests: the real `mnist-bn` binary on real MNIST (small subsets), and the data
//! shipped with the project.

mod util;

mod claims;
mod data;
mod errors;
mod faults;
#[cfg(feature = "wgpu")]
mod gpu;
mod interop;
mod lab;
mod lesson;
#[cfg(unix)]
mod permissions;
mod predict;
mod resume;
