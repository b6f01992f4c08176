//! The `Send` kind: [`Deferred`] and [`Resolver`], whose chains may be fired, extended and
//! cancelled from any thread.
//!
//! What sets this kind apart is all in its `kind` module: a chain is shared between threads
//! (through a `ChainArc`, an `Arc` with no weak count: `chain_arc.rs`) and its state is behind a
//! `Mutex`, so its values, errors and steps must be `Send`. Everything else —
//! the state machine and the helpers — is in `chain/`, written once for both kinds.
#![forbid(unsafe_code)]

/// What makes this kind: how a chain is shared and locked, and what may go in it.
pub(crate) mod kind {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::task::{Wake, Waker};
    use std::thread::Thread;

    pub(crate) use super::{Deferred, IntoDeferred, Resolver};
    pub(crate) use crate::bounds::{Sendable, Shareable};

    /// The next link a step's result makes: [`IntoDeferred::into_deferred`], by this kind's
    /// name for it (the code both kinds share calls this).
    #[inline]
    pub(crate) fn into_next<E: 'static, R: IntoDeferred<E>>(result: R) -> Deferred<R::Value, E> {
        result.into_deferred()
    }
    pub(crate) use crate::clock::Clock;
    /// A Deferred polled into `Pending` is noted as what the driven future being polled on this
    /// thread awaits, if one is, for its cancel to cancel (`Deferred::drive_future`).
    pub(crate) use crate::drive::note_awaited;
    pub(crate) use crate::run_loop::Delivery;
    pub(crate) use std::sync::{Arc as Ptr, Weak};

    /// How a chain is shared: [`ChainArc`](crate::chain_arc::ChainArc), an `Arc` with no weak
    /// count, whose only owner reaches and frees the chain with no atomic read-modify-write
    /// (its module says why). With the `registry` feature, whose registry lists chains by
    /// `Weak`, `std::sync::Arc`.
    #[cfg(not(feature = "registry"))]
    pub(crate) use crate::chain_arc::ChainArc as ChainPtr;
    #[cfg(not(feature = "registry"))]
    pub(crate) use crate::chain_arc::shared_kind::{
        cancel_to_chain, chain_pair, delivery_to_chain, erase_cancel, erase_chain, erase_delivery,
        link_to_cancel, link_to_chain, link_to_chain_if,
    };
    #[cfg(feature = "registry")]
    pub(crate) use std::sync::Arc as ChainPtr;
    #[cfg(feature = "registry")]
    std_chain_pointer!(dyn std::any::Any + Send + Sync);

    /// The kind's names, for `Debug`.
    pub(crate) const DEFERRED: &str = "Deferred";
    pub(crate) const RESOLVER: &str = "Resolver";

    /// Whether a run takes every stage it finds at once (`Chain::drive_all`), not one a lock:
    /// here each lock round trip is two atomic operations, which cost more than the run's
    /// own bookkeeping of the stages it took (BENCHMARKS.md, "Pending chains on Zen 5"). Not
    /// with the registry, which shows a running chain's steps not run yet (`PendingChain::steps`),
    /// and sees only those in the chain's list.
    pub(crate) const RUN_STAGES_TOGETHER: bool = !cfg!(feature = "registry");

    /// A canceller given at creation: it may be called from the thread that cancels.
    pub(crate) type Canceller = Box<dyn FnOnce() + Send>;

    /// The lock of a helper's shared state (a semaphore's queue, a fan-in's places). No user
    /// code runs under it, so a poisoned lock can only come from an allocation failure; the
    /// state is still consistent, so carry on.
    pub(crate) struct Lock<X>(crate::sync::Mutex<X>);
    pub(crate) type Guard<'a, X> = crate::sync::MutexGuard<'a, X>;

    impl<X> Lock<X> {
        pub(crate) fn new(value: X) -> Lock<X> {
            Lock(crate::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> Guard<'_, X> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        }
    }

    /// The lock around a chain's state (a spin lock, loom's under `--cfg loom`: see
    /// `crate::sync` for why it is not `Lock`'s). No user code runs under it.
    pub(crate) struct CellLock<X>(crate::sync::CellMutex<X>);
    pub(crate) type CellGuard<'a, X> = crate::sync::CellGuard<'a, X>;

    impl<X> CellLock<X> {
        pub(crate) fn new(value: X) -> CellLock<X> {
            CellLock(crate::sync::CellMutex::new(value))
        }

        pub(crate) fn lock(&self) -> CellGuard<'_, X> {
            crate::sync::lock_cell(&self.0)
        }

        /// The value, through the only reference to the lock (no locking).
        #[inline]
        pub(crate) fn get_mut(&mut self) -> &mut X {
            crate::sync::cell_get_mut(&mut self.0)
        }
    }

    /// A flag set once, read from any thread.
    pub(crate) struct Flag(AtomicBool);

    impl Flag {
        pub(crate) fn new() -> Flag {
            Flag(AtomicBool::new(false))
        }
        pub(crate) fn set(&self) {
            self.0.store(true, Ordering::SeqCst);
        }
        pub(crate) fn get(&self) -> bool {
            self.0.load(Ordering::SeqCst)
        }
    }

    /// Queues a chain's delivery on this thread's run loop.
    pub(crate) fn enqueue<D: Delivery + 'static>(delivery: ChainPtr<D>) {
        crate::run_loop::enqueue(crate::run_loop::Queued::Shared(erase_delivery(delivery)));
    }

    /// How `wait` blocks: the thread parks until the chain's waker unparks it (another thread
    /// fires it).
    pub(crate) struct Blocker {
        waker: Waker,
        stuck: crate::run_loop::StuckWait,
    }

    impl Blocker {
        pub(crate) fn new() -> Blocker {
            Blocker {
                waker: Waker::from(Ptr::new(ThreadWaker(std::thread::current()))),
                stuck: crate::run_loop::StuckWait::new(),
            }
        }

        /// The waker `wait` registers with the chain before it blocks.
        pub(crate) fn waker(&self) -> Option<Waker> {
            Some(self.waker.clone())
        }

        /// Parks until the waker is woken. A wake that came first (after the registration,
        /// before the park) leaves the thread's token set, so none is lost. On the thread of a
        /// current-thread tokio runtime, a `wait` still blocked after a while says why it may
        /// never return (see `tokio::wait_blocks_a_runtime`), then goes on waiting.
        #[track_caller]
        pub(crate) fn block(&mut self) {
            match self.stuck.until(std::panic::Location::caller(), false) {
                // Woken, or not: the caller looks again, and blocks again if it must.
                Some(until) => std::thread::park_timeout(
                    until.saturating_duration_since(std::time::Instant::now()),
                ),
                None => std::thread::park(),
            }
        }
    }

    /// Wakes a thread blocked in `wait`.
    struct ThreadWaker(Thread);

    impl Wake for ThreadWaker {
        fn wake(self: Ptr<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Ptr<Self>) {
            self.0.unpark();
        }
    }
}

