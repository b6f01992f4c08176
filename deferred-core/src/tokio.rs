//! Runtime glue for tokio (the `tokio` feature): a future as a Deferred, and tokio's timers as a
//! [`Clock`] for [`Deferred::add_timeout`]; for local chains, a thread's [`Inbox`] drained by a
//! task on a [`LocalSet`](tokio::task::LocalSet) ([`Inbox::on_tokio_local_set`]), tokio's
//! timers as a [`LocalClock`] ([`TokioLocalClock`]), and a `!Send` future as a
//! [`LocalDeferred`] ([`LocalDeferred::from_future`]).
//!
//! The other direction needs no glue: a [`Deferred`] (or a [`LocalDeferred`]) is a [`Future`]
//! already, so `.await` it.
#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::future::Future;
use std::panic::{AssertUnwindSafe, Location, catch_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll};
use std::thread::LocalKey;
use std::time::Duration;

use crate::run_loop::STUCK_AFTER;

use tokio::task::AbortHandle;

use crate::bounds::FromFailure;
use crate::drive::{Awaited, AwaitedHandle, Noted, cancel_each, noting_awaited};
use crate::inbox::{Drained, WeakInbox};
use crate::{
    Clock, Deferred, DelayedCall, Failure, Inbox, LocalClock, LocalDeferred, LocalDelayedCall,
    LocalResolver, unhandled,
};

/// Panics at the caller's line, saying what to write, unless this thread is inside a tokio
/// runtime (tokio's own panic would point inside tokio, and name its function, not the user's).
#[track_caller]
fn expect_runtime(what: &str, instead: &str) {
    if tokio::runtime::Handle::try_current().is_err() {
        panic!(
            "{what} needs a tokio runtime, and this thread is not inside one: call it inside the \
             runtime (in `#[tokio::main]`, `Runtime::block_on` or a task){instead}"
        );
    }
}

/// Whether this thread runs a current-thread tokio runtime (or a task of one), where `wait`
/// on a Deferred that a task of that runtime would fire never returns: the task cannot run
/// while `wait` blocks the runtime's only thread. A thread of the runtime's blocking pool
/// (`spawn_blocking`) may wait: it is not the runtime's thread. Tokio says which thread is
/// which only by its name (`tokio-rt-worker`; `tokio-runtime-worker` in older tokio), so a
/// runtime that names its threads otherwise gets the warning on its blocking pool too, as does
/// a thread of its own that entered the runtime (`Handle::enter`): tokio does not say whether
/// this thread drives the runtime. The warning says "if".
pub(crate) fn wait_blocks_a_runtime() -> bool {
    tokio::runtime::Handle::try_current().is_ok_and(|runtime| {
        matches!(
            runtime.runtime_flavor(),
            tokio::runtime::RuntimeFlavor::CurrentThread
        )
    }) && !matches!(
        std::thread::current().name(),
        Some("tokio-rt-worker" | "tokio-runtime-worker")
    )
}

/// Says, once for a `wait` at `at` that has blocked [`STUCK_AFTER`] on the thread of a
/// current-thread runtime, why it may never return (a hang that says nothing is the worst of
/// mistakes to find). Written to stderr: it is not a failure of any chain.
pub(crate) fn warn_wait_blocks_a_runtime(at: &'static Location<'static>, local: bool) {
    // A `LocalDeferred` cannot be waited on from another thread.
    let or_elsewhere = if local {
        ""
    } else {
        ", or wait on another thread (`spawn_blocking`)"
    };
    // A stderr that cannot be written to (a pipe whose reader is gone) loses the warning, and
    // does not panic inside `wait`.
    crate::unhandled::write_stderr(&format!(
        "deferred: `wait` at {at} has blocked for {STUCK_AFTER:?} on the thread of a \
         current-thread tokio runtime: if a task of that runtime fires this Deferred, it never \
         will, since `wait` keeps the runtime's only thread from running it. `.await` the \
         Deferred instead (it is a Future){or_elsewhere}."
    ));
}

