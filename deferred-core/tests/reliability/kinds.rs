// Cancel at every point, panics, and unhandled reports for the helpers built on the state
// machine: `defer_later`, `retry`/`retry_if`, `LoopingCall`, `SharedResult`, `DeferredQueue`,
// `first_settled`. Written once and included by tests/helpers_reliability.rs for each kind
// (module `send`: `Deferred`; module `local`: `LocalDeferred`). Every test runs on a
// `ManualClock`, so each point (before the start, waiting on the clock, an attempt or call in
// flight, after it fired) is reached deterministically.
//
// Each test checks, at its point: the outcome, that user code runs exactly as often as the rules
// say (cancelled work never runs, in-flight work has its canceller run once), that the clock
// holds no timer afterwards, that no unhandled failure is reported but those expected (a
// capture on this thread), and that the structure keeps working after the cancel or panic.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deferred_core::{
    Failure, ManualClock, Panicked, QueueUnderflow, RetryError, RetryPolicy, UnhandledCapture,
};
use kind::{
    Deferred, DeferredQueue, LoopingCall, Resolver, SharedResult, defer_later, first_settled,
    retry, retry_if,
};

const PREFIX: &str = "deliberate panic: ";

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn count() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

/// A pending Deferred whose canceller counts its calls; its Resolver goes to `kept`.
fn in_flight(cancels: &Arc<AtomicUsize>, kept: &Kept) -> Deferred<u32> {
    let cancels = cancels.clone();
    let (d, r) = Deferred::<u32>::with_canceller(move || {
        cancels.fetch_add(1, SeqCst);
    });
    kept.0.lock().unwrap().push(r);
    d
}

/// Resolvers kept alive by a test (so a cancel, not a drop, is what ends their Deferreds).
#[derive(Clone, Default)]
struct Kept(Arc<Mutex<Vec<Resolver<u32>>>>);

impl Kept {
    fn take(&self) -> Vec<Resolver<u32>> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn is_panic(f: &Failure, message: &str) -> bool {
    f.downcast_ref::<Panicked>()
        .is_some_and(|p| p.message() == format!("{PREFIX}{message}"))
}

fn quiet_panics() {
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            if !message.starts_with(PREFIX) {
                default(info);
            }
        }));
    });
}

// ---- defer_later ------------------------------------------------------------------------------

#[test]
fn defer_later_cancelled_before_the_clock_fires_never_calls() {
    let capture = UnhandledCapture::start();
    let clock = ManualClock::new();
    let calls = count();
    let c = calls.clone();
    let d = defer_later(&clock, secs(1), move || {
        c.fetch_add(1, SeqCst);
        Ok::<u32, Failure>(1)
    });
    assert_eq!(clock.pending(), 1);
    d.cancel();
    assert_eq!(clock.pending(), 0, "the timer is cancelled with it");
    clock.advance(secs(5));
    assert_eq!(calls.load(SeqCst), 0);
    assert!(d.wait().unwrap_err().is_cancelled());
    assert!(capture.finish().is_empty());
}

#[test]
fn defer_later_cancelled_while_its_call_is_in_flight_cancels_the_calls_deferred() {
    let capture = UnhandledCapture::start();
    let clock = ManualClock::new();
    let (cancels, kept) = (count(), Kept::default());
    let (c, k) = (cancels.clone(), kept.clone());
    let d = defer_later(&clock, secs(1), move || in_flight(&c, &k));
    clock.advance(secs(1));
    assert!(!d.is_fired());
    d.cancel();
    assert_eq!(cancels.load(SeqCst), 1);
    assert!(d.wait().unwrap_err().is_cancelled());
    drop(kept.take()); // late: nobody listens
    assert!(capture.finish().is_empty());
}

#[test]
fn defer_later_cancelled_after_it_fired_keeps_its_value() {
    let clock = ManualClock::new();
    let d = defer_later(&clock, secs(1), || Ok::<u32, Failure>(7));
    clock.advance(secs(1));
    d.cancel();
    d.cancel();
    assert_eq!(d.wait().unwrap(), 7);
}

#[test]
fn defer_later_whose_call_panics_fails_with_the_panic_and_the_clock_goes_on() {
    quiet_panics();
    let clock = ManualClock::new();
    let d = defer_later(&clock, secs(1), || -> Result<u32, Failure> {
        panic!("{PREFIX}later")
    });
    let after = defer_later(&clock, secs(2), || Ok::<u32, Failure>(2));
    clock.advance(secs(3));
    assert!(is_panic(&d.wait().unwrap_err(), "later"));
    assert_eq!(after.wait().unwrap(), 2);
}

