//! Allocations of a 10-step chain, counted exactly, for every chain the benchmarks time
//! (benches/common/mod.rs): the "Allocations" target of docs/rules.md, as a test.
//!
//! - Synchronous steps (`chain!` and `add_callback`) allocate nothing.
//! - A pending `add_callback` chain allocates one link per pending link (the root and one per
//!   step): 11 for 10 steps, no more.
//! - A pending `chain!` allocates the root and one link for its whole run of `then`s: 2.
//! - A `catch` right after a run of `then`s is one stage with the run: a pending start with
//!   `then`s and a `catch` allocates what the hand-written `add_callbacks(run, catch)` does.
//! - A failure skipping nine callbacks allocates only what `Failure` itself needs (its box, and
//!   the trail of steps it passed).
//!
//! The peers' counts are printed for the table in BENCHMARKS.md, not asserted (they belong to
//! futures-rs). Run with `--nocapture` to see the table.

use std::alloc::{GlobalAlloc, Layout, System};
use std::backtrace::BacktraceStatus;
use std::cell::Cell;
use std::collections::VecDeque;

use deferred::{Deferred, Resolver, chain, gather_results, join, join_settled};
use futures::FutureExt;

#[path = "../benches/common/mod.rs"]
mod common;

/// Counts the allocations (and reallocations) made by a thread while it has counting on: the
/// tests of this binary run on several threads at once, and each counts only its own.
struct Counting;

thread_local! {
    // `const`-initialized and without a destructor: using them never allocates.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    /// Bytes allocated minus bytes freed on this thread while counting.
    static LIVE_BYTES: Cell<isize> = const { Cell::new(0) };
}

fn count_bytes(delta: isize) {
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = LIVE_BYTES.try_with(|live| live.set(live.get() + delta));
    }
}

