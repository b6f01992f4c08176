//! `SharedResult`: one result, many consumers (futures' `Shared`; the `ObservableDeferred` Twisted
//! users write by hand, twisted#7378).
//!
//! A Deferred's result goes to one chain. A `SharedResult` takes a Deferred and gives each
//! consumer a Deferred of its own, each a chain of its own, all fired with the one result:
//!
//! - Every consumer gets the result: a clone of the value, or a cheap copy of the failure (a
//!   [`SharedFailure`](crate::SharedFailure) that reads as the original). Consumers waiting when
//!   the source fires get it in the order they were made; one made after it fired gets it at once.
//! - What one consumer does — fail in its own steps, be cancelled, be dropped — changes nothing for
//!   the others: each is its own chain.
//! - The source is cancelled only when nobody can want its result any more: every consumer made
//!   so far has been cancelled, and no more can be made (every handle of the `SharedResult` is
//!   gone). A dropped consumer still counts as wanting the result (see `SharedResult`'s docs).
//! - A failure of the source is reported as unhandled once per consumer that did not handle it
//!   (each consumer's Deferred keeps rule 5 for its own copy), and once if no consumer was ever
//!   made before the last handle went. The source's own chain never reports it: the
//!   `SharedResult` took it.
//! - No user code runs under the lock: a value is cloned, and consumers are fired, after it is
//!   released.

use std::collections::BTreeMap;
use std::fmt;

use super::pending::cancel::CancelHandle;
use super::{Deferred, Resolver};
use super::{Lock, Ptr, Sendable, Shareable, Weak};
use crate::bounds::FromFailure;
use crate::failure::{Failure, SharedFailure};
use crate::unhandled;

/// One result, many consumers (futures' `Shared`, Twisted users' `ObservableDeferred`): made from
/// a Deferred, it gives each caller of [`consumer`](SharedResult::consumer) a Deferred of its own,
/// fired with a clone of the value or a shared copy of the failure. Clones of a `SharedResult`
/// share it.
///
/// The rules:
///
/// 1. Each consumer is its own chain: its steps, its failure, its cancel and its drop change
///    nothing for the other consumers.
/// 2. Consumers waiting when the source fires get the result in the order they were made; a
///    consumer made after it fired gets it at once (a fired Deferred).
/// 3. Values are cloned (`T: Clone`), once per consumer; a clone that panics fails that
///    consumer alone, with the panic ([`Panicked`](crate::Panicked)). A failure is shared, not
///    copied: each consumer gets a [`Failure`] holding the same [`SharedFailure`], which reads
///    as the original ([`Failure::is`], [`downcast_ref`](Failure::downcast_ref),
///    [`is_cancelled`](Failure::is_cancelled), the message, origin and trail); only
///    [`Failure::trap`] cannot take the error out while others share it (`downcast_ref` and a
///    clone can; `chain!`'s typed `catch` does so when the error type is `Clone`).
/// 4. Cancelling a consumer fails that consumer with [`Cancelled`](crate::Cancelled). The source is
///    cancelled when every consumer made so far has been cancelled *and* no more can be made: the
///    last handle of the `SharedResult` has been dropped. (No consumer ever made, and every handle
///    dropped: the source is cancelled too.) A consumer that is dropped while pending cannot be
///    seen to go (a chain gives no sign of being dropped), so it counts as wanting the result
///    until the source fires: cancel a consumer to give it up.
/// 5. A failure of the source is reported as unhandled once per consumer that drops it without
///    handling it (each consumer's Deferred keeps the usual rule for its copy), and once if the
///    last handle goes before any consumer was made. A failure that answers the `SharedResult`'s
///    own cancel of the source is not reported.
///
/// ```
/// # extern crate deferred_core as deferred;
/// use deferred::{Deferred, Failure, SharedResult};
///
/// let (config, resolver) = Deferred::<String>::pending();
/// let config = SharedResult::new(config);
///
/// let a = config.consumer().add_callback(|text| Ok(text.len()));
/// let b = config.consumer().add_callback(|_| Err::<usize, _>(Failure::msg("b gave up")));
/// let c = config.consumer();
/// c.cancel(); // only `c` is cancelled: `a` and `b` still want the result
///
/// resolver.callback("verbose = true".to_string());
/// assert_eq!(a.wait().unwrap(), 14);
/// assert_eq!(b.wait().unwrap_err().to_string(), "b gave up");
/// assert!(c.wait().unwrap_err().is_cancelled());
///
/// // A consumer made after the source fired gets the result at once.
/// let late = config.consumer();
/// assert_eq!(late.wait().unwrap(), "verbose = true");
/// ```
pub struct SharedResult<T> {
    handle: Ptr<Handle<T>>,
}

