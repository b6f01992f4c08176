//! The state machine: one `Link` is the cell where a pending Deferred's result arrives.
//!
//! A Deferred that has already fired holds its result inline and needs no link at all (that is
//! why synchronous steps allocate nothing). A pending one points at a `Link`, shared with whoever
//! will fire it: a `Resolver` (a [`Root`] link), or the step that makes its result (a [`Step`]
//! link, which also carries that step's function: one allocation per pending step).
//!
//! ```text
//!             fire, nobody listening              listen / try_take
//!   Waiting ─────────────────────────▶ Fired ─────────────────────────▶ Done
//!      │                                                                  ▲
//!      └──────────── fire, a step or an outer chain listening ───────────┘
//!                    (the result is handed over through the run loop)
//! ```
//!
//! The rules, each enforced in the method named:
//! - A link fires once ([`Node::fire`]). The `Resolver` API makes a second fire a compile error;
//!   the one case left — a fire arriving after `cancel` already failed the link — is ignored, as
//!   Twisted ignores the one late fire after a cancellation.
//! - A link has at most one listener (each `add_*` consumes its Deferred), so a result is handed
//!   on exactly once: the hand-over happens under the lock, by moving the result out of the state.
//! - User code never runs under a lock: locks are held only to move results, listeners and step
//!   functions in and out, and the user's function is called after the lock is released.
//! - A result handed to a step or an outer chain goes through the thread's run loop
//!   ([`crate::run_loop`]): inside it, the hand-over is stored in the receiving link and queued,
//!   so long chains run in constant stack ([`Receive::receive`], [`Node::arrive`]).
//! - A failure nobody can ever see (its Deferred handle was dropped) is reported exactly once
//!   through the unhandled-error hook ([`Node::abandon`], [`Node::fire`]).
//! - Cancellation walks up from the end of a chain to the link it is really waiting on and fails
//!   that one ([`Cancel::cancel`], walked by [`CancelHandle::cancel`]).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, PoisonError};
use std::task::Waker;

use crate::cancel::CancelHandle;
use crate::deferred::{Deferred, Outcome};
use crate::failure::Failure;
use crate::run_loop::{self, Delivery};
use crate::sync::{Mutex, MutexGuard};
use crate::unhandled;

/// A canceller given at creation: called when a pending chain waiting on this link is cancelled.
pub(crate) type Canceller = Box<dyn FnOnce() + Send>;

/// A pending result of type `Result<T, E>`, plus what its kind `K` carries.
pub(crate) struct Link<T, E, K> {
    inner: Mutex<Inner<T, E, K>>,
}

struct Inner<T, E, K> {
    state: State<T, E>,
    /// A result forwarded from an inner Deferred while this thread's run loop was busy: it waits
    /// in the queue, then fires this link.
    arriving: Option<Result<T, E>>,
    kind: K,
}

enum State<T, E> {
    /// No result yet.
    Waiting {
        listener: Listener<T, E>,
        upstream: Upstream,
    },
    /// Fired, and nobody has taken the result yet.
    Fired(Result<T, E>),
    /// The result has been handed on (or taken, or dropped after a cancellation).
    Done,
}

/// Who receives the result.
pub(crate) enum Listener<T, E> {
    /// Nobody yet; the Deferred handle still holds the link.
    Nobody,
    /// The next step of the chain.
    Step(Arc<dyn Receive<T, E>>),
    /// An outer chain that returned this Deferred from a callback and waits on it.
    Forward(Arc<dyn Node<T, E>>),
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

/// The kind of a link fired by a `Resolver`: it carries nothing more.
pub(crate) struct Root;

/// The kind of a link fired by a step: the step's function until it runs, and the step's input
/// while it waits in the run loop.
pub(crate) struct Step<F, In, E> {
    run: Option<F>,
    input: Option<Result<In, E>>,
}

/// What `Deferred` sees of a pending link, whatever its kind.
pub(crate) trait Node<T, E>: Cancel + Delivery {
    /// Takes the result if the link has fired and nobody took it yet.
    fn try_take(&self) -> Option<Result<T, E>>;
    /// Installs the listener. If the link has already fired, a step or outer chain gets the
    /// result at once (through the run loop), and a task is woken at once.
    fn listen(&self, listener: Listener<T, E>);
    /// Fires the link.
    fn fire(&self, result: Result<T, E>);
    /// Whether the link has fired (its result may have been handed on already).
    fn is_fired(&self) -> bool;
    /// The Deferred handle was dropped.
    fn abandon(&self);
    /// A result forwarded from the inner Deferred this link waits on.
    fn arrive(self: Arc<Self>, result: Result<T, E>);
}

/// A step link receiving the result of the link before it.
pub(crate) trait Receive<In, E>: Send + Sync {
    /// Runs the step on `result` — now, or, inside the run loop, after what is queued.
    fn receive(self: Arc<Self>, result: Result<In, E>);
}

/// What differs between kinds of link: the work they may have stored for the run loop.
pub(crate) trait Kind<T, E>: Send + Sized + 'static {
    /// Runs what the kind stored for the run loop (a step's input), if anything.
    fn run_stored(link: &Arc<Link<T, E, Self>>);
}

