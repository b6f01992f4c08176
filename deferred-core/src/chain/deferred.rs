// The methods of a Deferred and its Resolver, for both kinds. Included (with `include!`) by
// `shared.rs` and `local.rs` into the module that defines the kind's types, so that each impl
// sits beside its type (and compiler messages name `Deferred::add_callback`, not a path through
// this folder). `Deferred`, `Resolver`, `IntoDeferred` and `CancelHandle` are the including
// kind's.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, Location, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use self::chain::pending::stage;
use self::chain::pending::{AnyChain, Canceller, Chain, Doing};
use self::kind::{Blocker, ChainPtr, Ptr, Sendable, into_next};
use crate::bounds::FromFailure;
use crate::failure::{EnteredBy, Failure, PanicTrail};
use crate::run_loop;
use crate::unhandled;

pub(crate) enum State<T, E> {
    /// Fired: the result is here (no allocation). `None` once taken by a step, poll or wait.
    Fired(Option<Result<T, E>>),
    /// Not fired when this handle was made: the result arrives in the chain's link, at its end.
    Pending(ChainPtr<dyn AnyChain<E>>),
}

/// What a step's Deferred amounts to for the link that waits on it.
pub(crate) enum Outcome<T, E> {
    /// It has fired: here is the result.
    Ready(Result<T, E>),
    /// It is pending: wait on this link (whose end is a `Result<T, E>`).
    Waiting(ChainPtr<dyn AnyChain<E>>),
    /// Its result was taken already (it was polled or awaited to completion, then returned).
    Spent,
}

/// The `Failure` inside `error`, when the chain's error type is `Failure`.
fn as_failure<E: 'static>(error: &mut E) -> Option<&mut Failure> {
    (error as &mut dyn Any).downcast_mut::<Failure>()
}

/// Runs one step's function on a result; a panic becomes the failure of the next link (rule 4).
/// `step` is where the step was added, handed to `f` for the failure's trail.
#[inline]
pub(crate) fn run_step<T, U, E, F>(
    f: F,
    result: Result<T, E>,
    step: &'static Location<'static>,
) -> Deferred<U, E>
where
    E: FromFailure + 'static,
    F: FnOnce(Result<T, E>, &'static Location<'static>) -> Deferred<U, E>,
{
    #[cfg(feature = "tracing")]
    if !crate::trace::is_unlisted(step) {
        crate::trace::chain_event!(%step, input_ok = result.is_ok(), "step");
    }
    unwound_at(f, result, step)
}

/// Runs `f` on `result`; a panic becomes the failure of the Deferred it gives, raised at `step`
/// ([`run_step`] without its trace event).
#[inline]
pub(crate) fn unwound_at<T, U, E, F>(
    f: F,
    result: Result<T, E>,
    step: &'static Location<'static>,
) -> Deferred<U, E>
where
    E: FromFailure + 'static,
    F: FnOnce(Result<T, E>, &'static Location<'static>) -> Deferred<U, E>,
{
    match catch_unwind(AssertUnwindSafe(move || f(result, step))) {
        Ok(next) => next,
        Err(payload) => {
            // Made first: the steps a panicking step of a run left (`PanicTrail`) are taken
            // before any other code (a tracing subscriber) runs on this thread.
            let failure = Failure::from_step_panic(payload, step);
            crate::trace::chain_event!(%step, "step panicked");
            Deferred::from_result(Err(E::from(failure)))
        }
    }
}

/// Applies `mark` to the failure a fired Deferred holds, when the chain's error is a `Failure`.
#[inline]
fn mark_failure<U, E: 'static>(
    next: Deferred<U, E>,
    mark: impl FnOnce(&mut Failure),
) -> Deferred<U, E> {
    // The error is taken out of the Deferred while `mark` runs: if `mark` unwinds, only the
    // error is dropped, and the Deferred's address is never handed to its drop glue.
    match next.into_state() {
        State::Fired(Some(Err(mut error))) => {
            // Out of a success's way: after a step the compiler cannot see into (another
            // crate's `fn`), the success would otherwise jump over this (BENCHMARKS.md,
            // "Skylake-SP: a fourth machine").
            std::hint::cold_path();
            if let Some(failure) = as_failure(&mut error) {
                mark(failure);
            }
            Deferred::from_result(Err(error))
        }
        state => Deferred { state },
    }
}

/// A failure skipping the steps of a run of `chain!`'s `then`s at `steps`: they go on its
/// trail, in order (a failure the chain's start gave enters the chain here, as at an errback).
/// Generic over the error alone, so every step of a run shares it.
fn skipped_each<E: 'static>(error: &mut E, steps: &[&'static Location<'static>]) {
    if let Some(failure) = as_failure(error) {
        failure.passed_each(steps);
    }
}

/// Marks a failure that a user function just produced as raised at `step`.
#[inline]
fn raised_at<U, E: 'static>(
    next: Deferred<U, E>,
    step: &'static Location<'static>,
) -> Deferred<U, E> {
    mark_failure(next, |failure| failure.raised_at(step))
}

/// Marks a failure that a callback (which was handed a value, not this failure) gave as raised
/// at `step` if it is new to the chain; one with a history keeps it.
#[inline]
fn given_at<U, E: 'static>(
    next: Deferred<U, E>,
    step: &'static Location<'static>,
) -> Deferred<U, E> {
    mark_failure(next, |failure| failure.given_at(step))
}

/// A step of a run of `chain!`'s `then`s, with the steps nested after it, as one step's function
/// (`Deferred::__add_run`, `__add_callbacks_then`): `$f` is the step; `$skipped()` (a closure
/// with nothing in it, giving a constant) is where it and each step after it in its segment
/// is, in order. A failure that reaches it skips them all and has them on its trail; a panic in
/// `$f` is raised at this step and has the steps after it on its trail (a `PanicTrail` leaves
/// them for the step's own guard around this function). A failure `$f` gave is marked as
/// `add_callback` marks it. (A macro, not a function returning a closure: that closure would
/// capture the step's return type, which need not be `'static`.)
macro_rules! run_of {
    ($f:expr, $skipped:expr) => {{
        let (f, skipped) = ($f, $skipped);
        move |result, step| match result {
            Result::Ok(value) => {
                let steps: &'static [&'static Location<'static>] = skipped();
                let trail = PanicTrail(steps.get(1..).unwrap_or_default());
                let next = f(value);
                trail.disarm();
                given_at(into_next(next), step)
            }
            Err(mut error) => {
                skipped_each(&mut error, skipped());
                // As in `add_callback`: `f` is dropped after the failure is in `next`.
                let next = Deferred::from_result(Err(error));
                drop(f);
                next
            }
        }
    }};
}

/// Marks a failure handed to user code (an errback): if that code returns it, it was passed
/// on, not raised there.
#[inline]
fn received<E: 'static>(mut error: E) -> E {
    if let Some(failure) = as_failure(&mut error) {
        failure.entered_chain();
    }
    error
}

/// A failure skipping a callback step: it records the step on its trail and flows on.
#[inline]
fn skip<U, E: 'static>(mut error: E, step: &'static Location<'static>) -> Deferred<U, E> {
    if let Some(failure) = as_failure(&mut error) {
        failure.passed(step);
    }
    Deferred::from_result(Err(error))
}

