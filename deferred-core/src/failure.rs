//! `Failure`: the default error of a chain, and the errors the chain itself raises.
//!
//! A `Failure` wraps whatever went wrong — any `std::error::Error`, the payload of a panic in a
//! callback, a cancellation, a timeout, a `Resolver` dropped without firing — and remembers where:
//! a backtrace (captured as `RUST_BACKTRACE` / `RUST_LIB_BACKTRACE` say) and the trail of chain
//! steps it passed through, as source locations.
//!
//! Like `anyhow::Error`, `Failure` does not itself implement `std::error::Error`: that keeps the
//! blanket `From<E: Error>` conversion possible, so `?` works on any error inside a callback.
#![forbid(unsafe_code)]

use std::any::{Any, TypeId};
use std::backtrace::{Backtrace, BacktraceStatus};
use std::cell::Cell;
use std::error::Error as StdError;
use std::fmt;
use std::panic::Location;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[cfg(not(loom))]
std::thread_local! {
    /// The steps a panic unwinding out of a step of a run skips (see [`PanicTrail`]).
    static SKIPPED_BY_PANIC: Cell<&'static [&'static Location<'static>]> = const { Cell::new(&[]) };
}

// loom's `thread_local!` does not take `const { .. }` initializers.
#[cfg(loom)]
loom::thread_local! {
    static SKIPPED_BY_PANIC: Cell<&'static [&'static Location<'static>]> = Cell::new(&[]);
}

/// Armed while a step of a run of `chain!`'s `then`s runs, with the steps nested after it: if
/// the step panics, they are never added, and the failure the panic becomes skips them. Its
/// `Drop` runs only while that panic unwinds (a step that returns disarms it), and leaves them
/// for the guard that catches the panic: the next frame that catches is always the step's own
/// (`unwound_at`, which calls [`Failure::from_step_panic`] before any other code runs). No closure of its own per step:
/// a second `catch_unwind` in each step cost a long chain! 13-18% more compile time.
pub(crate) struct PanicTrail(pub(crate) &'static [&'static Location<'static>]);

impl PanicTrail {
    /// The step returned: nothing to leave.
    #[inline(always)]
    pub(crate) fn disarm(self) {
        std::mem::forget(self);
    }

    /// What a panic left, once (nothing for a step outside a run).
    fn take_skipped() -> &'static [&'static Location<'static>] {
        SKIPPED_BY_PANIC
            .try_with(|skipped| skipped.replace(&[]))
            .unwrap_or_default()
    }
}

impl Drop for PanicTrail {
    fn drop(&mut self) {
        // While this thread's locals are being destroyed there is nowhere to leave them: the
        // failure is then raised at its step without them.
        let _ = SKIPPED_BY_PANIC.try_with(|skipped| skipped.set(self.0));
    }
}

/// The boxed error inside a [`Failure`].
type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// The default error type of a [`Deferred`](crate::Deferred): any error, a panic, a cancellation
/// or a timeout, with a backtrace and the trail of chain steps it passed through.
///
/// ```
/// # extern crate deferred_core as deferred;
/// use deferred::{Deferred, Failure};
///
/// #[derive(Debug)]
/// struct NotFound;
/// impl std::fmt::Display for NotFound {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str("no such employee")
///     }
/// }
/// impl std::error::Error for NotFound {}
///
/// let f = Failure::new(NotFound);
/// assert!(f.is::<NotFound>());
/// assert_eq!(f.to_string(), "no such employee");
///
/// // Twisted's `trap`: take the error if it is a NotFound, else hand the Failure back.
/// let d: Deferred<&str> = Deferred::fail(f)
///     .add_errback(|f: Failure| f.trap::<NotFound>().map(|_| "nobody"));
/// assert_eq!(d.wait().unwrap(), "nobody");
/// ```
pub struct Failure {
    inner: Box<Inner>,
}

/// A failure is a value to report, not state that a panic could leave half-changed (as
/// `anyhow::Error` is): code that catches a panic may hold one without `AssertUnwindSafe`.
impl std::panic::UnwindSafe for Failure {}
impl std::panic::RefUnwindSafe for Failure {}

struct Inner {
    error: BoxError,
    /// Whether `error` may hold failures of its own (it is a
    /// [`FirstError`](crate::FirstError), a [`FailureGroup`](crate::FailureGroup) or a
    /// [`SharedFailure`]): what `Drop` takes apart, in a loop. False for most failures, whose
    /// drop then costs nothing more.
    nests: bool,
    backtrace: Backtrace,
    /// Where the failure was raised, when the chain knows it (a step that panicked or returned Err).
    origin: Option<&'static Location<'static>>,
    /// The chain steps the failure passed through after it was raised, oldest first.
    trail: Vec<&'static Location<'static>>,
    /// Whether a chain step has seen the failure, so a step that returns it passes it on rather
    /// than raising it.
    in_chain: bool,
    /// Where code outside a chain handed the failure to one (see [`Failure::entered_at`]).
    entered_at: Option<&'static Location<'static>>,
    /// How: what that code called.
    entered_by: EnteredBy,
}

/// What code outside a chain called to hand it a failure (see [`Failure::entered_at`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EnteredBy {
    /// It has not entered a chain from outside (or a step raised it).
    Nothing,
    Errback,
    Fire,
    TryFire,
    Fail,
    DeferToThread,
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    FromFuture,
    DriveFuture,
    Spawn,
    MapErr,
    ChainStart,
    /// A user's `cancel` (of a Deferred, or a `CancelHandle`): the `Cancelled` it made.
    Cancel,
}

impl EnteredBy {
    /// The name of what was called, as `Debug` of a failure prints it.
    fn name(self) -> &'static str {
        match self {
            EnteredBy::Nothing => "",
            EnteredBy::Errback => "errback",
            EnteredBy::Fire => "fire",
            EnteredBy::TryFire => "try_fire",
            EnteredBy::Fail => "fail",
            EnteredBy::DeferToThread => "defer_to_thread",
            EnteredBy::FromFuture => "from_future",
            EnteredBy::DriveFuture => "drive_future",
            EnteredBy::Spawn => "Inbox::spawn",
            EnteredBy::MapErr => "map_err",
            EnteredBy::ChainStart => "chain!'s start",
            EnteredBy::Cancel => "cancel",
        }
    }
}

impl Failure {
    /// Wraps an error. The backtrace is captured here, as `RUST_BACKTRACE` says.
    pub fn new<E: crate::WrappableError>(error: E) -> Failure {
        // Decided by type, at compile time: no cost for the errors that nest no failure.
        let nests = TypeId::of::<E>() == TypeId::of::<crate::outcome::FirstError>()
            || TypeId::of::<E>() == TypeId::of::<crate::outcome::FailureGroup>()
            || TypeId::of::<E>() == TypeId::of::<SharedFailure>();
        Failure::wrapping_nesting(Box::new(error), nests)
    }

    /// A failure with just a message, for errors that have no type of their own.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// let f = deferred::Failure::msg("disk on fire");
    /// assert_eq!(f.to_string(), "disk on fire");
    /// ```
    pub fn msg(message: impl Into<String>) -> Failure {
        Failure::new(Message(message.into()))
    }

    /// Wraps an already boxed error (what `Box<dyn Error + Send + Sync>` APIs hand out). A box
    /// made from a `Failure` (by `?` into a `Box<dyn Error>`) gives that failure back.
    pub fn from_boxed(error: BoxError) -> Failure {
        match error.downcast::<AsError>() {
            Ok(failure) => failure.0,
            Err(error) => Failure::wrapping(error),
        }
    }

