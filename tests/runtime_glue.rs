//! `defer_to_thread` (std pool, or tokio's blocking pool inside a runtime), a future as a
//! Deferred (`Deferred::from_future`), and tokio's clock for `add_timeout`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc;

use deferred::{Cancelled, Deferred, Failure, Panicked, defer_to_thread};

#[test]
fn defer_to_thread_runs_the_work_on_a_pool_thread() {
    let caller = std::thread::current().id();
    let d: Deferred<(std::thread::ThreadId, Option<String>)> = defer_to_thread(|| {
        let me = std::thread::current();
        Ok((me.id(), me.name().map(str::to_owned)))
    });
    let (worker, name) = d.wait().unwrap();
    assert_ne!(worker, caller);
    assert_eq!(name.as_deref(), Some("deferred-pool"));
}

#[test]
fn defer_to_thread_passes_errors_and_panics_on() {
    let failed: Deferred<u32> = defer_to_thread(|| Err(Failure::msg("disk full")));
    assert_eq!(failed.wait().unwrap_err().to_string(), "disk full");

    let panicked: Deferred<u32> = defer_to_thread(|| panic!("worker blew up"));
    let failure = panicked.wait().unwrap_err();
    assert_eq!(
        failure.downcast_ref::<Panicked>().unwrap().message(),
        "worker blew up"
    );
    assert!(
        failure
            .origin()
            .is_some_and(|at| at.file().ends_with("runtime_glue.rs"))
    );
}

/// Waits for `d` on another thread, at most `secs` seconds: a hang fails the test.
fn within<T: Send + 'static>(secs: u64, d: Deferred<T>) -> Result<T, Failure> {
    let (sent, got) = mpsc::channel();
    std::thread::spawn(move || drop(sent.send(d.wait())));
    got.recv_timeout(std::time::Duration::from_secs(secs))
        .expect("the work never ran")
}

/// A job that waits on a job submitted just after it gets that job run. A worker counts as
/// idle until it wakes and takes the pool's lock again; the jobs submitted in between were all
/// left to that one worker, so the second job waited behind the first for ever.
#[test]
fn a_pool_job_waiting_on_the_job_submitted_after_it_gets_it_run() {
    defer_to_thread::<(), Failure, _>(|| Ok(())).wait().unwrap(); // a worker, soon idle
    for _ in 0..5 {
        std::thread::sleep(std::time::Duration::from_millis(20)); // the workers are idle again
        let (tx, rx) = mpsc::channel::<()>();
        let first: Deferred<()> = defer_to_thread(move || {
            rx.recv_timeout(std::time::Duration::from_secs(10))
                .map_err(|_| Failure::msg("the second job never ran"))
        });
        let second: Deferred<()> = defer_to_thread(move || {
            let _ = tx.send(());
            Ok(())
        });
        first.wait().unwrap();
        second.wait().unwrap();
    }
}

