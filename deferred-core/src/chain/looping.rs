//! `LoopingCall`: call a function every interval on a [`Clock`] (Twisted's `task.LoopingCall`).
//!
//! As Twisted's: the calls are timed from the start, not from each other, so they do not drift;
//! a call that takes longer than the interval (its Deferred fires late) makes the loop skip the
//! calls it missed and go on at the next multiple of the interval from the start; the next call
//! is only scheduled once the current one's Deferred has fired.

use std::fmt;
use std::panic::Location;
use std::time::Duration;

use super::maybe::maybe_deferred_at;
use super::pending::cancel::CancelHandle;
use super::{Canceller, Clock, Deferred, IntoDeferred, Lock, Ptr, Resolver, Sendable, Shareable};
use crate::failure::Failure;

/// A function called every interval on a clock (Twisted's `task.LoopingCall`). Clones share
/// one loop.
///
/// [`start`](LoopingCall::start) gives a Deferred that fires (with `()`) when
/// [`stop`](LoopingCall::stop) is called, or fails with the failure of a call. The rules, as in
/// Twisted:
///
/// 1. With `now`, the first call is made at once, inside `start`; without, one interval later.
/// 2. Calls are timed from the start time: call *n* is due at `start + n × interval`, whatever
///    the calls cost, so they do not drift.
/// 3. A call returns what a callback returns; when it returns a pending Deferred, the next call
///    is scheduled only when that fires. If it fires late — at or past the next due time — the
///    missed calls are skipped, and the loop goes on at the next due time after now (one that
///    falls exactly on now counts as missed, as in Twisted).
/// 4. A call that fails (returns `Err`, a Deferred that fails, or panics) stops the loop, and the
///    Deferred of `start` fails with that failure.
/// 5. `stop` cancels the next scheduled call and fires the Deferred of `start`; during a call
///    whose Deferred is pending, the loop stops when that fires. Stopping a loop that is not
///    running does nothing.
/// 6. Cancelling the Deferred of `start` stops the loop and cancels the call in flight; it fails
///    with [`Cancelled`](crate::Cancelled). A failure the cancelled call answers with, other
///    than a cancellation, is reported as unhandled (nobody else can see it).
/// 7. An interval of zero calls again as soon as each call's Deferred has fired (through the
///    clock, with no delay).
/// 8. A loop stopped during a call may be started again before that call's Deferred fires: the
///    new start is a run of its own. The call in flight still belongs to the run that made it:
///    when it fires, it fires (or fails) that run's Deferred, and schedules nothing; cancelling
///    that run's Deferred cancels it. The new run's calls are made and timed as if no call were
///    in flight.
/// 9. If the clock drops a scheduled call without making it (its loop stopped: an
///    [`InboxClock`](crate::InboxClock) whose inbox was dropped, a tokio clock whose runtime
///    was, a [`ManualClock`](crate::ManualClock) whose last handle was), the loop stops, and
///    the Deferred of `start` fails with [`NeverFired`](crate::NeverFired).
///
/// Dropping every handle does not stop a running loop (the clock holds it): stop it or cancel
/// its Deferred. The loop does not keep its clock: a `ManualClock` given to it (alone, or in an
/// `Arc` or an `Rc`) is held weakly, so the loop goes with the clock's last handle (rule 9).
///
/// ```
/// # extern crate deferred_core as deferred;
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
/// use std::time::Duration;
/// use deferred::{LoopingCall, ManualClock};
///
/// let clock = ManualClock::new();
/// let ticks = Arc::new(AtomicU32::new(0));
/// let counter = ticks.clone();
/// let heartbeat = LoopingCall::new(clock.clone(), move || {
///     counter.fetch_add(1, Ordering::SeqCst);
///     Ok(())
/// });
/// let done = heartbeat.start(Duration::from_secs(1), true); // the first call is made now
/// assert_eq!(ticks.load(Ordering::SeqCst), 1);
/// clock.advance(Duration::from_secs(3));
/// assert_eq!(ticks.load(Ordering::SeqCst), 4);
/// heartbeat.stop();
/// done.wait().unwrap();
/// ```
#[derive(Clone)]
pub struct LoopingCall {
    core: Ptr<dyn Looping>,
}