impl<T, E: 'static> Deferred<T, E> {
    /// An already-fired Deferred holding `result`.
    #[inline]
    pub fn from_result(result: Result<T, E>) -> Deferred<T, E> {
        Deferred {
            state: State::Fired(Some(result)),
        }
    }

    /// An already-fired Deferred holding `value` (Twisted's `succeed`).
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// let d = deferred::Deferred::<_>::succeed(7).add_callback(|x| Ok(x * 6));
    /// assert_eq!(d.wait().unwrap(), 42);
    /// ```
    #[inline]
    #[doc(alias = "resolve")]
    pub fn succeed(value: T) -> Deferred<T, E> {
        Deferred::from_result(Ok(value))
    }

    /// An already-fired Deferred holding the failure `error` (Twisted's `fail`).
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::{Deferred, Failure};
    /// let d = Deferred::<u32>::fail(Failure::msg("no"))
    ///     .add_callback(|x| Ok(x + 1))              // skipped
    ///     .add_errback(|f: Failure| Ok(f.to_string().len() as u32));
    /// assert_eq!(d.wait().unwrap(), 2);
    /// ```
    ///
    /// A [`Failure`] given here that no step has raised records this call as where it entered
    /// the chain ([`Failure::entered_at`]).
    #[inline]
    #[track_caller]
    #[doc(alias = "reject")]
    pub fn fail(mut error: E) -> Deferred<T, E> {
        crate::failure::note_entered(&mut error, Location::caller(), EnteredBy::Fail);
        Deferred::from_result(Err(error))
    }

    /// For `chain!`, not public API: the fired Deferred a chain started with a `Result` starts
    /// from, at `at`. A failure's [`entered_at`](Failure::entered_at) is that place, as
    /// [`fail`](Self::fail) notes its own.
    #[doc(hidden)]
    #[inline]
    pub fn __start(result: Result<T, E>, at: &'static Location<'static>) -> Deferred<T, E> {
        match result {
            Ok(value) => Deferred::from_result(Ok(value)),
            Err(mut error) => {
                crate::failure::note_entered(&mut error, at, EnteredBy::ChainStart);
                Deferred::from_result(Err(error))
            }
        }
    }

    /// Whether the result is already here (the Deferred has fired and nothing has taken it).
    pub fn is_fired(&self) -> bool {
        match &self.state {
            State::Fired(result) => result.is_some(),
            State::Pending(link) => link.is_fired(),
        }
    }

    /// Whether the result has not come yet (Bluebird's `isPending`): the Deferred is pending and
    /// its chain has not fired. `false` once it has fired, and once its result was taken.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::Deferred;
    /// let (d, resolver) = Deferred::<u32>::pending();
    /// assert!(d.is_pending());
    /// resolver.callback(1);
    /// assert!(!d.is_pending() && d.is_fired());
    /// ```
    pub fn is_pending(&self) -> bool {
        match &self.state {
            State::Fired(_) => false,
            State::Pending(link) => !link.is_fired(),
        }
    }

    /// The result, if it is held here, without taking it (Bluebird's `value()`/`reason()`,
    /// futures' `Shared::peek`): `Some` for a Deferred that had fired when it was made
    /// (`succeed`, `fail`, a step run at once) or whose result [`poll_fired`](Self::poll_fired)
    /// brought here. `None` while it is pending — and also for a pending Deferred whose chain
    /// has fired since: that result is in the chain, shared with its `Resolver` behind a lock,
    /// where no reference can be handed out. Call `poll_fired` (it takes `&mut self`) to bring
    /// it here, or [`is_fired`](Self::is_fired) just to know.
    ///
    /// Peeking does not handle a failure: dropped without being taken, it is still reported.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::Deferred;
    /// let d = Deferred::<u32>::succeed(1).add_callback(|x| Ok(x + 1)); // ran at once
    /// assert_eq!(d.peek().unwrap().ok(), Some(&2));
    /// assert_eq!(d.wait().unwrap(), 2); // still there
    /// ```
    pub fn peek(&self) -> Option<Result<&T, &E>> {
        match &self.state {
            State::Fired(Some(result)) => Some(result.as_ref()),
            State::Fired(None) | State::Pending(_) => None,
        }
    }

    /// Moves the state out, leaving a spent one behind so `Drop` has nothing to report.
    #[inline]
    fn take_state(&mut self) -> State<T, E> {
        std::mem::replace(&mut self.state, State::Fired(None))
    }

    /// Consumes the Deferred into its state. What is left behind is spent, with nothing to
    /// drop: it is forgotten rather than dropped, so that no drop glue takes its address (a
    /// Deferred moved from step to step then lives in registers).
    #[inline]
    fn into_state(mut self) -> State<T, E> {
        let state = self.take_state();
        std::mem::forget(self);
        state
    }

    /// The Deferred of a stage's output (see `stage::run_now`).
    pub(crate) fn from_output(output: Option<Result<T, E>>) -> Deferred<T, E> {
        match output {
            Some(result) => Deferred::from_result(result),
            None => unreachable!("a stage that is ready has its result in its slot"),
        }
    }

    /// A pending Deferred at the end of the chain `link`.
    pub(crate) fn waiting(link: ChainPtr<dyn AnyChain<E>>) -> Deferred<T, E> {
        Deferred {
            state: State::Pending(link),
        }
    }

    /// What this Deferred amounts to for a link that waits on it (consumes it).
    #[inline]
    pub(crate) fn into_outcome(self) -> Outcome<T, E> {
        match self.into_state() {
            State::Fired(Some(result)) => Outcome::Ready(result),
            State::Pending(link) => Outcome::Waiting(link),
            State::Fired(None) => Outcome::Spent,
        }
    }
}

/// The message of a Deferred used after its result was taken.
pub(crate) const SPENT: &str =
    "this Deferred's result was already taken (it was polled or awaited to completion)";

/// Panics for a Deferred used after its result was taken (out of line: it never happens in a
/// correct program, and keeps the message's formatting out of the inlined fast paths).
#[cold]
#[inline(never)]
#[track_caller]
fn spent() -> ! {
    panic!("{SPENT}")
}

// The constructors of a pending Deferred ask for their bounds themselves, not their `impl`: a
// value or error type that does not meet them then gets the bound's own message
// (`FromFailure`'s, `Sendable`'s) at the call, where an `impl`'s bound would make the method
// "exist but not apply", with rustc pointing at other constructors.
impl<T, E: 'static> Deferred<T, E> {
    /// An unfired Deferred and the one handle that fires it.
    ///
    /// Where it is made is the caller's line (`#[track_caller]`): what a `NeverFired` failure,
    /// `Debug` and the registry say. A helper of yours that makes Deferreds (a `query(..)` that
    /// calls `pending`) can pass its own caller's line on by being `#[track_caller]` too.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::Deferred;
    /// let (d, resolver) = Deferred::<u32>::pending();
    /// let d = d.add_callback(|x| Ok(x + 1));
    /// assert!(!d.is_fired());
    /// resolver.callback(1);
    /// assert_eq!(d.wait().unwrap(), 2);
    /// ```
    #[track_caller]
    #[doc(alias = "new")]
    #[doc(alias = "withResolvers")]
    pub fn pending() -> (Deferred<T, E>, Resolver<T, E>)
    where
        T: Sendable + 'static,
        E: FromFailure + Sendable + 'static,
    {
        Self::pending_with(None, Location::caller())
    }

    /// An unfired Deferred whose `canceller` runs if the chain is cancelled while waiting on it
    /// (Twisted's `Deferred(canceller)`): stop the underlying work there. After the canceller
    /// returns, the Deferred fails with [`Cancelled`](crate::Cancelled), unless the canceller
    /// arranged for it to fire; a later fire from the Resolver is then ignored.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    /// use deferred::{Deferred, Failure, Cancelled};
    ///
    /// let stopped = Arc::new(AtomicBool::new(false));
    /// let flag = stopped.clone();
    /// let (d, resolver) = Deferred::<u32>::with_canceller(move || flag.store(true, Ordering::SeqCst));
    /// let d = d.add_callback(|x| Ok(x + 1));
    /// d.cancel();
    /// assert!(stopped.load(Ordering::SeqCst));
    /// assert!(d.wait().unwrap_err().is::<Cancelled>());
    /// resolver.callback(1); // ignored: the Deferred was cancelled
    /// ```
    #[track_caller]
    pub fn with_canceller(
        canceller: impl FnOnce() + Sendable + 'static,
    ) -> (Deferred<T, E>, Resolver<T, E>)
    where
        T: Sendable + 'static,
        E: FromFailure + Sendable + 'static,
    {
        Self::pending_with(Some(Box::new(canceller)), Location::caller())
    }
}


impl<T, E> Deferred<T, E>
where
    T: Sendable + 'static,
    E: Sendable + 'static,
{
    /// The same chain with its error type converted by `f`: a Deferred of another error type
    /// (a library's, one of yours) made to fit a chain of `Failure`s, or the other way round.
    /// No step of the chain sees the conversion; a value passes through as it is. A panic in
    /// `f` is a failure of the result, raised here. Cancelling the result cancels this chain,
    /// whose answer (a cancellation, in this chain's error type) `f` converts as any failure:
    /// keep a `Failure` in your error type (`From<Failure>`) and give it back in `f` for the
    /// result to read as cancelled.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::{Deferred, Failure};
    ///
    /// #[derive(Debug)]
    /// enum DbError { NoRow, Chain(Failure) }
    /// impl From<Failure> for DbError {
    ///     fn from(f: Failure) -> DbError { DbError::Chain(f) }
    /// }
    ///
    /// let (row, resolver) = Deferred::<u32, DbError>::pending();
    /// let row: Deferred<u32> = row.map_err(|e| Failure::msg(format!("query failed: {e:?}")));
    /// resolver.errback(DbError::NoRow);
    /// assert_eq!(row.wait().unwrap_err().to_string(), "query failed: NoRow");
    /// ```
    #[track_caller]
    pub fn map_err<F, G>(self, f: G) -> Deferred<T, F>
    where
        F: FromFailure + Sendable + 'static,
        G: FnOnce(E) -> F + Sendable + 'static,
    {
        let at = Location::caller();
        let convert = move |result: Result<T, E>| {
            result.map_err(|error| {
                let mut converted = catch_unwind(AssertUnwindSafe(move || f(error)))
                    .unwrap_or_else(|panic| {
                        F::from(Failure::from_panic_in(panic, Some(at), "map_err's conversion"))
                    });
                // A failure the conversion made (`map_err(Failure::new)`) enters the chain
                // here: it says so, as one a Resolver's `errback` hands in does.
                crate::failure::note_entered(&mut converted, at, crate::failure::EnteredBy::MapErr);
                converted
            })
        };
        let link = match self.into_state() {
            State::Fired(Some(result)) => return Deferred::from_result(convert(result)),
            State::Fired(None) => spent(),
            State::Pending(link) => link,
        };
        let (converted, resolver) = Deferred::<T, F>::pending_with(None, at);
        let output = resolver.link.clone();
        // The chain hands its result on as it would to a combinator's input: no step is added
        // to it (and so no bound is asked of `E`). The converted root waits on it as a
        // combinator's output waits on its inputs: a cancel of it cancels this chain, and it
        // fires with this chain's answer, converted, whenever that comes (a step that was
        // running when the cancel landed may still give a value or a failure of its own).
        let arrival = Ptr::new(MapErr {
            source: CancelHandle::new(kind::link_to_cancel(link.clone())),
            pending: kind::Lock::new(Some((convert, resolver))),
            seen_closed: kind::Flag::new(),
            failed_round: kind::Flag::new(),
        });
        if let Some(output) = output {
            let source = Ptr::downgrade(&arrival);
            output.wait_on_inputs(source, "map_err");
        }
        link.forward_to_fan_in(arrival, 0);
        converted
    }

}

