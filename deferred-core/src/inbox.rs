//! Results coming home: an event loop's [`Inbox`], drained on the loop's thread, and the
//! [`LoopHandle`] other threads post to it through (Twisted's `reactor.callFromThread`).
//!
//! A [`LocalDeferred`] never leaves the thread that made it. Work done elsewhere — on the
//! thread pool, in a `Deferred` fired by another thread, in a C library's callback thread —
//! reaches it by posting to the loop's inbox: the post is queued, the loop's wake-up callback is
//! called (so a sleeping loop wakes), and the loop runs the posted work on its own thread when
//! it drains the inbox ([`Inbox::run_pending`]). That is how a [`HomeResolver`] fires a local
//! chain from any thread, how [`Inbox::defer_to_thread`] and [`Inbox::adopt`] deliver their
//! results, and how [`InboxClock`] runs timers.
//!
//! Which to use:
//! - **tokio** (feature `tokio`): `Inbox::on_tokio_local_set` inside a `LocalSet` — a task
//!   drains the inbox, so chains run on the LocalSet beside your other local tasks; time them
//!   with `TokioLocalClock` (tokio's clock, so a paused test clock moves them), and turn a
//!   `!Send` tokio future into a `LocalDeferred` with `LocalDeferred::from_future`.
//! - **calloop** (feature `calloop`): `Inbox::on_calloop` registers a ping source that drains
//!   the inbox in the loop's dispatch; time chains with `CalloopClock` (calloop's timers).
//! - **any other loop** (winit, glib, egui, a game loop, a hand-written one): [`Inbox::new`]
//!   with the wake-up your toolkit gives (winit's `EventLoopProxy::send_event`, glib's
//!   `MainContext::wakeup` or an `idle_add` that calls `run_pending`, egui's
//!   `request_repaint`), and call [`run_pending`](Inbox::run_pending) from the loop's own
//!   callback (its idle, frame or user-event handler); time chains with [`Inbox::clock`], whose
//!   timers wait on a shared timer thread and come home through the inbox. No tokio needed.
//!
//! The rules, each kept where it is enforced:
//! - Posted work runs on the loop's thread, in the order it was posted, each item once.
//! - A panic in posted work does not stop the loop: it is reported as an unhandled
//!   [`Failure`] ([`run_pending`](Inbox::run_pending)).
//! - A panic in the wake-up does not reach the poster (which may be a pool thread or a `Drop`):
//!   it is reported as an unhandled failure, and the post stands — the work is queued and runs
//!   at the next drain ([`Inbox::new`]).
//! - Nothing is lost when the loop stops (the last [`Inbox`] clone is dropped): work posted
//!   before runs then; the `Deferred`s it [adopted](Inbox::adopt) that are still pending are
//!   cancelled (their cancellers run: their results could only be refused); the local
//!   Deferreds still waiting on another thread fail with [`NeverFired`](crate::NeverFired); a
//!   post after that is refused ([`LoopHandle::post`]
//!   gives it back), and a failure a [`HomeResolver`] could not deliver is reported. The
//!   wake-up is called once more and dropped, so that an integration's drain ends.
#![forbid(unsafe_code)]

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, Location, catch_unwind};
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use crate::bounds::FromFailure;
use crate::clock::{LocalClock, LocalDelayedCall};
use crate::drive::{Awaited, Noted, WakerId, cancel_each, note_awaited_in, noting_awaited};
use crate::failure::Failure;
use crate::local::CancelHandle;
use crate::{Deferred, LocalDeferred, LocalResolver, unhandled};

thread_local! {
    /// While a task of `Inbox::spawn` is polled on this thread: the `LocalDeferred`s that poll
    /// has left pending, what the task awaits (`drive::noting_awaited`).
    pub(crate) static AWAITED: Awaited<CancelHandle> = const { RefCell::new(None) };
}

/// Notes a `LocalDeferred` polled into `Pending` as awaited by the task being polled on this
/// thread, if one is (its `poll` calls this; see `drive::noting_awaited`).
#[inline]
pub(crate) fn note_awaited(noted: impl FnOnce() -> (CancelHandle, WakerId)) {
    note_awaited_in(&AWAITED, noted);
}

thread_local! {
    /// While the loop's stop cancels a Deferred it adopted (`Home`'s drop), on the loop's
    /// thread: that inbox's mailbox (its address) and the key the Deferred's result comes home
    /// under, so that the result it answers that cancel with is known for it. A `Cell` with
    /// no destructor: readable in any thread-local's destructor too.
    static ANSWERING_STOP: Cell<Option<(usize, u64)>> = const { Cell::new(None) };
}

/// Work posted to a loop: it runs on the loop's thread, given the loop's side of the inbox.
type Posted = Box<dyn Work>;

/// Work posted to a loop.
trait Work: Send {
    /// Runs on the loop's thread.
    fn run(self: Box<Self>, home: &Home);
    /// The loop has stopped: the work will never run.
    fn refused(self: Box<Self>);
    /// Whether this work brings a result home (a `HomeResolver`'s fire or drop): as the loop
    /// stops, the tasks it wakes may be polled again, though polled already.
    fn brings_a_result(&self) -> bool {
        false
    }
    /// The key of the kept `LocalResolver` this work fires with a result (a `HomeResolver`'s
    /// fire, not its drop): for a cancel of an adopted chain, which the adopted Deferred's
    /// canceller may answer (`Inbox::adopt`).
    fn fires_with_result(&self) -> Option<u64> {
        None
    }
    /// The key of the kept `LocalResolver` this work fires (or drops, failing its Deferred
    /// with `NeverFired`), for the registry.
    #[cfg(feature = "registry")]
    fn fires(&self) -> Option<u64> {
        None
    }
}

/// Posted work that is a function of the loop's side of the inbox; refused, it is dropped.
struct Call<F>(F);

/// A closure posted through a [`LoopHandle`]: refused, it is given back to the poster.
struct Plain<F>(F);

impl<F: FnOnce() + Send> Work for Plain<F> {
    fn run(self: Box<Self>, _: &Home) {
        (self.0)()
    }
    fn refused(self: Box<Self>) {}
}

impl<F: FnOnce(&Home) + Send> Work for Call<F> {
    fn run(self: Box<Self>, home: &Home) {
        (self.0)(home)
    }
    fn refused(self: Box<Self>) {}
}

