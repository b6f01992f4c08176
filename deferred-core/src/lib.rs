//! The runtime of [`deferred`](https://docs.rs/deferred): a typed, Twisted-style `Deferred`.
//!
//! Users depend on the `deferred` crate, which re-exports everything here plus the `chain!`
//! macro. Where to find each concept:
//!
//! - [`deferred.rs`](Deferred): `Deferred`, `Resolver`, the `add_*` methods, `Future`, `wait`.
//! - `link.rs`: the state machine of a pending Deferred, with its rules next to the code.
//! - [`cancel.rs`](CancelHandle): cancelling a chain.
//! - `run_loop.rs`: how results travel down a chain in constant stack.
//! - [`failure.rs`](Failure): `Failure` and the errors the chain raises itself.
//! - [`thread.rs`](defer_to_thread): blocking work on a thread pool.
//! - `tokio.rs` (feature `tokio`): a future as a Deferred.
//! - `unhandled.rs`: reporting failures nobody handled.
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
mod deferred;
mod failure;
mod link;
mod run_loop;
mod sync;
mod thread;
#[cfg(feature = "tokio")]
mod tokio;
mod unhandled;

pub use cancel::CancelHandle;
pub use deferred::{Deferred, IntoDeferred, Resolver};
pub use failure::{Cancelled, Failure, NeverFired, Panicked, TimedOut};
pub use thread::{POOL_THREADS, defer_to_thread};
pub use unhandled::{UnhandledHook, restore_unhandled_hook, set_unhandled_hook};
