//! A pending chain: the cell where its root's result arrives, and the steps added to it since,
//! run in order when it does. One concept, in four files:
//!
//! | file | what |
//! | --- | --- |
//! | `mod.rs` | [`Chain`]: its phases, its parts, and what a `Deferred` asks of it ([`AnyChain`]) |
//! | `run.rs` | firing, and the run of the steps (waiting on another chain, letting the queue go first) |
//! | `stage.rs` | the steps waiting to run, and the typed slots their results pass through |
//! | `cancel.rs` | cancellation: `CancelHandle`, the walk, and what a chain does with a cancel |
//!
//! A Deferred that has already fired holds its result inline and needs no chain at all (that is
//! why synchronous steps allocate nothing). A pending one points at a [`Chain`], shared with its
//! `Resolver`. Each `add_*` on a pending Deferred appends one [`Stage`] to the same chain (the
//! step's function, boxed: free when it captures nothing), so a pending chain of any length is
//! one cell, one lock and one list (the list allocated when a second stage comes). When the root
//! fires, the firing thread runs the stages in order: the first taken off the list under the
//! lock, then, when the lock finds more, all of them at once (run without the lock, then the
//! lock taken again for those added meanwhile); a stage that returns a pending Deferred pauses
//! the chain, which goes on when that Deferred's own chain forwards its result here.
//!
//! ```text
//!                fire / cancel                           the last stage ran
//!   Root ──────────────────────────▶ Running ─────────────────────────────▶ Fired ──▶ Done
//!                                    │     ▲                                  (taken, handed
//!              a stage returned a    │     │ that Deferred's result              on, or
//!              pending Deferred      ▼     │ arrives (`resume`)                  reported)
//!                                    Waiting
//! ```
//!
//! The rules, each enforced in the method named:
//! - A root fires once (`Chain::fire`). The `Resolver` API makes a second fire a compile error;
//!   the one case left — a fire arriving after `cancel` already failed the root — is ignored, as
//!   Twisted ignores the one late fire after a cancellation.
//! - Stages run in the order they were added, each exactly once, on one thread at a time: only
//!   the thread that moved the chain to `Running` runs them (`Chain::drive`, `drive_all`). A
//!   stage added while they run is picked up before the chain parks (`Chain::park` is only
//!   reached under the lock with no stage left), so none is stranded; a run that stops with
//!   stages it took and has not run puts them back before those (`Chain::keep`). One stage may
//!   put another before all the rest: `chain!`'s run and `catch`, whose run waits on a
//!   Deferred, leaves the `catch` first in the list while the chain waits (`Flow::WaitThen`,
//!   `Chain::wait_on_then`).
//! - The chain's result is handed on exactly once: it is moved out under the lock, whoever takes
//!   it (the Deferred at the end, a chain waiting on this one, or the unhandled-error report when
//!   the end was dropped: [`AnyChain::abandon`]).
//! - A root nobody can read any more (its end was dropped with no step left: `Inner::is_closed`)
//!   goes from `Root` to `Done` with no result, letting its listener go (`EndUnread`), when its
//!   Resolver is dropped
//!   (`Chain::fail_never_fired`: a `NeverFired` there would reach no one but the report) or
//!   `try_fire`d (`Chain::fire_if_open`: the result goes back to the caller, decided under the
//!   same lock as the fire).
//! - User code never runs under the lock: it is held only to move results, stages and listeners
//!   in and out; stages run, wakers wake and cancellers run after it is released.
//! - A chain whose last stage returned a pending Deferred, with a chain waiting on it and no
//!   cancel to pass on, is a relay: it hands that Deferred to the chain waiting on it, which
//!   waits on it directly (`Chain::hand_over`, `AnyChain::wait_instead`). So the result of a run
//!   of nested waits — each `chain!` step returning the next I/O — reaches the first chain in one
//!   hop, and the chains between are freed as they hand over. The relay stays waiting on that
//!   Deferred for a `CancelHandle` that still reaches it. Neither chain is locked while the
//!   other is: the hand-over asks the waiting chain, which switches only if it still waits on
//!   the relay (a cancel may have broken that wait meanwhile; the relay then waits itself).
//! - Results cross from one chain to another through the thread's run loop
//!   ([`crate::run_loop`]): a root fired, or a result forwarded, while the loop runs is stored in
//!   the chain and queued, so nested chains of any depth run in constant stack.
//! - Cancellation: see `cancel.rs`, where its rules are stated.
//! - A canceller set after the root was made (`Chain::set_canceller`, for
//!   `Resolver::set_canceller`) replaces the one it had while the root is pending and not
//!   cancelled; once a cancel has reached the root (its canceller is running, or has run and
//!   failed the root), the cancel already happened: the new canceller runs at once.

use std::mem::ManuallyDrop;
use std::panic::Location;
use std::task::Waker;

use self::cancel::{Cancel, Inputs, Remembered};
use self::stage::{Added, Slot, Stage, Stages};
use super::{
    CellGuard as Guard, CellLock as Lock, ChainPtr, Delivery, Ptr, Sendable, Shareable, Weak,
    chain_pair, erase_chain, link_to_cancel,
};
use crate::bounds::FromFailure;

pub(crate) mod cancel;
mod run;
pub(crate) mod stage;

/// A canceller given at creation: called when a pending chain waiting on this one is cancelled.
pub(crate) use super::Canceller;

pub(crate) struct Chain<T, E: 'static> {
    inner: Lock<Parts<T, E>>,
    /// Where and when the chain was made, for the registry.
    #[cfg(feature = "registry")]
    born: crate::registry::Born,
}

/// The chain's parts, dropped by the chain's own `Drop`: a chain that ended as most do (its
/// result taken, or a root dropped unfired with nothing in it) holds nothing to drop, and is
/// freed after one check instead of the drop glue of each part.
type Parts<T, E> = ManuallyDrop<Inner<T, E>>;