    /// A failure of `error`, made here.
    fn wrapping(error: BoxError) -> Failure {
        let nests = Inner::nesting(&*error);
        Failure::wrapping_nesting(error, nests)
    }

    /// A failure of `error`, made here; `nests` says whether `error` may hold failures (see
    /// [`Inner::nests`]).
    fn wrapping_nesting(error: BoxError, nests: bool) -> Failure {
        Failure {
            inner: Box::new(Inner {
                error,
                nests,
                backtrace: Backtrace::capture(),
                origin: None,
                trail: Vec::new(),
                in_chain: false,
                entered_at: None,
                entered_by: EnteredBy::Nothing,
            }),
        }
    }

    /// The failure of a callback that panicked at the step added at `step`.
    pub(crate) fn from_panic(
        payload: Box<dyn Any + Send>,
        step: Option<&'static Location<'static>>,
    ) -> Failure {
        Failure::from_panic_in(payload, step, "a step")
    }

    /// A finished future's `result`, once `future` is dropped: dropped before the result goes
    /// on (as a finished task's is), a panic in its `Drop` becomes the result, a `Panicked`
    /// failure raised at `at` (the output is dropped).
    pub(crate) fn after_dropping<F, T, E: From<Failure>>(
        future: F,
        result: Result<T, E>,
        at: &'static Location<'static>,
    ) -> Result<T, E> {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(future))) {
            Ok(()) => result,
            Err(panic) => {
                drop(result);
                Err(E::from(Failure::from_panic_in(panic, Some(at), "a future")))
            }
        }
    }

    /// The failure of a panic in the user's code the crate ran as `what` (`"a future"`,
    /// `"posted work"`, ...: see [`Panicked`]), raised at `at`.
    pub(crate) fn from_panic_in(
        payload: Box<dyn Any + Send>,
        at: Option<&'static Location<'static>>,
        what: &'static str,
    ) -> Failure {
        let mut failure = Failure::new(Panicked::new(payload, what));
        failure.inner.origin = at;
        failure.inner.in_chain = at.is_some();
        failure
    }

    /// The failure of a panic that unwound out of the step at `step`: raised there, with the
    /// steps it skipped on its trail when the step was one of a run of `chain!`'s `then`s (see
    /// [`PanicTrail`]).
    pub(crate) fn from_step_panic(
        payload: Box<dyn Any + Send>,
        step: &'static Location<'static>,
    ) -> Failure {
        let mut failure = Failure::from_panic(payload, Some(step));
        failure
            .inner
            .trail
            .extend_from_slice(PanicTrail::take_skipped());
        failure
    }

    /// The failure a chain gets when it is cancelled while pending.
    pub fn cancelled() -> Failure {
        Failure::new(Cancelled)
    }

    /// A [`Cancelled`] made by the cancel of a chain called at `at` (a user's `cancel`; `None`
    /// for the library's own cancels): it entered the chain there, by `cancel`.
    #[cold]
    pub(crate) fn cancelled_by(at: Option<&'static Location<'static>>) -> Failure {
        let mut failure = Failure::cancelled();
        if let Some(at) = at {
            failure.entered_at_by(at, EnteredBy::Cancel);
        }
        failure
    }

    /// A [`Cancelled`] made by a canceller of the library's own (a helper's, answering the
    /// cancel of its Deferred): placed where the user's cancel whose walk runs the canceller was
    /// called, if one is ([`cancel_place`]).
    #[cold]
    pub(crate) fn cancelled_in_canceller() -> Failure {
        Failure::cancelled_by(cancel_place())
    }

    /// Whether the wrapped error is an `E`. A failure holding a [`SharedFailure`] is also an `E`
    /// when the shared one is: the question looks through the sharing (and, feature `anyhow`,
    /// through the context over a failure: `Failure::from_anyhow`).
    ///
    /// It does not look into the wrapped error's own contents or sources: a failure of an
    /// `io::Error` made of an error of yours (`io::Error::other(e)`, `?` on it in a step) is an
    /// `io::Error`, and yours is that error's [`get_ref`](std::io::Error::get_ref).
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::{Failure, TimedOut};
    /// use std::{io, time::Duration};
    ///
    /// let f = Failure::new(io::Error::other(TimedOut::new(Duration::from_secs(1))));
    /// assert!(f.is::<io::Error>() && !f.is::<TimedOut>());
    /// let inner = f.downcast_ref::<io::Error>().and_then(|e| e.get_ref());
    /// assert!(inner.is_some_and(|e| e.is::<TimedOut>()));
    /// ```
    pub fn is<E: StdError + 'static>(&self) -> bool {
        self.downcast_ref::<E>().is_some()
    }

    /// The wrapped error, if it is an `E` (looking through a [`SharedFailure`] or an
    /// `anyhow::Error`'s context, as [`is`](Failure::is)).
    pub fn downcast_ref<E: StdError + 'static>(&self) -> Option<&E> {
        if let Some(error) = self.inner.error.downcast_ref::<E>() {
            return Some(error);
        }
        self.held()?.downcast_ref::<E>()
    }

    /// The failure this one reads as: the shared one of a copy of a [`SharedFailure`], or (feature
    /// `anyhow`) the one under an `anyhow::Error`'s context ([`Failure::from_anyhow`]).
    fn held(&self) -> Option<&Failure> {
        if let Some(shared) = self.shared() {
            return Some(&shared.0);
        }
        #[cfg(feature = "anyhow")]
        if let Some(context) = self.inner.error.downcast_ref::<WithContext>() {
            return context.failure();
        }
        None
    }

    /// Twisted's `trap`: take the wrapped error if it is an `E`, else hand the whole `Failure`
    /// back (so an errback can pass on what it does not handle with `?`).
    ///
    /// # Errors
    ///
    /// The failure itself, whole, when its error is not an `E`, or when other holders share it
    /// (below).
    ///
    /// A failure several holders share (it holds a [`SharedFailure`], as each consumer of a
    /// [`SharedResult`](crate::SharedResult) gets) cannot give its error away while another
    /// holder still has it: `trap` then hands the failure back even when [`is`](Failure::is) says
    /// it is an `E`. Test such failures with `is` or [`downcast_ref`](Failure::downcast_ref).
    ///
    /// Twisted's `f.trap(NotFound)` raises the failure again when it is not a `NotFound`; here
    /// that is `f.trap::<NotFound>()?`. The result must be used: as a statement, `trap` would
    /// recover every failure.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::{Cancelled, Failure};
    ///
    /// let shared = Failure::cancelled().share();
    /// let copy = shared.to_failure();
    /// assert!(copy.is::<Cancelled>());
    /// let copy = copy.trap::<Cancelled>().unwrap_err(); // `shared` still holds it
    /// drop(shared);
    /// assert_eq!(copy.trap::<Cancelled>().unwrap(), Cancelled); // the last holder takes it
    /// ```
    #[must_use = "`trap` hands the failure back when it is not an `E`: write `f.trap::<E>()?` \
                  to pass it on, as Twisted's `f.trap(E)` raises it again"]
    pub fn trap<E: StdError + 'static>(self) -> Result<E, Failure> {
        if self.inner.error.is::<E>() {
            return match self.into_boxed_error().downcast::<E>() {
                Ok(e) => Ok(*e),
                Err(_) => unreachable!("checked by `is` above"),
            };
        }
        #[cfg(feature = "anyhow")]
        if self.under_context_is::<E>() {
            // The context goes with the rest of the failure. (A shared failure under it is
            // handed back whole, below, as a copy of a shared failure is.)
            return match self
                .into_boxed_error()
                .downcast::<WithContext>()
                .map(|context| context.0.downcast::<AsError>())
            {
                Ok(Ok(held)) => held.0.trap::<E>(),
                _ => unreachable!("checked by `failure` above"),
            };
        }
        let sole_holder = self
            .shared()
            .is_some_and(|shared| shared.0.is::<E>() && Arc::strong_count(&shared.0) == 1);
        if !sole_holder {
            return Err(self);
        }
        let shared = match self.into_boxed_error().downcast::<SharedFailure>() {
            Ok(shared) => *shared,
            Err(_) => unreachable!("checked by `shared` above"),
        };
        match Arc::try_unwrap(shared.0) {
            Ok(failure) => failure.trap::<E>(),
            Err(_) => unreachable!("the only holder"),
        }
    }

    /// Whether this failure is context over a failure whose error is an `E`, through any number
    /// of context layers ([`Failure::from_anyhow`] of a failure with context, itself given
    /// context and made a failure again): what [`trap`](Failure::trap) takes out from under them.
    #[cfg(feature = "anyhow")]
    fn under_context_is<E: StdError + 'static>(&self) -> bool {
        let mut failure = self;
        while let Some(held) = failure
            .inner
            .error
            .downcast_ref::<WithContext>()
            .and_then(WithContext::failure)
        {
            if held.inner.error.is::<E>() {
                return true;
            }
            failure = held;
        }
        false
    }

    /// The shared failure this one holds, if it is a copy of a [`SharedFailure`].
    fn shared(&self) -> Option<&SharedFailure> {
        self.inner.error.downcast_ref::<SharedFailure>()
    }

    /// The wrapped error, taken out (the rest is dropped). `Inner` has a `Drop` of its own, so
    /// its fields cannot be moved out: the error is swapped for [`Taken`], which allocates
    /// nothing.
    fn into_boxed_error(self) -> BoxError {
        let mut inner = self.inner;
        std::mem::replace(&mut inner.error, Box::new(Taken))
    }

    /// Makes this failure shareable: cheap copies of it (an `Arc`, not a deep copy) for
    /// several holders. Sharing a copy of a shared failure shares the same one again.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::Failure;
    ///
    /// let shared = Failure::msg("disk on fire").share();
    /// let (a, b) = (shared.to_failure(), shared.to_failure());
    /// assert_eq!((a.to_string(), b.to_string()), ("disk on fire".into(), "disk on fire".into()));
    /// ```
    pub fn share(self) -> SharedFailure {
        if self.shared().is_some() {
            if let Ok(shared) = self.into_boxed_error().downcast::<SharedFailure>() {
                return *shared;
            }
            unreachable!("checked by `shared` above");
        }
        SharedFailure(Arc::new(self))
    }

    /// The wrapped error.
    pub fn error(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.inner.error
    }

    /// Takes the wrapped error out, dropping the backtrace and trail. A copy of a shared failure
    /// (a [`SharedResult`](crate::SharedResult) consumer's) gives the original error once it is
    /// the last holder, as [`trap`](Failure::trap) does; while others still hold it, it gives
    /// the [`SharedFailure`], whose [`failure`](SharedFailure::failure) reads the original.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::{Cancelled, Failure};
    ///
    /// let shared = Failure::cancelled().share();
    /// let copy = shared.to_failure();
    /// drop(shared);
    /// assert!(copy.into_error().is::<Cancelled>()); // the last holder takes the error itself
    /// ```
    pub fn into_error(self) -> BoxError {
        let sole_holder = self
            .shared()
            .is_some_and(|shared| Arc::strong_count(&shared.0) == 1);
        if !sole_holder {
            return self.into_boxed_error();
        }
        match self.into_boxed_error().downcast::<SharedFailure>() {
            Ok(shared) => match Arc::try_unwrap(shared.0) {
                Ok(failure) => failure.into_error(),
                Err(_) => unreachable!("the only holder"),
            },
            Err(_) => unreachable!("checked by `shared` above"),
        }
    }

    /// The backtrace captured when the failure was made (empty unless `RUST_BACKTRACE` asks).
    /// (For a copy of a [`SharedFailure`], the shared failure's.)
    pub fn backtrace(&self) -> &Backtrace {
        match self.held() {
            Some(held) => held.backtrace(),
            None => &self.inner.backtrace,
        }
    }

    /// Where the failure was raised, when a chain step raised it (a panic, or an `Err` returned by
    /// a step): the location of the `add_*` call or `chain!` step.
    pub fn origin(&self) -> Option<&'static Location<'static>> {
        self.inner.origin
    }

    /// Where code outside a chain handed this failure to one, when no step raised it: the
    /// `errback` (or `fire`, `try_fire`) call that fired a Resolver with it, the
    /// `Deferred::fail` that made a Deferred of it, the `defer_to_thread`, `from_future`,
    /// `drive_future` or `Inbox::spawn` call whose work failed with it, the `map_err` whose
    /// conversion made it, or the start of a `chain!` that starts with an `Err` (a `Result`
    /// start, at its first token). `{:?}` prints it as `entered the chain at FILE:LINE:COL, by
    /// errback` (`by fail`, `by chain!'s start`, ...), so a failure reported as unhandled says
    /// where it came from even when no step ever saw it. A failure a step raised has its [`origin`](Self::origin); one that a
    /// step made with `Deferred::fail` has both (the step, and the `fail` inside it).
    ///
    /// The place is the caller's, as `#[track_caller]` gives it: called through a function
    /// pointer (`map_or_else(Deferred::fail, ..)`), it is where that pointer is called.
    ///
    /// # Cancellations
    ///
    /// The [`Cancelled`] failure a user's cancel makes — `Deferred::cancel`,
    /// `LocalDeferred::cancel`, or either kind's `CancelHandle::cancel` — entered at that call,
    /// `by cancel`, however far the cancel walked (through chains waiting on each other, into
    /// a combinator's or `map_err`'s inputs). So do the `Cancelled` failures the library's
    /// helpers answer a user's cancel with: a waiting `DeferredSemaphore`/`DeferredLock`
    /// acquire, a `DeferredQueue::get`, `defer_later`, a `SharedResult` consumer, `retry`,
    /// `LoopingCall::start`, and the cancels they and a driven future (`drive_future`,
    /// `from_future`, `Inbox::spawn`) or `Inbox::adopt` pass on to what they wait on. A
    /// canceller that answers the cancel itself (fires its root, with any failure) keeps what
    /// its answer says (the `errback` it called), and one that panics gives a [`Panicked`]
    /// with no place.
    ///
    /// These cancellations have no place: the library's own cancels — a timeout's
    /// (`add_timeout`), the inputs `race`, `first_settled`, `join` and `map_concurrent` cancel
    /// once their outcome is decided, a `SharedResult`'s source cancelled as its last handle goes, an attempt or call that
    /// `retry` or `LoopingCall` cancels because it was cancelled while the attempt was being
    /// made, an adopted Deferred cancelled as its `Inbox` stops — and a cancel that a chain
    /// remembered rather than carried out at once: one that landed while the chain's steps ran
    /// (or while its result was on its way to the chain waiting on it), a second cancel of a
    /// root whose canceller runs, the cancel of a fan-in's output whose inputs answer later
    /// (their `Cancelled` has the place, the output's own has not), and a cancel of a driven
    /// future that landed during a poll. Neither has the `Cancelled` a cancelled
    /// `map_concurrent` fails with when its items all turned the cancel into values. No
    /// `Cancelled` ever names a line of the library's own files.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::Deferred;
    ///
    /// let (d, _resolver) = Deferred::<u32>::pending();
    /// d.cancel(); let line = line!();
    /// let failure = d.wait().unwrap_err();
    /// assert_eq!(failure.entered_at().map(|at| at.line()), Some(line));
    /// assert!(format!("{failure:?}").contains(", by cancel"));
    /// ```
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::{Deferred, Failure};
    ///
    /// let (d, resolver) = Deferred::<u32>::pending();
    /// resolver.errback(Failure::msg("connection refused")); let line = line!();
    /// let failure = d.wait().unwrap_err();
    /// assert_eq!(failure.entered_at().map(|at| at.line()), Some(line));
    /// assert!(format!("{failure:?}").contains("entered the chain at"));
    /// assert_eq!(failure.origin(), None); // no step raised it
    /// ```
    pub fn entered_at(&self) -> Option<&'static Location<'static>> {
        self.inner.entered_at
    }

    /// The chain steps this failure passed through after it was raised, oldest first: the
    /// callbacks it skipped, the errbacks and `finally`s that passed it on. (`chain!` records
    /// every `then` of a run after the step that raised it, in order, though they are nested in
    /// that step.) `{:?}` prints them under the failure, one `passed step` line each.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::{Deferred, Failure};
    ///
    /// let d = Deferred::<u32>::succeed(1)
    ///     .add_callback(|_| Err::<u32, _>(Failure::msg("no route"))) // raised here
    ///     .add_callback(|x| Ok(x + 1)) // skipped
    ///     .add_callback(|x| Ok(x + 2)); // skipped
    /// let failure = d.wait().unwrap_err();
    /// let raised = failure.origin().expect("a step raised it").line();
    /// let trail: Vec<u32> = failure.trail().iter().map(|step| step.line()).collect();
    /// assert_eq!(trail, [raised + 1, raised + 2]);
    /// assert!(format!("{failure:?}").contains("passed step"));
    /// ```
    pub fn trail(&self) -> &[&'static Location<'static>] {
        &self.inner.trail
    }

    /// Whether this is the failure of a cancelled chain: a [`Cancelled`], or what a cancelled
    /// combinator fails with, made of cancellations — a [`FirstError`](crate::FirstError) whose
    /// input was cancelled (`gather_results`, `map_concurrent`), a
    /// [`FailureGroup`](crate::FailureGroup) of nothing but cancellations (`race`). So
    /// [`add_timeout`](crate::Deferred::add_timeout) on a batch fails with `TimedOut`, and a
    /// `catch` that passes cancels on sees a cancelled batch as one.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::{gather_results, Deferred, Failure};
    ///
    /// let (slow, _resolver) = Deferred::<u32>::pending();
    /// let batch = gather_results([Deferred::succeed(1), slow]);
    /// batch.cancel();
    /// let failure = batch.wait().unwrap_err();
    /// assert!(failure.is_cancelled());
    /// assert_eq!(failure.to_string(), "input #1 failed: the Deferred was cancelled");
    /// assert!(!Failure::msg("disk full").is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        // A walk, not a recursion: failures nest as deep as combinators do (see `Drop`). The
        // groups' inputs still to look at wait in `pending` (no allocation without a group).
        let mut pending: Vec<&Failure> = Vec::new();
        let mut failure = self;
        loop {
            if !failure.is::<Cancelled>() {
                if let Some(first) = failure.downcast_ref::<crate::outcome::FirstError>() {
                    failure = &first.failure;
                    continue;
                }
                match failure.downcast_ref::<crate::outcome::FailureGroup>() {
                    Some(group) if !group.failures.is_empty() => pending.extend(&group.failures),
                    _ => return false,
                }
            }
            match pending.pop() {
                Some(next) => failure = next,
                None => return true,
            }
        }
    }

    /// The failures this one holds, as the crate's errors nest them: a
    /// [`FirstError`](crate::FirstError)'s input, a [`FailureGroup`](crate::FailureGroup)'s
    /// inputs (looking through a [`SharedFailure`] to the original's).
    fn for_each_nested<'a>(&'a self, mut each: impl FnMut(&'a Failure)) {
        if let Some(first) = self.downcast_ref::<crate::outcome::FirstError>() {
            each(&first.failure);
        } else if let Some(group) = self.downcast_ref::<crate::outcome::FailureGroup>() {
            group.failures.iter().for_each(each);
        }
    }

    /// How many failures this one is with those nested in it
    /// ([`for_each_nested`](Failure::for_each_nested), all the way down): counted by a walk, in
    /// constant stack.
    fn count_nested(&self) -> usize {
        let mut count = 0;
        let mut pending = vec![self];
        while let Some(failure) = pending.pop() {
            count += 1;
            failure.for_each_nested(|nested| pending.push(nested));
        }
        count
    }

    // The trail's records are inlined, and those that may grow the trail call `Inner`'s out of
    // line with the box's address, not the `Failure`'s: a Deferred holding the failure is then
    // not pinned in memory by the call.

    /// Records that a step returned this failure: a failure new to the chain was raised there
    /// (its origin); one the chain already carried was passed on there (its trail).
    #[inline]
    pub(crate) fn raised_at(&mut self, step: &'static Location<'static>) {
        self.inner.raised_at(step);
    }

    /// Records that a step that was never handed this failure gave it: a failure new to the
    /// chain was raised there; one that already has a history (a callback returned another
    /// chain's failed Deferred, or `chain!`'s nested steps already recorded it) keeps it as is.
    #[inline]
    pub(crate) fn given_at(&mut self, step: &'static Location<'static>) {
        let inner = &mut *self.inner;
        if !inner.in_chain {
            inner.origin = Some(step);
            inner.in_chain = true;
        }
    }

    /// Records that the failure skipped past a step (a callback that does not see failures).
    #[inline]
    pub(crate) fn passed(&mut self, step: &'static Location<'static>) {
        self.inner.passed(step);
    }

    /// [`passed`](Self::passed) each of `steps` in turn (the trail grows once for all).
    #[inline]
    pub(crate) fn passed_each(&mut self, steps: &[&'static Location<'static>]) {
        // Inline (it works on the box, whose growth is a call of its own): through `Inner`'s
        // out of line, chain!'s error shape cost 3.5 instructions a step more.
        let inner = &mut *self.inner;
        inner.trail.extend_from_slice(steps);
        inner.in_chain = true;
    }

    /// Records that code outside a chain handed the failure to one at `at`, with `by` (a
    /// Resolver's `errback`, `Deferred::fail`), unless it has a history already: a failure a
    /// step raised, or one that entered a chain before, keeps where it came from. Says whether
    /// it recorded it.
    #[inline]
    pub(crate) fn entered_at_by(&mut self, at: &'static Location<'static>, by: EnteredBy) -> bool {
        let inner = &mut *self.inner;
        let new = !inner.in_chain && inner.origin.is_none() && inner.entered_at.is_none();
        if new {
            inner.entered_at = Some(at);
            inner.entered_by = by;
        }
        new
    }

    /// Forgets where the failure entered a chain: it was refused (a `try_fire` on a cancelled
    /// chain gives it back), so it has not entered one.
    #[inline]
    pub(crate) fn not_entered(&mut self) {
        self.inner.entered_at = None;
        self.inner.entered_by = EnteredBy::Nothing;
    }

    /// Records that the failure reached a step's code (an errback): whatever that code does
    /// with it, it is no longer new to the chain.
    #[inline]
    pub(crate) fn entered_chain(&mut self) {
        self.inner.in_chain = true;
    }
}

