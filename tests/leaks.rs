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

/// What may stay allocated after a scenario beyond the baseline: thread-locals grown lazily, and
/// the containers of the library's own threads (the timer thread behind `InboxClock`, the
/// `defer_to_thread` pool), whose capacity follows their load — the timer's schedule shrinks to
/// fit when it drops cancelled deadlines and grows again — so that one buffer of about 4 KiB is
/// live at one measurement and not at another. A leak per chain shows as megabytes (each scenario
/// makes 20,000 chains or more, each over 100 bytes).
const SLACK_BYTES: isize = 16 * 1024;
const SLACK_BLOCKS: isize = 8;

/// The check of every scenario: more than the slack still live.
fn leaked(grown: Live) -> bool {
    grown.bytes > SLACK_BYTES || grown.blocks > SLACK_BLOCKS
}

/// What is live now beyond `baseline`.
fn grown_since(baseline: Live) -> Live {
    let now = live();
    Live {
        bytes: now.bytes - baseline.bytes,
        blocks: now.blocks - baseline.blocks,
    }
}

static UNHANDLED: AtomicUsize = AtomicUsize::new(0);

/// A payload so that a leaked closure or value shows up in bytes, not just in blocks.
fn payload() -> Vec<u8> {
    vec![0u8; 64]
}

// ---- the scenarios: each makes `n` chains of one shape and settles them all ----------------

/// The scenarios that hold for both kinds, once per kind (`tests/leaks/kinds.rs`).
mod shared {
    use super::{SeqCst, UNHANDLED, payload};
    use deferred::{
        Deferred, DeferredQueue, Failure, LoopingCall, Resolver, SharedResult, defer_later,
        first_settled, retry,
    };
    include!("leaks/kinds.rs");
}

mod local {
    #![allow(clippy::arc_with_non_send_sync)]
    use super::{SeqCst, UNHANDLED, payload};
    use deferred::local::{
        DeferredQueue, LoopingCall, SharedResult, defer_later, first_settled, retry,
    };
    use deferred::{Failure, LocalDeferred as Deferred, LocalResolver as Resolver};
    include!("leaks/kinds.rs");
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

/// The `Send` helpers raced by 4 threads lined up by a barrier: acquires of one semaphore
/// cancelled, dropped and run; puts and gets of one queue, gets cancelled and dropped; a
/// `SharedResult` whose consumer another thread cancels as the source fires; a `gather_results`
/// whose output another thread cancels as its inputs fire.
fn helpers_across_threads(n: usize) {
    use deferred::{DeferredQueue, DeferredSemaphore, SharedResult, gather_results};
    use std::sync::{Arc, Barrier};
    const THREADS: usize = 4;
    let semaphore = DeferredSemaphore::new(2);
    let queue = DeferredQueue::<Vec<u8>>::new();
    let barrier = Arc::new(Barrier::new(THREADS));
    let (handles, resolvers) = std::sync::mpsc::channel::<deferred::CancelHandle>();
    let handles = std::sync::Mutex::new(handles);
    let resolvers = std::sync::Mutex::new(resolvers);
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let (semaphore, queue, barrier) = (semaphore.clone(), queue.clone(), barrier.clone());
            let (handles, resolvers) = (&handles, &resolvers);
            scope.spawn(move || {
                let sender = handles.lock().unwrap().clone();
                barrier.wait();
                for i in 0..n / THREADS {
                    match (i + t) % 7 {
                        0 => {
                            let acquired = semaphore.acquire();
                            acquired.cancel();
                            drop(acquired.wait());
                        }
                        1 => drop(semaphore.acquire()),
                        2 => drop(semaphore.run(|| Ok::<_, Failure>(payload())).wait()),
                        3 => queue.put(payload()).unwrap(),
                        4 => {
                            let get = queue.get();
                            if i % 2 == 0 {
                                get.cancel();
                            }
                            drop(get);
                        }
                        5 => {
                            let (source, resolver) = Deferred::<Vec<u8>>::pending();
                            let shared = SharedResult::new(source);
                            let consumer = shared.consumer().add_errback(|_| Ok(Vec::new()));
                            let _ = sender.send(consumer.cancel_handle());
                            resolver.callback(payload());
                            drop((shared, consumer));
                        }
                        _ => {
                            let (a, ra) = Deferred::<Vec<u8>>::pending();
                            let (b, rb) = Deferred::<Vec<u8>>::pending();
                            let gathered = gather_results([a, b]).add_errback(|_| Ok(Vec::new()));
                            let _ = sender.send(gathered.cancel_handle());
                            ra.callback(payload());
                            rb.errback(Failure::msg("x"));
                            drop(gathered);
                        }
                    }
                    // Cancel what another thread made, as it fires.
                    if let Ok(handle) = resolvers.lock().unwrap().try_recv() {
                        handle.cancel();
                    }
                }
            });
        }
    });
    while let Ok(handle) = resolvers.lock().unwrap().try_recv() {
        handle.cancel();
    }
    while !queue.is_empty() {
        // Read: a get dropped with its item unread gives the item back.
        drop(queue.get().wait());
    }
    assert_eq!(semaphore.available(), 2);
}

