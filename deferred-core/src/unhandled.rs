//! Rule 5: a failure nobody handled is reported, once, through a replaceable hook.
//!
//! A Deferred dropped while it holds a failure — or whose failure arrives after its handle was
//! dropped — reports it here ("Unhandled error in Deferred"); so does one whose value holds its
//! inputs' failures (`settle_all`'s, `join_settled`'s), each of them, when nobody took that
//! value. A failure that reached an errback, `wait`, an `.await` or a `catch` was handled and is
//! never reported.
//!
//! Where a report goes, the first that applies on the reporting thread: that thread's innermost
//! capture (`capture.rs`), the custom hook, a `tracing::error!` event (feature `tracing`), stderr.
#![forbid(unsafe_code)]

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, RwLock};

use crate::failure::{Failure, drop_panic_payload};

/// The function that receives unhandled failures.
pub type UnhandledHook = dyn Fn(&Failure) + Send + Sync + 'static;

static HOOK: RwLock<Option<Arc<UnhandledHook>>> = RwLock::new(None);

/// Replaces the function that receives failures nobody handled; returns the previous one
/// (`None` for the default).
///
/// The default writes `Unhandled error in Deferred:`, the failure's `Debug` form — message,
/// steps and backtrace — and a line on how to handle it to stderr. A write that fails (to a
/// pipe whose reader is gone) is dropped: a report never panics. A report made while its
/// thread panics (a Deferred dropped as a panic unwinds, or in a panic hook) is written to
/// the process's stderr directly, so `cargo test` does not capture it: it shows even for a test
/// that passes, such as a `#[should_panic]` one. With the `tracing` feature, when a subscriber
/// takes it, the default emits instead an error-level `tracing` event (target `deferred`, as
/// the chains' trace-level events), `Unhandled error in Deferred`, whose fields are `error` (the message and its
/// sources), `origin` (where a step raised it, when known), `entered_at` (where code outside a
/// chain handed it to one, when no step raised it: [`Failure::entered_at`]) and `trail` (the steps it passed,
/// oldest first, `; `-separated). These are the failure's own: for a combinator's failure that
/// holds its inputs' (a [`FirstError`](crate::FirstError), a
/// [`FailureGroup`](crate::FailureGroup)), where those were raised is in the failure's `Debug`
/// form, not in these fields.
///
/// The hook is one global, for the whole process. A failure reported on a thread that has a
/// living capture ([`UnhandledCapture`](crate::UnhandledCapture),
/// [`capture_unhandled`](crate::capture_unhandled), [`NoUnhandled`](crate::NoUnhandled)) goes
/// to that capture and not to the hook. So, first that applies: the reporting thread's innermost
/// capture, the custom hook, the `tracing` event (feature `tracing`), stderr. Tests that check
/// their own failures should use a capture: a hook set by one test also receives the failures
/// of the other tests running in parallel.
///
/// The hook runs on the thread that dropped the last handle or fired the abandoned chain. A
/// panic in the hook is caught and written to stderr, with the failure; it never unwinds into
/// the chain (nor does a panic in the `Drop` of its payload). After the report the failure is
/// dropped; a panic in its error's `Drop` is caught there too, does not come out of the
/// Deferred's `Drop`, and is reported in turn ("the drop of a reported error panicked"). A hook replaced by [`restore_unhandled_hook`] is dropped after the hook's
/// lock is released: what it holds may report failures as it drops.
///
/// ```
/// # extern crate deferred_core as deferred;
/// use std::sync::{Arc, Mutex};
/// use deferred::{Deferred, Failure, set_unhandled_hook};
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let log = seen.clone();
/// let previous = set_unhandled_hook(move |f: &Failure| log.lock().unwrap().push(f.to_string()));
///
/// drop(Deferred::<u32>::fail(Failure::msg("nobody listened")));
/// assert!(seen.lock().unwrap().contains(&"nobody listened".to_string()));
///
/// deferred::restore_unhandled_hook(previous);
/// ```
pub fn set_unhandled_hook(
    hook: impl Fn(&Failure) + Send + Sync + 'static,
) -> Option<Arc<UnhandledHook>> {
    let mut slot = HOOK
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    slot.replace(Arc::new(hook))
}

/// Puts back a hook returned by [`set_unhandled_hook`] (`None` restores the default).
///
/// The hook it replaces is dropped after the hook's lock is released. So a hook that holds a
/// Deferred with a failure nobody handled (or a `Resolver`) may report as it drops: that
/// report goes where any does (a capture on this thread, else the hook just put back).
///
/// ```
/// # extern crate deferred_core as deferred;
/// use deferred::{Failure, restore_unhandled_hook, set_unhandled_hook};
///
/// let previous = set_unhandled_hook(|f: &Failure| eprintln!("unhandled: {f:?}"));
/// restore_unhandled_hook(previous);
/// ```
pub fn restore_unhandled_hook(previous: Option<Arc<UnhandledHook>>) {
    let replaced = std::mem::replace(
        &mut *HOOK
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
        previous,
    );
    // Dropped once the lock is released: what the hook holds (a Deferred with a failure, a
    // Resolver) may report as it drops, and a report reads the hook.
    drop(replaced);
}

