//! The memory of freed chains, kept by each thread for the next chains it makes.
//!
//! # Why
//!
//! A pending `chain!` is one allocation, its chain ([`ChainArc::new_pair`](super::ChainArc)),
//! freed when the end has taken the result; a pending `add_callback` link or a Bluebird I/O call
//! is one more. With glibc's allocator, `malloc` and `free` of a chain cost about 134
//! instructions of a pending 10-step `chain!`'s 702 (callgrind, `instructions run 9 6000`).
//! Taking a block off this thread's list, and putting it back, costs about 50: a pending
//! `chain!` runs 84 instructions fewer, 61.8 a step, not 70.2 (BENCHMARKS.md, "A chain's memory,
//! kept for the next").
//!
//! # What is kept
//!
//! - Blocks of 8 to [`LARGEST`] bytes aligned to 8 exactly: every chain's, unless its value needs
//!   more alignment (its count is a `usize`). One list a size, 8 bytes apart.
//! - At most [`KEPT`] blocks of each size a thread: a block freed when its list is full goes
//!   back to the global allocator at once. A block freed on another thread than the one that
//!   allocated it is kept by the thread that frees it.
//! - A thread's blocks go back to the global allocator when the thread ends (a thread-local's
//!   destructor, [`GiveBack`]); after that, nothing more is kept on that thread.
//! - A chain's parts that come and go as often as chains do take their blocks from the same
//!   lists: the box of a list of two stages or more (`chain/pending/stage.rs`) is a
//!   [`KeptBox`], and that list's buffer for its third stage on is a `Vec`'s made by
//!   [`vec_of_options`] and given back by [`free_vec_of_nones`].
//! - [`give_back`] gives this thread's blocks back at once (the tests that count a chain's
//!   allocations start from it).
//!
//! Nothing is kept under loom (its models run every chain through here, on one thread of the
//! OS), nor in a process run with the environment variable `DEFERRED_NO_CELL_CACHE` set (to
//! anything), as `.ci/memcheck` runs the test suites: a block in a list is allocated as far as
//! memcheck (or a heap profiler) can tell, so a use of a chain after it was freed would go
//! unseen while its block waits there. The variable is read when a thread would keep its first
//! block ([`Lists::keep_first`], out of the chains' path), and closes that thread's lists: so
//! one build serves both, natively and under memcheck. This module's own tests use the lists
//! whatever the variable says ([`tests::LISTS_TESTED`]), so memcheck checks them too (not loom).
//!
//! # Invariants
//!
//! 1. A block in list `i` of a thread was allocated by the global allocator with the layout of
//!    size `(i + 1) * 8` and alignment 8 ([`list_of`]), and nothing else points to it: the list
//!    owns it. It is handed out ([`allocate`]) only for that layout, and given back
//!    ([`Lists::give_back`]) with it.
//! 2. A thread's lists are reached from that thread alone (a thread-local of plain `Cell`s, so
//!    neither `Send` nor `Sync`), and never while another of this module's functions runs on it:
//!    none calls out (to the allocator's `dealloc` at most, which does not free chains).
//! 3. A freed block's first 8 bytes hold the next block of its list (a [`Free`]), written when it
//!    is kept: every kept block is at least 8 bytes and aligned to 8.
#![cfg_attr(loom, allow(dead_code))]

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::cell::Cell;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// The largest block kept, in bytes.
pub(super) const LARGEST: usize = 512;

/// How many blocks of one size a thread keeps at most: `LARGEST / 8` lists of up to 16 blocks
/// is at most 260 KiB a thread, and in practice a few KiB (a chain of `u64`s is 112 bytes).
pub(super) const KEPT: u32 = 16;

/// The alignment of every block kept, and the step between the sizes of two lists.
const GRAIN: usize = 8;

/// How many lists a thread has: one for each multiple of 8 up to [`LARGEST`].
const LISTS: usize = LARGEST / GRAIN;

