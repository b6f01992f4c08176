//! DeferredLock, DeferredSemaphore and map_concurrent: Twisted's test_defer.py lock and semaphore
//! tests, plus the constant-stack hand-off (Twisted issue #9304), exact peak concurrency and
//! thread safety.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

mod rng;

use deferred::{
    Cancelled, Deferred, DeferredLock, DeferredSemaphore, Failure, FirstError, Permit, Resolver,
    map_concurrent,
};

/// Tracks how many tasks run at once, and the most there ever were.
#[derive(Clone, Default)]
struct Concurrency {
    now: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

impl Concurrency {
    fn enter(&self) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
    }

    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }

    fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

// Twisted: DeferredLockTests.testLock
#[test]
fn lock_passes_from_holder_to_waiter_in_order() {
    let lock = DeferredLock::new();
    let counter = Arc::new(AtomicUsize::new(0));
    let count = |d: Deferred<Permit>| {
        let counter = counter.clone();
        d.add_callback(move |permit| {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(permit)
        })
    };

    // 1. The first acquire fires at once; the second waits.
    let first = count(lock.acquire());
    assert!(lock.is_locked());
    assert_eq!(counter.load(Ordering::SeqCst), 1);
    let second = count(lock.acquire());
    assert_eq!(counter.load(Ordering::SeqCst), 1);

    // 2. Releasing hands the lock straight to the waiter; releasing again unlocks.
    first.wait().unwrap().release();
    assert_eq!(counter.load(Ordering::SeqCst), 2);
    assert!(lock.is_locked());
    second.wait().unwrap().release();
    assert!(!lock.is_locked());

    // 3. Twisted's `lock.run()` without a function raises TypeError: here it does not compile.

    // 4. `run` calls the function now (the lock is free); the lock is held until the Deferred
    // it returned fires, then passes to the queued acquirer.
    let (control, control_resolver) = Deferred::<&str>::pending();
    let called_with = Arc::new(Mutex::new(None));
    let record = called_with.clone();
    let ran = lock.run(move || {
        *record.lock().unwrap() = Some("resultValue");
        control
    });
    assert_eq!(*called_with.lock().unwrap(), Some("resultValue"));
    assert!(lock.is_locked());
    let third = count(lock.acquire());
    assert_eq!(counter.load(Ordering::SeqCst), 2);
    control_resolver.callback("control value");
    assert_eq!(ran.wait().unwrap(), "control value");
    assert_eq!(counter.load(Ordering::SeqCst), 3);

    // 5. A queued acquire that is cancelled fails with Cancelled.
    let fourth = lock.acquire();
    fourth.cancel();
    assert!(fourth.wait().unwrap_err().is::<Cancelled>());
    third.wait().unwrap().release();
    assert!(!lock.is_locked());
}

// Twisted: DeferredLockTests.test_cancelLockAfterAcquired
// Twisted: DeferredSemaphoreTests.test_cancelSemaphoreAfterAcquired
#[test]
fn cancelling_a_fired_acquire_does_nothing() {
    let lock = DeferredLock::new();
    let acquired = lock.acquire();
    acquired.cancel();
    assert!(acquired.wait().is_ok());

    let semaphore = DeferredSemaphore::new(1);
    let acquired = semaphore.acquire();
    acquired.cancel();
    let permit = acquired.wait().unwrap();
    assert_eq!(semaphore.available(), 0);
    drop(permit);
    assert_eq!(semaphore.available(), 1);
}

