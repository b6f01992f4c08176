//! The two kinds of chain, and how a step is added to each.
//!
//! The expansion never names `Deferred` or `LocalDeferred`: it asks the start for its kind
//! ([`kind_of`]) and adds each step through it. Each kind's `add_*` methods ask for exactly what
//! the core's methods of that kind ask for, so a mistake is reported as it would be on the
//! core's methods: a [`SendChain`]'s steps and values must be `Sendable` (whose message suggests
//! `LocalDeferred`), a [`LocalChain`]'s need not be `Send`.
//!
//! The kinds' glue for two other jobs is written in the job's own file and included here, so
//! that it sits beside the kinds' types and compiler messages name it `SendChain::raised` (as
//! the core includes its methods beside each kind): `trail.rs` (where a failure was raised) and
//! `finally.rs` (what a `finally` does with the outcome).

use std::marker::PhantomData;
use std::panic::Location;

use deferred_core::{Deferred, Failure, IntoDeferred, IntoLocalDeferred, LocalDeferred, Sendable};

use super::body::{Never, StepOutcome, Unreachable};

/// A kind of chain: what its links are.
pub trait Kind: Copy + 'static {
    /// A link of this kind, with value `U` and error `E`.
    type Deferred<U, E: 'static>;
    /// A fired link holding `result`.
    fn fired<U, E: 'static>(self, result: Result<U, E>) -> Self::Deferred<U, E>;
    /// A fired link holding `value`.
    #[inline(always)]
    fn succeed<U, E: 'static>(self, value: U) -> Self::Deferred<U, E> {
        self.fired(Ok(value))
    }
    /// A fired link holding the failure `error`.
    #[inline(always)]
    fn fail<U, E: 'static>(self, error: E) -> Self::Deferred<U, E> {
        self.fired(Err(error))
    }
}

/// A chain of [`Deferred`]s: its steps run on the thread that fires it, so they are `Send`.
#[derive(Clone, Copy)]
pub struct SendChain;

/// A chain of [`LocalDeferred`]s: it stays on its thread, so its steps may hold `Rc` state.
#[derive(Clone, Copy)]
pub struct LocalChain;

impl Kind for SendChain {
    type Deferred<U, E: 'static> = Deferred<U, E>;
    #[inline(always)]
    fn fired<U, E: 'static>(self, result: Result<U, E>) -> Deferred<U, E> {
        Deferred::from_result(result)
    }
}

impl Kind for LocalChain {
    type Deferred<U, E: 'static> = LocalDeferred<U, E>;
    #[inline(always)]
    fn fired<U, E: 'static>(self, result: Result<U, E>) -> LocalDeferred<U, E> {
        LocalDeferred::from_result(result)
    }
}

/// A chain so far: a Deferred of either kind.
pub trait Chain {
    /// Its kind.
    type Kind: Kind;
    /// The value flowing at this point.
    type Value;
    /// The chain's error type.
    type Error: 'static;
    /// Its kind, as a value.
    const KIND: Self::Kind;
}

impl<T, E: 'static> Chain for Deferred<T, E> {
    type Kind = SendChain;
    type Value = T;
    type Error = E;
    const KIND: SendChain = SendChain;
}

impl<T, E: 'static> Chain for LocalDeferred<T, E> {
    type Kind = LocalChain;
    type Value = T;
    type Error = E;
    const KIND: LocalChain = LocalChain;
}

/// The bound the `add_*` methods (and `raised`, `finally`) put on the chain's error type:
/// `From<Failure>`, as the core's methods do. A trait of one blanket impl, so that a chain
/// whose error type nothing decides (`chain! { Ok(5) then .. }`, with no annotation) gets the
/// compiler's one error at its start, "type annotations needed", and not one more at each step
/// listing the types that implement `From<Failure>` (which the compiler reports whatever came
/// before when there are several).
///
/// A type the user names as the chain's error type (`let d: Deferred<T, String> = chain! {..}`)
/// that does not implement `From<Failure>` is reported once, with this message.
#[diagnostic::on_unimplemented(
    message = "this chain's error type is `{Self}`, which cannot hold a failure",
    label = "the chain's error type is `{Self}` here",
    note = "a chain's error type must hold any failure, such as a panic in a step: it implements \
            `From<Failure>`; use `Failure` (`Deferred<T>`), or implement `From<Failure>` for \
            `{Self}`"
)]
pub trait ErrorType: From<Failure> + 'static {}