/// Results coming home to a loop's inbox: fired from another thread, dropped unfired there,
/// a Deferred adopted, work on the pool, and the loop stopping with results still in flight.
fn inbox(n: usize) {
    let inbox = deferred::Inbox::new(|| {});
    let mut ends = Vec::with_capacity(n);
    let mut far = Vec::with_capacity(n);
    for i in 0..n {
        let (d, home) = inbox.pending::<usize, Failure>();
        let p = payload();
        ends.push(
            d.add_callback(move |x| Ok(x + p.len()))
                .add_errback(|_| Ok(0)),
        );
        far.push((i, home));
    }
    std::thread::spawn(move || {
        for (i, home) in far {
            match i % 3 {
                0 => home.callback(i),
                1 => home.errback(Failure::msg("x")),
                _ => drop(home), // never fired: NeverFired, handled by the errback
            }
        }
    })
    .join()
    .unwrap();
    inbox.run_pending();
    for d in ends {
        d.wait().unwrap();
    }
    let adopted = inbox.adopt(Deferred::<usize>::succeed(1));
    assert_eq!(adopted.wait().unwrap(), 1);
    // The loop stops while a result is on its way: it still comes (run at the stop), and the
    // chain still waiting on another thread fails with NeverFired.
    let (d, home) = inbox.pending::<usize, Failure>();
    let (waiting, _far) = inbox.pending::<usize, Failure>();
    home.callback(1);
    let d = d.add_errback(|_| Ok(0));
    let waiting = waiting.add_errback(|_| Ok(0));
    drop(inbox);
    assert_eq!(d.wait().unwrap(), 1);
    assert_eq!(waiting.wait().unwrap(), 0);
}

/// `Deferred::drive_future`: a future that completes at once, one awaiting a Deferred fired on
/// another thread, one cancelled while it awaits (dropped at the cancel); and on an inbox's
/// clock (`InboxClock`, its timer thread), `defer_later` fired through the loop or cancelled
/// before its call.
fn drive_and_inbox_clock(n: usize) {
    for i in 0..n {
        let p = payload();
        match i % 3 {
            0 => {
                let d = Deferred::<usize>::drive_future(async move { Ok(p.len()) });
                assert_eq!(d.wait().unwrap(), 64);
            }
            1 => {
                let (inner, resolver) = Deferred::<usize>::pending();
                let d = Deferred::<usize>::drive_future(async move { Ok(inner.await? + p.len()) });
                std::thread::spawn(move || resolver.callback(1))
                    .join()
                    .unwrap();
                assert_eq!(d.wait().unwrap(), 65);
            }
            _ => {
                let (inner, resolver) = Deferred::<usize>::pending();
                let d = Deferred::<usize>::drive_future(async move { Ok(inner.await? + p.len()) });
                d.cancel();
                assert!(d.wait().unwrap_err().is_cancelled());
                drop(resolver);
            }
        }
    }
    let (tx, woken) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let inbox = deferred::Inbox::new(move || {
        let _ = tx.lock().unwrap().send(());
    });
    let clock = inbox.clock();
    for i in 0..n / 10 {
        let p = payload();
        let d = deferred::local::defer_later(&clock, std::time::Duration::ZERO, move || {
            Ok::<usize, Failure>(p.len())
        });
        if i % 2 == 0 {
            d.cancel();
            assert!(d.wait().unwrap_err().is_cancelled());
        } else {
            while !d.is_fired() {
                let _ = woken.recv_timeout(std::time::Duration::from_millis(100));
                inbox.run_pending();
            }
            assert_eq!(d.wait().unwrap(), 64);
        }
    }
    drop(inbox);
}

/// One test at a time: the counts are process-wide.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
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
    #[cfg(feature = "registry")]
    drop(deferred::pending_chains()); // frees the dropped chains' blocks (see below)
    assert!(live().bytes - before <= SLACK_BYTES);
    (fresh, cancelled)
}

