//! Stress of a run that takes a chain's stages together (`Chain::drive_all`) and puts back the
//! ones it did not run, and of the end that takes a fired chain's result without its lock.
//!
//! Many threads at once: roots fired (from task threads, from pools, from inside other chains'
//! steps), steps added one at a time to chains that may be running on another thread (the end
//! of a chain passed from thread to thread while it is built), steps that return pending
//! Deferreds (themselves chains of steps, fired later by other threads, or at once inside the
//! step), steps that fire other chains (the run lets the thread's queue go first), `chain!` runs
//! whose `catch` waits, and cancels through `CancelHandle`s racing all of it. Ends are taken by
//! `wait`, by a future, by `poll_fired`, or dropped.
//!
//! Every step is an `add_both` (or a `chain!` `then`/`catch` pair counted as one), so every step
//! added runs exactly once whatever the outcome. Each step checks that it runs in its chain's
//! order (its index is the next), and that the value it gets is the one the step before gave
//! (through any inner chain it waited on). Every chain's end gets exactly one result.
//!
//! `STRESS_BATCH_SECS` (default 3), `STRESS_BATCH_SEED` (default 1), `STRESS_BATCH_THREADS`
//! (default 6), `STRESS_BATCH_CHAINS` (chains a round, default 600).

mod rng;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deferred::{CancelHandle, Cancelled, Deferred, Failure, Resolver, chain};
use rng::Rng;