impl<E: From<Failure> + 'static> ErrorType for E {}

/// Where it is called: the expansion calls it at a step's keyword, for where the step is (a
/// `catch`'s, for `add_run_catch`; in the chain's constant list of every step, [`Steps`], for
/// the steps a failure skips).
#[track_caller]
#[inline(always)]
pub const fn here() -> &'static Location<'static> {
    Location::caller()
}

/// Where each step of a chain is, in order: the expansion's constant list, which a run's steps
/// slice for the steps a failure skips (`add_run`).
pub type Steps = &'static [&'static Location<'static>];

/// The kind of the chain `chain` (its start): every step is added through it.
#[inline(always)]
pub fn kind_of<C: Chain>(_chain: &C) -> C::Kind {
    C::KIND
}

/// What a chain of this kind lets its steps capture: a value of type `X` (a name a step's body
/// mentions from outside the chain). A `Deferred`'s steps must be `Send`, so what they capture
/// must be too; a `LocalDeferred`'s may capture anything.
///
/// The expansion checks each captured name at the top of the chain (`__kind.captured(&name)`,
/// spanned at the name), and adds the steps through what this gives (`Out`): the chain's kind
/// when the value may be captured, else nothing known, so that the step's own `Send` bound
/// (which would name the closure, the step around it and `Send`, not the fix) stays silent.
///
/// (The trait is the kind's, not the value's: the compiler would offer to borrow a value whose
/// reference may be sent, which is not the fix.)
#[diagnostic::on_unimplemented(
    message = "a step of this chain captures `{X}`, which cannot be sent between threads safely",
    label = "captured here: a `Deferred`'s steps run on the thread that fires it",
    note = "to keep `Rc`/`RefCell` state or a guard in a chain that stays on one thread, start it \
            from a `LocalDeferred`; to share state across threads, capture an `Arc<Mutex<..>>` \
            and lock it inside the step"
)]
pub trait Captures<X: ?Sized, Out> {
    /// The kind to add the steps through.
    fn kind() -> Out;
}

#[diagnostic::do_not_recommend]
impl<X: ?Sized + Send> Captures<X, SendChain> for SendChain {
    #[inline(always)]
    fn kind() -> SendChain {
        SendChain
    }
}

/// Never applies: the second candidate makes the compiler weigh the bounds, and find none for a
/// value that is not `Send` (see `ChainError`'s).
#[diagnostic::do_not_recommend]
impl<X: ?Sized> Captures<X, Unreachable> for SendChain
where
    PhantomData<X>: Never,
{
    fn kind() -> Unreachable {
        unreachable!("no type implements `Never`")
    }
}

impl<X: ?Sized> Captures<X, LocalChain> for LocalChain {
    #[inline(always)]
    fn kind() -> LocalChain {
        LocalChain
    }
}

impl SendChain {
    /// Checks a value a step captures (see [`Captures`]).
    #[inline(always)]
    pub fn captured<X: ?Sized, Out>(self, _value: &X) -> Out
    where
        Self: Captures<X, Out>,
    {
        Self::kind()
    }
}

impl LocalChain {
    /// A local chain's steps may capture anything (see [`Captures`]).
    #[inline(always)]
    pub fn captured<X: ?Sized, Out>(self, _value: &X) -> Out
    where
        Self: Captures<X, Out>,
    {
        Self::kind()
    }
}

