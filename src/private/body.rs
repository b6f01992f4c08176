//! What a step's body gives ([`probe`] and the `*Step` traits): a Deferred, a `Result` or a
//! plain value, chosen by *autoref specialization*. The expansion calls
//! `(&&&probe(&value)).__step_kind()`; method lookup tries the impls on `&&Probe<_>` first
//! (`Deferred`, `LocalDeferred`, `Result`), then `&Probe<_>` (futures, rejected), then
//! `Probe<_>` (any other value). The choice is made on the type as written at the step, so a
//! value of a generic type `T` is plain, even if `T` later turns out to be a `Result`.
//!
//! The tag's methods take the chain's kind: a step's Deferred must be of that kind
//! ([`SettlesIn`]).

use std::future::Future;
use std::marker::PhantomData;
use std::panic::Location;

use deferred_core::{Deferred, Failure, LocalDeferred, LocalResolver, Resolver};

use super::catch::{Recovers, ValueOf};
use super::kind::{Kind, LocalChain, SendChain};

/// The type of a step body's value, carried without the value, for method lookup.
pub struct Probe<R>(PhantomData<fn() -> R>);

/// The [`Probe`] of `value`'s type.
#[inline(always)]
pub fn probe<R>(_value: &R) -> Probe<R> {
    Probe(PhantomData)
}

/// What settles a step: a Deferred of either kind (the chain waits for it) or a `Result` (`Ok`
/// continues the chain, `Err` fails it). Every other value continues the chain as it is.
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
    /// The kind of chain it starts: a `LocalDeferred` a local one, the others a `Send` one.
    type Kind: Kind;
    /// The chains it settles a step of ([`LinkIn`]): its own kind's, or any ([`Fired`]).
    type Link;
    /// As the start of a chain (a `Result` is a fired Deferred), which is at `at`.
    fn start(
        self,
        at: &'static Location<'static>,
    ) -> <Self::Kind as Kind>::Deferred<Self::Value, Self::Error>;
}

impl<U, X: 'static> Settles for Deferred<U, X> {
    type Value = U;
    type Error = X;
    type Kind = SendChain;
    type Link = SendChain;
    #[inline(always)]
    fn start(self, _at: &'static Location<'static>) -> Deferred<U, X> {
        self
    }
}

impl<U, X: 'static> Settles for LocalDeferred<U, X> {
    type Value = U;
    type Error = X;
    type Kind = LocalChain;
    type Link = LocalChain;
    #[inline(always)]
    fn start(self, _at: &'static Location<'static>) -> LocalDeferred<U, X> {
        self
    }
}

impl<U, X: 'static> Settles for Result<U, X> {
    type Value = U;
    type Error = X;
    type Kind = SendChain;
    type Link = Fired;
    /// A failure it holds entered the chain at `at` (`Failure::entered_at`).
    #[inline(always)]
    fn start(self, at: &'static Location<'static>) -> Deferred<U, X> {
        Deferred::__start(self, at)
    }
}

/// What settles a step of a chain of kind `K`: a `Result`, or a Deferred of the same kind (see
/// [`LinkIn`]). Implemented for every [`Settles`] type, so that a body that never returns is
/// reported as such.
pub trait SettlesIn<K: Kind>: Settles {
    /// As the outcome of a step.
    fn into_outcome(self) -> StepOutcome<Self::Value, Self::Error, K>;
}

impl<R: Settles, K: Kind> SettlesIn<K> for R
where
    R::Link: LinkIn<K, R>,
{
    #[inline(always)]
    fn into_outcome(self) -> StepOutcome<R::Value, R::Error, K> {
        <R::Link as LinkIn<K, R>>::outcome(self)
    }
}

/// A `Result`: fired, it settles a step of either kind.
pub struct Fired;

/// What `R` (a step's `Result` or Deferred, whose [`Settles::Link`] is `Self`) is to a chain of
/// kind `K`: a `Result` settles either kind, a Deferred only its own.
#[diagnostic::on_unimplemented(
    message = "this step gives a `{R}`, which this chain cannot wait on: it is the other kind of Deferred",
    label = "a step may give a Deferred of its chain's kind only",
    note = "a chain that starts from a `LocalDeferred` waits on `LocalDeferred`s: bring a `Deferred` \
            to this thread with `inbox.adopt(deferred)` (`Inbox::adopt`); a chain that starts from \
            a `Deferred` (or a `Result`, or a value) runs its steps on any thread, so it cannot \
            wait on a `LocalDeferred`"
)]
pub trait LinkIn<K: Kind, R: Settles> {
    /// `outcome` as a step's outcome.
    fn outcome(outcome: R) -> StepOutcome<R::Value, R::Error, K>;
}

