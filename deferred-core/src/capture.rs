//! Scoped capture of unhandled failures, for tests: Twisted trial's `flushLoggedErrors`, per
//! thread.
//!
//! The [unhandled-error hook](crate::set_unhandled_hook) is one global, and `cargo test` runs
//! tests on parallel threads; a capture is per thread and scoped. What it sees, how captures
//! nest and where a failure goes are documented on [`UnhandledCapture`].
#![forbid(unsafe_code)]

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::rc::Rc;

use crate::failure::Failure;

/// The failures one capture collected so far.
type Slot = Rc<RefCell<Vec<Failure>>>;

/// A thread's captures, innermost last, each with its id.
struct Captures(RefCell<Vec<(u64, Slot)>>);

impl std::ops::Deref for Captures {
    type Target = RefCell<Vec<(u64, Slot)>>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Drop for Captures {
    /// At the thread's exit, captures still on the stack (forgotten with `mem::forget`) pass
    /// what they hold on to the hook: a capture never loses a failure.
    fn drop(&mut self) {
        let left: Vec<Failure> = self
            .0
            .get_mut()
            .drain(..)
            .flat_map(|(_, slot)| std::mem::take(&mut *slot.borrow_mut()))
            .collect();
        for failure in left {
            crate::unhandled::report_failure(failure);
        }
    }
}

thread_local! {
    /// This thread's captures, innermost last, each with its id.
    static CAPTURES: Captures = const { Captures(RefCell::new(Vec::new())) };
    /// The id of the next capture started on this thread.
    static NEXT_ID: Cell<u64> = const { Cell::new(0) };
}

/// Hands `failure` to this thread's innermost capture; gives it back when there is none (or
/// when the thread's storage is already gone, during the thread's exit).
pub(crate) fn deliver(failure: Failure) -> Result<(), Failure> {
    let slot = CAPTURES
        .try_with(|stack| stack.borrow().last().map(|(_, slot)| slot.clone()))
        .ok()
        .flatten();
    match slot {
        Some(slot) => {
            slot.borrow_mut().push(failure);
            Ok(())
        }
        None => Err(failure),
    }
}

/// Collects the unhandled failures reported on this thread while it lives, instead of passing
/// them to the [hook](crate::set_unhandled_hook) (the closure form is [`capture_unhandled`]; the
/// guard that fails a test is [`NoUnhandled`]).
///
/// The hook is one global, and `cargo test` runs tests on parallel threads: a recorder installed
/// there by one test also receives the failures of every other test running at the time. A
/// capture is scoped instead: while it lives, the failures reported **on its thread** are
/// collected by it alone, and go neither to the hook nor to any other thread's capture.
///
/// # Which failures a capture sees
///
/// A failure is reported on the thread that makes it unhandled (a failure nobody handled is
/// reported once, when the last handle that could handle it goes): the thread that drops
/// the last handle of a chain holding a failure, or the thread that fires (`callback`,
/// `errback`, `cancel`, dropping a `Resolver`) a chain whose handles were all dropped. A capture
/// sees exactly the failures reported on its own thread between its start and its end:
///
/// - a chain dropped, fired or cancelled on the capturing thread during the scope: seen;
/// - a chain fired on another thread (a spawned thread, [`defer_to_thread`](crate::defer_to_thread)'s
///   pool, a runtime's worker, the timer thread of an [`InboxClock`](crate::InboxClock)) reports
///   on *that* thread: **not** seen. To test that case, start a capture on the thread that fires
///   (inside the spawned closure) and send its failures back, or use the global hook, which
///   receives the failures of every thread that has no capture;
/// - a failure reported before the capture starts or after it ends: not seen.
///
/// # Nesting
///
/// Captures on one thread form a stack: the innermost (the most recently started that still
/// lives) receives the failures. When a capture ends, the failures in it that nobody
/// [took](UnhandledCapture::take) go on to what receives failures there: the enclosing capture,
/// else the hook. So a capture never loses a failure, and one ended by a panic's unwinding
/// leaves the enclosing state as it was.
///
/// # Where a failure goes
///
/// The first that applies, on the thread that reports it:
///
/// 1. the innermost capture of that thread ([`UnhandledCapture`], [`NoUnhandled`],
///    [`capture_unhandled`], [`expect_no_unhandled`]);
/// 2. the custom hook set by [`set_unhandled_hook`](crate::set_unhandled_hook);
/// 3. with the `tracing` feature, a `tracing::error!` event;
/// 4. stderr (`Unhandled error in Deferred:`, the failure's `Debug` form, and how to handle it).
///
/// A capture belongs to its thread: it is not `Send`. A capture forgotten with `mem::forget`
/// stays on its thread's stack for the thread's life, holding what it captures; when the thread
/// exits, what it holds is reported as if no capture were there (to the hook, else the
/// `tracing` event or stderr).
///
/// ```
/// # extern crate deferred_core as deferred;
/// use deferred::{Deferred, Failure, UnhandledCapture};
///
/// let capture = UnhandledCapture::start();
/// let d = Deferred::<u32>::fail(Failure::msg("nobody listened"));
/// assert!(capture.is_empty(), "not while a handle lives");
/// drop(d);
/// let failures = capture.take();
/// assert_eq!(failures.len(), 1);
/// assert_eq!(failures[0].to_string(), "nobody listened");
/// ```
#[must_use = "a capture collects only while it lives: bind it to a variable"]
pub struct UnhandledCapture {
    id: u64,
    slot: Slot,
}

impl UnhandledCapture {
    /// Starts capturing the unhandled failures reported on this thread (innermost of this
    /// thread's captures until it is dropped or another one starts).
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::{Deferred, Failure, UnhandledCapture};
    ///
    /// let outer = UnhandledCapture::start();
    /// {
    ///     let inner = UnhandledCapture::start();
    ///     drop(Deferred::<u32>::fail(Failure::msg("inner")));
    ///     assert_eq!(inner.len(), 1);
    ///     assert!(outer.is_empty(), "the innermost capture wins");
    /// } // `inner` ends holding a failure nobody took: it goes on to `outer`.
    /// assert_eq!(outer.take()[0].to_string(), "inner");
    /// ```
    pub fn start() -> UnhandledCapture {
        UnhandledCapture::try_start().expect("this thread's locals are being destroyed")
    }

