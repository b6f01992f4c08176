//! Steps waiting in a pending chain, and the typed slots their results pass through.
//!
//! A pending chain is one [`Chain`](super::pending::Chain) however many steps are added to it: each
//! `add_*` on a pending Deferred appends a [`Stage`] — the step's function, boxed (free when it
//! captures nothing) — to the link's list, and the thread that fires the root runs the stages in
//! order. The value type may change from stage to stage, so the link sees results type-erased,
//! in a [`Slot`]: a stage takes its input out of the slot (checked by `Any`: a stage's input type
//! is the output type of the one before it, so the check never fails) and puts its output back in
//! the same slot when the type is the same; a stage that changes the type carries a slot for its
//! output in its own box, which becomes the chain's slot. So a step allocates at most its box,
//! and nothing when it captures nothing and keeps the value's type.

use std::any::{Any, TypeId};
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::panic::Location;

use super::super::Deferred;
use super::super::{ChainPtr, Sendable};
use super::super::{Outcome, SPENT, run_step, unwound_at};
use super::AnyChain;
use crate::bounds::FromFailure;
#[cfg(not(feature = "registry"))]
use crate::chain_arc::{KeptBox, free_vec_of_nones, vec_of_options};
use crate::failure::Failure;
use crate::unhandled;
// With the feature `registry` (no `chain_arc`), the list's box is a `Box`, and its buffer a
// `Vec`'s own.
#[cfg(feature = "registry")]
use std::boxed::Box as KeptBox;
#[cfg(feature = "registry")]
use {drop as free_vec_of_nones, no_chain_arc::vec_of_options};

#[cfg(feature = "registry")]
mod no_chain_arc {
    #[inline]
    pub(super) fn vec_of_options<T>(capacity: usize) -> Vec<Option<T>> {
        Vec::with_capacity(capacity)
    }
}

/// Where a result of type `Result<T, E>` waits: `Option<Result<T, E>>`, seen without its `T`.
pub(crate) trait Slot<E>: Sendable {
    /// The slot itself, for a typed stage to take its input from or put its output in.
    fn as_any(&mut self) -> &mut dyn Any;
    /// Moves the result in `from` (a slot of the same type) into this one.
    fn fill_from(&mut self, from: &mut dyn Slot<E>);
    /// Reports the failure held here as unhandled (rule 5), if any; empties the slot.
    fn report(&mut self);
    /// Puts the failure `error` here.
    fn fail(&mut self, error: E);
    /// Whether a value left here goes back to its producer when the slot is dropped
    /// ([`GivenBack`]): a fan-in that would drop a late success puts it back instead
    /// ([`put_back`]).
    fn gives_back(&self) -> bool {
        false
    }

    /// Takes the way back of a slot that [`gives_back`](Slot::gives_back), whose value a
    /// fan-in has taken and keeps for its outcome: a slot of its own, empty, which gives back
    /// a value [`put_back`] in it when it is dropped. This one then gives nothing back. `None`
    /// for a slot that gives nothing back.
    fn take_way_back(&mut self) -> Option<Box<dyn Slot<E>>> {
        None
    }

    /// Whether this is a [`HoldsFailures`] slot: a chain waiting on this one, with no step
    /// left to take the value, keeps the slot itself (`AnyChain::held_arriver`), so that the
    /// failures are still reported if that chain drops the value unread.
    fn holds_failures(&self) -> bool {
        false
    }
}

impl<T: Sendable + 'static, E: Sendable + 'static> Slot<E> for Option<Result<T, E>> {
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

    fn fail(&mut self, error: E) {
        *self = Some(Err(error));
    }
}

/// A result that goes back where it came from if nobody takes it: where a `DeferredQueue`'s
/// get keeps its item until the consumer takes it (`Resolver::try_fire_or_give_back`). Seen as
/// a `Result<T, E>` slot (its `as_any` is the result's), so a stage or the chain's end takes it
/// as any other; if the chain drops it instead — its Deferred dropped unread, as
/// `tokio::select!` drops the branch it did not take — the value goes to `give_back`, and a
/// failure put here since is reported, as any other. A fan-in that takes the value and keeps it
/// for an outcome that may leave it out takes `give_back` too, in a `GivenBack` of its own
/// ([`Slot::take_way_back`]), and puts the value back in it if the outcome does.
pub(crate) struct GivenBack<T, E, F: FnOnce(T)> {
    result: Option<Result<T, E>>,
    give_back: Option<F>,
}

impl<T, E, F: FnOnce(T)> GivenBack<T, E, F> {
    pub(crate) fn new(value: T, give_back: F) -> GivenBack<T, E, F> {
        GivenBack {
            result: Some(Ok(value)),
            give_back: Some(give_back),
        }
    }

    /// Gives the value back, if one is here and nobody took it.
    fn give_back(&mut self) {
        if let Some(Ok(_)) = self.result
            && let (Some(Ok(value)), Some(give_back)) = (self.result.take(), self.give_back.take())
        {
            give_back(value);
        }
    }
}