struct Inner<T, E: 'static> {
    /// Where the chain is, with what it waits on for a cancel in that phase.
    phase: Phase,
    /// Where the chain's result is kept between runs: while `Fired`, for the end of the chain to
    /// take; while `Waiting`, where the result of the Deferred it waits on will land; while
    /// `Running` with a delivery queued, where the run goes on from (the root's result, when the
    /// root fired inside another chain's run).
    result: Current<T, E>,
    /// Stages not run yet: those a run left when it stopped (to wait, or to let the thread's
    /// queue go first), then those added since. While a run of the `Send` kind goes on, the
    /// stages it took together (`Chain::drive_all`) are in its hands, not here.
    stages: Stages<E>,
    /// Who receives the chain's result.
    listener: Listener<E>,
    /// The helper that made the chain, for the registry.
    #[cfg(feature = "registry")]
    made_by: Option<&'static str>,
}

/// Where the chain is, and what it waits on for a cancel there: a root's canceller (or a
/// fan-in's inputs), or the Deferred a step returned. One enum, so a link spends one tag on
/// both.
enum Phase {
    /// The root has not fired, and a cancel has nothing to call.
    Root,
    /// The root has not fired; a cancel calls its canceller.
    RootCancellable(Canceller),
    /// The root has not fired, and a cancel took its canceller and runs it: a canceller set
    /// now runs at once. A second cancel that reaches the root meanwhile leaves it to that
    /// cancel (the canceller's answer, if it fires the root, wins) and is remembered here, as
    /// by a running chain: the run that begins when the root fires starts with it.
    RootCancelling(Remembered),
    /// The root has not fired, and is the output of a fan-in (`fan_in.rs`): each cancel of it
    /// cancels the fan-in's inputs, and it stays pending until the fan-in fires it with what
    /// they answer. A cancel whose inputs' answers come after it returned (they were queued on the
    /// thread's run loop, or put off) is remembered, as by a running chain: the run that
    /// begins when the fan-in fires it starts with it.
    RootOfFanIn(Weak<dyn Inputs>, Remembered),
    /// A thread runs the stages, or a delivery that will is queued on its run loop.
    Running { cancel: Remembered },
    /// A stage returned a pending Deferred, `on`; the chain goes on when its result arrives.
    Waiting {
        cancel: Remembered,
        on: ChainPtr<dyn Cancel>,
    },
    /// Every stage has run: the chain's result is here, with what a cancel that reached it
    /// too late left for the chain that will take it (`Remembered::passed_on` form).
    Fired { cancel: Remembered },
    /// Every stage has run, and the result went on to the chain that waited on this one: a
    /// cancel that reaches this chain too late is that chain's (`Cancel::cancel_after`). Held
    /// strongly: a chain between that has passed its result on may be gone (nobody waits on
    /// it), and a late walk goes on through it; the chain that took the result holds nothing
    /// of this one, so nothing is held in a cycle.
    Passed(ChainPtr<dyn Cancel>),
    /// The result has been taken, handed on or reported.
    Done,
}

impl Phase {
    /// The cancel a root that fires now starts its run with: one a fan-in's output, or a root
    /// a second cancel reached while its canceller ran, remembered (see the variants).
    #[inline]
    fn remembered_by_root(&self) -> Remembered {
        match *self {
            Phase::RootOfFanIn(_, cancel) | Phase::RootCancelling(cancel) => cancel,
            _ => Remembered::NONE,
        }
    }

    /// Whether the root has not fired (nor been failed by a cancel).
    #[inline]
    fn is_root(&self) -> bool {
        matches!(
            self,
            Phase::Root
                | Phase::RootCancellable(_)
                | Phase::RootCancelling(_)
                | Phase::RootOfFanIn(..)
        )
    }

    /// Leaves `Waiting` for `Running` as the result waited on comes (`Chain::resume`), keeping
    /// the cancel remembered and one that reached the chains after this one meanwhile
    /// (`passed_on`); gives what the chain waited on. Only called on `Waiting`.
    #[inline(always)]
    fn stop_waiting(&mut self, passed_on: Remembered) -> ChainPtr<dyn Cancel> {
        let Phase::Waiting { mut cancel, .. } = *self else {
            unreachable!("only a waiting chain stops waiting");
        };
        if let Some(outer_chains) = passed_on.get() {
            cancel.remember(outer_chains);
        }
        let Phase::Waiting { on, .. } = std::mem::replace(self, Phase::Running { cancel }) else {
            unreachable!("checked above");
        };
        on
    }

    /// Moves on from a phase that holds nothing (`Root` with no canceller, `Running`, `Fired`)
    /// to `next`, with no call to the drop glue.
    #[inline]
    fn move_on(&mut self, next: Phase) {
        let left = std::mem::replace(self, next);
        debug_assert!(left.holds_nothing());
        std::mem::forget(left); // nothing in it to drop
    }
}

/// A part of a chain's cell (its phase, result slot, stage list or listener). Most of the
/// time a part holds nothing to drop, and dropping it is then a check of its tag, not a call
/// to its drop glue: that one rule serves the chain's `Drop` (`Inner::holds_nothing`,
/// `drop_parts`) and the parts a lock holder swaps out (`release`).
trait Part: Sized {
    /// Whether the part holds nothing to drop.
    fn holds_nothing(&self) -> bool;

    /// Drops a part taken out of the cell, after the lock is released (a canceller's captures
    /// and a waker are user code): a check, and the drop glue only if it holds something.
    #[inline]
    fn release(self) {
        if self.holds_nothing() {
            std::mem::forget(self);
        } else {
            drop(self);
        }
    }
}

impl Part for Phase {
    /// No canceller, fan-in or Deferred waited on.
    #[inline]
    fn holds_nothing(&self) -> bool {
        match self {
            Phase::RootCancellable(_) | Phase::RootOfFanIn(..) | Phase::Waiting { .. } => false,
            Phase::Root
            | Phase::RootCancelling(_)
            | Phase::Running { .. }
            | Phase::Fired { .. }
            | Phase::Done => true,
            Phase::Passed(_) => false,
        }
    }
}

