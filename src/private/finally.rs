// Included by `kind.rs`, beside the kinds' types (see there): no `use` of its own.
//
// What a `finally` does with the outcome ([`SendChain::finally`], [`LocalChain::finally`]), and
// the functions `finally path` may name ([`FinallyFn`]).

// The body of both kinds' `finally`: the same code on each kind's Deferred.
macro_rules! finally {
    ($done:ident, $outcome:ident, $deferred:ident) => {
        match $done {
            None => $deferred::from_result($outcome),
            Some(done) if done.is_fired() => match done.wait() {
                Ok(_) => $deferred::from_result($outcome),
                Err(error) => $deferred::from_result(Err(error)),
            },
            Some(done) => done.add_both(move |done| match done {
                Ok(_) => $outcome,
                Err(error) => Err(error),
            }),
        }
    };
}

impl SendChain {
    /// Runs a `finally` step of a chain of `Deferred`s: the outcome passes on, unless the body
    /// failed. `done` is what the body gave: `None` for a plain value, else a Deferred (a fired
    /// one for a `Result`). `#[track_caller]`: a Deferred the body gave is waited for at the
    /// `finally` step's location.
    #[track_caller]
    #[inline(always)]
    pub fn finally<T, E, X>(
        self,
        done: Option<Deferred<X, E>>,
        outcome: Result<T, E>,
    ) -> Deferred<T, E>
    where
        T: Sendable + 'static,
        E: ErrorType + Sendable,
        X: Sendable + 'static,
    {
        finally!(done, outcome, Deferred)
    }
}

impl LocalChain {
    /// [`SendChain::finally`], for a chain of `LocalDeferred`s.
    #[track_caller]
    #[inline(always)]
    pub fn finally<T, E, X>(
        self,
        done: Option<LocalDeferred<X, E>>,
        outcome: Result<T, E>,
    ) -> LocalDeferred<T, E>
    where
        T: 'static,
        E: ErrorType,
        X: 'static,
    {
        finally!(done, outcome, LocalDeferred)
    }
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

/// The outcome lent to a `finally`'s typed parameter (`finally |outcome: &Result<T, E>|`): the
/// expansion gives it through [`lent`], at the parameter's type, so that a parameter of another
/// type (`finally |x: u32|`, the value in mind, as Twisted's `addBoth` or a `then` gives it) is
/// reported at its type, not as a mismatch at the whole chain.
#[diagnostic::on_unimplemented(
    message = "this `finally` takes a `{P}`, but it is lent the chain's outcome, a `{Self}`",
    label = "the outcome is a `{Self}`, not the value",
    note = "a `finally` runs on both paths and is lent the `Result`: write `|outcome|` (or \
            `|outcome: {Self}|`); to use the value, write `if let Ok(value) = outcome {{ .. }}` in \
            the body, or a `then |value| ..` step, which runs on success with the value"
)]
pub trait LentAs<P> {
    /// The outcome itself.
    fn lend(self) -> P;
}

#[diagnostic::do_not_recommend]
impl<O> LentAs<O> for O {
    #[inline(always)]
    fn lend(self) -> O {
        self
    }
}

/// Gives the outcome to a `finally`'s typed parameter (see [`LentAs`]).
#[inline(always)]
pub fn lent<O: LentAs<P>, P>(outcome: O) -> P {
    outcome.lend()
}
