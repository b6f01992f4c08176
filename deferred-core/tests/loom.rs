//! Model-checked races of the state machine (rule 8): every interleaving, up to a bounded number
//! of preemptions, of firing, adding callbacks, cancelling and dropping handles from several
//! threads. Each model asserts that every callback ran exactly once (or, where the rules say so,
//! never) and that the chain ended in one of the outcomes the rules allow.
//!
//! Run it (release: loom explores thousands of interleavings per model):
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test -p deferred-core --test loom --release
//! ```
//!
//! Under `--cfg loom` the core's `Mutex` and thread-locals are loom's (see `src/sync.rs`), so
//! every lock and unlock in `chain/pending/` is a point where loom may switch threads. Results are
//! observed through callbacks that write to loom atomics and mutexes, never with `wait()` (which
//! parks real threads).
#![cfg(loom)]

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Once};
use std::time::Duration;

use deferred_core::{
    Cancelled, Deferred, DeferredList, DeferredLock, DeferredSemaphore, Failure, FailureGroup,
    FirstError, FirstSuccess, GaveUp, LoopingCall, ManualClock, NeverFired, Panicked, Permit,
    RetryError, RetryPolicy, TimedOut, defer_later, map_concurrent, retry, set_unhandled_hook,
};
use loom::sync::Mutex;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use loom::thread;

/// The preemption bound: every interleaving with at most this many forced thread switches.
const PREEMPTIONS: usize = 3;

fn model(preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    let bound = if std::env::var_os("LOOM_EXHAUSTIVE").is_some() {
        None
    } else {
        Some(preemptions)
    };
    check(bound, f);
}

/// A model of three threads: explored to its preemption bound even with `LOOM_EXHAUSTIVE`
/// (every interleaving of three threads would not end in minutes).
fn model_bounded(preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    check(Some(preemptions), f);
}

fn check(bound: Option<usize>, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = bound;
    builder.max_branches = 100_000;
    let executions = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = executions.clone();
    builder.check(move || {
        count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f();
    });
    eprintln!(
        "{}: {} interleavings (preemption bound {:?})",
        thread_name(),
        executions.load(std::sync::atomic::Ordering::Relaxed),
        builder.preemption_bound,
    );
}

fn thread_name() -> String {
    std::thread::current().name().unwrap_or("?").to_owned()
}

/// How a chain ended, as seen by its last step.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Ok(u32),
    Cancelled,
    NeverFired,
    Panicked(String),
    Other(String),
}

impl Outcome {
    fn of(result: Result<u32, Failure>) -> Outcome {
        match result {
            Ok(v) => Outcome::Ok(v),
            Err(f) if f.is::<Cancelled>() => Outcome::Cancelled,
            Err(f) if f.is::<NeverFired>() => Outcome::NeverFired,
            Err(f) => match f.downcast_ref::<Panicked>() {
                Some(p) => Outcome::Panicked(p.message().to_owned()),
                None => Outcome::Other(f.to_string()),
            },
        }
    }
}

/// Counts calls, and records the outcomes a chain's last step saw (there must be exactly one).
#[derive(Clone)]
struct Probe {
    outcomes: Arc<Mutex<Vec<Outcome>>>,
}

impl Probe {
    fn new() -> Probe {
        Probe {
            outcomes: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Ends `d` with a step that records its outcome, and drops the (now harmless) last link.
    fn finish(&self, d: Deferred<u32>) {
        let outcomes = self.outcomes.clone();
        let end = d.add_both(move |result| {
            outcomes.lock().unwrap().push(Outcome::of(result));
            Ok::<(), Failure>(())
        });
        drop(end); // holds Ok(()) or will: nothing to report
    }

    /// The one outcome recorded (panics if there were none or several).
    fn outcome(&self) -> Outcome {
        let outcomes = self.outcomes.lock().unwrap();
        assert_eq!(
            outcomes.len(),
            1,
            "the last step must run exactly once: {outcomes:?}"
        );
        outcomes[0].clone()
    }
}

fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

/// A pending Deferred whose canceller counts its calls.
fn cancellable(cancels: &Arc<AtomicUsize>) -> (Deferred<u32>, deferred_core::Resolver<u32>) {
    let cancels = cancels.clone();
    Deferred::<u32>::with_canceller(move || {
        cancels.fetch_add(1, SeqCst);
    })
}

/// A callback that counts its calls and adds `n`.
fn adder(
    calls: &Arc<AtomicUsize>,
    n: u32,
) -> impl FnOnce(u32) -> Result<u32, Failure> + Send + use<> {
    let calls = calls.clone();
    move |x| {
        calls.fetch_add(1, SeqCst);
        Ok(x + n)
    }
}

#[test]
fn fire_races_add_callback() {
    model(PREEMPTIONS, || {
        let (first, second) = (counter(), counter());
        let probe = Probe::new();
        let (d, resolver) = Deferred::<u32>::pending();
        let firer = thread::spawn(move || resolver.callback(1));
        // Two steps added while the firing thread runs: the first may see a pending link, a
        // fired one, or one being delivered.
        let d = d
            .add_callback(adder(&first, 10))
            .add_callback(adder(&second, 100));
        probe.finish(d);
        firer.join().unwrap();
        assert_eq!(first.load(SeqCst), 1);
        assert_eq!(second.load(SeqCst), 1);
        assert_eq!(probe.outcome(), Outcome::Ok(111));
    });
}

#[test]
fn failing_fire_races_add_callbacks() {
    model(PREEMPTIONS, || {
        let (skipped, errback) = (counter(), counter());
        let probe = Probe::new();
        let (d, resolver) = Deferred::<u32>::pending();
        let firer = thread::spawn(move || resolver.errback(Failure::msg("boom")));
        let seen = errback.clone();
        let d = d.add_callback(adder(&skipped, 1)).add_errback(move |f| {
            seen.fetch_add(1, SeqCst);
            assert_eq!(f.to_string(), "boom");
            Ok(7)
        });
        probe.finish(d);
        firer.join().unwrap();
        assert_eq!(skipped.load(SeqCst), 0, "a failure skips callbacks");
        assert_eq!(errback.load(SeqCst), 1);
        assert_eq!(probe.outcome(), Outcome::Ok(7));
    });
}

#[test]
fn fire_races_cancel() {
    model(PREEMPTIONS, || {
        let (calls, cancellers) = (counter(), counter());
        let probe = Probe::new();
        let (d, resolver) = cancellable(&cancellers);
        let d = d.add_callback(adder(&calls, 1));
        // Cancel from the end of the chain: the walk goes up one link to the root.
        let handle = d.cancel_handle();
        probe.finish(d);
        let firer = thread::spawn(move || resolver.callback(1));
        handle.cancel();
        firer.join().unwrap();
        // Either the fire won (the callback ran; the canceller may have run too, if cancel took
        // it before the fire landed: Twisted's "canceller ran, then the result arrived") or the
        // cancel won (the callback never ran, the chain failed with Cancelled).
        assert!(cancellers.load(SeqCst) <= 1);
        match probe.outcome() {
            Outcome::Ok(2) => assert_eq!(calls.load(SeqCst), 1),
            Outcome::Cancelled => {
                assert_eq!(calls.load(SeqCst), 0);
                assert_eq!(cancellers.load(SeqCst), 1);
            }
            other => panic!("not an allowed outcome: {other:?}"),
        }
    });
}

#[test]
fn cancel_races_add_callback() {
    model(PREEMPTIONS, || {
        let (calls, cancellers) = (counter(), counter());
        let probe = Probe::new();
        let (d, resolver) = cancellable(&cancellers);
        let handle = d.cancel_handle();
        let canceller = thread::spawn(move || handle.cancel());
        let d = d.add_callback(adder(&calls, 1));
        probe.finish(d);
        canceller.join().unwrap();
        resolver.callback(5); // too late: ignored
        assert_eq!(cancellers.load(SeqCst), 1);
        assert_eq!(calls.load(SeqCst), 0);
        assert_eq!(probe.outcome(), Outcome::Cancelled);
    });
}

#[test]
fn resolver_drop_races_add_callback() {
    model(PREEMPTIONS, || {
        let calls = counter();
        let probe = Probe::new();
        let (d, resolver) = Deferred::<u32>::pending();
        let dropper = thread::spawn(move || drop(resolver));
        let d = d.add_callback(adder(&calls, 1));
        probe.finish(d);
        dropper.join().unwrap();
        assert_eq!(calls.load(SeqCst), 0);
        assert_eq!(probe.outcome(), Outcome::NeverFired);
    });
}

/// A canceller that stops the work, whose thread then drops its Resolver (as aborting a task
/// drops the future that holds it): whenever the drop lands, during the canceller or after
/// the cancel, the chain is `Cancelled`, never `NeverFired`.
#[test]
fn resolver_dropped_by_the_work_a_canceller_stops_leaves_it_cancelled() {
    model(PREEMPTIONS, || {
        let probe = Probe::new();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let (d, resolver) = Deferred::<u32>::with_canceller(move || stopped.store(true, SeqCst));
        let work = thread::spawn(move || {
            while !stop.load(SeqCst) {
                thread::yield_now();
            }
            drop(resolver);
        });
        d.cancel();
        probe.finish(d);
        work.join().unwrap();
        assert_eq!(probe.outcome(), Outcome::Cancelled);
    });
}

/// A dropped Resolver fails its root with `NeverFired` (where it was made is read from the
/// chain, then the failure is made outside the lock, then the root fired), while a cancel fails
/// it with `Cancelled`: one of the two wins, whole, and the other is dropped.
#[test]
fn resolver_drop_races_cancel() {
    model(PREEMPTIONS, || {
        let probe = Probe::new();
        let (d, resolver) = Deferred::<u32>::pending();
        let handle = d.cancel_handle();
        let dropper = thread::spawn(move || drop(resolver));
        let canceller = thread::spawn(move || handle.cancel());
        probe.finish(d);
        dropper.join().unwrap();
        canceller.join().unwrap();
        let outcome = probe.outcome();
        assert!(
            matches!(outcome, Outcome::NeverFired | Outcome::Cancelled),
            "{outcome:?}"
        );
    });
}

#[test]
fn nested_chain_fired_from_two_threads() {
    model(PREEMPTIONS, || {
        let (outer_calls, inner_calls, after_calls) = (counter(), counter(), counter());
        let probe = Probe::new();
        let (outer, outer_resolver) = Deferred::<u32>::pending();
        let (inner, inner_resolver) = Deferred::<u32>::pending();
        let t1 = thread::spawn(move || outer_resolver.callback(1));
        let t2 = thread::spawn(move || inner_resolver.callback(10));
        // The outer callback runs on whichever thread delivers `outer`, and chains onto `inner`
        // while t2 may be firing it: the chain pauses on `inner` (or not, if it already fired).
        let (oc, ic) = (outer_calls.clone(), inner_calls.clone());
        let d = outer
            .add_callback(move |x| {
                oc.fetch_add(1, SeqCst);
                inner.add_callback(move |y| {
                    ic.fetch_add(1, SeqCst);
                    Ok(x + y)
                })
            })
            .add_callback(adder(&after_calls, 100));
        probe.finish(d);
        t1.join().unwrap();
        t2.join().unwrap();
        assert_eq!(outer_calls.load(SeqCst), 1);
        assert_eq!(inner_calls.load(SeqCst), 1);
        assert_eq!(after_calls.load(SeqCst), 1);
        assert_eq!(probe.outcome(), Outcome::Ok(111));
    });
}

#[test]
fn nested_chain_races_cancel() {
    model(PREEMPTIONS, || {
        let (outer_calls, after_calls) = (counter(), counter());
        let (outer_cancels, inner_cancels) = (counter(), counter());
        let probe = Probe::new();
        let (outer, outer_resolver) = cancellable(&outer_cancels);
        let (inner, inner_resolver) = cancellable(&inner_cancels);
        let calls = outer_calls.clone();
        let d = outer
            .add_callback(move |x| {
                calls.fetch_add(1, SeqCst);
                inner.add_callback(move |y| Ok(x + y))
            })
            .add_callback(adder(&after_calls, 100));
        let handle = d.cancel_handle();
        probe.finish(d);
        let t1 = thread::spawn(move || outer_resolver.callback(1));
        let t2 = thread::spawn(move || inner_resolver.callback(10));
        handle.cancel();
        t1.join().unwrap();
        t2.join().unwrap();
        // The cancel lands on the outer root (before it fired), on the inner one (while the chain
        // waits on it, or once the step returns it), or on nothing (the chain is done).
        assert!(outer_cancels.load(SeqCst) <= 1);
        assert!(inner_cancels.load(SeqCst) <= 1);
        assert!(outer_calls.load(SeqCst) <= 1);
        match probe.outcome() {
            Outcome::Ok(111) => {
                assert_eq!(outer_calls.load(SeqCst), 1);
                assert_eq!(after_calls.load(SeqCst), 1);
            }
            Outcome::Cancelled => {
                assert_eq!(after_calls.load(SeqCst), 0);
                // Both run when the outer canceller loses its race with the outer fire: the
                // cancel then goes on to the inner Deferred the step returned.
                assert!(outer_cancels.load(SeqCst) + inner_cancels.load(SeqCst) >= 1);
            }
            other => panic!("not an allowed outcome: {other:?}"),
        }
    });
}

#[test]
fn hand_over_races_cancel_and_fires() {
    model(PREEMPTIONS, || {
        let (outer_cancels, between_cancels, inner_cancels) = (counter(), counter(), counter());
        let probe = Probe::new();
        let (outer, outer_resolver) = cancellable(&outer_cancels);
        let (between, between_resolver) = cancellable(&between_cancels);
        let (inner, inner_resolver) = cancellable(&inner_cancels);
        // `between`'s last step returns `inner`: when it runs while the outer chain waits on
        // `between`, `between` hands its wait over and the outer chain waits on `inner` itself.
        let between = between.add_callback(move |_| inner);
        let d = outer.add_callback(move |_| between);
        let handle = d.cancel_handle();
        probe.finish(d);
        let t1 = thread::spawn(move || outer_resolver.callback(1));
        let t2 = thread::spawn(move || {
            between_resolver.callback(2);
            inner_resolver.callback(3);
        });
        handle.cancel();
        t1.join().unwrap();
        t2.join().unwrap();
        for cancels in [&outer_cancels, &between_cancels, &inner_cancels] {
            assert!(cancels.load(SeqCst) <= 1);
        }
        match probe.outcome() {
            Outcome::Ok(3) => {}
            // The cancel landed on whichever root the path waited on then (or on a step that
            // was running, which remembered it for the Deferred it returned).
            Outcome::Cancelled => assert!(
                outer_cancels.load(SeqCst)
                    + between_cancels.load(SeqCst)
                    + inner_cancels.load(SeqCst)
                    >= 1
            ),
            other => panic!("not an allowed outcome: {other:?}"),
        }
    });
}

/// A cancel whose walk crosses a relay while the relay hands its wait over, and the Deferred it
/// handed over fires meanwhile: the result went to the chain waiting in the relay's place, and
/// so does the cancel (to that chain's next Deferred, or remembered while its step runs). Left
/// with the relay, which runs no more, it would be lost, and the chain would wait on `next`
/// until its Resolver is dropped (`NeverFired`).
#[test]
fn a_cancel_crossing_a_hand_over_is_not_left_with_the_relay() {
    model(PREEMPTIONS, || {
        let next_cancels = counter();
        let probe = Probe::new();
        let (between, between_resolver) = Deferred::<u32>::pending();
        let (inner, inner_resolver) = Deferred::<u32>::pending();
        let (next, next_resolver) = cancellable(&next_cancels);
        let between = between.add_callback(move |_| inner);
        let (root, root_resolver) = Deferred::<u32>::pending();
        let d = root
            .add_callback(move |_| between)
            .add_callback(move |_| next);
        let handle = d.cancel_handle();
        probe.finish(d);
        root_resolver.callback(0); // the chain waits on `between`, `next` still to come
        let firing = thread::spawn(move || {
            between_resolver.callback(1);
            inner_resolver.callback(2);
        });
        handle.cancel();
        firing.join().unwrap();
        drop(next_resolver);
        assert_eq!(probe.outcome(), Outcome::Cancelled);
        assert!(next_cancels.load(SeqCst) <= 1);
    });
}

/// A chain waiting on nested chains — the outer chain's step returns the first, whose step
/// returns the next, and so on, the last one's step returning a leaf; `steps[k]` adds a step
/// after level k's — while the outer chain is cancelled and the roots fire: each root (the
/// outer chain's, each level's, the leaf's, in `plan`) fired before (`p`), on a first thread
/// (`a`) or on a second (`b`). Wherever the cancel lands first — on a root, remembered by a
/// chain whose step runs, or walking on while the chains fire — it ends the outer chain, whose
/// last step's Deferred nobody fires (a lost cancel leaves it waiting). The walk follows a
/// chain that has fired to the one it passed its result to (`Phase::Passed`, held even once
/// nothing else holds the chain between), and a chain that fired and keeps its result holds
/// the cancel for the one that will take it (`Phase::Fired`). Three threads: explored to
/// `bound` whatever `LOOM_EXHAUSTIVE` says.
fn nested_chains_cancelled_while_they_fire(
    plan: &'static str,
    steps: &'static [bool],
    bound: usize,
) {
    model_bounded(bound, move || {
        let (leaf, leaf_resolver) = Deferred::<u32>::pending();
        let mut resolvers = vec![leaf_resolver];
        let mut inner = leaf;
        for &with_a_step in steps.iter().rev() {
            let (level, resolver) = Deferred::<u32>::pending();
            resolvers.push(resolver);
            let mut nested = level.add_callback(move |_| inner);
            if with_a_step {
                nested = nested.add_callback(Ok);
            }
            inner = nested;
        }
        let (root, root_resolver) = Deferred::<u32>::pending();
        resolvers.push(root_resolver);
        resolvers.reverse(); // the outer chain's root first, the leaf's last, as in `plan`
        let finals: Arc<Mutex<Vec<deferred_core::Resolver<u32>>>> =
            Arc::new(Mutex::new(Vec::new()));
        let made = finals.clone();
        let outer = root.add_callback(move |_| inner).add_callback(move |_| {
            let (last, resolver) = Deferred::<u32>::pending();
            made.lock().unwrap().push(resolver);
            last
        });
        let handle = outer.cancel_handle();
        let probe = Probe::new();
        probe.finish(outer);
        let (mut on_first, mut on_second) = (Vec::new(), Vec::new());
        for (place, resolver) in plan.chars().zip(resolvers) {
            match place {
                'p' => resolver.callback(1),
                'a' => on_first.push(resolver),
                _ => on_second.push(resolver),
            }
        }
        let first = thread::spawn(move || on_first.into_iter().for_each(|r| r.callback(1)));
        let second = thread::spawn(move || on_second.into_iter().for_each(|r| r.callback(1)));
        handle.cancel();
        first.join().unwrap();
        second.join().unwrap();
        assert_eq!(probe.outcome(), Outcome::Cancelled);
        finals.lock().unwrap().clear();
    });
}

#[test]
fn a_cancel_of_two_nested_levels_fired_on_two_threads_is_never_lost() {
    nested_chains_cancelled_while_they_fire("abab", &[false, false], 3);
}

#[test]
fn a_cancel_of_two_nested_levels_with_a_step_is_never_lost() {
    nested_chains_cancelled_while_they_fire("paab", &[true, false], 3);
}

#[test]
fn a_cancel_of_nested_chains_fired_on_three_threads_is_never_lost() {
    nested_chains_cancelled_while_they_fire("aab", &[false], 4);
}

#[test]
fn a_cancel_of_nested_chains_with_a_step_fired_on_three_threads_is_never_lost() {
    nested_chains_cancelled_while_they_fire("pab", &[true], 4);
}

/// `chain!`'s run of `then`s and the `catch` after it, as it expands them: one stage
/// (`__add_callbacks_then`) whose run returns a pending Deferred, and whose `catch` then waits
/// at the front of the chain's own list, before a step another thread adds meanwhile.
fn run_then_catch(
    start: Deferred<u32>,
    inner: Deferred<u32>,
    run_calls: &Arc<AtomicUsize>,
    catch_calls: &Arc<AtomicUsize>,
) -> Deferred<u32> {
    let (runs, catches) = (run_calls.clone(), catch_calls.clone());
    start.__add_callbacks_then(
        move |x| {
            runs.fetch_add(1, SeqCst);
            inner.add_callback(move |y| Ok(x + y))
        },
        || &[],
        move |outcome| {
            outcome.add_errback(move |_| {
                catches.fetch_add(1, SeqCst);
                Ok::<u32, Failure>(500)
            })
        },
        std::panic::Location::caller(),
    )
}

#[test]
fn run_and_catch_wait_while_a_step_is_added() {
    model(PREEMPTIONS, || {
        let (run_calls, catch_calls, after_calls) = (counter(), counter(), counter());
        let probe = Probe::new();
        let (outer, outer_resolver) = Deferred::<u32>::pending();
        let (inner, inner_resolver) = Deferred::<u32>::pending();
        let d = run_then_catch(outer, inner, &run_calls, &catch_calls);
        let t1 = thread::spawn(move || outer_resolver.callback(1));
        let t2 = thread::spawn(move || inner_resolver.errback(Failure::msg("inner failed")));
        // Added while the run may be running, waiting on `inner`, or done: it runs after the
        // catch whichever.
        probe.finish(d.add_callback(adder(&after_calls, 100)));
        t1.join().unwrap();
        t2.join().unwrap();
        assert_eq!(run_calls.load(SeqCst), 1);
        assert_eq!(catch_calls.load(SeqCst), 1);
        assert_eq!(after_calls.load(SeqCst), 1);
        assert_eq!(probe.outcome(), Outcome::Ok(600));
    });
}

#[test]
fn run_and_catch_wait_while_a_cancel_lands() {
    model(PREEMPTIONS, || {
        let (run_calls, catch_calls, after_calls) = (counter(), counter(), counter());
        let (outer_cancels, inner_cancels) = (counter(), counter());
        let probe = Probe::new();
        let (outer, outer_resolver) = cancellable(&outer_cancels);
        let (inner, inner_resolver) = cancellable(&inner_cancels);
        let d = run_then_catch(outer, inner, &run_calls, &catch_calls)
            .add_callback(adder(&after_calls, 100));
        let handle = d.cancel_handle();
        probe.finish(d);
        let t1 = thread::spawn(move || outer_resolver.callback(1));
        let t2 = thread::spawn(move || inner_resolver.callback(10));
        handle.cancel();
        t1.join().unwrap();
        t2.join().unwrap();
        assert!(outer_cancels.load(SeqCst) <= 1);
        assert!(inner_cancels.load(SeqCst) <= 1);
        // The run ran once, or the cancel reached the outer root before it fired (its canceller
        // ran; the fire may still win the race with it, and the run then runs too).
        assert!(run_calls.load(SeqCst) <= 1);
        assert!(run_calls.load(SeqCst) == 1 || outer_cancels.load(SeqCst) == 1);
        assert_eq!(after_calls.load(SeqCst), 1);
        match probe.outcome() {
            // The cancel came too late, or landed on a root that had fired.
            Outcome::Ok(111) => assert_eq!(catch_calls.load(SeqCst), 0),
            // It failed the outer root (the run is skipped) or the inner one: the catch
            // recovered, once.
            Outcome::Ok(600) => {
                assert_eq!(catch_calls.load(SeqCst), 1);
                assert!(outer_cancels.load(SeqCst) + inner_cancels.load(SeqCst) >= 1);
            }
            other => panic!("not an allowed outcome: {other:?}"),
        }
    });
}

/// The unhandled-error hook is a process-wide (std) global: install one that counts reports per
/// test and message, and give every model execution its own message. Loom runs all of a model's
/// threads on the test's own OS thread, so the thread's name says which test reported.
fn reports() -> &'static std::sync::Mutex<HashMap<(String, String), usize>> {
    type Reports = std::sync::Mutex<HashMap<(String, String), usize>>;
    static REPORTS: std::sync::OnceLock<Reports> = std::sync::OnceLock::new();
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let _default = set_unhandled_hook(|f: &Failure| {
            let key = (thread_name(), f.to_string());
            *reports().lock().unwrap().entry(key).or_default() += 1;
        });
    });
    REPORTS.get_or_init(Default::default)
}