/// How [`Resolver::settle_by`] hands a result to its chain: `Chain::fire` or
/// `Chain::fire_if_open` (the result back when refused).
type FireWith<T, E> = fn(&ChainPtr<Chain<T, E>>, Result<T, E>) -> Result<(), Result<T, E>>;

/// Where a chain that [`Deferred::map_err`] converts hands its result: the conversion and the
/// converted Deferred's resolver, taken by the one arrival; and the chain, which a cancel of
/// the converted Deferred cancels.
struct MapErr<C, T, F: 'static> {
    source: CancelHandle,
    pending: kind::Lock<Option<(C, Resolver<T, F>)>>,
    /// Set once the converted chain was seen closed (`OutputSeen`): it stays closed, so a walk
    /// that asks again stops here (the chains fed to nested `map_err`s, let go of one by one,
    /// each ask it).
    seen_closed: kind::Flag,
    /// Set once a cancel that went round a cycle through this `map_err` failed the converted
    /// chain (`Inputs::fail_output`): a failure that arrives after, not a cancellation, is
    /// reported.
    failed_round: kind::Flag,
}

impl<C, T, F> chain::pending::cancel::Inputs for MapErr<C, T, F>
where
    C: Sendable,
    T: Sendable + 'static,
    F: FromFailure + Sendable + 'static,
{
    fn cancel_inputs(&self, within: chain::pending::cancel::Within) {
        self.source.cancel_within(0, &within);
    }

    fn fail_output(&self, at: Option<&'static Location<'static>>) {
        // User code (`From<Failure>`; then the converted chain's steps, the conversion's
        // `Drop`): a panic is reported, as in `arrive`. The error is made first, so that a
        // panic there leaves the converted chain as it was.
        let cancelled = match catch_unwind(|| F::from(Failure::cancelled_by(at))) {
            Ok(cancelled) => cancelled,
            Err(panic) => return unhandled::report(Failure::from_panic(panic, None)),
        };
        // Set before the converted chain is taken (under the lock `arrive` takes too), so that
        // an arrival that finds it taken sees the flag.
        self.failed_round.set();
        let taken = self.pending.lock().take();
        if let Some((convert, resolver)) = taken
            && let Err(panic) = catch_unwind(AssertUnwindSafe(move || {
                drop(convert);
                drop(resolver.settle(Err(cancelled)));
            }))
        {
            unhandled::report(Failure::from_panic(panic, None));
        }
    }

    #[cfg(feature = "registry")]
    fn pending_inputs(&self) -> usize {
        usize::from(self.pending.lock().is_some())
    }
}

impl<C, T, F> chain::pending::OutputSeen for MapErr<C, T, F>
where
    C: Sendable,
    T: Sendable + 'static,
    F: Sendable + 'static,
{
    fn output_seen(&self) -> chain::pending::Seen {
        if self.seen_closed.get() {
            return chain::pending::Seen::Closed;
        }
        // The converted chain is asked after this lock is released.
        let output = match &*self.pending.lock() {
            Some((_, resolver)) => resolver.link.clone(),
            None => return chain::pending::Seen::Closed, // converted already
        };
        match output {
            Some(output) => output.seen_as_root(),
            None => chain::pending::Seen::Closed,
        }
    }

    fn output_answered(&self, closed: bool) -> bool {
        if closed {
            self.seen_closed.set();
        }
        closed
    }
}

impl<C, T, E, F> chain::pending::Arrive<E> for MapErr<C, T, F>
where
    C: FnOnce(Result<T, E>) -> Result<T, F> + Sendable,
    T: Sendable + 'static,
    E: 'static,
    F: Sendable + 'static,
{
    fn arrive(self: Ptr<Self>, _index: u32, from: &mut dyn stage::Slot<E>) {
        let Some(result) = stage::take::<T, E>(from) else {
            unreachable!("a chain hands on its result once it has one");
        };
        let taken = self.pending.lock().take();
        let Some((convert, resolver)) = taken else {
            // The converted chain was failed by a cancel that went round a cycle: a failure
            // that is not the cancellation's answer reaches no one else.
            if self.failed_round.get()
                && let Err(error) = result
                && !crate::failure::is_cancellation(&error).unwrap_or(true)
            {
                unhandled::report(error);
            }
            return;
        };
        // User code (`From<Failure>` of the converted type, after a panic in the conversion;
        // the converted chain's values' `Drop`): a panic is reported, as a combinator's arrival's
        // is, not unwound into the thread that fired this chain.
        if let Err(panic) = catch_unwind(AssertUnwindSafe(move || {
            drop(resolver.settle(convert(result)));
        })) {
            unhandled::report(Failure::from_panic(panic, None));
        }
    }

    #[cfg(feature = "registry")]
    fn output(&self) -> Option<usize> {
        let pending = self.pending.lock();
        let (_, resolver) = pending.as_ref()?;
        let link = resolver.link.as_ref()?;
        Some(ChainPtr::as_ptr(link) as *const () as usize)
    }
}

