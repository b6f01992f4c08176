//! `join` and `join_settled`: Deferreds of different types, as one Deferred of a tuple
//! (futures' `try_join!` and `join!`, Bluebird's `Promise.join`, JavaScript's
//! `Promise.allSettled` on a tuple). Up to 12 inputs.
//!
//! The inputs are typed apart, and go through `fan_in` as one type: each arity has an enum with
//! a variant for each input (`Input::A(a)`, `Input::B(b)`, ...). An input that had fired is
//! wrapped when the join is made; a pending one hands its result to the join as every
//! combinator's input does (no step is added to its chain), and the join takes it out of the
//! slot by its index (`Policy::take_arrival`). So the rules of every combinator hold here too
//! (`fan_in.rs`): each input arrives once, the output fires once, cancelling the output cancels
//! every input, and no user code runs under the lock; and a join costs what `gather_results`
//! does: its inputs' places, the shared state and the output's chain.

use std::marker::PhantomData;
use std::panic::Location;

use super::Deferred;
use super::Sendable;
use super::fan_in::{Leftovers, Place, Policy, Sorted, fan_in_places};
use super::pending::stage::{Slot, put_back, take};
use crate::bounds::FromFailure;
use crate::unhandled;

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
///    success, a late failure — is dropped, not reported, and so are the values kept from the
///    inputs that had succeeded, but for an item a [`DeferredQueue`](crate::DeferredQueue)
///    handed a `get` among them: it goes back to the queue, for its next `get`. Inputs that had
///    failed before the call decide in input order.
/// 3. Cancelling the join cancels every input, in input order; the first failure to arrive
///    then decides (normally the first pending input's [`Cancelled`](crate::Cancelled): the
///    join fails with it). An input that another thread fires as the cancel reaches it has
///    nothing left to cancel, and the cancel goes on: its answer may arrive after the next
///    input's `Cancelled`, which then decides, and a failure in it is dropped as a loser's is
///    (rule 2).
///
/// ```
/// # extern crate deferred_core as deferred;
/// use deferred::{join, Deferred, Failure};
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
#[cfg_attr(feature = "registry", track_caller)]
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
/// The failures in the tuple are yours once you take it (`wait`, `.await`, a step, `chain!`).
/// If nobody ever does — the Deferred is dropped unread, with no step on it, before or after it
/// fires — each is reported through the [unhandled-error hook](crate::set_unhandled_hook), as
/// it is, once, in input order. (Dropped before it fired, they are reported as the inputs fire;
/// if some inputs never will, their producers having stopped because nobody can see the tuple,
/// the failures kept from the others are reported as the join lets go of them.)
///
/// ```
/// # extern crate deferred_core as deferred;
/// use deferred::{join_settled, Deferred, Failure};
///
/// let (count, resolver) = Deferred::<usize>::pending();
/// let all = join_settled((Deferred::<&str>::fail(Failure::msg("no")), count));
/// resolver.callback(3);
/// let (text, count) = all.wait().unwrap();
/// assert_eq!(text.unwrap_err().to_string(), "no");
/// assert_eq!(count.unwrap(), 3);
/// ```
#[cfg_attr(feature = "registry", track_caller)]
pub fn join_settled<E, J>(inputs: J) -> Deferred<J::Results, E>
where
    E: 'static,
    J: Join<E>,
{
    inputs.join_settled()
}

/// `join`: every input succeeded, or the first failure; the losers are cancelled and their
/// answers dropped.
const FAIL_FAST: Leftovers = Leftovers {
    consume_errors: true,
    cancel_when_decided: true,
};

/// `join_settled`: nothing decides; every result, a failure too, is kept in its place.
const SETTLE: Leftovers = Leftovers {
    consume_errors: false,
    cancel_when_decided: false,
};

