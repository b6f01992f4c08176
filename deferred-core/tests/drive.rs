//! `Deferred::drive_future`: a future as a Deferred with no runtime, polled on the thread that
//! wakes it. No timing: threads are ordered by joins, barriers and channels.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread::{self, ThreadId};

use deferred_core::{CancelHandle, Cancelled, Deferred, Failure, NeverFired, Panicked};

/// Sets its flag when dropped: tells whether a future (which owns it) was dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn drop_flag() -> (DropFlag, Arc<AtomicBool>) {
    let flag = Arc::new(AtomicBool::new(false));
    (DropFlag(flag.clone()), flag)
}

/// Where a future puts its waker, for the test to wake it.
type WakerSlot = Arc<Mutex<Option<Waker>>>;

fn wake(slot: &WakerSlot) {
    let waker = slot.lock().unwrap().clone().expect("the future was polled");
    waker.wake();
}

#[test]
fn a_ready_future_fires_inside_drive_future() {
    let d: Deferred<u32> = Deferred::drive_future(async { Ok(1) });
    assert!(d.is_fired());
    assert_eq!(d.wait().unwrap(), 1);
}

#[test]
fn the_first_poll_is_on_the_calling_thread() {
    let me = thread::current().id();
    let d: Deferred<ThreadId> = Deferred::drive_future(async { Ok(thread::current().id()) });
    assert_eq!(d.wait().unwrap(), me);
}

#[test]
fn a_future_awaiting_a_deferred_fired_from_another_thread() {
    let (inner, resolver) = Deferred::<u32>::pending();
    let d: Deferred<u32> = Deferred::drive_future(async move { Ok(inner.await? + 1) });
    assert!(!d.is_fired());
    thread::spawn(move || resolver.callback(41)).join().unwrap();
    assert_eq!(d.wait().unwrap(), 42);
}

#[test]
fn a_future_awaiting_two_deferreds_is_polled_by_each_firing_thread() {
    let (first, first_resolver) = Deferred::<u32>::pending();
    let (second, second_resolver) = Deferred::<u32>::pending();
    let d: Deferred<(u32, ThreadId, u32, ThreadId)> = Deferred::drive_future(async move {
        let a = first.await?;
        let after_first = thread::current().id();
        let b = second.await?;
        Ok((a, after_first, b, thread::current().id()))
    });
    let one = thread::spawn(move || {
        first_resolver.callback(1);
        thread::current().id()
    });
    let one = one.join().unwrap();
    assert!(!d.is_fired());
    let two = thread::spawn(move || {
        second_resolver.callback(2);
        thread::current().id()
    });
    let two = two.join().unwrap();
    assert!(d.is_fired());
    assert_eq!(d.wait().unwrap(), (1, one, 2, two));
}

/// Counts polls and how many run at once.
#[derive(Default)]
struct Polls {
    count: AtomicUsize,
    active: AtomicUsize,
    max_active: AtomicUsize,
}

impl Polls {
    /// Marks a poll as running until the returned guard is dropped.
    fn enter(&self) -> impl Drop + '_ {
        self.count.fetch_add(1, Ordering::SeqCst);
        let now = self.active.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_active.fetch_max(now, Ordering::SeqCst);
        struct Leave<'a>(&'a AtomicUsize);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        Leave(&self.active)
    }
}

#[test]
fn a_wake_from_inside_poll_polls_again_after_the_poll_not_inside_it() {
    let polls = Arc::new(Polls::default());
    let counted = polls.clone();
    let d: Deferred<usize> = Deferred::drive_future(poll_fn(move |cx| {
        let _polling = counted.enter();
        if counted.count.load(Ordering::SeqCst) == 1 {
            cx.waker().wake_by_ref(); // re-entrant: must not poll from in here
            let by_value = cx.waker().clone();
            by_value.wake(); // and through `wake`, which consumes the waker
            assert_eq!(counted.count.load(Ordering::SeqCst), 1);
            return Poll::Pending;
        }
        Poll::Ready(Ok(counted.count.load(Ordering::SeqCst)))
    }));
    assert!(d.is_fired());
    assert_eq!(d.wait().unwrap(), 2);
    assert_eq!(polls.count.load(Ordering::SeqCst), 2);
    assert_eq!(polls.max_active.load(Ordering::SeqCst), 1);
}