/// A list's length once its thread's destructor has given its blocks back: no block is kept
/// any more (`KEPT` is less).
const CLOSED: u32 = u32::MAX;

/// A kept block, seen as the link to the next block of its list (invariant 3).
struct Free {
    next: Option<NonNull<Free>>,
}

/// A thread's lists: for each size, its last kept block and how many it holds.
struct Lists {
    heads: [Cell<Option<NonNull<Free>>>; LISTS],
    lengths: [Cell<u32>; LISTS],
    /// Whether [`GiveBack`], which gives the blocks back when the thread ends, is registered.
    guarded: Cell<bool>,
}

std::thread_local! {
    /// No destructor of its own, so reaching it is one address and never fails, even while the
    /// thread's locals are being destroyed: [`GIVE_BACK`]'s destructor empties it.
    static HERE: Lists = const {
        Lists {
            heads: [const { Cell::new(None) }; LISTS],
            lengths: [const { Cell::new(0) }; LISTS],
            guarded: Cell::new(false),
        }
    };
    /// Registered by the first block kept on a thread: its destructor gives the thread's blocks
    /// back when the thread ends.
    static GIVE_BACK: GiveBack = const { GiveBack };
}

/// Gives the thread's blocks back to the global allocator when the thread ends, and closes its
/// lists: a chain freed later in the thread's end (by another thread-local's destructor) goes
/// back at once.
struct GiveBack;

impl Drop for GiveBack {
    fn drop(&mut self) {
        HERE.with(|lists| lists.give_back(CLOSED));
    }
}

/// The list a block of `layout` is kept in, if it may be.
#[inline(always)]
fn list_of(layout: Layout) -> Option<usize> {
    let size = layout.size();
    // A type's size is a multiple of its alignment, so of 8 here (a layout that is not, no
    // type's, is not kept); 0 is not a chain's. The index is `(size - 1) / 8`, not
    // `size / 8 - 1`: the compiler then sees it is in bounds.
    if layout.align() == GRAIN && size != 0 && size <= LARGEST && size.is_multiple_of(GRAIN) {
        Some((size - 1) / GRAIN)
    } else {
        None
    }
}

impl Lists {
    /// A kept block of list `list`, if there is one.
    #[inline(always)]
    fn take(&self, list: usize) -> Option<NonNull<u8>> {
        let block = self.heads[list].get()?;
        // SAFETY: invariant 1: the list owns `block`; invariant 3: its first bytes are the link
        // written when it was kept.
        self.heads[list].set(unsafe { block.as_ref() }.next);
        self.lengths[list].set(self.lengths[list].get() - 1);
        Some(block.cast())
    }

    /// Keeps `block` in list `list` unless the list is full (or closed); says whether it did.
    ///
    /// # Safety
    ///
    /// `block` was allocated by the global allocator with the layout of list `list`, and
    /// nothing uses it any more.
    #[inline(always)]
    unsafe fn keep(&self, list: usize, block: NonNull<u8>) -> bool {
        if self.lengths[list].get() >= KEPT {
            return false;
        }
        if !self.guarded.get() {
            return self.keep_first(list, block);
        }
        let block = block.cast::<Free>();
        // SAFETY: the caller gives the block, at least 8 bytes aligned to 8 (invariant 3), to
        // the list, which owns it from now on (invariant 1).
        unsafe {
            block.as_ptr().write(Free {
                next: self.heads[list].get(),
            })
        };
        self.heads[list].set(Some(block));
        self.lengths[list].set(self.lengths[list].get() + 1);
        true
    }

    /// The first block this thread keeps: registers [`GIVE_BACK`] first, or, if the thread's
    /// locals are being destroyed and it is gone already, keeps nothing from now on.
    #[cold]
    #[inline(never)]
    fn keep_first(&self, list: usize, block: NonNull<u8>) -> bool {
        self.guarded.set(true);
        if off_by_environment() || GIVE_BACK.try_with(|_| ()).is_err() {
            self.give_back(CLOSED);
            return false;
        }
        // SAFETY: as the caller's (`keep`), now with the thread's end guarded.
        unsafe { self.keep(list, block) }
    }

