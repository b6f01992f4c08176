//! The generic inbox, on a hand-written loop: a thread that sleeps on a channel the inbox's
//! wake-up sends to, and drains the inbox when woken. Threads are ordered by joins, barriers
//! and channels; the only sleeps are real timers' (and no test asserts a duration).

mod support;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Barrier, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread::{self, ThreadId};
use std::time::Duration;

use deferred_core::{
    Deferred, Failure, Inbox, LocalClock, LocalDeferred, NeverFired, NoUnhandled, Panicked,
    Stopped, TimedOut, UnhandledCapture, capture_unhandled,
};

/// Longest a loop sleeps before the test is declared hung (a guard, not a timing assertion).
const HUNG: Duration = Duration::from_secs(60);

/// A hand-written event loop on the test's thread.
struct Loop {
    inbox: Inbox,
    woken: Receiver<()>,
}

impl Loop {
    fn new() -> Loop {
        let (wake, woken) = mpsc::channel();
        let inbox = Inbox::new(move || {
            let _ = wake.send(());
        });
        Loop { inbox, woken }
    }

    /// Sleeps until woken and drains the inbox, until `done`.
    fn run_until(&self, done: impl Fn() -> bool) {
        while !done() {
            self.woken
                .recv_timeout(HUNG)
                .expect("the loop was never woken");
            self.inbox.run_pending();
        }
    }
}

/// The texts of unhandled failures collected by a capture: a panic's message, else the
/// failure's. Each test captures on the thread that reports (the loop's, or a poster's), so it
/// sees its own reports and no other test's.
fn texts(failures: &[Failure]) -> Vec<String> {
    failures
        .iter()
        .map(|f| match f.downcast_ref::<Panicked>() {
            Some(panic) => panic.message().to_owned(),
            None => f.to_string(),
        })
        .collect()
}

#[test]
fn home_resolvers_fired_from_16_threads_at_once_all_come_home_to_the_loop_thread() {
    let event_loop = Loop::new();
    let home = thread::current().id();
    let arrived: Rc<RefCell<Vec<(u32, ThreadId)>>> = Rc::default();
    let barrier = Arc::new(Barrier::new(16));
    let mut firing = Vec::new();
    let mut chains = Vec::new();
    for n in 0..16u32 {
        let (d, resolver) = event_loop.inbox.pending::<u32, Failure>();
        let log = arrived.clone();
        chains.push(d.add_callback(move |value| {
            log.borrow_mut().push((value, thread::current().id()));
            Ok(())
        }));
        let barrier = barrier.clone();
        firing.push(thread::spawn(move || {
            barrier.wait();
            resolver.callback(n);
            thread::current().id()
        }));
    }
    let firers: Vec<ThreadId> = firing.into_iter().map(|t| t.join().unwrap()).collect();
    event_loop.run_until(|| arrived.borrow().len() == 16);

    let mut values: Vec<u32> = arrived.borrow().iter().map(|(v, _)| *v).collect();
    values.sort();
    assert_eq!(values, (0..16).collect::<Vec<_>>());
    assert!(arrived.borrow().iter().all(|(_, id)| *id == home));
    assert!(!firers.contains(&home));
    for chain in chains {
        chain.wait().unwrap();
    }
}

#[test]
fn a_home_resolver_dropped_unfired_on_another_thread_fails_its_deferred_with_never_fired() {
    let event_loop = Loop::new();
    let (d, resolver) = event_loop.inbox.pending::<u32, Failure>();
    thread::spawn(move || drop(resolver)).join().unwrap();
    event_loop.run_until(|| d.is_fired());
    let failure = d.wait().unwrap_err();
    let never_fired = failure.downcast_ref::<NeverFired>().unwrap();
    assert!(!never_fired.loop_stopped(), "{failure}");
}

#[test]
fn an_adopted_deferred_fired_on_another_thread_runs_its_local_steps_on_the_loop_thread() {
    let event_loop = Loop::new();
    let (d, resolver) = Deferred::<u32>::pending();
    let ran_on = Rc::new(Cell::new(None));
    let seen = ran_on.clone();
    let local = event_loop.inbox.adopt(d).add_callback(move |n| {
        seen.set(Some(thread::current().id()));
        Ok(n + 1)
    });
    thread::spawn(move || resolver.callback(41)).join().unwrap();
    event_loop.run_until(|| local.is_fired());
    assert_eq!(local.wait().unwrap(), 42);
    assert_eq!(ran_on.get(), Some(thread::current().id()));
}

#[test]
fn cancelling_an_adopted_local_deferred_cancels_the_deferred() {
    let event_loop = Loop::new();
    let cancelled = Arc::new(AtomicBool::new(false));
    let flag = cancelled.clone();
    let (d, resolver) = Deferred::<u32>::with_canceller(move || flag.store(true, Ordering::SeqCst));
    let local = event_loop.inbox.adopt(d);
    local.cancel();
    assert!(
        cancelled.load(Ordering::SeqCst),
        "the upstream canceller ran"
    );
    assert!(local.wait().unwrap_err().is_cancelled());
    // The upstream's late result is ignored, and nothing is left waiting on the loop.
    thread::spawn(move || resolver.callback(1)).join().unwrap();
    event_loop.inbox.run_pending();
    assert!(!event_loop.inbox.has_pending());
}

/// A Deferred whose canceller answers (fires it from a slot): cancelling it gives the answer.
fn answering_deferred(answer: Result<u32, &'static str>) -> Deferred<u32> {
    let slot: Arc<Mutex<Option<deferred_core::Resolver<u32>>>> = Arc::default();
    let kept = slot.clone();
    let (d, resolver) = Deferred::<u32>::with_canceller(move || {
        if let Some(resolver) = kept.lock().unwrap().take() {
            resolver.fire(answer.map_err(Failure::msg));
        }
    });
    *slot.lock().unwrap() = Some(resolver);
    d
}

/// Cancelling an adopted Deferred whose canceller answers gives the answer, value or failure,
/// as cancelling the Deferred itself does: the answer came home through the inbox after the
/// local chain had failed with `Cancelled`, and was dropped unseen (a failure lost).
#[test]
fn cancelling_an_adopted_deferred_whose_canceller_answers_gives_the_answer() {
    let direct = answering_deferred(Ok(99));
    direct.cancel();
    assert_eq!(direct.wait().unwrap(), 99);

    let event_loop = Loop::new();
    let _no_unhandled = NoUnhandled::start();
    let local = event_loop
        .inbox
        .adopt(answering_deferred(Ok(99)))
        .add_callback(|n| Ok(n + 1));
    local.cancel();
    event_loop.inbox.run_pending();
    assert_eq!(local.wait().unwrap(), 100);

    let local = event_loop.inbox.adopt(answering_deferred(Err("partial")));
    local.cancel();
    event_loop.inbox.run_pending();
    let failure = local.wait().unwrap_err();
    assert_eq!(failure.to_string(), "partial");
    assert!(!event_loop.inbox.has_pending());
}

/// A result that came home before the cancel is not an answer to it: the cancel wins.
#[test]
fn cancelling_an_adopted_deferred_whose_result_came_home_already_fails_with_cancelled() {
    let event_loop = Loop::new();
    let (d, resolver) = Deferred::<u32>::pending();
    let local = event_loop.inbox.adopt(d);
    thread::spawn(move || resolver.callback(1)).join().unwrap();
    assert!(event_loop.inbox.has_pending());
    local.cancel();
    assert!(local.wait().unwrap_err().is_cancelled());
    event_loop.inbox.run_pending();
    assert!(!event_loop.inbox.has_pending());
}

