//! What a `catch` may name and give: a typed `catch |e: T|` traps the chain's own error type
//! or a boxed error (then it catches everything), an error type trapped out of a `Failure`
//! ([`Failure::trap`]; cloned out of a shared one when it is `Clone`), or is a compile error ([`catch_as`] and the `Catch*` traits); and what
//! a `catch` gives must be the value type flowing past it ([`Recovers`]); and a `|` in a typed
//! `catch`'s body that was meant to join two error types ([`OrInCatch`]).

use std::error::Error as StdError;
use std::marker::PhantomData;

use deferred_core::Failure;

use super::kind::{Chain, Kind};

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

/// The value type of the chain `deferred` (of either kind).
#[inline(always)]
pub fn value_of<C: Chain>(_deferred: &C) -> ValueOf<C::Value> {
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
    fn recovered<K: Kind, E>(deferred: K::Deferred<U, E>) -> K::Deferred<Self, E>;
}

impl<T> Recovers<T> for T {
    #[inline(always)]
    fn recovered<K: Kind, E>(deferred: K::Deferred<T, E>) -> K::Deferred<T, E> {
        deferred
    }
}

// ---------------------------------------------------------------------------------------------
// What a typed `catch |e: T|` traps.

/// The type `T` a `catch` names, on a chain whose error type is `E`.
pub struct CatchAs<T, E>(PhantomData<fn() -> (T, E)>);

/// The [`CatchAs`] for the type named in a `catch` on the chain `deferred` (of either kind).
#[inline(always)]
pub fn catch_as<T, C: Chain>(_deferred: &C) -> CatchAs<T, C::Error> {
    CatchAs(PhantomData)
}

/// Highest priority: the `catch` names the chain's own error type, so it catches everything.
pub trait CatchOwnError {
    /// The trap that takes everything.
    type Trap;
    /// Chooses the trap.
    fn __catch_kind(&self) -> Self::Trap;
}
impl<E> CatchOwnError for &&&&CatchAs<E, E> {
    type Trap = TrapAll;
    #[inline(always)]
    fn __catch_kind(&self) -> TrapAll {
        TrapAll
    }
}

/// Next: the `catch` names a boxed error (`Box<dyn Error + Send + Sync>`, and the same without
/// `Sync` or `Send`) on a chain of `Failure`s: every failure is one, so it catches everything,
/// and takes the error the failure holds ([`Failure::into_error`]), as `Box<dyn Error>` code
/// would (its `downcast_ref` finds the error's own type; on a failure that other holders still
/// share, it finds the `SharedFailure`). It comes after the chain's own error type, so that a
/// chain whose error type is left to be inferred from this `catch` is a chain of boxed errors.
pub trait CatchBoxedError {
    /// The trap that takes everything, as its error.
    type Trap;
    /// Chooses the trap.
    fn __catch_kind(&self) -> Self::Trap;
}

/// The boxed error types a `catch` may name, each from the `Box<dyn Error + Send + Sync>` a
/// `Failure` holds.
macro_rules! catch_boxed {
    ($($bounds:tt)*) => {
        impl CatchBoxedError for &&&CatchAs<Box<dyn StdError $($bounds)*>, Failure> {
            type Trap = TrapBoxed<Box<dyn StdError $($bounds)*>>;
            #[inline(always)]
            fn __catch_kind(&self) -> Self::Trap {
                TrapBoxed(PhantomData)
            }
        }

        impl TrapBoxed<Box<dyn StdError $($bounds)*>> {
            /// Takes the error `failure` holds.
            #[inline(always)]
            pub fn trap(self, failure: Failure) -> Result<Box<dyn StdError $($bounds)*>, Failure> {
                Ok(failure.into_error())
            }
        }
    };
}
catch_boxed!(+ Send + Sync);
catch_boxed!(+ Send);
catch_boxed!();

/// Next: the `catch` names an error type that is `Clone`, trapped out of a `Failure`, or
/// cloned out of one that other holders share (a [`SharedResult`](deferred_core::SharedResult)
/// consumer's), which cannot give its error away while they have it.
pub trait CatchCloneableError {
    /// The trap that takes a `T`, or a clone of a shared one.
    type Trap;
    /// Chooses the trap.
    fn __catch_kind(&self) -> Self::Trap;
}
impl<T: StdError + Clone + 'static> CatchCloneableError for &&CatchAs<T, Failure> {
    type Trap = TrapCloned<T>;
    #[inline(always)]
    fn __catch_kind(&self) -> TrapCloned<T> {
        TrapCloned(PhantomData)
    }
}

/// Next: the `catch` names an error type, trapped out of a `Failure` (a shared one only by its
/// last holder: see [`Failure::trap`]).
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
/// Takes every failure, as the boxed error it holds.
pub struct TrapBoxed<B>(PhantomData<fn() -> B>);
/// Takes the failures whose error is a `T`.
pub struct TrapError<T>(PhantomData<fn() -> T>);
/// Takes the failures whose error is a `T`, cloning it out of a shared one.
pub struct TrapCloned<T>(PhantomData<fn() -> T>);
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