thread_local! {
    /// Where the user's cancel whose walk runs a canceller on this thread was called, while the
    /// canceller runs ([`with_cancel_place`]).
    static CANCEL_PLACE: Cell<Option<&'static Location<'static>>> = const { Cell::new(None) };
}

/// Runs `canceller` (a chain's, run by the cancel walk) with `at` as the place of the cancel
/// it answers: the library's cancellers place the `Cancelled` they make there, and pass it on
/// to the cancels they make ([`cancel_place`]). What was set before is set again after, even
/// if `canceller` unwinds.
pub(crate) fn with_cancel_place<R>(
    at: Option<&'static Location<'static>>,
    canceller: impl FnOnce() -> R,
) -> R {
    struct Restore(Option<&'static Location<'static>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CANCEL_PLACE.set(self.0);
        }
    }
    let _restore = Restore(CANCEL_PLACE.replace(at));
    canceller()
}

/// Where the user's cancel whose canceller runs on this thread now was called (see
/// [`with_cancel_place`]); `None` outside a canceller, or in one a cancel with no place runs.
pub(crate) fn cancel_place() -> Option<&'static Location<'static>> {
    CANCEL_PLACE.get()
}

/// Records on `error`, if it is a `Failure`, that code outside a chain handed it in at `at`
/// with `by` ([`Failure::entered_at_by`]); says whether it did. What every public way of giving
/// a chain a failure (`errback`, `fire`, `Deferred::fail`, ...) calls.
pub(crate) fn note_entered<E: 'static>(
    error: &mut E,
    at: &'static Location<'static>,
    by: EnteredBy,
) -> bool {
    (error as &mut dyn Any)
        .downcast_mut::<Failure>()
        .is_some_and(|failure| failure.entered_at_by(at, by))
}

