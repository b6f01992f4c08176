//! `join` and `join_settled`: Deferreds of different types, as one Deferred of a tuple
//! (futures' `try_join!` and `join!`, Bluebird's `Promise.join`, JavaScript's
//! `Promise.allSettled` on a tuple). Up to 12 inputs.
//!
//! The inputs are typed apart, so they cannot go through `fan_in` as they are: each input's
//! value is put in its own slot of a tuple of slots, and `fan_in` sees each input as a
//! `Deferred<(), E>` (the same chain, one step longer) — so the rules of every combinator
//! hold here too (`fan_in.rs`): each input arrives once, the output fires once, cancelling the
//! output cancels every input, and no user code runs under the lock.

use super::Deferred;
use super::fan_in::{Leftovers, Policy, Sorted, fan_in};
use super::{Lock, Ptr, Sendable};
use crate::bounds::FromFailure;

/// A tuple of 2 to 12 Deferreds with one error type `E`, of any value types: what
/// [`join`] and [`join_settled`] take. Implemented for tuples only (sealed); the methods are
/// the same functions, for those who prefer `(a, b).join()`.
#[diagnostic::on_unimplemented(
    message = "`join` takes a tuple of 2 to 12 Deferreds of one kind and one error type, not \
               `{Self}`",
    label = "not a tuple `join` takes",
    note = "for a list of Deferreds of one value type (a `Vec`, an array), use `gather_results`",
    note = "every Deferred of the tuple must be of the same kind, with the same error type, one \
            that is `From<Failure>` (as `Failure` is), and a `Deferred`'s values must be `Send`; \
            `deferred::local::join` joins `LocalDeferred`s"
)]
pub trait Join<E: 'static>: sealed::Sealed {
    /// The inputs' values, in input order: `(A, B, ...)`.
    type Values;
    /// The inputs' results, in input order: `(Result<A, E>, Result<B, E>, ...)`.
    type Results;
    /// [`join`]`(self)`.
    fn join(self) -> Deferred<Self::Values, E>;
    /// [`join_settled`]`(self)`.
    fn join_settled(self) -> Deferred<Self::Results, E>;
}

mod sealed {
    /// Only the tuples of this module are `Join`.
    pub trait Sealed {}
}

/// Waits for every input of a tuple — each of its own type — and fires with their values as a
/// tuple; fails with the first failure and cancels the others (futures' `try_join!`, Bluebird's
/// `Promise.join`). For many inputs of one type, see [`gather_results`](crate::gather_results).
///
/// The rules (those of every combinator):
///
/// 1. Fires once every input has succeeded, with their values in input order, whatever order
///    and thread they fired in; inputs that had fired before the call count at once.
/// 2. The first failure decides: the join fails with it, as it is (the error type stays `E`),
///    and every input still pending is cancelled. What they answer — the cancellation, a late
///    success, a late failure — is dropped, not reported. Inputs that had failed before the
///    call decide in input order.
/// 3. Cancelling the join cancels every input; the first answer then decides (normally the
///    first input's [`Cancelled`](crate::Cancelled): the join fails with it).
///
/// ```
/// use deferred_core::{join, Deferred, Failure};
///
/// let (name, resolver) = Deferred::<String>::pending();
/// let both = join((Deferred::succeed(7_u32), name));
/// resolver.callback("alice".to_string());
/// let (id, name) = both.wait().unwrap();
/// assert_eq!((id, name.as_str()), (7, "alice"));
///
/// let (slow, _slow_resolver) = Deferred::<u32>::with_canceller(|| println!("query stopped"));
/// let failed = join((slow, Deferred::<&str>::fail(Failure::msg("no route")))); // prints "query stopped"
/// assert_eq!(failed.wait().unwrap_err().to_string(), "no route");
/// ```
pub fn join<E, J>(inputs: J) -> Deferred<J::Values, E>
where
    E: 'static,
    J: Join<E>,
{
    inputs.join()
}

/// Waits for every input of a tuple — each of its own type — and fires with all their results
/// as a tuple, in input order (futures' `join!` on fallible futures, JavaScript's
/// `Promise.allSettled`). It never fails on its own: each failure is in its place. For many
/// inputs of one type, see [`settle_all`](crate::settle_all).
///
/// Cancelling it cancels every input; it then fires with their answers (normally
/// [`Cancelled`](crate::Cancelled) in the place of each input that was pending).
///
/// ```
/// use deferred_core::{join_settled, Deferred, Failure};
///
/// let (count, resolver) = Deferred::<usize>::pending();
/// let all = join_settled((Deferred::<&str>::fail(Failure::msg("no")), count));
/// resolver.callback(3);
/// let (text, count) = all.wait().unwrap();
/// assert_eq!(text.unwrap_err().to_string(), "no");
/// assert_eq!(count.unwrap(), 3);
/// ```
pub fn join_settled<E, J>(inputs: J) -> Deferred<J::Results, E>
where
    E: 'static,
    J: Join<E>,
{
    inputs.join_settled()
}