// Twisted: DeferredLockTests.test_cancelLockBeforeAcquired
// Twisted: DeferredSemaphoreTests.test_cancelSemaphoreBeforeAcquired
#[test]
fn cancelling_a_waiting_acquire_fails_it_and_takes_it_out_of_the_queue() {
    let lock = DeferredLock::new();
    let held = lock.acquire().wait().unwrap();
    let waiting = lock.acquire();
    waiting.cancel();
    assert_eq!(lock.waiting(), 0);
    assert!(waiting.wait().unwrap_err().is_cancelled());
    held.release();
    assert!(
        !lock.is_locked(),
        "the token did not go to the cancelled waiter"
    );

    let semaphore = DeferredSemaphore::new(1);
    let held = semaphore.acquire().wait().unwrap();
    let waiting = semaphore.acquire();
    waiting.cancel();
    assert!(waiting.wait().unwrap_err().is_cancelled());
    held.release();
    assert_eq!(semaphore.available(), 1);
}

// Twisted: DeferredSemaphoreTests.testSemaphore
#[test]
fn semaphore_hands_out_exactly_its_tokens() {
    const N: usize = 13;
    let semaphore = DeferredSemaphore::new(N);

    // 1. `run` waits for the Deferred the function returned.
    let (control, control_resolver) = Deferred::<()>::pending();
    let ran = semaphore.run(move || control);
    assert!(!ran.is_fired());
    control_resolver.callback(());
    assert!(ran.wait().is_ok());

    // 2. N acquires fire at once.
    let permits: Vec<Permit> = (0..N)
        .map(|_| semaphore.acquire().wait().unwrap())
        .collect();
    assert_eq!(semaphore.available(), 0);

    // 3. The next waits; cancelling it runs its errback.
    let cancelled = semaphore.acquire().add_callbacks(
        |_permit| Ok("acquired"),
        |f: Failure| f.trap::<Cancelled>().map(|_| "cancelled"),
    );
    cancelled.cancel();
    assert_eq!(cancelled.wait().unwrap(), "cancelled");

    // 4. Another waiter; one release fires it.
    let counter = Arc::new(AtomicUsize::new(0));
    let seen = counter.clone();
    let waiter = semaphore.acquire().add_callback(move |permit| {
        seen.fetch_add(1, Ordering::SeqCst);
        Ok(permit)
    });
    let mut permits = permits.into_iter();
    permits.next().unwrap().release();
    assert_eq!(counter.load(Ordering::SeqCst), 1);

    // 5. The other releases fire nothing more.
    for permit in permits {
        permit.release();
    }
    assert_eq!(counter.load(Ordering::SeqCst), 1);
    drop(waiter.wait().unwrap());
    assert_eq!(semaphore.available(), N);
}

// Twisted: DeferredSemaphoreTests.test_asyncWithSemaphore (holding permits in nested scopes)
#[test]
fn tokens_come_back_as_permits_go_out_of_scope() {
    let semaphore = DeferredSemaphore::new(3);
    let outer = semaphore.acquire().wait().unwrap();
    assert_eq!(semaphore.available(), 2);
    {
        let _inner = semaphore.acquire().wait().unwrap();
        assert_eq!(semaphore.available(), 1);
        let d1 = semaphore.acquire();
        let d2 = semaphore.acquire();
        assert!(d1.is_fired() && !d2.is_fired());
        assert_eq!(semaphore.available(), 0);
        drop(_inner);
        assert!(d2.is_fired());
        drop((d1.wait().unwrap(), d2.wait().unwrap()));
        assert_eq!(semaphore.available(), 2);
    }
    drop(outer);
    assert_eq!(semaphore.available(), 3);
}

// Twisted: DeferredLockTests.test_asyncWithLockException (the lock is released on failure)
#[test]
fn run_releases_on_failure_and_on_panic() {
    let lock = DeferredLock::new();
    let failed = lock.run(|| -> Result<(), Failure> { Err(Failure::msg("inside the lock")) });
    assert_eq!(failed.wait().unwrap_err().to_string(), "inside the lock");
    assert!(!lock.is_locked());

    let panicked = lock.run(|| -> Result<(), Failure> { panic!("panicked inside the lock") });
    assert!(
        panicked
            .wait()
            .unwrap_err()
            .to_string()
            .contains("panicked inside the lock")
    );
    assert!(!lock.is_locked());

    let (later, resolver) = Deferred::<()>::pending();
    let failed_later = lock.run(move || later);
    assert!(lock.is_locked());
    resolver.errback(Failure::msg("later"));
    assert!(failed_later.wait().is_err());
    assert!(!lock.is_locked());
}