/// Dropping a failure frees the failures nested in it — a [`FirstError`](crate::FirstError)'s
/// input, a [`FailureGroup`](crate::FailureGroup)'s inputs, the original of the last copy of a
/// [`SharedFailure`] — in a loop, not a recursion: combinators nest failures as deep as they are
/// nested themselves (a `gather_results` of a `gather_results` of ...), and a recursion per
/// level would overflow a 2 MiB stack at tens of thousands of levels. A failure that nests none
/// pays a test of a flag, and no allocation.
impl Drop for Inner {
    #[inline]
    fn drop(&mut self) {
        if self.nests {
            self.drop_nested();
        }
    }
}

impl Inner {
    /// [`Drop`] of a failure that may hold failures: frees them in a loop.
    #[cold]
    #[inline(never)]
    fn drop_nested(&mut self) {
        let mut pending = Vec::new();
        self.take_nested(&mut pending);
        while let Some(mut failure) = pending.pop() {
            failure.inner.take_nested(&mut pending);
            // `failure` is freed here, and holds no failure any more: no recursion.
        }
    }
}

impl Inner {
    /// Whether `error` is one of the errors that hold failures ([`Inner::nests`]).
    fn nesting(error: &(dyn StdError + Send + Sync + 'static)) -> bool {
        error.is::<crate::outcome::FirstError>()
            || error.is::<crate::outcome::FailureGroup>()
            || error.is::<SharedFailure>()
    }

    /// Moves the failures `error` holds into `pending` (the original of a shared failure only
    /// from its last holder), leaving [`Taken`] in its place.
    fn take_nested(&mut self, pending: &mut Vec<Failure>) {
        if !self.nests {
            return;
        }
        self.nests = false;
        let error = std::mem::replace(&mut self.error, Box::new(Taken));
        let error = match error.downcast::<crate::outcome::FirstError>() {
            Ok(first) => return pending.push(first.failure),
            Err(error) => error,
        };
        let error = match error.downcast::<crate::outcome::FailureGroup>() {
            Ok(group) => return pending.extend(group.failures),
            Err(error) => error,
        };
        if let Ok(shared) = error.downcast::<SharedFailure>()
            && let Some(original) = Arc::into_inner(shared.0)
        {
            pending.push(original);
        }
    }

    /// [`Failure::raised_at`].
    fn raised_at(&mut self, step: &'static Location<'static>) {
        if self.in_chain {
            self.trail.push(step);
        } else {
            self.origin = Some(step);
            self.in_chain = true;
        }
    }

    /// [`Failure::passed`].
    fn passed(&mut self, step: &'static Location<'static>) {
        self.trail.push(step);
        self.in_chain = true;
    }
}

impl<E: StdError + Send + Sync + 'static> From<E> for Failure {
    fn from(error: E) -> Failure {
        Failure::new(error)
    }
}

