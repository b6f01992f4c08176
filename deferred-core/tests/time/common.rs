// The tests of `defer_later` and `LoopingCall`, written once and included by tests/time.rs for
// each kind (module `send`: `Deferred`; module `local`: `LocalDeferred`). Every test runs on a
// `ManualClock`, so it is deterministic.
//
// Ported: Twisted's twisted/test/test_task.py (`DeferLaterTests`, `LoopingCallTests`), named at
// each test.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use deferred_core::{Cancelled, Failure, ManualClock};
use kind::{Deferred, LoopingCall, defer_later};

use super::support::{Count, unhandled};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A record of the clock's time at each call.
#[derive(Clone, Default)]
struct Times(Arc<Mutex<Vec<Duration>>>);

impl Times {
    fn push(&self, at: Duration) {
        self.0.lock().unwrap().push(at);
    }
    fn get(&self) -> Vec<Duration> {
        self.0.lock().unwrap().clone()
    }
}

/// Resolvers a test keeps until it ends: their work stays pending (neither fired nor dropped,
/// which would fail it with `NeverFired`), and is freed with the test instead of leaked
/// (`.ci/memcheck` counts a forgotten resolver as lost memory).
type Kept<T> = Arc<Mutex<Vec<kind::Resolver<T>>>>;

// ---------------------------------------------------------------------------------------------
// defer_later
// ---------------------------------------------------------------------------------------------

// Twisted: DeferLaterTests.test_callback
#[test]
fn defer_later_calls_after_the_delay_and_fires_with_the_result() {
    let clock = ManualClock::new();
    let ran = Count::new();
    let r = ran.clone();
    let d = defer_later(&clock, secs(3), move || {
        r.bump();
        Ok(7)
    });
    clock.advance(ms(2_999));
    assert_eq!(ran.get(), 0);
    assert!(!d.is_fired());
    clock.advance(ms(1));
    assert_eq!(ran.get(), 1);
    assert_eq!(d.wait().unwrap(), 7);
}

// Twisted: DeferLaterTests.test_errback
#[test]
fn defer_later_fails_with_the_calls_failure_or_panic() {
    let clock = ManualClock::new();
    let failed = defer_later(&clock, secs(1), || Err::<u32, _>(Failure::msg("no")));
    let panicked = defer_later(&clock, secs(1), || -> Result<u32, Failure> {
        panic!("boom")
    });
    clock.advance(secs(1));
    assert_eq!(failed.wait().unwrap_err().to_string(), "no");
    assert!(panicked.wait().unwrap_err().to_string().contains("boom"));
}

// Twisted: DeferLaterTests.test_cancel
#[test]
fn defer_later_cancelled_before_the_call_never_calls_and_fails_cancelled() {
    let clock = ManualClock::new();
    let ran = Count::new();
    let r = ran.clone();
    let d = defer_later(&clock, secs(1), move || {
        r.bump();
        Ok(())
    });
    assert_eq!(clock.pending(), 1);
    d.cancel();
    assert_eq!(clock.pending(), 0, "the clock's call was cancelled");
    clock.advance(secs(2));
    assert_eq!(ran.get(), 0);
    assert!(d.wait().unwrap_err().is::<Cancelled>());
}

#[test]
fn defer_later_waits_for_a_returned_deferred_and_a_cancel_then_reaches_it() {
    let clock = ManualClock::new();
    let cancels = Count::new();
    let c = cancels.clone();
    let kept = Kept::<u32>::default();
    let k = kept.clone();
    let d = defer_later(&clock, secs(1), move || {
        let (inner, resolver) = Deferred::<u32>::with_canceller(move || c.bump());
        k.lock().unwrap().push(resolver); // pending for ever unless cancelled
        inner
    });
    clock.advance(secs(1));
    assert!(!d.is_fired());
    d.cancel();
    assert_eq!(cancels.get(), 1);
    assert!(d.wait().unwrap_err().is_cancelled());
}

