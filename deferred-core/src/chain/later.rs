//! `defer_later`: call a function after a delay on a [`Clock`], as a Deferred (Twisted's
//! `task.deferLater`).

use std::time::Duration;

use super::{Canceller, Clock, Deferred, IntoDeferred, Lock, Ptr, Resolver, Sendable};
use crate::failure::Failure;

/// Calls `f` once `delay` has passed on `clock`, and fires with what it returns (Twisted's
/// `task.deferLater`). `f` returns what a callback returns: a `Result`, or a Deferred to wait on.
///
/// The rules:
///
/// 1. `f` runs when the clock's call runs (the deadline is inclusive, as for
///    [`add_timeout`](Deferred::add_timeout)), on the thread that runs the clock's calls; its
///    outcome is the result — a panic in it becomes a [`Panicked`](crate::Panicked) failure.
/// 2. Cancelling before the call cancels the clock's call: `f` never runs (it is dropped), and the
///    Deferred fails with [`Cancelled`](crate::Cancelled).
/// 3. Cancelling after `f` returned a pending Deferred cancels that Deferred.
///
/// ```
/// # extern crate deferred_core as deferred;
/// use std::time::Duration;
/// use deferred::{defer_later, ManualClock};
///
/// let clock = ManualClock::new();
/// let greeting = defer_later(&clock, Duration::from_secs(3), || Ok("hello"));
/// clock.advance(Duration::from_secs(2));
/// assert!(!greeting.is_fired());
/// clock.advance(Duration::from_secs(1));
/// assert_eq!(greeting.wait().unwrap(), "hello");
///
/// let never = defer_later(&clock, Duration::from_secs(1), || -> Result<(), _> { unreachable!() });
/// never.cancel(); // before the call: `f` never runs
/// assert_eq!(clock.pending(), 0);
/// assert!(never.wait().unwrap_err().is_cancelled());
/// ```
#[track_caller]
pub fn defer_later<C, F, R>(clock: &C, delay: Duration, f: F) -> Deferred<R::Value>
where
    C: Clock + ?Sized,
    F: FnOnce() -> R + Sendable + 'static,
    R: IntoDeferred<Failure>,
    R::Value: Sendable + 'static,
{
    // The clock's call, once scheduled, for the canceller (which may run before it is stored:
    // then the resolver is gone from `fire`, and the call finds nothing to fire). The resolver
    // is in `fire`, which only the call owns (the canceller holds it weakly): a clock that drops
    // the call without running it (a clock dropped, a runtime shut down, a loop stopped) drops
    // the resolver, and the Deferred fails with `NeverFired` instead of waiting for ever in a
    // cycle (chain, canceller, resolver) that nothing frees. The canceller takes the resolver
    // out and then cancels the call (a resolver dropped while its canceller runs leaves the
    // Deferred `Cancelled`, not `NeverFired`, in either order).
    let timer: Ptr<Lock<Option<Canceller>>> = Ptr::new(Lock::new(None));
    let fire: Ptr<Lock<Option<Resolver<(), Failure>>>> = Ptr::new(Lock::new(None));
    let (on_cancel, to_cancel) = (timer.clone(), Ptr::downgrade(&fire));
    let (due, resolver) = Deferred::<(), Failure>::with_canceller(move || {
        // The resolver first: cancelling the call drops it, and `fire` with it.
        let resolver = to_cancel.upgrade().and_then(|fire| fire.lock().take());
        let cancel = on_cancel.lock().take();
        if let Some(cancel) = cancel {
            cancel();
        }
        if let Some(resolver) = resolver {
            drop(resolver.settle(Err(Failure::cancelled_in_canceller())));
        }
    });
    resolver.held_by("defer_later");
    *fire.lock() = Some(resolver);
    let call = clock.call_later(
        delay,
        Box::new(move || {
            let resolver = fire.lock().take();
            if let Some(resolver) = resolver {
                resolver.callback(());
            }
        }),
    );
    *timer.lock() = Some(Box::new(move || call.cancel()));
    due.add_callback(move |()| f())
}
