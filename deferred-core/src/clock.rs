//! Time, as the helpers see it: the `Clock` trait (Twisted's `IReactorTime.callLater`), the
//! `DelayedCall` it hands back, `ThreadClock` (real time, for a program of plain threads), and
//! `ManualClock`, a clock that only moves when a test says so (Twisted's `task.Clock`).
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, PoisonError, Weak};
use std::time::Duration;

// The schedule's lock: std's, loom's under `--cfg loom` (`crate::sync`), so that loom sees an
// `advance` and a cancel on two threads meet in it (with std's, each model of a timed helper in
// tests/loom.rs explored one interleaving).
use crate::sync::{Mutex, MutexGuard};

/// Something that can run a function later: what [`add_timeout`](crate::Deferred::add_timeout)
/// needs to know about time. Implement it for your event loop's timers; use [`ManualClock`] in
/// tests.
///
/// The trait is object-safe, and a clock behind a reference or a pointer is a clock too (`&C`,
/// `Box<C>`, `Arc<C>`, with `C` a clock or a `dyn Clock`): a program that picks its clock at run
/// time keeps a `Box<dyn Clock + Send + Sync>` (or an `Arc` of one) and gives it where a clock
/// is asked for.
///
/// ```
/// # extern crate deferred_core as deferred;
/// use std::time::Duration;
/// use deferred::{Clock, DelayedCall, ManualClock};
///
/// // A clock that forwards to another one, counting the calls it schedules.
/// struct Counting<'a> { inner: &'a ManualClock, scheduled: std::cell::Cell<u32> }
///
/// impl Clock for Counting<'_> {
///     fn call_later(&self, delay: Duration, call: Box<dyn FnOnce() + Send>) -> DelayedCall {
///         self.scheduled.set(self.scheduled.get() + 1);
///         self.inner.call_later(delay, call)
///     }
/// }
///
/// let manual = ManualClock::new();
/// let clock = Counting { inner: &manual, scheduled: Default::default() };
/// let _timer = clock.call_later(Duration::from_secs(1), Box::new(|| println!("tick")));
/// assert_eq!(clock.scheduled.get(), 1);
/// ```
// The clocks' impls are `do_not_recommend`: the messages below name them, and the compiler's
// own list of them would change with the features.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a `Clock`: it cannot time a `Deferred` or its helpers",
    label = "not a `Clock`",
    note = "a `Deferred` is timed by a `Clock` (`ThreadClock`, `ManualClock`, `TokioClock` with \
            the `tokio` feature, or an `Arc` or a `Box` of one), given by value to `retry` and \
            `LoopingCall::new`, and by reference to `add_timeout` and `defer_later`",
    note = "a loop's own clock (`InboxClock`, `TokioLocalClock`, `CalloopClock`) times a \
            `LocalDeferred`: take the Deferred home first (`inbox.adopt(d)`), or use the helper \
            of `deferred::local`"
)]
pub trait Clock {
    /// Runs `call` once, `delay` from now (on whatever thread the clock runs timers), unless the
    /// returned [`DelayedCall`] is cancelled first.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use deferred::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// let rang = Arc::new(AtomicBool::new(false));
    /// let flag = rang.clone();
    /// let _alarm = clock.call_later(Duration::from_secs(5), Box::new(move || flag.store(true, Ordering::SeqCst)));
    /// clock.advance(Duration::from_secs(5));
    /// assert!(rang.load(Ordering::SeqCst));
    /// ```
    fn call_later(&self, delay: Duration, call: Box<dyn FnOnce() + Send>) -> DelayedCall;

    /// The time on this clock, as the time since a fixed point of the clock's choosing: what
    /// [`LoopingCall`](crate::LoopingCall) and [`retry`](crate::retry) measure intervals and
    /// deadlines with (Twisted's `IReactorTime.seconds`). Only differences between two readings
    /// mean anything.
    ///
    /// The default reads the system's monotonic clock ([`std::time::Instant`]), right for a
    /// clock whose calls run in real time; a clock with a time of its own ([`ManualClock`], a
    /// paused tokio clock) gives that.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use std::time::Duration;
    /// use deferred::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// clock.advance(Duration::from_secs(2));
    /// assert_eq!(Clock::now(&clock), Duration::from_secs(2));
    /// ```
    fn now(&self) -> Duration {
        system_now()
    }
}

