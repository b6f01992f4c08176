//! Cancellation (rule 7): a handle that cancels a chain, and the walk it makes.
//!
//! Cancelling a chain walks to the Deferred it is really waiting on — its root made by
//! `Deferred::pending`, or an inner Deferred a callback returned, or one that Deferred's own
//! callback returned, and so on — runs its canceller and fails it with
//! [`Cancelled`](crate::Cancelled); the failure then flows down the chain like any other, so
//! errbacks see it. The walk is a loop: a million nested Deferreds cancel in constant stack.
//!
//! A pending chain is one link however many steps were added to it (see `pending.rs`), so the walk
//! only crosses from a chain to the inner Deferred one of its steps returned. A walk that finds
//! a chain running its steps (its root has fired) cannot stop a step that is running; Twisted
//! drops such a cancel. Here the chain remembers it, and the next Deferred one of its steps
//! returns in this run is cancelled at once — so a cancel (or a timeout) that lands while a
//! callback runs is not lost. If the chain fires first, there was nothing left to cancel. The
//! same holds when the root fires while its canceller runs (the canceller answered it, or a
//! `Resolver` on another thread won the race), when the walk finds an inner Deferred whose
//! result is on its way to the chain waiting on it, and when it reaches a fan-in's output (a
//! combinator's, `map_err`'s) whose inputs, cancelled, answer only after the cancel returns: the
//! output remembers it, and its run starts with it. A cancel that reaches a root whose canceller
//! another cancel is running (from another thread, or from inside that canceller) leaves the
//! root to that cancel: the canceller's answer, if it fires the root, wins, else that cancel
//! fails the root when the canceller returns; the second cancel is remembered, as above.
//!
//! Chains may wait on each other: a step of A returns B's end while a step of B returns A's
//! (through any number of chains, and through the internal link `add_timeout` makes). Forming
//! such a cycle is allowed — it cannot be seen at once when two threads form it together — and
//! nothing can ever fire it. A cancel that reaches it (a user's, or a deadline's) must return:
//! the walk notices it is going round ([`Cycle`], in constant memory) and cancels the wait that
//! closes the cycle; that chain goes on with the cancellation failure, and each chain of the
//! cycle in turn with what the one it waits on gives.

use std::fmt;
use std::panic::{AssertUnwindSafe, Location, catch_unwind};

use super::super::{ChainPtr, Sendable, Shareable};
use super::{AnyChain, Chain, Inner, Listener, Phase, same_chain};
use crate::bounds::FromFailure;
use crate::failure::Failure;
use crate::run_loop;

/// A cheap, clonable handle that cancels a Deferred's chain from anywhere, even after the
/// Deferred itself was consumed by `add_*` (combinators keep one per input to cancel losers).
///
/// ```
/// # extern crate deferred_core as deferred;
/// use deferred::Deferred;
///
/// let (d, _resolver) = Deferred::<u32>::pending();
/// let handle = d.cancel_handle();
/// let d = d.add_errback(|f| if f.is_cancelled() { Ok(0) } else { Err(f) });
/// std::thread::spawn(move || handle.cancel()).join().unwrap();
/// assert_eq!(d.wait().unwrap(), 0);
/// ```
#[derive(Clone, Default)]
pub struct CancelHandle {
    target: Option<ChainPtr<dyn Cancel>>,
}

impl CancelHandle {
    /// A handle for a pending chain ending at `target`.
    pub(crate) fn new(target: ChainPtr<dyn Cancel>) -> CancelHandle {
        CancelHandle {
            target: Some(target),
        }
    }

    /// A handle that cancels nothing (the Deferred had already fired).
    pub(crate) fn none() -> CancelHandle {
        CancelHandle { target: None }
    }

    /// Cancels the chain, as [`Deferred::cancel`](crate::Deferred::cancel) does. Does nothing if
    /// it has fired. The [`Cancelled`](crate::Cancelled) failure the cancel makes says where it
    /// was called (see [`Failure::entered_at`]).
    #[track_caller]
    pub fn cancel(&self) {
        self.cancel_from(Some(Location::caller()));
    }

    /// The cancel of a user's `cancel` called at `at`, or of the library's own (`None`): the
    /// library never calls the public `cancel`, whose place would be a line of its own.
    pub(crate) fn cancel_from(&self, at: Option<&'static Location<'static>>) {
        crate::trace::chain_event!(pending = self.target.is_some(), "cancel");
        self.cancel_within(0, &Within::from(at));
    }

