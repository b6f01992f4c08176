//! The run loop: how a fired result travels down a chain in constant stack (rule 3).
//!
//! When a link fires and someone is listening, the delivery is not made by a nested call: it is
//! queued on this thread's run loop. The outermost firing on a thread drains the queue; firings
//! made while the loop runs (by a callback, or by a link passing its result on) are appended and
//! run after the current delivery returns. So a chain of a million links — or a million nested
//! Deferreds each waiting on the next — unwinds in a loop, never in a million nested frames.
//!
//! This is Twisted's `_runCallbacks` loop (ticket #411), extended to every firing: a `Resolver`
//! fired from inside a callback runs its chain as soon as that callback returns, on the same
//! thread, instead of growing the stack (Twisted's `chainDeferred` recursion, issue #3229).
#![forbid(unsafe_code)]

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use crate::local::kind::ChainPtr as LocalChainPtr;
use crate::shared::kind::ChainPtr;

use crate::sync::thread_local;

/// A chain of the `Send` kind holding a result and the listener it must be handed to.
pub(crate) trait Delivery: Any + Send + Sync {
    /// The function that hands the chain's result to its listener, given the pointer that was
    /// queued: a function of the chain's own type, which types the pointer back (a chain's
    /// pointer cannot be a method's receiver: see `chain_arc.rs`). It never panics: user code
    /// runs under `catch_unwind` inside.
    fn deliverer(&self) -> fn(ChainPtr<dyn Delivery>);
}

/// The same, for a chain of the local kind (it never leaves this thread, so neither does its
/// delivery).
pub(crate) trait LocalDelivery: Any {
    /// As [`Delivery::deliverer`].
    fn deliverer(&self) -> fn(LocalChainPtr<dyn LocalDelivery>);
}

/// A delivery waiting in this thread's queue. One queue serves both kinds, so deliveries run
/// in the order they were made whichever kind made them.
pub(crate) enum Queued {
    Shared(ChainPtr<dyn Delivery>),
    Local(LocalChainPtr<dyn LocalDelivery>),
}

impl Queued {
    fn deliver(self) {
        match self {
            Queued::Shared(delivery) => {
                let deliver = delivery.deliverer();
                deliver(delivery);
            }
            Queued::Local(delivery) => {
                let deliver = delivery.deliverer();
                deliver(delivery);
            }
        }
    }
}

#[cfg(not(loom))]
thread_local! {
    static RUNNING: Cell<bool> = const { Cell::new(false) };
    static QUEUE: RefCell<VecDeque<Queued>> = const { RefCell::new(VecDeque::new()) };
    /// How many deliveries `QUEUE` holds: a plain counter, cheaper to read than the queue
    /// (which has a destructor) for the check a chain makes after each step.
    static QUEUED: Cell<usize> = const { Cell::new(0) };
    /// How many fan-in arrivals are nested on this thread's stack (`arriving`).
    static ARRIVING: Cell<u32> = const { Cell::new(0) };
    /// How many calls of `in_constant_stack` are nested on this thread's stack.
    static NESTED: Cell<u32> = const { Cell::new(0) };
    /// The calls that came while `NESTED_IN_ONE_STACK` were nested already, for the outermost
    /// to run.
    static LATER: RefCell<Vec<Box<dyn FnOnce()>>> = const { RefCell::new(Vec::new()) };
    /// How this thread waits for work other threads post to it: set by its `Inbox`.
    static POSTED: Cell<Option<RunOnePosted>> = const { Cell::new(None) };
}

// loom's `thread_local!` does not take `const { .. }` initializers.
#[cfg(loom)]
thread_local! {
    static RUNNING: Cell<bool> = Cell::new(false);
    static QUEUE: RefCell<VecDeque<Queued>> = RefCell::new(VecDeque::new());
    static QUEUED: Cell<usize> = Cell::new(0);
    static ARRIVING: Cell<u32> = Cell::new(0);
    static NESTED: Cell<u32> = Cell::new(0);
    static LATER: RefCell<Vec<Box<dyn FnOnce()>>> = RefCell::new(Vec::new());
    static POSTED: Cell<Option<RunOnePosted>> = Cell::new(None);
}

/// Whether this thread is inside the run loop (delivering a fired chain) right now.
#[inline]
pub(crate) fn is_running() -> bool {
    RUNNING.with(Cell::get)
}

