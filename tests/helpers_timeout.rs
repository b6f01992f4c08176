//! add_timeout and ManualClock: Twisted's test_defer.py `DeferredAddTimeoutTests` (all on a fake
//! clock), plus the deadline's exact edge, the timer's cancellation and the clock itself.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deferred::{
    Cancelled, Clock, Deferred, DelayedCall, Failure, ManualClock, Resolver, TimedOut, race,
};

const TEN: Duration = Duration::from_secs(10);
const FIFTEEN: Duration = Duration::from_secs(15);

#[derive(Debug)]
struct ValueError(u32);

impl std::fmt::Display for ValueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ValueError #{}", self.0)
    }
}

impl std::error::Error for ValueError {}

/// A pending Deferred whose canceller fires it with `answer()`.
fn answering_cancel<T: Send + 'static>(
    answer: impl FnOnce() -> Result<T, Failure> + Send + 'static,
) -> Deferred<T> {
    let slot: Arc<Mutex<Option<Resolver<T>>>> = Arc::default();
    let in_canceller = slot.clone();
    let (deferred, resolver) = Deferred::with_canceller(move || {
        let resolver = in_canceller.lock().unwrap().take();
        if let Some(resolver) = resolver {
            resolver.fire(answer());
        }
    });
    *slot.lock().unwrap() = Some(resolver);
    deferred
}

/// A pending Deferred that counts how often it is cancelled.
fn counting_cancel<T: Send + 'static>() -> (Deferred<T>, Resolver<T>, Arc<AtomicUsize>) {
    let cancels = Arc::new(AtomicUsize::new(0));
    let count = cancels.clone();
    let (deferred, resolver) = Deferred::with_canceller(move || {
        count.fetch_add(1, Ordering::SeqCst);
    });
    (deferred, resolver, cancels)
}

fn overridden<T>(_: Result<T, Failure>, _: Duration) -> Result<&'static str, Failure> {
    Ok("OVERRIDDEN")
}

// Twisted: DeferredAddTimeoutTests.test_timeoutChainable
#[test]
fn add_timeout_returns_a_chainable_deferred() {
    let clock = ManualClock::new();
    let (d, resolver) = Deferred::<()>::pending();
    let d = d
        .add_timeout(Duration::from_secs(5), &clock)
        .add_callback(|()| Ok("done"));
    resolver.callback(());
    assert_eq!(d.wait().unwrap(), "done");
}

/// `d` with a timeout of `TEN` on `clock`: Twisted's default translation, or (`custom`) one that
/// answers "OVERRIDDEN" — which the tests using it expect never to be called.
fn with_timeout(
    d: Deferred<&'static str>,
    clock: &ManualClock,
    custom: bool,
) -> Deferred<&'static str> {
    if custom {
        d.add_timeout_with(TEN, clock, |_, _| Ok("OVERRIDDEN"))
    } else {
        d.add_timeout(TEN, clock)
    }
}

// Twisted: DeferredAddTimeoutTests.test_successResultBeforeTimeout
// Twisted: DeferredAddTimeoutTests.test_successResultBeforeTimeoutCustom
#[test]
fn a_result_in_time_passes_and_nothing_later_is_cancelled() {
    for custom in [false, true] {
        let clock = ManualClock::new();
        let (d, resolver) = Deferred::<&str>::pending();
        let d = with_timeout(d, &clock, custom);
        let seen = Arc::new(Mutex::new(None));
        let (inner, _inner_resolver, inner_cancels) = counting_cancel::<&str>();
        let record = seen.clone();
        let d = d.add_callback(move |value| {
            *record.lock().unwrap() = Some(value);
            inner
        });
        resolver.callback("results");
        assert_eq!(*seen.lock().unwrap(), Some("results"));
        clock.advance(FIFTEEN);
        assert_eq!(inner_cancels.load(Ordering::SeqCst), 0);
        assert!(!d.is_fired());
    }
}

