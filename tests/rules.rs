//! The rules of a Deferred (docs/rules.md, "The rules of a Deferred"), for the `Send` kind,
//! [`Deferred`]: the tests both kinds share are written once in `tests/rules/common.rs` (included
//! here and by `tests/rules_local.rs`, which runs them against `LocalDeferred`); the tests about
//! threads, which only this kind can be used from, follow it.

use std::collections::HashSet;
use std::sync::Barrier;
use std::sync::atomic::AtomicBool;
use std::thread::ThreadId;

/// The kind under test, by the names the common body uses.
mod kind {
    pub use deferred::{CancelHandle, Deferred, Resolver, Sendable as Value, gather_results};
}

include!("rules/common.rs");

// #############################################################################################
// The `Send` kind only: threads.
//
// A `LocalDeferred` and its `LocalResolver` are not `Send`: they cannot be fired, waited on,
// awaited or cancelled from another thread, nor raced from several. So the tests below, about
// which thread runs the steps (rule 2), what happens when another thread fires, drops, waits or
// cancels, and races between threads (rule 8), do not apply to the local kind and are not in
// the common body. (A local chain's results come home from other threads through an `Inbox`,
// tested elsewhere.)
// #############################################################################################

// =============================================================================================
// Rule 2: callbacks added to a fired Deferred run at once, on the adding thread; otherwise on
// the thread that fires, when it fires.
// =============================================================================================

fn thread_recorder() -> (
    Arc<Mutex<Vec<ThreadId>>>,
    impl Fn() + Clone + Send + 'static,
) {
    let ids = Arc::new(Mutex::new(Vec::new()));
    let i = ids.clone();
    (ids, move || i.lock().unwrap().push(thread::current().id()))
}

#[test]
fn rule2_fired_runs_at_once_on_adding_thread() {
    let (d, r) = Deferred::<u32>::pending();
    r.callback(1); // fired here, on the test thread
    let (ids, record) = thread_recorder();
    let adder = thread::spawn(move || {
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        let d = d.add_callback(move |v| {
            record();
            flag.store(true, SeqCst);
            Ok(v)
        });
        assert!(ran.load(SeqCst), "ran before add_callback returned");
        (thread::current().id(), d.wait().unwrap())
    });
    let (adder_id, value) = adder.join().unwrap();
    assert_eq!(value, 1);
    assert_eq!(*ids.lock().unwrap(), [adder_id]);
}

#[test]
fn rule2_succeed_runs_at_once_on_adding_thread() {
    let (ids, record) = thread_recorder();
    let adder = thread::spawn(move || {
        let d = Deferred::<u32>::succeed(1).add_callback(move |v| {
            record();
            Ok(v)
        });
        let here = thread::current().id();
        drop(d.wait());
        here
    });
    let adder_id = adder.join().unwrap();
    assert_eq!(*ids.lock().unwrap(), [adder_id]);
}

#[test]
fn rule2_pending_runs_on_firing_thread_when_it_fires() {
    let (ids, record) = thread_recorder();
    let (d, r) = Deferred::<u32>::pending();
    let (rec1, rec2) = (record.clone(), record);
    let d = d
        .add_callback(move |v| {
            rec1();
            Ok(v + 1)
        })
        .add_errback(Err)
        .add_callback(move |v| {
            rec2();
            Ok(v + 1)
        });
    assert!(
        ids.lock().unwrap().is_empty(),
        "nothing runs before the fire"
    );
    let (ids2, firer_id) = (ids.clone(), Arc::new(Mutex::new(None)));
    let fid = firer_id.clone();
    thread::spawn(move || {
        *fid.lock().unwrap() = Some(thread::current().id());
        r.callback(1);
        // The callbacks ran during `callback`, before it returned.
        assert_eq!(ids2.lock().unwrap().len(), 2);
    })
    .join()
    .unwrap();
    let firer = firer_id.lock().unwrap().unwrap();
    assert_eq!(*ids.lock().unwrap(), [firer, firer]);
    assert_eq!(d.wait().unwrap(), 3);
}

