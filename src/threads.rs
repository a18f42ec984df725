//! How the CPU backend spends the threads: settings the app makes once, at start-up, before any
//! tensor work (also applied by `benches/ops.rs`, so that the bench shows their effect).

/// gemm's threading threshold (`m · n_chunk · k_chunk` of a block below which a product runs
/// on one thread), as the app sets it; `MNIST_BN_GEMM_THRESHOLD` overrides it.
#[cfg(feature = "flex")]
pub const GEMM_THREADING_THRESHOLD: usize = usize::MAX;

/// Applies the policy.
pub fn apply_policy() {
    #[cfg(feature = "flex")]
    gemm_common::gemm::set_threading_threshold(gemm_threshold());
}

#[cfg(feature = "flex")]
fn gemm_threshold() -> usize {
    std::env::var("MNIST_BN_GEMM_THRESHOLD")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(GEMM_THREADING_THRESHOLD)
}

/// The gemm threshold in force, for printouts.
#[allow(dead_code)] // used by the bench only
pub fn gemm_threshold_label() -> String {
    #[cfg(feature = "flex")]
    {
        match gemm_common::gemm::get_threading_threshold() {
            usize::MAX => "never".to_string(),
            n => n.to_string(),
        }
    }
    #[cfg(not(feature = "flex"))]
    {
        "not used".to_string()
    }
}
