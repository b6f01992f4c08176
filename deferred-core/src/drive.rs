//! A future as a Deferred with no runtime at all: [`Deferred::drive_future`].
//!
//! The future is polled first by the caller of `drive_future`, then by whichever thread wakes
//! it, inside `wake()` itself — as a callback-driven library should. There is no executor and no
//! thread of its own.
//!
//! The task is a small state machine under a lock, with the future taken out of the lock while
//! it is polled, so exactly one thread polls at a time:
//!
//! ```text
//!            wake (claims the future)                  poll returned Pending
//!   Idle ──────────────────────────────▶ Polling ─────────────────────────────▶ Idle
//!     │                                  │     ▲
//!     │ cancel: what the future          │     │ poll returned Pending:
//!     │ awaits is cancelled,       wake  │     │ poll once more
//!     │ then it is dropped               │     │
//!     │ (the cancelling thread           │     │
//!     │ polls it meanwhile)              │     │
//!     │                                  ▼     │
//!     │                              PollingWokenAgain
//!     │
//!     │        cancel while polling: PollingCancelled, the polling thread cancels what the future
//!     │        awaits, then drops it, when the poll returns
//!     ▼
//!   Done ◀── poll returned Ready (or panicked): the future is dropped, the Deferred fires
//! ```
//!
//! Ownership, so a task nobody can wake is not kept alive: the wakers are the only strong
//! references to the task (the canceller holds a weak one); the task owns the future and the
//! [`Resolver`]. When the last waker is dropped while the task is idle, the future is dropped
//! and so is the Resolver, which fails the Deferred with [`NeverFired`](crate::NeverFired).
//!
//! Cancelling must not let that happen before the chain has failed with `Cancelled` (a Resolver
//! dropped while the canceller runs would fire `NeverFired` first). So a cancelled task parks
//! its Resolver in a slot that the canceller keeps alive until it has run (the chain is then
//! failing with `Cancelled`); the Resolver is dropped after, when its fire is ignored.
#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::future::Future;
use std::panic::{AssertUnwindSafe, Location, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, RawWakerVTable, Wake, Waker};
use std::thread::LocalKey;

use crate::bounds::FromFailure;
use crate::{CancelHandle, Deferred, Failure, Resolver};

thread_local! {
    /// While a driven future is polled on this thread: the Deferreds that poll has left
    /// pending, what the future awaits (see [`noting_awaited`]).
    pub(crate) static AWAITED: Awaited<CancelHandle> = const { RefCell::new(None) };
}

/// Where the polls of one kind's driven futures on this thread note what they await: `Some`
/// while such a poll runs (this module's list for `Deferred::drive_future` and
/// `Deferred::from_future`, `inbox.rs`'s for `Inbox::spawn` and `LocalDeferred::from_future`).
pub(crate) type Awaited<H> = RefCell<Option<Vec<Noted<H>>>>;

/// A Deferred a driven future's poll left pending: a handle to cancel it, and which waker
/// that poll registered with it (while its chain still has that waker, the future still awaits
/// it: it was not dropped, nor handed to another task, since). The waker itself is not kept: it
/// may be the task's own, which would then never be freed.
pub(crate) struct Noted<H> {
    handle: H,
    waker: WakerId,
}

/// Which waker: its data pointer and vtable, what [`Waker::will_wake`] compares.
#[derive(Clone, Copy)]
pub(crate) struct WakerId {
    data: usize,
    vtable: &'static RawWakerVTable,
}

impl WakerId {
    pub(crate) fn of(waker: &Waker) -> WakerId {
        WakerId {
            data: waker.data() as usize,
            vtable: waker.vtable(),
        }
    }

    /// Whether `waker` is this one (as [`Waker::will_wake`] tells).
    pub(crate) fn is(self, waker: &Waker) -> bool {
        waker.data() as usize == self.data && std::ptr::eq(waker.vtable(), self.vtable)
    }
}

/// A kind's cancel handle, as a driven future's cancel uses it (implemented once, in
/// `chain/pending/cancel.rs`, for both kinds).
pub(crate) trait AwaitedHandle {
    /// Whether the Deferred it cancels is still polled by the task `waker` names.
    fn listened_by(&self, waker: WakerId) -> bool;
    fn cancel(&self);
}

