//! The state machine: one `Link` is a pending chain — the cell where its root's result arrives,
//! and the steps added to it since, run in order when it does.
//!
//! A Deferred that has already fired holds its result inline and needs no link at all (that is
//! why synchronous steps allocate nothing). A pending one points at a `Link`, shared with its
//! `Resolver`. Each `add_*` on a pending Deferred appends one [`Stage`] to the same link (the
//! step's function, boxed: free when it captures nothing; see `stage.rs`), so a pending chain of
//! any length is one allocation, one lock and one list, not a link per step. When the root fires, the firing thread
//! runs the stages in order; a stage that returns a pending Deferred pauses the chain, which goes
//! on when that Deferred's own link forwards its result here.
//!
//! ```text
//!                fire / cancel                           the last stage ran
//!   Root ──────────────────────────▶ Running ─────────────────────────────▶ Fired ──▶ Done
//!                                    │     ▲                                  (taken, handed
//!              a stage returned a    │     │ that Deferred's result              on, or
//!              pending Deferred      ▼     │ arrives (`arrive`)                  reported)
//!                                    Waiting
//! ```
//!
//! The rules, each enforced in the method named:
//! - A root fires once ([`Link::fire`]). The `Resolver` API makes a second fire a compile error;
//!   the one case left — a fire arriving after `cancel` already failed the root — is ignored, as
//!   Twisted ignores the one late fire after a cancellation.
//! - Stages run in the order they were added, each exactly once, on one thread at a time: only
//!   the thread that moved the link to `Running` runs them ([`Link::drive`]). A stage added while
//!   they run is picked up before the chain parks ([`Link::park`] is only reached under the lock
//!   with no stage left), so none is stranded.
//! - The chain's result is handed on exactly once: it is moved out of the link under the lock,
//!   whoever takes it (the Deferred at the end, a Deferred waiting on this one, or the
//!   unhandled-error report when the end was dropped: rule 5, [`Node::abandon`]).
//! - User code never runs under a lock: locks are held only to move results, stages and
//!   listeners in and out; stages run, wakers wake and cancellers run after it is released.
//! - Results cross from one link to another through the thread's run loop
//!   ([`crate::run_loop`]): a root fired, or a result forwarded, while the loop runs is stored in
//!   the link and queued, so nested chains of any depth run in constant stack.
//! - Cancellation walks from the end of a chain to the link it is really waiting on and fails
//!   that one's root ([`Cancel::cancel`], walked by [`CancelHandle::cancel`]); a cancel landing
//!   while stages run is remembered and cancels the next Deferred a stage returns.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::task::Waker;

use super::cancel::CancelHandle;
use super::stage::{Added, Flow, Slot, Stage, Stages};
use super::{Delivery, Guard, Lock, Ptr, Sendable, Shareable};
use crate::failure::Failure;
use crate::run_loop;

/// A canceller given at creation: called when a pending chain waiting on this link is cancelled.
pub(crate) use super::Canceller;

/// A pending chain whose root result is a `Result<T, E>`.
pub(crate) struct Link<T, E: 'static> {
    inner: Lock<Inner<T, E>>,
}

struct Inner<T, E: 'static> {
    phase: Phase,
    /// What the chain waits on, for cancellation: the root's canceller while `Root` (if one was
    /// given and has not run), the Deferred a step returned while `Waiting`. Kept apart from
    /// `phase` so that the many phase changes are plain stores.
    upstream: Upstream,
    /// Where the chain's result is kept between runs: while `Fired`, for the end of the chain to
    /// take; while `Waiting`, where the result of the Deferred it waits on will land; while
    /// `Running` with a delivery queued, where the run goes on from (the root's result, when the
    /// root fired inside another chain's run).
    result: Current<T, E>,
    /// Stages not run yet: those a run left when it stopped (to wait, or to let the thread's
    /// queue go first), then those added since.
    stages: Stages<E>,
    /// Who receives the chain's result.
    listener: Listener<E>,
}

#[derive(Clone, Copy)]
enum Phase {
    /// The root has not fired.
    Root,
    /// A thread runs the stages, or a delivery that will is queued on its run loop.
    Running { cancel: Remembered },
    /// A stage returned a pending Deferred (`upstream`); the chain goes on when its result
    /// arrives.
    Waiting { cancel: Remembered },
    /// Every stage has run: the chain's result is here.
    Fired,
    /// The result has been taken, handed on or reported.
    Done,
}

