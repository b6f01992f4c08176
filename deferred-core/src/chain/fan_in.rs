//! Fan-in: what every combinator shares — listen to many input Deferreds, fire one output.
//!
//! A [`Policy`] sorts each input's result — it decides the outcome at once (a success for
//! `race`, a failure for `gather_results`), or it is kept, in the form the outcome needs — and
//! makes the outcome; [`fan_in`] does the rest, and keeps these rules:
//!
//! - Every input's result arrives exactly once, in whatever order and on whatever thread the
//!   inputs fire. Inputs that have already fired arrive while the combinator is being built, in
//!   input order. A pending input's chain hands its result straight to the combinator (the
//!   chain's listener is the fan-in and the input's index): no step is added to it.
//! - The output fires once: with the first deciding result, or, when every input has arrived
//!   without one deciding, with all of them in input order.
//! - Cancelling the output cancels every input, and the outcome then comes from the inputs'
//!   answers (a canceller may succeed), as Twisted's `DeferredList`, which has no canceller of its
//!   own. (Unless the cancel went round a cycle through the fan-in — a step of an input returned
//!   the output — with no chain's wait to break: then the output fails with the cancellation,
//!   and the answers are left out: `Inputs::fail_output`.) The output's root has no canceller
//!   either: it waits on the inputs
//!   ([`Inputs`](super::pending::cancel::Inputs)), so each cancel of it cancels them and leaves
//!   it pending. So the output waits for the inputs' answers whether or not `cancel` was
//!   called from inside a callback (when the answers are queued on the run loop, not delivered
//!   before `cancel` returns). Which answer decides may differ: an input whose answer comes
//!   through steps of its own (`a.add_errback(..)`) answers after the inputs cancelled after it
//!   when those answers are queued, and `first_settled` then takes the first to arrive. Either
//!   way the answers land between two waits of the chains after the
//!   output: the next Deferred a step returns, on the output's chain or on one waiting on it,
//!   is cancelled at once (rule 7; an output whose answers come later remembers the cancel,
//!   `Phase::RootOfFanIn`). The inputs are cancelled in input order, and their answers decide
//!   in the order they arrive: an input another thread has fired as the cancel reaches it has
//!   nothing left to cancel, and its answer, on its way, may arrive after the next input's.
//!   Only where any answer decides (`first_settled`, `Policy::ANY_ANSWER_DECIDES`) does the
//!   cancel stop at such an input; elsewhere the answer that overtakes it decides, and its
//!   failure is a leftover (below).
//! - No failure is lost: an input failure that does not end up in the outcome (it arrived after
//!   the outcome was decided, was kept and then overtaken by a deciding result, or was kept
//!   for an outcome never decided: the combinator was let go of because nobody could see its
//!   output, and an input never arrived, its producer having stopped for that) is reported
//!   through the unhandled-error hook, unless the combinator consumes errors, or the failure is
//!   the answer to a cancellation the combinator made: a cancellation (a failure of its own —
//!   one that came before the cancel, raced it, that a canceller answered with, or that a step
//!   of the input made of the cancellation, such as an errback that wraps it in a message — is
//!   reported; with an error type that cannot say whether it holds a cancellation, every
//!   failure after the cancel counts as its answer).
//! - The input failures an outcome holds as values (`settle_all`'s and `join_settled`'s `Err`s,
//!   `fire_on_one_callback`'s `AllFailed`: `Policy::holds_failures`) are reported if nobody
//!   ever reads that outcome, unless the combinator consumes errors: the output keeps it in a
//!   slot that reports them if the output's chain drops it unread (`Resolver::settle_holding`),
//!   and an output nobody can see any more (dropped with no step left) is not fired: they are
//!   reported at once. A cancellation among them is reported too, as a Deferred cancelled and
//!   dropped unread reports its own. A chain that waits on the output (a step, or `chain!`'s,
//!   returned it) with no step of its own left to take the outcome keeps that slot, so that
//!   its own end, dropped unread, reports them (`Chain::resume_held`). Once taken — by the end
//!   of a chain, a step, a combinator or `map_err` that waits on it — the outcome and its
//!   failures are the taker's.
//! - A success the outcome does not carry is dropped, unless its chain's slot gives it back to
//!   its producer (`Slot::gives_back`: a `DeferredQueue`'s item, handed with
//!   `Resolver::try_fire_or_give_back`). One that arrives after the outcome was decided is put
//!   back there, and goes back as the chain drops the slot, as it would from a `get` dropped
//!   unread. One kept for the outcome keeps the slot's way back (`Slot::take_way_back`; an
//!   allocation, for such an input only), and goes back that way if the outcome leaves it out:
//!   another input decides, the combinator is let go of undecided, or every input has arrived
//!   and nobody can see the outcome (its output is closed). One the outcome carries is the
//!   outcome's: an outcome gives nothing back, so an item in it is lost with it if a combinator
//!   it is an input of drops it.
//! - No user code runs under the lock: it is held only to record a result and take decisions.
//!   A panic in the user code an arrival runs (an error's conversion, a value's `Drop`) is
//!   reported through the unhandled-error hook, as a step's would be; it does not reach the
//!   thread that fired the input.
//!
//! What it costs: one allocation for the shared state, which holds each input's place (its
//! chain while it is pending, then what the policy kept of its result) in the inputs' own `Vec`
//! when the layouts allow, and the output's chain.

