//! Leaks: a counting global allocator shows that chains of every shape — fired, failed,
//! cancelled, never fired (Resolver dropped), handle dropped first, callbacks that capture other
//! Deferreds, Resolvers or their own chain's cancel handle, nested Deferreds — give back every
//! byte they took.
//!
//! The reference cycles to watch: a pending link holds its listener (the next link), and the
//! next link holds an `Arc` to the link it waits on (for cancellation); an inner Deferred a
//! callback returned is held by the outer link and holds it back. Each cycle must be broken when
//! the result passes (fire, failure, cancel, or the Resolver's drop), whoever drops first.
//!
//! Everything runs in one `#[test]` so that no other test of this binary allocates while the
//! counts are taken. The baseline is measured after a warm-up run of every scenario (lazy
//! statics, the thread's run-loop queue, the unhandled-error hook), and each scenario must come
//! back to it within a small fixed slack.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering::SeqCst};
use std::time::Instant;

use deferred::{Deferred, Failure, Resolver};

/// Counts live bytes and live allocations; delegates to the system allocator.
struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
static LIVE_BLOCKS: AtomicIsize = AtomicIsize::new(0);
static TOTAL_BLOCKS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the counters
// are plain atomics and never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is (the caller upholds `alloc`'s contract).
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size() as isize, SeqCst);
            LIVE_BLOCKS.fetch_add(1, SeqCst);
            TOTAL_BLOCKS.fetch_add(1, SeqCst);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size() as isize, SeqCst);
            LIVE_BLOCKS.fetch_add(1, SeqCst);
            TOTAL_BLOCKS.fetch_add(1, SeqCst);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is (`ptr` came from `alloc` with this layout).
        unsafe { System.dealloc(ptr, layout) };
        LIVE_BYTES.fetch_sub(layout.size() as isize, SeqCst);
        LIVE_BLOCKS.fetch_sub(1, SeqCst);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(new_size as isize - layout.size() as isize, SeqCst);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Live {
    bytes: isize,
    blocks: isize,
}

fn live() -> Live {
    Live {
        bytes: LIVE_BYTES.load(SeqCst),
        blocks: LIVE_BLOCKS.load(SeqCst),
    }
}

/// What may stay allocated after a scenario beyond the baseline (thread-locals grown lazily).
const SLACK_BYTES: isize = 4096;
const SLACK_BLOCKS: isize = 8;

static UNHANDLED: AtomicUsize = AtomicUsize::new(0);

/// A payload so that a leaked closure or value shows up in bytes, not just in blocks.
fn payload() -> Vec<u8> {
    vec![0u8; 64]
}

// ---- the scenarios: each makes `n` chains of one shape and settles them all ----------------

/// Pending chains of three steps, fired with a success.
fn fired(n: usize) {
    for i in 0..n {
        let (d, r) = Deferred::<usize>::pending();
        let p = payload();
        let d = d
            .add_callback(move |x| Ok(x + p.len()))
            .add_callback(|x| Ok(x * 2))
            .add_errback(Err);
        r.callback(i);
        assert_eq!(d.wait().unwrap(), (i + 64) * 2);
    }
}

/// Failures, handled by an errback (skipping callbacks on the way).
fn failed(n: usize) {
    for _ in 0..n {
        let (d, r) = Deferred::<usize>::pending();
        let p = payload();
        let d = d
            .add_callback(move |x| Ok(x + p.len()))
            .add_errback(|f| Ok(f.to_string().len()));
        r.errback(Failure::msg("x"));
        assert_eq!(d.wait().unwrap(), 1);
    }
}

/// Cancelled at the end of the chain, with a canceller capturing a payload; the Resolver is
/// kept alive past the cancel, then dropped (its late `NeverFired` is ignored).
fn cancelled(n: usize) {
    for _ in 0..n {
        let p = payload();
        let (d, r) = Deferred::<usize>::with_canceller(move || drop(p));
        let q = payload();
        let d = d.add_callback(move |x| Ok(x + q.len())).add_callback(Ok);
        d.cancel();
        assert!(d.wait().unwrap_err().is_cancelled());
        drop(r);
    }
}

/// Never fired: the Resolver is dropped (the handle still held, then waited on).
fn resolver_dropped(n: usize) {
    for _ in 0..n {
        let (d, r) = Deferred::<usize>::pending();
        let p = payload();
        let d = d.add_callback(move |x| Ok(x + p.len())).add_callback(Ok);
        drop(r);
        assert!(d.wait().is_err());
    }
}

/// The handle is dropped first, then the Resolver: the never-fired failure reaches nobody and
/// is reported as unhandled.
fn handle_dropped_then_resolver(n: usize) {
    let before = UNHANDLED.load(SeqCst);
    for _ in 0..n {
        let (d, r) = Deferred::<usize>::pending();
        let p = payload();
        drop(d.add_callback(move |x| Ok(x + p.len())).add_callback(Ok));
        drop(r);
    }
    assert_eq!(UNHANDLED.load(SeqCst) - before, n);
}