// Twisted: DeferredAddTimeoutTests.test_failureBeforeTimeout
// Twisted: DeferredAddTimeoutTests.test_failureBeforeTimeoutCustom
#[test]
fn a_failure_in_time_passes_and_nothing_later_is_cancelled() {
    for custom in [false, true] {
        let clock = ManualClock::new();
        let (d, resolver) = Deferred::<&str>::pending();
        let d = with_timeout(d, &clock, custom);
        let seen = Arc::new(Mutex::new(None));
        let (inner, _inner_resolver, inner_cancels) = counting_cancel::<&str>();
        let record = seen.clone();
        let d = d.add_errback(move |failure: Failure| {
            *record.lock().unwrap() = failure.downcast_ref::<ValueError>().map(|e| e.0);
            inner
        });
        resolver.errback(Failure::new(ValueError(105)));
        assert_eq!(*seen.lock().unwrap(), Some(105));
        clock.advance(FIFTEEN);
        assert_eq!(inner_cancels.load(Ordering::SeqCst), 0);
        assert!(!d.is_fired());
    }
}

// Twisted: DeferredAddTimeoutTests.test_timedOut
#[test]
fn no_result_by_the_deadline_times_out_and_cancels_the_work() {
    let clock = ManualClock::new();
    let (d, _resolver, cancels) = counting_cancel::<&str>();
    let d = d.add_timeout(TEN, &clock);
    clock.advance(FIFTEEN);
    assert_eq!(cancels.load(Ordering::SeqCst), 1);
    let failure = d.wait().unwrap_err();
    assert_eq!(failure.downcast_ref::<TimedOut>().unwrap().after(), TEN);
    assert_eq!(failure.to_string(), "the Deferred timed out after 10s");
}

#[test]
fn the_deadline_is_inclusive() {
    let clock = ManualClock::new();
    let (d, _resolver) = Deferred::<u32>::pending();
    let d = d.add_timeout(TEN, &clock);
    clock.advance(TEN - Duration::from_nanos(1));
    assert!(!d.is_fired(), "just before the deadline");
    clock.advance(Duration::from_nanos(1));
    assert!(d.is_fired(), "exactly at the deadline");
    assert!(d.wait().unwrap_err().is::<TimedOut>());
}

#[test]
fn a_result_just_before_the_deadline_cancels_the_timer() {
    let clock = ManualClock::new();
    let (d, resolver, cancels) = counting_cancel::<u32>();
    let d = d.add_timeout(TEN, &clock);
    assert_eq!(clock.pending(), 1);
    clock.advance(TEN - Duration::from_millis(1));
    resolver.callback(7);
    assert_eq!(
        clock.pending(),
        0,
        "the timer is cancelled when the result comes"
    );
    clock.advance(FIFTEEN);
    assert_eq!(cancels.load(Ordering::SeqCst), 0);
    assert_eq!(d.wait().unwrap(), 7);
}

#[test]
fn an_already_fired_deferred_schedules_no_timer() {
    let clock = ManualClock::new();
    let d = Deferred::<u32>::succeed(1).add_timeout(TEN, &clock);
    assert_eq!(clock.pending(), 0);
    assert_eq!(d.wait().unwrap(), 1);
}

// Twisted: DeferredAddTimeoutTests.test_timedOutCustom
#[test]
fn a_custom_translation_replaces_the_outcome_of_a_timeout() {
    let clock = ManualClock::new();
    let (d, _resolver) = Deferred::<&str>::pending();
    let d = d.add_timeout_with(TEN, &clock, overridden);
    clock.advance(FIFTEEN);
    assert_eq!(d.wait().unwrap(), "OVERRIDDEN");
}

// Twisted: DeferredAddTimeoutTests.test_timedOutProvidedCancelSuccess
#[test]
fn a_canceller_that_succeeds_keeps_its_success() {
    let clock = ManualClock::new();
    let d = answering_cancel(|| Ok("I was cancelled!")).add_timeout(TEN, &clock);
    clock.advance(FIFTEEN);
    assert_eq!(d.wait().unwrap(), "I was cancelled!");
}