/// What the closures of a chain may take between them: a value from around the chain that two of
/// its closures take whole. The expansion's closures are `move`: the `then`s of a run nest (each
/// is made inside the one before, which hands on what it took), but each 32-step segment of a
/// run, each `catch` and each `finally` are closures of their own, each taking what it uses. So a
/// value two of them take must be `Copy`, else the second finds it moved.
///
/// The expansion checks each such name at its use in the later closure
/// (`__private::captured_again(&name)`, spanned at the name), so that the compiler says this
/// there, with the fix, instead of "use of moved value" at the whole chain (which today's rustc
/// then does not say: it does not check moves in code with type errors). The trait is a
/// marker's, not the value's, so that the compiler does not offer to borrow the value (a step's
/// captures are `'static`); its second impl never applies, and makes the compiler give this
/// message instead of the `Copy` bound's.
#[diagnostic::on_unimplemented(
    message = "this step uses a `{X}` that an earlier step of this chain took",
    label = "taken by an earlier step (`{X}` is not `Copy`)",
    note = "a run of `then`s shares what it takes from around the chain, but each `catch` and \
            each `finally` (and each 32 `then`s of a long run) is a closure of its own, which \
            takes what it uses",
    note = "clone it before the chain and use the clone here (`let name2 = name.clone();`; \
            a clone of an `Rc` or an `Arc` is another handle on the same value)"
)]
pub trait TakenTwice<X: ?Sized, Out> {}

/// The marker [`TakenTwice`] is implemented for.
pub struct TwoClosures;

#[diagnostic::do_not_recommend]
impl<X: Copy> TakenTwice<X, ()> for TwoClosures {}

/// Never applies (see [`TakenTwice`]).
#[diagnostic::do_not_recommend]
impl<X: ?Sized> TakenTwice<X, Unreachable> for TwoClosures where PhantomData<X>: Never {}

/// Checks a value a later closure of the chain uses again (see [`TakenTwice`]).
#[inline(always)]
pub fn captured_again<X: ?Sized, Out>(_value: &X)
where
    TwoClosures: TakenTwice<X, Out>,
{
}

/// The value given to the typed parameter of the first step of a long run's later segment
/// (`then |x: T|` after 32 `then`s, see `SEGMENT_STEPS` in the macro): that step's closure
/// takes the value with the names the segment before it carries, and gives the value to the
/// parameter through [`arrived`], so that a parameter of the wrong type is reported at it, as
/// it is on any other step, not as a mismatch at the whole chain.
#[diagnostic::on_unimplemented(
    message = "this step takes a `{T}`, but the value that arrives is a `{Self}`",
    label = "the step before this one gives a `{Self}`"
)]
pub trait ArrivesAs<T> {
    /// The value itself.
    fn arrive(self) -> T;
}

#[diagnostic::do_not_recommend]
impl<T> ArrivesAs<T> for T {
    #[inline(always)]
    fn arrive(self) -> T {
        self
    }
}

/// Gives `value` to a typed parameter (see [`ArrivesAs`]).
#[inline(always)]
pub fn arrived<U: ArrivesAs<T>, T>(value: U) -> T {
    value.arrive()
}

/// A step written without `move` that assigns to a variable from around the chain (`total +=
/// x`): its closure is `move` all the same (a step owns what it uses, and may run after the code
/// that follows the chain), so it changes its own copy. For a `Copy` value the variable outside
/// keeps its value, with no error from the compiler. The expansion checks each such name
/// (`__private::assigned_in_step`, spanned at the assignment's name), picking between the two
/// traits below by autoref: [`AssignedCopy`] for a `Copy` value, [`AssignedMoved`] (one `&`
/// further) for any other, which the step took whole, so nothing outside can see the change.
#[diagnostic::on_unimplemented(
    message = "this step changes its own copy of this `{X}`, not the variable outside the chain",
    label = "the step's copy: the variable outside the chain keeps its value",
    note = "a step owns what it uses (its closure is `move`, written so or not), and may run \
            after the code that follows the chain",
    note = "give the new value on as the step's value, or share it: a `Cell` in an `Rc` for a \
            `LocalDeferred`, an atomic or a `Mutex` in an `Arc` for a `Deferred`; a step that \
            means to change its own copy says so with `move |..|`"
)]
pub trait ChangesTheVariable<X: ?Sized> {}

/// What [`AssignedMoved`] gives: the value was moved into the step.
pub struct MovedIn;

/// What [`AssignedCopy`] gives: the step has a copy.
pub struct CopiedIn;

#[diagnostic::do_not_recommend]
impl<X: ?Sized> ChangesTheVariable<X> for MovedIn {}