/// `Debug` counts what a `run_pending` took out of the mailbox and has not run yet as pending,
/// as `has_pending` does (not `pending: 0` while `has_pending()` is true).
#[test]
fn an_inbox_debug_inside_a_drain_counts_the_work_not_run_yet() {
    let event_loop = Loop::new();
    let seen = Rc::new(RefCell::new(String::new()));
    let shown = seen.clone();
    let inbox = event_loop.inbox.clone();
    let (d, resolver) = event_loop.inbox.pending::<u32, Failure>();
    let d = d.add_callback(move |n| {
        *shown.borrow_mut() = format!("{inbox:?}, has_pending: {}", inbox.has_pending());
        Ok(n)
    });
    resolver.callback(1);
    event_loop.inbox.handle().post(|| {}).unwrap(); // behind the result, in the same drain
    event_loop.inbox.run_pending();
    assert_eq!(
        *seen.borrow(),
        "Inbox { pending: 1, waiting: 0 }, has_pending: true"
    );
    d.wait().unwrap();
}

/// A `HomeResolver`'s `Debug` says where it was made (the chain it fires is on the loop's
/// thread, out of reach of the thread that holds it) and whether its loop has stopped.
#[test]
fn a_home_resolvers_debug_says_where_it_was_made_and_whether_the_loop_stopped() {
    let event_loop = Loop::new();
    let (d, resolver) = event_loop.inbox.pending::<u32, Failure>();
    let line = line!() - 1;
    let shown = format!("{resolver:?}");
    assert!(
        shown.starts_with(&format!("HomeResolver {{ created_at: {}:{line}:", file!())),
        "{shown}"
    );
    assert!(shown.ends_with(", stopped: false }"), "{shown}");
    let (_, other) = event_loop.inbox.pending::<u32, Failure>();
    drop(event_loop);
    assert!(
        format!("{other:?}").ends_with(", stopped: true }"),
        "{other:?}"
    );
    drop(other);
    drop(resolver);
    drop(d);
}

/// Cancelling a spawned task cancels the `LocalDeferred` it awaits (its canceller runs once),
/// and the Deferred it adopted from another thread through it (Twisted's cascade into what a
/// coroutine awaits); a task that lets the `Cancelled` pass fails with it.
#[test]
fn cancelling_a_spawned_task_cancels_what_it_awaits() {
    let event_loop = Loop::new();
    let cancels = Rc::new(Cell::new(0));
    let counted = cancels.clone();
    let (local, _local_r) = LocalDeferred::<u32>::with_canceller(move || {
        counted.set(counted.get() + 1);
    });
    let sent_cancels = Arc::new(Mutex::new(0));
    let counted = sent_cancels.clone();
    let (sent, _unfired) = Deferred::<u32>::with_canceller(move || {
        *counted.lock().unwrap() += 1;
    });
    let adopted = event_loop.inbox.adopt(sent);
    let d: LocalDeferred<u32> = event_loop.inbox.spawn(async move {
        let (a, b) = (local.await?, adopted.await?);
        Ok(a + b)
    });
    assert!(!d.is_fired());
    let _nothing_reported = NoUnhandled::start();
    d.cancel();
    assert!(d.wait().unwrap_err().is_cancelled());
    assert_eq!(cancels.get(), 1);
    assert_eq!(
        *sent_cancels.lock().unwrap(),
        0,
        "not awaited yet: not cancelled"
    );
    event_loop.inbox.run_pending();

    // Awaiting the adopted one: cancelling the task cancels it, and the Deferred behind it.
    let (sent, sent_r) = Deferred::<u32>::with_canceller({
        let counted = sent_cancels.clone();
        move || *counted.lock().unwrap() += 1
    });
    let adopted = event_loop.inbox.adopt(sent);
    let d: LocalDeferred<u32> = event_loop
        .inbox
        .spawn(async move { Ok(adopted.await? * 2) });
    d.cancel();
    assert!(d.wait().unwrap_err().is_cancelled());
    assert_eq!(*sent_cancels.lock().unwrap(), 1);
    assert!(sent_r.is_closed());
}

/// A spawned task that awaits two `LocalDeferred`s and ends at the first failure (a try-join):
/// a cancel cancels the first, the task completes with its `Cancelled` and drops the second,
/// which the cancel leaves alone (its canceller does not run, nothing is reported). One the task
/// polled and dropped (the loser of a select) is not cancelled either.
#[test]
fn cancelling_a_spawned_task_stops_at_what_it_dropped() {
    let event_loop = Loop::new();
    let cancels = Rc::new(RefCell::new(Vec::new()));
    let make = |name: &'static str| {
        let log = cancels.clone();
        LocalDeferred::<u32>::with_canceller(move || log.borrow_mut().push(name))
    };
    let ((a, _a_r), (b, _b_r), (loser, _loser_r)) = (make("a"), make("b"), make("loser"));
    let d: LocalDeferred<u32> = event_loop.inbox.spawn(async move {
        // Polled once, then dropped: a select's loser.
        let mut loser = loser;
        std::future::poll_fn(|cx| {
            let _ = Pin::new(&mut loser).poll(cx);
            Poll::Ready(())
        })
        .await;
        drop(loser);
        try_join(a, b).await
    });
    let _nothing_reported = NoUnhandled::start();
    d.cancel();
    assert!(d.wait().unwrap_err().is_cancelled());
    assert_eq!(*cancels.borrow(), ["a"]);
}

/// Both outputs, or the first failure (then the other is dropped).
async fn try_join(a: LocalDeferred<u32>, b: LocalDeferred<u32>) -> Result<u32, Failure> {
    let (mut a, mut b) = (Some(a), Some(b));
    let (mut a_out, mut b_out) = (None, None);
    std::future::poll_fn(move |cx| {
        for (d, out) in [(&mut a, &mut a_out), (&mut b, &mut b_out)] {
            if let Some(deferred) = d
                && let Poll::Ready(result) = Pin::new(deferred).poll(cx)
            {
                *d = None;
                match result {
                    Ok(value) => *out = Some(value),
                    Err(failure) => return Poll::Ready(Err(failure)),
                }
            }
        }
        match (a_out, b_out) {
            (Some(a), Some(b)) => Poll::Ready(Ok(a + b)),
            _ => Poll::Pending,
        }
    })
    .await
}

/// A spawned task that catches the cancellation of what it awaits answers the cancel with what
/// it makes of it.
#[test]
fn a_spawned_task_that_catches_the_cancellation_answers_the_cancel() {
    let event_loop = Loop::new();
    let (awaited, _awaited_r) = event_loop.inbox.pending::<u32, Failure>();
    let state = Rc::new(7); // not Send: only a local task can hold it
    let d: LocalDeferred<u32> = event_loop.inbox.spawn(async move {
        match awaited.await {
            Ok(n) => Ok(n),
            Err(f) if f.is_cancelled() => Ok(*state * 6),
            Err(f) => Err(f),
        }
    });
    let _nothing_reported = NoUnhandled::start();
    d.cancel();
    assert_eq!(d.wait().unwrap(), 42);
    event_loop.inbox.run_pending();
    assert!(!event_loop.inbox.has_pending());
}

