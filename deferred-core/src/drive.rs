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
//!     │ cancel: the future is            │     │ poll returned Pending:
//!     │ dropped now                wake  │     │ poll once more
//!     │                                  ▼     │
//!     │                              PollingWokenAgain
//!     │
//!     │        cancel while polling: PollingCancelled, the future is dropped when the poll returns
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
use std::task::{Context, Poll, Wake, Waker};
use std::thread::LocalKey;

use crate::bounds::FromFailure;
use crate::{CancelHandle, Deferred, Failure, Resolver};

thread_local! {
    /// While a driven future is polled on this thread: the Deferreds that poll has left
    /// pending, what the future awaits (see [`noting_awaited`]).
    pub(crate) static AWAITED: Awaited<CancelHandle> = const { RefCell::new(None) };
}

/// Where the polls of one kind's driven futures on this thread collect what they await: `Some`
/// while such a poll runs.
pub(crate) type Awaited<H> = RefCell<Option<Vec<H>>>;

/// Runs `poll`, a driven future's poll, and collects into `awaited` (emptied first) the cancel
/// handle of each Deferred polled into `Pending` during it, through `list` (one per kind: this
/// module's for `Deferred::drive_future`, `inbox.rs`'s for `Inbox::spawn`): what the future
/// awaits, which a cancel of the driven Deferred cancels in turn. Polls nest (a poll that fires
/// a Deferred may wake and poll another driven future, on this thread): each collects its own.
pub(crate) fn noting_awaited<H: 'static, R>(
    list: &'static LocalKey<Awaited<H>>,
    awaited: &mut Vec<H>,
    poll: impl FnOnce() -> R,
) -> R {
    /// Puts the enclosing poll's list back, and hands this poll's to `awaited`, however `poll`
    /// returns.
    struct Restore<'a, H: 'static> {
        list: &'static LocalKey<Awaited<H>>,
        outer: Option<Vec<H>>,
        awaited: &'a mut Vec<H>,
    }
    impl<H> Drop for Restore<'_, H> {
        fn drop(&mut self) {
            let outer = self.outer.take();
            if let Ok(Some(list)) = self.list.try_with(|now| now.replace(outer)) {
                *self.awaited = list;
            }
        }
    }
    awaited.clear();
    let mine = std::mem::take(awaited);
    let outer = list.try_with(|now| now.replace(Some(mine))).ok().flatten();
    let _restore = Restore {
        list,
        outer,
        awaited,
    };
    poll()
}

/// Notes a Deferred polled into `Pending` as awaited by the driven future of its kind being
/// polled on this thread, if one is (see [`noting_awaited`]).
#[inline]
pub(crate) fn note_awaited_in<H: 'static>(
    list: &'static LocalKey<Awaited<H>>,
    handle: impl FnOnce() -> H,
) {
    let _ = list.try_with(|now| {
        if let Some(list) = now.borrow_mut().as_mut() {
            list.push(handle());
        }
    });
}

/// [`note_awaited_in`] for a `Deferred` (its `poll` calls this).
#[inline]
pub(crate) fn note_awaited(handle: impl FnOnce() -> CancelHandle) {
    note_awaited_in(&AWAITED, handle);
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
    ///   [`CancelHandle`], or the cancel of a chain waiting on it) first cancels the Deferreds
    ///   the future awaits, if it is idle (those its last poll left pending: Twisted's cascade
    ///   into the Deferred a coroutine awaits). Each fails with `Cancelled`, or with its
    ///   canceller's answer, and wakes the future, which is polled at once, on the cancelling
    ///   thread: if it completes then (it let the `Cancelled` pass with `?`, or translated it),
    ///   its output is the answer to the cancel, and the Deferred fires with it. Otherwise the
    ///   future is dropped — at once, on the cancelling thread, if it is idle; right after the
    ///   current poll returns, on the polling thread, if it is being polled — and the Deferred
    ///   fails with [`Cancelled`](crate::Cancelled). (Twisted would leave the Deferred pending
    ///   on what the coroutine awaits next; here a cancel ends it.) Wakes after completion or
    ///   cancellation do nothing.
    /// - **Wakers dropped without waking.** The future is never polled again. If something still
    ///   holds one of its wakers (and never wakes it), the Deferred stays pending, like a future
    ///   nobody polls. If every waker is dropped while the future is idle, nobody can ever wake
    ///   it: the future is dropped and the Deferred fails with [`NeverFired`](crate::NeverFired)
    ///   (created at the `drive_future` call), as when a [`Resolver`] is dropped.
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
        awaited: Vec<CancelHandle>,
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
        mut awaited: Vec<CancelHandle>,
    ) {
        let waker = Waker::from(self.clone());
        let mut cx = Context::from_waker(&waker);
        loop {
            let polled = noting_awaited(&AWAITED, &mut awaited, || {
                catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(&mut cx)))
            });
            let output = match polled {
                Ok(Poll::Pending) => None,
                Ok(Poll::Ready(result)) => Some(result),
                Err(panic) => Some(Err(E::from(Failure::from_panic_in(
                    panic,
                    Some(self.at),
                    "a future",
                )))),
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
                // drop the future and anything it gave. A panic in their `Drop` is dropped:
                // the Deferred's result is the cancellation already.
                self.park(resolver);
                let _ = catch_unwind(AssertUnwindSafe(move || drop((future, output))));
                return;
            }
            let result = output.expect("checked above: the future completed");
            let result = Failure::after_dropping(future, result, self.at);
            drop(resolver.settle_from(result, self.at, crate::failure::EnteredBy::DriveFuture));
            return;
        }
    }

    /// The Deferred was cancelled (its canceller runs this): cancel what an idle future awaits
    /// (which may wake it, and let it complete: its output answers the cancel); then drop the
    /// future now if nobody is polling it, else have the polling thread drop it when its poll
    /// returns.
    fn cancel(&self) {
        let mut state = self.lock();
        if let State::Idle { awaited, .. } = &mut *state
            && !awaited.is_empty()
        {
            let awaited = std::mem::take(awaited);
            drop(state);
            // Each failure wakes the future, which is polled again at once, here: the state is
            // looked at anew below.
            for deferred in &awaited {
                deferred.cancel();
            }
            drop(awaited);
            state = self.lock();
        }
        match std::mem::replace(&mut *state, State::Done) {
            State::Idle {
                future, resolver, ..
            } => {
                drop(state);
                self.park(resolver);
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
