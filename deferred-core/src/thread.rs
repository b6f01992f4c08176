//! `defer_to_thread`: blocking work on a thread pool, its result as a Deferred (Twisted's
//! `deferToThread`).
//!
//! Inside a tokio runtime (with the `tokio` feature) the work goes to tokio's blocking pool;
//! otherwise to a small pool of std threads, started on first use, that grows to
//! [`POOL_THREADS`] workers and lets idle ones exit after a minute.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, Location, catch_unwind};
use std::sync::{Condvar, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use crate::bounds::FromFailure;
use crate::{Deferred, Failure};

/// The most threads the std pool runs at once (Twisted's reactor pool has 10 too).
pub const POOL_THREADS: usize = 10;

/// How long an idle pool thread waits for work before it exits.
const IDLE_EXIT: Duration = Duration::from_secs(60);

/// Runs blocking `work` on a pool thread and returns a Deferred of its result.
///
/// The Deferred fires on the pool thread, so callbacks added before it fires run there; a
/// panic in `work` becomes a [`Failure`]. Cancelling the Deferred fails it with
/// [`Cancelled`](crate::Cancelled) at once; the work itself runs to the end and its result is
/// dropped (a thread cannot be stopped from outside).
///
/// The std pool runs at most [`POOL_THREADS`] jobs at once; the others wait their turn. So a
/// job that blocks on the result of another job (a `wait` on a nested `defer_to_thread`) holds
/// a worker while it waits: with every worker so held, the jobs they wait on never start
/// (Twisted's pool has the same limit). Add a step to the nested Deferred instead of waiting
/// on it. Jobs still queued when the process exits never run, and their Deferreds never fire;
/// inside a tokio runtime, a job the runtime's shutdown drops unstarted fails its Deferred with
/// [`NeverFired`](crate::NeverFired).
///
/// ```
/// # extern crate deferred_core as deferred;
/// use deferred::{defer_to_thread, Deferred, Failure};
///
/// let d: Deferred<u64> = defer_to_thread(|| Ok((1..=10).product()));
/// assert_eq!(d.wait().unwrap(), 3_628_800);
///
/// let d: Deferred<u64> = defer_to_thread(|| Err(Failure::msg("disk full")));
/// assert_eq!(d.wait().unwrap_err().to_string(), "disk full");
/// ```
#[track_caller]
pub fn defer_to_thread<T, E, F>(work: F) -> Deferred<T, E>
where
    T: Send + 'static,
    E: FromFailure + Send + 'static,
    F: FnOnce() -> Result<T, E> + Send + 'static,
{
    let at = Location::caller();
    let (deferred, resolver) = Deferred::with_canceller(|| {});
    resolver.held_by("defer_to_thread");
    // A panic of the user's that escapes the work's own guard (in `E::from`, or in a `Drop`
    // the result runs: a value dropped because its Deferred was cancelled) is reported, not
    // left to unwind the pool's thread (or to tokio's `JoinError`, which nobody reads).
    let job = move || {
        crate::unhandled::run_reporting_panic("the pool's job", move || {
            let result = catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|panic| {
                Err(E::from(Failure::from_panic_in(panic, Some(at), "the work")))
            });
            drop(resolver.settle_from(result, at, crate::failure::EnteredBy::DeferToThread));
        });
    };
    #[cfg(feature = "tokio")]
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        // Tokio drops a job it will not start (its runtime has shut down): a panic in the
        // `Drop` of what the work holds is reported then, not kept in tokio's `JoinError`.
        let job = crate::unhandled::DropReported::new("an unstarted job's drop", job);
        drop(runtime.spawn_blocking(move || job.run()));
        return deferred;
    }
    pool().submit(Box::new(job));
    deferred
}

type Job = Box<dyn FnOnce() + Send>;

struct Pool {
    state: Mutex<PoolState>,
    work_ready: Condvar,
}

struct PoolState {
    jobs: VecDeque<Job>,
    threads: usize,
    idle: usize,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        state: Mutex::new(PoolState {
            jobs: VecDeque::new(),
            threads: 0,
            idle: 0,
        }),
        work_ready: Condvar::new(),
    })
}

impl Pool {
    fn submit(&'static self, job: Job) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.jobs.push_back(job);
        // A worker counts as idle until it wakes and takes the lock again: jobs submitted in
        // between (back to back, or one job submitting another and waiting on it) would all be
        // left to that one worker. So a thread is started whenever more jobs wait than idle
        // workers could take.
        if state.jobs.len() > state.idle && state.threads < POOL_THREADS {
            state.threads += 1;
            let spawned = std::thread::Builder::new()
                .name("deferred-pool".into())
                .spawn(move || self.work());
            if spawned.is_err() {
                // No thread to be had: an existing worker (if any) takes the job later; with
                // none, run it here rather than lose it.
                state.threads -= 1;
                if state.threads == 0 {
                    let job = state.jobs.pop_back().expect("just pushed");
                    drop(state);
                    job();
                }
            }
        } else {
            self.work_ready.notify_one();
        }
    }

    fn work(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(job) = state.jobs.pop_front() {
                drop(state);
                // The job catches every panic of the user's (its work's, and a `Drop`'s its
                // result runs): a worker never dies, and keeps its place in the pool.
                job();
                state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            state.idle += 1;
            let (next, timeout) = self
                .work_ready
                .wait_timeout(state, IDLE_EXIT)
                .unwrap_or_else(PoisonError::into_inner);
            state = next;
            state.idle -= 1;
            if timeout.timed_out() && state.jobs.is_empty() {
                state.threads -= 1;
                return;
            }
        }
    }
}