/// Queues a delivery behind the one running on this thread; only call inside the run loop.
pub(crate) fn enqueue(delivery: Queued) {
    let mut delivery = Some(delivery);
    // While this thread's locals are being destroyed (a Resolver kept in another thread-local,
    // dropped at thread exit), the queue may be gone already: then deliver now, nested.
    let _ = QUEUE.try_with(|q| {
        if let Some(queued) = delivery.take() {
            q.borrow_mut().push_back(queued);
        }
    });
    if delivery.is_none() {
        QUEUED.with(|n| n.set(n.get() + 1));
    }
    if let Some(delivery) = delivery {
        delivery.deliver();
    }
}

/// How deep what one fan-in does to the next down a nest of them (`map_err` of `map_err`, a
/// combinator of combinators) may nest on this thread's stack before the next waits for a loop:
/// a fan-in's arrivals before the next goes through the run loop (`arrivals_nest_deep`), and
/// the calls of `in_constant_stack` before the next waits for the outermost.
const NESTED_IN_ONE_STACK: u32 = 16;

/// Runs `arrive`, a fan-in input's arrival, counted among the arrivals nested on this thread
/// (`arrivals_nest_deep`).
#[inline]
pub(crate) fn arriving(arrive: impl FnOnce()) {
    struct Done;
    impl Drop for Done {
        #[inline]
        fn drop(&mut self) {
            ARRIVING.with(|n| n.set(n.get() - 1));
        }
    }
    ARRIVING.with(|n| n.set(n.get() + 1));
    let _done = Done;
    arrive();
}

/// Runs `f` at once unless `NESTED_IN_ONE_STACK` calls of this are nested on this thread's
/// stack already; then the outermost runs it, after its own, before it returns. For what a
/// fan-in does to the next fan-in down a nest of them, which would otherwise nest a frame a
/// fan-in (10,000 nested `map_err`s, 10,000 frames):
/// - a chain nobody can read lets go of the fan-in it feeds (`EndUnread`), whose output's
///   `Resolver` goes with it, and that output's chain, unread too, lets go of the next;
/// - a cancel of a fan-in's output cancels its inputs (`Inputs::cancel_inputs`), each maybe
///   the output of another.
///
/// The calls put off run after the outermost's own, in the order they were put off, each
/// followed by what it puts off in turn. A panic in one does not keep the others from running:
/// the outermost runs them all, then resumes the first panic.
pub(crate) fn in_constant_stack(f: impl FnOnce() + 'static) {
    struct Restore(u32);
    impl Drop for Restore {
        fn drop(&mut self) {
            NESTED.with(|n| n.set(self.0));
        }
    }
    let depth = NESTED.with(Cell::get);
    if depth >= NESTED_IN_ONE_STACK {
        // While this thread's locals are being destroyed, the list may be gone: run it now.
        let mut f = Some(f);
        let _ = LATER.try_with(|later| {
            if let Some(f) = f.take() {
                later.borrow_mut().push(Box::new(f));
            }
        });
        if let Some(f) = f {
            f();
        }
        return;
    }
    NESTED.with(|n| n.set(depth + 1));
    let _restore = Restore(depth);
    if depth > 0 {
        return f();
    }
    // The outermost: its own, then those put off, each under its own guard.
    let mut panicked = run_putting_off(f);
    while let Some(next) = LATER
        .try_with(|later| later.borrow_mut().pop())
        .ok()
        .flatten()
    {
        // Run whatever came before: a panic here keeps the first.
        let this_one = run_putting_off(next);
        if panicked.is_none() {
            panicked = this_one;
        }
    }
    if let Some(payload) = panicked {
        resume_unwind(payload);
    }
}

/// Runs `f` for [`in_constant_stack`]'s outermost call, and turns what it put off around, so
/// that the list's last (the next taken) is the first it put off; says how it panicked, if it
/// did.
fn run_putting_off(f: impl FnOnce()) -> Option<Box<dyn Any + Send>> {
    let before = LATER.try_with(|later| later.borrow().len()).unwrap_or(0);
    let panicked = catch_unwind(AssertUnwindSafe(f)).err();
    let _ = LATER.try_with(|later| {
        if let Some(put_off) = later.borrow_mut().get_mut(before..) {
            put_off.reverse();
        }
    });
    panicked
}

/// Whether so many arrivals are nested on this thread's stack already that the next must go
/// through the run loop (`Chain::arrive_in_the_loop`), so that fan-ins nested to any depth run
/// in constant stack.
#[inline]
pub(crate) fn arrivals_nest_deep() -> bool {
    ARRIVING.with(|n| n.get() >= NESTED_IN_ONE_STACK)
}