// ---------------------------------------------------------------------------------------------
// LoopingCall
// ---------------------------------------------------------------------------------------------

/// A loop that records the clock's time at each call.
fn recording(clock: &ManualClock) -> (LoopingCall, Times) {
    let times = Times::default();
    let (t, c) = (times.clone(), clock.clone());
    let lc = LoopingCall::new(clock.clone(), move || {
        t.push(c.now());
        Ok(())
    });
    (lc, times)
}

// Twisted: LoopingCallTests.test_basicFunction
#[test]
fn looping_call_now_calls_at_once_then_every_interval_until_stopped() {
    let clock = ManualClock::new();
    let (lc, times) = recording(&clock);
    let done = lc.start(secs(1), true);
    assert_eq!(times.get(), [secs(0)]);
    assert!(lc.is_running());
    clock.advance(ms(500));
    assert_eq!(times.get().len(), 1);
    clock.advance(ms(500));
    clock.advance(secs(2));
    assert_eq!(times.get(), [secs(0), secs(1), secs(2), secs(3)]);
    assert!(!done.is_fired());
    lc.stop();
    assert!(!lc.is_running());
    assert_eq!(clock.pending(), 0);
    done.wait().unwrap();
    assert_eq!(lc.calls(), 4);
}

// Twisted: LoopingCallTests.test_delayedStart
#[test]
fn looping_call_without_now_calls_first_after_one_interval() {
    let clock = ManualClock::new();
    clock.advance(secs(10)); // the schedule is from the start time, not from zero
    let (lc, times) = recording(&clock);
    let done = lc.start(secs(2), false);
    assert!(times.get().is_empty());
    clock.advance(secs(4));
    assert_eq!(times.get(), [secs(12), secs(14)]);
    lc.stop();
    done.wait().unwrap();
}

// Twisted: LoopingCallTests.test_stopAtOnce
#[test]
fn looping_call_stopped_at_once_after_a_call_now_fires() {
    let clock = ManualClock::new();
    let (lc, times) = recording(&clock);
    let done = lc.start(secs(0), true);
    lc.stop();
    assert_eq!(times.get().len(), 1);
    done.wait().unwrap();
    clock.advance(secs(1));
    assert_eq!(times.get().len(), 1);
}

// Twisted: LoopingCallTests.test_stoppingBeforeDelayedStart
#[test]
fn looping_call_stopped_before_its_delayed_start_never_calls() {
    let clock = ManualClock::new();
    let (lc, times) = recording(&clock);
    let done = lc.start(secs(10), false);
    lc.stop();
    clock.advance(secs(30));
    assert!(times.get().is_empty());
    done.wait().unwrap();
    lc.stop(); // not running: nothing
}

// Twisted: LoopingCallTests.testFailure
#[test]
fn looping_call_a_failing_call_stops_the_loop_and_fails_its_deferred() {
    let clock = ManualClock::new();
    let mut n = 0;
    let lc = LoopingCall::new(clock.clone(), move || {
        n += 1;
        if n == 3 {
            Err(Failure::msg("third call failed"))
        } else {
            Ok(())
        }
    });
    let done = lc.start(secs(1), true);
    clock.advance(secs(5));
    assert!(!lc.is_running());
    assert_eq!(lc.calls(), 3);
    assert_eq!(clock.pending(), 0);
    assert_eq!(done.wait().unwrap_err().to_string(), "third call failed");
}

#[test]
fn looping_call_a_panicking_call_is_a_failure() {
    let clock = ManualClock::new();
    let lc = LoopingCall::new(clock.clone(), || -> Result<(), Failure> {
        panic!("tick panicked")
    });
    let done = lc.start(secs(1), true);
    assert!(
        done.wait()
            .unwrap_err()
            .to_string()
            .contains("tick panicked")
    );
    assert!(!lc.is_running());
}