fn unique_message(tag: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("loom {tag} #{n}")
}

/// How often this test reported `message`.
fn reported(message: &str) -> usize {
    let key = (thread_name(), message.to_owned());
    reports().lock().unwrap().get(&key).copied().unwrap_or(0)
}

/// How many reports this test's thread made so far, all messages together.
fn reported_by_this_test() -> usize {
    let me = thread_name();
    let reports = reports().lock().unwrap();
    reports
        .iter()
        .filter(|((t, _), _)| *t == me)
        .map(|(_, n)| n)
        .sum()
}

#[test]
fn unhandled_failure_reported_once_when_handle_drop_races_fire() {
    reports();
    model(PREEMPTIONS, || {
        let message = unique_message("dropped root");
        let (d, resolver) = Deferred::<u32>::pending();
        let failure = Failure::msg(message.clone());
        let firer = thread::spawn(move || resolver.errback(failure));
        drop(d);
        firer.join().unwrap();
        assert_eq!(reported(&message), 1);
    });
}

#[test]
fn unhandled_failure_reported_once_through_a_chain() {
    reports();
    model(PREEMPTIONS, || {
        let message = unique_message("dropped chain");
        let calls = counter();
        let (d, resolver) = Deferred::<u32>::pending();
        let d = d.add_callback(adder(&calls, 1));
        let failure = Failure::msg(message.clone());
        let firer = thread::spawn(move || resolver.errback(failure));
        // The failure skips the callback and reaches a link whose handle is being dropped.
        drop(d);
        firer.join().unwrap();
        assert_eq!(calls.load(SeqCst), 0);
        assert_eq!(reported(&message), 1);
    });
}

#[test]
fn handled_failure_is_never_reported() {
    reports();
    model(PREEMPTIONS, || {
        let message = unique_message("handled");
        let probe = Probe::new();
        let (d, resolver) = Deferred::<u32>::pending();
        let failure = Failure::msg(message.clone());
        let firer = thread::spawn(move || resolver.errback(failure));
        probe.finish(d);
        firer.join().unwrap();
        assert_eq!(probe.outcome(), Outcome::Other(message.clone()));
        assert_eq!(reported(&message), 0);
    });
}

#[test]
fn panicking_callback_races_fire() {
    // Keep the expected panics out of the output (loom's own panics still print).
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() != Some(&"in a callback") {
            default(info);
        }
    }));
    model(PREEMPTIONS, || {
        let probe = Probe::new();
        let (d, resolver) = Deferred::<u32>::pending();
        let firer = thread::spawn(move || resolver.callback(1));
        let d = d.add_callback(|_| -> Result<u32, Failure> { panic!("in a callback") });
        probe.finish(d);
        firer.join().unwrap();
        assert_eq!(probe.outcome(), Outcome::Panicked("in a callback".into()));
    });
}

#[test]
fn fire_cancel_and_drop_race_add_callback() {
    // Three threads at once: the root fires, the chain is cancelled from its end, and the first
    // step's handle is consumed by a later step, while the last handle is dropped.
    model(PREEMPTIONS, || {
        let (calls, errbacks) = (counter(), counter());
        let probe = Probe::new();
        let (d, resolver) = Deferred::<u32>::with_canceller(|| {});
        let handle = d.cancel_handle();
        let firer = thread::spawn(move || resolver.callback(1));
        let canceller = thread::spawn(move || handle.cancel());
        let seen = errbacks.clone();
        let d = d.add_callback(adder(&calls, 1)).add_errback(move |f| {
            seen.fetch_add(1, SeqCst);
            assert!(f.is_cancelled());
            Ok(0)
        });
        probe.finish(d);
        firer.join().unwrap();
        canceller.join().unwrap();
        match probe.outcome() {
            Outcome::Ok(2) => {
                assert_eq!(calls.load(SeqCst), 1);
                assert_eq!(errbacks.load(SeqCst), 0);
            }
            Outcome::Ok(0) => {
                assert_eq!(calls.load(SeqCst), 0);
                assert_eq!(errbacks.load(SeqCst), 1);
            }
            other => panic!("not an allowed outcome: {other:?}"),
        }
    });
}

#[test]
fn resolver_fired_from_a_callback_races_add_callback() {
    // A callback running on one thread fires another chain's Resolver (the run loop queues that
    // delivery) while the main thread adds a callback to that other chain.
    model(PREEMPTIONS, || {
        let (a_calls, b_calls) = (counter(), counter());
        let probe = Probe::new();
        let (a, a_resolver) = Deferred::<u32>::pending();
        let (b, b_resolver) = Deferred::<u32>::pending();
        let calls = a_calls.clone();
        let a = a.add_callback(move |x| {
            calls.fetch_add(1, SeqCst);
            b_resolver.callback(x * 2);
            Ok(x)
        });
        let firer = thread::spawn(move || {
            a_resolver.callback(21);
            drop(a);
        });
        probe.finish(b.add_callback(adder(&b_calls, 0)));
        firer.join().unwrap();
        assert_eq!(a_calls.load(SeqCst), 1);
        assert_eq!(b_calls.load(SeqCst), 1);
        assert_eq!(probe.outcome(), Outcome::Ok(42));
    });
}

#[test]
fn nested_inner_chain_with_its_own_root_on_a_third_thread() {
    // The callback returns a *step* of another pending chain (not a root): the outer chain
    // forwards through two links, fired by three threads.
    model(PREEMPTIONS, || {
        let (outer_calls, inner_calls) = (counter(), counter());
        let probe = Probe::new();
        let (outer, outer_resolver) = Deferred::<u32>::pending();
        let (inner, inner_resolver) = Deferred::<u32>::pending();
        let inner = inner.add_callback(adder(&inner_calls, 10));
        let t1 = thread::spawn(move || outer_resolver.callback(1));
        let t2 = thread::spawn(move || inner_resolver.callback(100));
        let calls = outer_calls.clone();
        let d = outer.add_callback(move |x| {
            calls.fetch_add(1, SeqCst);
            inner.add_callback(move |y| Ok(x + y))
        });
        probe.finish(d);
        t1.join().unwrap();
        t2.join().unwrap();
        assert_eq!(outer_calls.load(SeqCst), 1);
        assert_eq!(inner_calls.load(SeqCst), 1);
        assert_eq!(probe.outcome(), Outcome::Ok(111));
    });
}

#[test]
fn successful_fire_racing_handle_drop_reports_nothing() {
    reports();
    model(PREEMPTIONS, || {
        let before = reported_by_this_test();
        let calls = counter();
        let (d, resolver) = Deferred::<u32>::pending();
        let d = d.add_callback(adder(&calls, 1));
        let firer = thread::spawn(move || resolver.callback(1));
        drop(d);
        firer.join().unwrap();
        // The callback still runs (its chain was set up before the drop); nothing is reported.
        assert_eq!(calls.load(SeqCst), 1);
        assert_eq!(reported_by_this_test(), before);
    });
}

/// A waker that counts its wakes in a loom atomic.
struct CountingWaker(AtomicUsize);

impl std::task::Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

#[test]
fn poll_races_fire() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    model(PREEMPTIONS, || {
        let (mut d, resolver) = Deferred::<u32>::pending();
        let firer = thread::spawn(move || resolver.callback(3));
        let wakes = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let first = std::pin::Pin::new(&mut d).poll(&mut cx);
        let woken_before_join = wakes.0.load(SeqCst);
        firer.join().unwrap();
        let result = match first {
            Poll::Ready(result) => result,
            Poll::Pending => {
                // Pending: the fire, now finished, must have woken the task exactly once; the
                // next poll finds the result.
                assert_eq!(
                    wakes.0.load(SeqCst),
                    1,
                    "a Pending poll was not woken by the fire"
                );
                assert!(woken_before_join <= 1);
                match std::pin::Pin::new(&mut d).poll(&mut cx) {
                    Poll::Ready(result) => result,
                    Poll::Pending => panic!("woken, but the result is not there"),
                }
            }
        };
        assert_eq!(result.unwrap(), 3);
    });
}

