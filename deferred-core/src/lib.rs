//! The runtime of [`deferred-chain`](https://docs.rs/deferred-chain): a typed, Twisted-style
//! `Deferred`.
//!
//! Users depend on the `deferred-chain` package (its library is `deferred`), which re-exports
//! everything here plus the `chain!` macro; its docs start with Getting started (the features,
//! which thread runs a step, recipes). The features here are the same: `tokio`, `calloop`,
//! `tracing`, `registry`, `anyhow`, each item that needs one marked with it (on docs.rs).
//!
//! There are two kinds of Deferred, with the same methods and rules: [`Deferred`], whose chain
//! may be fired, extended and cancelled from any thread (so its values and steps are `Send`),
//! and [`LocalDeferred`], whose chain stays on the thread that made it (so its steps may hold
//! `Rc`/`RefCell` state, and it costs no atomic operation). One state machine serves both:
//! `chain/` is written once, and each kind includes it after stating what sets it apart.
//! Each concept lives in the file named for it:
//!
//! | file | what |
//! | --- | --- |
//! | `shared.rs` | the `Send` kind: [`Deferred`], [`Resolver`], and how its chains are shared and locked |
//! | `local.rs` | the one-thread kind: [`LocalDeferred`], [`LocalResolver`], and how its chains are shared |
//! | `chain/` | what both kinds run: the state machine, the `add_*` methods, cancellation, the helpers (its `mod.rs` lists them) |
//! | `chain/shared_result.rs` | [`SharedResult`]: one result, many consumers |
//! | `bounds.rs` | what each kind's values and steps must be ([`Sendable`], [`LocalValue`]), what a `Failure` wraps ([`WrappableError`]), and what a chain's error type must be ([`FromFailure`]) |
//! | `run_loop.rs` | how results travel down chains in constant stack (one queue per thread, both kinds) |
//! | `inbox.rs` | results coming home to an event loop's thread: [`Inbox`], [`LoopHandle`], [`HomeResolver`] |
//! | `trace.rs` | (feature `tracing`) trace-level events of a chain's life: created, fired, each step, waits, cancels |
//! | `timer.rs` | the timer thread behind [`ThreadClock`] and [`InboxClock`] (a loop with no timers of its own) |
//! | `failure.rs` | [`Failure`], [`SharedFailure`] and the errors the chain raises itself |
//! | `outcome.rs` | what the combinators give: [`FirstSuccess`], [`FirstError`], [`FailureGroup`], [`NoInputs`] |
//! | `chain/first_settled.rs` | [`first_settled`]: the first input to fire, either way, decides; the others are cancelled |
//! | `chain/join.rs` | [`join`], [`join_settled`]: Deferreds of different types as one Deferred of a tuple |
//! | `unhandled.rs` | reporting failures nobody handled ([`set_unhandled_hook`]; feature `tracing`: as `tracing` events) |
//! | `capture.rs` | unhandled failures collected per thread and scope, for tests ([`capture_unhandled`], [`NoUnhandled`]) |
//! | `clock.rs` | the [`Clock`] and [`LocalClock`] traits, [`ThreadClock`] (real time, on the timer thread), [`ManualClock`] |
//! | `chain/later.rs` | [`defer_later`]: a call after a delay, cancellable |
//! | `chain/looping.rs` | [`LoopingCall`]: a call every interval, without drift, skipping missed calls |
//! | `chain/retry.rs` | [`retry`], [`retry_if`]: attempts again after a failure, with backoff |
//! | `chain/queue.rs` | [`DeferredQueue`]: put/get with size and backlog limits ([`QueueOverflow`], [`QueueUnderflow`]) |
//! | `backoff.rs` | [`RetryPolicy`] (exponential backoff, seedable jitter, limits), [`RetryError`] |
//! | `thread.rs` | [`defer_to_thread`] |
//! | `drive.rs` | [`Deferred::drive_future`]: a future as a Deferred with no runtime, polled by the thread that wakes it |
//! | `tokio.rs` | (feature `tokio`) a future as a Deferred, tokio's clock; an [`Inbox`] drained on a `LocalSet`, `TokioLocalClock`, a `!Send` future as a [`LocalDeferred`] |
//! | `calloop.rs` | (feature `calloop`) an [`Inbox`] drained by a calloop event source, `CalloopClock` |
//! | `registry.rs` | (feature `registry`) every chain not fired yet, for `pending_chains()` |
//! | `sync.rs` | the locks: a chain's cell's spin lock (`spin`'s) and std's `Mutex` for the helpers, or loom's under `--cfg loom` |
//! | `chain_arc.rs` | `ChainArc`, the pointer chains are shared through: an `Arc` with no weak count, or for the local kind an `Rc` with none (`ChainRc`) (the one module with `unsafe`; not with the feature `registry`) |
//! | `chain_arc/cells.rs` | the memory of freed chains, kept by each thread for its next chains (in `chain_arc`'s `unsafe`; not with the feature `registry`) |
//!
//! ```
//! # extern crate deferred_core as deferred;
//! use deferred::{Deferred, Failure};
//!
//! let (id, resolver) = Deferred::<u32>::pending();
//! let details = id
//!     .add_callback(|id| Ok(format!("employee #{id}")))
//!     .add_errback(|f: Failure| Ok(format!("lookup failed: {f}")));
//! resolver.callback(7);
//! assert_eq!(details.wait().unwrap(), "employee #7");
//! ```
// `unsafe` is allowed in one module, `chain_arc` with its submodule `cells` (with the `registry`
// feature, in none): every other module forbids it (`#![forbid(unsafe_code)]` at its top).
#![deny(unsafe_code)]
#![warn(missing_docs)]
// docs.rs (nightly, `--cfg docsrs`) marks each feature-gated item with its feature; stable
// builds never see this.
#![cfg_attr(docsrs, feature(doc_cfg))]

