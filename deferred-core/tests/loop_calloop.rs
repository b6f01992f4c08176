//! The calloop integration, on a real `EventLoop` dispatched by the test's thread: a worker
//! thread's result, a calloop timer and a local chain meet on the loop's thread. The only
//! waits are real timers' (and no test asserts a duration).
#![cfg(feature = "calloop")]

mod support;

use std::cell::Cell;
use std::rc::Rc;
use std::thread;
use std::time::Duration;

use calloop::EventLoop;
use deferred_core::{CalloopClock, Failure, Inbox, LocalClock, LocalDeferred, TimedOut};

/// Longest one dispatch sleeps: a guard against a hung test, not a timing assertion.
const HUNG: Duration = Duration::from_secs(60);

fn dispatch_until(event_loop: &mut EventLoop<'static, ()>, done: impl Fn() -> bool) {
    while !done() {
        event_loop.dispatch(Some(HUNG), &mut ()).unwrap();
    }
}

#[test]
fn a_worker_result_a_timer_and_a_local_chain_meet_on_the_loop_thread() {
    let mut event_loop = EventLoop::<()>::try_new().unwrap();
    let inbox = Inbox::on_calloop(&event_loop.handle()).unwrap();
    let clock = CalloopClock::new(event_loop.handle());
    let home = thread::current().id();

    let worker = inbox.defer_to_thread(|| Ok::<_, Failure>(thread::current().id()));
    let (tick, ring) = LocalDeferred::<()>::pending();
    let timer_ran_on = Rc::new(Cell::new(None));
    let seen = timer_ran_on.clone();
    let _timer = clock.call_later(
        Duration::from_millis(10),
        Box::new(move || {
            seen.set(Some(thread::current().id()));
            ring.callback(());
        }),
    );
    let met = tick
        .add_callback(move |()| worker) // the chain waits for the worker's result
        .add_callback(move |worker_id| Ok((worker_id, thread::current().id())));

    dispatch_until(&mut event_loop, || met.is_fired());
    let (worker_id, step_id) = met.wait().unwrap();
    assert_ne!(worker_id, home);
    assert_eq!(step_id, home);
    assert_eq!(timer_ran_on.get(), Some(home));
}

#[test]
fn an_inbox_outliving_its_loop_is_drained_by_the_next_one_it_is_given_to() {
    let first = EventLoop::<()>::try_new().unwrap();
    let inbox = Inbox::on_calloop(&first.handle()).unwrap();
    let (reply, resolver) = inbox.pending::<u32, Failure>();
    let reply = reply.add_callback(|n| Ok(n + 1));
    drop(first); // and its source with it: the reply will wait in the inbox
    thread::spawn(move || resolver.callback(41)).join().unwrap();
    assert!(inbox.has_pending());

    let mut second = EventLoop::<()>::try_new().unwrap();
    let again = Inbox::on_calloop(&second.handle()).unwrap(); // this thread's inbox, drained here
    assert_eq!(format!("{again:?}"), format!("{inbox:?}"));
    dispatch_until(&mut second, || reply.is_fired());
    assert_eq!(reply.wait().unwrap(), 42);
    let later = inbox.defer_to_thread(|| Ok::<u32, Failure>(7));
    dispatch_until(&mut second, || later.is_fired()); // woken by the new loop's ping
    assert_eq!(later.wait().unwrap(), 7);
    // While a loop drains it, a second one is refused.
    let third = EventLoop::<()>::try_new().unwrap();
    let handle = third.handle();
    let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Inbox::on_calloop(&handle).map(drop)
    }));
    assert!(refused.is_err());
}

#[test]
fn a_home_resolver_fired_on_another_thread_wakes_a_sleeping_loop() {
    let mut event_loop = EventLoop::<()>::try_new().unwrap();
    let inbox = Inbox::on_calloop(&event_loop.handle()).unwrap();
    let (d, resolver) = inbox.pending::<u32, Failure>();
    let d = d.add_callback(|n| Ok((n + 1, thread::current().id())));
    let firing = thread::spawn(move || resolver.callback(41));
    dispatch_until(&mut event_loop, || d.is_fired()); // each dispatch sleeps until the ping
    firing.join().unwrap();
    assert_eq!(d.wait().unwrap(), (42, thread::current().id()));

    // The loop stops with the inbox: a later post is refused.
    let handle = inbox.handle();
    drop(inbox);
    assert!(handle.post(|| {}).is_err());
    event_loop.dispatch(Some(Duration::ZERO), &mut ()).unwrap();
}