#[test]
fn cancel_is_never_lost_while_a_step_runs() {
    reports(); // the inner Deferred, dropped unfired when the root is cancelled, reports here
    // The root fires on one thread; its step returns an inner Deferred that nobody fires; the
    // chain's end is cancelled from another thread at any moment: before the root fires, while
    // the step is queued or running, or once the chain waits on the inner Deferred. The cancel
    // must always land (on the root, or on the inner Deferred), never be lost to timing.
    model(PREEMPTIONS, || {
        let (calls, inner_cancels) = (counter(), counter());
        let probe = Probe::new();
        let (d, resolver) = Deferred::<u32>::pending();
        let (inner, inner_resolver) = cancellable(&inner_cancels);
        let step_calls = calls.clone();
        let d = d.add_callback(move |x| {
            step_calls.fetch_add(1, SeqCst);
            inner.add_callback(move |y| Ok(x + y))
        });
        let handle = d.cancel_handle();
        probe.finish(d);
        let firer = thread::spawn(move || resolver.callback(1));
        handle.cancel();
        firer.join().unwrap();
        drop(inner_resolver); // had the cancel been lost, the chain would fail with NeverFired
        assert_eq!(probe.outcome(), Outcome::Cancelled);
        // The step ran iff the cancel came after the root fired; then it landed on the inner one.
        assert_eq!(inner_cancels.load(SeqCst), calls.load(SeqCst));
    });
}

#[test]
fn cancel_racing_the_fire_of_a_root_with_a_canceller() {
    reports(); // the inner Deferred, dropped unfired when the root is cancelled, reports here
    // As above, but the root has a canceller. The cancel takes the canceller and runs it outside
    // the lock; a result that lands from another thread while it runs wins (the canceller's own
    // fire would win the same way, as in Twisted). The cancel is not spent on the root's
    // canceller then: it goes on to the step, so the Deferred the step returns is cancelled.
    model(PREEMPTIONS, || {
        let (calls, root_cancels, inner_cancels) = (counter(), counter(), counter());
        let probe = Probe::new();
        let (d, resolver) = cancellable(&root_cancels);
        let (inner, inner_resolver) = cancellable(&inner_cancels);
        let step_calls = calls.clone();
        let d = d.add_callback(move |x| {
            step_calls.fetch_add(1, SeqCst);
            inner.add_callback(move |y| Ok(x + y))
        });
        let handle = d.cancel_handle();
        probe.finish(d);
        let firer = thread::spawn(move || resolver.callback(1));
        handle.cancel();
        firer.join().unwrap();
        drop(inner_resolver);
        assert!(root_cancels.load(SeqCst) + inner_cancels.load(SeqCst) >= 1);
        assert_eq!(probe.outcome(), Outcome::Cancelled);
        // The step ran iff the root fired first; then the cancel landed on the inner one.
        assert_eq!(inner_cancels.load(SeqCst), calls.load(SeqCst));
    });
}

#[test]
fn a_cancel_landing_while_the_roots_canceller_runs_leaves_its_answer() {
    // Two threads cancel a root whose canceller fires it with a value. Whichever cancel runs
    // the canceller, the other (landing while it runs, or after it answered) leaves the root to
    // it: the chain ends with the canceller's answer, and the canceller runs once.
    model(PREEMPTIONS, || {
        let cancels = counter();
        let slot: Arc<Mutex<Option<deferred_core::Resolver<u32>>>> = Arc::new(Mutex::new(None));
        let (in_canceller, seen) = (slot.clone(), cancels.clone());
        let (d, resolver) = Deferred::<u32>::with_canceller(move || {
            seen.fetch_add(1, SeqCst);
            let resolver = in_canceller.lock().unwrap().take();
            if let Some(resolver) = resolver {
                resolver.callback(7);
            }
        });
        *slot.lock().unwrap() = Some(resolver);
        let probe = Probe::new();
        let handle = d.cancel_handle();
        let other = handle.clone();
        probe.finish(d);
        let canceller = thread::spawn(move || other.cancel());
        handle.cancel();
        canceller.join().unwrap();
        assert_eq!(cancels.load(SeqCst), 1);
        assert_eq!(probe.outcome(), Outcome::Ok(7));
    });
}

// ---------------------------------------------------------------------------------------------
// The one-link pending chain: stages added to the link that runs them, a run that yields to the
// thread's queue, a cancel remembered while stages run, and the end's listener.

/// A callback that logs `index` in `order` and adds `n`.
fn logger(
    order: &Arc<Mutex<Vec<usize>>>,
    index: usize,
    n: u32,
) -> impl FnOnce(u32) -> Result<u32, Failure> + Send + use<> {
    let order = order.clone();
    move |x| {
        order.lock().unwrap().push(index);
        Ok(x + n)
    }
}

#[test]
fn stages_added_while_another_thread_runs_them() {
    // The firing thread runs the first stage while the main thread appends three more (and the
    // probe's) to the same link: each lands in `stages` while the run is on, or is run at once
    // by the adding thread once the chain has fired. All run once, in the order added.
    model(PREEMPTIONS, || {
        let order = Arc::new(Mutex::new(Vec::new()));
        let probe = Probe::new();
        let (d, resolver) = Deferred::<u32>::pending();
        let d = d.add_callback(logger(&order, 0, 1));
        let firer = thread::spawn(move || resolver.callback(1));
        let d = d
            .add_callback(logger(&order, 1, 10))
            .add_callback(logger(&order, 2, 100))
            .add_callback(logger(&order, 3, 1000));
        probe.finish(d);
        firer.join().unwrap();
        assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3]);
        assert_eq!(probe.outcome(), Outcome::Ok(1112));
    });
}

#[test]
fn stages_a_waiting_run_puts_back_stay_before_those_added_meanwhile() {
    // The firing thread takes the stages it finds at once (`Chain::drive_all`); the second
    // returns a pending Deferred, so the run puts the ones after it back in the list, while the
    // main thread appends another: the stages put back still run first, once the Deferred fires.
    model(PREEMPTIONS, || {
        let order = Arc::new(Mutex::new(Vec::new()));
        let probe = Probe::new();
        let (d, resolver) = Deferred::<u32>::pending();
        let (inner, inner_resolver) = Deferred::<u32>::pending();
        let waits = order.clone();
        let d = d
            .add_callback(logger(&order, 0, 1))
            .add_callback(move |x| {
                waits.lock().unwrap().push(1);
                inner.add_callback(move |y| Ok(x + y))
            })
            .add_callback(logger(&order, 2, 100));
        let firer = thread::spawn(move || resolver.callback(1));
        let d = d.add_callback(logger(&order, 3, 1000));
        probe.finish(d);
        firer.join().unwrap();
        inner_resolver.callback(10);
        assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3]);
        assert_eq!(probe.outcome(), Outcome::Ok(1112));
    });
}

/// A step that counts its calls and returns `inner` (the chain waits on it).
fn wait_on(
    calls: &Arc<AtomicUsize>,
    inner: Deferred<u32>,
) -> impl FnOnce(u32) -> Deferred<u32> + Send + use<> {
    let calls = calls.clone();
    move |x| {
        calls.fetch_add(1, SeqCst);
        inner.add_callback(move |y| Ok(x + y))
    }
}

#[test]
fn cancel_while_stages_run_reaches_a_later_stages_deferred() {
    reports(); // the inner Deferred, dropped unfired when the root is cancelled, reports here
    // The root fires on one thread; its first stage returns a value, its second a pending
    // Deferred nobody fires. A cancel from the end lands before the root fires (the root fails),
    // while either stage runs (remembered for the run: the second stage's Deferred is cancelled
    // at once), or while the chain waits on that Deferred (the walk reaches it).
    model(PREEMPTIONS, || {
        let (first, second, inner_cancels) = (counter(), counter(), counter());
        let probe = Probe::new();
        let (d, resolver) = Deferred::<u32>::pending();
        let (inner, inner_resolver) = cancellable(&inner_cancels);
        let d = d
            .add_callback(adder(&first, 1))
            .add_callback(wait_on(&second, inner));
        let handle = d.cancel_handle();
        probe.finish(d);
        let firer = thread::spawn(move || resolver.callback(1));
        handle.cancel();
        firer.join().unwrap();
        drop(inner_resolver); // had the cancel been lost, the chain would fail with NeverFired
        assert_eq!(probe.outcome(), Outcome::Cancelled);
        // Both stages ran iff the root fired first; then the cancel landed on the inner one.
        assert_eq!(first.load(SeqCst), second.load(SeqCst));
        assert_eq!(inner_cancels.load(SeqCst), second.load(SeqCst));
    });
}

#[test]
fn cancel_while_stages_run_races_the_inner_deferreds_fire() {
    // As above, but the inner Deferred is fired by a third thread: the chain may complete before
    // the cancel reaches anything it could stop (then nothing is cancelled that matters: the
    // chain ends with its value), or the cancel fails the root or the inner Deferred.
    model(PREEMPTIONS, || {
        let (first, second, inner_cancels) = (counter(), counter(), counter());
        let probe = Probe::new();
        let (d, resolver) = Deferred::<u32>::pending();
        let (inner, inner_resolver) = cancellable(&inner_cancels);
        let d = d
            .add_callback(adder(&first, 1))
            .add_callback(wait_on(&second, inner));
        let handle = d.cancel_handle();
        probe.finish(d);
        let t1 = thread::spawn(move || resolver.callback(1));
        let t2 = thread::spawn(move || inner_resolver.callback(10));
        handle.cancel();
        t1.join().unwrap();
        t2.join().unwrap();
        assert!(inner_cancels.load(SeqCst) <= 1);
        assert_eq!(first.load(SeqCst), second.load(SeqCst));
        match probe.outcome() {
            // The inner canceller may have run and lost its race with the inner fire.
            Outcome::Ok(12) => assert_eq!(second.load(SeqCst), 1),
            Outcome::Cancelled => assert_eq!(inner_cancels.load(SeqCst), second.load(SeqCst)),
            other => panic!("not an allowed outcome: {other:?}"),
        }
    });
}

#[test]
fn cancel_while_a_stage_runs_survives_an_inner_deferred_that_already_fired() {
    reports(); // the inner Deferred, dropped unfired when the root is cancelled, reports here
    // The first stage returns a pending handle whose chain has already fired (the chain waits on
    // it, and its result is forwarded at once); the second returns a Deferred nobody fires. A
    // cancel remembered while the first stage runs must not be spent on the fired one: "the
    // next Deferred a step of this run returns" is the second stage's, which must be cancelled.
    model(PREEMPTIONS, || {
        let (first, second, inner_cancels) = (counter(), counter(), counter());
        let probe = Probe::new();
        let (ready, ready_resolver) = Deferred::<u32>::pending();
        ready_resolver.callback(10); // `ready` is still a pending handle: its link has fired
        let (inner, inner_resolver) = cancellable(&inner_cancels);
        let (d, resolver) = Deferred::<u32>::pending();
        let calls = first.clone();
        let d = d
            .add_callback(move |_| {
                calls.fetch_add(1, SeqCst);
                ready // as it is: a step added to it would run at once and give a fired Deferred
            })
            .add_callback(wait_on(&second, inner));
        let handle = d.cancel_handle();
        probe.finish(d);
        let firer = thread::spawn(move || resolver.callback(1));
        handle.cancel();
        firer.join().unwrap();
        drop(inner_resolver); // had the cancel been lost, the chain would fail with NeverFired
        assert_eq!(probe.outcome(), Outcome::Cancelled);
        assert_eq!(first.load(SeqCst), second.load(SeqCst));
        assert_eq!(inner_cancels.load(SeqCst), second.load(SeqCst));
    });
}

#[test]
fn cancel_landing_while_the_inner_chain_runs_its_stages_is_not_lost() {
    reports(); // the inner Deferred, dropped unfired when the root is cancelled, reports here
    // The outer chain waits on `mid`, whose own stage runs on another thread when its root
    // fires; a later outer stage returns a Deferred nobody fires. A cancel of the outer chain
    // lands on `mid`'s root (mid fails), on `mid` while its stage runs, on `mid`'s result in
    // transit (remembered by the outer chain), or on the later Deferred. It must never be lost.
    model(PREEMPTIONS, || {
        let (mid_calls, second, inner_cancels) = (counter(), counter(), counter());
        let probe = Probe::new();
        let (mid, mid_resolver) = Deferred::<u32>::pending();
        let mid = mid.add_callback(adder(&mid_calls, 10));
        let (inner, inner_resolver) = cancellable(&inner_cancels);
        let (d, resolver) = Deferred::<u32>::pending();
        let d = d
            .add_callback(move |_| mid)
            .add_callback(wait_on(&second, inner));
        let handle = d.cancel_handle();
        probe.finish(d);
        resolver.callback(1); // the outer chain now waits on `mid`
        let firer = thread::spawn(move || mid_resolver.callback(100));
        handle.cancel();
        firer.join().unwrap();
        drop(inner_resolver); // had the cancel been lost, the chain would fail with NeverFired
        assert_eq!(probe.outcome(), Outcome::Cancelled);
        assert_eq!(inner_cancels.load(SeqCst), second.load(SeqCst));
    });
}

#[test]
fn resolver_fired_from_a_stage_yields_while_a_stage_is_added() {
    // A's first stage fires B's Resolver: B's delivery is queued on the firing thread, and A's
    // run stops after that stage and re-queues itself behind B. Meanwhile the main thread
    // appends a stage to A (while it runs, while it waits in the queue, or once it has fired).
    model(PREEMPTIONS, || {
        let order = Arc::new(Mutex::new(Vec::new()));
        let (a_probe, b_probe) = (Probe::new(), Probe::new());
        let (a, a_resolver) = Deferred::<u32>::pending();
        let (b, b_resolver) = Deferred::<u32>::pending();
        b_probe.finish(b.add_callback(logger(&order, 1, 0)));
        let log = order.clone();
        let a = a
            .add_callback(move |x| {
                log.lock().unwrap().push(0);
                b_resolver.callback(x * 2);
                Ok(x)
            })
            .add_callback(logger(&order, 2, 1));
        let firer = thread::spawn(move || a_resolver.callback(21));
        a_probe.finish(a.add_callback(logger(&order, 3, 100)));
        firer.join().unwrap();
        // B's stage runs as soon as A's first stage returns, before A's second.
        assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3]);
        assert_eq!(a_probe.outcome(), Outcome::Ok(122));
        assert_eq!(b_probe.outcome(), Outcome::Ok(42));
    });
}

#[test]
fn poll_then_add_callback_races_fire() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    // A task polls the chain (its waker is registered), then appends a stage to it and polls the
    // new end, while another thread fires the root. The stage runs once, and the result reaches
    // the new end: at once, or by a wake that the next poll answers.
    model(PREEMPTIONS, || {
        let calls = counter();
        let (mut d, resolver) = Deferred::<u32>::pending();
        let firer = thread::spawn(move || resolver.callback(3));
        let first_wakes = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(first_wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let result = match std::pin::Pin::new(&mut d).poll(&mut cx) {
            Poll::Ready(result) => {
                firer.join().unwrap();
                assert_eq!(result.unwrap(), 3);
                return;
            }
            Poll::Pending => {
                let mut d = d.add_callback(adder(&calls, 1));
                let wakes = Arc::new(CountingWaker(AtomicUsize::new(0)));
                let waker = Waker::from(wakes.clone());
                let mut cx = Context::from_waker(&waker);
                let polled = std::pin::Pin::new(&mut d).poll(&mut cx);
                firer.join().unwrap();
                match polled {
                    Poll::Ready(result) => result,
                    Poll::Pending => {
                        assert_eq!(
                            wakes.0.load(SeqCst),
                            1,
                            "the new end's waker was not woken by the fire"
                        );
                        match std::pin::Pin::new(&mut d).poll(&mut cx) {
                            Poll::Ready(result) => result,
                            Poll::Pending => panic!("woken, but the result is not there"),
                        }
                    }
                }
            }
        };
        assert_eq!(result.unwrap(), 4);
        assert_eq!(calls.load(SeqCst), 1);
        // The old end's waker is woken only if the chain fired before the stage was added.
        assert!(first_wakes.0.load(SeqCst) <= 1);
    });
}