/// The time since the first reading, on the system's monotonic clock.
pub(crate) fn system_now() -> Duration {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    EPOCH.get_or_init(std::time::Instant::now).elapsed()
}

/// A call scheduled by [`Clock::call_later`]: [`cancel`](DelayedCall::cancel) it to stop it from
/// running (Twisted's `IDelayedCall`). Dropping it does not cancel the call.
///
/// ```
/// # extern crate deferred_core as deferred;
/// use std::time::Duration;
/// use deferred::{Clock, DelayedCall, ManualClock};
///
/// let clock = ManualClock::new();
/// let call = clock.call_later(Duration::from_secs(1), Box::new(|| unreachable!("cancelled")));
/// call.cancel();
/// clock.advance(Duration::from_secs(2));
///
/// // A clock implementation makes one from whatever stops its timer.
/// let noop = DelayedCall::new(|| {});
/// noop.cancel();
/// ```
#[must_use = "keep the DelayedCall to cancel the call later; dropping it leaves the call scheduled"]
pub struct DelayedCall {
    cancel: Box<dyn FnOnce() + Send>,
}

impl DelayedCall {
    /// A handle whose [`cancel`](DelayedCall::cancel) runs `cancel`: for [`Clock`] implementations.
    /// Cancelling a call that has already run, or was already cancelled, must do nothing.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// let call = deferred::DelayedCall::new(|| println!("timer stopped"));
    /// call.cancel();
    /// ```
    pub fn new(cancel: impl FnOnce() + Send + 'static) -> DelayedCall {
        DelayedCall {
            cancel: Box::new(cancel),
        }
    }

    /// Stops the call from running; does nothing if it has already run.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use std::time::Duration;
    /// use deferred::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// let call = clock.call_later(Duration::from_secs(1), Box::new(|| {}));
    /// assert_eq!(clock.pending(), 1);
    /// call.cancel();
    /// assert_eq!(clock.pending(), 0);
    /// ```
    pub fn cancel(self) {
        (self.cancel)();
    }
}

impl fmt::Debug for DelayedCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DelayedCall").finish_non_exhaustive()
    }
}

/// Real time for a program with no event loop and no async runtime (plain threads): each call
/// runs on the crate's one timer thread when its delay has passed. A panic in a call is reported
/// as an unhandled failure; the timer thread goes on.
///
/// The calls a Deferred schedules are short — a deadline's cancel, a retry's next attempt, a
/// looping call's next run — but whatever they fire runs there too (a step runs on the thread
/// that fires its Deferred): a step that blocks on the timer thread holds every other timer back,
/// so hand slow work to another thread (`defer_to_thread`). With tokio, use `TokioClock`; on an
/// event loop, its own clock.
///
/// It is a unit struct: the value is `ThreadClock` itself (there is no `new`).
///
/// ```
/// # extern crate deferred_core as deferred;
/// use std::time::Duration;
/// use deferred::{Deferred, ThreadClock, TimedOut};
///
/// let (reply, _resolver) = Deferred::<String>::pending(); // never answers
/// let reply = reply.add_timeout(Duration::from_millis(20), &ThreadClock);
/// assert!(reply.wait().unwrap_err().is::<TimedOut>());
/// ```
#[derive(Clone, Debug, Default)]
pub struct ThreadClock;

// Unlisted in the clock traits' messages (see `Clock`).
#[diagnostic::do_not_recommend]
impl Clock for ThreadClock {
    fn call_later(&self, delay: Duration, call: Box<dyn FnOnce() + Send>) -> DelayedCall {
        let timer = crate::timer::after(delay, move || {
            crate::unhandled::run_reporting_panic("a timer's call", call)
        });
        DelayedCall::new(move || crate::timer::cancel(timer))
    }
}