// Twisted: DeferredAddTimeoutTests.test_timedOutProvidedCancelFailure
#[test]
fn a_canceller_that_fails_keeps_its_own_failure() {
    let clock = ManualClock::new();
    let d = answering_cancel::<u32>(|| Err(Failure::new(ValueError(109)))).add_timeout(TEN, &clock);
    clock.advance(FIFTEEN);
    let failure = d.wait().unwrap_err();
    assert_eq!(failure.downcast_ref::<ValueError>().unwrap().0, 109);
}

// Twisted: DeferredAddTimeoutTests.test_cancelBeforeTimeout
// Twisted: DeferredAddTimeoutTests.test_cancelBeforeTimeoutCustom
#[test]
fn a_cancel_before_the_deadline_stays_a_cancellation() {
    for custom in [false, true] {
        let clock = ManualClock::new();
        let translated = Arc::new(AtomicBool::new(false));
        let (d, _resolver) = Deferred::<&str>::pending();
        let d = if custom {
            let flag = translated.clone();
            d.add_timeout_with(TEN, &clock, move |r, _| {
                flag.store(true, Ordering::SeqCst);
                r
            })
        } else {
            d.add_timeout(TEN, &clock)
        };
        let saw_cancelled = Arc::new(AtomicBool::new(false));
        let (inner, _inner_resolver, inner_cancels) = counting_cancel::<&str>();
        let record = saw_cancelled.clone();
        let handle_source = d.cancel_handle();
        let d = d.add_errback(move |failure: Failure| {
            record.store(failure.is::<Cancelled>(), Ordering::SeqCst);
            inner
        });
        handle_source.cancel();
        assert!(saw_cancelled.load(Ordering::SeqCst));
        assert_eq!(clock.pending(), 0);
        clock.advance(FIFTEEN);
        assert_eq!(inner_cancels.load(Ordering::SeqCst), 0);
        assert!(!d.is_fired());
        assert!(!translated.load(Ordering::SeqCst));
    }
}

// Twisted: DeferredAddTimeoutTests.test_providedCancelCalledBeforeTimeoutCustom
#[test]
fn a_custom_translation_sees_what_the_canceller_produced() {
    let clock = ManualClock::new();
    let d = answering_cancel::<&str>(|| Err(Failure::new(ValueError(111)))).add_timeout_with(
        TEN,
        &clock,
        |result, after| {
            assert_eq!(
                result.unwrap_err().downcast_ref::<ValueError>().unwrap().0,
                111
            );
            assert_eq!(after, TEN);
            Ok("OVERRIDDEN")
        },
    );
    clock.advance(FIFTEEN);
    assert_eq!(d.wait().unwrap(), "OVERRIDDEN");
}

// Twisted: DeferredAddTimeoutTests.test_errbackAddedBeforeTimeout
#[test]
fn an_errback_added_before_sees_the_cancellation_and_the_end_sees_the_timeout() {
    let clock = ManualClock::new();
    let saw = Arc::new(Mutex::new(String::new()));
    let record = saw.clone();
    let (d, _resolver) = Deferred::<()>::pending();
    let d = d
        .add_errback(move |failure: Failure| {
            *record.lock().unwrap() = failure.to_string();
            Err(failure)
        })
        .add_timeout(TEN, &clock);
    clock.advance(FIFTEEN);
    assert_eq!(*saw.lock().unwrap(), Cancelled.to_string());
    assert!(d.wait().unwrap_err().is::<TimedOut>());
}