/// The conversions of a chain's pointer (`kind::ChainPtr`, named by the `use` before this)
/// where it is `Rc` or `Arc`: unsizing coercions, and `Any`'s downcast (`$any`: the `dyn Any`
/// the pointer converts to), with the `registry` feature. `chain_arc.rs` has the same for
/// `ChainArc`.
#[cfg(feature = "registry")]
macro_rules! std_chain_pointer {
    ($any:ty) => {
        /// A new chain, and a second pointer to it.
        #[inline]
        pub(crate) fn chain_pair<X>(chain: X) -> (ChainPtr<X>, ChainPtr<X>) {
            let chain = ChainPtr::new(chain);
            (chain.clone(), chain)
        }

        /// A chain, as the link a `Deferred` points to.
        #[inline]
        pub(crate) fn erase_chain<E: 'static, C: super::chain::pending::AnyChain<E> + 'static>(
            chain: ChainPtr<C>,
        ) -> ChainPtr<dyn super::chain::pending::AnyChain<E>> {
            chain
        }

        /// A chain, as what a cancel walks through.
        #[inline]
        pub(crate) fn erase_cancel<C: super::chain::pending::cancel::Cancel + 'static>(
            chain: ChainPtr<C>,
        ) -> ChainPtr<dyn super::chain::pending::cancel::Cancel> {
            chain
        }

        /// A chain, as a delivery on the run loop's queue.
        #[inline]
        pub(crate) fn erase_delivery<D: Delivery + 'static>(
            chain: ChainPtr<D>,
        ) -> ChainPtr<dyn Delivery> {
            chain
        }

        /// A link, as what a cancel walks through.
        #[inline]
        pub(crate) fn link_to_cancel<E: 'static>(
            link: ChainPtr<dyn super::chain::pending::AnyChain<E>>,
        ) -> ChainPtr<dyn super::chain::pending::cancel::Cancel> {
            link
        }

        /// A value checked by `Any`, typed again.
        #[inline]
        fn downcast<X: std::any::Any + Shareable>(any: ChainPtr<$any>) -> ChainPtr<X> {
            match any.downcast() {
                Ok(typed) => typed,
                Err(_) => unreachable!("a chain's pointer is typed back to the chain's own type"),
            }
        }

        /// The chain a link points to, typed: for the chain's own code called through the link.
        #[inline]
        pub(crate) fn link_to_chain<E: 'static, X: std::any::Any + Shareable>(
            link: ChainPtr<dyn super::chain::pending::AnyChain<E>>,
        ) -> ChainPtr<X> {
            downcast(link)
        }

        /// The chain a link points to, typed, if it is an `X`; else the link, as it was.
        #[inline]
        pub(crate) fn link_to_chain_if<E: 'static, X: std::any::Any + Shareable>(
            link: ChainPtr<dyn super::chain::pending::AnyChain<E>>,
        ) -> Result<ChainPtr<X>, ChainPtr<dyn super::chain::pending::AnyChain<E>>> {
            let any: &$any = &*link;
            if any.is::<X>() {
                Ok(downcast(link))
            } else {
                Err(link)
            }
        }

        /// The chain a cancel walks through, typed.
        #[inline]
        pub(crate) fn cancel_to_chain<X: std::any::Any + Shareable>(
            cancel: ChainPtr<dyn super::chain::pending::cancel::Cancel>,
        ) -> ChainPtr<X> {
            downcast(cancel)
        }

        /// The chain a delivery runs, typed.
        #[inline]
        pub(crate) fn delivery_to_chain<X: std::any::Any + Shareable>(
            delivery: ChainPtr<dyn Delivery>,
        ) -> ChainPtr<X> {
            downcast(delivery)
        }
    };
}

