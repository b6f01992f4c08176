//! The glue that `chain!` expands to. Not public API: anything here may change in any release.
//!
//! Three jobs, each done by the type system so that a mistake becomes a compile error that
//! reads as a sentence (the `#[diagnostic::on_unimplemented]` traits below):
//!
//! - **What a step's body gives** ([`probe`] and the `*Step` traits): a `Deferred`, a `Result`
//!   or a plain value, chosen by *autoref specialization*. The expansion calls
//!   `(&&&probe(&value)).__step_kind()`; method lookup tries the impls on `&&Probe<_>` first
//!   (`Deferred`, `Result`), then `&Probe<_>` (futures, rejected), then `Probe<_>` (any other
//!   value). The choice is made on the type as written at the step, so a value of a generic type
//!   `T` is plain, even if `T` later turns out to be a `Result`.
//! - **What a typed `catch` traps** ([`catch_as`] and the `Catch*` traits): the chain's own error
//!   type (then it catches everything), an error type trapped out of a `Failure`
//!   ([`Failure::trap`]), or a compile error.
//! - **What a `finally` does with the outcome** ([`finally`]).
//! - **Where a failure was raised** ([`raised`]): in a run of `then`s, at the step whose body
//!   gave it ([`raised_carrying`] at the end of a segment of a long run).

use std::error::Error as StdError;
use std::future::Future;
use std::marker::PhantomData;

use deferred_core::{Deferred, Failure};

// ---------------------------------------------------------------------------------------------
// What a step's body gives.

/// The type of a step body's value, carried without the value, for method lookup.
pub struct Probe<R>(PhantomData<fn() -> R>);

/// The [`Probe`] of `value`'s type.
#[inline(always)]
pub fn probe<R>(_value: &R) -> Probe<R> {
    Probe(PhantomData)
}

/// What settles a step: a `Deferred` (the chain waits for it) or a `Result` (`Ok` continues the
/// chain, `Err` fails it). Every other value continues the chain as it is.
///
/// The dispatch asks for this trait only when the body's type is not known yet when the step is
/// checked: a body that never returns (its type is `!`).
#[diagnostic::on_unimplemented(
    message = "this step's body never gives a value, so the type of the step cannot be inferred",
    label = "this never returns",
    note = "write the type the step would give: `then |x| -> u32 {{ ... }}` (`panic!`, `todo!`, \
            `unimplemented!` and `unreachable!` need no type)"
)]
pub trait Settles: Sized {
    /// The value it settles with.
    type Value;
    /// The error it fails with.
    type Error: 'static;
    /// As a Deferred (a `Result` is a fired one).
    fn into_deferred(self) -> Deferred<Self::Value, Self::Error>;
    /// As the outcome of a `then` step.
    fn into_outcome(self) -> StepOutcome<Self::Value, Self::Error>;
}

impl<U, X: 'static> Settles for Deferred<U, X> {
    type Value = U;
    type Error = X;
    #[inline(always)]
    fn into_deferred(self) -> Deferred<U, X> {
        self
    }
    #[inline(always)]
    fn into_outcome(self) -> StepOutcome<U, X> {
        StepOutcome::Later(self)
    }
}

impl<U, X: 'static> Settles for Result<U, X> {
    type Value = U;
    type Error = X;
    #[inline(always)]
    fn into_deferred(self) -> Deferred<U, X> {
        Deferred::from_result(self)
    }
    #[inline(always)]
    fn into_outcome(self) -> StepOutcome<U, X> {
        match self {
            Ok(value) => StepOutcome::Value(value),
            Err(error) => StepOutcome::Failed(error),
        }
    }
}

/// What a step's body gave, before it becomes the next link ([`raised`] for a `then`).
pub enum StepOutcome<U, E: 'static> {
    /// A plain value, or `Ok`.
    Value(U),
    /// `Err`: a failure raised at this step.
    Failed(E),
    /// A Deferred: the chain waits for it.
    Later(Deferred<U, E>),
}

