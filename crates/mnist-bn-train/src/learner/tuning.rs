//! How the learner uses its device: the speed decisions, made once where the backend is chosen.

use std::fmt;

/// How a [`Learner`](crate::Learner) uses its device: four decisions about speed, made once
/// where the backend is chosen (the app builds it from the backend and its `MNIST_BN_*`
/// switches), taken by the learner in one call ([`Learner::with_tuning`](crate::Learner::with_tuning))
/// and carried by [`LessonOptions`](crate::LessonOptions) and
/// [`LabOptions`](crate::lab::LabOptions) as one field. The default is the plain loop: every
/// loss read at once, batches built on the host, one thread per model, Burn's SGD.
///
/// None of them changes what is computed; only `parallel_step` changes float rounding (the
/// forward products add their pieces' sums). What each gains, and on which machine, is measured
/// in the project's `docs/performance.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceTuning {
    /// Read the batch losses to the host every this many batches instead of after each one
    /// (`fit` only; 1 reads each loss before its backward pass). Each read waits for the device
    /// to finish everything queued; on a GPU, reading in groups lets it run ahead of the host.
    /// The numbers are the same either way; what changes on divergence is that the steps after
    /// the first non-finite loss of a group are taken before it is seen (the stop still names
    /// its exact batch, and the model of a diverged run is not kept). At least 1.
    pub loss_reads_every: usize,
    /// Upload the training set to the device once per `fit` and gather each batch there
    /// (`Batches::on_device`) instead of building it on the host. The values are the same; on a
    /// GPU it saves an upload of 200 KB per batch, for 4 bytes per pixel of device memory
    /// (188 MB for MNIST's training set).
    pub data_on_device: bool,
    /// Spread each step of a model that `fit` trains alone over every thread of the rayon pool
    /// it runs on, when that pool has more than one thread and the model is an MLP whose
    /// products split at the batch size: its products are split into independent pieces and
    /// the pool's other threads kept spinning while it trains (`cpu::HotPool`; one model at a
    /// time per process, a second `fit` meanwhile trains as without it). Made for Burn's flex
    /// backend, which runs the pieces on separate threads; other backends would only pay for
    /// them. Needs the crate's `flex` feature (ignored without it).
    pub parallel_step: bool,
    /// Take plain SGD's update on the host, one pass over each parameter's values
    /// (`cpu::HostSgd`: shared by the pool's threads while the parallel step keeps them
    /// spinning, else on the step's thread), instead of with Burn's tensor operations. On flex
    /// the weights are the same to the bit. For CPU backends, whose tensors live in host memory
    /// (flex hands them over without a copy); on a GPU it would move every parameter to the
    /// host and back each step. With a momentum the learner keeps Burn's SGD either way. Needs
    /// the crate's `flex` feature (ignored without it).
    pub host_sgd: bool,
}

impl Default for DeviceTuning {
    fn default() -> Self {
        Self {
            loss_reads_every: 1,
            data_on_device: false,
            parallel_step: false,
            host_sgd: false,
        }
    }
}

impl fmt::Display for DeviceTuning {
    /// One line per decision, as `mnist-bn bench` prints them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on_off = |on: bool| if on { "on" } else { "off" };
        match self.loss_reads_every {
            1 => writeln!(f, "loss reads: every batch")?,
            n => writeln!(f, "loss reads: every {n} batches")?,
        }
        writeln!(f, "data on device: {}", on_off(self.data_on_device))?;
        writeln!(
            f,
            "parallel step: {}",
            if self.parallel_step {
                "on (a model's products split over the pool's threads, the others spinning)"
            } else {
                "off"
            }
        )?;
        write!(
            f,
            "SGD update: {}",
            if self.host_sgd {
                "on the host, one pass per parameter (spread over the pool while its workers spin)"
            } else {
                "Burn's tensor operations"
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_the_plain_loop_and_prints_every_decision() {
        let plain = DeviceTuning::default();
        assert_eq!(plain.loss_reads_every, 1);
        assert!(!plain.data_on_device && !plain.parallel_step && !plain.host_sgd);
        let text = DeviceTuning {
            loss_reads_every: 16,
            host_sgd: true,
            ..plain
        }
        .to_string();
        assert_eq!(text.lines().count(), 4);
        assert!(text.contains("every 16 batches"), "{text}");
        assert!(
            plain.to_string().contains("loss reads: every batch\n"),
            "{plain}"
        );
        assert!(text.contains("data on device: off"), "{text}");
        assert!(text.contains("parallel step: off"), "{text}");
        assert!(text.contains("SGD update: on the host"), "{text}");
    }
}