// ---- retry / retry_if -------------------------------------------------------------------------

fn policy() -> RetryPolicy {
    RetryPolicy::exponential(secs(1))
        .jitter(0.0)
        .max_attempts(5)
}

#[test]
fn retry_cancelled_while_its_first_attempt_is_in_flight() {
    let capture = UnhandledCapture::start();
    let clock = ManualClock::new();
    let (attempts, cancels, kept) = (count(), count(), Kept::default());
    let (a, c, k) = (attempts.clone(), cancels.clone(), kept.clone());
    let d = retry(clock.clone(), policy(), move || {
        a.fetch_add(1, SeqCst);
        in_flight(&c, &k)
    });
    assert_eq!(attempts.load(SeqCst), 1);
    d.cancel();
    assert_eq!(
        cancels.load(SeqCst),
        1,
        "the attempt in flight is cancelled"
    );
    assert!(d.wait().unwrap_err().is_cancelled());
    clock.advance(secs(100));
    assert_eq!(attempts.load(SeqCst), 1, "no attempt after the cancel");
    assert_eq!(clock.pending(), 0);
    drop(kept.take());
    assert!(capture.finish().is_empty());
}

#[test]
fn retry_cancelled_while_waiting_on_the_clock_makes_no_more_attempts() {
    let capture = UnhandledCapture::start();
    let clock = ManualClock::new();
    let attempts = count();
    let a = attempts.clone();
    let d = retry(clock.clone(), policy(), move || {
        a.fetch_add(1, SeqCst);
        Err::<u32, Failure>(Failure::msg("not yet"))
    });
    assert_eq!((attempts.load(SeqCst), clock.pending()), (1, 1));
    clock.advance(secs(1));
    assert_eq!((attempts.load(SeqCst), clock.pending()), (2, 1));
    d.cancel();
    assert_eq!(clock.pending(), 0, "the wait's timer is cancelled");
    clock.advance(secs(100));
    assert_eq!(attempts.load(SeqCst), 2);
    assert!(d.wait().unwrap_err().is_cancelled());
    assert!(capture.finish().is_empty());
}

#[test]
fn retry_cancelled_after_it_succeeded_keeps_its_value() {
    let clock = ManualClock::new();
    let attempts = count();
    let a = attempts.clone();
    let d = retry(clock.clone(), policy(), move || {
        if a.fetch_add(1, SeqCst) == 0 {
            Err(Failure::msg("once"))
        } else {
            Ok(5u32)
        }
    });
    clock.advance(secs(1));
    d.cancel();
    assert_eq!(d.wait().unwrap(), 5);
    assert_eq!((attempts.load(SeqCst), clock.pending()), (2, 0));
}

#[test]
fn retry_cancelled_after_it_gave_up_keeps_the_retry_error() {
    let capture = UnhandledCapture::start();
    let clock = ManualClock::new();
    let d = retry(clock.clone(), policy().max_attempts(2), || {
        Err::<u32, Failure>(Failure::msg("no"))
    });
    clock.advance(secs(1));
    d.cancel();
    let failure = d.wait().unwrap_err();
    assert_eq!(
        failure.downcast_ref::<RetryError>().unwrap().attempts.len(),
        2
    );
    assert!(capture.finish().is_empty());
}

#[test]
fn a_panicking_retry_attempt_is_a_failed_attempt_and_the_next_one_runs() {
    quiet_panics();
    let capture = UnhandledCapture::start();
    let clock = ManualClock::new();
    let attempts = count();
    let a = attempts.clone();
    let d = retry(clock.clone(), policy(), move || {
        if a.fetch_add(1, SeqCst) < 2 {
            panic!("{PREFIX}attempt");
        }
        Ok::<u32, Failure>(3)
    });
    clock.advance(secs(1));
    clock.advance(secs(2));
    assert_eq!(d.wait().unwrap(), 3);
    assert_eq!(attempts.load(SeqCst), 3);

    // Every attempt panics: the RetryError carries each panic.
    let d = retry(
        clock.clone(),
        policy().max_attempts(3),
        || -> Result<u32, Failure> { panic!("{PREFIX}always") },
    );
    clock.advance(secs(10));
    let failure = d.wait().unwrap_err();
    let error = failure.downcast_ref::<RetryError>().expect("a RetryError");
    assert_eq!(error.attempts.len(), 3);
    assert!(error.attempts.iter().all(|f| is_panic(f, "always")));
    assert!(capture.finish().is_empty());
}

