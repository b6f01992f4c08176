//! The floors of a cell without a lock: the least a pending chain can do when adding a stage is
//! one atomic operation, and firing one or two, for BENCHMARKS.md ("Misses", "The floors,
//! measured"), beside the floor of a lock (`super::pending::locked_cell`). A measuring stick,
//! not the library's: the library has no `unsafe` outside its one module, and this file is the
//! benchmarks' only lock-free code. Two cells: a Treiber stack (below), and a cell only the end's
//! handle adds to ([`one_adder`], with its local twin).
//!
//! The Treiber stack's head is its whole state:
//!
//! | head | the cell |
//! | --- | --- |
//! | null | pending, no stage added |
//! | [`FIRED`] | fired: `result` holds the value, and belongs to the end's handle |
//! | a node | pending, with that node (the newest stage) and the ones it links to (older) |
//!
//! - Adding a stage is one compare-and-swap of the head (a box per stage: the node).
//! - Firing takes every stage added so far with one swap, runs them oldest first, and goes on
//!   until a compare-and-swap from null to [`FIRED`] succeeds (it fails only if a stage was
//!   added meanwhile). Only the firing handle takes nodes off, and a push never reads the node
//!   its head points at (it only links to it), so no node is freed while another thread reads
//!   it; a push whose head went stale fails its compare-and-swap and tries again, and no freed
//!   node's address can be pushed back meanwhile: only the end's handle pushes (no ABA).
//! - A stage that panics leaks the nodes the run took off after it (they are in neither the
//!   stack nor the run): the benchmarks' steps do not panic.
//! - `result` is written by the firing thread before the head becomes [`FIRED`] (release), and
//!   read or written after that only by the end's handle, which saw [`FIRED`] (acquire): the
//!   one handle that adds stages and takes the result.
//!
//! What it leaves out, as the lock's floor does: a value type that changes, cancellation, the
//! run loop, the panic guard, a listener, a second stage run while the first waits.

use std::cell::UnsafeCell;
use std::hint::black_box;
use std::ptr;
use std::sync::Arc;
use std::sync::atomic::AtomicPtr;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};

use super::pending::FloorValue;
use super::{STEPS, inc};

/// A stage: boxed, free when it captures nothing (as the library's are).
pub type Stage = Box<dyn FnOnce(FloorValue) -> FloorValue + Send>;

struct Node {
    stage: Stage,
    /// The stage added before this one (null: none).
    next: *mut Node,
}

/// The head of a cell that has fired: an address no node has (1 is not aligned for a `Node`),
/// compared, never read.
const FIRED: *mut Node = ptr::without_provenance_mut::<Node>(1);

pub struct Cell {
    head: AtomicPtr<Node>,
    result: UnsafeCell<Option<FloorValue>>,
}

// SAFETY: the nodes behind `head` hold `Send` stages, and each is touched by one thread at a
// time: by the adder until its compare-and-swap publishes it (release), then by the firing
// thread after its swap takes it (acquire). `result` is handed over the same way (see the
// module's table).
unsafe impl Sync for Cell {}
// SAFETY: as above; the cell owns its nodes and its result, all `Send`.
unsafe impl Send for Cell {}

impl Drop for Cell {
    fn drop(&mut self) {
        let mut node = *self.head.get_mut();
        while !node.is_null() && node != FIRED {
            // SAFETY: `&mut self`: no other handle is left, so each node on the stack is
            // owned here, made by `Box::into_raw` in `add`.
            let owned = unsafe { Box::from_raw(node) };
            node = owned.next;
        }
    }
}

/// A cell with the ten steps added (one stage a step, or the ten in one), and its resolver's
/// handle (opaque to the optimizer, as a Resolver is).
pub fn built(per_step: bool) -> (Arc<Cell>, Arc<Cell>) {
    let cell = Arc::new(Cell {
        head: AtomicPtr::new(ptr::null_mut()),
        result: UnsafeCell::new(None),
    });
    let resolver = black_box(cell.clone());
    if per_step {
        for _ in 0..STEPS {
            add(&cell, Box::new(|value: FloorValue| value.map(inc)));
        }
    } else {
        add(
            &cell,
            Box::new(|value: FloorValue| {
                let steps = [inc; STEPS as usize];
                value.map(|a| steps.iter().fold(a, |a, step| step(a)))
            }),
        );
    }
    (cell, resolver)
}

