//! Runtime glue for tokio (the `tokio` feature): a future as a Deferred, and tokio's timers as a
//! [`Clock`] for [`Deferred::add_timeout`].
//!
//! The other direction needs no glue: a [`Deferred`] is a [`Future`] already, so `.await` it.

use std::future::Future;
use std::panic::{AssertUnwindSafe, Location, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::task::AbortHandle;

use crate::{Clock, Deferred, DelayedCall, Failure};

impl<T, E> Deferred<T, E>
where
    T: Send + 'static,
    E: From<Failure> + Send + 'static,
{
    /// Spawns `future` on the current tokio runtime and returns a Deferred of its output.
    /// Cancelling the Deferred aborts the task; a panic in the future becomes a [`Failure`].
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime, as `tokio::spawn` does.
    ///
    /// ```
    /// use deferred_core::{Deferred, Failure};
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
        let at = Location::caller();
        // The canceller needs the task's abort handle, which exists only once the task (which
        // needs the Resolver) is spawned: hand it over through a slot. A cancel that comes
        // before the slot is filled still fails the Deferred; the task's later fire is ignored.
        let abort_slot = Arc::new(OnceLock::<AbortHandle>::new());
        let slot = abort_slot.clone();
        let (deferred, resolver) = Deferred::with_canceller(move || {
            if let Some(task) = slot.get() {
                task.abort();
            }
        });
        let task = tokio::spawn(async move {
            let result = CatchUnwind(Box::pin(future))
                .await
                .unwrap_or_else(|panic| Err(E::from(Failure::from_panic(panic, Some(at)))));
            resolver.fire(result);
        });
        // Only this function fills the slot, once.
        let _ = abort_slot.set(task.abort_handle());
        deferred
    }
}

/// Polls a future, turning a panic into an `Err` with its payload.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn std::any::Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match catch_unwind(AssertUnwindSafe(|| self.0.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

/// Real time for [`Deferred::add_timeout`]: tokio's timers, on the runtime it was made on.
///
/// ```
/// use std::time::Duration;
/// use deferred_core::{Deferred, Failure, TimedOut, TokioClock};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let clock = TokioClock::current();
/// let (slow, _resolver) = Deferred::<u32>::pending();
/// let slow = slow.add_timeout(Duration::from_millis(50), &clock);
/// assert!(slow.await.unwrap_err().is::<TimedOut>());
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct TokioClock {
    runtime: tokio::runtime::Handle,
}

impl TokioClock {
    /// The clock of the tokio runtime this is called on.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    pub fn current() -> TokioClock {
        TokioClock {
            runtime: tokio::runtime::Handle::current(),
        }
    }

    /// The clock of the runtime behind `runtime`.
    pub fn new(runtime: tokio::runtime::Handle) -> TokioClock {
        TokioClock { runtime }
    }
}

impl Clock for TokioClock {
    fn call_later(&self, delay: Duration, call: Box<dyn FnOnce() + Send>) -> DelayedCall {
        let timer = self.runtime.spawn(async move {
            tokio::time::sleep(delay).await;
            call();
        });
        let timer = timer.abort_handle();
        DelayedCall::new(move || timer.abort())
    }
}
