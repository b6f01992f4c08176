// The body of the rules' tests, written once and compiled for each kind of Deferred: included
// (`include!`) by tests/rules.rs (the `Send` kind, `Deferred`) and tests/rules_local.rs (the
// one-thread kind, `LocalDeferred`). It is not a test target of its own.
//
// The including file provides a module `kind` with the names this body uses for the kind under
// test: `Deferred`, `Resolver`, `CancelHandle`, `gather_results`, and `Value` (the bound a kind
// puts on its values and steps: `Sendable` or `LocalValue`). Everything here holds for both kinds, so the steps'
// captures are `Send` (Arc, Mutex, atomics: they work in a local chain too) and no test fires,
// waits on or cancels a chain from another thread: the tests about threads are in
// tests/rules.rs only, and the tests about what only a local chain may hold are in
// tests/rules_local.rs only.
//
// One section per rule of a Deferred (docs/rules.md, "The rules of a Deferred"; the same list is
// in the docs of `Deferred`), plus `Future` / `wait`. Each test fails if its rule breaks.
//
// Unhandled failures: a test whose failures are reported on its own thread collects them with a
// capture (`Captured`, on `deferred::UnhandledCapture`), which sees that thread's reports and no
// other test's. The global hook is kept for the tests about the hook itself and about reports
// made on other threads: it is installed once, records every report that no capture took, and
// each such test counts only the reports carrying its own unique message.
// `wait` is only called on chains that have fired: on a pending `LocalDeferred`, with no
// `Inbox` on the thread, it panics (nothing else could fire it).

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, Once, mpsc};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;

use deferred::{Cancelled, Failure, NeverFired, Panicked, set_unhandled_hook};
use kind::{CancelHandle, Deferred, Resolver, Value};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

/// A pending Deferred whose canceller counts its calls, its Resolver, and the count.
fn counting_canceller<T: Value + 'static>() -> (Deferred<T>, Resolver<T>, Arc<AtomicUsize>) {
    let cancels = counter();
    let c = cancels.clone();
    let (d, r) = Deferred::<T>::with_canceller(move || {
        c.fetch_add(1, SeqCst);
    });
    (d, r, cancels)
}

/// One report of an unhandled failure (to a capture or to the hook).
#[derive(Clone, Debug)]
struct Report {
    message: String,
    trail: usize,
}

impl Report {
    fn of(f: &Failure) -> Report {
        Report {
            message: f.to_string(),
            trail: f.trail().len(),
        }
    }
}

/// The unhandled failures reported on this test's thread while it lives, and only those.
struct Captured {
    capture: deferred::UnhandledCapture,
    seen: std::cell::RefCell<Vec<Report>>,
}

impl Captured {
    fn start() -> Captured {
        Captured {
            capture: deferred::UnhandledCapture::start(),
            seen: Default::default(),
        }
    }

    /// Every report captured so far; each must carry `tag` (no other failure was reported here).
    fn of(&self, tag: &str) -> Vec<Report> {
        let mut seen = self.seen.borrow_mut();
        seen.extend(self.capture.take().iter().map(Report::of));
        for report in seen.iter() {
            assert!(report.message.contains(tag), "an unexpected report: {report:?}");
        }
        seen.clone()
    }
}

/// The reports the global hook received (those made on threads with no capture).
fn reports() -> &'static Mutex<Vec<Report>> {
    static REPORTS: Mutex<Vec<Report>> = Mutex::new(Vec::new());
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let _ = set_unhandled_hook(|f: &Failure| {
            let report = Report::of(f);
            let panic_here = report.message.contains("PANIC-IN-HOOK");
            REPORTS.lock().unwrap().push(report);
            if panic_here {
                panic!("the unhandled-error hook panicked on purpose");
            }
        });
    });
    &REPORTS
}

/// Installs the recording hook (once per process); call before creating failures.
fn install_hook() {
    reports();
}

/// The reports the global hook received whose message contains `tag`.
fn reports_of(tag: &str) -> Vec<Report> {
    reports()
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.message.contains(tag))
        .cloned()
        .collect()
}

/// Runs `f` on a thread with a 256 KiB stack: a chain that recursed per link would overflow.
fn on_small_stack<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    thread::Builder::new()
        .name("small-stack".into())
        .stack_size(256 * 1024)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("the small-stack thread panicked")
}

/// A minimal executor: polls `future` on this thread, parking between wake-ups.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
        thread::park();
    }
}

/// A waker that counts its wake-ups.
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

// =============================================================================================
// Rule 1: success skips errbacks, failure skips callbacks; each step's result is the next's input.
// =============================================================================================

/// A step of a chain, and what the model says it does.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// add_callback: v -> v + k
    CbAdd,
    /// add_callback: v -> Err("cb<k>")
    CbFail,
    /// add_errback: f -> Ok(k)
    EbRecover,
    /// add_errback: f -> Err(f + "|eb<k>")
    EbFail,
    /// add_both: Ok(v) -> Ok(2v + k), Err -> Ok(-k)
    Both,
    /// add_callbacks(v -> Err("pair<k>"), f -> Ok(100 + k)): the callback half's failure skips
    /// its own errback half.
    PairCbFails,
    /// add_callback returning a fired Deferred: v -> Deferred(v * 3)
    Nested,
}

const STEPS: [Step; 7] = [
    Step::CbAdd,
    Step::CbFail,
    Step::EbRecover,
    Step::EbFail,
    Step::Both,
    Step::PairCbFails,
    Step::Nested,
];

fn model(start: Result<i64, String>, steps: &[Step]) -> Result<i64, String> {
    let mut state = start;
    for (k, step) in steps.iter().enumerate() {
        let k = k as i64;
        state = match (step, state) {
            (Step::CbAdd, Ok(v)) => Ok(v + k),
            (Step::CbFail, Ok(_)) => Err(format!("cb{k}")),
            (Step::EbRecover, Err(_)) => Ok(k),
            (Step::EbFail, Err(m)) => Err(format!("{m}|eb{k}")),
            (Step::Both, Ok(v)) => Ok(2 * v + k),
            (Step::Both, Err(_)) => Ok(-k),
            (Step::PairCbFails, Ok(_)) => Err(format!("pair{k}")),
            (Step::PairCbFails, Err(_)) => Ok(100 + k),
            (Step::Nested, Ok(v)) => Ok(v * 3),
            (_, passed_on) => passed_on,
        };
    }
    state
}

fn build(d: Deferred<i64>, steps: &[Step]) -> Deferred<i64> {
    let mut d = d;
    for (k, step) in steps.iter().enumerate() {
        let k = k as i64;
        d = match step {
            Step::CbAdd => d.add_callback(move |v| Ok(v + k)),
            Step::CbFail => d.add_callback(move |_| Err(Failure::msg(format!("cb{k}")))),
            Step::EbRecover => d.add_errback(move |_| Ok(k)),
            Step::EbFail => d.add_errback(move |f| Err(Failure::msg(format!("{f}|eb{k}")))),
            Step::Both => d.add_both(move |r: Result<i64, Failure>| match r {
                Ok(v) => Ok(2 * v + k),
                Err(_) => Ok(-k),
            }),
            Step::PairCbFails => d.add_callbacks(
                move |_| Err(Failure::msg(format!("pair{k}"))),
                move |_| Ok(100 + k),
            ),
            Step::Nested => d.add_callback(|v| Deferred::succeed(v * 3)),
        };
    }
    d
}