/// A `Failure` as a boxed `std::error::Error`, so that `?` takes a chain's failure out of a
/// function that returns `Result<_, Box<dyn Error>>` (a `main`, a test). The box's `Display` is
/// the failure's message, its `Debug` the failure's (the steps it passed, its backtrace), and its
/// `source()` the wrapped error's source. It does not downcast to the wrapped error's type:
/// `.map_err(Failure::into_error)?` gives the wrapped error itself, and
/// [`Failure::from_boxed`] the failure back.
///
/// ```
/// # extern crate deferred_core as deferred;
/// use deferred::{Deferred, Failure};
///
/// fn load() -> Result<u32, Box<dyn std::error::Error>> {
///     let n = Deferred::<u32>::fail(Failure::msg("no such user")).wait()?;
///     Ok(n)
/// }
/// assert_eq!(load().unwrap_err().to_string(), "no such user");
/// ```
impl From<Failure> for Box<dyn StdError + Send + Sync + 'static> {
    fn from(failure: Failure) -> Self {
        Box::new(AsError(failure))
    }
}

/// See the `Send + Sync` box's conversion above.
impl From<Failure> for Box<dyn StdError + 'static> {
    fn from(failure: Failure) -> Self {
        Box::new(AsError(failure))
    }
}

/// With the feature `anyhow`: `?` takes a `Failure` into an `anyhow::Result`, and
/// `anyhow::Error` can be a chain's error type (`Deferred<T, anyhow::Error>`: it holds the
/// failures a chain makes itself). The error's `Display` is the failure's message, its
/// `source()` the wrapped error's source; [`Failure::from_anyhow`] gives the failure back.
///
/// What stays with the `Failure`: the error made into an `anyhow::Error` is the failure, so
/// anyhow's `is::<T>()` and `downcast_ref::<T>()` do not see the error inside it (a `TimedOut`,
/// your own type: ask `Failure::from_anyhow(e)`), and neither does `{:?}` show where it was
/// raised (a `Failure`'s `Debug` does). A typed `catch |e: T|` traps out of a chain of
/// `Failure`s: on a chain of `anyhow::Error`s, write `catch |e|` and look inside with
/// `Failure::from_anyhow`, or keep the chain's errors `Failure`s and convert at its end
/// (`?`, or [`Deferred::map_err`](crate::Deferred::map_err)).
///
/// ```
/// # extern crate deferred_core as deferred;
/// # #[cfg(feature = "anyhow")] {
/// use deferred::{Deferred, Failure};
///
/// fn lookup(id: u32) -> anyhow::Result<String> {
///     let name = Deferred::<String>::fail(Failure::msg(format!("no user {id}"))).wait()?;
///     Ok(name)
/// }
/// assert_eq!(lookup(7).unwrap_err().to_string(), "no user 7");
///
/// // A chain whose error type is anyhow's: its own failures (here a panic) become one.
/// let d: Deferred<u32, anyhow::Error> = Deferred::succeed(1).add_callback(|_| -> anyhow::Result<u32> {
///     panic!("step broke")
/// });
/// let error = d.wait().unwrap_err();
/// assert!(Failure::from_anyhow(error).is::<deferred::Panicked>());
/// # }
/// ```
#[cfg(feature = "anyhow")]
#[cfg_attr(docsrs, doc(cfg(feature = "anyhow")))]
impl From<Failure> for anyhow::Error {
    fn from(failure: Failure) -> Self {
        anyhow::Error::new(AsError(failure))
    }
}

