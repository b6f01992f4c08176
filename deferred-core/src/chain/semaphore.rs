//! `DeferredSemaphore`, `DeferredLock` and `map_concurrent`: limiting how much work runs at once
//! (Twisted's `DeferredSemaphore` and `DeferredLock`).
//!
//! The rules, kept here:
//!
//! - Tokens go to waiters first come, first served: a new `acquire` waits behind the queue even if
//!   a token is on its way back.
//! - A token is a [`Permit`] value: dropping it (or [`Permit::release`]) gives the token back, so
//!   a token cannot be released twice, and a permit that nobody takes (its Deferred dropped or
//!   cancelled after the hand-off) returns by itself.
//! - Hand-offs never recurse: a release made on a thread that is handing this semaphore's
//!   tokens out already (a waiter's callback that releases at once) only returns the token, and
//!   the loop running on that thread hands it on. A queue of any length drains in constant
//!   stack (Twisted's lock overflows the stack after 199 such waiters, issue #9304). A release
//!   on another thread hands its token on itself: a waiter's callback that takes long holds up
//!   only the tokens released on its own thread (its own, among them), which its thread's loop
//!   hands on when it returns.
//! - Cancelling a waiting `acquire` takes it out of the queue; it never gets a token.
//! - No user code runs under the lock: waiters are fired after it is released.

use std::fmt;
use std::panic::Location;

use super::fan_in::{FireOnFirstError, Leftovers, Policy, Sorted, fan_in};
use super::line::Line;
use super::maybe::maybe_deferred_at;
use super::{Deferred, IntoDeferred, Resolver};
use super::{Flag, Guard, Lock, Ptr, Sendable, Shareable, Weak};
use crate::failure::Failure;

/// At most `limit` holders at once (Twisted's `DeferredSemaphore`): [`acquire`](Self::acquire)
/// gives a Deferred of a [`Permit`], fired at once if a token is free, else when one comes back;
/// [`run`](Self::run) holds a permit around a function. Clones share one semaphore; it is `Send`
/// and `Sync`.
///
/// ```
/// # extern crate deferred_core as deferred;
/// use deferred::{Deferred, DeferredSemaphore};
///
/// let downloads = DeferredSemaphore::new(2);
/// let first = downloads.acquire().wait().unwrap();
/// let second = downloads.acquire().wait().unwrap();
/// let third = downloads.acquire();      // waits: both tokens are out
/// assert!(!third.is_fired());
///
/// first.release();                      // the token goes to the third at once
/// assert!(third.is_fired());
/// # drop(second);
/// ```
#[derive(Clone)]
pub struct DeferredSemaphore {
    shared: Ptr<Shared>,
}

/// A token of a [`DeferredSemaphore`] or [`DeferredLock`], held until it is released or dropped.
///
/// ```
/// # extern crate deferred_core as deferred;
/// use deferred::DeferredLock;
///
/// let lock = DeferredLock::new();
/// let permit = lock.acquire().wait().unwrap();
/// assert!(lock.is_locked());
/// drop(permit); // same as permit.release()
/// assert!(!lock.is_locked());
/// ```
#[must_use = "dropping a Permit releases it at once"]
pub struct Permit {
    shared: Ptr<Shared>,
}

struct Shared {
    limit: usize,
    state: Lock<State>,
}

struct State {
    /// Tokens not handed out.
    available: usize,
    /// Waiting acquirers in arrival order, by ticket number. An acquire dropped while it waits
    /// (a `tokio::select!` or a timeout around it) leaves it at the next sweep, as a cancelled
    /// one does at once, instead of piling up while the tokens are held.
    waiters: Line<Permit>,
    next_ticket: u64,
}

#[cfg(not(loom))]
std::thread_local! {
    /// The semaphores (by address) this thread runs a hand-off loop for: a release made inside
    /// one of their waiters' callbacks only returns its token, which that loop hands on.
    static HANDING_OFF: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
}

// loom's `thread_local!` does not take `const { .. }` initializers.
#[cfg(loom)]
loom::thread_local! {
    static HANDING_OFF: std::cell::RefCell<Vec<usize>> = std::cell::RefCell::new(Vec::new());
}

