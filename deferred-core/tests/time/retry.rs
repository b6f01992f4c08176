// The tests of `retry` and `retry_if`, written once and included by tests/time.rs for each kind.
// Every test runs on a `ManualClock` with a seeded policy, so it is deterministic.

use deferred_core::{GaveUp, RetryError, RetryPolicy};
use kind::{retry, retry_if};

/// An attempt function that records the time of each attempt and fails `failures` times with
/// "attempt <n>", then succeeds with the attempt's number.
fn flaky(
    clock: &ManualClock,
    failures: u32,
) -> (impl FnMut() -> Result<u32, Failure> + Send + 'static, Times) {
    let times = Times::default();
    let (t, c) = (times.clone(), clock.clone());
    let mut n = 0;
    let f = move || {
        n += 1;
        t.push(c.now());
        if n <= failures {
            Err(Failure::msg(format!("attempt {n}")))
        } else {
            Ok(n)
        }
    };
    (f, times)
}

fn seeded() -> RetryPolicy {
    RetryPolicy::exponential(secs(1)).seed(42)
}

#[test]
fn retry_waits_exactly_the_policys_delays_between_attempts() {
    let clock = ManualClock::new();
    let policy = seeded().max_attempts(5);
    let waits: Vec<Duration> = policy.delays().collect();
    assert_eq!(waits.len(), 4);
    let (f, times) = flaky(&clock, 3);
    let d = retry(clock.clone(), policy, f);
    assert_eq!(times.get(), [secs(0)], "the first attempt is made at once");
    for wait in &waits[..3] {
        assert!(!d.is_fired());
        clock.advance(*wait);
    }
    assert_eq!(d.wait().unwrap(), 4);
    let mut expected = vec![secs(0)];
    for wait in &waits[..3] {
        expected.push(*expected.last().unwrap() + *wait);
    }
    assert_eq!(times.get(), expected);
    assert_eq!(clock.pending(), 0);
}

/// A clock in a `Box` (or behind any pointer) is that clock.
#[test]
fn retry_takes_a_boxed_clock() {
    let clock = ManualClock::new();
    let (f, times) = flaky(&clock, 1);
    let d = retry(Box::new(clock.clone()), seeded().max_attempts(2), f);
    clock.advance(secs(10));
    assert_eq!(d.wait().unwrap(), 2);
    assert_eq!(times.get().len(), 2);
}

#[test]
fn the_same_seed_gives_the_same_waits_and_jitter_stays_in_bounds() {
    let policy = RetryPolicy::exponential(secs(1))
        .jitter(0.5)
        .seed(9)
        .max_attempts(8);
    let a: Vec<_> = policy.delays().collect();
    assert_eq!(a, policy.delays().collect::<Vec<_>>());
    let other: Vec<_> = policy.clone().seed(10).delays().collect();
    assert_ne!(a, other);
    for (n, wait) in a.iter().enumerate() {
        let full = secs(1 << n);
        assert!(*wait <= full && *wait >= full / 2, "wait {n}: {wait:?}");
    }
    let exact: Vec<_> = RetryPolicy::exponential(ms(100))
        .jitter(0.0)
        .multiplier(3.0)
        .max_delay(secs(1))
        .max_attempts(6)
        .delays()
        .collect();
    assert_eq!(exact, [ms(100), ms(300), ms(900), secs(1), secs(1)]);
}

#[test]
fn retry_gives_up_after_the_attempts_allowed_with_every_failure_in_order() {
    let clock = ManualClock::new();
    let (f, times) = flaky(&clock, 10);
    let d = retry(clock.clone(), seeded().max_attempts(3), f);
    clock.advance(secs(10));
    assert_eq!(times.get().len(), 3);
    let error = d.wait().unwrap_err().trap::<RetryError>().unwrap();
    assert_eq!(error.reason, GaveUp::Attempts);
    let messages: Vec<_> = error.attempts.iter().map(|f| f.to_string()).collect();
    assert_eq!(messages, ["attempt 1", "attempt 2", "attempt 3"]);
    assert_eq!(clock.pending(), 0);
}

#[test]
fn one_attempt_allowed_gives_up_at_the_first_failure() {
    let clock = ManualClock::new();
    let (f, _times) = flaky(&clock, 1);
    let d = retry(clock.clone(), seeded().max_attempts(1), f);
    let error = d.wait().unwrap_err().trap::<RetryError>().unwrap();
    assert_eq!((error.reason, error.attempts.len()), (GaveUp::Attempts, 1));
}

