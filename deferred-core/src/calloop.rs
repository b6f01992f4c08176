//! Glue for [calloop](https://docs.rs/calloop) (the `calloop` feature): a thread's [`Inbox`]
//! drained by a calloop event source ([`Inbox::on_calloop`]), and calloop's timers as a
//! [`LocalClock`] ([`CalloopClock`]).
//!
//! Both run on the thread that dispatches the [`EventLoop`](calloop::EventLoop): results from
//! other threads, timers and local chains meet there.
#![forbid(unsafe_code)]

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use calloop::LoopHandle;
use calloop::ping::Ping;
use calloop::timer::{TimeoutAction, Timer};

use crate::inbox::{Drained, WeakInbox};
use crate::{Failure, Inbox, LocalClock, LocalDelayedCall, unhandled};

#[cfg(feature = "calloop")] // on the item too: docs.rs shows it on the facade's pages
#[cfg_attr(docsrs, doc(cfg(feature = "calloop")))]
impl Inbox {
    /// This thread's inbox, drained by an event source of the calloop loop behind `handle`: the
    /// wake-up is a [`calloop::ping`], and the ping's callback runs what was posted. So a
    /// result fired on another thread wakes the loop, and its chain runs in the loop's
    /// dispatch, on the loop's thread.
    ///
    /// The source holds the inbox weakly: the loop stops taking posts when the last clone of
    /// the returned `Inbox` is dropped, and the source then removes itself from the loop.
    ///
    /// The source is the loop's: when that `EventLoop` is gone, nothing drains the inbox any
    /// more, and results posted to it wait there. Given the handle of the next loop on this
    /// thread, `on_calloop` gives this thread's inbox (the same one, with what waits in it),
    /// drained by a source of that loop. calloop keeps a loop's sources for as long as any
    /// `LoopHandle` of it lives, so the old loop is gone only once the user's clones of its
    /// handle are dropped too; until then this thread's inbox counts as drained, and a second
    /// `on_calloop` panics. A [`CalloopClock`] and the calls it scheduled do not keep the loop:
    /// dropped with it, a call never runs (a `defer_later` on it fails with `NeverFired`).
    ///
    /// # Errors
    ///
    /// If the ping cannot be made (no file descriptor to be had) or inserted in the loop.
    ///
    /// # Panics
    ///
    /// If this thread has an inbox already that a live loop drains (a loop of which a handle is
    /// left counts as live), or that [`Inbox::new`] (or another integration) made; the message
    /// says which, and what to drop.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::{Failure, Inbox};
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    ///
    /// let mut event_loop = calloop::EventLoop::<()>::try_new().unwrap();
    /// let inbox = Inbox::on_calloop(&event_loop.handle()).unwrap();
    ///
    /// let shown = Rc::new(RefCell::new(String::new())); // the loop's state: no lock
    /// let label = shown.clone();
    /// let done = inbox
    ///     .defer_to_thread(|| Ok::<_, Failure>(6 * 7)) // on the pool
    ///     .add_callback(move |n| {                     // in the loop's dispatch
    ///         *label.borrow_mut() = format!("answer: {n}");
    ///         Ok(())
    ///     });
    /// while !done.is_fired() {
    ///     event_loop.dispatch(None, &mut ()).unwrap(); // sleeps until the ping
    /// }
    /// assert_eq!(*shown.borrow(), "answer: 42");
    /// ```
    #[track_caller]
    pub fn on_calloop<Data>(handle: &LoopHandle<'_, Data>) -> calloop::Result<Inbox> {
        // This thread's inbox, made here before, whose loop (and so its source) is gone:
        // drained from now on by a source of this one.
        let undrained = CALLOOP_DRAIN.with(|slot| slot.borrow().as_ref()?.undrained());
        if let Some((inbox, wake)) = undrained {
            // A ping of this loop for the inbox's wake-up; what was posted while no loop
            // drained the inbox runs at this loop's next dispatch.
            let (ping, source) = calloop::ping::make_ping()?;
            insert_drain(handle, source, &inbox)?;
            ping.ping();
            *wake.lock().unwrap_or_else(PoisonError::into_inner) = ping;
            return Ok(inbox);
        }
        // Here, not in a closure, so that the panics are at the caller's line.
        let drained_elsewhere =
            CALLOOP_DRAIN.with(|slot| slot.borrow().as_ref().is_some_and(Drained::is_drained));
        assert!(
            !drained_elsewhere,
            "this thread's Inbox is drained by another calloop loop, which is still alive: drop \
             that `EventLoop` and every `LoopHandle` of it first (calloop keeps a loop's sources \
             while a handle of it lives), or use that loop and its inbox (`Inbox::current()`)"
        );
        assert!(
            Inbox::current().is_none(),
            "this thread has an Inbox already, which no calloop loop drains (`Inbox::new` or \
             another integration made it): drop it first, or use it and drain it from the loop \
             yourself (a source whose callback calls `run_pending`)"
        );
        let (ping, source) = calloop::ping::make_ping()?;
        let wake = Arc::new(Mutex::new(ping));
        let waker = wake.clone();
        // When the inbox stops, its wake-up (and so the last `Ping`) is dropped, and a
        // `PingSource` whose pings are all gone removes itself from the loop.
        let inbox = Inbox::new(move || waker.lock().unwrap_or_else(PoisonError::into_inner).ping());
        CALLOOP_DRAIN.with(|slot| *slot.borrow_mut() = Some(Drained::new(&inbox, wake)));
        insert_drain(handle, source, &inbox)?;
        Ok(inbox)
    }
}