// The methods ask for their bounds themselves too, as the constructors above do: a Deferred of
// an error type that is not `From<Failure>` (an enum of yours, a `&str` from `fail("..")`) or of
// a value that is not `Send` can be made (`succeed`, `fail`, `from_result` ask for nothing), and
// then `add_callback`, `wait`, ... say what is wrong with it (`FromFailure`'s, `Sendable`'s
// message), where an `impl`'s bound would make them "exist but not apply" (E0599).
impl<T, E: 'static> Deferred<T, E> {
    #[inline]
    #[cfg_attr(feature = "registry", track_caller)]
    pub(crate) fn pending_with(
        canceller: Option<Canceller>,
        created_at: &'static Location<'static>,
    ) -> (Deferred<T, E>, Resolver<T, E>)
    where
        T: Sendable + 'static,
        E: FromFailure + Sendable + 'static,
    {
        let (link, resolving) = kind::chain_pair(Chain::root(canceller, created_at));
        crate::trace::chain_event!(%created_at, "chain created");
        #[cfg(feature = "registry")]
        crate::registry::Enter::enter(&link);
        let resolver = Resolver {
            link: Some(resolving),
        };
        (
            Deferred {
                state: State::Pending(kind::erase_chain(link)),
            },
            resolver,
        )
    }

    /// The one primitive every `add_*` method is made of: `f` receives the result (`Ok` or
    /// `Err`) and `step`, where the step was added, and gives the next link. Fired: `f` runs
    /// now, allocation-free. Pending: `f` is appended to the chain's link as a stage (boxed: free
    /// when it captures nothing, as `step` is kept beside it, not in it).
    ///
    /// Always inlined, and small, so that a step whose function the optimizer does not inline
    /// (a named `fn` used in several chains, one from another crate) still costs its call and
    /// little more: the Deferred moves in registers, and the pending path is a function of its
    /// own.
    #[inline(always)]
    #[track_caller] // a Deferred already spent panics at the user's `add_*`
    fn then_step<U, F>(self, step: &'static Location<'static>, f: F) -> Deferred<U, E>
    where
        T: Sendable + 'static,
        E: FromFailure + Sendable + 'static,
        U: Sendable + 'static,
        F: FnOnce(Result<T, E>, &'static Location<'static>) -> Deferred<U, E> + Sendable + 'static,
    {
        match self.into_state() {
            State::Fired(Some(result)) => run_step(f, result, step),
            State::Fired(None) => spent(),
            State::Pending(link) => Self::then_step_pending(link, step, f),
        }
    }

    /// `then_step` on a pending Deferred. A function of its own, so that `then_step` stays small
    /// (the optimizer inlines it or not; forcing it out of line cost pending chains 1-6%).
    #[inline]
    fn then_step_pending<U, F>(
        link: ChainPtr<dyn AnyChain<E>>,
        step: &'static Location<'static>,
        f: F,
    ) -> Deferred<U, E>
    where
        T: Sendable + 'static,
        E: FromFailure + Sendable + 'static,
        U: Sendable + 'static,
        F: FnOnce(Result<T, E>, &'static Location<'static>) -> Deferred<U, E> + Sendable + 'static,
    {
        // Boxed before the lock is taken (free when `f` captures nothing).
        Self::add_to_pending(link, (stage::stage(f), step))
    }

    /// Adds `stage` to the pending chain at `link`; if the chain has fired meanwhile, the stage
    /// runs now, on this thread (rule 2).
    #[inline(always)]
    fn add_to_pending<U: Sendable + 'static>(
        link: ChainPtr<dyn AnyChain<E>>,
        (stage, step): stage::Added<E>,
    ) -> Deferred<U, E>
    where
        T: Sendable + 'static,
        E: FromFailure + Sendable + 'static,
    {
        let mut fired: Option<Result<T, E>> = None;
        match link.add((stage, step), &mut fired) {
            None => Deferred {
                state: State::Pending(link),
            },
            Some(stage) => stage::run_now(stage, fired, step),
        }
    }

    /// Adds a callback/errback pair (Twisted's `addCallbacks`): `on_ok` sees a success, `on_err`
    /// a failure; exactly one of them runs. A failure raised by `on_ok` goes to the *next*
    /// errback, not to this `on_err`.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::{Deferred, Failure};
    /// let d = Deferred::<u32>::fail(Failure::msg("no"))
    ///     .add_callbacks(|x| Ok(x.to_string()), |f: Failure| Ok(format!("recovered: {f}")));
    /// assert_eq!(d.wait().unwrap(), "recovered: no");
    /// ```
    #[track_caller]
    #[inline]
    #[doc(alias = "addCallbacks")]
    pub fn add_callbacks<R1, R2, Ok, Er>(self, on_ok: Ok, on_err: Er) -> Deferred<R1::Value, E>
    where
        T: Sendable + 'static,
        E: FromFailure + Sendable + 'static,
        Ok: FnOnce(T) -> R1 + Sendable + 'static,
        Er: FnOnce(E) -> R2 + Sendable + 'static,
        R1: IntoDeferred<E>,
        R2: IntoDeferred<E, Value = R1::Value>,
        R1::Value: Sendable + 'static,
    {
        let step = Location::caller();
        self.then_step(step, move |result, step| {
            // The function that does not run is dropped explicitly, after `next` is made: if a
            // capture's `Drop` panics, `next` (and a failure in it) is dropped and reported, not
            // leaked as a half-returned value (rust-lang/rust#47949).
            match result {
                Result::Ok(value) => {
                    let next = given_at(into_next(on_ok(value)), step);
                    drop(on_err);
                    next
                }
                Err(error) => {
                    let next = raised_at(into_next(on_err(received(error))), step);
                    drop(on_ok);
                    next
                }
            }
        })
    }

    /// For `chain!`, not public API: [`add_callback`](Self::add_callback) for a step of a run
    /// of `then`s with steps after it, nested in its closure: a failure skips them all, and
    /// `skipped()` (a closure with nothing in it, giving a constant) is where each of them is,
    /// this step first, in order. They are put on the failure's trail at once; a panic in `f`
    /// is raised at this step and has the steps after it on its trail.
    #[doc(hidden)]
    #[track_caller]
    #[inline]
    pub fn __add_run<R, F, S>(self, f: F, skipped: S) -> Deferred<R::Value, E>
    where
        T: Sendable + 'static,
        E: FromFailure + Sendable + 'static,
        F: FnOnce(T) -> R + Sendable + 'static,
        R: IntoDeferred<E>,
        R::Value: Sendable + 'static,
        S: FnOnce() -> &'static [&'static Location<'static>] + Sendable + 'static,
    {
        self.then_step(Location::caller(), run_of!(f, skipped))
    }

    /// For `chain!`, not public API: the link that carries a long run's names on to its next
    /// segment, when a segment's last step gave a pending Deferred: `f` makes the tuple the
    /// next segment takes apart. No step of the user's: it skips none (a failure passes it with
    /// nothing on its trail), the registry does not list it, and it has no `step` event.
    #[doc(hidden)]
    #[inline]
    pub fn __add_carrying<U, F>(self, f: F) -> Deferred<U, E>
    where
        T: Sendable + 'static,
        E: FromFailure + Sendable + 'static,
        F: FnOnce(T) -> U + Sendable + 'static,
        U: Sendable + 'static,
    {
        self.then_step(
            crate::trace::unlisted(),
            move |result: Result<T, E>, _| Deferred::from_result(result.map(f)),
        )
    }

    /// For `chain!`, not public API: [`__add_run`](Self::__add_run) and `then` on its
    /// outcome, as one step of this Deferred. The outcome — the Deferred `f` gave, or the
    /// failure that skipped the run or that `f`'s panic raised, marked as `__add_run` marks
    /// them — goes to `then`, which gives the step's outcome, unmarked: `chain!` adds the `catch`
    /// after a run of `then`s there. On a pending Deferred, an outcome still pending is waited
    /// on first, and `then` gets it fired, as the chain's next stage (see `stage::RunThen`), so
    /// the run's own links keep nothing to run after the run. On a fired Deferred (or one that
    /// fires while the stage is added), `then` gets the outcome as it is, pending or not.
    ///
    /// A spent Deferred given by `f` reaches `then` as the failure a chain makes of it.
    /// `then_at`: where `then`'s step is (the `catch` keyword), for the stage it is while it
    /// waits (the registry lists it there).
    #[doc(hidden)]
    #[track_caller]
    #[inline]
    pub fn __add_callbacks_then<R, F, S, Th>(
        self,
        f: F,
        skipped: S,
        then: Th,
        then_at: &'static Location<'static>,
    ) -> Deferred<R::Value, E>
    where
        T: Sendable + 'static,
        E: FromFailure + Sendable + 'static,
        F: FnOnce(T) -> R + Sendable + 'static,
        R: IntoDeferred<E>,
        R::Value: Sendable + 'static,
        S: FnOnce() -> &'static [&'static Location<'static>] + Sendable + 'static,
        Th: FnOnce(Deferred<R::Value, E>) -> Deferred<R::Value, E> + Sendable + 'static,
    {
        let step = Location::caller();
        let run = run_of!(f, skipped);
        match self.into_state() {
            State::Fired(Some(result)) => run_step(
                move |result, step| {
                    // A panic of the run is its outcome: `then` sees it as a failure.
                    let outcome = unwound_at(run, result, step);
                    // What a link waiting on a spent Deferred gets (see `stage`).
                    let outcome = match outcome.into_state() {
                        State::Fired(None) => Deferred::from_result(Err(E::from(Failure::msg(SPENT)))),
                        state => Deferred { state },
                    };
                    then(outcome)
                },
                result,
                step,
            ),
            State::Fired(None) => spent(),
            // One stage: the run, and `then` on its outcome (see `stage::RunThen`).
            State::Pending(link) => {
                Self::add_to_pending(link, (stage::run_then(run, then, then_at), step))
            }
        }
    }

    /// This Deferred with `stage` added, as `then_step` adds a step's function (for a stage
    /// already boxed: see `stage::run_now`).
    pub(crate) fn with_stage(self, (stage, step): stage::Added<E>) -> Deferred<T, E>
    where
        T: Sendable + 'static,
        E: FromFailure + Sendable + 'static,
    {
        match self.into_state() {
            State::Fired(Some(result)) => stage::run_now(stage, Some(result), step),
            State::Fired(None) => spent(),
            State::Pending(link) => Self::add_to_pending(link, (stage, step)),
        }
    }

    /// Adds a callback (Twisted's `addCallback`): it sees a success and returns the next link's
    /// outcome — `Ok(value)`, `Err(error)` (use `?` freely: any std error converts into
    /// [`Failure`]), or a Deferred to wait on. A failure skips it.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::{Deferred, Failure};
    /// let d = Deferred::<_>::succeed("42")
    ///     .add_callback(|s: &str| Ok(s.parse::<u32>()?))       // ParseIntError -> Failure
    ///     .add_callback(|n| Deferred::succeed(n + 1));          // return a Deferred
    /// assert_eq!(d.wait().unwrap(), 43);
    /// ```
    #[track_caller]
    #[inline]
    #[doc(alias = "then")]
    #[doc(alias = "addCallback")]
    pub fn add_callback<R, F>(self, f: F) -> Deferred<R::Value, E>
    where
        T: Sendable + 'static,
        E: FromFailure + Sendable + 'static,
        F: FnOnce(T) -> R + Sendable + 'static,
        R: IntoDeferred<E>,
        R::Value: Sendable + 'static,
    {
        self.add_callback_at(Location::caller(), f)
    }

    /// [`add_callback`](Self::add_callback) of a step at `step`: a helper's own step, placed
    /// where the user called the helper. `#[track_caller]`, as `then_step`: a Deferred already
    /// spent panics at the user's `add_callback`, not here.
    #[inline]
    #[track_caller]
    pub(crate) fn add_callback_at<R, F>(
        self,
        step: &'static Location<'static>,
        f: F,
    ) -> Deferred<R::Value, E>
    where
        T: Sendable + 'static,
        E: FromFailure + Sendable + 'static,
        F: FnOnce(T) -> R + Sendable + 'static,
        R: IntoDeferred<E>,
        R::Value: Sendable + 'static,
    {
        self.then_step(step, move |result, step| match result {
            Ok(value) => given_at(into_next(f(value)), step),
            Err(error) => {
                // Skipped: `f` is dropped after the failure is in `next`, so a panic in a
                // capture's `Drop` reports the failure instead of leaking it (see add_callbacks).
                let next = skip(error, step);
                drop(f);
                next
            }
        })
    }

    /// Adds an errback (Twisted's `addErrback`): it sees a failure; returning `Ok` recovers the
    /// chain, returning `Err` passes a failure on. A success skips it.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::{Deferred, Failure};
    /// let d = Deferred::<u32>::fail(Failure::msg("timeout"))
    ///     .add_errback(|f: Failure| if f.to_string() == "timeout" { Ok(0) } else { Err(f) });
    /// assert_eq!(d.wait().unwrap(), 0);
    /// ```
    ///
    /// The errback takes the chain's error type, `E` (a [`Failure`] unless the chain says
    /// otherwise), whatever error a step failed with: `add_errback(|e: io::Error| ..)` on a
    /// `Deferred<T>` is rustc's "type mismatch in closure arguments" (E0631, "expected closure
    /// signature `fn(Failure) -> _`"). To handle one kind of error, take the `Failure` and
    /// [`trap`](Failure::trap) it, which passes every other failure on, as Twisted's
    /// `f.trap(E)` does (or look with [`downcast_ref`](Failure::downcast_ref)); in `chain!`,
    /// `catch |e: io::Error| ..` does the same.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::{Deferred, Failure};
    /// use std::io;
    ///
    /// let not_found = Failure::new(io::Error::from(io::ErrorKind::NotFound));
    /// let missing = Deferred::<Vec<u8>>::fail(not_found).add_errback(|f: Failure| {
    ///     let error = f.trap::<io::Error>()?; // any other failure goes on as it is
    ///     match error.kind() {
    ///         io::ErrorKind::NotFound => Ok(Vec::new()),
    ///         _ => Err(Failure::new(error)),
    ///     }
    /// });
    /// assert!(missing.wait().unwrap().is_empty());
    /// ```
    #[track_caller]
    #[inline]
    #[doc(alias = "catch")]
    #[doc(alias = "addErrback")]
    pub fn add_errback<R, F>(self, f: F) -> Deferred<T, E>
    where
        T: Sendable + 'static,
        E: FromFailure + Sendable + 'static,
        F: FnOnce(E) -> R + Sendable + 'static,
        R: IntoDeferred<E, Value = T>,
    {
        let step = Location::caller();
        self.then_step(step, move |result, step| match result {
            Ok(value) => {
                // Skipped: dropped after the value is in `next` (see add_callbacks).
                let next = Deferred::succeed(value);
                drop(f);
                next
            }
            Err(error) => raised_at(into_next(f(received(error))), step),
        })
    }

    /// Adds a function that sees either outcome (Twisted's `addBoth`); what it returns replaces
    /// the result.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::{Deferred, Failure};
    /// let d = Deferred::<u32>::fail(Failure::msg("no"))
    ///     .add_both(|r: Result<u32, Failure>| Ok(r.is_ok()));
    /// assert_eq!(d.wait().unwrap(), false);
    /// ```
    #[track_caller]
    #[inline]
    #[doc(alias = "finally")]
    #[doc(alias = "addBoth")]
    pub fn add_both<R, F>(self, f: F) -> Deferred<R::Value, E>
    where
        T: Sendable + 'static,
        E: FromFailure + Sendable + 'static,
        F: FnOnce(Result<T, E>) -> R + Sendable + 'static,
        R: IntoDeferred<E>,
        R::Value: Sendable + 'static,
    {
        self.add_both_at(Location::caller(), f)
    }

    /// [`add_both`](Self::add_both) of a step at `step` (see [`add_callback_at`](Self::add_callback_at)).
    #[inline]
    #[track_caller]
    pub(crate) fn add_both_at<R, F>(
        self,
        step: &'static Location<'static>,
        f: F,
    ) -> Deferred<R::Value, E>
    where
        T: Sendable + 'static,
        E: FromFailure + Sendable + 'static,
        F: FnOnce(Result<T, E>) -> R + Sendable + 'static,
        R: IntoDeferred<E>,
        R::Value: Sendable + 'static,
    {
        self.then_step(step, move |result, step| {
            raised_at(into_next(f(result.map_err(received))), step)
        })
    }

    /// Cancels a pending chain: the canceller of whatever the chain is waiting on runs
    /// (the root's, or that of a Deferred a callback returned), and that Deferred fails with
    /// [`Cancelled`](crate::Cancelled), which flows down the chain to its errbacks. Cancelling a
    /// fired Deferred does nothing. A cancel that lands while the chain's callbacks are running
    /// is remembered: the next Deferred a callback of this run returns is cancelled at once; if
    /// the chain fires first, there was nothing left to cancel. A canceller that panics does not
    /// escape: its panic becomes the failure. The [`Cancelled`](crate::Cancelled) the cancel
    /// makes says where it was called ([`Failure::entered_at`], `by cancel`); a cancel that is
    /// remembered has no place.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::{Deferred, Failure};
    /// let (inner, _resolver) = Deferred::<u32>::pending();
    /// let d = Deferred::<u32>::succeed(1).add_callback(move |_| inner); // waits on `inner`
    /// d.cancel();
    /// assert!(d.wait().unwrap_err().is_cancelled());
    /// ```
    #[track_caller]
    pub fn cancel(&self)
    where
        T: Sendable + 'static,
        E: FromFailure + Sendable + 'static,
    {
        self.cancel_handle().cancel_from(Some(Location::caller()));
    }

    /// A handle that cancels this chain later, from anywhere, even after this Deferred has been
    /// consumed by `add_*`. A pending Deferred and those its `add_*` calls return are one chain
    /// (as in Twisted, where they are one object): the handle cancels whatever that chain waits
    /// on when the cancel lands.
    pub fn cancel_handle(&self) -> CancelHandle
    where
        T: Sendable + 'static,
        E: FromFailure + Sendable + 'static,
    {
        match &self.state {
            State::Pending(link) => CancelHandle::new(kind::link_to_cancel(link.clone())),
            State::Fired(_) => CancelHandle::none(),
        }
    }

    /// Blocks this thread until the Deferred fires, and returns its result. The failure, if any,
    /// counts as handled.
    ///
    /// Waiting inside a callback is allowed: chains this thread has queued run first. Waiting
    /// for a Deferred that only this thread would fire, later, does not return (a
    /// `LocalDeferred` runs its thread's inbox meanwhile, and panics on a thread with none):
    /// one whose resolver this thread holds, or one a task of the async runtime this thread runs
    /// (tokio's, a `LocalSet`) or its event loop (calloop's) would fire, which `wait` keeps from
    /// running. There, `.await` the Deferred instead (it is a `Future`), or add a step to it.
    /// (With the feature `tokio` or `calloop`, a `wait` that has blocked for two seconds the
    /// thread of a current-thread tokio runtime, or of a calloop loop that drains this thread's
    /// inbox, says so on stderr, once, and goes on waiting: a `LocalDeferred`'s runs what other
    /// threads post to its inbox meanwhile, as always. A worker thread of a multi-thread tokio
    /// runtime gets no such warning (tokio names its workers and its blocking pool's threads
    /// alike), and its `wait` hangs too on a task it spawned that has not run yet, such as
    /// `from_future`'s just made: tokio keeps that task for that worker, which no other worker
    /// takes it from.)
    ///
    /// # Errors
    ///
    /// The chain's failure, as its error type `E`: a step's error or panic, a cancellation
    /// ([`Cancelled`](crate::Cancelled)), a Resolver dropped unfired
    /// ([`NeverFired`](crate::NeverFired)).
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::Deferred;
    /// let (d, resolver) = Deferred::<u32>::pending();
    /// std::thread::spawn(move || resolver.callback(5));
    /// assert_eq!(d.wait().unwrap(), 5);
    /// ```
    #[inline]
    #[track_caller]
    pub fn wait(self) -> Result<T, E>
    where
        T: Sendable + 'static,
        E: FromFailure + Sendable + 'static,
    {
        match self.into_state() {
            State::Fired(Some(result)) => result,
            State::Fired(None) => spent(),
            State::Pending(link) => Self::wait_pending(link),
        }
    }

    #[inline]
    #[track_caller]
    fn wait_pending(link: ChainPtr<dyn AnyChain<E>>) -> Result<T, E>
    where
        T: Sendable + 'static,
        E: FromFailure + Sendable + 'static,
    {
        let mut link = match take_only(link) {
            Ok(result) => return result,
            Err(link) => link,
        };
        // Fired already (the usual case on one thread): no waker, no blocking.
        match take(&mut link) {
            Some(result) => result,
            None => Self::block_on(link),
        }
    }

    /// Blocks this thread until the chain at `link` fires.
    #[cold]
    #[inline(never)]
    #[track_caller] // the local kind's `Blocker::block` panics at the caller's `wait`
    fn block_on(mut link: ChainPtr<dyn AnyChain<E>>) -> Result<T, E>
    where
        T: Sendable + 'static,
        E: FromFailure + Sendable + 'static,
    {
        // Made only if the result is not here yet: waiting on a fired chain allocates nothing.
        let mut blocker: Option<Blocker> = None;
        loop {
            let listen = || blocker.get_or_insert_with(Blocker::new).waker();
            if let Some(result) = take_or_listen(&mut link, true, listen) {
                return result;
            }
            blocker.get_or_insert_with(Blocker::new).block();
        }
    }

    /// The result, if the Deferred has fired, without taking it: [`peek`](Self::peek) that also
    /// sees a pending chain that has fired since. It moves that chain's result into this
    /// Deferred (which holds it from then on as if it had fired when made), so a reference can
    /// be handed out; `None` while the chain has not fired — and, for ever, once its result was
    /// taken (polled or awaited to completion: [`is_pending`](Self::is_pending) is then `false`,
    /// where it is `true` for a chain that has not fired). It never blocks and runs no step:
    /// a program with a loop of its own (a game's frames, a UI's ticks) calls it each turn,
    /// where another would `await` or [`wait`](Self::wait).
    ///
    /// Moving the result in ends the chain: the Deferred is then as a fired one — steps added
    /// run at once, a [`cancel`](Self::cancel) does nothing. A failure is not handled by being
    /// looked at: dropped without being taken, it is still reported.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::Deferred;
    ///
    /// let (texture, resolver) = Deferred::<Vec<u8>>::pending();
    /// let mut texture = texture.add_callback(|bytes| Ok(bytes.len()));
    /// let worker = std::thread::spawn(move || resolver.callback(vec![0; 64]));
    /// loop {
    ///     // One frame: draw with the texture once it is here, a placeholder until then.
    ///     match texture.poll_fired() {
    ///         Some(Ok(size)) => break assert_eq!(*size, 64),
    ///         Some(Err(failure)) => panic!("cannot load: {failure}"),
    ///         None => std::thread::yield_now(),
    ///     }
    /// }
    /// worker.join().unwrap();
    /// assert_eq!(texture.peek().unwrap().ok(), Some(&64));
    /// ```
    pub fn poll_fired(&mut self) -> Option<Result<&T, &E>>
    where
        T: Sendable + 'static,
        E: FromFailure + Sendable + 'static,
    {
        if let State::Pending(link) = &mut self.state
            && let Some(result) = take::<T, E>(link)
        {
            self.state = State::Fired(Some(result));
        }
        self.peek()
    }

    /// The same result, in a new link when this Deferred is pending: steps added to the Deferred
    /// this returns are a chain of their own, which waits on this one. A cancel of the new chain
    /// still walks up to what this one waits on, but a cancel of this one (through a
    /// [`CancelHandle`] taken before) never reaches the new chain's steps.
    #[cfg_attr(any(feature = "registry", feature = "tracing"), track_caller)]
    pub(crate) fn in_a_new_link(self) -> Deferred<T, E>
    where
        T: Sendable + 'static,
        E: FromFailure + Sendable + 'static,
    {
        match self.into_state() {
            State::Pending(link) => {
                let link = Chain::<T, E>::waiting_on(link);
                crate::trace::chain_event!(created_at = %Location::caller(), "chain created");
                Deferred {
                    state: State::Pending(kind::erase_chain(link)),
                }
            }
            fired => Deferred { state: fired },
        }
    }

    /// The address of its chain, as the registry names chains, and where that chain was made,
    /// if it is pending (feature `registry`).
    /// (`Inbox::adopt` asks it of a `Deferred`: unused by the local kind.)
    #[cfg(feature = "registry")]
    #[allow(dead_code)]
    pub(crate) fn chain_seen_as(&self) -> Option<(usize, &'static Location<'static>)>
    where
        T: Sendable + 'static,
        E: FromFailure + Sendable + 'static,
    {
        let State::Pending(link) = &self.state else {
            return None;
        };
        Some((ChainPtr::as_ptr(link) as *const () as usize, link.created_at()))
    }

    /// Names `helper` as what made this Deferred's chain, if it is pending, for the registry
    /// (feature `registry`: `pending_chains()` and `Debug` show it; without it, nothing).
    #[inline]
    pub(crate) fn made_by(self, helper: &'static str) -> Deferred<T, E>
    where
        T: Sendable + 'static,
        E: FromFailure + Sendable + 'static,
    {
        #[cfg(feature = "registry")]
        if let State::Pending(link) = &self.state {
            link.made_by(helper);
        }
        let _ = helper;
        self
    }

    /// For `chain!`, not public API: marks the failure this Deferred holds, if it has fired with
    /// one, as raised at `step` — the origin of a failure new to the chain, a step on the trail
    /// of one it already carries.
    #[doc(hidden)]
    #[inline]
    pub fn __raised_at(self, step: &'static Location<'static>) -> Deferred<T, E>
    where
        T: Sendable + 'static,
        E: FromFailure + Sendable + 'static,
    {
        raised_at(self, step)
    }

}