/// Every sequence of up to 4 steps, from a success and from a failure, fired before the steps
/// are added (they run at once) and after (they run when it fires): the chain agrees with the
/// routing model of rule 1.
#[test]
fn rule1_routing_agrees_with_model_exhaustively() {
    let mut sequences: Vec<Vec<Step>> = vec![vec![]];
    let mut frontier = sequences.clone();
    for _ in 0..4 {
        frontier = frontier
            .iter()
            .flat_map(|s| {
                STEPS.iter().map(move |step| {
                    let mut s = s.clone();
                    s.push(*step);
                    s
                })
            })
            .collect();
        sequences.extend(frontier.iter().cloned());
    }
    assert_eq!(sequences.len(), 1 + 7 + 49 + 343 + 2401);
    let mut checked = 0;
    for steps in &sequences {
        for start in [Ok(1i64), Err("start".to_owned())] {
            let expected = model(start.clone(), steps);
            let as_failure = |s: &Result<i64, String>| s.clone().map_err(Failure::msg);
            // Fired first: each step runs as it is added.
            let fired = build(Deferred::from_result(as_failure(&start)), steps);
            // Pending: the steps run when the Resolver fires.
            let (d, r) = Deferred::<i64>::pending();
            let pending = build(d, steps);
            r.fire(as_failure(&start));
            for d in [fired, pending] {
                let got = d.wait().map_err(|f| f.to_string());
                assert_eq!(got, expected, "steps {steps:?} from {start:?}");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, sequences.len() * 4);
}

#[test]
fn rule1_success_skips_errbacks() {
    let errbacks = counter();
    let (e1, e2) = (errbacks.clone(), errbacks.clone());
    let (d, r) = Deferred::<u32>::pending();
    let d = d
        .add_errback(move |f| {
            e1.fetch_add(1, SeqCst);
            Err(f)
        })
        .add_callback(|v| Ok(v + 1))
        .add_errback(move |_| {
            e2.fetch_add(1, SeqCst);
            Ok(0)
        });
    r.callback(1);
    assert_eq!(d.wait().unwrap(), 2);
    assert_eq!(errbacks.load(SeqCst), 0);
}

#[test]
fn rule1_failure_skips_callbacks() {
    let callbacks = counter();
    let (c1, c2) = (callbacks.clone(), callbacks.clone());
    let (d, r) = Deferred::<u32>::pending();
    let d = d
        .add_callback(move |v| {
            c1.fetch_add(1, SeqCst);
            Ok(v)
        })
        .add_callback(move |v| {
            c2.fetch_add(1, SeqCst);
            Ok(v.to_string())
        });
    r.errback(Failure::msg("rule1 failure"));
    assert_eq!(d.wait().unwrap_err().to_string(), "rule1 failure");
    assert_eq!(callbacks.load(SeqCst), 0);
}

#[test]
fn rule1_each_result_is_next_input_across_types() {
    let (d, r) = Deferred::<&str>::pending();
    let d = d
        .add_callback(|s: &str| Ok(s.parse::<u32>()?))
        .add_callback(|n: u32| Ok(vec![n; 3]))
        .add_callback(|v: Vec<u32>| Ok(v.iter().sum::<u32>()))
        .add_callback(|n: u32| Deferred::succeed(format!("total {n}")));
    r.callback("14");
    assert_eq!(d.wait().unwrap(), "total 42");
}

#[test]
fn rule1_errback_recovers_or_passes_on() {
    let recovered = Deferred::<u32>::fail(Failure::msg("a")).add_errback(|_| Ok(5));
    assert_eq!(recovered.wait().unwrap(), 5);
    let passed = Deferred::<u32>::fail(Failure::msg("a"))
        .add_errback(|f| Err(Failure::msg(format!("{f}b"))))
        .add_callback(|v| Ok(v + 1));
    assert_eq!(passed.wait().unwrap_err().to_string(), "ab");
}

// =============================================================================================
// Rule 2: callbacks added to a fired Deferred run at once; otherwise when it fires, during the
// fire. (Which thread runs them is tested in tests/rules.rs, for the kind that has threads.)
// =============================================================================================

#[test]
fn rule2_fired_runs_at_once_before_add_returns() {
    let ran = counter();
    let r1 = ran.clone();
    let d = Deferred::<u32>::succeed(1).add_callback(move |v| {
        r1.fetch_add(1, SeqCst);
        Ok(v + 1)
    });
    assert_eq!(ran.load(SeqCst), 1, "ran before add_callback returned");
    assert!(d.is_fired());
    let (d2, r) = Deferred::<u32>::pending();
    r.callback(5);
    let r2 = ran.clone();
    let d2 = d2.add_callback(move |v| {
        r2.fetch_add(1, SeqCst);
        Ok(v * 2)
    });
    assert_eq!(ran.load(SeqCst), 2, "ran before add_callback returned");
    assert_eq!((d.wait().unwrap(), d2.wait().unwrap()), (2, 10));
}

#[test]
fn rule2_pending_runs_during_the_fire_not_before() {
    let ran = Arc::new(Mutex::new(Vec::new()));
    let (d, r) = Deferred::<u32>::pending();
    let (a, b) = (ran.clone(), ran.clone());
    let d = d
        .add_callback(move |v| {
            a.lock().unwrap().push(v);
            Ok(v + 1)
        })
        .add_errback(Err)
        .add_callback(move |v| {
            b.lock().unwrap().push(v);
            Ok(v + 1)
        });
    assert!(
        ran.lock().unwrap().is_empty(),
        "nothing runs before the fire"
    );
    assert!(!d.is_fired());
    r.callback(1);
    assert_eq!(*ran.lock().unwrap(), [1, 2], "both ran during `callback`");
    assert!(d.is_fired());
    assert_eq!(d.wait().unwrap(), 3);
}

/// A pending chain of five steps, each recording its number in `ran` and adding it to the value.
fn five_recorded_steps(
    d: Deferred<u32>,
    ran: &Arc<Mutex<Vec<u32>>>,
    third: impl FnOnce(u32) -> Deferred<u32> + Value + 'static,
) -> Deferred<u32> {
    let record = |n: u32| {
        let ran = ran.clone();
        move |v: u32| {
            ran.lock().unwrap().push(n);
            Ok(v + n)
        }
    };
    let (r3, ran3) = (ran.clone(), 3);
    d.add_callback(record(1))
        .add_callback(record(2))
        .add_callback(move |v| {
            r3.lock().unwrap().push(ran3);
            third(v + ran3)
        })
        .add_callback(record(4))
        .add_callback(record(5))
}

/// Adds the sixth step (recorded in `ran`, multiplying the value by 10) to `d`.
fn sixth_step(d: Deferred<u32>, ran: &Arc<Mutex<Vec<u32>>>) -> Deferred<u32> {
    let ran = ran.clone();
    d.add_callback(move |v| {
        ran.lock().unwrap().push(6);
        Ok(v * 10)
    })
}

/// Where a chain's end is kept while the chain runs, for a step to add to its own chain.
type EndSlot = Arc<Mutex<Option<Deferred<u32>>>>;

/// A pending chain of five recorded steps whose third adds the sixth to the chain's own end
/// (held in the slot returned, where the new end goes back), then returns what `then` gives.
fn adding_its_sixth_step(
    ran: &Arc<Mutex<Vec<u32>>>,
    then: impl FnOnce(u32) -> Deferred<u32> + Value + 'static,
) -> (EndSlot, Resolver<u32>) {
    let end: EndSlot = Arc::new(Mutex::new(None));
    let (d, r) = Deferred::<u32>::pending();
    let (slot, late) = (end.clone(), ran.clone());
    let d = five_recorded_steps(d, ran, move |v| {
        let d = slot.lock().unwrap().take().expect("the end is in the slot");
        *slot.lock().unwrap() = Some(sixth_step(d, &late));
        then(v)
    });
    *end.lock().unwrap() = Some(d);
    (end, r)
}

#[test]
fn rule2_a_step_added_while_the_chain_runs_runs_after_every_step_before_it() {
    // The third step adds a step to the end of its own chain (held in `end`): it runs after the
    // fourth and fifth, which were added before it, and before the chain fires.
    let ran = Arc::new(Mutex::new(Vec::new()));
    let (end, r) = adding_its_sixth_step(&ran, Deferred::succeed);
    r.callback(0);
    assert_eq!(*ran.lock().unwrap(), [1, 2, 3, 4, 5, 6]);
    let d = end.lock().unwrap().take().unwrap();
    assert_eq!(d.wait().unwrap(), 150);
}

#[test]
fn rule3_the_steps_after_a_step_that_waits_run_in_order_with_those_added_meanwhile() {
    let ran = Arc::new(Mutex::new(Vec::new()));
    let (d, r) = Deferred::<u32>::pending();
    let (inner, inner_r) = Deferred::<u32>::pending();
    let d = five_recorded_steps(d, &ran, move |v| inner.add_callback(move |w| Ok(v + w)));
    r.callback(0);
    assert_eq!(*ran.lock().unwrap(), [1, 2, 3], "the chain waits on the third step's Deferred");
    let d = sixth_step(d, &ran);
    assert!(!d.is_fired());
    inner_r.callback(100);
    assert_eq!(*ran.lock().unwrap(), [1, 2, 3, 4, 5, 6]);
    assert_eq!(d.wait().unwrap(), 1150);
}

#[test]
fn rule3_a_step_that_adds_to_its_own_chain_then_waits_keeps_every_step_in_order() {
    // The third step adds a step to the end of its chain, then returns a pending Deferred: the
    // fourth and fifth, added before, still run before the sixth once it fires.
    let ran = Arc::new(Mutex::new(Vec::new()));
    let (inner, inner_r) = Deferred::<u32>::pending();
    let (end, r) = adding_its_sixth_step(&ran, move |v| inner.add_callback(move |w| Ok(v + w)));
    r.callback(0);
    assert_eq!(*ran.lock().unwrap(), [1, 2, 3]);
    inner_r.callback(100);
    assert_eq!(*ran.lock().unwrap(), [1, 2, 3, 4, 5, 6]);
    let d = end.lock().unwrap().take().unwrap();
    assert_eq!(d.wait().unwrap(), 1150);
}

#[test]
fn rule3_a_step_that_fires_another_chain_lets_it_run_then_goes_on() {
    // A Deferred fired by a step runs its own steps as soon as that step returns, before the
    // steps after it (Twisted's order); then the chain goes on where it was.
    let ran = Arc::new(Mutex::new(Vec::new()));
    let (other, other_r) = Deferred::<u32>::pending();
    let seen = ran.clone();
    let other = other.add_callback(move |v| {
        seen.lock().unwrap().push(v);
        Ok(v)
    });
    let (d, r) = Deferred::<u32>::pending();
    let d = five_recorded_steps(d, &ran, move |v| {
        other_r.callback(100);
        Deferred::succeed(v)
    });
    r.callback(0);
    assert_eq!(*ran.lock().unwrap(), [1, 2, 3, 100, 4, 5]);
    assert_eq!((d.wait().unwrap(), other.wait().unwrap()), (15, 100));
}

// =============================================================================================
// Rule 3: a step returning a pending Deferred pauses the chain; chains of any depth run in
// constant stack. Every test here runs on a thread with a 256 KiB stack.
// =============================================================================================

const MILLION: usize = 1_000_000;

#[test]
fn rule3_million_callbacks_on_pending_deferred() {
    let total = on_small_stack(|| {
        let (d, r) = Deferred::<u64>::pending();
        let mut d = d;
        for _ in 0..MILLION {
            d = d.add_callback(|v| Ok(v + 1));
        }
        assert!(!d.is_fired());
        r.callback(0);
        d.wait().unwrap()
    });
    assert_eq!(total, MILLION as u64);
}

#[test]
fn rule3_million_callbacks_on_fired_deferred() {
    let total = on_small_stack(|| {
        let mut d = Deferred::<u64>::succeed(0);
        for _ in 0..MILLION {
            d = d.add_callback(|v| Ok(v + 1));
        }
        d.wait().unwrap()
    });
    assert_eq!(total, MILLION as u64);
}

/// `n + 1` pending Deferreds `p0 .. pn`; the callback of `p_i` returns `p_{i+1}`'s chain. Returns
/// the outer chain (ending with a callback that adds one) and the Resolvers, outermost first.
fn nested_chain(n: usize) -> (Deferred<u64>, Vec<Resolver<u64>>) {
    let mut resolvers = Vec::with_capacity(n + 1);
    let (innermost, r) = Deferred::<u64>::pending();
    resolvers.push(r);
    let mut chain = innermost;
    for _ in 0..n {
        let (outer, r) = Deferred::<u64>::pending();
        resolvers.push(r);
        let waits_on = chain;
        chain = outer.add_callback(move |_| waits_on);
    }
    resolvers.reverse();
    (chain.add_callback(|v| Ok(v + 1)), resolvers)
}

/// Outermost first: each callback returns a still-pending Deferred, so a million links wait on
/// each other; the innermost fires last and its value travels out through all of them.
#[test]
fn rule3_million_nested_deferreds_outermost_fired_first() {
    let value = on_small_stack(|| {
        let (d, resolvers) = nested_chain(MILLION);
        let mut resolvers = resolvers.into_iter();
        let innermost = resolvers.next_back().unwrap();
        for r in resolvers {
            r.callback(0);
        }
        assert!(!d.is_fired());
        innermost.callback(41);
        d.wait().unwrap()
    });
    assert_eq!(value, 42);
}

/// Innermost first: each callback returns an already-fired Deferred; the outermost fires last.
#[test]
fn rule3_million_nested_deferreds_innermost_fired_first() {
    let value = on_small_stack(|| {
        let (d, resolvers) = nested_chain(MILLION);
        let mut resolvers = resolvers.into_iter().rev();
        resolvers.next().unwrap().callback(41);
        for r in resolvers {
            r.callback(0);
        }
        d.wait().unwrap()
    });
    assert_eq!(value, 42);
}

/// Each callback creates the next pending Deferred and returns it (the shape of a recursive
/// async protocol); a driver fires them one by one; the last returns a fired Deferred, whose
/// value travels out through a million waiting links.
/// `map_err` makes a new chain, the output of a fan-in whose input is the chain before: each
/// arrival fires the next output, which arrives at the next fan-in. Nested ten thousand deep,
/// it runs in constant stack, a success as a failure.
#[test]
fn rule3_ten_thousand_nested_map_errs_fire_in_constant_stack() {
    let (ok, err) = on_small_stack(|| {
        let nested = |d: Deferred<u64>| (0..10_000).fold(d, |d, _| d.map_err(|f: Failure| f));
        let (d, r) = Deferred::<u64>::pending();
        let d = nested(d);
        r.callback(7);
        let (e, r) = Deferred::<u64>::pending();
        let e = nested(e);
        r.errback(Failure::msg("nested failure"));
        (d.wait().unwrap(), e.wait().unwrap_err().to_string())
    });
    assert_eq!(ok, 7);
    assert!(err.contains("nested failure"), "{err}");
}

/// A path of chains, each waiting on the next (a step returned it, and a step is left after the
/// wait), fired from its innermost root, and dropped. Each chain that passed its result on
/// held the one it passed it to, and the outermost's drop dropped them nested, a frame set per
/// chain: 10,000 deep overflowed the small stack. They are dropped one at a time now.
#[test]
fn rule3_a_path_of_ten_thousand_waits_fires_and_drops_in_constant_stack() {
    const DEPTH: u32 = 10_000;
    let path = || {
        let (mut d, resolver) = Deferred::<u32>::pending();
        let mut starts = Vec::new();
        for _ in 0..DEPTH {
            let (outer, start) = Deferred::<u32>::pending();
            d = outer.add_callback(move |_| d).add_callback(|n| Ok(n + 1));
            starts.push(start);
        }
        for start in starts.into_iter().rev() {
            start.callback(0);
        }
        (d, resolver)
    };
    let value = on_small_stack(move || {
        let (d, resolver) = path();
        resolver.callback(0);
        d.wait().unwrap()
    });
    assert_eq!(value, DEPTH);
    on_small_stack(move || {
        let (d, resolver) = path();
        drop(d);
        drop(resolver);
    });
}

/// The same nest, never fired: asked whether anyone can see it, dropped (its end first, or
/// its Resolver first) and cancelled. A chain nobody can read lets go of the fan-in it feeds,
/// whose output is let go of in turn, and a cancel of an output cancels its input, itself an
/// output: each runs in constant stack (aborts without it: the stack overflows).
#[test]
fn rule3_ten_thousand_nested_map_errs_asked_dropped_and_cancelled_in_constant_stack() {
    on_small_stack(|| {
        let nested = |d: Deferred<u64>| (0..10_000).fold(d, |d, _| d.map_err(|f: Failure| f));
        // Asked, then its end dropped: closed from then on.
        let (d, r) = Deferred::<u64>::pending();
        let d = nested(d);
        assert!(!r.is_closed());
        drop(d);
        assert!(r.is_closed());
        drop(r);
        // Its Resolver dropped first: the end fails with `NeverFired`.
        let (d, r) = Deferred::<u64>::pending();
        let d = nested(d);
        drop(r);
        assert!(d.wait().unwrap_err().downcast_ref::<NeverFired>().is_some());
        // Cancelled at its end: the cancel reaches the root through every `map_err`.
        let (d, r) = Deferred::<u64>::pending();
        let d = nested(d);
        d.cancel();
        assert!(d.wait().unwrap_err().is_cancelled());
        assert!(r.is_closed());
    });
}

#[test]
fn rule3_million_nested_deferreds_created_by_callbacks() {
    fn level(depth: usize, queue: Arc<Mutex<Vec<Resolver<u64>>>>) -> Deferred<u64> {
        if depth == MILLION {
            return Deferred::succeed(depth as u64);
        }
        let (d, r) = Deferred::<u64>::pending();
        queue.lock().unwrap().push(r);
        d.add_callback(move |_| level(depth + 1, queue))
    }
    let value = on_small_stack(|| {
        let queue = Arc::new(Mutex::new(Vec::new()));
        let d = level(0, queue.clone());
        let mut fired = 0;
        loop {
            let next = queue.lock().unwrap().pop();
            match next {
                Some(r) => {
                    r.callback(0);
                    fired += 1;
                }
                None => break,
            }
        }
        assert_eq!(fired, MILLION);
        d.wait().unwrap()
    });
    assert_eq!(value, MILLION as u64);
}

#[test]
fn rule3_cancel_million_link_chain() {
    let (cancels, trail) = on_small_stack(|| {
        let (d, _r, cancels) = counting_canceller::<u64>();
        let mut d = d;
        for _ in 0..MILLION {
            d = d.add_callback(|v| Ok(v + 1));
        }
        d.cancel();
        let f = d.wait().unwrap_err();
        assert!(f.is_cancelled());
        (cancels.load(SeqCst), f.trail().len())
    });
    assert_eq!(cancels, 1);
    assert_eq!(trail, MILLION, "the failure passed every step");
}

#[test]
fn rule3_cancel_million_nested_deferreds() {
    let cancels = on_small_stack(|| {
        let (innermost, _keep, cancels) = counting_canceller::<u64>();
        let mut resolvers = Vec::with_capacity(MILLION);
        let mut chain = innermost;
        for _ in 0..MILLION {
            let (outer, r) = Deferred::<u64>::pending();
            resolvers.push(r);
            let waits_on = chain;
            chain = outer.add_callback(move |_| waits_on);
        }
        for r in resolvers.into_iter().rev() {
            r.callback(0); // outermost first: every level now waits on the next
        }
        chain.cancel(); // walks a million levels in to the innermost canceller
        assert!(chain.wait().unwrap_err().is_cancelled());
        cancels.load(SeqCst)
    });
    assert_eq!(cancels, 1);
}

#[test]
fn rule3_abandoned_million_link_chain_reports_never_fired_once() {
    // Reported on the small-stack thread, so captured there.
    let seen = on_small_stack(|| {
        let unhandled = Captured::start();
        let here = line!() + 1;
        let (d, r) = Deferred::<u64>::pending();
        let mut d = d;
        for _ in 0..MILLION {
            d = d.add_callback(|v| Ok(v + 1));
        }
        drop(d);
        drop(r); // NeverFired travels a million links to nobody
        unhandled.of(&format!("{}:{here}:", file!()))
    });
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].message.contains("never fired"));
    assert_eq!(seen[0].trail, MILLION);
}

