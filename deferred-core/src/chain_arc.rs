//! [`ChainArc`]: how a chain is shared. An `Arc` with a strong count only, and for the local
//! kind [`ChainRc`], the same with a plain count (an `Rc` with a strong count only), in a block
//! its thread may have kept from a chain freed before ([`cells`]); the one module of this crate
//! with `unsafe` code (with its submodule `cells`).
//!
//! # Why
//!
//! A pending chain is shared by its `Resolver` and the `Deferred` at its end. On Zen 5 a chain
//! of `chain!` is paced by its atomic operations (about 4.5 ns each; BENCHMARKS.md, "Pending
//! chains on Zen 5"). `std::sync::Arc` keeps a weak count beside the strong one, and that costs
//! three of a chain's eleven:
//! - `Arc::get_mut`, with which the end takes the result without the lock once the `Resolver` is
//!   gone, locks the weak count (a compare-and-swap);
//! - the last drop decrements the strong count;
//! - then it decrements the weak count, which it holds for the strong ones.
//!
//! No chain is ever referenced weakly. The exception is the `registry` feature, whose registry
//! lists chains by `Weak`; with it, the `Send` kind keeps `std::sync::Arc` and the local kind
//! `std::rc::Rc` (see `shared.rs` and `local.rs`), and this module is not compiled.
//! So `ChainArc` keeps the strong count alone. An owner that finds the count at 1 is the only
//! one: it reaches the chain mutably and frees it with a plain load, with no read-modify-write.
//! That leaves 8 atomic operations in a pending `chain!`, not 11, and the count takes 8 bytes of
//! each chain's allocation, not 16. A chain is made with both its pointers at once
//! ([`ChainArc::new_pair`]), so its count is not incremented for the second: one fewer.
//! (With the spin lock of `crate::sync`, a pending `chain!` does 4.)
//!
//! The local kind's chains are shared the same way, with the count a plain `Cell<usize>`
//! ([`ChainRc`]): `std::rc::Rc`'s weak count is 8 bytes of every local chain that nothing
//! reads, and its drop and `get_mut` check it. The count is the pointer's second type
//! parameter ([`Count`]); the code below is written once for both. Only the atomic count makes
//! a pointer `Send` and `Sync`, so a `ChainRc` never leaves its thread.
//!
//! A chain's pointer cannot be a method's receiver (`self: &ChainArc<Self>`): receiver types of
//! one's own are unstable in Rust. So the chain's functions that need the pointer (to clone it,
//! to compare it) take it as an argument (`me`, `this`).
//!
//! # Invariants
//!
//! 1. `inner` points to an `Inner<T, C>` written in a block that `cells::allocate` gave for the
//!    layout of `Inner<T, C>` ([`ChainArc::new_pair`], or in tests `ChainArc::new`), and that
//!    the last drop frees with `cells::free` for the same layout. Its `count` is the number of
//!    `ChainArc`s that point to it, and the block lives as long as any does.
//!    Every conversion below keeps the allocation and moves the pointer's one count. The
//!    conversions are unsizing coercions of the pointer, or a cast to the type that `Any`
//!    checked.
//! 2. The value is reached through `&` ([`Deref`]), except in [`ChainArc::get_mut`]. That gives
//!    `&mut` only when the count is 1: the caller's pointer is then the only one, and the
//!    `&mut self` of that pointer keeps it from being cloned while the `&mut` lives.
//! 3. Orderings, as `std::sync::Arc`'s (the atomic count; a plain count is only ever used on
//!    one thread, invariant 5):
//!    - a clone increments with `Relaxed`: it is made from a live pointer, so the allocation
//!      cannot go meanwhile;
//!    - a drop decrements with `Release`, and the last one fences with `Acquire` before it frees;
//!    - a check that the count is 1 (`get_mut`, and `Drop`'s path that frees with no decrement)
//!      loads it with `Acquire`, so every other owner's use of the value happened before.
//! 4. A pointer is made only by `ChainArc::new` (in tests), by [`ChainArc::new_pair`] (two at
//!    once, with a count of 2) or by cloning a live one: the module has no `Weak`, gives out no
//!    raw pointer to own, and never adds to the count by hand. So a count of 1 read through a
//!    pointer stays 1 while that pointer is borrowed: nobody else can make another.
//! 5. A pointer is `Send` and `Sync` exactly when the pointer of `std` its count names
//!    ([`Count::Like`]) would be, which the compiler derives from its `like` field: with the
//!    atomic count, as `std::sync::Arc<T>` (when `T: Send + Sync`: every thread that holds one
//!    gets `&T`, and the last drops the value on its thread); with a plain count ([`ChainRc`]),
//!    as `std::rc::Rc<T>`, never. So all of a `ChainRc`'s owners are on the thread that made
//!    it, and its count needs no ordering.
//!
//! Checked by loom: the models at the bottom of this file run its orderings on loom's atomics
//! and cells (`--cfg loom --cfg loom_chain_arc`: see `crate::sync`). The models of the state
//! machine (`tests/loom.rs`) run every chain through this module too, on std's atomics, which
//! loom does not see: they check the state machine, not these orderings. `.ci/memcheck` runs
//! the core's tests under valgrind with no `registry`, so through this module; `.ci/run` runs
//! them natively without it as well.
//!
//! # The blocks: kept by each thread for its next chains
//!
//! A chain's block is freed to its thread's lists ([`cells`]), which give it to the next chain
//! of its size made on that thread, up to 16 blocks of a size; the global allocator has the
//! rest. That module states its own invariants; this one relies on `cells::allocate` giving a
//! block for the layout asked, and on `cells::free` taking one back with that layout.