#[cfg(feature = "tokio")] // on the item too: docs.rs shows it on the facade's pages
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
impl<T, E> Deferred<T, E>
where
    T: Send + 'static,
    E: FromFailure + Send + 'static,
{
    /// Spawns `future` on the current tokio runtime and returns a Deferred of its output.
    /// Cancelling the Deferred cancels the Deferreds the future awaits (those its last poll left
    /// pending; a cancel that lands while it is being polled, on another thread or from inside
    /// the poll, cancels those that poll leaves pending, when it returns) and aborts the task,
    /// whose future drops them unread: the cancellations a cancel so causes are not reported.
    /// A panic in the future becomes a [`Failure`].
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime, as `tokio::spawn` does.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::{Deferred, Failure};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let d: Deferred<u32> = Deferred::from_future(async { Ok(40) });
    /// let d = d.add_callback(|x| Ok(x + 2));
    /// assert_eq!(d.await.unwrap(), 42);
    /// # }
    /// ```
    #[track_caller]
    pub fn from_future<F>(future: F) -> Deferred<T, E>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
    {
        expect_runtime(
            "`Deferred::from_future`",
            ", or enter it first (`let _entered = runtime.enter();`)",
        );
        let at = Location::caller();
        // The canceller needs the task's abort handle, which exists only once the task (which
        // needs the Resolver) is spawned: hand it over through a slot. A cancel that comes
        // before the slot is filled still fails the Deferred; the task's later fire is ignored.
        let abort_slot = Arc::new(OnceLock::<AbortHandle>::new());
        let slot = abort_slot.clone();
        let awaited = SendAwaited::default();
        let cancel_awaited = awaited.clone();
        let (deferred, resolver) = Deferred::with_canceller(move || {
            cancel_awaited.cancel();
            if let Some(task) = slot.get() {
                task.abort();
            }
        });
        resolver.held_by("from_future");
        // Guarded before the spawn: a cancel before the task's first poll drops it too.
        let future = CatchUnwind::new(future, awaited);
        let task = tokio::spawn(async move {
            let result = future.await;
            unhandled::run_reporting_panic("from_future's task", move || {
                let result = result.unwrap_or_else(|panic| {
                    Err(E::from(Failure::from_panic_in(panic, Some(at), "a future")))
                });
                unhandled::report_refused(resolver.settle_from(
                    result,
                    at,
                    crate::failure::EnteredBy::FromFuture,
                ));
            });
        });
        // Only this function fills the slot, once.
        let _ = abort_slot.set(task.abort_handle());
        deferred
    }
}

/// Polls a future, turning a panic into an `Err` with its payload; the future is dropped as
/// soon as it is done, before its output is handed on, and a panic in its `Drop` is the `Err`
/// too (it would otherwise unwind the task, and the Deferred fail with `NeverFired`). Each poll
/// notes in `A` the Deferreds it leaves pending, which the Deferred's canceller cancels before
/// it aborts the task (Twisted's cascade into what a coroutine awaits).
struct CatchUnwind<F, A: Awaits>(Option<Pin<Box<F>>>, A);

impl<F: Future, A: Awaits> CatchUnwind<F, A> {
    fn new(future: F, awaited: A) -> CatchUnwind<F, A> {
        CatchUnwind(Some(Box::pin(future)), awaited)
    }
}

/// Where a task's polls leave what its future awaits (the Deferreds of the task's kind the
/// last poll left pending), shared with the Deferred's canceller. A kind gives its cell and its
/// list ([`noting_awaited`]'s); the rule is written once, here.
trait Awaits: Unpin {
    /// The kind's cancel handle.
    type Handle: AwaitedHandle + 'static;
    /// The thread-local list the kind's `poll` notes a pending Deferred in.
    const LIST: &'static LocalKey<Awaited<Self::Handle>>;
    /// The other kind's handle and list, set aside while a poll runs (see [`noting_awaited`]).
    type OtherHandle: 'static;
    const OTHER: &'static LocalKey<Awaited<Self::OtherHandle>>;
    /// Runs `f` on what the task's polls noted (not across a cancel: the cell is not held while
    /// a Deferred is cancelled).
    fn with<R>(&self, f: impl FnOnce(&mut Noting<Self::Handle>) -> R) -> R;

