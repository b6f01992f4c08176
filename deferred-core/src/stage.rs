//! Steps waiting in a pending chain, and the typed slots their results pass through.
//!
//! A pending chain is one [`Link`](crate::link::Link) however many steps are added to it: each
//! `add_*` on a pending Deferred appends a [`Stage`] — the step's function, boxed (free when it
//! captures nothing) — to the link's list, and the thread that fires the root runs the stages in
//! order. The value type may change from stage to stage, so the link sees results type-erased,
//! in a [`Slot`]: a stage takes its input out of the slot (checked by `Any`: a stage's input type
//! is the output type of the one before it, so the check never fails) and puts its output back in
//! the same slot when the type is the same, or in a new one when it is not. So a chain whose
//! steps keep the value's type allocates nothing per step beyond what the steps capture.

use std::any::Any;
use std::marker::PhantomData;
use std::panic::Location;
use std::sync::Arc;

use crate::deferred::{Deferred, Outcome, run_step};
use crate::failure::Failure;
use crate::link::Node;
use crate::unhandled;

/// Where a result of type `Result<T, E>` waits: `Option<Result<T, E>>`, seen without its `T`.
pub(crate) trait Slot<E>: Send {
    /// The slot itself, for a typed stage to take its input from or put its output in.
    fn as_any(&mut self) -> &mut dyn Any;
    /// Moves the result in `from` (a slot of the same type) into this one.
    fn fill_from(&mut self, from: &mut dyn Slot<E>);
    /// Reports the failure held here as unhandled (rule 5), if any; empties the slot.
    fn report(&mut self);
}

impl<T: Send + 'static, E: Send + 'static> Slot<E> for Option<Result<T, E>> {
    fn as_any(&mut self) -> &mut dyn Any {
        self
    }

    fn fill_from(&mut self, from: &mut dyn Slot<E>) {
        *self = take::<T, E>(from);
    }

    fn report(&mut self) {
        if let Some(result) = self.take() {
            unhandled::report_result(result);
        }
    }
}

/// Takes the result out of `slot`, which holds a `Result<T, E>`.
#[inline]
pub(crate) fn take<T: 'static, E: 'static>(slot: &mut dyn Slot<E>) -> Option<Result<T, E>> {
    match slot.as_any().downcast_mut::<Option<Result<T, E>>>() {
        Some(slot) => slot.take(),
        None => unreachable!("a stage's input type is the output type of the stage before it"),
    }
}

/// What running a stage gave. A new slot comes with it when the stage's output type differs
/// from its input type; otherwise the slot it was given is reused.
pub(crate) enum Flow<E: 'static> {
    /// Its result is in the slot.
    Ready(Option<Box<dyn Slot<E>>>),
    /// It returned a pending Deferred: the chain waits on that one's link, whose result will
    /// be put in the slot.
    Wait(Arc<dyn Node<E>>, Option<Box<dyn Slot<E>>>),
}

/// One step of a pending chain, its input and output types erased.
pub(crate) trait Stage<E: 'static>: Send {
    /// Runs the step (added at `step`) on the result taken from `slot`, and leaves its output
    /// there (or in the new slot it returns).
    fn run(self: Box<Self>, slot: &mut dyn Slot<E>, step: &'static Location<'static>) -> Flow<E>;
}

/// A step's function `F` from `Result<In, E>` to the next Deferred.
struct Step<In, Out, E, F> {
    run: F,
    types: PhantomData<fn(In, E) -> Out>,
}

/// Boxes a step's function as a stage.
pub(crate) fn stage<In, Out, E, F>(run: F) -> Box<dyn Stage<E>>
where
    In: Send + 'static,
    Out: Send + 'static,
    E: From<Failure> + Send + 'static,
    F: FnOnce(Result<In, E>, &'static Location<'static>) -> Deferred<Out, E> + Send + 'static,
{
    Box::new(Step {
        run,
        types: PhantomData,
    })
}

impl<In, Out, E, F> Stage<E> for Step<In, Out, E, F>
where
    In: Send + 'static,
    Out: Send + 'static,
    E: From<Failure> + Send + 'static,
    F: FnOnce(Result<In, E>, &'static Location<'static>) -> Deferred<Out, E> + Send + 'static,
{
    fn run(self: Box<Self>, slot: &mut dyn Slot<E>, step: &'static Location<'static>) -> Flow<E> {
        let Some(slot) = slot.as_any().downcast_mut::<Option<Result<In, E>>>() else {
            unreachable!("a stage's input type is the output type of the stage before it");
        };
        let Some(input) = slot.take() else {
            unreachable!("a stage runs once the stage before it has its result");
        };
        let next = run_step(self.run, input, step);
        // Whether the output fits the input's slot is known at compile time.
        let same = (slot as &mut dyn Any).downcast_mut::<Option<Result<Out, E>>>();
        match (next.into_outcome(), same) {
            (Outcome::Ready(result), Some(same)) => {
                *same = Some(result);
                Flow::Ready(None)
            }
            (Outcome::Ready(result), None) => Flow::Ready(Some(Box::new(Some(result)))),
            (Outcome::Waiting(link), Some(_)) => Flow::Wait(link, None),
            (Outcome::Waiting(link), None) => {
                Flow::Wait(link, Some(Box::new(None::<Result<Out, E>>)))
            }
        }
    }
}

/// A stage, and where its step was added (kept beside the function, so that a function that
/// captures nothing boxes for free).
pub(crate) type Added<E> = (Box<dyn Stage<E>>, &'static Location<'static>);

/// Stages in the order they run. The first is kept apart, so a chain with one stage (a `chain!`
/// run of `then`s) allocates no buffer.
pub(crate) struct Stages<E: 'static> {
    first: Option<Added<E>>,
    rest: Vec<Added<E>>,
}

/// The buffer's first size: a chain that adds a second step usually adds several, and growing
/// the buffer step by step costs more than the steps (16 slots, 384 bytes, freed when a run
/// takes them).
const FIRST_CAPACITY: usize = 15;

impl<E: 'static> Stages<E> {
    pub(crate) const fn new() -> Stages<E> {
        Stages {
            first: None,
            rest: Vec::new(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    /// Adds `stage` last.
    #[inline]
    pub(crate) fn push(&mut self, stage: Added<E>) {
        if self.first.is_none() {
            self.first = Some(stage);
        } else {
            if self.rest.capacity() == 0 {
                self.rest.reserve_exact(FIRST_CAPACITY);
            }
            self.rest.push(stage);
        }
    }

    /// Takes all the stages out, to run them in order.
    #[inline]
    pub(crate) fn take(&mut self) -> Run<E> {
        let rest = if self.rest.capacity() == 0 {
            None // most chains: one stage, no buffer
        } else {
            Some(std::mem::take(&mut self.rest).into_iter())
        };
        Run {
            first: self.first.take(),
            rest,
        }
    }
}

/// The stages a run has taken, in order.
pub(crate) struct Run<E: 'static> {
    first: Option<Added<E>>,
    rest: Option<std::vec::IntoIter<Added<E>>>,
}

impl<E: 'static> Run<E> {
    /// No stages.
    pub(crate) fn none() -> Run<E> {
        Run {
            first: None,
            rest: None,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none() && self.rest.as_ref().is_none_or(|rest| rest.len() == 0)
    }
}

impl<E: 'static> Iterator for Run<E> {
    type Item = Added<E>;

    #[inline]
    fn next(&mut self) -> Option<Added<E>> {
        match self.first.take() {
            Some(first) => Some(first),
            None => self.rest.as_mut()?.next(),
        }
    }
}