impl<H: AwaitedHandle> Noted<H> {
    /// Cancels the Deferred if the future still awaits it (see [`Noted`]).
    pub(crate) fn cancel_if_awaited(&self) {
        if self.handle.listened_by(self.waker) {
            self.handle.cancel();
        }
    }
}

/// The cascade of a driven future's cancel, for every driver: cancels, one at a time, each of
/// `awaited` (what the future's last poll left pending) it still awaits, and after each has the
/// driver poll it on what that cancel gave it (`poll_after`, which says whether it completed:
/// its output then answers the cancel, and the cascade stops there; what it awaits next is not
/// cancelled). Whether it completed.
pub(crate) fn cancel_each<H: AwaitedHandle>(
    awaited: &[Noted<H>],
    mut poll_after: impl FnMut() -> bool,
) -> bool {
    awaited.iter().any(|one| {
        one.cancel_if_awaited();
        poll_after()
    })
}

/// Runs `poll`, a driven future's poll, and collects into `awaited` (emptied first), through
/// `list` (its kind's), each Deferred polled into `Pending` during it: what the future awaits,
/// which a cancel of the driven Deferred cancels in turn. Polls nest (a poll that fires a
/// Deferred may wake and poll another driven future, on this thread): each collects its own.
/// `other` (the other kind's list) is set aside while `poll` runs: a Deferred of the other kind
/// polled inside it is awaited by no driven future of the other kind (nor by an enclosing poll
/// of one: that poll's task does not await what a task of this kind awaits).
pub(crate) fn noting_awaited<H: 'static, O: 'static, R>(
    list: &'static LocalKey<Awaited<H>>,
    other: &'static LocalKey<Awaited<O>>,
    awaited: &mut Vec<Noted<H>>,
    poll: impl FnOnce() -> R,
) -> R {
    /// Puts the enclosing poll's lists back, and hands this poll's to `awaited`, however `poll`
    /// returns.
    struct Restore<'a, H: 'static, O: 'static> {
        list: &'static LocalKey<Awaited<H>>,
        outer: Option<Vec<Noted<H>>>,
        other: &'static LocalKey<Awaited<O>>,
        other_outer: Option<Vec<Noted<O>>>,
        awaited: &'a mut Vec<Noted<H>>,
    }
    impl<H, O> Drop for Restore<'_, H, O> {
        fn drop(&mut self) {
            let other_outer = self.other_outer.take();
            let _ = self.other.try_with(|now| now.replace(other_outer));
            let outer = self.outer.take();
            if let Ok(Some(list)) = self.list.try_with(|now| now.replace(outer)) {
                *self.awaited = list;
            }
        }
    }
    awaited.clear();
    let mine = std::mem::take(awaited);
    let outer = list.try_with(|now| now.replace(Some(mine))).ok().flatten();
    let other_outer = other.try_with(|now| now.replace(None)).ok().flatten();
    let _restore = Restore {
        list,
        outer,
        other,
        other_outer,
        awaited,
    };
    poll()
}

/// Notes a Deferred polled into `Pending` (its cancel handle, and the waker that poll
/// registered) as awaited by the driven future of its kind being polled on this thread, if one
/// is (see [`noting_awaited`]).
#[inline]
pub(crate) fn note_awaited_in<H: 'static>(
    list: &'static LocalKey<Awaited<H>>,
    noted: impl FnOnce() -> (H, WakerId),
) {
    let _ = list.try_with(|now| {
        if let Some(list) = now.borrow_mut().as_mut() {
            let (handle, waker) = noted();
            list.push(Noted { handle, waker });
        }
    });
}

/// [`note_awaited_in`] for a `Deferred` (its `poll` calls this).
#[inline]
pub(crate) fn note_awaited(noted: impl FnOnce() -> (CancelHandle, WakerId)) {
    note_awaited_in(&AWAITED, noted);
}