    /// Runs `poll`, noting what it leaves pending in place of what the poll before noted. If
    /// a cancel landed during it and it left the future `pending` (as `pending` tells of its
    /// result), what it noted is cancelled now, on this thread, as the cancel would have.
    fn poll_noting<R>(&self, poll: impl FnOnce() -> R, pending: impl FnOnce(&R) -> bool) -> R {
        let mut awaited = self.with(Noting::start_poll);
        let polled = noting_awaited(Self::LIST, Self::OTHER, &mut awaited, poll);
        let cancelled = self.with(|noting| noting.end_poll(awaited, pending(&polled)));
        if let Some(awaited) = cancelled {
            // Left to this poll, outside the canceller: no place, as for a driven future (`drive.rs`).
            crate::failure::with_cancel_place(None, || self.cancel_noted(awaited));
        }
        polled
    }

    /// Cancels what the last poll noted and the future still awaits. A cancel that lands
    /// during a poll (on another thread, or from inside it) leaves that to the poll, when it
    /// returns (see [`poll_noting`](Awaits::poll_noting)): the task is aborted all the same.
    fn cancel(&self) {
        let awaited = self.with(Noting::take_for_cancel);
        self.cancel_noted(awaited);
    }

    /// Cancels each of `awaited` the future still awaits, and notes whether there were any.
    fn cancel_noted(&self, awaited: Vec<Noted<Self::Handle>>) {
        // Not polled after each: the task is aborted, and its future drops them unread.
        cancel_each(&awaited, || false);
        if !awaited.is_empty() {
            self.with(|noting| noting.cascaded = true);
        }
    }

    /// Whether [`cancel`](Awaits::cancel) cancelled something.
    fn cascaded(&self) -> bool {
        self.with(|noting| noting.cascaded)
    }
}

/// What a task's polls noted, and whether its Deferred's cancel cancelled some of it.
struct Noting<H> {
    awaited: Vec<Noted<H>>,
    cascaded: bool,
    /// A poll is running (its list is out).
    polling: bool,
    /// The Deferred was cancelled during the poll that is running: it cancels what it noted
    /// when it returns.
    cancelled_in_poll: bool,
}

impl<H> Default for Noting<H> {
    fn default() -> Noting<H> {
        Noting {
            awaited: Vec::new(),
            cascaded: false,
            polling: false,
            cancelled_in_poll: false,
        }
    }
}

impl<H> Noting<H> {
    /// A poll starts: its list is out meanwhile.
    fn start_poll(&mut self) -> Vec<Noted<H>> {
        self.polling = true;
        std::mem::take(&mut self.awaited)
    }

    /// A poll returned, having noted `awaited`: kept for a cancel, or given back to be
    /// cancelled now if a cancel landed during the poll and the future still awaits it.
    fn end_poll(&mut self, awaited: Vec<Noted<H>>, pending: bool) -> Option<Vec<Noted<H>>> {
        self.polling = false;
        if std::mem::take(&mut self.cancelled_in_poll) {
            return pending.then_some(awaited);
        }
        self.awaited = awaited;
        None
    }

    /// A cancel: what the last poll noted, or nothing if a poll is running (it cancels what
    /// it notes when it returns).
    fn take_for_cancel(&mut self) -> Vec<Noted<H>> {
        if self.polling {
            self.cancelled_in_poll = true;
        }
        std::mem::take(&mut self.awaited)
    }
}

/// For `Deferred::from_future`: the task may be polled on any of the runtime's threads.
#[derive(Clone, Default)]
struct SendAwaited(Arc<Mutex<Noting<crate::CancelHandle>>>);

impl Awaits for SendAwaited {
    type Handle = crate::CancelHandle;
    const LIST: &'static LocalKey<Awaited<crate::CancelHandle>> = &crate::drive::AWAITED;
    type OtherHandle = crate::local::CancelHandle;
    const OTHER: &'static LocalKey<Awaited<crate::local::CancelHandle>> = &crate::inbox::AWAITED;