/// Who receives the chain's result.
enum Listener<E: 'static> {
    /// Nobody yet; the Deferred at the end of the chain will take it.
    Nobody,
    /// A task (or a thread in `wait`) polling the Deferred as a future.
    Task(Waker),
    /// An outer chain, one of whose stages returned this Deferred.
    Forward(ChainPtr<dyn AnyChain<E>>),
    /// A fan-in (`fan_in.rs`), of which this Deferred is input number `.1`.
    FanIn(Ptr<dyn Arrive<E>>, u32),
    /// The chain that waited on this one waits on the Deferred this one's last stage returned,
    /// itself (`Chain::hand_over`): nothing arrives here any more, and a cancel that reaches
    /// this chain late, through that chain's old wait, goes again from where it began
    /// ([`CancelHandle::cancel_for`](cancel::CancelHandle)).
    HandedOver,
    /// The Deferred at the end was dropped: nobody ever will.
    Gone,
}

impl<E: 'static> Part for Listener<E> {
    /// Nobody, or nobody ever.
    #[inline]
    fn holds_nothing(&self) -> bool {
        matches!(
            self,
            Listener::Nobody | Listener::Gone | Listener::HandedOver
        )
    }
}

/// A fan-in that takes a chain's result as one of its inputs, without a step of its own in
/// the chain (`fan_in.rs`).
pub(crate) trait Arrive<E: 'static>: OutputSeen {
    /// The result of input `index`, in `from` (taken out of the chain, which is done).
    fn arrive(self: Ptr<Self>, index: u32, from: &mut dyn Slot<E>);
    /// The address of the chain it fires with what arrives, while it has not (for the
    /// registry).
    #[cfg(feature = "registry")]
    fn output(&self) -> Option<usize>;
}

/// Whether anyone can see what a fan-in gives (its output has not fired, and its Deferred has
/// not been dropped with no step left: `Chain::is_closed`), asked a step at a time by
/// [`seen_closed`], whatever the fan-in's error type. An input whose fan-in's output is closed
/// needs not arrive.
pub(crate) trait OutputSeen: Shareable {
    /// What the fan-in's output's chain says of itself (its own lock only): closed, open, or
    /// what the fan-in it feeds in turn says.
    fn output_seen(&self) -> Seen;
    /// The answer for the output, once the walk has it: what this fan-in says of it (it may
    /// keep it, or answer what it decided meanwhile).
    fn output_answered(&self, closed: bool) -> bool;
}

/// One step of [`seen_closed`].
pub(crate) enum Seen {
    /// Nobody can see the result.
    Closed,
    /// Someone can.
    Open,
    /// Whether anyone can is the output's of this fan-in.
    Through(Ptr<dyn OutputSeen>),
}

/// Whether nobody can see a result, asked through the fan-ins it goes through in a loop (one
/// step each, `OutputSeen`), not in nested calls: a root fed to 10,000 nested `map_err`s asks
/// their outputs in constant stack. Each fan-in then has its answer, the last first, as the
/// nested calls gave it.
pub(crate) fn seen_closed(mut seen: Seen) -> bool {
    let mut asked: Vec<Ptr<dyn OutputSeen>> = Vec::new();
    let mut closed = loop {
        match seen {
            Seen::Closed => break true,
            Seen::Open => break false,
            Seen::Through(fan_in) => {
                seen = fan_in.output_seen();
                asked.push(fan_in);
            }
        }
    };
    while let Some(fan_in) = asked.pop() {
        closed = fan_in.output_answered(closed);
    }
    closed
}

/// Where the chain's result is: in a slot of the root's type, or in one a stage made when it
/// changed the type. Before the root fires the slot is empty, and keeps where the root was made
/// (for `NeverFired`, and the Resolver's `Debug`) and how it fires instead, so a Resolver need
/// not.
enum Current<T, E: 'static> {
    Unfired(&'static Location<'static>, Firing<T, E>),
    Root(Option<Result<T, E>>),
    Other(Box<dyn Slot<E>>),
}

impl<T, E: 'static> Part for Current<T, E> {
    /// Not fired yet, or emptied.
    #[inline]
    fn holds_nothing(&self) -> bool {
        matches!(self, Current::Unfired(..) | Current::Root(None))
    }
}

impl<E: 'static> Part for Stages<E> {
    /// No stage left.
    #[inline]
    fn holds_nothing(&self) -> bool {
        self.is_empty()
    }
}

impl<T: Sendable + 'static, E: Sendable + 'static> Current<T, E> {
    #[inline]
    fn slot(&mut self) -> &mut dyn Slot<E> {
        match self {
            Current::Root(root) => root,
            Current::Other(slot) => &mut **slot,
            Current::Unfired(..) => {
                unreachable!("a chain's result slot is used once its root has fired")
            }
        }
    }

    /// The slot's value, for a stage to take its input from and leave its output in: the
    /// root's slot is typed here, with no dynamic call (`Slot::as_any`).
    #[inline]
    fn any(&mut self) -> &mut dyn std::any::Any {
        match self {
            Current::Root(root) => root,
            Current::Other(slot) => (**slot).as_any(),
            Current::Unfired(..) => {
                unreachable!("a chain's result slot is used once its root has fired")
            }
        }
    }

    /// Moves the result into `into`, a slot of its type. In the root's slot (no stage changed
    /// its type), it is moved with one type check, not through a second type-erased slot.
    #[inline(always)]
    fn move_to(self, into: &mut dyn Slot<E>) {
        match self {
            Current::Root(result) => stage::put(into, result),
            mut current => into.fill_from(current.slot()),
        }
    }

    /// Follows a stage to the new slot it made, if it made one.
    #[inline]
    fn replace(&mut self, new: Option<Box<dyn Slot<E>>>) {
        if let Some(new) = new {
            *self = Current::Other(new);
        }
    }
}