impl<T, E> Deferred<T, E>
where
    T: Send + 'static,
    E: FromFailure + Send + 'static,
{
    /// Runs `future` with no runtime at all and returns a Deferred of its output: `future` is
    /// polled now, on this thread; then again on whichever thread wakes it, inside `wake()`;
    /// the Deferred fires with its output on the thread that polled it to completion.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::{Deferred, Failure};
    ///
    /// // A future that is ready at once: the Deferred has fired when drive_future returns.
    /// let d: Deferred<u32> = Deferred::drive_future(async { Ok(40) });
    /// assert!(d.is_fired());
    /// assert_eq!(d.add_callback(|x| Ok(x + 2)).wait().unwrap(), 42);
    ///
    /// // A future woken by another thread: a Deferred is a Future, so the future awaits one.
    /// let (price, resolver) = Deferred::<u32>::pending();
    /// let total: Deferred<u32> = Deferred::drive_future(async move {
    ///     let price = price.await?; // polled again here by the thread that fires `price`
    ///     Ok(price * 2)
    /// });
    /// assert!(!total.is_fired());
    /// std::thread::spawn(move || resolver.callback(21)).join().unwrap();
    /// assert_eq!(total.wait().unwrap(), 42);
    /// ```
    ///
    /// The rules:
    ///
    /// - **Where it is polled.** The first poll happens inside `drive_future`, on the calling
    ///   thread. Each wake polls again, at once, on the waking thread, inside `wake()` (or
    ///   `wake_by_ref()`).
    /// - **One poll at a time.** A wake that arrives while the future is being polled — from
    ///   another thread, or from inside `poll` on the same thread — does not poll concurrently
    ///   nor recursively: it marks the task woken again, and the thread that is polling polls
    ///   once more when its poll returns `Pending`. No wake is lost.
    /// - **Panics.** A panic inside `poll` becomes the Deferred's failure
    ///   ([`Panicked`](crate::Panicked), raised at the `drive_future` call); it never unwinds
    ///   into the caller of `wake()`. The same goes for a panic in the future's `Drop` when it
    ///   completes.
    /// - **Cancellation.** Cancelling the Deferred (its [`cancel`](Deferred::cancel), a
    ///   [`CancelHandle`], or the cancel of a chain waiting on it) first cancels, one after
    ///   the other, the Deferreds the future awaits (Twisted's cascade into the Deferred a
    ///   coroutine awaits): those its last poll left pending and still holds, not one it
    ///   dropped, nor one it handed to another task that polled it since. (One it handed to an
    ///   owner that has not polled it yet cannot be told from its own, since a move leaves no
    ///   trace: it is cancelled too.) Each fails with `Cancelled`, or with its canceller's
    ///   answer, and wakes the future, which is polled
    ///   after that cancel, on the cancelling thread: if it completes then (it let the
    ///   `Cancelled` pass with `?`, or translated it), its output is the answer to the cancel,
    ///   the Deferred fires with it, and the cancel stops there. Otherwise the future is
    ///   dropped, with what it awaits next uncancelled, and the Deferred fails with
    ///   [`Cancelled`](crate::Cancelled). A cancel that lands while the future is being polled
    ///   does the same when that poll returns `Pending`, on the polling thread (an output
    ///   then answers the cancel only if the Deferred has not failed with `Cancelled` yet; a
    ///   failure of the future's own that comes after, other than a cancellation, is reported
    ///   as unhandled, since nobody else can see it).
    ///   (Twisted would leave the Deferred pending on what the coroutine awaits next; here a
    ///   cancel ends it.) Wakes after completion or cancellation do nothing.
    /// - **Wakers dropped without waking.** The future is never polled again. If something still
    ///   holds one of its wakers (and never wakes it), the Deferred stays pending, like a future
    ///   nobody polls. If every waker is dropped while the future is idle, nobody can ever wake
    ///   it: the future is dropped and the Deferred fails with [`NeverFired`](crate::NeverFired)
    ///   (created at the `drive_future` call), as when a [`Resolver`] is dropped.
    ///
    /// A cancel reaches the query the future awaits, and the future answers it:
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    /// use deferred::{Deferred, Failure};
    ///
    /// let stopped = Arc::new(AtomicBool::new(false));
    /// let stop = stopped.clone();
    /// let (query, _resolver) = Deferred::<u32>::with_canceller(move || {
    ///     stop.store(true, Ordering::SeqCst); // the query's work stops here
    /// });
    /// let rows: Deferred<u32> = Deferred::drive_future(async move {
    ///     match query.await {
    ///         Err(f) if f.is_cancelled() => Ok(0), // none, when cancelled
    ///         other => other,
    ///     }
    /// });
    /// rows.cancel();
    /// assert!(stopped.load(Ordering::SeqCst));
    /// assert_eq!(rows.wait().unwrap(), 0);
    /// ```
    ///
    /// Blocking in the future blocks the thread that woke it (a thread firing a Resolver, a
    /// C library's callback thread): keep the work between two `.await`s short, or hand it to
    /// [`defer_to_thread`](crate::defer_to_thread) and await that.
    ///
    /// # `drive_future` or `from_future`?
    ///
    /// Use `drive_future` when what the future awaits is woken by callbacks: Deferreds, other
    /// threads firing, channels, a C library's completion callbacks. It needs no runtime and
    /// runs the future where its events arrive. Use `from_future` (feature `tokio`) when the
    /// future needs tokio's reactor — tokio sockets, timers, `tokio::task` APIs: those are only
    /// ever woken by a running tokio runtime, and with `drive_future` they would panic or never
    /// be woken.
    #[track_caller]
    pub fn drive_future<F>(future: F) -> Deferred<T, E>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
    {
        let at = Location::caller();
        let task = Arc::new(Task {
            state: Mutex::new(State::Done),
            parked: Arc::new(Mutex::new(None)),
            at,
        });
        let weak: Weak<Task<F, T, E>> = Arc::downgrade(&task);
        // The canceller keeps the slot where a cancelled task parks its Resolver alive until it
        // has run: the root is then being failed with `Cancelled` (a Resolver dropped from then
        // on is ignored). Not a step of the chain: the user added no step, and the registry,
        // `Debug` and a failure's trail must not show one.
        let parked = task.parked.clone();
        // Created here, not in a closure, so that `NeverFired` says where drive_future was called.
        let (deferred, resolver) = Deferred::with_canceller(move || {
            if let Some(task) = weak.upgrade() {
                task.cancel();
            }
            drop(parked);
        });
        resolver.held_by("drive_future");
        *task.lock() = State::Idle {
            future: Box::pin(future),
            resolver,
            awaited: Vec::new(),
        };
        // The first poll. Nobody else has the Deferred (nor a handle to cancel it) yet.
        task.run();
        // `task` is dropped here: if the future kept no waker, nobody can wake it, and the
        // Deferred fails with NeverFired now.
        deferred
    }
}