/// The result at the end of a pending chain, for `wait` and `poll`: taken if it is here —
/// after letting this thread's queue run, when it runs one, since inside a callback the chain
/// may be waiting on it — else `waker` (if it gives one) is registered to be woken when it
/// comes, in the same lock round trip as a last look (it may have come meanwhile). `look_first`:
/// look before the waker is made, for a waker that costs more than a look (`wait`'s blocker).
fn take_or_listen<T, E>(
    link: &mut ChainPtr<dyn AnyChain<E>>,
    look_first: bool,
    waker: impl FnOnce() -> Option<Waker>,
) -> Option<Result<T, E>>
where
    T: Sendable + 'static,
    E: Sendable + 'static,
{
    let running = run_loop::is_running();
    if (look_first || running)
        && let Some(result) = take(link)
    {
        return Some(result);
    }
    if running {
        run_loop::drain_queued();
        if let Some(result) = take(link) {
            return Some(result);
        }
    }
    let waker = waker()?;
    let mut result = None;
    link.take_or_listen(&mut result, waker);
    result
}

/// The result of a chain that has fired, when `link` is the only pointer to it: the usual case
/// on one thread once it has fired. It is taken without the lock, and the chain is freed as its
/// own type, not through the link's dynamic drop (BENCHMARKS.md, "The end of a chain, taken as
/// its own type"): typed here when the chain is of the end's type (no stage changed it), else
/// by the chain itself (`AnyChain::taker`). Else the link, as it was.
#[inline(always)]
fn take_only<T, E>(
    link: ChainPtr<dyn AnyChain<E>>,
) -> Result<Result<T, E>, ChainPtr<dyn AnyChain<E>>>
where
    T: Sendable + 'static,
    E: FromFailure + Sendable + 'static,
{
    match kind::link_to_chain_if::<E, Chain<T, E>>(link) {
        Ok(mut chain) => {
            if let Some(only) = ChainPtr::get_mut(&mut chain) {
                let mut result = None;
                only.take_only_into(&mut result);
                if let Some(result) = result {
                    return Ok(result);
                }
            }
            Err(kind::erase_chain(chain))
        }
        // A stage changed the type: the chain, which has its root's type, takes and frees
        // itself.
        Err(link) if ChainPtr::strong_count(&link) == 1 => {
            let taker = link.taker();
            let mut result = None;
            match taker(link, &mut result) {
                None => match result {
                    Some(result) => Ok(result),
                    None => unreachable!("a chain taken is a chain that had fired"),
                },
                Some(link) => Err(link),
            }
        }
        Err(link) => Err(link),
    }
}

