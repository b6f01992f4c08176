//! The state machine: one `Link` is the cell where a pending Deferred's result arrives.
//!
//! A Deferred that has already fired holds its result inline and needs no link at all (that is
//! why synchronous steps allocate nothing). A pending one points at a `Link`, shared with whoever
//! will fire it: a `Resolver`, the step before it, or an inner Deferred it waits on.
//!
//! ```text
//!             fire                         listen (someone is there)
//!   Waiting ────────▶ Fired(result) ───────────────────────────────┐
//!      │                                                           ▼
//!      │ fire, someone listening                         Delivering(result, listener)
//!      └──────────────────────────────────────────────────────────▶│ run loop
//!                                                                  ▼
//!                                     Done ◀── (result handed to the listener, or taken)
//! ```
//!
//! The rules, each enforced in the method named:
//! - A link fires once ([`Link::fire`]). The `Resolver` API makes a second fire a compile error;
//!   the one case left — a fire arriving after `cancel` already failed the link — is ignored, as
//!   Twisted ignores the one late fire after a cancellation.
//! - A link has at most one listener (each `add_*` consumes its Deferred), so a result is handed
//!   on exactly once: the hand-over happens under the lock, by moving the result out of the state.
//! - User code never runs under the lock: the lock is held only to move results and listeners in
//!   and out of the state, and the listener is called after it is released.
//! - A result whose listener is present is delivered through the thread's run loop
//!   ([`crate::run_loop`]), so long chains run in constant stack.
//! - A failure nobody can ever see (its Deferred handle was dropped) is reported exactly once
//!   through the unhandled-error hook ([`Link::abandon`], [`Link::fire`]).
//! - Cancellation walks up from the end of a chain to the link it is really waiting on and fails
//!   that one ([`Cancel::cancel`]); a walk that meets a fired link stops: the chain is running.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, PoisonError};
use std::task::Waker;

use crate::cancel::CancelHandle;
use crate::failure::Failure;
use crate::run_loop::{Delivery, schedule};
use crate::sync::{Mutex, MutexGuard};
use crate::unhandled;

/// What a step does with the result of the link it listens to.
pub(crate) type StepFn<T, E> = Box<dyn FnOnce(Result<T, E>) + Send>;

/// A canceller given at creation: called when a pending chain waiting on this link is cancelled.
pub(crate) type Canceller = Box<dyn FnOnce() + Send>;

pub(crate) struct Link<T, E> {
    state: Mutex<State<T, E>>,
}

enum State<T, E> {
    /// No result yet.
    Waiting {
        listener: Listener<T, E>,
        upstream: Upstream,
    },
    /// Fired, and nobody has taken the result yet.
    Fired(Result<T, E>),
    /// Fired with a listener present: queued on a run loop, which will hand the result over.
    Delivering(Result<T, E>, Listener<T, E>),
    /// The result has been handed on (or cancelled and dropped).
    Done,
}

/// Who receives the result.
pub(crate) enum Listener<T, E> {
    /// Nobody yet; the Deferred handle still holds the link.
    Nobody,
    /// The next step of the chain.
    Step(StepFn<T, E>),
    /// An outer chain that returned this Deferred from a callback and waits on it.
    Forward(Arc<Link<T, E>>),
    /// A task (or a thread in `wait`) polling the Deferred as a future.
    Task(Waker),
    /// The Deferred handle was dropped: nobody ever will.
    Gone,
}

/// What a pending link is waiting on, for cancellation.
enum Upstream {
    /// A root link made by `Deferred::pending`: its canceller, if one was given.
    Root(Option<Canceller>),
    /// The link this one waits on: the previous step, or a Deferred a callback returned.
    /// `cancel_requested`: a cancel found that link already fired (this link's step is running
    /// or queued); if the step hands over a Deferred to wait on, cancel that one at once.
    Link {
        waits_on: Arc<dyn Cancel>,
        cancel_requested: bool,
    },
}