// Twisted: LoopingCallTests.testFailAndStop
#[test]
fn looping_call_a_call_that_stops_the_loop_then_fails_fails_the_deferred() {
    let clock = ManualClock::new();
    let slot: Arc<Mutex<Option<LoopingCall>>> = Arc::default();
    let me = slot.clone();
    let lc = LoopingCall::new(clock.clone(), move || {
        me.lock().unwrap().as_ref().unwrap().stop();
        Err::<(), _>(Failure::msg("failed after stop"))
    });
    *slot.lock().unwrap() = Some(lc.clone());
    let done = lc.start(secs(1), true);
    assert_eq!(done.wait().unwrap_err().to_string(), "failed after stop");
    slot.lock().unwrap().take();
}

// Twisted: LoopingCallTests.testEveryIteration (interval 0)
#[test]
fn looping_call_interval_zero_calls_again_through_the_clock_with_no_delay() {
    let clock = ManualClock::new();
    let slot: Arc<Mutex<Option<LoopingCall>>> = Arc::default();
    let me = slot.clone();
    let n = Count::new();
    let m = n.clone();
    let lc = LoopingCall::new(clock.clone(), move || {
        m.bump();
        if m.get() == 5 {
            me.lock().unwrap().as_ref().unwrap().stop();
        }
        Ok(())
    });
    *slot.lock().unwrap() = Some(lc.clone());
    let done = lc.start(secs(0), true);
    assert_eq!(n.get(), 1, "the next call goes through the clock");
    clock.advance(secs(0));
    assert_eq!(n.get(), 5);
    done.wait().unwrap();
    slot.lock().unwrap().take();
}

// Twisted: LoopingCallTests.test_reactorTimeSkips (the skip, here by a Deferred that fires late)
#[test]
fn looping_call_a_call_that_fires_late_skips_the_missed_calls() {
    let clock = ManualClock::new();
    let times = Times::default();
    let pending: Arc<Mutex<Vec<kind::Resolver<()>>>> = Arc::default();
    let (t, c, p) = (times.clone(), clock.clone(), pending.clone());
    let lc = LoopingCall::new(clock.clone(), move || {
        t.push(c.now());
        let (d, r) = Deferred::<()>::pending();
        p.lock().unwrap().push(r);
        d
    });
    let done = lc.start(secs(1), true); // call at 0, its Deferred pending
    clock.advance(ms(2_500));
    assert_eq!(times.get(), [secs(0)], "no call while one is in flight");
    pending.lock().unwrap().pop().unwrap().callback(()); // fires at 2.5 s: 1 s and 2 s missed
    clock.advance(ms(500));
    assert_eq!(
        times.get(),
        [secs(0), secs(3)],
        "on the grid from the start, not 3.5 s"
    );
    // A call that fires exactly on a due time: that one counts as missed, as in Twisted.
    clock.advance(secs(1));
    pending.lock().unwrap().pop().unwrap().callback(()); // at 4 s, for the call made at 3 s
    clock.advance(secs(1));
    assert_eq!(times.get(), [secs(0), secs(3), secs(5)]);
    lc.stop(); // during a call in flight: stops when it fires
    assert!(!done.is_fired());
    pending.lock().unwrap().pop().unwrap().callback(());
    done.wait().unwrap();
}

#[test]
fn looping_call_calls_do_not_drift_when_each_takes_time() {
    let clock = ManualClock::new();
    let times = Times::default();
    let pending: Arc<Mutex<Vec<kind::Resolver<()>>>> = Arc::default();
    let (t, c, p) = (times.clone(), clock.clone(), pending.clone());
    let lc = LoopingCall::new(clock.clone(), move || {
        t.push(c.now());
        let (d, r) = Deferred::<()>::pending();
        p.lock().unwrap().push(r);
        d
    });
    let _done = lc.start(secs(10), true);
    for _ in 0..5 {
        clock.advance(secs(3)); // each call's work takes 3 s
        pending.lock().unwrap().pop().unwrap().callback(());
        clock.advance(secs(7));
    }
    assert_eq!(
        times.get(),
        [0, 10, 20, 30, 40, 50].map(secs),
        "every 10 s from the start, not every 13 s"
    );
    lc.stop();
    pending.lock().unwrap().pop().unwrap().callback(());
}

