//! `retry` and `retry_if`: call again after a failure, waiting longer each time, on a [`Clock`].

use std::panic::{AssertUnwindSafe, Location, catch_unwind};
use std::time::Duration;

use super::maybe::maybe_deferred_at;
use super::pending::cancel::CancelHandle;
use super::{Canceller, Clock, Deferred, IntoDeferred, Lock, Ptr, Resolver, Sendable, Shareable};
use crate::backoff::{Delays, GaveUp, RetryError, RetryPolicy};
use crate::failure::Failure;
use crate::unhandled;

/// Calls `attempt` until it succeeds, waiting on `clock` between attempts as `policy` says
/// (exponential backoff with jitter), and gives up when the policy's attempts or deadline run
/// out; every failure is retried (choose which with [`retry_if`]). `attempt` returns what a
/// callback returns: a `Result`, or a Deferred the retry waits for.
///
/// The rules:
///
/// 1. The first attempt is made at once, inside `retry`; each next one after the policy's next
///    wait ([`RetryPolicy::delays`]: with a seed, exactly those), timed from when the failure
///    arrived. The next attempt starts only once the one before has failed.
/// 2. The result is the first success. When the retry gives up, it fails with a [`RetryError`]
///    holding every attempt's failure in order, and why ([`GaveUp`]): the attempts allowed are
///    used up, the next attempt would start past the deadline, or the failure is not one to retry.
/// 3. Cancelling the result cancels the attempt in flight, or the wait for the next one (no
///    attempt starts after it; one that another thread, the clock's, is starting as the cancel
///    lands is cancelled as soon as `attempt` returns), and fails it with
///    [`Cancelled`](crate::Cancelled). A failure the cancelled attempt answers with, other than
///    a cancellation, is reported as unhandled (nobody else can see it), and is not offered to
///    the predicate. One that arrived just before the cancel, from another thread, and was
///    being offered to the predicate as the cancel landed is reported too (the predicate's
///    answer is not acted on). A cancel is a cancel of a
///    pending result (rule 7 of [`Deferred`](crate::Deferred)): one that lands, from another
///    thread, while the retry is giving up (the last attempt has failed and its [`RetryError`]
///    is on its way) wins: the result fails with [`Cancelled`](crate::Cancelled), and the
///    `RetryError` is reported as unhandled instead of delivered. Once the result holds the
///    `RetryError`, a cancel does nothing.
/// 4. A panic in `attempt` is an attempt's failure ([`Panicked`](crate::Panicked)).
/// 5. A cancellation is never retried. An attempt that fails with
///    [`Cancelled`](crate::Cancelled) — its work was stopped, by a cancel of this retry, by a
///    deadline on it ([`add_timeout`](crate::Deferred::add_timeout)) or by whoever else holds the
///    work — ends the retry with that failure as it is (so `is_cancelled()` still says so), and
///    no attempt follows. (A catch-all `catch |_| retry()` of your own would restart cancelled
///    work: trap the errors to retry instead, `catch |e: Refused| ...`.) A
///    [`TimedOut`](crate::TimedOut) from a deadline you put on each attempt is an attempt's
///    failure like any other, retried if the predicate says so.
/// 6. If the clock drops the wait for the next attempt without making it (an
///    `InboxClock` whose inbox stopped, a tokio clock whose runtime shut down, a `ManualClock`
///    whose last handle was dropped: the retry holds one given to it, alone or in an `Arc` or
///    an `Rc`, weakly), the result fails with [`NeverFired`](crate::NeverFired).
///
/// ```
/// # extern crate deferred_core as deferred;
/// use std::time::Duration;
/// use deferred::{retry, Failure, ManualClock, RetryPolicy};
///
/// let clock = ManualClock::new();
/// let policy = RetryPolicy::exponential(Duration::from_secs(1)).jitter(0.0).max_attempts(5);
/// let mut calls = 0;
/// let connected = retry(clock.clone(), policy, move || {
///     calls += 1;
///     if calls < 3 { Err(Failure::msg("connection refused")) } else { Ok(calls) }
/// });
/// clock.advance(Duration::from_secs(1)); // the second attempt: fails
/// assert!(!connected.is_fired());
/// clock.advance(Duration::from_secs(2)); // the third: succeeds
/// assert_eq!(connected.wait().unwrap(), 3);
/// ```
#[track_caller]
pub fn retry<C, F, R>(clock: C, policy: RetryPolicy, attempt: F) -> Deferred<R::Value>
where
    C: Clock + Shareable + 'static,
    F: FnMut() -> R + Sendable + 'static,
    R: IntoDeferred<Failure>,
    R::Value: Sendable + 'static,
{
    retry_if(clock, policy, |_: &Failure| true, attempt)
}

