//! The local kind: [`LocalDeferred`] and [`LocalResolver`], whose chains stay on the thread
//! that made them, so their values and steps need not be `Send` — and the helpers for them,
//! under the same names as the `Send` kind's ([`gather_results`], [`race`], [`DeferredList`],
//! [`DeferredSemaphore`], ...), taking and giving `LocalDeferred`s.
//!
//! What sets this kind apart is all in its `kind` module: a chain is shared through an `Rc` and its
//! state is in a `RefCell` — no atomic operation, no lock. Everything else — the state machine
//! and the helpers — is in `chain/`, the same code the `Send` kind runs.
//!
//! `use deferred::local::*` brings in what a one-thread program uses: the kind's types and
//! helpers, its loop's [`Inbox`] (and [`HomeResolver`], which other threads fire), and the
//! clocks that time it ([`InboxClock`], [`ManualClock`], and `TokioLocalClock` or
//! `CalloopClock` with their features).
#![forbid(unsafe_code)]

/// What makes this kind: how a chain is shared and locked, and what may go in it.
pub(crate) mod kind {
    use std::cell::{Cell, RefCell, RefMut};
    use std::task::Waker;

    pub(crate) use super::LocalResolver as Resolver;
    pub(crate) use super::{IntoLocalDeferred as IntoDeferred, LocalDeferred as Deferred};

    /// The next link a step's result makes: [`IntoLocalDeferred::into_local_deferred`] (the
    /// code both kinds share calls this).
    ///
    /// [`IntoLocalDeferred::into_local_deferred`]: super::IntoLocalDeferred::into_local_deferred
    #[inline]
    pub(crate) fn into_next<E: 'static, R: IntoDeferred<E>>(result: R) -> Deferred<R::Value, E> {
        result.into_local_deferred()
    }
    pub(crate) use crate::bounds::{LocalValue as Sendable, LocalValue as Shareable};
    pub(crate) use crate::clock::LocalClock as Clock;

    /// A `LocalDeferred` polled into `Pending` is noted as what the local task being polled on
    /// this thread awaits, if one is, for its cancel to cancel (`Inbox::spawn`).
    pub(crate) use crate::inbox::note_awaited;
    pub(crate) use crate::run_loop::LocalDelivery as Delivery;
    pub(crate) use std::rc::{Rc as Ptr, Weak};

    /// How a chain is shared: [`ChainRc`](crate::chain_arc::ChainRc), an `Rc` with no weak
    /// count (the `Send` kind's `ChainArc` with a plain count: 8 bytes less a chain). With the
    /// `registry` feature, whose registry lists chains by `Weak`, `std::rc::Rc`.
    #[cfg(not(feature = "registry"))]
    pub(crate) use crate::chain_arc::local_kind::{
        ChainRc as ChainPtr, cancel_to_chain, chain_pair, delivery_to_chain, erase_cancel,
        erase_chain, erase_delivery, link_to_cancel, link_to_chain, link_to_chain_if,
    };
    #[cfg(feature = "registry")]
    pub(crate) use std::rc::Rc as ChainPtr;
    #[cfg(feature = "registry")]
    std_chain_pointer!(dyn std::any::Any);

    /// The kind's names, for `Debug`.
    pub(crate) const DEFERRED: &str = "LocalDeferred";
    pub(crate) const RESOLVER: &str = "LocalResolver";

    /// Whether a run takes every stage it finds at once (`Chain::drive_all`), not one a borrow:
    /// a `RefCell`'s borrow costs less than the run's bookkeeping of the stages it would take
    /// (BENCHMARKS.md, "Pending chains on Zen 5").
    pub(crate) const RUN_STAGES_TOGETHER: bool = false;

    /// A canceller given at creation: it runs on this thread, the only one that can cancel.
    pub(crate) type Canceller = Box<dyn FnOnce()>;

    /// The cell around a chain's state. No user code runs while it is borrowed (the rule the
    /// `Send` kind keeps for its lock), so a borrow never finds it borrowed already.
    /// A chain's cell is locked the same way as everything else of this kind.
    pub(crate) type CellLock<X> = Lock<X>;
    pub(crate) type CellGuard<'a, X> = Guard<'a, X>;

    pub(crate) struct Lock<X>(RefCell<X>);
    pub(crate) type Guard<'a, X> = RefMut<'a, X>;

    impl<X> Lock<X> {
        pub(crate) fn new(value: X) -> Lock<X> {
            Lock(RefCell::new(value))
        }

        pub(crate) fn lock(&self) -> Guard<'_, X> {
            self.0.borrow_mut()
        }

        /// The value, through the only reference to the cell (no borrow).
        #[inline]
        pub(crate) fn get_mut(&mut self) -> &mut X {
            self.0.get_mut()
        }
    }

    /// A flag set once.
    pub(crate) struct Flag(Cell<bool>);

    impl Flag {
        pub(crate) fn new() -> Flag {
            Flag(Cell::new(false))
        }
        pub(crate) fn set(&self) {
            self.0.set(true);
        }
        pub(crate) fn get(&self) -> bool {
            self.0.get()
        }
    }

    /// Queues a chain's delivery on this thread's run loop.
    pub(crate) fn enqueue<D: Delivery + 'static>(delivery: ChainPtr<D>) {
        crate::run_loop::enqueue(crate::run_loop::Queued::Local(erase_delivery(delivery)));
    }

    /// How `wait` blocks: only this thread can fire a local chain, so it runs what other
    /// threads posted to this thread's inbox, one item at a time, until the chain fires.
    pub(crate) struct Blocker {
        stuck: crate::run_loop::StuckWait,
    }

    impl Blocker {
        pub(crate) fn new() -> Blocker {
            Blocker {
                stuck: crate::run_loop::StuckWait::new(),
            }
        }

        /// No waker: nothing but this thread's own work can fire the chain.
        pub(crate) fn waker(&self) -> Option<Waker> {
            None
        }

        #[track_caller]
        pub(crate) fn block(&mut self) {
            let until = self.stuck.until(std::panic::Location::caller(), true);
            if !crate::run_loop::run_one_posted(until) {
                panic!(
                    "`wait` on a pending LocalDeferred, on a thread with no Inbox: nothing could ever fire it \
                     (fire its LocalResolver first, or make the thread an Inbox and fire it from another thread)"
                );
            }
        }
    }
}