/// A spawned task that cancels its own Deferred from inside its poll (through a handle: a
/// sibling's, a timeout's) is dropped when that poll returns: its Deferred has failed with
/// `Cancelled`. What that poll left it awaiting is cancelled first, and the task polled once on
/// what that gave it (as `drive_future` does), then nothing polls it again.
#[test]
fn a_spawned_task_cancelled_from_inside_its_own_poll_is_dropped_when_the_poll_returns() {
    struct Dropped(Rc<Cell<bool>>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let event_loop = Loop::new();
    let (go, go_r) = LocalDeferred::<u32>::pending();
    let (next, _next_r) = LocalDeferred::<u32>::pending();
    let own: Rc<RefCell<Option<deferred_core::local::CancelHandle>>> = Rc::default();
    let dropped = Rc::new(Cell::new(false));
    let polls_after = Rc::new(Cell::new(0));
    let d: LocalDeferred<u32> = event_loop.inbox.spawn({
        let (own, guard, polls_after) =
            (own.clone(), Dropped(dropped.clone()), polls_after.clone());
        async move {
            let _guard = guard;
            go.await?;
            own.borrow_mut().take().expect("set after spawn").cancel();
            let mut next = next;
            std::future::poll_fn(|cx| {
                polls_after.set(polls_after.get() + 1);
                Pin::new(&mut next).poll(cx)
            })
            .await
        }
    });
    *own.borrow_mut() = Some(d.cancel_handle());
    let _nothing_reported = NoUnhandled::start();
    go_r.callback(1); // wakes the task: its poll is posted
    event_loop.inbox.run_pending();
    assert!(d.is_fired());
    assert!(d.wait().unwrap_err().is_cancelled());
    assert!(dropped.get(), "the cancelled task was kept");
    assert_eq!(polls_after.get(), 2, "polled on what the cancel gave");
    // The wake that cancel posted finds nothing to poll.
    event_loop.inbox.run_pending();
    assert_eq!(polls_after.get(), 2, "polled after it was dropped");
    assert!(!event_loop.inbox.has_pending());
    drop(event_loop);
}

/// A spawned task cancelled from inside its own poll, after that poll left it awaiting a
/// `LocalDeferred`: what it awaits is cancelled when the poll returns (rule 7: "the Deferreds a
/// future's last poll left pending are cancelled"), as `drive_future` and both `from_future`s
/// do (`drive.rs`, `loop_tokio.rs`), and nothing is reported.
#[test]
fn a_spawned_task_cancelled_from_inside_its_own_poll_cancels_what_it_awaits() {
    let event_loop = Loop::new();
    let cancels = Rc::new(Cell::new(0));
    let counted = cancels.clone();
    let (mut awaited, _awaited_r) = LocalDeferred::<u32>::with_canceller(move || {
        counted.set(counted.get() + 1);
    });
    let (go, go_r) = LocalDeferred::<u32>::pending();
    let own: Rc<RefCell<Option<deferred_core::local::CancelHandle>>> = Rc::default();
    let d: LocalDeferred<u32> = event_loop.inbox.spawn({
        let own = own.clone();
        async move {
            go.await?;
            std::future::poll_fn(move |cx| {
                let polled = Pin::new(&mut awaited).poll(cx);
                if let Some(own) = own.borrow_mut().take() {
                    own.cancel();
                }
                polled
            })
            .await
        }
    });
    *own.borrow_mut() = Some(d.cancel_handle());
    let nothing_reported = NoUnhandled::start();
    go_r.callback(1); // wakes the task: its poll is posted
    event_loop.inbox.run_pending();
    assert!(d.wait().unwrap_err().is_cancelled());
    assert_eq!(cancels.get(), 1, "what the task awaited was not cancelled");
    drop(nothing_reported);
    drop(event_loop);
}

thread_local! {
    static CANCEL_AS_THE_LOOP_STOPS: RefCell<Option<deferred_core::local::CancelHandle>> =
        const { RefCell::new(None) };
}

/// A cancel as the loop stops, of a task polled once already during the stop, still polls it on
/// what the cancel gave it: its output (here the cancellation translated) answers the cancel.
#[test]
fn a_cancel_as_the_loop_stops_polls_the_task_on_what_it_gave() {
    let event_loop = Loop::new();
    let (awaited, _awaited_r) = LocalDeferred::<u32>::pending();
    let waker: Arc<Mutex<Option<Waker>>> = Arc::default();
    let mut awaited = Some(awaited);
    let d: LocalDeferred<u32> = event_loop.inbox.spawn({
        let waker = waker.clone();
        std::future::poll_fn(move |cx: &mut Context<'_>| {
            *waker.lock().unwrap() = Some(cx.waker().clone());
            match Pin::new(awaited.as_mut().unwrap()).poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Err(f)) if f.is_cancelled() => Poll::Ready(Ok(42)),
                Poll::Ready(result) => Poll::Ready(result),
            }
        })
    });
    CANCEL_AS_THE_LOOP_STOPS.with(|slot| *slot.borrow_mut() = Some(d.cancel_handle()));
    let seen: Rc<RefCell<Option<Result<u32, bool>>>> = Rc::default();
    let record = seen.clone();
    let d = d.add_both(move |result| {
        *record.borrow_mut() = Some(result.map_err(|f| f.is_cancelled()));
        Ok::<(), Failure>(())
    });
    let handle = event_loop.inbox.handle();
    let then = handle.clone();
    let waker = waker.lock().unwrap().take().unwrap();
    // As the loop stops: the task is woken and polled (once, as the loop stops), then cancelled.
    handle
        .post(move || {
            waker.wake();
            then.post(|| {
                CANCEL_AS_THE_LOOP_STOPS.with(|slot| slot.borrow_mut().take().unwrap().cancel());
            })
            .unwrap();
        })
        .unwrap();
    let _nothing_reported = NoUnhandled::start();
    drop(event_loop);
    assert_eq!(*seen.borrow(), Some(Ok(42)));
    drop(d);
}

#[test]
fn defer_to_thread_runs_the_work_on_the_pool_and_the_steps_on_the_loop() {
    let event_loop = Loop::new();
    let home = thread::current().id();
    let d = event_loop
        .inbox
        .defer_to_thread(|| Ok::<_, Failure>(thread::current().id()))
        .add_callback(move |worker| Ok((worker, thread::current().id())));
    event_loop.run_until(|| d.is_fired());
    let (worker, step) = d.wait().unwrap();
    assert_ne!(worker, home);
    assert_eq!(step, home);

    let failed: LocalDeferred<u32> = event_loop
        .inbox
        .defer_to_thread(|| Err(Failure::msg("disk full")));
    event_loop.run_until(|| failed.is_fired());
    assert_eq!(failed.wait().unwrap_err().to_string(), "disk full");
}