    /// A cancel made by a canceller of the library's own (a helper's, cancelling what it waits
    /// on): placed where the user's cancel it answers was called, if one is (see
    /// [`crate::failure::cancel_place`]).
    pub(crate) fn cancel_in_canceller(&self) {
        self.cancel_from(crate::failure::cancel_place());
    }

    /// The walk. `outer_chains`: how many chains waiting on the target this cancel is meant for
    /// too (0 for a user's cancel; a chain that remembered a cancel of chains waiting on it walks
    /// with it when it finally cancels what it waits on).
    pub(crate) fn cancel_for(&self, outer_chains: u32) {
        self.cancel_within(outer_chains, &Within::default());
    }

    /// [`cancel_for`](CancelHandle::cancel_for), as a walk made by a fan-in's output cancelling
    /// its inputs, where `within` says (see [`Within`]).
    pub(crate) fn cancel_within(&self, outer_chains: u32, within: &Within) {
        // The chain that waits on `next` (and its `outer_chains`), in case `next` turns out to
        // have fired already.
        let mut waiter: Option<(ChainPtr<dyn Cancel>, u32)> = None;
        let mut next = self.target.clone();
        let mut level = outer_chains;
        let mut cycle = Cycle::new(self.target.clone());
        while let Some(link) = next {
            next = match link.cancel(&link, level, within) {
                Walk::Up(up) => {
                    if cycle.closes_at(&up) {
                        // Rule: chains that wait on each other never fire by themselves, and a
                        // cancel must return. The wait that closes the cycle is cancelled: that
                        // chain goes on with the cancellation, and the others in turn.
                        link.break_wait(&link, &up, within.at);
                        return;
                    }
                    // A chain that handed its wait over stands no more between `up` and the
                    // chain waiting in its place: the cancel is meant for as many chains after
                    // it as before.
                    let stands_between = !link.handed_over();
                    waiter = Some((link, level));
                    if stands_between {
                        level = level.saturating_add(1);
                    }
                    Some(up)
                }
                // The chain that waits on `link` is between two waits: its result is on its way
                // there. Tell that chain to cancel the next Deferred it waits on (a cancel is
                // never lost to timing), or go on to the one it waits on already; if it has
                // fired too and passed its result on, the chain it passed it to, in turn.
                walk @ (Walk::Fired | Walk::Via(..)) => {
                    if let Walk::Via(upper, upper_level) = walk {
                        waiter = Some((upper, upper_level));
                    }
                    let mut fired = link;
                    loop {
                        let Some((w, w_level)) = waiter.take() else {
                            break None;
                        };
                        match w.cancel_after(&fired, w_level) {
                            After::Stop => break None,
                            After::Up(up) => {
                                level = w_level.saturating_add(1);
                                waiter = Some((w, w_level));
                                break Some(up);
                            }
                            After::Via(upper, upper_level) => {
                                fired = w;
                                waiter = Some((upper, upper_level));
                            }
                            // `w` handed its wait over (`Chain::hand_over`) and `link` has
                            // fired: the result went to the chain waiting in `w`'s place, back
                            // on this walk, which may not have taken `link` over yet (another
                            // thread is between the two). The walk goes again from its start,
                            // which leads there once it has. A walk that began at a chain that
                            // handed over stops instead: its wait is the handed-over one, for
                            // good, and it has handed its result on (nothing left to cancel).
                            After::Again
                                if self.target.as_ref().is_none_or(|t| t.handed_over()) =>
                            {
                                break None;
                            }
                            After::Again => {
                                crate::sync::yield_now();
                                level = outer_chains;
                                cycle = Cycle::new(self.target.clone());
                                break self.target.clone();
                            }
                        }
                    }
                }
                // `link` is a fan-in's output the walks that made this one came round to: the
                // wait that led here closes a cycle through it, and is cancelled, as a cycle's
                // is above; a walk that began at it (an input of another fan-in of the cycle)
                // has no wait to break, and fails it instead.
                Walk::Round => {
                    match waiter.take() {
                        Some((waiter, _)) => waiter.break_wait(&waiter, &link, within.at),
                        None => link.fail_round(&link, within.at),
                    }
                    None
                }
                Walk::Stop => None,
            };
        }
    }
}