/// The loop, with its clock and function types erased.
trait Looping: Shareable {
    /// `None` if the loop is running already. `at`: where `start` was called, where the
    /// Deferred it gives is placed.
    fn start(
        self: Ptr<Self>,
        interval: Duration,
        now: bool,
        at: &'static Location<'static>,
    ) -> Option<Deferred<()>>;
    fn stop(&self);
    fn is_running(&self) -> bool;
    fn calls(&self) -> u64;
}

struct Core<C, F> {
    /// Held so that the call it schedules, which holds this, does not keep a `ManualClock`.
    clock: crate::clock::HeldClock<C>,
    /// Where the function was given (`LoopingCall::new`): the origin of a failure a call gives
    /// or raises, and the place of the loop's own step on each call's Deferred.
    made_at: &'static Location<'static>,
    state: Lock<State<F>>,
}

struct State<F> {
    /// The function, taken out while it runs (calls never overlap).
    f: Option<F>,
    /// A call of the run numbered so that came while another run's call had the function out
    /// (the loop was stopped and started again meanwhile): made when that call returns.
    due: Option<u64>,
    running: bool,
    interval: Duration,
    started_at: Duration,
    /// The next call, scheduled on the clock.
    timer: Option<Canceller>,
    /// How many scheduled calls came due (or were dropped by the clock) for the run they were
    /// scheduled by: a timer that fired before the thread that scheduled it stored it (on the
    /// clock's thread, before `call_later` returned) is not stored over the one after it.
    timers_spent: u64,
    /// The run `start` began last (rule 8).
    run: Run,
    /// Runs stopped during a call that is still in flight, which a new `start` has replaced:
    /// each ends when its call's Deferred fires (rule 8).
    ending: Vec<Run>,
    /// How many runs were started: the next run's number.
    runs: u64,
    /// How many calls were made.
    calls: u64,
}

/// One run of the loop, from a `start` to the firing of its Deferred.
#[derive(Default)]
struct Run {
    /// Which run this is (`State::runs` when it started): what its calls, its timers and its
    /// Deferred's canceller name it by.
    number: u64,
    /// The Deferred of `start`; `None` once it has fired or been cancelled.
    done: Option<Resolver<()>>,
    /// A call of this run is being made or is in flight (from `call` to `called`).
    calling: bool,
    /// The call in flight, while its Deferred is pending.
    in_flight: Option<CancelHandle>,
    /// The Deferred of `start` was cancelled: a call being made then is cancelled once it
    /// returns, and what it answers is the answer to that cancel.
    cancelled: bool,
}

impl<F> State<F> {
    fn new(f: F) -> State<F> {
        State {
            f: Some(f),
            due: None,
            running: false,
            interval: Duration::ZERO,
            started_at: Duration::ZERO,
            timer: None,
            timers_spent: 0,
            run: Run::default(),
            ending: Vec::new(),
            runs: 0,
            calls: 0,
        }
    }

    /// The run numbered `number`: the current one, or one still ending.
    fn run_mut(&mut self, number: u64) -> Option<&mut Run> {
        if self.run.number == number {
            return Some(&mut self.run);
        }
        self.ending.iter_mut().find(|run| run.number == number)
    }
}

impl LoopingCall {
    /// A loop that will call `f` on `clock`; nothing runs until [`start`](LoopingCall::start).
    /// `f` returns what a callback returns: a `Result`, or a Deferred the loop waits for. A
    /// failure a call gives or raises records this line as its origin.
    #[track_caller]
    pub fn new<C, F, R>(clock: C, f: F) -> LoopingCall
    where
        C: Clock + Shareable + 'static,
        F: FnMut() -> R + Sendable + 'static,
        R: IntoDeferred<Failure>,
        R::Value: Sendable + 'static,
    {
        LoopingCall {
            core: Ptr::new(Core {
                clock: crate::clock::HeldClock::new(clock),
                made_at: Location::caller(),
                state: Lock::new(State::new(f)),
            }),
        }
    }