use std::mem;
use std::panic::{AssertUnwindSafe, Location, catch_unwind};

use super::pending::cancel::{CancelHandle, Inputs, Within};
use super::pending::stage::{Slot, put_back, take};
use super::pending::{AnyChain, Arrive, OutputSeen, Seen};
use super::{
    CellGuard as Guard, CellLock as Lock, ChainPtr, Flag, Ptr, Sendable, Shareable, Weak,
    link_to_cancel,
};
use super::{Deferred, Outcome, Resolver, SPENT};
use crate::bounds::FromFailure;
use crate::failure::Failure;
use crate::unhandled;

/// How one combinator turns its inputs' results into its outcome. Each result is sorted as it
/// arrives: it decides the outcome at once, or it is kept — typed as the outcome needs it, so
/// that a policy never meets a result it has already sorted the other way.
pub(crate) trait Policy<T, E>: Shareable + 'static {
    /// What a result that decides carries to [`decided`](Policy::decided).
    type Decision: Sendable + 'static;
    /// What is kept of a result that does not decide, for [`settled`](Policy::settled).
    type Kept: Sendable + 'static;
    /// The output's value type.
    type Output: Sendable + 'static;
    /// The output's error type.
    type Error: From<Failure> + Sendable + 'static;

    /// Sorts input `index`'s result. Runs under the lock: it only moves the result (no
    /// conversion that is user code, such as `Into<Failure>`).
    fn sort(&self, index: usize, result: Result<T, E>) -> Sorted<Self::Decision, Self::Kept>;

    /// The outcome a deciding result makes.
    fn decided(&self, decision: Self::Decision) -> Result<Self::Output, Self::Error>;

    /// The outcome when every input arrived and none decided: what was kept, in input order.
    fn settled(&self, kept: Vec<Self::Kept>) -> Result<Self::Output, Self::Error>;

    /// A kept result that a later decision leaves out of the outcome: its failure, if it holds
    /// one (to report, unless the combinator consumes errors).
    fn unwanted(kept: Self::Kept) -> Option<E>;

    /// What reports the failures `outcome` holds as values (`settle_all`'s and `join_settled`'s
    /// `Err`s, `fire_on_one_callback`'s `AllFailed`), if it holds any: the output keeps such an
    /// outcome so that they are reported if nobody ever reads it (`Resolver::settle_holding`).
    /// `None`, the default, for an outcome that holds none.
    fn holds_failures(_outcome: &Self::Output) -> Option<fn(Self::Output)> {
        None
    }

    /// The combinator is about to cancel its inputs (its output was cancelled, or a result
    /// decided and the leftovers say to cancel the rest). Runs outside the lock.
    fn cancelling(&self) {}

    /// Whether any input's answer, success or failure, decides (`first_settled`). A cancel of
    /// the output then stops at the first input that has fired (`Inputs::cancel_inputs`).
    const ANY_ANSWER_DECIDES: bool = false;

    /// Whether `error`, a failure that arrived after the outcome was decided, is one the
    /// combinator made itself, which says nothing to report (`map_concurrent`'s refusal of an
    /// item it did not start).
    fn expected(&self, _error: &E) -> bool {
        false
    }

    /// Takes input `index`'s result out of the slot its chain hands on. Every input's result is
    /// a `Result<T, E>`, but for `join`'s, whose inputs are each of its own type: its `T` wraps
    /// them, and it takes each by its index.
    fn take_arrival(_index: usize, from: &mut dyn Slot<E>) -> Option<Result<T, E>>
    where
        T: 'static,
        E: 'static,
    {
        take::<T, E>(from)
    }

    /// Puts input `index`'s success back into the slot [`take_arrival`](Policy::take_arrival)
    /// took it from (for `join`, unwrapped to the input's own type).
    fn put_back(_index: usize, value: T, into: &mut dyn Slot<E>)
    where
        T: 'static,
        E: 'static,
    {
        put_back::<T, E>(into, value);
    }

    /// The success `kept` holds, as it arrived (for [`put_back`](Policy::put_back)), or `kept`
    /// as it is if it holds none. Only a policy that keeps successes has one to give: by
    /// default, none.
    fn kept_success(kept: Self::Kept) -> Result<T, Self::Kept> {
        Err(kept)
    }
}