    /// Gives every kept block back to the global allocator; the lists then hold `length`
    /// blocks: 0, or [`CLOSED`] to keep none from now on.
    fn give_back(&self, length: u32) {
        for list in 0..LISTS {
            let layout = layout_of(list);
            while let Some(block) = self.heads[list].get() {
                // SAFETY: invariant 1: the list owns the block; invariant 3: its link.
                self.heads[list].set(unsafe { block.as_ref() }.next);
                // SAFETY: invariant 1: allocated by the global allocator with this layout, and
                // taken off the list above, so nothing points to it any more.
                unsafe { dealloc(block.as_ptr().cast(), layout) };
            }
            self.lengths[list].set(length);
        }
    }
}

/// The layout of the blocks of list `list` (invariant 1).
fn layout_of(list: usize) -> Layout {
    match Layout::from_size_align((list + 1) * GRAIN, GRAIN) {
        Ok(layout) => layout,
        Err(_) => unreachable!("a size up to LARGEST aligned to 8 is a layout"),
    }
}

/// Whether chains' blocks are kept at all in this build: not under loom (see the module's docs).
pub(super) const KEEPS: bool = !cfg!(loom);

/// The environment variable that turns keeping off for the whole process.
const OFF: &str = "DEFERRED_NO_CELL_CACHE";

/// Whether `DEFERRED_NO_CELL_CACHE` turns keeping off (read when a thread would keep its first
/// block); never for this module's own tests of the lists.
fn off_by_environment() -> bool {
    #[cfg(all(test, not(loom)))]
    if tests::LISTS_TESTED.with(Cell::get) {
        return false;
    }
    std::env::var_os(OFF).is_some()
}

/// Whether this thread keeps chains' blocks: in this build ([`KEEPS`]), and in this process
/// (`DEFERRED_NO_CELL_CACHE` not set).
#[cfg(test)]
pub(super) fn keeps() -> bool {
    KEEPS && std::env::var_os(OFF).is_none()
}

/// A block for `layout` (which is not zero-sized): one this thread kept, or a new one from the
/// global allocator.
#[inline(always)]
pub(super) fn allocate(layout: Layout) -> NonNull<u8> {
    if KEEPS {
        allocate_kept(layout)
    } else {
        new_block(layout)
    }
}

/// Frees `block`: this thread keeps it for the next block of its size, or the global allocator
/// takes it back.
///
/// # Safety
///
/// `block` was given by [`allocate`] or by the global allocator for `layout`, which is not
/// zero-sized, and nothing uses it any more.
#[inline(always)]
pub(super) unsafe fn free(block: NonNull<u8>, layout: Layout) {
    if KEEPS {
        // SAFETY: the caller's (`allocate` is `allocate_kept`).
        unsafe { free_kept(block, layout) }
    } else {
        // SAFETY: the caller's: `allocate` is `new_block`, the global allocator's.
        unsafe { dealloc(block.as_ptr(), layout) }
    }
}

/// `allocate` when blocks are kept.
#[inline(always)]
fn allocate_kept(layout: Layout) -> NonNull<u8> {
    if let Some(list) = list_of(layout)
        && let Some(block) = HERE.with(|lists| lists.take(list))
    {
        return block;
    }
    new_block(layout)
}

/// A new block for `layout` from the global allocator.
#[inline(always)]
fn new_block(layout: Layout) -> NonNull<u8> {
    assert!(
        layout.size() != 0,
        "a block holds a chain or a part of one, never nothing"
    );
    // SAFETY: `layout` is not zero-sized (asserted above).
    let block = unsafe { alloc(layout) };
    NonNull::new(block).unwrap_or_else(|| handle_alloc_error(layout))
}