use std::alloc::Layout;
use std::cell::Cell;
use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::NonNull;

use crate::sync::atomic::{AtomicUsize, Ordering, fence};

mod cells;
pub(crate) use cells::{KeptBox, free_vec_of_nones, give_back, vec_of_options};

/// A shared pointer with a strong count only (see the module's docs). `C` is its count: an
/// atomic one for the `Send` kind's chains, a plain one for the local kind's ([`ChainRc`]).
pub(crate) struct ChainArc<T: ?Sized, C: Count = AtomicUsize> {
    inner: Address<Inner<T, C>>,
    /// What the pointer is like: `std::sync::Arc<T>` with the atomic count, `std::rc::Rc<T>`
    /// with the plain one. `Address` is `Send` and `Sync`, so the compiler derives both traits
    /// of a `ChainArc` from this field alone: it is `Send` and `Sync` exactly when that pointer
    /// would be (invariant 5). A local chain sent to another thread is then reported as the
    /// `Rc` it is like, with no impl of this crate's to point at. (Through the projection,
    /// `ChainArc` is invariant in `T`, where `Arc` is covariant: every value behind one is a
    /// chain, or a `dyn` of one, with no lifetime to shorten.)
    like: PhantomData<C::Like<T>>,
}

/// The allocation's address. `Send` and `Sync` whatever it points to: it is only ever the
/// field of a `ChainArc`, whose `like` decides both traits.
struct Address<X: ?Sized>(NonNull<X>);

impl<X: ?Sized> Clone for Address<X> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<X: ?Sized> Copy for Address<X> {}

// SAFETY: an address moves no value; the `ChainArc` that holds it is `Send` only when its
// `like` field is, which each `Count` names rightly (invariant 5, the trait's safety
// section).
unsafe impl<X: ?Sized> Send for Address<X> {}
// SAFETY: as for `Send`.
unsafe impl<X: ?Sized> Sync for Address<X> {}

/// A local chain's pointer: a `ChainArc` whose count is a plain `Cell`, which makes it neither
/// `Send` nor `Sync` (`ChainArc` is `Send` and `Sync` only with the atomic count). An `Rc` with
/// no weak count, as `ChainArc` is an `Arc` with none: 8 bytes less in every local chain.
pub(crate) type ChainRc<T> = ChainArc<T, Cell<usize>>;