    /// [`start`](UnhandledCapture::start), or `None` while this thread's locals are being
    /// destroyed (a drop at thread exit).
    pub(crate) fn try_start() -> Option<UnhandledCapture> {
        let id = NEXT_ID
            .try_with(|next| {
                let id = next.get();
                next.set(id + 1);
                id
            })
            .ok()?;
        let slot = Slot::default();
        CAPTURES
            .try_with(|stack| stack.borrow_mut().push((id, slot.clone())))
            .ok()?;
        Some(UnhandledCapture { id, slot })
    }

    /// Takes the failures captured so far, oldest first; the capture goes on collecting.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::{Deferred, Failure, UnhandledCapture};
    ///
    /// let capture = UnhandledCapture::start();
    /// drop(Deferred::<u32>::fail(Failure::msg("first")));
    /// assert_eq!(capture.take().len(), 1);
    /// assert!(capture.take().is_empty(), "taken once");
    /// drop(Deferred::<u32>::fail(Failure::msg("second")));
    /// assert_eq!(capture.take()[0].to_string(), "second");
    /// ```
    pub fn take(&self) -> Vec<Failure> {
        std::mem::take(&mut *self.slot.borrow_mut())
    }

    /// Ends the capture and returns everything it holds (nothing goes on to the enclosing
    /// capture or the hook).
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::{Deferred, Failure, UnhandledCapture};
    ///
    /// let capture = UnhandledCapture::start();
    /// drop(Deferred::<u32>::fail(Failure::msg("nobody listened")));
    /// let failures = capture.finish();
    /// assert_eq!(failures.len(), 1);
    /// ```
    pub fn finish(self) -> Vec<Failure> {
        let failures = self.take();
        drop(self);
        failures
    }

