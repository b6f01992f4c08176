//! What [`retry`](crate::retry) needs to know, the same for both kinds: the [`RetryPolicy`]
//! (exponential backoff with jitter, a limit on attempts or time), the waits it gives
//! ([`Delays`]), and the failure of a retry that gave up ([`RetryError`]).
#![forbid(unsafe_code)]

use std::error::Error as StdError;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use crate::failure::Failure;

/// How [`retry`](crate::retry) waits between attempts and when it gives up: exponential backoff
/// with jitter, at most some attempts, within some time.
///
/// The wait before attempt *n* + 1 (after *n* failures) is `initial × multiplierⁿ⁻¹`, at most
/// `max_delay`, then shortened by jitter: drawn uniformly from `[wait × (1 − jitter), wait]`. The
/// draws come from a small generator seeded by [`seed`](RetryPolicy::seed) (deterministic: a
/// test gets the same waits every run) or, without a seed, at random for each retry.
///
/// Defaults: multiplier 2, no `max_delay`, jitter 0.5, at most 5 attempts, no deadline.
///
/// ```
/// # extern crate deferred_core as deferred;
/// use std::time::Duration;
/// use deferred::RetryPolicy;
///
/// let policy = RetryPolicy::exponential(Duration::from_millis(100)).jitter(0.0).max_attempts(4);
/// let waits: Vec<_> = policy.delays().collect();
/// assert_eq!(waits, [100, 200, 400].map(Duration::from_millis)); // 3 waits between 4 attempts
///
/// let jittered = RetryPolicy::exponential(Duration::from_secs(1)).seed(7);
/// assert_eq!(jittered.delays().collect::<Vec<_>>(), jittered.delays().collect::<Vec<_>>());
/// assert!(jittered.delays().all(|d| d <= Duration::from_secs(8)));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    initial: Duration,
    multiplier: f64,
    /// `None`: no limit.
    max_delay: Option<Duration>,
    jitter: f64,
    max_attempts: Option<u32>,
    deadline: Option<Duration>,
    seed: Option<u64>,
}

impl RetryPolicy {
    /// Waits of `initial`, then twice as long each time (see the type's docs for the defaults).
    pub fn exponential(initial: Duration) -> RetryPolicy {
        RetryPolicy {
            initial,
            multiplier: 2.0,
            max_delay: None,
            jitter: 0.5,
            max_attempts: Some(5),
            deadline: None,
            seed: None,
        }
    }

    /// Each wait is `multiplier` times the one before (1: a constant wait).
    ///
    /// # Panics
    ///
    /// If `multiplier` is below 1 or not finite.
    #[track_caller]
    pub fn multiplier(mut self, multiplier: f64) -> RetryPolicy {
        assert!(
            multiplier.is_finite() && multiplier >= 1.0,
            "a RetryPolicy's multiplier must be finite and at least 1 (1: a constant wait), not \
             {multiplier}"
        );
        self.multiplier = multiplier;
        self
    }

    /// No wait is longer than `max_delay` (before jitter).
    pub fn max_delay(mut self, max_delay: Duration) -> RetryPolicy {
        self.max_delay = Some(max_delay);
        self
    }

    /// How much of each wait jitter may take away: 0 waits exactly, 1 anywhere from none to the
    /// whole wait ("full jitter").
    ///
    /// # Panics
    ///
    /// If `jitter` is not within 0 and 1.
    #[track_caller]
    pub fn jitter(mut self, jitter: f64) -> RetryPolicy {
        assert!(
            (0.0..=1.0).contains(&jitter),
            "a RetryPolicy's jitter must be within 0 (exact waits) and 1 (full jitter), not {jitter}"
        );
        self.jitter = jitter;
        self
    }

    /// Seeds the jitter's draws: every retry with this policy waits the same
    /// [`delays`](RetryPolicy::delays).
    pub fn seed(mut self, seed: u64) -> RetryPolicy {
        self.seed = Some(seed);
        self
    }

    /// At most `attempts` attempts, the first included.
    ///
    /// # Panics
    ///
    /// If `attempts` is 0.
    #[track_caller]
    pub fn max_attempts(mut self, attempts: u32) -> RetryPolicy {
        assert!(
            attempts > 0,
            "a retry makes at least one attempt, so `max_attempts(0)` allows none: give \
             `max_attempts(1)` for one attempt and no retry"
        );
        self.max_attempts = Some(attempts);
        self
    }

    /// No limit on attempts (give a [`deadline`](RetryPolicy::deadline), or a predicate that
    /// stops, or the retry may go on for ever).
    pub fn unlimited_attempts(mut self) -> RetryPolicy {
        self.max_attempts = None;
        self
    }