/// The allocation: the count, then the value.
struct Inner<T: ?Sized, C> {
    count: C,
    value: T,
}

/// A pointer's count: the operations invariant 3 names, with their orderings where the count
/// is atomic. A plain count (`Cell<usize>`) belongs to a pointer that never leaves its thread,
/// where no ordering is needed.
///
/// # Safety
///
/// `Like<T>` decides whether a `ChainArc` with this count is `Send` and `Sync` (invariant 5):
/// it must be neither unless the count's operations are atomic with the orderings of
/// invariant 3, and then neither unless `T` is both (as `std::sync::Arc<T>`).
pub(crate) unsafe trait Count {
    /// The pointer of `std` a `ChainArc` with this count is like, for `Send` and `Sync`.
    type Like<T: ?Sized>;
    /// A count of `n`, for a new allocation.
    fn new(n: usize) -> Self;
    /// The count, loaded with `Acquire`: every other owner's use happened before.
    fn load_acquire(&self) -> usize;
    /// The count, as a snapshot.
    fn load_relaxed(&self) -> usize;
    /// Adds one (`Relaxed`); gives the count before.
    fn increment(&self) -> usize;
    /// Takes one away (`Release`); gives the count before.
    fn decrement(&self) -> usize;
    /// An `Acquire` fence, after the decrement that took the count to 0.
    fn acquire_fence();
}

// SAFETY: atomic, with invariant 3's orderings (below); `Arc<T>` is `Send` and `Sync` only when
// `T` is both.
unsafe impl Count for AtomicUsize {
    type Like<T: ?Sized> = std::sync::Arc<T>;
    #[inline]
    fn new(n: usize) -> Self {
        AtomicUsize::new(n)
    }
    #[inline]
    fn load_acquire(&self) -> usize {
        self.load(Ordering::Acquire)
    }
    #[inline]
    fn load_relaxed(&self) -> usize {
        self.load(Ordering::Relaxed)
    }
    #[inline]
    fn increment(&self) -> usize {
        self.fetch_add(1, Ordering::Relaxed)
    }
    #[inline]
    fn decrement(&self) -> usize {
        self.fetch_sub(1, Ordering::Release)
    }
    #[inline]
    fn acquire_fence() {
        fence(Ordering::Acquire);
    }
}

// SAFETY: `Rc<T>` is never `Send` nor `Sync`, so a pointer with this plain count stays on its
// thread.
unsafe impl Count for Cell<usize> {
    type Like<T: ?Sized> = std::rc::Rc<T>;
    #[inline]
    fn new(n: usize) -> Self {
        Cell::new(n)
    }
    #[inline]
    fn load_acquire(&self) -> usize {
        self.get()
    }
    #[inline]
    fn load_relaxed(&self) -> usize {
        self.get()
    }
    #[inline]
    fn increment(&self) -> usize {
        let before = self.get();
        self.set(before + 1);
        before
    }
    #[inline]
    fn decrement(&self) -> usize {
        let before = self.get();
        self.set(before - 1);
        before
    }
    #[inline]
    fn acquire_fence() {}
}

/// The most owners a chain may have, as `std::sync::Arc`'s: a count past it aborts, before it
/// could wrap (which would free a value still in use).
const MAX_COUNT: usize = isize::MAX as usize;

impl<T, C: Count> ChainArc<T, C> {
    /// Moves `value` to the heap, with a count of 1. A chain is always made with its second
    /// pointer ([`new_pair`](ChainArc::new_pair)); the tests make one alone.
    #[cfg(test)]
    pub(crate) fn new(value: T) -> ChainArc<T, C> {
        ChainArc {
            inner: Address(Self::allocate(1, value)),
            like: PhantomData,
        }
    }