#[cfg(feature = "anyhow")]
#[cfg_attr(docsrs, doc(cfg(feature = "anyhow")))]
impl Failure {
    /// The failure an `anyhow::Error` holds: the one it was made from (by `?` or `From`), or a
    /// failure wrapping it. (`Failure: From<anyhow::Error>` cannot be written: `anyhow::Error`
    /// may one day be a `std::error::Error`, which `Failure` already converts from.)
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::Failure;
    ///
    /// let failure = Failure::from_anyhow(anyhow::anyhow!("disk full"));
    /// assert_eq!(failure.to_string(), "disk full");
    /// ```
    ///
    /// An `anyhow::Error` that adds context to a failure
    /// (`.map_err(anyhow::Error::from).context("loading config")`) keeps it: the failure's message
    /// is the outermost context's, its `{:#}` and `source()` chain go on through every context
    /// layer to the failure's own message and sources, and it says where the failure inside was
    /// raised and the steps it passed (its [`origin`](Failure::origin), [`trail`](Failure::trail),
    /// `{:?}`). [`is`](Failure::is), [`downcast_ref`](Failure::downcast_ref) and
    /// [`trap`](Failure::trap) look through the context to the failure's error (`trap` takes it
    /// out, dropping the context).
    ///
    /// An `anyhow::Error` of another error (`anyhow::Error::new(e)`, `?` on it) is wrapped as
    /// it is: its message and sources stay, but `is`, `downcast_ref` and `trap` do not see the
    /// error inside it (anyhow's box is of a type of its own). Ask the `anyhow::Error` first
    /// (`error.downcast::<MyError>()`), or make a failure of the error itself.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use anyhow::Context;
    /// use deferred::{Deferred, Failure, NeverFired};
    ///
    /// let (d, resolver) = Deferred::<u32>::pending();
    /// drop(resolver);
    /// let error = d.wait().map_err(anyhow::Error::from).context("loading config").unwrap_err();
    /// let failure = Failure::from_anyhow(error);
    /// assert_eq!(failure.to_string(), "loading config");
    /// assert!(format!("{failure:#}").starts_with("loading config: the Deferred created at"));
    /// assert!(failure.is::<NeverFired>());
    /// ```
    pub fn from_anyhow(error: anyhow::Error) -> Failure {
        // The failure itself, when it is the outermost error (anyhow's `downcast` would also
        // find it under context layers, and drop them).
        if (*error).is::<AsError>() {
            return match error.downcast::<AsError>() {
                Ok(failure) => failure.0,
                Err(_) => unreachable!("checked by `is` above"),
            };
        }
        let Some(held) = error
            .downcast_ref::<AsError>()
            .map(|failure| &failure.0.inner)
        else {
            return Failure::wrapping(error.into());
        };
        // Context over a failure: the failure reads as the one inside, the context first.
        let inner = Inner {
            // The one inside's is shown instead (`Failure::backtrace` looks through).
            backtrace: Backtrace::disabled(),
            origin: held.origin,
            trail: held.trail.clone(),
            in_chain: held.in_chain,
            entered_at: held.entered_at,
            entered_by: held.entered_by,
            // Failures nested under anyhow's context are anyhow's to drop.
            nests: false,
            error: Box::new(WithContext(error)),
        };
        Failure {
            inner: Box::new(inner),
        }
    }
}

/// An `anyhow::Error` that adds context to a failure ([`Failure::from_anyhow`]).
#[cfg(feature = "anyhow")]
struct WithContext(anyhow::Error);

#[cfg(feature = "anyhow")]
impl WithContext {
    /// The failure under the context.
    fn failure(&self) -> Option<&Failure> {
        self.0.downcast_ref::<AsError>().map(|failure| &failure.0)
    }
}

#[cfg(feature = "anyhow")]
impl fmt::Display for WithContext {
    /// The outermost context alone, even with `{:#}`: the rest is this error's `source()`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(feature = "anyhow")]
impl fmt::Debug for WithContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

#[cfg(feature = "anyhow")]
impl StdError for WithContext {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        (*self.0).source()
    }
}

/// Whether `error`, of a chain's error type, is a cancellation (a [`Failure`] that
/// [`is_cancelled`](Failure::is_cancelled), or an `anyhow::Error` made from one); `None` when
/// the type cannot tell (an error type of the user's, which holds a cancellation its own way).
pub(crate) fn is_cancellation<E: 'static>(error: &E) -> Option<bool> {
    let error = error as &dyn std::any::Any;
    if let Some(failure) = error.downcast_ref::<Failure>() {
        return Some(failure.is_cancelled());
    }
    #[cfg(feature = "anyhow")]
    if let Some(error) = error.downcast_ref::<anyhow::Error>() {
        return Some(
            error
                .downcast_ref::<AsError>()
                .is_some_and(|failure| failure.0.is_cancelled()),
        );
    }
    None
}

/// A `Failure` in a `Box<dyn Error>` (see its `From` conversions).
struct AsError(Failure);

impl fmt::Display for AsError {
    /// The failure's message alone, even with `{:#}`: its sources are this error's `source()`,
    /// which a report that walks them (`{:#}` of a `Failure` holding this, anyhow's) says once.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for AsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl StdError for AsError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.error_source()
    }
}

impl fmt::Display for Failure {
    /// The wrapped error's message; with `{:#}`, followed by its `source()` chain. (The message
    /// is the error's plain `{}` then: an error whose own `{:#}` says its sources, as anyhow's
    /// does, would say them twice.)
    ///
    /// A failure that holds failures (a [`FirstError`](crate::FirstError)'s input, a
    /// [`FailureGroup`](crate::FailureGroup)'s inputs, which may hold more: combinators nested in
    /// each other) shows 32 levels, itself the first; in place of a failure nested deeper it says
    /// how many failures are left out, that one and those it holds: `input #0 failed: input #0
    /// failed: ... (32 levels) ... 99,969 more nested failures not shown`. A chain of sources,
    /// however long, is shown whole (it is walked in a loop). So formatting a failure takes bounded
    /// stack however deep it is.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.formatting_nested(f, |failure, f, _| failure.write_message(f, f.alternate()))
    }
}