    /// How many failures the capture holds (captured and not taken).
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::{Deferred, Failure, UnhandledCapture};
    ///
    /// let capture = UnhandledCapture::start();
    /// drop(Deferred::<u32>::fail(Failure::msg("one")));
    /// drop(Deferred::<u32>::fail(Failure::msg("two")));
    /// assert_eq!(capture.len(), 2);
    /// # drop(capture.take());
    /// ```
    pub fn len(&self) -> usize {
        self.slot.borrow().len()
    }

    /// Whether the capture holds no failure.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::{Deferred, Failure, UnhandledCapture};
    ///
    /// let capture = UnhandledCapture::start();
    /// let handled = Deferred::<u32>::fail(Failure::msg("seen")).add_errback(|_| Ok(0));
    /// drop(handled);
    /// assert!(capture.is_empty(), "a handled failure is never reported");
    /// ```
    pub fn is_empty(&self) -> bool {
        self.slot.borrow().is_empty()
    }

    /// Takes the capture off this thread's stack (wherever it is in it, should guards be dropped
    /// out of order) and returns what it still held.
    fn end(&self) -> Vec<Failure> {
        // The failures are dropped or passed on only after every borrow is released: dropping
        // a failure runs its error's destructor, which may hold a chain that reports.
        let _ = CAPTURES.try_with(|stack| {
            let mut stack = stack.borrow_mut();
            if let Some(at) = stack.iter().rposition(|(id, _)| *id == self.id) {
                stack.remove(at);
            }
        });
        self.take()
    }
}

impl Drop for UnhandledCapture {
    /// Ends the capture; the failures nobody took go on to the enclosing capture, else the hook.
    fn drop(&mut self) {
        for failure in self.end() {
            crate::unhandled::report_failure(failure);
        }
    }
}

impl std::fmt::Debug for UnhandledCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnhandledCapture")
            .field("failures", &self.len())
            .finish()
    }
}

/// Runs `f`, collecting the unhandled failures reported on this thread while it runs; returns
/// what `f` returned and those failures, oldest first. They go neither to the
/// [hook](crate::set_unhandled_hook) nor to any enclosing capture.
///
/// A capture sees the failures reported **on this thread**: those of chains dropped, fired or
/// cancelled by this thread during `f`. A chain fired on another thread reports on that thread;
/// to test that case, capture on that thread (and send the failures back) or use the global
/// hook ([`UnhandledCapture`] says it all). If `f` panics, the failures captured so far go on to the enclosing capture, else the
/// hook, and the panic goes on unwinding.
///
/// ```
/// # extern crate deferred_core as deferred;
/// use deferred::{Deferred, Failure, capture_unhandled};
///
/// let (value, failures) = capture_unhandled(|| {
///     let (d, resolver) = Deferred::<u32>::pending();
///     drop(d.add_callback(|v| Ok(v + 1)));
///     resolver.errback(Failure::msg("nobody listened"));
///     7
/// });
/// assert_eq!(value, 7);
/// assert_eq!(failures.len(), 1);
/// assert_eq!(failures[0].to_string(), "nobody listened");
/// ```
pub fn capture_unhandled<R>(f: impl FnOnce() -> R) -> (R, Vec<Failure>) {
    let capture = UnhandledCapture::start();
    let value = f();
    (value, capture.finish())
}

/// A guard that fails the test if an unhandled failure is reported on this thread while it
/// lives: when dropped, it panics with each failure's `Debug` form (message, where it was raised,
/// the steps it passed). A failure whose `Display` panics is described as the unhandled report
/// describes it: "could not be shown", the formatting's panic message, and where the failure
/// was raised or entered the chain. Failures the test expects can be taken out first with
/// [`take`](NoUnhandled::take) (trial's `flushLoggedErrors`).
///
/// It never panics while the thread is already panicking (that would abort): then the failures
/// go on to the enclosing capture, else the hook, and the first panic goes on. It sees only the
/// failures reported on this thread ([`UnhandledCapture`] says which those are).
///
/// ```
/// # extern crate deferred_core as deferred;
/// use deferred::{Deferred, Failure, NoUnhandled};
///
/// let guard = NoUnhandled::start();
/// let d = Deferred::<u32>::fail(Failure::msg("expected")).add_callback(|v| Ok(v + 1));
/// drop(d);
/// let expected = guard.take();
/// assert_eq!(expected.len(), 1);
/// drop(guard); // nothing left: no panic
/// ```
///
/// A failure left in it fails the test:
///
/// ```should_panic
/// # extern crate deferred_core as deferred;
/// use deferred::{Deferred, Failure, NoUnhandled};
///
/// let _guard = NoUnhandled::start();
/// drop(Deferred::<u32>::fail(Failure::msg("forgotten")));
/// // `_guard` is dropped here and panics: "1 unhandled failure reported ... forgotten"
/// ```
#[must_use = "the guard checks only while it lives: bind it to a variable"]
#[derive(Debug)]
pub struct NoUnhandled {
    capture: Option<UnhandledCapture>,
}