/// A result that arrives later, on this thread: a [`Deferred`](crate::Deferred) whose values,
/// errors and steps need not be `Send`, because its chain never leaves the thread that made it.
///
/// It keeps every rule of `Deferred` — the same methods (`pending`, `succeed`, `fail`, the
/// `add_*` methods, `cancel`, `wait`, `Future`), the same routing, the same reporting of
/// failures nobody handled — and it is written by the same code: only how the chain is shared
/// (an `Rc`, not an `Arc`-like pointer) and locked (a `RefCell`, not a spin lock) differ. So a
/// step may hold `Rc<RefCell<..>>` state — a widget, a per-connection cache — and costs no
/// atomic operation.
///
/// ```
/// # extern crate deferred_core as deferred;
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// use deferred::LocalDeferred;
///
/// let seen = Rc::new(RefCell::new(Vec::new())); // not Send: fine in a local chain
/// let (d, resolver) = LocalDeferred::<u32>::pending();
/// let log = seen.clone();
/// let d = d.add_callback(move |id| {
///     log.borrow_mut().push(id);
///     Ok(id * 2)
/// });
/// resolver.callback(21); // the step runs now, on this thread
/// assert_eq!(d.wait().unwrap(), 42);
/// assert_eq!(*seen.borrow(), [21]);
/// ```
///
/// A `LocalDeferred` (and its [`LocalResolver`]) is not `Send`: it stays on its thread.
/// Results made on other threads come home to it through an [`Inbox`] the
/// thread's event loop drains: a [`HomeResolver`] is a resolver any thread
/// can fire, [`Inbox::defer_to_thread`] runs blocking work on
/// the pool and delivers its result here, [`Inbox::adopt`] turns a
/// `Deferred` into a `LocalDeferred`.
///
/// The methods' own examples show `Deferred`; they read the same with `LocalDeferred`.
/// [`wait`](LocalDeferred::wait) differs in one way: nothing but this thread can fire a local
/// chain, so instead of parking until another thread does, it runs what other threads have
/// posted to this thread's [`Inbox`] until the chain fires (and panics if the
/// thread has no inbox and the chain is still pending, as it could only wait for ever).
///
/// # Panics
///
/// [`wait`](LocalDeferred::wait) on a thread with no [`Inbox`], while the chain
/// is pending; and, as for a [`Deferred`](crate::Deferred), any use that needs the result of a
/// Deferred whose result was taken already (polled to completion through `&mut`).
#[must_use = "a Deferred does nothing with its result unless you add callbacks, await it or wait on it; \
              a failure in it is reported as unhandled when it is dropped"]
pub struct LocalDeferred<T, E: 'static = Failure> {
    state: State<T, E>,
}

