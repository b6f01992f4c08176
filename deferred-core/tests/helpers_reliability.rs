//! Reliability of the helpers and integrations built on the state machine: cancel at every point
//! (before the start, while waiting on a clock, while an attempt or call is in flight, after it
//! fired), panics in the user's code (steps, cancellers, a retry attempt, a LoopingCall's
//! function, a queue consumer's callback, an inbox's wake-up callback), and the unhandled
//! reports they make, counted with a per-thread capture.
//!
//! The helpers' tests on a `ManualClock` are written once (tests/reliability/kinds.rs) and run
//! here for both kinds; `drive_future`, the inbox and its clock, tokio's `LocalSet` and calloop
//! follow, on real threads, timers and loops (bounded: every wait has a deadline).

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use deferred_core::{
    Deferred, Failure, Inbox, InboxClock, LocalClock, NeverFired, Panicked, UnhandledCapture,
    capture_unhandled,
};

mod send {
    mod kind {
        pub use deferred_core::{
            Deferred, DeferredQueue, LoopingCall, Resolver, SharedResult, defer_later,
            first_settled, retry, retry_if,
        };
    }
    include!("reliability/kinds.rs");
}

mod local {
    #![allow(clippy::arc_with_non_send_sync)]
    mod kind {
        pub use deferred_core::local::{
            DeferredQueue, LoopingCall, SharedResult, defer_later, first_settled, retry, retry_if,
        };
        pub use deferred_core::{LocalDeferred as Deferred, LocalResolver as Resolver};
    }
    include!("reliability/kinds.rs");
}

const PREFIX: &str = "deliberate panic: ";

/// The longest any test waits for a loop or thread: a guard against a hang, not a timing check.
const HUNG: Duration = Duration::from_secs(30);

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

fn panic_message(f: &Failure) -> Option<String> {
    f.downcast_ref::<Panicked>().map(|p| p.message().to_owned())
}

// ---- drive_future -------------------------------------------------------------------------------

/// Counts its drops: a future that holds it is dropped when the count goes up.
struct Dropped(Arc<AtomicUsize>);

impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

#[test]
fn drive_future_cancelled_while_awaiting_drops_the_future_and_a_late_fire_does_nothing() {
    let capture = UnhandledCapture::start();
    let drops = Arc::new(AtomicUsize::new(0));
    let (inner, resolver) = Deferred::<u32>::pending();
    let guard = Dropped(drops.clone());
    let d = Deferred::<u32>::drive_future(async move {
        let _guard = guard;
        inner.await
    });
    assert!(!d.is_fired());
    d.cancel();
    assert_eq!(drops.load(SeqCst), 1, "the future is dropped at the cancel");
    assert!(d.wait().unwrap_err().is_cancelled());
    // The awaited Deferred was dropped with the future: its late result goes nowhere.
    thread::spawn(move || resolver.callback(1)).join().unwrap();
    assert!(capture.finish().is_empty());
}

#[test]
fn drive_future_cancelled_after_it_completed_keeps_its_value() {
    let d = Deferred::<u32>::drive_future(async { Ok(3) });
    d.cancel();
    assert_eq!(d.wait().unwrap(), 3);
}

#[test]
fn drive_future_cancel_racing_the_wake_from_another_thread_ends_it_exactly_once() {
    // Bounded: 2,000 rounds, each a cancel on this thread against a fire on another.
    for round in 0..2_000 {
        let drops = Arc::new(AtomicUsize::new(0));
        let ends = Arc::new(AtomicUsize::new(0));
        let (inner, resolver) = Deferred::<u32>::pending();
        let guard = Dropped(drops.clone());
        let e = ends.clone();
        let d = Deferred::<u32>::drive_future(async move {
            let _guard = guard;
            inner.await
        })
        .add_both(move |result| {
            e.fetch_add(1, SeqCst);
            Ok::<_, Failure>(result.is_ok())
        });
        let firing = thread::spawn(move || resolver.callback(round));
        d.cancel();
        firing.join().unwrap();
        let _succeeded = d.wait().unwrap();
        assert_eq!(ends.load(SeqCst), 1, "round {round}");
        assert_eq!(
            drops.load(SeqCst),
            1,
            "round {round}: the future dropped once"
        );
    }
}