impl<T, E> Link<T, E> {
    fn lock(&self) -> MutexGuard<'_, State<T, E>> {
        // No user code runs under the lock, so a poisoned lock can only come from an allocation
        // failure; the state is still consistent, so carry on.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A link fired by a `Resolver`, with an optional canceller.
    pub(crate) fn root(canceller: Option<Canceller>) -> Arc<Self> {
        Arc::new(Link {
            state: Mutex::new(State::Waiting {
                listener: Listener::Nobody,
                upstream: Upstream::Root(canceller),
            }),
        })
    }

    /// A link fired by the step that listens to `upstream`.
    pub(crate) fn step(upstream: Arc<dyn Cancel>) -> Arc<Self> {
        Arc::new(Link {
            state: Mutex::new(State::Waiting {
                listener: Listener::Nobody,
                upstream: Upstream::Link {
                    waits_on: upstream,
                    cancel_requested: false,
                },
            }),
        })
    }

    /// Takes the result if the link has fired and nobody took it yet.
    pub(crate) fn try_take(&self) -> Option<Result<T, E>> {
        let mut state = self.lock();
        match std::mem::replace(&mut *state, State::Done) {
            State::Fired(result) => Some(result),
            other => {
                *state = other;
                None
            }
        }
    }

    /// Whether the link holds a result (fired, not yet handed on).
    pub(crate) fn is_fired(&self) -> bool {
        !matches!(*self.lock(), State::Waiting { .. })
    }
}

impl<T: Send + 'static, E: Send + 'static> Link<T, E> {
    /// Fires the link. Rule: a link fires once; a later fire (only possible after a
    /// cancellation already failed it) is dropped, as Twisted drops the late fire after `cancel`.
    pub(crate) fn fire(self: &Arc<Self>, result: Result<T, E>) {
        let mut state = self.lock();
        let State::Waiting { listener, .. } = &mut *state else {
            return;
        };
        match std::mem::replace(listener, Listener::Nobody) {
            Listener::Nobody => *state = State::Fired(result),
            Listener::Task(waker) => {
                *state = State::Fired(result);
                drop(state);
                waker.wake();
            }
            Listener::Gone => {
                *state = State::Done;
                drop(state);
                unhandled::report_result(result);
            }
            listener @ (Listener::Step(_) | Listener::Forward(_)) => {
                *state = State::Delivering(result, listener);
                drop(state);
                schedule(self.clone());
            }
        }
    }

    /// Installs the next step (or an outer chain, or a waiting task). If the link has already
    /// fired, a step or outer chain gets the result at once (through the run loop), and a task is
    /// woken at once.
    pub(crate) fn listen(self: &Arc<Self>, new: Listener<T, E>) {
        let mut state = self.lock();
        match &mut *state {
            State::Waiting { listener, .. } => *listener = new,
            State::Fired(_) => match new {
                Listener::Task(waker) => {
                    drop(state);
                    waker.wake();
                }
                Listener::Step(_) | Listener::Forward(_) => {
                    let State::Fired(result) = std::mem::replace(&mut *state, State::Done) else {
                        unreachable!("matched Fired above");
                    };
                    *state = State::Delivering(result, new);
                    drop(state);
                    schedule(self.clone());
                }
                Listener::Nobody | Listener::Gone => {}
            },
            State::Delivering(..) | State::Done => {}
        }
    }

    /// Makes this (pending) link wait on `inner`, the Deferred a callback returned: cancelling
    /// this link now cancels `inner`, and `inner`'s result becomes this link's.
    pub(crate) fn wait_on(self: &Arc<Self>, inner: &Arc<Link<T, E>>)
    where
        Link<T, E>: Cancel,
    {
        let mut cancel_now = false;
        if let State::Waiting { upstream, .. } = &mut *self.lock() {
            cancel_now = matches!(
                upstream,
                Upstream::Link {
                    cancel_requested: true,
                    ..
                }
            );
            *upstream = Upstream::Link {
                waits_on: inner.clone(),
                cancel_requested: false,
            };
        }
        inner.listen(Listener::Forward(self.clone()));
        if cancel_now {
            CancelHandle::new(inner.clone()).cancel();
        }
    }
}

