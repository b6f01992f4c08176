//! `defer_later`, `LoopingCall` and `retry` on a `ManualClock`. The tests are written once
//! (tests/time/common.rs, tests/time/retry.rs) and run here for both kinds; those of a
//! `LoopingCall` shared by threads (tests/time/threads.rs) for the `Send` kind.

mod support;

mod send {
    mod kind {
        pub use deferred_core::{
            CancelHandle, Deferred, LoopingCall, Resolver, defer_later, retry, retry_if,
        };
    }
    include!("time/common.rs");
    include!("time/retry.rs");
    include!("time/threads.rs");
}

mod local {
    #![allow(clippy::arc_with_non_send_sync)]
    mod kind {
        pub use deferred_core::local::{CancelHandle, LoopingCall, defer_later, retry, retry_if};
        pub use deferred_core::{LocalDeferred as Deferred, LocalResolver as Resolver};
    }
    include!("time/common.rs");
    include!("time/retry.rs");
}

#[test]
fn looping_call_is_send_and_sync() {
    fn both<X: Send + Sync>() {}
    both::<deferred_core::LoopingCall>();
}

/// A program that picks its clock at run time keeps it boxed as a `dyn Clock`, and gives the
/// box (or an `Arc` of it, or a reference) wherever a clock is asked for.
#[test]
fn a_clock_picked_at_run_time_times_every_helper() {
    use deferred_core::{Clock, Deferred, ManualClock, ThreadClock, TimedOut, retry};
    use std::sync::Arc;
    use std::time::Duration;
    let manual = ManualClock::new();
    let testing = true;
    let clock: Arc<dyn Clock + Send + Sync> = if testing {
        Arc::new(manual.clone())
    } else {
        Arc::new(ThreadClock)
    };
    let (slow, _resolver) = Deferred::<u32>::pending();
    let slow = slow.add_timeout(Duration::from_secs(1), &*clock);
    let retried = retry(
        clock.clone(),
        deferred_core::RetryPolicy::exponential(Duration::from_secs(1)).max_attempts(1),
        || Ok::<u32, deferred_core::Failure>(7),
    );
    manual.advance(Duration::from_secs(1));
    assert!(slow.wait().unwrap_err().is::<TimedOut>());
    assert_eq!(retried.wait().unwrap(), 7);
    let boxed: Box<dyn Clock + Send + Sync> = Box::new(manual.clone());
    assert_eq!(boxed.now(), manual.now());
}

/// A local call on a `ManualClock` runs only on its own thread. A clock advanced past its due
/// time on another thread took it out of the schedule and dropped it there unmade, without its
/// owner hearing of it: a local `LoopingCall` stalled for ever (running, nothing scheduled, its
/// Deferred never fired; rule 9 did not apply either), and a local timeout never came. It stays
/// scheduled, and runs (late) in the next `advance` on its own thread.
#[test]
fn a_local_call_due_while_the_clock_is_advanced_on_another_thread_is_not_lost() {
    use deferred_core::local::LoopingCall;
    use deferred_core::{LocalDeferred, ManualClock, TimedOut};
    use std::cell::Cell;
    use std::rc::Rc;
    use std::time::Duration;

    let clock = ManualClock::new();
    let calls = Rc::new(Cell::new(0));
    let counted = calls.clone();
    let looping = LoopingCall::new(clock.clone(), move || {
        counted.set(counted.get() + 1);
        Ok(())
    });
    let done = looping.start(Duration::from_secs(1), false);
    let (query, _resolver) = LocalDeferred::<u32>::pending();
    let query = query.add_timeout(Duration::from_secs(1), &clock);

    let elsewhere = clock.clone();
    std::thread::spawn(move || elsewhere.advance(Duration::from_secs(1)))
        .join()
        .unwrap();
    assert_eq!(calls.get(), 0, "not made on the other thread");
    assert_eq!(clock.pending(), 2, "both still scheduled");

    clock.advance(Duration::ZERO);
    assert_eq!(calls.get(), 1);
    assert!(query.wait().unwrap_err().is::<TimedOut>());
    clock.advance(Duration::from_secs(1));
    assert_eq!(calls.get(), 2, "the loop goes on");
    looping.stop();
    done.wait().unwrap();
}