/// Every step's closure (and what it captured) is released once the chain has run: links do
/// not keep each other alive after the result has passed.
#[test]
fn rule3_closures_released_after_chain_runs() {
    let token = Arc::new(());
    let (d, r) = Deferred::<u64>::pending();
    let mut d = d;
    for _ in 0..1000 {
        let t = token.clone();
        d = d.add_callback(move |v| {
            let _ = &t;
            Ok(v + 1)
        });
    }
    let t = token.clone();
    let (inner, inner_r) = Deferred::<u64>::pending();
    let d = d.add_callback(move |_| {
        drop(t);
        inner
    });
    assert_eq!(Arc::strong_count(&token), 1002);
    r.callback(0);
    inner_r.callback(7);
    assert_eq!(d.wait().unwrap(), 7);
    assert_eq!(Arc::strong_count(&token), 1, "nothing leaked");
}

#[test]
fn rule3_closures_released_after_cancel_and_after_abandon() {
    let token = Arc::new(());
    let t = token.clone();
    let (d, r) = Deferred::<u64>::with_canceller(move || drop(t));
    let mut d = d;
    for _ in 0..100 {
        let t = token.clone();
        d = d.add_callback(move |v| {
            let _ = &t;
            Ok(v)
        });
    }
    d.cancel();
    assert!(d.wait().unwrap_err().is_cancelled());
    drop(r);
    assert_eq!(Arc::strong_count(&token), 1, "released after cancel");

    let (d, r) = Deferred::<u64>::pending();
    let mut d = d;
    for _ in 0..100 {
        let t = token.clone();
        d = d.add_callback(move |v| {
            let _ = &t;
            Ok(v)
        });
    }
    drop(d); // abandoned
    r.callback(1);
    assert_eq!(
        Arc::strong_count(&token),
        1,
        "released after an abandoned chain ran"
    );
}

