//! What a chain's values, errors and steps must be, for each kind of Deferred.
//!
//! A [`Deferred`](crate::Deferred) runs its steps on whichever thread fires it, so everything
//! in it must be [`Sendable`] (that is, `Send + 'static`). A [`LocalDeferred`](crate::LocalDeferred) never
//! leaves the thread that made it, so anything goes ([`LocalValue`]: every type). The state
//! machine is written once against these names; each kind says which one it uses.
#![forbid(unsafe_code)]

/// Every `Send + 'static` type: what a [`Deferred`](crate::Deferred)'s values, errors and steps
/// must be, because its steps run on the thread that fires it, whenever it fires. In generic
/// code, `T: Sendable` is `T: Send + 'static`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be sent between threads safely, and a `Deferred`'s steps run on the thread that fires it",
    note = "to keep `Rc`/`RefCell` state in a chain that stays on one thread, start it from a `LocalDeferred`; \
            to share state across threads, use `Arc<Mutex<..>>` and lock it inside the step"
)]
pub trait Sendable: Send + 'static {}

// Not recommended in messages: the note "required for `Rc<..>` to implement `Sendable`" adds
// nothing to the `Send` error before it.
#[diagnostic::do_not_recommend]
impl<X: Send + 'static + ?Sized> Sendable for X {}

/// Every `Send + Sync` type: what a [`Deferred`](crate::Deferred)'s shared functions (such as
/// [`map_concurrent`](crate::map_concurrent)'s) must be.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be shared between threads safely, and a `Deferred` helper uses \
               it from many threads at once",
    note = "keep shared state in an `Arc<Mutex<..>>` (or an atomic) and lock it inside the \
            function; for `Rc`/`RefCell` state, use the helper of `deferred::local`, which stays \
            on one thread"
)]
pub trait Shareable: Send + Sync {}

// Not recommended in messages, as for `Sendable`.
#[diagnostic::do_not_recommend]
impl<X: Send + Sync + ?Sized> Shareable for X {}

/// Every `std::error::Error + Send + Sync + 'static` type: what a [`Failure`](crate::Failure)
/// wraps ([`Failure::new`](crate::Failure::new)). A message is not one: `Failure::msg` makes a
/// failure of it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an error type a `Failure` can wrap",
    label = "not a `std::error::Error + Send + Sync + 'static`",
    note = "a message (a `&str`, a `String`) becomes a failure with `Failure::msg(..)`"
)]
pub trait WrappableError: std::error::Error + Send + Sync + 'static {}

// Not recommended in messages, as for `Sendable`.
#[diagnostic::do_not_recommend]
impl<X: std::error::Error + Send + Sync + 'static> WrappableError for X {}

/// Every `From<Failure>` type: what a chain's error type must be. A chain makes failures of its
/// own — a panic in a step, a cancel, a Resolver dropped unfired, a timeout — and must be able
/// to hold them in its error type. [`Failure`](crate::Failure), the default, is one; so is any
/// error type of yours with a `From<Failure>` impl. In generic code, `E: FromFailure` is
/// `E: From<Failure>`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a chain's error type: it is not `From<Failure>`",
    label = "this fails with `{Self}`, which cannot hold the failures a chain makes itself",
    note = "a chain makes failures of its own (a panic in a step, a cancel, a Resolver dropped \
            unfired), so its error type must be `From<Failure>`",
    note = "use `Failure`, the default, into which every std error converts: where a closure \
            gives another error type, write `Err(error.into())` or `Ok(work()?)` in it, and name \
            the start's or the result's type (`Deferred::<u32>::succeed(..)`, `let d: \
            Deferred<String> = ..`): a closure's error type otherwise becomes the chain's; for an \
            error type of your own, implement `From<Failure>` for it (`anyhow::Error` has it \
            with the feature `anyhow`)"
)]
pub trait FromFailure: From<crate::Failure> + 'static {}

// Not recommended in messages, as for `Sendable`: the note "required for `io::Error` to implement
// `FromFailure`", and the list of `From` impls `io::Error` has, add nothing to the message above.
#[diagnostic::do_not_recommend]
impl<X: From<crate::Failure> + 'static> FromFailure for X {}

/// Every type: a [`LocalDeferred`](crate::LocalDeferred)'s values, errors and steps stay on its
/// thread, so they need not be `Send`.
pub trait LocalValue {}

impl<X: ?Sized> LocalValue for X {}

/// What a step may return, and no more: `IntoDeferred` and `IntoLocalDeferred` are sealed by it
/// (`chain!` dispatches on these types alone).
pub trait IntoSealed {}

impl<U, E> IntoSealed for Result<U, E> {}