/// Where a walk made by fan-in outputs cancelling their inputs is, in the chain of such
/// outputs it was made inside: a walk that comes back to one of them has gone round a cycle
/// through a fan-in (a step of one of its inputs returned the output, through any number of
/// chains and fan-ins), which a walk's own [`Cycle`] cannot see, since each input's cancel is
/// a walk of its own. The same fan-in twice along one such chain of walks is a cycle: a chain
/// hands its result to one place only (one listener), so the walks, which go from an output to
/// its inputs and up what each waits on, follow each result back to where it came from, and
/// can only come back to where they were by going round. Found by the same [`Cycle`], over the
/// outputs the chain of walks reaches: in constant memory, within a lap or two of going round
/// (each lap cancels the inputs of the cycle's fan-ins again, which is harmless). A cancel put
/// off by `run_loop::in_constant_stack` carries its `Within` with it. Holds the marker, so
/// that it is not freed (and its address used again) while the walk goes on.
///
/// It also carries where the user's cancel that began the chain of walks was called (`None`
/// for the library's own cancels, and for a cancel a chain remembered): the `Cancelled` the
/// walks make themselves is placed there (see [`Failure::entered_at`]), and the cancellers
/// they run are told ([`crate::failure::with_cancel_place`]).
#[derive(Clone)]
pub(crate) struct Within {
    cycle: Cycle,
    at: Option<&'static Location<'static>>,
}

impl Default for Within {
    fn default() -> Within {
        Within::from(None)
    }
}

impl Within {
    /// The walk of a cancel called at `at` (see [`Within::at`]).
    fn from(at: Option<&'static Location<'static>>) -> Within {
        Within {
            cycle: Cycle::new(None),
            at,
        }
    }

    /// Where a walk made by `output` cancelling its inputs is, inside this one; `None` if the
    /// chain of walks came round a cycle through `output`.
    fn and(&self, output: &ChainPtr<dyn Cancel>) -> Option<Within> {
        let mut within = self.clone();
        (!within.cycle.closes_at(output)).then_some(within)
    }
}

/// Finds a cycle in the chains a walk goes through (chains that wait on each other: a step of
/// A returned B's end and a step of B returned A's), in constant memory: Brent's algorithm. A
/// marker chain is compared with each chain the walk reaches, and moved to where the walk is
/// after 1, 2, 4, 8, ... chains; once the walk is inside a cycle and the marker is on it, the
/// walk comes back to the marker within one more lap. With no chain to start at, the first one
/// reached is the marker.
#[derive(Clone)]
struct Cycle {
    marker: Option<ChainPtr<dyn Cancel>>,
    /// Chains walked since the marker moved, and how many until it moves again.
    walked: u64,
    lap: u64,
}

impl Cycle {
    fn new(start: Option<ChainPtr<dyn Cancel>>) -> Cycle {
        Cycle {
            marker: start,
            walked: 0,
            lap: 1,
        }
    }

    /// Whether `up`, the next chain of the walk, is one the walk has been through already.
    fn closes_at(&mut self, up: &ChainPtr<dyn Cancel>) -> bool {
        let Some(marker) = &self.marker else {
            *self = Cycle::new(Some(up.clone()));
            return false;
        };
        if same_chain(marker, up) {
            return true;
        }
        self.walked += 1;
        if self.walked == self.lap {
            self.marker = Some(up.clone());
            self.lap = self.lap.saturating_mul(2);
            self.walked = 0;
        }
        false
    }
}

impl fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Whether it was made from a pending Deferred (one made from a fired Deferred cancels
        // nothing); whether that chain has fired since is its Deferred's to say.
        f.debug_struct("CancelHandle")
            .field("made_while_pending", &self.target.is_some())
            .finish()
    }
}

/// A cancel that landed while the chain was between waits (its steps running, or the result of
/// the Deferred it waited on on its way), or, on a fan-in's output whose root has not fired,
/// one whose inputs answer after it returned: the next Deferred one of its steps returns is
/// cancelled at once. If the chain fires first, there was nothing left to cancel in it — but a
/// cancel that walked up to it from chains waiting on it was meant for those too: it says for how
/// many of them, and the chain waiting on this one remembers it, for one fewer.
#[derive(Clone, Copy)]
pub(crate) struct Remembered(u32); // 0: none; n + 1: a cancel meant for n chains waiting on this one too

