//! `first_settled`: the first input to fire, success or failure, decides, and the others are
//! cancelled (JavaScript's `Promise.race`, futures' `select`). Not `race`, where only a success
//! wins (Twisted's `race`, `Promise.any`).

use super::Deferred;
use super::Sendable;
use super::fan_in::{Leftovers, Policy, Sorted, fan_in};
use crate::bounds::FromFailure;
use crate::failure::Failure;
use crate::outcome::NoInputs;
use std::panic::Location;

/// Fires with whatever input fires first — its value as `(index, value)`, or its failure as it
/// is — and cancels all the others (JavaScript's `Promise.race`, futures' `select`). Unlike
/// [`race`](crate::race), where a failure drops out and only a success wins, here a failure that
/// comes first ends it.
///
/// The rules (those of every combinator, such as [`race`](crate::race) and
/// [`gather_results`](crate::gather_results)):
///
/// 1. The first input to fire decides, whichever thread fires it; inputs that fired before the
///    call decide in input order (the first of them wins).
/// 2. Every other input is cancelled once the outcome is decided; whatever they answer — the
///    cancellation, a late success, a late failure — is dropped, not reported.
/// 3. Cancelling the result cancels every input, in input order; the first answer then decides:
///    normally the first pending input's [`Cancelled`](crate::Cancelled), or its value if its
///    canceller succeeds (a later input's canceller that succeeds answers after that, too late).
///    An input another thread fires as the cancel reaches it has nothing left to cancel: its
///    answer decides, and the inputs after it are cancelled as losers.
/// 4. No inputs: fails at once with [`NoInputs`] (`Promise.race([])` never settles; a Deferred
///    that can never fire would hang whoever waits on it).
///
/// ```
/// # extern crate deferred_core as deferred;
/// use deferred::{first_settled, Deferred, Failure};
///
/// let (reply, _reply_resolver) = Deferred::<&str>::with_canceller(|| println!("request dropped"));
/// let (deadline, deadline_resolver) = Deferred::<&str>::pending();
/// let first = first_settled([reply, deadline]);
/// deadline_resolver.errback(Failure::msg("too slow")); // prints "request dropped"
/// assert_eq!(first.wait().unwrap_err().to_string(), "too slow");
///
/// let won = first_settled([Deferred::<u32>::pending().0, Deferred::succeed(7)]);
/// assert_eq!(won.wait().unwrap(), (1, 7));
/// ```
#[cfg_attr(feature = "registry", track_caller)]
pub fn first_settled<T, E>(
    inputs: impl IntoIterator<Item = Deferred<T, E>>,
) -> Deferred<(usize, T), E>
where
    T: Sendable + 'static,
    E: FromFailure + Sendable + 'static,
{
    fan_in(
        inputs.into_iter().collect(),
        FirstToSettle,
        Leftovers {
            consume_errors: true,
            cancel_when_decided: true,
        },
        Location::caller(),
        "first_settled",
    )
}

/// Any result decides.
struct FirstToSettle;

impl<T, E> Policy<T, E> for FirstToSettle
where
    T: Sendable + 'static,
    E: FromFailure + Sendable + 'static,
{
    type Decision = (usize, Result<T, E>);
    /// Nothing is ever kept: every result decides.
    type Kept = std::convert::Infallible;
    type Output = (usize, T);
    type Error = E;

    const ANY_ANSWER_DECIDES: bool = true;

    fn sort(&self, index: usize, result: Result<T, E>) -> Sorted<Self::Decision, Self::Kept> {
        Sorted::Decides((index, result))
    }

    fn decided(&self, (index, result): Self::Decision) -> Result<(usize, T), E> {
        result.map(|value| (index, value))
    }

    /// Reached only with no inputs.
    fn settled(&self, _none: Vec<Self::Kept>) -> Result<(usize, T), E> {
        Err(E::from(Failure::new(NoInputs)))
    }

    fn unwanted(kept: Self::Kept) -> Option<E> {
        match kept {}
    }
}