impl fmt::Debug for Failure {
    /// The message, the source chain, where it was raised, the steps it passed and the backtrace.
    /// A combinator's failure that holds its inputs' (a [`FirstError`](crate::FirstError), a
    /// [`FailureGroup`](crate::FailureGroup)) says where each of those was raised and the steps
    /// it passed first, each line led by its input's number (`input #1 raised at step ...`).
    ///
    /// As for `Display`, 32 levels of failures are shown: the message says how many
    /// failures are left out below them, and so does one line in place of the places of each
    /// input nested deeper (`input #0 input #0 ... 99,969 more nested failures not shown`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.formatting_nested(f, |failure, f, level| {
            failure.write_message(f, true)?;
            failure.write_places(f, &mut String::new(), level)?;
            if failure.backtrace().status() == BacktraceStatus::Captured {
                write!(f, "\nbacktrace:\n{}", failure.backtrace())?;
            }
            Ok(())
        })
    }
}

std::thread_local! {
    /// How many failures this thread is formatting, one inside another (see
    /// [`Failure::formatting_nested`]).
    static FORMAT_DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// How many levels of nested failures `Display` and `Debug` show.
const SHOWN_LEVELS: usize = 32;

/// Says that `count` nested failures are left out.
fn write_left_out(f: &mut fmt::Formatter<'_>, count: usize) -> fmt::Result {
    let digits = count.to_string();
    f.write_str("... ")?;
    for (n, digit) in digits.char_indices() {
        if n > 0 && (digits.len() - n).is_multiple_of(3) {
            f.write_str(",")?;
        }
        fmt::Write::write_char(f, digit)?;
    }
    let s = if count == 1 { "" } else { "s" };
    write!(f, " more nested failure{s} not shown")
}

impl Failure {
    /// Formats this failure with `write` (given the level it is at, 0 for the outermost), one
    /// level deeper than the failure being formatted around it on this thread, if any: a
    /// failure's message holds those it nests (a `FirstError`'s `input #0 failed: {input}`), and
    /// formatting them is a recursion. Past [`SHOWN_LEVELS`] it says instead how many failures
    /// are left out (this one and those nested in it, counted in a loop).
    fn formatting_nested(
        &self,
        f: &mut fmt::Formatter<'_>,
        write: impl FnOnce(&Failure, &mut fmt::Formatter<'_>, usize) -> fmt::Result,
    ) -> fmt::Result {
        struct Restore(usize);
        impl Drop for Restore {
            fn drop(&mut self) {
                let _ = FORMAT_DEPTH.try_with(|depth| depth.set(self.0));
            }
        }
        let level = FORMAT_DEPTH.try_with(Cell::get).unwrap_or(0);
        if level >= SHOWN_LEVELS {
            return write_left_out(f, self.count_nested());
        }
        let _restore = Restore(level);
        let _ = FORMAT_DEPTH.try_with(|depth| depth.set(level + 1));
        write(self, f, level)
    }

    /// The message; when `alternate`, followed by the `source()` chain, walked in a loop.
    fn write_message(&self, f: &mut fmt::Formatter<'_>, alternate: bool) -> fmt::Result {
        if !alternate {
            return fmt::Display::fmt(&self.inner.error, f);
        }
        write!(f, "{}", self.inner.error)?;
        let mut source = self.inner.error.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }

    /// The places lines of `{:?}`, each led by `prefix` (the inputs of combinators this failure
    /// is one of, outermost first): the inputs' it holds first, as they came first, then its own.
    /// This failure is at `level`; an input at [`SHOWN_LEVELS`] gets one line saying how many
    /// failures are left out.
    fn write_places(
        &self,
        f: &mut fmt::Formatter<'_>,
        prefix: &mut String,
        level: usize,
    ) -> fmt::Result {
        let mut input = |f: &mut fmt::Formatter<'_>, index: usize, failure: &Failure| {
            let len = prefix.len();
            prefix.push_str(&format!("input #{index} "));
            let written = if level + 1 >= SHOWN_LEVELS {
                write!(f, "\n  {prefix}").and_then(|()| write_left_out(f, failure.count_nested()))
            } else {
                failure.write_places(f, prefix, level + 1)
            };
            prefix.truncate(len);
            written
        };
        if let Some(first) = self.downcast_ref::<crate::outcome::FirstError>() {
            input(f, first.index, &first.failure)?;
        } else if let Some(group) = self.downcast_ref::<crate::outcome::FailureGroup>() {
            for (index, failure) in group.failures.iter().enumerate() {
                input(f, index, failure)?;
            }
        }
        if let Some(origin) = self.inner.origin {
            write!(f, "\n  {prefix}raised at step {origin}")?;
        }
        if let Some(at) = self.inner.entered_at {
            write!(
                f,
                "\n  {prefix}entered the chain at {at}, by {}",
                self.inner.entered_by.name()
            )?;
        }
        // A chain built in a loop passes the same step many times: one line per run of repeats.
        let mut steps = self.inner.trail.iter().peekable();
        while let Some(step) = steps.next() {
            let mut repeats = 1;
            while steps.next_if(|next| *next == step).is_some() {
                repeats += 1;
            }
            write!(f, "\n  {prefix}passed step {step}")?;
            if repeats > 1 {
                write!(f, " ({repeats} times)")?;
            }
        }
        Ok(())
    }

    /// The `source()` of this failure's error, in a loop through the errors whose `source()`
    /// is their input's ([`FirstError`](crate::FirstError), [`SharedFailure`], a `Failure` in a
    /// box): their `source()`s call this, not each other, so a deep failure's takes bounded
    /// stack.
    pub(crate) fn error_source(&self) -> Option<&(dyn StdError + 'static)> {
        let mut failure = self;
        loop {
            let error = failure.error();
            if let Some(first) = error.downcast_ref::<crate::outcome::FirstError>() {
                failure = &first.failure;
            } else if let Some(shared) = error.downcast_ref::<SharedFailure>() {
                failure = &shared.0;
            } else if let Some(boxed) = error.downcast_ref::<AsError>() {
                failure = &boxed.0;
            } else {
                return error.source();
            }
        }
    }
}

/// What a failure holds once its error was taken out ([`Failure::into_boxed_error`], `Drop`):
/// a zero-sized box, so taking allocates nothing. Nobody sees it.
#[derive(Debug)]
struct Taken;

impl fmt::Display for Taken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the error was taken out of this failure")
    }
}

impl StdError for Taken {}

/// A plain message used as an error ([`Failure::msg`]).
#[derive(Debug)]
struct Message(String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Message {}

/// The error of a chain that was cancelled while it was pending (Twisted's `CancelledError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Cancelled;

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the Deferred was cancelled")
    }
}

impl StdError for Cancelled {}

/// The error of a Deferred whose [`Resolver`](crate::Resolver) was dropped without firing it
/// (or whose result could not come home: its loop's [`Inbox`](crate::Inbox) was dropped first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NeverFired {
    created_at: &'static Location<'static>,
    loop_stopped: bool,
}