#[test]
fn unhandled_inner_failure_reported_once_when_the_end_is_dropped() {
    reports();
    // The chain waits on an inner Deferred that fails on another thread while the root fires on
    // a third and the main thread drops the end: the failure skips the last stage and is
    // reported exactly once (by whichever thread parks the chain, or by the drop).
    model(PREEMPTIONS, || {
        let message = unique_message("dropped while waiting");
        let (waits, after) = (counter(), counter());
        let (d, resolver) = Deferred::<u32>::pending();
        let (inner, inner_resolver) = Deferred::<u32>::pending();
        let d = d
            .add_callback(wait_on(&waits, inner))
            .add_callback(adder(&after, 1));
        let failure = Failure::msg(message.clone());
        let t1 = thread::spawn(move || resolver.callback(1));
        let t2 = thread::spawn(move || inner_resolver.errback(failure));
        drop(d);
        t1.join().unwrap();
        t2.join().unwrap();
        assert_eq!(waits.load(SeqCst), 1);
        assert_eq!(after.load(SeqCst), 0);
        assert_eq!(reported(&message), 1);
    });
}

/// The one timer a [`HandClock`] holds.
type Timer = Arc<Mutex<Option<Box<dyn FnOnce() + Send>>>>;

/// A clock with one timer, which a model's thread runs by hand (a timer thread of a real clock).
#[derive(Clone)]
struct HandClock {
    call: Timer,
}

impl HandClock {
    fn new() -> HandClock {
        HandClock {
            call: Arc::new(Mutex::new(None)),
        }
    }

    /// The timer thread: runs the call unless it was cancelled first.
    fn run_timer(&self) {
        let call = self.call.lock().unwrap().take();
        if let Some(call) = call {
            call();
        }
    }
}

impl deferred_core::Clock for HandClock {
    fn call_later(
        &self,
        _delay: std::time::Duration,
        call: Box<dyn FnOnce() + Send>,
    ) -> deferred_core::DelayedCall {
        *self.call.lock().unwrap() = Some(call);
        let slot = self.call.clone();
        deferred_core::DelayedCall::new(move || {
            let call = slot.lock().unwrap().take();
            drop(call);
        })
    }
}

#[test]
fn timeout_never_cancels_a_step_added_after_it() {
    // add_timeout's documented contract: only the steps added before it are timed, and a result
    // that reaches it first means nothing later is ever cancelled by the timer. The timer runs
    // on its own thread (as a real clock's would) while the root fires on another; the step
    // added after the timeout returns a Deferred that the main thread fires after both joined.
    model(PREEMPTIONS, || {
        let (covered, later, inner_cancels) = (counter(), counter(), counter());
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let clock = HandClock::new();
        let inner_resolver = Arc::new(Mutex::new(None));
        let (d, resolver) = Deferred::<u32>::pending();
        let (ic, slot, calls) = (inner_cancels.clone(), inner_resolver.clone(), later.clone());
        let end = d
            .add_callback(adder(&covered, 1))
            .add_timeout(std::time::Duration::from_secs(1), &clock)
            .add_callback(move |x| {
                calls.fetch_add(1, SeqCst);
                let (inner, r) = cancellable(&ic);
                *slot.lock().unwrap() = Some(r);
                inner.add_callback(move |y| Ok(x + y))
            });
        let seen = outcomes.clone();
        drop(end.add_both(move |result: Result<u32, Failure>| {
            let outcome = match result {
                Err(f) if f.is::<deferred_core::TimedOut>() => "timed out".to_owned(),
                other => format!("{:?}", Outcome::of(other)),
            };
            seen.lock().unwrap().push(outcome);
            Ok::<(), Failure>(())
        }));
        let firer = thread::spawn(move || resolver.callback(1));
        let timer = {
            let clock = clock.clone();
            thread::spawn(move || clock.run_timer())
        };
        firer.join().unwrap();
        timer.join().unwrap();
        let inner_resolver = inner_resolver.lock().unwrap().take();
        if let Some(r) = inner_resolver {
            r.callback(10);
        }
        let outcomes = outcomes.lock().unwrap();
        assert_eq!(outcomes.len(), 1, "the last step must run exactly once");
        match outcomes[0].as_str() {
            // The deadline passed before the result reached the timeout's step.
            "timed out" => assert_eq!(later.load(SeqCst), 0),
            // The result came first: the later step's Deferred is never the timer's to cancel.
            "Ok(12)" => {
                assert_eq!(covered.load(SeqCst), 1);
                assert_eq!(inner_cancels.load(SeqCst), 0);
            }
            other => panic!("not an allowed outcome: {other} (the timer cancelled a later step)"),
        }
    });
}

/// A waker whose `Drop` cancels a chain: user code, which must not run under the chain's lock.
struct CancelsOnDrop(deferred_core::CancelHandle);

impl std::task::Wake for CancelsOnDrop {
    fn wake(self: Arc<Self>) {}
}

impl Drop for CancelsOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

#[test]
fn a_dropped_end_drops_its_waker_outside_the_lock() {
    use std::future::Future;
    use std::task::{Context, Waker};
    // A task polls a pending chain, then drops it (a `select!` that lost): the waker left in the
    // link is dropped, and its `Drop` is user code. Run under the link's lock it would deadlock
    // (here: cancel, which locks the same link), as the rule "no user code under a lock" forbids.
    model(PREEMPTIONS, || {
        let (mut d, resolver) = Deferred::<u32>::pending();
        let waker = Waker::from(Arc::new(CancelsOnDrop(d.cancel_handle())));
        let polled = std::pin::Pin::new(&mut d).poll(&mut Context::from_waker(&waker));
        assert!(polled.is_pending());
        drop(waker); // the link holds the only clone now
        let firer = thread::spawn(move || resolver.callback(1));
        drop(d);
        firer.join().unwrap();
    });
}

/// The chain's own cancel handle, put where its steps can reach it once the chain is built.
type HandleSlot = Arc<Mutex<Option<deferred_core::CancelHandle>>>;

fn cancel_from(slot: &HandleSlot) {
    let handle = slot.lock().unwrap().clone();
    handle
        .expect("the handle is set before the root fires")
        .cancel();
}

#[test]
fn cancel_from_a_stage_survives_an_inner_deferred_that_already_fired() {
    reports();
    // One thread, one interleaving: the form of the race above that always happens. The first
    // stage cancels its own chain (remembered: the chain is running) and returns a pending
    // handle whose chain has fired; the second returns a Deferred nobody fires.
    model(PREEMPTIONS, || {
        let inner_cancels = counter();
        let probe = Probe::new();
        let handle: HandleSlot = Arc::new(Mutex::new(None));
        let (ready, ready_resolver) = Deferred::<u32>::pending();
        ready_resolver.callback(10);
        let (inner, inner_resolver) = cancellable(&inner_cancels);
        let (d, resolver) = Deferred::<u32>::pending();
        let in_step = handle.clone();
        let d = d
            .add_callback(move |_| {
                cancel_from(&in_step);
                ready
            })
            .add_callback(move |x| inner.add_callback(move |y| Ok(x + y)));
        *handle.lock().unwrap() = Some(d.cancel_handle());
        probe.finish(d);
        resolver.callback(1);
        drop(inner_resolver); // the cancel was lost if the chain fails with NeverFired
        assert_eq!(probe.outcome(), Outcome::Cancelled);
        assert_eq!(inner_cancels.load(SeqCst), 1);
    });
}

#[test]
fn cancel_from_the_inner_chains_stage_reaches_the_outer_chains_next_deferred() {
    reports();
    // One thread: the outer chain waits on `mid`; `mid`'s own stage cancels the outer chain
    // while it runs (the walk goes from the outer chain to `mid`, which is running: remembered
    // there), then returns a value; the outer chain's next stage returns a Deferred nobody
    // fires. Had the cancel landed a moment later (mid fired, its result in transit), the outer
    // chain would have remembered it and cancelled that Deferred.
    model(PREEMPTIONS, || {
        let inner_cancels = counter();
        let probe = Probe::new();
        let handle: HandleSlot = Arc::new(Mutex::new(None));
        let (mid, mid_resolver) = Deferred::<u32>::pending();
        let in_step = handle.clone();
        let mid = mid.add_callback(move |y| {
            cancel_from(&in_step);
            Ok(y)
        });
        let (inner, inner_resolver) = cancellable(&inner_cancels);
        let (d, resolver) = Deferred::<u32>::pending();
        let d = d
            .add_callback(move |_| mid)
            .add_callback(move |x| inner.add_callback(move |y| Ok(x + y)));
        *handle.lock().unwrap() = Some(d.cancel_handle());
        probe.finish(d);
        resolver.callback(1); // the outer chain waits on `mid`
        mid_resolver.callback(100);
        drop(inner_resolver); // the cancel was lost if the chain fails with NeverFired
        assert_eq!(probe.outcome(), Outcome::Cancelled);
        assert_eq!(inner_cancels.load(SeqCst), 1);
    });
}

/// A step after `add_timeout` that returns a Deferred whose resolver it leaves in `slot`.
fn later_step(
    cancels: &Arc<AtomicUsize>,
    slot: &Arc<Mutex<Option<deferred_core::Resolver<u32>>>>,
) -> impl FnOnce(u32) -> Deferred<u32> + Send + use<> {
    let (cancels, slot) = (cancels.clone(), slot.clone());
    move |x| {
        let (inner, resolver) = cancellable(&cancels);
        *slot.lock().unwrap() = Some(resolver);
        inner.add_callback(move |y| Ok(x + y))
    }
}

#[test]
fn a_timer_that_runs_late_does_not_cancel_a_step_added_after_the_timeout() {
    // One thread: a real clock's timer thread has taken the call off its queue (so
    // `DelayedCall::cancel` from the timeout's step is too late to stop it) but runs it only
    // after the result went through the timeout's step and a later step returned a Deferred.
    model(PREEMPTIONS, || {
        let inner_cancels = counter();
        let probe = Probe::new();
        let clock = HandClock::new();
        let slot = Arc::new(Mutex::new(None));
        let (d, resolver) = Deferred::<u32>::pending();
        let d = d
            .add_timeout(std::time::Duration::from_secs(1), &clock)
            .add_callback(later_step(&inner_cancels, &slot));
        probe.finish(d);
        let late = clock.call.lock().unwrap().take().expect("scheduled");
        resolver.callback(1); // in time: the result passes the timeout's step
        late(); // the deadline "passes" now: it must not reach the later step
        let inner_resolver = slot.lock().unwrap().take();
        inner_resolver.expect("the later step ran").callback(10);
        assert_eq!(probe.outcome(), Outcome::Ok(11));
        assert_eq!(inner_cancels.load(SeqCst), 0);
    });
}

#[test]
fn a_deadline_passing_while_a_covered_step_runs_does_not_cancel_a_later_step() {
    // One thread: the deadline passes while the timed (covered) step runs: its cancel finds the
    // chain running and is remembered. The covered step returns a value, so the timeout's step
    // passes it on (Twisted's `onTimeoutCancel` keeps a success); the step added after the
    // timeout is not timed, and its Deferred must not be cancelled by the timer.
    model(PREEMPTIONS, || {
        let inner_cancels = counter();
        let probe = Probe::new();
        let clock = HandClock::new();
        let slot = Arc::new(Mutex::new(None));
        let (d, resolver) = Deferred::<u32>::pending();
        let timer = clock.clone();
        let d = d
            .add_callback(move |x| {
                timer.run_timer(); // slow work: the deadline passes meanwhile
                Ok(x)
            })
            .add_timeout(std::time::Duration::from_secs(1), &clock)
            .add_callback(later_step(&inner_cancels, &slot));
        probe.finish(d);
        resolver.callback(1);
        let inner_resolver = slot.lock().unwrap().take();
        inner_resolver.expect("the later step ran").callback(10);
        assert_eq!(probe.outcome(), Outcome::Ok(11));
        assert_eq!(inner_cancels.load(SeqCst), 0);
    });
}

#[test]
fn a_step_returning_a_spent_deferred_fails_the_chain() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    // A step returns a Deferred that was already polled to completion (a user mistake, in safe
    // code). Whatever the chain makes of it, the mistake must not escape the Resolver that fired
    // the root (a thread that only fired a Resolver would panic), nor strand the chain (the
    // stages after it never running, its end never firing): rule 4 makes it the next failure.
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload.downcast_ref::<String>().map(String::as_str);
        let message = message.or_else(|| payload.downcast_ref::<&str>().copied());
        if !message.is_some_and(|m| m.contains("already taken")) {
            default(info);
        }
    }));
    model(PREEMPTIONS, || {
        let probe = Probe::new();
        let (mut spent, spent_resolver) = Deferred::<u32>::pending();
        spent_resolver.callback(5);
        let waker = Waker::from(Arc::new(CountingWaker(AtomicUsize::new(0))));
        let polled = std::pin::Pin::new(&mut spent).poll(&mut Context::from_waker(&waker));
        assert!(matches!(polled, Poll::Ready(Ok(5))));
        let (d, resolver) = Deferred::<u32>::pending();
        probe.finish(d.add_callback(move |_| spent));
        let fired = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| resolver.callback(1)));
        // Checked together, so that a failure says which of the two went wrong.
        let outcomes = probe.outcomes.lock().unwrap().clone();
        assert!(
            fired.is_ok()
                && matches!(&outcomes[..], [Outcome::Other(m)] if m.contains("already taken")),
            "escaped the Resolver: {}; outcomes: {outcomes:?}",
            fired.is_err()
        );
    });
}

/// Two chains whose steps return each other's end, their roots fired from two threads while a
/// third cancels one of them: whatever the interleaving — the cancel lands before the cycle
/// forms, while a step runs, or on the formed cycle (the walk must notice it is going round and
/// break the wait that closes it) — the cancel returns and both chains go on exactly once.
#[test]
fn a_cycle_formed_by_two_threads_while_a_third_cancels() {
    model(PREEMPTIONS, || {
        let slots: [Arc<Mutex<Option<Deferred<u32>>>>; 2] =
            [Arc::new(Mutex::new(None)), Arc::new(Mutex::new(None))];
        let went_on = Arc::new(AtomicUsize::new(0));
        let mut resolvers = Vec::new();
        let mut handles = Vec::new();
        for i in 0..2 {
            let (root, resolver) = Deferred::<u32>::pending();
            let next = slots[(i + 1) % 2].clone();
            let counted = went_on.clone();
            let end = root
                .add_callback(move |_| match next.lock().unwrap().take() {
                    Some(end) => end,
                    // The other chain's end was taken by its own step's cancel path already.
                    None => Deferred::succeed(0),
                })
                .add_both(move |result| {
                    counted.fetch_add(1, SeqCst);
                    Ok::<u32, Failure>(result.unwrap_or(0))
                });
            handles.push(end.cancel_handle());
            *slots[i].lock().unwrap() = Some(end);
            resolvers.push(resolver);
        }
        let firing: Vec<_> = resolvers
            .into_iter()
            .map(|resolver| thread::spawn(move || resolver.callback(1)))
            .collect();
        handles[0].cancel();
        for thread in firing {
            thread.join().unwrap();
        }
        // A cycle formed after the cancel was spent: a second cancel must break it.
        handles[1].cancel();
        assert_eq!(went_on.load(SeqCst), 2, "each chain goes on exactly once");
        for slot in &slots {
            drop(slot.lock().unwrap().take());
        }
    });
}

