//! What the combinators give: the outcomes of [`fire_on_one_callback`], and the failures of
//! [`gather_results`], [`race`] and [`first_settled`](crate::first_settled) — the same for both kinds of Deferred.
//!
//! [`fire_on_one_callback`]: crate::DeferredList::fire_on_one_callback
//! [`gather_results`]: crate::gather_results
//! [`race`]: crate::race
#![forbid(unsafe_code)]

use std::error::Error as StdError;
use std::fmt;

use crate::failure::Failure;

/// The result of [`DeferredList::fire_on_one_callback`](crate::DeferredList::fire_on_one_callback): the first success, or, when every input
/// failed, all the failures (where Twisted fires with the whole list of failures, an ambiguous
/// result: issue #4919).
///
/// ```
/// # extern crate deferred_core as deferred;
/// use deferred::{Deferred, DeferredList, Failure, FirstSuccess};
///
/// let list = DeferredList::new([Deferred::<u32>::fail(Failure::msg("a")), Deferred::succeed(7)]);
/// match list.fire_on_one_callback().wait().unwrap() {
///     FirstSuccess::Succeeded { index, value } => assert_eq!((index, value), (1, 7)),
///     FirstSuccess::AllFailed(failures) => panic!("{} failures", failures.len()),
/// }
/// ```
#[derive(Debug)]
pub enum FirstSuccess<T, E = Failure> {
    /// Input `index` was the first to succeed, with `value`.
    Succeeded {
        /// The input's position in the list.
        index: usize,
        /// Its value.
        value: T,
    },
    /// Every input failed: their failures, in input order (empty for an empty list).
    AllFailed(Vec<E>),
}

/// The failure of [`gather_results`](crate::gather_results) (and
/// [`DeferredList::fire_on_one_errback`](crate::DeferredList::fire_on_one_errback)): input number
/// `index` failed with `failure` (Twisted's `FirstError`). It is wrapped in a [`Failure`]; take it
/// out with [`Failure::trap`] or look at it with [`Failure::downcast_ref`].
///
/// ```
/// # extern crate deferred_core as deferred;
/// use deferred::{Failure, FirstError};
///
/// let first = FirstError::new(3, Failure::msg("some text"));
/// assert_eq!(first.to_string(), "input #3 failed: some text");
/// let wrapped = Failure::new(first);
/// assert_eq!(wrapped.downcast_ref::<FirstError>().unwrap().index, 3);
/// assert_eq!(format!("{wrapped:#}"), "input #3 failed: some text"); // said once, with sources
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct FirstError {
    /// The position of the input that failed.
    pub index: usize,
    /// Its failure.
    pub failure: Failure,
}

impl FirstError {
    /// Input number `index` failed with `failure`.
    pub fn new(index: usize, failure: Failure) -> FirstError {
        FirstError { index, failure }
    }
}

impl fmt::Display for FirstError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "input #{} failed: {}", self.index, self.failure)
    }
}

impl StdError for FirstError {
    /// What caused the input's error, if anything did: the input's error itself is part of this
    /// error's message already (`input #1 failed: ...`), so that a report of the whole chain of
    /// sources (`{:#}` of a `Failure`) says it once. The input's failure is [`failure`](Self::failure).
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.failure.error_source()
    }
}

/// The failure of a [`race`](crate::race) that every input lost: their failures, in input order (Twisted's
/// `FailureGroup`).
///
/// ```
/// # extern crate deferred_core as deferred;
/// use deferred::{Failure, FailureGroup};
///
/// let group = FailureGroup::new(vec![Failure::msg("refused"), Failure::msg("timed out")]);
/// assert_eq!(group.to_string(), "all 2 inputs failed: #0: refused; #1: timed out");
/// let wrapped = Failure::new(group);
/// assert_eq!(format!("{wrapped:#}"), "all 2 inputs failed: #0: refused; #1: timed out");
/// assert_eq!(FailureGroup::new(vec![]).to_string(), "there were no inputs to succeed");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct FailureGroup {
    /// Every input's failure, in input order.
    pub failures: Vec<Failure>,
}

impl FailureGroup {
    /// The failures of every input, in input order.
    pub fn new(failures: Vec<Failure>) -> FailureGroup {
        FailureGroup { failures }
    }
}

impl fmt::Display for FailureGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.failures.is_empty() {
            return f.write_str("there were no inputs to succeed");
        }
        write!(f, "all {} inputs failed", self.failures.len())?;
        for (index, failure) in self.failures.iter().enumerate() {
            let separator = if index == 0 { ": " } else { "; " };
            // With its sources: this error has none of its own to report them (`source()`).
            write!(f, "{separator}#{index}: {failure:#}")?;
        }
        Ok(())
    }
}

impl StdError for FailureGroup {
    /// None: every input's failure is part of this error's message already (`all 2 inputs
    /// failed: #0: ...; #1: ...`), so that a report of the whole chain of sources (`{:#}` of a
    /// `Failure`) says each once. The failures are [`failures`](Self::failures).
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        None
    }
}

/// The failure of [`first_settled`](crate::first_settled) given no inputs: nothing could ever
/// settle first.
///
/// ```
/// # extern crate deferred_core as deferred;
/// use deferred::{first_settled, Deferred, NoInputs};
///
/// let none = first_settled(Vec::<Deferred<u32>>::new());
/// assert!(none.wait().unwrap_err().is::<NoInputs>());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NoInputs;

impl fmt::Display for NoInputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("there were no inputs to settle")
    }
}

impl StdError for NoInputs {}