    fn with<R>(&self, f: impl FnOnce(&mut Noting<crate::CancelHandle>) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// For `LocalDeferred::from_future`: the task is polled on this thread only.
#[derive(Clone, Default)]
struct LocalAwaited(Rc<RefCell<Noting<crate::local::CancelHandle>>>);

impl Awaits for LocalAwaited {
    type Handle = crate::local::CancelHandle;
    const LIST: &'static LocalKey<Awaited<crate::local::CancelHandle>> = &crate::inbox::AWAITED;
    type OtherHandle = crate::CancelHandle;
    const OTHER: &'static LocalKey<Awaited<crate::CancelHandle>> = &crate::drive::AWAITED;

    fn with<R>(&self, f: impl FnOnce(&mut Noting<crate::local::CancelHandle>) -> R) -> R {
        f(&mut self.0.borrow_mut())
    }
}

/// A future still held when the task is dropped unfinished (aborted: its Deferred was
/// cancelled) is dropped here; a panic in its `Drop` is reported (tokio would keep it in a
/// `JoinError` nobody reads). The Deferreds the cancel cancelled in it are dropped unread
/// (the aborted task never polls them again): their cancellations, which the cancel caused,
/// are not reported; any other failure still is. (The filter is by kind, not by chain: a
/// cancellation the future's own `Drop` makes and drops unread goes unreported too, when the
/// cancel cascaded.)
impl<F, A: Awaits> Drop for CatchUnwind<F, A> {
    fn drop(&mut self) {
        let Some(future) = self.0.take() else {
            return;
        };
        let drop_it = move || {
            unhandled::run_reporting_panic("a cancelled future's drop", move || drop(future));
        };
        // (While this thread's locals are being destroyed, no capture can start: a plain drop.)
        let capture = match self.1.cascaded() {
            true => crate::UnhandledCapture::try_start(),
            false => None,
        };
        let Some(capture) = capture else {
            return drop_it();
        };
        drop_it();
        let left = capture.finish();
        left.into_iter()
            .filter(|failure| !failure.is_cancelled())
            .for_each(unhandled::report_failure);
    }
}

impl<F: Future, A: Awaits> Future for CatchUnwind<F, A> {
    type Output = Result<F::Output, Box<dyn std::any::Any + Send>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some(future) = this.0.as_mut() else {
            unreachable!("polled after it completed");
        };
        let polled = this.1.poll_noting(
            || catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))),
            |polled| matches!(polled, Ok(Poll::Pending)),
        );
        let polled = match polled {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(output)) => Ok(output),
            Err(panic) => Err(panic),
        };
        let future = this.0.take();
        Poll::Ready(match catch_unwind(AssertUnwindSafe(move || drop(future))) {
            Ok(()) => polled,
            Err(panic) => Err(panic),
        })
    }
}

/// Real time for [`Deferred::add_timeout`]: tokio's timers, on the runtime it was made on.
///
/// Each call waits in a task of that runtime; on a runtime built without timers (no
/// `enable_time`), [`call_later`](Clock::call_later) panics, as [`tokio::time::sleep`] does,
/// rather than leave a timeout that never fires. A call not yet due when the runtime shuts down
/// is dropped with its task, never run: a timeout set on this clock then never fires (the
/// chain's own result can still come), and a `LoopingCall` on it fails with `NeverFired`.
///
/// ```
/// # extern crate deferred_core as deferred;
/// use std::time::Duration;
/// use deferred::{Deferred, Failure, TimedOut, TokioClock};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let clock = TokioClock::current();
/// let (slow, _resolver) = Deferred::<u32>::pending();
/// let slow = slow.add_timeout(Duration::from_millis(50), &clock);
/// assert!(slow.await.unwrap_err().is::<TimedOut>());
/// # }
/// ```
#[derive(Clone, Debug)]
#[cfg(feature = "tokio")] // on the item too: docs.rs shows it on the facade's pages
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub struct TokioClock {
    runtime: tokio::runtime::Handle,
}

#[cfg(feature = "tokio")] // on the item too: docs.rs shows it on the facade's pages
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
impl TokioClock {
    /// The clock of the tokio runtime this is called on.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    #[track_caller]
    pub fn current() -> TokioClock {
        expect_runtime(
            "`TokioClock::current()`",
            ", or make the clock from a handle: `TokioClock::new(runtime.handle().clone())`",
        );
        TokioClock {
            runtime: tokio::runtime::Handle::current(),
        }
    }

    /// The clock of the runtime behind `runtime`.
    pub fn new(runtime: tokio::runtime::Handle) -> TokioClock {
        TokioClock { runtime }
    }
}