#[test]
fn drive_future_panicking_in_poll_fails_with_the_panic_and_a_dropped_one_is_reported_once() {
    quiet_panics();
    let d = Deferred::<u32>::drive_future(async { panic!("{PREFIX}poll") });
    assert_eq!(
        panic_message(&d.wait().unwrap_err()).as_deref(),
        Some("deliberate panic: poll")
    );
    let (inner, resolver) = Deferred::<u32>::pending();
    let dropped = Deferred::<u32>::drive_future(async move {
        inner.await?;
        panic!("{PREFIX}after a wake")
    });
    drop(dropped);
    let ((), reports) = capture_unhandled(|| resolver.callback(1));
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(
        panic_message(&reports[0]).as_deref(),
        Some("deliberate panic: after a wake")
    );
}

// ---- the inbox ----------------------------------------------------------------------------------

/// An inbox whose wake-up sends on a channel, and a way to run it until `done`.
fn inbox_with_channel() -> (Inbox, mpsc::Receiver<()>) {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let inbox = Inbox::new(move || {
        let _ = tx.lock().unwrap().send(());
    });
    (inbox, rx)
}

fn run_until(inbox: &Inbox, woken: &mpsc::Receiver<()>, done: impl Fn() -> bool) {
    let deadline = Instant::now() + HUNG;
    while !done() {
        assert!(Instant::now() < deadline, "the loop hung");
        let _ = woken.recv_timeout(Duration::from_millis(50));
        inbox.run_pending();
    }
}

#[test]
fn a_panicking_wake_up_is_reported_once_per_post_and_results_still_come_home() {
    quiet_panics();
    let capture = UnhandledCapture::start();
    let wakes = Arc::new(AtomicUsize::new(0));
    let w = wakes.clone();
    let inbox = Inbox::new(move || {
        w.fetch_add(1, SeqCst);
        panic!("{PREFIX}wake-up");
    });
    let (d, home) = inbox.pending::<u32, Failure>();
    let d = d.add_callback(|n| Ok(n + 1));
    let handle = inbox.handle();
    let (posted, reports) = thread::spawn(move || {
        let (posted, reports) = capture_unhandled(|| {
            home.callback(1);
            handle.post(|| {}).is_ok()
        });
        (
            posted,
            reports.iter().filter_map(panic_message).collect::<Vec<_>>(),
        )
    })
    .join()
    .unwrap();
    assert!(posted, "the post went in though the wake-up panicked");
    assert_eq!(
        reports,
        vec!["deliberate panic: wake-up"; 2],
        "once per post, on the poster"
    );
    assert_eq!(wakes.load(SeqCst), 2);
    assert_eq!(inbox.run_pending(), 2);
    assert_eq!(d.wait().unwrap(), 2);
    assert!(
        capture.finish().is_empty(),
        "nothing reported on the loop's thread"
    );
}

#[test]
fn an_inbox_deferred_cancelled_on_the_loop_before_its_far_side_fires() {
    let capture = UnhandledCapture::start();
    let (inbox, woken) = inbox_with_channel();
    let cancels = Rc::new(Cell::new(0));
    let c = cancels.clone();
    let (d, home) = inbox.pending_with_canceller::<u32, Failure>(move || c.set(c.get() + 1));
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let d = d.add_callback(move |n| {
        r.set(true);
        Ok(n)
    });
    d.cancel();
    assert_eq!(
        cancels.get(),
        1,
        "the canceller runs on the loop's thread, at the cancel"
    );
    thread::spawn(move || home.callback(5)).join().unwrap();
    run_until(&inbox, &woken, || !inbox.has_pending());
    assert!(!ran.get());
    assert!(d.wait().unwrap_err().is_cancelled());
    assert!(capture.finish().is_empty());
}

#[test]
fn a_stopped_inbox_refuses_posts_and_its_far_sides_fire_into_nothing() {
    let capture = UnhandledCapture::start();
    let (inbox, _woken) = inbox_with_channel();
    let handle = inbox.handle();
    let (d, home) = inbox.pending::<u32, Failure>();
    drop(inbox);
    assert!(handle.is_stopped() && home.is_stopped());
    assert!(d.wait().unwrap_err().is::<NeverFired>());
    let refused = thread::spawn(move || {
        home.callback(1);
        handle.post(|| unreachable!("never runs")).is_err()
    })
    .join()
    .unwrap();
    assert!(refused);
    assert!(capture.finish().is_empty());
}