#[test]
fn wakes_racing_from_eight_threads_poll_one_at_a_time_and_none_is_lost() {
    const THREADS: usize = 8;
    const WAKES_EACH: usize = 200;
    let polls = Arc::new(Polls::default());
    let wakes = Arc::new(AtomicUsize::new(0));
    let completions = Arc::new(AtomicUsize::new(0));
    let slot: WakerSlot = Arc::default();
    let d: Deferred<usize> = Deferred::drive_future({
        let (polls, wakes, completions, slot) = (
            polls.clone(),
            wakes.clone(),
            completions.clone(),
            slot.clone(),
        );
        poll_fn(move |cx| {
            let _polling = polls.enter();
            *slot.lock().unwrap() = Some(cx.waker().clone());
            // Widen the window in which another wake can land while this poll runs.
            thread::yield_now();
            if wakes.load(Ordering::SeqCst) < THREADS * WAKES_EACH {
                return Poll::Pending;
            }
            completions.fetch_add(1, Ordering::SeqCst);
            Poll::Ready(Ok(polls.count.load(Ordering::SeqCst)))
        })
    });
    assert!(!d.is_fired());
    let start = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (start, wakes, slot) = (start.clone(), wakes.clone(), slot.clone());
            thread::spawn(move || {
                start.wait();
                for _ in 0..WAKES_EACH {
                    // Counted before the wake: the last wake must see the future complete.
                    wakes.fetch_add(1, Ordering::SeqCst);
                    wake(&slot);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert!(d.is_fired(), "the last wake was lost");
    let polled = d.wait().unwrap();
    assert_eq!(completions.load(Ordering::SeqCst), 1);
    assert_eq!(
        polls.max_active.load(Ordering::SeqCst),
        1,
        "two polls overlapped"
    );
    assert!(
        (2..=THREADS * WAKES_EACH + 1).contains(&polled),
        "{polled} polls"
    );
    // Wakes after completion do nothing.
    wake(&slot);
    assert_eq!(polls.count.load(Ordering::SeqCst), polled);
}

#[test]
fn a_panic_in_poll_becomes_the_failure() {
    let d: Deferred<u32> = Deferred::drive_future(async {
        if true {
            panic!("boom");
        }
        Ok(1)
    });
    let failure = d.wait().unwrap_err();
    assert!(failure.is::<Panicked>());
    assert_eq!(
        failure.downcast_ref::<Panicked>().unwrap().message(),
        "boom"
    );
    assert_eq!(failure.origin().unwrap().file(), file!());
}

#[test]
fn a_panic_in_a_poll_made_by_a_wake_does_not_reach_the_waker() {
    let (inner, resolver) = Deferred::<u32>::pending();
    let d: Deferred<u32> = Deferred::drive_future(async move {
        let x = inner.await?;
        if x == 1 {
            panic!("woken into a panic");
        }
        Ok(x)
    });
    // The poll runs inside `callback`, on this thread: the panic must not escape it.
    resolver.callback(1);
    assert!(d.wait().unwrap_err().is::<Panicked>());
}

#[test]
fn cancelling_an_idle_future_drops_it_at_once_and_later_wakes_do_nothing() {
    let (guard, dropped) = drop_flag();
    let polls = Arc::new(AtomicUsize::new(0));
    let slot: WakerSlot = Arc::default();
    let d: Deferred<u32> = Deferred::drive_future({
        let (polls, slot) = (polls.clone(), slot.clone());
        poll_fn(move |cx| {
            let _guard = &guard;
            polls.fetch_add(1, Ordering::SeqCst);
            *slot.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        })
    });
    assert!(!dropped.load(Ordering::SeqCst));
    d.cancel();
    assert!(dropped.load(Ordering::SeqCst), "the future was not dropped");
    wake(&slot);
    assert_eq!(polls.load(Ordering::SeqCst), 1);
    assert!(d.wait().unwrap_err().is::<Cancelled>());
}

#[test]
fn cancelling_a_chain_waiting_on_it_drops_the_future() {
    let (guard, dropped) = drop_flag();
    let (inner, _resolver) = Deferred::<u32>::pending();
    let d: Deferred<u32> = Deferred::drive_future(async move {
        let _guard = guard;
        inner.await
    });
    let outer = Deferred::<u32>::succeed(1).add_callback(move |_| d);
    outer.cancel();
    assert!(dropped.load(Ordering::SeqCst));
    assert!(outer.wait().unwrap_err().is_cancelled());
}

#[test]
fn a_future_cancelling_its_own_deferred_is_dropped_after_that_poll() {
    let (guard, dropped) = drop_flag();
    let handle: Arc<Mutex<Option<CancelHandle>>> = Arc::default();
    let slot: WakerSlot = Arc::default();
    let dropped_during_poll = Arc::new(AtomicBool::new(true));
    let d: Deferred<u32> = Deferred::drive_future({
        let (handle, slot, dropped, dropped_during_poll) = (
            handle.clone(),
            slot.clone(),
            dropped.clone(),
            dropped_during_poll.clone(),
        );
        poll_fn(move |cx| {
            let _guard = &guard;
            *slot.lock().unwrap() = Some(cx.waker().clone());
            if let Some(handle) = handle.lock().unwrap().take() {
                handle.cancel();
                dropped_during_poll.store(dropped.load(Ordering::SeqCst), Ordering::SeqCst);
                // A wake after the cancel, from inside the poll: ignored.
                cx.waker().wake_by_ref();
            }
            Poll::Pending
        })
    });
    *handle.lock().unwrap() = Some(d.cancel_handle());
    let d = d.add_errback(|f: Failure| if f.is_cancelled() { Ok(7) } else { Err(f) });
    wake(&slot);
    assert!(
        !dropped_during_poll.load(Ordering::SeqCst),
        "dropped while polled"
    );
    assert!(dropped.load(Ordering::SeqCst), "not dropped after the poll");
    assert_eq!(d.wait().unwrap(), 7);
}

#[test]
fn a_cancel_from_another_thread_during_a_poll_drops_the_future_after_it() {
    let (guard, dropped) = drop_flag();
    let (in_poll_tx, in_poll) = std::sync::mpsc::channel::<()>();
    let (go_on, go_on_rx) = std::sync::mpsc::channel::<()>();
    let slot: WakerSlot = Arc::default();
    let polls = Arc::new(AtomicUsize::new(0));
    let d: Deferred<u32> = Deferred::drive_future({
        let (slot, polls) = (slot.clone(), polls.clone());
        let go_on_rx = Mutex::new(go_on_rx);
        poll_fn(move |cx| {
            let _guard = &guard;
            *slot.lock().unwrap() = Some(cx.waker().clone());
            if polls.fetch_add(1, Ordering::SeqCst) == 1 {
                // The second poll: wait here while the test cancels from its thread.
                in_poll_tx.send(()).unwrap();
                go_on_rx.lock().unwrap().recv().unwrap();
                return Poll::Ready(Ok(1)); // too late: the Deferred was cancelled
            }
            Poll::Pending
        })
    });
    let handle = d.cancel_handle();
    let waker = thread::spawn({
        let slot = slot.clone();
        move || wake(&slot)
    });
    in_poll.recv().unwrap();
    handle.cancel(); // the canceller returns at once: the poll is still running
    assert!(!dropped.load(Ordering::SeqCst));
    assert!(d.is_fired());
    go_on.send(()).unwrap();
    waker.join().unwrap();
    assert!(dropped.load(Ordering::SeqCst));
    assert_eq!(polls.load(Ordering::SeqCst), 2);
    assert!(d.wait().unwrap_err().is::<Cancelled>());
}

#[test]
fn a_future_whose_wakers_are_all_dropped_never_fires() {
    let (guard, dropped) = drop_flag();
    let d: Deferred<u32> = Deferred::drive_future(poll_fn(move |_cx| {
        let _guard = &guard;
        Poll::Pending // keeps no waker: nobody can ever wake it
    }));
    assert!(dropped.load(Ordering::SeqCst));
    let failure = d.wait().unwrap_err();
    let never = failure.downcast_ref::<NeverFired>().expect("NeverFired");
    assert_eq!(never.created_at().file(), file!());
}

#[test]
fn a_future_whose_waker_is_kept_but_never_woken_stays_pending() {
    let slot: WakerSlot = Arc::default();
    let d: Deferred<u32> = Deferred::drive_future({
        let slot = slot.clone();
        poll_fn(move |cx| {
            *slot.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        })
    });
    assert!(!d.is_fired());
    // The last waker goes: now nobody can wake it.
    drop(slot.lock().unwrap().take());
    assert!(d.wait().unwrap_err().is::<NeverFired>());
}

#[test]
fn an_err_output_is_the_failure() {
    let d: Deferred<u32> = Deferred::drive_future(async { Err(Failure::msg("sync no")) });
    assert_eq!(d.wait().unwrap_err().to_string(), "sync no");

    let (inner, resolver) = Deferred::<u32>::pending();
    let d: Deferred<u32> = Deferred::drive_future(async move {
        inner.await?;
        Err(Failure::msg("async no"))
    });
    thread::spawn(move || resolver.callback(1)).join().unwrap();
    assert_eq!(d.wait().unwrap_err().to_string(), "async no");
}

#[test]
fn a_custom_error_type_works() {
    #[derive(Debug)]
    enum MyError {
        Chain(Failure),
        Mine,
    }
    impl From<Failure> for MyError {
        fn from(f: Failure) -> MyError {
            MyError::Chain(f)
        }
    }
    let d: Deferred<u32, MyError> = Deferred::drive_future(async { Err(MyError::Mine) });
    assert!(matches!(d.wait(), Err(MyError::Mine)));
    let d: Deferred<u32, MyError> = Deferred::drive_future(poll_fn(|_| Poll::Pending));
    assert!(matches!(d.wait(), Err(MyError::Chain(f)) if f.is::<NeverFired>()));
}

/// A future that is not `async`: a hand-written oneshot, woken by a plain thread.
#[test]
fn a_hand_written_future_woken_by_a_thread() {
    #[derive(Default)]
    struct Shared {
        value: Option<u32>,
        waker: Option<Waker>,
    }
    struct Receiver(Arc<Mutex<Shared>>);
    impl Future for Receiver {
        type Output = Result<u32, Failure>;
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            let mut shared = self.0.lock().unwrap();
            match shared.value.take() {
                Some(value) => Poll::Ready(Ok(value)),
                None => {
                    shared.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        }
    }
    let shared = Arc::new(Mutex::new(Shared::default()));
    // Added before the fire: the callback runs on the thread that polled the future to the end.
    let d = Deferred::drive_future(Receiver(shared.clone()))
        .add_callback(move |x| Ok((x, thread::current().id())));
    let sender = thread::spawn(move || {
        let waker = {
            let mut shared = shared.lock().unwrap();
            shared.value = Some(5);
            shared.waker.take()
        };
        waker.unwrap().wake();
        thread::current().id()
    });
    let sender = sender.join().unwrap();
    assert_eq!(d.wait().unwrap(), (5, sender));
}

// ---------------------------------------------------------------------------------------------
// A cancel cancels what the idle future awaits (and only that)
// ---------------------------------------------------------------------------------------------

/// A Deferred whose canceller counts its runs.
fn counted() -> (
    Deferred<u32>,
    deferred_core::Resolver<u32>,
    Arc<AtomicUsize>,
) {
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let (d, resolver) = Deferred::<u32>::with_canceller(move || {
        r.fetch_add(1, Ordering::SeqCst);
    });
    (d, resolver, runs)
}

/// Polls `lost` once (it stays pending), then `won` until it is ready: `won`'s output, and
/// `lost` given back (a select whose loser is handed back, as `futures::future::select` does).
async fn first_of(
    mut lost: Deferred<u32>,
    mut won: Deferred<u32>,
) -> (Result<u32, Failure>, Deferred<u32>) {
    let mut polled_lost = false;
    let out = poll_fn(|cx| {
        if !polled_lost {
            polled_lost = true;
            assert!(Pin::new(&mut lost).poll(cx).is_pending());
        }
        Pin::new(&mut won).poll(cx)
    })
    .await;
    (out, lost)
}

// A Deferred the future polled and then dropped (the loser of a select) is no more what it
// awaits: the cancel neither runs its canceller nor makes its chain report a `Cancelled` nobody
// will see.
#[test]
fn a_cancel_leaves_alone_a_deferred_the_future_polled_and_dropped() {
    let unhandled = deferred_core::UnhandledCapture::start();
    let (lost, lost_r, lost_cancels) = counted();
    let (next, _next_r, next_cancels) = counted();
    let d: Deferred<u32> = Deferred::drive_future(async move {
        let (won, lost) = first_of(lost, Deferred::succeed(1)).await;
        drop(lost);
        Ok(won? + next.await?)
    });
    assert!(!d.is_fired());
    d.cancel();
    assert_eq!(
        next_cancels.load(Ordering::SeqCst),
        1,
        "what it awaits is cancelled"
    );
    assert_eq!(
        lost_cancels.load(Ordering::SeqCst),
        0,
        "the dropped Deferred was cancelled"
    );
    assert!(d.wait().unwrap_err().is_cancelled());
    lost_r.callback(2); // its producer goes on: a success nobody sees, not reported
    let reported = unhandled.finish();
    assert!(reported.is_empty(), "reported: {reported:?}");
}

// A Deferred the future polled and then gave away (to another driven future, which awaits it)
// is that future's: cancelling the first does not cancel it.
#[test]
fn a_cancel_leaves_alone_a_deferred_the_future_polled_and_gave_away() {
    let (lost, lost_r, lost_cancels) = counted();
    let (next, _next_r, _) = counted();
    let given: Arc<Mutex<Option<Deferred<u32>>>> = Arc::default();
    let g = given.clone();
    let d: Deferred<u32> = Deferred::drive_future(async move {
        let (won, lost) = first_of(lost, Deferred::succeed(1)).await;
        *g.lock().unwrap() = Some(lost);
        Ok(won? + next.await?)
    });
    let lost = given.lock().unwrap().take().unwrap();
    let other: Deferred<u32> = Deferred::drive_future(async move { Ok(lost.await? * 10) });
    d.cancel();
    assert!(d.wait().unwrap_err().is_cancelled());
    assert_eq!(
        lost_cancels.load(Ordering::SeqCst),
        0,
        "another future's await was cancelled"
    );
    lost_r.callback(4);
    assert_eq!(other.wait().unwrap(), 40);
}

// A cancel that lands while the future is polled (here from another thread, which the poll
// waits for) cancels what that poll leaves the future awaiting, as a cancel of the idle future
// does: the cascade does not depend on the timing.
#[test]
fn a_cancel_during_a_poll_cancels_what_that_poll_leaves_pending() {
    let (first, first_r) = Deferred::<u32>::pending();
    let (second, _second_r, second_cancels) = counted();
    let handle: Arc<Mutex<Option<CancelHandle>>> = Arc::default();
    let h = handle.clone();
    let d: Deferred<u32> = Deferred::drive_future(async move {
        let a = first.await?;
        // Polled by the thread that fired `first`: a cancel from another thread lands now.
        let h = h.lock().unwrap().take().unwrap();
        thread::spawn(move || h.cancel()).join().unwrap();
        Ok(a + second.await?)
    });
    *handle.lock().unwrap() = Some(d.cancel_handle());
    first_r.callback(1);
    assert!(d.wait().unwrap_err().is_cancelled());
    assert_eq!(
        second_cancels.load(Ordering::SeqCst),
        1,
        "what it awaits was not cancelled"
    );
}

// A cycle: the future awaits a chain that waits on the future's own Deferred. A cancel returns.
#[test]
fn cancelling_a_driven_future_that_awaits_its_own_chain_returns() {
    let slot: Arc<Mutex<Option<Deferred<u32>>>> = Arc::default();
    let (go, go_r) = Deferred::<()>::pending();
    let s = slot.clone();
    let d: Deferred<u32> = Deferred::drive_future(async move {
        go.await?;
        let own = s.lock().unwrap().take().unwrap();
        own.await
    });
    let handle = d.cancel_handle();
    *slot.lock().unwrap() = Some(d.add_callback(|v| Ok(v + 1)));
    go_r.callback(());
    handle.cancel();
    handle.cancel();
}

// ---------------------------------------------------------------------------------------------
// Stress: cancels racing fires, wakes and each other, on real threads
// ---------------------------------------------------------------------------------------------

const ROUNDS: usize = 1000;

/// Runs `f` on a new thread that checks no failure is reported on it unhandled.
fn checked(f: impl FnOnce() + Send + 'static) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let _no_unhandled = deferred_core::NoUnhandled::start();
        f();
    })
}

/// The driven Deferred's end: counts how often it fires, and handles its failure.
fn counted_end(d: Deferred<u32>) -> (Deferred<Result<u32, bool>>, Arc<AtomicUsize>) {
    let fires = Arc::new(AtomicUsize::new(0));
    let f = fires.clone();
    let end = d.add_both(move |result: Result<u32, Failure>| {
        f.fetch_add(1, Ordering::SeqCst);
        Ok(result.map_err(|f| f.is_cancelled()))
    });
    (end, fires)
}

// One thread fires what the future awaits (and so polls it), another cancels, a third cancels
// too: the Deferred fires once, the awaited Deferred's canceller runs at most once, nothing is
// reported, nothing hangs.
#[test]
fn stress_cancels_racing_the_fire_of_what_the_future_awaits() {
    let _no_unhandled = deferred_core::NoUnhandled::start();
    for round in 0..ROUNDS {
        let (first, first_r, first_cancels) = counted();
        let (second, second_r, second_cancels) = counted();
        let d: Deferred<u32> = Deferred::drive_future(async move {
            let a = first.await?;
            // Translates a cancellation of `second` into a value half the time.
            match second.await {
                Ok(b) => Ok(a + b),
                Err(f) if f.is_cancelled() && a % 2 == 0 => Ok(100),
                Err(f) => Err(f),
            }
        });
        let (end, fires) = counted_end(d);
        let barrier = Arc::new(Barrier::new(3));
        let handle = end.cancel_handle();
        let firer = checked({
            let barrier = barrier.clone();
            move || {
                barrier.wait();
                first_r.callback(round as u32);
                second_r.callback(1);
            }
        });
        let cancellers: Vec<_> = (0..2)
            .map(|_| {
                let (barrier, handle) = (barrier.clone(), handle.clone());
                checked(move || {
                    barrier.wait();
                    handle.cancel();
                })
            })
            .collect();
        firer.join().unwrap();
        for c in cancellers {
            c.join().unwrap();
        }
        let result = end.wait().unwrap();
        assert_eq!(fires.load(Ordering::SeqCst), 1, "round {round}");
        assert!(first_cancels.load(Ordering::SeqCst) <= 1, "round {round}");
        assert!(second_cancels.load(Ordering::SeqCst) <= 1, "round {round}");
        match result {
            Ok(v) => assert!(v == round as u32 + 1 || v == 100, "round {round}: {v}"),
            Err(cancelled) => assert!(cancelled, "round {round}"),
        }
    }
}

// A future awaiting two Deferreds at once, each fired by its own thread, while the future
// cancels its own Deferred from inside a poll and another thread cancels it too.
#[test]
fn stress_cancels_from_inside_the_poll_and_outside_racing_two_fires() {
    let _no_unhandled = deferred_core::NoUnhandled::start();
    for round in 0..ROUNDS {
        let (a, a_r, a_cancels) = counted();
        let (b, b_r, b_cancels) = counted();
        let own: Arc<Mutex<Option<CancelHandle>>> = Arc::default();
        let o = own.clone();
        let d: Deferred<u32> = Deferred::drive_future(async move {
            let (mut a, mut b) = (Some(a), Some(b));
            let mut sum = 0;
            poll_fn(|cx| {
                for slot in [&mut a, &mut b] {
                    if let Some(d) = slot.as_mut()
                        && let Poll::Ready(out) = Pin::new(d).poll(cx)
                    {
                        *slot = None;
                        match out {
                            Ok(v) => sum += v,
                            Err(f) => return Poll::Ready(Err(f)),
                        }
                        // The first to arrive cancels the future's own Deferred, on odd rounds.
                        if round % 2 == 1
                            && let Some(own) = o.lock().unwrap().take()
                        {
                            own.cancel();
                        }
                    }
                }
                if a.is_none() && b.is_none() {
                    Poll::Ready(Ok(sum))
                } else {
                    Poll::Pending
                }
            })
            .await
        });
        *own.lock().unwrap() = Some(d.cancel_handle());
        let handle = d.cancel_handle();
        let (end, fires) = counted_end(d);
        let barrier = Arc::new(Barrier::new(3));
        let threads = vec![
            checked({
                let barrier = barrier.clone();
                move || {
                    barrier.wait();
                    a_r.callback(1);
                }
            }),
            checked({
                let barrier = barrier.clone();
                move || {
                    barrier.wait();
                    b_r.callback(2);
                }
            }),
            checked(move || {
                barrier.wait();
                handle.cancel();
            }),
        ];
        for t in threads {
            t.join().unwrap();
        }
        let result = end.wait().unwrap();
        assert_eq!(fires.load(Ordering::SeqCst), 1, "round {round}");
        assert!(a_cancels.load(Ordering::SeqCst) <= 1, "round {round}");
        assert!(b_cancels.load(Ordering::SeqCst) <= 1, "round {round}");
        match result {
            Ok(v) => assert_eq!(v, 3, "round {round}"),
            Err(cancelled) => assert!(cancelled, "round {round}"),
        }
        drop(own);
    }
}

// What a cancel would cancel keeps no waker of the future: a future that polled a Deferred,
// dropped it, and then awaits something that kept no waker still fails with `NeverFired`.
#[test]
fn what_a_cancel_would_cancel_keeps_the_future_from_nobody() {
    let (lost, lost_r, lost_cancels) = counted();
    let (guard, dropped) = drop_flag();
    let d: Deferred<u32> = Deferred::drive_future(async move {
        let _guard = guard;
        let (won, lost) = first_of(lost, Deferred::succeed(1)).await;
        drop(lost);
        poll_fn(|_| Poll::<()>::Pending).await; // keeps no waker
        won
    });
    assert!(dropped.load(Ordering::SeqCst), "the future was kept");
    assert!(d.wait().unwrap_err().is::<NeverFired>());
    assert_eq!(lost_cancels.load(Ordering::SeqCst), 0);
    lost_r.callback(2);
}

// A try-join: the first failure ends the future, which drops the other Deferred. A cancel
// cancels the first, the future completes with its `Cancelled` and drops the second: the
// cancel does not go on to cancel the second, whose `Cancelled` nobody would see (it would be
// reported as an unhandled failure).
#[test]
fn a_cancel_stops_at_what_the_future_dropped_when_it_completed() {
    let unhandled = deferred_core::UnhandledCapture::start();
    let (a, _a_r, a_cancels) = counted();
    let (b, _b_r, b_cancels) = counted();
    let d: Deferred<u32> = Deferred::drive_future(async move {
        let (mut a, mut b) = (Some(a), Some(b));
        let mut sum = 0;
        poll_fn(|cx| {
            for slot in [&mut a, &mut b] {
                if let Some(d) = slot.as_mut()
                    && let Poll::Ready(out) = Pin::new(d).poll(cx)
                {
                    *slot = None;
                    sum += out?;
                }
            }
            if a.is_none() && b.is_none() {
                Poll::Ready(Ok(sum))
            } else {
                Poll::Pending
            }
        })
        .await
    });
    d.cancel();
    assert!(d.wait().unwrap_err().is_cancelled());
    assert_eq!(a_cancels.load(Ordering::SeqCst), 1);
    assert_eq!(
        b_cancels.load(Ordering::SeqCst),
        0,
        "cancelled after the future dropped it"
    );
    let reported = unhandled.finish();
    assert!(reported.is_empty(), "reported: {reported:?}");
}

/// A future that cancels its own Deferred from inside its poll and then fails with a failure of
/// its own: the Deferred has failed with `Cancelled`, and that failure, which nobody else can
/// see, is reported once; a future that lets the cancellation pass reports nothing.
#[test]
fn a_failure_a_self_cancelled_future_gives_after_the_cancel_is_reported() {
    let run = |own_failure: bool| {
        let handle: Arc<Mutex<Option<CancelHandle>>> = Arc::default();
        let slot = handle.clone();
        let (d, reported) = deferred_core::capture_unhandled(|| {
            let (go, go_r) = Deferred::<()>::pending();
            let d = Deferred::<u32>::drive_future(async move {
                go.await?;
                let me = slot.lock().unwrap().take().expect("the handle");
                me.cancel();
                if own_failure {
                    Err(Failure::msg("the future's own"))
                } else {
                    Err(Failure::cancelled())
                }
            });
            *handle.lock().unwrap() = Some(d.cancel_handle());
            go_r.callback(());
            d
        });
        assert!(d.wait().unwrap_err().is_cancelled());
        reported.iter().map(|f| f.to_string()).collect::<Vec<_>>()
    };
    assert_eq!(run(true), ["the future's own"]);
    assert!(run(false).is_empty());
}

/// A `Deferred` an `Inbox::spawn` task awaits, polled while the task is polled inside a driven
/// future's poll (the future runs the inbox), is that task's, not the driven future's: cancelling
/// the driven Deferred leaves it alone.
#[test]
fn a_cancel_leaves_alone_what_a_task_of_the_other_kind_polled_inside_the_poll_awaits() {
    use std::cell::{Cell, RefCell};

    use deferred_core::{Inbox, LocalDeferred};

    thread_local! {
        static INBOX: RefCell<Option<Inbox>> = const { RefCell::new(None) };
        static TASK: RefCell<Option<LocalDeferred<()>>> = const { RefCell::new(None) };
        static AWAITED: RefCell<Option<Deferred<u32>>> = const { RefCell::new(None) };
        static GOT: Cell<Option<bool>> = const { Cell::new(None) };
    }
    let inbox = Inbox::new(|| {});
    INBOX.with(|slot| *slot.borrow_mut() = Some(inbox.clone()));
    let (only_the_task_awaits, resolver) = Deferred::<u32>::pending();
    AWAITED.with(|slot| *slot.borrow_mut() = Some(only_the_task_awaits));
    let slot: WakerSlot = Arc::default();
    let outer: Deferred<u32> = Deferred::drive_future(poll_fn(move |cx| {
        *slot.lock().unwrap() = Some(cx.waker().clone());
        INBOX.with(|slot| {
            let inbox = slot.borrow();
            let inbox = inbox.as_ref().unwrap();
            let task = inbox.spawn(async {
                let awaited = AWAITED.with(|slot| slot.borrow_mut().take()).unwrap();
                GOT.with(|got| got.set(Some(false)));
                let result = awaited.await;
                GOT.with(|got| got.set(Some(result.is_ok())));
                Ok::<(), Failure>(())
            });
            TASK.with(|slot| *slot.borrow_mut() = Some(task));
            inbox.run_pending();
        });
        Poll::Pending
    }));
    assert_eq!(GOT.with(Cell::get), Some(false), "the task awaits it");
    outer.cancel();
    let failure = outer.wait().unwrap_err();
    assert!(failure.is::<Cancelled>(), "{failure:?}");
    resolver.callback(1);
    inbox.run_pending();
    assert_eq!(
        GOT.with(Cell::get),
        Some(true),
        "cancelling the driven Deferred cancelled what only the inbox's task awaits"
    );
    INBOX.with(|slot| slot.borrow_mut().take());
    TASK.with(|slot| slot.borrow_mut().take());
}