/// Whether deliveries wait in this thread's queue: a chain running its steps lets them go first
/// after each step, so a Deferred fired from inside a callback runs as soon as that callback
/// returns.
#[inline]
pub(crate) fn has_queued() -> bool {
    QUEUED.with(|n| n.get() != 0)
}

/// The next queued delivery; none once this thread's queue has been destroyed.
fn next_queued() -> Option<Queued> {
    let next = QUEUE
        .try_with(|q| q.borrow_mut().pop_front())
        .ok()
        .flatten();
    if next.is_some() {
        QUEUED.with(|n| n.set(n.get() - 1));
    }
    next
}

fn drain() {
    while let Some(next) = next_queued() {
        next.deliver();
    }
}

/// Runs `first` as the outermost delivery on this thread, then everything it queued, in order;
/// only call outside the run loop.
pub(crate) fn run(first: impl FnOnce()) {
    RUNNING.with(|r| r.set(true));
    // Clears the flag even if a panic leaves this function, so the thread's next firing runs.
    struct Exit;
    impl Drop for Exit {
        #[inline]
        fn drop(&mut self) {
            RUNNING.with(|r| r.set(false));
        }
    }
    let _exit = Exit;
    // User code runs under `catch_unwind` inside a delivery, so only a panicking `Drop` of a user
    // value (a result nobody holds, an error being reported) unwinds out of one. The rest of the
    // queue is still delivered — other chains are not lost, nor left waiting for this thread's
    // next firing — and the first such panic goes on once the queue is empty.
    let mut panicked = catch_unwind(AssertUnwindSafe(first)).err();
    // Most runs queue nothing: skip the queue's thread-local then.
    while has_queued()
        && let Err(payload) = catch_unwind(drain)
    {
        panicked.get_or_insert(payload);
    }
    if let Some(payload) = panicked {
        resume_unwind(payload);
    }
}

/// Delivers everything queued on this thread's run loop, if this thread is inside it: a
/// callback that blocks on a chain it fired (`wait` inside a callback) would otherwise wait for
/// deliveries that only run after it returns.
pub(crate) fn drain_queued() {
    if is_running() {
        drain();
    }
}

/// How a thread waits for work other threads post to it: runs one posted item, waiting for one
/// until `until` at most (for ever with `None`; a wait that times out runs nothing), and says
/// `false` once nothing can post to it (its inbox is gone).
pub(crate) type RunOnePosted = fn(until: Option<std::time::Instant>) -> bool;

/// Makes `run_one` the way this thread waits for work other threads post to it (its event
/// loop's inbox registers itself).
pub(crate) fn wait_for_posted_work_with(run_one: RunOnePosted) {
    POSTED.with(|posted| posted.set(Some(run_one)));
}

/// Runs one item other threads posted to this thread, waiting for one until `until` at most;
/// `false` if nothing can post to it (no inbox). What a blocking `wait` on a local chain does
/// instead of parking.
pub(crate) fn run_one_posted(until: Option<std::time::Instant>) -> bool {
    POSTED.with(Cell::get).is_some_and(|run_one| run_one(until))
}

/// When a blocking `wait` says it may never return, once it has blocked [`STUCK_AFTER`]: on
/// the thread of a current-thread tokio runtime (feature `tokio`, see
/// `tokio::wait_blocks_a_runtime`), or of a calloop loop that drains this thread's inbox
/// (feature `calloop`, see `calloop::wait_blocks_a_loop`); elsewhere, never. Both kinds'
/// `Blocker` keep one for the `wait` they block.
pub(crate) struct StuckWait(Option<(std::time::Instant, Blocked)>);

/// How long a `wait` blocks a loop's thread before it says it may never return.
#[cfg_attr(not(any(feature = "tokio", feature = "calloop")), allow(dead_code))]
pub(crate) const STUCK_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

/// What a `wait` blocks, that may be what would fire it.
#[derive(Clone, Copy)]
#[cfg_attr(not(any(feature = "tokio", feature = "calloop")), allow(dead_code))]
enum Blocked {
    TokioRuntime,
    CalloopLoop,
}

impl StuckWait {
    pub(crate) fn new() -> StuckWait {
        let blocked = if cfg!(feature = "tokio") && tokio_runtime_here() {
            Some(Blocked::TokioRuntime)
        } else if cfg!(feature = "calloop") && calloop_loop_here() {
            Some(Blocked::CalloopLoop)
        } else {
            None
        };
        StuckWait(blocked.map(|blocked| (std::time::Instant::now() + STUCK_AFTER, blocked)))
    }