// Twisted: DeferredSemaphoreTests.test_semaphoreInvalidTokens
#[test]
#[should_panic(expected = "at least one token")]
fn a_semaphore_of_no_tokens_is_refused() {
    let _ = DeferredSemaphore::new(0);
}

#[test]
#[should_panic(expected = "`limit` must be at least 1")]
fn map_concurrent_of_no_slots_is_refused() {
    drop(deferred::map_concurrent(
        vec![1_u32],
        0,
        Ok::<u32, deferred::Failure>,
    ));
}

#[test]
fn cancelling_run_while_it_waits_means_the_function_never_runs() {
    let lock = DeferredLock::new();
    let held = lock.acquire().wait().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let count = calls.clone();
    let queued = lock.run(move || {
        count.fetch_add(1, Ordering::SeqCst);
        Ok(())
    });
    queued.cancel();
    assert!(queued.wait().unwrap_err().is_cancelled());
    held.release();
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert!(!lock.is_locked());
}

// Twisted: catalogue O.158 / issue #9304 — Twisted's lock overflows the stack after 199
// waiters that release at once; ours hands 100,000 over in constant stack.
#[test]
fn a_hundred_thousand_waiters_are_released_in_constant_stack() {
    const WAITERS: usize = 100_000;
    let worker = thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            let lock = DeferredLock::new();
            let completed = Arc::new(AtomicUsize::new(0));
            let first = lock.acquire().wait().unwrap();
            let waiters: Vec<Deferred<()>> = (0..WAITERS)
                .map(|_| {
                    let completed = completed.clone();
                    lock.acquire().add_callback(move |permit| {
                        completed.fetch_add(1, Ordering::SeqCst);
                        permit.release();
                        Ok(())
                    })
                })
                .collect();
            first.release();
            assert_eq!(completed.load(Ordering::SeqCst), WAITERS);
            assert!(waiters.into_iter().all(|w| w.wait().is_ok()));

            // Waiters whose Deferreds were dropped return their permits by themselves.
            let first = lock.acquire().wait().unwrap();
            for _ in 0..WAITERS {
                drop(lock.acquire());
            }
            first.release();
            assert!(!lock.is_locked());
        })
        .unwrap();
    worker.join().unwrap();
}

/// A running item: its number, and the Resolver that finishes it.
type Running = (usize, Resolver<usize>);

#[test]
fn map_concurrent_runs_at_most_limit_at_once_and_keeps_item_order() {
    const LIMIT: usize = 3;
    let concurrency = Concurrency::default();
    let pending: Arc<Mutex<Vec<Running>>> = Arc::default();
    let (track, queue) = (concurrency.clone(), pending.clone());
    let mapped = map_concurrent(0..20, LIMIT, move |item: usize| {
        track.enter();
        let (d, resolver) = Deferred::<usize>::pending();
        queue.lock().unwrap().push((item, resolver));
        let track = track.clone();
        d.add_both(move |result| {
            track.leave();
            result
        })
    });
    // Finish the running items one at a time, newest first, so they complete out of order.
    loop {
        let next = pending.lock().unwrap().pop();
        let Some((item, resolver)) = next else { break };
        resolver.callback(item * 2);
    }
    assert_eq!(
        mapped.wait().unwrap(),
        (0..20).map(|i| i * 2).collect::<Vec<_>>()
    );
    assert_eq!(concurrency.peak(), LIMIT);
}