// =============================================================================================
// Rule 4: a panic inside a callback becomes a Failure the next errback sees; the firer does
// not unwind.
// =============================================================================================

fn panicked_message(f: &Failure) -> String {
    f.downcast_ref::<Panicked>()
        .unwrap_or_else(|| panic!("expected a Panicked failure, got {f}"))
        .message()
        .to_owned()
}

#[test]
fn rule4_panic_in_callback_reaches_next_errback_and_firer_does_not_unwind() {
    let seen = Arc::new(Mutex::new(None));
    let s = seen.clone();
    let skipped = counter();
    let k = skipped.clone();
    let (d, r) = Deferred::<u32>::pending();
    let d = d
        .add_callback(|v| -> Result<u32, Failure> { panic!("rule4 boom {v}") })
        .add_callback(move |v| {
            k.fetch_add(1, SeqCst);
            Ok(v)
        })
        .add_errback(move |f| {
            *s.lock().unwrap() = Some(panicked_message(&f));
            Ok(0)
        });
    let fired = catch_unwind(AssertUnwindSafe(move || r.callback(7)));
    assert!(fired.is_ok(), "the firer did not unwind");
    assert_eq!(seen.lock().unwrap().as_deref(), Some("rule4 boom 7"));
    assert_eq!(skipped.load(SeqCst), 0);
    assert_eq!(d.wait().unwrap(), 0);
}

#[test]
fn rule4_panic_in_callback_of_fired_deferred_does_not_unwind_adder() {
    let added = catch_unwind(|| {
        Deferred::<u32>::succeed(1)
            .add_callback(|_| -> Result<u32, Failure> { panic!("rule4 sync boom") })
    });
    let d = added.expect("add_callback did not unwind");
    assert_eq!(panicked_message(&d.wait().unwrap_err()), "rule4 sync boom");
}

#[test]
fn rule4_panic_in_errback_becomes_failure() {
    let d = Deferred::<u32>::fail(Failure::msg("first"))
        .add_errback(|_| -> Result<u32, Failure> { panic!("rule4 errback boom") })
        .add_errback(|f| Ok(panicked_message(&f).len() as u32));
    assert_eq!(d.wait().unwrap(), "rule4 errback boom".len() as u32);
}