/// A clock that stands still until [`advance`](ManualClock::advance) moves it (Twisted's
/// `task.Clock`): scheduled calls run inside `advance`, on the calling thread, in deadline order.
/// A call runs when the clock reaches its deadline exactly; a deadline past the end of
/// `Duration`'s time is never reached (`advance` stops at that end). Clones share one clock.
///
/// When its last handle is dropped, nobody can advance it: the calls waiting on it are dropped
/// unrun, and their chains hear of it as of any clock that drops its calls (a `defer_later`
/// fails with `NeverFired`, a `retry` waiting for its next attempt too, a `LoopingCall` stops
/// and the Deferred of its `start` fails with `NeverFired`; an `add_timeout` leaves its chain
/// untimed). The handle a `retry` or a `LoopingCall` was given (a `ManualClock`, or an `Arc` or
/// an `Rc` of one) does not count: they hold it weakly. Every other handle counts, including
/// one held by a call scheduled on the clock (the clock and the call then keep each other
/// alive, as an `Rc` cycle would) or by a clock of your own that forwards to it.
///
/// A local call (a `LocalDeferred`'s timeout, a local `retry`'s or `LoopingCall`'s next call)
/// lives on the thread that scheduled it, and only that thread can drop it: if the clock's last
/// handle is dropped on another thread, the call stays there, unrun, with what it holds, until
/// its thread ends (a local `retry` then neither retries nor fails, a local `LoopingCall`
/// neither runs nor stops). Drop a clock that times local chains on their thread. A local call
/// whose thread has ended stays in the schedule too, and in [`pending`](ManualClock::pending),
/// for as long as the clock lives: no `advance` can run it.
///
/// ```
/// # extern crate deferred_core as deferred;
/// use std::time::Duration;
/// use deferred::{Deferred, ManualClock, TimedOut};
///
/// let clock = ManualClock::new();
/// let (reply, _resolver) = Deferred::<String>::pending();
/// let reply = reply.add_timeout(Duration::from_secs(10), &clock);
///
/// clock.advance(Duration::from_millis(9_999));
/// assert!(!reply.is_fired());
/// clock.advance(Duration::from_millis(1)); // exactly at the deadline
/// assert!(reply.wait().unwrap_err().is::<TimedOut>());
/// assert_eq!(clock.now(), Duration::from_secs(10));
/// ```
#[derive(Clone, Default)]
pub struct ManualClock {
    schedule: Arc<Mutex<Schedule>>,
}

#[derive(Default)]
struct Schedule {
    /// Time since the clock was made.
    now: Duration,
    /// Scheduled calls, by deadline (in nanoseconds: a deadline past the end of `Duration`'s
    /// time is kept as it is, and never reached), then by order of scheduling; each with the
    /// thread it must run on (a local call's), if any.
    calls: BTreeMap<(u128, u64), (Option<std::thread::ThreadId>, Call)>,
    next_id: u64,
}

/// A call a [`ManualClock`] has scheduled.
type Call = Box<dyn FnOnce() + Send>;

fn lock(schedule: &Mutex<Schedule>) -> MutexGuard<'_, Schedule> {
    // No user code runs under the lock (calls run after it is released).
    schedule.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ManualClock {
    /// A clock at time zero with nothing scheduled.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// let clock = deferred::ManualClock::new();
    /// assert_eq!(clock.now(), std::time::Duration::ZERO);
    /// ```
    pub fn new() -> ManualClock {
        ManualClock::default()
    }

    /// How far the clock has been advanced since it was made.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use std::time::Duration;
    /// let clock = deferred::ManualClock::new();
    /// clock.advance(Duration::from_secs(3));
    /// assert_eq!(clock.now(), Duration::from_secs(3));
    /// ```
    pub fn now(&self) -> Duration {
        lock(&self.schedule).now
    }

    /// How many calls are scheduled and have neither run nor been cancelled.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use std::time::Duration;
    /// use deferred::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// let _call = clock.call_later(Duration::from_secs(1), Box::new(|| {}));
    /// assert_eq!(clock.pending(), 1);
    /// clock.advance(Duration::from_secs(1));
    /// assert_eq!(clock.pending(), 0);
    /// ```
    pub fn pending(&self) -> usize {
        lock(&self.schedule).calls.len()
    }

    /// Moves the clock forward by `by`, running every call whose deadline is reached, in deadline
    /// order. While a call runs, the clock reads that call's deadline, so a call it schedules is
    /// timed from there (and runs in this same `advance` if it falls due within it).
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use std::sync::{Arc, Mutex};
    /// use std::time::Duration;
    /// use deferred::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// let log = Arc::new(Mutex::new(Vec::new()));
    /// for secs in [3, 1, 2] {
    ///     let log = log.clone();
    ///     let _call = clock.call_later(Duration::from_secs(secs), Box::new(move || log.lock().unwrap().push(secs)));
    /// }
    /// clock.advance(Duration::from_secs(2));
    /// assert_eq!(*log.lock().unwrap(), [1, 2]);
    /// clock.advance(Duration::from_secs(1));
    /// assert_eq!(*log.lock().unwrap(), [1, 2, 3]);
    /// ```
    pub fn advance(&self, by: Duration) {
        let target = lock(&self.schedule).now.saturating_add(by);
        let here = std::thread::current().id();
        loop {
            let call = {
                let mut schedule = lock(&self.schedule);
                // The first call due that may run here: a local call scheduled on another
                // thread stays scheduled, for an `advance` on its own thread.
                let due = schedule
                    .calls
                    .iter()
                    .take_while(|((deadline, _), _)| *deadline <= target.as_nanos())
                    .find(|(_, (home, _))| home.is_none_or(|home| home == here))
                    .map(|(key, _)| *key);
                match due.and_then(|key| schedule.calls.remove_entry(&key)) {
                    Some(((deadline, _), (_, call))) => {
                        // At most `target`: it fits a `Duration`.
                        let deadline = Duration::new(
                            (deadline / 1_000_000_000) as u64,
                            (deadline % 1_000_000_000) as u32,
                        );
                        schedule.now = schedule.now.max(deadline);
                        call
                    }
                    _ => {
                        schedule.now = schedule.now.max(target);
                        return;
                    }
                }
            };
            call();
        }
    }
}