mod backoff;
mod bounds;
#[cfg(feature = "calloop")]
mod calloop;
mod capture;
#[cfg(not(feature = "registry"))]
#[allow(unsafe_code)]
mod chain_arc;
mod clock;
mod drive;
mod failure;
mod inbox;
pub mod local;
mod outcome;
#[cfg(feature = "registry")]
mod registry;
mod run_loop;
mod shared;
mod sync;
mod thread;
mod timer;
#[cfg(feature = "tokio")]
mod tokio;
mod trace;
mod unhandled;

pub use backoff::{Delays, GaveUp, RetryError, RetryPolicy};
pub use bounds::{FromFailure, LocalValue, Sendable, Shareable, WrappableError};
#[cfg(feature = "calloop")]
#[cfg_attr(docsrs, doc(cfg(feature = "calloop")))]
pub use calloop::CalloopClock;
pub use capture::{NoUnhandled, UnhandledCapture, capture_unhandled, expect_no_unhandled};
pub use clock::{Clock, DelayedCall, LocalClock, LocalDelayedCall, ManualClock, ThreadClock};
pub use failure::{
    Cancelled, Failure, NeverFired, Panicked, QueueOverflow, QueueUnderflow, SharedFailure,
    TimedOut,
};
pub use inbox::{HomeResolver, Inbox, InboxClock, LoopHandle, Stopped};
pub use local::{IntoLocalDeferred, LocalDeferred, LocalResolver};
pub use outcome::{FailureGroup, FirstError, FirstSuccess, NoInputs};
#[cfg(feature = "registry")]
pub use registry::{ChainId, PendingChain, PendingChains, WaitsOn, pending_chains};
pub use shared::chain::first_settled::first_settled;
pub use shared::chain::gather::gather_results;
pub use shared::chain::join::{Join, join, join_settled};
pub use shared::chain::later::defer_later;
pub use shared::chain::list::{DeferredList, settle_all};
pub use shared::chain::looping::LoopingCall;
pub use shared::chain::maybe::maybe_deferred;
pub use shared::chain::queue::DeferredQueue;
pub use shared::chain::race::race;
pub use shared::chain::retry::{retry, retry_if};
pub use shared::chain::semaphore::{DeferredLock, DeferredSemaphore, Permit, map_concurrent};
pub use shared::chain::shared_result::SharedResult;
pub use shared::{CancelHandle, Deferred, IntoDeferred, Resolver};
pub use thread::{POOL_THREADS, defer_to_thread};
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub use tokio::{TokioClock, TokioLocalClock};
pub use unhandled::{UnhandledHook, restore_unhandled_hook, set_unhandled_hook};

/// Gives the memory of the chains this thread freed, which it keeps for the next chains it
/// makes (`chain_arc/cells.rs`), back to the global allocator now. For a test that counts the
/// allocations of a chain on a thread that has made chains before: after this call they are
/// counted as on a new thread. With the feature `registry` nothing is kept, and this does
/// nothing.
#[doc(hidden)]
pub fn __give_back_kept_chains() {
    #[cfg(not(feature = "registry"))]
    chain_arc::give_back();
}
