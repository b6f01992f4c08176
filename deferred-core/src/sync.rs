//! The synchronisation primitives of the state machine, swapped for loom's under `--cfg loom`
//! so the model checker can explore every interleaving of firing, listening and cancelling.

#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

#[cfg(loom)]
pub(crate) use loom::thread_local;
#[cfg(not(loom))]
pub(crate) use std::thread_local;