/// Adds `stage` (the end's handle does, and only it); on a cell that has fired, runs it at once
/// on the result.
#[inline(always)]
fn add(cell: &Cell, stage: Stage) {
    let node = Box::into_raw(Box::new(Node {
        stage,
        next: ptr::null_mut(),
    }));
    let mut head = cell.head.load(Acquire);
    loop {
        if head == FIRED {
            // SAFETY: `node` came from `Box::into_raw` above and was never published.
            let node = unsafe { Box::from_raw(node) };
            // SAFETY: the head is `FIRED` (seen with acquire, after the firing thread's
            // release), so `result` belongs to the end's handle, which is this caller.
            let slot = unsafe { &mut *cell.result.get() };
            let value = slot.take().expect("a fired cell has its result");
            *slot = Some((node.stage)(value));
            return;
        }
        // SAFETY: `node` is not published yet: this thread alone owns it.
        unsafe { (*node).next = head };
        match cell
            .head
            .compare_exchange_weak(head, node, Release, Acquire)
        {
            Ok(_) => return,
            Err(now) => head = now,
        }
    }
}

/// Fires the cell with `x` (the resolver's handle does), then takes the result at the end.
pub fn fire_and_take((cell, resolver): (Arc<Cell>, Arc<Cell>), x: u64) -> u64 {
    fire(&resolver, Ok(x));
    drop(resolver);
    take(&cell)
}

#[inline(always)]
fn fire(cell: &Cell, mut value: FloorValue) {
    debug_assert!(cell.head.load(Relaxed) != FIRED, "a cell fires once");
    loop {
        if cell.head.load(Relaxed).is_null() {
            // SAFETY: the head is not `FIRED` (only this call makes it so), so nobody else
            // reads or writes `result` until the exchange below publishes it.
            unsafe { *cell.result.get() = Some(value) };
            match cell
                .head
                .compare_exchange(ptr::null_mut(), FIRED, Release, Relaxed)
            {
                Ok(_) => return,
                // A stage was added meanwhile: the value is still this thread's alone.
                // SAFETY: as above, the head is not `FIRED`.
                Err(_) => value = unsafe { (*cell.result.get()).take() }.expect("just put"),
            }
            continue;
        }
        // Every stage added so far, newest first: reversed to run them in order.
        let mut newest = cell.head.swap(ptr::null_mut(), AcqRel);
        let mut oldest = ptr::null_mut::<Node>();
        while !newest.is_null() {
            // SAFETY: the swap took these nodes off the stack (acquire, after each adder's
            // release): this thread alone owns them now.
            let next = unsafe { std::mem::replace(&mut (*newest).next, oldest) };
            oldest = newest;
            newest = next;
        }
        while !oldest.is_null() {
            // SAFETY: owned by this thread (above), made by `Box::into_raw` in `add`, and
            // freed once: the walk moves past it before the next.
            let node = unsafe { Box::from_raw(oldest) };
            oldest = node.next;
            value = (node.stage)(value);
        }
    }
}

#[inline(always)]
fn take(cell: &Cell) -> u64 {
    assert!(cell.head.load(Acquire) == FIRED, "the cell has fired");
    // SAFETY: the head is `FIRED`: `result` belongs to the end's handle, this caller.
    let value = unsafe { (*cell.result.get()).take() };
    value
        .expect("a fired cell has its result")
        .expect("no step fails")
}