impl<T, E, F> Slot<E> for GivenBack<T, E, F>
where
    T: Sendable + 'static,
    E: Sendable + 'static,
    F: FnOnce(T) + Sendable + 'static,
{
    fn as_any(&mut self) -> &mut dyn Any {
        &mut self.result
    }

    fn fill_from(&mut self, from: &mut dyn Slot<E>) {
        self.result = take::<T, E>(from);
    }

    fn report(&mut self) {
        self.give_back();
        self.result.report();
    }

    fn fail(&mut self, error: E) {
        self.result = Some(Err(error));
    }

    fn gives_back(&self) -> bool {
        self.give_back.is_some()
    }

    fn take_way_back(&mut self) -> Option<Box<dyn Slot<E>>> {
        let give_back = self.give_back.take()?;
        Some(Box::new(GivenBack::<T, E, F> {
            result: None,
            give_back: Some(give_back),
        }))
    }
}

impl<T, E, F: FnOnce(T)> Drop for GivenBack<T, E, F> {
    fn drop(&mut self) {
        self.give_back();
    }
}

/// A success whose value holds failures (a combinator's outcome that keeps its inputs'
/// failures as values: `settle_all`'s `Vec<Result<T, E>>`): where the chain keeps it until the
/// end of the chain takes it (`Resolver::settle_holding`). Seen as a `Result<T, E>` slot (its
/// `as_any` is the result's), so the end of the chain, a step or a chain waiting on this one
/// takes it as any other; if the chain reports it instead — nobody can read it, rule 5 — the
/// failures in the value are reported, by `report_held`.
pub(crate) struct HoldsFailures<T, E> {
    result: Option<Result<T, E>>,
    report_held: fn(T),
}

impl<T, E> HoldsFailures<T, E> {
    pub(crate) fn new(value: T, report_held: fn(T)) -> HoldsFailures<T, E> {
        HoldsFailures {
            result: Some(Ok(value)),
            report_held,
        }
    }
}

impl<T, E> Slot<E> for HoldsFailures<T, E>
where
    T: Sendable + 'static,
    E: Sendable + 'static,
{
    fn as_any(&mut self) -> &mut dyn Any {
        &mut self.result
    }

    fn fill_from(&mut self, from: &mut dyn Slot<E>) {
        self.result = take::<T, E>(from);
    }

    fn report(&mut self) {
        match self.result.take() {
            Some(Ok(value)) => (self.report_held)(value),
            Some(Err(error)) => unhandled::report(error),
            None => {}
        }
    }

    fn fail(&mut self, error: E) {
        self.result = Some(Err(error));
    }

    fn holds_failures(&self) -> bool {
        true
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

/// Puts `value` back into `slot`, which holds a `Result<T, E>` that [`take`] emptied.
pub(crate) fn put_back<T: 'static, E: 'static>(slot: &mut dyn Slot<E>, value: T) {
    match slot.as_any().downcast_mut::<Option<Result<T, E>>>() {
        Some(slot) => *slot = Some(Ok(value)),
        None => unreachable!("a value goes back into the slot it was taken from"),
    }
}

/// What running a stage gave. A new slot comes with it when the stage's output type differs
/// from its input type; otherwise the slot it was given is reused.
pub(crate) enum Flow<E: 'static> {
    /// Its result is in the slot.
    Ready(Option<Box<dyn Slot<E>>>),
    /// It returned a pending Deferred: the chain waits on that one's link, whose result will
    /// be put in the slot.
    Wait(ChainPtr<dyn AnyChain<E>>, Option<Box<dyn Slot<E>>>),
    /// As `Wait`, and the stage given runs next, on the result that arrives, before the
    /// chain's other stages (see [`RunThen`]).
    WaitThen(
        ChainPtr<dyn AnyChain<E>>,
        Option<Box<dyn Slot<E>>>,
        Added<E>,
    ),
}

/// One step of a pending chain, its input and output types erased.
pub(crate) trait Stage<E: 'static>: Sendable {
    /// Runs the step (added at `step`) on the result taken from `slot` (a slot's
    /// [`as_any`](Slot::as_any): an `Option<Result<In, E>>`), and leaves its output there (or in
    /// the new slot it returns).
    fn run(self: Box<Self>, slot: &mut dyn Any, step: &'static Location<'static>) -> Flow<E>;
}

/// Runs `stage` at once on `input` (a chain that fired before the stage could be added: rule 2),
/// and gives its outcome as a Deferred.
pub(crate) fn run_now<In, Out, E>(
    stage: Box<dyn Stage<E>>,
    mut input: Option<Result<In, E>>,
    step: &'static Location<'static>,
) -> Deferred<Out, E>
where
    In: Sendable + 'static,
    Out: Sendable + 'static,
    E: FromFailure + Sendable + 'static,
{
    match stage.run(&mut input, step) {
        Flow::Ready(None) => Deferred::from_output(take::<Out, E>(&mut input)),
        Flow::Ready(Some(mut output)) => Deferred::from_output(take::<Out, E>(&mut *output)),
        Flow::Wait(link, _) => Deferred::waiting(link),
        Flow::WaitThen(link, _, then) => Deferred::<Out, E>::waiting(link).with_stage(then),
    }
}

