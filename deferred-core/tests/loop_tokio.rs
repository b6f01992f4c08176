//! The tokio integration, on a real current-thread runtime and a `LocalSet`: results from other
//! threads come home to the LocalSet, tokio's clock times local chains, and local chains hold
//! `Rc` state. Timing tests use tokio's paused clock, so they assert outcomes, not durations.
#![cfg(feature = "tokio")]

mod support;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::{Arc, Barrier};
use std::thread::{self, ThreadId};
use std::time::Duration;

use deferred_core::{
    Deferred, Failure, Inbox, LocalClock, LocalDeferred, TimedOut, TokioLocalClock,
};
use tokio::runtime::{Builder, Runtime};
use tokio::task::LocalSet;

fn runtime(paused: bool) -> Runtime {
    Builder::new_current_thread()
        .enable_all()
        .start_paused(paused)
        .build()
        .unwrap()
}

#[test]
fn results_from_other_threads_come_home_to_the_local_set() {
    let rt = runtime(false);
    LocalSet::new().block_on(&rt, async {
        let inbox = Inbox::on_tokio_local_set();
        let home = thread::current().id();
        let seen: Rc<RefCell<Vec<(u32, ThreadId)>>> = Rc::default();

        // HomeResolvers fired from 8 threads at once.
        let barrier = Arc::new(Barrier::new(8));
        let mut chains = Vec::new();
        for n in 0..8u32 {
            let (d, resolver) = inbox.pending::<u32, Failure>();
            let log = seen.clone();
            chains.push(d.add_callback(move |v| {
                log.borrow_mut().push((v, thread::current().id()));
                Ok(())
            }));
            let barrier = barrier.clone();
            thread::spawn(move || {
                barrier.wait();
                resolver.callback(n);
            });
        }
        for chain in chains {
            chain.await.unwrap();
        }
        let mut values: Vec<u32> = seen.borrow().iter().map(|(v, _)| *v).collect();
        values.sort();
        assert_eq!(values, (0..8).collect::<Vec<_>>());
        assert!(seen.borrow().iter().all(|(_, id)| *id == home));

        // Blocking work on tokio's pool, and a Send task's Deferred adopted.
        let worked = inbox
            .defer_to_thread(|| Ok::<_, Failure>(thread::current().id()))
            .add_callback(move |worker| Ok((worker, thread::current().id())));
        let (worker, step) = worked.await.unwrap();
        assert_ne!(worker, home);
        assert_eq!(step, home);

        let task: Deferred<u32> = Deferred::from_future(async { Ok(41) });
        let adopted = inbox
            .adopt(task)
            .add_callback(move |n| Ok((n + 1, thread::current().id())));
        assert_eq!(adopted.await.unwrap(), (42, home));

        // The loop stops when the inbox is dropped: later posts are refused.
        let handle = inbox.handle();
        drop(inbox);
        assert!(handle.is_stopped());
        assert!(handle.post(|| {}).is_err());
    });
}

/// Waits, on the `LocalSet`, until every poster's work has run there: looking every 1 ms, not
/// spinning (the posters get the cores: one, under memcheck). A guard against a hang (a lost
/// wake-up), not a timing assertion: 120 s.
async fn drained(posters: &support::posters::Posters) {
    let all_ran = async {
        while !posters.done() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(120), all_ran)
        .await
        .expect("the inbox's drain was woken for every post");
}

/// 8 threads post at once, each 1,000 results and 1,000 plain works: first while the
/// `LocalSet` drains the inbox (its task woken by a `Notify` each post): everything comes home,
/// on this thread, in each poster's order. Then again, with the work piled up in the inbox
/// before the drain runs. A lost wake-up would leave work queued and the drain asleep: the bound
/// fails the test instead of hanging it.
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
    let rt = runtime(false);
    LocalSet::new().block_on(&rt, async {
        let inbox = Inbox::on_tokio_local_set();
        for pile_up in [false, true] {
            let mut posters = support::posters::Posters::start(&inbox, threads, each);
            if pile_up {
                posters.wait_posted();
            }
            drained(&posters).await;
            posters.check();
        }
    });
}