impl Remembered {
    pub(super) const NONE: Remembered = Remembered(0);

    /// A cancel is remembered: for how many chains waiting on this one too.
    pub(super) fn get(self) -> Option<u32> {
        self.0.checked_sub(1)
    }

    /// Remembers a cancel meant for `outer_chains` chains waiting on this one too (on top of
    /// what is remembered already).
    pub(super) fn remember(&mut self, outer_chains: u32) {
        self.0 = self.0.max(outer_chains.saturating_add(1));
    }

    /// A cancel that reached a chain which has fired and keeps its result, meant for
    /// `outer_chains` chains waiting on it: what the chain that takes the result remembers of
    /// it (this value is in `passed_on` form).
    pub(super) fn pass_on(&mut self, outer_chains: u32) {
        self.0 = self.0.max(outer_chains);
    }

    /// What the chain waiting on this one remembers of it when this one fires.
    pub(super) fn passed_on(self) -> Remembered {
        Remembered(self.0.saturating_sub(1))
    }
}

/// Where a walk goes after the chain it reached was found fired ([`Cancel::cancel_after`]).
pub(crate) enum After {
    /// The cancel is remembered, or there is nothing left to cancel.
    Stop,
    /// On to the Deferred the waiting chain waits on now.
    Up(ChainPtr<dyn Cancel>),
    /// The waiting chain has fired too and passed its result on to `.0`, which the cancel is
    /// for (with `.1` chains waiting on it), if it is meant for any chain after it.
    Via(ChainPtr<dyn Cancel>, u32),
    /// The waiting chain handed its wait over: the walk goes again from where it began.
    Again,
}

/// For the cancel of a driven future (`drive.rs`), written once for both kinds.
impl crate::drive::AwaitedHandle for CancelHandle {
    /// Whether the Deferred it cancels is still polled by the task `waker` names (see
    /// [`Cancel::listened_by`]).
    fn listened_by(&self, waker: crate::drive::WakerId) -> bool {
        self.target
            .as_ref()
            .is_some_and(|target| target.listened_by(waker))
    }

    /// Made by a driven future's canceller: placed where the user's cancel was called, if
    /// one is.
    fn cancel(&self) {
        self.cancel_in_canceller();
    }
}

/// One step of a cancellation walk (rule 7), type-erased so the walk can cross chains of
/// different types. The walk itself is [`CancelHandle::cancel`].
pub(crate) trait Cancel: std::any::Any + Shareable {
    /// Cancels what this chain waits on: says where the walk goes next. `outer_chains`: how many
    /// chains waiting on this one the walk came through (a cancel this chain remembers is
    /// meant for them too). `me`: the pointer to this chain the walk holds (a chain's pointer
    /// cannot be a method's receiver: see `chain_arc.rs`).
    /// `within`: where the walk is among the walks fan-in outputs made to cancel their inputs.
    fn cancel(&self, me: &ChainPtr<dyn Cancel>, outer_chains: u32, within: &Within) -> Walk;

    /// The chain this one waited on was found fired (its result is on its way here). If this
    /// chain still waits on it, remember the cancel for the next Deferred a stage returns; if a
    /// stage already returned another one, give it back so the walk goes on there; if this
    /// chain handed its wait over to the chain that waited on it (`Chain::hand_over`), say so;
    /// if it has fired too, keep the cancel for the chain that takes its result, or, if that
    /// chain has taken it, name it.
    fn cancel_after(&self, fired: &ChainPtr<dyn Cancel>, outer_chains: u32) -> After;

    /// This chain waits on `on`, and `on` (through any number of chains) waits on this one: a
    /// cycle, which nothing can ever fire. Stop waiting: the chain goes on with a cancellation
    /// failure (its errbacks see it), and `on`'s result, when it comes, is nobody's — reported
    /// if it is a failure. Does nothing if the chain no longer waits on `on`. `me`: as for
    /// `cancel`.
    /// `at`: where the cancel was called (the failure's place), if a user called it.
    fn break_wait(
        &self,
        me: &ChainPtr<dyn Cancel>,
        on: &ChainPtr<dyn Cancel>,
        at: Option<&'static Location<'static>>,
    );

    /// The chain waiting on this one stopped waiting (`break_wait`): nobody will take this
    /// chain's result, as if its end were dropped.
    fn forget_waiter(&self);