#[test]
fn rule2_fired_elsewhere_then_added_runs_on_adding_thread() {
    let (d, r) = Deferred::<u32>::pending();
    let d = d.add_callback(|v| Ok(v * 2)); // pending link
    thread::spawn(move || r.callback(21)).join().unwrap(); // fired on another thread
    let (ids, record) = thread_recorder();
    let d = d.add_callback(move |v| {
        record();
        Ok(v)
    });
    assert_eq!(*ids.lock().unwrap(), [thread::current().id()]);
    assert_eq!(d.wait().unwrap(), 42);
}

#[test]
fn rule2_inner_deferred_fired_elsewhere_continues_on_its_firing_thread() {
    let (ids, record) = thread_recorder();
    let (inner, inner_r) = Deferred::<u32>::pending();
    let d = Deferred::<u32>::succeed(1)
        .add_callback(move |_| inner)
        .add_callback(move |v| {
            record();
            Ok(v)
        });
    assert!(ids.lock().unwrap().is_empty());
    let firer = thread::spawn(move || {
        inner_r.callback(7);
        thread::current().id()
    })
    .join()
    .unwrap();
    assert_eq!(*ids.lock().unwrap(), [firer]);
    assert_eq!(d.wait().unwrap(), 7);
}

// ---------------------------------------------------------------------------------------------
// Rule 4, from another thread
// ---------------------------------------------------------------------------------------------

#[test]
fn rule4_panic_on_firing_thread_does_not_kill_it() {
    let (d, r) = Deferred::<u32>::pending();
    let d = d.add_callback(|_| -> Result<u32, Failure> { panic!("rule4 threaded boom") });
    let firer = thread::spawn(move || {
        r.callback(1);
        "finished normally"
    });
    assert_eq!(firer.join().unwrap(), "finished normally");
    assert_eq!(
        panicked_message(&d.wait().unwrap_err()),
        "rule4 threaded boom"
    );
}

// ---------------------------------------------------------------------------------------------
// Rule 5, with other threads
// ---------------------------------------------------------------------------------------------

#[test]
fn rule5_failure_raised_by_callback_after_drop_reported_once_on_other_thread() {
    install_hook();
    let tag = "rule5 raised_after_drop_other_thread";
    let (d, r) = Deferred::<u32>::pending();
    let d = d.add_callback(move |_| Err::<u32, _>(Failure::msg(tag)));
    drop(d);
    thread::spawn(move || r.callback(1)).join().unwrap();
    assert_eq!(reports_of(tag).len(), 1);
}

#[test]
fn rule5_handled_by_wait_never_reported() {
    install_hook();
    let tag = "rule5 handled_by_wait";
    let (d, r) = Deferred::<u32>::pending();
    let d = d.add_callback(|v| Ok(v + 1));
    r.errback(Failure::msg(tag));
    assert!(d.wait().is_err());
    let (d, r) = Deferred::<u32>::pending();
    let waiter = thread::spawn(move || d.wait().is_err());
    r.errback(Failure::msg(tag));
    assert!(waiter.join().unwrap());
    assert!(reports_of(tag).is_empty());
}

