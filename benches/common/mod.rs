//! The chains the benchmarks time (benches/steps.rs), count the instructions of
//! (benches/instructions.rs) and count the allocations of (tests/alloc_counts.rs): a chain of
//! ten `+1` steps, in four shapes, written with each tool a user could pick.
//!
//! Shapes (those of benches/anchors/*, which measured Twisted and V8 promises the same way):
//! - `sync`: the chain starts fired (`succeed`, `ready`), so every step runs as it is added.
//! - `pending`: the chain is built on an unfired start, then fired.
//! - `nested`: each step returns a new (fired) Deferred / future / `Result`: the chain waits on it.
//! - `error`: the start is a failure; it skips nine callbacks and one errback recovers. The
//!   start's outcome is opaque to the optimizer (`black_box`), so no peer can delete the skips.
//!   Two more chains of this shape (`chain!` and `add_callback`, "raised by step 1") start with
//!   a success whose first step gives the failure, which skips the eight steps after it.
//!
//! Every step is [`inc`]: `+1` on a value the optimizer cannot see through, so no peer can fold
//! the ten steps into one `+10`, and every peer pays the same for the work itself. Each function
//! takes the start value and returns the chain's final value (`x + 10`, or 0 for `error`).
//!
//! Not every file that includes this module uses every item.
#![allow(dead_code)]

use std::error::Error as StdError;
use std::fmt;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll};

use deferred::{Deferred, Failure, LocalDeferred, chain};
use futures::channel::oneshot;
use futures::future::{FutureExt, TryFutureExt, ready};
use futures::task::noop_waker_ref;

mod lock_free;

/// Steps per chain.
pub const STEPS: u64 = 10;

/// One step's work: `+1` on an opaque value.
#[inline(always)]
pub fn inc(x: u64) -> u64 {
    black_box(x) + 1
}

/// A failure with nothing in it: making one costs what `Failure` itself costs.
#[derive(Debug, Clone, Copy)]
pub struct Boom;

impl fmt::Display for Boom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("boom")
    }
}

impl StdError for Boom {}

/// A chain may use its own error type instead of `Failure`: then a failure is a plain value
/// (no box, no trail of steps). It must be able to say "panicked" or "cancelled": any
/// `From<Failure>` does.
#[derive(Debug, Clone, Copy)]
pub struct OwnError;

impl From<Failure> for OwnError {
    fn from(_: Failure) -> OwnError {
        OwnError
    }
}

/// A `chain!` of ten steps on `$start`, of the start's kind: nine `+1`s, then `$last` on the
/// value, named `$a` (`+1` too unless a shape says otherwise): the chain every shape of
/// `chain!` runs.
macro_rules! ten_steps {
    ($start:expr, |$a:ident| $last:expr) => {
        chain! {
            $start
            then |a| inc(a)
            then |a| inc(a)
            then |a| inc(a)
            then |a| inc(a)
            then |a| inc(a)
            then |a| inc(a)
            then |a| inc(a)
            then |a| inc(a)
            then |a| inc(a)
            then |$a| $last
        }
    };
}

/// [`ten_steps!`] of ten `+1`s.
macro_rules! ten_incs {
    ($start:expr) => {
        ten_steps!($start, |a| inc(a))
    };
}

/// Runs a future that must be ready at its first poll.
fn poll_ready<F: std::future::Future>(f: F) -> F::Output {
    f.now_or_never().expect("the future was ready")
}