impl NoUnhandled {
    /// Starts checking this thread for unhandled failures.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::{Deferred, Failure, NoUnhandled};
    ///
    /// let _guard = NoUnhandled::start();
    /// let d = Deferred::<u32>::fail(Failure::msg("handled")).add_errback(|_| Ok(0));
    /// assert_eq!(d.wait().unwrap(), 0);
    /// ```
    pub fn start() -> NoUnhandled {
        NoUnhandled {
            capture: Some(UnhandledCapture::start()),
        }
    }

    /// Takes the failures reported so far (the ones the test expected), so that they do not
    /// fail it; the guard goes on checking.
    ///
    /// ```
    /// # extern crate deferred_core as deferred;
    /// use deferred::{Deferred, Failure, NoUnhandled};
    ///
    /// let guard = NoUnhandled::start();
    /// drop(Deferred::<u32>::fail(Failure::msg("expected")));
    /// assert_eq!(guard.take()[0].to_string(), "expected");
    /// ```
    pub fn take(&self) -> Vec<Failure> {
        self.capture
            .as_ref()
            .map(UnhandledCapture::take)
            .unwrap_or_default()
    }
}

impl Drop for NoUnhandled {
    /// Panics if a failure was reported and not taken, unless the thread is already panicking.
    fn drop(&mut self) {
        let Some(capture) = self.capture.take() else {
            return;
        };
        if std::thread::panicking() {
            // Dropping the capture passes its failures on: nothing is lost, nothing panics.
            return;
        }
        let failures = capture.finish();
        if !failures.is_empty() {
            panic!("{}", describe(&failures));
        }
    }
}

/// The message of a [`NoUnhandled`] that found `failures`.
fn describe(failures: &[Failure]) -> String {
    let count = failures.len();
    let mut text = format!(
        "{count} unhandled failure{} reported on this thread while NoUnhandled was checking:",
        if count == 1 { "" } else { "s" }
    );
    for (n, failure) in failures.iter().enumerate() {
        // A failure whose `Display` panics is described as the report describes it: the guard's
        // own panic then says what it found, not what the formatting said.
        let shown = crate::unhandled::debug_form(failure).unwrap_or_else(|unshowable| unshowable);
        let _ = write!(text, "\n[{}] {shown}", n + 1);
    }
    text
}

/// Runs `f` and fails (panics) if an unhandled failure was reported on this thread meanwhile,
/// with each failure's `Debug` form (message, origin, trail) in the panic message, as
/// [`NoUnhandled`] does. Returns what
/// `f` returned. If `f` itself panics, that panic goes on and nothing else panics.
///
/// Only failures reported on this thread are checked ([`UnhandledCapture`] says which those are).
///
/// ```
/// # extern crate deferred_core as deferred;
/// use deferred::{Deferred, Failure, expect_no_unhandled};
///
/// let n = expect_no_unhandled(|| {
///     let d = Deferred::<u32>::fail(Failure::msg("seen")).add_errback(|_| Ok(3));
///     d.wait().unwrap()
/// });
/// assert_eq!(n, 3);
/// ```
///
/// ```should_panic
/// # extern crate deferred_core as deferred;
/// use deferred::{Deferred, Failure, expect_no_unhandled};
///
/// expect_no_unhandled(|| drop(Deferred::<u32>::fail(Failure::msg("nobody listened"))));
/// ```
pub fn expect_no_unhandled<R>(f: impl FnOnce() -> R) -> R {
    let guard = NoUnhandled::start();
    let value = f();
    drop(guard);
    value
}