// Twisted: DeferredAddTimeoutTests.test_errbackAddedBeforeTimeoutSuppressesCancellation
#[test]
fn an_errback_added_before_that_handles_the_cancellation_ends_in_success() {
    let clock = ManualClock::new();
    let (d, _resolver) = Deferred::<()>::pending();
    let d = d
        .add_errback(|failure: Failure| failure.trap::<Cancelled>().map(drop))
        .add_timeout(TEN, &clock);
    clock.advance(FIFTEEN);
    assert!(d.wait().is_ok());
}

// Twisted: DeferredAddTimeoutTests.test_errbackAddedBeforeTimeoutCustom
// Twisted: DeferredAddTimeoutTests.test_errbackAddedBeforeTimeoutSuppressesCancellationCustom
#[test]
fn a_custom_translation_applies_after_errbacks_added_before() {
    for suppress in [false, true] {
        let clock = ManualClock::new();
        let (d, _resolver) = Deferred::<&str>::pending();
        let d = d
            .add_errback(move |failure: Failure| {
                if suppress {
                    failure.trap::<Cancelled>().map(|_| "suppressed")
                } else {
                    Err(failure)
                }
            })
            .add_timeout_with(TEN, &clock, overridden);
        clock.advance(FIFTEEN);
        assert_eq!(d.wait().unwrap(), "OVERRIDDEN");
    }
}

// Twisted: DeferredAddTimeoutTests.test_callbackAddedToCancelerBeforeTimeout
// Twisted: DeferredAddTimeoutTests.test_callbackAddedToCancelerBeforeTimeoutCustom
#[test]
fn a_callback_added_before_sees_the_cancellers_success() {
    for custom in [false, true] {
        let clock = ManualClock::new();
        let seen = Arc::new(Mutex::new(None));
        let record = seen.clone();
        let d = answering_cancel(|| Ok("success")).add_callback(move |value| {
            *record.lock().unwrap() = Some(value);
            Ok(value)
        });
        let d = if custom {
            d.add_timeout_with(TEN, &clock, overridden)
        } else {
            d.add_timeout(TEN, &clock)
        };
        clock.advance(FIFTEEN);
        assert_eq!(*seen.lock().unwrap(), Some("success"));
        let expected = if custom { "OVERRIDDEN" } else { "success" };
        assert_eq!(d.wait().unwrap(), expected);
    }
}

#[test]
fn a_timeout_on_a_chain_cancels_what_the_chain_waits_on() {
    let clock = ManualClock::new();
    let (inner, _inner_resolver, inner_cancels) = counting_cancel::<u32>();
    let chain = Deferred::<u32>::succeed(1)
        .add_callback(move |_| inner)
        .add_timeout(TEN, &clock);
    clock.advance(TEN);
    assert_eq!(inner_cancels.load(Ordering::SeqCst), 1);
    assert!(chain.wait().unwrap_err().is::<TimedOut>());
}

#[test]
fn a_timed_out_race_fails_with_its_inputs_cancellations() {
    // Twisted: `race(...).addTimeout(...)` cancels the race, which cancels every input.
    let clock = ManualClock::new();
    let (a, _ra, a_cancels) = counting_cancel::<u32>();
    let (b, _rb, b_cancels) = counting_cancel::<u32>();
    let raced = race([a, b]).add_timeout(TEN, &clock);
    clock.advance(TEN);
    assert_eq!(
        (
            a_cancels.load(Ordering::SeqCst),
            b_cancels.load(Ordering::SeqCst)
        ),
        (1, 1)
    );
    assert!(raced.wait().is_err());
}

#[test]
fn a_timeout_with_a_custom_error_type_becomes_that_types_timeout() {
    #[derive(Debug)]
    enum AppError {
        Chain(Failure),
    }
    impl From<Failure> for AppError {
        fn from(failure: Failure) -> AppError {
            AppError::Chain(failure)
        }
    }
    let clock = ManualClock::new();
    let (d, _resolver) = Deferred::<u32, AppError>::pending();
    let d = d.add_timeout(TEN, &clock);
    clock.advance(TEN);
    let AppError::Chain(failure) = d.wait().unwrap_err();
    assert!(failure.is::<TimedOut>());
}