/// 8 threads post at once, each 1,000 results and 1,000 plain works: first while this thread
/// dispatches the loop (woken by the inbox's ping each post): everything comes home, on this
/// thread, in each poster's order. Then again, with the work piled up in the inbox before the
/// loop dispatches. A lost wake-up would leave work queued and the loop asleep in a dispatch
/// that then returns only at its bound, with nothing done: that fails the test.
#[test]
fn eight_threads_posting_at_once_all_come_home_in_each_posters_order() {
    posting_at_once_all_come_home(8, 1_000);
}

/// The same with 256 threads, each 20 results and 20 plain works: more posters than cores by
/// far, most of them preempted mid-post.
#[test]
fn two_hundred_fifty_six_threads_posting_at_once_all_come_home_in_each_posters_order() {
    posting_at_once_all_come_home(256, 20);
}

fn posting_at_once_all_come_home(threads: u32, each: u32) {
    let mut event_loop = EventLoop::<()>::try_new().unwrap();
    let inbox = Inbox::on_calloop(&event_loop.handle()).unwrap();
    for pile_up in [false, true] {
        let mut posters = support::posters::Posters::start(&inbox, threads, each);
        if pile_up {
            posters.wait_posted();
        }
        while !posters.done() {
            let asleep = std::time::Instant::now();
            event_loop.dispatch(Some(HUNG), &mut ()).unwrap();
            // A guard against a hang (a lost wake-up), not a timing assertion.
            assert!(
                posters.done() || asleep.elapsed() < HUNG,
                "the loop slept through a post: its ping was lost"
            );
        }
        posters.check();
    }
}

/// 32 threads post at once while the loop is busy with other sources: a timer that fires at
/// every dispatch (it asks to fire again at once), and a ping that another thread rings without
/// pause. Every result and post still comes home, on this thread, in each poster's order, and
/// the other sources still fire once the posters are done.
#[test]
fn thirty_two_threads_posting_to_a_busy_loop_all_come_home_in_each_posters_order() {
    use calloop::ping::make_ping;
    use calloop::timer::{TimeoutAction, Timer};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let mut event_loop = EventLoop::<()>::try_new().unwrap();
    let inbox = Inbox::on_calloop(&event_loop.handle()).unwrap();
    let (timer_fired, pinged) = (Rc::new(Cell::new(0_u64)), Rc::new(Cell::new(0_u64)));
    let fired = timer_fired.clone();
    event_loop
        .handle()
        .insert_source(Timer::immediate(), move |_, _, _| {
            fired.set(fired.get() + 1);
            TimeoutAction::ToDuration(Duration::ZERO)
        })
        .unwrap();
    let (ping, ping_source) = make_ping().unwrap();
    let rung = pinged.clone();
    event_loop
        .handle()
        .insert_source(ping_source, move |(), _, _| rung.set(rung.get() + 1))
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let ringer = {
        let stop = stop.clone();
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                ping.ping();
                thread::yield_now();
            }
        })
    };

    let posters = support::posters::Posters::start(&inbox, 32, 200);
    // The busy sources end every dispatch at once: a lost wake-up leaves work in the inbox
    // while the loop goes round. A guard against that hang, not a timing assertion.
    let began = std::time::Instant::now();
    while !posters.done() {
        event_loop.dispatch(Some(HUNG), &mut ()).unwrap();
        assert!(
            posters.done() || began.elapsed() < HUNG,
            "work was left in the inbox with no wake-up to drain it"
        );
    }
    posters.check();

    // The other sources still fire after the drains.
    let (fired, rang) = (timer_fired.get(), pinged.get());
    dispatch_until(&mut event_loop, || {
        timer_fired.get() > fired && pinged.get() > rang
    });
    stop.store(true, Ordering::Relaxed);
    ringer.join().unwrap();
}