#[test]
fn map_concurrent_stops_at_the_first_failure_and_cancels_the_rest() {
    let started = Arc::new(Mutex::new(Vec::new()));
    let cancelled = Arc::new(AtomicUsize::new(0));
    let failing: Arc<Mutex<Option<Resolver<u32>>>> = Arc::default();
    let running: Arc<Mutex<Vec<Resolver<u32>>>> = Arc::default();
    let (log, cancels, failing_slot, keep) = (
        started.clone(),
        cancelled.clone(),
        failing.clone(),
        running.clone(),
    );
    let mapped = map_concurrent(0..10u32, 2, move |item| {
        log.lock().unwrap().push(item);
        let cancels = cancels.clone();
        let (d, resolver) = Deferred::<u32>::with_canceller(move || {
            cancels.fetch_add(1, Ordering::SeqCst);
        });
        if item == 1 {
            *failing_slot.lock().unwrap() = Some(resolver);
        } else {
            keep.lock().unwrap().push(resolver); // item 0 runs until it is cancelled
        }
        d
    });
    assert_eq!(*started.lock().unwrap(), [0, 1]);
    let resolver = failing.lock().unwrap().take().unwrap();
    resolver.errback(Failure::msg("item 1 failed"));
    let first = mapped.wait().unwrap_err().trap::<FirstError>().unwrap();
    assert_eq!(first.index, 1);
    assert_eq!(first.failure.to_string(), "item 1 failed");
    assert_eq!(cancelled.load(Ordering::SeqCst), 1, "item 0 was cancelled");
    assert_eq!(
        *started.lock().unwrap(),
        [0, 1],
        "queued items never started"
    );
}

/// The failing item gives its token back before its failure reaches the result, and that token
/// goes to the next waiting item, which the batch does not start: the failure decides all the
/// same, not that refusal, which used to arrive first as a `Cancelled` of the later item.
#[test]
fn map_concurrent_fails_with_the_failure_that_stopped_it_not_an_item_it_skipped() {
    let resolvers: Arc<Mutex<Vec<Option<Resolver<u32>>>>> = Arc::default();
    let made = resolvers.clone();
    let (mapped, unhandled) = deferred::capture_unhandled(|| {
        let mapped = map_concurrent(0..4u32, 2, move |_item| {
            let (d, resolver) = Deferred::<u32>::pending();
            made.lock().unwrap().push(Some(resolver));
            d
        });
        let take = |i: usize| resolvers.lock().unwrap()[i].take().unwrap();
        take(0).callback(0); // item 2 starts
        take(2).errback(Failure::msg("item 2: HTTP 500")); // item 1 runs, item 3 waits
        let first = mapped.wait().unwrap_err().trap::<FirstError>().unwrap();
        drop(take(1)); // cancelled by the failure: its Resolver is dropped late
        first
    });
    assert_eq!(mapped.index, 2);
    assert_eq!(mapped.failure.to_string(), "item 2: HTTP 500");
    assert_eq!(resolvers.lock().unwrap().len(), 3, "item 3 never started");
    assert!(unhandled.is_empty(), "{unhandled:?}");
}

/// The same race between threads: one item succeeds (its token starts the next, which the
/// batch skips once it has stopped) while another fails.
#[test]
fn map_concurrent_fails_with_the_failure_whichever_thread_frees_a_token_first() {
    for round in 0..300 {
        let resolvers: Arc<Mutex<Vec<Option<Resolver<u32>>>>> = Arc::default();
        let made = resolvers.clone();
        let mapped = map_concurrent(0..4u32, 2, move |_item| {
            let (d, resolver) = Deferred::<u32>::pending();
            made.lock().unwrap().push(Some(resolver));
            d
        });
        let take = |i: usize| resolvers.lock().unwrap()[i].take().unwrap();
        let (ok, failing) = (take(0), take(1));
        let succeeds = thread::spawn(move || ok.callback(0));
        let fails = thread::spawn(move || failing.errback(Failure::msg("item 1 failed")));
        succeeds.join().unwrap();
        fails.join().unwrap();
        let first = mapped.wait().unwrap_err().trap::<FirstError>().unwrap();
        assert_eq!(
            (first.index, first.failure.to_string().as_str()),
            (1, "item 1 failed"),
            "round {round}"
        );
    }
}