/// The one handle that fires a pending [`LocalDeferred`]: a [`Resolver`](crate::Resolver)
/// that stays on its thread. Firing takes `self`; dropping it without firing fails the Deferred
/// with [`NeverFired`](crate::NeverFired). To fire a `LocalDeferred` from another thread, make
/// it with [`Inbox::pending`], which gives a
/// [`HomeResolver`] instead.
///
/// ```
/// # extern crate deferred_core as deferred;
/// use deferred::LocalDeferred;
/// use std::rc::Rc;
///
/// let (d, resolver) = LocalDeferred::<Rc<str>>::pending();
/// resolver.callback(Rc::from("on this thread"));
/// assert_eq!(&*d.wait().unwrap(), "on this thread");
/// ```
#[must_use = "dropping a Resolver without firing it fails its Deferred with a `NeverFired` failure"]
pub struct LocalResolver<T, E: 'static = Failure> {
    /// The chain's root, which keeps how it fires (see `Firing`).
    link: Option<kind::ChainPtr<chain::pending::Chain<T, E>>>,
}

/// What a callback of a [`LocalDeferred`] may return: a [`Result`] (`Ok` continues the chain,
/// `Err` fails it) or a `LocalDeferred` (the chain waits for it). The local twin of
/// [`IntoDeferred`](crate::IntoDeferred).
#[diagnostic::on_unimplemented(
    message = "a callback must return `Result<_, {E}>` or `LocalDeferred<_, {E}>`, not `{Self}`",
    label = "this is a `{Self}`",
    note = "wrap a plain value in `Ok(...)`; return `Err(..)` to fail the chain (a message: \
            `Err(Failure::msg(..))` on a chain of `Failure`s), or a LocalDeferred to wait on it",
    note = "a `Result` with another error type (an `io::Result`, a `Result<_, ParseIntError>`): \
            `Ok(expr?)` converts its error (`?` makes a `Failure` of any \
            `std::error::Error + Send + Sync`), so that an `Err` fails the chain"
)]
///
/// The trait is sealed, as [`IntoDeferred`](crate::IntoDeferred) is.
pub trait IntoLocalDeferred<E: 'static>: crate::bounds::IntoSealed {
    /// The value type of the next link.
    type Value;
    /// Converts the callback's result into the next link. (Named apart from
    /// [`IntoDeferred::into_deferred`](crate::IntoDeferred::into_deferred), which a `Result`
    /// also has: with both traits in scope, `.into_deferred()` names the `Send` kind's.)
    fn into_local_deferred(self) -> LocalDeferred<Self::Value, E>;
}

impl<U, E: 'static> crate::bounds::IntoSealed for LocalDeferred<U, E> {}

// Not recommended in messages: rustc's list of the types that implement the trait says no more
// than the message, which names them, and points into this crate.
#[diagnostic::do_not_recommend]
impl<U, E: 'static> IntoLocalDeferred<E> for Result<U, E> {
    type Value = U;
    #[inline]
    fn into_local_deferred(self) -> LocalDeferred<U, E> {
        LocalDeferred::from_result(self)
    }
}

// Not recommended in messages: rustc's list of the types that implement the trait says no more
// than the message, which names them, and points into this crate.
#[diagnostic::do_not_recommend]
impl<U, E: 'static> IntoLocalDeferred<E> for LocalDeferred<U, E> {
    type Value = U;
    #[inline]
    fn into_local_deferred(self) -> LocalDeferred<U, E> {
        self
    }
}

use kind::{Deferred, IntoDeferred, Resolver};

include!("chain/deferred.rs");

// Each kind compiles `chain/` for itself: loading it twice is the point.
#[allow(clippy::duplicate_mod)]
#[path = "chain/mod.rs"]
pub(crate) mod chain;

// What a one-thread program needs beside the helpers, so that `use deferred::local::*` brings
// in all of it: its loop's inbox and clocks, and the other names of its kind.
#[cfg(feature = "calloop")]
#[cfg_attr(docsrs, doc(cfg(feature = "calloop")))]
pub use crate::calloop::CalloopClock;
pub use crate::clock::{LocalClock, LocalDelayedCall, ManualClock};
pub use crate::inbox::{HomeResolver, Inbox, InboxClock, LoopHandle, Stopped};
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub use crate::tokio::TokioLocalClock;
pub use chain::first_settled::first_settled;
pub use chain::gather::gather_results;
pub use chain::join::{Join, join, join_settled};
pub use chain::later::defer_later;
pub use chain::list::{DeferredList, settle_all};
pub use chain::looping::LoopingCall;
pub use chain::maybe::maybe_deferred;
pub use chain::pending::cancel::CancelHandle;
pub use chain::queue::DeferredQueue;
pub use chain::race::race;
pub use chain::retry::{retry, retry_if};
pub use chain::semaphore::{DeferredLock, DeferredSemaphore, Permit, map_concurrent};
pub use chain::shared_result::SharedResult;