impl<U, E: 'static> StepOutcome<U, E> {
    /// As a Deferred, for a step whose `add_*` call marks its failures itself.
    #[inline(always)]
    fn into_deferred(self) -> Deferred<U, E> {
        match self {
            StepOutcome::Value(value) => Deferred::succeed(value),
            StepOutcome::Failed(error) => Deferred::fail(error),
            StepOutcome::Later(deferred) => deferred,
        }
    }
}

/// Highest priority: the body gave a `Deferred` or a `Result`.
///
/// (One impl for both, not one each: a body whose type is already an error must find exactly
/// one candidate here, so that the compiler stays quiet about it instead of reporting an
/// ambiguity on top of the real error.)
pub trait SettlesStep {
    /// Chooses [`SettlesTag`].
    #[inline(always)]
    fn __step_kind(&self) -> SettlesTag {
        SettlesTag
    }
}
impl<R: Settles> SettlesStep for &&Probe<R> {}

/// Middle priority: the body gave a future, which a chain cannot poll.
pub trait FutureStep {
    /// Chooses [`FutureTag`].
    #[inline(always)]
    fn __step_kind(&self) -> FutureTag {
        FutureTag
    }
}
impl<F: Future> FutureStep for &Probe<F> {}

/// Lowest priority: any other value continues the chain as it is.
pub trait PlainStep {
    /// Chooses [`PlainTag`].
    #[inline(always)]
    fn __step_kind(&self) -> PlainTag {
        PlainTag
    }
}
impl<T> PlainStep for Probe<T> {}

/// A step's body gave a `Deferred` or a `Result`.
pub struct SettlesTag;
/// A step's body gave a future.
pub struct FutureTag;
/// A step's body gave a plain value.
pub struct PlainTag;

impl SettlesTag {
    /// The start of a chain: the Deferred itself, or a fired one for a `Result`.
    #[inline(always)]
    pub fn start<R: Settles>(self, start: R) -> Deferred<R::Value, R::Error> {
        start.into_deferred()
    }

    /// A `then` step that gave a Deferred (the chain waits for it) or a `Result`.
    #[inline(always)]
    pub fn step<R: Settles, E: SameError<R::Error>>(self, outcome: R) -> StepOutcome<R::Value, E> {
        E::same_outcome(outcome.into_outcome())
    }

    /// A `catch` step that gave a Deferred or a `Result`: it must settle with the chain's value
    /// type `V`.
    #[inline(always)]
    pub fn recover<R: Settles, V: Recovers<R::Value>, E: SameError<R::Error>>(
        self,
        outcome: R,
        _chain_value: ValueOf<V>,
    ) -> Deferred<V, E> {
        V::recovered(E::same_outcome(outcome.into_outcome()).into_deferred())
    }

    /// A `finally` step that gave a Deferred (the outcome waits for it) or a `Result`.
    #[inline(always)]
    pub fn finally<R: Settles, E: SameError<R::Error>>(
        self,
        done: R,
    ) -> Option<Deferred<R::Value, E>> {
        Some(E::same_outcome(done.into_outcome()).into_deferred())
    }
}

/// Each method rejects the future with a [`NotAFuture`] error, and goes on as if the future had
/// been awaited, so that the steps after it do not report errors of their own.
impl FutureTag {
    /// Rejects a future as the start of a chain.
    pub fn start<F: NotAFuture>(self, future: F) -> Deferred<F::Output, Failure> {
        future.rejected()
    }

    /// Rejects a future as a step's result.
    pub fn step<F: NotAFuture, E>(self, future: F) -> StepOutcome<F::Output, E> {
        StepOutcome::Later(future.rejected())
    }

    /// Rejects a future as a `catch`'s result.
    pub fn recover<F: NotAFuture, V, E>(
        self,
        future: F,
        _chain_value: ValueOf<V>,
    ) -> Deferred<V, E> {
        future.rejected()
    }

    /// Rejects a future as a `finally` body.
    pub fn finally<F: NotAFuture, E>(self, future: F) -> Option<Deferred<F::Output, E>> {
        Some(future.rejected())
    }
}