/// The result at the end of a pending chain, if it has fired and nobody took it yet.
///
/// When this end is all that is left of the chain (its Resolver, and every chain or helper
/// that fed it, are gone: the usual case once it has fired), no other thread can reach the
/// chain, and its result is taken without its lock: on a `Deferred`, no atomic read-modify-write
/// (`ChainArc::get_mut` loads the count; with the `registry` feature, `Arc::get_mut` takes one)
/// where the lock's round trip takes two. The count is read first, so a chain still shared
/// pays nothing for the check.
///
/// Always inlined: built with one codegen unit, the compiler kept it out of line, at 2 to 2.5
/// instructions a step more on a pending 10-step chain (BENCHMARKS.md, "The build profile");
/// as Cargo ships the profile it was inlined already.
#[inline(always)]
fn take<T: Sendable + 'static, E: Sendable + 'static>(
    link: &mut ChainPtr<dyn AnyChain<E>>,
) -> Option<Result<T, E>> {
    let mut result = None;
    if ChainPtr::strong_count(link) == 1
        && let Some(only) = ChainPtr::get_mut(link)
    {
        match (&mut *only as &mut dyn Any).downcast_mut::<Chain<T, E>>() {
            Some(chain) => chain.take_only_into(&mut result),
            None => only.try_take_only(&mut result),
        }
        return result;
    }
    match (&**link as &dyn Any).downcast_ref::<Chain<T, E>>() {
        // The end has its root's type (no stage changed it, or stages changed it back): typed.
        Some(chain) => chain.take_into(&mut result),
        None => link.try_take(&mut result),
    }
    result
}