/// Ends a root nobody can read (see the rules above: `Chain::fire_if_open`,
/// `Chain::fail_never_fired`): it is done, with no result. Its listener — a fan-in whose output
/// nobody reads, which may hold this chain in turn — is let go, so that neither keeps the other
/// alive; it and the root's canceller are dropped after the lock is released (their captures
/// are user code).
trait EndUnread {
    fn end_unread(self);
}

impl<T, E: 'static> EndUnread for Guard<'_, Parts<T, E>> {
    fn end_unread(mut self) {
        let phase = std::mem::replace(&mut self.phase, Phase::Done);
        let listener = std::mem::replace(&mut self.listener, Listener::Gone);
        drop(self);
        phase.release();
        // A fan-in let go of may let go of its output's chain, unread too, and so on: in
        // constant stack.
        crate::run_loop::in_constant_stack(move || listener.release());
    }
}

/// What `Deferred` sees of a pending chain, whatever its root's type.
///
/// It is `Any` (through [`Cancel`]): an end that has its root's type takes the result typed
/// ([`Chain::take_into`]), the chain reached by upcasting `&dyn AnyChain<E>` to `&dyn Any`.
pub(crate) trait AnyChain<E: 'static>: Cancel + Delivery {
    /// Moves the chain's result into `into` if it has fired and nobody took it yet.
    fn try_take(&self, into: &mut dyn Slot<E>);
    /// [`try_take`](AnyChain::try_take) through the only reference to the chain: no lock.
    fn try_take_only(&mut self, into: &mut dyn Slot<E>);
    /// Appends `stage`, unless the chain has fired: then moves its result into `into` and gives
    /// the stage back (the caller runs it at once, rule 2).
    fn add(&self, stage: Added<E>, into: &mut dyn Slot<E>) -> Option<Box<dyn Stage<E>>>;
    /// Moves the chain's result into `into` if it has fired and nobody took it yet; else wakes
    /// `waker` when it fires. One lock round trip: a result that comes between a look and the
    /// registration cannot be missed. A chain whose result was taken or handed on already
    /// (`Done`, `Passed`: never the chain of an end still pending) drops `waker` unused.
    fn take_or_listen(&self, into: &mut dyn Slot<E>, waker: Waker);
    /// Whether the chain has fired (its result may have been taken already).
    fn is_fired(&self) -> bool;
    /// The Deferred at the end was dropped.
    fn abandon(&self);
    /// Hands the chain's result to `outer`, one of whose stages returned this Deferred: now if
    /// it has fired, else when it does.
    fn forward_to(&self, outer: ChainPtr<dyn AnyChain<E>>);
    /// Hands the chain's result to `fan_in`, as its input `index`: now if it has fired, else
    /// when it does.
    fn forward_to_fan_in(&self, fan_in: Ptr<dyn Arrive<E>>, index: u32);
    /// If this chain waits on the chain at `of`, it waits on `on` instead (`of` handed its wait
    /// over: see `Chain::hand_over`), and says so; else it leaves its wait as it is.
    fn wait_instead(&self, of: *const (), on: ChainPtr<dyn AnyChain<E>>) -> bool;
    /// The function that gives the chain at a link the result of the Deferred it waits on, in
    /// `from`: the chain goes on.
    /// `cancel`: a cancel of this chain that landed while that Deferred's own steps ran; this
    /// chain remembers it. The function is of the chain's own type, and types the pointer
    /// back (a chain's pointer cannot be a method's receiver: see `chain_arc.rs`); call it
    /// through [`arrive`].
    fn arriver(&self) -> fn(ChainPtr<dyn AnyChain<E>>, &mut dyn Slot<E>, Remembered);
    /// The function that, given the only pointer to this chain once it has fired, moves its
    /// result into `into` and frees the chain as its own type (an end whose type a stage
    /// changed cannot type the pointer itself); it gives the pointer back if it is not the
    /// only one or the chain has not fired. Of the chain's own type, as
    /// [`arriver`](AnyChain::arriver).
    fn taker(&self) -> Taker<E>;
    /// [`arriver`](AnyChain::arriver) for a result in a slot that reports the failures its
    /// value holds if nobody reads it (`stage::HoldsFailures`): a chain with no step left to
    /// take the value keeps that slot as its own result, so that they are still reported if
    /// its end drops it unread (rule 5). Call it through [`arrive_held`].
    fn held_arriver(&self) -> HeldArriver<E>;
    /// What the chain is doing, for `Debug`.
    fn doing(&self) -> Doing;
    /// What the chain says of itself for the registry (`None` once it has fired).
    #[cfg(feature = "registry")]
    fn seen(&self) -> Option<crate::registry::Seen>;
    /// Names the helper that made the chain, for the registry.
    #[cfg(feature = "registry")]
    fn made_by(&self, helper: &'static str);
}