impl PlainTag {
    /// A chain that starts with a plain value starts fired, with [`Failure`] as its error type.
    #[inline(always)]
    pub fn start<T>(self, value: T) -> Deferred<T, Failure> {
        Deferred::succeed(value)
    }

    /// A `then` step that gave a plain value: the chain continues with it.
    #[inline(always)]
    pub fn step<T, E>(self, value: T) -> StepOutcome<T, E> {
        StepOutcome::Value(value)
    }

    /// A `catch` step that gave a plain value: it must be of the chain's value type `V`.
    #[inline(always)]
    pub fn recover<T, V: Recovers<T>, E>(
        self,
        value: T,
        _chain_value: ValueOf<V>,
    ) -> Deferred<V, E> {
        V::recovered(Deferred::succeed(value))
    }

    /// A `finally` step that gave a plain value (usually `()`): the outcome passes on.
    #[inline(always)]
    pub fn finally<T, E>(self, _value: T) -> Option<Deferred<(), E>> {
        None
    }
}

/// A step's `Result` or `Deferred` must fail with the chain's error type.
#[diagnostic::on_unimplemented(
    message = "this step fails with `{X}`, but the chain's error type is `{Self}`",
    label = "the error type of this step is `{X}`",
    note = "convert the error where it happens: `.map_err({Self}::from)`, or `Ok(value?)`"
)]
pub trait SameError<X: 'static>: Sized + 'static {
    /// The identity, seen by the type checker as a conversion.
    fn same_outcome<U>(outcome: StepOutcome<U, X>) -> StepOutcome<U, Self>;
}

impl<E: 'static> SameError<E> for E {
    #[inline(always)]
    fn same_outcome<U>(outcome: StepOutcome<U, E>) -> StepOutcome<U, E> {
        outcome
    }
}

/// Futures are not chain values: a chain does not poll them.
#[diagnostic::on_unimplemented(
    message = "a chain step cannot give a future: a chain does not poll futures",
    label = "this is a future (`{Self}`)",
    note = "give a `Deferred` instead, or `.await` the chain's Deferred in async code and do this \
            work there"
)]
pub trait NotAFuture: Future {
    /// Never called: no type implements this trait.
    fn rejected<T, E>(self) -> Deferred<T, E>;
}

// ---------------------------------------------------------------------------------------------
// What a `catch` gives must be the value type flowing past it.

/// The value type of the chain at a step, carried without a value.
pub struct ValueOf<T>(PhantomData<fn() -> T>);

impl<T> Clone for ValueOf<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for ValueOf<T> {}

/// The value type of `deferred`.
#[inline(always)]
pub fn value_of<T, E>(_deferred: &Deferred<T, E>) -> ValueOf<T> {
    ValueOf(PhantomData)
}

/// A `catch` recovers the chain, so it gives the value type that flows past it.
#[diagnostic::on_unimplemented(
    message = "this `catch` gives `{U}`, but the chain's value here is `{Self}`",
    label = "a `catch` must give a `{Self}`",
    note = "a `catch` recovers the chain: it gives the value the next step expects (or `Err(..)` \
            to pass a failure on)"
)]
pub trait Recovers<U>: Sized {
    /// The identity, seen by the type checker as a conversion.
    fn recovered<E>(deferred: Deferred<U, E>) -> Deferred<Self, E>;
}

impl<T> Recovers<T> for T {
    #[inline(always)]
    fn recovered<E>(deferred: Deferred<T, E>) -> Deferred<T, E> {
        deferred
    }
}

// ---------------------------------------------------------------------------------------------
// What a typed `catch |e: T|` traps.

/// The type `T` a `catch` names, on a chain whose error type is `E`.
pub struct CatchAs<T, E>(PhantomData<fn() -> (T, E)>);

/// The [`CatchAs`] for the type named in a `catch` on the chain `deferred`.
#[inline(always)]
pub fn catch_as<T, V, E>(_deferred: &Deferred<V, E>) -> CatchAs<T, E> {
    CatchAs(PhantomData)
}