#[test]
fn posts_run_in_order_on_the_loop_and_a_post_after_the_stop_is_given_back() {
    let event_loop = Loop::new();
    let handle = event_loop.inbox.handle();
    let order = Arc::new(Mutex::new(Vec::new()));
    let home = thread::current().id();
    {
        let (handle, order) = (handle.clone(), order.clone());
        thread::spawn(move || {
            for i in 0..100 {
                let order = order.clone();
                handle
                    .post(move || order.lock().unwrap().push((i, thread::current().id())))
                    .unwrap();
            }
        })
        .join()
        .unwrap();
    }
    assert_eq!(event_loop.inbox.run_pending(), 100);
    let order = order.lock().unwrap().clone();
    assert_eq!(
        order.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        (0..100).collect::<Vec<_>>()
    );
    assert!(order.iter().all(|(_, id)| *id == home));

    assert!(!handle.is_stopped());
    drop(event_loop);
    assert!(handle.is_stopped());
    let ran = Arc::new(AtomicBool::new(false));
    let flag = ran.clone();
    let refused = thread::spawn(move || handle.post(move || flag.store(true, Ordering::SeqCst)))
        .join()
        .unwrap();
    let Err(Stopped(work)) = refused else {
        panic!("a post after the stop was accepted");
    };
    assert!(!ran.load(Ordering::SeqCst));
    work(); // given back whole
    assert!(ran.load(Ordering::SeqCst));
}

#[test]
fn when_the_loop_stops_results_in_flight_run_waiting_deferreds_fail_and_late_failures_are_reported_once()
 {
    // Nothing is reported on the loop's thread; the late error is, on the thread that fires it.
    let _no_unhandled = NoUnhandled::start();
    let event_loop = Loop::new();

    // Fired before the stop: the result runs as the inbox drops (nothing is lost).
    let (delivered, early) = event_loop.inbox.pending::<u32, Failure>();
    let got = Rc::new(Cell::new(None));
    let slot = got.clone();
    let delivered = delivered.add_callback(move |n| {
        slot.set(Some(n));
        Ok(())
    });
    thread::spawn(move || early.callback(7)).join().unwrap();

    // Still waiting when the loop stops: fails with NeverFired.
    let (waiting, late_error) = event_loop.inbox.pending::<u32, Failure>();
    let (waiting_too, late_value) = event_loop.inbox.pending::<u32, Failure>();
    let (waiting_dropped, late_drop) = event_loop.inbox.pending::<u32, Failure>();
    let never_fired = Rc::new(Cell::new(0));
    let count = |d: LocalDeferred<u32>| {
        let never_fired = never_fired.clone();
        d.add_errback(move |f| {
            // It says why: the loop stopped, not a Resolver the user dropped.
            if f.downcast_ref::<NeverFired>()
                .is_some_and(NeverFired::loop_stopped)
            {
                assert!(f.to_string().contains("its loop stopped"), "{f}");
                never_fired.set(never_fired.get() + 1);
            }
            Ok(0)
        })
    };
    let (waiting, waiting_too, waiting_dropped) =
        (count(waiting), count(waiting_too), count(waiting_dropped));

    drop(event_loop);
    assert_eq!(got.get(), Some(7));
    assert_eq!(never_fired.get(), 3);
    assert!(late_error.is_stopped());

    // After the stop: an error nobody can see now is reported, once; a value or a drop is not.
    let late = thread::spawn(move || {
        capture_unhandled(|| {
            late_error.errback(Failure::msg("late-error"));
            late_value.callback(1);
            drop(late_drop);
        })
        .1
    })
    .join()
    .unwrap();
    assert_eq!(texts(&late), ["late-error"]);

    delivered.wait().unwrap();
    for d in [waiting, waiting_too, waiting_dropped] {
        assert_eq!(d.wait().unwrap(), 0);
    }
}

#[test]
fn a_panic_in_posted_work_is_reported_and_the_loop_goes_on() {
    let unhandled = UnhandledCapture::start();
    let event_loop = Loop::new();
    let handle = event_loop.inbox.handle();
    let after = Arc::new(AtomicBool::new(false));
    let flag = after.clone();
    handle.post(|| panic!("posted-boom")).unwrap();
    handle
        .post(move || flag.store(true, Ordering::SeqCst))
        .unwrap();
    assert_eq!(event_loop.inbox.run_pending(), 2);
    assert!(after.load(Ordering::SeqCst), "the work after the panic ran");
    assert_eq!(texts(&unhandled.finish()), ["posted-boom"]);
}

/// What we decided: the wake-up is the loop's code, called on the posting thread; a panic there
/// is caught and reported as unhandled, never raised in the poster (a pool thread, a `Drop`,
/// another runtime), and the post stands — the work is queued and runs at the next drain.
#[test]
fn a_panic_in_the_wake_up_is_reported_not_raised_in_the_poster_and_the_post_stands() {
    let on_the_loop = UnhandledCapture::start();
    let inbox = Inbox::new(|| panic!("wake-boom"));
    let (d, resolver) = inbox.pending::<u32, Failure>();
    let handle = inbox.handle();
    let ran = Arc::new(AtomicBool::new(false));
    let flag = ran.clone();
    // Reported on the posting thread, which captures them.
    let on_the_poster = thread::spawn(move || {
        capture_unhandled(|| {
            handle
                .post(move || flag.store(true, Ordering::SeqCst))
                .unwrap();
            resolver.callback(5);
        })
        .1
    })
    .join()
    .expect("the poster did not see the wake-up's panic");
    assert_eq!(
        texts(&on_the_poster),
        ["wake-boom", "wake-boom"],
        "one report per post"
    );
    assert_eq!(inbox.run_pending(), 2);
    assert!(ran.load(Ordering::SeqCst));
    assert_eq!(d.wait().unwrap(), 5);
    assert!(on_the_loop.is_empty());
    // The stop calls the wake-up once more (so an integration's drain ends): reported too.
    drop(inbox);
    assert_eq!(texts(&on_the_loop.finish()), ["wake-boom"]);
}

/// A future woken from another thread: it holds `Rc` state, so only `Inbox::spawn` can run it.
struct Signal {
    state: Arc<Mutex<(Option<u32>, Option<Waker>)>>,
}