/// Tokio's time (paused and advanced in tests), as the time since a point well before the
/// first reading. Not the first reading itself: a paused runtime's time starts when the runtime
/// is built and moves only when advanced, so a runtime built before the first reading (in any
/// runtime) reads times before it; measured from the first reading, they would all be zero, and
/// the differences between them, which are all a clock's `now` means, would be lost.
fn tokio_now() -> Duration {
    /// How far before the first reading the point is: a reading up to this much earlier (a
    /// paused runtime that far behind real time) is still told apart.
    const BEFORE_THE_FIRST: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);
    static EPOCH: std::sync::OnceLock<tokio::time::Instant> = std::sync::OnceLock::new();
    let now = tokio::time::Instant::now();
    let first = *EPOCH.get_or_init(|| now);
    match now.checked_duration_since(first) {
        Some(after) => BEFORE_THE_FIRST + after,
        None => BEFORE_THE_FIRST.saturating_sub(first.duration_since(now)),
    }
}

// Unlisted in the clock traits' messages (see `Clock`).
#[diagnostic::do_not_recommend]
impl Clock for TokioClock {
    /// Tokio's time: paused and advanced with the runtime's clock in tests.
    fn now(&self) -> Duration {
        let _runtime = self.runtime.enter();
        tokio_now()
    }

    /// # Panics
    ///
    /// On a runtime built without timers (no `enable_time`/`enable_all`), as tokio's `sleep`
    /// does: here, at the call, rather than in the call's task, where the call would be dropped
    /// unrun (a timeout that never fires).
    fn call_later(&self, delay: Duration, call: Box<dyn FnOnce() + Send>) -> DelayedCall {
        let sleep = {
            let _runtime = self.runtime.enter();
            tokio::time::sleep(delay)
        };
        // Dropped unrun with its task (cancelled, or at the runtime's shutdown): a panic in
        // the `Drop` of what it holds is reported, not kept in tokio's `JoinError`.
        let call = unhandled::DropReported::new("an unrun timer call's drop", call);
        let timer = self.runtime.spawn(async move {
            sleep.await;
            unhandled::run_reporting_panic("a timer's call", move || call.run());
        });
        let timer = timer.abort_handle();
        DelayedCall::new(move || timer.abort())
    }
}

#[cfg(feature = "tokio")] // on the item too: docs.rs shows it on the facade's pages
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
impl Inbox {
    /// This thread's inbox, drained by a task on the current tokio
    /// [`LocalSet`](tokio::task::LocalSet) (or `LocalRuntime`): the wake-up signals a
    /// [`Notify`](tokio::sync::Notify) the task awaits, and the task runs what was posted, so
    /// results from other threads come home to the LocalSet and the steps run there — where
    /// they can use tokio's timers, sockets and `spawn_local`.
    ///
    /// The task holds the inbox weakly: the loop stops when the last clone of the returned
    /// `Inbox` is dropped (the task then ends), as for any inbox.
    ///
    /// The task is the `LocalSet`'s: when that `LocalSet` is dropped, nothing drains the inbox
    /// any more, and results posted to it wait there. In the next `LocalSet` on this thread,
    /// call `on_tokio_local_set` again: it gives this thread's inbox (the same one, with what
    /// waits in it), drained by a task of the new `LocalSet`.
    ///
    /// # Panics
    ///
    /// Outside a `LocalSet` (or a `LocalRuntime`), as [`tokio::task::spawn_local`] does; and if
    /// this thread has an inbox already that a live `LocalSet` drains, or that [`Inbox::new`]
    /// made (as `Inbox::new` does).
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::{Failure, Inbox};
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    ///
    /// let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    /// let local = tokio::task::LocalSet::new();
    /// local.block_on(&runtime, async {
    ///     let inbox = Inbox::on_tokio_local_set();
    ///     let total = Rc::new(Cell::new(0)); // the LocalSet's state: no lock
    ///     let sum = total.clone();
    ///     let done = inbox
    ///         .defer_to_thread(|| Ok::<_, Failure>(6 * 7)) // on tokio's blocking pool
    ///         .add_callback(move |n| {                     // back on the LocalSet
    ///             sum.set(sum.get() + n);
    ///             Ok(())
    ///         });
    ///     done.await.unwrap();
    ///     assert_eq!(total.get(), 42);
    /// });
    /// ```
    #[track_caller]
    pub fn on_tokio_local_set() -> Inbox {
        // This thread's inbox, made here before, whose LocalSet (and so its drain) is gone:
        // drained from now on by a task of this one.
        let undrained = TOKIO_DRAIN.with(|slot| slot.borrow().as_ref()?.undrained());
        if let Some((inbox, notify)) = undrained {
            // What was posted while no LocalSet drained the inbox runs at the task's start.
            notify.notify_one();
            spawn_drain(&inbox, notify);
            return inbox;
        }
        let notify = Arc::new(tokio::sync::Notify::new());
        let wake = notify.clone();
        // `notify_one` keeps a permit when the task is not waiting: no wake-up is lost.
        let inbox = Inbox::new(move || wake.notify_one());
        TOKIO_DRAIN.with(|slot| *slot.borrow_mut() = Some(Drained::new(&inbox, notify.clone())));
        spawn_drain(&inbox, notify);
        inbox
    }
}