    /// This chain is about to be dropped (the pointer being dropped is the last strong one; a
    /// weak one, the registry's, may still look at it): gives up the chain its phase holds (the
    /// one it passed its result to, or waits on), if any, so that its drop does not go on down
    /// a path of them (`drop_linked`).
    fn take_next_link(&self) -> Option<ChainPtr<dyn Cancel>>;

    /// [`take_next_link`](Cancel::take_next_link) through the only pointer to the chain
    /// (strong or weak): without its lock.
    fn take_next_link_alone(&mut self) -> Option<ChainPtr<dyn Cancel>>;

    /// This chain is a fan-in's output that a walk came round to ([`Walk::Round`]) as the
    /// Deferred it began at, with no chain's wait on it to break: its fan-in fails it with the
    /// cancellation ([`Inputs::fail_output`]), where the outcome would have come from the
    /// inputs' answers, and those answers are left out of it (a failure among them that is not
    /// the cancel's answer is reported). The failure goes on to whatever the output's result
    /// feeds. Does nothing if its root has fired. `me`: as for `cancel`.
    /// `at`: as for `break_wait`.
    fn fail_round(&self, me: &ChainPtr<dyn Cancel>, at: Option<&'static Location<'static>>);

    /// Whether this chain handed its wait over to the chain that waited on it
    /// (`Chain::hand_over`): a walk that begins here finds that wait, stale for good.
    fn handed_over(&self) -> bool;

    /// Whether the Deferred at this chain's end is still polled by the task `waker` names: its
    /// listener is that waker (not dropped, nor polled by another task since, nor fired).
    fn listened_by(&self, waker: crate::drive::WakerId) -> bool;

    /// Where the chain was made (for the registry: what a chain waiting on this one shows).
    #[cfg(feature = "registry")]
    fn created_at(&self) -> &'static std::panic::Location<'static>;
}

/// The inputs of a fan-in (`fan_in.rs`), which its output's root waits on instead of a
/// canceller.
pub(crate) trait Inputs: Shareable {
    /// Cancels every input that has not arrived. Unlike a canceller, this is called at each
    /// cancel of the root, and the root is not failed after it: the fan-in fires it with what
    /// the inputs answer.
    /// `within`: where the walks it makes are among the walks fan-in outputs made to cancel
    /// their inputs (this one's output last).
    fn cancel_inputs(&self, within: Within);
    /// Fails the fan-in's output with the cancellation, if it has not fired: a cancel came
    /// round a cycle through it with no chain's wait to break ([`Cancel::fail_round`]). The
    /// inputs that answer after are left out of it, as after any decided outcome.
    /// `at`: where the cancel was called (the failure's place), if a user called it.
    fn fail_output(&self, at: Option<&'static Location<'static>>);
    /// How many inputs have not arrived (for the registry).
    #[cfg(feature = "registry")]
    fn pending_inputs(&self) -> usize;
}

/// Where a cancellation walk goes after one link.
pub(crate) enum Walk {
    /// On to the chain this one waits on.
    Up(ChainPtr<dyn Cancel>),
    /// This chain has fired: its result is on its way (or taken).
    Fired,
    /// This chain has fired and passed its result on to `.0`, which the cancel was meant for
    /// too (with `.1` chains waiting on it).
    Via(ChainPtr<dyn Cancel>, u32),
    /// Done: a root was cancelled, or the cancel is remembered by a running chain (or by a
    /// fan-in's output whose inputs answer later).
    Stop,
    /// This chain is a fan-in output the walks that made this one came round to ([`Within`]):
    /// they went round a cycle through it.
    Round,
}