/// What a stage runs on its input: a step's function (any `FnOnce` of the right shape), or
/// `chain!`'s run of `then`s and the `catch` after it ([`RunThen`]).
pub(crate) trait Runs<In, Out, E: 'static>: Sendable + 'static {
    /// Runs on `input`, as the step added at `step`.
    fn run(self, input: Result<In, E>, step: &'static Location<'static>) -> Ran<Out, E>;
}

/// What a stage's run gave.
pub(crate) enum Ran<Out, E: 'static> {
    /// Its result.
    Ready(Result<Out, E>),
    /// A pending Deferred: the chain waits on it.
    Wait(ChainPtr<dyn AnyChain<E>>),
    /// A pending Deferred: the chain waits on it, then runs the stage given first.
    WaitThen(ChainPtr<dyn AnyChain<E>>, Added<E>),
}

impl<In, Out, E, F> Runs<In, Out, E> for F
where
    In: 'static,
    Out: 'static,
    E: FromFailure + 'static,
    F: FnOnce(Result<In, E>, &'static Location<'static>) -> Deferred<Out, E> + Sendable + 'static,
{
    #[inline]
    fn run(self, input: Result<In, E>, step: &'static Location<'static>) -> Ran<Out, E> {
        ran(run_step(self, input, step))
    }
}

/// A stage whose output has its input's type: the output goes back in the slot the input came
/// from.
struct Step<In, Out, E, R> {
    run: R,
    types: PhantomData<fn(In, E) -> Out>,
}

/// A stage that changes the value's type: its box keeps the slot for its output, and becomes the
/// chain's slot once it has run (so a type change costs no allocation of its own).
struct Changing<In, Out, E, R> {
    run: Option<R>,
    output: Option<Result<Out, E>>,
    input: PhantomData<fn(In)>,
}

/// Boxes a step's function as a stage.
#[inline]
pub(crate) fn stage<In, Out, E, F>(run: F) -> Box<dyn Stage<E>>
where
    In: Sendable + 'static,
    Out: Sendable + 'static,
    E: FromFailure + Sendable + 'static,
    F: FnOnce(Result<In, E>, &'static Location<'static>) -> Deferred<Out, E> + Sendable + 'static,
{
    boxed::<In, Out, E, F>(run)
}

/// Boxes what a stage runs: a [`Step`] when it keeps the value's type, else a [`Changing`].
#[inline]
fn boxed<In, Out, E, R>(run: R) -> Box<dyn Stage<E>>
where
    In: Sendable + 'static,
    Out: Sendable + 'static,
    E: FromFailure + Sendable + 'static,
    R: Runs<In, Out, E>,
{
    if TypeId::of::<In>() == TypeId::of::<Out>() {
        Box::new(Step {
            run,
            types: PhantomData,
        })
    } else {
        Box::new(Changing {
            run: Some(run),
            output: None,
            input: PhantomData,
        })
    }
}

/// Takes a stage's input out of `slot`.
#[inline]
fn input<In: 'static, E: 'static>(
    slot: &mut dyn Any,
) -> (Result<In, E>, &mut Option<Result<In, E>>) {
    let Some(slot) = slot.downcast_mut::<Option<Result<In, E>>>() else {
        unreachable!("a stage's input type is the output type of the stage before it");
    };
    let Some(input) = slot.take() else {
        unreachable!("a stage runs once the stage before it has its result");
    };
    (input, slot)
}

/// What the Deferred a step returned amounts to; one already polled to completion is a step's
/// mistake, not the chain's: it fails the chain.
///
/// Always inlined: built with one codegen unit, the compiler kept it out of line, at 6
/// instructions a step more on a pending `add_callback` chain (BENCHMARKS.md, "The build
/// profile"); as Cargo ships the profile it was inlined already.
#[inline(always)]
fn outcome<Out, E: FromFailure + 'static>(next: Deferred<Out, E>) -> Outcome<Out, E> {
    match next.into_outcome() {
        Outcome::Spent => Outcome::Ready(Err(E::from(Failure::msg(SPENT)))),
        outcome => outcome,
    }
}

/// Puts `result` in `slot`, which holds a `Result<T, E>`.
#[inline]
pub(crate) fn put<T: 'static, E: 'static>(slot: &mut dyn Slot<E>, result: Option<Result<T, E>>) {
    match slot.as_any().downcast_mut::<Option<Result<T, E>>>() {
        Some(slot) => *slot = result,
        None => unreachable!("a chain's result goes to a slot of its type"),
    }
}

/// What a stage's run gave, from the Deferred its function returned.
///
/// Always inlined, as [`outcome`]: built with one codegen unit, the compiler kept it out of
/// line, at 31 instructions a step more on a pending `add_callback` chain (BENCHMARKS.md, "The
/// build profile"); as Cargo ships the profile it was inlined already.
#[inline(always)]
fn ran<Out, E: FromFailure + 'static>(next: Deferred<Out, E>) -> Ran<Out, E> {
    match outcome(next) {
        Outcome::Ready(result) => Ran::Ready(result),
        Outcome::Waiting(link) => Ran::Wait(link),
        Outcome::Spent => unreachable!("mapped to a failure"),
    }
}