impl Shared {
    fn lock(&self) -> Guard<'_, State> {
        // No user code runs under the lock, so the state is consistent even after a panic.
        self.state.lock()
    }

    /// Gives a token back and, unless this thread runs a hand-off loop for this semaphore
    /// already, hands tokens to waiters until there are no free tokens or no waiters. Firing a
    /// waiter runs its callbacks, which may release at once: that release returns here, to the
    /// loop, instead of recursing. Every release that is not one of those runs a loop of its
    /// own, after its token is back: so a token is never stranded, whatever other threads'
    /// loops are doing.
    ///
    /// A release that finds nobody waiting when its token is back is done: an acquire that
    /// comes later, under the same lock, finds the token free and nobody ahead of it. That is
    /// the usual case, and it takes the lock once, not twice.
    fn release(self: &Ptr<Self>) {
        {
            let mut state = self.lock();
            state.available += 1;
            debug_assert!(state.available <= self.limit, "a token was returned twice");
            if state.waiters.is_empty() {
                return;
            }
        }
        let key = Ptr::as_ptr(self) as *const () as usize;
        let looping = HANDING_OFF.try_with(|loops| {
            let mut loops = loops.borrow_mut();
            if loops.contains(&key) {
                return true;
            }
            loops.push(key);
            false
        });
        if matches!(looping, Ok(true)) {
            return; // the loop this release was made in hands the token on
        }
        // Out of this thread's loops when the loop ends (or unwinds: only a panicking `Drop`
        // of a user value can make it). A thread whose locals are gone (a permit dropped by a
        // thread-local's destructor) runs the loop unrecorded.
        let _loop = looping.is_ok().then_some(HandOff(key));
        while let Some(waiter) = self.next_waiter() {
            waiter.callback(Permit {
                shared: self.clone(),
            });
        }
    }

    /// The waiter to hand a free token to, if there are both.
    fn next_waiter(&self) -> Option<Resolver<Permit>> {
        let mut state = self.lock();
        if state.available > 0
            && let Some((_, waiter)) = state.waiters.pop_first()
        {
            state.available -= 1;
            return Some(waiter);
        }
        None
    }

    /// Cancels the waiting acquire with `ticket`: it leaves the queue and fails with `Cancelled`.
    fn forget(&self, ticket: u64) {
        let waiter = self.lock().waiters.remove(&ticket);
        if let Some(waiter) = waiter {
            drop(waiter.settle(Err(Failure::cancelled_in_canceller())));
        }
    }
}

/// This thread's hand-off loop for the semaphore at this address, while it runs: taken out of
/// `HANDING_OFF` when it ends or unwinds, so the next release on this thread runs a new one.
struct HandOff(usize);

impl Drop for HandOff {
    fn drop(&mut self) {
        let _ = HANDING_OFF.try_with(|loops| loops.borrow_mut().retain(|key| *key != self.0));
    }
}

impl DeferredSemaphore {
    /// A semaphore with `tokens` tokens: at most that many permits are out at once.
    ///
    /// # Panics
    ///
    /// If `tokens` is 0 (Twisted raises `ValueError`): nobody could ever acquire it.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// let semaphore = deferred::DeferredSemaphore::new(3);
    /// assert_eq!((semaphore.limit(), semaphore.available()), (3, 3));
    /// ```
    #[track_caller]
    pub fn new(tokens: usize) -> DeferredSemaphore {
        assert!(
            tokens > 0,
            "a DeferredSemaphore needs at least one token (with 0, nobody could ever acquire \
             it): give 1 for one holder at a time (a `DeferredLock`)"
        );
        DeferredSemaphore {
            shared: Ptr::new(Shared {
                limit: tokens,
                state: Lock::new(State {
                    available: tokens,
                    waiters: Line::new(),
                    next_ticket: 0,
                }),
            }),
        }
    }