#[test]
fn retry_gives_up_when_the_next_attempt_would_start_past_the_deadline() {
    let clock = ManualClock::new();
    let (f, times) = flaky(&clock, 100);
    // Waits 1, 2, 4, 8 s: attempts at 0, 1, 3, 7; the next would be at 15 > 10.
    let policy = RetryPolicy::exponential(secs(1))
        .jitter(0.0)
        .unlimited_attempts()
        .deadline(secs(10));
    let d = retry(clock.clone(), policy, f);
    clock.advance(secs(60));
    assert_eq!(times.get(), [0, 1, 3, 7].map(secs));
    let error = d.wait().unwrap_err().trap::<RetryError>().unwrap();
    assert_eq!((error.reason, error.attempts.len()), (GaveUp::Deadline, 4));
}

#[test]
fn retry_if_ends_at_a_failure_the_predicate_refuses() {
    let clock = ManualClock::new();
    let (f, times) = flaky(&clock, 10);
    let d = retry_if(
        clock.clone(),
        seeded(),
        |f: &Failure| f.to_string() != "attempt 2",
        f,
    );
    clock.advance(secs(60));
    assert_eq!(times.get().len(), 2);
    let error = d.wait().unwrap_err().trap::<RetryError>().unwrap();
    assert_eq!(
        (error.reason, error.attempts.len()),
        (GaveUp::NotRetryable, 2)
    );
}

#[test]
fn a_panicking_attempt_is_a_failure_and_a_panicking_predicate_a_no() {
    let clock = ManualClock::new();
    let mut n = 0;
    let d = retry(clock.clone(), seeded().jitter(0.0), move || {
        n += 1;
        if n == 1 {
            panic!("attempt panicked");
        }
        Ok(n)
    });
    clock.advance(secs(1));
    assert_eq!(d.wait().unwrap(), 2);

    let d = retry_if(
        clock.clone(),
        seeded(),
        |_: &Failure| -> bool { panic!("predicate panicked") },
        || Err::<(), _>(Failure::msg("once")),
    );
    let error = d.wait().unwrap_err().trap::<RetryError>().unwrap();
    assert_eq!(error.reason, GaveUp::NotRetryable);
}

#[test]
fn cancelling_during_the_wait_cancels_it_and_no_attempt_follows() {
    let clock = ManualClock::new();
    let (f, times) = flaky(&clock, 10);
    let d = retry(clock.clone(), seeded(), f);
    assert_eq!(clock.pending(), 1, "waiting for the second attempt");
    d.cancel();
    assert_eq!(clock.pending(), 0);
    clock.advance(secs(60));
    assert_eq!(times.get().len(), 1);
    assert!(d.wait().unwrap_err().is::<Cancelled>());
}

#[test]
fn cancelling_during_an_attempt_cancels_it_and_no_attempt_follows() {
    let clock = ManualClock::new();
    let cancels = Count::new();
    let attempts = Count::new();
    let kept = Kept::<u32>::default();
    let (c, a, k) = (cancels.clone(), attempts.clone(), kept.clone());
    let d = retry(clock.clone(), seeded(), move || {
        a.bump();
        let c = c.clone();
        let (d, r) = Deferred::<u32>::with_canceller(move || c.bump());
        k.lock().unwrap().push(r);
        d
    });
    assert_eq!(attempts.get(), 1);
    d.cancel();
    assert_eq!(cancels.get(), 1);
    clock.advance(secs(60));
    assert_eq!(attempts.get(), 1);
    assert!(d.wait().unwrap_err().is_cancelled());
}

#[test]
fn the_next_attempt_waits_for_a_pending_attempt_to_fail() {
    let clock = ManualClock::new();
    let pending: Arc<Mutex<Vec<kind::Resolver<u32>>>> = Arc::default();
    let times = Times::default();
    let (p, t, c) = (pending.clone(), times.clone(), clock.clone());
    let d = retry(clock.clone(), seeded().jitter(0.0), move || {
        t.push(c.now());
        let (d, r) = Deferred::<u32>::pending();
        p.lock().unwrap().push(r);
        d
    });
    clock.advance(secs(5));
    assert_eq!(times.get(), [secs(0)]);
    pending
        .lock()
        .unwrap()
        .pop()
        .unwrap()
        .errback(Failure::msg("slow failure"));
    clock.advance(secs(1)); // the wait is timed from the failure (at 5 s)
    assert_eq!(times.get(), [secs(0), secs(6)]);
    pending.lock().unwrap().pop().unwrap().callback(7);
    assert_eq!(d.wait().unwrap(), 7);
}