/// What a chain waits on, for cancellation.
enum Upstream {
    Nothing,
    /// The root's canceller.
    Canceller(Canceller),
    /// The Deferred a step returned.
    On(Ptr<dyn Cancel>),
}

impl Upstream {
    /// The Deferred the chain waits on; only while `Waiting`.
    fn on(&self) -> &Ptr<dyn Cancel> {
        match self {
            Upstream::On(on) => on,
            Upstream::Nothing | Upstream::Canceller(_) => {
                unreachable!("a waiting chain knows what it waits on")
            }
        }
    }
}

/// A cancel that landed while the chain was between waits (its steps running, or the result of
/// the Deferred it waited on on its way): the next Deferred one of its steps returns is
/// cancelled at once. If the chain fires first, there was nothing left to cancel in it — but a
/// cancel that walked up to it from chains waiting on it was meant for those too: it says for how
/// many of them, and the chain waiting on this one remembers it, for one fewer.
#[derive(Clone, Copy)]
pub(crate) struct Remembered(u32); // 0: none; n + 1: a cancel meant for n chains waiting on this one too

impl Remembered {
    const NONE: Remembered = Remembered(0);

    /// A cancel is remembered: for how many chains waiting on this one too.
    fn get(self) -> Option<u32> {
        self.0.checked_sub(1)
    }

    /// Remembers a cancel meant for `outer_chains` chains waiting on this one too (on top of
    /// what is remembered already).
    fn remember(&mut self, outer_chains: u32) {
        self.0 = self.0.max(outer_chains.saturating_add(1));
    }

    /// What the chain waiting on this one remembers of it when this one fires.
    fn passed_on(self) -> Remembered {
        Remembered(self.0.saturating_sub(1))
    }
}

/// Who receives the chain's result.
enum Listener<E: 'static> {
    /// Nobody yet; the Deferred at the end of the chain will take it.
    Nobody,
    /// A task (or a thread in `wait`) polling the Deferred as a future.
    Task(Waker),
    /// An outer chain, one of whose stages returned this Deferred.
    Forward(Ptr<dyn Node<E>>),
    /// The Deferred at the end was dropped: nobody ever will.
    Gone,
}

/// Where the chain's result is: in a slot of the root's type, or in one a stage made when it
/// changed the type.
enum Current<T, E: 'static> {
    Root(Option<Result<T, E>>),
    Other(Box<dyn Slot<E>>),
}

impl<T: Sendable + 'static, E: Sendable + 'static> Current<T, E> {
    fn slot(&mut self) -> &mut dyn Slot<E> {
        match self {
            Current::Root(root) => root,
            Current::Other(slot) => &mut **slot,
        }
    }

    /// Follows a stage to the new slot it made, if it made one.
    fn replace(&mut self, new: Option<Box<dyn Slot<E>>>) {
        if let Some(new) = new {
            *self = Current::Other(new);
        }
    }
}

/// What `Deferred` sees of a pending chain, whatever its root's type.
pub(crate) trait Node<E: 'static>: Cancel + Delivery {
    /// Moves the chain's result into `into` if it has fired and nobody took it yet.
    fn try_take(&self, into: &mut dyn Slot<E>);
    /// Appends `stage`, unless the chain has fired: then moves its result into `into` and gives
    /// the stage back (the caller runs it at once, rule 2).
    fn add(&self, stage: Added<E>, into: &mut dyn Slot<E>) -> Option<Box<dyn Stage<E>>>;
    /// Wakes `waker` when the chain fires (at once if it has).
    fn listen(&self, waker: Waker);
    /// Whether the chain has fired (its result may have been taken already).
    fn is_fired(&self) -> bool;
    /// The Deferred at the end was dropped.
    fn abandon(&self);
    /// Hands the chain's result to `outer`, one of whose stages returned this Deferred: now if
    /// it has fired, else when it does.
    fn forward_to(&self, outer: Ptr<dyn Node<E>>);
    /// The result of the Deferred this chain waits on, in `from`: the chain goes on.
    /// `cancel`: a cancel of this chain that landed while that Deferred's own steps ran; this
    /// chain remembers it.
    fn arrive(self: Ptr<Self>, from: &mut dyn Slot<E>, cancel: Remembered);
}

