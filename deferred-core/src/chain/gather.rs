//! `gather_results`: every value in input order, or the first failure (Twisted's
//! `gatherResults`), and `FirstError`, the failure that says which input failed.

use super::Deferred;
use super::Sendable;
use super::fan_in::FireOnFirstError;
use super::list::DeferredList;
use crate::bounds::FromFailure;
use crate::failure::Failure;
use std::panic::Location;

/// Waits for every input and fires with their values in input order; fails as soon as one input
/// fails, with a [`FirstError`](crate::FirstError) holding that failure and the input's index (Twisted's
/// `gatherResults`). No inputs: fires at once with `[]`.
///
/// The other inputs are left running after a failure, as in Twisted; a failure among them that
/// nobody sees is reported through the [unhandled-error hook](crate::set_unhandled_hook); a late
/// success is dropped, except an item a [`DeferredQueue`](crate::DeferredQueue) hands to a `get`
/// left running: it goes to the queue's next `get`, as does an item a `get` had been handed
/// before the failure (the values kept for the result are dropped). To drop such failures
/// instead, use `DeferredList::new(inputs).consume_errors().fire_on_one_errback()`. Cancelling
/// the result cancels every input, in input order; it then fails with the first failure to
/// arrive (normally the first pending input's [`Cancelled`](crate::Cancelled), wrapped in a
/// `FirstError`). An input that another thread fires as the cancel reaches it has nothing left
/// to cancel, and the cancel goes on: its answer may arrive after the next input's `Cancelled`,
/// which then decides, and its failure, left out, is reported as any later one is (unlike
/// [`first_settled`](crate::first_settled)'s cancel, which stops at such an input).
///
/// Each kind has its own: `deferred::gather_results` takes `Deferred`s, and
/// `deferred::local::gather_results` takes `LocalDeferred`s.
///
/// ```
/// # extern crate deferred_core as deferred;
/// use deferred::{gather_results, Deferred, Failure, FirstError};
///
/// let (name, resolver) = Deferred::<String>::pending();
/// let both = gather_results([Deferred::succeed("alice".to_string()), name]);
/// resolver.callback("bob".to_string());
/// assert_eq!(both.wait().unwrap(), ["alice", "bob"]);
///
/// let failed = gather_results([Deferred::<u32>::succeed(1), Deferred::fail(Failure::msg("no route"))]);
/// let failure = failed.wait().unwrap_err();
/// let first = failure.trap::<FirstError>().unwrap();
/// assert_eq!((first.index, first.failure.to_string()), (1, "no route".to_string()));
/// ```
#[cfg_attr(feature = "registry", track_caller)]
pub fn gather_results<T, E>(inputs: impl IntoIterator<Item = Deferred<T, E>>) -> Deferred<Vec<T>>
where
    T: Sendable + 'static,
    E: FromFailure + Into<Failure> + Sendable + 'static,
{
    DeferredList::new(inputs).build(FireOnFirstError, Location::caller(), "gather_results")
}