    /// Moves `value` to the heap with two pointers to it, made with a count of 2: a pointer
    /// and its clone, without the clone's atomic increment (nobody else can see the count
    /// yet). A pending chain is made so, for its `Deferred` and its `Resolver`: one atomic
    /// operation fewer a chain.
    #[inline]
    pub(crate) fn new_pair(value: T) -> (ChainArc<T, C>, ChainArc<T, C>) {
        let inner = Address(Self::allocate(2, value));
        let pointer = || ChainArc {
            inner,
            like: PhantomData,
        };
        (pointer(), pointer())
    }

    /// Moves `value` to a block of its own with a count of `count` ([`cells::allocate`]: one
    /// this thread kept, or a new one).
    #[inline(always)]
    fn allocate(count: usize, value: T) -> NonNull<Inner<T, C>> {
        let inner = cells::allocate(Layout::new::<Inner<T, C>>()).cast::<Inner<T, C>>();
        // SAFETY: a block for the layout of `Inner<T, C>`, which nothing else uses yet.
        unsafe {
            inner.as_ptr().write(Inner {
                count: C::new(count),
                value,
            });
        }
        inner
    }
}

impl<T: ?Sized, C: Count> ChainArc<T, C> {
    #[inline]
    fn inner(&self) -> &Inner<T, C> {
        // SAFETY: invariant 1: the allocation lives while this pointer does.
        unsafe { self.inner.0.as_ref() }
    }

    /// How many pointers share the value (a snapshot: others may come and go meanwhile).
    #[inline]
    pub(crate) fn strong_count(this: &ChainArc<T, C>) -> usize {
        this.inner().count.load_relaxed()
    }

    /// The value, mutably, if this is its only pointer.
    #[inline]
    pub(crate) fn get_mut(this: &mut ChainArc<T, C>) -> Option<&mut T> {
        if this.inner().count.load_acquire() != 1 {
            return None;
        }
        // SAFETY: invariant 2: the count is 1, so `this` is the only pointer. `&mut this` keeps
        // it from being cloned while the `&mut` lives; the `Acquire` load saw every other
        // owner's drop (invariant 3; with a plain count, every owner is on this thread:
        // invariant 5), so their uses of the value happened before.
        Some(unsafe { &mut (*this.inner.0.as_ptr()).value })
    }

    /// The value's address.
    #[inline]
    pub(crate) fn as_ptr(this: &ChainArc<T, C>) -> *const T {
        &this.inner().value
    }

    /// The same allocation, as another type of pointer.
    ///
    /// # Safety
    ///
    /// `to` must give a pointer to the same value: an unsizing coercion of the pointer, or a
    /// cast to the value's own type (invariant 1).
    #[inline]
    unsafe fn convert<U: ?Sized>(
        self,
        to: impl FnOnce(NonNull<Inner<T, C>>) -> NonNull<Inner<U, C>>,
    ) -> ChainArc<U, C> {
        let inner = self.inner.0;
        // The count moves to the new pointer.
        std::mem::forget(self);
        ChainArc {
            inner: Address(to(inner)),
            like: PhantomData,
        }
    }
}

// A pointer, whatever it points to: moving it moves no value (as `std::sync::Arc`).
impl<T: ?Sized, C: Count> Unpin for ChainArc<T, C> {}

impl<T: ?Sized, C: Count> Clone for ChainArc<T, C> {
    #[inline]
    fn clone(&self) -> ChainArc<T, C> {
        if self.inner().count.increment() > MAX_COUNT {
            std::process::abort();
        }
        ChainArc {
            inner: self.inner,
            like: PhantomData,
        }
    }
}