/// The producer sets the canceller (`Resolver::set_canceller`, once its work has started) while
/// another thread cancels the chain: whichever comes first, the canceller runs exactly once —
/// by the cancel, or at once in `set_canceller` when the cancel came first — and the chain
/// ends cancelled.
#[test]
fn a_canceller_set_while_another_thread_cancels_runs_once() {
    model(PREEMPTIONS, || {
        let calls = Arc::new(AtomicUsize::new(0));
        let (d, resolver) = Deferred::<u32>::pending();
        let probe = Probe::new();
        let handle = d.cancel_handle();
        probe.finish(d);
        let counted = calls.clone();
        let producer = thread::spawn(move || {
            resolver.set_canceller(move || {
                counted.fetch_add(1, SeqCst);
            });
            resolver
        });
        handle.cancel();
        let resolver = producer.join().unwrap();
        assert_eq!(calls.load(SeqCst), 1, "the canceller runs exactly once");
        assert_eq!(probe.outcome(), Outcome::Cancelled);
        resolver.callback(1); // ignored: the chain was cancelled
    });
}

// ---- the helpers' races: SharedResult, DeferredQueue -------------------------------------------

#[test]
fn shared_result_consumers_made_while_the_source_fires_on_another_thread() {
    model(PREEMPTIONS, || {
        let (source, resolver) = Deferred::<u32>::pending();
        let shared = deferred_core::SharedResult::new(source);
        let early = Probe::new();
        early.finish(shared.consumer());
        let firing = thread::spawn(move || resolver.callback(7));
        // Made while the source may be firing: before it (waits), or after it (fired at once).
        let racing = [Probe::new(), Probe::new()];
        for probe in &racing {
            probe.finish(shared.consumer());
        }
        firing.join().unwrap();
        let late = Probe::new();
        late.finish(shared.consumer());
        for probe in racing.iter().chain([&early, &late]) {
            assert_eq!(
                probe.outcome(),
                Outcome::Ok(7),
                "every consumer gets it once"
            );
        }
        assert!(shared.is_fired());
        assert_eq!(shared.waiting(), 0);
    });
}

#[test]
fn shared_result_last_consumer_cancelled_while_the_source_fires() {
    model(PREEMPTIONS, || {
        let cancels = counter();
        let counted = cancels.clone();
        let (source, resolver) = Deferred::<u32>::with_canceller(move || {
            counted.fetch_add(1, SeqCst);
        });
        let shared = deferred_core::SharedResult::new(source);
        let consumer = shared.consumer();
        let handle = consumer.cancel_handle();
        drop(shared); // no more consumers: cancelling this one cancels the source
        let probe = Probe::new();
        probe.finish(consumer);
        let firing = thread::spawn(move || resolver.callback(7));
        handle.cancel();
        firing.join().unwrap();
        let outcome = probe.outcome();
        assert!(
            outcome == Outcome::Ok(7) || outcome == Outcome::Cancelled,
            "{outcome:?}"
        );
        assert!(
            cancels.load(SeqCst) <= 1,
            "the source is cancelled at most once"
        );
    });
}

#[test]
fn queue_put_on_one_thread_get_on_another_in_order() {
    model(PREEMPTIONS, || {
        let queue = deferred_core::DeferredQueue::<u32>::new();
        let putter = queue.clone();
        let putting = thread::spawn(move || {
            putter.put(1).unwrap();
            putter.put(2).unwrap();
        });
        let (first, second) = (Probe::new(), Probe::new());
        first.finish(queue.get());
        second.finish(queue.get());
        putting.join().unwrap();
        assert_eq!(first.outcome(), Outcome::Ok(1), "first come, first served");
        assert_eq!(second.outcome(), Outcome::Ok(2));
        assert!(queue.is_empty());
        assert_eq!(queue.waiting(), 0);
    });
}

/// Fails: `put` pops the waiting get under the queue's lock and fires it after releasing the
/// lock; a cancel of that get landing in between runs the get's canceller (which finds the get
/// gone from the line, so does nothing), then fails the still-unfired get with `Cancelled`; the
/// `put`'s fire then comes to a fired Deferred and is ignored, and the item is lost: the get is
/// `Cancelled` and the queue is empty.
#[test]
fn queue_get_cancelled_while_an_item_is_put_on_another_thread_loses_no_item() {
    model(PREEMPTIONS, || {
        let queue = deferred_core::DeferredQueue::<u32>::new();
        let got = queue.get();
        let handle = got.cancel_handle();
        let probe = Probe::new();
        probe.finish(got);
        let putter = queue.clone();
        let putting = thread::spawn(move || putter.put(5).unwrap());
        handle.cancel();
        putting.join().unwrap();
        // The item went to the get (which then kept it) or stayed in the queue: never both,
        // never neither.
        match probe.outcome() {
            Outcome::Ok(5) => assert!(queue.is_empty()),
            Outcome::Cancelled => assert_eq!(queue.len(), 1),
            other => panic!("{other:?}"),
        }
        assert_eq!(queue.waiting(), 0);
    });
}