#[test]
fn rule4_panic_in_add_both_becomes_failure() {
    let d = Deferred::<u32>::succeed(1)
        .add_both(|_| -> Result<u32, Failure> { panic!("rule4 both boom") });
    assert_eq!(panicked_message(&d.wait().unwrap_err()), "rule4 both boom");
}

#[test]
fn rule4_panic_with_non_string_payload_keeps_payload() {
    let d = Deferred::<u32>::succeed(1)
        .add_callback(|_| -> Result<u32, Failure> { std::panic::panic_any(1234_i32) });
    let f = d.wait().unwrap_err();
    let p = f.downcast_ref::<Panicked>().expect("Panicked");
    assert_eq!(p.message(), "a panic with a non-string payload");
    let payload = p.take_payload().expect("the payload, once");
    assert_eq!(payload.downcast_ref::<i32>(), Some(&1234));
    assert!(p.take_payload().is_none(), "taken only once");
}

#[test]
fn rule4_panic_in_callback_returning_deferred() {
    let (inner, inner_r) = Deferred::<u32>::pending();
    let d = Deferred::<u32>::succeed(1)
        .add_callback(move |_| inner)
        .add_callback(|_| -> Result<u32, Failure> { panic!("rule4 after inner") });
    let fired = catch_unwind(AssertUnwindSafe(move || inner_r.callback(2)));
    assert!(fired.is_ok());
    assert_eq!(
        panicked_message(&d.wait().unwrap_err()),
        "rule4 after inner"
    );
}

// =============================================================================================
// Rule 5: unhandled failures are reported once (here, to the test's capture); handled ones never.
// =============================================================================================

#[test]
fn rule5_dropped_failure_reported_once() {
    let unhandled = Captured::start();
    let tag = "rule5 dropped_failure_reported_once";
    let d = Deferred::<u32>::fail(Failure::msg(tag));
    assert!(unhandled.of(tag).is_empty());
    drop(d);
    assert_eq!(unhandled.of(tag).len(), 1);
}

#[test]
fn rule5_chain_failed_then_dropped_reported_once() {
    let unhandled = Captured::start();
    let tag = "rule5 chain_failed_then_dropped";
    let (d, r) = Deferred::<u32>::pending();
    let d = d
        .add_callback(|v| Ok(v + 1))
        .add_callback(|v| Ok(v + 1))
        .add_callback(|v| Ok(v.to_string()));
    r.errback(Failure::msg(tag));
    assert!(unhandled.of(tag).is_empty(), "not while the handle lives");
    drop(d);
    let seen = unhandled.of(tag);
    assert_eq!(seen.len(), 1, "once for the chain, not once per link");
    assert_eq!(seen[0].trail, 3, "the report carries the steps it passed");
}

#[test]
fn rule5_failure_arriving_after_drop_reported_once() {
    let unhandled = Captured::start();
    let tag = "rule5 failure_arriving_after_drop";
    let (d, r) = Deferred::<u32>::pending();
    let d = d.add_callback(|v| Ok(v + 1));
    drop(d);
    assert!(unhandled.of(tag).is_empty());
    r.errback(Failure::msg(tag));
    assert_eq!(unhandled.of(tag).len(), 1);
}

#[test]
fn rule5_root_dropped_before_fire_reported_once() {
    let unhandled = Captured::start();
    let tag = "rule5 root_dropped_before_fire";
    let (d, r) = Deferred::<u32>::pending();
    drop(d);
    r.errback(Failure::msg(tag));
    assert_eq!(unhandled.of(tag).len(), 1);
}

#[test]
fn rule5_errback_passing_on_then_dropped_reported_once() {
    let unhandled = Captured::start();
    let tag = "rule5 errback_passing_on";
    let d = Deferred::<u32>::fail(Failure::msg(tag))
        .add_errback(Err)
        .add_errback(Err);
    drop(d);
    assert_eq!(unhandled.of(tag).len(), 1);
}

#[test]
fn rule5_handled_by_errback_never_reported() {
    let unhandled = Captured::start();
    let tag = "rule5 handled_by_errback";
    let (d, r) = Deferred::<u32>::pending();
    let d = d.add_errback(|_| Ok(0));
    r.errback(Failure::msg(tag));
    drop(d);
    let sync = Deferred::<u32>::fail(Failure::msg(tag)).add_errback(|_| Ok(0));
    drop(sync);
    let pair = Deferred::<u32>::fail(Failure::msg(tag)).add_callbacks(Ok, |_| Ok(0));
    drop(pair);
    let both = Deferred::<u32>::fail(Failure::msg(tag)).add_both(|r| Ok(r.is_ok()));
    drop(both);
    assert!(unhandled.of(tag).is_empty());
}

#[test]
fn rule5_failure_moved_from_inner_deferred_not_reported() {
    let unhandled = Captured::start();
    let tag = "rule5 moved_from_inner";
    let (inner, inner_r) = Deferred::<u32>::pending();
    let d = Deferred::<u32>::succeed(1)
        .add_callback(move |_| inner)
        .add_errback(|_| Ok(0));
    inner_r.errback(Failure::msg(tag));
    drop(d);
    let sync = Deferred::<u32>::succeed(1)
        .add_callback(move |_| Deferred::<u32>::fail(Failure::msg(tag)))
        .add_errback(|_| Ok(0));
    drop(sync);
    assert!(unhandled.of(tag).is_empty());
}

#[test]
fn rule5_future_dropped_while_pending_then_failure_reported_once() {
    let unhandled = Captured::start();
    let tag = "rule5 future_dropped_while_pending";
    let (mut d, r) = Deferred::<u32>::pending();
    let waker = Waker::from(Arc::new(CountingWaker(AtomicUsize::new(0))));
    let mut cx = Context::from_waker(&waker);
    assert!(Pin::new(&mut d).poll(&mut cx).is_pending());
    drop(d);
    assert!(unhandled.of(tag).is_empty());
    r.errback(Failure::msg(tag));
    assert_eq!(unhandled.of(tag).len(), 1);
}

#[test]
fn rule5_never_fired_reported_once_when_nobody_listens() {
    let unhandled = Captured::start();
    let here = line!() + 1;
    let (d, r) = Deferred::<u32>::pending();
    let d = d.add_callback(|v| Ok(v + 1));
    drop(d);
    drop(r);
    let tag = format!("{}:{here}:", file!());
    let seen = unhandled.of(&tag);
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].message.contains("never fired"));
}