/// Calls `$callback!` with every chain, as `(shape, "peer", function)` (the function is
/// `common::shape::function`), in the order of the tables in BENCHMARKS.md. A macro rather than
/// a table of `fn` pointers, so that a benchmark calls each chain directly (an indirect call costs
/// about what a synchronous step does).
macro_rules! for_each_case {
    ($callback:ident) => {
        $callback! {
            (sync, "chain!", chain),
            (sync, "add_callback", add_callback),
            (sync, "local add_callback", local_add_callback),
            (sync, "add_callback, a named fn", add_callback_named_fn),
            (sync, "add_callback, #[inline(never)] step", add_callback_inline_never),
            (sync, "add_callback, another crate's fn", add_callback_other_crate),
            (sync, "closures", closures),
            (sync, "#[inline(never)] step, called by hand", inline_never_by_hand),
            (sync, "another crate's fn, called by hand", other_crate_by_hand),
            (sync, "futures ready().map()", futures_map),
            (sync, "async/await", async_await),
            (pending, "chain!", chain),
            (pending, "local chain!", local_chain),
            (pending, "add_callback", add_callback),
            (pending, "local add_callback", local_add_callback),
            (pending, "closures", closures),
            (pending, "boxed callback list", boxed_callbacks),
            (pending, "one locked cell (the floor of a lock)", locked_cell),
            (pending, "one locked cell, a stage a step", locked_cell_stages),
            (pending, "one local cell (Rc, RefCell)", local_cell),
            (pending, "one local cell, a stage a step", local_cell_stages),
            (pending, "one lock-free cell", lock_free_cell),
            (pending, "one lock-free cell, a stage a step", lock_free_cell_stages),
            (pending, "one one-adder cell", one_adder_cell),
            (pending, "one one-adder cell, a stage a step", one_adder_cell_stages),
            (pending, "one one-adder cell, inline list", one_adder_cell_inline),
            (pending, "one local one-adder cell", local_one_adder_cell),
            (pending, "one local one-adder cell, a stage a step", local_one_adder_cell_stages),
            (pending, "one local one-adder cell, inline list", local_one_adder_cell_inline),
            (pending, "futures oneshot+map", futures_oneshot_map),
            (pending, "futures oneshot+map, polled", futures_oneshot_map_polled),
            (pending, "async/await oneshot", async_await),
            (pending, "async/await oneshot, polled", async_await_polled),
            (pending, "tokio oneshot, async", tokio_async),
            (pending, "tokio oneshot, async, polled", tokio_async_polled),
            (pending, "chain!, fired first", chain_fired_first),
            (pending, "chain!, awaited", chain_awaited),
            (pending, "chain!, type changed", chain_type_changed),
            (pending, "local chain!, fired first", local_chain_fired_first),
            (pending, "add_callback, fired first", add_callback_fired_first),
            (pending, "local add_callback, fired first", local_add_callback_fired_first),
            (nested, "chain!", chain),
            (nested, "add_callback", add_callback),
            (nested, "closures", closures),
            (nested, "futures then(ready)", futures_then),
            (nested, "futures boxed then(ready)", futures_then_boxed),
            (nested, "async/await", async_await),
            (error, "chain!", chain),
            (error, "chain!, own error type", chain_own_error),
            (error, "add_callback", add_callback),
            (error, "add_callback, own error type", add_callback_own_error),
            (error, "closures", closures),
            (error, "futures map_ok", futures_map_ok),
            (error, "async/await ?", async_await),
            (error, "chain!, raised by step 1", chain_raised),
            (error, "add_callback, raised by step 1", add_callback_raised),
        }
    };
}
#[allow(unused_imports)] // not every file that includes this module uses it
pub(crate) use for_each_case;

macro_rules! cases_table {
    ($(($shape:ident, $peer:literal, $function:ident)),* $(,)?) => {
        /// Every chain: `(shape, peer, function)`.
        pub const CASES: &[(&str, &str, fn(u64) -> u64)] =
            &[$((stringify!($shape), $peer, $shape::$function)),*];
    };
}
for_each_case!(cases_table);

/// The start is fired: each step runs as it is added.
pub mod sync {
    use super::*;

    pub fn chain(x: u64) -> u64 {
        ten_incs!(Deferred::<u64>::succeed(x)).wait().unwrap()
    }

    pub fn add_callback(x: u64) -> u64 {
        Deferred::<u64>::succeed(x)
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .wait()
            .unwrap()
    }

    /// A step that is a named function, used as a step in several chains (here, and in
    /// `named_fn_elsewhere`): the optimizer no longer inlines `add_callback` into each caller
    /// as it does for a closure used once.
    pub fn ok_inc(x: u64) -> Result<u64, Failure> {
        Ok(inc(x))
    }

    pub fn add_callback_named_fn(x: u64) -> u64 {
        Deferred::<u64>::succeed(x)
            .add_callback(ok_inc)
            .add_callback(ok_inc)
            .add_callback(ok_inc)
            .add_callback(ok_inc)
            .add_callback(ok_inc)
            .add_callback(ok_inc)
            .add_callback(ok_inc)
            .add_callback(ok_inc)
            .add_callback(ok_inc)
            .add_callback(ok_inc)
            .wait()
            .unwrap()
    }

    /// Another chain using `ok_inc` (not measured: it is there so that the function is a step
    /// in several chains, as a user's steps are).
    pub fn named_fn_elsewhere(x: u64) -> Deferred<u64> {
        Deferred::<u64>::succeed(x)
            .add_callback(ok_inc)
            .add_errback(|_| Ok(0))
            .add_callback(ok_inc)
    }