/// A `Drop` of the user's that panics on a pool thread (a result dropped because its Deferred
/// was cancelled) is reported, and the worker goes on. It used to kill the worker, which kept
/// its place in the pool: after `POOL_THREADS` of them, no work ran any more.
#[test]
fn a_panicking_drop_on_a_pool_thread_is_reported_and_the_pool_goes_on() {
    const MARKER: &str = "POOL-DROP-PANICS";
    struct PanicsOnDrop(mpsc::Sender<()>);
    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            let _ = self.0.send(());
            panic!("{MARKER}");
        }
    }
    let reported = Arc::new(AtomicUsize::new(0));
    let count = reported.clone();
    let previous = deferred::set_unhandled_hook(move |failure: &Failure| {
        if failure.to_string().contains(MARKER) {
            count.fetch_add(1, SeqCst);
        } else {
            eprintln!("unhandled: {failure:?}");
        }
    });
    let one_round = || {
        let (dropped, dropping) = mpsc::channel();
        let (release, gate) = mpsc::channel::<()>();
        let d: Deferred<PanicsOnDrop> = defer_to_thread(move || {
            gate.recv().unwrap();
            Ok(PanicsOnDrop(dropped))
        });
        d.cancel();
        release.send(()).unwrap();
        dropping
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the work never ran: no worker left");
    };
    for _ in 0..deferred::POOL_THREADS + 2 {
        one_round();
    }
    assert_eq!(
        within(10, defer_to_thread(|| Ok::<u32, Failure>(7))).unwrap(),
        7
    );
    // The same inside a runtime, on tokio's blocking pool (tokio kept the panic in a
    // `JoinError` nobody reads).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async { one_round() });
    let rounds = deferred::POOL_THREADS + 3;
    for _ in 0..1_000 {
        if reported.load(SeqCst) == rounds {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    deferred::restore_unhandled_hook(previous);
    assert_eq!(reported.load(SeqCst), rounds);
}

/// An error type whose `From<Failure>` panics on a `Panicked` failure.
#[derive(Debug)]
struct RefusesPanics(#[allow(dead_code)] Failure);

impl From<Failure> for RefusesPanics {
    fn from(failure: Failure) -> RefusesPanics {
        assert!(!failure.is::<Panicked>(), "this error type refuses panics");
        RefusesPanics(failure)
    }
}

/// A panic in the error type's `From<Failure>`, as a panic of the work is converted on a pool
/// thread, does not kill the worker: after `POOL_THREADS` of them, work still runs.
#[test]
fn a_panic_converting_the_works_panic_does_not_kill_a_pool_worker() {
    for _ in 0..deferred::POOL_THREADS {
        let d: Deferred<u32, RefusesPanics> = defer_to_thread(|| panic!("the work panics"));
        let _ = within(10, d.map_err(|e: RefusesPanics| e.0));
    }
    assert_eq!(
        within(10, defer_to_thread(|| Ok::<u32, Failure>(7))).unwrap(),
        7
    );
}

#[test]
fn callbacks_added_before_the_work_ends_run_on_the_pool_thread() {
    let (release, gate) = mpsc::channel::<()>();
    let d: Deferred<u32> = defer_to_thread(move || {
        gate.recv().unwrap();
        Ok(1)
    });
    let d = d.add_callback(|x| Ok((x, std::thread::current().name().map(str::to_owned))));
    release.send(()).unwrap();
    let (x, ran_on) = d.wait().unwrap();
    assert_eq!(x, 1);
    assert_eq!(ran_on.as_deref(), Some("deferred-pool"));
}

#[test]
fn cancelling_defer_to_thread_fails_at_once_and_drops_the_late_result() {
    let (release, gate) = mpsc::channel::<()>();
    let finished = Arc::new(AtomicBool::new(false));
    let flag = finished.clone();
    let d: Deferred<u32> = defer_to_thread(move || {
        gate.recv().unwrap();
        flag.store(true, SeqCst);
        Ok(1)
    });
    d.cancel();
    assert!(d.wait().unwrap_err().is::<Cancelled>());
    release.send(()).unwrap(); // the work still runs to the end; its result is ignored
    while !finished.load(SeqCst) {
        std::thread::yield_now();
    }
}

#[test]
fn many_blocking_jobs_all_complete() {
    let done = Arc::new(AtomicUsize::new(0));
    let jobs: Vec<Deferred<usize>> = (0..200)
        .map(|i| {
            let done = done.clone();
            defer_to_thread(move || {
                done.fetch_add(1, SeqCst);
                Ok(i * 2)
            })
        })
        .collect();
    let total: usize = jobs.into_iter().map(|d| d.wait().unwrap()).sum();
    assert_eq!(total, (0..200).map(|i| i * 2).sum());
    assert_eq!(done.load(SeqCst), 200);
}

/// README ("Which thread runs a step"): outside a tokio runtime, `defer_to_thread` runs its
/// work on a pool of at most `POOL_THREADS` std threads: never more jobs at once than that,
/// however many are handed to it.
#[test]
fn the_std_pool_runs_at_most_pool_threads_jobs_at_once() {
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let jobs: Vec<Deferred<()>> = (0..3 * deferred::POOL_THREADS)
        .map(|_| {
            let (running, most) = (running.clone(), most.clone());
            defer_to_thread(move || {
                let now = running.fetch_add(1, SeqCst) + 1;
                most.fetch_max(now, SeqCst);
                // Held a while, so that the jobs overlap (not a timing assertion).
                std::thread::sleep(std::time::Duration::from_millis(20));
                running.fetch_sub(1, SeqCst);
                Ok(())
            })
        })
        .collect();
    for job in jobs {
        job.wait().unwrap();
    }
    let most = most.load(SeqCst);
    assert!(
        (1..=deferred::POOL_THREADS).contains(&most),
        "{most} jobs ran at once"
    );
}

#[cfg(feature = "tokio")]
mod with_tokio {
    use std::time::Duration;

    use deferred::{Clock, TimedOut, TokioClock};

    use super::*;

    /// docs/rules.md: a failure no step raised says where it entered the chain, "the
    /// `defer_to_thread` or `from_future` whose work failed".
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failure_of_from_future_entered_at_from_future() {
        let d: Deferred<u32> = Deferred::from_future(async { Err(Failure::msg("no")) });
        let line = line!() - 1;
        let failure = d.await.unwrap_err();
        let at = failure.entered_at().map(|at| (at.file(), at.line()));
        assert_eq!(at, Some((file!(), line)), "{failure:?}");
        assert_eq!(failure.origin(), None, "no step raised it");
    }

    /// The same for `defer_to_thread` inside a runtime (tokio's blocking pool).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failure_of_defer_to_thread_on_tokios_pool_entered_at_defer_to_thread() {
        let d: Deferred<u32> = defer_to_thread(|| Err(Failure::msg("disk full")));
        let line = line!() - 1;
        let failure = d.await.unwrap_err();
        let at = failure.entered_at().map(|at| (at.file(), at.line()));
        assert_eq!(at, Some((file!(), line)), "{failure:?}");
    }

    /// The handle of a runtime that has shut down (its handle kept, so it can still be entered).
    fn shut_down_runtime() -> tokio::runtime::Handle {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let handle = rt.handle().clone();
        drop(rt);
        handle
    }

    /// `defer_to_thread`: "inside a tokio runtime, a job the runtime's shutdown drops unstarted
    /// fails its Deferred with `NeverFired`" — here a job given to a runtime that has shut down
    /// (its handle still entered), which tokio's blocking pool refuses.
    #[test]
    fn a_job_a_shut_down_runtime_drops_unstarted_fails_with_never_fired() {
        let handle = shut_down_runtime();
        let _entered = handle.enter();
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        let d: Deferred<u32> = defer_to_thread(move || {
            flag.store(true, SeqCst);
            Ok(1)
        });
        let failure = d.wait().unwrap_err();
        assert!(failure.is::<deferred::NeverFired>(), "{failure}");
        assert!(!ran.load(SeqCst));
    }

    /// A value whose `Drop` panics with its message, held by a job or a call tokio drops unrun.
    struct DropPanics(&'static str);

    impl Drop for DropPanics {
        fn drop(&mut self) {
            panic!("{}", self.0);
        }
    }

    /// A `Drop` of the user's that panics when tokio drops a job unstarted (what the work
    /// closure holds) is reported, as a panicking `Drop` of a job's result is: tokio kept the
    /// panic in the `JoinError` of a handle nobody reads, and it was lost without a word. The
    /// Deferred still fails with `NeverFired`. (A shut-down runtime's blocking pool drops the
    /// job at once, on the thread that hands it over: the capture there sees the report.)
    #[test]
    fn a_panicking_drop_of_a_job_tokio_drops_unstarted_is_reported() {
        const MARKER: &str = "UNSTARTED-JOB-DROP-PANICS";
        let handle = shut_down_runtime();
        let _entered = handle.enter();
        let (d, reported) = deferred::capture_unhandled(|| {
            let held = DropPanics(MARKER);
            defer_to_thread::<u32, Failure, _>(move || {
                let _held = &held;
                Ok(1)
            })
        });
        let failure = d.wait().unwrap_err();
        assert!(failure.is::<deferred::NeverFired>(), "{failure}");
        assert_eq!(reported.len(), 1, "{reported:?}");
        assert!(
            reported[0].to_string().contains(MARKER),
            "{:?}",
            reported[0]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn inside_a_runtime_defer_to_thread_uses_tokios_blocking_pool() {
        let d: Deferred<Option<String>> =
            defer_to_thread(|| Ok(std::thread::current().name().map(str::to_owned)));
        let name = d.await.unwrap();
        assert_ne!(name.as_deref(), Some("deferred-pool"));
    }

    /// A cancel from another thread while a worker polls the future: what that poll left the
    /// future awaiting is cancelled when the poll returns (the cancel found the list out), on
    /// the polling thread, as `drive_future` does; the Deferred fails with `Cancelled`.
    #[test]
    fn a_cancel_while_a_worker_polls_the_future_cancels_what_that_poll_left_it_awaiting() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let _entered = runtime.enter();
        let hung = Duration::from_secs(60); // a guard, not a timing assertion
        let (cancelled_tx, cancelled_rx) = mpsc::channel::<()>();
        let (mut awaited, _awaited_r) = Deferred::<u32>::with_canceller(move || {
            let _ = cancelled_tx.send(());
        });
        let (in_poll_tx, in_poll_rx) = mpsc::channel::<()>();
        let (go_on_tx, go_on_rx) = mpsc::channel::<()>();
        let mut first = true;
        let d: Deferred<u32> = Deferred::from_future(std::future::poll_fn(move |cx| {
            let polled = std::pin::Pin::new(&mut awaited).poll(cx);
            if std::mem::take(&mut first) {
                in_poll_tx.send(()).unwrap();
                // The cancel lands meanwhile, on the test's thread.
                go_on_rx.recv_timeout(hung).unwrap();
            }
            polled
        }));
        in_poll_rx.recv_timeout(hung).unwrap();
        d.cancel();
        go_on_tx.send(()).unwrap();
        cancelled_rx
            .recv_timeout(hung)
            .expect("what the future awaits was not cancelled");
        assert!(d.wait().unwrap_err().is_cancelled());
    }

    /// `TokioClock`: "A call not yet due when the runtime shuts down is dropped with its task,
    /// never run: a timeout set on this clock then never fires (the chain's own result can still
    /// come)".
    #[test]
    fn a_timeout_on_a_runtime_that_shuts_down_never_fires_and_the_result_still_comes() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let clock = TokioClock::new(runtime.handle().clone());
        let (d, resolver) = Deferred::<u32>::pending();
        let d = d.add_timeout(Duration::from_secs(3600), &clock);
        let (ran_tx, ran_rx) = mpsc::channel::<()>();
        let _call = clock.call_later(
            Duration::from_secs(3600),
            Box::new(move || ran_tx.send(()).unwrap()),
        );
        drop(runtime);
        assert!(!d.is_fired(), "the timeout fired as the runtime shut down");
        assert!(ran_rx.try_recv().is_err(), "the call ran");
        resolver.callback(7);
        assert_eq!(d.wait().unwrap(), 7);
        // The call was dropped with its task, unrun: its sender is gone.
        assert_eq!(ran_rx.try_recv(), Err(mpsc::TryRecvError::Disconnected));
    }

    /// A call the runtime's shutdown drops unrun: a panic in the `Drop` of what it holds is
    /// reported, as for a job of `defer_to_thread`, not kept in tokio's `JoinError` (lost).
    #[test]
    fn a_panicking_drop_of_a_call_a_shut_down_runtime_drops_unrun_is_reported() {
        const MARKER: &str = "UNRUN-TOKIO-CALL-DROP-PANICS";
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let clock = TokioClock::new(runtime.handle().clone());
        let held = DropPanics(MARKER);
        let _call = clock.call_later(
            Duration::from_secs(3600),
            Box::new(move || {
                let _held = &held;
            }),
        );
        let ((), reported) = deferred::capture_unhandled(|| drop(runtime));
        assert_eq!(reported.len(), 1, "{reported:?}");
        assert!(
            reported[0].to_string().contains(MARKER),
            "{:?}",
            reported[0]
        );
    }

    /// A `LoopingCall` on a `TokioClock` whose runtime shuts down between calls: the runtime
    /// drops the waiting call with its task, and the loop's Deferred fails with `NeverFired`
    /// (it does not wait for ever).
    #[test]
    fn a_looping_call_on_a_runtime_that_shuts_down_fails_with_never_fired() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let looping =
            deferred::LoopingCall::new(TokioClock::new(runtime.handle().clone()), move || {
                counted.fetch_add(1, SeqCst);
                Ok(())
            });
        let done = looping.start(Duration::from_secs(3600), true);
        assert_eq!(calls.load(SeqCst), 1);
        drop(runtime);
        let failure = done.wait().unwrap_err();
        assert!(failure.is::<deferred::NeverFired>(), "{failure:?}");
        assert_eq!(calls.load(SeqCst), 1);
    }

    /// `TokioClock::now` measured tokio's time from the first reading in the process. A paused
    /// runtime's time starts when it is built and moves only when advanced, so a paused runtime
    /// built before that first reading read zero, and kept reading zero after being advanced:
    /// `retry`'s deadline and `LoopingCall`'s schedule, which measure differences of `now`, saw
    /// no time pass.
    #[test]
    fn a_paused_clock_built_before_the_first_reading_still_moves() {
        let paused = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        // Real time goes on; the paused runtime's does not.
        std::thread::sleep(Duration::from_millis(50));
        // A reading of tokio's time on a real-time runtime: the process's first, unless another
        // test of this binary read it before (then this one reads after it, as before the fix).
        let real = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _ = TokioClock::new(real.handle().clone()).now();
        paused.block_on(async {
            let clock = TokioClock::current();
            let before = clock.now();
            tokio::time::advance(Duration::from_millis(100)).await;
            let after = clock.now();
            assert_eq!(
                after.checked_sub(before),
                Some(Duration::from_millis(100)),
                "{before:?} then {after:?}"
            );
        });
    }

    /// A `TokioClock` on a runtime built without timers (no `enable_time`): tokio's `sleep`
    /// panicked inside the call's task, which dropped the call unrun, so the timeout never
    /// fired and the Deferred went on waiting (said only by a panic message on stderr, pointing
    /// inside the crate). `call_later` panics at the call instead, with tokio's message.
    #[test]
    fn a_tokio_clock_on_a_runtime_without_timers_panics_at_the_call() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let clock = TokioClock::new(runtime.handle().clone());
        let ((), reports) = deferred::capture_unhandled(|| {
            let (d, _resolver) = Deferred::<u32>::pending();
            let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                drop(d.add_timeout(Duration::from_secs(1), &clock))
            }))
            .expect_err("add_timeout on a runtime without timers panics at the call");
            let message = payload
                .downcast_ref::<&str>()
                .map(|m| m.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            assert!(message.contains("enable_time"), "{message}");
        });
        assert!(reports.is_empty(), "{reports:?}");
    }

    #[tokio::test]
    async fn a_future_as_a_deferred() {
        let d: Deferred<u32> = Deferred::from_future(async {
            tokio::task::yield_now().await;
            Ok(40)
        });
        assert_eq!(d.add_callback(|x| Ok(x + 2)).await.unwrap(), 42);

        let d: Deferred<u32> = Deferred::from_future(async { Err(Failure::msg("refused")) });
        assert_eq!(d.await.unwrap_err().to_string(), "refused");
    }

    #[tokio::test]
    async fn a_panicking_future_becomes_a_failure() {
        let d: Deferred<u32> = Deferred::from_future(async { panic!("future blew up") });
        let failure = d.await.unwrap_err();
        assert_eq!(
            failure.downcast_ref::<Panicked>().unwrap().message(),
            "future blew up"
        );
    }

    /// Sets its flag when dropped: tells whether the task was aborted.
    struct DropFlag(Arc<AtomicBool>);
    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.store(true, SeqCst);
        }
    }

    #[tokio::test]
    async fn cancelling_the_deferred_aborts_the_task() {
        let dropped = Arc::new(AtomicBool::new(false));
        let guard = DropFlag(dropped.clone());
        let d: Deferred<u32> = Deferred::from_future(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
            Ok(1)
        });
        tokio::task::yield_now().await; // let the task start
        d.cancel();
        assert!(d.await.unwrap_err().is::<Cancelled>());
        for _ in 0..100 {
            if dropped.load(SeqCst) {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(
            dropped.load(SeqCst),
            "the task was aborted and its future dropped"
        );
    }

    /// The abort drops the task's future, with the Resolver it holds, on whichever worker
    /// thread holds it, at times while the cancel's canceller still runs: the Deferred is
    /// cancelled all the same, never `NeverFired` (which blamed the user's `from_future` call),
    /// directly and through a chain waiting on it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancelled_future_is_cancelled_whichever_thread_drops_it() {
        for round in 0..200 {
            let d: Deferred<u32> = Deferred::from_future(async {
                tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                Ok(1)
            });
            let d = if round % 2 == 0 {
                d
            } else {
                Deferred::<u32>::succeed(0).add_callback(move |_| d)
            };
            tokio::task::yield_now().await;
            d.cancel();
            let failure = d.await.unwrap_err();
            assert!(failure.is_cancelled(), "round {round}: {failure}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_times_out_a_slow_deferred_and_spares_a_quick_one() {
        let clock = TokioClock::current();
        let (slow, _slow_resolver) = Deferred::<u32>::pending();
        let slow = slow.add_timeout(Duration::from_secs(5), &clock);
        let failure = slow.await.unwrap_err();
        assert_eq!(
            failure.downcast_ref::<TimedOut>().unwrap().after(),
            Duration::from_secs(5)
        );

        let (quick, quick_resolver) = Deferred::<u32>::pending();
        let quick = quick.add_timeout(Duration::from_secs(5), &clock);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            quick_resolver.callback(7);
        });
        assert_eq!(quick.await.unwrap(), 7);
    }

    /// A cancel that lands during a `from_future` task's poll leaves the cancel of what the
    /// poll left the future awaiting to the poll, when it returns: that cancel has no place,
    /// even when the poll runs inside another chain's canceller (here, a user's cancel of
    /// `outer`, whose canceller fires what the future awaits and runs the runtime).
    #[test]
    fn a_cancel_during_a_from_future_poll_inside_a_canceller_takes_no_outer_place() {
        use std::panic::Location;
        use std::sync::Mutex;

        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let seen = Arc::new(Mutex::new(Vec::<Option<&'static Location<'static>>>::new()));
        let (first, first_resolver) = Deferred::<(), Failure>::pending();
        let (next, _next_resolver) = Deferred::<(), Failure>::pending();
        let next = next.add_errback({
            let seen = seen.clone();
            move |failure: Failure| {
                seen.lock().unwrap().push(failure.entered_at());
                Err::<(), _>(failure)
            }
        });
        let own = Arc::new(Mutex::new(None::<deferred::CancelHandle>));
        let d = {
            let _entered = runtime.enter();
            Deferred::<(), Failure>::from_future({
                let own = own.clone();
                async move {
                    first.await?;
                    // Cancels its own Deferred, from inside its poll.
                    let handle = own.lock().unwrap().take();
                    if let Some(handle) = handle {
                        handle.cancel();
                    }
                    next.await
                }
            })
        };
        *own.lock().unwrap() = Some(d.cancel_handle());
        runtime.block_on(tokio::task::yield_now()); // the task's first poll: it awaits `first`
        let (outer, resolver) = Deferred::<u32>::pending();
        resolver.set_canceller(move || {
            first_resolver.callback(());
            runtime.block_on(tokio::task::yield_now());
        });
        outer.cancel();
        assert!(outer.wait().unwrap_err().is_cancelled());
        assert!(d.wait().unwrap_err().is_cancelled());
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0], None, "the outer cancel's place leaked");
        drop(resolver);
    }
}