impl<T, E: 'static> Link<T, E> {
    fn lock(&self) -> Guard<'_, Inner<T, E>> {
        // No user code runs under the lock, so a poisoned lock can only come from an allocation
        // failure; the state is still consistent, so carry on.
        self.inner.lock()
    }

    /// A chain whose root a `Resolver` fires, with an optional canceller.
    pub(crate) fn root(canceller: Option<Canceller>) -> Link<T, E> {
        Link::new(
            Phase::Root,
            canceller.map_or(Upstream::Nothing, Upstream::Canceller),
        )
    }

    fn new(phase: Phase, upstream: Upstream) -> Link<T, E> {
        Link {
            inner: Lock::new(Inner {
                phase,
                upstream,
                result: Current::Root(None),
                stages: Stages::new(),
                listener: Listener::Nobody,
            }),
        }
    }
}

impl<T, E> Link<T, E>
where
    T: Sendable + 'static,
    E: From<Failure> + Sendable + 'static,
{
    /// A chain that starts with the result of `on`, another chain: as if a stage had returned
    /// `on`'s Deferred.
    pub(crate) fn waiting_on(on: Ptr<dyn Node<E>>) -> Ptr<Link<T, E>> {
        let waiting = Phase::Waiting {
            cancel: Remembered::NONE,
        };
        let link = Ptr::new(Link::new(waiting, Upstream::On(on.clone())));
        on.forward_to(link.clone());
        link
    }
}

impl<T, E: 'static> Inner<T, E> {
    /// Takes out the slot the chain's result is in.
    fn take_current(&mut self) -> Current<T, E> {
        std::mem::replace(&mut self.result, Current::Root(None))
    }
}

/// Takes the chain's result out of a `Fired` link, which is then `Done`, and releases the lock.
fn take_result<T, E: 'static>(mut inner: Guard<'_, Inner<T, E>>) -> Current<T, E> {
    inner.phase = Phase::Done;
    inner.take_current()
}

/// Replaces the chain's listener and releases the lock; the old listener (a waker's `Drop` is
/// user code) is dropped after.
fn set_listener<T, E: 'static>(mut inner: Guard<'_, Inner<T, E>>, new: Listener<E>) {
    let old = std::mem::replace(&mut inner.listener, new);
    drop(inner);
    drop(old);
}