impl<U, X: 'static, K: Kind> LinkIn<K, Result<U, X>> for Fired {
    #[inline(always)]
    fn outcome(outcome: Result<U, X>) -> StepOutcome<U, X, K> {
        match outcome {
            Ok(value) => StepOutcome::Value(value),
            Err(error) => StepOutcome::Failed(error),
        }
    }
}

impl<U, X: 'static> LinkIn<SendChain, Deferred<U, X>> for SendChain {
    #[inline(always)]
    fn outcome(outcome: Deferred<U, X>) -> StepOutcome<U, X, SendChain> {
        StepOutcome::Later(outcome)
    }
}

impl<U, X: 'static> LinkIn<LocalChain, LocalDeferred<U, X>> for LocalChain {
    #[inline(always)]
    fn outcome(outcome: LocalDeferred<U, X>) -> StepOutcome<U, X, LocalChain> {
        StepOutcome::Later(outcome)
    }
}

/// What a step's body gave, before it becomes the next link (`raised` for a `then`).
pub enum StepOutcome<U, E: 'static, K: Kind> {
    /// A plain value, or `Ok`.
    Value(U),
    /// `Err`: a failure raised at this step.
    Failed(E),
    /// A Deferred of the chain's kind: the chain waits for it.
    Later(K::Deferred<U, E>),
}

impl<U, E: 'static, K: Kind> StepOutcome<U, E, K> {
    /// As a link, for a step whose `add_*` call marks its failures itself.
    #[inline(always)]
    pub(super) fn into_deferred(self, kind: K) -> K::Deferred<U, E> {
        match self {
            StepOutcome::Value(value) => kind.succeed(value),
            StepOutcome::Failed(error) => kind.fail(error),
            StepOutcome::Later(deferred) => deferred,
        }
    }
}

/// Highest priority: the body gave a Deferred or a `Result`.
///
/// (One impl for all, not one each: a body whose type is already an error must find exactly
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

/// A step's body gave a Deferred or a `Result`.
pub struct SettlesTag;
/// A step's body gave a future.
pub struct FutureTag;
/// A step's body gave a plain value.
pub struct PlainTag;

impl SettlesTag {
    /// The start of a chain: the Deferred itself, or a fired one for a `Result`. Its error type
    /// becomes the chain's, so it must be able to hold any failure ([`ChainError`]).
    #[inline(always)]
    pub fn start<R: Settles, E: 'static>(
        self,
        start: R,
        at: &'static Location<'static>,
    ) -> <R::Kind as Kind>::Deferred<R::Value, E>
    where
        R::Error: ChainError<E>,
    {
        <R::Error as ChainError<E>>::chain_error::<R::Kind, R::Value>(start.start(at))
    }

    /// A `then` step that gave a Deferred (the chain waits for it) or a `Result`.
    #[inline(always)]
    pub fn step<K: Kind, R: SettlesIn<K>, E: SameError<R::Error>>(
        self,
        _kind: K,
        outcome: R,
    ) -> StepOutcome<R::Value, E, K> {
        E::same_outcome(outcome.into_outcome())
    }

    /// A `catch` step that gave a Deferred or a `Result`: it must settle with the chain's value
    /// type `V`.
    #[inline(always)]
    pub fn recover<K: Kind, R: SettlesIn<K>, V: Recovers<R::Value>, E: SameError<R::Error>>(
        self,
        kind: K,
        outcome: R,
        _chain_value: ValueOf<V>,
    ) -> K::Deferred<V, E> {
        V::recovered::<K, E>(E::same_outcome(outcome.into_outcome()).into_deferred(kind))
    }

    /// A `finally` step that gave a Deferred (the outcome waits for it) or a `Result`.
    #[inline(always)]
    pub fn finally<K: Kind, R: SettlesIn<K>, E: SameError<R::Error>>(
        self,
        kind: K,
        done: R,
    ) -> Option<K::Deferred<R::Value, E>> {
        Some(E::same_outcome(done.into_outcome()).into_deferred(kind))
    }
}

/// Each method rejects the future with a [`NotAFuture`] error, and goes on as if the future had
/// been awaited, so that the steps after it do not report errors of their own.
impl FutureTag {
    /// Rejects a future as the start of a chain.
    pub fn start<F: NotAFuture>(
        self,
        future: F,
        _at: &'static Location<'static>,
    ) -> Deferred<F::Output, Failure> {
        future.rejected::<SendChain, _, _>()
    }