/// Whether a calloop loop of this thread drains its inbox: a `wait` here that a source of
/// that loop (a `CalloopClock` timer, the inbox's ping) would fire never returns, since it
/// keeps the loop from dispatching. (A loop of which a handle is left, its `EventLoop`
/// dropped, still counts: calloop keeps its sources; the warning says "if".)
pub(crate) fn wait_blocks_a_loop() -> bool {
    CALLOOP_DRAIN
        .try_with(|slot| slot.borrow().as_ref().is_some_and(Drained::is_drained))
        .unwrap_or(false)
}

/// Says, once for a `wait` at `at` that has blocked a while on the thread of a calloop loop
/// ([`wait_blocks_a_loop`]), why it may never return. Written to stderr: it is not a failure of
/// any chain.
pub(crate) fn warn_wait_blocks_a_loop(at: &'static std::panic::Location<'static>) {
    // As the tokio warning: a stderr that cannot be written to loses it, with no panic.
    crate::unhandled::write_stderr(&format!(
        "deferred: `wait` at {at} has blocked for {:?} on the thread of a calloop event loop: if \
         a source of that loop (a `CalloopClock` timer) fires this Deferred, it never will, \
         since `wait` keeps the loop from dispatching. Dispatch the loop until the Deferred \
         `is_fired()` instead.",
        crate::run_loop::STUCK_AFTER
    ));
}

std::thread_local! {
    /// The inbox `Inbox::on_calloop` made on this thread, and its wake-up's ping (replaced when
    /// a new loop takes the inbox over).
    static CALLOOP_DRAIN: RefCell<Option<Drained<Arc<Mutex<Ping>>>>> = const { RefCell::new(None) };
}

/// Inserts the source that drains `inbox` in the loop behind `handle`: the inbox's live drain
/// until that loop drops it, or the inbox stops.
fn insert_drain<Data>(
    handle: &LoopHandle<'_, Data>,
    source: calloop::ping::PingSource,
    inbox: &Inbox,
) -> calloop::Result<()> {
    let weak = WeakInbox::new(inbox);
    let alive = CALLOOP_DRAIN.with(|slot| slot.borrow().as_ref().map(Drained::drain_alive));
    handle
        .insert_source(source, move |(), &mut (), _| {
            let _alive = &alive;
            if let Some(inbox) = weak.upgrade() {
                inbox.run_pending();
                return;
            }
            // The inbox has stopped (its last wake-up pinged here): this thread's slot lets go
            // of its ping, the last one, and the source then removes itself from the loop.
            let _ = CALLOOP_DRAIN.try_with(|slot| {
                let mut slot = slot.borrow_mut();
                if slot.as_ref().is_some_and(Drained::is_stopped) {
                    *slot = None;
                }
            });
        })
        .map_err(|inserted| inserted.error)?;
    Ok(())
}