    /// A Deferred of a [`Permit`]: fired at once if a token is free and nobody is waiting, else
    /// queued, first come first served, until a permit is released. Cancelling a waiting acquire
    /// takes it out of the queue (it fails with [`Cancelled`](crate::Cancelled)); cancelling one
    /// that has fired does nothing.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::DeferredSemaphore;
    ///
    /// let semaphore = DeferredSemaphore::new(1);
    /// let held = semaphore.acquire().wait().unwrap();
    /// let waiting = semaphore.acquire();
    /// assert_eq!(semaphore.waiting(), 1);
    /// waiting.cancel();
    /// assert_eq!(semaphore.waiting(), 0);
    /// assert!(waiting.wait().unwrap_err().is_cancelled());
    /// held.release();
    /// assert_eq!(semaphore.available(), 1);
    /// ```
    #[track_caller]
    pub fn acquire(&self) -> Deferred<Permit> {
        self.acquire_at(Location::caller(), "DeferredSemaphore::acquire")
    }

    /// [`acquire`](Self::acquire), its waiting Deferred made at `at` and named after `helper`
    /// (for the registry): a helper's own acquire (`map_concurrent`'s, `DeferredLock`'s) is
    /// placed where the user called the helper, and named after it.
    fn acquire_at(&self, at: &'static Location<'static>, helper: &'static str) -> Deferred<Permit> {
        let mut state = self.shared.lock();
        if state.available > 0 && state.waiters.is_empty() {
            state.available -= 1;
            return Deferred::succeed(Permit {
                shared: self.shared.clone(),
            });
        }
        // Acquires whose Deferred was dropped leave the queue whenever it has doubled since the
        // last sweep (so that a loop of acquires dropped unanswered does not grow it for ever);
        // they are dropped once the lock is released.
        let dropped = if state.waiters.sweep_due() {
            state.waiters.sweep()
        } else {
            Vec::new()
        };
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        // Weak: a queue nobody can ever release into (every handle and permit gone) drops its
        // waiters, which then fail with `NeverFired` instead of waiting forever.
        let shared: Weak<Shared> = Ptr::downgrade(&self.shared);
        let canceller: super::Canceller = Box::new(move || {
            if let Some(shared) = shared.upgrade() {
                shared.forget(ticket);
            }
        });
        let (acquired, resolver) = Deferred::pending_with(Some(canceller), at);
        resolver.held_by(helper);
        state.waiters.insert(ticket, resolver);
        drop(state);
        drop(dropped);
        acquired
    }

    /// Runs `f` holding a permit, and releases it when `f`'s outcome is known — on success, on
    /// failure and on panic alike (Twisted's `run`). `f` runs once the permit is acquired, maybe
    /// later, on the thread that releases the token; it returns what a callback returns (a
    /// `Result`, or a Deferred: the permit is then held until that fires). Cancelling the result
    /// cancels a waiting acquire (then `f` never runs) or the Deferred `f` returned.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::{Deferred, DeferredSemaphore, Failure};
    ///
    /// let semaphore = DeferredSemaphore::new(1);
    /// let (work, resolver) = Deferred::<u32>::pending();
    /// let first = semaphore.run(move || work);           // holds the token until `work` fires
    /// let second = semaphore.run(|| Ok(2));               // waits for it
    /// assert!(!second.is_fired());
    ///
    /// resolver.callback(1);
    /// assert_eq!((first.wait().unwrap(), second.wait().unwrap()), (1, 2));
    ///
    /// let failed = semaphore.run(|| -> Result<u32, Failure> { panic!("boom") });
    /// assert!(failed.wait().is_err());
    /// assert_eq!(semaphore.available(), 1);             // released on every path
    /// ```
    #[track_caller]
    pub fn run<R, F>(&self, f: F) -> Deferred<R::Value>
    where
        F: FnOnce() -> R + Sendable + 'static,
        R: IntoDeferred<Failure>,
        R::Value: Sendable + 'static,
    {
        self.run_at(f, Location::caller(), "DeferredSemaphore::run")
    }

