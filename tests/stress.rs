//! Stress (rule 8, at scale): many Deferreds fired, chained and cancelled from 8 threads at once,
//! in random order, then counted. Every callback must have run exactly as often as its chain's
//! outcome says (once, or never when a failure or a cancellation skipped it), every chain must
//! have ended exactly once, and every failure must have been seen exactly once: by the chain's
//! last step, or by the unhandled-error hook when nobody held the chain's end.
//!
//! Per Deferred `i`, a deterministic plan (from a xorshift RNG seeded with `i`) says how it fires
//! (success, failure, or its Resolver is dropped), whether its first callback returns an inner
//! pending Deferred (fired, or dropped, by whichever thread picks it up), whether the chain is
//! cancelled at its root or at its end (racing the fire), and whether anyone handles the outcome.
//! The tasks — fire, build the chain, cancel — of each Deferred go to random threads, and each
//! thread runs its tasks in a random order.
//!
//! `STRESS_PER_THREAD=n cargo test --test stress` changes the scale (default below).

mod rng;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use deferred::{CancelHandle, Cancelled, Deferred, Failure, NeverFired, Resolver};
use rng::Rng;

const THREADS: usize = 8;
/// Deferreds per thread. Debug builds run the full 800,000 in a few seconds.
const DEFAULT_PER_THREAD: usize = 100_000;
/// Deferreds made, distributed and settled per round (bounds the memory of pending chains).
const ROUND: usize = 16_000;

/// Unique to this test: the unhandled-error hook is global.
const TAG: &str = "stress-unhandled #";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fire {
    Ok,
    Err,
    DropResolver,
}

/// What happens to Deferred `i`.
#[derive(Clone, Copy, Debug)]
struct Plan {
    fire: Fire,
    /// The first callback returns an inner pending Deferred...
    nested: bool,
    /// ...whose Resolver is dropped instead of fired.
    inner_dropped: bool,
    /// A thread cancels the root (racing the fire).
    cancel_root: bool,
    /// A thread cancels the end of the chain (racing the fire, and the inner Deferred).
    cancel_end: bool,
    /// The chain ends with a step that records its outcome; else its end is dropped and a
    /// failure must reach the unhandled-error hook.
    handled: bool,
}

impl Plan {
    fn of(i: usize) -> Plan {
        let mut rng = Rng::new(i as u64 ^ 0x5EED);
        let fire = match rng.below(8) {
            0 | 1 => Fire::Err,
            2 => Fire::DropResolver,
            _ => Fire::Ok,
        };
        Plan {
            fire,
            nested: rng.chance(1, 3),
            inner_dropped: rng.chance(1, 6),
            cancel_root: rng.chance(1, 8),
            cancel_end: rng.chance(1, 8),
            handled: rng.chance(3, 4),
        }
    }

    fn cancelled(&self) -> bool {
        self.cancel_root || self.cancel_end
    }

    /// The outcome if no cancellation lands.
    fn expected(&self, i: usize) -> u64 {
        match self.fire {
            Fire::Err => BOOM,
            Fire::DropResolver => NEVER_FIRED,
            Fire::Ok if self.nested && self.inner_dropped => NEVER_FIRED,
            Fire::Ok if self.nested => (i as u64 + INNER_VALUE) * 2,
            Fire::Ok => (i as u64 + 1) * 2,
        }
    }
}

const INNER_VALUE: u64 = 7;
// Outcome codes for failures (values are far below these).
const CANCELLED: u64 = u64::MAX - 1;
const NEVER_FIRED: u64 = u64::MAX - 2;
const BOOM: u64 = u64::MAX - 3;
const OTHER: u64 = u64::MAX - 4;
const NONE: u64 = u64::MAX;

/// What happened to Deferred `i`, counted from its callbacks and the hook.
struct Item {
    first: AtomicU32,
    inner: AtomicU32,
    second: AtomicU32,
    /// Handled chains: calls of the last step. Unhandled chains: calls of the tagging errback.
    last: AtomicU32,
    reports: AtomicU32,
    outcome: AtomicU64,
}

impl Item {
    fn new() -> Item {
        Item {
            first: AtomicU32::new(0),
            inner: AtomicU32::new(0),
            second: AtomicU32::new(0),
            last: AtomicU32::new(0),
            reports: AtomicU32::new(0),
            outcome: AtomicU64::new(NONE),
        }
    }
}

static ITEMS: OnceLock<Vec<Item>> = OnceLock::new();
static FOREIGN_REPORTS: AtomicU32 = AtomicU32::new(0);
/// Inner Deferreds' Resolvers, waiting for a thread to fire (or drop) them.
static INNER: Mutex<Vec<(Resolver<u64>, bool)>> = Mutex::new(Vec::new());
/// Ends of chains waiting for a thread to cancel them.
static END_CANCELS: Mutex<Vec<CancelHandle>> = Mutex::new(Vec::new());