#[test]
fn looping_call_cancelling_its_deferred_stops_it_and_cancels_the_call_in_flight() {
    let clock = ManualClock::new();
    let cancels = Count::new();
    let c = cancels.clone();
    let kept = Kept::<()>::default();
    let k = kept.clone();
    let lc = LoopingCall::new(clock.clone(), move || {
        let c = c.clone();
        let (d, r) = Deferred::<()>::with_canceller(move || c.bump());
        k.lock().unwrap().push(r);
        d
    });
    let done = lc.start(secs(1), true);
    done.cancel();
    assert_eq!(cancels.get(), 1);
    assert!(!lc.is_running());
    assert!(done.wait().unwrap_err().is_cancelled());

    // Between calls: the next call is cancelled.
    let (lc, times) = recording(&clock);
    let done = lc.start(secs(1), true);
    done.cancel();
    assert_eq!(clock.pending(), 0);
    clock.advance(secs(3));
    assert_eq!(times.get().len(), 1);
    assert!(done.wait().unwrap_err().is_cancelled());
}

#[test]
fn looping_call_can_start_again_after_it_stopped() {
    let clock = ManualClock::new();
    let (lc, times) = recording(&clock);
    let done = lc.start(secs(1), true);
    lc.stop();
    done.wait().unwrap();
    clock.advance(ms(300));
    let done = lc.start(secs(1), false);
    clock.advance(secs(1));
    assert_eq!(times.get(), [secs(0), ms(1_300)]);
    lc.stop();
    done.wait().unwrap();
}

#[test]
#[should_panic(expected = "running loop")]
fn looping_call_start_on_a_running_loop_panics() {
    /// Stops the loop when dropped: as the panic unwinds, here.
    struct StopOnDrop(LoopingCall);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            self.0.stop();
        }
    }
    let clock = ManualClock::new();
    let (lc, _times) = recording(&clock);
    let _done = lc.start(secs(1), false);
    // The loop's function holds the clock (`recording`): a running loop and its clock hold
    // each other until the loop stops; left running, both would be lost when the test ends.
    let _stop = StopOnDrop(lc.clone());
    let _again = lc.start(secs(1), false);
}

/// The second `start` panics, and leaves no Deferred reported unfired: the one it made fires
/// with a success nobody sees. The first loop runs on.
#[test]
fn looping_call_start_on_a_running_loop_leaves_nothing_unfired() {
    let clock = ManualClock::new();
    let (lc, times) = recording(&clock);
    let done = lc.start(secs(1), false);
    let (again, reported) = deferred_core::capture_unhandled(|| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lc.start(secs(1), false)))
    });
    lc.stop();
    done.wait().unwrap();
    let message = again.expect_err("a second start panics");
    let message = message.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(message.contains("running loop"), "{message}");
    assert!(reported.is_empty(), "{reported:?}");
    assert!(times.get().is_empty(), "stopped before its first call");
}

#[test]
fn looping_call_failure_of_a_stopped_loop_is_not_lost() {
    let marker = "LOOPING-FAILED-UNHANDLED";
    let before = unhandled(marker);
    let clock = ManualClock::new();
    let lc = LoopingCall::new(clock.clone(), move || Err::<(), _>(Failure::msg(marker)));
    drop(lc.start(secs(1), true)); // nobody handles the loop's failure
    assert_eq!(unhandled(marker), before + 1);
}