impl<In, Out, E, R> Stage<E> for Step<In, Out, E, R>
where
    In: Sendable + 'static,
    Out: Sendable + 'static,
    E: FromFailure + Sendable + 'static,
    R: Runs<In, Out, E>,
{
    fn run(self: Box<Self>, slot: &mut dyn Any, step: &'static Location<'static>) -> Flow<E> {
        let (input, slot) = input::<In, E>(slot);
        let ran = self.run.run(input, step);
        let Some(slot) = (slot as &mut dyn Any).downcast_mut::<Option<Result<Out, E>>>() else {
            unreachable!("a `Step` keeps the value's type (see `boxed`)");
        };
        match ran {
            Ran::Ready(result) => {
                *slot = Some(result);
                Flow::Ready(None)
            }
            Ran::Wait(link) => Flow::Wait(link, None),
            Ran::WaitThen(link, then) => Flow::WaitThen(link, None, then),
        }
    }
}

impl<In, Out, E, R> Stage<E> for Changing<In, Out, E, R>
where
    In: Sendable + 'static,
    Out: Sendable + 'static,
    E: FromFailure + Sendable + 'static,
    R: Runs<In, Out, E>,
{
    fn run(mut self: Box<Self>, slot: &mut dyn Any, step: &'static Location<'static>) -> Flow<E> {
        let (input, _) = input::<In, E>(slot);
        let Some(run) = self.run.take() else {
            unreachable!("a stage runs once");
        };
        match run.run(input, step) {
            Ran::Ready(result) => {
                self.output = Some(result);
                Flow::Ready(Some(self))
            }
            Ran::Wait(link) => Flow::Wait(link, Some(self)),
            Ran::WaitThen(link, then) => Flow::WaitThen(link, Some(self), then),
        }
    }
}

/// Once it has run, a `Changing` stage is the slot of its output.
impl<In, Out, E, R> Slot<E> for Changing<In, Out, E, R>
where
    In: 'static,
    Out: Sendable + 'static,
    E: Sendable + 'static,
    R: Sendable + 'static,
{
    fn as_any(&mut self) -> &mut dyn Any {
        &mut self.output
    }

    fn fill_from(&mut self, from: &mut dyn Slot<E>) {
        self.output.fill_from(from);
    }

    fn report(&mut self) {
        self.output.report();
    }

    fn fail(&mut self, error: E) {
        self.output.fail(error);
    }
}

/// `chain!`'s run of `then`s and the `catch` after it, as what one stage runs
/// (`Deferred::__add_callbacks_then`): `run` gives the run's outcome, `then` adds the `catch`
/// to it. An outcome that has fired goes to `then` at once; for a pending one, the chain waits
/// on it, and `then` runs on what arrives, as the chain's next stage, before the stages added
/// after this one (`Flow::WaitThen`). So the run's own links keep nothing to run after it (a
/// link whose last step returned a pending Deferred hands it to the chain waiting on it, see
/// `hand_over`), and this chain holds the `catch` only while it waits for the run's outcome.
struct RunThen<F, Th> {
    run: F,
    then: Th,
    then_at: ThenAt,
}

/// Boxes a run of `chain!` steps and the `catch` after it as one stage (see [`RunThen`]).
#[inline]
pub(crate) fn run_then<In, Out, E, F, Th>(
    run: F,
    then: Th,
    then_at: &'static Location<'static>,
) -> Box<dyn Stage<E>>
where
    In: Sendable + 'static,
    Out: Sendable + 'static,
    E: FromFailure + Sendable + 'static,
    F: FnOnce(Result<In, E>, &'static Location<'static>) -> Deferred<Out, E> + Sendable + 'static,
    Th: FnOnce(Deferred<Out, E>) -> Deferred<Out, E> + Sendable + 'static,
{
    boxed::<In, Out, E, _>(RunThen {
        run,
        then,
        then_at: ThenAt::new(then_at),
    })
}

impl<In, Out, E, F, Th> Runs<In, Out, E> for RunThen<F, Th>
where
    In: Sendable + 'static,
    Out: Sendable + 'static,
    E: FromFailure + Sendable + 'static,
    F: FnOnce(Result<In, E>, &'static Location<'static>) -> Deferred<Out, E> + Sendable + 'static,
    Th: FnOnce(Deferred<Out, E>) -> Deferred<Out, E> + Sendable + 'static,
{
    #[inline]
    fn run(self, input: Result<In, E>, step: &'static Location<'static>) -> Ran<Out, E> {
        let RunThen { run, then, then_at } = self;
        let then = move |result: Result<Out, E>, _| then(Deferred::from_result(result));
        match outcome(run_step(run, input, step)) {
            // The `catch` that `then` adds runs as a step of its own (its own panic guard
            // and trace event): this guard only keeps a panic of `then` from unwinding the run.
            Outcome::Ready(result) => ran(unwound_at(then, result, step)),
            Outcome::Waiting(link) => Ran::WaitThen(
                link,
                (boxed::<Out, Out, E, _>(ThenStage(then)), then_at.or(step)),
            ),
            Outcome::Spent => unreachable!("mapped to a failure"),
        }
    }
}