    /// Starts calling every `interval`: with `now`, the first call is made at once, inside
    /// `start`, else one interval later; call *n* is due at `start + n × interval`, so calls do
    /// not drift. The Deferred fires when [`stop`](LoopingCall::stop) is called and fails when a
    /// call fails.
    ///
    /// An `interval` of zero makes each call due as soon as the one before it has finished (its
    /// Deferred, if it gave one, has fired): on a [`ManualClock`](crate::ManualClock),
    /// `advance` then runs calls for ever (as Twisted's `Clock.advance` does), unless a call
    /// stops the loop or gives a Deferred still pending.
    ///
    /// # Panics
    ///
    /// If the loop is running already (Twisted asserts the same).
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use std::time::Duration;
    /// use deferred::{Failure, LoopingCall, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// let mut left = 2;
    /// let countdown = LoopingCall::new(clock.clone(), move || {
    ///     left -= 1;
    ///     if left == 0 { Err(Failure::msg("liftoff")) } else { Ok(()) }
    /// });
    /// let done = countdown.start(Duration::from_secs(10), false); // first call in 10 s
    /// clock.advance(Duration::from_secs(20));
    /// assert_eq!(done.wait().unwrap_err().to_string(), "liftoff");
    /// assert!(!countdown.is_running());
    /// ```
    #[track_caller]
    pub fn start(&self, interval: Duration, now: bool) -> Deferred<()> {
        match self.core.clone().start(interval, now, Location::caller()) {
            Some(done) => done,
            None => panic!(
                "LoopingCall::start on a running loop: `stop` it first (the Deferred of the \
                 first `start` fires then), or use that Deferred"
            ),
        }
    }

    /// Stops the loop: the next call is cancelled and the Deferred of `start` fires; during a
    /// call whose Deferred is pending, the loop stops when that fires. Stopping a loop that is not
    /// running does nothing.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use std::time::Duration;
    /// use deferred::{LoopingCall, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// let idle = LoopingCall::new(clock.clone(), || Ok(()));
    /// let done = idle.start(Duration::from_secs(1), false);
    /// idle.stop();
    /// assert_eq!(clock.pending(), 0);
    /// done.wait().unwrap();
    /// ```
    pub fn stop(&self) {
        self.core.stop();
    }

    /// Whether the loop is running (started, not stopped, no call failed).
    pub fn is_running(&self) -> bool {
        self.core.is_running()
    }

    /// How many calls have been made since the loop was made.
    pub fn calls(&self) -> u64 {
        self.core.calls()
    }
}

impl fmt::Debug for LoopingCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopingCall")
            .field("running", &self.is_running())
            .field("calls", &self.calls())
            .finish()
    }
}

impl<C, F, R> Looping for Core<C, F>
where
    C: Clock + Shareable + 'static,
    F: FnMut() -> R + Sendable + 'static,
    R: IntoDeferred<Failure>,
    R::Value: Sendable + 'static,
{
    fn start(
        self: Ptr<Self>,
        interval: Duration,
        now: bool,
        at: &'static Location<'static>,
    ) -> Option<Deferred<()>> {
        let started_at = self.clock.now();
        let (done, number) = {
            let mut state = self.state.lock();
            if state.running {
                return None; // the caller panics, after the lock is released
            }
            let number = state.runs + 1;
            let weak = Ptr::downgrade(&self);
            let cancel: Canceller = Box::new(move || {
                if let Some(core) = weak.upgrade() {
                    core.cancel(number);
                }
            });
            let (done, resolver) = Deferred::pending_with(Some(cancel), at);
            resolver.held_by("LoopingCall::start");
            state.runs = number;
            state.running = true;
            state.interval = interval;
            state.started_at = started_at;
            let run = Run {
                number,
                done: Some(resolver),
                ..Run::default()
            };
            // Stopped during a call still in flight: that call ends the run it belongs to.
            // Any other run has ended (its `done` fired or failed when it stopped).
            let stopped = std::mem::replace(&mut state.run, run);
            debug_assert!(stopped.calling || stopped.done.is_none());
            if stopped.calling {
                state.ending.push(stopped);
            }
            (done, number)
        };
        if now {
            self.call(number);
        } else {
            self.schedule_from(number, started_at);
        }
        Some(done)
    }

    fn stop(&self) {
        let (timer, done) = {
            let mut state = self.state.lock();
            if !state.running {
                return;
            }
            state.running = false;
            // During a call, its end fires `done` (rule 5).
            let done = if state.run.calling {
                None
            } else {
                state.run.done.take()
            };
            (state.timer.take(), done)
        };
        if let Some(timer) = timer {
            timer();
        }
        if let Some(done) = done {
            done.callback(());
        }
    }

    fn is_running(&self) -> bool {
        self.state.lock().running
    }

    fn calls(&self) -> u64 {
        self.state.lock().calls
    }
}

