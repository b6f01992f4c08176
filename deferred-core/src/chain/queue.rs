//! `DeferredQueue`: a queue whose `get` gives a Deferred (Twisted's `defer.DeferredQueue`).
//!
//! The rules, kept here:
//!
//! - Items go to `get`s first come, first served: a `put` hands its item to the oldest waiting
//!   `get` if there is one, else keeps it; a `get` takes the oldest kept item at once, else waits.
//! - `size` bounds the items kept (a `put` beyond it fails with `QueueOverflow`, handing the item
//!   back), `backlog` the `get`s waiting (a `get` beyond it fails with `QueueUnderflow`).
//! - Cancelling a waiting `get` takes it out of the line; it never gets an item. So does
//!   dropping it (`Resolver::is_closed`): a `put` passes a dropped get by, and dropped gets do
//!   not count against the backlog. A get dropped after it was handed an item gives it back
//!   to the queue's front, unless something took it first (`Resolver::try_fire_or_give_back`):
//!   to its place there, before the items put after it (each item keeps the number of its turn),
//!   so gets dropped in any order leave the items in the order they were put.
//! - No user code runs under the lock: a waiting `get` is fired after it is released. A `put`
//!   made inside a `get`'s callbacks fires the next `get` through the run loop, so a line of any
//!   length drains in constant stack.

use std::collections::VecDeque;
use std::fmt;

use super::line::Line;
use super::{Deferred, Lock, Ptr, Sendable, Weak};
use crate::failure::{Failure, QueueOverflow, QueueUnderflow};

/// Where [`DeferredQueue::hand`] keeps an item no get waits for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kept {
    /// At the end: a `put`.
    Last,
    /// At the front, in its turn (the number it was handed out with): an item a dropped get
    /// gave back, kept before the items put after it.
    First(u64),
}

/// A queue of items whose [`get`](DeferredQueue::get) gives a Deferred, fired when an item is
/// there (Twisted's `DeferredQueue`). Clones share one queue.
///
/// The rules:
///
/// 1. FIFO hand-off: a [`put`](DeferredQueue::put) gives its item to the oldest waiting `get`,
///    else keeps it; a `get` takes the oldest kept item at once (a fired Deferred), else waits.
/// 2. `size` limits the items kept: a `put` into a full queue with no `get` waiting fails with
///    [`QueueOverflow`], which hands the item back. `backlog` limits the `get`s waiting: a `get`
///    on an empty queue with a full backlog fails with [`QueueUnderflow`]. `None`: no limit.
/// 3. Cancelling a waiting `get` takes it out of the line (it fails with
///    [`Cancelled`](crate::Cancelled)); the next `put` goes to the `get` after it. Dropping a
///    waiting `get`'s Deferred (with no step left on it) leaves the line too: no item is handed
///    to it, and it does not count against `backlog`. A `get` dropped after it was handed an
///    item, before anything took the item from it, gives the item back, to the front of the
///    queue (or to the oldest waiting `get`), whatever `size` says: before the items put after
///    it, so the items kept stay in the order they were put. So a `get` raced against a
///    timeout in `tokio::select!`, and dropped when the timeout wins, loses nothing, whenever
///    the item came. (This holds for the `get`'s own Deferred: a step added to it — a
///    `map_err`, an `add_timeout` — takes the item, and the Deferred it gives drops the item
///    with it. Race the `get` itself.) A combinator the `get` is given to as it is keeps an
///    item handed to the `get` before it decides for its result ([`join`](crate::join),
///    [`gather_results`](crate::gather_results), `fire_on_one_errback`,
///    [`settle_all`](crate::settle_all)), and gives it back the same way, to the next `get`, if
///    the result leaves it out: another input's failure decides (an input's `Cancelled`, when
///    the result is cancelled), or nobody can see the result (its Deferred dropped unread
///    before it fired). So does an item handed to the `get` after the combinator has decided
///    without it (a [`DeferredList`](crate::DeferredList) or `gather_results` leaves its other
///    inputs running). An item in a combinator's result is the result's, as one a step took:
///    that result dropped unread, or left out by a combinator it is itself an input of
///    (`gather_results([gather_results([queue.get(), a]), b])`, `a` succeeding before `b` fails
///    or after), drops it with itself.
/// 4. Waiting `get`s are fired after the queue's lock is released, and a `put` made inside a
///    `get`'s callbacks fires the next `get` after that callback returns: any number of waiters
///    are released in constant stack.
/// 5. When the last handle of the queue is dropped, nobody can put into it any more: its
///    waiting `get`s fail with [`NeverFired`](crate::NeverFired). A clone of the queue that a
///    waiting `get`'s own callback holds is such a handle, and keeps the queue alive with that
///    `get` in it: cancel the `get` to let both go.
///
/// ```
/// # extern crate deferred_core as deferred;
/// use deferred::{DeferredQueue, QueueUnderflow};
///
/// let jobs = DeferredQueue::new();
/// let first = jobs.get().add_callback(|job: &str| Ok(job.len()));
/// assert!(!first.is_fired());
/// jobs.put("resize").unwrap();          // straight to the waiting get
/// jobs.put("upload").unwrap();          // kept
/// assert_eq!(first.wait().unwrap(), 6);
/// assert_eq!(jobs.get().wait().unwrap(), "upload");
///
/// let strict = DeferredQueue::<u32>::with_limits(Some(10), Some(1));
/// let _waiting = strict.get();
/// assert!(strict.get().wait().unwrap_err().is::<QueueUnderflow>());
/// ```
pub struct DeferredQueue<T> {
    shared: Ptr<Shared<T>>,
}

