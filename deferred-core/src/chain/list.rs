//! `DeferredList` and `settle_all`: wait on many Deferreds at once (Twisted's `DeferredList`).
//!
//! Twisted's `DeferredList(ds, fireOnOneCallback, fireOnOneErrback, consumeErrors)` returns one
//! of three differently shaped results depending on its flags; here each choice is a method with
//! its own result type, so no `(bool, value-or-Failure)` tuples:
//!
//! | Twisted                         | here                                   | fires with                     |
//! |---------------------------------|----------------------------------------|--------------------------------|
//! | `DeferredList(ds)`              | [`DeferredList::all`], [`settle_all`]  | `Vec<Result<T, E>>`            |
//! | `fireOnOneCallback=True`        | [`DeferredList::fire_on_one_callback`] | [`FirstSuccess`]               |
//! | `fireOnOneErrback=True`         | [`DeferredList::fire_on_one_errback`], [`gather_results`](crate::gather_results) | `Vec<T>`, or fails with [`FirstError`](crate::FirstError) |
//! | `consumeErrors=True`            | [`DeferredList::consume_errors`]       |                                |

use std::fmt;
use std::panic::Location;

use super::Deferred;
use super::Sendable;
use super::fan_in::{FireOnFirstError, Leftovers, Policy, Sorted, fan_in};

use crate::bounds::FromFailure;
use crate::failure::Failure;
use crate::outcome::FirstSuccess;
use crate::unhandled;

/// Many Deferreds waited on as one (Twisted's `DeferredList`): pick how the result fires with
/// [`all`](DeferredList::all), [`fire_on_one_callback`](DeferredList::fire_on_one_callback) or
/// [`fire_on_one_errback`](DeferredList::fire_on_one_errback).
///
/// The list takes its inputs: their results go into the list's result, in input order, whatever
/// order they fire in (a result taken, failures included, is then yours: dropping it drops them,
/// like any value). Cancelling the list's result cancels every input that is still pending;
/// the result then comes from the inputs' answers (a canceller may even succeed).
///
/// A failure is never lost: one the result does not carry (an input that failed after a
/// `fire_on_one_*` list fired, or before it fired on another input's success) is reported through
/// the [unhandled-error hook](crate::set_unhandled_hook), unless the list
/// [consumes errors](DeferredList::consume_errors) or the failure is a cancellation answering one
/// the list made. So are the failures a result holds as values (in the `Vec` of
/// [`all`](DeferredList::all), the `AllFailed` of
/// [`fire_on_one_callback`](DeferredList::fire_on_one_callback)) when nobody ever takes that
/// result — its Deferred dropped unread, with no step on it, after it fired or before — each as
/// it is, once, in input order, unless the list consumes errors. (Dropped before it fired, the
/// failures are reported as the inputs fire; if some inputs never will, their producers having
/// stopped because nobody can see the result, the failures kept from the others are reported
/// as the list lets go of them; returned by a step, the result is the waiting chain's, whose
/// end, dropped unread, reports them.) A result taken (`wait`, `.await`, a step, `chain!`,
/// [`poll_fired`](crate::Deferred::poll_fired), or given to what takes it: another combinator,
/// `map_err`, `add_timeout`, a `SharedResult`) reports nothing.
///
/// ```
/// # extern crate deferred_core as deferred;
/// use deferred::{Deferred, DeferredList, Failure};
///
/// let (slow, resolver) = Deferred::<u32>::pending();
/// let list = DeferredList::new([Deferred::succeed(1), Deferred::fail(Failure::msg("down")), slow]).all();
/// assert!(!list.is_fired());
///
/// resolver.callback(3);
/// let results = list.wait().unwrap();
/// assert_eq!(results[0].as_ref().unwrap(), &1);
/// assert_eq!(results[1].as_ref().unwrap_err().to_string(), "down");
/// assert_eq!(results[2].as_ref().unwrap(), &3);
/// ```
#[must_use = "a DeferredList does nothing until you choose how it fires (`all`, \
              `fire_on_one_callback` or `fire_on_one_errback`) or await it (`all`); dropping it \
              drops its inputs"]
pub struct DeferredList<T, E: 'static = Failure> {
    inputs: Vec<Deferred<T, E>>,
    consume_errors: bool,
}