    /// Rejects a future as a step's result.
    pub fn step<K: Kind, F: NotAFuture, E>(
        self,
        _kind: K,
        future: F,
    ) -> StepOutcome<F::Output, E, K> {
        StepOutcome::Later(future.rejected::<K, _, _>())
    }

    /// Rejects a future as a `catch`'s result.
    pub fn recover<K: Kind, F: NotAFuture, V, E>(
        self,
        _kind: K,
        future: F,
        _chain_value: ValueOf<V>,
    ) -> K::Deferred<V, E> {
        future.rejected::<K, _, _>()
    }

    /// Rejects a future as a `finally` body.
    pub fn finally<K: Kind, F: NotAFuture, E>(
        self,
        _kind: K,
        future: F,
    ) -> Option<K::Deferred<F::Output, E>> {
        Some(future.rejected::<K, _, _>())
    }
}

impl PlainTag {
    /// A chain that starts with a plain value starts fired, with [`Failure`] as its error type,
    /// and is a chain of `Deferred`s.
    #[inline(always)]
    pub fn start<T>(self, value: T, _at: &'static Location<'static>) -> Deferred<T, Failure> {
        Deferred::succeed(value)
    }

    /// A `then` step that gave a plain value: the chain continues with it.
    #[inline(always)]
    pub fn step<K: Kind, T, E>(self, _kind: K, value: T) -> StepOutcome<T, E, K> {
        StepOutcome::Value(value)
    }

    /// A `catch` step that gave a plain value: it must be of the chain's value type `V`.
    #[inline(always)]
    pub fn recover<K: Kind, T, V: Recovers<T>, E>(
        self,
        kind: K,
        value: T,
        _chain_value: ValueOf<V>,
    ) -> K::Deferred<V, E> {
        V::recovered::<K, E>(kind.succeed(value))
    }

    /// A `finally` step that gave a plain value (usually `()`): the outcome passes on.
    #[inline(always)]
    pub fn finally<K: Kind, T, E>(self, _kind: K, _value: T) -> Option<K::Deferred<(), E>> {
        None
    }
}

/// What a `finally |outcome|` does with its body's value: a `Result` or a Deferred settles it
/// (an `Err` replaces the outcome, a Deferred is waited for), `()` is nothing, and any other
/// value is dropped, which a reader used to Twisted's `addBoth` (whose value replaces the
/// outcome) does not expect: the expansion calls `(&&&FinallyValue::of(&value)).finally_value();`, which for
/// such a value is [`FinallyDropped`]'s, deprecated, so the compiler warns at the body with its
/// note. By autoref, as [`probe`]: [`FinallySettles`], then [`FinallyUnit`], then
/// [`FinallyDropped`].
pub struct FinallyValue<R>(PhantomData<fn() -> R>);

impl<R> FinallyValue<R> {
    /// The type of `value`.
    #[inline(always)]
    pub fn of(_value: &R) -> FinallyValue<R> {
        FinallyValue(PhantomData)
    }
}

/// A `finally` body gave a `Result` or a Deferred (see [`FinallyValue`]).
pub trait FinallySettles {
    /// Nothing to say.
    #[inline(always)]
    fn finally_value(&self) {}
}
impl<R: Settles> FinallySettles for &&FinallyValue<R> {}

/// A `finally` body gave `()` (see [`FinallyValue`]).
pub trait FinallyUnit {
    /// Nothing to say.
    #[inline(always)]
    fn finally_value(&self) {}
}
impl FinallyUnit for &FinallyValue<()> {}

/// A `finally` body gave another value (see [`FinallyValue`]).
pub trait FinallyDropped {
    /// The warning.
    #[deprecated(
        note = "this `finally` gives a value, which is dropped: a `finally` passes the \
                chain's outcome on unchanged, as JavaScript's `finally` does (Twisted's `addBoth` \
                would give the value on). End the body with `;` if the value means nothing; to \
                replace a failure with a value, use `catch |_| value`"
    )]
    #[inline(always)]
    fn finally_value(&self) {}
}
impl<T> FinallyDropped for FinallyValue<T> {}

/// A step's `Result` or Deferred must fail with the chain's error type.
#[diagnostic::on_unimplemented(
    message = "this step fails with `{X}`, but the chain's error type is `{Self}`",
    label = "the error type of this step is `{X}`",
    note = "convert the error where it happens: `Err(error.into())` where the body writes the \
            `Err`, `.map_err({Self}::from)` on a `Result` or a Deferred, or `Ok(value?)`",
    note = "if `{X}` is a message (`&str`, `String`), `Failure::msg(..)` makes it a `Failure`"
)]
pub trait SameError<X: 'static>: Sized + 'static {
    /// The identity, seen by the type checker as a conversion.
    fn same_outcome<U, K: Kind>(outcome: StepOutcome<U, X, K>) -> StepOutcome<U, Self, K>;
}