    /// Says, once, why the `wait` at `at` (of a `LocalDeferred` if `local`) may never return,
    /// if its time has come; gives until when to block before that time (`None`: for as long
    /// as it takes).
    pub(crate) fn until(
        &mut self,
        at: &'static std::panic::Location<'static>,
        local: bool,
    ) -> Option<std::time::Instant> {
        if let Some((due, blocked)) = self.0
            && std::time::Instant::now() >= due
        {
            self.0 = None;
            match blocked {
                #[cfg(feature = "tokio")]
                Blocked::TokioRuntime => crate::tokio::warn_wait_blocks_a_runtime(at, local),
                #[cfg(feature = "calloop")]
                Blocked::CalloopLoop => crate::calloop::warn_wait_blocks_a_loop(at),
                #[allow(unreachable_patterns)]
                _ => {}
            }
        }
        let _ = (at, local);
        self.0.map(|(due, _)| due)
    }
}

/// Whether this thread runs a current-thread tokio runtime (feature `tokio`).
fn tokio_runtime_here() -> bool {
    #[cfg(feature = "tokio")]
    return crate::tokio::wait_blocks_a_runtime();
    #[cfg(not(feature = "tokio"))]
    false
}

/// Whether a calloop loop of this thread drains its inbox (feature `calloop`).
fn calloop_loop_here() -> bool {
    #[cfg(feature = "calloop")]
    return crate::calloop::wait_blocks_a_loop();
    #[cfg(not(feature = "calloop"))]
    false
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::rc::Rc;

    /// A comb 40 deep: each call logs its name, then makes two nested calls, the first of
    /// which goes on down; `nested` makes them through `in_constant_stack` (past 16 nested,
    /// put off), or as plain calls.
    fn comb(
        log: &Rc<RefCell<Vec<String>>>,
        name: String,
        depth: u32,
        nested: bool,
        panic_at: &str,
    ) {
        let log_here = log.clone();
        let panic_at = panic_at.to_owned();
        let body = move || {
            log_here.borrow_mut().push(name.clone());
            if name == panic_at {
                panic!("a call put off panics");
            }
            if depth < 40 {
                comb(&log_here, format!("{name}a"), depth + 1, nested, &panic_at);
                comb(&log_here, format!("{name}b"), 40, nested, &panic_at);
            }
        };
        if nested {
            in_constant_stack(body);
        } else {
            body();
        }
    }

    #[test]
    fn calls_put_off_all_run_before_the_outermost_returns_each_followed_by_its_own() {
        let (put_off, plain) = (Rc::default(), Rc::default());
        comb(&put_off, "r".into(), 0, true, "");
        comb(&plain, "r".into(), 0, false, "");
        let (mut put_off, mut plain) = (put_off.take(), plain.take());
        assert_eq!(put_off.len(), 81);
        // The calls 16 deep and more wait for the outermost's own, so run after the shallow
        // `b`s that plain calls would run after them ...
        let at = |log: &[String], name: &str| log.iter().position(|n| n == name);
        let deep = format!("r{}", "a".repeat(16));
        assert!(at(&put_off, "rb") < at(&put_off, &deep));
        assert!(at(&plain, "rb") > at(&plain, &deep));
        // ... each followed by what it makes in turn, in the order it made them.
        assert!(at(&put_off, &format!("{deep}a")) < at(&put_off, &format!("{deep}b")));
        // The same calls, all run.
        put_off.sort();
        plain.sort();
        assert_eq!(put_off, plain);
    }

    #[test]
    fn a_call_put_off_that_panics_leaves_the_others_run_then_the_panic_resumes() {
        let log: Rc<RefCell<Vec<String>>> = Rc::default();
        // The 21st call down the comb is put off; it panics.
        let deep = format!("r{}", "a".repeat(20));
        let caught = catch_unwind(AssertUnwindSafe(|| comb(&log, "r".into(), 0, true, &deep)));
        assert!(caught.is_err(), "the panic resumes in the outermost call");
        // The call 16 down was put off; 20 down, inside it, one panics. Not run: the 40 calls
        // it would have made, and the `b`s of the 4 calls between (their frames unwound, in
        // that call put off). Run: all the rest, among them the call put off after it (`b`
        // of 15 down).
        let log = log.take();
        assert_eq!(log.len(), 81 - 40 - 4);
        assert!(log.contains(&format!("r{}b", "a".repeat(15))));
        assert!(!log.contains(&format!("r{}b", "a".repeat(16))));
        assert_eq!(NESTED.with(Cell::get), 0);
        assert!(LATER.with(|later| later.borrow().is_empty()));
    }
}
