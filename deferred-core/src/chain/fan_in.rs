//! Fan-in: what every combinator shares — listen to many input Deferreds, fire one output.
//!
//! A [`Policy`] sorts each input's result — it decides the outcome at once (a success for
//! `race`, a failure for `gather_results`), or it is kept, in the form the outcome needs — and
//! makes the outcome; [`fan_in`] does the rest, and keeps these rules:
//!
//! - Every input's result arrives exactly once, in whatever order and on whatever thread the
//!   inputs fire. Inputs that have already fired arrive while the combinator is being built.
//! - The output fires once: with the first deciding result, or, when every input has arrived
//!   without one deciding, with all of them in input order.
//! - Cancelling the output cancels every input, and the outcome then comes from the inputs'
//!   answers (a canceller may succeed), as Twisted's `DeferredList`, which has no canceller of its
//!   own. To get the same outcome whether or not `cancel` was called from inside a callback (when
//!   the inputs' answers are queued on the run loop, not delivered at once), the output waits on a
//!   *gate*: the gate's canceller cancels the inputs, and once the gate opens — fired by the
//!   combinator, or failed by the cancellation — the output continues with the real outcome.
//! - No failure is lost: an input failure that does not end up in the outcome (it arrived after
//!   the outcome was decided, or was kept and then overtaken by a deciding result) is reported
//!   through the unhandled-error hook, unless the combinator consumes errors, or the failure is
//!   the answer to a cancellation the combinator made.
//! - No user code runs under the lock: it is held only to record a result and take decisions.

use super::pending::cancel::CancelHandle;
use super::{Deferred, Resolver};
use super::{Flag, Guard, Lock, Ptr, Sendable, Shareable};
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
        Err(Failure::new(crate::outcome::FirstError {
            index,
            failure: error.into(),
        }))
    }

    fn settled(&self, values: Vec<T>) -> Result<Vec<T>, Failure> {
        Ok(values)
    }

    fn unwanted(_value: T) -> Option<E> {
        None
    }
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

/// Builds the combinator: `policy` over `inputs`, firing the returned Deferred once.
pub(crate) fn fan_in<T, E, P>(
    inputs: Vec<Deferred<T, E>>,
    policy: P,
    leftovers: Leftovers,
) -> Deferred<P::Output, P::Error>
where
    T: Sendable + 'static,
    E: From<Failure> + Sendable + 'static,
    P: Policy<T, E>,
{
    let count = inputs.len();
    let handles = Ptr::new(Inputs {
        handles: inputs.iter().map(Deferred::cancel_handle).collect(),
        cancelled: Flag::new(),
    });
    let (output, fire) = output(&handles);
    let shared = Ptr::new(Shared {
        progress: Lock::new(Progress {
            slots: (0..count).map(|_| None).collect(),
            waiting: count,
            output: Some(fire),
        }),
        policy,
        inputs: handles,
        leftovers,
    });
    if count == 0 {
        shared.settle_empty();
    }
    for (index, input) in inputs.into_iter().enumerate() {
        let shared = shared.clone();
        // The step always succeeds, so dropping its link loses nothing.
        drop(input.add_both(move |result| {
            shared.arrive(index, result);
            Ok::<(), E>(())
        }));
    }
    output
}

/// The inputs' cancel handles, shared by the combinator and the output's cancellers.
struct Inputs {
    handles: Box<[CancelHandle]>,
    /// Set once the combinator has cancelled its inputs: their answers are then expected, and a
    /// failure among them is not reported.
    cancelled: Flag,
}

impl Inputs {
    fn cancel_all(&self) {
        self.cancelled.set();
        for handle in &self.handles {
            handle.cancel();
        }
    }
}

/// The output's two resolvers: its result, and the gate it waits behind (see the module docs).
struct Output<O, F: 'static> {
    result: Resolver<O, F>,
    gate: Resolver<(), F>,
}

impl<O: Sendable + 'static, F: Sendable + 'static> Output<O, F> {
    fn fire(self, outcome: Result<O, F>) {
        self.result.fire(outcome);
        self.gate.callback(());
    }
}

