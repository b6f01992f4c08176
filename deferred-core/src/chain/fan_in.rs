//! Fan-in: what every combinator shares — listen to many input Deferreds, fire one output.
//!
//! A [`Policy`] says which single result decides the outcome at once (a success for `race`, a
//! failure for `gather_results`) and how to build the outcome; [`fan_in`] does the rest, and keeps
//! these rules:
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

/// How one combinator turns its inputs' results into its outcome.
pub(crate) trait Policy<T, E>: Shareable + 'static {
    /// The output's value type.
    type Output: Sendable + 'static;
    /// The output's error type.
    type Error: From<Failure> + Sendable + 'static;

    /// Whether this result decides the outcome on its own. Runs under the lock: look, don't touch.
    fn decides(&self, result: &Result<T, E>) -> bool;

    /// The outcome when input `index` decided it with `result`.
    fn decided(&self, index: usize, result: Result<T, E>) -> Result<Self::Output, Self::Error>;

    /// The outcome when every input arrived and none decided: their results, in input order.
    fn settled(&self, results: Vec<Result<T, E>>) -> Result<Self::Output, Self::Error>;
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
    progress: Lock<Progress<T, E, P::Output, P::Error>>,
    policy: P,
    inputs: Ptr<Inputs>,
    leftovers: Leftovers,
}

struct Progress<T, E, O, F: 'static> {
    /// Results kept until the outcome is decided, by input index.
    slots: Vec<Option<Result<T, E>>>,
    /// How many inputs have not arrived yet.
    waiting: usize,
    /// `None` once the output has fired.
    output: Option<Output<O, F>>,
}

/// What an arrival leads to, worked out under the lock and carried out after it.
enum Next<T, E, O, F: 'static> {
    Nothing,
    Leftover(Result<T, E>),
    Decided {
        output: Output<O, F>,
        index: usize,
        result: Result<T, E>,
        kept: Vec<Result<T, E>>,
    },
    Settled {
        output: Output<O, F>,
        results: Vec<Result<T, E>>,
    },
}

impl<T, E, P> Shared<T, E, P>
where
    T: Sendable + 'static,
    E: Sendable + 'static,
    P: Policy<T, E>,
{
    fn lock(&self) -> Guard<'_, Progress<T, E, P::Output, P::Error>> {
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
                Some(output) if self.policy.decides(&result) => Next::Decided {
                    output,
                    index,
                    result,
                    kept: progress.slots.iter_mut().filter_map(Option::take).collect(),
                },
                Some(output) if progress.waiting == 0 => {
                    progress.slots[index] = Some(result);
                    let results = progress
                        .slots
                        .iter_mut()
                        .map(|slot| slot.take().expect("every input has arrived"))
                        .collect();
                    Next::Settled { output, results }
                }
                Some(output) => {
                    progress.slots[index] = Some(result);
                    progress.output = Some(output);
                    Next::Nothing
                }
            }
        };
        match next {
            Next::Nothing => {}
            Next::Leftover(result) => self.leftover(result),
            Next::Decided {
                output,
                index,
                result,
                kept,
            } => {
                let outcome = self.policy.decided(index, result);
                if self.leftovers.cancel_when_decided {
                    self.inputs.cancel_all();
                }
                for result in kept {
                    self.leftover(result);
                }
                output.fire(outcome);
            }
            Next::Settled { output, results } => output.fire(self.policy.settled(results)),
        }
    }

    /// A result the outcome does not carry: a failure is reported unless consumed or expected.
    fn leftover(&self, result: Result<T, E>) {
        if let Err(error) = result
            && !self.leftovers.consume_errors
            && !self.inputs.cancelled.get()
        {
            unhandled::report(error);
        }
    }
}