/// How a root fires (`Chain::fire_root`): a function made where the bounds firing needs are
/// known (`E: From<Failure>`, for the failures a chain makes itself), and kept in the unfired
/// root's result slot (`Current::Unfired`), so that a `Resolver`'s methods and its `Drop` do not
/// ask for them, and a Resolver is one thin pointer. The caller holds the lock, and the root has
/// not fired.
type Firing<T, E> = fn(&ChainPtr<Chain<T, E>>, Guard<'_, Parts<T, E>>, Fire<T, E>);

/// What a root is fired with.
pub(crate) enum Fire<T, E> {
    /// What its Resolver gave.
    With(Result<T, E>),
    /// A `NeverFired` failure: its Resolver, made there, was dropped unfired.
    NeverFired(&'static Location<'static>),
}

/// What a pending chain is doing, for `Debug`.
#[derive(Clone, Copy)]
pub(crate) enum Doing {
    /// Its root has not fired: it waits on its resolver.
    Root,
    /// Its root is a fan-in's output (a combinator's, `map_err`'s) and has not fired: it waits
    /// on the fan-in's inputs.
    Inputs,
    /// A thread runs its steps (or is about to).
    Running,
    /// It waits on another chain, which one of its steps returned.
    Waiting,
    /// It has fired (its result may have been taken).
    Fired,
}

impl<T, E: 'static> Chain<T, E> {
    fn lock(&self) -> Guard<'_, Parts<T, E>> {
        // No user code runs under the lock (the rules above): it only moves results, stages and
        // listeners.
        self.inner.lock()
    }

    /// Where the root's Resolver was made, while the root has not fired (nor been failed by a
    /// cancel).
    pub(crate) fn created_at(&self) -> Option<&'static Location<'static>> {
        self.lock().unfired().map(|(at, _)| at)
    }

    /// Gives the root a canceller after it was made, replacing the one it had (which is dropped,
    /// never called). If a cancel has reached the root already, `canceller` runs at once, on
    /// this thread, after the lock is released: the cancel happened, so the work it stops must
    /// stop now. Only a live `Resolver` calls this, so a root that is not `Root` any more was
    /// fired by a cancel.
    pub(crate) fn set_canceller(&self, canceller: Canceller) {
        let mut inner = self.lock();
        if !inner.phase.is_root() || matches!(inner.phase, Phase::RootCancelling(_)) {
            drop(inner);
            canceller();
            return;
        }
        let old = std::mem::replace(&mut inner.phase, Phase::RootCancellable(canceller));
        drop(inner);
        old.release(); // user code (its captures' `Drop`): outside the lock
    }

    /// Makes a root just made by [`root`](Chain::root), with no canceller, the output of a
    /// fan-in: it waits on the fan-in's `inputs` (see [`Phase::RootOfFanIn`]). `made_by` is the
    /// function the user called (`"gather_results"`, `"map_err"`, ...), for the registry.
    pub(crate) fn wait_on_inputs(&self, inputs: Weak<dyn Inputs>, made_by: &'static str) {
        let mut inner = self.lock();
        inner.phase = Phase::RootOfFanIn(inputs, Remembered::NONE);
        #[cfg(feature = "registry")]
        {
            inner.made_by = Some(made_by);
        }
        #[cfg(not(feature = "registry"))]
        let _ = made_by;
    }

    #[cfg_attr(feature = "registry", track_caller)]
    fn new(phase: Phase, result: Current<T, E>) -> Chain<T, E> {
        Chain {
            inner: Lock::new(ManuallyDrop::new(Inner {
                phase,
                result,
                stages: Stages::new(),
                listener: Listener::Nobody,
                #[cfg(feature = "registry")]
                made_by: None,
            })),
            #[cfg(feature = "registry")]
            born: crate::registry::Born::here(),
        }
    }
}

impl<T, E> Chain<T, E>
where
    T: Sendable + 'static,
    E: FromFailure + Sendable + 'static,
{
    /// A chain whose root a `Resolver` made at `at` fires, with an optional canceller.
    #[cfg_attr(feature = "registry", track_caller)]
    pub(crate) fn root(
        canceller: Option<Canceller>,
        at: &'static Location<'static>,
    ) -> Chain<T, E> {
        #[cfg_attr(not(feature = "registry"), allow(unused_mut))]
        let mut root = Chain::new(
            canceller.map_or(Phase::Root, Phase::RootCancellable),
            Current::Unfired(at, Chain::fire_root),
        );
        // Where its Resolver was made, which the caller says (a combinator passes its own
        // caller's place down), as the registry shows it.
        #[cfg(feature = "registry")]
        {
            root.born.at = at;
        }
        root
    }

    /// A chain that starts with the result of `on`, another chain: as if a stage had returned
    /// `on`'s Deferred.
    #[cfg_attr(feature = "registry", track_caller)]
    pub(crate) fn waiting_on(on: ChainPtr<dyn AnyChain<E>>) -> ChainPtr<Chain<T, E>> {
        let waiting = Phase::Waiting {
            cancel: Remembered::NONE,
            on: link_to_cancel(on.clone()),
        };
        let (link, forwarded_to) = chain_pair(Chain::new(waiting, Current::Root(None)));
        #[cfg(feature = "registry")]
        crate::registry::Enter::enter(&link);
        on.forward_to(erase_chain(forwarded_to));
        link
    }
}

impl<T, E: 'static> Drop for Chain<T, E> {
    /// Drops what the chain's parts hold, if they hold anything (see [`Parts`]).
    #[inline]
    fn drop(&mut self) {
        let inner = self.inner.get_mut();
        if !inner.holds_nothing() {
            drop_parts(inner);
        }
    }
}

/// Drops what `parts` hold, each part that holds something replaced by one that holds nothing
/// (never dropped: it need not be). A chain that handed its wait over ends so (its phase keeps
/// the Deferred it waited on).
#[inline(never)]
fn drop_parts<T, E: 'static>(parts: &mut Parts<T, E>) {
    /// Drops `part` if it holds anything, leaving `empty` in its place.
    fn empty<P: Part>(part: &mut P, empty: P) {
        if !part.holds_nothing() {
            drop(std::mem::replace(part, empty));
        }
    }
    // A chain it passed its result to, or the chain it waits on: each may hold the next such
    // chain, a path of any length, dropped one at a time, not nested (constant stack).
    match cancel::take_next_link(parts) {
        Some(next) => drop_linked(next),
        None => empty(&mut parts.phase, Phase::Done),
    }
    empty(&mut parts.result, Current::Root(None));
    empty(&mut parts.stages, Stages::new());
    empty(&mut parts.listener, Listener::Nobody);
}