struct Shared<T> {
    size: Option<usize>,
    backlog: Option<usize>,
    state: Lock<State<T>>,
}

struct State<T> {
    /// Items put and not yet taken, oldest first, each with its turn (the order it was put
    /// in: an item given back goes back to its place by it).
    items: VecDeque<(u64, T)>,
    /// The turn of the next item put.
    next_turn: u64,
    /// Waiting gets, by ticket (the order they came).
    waiting: Line<T>,
    next_ticket: u64,
}

impl<T: Sendable + 'static> DeferredQueue<T> {
    /// A queue with no limits.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// let queue = deferred::DeferredQueue::new();
    /// queue.put(1).unwrap();
    /// assert_eq!(queue.len(), 1);
    /// ```
    pub fn new() -> DeferredQueue<T> {
        DeferredQueue::with_limits(None, None)
    }

    /// A queue keeping at most `size` items and `backlog` waiting gets (`None`: no limit).
    pub fn with_limits(size: Option<usize>, backlog: Option<usize>) -> DeferredQueue<T> {
        DeferredQueue {
            shared: Ptr::new(Shared {
                size,
                backlog,
                state: Lock::new(State {
                    items: VecDeque::new(),
                    waiting: Line::new(),
                    next_ticket: 0,
                    next_turn: 0,
                }),
            }),
        }
    }

    /// Puts `item` in: to the oldest waiting get (whose callbacks run now, on this thread), else
    /// kept; fails with [`QueueOverflow`] (handing the item back) if the queue is full.
    ///
    /// # Errors
    ///
    /// [`QueueOverflow`], holding `item`, when no get waits and the queue holds its `size`
    /// already.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::DeferredQueue;
    ///
    /// let queue = DeferredQueue::with_limits(Some(1), None);
    /// let waiting = queue.get();
    /// queue.put('a').unwrap();                 // to the waiting get: nothing kept
    /// queue.put('b').unwrap();                 // kept
    /// assert!(queue.put('c').is_err());        // full
    /// assert_eq!(waiting.wait().unwrap(), 'a');
    /// ```
    pub fn put(&self, item: T) -> Result<(), QueueOverflow<T>> {
        self.hand(item, Kept::Last)
    }

    /// Hands `item` to the oldest waiting get, else keeps it, `at` the end of the queue or (an
    /// item a dropped get gave back, which the queue took already) its front.
    fn hand(&self, item: T, at: Kept) -> Result<(), QueueOverflow<T>> {
        let mut item = item;
        loop {
            let (waiter, turn) = {
                let mut state = self.shared.state.lock();
                // A put takes its turn now: after every item kept or handed out before.
                let turn = match at {
                    Kept::First(turn) => turn,
                    Kept::Last => {
                        let turn = state.next_turn;
                        state.next_turn += 1;
                        turn
                    }
                };
                match state.waiting.pop_first() {
                    Some((_, waiter)) => (waiter, turn),
                    None if matches!(at, Kept::First(_)) => {
                        // Before the items put after it (given back in any order, the items
                        // stay in the order they were put).
                        let place = state.items.partition_point(|(kept, _)| *kept < turn);
                        state.items.insert(place, (turn, item));
                        return Ok(());
                    }
                    None => {
                        if self
                            .shared
                            .size
                            .is_some_and(|size| state.items.len() >= size)
                        {
                            return Err(QueueOverflow(item));
                        }
                        state.items.push_back((turn, item));
                        return Ok(());
                    }
                }
            };
            // Fired outside the lock (its callbacks are user code). A get cancelled after it was
            // taken out of the line, before this fire, or whose Deferred was dropped, gives the
            // item back: it goes to the next waiter, or into the queue — never lost. So does a
            // get dropped after this fire, before anything took the item from it.
            match waiter.try_fire_or_give_back(item, self.give_back(turn)) {
                Ok(()) => return Ok(()),
                Err(back) => item = back,
            }
        }
    }

    /// Where an item a get was handed, in its `turn`, goes if the get's Deferred is dropped
    /// before anything takes it: back to the queue's front, before the items put after it (or
    /// to the oldest waiting get), while the queue lives.
    fn give_back(&self, turn: u64) -> impl FnOnce(T) + Sendable + 'static + use<T> {
        let shared: Weak<Shared<T>> = Ptr::downgrade(&self.shared);
        move |item| {
            if let Some(shared) = shared.upgrade() {
                let queue = DeferredQueue { shared };
                if queue.hand(item, Kept::First(turn)).is_err() {
                    unreachable!("an item given back is kept whatever the queue's size");
                }
            }
        }
    }

    /// A Deferred of the next item: fired at once with the oldest kept item, else when one is
    /// put (first come, first served). On an empty queue with a full backlog, it fails at once
    /// with [`QueueUnderflow`]. Cancelling a waiting get takes it out of the line.
    ///
    /// The item stays in the get's chain until a step or the Deferred's end takes it, so that
    /// a get dropped unread gives it back (rule 3): [`peek`](Deferred::peek) sees it after
    /// [`poll_fired`](Deferred::poll_fired), as for any Deferred whose chain has fired. A get
    /// given to a combinator that decides without it and leaves it running
    /// (`fire_on_one_callback`, `fire_on_one_errback`, `gather_results`) gives its item back the
    /// same way: an item handed to it after that goes to the next get, not into a result nobody
    /// sees; and so does one a combinator kept for its result, if the result leaves it out
    /// (rule 3).
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::DeferredQueue;
    ///
    /// let queue = DeferredQueue::new();
    /// let (a, b) = (queue.get(), queue.get());
    /// a.cancel();                      // leaves the line
    /// queue.put("x").unwrap();         // goes to `b`
    /// assert_eq!(b.wait().unwrap(), "x");
    /// assert!(a.wait().unwrap_err().is_cancelled());
    /// ```
    #[track_caller]
    pub fn get(&self) -> Deferred<T> {
        let mut state = self.shared.state.lock();
        if let Some((turn, item)) = state.items.pop_front() {
            drop(state);
            // Fired, and the item kept so that it goes back if the Deferred is dropped before
            // anything takes it (a `get` in a `tokio::select!` whose other branch won).
            let (got, resolver) = Deferred::pending();
            if resolver
                .try_fire_or_give_back(item, self.give_back(turn))
                .is_err()
            {
                unreachable!("a new get is open");
            }
            return got;
        }
        let full = |state: &State<T>| {
            self.shared
                .backlog
                .is_some_and(|backlog| state.waiting.len() >= backlog)
        };
        // Gets whose Deferred was dropped leave the line here too: when the backlog looks
        // full, and whenever the line has doubled since the last sweep (so that a loop of gets
        // dropped unanswered does not grow it for ever). They are dropped once the lock is
        // released.
        let dropped = if full(&state) || state.waiting.sweep_due() {
            state.waiting.sweep()
        } else {
            Vec::new()
        };
        let got = if full(&state) {
            Deferred::from_result(Err(Failure::new(QueueUnderflow)))
        } else {
            let ticket = state.next_ticket;
            state.next_ticket += 1;
            // Weak: a queue nobody can put into any more drops its waiting gets, which then
            // fail with `NeverFired` instead of waiting for ever.
            let shared: Weak<Shared<T>> = Ptr::downgrade(&self.shared);
            let (got, resolver) = Deferred::with_canceller(move || {
                if let Some(shared) = shared.upgrade() {
                    let waiter = shared.state.lock().waiting.remove(&ticket);
                    if let Some(waiter) = waiter {
                        drop(waiter.settle(Err(Failure::cancelled_in_canceller())));
                    }
                }
            });
            resolver.held_by("DeferredQueue::get");
            state.waiting.insert(ticket, resolver);
            got
        };
        drop(state);
        drop(dropped);
        got
    }

    /// How many items are kept, waiting for a get.
    pub fn len(&self) -> usize {
        self.shared.state.lock().items.len()
    }

    /// Whether no item is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many gets are waiting for an item (not counting those whose Deferred was dropped).
    pub fn waiting(&self) -> usize {
        self.shared.state.lock().waiting.open()
    }

    /// The most items kept (`None`: no limit).
    pub fn size(&self) -> Option<usize> {
        self.shared.size
    }

    /// The most gets waiting (`None`: no limit).
    pub fn backlog(&self) -> Option<usize> {
        self.shared.backlog
    }
}

impl<T: Sendable + 'static> Default for DeferredQueue<T> {
    fn default() -> DeferredQueue<T> {
        DeferredQueue::new()
    }
}

impl<T> Clone for DeferredQueue<T> {
    /// Another handle on the same queue.
    fn clone(&self) -> DeferredQueue<T> {
        DeferredQueue {
            shared: self.shared.clone(),
        }
    }
}

impl<T> fmt::Debug for DeferredQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.state.lock();
        f.debug_struct("DeferredQueue")
            .field("items", &state.items.len())
            .field("waiting", &state.waiting.open())
            .field("size", &self.shared.size)
            .field("backlog", &self.shared.backlog)
            .finish()
    }
}