impl<T, E> DeferredList<T, E>
where
    T: Sendable + 'static,
    E: FromFailure + Sendable + 'static,
{
    /// A list over `inputs`; nothing is attached to them until you choose how it fires.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::{Deferred, DeferredList};
    ///
    /// let list = DeferredList::new((1..=3).map(Deferred::<u32>::succeed));
    /// assert_eq!(list.len(), 3);
    /// ```
    pub fn new(inputs: impl IntoIterator<Item = Deferred<T, E>>) -> DeferredList<T, E> {
        DeferredList {
            inputs: inputs.into_iter().collect(),
            consume_errors: false,
        }
    }

    /// Drops the input failures that the result does not carry, instead of reporting them as
    /// unhandled (Twisted's `consumeErrors=True`). Use it when such failures are expected: the
    /// losers of `fire_on_one_callback`, the later failures after `fire_on_one_errback`. The
    /// failures the result carries are not reported either when nobody takes the result (its
    /// Deferred dropped unread).
    ///
    /// (Twisted needs `consumeErrors` even for a plain list whose result is read, because each
    /// failure also stays in its input Deferred; here the list owns its inputs, so a failure the
    /// result carries is handed to you once, and [`all`](DeferredList::all) reports one only
    /// when nobody ever takes its result.)
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::{Deferred, DeferredList, Failure, FirstSuccess};
    ///
    /// let (late, resolver) = Deferred::<u32>::pending();
    /// let first = DeferredList::new([Deferred::succeed(1), late])
    ///     .consume_errors()
    ///     .fire_on_one_callback();
    /// resolver.errback(Failure::msg("expected, and not reported"));
    /// assert!(matches!(first.wait().unwrap(), FirstSuccess::Succeeded { index: 0, value: 1 }));
    /// ```
    pub fn consume_errors(mut self) -> DeferredList<T, E> {
        self.consume_errors = true;
        self
    }

    /// How many inputs the list has.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::{Deferred, DeferredList};
    ///
    /// let list: DeferredList<u32> = (1..=3).map(Deferred::succeed).collect();
    /// assert_eq!(list.len(), 3);
    /// ```
    pub fn len(&self) -> usize {
        self.inputs.len()
    }

    /// Whether the list has no inputs.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// let list = deferred::DeferredList::<u32>::new([]);
    /// assert!(list.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }

    /// Fires when every input has fired, with every result in input order (Twisted's default
    /// `DeferredList`; the same as [`settle_all`]). It never fails on its own: failures are in the
    /// list. An empty list fires at once with `[]`, as in Twisted.
    ///
    /// The failures in the list are yours once you take it. If nobody ever does — the Deferred
    /// is dropped unread, with no step on it, before or after it fires — each is reported
    /// through the [unhandled-error hook](crate::set_unhandled_hook), as it is, once, unless the
    /// list [consumes errors](DeferredList::consume_errors) (as Twisted logs the failures a
    /// `DeferredList` leaves in its inputs).
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::{Deferred, DeferredList, Failure};
    ///
    /// let results = DeferredList::new([Deferred::<u32>::succeed(1), Deferred::fail(Failure::msg("no"))])
    ///     .all()
    ///     .wait()
    ///     .unwrap();
    /// assert!(results[0].is_ok() && results[1].is_err());
    ///
    /// let empty = DeferredList::<u32>::new([]).all();
    /// assert!(empty.wait().unwrap().is_empty());
    /// ```
    #[cfg_attr(feature = "registry", track_caller)]
    pub fn all(self) -> Deferred<Vec<Result<T, E>>, E> {
        self.build(AllResults, Location::caller(), "DeferredList::all")
    }

    /// Fires with the first success, or — when every input has failed — with all the failures
    /// (Twisted's `fireOnOneCallback=True`). The other inputs are left running (use
    /// [`race`](crate::race) to cancel them); their failures are reported as unhandled unless the
    /// list [consumes errors](DeferredList::consume_errors). A late success is dropped, unseen,
    /// except an item a [`DeferredQueue`](crate::DeferredQueue) hands to a `get` left running:
    /// it goes to the queue's next `get`.
    ///
    /// An empty list fires at once with `AllFailed([])` — all of its no inputs failed. (Twisted's
    /// never fires; a Deferred that can never fire would hang whoever waits on it.) The failures
    /// of an `AllFailed` nobody ever takes (the Deferred dropped unread, with no step on it) are
    /// reported, each once, unless the list consumes errors.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::{Deferred, DeferredList, Failure, FirstSuccess};
    ///
    /// let (a, ra) = Deferred::<&str>::pending();
    /// let (b, rb) = Deferred::<&str>::pending();
    /// let first = DeferredList::new([a, b]).fire_on_one_callback();
    /// rb.callback("b");
    /// assert!(matches!(first.wait().unwrap(), FirstSuccess::Succeeded { index: 1, value: "b" }));
    /// ra.callback("a"); // ignored: the list has fired
    /// ```
    #[cfg_attr(feature = "registry", track_caller)]
    pub fn fire_on_one_callback(self) -> Deferred<FirstSuccess<T, E>, E> {
        self.build(
            FireOnFirstSuccess,
            Location::caller(),
            "DeferredList::fire_on_one_callback",
        )
    }

    /// Fires with every value in input order, or fails with the first failure, wrapped in a
    /// [`FirstError`](crate::FirstError) that says which input it came from (Twisted's
    /// `fireOnOneErrback=True`; [`gather_results`](crate::gather_results) is this without
    /// options). The other inputs are left running; their later failures are reported as
    /// unhandled unless the list [consumes errors](DeferredList::consume_errors); a late success
    /// is dropped, except an item a [`DeferredQueue`](crate::DeferredQueue) hands to a `get` left
    /// running: it goes to the queue's next `get`, as does an item a `get` had been handed before
    /// the failure (the values kept for the result are dropped). An empty list fires at once
    /// with `[]`.
    ///
    /// Cancelling the result cancels every pending input, in input order; the first failure to
    /// arrive then decides (normally the first pending input's [`Cancelled`](crate::Cancelled)).
    /// An input that another thread fires as the cancel reaches it has nothing left to cancel,
    /// and the cancel goes on: its answer may arrive after the next input's `Cancelled`, which
    /// then decides, and its failure, left out, is reported as any later one is.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::{Deferred, DeferredList, Failure, FirstError};
    ///
    /// let gathered = DeferredList::new([Deferred::<u32>::succeed(1), Deferred::fail(Failure::msg("no"))])
    ///     .fire_on_one_errback();
    /// let failure = gathered.wait().unwrap_err();
    /// let first = failure.downcast_ref::<FirstError>().unwrap();
    /// assert_eq!(first.index, 1);
    /// assert_eq!(first.failure.to_string(), "no");
    /// ```
    #[cfg_attr(feature = "registry", track_caller)]
    pub fn fire_on_one_errback(self) -> Deferred<Vec<T>, Failure>
    where
        E: Into<Failure>,
    {
        self.build(
            FireOnFirstError,
            Location::caller(),
            "DeferredList::fire_on_one_errback",
        )
    }

    /// The list's fan-in, under `policy`, called at `at` as `made_by` (for the registry).
    pub(super) fn build<P: Policy<T, E>>(
        self,
        policy: P,
        at: &'static Location<'static>,
        made_by: &'static str,
    ) -> Deferred<P::Output, P::Error> {
        let leftovers = Leftovers {
            consume_errors: self.consume_errors,
            cancel_when_decided: false,
        };
        fan_in(self.inputs, policy, leftovers, at, made_by)
    }
}