/// Resolvers kept alive while every handle is dropped, and only then dropped, all at once (the
/// cycle link <-> next link lives until then).
fn resolvers_outlive_handles(n: usize) {
    let mut resolvers: Vec<Resolver<usize>> = Vec::with_capacity(n);
    for _ in 0..n {
        let (d, r) = Deferred::<usize>::pending();
        let p = payload();
        drop(d.add_callback(move |x| Ok(x + p.len())).add_callback(Ok));
        resolvers.push(r);
    }
    for (i, r) in resolvers.into_iter().enumerate() {
        if i % 2 == 0 {
            r.callback(i); // a success nobody sees: nothing to report
        } else {
            drop(r); // never fired: reported
        }
    }
}

/// A callback captures another pending Deferred (and its Resolver lives outside); another
/// captures the cancel handle of its own chain (a cycle through the handle).
fn callbacks_capture_deferreds(n: usize) {
    for i in 0..n {
        let (other, other_resolver) = Deferred::<usize>::pending();
        let (d, r) = Deferred::<usize>::pending();
        let own = d.cancel_handle();
        let d = d
            .add_callback(move |x| {
                let _ = &own; // holds a handle to its own chain's root
                Ok(x)
            })
            .add_callback(move |x| Ok(other.add_callback(move |y| Ok(x + y))));
        match i % 3 {
            0 => {
                r.callback(1);
                other_resolver.callback(2);
                assert_eq!(d.wait().unwrap().wait().unwrap(), 3);
            }
            1 => {
                // Never fired: the captured Deferred is dropped unfired with its callbacks.
                drop(r);
                drop(d.add_errback(|_| Ok(Deferred::succeed(0))));
                drop(other_resolver);
            }
            _ => {
                // Dropped before anything fires; the Resolvers go last.
                drop(d.add_errback(|_| Ok(Deferred::succeed(0))));
                drop(other_resolver);
                drop(r);
            }
        }
    }
}

/// A callback captures the Resolver of another chain; the first chain never fires, so dropping
/// its Resolver drops the second's, and both chains settle.
fn callbacks_capture_resolvers(n: usize) {
    for _ in 0..n {
        let (a, a_resolver) = Deferred::<usize>::pending();
        let (b, b_resolver) = Deferred::<usize>::pending();
        let a = a.add_callback(move |x| {
            b_resolver.callback(x);
            Ok(x)
        });
        let b = b.add_callback(Ok);
        drop(a_resolver);
        assert!(a.wait().is_err());
        assert!(b.wait().is_err());
    }
}

/// A callback returns an inner pending Deferred; the inner is fired, dropped, or cancelled
/// through the outer chain while the outer chain waits on it.
fn nested(n: usize) {
    for i in 0..n {
        let (outer, outer_resolver) = Deferred::<usize>::pending();
        let (inner, inner_resolver) = Deferred::<usize>::pending();
        let p = payload();
        let d = outer
            .add_callback(move |x| inner.add_callback(move |y| Ok(x + y + p.len())))
            .add_callback(Ok);
        outer_resolver.callback(1);
        match i % 4 {
            0 => {
                inner_resolver.callback(2);
                assert_eq!(d.wait().unwrap(), 67);
            }
            1 => {
                drop(inner_resolver);
                assert!(d.wait().is_err());
            }
            2 => {
                d.cancel();
                assert!(d.wait().unwrap_err().is_cancelled());
                inner_resolver.callback(2); // ignored
            }
            _ => {
                // The outer handle goes first, then the inner Resolver: reported, freed.
                drop(d);
                drop(inner_resolver);
            }
        }
    }
}

/// Failures nobody handles: the handle is dropped while holding one, or before it arrives.
fn unhandled(n: usize) {
    let before = UNHANDLED.load(SeqCst);
    for i in 0..n {
        let (d, r) = Deferred::<usize>::pending();
        let d = d.add_callback(Ok);
        if i % 2 == 0 {
            r.errback(Failure::msg("lost"));
            drop(d);
        } else {
            drop(d);
            r.errback(Failure::msg("lost"));
        }
    }
    assert_eq!(UNHANDLED.load(SeqCst) - before, n);
}

/// One long chain (constant stack), fired at the end; and one cancelled through all its links.
fn long_chains(n: usize) {
    let (d, r) = Deferred::<usize>::pending();
    let mut d = d;
    for _ in 0..n {
        d = d.add_callback(|x| Ok(x + 1));
    }
    r.callback(0);
    assert_eq!(d.wait().unwrap(), n);

    let (d, r) = Deferred::<usize>::pending();
    let mut d = d;
    for _ in 0..n {
        d = d.add_callback(|x| Ok(x + 1));
    }
    d.cancel();
    assert!(d.wait().unwrap_err().is_cancelled());
    drop(r);
}