/// The type of a variable a step assigns to (see [`ChangesTheVariable`]).
pub struct Assigned<X: ?Sized>(PhantomData<X>);

impl<X: ?Sized> Assigned<X> {
    /// The type of `value`.
    #[inline(always)]
    pub fn of(_value: &X) -> Assigned<X> {
        Assigned(PhantomData)
    }
}

/// A `Copy` value (see [`ChangesTheVariable`]).
pub trait AssignedCopy {
    /// [`CopiedIn`].
    #[inline(always)]
    fn assigned(&self) -> CopiedIn {
        CopiedIn
    }
}

impl<X: Copy> AssignedCopy for Assigned<X> {}

/// Any other value (see [`ChangesTheVariable`]).
pub trait AssignedMoved {
    /// [`MovedIn`].
    #[inline(always)]
    fn assigned(&self) -> MovedIn {
        MovedIn
    }
}

impl<X: ?Sized> AssignedMoved for &Assigned<X> {}

/// Checks a variable a step written without `move` assigns to (see [`ChangesTheVariable`]).
#[inline(always)]
pub fn assigned_in_step<X: ?Sized, K: ChangesTheVariable<X>>(_value: &X, _kind: K) {}

/// The `add_*` methods of `Deferred`, with the same bounds (so the same messages). Each is
/// `#[track_caller]`: the expansion calls it at the step's keyword, the step's location.
impl SendChain {
    /// [`Deferred::add_callback`].
    #[track_caller]
    #[inline(always)]
    pub fn add_callback<T, E, R, F>(self, chain: Deferred<T, E>, f: F) -> Deferred<R::Value, E>
    where
        T: Sendable + 'static,
        E: ErrorType + Sendable,
        F: FnOnce(T) -> R + Sendable + 'static,
        R: IntoDeferred<E>,
        R::Value: Sendable + 'static,
    {
        chain.add_callback(f)
    }

    /// A run of `then`s as one step of `chain`: `on_ok` runs the run; a failure skips it, and
    /// `skipped()` (a closure with nothing in it, giving a constant) is every step of the run it
    /// skips, this one included, in order, which are recorded on its trail at once
    /// (`Deferred::__add_run`). A step nested in a run, with steps after it,
    /// is added this way too: the steps after it are inside its closure, which a failure does
    /// not run.
    #[track_caller]
    #[inline(always)]
    pub fn add_run<T, E, R, Ok, S>(
        self,
        chain: Deferred<T, E>,
        on_ok: Ok,
        skipped: S,
    ) -> Deferred<R::Value, E>
    where
        T: Sendable + 'static,
        E: ErrorType + Sendable,
        Ok: FnOnce(T) -> R + Sendable + 'static,
        R: IntoDeferred<E>,
        R::Value: Sendable + 'static,
        S: FnOnce() -> Steps + Sendable + 'static,
    {
        chain.__add_run(on_ok, skipped)
    }

    /// A run of `then`s and the `catch` after it, as one step of `chain`:
    /// [`add_run`](SendChain::add_run) (`on_ok` runs the run, `skipped()` is the steps a
    /// failure skips), whose outcome is handed to `catch`, which adds the `catch` to it
    /// (`Deferred::__add_callbacks_then`): fired, once a pending outcome has arrived. A pending
    /// `chain` gets one stage for both.
    #[track_caller]
    #[inline(always)]
    pub fn add_run_catch<T, E, R, Ok, S, Ca>(
        self,
        chain: Deferred<T, E>,
        on_ok: Ok,
        skipped: S,
        catch: Ca,
        catch_at: &'static Location<'static>,
    ) -> Deferred<R::Value, E>
    where
        T: Sendable + 'static,
        E: ErrorType + Sendable,
        Ok: FnOnce(T) -> R + Sendable + 'static,
        R: IntoDeferred<E>,
        R::Value: Sendable + 'static,
        S: FnOnce() -> Steps + Sendable + 'static,
        Ca: FnOnce(Deferred<R::Value, E>) -> Deferred<R::Value, E> + Sendable + 'static,
    {
        chain.__add_callbacks_then(on_ok, skipped, catch, catch_at)
    }