#[test]
fn rule5_custom_error_type_reported_by_type_name() {
    #[derive(Debug)]
    struct Rule5CustomError(#[allow(dead_code)] Failure);
    impl From<Failure> for Rule5CustomError {
        fn from(f: Failure) -> Self {
            Rule5CustomError(f)
        }
    }
    let unhandled = Captured::start();
    let (d, r) = Deferred::<u32, Rule5CustomError>::pending();
    let d = d.add_callback(|v| Ok(v + 1));
    r.errback(Rule5CustomError(Failure::msg("inner")));
    drop(d);
    let seen = unhandled.of("Rule5CustomError");
    assert_eq!(seen.len(), 1, "{seen:?}");
}

#[test]
fn rule5_panicking_hook_does_not_unwind_into_drop() {
    install_hook();
    let tag = "rule5 PANIC-IN-HOOK";
    let dropped = catch_unwind(|| drop(Deferred::<u32>::fail(Failure::msg(tag))));
    assert!(dropped.is_ok(), "the hook's panic did not escape");
    let (d, r) = Deferred::<u32>::pending();
    drop(d);
    let fired = catch_unwind(AssertUnwindSafe(|| r.errback(Failure::msg(tag))));
    assert!(fired.is_ok(), "the hook's panic did not escape the firer");
    assert_eq!(reports_of(tag).len(), 2);
}

// =============================================================================================
// Rule 6: a Resolver dropped without firing fails its Deferred with NeverFired.
// =============================================================================================

#[test]
fn rule6_resolver_dropped_after_its_deferred_with_no_step_left_reports_nothing() {
    let unhandled = Captured::start();
    let here = line!() + 1;
    let (d, r) = Deferred::<u32>::pending();
    drop(d);
    assert!(r.is_closed());
    drop(r); // nobody wants the result, and nobody is told it never came
    assert!(unhandled.of(&format!("{}:{here}:", file!())).is_empty());
    // Converted by `map_err`, whose Deferred was dropped: the same.
    let here = line!() + 1;
    let (d, r) = Deferred::<u32>::pending();
    drop(d.map_err(|failure| failure));
    assert!(r.is_closed());
    drop(r);
    assert!(unhandled.of(&format!("{}:{here}:", file!())).is_empty());
    // With a canceller: not called (as for any Resolver dropped unfired).
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let (d, r) = Deferred::<u32>::with_canceller(move || {
        c.fetch_add(1, SeqCst);
    });
    drop(d);
    drop(r);
    assert_eq!(calls.load(SeqCst), 0);
}

#[test]
fn rule6_dropped_resolver_fails_with_never_fired() {
    let here = line!() + 1;
    let (d, r) = Deferred::<u32>::pending();
    drop(r);
    let f = d.wait().unwrap_err();
    let never = f.downcast_ref::<NeverFired>().expect("NeverFired");
    assert_eq!(never.created_at().file(), file!());
    assert_eq!(never.created_at().line(), here);
    assert!(f.to_string().contains("never fired"), "{f}");
}

#[test]
fn rule6_errback_sees_never_fired_and_callbacks_are_skipped() {
    let callbacks = counter();
    let c = callbacks.clone();
    let (d, r) = Deferred::<u32>::pending();
    let d = d
        .add_callback(move |v| {
            c.fetch_add(1, SeqCst);
            Ok(v)
        })
        .add_errback(|f| Ok(if f.is::<NeverFired>() { 6 } else { 0 }));
    drop(r);
    assert_eq!(d.wait().unwrap(), 6);
    assert_eq!(callbacks.load(SeqCst), 0);
}

#[test]
fn rule6_never_fired_with_canceller_does_not_call_it() {
    let (d, r, cancels) = counting_canceller::<u32>();
    drop(r);
    d.cancel(); // already failed: nothing to cancel
    assert!(d.wait().unwrap_err().is::<NeverFired>());
    assert_eq!(cancels.load(SeqCst), 0);
}

#[test]
fn rule6_never_fired_in_inner_deferred_reaches_outer() {
    let (inner, inner_r) = Deferred::<u32>::pending();
    let d = Deferred::<u32>::succeed(1).add_callback(move |_| inner);
    drop(inner_r);
    assert!(d.wait().unwrap_err().is::<NeverFired>());
}

// =============================================================================================
// Rule 7: cancellation.
// =============================================================================================

#[test]
fn rule7_canceller_called_and_chain_fails_with_cancelled() {
    let cancels = counter();
    let callbacks = counter();
    let c = cancels.clone();
    let (d, _r) = Deferred::<u32>::with_canceller(move || {
        c.fetch_add(1, SeqCst);
    });
    let k = callbacks.clone();
    let d = d
        .add_callback(move |v| {
            k.fetch_add(1, SeqCst);
            Ok(v)
        })
        .add_callback(|v| Ok(v + 1));
    d.cancel();
    assert_eq!(cancels.load(SeqCst), 1);
    let f = d.wait().unwrap_err();
    assert!(f.is::<Cancelled>() && f.is_cancelled(), "{f}");
    assert_eq!(callbacks.load(SeqCst), 0);
}

#[test]
fn rule7_cancelling_fired_deferred_does_nothing() {
    let (d, r, cancels) = counting_canceller::<u32>();
    let d = d.add_callback(|v| Ok(v + 1));
    r.callback(1);
    d.cancel();
    assert_eq!(d.wait().unwrap(), 2);

    let fired = Deferred::<u32>::succeed(5);
    fired.cancel();
    assert_eq!(fired.wait().unwrap(), 5);

    let failed = Deferred::<u32>::fail(Failure::msg("stays"));
    failed.cancel();
    assert_eq!(failed.wait().unwrap_err().to_string(), "stays");
    assert_eq!(cancels.load(SeqCst), 0);
}

#[test]
fn rule7_panicking_canceller_does_not_escape_cancel() {
    let (d, _r) = Deferred::<u32>::with_canceller(|| panic!("rule7 canceller boom"));
    let d = d.add_callback(|v| Ok(v + 1));
    let cancelled = catch_unwind(AssertUnwindSafe(|| d.cancel()));
    assert!(cancelled.is_ok(), "cancel() did not unwind");
    let f = d.wait().unwrap_err();
    assert_eq!(
        f.downcast_ref::<Panicked>().map(Panicked::message),
        Some("rule7 canceller boom")
    );
}

#[test]
fn rule7_fire_after_cancel_is_ignored() {
    let callbacks = counter();
    let k = callbacks.clone();
    let (d, r) = Deferred::<u32>::pending();
    let d = d.add_callback(move |v| {
        k.fetch_add(1, SeqCst);
        Ok(v)
    });
    d.cancel();
    r.callback(1);
    assert_eq!(callbacks.load(SeqCst), 0);
    assert!(d.wait().unwrap_err().is_cancelled());

    let (d, r) = Deferred::<u32>::pending();
    d.cancel();
    r.errback(Failure::msg("rule7 late failure"));
    assert!(d.wait().unwrap_err().is_cancelled());
}

#[test]
fn rule7_cancel_reaches_inner_deferred_returned_by_callback() {
    let inner_cancels = counter();
    let root_cancels = counter();
    let ic = inner_cancels.clone();
    let (inner, _inner_r) = Deferred::<u32>::with_canceller(move || {
        ic.fetch_add(1, SeqCst);
    });
    let rc = root_cancels.clone();
    let (d, r) = Deferred::<u32>::with_canceller(move || {
        rc.fetch_add(1, SeqCst);
    });
    let d = d.add_callback(move |_| inner).add_callback(|v| Ok(v + 1));
    r.callback(1); // the chain now waits on `inner`
    d.cancel();
    assert_eq!(inner_cancels.load(SeqCst), 1);
    assert_eq!(root_cancels.load(SeqCst), 0);
    assert!(d.wait().unwrap_err().is_cancelled());
}

#[test]
fn rule7_cancel_reaches_through_several_levels() {
    let (deepest, _keep, cancels) = counting_canceller::<u32>();
    let (middle, middle_r) = Deferred::<u32>::pending();
    let middle = middle
        .add_callback(|v| Ok(v + 1))
        .add_callback(move |_| deepest);
    let (top, top_r) = Deferred::<u32>::pending();
    let top = top.add_callback(move |_| middle).add_callback(Ok);
    top_r.callback(0);
    middle_r.callback(0);
    top.cancel();
    assert_eq!(cancels.load(SeqCst), 1);
    assert!(top.wait().unwrap_err().is_cancelled());
}

#[test]
fn rule7_cancel_before_the_step_runs_cancels_root_not_inner() {
    let inner_made = counter();
    let im = inner_made.clone();
    let (d, r) = Deferred::<u32>::pending();
    let d = d.add_callback(move |_| {
        im.fetch_add(1, SeqCst);
        Deferred::<u32>::succeed(1)
    });
    d.cancel();
    r.callback(1);
    assert_eq!(inner_made.load(SeqCst), 0, "the callback never ran");
    assert!(d.wait().unwrap_err().is_cancelled());
}

// Rule 7, re-entrant: a canceller that cancels its own chain again (through a handle) runs
// once, and the chain fails with Cancelled; no lock (or RefCell) is found held.
#[test]
fn rule7_canceller_cancelling_its_own_chain_again_runs_once() {
    let slot = Arc::new(Mutex::new(None::<CancelHandle>));
    let in_canceller = slot.clone();
    let cancels = counter();
    let c = cancels.clone();
    let (d, _r) = Deferred::<u32>::with_canceller(move || {
        c.fetch_add(1, SeqCst);
        let handle = in_canceller.lock().unwrap().take();
        if let Some(handle) = handle {
            handle.cancel();
        }
    });
    let d = d.add_callback(|v| Ok(v + 1));
    *slot.lock().unwrap() = Some(d.cancel_handle());
    d.cancel();
    assert_eq!(cancels.load(SeqCst), 1);
    assert!(d.wait().unwrap_err().is_cancelled());
}

// Rule 6 within rule 7: a canceller that drops the Resolver (instead of firing it), as aborting
// a task drops the future that holds it, ends the chain once, cancelled: the drop's `NeverFired`
// does not replace the cancel under way. Nothing panics.
#[test]
fn rule7_canceller_dropping_its_resolver_ends_the_chain_once() {
    let slot = Arc::new(Mutex::new(None::<Resolver<u32>>));
    let in_canceller = slot.clone();
    let (d, r) = Deferred::<u32>::with_canceller(move || {
        let resolver = in_canceller.lock().unwrap().take();
        drop(resolver);
    });
    *slot.lock().unwrap() = Some(r);
    let ran = counter();
    let k = ran.clone();
    let d = d.add_both(move |result| {
        k.fetch_add(1, SeqCst);
        Ok(result.map_err(|f| (f.is_cancelled(), f.is::<NeverFired>())))
    });
    d.cancel();
    assert_eq!(d.wait().unwrap(), Err((true, false)));
    assert_eq!(ran.load(SeqCst), 1);
}

// =============================================================================================
// Future and wait()
// =============================================================================================

#[test]
fn future_await_fired_and_failed() {
    assert_eq!(block_on(Deferred::<u32>::succeed(3)).unwrap(), 3);
    let f = block_on(Deferred::<u32>::fail(Failure::msg("future failed"))).unwrap_err();
    assert_eq!(f.to_string(), "future failed");
}

#[test]
fn future_poll_pending_then_woken_once_then_ready() {
    let (mut d, r) = Deferred::<u32>::pending();
    let waker_state = Arc::new(CountingWaker(AtomicUsize::new(0)));
    let waker = Waker::from(waker_state.clone());
    let mut cx = Context::from_waker(&waker);
    assert!(Pin::new(&mut d).poll(&mut cx).is_pending());
    assert!(
        Pin::new(&mut d).poll(&mut cx).is_pending(),
        "re-polling is fine"
    );
    assert_eq!(waker_state.0.load(SeqCst), 0);
    r.callback(5);
    assert_eq!(waker_state.0.load(SeqCst), 1, "woken once by the fire");
    match Pin::new(&mut d).poll(&mut cx) {
        Poll::Ready(Ok(5)) => {}
        other => panic!("expected Ready(Ok(5)), got {other:?}"),
    }
}

#[test]
fn future_poll_after_completion_panics() {
    let mut d = Deferred::<u32>::succeed(1);
    let waker = Waker::from(Arc::new(CountingWaker(AtomicUsize::new(0))));
    let mut cx = Context::from_waker(&waker);
    assert!(matches!(Pin::new(&mut d).poll(&mut cx), Poll::Ready(Ok(1))));
    let again = catch_unwind(AssertUnwindSafe(|| {
        let _ = Pin::new(&mut d).poll(&mut cx);
    }));
    assert!(again.is_err(), "polling a completed Deferred panics");
}

/// Inside a callback that the run loop is delivering, firing a Resolver queues that chain until
/// the current callback returns; waiting on it from inside the callback therefore never
/// returns, although the Deferred was fired on this very thread. (The same on a fired Deferred,
/// where no run loop is active, works.) Watchdog: fails instead of hanging.
#[test]
fn wait_inside_callback_on_chain_fired_there_does_not_deadlock() {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (d, r) = Deferred::<u32>::pending();
        let d = d.add_callback(|_| {
            let (d2, r2) = Deferred::<u32>::pending();
            let d2 = d2.add_callback(|x| Ok(x + 1));
            r2.callback(1);
            Ok(d2.wait().unwrap())
        });
        r.callback(0);
        let _ = tx.send(d.wait().unwrap());
    });
    let got = rx.recv_timeout(std::time::Duration::from_secs(10));
    assert_eq!(got, Ok(2), "wait() inside the callback never returned");
}