/// A catch-all that retries also restarts work that was cancelled: the library's own retry
/// never does. An attempt whose work was cancelled (here from elsewhere, through the attempt's
/// own handle) ends the retry with that cancellation, whatever the predicate says.
#[test]
fn a_cancelled_attempt_is_never_retried() {
    let clock = ManualClock::new();
    let attempts = Count::new();
    let handles: Arc<Mutex<Vec<kind::CancelHandle>>> = Arc::default();
    let kept = Kept::<u32>::default();
    let (a, h, k) = (attempts.clone(), handles.clone(), kept.clone());
    let d = retry_if(clock.clone(), seeded(), |_: &Failure| true, move || {
        a.bump();
        let (work, resolver) = Deferred::<u32>::pending();
        k.lock().unwrap().push(resolver);
        h.lock().unwrap().push(work.cancel_handle());
        work
    });
    assert_eq!(attempts.get(), 1);
    let first = handles.lock().unwrap().pop().unwrap();
    first.cancel(); // the user stopped the work itself
    clock.advance(secs(60));
    assert_eq!(attempts.get(), 1, "the cancelled work was not restarted");
    assert_eq!(clock.pending(), 0);
    assert!(d.wait().unwrap_err().is_cancelled());
}

/// A deadline on the retry (`add_timeout`) cancels it: the attempt in flight is cancelled, and
/// that cancellation — the retry's own doing — is not retried; no attempt starts after it.
#[test]
fn a_retry_under_a_deadline_makes_no_attempt_after_it() {
    let clock = ManualClock::new();
    let attempts = Count::new();
    let cancels = Count::new();
    let kept = Kept::<u32>::default();
    let (a, c, k) = (attempts.clone(), cancels.clone(), kept.clone());
    let mut n = 0;
    let d = retry(clock.clone(), seeded().jitter(0.0).unlimited_attempts(), move || {
        a.bump();
        n += 1;
        if n == 1 {
            return Deferred::fail(Failure::msg("refused"));
        }
        // The second attempt hangs until the deadline cancels it.
        let c = c.clone();
        let (work, resolver) = Deferred::<u32>::with_canceller(move || c.bump());
        k.lock().unwrap().push(resolver);
        work
    })
    .add_timeout(secs(4), &clock);
    clock.advance(secs(60));
    assert_eq!(attempts.get(), 2, "attempts at 0 s and 1 s, none after the deadline");
    assert_eq!(cancels.get(), 1, "the attempt in flight at the deadline was cancelled");
    assert_eq!(clock.pending(), 0);
    assert!(d.wait().unwrap_err().is::<deferred_core::TimedOut>());
}

/// A cancel that lands while the retry is making an attempt (the attempt function itself, or
/// another thread, cancels the retry before the attempt's Deferred is known) still cancels that
/// attempt, and no attempt follows.
#[test]
fn a_cancel_while_an_attempt_is_being_made_cancels_that_attempt() {
    let clock = ManualClock::new();
    let attempts = Count::new();
    let cancels = Count::new();
    let retry_handle: Arc<Mutex<Option<kind::CancelHandle>>> = Arc::default();
    let kept = Kept::<u32>::default();
    let (a, c, h, k) = (
        attempts.clone(),
        cancels.clone(),
        retry_handle.clone(),
        kept.clone(),
    );
    let d = retry(clock.clone(), seeded().jitter(0.0), move || {
        a.bump();
        if let Some(handle) = h.lock().unwrap().take() {
            handle.cancel(); // the second attempt: the retry is cancelled while it is made
            let c = c.clone();
            let (work, resolver) = Deferred::<u32>::with_canceller(move || c.bump());
            k.lock().unwrap().push(resolver);
            return work;
        }
        Deferred::fail(Failure::msg("first attempt"))
    });
    *retry_handle.lock().unwrap() = Some(d.cancel_handle());
    clock.advance(secs(1)); // the second attempt
    assert_eq!(attempts.get(), 2);
    assert_eq!(cancels.get(), 1, "the attempt made during the cancel was cancelled");
    clock.advance(secs(60));
    assert_eq!(attempts.get(), 2);
    assert!(d.wait().unwrap_err().is_cancelled());
}