/// How a policy sorted one result.
pub(crate) enum Sorted<D, K> {
    /// It decides the outcome now.
    Decides(D),
    /// It waits for the others.
    Kept(K),
}

/// `fire_on_one_errback` (and `gather_results`, `map_concurrent`): every value in input order,
/// or the first failure, as a [`FirstError`](crate::FirstError) saying which input failed.
pub(crate) struct FireOnFirstError;

impl<T, E> Policy<T, E> for FireOnFirstError
where
    T: Sendable + 'static,
    E: Into<Failure> + Sendable + 'static,
{
    type Decision = (usize, E);
    type Kept = T;
    type Output = Vec<T>;
    type Error = Failure;

    fn sort(&self, index: usize, result: Result<T, E>) -> Sorted<(usize, E), T> {
        match result {
            Ok(value) => Sorted::Kept(value),
            Err(error) => Sorted::Decides((index, error)),
        }
    }

    fn decided(&self, (index, error): (usize, E)) -> Result<Vec<T>, Failure> {
        // A panic in the conversion (user code) is that input's failure, as in `race`.
        Err(Failure::new(crate::outcome::FirstError {
            index,
            failure: into_failure(error),
        }))
    }

    fn settled(&self, values: Vec<T>) -> Result<Vec<T>, Failure> {
        Ok(values)
    }

    fn unwanted(_value: T) -> Option<E> {
        None
    }

    fn kept_success(value: T) -> Result<T, T> {
        Ok(value)
    }
}

/// `error.into()`, user code (`Into<Failure>`), for an outcome that holds several failures
/// (`race`'s group): a panic in it is that failure, in its place, as a step's panic is its
/// chain's failure (rule 4), so that the others are not lost with the output's resolver.
pub(crate) fn into_failure<E: Into<Failure>>(error: E) -> Failure {
    catch_unwind(AssertUnwindSafe(move || error.into()))
        .unwrap_or_else(|payload| Failure::from_panic(payload, None))
}

/// Builds the combinator: `policy` over `inputs`, firing the returned Deferred once. `at` is
/// where the combinator was called, the output's place for the registry: each public
/// combinator is `#[track_caller]` with the feature `registry` (it costs a caller's location
/// on every call; without the feature, nothing reads it). `made_by` is the function the user
/// called (`"gather_results"`, `"DeferredList::all"`, ...), the output's
/// [`made_by`](crate::PendingChain::made_by) in the registry.
pub(crate) fn fan_in<T, E, P>(
    inputs: Vec<Deferred<T, E>>,
    policy: P,
    leftovers: Leftovers,
    at: &'static Location<'static>,
    made_by: &'static str,
) -> Deferred<P::Output, P::Error>
where
    T: Sendable + 'static,
    E: FromFailure + Sendable + 'static,
    P: Policy<T, E>,
{
    // Every input has its place before any arrives: a result that decides at once (`race`)
    // cancels the inputs after it. Made in the inputs' own `Vec` when the layouts allow.
    let places: Vec<Place<T, E, P::Kept>> = inputs
        .into_iter()
        .map(|input| Place::of(input, |value| value))
        .collect();
    fan_in_places(places, policy, leftovers, at, made_by)
}