#[test]
fn the_clock_runs_calls_in_deadline_order_and_times_nested_calls_from_their_deadline() {
    let clock = ManualClock::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    let (l1, l2) = (log.clone(), log.clone());
    let nested_clock = clock.clone();
    let _late = clock.call_later(
        Duration::from_secs(3),
        Box::new(move || l1.lock().unwrap().push("3s")),
    );
    let _early = clock.call_later(
        Duration::from_secs(1),
        Box::new(move || {
            let l3 = l2.clone();
            l2.lock().unwrap().push("1s");
            // Scheduled at 1s, due at 2s: runs within the same advance, before the 3s call.
            let _nested = nested_clock.call_later(
                Duration::from_secs(1),
                Box::new(move || l3.lock().unwrap().push("2s")),
            );
        }),
    );
    clock.advance(Duration::from_secs(5));
    assert_eq!(*log.lock().unwrap(), ["1s", "2s", "3s"]);
    assert_eq!(clock.now(), Duration::from_secs(5));
    assert_eq!(clock.pending(), 0);
}

#[test]
fn the_clock_works_behind_a_trait_object() {
    let clock = ManualClock::new();
    let dyn_clock: &dyn Clock = &clock;
    let (d, _resolver) = Deferred::<u32>::pending();
    let d = d.add_timeout(Duration::from_millis(5), dyn_clock);
    clock.advance(Duration::from_millis(5));
    assert!(d.wait().unwrap_err().is::<TimedOut>());

    let call: DelayedCall = dyn_clock.call_later(Duration::ZERO, Box::new(|| {}));
    call.cancel();
    clock.advance(Duration::ZERO);
    assert_eq!(clock.pending(), 0);
}

/// One deadline covers a batch: `add_timeout` on `gather_results` or `race` cancels every input
/// still pending, and the batch's failure (a `FirstError` or `FailureGroup` made of
/// cancellations) is a cancellation (`Failure::is_cancelled`), which the deadline turns into
/// `TimedOut`, as it does for `join`'s.
#[test]
fn a_deadline_on_a_batch_times_it_out() {
    let clock = ManualClock::new();
    let (slow, _resolver, cancels) = counting_cancel::<u32>();
    let batch = deferred::gather_results([Deferred::succeed(1), slow]).add_timeout(TEN, &clock);
    clock.advance(FIFTEEN);
    assert_eq!(cancels.load(Ordering::SeqCst), 1);
    assert!(batch.wait().unwrap_err().is::<TimedOut>());

    let (a, _ra, a_cancels) = counting_cancel::<u32>();
    let (b, _rb, b_cancels) = counting_cancel::<u32>();
    let first = race([a, b]).add_timeout(TEN, &clock);
    clock.advance(FIFTEEN);
    assert_eq!(
        a_cancels.load(Ordering::SeqCst) + b_cancels.load(Ordering::SeqCst),
        2
    );
    assert!(first.wait().unwrap_err().is::<TimedOut>());

    // A batch cancelled from elsewhere is a cancellation: a `catch` that passes cancels on does.
    let (slow, _resolver, _cancels) = counting_cancel::<u32>();
    let batch = deferred::gather_results([slow]);
    batch.cancel();
    let passed = batch.add_errback(|f: Failure| {
        if f.is_cancelled() {
            Err(f)
        } else {
            Ok(vec![0])
        }
    });
    let failure = passed.wait().unwrap_err();
    assert!(failure.is_cancelled());
    assert!(
        !failure.is::<Cancelled>(),
        "it is the batch's FirstError, unchanged"
    );
}

