//! `maybe_deferred`: call a function now and get its outcome as a Deferred, whatever it was.

use std::panic::{AssertUnwindSafe, Location, catch_unwind};

use super::Sendable;
use super::{Deferred, IntoDeferred, into_next};
use crate::failure::Failure;

/// Calls `f` now, on this thread, and returns its outcome as a Deferred (Twisted's
/// `maybeDeferred`): an `Ok` value gives a fired success, an `Err` a fired failure, a returned
/// Deferred is handed back as it is (pending or not), and a panic becomes a
/// [`Panicked`](crate::Panicked) failure instead of unwinding into the caller.
///
/// `f` returns what a callback returns ([`IntoDeferred`]): a `Result` or a Deferred. Wrap a plain
/// value in `Ok(...)`. A failure that `f` returned or raised records this call as its origin.
///
/// ```
/// # extern crate deferred_core as deferred;
/// use deferred::{maybe_deferred, Deferred, Failure};
///
/// let ok = maybe_deferred(|| Ok(40 + 2));
/// assert_eq!(ok.wait().unwrap(), 42);
///
/// let parsed = maybe_deferred(|| Ok("x".parse::<u32>()?));
/// assert!(parsed.wait().is_err());
///
/// let panicked = maybe_deferred(|| -> Result<u32, Failure> { panic!("bad input") });
/// assert_eq!(panicked.wait().unwrap_err().to_string(), "a step panicked: bad input");
///
/// let (later, resolver) = Deferred::<u32>::pending();
/// let same = maybe_deferred(move || later);
/// resolver.callback(7);
/// assert_eq!(same.wait().unwrap(), 7);
/// ```
#[track_caller]
pub fn maybe_deferred<R, F>(f: F) -> Deferred<R::Value>
where
    F: FnOnce() -> R,
    R: IntoDeferred<Failure>,
    R::Value: Sendable + 'static,
{
    maybe_deferred_at(Location::caller(), f)
}

/// [`maybe_deferred`] at `at`: a helper's own call (`map_concurrent`'s) is placed where the user
/// called the helper.
#[inline]
pub(crate) fn maybe_deferred_at<R, F>(at: &'static Location<'static>, f: F) -> Deferred<R::Value>
where
    F: FnOnce() -> R,
    R: IntoDeferred<Failure>,
    R::Value: Sendable + 'static,
{
    match catch_unwind(AssertUnwindSafe(f)) {
        // A failure `f` returned (or a Deferred that had failed when it was made) is marked as
        // raised here. A Deferred whose result is in its chain (fired by its Resolver, or a
        // `DeferredQueue` get handed an item) is handed back as it is, the result left in the
        // chain: taken out of it, a queue's item would no longer go back to the queue if the
        // Deferred is dropped unread.
        Ok(outcome) => super::super::raised_at(into_next(outcome), at),
        Err(panic) => Deferred::from_result(Err(Failure::from_panic(panic, Some(at)))),
    }
}
