//! Cancellation (rule 7): a handle that cancels a chain, and the walk it makes.
//!
//! Cancelling a chain walks to the Deferred it is really waiting on — its root made by
//! `Deferred::pending`, or an inner Deferred a callback returned, or one that Deferred's own
//! callback returned, and so on — runs its canceller and fails it with
//! [`Cancelled`](crate::Cancelled); the failure then flows down the chain like any other, so
//! errbacks see it. The walk is a loop: a million nested Deferreds cancel in constant stack.
//!
//! A pending chain is one link however many steps were added to it (see `pending.rs`), so the walk
//! only crosses from a chain to the inner Deferred one of its steps returned. A walk that finds
//! a chain running its steps (its root has fired) cannot stop a step that is running; Twisted
//! drops such a cancel. Here the chain remembers it, and the next Deferred one of its steps
//! returns in this run is cancelled at once — so a cancel (or a timeout) that lands while a
//! callback runs is not lost. If the chain fires first, there was nothing left to cancel. The
//! same holds when the root fires while its canceller runs (the canceller answered it, or a
//! `Resolver` on another thread won the race), and when the walk finds an inner Deferred whose
//! result is on its way to the chain waiting on it.
//!
//! Chains may wait on each other: a step of A returns B's end while a step of B returns A's
//! (through any number of chains, and through the internal link `add_timeout` makes). Forming
//! such a cycle is allowed — it cannot be seen at once when two threads form it together — and
//! nothing can ever fire it. A cancel that reaches it (a user's, or a deadline's) must return:
//! the walk notices it is going round ([`Cycle`], in constant memory) and cancels the wait that
//! closes the cycle; that chain goes on with the cancellation failure, and each chain of the
//! cycle in turn with what the one it waits on gives.

use std::fmt;

use super::Ptr;
use super::pending::{Cancel, Walk};

/// A cheap, clonable handle that cancels a Deferred's chain from anywhere, even after the
/// Deferred itself was consumed by `add_*` (combinators keep one per input to cancel losers).
///
/// ```
/// use deferred_core::Deferred;
///
/// let (d, _resolver) = Deferred::<u32>::pending();
/// let handle = d.cancel_handle();
/// let d = d.add_errback(|f| if f.is_cancelled() { Ok(0) } else { Err(f) });
/// std::thread::spawn(move || handle.cancel()).join().unwrap();
/// assert_eq!(d.wait().unwrap(), 0);
/// ```
#[derive(Clone, Default)]
pub struct CancelHandle {
    target: Option<Ptr<dyn Cancel>>,
}

impl CancelHandle {
    /// A handle for a pending chain ending at `target`.
    pub(crate) fn new(target: Ptr<dyn Cancel>) -> CancelHandle {
        CancelHandle {
            target: Some(target),
        }
    }

    /// A handle that cancels nothing (the Deferred had already fired).
    pub(crate) fn none() -> CancelHandle {
        CancelHandle { target: None }
    }

    /// Cancels the chain, as [`Deferred::cancel`](crate::Deferred::cancel) does. Does nothing if
    /// it has fired.
    pub fn cancel(&self) {
        self.cancel_for(0);
    }

    /// The walk. `outer_chains`: how many chains waiting on the target this cancel is meant for
    /// too (0 for a user's cancel; a chain that remembered a cancel of chains waiting on it walks
    /// with it when it finally cancels what it waits on).
    pub(crate) fn cancel_for(&self, outer_chains: u32) {
        // The chain that waits on `next` (and its `outer_chains`), in case `next` turns out to
        // have fired already.
        let mut waiter: Option<(Ptr<dyn Cancel>, u32)> = None;
        let mut next = self.target.clone();
        let mut level = outer_chains;
        let mut cycle = Cycle::new(self.target.clone());
        while let Some(link) = next {
            next = match link.clone().cancel(level) {
                Walk::Up(up) => {
                    if cycle.closes_at(&up) {
                        // Rule: chains that wait on each other never fire by themselves, and a
                        // cancel must return. The wait that closes the cycle is cancelled: that
                        // chain goes on with the cancellation, and the others in turn.
                        link.break_wait(&up);
                        return;
                    }
                    waiter = Some((link, level));
                    level = level.saturating_add(1);
                    Some(up)
                }
                // The chain that waits on `link` is between two waits: its result is on its way
                // there. Tell that chain to cancel the next Deferred it waits on (a cancel is
                // never lost to timing), or go on to the one it waits on already.
                Walk::Fired => waiter
                    .as_ref()
                    .and_then(|(w, w_level)| w.cancel_after(&link, *w_level)),
                Walk::Stop => None,
            };
        }
    }
}

/// Finds a cycle in the chains a walk goes through (chains that wait on each other: a step of
/// A returned B's end and a step of B returned A's), in constant memory: Brent's algorithm. A
/// marker chain is compared with each chain the walk reaches, and moved to where the walk is
/// after 1, 2, 4, 8, ... chains; once the walk is inside a cycle and the marker is on it, the
/// walk comes back to the marker within one more lap.
struct Cycle {
    marker: Option<Ptr<dyn Cancel>>,
    /// Chains walked since the marker moved, and how many until it moves again.
    walked: u64,
    lap: u64,
}

impl Cycle {
    fn new(start: Option<Ptr<dyn Cancel>>) -> Cycle {
        Cycle {
            marker: start,
            walked: 0,
            lap: 1,
        }
    }

    /// Whether `up`, the next chain of the walk, is one the walk has been through already.
    fn closes_at(&mut self, up: &Ptr<dyn Cancel>) -> bool {
        if self
            .marker
            .as_ref()
            .is_some_and(|marker| super::pending::same_link(marker, up))
        {
            return true;
        }
        self.walked += 1;
        if self.walked == self.lap {
            self.marker = Some(up.clone());
            self.lap = self.lap.saturating_mul(2);
            self.walked = 0;
        }
        false
    }
}

impl fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelHandle")
            .field("pending", &self.target.is_some())
            .finish()
    }
}