#[test]
fn a_policys_waits_say_how_many_are_left_and_stay_finished() {
    use deferred_core::RetryPolicy;
    use std::time::Duration;
    let policy = RetryPolicy::exponential(Duration::from_secs(1)).max_attempts(4);
    let mut delays = policy.delays();
    assert_eq!(delays.size_hint(), (3, Some(3)));
    assert_eq!(delays.by_ref().count(), 3);
    assert_eq!((delays.next(), delays.next()), (None, None));
    assert!(
        !format!("{policy:?}").contains("18446744073709551615"),
        "{policy:?}"
    );
}

/// The clocks, `RetryPolicy`'s waits and `defer_later` at their edges. Fixed with these tests: a
/// zero first wait became `Duration::MAX` once the multiplier's power overflowed (0 x inf is NaN,
/// which `min` made the cap), so a retry stalled; a huge `max_delay` was passed by rounding;
/// `defer_later` on a clock that dropped its call (a `ManualClock` dropped, an inbox stopped)
/// never fired and kept its function, in a cycle; a local call of a dropped `ManualClock` kept its
/// captures until the thread ended.
mod edges {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex, mpsc};
    use std::time::Duration;

    use deferred_core::{
        Clock, Deferred, LocalClock, ManualClock, RetryPolicy, ThreadClock, defer_later,
    };

    #[test]
    fn zero_initial_delays_stay_zero_when_the_multiplier_overflows() {
        let policy = RetryPolicy::exponential(Duration::ZERO)
            .multiplier(1e300)
            .jitter(0.0)
            .max_attempts(5);
        let waits: Vec<_> = policy.delays().collect();
        assert_eq!(waits, [Duration::ZERO; 4]);
    }

    #[test]
    fn zero_initial_delays_stay_zero_with_the_default_multiplier() {
        let policy = RetryPolicy::exponential(Duration::ZERO)
            .jitter(0.5)
            .max_attempts(1100);
        assert!(policy.delays().all(|d| d == Duration::ZERO));
    }

    #[test]
    fn a_retry_with_no_initial_wait_does_not_stall_when_the_multiplier_overflows() {
        let clock = ManualClock::new();
        let attempts = Arc::new(AtomicUsize::new(0));
        let count = attempts.clone();
        let policy = RetryPolicy::exponential(Duration::ZERO)
            .multiplier(1e300)
            .max_attempts(4);
        let done = deferred_core::retry(clock.clone(), policy, move || {
            count.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(deferred_core::Failure::msg("no"))
        });
        clock.advance(Duration::ZERO);
        assert_eq!(
            attempts.load(Ordering::SeqCst),
            4,
            "the third wait is {:?}",
            clock
        );
        assert!(done.is_fired());
    }

    #[test]
    fn no_wait_is_longer_than_max_delay() {
        let cap = Duration::new(1_000_000_000, 999_999_999);
        let policy = RetryPolicy::exponential(Duration::from_secs(u64::MAX / 2))
            .max_delay(cap)
            .jitter(0.0)
            .max_attempts(3);
        for wait in policy.delays() {
            assert!(wait <= cap, "{wait:?} > {cap:?}");
        }
    }

    #[test]
    fn thread_clock_runs_later_calls_after_a_panic() {
        let (tx, rx) = mpsc::channel();
        let _a = ThreadClock.call_later(Duration::from_millis(1), Box::new(|| panic!("boom")));
        let _b = ThreadClock.call_later(
            Duration::from_millis(20),
            Box::new(move || tx.send(()).unwrap()),
        );
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
    }

    #[test]
    fn thread_clock_cancel_from_inside_and_schedule_from_inside() {
        let (tx, rx) = mpsc::channel::<u32>();
        let slot: Arc<Mutex<Option<deferred_core::DelayedCall>>> = Arc::default();
        let tx2 = tx.clone();
        let victim = ThreadClock.call_later(
            Duration::from_millis(200),
            Box::new(move || tx2.send(99).unwrap()),
        );
        *slot.lock().unwrap() = Some(victim);
        let s = slot.clone();
        let tx3 = tx.clone();
        let _a = ThreadClock.call_later(
            Duration::from_millis(10),
            Box::new(move || {
                s.lock().unwrap().take().unwrap().cancel();
                let tx4 = tx3.clone();
                let _n = ThreadClock.call_later(
                    Duration::from_millis(10),
                    Box::new(move || tx4.send(1).unwrap()),
                );
            }),
        );
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), 1);
        assert!(rx.recv_timeout(Duration::from_millis(400)).is_err());
    }

    #[test]
    fn manual_clock_nested_scheduling_and_equal_deadlines() {
        let clock = ManualClock::new();
        let log = Arc::new(Mutex::new(Vec::new()));
        for i in 0..3 {
            let log = log.clone();
            let c = clock.clone();
            let _ = Clock::call_later(
                &clock,
                Duration::from_secs(1),
                Box::new(move || {
                    log.lock().unwrap().push(i);
                    let log = log.clone();
                    let _ = Clock::call_later(
                        &c,
                        Duration::ZERO,
                        Box::new(move || log.lock().unwrap().push(10 + i)),
                    );
                }),
            );
        }
        clock.advance(Duration::from_secs(1));
        assert_eq!(*log.lock().unwrap(), [0, 1, 2, 10, 11, 12]);
    }

    #[test]
    fn local_and_send_calls_on_a_manual_clock_keep_their_order() {
        let clock = ManualClock::new();
        let log = Arc::new(Mutex::new(Vec::new()));
        for i in 0..4 {
            let log = log.clone();
            if i % 2 == 0 {
                let _ = Clock::call_later(
                    &clock,
                    Duration::from_secs(1),
                    Box::new(move || log.lock().unwrap().push(i)),
                );
            } else {
                let _ = LocalClock::call_later(
                    &clock,
                    Duration::from_secs(1),
                    Box::new(move || log.lock().unwrap().push(i)),
                );
            }
        }
        clock.advance(Duration::from_secs(1));
        assert_eq!(*log.lock().unwrap(), [0, 1, 2, 3]);
    }

    struct DropCount(Arc<AtomicUsize>);
    impl Drop for DropCount {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn cancelled_captures_are_dropped() {
        let n = Arc::new(AtomicUsize::new(0));
        let clock = ManualClock::new();
        let d = DropCount(n.clone());
        Clock::call_later(&clock, Duration::from_secs(1), Box::new(move || drop(d))).cancel();
        let d = DropCount(n.clone());
        LocalClock::call_later(&clock, Duration::from_secs(1), Box::new(move || drop(d))).cancel();
        let d = DropCount(n.clone());
        ThreadClock
            .call_later(Duration::MAX, Box::new(move || drop(d)))
            .cancel();
        let d = DropCount(n.clone());
        ThreadClock
            .call_later(Duration::from_secs(u64::MAX / 4), Box::new(move || drop(d)))
            .cancel();
        assert_eq!(n.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn defer_later_cancel_on_thread_clock() {
        let n = Arc::new(AtomicUsize::new(0));
        let d = DropCount(n.clone());
        let later: Deferred<()> = defer_later(&ThreadClock, Duration::from_secs(100), move || {
            drop(d);
            Ok(())
        });
        later.cancel();
        assert!(later.wait().unwrap_err().is_cancelled());
        assert_eq!(n.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_local_call_of_a_dropped_manual_clock_is_dropped() {
        let n = Arc::new(AtomicUsize::new(0));
        let clock = ManualClock::new();
        let d = DropCount(n.clone());
        let _call =
            LocalClock::call_later(&clock, Duration::from_secs(1), Box::new(move || drop(d)));
        drop(clock);
        assert_eq!(n.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn local_defer_later_on_a_dropped_manual_clock_fails_never_fired() {
        let n = Arc::new(AtomicUsize::new(0));
        let clock = ManualClock::new();
        let d = DropCount(n.clone());
        let later = deferred_core::local::defer_later(&clock, Duration::from_secs(1), move || {
            drop(d);
            Ok(())
        });
        drop(clock);
        assert!(later.is_fired());
        assert!(later.wait().unwrap_err().is::<deferred_core::NeverFired>());
        assert_eq!(n.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn defer_later_on_a_dropped_manual_clock_fails_never_fired() {
        let n = Arc::new(AtomicUsize::new(0));
        let clock = ManualClock::new();
        let d = DropCount(n.clone());
        let later = defer_later(&clock, Duration::from_secs(1), move || {
            drop(d);
            Ok(())
        });
        drop(clock);
        assert!(later.is_fired());
        assert!(later.wait().unwrap_err().is::<deferred_core::NeverFired>());
        assert_eq!(n.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn local_defer_later_on_a_stopped_inbox_fails_never_fired() {
        let n = Arc::new(AtomicUsize::new(0));
        let inbox = deferred_core::Inbox::new(|| {});
        let clock = inbox.clock();
        let d = DropCount(n.clone());
        let later =
            deferred_core::local::defer_later(&clock, Duration::from_secs(3600), move || {
                drop(d);
                Ok(())
            });
        drop(inbox);
        assert!(
            later.is_fired(),
            "a local Deferred still waiting when its loop stops fails"
        );
        assert!(later.wait().unwrap_err().is::<deferred_core::NeverFired>());
        assert_eq!(n.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_paused_chain_is_still_timed() {
        let clock = ManualClock::new();
        let (inner, _inner_resolver) = Deferred::<u32>::pending();
        let (d, r) = Deferred::<u32>::pending();
        let d = d.add_callback(move |_| inner);
        r.callback(1);
        let fired_before = d.is_fired();
        let d = d.add_timeout(Duration::from_secs(1), &clock);
        clock.advance(Duration::from_secs(1));
        assert!(
            d.is_fired(),
            "paused chain untimed (is_fired before: {fired_before})"
        );
        assert!(d.wait().unwrap_err().is::<deferred_core::TimedOut>());
    }
}

/// `retry` on a clock whose timer can fire before `call_later` returns (a timer thread racing
/// the thread that scheduled it): the wait a cancel must stop is the newest. The spent timer was
/// stored over it, and a cancel left the next wait on the clock (with the retry's core).
mod retry_timer_race {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use deferred_core::{Failure, ManualClock, RetryPolicy, retry};

    /// A clock whose first timer fires (on its own thread, as a timer thread would) before
    /// `call_later` has returned: the scheduling thread was preempted right after scheduling. The
    /// other timers are a ManualClock's.
    struct EagerOnce {
        manual: ManualClock,
        eager: std::sync::atomic::AtomicBool,
    }

    impl deferred_core::Clock for EagerOnce {
        fn call_later(
            &self,
            delay: Duration,
            call: Box<dyn FnOnce() + Send>,
        ) -> deferred_core::DelayedCall {
            if self.eager.swap(false, Ordering::SeqCst) {
                std::thread::spawn(call).join().unwrap();
                return deferred_core::DelayedCall::new(|| {});
            }
            deferred_core::Clock::call_later(&self.manual, delay, call)
        }
        fn now(&self) -> Duration {
            self.manual.now()
        }
    }

    /// Rule 3 of `retry`: cancelling the result cancels the wait for the next attempt. When the
    /// timer of one wait fires before the step that scheduled it has stored it (a timer thread
    /// racing the failing attempt's thread), and the attempt it makes fails at once, the next wait
    /// is the one a cancel must stop, not the spent one.
    #[test]
    fn cancel_stops_the_wait_scheduled_while_the_previous_timer_was_being_stored() {
        let manual = ManualClock::new();
        let clock = Arc::new(EagerOnce {
            manual: manual.clone(),
            eager: true.into(),
        });
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        let d = retry(
            clock,
            RetryPolicy::exponential(Duration::from_secs(1))
                .jitter(0.0)
                .max_attempts(5),
            move || {
                c.fetch_add(1, Ordering::SeqCst);
                Err::<u32, _>(Failure::msg("refused"))
            },
        );
        assert_eq!(
            count.load(Ordering::SeqCst),
            2,
            "the eager timer made the second attempt"
        );
        assert_eq!(manual.pending(), 1, "the wait for the third");
        d.cancel();
        assert!(d.wait().unwrap_err().is_cancelled());
        assert_eq!(
            manual.pending(),
            0,
            "the cancel left the wait for the third attempt scheduled"
        );
        manual.advance(Duration::from_secs(100));
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }
}

mod looping_timer_race {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::Duration;

    use deferred_core::{Clock, DelayedCall, LoopingCall, ManualClock};

    /// A clock whose first timer fires (on its own thread, as `ThreadClock`'s timer thread
    /// would) before `call_later` has returned: the scheduling thread was preempted right after
    /// scheduling. The other timers are a ManualClock's.
    struct EagerOnce {
        manual: ManualClock,
        eager: AtomicBool,
    }

    impl Clock for EagerOnce {
        fn call_later(&self, delay: Duration, call: Box<dyn FnOnce() + Send>) -> DelayedCall {
            if self.eager.swap(false, Ordering::SeqCst) {
                std::thread::spawn(call).join().unwrap();
                return DelayedCall::new(|| {});
            }
            Clock::call_later(&self.manual, delay, call)
        }
        fn now(&self) -> Duration {
            self.manual.now()
        }
    }

    /// Rule 5 of `LoopingCall`: `stop` cancels the next scheduled call. When the timer of one
    /// call fires before the thread that scheduled it has stored it, the call it makes schedules
    /// the next one: that is the one `stop` (or a cancel of the Deferred of `start`) must take
    /// off the clock, not the spent one.
    #[test]
    fn stop_cancels_the_call_scheduled_while_the_previous_timer_was_being_stored() {
        let manual = ManualClock::new();
        let clock = Arc::new(EagerOnce {
            manual: manual.clone(),
            eager: true.into(),
        });
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        let looping = LoopingCall::new(clock, move || {
            c.fetch_add(1, Ordering::SeqCst);
            Ok(())
        });
        let done = looping.start(Duration::from_secs(10), false);
        assert_eq!(
            count.load(Ordering::SeqCst),
            1,
            "the eager timer made the first call"
        );
        assert_eq!(manual.pending(), 1, "the second call");
        looping.stop();
        done.wait().unwrap();
        assert_eq!(
            manual.pending(),
            0,
            "the stop left the second call scheduled (holding the loop until its deadline)"
        );
        manual.advance(Duration::from_secs(100));
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    /// The same for rule 6: cancelling the Deferred of `start` takes the next call off the clock.
    #[test]
    fn cancel_cancels_the_call_scheduled_while_the_previous_timer_was_being_stored() {
        let manual = ManualClock::new();
        let clock = Arc::new(EagerOnce {
            manual: manual.clone(),
            eager: true.into(),
        });
        let looping = LoopingCall::new(clock, || Ok(()));
        let done = looping.start(Duration::from_secs(10), false);
        assert_eq!(manual.pending(), 1, "the second call");
        done.cancel();
        assert!(done.wait().unwrap_err().is_cancelled());
        assert_eq!(
            manual.pending(),
            0,
            "the cancel left the second call scheduled"
        );
        assert!(!looping.is_running());
    }
}

/// Claims of the clock docs (deferred-core/src/clock.rs) not checked elsewhere.
mod clock_docs {
    use std::cell::Cell;
    use std::rc::Rc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex, mpsc};
    use std::time::Duration;

    use deferred_core::{Clock, LocalClock, ManualClock, Panicked, ThreadClock, UnhandledCapture};

    /// `DelayedCall` and `LocalDelayedCall`: "Dropping it does not cancel the call."
    #[test]
    fn dropping_a_delayed_call_does_not_cancel_it() {
        let clock = ManualClock::new();
        let rang = Arc::new(AtomicBool::new(false));
        let flag = rang.clone();
        drop(Clock::call_later(
            &clock,
            Duration::from_secs(1),
            Box::new(move || flag.store(true, Ordering::SeqCst)),
        ));
        let local_rang = Rc::new(Cell::new(false));
        let local_flag = local_rang.clone();
        drop(LocalClock::call_later(
            &clock,
            Duration::from_secs(1),
            Box::new(move || local_flag.set(true)),
        ));
        assert_eq!(clock.pending(), 2);
        clock.advance(Duration::from_secs(1));
        assert!(rang.load(Ordering::SeqCst));
        assert!(local_rang.get());
    }

    /// `ManualClock`: "Clones share one clock."
    #[test]
    fn manual_clock_clones_share_one_clock() {
        let clock = ManualClock::new();
        let other = clock.clone();
        let rang = Arc::new(AtomicBool::new(false));
        let flag = rang.clone();
        let _call = Clock::call_later(
            &clock,
            Duration::from_secs(2),
            Box::new(move || flag.store(true, Ordering::SeqCst)),
        );
        assert_eq!(other.pending(), 1);
        other.advance(Duration::from_secs(2));
        assert!(rang.load(Ordering::SeqCst));
        assert_eq!(clock.now(), Duration::from_secs(2));
        assert_eq!(clock.pending(), 0);
    }

    /// `ManualClock::advance`: "While a call runs, the clock reads that call's deadline, so a
    /// call it schedules is timed from there"; after it, the clock reads the target.
    #[test]
    fn a_manual_clock_reads_each_calls_deadline_while_it_runs() {
        let clock = ManualClock::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        for secs in [3, 1] {
            let (c, log) = (clock.clone(), seen.clone());
            let _ = Clock::call_later(
                &clock,
                Duration::from_secs(secs),
                Box::new(move || {
                    log.lock().unwrap().push(c.now());
                    if secs == 1 {
                        // Timed from 1s: due at 3.5s, within this advance.
                        let (c2, log) = (c.clone(), log.clone());
                        let _ = Clock::call_later(
                            &c,
                            Duration::from_millis(2500),
                            Box::new(move || log.lock().unwrap().push(c2.now())),
                        );
                    }
                }),
            );
        }
        clock.advance(Duration::from_secs(5));
        assert_eq!(
            *seen.lock().unwrap(),
            [
                Duration::from_secs(1),
                Duration::from_secs(3),
                Duration::from_millis(3500)
            ]
        );
        assert_eq!(clock.now(), Duration::from_secs(5));
    }

    std::thread_local! {
        static TIMER_THREAD_CAPTURE: std::cell::RefCell<Option<UnhandledCapture>> =
            const { std::cell::RefCell::new(None) };
    }

    /// `ThreadClock`: "A panic in a call is reported as an unhandled failure; the timer thread
    /// goes on." The report is made on the timer thread, so the capture is started there, by a
    /// call due before the panicking one, and finished by a call due after it (calls run in
    /// deadline order on the one timer thread). Other tests' reports on that thread meanwhile
    /// are told apart by their text.
    #[test]
    fn a_panic_in_a_thread_clock_call_is_reported_and_the_timer_thread_goes_on() {
        let (tx, rx) = mpsc::channel::<Vec<String>>();
        let started: Arc<Mutex<Option<std::thread::ThreadId>>> = Arc::default();
        let start = started.clone();
        let _a = ThreadClock.call_later(
            Duration::from_millis(1),
            Box::new(move || {
                *start.lock().unwrap() = Some(std::thread::current().id());
                TIMER_THREAD_CAPTURE
                    .with(|slot| *slot.borrow_mut() = Some(UnhandledCapture::start()));
            }),
        );
        let _b = ThreadClock.call_later(
            Duration::from_millis(2),
            Box::new(|| panic!("thread-clock-call-boom")),
        );
        let finish = started.clone();
        let _c = ThreadClock.call_later(
            Duration::from_millis(3),
            Box::new(move || {
                assert_eq!(*finish.lock().unwrap(), Some(std::thread::current().id()));
                let capture = TIMER_THREAD_CAPTURE.with(|slot| slot.borrow_mut().take());
                let texts = capture
                    .expect("started by the first call")
                    .finish()
                    .iter()
                    .map(|f| match f.downcast_ref::<Panicked>() {
                        Some(panic) => panic.message().to_owned(),
                        None => f.to_string(),
                    })
                    .filter(|text| text.contains("thread-clock-call-boom"))
                    .collect();
                tx.send(texts).unwrap();
            }),
        );
        let texts = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the timer thread did not go on");
        assert_eq!(texts, ["thread-clock-call-boom"]);
    }
}