/// The inbox of an event loop, on the loop's thread: other threads post to it through its
/// [`LoopHandle`]; the loop runs what they posted by calling [`run_pending`](Inbox::run_pending)
/// from its own callbacks (an idle or frame callback, an event source, a task).
///
/// `wake` is called (on the posting thread) after each post, so a loop that sleeps wakes up to
/// drain the inbox: winit's `EventLoopProxy::send_event`, glib's `MainContext::wakeup`, egui's
/// `request_repaint`, a pipe or an eventfd. The `tokio` and `calloop` features wire an inbox
/// into those loops for you.
///
/// Which to use: with tokio, `Inbox::on_tokio_local_set` (feature `tokio`; a task on the
/// `LocalSet` drains it, `TokioLocalClock` times local chains); with calloop, `Inbox::on_calloop`
/// (feature `calloop`; a ping source drains it, `CalloopClock` times local chains); with any
/// other loop, `Inbox::new` with the toolkit's wake-up and a call to `run_pending` from the
/// loop's idle, frame or user-event callback, and [`Inbox::clock`] for time (no tokio needed).
///
/// The rules:
/// - Posted work runs on the loop's thread, in the order it was posted, each item once.
/// - A panic in posted work does not stop the loop: it is reported as an unhandled
///   [`Failure`], and the rest runs.
/// - A panic in the wake-up does not reach the poster: it is reported as an unhandled failure,
///   and the post stands (the work runs at the next drain).
/// - A thread has at most one inbox at a time; clones of an `Inbox` are the same inbox. When
///   the last clone is dropped, the loop has stopped: work posted before runs then; the
///   Deferreds it [adopted](Inbox::adopt) and still pending are cancelled; the local
///   Deferreds still waiting on another thread fail with [`NeverFired`](crate::NeverFired); a
///   later post is refused ([`LoopHandle::post`] gives it back), and a failure a
///   [`HomeResolver`] could not deliver is reported as unhandled.
///
/// ```
/// # extern crate deferred_core as deferred;
/// use deferred::{Failure, Inbox};
/// use std::cell::RefCell;
/// use std::rc::Rc;
///
/// // A hand-written loop: it sleeps on a channel, and the inbox's wake-up sends to it.
/// let (wake_tx, wake_rx) = std::sync::mpsc::channel::<()>();
/// let inbox = Inbox::new(move || { let _ = wake_tx.send(()); });
///
/// let shown = Rc::new(RefCell::new(String::new())); // loop-thread state: no lock
/// let label = shown.clone();
/// let done = inbox
///     .defer_to_thread(|| Ok::<_, Failure>(6 * 7))   // runs on the pool
///     .add_callback(move |n| {                       // runs here, on the loop's thread
///         *label.borrow_mut() = format!("answer: {n}");
///         Ok(())
///     });
///
/// while !done.is_fired() {
///     wake_rx.recv().unwrap();   // the loop sleeps until something is posted
///     inbox.run_pending();       // then runs it, on this thread
/// }
/// assert_eq!(*shown.borrow(), "answer: 42");
/// ```
#[derive(Clone)]
pub struct Inbox {
    home: Rc<Home>,
}

/// The loop's side of an inbox: the posted work's queue (shared with other threads), and what
/// only the loop's thread may touch — the local resolvers, timers and tasks that posted work
/// refers to by key.
struct Home {
    mailbox: Arc<Mailbox>,
    /// What posted work refers to by key: a `LocalResolver` a `HomeResolver` fires, a timer's
    /// call, a local future's task. Dropped with the inbox: each resolver left fails its
    /// Deferred with `NeverFired`.
    waiting: RefCell<HashMap<u64, Box<dyn Any>>>,
    next_key: Cell<u64>,
    /// The work a `run_pending` took out of the mailbox and has not run yet. A `wait` inside
    /// one of its items runs the rest of it first (`run_one_posted_here`), before anything
    /// posted since: the work runs in the order it was posted, and a result the waited-on chain
    /// needs may be in it.
    batch: RefCell<VecDeque<Posted>>,
    /// The local tasks being polled (out of `waiting` meanwhile), each with whether a wake
    /// came for it during that poll (a `wait` inside the poll ran the inbox, and with it the
    /// task's own poll, which found no task): such a task is polled again.
    polling: RefCell<HashMap<u64, bool>>,
    /// While the loop stops (its last drain, `Home::drain` from the last handle's drop, then
    /// the inbox's own drop): the tasks polled since. Each is polled once more at most — one
    /// that wakes itself on every poll would otherwise keep the stop from ever ending — and is
    /// then dropped with the rest of what the inbox keeps.
    stopping: RefCell<Option<std::collections::HashSet<u64>>>,
    /// The Deferreds [`Inbox::adopt`] brings home, by the key of the local resolver their
    /// result fires: those still pending when the loop stops are cancelled then (their result
    /// could only be refused). An entry goes when its key's resolver is taken.
    adopted: RefCell<HashMap<u64, crate::CancelHandle>>,
    /// For the registry: the chain each kept `LocalResolver` fires, by its key (see
    /// [`see_home`]).
    #[cfg(feature = "registry")]
    fired_here: RefCell<HashMap<u64, Fires>>,
    /// For the registry: the keys fired by the work a `run_pending` took out of the mailbox and
    /// has not run yet.
    #[cfg(feature = "registry")]
    draining: RefCell<std::collections::HashSet<u64>>,
}

/// What a kept `LocalResolver` fires, for the registry: its local chain, and the `Deferred`
/// whose result it brings home when [`Inbox::adopt`] made it (that chain's address and where it
/// was made).
#[cfg(feature = "registry")]
struct Fires {
    chain: usize,
    adopted: Option<(usize, &'static Location<'static>)>,
}

/// The part of an inbox other threads reach.
struct Mailbox {
    queue: Mutex<Queue>,
    /// Signalled on each post, for a `LocalDeferred::wait` on the loop's thread.
    posted: Condvar,
}

/// The loop's wake-up, shared so that a post can call it outside the lock.
type WakeUp = Arc<dyn Fn() + Send + Sync>;

struct Queue {
    work: VecDeque<Posted>,
    /// Taken when the loop stops: later posts are refused.
    wake: Option<WakeUp>,
}

impl Mailbox {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // No user code runs under the lock.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `work` and wakes the loop; if the loop has stopped, gives the work back.
    fn post<W: Work + 'static>(&self, work: W) -> Result<(), W> {
        let wake = {
            let mut queue = self.lock();
            let Some(wake) = queue.wake.clone() else {
                return Err(work);
            };
            queue.work.push_back(Box::new(work));
            wake
        };
        self.posted.notify_all();
        call_wake(&wake);
        Ok(())
    }

    /// Queues work whose refusal is handled by the work itself ([`Work::refused`]).
    fn post_or_refuse<W: Work + 'static>(&self, work: W) {
        if let Err(work) = self.post(work) {
            Box::new(work).refused();
        }
    }
}

/// Calls the loop's wake-up. It is the loop's code, called on the posting thread: a panic there
/// is caught and reported as an unhandled failure, not raised in the poster (which may be a
/// `Drop`, a pool thread or another runtime's task), and the post stands — the work is queued
/// and runs when the loop next drains its inbox.
fn call_wake(wake: &WakeUp) {
    unhandled::run_reporting_panic("the loop's wake-up", || wake());
}

std::thread_local! {
    /// This thread's inbox, if it has one: `LocalDeferred::wait` drains it.
    static CURRENT: RefCell<Weak<Home>> = const { RefCell::new(Weak::new()) };
}

/// This thread's inbox, if it has one. `try_with`: an inbox kept in a thread-local of the
/// user's may stop (and run its work) at thread exit after this one is gone; it is not this
/// thread's any more then.
fn current_home() -> Option<Rc<Home>> {
    CURRENT
        .try_with(|current| current.borrow().upgrade())
        .ok()
        .flatten()
}

