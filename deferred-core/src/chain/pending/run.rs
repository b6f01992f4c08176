//! Firing, and the run of a chain's steps: in order, on the thread that fired (or the one its
//! run loop hands the result to), until none is left, a step returns a pending Deferred (the
//! chain waits on it), or a step fired other chains (their deliveries go first).

use super::super::{
    ChainPtr, Delivery, RUN_STAGES_TOGETHER, Sendable, erase_cancel, erase_chain, link_to_cancel,
};
use super::cancel::{CancelHandle, Remembered};
use super::stage::{Added, Flow, GivenBack, HoldsFailures, Slot, Stages};
use super::{
    AnyChain, Chain, Current, EndUnread, Fire, Firing, Guard, Listener, Part, Parts, Phase,
    same_chain,
};
use crate::bounds::FromFailure;
use crate::failure::Failure;
use crate::run_loop;

/// Twisted's "callback returned the Deferred it was attached to": a step's Deferred that is its
/// own chain's, which would wait on itself for ever. The chain fails with this instead.
const WAITS_ON_ITSELF: &str =
    "a step returned a Deferred of its own chain, which would wait on itself for ever";

/// A root that has not fired and that somebody can still see, locked (`Chain::open_root`):
/// the lock, where the root was made, how it fires.
type OpenRoot<'a, T, E> = (
    Guard<'a, Parts<T, E>>,
    &'static std::panic::Location<'static>,
    Firing<T, E>,
);

/// Firing asks for no bounds: a `Resolver` (which asks for none in its `Drop`) calls it. The
/// root's slot holds how it fires (`Firing`), made where the bounds were known.
impl<T, E: 'static> Chain<T, E> {
    /// Rule: a root fires once; a later fire (only possible after a cancellation already failed
    /// it) is dropped, as Twisted drops the late fire after `cancel`.
    /// Gives `result` back instead when the root was cancelled already (the one late fire).
    pub(crate) fn fire(this: &ChainPtr<Self>, result: Result<T, E>) -> Result<(), Result<T, E>> {
        let inner = this.lock();
        match inner.unfired() {
            Some((_, fire_root)) => {
                fire_root(this, inner, Fire::With(result));
                Ok(())
            }
            None => {
                debug_assert!(
                    !inner.phase.is_root(),
                    "a root's slot keeps how it fires until it fires"
                );
                drop(inner); // `result` goes back after the lock is released
                Err(result)
            }
        }
    }

    /// [`fire`](Chain::fire), but `result` is given back, and the chain ends, when nobody can
    /// see it (the Deferred at its end was dropped with no step left): for `try_fire`, whose
    /// caller hands out what must not be lost. Decided under the same lock as the fire.
    pub(crate) fn fire_if_open(
        this: &ChainPtr<Self>,
        result: Result<T, E>,
    ) -> Result<(), Result<T, E>> {
        match Self::open_root(this) {
            Some((inner, _, fire_root)) => {
                fire_root(this, inner, Fire::With(result));
                Ok(())
            }
            None => Err(result),
        }
    }

    /// The chain's lock, with where its root was made and how it fires, if the root has not
    /// fired and somebody can still see its result. A root nobody can read any more is ended
    /// here (`end_unread`). Whether it is closed through a fan-in (a combinator's input,
    /// `map_err`'s chain) is asked first, outside the lock: an output dropped at the same
    /// moment may still get the result, and drop it.
    fn open_root(this: &ChainPtr<Self>) -> Option<OpenRoot<'_, T, E>> {
        let through = this.closed_through_fan_in();
        let inner = this.lock();
        let (at, fire_root) = inner.unfired()?;
        if through || inner.is_closed() {
            inner.end_unread();
            return None;
        }
        Some((inner, at, fire_root))
    }

    /// Fails the root with `NeverFired` (its Resolver was dropped unfired); a root a cancel
    /// failed already keeps that outcome, and so does one a cancel is failing (its canceller
    /// runs: a canceller that stops the work by dropping its Resolver, as aborting a task
    /// does, leaves the root `Cancelled`, not `NeverFired`). A chain nobody can read any more
    /// (its end was dropped with no step left: what `Resolver::is_closed` tells the producer)
    /// is done instead, with no failure: a producer that stops because nobody wants its result
    /// is no one's mistake, and a `NeverFired` there would only be reported as unhandled.
    pub(crate) fn fail_never_fired(this: &ChainPtr<Self>) {
        let Some((inner, at, fire_root)) = Self::open_root(this) else {
            return;
        };
        if matches!(inner.phase, Phase::RootCancelling(_)) {
            return; // the cancel fails it when its canceller returns
        }
        fire_root(this, inner, Fire::NeverFired(at));
    }
}

