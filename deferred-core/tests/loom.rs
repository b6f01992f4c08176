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
//! every lock and unlock in `link.rs` is a point where loom may switch threads. Results are
//! observed through callbacks that write to loom atomics and mutexes, never with `wait()` (which
//! parks real threads).
#![cfg(loom)]

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Once};

use deferred_core::{Cancelled, Deferred, Failure, NeverFired, Panicked, set_unhandled_hook};
use loom::sync::Mutex;
use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::thread;

/// The preemption bound: every interleaving with at most this many forced thread switches.
const PREEMPTIONS: usize = 3;

fn model(preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = if std::env::var_os("LOOM_EXHAUSTIVE").is_some() {
        None
    } else {
        Some(preemptions)
    };
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
        let ran = cancellers.clone();
        let (d, resolver) = Deferred::<u32>::with_canceller(move || {
            ran.fetch_add(1, SeqCst);
        });
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
        let ran = cancellers.clone();
        let (d, resolver) = Deferred::<u32>::with_canceller(move || {
            ran.fetch_add(1, SeqCst);
        });
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
        let oc = outer_cancels.clone();
        let (outer, outer_resolver) = Deferred::<u32>::with_canceller(move || {
            oc.fetch_add(1, SeqCst);
        });
        let ic = inner_cancels.clone();
        let (inner, inner_resolver) = Deferred::<u32>::with_canceller(move || {
            ic.fetch_add(1, SeqCst);
        });
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
        let ic = inner_cancels.clone();
        let (inner, inner_resolver) = Deferred::<u32>::with_canceller(move || {
            ic.fetch_add(1, SeqCst);
        });
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
        let rc = root_cancels.clone();
        let (d, resolver) = Deferred::<u32>::with_canceller(move || {
            rc.fetch_add(1, SeqCst);
        });
        let ic = inner_cancels.clone();
        let (inner, inner_resolver) = Deferred::<u32>::with_canceller(move || {
            ic.fetch_add(1, SeqCst);
        });
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
