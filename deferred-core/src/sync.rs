//! The synchronisation primitives of the state machine, swapped for loom's under `--cfg loom`
//! so the model checker can explore every interleaving of firing, listening and cancelling.
//!
//! A chain's lock is parking_lot's `Mutex`: no user code ever runs under it, so std's poison
//! flag would carry nothing, and its bookkeeping (a check of the thread's panic count at each
//! lock and unlock) costs about a tenth of a pending chain's instructions. Loom's `Mutex` is
//! std's shape: [`lock`] takes either.

#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use parking_lot::{Mutex, MutexGuard};

/// Locks `mutex`. Loom's lock reports poisoning, which cannot happen here (no user code runs
/// under a chain's lock, so nothing panics while it is held).
#[cfg(loom)]
pub(crate) fn lock<X>(mutex: &Mutex<X>) -> MutexGuard<'_, X> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Locks `mutex`.
#[cfg(not(loom))]
#[inline]
pub(crate) fn lock<X>(mutex: &Mutex<X>) -> MutexGuard<'_, X> {
    mutex.lock()
}

#[cfg(loom)]
pub(crate) use loom::thread_local;
#[cfg(not(loom))]
pub(crate) use std::thread_local;