impl Inbox {
    /// Makes this thread's inbox. `wake` is called after each post, on the posting thread, to
    /// wake the loop (it must not block, and should be cheap: it runs once per post); once
    /// more when the loop stops; and never under a lock. A panic in it is caught and reported
    /// as an unhandled failure, and the post it follows still stands.
    ///
    /// The loop must drain the inbox when `wake` is called: an inbox nobody drains holds its
    /// posts until it is dropped (or a `LocalDeferred::wait` on this thread drains it). In a
    /// tokio `LocalSet`, `Inbox::on_tokio_local_set` (feature `tokio`) makes an inbox the
    /// `LocalSet` drains; on calloop, `Inbox::on_calloop`.
    ///
    /// # Panics
    ///
    /// If this thread has an inbox already (clone that one instead: [`Inbox::current`]).
    #[track_caller]
    pub fn new(wake: impl Fn() + Send + Sync + 'static) -> Inbox {
        // Here, not in a closure, so that the panic is at the caller's line.
        let taken = CURRENT.with(|current| current.borrow().upgrade().is_some());
        assert!(
            !taken,
            "this thread has an Inbox already: use that one (`Inbox::current()`, or a clone) \
             instead of making a second one"
        );
        let mailbox = Arc::new(Mailbox {
            queue: Mutex::new(Queue {
                work: VecDeque::new(),
                wake: Some(Arc::new(wake)),
            }),
            posted: Condvar::new(),
        });
        let home = Rc::new(Home {
            mailbox,
            waiting: RefCell::new(HashMap::new()),
            next_key: Cell::new(0),
            batch: RefCell::new(VecDeque::new()),
            polling: RefCell::new(HashMap::new()),
            stopping: RefCell::new(None),
            adopted: RefCell::new(HashMap::new()),
            #[cfg(feature = "registry")]
            fired_here: RefCell::new(HashMap::new()),
            #[cfg(feature = "registry")]
            draining: RefCell::new(std::collections::HashSet::new()),
        });
        CURRENT.with(|current| *current.borrow_mut() = Rc::downgrade(&home));
        crate::run_loop::wait_for_posted_work_with(run_one_posted_here);
        Inbox { home }
    }

    /// This thread's inbox, if it has one.
    pub fn current() -> Option<Inbox> {
        current_home().map(|home| Inbox { home })
    }

    /// A handle other threads post to this inbox through.
    pub fn handle(&self) -> LoopHandle {
        LoopHandle {
            mailbox: self.home.mailbox.clone(),
        }
    }

    /// Runs the work posted so far, in order, on this thread; returns how many items it found
    /// posted (each has run when it returns). Work posted while it runs waits for the next call
    /// (so a loop that calls this once per frame or per wake-up never starves its other
    /// sources). Called from posted work (a nested loop), it runs the rest of what the outer
    /// call found first. A panic in posted work is reported as an unhandled failure, and the
    /// rest still runs.
    pub fn run_pending(&self) -> usize {
        let count = self.home.take_posted();
        // Behind what an outer `run_pending` (this one runs inside one of its items) has not
        // run yet: that was posted first, and runs first.
        let ran = self.home.batch.borrow().len();
        for _ in 0..ran {
            // None: a `wait` inside an item ran the rest.
            let Some(item) = self.home.next_of_batch() else {
                break;
            };
            self.home.run(item);
            // Inside a step (a nested loop that waits for a chain to move on): the chains the
            // item fired wait in this thread's run loop until that step returns. They go on
            // now, as outside a step, and as a `wait` there lets them.
            crate::run_loop::drain_queued();
        }
        count
    }

    /// Whether work is waiting to be run.
    pub fn has_pending(&self) -> bool {
        !self.home.batch.borrow().is_empty() || !self.home.mailbox.lock().work.is_empty()
    }

    /// A pending [`LocalDeferred`] and a [`HomeResolver`] that fires it from any thread
    /// (Twisted's `reactor.callFromThread(d.callback, value)`): the result is posted here and
    /// the chain runs on this thread when the loop drains the inbox.
    #[track_caller]
    pub fn pending<T, E>(&self) -> (LocalDeferred<T, E>, HomeResolver<T, E>)
    where
        T: Send + 'static,
        E: FromFailure + Send + 'static,
    {
        let (deferred, resolver) = LocalDeferred::pending();
        (deferred, self.home_resolver(resolver))
    }

    /// As [`pending`](Inbox::pending), with a canceller that runs (on this thread) if the
    /// chain is cancelled while waiting.
    #[track_caller]
    pub fn pending_with_canceller<T, E>(
        &self,
        canceller: impl FnOnce() + 'static,
    ) -> (LocalDeferred<T, E>, HomeResolver<T, E>)
    where
        T: Send + 'static,
        E: FromFailure + Send + 'static,
    {
        let (deferred, resolver) = LocalDeferred::with_canceller(canceller);
        (deferred, self.home_resolver(resolver))
    }

    #[track_caller]
    fn home_resolver<T, E>(&self, resolver: LocalResolver<T, E>) -> HomeResolver<T, E>
    where
        T: Send + 'static,
        E: FromFailure + Send + 'static,
    {
        #[cfg(feature = "registry")]
        let chain = resolver.chain_address();
        let key = self.home.keep(Box::new(resolver));
        #[cfg(feature = "registry")]
        if let Some(chain) = chain {
            let fires = Fires {
                chain,
                adopted: None,
            };
            self.home.fired_here.borrow_mut().insert(key, fires);
        }
        HomeResolver {
            mailbox: Some(self.home.mailbox.clone()),
            key,
            created_at: std::panic::Location::caller(),
            fire: fire_kept::<T, E>,
            forget: |home, key| drop(home.take(key)),
        }
    }

    /// A [`Deferred`] (from any thread) as a [`LocalDeferred`] of this loop: when it fires, its
    /// result is posted here and the local chain goes on on this thread. Cancelling the local
    /// chain cancels the Deferred.
    ///
    /// When the loop stops (its last [`Inbox`] is dropped) before the Deferred has fired, the
    /// Deferred is cancelled then, on this thread (its canceller runs), as a task of
    /// [`spawn`](Inbox::spawn) is dropped: its result could only be refused. The local chain
    /// fails with [`NeverFired`](crate::NeverFired), as every local chain still waiting does.
    /// What the Deferred answers the cancel with is refused: a cancellation is dropped quietly
    /// (so is any failure of an error type that cannot say whether it holds one), another
    /// failure is reported as unhandled (nobody else can see it). A result its work fires
    /// later (a thread that goes on after the cancel) is dropped, as a fire after any cancel
    /// is ([`Resolver::callback`](crate::Resolver::callback)).
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::{Deferred, Inbox};
    ///
    /// let inbox = Inbox::new(|| {});
    /// let (d, resolver) = Deferred::<u32>::pending();
    /// let here = std::thread::current().id();
    /// let local = inbox.adopt(d).add_callback(move |n| {
    ///     assert_eq!(std::thread::current().id(), here); // on the loop's thread
    ///     Ok(n + 1)
    /// });
    /// std::thread::spawn(move || resolver.callback(41)).join().unwrap();
    /// assert_eq!(local.wait().unwrap(), 42); // `wait` drains this thread's inbox
    /// ```
    #[track_caller]
    pub fn adopt<T, E>(&self, deferred: Deferred<T, E>) -> LocalDeferred<T, E>
    where
        T: Send + 'static,
        E: FromFailure + Send + 'static,
    {
        let upstream = deferred.cancel_handle();
        // The key the local chain's result comes home under, set once it is made.
        let key = Rc::new(Cell::new(None::<u64>));
        let kept = key.clone();
        let weak = Rc::downgrade(&self.home);
        let (local, home) = self.pending_with_canceller(move || {
            // Held as an `Inbox`, as in `Inbox::spawn`'s canceller.
            let inbox = weak.upgrade().map(|home| Inbox { home });
            let home = inbox.as_ref().map(|inbox| &inbox.home).zip(kept.get());
            // A result that had come home before this cancel stays behind it: the cancel wins.
            let came_home = home.is_none_or(|(home, key)| home.has_result(key));
            upstream.cancel_in_canceller();
            // The Deferred's canceller may answer (fire it with a value or a failure): that
            // answer, posted here by the step below during the cancel, answers this cancel
            // too, as it does a cancel of the Deferred itself. It runs now, while this
            // canceller runs, not later, when the chain has failed with `Cancelled`.
            if !came_home
                && let Some((home, key)) = home
                && let Some(answer) = home.take_result(key)
            {
                home.run(answer);
            }
        });
        key.set(Some(home.key));
        // Cancelled if the loop stops before its result comes home (`Home`'s drop).
        self.home
            .adopted
            .borrow_mut()
            .insert(home.key, deferred.cancel_handle());
        // The registry shows the local chain waiting on the Deferred it adopted.
        #[cfg(feature = "registry")]
        if let Some(fires) = self.home.fired_here.borrow_mut().get_mut(&home.key) {
            fires.adopted = deferred.chain_seen_as();
        }
        // The step hands every outcome on, so the Deferred it gives holds nothing to report.
        drop(deferred.add_both(move |result| {
            home.settle_adopted(result);
            Ok::<(), E>(())
        }));
        local.made_by("Inbox::adopt")
    }