    #[inline(never)]
    fn ok_inc_never(x: u64) -> Result<u64, Failure> {
        Ok(inc(x))
    }

    pub fn add_callback_inline_never(x: u64) -> u64 {
        Deferred::<u64>::succeed(x)
            .add_callback(ok_inc_never)
            .add_callback(ok_inc_never)
            .add_callback(ok_inc_never)
            .add_callback(ok_inc_never)
            .add_callback(ok_inc_never)
            .add_callback(ok_inc_never)
            .add_callback(ok_inc_never)
            .add_callback(ok_inc_never)
            .add_callback(ok_inc_never)
            .add_callback(ok_inc_never)
            .wait()
            .unwrap()
    }

    /// A step that is a `pub fn` of another crate (benches/other-crate), which this crate
    /// cannot inline, nor see that it always succeeds.
    pub fn add_callback_other_crate(x: u64) -> u64 {
        use deferred_bench_steps::ok_inc;
        Deferred::<u64>::succeed(x)
            .add_callback(ok_inc)
            .add_callback(ok_inc)
            .add_callback(ok_inc)
            .add_callback(ok_inc)
            .add_callback(ok_inc)
            .add_callback(ok_inc)
            .add_callback(ok_inc)
            .add_callback(ok_inc)
            .add_callback(ok_inc)
            .add_callback(ok_inc)
            .wait()
            .unwrap()
    }

    /// The same on a `LocalDeferred`.
    pub fn local_add_callback(x: u64) -> u64 {
        LocalDeferred::<u64>::succeed(x)
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .wait()
            .unwrap()
    }

    /// The limit: the ten steps called directly.
    pub fn closures(x: u64) -> u64 {
        let steps = [inc; STEPS as usize];
        steps.iter().fold(x, |a, step| step(a))
    }

    /// Ten calls of `step` by hand, with `?`: what a step the optimizer does not inline costs
    /// with no library, for the bar of 2 ns a step.
    #[inline(always)]
    fn ten_by_hand(x: u64, step: fn(u64) -> Result<u64, Failure>) -> u64 {
        let by_hand = |mut a: u64| -> Result<u64, Failure> {
            for _ in 0..STEPS {
                a = step(a)?;
            }
            Ok(a)
        };
        by_hand(x).unwrap()
    }

    /// [`add_callback_inline_never`]'s step called by hand.
    pub fn inline_never_by_hand(x: u64) -> u64 {
        ten_by_hand(x, ok_inc_never)
    }

    /// [`add_callback_other_crate`]'s step called by hand.
    pub fn other_crate_by_hand(x: u64) -> u64 {
        ten_by_hand(x, deferred_bench_steps::ok_inc)
    }

    pub fn futures_map(x: u64) -> u64 {
        poll_ready(
            ready(x)
                .map(inc)
                .map(inc)
                .map(inc)
                .map(inc)
                .map(inc)
                .map(inc)
                .map(inc)
                .map(inc)
                .map(inc)
                .map(inc),
        )
    }

    pub fn async_await(x: u64) -> u64 {
        poll_ready(async move {
            let mut a = x;
            for _ in 0..STEPS {
                a = ready(inc(a)).await;
            }
            a
        })
    }
}

/// The chain is built on an unfired start, then fired.
pub mod pending {
    use super::*;
    use std::collections::VecDeque;

    pub fn chain(x: u64) -> u64 {
        let (start, resolver) = Deferred::<u64>::pending();
        let d = ten_incs!(start);
        resolver.callback(x);
        d.wait().unwrap()
    }

    /// The same on a `LocalDeferred`: no atomics, no lock.
    pub fn local_chain(x: u64) -> u64 {
        let (start, resolver) = LocalDeferred::<u64>::pending();
        let d = ten_incs!(start);
        resolver.callback(x);
        d.wait().unwrap()
    }