impl<T, E> Chain<T, E>
where
    T: Sendable + 'static,
    E: FromFailure + Sendable + 'static,
{
    /// [`fire_if_open`](Chain::fire_if_open) with `value`, which goes back, through
    /// `give_back`, if the chain drops it unread: when no step is left to take it as the root
    /// fires, it is kept in a slot that gives it back ([`GivenBack`]) until the end of the chain
    /// takes it. For `DeferredQueue`, whose item must not be lost to a get dropped after it was
    /// handed the item.
    pub(crate) fn fire_if_open_or_give_back<F>(
        this: &ChainPtr<Self>,
        value: T,
        give_back: F,
    ) -> Result<(), T>
    where
        F: FnOnce(T) + Sendable + 'static,
    {
        let Some((inner, _, _)) = Self::open_root(this) else {
            return Err(value);
        };
        if !inner.stages.is_empty() {
            // Its steps take the value as the root fires.
            Self::start(this, inner, Ok(value));
            return Ok(());
        }
        Self::fire_kept_in(this, inner, Box::new(GivenBack::new(value, give_back)));
        Ok(())
    }

    /// [`fire_if_open`](Chain::fire_if_open) with `value`, which holds failures that
    /// `report_held` reports: when nothing takes the value on as the root fires (no step is
    /// left, and no fan-in listens), it is kept in a slot that reports them if the chain drops
    /// it unread ([`HoldsFailures`]) until the end of the chain takes it; a chain that waits
    /// on this one (a step returned it) is handed that slot, and keeps it if no step of its
    /// own is left to take the value (`resume_held`). For a
    /// combinator's outcome that holds its inputs' failures as values (`settle_all`). Gives
    /// `value` back when nobody can see it, as `fire_if_open` does.
    pub(crate) fn fire_if_open_holding(
        this: &ChainPtr<Self>,
        value: T,
        report_held: fn(T),
    ) -> Result<(), T> {
        let Some((inner, _, _)) = Self::open_root(this) else {
            return Err(value);
        };
        if !inner.stages.is_empty()
            || !matches!(
                inner.listener,
                Listener::Nobody | Listener::Task(_) | Listener::Forward(_)
            )
        {
            // Its steps take the value as the root fires, or it goes on to the combinator that
            // listens.
            Self::start(this, inner, Ok(value));
            return Ok(());
        }
        if matches!(inner.listener, Listener::Forward(_)) {
            // A chain waits on this one (a step returned it): the slot goes on to that chain,
            // which keeps it if no step of its own takes the value (`resume_held`).
            Self::forward_held(inner, Box::new(HoldsFailures::new(value, report_held)));
            return Ok(());
        }
        Self::fire_kept_in(
            this,
            inner,
            Box::new(HoldsFailures::new(value, report_held)),
        );
        Ok(())
    }

    /// Fires the root, which has no step left and a chain waiting on it, with the result in
    /// `held`, which goes on to that chain as it is (`park`'s `Listener::Forward`, with
    /// [`arrive_held`](super::arrive_held)).
    #[cold]
    fn forward_held(mut inner: Guard<'_, Parts<T, E>>, held: Box<dyn Slot<E>>) {
        let Listener::Forward(outer) = std::mem::replace(&mut inner.listener, Listener::Nobody)
        else {
            unreachable!("checked by the caller")
        };
        let passed_on = inner.phase.remembered_by_root().passed_on();
        let upper = link_to_cancel(outer.clone());
        let root = std::mem::replace(&mut inner.phase, Phase::Passed(upper));
        drop(inner);
        root.release();
        fired_event();
        super::arrive_held(outer, held, passed_on);
    }

    /// Fires the root, which has no step left, with the result in `kept`, a slot of its own
    /// (`fire_if_open_or_give_back`, `fire_if_open_holding`).
    fn fire_kept_in(
        this: &ChainPtr<Self>,
        mut inner: Guard<'_, Parts<T, E>>,
        kept: Box<dyn Slot<E>>,
    ) {
        // As `start`: a cancel the root remembered goes on with the result.
        let cancel = inner.phase.remembered_by_root();
        let root = std::mem::replace(&mut inner.phase, Phase::Running { cancel });
        this.park(inner, Current::Other(kept));
        root.release();
    }

    /// How a root fires (`Firing`), under its lock.
    pub(super) fn fire_root(
        this: &ChainPtr<Self>,
        inner: Guard<'_, Parts<T, E>>,
        fire: Fire<T, E>,
    ) {
        match fire {
            Fire::With(result) => Self::start(this, inner, result),
            Fire::NeverFired(at) => {
                drop(inner);
                // Made outside the lock (`E::from` is user code); a cancel that fails the root
                // meanwhile, or has begun to, wins, and this failure is dropped.
                let never_fired = E::from(Failure::new(crate::failure::NeverFired::new(at)));
                let inner = this.lock();
                if inner.unfired().is_some() && !matches!(inner.phase, Phase::RootCancelling(_)) {
                    Self::start(this, inner, Err(never_fired));
                }
            }
        }
    }

    /// Starts the run of a chain whose root just fired (the caller holds the lock).
    #[inline]
    pub(super) fn start(
        this: &ChainPtr<Self>,
        mut inner: Guard<'_, Parts<T, E>>,
        result: Result<T, E>,
    ) {
        if matches!(inner.phase, Phase::Root) {
            // Nothing in the root's phase to drop (no canceller): the usual case.
            inner.phase.move_on(Phase::Running {
                cancel: Remembered::NONE,
            });
            return Self::run_from_root(this, inner, result);
        }
        // A fan-in's output, or a root a second cancel reached while its canceller ran, starts
        // its run with a cancel it remembered (see `Phase`).
        let cancel = inner.phase.remembered_by_root();
        let root = std::mem::replace(&mut inner.phase, Phase::Running { cancel });
        Self::run_from_root(this, inner, result);
        // Dropped last, outside the lock, once the result is on its way: a canceller that was
        // never called is user code (its captures' `Drop`), and a panic there must not stop
        // the chain.
        root.release();
    }

    fn run_from_root(
        this: &ChainPtr<Self>,
        mut inner: Guard<'_, Parts<T, E>>,
        result: Result<T, E>,
    ) {
        if inner.stages.is_empty() {
            if matches!(inner.listener, Listener::FanIn(..)) && run_loop::arrivals_nest_deep() {
                return Self::arrive_in_the_loop(this, inner, result);
            }
            this.park(inner, Current::Root(Some(result)));
        } else if run_loop::is_running() {
            inner.keep_result(Current::Root(Some(result)));
            drop(inner);
            super::super::enqueue(this.clone());
        } else {
            let Some(first) = inner.stages.pop_front() else {
                unreachable!("the list is not empty");
            };
            if RUN_STAGES_TOGETHER && !inner.stages.is_empty() {
                let rest = inner.stages.take_all();
                drop(inner);
                return Self::run_all_from_root(this, result, first, rest);
            }
            drop(inner);
            run_loop::run(|| Self::drive(this, Current::Root(Some(result)), first));
        }
    }

    /// [`run_from_root`](Chain::run_from_root) of a fan-in's input (a combinator's, `map_err`'s)
    /// with no stage, fired while many arrivals are nested on this thread's stack already (an
    /// arrival fired a fan-in's output, the input of another fan-in, and so on:
    /// `run_loop::arrivals_nest_deep`): it arrives inside the run loop, and, if the loop runs
    /// already, from its queue, so that fan-ins nested to any depth run in constant stack.
    #[cold]
    #[inline(never)]
    fn arrive_in_the_loop(
        this: &ChainPtr<Self>,
        mut inner: Guard<'_, Parts<T, E>>,
        result: Result<T, E>,
    ) {
        if run_loop::is_running() {
            inner.keep_result(Current::Root(Some(result)));
            drop(inner);
            super::super::enqueue(this.clone());
        } else {
            run_loop::run(|| this.park(inner, Current::Root(Some(result))));
        }
    }

    /// [`run_from_root`](Chain::run_from_root) of a root that found several stages waiting,
    /// taken together (`drive_all`).
    #[inline(never)]
    fn run_all_from_root(
        this: &ChainPtr<Self>,
        result: Result<T, E>,
        first: Added<E>,
        rest: Stages<E>,
    ) {
        run_loop::run(|| Self::drive_all(this, Current::Root(Some(result)), first, rest));
    }

    /// Runs `stage` on the result in `current`, then the stages behind it, in order, each taken
    /// off the list under the lock just before it runs (so a stage added meanwhile is found in
    /// its place). Ends when none is left (the chain fires), when a stage returns a pending
    /// Deferred (the chain waits on it), or when a stage fired other chains (they go first).
    /// When the lock finds more than one stage waiting (a chain of `add_*` steps), a run of the
    /// kind that says so (`RUN_STAGES_TOGETHER`: the `Send` kind's) takes them all at once and
    /// goes on in [`drive_all`](Chain::drive_all).
    #[inline]
    pub(super) fn drive(this: &ChainPtr<Self>, mut current: Current<T, E>, mut stage: Added<E>) {
        loop {
            if !Self::run_stage(this, &mut current, stage, None) {
                return;
            }
            let mut inner = this.lock();
            match inner.stages.pop_front() {
                None => return this.park(inner, current),
                Some(next) if !RUN_STAGES_TOGETHER || inner.stages.is_empty() => stage = next,
                Some(next) => {
                    let rest = inner.stages.take_all();
                    drop(inner);
                    return Self::drive_all(this, current, next, rest);
                }
            }
        }
    }

    /// [`drive`](Chain::drive) for a run that found several stages waiting: it took them all
    /// under one lock (`stages`, after `stage`), runs them without it, and takes the lock again
    /// only when they are done, for the stages added meanwhile. On a `Deferred`, that is two
    /// atomic operations a stage fewer (`BENCHMARKS.md`). A run that stops early puts the stages
    /// it has not run back at the front of the list (`keep`).
    #[inline(never)]
    fn drive_all(
        this: &ChainPtr<Self>,
        mut current: Current<T, E>,
        mut stage: Added<E>,
        mut stages: Stages<E>,
    ) {
        loop {
            if !Self::run_stage(this, &mut current, stage, Some(&mut stages)) {
                return;
            }
            stage = match stages.pop_front() {
                Some(next) => next,
                None => {
                    let mut inner = this.lock();
                    let Some(next) = inner.stages.pop_front() else {
                        return this.park(inner, current);
                    };
                    stages = inner.stages.take_all();
                    next
                }
            };
        }
    }

    /// Runs one stage on the result in `current`, and says whether the run goes on. It stops
    /// when the stage returned a pending Deferred (the chain waits on it) or fired other
    /// chains (they go first); `not_run`, the stages a run took off the list together and has
    /// not run yet (`drive_all`), then go back to the front of the list.
    #[inline(always)]
    fn run_stage(
        this: &ChainPtr<Self>,
        current: &mut Current<T, E>,
        (run, step): Added<E>,
        mut not_run: Option<&mut Stages<E>>,
    ) -> bool {
        let stop = |current: &mut Current<T, E>, not_run: Option<&mut Stages<E>>| {
            let current = std::mem::replace(current, Current::Root(None));
            (current, not_run.map(Stages::take_all).unwrap_or_default())
        };
        match run.run(current.any(), step) {
            Flow::Ready(new) => current.replace(new),
            Flow::Wait(on, new) => {
                current.replace(new);
                if !same_chain(&on, this) {
                    let (current, not_run) = stop(current, not_run);
                    Self::wait_on(this, current, not_run, on);
                    return false;
                }
                drop(on);
                current.slot().fail(E::from(Failure::msg(WAITS_ON_ITSELF)));
            }
            Flow::WaitThen(on, new, then) => {
                current.replace(new);
                if !same_chain(&on, this) {
                    let (current, not_run) = stop(current, not_run);
                    Self::wait_on_then(this, current, not_run, on, then);
                    return false;
                }
                // `then` runs first on the result that comes (see `stage::RunThen`).
                match not_run.as_deref_mut() {
                    Some(not_run) => not_run.push_front(then),
                    None => this.lock().stages.push_front(then),
                }
                drop(on);
                current.slot().fail(E::from(Failure::msg(WAITS_ON_ITSELF)));
            }
        }
        if run_loop::has_queued() {
            let (current, not_run) = stop(current, not_run);
            Self::let_the_queue_go_first(this, current, not_run);
            return false;
        }
        true
    }

    /// Every stage has run: the chain fires with the result in `current`.
    #[inline]
    pub(super) fn park(&self, mut inner: Guard<'_, Parts<T, E>>, mut current: Current<T, E>) {
        // A cancel remembered while the stages ran has nothing left to cancel here; if it was
        // meant for the chain waiting on this one too, that chain takes it over.
        let passed_on = match inner.phase {
            Phase::Running { cancel } => cancel.passed_on(),
            _ => Remembered::NONE,
        };
        inner.phase.move_on(Phase::Fired {
            cancel: Remembered::NONE,
        });
        if matches!(inner.listener, Listener::Nobody) {
            // The usual case: the Deferred at the end takes the result when it asks. (A chain
            // that waits on this one from later on takes the remembered cancel with it.)
            inner.phase.move_on(Phase::Fired { cancel: passed_on });
            inner.keep_result(current);
            drop(inner);
            return fired_event();
        }
        match std::mem::replace(&mut inner.listener, Listener::Nobody) {
            Listener::Nobody => {
                inner.phase.move_on(Phase::Fired { cancel: passed_on });
                inner.keep_result(current);
                drop(inner);
                fired_event();
            }
            Listener::Task(waker) => {
                inner.keep_result(current);
                drop(inner);
                fired_event();
                waker.wake();
            }
            // Rule 5: nobody can ever see this result; a failure in it is reported. (A chain
            // that handed its wait over gets no result: it would be nobody's too.)
            Listener::Gone | Listener::HandedOver => {
                inner.phase.move_on(Phase::Done);
                drop(inner);
                fired_event();
                current.slot().report();
            }
            Listener::Forward(outer) => {
                let upper = link_to_cancel(outer.clone());
                inner.phase.move_on(Phase::Passed(upper));
                drop(inner);
                fired_event();
                super::arrive(outer, current.slot(), passed_on);
            }
            // A fan-in's input: no chain waits on this one, so a remembered cancel ends here.
            Listener::FanIn(fan_in, index) => {
                inner.phase.move_on(Phase::Done);
                drop(inner);
                fired_event();
                run_loop::arriving(|| fan_in.arrive(index, current.slot()));
            }
        }
    }

    /// Keeps the result so far of a run that stops, and puts the stages it took and has not
    /// run (`drive_all`) back at the front of the list, before those added meanwhile.
    fn keep(&self, current: Current<T, E>, not_run: Stages<E>) -> Guard<'_, Parts<T, E>> {
        let mut inner = self.lock();
        inner.keep_result(current);
        inner.stages.put_back(not_run);
        inner
    }

    /// The run stops because a step fired other chains, whose deliveries are queued on this
    /// thread: they go first, as soon as the step that fired them returned, and this run goes
    /// on after them (Twisted's order for a Deferred fired from a callback).
    pub(super) fn let_the_queue_go_first(
        this: &ChainPtr<Self>,
        current: Current<T, E>,
        not_run: Stages<E>,
    ) {
        drop(this.keep(current, not_run));
        super::super::enqueue(this.clone());
    }

    /// The run stops because the stage it ran returned `on`, a pending Deferred: the chain
    /// waits on it, and its result will land in `current`.
    pub(super) fn wait_on(
        this: &ChainPtr<Self>,
        current: Current<T, E>,
        not_run: Stages<E>,
        on: ChainPtr<dyn AnyChain<E>>,
    ) {
        let inner = this.keep(current, not_run);
        Self::wait(this, inner, on);
    }

    /// [`wait_on`](Self::wait_on), with `then` to run first on the result that comes (see
    /// `stage::RunThen`): put at the front of the list under the same lock.
    fn wait_on_then(
        this: &ChainPtr<Self>,
        current: Current<T, E>,
        not_run: Stages<E>,
        on: ChainPtr<dyn AnyChain<E>>,
        then: Added<E>,
    ) {
        let mut inner = this.keep(current, not_run);
        inner.stages.push_front(then);
        Self::wait(this, inner, on);
    }

    /// The chain, whose lock the caller holds, waits on `on`.
    fn wait(
        this: &ChainPtr<Self>,
        mut inner: Guard<'_, Parts<T, E>>,
        on: ChainPtr<dyn AnyChain<E>>,
    ) {
        let cancel_now = match inner.phase {
            Phase::Running { cancel } => cancel.get(),
            _ => None,
        };
        inner.phase.move_on(Phase::Waiting {
            cancel: Remembered::NONE,
            on: link_to_cancel(on.clone()),
        });
        // A relay — no stage left to run, no cancel to pass on, and a chain waiting on this one
        // — hands `on` to that chain (see `hand_over`).
        let relay = cancel_now.is_none() && inner.stages.is_empty();
        let outer = match std::mem::replace(&mut inner.listener, Listener::Nobody) {
            Listener::Forward(outer) if relay && !same_chain(&outer, &on) => {
                inner.listener = Listener::HandedOver;
                Some(outer)
            }
            listener => {
                inner.listener = listener;
                None
            }
        };
        drop(inner);
        // After the lock: a subscriber's code runs here (and may look at this chain).
        crate::trace::chain_event!("waiting on another chain");
        if let Some(outer) = outer {
            return Self::hand_over(this, outer, on);
        }
        on.forward_to(erase_chain(this.clone()));
        if let Some(outer_chains) = cancel_now {
            // Walk from this chain, not from `on`: if `on` has fired meanwhile (its result is on
            // its way here), the walk leaves the cancel remembered here, for the next Deferred;
            // if this chain has fired too, with the chain waiting on it.
            CancelHandle::new(erase_cancel(this.clone())).cancel_for(outer_chains);
        }
    }

    /// This chain has run its last stage, which returned `on`; `outer` waits on this chain, and
    /// would take `on`'s result as it is. So `outer` waits on `on` itself, and `on` hands its
    /// result straight there: in a run of `chain!` steps each returning a pending Deferred, the
    /// result of the last goes to the first in one hop (not back through every chain between),
    /// and each chain between is freed as soon as it has handed over, not when the run ends.
    ///
    /// This chain stays waiting on `on`, for a cancel that reaches it (through a
    /// `CancelHandle`): it goes on to `on`, as before. If `outer` stopped waiting on this chain
    /// meanwhile (a cancel broke a cycle: it has forgotten this chain as its waiter), this chain
    /// waits on `on` as any other would, for nobody.
    fn hand_over(
        this: &ChainPtr<Self>,
        outer: ChainPtr<dyn AnyChain<E>>,
        on: ChainPtr<dyn AnyChain<E>>,
    ) {
        if outer.wait_instead(ChainPtr::as_ptr(this).cast(), on.clone()) {
            on.forward_to(outer);
        } else {
            let mut inner = this.lock();
            if matches!(inner.listener, Listener::HandedOver) {
                inner.listener = Listener::Nobody;
            }
            drop(inner);
            on.forward_to(erase_chain(this.clone()));
        }
    }
}