#[test]
fn add_timeout_on_the_calloop_clock_times_out_and_lets_a_result_that_comes_first_through() {
    let mut event_loop = EventLoop::<()>::try_new().unwrap();
    let inbox = Inbox::on_calloop(&event_loop.handle()).unwrap();
    let clock = CalloopClock::new(event_loop.handle());

    let (silent, _resolver) = inbox.pending::<u32, Failure>();
    let silent = silent.add_timeout(Duration::from_millis(20), &clock);
    dispatch_until(&mut event_loop, || silent.is_fired());
    let failure = silent.wait().unwrap_err();
    assert!(failure.is::<TimedOut>(), "{failure}");

    // A generous deadline: the result, fired at once on another thread, always comes first.
    let (quick, resolver) = inbox.pending::<u32, Failure>();
    let quick = quick.add_timeout(Duration::from_secs(30), &clock);
    thread::spawn(move || resolver.callback(1)).join().unwrap();
    dispatch_until(&mut event_loop, || quick.is_fired());
    assert_eq!(quick.wait().unwrap(), 1);

    // A cancelled call never runs: a later call is the fence.
    let rang = Rc::new(Cell::new(false));
    let flag = rang.clone();
    clock
        .call_later(Duration::from_millis(10), Box::new(move || flag.set(true)))
        .cancel();
    let fence = Rc::new(Cell::new(false));
    let reached = fence.clone();
    let _fence = clock.call_later(
        Duration::from_millis(40),
        Box::new(move || reached.set(true)),
    );
    dispatch_until(&mut event_loop, || fence.get());
    assert!(!rang.get());
}

/// Run as a child process by the test below (so that its stderr can be read): a `wait` on the
/// thread of a calloop loop that drains the inbox, for a Deferred fired from a plain thread
/// after the warning's delay.
#[test]
fn wait_on_a_calloop_thread_in_child() {
    if std::env::var_os("DEFERRED_CALLOOP_WAIT_PROBE").is_none() {
        return;
    }
    let event_loop = EventLoop::<()>::try_new().unwrap();
    let inbox = Inbox::on_calloop(&event_loop.handle()).unwrap();
    let (d, home) = inbox.pending::<u32, Failure>();
    let firing = thread::spawn(move || {
        thread::sleep(Duration::from_millis(2_500));
        home.callback(9);
    });
    assert_eq!(d.wait().unwrap(), 9); // the wait drains the inbox itself
    firing.join().unwrap();
    // With no loop on the thread any more, nothing is said.
    drop(event_loop);
    let (d, resolver) = deferred_core::Deferred::<u32>::pending();
    let firing = thread::spawn(move || {
        thread::sleep(Duration::from_millis(2_500));
        resolver.callback(8);
    });
    assert_eq!(d.wait().unwrap(), 8);
    firing.join().unwrap();
}

/// A `wait` that has blocked the thread of a calloop loop for a while says why it may never
/// return (a timer of that loop cannot fire while `wait` keeps it from dispatching), once.
#[test]
fn a_wait_that_blocks_a_calloop_loop_says_so() {
    let stderr = support::stderr_of_child(
        "wait_on_a_calloop_thread_in_child",
        "DEFERRED_CALLOOP_WAIT_PROBE",
    );
    let said: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("on the thread of a calloop event loop"))
        .collect();
    assert_eq!(
        said.len(),
        1,
        "said once, while a loop drains the inbox:\n{stderr}"
    );
    assert!(
        said[0].contains(&format!("`wait` at {}:", file!())),
        "{stderr}"
    );
    assert!(said[0].contains("Dispatch the loop"), "{stderr}");
}

/// Cancelling a call that has run does nothing, however many timers were made and removed
/// since. calloop reuses a removed source's slot, and the version its token carries wraps after
/// 65,536 reuses: the cancel of the call that ran first, with its stale token, removed the
/// timer that then held its slot.
#[test]
fn cancelling_a_call_that_ran_leaves_a_timer_that_reuses_its_slot() {
    let mut event_loop = EventLoop::<()>::try_new().unwrap();
    let clock = CalloopClock::new(event_loop.handle());
    let ran = Rc::new(Cell::new(false));
    let flag = ran.clone();
    let first = clock.call_later(Duration::ZERO, Box::new(move || flag.set(true)));
    dispatch_until(&mut event_loop, || ran.get());
    for _ in 0..u16::MAX {
        clock
            .call_later(Duration::from_secs(3600), Box::new(|| {}))
            .cancel();
    }
    let fired = Rc::new(Cell::new(false));
    let flag = fired.clone();
    let _second = clock.call_later(Duration::from_millis(1), Box::new(move || flag.set(true)));
    first.cancel(); // it has run: nothing to cancel
    let begun = std::time::Instant::now();
    while !fired.get() && begun.elapsed() < HUNG {
        event_loop
            .dispatch(Some(Duration::from_millis(10)), &mut ())
            .unwrap();
    }
    assert!(fired.get(), "the timer that reused the slot was removed");
}

