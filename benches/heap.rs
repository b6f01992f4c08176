//! The heap of the workload benchmarks (`bluebird.rs`, `doxbee.rs`): a counting allocator, on
//! only while a run is measured (off, it costs one relaxed load per call). It tracks the live
//! bytes and their peak, the number of allocations (a `realloc` counts as one), the bytes
//! allocated, and the allocations by size (8-byte classes).
#![allow(dead_code)] // each benchmark reads what it reports

use std::alloc::{GlobalAlloc, Layout};

// The allocator every call is forwarded to: the system's (glibc's `malloc` here), or with the
// feature `mimalloc` (`cargo bench -p deferred-benches --features mimalloc --bench ..`)
// mimalloc, to see how much of a workload's time is the allocator's.
#[cfg(feature = "mimalloc")]
use mimalloc::MiMalloc as Underlying;
#[cfg(not(feature = "mimalloc"))]
use std::alloc::System as Underlying;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

struct Counting;

static TRACKING: AtomicBool = AtomicBool::new(false);
static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static ALLOCATED: AtomicUsize = AtomicUsize::new(0);
/// Allocations by size: class `k` holds the sizes `8k-7 ..= 8k`; the last class everything
/// larger.
static BY_SIZE: [AtomicUsize; SIZE_CLASSES] = [const { AtomicUsize::new(0) }; SIZE_CLASSES];
pub const SIZE_CLASSES: usize = 65;

fn grow(size: usize) {
    let now = CURRENT.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(now, Ordering::Relaxed);
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    ALLOCATED.fetch_add(size, Ordering::Relaxed);
    BY_SIZE[size.div_ceil(8).min(SIZE_CLASSES - 1)].fetch_add(1, Ordering::Relaxed);
}

fn shrink(size: usize) {
    // Memory allocated before tracking began may be freed during it: saturate at 0.
    let _ = CURRENT.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| {
        Some(now.saturating_sub(size))
    });
}

// SAFETY: every call is forwarded to the underlying allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if TRACKING.load(Ordering::Relaxed) {
            grow(layout.size());
        }
        // SAFETY: forwarded as is.
        unsafe { Underlying.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if TRACKING.load(Ordering::Relaxed) {
            shrink(layout.size());
        }
        // SAFETY: forwarded as is.
        unsafe { Underlying.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if TRACKING.load(Ordering::Relaxed) {
            shrink(layout.size());
            grow(new_size);
        }
        // SAFETY: forwarded as is.
        unsafe { Underlying.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// What the allocator saw during one run.
pub struct Heap {
    pub peak: usize,
    pub allocations: usize,
    pub allocated: usize,
    pub by_size: Vec<usize>,
}

pub fn heap_of(run: impl FnOnce()) -> Heap {
    for counter in [&CURRENT, &PEAK, &ALLOCATIONS, &ALLOCATED] {
        counter.store(0, Ordering::Relaxed);
    }
    for class in &BY_SIZE {
        class.store(0, Ordering::Relaxed);
    }
    TRACKING.store(true, Ordering::Relaxed);
    run();
    TRACKING.store(false, Ordering::Relaxed);
    Heap {
        peak: PEAK.load(Ordering::Relaxed),
        allocations: ALLOCATIONS.load(Ordering::Relaxed),
        allocated: ALLOCATED.load(Ordering::Relaxed),
        by_size: BY_SIZE.iter().map(|c| c.load(Ordering::Relaxed)).collect(),
    }
}
