//! `Failure`: the default error of a chain, and the errors the chain itself raises.
//!
//! A `Failure` wraps whatever went wrong — any `std::error::Error`, the payload of a panic in a
//! callback, a cancellation, a timeout, a `Resolver` dropped without firing — and remembers where:
//! a backtrace (captured as `RUST_BACKTRACE` / `RUST_LIB_BACKTRACE` say) and the trail of chain
//! steps it passed through, as source locations.
//!
//! Like `anyhow::Error`, `Failure` does not itself implement `std::error::Error`: that keeps the
//! blanket `From<E: Error>` conversion possible, so `?` works on any error inside a callback.

use std::any::Any;
use std::backtrace::{Backtrace, BacktraceStatus};
use std::error::Error as StdError;
use std::fmt;
use std::panic::Location;
use std::sync::Mutex;
use std::time::Duration;

/// The boxed error inside a [`Failure`].
type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// The default error type of a [`Deferred`](crate::Deferred): any error, a panic, a cancellation
/// or a timeout, with a backtrace and the trail of chain steps it passed through.
///
/// ```
/// use deferred_core::{Deferred, Failure};
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

struct Inner {
    error: BoxError,
    backtrace: Backtrace,
    /// Where the failure was raised, when the chain knows it (a step that panicked or returned Err).
    origin: Option<&'static Location<'static>>,
    /// The chain steps the failure passed through after it was raised, oldest first.
    trail: Vec<&'static Location<'static>>,
    /// Whether a chain step has seen the failure, so a step that returns it passes it on rather
    /// than raising it.
    in_chain: bool,
}

impl Failure {
    /// Wraps an error. The backtrace is captured here, as `RUST_BACKTRACE` says.
    pub fn new<E: StdError + Send + Sync + 'static>(error: E) -> Failure {
        Failure::from_boxed(Box::new(error))
    }

    /// A failure with just a message, for errors that have no type of their own.
    ///
    /// ```
    /// let f = deferred_core::Failure::msg("disk on fire");
    /// assert_eq!(f.to_string(), "disk on fire");
    /// ```
    pub fn msg(message: impl Into<String>) -> Failure {
        Failure::new(Message(message.into()))
    }

    /// Wraps an already boxed error (what `Box<dyn Error + Send + Sync>` APIs hand out).
    pub fn from_boxed(error: BoxError) -> Failure {
        Failure {
            inner: Box::new(Inner {
                error,
                backtrace: Backtrace::capture(),
                origin: None,
                trail: Vec::new(),
                in_chain: false,
            }),
        }
    }

    /// The failure of a callback that panicked at the step added at `step`.
    pub(crate) fn from_panic(
        payload: Box<dyn Any + Send>,
        step: Option<&'static Location<'static>>,
    ) -> Failure {
        let mut failure = Failure::new(Panicked::new(payload));
        failure.inner.origin = step;
        failure.inner.in_chain = step.is_some();
        failure
    }

    /// The failure a chain gets when it is cancelled while pending.
    pub fn cancelled() -> Failure {
        Failure::new(Cancelled)
    }

    /// Whether the wrapped error is an `E`.
    pub fn is<E: StdError + 'static>(&self) -> bool {
        self.inner.error.is::<E>()
    }

    /// The wrapped error, if it is an `E`.
    pub fn downcast_ref<E: StdError + 'static>(&self) -> Option<&E> {
        self.inner.error.downcast_ref::<E>()
    }

    /// Twisted's `trap`: take the wrapped error if it is an `E`, else hand the whole `Failure`
    /// back (so an errback can pass on what it does not handle with `?`).
    pub fn trap<E: StdError + 'static>(self) -> Result<E, Failure> {
        if !self.is::<E>() {
            return Err(self);
        }
        let Inner { error, .. } = *self.inner;
        match error.downcast::<E>() {
            Ok(e) => Ok(*e),
            Err(_) => unreachable!("checked by `is` above"),
        }
    }

    /// The wrapped error.
    pub fn error(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.inner.error
    }

    /// Takes the wrapped error out, dropping the backtrace and trail.
    pub fn into_error(self) -> BoxError {
        self.inner.error
    }

    /// The backtrace captured when the failure was made (empty unless `RUST_BACKTRACE` asks).
    pub fn backtrace(&self) -> &Backtrace {
        &self.inner.backtrace
    }

    /// Where the failure was raised, when a chain step raised it (a panic, or an `Err` returned by
    /// a step): the location of the `add_*` call or `chain!` step.
    pub fn origin(&self) -> Option<&'static Location<'static>> {
        self.inner.origin
    }

    /// The chain steps this failure passed through after it was raised, oldest first.
    pub fn trail(&self) -> &[&'static Location<'static>] {
        &self.inner.trail
    }

    /// Whether this is the failure of a cancelled chain.
    pub fn is_cancelled(&self) -> bool {
        self.is::<Cancelled>()
    }

    /// Records that a step returned this failure: a failure new to the chain was raised there
    /// (its origin); one the chain already carried was passed on there (its trail).
    pub(crate) fn raised_at(&mut self, step: &'static Location<'static>) {
        if self.inner.in_chain {
            self.inner.trail.push(step);
        } else {
            self.inner.origin = Some(step);
            self.inner.in_chain = true;
        }
    }

    /// Records that a step that was never handed this failure gave it: a failure new to the
    /// chain was raised there; one that already has a history (a callback returned another
    /// chain's failed Deferred, or `chain!`'s nested steps already recorded it) keeps it as is.
    pub(crate) fn given_at(&mut self, step: &'static Location<'static>) {
        if !self.inner.in_chain {
            self.inner.origin = Some(step);
            self.inner.in_chain = true;
        }
    }

    /// Records that the failure skipped past a step (a callback that does not see failures).
    pub(crate) fn passed(&mut self, step: &'static Location<'static>) {
        self.inner.trail.push(step);
        self.inner.in_chain = true;
    }

    /// Records that the failure reached a step's code (an errback): whatever that code does
    /// with it, it is no longer new to the chain.
    pub(crate) fn entered_chain(&mut self) {
        self.inner.in_chain = true;
    }
}