fn items() -> &'static [Item] {
    ITEMS.get().expect("initialised by the test")
}

fn code(result: &Result<u64, Failure>) -> u64 {
    match result {
        Ok(v) => *v,
        Err(f) => failure_code(f),
    }
}

fn failure_code(f: &Failure) -> u64 {
    if f.is::<Cancelled>() {
        CANCELLED
    } else if f.is::<NeverFired>() {
        NEVER_FIRED
    } else if f.to_string() == "boom" {
        BOOM
    } else {
        eprintln!("unexpected failure: {f:?}");
        OTHER
    }
}

enum Task {
    Fire(usize, Resolver<u64>),
    Chain(usize, Deferred<u64>),
    Cancel(CancelHandle),
}

fn build_chain(i: usize, d: Deferred<u64>) {
    let plan = Plan::of(i);
    let d = d
        .add_callback(move |v| {
            items()[i].first.fetch_add(1, SeqCst);
            assert_eq!(v, i as u64);
            if plan.nested {
                let (inner, resolver) = Deferred::pending();
                INNER.lock().unwrap().push((resolver, plan.inner_dropped));
                inner.add_callback(move |w| {
                    items()[i].inner.fetch_add(1, SeqCst);
                    Ok(v + w)
                })
            } else {
                Deferred::succeed(v + 1)
            }
        })
        .add_callback(move |v| {
            items()[i].second.fetch_add(1, SeqCst);
            Ok(v * 2)
        });
    if plan.cancel_end {
        END_CANCELS.lock().unwrap().push(d.cancel_handle());
    }
    if plan.handled {
        let end = d.add_both(move |result| {
            let item = &items()[i];
            item.last.fetch_add(1, SeqCst);
            item.outcome.store(code(&result), SeqCst);
            Ok::<(), Failure>(())
        });
        drop(end);
    } else {
        // Tag the failure with `i` and pass it on to an end nobody holds: the hook must see it.
        let end = d.add_errback(move |f| {
            let item = &items()[i];
            item.last.fetch_add(1, SeqCst);
            item.outcome.store(failure_code(&f), SeqCst);
            Err(Failure::msg(format!("{TAG}{i}: {f}")))
        });
        drop(end);
    }
}

fn run_task(task: Task) {
    match task {
        Task::Fire(i, resolver) => match Plan::of(i).fire {
            Fire::Ok => resolver.callback(i as u64),
            Fire::Err => resolver.errback(Failure::msg("boom")),
            Fire::DropResolver => drop(resolver),
        },
        Task::Chain(i, d) => build_chain(i, d),
        Task::Cancel(handle) => handle.cancel(),
    }
}

/// Fires (or drops) one waiting inner Resolver, if any.
fn fire_one_inner() -> bool {
    let next = INNER.lock().unwrap().pop();
    match next {
        Some((resolver, true)) => drop(resolver),
        Some((resolver, false)) => resolver.callback(INNER_VALUE),
        None => return false,
    }
    true
}

fn cancel_one_end() -> bool {
    let next = END_CANCELS.lock().unwrap().pop();
    match next {
        Some(handle) => handle.cancel(),
        None => return false,
    }
    true
}

fn per_thread() -> usize {
    std::env::var("STRESS_PER_THREAD")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_PER_THREAD)
}