std::thread_local! {
    /// The inbox `Inbox::on_tokio_local_set` made on this thread, and its task's `Notify`.
    static TOKIO_DRAIN: RefCell<Option<Drained<Arc<tokio::sync::Notify>>>> =
        const { RefCell::new(None) };
}

/// Spawns the task that drains `inbox` on the current `LocalSet`, woken by `notify`; it is the
/// inbox's live drain until that `LocalSet` drops it, or the inbox stops.
#[track_caller]
fn spawn_drain(inbox: &Inbox, notify: Arc<tokio::sync::Notify>) {
    let weak = WeakInbox::new(inbox);
    let alive = TOKIO_DRAIN.with(|slot| slot.borrow().as_ref().map(Drained::drain_alive));
    let task = tokio::task::spawn_local(async move {
        let _alive = alive;
        loop {
            notify.notified().await;
            // The loop's stop wakes the task one last time.
            let Some(inbox) = weak.upgrade() else {
                return;
            };
            inbox.run_pending();
        }
    });
    drop(task);
}

/// Real time for [`LocalDeferred::add_timeout`] on a tokio [`LocalSet`](tokio::task::LocalSet):
/// each call is a `spawn_local` task that sleeps on tokio's clock (so a paused clock, in tests,
/// moves it), and runs on the LocalSet's thread; cancelling the call aborts the task.
///
/// # Panics
///
/// [`call_later`](LocalClock::call_later) panics outside a `LocalSet` (or a `LocalRuntime`), as
/// [`tokio::task::spawn_local`] does, and on a runtime built without timers (no `enable_time`),
/// as [`tokio::time::sleep`] does.
///
/// ```
/// # extern crate deferred_core as deferred;
/// use std::time::Duration;
/// use deferred::{LocalDeferred, TimedOut, TokioLocalClock};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// tokio::task::LocalSet::new().run_until(async {
///     let (slow, _resolver) = LocalDeferred::<u32>::pending();
///     let slow = slow.add_timeout(Duration::from_secs(5), &TokioLocalClock::new());
///     assert!(slow.await.unwrap_err().is::<TimedOut>());
/// }).await;
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default)]
#[cfg(feature = "tokio")] // on the item too: docs.rs shows it on the facade's pages
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub struct TokioLocalClock {
    _private: (),
}

#[cfg(feature = "tokio")] // on the item too: docs.rs shows it on the facade's pages
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
impl TokioLocalClock {
    /// The clock of the `LocalSet` its calls are made on.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// let clock = deferred::TokioLocalClock::new();
    /// # let _ = clock;
    /// ```
    pub fn new() -> TokioLocalClock {
        TokioLocalClock { _private: () }
    }
}

// Unlisted in the clock traits' messages (see `Clock`).
#[diagnostic::do_not_recommend]
impl LocalClock for TokioLocalClock {
    /// Tokio's time: paused and advanced with the runtime's clock in tests.
    fn now(&self) -> Duration {
        tokio_now()
    }