    pub fn add_callback(x: u64) -> u64 {
        let (start, resolver) = Deferred::<u64>::pending();
        let d = start
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)));
        resolver.callback(x);
        d.wait().unwrap()
    }

    /// [`chain`] whose last step changes the value's type (`u64` to `u32`): the chain's end
    /// is not of its root's type, and its run is a stage that keeps its output in its own box.
    pub fn chain_type_changed(x: u64) -> u64 {
        let (start, resolver) = Deferred::<u64>::pending();
        let d = ten_steps!(start, |a| inc(a) as u32);
        resolver.callback(x);
        u64::from(d.wait().unwrap())
    }

    /// [`chain`] awaited in an `async` block, polled once before the root fires (it registers
    /// its waker) and once after, as [`tokio_async_polled`] is: a Deferred in async code.
    pub fn chain_awaited(x: u64) -> u64 {
        let (start, resolver) = Deferred::<u64>::pending();
        let d = ten_incs!(start);
        let mut f = pin!(async move { d.await.unwrap() });
        let mut cx = Context::from_waker(noop_waker_ref());
        assert!(f.as_mut().poll(&mut cx).is_pending());
        resolver.callback(x);
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(value) => value,
            Poll::Pending => unreachable!("the root has fired"),
        }
    }

    /// [`chain`] with the value given before the steps are added, as [`tokio_async`] sends it
    /// before its future is first polled: the chain has fired when its one stage is added, so the
    /// stage runs at once (rule 2), on this thread.
    pub fn chain_fired_first(x: u64) -> u64 {
        let (start, resolver) = Deferred::<u64>::pending();
        resolver.callback(x);
        let d = ten_incs!(start);
        d.wait().unwrap()
    }

    /// [`chain_fired_first`] on a `LocalDeferred`.
    pub fn local_chain_fired_first(x: u64) -> u64 {
        let (start, resolver) = LocalDeferred::<u64>::pending();
        resolver.callback(x);
        let d = ten_incs!(start);
        d.wait().unwrap()
    }

    /// [`add_callback`] with the value given first (see [`chain_fired_first`]): the first step
    /// takes the result out of the fired chain, and every step runs as it is added.
    pub fn add_callback_fired_first(x: u64) -> u64 {
        let (start, resolver) = Deferred::<u64>::pending();
        resolver.callback(x);
        let d = start
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)));
        d.wait().unwrap()
    }

    /// [`add_callback_fired_first`] on a `LocalDeferred`.
    pub fn local_add_callback_fired_first(x: u64) -> u64 {
        let (start, resolver) = LocalDeferred::<u64>::pending();
        resolver.callback(x);
        let d = start
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)));
        d.wait().unwrap()
    }

    /// The same on a `LocalDeferred`: no atomics, no lock.
    pub fn local_add_callback(x: u64) -> u64 {
        let (start, resolver) = LocalDeferred::<u64>::pending();
        let d = start
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)));
        resolver.callback(x);
        d.wait().unwrap()
    }

    /// The limit: the ten steps fused into one closure, kept, then called with the value.
    pub fn closures(x: u64) -> u64 {
        let fused = |a: u64| {
            let steps = [inc; STEPS as usize];
            steps.iter().fold(a, |a, step| step(a))
        };
        let kept = black_box(fused);
        kept(x)
    }

    /// The naive port of Twisted: a list of boxed callbacks, run in turn when the value comes.
    pub fn boxed_callbacks(x: u64) -> u64 {
        let mut callbacks: Vec<Box<dyn FnOnce(u64) -> u64>> = Vec::with_capacity(STEPS as usize);
        for _ in 0..STEPS {
            callbacks.push(Box::new(inc));
        }
        let callbacks = black_box(callbacks);
        callbacks.into_iter().fold(x, |a, callback| callback(a))
    }

    /// The least a pending chain that one thread may extend while another fires it can do:
    /// [`locked_cell`] with a lock, as `chain!`'s does (an `Arc` and `spin`'s `SpinMutex`),
    /// [`local_cell`] with a borrow, as the local kind's does (an `Rc` and a `RefCell`). One cell,
    /// the ten steps fused into one boxed stage (free: it captures nothing) on a
    /// `Result<u64, Failure>`, and four lock round trips: the stage added (unless the cell has
    /// fired: then it would run at once), taken when the root fires and run outside the lock, the
    /// result parked under the lock that finds no stage added meanwhile, then taken by the end.
    /// The resolver's handle is opaque to the optimizer (`black_box`), so the stage is a dynamic
    /// call, as a chain's is. Nothing else: no type change, no cancellation, no run loop, no
    /// panic guard, no listener. The floor the chain's own cell is measured against
    /// (BENCHMARKS.md, "Misses").
    ///
    /// [`locked_cell_stages`] and [`local_cell_stages`]: the same cell with each step added as a
    /// stage of its own, as `add_callback` adds them: a list of boxed stages (free), made with
    /// room for the ten (one allocation: the least a list can cost), each added under the lock,
    /// all taken off at once under the lock when the root fires (as a chain's run takes them)
    /// and run outside it.
    pub fn locked_cell(x: u64) -> u64 {
        locked::fire_and_take(locked::built::<Option<locked::Stage>>(false), x)
    }

    /// See [`locked_cell`].
    pub fn locked_cell_stages(x: u64) -> u64 {
        locked::fire_and_take(locked::built::<VecDeque<locked::Stage>>(true), x)
    }

    /// See [`locked_cell`].
    pub fn local_cell(x: u64) -> u64 {
        local::fire_and_take(local::built::<Option<local::Stage>>(false), x)
    }

    /// See [`locked_cell`].
    pub fn local_cell_stages(x: u64) -> u64 {
        local::fire_and_take(local::built::<VecDeque<local::Stage>>(true), x)
    }

    /// The same floor without a lock: adding a stage is one compare-and-swap, firing one swap
    /// (and one more a stage added while it runs), then one to mark the cell fired. See
    /// `lock_free.rs`.
    pub fn lock_free_cell(x: u64) -> u64 {
        super::lock_free::fire_and_take(super::lock_free::built(false), x)
    }

    /// See [`lock_free_cell`]: a stage a step, each its own node (a box).
    pub fn lock_free_cell_stages(x: u64) -> u64 {
        super::lock_free::fire_and_take(super::lock_free::built(true), x)
    }

    /// The same floor for a cell only one handle adds to (a chain's end): adding a stage is one
    /// atomic add, firing one compare-and-swap. See `lock_free.rs`, `one_adder`.
    pub fn one_adder_cell(x: u64) -> u64 {
        use super::lock_free::one_adder;
        one_adder::fire_and_take(one_adder::built::<one_adder::One>(false), x)
    }

    /// See [`one_adder_cell`]: a stage a step.
    pub fn one_adder_cell_stages(x: u64) -> u64 {
        use super::lock_free::one_adder;
        one_adder::fire_and_take(one_adder::built::<one_adder::Sixteen>(true), x)
    }

    /// See [`one_adder_cell`]: a stage a step, the list in the cell (one allocation: the least).
    pub fn one_adder_cell_inline(x: u64) -> u64 {
        use super::lock_free::one_adder;
        one_adder::fire_and_take(one_adder::built::<one_adder::SixteenInline>(true), x)
    }

    /// [`one_adder_cell`] for one thread: an `Rc`, and a plain count (no atomic operation, no
    /// borrow flag).
    pub fn local_one_adder_cell(x: u64) -> u64 {
        use super::lock_free::local_one_adder as cell;
        cell::fire_and_take(cell::built::<cell::One>(false), x)
    }

    /// See [`local_one_adder_cell`]: a stage a step.
    pub fn local_one_adder_cell_stages(x: u64) -> u64 {
        use super::lock_free::local_one_adder as cell;
        cell::fire_and_take(cell::built::<cell::Sixteen>(true), x)
    }

    /// See [`local_one_adder_cell`]: a stage a step, the list in the cell (one allocation: the
    /// least).
    pub fn local_one_adder_cell_inline(x: u64) -> u64 {
        use super::lock_free::local_one_adder as cell;
        cell::fire_and_take(cell::built::<cell::SixteenInline>(true), x)
    }

    /// What flows through a floor cell: what flows through a chain of `Deferred<u64>`.
    pub type FloorValue = Result<u64, Failure>;

    /// A floor cell's state (see [`locked_cell`]).
    pub struct FloorCell<S> {
        stages: S,
        result: Option<FloorValue>,
        fired: bool,
    }

    /// A floor cell's stages: one (`Option`) or a list (`VecDeque`).
    pub trait FloorStages<S>: Sized {
        fn made() -> Self;
        fn put(&mut self, stage: S);
        fn next(&mut self) -> Option<S>;
        /// Every stage, taken off at once (the cell's list left empty).
        fn take_all(&mut self) -> Self;
    }

    impl<S> FloorStages<S> for Option<S> {
        fn made() -> Self {
            None
        }
        fn put(&mut self, stage: S) {
            *self = Some(stage);
        }
        fn next(&mut self) -> Option<S> {
            self.take()
        }
        fn take_all(&mut self) -> Self {
            self.take()
        }
    }

    impl<S> FloorStages<S> for VecDeque<S> {
        fn made() -> Self {
            VecDeque::with_capacity(STEPS as usize)
        }
        fn put(&mut self, stage: S) {
            self.push_back(stage);
        }
        fn next(&mut self) -> Option<S> {
            self.pop_front()
        }
        fn take_all(&mut self) -> Self {
            std::mem::take(self)
        }
    }

    /// The floor cells of both kinds, written once: `$ptr` shares the cell, `$cell` locks it
    /// with `$lock`.
    macro_rules! floor_cells {
        ($kind:ident, $ptr:path, $cell:path, $lock:ident, $($send:tt)*) => {
            pub mod $kind {
                use super::*;
                use $cell as Lock;
                use $ptr as Ptr;

                pub type Stage = Box<dyn FnOnce(FloorValue) -> FloorValue $($send)*>;
                pub type Cell<S> = Ptr<Lock<FloorCell<S>>>;

                /// A cell with the ten steps added (one stage a step, or the ten in one), and
                /// its resolver's handle.
                pub fn built<S: FloorStages<Stage>>(per_step: bool) -> (Cell<S>, Cell<S>) {
                    let cell = Ptr::new(Lock::new(FloorCell {
                        stages: S::made(),
                        result: None,
                        fired: false,
                    }));
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

                /// Adds `stage`; on a cell that has fired, runs it at once on the result.
                #[inline(always)]
                fn add<S: FloorStages<Stage>>(cell: &Cell<S>, stage: Stage) {
                    let mut inner = cell.$lock();
                    if inner.fired {
                        let value = inner.result.take().expect("a fired cell has its result");
                        drop(inner);
                        let value = stage(value);
                        cell.$lock().result = Some(value);
                    } else {
                        inner.stages.put(stage);
                    }
                }

                /// Fires the cell with `x` (the stages it finds taken off at once under the lock
                /// and run outside it, then those added meanwhile, as a chain's run does; the
                /// result parked under the lock that finds none left), then takes the result at
                /// the end.
                pub fn fire_and_take<S: FloorStages<Stage>>(
                    (cell, resolver): (Cell<S>, Cell<S>),
                    x: u64,
                ) -> u64 {
                    let mut value: FloorValue = Ok(x);
                    let mut inner = resolver.$lock();
                    while let Some(first) = inner.stages.next() {
                        let mut rest = inner.stages.take_all();
                        drop(inner);
                        value = first(value);
                        while let Some(stage) = rest.next() {
                            value = stage(value);
                        }
                        inner = resolver.$lock();
                    }
                    inner.result = Some(value);
                    inner.fired = true;
                    drop(inner);
                    drop(resolver);
                    let value = cell.$lock().result.take();
                    value.expect("the cell has fired").expect("no step fails")
                }
            }
        };
    }

    /// The lock of a `Deferred`'s cell (deferred-core's `sync.rs`).
    pub type SpinLock<X> = spin::mutex::SpinMutex<X, spin::relax::Yield>;

    floor_cells!(locked, std::sync::Arc, super::SpinLock, lock, + Send);
    floor_cells!(local, std::rc::Rc, std::cell::RefCell, borrow_mut,);

    /// benches/anchors/rust-peers: the chain is built on a oneshot, the value sent, then the chain
    /// polled once (it never waited: its first poll finds the value).
    pub fn futures_oneshot_map(x: u64) -> u64 {
        let (tx, rx) = oneshot::channel::<u64>();
        let f = rx
            .map(|r| r.unwrap())
            .map(inc)
            .map(inc)
            .map(inc)
            .map(inc)
            .map(inc)
            .map(inc)
            .map(inc)
            .map(inc)
            .map(inc)
            .map(inc);
        tx.send(x).unwrap();
        poll_ready(f)
    }

    /// As [`futures_oneshot_map`], but the chain really waits: polled once before the value is
    /// sent (it registers its waker), then again after.
    pub fn futures_oneshot_map_polled(x: u64) -> u64 {
        let (tx, rx) = oneshot::channel::<u64>();
        let mut f = rx
            .map(|r| r.unwrap())
            .map(inc)
            .map(inc)
            .map(inc)
            .map(inc)
            .map(inc)
            .map(inc)
            .map(inc)
            .map(inc)
            .map(inc)
            .map(inc);
        let mut cx = Context::from_waker(noop_waker_ref());
        assert!(f.poll_unpin(&mut cx).is_pending());
        tx.send(x).unwrap();
        match f.poll_unpin(&mut cx) {
            Poll::Ready(value) => value,
            Poll::Pending => unreachable!("the value was sent"),
        }
    }

    pub fn async_await(x: u64) -> u64 {
        let (tx, rx) = oneshot::channel::<u64>();
        let f = async move {
            let mut a = rx.await.unwrap();
            for _ in 0..STEPS {
                a = ready(inc(a)).await;
            }
            a
        };
        tx.send(x).unwrap();
        poll_ready(f)
    }

    pub fn async_await_polled(x: u64) -> u64 {
        let (tx, rx) = oneshot::channel::<u64>();
        let mut f = pin!(async move {
            let mut a = rx.await.unwrap();
            for _ in 0..STEPS {
                a = ready(inc(a)).await;
            }
            a
        });
        let mut cx = Context::from_waker(noop_waker_ref());
        assert!(f.as_mut().poll(&mut cx).is_pending());
        tx.send(x).unwrap();
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(value) => value,
            Poll::Pending => unreachable!("the value was sent"),
        }
    }

    /// The tokio peer (issue 18's bar for a pending chain!): a `tokio::sync::oneshot` awaited in
    /// an `async` block of the same ten steps, polled without a runtime as [`async_await`] is.
    pub fn tokio_async(x: u64) -> u64 {
        let (tx, rx) = tokio::sync::oneshot::channel::<u64>();
        let f = async move {
            let mut a = rx.await.unwrap();
            for _ in 0..STEPS {
                a = ready(inc(a)).await;
            }
            a
        };
        tx.send(x).unwrap();
        poll_ready(f)
    }

    /// As [`tokio_async`], but polled once before the value is sent (it registers its waker).
    pub fn tokio_async_polled(x: u64) -> u64 {
        let (tx, rx) = tokio::sync::oneshot::channel::<u64>();
        let mut f = pin!(async move {
            let mut a = rx.await.unwrap();
            for _ in 0..STEPS {
                a = ready(inc(a)).await;
            }
            a
        });
        let mut cx = Context::from_waker(noop_waker_ref());
        assert!(f.as_mut().poll(&mut cx).is_pending());
        tx.send(x).unwrap();
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(value) => value,
            Poll::Pending => unreachable!("the value was sent"),
        }
    }
}