impl Future for Signal {
    type Output = u32;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        let mut state = self.state.lock().unwrap();
        match state.0.take() {
            Some(value) => Poll::Ready(value),
            None => {
                state.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

#[test]
fn a_spawned_non_send_future_woken_from_another_thread_is_polled_on_the_loop() {
    let event_loop = Loop::new();
    let state = Arc::new(Mutex::new((None, None::<Waker>)));
    let signal = Signal {
        state: state.clone(),
    };
    let polled_on = Rc::new(Cell::new(None));
    let seen = polled_on.clone();
    let d: LocalDeferred<u32> = event_loop.inbox.spawn(async move {
        let base = Rc::new(40); // not Send: the future is not either
        let n = signal.await;
        seen.set(Some(thread::current().id()));
        Ok(*base + n)
    });
    assert!(!d.is_fired());
    thread::spawn(move || {
        let waker = {
            let mut state = state.lock().unwrap();
            state.0 = Some(2);
            state.1.take().expect("polled once by spawn")
        };
        waker.wake();
    })
    .join()
    .unwrap();
    event_loop.run_until(|| d.is_fired());
    assert_eq!(d.wait().unwrap(), 42);
    assert_eq!(polled_on.get(), Some(thread::current().id()));
}

#[test]
fn wait_on_the_loop_thread_runs_the_inbox_until_the_chain_fires() {
    let event_loop = Loop::new();
    let (d, resolver) = event_loop.inbox.pending::<u32, Failure>();
    let d = d.add_callback(|n| Ok(n * 2));
    let firing = thread::spawn(move || resolver.callback(21));
    assert_eq!(d.wait().unwrap(), 42); // drains the inbox itself: no loop turns here
    firing.join().unwrap();
}

/// A step that `wait`s on a chain whose result is later in the same drain of the inbox:
/// `run_pending` had taken that result out of the mailbox, and the `wait`, which looked only in
/// the mailbox, slept for ever. It runs the rest of the drain first, in the order posted.
#[test]
fn wait_in_a_step_on_a_result_later_in_the_same_drain_runs_it() {
    let (sent, got) = mpsc::channel();
    thread::spawn(move || {
        let inbox = Inbox::new(|| {});
        let (first, first_resolver) = inbox.pending::<u32, Failure>();
        let (second, second_resolver) = inbox.pending::<u32, Failure>();
        let (third, third_resolver) = inbox.pending::<u32, Failure>();
        let order = Rc::new(RefCell::new(Vec::new()));
        let (o1, o2, o3) = (order.clone(), order.clone(), order.clone());
        let second = second.add_callback(move |x| {
            o2.borrow_mut().push(2);
            Ok(x)
        });
        let third = third.add_callback(move |x| {
            o3.borrow_mut().push(3);
            Ok(x)
        });
        let sum = first.add_callback(move |x| {
            o1.borrow_mut().push(1);
            Ok(x + second.wait()?)
        });
        thread::spawn(move || {
            first_resolver.callback(1);
            second_resolver.callback(2);
            third_resolver.callback(3);
        })
        .join()
        .unwrap();
        assert_eq!(inbox.run_pending(), 3);
        let result = (sum.wait().unwrap(), third.wait().unwrap(), order.take());
        drop(sent.send(result));
    });
    let (sum, third, order) = got.recv_timeout(HUNG).expect("the wait never returned");
    assert_eq!((sum, third), (3, 3));
    assert_eq!(
        order,
        [1, 2, 3],
        "the drain's items run in the order posted"
    );
}

#[test]
fn add_timeout_on_the_inbox_clock_times_out_a_chain_that_gets_no_result() {
    let event_loop = Loop::new();
    let (d, _resolver) = event_loop.inbox.pending::<u32, Failure>();
    let d = d.add_timeout(Duration::from_millis(20), &event_loop.inbox.clock());
    event_loop.run_until(|| d.is_fired());
    let failure = d.wait().unwrap_err();
    assert!(failure.is::<TimedOut>(), "{failure}");
}

#[test]
fn add_timeout_on_the_inbox_clock_lets_a_result_that_comes_first_through() {
    let event_loop = Loop::new();
    let clock = event_loop.inbox.clock();
    let (d, resolver) = event_loop.inbox.pending::<u32, Failure>();
    // A generous deadline: the result (queued before the loop turns) always comes first.
    let d = d.add_timeout(Duration::from_secs(30), &clock);
    thread::spawn(move || resolver.callback(1)).join().unwrap();
    event_loop.run_until(|| d.is_fired());
    assert_eq!(d.wait().unwrap(), 1);
}

#[test]
fn a_cancelled_inbox_clock_call_never_runs() {
    let event_loop = Loop::new();
    let clock = event_loop.inbox.clock();
    let cancelled_ran = Rc::new(Cell::new(false));
    let flag = cancelled_ran.clone();
    let call = clock.call_later(Duration::from_millis(10), Box::new(move || flag.set(true)));
    call.cancel();
    // A later call as a fence: the timer thread runs calls in deadline order.
    let fence = Rc::new(Cell::new(false));
    let reached = fence.clone();
    let _fence = clock.call_later(
        Duration::from_millis(40),
        Box::new(move || reached.set(true)),
    );
    event_loop.run_until(|| fence.get());
    assert!(!cancelled_ran.get());
}

/// A failure a `HomeResolver` fires from another thread says where it entered the chain: the
/// `errback` call on that thread.
#[test]
fn a_failure_a_home_resolver_fires_says_where_it_entered() {
    let event_loop = Loop::new();
    let (local, home) = event_loop.inbox.pending::<u32, Failure>();
    let line = thread::spawn(move || {
        home.errback(Failure::msg("refused"));
        line!() - 1
    })
    .join()
    .unwrap();
    let local = local.add_errback(move |failure: Failure| {
        let at = failure.entered_at().expect("it entered at the errback");
        Ok::<u32, Failure>(u32::from(at.file() == file!() && at.line() == line))
    });
    event_loop.run_until(|| local.is_fired());
    assert_eq!(local.wait().unwrap(), 1);
}

/// A future that panics when dropped: `ready` says what its poll gives.
struct PanicsOnDrop {
    ready: bool,
}

impl Future for PanicsOnDrop {
    type Output = Result<u32, Failure>;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        if self.ready {
            Poll::Ready(Ok(1))
        } else {
            Poll::Pending
        }
    }
}

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        if !thread::panicking() {
            panic!("the future's drop panics");
        }
    }
}

/// A spawned future that is done is dropped before its Deferred fires: a panic in its `Drop`
/// is the Deferred's failure (it unwound out of `spawn`).
#[test]
fn a_spawned_futures_drop_that_panics_is_its_deferreds_failure() {
    let inbox = Inbox::new(|| {});
    let d = inbox.spawn(PanicsOnDrop { ready: true });
    let failure = d.wait().unwrap_err();
    let panicked = failure.downcast_ref::<Panicked>().expect("a panic");
    assert_eq!(panicked.message(), "the future's drop panics");
}

/// The loop stops with a spawned future pending whose `Drop` panics: the panic is reported,
/// and everything else the inbox kept is still dropped (each chain waiting on a result fails
/// with `NeverFired`) and the wake-up is called (it was all left behind, and the panic
/// unwound out of the inbox's drop).
#[test]
fn the_loop_stopping_with_a_spawned_future_whose_drop_panics_drops_the_rest() {
    let woken = Arc::new(Mutex::new(0));
    let w = woken.clone();
    let inbox = Inbox::new(move || *w.lock().unwrap() += 1);
    let spawned = inbox.spawn(PanicsOnDrop { ready: false });
    let others: Vec<_> = (0..8).map(|_| inbox.pending::<u32, Failure>()).collect();
    let (_, reported) = capture_unhandled(|| drop(inbox));
    assert_eq!(reported.len(), 1, "{reported:?}");
    assert!(reported[0].is::<Panicked>());
    assert_eq!(*woken.lock().unwrap(), 1);
    for (d, _resolver) in others {
        assert!(d.wait().unwrap_err().is::<NeverFired>());
    }
    assert!(spawned.wait().unwrap_err().is::<NeverFired>());
}

/// A future that polls `a`, and on its first poll `wait`s for `b` (which runs the inbox, and
/// with it the poll that `a`'s result posts for this very task).
struct JoinWithAWait {
    a: LocalDeferred<u32>,
    b: Option<LocalDeferred<u32>>,
    got_b: u32,
}

impl Future for JoinWithAWait {
    type Output = Result<u32, Failure>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let Poll::Ready(a) = Pin::new(&mut this.a).poll(cx) {
            return Poll::Ready(Ok(a? + this.got_b));
        }
        if let Some(b) = this.b.take() {
            this.got_b = b.wait()?;
        }
        Poll::Pending
    }
}