    /// Runs `work` on the thread pool (as [`defer_to_thread`](crate::defer_to_thread) does) and
    /// delivers its result here, on the loop's thread (Twisted's `deferToThread`): the steps
    /// added to the result run on the loop, so they may touch its `Rc` state.
    #[track_caller]
    pub fn defer_to_thread<T, E, F>(&self, work: F) -> LocalDeferred<T, E>
    where
        T: Send + 'static,
        E: FromFailure + Send + 'static,
        F: FnOnce() -> Result<T, E> + Send + 'static,
    {
        self.adopt(crate::defer_to_thread(work))
            .made_by("Inbox::defer_to_thread")
    }

    /// Polls `future` on this thread, now and each time it is woken (a wake from another
    /// thread is posted here), and fires the returned [`LocalDeferred`] with its output. The
    /// future need not be `Send`. (It polls with no runtime: a future that needs tokio's reactor
    /// wants `LocalDeferred::from_future`.)
    ///
    /// Cancelling the Deferred cancels, one at a time, the `LocalDeferred`s the future awaits
    /// (those its last poll left pending and it still holds), and polls it after each on what
    /// that gave it: if it completes then (it let the `Cancelled` pass with `?`, or translated
    /// it), its output answers the cancel, which stops there, as for
    /// [`Deferred::drive_future`]. Otherwise the future is dropped and the Deferred fails with
    /// [`Cancelled`](crate::Cancelled). A cancel from inside the future's own poll does the same
    /// when that poll returns.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::{Failure, Inbox};
    /// use std::rc::Rc;
    ///
    /// let (tx, rx) = std::sync::mpsc::channel::<()>();
    /// let inbox = Inbox::new(move || { let _ = tx.send(()); });
    /// let (reply, resolver) = inbox.pending::<u32, Failure>();
    /// let d = inbox.spawn(async move {
    ///     let base = Rc::new(40);             // held across an await: the future is not Send
    ///     let n = reply.await?;               // woken when the reply comes home
    ///     Ok::<_, Failure>(*base + n)
    /// });
    /// std::thread::spawn(move || resolver.callback(2));
    /// while !d.is_fired() {
    ///     rx.recv().unwrap();
    ///     inbox.run_pending();
    /// }
    /// assert_eq!(d.wait().unwrap(), 42);
    ///
    /// // A cancel reaches the reply the task awaits, and the task answers it.
    /// let (reply, _resolver) = inbox.pending::<u32, Failure>();
    /// let d = inbox.spawn(async move {
    ///     match reply.await {
    ///         Err(f) if f.is_cancelled() => Ok(0), // no reply: none
    ///         other => other,
    ///     }
    /// });
    /// d.cancel();
    /// assert_eq!(d.wait().unwrap(), 0);
    /// ```
    #[track_caller]
    pub fn spawn<T, E, F>(&self, future: F) -> LocalDeferred<T, E>
    where
        T: 'static,
        E: FromFailure + 'static,
        F: Future<Output = Result<T, E>> + 'static,
    {
        let at = Location::caller();
        let key = self.home.next_key();
        let home = Rc::downgrade(&self.home);
        let cancelled = Rc::new(Cell::new(false));
        let cancel = cancelled.clone();
        let awaited: Rc<RefCell<Vec<Noted<CancelHandle>>>> = Rc::default();
        let awaited_now = awaited.clone();
        let (deferred, resolver) = LocalDeferred::with_canceller(move || {
            // Held as an `Inbox`: if the task held the last other handle, dropping it stops
            // the loop (`Inbox`'s drop), while the inbox is still this thread's.
            let inbox = home.upgrade().map(|home| Inbox { home });
            // What the idle task still awaits is cancelled first, one at a time (Twisted's
            // cascade into what a coroutine awaits), and the task is polled after each on what
            // that gave it: if it completes, its output answers this cancel, which stops there.
            // (From inside the task's own poll, its list is out: that poll, seeing `cancelled`,
            // cancels what it noted when it returns, and drops the task.)
            if let Some(inbox) = &inbox {
                let completed = cancel_each(&awaited_now.take(), || {
                    inbox.home.poll_task_after_cancel(key);
                    !inbox.home.keeps(key)
                });
                if completed {
                    return;
                }
            }
            cancel.set(true);
            if let Some(inbox) = inbox {
                drop(inbox.home.take(key));
            }
        });
        resolver.held_by("Inbox::spawn");
        let task = Task {
            cancelled,
            awaited,
            future: Box::pin(future),
            resolver,
            waker: Waker::from(Arc::new(TaskWaker {
                mailbox: self.home.mailbox.clone(),
                key,
                queued: AtomicBool::new(false),
            })),
            at,
        };
        let task: Box<dyn PollTask> = Box::new(Some(task));
        self.home.waiting.borrow_mut().insert(key, Box::new(task));
        self.home.poll_task(key);
        deferred
    }

    /// A real-time [`LocalClock`] whose calls run on this loop: each timer waits on a shared
    /// timer thread and is posted here when due. For any loop that drains its inbox; loops with
    /// timers of their own have clocks on them (`TokioLocalClock`, `CalloopClock`).
    pub fn clock(&self) -> InboxClock {
        InboxClock {
            home: Rc::downgrade(&self.home),
        }
    }
}

/// An inbox that does not keep the loop going: what an integration's drain holds, so that
/// the loop stops when the user drops the last [`Inbox`].
#[cfg_attr(not(any(feature = "tokio", feature = "calloop")), allow(dead_code))]
pub(crate) struct WeakInbox(Weak<Home>);

#[cfg_attr(not(any(feature = "tokio", feature = "calloop")), allow(dead_code))]
impl WeakInbox {
    pub(crate) fn new(inbox: &Inbox) -> WeakInbox {
        WeakInbox(Rc::downgrade(&inbox.home))
    }

    /// The inbox, unless the loop has stopped.
    pub(crate) fn upgrade(&self) -> Option<Inbox> {
        self.0.upgrade().map(|home| Inbox { home })
    }
}

/// What an integration (`Inbox::on_tokio_local_set`, `Inbox::on_calloop`) keeps of the inbox
/// it made on this thread: the inbox, what wakes its drain (`W`: a `Notify`, a ping), and
/// whether a drain of a live loop runs (a `LocalSet`'s task, an `EventLoop`'s source). A loop
/// dropped before the inbox takes its drain with it; the next loop given the inbox drains it.
#[cfg_attr(not(any(feature = "tokio", feature = "calloop")), allow(dead_code))]
pub(crate) struct Drained<W> {
    inbox: WeakInbox,
    pub(crate) wake: W,
    alive: Rc<Cell<bool>>,
}

