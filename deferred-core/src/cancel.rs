//! Cancellation (rule 7): a handle that cancels a chain, and the walk it makes.
//!
//! Cancelling the end of a chain walks up, link by link, to the Deferred the chain is really
//! waiting on — the root made by `Deferred::pending`, or an inner Deferred a callback returned —
//! runs its canceller and fails it with [`Cancelled`](crate::Cancelled); the failure then flows
//! down the chain like any other, so errbacks see it. The walk is a loop: a chain of a million
//! links cancels in constant stack.
//!
//! A walk that meets a fired link has found a step that is running (or queued to run) on its
//! result. Twisted drops such a cancel; here the link after that step remembers it, and if the
//! step returns a Deferred to wait on, that Deferred is cancelled at once — so a cancel (or a
//! timeout) that lands while a callback runs is not lost. If the step returns a value, the chain
//! goes on: there was nothing left to cancel. The same holds when the root fires while its
//! canceller runs (the canceller answered it, or a `Resolver` on another thread won the race):
//! the cancel goes on to the step after the root.

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