/// `d` with a first step that cancels the chain it is in — which is running right now — through
/// the handle put in the returned slot once the chain is built, then gives `x + 1`.
fn first_step_cancels_its_chain(
    d: Deferred<u32>,
) -> (Deferred<u32>, Arc<Mutex<Option<CancelHandle>>>) {
    let handle = Arc::new(Mutex::new(None::<CancelHandle>));
    let in_step = handle.clone();
    let d = d.add_callback(move |x| {
        if let Some(handle) = in_step.lock().unwrap().as_ref() {
            handle.cancel();
        }
        Ok(x + 1)
    });
    (d, handle)
}

// Rule 7, a cancel that lands while a callback runs, when that callback returns a value: the
// cancel is remembered for the rest of the run, and the next Deferred a later step returns is
// cancelled at once (the chain is one link: a cancel cannot be lost between two steps).
#[test]
fn rule7_cancel_while_callback_runs_reaches_a_later_steps_deferred() {
    let inner_cancelled = Arc::new(AtomicUsize::new(0));
    let flag = inner_cancelled.clone();
    // The inner Deferred's resolver, kept unfired until the test ends: only the cancel can end it.
    let (keep_resolver, _kept_resolver) = mpsc::channel::<Resolver<u32>>();
    let (d, r) = Deferred::<u32>::pending();
    let (d, handle) = first_step_cancels_its_chain(d);
    let d = d
        .add_callback(|x| Ok(x * 10)) // runs: a value is not cancellable
        .add_callback(move |x| {
            let (inner, inner_r) = Deferred::<u32>::with_canceller(move || {
                flag.fetch_add(1, SeqCst);
            });
            keep_resolver.send(inner_r).unwrap();
            inner.add_callback(move |y| Ok(x + y))
        });
    *handle.lock().unwrap() = Some(d.cancel_handle());
    r.callback(1);
    assert!(d.wait().unwrap_err().is_cancelled());
    assert_eq!(inner_cancelled.load(SeqCst), 1);
}