/// Each step returns a new, fired, Deferred (or future, or `Result`): the chain waits on it.
pub mod nested {
    use super::*;

    pub fn chain(x: u64) -> u64 {
        chain! {
            Deferred::<u64>::succeed(x)
            then |a| Deferred::<u64>::succeed(inc(a))
            then |a| Deferred::<u64>::succeed(inc(a))
            then |a| Deferred::<u64>::succeed(inc(a))
            then |a| Deferred::<u64>::succeed(inc(a))
            then |a| Deferred::<u64>::succeed(inc(a))
            then |a| Deferred::<u64>::succeed(inc(a))
            then |a| Deferred::<u64>::succeed(inc(a))
            then |a| Deferred::<u64>::succeed(inc(a))
            then |a| Deferred::<u64>::succeed(inc(a))
            then |a| Deferred::<u64>::succeed(inc(a))
        }
        .wait()
        .unwrap()
    }

    pub fn add_callback(x: u64) -> u64 {
        Deferred::<u64>::succeed(x)
            .add_callback(|a| Deferred::succeed(inc(a)))
            .add_callback(|a| Deferred::succeed(inc(a)))
            .add_callback(|a| Deferred::succeed(inc(a)))
            .add_callback(|a| Deferred::succeed(inc(a)))
            .add_callback(|a| Deferred::succeed(inc(a)))
            .add_callback(|a| Deferred::succeed(inc(a)))
            .add_callback(|a| Deferred::succeed(inc(a)))
            .add_callback(|a| Deferred::succeed(inc(a)))
            .add_callback(|a| Deferred::succeed(inc(a)))
            .add_callback(|a| Deferred::succeed(inc(a)))
            .wait()
            .unwrap()
    }