/// Runs `call`, code the caller cannot let a panic out of (a loop's dispatch, a timer thread, a
/// loop's wake-up called by a poster): a panic is reported as an unhandled failure instead.
#[inline]
pub(crate) fn run_reporting_panic(what: &'static str, call: impl FnOnce()) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(call)) {
        report_failure(Failure::from_panic_in(payload, None, what));
    }
}

/// A call the crate hands to a runtime (a job for a blocking pool, a timer's call), which the
/// runtime may drop unrun: at its shutdown, or when the call's task is aborted. A panic in the
/// `Drop` of what the call holds (the user's closure) is then reported as `what` panicking,
/// rather than left to the runtime (tokio keeps it in the `JoinError` of a handle nobody reads).
#[cfg(feature = "tokio")]
pub(crate) struct DropReported<F: FnOnce()> {
    call: Option<F>,
    what: &'static str,
}

#[cfg(feature = "tokio")]
impl<F: FnOnce()> DropReported<F> {
    pub(crate) fn new(what: &'static str, call: F) -> DropReported<F> {
        DropReported {
            call: Some(call),
            what,
        }
    }

    /// Runs the call (it is not dropped unrun, then).
    pub(crate) fn run(mut self) {
        if let Some(call) = self.call.take() {
            call();
        }
    }
}

#[cfg(feature = "tokio")]
impl<F: FnOnce()> Drop for DropReported<F> {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            run_reporting_panic(self.what, move || drop(call));
        }
    }
}

/// Reports `result` if it is an error: the end of the line for a result nobody will see.
pub(crate) fn report_result<T, E: 'static>(result: Result<T, E>) {
    if let Err(error) = result {
        report(error);
    }
}

/// What a driver of a future (`drive_future`, `Inbox::spawn`, `from_future`) does with the
/// future's output when its Deferred refuses it (a cancel failed the Deferred first): a failure
/// other than a cancellation, which nobody else can see, is reported; the answer to the cancel
/// (a cancellation, or an error type's that cannot tell) is expected.
pub(crate) fn report_refused<T, E: 'static>(settled: Result<(), Result<T, E>>) {
    if let Err(Err(error)) = settled
        && !crate::failure::is_cancellation(&error).unwrap_or(true)
    {
        report(error);
    }
}

/// Reports an error nobody handled. A `Failure` is reported as it is; another error type is
/// named by its type (use `Failure` as the error type to get messages and trails); an
/// `anyhow::Error` (feature `anyhow`) as the failure [`Failure::from_anyhow`] gives.
pub(crate) fn report<E: 'static>(error: E) {
    let mut error = Some(error);
    #[cfg(feature = "anyhow")]
    if let Some(error) = (&mut error as &mut dyn Any).downcast_mut::<Option<anyhow::Error>>() {
        // An error of a chain of `anyhow::Error`s: the failure it holds (a `NeverFired`, a
        // panic), or a failure wrapping it, with its message and sources.
        return report_failure(Failure::from_anyhow(error.take().expect("just wrapped")));
    }
    let failure = match (&mut error as &mut dyn Any).downcast_mut::<Option<Failure>>() {
        Some(failure) => failure.take().expect("just wrapped"),
        None => Failure::msg(format!(
            "an error of type `{}` (use `Failure` as the error type to see its message)",
            std::any::type_name::<E>()
        )),
    };
    report_failure(failure);
    drop_reported(error);
}

/// Drops what a report is done with (the failure, or a chain's own error, which `report` named
/// by its type), whose `Drop` is the user's error's and may panic: that panic does not unwind
/// into the code that dropped a Deferred, but is reported in turn, as a panic in the `Drop` of
/// a value a chain lets go is.
fn drop_reported<T>(reported: T) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(reported))) {
        report_failure(Failure::from_panic_in(
            payload,
            None,
            "the drop of a reported error",
        ));
    }
}

/// Reports a failure nobody handled, to the first that applies: this thread's innermost
/// capture, the custom hook, a `tracing` event (feature `tracing`), stderr.
pub(crate) fn report_failure(failure: Failure) {
    let Err(failure) = crate::capture::deliver(failure) else {
        return;
    };
    let hook = HOOK
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let custom = hook.is_some();
    let delivered = catch_unwind(AssertUnwindSafe(|| match hook {
        Some(hook) => hook(&failure),
        None => default_report(&failure),
    }));
    if let Err(payload) = delivered {
        // The hook, or the report, may have panicked formatting the failure (a `Display` of the
        // user's that panics): formatting it again here must not let that panic out of a
        // `Drop` (an abort, if it runs while a panic unwinds).
        let text = match debug_form(&failure) {
            Ok(shown) if custom => {
                format!(
                    "Unhandled error in Deferred (and the unhandled-error hook panicked):\n{shown}"
                )
            }
            Ok(shown) => format!("Unhandled error in Deferred:\n{shown}"),
            Err(unshowable) => unshowable,
        };
        write_stderr(&text);
        // The hook's panic may be a `panic_any` of a value whose `Drop` panics too.
        drop_panic_payload(payload);
    }
    drop_reported(failure);
}

