//! `add_timeout`: give a Deferred a deadline on a [`Clock`] (Twisted's `addTimeout`).
//!
//! How it works, as in Twisted: a timer is scheduled that cancels the chain when it runs, and a
//! step is added that, when the result comes, cancels the timer and — only if the timer is what
//! cancelled the chain — turns the cancellation into a [`TimedOut`] failure. So:
//!
//! - only the steps added before `add_timeout` are timed ("covered"): they are what gets cancelled
//!   (the steps added after it go on a new link, see `Deferred::in_a_new_link`);
//! - a result that arrives first cancels the timer, and nothing later is ever cancelled by it;
//! - a cancel from elsewhere before the deadline stays a plain `Cancelled`;
//! - what the cancellation produced is respected: a canceller that succeeds, or fails with its
//!   own error, keeps that outcome.

use std::time::Duration;

use super::Clock;
use super::Deferred;
use super::{Flag, Ptr, Sendable};
use crate::bounds::FromFailure;
use crate::failure::{Failure, TimedOut};

impl<T, E> Deferred<T, E>
where
    T: Sendable + 'static,
    E: FromFailure + Sendable + 'static,
{
    /// Fails the chain with [`TimedOut`] if it has not fired `after` from now on `clock`
    /// (Twisted's `addTimeout`): when the deadline comes, the chain is [cancelled](Deferred::cancel)
    /// — stopping the work it waits on — and the resulting [`Cancelled`](crate::Cancelled) failure
    /// becomes a `TimedOut` that says the duration. A result that arrives first cancels the timer.
    ///
    /// The deadline is inclusive: the timer runs when the clock reaches it exactly. Only the steps
    /// added before this call are timed. If the chain's canceller succeeds, or fails with an error
    /// of its own, that outcome is kept. With an error type other than [`Failure`] (or, with the
    /// feature `anyhow`, `anyhow::Error`), which cannot say it is a cancellation, any failure
    /// that follows the deadline becomes the timeout.
    /// The deadline is a call on `clock`: a clock that drops the call without running it (a
    /// `TokioClock` whose runtime shut down, an `InboxClock` whose inbox
    /// stopped) leaves the chain untimed.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use std::time::Duration;
    /// use deferred::{Deferred, ManualClock, TimedOut};
    ///
    /// let clock = ManualClock::new();
    /// let (query, _resolver) = Deferred::<u32>::with_canceller(|| println!("query aborted"));
    /// let answer = query
    ///     .add_timeout(Duration::from_secs(5), &clock)
    ///     .add_errback(|f| if f.is::<TimedOut>() { Ok(0) } else { Err(f) });
    ///
    /// clock.advance(Duration::from_secs(5)); // prints "query aborted"
    /// assert_eq!(answer.wait().unwrap(), 0);
    ///
    /// let (fast, resolver) = Deferred::<u32>::pending();
    /// let fast = fast.add_timeout(Duration::from_secs(5), &clock);
    /// resolver.callback(1); // in time: the timer is cancelled
    /// assert_eq!(clock.pending(), 0);
    /// assert_eq!(fast.wait().unwrap(), 1);
    /// ```
    #[track_caller]
    pub fn add_timeout<C: Clock + ?Sized>(self, after: Duration, clock: &C) -> Deferred<T, E> {
        self.add_timeout_with(after, clock, cancellation_to_timeout)
    }

    /// [`add_timeout`](Deferred::add_timeout) with your own translation of the outcome
    /// (Twisted's `onTimeoutCancel`): when the deadline has cancelled the chain, `on_timeout`
    /// receives whatever the cancellation produced and the duration, and what it returns becomes
    /// the result. It is not called when the result arrives in time, nor after a cancel from
    /// elsewhere.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use std::time::Duration;
    /// use deferred::{Deferred, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// let (d, _resolver) = Deferred::<String>::pending();
    /// let d = d.add_timeout_with(Duration::from_secs(1), &clock, |_, after| {
    ///     Ok(format!("gave up after {after:?}"))
    /// });
    /// clock.advance(Duration::from_secs(1));
    /// assert_eq!(d.wait().unwrap(), "gave up after 1s");
    /// ```
    #[track_caller]
    pub fn add_timeout_with<C, F>(self, after: Duration, clock: &C, on_timeout: F) -> Deferred<T, E>
    where
        C: Clock + ?Sized,
        F: FnOnce(Result<T, E>, Duration) -> Result<T, E> + Sendable + 'static,
    {
        if self.is_fired() {
            // The result is here: no deadline can pass before it.
            return self;
        }
        let timed_out = Ptr::new(Flag::new());
        let deadline = timed_out.clone();
        // The covered steps end the chain they are in: the steps added after `add_timeout` go
        // on a new link that waits on it. So the timer's cancel can only ever reach the covered
        // steps — even if it lands while one of them runs (a pending chain remembers such a
        // cancel for the next Deferred one of its steps returns) or runs late, on another
        // thread, after the result came — while a cancel of the whole chain still walks up to
        // them.
        let chain = self.cancel_handle();
        let timer = clock.call_later(
            after,
            Box::new(move || {
                deadline.set();
                chain.cancel_from(None);
            }),
        );
        self.add_both(move |result| {
            timer.cancel();
            if timed_out.get() {
                on_timeout(result, after)
            } else {
                result
            }
        })
        .in_a_new_link()
        .made_by("add_timeout")
    }
}

/// Twisted's default `onTimeoutCancel`: a cancellation becomes a timeout; anything else (a
/// success or another failure produced by the canceller) passes through.
fn cancellation_to_timeout<T, E>(result: Result<T, E>, after: Duration) -> Result<T, E>
where
    E: FromFailure + 'static,
{
    match result {
        Err(error) if is_cancellation(&error) => Err(E::from(Failure::new(TimedOut::new(after)))),
        other => other,
    }
}

/// Whether `error` is a cancellation; an error type that cannot say (neither `Failure` nor, with
/// the feature `anyhow`, `anyhow::Error`) counts any of its errors after the deadline as one.
fn is_cancellation<E: 'static>(error: &E) -> bool {
    crate::failure::is_cancellation(error).unwrap_or(true)
}
