//! `race`: the first success wins and the losers are cancelled (Twisted's `race`); and
//! `FailureGroup`, its failure when every input fails.

use super::Deferred;
use super::Sendable;
use super::fan_in::{Leftovers, Policy, Sorted, fan_in, into_failure};
use crate::bounds::FromFailure;
use crate::failure::Failure;
use crate::outcome::FailureGroup;
use std::panic::Location;

/// Fires with the first input to succeed, as `(index, value)`, and cancels all the others
/// (Twisted's `race`; JavaScript's `Promise.any`). Failures do not end the race: only when every
/// input has failed does it fail, with a [`FailureGroup`] holding every failure in input order.
/// (To end on the first input to fire, success or failure — `Promise.race` — use
/// [`first_settled`](crate::first_settled).)
///
/// The race takes its inputs and handles all their outcomes: the failures of inputs that lost,
/// and whatever the cancelled losers answer (even a late success), are dropped, not reported.
/// Cancelling the race's result cancels every input; it then fails with a `FailureGroup` of their
/// answers — unless a canceller succeeds, which wins the race.
///
/// No inputs: the race fails at once with an empty `FailureGroup` (every one of no inputs failed,
/// as JavaScript's `Promise.any([])`). Twisted's `race([])` never fires instead; a Deferred that
/// can never fire would hang whoever waits on it.
///
/// ```
/// # extern crate deferred_core as deferred;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
/// use deferred::{race, Deferred, Failure, FailureGroup};
///
/// let stopped = Arc::new(AtomicBool::new(false));
/// let flag = stopped.clone();
/// let (primary, _p) = Deferred::<&str>::with_canceller(move || flag.store(true, Ordering::SeqCst));
/// let (mirror, mirror_resolver) = Deferred::<&str>::pending();
/// let winner = race([primary, mirror]);
/// mirror_resolver.callback("from the mirror");
/// assert_eq!(winner.wait().unwrap(), (1, "from the mirror"));
/// assert!(stopped.load(Ordering::SeqCst)); // the loser was cancelled
///
/// let failed = race([Deferred::<u32>::fail(Failure::msg("a")), Deferred::fail(Failure::msg("b"))]);
/// let group = failed.wait().unwrap_err().trap::<FailureGroup>().unwrap();
/// assert_eq!(group.failures.len(), 2);
/// ```
#[cfg_attr(feature = "registry", track_caller)]
pub fn race<T, E>(inputs: impl IntoIterator<Item = Deferred<T, E>>) -> Deferred<(usize, T)>
where
    T: Sendable + 'static,
    E: FromFailure + Into<Failure> + Sendable + 'static,
{
    fan_in(
        inputs.into_iter().collect(),
        FirstToSucceed,
        Leftovers {
            consume_errors: true,
            cancel_when_decided: true,
        },
        Location::caller(),
        "race",
    )
}

/// The first success decides; when all fail, the outcome is every failure.
struct FirstToSucceed;

impl<T, E> Policy<T, E> for FirstToSucceed
where
    T: Sendable + 'static,
    E: Into<Failure> + Sendable + 'static,
{
    type Decision = (usize, T);
    type Kept = E;
    type Output = (usize, T);
    type Error = Failure;

    fn sort(&self, index: usize, result: Result<T, E>) -> Sorted<(usize, T), E> {
        match result {
            Ok(value) => Sorted::Decides((index, value)),
            Err(error) => Sorted::Kept(error),
        }
    }

    fn decided(&self, decision: (usize, T)) -> Result<(usize, T), Failure> {
        Ok(decision)
    }

    fn settled(&self, failures: Vec<E>) -> Result<(usize, T), Failure> {
        let failures = failures.into_iter().map(into_failure).collect();
        Err(Failure::new(FailureGroup { failures }))
    }

    fn unwanted(error: E) -> Option<E> {
        Some(error)
    }
}