/// The floor of a cell without a lock that uses what a pending chain guarantees: only one
/// handle adds stages (the end's: `add_*` takes the Deferred by value), and one thread at a time
/// runs them. So adding a stage writes it into the list with no lock and publishes it with one
/// atomic add to the cell's count; the run reads the count, runs what it finds, and marks the
/// cell fired with one compare-and-swap from the count it last read (which fails only if a
/// stage was added meanwhile). Every state is in one word:
///
/// | `state` | the cell |
/// | --- | --- |
/// | `n << 1` | pending or running, `n` stages added |
/// | `n << 1 \| 1` | fired: the `n` stages have run, and `result` belongs to the end's handle |
///
/// The list has room for one stage in the cell (as the lock's one-stage floor keeps its stage),
/// or sixteen in a box of its own, as the lock's floor makes its list with room for the ten
/// (one allocation): a list that grows would link a second buffer from the first, which the
/// run follows once the count says a stage is there.
///
/// `one_adder` is the `Send` kind (an `Arc`, an atomic count); `local_one_adder` the same cell
/// for one thread (an `Rc`, a plain count: no atomic operation at all, and no borrow flag).
macro_rules! one_adder_cells {
    ($kind:ident, $ptr:path, $count:ty, $($send:tt)*) => {
        pub mod $kind {
            use super::*;
            use std::mem::MaybeUninit;
            use $ptr as Ptr;

            pub type Stage = Box<dyn FnOnce(FloorValue) -> FloorValue $($send)*>;
            type Slot = UnsafeCell<MaybeUninit<Stage>>;

            /// Where the list's stages are.
            pub trait Room {
                fn made() -> Self;
                fn slots(&self) -> &[Slot];
                fn slots_mut(&mut self) -> &mut [Slot];
            }

            impl Room for [Slot; 1] {
                fn made() -> Self {
                    [UnsafeCell::new(MaybeUninit::uninit())]
                }
                fn slots(&self) -> &[Slot] {
                    self
                }
                fn slots_mut(&mut self) -> &mut [Slot] {
                    self
                }
            }

            impl Room for [Slot; 16] {
                fn made() -> Self {
                    [const { UnsafeCell::new(MaybeUninit::uninit()) }; 16]
                }
                fn slots(&self) -> &[Slot] {
                    self
                }
                fn slots_mut(&mut self) -> &mut [Slot] {
                    self
                }
            }

            impl Room for Box<[Slot; 16]> {
                fn made() -> Self {
                    Box::new([const { UnsafeCell::new(MaybeUninit::uninit()) }; 16])
                }
                fn slots(&self) -> &[Slot] {
                    &self[..]
                }
                fn slots_mut(&mut self) -> &mut [Slot] {
                    &mut self[..]
                }
            }

            /// One stage, in the cell.
            pub type One = [Slot; 1];
            /// Sixteen stages, in a box.
            pub type Sixteen = Box<[Slot; 16]>;
            /// Sixteen stages, in the cell.
            pub type SixteenInline = [Slot; 16];

            const FIRED: usize = 1;

            pub struct Cell<L: Room> {
                state: $count,
                /// Stage `i` is written by the adder before the count passes `i` (release),
                /// and read once by the run after it sees the count past `i` (acquire).
                list: L,
                /// How many stages have run: the run's, then (once fired) the end's handle's.
                ran: UnsafeCell<usize>,
                result: UnsafeCell<Option<FloorValue>>,
            }

            impl<L: Room> Drop for Cell<L> {
                fn drop(&mut self) {
                    let added = *self.state.get_mut() >> 1;
                    let ran = *self.ran.get_mut();
                    for slot in &mut self.list.slots_mut()[ran..added] {
                        // SAFETY: stages `ran..added` were written by `add` and never run.
                        unsafe { slot.get_mut().assume_init_drop() };
                    }
                }
            }

            /// As `super::built`, on this cell.
            pub fn built<L: Room>(per_step: bool) -> (Ptr<Cell<L>>, Ptr<Cell<L>>) {
                let cell = Ptr::new(Cell {
                    state: <$count>::new(0),
                    list: L::made(),
                    ran: UnsafeCell::new(0),
                    result: UnsafeCell::new(None),
                });
                let resolver = black_box(cell.clone());
                if per_step {
                    for _ in 0..STEPS {
                        add(&cell, Box::new(|value: FloorValue| value.map(inc)));
                    }
                } else {
                    add(
                        &cell,
                        Box::new(|value: FloorValue| {
                            let steps = [inc; STEPS as usize];
                            value.map(|a| steps.iter().fold(a, |a, step| step(a)))
                        }),
                    );
                }
                (cell, resolver)
            }

            /// Adds `stage` (the end's handle does, and only it); on a cell that has fired,
            /// runs it at once on the result.
            #[inline(always)]
            fn add<L: Room>(cell: &Cell<L>, stage: Stage) {
                // Only this handle changes the count, so a relaxed read of it is exact.
                let added = cell.state.load(Relaxed) >> 1;
                let slot = cell.list.slots().get(added).expect("the floor's list has room");
                // SAFETY: slot `added` is past the count: nobody reads it until the add below.
                unsafe { (*slot.get()).write(stage) };
                if cell.state.fetch_add(2, AcqRel) & FIRED == 0 {
                    return;
                }
                // The cell had fired: the end's handle owns `ran` and `result` (acquire,
                // above), and runs the stage itself.
                // SAFETY: as just said; the stage at `added` was written above and runs once.
                unsafe {
                    let stage = (*slot.get()).assume_init_read();
                    *cell.ran.get() = added + 1;
                    let slot = &mut *cell.result.get();
                    let value = slot.take().expect("a fired cell has its result");
                    *slot = Some(stage(value));
                }
            }

            /// Fires the cell with `x` (the resolver's handle does), then takes the result at
            /// the end.
            pub fn fire_and_take<L: Room>(
                (cell, resolver): (Ptr<Cell<L>>, Ptr<Cell<L>>),
                x: u64,
            ) -> u64 {
                fire(&resolver, Ok(x));
                drop(resolver);
                take(&cell)
            }

            #[inline(always)]
            fn fire<L: Room>(cell: &Cell<L>, mut value: FloorValue) {
                // SAFETY: until the cell is marked fired, `ran` and `result` are this thread's.
                let ran = unsafe { &mut *cell.ran.get() };
                let mut state = cell.state.load(Acquire);
                loop {
                    while *ran < state >> 1 {
                        // SAFETY: the count (acquire) says stage `ran` was written; it runs
                        // once.
                        let stage = unsafe { (*cell.list.slots()[*ran].get()).assume_init_read() };
                        *ran += 1;
                        value = stage(value);
                    }
                    // SAFETY: not marked fired yet: `result` is this thread's.
                    unsafe { *cell.result.get() = Some(value) };
                    match cell
                        .state
                        .compare_exchange(state, state | FIRED, AcqRel, Acquire)
                    {
                        Ok(_) => return,
                        Err(now) => {
                            // A stage was added meanwhile: the value is still this thread's.
                            // SAFETY: as above.
                            value = unsafe { (*cell.result.get()).take() }.expect("just put");
                            state = now;
                        }
                    }
                }
            }

            #[inline(always)]
            fn take<L: Room>(cell: &Cell<L>) -> u64 {
                assert!(cell.state.load(Acquire) & FIRED != 0, "the cell has fired");
                // SAFETY: the cell is marked fired: `result` belongs to the end's handle, this
                // caller.
                let value = unsafe { (*cell.result.get()).take() };
                value.expect("a fired cell has its result").expect("no step fails")
            }
        }
    };
}