    /// The limit: `Result::and_then`, each step returning a new `Result`.
    pub fn closures(x: u64) -> u64 {
        fn step(a: u64) -> Result<u64, Boom> {
            Ok(inc(a))
        }
        let start: Result<u64, Boom> = Ok(x);
        start
            .and_then(step)
            .and_then(step)
            .and_then(step)
            .and_then(step)
            .and_then(step)
            .and_then(step)
            .and_then(step)
            .and_then(step)
            .and_then(step)
            .and_then(step)
            .unwrap()
    }

    pub fn futures_then(x: u64) -> u64 {
        poll_ready(
            ready(x)
                .then(|a| ready(inc(a)))
                .then(|a| ready(inc(a)))
                .then(|a| ready(inc(a)))
                .then(|a| ready(inc(a)))
                .then(|a| ready(inc(a)))
                .then(|a| ready(inc(a)))
                .then(|a| ready(inc(a)))
                .then(|a| ready(inc(a)))
                .then(|a| ready(inc(a)))
                .then(|a| ready(inc(a))),
        )
    }

    /// benches/anchors/rust-peers: each link boxed, as a chain of runtime length must be.
    pub fn futures_then_boxed(x: u64) -> u64 {
        let mut f = ready(x).boxed();
        for _ in 0..STEPS {
            f = f.then(|a| ready(inc(a))).boxed();
        }
        poll_ready(f)
    }