/// Drops the chain a phase held (`Passed`, `Waiting`), which may hold another in its phase, and so on down a path of any length: a chain this pointer is the last strong one
/// of gives up the link it holds before it is dropped (`Cancel::take_next_link`), so that each
/// drop ends there, and the path is dropped in a loop, not nested (constant stack). A chain
/// someone else still holds is only let go of.
#[inline(never)]
fn drop_linked(mut next: ChainPtr<dyn Cancel>) {
    loop {
        // The last strong pointer: the chain is dropped with it. Alone (no weak one either),
        // without its lock; else the registry's weak pointer may still look at it.
        let after = match ChainPtr::strong_count(&next) {
            1 => match ChainPtr::get_mut(&mut next) {
                Some(alone) => alone.take_next_link_alone(),
                None => next.take_next_link(),
            },
            _ => None,
        };
        match after {
            // The old `next` goes here: its phase holds nothing now.
            Some(after) => next = after,
            None => return drop(next),
        }
    }
}

impl<T, E: 'static> Inner<T, E> {
    /// Whether no part holds anything to drop: one check of each tag.
    #[inline]
    fn holds_nothing(&self) -> bool {
        self.phase.holds_nothing()
            && self.result.holds_nothing()
            && self.stages.holds_nothing()
            && self.listener.holds_nothing()
    }

    /// Whether nobody can see the chain's result: the Deferred at its end was dropped, and no
    /// step is left to run.
    fn is_closed(&self) -> bool {
        matches!(self.listener, Listener::Gone) && self.stages.is_empty()
    }

    /// The fan-in this chain is an input of, when no step is left to run before it arrives
    /// there (whether that input is closed is the fan-in's to say: `OutputSeen`).
    fn fan_in_alone(&self) -> Option<Ptr<dyn OutputSeen>> {
        match &self.listener {
            Listener::FanIn(fan_in, _) if self.stages.is_empty() => Some(fan_in.clone()),
            _ => None,
        }
    }

    /// Where the root's Resolver was made and how the root fires, while it has not fired (nor
    /// been failed by a cancel). A run started outside a run loop leaves the slot as it was
    /// until the run keeps its result there: the phase says whether the root has fired.
    #[inline]
    fn unfired(&self) -> Option<(&'static Location<'static>, Firing<T, E>)> {
        match self.result {
            Current::Unfired(at, fire_root) if self.phase.is_root() => Some((at, fire_root)),
            Current::Unfired(..) | Current::Root(_) | Current::Other(_) => None,
        }
    }

    /// Keeps `current` as the chain's result, in a slot that holds nothing: a run takes the
    /// result out before it starts (`take_current`), or never had it there (a root fired
    /// outside a run loop leaves its slot `Unfired`). So what it replaces needs no drop glue,
    /// only a check.
    #[inline]
    fn keep_result(&mut self, current: Current<T, E>) {
        std::mem::replace(&mut self.result, current).release();
    }

    /// Takes the result out of a `Fired` chain, which is then `Done`.
    fn take_fired(&mut self) -> Current<T, E> {
        self.phase.move_on(Phase::Done);
        self.take_current()
    }

    /// Takes out the slot the chain's result is in.
    fn take_current(&mut self) -> Current<T, E> {
        std::mem::replace(&mut self.result, Current::Root(None))
    }
}

impl<T: Sendable + 'static, E: Sendable + 'static> Chain<T, E> {
    /// [`AnyChain::try_take`], called on the chain itself: an end of the root's type calls it
    /// typed, so that its slot's type check is known at compile time.
    #[inline]
    pub(crate) fn take_into(&self, into: &mut dyn Slot<E>) {
        let inner = self.lock();
        if matches!(inner.phase, Phase::Fired { .. }) {
            take_result(inner).move_to(into);
        }
    }

    /// [`take_into`](Chain::take_into) through the only reference to the chain: nothing else
    /// can reach it, so it needs no lock.
    #[inline]
    pub(crate) fn take_only_into(&mut self, into: &mut dyn Slot<E>) {
        let inner = self.inner.get_mut();
        if matches!(inner.phase, Phase::Fired { .. }) {
            inner.take_fired().move_to(into);
        }
    }
}

/// Takes the chain's result out of a `Fired` link, which is then `Done`, and releases the lock.
fn take_result<T, E: 'static>(mut inner: Guard<'_, Parts<T, E>>) -> Current<T, E> {
    inner.take_fired()
}

/// [`AnyChain::add`] on a chain that has fired: its result goes into `into`, and the stage
/// back to the caller, which runs it at once (rule 2). Out of line: a step is usually added
/// to a chain that has not fired.
#[cold]
#[inline(never)]
fn added_to_fired<T: Sendable + 'static, E: Sendable + 'static>(
    inner: Guard<'_, Parts<T, E>>,
    (stage, _): Added<E>,
    into: &mut dyn Slot<E>,
) -> Option<Box<dyn Stage<E>>> {
    match inner.phase {
        Phase::Fired { .. } => {
            take_result(inner).move_to(into);
            Some(stage)
        }
        _ => unreachable!("a chain's result is taken only by consuming its end"),
    }
}

/// [`AnyChain::add`] to a chain that a task polled: the old end's waker is let go of (the new
/// end has nobody yet).
#[cold]
#[inline(never)]
fn add_to_polled<T, E: 'static>(mut inner: Guard<'_, Parts<T, E>>, stage: Added<E>) {
    inner.stages.push_back(stage);
    set_listener(inner, Listener::Nobody);
}

/// [`AnyChain::add`] to a list that needs an allocation for `stage` (its box of two, or a
/// larger buffer). Out of line, so that the usual add makes no call.
#[inline(never)]
fn add_growing<T, E: 'static>(mut inner: Guard<'_, Parts<T, E>>, stage: Added<E>) {
    inner.stages.push_back(stage);
}

/// Replaces the chain's listener and releases the lock; the old listener (a waker's `Drop` is
/// user code) is dropped after.
#[inline]
fn set_listener<T, E: 'static>(mut inner: Guard<'_, Parts<T, E>>, new: Listener<E>) {
    let old = std::mem::replace(&mut inner.listener, new);
    drop(inner);
    old.release();
}