/// [`fan_in`] over the inputs' places, made with [`Place::of`] (`join`'s, whose inputs are each
/// of its own type, wrapped in one `T`).
pub(crate) fn fan_in_places<T, E, P>(
    places: Vec<Place<T, E, P::Kept>>,
    policy: P,
    leftovers: Leftovers,
    at: &'static Location<'static>,
    made_by: &'static str,
) -> Deferred<P::Output, P::Error>
where
    T: Sendable + 'static,
    E: FromFailure + Sendable + 'static,
    P: Policy<T, E>,
{
    let count = places.len();
    assert!(
        u32::try_from(count).is_ok(),
        "a combinator takes at most u32::MAX inputs"
    );
    let mut output = None;
    let shared = Ptr::new_cyclic(|shared: &Weak<Shared<T, E, P>>| {
        let (deferred, resolver) = Deferred::pending_with(None, at);
        if let Some(link) = &resolver.link {
            let inputs: Weak<dyn Inputs> = shared.clone();
            link.wait_on_inputs(inputs, made_by);
        }
        output = Some(deferred);
        Shared {
            progress: Lock::new(Progress {
                places,
                waiting: count,
                output: Some(resolver),
                ways_back: None,
            }),
            policy,
            cancelled: Flag::new(),
            output_closed: Flag::new(),
            leftovers,
        }
    });
    for index in 0..count {
        let place = {
            let mut progress = shared.lock();
            let place = &mut progress.places[index];
            match place {
                Place::Pending(chain) => Place::Pending(chain.clone()),
                Place::Fired(_) => mem::replace(place, Place::Gone),
                Place::Kept(_) | Place::KeptAfterCancel(_) | Place::Gone => {
                    unreachable!("an input arrives once the combinator listens to it")
                }
            }
        };
        match place {
            Place::Pending(chain) => {
                chain.forward_to_fan_in(shared.clone(), index as u32);
            }
            Place::Fired(result) => shared.arrive_caught(index, result, None),
            Place::Kept(_) | Place::KeptAfterCancel(_) | Place::Gone => {
                unreachable!("taken as pending or fired")
            }
        }
    }
    if count == 0 {
        // No inputs: the outcome is `settled` of nothing, at once.
        let resolver = shared.lock().output.take();
        if let Some(resolver) = resolver {
            drop(resolver.settle(shared.policy.settled(Vec::new())));
        }
    }
    output.expect("made with the shared state")
}

/// What to do with input results the outcome does not carry.
#[derive(Clone, Copy)]
pub(crate) struct Leftovers {
    /// Drop failures the outcome does not carry instead of reporting them (Twisted's
    /// `consumeErrors`).
    pub(crate) consume_errors: bool,
    /// Once a result decides the outcome, cancel the inputs still pending (`race`'s losers).
    pub(crate) cancel_when_decided: bool,
}

struct Shared<T: 'static, E: 'static, P: Policy<T, E>> {
    progress: Lock<ProgressOf<T, E, P>>,
    policy: P,
    /// Set once the combinator has cancelled its inputs: their answers are then expected, and a
    /// cancellation that arrives after it is not reported when it is left over (any other
    /// failure is: it is no answer to the cancel; nor is a cancellation that arrived before it,
    /// kept as `Place::Kept`).
    cancelled: Flag,
    /// Set once the output was seen closed (nobody can see it: `OutputSeen`), and
    /// kept once it is decided: an input the fan-in left open was told it is closed, and stays
    /// so (`Resolver::is_closed` never turns back to `false`).
    output_closed: Flag,
    leftovers: Leftovers,
}

/// The progress of the combinator of policy `P`.
type ProgressOf<T, E, P> = Progress<
    T,
    E,
    <P as Policy<T, E>>::Kept,
    <P as Policy<T, E>>::Output,
    <P as Policy<T, E>>::Error,
>;

struct Progress<T, E: 'static, K, O, F: 'static> {
    /// Each input's place, by input index.
    places: Vec<Place<T, E, K>>,
    /// How many inputs have not arrived yet.
    waiting: usize,
    /// The output's resolver; `None` once the outcome is decided.
    output: Option<Resolver<O, F>>,
    /// The way back of each kept success whose slot gave it back to its producer (an item a
    /// `DeferredQueue` handed a `get`: `Slot::take_way_back`), by input index: if the outcome
    /// leaves the success out, it goes back that way (`Shared::left_out`). `None` but for such
    /// inputs. Once the outcome carries them, they are dropped with the fan-in (a way back with
    /// no value gives nothing back).
    ways_back: Option<WaysBack<E>>,
}

/// Ways back of kept successes, by input index (see `Progress::ways_back`). Boxed: one pointer
/// in every combinator's state, which few ever fill (a `Vec` would make it 16 bytes larger, and
/// its allocation a size larger).
type WaysBack<E> = Box<Vec<(usize, Box<dyn Slot<E>>)>>;