macro_rules! joins {
    ($( $arity:ident ($($T:ident $i:tt),+) )+) => { $(
        /// The join of this arity: its inputs as one type, and its two policies.
        mod $arity {
            use super::*;

            /// One input's value, by the input's place in the tuple.
            pub(super) enum Input<$($T),+> {
                $($T($T),)+
            }

            /// Takes input `index`'s result, of its own type, out of `from`.
            fn take_arrival<E: 'static, $($T: 'static),+>(
                index: usize,
                from: &mut dyn Slot<E>,
            ) -> Option<Result<Input<$($T),+>, E>> {
                match index {
                    $($i => take::<$T, E>(from).map(|result| result.map(Input::$T)),)+
                    _ => unreachable!("a join has one input of each index"),
                }
            }

            /// Puts input `index`'s success back into `into`, as its own type.
            fn put_back_arrival<E: 'static, $($T: 'static),+>(
                value: Input<$($T),+>,
                into: &mut dyn Slot<E>,
            ) {
                match value {
                    $(Input::$T(value) => put_back::<$T, E>(into, value),)+
                }
            }

            /// Reports the failures of a settled tuple nobody read, in input order; the values
            /// are dropped after them (a panic in one's `Drop` leaves no failure unreported).
            fn report_failed<E: 'static, $($T),+>(outcome: ($(Result<$T, E>,)+)) {
                let values = ($(outcome.$i.map_err(unhandled::report).ok(),)+);
                drop(values);
            }

            /// `join`: every input succeeded (kept, wrapped), or the first failure decides.
            pub(super) struct All<$($T),+>(pub(super) PhantomData<fn() -> ($($T,)+)>);

            impl<E, $($T),+> Policy<Input<$($T),+>, E> for All<$($T),+>
            where
                E: FromFailure + Sendable + 'static,
                $($T: Sendable + 'static,)+
            {
                type Decision = E;
                type Kept = Input<$($T),+>;
                type Output = ($($T,)+);
                type Error = E;

                fn sort(
                    &self,
                    _index: usize,
                    result: Result<Input<$($T),+>, E>,
                ) -> Sorted<E, Input<$($T),+>> {
                    match result {
                        Ok(value) => Sorted::Kept(value),
                        Err(error) => Sorted::Decides(error),
                    }
                }

                fn decided(&self, error: E) -> Result<($($T,)+), E> {
                    Err(error)
                }

                fn settled(&self, kept: Vec<Input<$($T),+>>) -> Result<($($T,)+), E> {
                    let mut kept = kept.into_iter();
                    Ok(($(
                        match kept.next() {
                            Some(Input::$T(value)) => value,
                            _ => unreachable!("every input is kept in its place"),
                        },
                    )+))
                }

                fn unwanted(_kept: Input<$($T),+>) -> Option<E> {
                    None
                }

                fn kept_success(
                    kept: Input<$($T),+>,
                ) -> Result<Input<$($T),+>, Input<$($T),+>> {
                    Ok(kept)
                }

                fn take_arrival(
                    index: usize,
                    from: &mut dyn Slot<E>,
                ) -> Option<Result<Input<$($T),+>, E>> {
                    take_arrival(index, from)
                }

                fn put_back(_index: usize, value: Input<$($T),+>, into: &mut dyn Slot<E>) {
                    put_back_arrival(value, into);
                }
            }

            /// `join_settled`: every result is kept, in its place; none decides.
            pub(super) struct Settled<$($T),+>(pub(super) PhantomData<fn() -> ($($T,)+)>);

            impl<E, $($T),+> Policy<Input<$($T),+>, E> for Settled<$($T),+>
            where
                E: FromFailure + Sendable + 'static,
                $($T: Sendable + 'static,)+
            {
                type Decision = E;
                type Kept = Result<Input<$($T),+>, E>;
                type Output = ($(Result<$T, E>,)+);
                type Error = E;

                fn sort(
                    &self,
                    _index: usize,
                    result: Result<Input<$($T),+>, E>,
                ) -> Sorted<E, Result<Input<$($T),+>, E>> {
                    Sorted::Kept(result)
                }

                fn decided(&self, error: E) -> Result<($(Result<$T, E>,)+), E> {
                    // Nothing decides a settled join.
                    Err(error)
                }

                fn settled(
                    &self,
                    kept: Vec<Result<Input<$($T),+>, E>>,
                ) -> Result<($(Result<$T, E>,)+), E> {
                    let mut kept = kept.into_iter();
                    Ok(($(
                        match kept.next() {
                            Some(Ok(Input::$T(value))) => Ok(value),
                            Some(Err(error)) => Err(error),
                            _ => unreachable!("every input is kept in its place"),
                        },
                    )+))
                }

                fn unwanted(kept: Result<Input<$($T),+>, E>) -> Option<E> {
                    kept.err()
                }

                fn kept_success(
                    kept: Result<Input<$($T),+>, E>,
                ) -> Result<Input<$($T),+>, Result<Input<$($T),+>, E>> {
                    kept.map_err(Err)
                }

                fn holds_failures(
                    outcome: &($(Result<$T, E>,)+),
                ) -> Option<fn(($(Result<$T, E>,)+))> {
                    if false $(|| outcome.$i.is_err())+ {
                        Some(report_failed::<E, $($T),+>)
                    } else {
                        None
                    }
                }

                fn take_arrival(
                    index: usize,
                    from: &mut dyn Slot<E>,
                ) -> Option<Result<Input<$($T),+>, E>> {
                    take_arrival(index, from)
                }

                fn put_back(_index: usize, value: Input<$($T),+>, into: &mut dyn Slot<E>) {
                    put_back_arrival(value, into);
                }
            }
        }

        impl<E: 'static, $($T),+> sealed::Sealed for ($(Deferred<$T, E>,)+) {}

        #[diagnostic::do_not_recommend]
        impl<E, $($T),+> Join<E> for ($(Deferred<$T, E>,)+)
        where
            E: FromFailure + Sendable + 'static,
            $($T: Sendable + 'static,)+
        {
            type Values = ($($T,)+);
            type Results = ($(Result<$T, E>,)+);

            #[cfg_attr(feature = "registry", track_caller)]
            fn join(self) -> Deferred<Self::Values, E> {
                let places = vec![$(Place::of(self.$i, $arity::Input::$T),)+];
                fan_in_places(
                    places,
                    $arity::All(PhantomData),
                    FAIL_FAST,
                    Location::caller(),
                    "join",
                )
            }

            #[cfg_attr(feature = "registry", track_caller)]
            fn join_settled(self) -> Deferred<Self::Results, E> {
                let places = vec![$(Place::of(self.$i, $arity::Input::$T),)+];
                fan_in_places(
                    places,
                    $arity::Settled(PhantomData),
                    SETTLE,
                    Location::caller(),
                    "join_settled",
                )
            }
        }
    )+ };
}

joins! {
    two (A 0, B 1)
    three (A 0, B 1, C 2)
    four (A 0, B 1, C 2, D 3)
    five (A 0, B 1, C 2, D 3, F 4)
    six (A 0, B 1, C 2, D 3, F 4, G 5)
    seven (A 0, B 1, C 2, D 3, F 4, G 5, H 6)
    eight (A 0, B 1, C 2, D 3, F 4, G 5, H 6, I 7)
    nine (A 0, B 1, C 2, D 3, F 4, G 5, H 6, I 7, J 8)
    ten (A 0, B 1, C 2, D 3, F 4, G 5, H 6, I 7, J 8, K 9)
    eleven (A 0, B 1, C 2, D 3, F 4, G 5, H 6, I 7, J 8, K 9, L 10)
    twelve (A 0, B 1, C 2, D 3, F 4, G 5, H 6, I 7, J 8, K 9, L 10, M 11)
}