#[test]
fn eight_threads_fire_chain_and_cancel_in_random_order() {
    let total = THREADS * per_thread();
    ITEMS.get_or_init(|| (0..total).map(|_| Item::new()).collect());
    let previous = deferred::set_unhandled_hook(|f: &Failure| {
        let message = f.to_string();
        let index = message
            .strip_prefix(TAG)
            .and_then(|rest| rest.split(':').next())
            .and_then(|i| i.parse::<usize>().ok());
        match index {
            Some(i) => {
                items()[i].reports.fetch_add(1, SeqCst);
            }
            None => {
                eprintln!("foreign unhandled failure: {f:?}");
                FOREIGN_REPORTS.fetch_add(1, SeqCst);
            }
        }
    });

    let started = Instant::now();
    let mut rng = Rng::new(0xD1CE);
    for round_start in (0..total).step_by(ROUND) {
        let round_end = (round_start + ROUND).min(total);
        let mut queues: Vec<Vec<Task>> = (0..THREADS).map(|_| Vec::new()).collect();
        for i in round_start..round_end {
            let plan = Plan::of(i);
            let (d, resolver) = Deferred::<u64>::pending();
            if plan.cancel_root {
                queues[rng.below(THREADS)].push(Task::Cancel(d.cancel_handle()));
            }
            queues[rng.below(THREADS)].push(Task::Fire(i, resolver));
            queues[rng.below(THREADS)].push(Task::Chain(i, d));
        }
        for queue in &mut queues {
            rng.shuffle(queue);
        }
        std::thread::scope(|s| {
            for (t, queue) in queues.into_iter().enumerate() {
                let seed = rng.next() ^ t as u64;
                s.spawn(move || {
                    let mut rng = Rng::new(seed);
                    for task in queue {
                        run_task(task);
                        // Now and then, fire an inner Deferred or cancel a chain's end that some
                        // other thread queued.
                        if rng.chance(1, 2) {
                            fire_one_inner();
                        }
                        if rng.chance(1, 4) {
                            cancel_one_end();
                        }
                    }
                });
            }
        });
        // Settle what the threads left: every root has fired, so no new inner Deferreds appear.
        while cancel_one_end() {}
        while fire_one_inner() {}
    }
    let elapsed = started.elapsed();
    deferred::restore_unhandled_hook(previous);

    let mut errors = Vec::new();
    let mut stats = [0usize; 4]; // ok, failed, cancelled, unhandled reports
    for (i, item) in items().iter().enumerate() {
        let plan = Plan::of(i);
        let get = |c: &AtomicU32| c.load(SeqCst);
        let (first, inner, second) = (get(&item.first), get(&item.inner), get(&item.second));
        let (last, reports) = (get(&item.last), get(&item.reports));
        let outcome = item.outcome.load(SeqCst);
        let mut check = |ok: bool, what: &str| {
            if !ok && errors.len() < 20 {
                errors.push(format!(
                    "#{i} {plan:?}: {what} (first {first}, inner {inner}, second {second}, \
                     last {last}, reports {reports}, outcome {outcome:#x})"
                ));
            }
        };
        check(
            first <= 1 && inner <= 1 && second <= 1,
            "a callback ran twice",
        );
        let succeeded = outcome < OTHER;
        if plan.handled {
            check(last == 1, "the last step did not run exactly once");
            check(reports == 0, "a handled failure was reported");
        } else {
            // The tagging errback runs once for a failure, never for a success; each failure it
            // passes on is reported exactly once.
            check(last <= 1, "the errback ran twice");
            check(reports == last, "a failure was lost or reported twice");
        }
        let expected = plan.expected(i);
        let expected_failure = expected >= OTHER;
        if plan.handled {
            if plan.cancelled() {
                check(
                    outcome == expected || outcome == CANCELLED,
                    "not an allowed outcome",
                );
            } else {
                check(outcome == expected, "wrong outcome");
            }
        } else if plan.cancelled() {
            check(
                last == u32::from(expected_failure) || outcome == CANCELLED,
                "not an allowed outcome",
            );
        } else {
            check(
                last == u32::from(expected_failure),
                "a failure was lost (or a success failed)",
            );
            if expected_failure {
                check(outcome == expected, "wrong failure");
            }
        }
        // Callbacks ran exactly as the outcome says.
        if plan.handled && succeeded {
            check(first == 1 && second == 1, "a callback was lost");
            check(
                inner == u32::from(plan.nested),
                "the inner callback was lost",
            );
        }
        if !plan.cancelled() {
            let root_ok = plan.fire == Fire::Ok;
            check(first == u32::from(root_ok), "first callback count");
            let inner_ok = root_ok && plan.nested && !plan.inner_dropped;
            check(inner == u32::from(inner_ok), "inner callback count");
            check(
                second == u32::from(root_ok && (!plan.nested || inner_ok)),
                "second callback count",
            );
        }
        match outcome {
            CANCELLED => stats[2] += 1,
            NONE => stats[0] += 1, // an unhandled chain that succeeded
            v if v < OTHER => stats[0] += 1,
            _ => stats[1] += 1,
        }
        stats[3] += reports as usize;
    }
    eprintln!(
        "stress: {total} Deferreds on {THREADS} threads in {elapsed:?}: {} succeeded, {} failed, \
         {} cancelled, {} unhandled failures reported",
        stats[0], stats[1], stats[2], stats[3]
    );
    assert_eq!(
        FOREIGN_REPORTS.load(SeqCst),
        0,
        "unexpected unhandled failures"
    );
    assert!(
        errors.is_empty(),
        "{} violations:\n{}",
        errors.len(),
        errors.join("\n")
    );
    assert!(
        stats[2] > 0,
        "no cancellation won a race: the test lost its teeth"
    );
}