    pub fn async_await(x: u64) -> u64 {
        async fn step(a: u64) -> u64 {
            inc(a)
        }
        poll_ready(async move {
            let mut a = x;
            for _ in 0..STEPS {
                a = step(a).await;
            }
            a
        })
    }
}

/// The start is a failure (opaque to the optimizer): it skips nine callbacks, and one errback
/// recovers with 0.
pub mod error {
    use super::*;

    /// A failed start the optimizer cannot see is a failure.
    #[inline(always)]
    fn failed<E>(error: E) -> Result<u64, E> {
        black_box(Err(error))
    }

    pub fn chain(_x: u64) -> u64 {
        chain! {
            Deferred::from_result(failed(Failure::new(Boom)))
            then |a| inc(a)
            then |a| inc(a)
            then |a| inc(a)
            then |a| inc(a)
            then |a| inc(a)
            then |a| inc(a)
            then |a| inc(a)
            then |a| inc(a)
            then |a| inc(a)
            catch |_| 0
        }
        .wait()
        .unwrap()
    }

    pub fn chain_own_error(_x: u64) -> u64 {
        chain! {
            Deferred::from_result(failed(OwnError))
            then |a| inc(a)
            then |a| inc(a)
            then |a| inc(a)
            then |a| inc(a)
            then |a| inc(a)
            then |a| inc(a)
            then |a| inc(a)
            then |a| inc(a)
            then |a| inc(a)
            catch |_| 0
        }
        .wait()
        .unwrap()
    }