/// One per `SharedResult` and its clones: when it goes, no more consumers can be made.
struct Handle<T> {
    core: Ptr<Core<T>>,
}

struct Core<T> {
    state: Lock<State<T>>,
}

struct State<T> {
    phase: Phase<T>,
    /// Whether a handle is left (more consumers can be made).
    handles: bool,
    /// Whether a consumer has the result, or will: one was made (before the source fired, and
    /// waited for it to the end; or after). Set again once the source's result has been handed
    /// to the consumers waiting for it, to whether one of them took it (those cancelled before,
    /// or as it was handed on, did not), or a consumer was made meanwhile.
    consumed: bool,
    /// Set when this `SharedResult` cancelled the source: its answer (a cancellation) is
    /// expected.
    cancelled_source: bool,
    /// Set while the source's result is handed to the consumers that waited for it, outside
    /// the lock: whether one of them got it (a cancel from another thread may refuse each one
    /// meanwhile) is known only then, so the last handle's drop leaves the report to `fire`.
    delivering: bool,
}

enum Phase<T> {
    Pending {
        /// Consumers waiting, by ticket (the order they were made).
        waiting: BTreeMap<u64, Resolver<T>>,
        next_ticket: u64,
        source: CancelHandle,
    },
    /// The result, shared with whoever is cloning it right now (outside the lock).
    Fired(Ptr<Result<T, SharedFailure>>),
}

/// A copy of the result for one consumer. A clone that panics fails that consumer alone, with
/// the panic (rule 4 of a Deferred: a panic in user code becomes a failure), instead of
/// unwinding out of the loop that fires the consumers (which left it and every consumer after
/// it failed with a `NeverFired` that no dropped Resolver caused).
fn copy<T: Clone>(result: &Result<T, SharedFailure>) -> Result<T, Failure> {
    match result {
        Ok(value) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| value.clone()))
            .map_err(|panic| Failure::from_panic_in(panic, None, "the value's clone")),
        Err(shared) => Err(shared.to_failure()),
    }
}