impl<T, E> AnyChain<E> for Chain<T, E>
where
    T: Sendable + 'static,
    E: FromFailure + Sendable + 'static,
{
    fn try_take(&self, into: &mut dyn Slot<E>) {
        self.take_into(into);
    }

    fn try_take_only(&mut self, into: &mut dyn Slot<E>) {
        self.take_only_into(into);
    }

    fn add(&self, stage: Added<E>, into: &mut dyn Slot<E>) -> Option<Box<dyn Stage<E>>> {
        let mut inner = self.lock();
        // The usual add makes no call but the lock's wait (so saves few registers): to a chain
        // that has not fired, that nobody listens to, and whose list has room.
        if matches!(
            inner.phase,
            Phase::Fired { .. } | Phase::Done | Phase::Passed(_)
        ) {
            return added_to_fired(inner, stage, into);
        }
        if !matches!(inner.listener, Listener::Nobody) {
            add_to_polled(inner, stage);
            return None;
        }
        match inner.stages.try_push_back(stage) {
            Ok(()) => None,
            Err(stage) => {
                add_growing(inner, stage);
                None
            }
        }
    }

    fn take_or_listen(&self, into: &mut dyn Slot<E>, waker: Waker) {
        let inner = self.lock();
        match inner.phase {
            Phase::Fired { .. } => take_result(inner).move_to(into),
            Phase::Done | Phase::Passed(_) => {}
            _ => set_listener(inner, Listener::Task(waker)),
        }
    }

    fn is_fired(&self) -> bool {
        matches!(
            self.lock().phase,
            Phase::Fired { .. } | Phase::Done | Phase::Passed(_)
        )
    }

    /// Rule 5: a failure nobody handled is reported once — now if it is here, else when the
    /// chain fires.
    fn abandon(&self) {
        let inner = self.lock();
        match inner.phase {
            Phase::Fired { .. } => take_result(inner).slot().report(),
            Phase::Done | Phase::Passed(_) => {}
            _ => {
                set_listener(inner, Listener::Gone);
            }
        }
    }

    fn forward_to(&self, outer: ChainPtr<dyn AnyChain<E>>) {
        let inner = self.lock();
        match inner.phase {
            Phase::Fired { cancel } => {
                let passed_on = cancel;
                let mut inner = inner;
                let upper = link_to_cancel(outer.clone());
                inner.phase.move_on(Phase::Passed(upper));
                let current = inner.take_current();
                drop(inner);
                match current {
                    Current::Other(held) if held.holds_failures() => {
                        arrive_held(outer, held, passed_on);
                    }
                    mut current => arrive(outer, current.slot(), passed_on),
                }
            }
            // Taken already: only when `outer` stopped waiting on this chain (a cancel broke
            // the cycle they were in, `break_wait`) before it could ask for the result.
            Phase::Done | Phase::Passed(_) => {}
            _ => {
                set_listener(inner, Listener::Forward(outer));
            }
        }
    }

    fn forward_to_fan_in(&self, fan_in: Ptr<dyn Arrive<E>>, index: u32) {
        let inner = self.lock();
        match inner.phase {
            Phase::Fired { .. } => fan_in.arrive(index, take_result(inner).slot()),
            Phase::Done | Phase::Passed(_) => {
                unreachable!("a chain's result is taken only by consuming its end")
            }
            _ => {
                set_listener(inner, Listener::FanIn(fan_in, index));
            }
        }
    }

    fn wait_instead(&self, of: *const (), on: ChainPtr<dyn AnyChain<E>>) -> bool {
        let mut inner = self.lock();
        let Phase::Waiting { on: waits_on, .. } = &mut inner.phase else {
            return false;
        };
        if !std::ptr::addr_eq(ChainPtr::as_ptr(waits_on), of) {
            return false;
        }
        let old = std::mem::replace(waits_on, link_to_cancel(on));
        drop(inner);
        drop(old);
        true
    }

    fn arriver(&self) -> fn(ChainPtr<dyn AnyChain<E>>, &mut dyn Slot<E>, Remembered) {
        |link, from, passed_on| Chain::<T, E>::resume(super::link_to_chain(link), from, passed_on)
    }

    fn taker(&self) -> Taker<E> {
        |link, into| {
            let mut chain = super::link_to_chain::<E, Chain<T, E>>(link);
            if let Some(only) = ChainPtr::get_mut(&mut chain)
                && matches!(only.inner.get_mut().phase, Phase::Fired { .. })
            {
                only.take_only_into(into);
                return None;
            }
            Some(super::erase_chain(chain))
        }
    }

    fn held_arriver(&self) -> HeldArriver<E> {
        |link, held, passed_on| {
            Chain::<T, E>::resume_held(super::link_to_chain(link), held, passed_on);
        }
    }

    fn doing(&self) -> Doing {
        Chain::doing(self)
    }

    #[cfg(feature = "registry")]
    fn seen(&self) -> Option<crate::registry::Seen> {
        crate::registry::Inspect::inspect(self)
    }

    #[cfg(feature = "registry")]
    fn made_by(&self, helper: &'static str) {
        Chain::made_by(self, helper);
    }
}

/// Gives the chain at `link` the result of the Deferred it waits on, in `from`
/// ([`AnyChain::arriver`]).
#[inline]
pub(super) fn arrive<E: 'static>(
    link: ChainPtr<dyn AnyChain<E>>,
    from: &mut dyn Slot<E>,
    passed_on: Remembered,
) {
    let arrive = link.arriver();
    arrive(link, from, passed_on);
}

/// [`AnyChain::taker`]: the pointer back, if the result was not taken.
pub(crate) type Taker<E> =
    fn(ChainPtr<dyn AnyChain<E>>, &mut dyn Slot<E>) -> Option<ChainPtr<dyn AnyChain<E>>>;

/// What [`AnyChain::held_arriver`] gives: the chain's `resume_held`, typed back.
pub(crate) type HeldArriver<E> = fn(ChainPtr<dyn AnyChain<E>>, Box<dyn Slot<E>>, Remembered);