impl<T: ?Sized, C: Count> Drop for ChainArc<T, C> {
    #[inline]
    fn drop(&mut self) {
        let count = &self.inner().count;
        // The only pointer frees the value with no decrement; any other decrements, and the
        // one that takes the count to 0 frees it.
        if count.load_acquire() != 1 {
            if count.decrement() != 1 {
                return;
            }
            C::acquire_fence();
        }
        // SAFETY: invariant 1: the count was 1 and this is that pointer, so nothing else can
        // reach the allocation (a pointer is made only with the allocation or by cloning a live
        // one, and this module has no `Weak`, no count added by hand, and no raw pointer out
        // but addresses, `as_ptr`'s, which no other module can dereference: they forbid
        // `unsafe`; invariant 4); invariant 3 (or 5, a plain count's one thread): every other
        // owner's use happened before. The block came from `cells::allocate` for the layout of
        // the type it was made as (invariant 1); the value is dropped once, here, and its block
        // freed after it.
        unsafe { cells::drop_and_free(self.inner.0) };
    }
}

impl<T: ?Sized, C: Count> Deref for ChainArc<T, C> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        &self.inner().value
    }
}

/// `pointer`, a `ChainArc`, as a `ChainArc<$to, $count>`: an unsizing coercion of its pointer.
macro_rules! coerce {
    ($pointer:expr => $to:ty, $count:ty) => {
        // SAFETY: an unsizing coercion: the same value, seen as `$to` (invariant 1).
        unsafe { $pointer.convert(|inner| -> NonNull<Inner<$to, $count>> { inner }) }
    };
}

/// The conversions of a kind's chain pointer (`ChainArc<_, $count>`), with the kind's traits
/// (`$kind`: `shared` or `local`, whose `chain` module defines `AnyChain` and `Cancel`), its
/// delivery trait and its `dyn Any`. `std_chain_pointer!` (lib.rs) has the same for `Rc` and
/// `Arc`, with the `registry` feature.
macro_rules! chain_pointer {
    ($count:ty, $kind:ident, $delivery:path, $any:ty) => {
        use super::{ChainArc, Inner};
        use crate::$kind::chain::pending::AnyChain;
        use crate::$kind::chain::pending::cancel::Cancel;
        use std::any::Any;
        use std::ptr::NonNull;
        use $delivery as Delivery;

        /// A new chain, and a second pointer to it ([`ChainArc::new_pair`]).
        #[inline]
        pub(crate) fn chain_pair<X>(chain: X) -> (ChainArc<X, $count>, ChainArc<X, $count>) {
            ChainArc::new_pair(chain)
        }

        /// A chain, as the link a `Deferred` points to.
        #[inline]
        pub(crate) fn erase_chain<E: 'static, C: AnyChain<E> + 'static>(
            chain: ChainArc<C, $count>,
        ) -> ChainArc<dyn AnyChain<E>, $count> {
            coerce!(chain => dyn AnyChain<E>, $count)
        }

        /// A chain, as what a cancel walks through.
        #[inline]
        pub(crate) fn erase_cancel<C: Cancel + 'static>(
            chain: ChainArc<C, $count>,
        ) -> ChainArc<dyn Cancel, $count> {
            coerce!(chain => dyn Cancel, $count)
        }

        /// A chain, as a delivery on the run loop's queue.
        #[inline]
        pub(crate) fn erase_delivery<D: Delivery + 'static>(
            chain: ChainArc<D, $count>,
        ) -> ChainArc<dyn Delivery, $count> {
            coerce!(chain => dyn Delivery, $count)
        }

        /// A link, as what a cancel walks through.
        #[inline]
        pub(crate) fn link_to_cancel<E: 'static>(
            link: ChainArc<dyn AnyChain<E>, $count>,
        ) -> ChainArc<dyn Cancel, $count> {
            coerce!(link => dyn Cancel, $count)
        }

        /// A value of type `X`, checked by `Any`, typed again.
        #[inline]
        fn downcast<X: Any>(any: ChainArc<$any, $count>) -> ChainArc<X, $count> {
            if !(*any).is::<X>() {
                unreachable!("a chain's pointer is typed back to the chain's own type");
            }
            // SAFETY: `Any` checked the value's type: the cast is to that type (invariant 1).
            unsafe { any.convert(NonNull::cast) }
        }

        /// The chain a link points to, typed: for the chain's own code called through the link.
        #[inline]
        pub(crate) fn link_to_chain<E: 'static, X: Any>(
            link: ChainArc<dyn AnyChain<E>, $count>,
        ) -> ChainArc<X, $count> {
            downcast(coerce!(link => $any, $count))
        }

        /// The chain a link points to, typed, if it is an `X`; else the link, as it was.
        #[inline]
        pub(crate) fn link_to_chain_if<E: 'static, X: Any>(
            link: ChainArc<dyn AnyChain<E>, $count>,
        ) -> Result<ChainArc<X, $count>, ChainArc<dyn AnyChain<E>, $count>> {
            // The allocation's value, typed as `dyn Any` by upcasting `dyn AnyChain<E>` (the
            // annotation keeps `Any` from seeing the pointer itself).
            let any: &$any = &*link;
            if !any.is::<X>() {
                return Err(link);
            }
            // SAFETY: `&*link` is the allocation's value, and `Any` checked that its concrete
            // type is `X`: the cast is to the type the pointer was unsized from (invariant 1).
            Ok(unsafe { link.convert(NonNull::cast) })
        }

        /// The chain a cancel walks through, typed.
        #[inline]
        pub(crate) fn cancel_to_chain<X: Any>(
            cancel: ChainArc<dyn Cancel, $count>,
        ) -> ChainArc<X, $count> {
            downcast(coerce!(cancel => $any, $count))
        }

        /// The chain a delivery runs, typed.
        #[inline]
        pub(crate) fn delivery_to_chain<X: Any>(
            delivery: ChainArc<dyn Delivery, $count>,
        ) -> ChainArc<X, $count> {
            downcast(coerce!(delivery => $any, $count))
        }
    };
}