/// A spawned task woken while it is being polled (a `wait` inside its poll ran the inbox,
/// where its wake was posted) is polled again once that poll returns Pending: the wake was
/// dropped, and the task waited for ever.
#[test]
fn a_spawned_task_woken_during_its_own_poll_is_polled_again() {
    let (sent, got) = mpsc::channel();
    thread::spawn(move || {
        let inbox = Inbox::new(|| {});
        let (a, a_resolver) = inbox.pending::<u32, Failure>();
        let (b, b_resolver) = inbox.pending::<u32, Failure>();
        let firing = thread::spawn(move || {
            a_resolver.callback(1);
            thread::sleep(Duration::from_millis(50)); // the task waits on `b` meanwhile
            b_resolver.callback(2);
        });
        let joined = inbox.spawn(JoinWithAWait {
            a,
            b: Some(b),
            got_b: 0,
        });
        let result = joined.wait().map_err(|failure| failure.to_string());
        firing.join().unwrap();
        drop(sent.send(result));
    });
    let result = got
        .recv_timeout(HUNG)
        .expect("the task was never polled again");
    assert_eq!(result, Ok(3));
}

/// `run_pending` inside posted work (a nested loop, as a modal dialog runs) runs the rest of
/// what the outer `run_pending` found first: it ran nothing, and a nested loop that slept on
/// the wake-up until then slept for ever.
#[test]
fn run_pending_inside_run_pending_runs_the_rest_of_the_outer_drain() {
    let inbox = Inbox::new(|| {});
    let (first, first_resolver) = inbox.pending::<(), Failure>();
    let (second, second_resolver) = inbox.pending::<u32, Failure>();
    let arrived = Rc::new(Cell::new(false));
    let a = arrived.clone();
    let second = second.add_callback(move |x| {
        a.set(true);
        Ok(x)
    });
    let first = first.add_callback(move |()| {
        let inbox = Inbox::current().unwrap();
        let before = inbox.has_pending(); // the rest of the outer drain
        inbox.run_pending();
        // Its chain runs once this step returns (a chain fired from a step waits its turn).
        Ok((before, inbox.has_pending()))
    });
    first_resolver.callback(());
    second_resolver.callback(2);
    assert_eq!(inbox.run_pending(), 2);
    assert_eq!(
        first.wait().unwrap(),
        (true, false),
        "the nested call ran it"
    );
    assert!(arrived.get());
    assert_eq!(second.wait().unwrap(), 2);
}

/// As the loop stops, the work posted before runs while the inbox is still this thread's: a
/// `wait` in it drains the inbox as on a running loop (it panicked: "no Inbox").
#[test]
fn a_wait_in_work_run_as_the_loop_stops_gets_a_result_posted_after_it() {
    let (sent, got) = mpsc::channel();
    thread::spawn(move || {
        let inbox = Inbox::new(|| {});
        let (first, first_resolver) = inbox.pending::<u32, Failure>();
        let (second, second_resolver) = inbox.pending::<u32, Failure>();
        let sum = first.add_callback(move |x| Ok(x + second.wait()?));
        first_resolver.callback(1);
        second_resolver.callback(2);
        let (_, reported) = capture_unhandled(|| drop(inbox));
        let result = sum.wait().map_err(|failure| format!("{failure:?}"));
        drop(sent.send((result, reported.len())));
    });
    let (result, reported) = got.recv_timeout(HUNG).expect("the stop never ended");
    assert_eq!(result, Ok(3));
    assert_eq!(reported, 0);
}

/// A `LoopingCall` on the inbox's clock, when the inbox stops (its next call is dropped with
/// it): the loop stops, and its Deferred fails with `NeverFired`, its loop stopped. It went on
/// saying it ran, and its Deferred never fired.
#[test]
fn a_looping_call_on_the_inbox_clock_ends_when_the_inbox_stops() {
    let inbox = Inbox::new(|| {});
    let looping = deferred_core::local::LoopingCall::new(inbox.clock(), || Ok(()));
    let done = looping.start(Duration::from_secs(3600), false);
    drop(inbox);
    assert!(!looping.is_running());
    let failure = done.wait().unwrap_err();
    let never_fired = failure.downcast_ref::<NeverFired>().expect("NeverFired");
    assert!(never_fired.loop_stopped());
    // Started again on the stopped inbox's clock, it ends at once.
    let again = looping.start(Duration::from_secs(1), false);
    assert!(!looping.is_running());
    assert!(again.wait().unwrap_err().is::<NeverFired>());
}

/// The last `Inbox` handle dropped by work that a `wait` runs, or by a spawned task's cancel:
/// the loop still stops while the inbox is this thread's, so a `wait` in the work posted before
/// gets its result (those ran the work holding the inbox bare, and its stop ran later, with no
/// inbox: "no Inbox").
#[test]
fn the_last_inbox_dropped_by_work_a_wait_runs_or_by_a_cancel_still_stops_with_the_inbox() {
    for by_cancel in [false, true] {
        let (sent, got) = mpsc::channel();
        thread::spawn(move || {
            let inbox = Inbox::new(|| {});
            let (first, first_resolver) = inbox.pending::<u32, Failure>();
            let (second, second_resolver) = inbox.pending::<u32, Failure>();
            let sum = first.add_callback(move |x| Ok(x + second.wait()?));
            let kept = inbox.clone();
            let end: Box<dyn FnOnce()> = if by_cancel {
                let task = inbox.spawn(async move {
                    let _kept = kept;
                    std::future::pending::<Result<(), Failure>>().await
                });
                Box::new(move || task.cancel())
            } else {
                let (trigger, trigger_resolver) = inbox.pending::<(), Failure>();
                let trigger = trigger.add_callback(move |()| {
                    drop(kept);
                    Ok(())
                });
                trigger_resolver.callback(());
                Box::new(move || trigger.wait().unwrap())
            };
            drop(inbox);
            first_resolver.callback(1);
            second_resolver.callback(2);
            end();
            let result = sum.wait().map_err(|failure| format!("{failure:?}"));
            drop(sent.send(result));
        });
        let result = got.recv_timeout(HUNG).expect("hung");
        assert_eq!(result, Ok(3), "by a cancel: {by_cancel}");
    }
}

/// A future that wakes itself on every poll, and stays pending.
struct WakesItselfForever;