/// Gives the chain at `link` the result of the Deferred it waits on, in `held`, a slot that
/// reports the failures its value holds if nobody reads it ([`AnyChain::held_arriver`]).
#[cold]
pub(super) fn arrive_held<E: 'static>(
    link: ChainPtr<dyn AnyChain<E>>,
    held: Box<dyn Slot<E>>,
    passed_on: Remembered,
) {
    let arrive = link.held_arriver();
    arrive(link, held, passed_on);
}

impl<T, E: 'static> Chain<T, E> {
    /// What the chain is doing, for `Debug`.
    pub(crate) fn doing(&self) -> Doing {
        match &self.lock().phase {
            Phase::Root | Phase::RootCancellable(_) | Phase::RootCancelling(_) => Doing::Root,
            Phase::RootOfFanIn(..) => Doing::Inputs,
            Phase::Running { .. } => Doing::Running,
            Phase::Waiting { .. } => Doing::Waiting,
            Phase::Fired { .. } | Phase::Done | Phase::Passed(_) => Doing::Fired,
        }
    }

    /// Names the helper that made the chain, for the registry.
    #[cfg(feature = "registry")]
    pub(crate) fn made_by(&self, helper: &'static str) {
        self.lock().made_by = Some(helper);
    }
}

/// What a chain says of itself for the registry: read under its lock, which it releases before
/// returning (no user code runs).
#[cfg(feature = "registry")]
impl<T, E: 'static> crate::registry::Inspect for Chain<T, E> {
    fn inspect(&self) -> Option<crate::registry::Seen> {
        use crate::registry::Waits;
        let inner = self.lock();
        let mut fan_in = None;
        let feeding = match &inner.listener {
            Listener::FanIn(arrive, index) => Some((arrive.clone(), *index)),
            _ => None,
        };
        let mut waits = match &inner.phase {
            Phase::Root | Phase::RootCancellable(_) | Phase::RootCancelling(_) => Waits::Resolver,
            Phase::RootOfFanIn(inputs, _) => {
                fan_in = inputs.upgrade();
                Waits::Resolver
            }
            Phase::Running { .. } => Waits::Running,
            Phase::Waiting { on, .. } => Waits::Chain {
                address: ChainPtr::as_ptr(on) as *const () as usize,
                created_at: on.created_at(),
            },
            Phase::Fired { .. } | Phase::Done | Phase::Passed(_) => return None,
        };
        let seen = crate::registry::Seen {
            kind: super::DEFERRED,
            address: self as *const Self as *const () as usize,
            born: (self.born.at, self.born.since),
            made_by: inner.made_by,
            steps: inner.stages.locations(),
            waits: Waits::Running,
            feeds: None,
        };
        drop(inner);
        // What the chain feeds, asked of the fan-in once this chain's lock is released.
        let feeds = feeding.and_then(|(arrive, index)| Some((arrive.output()?, index)));
        // A combinator's output (or `map_err`'s): how many of its inputs have not arrived,
        // asked of the fan-in once this chain's lock is released.
        if let Some(fan_in) = fan_in {
            waits = Waits::Inputs(fan_in.pending_inputs());
        }
        Some(crate::registry::Seen {
            waits,
            feeds,
            ..seen
        })
    }
}

/// Whether two links, type-erased or not, are the same link (compares addresses, not vtables).
pub(crate) fn same_chain<A: ?Sized, B: ?Sized>(a: &ChainPtr<A>, b: &ChainPtr<B>) -> bool {
    std::ptr::addr_eq(ChainPtr::as_ptr(a), ChainPtr::as_ptr(b))
}

impl<T, E: 'static> Chain<T, E> {
    /// For `Resolver::is_closed`, asked of a root whose `Resolver` has not fired: nobody can
    /// ever see its result. Either the root is no longer waiting for it (only a cancel moves a
    /// root on before its `Resolver` fires), or the Deferred at the end was dropped with no
    /// step left to run (a step's side effects are someone seeing the result), or it was given
    /// to a combinator or `map_err` whose output nobody can see.
    pub(crate) fn is_closed(&self) -> bool {
        seen_closed(self.seen_as_root())
    }

    /// [`is_closed`](Chain::is_closed)'s first step, which asks this chain alone: closed, open,
    /// or the fan-in it feeds, asked after this chain's lock is released.
    pub(crate) fn seen_as_root(&self) -> Seen {
        let inner = self.lock();
        if !inner.phase.is_root() || inner.is_closed() {
            return Seen::Closed;
        }
        match inner.fan_in_alone() {
            Some(fan_in) => Seen::Through(fan_in),
            None => Seen::Open,
        }
    }

    /// Whether the chain, with no step left, is an input of a fan-in (a combinator, `map_err`)
    /// whose output nobody can see: its result would reach no one. Asked of the fan-in after
    /// this chain's lock is released.
    pub(crate) fn closed_through_fan_in(&self) -> bool {
        let fan_in = self.lock().fan_in_alone();
        fan_in.is_some_and(|fan_in| seen_closed(Seen::Through(fan_in)))
    }
}

#[cfg(all(test, target_pointer_width = "64"))]
mod tests {
    use super::*;
    use crate::failure::Failure;
    use std::mem::size_of;

    /// What a pending link is made of (BENCHMARKS.md, "What would cut them, and the floor"):
    /// four parts of 24 bytes each (16 of pointers and a tag), and the lock.
    #[test]
    fn a_links_parts_are_24_bytes_each() {
        assert_eq!(size_of::<Phase>(), 24);
        assert_eq!(size_of::<Current<u64, Failure>>(), 24);
        assert_eq!(size_of::<Stages<Failure>>(), 24);
        assert_eq!(size_of::<Listener<Failure>>(), 24);
        // The registry's `made_by` and `born` are the feature's own.
        #[cfg(not(feature = "registry"))]
        {
            assert_eq!(size_of::<Inner<u64, Failure>>(), 96);
            assert_eq!(size_of::<Chain<u64, Failure>>(), 104);
        }
    }
}