one_adder_cells!(one_adder, std::sync::Arc, std::sync::atomic::AtomicUsize, + Send);
one_adder_cells!(local_one_adder, std::rc::Rc, LocalCount,);

// SAFETY: each stage, `ran` and `result` of the `Send` kind's cell are touched by one thread at
// a time, handed over by the count's release and acquire (see `Cell::list` and the table
// above); all are `Send`.
unsafe impl<L: one_adder::Room + Send> Sync for one_adder::Cell<L> {}
// SAFETY: as above; the cell owns its stages and result.
unsafe impl<L: one_adder::Room + Send> Send for one_adder::Cell<L> {}

/// The local kind's count: the atomic count's operations on a plain `Cell` (one thread: the
/// orderings have nothing to order).
pub struct LocalCount(std::cell::Cell<usize>);

impl LocalCount {
    const fn new(n: usize) -> LocalCount {
        LocalCount(std::cell::Cell::new(n))
    }
    fn get_mut(&mut self) -> &mut usize {
        self.0.get_mut()
    }
    fn load(&self, _: std::sync::atomic::Ordering) -> usize {
        self.0.get()
    }
    fn fetch_add(&self, n: usize, _: std::sync::atomic::Ordering) -> usize {
        let was = self.0.get();
        self.0.set(was + n);
        was
    }
    fn compare_exchange(
        &self,
        current: usize,
        new: usize,
        _: std::sync::atomic::Ordering,
        _: std::sync::atomic::Ordering,
    ) -> Result<usize, usize> {
        let was = self.0.get();
        if was == current {
            self.0.set(new);
            Ok(was)
        } else {
            Err(was)
        }
    }
}