impl<T, E> Cancel for Chain<T, E>
where
    T: Sendable + 'static,
    E: FromFailure + Sendable + 'static,
{
    fn cancel(&self, me: &ChainPtr<dyn Cancel>, outer_chains: u32, within: &Within) -> Walk {
        debug_assert!(std::ptr::addr_eq(ChainPtr::as_ptr(me), self));
        let mut inner = self.lock();
        if !inner.phase.is_root() {
            return where_the_cancel_goes(&mut inner, outer_chains);
        }
        if let Phase::RootOfFanIn(inputs, _) = &inner.phase {
            // A fan-in's output: its inputs are cancelled, and it fires with what they answer
            // (now, or once their answers, queued on this thread's run loop, arrive). An input
            // may be another fan-in's output, and so on: in constant stack (past 16 nested,
            // the inputs are cancelled after this cancel returns, before the outermost does).
            let inputs = inputs.upgrade();
            drop(inner);
            let Some(within) = within.and(me) else {
                return Walk::Round;
            };
            if let Some(inputs) = inputs {
                crate::run_loop::in_constant_stack(move || inputs.cancel_inputs(within));
            }
            let mut inner = self.lock();
            if let Phase::RootOfFanIn(_, cancel) = &mut inner.phase {
                // The inputs' answers come later (queued on this thread's run loop, or their
                // cancels put off past 16 nested): the cancel is remembered, for the run that
                // begins when they fire this chain (the next Deferred one of its stages
                // returns is cancelled), and after it for the chain waiting on this one.
                cancel.remember(outer_chains);
                return Walk::Stop;
            }
            return where_the_cancel_goes(&mut inner, outer_chains);
        }
        if let Phase::RootCancelling(cancel) = &mut inner.phase {
            // A cancel reached the root already and its canceller runs: that cancel fails the
            // root when the canceller returns, unless the canceller fires it first (its answer
            // wins). This one is remembered, for the run that begins when the root fires.
            cancel.remember(outer_chains);
            return Walk::Stop;
        }
        // `Cancelling`: a canceller the producer sets from now on runs at once.
        let cancelling = Phase::RootCancelling(Remembered::NONE);
        let canceller = match std::mem::replace(&mut inner.phase, cancelling) {
            Phase::RootCancellable(canceller) => Some(canceller),
            Phase::Root => None,
            Phase::RootCancelling(_)
            | Phase::RootOfFanIn(..)
            | Phase::Running { .. }
            | Phase::Waiting { .. }
            | Phase::Fired { .. }
            | Phase::Done
            | Phase::Passed(_) => {
                unreachable!("a root that is not a fan-in's output, checked above")
            }
        };
        drop(inner);
        // Rule 7: a canceller that panics does not escape `cancel`; its panic becomes the failure.
        // The library's cancellers place the `Cancelled` they make where the user's cancel was
        // called, as the one made here is.
        let failure = match canceller.map(|canceller| {
            crate::failure::with_cancel_place(within.at, || {
                catch_unwind(AssertUnwindSafe(canceller))
            })
        }) {
            None | Some(Ok(())) => Failure::cancelled_by(within.at),
            Some(Err(payload)) => Failure::from_panic_in(payload, None, "a canceller"),
        };
        // The root may have fired since the check above: by the canceller itself, or by a
        // `Resolver` on another thread. Then the cancel goes on where the chain now is — its
        // stages remember it, or the Deferred a stage returned is cancelled — so a cancel is
        // never dropped by timing.
        // The error is made before taking the lock: `E::from` is user code.
        let error = E::from(failure);
        let mut inner = self.lock();
        if inner.phase.is_root() {
            Self::start(
                &super::super::cancel_to_chain(me.clone()),
                inner,
                Err(error),
            );
            return Walk::Stop;
        }
        where_the_cancel_goes(&mut inner, outer_chains)
    }

    fn forget_waiter(&self) {
        AnyChain::abandon(self);
    }

    fn take_next_link(&self) -> Option<ChainPtr<dyn Cancel>> {
        take_next_link(&mut self.lock())
    }

    fn take_next_link_alone(&mut self) -> Option<ChainPtr<dyn Cancel>> {
        take_next_link(self.inner.get_mut())
    }

    fn fail_round(&self, me: &ChainPtr<dyn Cancel>, at: Option<&'static Location<'static>>) {
        debug_assert!(std::ptr::addr_eq(ChainPtr::as_ptr(me), self));
        let inputs = match &self.lock().phase {
            Phase::RootOfFanIn(inputs, _) => inputs.upgrade(),
            _ => None,
        };
        if let Some(inputs) = inputs {
            inputs.fail_output(at);
        }
    }

    fn handed_over(&self) -> bool {
        matches!(self.lock().listener, Listener::HandedOver)
    }

    fn listened_by(&self, waker: crate::drive::WakerId) -> bool {
        matches!(&self.lock().listener, Listener::Task(w) if waker.is(w))
    }

    #[cfg(feature = "registry")]
    fn created_at(&self) -> &'static std::panic::Location<'static> {
        self.born.at
    }

    fn break_wait(
        &self,
        me: &ChainPtr<dyn Cancel>,
        on: &ChainPtr<dyn Cancel>,
        at: Option<&'static Location<'static>>,
    ) {
        debug_assert!(std::ptr::addr_eq(ChainPtr::as_ptr(me), self));
        // Made before taking the lock: `E::from` is user code.
        let error = E::from(Failure::cancelled_by(at));
        let mut inner = self.lock();
        let Phase::Waiting {
            cancel,
            on: waits_on,
        } = &inner.phase
        else {
            return;
        };
        if !same_chain(waits_on, on) {
            return;
        }
        let running = Phase::Running { cancel: *cancel };
        let Phase::Waiting { on, .. } = std::mem::replace(&mut inner.phase, running) else {
            unreachable!("checked above");
        };
        inner.result.slot().fail(error);
        drop(inner);
        on.forget_waiter();
        let this: ChainPtr<Self> = super::super::cancel_to_chain(me.clone());
        if run_loop::is_running() {
            super::super::enqueue(this);
        } else {
            run_loop::run(move || Self::deliver(this));
        }
    }

    fn cancel_after(&self, fired: &ChainPtr<dyn Cancel>, outer_chains: u32) -> After {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let handed_over = matches!(inner.listener, Listener::HandedOver);
        match &mut inner.phase {
            Phase::Waiting { on, .. } if handed_over && same_chain(on, fired) => After::Again,
            Phase::Waiting { cancel, on } => {
                if same_chain(on, fired) {
                    cancel.remember(outer_chains);
                    After::Stop
                } else {
                    After::Up(on.clone())
                }
            }
            Phase::Running { cancel } => {
                cancel.remember(outer_chains);
                After::Stop
            }
            // This chain has fired too, since the walk came by.
            phase @ (Phase::Fired { .. } | Phase::Passed(_) | Phase::Done) => {
                match passed_to(phase, outer_chains) {
                    Some((upper, upper_chains)) => After::Via(upper, upper_chains),
                    None => After::Stop,
                }
            }
            Phase::Root
            | Phase::RootCancellable(_)
            | Phase::RootCancelling(_)
            | Phase::RootOfFanIn(..) => After::Stop,
        }
    }
}