/// Keeps input `index`'s `way` back in `ways_back`.
#[cold]
#[inline(never)]
fn keep_way_back<E>(ways_back: &mut Option<WaysBack<E>>, index: usize, way: Box<dyn Slot<E>>) {
    ways_back
        .get_or_insert_with(Box::default)
        .push((index, way));
}

/// Takes input `index`'s way back out of `ways_back`, if it has one.
fn way_back<E>(ways_back: &mut Option<WaysBack<E>>, index: usize) -> Option<Box<dyn Slot<E>>> {
    let ways_back = ways_back.as_mut()?;
    let at = ways_back.iter().position(|(of, _)| *of == index)?;
    Some(ways_back.swap_remove(at).1)
}

/// An input's place in the combinator.
pub(crate) enum Place<T, E: 'static, K> {
    /// Not arrived: its chain, to cancel it.
    Pending(ChainPtr<dyn AnyChain<E>>),
    /// It had fired when the combinator was built: its result arrives in the build.
    Fired(Result<T, E>),
    /// Arrived: what the policy kept of its result, until the outcome is decided.
    Kept(K),
    /// The same, arrived after the combinator cancelled its inputs: a cancellation in it is the
    /// answer to that cancel (one in a result kept before it is not: `leftover`).
    KeptAfterCancel(K),
    /// Arrived, and nothing of it is kept here.
    Gone,
}

impl<T, E: 'static, K> Place<T, E, K> {
    /// The place of `input`, whose value `wrap` makes the combinator's `T`.
    #[inline]
    pub(crate) fn of<U>(input: Deferred<U, E>, wrap: fn(U) -> T) -> Self {
        match input.into_outcome() {
            Outcome::Waiting(chain) => Place::Pending(chain),
            Outcome::Ready(result) => Place::Fired(result.map(wrap)),
            Outcome::Spent => panic!("{SPENT}"),
        }
    }
}

/// What an arrival leads to, worked out under the lock and carried out after it.
enum Next<T, E: 'static, D, K, O, F: 'static> {
    Nothing,
    /// A result that came after the outcome was decided.
    Leftover(Result<T, E>),
    Decided {
        resolver: Resolver<O, F>,
        decision: D,
    },
    Settled {
        resolver: Resolver<O, F>,
        places: Vec<Place<T, E, K>>,
        /// Whether a kept success has a way back (`Progress::ways_back`).
        gives_back: bool,
    },
}