#[test]
fn inbox_clock_defer_later_cancelled_while_waiting_never_runs_and_the_clock_goes_on() {
    let capture = UnhandledCapture::start();
    let (inbox, woken) = inbox_with_channel();
    let clock: InboxClock = inbox.clock();
    let ran = Rc::new(Cell::new(0));
    let r = ran.clone();
    let cancelled =
        deferred_core::local::defer_later(&clock, Duration::from_millis(20), move || {
            r.set(r.get() + 1);
            Ok::<(), Failure>(())
        });
    cancelled.cancel();
    let later = deferred_core::local::defer_later(&clock, Duration::from_millis(40), || {
        Ok::<u32, Failure>(1)
    });
    run_until(&inbox, &woken, || later.is_fired());
    assert_eq!(later.wait().unwrap(), 1);
    assert_eq!(ran.get(), 0);
    assert!(cancelled.wait().unwrap_err().is_cancelled());

    // A timer cancelled after it fired (its call ran) does nothing.
    let fired = Rc::new(Cell::new(false));
    let f = fired.clone();
    let call = clock.call_later(Duration::ZERO, Box::new(move || f.set(true)));
    run_until(&inbox, &woken, || fired.get());
    call.cancel();
    assert!(capture.finish().is_empty());
}

#[test]
fn inbox_clock_looping_call_cancelled_with_a_call_on_the_pool_stops_it() {
    let capture = UnhandledCapture::start();
    let (inbox, woken) = inbox_with_channel();
    let clock = inbox.clock();
    let calls = Rc::new(Cell::new(0));
    let (c, pool) = (calls.clone(), inbox.clone());
    let (release, gate) = mpsc::channel::<()>();
    let gate = Arc::new(std::sync::Mutex::new(gate));
    let lc = deferred_core::local::LoopingCall::new(clock, move || {
        c.set(c.get() + 1);
        let gate = gate.clone();
        // The call is in flight on a pool thread until the test releases it.
        pool.defer_to_thread(move || {
            let _ = gate.lock().unwrap().recv_timeout(HUNG);
            Ok::<(), Failure>(())
        })
    });
    let done = lc.start(Duration::from_millis(5), true);
    assert_eq!(calls.get(), 1);
    done.cancel();
    assert!(!lc.is_running());
    release.send(()).unwrap();
    // The pool's answer comes home to a cancelled call: nothing runs after it.
    let deadline = Instant::now() + Duration::from_millis(100);
    while Instant::now() < deadline {
        let _ = woken.recv_timeout(Duration::from_millis(10));
        inbox.run_pending();
    }
    assert_eq!(calls.get(), 1);
    assert!(done.wait().unwrap_err().is_cancelled());
    assert!(capture.finish().is_empty());
}

// ---- tokio's LocalSet ---------------------------------------------------------------------------

#[cfg(feature = "tokio")]
mod on_tokio {
    use super::*;
    use deferred_core::{RetryError, RetryPolicy, TokioLocalClock};
    use tokio::runtime::Builder;
    use tokio::task::LocalSet;

