//! The synchronisation primitives of the state machine, swapped for loom's under `--cfg loom`
//! so the model checker can explore every interleaving of firing, listening and cancelling.
//!
//! A chain's cell, and a fan-in's shared state, are locked with the `spin` crate's `SpinMutex`,
//! which yields the thread while another holds it ([`CellMutex`]). No user code ever runs under
//! them, and each is held only to move a result, a stage or a listener in or out, so a waiter
//! never waits long. Taking it is one compare-and-swap and releasing it a plain store, where a
//! lock that parks its waiters (std's, parking_lot's) must release it with a second atomic
//! read-modify-write, to see whether anyone waits: on the Zen 5 machine, where one costs about
//! 4.5 ns, a pending chain! did 5 atomic operations with it, 8 with parking_lot's (BENCHMARKS.md,
//! "The chain's lock: a spin lock"); 4 since a chain is made with both its pointers at once
//! (`chain_arc.rs`). `spin` keeps its `unsafe` to itself; this crate's own is in
//! `chain_arc` alone. The other helpers' shared state (a semaphore's queue, a looping call's
//! state, a `ManualClock`'s schedule) keeps std's `Mutex` ([`Mutex`]): with parking_lot's, a
//! `DeferredSemaphore` shared by 8 threads on 2 cores fell into a convoy of parked waiters in
//! every run of `benches/contention.rs`, and with std's it does not (measured, not explained).
//! Loom's `Mutex` is std's shape; [`lock_cell`] takes either.
#![forbid(unsafe_code)]

#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, Mutex as CellMutex, MutexGuard, MutexGuard as CellGuard};
/// A chain's cell's lock: a spin lock that yields the thread while another holds it.
#[cfg(not(loom))]
pub(crate) type CellMutex<X> = spin::mutex::SpinMutex<X, spin::relax::Yield>;
/// A held [`CellMutex`].
#[cfg(not(loom))]
pub(crate) type CellGuard<'a, X> = spin::mutex::SpinMutexGuard<'a, X, spin::relax::Yield>;
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

/// Locks a chain's cell. Loom's lock reports poisoning, which cannot happen here (no user code
/// runs under a chain's lock, so nothing panics while it is held).
#[cfg(loom)]
pub(crate) fn lock_cell<X>(mutex: &CellMutex<X>) -> CellGuard<'_, X> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Locks a chain's cell: one compare-and-swap when the lock is free, as it almost always is;
/// the wait for another thread to let go of it is out of line, so that the functions that lock
/// a cell keep fewer registers.
#[cfg(not(loom))]
#[inline]
pub(crate) fn lock_cell<X>(mutex: &CellMutex<X>) -> CellGuard<'_, X> {
    match mutex.try_lock() {
        Some(guard) => guard,
        None => lock_cell_held(mutex),
    }
}

/// [`lock_cell`] of a cell another thread holds: waits for it, yielding.
#[cfg(not(loom))]
#[cold]
#[inline(never)]
fn lock_cell_held<X>(mutex: &CellMutex<X>) -> CellGuard<'_, X> {
    mutex.lock()
}

/// A chain's cell, reached through its only reference (no lock needed).
#[cfg(loom)]
pub(crate) fn cell_get_mut<X>(mutex: &mut CellMutex<X>) -> &mut X {
    mutex
        .get_mut()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A chain's cell, reached through its only reference (no lock needed).
#[cfg(not(loom))]
#[inline]
pub(crate) fn cell_get_mut<X>(mutex: &mut CellMutex<X>) -> &mut X {
    mutex.get_mut()
}

/// Lets another thread run: in a wait for another thread to finish a step (a cancel's walk
/// waiting for a hand-over to complete), where loom must see the thread give way.
#[cfg(loom)]
pub(crate) use loom::thread::yield_now;
#[cfg(not(loom))]
pub(crate) use std::thread::yield_now;

#[cfg(loom)]
pub(crate) use loom::thread_local;
#[cfg(not(loom))]
pub(crate) use std::thread_local;

/// The atomics of a chain's count (`ChainArc`). Std's, even under `--cfg loom`, as
/// `std::sync::Arc`'s were: with loom's, the models of the state machine (tests/loom.rs) explore
/// every clone and drop of every chain's pointer, and were still running after 20 minutes (15
/// seconds with std's). With `--cfg loom_chain_arc` as well, loom's, for `chain_arc`'s own
/// models.
#[cfg(all(loom, loom_chain_arc, not(feature = "registry")))]
pub(crate) use loom::sync::atomic;
#[cfg(all(not(all(loom, loom_chain_arc)), not(feature = "registry")))]
pub(crate) use std::sync::atomic;