/// A result that arrives later: Twisted's `Deferred`, typed.
///
/// A `Deferred<T, E>` either has fired — it holds `Ok(T)` or `Err(E)` — or is pending, and will
/// fire when its [`Resolver`] is called. Callbacks are chained with the `add_*` methods, each of
/// which consumes the Deferred and returns the next link, so the value type can change from step
/// to step:
///
/// ```
/// # extern crate deferred_core as deferred;
/// use deferred::{Deferred, Failure};
///
/// let (d, resolver) = Deferred::<u32>::pending();
/// let line = d
///     .add_callback(|id| Ok(id * 10))                      // u32 -> u32
///     .add_callback(|n| Ok(format!("employee #{n}")))      // u32 -> String
///     .add_errback(|f: Failure| Ok(format!("lookup failed: {f}")));
///
/// resolver.callback(4); // the callbacks run now, on this thread
/// assert_eq!(line.wait().unwrap(), "employee #40");
/// ```
///
/// The rules (Twisted's, typed):
///
/// 1. Success skips errbacks, failure skips callbacks; each step's result is the next one's input.
/// 2. Callbacks added to a fired Deferred run at once, on the adding thread; otherwise they run on
///    the thread that fires, when it fires. No executor is involved.
/// 3. A callback that returns a pending Deferred pauses the chain until that one fires. Chains of
///    any depth run in constant stack: a result that fires another chain from inside a
///    callback is queued on the firing thread and delivered when that callback returns, instead of
///    recursing.
/// 4. A panic inside a callback becomes a [`Failure`] that the next errback sees.
/// 5. A Deferred dropped while holding a failure nobody handled reports it once through the
///    [unhandled-error hook](crate::set_unhandled_hook); so does one whose value holds its inputs'
///    failures ([`settle_all`](crate::settle_all), `DeferredList::all`, ...), dropped with that
///    value unread: each of those failures, once.
/// 6. A [`Resolver`] dropped without firing fails its Deferred with [`NeverFired`](crate::NeverFired)
///    (unless the Deferred was dropped with no step left: nobody could see it).
/// 7. [`cancel`](Deferred::cancel) on a pending chain cancels what it waits on.
/// 8. Firing, adding callbacks and cancelling may race from any threads; every callback runs
///    exactly once.
/// 9. Chains may wait on each other in a cycle, which nothing can fire; a cancel that reaches it
///    returns, and the chain whose wait closes the cycle goes on with the cancellation.
///
/// A Deferred is also a [`Future`] (`Output = Result<T, E>`), and [`wait`](Deferred::wait) blocks
/// the current thread until it fires. Dropping it — a `select!` that takes another branch,
/// `tokio::time::timeout` running out — drops the end of the chain, not the work: the work goes
/// on, and a failure that arrives after is reported as unhandled. To stop the work, cancel it
/// ([`cancel`](Deferred::cancel), or [`add_timeout`](Deferred::add_timeout) with a
/// `TokioClock`), as in Twisted.
///
/// The error type `E` is [`Failure`] unless you choose another; any `E: From<Failure>` works (the
/// bound [`FromFailure`](crate::FromFailure) names), so that panics, cancellations and dropped
/// Resolvers can be expressed in it.
///
/// # Panics
///
/// A Deferred's result is taken once. Polled to completion through `&mut` (a `tokio::select!`
/// branch `r = &mut d`), the Deferred is spent: any use of it that needs its result after that —
/// an `add_*` method, [`wait`](Deferred::wait), [`map_err`](Deferred::map_err),
/// [`add_timeout`](Deferred::add_timeout), [`into_shared`](Deferred::into_shared), a combinator
/// that takes it, or polling it again — panics ("this Deferred's result was already taken").
#[must_use = "a Deferred does nothing with its result unless you add callbacks, await it or wait on it; \
              a failure in it is reported as unhandled when it is dropped"]
