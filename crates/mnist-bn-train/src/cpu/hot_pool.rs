//! Keeping a rayon pool's other threads awake while one model trains on all of them.
//!
//! A training step on the CPU backend is a chain of small operations, of which only the split
//! matrix products ([`mnist_bn_model::flex::split`]) run on more than one thread. Between two of them
//! an idle rayon worker goes to sleep within microseconds, and each product then starts by
//! waking it (a futex round trip, tens of microseconds, ~13 per step): measured on the Intel
//! machine (`docs/performance.md`), split products with sleeping
//! workers made a two-thread epoch *slower* than a one-thread one. A [`HotPool`] keeps every
//! other worker of the current pool spinning on `rayon::yield_now` instead (with a
//! `sched_yield` between looks, so other processes still get the core), so a product's pieces
//! are taken at once; this is what OpenMP runtimes (PyTorch's threads) do by default between
//! parallel regions. It costs those cores while it lives, so the learner holds one only
//! while a model that trains alone splits its products (never for models side by side).

use std::cell::Cell;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use web_time::Instant;

/// Whether a [`HotPool`] is alive in this process: at most one is, so that spinners never run
/// nested inside one another (through `yield_now`) and two callers never wait on each other.
static ALIVE: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Whether this thread started the [`HotPool`] that is alive (so work it spreads over its
    /// pool is taken at once rather than by waking a sleeping worker).
    static HELD_HERE: Cell<bool> = const { Cell::new(false) };
}

/// `HotPool` is one per process: the crate's tests that start one take turns with this.
#[cfg(test)]
pub(crate) static TEST_TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A rayon pool of `threads` threads, for the crate's tests.
#[cfg(test)]
pub(crate) fn test_pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a rayon pool")
}

/// How long [`HotPool::start`] waits for the other workers to pick up their spinners (they are
/// idle in the app's uses, and start within microseconds) before giving up.
const START_TIMEOUT: Duration = Duration::from_millis(200);

/// While alive, the other workers of the rayon pool it was started on spin, running any job
/// the pool has. Dropping it releases them (and waits until they have).
#[derive(Debug)]
pub struct HotPool {
    stop: Arc<AtomicBool>,
    spinning: Arc<AtomicUsize>,
    /// Not `Send`: it is dropped on the thread that started it, which [`HotPool::held_here`]
    /// relies on.
    _here: PhantomData<*const ()>,
}

impl HotPool {
    /// Starts a spinner on each other worker of the current pool. `None` (and nothing started)
    /// when the calling thread is not a rayon worker, the pool has one thread, another
    /// `HotPool` is alive, or the other workers are busy and do not all start spinning within
    /// `START_TIMEOUT` (200 ms).
    pub fn start() -> Option<Self> {
        let me = rayon::current_thread_index()?;
        let others = rayon::current_num_threads().saturating_sub(1);
        if others == 0
            || ALIVE
                .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
        {
            return None;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let spinning = Arc::new(AtomicUsize::new(0));
        let (job_stop, job_spinning) = (stop.clone(), spinning.clone());
        // A broadcast job goes to each worker's own queue and cannot be stolen, so every other
        // worker gets exactly one spinner; the caller's copy returns at once when it runs.
        rayon::spawn_broadcast(move |context| {
            if context.index() == me {
                return;
            }
            job_spinning.fetch_add(1, Ordering::SeqCst);
            while !job_stop.load(Ordering::Relaxed) {
                if rayon::yield_now() != Some(rayon::Yield::Executed) {
                    // Nothing to take: let the OS run anything else that is waiting for this
                    // core (other processes on a busy machine); on an idle one this returns at
                    // once. Epochs measured the same as with a pure spin (`spin_loop`).
                    std::thread::yield_now();
                }
            }
            job_spinning.fetch_sub(1, Ordering::SeqCst);
        });
        let pool = Self {
            stop,
            spinning,
            _here: PhantomData,
        };
        // Wait outside rayon (running no job here) until every other worker spins.
        let started = Instant::now();
        while pool.spinning.load(Ordering::SeqCst) < others {
            if started.elapsed() > START_TIMEOUT {
                return None; // dropping `pool` stops the spinners that did start
            }
            std::thread::yield_now();
        }
        HELD_HERE.set(true);
        Some(pool)
    }

    /// Whether the calling thread holds a live `HotPool`: then the other workers of its pool
    /// are spinning, and work spread over the pool starts on them at once.
    pub fn held_here() -> bool {
        HELD_HERE.get()
    }
}

impl Drop for HotPool {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // A spinner that starts after this sees `stop` and leaves at once.
        while self.spinning.load(Ordering::SeqCst) > 0 {
            std::thread::yield_now();
        }
        HELD_HERE.set(false);
        ALIVE.store(false, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    use super::test_pool as pool;

    #[test]
    fn every_other_worker_spins_and_takes_the_pools_jobs() {
        let _turn = TEST_TURN.lock().unwrap();
        let pool = pool(4);
        pool.install(|| {
            let me = rayon::current_thread_index().unwrap();
            let hot = HotPool::start().expect("a pool of four");
            assert_eq!(hot.spinning.load(Ordering::SeqCst), 3);
            assert!(HotPool::held_here());
            // While the caller is busy with the first half, a spinner takes the second.
            let mut helpers = BTreeSet::new();
            for _ in 0..20 {
                let (_, helper) = rayon::join(
                    || std::thread::sleep(Duration::from_millis(2)),
                    rayon::current_thread_index,
                );
                helpers.insert(helper.unwrap());
            }
            assert!(!helpers.contains(&me), "{helpers:?}");
            // Only one at a time.
            assert!(HotPool::start().is_none());
            let spinning = hot.spinning.clone();
            drop(hot);
            assert_eq!(spinning.load(Ordering::SeqCst), 0);
            assert!(!HotPool::held_here());
            // Released: a new one starts.
            assert!(HotPool::start().is_some());
        });
    }

    #[test]
    fn nothing_to_keep_awake_on_one_thread_or_off_the_pool() {
        let _turn = TEST_TURN.lock().unwrap();
        let single = pool(1);
        assert!(single.install(|| HotPool::start().is_none()));
        assert!(
            std::thread::spawn(|| HotPool::start().is_none())
                .join()
                .unwrap()
        );
        assert!(!HotPool::held_here());
    }

    #[test]
    fn busy_workers_make_start_give_up_and_leave_nothing_running() {
        let _turn = TEST_TURN.lock().unwrap();
        let pool = pool(2);
        let release = Arc::new(AtomicBool::new(false));
        let busy = release.clone();
        // The other worker is held by a long job.
        pool.spawn(move || {
            while !busy.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        std::thread::sleep(Duration::from_millis(20));
        let started = Instant::now();
        assert!(pool.install(|| HotPool::start().is_none() && !HotPool::held_here()));
        assert!(started.elapsed() >= START_TIMEOUT);
        release.store(true, Ordering::SeqCst);
        // The late spinner saw `stop` and left: a new pool starts.
        assert!(pool.install(|| HotPool::start().is_some()));
    }
}