/// Writes `text` and a newline to stderr, as `eprintln!` does (so a test harness's output
/// capture holds it), but a write that fails (stderr a pipe whose reader is gone) is dropped:
/// `eprintln!` panics then, and a report is made in a `Drop`, where a panic would unwind into
/// the code that dropped a Deferred. That panic is caught here (the panic hook still sees it,
/// and writes to the same broken stderr). A report made while the thread panics (a `Drop` as
/// the panic unwinds, or the user's panic hook, where a second panic aborts the process even
/// when caught), and any report built with `panic = "abort"`, goes to the process's stderr
/// directly instead, past any capture, with no panic to catch.
pub(crate) fn write_stderr(text: &str) {
    #[cfg(not(panic = "abort"))]
    if !std::thread::panicking() {
        let _ = catch_unwind(|| eprintln!("{text}"));
        return;
    }
    use std::io::Write as _;
    let mut stderr = std::io::stderr().lock();
    let _ = stderr
        .write_all(text.as_bytes())
        .and_then(|()| stderr.write_all(b"\n"));
}

/// The failure's `Debug` form; if formatting it panics (a `Display` of the user's that
/// panics), what is said of it instead ([`unshowable`]), the panic kept here.
pub(crate) fn debug_form(failure: &Failure) -> Result<String, String> {
    catch_unwind(AssertUnwindSafe(|| format!("{failure:?}"))).map_err(|payload| {
        let text = unshowable(failure, &*payload);
        drop_panic_payload(payload);
        text
    })
}

/// What is said of an unhandled failure whose formatting panicked: that it did, with the panic's
/// message, and where the failure came from (the places need no user code to be shown).
fn unshowable(failure: &Failure, payload: &(dyn Any + Send)) -> String {
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic whose payload is not a string");
    let mut text = format!(
        "Unhandled error in Deferred, which could not be shown: formatting its error panicked \
         ({message})"
    );
    if let Some(origin) = failure.origin() {
        text.push_str(&format!("\n  raised at step {origin}"));
    }
    if let Some(entered) = failure.entered_at() {
        text.push_str(&format!("\n  entered the chain at {entered}"));
    }
    text.push_str(
        "\nhelp: fix the `Display` (and `Debug`) of the error type, which must not panic; and \
         handle failures with an errback (`add_errback`, `chain!`'s `catch`), or take the result \
         (`wait`, `.await`)",
    );
    text
}

/// What happens to an unhandled failure when no capture and no custom hook is set: an
/// error-level `tracing` event, target `deferred`, if a subscriber takes it; else (no subscriber
/// set, or one that filters it out) its `Debug` form on stderr, as without the feature: a
/// dependency that turns the feature on must not make the reports of a program with no
/// subscriber vanish.
#[cfg(feature = "tracing")]
fn default_report(failure: &Failure) {
    if !tracing::enabled!(target: "deferred", tracing::Level::ERROR) {
        return print_report(failure);
    }
    tracing::error!(
        target: "deferred",
        error = %format_args!("{failure:#}"),
        origin = failure.origin().map(tracing::field::display),
        entered_at = failure.entered_at().map(tracing::field::display),
        trail = %Trail(failure.trail()),
        "Unhandled error in Deferred"
    );
}

/// What happens to an unhandled failure when no capture and no custom hook is set: its report
/// on stderr.
#[cfg(not(feature = "tracing"))]
fn default_report(failure: &Failure) {
    print_report(failure);
}

/// The report of an unhandled failure on stderr: its `Debug` form, and what to do about it.
fn print_report(failure: &Failure) {
    // Formatted first, so that a `Display` that panics leaves no half-written report.
    let shown = format!("{failure:?}");
    write_stderr(&format!(
        "Unhandled error in Deferred:\n{shown}\n\
         help: handle failures with an errback (`add_errback`, `chain!`'s `catch`), or take \
         the result (`wait`, `.await`)"
    ));
}

/// A failure's trail as a `tracing` field: the steps it passed, oldest first, `; `-separated.
#[cfg(feature = "tracing")]
struct Trail<'a>(&'a [&'static std::panic::Location<'static>]);

#[cfg(feature = "tracing")]
impl std::fmt::Display for Trail<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (n, step) in self.0.iter().enumerate() {
            if n > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{step}")?;
        }
        Ok(())
    }
}