/// Highest priority: the `catch` names the chain's own error type, so it catches everything.
pub trait CatchOwnError {
    /// The trap that takes everything.
    type Trap;
    /// Chooses the trap.
    fn __catch_kind(&self) -> Self::Trap;
}
impl<E> CatchOwnError for &&CatchAs<E, E> {
    type Trap = TrapAll;
    #[inline(always)]
    fn __catch_kind(&self) -> TrapAll {
        TrapAll
    }
}

/// Middle priority: the `catch` names an error type, trapped out of a `Failure`.
pub trait CatchErrorType {
    /// The trap that takes a `T`.
    type Trap;
    /// Chooses the trap.
    fn __catch_kind(&self) -> Self::Trap;
}
impl<T: StdError + 'static> CatchErrorType for &CatchAs<T, Failure> {
    type Trap = TrapError<T>;
    #[inline(always)]
    fn __catch_kind(&self) -> TrapError<T> {
        TrapError(PhantomData)
    }
}

/// Lowest priority: anything else is a compile error (see [`Catchable`]).
pub trait CatchOther {
    /// The trap that does not compile.
    type Trap;
    /// Chooses the trap.
    fn __catch_kind(&self) -> Self::Trap;
}
impl<T, E> CatchOther for CatchAs<T, E> {
    type Trap = TrapOther<T, E>;
    #[inline(always)]
    fn __catch_kind(&self) -> TrapOther<T, E> {
        TrapOther(PhantomData)
    }
}

/// Takes every failure.
pub struct TrapAll;
/// Takes the failures whose error is a `T`.
pub struct TrapError<T>(PhantomData<fn() -> T>);
/// Rejects the type named in a `catch`.
pub struct TrapOther<T, E>(PhantomData<fn() -> (T, E)>);

impl TrapAll {
    /// Takes `error`.
    #[inline(always)]
    pub fn trap<E>(self, error: E) -> Result<E, E> {
        Ok(error)
    }
}

impl<T: StdError + 'static> TrapError<T> {
    /// Takes the error out of `failure` if it is a `T`, else hands `failure` back.
    #[inline(always)]
    pub fn trap(self, failure: Failure) -> Result<T, Failure> {
        failure.trap::<T>()
    }
}

impl<T, E> TrapOther<T, E> {
    /// Does not compile: `T` cannot be caught from a chain whose error type is `E`.
    pub fn trap(self, error: E) -> Result<T, E>
    where
        T: Catchable<E>,
    {
        T::trap(error)
    }
}

/// What a typed `catch` may name: an error type, on a chain whose errors are `Failure`s.
#[diagnostic::on_unimplemented(
    message = "`catch |e: {Self}|` cannot trap a `{Self}` out of this chain, whose errors are `{E}`",
    label = "cannot be trapped out of `{E}`",
    note = "a typed `catch` traps an error type (one that implements `std::error::Error`) out of \
            a `Failure`, or names the chain's own error type; write `catch |e| ...` to take every \
            failure"
)]
pub trait Catchable<E>: Sized {
    /// Takes the error out of `error` if it is a `Self`.
    fn trap(error: E) -> Result<Self, E>;
}

impl<T: StdError + 'static> Catchable<Failure> for T {
    fn trap(failure: Failure) -> Result<T, Failure> {
        failure.trap::<T>()
    }
}

// ---------------------------------------------------------------------------------------------
// `finally`.

/// Runs a `finally` step: the outcome passes on, unless the body failed. `done` is what the body
/// gave: `None` for a plain value, else a Deferred (a fired one for a `Result`).
///
/// `#[track_caller]`, so a Deferred the body gave is waited for at the `finally` step's location.
#[track_caller]
#[inline(always)]
pub fn finally<T, E, X>(done: Option<Deferred<X, E>>, outcome: Result<T, E>) -> Deferred<T, E>
where
    T: Send + 'static,
    E: From<Failure> + Send + 'static,
    X: Send + 'static,
{
    match done {
        None => Deferred::from_result(outcome),
        Some(done) if done.is_fired() => match done.wait() {
            Ok(_) => Deferred::from_result(outcome),
            Err(error) => Deferred::fail(error),
        },
        Some(done) => done.add_both(move |done| match done {
            Ok(_) => outcome,
            Err(error) => Err(error),
        }),
    }
}