/// A [`RunThen`]'s `then` as a stage of its own, while the run's outcome is pending. Not a step:
/// the `catch` it adds is one, with its own panic guard and trace event. So it runs as `then`
/// runs on a fired outcome, under `unwound_at` alone (no trace event of its own), which only
/// keeps a panic of `then` from unwinding the run.
struct ThenStage<F>(F);

impl<Out, E, F> Runs<Out, Out, E> for ThenStage<F>
where
    Out: 'static,
    E: FromFailure + 'static,
    F: FnOnce(Result<Out, E>, &'static Location<'static>) -> Deferred<Out, E> + Sendable + 'static,
{
    #[inline]
    fn run(self, input: Result<Out, E>, step: &'static Location<'static>) -> Ran<Out, E> {
        ran(unwound_at(self.0, input, step))
    }
}

/// Where a [`RunThen`]'s `then` (`chain!`'s `catch`) is: the location of the stage it becomes
/// while the run's outcome is pending. Only the registry reads it (it lists the stages a chain
/// has left), so only the feature `registry` keeps it; without it, that stage is located at
/// the run's, and a run whose steps capture nothing stays free to box.
#[derive(Clone, Copy)]
struct ThenAt(#[cfg(feature = "registry")] &'static Location<'static>);

impl ThenAt {
    #[inline]
    fn new(at: &'static Location<'static>) -> ThenAt {
        #[cfg(feature = "registry")]
        return ThenAt(at);
        #[cfg(not(feature = "registry"))]
        {
            let _ = at;
            ThenAt()
        }
    }

    /// Where the `then` is, or `step` when that is not kept.
    #[inline]
    fn or(self, step: &'static Location<'static>) -> &'static Location<'static> {
        #[cfg(feature = "registry")]
        {
            let _ = step;
            self.0
        }
        #[cfg(not(feature = "registry"))]
        step
    }
}

/// A stage, and where its step was added (kept beside the function, so that a function that
/// captures nothing boxes for free).
pub(crate) type Added<E> = (Box<dyn Stage<E>>, &'static Location<'static>);

/// Stages in the order they run: one enum of 24 bytes (rustc packs its two variants together),
/// so a chain with one stage (a `chain!` run of `then`s, a step waiting on I/O) allocates
/// nothing for it, and a chain with more keeps them all behind one pointer: a box made when a
/// second stage comes, which holds two inline (a chain of two stages — a step and the step a
/// caller adds — needs no buffer), then a buffer for the rest. The box is freed with its last
/// stage: a chain pays for a list only while it has one. It is a [`KeptBox`], and its buffer is
/// made by `vec_of_options` and given back by `free_vec_of_nones`: their blocks are ones the
/// thread kept from a list or a chain freed before, when it has them (`chain_arc/cells.rs`).
pub(crate) struct Stages<E: 'static>(List<E>);

enum List<E: 'static> {
    /// One stage.
    One(Added<E>),
    /// None (`None`), or two or more (never an empty box).
    Many(Option<KeptBox<Rest<E>>>),
}

/// Two stages or more, in the order they run: `first`, `second`, then those in `far` from
/// `taken` on. `far` is a buffer of 8 made for the third, which grows four times at once (a
/// chain that adds a third step usually adds many, and copying the buffer at every doubling
/// costs more than the steps). It is a queue that only grows at its back: a stage is taken
/// from its front by leaving `None` in its place and counting it in `taken`, so that taking
/// one is a read and a count, and freeing the buffer of a list that ran every stage looks at
/// none of its places. The places of the stages taken are reused when the buffer is full
/// (`grow_far`). So the order holds, `push_back` puts a stage in `first` or `second` only
/// while every place after it is empty, and `push_front` puts one in `first`, moving what was
/// there back (it is usually empty: the run has just taken the stage that was there, see
/// `Flow::WaitThen`).
struct Rest<E: 'static> {
    first: Option<Added<E>>,
    second: Option<Added<E>>,
    /// `None` before `taken`, a stage from `taken` on. Taken out by `Rest`'s `drop` (so it has
    /// no drop of its own to run after that).
    far: ManuallyDrop<Vec<Option<Added<E>>>>,
    taken: usize,
}

const FAR_CAPACITY: usize = 8;
const GROWTH: usize = 4;