impl<T> SharedResult<T>
where
    T: Clone + Shareable + 'static,
{
    /// Takes `source`: its result will go to every consumer. Its failures become shared ones
    /// (any `E: Into<Failure>`).
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::{Deferred, SharedResult};
    ///
    /// let shared = SharedResult::new(Deferred::<_>::succeed(7));
    /// assert_eq!(shared.consumer().wait().unwrap() + shared.consumer().wait().unwrap(), 14);
    /// ```
    #[track_caller]
    pub fn new<E>(source: Deferred<T, E>) -> SharedResult<T>
    where
        E: FromFailure + Into<Failure> + Sendable + 'static,
    {
        let core = Ptr::new(Core {
            state: Lock::new(State {
                phase: Phase::Pending {
                    waiting: BTreeMap::new(),
                    next_ticket: 0,
                    source: source.cancel_handle(),
                },
                handles: true,
                consumed: false,
                cancelled_source: false,
                delivering: false,
            }),
        });
        let arrived = core.clone();
        // The step always succeeds: dropping its chain loses nothing, and the source's failure
        // is handled here (rule 5 of `SharedResult`).
        // The step is placed at the caller's line (the registry lists it among the source's
        // steps), not this one's.
        drop(
            source.add_both_at(std::panic::Location::caller(), move |result| {
                // A panic in the conversion (user code) is the failure the consumers get.
                arrived.fire(result.map_err(|error| super::fan_in::into_failure(error).share()));
                Ok::<(), E>(())
            }),
        );
        SharedResult {
            handle: Ptr::new(Handle { core }),
        }
    }

    /// A Deferred of its own for a new consumer: fired with the result when the source fires, or
    /// at once if it has. Cancelling it fails it alone with [`Cancelled`](crate::Cancelled) (see
    /// the rules for when the source is cancelled).
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::{Deferred, SharedResult};
    ///
    /// let (source, resolver) = Deferred::<u32>::pending();
    /// let shared = SharedResult::new(source);
    /// let first = shared.consumer();
    /// let second = shared.consumer().add_callback(|n| Ok(n * 2));
    /// resolver.callback(21);
    /// assert_eq!((first.wait().unwrap(), second.wait().unwrap()), (21, 42));
    /// ```
    #[track_caller]
    pub fn consumer(&self) -> Deferred<T> {
        let core = &self.handle.core;
        let mut state = core.state.lock();
        state.consumed = true;
        match &mut state.phase {
            Phase::Fired(result) => {
                let result = result.clone();
                drop(state);
                Deferred::from_result(copy(&result))
            }
            Phase::Pending {
                waiting,
                next_ticket,
                ..
            } => {
                let ticket = *next_ticket;
                *next_ticket += 1;
                // Weak: the consumer's canceller must not keep the source's bookkeeping alive.
                let weak: Weak<Core<T>> = Ptr::downgrade(core);
                let (consumer, resolver) = Deferred::with_canceller(move || {
                    if let Some(core) = weak.upgrade() {
                        core.forget(ticket);
                    }
                });
                resolver.held_by("SharedResult::consumer");
                waiting.insert(ticket, resolver);
                consumer
            }
        }
    }

    /// Whether the source has fired (consumers made now get the result at once).
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// let shared = deferred::SharedResult::new(deferred::Deferred::<_>::succeed(()));
    /// assert!(shared.is_fired());
    /// ```
    pub fn is_fired(&self) -> bool {
        matches!(self.handle.core.state.lock().phase, Phase::Fired(_))
    }

    /// How many consumers are waiting for the source (made, not yet fired, not cancelled).
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::{Deferred, SharedResult};
    ///
    /// let (source, _resolver) = Deferred::<u32>::pending();
    /// let shared = SharedResult::new(source);
    /// let (a, b) = (shared.consumer(), shared.consumer());
    /// a.cancel();
    /// assert_eq!(shared.waiting(), 1);
    /// # drop(b);
    /// ```
    pub fn waiting(&self) -> usize {
        match &self.handle.core.state.lock().phase {
            Phase::Pending { waiting, .. } => waiting.len(),
            Phase::Fired(_) => 0,
        }
    }
}

impl<T> Core<T> {
    /// The source fired: every waiting consumer gets a copy, in the order they were made.
    fn fire(&self, result: Result<T, SharedFailure>)
    where
        T: Clone + Shareable + 'static,
    {
        let result = Ptr::new(result);
        let (waiting, answer) = {
            let mut state = self.state.lock();
            let phase = std::mem::replace(&mut state.phase, Phase::Fired(result.clone()));
            let waiting = match phase {
                Phase::Pending { waiting, .. } => waiting,
                Phase::Fired(_) => unreachable!("a source fires once"),
            };
            // The answer to this `SharedResult`'s own cancel of the source is expected; any
            // other failure — one the source fired with as the last handle went, or its
            // canceller answered with — is not.
            let answer = state.cancelled_source
                && matches!(&*result, Err(shared) if shared.failure().is_cancelled());
            // Whether a waiting consumer gets it is known once each is fired: one cancelled
            // meanwhile, on another thread, refuses it (set again by a consumer made now).
            state.consumed = false;
            state.delivering = true;
            (waiting, answer)
        };
        let mut delivered = false;
        for (_, consumer) in waiting {
            delivered |= consumer.settle(copy(&result)).is_ok();
        }
        // Nobody can ever see it: no consumer got it (none was made, or each was cancelled,
        // before the source fired or as it fired), and no more can be made.
        let report = {
            let mut state = self.state.lock();
            state.delivering = false;
            state.consumed |= delivered;
            !state.handles && !state.consumed && !answer
        };
        if report && let Err(shared) = &*result {
            unhandled::report(shared.to_failure());
        }
    }