    /// [`run`](Self::run), its acquire, steps and call placed at `at` (the caller's line, for
    /// the registry, and for a failure's origin and trail, not this one's) and its waiting
    /// acquire named after `helper`.
    fn run_at<R, F>(
        &self,
        f: F,
        at: &'static Location<'static>,
        helper: &'static str,
    ) -> Deferred<R::Value>
    where
        F: FnOnce() -> R + Sendable + 'static,
        R: IntoDeferred<Failure>,
        R::Value: Sendable + 'static,
    {
        self.acquire_at(at, helper)
            .add_callback_at(at, move |permit| {
                maybe_deferred_at(at, f).add_both_at(at, move |outcome| {
                    permit.release();
                    outcome
                })
            })
    }

    /// How many permits can be out at once.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// assert_eq!(deferred::DeferredSemaphore::new(4).limit(), 4);
    /// ```
    pub fn limit(&self) -> usize {
        self.shared.limit
    }

    /// How many tokens are free now (Twisted's `tokens`).
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// let semaphore = deferred::DeferredSemaphore::new(2);
    /// let _permit = semaphore.acquire();
    /// assert_eq!(semaphore.available(), 1);
    /// ```
    pub fn available(&self) -> usize {
        self.shared.lock().available
    }

    /// How many acquires are queued, waiting for a token (not counting those whose Deferred was
    /// dropped).
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// let semaphore = deferred::DeferredSemaphore::new(1);
    /// let _held = semaphore.acquire();
    /// let _queued = semaphore.acquire();
    /// assert_eq!(semaphore.waiting(), 1);
    /// ```
    pub fn waiting(&self) -> usize {
        self.shared.lock().waiters.open()
    }
}

impl fmt::Debug for DeferredSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("DeferredSemaphore")
            .field("limit", &self.shared.limit)
            .field("available", &state.available)
            .field("waiting", &state.waiters.open())
            .finish()
    }
}

impl Permit {
    /// Gives the token back (the same as dropping the permit): the first waiter, if any, gets it
    /// at once. Taking `self` makes a double release a compile error.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::DeferredSemaphore;
    ///
    /// let semaphore = DeferredSemaphore::new(1);
    /// let permit = semaphore.acquire().wait().unwrap();
    /// let next = semaphore.acquire();
    /// permit.release();
    /// assert!(next.is_fired());
    /// ```
    pub fn release(self) {
        drop(self);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.shared.release();
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("limit", &self.shared.limit)
            .finish()
    }
}

/// One holder at a time (Twisted's `DeferredLock`): a [`DeferredSemaphore`] of one token, with
/// [`is_locked`](DeferredLock::is_locked). Clones share one lock.
///
/// ```
/// # extern crate deferred_core as deferred;
/// use deferred::{Deferred, DeferredLock};
///
/// let lock = DeferredLock::new();
/// let (write, done) = Deferred::<()>::pending();
/// let first = lock.run(move || write);                 // holds the lock until `write` fires
/// let second = lock.run(|| Ok("after the first"));
/// assert!(lock.is_locked() && !second.is_fired());
/// done.callback(());
/// assert_eq!(second.wait().unwrap(), "after the first");
/// assert!(!lock.is_locked());
/// # first.wait().unwrap();
/// ```
#[derive(Clone)]
pub struct DeferredLock {
    semaphore: DeferredSemaphore,
}

impl DeferredLock {
    /// An unlocked lock.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// assert!(!deferred::DeferredLock::new().is_locked());
    /// ```
    pub fn new() -> DeferredLock {
        DeferredLock {
            semaphore: DeferredSemaphore::new(1),
        }
    }

    /// A Deferred of the lock's [`Permit`]: fired at once if the lock is free, else when it is
    /// released to this acquirer (first come, first served). Cancelling a waiting acquire takes
    /// it out of the queue.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// let lock = deferred::DeferredLock::new();
    /// let held = lock.acquire().wait().unwrap();
    /// let next = lock.acquire();
    /// held.release();                 // the lock passes straight to `next`
    /// assert!(lock.is_locked());
    /// drop(next.wait().unwrap());
    /// assert!(!lock.is_locked());
    /// ```
    #[track_caller]
    pub fn acquire(&self) -> Deferred<Permit> {
        self.semaphore
            .acquire_at(Location::caller(), "DeferredLock::acquire")
    }