impl<C, F, R> Core<C, F>
where
    C: Clock + Shareable + 'static,
    F: FnMut() -> R + Sendable + 'static,
    R: IntoDeferred<Failure>,
    R::Value: Sendable + 'static,
{
    /// A call of run `number` is due: make it, and schedule the next when its Deferred fires.
    fn call(self: Ptr<Self>, number: u64) {
        let mut f = {
            let mut state = self.state.lock();
            if !state.running || state.run.number != number {
                return; // stopped (or stopped and started again) as the call came due
            }
            state.timer = None;
            state.timers_spent += 1;
            let Some(f) = state.f.take() else {
                // Another run's call is running the function (this loop was stopped and
                // started again meanwhile, by that call or another thread): this call is
                // made when that one returns (rule 8).
                state.due = Some(number);
                return;
            };
            state.run.calling = true;
            state.calls += 1;
            f
        };
        let outcome = maybe_deferred_at(self.made_at, &mut f);
        let due = {
            let mut state = self.state.lock();
            state.f = Some(f);
            state.due.take()
        };
        if !outcome.is_fired() {
            let flight = outcome.cancel_handle();
            let mut state = self.state.lock();
            match state.run_mut(number) {
                // Cancelled while the call was being made (from the call itself, or another
                // thread): the cancel found no call in flight, so the call is cancelled here.
                Some(run) if run.cancelled => {
                    drop(state);
                    flight.cancel_from(None);
                }
                Some(run) => run.in_flight = Some(flight),
                None => {}
            }
        }
        let core = self.clone();
        drop(outcome.add_both_at(self.made_at, move |result| {
            core.called(number, result.map(drop));
            Ok::<(), Failure>(())
        }));
        if let Some(due) = due {
            self.call(due);
        }
    }

    /// The Deferred of a call of run `number` fired.
    fn called(self: Ptr<Self>, number: u64, result: Result<(), Failure>) {
        let mut state = self.state.lock();
        if state.run.number == number {
            state.run.calling = false;
            state.run.in_flight = None;
            if result.is_err() {
                state.running = false;
            }
            if state.running {
                drop(state);
                let now = self.clock.now();
                return self.schedule_from(number, now);
            }
            // Stopped during the call (rule 5), or failed (rule 4).
            let run = std::mem::take(&mut state.run.done);
            let cancelled = state.run.cancelled;
            drop(state);
            return end_run(run, cancelled, result);
        }
        // A run stopped during this call and replaced by a new `start` (rule 8).
        let Some(at) = state.ending.iter().position(|run| run.number == number) else {
            return;
        };
        let run = state.ending.swap_remove(at);
        drop(state);
        end_run(run.done, run.cancelled, result);
    }

    /// Schedules the next call of run `number` at the first due time after `when` (rules 2
    /// and 3; Twisted's `_scheduleFrom`).
    fn schedule_from(self: Ptr<Self>, number: u64, when: Duration) {
        let (interval, started_at, spent) = {
            let state = self.state.lock();
            (state.interval, state.started_at, state.timers_spent)
        };
        let delay = if interval.is_zero() {
            Duration::ZERO
        } else {
            let running_for = when.saturating_sub(started_at).as_nanos();
            // In nanoseconds as `u128`: a run (or an interval) past 2^64 ns (585 years) would
            // not fit a `u64`.
            let left = interval.as_nanos() - running_for % interval.as_nanos();
            Duration::new((left / 1_000_000_000) as u64, (left % 1_000_000_000) as u32)
        };
        let mut due = Due {
            core: Some(self.clone()),
            number,
        };
        let timer = self.clock.call_later(
            delay,
            Box::new(move || {
                if let Some(core) = due.core.take() {
                    core.call(number);
                }
            }),
        );
        let mut state = self.state.lock();
        if state.running && state.run.number == number {
            // Unless the timer has fired already (on the clock's thread, before `call_later`
            // returned here): the call it made has scheduled the next one, which is the one
            // `stop` or a cancel must take off the clock (rules 5 and 6).
            if state.timers_spent == spent {
                state.timer = Some(Box::new(move || timer.cancel()));
                return;
            }
            drop(state);
            drop(timer); // spent; dropped outside the lock, as any handle of the clock's
            return;
        }
        // Stopped meanwhile (from another thread, between the call's end and now), or
        // started again: the stop, which found no call being made, has fired `done`.
        drop(state);
        timer.cancel();
    }

    /// The Deferred of run `number` was cancelled (rule 6).
    fn cancel(&self, number: u64) {
        let (timer, in_flight, done) = {
            let mut state = self.state.lock();
            let current = state.run.number == number;
            if current {
                state.running = false;
            }
            let timer = if current { state.timer.take() } else { None };
            let Some(run) = state.run_mut(number) else {
                return; // it ended already
            };
            run.cancelled = true;
            (timer, run.in_flight.take(), run.done.take())
        };
        if let Some(timer) = timer {
            timer();
        }
        // Failed here, in the canceller: dropping the resolver would fail it with `NeverFired`.
        if let Some(done) = done {
            drop(done.settle(Err(Failure::cancelled_in_canceller())));
        }
        if let Some(in_flight) = in_flight {
            in_flight.cancel_in_canceller();
        }
    }
}