#[test]
fn rule5_handled_by_await_never_reported() {
    install_hook();
    let tag = "rule5 handled_by_await";
    let (d, r) = Deferred::<u32>::pending();
    let d = d.add_callback(|v| Ok(v + 1));
    let waiter = thread::spawn(move || block_on(d).is_err());
    r.errback(Failure::msg(tag));
    assert!(waiter.join().unwrap());
    assert!(block_on(Deferred::<u32>::fail(Failure::msg(tag))).is_err());
    assert!(reports_of(tag).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Rule 6, from another thread
// ---------------------------------------------------------------------------------------------

#[test]
fn rule6_resolver_dropped_on_other_thread_unblocks_wait() {
    let (d, r) = Deferred::<u32>::pending();
    let (tx, rx) = mpsc::channel::<()>();
    let dropper = thread::spawn(move || {
        rx.recv().unwrap();
        drop(r);
    });
    let waiter = thread::spawn(move || d.wait());
    tx.send(()).unwrap();
    dropper.join().unwrap();
    assert!(waiter.join().unwrap().unwrap_err().is::<NeverFired>());
}

// ---------------------------------------------------------------------------------------------
// Rule 7, from another thread
// ---------------------------------------------------------------------------------------------

#[test]
fn rule7_cancel_from_other_thread() {
    let (d, _r, cancels) = counting_canceller::<u32>();
    let d = d.add_callback(|v| Ok(v + 1));
    thread::scope(|s| {
        s.spawn(|| d.cancel());
    });
    assert_eq!(cancels.load(SeqCst), 1);
    assert!(d.wait().unwrap_err().is_cancelled());
}

/// A thread blocked in `wait()` on the Deferred a cancelled chain forwards to is woken with the
/// cancellation (Twisted's `chainDeferred`, as an `add_both` firing another Resolver).
#[test]
fn rule7_cancel_wakes_thread_blocked_in_wait() {
    let (forwarded, forward_r) = Deferred::<u32>::pending();
    let (d, _r) = Deferred::<u32>::pending();
    let d = d.add_callback(|v| Ok(v + 1)).add_both(move |r| {
        forward_r.fire(r);
        Ok(())
    });
    let (started_tx, started_rx) = mpsc::channel();
    let waiter = thread::spawn(move || {
        started_tx.send(()).unwrap();
        forwarded.wait()
    });
    started_rx.recv().unwrap(); // the waiter is running (maybe already parked)
    d.cancel();
    assert!(waiter.join().unwrap().unwrap_err().is_cancelled());
    d.wait().unwrap();
}

// Rule 7, a cancel that lands while a callback runs: the callback then returns a pending
// Deferred, and that Deferred is cancelled at once (Twisted would drop such a cancel).
#[test]
fn rule7_cancel_while_callback_runs_reaches_the_deferred_it_returns() {
    let (in_callback_tx, in_callback_rx) = mpsc::channel::<()>();
    let (cancelled_tx, cancelled_rx) = mpsc::channel::<()>();
    let inner_cancelled = Arc::new(AtomicUsize::new(0));
    let flag = inner_cancelled.clone();
    // The inner Deferred's resolver, kept unfired until the test ends: only the cancel can end it.
    let (keep_resolver, _kept_resolver) = mpsc::channel::<Resolver<u32>>();
    let (d, r) = Deferred::<u32>::pending();
    let d = d.add_callback(move |x| {
        in_callback_tx.send(()).unwrap();
        cancelled_rx.recv().unwrap();
        let (inner, inner_r) = Deferred::<u32>::with_canceller(move || {
            flag.fetch_add(1, SeqCst);
        });
        keep_resolver.send(inner_r).unwrap();
        inner.add_callback(move |y| Ok(x + y))
    });
    let handle = d.cancel_handle();
    let firer = std::thread::spawn(move || r.callback(1));
    in_callback_rx.recv().unwrap();
    handle.cancel(); // the callback is running right now
    cancelled_tx.send(()).unwrap();
    firer.join().unwrap();
    assert!(d.wait().unwrap_err().is_cancelled());
    assert_eq!(inner_cancelled.load(SeqCst), 1);
}

// =============================================================================================
// Rule 8: firing, adding callbacks and cancelling may race from any threads; every callback
// runs exactly once.
// =============================================================================================

const GROUPS: usize = 4;
const ITERATIONS: usize = 10_000;

/// What one thread does in a round of [`lockstep`]: `(group, round, item)`.
type Role<I> = dyn Fn(usize, usize, &I) + Sync;

/// Runs `roles.len()` threads per group, `GROUPS` groups (8 threads for two roles); in each of
/// `ITERATIONS` rounds the threads of a group meet at a barrier, then each runs its role on the
/// round's item. Returns the items for checking.
fn lockstep<I: Send + Sync>(make: impl Fn(usize, usize) -> I, roles: &[&Role<I>]) -> Vec<Vec<I>> {
    let items: Vec<Vec<I>> = (0..GROUPS)
        .map(|g| (0..ITERATIONS).map(|i| make(g, i)).collect())
        .collect();
    thread::scope(|s| {
        for (g, group_items) in items.iter().enumerate() {
            let barrier = Arc::new(Barrier::new(roles.len()));
            for role in roles {
                let barrier = barrier.clone();
                s.spawn(move || {
                    for (i, item) in group_items.iter().enumerate() {
                        barrier.wait();
                        role(g, i, item);
                    }
                });
            }
        }
    });
    items
}

fn take<T>(slot: &Mutex<Option<T>>) -> T {
    slot.lock().unwrap().take().expect("taken once")
}

fn slot<T>(value: T) -> Mutex<Option<T>> {
    Mutex::new(Some(value))
}

/// Counts callback runs and records the threads they ran on.
#[derive(Clone, Default)]
struct Runs {
    count: Arc<AtomicUsize>,
    threads: Arc<Mutex<Vec<ThreadId>>>,
}

impl Runs {
    fn record(&self) {
        self.count.fetch_add(1, SeqCst);
        self.threads.lock().unwrap().push(thread::current().id());
    }
}

struct FireAdd {
    deferred: Mutex<Option<Deferred<usize>>>,
    resolver: Mutex<Option<Resolver<usize>>>,
    runs: Runs,
    roles: Mutex<Vec<ThreadId>>,
    end: Mutex<Option<Deferred<usize>>>,
}

#[test]
fn rule8_fire_races_add_callbacks() {
    let items = lockstep(
        |_, _| {
            let (d, r) = Deferred::<usize>::pending();
            FireAdd {
                deferred: slot(d),
                resolver: slot(r),
                runs: Runs::default(),
                roles: Mutex::new(Vec::new()),
                end: Mutex::new(None),
            }
        },
        &[
            &|_, i, item: &FireAdd| {
                item.roles.lock().unwrap().insert(0, thread::current().id());
                take(&item.resolver).callback(i);
            },
            &|_, _, item: &FireAdd| {
                item.roles.lock().unwrap().push(thread::current().id());
                let (a, b, c) = (item.runs.clone(), item.runs.clone(), item.runs.clone());
                let d = take(&item.deferred)
                    .add_callback(move |v| {
                        a.record();
                        Ok(v + 1)
                    })
                    .add_callback(move |v| {
                        b.record();
                        Ok(v + 1)
                    })
                    .add_callback(move |v| {
                        c.record();
                        Ok(v + 1)
                    });
                *item.end.lock().unwrap() = Some(d);
            },
        ],
    );
    let (mut total, mut on_firer, mut on_adder) = (0, 0, 0);
    for group in items {
        for (i, item) in group.into_iter().enumerate() {
            let end = item.end.into_inner().unwrap().unwrap();
            assert_eq!(end.wait().unwrap(), i + 3);
            assert_eq!(
                item.runs.count.load(SeqCst),
                3,
                "item {i}: each callback once"
            );
            let roles = item.roles.into_inner().unwrap();
            let firer = roles[0];
            for id in item.runs.threads.lock().unwrap().iter() {
                assert!(roles.contains(id), "ran on the firing or the adding thread");
                if *id == firer {
                    on_firer += 1;
                } else {
                    on_adder += 1;
                }
            }
            total += item.runs.count.load(SeqCst);
        }
    }
    assert_eq!(total, GROUPS * ITERATIONS * 3);
    eprintln!(
        "fire vs add: {on_firer} callbacks ran on the firing thread, {on_adder} on the adding one"
    );
}

struct FireCancel {
    deferred: Mutex<Option<Deferred<usize>>>,
    resolver: Mutex<Option<Resolver<usize>>>,
    cancels: Arc<AtomicUsize>,
    runs: Runs,
    end: Mutex<Option<Deferred<Result<usize, bool>>>>,
}

#[test]
fn rule8_fire_races_cancel() {
    let items = lockstep(
        |_, _| {
            let (d, r, cancels) = counting_canceller::<usize>();
            FireCancel {
                deferred: slot(d),
                resolver: slot(r),
                cancels,
                runs: Runs::default(),
                end: Mutex::new(None),
            }
        },
        &[
            &|_, i, item: &FireCancel| take(&item.resolver).callback(i),
            &|_, _, item: &FireCancel| {
                let d = take(&item.deferred);
                d.cancel();
                let runs = item.runs.clone();
                let d = d.add_both(move |r| {
                    runs.record();
                    Ok(r.map_err(|f| f.is_cancelled()))
                });
                *item.end.lock().unwrap() = Some(d);
            },
        ],
    );
    let (mut fired, mut cancelled) = (0, 0);
    for group in items {
        for (i, item) in group.into_iter().enumerate() {
            let outcome = item.end.into_inner().unwrap().unwrap().wait().unwrap();
            let cancels = item.cancels.load(SeqCst);
            assert!(cancels <= 1, "the canceller ran at most once");
            match outcome {
                Ok(v) => {
                    assert_eq!(v, i);
                    fired += 1;
                }
                Err(is_cancelled) => {
                    assert!(is_cancelled, "the only failure is Cancelled");
                    assert_eq!(cancels, 1, "a cancelled chain ran its canceller");
                    cancelled += 1;
                }
            }
            assert_eq!(item.runs.count.load(SeqCst), 1);
        }
    }
    assert_eq!(fired + cancelled, GROUPS * ITERATIONS);
    eprintln!("fire vs cancel: {fired} fired first, {cancelled} cancelled first");
}

struct FireWait {
    deferred: Mutex<Option<Deferred<usize>>>,
    resolver: Mutex<Option<Resolver<usize>>>,
    got: Mutex<Option<usize>>,
}

fn fire_wait_items() -> impl Fn(usize, usize) -> FireWait {
    |_, _| {
        let (d, r) = Deferred::<usize>::pending();
        FireWait {
            deferred: slot(d),
            resolver: slot(r),
            got: Mutex::new(None),
        }
    }
}

fn check_fire_wait(items: Vec<Vec<FireWait>>) {
    for group in items {
        for (i, item) in group.into_iter().enumerate() {
            assert_eq!(item.got.into_inner().unwrap(), Some(i + 1));
        }
    }
}

#[test]
fn rule8_fire_races_wait() {
    let items = lockstep(
        fire_wait_items(),
        &[
            &|_, i, item: &FireWait| take(&item.resolver).callback(i),
            &|_, _, item: &FireWait| {
                let v = take(&item.deferred).add_callback(|v| Ok(v + 1)).wait();
                *item.got.lock().unwrap() = Some(v.unwrap());
            },
        ],
    );
    check_fire_wait(items);
}

#[test]
fn rule8_fire_races_await() {
    let items = lockstep(
        fire_wait_items(),
        &[
            &|_, i, item: &FireWait| take(&item.resolver).callback(i),
            &|_, _, item: &FireWait| {
                let d = take(&item.deferred);
                let v = block_on(async move { d.await.map(|v| v + 1) });
                *item.got.lock().unwrap() = Some(v.unwrap());
            },
        ],
    );
    check_fire_wait(items);
}

struct Nested {
    outer: Mutex<Option<Deferred<usize>>>,
    outer_r: Mutex<Option<Resolver<usize>>>,
    inner: Mutex<Option<Deferred<usize>>>,
    inner_r: Mutex<Option<Resolver<usize>>>,
    runs: Runs,
    end: Mutex<Option<Deferred<usize>>>,
}

/// Three threads: one fires the outer Deferred, one fires the inner Deferred its callback
/// returns, one builds the chain.
#[test]
fn rule8_nested_fire_outer_fire_inner_and_add_race() {
    let items = lockstep(
        |_, _| {
            let (outer, outer_r) = Deferred::<usize>::pending();
            let (inner, inner_r) = Deferred::<usize>::pending();
            Nested {
                outer: slot(outer),
                outer_r: slot(outer_r),
                inner: slot(inner),
                inner_r: slot(inner_r),
                runs: Runs::default(),
                end: Mutex::new(None),
            }
        },
        &[
            &|_, _, item: &Nested| take(&item.outer_r).callback(0),
            &|_, i, item: &Nested| take(&item.inner_r).callback(i),
            &|_, _, item: &Nested| {
                let inner = take(&item.inner);
                let (a, b) = (item.runs.clone(), item.runs.clone());
                let d = take(&item.outer)
                    .add_callback(move |_| {
                        a.record();
                        inner
                    })
                    .add_callback(move |v| {
                        b.record();
                        Ok(v * 2)
                    });
                *item.end.lock().unwrap() = Some(d);
            },
        ],
    );
    for group in items {
        for (i, item) in group.into_iter().enumerate() {
            let end = item.end.into_inner().unwrap().unwrap();
            assert_eq!(end.wait().unwrap(), i * 2);
            assert_eq!(item.runs.count.load(SeqCst), 2);
        }
    }
}

struct Abandon {
    deferred: Mutex<Option<Deferred<usize>>>,
    resolver: Mutex<Option<Resolver<usize>>>,
}

/// Dropping the last handle races the failure's arrival: each failure is reported exactly once.
#[test]
fn rule8_drop_races_errback_reports_exactly_once() {
    install_hook();
    lockstep(
        |_, _| {
            let (d, r) = Deferred::<usize>::pending();
            Abandon {
                deferred: slot(d.add_callback(|v| Ok(v + 1))),
                resolver: slot(r),
            }
        },
        &[
            &|g, i, item: &Abandon| {
                take(&item.resolver).errback(Failure::msg(format!("rule8-abandon {g} {i};")))
            },
            &|_, _, item: &Abandon| drop(take(&item.deferred)),
        ],
    );
    let seen: Vec<String> = reports_of("rule8-abandon ")
        .into_iter()
        .map(|r| r.message)
        .collect();
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(seen.len(), GROUPS * ITERATIONS, "one report per failure");
    assert_eq!(unique.len(), GROUPS * ITERATIONS, "none twice");
}

struct CancelCancelFire {
    deferred: Deferred<usize>,
    resolver: Mutex<Option<Resolver<usize>>>,
    cancels: Arc<AtomicUsize>,
}

/// Two threads cancel the same Deferred while a third fires it.
#[test]
fn rule8_concurrent_cancels_and_fire() {
    let items = lockstep(
        |_, _| {
            let (d, r, cancels) = counting_canceller::<usize>();
            CancelCancelFire {
                deferred: d.add_callback(|v| Ok(v + 1)),
                resolver: slot(r),
                cancels,
            }
        },
        &[
            &|_, _, item: &CancelCancelFire| item.deferred.cancel(),
            &|_, _, item: &CancelCancelFire| item.deferred.cancel(),
            &|_, i, item: &CancelCancelFire| take(&item.resolver).callback(i),
        ],
    );
    for group in items {
        for (i, item) in group.into_iter().enumerate() {
            let cancels = item.cancels.load(SeqCst);
            assert!(cancels <= 1, "the canceller ran at most once");
            match item.deferred.wait() {
                Ok(v) => assert_eq!(v, i + 1),
                Err(f) => {
                    assert!(f.is_cancelled(), "{f}");
                    assert_eq!(cancels, 1);
                }
            }
        }
    }
}

struct CancelForward {
    chain: Deferred<usize>,
    inner_r: Mutex<Option<Resolver<usize>>>,
    cancels: Arc<AtomicUsize>,
    runs: Runs,
}

/// The chain already waits on an inner Deferred (returned by its callback); one thread fires
/// the inner Deferred while another cancels the chain, which walks through to the inner one.
// A cancel whose canceller stops the work, and the work's Resolver dropped on another thread
// while the canceller runs (tokio drops an aborted task's future on a worker thread: how
// `from_future`'s cancel ends): the chain is cancelled, not `NeverFired`.
#[test]
fn rule8_resolver_dropped_elsewhere_while_the_canceller_runs_leaves_it_cancelled() {
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let (dropped_tx, dropped_rx) = std::sync::mpsc::channel::<()>();
    let (d, r) = Deferred::<u32>::with_canceller(move || {
        // Tell the worker to stop, and return once it has dropped its Resolver.
        stop_tx.send(()).unwrap();
        dropped_rx.recv().unwrap();
    });
    let worker = thread::spawn(move || {
        stop_rx.recv().unwrap();
        drop(r);
        dropped_tx.send(()).unwrap();
    });
    d.cancel();
    worker.join().unwrap();
    let failure = d.wait().unwrap_err();
    assert!(failure.is_cancelled(), "{failure}");
}

#[test]
fn rule8_cancel_races_inner_fire() {
    let items = lockstep(
        |_, _| {
            let (inner, inner_r, cancels) = counting_canceller::<usize>();
            let runs = Runs::default();
            let ran = runs.clone();
            let chain = Deferred::<usize>::succeed(0)
                .add_callback(move |_| inner)
                .add_both(move |r| {
                    ran.record();
                    r
                });
            CancelForward {
                chain,
                inner_r: slot(inner_r),
                cancels,
                runs,
            }
        },
        &[
            &|_, i, item: &CancelForward| take(&item.inner_r).callback(i),
            &|_, _, item: &CancelForward| item.chain.cancel(),
        ],
    );
    let (mut fired, mut cancelled) = (0, 0);
    for group in items {
        for (i, item) in group.into_iter().enumerate() {
            let cancels = item.cancels.load(SeqCst);
            assert!(cancels <= 1);
            match item.chain.wait() {
                Ok(v) => {
                    assert_eq!(v, i);
                    fired += 1;
                }
                Err(f) => {
                    assert!(f.is_cancelled(), "{f}");
                    assert_eq!(cancels, 1);
                    cancelled += 1;
                }
            }
            assert_eq!(item.runs.count.load(SeqCst), 1, "the step ran exactly once");
        }
    }
    eprintln!("cancel vs inner fire: {fired} fired first, {cancelled} cancelled first");
}

// Rule 1 and 2, one link per pending chain: callbacks added to a pending chain from another
// thread while the firing thread is running its earlier callbacks all run, once each, in the
// order they were added.
#[test]
fn rule8_callbacks_added_while_the_chain_runs_run_in_order() {
    const ADDED_LATER: usize = 1_000;
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (d, r) = Deferred::<usize>::pending();
    let log = order.clone();
    let mut d = d.add_callback(move |x| {
        started_tx.send(()).unwrap();
        go_rx.recv().unwrap(); // hold the firing thread inside the chain
        log.lock().unwrap().push(0);
        Ok(x)
    });
    let firer = std::thread::spawn(move || r.callback(0));
    started_rx.recv().unwrap();
    for i in 1..=ADDED_LATER {
        let log = order.clone();
        d = d.add_callback(move |x| {
            log.lock().unwrap().push(i);
            Ok(x + 1)
        });
        if i == ADDED_LATER / 2 {
            go_tx.send(()).unwrap(); // let the run go on while more are added
        }
    }
    firer.join().unwrap();
    assert_eq!(d.wait().unwrap(), ADDED_LATER);
    let order = order.lock().unwrap();
    assert_eq!(*order, (0..=ADDED_LATER).collect::<Vec<_>>());
}

// ---------------------------------------------------------------------------------------------
// Future and wait(), from other threads
// ---------------------------------------------------------------------------------------------

#[test]
fn future_await_pending_fired_from_other_thread() {
    let (d, r) = Deferred::<u32>::pending();
    let d = d.add_callback(|v| Ok(v * 2));
    let firer = thread::spawn(move || r.callback(21));
    assert_eq!(block_on(d).unwrap(), 42);
    firer.join().unwrap();
}

#[test]
fn future_chain_of_awaits_in_async_fn() {
    async fn pipeline(first: Deferred<u32>) -> Result<String, Failure> {
        let id = first.await?;
        let details = Deferred::<u32>::succeed(id * 10)
            .add_callback(|n| Ok(format!("employee #{n}")))
            .await?;
        Ok(details)
    }
    let (d, r) = Deferred::<u32>::pending();
    let worker = thread::spawn(move || block_on(pipeline(d)));
    r.callback(4);
    assert_eq!(worker.join().unwrap().unwrap(), "employee #40");
}

#[test]
fn wait_from_other_thread() {
    let (d, r) = Deferred::<String>::pending();
    let d = d.add_callback(|s| Ok(s + "!"));
    let waiter = thread::spawn(move || d.wait());
    r.callback("fired".to_owned());
    assert_eq!(waiter.join().unwrap().unwrap(), "fired!");
}

#[test]
fn wait_on_many_threads_each_own_chain() {
    let mut resolvers = Vec::new();
    let mut waiters = Vec::new();
    for i in 0..16u32 {
        let (d, r) = Deferred::<u32>::pending();
        resolvers.push(r);
        waiters.push(thread::spawn(move || {
            d.add_callback(move |v| Ok(v + i)).wait()
        }));
    }
    for r in resolvers {
        r.callback(100);
    }
    for (i, w) in waiters.into_iter().enumerate() {
        assert_eq!(w.join().unwrap().unwrap(), 100 + i as u32);
    }
}

#[test]
fn deferred_and_resolver_are_send_and_sync_when_parts_are() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    send::<Deferred<u32>>();
    sync::<Deferred<u32>>();
    send::<Resolver<u32>>();
    send::<Failure>();
    sync::<Failure>();
}