/// `iter.collect::<DeferredList<_>>()`: [`DeferredList::new`].
impl<T, E> FromIterator<Deferred<T, E>> for DeferredList<T, E>
where
    T: Sendable + 'static,
    E: FromFailure + Sendable + 'static,
{
    fn from_iter<I: IntoIterator<Item = Deferred<T, E>>>(inputs: I) -> DeferredList<T, E> {
        DeferredList::new(inputs)
    }
}

impl<T, E: 'static> fmt::Debug for DeferredList<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeferredList")
            .field("inputs", &self.inputs)
            .field("consume_errors", &self.consume_errors)
            .finish()
    }
}

/// Awaiting a list awaits [`all`](DeferredList::all): every result, in input order (Twisted's
/// `yield DeferredList(ds)`).
///
/// ```
/// # extern crate deferred_core as deferred;
/// use deferred::{Deferred, DeferredList, Failure};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let list = DeferredList::new([Deferred::<u32>::succeed(1), Deferred::fail(Failure::msg("no"))]);
/// let results = list.await.unwrap();
/// assert_eq!(results[0].as_ref().unwrap(), &1);
/// assert!(results[1].is_err());
/// # }
/// ```
impl<T, E> std::future::IntoFuture for DeferredList<T, E>
where
    T: Sendable + 'static,
    E: FromFailure + Sendable + 'static,
{
    type Output = Result<Vec<Result<T, E>>, E>;
    type IntoFuture = Deferred<Vec<Result<T, E>>, E>;

    fn into_future(self) -> Deferred<Vec<Result<T, E>>, E> {
        self.all()
    }
}