/// `free` when blocks are kept.
///
/// # Safety
///
/// `block` was given by [`allocate_kept`] or by the global allocator for `layout`, and nothing
/// uses it any more.
#[inline(always)]
unsafe fn free_kept(block: NonNull<u8>, layout: Layout) {
    if let Some(list) = list_of(layout)
        // SAFETY: a block given for a layout of list `list` by `allocate_kept` came from the
        // list (invariant 1) or from the global allocator with that same layout, as one the
        // global allocator gave did; the caller is done with it.
        && HERE.with(|lists| unsafe { lists.keep(list, block) })
    {
        return;
    }
    // SAFETY: the caller's: the block came from the global allocator with `layout` (by way of
    // `allocate_kept`, or of a list that had it so: invariant 1), and nothing uses it.
    unsafe { dealloc(block.as_ptr(), layout) };
}

/// A box whose block comes from this thread's kept blocks (or the global allocator) and goes
/// back to them when it is dropped: `Box` for a chain's part that is made and freed as often as
/// chains are. Only for values that are not zero-sized (every block holds something).
pub(crate) struct KeptBox<T> {
    value: NonNull<T>,
    /// The box owns a `T` (for the drop check, and `Send`/`Sync` below).
    owns: PhantomData<T>,
}

// SAFETY: a `KeptBox` owns its `T` as a `Box` does: sending it sends the `T`, sharing it shares
// `&T`. Its block goes back to the lists of whichever thread drops it, which take blocks freed
// on any thread (invariant 1 asks only that the block came from the global allocator).
unsafe impl<T: Send> Send for KeptBox<T> {}
// SAFETY: as for `Send`.
unsafe impl<T: Sync> Sync for KeptBox<T> {}

impl<T> KeptBox<T> {
    /// Moves `value` into a block of its own.
    #[inline]
    pub(crate) fn new(value: T) -> KeptBox<T> {
        let block = allocate(Layout::new::<T>()).cast::<T>();
        // SAFETY: a block for the layout of `T` (`allocate`), which nothing else uses.
        unsafe { block.as_ptr().write(value) };
        KeptBox {
            value: block,
            owns: PhantomData,
        }
    }
}

impl<T> Deref for KeptBox<T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the block holds the value written by `new` until the box is dropped.
        unsafe { self.value.as_ref() }
    }
}

impl<T> DerefMut for KeptBox<T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as `deref`; `&mut self` is the only way to it.
        unsafe { self.value.as_mut() }
    }
}

impl<T> Drop for KeptBox<T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the value written by `new` in a block `allocate` gave for its layout, dropped
        // once, here; the box goes with it.
        unsafe { drop_and_free(self.value) };
    }
}

/// `Vec::with_capacity(capacity)` of `Option<T>`s, with the buffer taken from this thread's
/// kept blocks when it has one of that size: a `Vec` like any other, whose buffer the global
/// allocator frees when it is dropped, or this thread's lists when it is given to
/// [`free_vec_of_nones`]. Both name the same element type, so both compute the same layout.
#[inline]
pub(crate) fn vec_of_options<T>(capacity: usize) -> Vec<Option<T>> {
    let Ok(layout) = Layout::array::<Option<T>>(capacity) else {
        return Vec::with_capacity(capacity);
    };
    if layout.size() == 0 {
        return Vec::with_capacity(capacity);
    }
    let buffer = allocate(layout).cast::<Option<T>>();
    // SAFETY: the buffer came from the global allocator (`allocate` takes its blocks from it,
    // and a list's block was allocated with that list's layout, `layout` here: invariant 1)
    // for `Layout::array::<Option<T>>(capacity)`, a `Vec`'s layout for that capacity; it holds
    // no value (length 0).
    unsafe { Vec::from_raw_parts(buffer.as_ptr(), 0, capacity) }
}