impl<T, E, K> Link<T, E, K> {
    fn lock(&self) -> MutexGuard<'_, Inner<T, E, K>> {
        // No user code runs under the lock, so a poisoned lock can only come from an allocation
        // failure; the state is still consistent, so carry on.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn new(upstream: Upstream, kind: K) -> Link<T, E, K> {
        Link {
            inner: Mutex::new(Inner {
                state: State::Waiting {
                    listener: Listener::Nobody,
                    upstream,
                },
                arriving: None,
                kind,
            }),
        }
    }
}

impl<T, E> Link<T, E, Root> {
    /// A link fired by a `Resolver`, with an optional canceller.
    pub(crate) fn root(canceller: Option<Canceller>) -> Arc<Self> {
        Arc::new(Link::new(Upstream::Root(canceller), Root))
    }
}

impl<T, E, F, In> Link<T, E, Step<F, In, E>>
where
    T: Send + 'static,
    E: From<Failure> + Send + 'static,
    In: Send + 'static,
    F: FnOnce(Result<In, E>) -> Deferred<T, E> + Send + 'static,
{
    /// A link fired by `run` once the link it waits on (`upstream`) hands it a result.
    pub(crate) fn step(upstream: Arc<dyn Cancel>, run: F) -> Arc<Self> {
        let upstream = Upstream::Link {
            waits_on: upstream,
            cancel_requested: false,
        };
        let kind = Step {
            run: Some(run),
            input: None,
        };
        Arc::new(Link::new(upstream, kind))
    }

    /// Runs the step's function and settles this link with what it gives.
    fn run_step(self: &Arc<Self>, input: Result<In, E>) {
        let Some(run) = self.lock().kind.run.take() else {
            unreachable!("a step receives one result, so it runs once");
        };
        // `run` catches panics of the user's function itself.
        match run(input).into_outcome() {
            Outcome::Ready(result) => self.fire(result),
            Outcome::Waiting(inner) => self.wait_on(inner),
        }
    }

    /// Makes this link wait on `inner`, the Deferred its step returned: cancelling this link now
    /// cancels `inner`, and `inner`'s result becomes this link's.
    fn wait_on(self: &Arc<Self>, inner: Arc<dyn Node<T, E>>) {
        let mut cancel_now = false;
        if let State::Waiting { upstream, .. } = &mut self.lock().state {
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
            CancelHandle::new(inner).cancel();
        }
    }
}

impl<T, E, F, In> Receive<In, E> for Link<T, E, Step<F, In, E>>
where
    T: Send + 'static,
    E: From<Failure> + Send + 'static,
    In: Send + 'static,
    F: FnOnce(Result<In, E>) -> Deferred<T, E> + Send + 'static,
{
    fn receive(self: Arc<Self>, input: Result<In, E>) {
        if run_loop::is_running() {
            self.lock().kind.input = Some(input);
            run_loop::enqueue(self);
        } else {
            run_loop::run(move || self.run_step(input));
        }
    }
}

impl<T, E> Kind<T, E> for Root {
    fn run_stored(_: &Arc<Link<T, E, Root>>) {}
}

impl<T, E, F, In> Kind<T, E> for Step<F, In, E>
where
    T: Send + 'static,
    E: From<Failure> + Send + 'static,
    In: Send + 'static,
    F: FnOnce(Result<In, E>) -> Deferred<T, E> + Send + 'static,
{
    fn run_stored(link: &Arc<Link<T, E, Self>>) {
        let input = link.lock().kind.input.take();
        if let Some(input) = input {
            link.run_step(input);
        }
    }
}

impl<T, E, K> Delivery for Link<T, E, K>
where
    T: Send + 'static,
    E: From<Failure> + Send + 'static,
    K: Kind<T, E>,
{
    fn deliver(self: Arc<Self>) {
        let arriving = self.lock().arriving.take();
        match arriving {
            Some(result) => self.fire(result),
            None => K::run_stored(&self),
        }
    }
}