/// 32 threads post at once while the `LocalSet` is busy with other work: four tasks that yield
/// and go again until told to stop, and a timer that ticks every millisecond. Every result and
/// post still comes home, on this thread, in each poster's order; and the other work was not
/// stopped by the drain (it goes on, and stops when told).
#[test]
fn thirty_two_threads_posting_to_a_busy_loop_all_come_home_in_each_posters_order() {
    let rt = runtime(false);
    LocalSet::new().block_on(&rt, async {
        let inbox = Inbox::on_tokio_local_set();
        let stop = Rc::new(Cell::new(false));
        let (spins, ticks) = (Rc::new(Cell::new(0_u64)), Rc::new(Cell::new(0_u64)));
        let mut busy: Vec<_> = (0..4)
            .map(|_| {
                let (stop, spins) = (stop.clone(), spins.clone());
                tokio::task::spawn_local(async move {
                    while !stop.get() {
                        spins.set(spins.get() + 1);
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        busy.push({
            let (stop, ticks) = (stop.clone(), ticks.clone());
            tokio::task::spawn_local(async move {
                let mut every = tokio::time::interval(Duration::from_millis(1));
                while !stop.get() {
                    every.tick().await;
                    ticks.set(ticks.get() + 1);
                }
            })
        });

        let posters = support::posters::Posters::start(&inbox, 32, 200);
        drained(&posters).await;
        posters.check();

        // The other work goes on after the drains: one more spin and tick each, then it stops.
        let (spun, ticked) = (spins.get(), ticks.get());
        let going_on = async {
            while spins.get() == spun || ticks.get() == ticked {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(60), going_on)
            .await
            .expect("the other tasks still run");
        stop.set(true);
        for task in busy {
            task.await.expect("a busy task ends when told");
        }
    });
}

#[test]
fn an_inbox_outliving_its_local_set_is_drained_by_the_next_one_it_is_given_to() {
    let rt = runtime(false);
    let (inbox, waiting) = LocalSet::new().block_on(&rt, async {
        let inbox = Inbox::on_tokio_local_set();
        let (reply, resolver) = inbox.pending::<u32, Failure>();
        std::thread::spawn(move || resolver.callback(41));
        (inbox, reply)
    });
    // That LocalSet is gone, and its drain with it: the reply waits in the inbox.
    let reply = waiting.add_callback(|n| Ok(n + 1));
    LocalSet::new().block_on(&rt, async {
        let again = Inbox::on_tokio_local_set(); // this thread's inbox, drained here
        assert_eq!(format!("{again:?}"), format!("{inbox:?}"));
        // (A timeout, so that a regression fails here instead of hanging.)
        let within = |d| tokio::time::timeout(Duration::from_secs(30), d);
        assert_eq!(within(reply).await.unwrap().unwrap(), 42);
        let later = inbox.defer_to_thread(|| Ok::<u32, Failure>(7));
        assert_eq!(within(later).await.unwrap().unwrap(), 7);
    });
    // While a LocalSet drains it, a second one is refused.
    let refused = LocalSet::new().block_on(&rt, async {
        let _first = Inbox::on_tokio_local_set();
        std::panic::catch_unwind(|| Inbox::on_tokio_local_set()).map(drop)
    });
    assert!(refused.is_err());
}

#[test]
fn add_timeout_on_the_tokio_local_clock_times_out_and_lets_a_result_that_comes_first_through() {
    let rt = runtime(true);
    LocalSet::new().block_on(&rt, async {
        let clock = TokioLocalClock::new();

        let (silent, _resolver) = LocalDeferred::<u32>::pending();
        let failure = silent
            .add_timeout(Duration::from_secs(5), &clock)
            .await
            .unwrap_err();
        assert!(failure.is::<TimedOut>(), "{failure}");

        let quick: LocalDeferred<u32> = LocalDeferred::from_future(async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok(1)
        });
        assert_eq!(
            quick
                .add_timeout(Duration::from_secs(5), &clock)
                .await
                .unwrap(),
            1
        );

        // A cancelled call never runs, even once its time has passed.
        let rang = Rc::new(Cell::new(false));
        let flag = rang.clone();
        let call = clock.call_later(Duration::from_secs(1), Box::new(move || flag.set(true)));
        call.cancel();
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(!rang.get());
    });
}

/// `TokioLocalClock` on a runtime built without timers (no `enable_time`): tokio's `sleep`
/// panicked inside the call's task, which dropped the call unrun: the timeout never fired. It
/// panics at the call instead, with tokio's message.
#[test]
fn the_tokio_local_clock_on_a_runtime_without_timers_panics_at_the_call() {
    let rt = Builder::new_current_thread().build().unwrap();
    let ((), reports) = deferred_core::capture_unhandled(|| {
        LocalSet::new().block_on(&rt, async {
            let (d, _resolver) = LocalDeferred::<u32>::pending();
            let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                drop(d.add_timeout(Duration::from_secs(1), &TokioLocalClock::new()))
            }))
            .expect_err("add_timeout on a runtime without timers panics at the call");
            let message = support::panic_text(&*payload);
            assert!(message.contains("enable_time"), "{message}");
        })
    });
    assert!(reports.is_empty(), "{reports:?}");
}

#[test]
fn a_local_chain_of_tokio_futures_touches_rc_state_and_cancelling_aborts_its_task() {
    let rt = runtime(true);
    LocalSet::new().block_on(&rt, async {
        let log: Rc<RefCell<Vec<String>>> = Rc::default();
        let first = log.clone();
        let second = log.clone();
        let d: LocalDeferred<u32> = LocalDeferred::from_future({
            let log = log.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                log.borrow_mut().push("fetched".into());
                Ok(20)
            }
        });
        let d = d
            .add_callback(move |n| {
                first.borrow_mut().push(format!("got {n}"));
                // A step that waits on another local tokio future.
                LocalDeferred::from_future(async move {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    Ok(n + 1)
                })
            })
            .add_callback(move |n| {
                second.borrow_mut().push(format!("then {n}"));
                Ok(n * 2)
            });
        assert_eq!(d.await.unwrap(), 42);
        assert_eq!(*log.borrow(), ["fetched", "got 20", "then 21"]);

        // Cancelling aborts the task: its future is dropped, never finished.
        let finished = Rc::new(Cell::new(false));
        let dropped = Rc::new(Cell::new(false));
        struct OnDrop(Rc<Cell<bool>>);
        impl Drop for OnDrop {
            fn drop(&mut self) {
                self.0.set(true);
            }
        }
        let (done, guard) = (finished.clone(), OnDrop(dropped.clone()));
        let slow: LocalDeferred<u32> = LocalDeferred::from_future(async move {
            let _guard = guard;
            tokio::time::sleep(Duration::from_secs(60)).await;
            done.set(true);
            Ok(0)
        });
        tokio::task::yield_now().await; // the task starts
        slow.cancel();
        assert!(slow.await.unwrap_err().is_cancelled());
        tokio::time::sleep(Duration::from_secs(120)).await;
        assert!(dropped.get());
        assert!(!finished.get());
    });
}

#[test]
fn a_panic_in_a_local_tokio_future_fails_its_deferred() {
    let rt = runtime(false);
    LocalSet::new().block_on(&rt, async {
        let d: LocalDeferred<u32> =
            LocalDeferred::from_future(async { panic!("tokio-local-boom") });
        let failure = d.await.unwrap_err();
        let panic = failure
            .downcast_ref::<deferred_core::Panicked>()
            .expect("a panic");
        assert_eq!(panic.message(), "tokio-local-boom");
    });
}

/// A future that is done, and panics when dropped.
struct ReadyThenPanicsOnDrop;

impl std::future::Future for ReadyThenPanicsOnDrop {
    type Output = Result<u32, Failure>;
    fn poll(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::task::Poll::Ready(Ok(1))
    }
}

impl Drop for ReadyThenPanicsOnDrop {
    fn drop(&mut self) {
        if !thread::panicking() {
            panic!("the future's drop panics");
        }
    }
}

/// A future's `Drop` that panics once it is done is the Deferred's failure, of both kinds (it
/// unwound the task, and the Deferred failed with `NeverFired`, "its Resolver was dropped").
#[test]
fn a_panic_in_a_tokio_futures_drop_fails_its_deferred() {
    let panicked = |failure: Failure| {
        let panic = failure
            .downcast_ref::<deferred_core::Panicked>()
            .expect("a panic");
        assert_eq!(panic.message(), "the future's drop panics");
    };
    let rt = runtime(false);
    LocalSet::new().block_on(&rt, async {
        let shared: Deferred<u32> = Deferred::from_future(ReadyThenPanicsOnDrop);
        panicked(shared.await.unwrap_err());
        let local: LocalDeferred<u32> = LocalDeferred::from_future(ReadyThenPanicsOnDrop);
        panicked(local.await.unwrap_err());
    });
}

/// A future that stays pending, and panics when dropped.
struct PendingPanicsOnDrop;

impl std::future::Future for PendingPanicsOnDrop {
    type Output = Result<u32, Failure>;
    fn poll(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::task::Poll::Pending
    }
}

impl Drop for PendingPanicsOnDrop {
    fn drop(&mut self) {
        if !thread::panicking() {
            panic!("the cancelled future's drop panics");
        }
    }
}

/// Cancelling a `from_future` Deferred aborts its task, which drops the future: a panic in its
/// `Drop` is reported (tokio kept it in a `JoinError` nobody reads), of both kinds.
#[test]
fn a_panic_in_a_cancelled_tokio_futures_drop_is_reported() {
    let rt = runtime(false);
    let (results, reported) = deferred_core::capture_unhandled(|| {
        LocalSet::new().block_on(&rt, async {
            let shared: Deferred<u32> = Deferred::from_future(PendingPanicsOnDrop);
            let local: LocalDeferred<u32> = LocalDeferred::from_future(PendingPanicsOnDrop);
            tokio::task::yield_now().await; // both polled once
            shared.cancel();
            local.cancel();
            for _ in 0..3 {
                tokio::task::yield_now().await; // the aborts drop them
            }
            (shared.await.is_err(), local.await.is_err())
        })
    });
    assert_eq!(results, (true, true));
    let reported: Vec<String> = reported.iter().map(|f| format!("{f:?}")).collect();
    assert_eq!(reported.len(), 2, "{reported:?}");
    assert!(
        reported
            .iter()
            .all(|f| f.contains("the cancelled future's drop panics")),
        "{reported:?}"
    );
}

/// Cancelling a `from_future` Deferred cancels the Deferreds its future awaits (Twisted's
/// cascade into what a coroutine awaits: their cancellers run, once) before it aborts the task,
/// of both kinds; the task's aborted future is dropped, and the Deferred fails with `Cancelled`.
/// The cancellations it drops unread, which the cancel caused, are not reported.
#[test]
fn cancelling_a_tokio_future_cancels_what_it_awaits() {
    let rt = runtime(false);
    let ((), reported) = deferred_core::capture_unhandled(|| {
        cancel_tokio_futures_awaiting_deferreds(&rt);
    });
    assert!(reported.is_empty(), "{reported:?}");
}

fn cancel_tokio_futures_awaiting_deferreds(rt: &Runtime) {
    LocalSet::new().block_on(rt, async {
        let shared_cancels = Arc::new(std::sync::Mutex::new(0));
        let counted = shared_cancels.clone();
        let (awaited, _awaited_r) = Deferred::<u32>::with_canceller(move || {
            *counted.lock().unwrap() += 1;
        });
        let shared: Deferred<u32> = Deferred::from_future(async move { Ok(awaited.await? + 1) });
        let local_cancels = Rc::new(Cell::new(0));
        let counted = local_cancels.clone();
        let (local_awaited, _local_r) = LocalDeferred::<u32>::with_canceller(move || {
            counted.set(counted.get() + 1);
        });
        let local: LocalDeferred<u32> =
            LocalDeferred::from_future(async move { Ok(local_awaited.await? + 1) });
        tokio::task::yield_now().await; // both polled once: each awaits its Deferred
        shared.cancel();
        local.cancel();
        assert_eq!(*shared_cancels.lock().unwrap(), 1);
        assert_eq!(local_cancels.get(), 1);
        assert!(shared.await.unwrap_err().is_cancelled());
        assert!(local.await.unwrap_err().is_cancelled());
        for _ in 0..3 {
            tokio::task::yield_now().await; // the aborts drop the futures
        }
    });
}

/// Outside a runtime, the tokio helpers that need one (`tokio::spawn`'s, a runtime's clock)
/// panic at the caller's line saying where to call them (tokio's own panic would point inside
/// tokio), and `from_future` panics before it makes a Resolver, so nothing is reported as never
/// fired. (The `LocalSet` helpers need a `LocalSet`, not a runtime: one polled by another
/// executor will do, so they are left to `spawn_local`'s own check.)
#[test]
fn the_tokio_helpers_outside_a_runtime_say_where_to_call_them() {
    fn panic_of(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
        let payload = std::panic::catch_unwind(f).expect_err("it panics");
        payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default()
    }
    let ((), reports) = deferred_core::capture_unhandled(|| {
        let clock = panic_of(|| drop(deferred_core::TokioClock::current()));
        assert!(
            clock.starts_with("`TokioClock::current()` needs a tokio runtime"),
            "{clock}"
        );
        assert!(
            clock.contains("TokioClock::new(runtime.handle().clone())"),
            "{clock}"
        );
        let spawned = panic_of(|| drop(Deferred::<u32>::from_future(async { Ok(1) })));
        assert!(spawned.contains("runtime.enter()"), "{spawned}");
        // In a runtime, outside a `LocalSet`: `spawn_local`'s panic, before any Resolver.
        let rt = runtime(false);
        let _entered = rt.enter();
        let local =
            std::panic::catch_unwind(|| drop(LocalDeferred::<u32>::from_future(async { Ok(1) })));
        assert!(local.is_err());
    });
    assert!(reports.is_empty(), "nothing reported: {reports:?}");
}

/// The child side of `a_wait_that_blocks_a_current_thread_runtime_says_so`: on the thread of a
/// current-thread runtime, `wait` on a Deferred that another thread fires only after the
/// warning's delay. Does nothing when run directly.
#[test]
fn wait_on_a_current_thread_runtime_in_child() {
    if std::env::var_os("DEFERRED_WAIT_PROBE").is_none() {
        return;
    }
    runtime(false).block_on(async {
        let (d, resolver) = deferred_core::Deferred::<u32>::pending();
        // Fired by a plain thread, after the warning: so the wait does return.
        let firing = thread::spawn(move || {
            thread::sleep(Duration::from_millis(2_500));
            resolver.callback(7);
        });
        assert_eq!(d.wait().unwrap(), 7);
        firing.join().unwrap();
    });
    // The local kind: a `LocalDeferred` waited on in a `LocalSet`, fired through the inbox from
    // a plain thread after the warning's delay.
    let local = LocalSet::new();
    local.block_on(&runtime(false), async {
        let inbox = Inbox::on_tokio_local_set();
        let (d, home) = inbox.pending::<u32, Failure>();
        let firing = thread::spawn(move || {
            thread::sleep(Duration::from_millis(2_500));
            home.callback(9);
        });
        assert_eq!(d.wait().unwrap(), 9);
        firing.join().unwrap();
    });
    // On a thread of the runtime's blocking pool, a wait is no mistake: nothing is said.
    runtime(false).block_on(async {
        let (d, resolver) = deferred_core::Deferred::<u32>::pending();
        let firing = thread::spawn(move || {
            thread::sleep(Duration::from_millis(2_500));
            resolver.callback(8);
        });
        let waited = tokio::task::spawn_blocking(move || d.wait().unwrap());
        assert_eq!(waited.await.unwrap(), 8);
        firing.join().unwrap();
    });
}

/// `wait` on the thread of a current-thread runtime, where a Deferred a task of that runtime
/// would fire never fires, says so on stderr once it has blocked a while (and goes on
/// waiting), for a `Deferred` and for a `LocalDeferred` in a `LocalSet`: run in a child
/// process, whose stderr is read. The same wait on the runtime's blocking pool says nothing.
#[test]
fn a_wait_that_blocks_a_current_thread_runtime_says_so() {
    let stderr = support::stderr_of_child(
        "wait_on_a_current_thread_runtime_in_child",
        "DEFERRED_WAIT_PROBE",
    );
    let said: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("on the thread of a current-thread tokio runtime"))
        .collect();
    assert_eq!(
        said.len(),
        2,
        "said once for each kind's wait on the runtime's thread, not on its pool:\n{stderr}"
    );
    for line in said {
        assert!(
            line.contains(&format!("`wait` at {}:", file!())),
            "{stderr}"
        );
        assert!(line.contains("`.await` the Deferred instead"), "{stderr}");
    }
}