/// Waits for every input and fires with all their results, in input order (JavaScript's
/// `Promise.allSettled`; Twisted's plain `DeferredList`). It never fails on its own: each failure
/// is in its slot. No inputs: fires at once with `[]`. Cancelling it cancels every input; it then
/// fires with their answers.
///
/// The failures in the `Vec` are yours once you take it (`wait`, `.await`, a step, `chain!`,
/// `poll_fired`, or another combinator, `map_err`, `add_timeout`, a `SharedResult` given it).
/// If nobody ever does — the Deferred is dropped unread, with no step on it, before or after it
/// fires, or so is the chain a step that returned it waits in — each is reported through the [unhandled-error hook](crate::set_unhandled_hook), as
/// it is, once, in input order (Twisted logs the failures a `DeferredList` leaves in its
/// inputs); use [`DeferredList::consume_errors`] and [`all`](DeferredList::all) for a list
/// that reports none.
///
/// ```
/// # extern crate deferred_core as deferred;
/// use deferred::{settle_all, Deferred, Failure};
///
/// let (d, _resolver) = Deferred::<u32>::pending();
/// let all = settle_all([d, Deferred::fail(Failure::msg("no"))]);
/// all.cancel();
/// let results = all.wait().unwrap();
/// assert!(results[0].as_ref().unwrap_err().is_cancelled());
/// assert_eq!(results[1].as_ref().unwrap_err().to_string(), "no");
/// ```
#[cfg_attr(feature = "registry", track_caller)]
pub fn settle_all<T, E>(
    inputs: impl IntoIterator<Item = Deferred<T, E>>,
) -> Deferred<Vec<Result<T, E>>, E>
where
    T: Sendable + 'static,
    E: FromFailure + Sendable + 'static,
{
    DeferredList::new(inputs).build(AllResults, Location::caller(), "settle_all")
}

/// `all`: nothing decides early; the outcome is every result.
struct AllResults;

impl<T, E> Policy<T, E> for AllResults
where
    T: Sendable + 'static,
    E: FromFailure + Sendable + 'static,
{
    type Decision = std::convert::Infallible;
    type Kept = Result<T, E>;
    type Output = Vec<Result<T, E>>;
    type Error = E;

    fn sort(&self, _index: usize, result: Result<T, E>) -> Sorted<Self::Decision, Self::Kept> {
        Sorted::Kept(result)
    }

    fn decided(&self, decision: Self::Decision) -> Result<Self::Output, E> {
        match decision {}
    }

    fn settled(&self, results: Vec<Result<T, E>>) -> Result<Self::Output, E> {
        Ok(results)
    }

    fn unwanted(result: Result<T, E>) -> Option<E> {
        result.err()
    }

    fn kept_success(result: Result<T, E>) -> Result<T, Result<T, E>> {
        result.map_err(Err)
    }

    fn holds_failures(results: &Vec<Result<T, E>>) -> Option<fn(Vec<Result<T, E>>)> {
        if results.iter().any(Result::is_err) {
            Some(report_failed::<T, E>)
        } else {
            None
        }
    }
}

/// Reports the failures of an outcome of every result nobody read, in input order; the values
/// are dropped after them (a panic in one's `Drop` leaves no failure unreported).
fn report_failed<T, E: 'static>(results: Vec<Result<T, E>>) {
    let values: Vec<T> = results
        .into_iter()
        .filter_map(|result| result.map_err(unhandled::report).ok())
        .collect();
    drop(values);
}

/// `fire_on_one_callback`: the first success decides; when every input failed, the outcome is
/// their failures.
struct FireOnFirstSuccess;

impl<T, E> Policy<T, E> for FireOnFirstSuccess
where
    T: Sendable + 'static,
    E: FromFailure + Sendable + 'static,
{
    type Decision = (usize, T);
    type Kept = E;
    type Output = FirstSuccess<T, E>;
    type Error = E;

    fn sort(&self, index: usize, result: Result<T, E>) -> Sorted<(usize, T), E> {
        match result {
            Ok(value) => Sorted::Decides((index, value)),
            Err(error) => Sorted::Kept(error),
        }
    }

    fn decided(&self, (index, value): (usize, T)) -> Result<Self::Output, E> {
        Ok(FirstSuccess::Succeeded { index, value })
    }

    fn settled(&self, failures: Vec<E>) -> Result<Self::Output, E> {
        Ok(FirstSuccess::AllFailed(failures))
    }

    fn unwanted(error: E) -> Option<E> {
        Some(error)
    }

    fn holds_failures(outcome: &FirstSuccess<T, E>) -> Option<fn(FirstSuccess<T, E>)> {
        match outcome {
            FirstSuccess::AllFailed(failures) if !failures.is_empty() => {
                Some(report_all_failed::<T, E>)
            }
            FirstSuccess::AllFailed(_) | FirstSuccess::Succeeded { .. } => None,
        }
    }
}

/// Reports the failures of an `AllFailed` nobody read, in input order.
fn report_all_failed<T, E: 'static>(outcome: FirstSuccess<T, E>) {
    if let FirstSuccess::AllFailed(failures) = outcome {
        failures.into_iter().for_each(unhandled::report);
    }
}