impl<T, E, P> Shared<T, E, P>
where
    T: Sendable + 'static,
    E: FromFailure + Sendable + 'static,
    P: Policy<T, E>,
{
    fn lock(&self) -> Guard<'_, ProgressOf<T, E, P>> {
        // Only this module's code runs under the lock, and it leaves the state consistent.
        self.progress.lock()
    }

    /// Input `index` fired with `result`, taken out of the slot `from` (`None`: it had fired
    /// when the combinator was built); a panic in the user code the arrival runs is reported,
    /// as a step's would be (rule 4), not passed to the thread that fired the input.
    fn arrive_caught(&self, index: usize, result: Result<T, E>, from: Option<&mut dyn Slot<E>>) {
        // Written out, not `unhandled::run_reporting_panic`: on this path (every input of every
        // combinator) the helper cost 7 instructions an arrival more (callgrind,
        // `gather_results` of 25), its closure no longer inlined into `catch_unwind`'s call.
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| self.arrive(index, result, from))) {
            unhandled::report(Failure::from_panic(payload, None));
        }
    }

    /// Input `index` fired with `result`, taken out of `from`.
    fn arrive(&self, index: usize, result: Result<T, E>, mut from: Option<&mut dyn Slot<E>>) {
        let success = result.is_ok();
        let (next, place) = {
            let mut guard = self.lock();
            let progress = &mut *guard;
            progress.waiting -= 1;
            // The input's chain, if pending: dropped after the lock is released.
            let place = mem::replace(&mut progress.places[index], Place::Gone);
            let next = match progress.output.take() {
                None => Next::Leftover(result),
                Some(resolver) => match self.policy.sort(index, result) {
                    Sorted::Decides(decision) => Next::Decided { resolver, decision },
                    Sorted::Kept(kept) => {
                        // A success whose slot would give it back (a queue's item) keeps the
                        // slot's way back, in case the outcome leaves it out.
                        if success
                            && let Some(from) = from.as_deref_mut()
                            && let Some(way) = from.take_way_back()
                        {
                            keep_way_back(&mut progress.ways_back, index, way);
                        }
                        progress.places[index] = if self.cancelled.get() {
                            Place::KeptAfterCancel(kept)
                        } else {
                            Place::Kept(kept)
                        };
                        if progress.waiting == 0 {
                            Next::Settled {
                                resolver,
                                places: mem::take(&mut progress.places),
                                gives_back: progress.ways_back.is_some(),
                            }
                        } else {
                            progress.output = Some(resolver);
                            Next::Nothing
                        }
                    }
                },
            };
            (next, place)
        };
        drop(place);
        match next {
            Next::Nothing => {}
            Next::Leftover(Ok(value)) => Self::late_success(index, value, from),
            Next::Leftover(Err(error)) => self.leftover(error, self.cancelled.get()),
            Next::Decided { resolver, decision } => {
                if resolver.is_closed() {
                    self.output_closed.set();
                }
                let outcome = self.policy.decided(decision);
                if self.leftovers.cancel_when_decided {
                    self.cancel_inputs(Within::default());
                }
                self.drop_kept();
                self.settle_output(resolver, outcome);
            }
            Next::Settled {
                resolver,
                places,
                gives_back,
            } => {
                if gives_back && resolver.is_closed() {
                    // Nobody can see the outcome: what it would hold goes back where it can,
                    // and the failures it would hold are reported, as an outcome nobody can
                    // read reports them (`settle_output`).
                    let ways_back = self.lock().ways_back.take();
                    return self.let_go(places, ways_back, true);
                }
                // In place of the places' `Vec` when the layouts allow.
                let kept = places
                    .into_iter()
                    .map(|place| match place {
                        Place::Kept(kept) | Place::KeptAfterCancel(kept) => kept,
                        Place::Pending(_) | Place::Fired(_) | Place::Gone => {
                            unreachable!("every input has arrived")
                        }
                    })
                    .collect();
                self.settle_output(resolver, self.policy.settled(kept));
            }
        }
    }

    /// Fires the output with `outcome`. One that holds failures as values
    /// (`Policy::holds_failures`) is kept so that they are reported if nobody reads it — here,
    /// at once, if nobody can (the output was dropped with no step left) — unless the
    /// combinator consumes errors.
    fn settle_output(
        &self,
        resolver: Resolver<P::Output, P::Error>,
        outcome: Result<P::Output, P::Error>,
    ) {
        let report_held = match &outcome {
            Ok(output) if !self.leftovers.consume_errors => P::holds_failures(output),
            _ => None,
        };
        match (report_held, outcome) {
            (Some(report_held), Ok(output)) => {
                if let Err(unread) = resolver.settle_holding(output, report_held) {
                    report_held(unread);
                }
            }
            (_, outcome) => drop(resolver.settle(outcome)),
        }
    }

    /// The outcome was decided: what was kept is left out of it — a success that came from a
    /// slot that gives back goes back, a failure is reported (taken out one at a time, outside
    /// the lock).
    fn drop_kept(&self) {
        for index in 0.. {
            let (kept, way) = {
                let mut guard = self.lock();
                let progress = &mut *guard;
                let Some(place) = progress.places.get_mut(index) else {
                    break;
                };
                match place {
                    Place::Kept(_) | Place::KeptAfterCancel(_) => (
                        mem::replace(place, Place::Gone),
                        way_back(&mut progress.ways_back, index),
                    ),
                    Place::Pending(_) | Place::Fired(_) | Place::Gone => continue,
                }
            };
            self.left_out(index, kept, way, false);
        }
    }

    /// Whether, the outcome decided, nobody can see what an input left running gives: the
    /// output was closed when it was decided (or seen so before), or the combinator consumes
    /// errors (a value it gives is dropped as any late one, and a failure too).
    fn closed_once_decided(&self) -> bool {
        self.output_closed.get() || self.leftovers.consume_errors
    }

    /// A success that came after the outcome was decided: nobody can see it. It goes back into
    /// the slot it came from when that slot gives it back to its producer (an item a
    /// `DeferredQueue` handed a `get`: `Resolver::try_fire_or_give_back`), which the input's
    /// chain drops after this arrival: the item goes to the queue's next `get`. Else it is
    /// dropped, as Twisted drops a late result.
    #[cold]
    fn late_success(index: usize, value: T, from: Option<&mut dyn Slot<E>>) {
        match from {
            Some(from) if from.gives_back() => P::put_back(index, value, from),
            _ => drop(value),
        }
    }
}