impl<T: StdError + Clone + 'static> TrapCloned<T> {
    /// Takes the error out of `failure` if it is a `T` (a clone of it, if other holders share
    /// it), else hands `failure` back.
    #[inline(always)]
    pub fn trap(self, failure: Failure) -> Result<T, Failure> {
        match failure.trap::<T>() {
            Ok(error) => Ok(error),
            Err(failure) => match failure.downcast_ref::<T>() {
                Some(error) => Ok(error.clone()),
                None => Err(failure),
            },
        }
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
// `catch |e: NotFound | Timeout| 0`: a `catch` of two error types.

/// A `|` in the body of a typed `catch` whose left side is a name in `CamelCase`: the expansion
/// writes `left | right` as [`or_in_catch`]`(left, right)`, which is `left | right` wherever `|`
/// applies (`Read | Write`, flags), and otherwise is this error: the user meant two error types,
/// `catch |e: NotFound | Timeout| 0`, and the `|` after the first ended the parameter. Said at
/// `left`, instead of the compiler's "no implementation for `Timeout | {integer}`", whose help
/// is to implement `BitOr`.
#[diagnostic::on_unimplemented(
    message = "a `catch` takes one error type: the `|` before `{Self}` ends the catch's parameter, \
               so `{Self} | ..` is read as its body",
    label = "read as the start of the catch's body",
    note = "write one `catch` for each error type: `catch |e: FirstError| .. catch |e: {Self}| ..`"
)]
pub trait OrInCatch<R, Via> {
    /// What `self | right` gives.
    type Output;
    /// `self | right`.
    fn or(self, right: R) -> Self::Output;
}

/// `|` applies: `left | right`.
pub struct ViaBitOr;

#[diagnostic::do_not_recommend]
impl<L: std::ops::BitOr<R>, R> OrInCatch<R, ViaBitOr> for L {
    type Output = L::Output;
    #[inline(always)]
    fn or(self, right: R) -> L::Output {
        self | right
    }
}

/// Never applies: with a second candidate, the compiler does not take the first one's bound to
/// guess the right side's type (it would find `BitOr<NonZero<..>>` for integers), and says this
/// trait's message when `|` does not apply.
#[diagnostic::do_not_recommend]
impl<L, R> OrInCatch<R, super::body::Unreachable> for L
where
    std::marker::PhantomData<L>: super::body::Never,
{
    type Output = super::body::Unreachable;
    fn or(self, _right: R) -> super::body::Unreachable {
        unreachable!("no type implements `Never`")
    }
}

/// `left | right`, in the body of a typed `catch` (see [`OrInCatch`]).
#[inline(always)]
pub fn or_in_catch<L: OrInCatch<R, Via>, R, Via>(left: L, right: R) -> L::Output {
    left.or(right)
}

// ---------------------------------------------------------------------------------------------
// `catch |e| e.0`: a field of what a `catch` without a type takes.

/// The parameter of a `catch` whose body reads a field of it (`catch |e| e.0`), before the
/// body: the expansion writes `let e = (&&CatchParam::new(e)).__catch_param();` there. On a
/// chain whose errors are `Failure`s, an untyped `catch` (and `catch |e: Failure|`) takes a
/// `Failure`, which has no fields: [`CatchFailureParam`] says so (instead of the compiler's "no
/// field `0` on type `Failure`"), and gives a type nothing is known of, so that the field is
/// not reported as well. Any other error type (a chain's own, `catch |e| e.code` on a
/// `Deferred<T, MyError>`; a typed `catch`'s) is given back as it is ([`CatchAnyParam`]).
pub struct CatchParam<T>(std::cell::Cell<Option<T>>);

impl<T> CatchParam<T> {
    /// Holds `param` for [`CatchAnyParam::__catch_param`].
    #[inline(always)]
    pub fn new(param: T) -> CatchParam<T> {
        CatchParam(std::cell::Cell::new(Some(param)))
    }
}

/// Highest priority: the parameter is a `Failure` (see [`CatchParam`]).
pub trait CatchFailureParam {
    /// Does not compile: a `Failure` has no fields.
    fn __catch_param<R>(&self) -> R
    where
        Failure: FailureHasNoFields<R>;
}
impl CatchFailureParam for &CatchParam<Failure> {
    fn __catch_param<R>(&self) -> R
    where
        Failure: FailureHasNoFields<R>,
    {
        unreachable!("no type implements `FailureHasNoFields`")
    }
}

/// Any other parameter: itself (see [`CatchParam`]).
pub trait CatchAnyParam<T> {
    /// The parameter.
    fn __catch_param(&self) -> T;
}
impl<T> CatchAnyParam<T> for CatchParam<T> {
    #[inline(always)]
    fn __catch_param(&self) -> T {
        self.0.take().expect("taken once")
    }
}

/// Implemented by no type: a `catch` that reads a field of a `Failure` (see [`CatchParam`]).
#[diagnostic::on_unimplemented(
    message = "this `catch` takes every failure, as a `Failure`, which has no fields: a `catch` \
               without an error type does not know which error it holds",
    label = "a `Failure`, not your error type",
    note = "name the error type to take failures of that type, as that type: \
            `catch |e: ErrorType| e.field` (other failures flow on past it)",
    note = "or look inside the `Failure` in a catch-all: `f.downcast_ref::<ErrorType>()` gives \
            `Some(&error)` when it holds one"
)]
pub trait FailureHasNoFields<R> {}