#[cfg_attr(not(any(feature = "tokio", feature = "calloop")), allow(dead_code))]
impl<W: Clone> Drained<W> {
    pub(crate) fn new(inbox: &Inbox, wake: W) -> Drained<W> {
        Drained {
            inbox: WeakInbox::new(inbox),
            wake,
            alive: Rc::new(Cell::new(false)),
        }
    }

    /// Whether the inbox is alive and a live loop drains it.
    #[cfg_attr(not(feature = "calloop"), allow(dead_code))]
    pub(crate) fn is_drained(&self) -> bool {
        self.alive.get() && self.inbox.upgrade().is_some()
    }

    /// Whether the inbox has stopped.
    #[cfg_attr(not(feature = "calloop"), allow(dead_code))]
    pub(crate) fn is_stopped(&self) -> bool {
        self.inbox.upgrade().is_none()
    }

    /// The inbox and its wake-up, if the inbox is alive and no live loop drains it.
    pub(crate) fn undrained(&self) -> Option<(Inbox, W)> {
        let inbox = self.inbox.upgrade()?;
        (!self.alive.get()).then(|| (inbox, self.wake.clone()))
    }

    /// What a new drain (a task, a source's callback) holds: the drain is alive from now on,
    /// until it is dropped (with its loop).
    pub(crate) fn drain_alive(&self) -> DrainAlive {
        self.alive.set(true);
        DrainAlive(self.alive.clone())
    }
}

/// Held by an integration's drain: its drop (with the drain's loop) marks the drain gone.
#[cfg_attr(not(any(feature = "tokio", feature = "calloop")), allow(dead_code))]
pub(crate) struct DrainAlive(Rc<Cell<bool>>);

impl Drop for DrainAlive {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

impl Home {
    fn next_key(&self) -> u64 {
        let key = self.next_key.get();
        self.next_key.set(key + 1);
        key
    }

    /// Keeps `value` for posted work to find by the key returned.
    fn keep(&self, value: Box<dyn Any>) -> u64 {
        let key = self.next_key();
        self.waiting.borrow_mut().insert(key, value);
        key
    }

    /// Takes back what was kept under `key` (the borrow ends before the caller uses it, so the
    /// user code it runs may keep and take more).
    fn take(&self, key: u64) -> Option<Box<dyn Any>> {
        #[cfg(feature = "registry")]
        self.fired_here.borrow_mut().remove(&key);
        let mut adopted = self.adopted.borrow_mut();
        if !adopted.is_empty() {
            adopted.remove(&key);
        }
        drop(adopted);
        self.waiting.borrow_mut().remove(&key)
    }

    /// Whether something is kept under `key` (a task: it is idle, not polled nor over).
    fn keeps(&self, key: u64) -> bool {
        self.waiting.borrow().contains_key(&key)
    }

    /// Whether the result fired under `key` is waiting to run (in the mailbox, or in the batch
    /// a `run_pending` took out of it).
    fn has_result(&self, key: u64) -> bool {
        let fires = |work: &Posted| work.fires_with_result() == Some(key);
        self.batch.borrow().iter().any(fires) || self.mailbox.lock().work.iter().any(fires)
    }

    /// Takes the result fired under `key` out of the mailbox, if it is there.
    fn take_result(&self, key: u64) -> Option<Posted> {
        let mut queue = self.mailbox.lock();
        let at = queue
            .work
            .iter()
            .position(|work| work.fires_with_result() == Some(key))?;
        queue.work.remove(at)
    }

    /// The next item of the work `run_pending` took out of the mailbox, if any is left.
    fn next_of_batch(&self) -> Option<Posted> {
        let item = self.batch.borrow_mut().pop_front()?;
        #[cfg(feature = "registry")]
        if let Some(key) = item.fires() {
            self.draining.borrow_mut().remove(&key);
        }
        Some(item)
    }

    /// Runs one posted item; a panic is reported, not propagated into the loop.
    fn run(&self, item: Posted) {
        if item.brings_a_result() {
            self.progressed();
        }
        unhandled::run_reporting_panic("posted work", || item.run(self));
    }

    /// As the loop stops, a result came home or a task ended: each task may be polled once
    /// more, for what it awaited may be there now. (Bounded: each result and each task does
    /// this once, so a task that wakes itself on every poll still cannot keep the stop going.)
    fn progressed(&self) {
        if let Some(polled) = self.stopping.borrow_mut().as_mut() {
            polled.clear();
        }
    }

    /// Polls the local task kept under `key` on what the cancel of one of the Deferreds it
    /// awaits gave it (`Inbox::spawn`'s canceller): a result too, so as the loop stops it is
    /// polled even if it was polled once already (bounded: a canceller runs once).
    fn poll_task_after_cancel(&self, key: u64) {
        if let Some(polled) = self.stopping.borrow_mut().as_mut() {
            polled.remove(&key);
        }
        self.poll_task(key);
    }

    /// Polls the local task kept under `key`, if it is still there (it is out of `waiting`
    /// while it is polled, so a cancel from inside its poll finds nothing to drop: the task's
    /// Deferred has failed then, and the task is dropped as soon as the poll returns).
    fn poll_task(&self, key: u64) {
        if let Some(polled) = self.stopping.borrow_mut().as_mut()
            && !polled.insert(key)
        {
            return; // polled once already as the loop stops
        }
        let Some(kept) = self.take(key) else {
            if let Some(woken) = self.polling.borrow_mut().get_mut(&key) {
                *woken = true; // being polled: polled again when that poll returns
            }
            return;
        };
        let Ok(mut task) = kept.downcast::<Box<dyn PollTask>>() else {
            unreachable!("a task's key holds the task");
        };
        self.polling.borrow_mut().insert(key, false);
        let pending = task.poll_once().is_pending();
        let woken = self.polling.borrow_mut().remove(&key) == Some(true);
        if !pending {
            // A task ended as the loop stops: the tasks awaiting it may be polled again.
            self.progressed();
        }
        if pending {
            self.waiting.borrow_mut().insert(key, task);
            if woken {
                self.mailbox
                    .post_or_refuse(Call(move |home: &Home| home.poll_task(key)));
            }
        }
    }
}

impl Drop for Inbox {
    /// The last handle: the loop stops. What was posted before runs now, while the inbox is
    /// still this thread's, so a `wait` in it drains the inbox as on a running loop (in the
    /// inbox's own drop, below, this thread has no inbox any more). The rest of the stop
    /// (refusing later posts, dropping what is kept) is the inbox's drop. A handle that the
    /// work makes and keeps (`Inbox::current`) keeps the loop running; its drop stops it.
    fn drop(&mut self) {
        if Rc::strong_count(&self.home) == 1 {
            self.home.drain();
            if Rc::strong_count(&self.home) > 1 {
                // The work made a handle and kept it: the loop runs on.
                *self.home.stopping.borrow_mut() = None;
            }
        }
    }
}

impl Home {
    /// Moves the work in the mailbox to the back of the batch; returns how many items it
    /// moved.
    fn take_posted(&self) -> usize {
        let work = std::mem::take(&mut self.mailbox.lock().work);
        let count = work.len();
        // The registry sees the results taken out here as still in the inbox until they run.
        #[cfg(feature = "registry")]
        self.draining
            .borrow_mut()
            .extend(work.iter().filter_map(|item| item.fires()));
        self.batch.borrow_mut().extend(work);
        count
    }