/// The `Send` kind's conversions: `ChainArc` with an atomic count.
pub(crate) mod shared_kind {
    chain_pointer!(
        crate::sync::atomic::AtomicUsize,
        shared,
        crate::run_loop::Delivery,
        dyn Any + Send + Sync
    );
}

/// The local kind's conversions: [`ChainRc`], `ChainArc` with a plain count.
pub(crate) mod local_kind {
    pub(crate) use super::ChainRc;
    chain_pointer!(
        std::cell::Cell<usize>,
        local,
        crate::run_loop::LocalDelivery,
        dyn Any
    );
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Counts its drops.
    struct Counted(Arc<AtomicUsize>);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn the_value_is_dropped_once_by_the_last_owner_whichever_it_is() {
        for unique_last in [true, false] {
            let drops = Arc::new(AtomicUsize::new(0));
            let a = <ChainArc<_>>::new(Counted(drops.clone()));
            let b = a.clone();
            assert_eq!(ChainArc::strong_count(&a), 2);
            if unique_last {
                drop(b);
                assert_eq!(drops.load(Ordering::SeqCst), 0);
                drop(a);
            } else {
                drop(a);
                assert_eq!(drops.load(Ordering::SeqCst), 0);
                drop(b);
            }
            assert_eq!(drops.load(Ordering::SeqCst), 1);
        }
    }

    /// A pair is two owners: either may go first, and the other then is the only one. With
    /// either count: the `Send` kind's atomic one, or the local kind's plain one (`ChainRc`).
    #[test]
    fn a_pair_is_two_owners() {
        two_owners::<AtomicUsize>();
        two_owners::<std::cell::Cell<usize>>();
    }

    fn two_owners<C: Count>() {
        for first_goes_first in [true, false] {
            let drops = Arc::new(AtomicUsize::new(0));
            let (first, second) = <ChainArc<_, C>>::new_pair(Counted(drops.clone()));
            assert_eq!(ChainArc::strong_count(&first), 2);
            assert!(std::ptr::eq(
                ChainArc::as_ptr(&first),
                ChainArc::as_ptr(&second)
            ));
            drop(first.clone());
            let mut left = if first_goes_first {
                drop(first);
                second
            } else {
                drop(second);
                first
            };
            assert_eq!(drops.load(Ordering::SeqCst), 0);
            assert!(ChainArc::get_mut(&mut left).is_some(), "the only owner");
            drop(left);
            assert_eq!(drops.load(Ordering::SeqCst), 1);
        }
    }