impl Future for WakesItselfForever {
    type Output = Result<(), Failure>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// The loop stops with a spawned task that wakes itself on every poll: the stop polls it once
/// more, then drops it (its Deferred fails with `NeverFired`); it polled it for ever.
#[test]
fn the_loop_stops_with_a_task_that_wakes_itself_on_every_poll() {
    let (sent, got) = mpsc::channel();
    thread::spawn(move || {
        let inbox = Inbox::new(|| {});
        let task = inbox.spawn(WakesItselfForever);
        drop(inbox);
        let _ = sent.send(task.wait().unwrap_err().is::<NeverFired>());
    });
    assert!(got.recv_timeout(HUNG).expect("the stop never ended"));
}

/// A spawned task awaits a result, then another spawned task, whose own result was posted
/// before the stop too: the outer task is woken twice as the loop stops (its first result, then the inner
/// task's end), each wake by work posted before the stop.
#[test]
fn a_spawned_task_awaiting_a_result_then_another_task_finishes_as_the_loop_stops() {
    let inbox = Inbox::new(|| {});
    let (a, a_resolver) = inbox.pending::<u32, Failure>();
    let (y, y_resolver) = inbox.pending::<u32, Failure>();
    let inner = inbox.spawn(async move { Ok::<_, Failure>(y.await? * 10) });
    let outer = inbox.spawn(async move { Ok::<_, Failure>(a.await? + inner.await?) });
    thread::spawn(move || {
        a_resolver.callback(1);
        y_resolver.callback(2);
    })
    .join()
    .unwrap();
    drop(inbox);
    assert_eq!(outer.wait().map_err(|f| f.to_string()), Ok(21));
}

/// The same, the loop running on: `run_pending` until nothing is left.
#[test]
fn a_spawned_task_awaiting_a_result_then_another_task_finishes_on_a_running_loop() {
    let inbox = Inbox::new(|| {});
    let (a, a_resolver) = inbox.pending::<u32, Failure>();
    let (y, y_resolver) = inbox.pending::<u32, Failure>();
    let inner = inbox.spawn(async move { Ok::<_, Failure>(y.await? * 10) });
    let outer = inbox.spawn(async move { Ok::<_, Failure>(a.await? + inner.await?) });
    thread::spawn(move || {
        a_resolver.callback(1);
        y_resolver.callback(2);
    })
    .join()
    .unwrap();
    while inbox.has_pending() {
        inbox.run_pending();
    }
    assert_eq!(outer.wait().map_err(|f| f.to_string()), Ok(21));
}

/// An inbox kept in a thread-local that was set up before the inbox was made (so it is dropped
/// after the library's own thread-locals at thread exit): results posted before the thread
/// ended run as the loop stops, and a step there that asks for this thread's inbox
/// (`Inbox::current`, "this thread's inbox, if it has one") gets `None`, not a panic.
#[test]
fn inbox_current_in_work_run_as_a_thread_local_inbox_stops_at_thread_exit() {
    thread_local! {
        static KEPT: RefCell<Option<(Inbox, LocalDeferred<()>)>> = const { RefCell::new(None) };
    }
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        KEPT.with(|slot| assert!(slot.borrow().is_none())); // registered first
        let inbox = Inbox::new(|| {});
        let (d, resolver) = inbox.pending::<u32, Failure>();
        let tx2 = tx.clone();
        let d = d.add_both(move |result| {
            let current = std::panic::catch_unwind(|| Inbox::current().is_some())
                .map_err(|_| "Inbox::current panicked");
            let _ = tx2.send((result.map_err(|f| f.to_string()), current));
            Ok::<_, Failure>(())
        });
        thread::spawn(move || resolver.callback(7)).join().unwrap();
        KEPT.with(|slot| *slot.borrow_mut() = Some((inbox, d)));
        drop(tx);
    })
    .join()
    .unwrap();
    let (result, current) = rx.recv_timeout(HUNG).expect("the result never came home");
    assert_eq!(result, Ok(7));
    assert_eq!(current, Ok(false));
}

/// docs/rules.md: a failure no step raised says where it entered the chain, "the
/// `defer_to_thread` ... whose work failed": the inbox's `defer_to_thread` too, and the inbox's
/// `spawn` of a future that fails.
#[test]
fn a_failure_of_the_inboxs_defer_to_thread_or_spawn_entered_at_that_call() {
    let event_loop = Loop::new();
    let failed: LocalDeferred<u32> = event_loop
        .inbox
        .defer_to_thread(|| Err(Failure::msg("disk full")));
    let thread_line = line!() - 1;
    let spawned: LocalDeferred<u32> = event_loop.inbox.spawn(async { Err(Failure::msg("no")) });
    let spawn_line = line!() - 1;
    event_loop.run_until(|| failed.is_fired() && spawned.is_fired());
    for (d, line) in [(failed, thread_line), (spawned, spawn_line)] {
        let failure = d.wait().unwrap_err();
        let at = failure.entered_at().map(|at| (at.file(), at.line()));
        assert_eq!(at, Some((file!(), line)), "{failure:?}");
    }
}

/// A nested loop in a step (a modal dialog: drain the inbox until a worker's result has been
/// shown): `run_pending` ran the result's post, but the chain it fired waited in this thread's
/// run loop until the step returned, so the nested loop never saw it move on, and slept for
/// ever on a wake-up that had come already.
#[test]
fn a_nested_loop_in_a_step_sees_the_chains_its_run_pending_fires_move_on() {
    let (tx, rx) = mpsc::channel::<()>();
    let rx = Rc::new(rx);
    let inbox = Inbox::new(move || {
        let _ = tx.send(());
    });
    let (outer, outer_resolver) = inbox.pending::<(), Failure>();
    let nested_rx = rx.clone();
    let outer = outer.add_callback(move |()| {
        let inbox = Inbox::current().unwrap();
        let shown = Rc::new(Cell::new(None));
        let show = shown.clone();
        let _shown = inbox
            .defer_to_thread(|| Ok::<u32, Failure>(42))
            .add_callback(move |n| {
                show.set(Some(n));
                Ok(())
            });
        while shown.get().is_none() {
            if nested_rx.recv_timeout(HUNG).is_err() {
                return Err(Failure::msg("the nested loop slept for ever"));
            }
            inbox.run_pending();
        }
        Ok(shown.get().unwrap())
    });
    thread::spawn(move || outer_resolver.callback(()))
        .join()
        .unwrap();
    while !outer.is_fired() {
        rx.recv().unwrap();
        inbox.run_pending();
    }
    assert_eq!(outer.wait().unwrap(), 42);
}

/// The loop's stop cancels the Deferreds it adopted that are still pending (their cancellers
/// run, on the loop's thread): their results could only be refused now, so their work is
/// stopped, as a spawned task's future is dropped. The local chain fails with `NeverFired`
/// (its loop stopped), as every local chain still waiting does; the cancellation the adopted
/// Deferred answers with is not reported (nobody is owed it), a failure it answers with is.
#[test]
fn the_loop_stopping_cancels_the_deferreds_it_adopted() {
    let event_loop = Loop::new();
    let cancelled = Arc::new(AtomicBool::new(false));
    let flag = cancelled.clone();
    let (d, _resolver) =
        Deferred::<u32>::with_canceller(move || flag.store(true, Ordering::SeqCst));
    let local = event_loop.inbox.adopt(d).add_errback(|f: Failure| {
        assert!(
            f.downcast_ref::<NeverFired>()
                .is_some_and(NeverFired::loop_stopped),
            "{f}"
        );
        Ok(0)
    });
    // Adopted and already fired (its result came home): nothing to cancel.
    let (fired, fired_resolver) = Deferred::<u32>::pending();
    let fired_local = event_loop.inbox.adopt(fired);
    fired_resolver.callback(5);
    // Its canceller answers with a failure of its own: reported, nobody else can see it.
    let answering = answering_deferred(Err("answer-after-stop"));
    let answering_local = event_loop.inbox.adopt(answering);
    let (_, reported) = capture_unhandled(|| drop(event_loop));
    assert!(
        cancelled.load(Ordering::SeqCst),
        "the adopted Deferred's canceller ran"
    );
    assert_eq!(texts(&reported), ["answer-after-stop"]);
    assert_eq!(local.wait().unwrap(), 0);
    assert_eq!(fired_local.wait().unwrap(), 5);
    let stopped = answering_local.wait().unwrap_err();
    assert!(stopped.downcast_ref::<NeverFired>().is_some(), "{stopped}");
}