/// When the inbox stops, its ping source leaves the loop, and its file descriptor is closed
/// (this thread kept a ping of it, so the source stayed until the next `on_calloop`). In a
/// child process of its own, where no other test opens or closes files meanwhile.
#[test]
fn the_inbox_stopping_removes_its_source_in_child() {
    if std::env::var_os("DEFERRED_CALLOOP_SOURCE_PROBE").is_none() {
        return;
    }
    fn open_fds() -> usize {
        std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
    }
    let mut event_loop = EventLoop::<()>::try_new().unwrap();
    let before = open_fds();
    drop(Inbox::on_calloop(&event_loop.handle()).unwrap());
    for _ in 0..5 {
        event_loop
            .dispatch(Some(Duration::from_millis(10)), &mut ())
            .unwrap();
    }
    assert_eq!(open_fds(), before, "the ping's file is still open");
}

#[test]
fn the_inbox_stopping_removes_its_source_from_the_loop() {
    support::stderr_of_child(
        "the_inbox_stopping_removes_its_source_in_child",
        "DEFERRED_CALLOOP_SOURCE_PROBE",
    );
}

/// A call whose captures touch the loop when dropped (here: a resolver, dropped unfired, whose
/// chain's errback sets a timeout on the same clock).
#[test]
fn cancelling_a_calloop_call_whose_captures_use_the_clock_when_dropped() {
    let mut event_loop = EventLoop::<()>::try_new().unwrap();
    let clock = CalloopClock::new(event_loop.handle());
    let (d, resolver) = LocalDeferred::<()>::pending();
    let clock2 = clock.clone();
    let errback_ran = Rc::new(Cell::new(false));
    let e = errback_ran.clone();
    let _d = d.add_errback(move |_f| {
        e.set(true);
        let (other, _r) = LocalDeferred::<()>::pending();
        drop(other.add_timeout(Duration::from_secs(1), &clock2));
        Ok(())
    });
    let call = clock.call_later(
        Duration::from_secs(60),
        Box::new(move || resolver.callback(())),
    );
    call.cancel();
    assert!(errback_ran.get());
    let result = _d.wait();
    assert!(result.is_ok(), "{:#}", result.unwrap_err());
    event_loop.dispatch(Some(Duration::ZERO), &mut ()).unwrap();
}

/// A guard that cancels a call of its own when dropped, captured by another call that is
/// cancelled: the first cancel drops the guard, which cancels the second.
#[test]
fn cancelling_a_calloop_call_that_holds_a_guard_cancelling_another_call() {
    struct CancelOnDrop(Option<deferred_core::LocalDelayedCall>);
    impl Drop for CancelOnDrop {
        fn drop(&mut self) {
            if let Some(call) = self.0.take() {
                call.cancel();
            }
        }
    }
    let mut event_loop = EventLoop::<()>::try_new().unwrap();
    let clock = CalloopClock::new(event_loop.handle());
    let ran = Rc::new(Cell::new(0));
    let r = ran.clone();
    let keepalive = clock.call_later(
        Duration::from_millis(1),
        Box::new(move || r.set(r.get() + 1)),
    );
    let guard = CancelOnDrop(Some(keepalive));
    let outer = clock.call_later(Duration::from_secs(60), Box::new(move || drop(guard)));
    let cancelled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| outer.cancel()));
    assert!(cancelled.is_ok(), "the cancel panicked");
    std::thread::sleep(Duration::from_millis(5));
    for _ in 0..3 {
        event_loop
            .dispatch(Some(Duration::from_millis(5)), &mut ())
            .unwrap();
    }
    assert_eq!(ran.get(), 0, "the guard's call was not cancelled");
}