/// [`retry`], retrying only the failures `should_retry` accepts: another failure ends the retry
/// at once (with a [`RetryError`] whose reason is [`GaveUp::NotRetryable`]). A panic in
/// `should_retry` counts as a no.
///
/// ```
/// # extern crate deferred_core as deferred;
/// use std::time::Duration;
/// use deferred::{retry_if, Failure, GaveUp, ManualClock, RetryError, RetryPolicy, TimedOut};
///
/// let clock = ManualClock::new();
/// let policy = RetryPolicy::exponential(Duration::from_secs(1)).seed(1);
/// let mut calls = 0;
/// let fetched = retry_if(clock.clone(), policy, |f: &Failure| f.is::<TimedOut>(), move || {
///     calls += 1;
///     if calls == 1 { Err::<(), _>(Failure::new(TimedOut::new(Duration::from_secs(5)))) }
///     else { Err(Failure::msg("404 not found")) }
/// });
/// clock.advance(Duration::from_secs(1)); // the timeout was retried; the 404 is not
/// let error = fetched.wait().unwrap_err().trap::<RetryError>().unwrap();
/// assert_eq!((error.reason, error.attempts.len()), (GaveUp::NotRetryable, 2));
/// ```
#[track_caller]
pub fn retry_if<C, P, F, R>(
    clock: C,
    policy: RetryPolicy,
    should_retry: P,
    attempt: F,
) -> Deferred<R::Value>
where
    C: Clock + Shareable + 'static,
    P: Fn(&Failure) -> bool + Shareable + 'static,
    F: FnMut() -> R + Sendable + 'static,
    R: IntoDeferred<Failure>,
    R::Value: Sendable + 'static,
{
    let started_at = clock.now();
    let core = Ptr::new(Core {
        at: Location::caller(),
        state: Lock::new(State {
            failures: Vec::new(),
            delays: policy.delays(),
            timer: None,
            made: 0,
            in_flight: None,
            done: None,
        }),
        clock: crate::clock::HeldClock::new(clock),
        attempt: Lock::new(Some(attempt)),
        should_retry,
        policy,
        started_at,
    });
    let weak = Ptr::downgrade(&core);
    let (result, resolver) = Deferred::with_canceller(move || {
        if let Some(core) = weak.upgrade() {
            core.cancel();
        }
    });
    resolver.held_by("retry");
    core.state.lock().done = Some(resolver);
    core.run();
    result
}

struct Core<C, P, F, T: 'static> {
    /// Where `retry` was called: the origin of a failure an attempt gives or raises (and of the
    /// `RetryError`), and the place of the retry's own step on each attempt's Deferred.
    at: &'static Location<'static>,
    /// Held so that the wait it schedules, which holds this, does not keep a `ManualClock`.
    clock: crate::clock::HeldClock<C>,
    /// The attempt function, taken out while it runs (attempts never overlap).
    attempt: Lock<Option<F>>,
    should_retry: P,
    policy: RetryPolicy,
    started_at: Duration,
    state: Lock<State<T>>,
}

struct State<T: 'static> {
    failures: Vec<Failure>,
    delays: Delays,
    /// The wait for the next attempt, scheduled on the clock.
    timer: Option<Canceller>,
    /// How many attempts were started: a wait whose timer fired (and started the next attempt)
    /// before the step that scheduled it stored it is not stored over the waits after it.
    made: u64,
    /// The attempt in flight, while its Deferred is pending.
    in_flight: Option<CancelHandle>,
    /// The result's resolver; `None` once fired or cancelled.
    done: Option<Resolver<T>>,
}