impl<E: StdError + Send + Sync + 'static> From<E> for Failure {
    fn from(error: E) -> Failure {
        Failure::new(error)
    }
}

impl fmt::Display for Failure {
    /// The wrapped error's message; with `{:#}`, followed by its `source()` chain.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner.error, f)?;
        if f.alternate() {
            let mut source = self.inner.error.source();
            while let Some(cause) = source {
                write!(f, ": {cause}")?;
                source = cause.source();
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Failure {
    /// The message, the source chain, where it was raised, the steps it passed and the backtrace.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:#}")?;
        if let Some(origin) = self.inner.origin {
            write!(f, "\n  raised at step {origin}")?;
        }
        // A chain built in a loop passes the same step many times: one line per run of repeats.
        let mut steps = self.inner.trail.iter().peekable();
        while let Some(step) = steps.next() {
            let mut repeats = 1;
            while steps.next_if(|next| *next == step).is_some() {
                repeats += 1;
            }
            write!(f, "\n  passed step {step}")?;
            if repeats > 1 {
                write!(f, " ({repeats} times)")?;
            }
        }
        if self.inner.backtrace.status() == BacktraceStatus::Captured {
            write!(f, "\nbacktrace:\n{}", self.inner.backtrace)?;
        }
        Ok(())
    }
}

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cancelled;

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the Deferred was cancelled")
    }
}

impl StdError for Cancelled {}

/// The error of a Deferred whose [`Resolver`](crate::Resolver) was dropped without firing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeverFired {
    created_at: &'static Location<'static>,
}

impl NeverFired {
    pub(crate) fn new(created_at: &'static Location<'static>) -> NeverFired {
        NeverFired { created_at }
    }

    /// Where the Deferred and its Resolver were created (the `Deferred::pending` call).
    pub fn created_at(&self) -> &'static Location<'static> {
        self.created_at
    }
}

impl fmt::Display for NeverFired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
/// want to resume the unwind.
pub struct Panicked {
    message: String,
    payload: Mutex<Option<Box<dyn Any + Send>>>,
}

impl Panicked {
    fn new(payload: Box<dyn Any + Send>) -> Panicked {
        let message = if let Some(s) = payload.downcast_ref::<&'static str>() {
            (*s).to_owned()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "a panic with a non-string payload".to_owned()
        };
        Panicked {
            message,
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

impl fmt::Debug for Panicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Panicked")
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Panicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a step panicked: {}", self.message)
    }
}

impl StdError for Panicked {}

/// The error of a Deferred that did not fire in time ([`add_timeout`](crate::Deferred)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