/// Rule 3: a cancelled attempt that answers with a failure of its own (not a cancellation) has
/// that failure reported, once, and the predicate is not asked about it.
#[test]
fn a_failure_a_cancelled_attempt_answers_with_is_reported_not_retried() {
    let marker = "RETRY-CANCEL-ANSWER";
    let clock = ManualClock::new();
    let asked = Count::new();
    let a = asked.clone();
    let (cancelled, reported) = deferred_core::capture_unhandled(|| {
        let retried = retry_if(
            clock.clone(),
            RetryPolicy::exponential(secs(1)),
            move |_: &Failure| {
                a.bump();
                true
            },
            move || {
                let slot: Arc<Mutex<Option<kind::Resolver<u32>>>> = Arc::default();
                let s = slot.clone();
                let (d, r) = Deferred::<u32>::with_canceller(move || {
                    if let Some(r) = s.lock().unwrap().take() {
                        r.errback(Failure::msg(marker));
                    }
                });
                *slot.lock().unwrap() = Some(r);
                d
            },
        );
        retried.cancel();
        retried.wait()
    });
    assert!(cancelled.unwrap_err().is_cancelled());
    assert_eq!(asked.get(), 0, "the predicate is not asked after the cancel");
    let reported: Vec<String> = reported.iter().map(ToString::to_string).collect();
    assert_eq!(reported, [marker]);
    assert_eq!(clock.pending(), 0);
}

/// Waits so long that adding them to the time run overflows a `Duration`: the deadline is
/// passed (no panic in the retry's own step).
#[test]
fn a_wait_past_the_end_of_time_is_past_the_deadline() {
    let clock = ManualClock::new();
    let c = clock.clone();
    let policy = RetryPolicy::exponential(Duration::MAX)
        .jitter(0.0)
        .deadline(secs(60));
    let retried = retry(clock.clone(), policy, move || {
        c.advance(secs(1));
        Err::<(), _>(Failure::msg("refused"))
    });
    let error = retried.wait().unwrap_err();
    let error = error.downcast_ref::<RetryError>().expect("a RetryError");
    assert_eq!(error.reason, GaveUp::Deadline);
    assert_eq!(error.attempts.len(), 1);
}

/// A wait so long that the clock's time would overflow, with no deadline: the next attempt is
/// scheduled at the end of time (never, in practice), and nothing panics.
#[test]
fn a_wait_past_the_end_of_time_is_scheduled_there() {
    let clock = ManualClock::new();
    let c = clock.clone();
    let policy = RetryPolicy::exponential(Duration::MAX).jitter(0.0);
    let (retried, reported) = deferred_core::capture_unhandled(|| {
        let retried = retry(clock.clone(), policy, move || {
            c.advance(secs(1));
            Err::<(), _>(Failure::msg("refused"))
        });
        assert!(!retried.is_fired());
        assert_eq!(clock.pending(), 1, "the next attempt, at the end of time");
        retried.cancel();
        retried.wait()
    });
    assert!(retried.unwrap_err().is_cancelled());
    assert!(reported.is_empty(), "{reported:?}");
}

/// A retry waiting on a `ManualClock` for its next attempt is dropped with the clock's last
/// handle (nobody can advance it any more): its result fails with `NeverFired`, and the attempt
/// function is freed, instead of the schedule (holding the wait) and the retry (holding the
/// clock) keeping each other for ever.
#[test]
fn a_retry_waiting_on_a_dropped_manual_clock_fails_never_fired() {
    let freed = Count::new();
    let clock = ManualClock::new();
    let held = Freed(freed.clone());
    let retried = retry(clock.clone(), seeded(), move || {
        let _ = &held;
        Err::<(), _>(Failure::msg("refused"))
    });
    assert_eq!(clock.pending(), 1, "the second attempt waits on the clock");
    drop(clock);
    assert_eq!(freed.get(), 1);
    assert!(retried.is_fired());
    assert!(retried.wait().unwrap_err().is::<deferred_core::NeverFired>());
}

/// The same with the retry's Deferred dropped first.
#[test]
fn a_retry_dropped_and_waiting_on_a_dropped_manual_clock_is_freed() {
    let freed = Count::new();
    let clock = ManualClock::new();
    let held = Freed(freed.clone());
    drop(retry(clock.clone(), seeded(), move || {
        let _ = &held;
        Err::<(), _>(Failure::msg("refused"))
    }));
    assert_eq!(clock.pending(), 1);
    drop(clock);
    assert_eq!(freed.get(), 1);
}
