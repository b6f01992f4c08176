//! Cancellation (rule 7): a handle that cancels a chain, and the walk it makes.
//!
//! Cancelling a chain walks to the Deferred it is really waiting on — its root made by
//! `Deferred::pending`, or an inner Deferred a callback returned, or one that Deferred's own
//! callback returned, and so on — runs its canceller and fails it with
//! [`Cancelled`](crate::Cancelled); the failure then flows down the chain like any other, so
//! errbacks see it. The walk is a loop: a million nested Deferreds cancel in constant stack.
//!
//! A pending chain is one link however many steps were added to it (see `link.rs`), so the walk
//! only crosses from a chain to the inner Deferred one of its steps returned. A walk that finds
//! a chain running its steps (its root has fired) cannot stop a step that is running; Twisted
//! drops such a cancel. Here the chain remembers it, and the next Deferred one of its steps
//! returns in this run is cancelled at once — so a cancel (or a timeout) that lands while a
//! callback runs is not lost. If the chain fires first, there was nothing left to cancel. The
//! same holds when the root fires while its canceller runs (the canceller answered it, or a
//! `Resolver` on another thread won the race), and when the walk finds an inner Deferred whose
//! result is on its way to the chain waiting on it.

use std::fmt;
use std::sync::Arc;

use crate::link::{Cancel, Walk};

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
    target: Option<Arc<dyn Cancel>>,
}

impl CancelHandle {
    /// A handle for a pending chain ending at `target`.
    pub(crate) fn new(target: Arc<dyn Cancel>) -> CancelHandle {
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
        // The link that waits on `next`, in case `next` turns out to have fired already.
        let mut waiter: Option<Arc<dyn Cancel>> = None;
        let mut next = self.target.clone();
        while let Some(link) = next {
            next = match link.clone().cancel() {
                Walk::Up(up) => {
                    waiter = Some(link);
                    Some(up)
                }
                // The chain is between two links: the step after `link` is running. Tell its
                // link to cancel what that step hands over (a cancel is never lost to timing).
                Walk::Fired => waiter.as_ref().and_then(|w| w.cancel_after(&link)),
                Walk::Stop => None,
            };
        }
    }
}

impl fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelHandle")
            .field("pending", &self.target.is_some())
            .finish()
    }
}