impl<E: 'static> Rest<E> {
    /// A list of the two stages given, in that order.
    #[inline]
    fn pair(first: Added<E>, second: Added<E>) -> List<E> {
        List::Many(Some(KeptBox::new(Rest {
            first: Some(first),
            second: Some(second),
            far: ManuallyDrop::new(Vec::new()),
            taken: 0,
        })))
    }

    #[inline]
    fn is_empty(&self) -> bool {
        self.first.is_none() && self.second.is_none() && self.taken == self.far.len()
    }

    /// [`push_back`](Rest::push_back) when there is room for `stage` without growing `far`;
    /// else `stage` back.
    #[inline(always)]
    fn try_push_back(&mut self, stage: Added<E>) -> Result<(), Added<E>> {
        if self.taken == self.far.len() && self.second.is_none() {
            if self.first.is_none() {
                self.first = Some(stage);
            } else {
                self.second = Some(stage);
            }
            return Ok(());
        }
        if self.far.len() == self.far.capacity() {
            return Err(stage);
        }
        self.far.push(Some(stage));
        Ok(())
    }

    #[inline]
    fn push_back(&mut self, stage: Added<E>) {
        if let Err(stage) = self.try_push_back(stage) {
            self.grow_far();
            self.far.push(Some(stage));
        }
    }

    /// Makes room in `far` for one more stage: the first buffer; or the places of the stages
    /// taken, when they are at least half of it (so a chain that keeps adding as it runs does
    /// not grow it for ever); or a buffer four times as large. Out of line, so that the usual
    /// push keeps few registers.
    #[inline(never)]
    fn grow_far(&mut self) {
        if self.far.capacity() == 0 {
            // The buffer replaced has none to free.
            std::mem::forget(std::mem::replace(
                &mut *self.far,
                vec_of_options(FAR_CAPACITY),
            ));
        } else if self.taken != 0 && self.taken >= self.far.len() / 2 {
            self.far.drain(..self.taken);
            self.taken = 0;
        } else {
            let more = self.far.capacity() * (GROWTH - 1);
            self.far.reserve_exact(more);
        }
    }

    /// Puts `stage` first.
    #[inline]
    fn push_front(&mut self, stage: Added<E>) {
        if let Some(first) = self.first.replace(stage)
            && let Some(second) = self.second.replace(first)
        {
            self.push_front_far(second);
        }
    }

    /// Puts `stage` first in `far`: in the place of the last stage taken, if there is one.
    #[cold]
    #[inline(never)]
    fn push_front_far(&mut self, stage: Added<E>) {
        if self.taken == 0 {
            self.far.insert(0, Some(stage));
        } else {
            self.taken -= 1;
            self.far[self.taken] = Some(stage);
        }
    }

    #[inline(always)]
    fn pop_front(&mut self) -> Option<Added<E>> {
        if let Some(stage) = self.first.take() {
            return Some(stage);
        }
        if let Some(stage) = self.second.take() {
            return Some(stage);
        }
        self.pop_far()
    }

    #[inline(always)]
    fn pop_far(&mut self) -> Option<Added<E>> {
        let stage = self.far.get_mut(self.taken)?.take();
        self.taken += 1;
        stage
    }

    #[cfg(feature = "registry")]
    fn iter(&self) -> impl Iterator<Item = &Added<E>> {
        self.first
            .iter()
            .chain(self.second.iter())
            .chain(self.far.iter().flatten())
    }
}

/// The buffer goes back to this thread's kept blocks, as the box does (a chain that adds a
/// third step makes one, and frees it with its last stage).
impl<E: 'static> Drop for Rest<E> {
    fn drop(&mut self) {
        let mut far = std::mem::take(&mut *self.far);
        if far.capacity() == 0 {
            std::mem::forget(far); // no buffer: nothing to free
            return;
        }
        far.truncate(self.taken); // the stages not taken
        free_vec_of_nones(far);
    }
}

impl<E: 'static> Default for Stages<E> {
    fn default() -> Stages<E> {
        Stages::new()
    }
}