    /// A value whose drop panics still has its block freed: kept by the thread for the next
    /// chain of its size (or, under memcheck's build, given back: nothing is lost either way).
    #[test]
    fn a_value_whose_drop_panics_still_frees_its_block() {
        struct PanicsOnDrop([u64; 11]);
        impl Drop for PanicsOnDrop {
            fn drop(&mut self) {
                panic!("the drop of a value of {} words panicked", self.0.len());
            }
        }
        give_back();
        let pointer = <ChainArc<_>>::new(PanicsOnDrop([0; 11]));
        let block = ChainArc::as_ptr(&pointer) as usize;
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(pointer)));
        assert!(panicked.is_err());
        // The block is this thread's next one of its size.
        let next = <ChainArc<_>>::new([0_u64; 11]);
        if cells::keeps() {
            assert_eq!(ChainArc::as_ptr(&next) as usize, block);
        }
    }

    /// As `std::sync::Arc`: `CancelHandle` and `Resolver` hold one, and are `Unpin`.
    #[test]
    fn a_pointer_is_unpin_whatever_it_points_to() {
        fn unpin<X: Unpin>() {}
        unpin::<ChainArc<std::marker::PhantomPinned>>();
        unpin::<crate::CancelHandle>();
        unpin::<crate::Resolver<std::marker::PhantomPinned>>();
    }

    #[test]
    fn get_mut_only_for_the_only_owner() {
        let mut a = <ChainArc<_>>::new(5_u32);
        let b = a.clone();
        assert!(ChainArc::get_mut(&mut a).is_none());
        drop(b);
        *ChainArc::get_mut(&mut a).expect("the only owner") += 1;
        assert_eq!(*a, 6);
    }

    /// A local chain's pointer holds values that are not `Send` (the local kind's steps hold
    /// `Rc`s), and its count is 8 bytes, not `Rc`'s 16.
    #[test]
    fn a_local_pointer_holds_what_is_not_send_with_one_count() {
        use std::rc::Rc;
        let mut shared = <ChainRc<_>>::new(Rc::new(5_u32));
        let other = shared.clone();
        assert!(ChainRc::get_mut(&mut shared).is_none());
        drop(other);
        assert_eq!(**ChainRc::get_mut(&mut shared).expect("alone"), 5);
        // 8 bytes of count, not `Rc`'s 16: a chain's allocation is 8 bytes smaller.
        assert_eq!(
            std::mem::size_of::<Inner<u64, std::cell::Cell<usize>>>() + 8,
            std::mem::size_of::<Inner<(u64, usize), std::cell::Cell<usize>>>()
        );
    }

    /// The plain count is never shared between threads: a `ChainRc` is neither `Send` nor
    /// `Sync`, whatever it points to. With the atomic count, a pointer is both exactly when an
    /// `Arc` of the same value would be (invariant 5).
    #[test]
    fn a_pointer_is_send_and_sync_as_the_std_pointer_it_is_like() {
        use std::cell::Cell;
        use std::sync::MutexGuard;
        trait Neither {
            const SEND: bool = false;
            const SYNC: bool = false;
        }
        impl<X: ?Sized> Neither for X {}
        struct Send_<X: ?Sized>(std::marker::PhantomData<X>);
        #[allow(dead_code)]
        impl<X: ?Sized + Send> Send_<X> {
            const SEND: bool = true;
        }
        struct Sync_<X: ?Sized>(std::marker::PhantomData<X>);
        #[allow(dead_code)]
        impl<X: ?Sized + Sync> Sync_<X> {
            const SYNC: bool = true;
        }
        macro_rules! is {
            ($pointer:ty, send: $send:expr, sync: $sync:expr) => {
                const { assert!(<Send_<$pointer>>::SEND == $send) };
                const { assert!(<Sync_<$pointer>>::SYNC == $sync) };
            };
        }
        is!(ChainRc<u32>, send: false, sync: false);
        is!(ChainRc<dyn std::any::Any + Send + Sync>, send: false, sync: false);
        is!(ChainArc<u32>, send: true, sync: true);
        is!(ChainArc<dyn std::any::Any + Send + Sync>, send: true, sync: true);
        // A value that is `Send` but not `Sync`, or `Sync` but not `Send`: neither, as `Arc`.
        is!(ChainArc<Cell<u32>>, send: false, sync: false);
        is!(ChainArc<MutexGuard<'static, u32>>, send: false, sync: false);
    }

    #[test]
    fn owners_on_many_threads_drop_the_value_once() {
        let drops = Arc::new(AtomicUsize::new(0));
        for _ in 0..200 {
            let a = <ChainArc<_>>::new(Counted(drops.clone()));
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    let mine = a.clone();
                    std::thread::spawn(move || drop(mine))
                })
                .collect();
            drop(a);
            for thread in threads {
                thread.join().expect("no panic");
            }
        }
        assert_eq!(drops.load(Ordering::SeqCst), 200);
    }
}