/// Real time for [`LocalDeferred::add_timeout`](crate::LocalDeferred::add_timeout) on a
/// calloop loop: each call is a [`Timer`] source inserted in the loop, run in its dispatch on
/// its thread; cancelling the call removes the source. It needs no inbox.
///
/// It takes a `LoopHandle<'static, Data>` (the loop's callbacks borrow nothing: a
/// [`LocalDelayedCall`] must be `'static`), and holds the loop weakly: a clock, or a call of it
/// that holds one (a `LoopingCall`'s next call, a timer that sets the next), does not keep the
/// loop once its `EventLoop` and the user's handles are gone. The loop then drops the calls
/// waiting in it (a `defer_later` on it fails with `NeverFired`), and a call made on the clock
/// after that is dropped at once.
///
/// ```
/// # extern crate deferred_core as deferred;
/// use deferred::{CalloopClock, LocalDeferred, TimedOut};
/// use std::time::Duration;
///
/// let mut event_loop = calloop::EventLoop::<()>::try_new().unwrap();
/// let clock = CalloopClock::new(event_loop.handle());
/// let (slow, _resolver) = LocalDeferred::<u32>::pending();
/// let slow = slow.add_timeout(Duration::from_millis(5), &clock);
/// while !slow.is_fired() {
///     event_loop.dispatch(None, &mut ()).unwrap(); // sleeps until the timer
/// }
/// assert!(slow.wait().unwrap_err().is::<TimedOut>());
/// ```
#[cfg(feature = "calloop")] // on the item too: docs.rs shows it on the facade's pages
#[cfg_attr(docsrs, doc(cfg(feature = "calloop")))]
pub struct CalloopClock<Data: 'static> {
    /// Weakly: the calls a clock schedules are the loop's sources, and may hold the clock (a
    /// `LoopingCall`'s next call does): a strong handle there would keep the loop, its sources
    /// and this thread's inbox's drain for ever once the `EventLoop` is dropped.
    /// The `WeakLoopHandle`'s upgrade (calloop does not export that type's name).
    handle: Rc<dyn Fn() -> Option<LoopHandle<'static, Data>>>,
}

#[cfg(feature = "calloop")] // on the item too: docs.rs shows it on the facade's pages
#[cfg_attr(docsrs, doc(cfg(feature = "calloop")))]
impl<Data: 'static> CalloopClock<Data> {
    /// The clock of the loop behind `handle`.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// let event_loop = calloop::EventLoop::<u32>::try_new().unwrap();
    /// let clock = deferred::CalloopClock::new(event_loop.handle());
    /// # let _ = clock;
    /// ```
    pub fn new(handle: LoopHandle<'static, Data>) -> CalloopClock<Data> {
        let weak = handle.downgrade();
        CalloopClock {
            handle: Rc::new(move || weak.upgrade()),
        }
    }
}

impl<Data: 'static> Clone for CalloopClock<Data> {
    fn clone(&self) -> Self {
        CalloopClock {
            handle: self.handle.clone(),
        }
    }
}

impl<Data: 'static> std::fmt::Debug for CalloopClock<Data> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CalloopClock").finish_non_exhaustive()
    }
}

// Unlisted in the clock traits' messages (see `Clock`).
#[diagnostic::do_not_recommend]
impl<Data: 'static> LocalClock for CalloopClock<Data> {
    fn call_later(&self, delay: Duration, call: Box<dyn FnOnce()>) -> LocalDelayedCall {
        // The call, until it runs (the source then removes itself) or is cancelled: a cancel
        // after that removes nothing. calloop reuses a removed source's slot, and its token's
        // version of the slot wraps after 65,536 reuses: a stale token may name another source.
        // A cancel takes the call out before it removes the source, and drops it once calloop
        // has let go of its list of sources: the call's captures may be anything (a resolver
        // whose chain then sets a timer on this loop, another call they cancel), and calloop
        // drops a removed source's callback while it holds that list.
        let Some(handle) = (self.handle)() else {
            // The loop is gone: the call can never run, and is dropped now (its chain hears of
            // it: `NeverFired`), as the loop's drop dropped the calls waiting in it.
            drop(call);
            return LocalDelayedCall::new(|| {});
        };
        let slot = Rc::new(Cell::new(Some(call)));
        let to_cancel = Rc::downgrade(&slot);
        let inserted = handle.insert_source(Timer::from_duration(delay), move |_, &mut (), _| {
            if let Some(call) = slot.take() {
                // A panic must not unwind out of the loop's dispatch.
                unhandled::run_reporting_panic("a timer's call", call);
            }
            TimeoutAction::Drop
        });
        match inserted {
            Ok(token) => {
                // Weakly: a pending call (one that a `defer_later` or `add_timeout` keeps) must
                // not keep the loop, whose source holds the call: once the `EventLoop` and the
                // handles the user holds are gone, the loop drops its sources and the call
                // with them, which the call's chain hears of (`NeverFired`), instead of the
                // two keeping each other for ever.
                let handle = handle.downgrade();
                LocalDelayedCall::new(move || {
                    let call = to_cancel.upgrade().and_then(|slot| slot.take());
                    if let Some(call) = call {
                        if let Some(handle) = handle.upgrade() {
                            handle.remove(token);
                        }
                        drop(call);
                    }
                })
            }
            Err(error) => {
                // A timer's registration only touches the loop's timer wheel, so this does not
                // happen; if it did, the call could never run, and that must not pass silently.
                unhandled::report(Failure::msg(format!(
                    "CalloopClock: the timer could not be inserted in the loop: {}",
                    error.error
                )));
                LocalDelayedCall::new(|| {})
            }
        }
    }
}