    #[test]
    fn a_local_retry_on_tokio_cancelled_while_waiting_then_with_an_attempt_on_the_pool() {
        let rt = Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        LocalSet::new().block_on(&rt, async {
            let capture = UnhandledCapture::start();
            let inbox = Inbox::on_tokio_local_set();
            let attempts = Rc::new(Cell::new(0));
            let (a, pool) = (attempts.clone(), inbox.clone());
            let policy = RetryPolicy::exponential(Duration::from_secs(1))
                .jitter(0.0)
                .max_attempts(10);
            let d =
                deferred_core::local::retry(TokioLocalClock::new(), policy.clone(), move || {
                    a.set(a.get() + 1);
                    pool.defer_to_thread(|| Err::<u32, Failure>(Failure::msg("refused")))
                });
            // Two attempts fail, then it waits 2 s on tokio's clock: cancelled there.
            while attempts.get() < 2 {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            d.cancel();
            tokio::time::sleep(Duration::from_secs(60)).await;
            assert_eq!(attempts.get(), 2);
            assert!(d.await.unwrap_err().is_cancelled());

            // Cancelled while an attempt runs on the pool: its answer, when it comes home, is
            // ignored, and nothing is retried.
            let attempts = Rc::new(Cell::new(0));
            let (a, pool) = (attempts.clone(), inbox.clone());
            let d = deferred_core::local::retry(TokioLocalClock::new(), policy, move || {
                a.set(a.get() + 1);
                pool.defer_to_thread(|| {
                    std::thread::sleep(Duration::from_millis(20));
                    Err::<u32, Failure>(Failure::msg("refused"))
                })
            });
            d.cancel();
            tokio::time::sleep(Duration::from_secs(60)).await;
            assert_eq!(attempts.get(), 1);
            let failure = d.await.unwrap_err();
            assert!(failure.is_cancelled() && !failure.is::<RetryError>());
            assert!(capture.finish().is_empty());
        });
    }

    #[test]
    fn a_panicking_local_looping_call_on_tokio_fails_once_and_the_local_set_goes_on() {
        quiet_panics();
        let rt = Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        LocalSet::new().block_on(&rt, async {
            let capture = UnhandledCapture::start();
            let _inbox = Inbox::on_tokio_local_set();
            let calls = Rc::new(Cell::new(0));
            let c = calls.clone();
            let lc = deferred_core::local::LoopingCall::new(TokioLocalClock::new(), move || {
                c.set(c.get() + 1);
                if c.get() == 3 {
                    panic!("{PREFIX}tokio tick");
                }
                Ok::<(), Failure>(())
            });
            let done = lc.start(Duration::from_secs(1), true);
            let failure = done.await.unwrap_err();
            assert_eq!(
                panic_message(&failure).as_deref(),
                Some("deliberate panic: tokio tick")
            );
            assert_eq!(calls.get(), 3);
            tokio::time::sleep(Duration::from_secs(10)).await;
            assert_eq!(calls.get(), 3, "stopped");
            // The LocalSet still runs local chains and timers.
            let later = deferred_core::local::defer_later(
                &TokioLocalClock::new(),
                Duration::from_secs(1),
                || Ok::<u32, Failure>(7),
            );
            assert_eq!(later.await.unwrap(), 7);
            assert!(capture.finish().is_empty());
        });
    }
}

// ---- calloop ----------------------------------------------------------------------------------

#[cfg(feature = "calloop")]
mod on_calloop {
    use super::*;
    use calloop::EventLoop;
    use deferred_core::CalloopClock;

    #[test]
    fn a_local_looping_call_on_calloop_cancelled_while_waiting_and_in_flight() {
        let capture = UnhandledCapture::start();
        let mut event_loop = EventLoop::<()>::try_new().unwrap();
        let inbox = Inbox::on_calloop(&event_loop.handle()).unwrap();
        let clock = CalloopClock::new(event_loop.handle());
        let calls = Rc::new(Cell::new(0));
        let c = calls.clone();
        let lc = deferred_core::local::LoopingCall::new(clock.clone(), move || {
            c.set(c.get() + 1);
            Ok::<(), Failure>(())
        });
        let done = lc.start(Duration::from_millis(5), false);
        done.cancel(); // waiting on calloop's timer
        let deadline = Instant::now() + Duration::from_millis(50);
        while Instant::now() < deadline {
            event_loop
                .dispatch(Some(Duration::from_millis(10)), &mut ())
                .unwrap();
        }
        assert_eq!(calls.get(), 0);
        assert!(done.wait().unwrap_err().is_cancelled());

        // In flight: the call waits on a worker thread's result coming home through the inbox.
        let (c, pool) = (calls.clone(), inbox.clone());
        let cancels = Rc::new(Cell::new(0));
        let x = cancels.clone();
        let lc = deferred_core::local::LoopingCall::new(clock, move || {
            c.set(c.get() + 1);
            let x = x.clone();
            let (d, home) = pool.pending_with_canceller::<(), Failure>(move || x.set(x.get() + 1));
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(10));
                home.callback(());
            });
            d
        });
        let done = lc.start(Duration::from_millis(5), true);
        done.cancel();
        assert_eq!((calls.get(), cancels.get()), (1, 1));
        let deadline = Instant::now() + Duration::from_millis(60);
        while Instant::now() < deadline {
            event_loop
                .dispatch(Some(Duration::from_millis(10)), &mut ())
                .unwrap();
        }
        assert_eq!(calls.get(), 1);
        assert!(done.wait().unwrap_err().is_cancelled());
        assert!(capture.finish().is_empty());
    }
}