impl<E: 'static> SameError<E> for E {
    #[inline(always)]
    fn same_outcome<U, K: Kind>(outcome: StepOutcome<U, E, K>) -> StepOutcome<U, E, K> {
        outcome
    }
}

/// The error type of a chain's start, which becomes the chain's: it must hold any failure (a
/// panic in a step, a cancellation), so it implements `From<Failure>`.
///
/// `E` is the chain's error type: the start's own when it qualifies. When it does not, no impl
/// applies and `E` is left unknown, so that the steps after the start (whose bounds ask for
/// `E: From<Failure>` again) stay silent: the user sees this one error, at the start.
#[diagnostic::on_unimplemented(
    message = "this chain's start fails with `{Self}`, which cannot be a chain's error type",
    label = "the chain's error type is decided by its start: this one fails with `{Self}`",
    note = "a chain's error type must hold any failure, such as a panic in a step: it implements \
            `From<Failure>`; convert the start's error (`.map_err(Failure::from)` on a `Result`), \
            or implement `From<Failure>` for `{Self}`"
)]
pub trait ChainError<E: 'static>: Sized + 'static {
    /// The identity, seen by the type checker as a conversion.
    fn chain_error<K: Kind, U>(start: K::Deferred<U, Self>) -> K::Deferred<U, E>;
}

#[diagnostic::do_not_recommend]
impl<E: From<Failure> + 'static> ChainError<E> for E {
    #[inline(always)]
    fn chain_error<K: Kind, U>(start: K::Deferred<U, E>) -> K::Deferred<U, E> {
        start
    }
}

/// The second candidate of [`ChainError`], which never applies: with two candidates, the
/// compiler weighs their bounds when it picks one, and finds none for an error type that is
/// not `From<Failure>` (with one, it would take it and fix the chain's error type to the start's,
/// and each step would report the unmet bound again).
#[diagnostic::do_not_recommend]
impl<E: 'static> ChainError<Unreachable> for E
where
    PhantomData<E>: Never,
{
    fn chain_error<K: Kind, U>(_start: K::Deferred<U, E>) -> K::Deferred<U, Unreachable> {
        unreachable!("no type implements `Never`")
    }
}

/// The type of what cannot happen: the other side of [`ChainError`] and
/// [`Captures`](super::Captures).
pub enum Unreachable {}

/// Implemented by no type.
pub trait Never {}

/// A function a step names by a path with a type in it (`then String::len`), called with what
/// arrives: a method that borrows its receiver (`&self`) cannot take the value itself.
#[diagnostic::on_unimplemented(
    message = "this step calls `{Self}` with the value that arrives, a `{T}`, which it cannot take",
    label = "cannot be called with a `{T}`",
    note = "a method that borrows its receiver (`&self`) does not take the value itself: write a \
            closure that calls it, `then |value| value.method()`"
)]
pub trait StepFn<T, R> {
    /// Calls the function with `value`.
    fn call_step(self, value: T) -> R;
}

impl<F: FnOnce(T) -> R, T, R> StepFn<T, R> for F {
    #[inline(always)]
    fn call_step(self, value: T) -> R {
        self(value)
    }
}

/// The value that arrives at a step that names a function by a path with a type in it: its
/// type is fixed here, before the function is looked at, so that a function that takes
/// something else is reported by [`StepFn`].
pub struct Arrived<T>(pub T);