/// A cancel stops the batch even when every running item turns its cancellation into a value:
/// the item its freed token would start is not started, and the result fails there.
#[test]
fn a_cancelled_map_concurrent_fails_when_its_items_turn_the_cancel_into_values() {
    let started = Arc::new(AtomicUsize::new(0));
    let starts = started.clone();
    let keep: Arc<Mutex<Vec<Resolver<u32>>>> = Arc::default();
    let kept = keep.clone();
    let mapped = map_concurrent(0..3u32, 1, move |item| {
        starts.fetch_add(1, Ordering::SeqCst);
        let (d, resolver) = Deferred::<u32>::pending();
        kept.lock().unwrap().push(resolver);
        d.add_both(move |outcome| Ok(outcome.unwrap_or(item + 100)))
    });
    mapped.cancel();
    let first = mapped.wait().unwrap_err().trap::<FirstError>().unwrap();
    assert_eq!(first.index, 1, "item 1 was not started");
    assert!(first.failure.is_cancelled());
    assert_eq!(started.load(Ordering::SeqCst), 1);
}

/// The same when every item had started (the limit is no lower than their number): no item
/// is left to fail at, and the result fails with the cancellation itself.
#[test]
fn a_cancelled_map_concurrent_whose_items_all_started_fails_when_they_turn_the_cancel_into_values()
{
    let keep: Arc<Mutex<Vec<Resolver<u32>>>> = Arc::default();
    let kept = keep.clone();
    let mapped = map_concurrent(0..2u32, 2, move |item| {
        let (d, resolver) = Deferred::<u32>::pending();
        kept.lock().unwrap().push(resolver);
        d.add_both(move |outcome| Ok(outcome.unwrap_or(item + 100)))
    });
    mapped.cancel();
    assert!(mapped.wait().unwrap_err().is_cancelled());
    assert_eq!(keep.lock().unwrap().len(), 2, "both items started");
}

#[test]
fn cancelling_map_concurrent_cancels_running_and_queued_items() {
    let cancelled = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let running: Arc<Mutex<Vec<Resolver<u32>>>> = Arc::default();
    let (cancels, starts, keep) = (cancelled.clone(), started.clone(), running.clone());
    let mapped = map_concurrent(0..5, 2, move |_item: u32| {
        starts.fetch_add(1, Ordering::SeqCst);
        let cancels = cancels.clone();
        let (d, resolver) = Deferred::<u32>::with_canceller(move || {
            cancels.fetch_add(1, Ordering::SeqCst);
        });
        keep.lock().unwrap().push(resolver);
        d
    });
    mapped.cancel();
    assert_eq!(cancelled.load(Ordering::SeqCst), 2);
    assert_eq!(started.load(Ordering::SeqCst), 2);
    let first = mapped.wait().unwrap_err().trap::<FirstError>().unwrap();
    assert!(first.failure.is_cancelled());
}

#[test]
fn map_concurrent_of_nothing_fires_at_once() {
    let mapped = map_concurrent(Vec::<u32>::new(), 4, Ok);
    assert!(mapped.wait().unwrap().is_empty());
}