impl<T: 'static, E: 'static, P: Policy<T, E>> Drop for Shared<T, E, P> {
    /// The combinator is let go of with its outcome undecided: nobody could see its output (it
    /// was dropped with no step left), and an input never arrived (nobody could see that
    /// input's result either, so its chain ended without one: its producer stopped). What was
    /// kept for the outcome is left out of it, as what a decision leaves out
    /// (`Shared::left_out`): a success goes back if its slot gave it back (a queue's item), a
    /// failure is reported, each on its own (a panic in a kept value's `Drop` is reported
    /// too).
    fn drop(&mut self) {
        let progress = self.progress.get_mut();
        let places = mem::take(&mut progress.places);
        if !places.is_empty() {
            let ways_back = progress.ways_back.take();
            self.let_go(places, ways_back, false);
        }
    }
}

impl<T: 'static, E: 'static, P: Policy<T, E>> Shared<T, E, P> {
    /// What was kept for an outcome nobody will see is left out, each in input order: the
    /// combinator is let go of undecided (`Drop`), or every input has arrived and its output is
    /// closed (`arrive`; `held`: see [`left_out`](Shared::left_out)).
    #[cold]
    fn let_go(
        &self,
        places: Vec<Place<T, E, P::Kept>>,
        mut ways_back: Option<WaysBack<E>>,
        held: bool,
    ) {
        for (index, place) in places.into_iter().enumerate() {
            let way = way_back(&mut ways_back, index);
            self.left_out(index, place, way, held);
        }
    }

    /// Input `index`'s `place`, kept, which the outcome leaves out: a success goes back the
    /// `way` its slot gave it back by, if it has one (a `DeferredQueue`'s item, to the queue);
    /// else it is dropped, and a failure in it reported (`Shared::leftover`; `held`: as a
    /// failure an outcome holds as a value, whether or not it answers a cancel the combinator
    /// made). Each one on its own: a panic in one's `Drop` or in its giving back (user code) is
    /// reported, and leaves the others, and the outcome the caller settles next, as they were
    /// (rule 4).
    fn left_out(
        &self,
        index: usize,
        place: Place<T, E, P::Kept>,
        way: Option<Box<dyn Slot<E>>>,
        held: bool,
    ) {
        let (kept, after_cancel) = match place {
            Place::Kept(kept) => (kept, false),
            Place::KeptAfterCancel(kept) => (kept, !held),
            Place::Pending(_) | Place::Fired(_) | Place::Gone => return,
        };
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| {
            let kept = match way {
                Some(mut way) => match P::kept_success(kept) {
                    Ok(value) => {
                        // Given back as the way is dropped, as from a `get` dropped unread.
                        P::put_back(index, value, &mut *way);
                        drop(way);
                        return;
                    }
                    Err(kept) => kept,
                },
                None => kept,
            };
            if let Some(error) = P::unwanted(kept) {
                self.leftover(error, after_cancel);
            }
        })) {
            unhandled::report(Failure::from_panic(payload, None));
        }
    }

    /// A result the outcome does not carry: a failure is reported unless consumed or expected
    /// (the answer to the combinator's cancel of its inputs: a cancellation, or any failure of
    /// an error type that cannot say, that arrived after that cancel: `after_cancel`).
    fn leftover(&self, error: E, after_cancel: bool) {
        let expected = self.policy.expected(&error)
            || (after_cancel && crate::failure::is_cancellation(&error).unwrap_or(true));
        if !self.leftovers.consume_errors && !expected {
            unhandled::report(error);
        }
    }
}

impl<T, E, P> OutputSeen for Shared<T, E, P>
where
    T: Sendable + 'static,
    E: FromFailure + Sendable + 'static,
    P: Policy<T, E>,
{
    fn output_seen(&self) -> Seen {
        // The output's chain is asked after the fan-in's lock is released.
        let output = match &self.lock().output {
            Some(resolver) => resolver.link.clone(),
            // Decided: the inputs left are left running, and their failures are reported
            // (unless the combinator cancelled them): not closed — unless the output was
            // closed when it was decided, or was seen so before, or the combinator consumes
            // errors (what such an input gives, a value or a failure, is dropped unseen).
            None if self.closed_once_decided() => return Seen::Closed,
            None => return Seen::Open,
        };
        match output {
            Some(output) => output.seen_as_root(),
            None => Seen::Open,
        }
    }

    fn output_answered(&self, closed: bool) -> bool {
        // Kept only while the outcome is undecided: an output that fired meanwhile (another
        // input decided it) reads as closed too, but was visible, and its inputs stay open.
        let progress = self.lock();
        if progress.output.is_none() {
            return self.closed_once_decided();
        }
        if closed {
            self.output_closed.set();
        }
        closed
    }
}