impl<T> Arrived<T> {
    /// Calls `function` with the value.
    #[inline(always)]
    pub fn call<R, F: StepFn<T, R>>(self, function: F) -> R {
        function.call_step(self.0)
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
    fn rejected<K: Kind, T, E>(self) -> K::Deferred<T, E>;
}

/// A chain's start written as a path (`chain! { fetch_user then .. }`): a function that gives a
/// Deferred or a `Result` and was not called, as JavaScript's `fetchUser().then(..)` without its
/// `()`. The expansion writes `let v = (&&StartPath::of(&v)).__start_path(v);` after the start:
/// such a function is said to be one ([`StartNotCalled`]), and the chain goes on as if it had been
/// called, so that its steps do not report the function as their value; any other start is
/// given back as it is.
pub struct StartPath<T>(PhantomData<fn() -> T>);

impl<T> StartPath<T> {
    /// The type of `start`.
    #[inline(always)]
    pub fn of(_start: &T) -> StartPath<T> {
        StartPath(PhantomData)
    }
}

/// Highest priority: the start is a function with no parameter that gives a Deferred or a
/// `Result` (see [`StartPath`]).
pub trait StartFunction<F, R> {
    /// Does not compile: the function was not called.
    fn __start_path(&self, start: F) -> R
    where
        F: StartNotCalled;
}
impl<F: FnOnce() -> R, R: Settles> StartFunction<F, R> for &StartPath<F> {
    fn __start_path(&self, _start: F) -> R
    where
        F: StartNotCalled,
    {
        unreachable!("no type implements `StartNotCalled`")
    }
}

/// Any other start: itself (see [`StartPath`]).
pub trait StartValue<T> {
    /// The start.
    fn __start_path(&self, start: T) -> T;
}
impl<T> StartValue<T> for StartPath<T> {
    #[inline(always)]
    fn __start_path(&self, start: T) -> T {
        start
    }
}

/// Implemented by no type: a chain's start that is a function not called (see [`StartPath`]).
#[diagnostic::on_unimplemented(
    message = "this chain starts from a function, `{Self}`, which it does not call",
    label = "not called: the start is the function itself",
    note = "call it: write the call, `function(..)` with its arguments, as the start; the chain \
            waits for the Deferred it gives (or takes the `Result`)"
)]
pub trait StartNotCalled {}

/// A chain's start written `Deferred::pending()` (or `LocalDeferred::pending()`): the pair of
/// the Deferred and its Resolver, which the chain would take as a plain value (a step that
/// ignores it compiles, with the Resolver dropped in it). The expansion writes
/// `let v = (&&PendingStart::of(&v)).__pending_start(v);` after such a start: a pair is said to
/// be one ([`StartIsAPair`]), and the chain goes on from its Deferred, so that no error about
/// the pair follows; any other start (what the `pending()` of a type of the user's own named
/// `Deferred` gives) is given back as it is.
pub struct PendingStart<T>(PhantomData<fn() -> T>);

impl<T> PendingStart<T> {
    /// The type of `start`.
    #[inline(always)]
    pub fn of(_start: &T) -> PendingStart<T> {
        PendingStart(PhantomData)
    }
}

/// Highest priority: the start is a Deferred and its Resolver (see [`PendingStart`]).
pub trait StartPair<P, D> {
    /// Does not compile: the start is the pair.
    fn __pending_start(&self, start: P) -> D
    where
        P: StartIsAPair;
}
impl<T, E> StartPair<(Deferred<T, E>, Resolver<T, E>), Deferred<T, E>>
    for &PendingStart<(Deferred<T, E>, Resolver<T, E>)>
{
    fn __pending_start(&self, _start: (Deferred<T, E>, Resolver<T, E>)) -> Deferred<T, E>
    where
        (Deferred<T, E>, Resolver<T, E>): StartIsAPair,
    {
        unreachable!("no type implements `StartIsAPair`")
    }
}
impl<T, E> StartPair<(LocalDeferred<T, E>, LocalResolver<T, E>), LocalDeferred<T, E>>
    for &PendingStart<(LocalDeferred<T, E>, LocalResolver<T, E>)>
{
    fn __pending_start(
        &self,
        _start: (LocalDeferred<T, E>, LocalResolver<T, E>),
    ) -> LocalDeferred<T, E>
    where
        (LocalDeferred<T, E>, LocalResolver<T, E>): StartIsAPair,
    {
        unreachable!("no type implements `StartIsAPair`")
    }
}

/// Any other start: itself (see [`PendingStart`]).
pub trait StartNotAPair<T> {
    /// The start.
    fn __pending_start(&self, start: T) -> T;
}
impl<T> StartNotAPair<T> for PendingStart<T> {
    #[inline(always)]
    fn __pending_start(&self, start: T) -> T {
        start
    }
}

/// Implemented by no type: a chain's start that is the pair `pending()` gives (see
/// [`PendingStart`]).
#[diagnostic::on_unimplemented(
    message = "this chain starts from the pair `pending()` gives, the Deferred and its Resolver, \
               not from a Deferred",
    label = "a pair, `{Self}`",
    note = "bind them before the chain, `let (d, resolver) = Deferred::pending();` (or \
            `LocalDeferred::pending()`), start the chain from `d`, and fire it with \
            `resolver.callback(value)`"
)]
pub trait StartIsAPair {}