#[test]
fn semaphore_is_thread_safe_and_never_exceeds_its_limit() {
    const LIMIT: usize = 4;
    const THREADS: usize = 8;
    const ROUNDS: usize = 300;
    let semaphore = DeferredSemaphore::new(LIMIT);
    let concurrency = Concurrency::default();
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let (semaphore, concurrency) = (semaphore.clone(), concurrency.clone());
            thread::spawn(move || {
                for _ in 0..ROUNDS {
                    let concurrency = concurrency.clone();
                    semaphore
                        .run(move || {
                            concurrency.enter();
                            thread::yield_now();
                            concurrency.leave();
                            Ok(())
                        })
                        .wait()
                        .unwrap();
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    assert!(concurrency.peak() <= LIMIT);
    assert!(concurrency.peak() >= 1);
    assert_eq!(semaphore.available(), LIMIT);
    assert_eq!(semaphore.waiting(), 0);
}

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn semaphore_lock_and_permit_are_send_and_sync() {
    assert_send_sync::<DeferredSemaphore>();
    assert_send_sync::<DeferredLock>();
    assert_send_sync::<Permit>();
}

/// A token released on one thread while another thread's hand-off loop is inside a waiter's
/// callback goes to the next waiter at once: a callback that takes long holds up no other
/// waiter (the token used to wait for that callback to return).
#[test]
fn a_release_on_another_thread_is_handed_on_while_a_waiters_callback_runs() {
    use std::sync::mpsc;
    let semaphore = DeferredSemaphore::new(2);
    let first = semaphore.acquire().wait().unwrap();
    let second = semaphore.acquire().wait().unwrap();
    let (inside_tx, inside_rx) = mpsc::channel::<()>();
    let (finish_tx, finish_rx) = mpsc::channel::<()>();
    // B's callback runs on the thread whose release hands it the token, and stays there.
    let b = semaphore.acquire().add_callback(move |permit: Permit| {
        inside_tx.send(()).unwrap();
        finish_rx.recv().unwrap();
        drop(permit);
        Ok(())
    });
    let c = semaphore.acquire();
    let releasing = thread::spawn(move || drop(first));
    inside_rx.recv().unwrap(); // B's callback is running on that thread
    drop(second);
    assert!(c.is_fired(), "C has the token this release returned");
    finish_tx.send(()).unwrap();
    releasing.join().unwrap();
    drop(c.wait().unwrap());
    b.wait().unwrap();
    assert_eq!(semaphore.available(), 2);
}

/// The items a stopped batch does not start are its own refusals: never reported (its own
/// example used to report one per item left).
#[test]
fn map_concurrent_reports_nothing_for_the_items_it_did_not_start() {
    let (first, unhandled) = deferred::capture_unhandled(|| {
        let failed = map_concurrent(["1", "x", "3", "4"], 2, |s: &str| Ok(s.parse::<u32>()?));
        failed.wait().unwrap_err().trap::<FirstError>().unwrap()
    });
    assert_eq!(first.index, 1);
    assert!(unhandled.is_empty(), "{unhandled:?}");
}

/// An acquire dropped while it waits (a `tokio::select!` or a timeout around it) leaves the
/// semaphore's queue, as a dropped queue `get` leaves the queue's line: a loop that gives up on
/// the lock every time must not grow the line for ever while the lock is held, nor be counted
/// as waiting.
macro_rules! dropped_acquires {
    ($name:ident, $semaphore:ty) => {
        #[test]
        fn $name() {
            let semaphore = <$semaphore>::new(1);
            let held = semaphore.acquire().wait().unwrap();
            let kept = semaphore.acquire();
            for _ in 0..1000 {
                drop(semaphore.acquire());
            }
            assert_eq!(semaphore.waiting(), 1, "the dropped acquires still wait");
            assert!(
                format!("{semaphore:?}").contains("waiting: 1"),
                "{semaphore:?}"
            );
            drop(held);
            drop(kept.wait().unwrap());
            assert_eq!((semaphore.available(), semaphore.waiting()), (1, 0));
        }
    };
}
dropped_acquires!(
    a_dropped_waiting_acquire_leaves_the_queue,
    DeferredSemaphore
);
dropped_acquires!(
    a_dropped_waiting_acquire_leaves_the_local_queue,
    deferred::local::DeferredSemaphore
);

/// A guard against a hang (not a timing assertion): aborts the test binary, saying why, if it
/// is still alive after a generous while. Dropping it disarms it.
struct Watchdog {
    _disarm: std::sync::mpsc::Sender<()>,
}

impl Watchdog {
    fn arm(what: &'static str) -> Watchdog {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                rx.recv_timeout(std::time::Duration::from_secs(120))
            {
                eprintln!("{what}: still running after 120 s, deadlocked");
                std::process::abort();
            }
        });
        Watchdog { _disarm: tx }
    }
}

/// Stress: 12 threads, lined up by a barrier each round, acquire, release, cancel and drop
/// acquires of one semaphore at once, in a random mix: a waiter cancelled or dropped as a token
/// is handed to it, a permit released inside its waiter's callback (on the thread running a
/// hand-off loop) or on another thread. No more than `limit` permits are ever out, every
/// acquire not cancelled gets a permit (no hang), and after each round every token is back and
/// nobody waits.
#[test]
fn acquires_released_cancelled_and_dropped_on_many_threads_return_every_token() {
    use std::sync::Barrier;
    const THREADS: usize = 12;
    const ROUNDS: usize = 150;
    const PER_ROUND: usize = 8;
    let _watchdog = Watchdog::arm("semaphore stress");
    for limit in [1, 3] {
        let semaphore = DeferredSemaphore::new(limit);
        let concurrency = Concurrency::default();
        let barrier = Arc::new(Barrier::new(THREADS));
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (semaphore, barrier) = (semaphore.clone(), barrier.clone());
                let concurrency = concurrency.clone();
                thread::spawn(move || {
                    let mut rng = rng::Rng::new((limit * 1000 + t) as u64);
                    let hold = move |permit: Permit| {
                        concurrency.enter();
                        thread::yield_now();
                        concurrency.leave();
                        drop(permit);
                    };
                    for _ in 0..ROUNDS {
                        barrier.wait();
                        let mut later = Vec::new();
                        for _ in 0..PER_ROUND {
                            let acquired = semaphore.acquire();
                            match rng.below(6) {
                                0 => hold(acquired.wait().unwrap()),
                                1 => {
                                    acquired.cancel();
                                    match acquired.wait() {
                                        Ok(permit) => hold(permit),
                                        Err(failure) => assert!(failure.is_cancelled()),
                                    }
                                }
                                2 => drop(acquired),
                                3 => {
                                    // Released inside the callback, on whichever thread hands
                                    // the token over.
                                    let hold = hold.clone();
                                    later.push(acquired.add_callback(move |permit| {
                                        hold(permit);
                                        Ok(())
                                    }));
                                }
                                4 => {
                                    let cancel = acquired.cancel_handle();
                                    later.push(acquired.add_both(|outcome| {
                                        match outcome {
                                            Ok(permit) => drop(permit),
                                            Err(failure) => assert!(failure.is_cancelled()),
                                        }
                                        Ok(())
                                    }));
                                    cancel.cancel();
                                }
                                _ => {
                                    drop(acquired);
                                    let hold = hold.clone();
                                    let semaphore = semaphore.clone();
                                    later.push(semaphore.clone().run(move || {
                                        // A nested acquire, released at once, on the thread
                                        // that runs this.
                                        drop(semaphore.acquire());
                                        let _ = &hold;
                                        Ok::<_, Failure>(())
                                    }));
                                }
                            }
                        }
                        for d in later {
                            d.wait().unwrap();
                        }
                        barrier.wait();
                        // Every thread has let go of its permits; the hand-offs are done.
                        if t == 0 {
                            assert_eq!(semaphore.available(), limit, "a token was lost");
                            assert_eq!(semaphore.waiting(), 0);
                        }
                        barrier.wait();
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
        assert!(concurrency.peak() <= limit);
        assert_eq!(semaphore.available(), limit);
        assert_eq!(semaphore.waiting(), 0);
    }
}