/// Rule 8: a loop stopped during a call and started again before that call's Deferred fires.
/// The call ends the first run (its Deferred fires, nothing is reported unfired), and only the
/// second run schedules calls: one timer, calls every interval from the second start.
#[test]
fn looping_call_started_again_during_a_call_of_the_run_it_stopped() {
    let clock = ManualClock::new();
    let times = Times::default();
    let t = times.clone();
    let c = clock.clone();
    let slow = Kept::<()>::default();
    let s = slow.clone();
    let lc = LoopingCall::new(clock.clone(), move || {
        t.push(c.now());
        if t.get().len() == 1 {
            let (d, r) = Deferred::<()>::pending();
            s.lock().unwrap().push(r);
            d
        } else {
            Deferred::succeed(())
        }
    });
    let ((first, second), reported) = deferred_core::capture_unhandled(|| {
        let mut first = lc.start(secs(1), true); // call 1: pending
        lc.stop(); // the first run stops when call 1 fires
        assert!(!lc.is_running());
        let second = lc.start(secs(1), false);
        assert!(lc.is_running());
        slow.lock().unwrap().pop().unwrap().callback(()); // call 1 ends the first run
        assert_eq!(first.poll_fired().map(|r| r.is_ok()), Some(true), "the first run fired");
        clock.advance(secs(2));
        assert_eq!(clock.pending(), 1, "one loop, one timer");
        lc.stop();
        assert_eq!(clock.pending(), 0);
        (first, second)
    });
    assert!(reported.is_empty(), "{reported:?}");
    first.wait().unwrap();
    second.wait().unwrap();
    assert_eq!(times.get(), [secs(0), secs(1), secs(2)]);
}

/// Rule 8, with the call itself stopping and starting the loop again: the call's Deferred ends
/// the run that made it, with its failure.
#[test]
fn looping_call_a_call_that_restarts_the_loop_then_fails_fails_its_own_run() {
    let clock = ManualClock::new();
    let calls = Count::new();
    let c = calls.clone();
    let handle: Arc<Mutex<Option<LoopingCall>>> = Arc::default();
    let h = handle.clone();
    let later: Arc<Mutex<Option<Deferred<()>>>> = Arc::default();
    let l = later.clone();
    let lc = LoopingCall::new(clock.clone(), move || {
        c.bump();
        if c.get() == 1 {
            let lc = h.lock().unwrap().clone().unwrap();
            lc.stop();
            *l.lock().unwrap() = Some(lc.start(secs(1), false));
            Err::<(), _>(Failure::msg("call 1 failed"))
        } else {
            Ok(())
        }
    });
    *handle.lock().unwrap() = Some(lc.clone());
    let first = lc.start(secs(1), true);
    assert_eq!(first.wait().unwrap_err().to_string(), "call 1 failed");
    assert!(lc.is_running(), "the second run runs on");
    clock.advance(secs(2));
    assert_eq!(calls.get(), 3);
    lc.stop();
    later.lock().unwrap().take().unwrap().wait().unwrap();
    handle.lock().unwrap().take(); // the loop and its handle hold each other
}

/// Rule 6 when the cancel comes while a call is being made (here, from the call itself): the
/// call's Deferred is cancelled once the call returns it.
#[test]
fn looping_call_cancelled_while_a_call_is_made_cancels_that_call() {
    let clock = ManualClock::new();
    let cancels = Count::new();
    let handle: Arc<Mutex<Option<kind::CancelHandle>>> = Arc::default();
    let (h, c) = (handle.clone(), cancels.clone());
    let kept = Kept::<()>::default();
    let k = kept.clone();
    let lc = LoopingCall::new(clock.clone(), move || {
        let c = c.clone();
        let (d, r) = Deferred::<()>::with_canceller(move || c.bump());
        k.lock().unwrap().push(r);
        if let Some(h) = h.lock().unwrap().take() {
            h.cancel();
        }
        d
    });
    let done = lc.start(secs(1), false);
    *handle.lock().unwrap() = Some(done.cancel_handle());
    clock.advance(secs(1));
    assert_eq!(cancels.get(), 1, "the call in flight is cancelled (rule 6)");
    assert!(!lc.is_running());
    assert_eq!(clock.pending(), 0);
    assert!(done.wait().unwrap_err().is_cancelled());
}

