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

fn allocations_in<R>(f: impl FnOnce() -> R) -> (R, usize) {
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