fn count_one() {
    // `try_with`: the allocator may be called while this thread's locals are being destroyed.
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
    }
}

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        count_bytes(layout.size() as isize);
        // SAFETY: forwarded as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        count_bytes(layout.size() as isize);
        // SAFETY: forwarded as is.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        count_bytes(new_size as isize - layout.size() as isize);
        // SAFETY: forwarded as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count_bytes(-(layout.size() as isize));
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Whether a thread keeps the memory of the chains it frees for its next chains (deferred-core's
/// `chain_arc/cells.rs`): not with the feature `registry`, nor in a process run with the
/// environment variable `DEFERRED_NO_CELL_CACHE` set, as `.ci/memcheck` runs this file.
fn chains_kept() -> bool {
    !cfg!(feature = "registry") && std::env::var_os("DEFERRED_NO_CELL_CACHE").is_none()
}

/// The allocations `f` makes on this thread, after one warm-up call (which may set up
/// thread-locals, such as the run loop's queue, once per thread). Counted as on a new thread:
/// the memory of the chains the warm-up freed, which this thread keeps for its next chains, is
/// given back first (see `a_thread_keeps_a_freed_chain_for_its_next`). Counted in this frame,
/// not through `counted`: with RUST_BACKTRACE set, a failure's backtrace grows with the stack's
/// depth, and the `error` shape's count with it.
fn allocations_of(mut f: impl FnMut() -> u64) -> usize {
    std::hint::black_box(f());
    deferred::__give_back_kept_chains();
    let before = ALLOCATIONS.with(Cell::get);
    COUNTING.with(|counting| counting.set(true));
    std::hint::black_box(f());
    COUNTING.with(|counting| counting.set(false));
    ALLOCATIONS.with(Cell::get) - before
}

/// Every chain of benches/common with its allocation count.
fn measured() -> Vec<(&'static str, &'static str, usize)> {
    common::CASES
        .iter()
        .map(|&(shape, peer, chain)| {
            assert_eq!(chain(1), common::expected(shape, 1), "{shape} {peer}");
            (shape, peer, allocations_of(|| chain(1)))
        })
        .collect()
}

fn count(measured: &[(&str, &str, usize)], shape: &str, peer: &str) -> usize {
    measured
        .iter()
        .find(|(s, p, _)| *s == shape && *p == peer)
        .map(|(_, _, n)| *n)
        .unwrap_or_else(|| panic!("no chain {shape} {peer}"))
}

/// All in one `#[test]`, so that the table is printed once and in order.
#[test]
fn allocations_per_chain_of_ten_steps() {
    let measured = measured();
    println!("allocations per 10-step chain");
    println!(
        "{:<8} {:<30} {:>6} {:>9}",
        "shape", "peer", "chain", "per step"
    );
    for (shape, peer, n) in &measured {
        println!("{shape:<8} {peer:<30} {n:>6} {:>9.1}", *n as f64 / 10.0);
    }

    // Making the failure of the `error` shape: `Failure::new(Boom)` boxes its inside once
    // (`Boom` is zero-sized, so boxing it is free), plus the backtrace when RUST_BACKTRACE or
    // RUST_LIB_BACKTRACE asks for one.
    let making_the_failure = allocations_of(|| {
        let failure = std::hint::black_box(deferred::Failure::new(common::Boom));
        drop(failure);
        0
    });
    println!("making the failure: {making_the_failure}");
    if !std::backtrace::Backtrace::capture()
        .status()
        .eq(&BacktraceStatus::Captured)
    {
        assert_eq!(making_the_failure, 1);
    }

    // The targets (docs/rules.md, "Performance targets"): zero allocations for synchronous
    // steps, at most one per pending link.
    for shape in ["sync", "nested"] {
        for peer in ["chain!", "add_callback"] {
            assert_eq!(
                count(&measured, shape, peer),
                0,
                "{shape} {peer}: synchronous steps allocate nothing"
            );
        }
    }
    // A pending chain is one link, whatever its length. Its steps are boxed, and a box of a
    // closure that captures nothing is free; the second step added makes the stage list's
    // buffer (4 slots), the sixth grows it once (to 16). See `pending_steps_that_capture` for
    // steps that capture.
    assert_eq!(
        count(&measured, "pending", "add_callback"),
        3,
        "pending add_callback: the link, and its list of stages (made, grown once)"
    );
    assert_eq!(
        count(&measured, "pending", "chain!"),
        1,
        "pending chain!: the link (its one stage, the run of thens, captures nothing)"
    );
    // The floor cells the pending chains are measured against (BENCHMARKS.md, "Misses"): one
    // allocation for the cell, and one more for a list made with room for the stages (none when
    // the one-adder cell holds its list itself); the Treiber stack's nodes are a box a stage.
    for (peer, expected) in [
        ("one locked cell (the floor of a lock)", 1),
        ("one local cell (Rc, RefCell)", 1),
        ("one one-adder cell", 1),
        ("one lock-free cell", 2),
        ("one locked cell, a stage a step", 2),
        ("one local cell, a stage a step", 2),
        ("one one-adder cell, a stage a step", 2),
        ("one local one-adder cell", 1),
        ("one local one-adder cell, a stage a step", 2),
        ("one one-adder cell, inline list", 1),
        ("one local one-adder cell, inline list", 1),
        ("one lock-free cell, a stage a step", 11),
    ] {
        assert_eq!(
            count(&measured, "pending", peer),
            expected,
            "pending {peer}"
        );
    }
    // A failure skipping steps: nothing beyond the failure itself with the chain's own error
    // type; with `Failure`, its trail of steps grows (a Vec: 4, 8, 16 entries one at a time;
    // chain! records a run's skipped steps at once).
    assert_eq!(count(&measured, "error", "chain!, own error type"), 0);
    assert_eq!(count(&measured, "error", "add_callback, own error type"), 0);
    assert_eq!(
        count(&measured, "error", "chain!"),
        making_the_failure + 1,
        "a run of thens records each step it skips, as add_callback does (9 trail entries), \
         the trail made once for all nine"
    );
    assert_eq!(
        count(&measured, "error", "add_callback"),
        making_the_failure + 3,
        "nine skipped callbacks: a trail of 9 entries, grown twice"
    );
    // A failure the first step raises skips the eight steps after it. (Made inside a step, a
    // backtrace has more frames to capture than `making_the_failure`'s: compared without one.)
    if !std::backtrace::Backtrace::capture()
        .status()
        .eq(&BacktraceStatus::Captured)
    {
        assert_eq!(
            count(&measured, "error", "chain!, raised by step 1"),
            2,
            "the failure, and its trail made once for the eight steps after the first"
        );
        assert_eq!(
            count(&measured, "error", "add_callback, raised by step 1"),
            3,
            "the failure, and a trail of 8 entries, grown once"
        );
    }
}

/// A chain whose every step waits on a Deferred that fires later, from a queue (the shape of
/// real I/O): each step costs its own pending Deferred (a root link) and, for `add_callback`,
/// the link that waits on it.
#[test]
fn steps_that_wait_on_pending_deferreds() {
    fn later(queue: &mut VecDeque<(Resolver<u64>, u64)>, value: u64) -> Deferred<u64> {
        let (d, resolver) = Deferred::pending();
        queue.push_back((resolver, value));
        d
    }
    // The queue lives outside the chain's steps (they are 'static): a thread-local.
    thread_local! {
        static QUEUE: std::cell::RefCell<VecDeque<(Resolver<u64>, u64)>> =
            std::cell::RefCell::new(VecDeque::with_capacity(16));
    }
    fn io(value: u64) -> Deferred<u64> {
        QUEUE.with(|queue| later(&mut queue.borrow_mut(), value))
    }
    fn drain() {
        while let Some((resolver, value)) = QUEUE.with(|queue| queue.borrow_mut().pop_front()) {
            resolver.callback(value);
        }
    }

    let add_callback = allocations_of(|| {
        let d = io(0)
            .add_callback(|a| io(a + 1))
            .add_callback(|a| io(a + 1))
            .add_callback(|a| io(a + 1))
            .add_callback(|a| io(a + 1))
            .add_callback(|a| io(a + 1))
            .add_callback(|a| io(a + 1))
            .add_callback(|a| io(a + 1))
            .add_callback(|a| io(a + 1))
            .add_callback(|a| io(a + 1))
            .add_callback(|a| io(a + 1));
        drain();
        d.now_or_never().expect("fired").unwrap()
    });
    let chained = allocations_of(|| {
        let d = chain! {
            io(0)
            then |a| io(a + 1)
            then |a| io(a + 1)
            then |a| io(a + 1)
            then |a| io(a + 1)
            then |a| io(a + 1)
            then |a| io(a + 1)
            then |a| io(a + 1)
            then |a| io(a + 1)
            then |a| io(a + 1)
            then |a| io(a + 1)
        };
        drain();
        d.now_or_never().expect("fired").unwrap()
    });
    println!("10 steps each waiting on I/O: add_callback {add_callback}, chain! {chained}");
    if chains_kept() {
        // The link of an I/O Deferred whose result has gone on is freed, and the thread keeps
        // its memory for the next link: of the 11 links, 3 are allocated (at most three are
        // held at once). add_callback: and the list of the first link's stages behind its first
        // (one inline in the list's box, the other eight in its buffer).
        assert_eq!(add_callback, 5);
        assert_eq!(chained, 3);
    } else {
        // 11 I/O Deferreds (their links), and the list of the first one's stages behind its
        // first (one inline in the list's box, the other eight in its buffer).
        assert_eq!(add_callback, 13);
        // 11 I/O Deferreds: each step's rest of the run is one stage added to the next one's
        // link.
        assert_eq!(chained, 11);
    }
}

/// A thread keeps the memory of the chains it frees for the next chains it makes (up to 16 of
/// each size, in deferred-core's `chain_arc/cells.rs`): on a thread that has run a pending chain
/// before, the next allocates no link, and an `add_callback` chain nothing for its list of
/// stages (neither the box nor its buffer). Not with the feature `registry` (its chains are
/// `Arc`s and `Rc`s), nor in `.ci/memcheck`'s run (`DEFERRED_NO_CELL_CACHE`).
#[test]
fn a_thread_keeps_a_freed_chain_for_its_next() {
    let warm = |chain: fn(u64) -> u64| {
        assert_eq!(chain(1), 11);
        counted(|| chain(1)).0
    };
    let chained = warm(common::pending::chain);
    let local = warm(common::pending::local_chain);
    let add_callback = warm(common::pending::add_callback);
    println!(
        "pending, on a warm thread: chain! {chained}, local chain! {local}, add_callback {add_callback}"
    );
    let kept = usize::from(!chains_kept());
    assert_eq!(chained, kept, "chain!: its link");
    assert_eq!(local, kept, "local chain!: its link");
    // The list's box (of its first two stages) and its buffer for the other eight are kept as
    // a link is.
    assert_eq!(
        add_callback,
        3 * kept,
        "add_callback: its link, its list's box, and the list's buffer"
    );
}

/// The design target, "at most one allocation per pending link", for steps that capture
/// something (their box is not free): one box per step, plus the link and its list of stages.
#[test]
fn pending_steps_that_capture() {
    let capturing = allocations_of(|| {
        let (start, resolver) = Deferred::<u64>::pending();
        let mut d = start;
        for i in 0..10u64 {
            d = d.add_callback(move |a| Ok(a + i));
        }
        resolver.callback(1);
        d.wait().unwrap()
    });
    println!("10 pending steps that capture a u64: {capturing}");
    assert_eq!(
        capturing, 13,
        "the link, its list of stages (made, grown once), and one box per step"
    );
}

/// A `catch` right after a run of `then`s is one stage of a pending start with the run, as the
/// hand-written `add_callbacks(run, catch)` is: the link and, for steps that capture, one box
/// for both; no list of stages behind the first, on the start's link or on the link of a
/// Deferred a step returned. On a fired start, nothing.
#[test]
fn a_pending_run_of_thens_and_its_catch_are_one_stage() {
    let hand_written = allocations_of(|| {
        let (start, resolver) = Deferred::<u64>::pending();
        let d = start.add_callbacks(
            |a| Deferred::succeed(a + 1).add_callback(|b| Ok(b * 2)),
            |_| Ok(0),
        );
        resolver.callback(1);
        d.wait().unwrap()
    });
    let chained = allocations_of(|| {
        let (start, resolver) = Deferred::<u64>::pending();
        let d = chain! {
            start
            then |a| a + 1
            then |b| b * 2
            catch |_| 0
        };
        resolver.callback(1);
        d.wait().unwrap()
    });
    let (step, fallback) = (std::hint::black_box(1u64), std::hint::black_box(7u64));
    let hand_written_capturing = allocations_of(|| {
        let (start, resolver) = Deferred::<u64>::pending();
        let d = start.add_callbacks(
            move |a| Deferred::succeed(a + step).add_callback(move |b| Ok(b * step)),
            move |_| Ok(fallback),
        );
        resolver.callback(1);
        d.wait().unwrap()
    });
    let chained_capturing = allocations_of(|| {
        let (start, resolver) = Deferred::<u64>::pending();
        let d = chain! {
            start
            then move |a| a + step
            then move |b| b * step
            catch move |_| fallback
        };
        resolver.callback(1);
        d.wait().unwrap()
    });
    // A step that waits on I/O: the run's outcome is pending when the run has run; the start's
    // chain waits on it and then runs the catch, so the I/O's link keeps only the step added
    // to it (no list), as with `add_callbacks`.
    let hand_written_waiting = allocations_of(|| {
        let (start, resolver) = Deferred::<u64>::pending();
        let (io, io_resolver) = Deferred::<u64>::pending();
        let d = start.add_callbacks(move |_| io.add_callback(|b| Ok(b * 2)), |_| Ok(0));
        resolver.callback(1);
        io_resolver.callback(2);
        d.wait().unwrap()
    });
    let chained_waiting = allocations_of(|| {
        let (start, resolver) = Deferred::<u64>::pending();
        let (io, io_resolver) = Deferred::<u64>::pending();
        let d = chain! {
            start
            then move |_| io
            then |b| b * 2
            catch |_| 0
        };
        resolver.callback(1);
        io_resolver.callback(2);
        d.wait().unwrap()
    });
    // The same with a catch that captures: while the run waits, the catch is a stage of its own,
    // boxed again (the run's box held it until then).
    let chained_waiting_capturing = allocations_of(|| {
        let (start, resolver) = Deferred::<u64>::pending();
        let (io, io_resolver) = Deferred::<u64>::pending();
        let d = chain! {
            start
            then move |_| io
            then |b| b * 2
            catch move |_| fallback
        };
        resolver.callback(1);
        io_resolver.callback(2);
        d.wait().unwrap()
    });
    let fired = allocations_of(|| {
        let d = chain! {
            Deferred::<u64>::succeed(1)
            then |a| a + 1
            then |b| b * 2
            catch |_| 0
        };
        d.wait().unwrap()
    });
    println!(
        "pending start, then, then, catch: add_callbacks {hand_written}, chain! {chained}; \
         capturing: add_callbacks {hand_written_capturing}, chain! {chained_capturing}; \
         a step waiting on I/O: add_callbacks {hand_written_waiting}, chain! {chained_waiting}; \
         fired start: chain! {fired}"
    );
    assert_eq!(hand_written, 1, "the link");
    // The feature `registry` keeps where the catch is in the stage (the registry lists the
    // catch there while the run's outcome is pending): a box even for steps that capture
    // nothing.
    let registry = usize::from(cfg!(feature = "registry"));
    assert_eq!(
        chained,
        hand_written + registry,
        "the link: its one stage captures nothing"
    );
    assert_eq!(hand_written_capturing, 2, "the link and its stage's box");
    assert_eq!(
        chained_capturing, hand_written_capturing,
        "the link and one box for the run and the catch"
    );
    assert_eq!(
        hand_written_waiting, 3,
        "the two links and the run's box (it captures the I/O's Deferred)"
    );
    assert_eq!(
        chained_waiting, hand_written_waiting,
        "the two links and one box for the run and the catch: no list on either link"
    );
    assert_eq!(
        chained_waiting_capturing,
        chained_waiting + 1,
        "and the catch's own box while the run waits"
    );
    assert_eq!(fired, 0, "synchronous steps allocate nothing");
}

/// The allocations `f` makes on this thread (no warm-up: the caller warms up what it needs),
/// counted as on a new thread, as by `allocations_of`.
fn allocations_in<R>(f: impl FnOnce() -> R) -> (usize, R) {
    deferred::__give_back_kept_chains();
    counted(f)
}

/// The allocations `f` makes on this thread, with what it gives.
fn counted<R>(f: impl FnOnce() -> R) -> (usize, R) {
    let before = ALLOCATIONS.with(Cell::get);
    COUNTING.with(|counting| counting.set(true));
    let result = std::hint::black_box(f());
    COUNTING.with(|counting| counting.set(false));
    (ALLOCATIONS.with(Cell::get) - before, result)
}

/// `gather_results` of pending Deferreds, from making it to taking its values, the inputs made
/// beforehand: its shared state (which keeps each input's place in the inputs' own `Vec`) and
/// its output's link, whatever the number of inputs. The output `Vec` takes the places' `Vec`
/// (the layouts of `u64` and of a place allow it), and no step is added to the inputs. Given
/// an array rather than a `Vec`, it collects the inputs into one: one more.
#[test]
fn gather_results_of_pending_deferreds() {
    fn gathered(n: u64, array: bool) -> usize {
        let (inputs, resolvers): (Vec<Deferred<u64>>, Vec<Resolver<u64>>) =
            (0..n).map(|_| Deferred::pending()).unzip();
        let (allocations, values) = if array {
            let [a, b]: [Deferred<u64>; 2] = inputs.try_into().expect("two inputs");
            allocations_in(|| {
                let all = gather_results([a, b]);
                for (i, resolver) in resolvers.into_iter().enumerate() {
                    resolver.callback(i as u64);
                }
                all.wait().unwrap()
            })
        } else {
            allocations_in(|| {
                let all = gather_results(inputs);
                for (i, resolver) in resolvers.into_iter().enumerate() {
                    resolver.callback(i as u64);
                }
                all.wait().unwrap()
            })
        };
        assert_eq!(values, (0..n).collect::<Vec<_>>());
        allocations
    }
    gathered(2, false); // warm-up: the run loop's queue
    let (two, twenty_five, array) = (gathered(2, false), gathered(25, false), gathered(2, true));
    println!("gather_results of pending Deferreds: 2 {two}, 25 {twenty_five}, [a, b] {array}");
    assert_eq!(two, 2, "the shared state and the output's link");
    assert_eq!(twenty_five, 2, "the shared state and the output's link");
    assert_eq!(
        array, 3,
        "the inputs' Vec, the shared state and the output's link"
    );
}

/// `join` of pending Deferreds of different types, from making it to taking its tuple: what
/// `gather_results` of an array makes (the inputs' places, the shared state and the output's
/// link), whatever the arity; no step is added to the inputs, and nothing is allocated for a
/// value. `join_settled` the same.
#[test]
fn join_of_pending_deferreds() {
    fn joined(settled: bool) -> usize {
        let (a, resolve_a) = Deferred::<u64>::pending();
        let (b, resolve_b) = Deferred::<String>::pending();
        let (c, resolve_c) = Deferred::<bool>::pending();
        let (allocations, values) = allocations_in(|| {
            let fire = move || {
                resolve_c.callback(true);
                resolve_a.callback(7);
                resolve_b.callback(String::new());
            };
            if settled {
                let all = join_settled((a, b, c));
                fire();
                let (a, b, c) = all.wait().unwrap();
                (a.unwrap(), b.unwrap(), c.unwrap())
            } else {
                let all = join((a, b, c));
                fire();
                all.wait().unwrap()
            }
        });
        assert_eq!(values, (7, String::new(), true));
        allocations
    }
    joined(false); // warm-up: the run loop's queue
    let (all, settled) = (joined(false), joined(true));
    println!("join of 3 pending Deferreds: {all}, join_settled: {settled}");
    assert_eq!(all, 3, "the places, the shared state and the output's link");
    assert_eq!(
        settled, 3,
        "the places, the shared state and the output's link"
    );
}

/// Taking the result of a pending Deferred that has fired: `wait` makes no thread waker when it
/// need not park (as polling makes no task waker), so both cost only the root link.
#[test]
fn wait_on_a_fired_pending_deferred() {
    let polling = allocations_of(|| {
        let (d, resolver) = Deferred::<u64>::pending();
        resolver.callback(1);
        d.now_or_never().expect("fired").unwrap()
    });
    let waiting = allocations_of(|| {
        let (d, resolver) = Deferred::<u64>::pending();
        resolver.callback(1);
        d.wait().unwrap()
    });
    println!("a fired pending Deferred: polled {polling}, waited {waiting}");
    assert_eq!(polling, 1, "the root link");
    assert_eq!(waiting, 1, "the root link");
}

/// The bytes a pending chain of ten `+1` steps holds while it waits: what the user holds (the
/// Deferred, or the future) plus what it points at on the heap, and the Resolver (or Sender).
/// Beside it, a futures-rs oneshot with ten `map`s, the same chain as a pull-based future.
/// Printed (`cargo test --test alloc_counts -- --nocapture`; BENCHMARKS.md), and kept from
/// growing by the asserts.
#[test]
fn bytes_held_by_a_pending_chain_of_ten_steps() {
    /// A chain! of ten `+1` steps on `start`, of its kind.
    macro_rules! ten_incs {
        ($start:expr) => {
            chain! {
                $start
                then |a| common::inc(a)
                then |a| common::inc(a)
                then |a| common::inc(a)
                then |a| common::inc(a)
                then |a| common::inc(a)
                then |a| common::inc(a)
                then |a| common::inc(a)
                then |a| common::inc(a)
                then |a| common::inc(a)
                then |a| common::inc(a)
            }
        };
    }
    fn held<H>(make: impl Fn() -> H) -> usize {
        // Dropping a held chain drops its Resolver unfired: the NeverFired failure that makes is
        // this test's own, collected here instead of printed.
        let quietly = |holding: H| drop(deferred::capture_unhandled(|| drop(holding)));
        quietly(make()); // warm-up: thread-locals
        // The median of three: with the feature `registry`, the registry's table of chains is
        // shared by this binary's tests, and grows (once in a while, on whichever thread
        // registers a chain then) by more than a chain holds, or drops the entries of chains
        // gone, which may free one of them on this thread.
        let mut measures: Vec<usize> = (0..3)
            .map(|_| {
                deferred::__give_back_kept_chains();
                let before = LIVE_BYTES.with(Cell::get);
                COUNTING.with(|counting| counting.set(true));
                let holding = make();
                COUNTING.with(|counting| counting.set(false));
                let heap = LIVE_BYTES.with(Cell::get) - before;
                let inline = std::mem::size_of_val(&holding);
                quietly(holding);
                heap as usize + inline
            })
            .collect();
        measures.sort_unstable();
        measures[1]
    }
    let add_callback = held(|| {
        let (d, resolver) = Deferred::<u64>::pending();
        let mut d = d;
        for _ in 0..10 {
            d = d.add_callback(|a| Ok(common::inc(a)));
        }
        (d, resolver)
    });
    let chain = held(|| {
        let (start, resolver) = Deferred::<u64>::pending();
        (ten_incs!(start), resolver)
    });
    let local = held(|| {
        let (start, resolver) = deferred::LocalDeferred::<u64>::pending();
        (ten_incs!(start), resolver)
    });
    let futures = held(|| {
        let (sender, receiver) = futures::channel::oneshot::channel::<u64>();
        let future = receiver
            .map(|r| r.map(common::inc))
            .map(|r| r.map(common::inc))
            .map(|r| r.map(common::inc))
            .map(|r| r.map(common::inc))
            .map(|r| r.map(common::inc))
            .map(|r| r.map(common::inc))
            .map(|r| r.map(common::inc))
            .map(|r| r.map(common::inc))
            .map(|r| r.map(common::inc))
            .map(|r| r.map(common::inc));
        (future, sender)
    });
    // The floor cells of benches/common (`pending::locked_cell`, `local_cell`): one cell
    // holding the ten steps as one stage, and the resolver's handle.
    let locked_cell = held(|| {
        use common::pending::locked;
        locked::built::<Option<locked::Stage>>(false)
    });
    let local_cell = held(|| {
        use common::pending::local;
        local::built::<Option<local::Stage>>(false)
    });
    eprintln!(
        "bytes held by a pending 10-step chain and its resolver: add_callback {add_callback}, \
         chain! {chain}, local chain! {local}, futures-rs oneshot + 10 maps {futures}, \
         the floor cell {locked_cell} (local {local_cell})"
    );
    // Regression guards at today's figures (see BENCHMARKS.md): a change that grows them
    // should say so there. The feature `registry` adds 40 bytes to a chain's cell, and gives
    // the chains `std::sync::Arc`'s or `std::rc::Rc`'s counts of 16 bytes where `ChainArc`'s
    // and `ChainRc`'s are 8.
    let registry = if cfg!(feature = "registry") { 40 } else { 0 };
    let arc = if cfg!(feature = "registry") { 8 } else { 0 };
    assert!(chain <= 144 + registry + arc, "chain! holds {chain} bytes");
    assert!(
        local <= 144 + registry + arc,
        "a local chain! holds {local} bytes"
    );
    assert!(
        add_callback <= 416 + registry + arc,
        "add_callback holds {add_callback} bytes"
    );
}

/// A Resolver is one pointer, as tokio's oneshot `Sender` is: a producer that keeps one per
/// call in flight (an I/O loop's queue) pays 8 bytes each. How the root fires is kept in the
/// chain until it does.
#[test]
fn a_resolver_is_one_pointer() {
    use std::mem::size_of;
    assert_eq!(size_of::<deferred::Resolver<u64>>(), size_of::<usize>());
    assert_eq!(
        size_of::<deferred::Resolver<String, std::io::Error>>(),
        size_of::<usize>()
    );
    assert_eq!(
        size_of::<deferred::LocalResolver<u64>>(),
        size_of::<usize>()
    );
}