impl<T, E> Future for Deferred<T, E>
where
    T: Sendable + 'static,
    E: FromFailure + Sendable + 'static,
{
    type Output = Result<T, E>;

    /// Ready once the Deferred fires; the failure, if any, counts as handled. Polling after
    /// completion panics, as for other futures.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T, E>> {
        let this = &mut *self;
        if let State::Pending(link) = &this.state
            && ChainPtr::strong_count(link) == 1
            && let State::Pending(link) = std::mem::replace(&mut this.state, State::Fired(None))
        {
            match take_only(link) {
                Ok(result) => return Poll::Ready(result),
                Err(link) => this.state = State::Pending(link),
            }
        }
        match &mut this.state {
            State::Fired(result) => {
                // Spent: the panic every other use of a spent Deferred gives (the type's docs).
                match result.take() {
                    Some(result) => Poll::Ready(result),
                    None => spent(),
                }
            }
            State::Pending(link) => {
                // The id of the waker the chain keeps (a clone's vtable need not be the
                // original's: `Waker::will_wake` is best-effort), for a driven future's cancel.
                let mut registered = None;
                // A chain this end alone holds, fired, was taken above: one still shared is
                // looked at in the round trip that registers the waker.
                let listened = take_or_listen(link, false, || {
                    let waker = cx.waker().clone();
                    registered = Some(crate::drive::WakerId::of(&waker));
                    Some(waker)
                });
                match listened {
                    Some(result) => {
                        this.state = State::Fired(None);
                        Poll::Ready(result)
                    }
                    None => {
                        if let Some(waker) = registered {
                            kind::note_awaited(|| (this.cancel_handle(), waker));
                        }
                        Poll::Pending
                    }
                }
            }
        }
    }
}

// A Deferred is never pinned in place: its state is an owned result or a shared pointer.
impl<T, E> Unpin for Deferred<T, E> {}

impl<T, E: 'static> Drop for Deferred<T, E> {
    /// A failure still held here was never handled: it is reported once, through the
    /// [unhandled-error hook](crate::set_unhandled_hook) (now, or when it arrives if the chain is
    /// still pending). A handled failure is never reported.
    #[inline]
    fn drop(&mut self) {
        // Most Deferreds are dropped spent (consumed by a step, poll or wait): keep that check
        // inline and the rest out of line.
        if !matches!(self.state, State::Fired(None)) {
            drop_unspent(self.take_state());
        }
    }
}

/// The state of a Deferred dropped unspent. Taken by value, not through `&mut self`: a
/// Deferred whose address is never handed to an unknown function can live in registers.
#[inline(never)]
fn drop_unspent<T, E: 'static>(state: State<T, E>) {
    match state {
        State::Fired(Some(Err(error))) => unhandled::report(error),
        State::Fired(_) => {}
        State::Pending(link) => link.abandon(),
    }
}

/// `result.into()`: [`Deferred::from_result`], a Deferred fired with it.
impl<T, E: 'static> From<Result<T, E>> for Deferred<T, E> {
    #[inline]
    fn from(result: Result<T, E>) -> Deferred<T, E> {
        Deferred::from_result(result)
    }
}

/// Says whether the Deferred is pending or has fired, and for a pending one what its chain
/// waits on: its root's resolver, its inputs (a combinator's or `map_err`'s output), another
/// chain (one of its steps returned), or nothing (its steps are running). With the feature
/// `registry`, also where the chain was made, for how long it has been pending, how many steps
/// are left and, for a wait on another chain, where that one was made.
impl<T, E: 'static> fmt::Debug for Deferred<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct(self::kind::DEFERRED);
        let (state, waits_on) = match &self.state {
            State::Fired(Some(Ok(_))) => ("fired (success)", None),
            State::Fired(Some(Err(_))) => ("fired (failure)", None),
            State::Fired(None) => ("spent", None),
            State::Pending(link) => {
                #[cfg(feature = "registry")]
                if let Some(mut seen) = link.seen() {
                    crate::inbox::see_home(std::slice::from_mut(&mut seen));
                    crate::registry::debug_fields(&seen, &mut out);
                    return out.finish();
                }
                match link.doing() {
                    Doing::Fired => ("fired", None),
                    Doing::Root => ("pending", Some("its resolver")),
                    Doing::Inputs => ("pending", Some("its inputs")),
                    Doing::Waiting => ("pending", Some("another chain")),
                    Doing::Running => ("pending", Some("nothing: its steps are running")),
                }
            }
        };
        out.field("state", &state);
        if let Some(waits_on) = waits_on {
            out.field("waits_on", &format_args!("{waits_on}"));
        }
        out.finish()
    }
}