/// Rule 6: a cancelled call that answers with a failure other than a cancellation has that
/// failure reported (the loop's Deferred failed with `Cancelled`: nobody else sees it).
#[test]
fn looping_call_a_failure_a_cancelled_call_answers_with_is_reported() {
    let marker = "LOOPING-CANCEL-ANSWER";
    let clock = ManualClock::new();
    let lc = LoopingCall::new(clock.clone(), move || {
        let slot: Arc<Mutex<Option<kind::Resolver<()>>>> = Arc::default();
        let s = slot.clone();
        let (d, r) = Deferred::<()>::with_canceller(move || {
            if let Some(r) = s.lock().unwrap().take() {
                r.errback(Failure::msg(marker));
            }
        });
        *slot.lock().unwrap() = Some(r);
        d
    });
    let (cancelled, reported) = deferred_core::capture_unhandled(|| {
        let done = lc.start(secs(1), true);
        done.cancel();
        done.wait()
    });
    assert!(cancelled.unwrap_err().is_cancelled());
    let reported: Vec<String> = reported.iter().map(ToString::to_string).collect();
    assert_eq!(reported, [marker]);
}

/// Rule 8 with `now`: a call that stops the loop and starts it again at once. The new run's
/// first call comes while the function is still out (this call is being made): it is made when
/// this call returns, and the new run goes on calling, and fires on `stop`.
#[test]
fn looping_call_started_again_with_now_by_its_own_call_goes_on_calling() {
    let clock = ManualClock::new();
    let calls = Count::new();
    let c = calls.clone();
    let handle: Arc<Mutex<Option<LoopingCall>>> = Arc::default();
    let h = handle.clone();
    let later: Arc<Mutex<Option<Deferred<()>>>> = Arc::default();
    let l = later.clone();
    let lc = LoopingCall::new(clock.clone(), move || {
        c.bump();
        if c.get() == 1 {
            let lc = h.lock().unwrap().clone().unwrap();
            lc.stop();
            *l.lock().unwrap() = Some(lc.start(secs(1), true));
        }
        Ok::<(), Failure>(())
    });
    *handle.lock().unwrap() = Some(lc.clone());
    lc.start(secs(1), true).wait().unwrap();
    assert!(lc.is_running());
    assert_eq!(calls.get(), 2, "the second run's first call, made as the first returned");
    let second = later.lock().unwrap().take().unwrap();
    clock.advance(secs(3));
    assert_eq!(calls.get(), 5);
    lc.stop();
    assert_eq!(clock.pending(), 0);
    second.wait().unwrap();
    handle.lock().unwrap().take(); // the loop and its handle hold each other
}

/// Rules 2 and 3 past 2^64 ns (about 585 years) into a run: a call whose Deferred fires late
/// is followed by the next at `start + n x interval`. The delay left was cut to a `u64` of
/// nanoseconds, and the next call came at the wrong time.
#[test]
fn looping_call_a_late_call_past_2_64_ns_is_timed_from_the_start() {
    const YEAR: u64 = 365 * 24 * 3600;
    let clock = ManualClock::new();
    let times = Times::default();
    let slot: Arc<Mutex<Option<kind::Resolver<()>>>> = Arc::default();
    let (t, c, s) = (times.clone(), clock.clone(), slot.clone());
    let looping = LoopingCall::new(clock.clone(), move || {
        t.push(c.now());
        let (d, r) = Deferred::<()>::pending();
        *s.lock().unwrap() = Some(r);
        d
    });
    let interval = secs(1000 * YEAR);
    let done = looping.start(interval, true);
    assert_eq!(times.get(), [secs(0)]);
    // The first call's Deferred fires 600 years in: the next call is due at 1000 years.
    clock.advance(secs(600 * YEAR));
    slot.lock().unwrap().take().unwrap().callback(());
    clock.advance(secs(400 * YEAR) - Duration::from_nanos(1));
    assert_eq!(times.get(), [secs(0)], "no call before 1000 years");
    clock.advance(Duration::from_nanos(1));
    assert_eq!(times.get(), [secs(0), interval], "the next call at start + interval");
    looping.stop();
    slot.lock().unwrap().take().unwrap().callback(());
    drop(done);
}