/// Gives the buffer of `vec`, every place of which is `None`, to this thread's lists (or back
/// to the global allocator), without looking at its places: a `None` has nothing to drop. (A
/// place that held a value would leak it; debug builds check that none does.)
#[inline]
pub(crate) fn free_vec_of_nones<T>(vec: Vec<Option<T>>) {
    debug_assert!(
        vec.iter().all(Option::is_none),
        "a place of a buffer given back holds a value"
    );
    let mut vec = std::mem::ManuallyDrop::new(vec);
    let (buffer, capacity) = (vec.as_mut_ptr(), vec.capacity());
    // The layout of the `Vec`'s elements, `Option<T>`s (as `vec_of_options`'s): not `T`'s,
    // which may be smaller.
    let Ok(layout) = Layout::array::<Option<T>>(capacity) else {
        unreachable!("a `Vec`'s capacity is a layout's");
    };
    let Some(buffer) = NonNull::new(buffer) else {
        unreachable!("a `Vec`'s buffer is never null");
    };
    if layout.size() != 0 {
        // SAFETY: a `Vec`'s buffer of more than 0 bytes came from the global allocator for
        // `Layout::array::<Option<T>>(capacity)`, its elements' (whose blocks `free` takes:
        // invariant 1 asks no more); its places hold no value (`None`s, or past its length),
        // and the `Vec` is forgotten, so nothing uses the buffer.
        unsafe { free(buffer.cast(), layout) };
    }
}

/// Drops the value at `value`, then frees its block ([`free`]), even if the value's drop panics:
/// the end of a `ChainArc`'s value and of a [`KeptBox`]'s.
///
/// # Safety
///
/// `value` points to a live value written in a block that [`allocate`] gave for the layout of
/// the type it was written as (which `Layout::for_value` of it, sized or not, gives again), and
/// nothing uses the value or its block after this call.
#[inline(always)]
pub(super) unsafe fn drop_and_free<T: ?Sized>(value: NonNull<T>) {
    struct Free(NonNull<u8>, Layout);
    impl Drop for Free {
        #[inline(always)]
        fn drop(&mut self) {
            // SAFETY: the caller's: the block came from `allocate` for this layout, and the
            // value in it is dropped (or its drop unwound): nothing uses it.
            unsafe { free(self.0, self.1) };
        }
    }
    // SAFETY: the caller's: the value is live.
    let layout = Layout::for_value(unsafe { value.as_ref() });
    let _free = Free(value.cast(), layout);
    // SAFETY: the caller's: dropped once, here; the block is freed after, by `_free`.
    unsafe { std::ptr::drop_in_place(value.as_ptr()) };
}

/// Gives this thread's kept blocks back to the global allocator now; it keeps blocks again from
/// the next one freed.
pub(crate) fn give_back() {
    HERE.with(|lists| {
        if lists.lengths[0].get() != CLOSED {
            lists.give_back(0);
        }
    });
}

/// How many blocks of `layout`'s size this thread keeps.
#[cfg(test)]
fn kept_here(layout: Layout) -> u32 {
    list_of(layout).map_or(0, |list| HERE.with(|lists| lists.lengths[list].get()))
}

