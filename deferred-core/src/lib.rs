//! The runtime of [`deferred`](https://docs.rs/deferred): a typed, Twisted-style `Deferred`.
//!
//! Users depend on the `deferred` crate, which re-exports everything here plus the `chain!`
//! macro. Each concept lives in the file named for it:
//!
//! | file | what |
//! | --- | --- |
//! | `deferred.rs` | [`Deferred`], [`Resolver`], the `add_*` methods, `Future`, `wait` |
//! | `link.rs` | the state machine of a pending chain, its rules next to the code |
//! | `stage.rs` | the steps waiting in a pending chain, and the slots their results pass through |
//! | `run_loop.rs` | how results travel down a chain in constant stack |
//! | `cancel.rs` | [`CancelHandle`] and the cancellation walk |
//! | `failure.rs` | [`Failure`] and the errors the chain raises itself |
//! | `unhandled.rs` | reporting failures nobody handled ([`set_unhandled_hook`]) |
//! | `maybe.rs` | [`maybe_deferred`] |
//! | `list.rs` | [`DeferredList`], [`settle_all`] |
//! | `gather.rs` | [`gather_results`], [`FirstError`] |
//! | `race.rs` | [`race`], [`FailureGroup`] |
//! | `fan_in.rs` | the bookkeeping the combinators above share |
//! | `clock.rs` | the [`Clock`] trait, [`ManualClock`] |
//! | `timeout.rs` | [`Deferred::add_timeout`] |
//! | `semaphore.rs` | [`DeferredSemaphore`], [`DeferredLock`], [`map_concurrent`] |
//! | `thread.rs` | [`defer_to_thread`] |
//! | `drive.rs` | [`Deferred::drive_future`]: a future as a Deferred with no runtime, polled by the thread that wakes it |
//! | `tokio.rs` | (feature `tokio`) a future as a Deferred, tokio's clock |
//! | `sync.rs` | std's locks, or loom's under `--cfg loom` |
//!
//! ```
//! use deferred_core::{Deferred, Failure};
//!
//! let (id, resolver) = Deferred::<u32>::pending();
//! let details = id
//!     .add_callback(|id| Ok(format!("employee #{id}")))
//!     .add_errback(|f: Failure| Ok(format!("lookup failed: {f}")));
//! resolver.callback(7);
//! assert_eq!(details.wait().unwrap(), "employee #7");
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cancel;
mod clock;
mod deferred;
mod drive;
mod failure;
mod fan_in;
mod gather;
mod link;
mod list;
mod maybe;
mod race;
mod run_loop;
mod semaphore;
mod stage;
mod sync;
mod thread;
mod timeout;
#[cfg(feature = "tokio")]
mod tokio;
mod unhandled;

pub use cancel::CancelHandle;
pub use clock::{Clock, DelayedCall, ManualClock};
pub use deferred::{Deferred, IntoDeferred, Resolver};
pub use failure::{Cancelled, Failure, NeverFired, Panicked, TimedOut};
pub use gather::{FirstError, gather_results};
pub use list::{DeferredList, FirstSuccess, settle_all};
pub use maybe::maybe_deferred;
pub use race::{FailureGroup, race};
pub use semaphore::{DeferredLock, DeferredSemaphore, Permit, map_concurrent};
pub use thread::{POOL_THREADS, defer_to_thread};
#[cfg(feature = "tokio")]
pub use tokio::TokioClock;
pub use unhandled::{UnhandledHook, restore_unhandled_hook, set_unhandled_hook};