impl<C, P, F, R> Core<C, P, F, R::Value>
where
    C: Clock + Shareable + 'static,
    P: Fn(&Failure) -> bool + Shareable + 'static,
    F: FnMut() -> R + Sendable + 'static,
    R: IntoDeferred<Failure>,
    R::Value: Sendable + 'static,
{
    /// Makes an attempt (rule 1).
    fn run(self: Ptr<Self>) {
        {
            let mut state = self.state.lock();
            state.timer = None;
            if state.done.is_none() {
                return; // cancelled
            }
            state.made += 1;
        }
        let Some(mut attempt) = self.attempt.lock().take() else {
            return;
        };
        let outcome = maybe_deferred_at(self.at, &mut attempt);
        *self.attempt.lock() = Some(attempt);
        if !outcome.is_fired() {
            let mut state = self.state.lock();
            if state.done.is_some() {
                state.in_flight = Some(outcome.cancel_handle());
            } else {
                // Cancelled while the attempt was being made (by the attempt itself, or from
                // another thread): the cancel found nothing in flight, so cancel it here (rule 3).
                drop(state);
                outcome.cancel_handle().cancel_from(None);
            }
        }
        let core = self.clone();
        drop(outcome.add_both_at(self.at, move |result| {
            core.settled(result);
            Ok::<(), Failure>(())
        }));
    }

    /// An attempt's Deferred fired.
    fn settled(self: Ptr<Self>, result: Result<R::Value, Failure>) {
        let failure = match result {
            Ok(value) => {
                let done = {
                    let mut state = self.state.lock();
                    state.in_flight = None;
                    state.done.take()
                };
                if let Some(done) = done {
                    done.callback(value);
                }
                return;
            }
            Err(failure) => failure,
        };
        if failure.is_cancelled() {
            // Rule 5: the work was stopped; restarting it would undo the cancel.
            // (No wait is scheduled while an attempt is in flight.) If the retry itself was
            // cancelled, `done` is gone: this is the attempt's answer to that cancel.
            let done = {
                let mut state = self.state.lock();
                state.in_flight = None;
                state.done.take()
            };
            if let Some(done) = done {
                drop(done.settle(Err(failure)));
            }
            return;
        }
        if self.state.lock().done.is_none() {
            // The retry was cancelled, and the attempt answered its cancel with a failure of
            // its own: nobody else sees it (rule 3), and nobody is asked to retry it.
            return unhandled::report_failure(failure);
        }
        // User code: outside the lock. A panic is a no.
        let retryable =
            catch_unwind(AssertUnwindSafe(|| (self.should_retry)(&failure))).unwrap_or(false);
        let now = self.clock.now();
        let (wait, gave_up) = {
            let mut state = self.state.lock();
            state.in_flight = None;
            if state.done.is_none() {
                // Cancelled meanwhile (from another thread): as above.
                drop(state);
                return unhandled::report_failure(failure);
            }
            state.failures.push(failure);
            let next = state.delays.next();
            let reason = match next {
                _ if !retryable => Some(GaveUp::NotRetryable),
                None => Some(GaveUp::Attempts),
                Some(wait)
                    if self.policy.deadline_after().is_some_and(|deadline| {
                        now.saturating_sub(self.started_at).saturating_add(wait) > deadline
                    }) =>
                {
                    Some(GaveUp::Deadline)
                }
                Some(_) => None,
            };
            match reason {
                Some(reason) => {
                    let attempts = std::mem::take(&mut state.failures);
                    let done = state.done.take();
                    (
                        None,
                        done.map(|done| (done, RetryError { attempts, reason })),
                    )
                }
                None => (next, None),
            }
        };
        if let Some((done, error)) = gave_up {
            let mut failure = Failure::new(error);
            failure.raised_at(self.at);
            // A cancel that landed since `done` was taken (from another thread) found nothing
            // to stop, and failed the result with `Cancelled`: the give-up failure, refused,
            // is seen by nobody else, so it is reported (rule 3), not dropped.
            if let Err(Err(failure)) = done.settle(Err(failure)) {
                unhandled::report_failure(failure);
            }
            return;
        }
        let Some(wait) = wait else { return };
        let made = self.state.lock().made;
        let core = self.clone();
        let timer = self.clock.call_later(wait, Box::new(move || core.run()));
        let mut state = self.state.lock();
        if state.done.is_some() {
            // Unless the timer has fired already (on the clock's thread, before `call_later`
            // returned here) and the attempt it made has scheduled the next wait: that wait is
            // the one a cancel must stop (rule 3).
            if state.made == made {
                state.timer = Some(Box::new(move || timer.cancel()));
            }
        } else {
            drop(state);
            timer.cancel(); // cancelled meanwhile
        }
    }

    /// The result was cancelled (rule 3).
    fn cancel(&self) {
        let (timer, in_flight, done) = {
            let mut state = self.state.lock();
            (
                state.timer.take(),
                state.in_flight.take(),
                state.done.take(),
            )
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