impl<C, F> Core<C, F> {
    /// The clock dropped the next call of run `number` without making it: its loop stopped
    /// (an `InboxClock` whose inbox was dropped, a tokio clock whose runtime was). If the run
    /// still waited for that call, it ends (rule 9): its Deferred's resolver is dropped, which
    /// fails it with `NeverFired`.
    fn call_dropped(&self, number: u64) {
        let done = {
            let mut state = self.state.lock();
            if !state.running || state.run.number != number || state.run.calling {
                return; // stopped or cancelled (which cancelled the call), or started again
            }
            state.running = false;
            state.timer = None;
            state.timers_spent += 1;
            state.run.done.take()
        };
        drop(done);
    }
}

/// The next call of a run, as given to the clock: if the clock drops it without making it,
/// the run hears of it (`Core::call_dropped`).
struct Due<C, F>
where
    C: Clock + Shareable + 'static,
{
    core: Option<Ptr<Core<C, F>>>,
    number: u64,
}

impl<C, F> Drop for Due<C, F>
where
    C: Clock + Shareable + 'static,
{
    fn drop(&mut self) {
        if let Some(core) = self.core.take() {
            core.call_dropped(self.number);
        }
    }
}

/// A run ends with its last call's `result`: its Deferred fires with it (rules 4 and 5), or,
/// if it was cancelled (its Deferred failed already), a failure that is not the answer to that
/// cancel is reported (rule 6).
fn end_run(done: Option<Resolver<()>>, cancelled: bool, result: Result<(), Failure>) {
    match (done, result) {
        (Some(done), result) => drop(done.settle(result)),
        (None, Err(failure)) if !(cancelled && failure.is_cancelled()) => {
            crate::unhandled::report_failure(failure);
        }
        (None, _) => {}
    }
}