/// An error type of the user's (`From<Failure>`), which cannot tell whether it holds a
/// cancellation.
#[derive(Debug)]
struct OwnError(#[allow(dead_code)] Failure);

impl From<Failure> for OwnError {
    fn from(failure: Failure) -> OwnError {
        OwnError(failure)
    }
}

/// The loop's stop cancels an adopted Deferred whose error type is the user's own: the
/// cancellation it answers with (an `OwnError` that cannot say it is one) is the answer to
/// that cancel, expected, and not reported — as every driver of a refused result treats an
/// error type that cannot tell. It was reported as "an error of type `OwnError`".
#[test]
fn the_loop_stopping_cancels_an_adopted_deferred_of_the_users_error_type_quietly() {
    let event_loop = Loop::new();
    let (d, _resolver) = Deferred::<u32, OwnError>::pending();
    let local = event_loop.inbox.adopt(d);
    let (_, reported) = capture_unhandled(|| drop(event_loop));
    assert_eq!(texts(&reported), Vec::<String>::new());
    let OwnError(stopped) = local.wait().unwrap_err();
    assert!(stopped.downcast_ref::<NeverFired>().is_some(), "{stopped}");
}

/// `Inbox`: "A thread has at most one inbox at a time; clones of an `Inbox` are the same
/// inbox. When the last clone is dropped, the loop has stopped"; `Inbox::new` panics "if this
/// thread has an inbox already (clone that one instead: `Inbox::current`)".
#[test]
fn a_second_inbox_on_a_thread_panics_and_clones_are_the_same_inbox() {
    assert!(Inbox::current().is_none());
    let inbox = Inbox::new(|| {});
    let second = std::panic::catch_unwind(|| drop(Inbox::new(|| {})));
    let message = support::panic_text(&*second.expect_err("a second inbox on the thread"));
    assert!(
        message.contains("has an Inbox already") && message.contains("Inbox::current()"),
        "{message}"
    );
    // The same inbox: what is posted through any clone's handle, one drain runs.
    let clone = inbox.clone();
    let current = Inbox::current().expect("this thread's inbox");
    let ran = Arc::new(Mutex::new(0));
    for handle in [inbox.handle(), clone.handle(), current.handle()] {
        let ran = ran.clone();
        handle.post(move || *ran.lock().unwrap() += 1).unwrap();
    }
    assert!(inbox.has_pending());
    assert_eq!(current.run_pending(), 3);
    assert!(!clone.has_pending());
    assert_eq!(*ran.lock().unwrap(), 3);
    // The loop stops with the last clone only.
    let handle = inbox.handle();
    drop((inbox, clone));
    assert!(!handle.is_stopped());
    drop(current);
    assert!(handle.is_stopped());
    assert!(Inbox::current().is_none());
}

/// `run_pending`: "returns how many items it found posted ... Work posted while it runs waits
/// for the next call (so a loop that calls this once per frame or per wake-up never starves its
/// other sources)".
#[test]
fn work_posted_during_a_drain_waits_for_the_next_run_pending() {
    let event_loop = Loop::new();
    let handle = event_loop.inbox.handle();
    let log = Arc::new(Mutex::new(Vec::new()));
    let (again, first) = (handle.clone(), log.clone());
    handle
        .post(move || {
            first.lock().unwrap().push("first");
            let meanwhile = first.clone();
            again
                .post(move || meanwhile.lock().unwrap().push("posted meanwhile"))
                .unwrap();
        })
        .unwrap();
    assert_eq!(event_loop.inbox.run_pending(), 1);
    assert_eq!(*log.lock().unwrap(), ["first"]);
    assert!(event_loop.inbox.has_pending());
    assert_eq!(event_loop.inbox.run_pending(), 1);
    assert_eq!(*log.lock().unwrap(), ["first", "posted meanwhile"]);
    assert_eq!(event_loop.inbox.run_pending(), 0);
}

/// `Inbox::new`'s `wake`: "called after each post, on the posting thread ...; once more when
/// the loop stops; and never under a lock" — and then dropped ("The wake-up is called once more
/// and dropped, so that an integration's drain ends"). The wake-up here asks the inbox's handle
/// whether the loop has stopped, which takes the mailbox's lock: called under it, it would
/// never return (the test runs on a thread of its own, so that this fails, not hangs).
#[test]
fn the_wake_up_runs_on_the_posting_thread_after_each_post_and_once_at_the_stop_outside_the_lock() {
    let (done, finished) = mpsc::channel();
    thread::spawn(move || {
        let calls: Arc<Mutex<Vec<ThreadId>>> = Arc::default();
        let handle_slot: Arc<Mutex<Option<deferred_core::LoopHandle>>> = Arc::default();
        let (log, slot) = (calls.clone(), handle_slot.clone());
        let inbox = Inbox::new(move || {
            if let Some(handle) = slot.lock().unwrap().as_ref() {
                let _ = handle.is_stopped();
            }
            log.lock().unwrap().push(thread::current().id());
        });
        *handle_slot.lock().unwrap() = Some(inbox.handle());
        let (d, resolver) = inbox.pending::<u32, Failure>();
        let handle = inbox.handle();
        let poster = thread::spawn(move || {
            handle.post(|| {}).unwrap();
            resolver.callback(1);
            thread::current().id()
        })
        .join()
        .unwrap();
        assert_eq!(*calls.lock().unwrap(), [poster, poster], "one call a post");
        assert_eq!(inbox.run_pending(), 2);
        assert_eq!(d.wait().unwrap(), 1);
        let home = thread::current().id();
        drop(inbox);
        assert_eq!(
            *calls.lock().unwrap(),
            [poster, poster, home],
            "once more at the stop"
        );
        assert_eq!(Arc::strong_count(&calls), 1, "the wake-up was dropped");
        drop(handle_slot);
        done.send(()).unwrap();
    });
    finished
        .recv_timeout(HUNG)
        .expect("the wake-up deadlocked, or the test failed (see its panic)");
}

/// `LoopHandle::post`: a refused post gives the work back in a [`Stopped`], whose `Display`
/// (and `Debug`, which `unwrap` prints) say why; a `LoopHandle`'s `Debug` says whether the loop
/// has stopped.
#[test]
fn a_refused_post_and_a_loop_handle_say_that_the_loop_has_stopped() {
    let inbox = Inbox::new(|| {});
    let handle = inbox.handle();
    assert_eq!(format!("{handle:?}"), "LoopHandle { stopped: false }");
    drop(inbox);
    assert_eq!(format!("{handle:?}"), "LoopHandle { stopped: true }");
    let refused = handle.post(|| {}).unwrap_err();
    assert_eq!(
        refused.to_string(),
        "the event loop has stopped: its inbox takes no more work"
    );
    assert_eq!(
        format!("{refused:?}"),
        "Stopped(the event loop has stopped: its inbox takes no more work)"
    );
}

/// `Inbox::spawn` "polls `future` on this thread, now": before `spawn` returns, not at the next
/// drain; a future ready at once fires the Deferred then.
#[test]
fn spawn_polls_the_future_at_once_on_this_thread() {
    let event_loop = Loop::new();
    let here = thread::current().id();
    let polled = Rc::new(Cell::new(None));
    let seen = polled.clone();
    let d = event_loop.inbox.spawn(async move {
        seen.set(Some(thread::current().id()));
        Ok::<_, Failure>(1)
    });
    assert_eq!(polled.get(), Some(here));
    assert!(d.is_fired());
    assert!(!event_loop.inbox.has_pending());
    assert_eq!(d.wait().unwrap(), 1);
}