impl<T, E, K> Node<T, E> for Link<T, E, K>
where
    T: Send + 'static,
    E: From<Failure> + Send + 'static,
    K: Kind<T, E>,
{
    fn try_take(&self) -> Option<Result<T, E>> {
        let mut inner = self.lock();
        if !matches!(inner.state, State::Fired(_)) {
            return None;
        }
        match std::mem::replace(&mut inner.state, State::Done) {
            State::Fired(result) => Some(result),
            State::Waiting { .. } | State::Done => unreachable!("checked above"),
        }
    }

    fn listen(&self, new: Listener<T, E>) {
        let mut inner = self.lock();
        match &mut inner.state {
            State::Waiting { listener, .. } => *listener = new,
            State::Fired(_) => match new {
                Listener::Task(waker) => {
                    drop(inner);
                    waker.wake();
                }
                Listener::Step(_) | Listener::Forward(_) => {
                    let State::Fired(result) = std::mem::replace(&mut inner.state, State::Done)
                    else {
                        unreachable!("matched Fired above");
                    };
                    drop(inner);
                    hand_over(result, new);
                }
                Listener::Nobody | Listener::Gone => {}
            },
            State::Done => {}
        }
    }

    /// Rule: a link fires once; a later fire (only possible after a cancellation already failed
    /// it) is dropped, as Twisted drops the late fire after `cancel`.
    fn fire(&self, result: Result<T, E>) {
        self.fire_locked(self.lock(), result);
    }

    fn is_fired(&self) -> bool {
        !matches!(self.lock().state, State::Waiting { .. })
    }

    /// Rule 5: a failure nobody handled is reported once — now if it is here, else when it
    /// arrives.
    fn abandon(&self) {
        let mut inner = self.lock();
        match &mut inner.state {
            State::Waiting { listener, .. } => *listener = Listener::Gone,
            State::Fired(_) => {
                let State::Fired(result) = std::mem::replace(&mut inner.state, State::Done) else {
                    unreachable!("matched Fired above");
                };
                drop(inner);
                unhandled::report_result(result);
            }
            State::Done => {}
        }
    }

    fn arrive(self: Arc<Self>, result: Result<T, E>) {
        if run_loop::is_running() {
            self.lock().arriving = Some(result);
            run_loop::enqueue(self);
        } else {
            run_loop::run(move || self.fire(result));
        }
    }
}

impl<T, E, K> Link<T, E, K>
where
    T: Send + 'static,
    E: From<Failure> + Send + 'static,
    K: Kind<T, E>,
{
    /// Fires the link, whose lock the caller holds; says whether this fire landed (false: the
    /// link had fired already, and `result` is dropped).
    fn fire_locked(&self, mut inner: MutexGuard<'_, Inner<T, E, K>>, result: Result<T, E>) -> bool {
        if !matches!(inner.state, State::Waiting { .. }) {
            drop(inner); // `result` is dropped after the lock is released
            return false;
        }
        let State::Waiting { listener, upstream } =
            std::mem::replace(&mut inner.state, State::Done)
        else {
            unreachable!("checked above");
        };
        match listener {
            Listener::Nobody => {
                inner.state = State::Fired(result);
                drop(inner);
            }
            Listener::Task(waker) => {
                inner.state = State::Fired(result);
                drop(inner);
                waker.wake();
            }
            Listener::Gone => {
                drop(inner);
                unhandled::report_result(result);
            }
            listener @ (Listener::Step(_) | Listener::Forward(_)) => {
                drop(inner);
                hand_over(result, listener);
            }
        }
        // Dropped last, outside the lock, once the result is on its way: a root's canceller that
        // was never called is user code (its captures' `Drop`), and a panic there must not stop
        // the hand-over above.
        drop(upstream);
        true
    }
}

/// Hands a result to a step or an outer chain, through the run loop.
fn hand_over<T, E>(result: Result<T, E>, listener: Listener<T, E>) {
    match listener {
        Listener::Step(step) => step.receive(result),
        Listener::Forward(outer) => outer.arrive(result),
        Listener::Nobody | Listener::Task(_) | Listener::Gone => {
            unreachable!("only steps and outer chains are handed results")
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
    /// Done: the root was cancelled.
    Stop,
}

impl<T, E, K> Cancel for Link<T, E, K>
where
    T: Send + 'static,
    E: From<Failure> + Send + 'static,
    K: Kind<T, E>,
{
    fn cancel(self: Arc<Self>) -> Walk {
        let mut inner = self.lock();
        let State::Waiting { upstream, .. } = &mut inner.state else {
            // Cancelling a fired Deferred does nothing.
            return Walk::Fired;
        };
        let canceller = match upstream {
            Upstream::Link { waits_on, .. } => return Walk::Up(waits_on.clone()),
            Upstream::Root(canceller) => canceller.take(),
        };
        drop(inner);
        // Rule 7: a canceller that panics does not escape `cancel`; its panic becomes the failure.
        let failure = match canceller.map(|canceller| catch_unwind(AssertUnwindSafe(canceller))) {
            None | Some(Ok(())) => Failure::cancelled(),
            Some(Err(payload)) => Failure::from_panic(payload, None),
        };
        // The link may have fired since the check above: by the canceller itself, or by a
        // `Resolver` on another thread. Then this fire is ignored, and the walk goes on as if it
        // had found the link fired — the step after it remembers the cancel for any Deferred it
        // returns — so a cancel is never dropped by timing.
        let cancelled = self.fire_locked(self.lock(), Err(E::from(failure)));
        if cancelled { Walk::Stop } else { Walk::Fired }
    }

    fn cancel_after(&self, fired: &Arc<dyn Cancel>) -> Option<Arc<dyn Cancel>> {
        let mut inner = self.lock();
        let State::Waiting {
            upstream:
                Upstream::Link {
                    waits_on,
                    cancel_requested,
                },
            ..
        } = &mut inner.state
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