std::thread_local! {
    /// Set while an inbox drops what it kept (its loop has stopped): the Resolvers dropped then
    /// were waiting for results that can no longer come home.
    static LOOP_STOPPING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` (an inbox dropping what it kept) so that the `NeverFired` failures it causes say
/// the loop stopped.
pub(crate) fn as_the_loop_stops(f: impl FnOnce()) {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            LOOP_STOPPING.set(self.0);
        }
    }
    let _reset = Reset(LOOP_STOPPING.replace(true));
    f();
}

impl NeverFired {
    pub(crate) fn new(created_at: &'static Location<'static>) -> NeverFired {
        NeverFired {
            created_at,
            loop_stopped: LOOP_STOPPING
                .try_with(|stopping| stopping.get())
                .unwrap_or(false),
        }
    }

    /// Where the Deferred and its Resolver were created (the `Deferred::pending` call).
    pub fn created_at(&self) -> &'static Location<'static> {
        self.created_at
    }

    /// Whether the Resolver was dropped because its loop stopped: the loop's
    /// [`Inbox`](crate::Inbox) was dropped before a result from another thread (a
    /// [`HomeResolver`](crate::HomeResolver)'s, `defer_to_thread`'s, an adopted Deferred's) came
    /// home, or while a future it polled (`Inbox::spawn`) was pending.
    pub fn loop_stopped(&self) -> bool {
        self.loop_stopped
    }
}

impl fmt::Display for NeverFired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.loop_stopped {
            return write!(
                f,
                "the Deferred created at {} never fired: its loop stopped (its Inbox was \
                 dropped) before the result came home",
                self.created_at
            );
        }
        write!(
            f,
            "the Deferred created at {} never fired: its Resolver was dropped without calling \
             `callback` or `errback`",
            self.created_at
        )
    }
}

impl StdError for NeverFired {}

/// The error of a callback that panicked: the panic's message, and its payload for those who
/// want to resume the unwind. Its message says what panicked: "a step panicked: ..." for a
/// callback; for the user's code the crate runs elsewhere, "a future", "the work" (of
/// `defer_to_thread`), "a canceller", "posted work", "the loop's wake-up", "a timer's call",
/// "map_err's conversion", "the value's clone" (of a `SharedResult`, for a consumer).
pub struct Panicked {
    message: String,
    what: &'static str,
    payload: Mutex<Option<Box<dyn Any + Send>>>,
}

impl Panicked {
    fn new(payload: Box<dyn Any + Send>, what: &'static str) -> Panicked {
        let message = if let Some(s) = payload.downcast_ref::<&'static str>() {
            (*s).to_owned()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "a panic with a non-string payload".to_owned()
        };
        Panicked {
            message,
            what,
            payload: Mutex::new(Some(payload)),
        }
    }

    /// The panic message (`"a panic with a non-string payload"` when the payload is not a string).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Takes the original payload (once), e.g. for `std::panic::resume_unwind`.
    pub fn take_payload(&self) -> Option<Box<dyn Any + Send>> {
        self.payload
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}

/// The payload is the panicking code's value, whose `Drop` may panic too (`panic_any` of a
/// guard): that panic stays here, as a failure is dropped wherever it ends (an errback that
/// recovered from it, the report of an unhandled one, the code that waited for it).
impl Drop for Panicked {
    fn drop(&mut self) {
        if let Some(payload) = self
            .payload
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            drop_panic_payload(payload);
        }
    }
}

/// Drops the payload of a caught panic, whose `Drop` may panic too (`panic_any` of a guard),
/// without letting that panic out. The payload of a panic in that drop is dropped the same way
/// (up to 8 times over; past that, it is leaked, not dropped).
pub(crate) fn drop_panic_payload(payload: Box<dyn Any + Send>) {
    let mut payload = Some(payload);
    for _ in 0..8 {
        let Some(dropping) = payload.take() else {
            return;
        };
        if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            drop(dropping);
        })) {
            payload = Some(panic);
        }
    }
    std::mem::forget(payload);
}

impl fmt::Debug for Panicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Panicked")
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Panicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} panicked: {}", self.what, self.message)
    }
}

impl StdError for Panicked {}

/// The error of a Deferred that did not fire in time ([`add_timeout`](crate::Deferred::add_timeout)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimedOut {
    after: Duration,
}

impl TimedOut {
    /// A timeout after `after`.
    pub fn new(after: Duration) -> TimedOut {
        TimedOut { after }
    }

    /// How long the Deferred was given.
    pub fn after(&self) -> Duration {
        self.after
    }
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the Deferred timed out after {:?}", self.after)
    }
}

impl StdError for TimedOut {}

/// A [`Failure`] several holders see: cheap to clone (an `Arc`), made by [`Failure::share`].
/// Each holder turns it into a `Failure` of its own with [`to_failure`](SharedFailure::to_failure)
/// (what every consumer of a [`SharedResult`](crate::SharedResult) receives).
///
/// Such a copy reads as the original: its message, its `source()` chain, where it was raised,
/// the steps it had passed (its own trail goes on from there) and its backtrace are the
/// original's, and [`Failure::is`], [`Failure::downcast_ref`] and [`Failure::is_cancelled`] look
/// through to the original error. Only [`Failure::trap`] differs: it cannot take the error out
/// while another holder shares it.
///
/// ```
/// # extern crate deferred_core as deferred;
/// use deferred::{Failure, TimedOut};
/// use std::time::Duration;
///
/// let shared = Failure::new(TimedOut::new(Duration::from_secs(1))).share();
/// let copy = shared.clone().to_failure();
/// assert!(copy.is::<TimedOut>());
/// assert_eq!(copy.downcast_ref::<TimedOut>().unwrap().after(), Duration::from_secs(1));
/// assert_eq!(shared.failure().to_string(), copy.to_string());
/// ```
#[derive(Clone)]
pub struct SharedFailure(Arc<Failure>);

impl SharedFailure {
    /// The shared failure.
    pub fn failure(&self) -> &Failure {
        &self.0
    }

    /// A `Failure` of its own for one holder, reading as the shared one (see the type's docs).
    pub fn to_failure(&self) -> Failure {
        let original = &self.0.inner;
        Failure {
            inner: Box::new(Inner {
                error: Box::new(self.clone()),
                nests: true,
                // The original's is shown instead (`Failure::backtrace` looks through).
                backtrace: Backtrace::disabled(),
                origin: original.origin,
                trail: original.trail.clone(),
                in_chain: original.in_chain,
                entered_at: original.entered_at,
                entered_by: original.entered_by,
            }),
        }
    }
}

impl fmt::Display for SharedFailure {
    /// The shared failure's error message (its `source()` chain is this one's `source()`, so
    /// `{:#}` gives the message alone, as `Failure`'s does before the sources).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            return write!(f, "{}", self.0.error());
        }
        fmt::Display::fmt(self.0.error(), f)
    }
}

impl fmt::Debug for SharedFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl StdError for SharedFailure {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.error_source()
    }
}

/// The error of a [`DeferredQueue::put`](crate::DeferredQueue::put) into a queue holding as many
/// items as its size allows and no `get` waiting (Twisted's `QueueOverflow`). It hands the item
/// back.
///
/// ```
/// # extern crate deferred_core as deferred;
/// use deferred::{DeferredQueue, QueueOverflow};
///
/// let queue = DeferredQueue::with_limits(Some(1), None);
/// queue.put("first").unwrap();
/// let QueueOverflow(item) = queue.put("second").unwrap_err();
/// assert_eq!(item, "second");
/// ```
pub struct QueueOverflow<T>(pub T);

impl<T> fmt::Debug for QueueOverflow<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("QueueOverflow").finish_non_exhaustive()
    }
}

impl<T> fmt::Display for QueueOverflow<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the queue is full: it holds as many items as its size allows")
    }
}

impl<T> StdError for QueueOverflow<T> {}

/// The failure of a [`DeferredQueue::get`](crate::DeferredQueue::get) on an empty queue that
/// has as many `get`s waiting as its backlog allows (Twisted's `QueueUnderflow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct QueueUnderflow;

impl fmt::Display for QueueUnderflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the queue is empty and as many gets wait on it as its backlog allows")
    }
}

impl StdError for QueueUnderflow {}