// Unlisted in the clock traits' messages (see `Clock`).
#[diagnostic::do_not_recommend]
impl Clock for ManualClock {
    fn now(&self) -> Duration {
        ManualClock::now(self)
    }

    fn call_later(&self, delay: Duration, call: Box<dyn FnOnce() + Send>) -> DelayedCall {
        self.schedule(delay, None, call)
    }
}

impl ManualClock {
    /// Schedules `call` after `delay`, to run in an `advance` on any thread (`home`: `None`), or
    /// only in one on the thread `home`.
    fn schedule(
        &self,
        delay: Duration,
        home: Option<std::thread::ThreadId>,
        call: Box<dyn FnOnce() + Send>,
    ) -> DelayedCall {
        let key = {
            let mut schedule = lock(&self.schedule);
            // A deadline past the end of `Duration`'s time is never reached (as on the other
            // clocks), not due at its end: else, once the clock has reached that end, a call
            // that schedules another one (a `LoopingCall`'s) would run again within the same
            // `advance`, for ever. (In nanoseconds, the sum cannot overflow.)
            let key = (schedule.now.as_nanos() + delay.as_nanos(), schedule.next_id);
            schedule.next_id += 1;
            schedule.calls.insert(key, (home, call));
            key
        };
        let schedule: Weak<Mutex<Schedule>> = Arc::downgrade(&self.schedule);
        DelayedCall::new(move || {
            if let Some(schedule) = schedule.upgrade() {
                // Take the call out under the lock, drop it after: its captures may be anything.
                let removed = lock(&schedule).calls.remove(&key);
                drop(removed);
            }
        })
    }
}

/// How a helper whose scheduled calls hold the helper (a `retry`'s next attempt, a
/// `LoopingCall`'s next call) holds its clock: as given, but a [`ManualClock`] (alone, or in an
/// `Arc` or an `Rc`) weakly. A `ManualClock` only moves when a handle of it is advanced, and its
/// schedule lives as long as its handles: a handle in the helper, held by a call in the schedule,
/// would keep the schedule, the call and the helper for ever once the user's handles are gone
/// (nothing can advance the clock then). Held weakly, the schedule is dropped with the user's
/// last handle, its calls with it, and the helper hears of it as of any clock that drops its
/// calls (a `retry` fails with `NeverFired`, a `LoopingCall` stops). Once the clock is gone, a
/// call made on it is dropped at once, and it reads zero.
pub(crate) struct HeldClock<C>(Held<C>);

enum Held<C> {
    Given(C),
    Manual(Weak<Mutex<Schedule>>),
}