/// The lists themselves (`allocate_kept`, `free_kept`), in every build but loom's, and in
/// memcheck's run too (`DEFERRED_NO_CELL_CACHE` set), where the chains do not use them.
#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    std::thread_local! {
        /// Set by each test here, on each thread it runs: the lists work whatever
        /// `DEFERRED_NO_CELL_CACHE` says.
        pub(super) static LISTS_TESTED: Cell<bool> = const { Cell::new(false) };
    }

    /// The lists of this thread, open to this module's tests.
    fn tested() {
        LISTS_TESTED.with(|tested| tested.set(true));
    }

    fn chain_sized() -> Layout {
        Layout::from_size_align(112, 8).unwrap()
    }

    #[test]
    fn a_freed_block_is_the_next_one_of_its_size() {
        tested();
        give_back();
        let layout = chain_sized();
        let first = allocate_kept(layout);
        // SAFETY: given by `allocate` for `layout`, and not used.
        unsafe { free_kept(first, layout) };
        assert_eq!(kept_here(layout), 1);
        let second = allocate_kept(layout);
        assert_eq!(first, second, "the kept block is given again");
        assert_eq!(kept_here(layout), 0);
        // SAFETY: as above.
        unsafe { free_kept(second, layout) };
        give_back();
        assert_eq!(kept_here(layout), 0);
    }

    #[test]
    fn at_most_kept_blocks_of_a_size_and_the_rest_go_back() {
        tested();
        give_back();
        let layout = chain_sized();
        let blocks: Vec<_> = (0..KEPT + 5).map(|_| allocate_kept(layout)).collect();
        for &block in &blocks {
            // SAFETY: each given by `allocate` for `layout`, freed once.
            unsafe { free_kept(block, layout) };
        }
        assert_eq!(kept_here(layout), KEPT);
        // Blocks of other sizes have lists of their own.
        assert_eq!(kept_here(Layout::from_size_align(120, 8).unwrap()), 0);
        give_back();
        assert_eq!(kept_here(layout), 0);
    }

    /// A block aligned to other than 8, larger than [`LARGEST`], or whose size is no multiple of
    /// 8 goes back to the global allocator; the smallest and the largest kept are kept.
    #[test]
    fn a_block_of_no_lists_layout_is_never_kept() {
        tested();
        give_back();
        for layout in [
            Layout::from_size_align(64, 16).unwrap(),
            Layout::from_size_align(LARGEST + 8, 8).unwrap(),
            Layout::from_size_align(16, 4).unwrap(),
            // No type's layout (its size is no multiple of its alignment): no list's.
            Layout::from_size_align(12, 8).unwrap(),
        ] {
            let block = allocate_kept(layout);
            // SAFETY: given by `allocate` for `layout`, and not used.
            unsafe { free_kept(block, layout) };
            assert_eq!(list_of(layout), None);
            assert_eq!(kept_here(layout), 0);
        }
        let largest = Layout::from_size_align(LARGEST, 8).unwrap();
        let smallest = Layout::from_size_align(8, 8).unwrap();
        assert_eq!(list_of(largest), Some(LISTS - 1));
        assert_eq!(list_of(smallest), Some(0));
        for layout in [largest, smallest] {
            let block = allocate_kept(layout);
            // SAFETY: as above.
            unsafe { free_kept(block, layout) };
            assert_eq!(kept_here(layout), 1);
        }
        give_back();
    }

    /// A block freed on another thread is kept there, and given back when that thread ends:
    /// under memcheck, nothing is lost.
    #[test]
    fn a_thread_keeps_what_it_frees_and_gives_it_back_when_it_ends() {
        tested();
        /// The blocks, moved to the other thread with their provenance (not as integers).
        struct Blocks(Vec<NonNull<u8>>);
        // SAFETY: a block is memory no value lives in yet; the test's thread gives these away
        // and no longer uses them.
        unsafe impl Send for Blocks {}
        let layout = chain_sized();
        let blocks = Blocks((0..4).map(|_| allocate_kept(layout)).collect());
        std::thread::spawn(move || {
            tested();
            let blocks = blocks;
            for &block in &blocks.0 {
                // SAFETY: given by `allocate` for `layout` on the test's thread, which no longer
                // uses it.
                unsafe { free_kept(block, layout) };
            }
            assert_eq!(kept_here(layout), 4);
        })
        .join()
        .unwrap();
    }

    /// Once a thread's lists are given back for its end (what [`GiveBack`]'s destructor does), a
    /// block freed later on it (by another thread-local's destructor) goes back at once.
    #[test]
    fn once_the_threads_end_gave_its_blocks_back_nothing_more_is_kept() {
        tested();
        std::thread::spawn(|| {
            tested();
            let layout = chain_sized();
            let list = list_of(layout).unwrap();
            let block = allocate_kept(layout);
            // SAFETY: given by `allocate` for `layout`, and not used.
            unsafe { free_kept(block, layout) };
            assert_eq!(kept_here(layout), 1);
            HERE.with(|lists| lists.give_back(CLOSED));
            let block = allocate_kept(layout);
            // SAFETY: as above.
            unsafe { free_kept(block, layout) };
            HERE.with(|lists| {
                assert!(lists.heads[list].get().is_none(), "nothing kept");
                assert_eq!(lists.lengths[list].get(), CLOSED);
            });
            // `give_back` leaves a closed thread closed.
            give_back();
            assert_eq!(kept_here(layout), CLOSED);
        })
        .join()
        .unwrap();
    }

    /// A `Vec` made by `vec_of_options` is a `Vec` like any other: it grows through the global
    /// allocator, and its values are dropped once, as they are taken out; `free_vec_of_nones`
    /// makes its buffer (grown or not) this thread's next of its size.
    #[test]
    fn a_vecs_buffer_is_kept_and_its_values_dropped_once() {
        tested();
        use std::rc::Rc;
        give_back();
        let counted = Rc::new(());
        let mut vec = vec_of_options::<Rc<()>>(8);
        assert_eq!((vec.len(), vec.capacity()), (0, 8));
        let buffer = vec.as_ptr() as usize;
        vec.push(Some(counted.clone()));
        vec[0] = None;
        free_vec_of_nones(vec);
        assert_eq!(Rc::strong_count(&counted), 1, "dropped once");
        let layout = Layout::array::<Option<Rc<()>>>(8).unwrap();
        if KEEPS {
            assert_eq!(kept_here(layout), 1);
            let again = vec_of_options::<Rc<()>>(8);
            assert_eq!(again.as_ptr() as usize, buffer, "the kept buffer");
            free_vec_of_nones(again);
        }
        // Grown past its first buffer, by the global allocator.
        let mut grown = vec_of_options::<Rc<()>>(8);
        grown.extend((0..20).map(|_| Some(counted.clone())));
        let grown_layout = Layout::array::<Option<Rc<()>>>(grown.capacity()).unwrap();
        grown.iter_mut().for_each(|place| *place = None);
        free_vec_of_nones(grown);
        assert_eq!(Rc::strong_count(&counted), 1, "each dropped once");
        if KEEPS && list_of(grown_layout).is_some() {
            assert_eq!(kept_here(grown_layout), 1);
        }
        // The buffer's layout is its elements', `Option<T>`'s, even where that is larger than
        // `T`'s (no niche): 8 `Option<u64>`s are 128 bytes, not 64.
        free_vec_of_nones(vec_of_options::<u64>(8));
        if KEEPS {
            assert_eq!(kept_here(Layout::array::<Option<u64>>(8).unwrap()), 1);
            assert_eq!(kept_here(Layout::array::<u64>(8).unwrap()), 0);
        }
        // A buffer of one-byte places (`Option<()>`), which no list keeps, goes back to the
        // global allocator (memcheck: nothing lost); no buffer, nothing to keep.
        free_vec_of_nones(vec_of_options::<()>(8));
        free_vec_of_nones(vec_of_options::<Rc<()>>(0));
        give_back();
    }

    /// A `KeptBox` holds its value as a `Box` does, drops it once, and its block is this
    /// thread's next of its size.
    #[test]
    fn a_kept_box_drops_its_value_once_and_its_block_is_kept() {
        tested();
        use std::rc::Rc;
        give_back();
        let counted = Rc::new(());
        let mut boxed = KeptBox::new((counted.clone(), [7_u64; 9]));
        boxed.1[0] += 1;
        assert_eq!(boxed.1[0], 8);
        assert_eq!(Rc::strong_count(&counted), 2);
        let block = &*boxed as *const _ as usize;
        let layout = Layout::for_value(&*boxed);
        drop(boxed);
        assert_eq!(Rc::strong_count(&counted), 1, "dropped once");
        if KEEPS {
            assert_eq!(kept_here(layout), 1);
            let again = KeptBox::new((counted.clone(), [0_u64; 9]));
            assert_eq!(&*again as *const _ as usize, block, "the kept block");
        }
    }
}