/// A future that goes on awaiting after a cancel cancelled what it awaited, with the Resolver
/// of its Deferred: both to be dropped.
type GoesOn<F, T, E> = (Pin<Box<F>>, Resolver<T, E>);

/// A future being driven, with the Resolver of its Deferred.
struct Task<F, T, E>
where
    F: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: FromFailure + Send + 'static,
{
    state: Mutex<State<F, T, E>>,
    /// Where a cancelled task puts its Resolver, so it is not dropped (which would fire
    /// `NeverFired`) before the chain has failed with `Cancelled`. The canceller holds it too
    /// (see `drive_future`).
    parked: Arc<Mutex<Option<Resolver<T, E>>>>,
    /// The `drive_future` call, for the failure of a panic.
    at: &'static Location<'static>,
}

enum State<F, T, E: 'static> {
    /// Nobody is polling: the future waits for a wake.
    Idle {
        // Declared first: dropped before the Resolver fires `NeverFired`.
        future: Pin<Box<F>>,
        resolver: Resolver<T, E>,
        /// What the future awaits: the Deferreds its last poll left pending.
        awaited: Vec<Noted<CancelHandle>>,
    },
    /// A thread has taken the future out and is polling it.
    Polling,
    /// As `Polling`, and a wake came meanwhile: the polling thread polls once more.
    PollingWokenAgain,
    /// As `Polling`, and the Deferred was cancelled meanwhile: the polling thread drops the
    /// future when its poll returns.
    PollingCancelled,
    /// The future has completed or was dropped (or is not there yet, inside `drive_future`).
    Done,
}