impl<T, E, P> Arrive<E> for Shared<T, E, P>
where
    T: Sendable + 'static,
    E: FromFailure + Sendable + 'static,
    P: Policy<T, E>,
{
    fn arrive(self: Ptr<Self>, index: u32, from: &mut dyn Slot<E>) {
        let Some(result) = P::take_arrival(index as usize, from) else {
            unreachable!("a chain hands on its result once it has one");
        };
        self.arrive_caught(index as usize, result, Some(from));
    }

    #[cfg(feature = "registry")]
    fn output(&self) -> Option<usize> {
        let progress = self.lock();
        let link = progress.output.as_ref()?.link.as_ref()?;
        Some(ChainPtr::as_ptr(link) as *const () as usize)
    }
}

impl<T, E, P> Inputs for Shared<T, E, P>
where
    T: Sendable + 'static,
    E: FromFailure + Sendable + 'static,
    P: Policy<T, E>,
{
    /// Fails the output with the cancellation, as a decided outcome: what was kept is left out
    /// (a failure in it reported, a queue's item given back), and the inputs that answer later
    /// are leftovers (a failure that is not the answer to the cancel, reported).
    fn fail_output(&self, at: Option<&'static std::panic::Location<'static>>) {
        // User code (`From<Failure>` of the output's error type; then the output's steps and
        // what was kept's `Drop`): a panic is reported, as an arrival's is, not unwound into
        // the cancel. The error is made first, so that a panic there leaves the output as it
        // was.
        let cancelled = match catch_unwind(|| P::Error::from(Failure::cancelled_by(at))) {
            Ok(cancelled) => cancelled,
            Err(panic) => return unhandled::report(Failure::from_panic(panic, None)),
        };
        let Some(resolver) = self.lock().output.take() else {
            return; // decided meanwhile
        };
        if resolver.is_closed() {
            self.output_closed.set();
        }
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| {
            self.drop_kept();
            drop(resolver.settle(Err(cancelled)));
        })) {
            unhandled::report(Failure::from_panic(panic, None));
        }
    }

    /// Cancels the inputs that have not arrived, one at a time, outside the lock (a cancel runs
    /// cancellers, and may deliver answers here).
    ///
    /// When any answer decides (`Policy::ANY_ANSWER_DECIDES`) and nothing has decided yet, the
    /// walk stops at the first input that has fired, by this cancel or on another thread as the
    /// cancel reached it: its answer is on its way, it decides, and the decision cancels the
    /// others. Cancelling them here could let a later input's `Cancelled` arrive first and
    /// decide in its place. Not once the output was seen closed: an input whose producer saw
    /// that may have ended unread, fired with no answer on its way (and nobody sees what
    /// decides).
    fn cancel_inputs(&self, within: Within) {
        self.cancelled.set();
        self.policy.cancelling();
        for index in 0.. {
            let chain = {
                let progress = self.lock();
                let Some(place) = progress.places.get(index) else {
                    break;
                };
                match place {
                    Place::Pending(chain) => chain.clone(),
                    Place::Fired(_) | Place::Kept(_) | Place::KeptAfterCancel(_) | Place::Gone => {
                        continue;
                    }
                }
            };
            CancelHandle::new(link_to_cancel(chain.clone())).cancel_within(0, &within);
            if P::ANY_ANSWER_DECIDES
                && !self.output_closed.get()
                && chain.is_fired()
                && self.lock().output.is_some()
            {
                break;
            }
        }
    }

    /// The inputs whose chains have not ended: not `waiting`, which also counts an input that
    /// ended unread (its Resolver dropped once nobody could see the output) and so will never
    /// arrive. None once the outcome is decided (the output waits on no input any more, while
    /// it is fired and the losers cancelled). Each chain is asked after the fan-in's lock is
    /// released.
    #[cfg(feature = "registry")]
    fn pending_inputs(&self) -> usize {
        let progress = self.lock();
        if progress.output.is_none() {
            return 0;
        }
        let pending: Vec<_> = progress
            .places
            .iter()
            .filter_map(|place| match place {
                Place::Pending(chain) => Some(chain.clone()),
                Place::Fired(_) | Place::Kept(_) | Place::KeptAfterCancel(_) | Place::Gone => None,
            })
            .collect();
        drop(progress);
        pending.iter().filter(|chain| !chain.is_fired()).count()
    }
}
