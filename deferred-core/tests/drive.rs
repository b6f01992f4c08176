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