/// The outcome of a join from its inputs' slots: `fan_in` decides when, this says what.
struct Assemble<S, O> {
    slots: Ptr<Lock<S>>,
    /// Moves every value out of the slots (each has arrived).
    assemble: fn(&mut S) -> O,
    /// A failure decides (`join`), or nothing does (`join_settled`: its inputs never fail).
    fail_fast: bool,
}

impl<S, O, E> Policy<(), E> for Assemble<S, O>
where
    S: Sendable + 'static,
    O: Sendable + 'static,
    E: FromFailure + Sendable + 'static,
{
    /// A failure (`join` only).
    type Decision = E;
    /// An input's value waits in its typed slot; what is kept here is whether it arrived
    /// well (a failure is kept only by `join_settled`, whose inputs never fail).
    type Kept = Result<(), E>;
    type Output = O;
    type Error = E;

    fn sort(&self, _index: usize, result: Result<(), E>) -> Sorted<E, Result<(), E>> {
        match result {
            Err(error) if self.fail_fast => Sorted::Decides(error),
            result => Sorted::Kept(result),
        }
    }

    fn decided(&self, error: E) -> Result<O, E> {
        Err(error)
    }

    fn settled(&self, _arrived: Vec<Result<(), E>>) -> Result<O, E> {
        let mut slots = self.slots.lock();
        Ok((self.assemble)(&mut slots))
    }

    fn unwanted(kept: Result<(), E>) -> Option<E> {
        kept.err()
    }
}

/// `join`: every input succeeded, or the first failure; the losers are cancelled and their
/// answers dropped.
const FAIL_FAST: Leftovers = Leftovers {
    consume_errors: true,
    cancel_when_decided: true,
};

/// `join_settled`: its inputs (as `fan_in` sees them) never fail.
const SETTLE: Leftovers = Leftovers {
    consume_errors: false,
    cancel_when_decided: false,
};

macro_rules! joins {
    ($( ($($T:ident $i:tt),+) )+) => { $(
        impl<E: 'static, $($T),+> sealed::Sealed for ($(Deferred<$T, E>,)+) {}

        #[diagnostic::do_not_recommend]
        impl<E, $($T),+> Join<E> for ($(Deferred<$T, E>,)+)
        where
            E: FromFailure + Sendable + 'static,
            $($T: Sendable + 'static,)+
        {
            type Values = ($($T,)+);
            type Results = ($(Result<$T, E>,)+);

            fn join(self) -> Deferred<Self::Values, E> {
                fn assemble<$($T),+>(slots: &mut ($(Option<$T>,)+)) -> ($($T,)+) {
                    ($(slots.$i.take().expect("every input has succeeded"),)+)
                }
                let slots = Ptr::new(Lock::new(($(None::<$T>,)+)));
                let inputs = vec![$({
                    let slots = slots.clone();
                    self.$i.add_callback(move |value| {
                        slots.lock().$i = Some(value);
                        Ok::<(), E>(())
                    })
                }),+];
                let policy = Assemble { slots, assemble: assemble::<$($T),+>, fail_fast: true };
                fan_in(inputs, policy, FAIL_FAST)
            }

            fn join_settled(self) -> Deferred<Self::Results, E> {
                fn assemble<E, $($T),+>(
                    slots: &mut ($(Option<Result<$T, E>>,)+),
                ) -> ($(Result<$T, E>,)+) {
                    ($(slots.$i.take().expect("every input has fired"),)+)
                }
                let slots = Ptr::new(Lock::new(($(None::<Result<$T, E>>,)+)));
                let inputs = vec![$({
                    let slots = slots.clone();
                    self.$i.add_both(move |result| {
                        slots.lock().$i = Some(result);
                        Ok::<(), E>(())
                    })
                }),+];
                let policy = Assemble {
                    slots,
                    assemble: assemble::<E, $($T),+>,
                    fail_fast: false,
                };
                fan_in(inputs, policy, SETTLE)
            }
        }
    )+ };
}

joins! {
    (A 0, B 1)
    (A 0, B 1, C 2)
    (A 0, B 1, C 2, D 3)
    (A 0, B 1, C 2, D 3, F 4)
    (A 0, B 1, C 2, D 3, F 4, G 5)
    (A 0, B 1, C 2, D 3, F 4, G 5, H 6)
    (A 0, B 1, C 2, D 3, F 4, G 5, H 6, I 7)
    (A 0, B 1, C 2, D 3, F 4, G 5, H 6, I 7, J 8)
    (A 0, B 1, C 2, D 3, F 4, G 5, H 6, I 7, J 8, K 9)
    (A 0, B 1, C 2, D 3, F 4, G 5, H 6, I 7, J 8, K 9, L 10)
    (A 0, B 1, C 2, D 3, F 4, G 5, H 6, I 7, J 8, K 9, L 10, M 11)
}