/// The same waits with the child's stderr a pipe whose reader is gone (`prog 2>&1 | head`):
/// the warning is lost, and `wait` neither panics nor aborts, but returns its value.
#[test]
fn a_wait_whose_warning_cannot_be_written_still_returns() {
    let exe = std::env::current_exe().expect("the test binary");
    let mut child = std::process::Command::new(exe)
        .args([
            "--exact",
            "wait_on_a_current_thread_runtime_in_child",
            "--nocapture",
        ])
        .env("DEFERRED_WAIT_PROBE", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the child runs");
    drop(child.stderr.take()); // the reader is gone before the child writes
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().expect("piped"), &mut stdout)
        .expect("the child's stdout");
    let status = child.wait().expect("the child ends");
    assert!(status.success(), "the child failed: {status}\n{stdout}");
    // The child ran the waits: its one test, not a filter that matched none.
    assert!(stdout.contains("1 passed"), "{stdout}");
}

/// The same for a `from_future` Deferred cancelled before its task's first poll.
#[test]
fn a_panic_in_the_drop_of_a_tokio_future_cancelled_before_its_first_poll_is_reported() {
    let rt = runtime(false);
    let (results, reported) = deferred_core::capture_unhandled(|| {
        LocalSet::new().block_on(&rt, async {
            let shared: Deferred<u32> = Deferred::from_future(PendingPanicsOnDrop);
            let local: LocalDeferred<u32> = LocalDeferred::from_future(PendingPanicsOnDrop);
            shared.cancel(); // neither was polled
            local.cancel();
            for _ in 0..3 {
                tokio::task::yield_now().await;
            }
            (shared.await.is_err(), local.await.is_err())
        })
    });
    assert_eq!(results, (true, true));
    assert_eq!(reported.len(), 2, "{reported:?}");
}