impl<T, E> Link<T, E>
where
    T: Sendable + 'static,
    E: From<Failure> + Sendable + 'static,
{
    /// Rule: a root fires once; a later fire (only possible after a cancellation already failed
    /// it) is dropped, as Twisted drops the late fire after `cancel`.
    pub(crate) fn fire(self: &Ptr<Self>, result: Result<T, E>) {
        let mut inner = self.lock();
        let Phase::Root = inner.phase else {
            drop(inner); // `result` is dropped after the lock is released
            return;
        };
        let canceller = std::mem::replace(&mut inner.upstream, Upstream::Nothing);
        self.start(inner, result);
        // Dropped last, outside the lock, once the result is on its way: a canceller that was
        // never called is user code (its captures' `Drop`), and a panic there must not stop
        // the chain.
        drop(canceller);
    }

    /// Starts the run of a chain whose root just fired (the caller holds the lock).
    fn start(self: &Ptr<Self>, mut inner: Guard<'_, Inner<T, E>>, result: Result<T, E>) {
        inner.phase = Phase::Running {
            cancel: Remembered::NONE,
        };
        if inner.stages.is_empty() {
            self.park(inner, Current::Root(Some(result)));
        } else if run_loop::is_running() {
            inner.result = Current::Root(Some(result));
            drop(inner);
            super::enqueue(self.clone());
        } else {
            let stages = inner.stages.take();
            drop(inner);
            run_loop::run(|| self.drive(Current::Root(Some(result)), stages));
        }
    }

    /// Runs the stages, in order, on the result in `current`, starting with `stages`; then the
    /// stages added meanwhile. Ends when none is left (the chain fires) or when a stage returns
    /// a pending Deferred (the chain waits on it).
    fn drive(self: &Ptr<Self>, mut current: Current<T, E>, mut stages: Stages<E>) {
        loop {
            let Some((stage, step)) = stages.pop_front() else {
                let mut inner = self.lock();
                if inner.stages.is_empty() {
                    return self.park(inner, current);
                }
                std::mem::swap(&mut stages, &mut inner.stages); // `stages` is empty
                continue;
            };
            match stage.run(current.slot(), step) {
                Flow::Ready(new) => {
                    current.replace(new);
                    if run_loop::has_queued() {
                        return self.stop(current, stages, None);
                    }
                }
                Flow::Wait(on, new) => {
                    current.replace(new);
                    if same_link(&on, self) {
                        // Twisted's "callback returned the Deferred it was attached to": it
                        // would wait on itself for ever.
                        drop(on);
                        current.slot().fail(E::from(Failure::msg(
                            "a step returned a Deferred of its own chain, which would wait on itself for ever",
                        )));
                        continue;
                    }
                    return self.stop(current, stages, Some(on));
                }
            }
        }
    }

    /// Every stage has run: the chain fires with the result in `current`.
    fn park(&self, mut inner: Guard<'_, Inner<T, E>>, mut current: Current<T, E>) {
        // A cancel remembered while the stages ran has nothing left to cancel here; if it was
        // meant for the chain waiting on this one too, that chain takes it over.
        let passed_on = match inner.phase {
            Phase::Running { cancel } => cancel.passed_on(),
            _ => Remembered::NONE,
        };
        inner.phase = Phase::Fired;
        match std::mem::replace(&mut inner.listener, Listener::Nobody) {
            Listener::Nobody => inner.result = current,
            Listener::Task(waker) => {
                inner.result = current;
                drop(inner);
                waker.wake();
            }
            // Rule 5: nobody can ever see this result; a failure in it is reported.
            Listener::Gone => {
                inner.phase = Phase::Done;
                drop(inner);
                current.slot().report();
            }
            Listener::Forward(outer) => {
                inner.phase = Phase::Done;
                drop(inner);
                outer.arrive(current.slot(), passed_on);
            }
        }
    }

    /// The run stops before `rest`, with the result so far in `current`: the stage before
    /// returned a pending Deferred (`on`), whose result will land in `current`; or (no `on`) a
    /// step fired other Deferreds, whose deliveries are queued on this thread and go first, as
    /// soon as the step that fired them returned — then this run goes on.
    fn stop(
        self: &Ptr<Self>,
        current: Current<T, E>,
        rest: Stages<E>,
        on: Option<Ptr<dyn Node<E>>>,
    ) {
        let mut inner = self.lock();
        inner.result = current;
        inner.stages.put_back(rest);
        let Some(on) = on else {
            drop(inner);
            return super::enqueue(self.clone());
        };
        let cancel_now = match inner.phase {
            Phase::Running { cancel } => cancel.get(),
            _ => None,
        };
        inner.phase = Phase::Waiting {
            cancel: Remembered::NONE,
        };
        let old = std::mem::replace(&mut inner.upstream, Upstream::On(on.clone()));
        drop(inner);
        drop(old);
        on.forward_to(self.clone());
        if let Some(outer_chains) = cancel_now {
            // Walk from this chain, not from `on`: if `on` has fired meanwhile (its result is on
            // its way here), the walk leaves the cancel remembered here, for the next Deferred.
            CancelHandle::new(self.clone()).cancel_for(outer_chains);
        }
    }
}

impl<T, E> Delivery for Link<T, E>
where
    T: Sendable + 'static,
    E: From<Failure> + Sendable + 'static,
{
    /// A run queued on this thread's run loop: the root's result, the result that arrived from
    /// the Deferred the chain waited on, or the last result of a run that let the queue go
    /// first, is in the link.
    fn deliver(self: Ptr<Self>) {
        let current = self.lock().take_current();
        self.drive(current, Stages::new());
    }
}