type Scenario = (&'static str, fn(usize), usize);

/// Scenario sizes: about a million chains in all (`long_chains` counts links); the whole test
/// takes a few seconds in a debug build.
const SCENARIOS: &[Scenario] = &[
    ("fired", shared::fired, 150000),
    ("failed", shared::failed, 100000),
    ("cancelled", shared::cancelled, 100000),
    ("resolver dropped", shared::resolver_dropped, 100000),
    (
        "handle dropped, then resolver",
        shared::handle_dropped_then_resolver,
        100000,
    ),
    (
        "resolvers outlive handles",
        shared::resolvers_outlive_handles,
        100000,
    ),
    (
        "callbacks capture deferreds",
        shared::callbacks_capture_deferreds,
        90000,
    ),
    (
        "callbacks capture resolvers",
        shared::callbacks_capture_resolvers,
        60000,
    ),
    ("nested", shared::nested, 80000),
    ("unhandled", shared::unhandled, 60000),
    ("long chains (links)", shared::long_chains, 100000),
    ("relays", shared::relays, 60000),
    ("cycles", shared::cycles, 30000),
    ("local fired", local::fired, 75000),
    ("local failed", local::failed, 50000),
    ("local cancelled", local::cancelled, 50000),
    ("local resolver dropped", local::resolver_dropped, 50000),
    (
        "local handle dropped, then resolver",
        local::handle_dropped_then_resolver,
        50000,
    ),
    (
        "local resolvers outlive handles",
        local::resolvers_outlive_handles,
        50000,
    ),
    (
        "local callbacks capture deferreds",
        local::callbacks_capture_deferreds,
        45000,
    ),
    (
        "local callbacks capture resolvers",
        local::callbacks_capture_resolvers,
        30000,
    ),
    ("local nested", local::nested, 40000),
    ("local unhandled", local::unhandled, 30000),
    ("local long chains (links)", local::long_chains, 50000),
    ("local relays", local::relays, 30000),
    ("local cycles", local::cycles, 15000),
    ("timed helpers", shared::timed_helpers, 70_000),
    ("sharing helpers", shared::sharing_helpers, 60_000),
    ("local timed helpers", local::timed_helpers, 35_000),
    ("local sharing helpers", local::sharing_helpers, 30_000),
    ("drive_future, inbox clock", drive_and_inbox_clock, 30_000),
    ("across threads", across_threads, 60_000),
    (
        "helpers raced across threads",
        helpers_across_threads,
        40_000,
    ),
    ("inbox", inbox, 20_000),
];

#[test]
fn every_chain_gives_its_memory_back() {
    let _serial = serial();
    let previous = deferred::set_unhandled_hook(|_: &Failure| {
        UNHANDLED.fetch_add(1, SeqCst);
    });
    // Warm-up: every scenario once, at a size that grows the run loop's queue as far as the
    // real run will.
    for (_, scenario, _) in SCENARIOS {
        scenario(1_000);
    }
    #[cfg(feature = "registry")]
    drop(deferred::pending_chains());
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
        // With the feature `registry`, a dropped chain's memory block is freed when its entry
        // leaves the registry: at a later registration or at a dump, as here.
        #[cfg(feature = "registry")]
        drop(deferred::pending_chains());
        let grown = grown_since(baseline);
        eprintln!(
            "{name:>30}: {n:>7} chains, {:>9} allocations, {:?}; live vs baseline: {:+} bytes, \
             {:+} blocks",
            TOTAL_BLOCKS.load(SeqCst) - blocks_before,
            t.elapsed(),
            grown.bytes,
            grown.blocks
        );
        if leaked(grown) {
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

/// The check has teeth: a cycle the user makes — a callback that holds its own chain's Resolver,
/// which nobody then fires or drops (RELIABILITY.md, known limits) — keeps its chain, its step
/// and the step's captures, and the check every scenario of `every_chain_gives_its_memory_back`
/// passes (`leaked`) sees them. The test keeps only weak pointers into the cycles, to break them
/// at the end (the Resolver taken out and fired): then every byte comes back.
#[test]
fn a_callback_holding_its_own_resolver_is_caught_as_a_leak() {
    use std::sync::{Arc, Mutex, Weak};
    type Slot = Mutex<Option<Resolver<usize>>>;
    const N: usize = 1_000;
    let _serial = serial();
    let make_cycles = |ways_in: &mut Vec<Weak<Slot>>| {
        for _ in 0..N {
            let (d, resolver) = Deferred::<usize>::pending();
            let own: Arc<Slot> = Arc::new(Mutex::new(Some(resolver)));
            ways_in.push(Arc::downgrade(&own));
            let p = payload();
            drop(d.add_callback(move |x| {
                assert!(
                    own.lock().unwrap().is_none(),
                    "fired: its Resolver was taken"
                );
                Ok(x + p.len())
            }));
        }
    };
    let break_cycles = |ways_in: &mut Vec<Weak<Slot>>| {
        for way_in in ways_in.drain(..) {
            let own = way_in
                .upgrade()
                .expect("the cycle keeps its Resolver's slot");
            let resolver = own.lock().unwrap().take().expect("never fired");
            drop(own);
            resolver.callback(1);
        }
    };
    let settle = || {
        #[cfg(feature = "registry")]
        drop(deferred::pending_chains());
    };
    let mut ways_in = Vec::with_capacity(N);
    // Warm-up: the run loop's queue and the registry reach their size.
    make_cycles(&mut ways_in);
    break_cycles(&mut ways_in);
    settle();
    let baseline = live();
    make_cycles(&mut ways_in);
    settle();
    let held = grown_since(baseline);
    break_cycles(&mut ways_in);
    settle();
    let after = grown_since(baseline);
    eprintln!("{N} chains holding their own Resolver: {held:?} live; once broken: {after:?}");
    assert!(
        leaked(held),
        "{N} chains in cycles of their own ({held:?}) pass the leak check"
    );
    assert!(
        !leaked(after),
        "{after:?} still live once the cycles are broken"
    );
}

/// A timer of an inbox's clock (`InboxClock`, on the library's timer thread) that is cancelled
/// long before its deadline must give its memory back: the timer thread drops cancelled deadlines
/// from its schedule once they are half of it (`deferred-core/src/timer.rs`), so timers set and
/// cancelled for ever — a timeout of an hour per request — hold no more than the live ones.
#[test]
fn a_cancelled_inbox_clock_timer_gives_its_memory_back_at_the_cancel() {
    use deferred::LocalClock as _;
    let _serial = serial();
    let inbox = deferred::Inbox::new(|| {});
    let clock = inbox.clock();
    let hour = std::time::Duration::from_secs(3600);
    // Warm-up: the timer thread and its containers exist.
    clock.call_later(hour, Box::new(|| {})).cancel();
    let before = live();
    for _ in 0..100_000 {
        clock.call_later(hour, Box::new(|| {})).cancel();
    }
    let grown = live().bytes - before.bytes;
    eprintln!("100,000 timers set and cancelled: {grown:+} bytes still live");
    assert!(
        grown <= SLACK_BYTES,
        "{grown} bytes held by cancelled timers"
    );
}

/// `InboxClock` timers left set (their handles dropped, not cancelled) when the inbox stops:
/// the stop drops their calls, which can never run, and each call's timer on the shared timer
/// thread goes with it. They stayed there, with the stopped inbox's mailbox, until their
/// deadline (for ever with `Duration::MAX`): 100,000 of them held 6.4 MB.
#[test]
fn inbox_clock_timers_left_when_the_inbox_stops_give_their_memory_back() {
    use deferred::LocalClock as _;
    let _serial = serial();
    // Warm-up: the timer thread and its containers exist.
    {
        let inbox = deferred::Inbox::new(|| {});
        inbox
            .clock()
            .call_later(std::time::Duration::from_secs(3600), Box::new(|| {}))
            .cancel();
    }
    let before = live();
    let inbox = deferred::Inbox::new(|| {});
    let clock = inbox.clock();
    for i in 0..100_000u32 {
        let delay = if i % 2 == 0 {
            std::time::Duration::from_secs(3600)
        } else {
            std::time::Duration::MAX
        };
        drop(clock.call_later(delay, Box::new(|| {})));
    }
    drop(inbox);
    drop(clock);
    let grown = live().bytes - before.bytes;
    eprintln!("100,000 timers left on a stopped inbox: {grown:+} bytes still live");
    assert!(
        grown <= SLACK_BYTES,
        "{grown} bytes held after the inbox is gone"
    );
}

/// A `LoopingCall` running on a `CalloopClock` when the user drops the loop, its handles and the
/// `LoopingCall`: the loop's timer source held the next call, which held the `LoopingCall`, which
/// held the clock, which held the loop — a cycle, so every such loop (its poller, its sources, its
/// file descriptors) stayed allocated for ever.
#[cfg(feature = "calloop")]
#[test]
fn a_looping_call_on_a_dropped_calloop_loop_gives_its_memory_back() {
    let _serial = serial();
    let one_loop = || {
        let event_loop = calloop::EventLoop::<()>::try_new().unwrap();
        let clock = deferred::CalloopClock::new(event_loop.handle());
        let looping = deferred::local::LoopingCall::new(clock, || Ok::<_, deferred::Failure>(()));
        drop(
            looping
                .start(std::time::Duration::from_secs(3600), false)
                .add_errback(|_| Ok(())),
        );
        drop(looping);
        drop(event_loop);
    };
    one_loop(); // warm-up
    let before = live();
    for _ in 0..1_000 {
        one_loop();
    }
    let grown = live().bytes - before.bytes;
    eprintln!("1,000 calloop loops dropped with a LoopingCall running: {grown:+} bytes still live");
    assert!(grown <= SLACK_BYTES, "{grown} bytes held by dropped loops");
}