/// Fired on other threads while the chains are built here (each handle waited on here).
fn across_threads(n: usize) {
    let (tx, rx) = std::sync::mpsc::channel::<Resolver<usize>>();
    let firer = std::thread::spawn(move || {
        for (i, r) in rx.into_iter().enumerate() {
            if i % 5 == 0 {
                r.errback(Failure::msg("x"));
            } else {
                r.callback(i);
            }
        }
    });
    let mut ends = Vec::with_capacity(n);
    for _ in 0..n {
        let (d, r) = Deferred::<usize>::pending();
        tx.send(r).unwrap();
        ends.push(d.add_callback(|x| Ok(x + 1)).add_errback(|_| Ok(0)));
    }
    drop(tx);
    for d in ends {
        d.wait().unwrap();
    }
    firer.join().unwrap();
}

/// Bytes still held per chain while only the Resolvers are kept: `(fresh, cancelled)`, for
/// never-fired chains with nothing attached, and for cancelled chains of three steps with
/// captured payloads. A cancelled chain must hold no more than a fresh root: its steps, payloads
/// and canceller are freed at the cancel, not when the Resolver goes.
fn held_per_resolver(n: usize) -> (isize, isize) {
    let before = live().bytes;
    let mut kept = Vec::with_capacity(n);
    let after_vec = live().bytes;
    for _ in 0..n {
        let (d, r) = Deferred::<usize>::pending();
        drop(d);
        kept.push(r);
    }
    let fresh = (live().bytes - after_vec) / n as isize;
    kept.clear(); // never fired, nobody listening: nothing to report
    for _ in 0..n {
        let p = payload();
        let (d, r) = Deferred::<usize>::with_canceller(move || drop(p));
        let q = payload();
        let d = d
            .add_callback(move |x| Ok(x + q.len()))
            .add_callback(Ok)
            .add_callback(Ok);
        d.cancel();
        assert!(d.wait().unwrap_err().is_cancelled());
        kept.push(r);
    }
    let cancelled = (live().bytes - after_vec) / n as isize;
    drop(kept);
    assert!(live().bytes - before <= SLACK_BYTES);
    (fresh, cancelled)
}

type Scenario = (&'static str, fn(usize), usize);

/// Scenario sizes: about a million chains in all (`long_chains` counts links); the whole test
/// takes a few seconds in a debug build.
const SCENARIOS: &[Scenario] = &[
    ("fired", fired, 150_000),
    ("failed", failed, 100_000),
    ("cancelled", cancelled, 100_000),
    ("resolver dropped", resolver_dropped, 100_000),
    (
        "handle dropped, then resolver",
        handle_dropped_then_resolver,
        100_000,
    ),
    (
        "resolvers outlive handles",
        resolvers_outlive_handles,
        100_000,
    ),
    (
        "callbacks capture deferreds",
        callbacks_capture_deferreds,
        90_000,
    ),
    (
        "callbacks capture resolvers",
        callbacks_capture_resolvers,
        60_000,
    ),
    ("nested", nested, 80_000),
    ("unhandled", unhandled, 60_000),
    ("long chains (links)", long_chains, 100_000),
    ("across threads", across_threads, 60_000),
];

#[test]
fn every_chain_gives_its_memory_back() {
    let previous = deferred::set_unhandled_hook(|_: &Failure| {
        UNHANDLED.fetch_add(1, SeqCst);
    });
    // Warm-up: every scenario once, at a size that grows the run loop's queue as far as the
    // real run will.
    for (_, scenario, _) in SCENARIOS {
        scenario(1_000);
    }
    let baseline = live();
    let started = Instant::now();
    let total_before = TOTAL_BLOCKS.load(SeqCst);
    let mut failures = Vec::new();
    let mut chains = 0;
    for (name, scenario, n) in SCENARIOS {
        let t = Instant::now();
        let blocks_before = TOTAL_BLOCKS.load(SeqCst);
        scenario(*n);
        chains += n;
        let now = live();
        let grown = Live {
            bytes: now.bytes - baseline.bytes,
            blocks: now.blocks - baseline.blocks,
        };
        eprintln!(
            "{name:>30}: {n:>7} chains, {:>9} allocations, {:?}; live vs baseline: {:+} bytes, \
             {:+} blocks",
            TOTAL_BLOCKS.load(SeqCst) - blocks_before,
            t.elapsed(),
            grown.bytes,
            grown.blocks
        );
        if grown.bytes > SLACK_BYTES || grown.blocks > SLACK_BLOCKS {
            failures.push(format!("{name}: {grown:?} still live after {n} chains"));
        }
    }
    let (fresh, cancelled) = held_per_resolver(10_000);
    eprintln!(
        "{:>30}: {fresh} bytes per fresh root, {cancelled} per cancelled 3-step chain",
        "held while resolvers live"
    );
    if cancelled > fresh {
        failures.push(format!(
            "a cancelled chain holds {cancelled} bytes until its Resolver goes (a fresh root: {fresh})"
        ));
    }
    eprintln!(
        "{chains} chains, {} allocations, in {:?}",
        TOTAL_BLOCKS.load(SeqCst) - total_before,
        started.elapsed()
    );
    deferred::restore_unhandled_hook(previous);
    assert!(failures.is_empty(), "leaks:\n{}", failures.join("\n"));
}
