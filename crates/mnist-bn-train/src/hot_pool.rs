//! Keeping a rayon pool's other threads awake while one model trains on all of them.
//!
//! A training step on the CPU backend is a chain of small operations, of which only the split
//! matrix products ([`mnist_bn_model::split`]) run on more than one thread. Between two of them
//! an idle rayon worker goes to sleep within microseconds, and each product then starts by
//! waking it (a futex round trip, tens of microseconds, ~13 per step): measured on the Intel
//! machine (ARCHITECTURE.md, "Threads on the CPU backend"), split products with sleeping
//! workers made a two-thread epoch *slower* than a one-thread one. A [`HotPool`] keeps every
//! other worker of the current pool spinning on `rayon::yield_now` instead, so a product's
//! pieces are taken at once; this is what OpenMP runtimes (PyTorch's threads) do by default
//! between parallel regions. It costs those cores while it lives, so it is held only while one
//! model trains on the whole pool, never when models train side by side.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// While alive, the other workers of the rayon pool it was started on spin, running any job
/// the pool has. Dropping it releases them (and waits until they have).
#[derive(Debug)]
pub struct HotPool {
    stop: Arc<AtomicBool>,
    spinning: Arc<AtomicUsize>,
}

impl HotPool {
    /// Starts a spinner on each other worker of the current pool. `None` when the calling
    /// thread is not a rayon worker (the spinners could not be told apart from the caller's own
    /// work) or the pool has one thread.
    pub fn start() -> Option<Self> {
        let me = rayon::current_thread_index()?;
        let others = rayon::current_num_threads().saturating_sub(1);
        if others == 0 {
            return None;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let spinning = Arc::new(AtomicUsize::new(0));
        for _ in 0..others {
            let (stop, spinning) = (stop.clone(), spinning.clone());
            rayon::spawn(move || {
                // Only another worker can take this job: the caller waits below without
                // running rayon jobs. The check keeps that promise checked.
                debug_assert_ne!(rayon::current_thread_index(), Some(me));
                spinning.fetch_add(1, Ordering::SeqCst);
                while !stop.load(Ordering::Relaxed) {
                    if rayon::yield_now() != Some(rayon::Yield::Executed) {
                        std::hint::spin_loop();
                    }
                }
                spinning.fetch_sub(1, Ordering::SeqCst);
            });
        }
        // Wait (outside rayon, so that no spinner lands on this thread) until every spinner
        // runs: from then on the pool's queues hold none of them.
        while spinning.load(Ordering::SeqCst) < others {
            std::thread::yield_now();
        }
        Some(Self { stop, spinning })
    }
}

impl Drop for HotPool {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        while self.spinning.load(Ordering::SeqCst) > 0 {
            std::thread::yield_now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spins_on_the_other_workers_runs_their_jobs_and_stops() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        pool.install(|| {
            let hot = HotPool::start().expect("a pool of three");
            assert_eq!(hot.spinning.load(Ordering::SeqCst), 2);
            // Parallel work still completes (the spinners take it).
            let (a, b) = rayon::join(
                || (0..1000u64).sum::<u64>(),
                || (1000..2000u64).sum::<u64>(),
            );
            assert_eq!(a + b, (0..2000).sum::<u64>());
            let spinning = hot.spinning.clone();
            drop(hot);
            assert_eq!(spinning.load(Ordering::SeqCst), 0);
        });
        // One thread, or not on a worker: nothing to keep awake.
        let single = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        assert!(single.install(HotPool::start).is_none());
        assert!(std::thread::spawn(HotPool::start).join().unwrap().is_none());
    }
}