/// A cancel that reached a chain that has fired, meant for `outer_chains` chains waiting on it
/// too: kept for the chain that will take its result (it keeps it: `Phase::Fired`), or gone on
/// to the chain it passed its result to (`Phase::Passed`), named here; nothing for a chain
/// whose result its end took, or that was reported or handed to a fan-in.
fn passed_to(phase: &mut Phase, outer_chains: u32) -> Option<(ChainPtr<dyn Cancel>, u32)> {
    match phase {
        Phase::Fired { cancel } => {
            cancel.pass_on(outer_chains);
            None
        }
        Phase::Passed(upper) => Some((upper.clone(), outer_chains.checked_sub(1)?)),
        _ => None,
    }
}

/// The chain `inner`'s phase holds (the one it passed its result to, or waits on), taken out:
/// its phase is `Done` after (see `Cancel::take_next_link`).
pub(super) fn take_next_link<T, E: 'static>(
    inner: &mut Inner<T, E>,
) -> Option<ChainPtr<dyn Cancel>> {
    match std::mem::replace(&mut inner.phase, Phase::Done) {
        Phase::Passed(next) | Phase::Waiting { on: next, .. } => Some(next),
        other => {
            inner.phase = other;
            None
        }
    }
}

/// A cancel that found a chain past its root: remembered while stages run, passed on to the
/// Deferred the chain waits on, or, once it has fired, to what it passed its result to.
fn where_the_cancel_goes<T, E: 'static>(inner: &mut Inner<T, E>, outer_chains: u32) -> Walk {
    match &mut inner.phase {
        Phase::Running { cancel } => {
            cancel.remember(outer_chains);
            Walk::Stop
        }
        Phase::Waiting { on, .. } => Walk::Up(on.clone()),
        phase @ (Phase::Fired { .. } | Phase::Passed(_) | Phase::Done) => {
            match passed_to(phase, outer_chains) {
                Some((upper, upper_chains)) => Walk::Via(upper, upper_chains),
                None => Walk::Fired,
            }
        }
        Phase::Root
        | Phase::RootCancellable(_)
        | Phase::RootCancelling(_)
        | Phase::RootOfFanIn(..) => {
            unreachable!("a root is cancelled by its own canceller")
        }
    }
}