#[test]
fn a_panicking_retry_predicate_gives_up_with_the_attempts_failure() {
    quiet_panics();
    let clock = ManualClock::new();
    let attempts = count();
    let a = attempts.clone();
    let d = retry_if(
        clock.clone(),
        policy(),
        |_: &Failure| -> bool { panic!("{PREFIX}predicate") },
        move || {
            a.fetch_add(1, SeqCst);
            Err::<u32, Failure>(Failure::msg("first"))
        },
    );
    let failure = d.wait().unwrap_err();
    let error = failure.downcast_ref::<RetryError>().expect("a RetryError");
    assert_eq!(error.attempts.len(), 1);
    assert_eq!(attempts.load(SeqCst), 1);
    assert_eq!(clock.pending(), 0);
}

// ---- LoopingCall ------------------------------------------------------------------------------

#[test]
fn looping_call_cancelled_while_waiting_on_the_clock_stops_and_can_start_again() {
    let capture = UnhandledCapture::start();
    let clock = ManualClock::new();
    let calls = count();
    let c = calls.clone();
    let lc = LoopingCall::new(clock.clone(), move || {
        c.fetch_add(1, SeqCst);
        Ok::<(), Failure>(())
    });
    let done = lc.start(secs(1), false); // waits on the clock before its first call
    assert_eq!(clock.pending(), 1);
    done.cancel();
    assert!(!lc.is_running());
    assert_eq!(clock.pending(), 0);
    clock.advance(secs(10));
    assert_eq!(calls.load(SeqCst), 0);
    assert!(done.wait().unwrap_err().is_cancelled());

    // It starts again, and runs.
    let done = lc.start(secs(1), true);
    clock.advance(secs(1));
    clock.advance(secs(1));
    assert_eq!(calls.load(SeqCst), 3);
    lc.stop();
    assert_eq!(clock.pending(), 0);
    done.wait().unwrap();
    assert!(capture.finish().is_empty());
}

#[test]
fn looping_call_cancelled_while_a_call_is_in_flight_cancels_the_call() {
    let capture = UnhandledCapture::start();
    let clock = ManualClock::new();
    let (calls, cancels, kept) = (count(), count(), Kept::default());
    let (c, x, k) = (calls.clone(), cancels.clone(), kept.clone());
    let lc = LoopingCall::new(clock.clone(), move || {
        c.fetch_add(1, SeqCst);
        in_flight(&x, &k).add_callback(|_| Ok(()))
    });
    let done = lc.start(secs(1), true);
    assert_eq!(calls.load(SeqCst), 1);
    done.cancel();
    assert_eq!(cancels.load(SeqCst), 1);
    assert!(!lc.is_running());
    assert!(done.wait().unwrap_err().is_cancelled());
    clock.advance(secs(10));
    assert_eq!(calls.load(SeqCst), 1);
    assert_eq!(clock.pending(), 0);
    drop(kept.take());
    assert!(capture.finish().is_empty());
}

#[test]
fn looping_call_cancelled_after_it_stopped_keeps_its_result() {
    let clock = ManualClock::new();
    let lc = LoopingCall::new(clock.clone(), || Ok::<(), Failure>(()));
    let done = lc.start(secs(1), true);
    lc.stop();
    done.cancel();
    done.wait().unwrap();
    assert_eq!(clock.pending(), 0);
}

#[test]
fn a_panicking_looping_call_function_fails_the_loop_once_and_it_starts_again() {
    quiet_panics();
    let capture = UnhandledCapture::start();
    let clock = ManualClock::new();
    let calls = count();
    let c = calls.clone();
    let lc = LoopingCall::new(clock.clone(), move || {
        if c.fetch_add(1, SeqCst) == 1 {
            panic!("{PREFIX}tick");
        }
        Ok::<(), Failure>(())
    });
    let done = lc.start(secs(1), true);
    clock.advance(secs(1));
    assert!(!lc.is_running());
    assert_eq!(clock.pending(), 0);
    assert!(is_panic(&done.wait().unwrap_err(), "tick"));
    // The loop is not poisoned: it starts again and calls on.
    let done = lc.start(secs(1), true);
    clock.advance(secs(1));
    assert_eq!(calls.load(SeqCst), 4);
    lc.stop();
    done.wait().unwrap();
    assert!(capture.finish().is_empty());

    // Its Deferred dropped: the panic is reported once, on the thread that ran the call.
    let c = calls.clone();
    let lc = LoopingCall::new(clock.clone(), move || -> Result<(), Failure> {
        c.fetch_add(1, SeqCst);
        panic!("{PREFIX}unwatched")
    });
    let capture = UnhandledCapture::start();
    drop(lc.start(secs(1), true));
    let reports = capture.finish();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(is_panic(&reports[0], "unwatched"));
}