    /// Runs the batch and what is posted meanwhile, until both are empty. Through the batch,
    /// so that a `wait` in the work finds what is left of it (`run_one_posted_here`).
    fn drain(&self) {
        self.stopping
            .borrow_mut()
            .get_or_insert_with(std::collections::HashSet::new);
        loop {
            match self.next_of_batch() {
                Some(item) => self.run(item),
                None if self.take_posted() == 0 => return,
                None => {}
            }
        }
    }
}

impl Drop for Home {
    /// The loop has stopped: run what was posted before (nothing is lost), refuse later posts,
    /// and drop what was kept — each resolver left fails its Deferred with `NeverFired`. The
    /// wake-up is called once more, then dropped, so that an integration's drain (a task, an
    /// event source) sees the inbox gone and ends.
    fn drop(&mut self) {
        self.stopping
            .get_mut()
            .get_or_insert_with(std::collections::HashSet::new);
        while let Some(item) = self.next_of_batch() {
            self.run(item);
        }
        let wake = loop {
            let work = {
                let mut queue = self.mailbox.lock();
                let work = std::mem::take(&mut queue.work);
                if work.is_empty() {
                    break queue.wake.take();
                }
                work
            };
            for item in work {
                self.run(item);
            }
        };
        // The Deferreds adopted and still pending are cancelled, as a spawned task's future is
        // dropped: their results could only be refused now. Their cancellers run here; what
        // they answer is refused (a failure other than a cancellation is reported). The
        // local chains fail with `NeverFired` below, as every chain still waiting does.
        let adopted = std::mem::take(&mut *self.adopted.borrow_mut());
        let mailbox = Arc::as_ptr(&self.mailbox) as usize;
        crate::failure::as_the_loop_stops(|| {
            for (key, upstream) in adopted {
                unhandled::run_reporting_panic("a cancel as the loop stopped", move || {
                    // What the Deferred answers during this cancel, on this thread, is that
                    // cancel's answer (`HomeResolver::settle_adopted`).
                    struct Reset(Option<(usize, u64)>);
                    impl Drop for Reset {
                        fn drop(&mut self) {
                            ANSWERING_STOP.set(self.0);
                        }
                    }
                    let _reset = Reset(ANSWERING_STOP.replace(Some((mailbox, key))));
                    upstream.cancel_from(None);
                });
            }
        });
        let waiting = std::mem::take(&mut *self.waiting.borrow_mut());
        // One at a time: a panic in a `Drop` of the user's (a spawned future's) is reported,
        // and the rest are still dropped (each resolver left fails its Deferred).
        crate::failure::as_the_loop_stops(|| {
            for (_, kept) in waiting {
                unhandled::run_reporting_panic("a drop as the loop stopped", move || drop(kept));
            }
        });
        if let Some(wake) = wake {
            call_wake(&wake);
        }
    }
}

impl fmt::Debug for Inbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inbox")
            // What a `run_pending` took out of the mailbox and has not run yet is pending too
            // (as `has_pending` says).
            .field(
                "pending",
                &(self.home.batch.borrow().len() + self.home.mailbox.lock().work.len()),
            )
            .field("waiting", &self.home.waiting.borrow().len())
            .finish()
    }
}

/// Runs one item posted to this thread's inbox, waiting for one if none is there; `false` if
/// this thread has no inbox (for `LocalDeferred::wait`, through the run loop).
fn run_one_posted_here(until: Option<std::time::Instant>) -> bool {
    // Held as an `Inbox`: if the work run here drops the last other handle, the loop stops
    // (`Inbox`'s drop) when this one goes, while the inbox is still this thread's.
    let Some(inbox) = current_home().map(|home| Inbox { home }) else {
        return false;
    };
    let home = &inbox.home;
    // Inside an item of a `run_pending`: the rest of its batch was posted first.
    if let Some(item) = home.next_of_batch() {
        home.run(item);
        return true;
    }
    let item = {
        let mut queue = home.mailbox.lock();
        loop {
            if let Some(item) = queue.work.pop_front() {
                break item;
            }
            let Some(until) = until else {
                queue = home
                    .mailbox
                    .posted
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            };
            let Some(left) = until.checked_duration_since(std::time::Instant::now()) else {
                return true; // the time is up: nothing ran, the caller looks again
            };
            queue = home
                .mailbox
                .posted
                .wait_timeout(queue, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    };
    home.run(item);
    true
}

/// What a local chain whose root a [`HomeResolver`] fires waits on, as this thread's inbox sees
/// it (for the registry): its `HomeResolver`, the result that resolver posted here (or its
/// drop, which fails the chain with `NeverFired`) not run yet, or the `Deferred` it adopted.
#[cfg(feature = "registry")]
pub(crate) fn see_home(seen: &mut [crate::registry::Seen]) {
    use crate::registry::Waits;
    // `try_with`: a Deferred's `Debug` may run in another thread-local's destructor.
    let Some(home) = CURRENT
        .try_with(|current| current.borrow().upgrade())
        .ok()
        .flatten()
    else {
        return;
    };
    let posted: std::collections::HashSet<u64> = {
        let queue = home.mailbox.lock();
        let mut posted: std::collections::HashSet<u64> =
            queue.work.iter().filter_map(|work| work.fires()).collect();
        posted.extend(home.draining.borrow().iter().copied());
        posted
    };
    let by_chain: HashMap<usize, Waits> = home
        .fired_here
        .borrow()
        .iter()
        .map(|(key, fires)| {
            let waits = match fires.adopted {
                _ if posted.contains(key) => Waits::Inbox,
                Some((address, created_at)) => Waits::Chain {
                    address,
                    created_at,
                },
                None => Waits::HomeResolver,
            };
            (fires.chain, waits)
        })
        .collect();
    if by_chain.is_empty() {
        return;
    }
    for seen in seen {
        if matches!(seen.waits, Waits::Resolver)
            && let Some(waits) = by_chain.get(&seen.address)
        {
            seen.waits = *waits;
        }
    }
}

/// A handle to a loop's [`Inbox`], for other threads: `Send`, `Sync`, cheap to clone.
///
/// ```
/// # extern crate deferred_core as deferred;
/// use deferred::Inbox;
/// use std::sync::mpsc;
///
/// let inbox = Inbox::new(|| {});
/// let handle = inbox.handle();
/// let (tx, rx) = mpsc::channel();
/// std::thread::spawn(move || {
///     handle.post(move || tx.send(std::thread::current().id()).unwrap()).unwrap();
/// }).join().unwrap();
/// inbox.run_pending();
/// assert_eq!(rx.recv().unwrap(), std::thread::current().id()); // it ran on the loop's thread
/// ```
#[derive(Clone)]
pub struct LoopHandle {
    mailbox: Arc<Mailbox>,
}

/// A post refused because the loop has stopped: it holds the work given back.
pub struct Stopped<F>(pub F);

impl<F> fmt::Debug for Stopped<F> {
    /// What `unwrap` prints: the reason, as `Display` says it (the work is not `Debug`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Stopped(the event loop has stopped: its inbox takes no more work)"
        )
    }
}

impl<F> fmt::Display for Stopped<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the event loop has stopped: its inbox takes no more work")
    }
}

impl<F> std::error::Error for Stopped<F> {}

impl LoopHandle {
    /// Posts `work` to run on the loop's thread (Twisted's `reactor.callFromThread`), and wakes
    /// the loop. If the loop has stopped, the work is given back, not run.
    ///
    /// # Errors
    ///
    /// [`Stopped`], holding `work`, when the loop has stopped (its [`Inbox`] was dropped).
    pub fn post<F>(&self, work: F) -> Result<(), Stopped<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.mailbox
            .post(Plain(work))
            .map_err(|Plain(work)| Stopped(work))
    }

    /// Whether the loop has stopped (its inbox refuses posts).
    pub fn is_stopped(&self) -> bool {
        self.mailbox.lock().wake.is_none()
    }
}

