//! The allocations of a `chain!`: none for synchronous steps, and one link for a whole run of
//! `then`s on a pending Deferred (the run is one callback).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use deferred::{Deferred, chain};

/// Counts this thread's allocations (tests run on several threads at once).
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded to the system allocator unchanged; the counter is a
// `const`-initialized thread local without a destructor, which does not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|count| count.set(count.get() + 1));
        // SAFETY: forwarded as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// The allocations `f` makes on this thread, counted as on a new thread: the memory of chains
/// freed before, which a thread keeps for its next chains (unless the feature `registry` is on),
/// is given back first, so that a block kept from an earlier chain does not hide an allocation.
fn allocations_in<R>(f: impl FnOnce() -> R) -> (R, usize) {
    deferred::__give_back_kept_chains();
    let before = ALLOCATIONS.with(Cell::get);
    let result = f();
    (result, ALLOCATIONS.with(Cell::get) - before)
}

#[test]
fn synchronous_steps_allocate_nothing() {
    let (value, allocations) = allocations_in(|| {
        let d = chain! {
            1u64
            then |a| a + 1
            then |b| Ok(b * 2)
            then |c| Deferred::<_>::succeed(c + a)
            catch |_| 0
            then |d| d + 1
            finally || ()
            finally |outcome| assert!(outcome.is_ok())
        };
        d.wait().unwrap()
    });
    assert_eq!(value, ((1 + 1) * 2 + 1) + 1);
    assert_eq!(allocations, 0);
}

#[test]
fn a_pending_run_of_thens_allocates_like_a_single_then() {
    // A warm-up: the first pending chain of the process sets up the registry of pending chains
    // when the feature `registry` is on (once: after it, registering allocates nothing).
    let (start, resolver) = Deferred::<u64>::pending();
    resolver.callback(0);
    start.wait().unwrap();
    let (_, one) = allocations_in(|| {
        let (start, resolver) = Deferred::<u64>::pending();
        let d = chain! { start then |a| a + 1 };
        resolver.callback(1);
        d.wait().unwrap()
    });
    let (value, ten) = allocations_in(|| {
        let (start, resolver) = Deferred::<u64>::pending();
        let d = chain! {
            start
            then |a| a + 1 then |b| b + a then |c| c + 1 then |d| d * 2 then |e| e + 1
            then |f| f + 1 then |g| g + 1 then |h| h + 1 then |i| i + 1 then |j| j + b
        };
        resolver.callback(1);
        d.wait().unwrap()
    });
    assert_eq!(value, ((((1 + 1) + 1) + 1) * 2 + 1 + 1 + 1 + 1 + 1) + 2);
    assert_eq!(ten, one, "ten pending thens in a run cost what one does");
}

/// src/lib.rs ("Costs"): "on a pending Deferred, a whole run of `then`s is one callback (one
/// link), and each `catch` and `finally` at most one more (a `catch` right after the run shares
/// its link)". Measured against the run alone: the first `catch` adds nothing, the second one
/// allocation, a `finally` one.
#[test]
fn a_catch_after_a_pending_run_costs_nothing_more_and_a_finally_one_stage_more() {
    // Warm-up, as above.
    let (start, resolver) = Deferred::<u64>::pending();
    resolver.callback(0);
    start.wait().unwrap();
    let (_, run) = allocations_in(|| {
        let (start, resolver) = Deferred::<u64>::pending();
        let d = chain! { start then |a| a + 1 then |b| b * 2 };
        resolver.callback(1);
        d.wait().unwrap()
    });
    let (_, with_catch) = allocations_in(|| {
        let (start, resolver) = Deferred::<u64>::pending();
        let d = chain! { start then |a| a + 1 then |b| b * 2 catch |_| 0 };
        resolver.callback(1);
        d.wait().unwrap()
    });
    let (_, with_two_catches) = allocations_in(|| {
        let (start, resolver) = Deferred::<u64>::pending();
        let d = chain! {
            start then |a| a + 1 then |b| b * 2 catch |_e: std::fmt::Error| 0 catch |_| 1
        };
        resolver.callback(1);
        d.wait().unwrap()
    });
    let (_, with_finally) = allocations_in(|| {
        let (start, resolver) = Deferred::<u64>::pending();
        let d = chain! { start then |a| a + 1 then |b| b * 2 finally || () };
        resolver.callback(1);
        d.wait().unwrap()
    });
    println!(
        "run {run}, + catch {with_catch}, + two catches {with_two_catches}, + finally {with_finally}"
    );
    // (With the feature `registry`, the stage keeps where the `catch` was written, for the
    // listing: the closure's box is not free, one allocation.)
    let where_kept = usize::from(cfg!(feature = "registry"));
    assert_eq!(
        with_catch,
        run + where_kept,
        "a catch right after the run shares its stage"
    );
    assert_eq!(
        with_two_catches,
        with_catch + 1,
        "the second catch is one more"
    );
    assert_eq!(with_finally, run + 1, "a finally is one more");
}