impl<T, E> Delivery for Chain<T, E>
where
    T: Sendable + 'static,
    E: FromFailure + Sendable + 'static,
{
    fn deliverer(&self) -> fn(ChainPtr<dyn Delivery>) {
        |delivery| Chain::<T, E>::deliver(super::super::delivery_to_chain(delivery))
    }
}

impl<T, E> Chain<T, E>
where
    T: Sendable + 'static,
    E: FromFailure + Sendable + 'static,
{
    /// A run queued on this thread's run loop: the root's result, the result that arrived from
    /// the Deferred the chain waited on, or the last result of a run that let the queue go
    /// first, is in the chain.
    pub(super) fn deliver(this: ChainPtr<Self>) {
        let mut inner = this.lock();
        let current = inner.take_current();
        match inner.stages.pop_front() {
            Some(first) => {
                drop(inner);
                Self::drive(&this, current, first);
            }
            None => this.park(inner, current),
        }
    }

    /// The result of the Deferred this chain waits on, in `from`: the chain goes on (see
    /// [`AnyChain::arriver`]).
    pub(super) fn resume(this: ChainPtr<Self>, from: &mut dyn Slot<E>, passed_on: Remembered) {
        let mut inner = this.lock();
        if !matches!(inner.phase, Phase::Waiting { .. }) {
            // This chain stopped waiting (a cancel broke the cycle it was in, see `break_wait`)
            // while the result was on its way: nobody will see it.
            drop(inner);
            return from.report();
        }
        let on = inner.phase.stop_waiting(passed_on);
        inner.result.slot().fill_from(from);
        drop(inner);
        drop(on);
        if run_loop::is_running() {
            super::super::enqueue(this);
        } else {
            run_loop::run(move || Self::deliver(this));
        }
    }
}

