//! Steps waiting in a pending chain, and the typed slots their results pass through.
//!
//! A pending chain is one [`Link`](crate::link::Link) however many steps are added to it: each
//! `add_*` on a pending Deferred appends a [`Stage`] — the step's function and a slot for its
//! result, in one box — to the link's list, and the thread that fires the root runs the stages in
//! order. The value type changes from stage to stage, so the link sees them type-erased: a stage
//! takes its input out of the slot of the stage before it ([`Slot`], checked by `Any`: a stage's
//! input type is the output type of the one before it, so the check never fails), runs, and keeps
//! its output in its own slot until the next stage takes it. The last stage that ran holds the
//! chain's result until the Deferred at the end of the chain takes it.
//!
//! The list is singly linked through the boxes themselves, so adding a step allocates exactly
//! one box (none more for a growing buffer), and it is taken and dropped in loops, never by
//! recursion: a million steps cost no stack.

use std::any::Any;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::deferred::{Deferred, Outcome};
use crate::failure::Failure;
use crate::link::Node;
use crate::unhandled;

/// Where a result of type `Result<T, E>` waits: `Option<Result<T, E>>`, seen without its `T`.
pub(crate) trait Slot<E>: Send {
    /// The slot itself, for a typed stage to take its input from.
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
pub(crate) fn take<T: 'static, E: 'static>(slot: &mut dyn Slot<E>) -> Option<Result<T, E>> {
    match slot.as_any().downcast_mut::<Option<Result<T, E>>>() {
        Some(slot) => slot.take(),
        None => unreachable!("a stage's input type is the output type of the stage before it"),
    }
}

/// What running a stage gave.
pub(crate) enum Flow<E> {
    /// Its result is in its slot: the next stage can run.
    Ready,
    /// It returned a pending Deferred: the chain waits on that one's link.
    Wait(Arc<dyn Node<E>>),
}

/// One step of a pending chain, its input and output types erased.
pub(crate) trait Stage<E>: Send {
    /// Runs the step on the result taken from `input` (the slot of the stage before it).
    fn run(&mut self, input: &mut dyn Slot<E>) -> Flow<E>;
    /// The slot holding this stage's result.
    fn output(&mut self) -> &mut dyn Slot<E>;
    /// The stage after this one in a [`StageList`].
    fn next(&mut self) -> &mut Option<Box<dyn Stage<E>>>;
}

/// A step's function `F` from `Result<In, E>` to the next Deferred, and the slot for its result.
struct Step<In, Out, E, F> {
    run: Option<F>,
    output: Option<Result<Out, E>>,
    next: Option<Box<dyn Stage<E>>>,
    input: PhantomData<fn(In)>,
}

/// Boxes a step's function as a stage. `run` is expected to catch the user's panics itself.
pub(crate) fn stage<In, Out, E, F>(run: F) -> Box<dyn Stage<E>>
where
    In: Send + 'static,
    Out: Send + 'static,
    E: From<Failure> + Send + 'static,
    F: FnOnce(Result<In, E>) -> Deferred<Out, E> + Send + 'static,
{
    Box::new(Step {
        run: Some(run),
        output: None,
        next: None,
        input: PhantomData,
    })
}

impl<In, Out, E, F> Stage<E> for Step<In, Out, E, F>
where
    In: Send + 'static,
    Out: Send + 'static,
    E: From<Failure> + Send + 'static,
    F: FnOnce(Result<In, E>) -> Deferred<Out, E> + Send + 'static,
{
    fn run(&mut self, input: &mut dyn Slot<E>) -> Flow<E> {
        let Some(input) = take::<In, E>(input) else {
            unreachable!("a stage runs after the stage before it has its result");
        };
        let Some(run) = self.run.take() else {
            unreachable!("a stage runs once");
        };
        match run(input).into_outcome() {
            Outcome::Ready(result) => {
                self.output = Some(result);
                Flow::Ready
            }
            Outcome::Waiting(link) => Flow::Wait(link),
        }
    }

    fn output(&mut self) -> &mut dyn Slot<E> {
        &mut self.output
    }

    fn next(&mut self) -> &mut Option<Box<dyn Stage<E>>> {
        &mut self.next
    }
}

/// Stages linked through their boxes, in one order or the other (the link says which).
pub(crate) struct StageList<E: 'static> {
    head: Option<Box<dyn Stage<E>>>,
}

impl<E: 'static> StageList<E> {
    pub(crate) const fn new() -> StageList<E> {
        StageList { head: None }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    /// Puts `stage` first.
    pub(crate) fn push_front(&mut self, mut stage: Box<dyn Stage<E>>) {
        *stage.next() = self.head.take();
        self.head = Some(stage);
    }

    /// Takes the first stage off.
    pub(crate) fn pop_front(&mut self) -> Option<Box<dyn Stage<E>>> {
        let mut stage = self.head.take()?;
        self.head = stage.next().take();
        Some(stage)
    }

    /// The same stages in the opposite order.
    pub(crate) fn reversed(mut self) -> StageList<E> {
        let mut reversed = StageList::new();
        while let Some(stage) = self.pop_front() {
            reversed.push_front(stage);
        }
        reversed
    }
}

impl<E: 'static> Drop for StageList<E> {
    /// One box at a time: dropping the head would otherwise drop the rest recursively.
    fn drop(&mut self) {
        while let Some(stage) = self.pop_front() {
            drop(stage);
        }
    }
}