impl<F, T, E> Task<F, T, E>
where
    F: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: FromFailure + Send + 'static,
{
    fn lock(&self) -> MutexGuard<'_, State<F, T, E>> {
        // No user code runs under the lock (the future is polled and dropped outside it), so
        // the state is consistent even if the lock was poisoned.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A wake: poll now, on this thread, unless another poll is running (then that one polls
    /// again) or the task is over.
    fn run(self: &Arc<Self>) {
        let mut state = self.lock();
        match std::mem::replace(&mut *state, State::Polling) {
            State::Idle {
                future,
                resolver,
                awaited,
            } => {
                drop(state);
                self.poll_until_idle(future, resolver, awaited);
            }
            State::Polling | State::PollingWokenAgain => *state = State::PollingWokenAgain,
            over @ (State::PollingCancelled | State::Done) => *state = over,
        }
    }

    /// Polls the future (this thread has moved the task to `Polling`) until it returns
    /// `Pending` with no wake since, completes, or is cancelled.
    fn poll_until_idle(
        self: &Arc<Self>,
        mut future: Pin<Box<F>>,
        resolver: Resolver<T, E>,
        mut awaited: Vec<Noted<CancelHandle>>,
    ) {
        let waker = Waker::from(self.clone());
        let mut cx = Context::from_waker(&waker);
        loop {
            let output = match self.poll_once(&mut future, &mut cx, &mut awaited) {
                Poll::Pending => None,
                Poll::Ready(result) => Some(result),
            };
            let mut state = self.lock();
            let cancelled = match (&*state, &output) {
                (State::PollingWokenAgain, None) => {
                    // A wake came during the poll: it may have been for something the poll
                    // had already looked at, so poll again.
                    *state = State::Polling;
                    continue;
                }
                (State::Polling, None) => {
                    *state = State::Idle {
                        future,
                        resolver,
                        awaited,
                    };
                    return;
                }
                (State::PollingCancelled, None) if !awaited.is_empty() => {
                    // Cancelled during this poll: cancel what it left the future awaiting, as
                    // a cancel of the idle future does (this thread owns the future meanwhile).
                    *state = State::Polling;
                    drop(state);
                    // Outside the canceller, this cancel has no place (`Failure::entered_at`);
                    // nor the place of a cancel whose canceller runs this poll (one that fired
                    // what the future awaited): that is another chain's.
                    let goes_on = crate::failure::with_cancel_place(None, || {
                        self.cancel_awaited(future, resolver, awaited)
                    });
                    if let Some((future, resolver)) = goes_on {
                        // Dropped here: a panic in its `Drop` is dropped (the Deferred's result
                        // is the cancellation already).
                        self.park(resolver);
                        let _ = catch_unwind(AssertUnwindSafe(move || drop(future)));
                    }
                    return;
                }
                (State::PollingCancelled, _) => true,
                (State::Polling | State::PollingWokenAgain, Some(_)) => false,
                (State::Idle { .. } | State::Done, _) => {
                    unreachable!("only the polling thread leaves the polling states")
                }
            };
            *state = State::Done;
            drop(state);
            if cancelled {
                // The chain fails with `Cancelled` (the canceller has run, or is running on
                // another thread): keep the Resolver from firing `NeverFired` before that, and
                // drop the future and anything it gave; a failure of its own it gave, which
                // nobody can see, is reported. A panic in their `Drop` is dropped: the
                // Deferred's result is the cancellation already.
                self.park(resolver);
                let _ = catch_unwind(AssertUnwindSafe(move || {
                    drop(future);
                    if let Some(Err(error)) = output {
                        crate::unhandled::report_refused::<T, E>(Err(Err(error)));
                    }
                }));
                return;
            }
            let result = output.expect("checked above: the future completed");
            self.complete(future, resolver, result);
            return;
        }
    }

    /// Polls the future once (this thread has it in a polling state), noting in `awaited` what
    /// the poll leaves pending; a panic in it is the output, a [`Failure`].
    fn poll_once(
        &self,
        future: &mut Pin<Box<F>>,
        cx: &mut Context<'_>,
        awaited: &mut Vec<Noted<CancelHandle>>,
    ) -> Poll<Result<T, E>> {
        let polled = noting_awaited(&AWAITED, &crate::inbox::AWAITED, awaited, || {
            catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx)))
        });
        match polled {
            Ok(polled) => polled,
            Err(panic) => Poll::Ready(Err(E::from(Failure::from_panic_in(
                panic,
                Some(self.at),
                "a future",
            )))),
        }
    }

    /// The future completed with `result` (the state is `Done`): drop it, then fire the
    /// Deferred with its output.
    fn complete(&self, future: Pin<Box<F>>, resolver: Resolver<T, E>, result: Result<T, E>) {
        let result = Failure::after_dropping(future, result, self.at);
        crate::unhandled::report_refused(resolver.settle_from(
            result,
            self.at,
            crate::failure::EnteredBy::DriveFuture,
        ));
    }

    /// Cancels, in turn, each Deferred of `awaited` the future still awaits (this thread owns
    /// the future: the state is a polling one). A failure wakes the future: it is polled here,
    /// after that cancel, and if it completes, its output fires the Deferred (`None`). If it
    /// goes on awaiting, it is given back with the Resolver (the state is then `Done`), to be
    /// dropped: what it awaits next is not cancelled.
    fn cancel_awaited(
        self: &Arc<Self>,
        mut future: Pin<Box<F>>,
        resolver: Resolver<T, E>,
        awaited: Vec<Noted<CancelHandle>>,
    ) -> Option<GoesOn<F, T, E>> {
        let waker = Waker::from(self.clone());
        let mut cx = Context::from_waker(&waker);
        let mut noted = Vec::new();
        let mut output = None;
        cancel_each(&awaited, || {
            loop {
                let mut state = self.lock();
                match &*state {
                    State::PollingWokenAgain => *state = State::Polling,
                    // (Not woken; no other state: the canceller runs once, and it is this
                    // cancel, or it left the cancel to this thread.)
                    _ => return false,
                }
                drop(state);
                if let Poll::Ready(result) = self.poll_once(&mut future, &mut cx, &mut noted) {
                    output = Some(result);
                    return true;
                }
            }
        });
        *self.lock() = State::Done;
        match output {
            Some(result) => {
                self.complete(future, resolver, result);
                None
            }
            None => Some((future, resolver)),
        }
    }

    /// The Deferred was cancelled (its canceller runs this): if nobody is polling the future,
    /// cancel what it awaits (which may wake it, and let it complete: its output answers the
    /// cancel; see [`cancel_awaited`](Task::cancel_awaited)) and drop it if it goes on
    /// awaiting; else have the polling thread do so when its poll returns.
    fn cancel(self: &Arc<Self>) {
        let mut state = self.lock();
        match std::mem::replace(&mut *state, State::Done) {
            State::Idle {
                future,
                resolver,
                awaited,
            } => {
                let future = if awaited.is_empty() {
                    drop(state);
                    self.park(resolver);
                    future
                } else {
                    // This thread owns the future while it cancels what it awaits: a wake
                    // meanwhile has it polled here, not by the waking thread.
                    *state = State::Polling;
                    drop(state);
                    let Some((future, resolver)) = self.cancel_awaited(future, resolver, awaited)
                    else {
                        return; // it completed: its output answered the cancel
                    };
                    self.park(resolver);
                    future
                };
                // On this thread, now. A panic in its `Drop` escapes to the chain, which makes
                // it the failure, as for any canceller.
                drop(future);
            }
            State::Polling | State::PollingWokenAgain => *state = State::PollingCancelled,
            over @ (State::PollingCancelled | State::Done) => *state = over,
        }
    }

    /// Keeps the Resolver of a cancelled task until the chain has failed (see `parked`).
    fn park(&self, resolver: Resolver<T, E>) {
        *self.parked.lock().unwrap_or_else(PoisonError::into_inner) = Some(resolver);
    }
}

impl<F, T, E> Wake for Task<F, T, E>
where
    F: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: FromFailure + Send + 'static,
{
    fn wake(self: Arc<Self>) {
        self.run();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.run();
    }
}

impl<F, T, E> Drop for Task<F, T, E>
where
    F: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: FromFailure + Send + 'static,
{
    /// The last waker is gone: nobody can ever wake the future. Drop it; dropping the Resolver
    /// then fails the Deferred with `NeverFired`. A panic in the future's `Drop` does not unwind
    /// into whoever dropped the waker: it becomes the failure instead.
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let State::Idle {
            future, resolver, ..
        } = std::mem::replace(state, State::Done)
            && let Err(panic) = catch_unwind(AssertUnwindSafe(move || drop(future)))
        {
            drop(resolver.settle(Err(E::from(Failure::from_panic_in(
                panic,
                Some(self.at),
                "a future",
            )))));
        }
    }
}