// Rule 7, a cancel that reaches a combinator's output (`map_err`'s, `gather_results`'): its
// inputs are cancelled, and the output fires with what they answer. That answer lands between
// two waits of the chains after it: as for any cancel that lands there, the next Deferred a step
// returns — on the output's own chain, or on a chain waiting on it — is cancelled at once. So
// whether the inputs answered inside the cancel (called from outside any callback) or after it
// returned (called from a callback, their answers queued on the thread's run loop; or past 16
// combinators nested, their cancels put off until the outer ones return:
// `run_loop::in_constant_stack`), each recovery an errback returns is cancelled.
#[test]
fn rule7_a_cancel_through_a_combinators_output_reaches_the_next_deferred_a_step_returns() {
    /// The shapes: the step is on a chain waiting on the output, on the output's own chain, or
    /// on each of 40 chains each waiting on a combinator of the one before.
    #[derive(Clone, Copy, Debug)]
    enum Shape {
        Waiting,
        Own,
        Nested,
    }
    for shape in [Shape::Waiting, Shape::Own, Shape::Nested] {
        for gather in [false, true] {
            for from_a_callback in [false, true] {
                let made = counter();
                let cancelled = counter();
                // The recoveries' resolvers, kept unfired: only a cancel can end them.
                let (keep, _kept) = mpsc::channel::<Resolver<u32>>();
                let recovering = |made: &Arc<AtomicUsize>| {
                    let (made, cancelled, keep) = (made.clone(), cancelled.clone(), keep.clone());
                    move |f: Failure| {
                        assert!(f.is_cancelled(), "the input's cancellation: {f}");
                        made.fetch_add(1, SeqCst);
                        let (recovery, resolver) =
                            Deferred::<u32>::with_canceller(move || {
                                cancelled.fetch_add(1, SeqCst);
                            });
                        keep.send(resolver).unwrap();
                        recovery
                    }
                };
                // `d`'s combinator: a `map_err`, or a `gather_results` of it alone (its
                // `FirstError` unwrapped, so that the errback sees the cancellation as it is).
                let combine = move |d: Deferred<u32>| {
                    if gather {
                        kind::gather_results([d]).add_callbacks(
                            |mut values| Ok(values.pop().expect("one input")),
                            |f| {
                                Err(f
                                    .trap::<deferred::FirstError>()
                                    .map_or_else(|f| f, |first| first.failure))
                            },
                        )
                    } else {
                        d.map_err(|f: Failure| f)
                    }
                };
                // The input: no canceller (a cancel fails it), and a step, which makes its
                // answer a run of its own: a cancel from a callback queues it.
                let (input, _input_r) = Deferred::<u32>::pending();
                let input = input.add_callback(|x| Ok(x + 1));
                // A chain of its own that waits on `output` (built on a pending root, fired
                // once the steps are in: a step added to a fired Deferred runs at once, and the
                // Deferred it returns would be `output` itself).
                let waiting_on = |output: Deferred<u32>| {
                    let (root, resolver) = Deferred::<u32>::pending();
                    let waiting = root
                        .add_callback(move |_| output)
                        .add_errback(recovering(&made));
                    resolver.callback(0);
                    waiting
                };
                let d = match shape {
                    Shape::Waiting => waiting_on(combine(input)),
                    Shape::Own => combine(input).add_errback(recovering(&made)),
                    Shape::Nested => (0..40).fold(input, |d, _| waiting_on(combine(d))),
                };
                let handle = d.cancel_handle();
                if from_a_callback {
                    let (outer, outer_r) = Deferred::<u32>::pending();
                    let outer = outer.add_callback(move |x| {
                        handle.cancel();
                        Ok(x)
                    });
                    outer_r.callback(0);
                    assert_eq!(outer.wait().unwrap(), 0);
                } else {
                    handle.cancel();
                }
                let case = format!("{shape:?}, gather {gather}, from a callback {from_a_callback}");
                let made = made.load(SeqCst);
                let levels = if matches!(shape, Shape::Nested) { 40 } else { 1 };
                assert_eq!(made, levels, "{case}: each errback ran");
                assert_eq!(cancelled.load(SeqCst), made, "{case}: every recovery was cancelled");
                assert!(d.wait().unwrap_err().is_cancelled(), "{case}");
            }
        }
    }
}

// Rule 7: a cancel that lands while the steps run, when no later step returns a Deferred, has
// nothing to cancel: the chain ends with its value.
#[test]
fn rule7_cancel_while_callbacks_run_is_spent_when_the_chain_fires() {
    let (d, r) = Deferred::<u32>::pending();
    let (d, handle) = first_step_cancels_its_chain(d);
    let d = d.add_callback(|x| Ok(x * 10));
    *handle.lock().unwrap() = Some(d.cancel_handle());
    r.callback(1);
    assert_eq!(d.wait().unwrap(), 20);
    // Cancelling the fired chain again does nothing.
    handle.lock().unwrap().as_ref().unwrap().cancel();
}

// Rule 3: a step that changes the value's type, then returns a pending Deferred of yet another
// type, then more steps: the result lands in the right place at each step.
#[test]
fn rule3_types_change_across_pending_steps() {
    let (d, r) = Deferred::<u32>::pending();
    let (inner, inner_r) = Deferred::<Vec<u8>>::pending();
    let d = d
        .add_callback(|x| Ok(x.to_string())) // u32 -> String
        .add_callback(move |s| inner.add_callback(move |v| Ok((s, v)))) // -> (String, Vec<u8>)
        .add_callback(|(s, v)| Ok(format!("{s}:{}", v.len()))) // -> String
        .add_callback(|s| Ok(s.len())); // -> usize
    r.callback(42);
    assert!(!d.is_fired());
    inner_r.callback(vec![1, 2, 3]);
    assert_eq!(d.wait().unwrap(), 4); // "42:3"
}

// Rule 4: a step that returns a Deferred whose result was already taken (polled to completion)
// fails the chain; it neither panics in the thread that fired nor strands the chain.
#[test]
fn rule4_a_step_returning_a_spent_deferred_fails_the_chain() {
    use std::future::Future;
    use std::task::{Context, Poll};
    let (mut spent, spent_r) = Deferred::<u32>::pending();
    spent_r.callback(5);
    let waker = futures::task::noop_waker();
    let polled = std::pin::Pin::new(&mut spent).poll(&mut Context::from_waker(&waker));
    assert!(matches!(polled, Poll::Ready(Ok(5))));
    let (d, r) = Deferred::<u32>::pending();
    let d = d
        .add_callback(move |_| spent)
        .add_errback(|f: Failure| Ok(f.to_string().len() as u32));
    r.callback(1); // does not panic
    assert!(d.wait().unwrap() > 0);
}

// Rule 3: a step that returns a Deferred of its own chain (Twisted's "callback returned the
// Deferred it was attached to") fails the chain instead of waiting on itself for ever.
#[test]
fn rule3_a_step_returning_its_own_chain_fails_it() {
    let own = Arc::new(std::sync::Mutex::new(None::<Deferred<u32>>));
    let slot = own.clone();
    let (d, r) = Deferred::<u32>::pending();
    let d = d.add_callback(move |_| slot.lock().unwrap().take().expect("stored"));
    // The end of the chain, handed to its own step; a second end observes the failure.
    let (seen_tx, seen_rx) = mpsc::channel();
    let end = d.add_both(move |result| {
        seen_tx.send(result.map_err(|f| f.to_string())).unwrap();
        Ok(0)
    });
    *own.lock().unwrap() = Some(end);
    r.callback(1);
    let seen = seen_rx
        .recv_timeout(std::time::Duration::from_secs(5))
        .expect("the chain ended");
    assert!(seen.unwrap_err().contains("its own chain"));
}

// =============================================================================================
// Rule 9: chains may wait on each other; nothing can fire such a cycle; a cancel that reaches it
// returns, and cancels the wait that closes the cycle: that chain goes on with the
// cancellation, the others in turn. (deferred-core/tests/cycles.rs has more, for the `Send`
// kind: longer cycles, cycles through combinators, a cycle formed from two threads.)
// =============================================================================================

/// Two chains, a step of each returning the other's end; then a cancel of one. Built, fired and
/// cancelled on a thread of its own, so that a cancel going round the cycle for ever fails the
/// test instead of hanging it (a guard, not a timing assertion).
#[test]
fn rule9_two_chains_waiting_on_each_other_cancel_and_both_go_on() {
    let (done, finished) = mpsc::channel();
    thread::spawn(move || {
        type Slot = Arc<Mutex<Option<Deferred<u32>>>>;
        let slots: [Slot; 2] = [Arc::default(), Arc::default()];
        let went_on = Arc::new(Mutex::new(Vec::new()));
        let mut resolvers = Vec::new();
        let mut handles = Vec::new();
        for i in 0..2 {
            let (root, resolver) = Deferred::<u32>::pending();
            let next = slots[(i + 1) % 2].clone();
            let log = went_on.clone();
            let end = root
                .add_callback(move |_| next.lock().unwrap().take().expect("in its slot"))
                .add_both(move |result: Result<u32, Failure>| {
                    log.lock().unwrap().push(match &result {
                        Ok(_) => "value",
                        Err(f) if f.is_cancelled() => "cancelled",
                        Err(_) => "another failure",
                    });
                    Ok(0)
                });
            handles.push(end.cancel_handle());
            *slots[i].lock().unwrap() = Some(end);
            resolvers.push(resolver);
        }
        for resolver in resolvers {
            resolver.callback(1); // each chain now waits on the other: a cycle
        }
        assert!(went_on.lock().unwrap().is_empty(), "nothing fires a cycle");
        handles[0].cancel();
        let went_on = went_on.lock().unwrap().clone();
        let _ = done.send(went_on);
    });
    let went_on = finished
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the cancel of a cycle did not return");
    // The chain whose wait closed the cycle went on with the cancellation; the other with what
    // that one gave (its `add_both` recovered: a value).
    let mut sorted = went_on.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ["cancelled", "value"], "{went_on:?}");
}