impl fmt::Debug for LoopHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopHandle")
            .field("stopped", &self.is_stopped())
            .finish()
    }
}

/// The resolver of a [`LocalDeferred`] made by [`Inbox::pending`]: `Send`, so any thread can
/// fire it; the result is posted to the loop, and the chain runs there. Dropping it without
/// firing fails the Deferred with [`NeverFired`](crate::NeverFired), as a `Resolver` does.
///
/// It cannot tell whether the loop's chain still wants the result (that chain lives on the
/// loop's thread): a worker that should stop when the loop cancels its chain holds a
/// [`Resolver`](crate::Resolver) instead, whose [`is_closed`](crate::Resolver::is_closed)
/// says so, and the loop [`adopt`](Inbox::adopt)s its Deferred (cancelling the adopted chain
/// cancels that Deferred).
///
/// ```
/// # extern crate deferred_core as deferred;
/// use deferred::Inbox;
///
/// let inbox = Inbox::new(|| {});
/// let (d, resolver) = inbox.pending::<u32, deferred::Failure>();
/// let d = d.add_callback(|n| Ok(n + 1)); // runs on this thread
/// std::thread::spawn(move || resolver.callback(41)).join().unwrap();
/// inbox.run_pending();
/// assert_eq!(d.wait().unwrap(), 42);
/// ```
#[must_use = "dropping a HomeResolver without firing it fails its LocalDeferred with a `NeverFired` failure"]
pub struct HomeResolver<T, E: 'static = Failure> {
    /// `None` once fired.
    mailbox: Option<Arc<Mailbox>>,
    key: u64,
    /// Where it was made (`Inbox::pending`'s caller), for its `Debug`: the chain it fires lives
    /// on the loop's thread, out of reach of the thread that holds this.
    created_at: &'static std::panic::Location<'static>,
    /// Posted work that fires the `LocalResolver` kept under `key`.
    fire: fn(&Home, u64, Result<T, E>),
    /// Posted work that drops it unfired (it names no `T`, so `Drop` needs no bound on it).
    forget: fn(&Home, u64),
}

/// Fires the `LocalResolver<T, E>` kept under `key`, if it is still there.
fn fire_kept<T: 'static, E: 'static>(home: &Home, key: u64, result: Result<T, E>) {
    let Some(kept) = home.take(key) else {
        return;
    };
    let Ok(resolver) = kept.downcast::<LocalResolver<T, E>>() else {
        unreachable!("a key holds the resolver its HomeResolver was made with");
    };
    drop(resolver.settle(result));
}

impl<T, E> HomeResolver<T, E>
where
    T: Send + 'static,
    E: Send + 'static,
{
    /// Fires the Deferred with a success, on its loop.
    pub fn callback(self, value: T) {
        self.settle(Ok(value));
    }

    /// Fires the Deferred with a failure, on its loop. A [`Failure`] that no step has raised
    /// records this call as where it entered the chain ([`Failure::entered_at`]).
    #[track_caller]
    pub fn errback(self, error: E) {
        self.fire_from(Err(error), crate::failure::EnteredBy::Errback);
    }

    /// Fires the Deferred with `result`, on its loop. If the loop has stopped, its Deferred
    /// has failed with `NeverFired` already; a failure in `result` is then reported as
    /// unhandled, since nobody else can see it.
    #[track_caller]
    pub fn fire(self, result: Result<T, E>) {
        self.fire_from(result, crate::failure::EnteredBy::Fire);
    }

    /// A public firing method, called at the caller's location with `by` (see
    /// `Resolver::fire_from`).
    #[track_caller]
    fn fire_from(self, mut result: Result<T, E>, by: crate::failure::EnteredBy) {
        if let Err(error) = &mut result {
            crate::failure::note_entered(error, std::panic::Location::caller(), by);
        }
        self.settle(result);
    }

    /// Fires the Deferred with `result`, without noting where (see `Resolver::settle`).
    pub(crate) fn settle(mut self, result: Result<T, E>) {
        if let Some(mailbox) = self.mailbox.take() {
            mailbox.post_or_refuse(Fire {
                key: self.key,
                result,
                fire: self.fire,
            });
        }
    }

    /// [`settle`](Self::settle), for the result of a Deferred the loop adopted: refused (the
    /// loop has stopped, and cancelled the Deferred then), a cancellation is the answer to that
    /// cancel, expected, and dropped; another failure, which nobody else can see, is reported.
    pub(crate) fn settle_adopted(mut self, result: Result<T, E>) {
        if let Some(mailbox) = self.mailbox.take()
            && let Err(refused) = mailbox.post(Fire {
                key: self.key,
                result,
                fire: self.fire,
            })
            && let Err(error) = refused.result
        {
            let cancellation = crate::failure::is_cancellation(&error);
            // The answer to the stop's own cancel (given during it, on the loop's thread): a
            // cancellation, or an error type's that cannot tell, is expected, as for a driven
            // future's refused output (`unhandled::report_refused`). A failure fired by
            // another thread is reported unless it says it is a cancellation.
            let answers_the_stop =
                ANSWERING_STOP.get() == Some((Arc::as_ptr(&mailbox) as usize, self.key));
            let expected = match answers_the_stop {
                true => cancellation.unwrap_or(true),
                false => cancellation == Some(true),
            };
            if !expected {
                unhandled::report(error);
            }
        }
    }

    /// Whether the loop has stopped, so that firing can only drop the result.
    pub fn is_stopped(&self) -> bool {
        self.mailbox
            .as_ref()
            .is_none_or(|mailbox| mailbox.lock().wake.is_none())
    }
}

/// A `HomeResolver`'s result on its way home.
struct Fire<T, E: 'static> {
    key: u64,
    result: Result<T, E>,
    fire: fn(&Home, u64, Result<T, E>),
}

impl<T: Send, E: Send + 'static> Work for Fire<T, E> {
    fn run(self: Box<Self>, home: &Home) {
        (self.fire)(home, self.key, self.result);
    }

    /// The loop has stopped, and its Deferred failed with `NeverFired` then: nobody else can
    /// see a failure in this result, so it is reported.
    fn refused(self: Box<Self>) {
        unhandled::report_result(self.result);
    }

    fn brings_a_result(&self) -> bool {
        true
    }

    fn fires_with_result(&self) -> Option<u64> {
        Some(self.key)
    }

    #[cfg(feature = "registry")]
    fn fires(&self) -> Option<u64> {
        Some(self.key)
    }
}

/// A `HomeResolver` dropped unfired, on its way home: the `LocalResolver` kept under `key` is
/// dropped on the loop, which fails its Deferred with `NeverFired`. Refused, there is nothing
/// to do: the loop's stop failed the Deferred already.
struct Forget {
    key: u64,
    forget: fn(&Home, u64),
}

impl Work for Forget {
    fn run(self: Box<Self>, home: &Home) {
        (self.forget)(home, self.key);
    }

    fn refused(self: Box<Self>) {}

    fn brings_a_result(&self) -> bool {
        true
    }

    #[cfg(feature = "registry")]
    fn fires(&self) -> Option<u64> {
        Some(self.key)
    }
}

impl<T, E: 'static> Drop for HomeResolver<T, E> {
    /// Dropped unfired: the `LocalResolver` it stands for is dropped on the loop, which fails
    /// the Deferred with `NeverFired`.
    fn drop(&mut self) {
        if let Some(mailbox) = self.mailbox.take() {
            mailbox.post_or_refuse(Forget {
                key: self.key,
                forget: self.forget,
            });
        }
    }
}