impl<T, E> Node<E> for Link<T, E>
where
    T: Sendable + 'static,
    E: From<Failure> + Sendable + 'static,
{
    fn try_take(&self, into: &mut dyn Slot<E>) {
        let inner = self.lock();
        if matches!(inner.phase, Phase::Fired) {
            into.fill_from(take_result(inner).slot());
        }
    }

    fn add(&self, stage: Added<E>, into: &mut dyn Slot<E>) -> Option<Box<dyn Stage<E>>> {
        let mut inner = self.lock();
        match inner.phase {
            Phase::Fired => {
                into.fill_from(take_result(inner).slot());
                Some(stage.0)
            }
            Phase::Done => unreachable!("a chain's result is taken only by consuming its end"),
            Phase::Root | Phase::Running { .. } | Phase::Waiting { .. } => {
                inner.stages.push_back(stage);
                // A task polled the old end of the chain: the new end has nobody yet.
                if !matches!(inner.listener, Listener::Nobody) {
                    set_listener(inner, Listener::Nobody);
                }
                None
            }
        }
    }

    fn listen(&self, waker: Waker) {
        let inner = self.lock();
        match inner.phase {
            Phase::Fired => {
                drop(inner);
                waker.wake();
            }
            Phase::Done => {}
            Phase::Root | Phase::Running { .. } | Phase::Waiting { .. } => {
                set_listener(inner, Listener::Task(waker));
            }
        }
    }

    fn is_fired(&self) -> bool {
        matches!(self.lock().phase, Phase::Fired | Phase::Done)
    }

    /// Rule 5: a failure nobody handled is reported once — now if it is here, else when the
    /// chain fires.
    fn abandon(&self) {
        let inner = self.lock();
        match inner.phase {
            Phase::Fired => take_result(inner).slot().report(),
            Phase::Done => {}
            Phase::Root | Phase::Running { .. } | Phase::Waiting { .. } => {
                set_listener(inner, Listener::Gone);
            }
        }
    }

    fn forward_to(&self, outer: Ptr<dyn Node<E>>) {
        let inner = self.lock();
        match inner.phase {
            Phase::Fired => outer.arrive(take_result(inner).slot(), Remembered::NONE),
            // Taken already: only when `outer` stopped waiting on this chain (a cancel broke
            // the cycle they were in, `break_wait`) before it could ask for the result.
            Phase::Done => {}
            Phase::Root | Phase::Running { .. } | Phase::Waiting { .. } => {
                set_listener(inner, Listener::Forward(outer));
            }
        }
    }

    fn arrive(self: Ptr<Self>, from: &mut dyn Slot<E>, passed_on: Remembered) {
        let mut inner = self.lock();
        let Phase::Waiting { mut cancel } = inner.phase else {
            // This chain stopped waiting (a cancel broke the cycle it was in, see `break_wait`)
            // while the result was on its way: nobody will see it.
            drop(inner);
            return from.report();
        };
        let on = std::mem::replace(&mut inner.upstream, Upstream::Nothing);
        if let Some(outer_chains) = passed_on.get() {
            cancel.remember(outer_chains);
        }
        inner.phase = Phase::Running { cancel };
        inner.result.slot().fill_from(from);
        drop(inner);
        drop(on);
        if run_loop::is_running() {
            super::enqueue(self);
        } else {
            run_loop::run(move || self.deliver());
        }
    }
}

/// One step of a cancellation walk (rule 7), type-erased so the walk can cross chains of
/// different types. The walk itself is [`CancelHandle::cancel`].
pub(crate) trait Cancel: Shareable {
    /// Cancels what this chain waits on: says where the walk goes next. `outer_chains`: how many
    /// chains waiting on this one the walk came through (a cancel this chain remembers is
    /// meant for them too).
    fn cancel(self: Ptr<Self>, outer_chains: u32) -> Walk;

    /// The chain this one waited on was found fired (its result is on its way here). If this
    /// chain still waits on it, remember the cancel for the next Deferred a stage returns; if a
    /// stage already returned another one, give it back so the walk goes on there.
    fn cancel_after(&self, fired: &Ptr<dyn Cancel>, outer_chains: u32) -> Option<Ptr<dyn Cancel>>;

    /// This chain waits on `on`, and `on` (through any number of chains) waits on this one: a
    /// cycle, which nothing can ever fire. Stop waiting: the chain goes on with a cancellation
    /// failure (its errbacks see it), and `on`'s result, when it comes, is nobody's — reported
    /// if it is a failure. Does nothing if the chain no longer waits on `on`.
    fn break_wait(self: Ptr<Self>, on: &Ptr<dyn Cancel>);

    /// The chain waiting on this one stopped waiting (`break_wait`): nobody will take this
    /// chain's result, as if its end were dropped.
    fn forget_waiter(&self);
}