/// The Deferred handed to the user, and the resolvers that fire it.
fn output<O, F>(inputs: &Ptr<Inputs>) -> (Deferred<O, F>, Output<O, F>)
where
    O: Sendable + 'static,
    F: From<Failure> + Sendable + 'static,
{
    let on_cancel = inputs.clone();
    let (gate, gate_resolver) = Deferred::<(), F>::with_canceller(move || on_cancel.cancel_all());
    // A second cancel, while the output waits behind the open gate, cancels the inputs again.
    let on_cancel = inputs.clone();
    let (result, result_resolver) =
        Deferred::<O, F>::with_canceller(move || on_cancel.cancel_all());
    // The gate's own outcome (a cancellation) is not the combinator's: the result is.
    let deferred = gate.add_both(move |_opened| result);
    (
        deferred,
        Output {
            result: result_resolver,
            gate: gate_resolver,
        },
    )
}

struct Shared<T, E, P: Policy<T, E>> {
    progress: Lock<Progress<P::Kept, P::Output, P::Error>>,
    policy: P,
    inputs: Ptr<Inputs>,
    leftovers: Leftovers,
}

struct Progress<K, O, F: 'static> {
    /// What the policy kept of each result until the outcome is decided, by input index.
    slots: Vec<Option<K>>,
    /// How many inputs have not arrived yet.
    waiting: usize,
    /// `None` once the output has fired.
    output: Option<Output<O, F>>,
}

/// What an arrival leads to, worked out under the lock and carried out after it.
enum Next<T, E, D, K, O, F: 'static> {
    Nothing,
    /// A result that came after the outcome was decided.
    Leftover(Result<T, E>),
    Decided {
        output: Output<O, F>,
        decision: D,
        kept: Vec<K>,
    },
    Settled {
        output: Output<O, F>,
        kept: Vec<K>,
    },
}

impl<T, E, P> Shared<T, E, P>
where
    T: Sendable + 'static,
    E: Sendable + 'static,
    P: Policy<T, E>,
{
    fn lock(&self) -> Guard<'_, Progress<P::Kept, P::Output, P::Error>> {
        // Only this module's code runs under the lock, and it leaves the state consistent.
        self.progress.lock()
    }

    /// No inputs: the outcome is `settled` of nothing, at once.
    fn settle_empty(&self) {
        let output = self.lock().output.take();
        if let Some(output) = output {
            output.fire(self.policy.settled(Vec::new()));
        }
    }

    /// Input `index` fired with `result`.
    fn arrive(&self, index: usize, result: Result<T, E>) {
        let next = {
            let mut progress = self.lock();
            progress.waiting -= 1;
            match progress.output.take() {
                None => Next::Leftover(result),
                Some(output) => match self.policy.sort(index, result) {
                    Sorted::Decides(decision) => Next::Decided {
                        output,
                        decision,
                        kept: progress.slots.iter_mut().filter_map(Option::take).collect(),
                    },
                    Sorted::Kept(kept) if progress.waiting == 0 => {
                        progress.slots[index] = Some(kept);
                        let kept = progress
                            .slots
                            .iter_mut()
                            .map(|slot| slot.take().expect("every input has arrived"))
                            .collect();
                        Next::Settled { output, kept }
                    }
                    Sorted::Kept(kept) => {
                        progress.slots[index] = Some(kept);
                        progress.output = Some(output);
                        Next::Nothing
                    }
                },
            }
        };
        match next {
            Next::Nothing => {}
            Next::Leftover(result) => {
                if let Err(error) = result {
                    self.leftover(error);
                }
            }
            Next::Decided {
                output,
                decision,
                kept,
            } => {
                let outcome = self.policy.decided(decision);
                if self.leftovers.cancel_when_decided {
                    self.inputs.cancel_all();
                }
                for kept in kept {
                    if let Some(error) = P::unwanted(kept) {
                        self.leftover(error);
                    }
                }
                output.fire(outcome);
            }
            Next::Settled { output, kept } => output.fire(self.policy.settled(kept)),
        }
    }

    /// A result the outcome does not carry: a failure is reported unless consumed or expected.
    fn leftover(&self, error: E) {
        if !self.leftovers.consume_errors && !self.inputs.cancelled.get() {
            unhandled::report(error);
        }
    }
}