fn mix(v: u64, k: u32, id: usize) -> u64 {
    (v ^ (u64::from(k) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .rotate_left(17)
        .wrapping_add(id as u64)
}

/// What the next step of a chain must get, if it gets a value.
enum Expect {
    Val(u64),
    Err,
    /// The value the inner chain's last step gave (a step returned that chain's end).
    Inner(Arc<St>),
}

struct StInner {
    next: u32,
    added: u32,
    expect: Expect,
}

/// One chain (a top chain, or an inner one a step returned).
struct St {
    id: usize,
    top: bool,
    s: Mutex<StInner>,
    /// Results its end got (top chains).
    results: AtomicUsize,
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);
static ALL: Mutex<Vec<Arc<St>>> = Mutex::new(Vec::new());
static ERRORS: Mutex<Vec<String>> = Mutex::new(Vec::new());
static ERROR_COUNT: AtomicUsize = AtomicUsize::new(0);
static TOPS: AtomicUsize = AtomicUsize::new(0);
static TOPS_DONE: AtomicUsize = AtomicUsize::new(0);
static STEPS_RUN: AtomicU64 = AtomicU64::new(0);
static CANCELLED_SEEN: AtomicU64 = AtomicU64::new(0);
static INNER_SEEN: AtomicU64 = AtomicU64::new(0);

/// Resolvers waiting for somebody to fire them: (resolver, value, how: 0 callback, 1 errback,
/// 2 drop).
static RESOLVERS: Mutex<Vec<(Resolver<u64>, u64, u8)>> = Mutex::new(Vec::new());
static CANCELS: Mutex<Vec<CancelHandle>> = Mutex::new(Vec::new());
static BUILDS: Mutex<Vec<Build>> = Mutex::new(Vec::new());
static ENDS: Mutex<Vec<(Arc<St>, Deferred<u64>)>> = Mutex::new(Vec::new());

fn error(msg: String) {
    ERROR_COUNT.fetch_add(1, SeqCst);
    let mut errors = ERRORS.lock().unwrap();
    if errors.len() < 30 {
        errors.push(msg);
    }
}

fn new_st(top: bool, expect: Expect) -> Arc<St> {
    let st = Arc::new(St {
        id: NEXT_ID.fetch_add(1, SeqCst),
        top,
        s: Mutex::new(StInner {
            next: 0,
            added: 0,
            expect,
        }),
        results: AtomicUsize::new(0),
    });
    ALL.lock().unwrap().push(st.clone());
    if top {
        TOPS.fetch_add(1, SeqCst);
    }
    st
}

/// The value a chain's next step must get (`None`: a failure).
fn resolve(expect: &Expect) -> Option<u64> {
    match expect {
        Expect::Val(v) => Some(*v),
        Expect::Err => None,
        Expect::Inner(inner) => resolve(&inner.s.lock().unwrap().expect),
    }
}

/// Checks that step `k` of `st` runs now, in order, on what the step before gave.
fn check_in(st: &St, k: u32, input: &Result<u64, Failure>, s: &mut StInner) {
    STEPS_RUN.fetch_add(1, SeqCst);
    if s.next != k {
        error(format!(
            "chain #{}: step {k} ran when step {} was next (added {})",
            st.id, s.next, s.added
        ));
    }
    s.next = k + 1;
    check_value(st, k, input, s);
}

fn check_value(st: &St, k: u32, input: &Result<u64, Failure>, s: &StInner) {
    match input {
        Ok(v) => {
            let expected = resolve(&s.expect);
            if expected != Some(*v) {
                error(format!(
                    "chain #{}: step {k} got {v:#x}, expected {expected:x?}",
                    st.id
                ));
            }
        }
        Err(f) => {
            if f.is::<Cancelled>() {
                CANCELLED_SEEN.fetch_add(1, SeqCst);
            }
        }
    }
}

fn pool_resolver(resolver: Resolver<u64>, value: u64, rng: &mut Rng) {
    let how = match rng.below(10) {
        0 => 1,
        1 => 2,
        _ => 0,
    };
    RESOLVERS.lock().unwrap().push((resolver, value, how));
}

fn fire(resolver: Resolver<u64>, value: u64, how: u8) {
    match how {
        0 => resolver.callback(value),
        1 => resolver.errback(Failure::msg("fired failed")),
        _ => drop(resolver),
    }
}

fn fire_one_pooled() -> bool {
    let next = RESOLVERS.lock().unwrap().pop();
    match next {
        Some((r, v, how)) => {
            fire(r, v, how);
            true
        }
        None => false,
    }
}

fn cancel_one() -> bool {
    let next = CANCELS.lock().unwrap().pop();
    match next {
        Some(handle) => {
            handle.cancel();
            true
        }
        None => false,
    }
}

/// A pending chain with value `value` at its root, and up to 3 steps; its resolver goes to the
/// pool (or is fired at once, inside the step that made it, when `fire_now`).
fn inner_chain(value: u64, depth: u32, rng: &mut Rng, fire_now: bool) -> (Arc<St>, Deferred<u64>) {
    INNER_SEEN.fetch_add(1, SeqCst);
    let st = new_st(false, Expect::Val(value));
    let (mut d, resolver) = Deferred::<u64>::pending();
    for _ in 0..rng.below(4) {
        d = add_step(d, &st, rng, depth);
    }
    if rng.chance(1, 8) {
        CANCELS.lock().unwrap().push(d.cancel_handle());
    }
    if fire_now {
        resolver.callback(value);
    } else {
        pool_resolver(resolver, value, rng);
    }
    (st, d)
}

/// Adds one step to `d`, the end of chain `st`.
fn add_step(d: Deferred<u64>, st: &Arc<St>, rng: &mut Rng, depth: u32) -> Deferred<u64> {
    let k = {
        let mut s = st.s.lock().unwrap();
        s.added += 1;
        s.added - 1
    };
    let seed = rng.next();
    if depth > 0 && rng.chance(1, 8) {
        return add_chain_step(d, st, k, seed, depth);
    }
    let st = st.clone();
    d.add_both(move |input: Result<u64, Failure>| -> Deferred<u64> {
        let mut rng = Rng::new(seed);
        let mut s = st.s.lock().unwrap();
        check_in(&st, k, &input, &mut s);
        let id = st.id;
        match input {
            Ok(v) => {
                let out = mix(v, k, id);
                match rng.below(20) {
                    0..=2 if depth > 0 => {
                        let (inner, d) = inner_chain(out, depth - 1, &mut rng, false);
                        s.expect = Expect::Inner(inner);
                        d
                    }
                    3..=4 if depth > 0 => {
                        let (inner, d) = inner_chain(out, depth - 1, &mut rng, true);
                        s.expect = Expect::Inner(inner);
                        d
                    }
                    5..=7 => {
                        // Fire other chains from inside this step: their runs go first.
                        s.expect = Expect::Val(out);
                        drop(s);
                        for _ in 0..=rng.below(2) {
                            fire_one_pooled();
                        }
                        if rng.chance(1, 3) {
                            cancel_one();
                        }
                        Deferred::succeed(out)
                    }
                    8 => {
                        s.expect = Expect::Err;
                        Deferred::fail(Failure::msg("a step failed"))
                    }
                    9 => {
                        s.expect = Expect::Val(out);
                        drop(s);
                        std::thread::yield_now();
                        Deferred::succeed(out)
                    }
                    _ => {
                        s.expect = Expect::Val(out);
                        Deferred::succeed(out)
                    }
                }
            }
            Err(f) => match rng.below(10) {
                0 | 1 => {
                    let out = mix(0xEE, k, id);
                    s.expect = Expect::Val(out);
                    Deferred::succeed(out)
                }
                2 if depth > 0 => {
                    let out = mix(0xEF, k, id);
                    let (inner, d) = inner_chain(out, depth - 1, &mut rng, false);
                    s.expect = Expect::Inner(inner);
                    d
                }
                _ => {
                    s.expect = Expect::Err;
                    Deferred::fail(f)
                }
            },
        }
    })
}

/// A `chain!` run (`then` returning a pending Deferred) and its `catch`, counted as step `k`:
/// after it, exactly one of the two has moved the chain on.
fn add_chain_step(d: Deferred<u64>, st: &Arc<St>, k: u32, seed: u64, depth: u32) -> Deferred<u64> {
    let (st_then, st_catch) = (st.clone(), st.clone());
    chain! {
        d
        then move |v: u64| {
            let mut rng = Rng::new(seed);
            let mut s = st_then.s.lock().unwrap();
            check_in(&st_then, k, &Ok(v), &mut s);
            let out = mix(v, k, st_then.id);
            let fire_now = rng.chance(1, 4);
            let (inner, d) = inner_chain(out, depth - 1, &mut rng, fire_now);
            s.expect = Expect::Inner(inner);
            d
        }
        catch move |f| {
            let mut rng = Rng::new(seed ^ 0xCA7C);
            let mut s = st_catch.s.lock().unwrap();
            if s.next == k {
                // The input was a failure: the `then` did not run.
                check_in(&st_catch, k, &Err(f), &mut s);
            } else if s.next != k + 1 {
                error(format!(
                    "chain #{}: catch of step {k} ran when step {} was next",
                    st_catch.id, s.next
                ));
            }
            let out = mix(0xCA, k, st_catch.id);
            if depth > 0 && rng.chance(1, 3) {
                let (inner, d) = inner_chain(out, depth - 1, &mut rng, false);
                s.expect = Expect::Inner(inner);
                d
            } else {
                s.expect = Expect::Val(out);
                Deferred::succeed(out)
            }
        }
    }
}

/// A top chain being built: its end, and how many steps are still to add.
struct Build {
    st: Arc<St>,
    d: Deferred<u64>,
    remaining: u32,
    cancel_at: u32,
}

fn build(mut b: Build, rng: &mut Rng) {
    let burst = 1 + rng.below(b.remaining as usize) as u32;
    for _ in 0..burst {
        if b.remaining == b.cancel_at {
            CANCELS.lock().unwrap().push(b.d.cancel_handle());
        }
        b.d = add_step(b.d, &b.st, rng, 2);
        b.remaining -= 1;
        match rng.below(8) {
            0 => std::thread::yield_now(),
            1 => {
                for _ in 0..rng.below(2000) {
                    std::hint::spin_loop();
                }
            }
            _ => {}
        }
    }
    if b.remaining > 0 {
        // Another thread adds the rest.
        BUILDS.lock().unwrap().push(b);
    } else {
        ENDS.lock().unwrap().push((b.st, b.d));
    }
}

/// The end's one result.
fn finished(st: &St, result: Result<u64, Failure>) {
    if st.results.fetch_add(1, SeqCst) != 0 {
        error(format!("chain #{}: its end got a second result", st.id));
    }
    let s = st.s.lock().unwrap();
    if s.next != s.added {
        error(format!(
            "chain #{}: its end got a result with {} of {} steps run",
            st.id, s.next, s.added
        ));
    }
    check_value(st, s.added, &result, &s);
    drop(s);
    TOPS_DONE.fetch_add(1, SeqCst);
}

/// Takes one end from the pool: `poll_fired` it (put back if not fired), or drop it.
fn poll_one_end(rng: &mut Rng) -> bool {
    let next = ENDS.lock().unwrap().pop();
    let Some((st, mut d)) = next else {
        return false;
    };
    if rng.chance(1, 16) {
        // Dropped: its steps run all the same; it gets no result.
        st.results.fetch_add(1, SeqCst);
        drop(d);
        TOPS_DONE.fetch_add(1, SeqCst);
        return true;
    }
    if d.poll_fired().is_some() {
        finished(&st, d.wait());
    } else {
        ENDS.lock().unwrap().push((st, d));
    }
    true
}

enum Task {
    Fire(Resolver<u64>, u64, u8),
    Build(Build),
    Cancel(CancelHandle),
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn round(seed: u64, threads: usize, chains: usize) {
    let mut rng = Rng::new(seed);
    let mut queues: Vec<Vec<Task>> = (0..threads).map(|_| Vec::new()).collect();
    let tops_before = TOPS.load(SeqCst);
    for _ in 0..chains {
        let v0 = rng.next() >> 1;
        let st = new_st(true, Expect::Val(v0));
        let (d, resolver) = Deferred::<u64>::pending();
        let how = match rng.below(12) {
            0 => 1,
            1 => 2,
            _ => 0,
        };
        if how != 0 {
            // A root failed (or its Resolver dropped): its first step gets a failure.
            st.s.lock().unwrap().expect = Expect::Err;
        }
        if rng.chance(1, 3) {
            RESOLVERS.lock().unwrap().push((resolver, v0, how));
        } else {
            queues[rng.below(threads)].push(Task::Fire(resolver, v0, how));
        }
        let steps = 1 + rng.below(32) as u32;
        let cancel_at = if rng.chance(1, 6) {
            1 + rng.below(steps as usize) as u32
        } else {
            u32::MAX
        };
        if rng.chance(1, 10) {
            queues[rng.below(threads)].push(Task::Cancel(d.cancel_handle()));
        }
        queues[rng.below(threads)].push(Task::Build(Build {
            st,
            d,
            remaining: steps,
            cancel_at,
        }));
    }
    for q in &mut queues {
        rng.shuffle(q);
    }
    let tops = tops_before + chains;
    let stop_waiters = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for (t, queue) in queues.into_iter().enumerate() {
            let seed = rng.next() ^ t as u64;
            scope.spawn(move || {
                let mut rng = Rng::new(seed);
                for task in queue {
                    match task {
                        Task::Fire(r, v, how) => fire(r, v, how),
                        Task::Build(b) => build(b, &mut rng),
                        Task::Cancel(h) => h.cancel(),
                    }
                    if rng.chance(1, 2) {
                        let b = BUILDS.lock().unwrap().pop();
                        if let Some(b) = b {
                            build(b, &mut rng);
                        }
                    }
                    if rng.chance(1, 3) {
                        fire_one_pooled();
                    }
                    if rng.chance(1, 8) {
                        cancel_one();
                    }
                    if rng.chance(1, 4) {
                        poll_one_end(&mut rng);
                    }
                }
                loop {
                    let b = BUILDS.lock().unwrap().pop();
                    match b {
                        Some(b) => build(b, &mut rng),
                        None => break,
                    }
                }
            });
        }
        // Waiters: block on ends (`wait`, or a future's poll).
        for w in 0..2u64 {
            let stop = &stop_waiters;
            let seed = rng.next() ^ w;
            scope.spawn(move || {
                let mut rng = Rng::new(seed);
                loop {
                    let next = ENDS.lock().unwrap().pop();
                    match next {
                        Some((st, d)) => {
                            let result = if rng.chance(1, 2) {
                                d.wait()
                            } else {
                                futures::executor::block_on(d)
                            };
                            finished(&st, result);
                        }
                        None if stop.load(SeqCst) => break,
                        None => std::thread::yield_now(),
                    }
                }
            });
        }
        // Settle: fire what is left in the pools until every top chain has its result.
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut rng = Rng::new(seed ^ 0x5E77);
        loop {
            let busy = fire_one_pooled() | cancel_one();
            let b = BUILDS.lock().unwrap().pop();
            if let Some(b) = b {
                build(b, &mut rng);
                continue;
            }
            if TOPS_DONE.load(SeqCst) == tops && RESOLVERS.lock().unwrap().is_empty() {
                break;
            }
            if !busy {
                poll_one_end(&mut rng);
                std::thread::yield_now();
            }
            if Instant::now() > deadline {
                dump_stuck();
                eprintln!(
                    "STUCK: {} of {tops} top chains done",
                    TOPS_DONE.load(SeqCst)
                );
                std::process::exit(3);
            }
        }
        stop_waiters.store(true, SeqCst);
    });
    // Every thread is done: what is left in the pools runs here.
    loop {
        while fire_one_pooled() {}
        while cancel_one() {}
        if RESOLVERS.lock().unwrap().is_empty() {
            break;
        }
    }
    // Every chain made (inner ones too) ran every step added to it.
    let all = std::mem::take(&mut *ALL.lock().unwrap());
    for st in &all {
        let s = st.s.lock().unwrap();
        if s.next != s.added {
            error(format!(
                "chain #{} (top {}): {} of {} steps ran",
                st.id, st.top, s.next, s.added
            ));
        }
        if st.top && st.results.load(SeqCst) != 1 {
            error(format!(
                "chain #{}: {} results",
                st.id,
                st.results.load(SeqCst)
            ));
        }
    }
}

fn dump_stuck() {
    for st in ALL.lock().unwrap().iter() {
        let s = st.s.lock().unwrap();
        if s.next != s.added || (st.top && st.results.load(SeqCst) == 0) {
            eprintln!(
                "chain #{} top {}: {} of {} steps ran, results {}",
                st.id,
                st.top,
                s.next,
                s.added,
                st.results.load(SeqCst)
            );
        }
    }
}

#[test]
fn stages_taken_together_are_run_once_in_order_under_contention() {
    let secs = env("STRESS_BATCH_SECS", 3);
    let seed = env("STRESS_BATCH_SEED", 1);
    let threads = env("STRESS_BATCH_THREADS", 6) as usize;
    let chains = env("STRESS_BATCH_CHAINS", 600) as usize;
    let previous = deferred::set_unhandled_hook(|_f: &Failure| {});
    let started = Instant::now();
    let mut rounds = 0u64;
    while rounds == 0 || started.elapsed() < Duration::from_secs(secs) {
        round(
            seed.wrapping_mul(1_000_003).wrapping_add(rounds),
            threads,
            chains,
        );
        rounds += 1;
        if ERROR_COUNT.load(SeqCst) > 0 {
            break;
        }
    }
    deferred::restore_unhandled_hook(previous);
    eprintln!(
        "stress_batch: seed {seed}, {rounds} rounds, {} top chains, {} inner chains, {} steps \
         run, {} cancellations seen, in {:?}",
        TOPS.load(SeqCst),
        INNER_SEEN.load(SeqCst),
        STEPS_RUN.load(SeqCst),
        CANCELLED_SEEN.load(SeqCst),
        started.elapsed()
    );
    let errors = ERRORS.lock().unwrap();
    assert!(
        errors.is_empty(),
        "{} violations:\n{}",
        ERROR_COUNT.load(SeqCst),
        errors.join("\n")
    );
}