    /// Runs `f` holding the lock, and releases it on every path (see
    /// [`DeferredSemaphore::run`]).
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// let lock = deferred::DeferredLock::new();
    /// assert_eq!(lock.run(|| Ok(5)).wait().unwrap(), 5);
    /// assert!(!lock.is_locked());
    /// ```
    #[track_caller]
    pub fn run<R, F>(&self, f: F) -> Deferred<R::Value>
    where
        F: FnOnce() -> R + Sendable + 'static,
        R: IntoDeferred<Failure>,
        R::Value: Sendable + 'static,
    {
        self.semaphore
            .run_at(f, Location::caller(), "DeferredLock::run")
    }

    /// Whether someone holds the lock.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// let lock = deferred::DeferredLock::new();
    /// let permit = lock.acquire();
    /// assert!(lock.is_locked());
    /// drop(permit);
    /// assert!(!lock.is_locked());
    /// ```
    pub fn is_locked(&self) -> bool {
        self.semaphore.available() == 0
    }

    /// How many acquires are queued, waiting for the lock.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// let lock = deferred::DeferredLock::new();
    /// let _held = lock.acquire();
    /// let _queued = lock.acquire();
    /// assert_eq!(lock.waiting(), 1);
    /// ```
    pub fn waiting(&self) -> usize {
        self.semaphore.waiting()
    }
}

impl Default for DeferredLock {
    fn default() -> DeferredLock {
        DeferredLock::new()
    }
}

impl fmt::Debug for DeferredLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeferredLock")
            .field("locked", &self.is_locked())
            .field("waiting", &self.waiting())
            .finish()
    }
}

/// Calls `f` on every item with at most `limit` calls outstanding at once, and fires with their
/// values in item order — the Twisted idiom `gatherResults([sem.run(f, x) for x in items])`,
/// built on a [`DeferredSemaphore`]. Items start in order as tokens free up; `f` returns what a
/// callback returns (a `Result`, or a Deferred that holds its token until it fires).
///
/// The first failure fails the result with a [`FirstError`](crate::FirstError) naming the item's
/// index, and stops the rest: no item starts after it, running ones are cancelled. Cancelling the
/// result does the same, whatever the items do with their own cancellation: an item that turns
/// it into a value (`add_both(|o| Ok(o))`, to collect every outcome) still starts nothing after
/// it, and the result is a failure (a [`FirstError`](crate::FirstError) at the first item not
/// started, or, when every item had started, [`Cancelled`](crate::Cancelled)). The first
/// failure to arrive decides: an item that another thread fails as the cancel reaches it has
/// nothing left to cancel, and the cancel goes on: the next item's `Cancelled` may arrive first
/// and decide. A failure the result leaves out (one that arrives after the outcome, other than
/// an item's answer to the batch's cancel) is reported through the
/// [unhandled-error hook](crate::set_unhandled_hook). No items: fires at once with `[]`.
///
/// # Panics
///
/// If `limit` is 0.
///
/// ```
/// # extern crate deferred_core as deferred;
/// use deferred::{map_concurrent, Deferred, Failure, FirstError};
///
/// let squares = map_concurrent(1..=5, 2, |n: u64| Ok(n * n));
/// assert_eq!(squares.wait().unwrap(), [1, 4, 9, 16, 25]);
///
/// let failed = map_concurrent(["1", "x", "3"], 2, |s: &str| Ok(s.parse::<u32>()?));
/// let first = failed.wait().unwrap_err().trap::<FirstError>().unwrap();
/// assert_eq!(first.index, 1);
/// ```
#[track_caller]
pub fn map_concurrent<I, F, R>(items: I, limit: usize, f: F) -> Deferred<Vec<R::Value>>
where
    I: IntoIterator,
    I::Item: Sendable + 'static,
    F: Fn(I::Item) -> R + Shareable + 'static,
    R: IntoDeferred<Failure>,
    R::Value: Sendable + 'static,
{
    assert!(
        limit > 0,
        "map_concurrent runs at most `limit` items at once: `limit` must be at least 1"
    );
    let at = Location::caller();
    let semaphore = DeferredSemaphore::new(limit);
    let f = Ptr::new(f);
    // Set by the first failure before its token is released, so the item that gets the token
    // next does not start.
    let stopped = Ptr::new(Flag::new());
    let stopped_on_cancel = stopped.clone();
    let runs = items
        .into_iter()
        .map(|item| {
            let (f, stopped) = (f.clone(), stopped.clone());
            semaphore
                .acquire_at(at, "map_concurrent")
                .add_callback_at(at, move |permit| {
                    if stopped.get() {
                        // Not started: the failure that stopped the batch decides, even when this
                        // refusal reaches the result first (a token released by the failing item
                        // starts the next waiting one before that failure arrives).
                        return Deferred::from_result(Err(Failure::new(Skipped)));
                    }
                    maybe_deferred_at(at, move || f(item)).add_both_at(at, move |outcome| {
                        if outcome.is_err() {
                            stopped.set();
                        }
                        permit.release();
                        outcome
                    })
                })
        })
        .collect();
    // Rule: a cancelled batch starts nothing more, whatever its items do with their own
    // failures. The cancel must stop the batch before it reaches the items: an item that turns
    // its cancellation into a value (`add_both(|o| Ok(o))`, or a canceller that answers with
    // one) releases its token as a success would, and the next item would start. So `stopped`
    // is set before the items are cancelled (the outcome then comes from their answers).
    fan_in(
        runs,
        StopFirst {
            stopped: stopped_on_cancel,
        },
        Leftovers {
            consume_errors: false,
            cancel_when_decided: true,
        },
        at,
        "map_concurrent",
    )
}