    /// The consumer with `ticket` was cancelled: it leaves and fails with `Cancelled`; if it was
    /// the last one wanting the result, and no more can be made, the source is cancelled.
    fn forget(&self, ticket: u64)
    where
        T: Shareable + 'static,
    {
        let (consumer, source) = {
            let mut state = self.state.lock();
            let consumer = match &mut state.phase {
                Phase::Pending { waiting, .. } => waiting.remove(&ticket),
                Phase::Fired(_) => None,
            };
            (consumer, self.source_to_cancel(&mut state))
        };
        if let Some(consumer) = consumer {
            drop(consumer.settle(Err(Failure::cancelled_in_canceller())));
        }
        if let Some(source) = source {
            source.cancel_in_canceller();
        }
    }

    /// The source's cancel handle, if nobody can want its result any more (rule 4).
    fn source_to_cancel(&self, state: &mut State<T>) -> Option<CancelHandle> {
        if state.handles || state.cancelled_source {
            return None;
        }
        match &state.phase {
            Phase::Pending {
                waiting, source, ..
            } if waiting.is_empty() => {
                state.cancelled_source = true;
                Some(source.clone())
            }
            _ => None,
        }
    }
}

impl<T> Drop for Handle<T> {
    /// The last handle went: no more consumers can be made.
    fn drop(&mut self) {
        let (source, unseen) = {
            let mut state = self.core.state.lock();
            state.handles = false;
            let unseen = match &state.phase {
                // While the result is handed to the consumers, `fire` decides when it is done.
                Phase::Fired(result) if !state.consumed && !state.delivering && result.is_err() => {
                    Some(result.clone())
                }
                _ => None,
            };
            (self.core.source_to_cancel(&mut state), unseen)
        };
        if let Some(source) = source {
            source.cancel_from(None);
        }
        if let Some(result) = unseen
            && let Err(shared) = &*result
        {
            unhandled::report(shared.to_failure());
        }
    }
}

impl<T> Clone for SharedResult<T> {
    /// Another handle on the same `SharedResult`.
    fn clone(&self) -> SharedResult<T> {
        SharedResult {
            handle: self.handle.clone(),
        }
    }
}

impl<T> fmt::Debug for SharedResult<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.handle.core.state.lock();
        let (fired, waiting) = match &state.phase {
            Phase::Pending { waiting, .. } => (false, waiting.len()),
            Phase::Fired(_) => (true, 0),
        };
        f.debug_struct("SharedResult")
            .field("fired", &fired)
            .field("waiting", &waiting)
            .finish()
    }
}

impl<T, E> Deferred<T, E>
where
    T: Clone + Shareable + 'static,
    E: FromFailure + Into<Failure> + Sendable + 'static,
{
    /// This Deferred's result for many consumers: [`SharedResult::new`]`(self)`.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::Deferred;
    ///
    /// let shared = Deferred::<_>::succeed("hello").into_shared();
    /// assert_eq!(shared.consumer().wait().unwrap(), "hello");
    /// assert_eq!(shared.consumer().wait().unwrap(), "hello");
    /// ```
    #[track_caller]
    pub fn into_shared(self) -> SharedResult<T> {
        SharedResult::new(self)
    }
}