impl<C: 'static> HeldClock<C> {
    pub(crate) fn new(clock: C) -> HeldClock<C> {
        let any: &dyn std::any::Any = &clock;
        let manual = any
            .downcast_ref::<ManualClock>()
            .or_else(|| any.downcast_ref::<Arc<ManualClock>>().map(|clock| &**clock))
            .or_else(|| {
                any.downcast_ref::<std::rc::Rc<ManualClock>>()
                    .map(|clock| &**clock)
            });
        HeldClock(match manual {
            Some(manual) => Held::Manual(Arc::downgrade(&manual.schedule)),
            None => Held::Given(clock),
        })
    }
}

impl<C> HeldClock<C> {
    /// The clock given, or the `ManualClock` while a handle of it lives.
    fn get(&self) -> Option<Either<&C>> {
        match &self.0 {
            Held::Given(clock) => Some(Either::Given(clock)),
            Held::Manual(schedule) => schedule
                .upgrade()
                .map(|schedule| Either::Manual(ManualClock { schedule })),
        }
    }

    /// The time: the given clock's (read with `now`), the `ManualClock`'s, or zero once it is
    /// gone.
    fn now_with(&self, now: impl FnOnce(&C) -> Duration) -> Duration {
        match self.get() {
            Some(Either::Given(clock)) => now(clock),
            Some(Either::Manual(clock)) => ManualClock::now(&clock),
            None => Duration::ZERO,
        }
    }
}

/// What [`HeldClock::get`] gives.
enum Either<C> {
    Given(C),
    Manual(ManualClock),
}

#[diagnostic::do_not_recommend]
impl<C: Clock> Clock for HeldClock<C> {
    fn call_later(&self, delay: Duration, call: Box<dyn FnOnce() + Send>) -> DelayedCall {
        match self.get() {
            Some(Either::Given(clock)) => clock.call_later(delay, call),
            Some(Either::Manual(clock)) => Clock::call_later(&clock, delay, call),
            None => {
                // Nobody can advance the clock: the call can never run.
                drop(call);
                DelayedCall::new(|| {})
            }
        }
    }

    fn now(&self) -> Duration {
        self.now_with(<C as Clock>::now)
    }
}

#[diagnostic::do_not_recommend]
impl<C: LocalClock> LocalClock for HeldClock<C> {
    fn call_later(&self, delay: Duration, call: Box<dyn FnOnce()>) -> LocalDelayedCall {
        match self.get() {
            Some(Either::Given(clock)) => clock.call_later(delay, call),
            Some(Either::Manual(clock)) => LocalClock::call_later(&clock, delay, call),
            None => {
                // Nobody can advance the clock: the call can never run.
                drop(call);
                LocalDelayedCall::new(|| {})
            }
        }
    }

    fn now(&self) -> Duration {
        self.now_with(<C as LocalClock>::now)
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let schedule = lock(&self.schedule);
        f.debug_struct("ManualClock")
            .field("now", &schedule.now)
            .field("pending", &schedule.calls.len())
            .finish()
    }
}

/// Something that can run a function later on this thread: what
/// [`LocalDeferred::add_timeout`](crate::LocalDeferred::add_timeout) needs to know about time.
/// The local twin of [`Clock`]: the call need not be `Send`, and runs on the thread that
/// scheduled it.
///
/// Implemented by each event loop's clock ([`InboxClock`](crate::InboxClock) for any loop that
/// drains an [`Inbox`](crate::Inbox), `TokioLocalClock` with the `tokio` feature,
/// `CalloopClock` with the `calloop` feature) and by [`ManualClock`] for tests.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a `LocalClock`: it cannot time a `LocalDeferred` or its helpers",
    label = "not a `LocalClock`",
    note = "a `LocalDeferred` is timed by its loop's clock (`inbox.clock()`, `TokioLocalClock` \
            with the `tokio` feature, `CalloopClock` with `calloop`) or a `ManualClock`; a \
            `TokioClock` times a `Deferred`"
)]
pub trait LocalClock {
    /// Runs `call` once, `delay` from now, on this thread, unless the returned
    /// [`LocalDelayedCall`] is cancelled first.
    fn call_later(&self, delay: Duration, call: Box<dyn FnOnce()>) -> LocalDelayedCall;

    /// The time on this clock, as the time since a fixed point of the clock's choosing (see
    /// [`Clock::now`]; the default reads the system's monotonic clock).
    fn now(&self) -> Duration {
        system_now()
    }
}