/// An item `map_concurrent` did not start: the batch had stopped (an item failed, or the
/// result was cancelled) when its token came. Never seen outside: the policy keeps it as a gap,
/// or, after the outcome is decided, drops it unreported.
#[derive(Debug)]
struct Skipped;

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not started: the batch had stopped")
    }
}

impl std::error::Error for Skipped {}

/// `map_concurrent`'s policy: [`FireOnFirstError`]'s, but an item it did not start
/// ([`Skipped`]) decides nothing — the failure that stopped the batch does, whenever it
/// arrives — and `stopped` is set before the items are cancelled.
struct StopFirst {
    stopped: Ptr<Flag>,
}

impl<T: Sendable + 'static> Policy<T, Failure> for StopFirst {
    type Decision = (usize, Failure);
    /// A value, or the gap an item not started leaves.
    type Kept = Option<T>;
    type Output = Vec<T>;
    type Error = Failure;

    fn sort(
        &self,
        index: usize,
        result: Result<T, Failure>,
    ) -> Sorted<(usize, Failure), Option<T>> {
        match result {
            Ok(value) => Sorted::Kept(Some(value)),
            Err(failure) if failure.is::<Skipped>() => Sorted::Kept(None),
            Err(failure) => Sorted::Decides((index, failure)),
        }
    }

    fn decided(&self, decision: (usize, Failure)) -> Result<Vec<T>, Failure> {
        Policy::<T, Failure>::decided(&FireOnFirstError, decision)
    }

    /// Every item arrived and none failed. If the batch was stopped all the same (only a cancel
    /// of the result stops it without a failure), each item running then turned its
    /// cancellation into a value: the result fails, as a cancelled batch does — at the first
    /// item not started, or, if every item had started, with the cancellation itself.
    fn settled(&self, kept: Vec<Option<T>>) -> Result<Vec<T>, Failure> {
        match kept.iter().position(Option::is_none) {
            None if self.stopped.get() => Err(Failure::cancelled()),
            None => Ok(kept.into_iter().flatten().collect()),
            Some(index) => {
                Policy::<T, Failure>::decided(&FireOnFirstError, (index, Failure::cancelled()))
            }
        }
    }

    fn unwanted(_kept: Option<T>) -> Option<Failure> {
        None
    }

    fn kept_success(kept: Option<T>) -> Result<T, Option<T>> {
        kept.ok_or(None)
    }

    fn cancelling(&self) {
        self.stopped.set();
    }

    fn expected(&self, error: &Failure) -> bool {
        error.is::<Skipped>()
    }
}