/// The orderings of invariant 3, checked by loom on its own atomics and cells: an owner on
/// another thread writes the value, then drops its pointer; the last owner, on either thread,
/// reads what was written (in the value's `Drop`), and so does an owner that `get_mut` finds
/// alone. With `Relaxed` in place of the `Acquire` load of `get_mut` or of `Drop`, or without
/// `Drop`'s fence, loom reports the read as racing with the write.
/// `RUSTFLAGS="--cfg loom --cfg loom_chain_arc" cargo test -p deferred-core --lib --release
/// chain_arc` (see `crate::sync` for the second cfg).
#[cfg(all(test, loom, loom_chain_arc))]
mod loom_models {
    use super::*;
    use loom::cell::UnsafeCell;

    /// A value one owner writes and the last one reads when it drops it.
    struct Written(UnsafeCell<u32>);

    impl Written {
        /// Writes, as an owner does under the chain's lock (the only writer in these models).
        fn write(&self) {
            // SAFETY: loom checks it: the one writer, before it drops its pointer.
            self.0.with_mut(|value| unsafe { *value = 1 });
        }

        fn read(&self) -> u32 {
            // SAFETY: loom checks it: after the writer dropped its pointer.
            self.0.with(|value| unsafe { *value })
        }
    }

    impl Drop for Written {
        fn drop(&mut self) {
            assert_eq!(
                self.read(),
                1,
                "the last owner sees the other owner's write"
            );
        }
    }

    #[test]
    fn the_last_owner_sees_what_another_wrote_whichever_thread_drops_last() {
        loom::model(|| {
            // Made as a chain is: two pointers at once.
            let (mine, theirs) = <ChainArc<_>>::new_pair(Written(UnsafeCell::new(0)));
            let thread = loom::thread::spawn(move || {
                theirs.write();
                drop(theirs);
            });
            // Lets the thread run first: loom's search does not schedule it before a load that
            // only its own load and decrement conflict with (measured: without this, the
            // thread never drops first).
            loom::thread::yield_now();
            // Freed here or on the thread, whichever drops last; here with no decrement when
            // the thread's pointer is gone already: both paths of `Drop`.
            drop(mine);
            thread.join().expect("no panic");
        });
    }

    #[test]
    fn get_mut_alone_sees_what_another_owner_wrote() {
        loom::model(|| {
            let mut mine = <ChainArc<_>>::new(Written(UnsafeCell::new(0)));
            let theirs = mine.clone();
            let thread = loom::thread::spawn(move || {
                theirs.write();
                drop(theirs);
            });
            // As above.
            loom::thread::yield_now();
            if let Some(alone) = ChainArc::get_mut(&mut mine) {
                assert_eq!(alone.read(), 1);
            }
            thread.join().expect("no panic");
        });
    }
}