impl<E: 'static> Stages<E> {
    pub(crate) const fn new() -> Stages<E> {
        Stages(List::Many(None))
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        matches!(self.0, List::Many(None))
    }

    /// Takes the one stage out of a list of one, which is left empty.
    #[inline]
    fn take_one(&mut self) -> Added<E> {
        match std::mem::replace(&mut self.0, List::Many(None)) {
            List::One(stage) => stage,
            List::Many(_) => unreachable!("a list of one stage"),
        }
    }

    /// Adds `stage` last.
    #[inline]
    pub(crate) fn push_back(&mut self, stage: Added<E>) {
        // Matched in place, not moved out and back: this is the hot path of `add_*` and of a
        // run (the moving form costs a pending `add_callback` chain 4% more instructions).
        match &mut self.0 {
            List::Many(Some(rest)) => rest.push_back(stage),
            List::Many(None) => self.0 = List::One(stage),
            List::One(_) => self.push_second(stage),
        }
    }

    /// [`push_back`](Stages::push_back) when it needs no allocation (the list is empty, or its
    /// box has room); else `stage` back. No call: `AnyChain::add`'s usual path makes none.
    #[inline(always)]
    pub(crate) fn try_push_back(&mut self, stage: Added<E>) -> Result<(), Added<E>> {
        match &mut self.0 {
            List::Many(Some(rest)) => rest.try_push_back(stage),
            List::Many(None) => {
                self.0 = List::One(stage);
                Ok(())
            }
            List::One(_) => Err(stage),
        }
    }

    /// [`push_back`](Stages::push_back) onto a list of one: the box of two is made. Out of line,
    /// so that the usual push keeps few registers.
    #[inline(never)]
    fn push_second(&mut self, stage: Added<E>) {
        let first = self.take_one();
        self.0 = Rest::pair(first, stage);
    }

    /// Adds `stage` first: the stage that runs next (see [`RunThen`]).
    #[inline]
    pub(crate) fn push_front(&mut self, stage: Added<E>) {
        match &mut self.0 {
            List::Many(Some(rest)) => rest.push_front(stage),
            List::Many(None) => self.0 = List::One(stage),
            List::One(_) => {
                let second = self.take_one();
                self.0 = Rest::pair(stage, second);
            }
        }
    }

    /// Takes the next stage off. The list's box goes with its last stage: a chain that has run
    /// its stages holds no more than a fresh one.
    #[inline(always)]
    pub(crate) fn pop_front(&mut self) -> Option<Added<E>> {
        match &mut self.0 {
            List::Many(None) => None,
            List::Many(Some(rest)) => {
                let next = rest.pop_front();
                if rest.is_empty() {
                    self.0 = List::Many(None);
                }
                next
            }
            List::One(_) => Some(self.take_one()),
        }
    }

    /// Takes every stage off, in order, leaving the list empty (for a run: `Chain::drive_all`).
    #[inline]
    pub(crate) fn take_all(&mut self) -> Stages<E> {
        std::mem::take(self)
    }

    /// Puts `front`, stages a run took off the list and has not run, back before the stages in
    /// the list (those added since the run took them).
    #[inline]
    pub(crate) fn put_back(&mut self, front: Stages<E>) {
        if !front.is_empty() {
            self.put_back_before(front);
        }
    }

    /// [`put_back`](Stages::put_back) of stages: rare (a run stopped with stages it took not
    /// run yet), so out of line, and kept from the `push_back` of every `add_*`.
    #[cold]
    #[inline(never)]
    fn put_back_before(&mut self, front: Stages<E>) {
        let mut added = std::mem::replace(self, front);
        let List::Many(Some(rest)) = &mut self.0 else {
            let first = self.take_one();
            self.0 = List::Many(Some(KeptBox::new(Rest {
                first: Some(first),
                second: None,
                far: ManuallyDrop::new(
                    std::iter::from_fn(|| added.pop_front()).map(Some).collect(),
                ),
                taken: 0,
            })));
            return;
        };
        rest.far
            .extend(std::iter::from_fn(|| added.pop_front()).map(Some));
    }

    /// Where each stage was added, in order (for the registry).
    #[cfg(feature = "registry")]
    pub(crate) fn locations(&self) -> Vec<&'static Location<'static>> {
        // A link of the library's own (`trace::unlisted`) runs no step of the user's.
        let listed = |at: &&'static Location<'static>| !crate::trace::is_unlisted(at);
        match &self.0 {
            List::One((_, at)) => std::iter::once(*at).filter(listed).collect(),
            List::Many(rest) => rest
                .iter()
                .flat_map(|rest| rest.iter())
                .map(|(_, at)| *at)
                .filter(listed)
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stage that gives `n`, whatever its input.
    fn giving(n: u32) -> Added<Failure> {
        (
            stage::<u32, u32, Failure, _>(move |_, _| Deferred::succeed(n)),
            Location::caller(),
        )
    }

    /// What `stages` give, run in the order they come off.
    fn run_all(mut stages: Stages<Failure>) -> Vec<u32> {
        let mut given = Vec::new();
        while let Some((stage, at)) = stages.pop_front() {
            let mut slot: Option<Result<u32, Failure>> = Some(Ok(0));
            assert!(matches!(stage.run(&mut slot, at), Flow::Ready(None)));
            given.push(slot.take().and_then(Result::ok).expect("a value"));
        }
        given
    }

    #[test]
    fn push_front_puts_a_stage_before_every_other() {
        // From an empty list, one stage, two, and a list whose buffer is in use.
        for before in 0..12 {
            let mut stages = Stages::new();
            for n in 1..=before {
                stages.push_back(giving(n));
            }
            stages.push_front(giving(100));
            stages.push_back(giving(200));
            let mut expected = vec![100];
            expected.extend(1..=before);
            expected.push(200);
            assert_eq!(run_all(stages), expected, "{before} stages before");
        }
    }

    /// Every sequence of up to eight `push_back`, `push_front` and `pop_front` calls, and a
    /// `put_back` of a list at the end, against a `VecDeque` doing the same: the list gives its
    /// stages in the model's order, whichever places (the box's two places or its buffer) they went through.
    #[test]
    fn any_sequence_of_pushes_and_pops_keeps_the_order() {
        #[derive(Clone, Copy, Debug)]
        enum Op {
            Back,
            Front,
            Pop,
        }
        const OPS: [Op; 3] = [Op::Back, Op::Front, Op::Pop];
        let mut sequence = Vec::new();
        for length in 0..=8u32 {
            for code in 0..3usize.pow(length) {
                sequence.clear();
                let mut rest = code;
                for _ in 0..length {
                    sequence.push(OPS[rest % 3]);
                    rest /= 3;
                }
                let mut stages = Stages::new();
                let mut model = std::collections::VecDeque::new();
                for (n, op) in (1..).zip(&sequence) {
                    match op {
                        Op::Back => {
                            stages.push_back(giving(n));
                            model.push_back(n);
                        }
                        Op::Front => {
                            stages.push_front(giving(n));
                            model.push_front(n);
                        }
                        Op::Pop => {
                            let (stage, at) = match stages.pop_front() {
                                Some(taken) => taken,
                                None => {
                                    assert!(model.is_empty(), "{sequence:?}");
                                    continue;
                                }
                            };
                            let mut slot: Option<Result<u32, Failure>> = Some(Ok(0));
                            assert!(matches!(stage.run(&mut slot, at), Flow::Ready(None)));
                            let given = slot.take().and_then(Result::ok);
                            assert_eq!(given, model.pop_front(), "{sequence:?}");
                        }
                    }
                    assert_eq!(stages.is_empty(), model.is_empty(), "{sequence:?}");
                }
                // Stages a run took and did not run, put back before those added since.
                let mut front = Stages::new();
                front.push_back(giving(1000));
                front.push_back(giving(1001));
                stages.put_back(front);
                let mut expected = vec![1000, 1001];
                expected.extend(model);
                assert_eq!(run_all(stages), expected, "{sequence:?}");
            }
        }
    }

    /// The buffer's capacity, if the list has one.
    fn far_capacity(stages: &Stages<Failure>) -> usize {
        match &stages.0 {
            List::Many(Some(rest)) => rest.far.capacity(),
            _ => 0,
        }
    }

    /// Long sequences, past the buffer's first 8 places: growth, the places of stages taken
    /// reused, and `push_front` into them, against a `VecDeque` doing the same. The ops are
    /// drawn from a fixed generator, each run with a different mix.
    #[test]
    fn long_sequences_keep_the_order_through_the_buffers_growth() {
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for backs in [2, 3, 4, 6] {
            let mut stages = Stages::new();
            let mut model = std::collections::VecDeque::new();
            for n in 0..3000u32 {
                match next() % 8 {
                    draw if draw < backs => {
                        stages.push_back(giving(n));
                        model.push_back(n);
                    }
                    6 => {
                        stages.push_front(giving(n));
                        model.push_front(n);
                    }
                    _ => {
                        let given = stages.pop_front().map(|(stage, at)| {
                            let mut slot: Option<Result<u32, Failure>> = Some(Ok(0));
                            assert!(matches!(stage.run(&mut slot, at), Flow::Ready(None)));
                            slot.take().and_then(Result::ok).expect("a value")
                        });
                        assert_eq!(given, model.pop_front(), "mix {backs}, op {n}");
                    }
                }
                assert_eq!(stages.is_empty(), model.is_empty(), "mix {backs}, op {n}");
            }
            assert_eq!(run_all(stages), Vec::from(model), "mix {backs}");
        }
    }

    /// A chain that keeps adding a stage for each it runs (a few waiting at any time) reuses
    /// its buffer's places instead of growing it for ever.
    #[test]
    fn a_list_that_adds_as_it_runs_keeps_its_buffer() {
        let mut stages = Stages::new();
        for n in 0..5 {
            stages.push_back(giving(n));
        }
        let mut expected = 0;
        for n in 5..10_000 {
            let (stage, at) = stages.pop_front().expect("a stage");
            let mut slot: Option<Result<u32, Failure>> = Some(Ok(0));
            assert!(matches!(stage.run(&mut slot, at), Flow::Ready(None)));
            assert_eq!(slot.take().and_then(Result::ok), Some(expected));
            expected += 1;
            stages.push_back(giving(n));
            assert!(
                far_capacity(&stages) <= 4 * FAR_CAPACITY,
                "after {n} stages"
            );
        }
        assert_eq!(run_all(stages), (expected..10_000).collect::<Vec<_>>());
    }

    #[test]
    fn push_front_after_the_run_took_the_first_stage() {
        // The run's case: the stage that was first was taken off, and stages were added since.
        for after in 0..12 {
            let mut stages = Stages::new();
            stages.push_back(giving(1));
            stages.push_back(giving(2));
            let (taken, at) = stages.pop_front().expect("a stage");
            let mut slot: Option<Result<u32, Failure>> = Some(Ok(0));
            assert!(matches!(taken.run(&mut slot, at), Flow::Ready(None)));
            for n in 0..after {
                stages.push_back(giving(10 + n));
            }
            stages.push_front(giving(100));
            let mut expected = vec![100, 2];
            expected.extend((0..after).map(|n| 10 + n));
            assert_eq!(run_all(stages), expected, "{after} stages added after");
        }
    }
}