impl<T, E: 'static> Link<T, E> {
    /// The Deferred handle was dropped. Rule 5: a failure nobody handled is reported once — now
    /// if it is here, else when it arrives.
    pub(crate) fn abandon(&self) {
        let mut state = self.lock();
        match &mut *state {
            State::Waiting { listener, .. } => *listener = Listener::Gone,
            State::Fired(_) => {
                let State::Fired(result) = std::mem::replace(&mut *state, State::Done) else {
                    unreachable!("matched Fired above");
                };
                drop(state);
                unhandled::report_result(result);
            }
            State::Delivering(..) | State::Done => {}
        }
    }
}

impl<T: Send + 'static, E: Send + 'static> Delivery for Link<T, E> {
    fn deliver(self: Arc<Self>) {
        let taken = std::mem::replace(&mut *self.lock(), State::Done);
        let State::Delivering(result, listener) = taken else {
            unreachable!("a link is scheduled only once, in the Delivering state");
        };
        match listener {
            // The step runs the user's callback under catch_unwind itself.
            Listener::Step(step) => step(result),
            Listener::Forward(outer) => outer.fire(result),
            Listener::Nobody | Listener::Task(_) | Listener::Gone => {
                unreachable!("only steps and outer chains are delivered through the run loop")
            }
        }
    }
}

/// One step of a cancellation walk (rule 7), type-erased so the walk can cross links of
/// different value types. The walk itself is [`CancelHandle::cancel`].
pub(crate) trait Cancel: Send + Sync {
    /// Cancels what this link waits on: says where the walk goes next.
    fn cancel(self: Arc<Self>) -> Walk;

    /// The link this one waited on was found fired (this link's step is running or queued). If
    /// this link still waits on it, remember the cancel for the Deferred the step may return;
    /// if the step already returned one, give it back so the walk goes on there.
    fn cancel_after(&self, fired: &Arc<dyn Cancel>) -> Option<Arc<dyn Cancel>>;
}

/// Where a cancellation walk goes after one link.
pub(crate) enum Walk {
    /// On up to the link this one waits on.
    Up(Arc<dyn Cancel>),
    /// This link has fired: its result is on its way down.
    Fired,
    /// Done: the root was cancelled (or had fired).
    Stop,
}

impl<T, E> Cancel for Link<T, E>
where
    T: Send + 'static,
    E: From<Failure> + Send + 'static,
{
    fn cancel(self: Arc<Self>) -> Walk {
        let mut state = self.lock();
        let State::Waiting { upstream, .. } = &mut *state else {
            // Cancelling a fired Deferred does nothing.
            return Walk::Fired;
        };
        let canceller = match upstream {
            Upstream::Link { waits_on, .. } => return Walk::Up(waits_on.clone()),
            Upstream::Root(canceller) => canceller.take(),
        };
        drop(state);
        // Rule 7: a canceller that panics does not escape `cancel`; its panic becomes the failure.
        let outcome = match canceller {
            Some(canceller) => catch_unwind(AssertUnwindSafe(canceller)),
            None => Ok(()),
        };
        let failure = match outcome {
            Ok(()) => Failure::cancelled(),
            Err(payload) => Failure::from_panic(payload, None),
        };
        // If the canceller fired the link itself, this fire is ignored.
        self.fire(Err(E::from(failure)));
        Walk::Stop
    }

    fn cancel_after(&self, fired: &Arc<dyn Cancel>) -> Option<Arc<dyn Cancel>> {
        let mut state = self.lock();
        let State::Waiting {
            upstream:
                Upstream::Link {
                    waits_on,
                    cancel_requested,
                },
            ..
        } = &mut *state
        else {
            return None;
        };
        if same_link(waits_on, fired) {
            *cancel_requested = true;
            None
        } else {
            Some(waits_on.clone())
        }
    }
}

/// Whether two type-erased links are the same link (compares addresses, not vtables).
fn same_link(a: &Arc<dyn Cancel>, b: &Arc<dyn Cancel>) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
}