// ---- SharedResult -----------------------------------------------------------------------------

#[test]
fn shared_result_source_is_cancelled_once_only_when_every_consumer_is_and_no_handle_is_left() {
    let capture = UnhandledCapture::start();
    let (cancels, kept) = (count(), Kept::default());
    let shared = SharedResult::new(in_flight(&cancels, &kept));
    let (a, b) = (shared.consumer(), shared.consumer());
    let copy = shared.clone();
    a.cancel();
    b.cancel();
    assert_eq!(
        cancels.load(SeqCst),
        0,
        "handles are left: more consumers may come"
    );
    drop(shared);
    let c = copy.consumer();
    drop(copy);
    assert_eq!(cancels.load(SeqCst), 0, "c still wants it");
    c.cancel();
    c.cancel();
    assert_eq!(cancels.load(SeqCst), 1);
    for d in [a, b, c] {
        assert!(d.wait().unwrap_err().is_cancelled());
    }
    drop(kept.take());
    assert!(
        capture.finish().is_empty(),
        "the source's own cancel is not reported"
    );
}

#[test]
fn shared_result_consumer_cancelled_while_the_source_is_in_flight_leaves_the_others() {
    let (cancels, kept) = (count(), Kept::default());
    let shared = SharedResult::new(in_flight(&cancels, &kept));
    let (a, b) = (shared.consumer(), shared.consumer());
    a.cancel();
    assert_eq!(shared.waiting(), 1);
    for r in kept.take() {
        r.callback(9);
    }
    assert!(a.wait().unwrap_err().is_cancelled());
    assert_eq!(b.wait().unwrap(), 9);
    assert_eq!(cancels.load(SeqCst), 0);
    assert_eq!(shared.consumer().wait().unwrap(), 9);
}

#[test]
fn shared_result_cancelled_after_the_source_fired_keeps_the_value() {
    let shared = SharedResult::new(Deferred::<u32>::succeed(4));
    let a = shared.consumer();
    a.cancel();
    assert_eq!(a.wait().unwrap(), 4);
    drop(shared);
}

#[test]
fn shared_result_panic_in_one_consumers_step_fails_that_consumer_alone() {
    quiet_panics();
    let capture = UnhandledCapture::start();
    let (source, resolver) = Deferred::<u32>::pending();
    let shared = SharedResult::new(source);
    let bad = shared
        .consumer()
        .add_callback(|_| -> Result<u32, Failure> { panic!("{PREFIX}consumer") });
    // A consumer made from inside another consumer's step, while the source fires.
    let nested: Arc<Mutex<Option<Deferred<u32>>>> = Arc::default();
    let (s, n) = (shared.clone(), nested.clone());
    let maker = shared.consumer().add_callback(move |v| {
        *n.lock().unwrap() = Some(s.consumer());
        Ok(v)
    });
    let good = shared.consumer();
    resolver.callback(1);
    assert!(is_panic(&bad.wait().unwrap_err(), "consumer"));
    assert_eq!(maker.wait().unwrap(), 1);
    assert_eq!(good.wait().unwrap(), 1);
    assert_eq!(nested.lock().unwrap().take().unwrap().wait().unwrap(), 1);
    assert!(capture.finish().is_empty());
}

#[test]
fn shared_result_failure_is_reported_once_per_consumer_that_drops_it() {
    let capture = UnhandledCapture::start();
    let (source, resolver) = Deferred::<u32>::pending();
    let shared = SharedResult::new(source);
    let dropped = [shared.consumer(), shared.consumer()];
    let handled = shared.consumer().add_errback(|_| Ok(0));
    drop(dropped);
    resolver.errback(Failure::msg("shared failure"));
    assert_eq!(handled.wait().unwrap(), 0);
    let reports = capture.finish();
    assert_eq!(reports.len(), 2, "{reports:?}");
    assert!(reports.iter().all(|f| f.to_string() == "shared failure"));

    // No consumer ever made, and the last handle gone: reported once.
    let capture = UnhandledCapture::start();
    let (source, resolver) = Deferred::<u32>::pending();
    drop(SharedResult::new(source));
    resolver.errback(Failure::msg("nobody's"));
    assert_eq!(
        capture.finish().len(),
        0,
        "the source was cancelled: its answer was expected"
    );
    let capture = UnhandledCapture::start();
    drop(SharedResult::new(Deferred::<u32>::fail(Failure::msg(
        "nobody's",
    ))));
    assert_eq!(capture.finish().len(), 1);
}

// ---- DeferredQueue ----------------------------------------------------------------------------

