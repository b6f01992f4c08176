//! Twisted-style promise chains for Rust: a typed [`Deferred`] and the [`chain!`] macro.
//!
//! ```
//! use deferred::{Deferred, Failure};
//!
//! let (id, resolver) = Deferred::<u32>::pending();
//! let line = id.add_callback(|id| Ok(format!("employee #{id}")));
//! resolver.callback(7);
//! assert_eq!(line.wait().unwrap(), "employee #7");
//! ```
//!
//! # Getting started
//!
//! ```toml
//! [dependencies]
//! deferred-chain = "0.1"   # the library is `deferred`: use deferred::{Deferred, chain};
//! # or: deferred-chain = { version = "0.1", features = ["tokio"] }
//! ```
//!
//! With no feature the library needs no async runtime, and its dependencies are small
//! (`spin` for a chain's lock; `syn`, `quote`, `proc-macro2` and `proc-macro-crate` to build
//! `chain!`). The features, none on by default (each item that needs one is marked with it in
//! these docs, on docs.rs):
//!
//! - **`tokio`**: `Deferred::from_future` (a future spawned on the current runtime; cancelling
//!   the Deferred cancels what the future awaits and aborts it) and `TokioClock` (tokio's
//!   timers for [`Deferred::add_timeout`], [`retry`], [`LoopingCall`]:
//!   `TokioClock::current()` inside the runtime); for one-thread
//!   chains, `Inbox::on_tokio_local_set`, `TokioLocalClock` and `LocalDeferred::from_future`.
//!   Inside a tokio runtime, [`defer_to_thread`] then uses tokio's blocking pool.
//! - **`calloop`**: `Inbox::on_calloop` (an [`Inbox`] drained by a calloop event source) and
//!   `CalloopClock` (calloop's timers).
//! - **`tracing`**: failures nobody handled are reported as `tracing::error!` events instead of
//!   printed on stderr (when no capture and no custom hook is set, and a subscriber takes them:
//!   with none, they are printed); a chain's life as trace-level events; target `deferred`.
//! - **`registry`**: `pending_chains()`, every chain that has not fired (where it was made and
//!   how long ago, its steps not run yet, what it waits on), and a `Debug` of a Deferred that
//!   says as much; it costs about a fifth more per pending chain.
//! - **`anyhow`**: `anyhow::Error` as a chain's error type (`Deferred<T, anyhow::Error>`), `?`
//!   from a [`Failure`] into an `anyhow::Result`, and `Failure::from_anyhow`.
//!
//! **Which thread runs a step.** A step runs on the thread that fires the Deferred it follows,
//! when it fires (or at once, on the adding thread, if it has fired already): there is no
//! executor, so a [`Deferred`]'s steps and values must be `Send` — the firing thread may be a pool
//! thread, a timer thread or a C library's. A [`LocalDeferred`] never leaves the thread that made
//! it, and results from other threads come home to it through an [`Inbox`]. Blocking work goes
//! through [`defer_to_thread`]: inside a tokio runtime (feature `tokio`) on tokio's blocking pool,
//! elsewhere on a pool of at most [`POOL_THREADS`] std threads.
//!
//! ```
//! use deferred::{Deferred, chain};
//!
//! let (d, resolver) = Deferred::<u32>::pending();
//! let ran_on = chain! { d then |_| std::thread::current().id() };
//! let firer = std::thread::spawn(move || {
//!     resolver.callback(1); // the step runs here, now
//!     std::thread::current().id()
//! });
//! assert_eq!(ran_on.wait().unwrap(), firer.join().unwrap());
//! ```
//!
//! The README's recipes are whole programs in the repository's `examples/`: bridging a C-style
//! callback API (`recipe_c_callback`: [`Resolver::set_canceller`] once the request id is known),
//! a bounded fan-out with retry (`recipe_fan_out`: [`map_concurrent`], [`retry_if`],
//! [`add_timeout`](Deferred::add_timeout)), and a single-thread loop (`recipe_single_thread`:
//! [`Inbox`], [`LocalDeferred`], `chain!`).
//!
//! # Testing code that uses Deferreds
//!
//! - **The result:** [`Deferred::wait`] in a plain `#[test]` (it blocks until the chain fires,
//!   from whatever thread fires it), or `.await` in a `#[tokio::test]` (a `Deferred` is a
//!   `Future`).
//! - **Time:** give the code a clock ([`Clock`]) rather than sleeping: in the test, a
//!   [`ManualClock`] that [`advance`](ManualClock::advance) moves, so a deadline, a retry's
//!   delay or a [`LoopingCall`] runs at once and in order; with tokio, `TokioClock::current()`
//!   on a runtime built with `start_paused`.
//! - **Failures nobody handled:** they are reported on stderr, and the test still passes. Wrap
//!   the test's body in [`expect_no_unhandled`] to make such a failure fail the test, or in
//!   [`capture_unhandled`] to check which were reported. Both see the failures reported on the
//!   test's own thread ([`UnhandledCapture`] says which those are).
//!
//! ```
//! use std::time::Duration;
//! use deferred::{Deferred, ManualClock, TimedOut, expect_no_unhandled};
//!
//! expect_no_unhandled(|| {
//!     let clock = ManualClock::new();
//!     let (query, _resolver) = Deferred::<u32>::pending();
//!     let answer = query.add_timeout(Duration::from_secs(5), &clock);
//!     clock.advance(Duration::from_secs(5)); // the deadline passes, now
//!     assert!(answer.wait().unwrap_err().is::<TimedOut>());
//! });
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// docs.rs (nightly, `--cfg docsrs`) marks each feature-gated item with its feature; stable
// builds never see this.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use deferred_core::*;
/// Twisted-style promise chains, written flat: a start, then steps that run when its result
/// arrives.
///
/// ```
/// use deferred::{Deferred, Failure, chain};
///
/// # #[derive(Debug)] struct NotFound(String);
/// # impl std::fmt::Display for NotFound {
/// #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
/// #         write!(f, "{}", self.0)
/// #     }
/// # }
/// # impl std::error::Error for NotFound {}
/// # #[derive(Clone)] struct Db;
/// # struct Details { name: String, title: String }
/// # fn log_done() {}
/// // Queries that answer later (here at once, or with a `NotFound`).
/// fn lookup_id(db: &Db, name: &str) -> Deferred<u32> {
///     # let _ = db;
///     match name {
///         "alice" => Deferred::succeed(7),
///         _ => Deferred::fail(NotFound(name.to_owned()).into()),
///     }
/// }
/// fn fetch_details(db: &Db, id: u32) -> Result<Details, Failure> {
///     # let _ = (db, id);
///     Ok(Details { name: "Alice".into(), title: "engineer".into() })
/// }
///
/// fn describe(db: Db, name: &str) -> Deferred<String> {
///     chain! {
///         lookup_id(&db, name)                    // start: a Deferred (or a Result, or a value)
///         then |id| fetch_details(&db, id)        // may give a value, a Result or a Deferred
///         then |details| format!("{} #{id}: {}", details.name, details.title) // `id` in scope
///         catch |e: NotFound| format!("no such employee: {e}")               // NotFound only
///         catch |f| format!("lookup failed: {f}")                            // everything else
///         finally || log_done()                   // runs on both paths; the outcome passes on
///     }
/// }
///
/// assert_eq!(describe(Db, "alice").wait().unwrap(), "Alice #7: engineer");
/// assert_eq!(describe(Db, "bob").wait().unwrap(), "no such employee: bob");
/// ```
///
/// `chain!` evaluates to a [`Deferred`] (a [`LocalDeferred`] for a chain that starts from one,
/// see [Local chains](#local-chains)). Each step is added with [`Deferred::add_callback`],
/// [`add_errback`](Deferred::add_errback) or [`add_both`](Deferred::add_both), so every rule of a
/// Deferred holds: steps run when the result arrives, on the thread that fires it; a panic in a
/// step becomes a [`Failure`]; each step's location (its keyword) is recorded in the failure's
/// [`origin`](Failure::origin) and [`trail`](Failure::trail). A failure the chain starts with
/// (a start that is an `Err`) records the start as its
/// [`entered_at`](Failure::entered_at), "by chain!'s start".
///
/// # Steps
///
/// `chain! { START STEP* }`, where each step is a keyword and a closure (`move` is optional: steps
/// always own what they use) or the path of a function:
///
/// - **`then |value| ...`** runs on success. Its body gives the next value, in one of the three
///   ways a Twisted callback can: a plain value (the chain goes on with it), a `Result` (`Ok` goes
///   on, `Err` fails the chain; `?` works in the body) or a `Deferred` (the chain waits for it).
///   The choice is made on the body's type as written: a value of a generic type `T` is a plain
///   value, even where `T` is a `Result` or a `Deferred`. `then path` calls `path(value)`.
/// - **`catch |e: T| ...`** handles the failures whose error is a `T` (Twisted's `trap`; `T`
///   implements `std::error::Error`); others flow on. **`catch |f| ...`** handles every failure
///   (`f` is the chain's error, a [`Failure`] by default; so is `catch |f: Failure|` and
///   `catch path`), and so does `catch |e: Box<dyn Error + Send + Sync>| ...` with the error
///   the failure holds, as code written with boxed errors has it. A `catch` recovers: its body gives a value of the type flowing past it (or a
///   `Result`, or a `Deferred`); `Err` passes a failure on.
/// - **`finally || ...`** and **`finally |outcome| ...`** (`outcome` is a `&Result<T, E>`, not
///   the value: `if let Ok(value) = outcome { .. }` reaches it) run on both paths, and the
///   outcome passes on unchanged, unless the body fails (gives `Err`, a Deferred that fails, or
///   panics): then that failure replaces it. `finally path` calls `path()` or `path(&outcome)`,
///   as the function takes.
///
/// **A combinator fails with an error of its own.** [`gather_results`] and [`map_concurrent`]
/// fail with a [`FirstError`], which says which input failed and holds that input's failure;
/// [`retry`] gives up with a [`RetryError`], which holds every attempt's. So a
/// `catch |e: HttpError|` after them does not see an `HttpError` (where JavaScript's
/// `Promise.all` rejects with the input's own error): catch the combinator's error and look
/// inside it, or join with [`join`], which fails with the first failure as it is.
///
/// ```
/// use deferred::{Deferred, Failure, FirstError, chain, gather_results};
///
/// # #[derive(Debug)] struct HttpError(u16);
/// # impl std::fmt::Display for HttpError {
/// #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "HTTP {}", self.0) }
/// # }
/// # impl std::error::Error for HttpError {}
/// let fetch = |status: u16| match status {
///     200 => Deferred::succeed(status),
///     _ => Deferred::fail(Failure::new(HttpError(status))),
/// };
/// let status = chain! {
///     gather_results(vec![fetch(200), fetch(404)])
///     then |statuses| statuses.len() as u16
///     catch |e: HttpError| e.0 // never runs: the failure is a `FirstError`
///     catch |e: FirstError| match e.failure.downcast_ref::<HttpError>() {
///         Some(HttpError(status)) => Ok(*status),
///         None => Err(e.into()), // another failure: passed on
///     }
/// };
/// assert_eq!(status.wait().unwrap(), 404);
/// ```
///
/// **A catch-all also catches cancellation.** [`cancel`](Deferred::cancel) (and a deadline's
/// [`add_timeout`](Deferred::add_timeout)) fails the chain with [`Cancelled`], which flows to the
/// errbacks like any failure: `catch |f| ...` sees it, and a `catch |_| retry()` restarts the
/// work that was just cancelled. Trap the errors you mean to handle, `catch |e: Refused| ...`,
/// and a cancellation passes on; or, in a catch-all, pass it on yourself. (The library's own
/// [`retry`] never retries a cancellation.) Where the chain waited on a combinator (`join`,
/// `gather_results`) or on a Deferred whose canceller fails it itself, the chain also keeps the
/// cancel for the next Deferred a step gives (rule 7): what such a `catch`, or a `finally`,
/// returns is then cancelled as it starts.
///
/// ```
/// use deferred::{Deferred, Failure, chain};
///
/// # #[derive(Debug)] struct Refused;
/// # impl std::fmt::Display for Refused {
/// #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("refused") }
/// # }
/// # impl std::error::Error for Refused {}
/// let (work, _resolver) = Deferred::<u32>::pending();
/// let typed = chain! {
///     work
///     catch |_e: Refused| 0                      // only `Refused`: a cancellation passes on
/// };
/// typed.cancel();
/// assert!(typed.wait().unwrap_err().is_cancelled());
///
/// let (work, _resolver) = Deferred::<u32>::pending();
/// let catch_all = chain! {
///     work
///     catch |f| if f.is_cancelled() { Err(f) } else { Ok(0) } // pass the cancel on
/// };
/// catch_all.cancel();
/// assert!(catch_all.wait().unwrap_err().is_cancelled());
/// ```
///
/// Names bound by a `then` stay in scope in the `then`s after it, up to the next `catch` or
/// `finally` (the scoping of nested callbacks, written flat):
///
/// ```
/// use deferred::chain;
///
/// let d = chain! {
///     2
///     then |a| a * 10
///     then |b| a + b          // `a` is still here
///     catch |_| 0             // after this, only the flowing value is
///     then |sum| sum + 1
/// };
/// assert_eq!(d.wait().unwrap(), 23);
/// ```
///
/// Steps run later, maybe on another thread: they move what they use into themselves, so give
/// them owned, `Send` handles (an `Arc`, a pool, a clonable client), not borrows.
///
/// **A handle used in the `then`s and in a later `catch` or `finally`**: the run of `then`s is
/// one callback, which moves the handle into itself, so the `catch` finds it moved ("use of
/// moved value"). Clone it before the chain, and give the later step the clone:
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use deferred::{Deferred, Failure, chain};
///
/// #[derive(Clone, Default)]
/// struct Db(Arc<Mutex<Vec<String>>>);
/// impl Db {
///     fn name(&self, id: u32) -> Result<String, Failure> {
///         if id == 7 { Ok("alice".into()) } else { Err(Failure::msg(format!("no employee #{id}"))) }
///     }
///     fn log(&self, line: String) { self.0.lock().unwrap().push(line); }
/// }
///
/// fn greet(db: Db, id: u32) -> Deferred<String> {
///     let db2 = db.clone(); // the `then`s below move `db`; the `catch` gets `db2`
///     chain! {
///         Deferred::<u32>::succeed(id)
///         then |id| db.name(id)
///         then |name| { db.log(format!("greeted {name}")); format!("hello, {name}") }
///         catch |f| { db2.log(format!("failed: {f}")); "hello, stranger".to_owned() }
///     }
/// }
///
/// let db = Db::default();
/// assert_eq!(greet(db.clone(), 7).wait().unwrap(), "hello, alice");
/// assert_eq!(greet(db.clone(), 8).wait().unwrap(), "hello, stranger");
/// assert_eq!(*db.0.lock().unwrap(), ["greeted alice", "failed: no employee #8"]);
/// ```
///
/// # A deadline
///
/// There is no `timeout` step: a deadline is put on a Deferred with
/// [`add_timeout`](Deferred::add_timeout), which covers the steps added before it (they are what
/// the deadline cancels) and fails with [`TimedOut`]. Put it on the start, to time what the start
/// waits on; or on a whole `chain!` (it is an expression) to time all its steps, inside a longer
/// chain whose later steps can `catch |e: TimedOut|`:
///
/// ```
/// use std::time::Duration;
/// use deferred::{Deferred, ManualClock, TimedOut, chain};
///
/// let clock = ManualClock::new();
/// let (query, _resolver) = Deferred::<u32>::pending();
/// let line = chain! {
///     chain! {                                   // the steps the deadline covers
///         query
///         then |id| id * 10
///     }
///     .add_timeout(Duration::from_secs(5), &clock)
///     then |n| format!("employee #{n}")
///     catch |e: TimedOut| format!("lookup: {e}")
/// };
/// clock.advance(Duration::from_secs(5));
/// assert_eq!(line.wait().unwrap(), "lookup: the Deferred timed out after 5s");
/// ```
///
/// # Local chains
///
/// The start decides the chain's kind. A chain that starts from a [`LocalDeferred`] is a chain
/// of `LocalDeferred`s: it evaluates to a `LocalDeferred`, its steps run on the thread that made
/// it, so they may hold and give values that are not `Send` (`Rc<RefCell<..>>` state, `Rc<str>`).
/// Any other start (a `Deferred`, a `Result`, a plain value) makes a chain of `Deferred`s, with
/// the `Send` checks above.
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// use deferred::{LocalDeferred, chain};
///
/// let seen = Rc::new(RefCell::new(Vec::new()));
/// let (id, resolver) = LocalDeferred::<u32>::pending();
/// let log = seen.clone();
/// let name: LocalDeferred<Rc<str>> = chain! {
///     id
///     then |id| { log.borrow_mut().push(id); Rc::<str>::from(format!("#{id}")) }
///     catch |f| Rc::from(f.to_string())
/// };
/// resolver.callback(7);
/// assert_eq!(&*name.wait().unwrap(), "#7");
/// assert_eq!(*seen.borrow(), [7]);
/// ```
///
/// A step of a local chain may give a `LocalDeferred` (the chain waits for it), not a
/// `Deferred`: a `Deferred` may fire on another thread, so bring it home first with
/// [`Inbox::adopt`] (`inbox.adopt(deferred)`), which gives a `LocalDeferred` of the inbox's
/// thread. Likewise a chain of `Deferred`s cannot wait on a `LocalDeferred`.
///
/// # Costs
///
/// The expansion grows linearly with the steps. Steps that complete at once allocate nothing; on
/// a pending Deferred, a whole run of `then`s is one callback (one link), and each `catch` and
/// `finally` at most one more (a `catch` right after a run shares the run's link).
///
/// # Mistakes
///
/// Misuse is a compile error that points at the mistake and says what to write instead: an empty
/// chain, a missing start, an unknown step (`than`: "did you mean `then`?"), a step without a
/// closure, a closure with the wrong number of parameters, a `catch` that can never run (after
/// a `catch` that takes every failure and gives a plain value, such as `catch |_| 0`), a
/// `catch` type that is not an error type, a step that gives a future, a failure of another error
/// type than the chain's, a `catch` that gives another type than the chain's value, `.await` in a
/// step, a value that is not `Send` (in a chain of `Deferred`s), a step that gives a Deferred of
/// the other kind than its chain's, a start that names a function without calling it
/// (`fetch_user` for `fetch_user()`), a `catch |e|` without a type that reads a field of the
/// `Failure` it takes (`e.0`), a `catch` typed with a trait (`|e: &dyn Error|`), a
/// `finally |x|` whose body uses `x` as the value (`x + 1`, `x.0`, `x[0]`: it is the outcome,
/// a `&Result`), a chain's error type that cannot hold a failure (one error at the start, "this
/// chain's error type is `String`, which cannot hold a failure"), JavaScript's forms
/// (`catch (e) { .. }`, `x => x + 1`). A step whose body never returns and is not one of
/// `panic!`, `todo!`, `unimplemented!` or `unreachable!` needs its type written:
/// `then |x| -> u32 { .. }`. A start `Ok(5)` whose error type nothing states gets the
/// compiler's "type annotations needed" at the `Ok`: write `Ok::<_, Failure>(5)`.
///
/// ```compile_fail
/// let d = deferred::chain! {
///     1
///     than |x| x + 1      // error: unknown step `than`: did you mean `then`?
/// };
/// ```
pub use deferred_macros::chain;

#[doc(hidden)]
#[path = "private/mod.rs"]
pub mod __private;

/// The README's Rust code blocks, compiled and run by `cargo test --doc`, so that they cannot
/// drift from the library. (Those marked `rust,ignore` are excerpts of whole programs: most are
/// the examples', and `tests/recipes.rs` compares the recipes' word for word.)
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