    /// No attempt starts later than `deadline` after the first one started: a retry whose wait
    /// would end past it gives up instead. (An attempt in flight is not cut short: give it its own
    /// [`add_timeout`](crate::Deferred::add_timeout).)
    pub fn deadline(mut self, deadline: Duration) -> RetryPolicy {
        self.deadline = Some(deadline);
        self
    }

    /// The most attempts this policy allows (`None`: no limit).
    pub fn attempts_allowed(&self) -> Option<u32> {
        self.max_attempts
    }

    /// The deadline, if any.
    pub fn deadline_after(&self) -> Option<Duration> {
        self.deadline
    }

    /// The waits between attempts, in order: one fewer than the attempts allowed (endless with
    /// no limit). With a [`seed`](RetryPolicy::seed), a retry waits exactly these.
    pub fn delays(&self) -> Delays {
        let seed = self
            .seed
            .unwrap_or_else(|| RandomState::new().hash_one(0x5eed_u64));
        Delays {
            policy: self.clone(),
            state: seed,
            given: 0,
        }
    }
}

/// The waits of a [`RetryPolicy`], in order ([`RetryPolicy::delays`]).
#[derive(Clone, Debug)]
pub struct Delays {
    policy: RetryPolicy,
    /// The generator's state (splitmix64).
    state: u64,
    given: u32,
}

impl Delays {
    /// A draw in `[0, 1)`.
    fn draw(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Iterator for Delays {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if let Some(max) = self.policy.max_attempts
            && self.given + 1 >= max
        {
            return None;
        }
        let exponent = i32::try_from(self.given).unwrap_or(i32::MAX);
        self.given = self.given.saturating_add(1);
        let cap = self.policy.max_delay.unwrap_or(Duration::MAX);
        let grown = self.policy.initial.as_secs_f64() * self.policy.multiplier.powi(exponent);
        // A zero initial wait stays zero when the multiplier's power outgrows `f64` (0 × ∞ is NaN,
        // which `min` would turn into the cap).
        let grown = if grown.is_nan() { 0.0 } else { grown };
        let wait = grown.min(cap.as_secs_f64());
        let jittered = wait * (1.0 - self.policy.jitter * self.draw());
        // `f64` rounds a long cap up as well as down: the wait is never past the cap.
        Some(Duration::try_from_secs_f64(jittered).map_or(cap, |wait| wait.min(cap)))
    }

    /// Exact when the policy has a number of attempts; else endless.
    fn size_hint(&self) -> (usize, Option<usize>) {
        match self.policy.max_attempts {
            Some(max) => {
                let left = max.saturating_sub(self.given.saturating_add(1));
                let left = usize::try_from(left).unwrap_or(usize::MAX);
                (left, Some(left))
            }
            None => (usize::MAX, None),
        }
    }
}

/// Once it has given its last wait, it gives no more.
impl std::iter::FusedIterator for Delays {}

/// Why a [`retry`](crate::retry) gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GaveUp {
    /// Every attempt the policy allows failed.
    Attempts,
    /// The next attempt would have started past the policy's deadline.
    Deadline,
    /// The predicate said the last failure is not worth retrying.
    NotRetryable,
}

/// The failure of a [`retry`](crate::retry) that gave up: why, and every attempt's failure, in
/// order (the last one is what ended it).
///
/// ```
/// # extern crate deferred_core as deferred;
/// use deferred::{Failure, GaveUp, RetryError};
///
/// let error = RetryError::new(vec![Failure::msg("refused"), Failure::msg("timed out")], GaveUp::Attempts);
/// assert_eq!(error.to_string(), "gave up after 2 attempts (every attempt allowed failed); the last failed with: timed out");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct RetryError {
    /// Every attempt's failure, in order.
    pub attempts: Vec<Failure>,
    /// Why the retry gave up.
    pub reason: GaveUp,
}

impl RetryError {
    /// A retry that gave up for `reason`, after `attempts` failed (in order).
    pub fn new(attempts: Vec<Failure>, reason: GaveUp) -> RetryError {
        RetryError { attempts, reason }
    }
}

impl fmt::Display for RetryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.reason {
            GaveUp::Attempts => "every attempt allowed failed",
            GaveUp::Deadline => "the deadline would have passed before the next",
            GaveUp::NotRetryable => "the last failure is not one to retry",
        };
        let n = self.attempts.len();
        let plural = if n == 1 { "" } else { "s" };
        write!(f, "gave up after {n} attempt{plural} ({why})")?;
        if let Some(last) = self.attempts.last() {
            write!(f, "; the last failed with: {last}")?;
        }
        Ok(())
    }
}

impl StdError for RetryError {
    /// What caused the last attempt's error, if anything did: that error itself is part of
    /// this error's message already (`the last failed with: ...`), so that a report of the
    /// whole chain of sources (`{:#}` or `{:?}` of a `Failure`) says it once. The attempts'
    /// failures are [`attempts`](Self::attempts).
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.attempts.last()?.error().source()
    }
}