/// Rule 2 at the end of `Duration`'s time: call *n* is due at `start + n x interval`, and a due
/// time past that end never comes. The `ManualClock` kept such a deadline at the end of time,
/// so once `advance` reached it, each call scheduled the next at that same instant and the loop
/// ran for ever inside one `advance` (here, until its third call fails and stops it).
#[test]
fn looping_call_a_due_time_past_the_end_of_time_never_comes() {
    let clock = ManualClock::new();
    let calls = Count::new();
    let counted = calls.clone();
    let looping = LoopingCall::new(clock.clone(), move || {
        counted.bump();
        if counted.get() == 3 {
            return Err(Failure::msg("called again at the end of time"));
        }
        Ok(())
    });
    let done = looping.start(Duration::MAX, false);
    clock.advance(Duration::MAX); // the first call is due at exactly the end of time
    assert_eq!(calls.get(), 1, "the second call is due past the end of time");
    assert!(looping.is_running() && !done.is_fired());
    assert_eq!(clock.pending(), 1);
    clock.advance(Duration::ZERO);
    assert_eq!(calls.get(), 1);
    looping.stop();
    done.wait().unwrap();
}

// ---------------------------------------------------------------------------------------------
// A clock nobody holds any more
// ---------------------------------------------------------------------------------------------

/// Bumps its count when dropped: held by a helper's function, it says when the helper is freed.
struct Freed(Count);

impl Drop for Freed {
    fn drop(&mut self) {
        self.0.bump();
    }
}

/// A loop on `clock` whose function holds a value that counts its drop in `freed`.
fn holding(clock: &ManualClock, freed: &Count) -> LoopingCall {
    let held = Freed(freed.clone());
    LoopingCall::new(clock.clone(), move || {
        let _ = &held;
        Ok(())
    })
}

/// A `ManualClock` whose every handle is gone can never be advanced: the loop's next call, which
/// holds the loop (and so its clock), is dropped with it, and the loop with the call, instead
/// of the schedule and the loop keeping each other for ever. The Deferred of `start` fails with
/// `NeverFired` (rule 9).
#[test]
fn a_looping_call_on_a_dropped_manual_clock_is_dropped_with_it() {
    for now in [false, true] {
        let freed = Count::new();
        let clock = ManualClock::new();
        let looping = holding(&clock, &freed);
        let done = looping.start(secs(1), now);
        assert_eq!(clock.pending(), 1);
        drop(looping);
        drop(clock);
        assert_eq!(freed.get(), 1, "now: {now}");
        assert!(done.wait().unwrap_err().is::<deferred_core::NeverFired>());
    }
}

/// The same, with the loop's handle and its Deferred dropped first: nothing is left.
#[test]
fn a_looping_call_left_running_is_freed_with_its_manual_clock() {
    let freed = Count::new();
    let clock = ManualClock::new();
    let looping = holding(&clock, &freed);
    drop(looping.start(secs(1), true));
    drop(looping);
    assert_eq!(freed.get(), 0, "the clock holds the running loop");
    clock.advance(secs(1));
    drop(clock);
    assert_eq!(freed.get(), 1);
}

/// `add_timeout`'s timer does not hold its clock: dropping the clock drops the timer, and the
/// chain it would have cancelled is freed with its handles.
#[test]
fn a_timeout_on_a_dropped_manual_clock_is_dropped_with_it() {
    let freed = Count::new();
    let clock = ManualClock::new();
    let held = Freed(freed.clone());
    let (d, resolver) = Deferred::<u32>::with_canceller(move || drop(held));
    let d = d.add_timeout(secs(1), &clock);
    assert_eq!(clock.pending(), 1);
    drop(clock);
    assert!(!d.is_fired(), "left untimed");
    drop(d);
    drop(resolver);
    assert_eq!(freed.get(), 1);
}