/// A `defer_later` on a `CalloopClock` still waiting when the user drops the loop, the clock
/// and the Deferred: nothing can run the call any more. It should fail with `NeverFired` (as
/// on every clock that drops its call) and let the loop go, so that the next loop of the
/// thread can drain its inbox.
#[test]
fn a_defer_later_pending_when_the_calloop_loop_is_dropped_lets_the_loop_go() {
    std::thread::spawn(|| {
        let event_loop = EventLoop::<()>::try_new().unwrap();
        let inbox = deferred_core::Inbox::on_calloop(&event_loop.handle()).unwrap();
        let clock = CalloopClock::new(event_loop.handle());
        let outcome: Rc<std::cell::RefCell<Option<String>>> =
            Rc::new(std::cell::RefCell::new(None));
        let seen = outcome.clone();
        let _d = deferred_core::local::defer_later(&clock, Duration::from_secs(3600), || {
            Ok::<_, Failure>(())
        })
        .add_both(move |result| {
            *seen.borrow_mut() = Some(match &result {
                Ok(()) => "ok".into(),
                Err(failure) => format!("{failure}"),
            });
            Ok(())
        });
        drop(_d);
        drop(clock);
        drop(event_loop);
        let outcome = outcome.borrow().clone();
        assert!(
            outcome.as_deref().is_some_and(|o| o.contains("never")),
            "the defer_later's Deferred: {outcome:?}"
        );
        // The loop is gone: the next one drains this thread's inbox.
        let next = EventLoop::<()>::try_new().unwrap();
        let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            deferred_core::Inbox::on_calloop(&next.handle()).map(drop)
        }));
        assert!(again.is_ok(), "on_calloop panicked: the old loop was kept");
        drop(inbox);
    })
    .join()
    .unwrap();
}

/// A call that holds the clock (a timer that sets the next one), waiting when the user drops the
/// loop and every handle of theirs: the clock held the loop strongly, and the loop's source held
/// the call, so the two kept each other for ever. The call never ran nor was dropped (its chain
/// never heard: no `NeverFired`), the loop leaked, and the next loop of the thread could not
/// drain its inbox (`on_calloop` panicked, saying the thread had an inbox already).
#[test]
fn a_waiting_call_that_holds_the_calloop_clock_lets_the_loop_go() {
    std::thread::spawn(|| {
        let event_loop = EventLoop::<()>::try_new().unwrap();
        let inbox = Inbox::on_calloop(&event_loop.handle()).unwrap();
        let clock = CalloopClock::new(event_loop.handle());
        let (d, resolver) = LocalDeferred::<()>::pending();
        let outcome: Rc<std::cell::RefCell<Option<String>>> = Rc::default();
        let seen = outcome.clone();
        let _d = d.add_both(move |result| {
            *seen.borrow_mut() = Some(match &result {
                Ok(()) => "ok".into(),
                Err(failure) => format!("{failure}"),
            });
            Ok(())
        });
        let next_timer = clock.clone();
        let _call = clock.call_later(
            Duration::from_secs(3600),
            Box::new(move || {
                drop(next_timer.call_later(Duration::ZERO, Box::new(|| {})));
                resolver.callback(());
            }),
        );
        drop(clock);
        drop(event_loop);
        let outcome = outcome.borrow().clone();
        assert!(
            outcome.as_deref().is_some_and(|o| o.contains("never")),
            "the call's Deferred: {outcome:?}"
        );
        let next = EventLoop::<()>::try_new().unwrap();
        let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Inbox::on_calloop(&next.handle()).map(drop)
        }));
        assert!(again.is_ok(), "on_calloop panicked: the old loop was kept");
        drop(inbox);
    })
    .join()
    .unwrap();
}