/// A `from_future` Deferred cancelled from inside its future's own poll (through a handle: a
/// sibling's, a timeout's), on the thread that polls it: what that poll left the future awaiting
/// is cancelled when the poll returns, as `drive_future` does (the cancel found the list out),
/// of both kinds; nothing is reported.
#[test]
fn a_tokio_future_cancelled_from_inside_its_own_poll_cancels_what_it_awaits() {
    let rt = runtime(false);
    let ((), reported) = deferred_core::capture_unhandled(|| {
        LocalSet::new().block_on(&rt, async {
            let shared_cancels = Arc::new(std::sync::Mutex::new(0));
            let counted = shared_cancels.clone();
            let (mut awaited, _awaited_r) = Deferred::<u32>::with_canceller(move || {
                *counted.lock().unwrap() += 1;
            });
            let own: Arc<std::sync::Mutex<Option<deferred_core::CancelHandle>>> = Arc::default();
            let handle = own.clone();
            let shared: Deferred<u32> = Deferred::from_future(std::future::poll_fn(move |cx| {
                let polled = std::pin::Pin::new(&mut awaited).poll(cx);
                if let Some(own) = handle.lock().unwrap().take() {
                    own.cancel();
                }
                polled
            }));
            *own.lock().unwrap() = Some(shared.cancel_handle());

            let local_cancels = Rc::new(Cell::new(0));
            let counted = local_cancels.clone();
            let (mut local_awaited, _local_r) = LocalDeferred::<u32>::with_canceller(move || {
                counted.set(counted.get() + 1);
            });
            let own: Rc<RefCell<Option<deferred_core::local::CancelHandle>>> = Rc::default();
            let handle = own.clone();
            let local: LocalDeferred<u32> =
                LocalDeferred::from_future(std::future::poll_fn(move |cx| {
                    let polled = std::pin::Pin::new(&mut local_awaited).poll(cx);
                    if let Some(own) = handle.borrow_mut().take() {
                        own.cancel();
                    }
                    polled
                }));
            *own.borrow_mut() = Some(local.cancel_handle());

            tokio::task::yield_now().await; // both polled once: each cancels itself
            for _ in 0..3 {
                tokio::task::yield_now().await; // the aborts drop the futures
            }
            assert!(shared.await.unwrap_err().is_cancelled());
            assert!(local.await.unwrap_err().is_cancelled());
            assert_eq!(*shared_cancels.lock().unwrap(), 1);
            assert_eq!(local_cancels.get(), 1);
        });
    });
    assert!(reported.is_empty(), "{reported:?}");
}