/// A get dropped on one thread while an item is put on another (a `tokio::select!` whose other
/// branch won): the put either reaches the get while it is still held (the item goes to it, and
/// back to the queue as the get is dropped unread) or finds it dropped and keeps the item,
/// decided under the get's lock. The model counts the item's drops: it is kept in the queue,
/// and never dropped.
#[test]
fn queue_get_dropped_while_an_item_is_put_on_another_thread_loses_no_item() {
    struct Item(std::sync::Arc<std::sync::atomic::AtomicUsize>);
    impl Drop for Item {
        fn drop(&mut self) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
    model(PREEMPTIONS, || {
        let drops = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let queue = deferred_core::DeferredQueue::<Item>::new();
        let got = queue.get();
        let putter = queue.clone();
        let item = Item(drops.clone());
        let putting = thread::spawn(move || {
            assert!(putter.put(item).is_ok());
        });
        drop(got);
        putting.join().unwrap();
        let dropped = drops.load(std::sync::atomic::Ordering::SeqCst);
        // Kept, whether it was handed to the get before it went or not.
        assert_eq!((queue.len(), dropped), (1, 0));
        assert_eq!(queue.waiting(), 0);
    });
}

/// The fan-in (`fan_in.rs`, under every combinator): two inputs of different types fired on two
/// threads while the join is being made on a third; each arrives once, in its place.
#[test]
fn join_of_inputs_fired_on_two_threads() {
    model(PREEMPTIONS, || {
        let (number, number_resolver) = Deferred::<u32>::pending();
        let (flag, flag_resolver) = Deferred::<bool>::pending();
        let firing_number = thread::spawn(move || number_resolver.callback(7));
        let firing_flag = thread::spawn(move || flag_resolver.callback(true));
        let probe = Probe::new();
        probe.finish(
            deferred_core::join((number, flag))
                .add_callback(|(number, flag)| Ok(if flag { number + 100 } else { number })),
        );
        firing_number.join().unwrap();
        firing_flag.join().unwrap();
        assert_eq!(probe.outcome(), Outcome::Ok(107));
    });
}

/// A join cancelled while an input fails on another thread: the first failure decides (the
/// input's, or a `Cancelled` from a canceller), each canceller runs at most once, and the
/// failures the outcome leaves out are dropped, not reported.
#[test]
fn join_cancelled_while_an_input_fails_on_another_thread() {
    reports();
    model(PREEMPTIONS, || {
        let message = unique_message("join input");
        let (first_cancels, second_cancels) = (counter(), counter());
        let (first, first_resolver) = cancellable(&first_cancels);
        let (second, _second_resolver) = cancellable(&second_cancels);
        let joined =
            deferred_core::join((first, second)).add_callback(|(a, b): (u32, u32)| Ok(a + b));
        let handle = joined.cancel_handle();
        let probe = Probe::new();
        probe.finish(joined);
        let failure = Failure::msg(message.clone());
        let failing = thread::spawn(move || first_resolver.errback(failure));
        handle.cancel();
        failing.join().unwrap();
        assert!(first_cancels.load(SeqCst) <= 1);
        assert_eq!(
            second_cancels.load(SeqCst),
            1,
            "the join cancels its pending inputs"
        );
        match probe.outcome() {
            Outcome::Cancelled => {}
            Outcome::Other(text) => assert_eq!(text, message),
            other => panic!("not an allowed outcome: {other:?}"),
        }
        assert_eq!(
            reported_by_this_test(),
            0,
            "a join consumes what it leaves out"
        );
    });
}

/// A combinator whose output is seen (it has a step) is decided by one input while another
/// input's producer asks whether anybody can see its result: the output fires, which reads as
/// closed, but it was seen, so the input stays open — its failure would be reported — and says
/// so once everything has settled.
#[test]
fn an_input_of_a_seen_combinator_is_open_after_another_decides_it() {
    reports();
    model(PREEMPTIONS, || {
        let message = unique_message("decided");
        let (a, a_resolver) = Deferred::<u32>::pending();
        let (b, b_resolver) = Deferred::<u32>::pending();
        let probe = Probe::new();
        probe.finish(
            deferred_core::gather_results([a, b]).add_callback(|values| Ok(values.len() as u32)),
        );
        let failure = Failure::msg(message.clone());
        let deciding = thread::spawn(move || b_resolver.errback(failure));
        let _ = a_resolver.is_closed();
        deciding.join().unwrap();
        assert!(
            !a_resolver.is_closed(),
            "the output was seen: its input is open"
        );
        match probe.outcome() {
            Outcome::Other(text) => assert!(text.contains(&message), "{text}"),
            other => panic!("not an allowed outcome: {other:?}"),
        }
        a_resolver.callback(1);
        assert_eq!(reported_by_this_test(), 0);
    });
}

/// `gather_results`: one input fails on one thread while another succeeds on a second; the
/// failure decides, whichever lands first, and nothing is reported.
#[test]
fn gather_results_of_a_failure_and_a_success_on_two_threads() {
    reports();
    model(PREEMPTIONS, || {
        let message = unique_message("gathered");
        let (ok, ok_resolver) = Deferred::<u32>::pending();
        let (bad, bad_resolver) = Deferred::<u32>::pending();
        let failure = Failure::msg(message.clone());
        let succeeding = thread::spawn(move || ok_resolver.callback(1));
        let failing = thread::spawn(move || bad_resolver.errback(failure));
        let probe = Probe::new();
        probe.finish(
            deferred_core::gather_results([ok, bad]).add_callback(|values| Ok(values.len() as u32)),
        );
        succeeding.join().unwrap();
        failing.join().unwrap();
        match probe.outcome() {
            Outcome::Other(text) => assert!(text.contains(&message), "{text}"),
            other => panic!("not an allowed outcome: {other:?}"),
        }
        assert_eq!(reported_by_this_test(), 0);
    });
}

/// `race`: two inputs succeed on two threads; the first to arrive wins, the other (cancelled,
/// or already fired) is dropped; each canceller runs at most once, nothing is reported.
#[test]
fn race_of_two_inputs_fired_on_two_threads() {
    reports();
    model(PREEMPTIONS, || {
        let (first_cancels, second_cancels) = (counter(), counter());
        let (first, first_resolver) = cancellable(&first_cancels);
        let (second, second_resolver) = cancellable(&second_cancels);
        let firing_first = thread::spawn(move || first_resolver.callback(1));
        let firing_second = thread::spawn(move || second_resolver.callback(2));
        let probe = Probe::new();
        probe.finish(
            deferred_core::race([first, second]).add_callback(|(index, value)| {
                assert_eq!(value, index as u32 + 1, "the winner's own value");
                Ok(value)
            }),
        );
        firing_first.join().unwrap();
        firing_second.join().unwrap();
        match probe.outcome() {
            Outcome::Ok(1) => assert_eq!(first_cancels.load(SeqCst), 0),
            Outcome::Ok(2) => assert_eq!(second_cancels.load(SeqCst), 0),
            other => panic!("not an allowed outcome: {other:?}"),
        }
        assert!(first_cancels.load(SeqCst) + second_cancels.load(SeqCst) <= 1);
        assert_eq!(reported_by_this_test(), 0);
    });
}

/// `map_err`: the chain fires on one thread while the converted Deferred is cancelled on
/// another. The conversion runs once, on whichever answer the chain gave (its value, or its
/// cancellation), and the converted Deferred has exactly that outcome; the canceller runs at
/// most once, and only if the cancel came before the fire; nothing is reported.
#[test]
fn map_err_fired_and_cancelled_on_two_threads() {
    reports();
    model(PREEMPTIONS, || {
        let (cancels, conversions) = (counter(), counter());
        let (source, resolver) = cancellable(&cancels);
        let converted_by = conversions.clone();
        let converted = source.map_err(move |failure: Failure| {
            converted_by.fetch_add(1, SeqCst);
            failure
        });
        let handle = converted.cancel_handle();
        let probe = Probe::new();
        probe.finish(converted);
        let firing = thread::spawn(move || resolver.callback(7));
        handle.cancel();
        firing.join().unwrap();
        match probe.outcome() {
            Outcome::Ok(7) => assert_eq!(conversions.load(SeqCst), 0),
            Outcome::Cancelled => {
                assert_eq!(conversions.load(SeqCst), 1);
                assert_eq!(cancels.load(SeqCst), 1);
            }
            other => panic!("not an allowed outcome: {other:?}"),
        }
        assert!(cancels.load(SeqCst) <= 1);
        assert_eq!(reported_by_this_test(), 0);
    });
}

/// `first_settled`: one input succeeds and the other fails, on two threads. Whichever fires
/// first decides, its value or its failure as it is; the other is cancelled unless it fired
/// already (its canceller runs at most once, the winner's never), and its answer is dropped:
/// nothing is reported.
#[test]
fn first_settled_of_a_success_and_a_failure_on_two_threads() {
    reports();
    model(PREEMPTIONS, || {
        let message = unique_message("settled first");
        let (ok_cancels, bad_cancels) = (counter(), counter());
        let (ok, ok_resolver) = cancellable(&ok_cancels);
        let (bad, bad_resolver) = cancellable(&bad_cancels);
        let failure = Failure::msg(message.clone());
        let succeeding = thread::spawn(move || ok_resolver.callback(1));
        let failing = thread::spawn(move || bad_resolver.errback(failure));
        let probe = Probe::new();
        probe.finish(
            deferred_core::first_settled([ok, bad]).add_callback(|(index, value)| {
                assert_eq!(index, 0, "only the first input succeeds");
                Ok(value)
            }),
        );
        succeeding.join().unwrap();
        failing.join().unwrap();
        match probe.outcome() {
            Outcome::Ok(1) => assert_eq!(ok_cancels.load(SeqCst), 0),
            Outcome::Other(text) => {
                assert_eq!(text, message);
                assert_eq!(bad_cancels.load(SeqCst), 0);
            }
            other => panic!("not an allowed outcome: {other:?}"),
        }
        assert!(ok_cancels.load(SeqCst) + bad_cancels.load(SeqCst) <= 1);
        assert_eq!(reported_by_this_test(), 0);
    });
}

/// `first_settled`: the output is cancelled on one thread while an input fires on another. The
/// first input's answer decides: its value (the cancel came too late, or the fire landed while
/// its canceller ran: Twisted's "canceller ran, then the result arrived"), or its `Cancelled`,
/// never the second input's, even when the first had fired as the cancel reached it and its
/// value had not arrived yet. Each canceller runs at most once, the second input's always;
/// nothing is reported.
#[test]
fn first_settled_cancelled_while_an_input_fires_on_another_thread() {
    reports();
    model(PREEMPTIONS, || {
        let (first_cancels, second_cancels) = (counter(), counter());
        let (first, first_resolver) = cancellable(&first_cancels);
        let (second, _second_resolver) = cancellable(&second_cancels);
        let output = deferred_core::first_settled([first, second]);
        let handle = output.cancel_handle();
        let probe = Probe::new();
        probe.finish(output.add_callback(|(index, value)| {
            assert_eq!(index, 0, "only the first input fires");
            Ok(value)
        }));
        let firing = thread::spawn(move || first_resolver.callback(5));
        handle.cancel();
        firing.join().unwrap();
        match probe.outcome() {
            Outcome::Ok(5) => {}
            Outcome::Cancelled => assert_eq!(first_cancels.load(SeqCst), 1),
            other => panic!("not an allowed outcome: {other:?}"),
        }
        assert!(first_cancels.load(SeqCst) <= 1);
        assert_eq!(
            second_cancels.load(SeqCst),
            1,
            "the other input is cancelled either way"
        );
        assert_eq!(reported_by_this_test(), 0);
    });
}

/// Permits taken out of acquires' Deferreds by their steps, to release later.
type Held = Arc<Mutex<Vec<Permit>>>;

/// Ends `acquired` with a step that keeps its permit in `held`, and records its outcome (0 for a
/// permit) with `probe`.
fn keep_permit(probe: &Probe, held: &Held, acquired: Deferred<Permit>) {
    let held = held.clone();
    probe.finish(acquired.add_callback(move |permit| {
        held.lock().unwrap().push(permit);
        Ok(0)
    }));
}

/// A `DeferredSemaphore` of one token, its permit, and the place the models' acquires keep
/// theirs in.
fn one_token_held() -> (DeferredSemaphore, Held, Permit) {
    let semaphore = DeferredSemaphore::new(1);
    let held: Held = Arc::new(Mutex::new(Vec::new()));
    keep_permit(&Probe::new(), &held, semaphore.acquire());
    let permit = held.lock().unwrap().pop().expect("the token was free");
    (semaphore, held, permit)
}

/// Releases the permits kept in `held`: the token is then free, nobody waits, and nothing was
/// reported.
fn all_released(semaphore: &DeferredSemaphore, held: &Held) {
    held.lock().unwrap().clear();
    assert_eq!((semaphore.available(), semaphore.waiting()), (1, 0));
    assert_eq!(reported_by_this_test(), 0);
}

/// A `DeferredSemaphore` of one token: a waiting acquire is cancelled on one thread while the
/// permit is released on another. The waiter either got the token (the release came first) or
/// fails with `Cancelled` and the token goes back: once every permit is released, the token is
/// free and nobody waits. Nothing is reported.
#[test]
fn semaphore_waiter_cancelled_while_the_permit_is_released_on_another_thread() {
    reports();
    model(PREEMPTIONS, || {
        let (semaphore, held, permit) = one_token_held();
        let waiter = semaphore.acquire();
        let handle = waiter.cancel_handle();
        let probe = Probe::new();
        keep_permit(&probe, &held, waiter);
        let releasing = thread::spawn(move || permit.release());
        handle.cancel();
        releasing.join().unwrap();
        match probe.outcome() {
            Outcome::Ok(0) => assert_eq!(held.lock().unwrap().len(), 1),
            Outcome::Cancelled => assert!(held.lock().unwrap().is_empty()),
            other => panic!("not an allowed outcome: {other:?}"),
        }
        all_released(&semaphore, &held);
    });
}

/// The same with two waiters, the first cancelled while the permit is released: the token is
/// never lost between them. Either the first got it (and the second gets it when the first's
/// permit is released), or the first is cancelled and the second gets it.
#[test]
fn semaphore_first_waiter_cancelled_while_the_permit_is_released_the_second_gets_it() {
    reports();
    model(PREEMPTIONS, || {
        let (semaphore, held, permit) = one_token_held();
        let first = semaphore.acquire();
        let handle = first.cancel_handle();
        let (first_probe, second_probe) = (Probe::new(), Probe::new());
        keep_permit(&first_probe, &held, first);
        keep_permit(&second_probe, &held, semaphore.acquire());
        let releasing = thread::spawn(move || permit.release());
        handle.cancel();
        releasing.join().unwrap();
        match first_probe.outcome() {
            Outcome::Ok(0) => {
                // The first holds the token; the second gets it when the first lets it go.
                assert_eq!(held.lock().unwrap().len(), 1);
                assert_eq!(semaphore.waiting(), 1);
                let first_permit = held.lock().unwrap().pop().unwrap();
                first_permit.release();
            }
            Outcome::Cancelled => {}
            other => panic!("not an allowed outcome: {other:?}"),
        }
        assert_eq!(
            second_probe.outcome(),
            Outcome::Ok(0),
            "the second waiter gets the token"
        );
        all_released(&semaphore, &held);
    });
}

/// A `DeferredSemaphore` of one token: an acquire is made on one thread while the permit is
/// released on another. A release that finds nobody waiting takes the lock once and is done;
/// the acquire gets the token whichever came first: queued before the release (the release
/// hands it over) or made after it (the token is free and nobody is ahead). Nothing is
/// reported, and the token is free once the permit is released.
#[test]
fn semaphore_acquire_while_the_permit_is_released_on_another_thread() {
    reports();
    model(PREEMPTIONS, || {
        let (semaphore, held, permit) = one_token_held();
        let releasing = thread::spawn(move || permit.release());
        let probe = Probe::new();
        keep_permit(&probe, &held, semaphore.acquire());
        releasing.join().unwrap();
        assert_eq!(
            probe.outcome(),
            Outcome::Ok(0),
            "the acquire gets the token, whichever came first"
        );
        assert_eq!(held.lock().unwrap().len(), 1);
        all_released(&semaphore, &held);
    });
}

// ---- the timed helpers on a `ManualClock`: its calls run on the thread that advances it -------

/// Counts the drops of what holds it: a function given to a helper is run or dropped, once.
struct DropCount(Arc<AtomicUsize>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// The Resolvers of the pending Deferreds a helper's function returned, kept unfired.
type Unfired = Arc<Mutex<Vec<deferred_core::Resolver<u32>>>>;

/// A function for a helper that counts its calls and returns a pending Deferred, whose
/// canceller counts in `cancels` and whose Resolver it keeps in `unfired`.
fn pending_call(
    calls: &Arc<AtomicUsize>,
    cancels: &Arc<AtomicUsize>,
    unfired: &Unfired,
) -> impl FnMut() -> Deferred<u32> + Send + use<> {
    let (calls, cancels, unfired) = (calls.clone(), cancels.clone(), unfired.clone());
    move || {
        calls.fetch_add(1, SeqCst);
        let (d, resolver) = cancellable(&cancels);
        unfired.lock().unwrap().push(resolver);
        d
    }
}

/// Advances `clock` by `secs` on a thread of its own (its calls run there).
fn advance_on_a_thread(clock: &ManualClock, secs: u64) -> thread::JoinHandle<()> {
    let clock = clock.clone();
    thread::spawn(move || clock.advance(Duration::from_secs(secs)))
}

/// `defer_later`: the clock reaches the call's time on one thread while the Deferred is
/// cancelled on another. The function runs at most once: the outcome is its value (the clock's
/// call came first), or `Cancelled`, and then it never ran and was dropped (rule 2). Either way
/// the function is dropped once, the clock holds no call, and nothing is reported.
#[test]
fn defer_later_cancelled_while_the_clock_makes_its_call_on_another_thread() {
    reports();
    model(PREEMPTIONS, || {
        let (calls, drops) = (counter(), counter());
        let clock = ManualClock::new();
        let (ran, held) = (calls.clone(), DropCount(drops.clone()));
        let later = defer_later(&clock, Duration::from_secs(1), move || {
            let _held = held;
            ran.fetch_add(1, SeqCst);
            Ok(5)
        });
        assert_eq!(clock.pending(), 1);
        let handle = later.cancel_handle();
        let probe = Probe::new();
        probe.finish(later);
        let advancing = advance_on_a_thread(&clock, 1);
        handle.cancel();
        advancing.join().unwrap();
        match probe.outcome() {
            Outcome::Ok(5) => assert_eq!(calls.load(SeqCst), 1),
            Outcome::Cancelled => assert_eq!(calls.load(SeqCst), 0, "cancelled, yet it ran"),
            other => panic!("not an allowed outcome: {other:?}"),
        }
        assert_eq!(
            drops.load(SeqCst),
            1,
            "the function is run or dropped, once"
        );
        assert_eq!(clock.pending(), 0);
        assert_eq!(reported_by_this_test(), 0);
    });
}

/// `defer_later` whose function returns a pending Deferred: the cancel lands before the clock's
/// call (the function never runs), while the function runs on the clock's thread, or after it
/// returned (rule 3: the cancel reaches its Deferred). The Deferred always ends `Cancelled`,
/// and the function's Deferred, if it made one, is cancelled exactly once; the clock holds no
/// call; nothing is reported.
#[test]
fn defer_later_cancelled_while_its_function_runs_on_the_clocks_thread() {
    reports();
    model(PREEMPTIONS, || {
        let (calls, inner_cancels) = (counter(), counter());
        let unfired: Unfired = Arc::new(Mutex::new(Vec::new()));
        let clock = ManualClock::new();
        let later = defer_later(
            &clock,
            Duration::from_secs(1),
            pending_call(&calls, &inner_cancels, &unfired),
        );
        let handle = later.cancel_handle();
        let probe = Probe::new();
        probe.finish(later);
        let advancing = advance_on_a_thread(&clock, 1);
        handle.cancel();
        advancing.join().unwrap();
        assert_eq!(probe.outcome(), Outcome::Cancelled, "the cancel was lost");
        assert!(calls.load(SeqCst) <= 1);
        assert_eq!(
            inner_cancels.load(SeqCst),
            calls.load(SeqCst),
            "the function's Deferred is cancelled once"
        );
        assert_eq!(clock.pending(), 0);
        unfired.lock().unwrap().clear(); // too late: the Deferreds failed with `Cancelled`
        assert_eq!(reported_by_this_test(), 0);
    });
}

/// `retry` whose first attempt failed and whose second would return a pending Deferred: the
/// clock reaches the wait's end on one thread (the second attempt starts there) while the retry
/// is cancelled on another. The cancel stops the wait, or the attempt in flight, or one the
/// clock's thread is starting as it lands, as soon as it returns (rule 3): the retry always
/// ends `Cancelled`, the second attempt, if made, is cancelled exactly once, the clock holds no
/// wait, and nothing is reported.
#[test]
fn retry_cancelled_while_the_clock_starts_the_next_attempt_on_another_thread() {
    reports();
    model(PREEMPTIONS, || {
        let (attempts, inner_cancels) = (counter(), counter());
        let unfired: Unfired = Arc::new(Mutex::new(Vec::new()));
        let clock = ManualClock::new();
        let policy = RetryPolicy::exponential(Duration::from_secs(1))
            .jitter(0.0)
            .max_attempts(3);
        let mut pending = pending_call(&counter(), &inner_cancels, &unfired);
        let made = attempts.clone();
        let retried = retry(clock.clone(), policy, move || {
            if made.fetch_add(1, SeqCst) == 0 {
                Deferred::fail(Failure::msg("refused"))
            } else {
                pending()
            }
        });
        assert_eq!((attempts.load(SeqCst), clock.pending()), (1, 1));
        let handle = retried.cancel_handle();
        let probe = Probe::new();
        probe.finish(retried);
        let advancing = advance_on_a_thread(&clock, 1);
        handle.cancel();
        advancing.join().unwrap();
        assert_eq!(probe.outcome(), Outcome::Cancelled, "the cancel was lost");
        let attempts = attempts.load(SeqCst);
        assert!((1..=2).contains(&attempts), "{attempts} attempts");
        assert_eq!(
            inner_cancels.load(SeqCst),
            attempts - 1,
            "the second attempt is cancelled once"
        );
        assert_eq!(clock.pending(), 0);
        unfired.lock().unwrap().clear();
        assert_eq!(reported_by_this_test(), 0);
    });
}

/// `retry` giving up on the clock's thread (its second and last attempt fails there) while the
/// retry is cancelled on another. Either the `RetryError` is delivered (the cancel came after
/// it: it does nothing), or the retry fails with `Cancelled`: before the second attempt, with
/// nothing reported; during or after it, while the retry gives up, with exactly one failure
/// reported as unhandled (the second attempt's, or the `RetryError`: rule 3). The clock holds
/// no wait.
#[test]
fn retry_giving_up_on_the_clocks_thread_while_cancelled_on_another() {
    reports();
    model(PREEMPTIONS, || {
        let message = unique_message("retry refused");
        let before = reported_by_this_test();
        let attempts = counter();
        let clock = ManualClock::new();
        let policy = RetryPolicy::exponential(Duration::from_secs(1))
            .jitter(0.0)
            .max_attempts(2);
        let (made, refused) = (attempts.clone(), message.clone());
        let retried = retry(clock.clone(), policy, move || {
            made.fetch_add(1, SeqCst);
            Err::<u32, _>(Failure::msg(refused.clone()))
        });
        let handle = retried.cancel_handle();
        let probe = Probe::new();
        probe.finish(retried.add_errback(|failure| {
            let error = failure.trap::<RetryError>()?;
            assert_eq!((error.reason, error.attempts.len()), (GaveUp::Attempts, 2));
            Ok(0)
        }));
        let advancing = advance_on_a_thread(&clock, 1);
        handle.cancel();
        advancing.join().unwrap();
        let attempts = attempts.load(SeqCst);
        match probe.outcome() {
            Outcome::Ok(0) => {
                assert_eq!(attempts, 2);
                assert_eq!(reported_by_this_test() - before, 0);
            }
            Outcome::Cancelled if attempts == 1 => {
                assert_eq!(reported_by_this_test() - before, 0);
            }
            Outcome::Cancelled => {
                assert_eq!(attempts, 2);
                assert_eq!(
                    reported_by_this_test() - before,
                    1,
                    "the late failure is reported once"
                );
            }
            other => panic!("not an allowed outcome: {other:?}"),
        }
        assert_eq!(clock.pending(), 0);
    });
}

/// `retry` whose second attempt fails on the clock's thread, which then schedules the wait for
/// the third, while the retry is cancelled on another thread. The retry ends `Cancelled`; no
/// third attempt is made; the wait, whether scheduled before the cancel or after it, is not
/// left on the clock; at most the second attempt's failure is reported (when the cancel landed
/// after the attempt started and before the retry took its failure in: nobody else sees it,
/// rule 3).
#[test]
fn retry_cancelled_while_the_clock_schedules_the_next_wait_on_another_thread() {
    reports();
    model(PREEMPTIONS, || {
        let message = unique_message("retry refused");
        let before = reported_by_this_test();
        let attempts = counter();
        let clock = ManualClock::new();
        let policy = RetryPolicy::exponential(Duration::from_secs(1))
            .jitter(0.0)
            .max_attempts(3);
        let (made, refused) = (attempts.clone(), message.clone());
        let retried = retry(clock.clone(), policy, move || {
            made.fetch_add(1, SeqCst);
            Err::<u32, _>(Failure::msg(refused.clone()))
        });
        let handle = retried.cancel_handle();
        let probe = Probe::new();
        probe.finish(retried);
        let advancing = advance_on_a_thread(&clock, 1);
        handle.cancel();
        advancing.join().unwrap();
        assert_eq!(probe.outcome(), Outcome::Cancelled);
        let attempts = attempts.load(SeqCst);
        assert!((1..=2).contains(&attempts), "{attempts} attempts");
        assert_eq!(clock.pending(), 0, "a wait was left on the clock");
        let reported = reported(&message);
        assert_eq!(reported_by_this_test() - before, reported);
        assert!(reported <= 1 && (reported == 0 || attempts == 2));
    });
}

/// A `LoopingCall` whose call comes due on the clock's thread while the loop is stopped on
/// another. The call is made at most once (one interval passes), the Deferred of `start` fires
/// once, with `()` (rule 5: at once, or when the call in progress ends), the loop is not
/// running, and no call is left on the clock: a next call the clock's thread scheduled as the
/// stop landed is taken off.
#[test]
fn looping_call_stopped_while_the_clock_makes_a_call_on_another_thread() {
    reports();
    model(PREEMPTIONS, || {
        let calls = counter();
        let clock = ManualClock::new();
        let made = calls.clone();
        let looping = LoopingCall::new(clock.clone(), move || {
            made.fetch_add(1, SeqCst);
            Ok(())
        });
        let probe = Probe::new();
        probe.finish(
            looping
                .start(Duration::from_secs(1), false)
                .add_callback(|()| Ok(0)),
        );
        assert_eq!(clock.pending(), 1);
        let advancing = advance_on_a_thread(&clock, 1);
        looping.stop();
        advancing.join().unwrap();
        assert_eq!(probe.outcome(), Outcome::Ok(0));
        assert!(calls.load(SeqCst) <= 1);
        assert_eq!(looping.calls(), calls.load(SeqCst) as u64);
        assert!(!looping.is_running());
        assert_eq!(clock.pending(), 0, "a call was left on the clock");
        assert_eq!(reported_by_this_test(), 0);
    });
}

/// A `LoopingCall` whose call returns a pending Deferred, made on the clock's thread while the
/// Deferred of `start` is cancelled on another (rule 6). It fails with `Cancelled`, once; the
/// call, if made, is cancelled exactly once (in flight, or as soon as it returns when the cancel
/// landed while it was being made); the loop is not running, no call is left on the clock, and
/// nothing is reported (the call answers its cancel with `Cancelled`).
#[test]
fn looping_call_cancelled_while_the_clock_makes_a_call_on_another_thread() {
    reports();
    model(PREEMPTIONS, || {
        let (calls, inner_cancels) = (counter(), counter());
        let unfired: Unfired = Arc::new(Mutex::new(Vec::new()));
        let clock = ManualClock::new();
        let looping = LoopingCall::new(
            clock.clone(),
            pending_call(&calls, &inner_cancels, &unfired),
        );
        let done = looping.start(Duration::from_secs(1), false);
        let handle = done.cancel_handle();
        let probe = Probe::new();
        probe.finish(done.add_callback(|()| Ok(0)));
        let advancing = advance_on_a_thread(&clock, 1);
        handle.cancel();
        advancing.join().unwrap();
        assert_eq!(probe.outcome(), Outcome::Cancelled);
        assert!(calls.load(SeqCst) <= 1);
        assert_eq!(
            inner_cancels.load(SeqCst),
            calls.load(SeqCst),
            "the call made is cancelled once"
        );
        assert!(!looping.is_running());
        assert_eq!(clock.pending(), 0, "a call was left on the clock");
        unfired.lock().unwrap().clear();
        assert_eq!(reported_by_this_test(), 0);
    });
}

/// `first_settled` whose output nobody can see (dropped, a `CancelHandle` kept), cancelled on
/// one thread while the first input's Resolver is dropped on another: that input may end unread
/// (its producer saw the output closed), with no answer on its way; the cancel still reaches the
/// second input, whose canceller runs exactly once. The output's `Cancelled`, unread, is
/// reported once at most (rule 5), and nothing else.
#[test]
fn first_settled_cancelled_unseen_while_an_input_ends_unread_on_another_thread() {
    reports();
    model(PREEMPTIONS, || {
        const CANCELLED: &str = "the Deferred was cancelled";
        let before = (reported_by_this_test(), reported(CANCELLED));
        let (first_cancels, second_cancels) = (counter(), counter());
        let (first, first_resolver) = cancellable(&first_cancels);
        let (second, _second_resolver) = cancellable(&second_cancels);
        let output = deferred_core::first_settled([first, second]);
        let handle = output.cancel_handle();
        drop(output);
        let dropping = thread::spawn(move || drop(first_resolver));
        handle.cancel();
        dropping.join().unwrap();
        assert!(first_cancels.load(SeqCst) <= 1);
        assert_eq!(
            second_cancels.load(SeqCst),
            1,
            "the other input is cancelled either way"
        );
        let cancelled = reported(CANCELLED) - before.1;
        assert!(cancelled <= 1);
        assert_eq!(reported_by_this_test() - before.0, cancelled);
    });
}

// ---- more helpers' races: map_concurrent, the combinators cancelled as an input fires,
// DeferredLock::run, add_timeout, retry_if ----------------------------------------------------

/// A failure as the models compare it: `Cancelled`, a `FirstError` or `FailureGroup` by what it
/// holds, else its message.
fn describe(failure: &Failure) -> String {
    if failure.is::<Cancelled>() {
        return "Cancelled".to_owned();
    }
    if failure.is::<TimedOut>() {
        return "TimedOut".to_owned();
    }
    if let Some(first) = failure.downcast_ref::<FirstError>() {
        return format!("FirstError({}, {})", first.index, describe(&first.failure));
    }
    if let Some(group) = failure.downcast_ref::<FailureGroup>() {
        let inner: Vec<String> = group.failures.iter().map(describe).collect();
        return format!("Group[{}]", inner.join(", "));
    }
    failure.to_string()
}

/// Records the outcomes of a chain of any value type, as text (there must be exactly one).
#[derive(Clone)]
struct Seen {
    outcomes: Arc<Mutex<Vec<String>>>,
}

impl Seen {
    fn new() -> Seen {
        Seen {
            outcomes: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Ends `d` with a step that records its outcome: its value as `show` writes it, or its
    /// failure as `describe` does.
    fn finish<T: Send + 'static>(&self, d: Deferred<T>, show: fn(T) -> String) {
        let outcomes = self.outcomes.clone();
        drop(d.add_both(move |result| {
            let text = match result {
                Ok(value) => show(value),
                Err(failure) => describe(&failure),
            };
            outcomes.lock().unwrap().push(text);
            Ok::<(), Failure>(())
        }));
    }

    /// The one outcome recorded.
    fn outcome(&self) -> String {
        let outcomes = self.outcomes.lock().unwrap();
        assert_eq!(
            outcomes.len(),
            1,
            "the last step must run once: {outcomes:?}"
        );
        outcomes[0].clone()
    }
}

/// A `FirstSuccess`, as text.
fn show_first_success(outcome: FirstSuccess<u32>) -> String {
    match outcome {
        FirstSuccess::Succeeded { index, value } => format!("Succeeded({index}, {value})"),
        FirstSuccess::AllFailed(failures) => {
            let inner: Vec<String> = failures.iter().map(describe).collect();
            format!("AllFailed[{}]", inner.join(", "))
        }
    }
}

/// How many items of a `map_concurrent` run at once: `now` is incremented as an item's
/// function is called and decremented as its Deferred settles; `most` is the highest `now` seen.
/// Std's atomics: the model's bookkeeping, not a point where loom should switch threads.
#[derive(Clone, Default)]
struct Running {
    now: Arc<std::sync::atomic::AtomicUsize>,
    most: Arc<std::sync::atomic::AtomicUsize>,
}

/// The Resolvers of the items a `map_concurrent` started, by item, with each item's call count
/// and canceller count.
struct Items {
    resolvers: Arc<Mutex<Vec<Option<deferred_core::Resolver<u32>>>>>,
    calls: Vec<Arc<AtomicUsize>>,
    cancels: Vec<Arc<AtomicUsize>>,
    running: Running,
}

impl Items {
    fn new(count: usize) -> Items {
        Items {
            resolvers: Arc::new(Mutex::new((0..count).map(|_| None).collect())),
            calls: (0..count).map(|_| counter()).collect(),
            cancels: (0..count).map(|_| counter()).collect(),
            running: Running::default(),
        }
    }

    /// The function `map_concurrent` calls on item `n`: counts the call and how many run, and
    /// returns a pending Deferred whose canceller counts and whose Resolver is kept by item.
    fn function(&self) -> impl Fn(usize) -> Deferred<u32> + Send + Sync + use<> {
        let (resolvers, calls, cancels) = (
            self.resolvers.clone(),
            self.calls.clone(),
            self.cancels.clone(),
        );
        let running = self.running.clone();
        move |n| {
            calls[n].fetch_add(1, SeqCst);
            let now = running
                .now
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                + 1;
            running
                .most
                .fetch_max(now, std::sync::atomic::Ordering::SeqCst);
            let (d, resolver) = cancellable(&cancels[n]);
            resolvers.lock().unwrap()[n] = Some(resolver);
            let running = running.clone();
            d.add_both(move |result| {
                running
                    .now
                    .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                result
            })
        }
    }

    /// Item `n`'s Resolver (the item must have started).
    fn resolver(&self, n: usize) -> deferred_core::Resolver<u32> {
        self.resolvers.lock().unwrap()[n]
            .take()
            .expect("the item started")
    }

    fn calls(&self, n: usize) -> usize {
        self.calls[n].load(SeqCst)
    }

    fn cancels(&self, n: usize) -> usize {
        self.cancels[n].load(SeqCst)
    }

    fn most_running(&self) -> usize {
        self.running.most.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// `map_concurrent` of two items, one at a time: the first item finishes on one thread (its
/// token starts the second there) while the result is cancelled on another. The batch stops:
/// the result is a `FirstError` with `Cancelled` — the first item's (cancelled before it
/// finished) or the second's (cancelled while it waited for the token or ran, or not started) —
/// never a value. Each item runs at most once and never two at once; an item that started is
/// cancelled exactly once unless it finished; nothing is reported.
#[test]
fn map_concurrent_cancelled_while_an_item_finishes_on_another_thread() {
    reports();
    model(PREEMPTIONS, || {
        let items = Items::new(2);
        let output = map_concurrent(0..2, 1, items.function());
        let handle = output.cancel_handle();
        let seen = Seen::new();
        seen.finish(output, |values| format!("{values:?}"));
        let first = items.resolver(0);
        let finishing = thread::spawn(move || first.callback(10));
        handle.cancel();
        finishing.join().unwrap();
        let outcome = seen.outcome();
        match outcome.as_str() {
            "FirstError(0, Cancelled)" => assert_eq!(items.cancels(0), 1),
            "FirstError(1, Cancelled)" => {}
            other => panic!("not an allowed outcome: {other}"),
        }
        assert_eq!(items.calls(0), 1);
        assert!(items.cancels(0) <= 1);
        assert!(items.calls(1) <= 1);
        assert_eq!(
            items.cancels(1),
            items.calls(1),
            "a second item that started is cancelled, once"
        );
        assert_eq!(items.most_running(), 1, "the limit was exceeded");
        assert_eq!(
            items.running.now.load(std::sync::atomic::Ordering::SeqCst),
            0
        );
        assert_eq!(reported_by_this_test(), 0);
    });
}

/// `map_concurrent` of three items, two at a time: the first fails on one thread while the
/// second succeeds on another, whose token starts the third there. The first failure decides
/// (`FirstError` at index 0, whatever else lands first); the third starts only if the failure
/// had not stopped the batch, and is then cancelled once; never more than two run at once;
/// nothing is reported.
#[test]
fn map_concurrent_item_fails_on_another_thread_while_another_starts() {
    reports();
    model(PREEMPTIONS, || {
        let message = unique_message("map item");
        let items = Items::new(3);
        let seen = Seen::new();
        seen.finish(map_concurrent(0..3, 2, items.function()), |values| {
            format!("{values:?}")
        });
        let (first, second) = (items.resolver(0), items.resolver(1));
        let failure = Failure::msg(message.clone());
        let failing = thread::spawn(move || first.errback(failure));
        second.callback(11);
        failing.join().unwrap();
        assert_eq!(seen.outcome(), format!("FirstError(0, {message})"));
        assert_eq!((items.calls(0), items.calls(1)), (1, 1));
        assert_eq!(items.cancels(0), 0);
        // The second is cancelled if the failure's decision reached it before it succeeded.
        assert!(items.cancels(1) <= 1);
        assert!(items.calls(2) <= 1);
        assert_eq!(
            items.cancels(2),
            items.calls(2),
            "a third item that started is cancelled, once"
        );
        assert!(items.most_running() <= 2, "the limit was exceeded");
        assert_eq!(
            items.running.now.load(std::sync::atomic::Ordering::SeqCst),
            0
        );
        assert_eq!(reported_by_this_test(), 0);
    });
}

/// `map_concurrent` of two items, one at a time: the first item fails on one thread while the
/// result is cancelled on another. The batch stops and the second item never starts (its
/// token, if it comes, finds the batch stopped). The first item's answer decides — its failure,
/// or its `Cancelled` (the cancel came first: the failure is then dropped, as a late fire is) —
/// unless its failure was on its way as the cancel passed it: the cancel then goes on to the
/// second item, whose `Cancelled` (its acquire cancelled while it waits) may arrive first and
/// decide, and the first item's failure, left out, is reported, once. Nothing else is reported.
#[test]
fn map_concurrent_cancelled_while_an_item_fails_on_another_thread() {
    reports();
    model(PREEMPTIONS, || {
        let before = reported_by_this_test();
        let message = unique_message("map item cancelled");
        let items = Items::new(2);
        let output = map_concurrent(0..2, 1, items.function());
        let handle = output.cancel_handle();
        let seen = Seen::new();
        seen.finish(output, |values| format!("{values:?}"));
        let first = items.resolver(0);
        let failure = Failure::msg(message.clone());
        let failing = thread::spawn(move || first.errback(failure));
        handle.cancel();
        failing.join().unwrap();
        let outcome = seen.outcome();
        let left_out = match outcome.as_str() {
            "FirstError(0, Cancelled)" => {
                assert_eq!(items.cancels(0), 1);
                0
            }
            "FirstError(1, Cancelled)" => 1,
            other => {
                assert_eq!(other, format!("FirstError(0, {message})"));
                0
            }
        };
        assert_eq!(
            reported(&message),
            left_out,
            "the left-out failure is reported"
        );
        assert_eq!(reported_by_this_test() - before, left_out);
        assert!(items.cancels(0) <= 1);
        assert_eq!(items.calls(1), 0, "a stopped batch started an item");
        assert_eq!(items.most_running(), 1, "the limit was exceeded");
        assert_eq!(
            items.running.now.load(std::sync::atomic::Ordering::SeqCst),
            0
        );
    });
}

/// What a combinator model's first input does on the other thread.
#[derive(Clone, Copy)]
enum Fire {
    Succeed,
    Fail,
}

/// What a combinator model saw: the outcome as `Seen` wrote it, the two inputs' canceller
/// counts, the first input's failure's message, and the second input's Resolver (never fired
/// in the model: the test says what becomes of it).
struct Raced {
    outcome: String,
    first_cancels: usize,
    second_cancels: usize,
    message: String,
    second: Option<deferred_core::Resolver<u32>>,
    /// This test's reports before the model's execution (a `NeverFired`'s message is the same
    /// in every execution).
    reports_before: usize,
}

impl Raced {
    /// The reports made in this execution.
    fn reported(&self) -> usize {
        reported_by_this_test() - self.reports_before
    }
}

/// What a combinator that fails with its first failure (`gather_results`,
/// `fire_on_one_errback`) gives when cancelled as its first input succeeds: a `Cancelled`
/// decides, in a `FirstError` — the first input's, or the second's once the first succeeded
/// (its value is dropped). The second input is cancelled either way; nothing is reported.
fn a_cancelled_input_decides(mut raced: Raced) {
    assert_eq!(raced.second_cancels, 1);
    match raced.outcome.as_str() {
        "FirstError(0, Cancelled)" => assert_eq!(raced.first_cancels, 1),
        "FirstError(1, Cancelled)" => {}
        other => panic!("not an allowed outcome: {other}"),
    }
    drop(raced.second.take());
    assert_eq!(raced.reported(), 0);
}

/// Two cancellable inputs of a combinator (made by `combine`) whose output is cancelled on one
/// thread while its first input fires on another (the second is not fired).
fn cancelled_while_the_first_input_fires<T: Send + 'static>(
    fire: Fire,
    combine: fn(Deferred<u32>, Deferred<u32>) -> Deferred<T>,
    show: fn(T) -> String,
) -> Raced {
    let reports_before = reported_by_this_test();
    let message = unique_message("input");
    let (first_cancels, second_cancels) = (counter(), counter());
    let (first, first_resolver) = cancellable(&first_cancels);
    let (second, second_resolver) = cancellable(&second_cancels);
    let output = combine(first, second);
    let handle = output.cancel_handle();
    let seen = Seen::new();
    seen.finish(output, show);
    let failure = Failure::msg(message.clone());
    let firing = thread::spawn(move || match fire {
        Fire::Succeed => first_resolver.callback(5),
        Fire::Fail => first_resolver.errback(failure),
    });
    handle.cancel();
    firing.join().unwrap();
    let raced = Raced {
        outcome: seen.outcome(),
        first_cancels: first_cancels.load(SeqCst),
        second_cancels: second_cancels.load(SeqCst),
        message,
        second: Some(second_resolver),
        reports_before,
    };
    assert!(raced.first_cancels <= 1);
    assert!(raced.second_cancels <= 1);
    raced
}

fn fire_on_one_callback(a: Deferred<u32>, b: Deferred<u32>) -> Deferred<FirstSuccess<u32>> {
    DeferredList::new([a, b]).fire_on_one_callback()
}

fn fire_on_one_errback(a: Deferred<u32>, b: Deferred<u32>) -> Deferred<Vec<u32>> {
    DeferredList::new([a, b]).fire_on_one_errback()
}

fn race_of(a: Deferred<u32>, b: Deferred<u32>) -> Deferred<(usize, u32)> {
    deferred_core::race([a, b])
}

fn gather_of(a: Deferred<u32>, b: Deferred<u32>) -> Deferred<Vec<u32>> {
    deferred_core::gather_results([a, b])
}

fn join_of(a: Deferred<u32>, b: Deferred<u32>) -> Deferred<(u32, u32)> {
    deferred_core::join((a, b))
}

/// `DeferredList::fire_on_one_callback` cancelled while its first input succeeds on another
/// thread: the first input's value decides (the cancel came too late, or the value landed while
/// its canceller ran), or, cancelled first, every input failed with `Cancelled`. The second
/// input's `Cancelled` never decides (a failure only waits for the others) and is never
/// reported: it answers the list's cancel. A value that decided before the cancel leaves the
/// second input running (the cancel finds the list fired): its failure, when its producer
/// drops its Resolver, is reported, once.
#[test]
fn fire_on_one_callback_cancelled_while_an_input_succeeds_on_another_thread() {
    reports();
    model(PREEMPTIONS, || {
        let mut raced = cancelled_while_the_first_input_fires(
            Fire::Succeed,
            fire_on_one_callback,
            show_first_success,
        );
        match raced.outcome.as_str() {
            "Succeeded(0, 5)" => {}
            "AllFailed[Cancelled, Cancelled]" => {
                assert_eq!((raced.first_cancels, raced.second_cancels), (1, 1));
            }
            other => panic!("not an allowed outcome: {other}"),
        }
        assert_eq!(raced.reported(), 0);
        let left_running = raced.second_cancels == 0;
        drop(raced.second.take());
        assert_eq!(raced.reported(), usize::from(left_running));
    });
}

/// `DeferredList::fire_on_one_callback` cancelled while its first input fails on another
/// thread: every input failed, and the outcome holds each answer, in input order: the first
/// input's failure (it came first) or its `Cancelled` (the cancel came first; the failure is
/// then dropped, as a late fire is), and the second input's `Cancelled`. The outcome is taken,
/// so nothing is reported.
#[test]
fn fire_on_one_callback_cancelled_while_an_input_fails_on_another_thread() {
    reports();
    model(PREEMPTIONS, || {
        let mut raced = cancelled_while_the_first_input_fires(
            Fire::Fail,
            fire_on_one_callback,
            show_first_success,
        );
        assert_eq!(raced.second_cancels, 1);
        if raced.outcome == "AllFailed[Cancelled, Cancelled]" {
            assert_eq!(raced.first_cancels, 1);
        } else {
            assert_eq!(
                raced.outcome,
                format!("AllFailed[{}, Cancelled]", raced.message)
            );
        }
        drop(raced.second.take());
        assert_eq!(raced.reported(), 0);
    });
}

/// `DeferredList::fire_on_one_errback` cancelled while its first input succeeds on another
/// thread: a `Cancelled` decides, wrapped in a `FirstError` — the first input's (cancelled
/// before it fired) or the second's (the first had succeeded: its value is dropped). Nothing is
/// reported: the other `Cancelled`, if any, answers the list's cancel.
#[test]
fn fire_on_one_errback_cancelled_while_an_input_succeeds_on_another_thread() {
    reports();
    model(PREEMPTIONS, || {
        let raced =
            cancelled_while_the_first_input_fires(Fire::Succeed, fire_on_one_errback, |values| {
                format!("{values:?}")
            });
        a_cancelled_input_decides(raced);
    });
}

/// `DeferredList::fire_on_one_errback` cancelled while its first input fails on another
/// thread: the first answer to arrive decides, in a `FirstError`. Normally that is the first
/// input's — its failure (it came first) or its `Cancelled` (the cancel came first: the failure
/// is then dropped, as a late fire is). But the first input may have fired as the cancel passed
/// it (nothing left to cancel there, or its canceller ran and then its failure landed): the
/// cancel goes on to the second input, whose `Cancelled` may arrive first and decide; the first
/// input's failure then arrives after the outcome and is reported, once, as any failure the
/// list's result does not carry (unlike `first_settled`, whose cancel stops at an input that
/// has fired: there any answer decides). The second input's `Cancelled` answers the list's
/// cancel and is never reported. A failure that decided before the cancel leaves the second
/// input running (the cancel finds the list fired): its failure, when its producer drops its
/// Resolver, is reported, once.
#[test]
fn fire_on_one_errback_cancelled_while_an_input_fails_on_another_thread() {
    reports();
    model(PREEMPTIONS, || {
        let mut raced =
            cancelled_while_the_first_input_fires(Fire::Fail, fire_on_one_errback, |values| {
                format!("{values:?}")
            });
        let left_out = match raced.outcome.as_str() {
            "FirstError(0, Cancelled)" => {
                assert_eq!((raced.first_cancels, raced.second_cancels), (1, 1));
                0
            }
            "FirstError(1, Cancelled)" => {
                assert_eq!(raced.second_cancels, 1);
                1
            }
            other => {
                assert_eq!(other, format!("FirstError(0, {})", raced.message));
                0
            }
        };
        assert_eq!(reported(&raced.message), left_out);
        assert_eq!(raced.reported(), left_out);
        let left_running = raced.second_cancels == 0;
        drop(raced.second.take());
        assert_eq!(raced.reported(), left_out + usize::from(left_running));
    });
}

/// `race` cancelled while its first input succeeds on another thread: the value wins (the cancel
/// came too late, or the value landed while its canceller ran), or, cancelled first, the race
/// fails with a `FailureGroup` of both `Cancelled`s. The second input is cancelled either way
/// (as a loser, or by the cancel); nothing is reported (a race handles all its inputs'
/// outcomes).
#[test]
fn race_cancelled_while_an_input_succeeds_on_another_thread() {
    reports();
    model(PREEMPTIONS, || {
        let mut raced =
            cancelled_while_the_first_input_fires(Fire::Succeed, race_of, |(index, value)| {
                format!("Won({index}, {value})")
            });
        assert_eq!(raced.second_cancels, 1);
        match raced.outcome.as_str() {
            "Won(0, 5)" => {}
            "Group[Cancelled, Cancelled]" => assert_eq!(raced.first_cancels, 1),
            other => panic!("not an allowed outcome: {other}"),
        }
        drop(raced.second.take());
        assert_eq!(raced.reported(), 0);
    });
}

/// `race` cancelled while its first input fails on another thread: every input failed, and the
/// race fails with a `FailureGroup` of their answers in input order — the first input's failure
/// or its `Cancelled`, then the second's `Cancelled`. Nothing is reported.
#[test]
fn race_cancelled_while_an_input_fails_on_another_thread() {
    reports();
    model(PREEMPTIONS, || {
        let mut raced =
            cancelled_while_the_first_input_fires(Fire::Fail, race_of, |(index, value)| {
                format!("Won({index}, {value})")
            });
        assert_eq!(raced.second_cancels, 1);
        if raced.outcome == "Group[Cancelled, Cancelled]" {
            assert_eq!(raced.first_cancels, 1);
        } else {
            assert_eq!(
                raced.outcome,
                format!("Group[{}, Cancelled]", raced.message)
            );
        }
        drop(raced.second.take());
        assert_eq!(raced.reported(), 0);
    });
}

/// `gather_results` cancelled while its first input succeeds on another thread: a `Cancelled`
/// decides, in a `FirstError` — the first input's, or the second's once the first succeeded
/// (its value is dropped). The second input is cancelled either way; nothing is reported.
#[test]
fn gather_results_cancelled_while_an_input_succeeds_on_another_thread() {
    reports();
    model(PREEMPTIONS, || {
        let raced = cancelled_while_the_first_input_fires(Fire::Succeed, gather_of, |values| {
            format!("{values:?}")
        });
        a_cancelled_input_decides(raced);
    });
}

/// `join` cancelled while its first input succeeds on another thread: the join fails with a
/// `Cancelled` (the first input's, or the second's once the first succeeded: the value is
/// dropped). The second input is cancelled either way; nothing is reported.
#[test]
fn join_cancelled_while_an_input_succeeds_on_another_thread() {
    reports();
    model(PREEMPTIONS, || {
        let mut raced = cancelled_while_the_first_input_fires(Fire::Succeed, join_of, |(a, b)| {
            format!("({a}, {b})")
        });
        assert_eq!(raced.second_cancels, 1);
        assert_eq!(raced.outcome, "Cancelled");
        drop(raced.second.take());
        assert_eq!(raced.reported(), 0);
    });
}

/// `DeferredLock::run`: the holder's function returned a pending Deferred, which fires on one
/// thread (the lock goes to the waiting run, whose function runs there) while the waiting run
/// is cancelled on another. The waiting run either ran (its value) or is `Cancelled` and its
/// function never ran; the lock is never lost: free once both are done, and a third run gets it
/// at once. Nothing is reported.
#[test]
fn lock_run_waiting_cancelled_while_the_holder_finishes_on_another_thread() {
    reports();
    model(PREEMPTIONS, || {
        let lock = DeferredLock::new();
        let (work, work_resolver) = Deferred::<u32>::pending();
        let holder = Probe::new();
        holder.finish(lock.run(move || work));
        let calls = counter();
        let called = calls.clone();
        let waiting = lock.run(move || {
            called.fetch_add(1, SeqCst);
            Ok::<u32, Failure>(2)
        });
        let handle = waiting.cancel_handle();
        let waiter = Probe::new();
        waiter.finish(waiting);
        let finishing = thread::spawn(move || work_resolver.callback(1));
        handle.cancel();
        finishing.join().unwrap();
        assert_eq!(holder.outcome(), Outcome::Ok(1));
        match waiter.outcome() {
            Outcome::Ok(2) => assert_eq!(calls.load(SeqCst), 1),
            Outcome::Cancelled => assert_eq!(calls.load(SeqCst), 0, "a cancelled run ran"),
            other => panic!("not an allowed outcome: {other:?}"),
        }
        assert!(!lock.is_locked(), "the lock was lost");
        assert_eq!(lock.waiting(), 0);
        let third = Probe::new();
        third.finish(lock.run(|| Ok::<u32, Failure>(3)));
        assert_eq!(third.outcome(), Outcome::Ok(3));
        assert_eq!(reported_by_this_test(), 0);
    });
}

/// `add_timeout` on a `ManualClock`: the deadline passes on the clock's thread while the
/// Deferred fails on another. The outcome is the failure (it came first; or the timer's cancel
/// ran the canceller and the failure landed meanwhile: what the cancellation produced is kept)
/// or `TimedOut` (the timer's cancel came first); the canceller runs at most once, and if the
/// outcome is `TimedOut`; the timer is not left on the clock; nothing is reported.
#[test]
fn add_timeout_deadline_passes_while_the_deferred_fails_on_another_thread() {
    reports();
    model(PREEMPTIONS, || {
        let before = reported_by_this_test();
        let message = unique_message("timed failure");
        let cancels = counter();
        let clock = ManualClock::new();
        let (d, resolver) = cancellable(&cancels);
        let seen = Seen::new();
        seen.finish(d.add_timeout(Duration::from_secs(1), &clock), |v| {
            format!("Ok({v})")
        });
        let advancing = advance_on_a_thread(&clock, 1);
        resolver.errback(Failure::msg(message.clone()));
        advancing.join().unwrap();
        let outcome = seen.outcome();
        if outcome == "TimedOut" {
            assert_eq!(cancels.load(SeqCst), 1);
        } else {
            assert_eq!(outcome, message);
        }
        assert!(cancels.load(SeqCst) <= 1);
        assert_eq!(clock.pending(), 0, "the timer was left on the clock");
        assert_eq!(reported_by_this_test() - before, 0);
    });
}

/// `retry_if` whose second attempt is in flight: it fails on one thread (the retry asks the
/// predicate, then schedules the wait for the third) while the retry is cancelled on another.
/// The retry ends `Cancelled`, no third attempt is made and no wait is left on the clock. The
/// predicate is asked about the first failure once, and about the second at most once: not
/// when it is the attempt's answer to the cancel (its canceller ran, then the failure landed)
/// or arrives after the cancel; then it is reported, once (rule 3). One the predicate was being
/// asked about as the cancel landed is reported too: nobody else sees it. A failure that came
/// after the cancel failed the attempt is dropped (a late fire). Nothing else is reported.
#[test]
fn retry_if_asks_its_predicate_while_cancelled_on_another_thread() {
    reports();
    model(PREEMPTIONS, || {
        let before = reported_by_this_test();
        let (first, second) = (
            unique_message("retry_if first"),
            unique_message("retry_if second"),
        );
        let (attempts, cancels) = (counter(), counter());
        let unfired: Unfired = Arc::new(Mutex::new(Vec::new()));
        let asked: Arc<std::sync::Mutex<Vec<String>>> = Default::default();
        let clock = ManualClock::new();
        let policy = RetryPolicy::exponential(Duration::from_secs(1))
            .jitter(0.0)
            .max_attempts(3);
        let (made, refused, mut pending) = (
            attempts.clone(),
            first.clone(),
            pending_call(&counter(), &cancels, &unfired),
        );
        let asking = asked.clone();
        let retried = deferred_core::retry_if(
            clock.clone(),
            policy,
            move |failure: &Failure| {
                asking.lock().unwrap().push(failure.to_string());
                true
            },
            move || {
                if made.fetch_add(1, SeqCst) == 0 {
                    Deferred::fail(Failure::msg(refused.clone()))
                } else {
                    pending()
                }
            },
        );
        let handle = retried.cancel_handle();
        let probe = Probe::new();
        probe.finish(retried);
        clock.advance(Duration::from_secs(1)); // the second attempt: in flight
        let resolver = unfired
            .lock()
            .unwrap()
            .pop()
            .expect("the second attempt is in flight");
        let failure = Failure::msg(second.clone());
        let failing = thread::spawn(move || resolver.errback(failure));
        handle.cancel();
        failing.join().unwrap();
        let asked = asked.lock().unwrap().clone();
        assert_eq!(probe.outcome(), Outcome::Cancelled);
        assert_eq!(attempts.load(SeqCst), 2, "a third attempt was made");
        assert!(cancels.load(SeqCst) <= 1);
        assert_eq!(clock.pending(), 0, "a wait was left on the clock");
        assert_eq!(asked.first(), Some(&first));
        assert!(
            asked[1..].iter().all(|a| *a == second) && asked.len() <= 2,
            "{asked:?}"
        );
        let reported = reported(&second);
        assert!(reported <= 1);
        assert_eq!(reported_by_this_test() - before, reported);
        if asked.len() == 1 && reported == 0 {
            // The second failure was neither asked about nor reported: it came too late, to an
            // attempt the cancel had failed already.
            assert_eq!(cancels.load(SeqCst), 1);
        }
    });
}