    /// [`Deferred::add_errback`].
    #[track_caller]
    #[inline(always)]
    pub fn add_errback<T, E, R, F>(self, chain: Deferred<T, E>, f: F) -> Deferred<T, E>
    where
        T: Sendable + 'static,
        E: ErrorType + Sendable,
        F: FnOnce(E) -> R + Sendable + 'static,
        R: IntoDeferred<E, Value = T>,
    {
        chain.add_errback(f)
    }

    /// [`Deferred::add_both`].
    #[track_caller]
    #[inline(always)]
    pub fn add_both<T, E, R, F>(self, chain: Deferred<T, E>, f: F) -> Deferred<R::Value, E>
    where
        T: Sendable + 'static,
        E: ErrorType + Sendable,
        F: FnOnce(Result<T, E>) -> R + Sendable + 'static,
        R: IntoDeferred<E>,
        R::Value: Sendable + 'static,
    {
        chain.add_both(f)
    }
}

/// The `add_*` methods of `LocalDeferred`: nothing need be `Send`.
impl LocalChain {
    /// [`LocalDeferred::add_callback`].
    #[track_caller]
    #[inline(always)]
    pub fn add_callback<T, E, R, F>(
        self,
        chain: LocalDeferred<T, E>,
        f: F,
    ) -> LocalDeferred<R::Value, E>
    where
        T: 'static,
        E: ErrorType,
        F: FnOnce(T) -> R + 'static,
        R: IntoLocalDeferred<E>,
        R::Value: 'static,
    {
        chain.add_callback(f)
    }

    /// [`SendChain::add_run`], for a chain of `LocalDeferred`s.
    #[track_caller]
    #[inline(always)]
    pub fn add_run<T, E, R, Ok, S>(
        self,
        chain: LocalDeferred<T, E>,
        on_ok: Ok,
        skipped: S,
    ) -> LocalDeferred<R::Value, E>
    where
        T: 'static,
        E: ErrorType,
        Ok: FnOnce(T) -> R + 'static,
        R: IntoLocalDeferred<E>,
        R::Value: 'static,
        S: FnOnce() -> Steps + 'static,
    {
        chain.__add_run(on_ok, skipped)
    }

    /// [`SendChain::add_run_catch`], for a chain of `LocalDeferred`s.
    #[track_caller]
    #[inline(always)]
    pub fn add_run_catch<T, E, R, Ok, S, Ca>(
        self,
        chain: LocalDeferred<T, E>,
        on_ok: Ok,
        skipped: S,
        catch: Ca,
        catch_at: &'static Location<'static>,
    ) -> LocalDeferred<R::Value, E>
    where
        T: 'static,
        E: ErrorType,
        Ok: FnOnce(T) -> R + 'static,
        R: IntoLocalDeferred<E>,
        R::Value: 'static,
        S: FnOnce() -> Steps + 'static,
        Ca: FnOnce(LocalDeferred<R::Value, E>) -> LocalDeferred<R::Value, E> + 'static,
    {
        chain.__add_callbacks_then(on_ok, skipped, catch, catch_at)
    }

    /// [`LocalDeferred::add_errback`].
    #[track_caller]
    #[inline(always)]
    pub fn add_errback<T, E, R, F>(self, chain: LocalDeferred<T, E>, f: F) -> LocalDeferred<T, E>
    where
        T: 'static,
        E: ErrorType,
        F: FnOnce(E) -> R + 'static,
        R: IntoLocalDeferred<E, Value = T>,
    {
        chain.add_errback(f)
    }

    /// [`LocalDeferred::add_both`].
    #[track_caller]
    #[inline(always)]
    pub fn add_both<T, E, R, F>(
        self,
        chain: LocalDeferred<T, E>,
        f: F,
    ) -> LocalDeferred<R::Value, E>
    where
        T: 'static,
        E: ErrorType,
        F: FnOnce(Result<T, E>) -> R + 'static,
        R: IntoLocalDeferred<E>,
        R::Value: 'static,
    {
        chain.add_both(f)
    }
}

include!("trail.rs");
include!("finally.rs");