/// docs/rules.md: a failure no step raised says where it entered the chain, "the ...
/// `from_future` whose work failed": the local kind's `from_future` too.
#[test]
fn a_failure_of_local_from_future_entered_at_from_future() {
    let rt = runtime(false);
    LocalSet::new().block_on(&rt, async {
        let d: LocalDeferred<u32> = LocalDeferred::from_future(async { Err(Failure::msg("no")) });
        let line = line!() - 1;
        let failure = d.await.unwrap_err();
        let at = failure.entered_at().map(|at| (at.file(), at.line()));
        assert_eq!(at, Some((file!(), line)), "{failure:?}");
    });
}

/// `Inbox::on_tokio_local_set` panics "if this thread has an inbox already that a live
/// `LocalSet` drains, or that `Inbox::new` made (as `Inbox::new` does)".
#[test]
fn on_tokio_local_set_panics_where_the_thread_has_an_inbox_already() {
    thread::spawn(|| {
        let rt = runtime(false);
        LocalSet::new().block_on(&rt, async {
            let own = Inbox::new(|| {});
            let refused = std::panic::catch_unwind(|| drop(Inbox::on_tokio_local_set()));
            assert!(refused.is_err(), "took the inbox `Inbox::new` made");
            drop(own);
            let drained = Inbox::on_tokio_local_set();
            let again = std::panic::catch_unwind(|| drop(Inbox::on_tokio_local_set()));
            assert!(
                again.is_err(),
                "a second drain of the inbox a live LocalSet drains"
            );
            drop(drained);
        });
    })
    .join()
    .unwrap();
}