#[test]
fn queue_get_cancelled_while_waiting_leaves_the_line_and_the_item_goes_to_the_next() {
    let capture = UnhandledCapture::start();
    let queue = DeferredQueue::<u32>::with_limits(None, Some(2));
    let (a, b) = (queue.get(), queue.get());
    assert!(queue.get().wait().unwrap_err().is::<QueueUnderflow>());
    a.cancel();
    a.cancel();
    assert_eq!(queue.waiting(), 1);
    queue.put(1).unwrap();
    assert_eq!(b.wait().unwrap(), 1);
    assert!(a.wait().unwrap_err().is_cancelled());
    assert!(queue.is_empty());
    // Cancelled after it got its item: it keeps it.
    queue.put(2).unwrap();
    let c = queue.get();
    c.cancel();
    assert_eq!(c.wait().unwrap(), 2);
    assert!(capture.finish().is_empty());
}

#[test]
fn queue_consumer_panic_becomes_its_failure_and_the_queue_goes_on() {
    quiet_panics();
    let capture = UnhandledCapture::start();
    let queue = DeferredQueue::<u32>::new();
    let got = Arc::new(Mutex::new(Vec::new()));
    // A consumer that panics on one item and takes the next from inside its callback.
    fn consume(queue: DeferredQueue<u32>, got: Arc<Mutex<Vec<u32>>>) -> Deferred<()> {
        let (q, g) = (queue.clone(), got.clone());
        queue.get().add_callback(move |item| {
            g.lock().unwrap().push(item);
            if item == 2 {
                panic!("{PREFIX}item 2");
            }
            drop(consume(q, g));
            Ok(())
        })
    }
    let first = consume(queue.clone(), got.clone());
    for i in 0..2 {
        queue.put(i).unwrap(); // never unwinds into put
    }
    queue.put(2).unwrap();
    queue.put(3).unwrap();
    assert_eq!(*got.lock().unwrap(), vec![0, 1, 2]);
    assert_eq!(queue.len(), 1, "3 waits for a consumer");
    first.wait().unwrap();
    // The panicking callback's chain was dropped: reported once.
    let reports = capture.finish();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(is_panic(&reports[0], "item 2"));
    assert_eq!(queue.get().wait().unwrap(), 3);
}

#[test]
fn queue_dropped_with_gets_waiting_fails_them_with_never_fired() {
    let capture = UnhandledCapture::start();
    let queue = DeferredQueue::<u32>::new();
    let waiting = queue.get();
    drop(queue);
    let failure = waiting.wait().unwrap_err();
    assert!(failure.is::<deferred_core::NeverFired>(), "{failure}");
    assert!(capture.finish().is_empty());
}

// ---- first_settled ----------------------------------------------------------------------------

#[test]
fn first_settled_cancelled_before_any_input_fires_cancels_each_input_once() {
    let capture = UnhandledCapture::start();
    let (cancels, kept) = (count(), Kept::default());
    let d = first_settled((0..3).map(|_| in_flight(&cancels, &kept)));
    d.cancel();
    d.cancel();
    assert_eq!(cancels.load(SeqCst), 3);
    assert!(d.wait().unwrap_err().is_cancelled());
    drop(kept.take());
    assert!(capture.finish().is_empty());
}

#[test]
fn first_settled_cancels_the_losers_once_and_a_later_cancel_changes_nothing() {
    let capture = UnhandledCapture::start();
    let (cancels, kept) = (count(), Kept::default());
    let d = first_settled((0..3).map(|_| in_flight(&cancels, &kept)));
    let mut resolvers = kept.take();
    resolvers.remove(1).callback(8);
    assert_eq!(cancels.load(SeqCst), 2, "the two losers");
    d.cancel();
    assert_eq!(cancels.load(SeqCst), 2);
    assert_eq!(d.wait().unwrap(), (1, 8));
    for r in resolvers {
        r.errback(Failure::msg("late loser")); // consumed: not reported
    }
    assert!(capture.finish().is_empty());
}

#[test]
fn first_settled_with_a_panicking_loser_canceller_keeps_the_winner() {
    quiet_panics();
    let capture = UnhandledCapture::start();
    let (loser, _r) = Deferred::<u32>::with_canceller(|| panic!("{PREFIX}loser's canceller"));
    let (winner, w) = Deferred::<u32>::pending();
    let d = first_settled([loser, winner]);
    w.callback(1);
    assert_eq!(d.wait().unwrap(), (1, 1));
    let reports = capture.finish();
    assert!(
        reports.is_empty(),
        "a loser's failure is consumed: {reports:?}"
    );
}