/// `ThreadClock`: real time on the crate's timer thread, for a program of plain threads. A
/// deadline passes and times the chain out; a cancelled call never runs.
#[test]
fn thread_clock_times_out_in_real_time() {
    use deferred::ThreadClock;

    let (reply, _resolver) = Deferred::<u32>::pending(); // never answers
    let reply = reply.add_timeout(Duration::from_millis(10), &ThreadClock);
    assert!(reply.wait().unwrap_err().is::<TimedOut>());

    // The timer thread is held in a call of its own while the next call is set and cancelled,
    // so that its 5 ms cannot pass first on a slow machine (under memcheck, they did).
    let (held, holding) = std::sync::mpsc::channel::<()>();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let _holder = ThreadClock.call_later(
        Duration::ZERO,
        Box::new(move || {
            let _ = held.send(());
            let _ = released.recv();
        }),
    );
    holding.recv().expect("the timer thread runs the holder");
    let ran = Arc::new(AtomicBool::new(false));
    let flag = ran.clone();
    let cancelled = ThreadClock.call_later(
        Duration::from_millis(5),
        Box::new(move || flag.store(true, Ordering::SeqCst)),
    );
    cancelled.cancel();
    release.send(()).unwrap();
    // A later call on the same (one) timer thread: once it has run, the first one's deadline
    // has passed too.
    let (later, resolver) = Deferred::<()>::pending();
    let _later = ThreadClock.call_later(
        Duration::from_millis(20),
        Box::new(move || resolver.callback(())),
    );
    later.wait().unwrap();
    assert!(!ran.load(Ordering::SeqCst), "a cancelled call never runs");
}

/// Races, on `threads` threads lined up by a barrier each round, a fire against a deadline of a
/// few microseconds on a real `clock`, with a cancel of the result from the same thread in some
/// rounds. Whatever wins: a fire that was taken (the deadline's cancel had not reached the root)
/// is the outcome, a refused one means a `TimedOut` (or, with the cancel, a `Cancelled`), and
/// nothing hangs.
fn race_fires_against_deadlines(clock: Arc<dyn Clock + Send + Sync>, threads: usize, rounds: u32) {
    use std::sync::Barrier;
    let barrier = Arc::new(Barrier::new(threads));
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (barrier, clock) = (barrier.clone(), clock.clone());
            scope.spawn(move || {
                for round in 0..rounds {
                    let (d, resolver) = Deferred::<u32>::pending();
                    let after = Duration::from_micros(u64::from((round * 7 + t as u32) % 40));
                    let timed = d.add_callback(|n| Ok(n + 1)).add_timeout(after, &clock);
                    let cancel = (round + t as u32).is_multiple_of(5);
                    barrier.wait();
                    for _ in 0..(round % 4) {
                        std::thread::yield_now();
                    }
                    if cancel {
                        timed.cancel();
                    }
                    let taken = resolver.try_fire(Ok(round)).is_ok();
                    let (tx, rx) = std::sync::mpsc::channel();
                    drop(timed.add_both(move |outcome| {
                        let _ = tx.send(outcome);
                        Ok(())
                    }));
                    let outcome = rx
                        .recv_timeout(Duration::from_secs(60))
                        .expect("the timed Deferred never fired");
                    match outcome {
                        Ok(n) => assert!(taken && n == round + 1, "round {round}: {n}"),
                        Err(failure) => {
                            assert!(!taken, "round {round}: a fire taken, then {failure}");
                            assert!(
                                failure.is::<TimedOut>() || (cancel && failure.is_cancelled()),
                                "round {round}: {failure}"
                            );
                        }
                    }
                }
            });
        }
    });
}

#[test]
fn fires_racing_deadlines_on_the_thread_clock_from_many_threads() {
    race_fires_against_deadlines(Arc::new(deferred::ThreadClock), 8, 150);
}

#[cfg(feature = "tokio")]
#[test]
fn fires_racing_deadlines_on_tokios_clock_on_a_multi_thread_runtime() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let clock = deferred::TokioClock::new(runtime.handle().clone());
    race_fires_against_deadlines(Arc::new(clock), 8, 150);
}