impl<T, E> Resolver<T, E>
where
    T: Sendable + 'static,
    E: Sendable + 'static,
{
    /// Fires the Deferred with a success; its callbacks run now, on this thread.
    ///
    /// One exception keeps deep chains in constant stack: if this thread is already delivering
    /// a chain that a Resolver fired (this call is made from inside one of its callbacks), the
    /// newly fired callbacks are queued and run as soon as the current callback returns, still
    /// on this thread. (A `wait` inside that callback runs the queue first, so it does not
    /// deadlock.) Inside a callback added to an already-fired Deferred, no chain is being
    /// delivered, so they run at once.
    #[doc(alias = "resolve")]
    pub fn callback(self, value: T) {
        drop(self.settle(Ok(value)));
    }

    /// Fires the Deferred with a failure; its errbacks run now, on this thread.
    ///
    /// A [`Failure`] given here that no step has raised records this call as where it entered
    /// the chain ([`Failure::entered_at`]): a report of it as unhandled says so.
    #[doc(alias = "reject")]
    #[track_caller]
    pub fn errback(self, error: E) {
        drop(self.fire_from(Err(error), EnteredBy::Errback));
    }

    /// Fires the Deferred with `result`: `callback` for `Ok`, `errback` for `Err`. If the chain
    /// was cancelled already, it has its outcome (a cancellation), and `result` is dropped, as
    /// Twisted drops the one late fire after a cancel; [`try_fire`](Self::try_fire) gives it
    /// back instead.
    #[track_caller]
    pub fn fire(self, result: Result<T, E>) {
        drop(self.fire_from(result, EnteredBy::Fire));
    }

    /// Fires the Deferred with `result`, unless the chain was cancelled already, or nobody can
    /// see it any more (its Deferred was dropped with no step left: [`is_closed`](Self::is_closed)):
    /// then `result` is given back, so a producer handing out something that must not be lost
    /// (an item of a queue, a pooled connection) can give it to someone else. The check and the
    /// fire are one step: a Deferred dropped on another thread at the same moment either gets
    /// `result` first (and drops it with itself) or gives it back.
    ///
    /// # Errors
    ///
    /// `Err(result)`, the result given back, when the chain was cancelled already or nobody can
    /// see it.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::Deferred;
    ///
    /// let (d, resolver) = Deferred::<String>::pending();
    /// d.cancel();
    /// let back = resolver.try_fire(Ok("the last item".to_string()));
    /// assert_eq!(back.unwrap_err().unwrap(), "the last item");
    /// # drop(d);
    ///
    /// let (d, resolver) = Deferred::<String>::pending();
    /// drop(d); // nobody will read it
    /// let back = resolver.try_fire(Ok("the next item".to_string()));
    /// assert_eq!(back.unwrap_err().unwrap(), "the next item");
    /// ```
    #[inline]
    #[track_caller]
    pub fn try_fire(self, result: Result<T, E>) -> Result<(), Result<T, E>> {
        self.fire_from(result, EnteredBy::TryFire)
    }

    /// [`try_fire`](Self::try_fire) with a value that goes back, through `give_back`, if the
    /// chain drops it unread (its Deferred dropped before anything took the value): what a
    /// `DeferredQueue` hands its items to gets with. Gives `value` back at once when `try_fire`
    /// would.
    pub(crate) fn try_fire_or_give_back<F>(self, value: T, give_back: F) -> Result<(), T>
    where
        T: Sendable + 'static,
        E: FromFailure + Sendable + 'static,
        F: FnOnce(T) + Sendable + 'static,
    {
        self.fire_value_by(value, move |link, value| {
            Chain::fire_if_open_or_give_back(link, value, give_back)
        })
    }

    /// Fires the Deferred with `value`, which holds failures (a combinator's outcome that keeps
    /// its inputs' failures as values: `settle_all`'s `Err`s), unless nobody can see it (then
    /// gives it back, as [`settle_if_open`](Self::settle_if_open)). Until the end of the chain
    /// takes it, a value that no step or listener took as it fired is kept so that
    /// `report_held` reports those failures if the chain drops it unread (rule 5).
    pub(crate) fn settle_holding(self, value: T, report_held: fn(T)) -> Result<(), T>
    where
        T: Sendable + 'static,
        E: FromFailure + Sendable + 'static,
    {
        self.fire_value_by(value, move |link, value| {
            Chain::fire_if_open_holding(link, value, report_held)
        })
    }

    /// Hands `value`, a success, to `fire`, which fires the chain with it (or gives it back).
    fn fire_value_by(
        mut self,
        value: T,
        fire: impl FnOnce(&ChainPtr<Chain<T, E>>, T) -> Result<(), T>,
    ) -> Result<(), T> {
        let link = self.link.take();
        std::mem::forget(self); // nothing left in it to drop
        match link {
            Some(link) => {
                // The fields every other fire's event has: where the chain was made, and that
                // it was fired with a success.
                crate::trace::chain_event!(
                    created_at = %link.created_at().map_or_else(String::new, |at| at.to_string()),
                    ok = true,
                    "fired"
                );
                let fired = fire(&link, value);
                if fired.is_err() {
                    crate::trace::chain_event!(
                        "fire refused: the chain was cancelled, or nobody can see it"
                    );
                }
                fired
            }
            None => Err(value),
        }
    }

    /// A public firing method, called at the caller's location with `by`: a failure no step
    /// raised records where it entered the chain.
    #[inline]
    #[track_caller]
    fn fire_from(self, result: Result<T, E>, by: EnteredBy) -> Result<(), Result<T, E>> {
        self.settle_from(result, Location::caller(), by)
    }

    /// Fires the Deferred with `result`; a failure no step raised records `at` and `by` as
    /// where it entered the chain (a helper's call site, for what the user's work gave it:
    /// `defer_to_thread`, `from_future`).
    #[inline]
    pub(crate) fn settle_from(
        self,
        mut result: Result<T, E>,
        at: &'static Location<'static>,
        by: EnteredBy,
    ) -> Result<(), Result<T, E>> {
        let noted = match &mut result {
            Err(error) => crate::failure::note_entered(error, at, by),
            Ok(_) => false,
        };
        let mut refused = match by {
            EnteredBy::TryFire => self.settle_if_open(result),
            _ => self.settle(result),
        };
        // Given back (the chain was cancelled first): it entered no chain here.
        if noted
            && let Err(Err(error)) = &mut refused
            && let Some(failure) = as_failure(error)
        {
            failure.not_entered();
        }
        refused
    }

    /// Fires the Deferred with `result` unless it was cancelled (then gives `result` back),
    /// without noting where: what the crate's own helpers fire with (a failure they make is
    /// theirs, and a user's failure they pass on was noted where the user gave it).
    #[inline]
    pub(crate) fn settle(self, result: Result<T, E>) -> Result<(), Result<T, E>> {
        self.settle_by(result, Chain::fire)
    }

    /// [`settle`](Self::settle), but `result` is given back, and the chain ends, also when
    /// nobody can see it (its Deferred was dropped with no step left: [`is_closed`](Self::is_closed)).
    pub(crate) fn settle_if_open(self, result: Result<T, E>) -> Result<(), Result<T, E>> {
        self.settle_by(result, Chain::fire_if_open)
    }

    /// Hands `result` to the chain's `fire` (`Chain::fire` or `Chain::fire_if_open`).
    #[inline(always)]
    fn settle_by(
        mut self,
        result: Result<T, E>,
        fire: FireWith<T, E>,
    ) -> Result<(), Result<T, E>> {
        let link = self.link.take();
        std::mem::forget(self); // nothing left in it to drop: a check, not a call to `Drop`
        match link {
            Some(link) => {
                crate::trace::chain_event!(
                    created_at = %link.created_at().map_or_else(String::new, |at| at.to_string()),
                    ok = result.is_ok(),
                    "fired"
                );
                let fired = fire(&link, result);
                if fired.is_err() {
                    crate::trace::chain_event!(
                        "fire refused: the chain was cancelled, or nobody can see it"
                    );
                }
                fired
            }
            None => Err(result),
        }
    }

    /// Gives the Deferred a canceller now that the work has started (or replaces the one it
    /// had, which is then dropped without being called): for a producer that learns how to stop
    /// its work only once it has started it, such as a C API that hands back a request id from
    /// the call that starts the request. The canceller runs as one given to
    /// [`with_canceller`](Deferred::with_canceller) does: when a cancel of the chain reaches
    /// this Deferred while it is pending.
    ///
    /// If the chain has been cancelled already (before this call, or while the canceller it had
    /// runs), the cancel has happened: `canceller` runs at once, on this thread, before this
    /// returns, so the work it stops stops now (Twisted's rule: a cancelled Deferred's work is
    /// cancelled). The Deferred has failed with [`Cancelled`](crate::Cancelled) then, and a
    /// fire from this Resolver is ignored, as after any cancel.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use std::sync::{Arc, Mutex};
    /// use deferred::Deferred;
    ///
    /// let stopped = Arc::new(Mutex::new(Vec::new()));
    /// let (reply, resolver) = Deferred::<String>::pending();
    /// let request_id = 42; // what the call that started the work gave back
    /// let log = stopped.clone();
    /// resolver.set_canceller(move || log.lock().unwrap().push(request_id));
    ///
    /// reply.cancel();
    /// assert_eq!(*stopped.lock().unwrap(), [42]);
    /// assert!(reply.wait().unwrap_err().is_cancelled());
    ///
    /// // Cancelled before the canceller was set: it runs at once.
    /// let (reply, resolver) = Deferred::<String>::pending();
    /// reply.cancel();
    /// let log = stopped.clone();
    /// resolver.set_canceller(move || log.lock().unwrap().push(43));
    /// assert_eq!(*stopped.lock().unwrap(), [42, 43]);
    /// # drop(reply);
    /// ```
    pub fn set_canceller(&self, canceller: impl FnOnce() + Sendable + 'static) {
        if let Some(link) = &self.link {
            link.set_canceller(Box::new(canceller));
        }
    }
}

impl<T, E: 'static> Resolver<T, E> {
    /// Names `helper` (`"defer_to_thread"`, `"DeferredSemaphore::acquire"`, ...) as what holds
    /// this Resolver, for the registry: a chain waiting on it shows whose resolver it waits on
    /// (feature `registry`; without it, nothing).
    #[inline]
    pub(crate) fn held_by(&self, helper: &'static str) {
        #[cfg(feature = "registry")]
        if let Some(link) = &self.link {
            link.made_by(helper);
        }
        let _ = helper;
    }

    /// The address of its chain, as the registry names chains (feature `registry`): `None`
    /// once it has fired.
    /// (The inbox asks it of a `LocalResolver`: unused by the `Send` kind.)
    #[cfg(feature = "registry")]
    #[allow(dead_code)]
    pub(crate) fn chain_address(&self) -> Option<usize> {
        let link = self.link.as_ref()?;
        Some(ChainPtr::as_ptr(link) as *const () as usize)
    }
}

impl<T, E: 'static> Drop for Resolver<T, E> {
    /// A Resolver dropped without firing fails its Deferred with
    /// [`NeverFired`](crate::NeverFired) (saying where the Resolver was made) instead of leaving
    /// it pending for ever.
    fn drop(&mut self) {
        if let Some(link) = self.link.take() {
            Chain::fail_never_fired(&link);
        }
    }
}

/// Where the Resolver was made (while its Deferred waits on it: the chain keeps it until its
/// root fires or is cancelled), and whether it has fired yet (its chain has, or it has not).
impl<T, E: 'static> fmt::Debug for Resolver<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The root keeps where its Resolver was made until it has fired (or a cancel has
        // failed it): after that the chain may be running or waiting on another Deferred (an
        // errback of the cancellation returned one), and the Resolver has fired all the same.
        let created_at = self.link.as_ref().and_then(|link| link.created_at());
        let fired = created_at.is_none();
        let mut out = f.debug_struct(self::kind::RESOLVER);
        if let Some(at) = created_at {
            out.field("created_at", &format_args!("{at}"));
        }
        out.field("fired", &fired).finish()
    }
}

impl<T, E: 'static> Resolver<T, E> {
    /// Whether nobody can ever see the result (tokio's `Sender::is_closed`): the chain was
    /// cancelled (its root no longer waits for this Resolver; a fire now is ignored), or the
    /// Deferred at its end was dropped and no step is left to run, or it was given, with no
    /// step left, to a combinator (`gather_results`, `join`, ...) or `map_err` whose own
    /// Deferred was so dropped. `false` while a step is left, a task polls the end, another
    /// chain waits on it (a step returned it), or a combinator that has decided leaves it
    /// running (its failure would still be reported; not so for a list that
    /// [consumes errors](crate::DeferredList::consume_errors): once it has decided, its inputs
    /// left running are closed).
    ///
    /// So a long computation that would fire this Resolver can stop early: check it between
    /// pieces of work. It only turns from `false` to `true`. A Resolver dropped unfired once its
    /// Deferred was dropped with no step left fails nothing: nobody could see a `NeverFired`,
    /// and none is reported.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use std::time::Duration;
    /// use deferred::Deferred;
    ///
    /// let (sum, resolver) = Deferred::<u64>::pending();
    /// let worker = std::thread::spawn(move || {
    ///     let mut total = 0_u64;
    ///     for n in 0.. {
    ///         if resolver.is_closed() {
    ///             return None; // nobody wants it any more: stop
    ///         }
    ///         total += n; // one piece of the work
    ///         std::thread::sleep(Duration::from_millis(1));
    ///     }
    ///     resolver.callback(total);
    ///     Some(total)
    /// });
    /// std::thread::sleep(Duration::from_millis(10));
    /// sum.cancel(); // the worker sees it at its next check
    /// assert!(sum.wait().unwrap_err().is_cancelled());
    /// assert_eq!(worker.join().unwrap(), None);
    /// ```
    pub fn is_closed(&self) -> bool {
        self.link.as_ref().is_none_or(|link| link.is_closed())
    }
}