    pub fn add_callback(_x: u64) -> u64 {
        Deferred::from_result(failed(Failure::new(Boom)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_errback(|_| Ok(0))
            .wait()
            .unwrap()
    }

    pub fn add_callback_own_error(_x: u64) -> u64 {
        Deferred::from_result(failed(OwnError))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_errback(|_| Ok(0))
            .wait()
            .unwrap()
    }

    /// The first step raises the failure (its input is opaque to the optimizer), which skips
    /// the eight steps after it, nested in its closure in `chain!`: each is on its trail.
    pub fn chain_raised(x: u64) -> u64 {
        chain! {
            Deferred::<u64>::succeed(x)
            then |a| failed(Failure::new(Boom)).map(|b: u64| a + b)
            then |a| inc(a)
            then |a| inc(a)
            then |a| inc(a)
            then |a| inc(a)
            then |a| inc(a)
            then |a| inc(a)
            then |a| inc(a)
            then |a| inc(a)
            catch |_| 0
        }
        .wait()
        .unwrap()
    }

    pub fn add_callback_raised(x: u64) -> u64 {
        Deferred::<u64>::succeed(x)
            .add_callback(|a| failed(Failure::new(Boom)).map(|b: u64| a + b))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_callback(|a| Ok(inc(a)))
            .add_errback(|_| Ok(0))
            .wait()
            .unwrap()
    }

    /// The limit: `Result::map`, then `unwrap_or_else`.
    pub fn closures(_x: u64) -> u64 {
        failed(Boom)
            .map(inc)
            .map(inc)
            .map(inc)
            .map(inc)
            .map(inc)
            .map(inc)
            .map(inc)
            .map(inc)
            .map(inc)
            .unwrap_or_else(|_| 0)
    }

    pub fn futures_map_ok(_x: u64) -> u64 {
        poll_ready(
            ready(failed(Boom))
                .map_ok(inc)
                .map_ok(inc)
                .map_ok(inc)
                .map_ok(inc)
                .map_ok(inc)
                .map_ok(inc)
                .map_ok(inc)
                .map_ok(inc)
                .map_ok(inc)
                .unwrap_or_else(|_| 0),
        )
    }

    /// The natural async form: `?` leaves at the first failure.
    pub fn async_await(_x: u64) -> u64 {
        poll_ready(async move {
            let run = async {
                let mut a = ready(failed(Boom)).await?;
                for _ in 0..STEPS - 1 {
                    a = ready(inc(a)).await;
                }
                Ok::<u64, Boom>(a)
            };
            run.await.unwrap_or(0)
        })
    }
}

/// The value each shape's chain gives for the start `x`.
pub fn expected(shape: &str, x: u64) -> u64 {
    // Keeps the second chain that uses `sync::ok_inc` in the binary (see there).
    black_box(sync::named_fn_elsewhere as fn(u64) -> Deferred<u64>);
    if shape == "error" { 0 } else { x + STEPS }
}