    /// Panics on a runtime built without timers too, as tokio's `sleep` does: at the call, not
    /// in the call's task, where the call would be dropped unrun (a timeout that never fires).
    /// (Outside any runtime, `spawn_local`'s panic, which says where to call it, comes first.)
    fn call_later(&self, delay: Duration, call: Box<dyn FnOnce()>) -> LocalDelayedCall {
        let sleep = tokio::runtime::Handle::try_current()
            .is_ok()
            .then(|| tokio::time::sleep(delay));
        // Dropped unrun with its task (cancelled, or with its `LocalSet`): a panic in the
        // `Drop` of what it holds is reported, not kept in tokio's `JoinError`.
        let call = unhandled::DropReported::new("an unrun timer call's drop", call);
        let timer = tokio::task::spawn_local(async move {
            match sleep {
                Some(sleep) => sleep.await,
                // A `LocalSet` polled outside any runtime: tokio's panic, in the task.
                None => tokio::time::sleep(delay).await,
            }
            unhandled::run_reporting_panic("a timer's call", move || call.run());
        });
        let timer = timer.abort_handle();
        LocalDelayedCall::new(move || timer.abort())
    }
}

#[cfg(feature = "tokio")] // on the item too: docs.rs shows it on the facade's pages
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
impl<T, E> LocalDeferred<T, E>
where
    T: 'static,
    E: FromFailure + 'static,
{
    /// Spawns `future` on the current tokio [`LocalSet`](tokio::task::LocalSet) (with
    /// `spawn_local`, so it need not be `Send`: it may hold `Rc` state and use tokio's timers
    /// and sockets) and returns a LocalDeferred of its output. Cancelling the Deferred cancels
    /// the `LocalDeferred`s the future awaits (those its last poll left pending; from inside a
    /// poll, those that poll leaves pending, when it returns) and aborts the task, whose future
    /// drops them unread: the cancellations a cancel so causes are not reported. A panic in the
    /// future becomes a [`Failure`].
    ///
    /// # Panics
    ///
    /// Outside a `LocalSet` (or a `LocalRuntime`), as [`tokio::task::spawn_local`] does.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::LocalDeferred;
    /// use std::rc::Rc;
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// tokio::task::LocalSet::new().run_until(async {
    ///     let name = Rc::new(String::from("ada")); // not Send
    ///     let d: LocalDeferred<usize> = LocalDeferred::from_future(async move {
    ///         tokio::time::sleep(Duration::from_millis(10)).await;
    ///         Ok(name.len())
    ///     });
    ///     assert_eq!(d.await.unwrap(), 3);
    /// }).await;
    /// # }
    /// ```
    #[track_caller]
    pub fn from_future<F>(future: F) -> LocalDeferred<T, E>
    where
        F: Future<Output = Result<T, E>> + 'static,
    {
        let at = Location::caller();
        // The task is spawned first, and its Resolver made after and handed to it through a
        // slot (the task cannot run before this function returns: it is on this thread): so
        // outside a `LocalSet`, where `spawn_local` panics, no Resolver is left to be reported
        // as never fired, and the canceller takes the abort handle as it is.
        let resolver_slot = std::rc::Rc::new(std::cell::Cell::new(None::<LocalResolver<T, E>>));
        let slot = resolver_slot.clone();
        // Guarded before the spawn: a cancel before the task's first poll drops it too.
        let awaited = LocalAwaited::default();
        let cancel_awaited = awaited.clone();
        let future = CatchUnwind::new(future, awaited);
        let task = tokio::task::spawn_local(async move {
            let result = future.await;
            unhandled::run_reporting_panic("from_future's task", move || {
                let result = result.unwrap_or_else(|panic| {
                    Err(E::from(Failure::from_panic_in(panic, Some(at), "a future")))
                });
                if let Some(resolver) = slot.take() {
                    unhandled::report_refused(resolver.settle_from(
                        result,
                        at,
                        crate::failure::EnteredBy::FromFuture,
                    ));
                }
            });
        });
        let task = task.abort_handle();
        let (deferred, resolver) = LocalDeferred::with_canceller(move || {
            cancel_awaited.cancel();
            task.abort();
        });
        resolver.held_by("from_future");
        resolver_slot.set(Some(resolver));
        deferred
    }
}