/// Where a cancellation walk goes after one link.
pub(crate) enum Walk {
    /// On to the chain this one waits on.
    Up(Ptr<dyn Cancel>),
    /// This chain has fired: its result is on its way (or taken).
    Fired,
    /// Done: a root was cancelled, or the cancel is remembered by a running chain.
    Stop,
}

impl<T, E> Cancel for Link<T, E>
where
    T: Sendable + 'static,
    E: From<Failure> + Sendable + 'static,
{
    fn cancel(self: Ptr<Self>, outer_chains: u32) -> Walk {
        let mut inner = self.lock();
        let Phase::Root = inner.phase else {
            return where_the_cancel_goes(&mut inner, outer_chains);
        };
        let canceller = match std::mem::replace(&mut inner.upstream, Upstream::Nothing) {
            Upstream::Canceller(canceller) => Some(canceller),
            Upstream::Nothing | Upstream::On(_) => None,
        };
        drop(inner);
        // Rule 7: a canceller that panics does not escape `cancel`; its panic becomes the failure.
        let failure = match canceller.map(|canceller| catch_unwind(AssertUnwindSafe(canceller))) {
            None | Some(Ok(())) => Failure::cancelled(),
            Some(Err(payload)) => Failure::from_panic(payload, None),
        };
        // The root may have fired since the check above: by the canceller itself, or by a
        // `Resolver` on another thread. Then the cancel goes on where the chain now is — its
        // stages remember it, or the Deferred a stage returned is cancelled — so a cancel is
        // never dropped by timing.
        // The error is made before taking the lock: `E::from` is user code.
        let error = E::from(failure);
        let mut inner = self.lock();
        if matches!(inner.phase, Phase::Root) {
            self.start(inner, Err(error));
            return Walk::Stop;
        }
        where_the_cancel_goes(&mut inner, outer_chains)
    }

    fn forget_waiter(&self) {
        Node::abandon(self);
    }

    fn break_wait(self: Ptr<Self>, on: &Ptr<dyn Cancel>) {
        // Made before taking the lock: `E::from` is user code.
        let error = E::from(Failure::cancelled());
        let mut inner = self.lock();
        let Phase::Waiting { cancel } = inner.phase else {
            return;
        };
        if !same_link(inner.upstream.on(), on) {
            return;
        }
        let Upstream::On(on) = std::mem::replace(&mut inner.upstream, Upstream::Nothing) else {
            unreachable!("a waiting chain knows what it waits on");
        };
        inner.phase = Phase::Running { cancel };
        inner.result.slot().fail(error);
        drop(inner);
        on.forget_waiter();
        if run_loop::is_running() {
            super::enqueue(self);
        } else {
            run_loop::run(move || self.deliver());
        }
    }

    fn cancel_after(&self, fired: &Ptr<dyn Cancel>, outer_chains: u32) -> Option<Ptr<dyn Cancel>> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        match &mut inner.phase {
            Phase::Waiting { cancel } => {
                let on = inner.upstream.on();
                if same_link(on, fired) {
                    cancel.remember(outer_chains);
                    None
                } else {
                    Some(on.clone())
                }
            }
            Phase::Running { cancel } => {
                cancel.remember(outer_chains);
                None
            }
            Phase::Root | Phase::Fired | Phase::Done => None,
        }
    }
}

/// A cancel that found a chain past its root: remembered while stages run, passed on to the
/// Deferred the chain waits on, nothing once it has fired.
fn where_the_cancel_goes<T, E: 'static>(inner: &mut Inner<T, E>, outer_chains: u32) -> Walk {
    match &mut inner.phase {
        Phase::Running { cancel } => {
            cancel.remember(outer_chains);
            Walk::Stop
        }
        Phase::Waiting { .. } => Walk::Up(inner.upstream.on().clone()),
        Phase::Fired | Phase::Done => Walk::Fired,
        Phase::Root => unreachable!("a root is cancelled by its own canceller"),
    }
}

/// Whether two links, type-erased or not, are the same link (compares addresses, not vtables).
pub(crate) fn same_link<A: ?Sized, B: ?Sized>(a: &Ptr<A>, b: &Ptr<B>) -> bool {
    std::ptr::addr_eq(Ptr::as_ptr(a), Ptr::as_ptr(b))
}