impl<T, E> Chain<T, E>
where
    T: Sendable + 'static,
    E: FromFailure + Sendable + 'static,
{
    /// [`resume`](Chain::resume) with the result in `held`, a slot that reports the failures
    /// its value holds if nobody reads it (`stage::HoldsFailures`): with no step left to take
    /// the value, this chain keeps that slot as its result and fires with it at once, so that
    /// its end, dropped unread, still reports them; a step left takes the value as from any
    /// other slot.
    #[cold]
    pub(super) fn resume_held(
        this: ChainPtr<Self>,
        mut held: Box<dyn Slot<E>>,
        passed_on: Remembered,
    ) {
        let mut inner = this.lock();
        if !matches!(inner.phase, Phase::Waiting { .. }) {
            // As `resume`: nobody will see it.
            drop(inner);
            return held.report();
        }
        if !inner.stages.is_empty() {
            drop(inner);
            return Self::resume(this, &mut *held, passed_on);
        }
        let on = inner.phase.stop_waiting(passed_on);
        // The slot the result would have landed in: empty.
        let empty = inner.take_current();
        this.park(inner, Current::Other(held));
        drop(empty);
        drop(on);
    }
}

/// The event of a chain whose stages have all run, emitted once its lock is released (a
/// subscriber's code runs in it, and may look at the chain).
#[inline(always)]
fn fired_event() {
    crate::trace::chain_event!("chain fired: every step ran");
}