/// `Inbox::on_tokio_local_set`: "The task holds the inbox weakly: the loop stops when the last
/// clone of the returned `Inbox` is dropped (the task then ends)". A `LocalSet` awaited as a
/// future completes once all its tasks have: it would not, were the drain task left running.
#[test]
fn the_drain_task_ends_when_the_last_inbox_is_dropped() {
    let (done, finished) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let rt = runtime(false);
        let local = LocalSet::new();
        let stopped = Rc::new(Cell::new(false));
        let seen = stopped.clone();
        local.spawn_local(async move {
            let inbox = Inbox::on_tokio_local_set();
            let (d, resolver) = inbox.pending::<u32, Failure>();
            thread::spawn(move || resolver.callback(1)).join().unwrap();
            assert_eq!(d.await.unwrap(), 1); // the drain ran it
            let handle = inbox.handle();
            drop(inbox);
            seen.set(handle.is_stopped());
        });
        rt.block_on(local);
        done.send(stopped.get()).unwrap();
    });
    let stopped = finished
        .recv_timeout(Duration::from_secs(60))
        .expect("the LocalSet never completed: its drain task did not end");
    assert!(stopped);
}

/// A call that the `LocalSet`'s drop drops unrun: a panic in the `Drop` of what it holds is
/// reported, not kept in tokio's `JoinError` (lost).
#[test]
fn a_panicking_drop_of_a_tokio_local_call_dropped_unrun_is_reported() {
    const MARKER: &str = "UNRUN-LOCAL-CALL-DROP-PANICS";
    struct PanicsOnDrop;
    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            panic!("{MARKER}");
        }
    }
    let rt = runtime(true);
    let local = LocalSet::new();
    let held = PanicsOnDrop;
    let _call = local.block_on(&rt, async move {
        TokioLocalClock::new().call_later(
            Duration::from_secs(3600),
            Box::new(move || {
                let _held = &held;
            }),
        )
    });
    let ((), reported) = deferred_core::capture_unhandled(|| drop(local));
    assert_eq!(reported.len(), 1, "{reported:?}");
    assert!(
        reported[0].to_string().contains(MARKER),
        "{:?}",
        reported[0]
    );
}