/// A clock behind a reference or a pointer is that clock (see [`Clock`]).
macro_rules! forward_clock {
    ($clock:ident, $call:ty, $delayed:ty, $($pointer:ty),+) => {$(
        // Unlisted in the clock traits' messages (see `Clock`).
        #[diagnostic::do_not_recommend]
        impl<C: $clock + ?Sized> $clock for $pointer {
            fn call_later(&self, delay: Duration, call: $call) -> $delayed {
                (**self).call_later(delay, call)
            }

            fn now(&self) -> Duration {
                (**self).now()
            }
        }
    )+};
}

forward_clock!(
    Clock,
    Box<dyn FnOnce() + Send>,
    DelayedCall,
    &C,
    Box<C>,
    Arc<C>
);
forward_clock!(
    LocalClock,
    Box<dyn FnOnce()>,
    LocalDelayedCall,
    &C,
    Box<C>,
    std::rc::Rc<C>
);

/// A call scheduled by [`LocalClock::call_later`]: [`cancel`](LocalDelayedCall::cancel) it to
/// stop it from running. Dropping it does not cancel the call.
#[must_use = "keep the LocalDelayedCall to cancel the call later; dropping it leaves the call scheduled"]
pub struct LocalDelayedCall {
    cancel: Box<dyn FnOnce()>,
}

impl LocalDelayedCall {
    /// A handle whose [`cancel`](LocalDelayedCall::cancel) runs `cancel`: for [`LocalClock`]
    /// implementations. Cancelling a call that has already run, or was already cancelled, must
    /// do nothing.
    pub fn new(cancel: impl FnOnce() + 'static) -> LocalDelayedCall {
        LocalDelayedCall {
            cancel: Box::new(cancel),
        }
    }

    /// Stops the call from running, if it has not run yet.
    pub fn cancel(self) {
        (self.cancel)();
    }
}

impl fmt::Debug for LocalDelayedCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalDelayedCall").finish_non_exhaustive()
    }
}

std::thread_local! {
    /// Calls a [`ManualClock`] scheduled for local chains, by key: they are not `Send`, so the
    /// clock's schedule holds only their key, and they stay on the thread that scheduled them.
    static LOCAL_CALLS: std::cell::RefCell<std::collections::HashMap<u64, Box<dyn FnOnce()>>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// The key of a local call a [`ManualClock`] scheduled: taking it, or dropping it on the thread
/// that scheduled the call, takes the call out of [`LOCAL_CALLS`].
struct TakeOnDrop(u64);

impl TakeOnDrop {
    fn take(&self) -> Option<Box<dyn FnOnce()>> {
        // Out of the map, then out of its borrow: the call's captures may be anything.
        LOCAL_CALLS
            .try_with(|calls| calls.borrow_mut().remove(&self.0))
            .ok()
            .flatten()
    }
}

impl Drop for TakeOnDrop {
    fn drop(&mut self) {
        drop(self.take());
    }
}

/// The key of the next local call a [`ManualClock`] schedules (unique across clocks).
static NEXT_LOCAL_CALL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A `ManualClock` serves local chains too. A local call runs when the clock is advanced on the
/// thread that scheduled it (the only thread a local chain lives on). An `advance` on another
/// thread past its deadline leaves it scheduled: it runs (late) at the next `advance` on its
/// own thread (by any amount, `Duration::ZERO` too), in deadline order with the calls due then.
// Unlisted in the clock traits' messages (see `Clock`).
#[diagnostic::do_not_recommend]
impl LocalClock for ManualClock {
    fn now(&self) -> Duration {
        ManualClock::now(self)
    }

    fn call_later(&self, delay: Duration, call: Box<dyn FnOnce()>) -> LocalDelayedCall {
        let key = NEXT_LOCAL_CALL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        LOCAL_CALLS.with(|calls| calls.borrow_mut().insert(key, call));
        // The schedule's call owns the local call: when the schedule drops it unrun (the clock
        // dropped), the local call goes too, if it is dropped on this thread.
        let local = TakeOnDrop(key);
        let scheduled = self.schedule(
            delay,
            Some(std::thread::current().id()),
            Box::new(move || {
                if let Some(call) = local.take() {
                    call();
                }
            }),
        );
        LocalDelayedCall::new(move || {
            scheduled.cancel();
            drop(TakeOnDrop(key).take());
        })
    }
}