pub struct Deferred<T, E: 'static = Failure> {
    state: State<T, E>,
}

/// The one handle that fires a pending [`Deferred`]. Firing takes `self`, so a Deferred cannot
/// be fired twice (Twisted's `AlreadyCalledError` is a compile error here). Dropping a Resolver
/// without firing fails the Deferred with [`NeverFired`](crate::NeverFired).
///
/// A Resolver is `Send` when `T` and `E` are: fire it from any thread.
///
/// ```
/// # extern crate deferred_core as deferred;
/// use deferred::Deferred;
///
/// let (d, resolver) = Deferred::<String>::pending();
/// std::thread::spawn(move || resolver.callback("from a worker".to_string()));
/// assert_eq!(d.wait().unwrap(), "from a worker");
/// ```
#[must_use = "dropping a Resolver without firing it fails its Deferred with a `NeverFired` failure"]
pub struct Resolver<T, E: 'static = Failure> {
    /// The chain's root, which keeps how it fires (see `Firing`).
    link: Option<kind::ChainPtr<chain::pending::Chain<T, E>>>,
}

/// What a callback may return: a [`Result`] (`Ok` continues the chain, `Err` fails it) or a
/// [`Deferred`] (the chain waits for it, then continues with its result).
///
/// A plain value is not a callback result: wrap it in `Ok(...)`. (The `chain!` macro accepts
/// plain values too, by wrapping them for you.)
#[diagnostic::on_unimplemented(
    message = "a callback must return `Result<_, {E}>` or `Deferred<_, {E}>`, not `{Self}`",
    label = "this is a `{Self}`",
    note = "wrap a plain value in `Ok(...)`; return `Err(..)` to fail the chain (a message: \
            `Err(Failure::msg(..))` on a chain of `Failure`s), or a Deferred to wait on it",
    note = "a `Result` with another error type (an `io::Result`, a `Result<_, ParseIntError>`): \
            `Ok(expr?)` converts its error (`?` makes a `Failure` of any \
            `std::error::Error + Send + Sync`), so that an `Err` fails the chain"
)]
///
/// The trait is sealed: `chain!` knows these two, and a type of yours would be taken for a plain
/// value there. Convert it to a `Deferred` yourself.
pub trait IntoDeferred<E: 'static>: crate::bounds::IntoSealed {
    /// The value type of the next link.
    type Value;
    /// Converts the callback's result into the next link.
    fn into_deferred(self) -> Deferred<Self::Value, E>;
}

impl<U, E: 'static> crate::bounds::IntoSealed for Deferred<U, E> {}

// Not recommended in messages: rustc's list of the types that implement the trait says no more
// than the message, which names them, and points into this crate.
#[diagnostic::do_not_recommend]
impl<U, E: 'static> IntoDeferred<E> for Result<U, E> {
    type Value = U;
    #[inline]
    fn into_deferred(self) -> Deferred<U, E> {
        Deferred::from_result(self)
    }
}

// Not recommended in messages: rustc's list of the types that implement the trait says no more
// than the message, which names them, and points into this crate.
#[diagnostic::do_not_recommend]
impl<U, E: 'static> IntoDeferred<E> for Deferred<U, E> {
    type Value = U;
    #[inline]
    fn into_deferred(self) -> Deferred<U, E> {
        self
    }
}

include!("chain/deferred.rs");

// Each kind compiles `chain/` for itself: loading it twice is the point.
#[allow(clippy::duplicate_mod)]
#[path = "chain/mod.rs"]
pub(crate) mod chain;

pub use chain::pending::cancel::CancelHandle;