impl<T, E: 'static> fmt::Debug for HomeResolver<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HomeResolver")
            .field("created_at", &format_args!("{}", self.created_at))
            .field(
                "stopped",
                &self
                    .mailbox
                    .as_ref()
                    .is_none_or(|mailbox| mailbox.lock().wake.is_none()),
            )
            .finish()
    }
}

/// A local future and the resolver of its Deferred, polled by the loop.
struct Task<T: 'static, E: 'static> {
    /// Set by the Deferred's canceller: the future is dropped, not polled again.
    cancelled: Rc<Cell<bool>>,
    /// What the future awaits: the `LocalDeferred`s its last poll left pending, which the
    /// Deferred's canceller cancels.
    awaited: Rc<RefCell<Vec<Noted<CancelHandle>>>>,
    future: Pin<Box<dyn Future<Output = Result<T, E>>>>,
    resolver: LocalResolver<T, E>,
    waker: Waker,
    at: &'static Location<'static>,
}

/// A task, its output type erased.
trait PollTask {
    /// Polls once: `Ready` once the task is over (its Deferred fired with the output or a
    /// panic, or was cancelled).
    fn poll_once(&mut self) -> Poll<()>;
}

impl<T: 'static, E: FromFailure + 'static> PollTask for Option<Task<T, E>> {
    fn poll_once(&mut self) -> Poll<()> {
        let Some(task) = self else {
            return Poll::Ready(());
        };
        if task.cancelled.get() {
            drop_cancelled(self.take());
            return Poll::Ready(());
        }
        let waker = task.waker.clone();
        let mut cx = Context::from_waker(&waker);
        let mut awaited = task.awaited.take();
        let polled = noting_awaited(&AWAITED, &crate::drive::AWAITED, &mut awaited, || {
            catch_unwind(AssertUnwindSafe(|| task.future.as_mut().poll(&mut cx)))
        });
        *task.awaited.borrow_mut() = awaited;
        let result = match polled {
            // Cancelled from inside its own poll: its canceller found nothing to drop (the task
            // is out of the loop's keeping while polled), so it is dropped here, not kept.
            // What this poll left it awaiting is cancelled first, as the canceller cancels what
            // an idle task awaits (the task is polled after each cancel, so that it reads what
            // the cancel gave it; its output is dropped: the Deferred has failed already).
            Ok(Poll::Pending) if task.cancelled.get() => {
                let awaited = task.awaited.take();
                let mut noted = Vec::new();
                // Outside the canceller: no place, as for a driven future (`drive.rs`).
                crate::failure::with_cancel_place(None, || {
                    cancel_each(&awaited, || {
                        let polled =
                            noting_awaited(&AWAITED, &crate::drive::AWAITED, &mut noted, || {
                                catch_unwind(AssertUnwindSafe(|| {
                                    task.future.as_mut().poll(&mut cx)
                                }))
                            });
                        !matches!(polled, Ok(Poll::Pending))
                    })
                });
                drop_cancelled(self.take());
                return Poll::Ready(());
            }
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(result)) => result,
            Err(payload) => Err(E::from(Failure::from_panic_in(
                payload,
                Some(task.at),
                "a future",
            ))),
        };
        if let Some(Task {
            future,
            resolver,
            at,
            ..
        }) = self.take()
        {
            // Dropped before the Deferred fires: a panic in its `Drop` is the failure, not
            // unwound into the loop or the `spawn`.
            let result = Failure::after_dropping(future, result, at);
            unhandled::report_refused(resolver.settle_from(
                result,
                at,
                crate::failure::EnteredBy::Spawn,
            ));
        }
        Poll::Ready(())
    }
}

/// Drops a cancelled task's future: its Deferred has failed with `Cancelled`, so a panic in the
/// future's `Drop` is reported, not unwound into the loop or the `spawn`.
fn drop_cancelled<T, E>(task: Option<Task<T, E>>) {
    unhandled::run_reporting_panic("a cancelled future's drop", move || drop(task));
}

/// Wakes a local task: posts a poll of it to its loop (once until it runs).
struct TaskWaker {
    mailbox: Arc<Mailbox>,
    key: u64,
    queued: AtomicBool,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        let waker = self.clone();
        // Refused, there is nothing to poll: the loop's stop dropped the task.
        self.mailbox.post_or_refuse(Call(move |home: &Home| {
            waker.queued.store(false, Ordering::Release);
            home.poll_task(waker.key);
        }));
    }
}

/// A call of an [`InboxClock`], kept by its loop until its timer posts it. Dropped unrun (the
/// loop stopped, or the call was cancelled), it cancels its timer, so that the timer thread
/// does not hold it (and the stopped loop's mailbox) until its deadline.
struct TimerCall {
    call: Option<Box<dyn FnOnce()>>,
    timer: Option<crate::timer::TimerId>,
}

impl Drop for TimerCall {
    fn drop(&mut self) {
        if let Some(timer) = self.timer.take() {
            crate::timer::cancel(timer);
        }
    }
}

/// A real-time [`LocalClock`] on an [`Inbox`]: see [`Inbox::clock`].
///
/// ```
/// # extern crate deferred_core as deferred;
/// use deferred::{Inbox, LocalClock};
/// use std::time::Duration;
///
/// let (tx, rx) = std::sync::mpsc::channel::<()>();
/// let inbox = Inbox::new(move || { let _ = tx.send(()); });
/// let rang = std::rc::Rc::new(std::cell::Cell::new(false));
/// let flag = rang.clone();
/// let _call = inbox.clock().call_later(Duration::from_millis(1), Box::new(move || flag.set(true)));
/// while !rang.get() {
///     rx.recv().unwrap();
///     inbox.run_pending();
/// }
/// ```
#[derive(Clone)]
pub struct InboxClock {
    home: Weak<Home>,
}

impl fmt::Debug for InboxClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboxClock").finish_non_exhaustive()
    }
}

// Unlisted in the clock traits' messages (see `Clock`).
#[diagnostic::do_not_recommend]
impl LocalClock for InboxClock {
    fn call_later(&self, delay: Duration, call: Box<dyn FnOnce()>) -> LocalDelayedCall {
        let Some(home) = self.home.upgrade() else {
            // The loop has stopped: the call can never run.
            return LocalDelayedCall::new(|| {});
        };
        let key = home.next_key();
        let mailbox = home.mailbox.clone();
        let timer = crate::timer::after(delay, move || {
            // Refused, there is nothing to run: the loop's stop dropped the call.
            mailbox.post_or_refuse(Call(move |home: &Home| {
                if let Some(kept) = home.take(key)
                    && let Ok(mut kept) = kept.downcast::<TimerCall>()
                {
                    kept.timer = None; // it has run
                    if let Some(call) = kept.call.take() {
                        call();
                    }
                }
            }));
        });
        // Kept before anything runs on this thread (where the timer's post is run).
        let kept = TimerCall {
            call: Some(call),
            timer: Some(timer),
        };
        home.waiting.borrow_mut().insert(key, Box::new(kept));
        let home = self.home.clone();
        LocalDelayedCall::new(move || {
            // Off the timer thread (so it holds the loop's mailbox no longer), and out of the
            // loop's keeping (so a post already on its way finds nothing to run).
            crate::timer::cancel(timer);
            // As an `Inbox`, as in `Inbox::spawn`'s canceller.
            if let Some(inbox) = home.upgrade().map(|home| Inbox { home }) {
                drop(inbox.home.take(key));
            }
        })
    }
}