/// The next link of a `then` step: what its body gave, with a failure it gave marked as raised at
/// the step. `#[track_caller]`: the expansion calls it at the step's keyword.
///
/// (The core marks the failure a step's function returns; in a run of `then`s the next step is
/// added inside the function, so the failure would meet that step first.)
#[track_caller]
#[inline(always)]
pub fn raised<U, E>(outcome: StepOutcome<U, E>) -> Deferred<U, E>
where
    U: Send + 'static,
    E: From<Failure> + Send + 'static,
{
    let step = std::panic::Location::caller();
    match outcome {
        StepOutcome::Value(value) => Deferred::succeed(value),
        StepOutcome::Failed(error) => Deferred::fail(error).__raised_at(step),
        StepOutcome::Later(deferred) => deferred.__raised_at(step),
    }
}

/// [`raised`], for the last step of a segment of a long run of `then`s: the next link gives the
/// step's value with the names the rest of the run uses, `(value, carried)`, for the next
/// segment's first step to take apart. (A run nests its steps' closures; a long one is cut into
/// segments, so that the compiler's recursion limit is not reached.)
///
/// A value or a fired Deferred allocates nothing; a pending Deferred gets one more link.
#[track_caller]
#[inline(always)]
pub fn raised_carrying<U, E, C>(outcome: StepOutcome<U, E>, carried: C) -> Deferred<(U, C), E>
where
    U: Send + 'static,
    E: From<Failure> + Send + 'static,
    C: Send + 'static,
{
    let step = std::panic::Location::caller();
    match outcome {
        StepOutcome::Value(value) => Deferred::succeed((value, carried)),
        StepOutcome::Failed(error) => Deferred::fail(error).__raised_at(step),
        StepOutcome::Later(deferred) => deferred
            .__raised_at(step)
            .add_callback(move |value| Ok::<_, E>((value, carried))),
    }
}

/// Records on the trail of the failure `failed` holds that it skipped a step of a run of
/// `then`s. `#[track_caller]`: the expansion calls it at the skipped step's keyword, in the
/// errback of the run's first step (which the failure reached, so it is not new to the chain:
/// it is put on the trail).
#[track_caller]
#[inline(always)]
pub fn passed<T, E>(failed: Deferred<T, E>) -> Deferred<T, E>
where
    T: Send + 'static,
    E: From<Failure> + Send + 'static,
{
    failed.__raised_at(std::panic::Location::caller())
}

/// A function named in `finally path`: it takes no parameter, or the outcome.
#[diagnostic::on_unimplemented(
    message = "`finally` needs a function that takes no parameter or `&Result<{T}, {E}>`",
    label = "this function has another signature",
    note = "wrap it in a closure: `finally || ...` or `finally |outcome| ...`"
)]
pub trait FinallyFn<T, E, Params> {
    /// What the function gives.
    type Output;
    /// Calls the function, with the outcome if it takes it.
    fn call_finally(self, outcome: &Result<T, E>) -> Self::Output;
}

/// `finally path` where `path` takes no parameter.
pub struct NoParams;
/// `finally path` where `path` takes the outcome.
pub struct OutcomeParam;

impl<F: FnOnce() -> R, R, T, E> FinallyFn<T, E, NoParams> for F {
    type Output = R;
    #[inline(always)]
    fn call_finally(self, _outcome: &Result<T, E>) -> R {
        self()
    }
}

impl<F: FnOnce(&Result<T, E>) -> R, R, T, E> FinallyFn<T, E, OutcomeParam> for F {
    type Output = R;
    #[inline(always)]
    fn call_finally(self, outcome: &Result<T, E>) -> R {
        self(outcome)
    }
}