/// A `LoopingCall` running on a `CalloopClock` when the user drops the loop (and the
/// `LoopingCall`): nothing can call it any more, so its Deferred fails with `NeverFired`, as on
/// the other clocks whose loop stops: it does not stay pending for ever, keeping the loop.
#[test]
fn a_looping_call_on_the_calloop_clock_ends_when_the_loop_is_dropped() {
    std::thread::spawn(|| {
        let mut event_loop = EventLoop::<()>::try_new().unwrap();
        let clock = CalloopClock::new(event_loop.handle());
        let calls = Rc::new(Cell::new(0));
        let counted = calls.clone();
        let looping = deferred_core::local::LoopingCall::new(clock, move || {
            counted.set(counted.get() + 1);
            Ok::<_, Failure>(())
        });
        let outcome: Rc<std::cell::RefCell<Option<String>>> = Rc::default();
        let seen = outcome.clone();
        let _done = looping
            .start(Duration::from_millis(1), true)
            .add_both(move |result| {
                *seen.borrow_mut() = Some(match &result {
                    Ok(_) => "ok".into(),
                    Err(failure) => format!("{failure}"),
                });
                Ok(())
            });
        dispatch_until(&mut event_loop, || calls.get() >= 2);
        drop(looping);
        drop(event_loop);
        let outcome = outcome.borrow().clone();
        assert!(
            outcome.as_deref().is_some_and(|o| o.contains("never")),
            "the LoopingCall's Deferred: {outcome:?}"
        );
    })
    .join()
    .unwrap();
}

/// The message of the panic of an `on_calloop` on a thread whose inbox another calloop loop,
/// still alive, drains: it names that loop and what to drop, not `Inbox::new`'s "this thread
/// has an Inbox already: use that one (`Inbox::current()`, or a clone) instead of making a
/// second one", which names neither.
#[test]
fn on_calloop_while_another_live_loop_drains_the_inbox_says_what_to_drop() {
    std::thread::spawn(|| {
        let first = EventLoop::<()>::try_new().unwrap();
        let kept = first.handle(); // keeps the first loop, its `EventLoop` dropped
        let inbox = Inbox::on_calloop(&first.handle()).unwrap();
        drop(first);
        let second = EventLoop::<()>::try_new().unwrap();
        let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Inbox::on_calloop(&second.handle()).map(drop)
        }));
        let payload = refused.expect_err("a second loop took the inbox of a live one");
        let message = support::panic_text(&*payload);
        assert!(
            message.contains("calloop loop") && message.contains("LoopHandle"),
            "{message}"
        );
        // Once the last handle is gone, the next loop drains it.
        drop(kept);
        let again = Inbox::on_calloop(&second.handle()).unwrap();
        drop((again, inbox));
    })
    .join()
    .unwrap();
}

/// `Inbox::on_calloop` panics "if this thread has an inbox already ... that `Inbox::new` (or
/// another integration) made; the message says which, and what to drop".
#[test]
fn on_calloop_on_a_thread_with_an_inbox_of_inbox_new_says_what_to_drop() {
    thread::spawn(|| {
        let own = Inbox::new(|| {});
        let event_loop = EventLoop::<()>::try_new().unwrap();
        let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Inbox::on_calloop(&event_loop.handle()).map(drop)
        }));
        let payload = refused.expect_err("took the inbox `Inbox::new` made");
        let message = support::panic_text(&*payload);
        assert!(
            message.contains("no calloop loop drains") && message.contains("drop it first"),
            "{message}"
        );
        drop(own);
        let inbox = Inbox::on_calloop(&event_loop.handle()).unwrap();
        drop(inbox);
    })
    .join()
    .unwrap();
}

/// `CalloopClock`: "It needs no inbox", and once the loop is gone "a call made on the clock
/// after that is dropped at once" (a `defer_later` on it fails with `NeverFired`).
#[test]
fn a_call_on_a_calloop_clock_whose_loop_is_gone_is_dropped_at_once() {
    thread::spawn(|| {
        assert!(Inbox::current().is_none());
        let event_loop = EventLoop::<()>::try_new().unwrap();
        let clock = CalloopClock::new(event_loop.handle());
        drop(event_loop);
        let held = Rc::new(());
        let captured = held.clone();
        let call = clock.call_later(Duration::from_secs(1), Box::new(move || drop(captured)));
        assert_eq!(Rc::strong_count(&held), 1, "the call was kept");
        call.cancel();
        let d = deferred_core::local::defer_later(&clock, Duration::from_secs(1), || {
            Ok::<_, Failure>(())
        });
        assert!(d.is_fired());
        assert!(d.wait().unwrap_err().is::<deferred_core::NeverFired>());
    })
    .join()
    .unwrap();
}
