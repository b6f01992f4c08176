//! The report of an unhandled failure itself: written when stderr cannot take it, a hook whose
//! panic's payload panics as it drops, a hook replaced while what it holds reports, an error
//! whose `Drop` panics once it is reported, a capture forgotten until its thread exits.
//!
//! Each case runs in a child process (this binary, one test, an environment variable naming
//! it): a case sets the global hook, and before it was sound it panicked out of a `Drop` or
//! aborted the process.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use deferred_core::{Deferred, Failure, LocalDeferred, restore_unhandled_hook, set_unhandled_hook};

/// The environment variable that names the case a child process runs.
const CHILD: &str = "DEFERRED_REPORTING_CHILD";

/// Whether this process is the child running the case `test`.
fn is_child(test: &str) -> bool {
    std::env::var_os(CHILD).is_some_and(|name| name == test)
}

/// Whether this process is a child running some case (the parents then do nothing).
fn in_a_child() -> bool {
    std::env::var_os(CHILD).is_some()
}

/// Runs the case `test` in a child process and gives its stdout, once the child has passed.
/// With `stderr_closed`, the child's stderr is a pipe whose reader is gone before the case
/// starts (the case waits for its stdin to close, which happens after).
fn run_child(test: &str, stderr_closed: bool) -> String {
    let mut child = Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, test)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the child runs");
    let stderr = child.stderr.take().expect("piped");
    let mut stderr = if stderr_closed {
        drop(stderr);
        None
    } else {
        Some(stderr)
    };
    drop(child.stdin.take());
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut stdout)
        .expect("the child's stdout");
    let mut errors = String::new();
    if let Some(stderr) = stderr.as_mut() {
        let _ = stderr.read_to_string(&mut errors);
    }
    let status = child.wait().expect("the child ends");
    assert!(
        status.success(),
        "the child failed ({status}):\n{stdout}\n{errors}"
    );
    stdout
}

/// In a child whose stderr is closed: waits until the parent has closed it.
fn wait_for_stdin_to_close() {
    let mut rest = String::new();
    let _ = std::io::stdin().read_to_string(&mut rest);
}

/// Sets a hook that records the messages of the failures it receives.
fn record_unhandled() -> Arc<Mutex<Vec<String>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    set_unhandled_hook(move |f: &Failure| log.lock().unwrap().push(f.to_string()));
    seen
}

/// A value whose `Drop` panics.
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("the payload's drop panicked");
    }
}

#[test]
fn reports_to_a_closed_stderr_neither_panic_nor_abort_child() {
    if !is_child("reports_to_a_closed_stderr_neither_panic_nor_abort_child") {
        return;
    }
    wait_for_stdin_to_close();
    // The default report, of each kind.
    drop(Deferred::<u32>::fail(Failure::msg("nobody listened")));
    drop(LocalDeferred::<u32>::fail(Failure::msg(
        "nobody listened here",
    )));
    // The default report of a chain dropped while a panic unwinds.
    let unwound = std::panic::catch_unwind(|| {
        let _abandoned = Deferred::<u32>::fail(Failure::msg("dropped by the unwinding"));
        panic!("the first panic");
    });
    assert!(unwound.is_err());
    // What is written of a hook that panicked.
    set_unhandled_hook(|_: &Failure| panic!("the hook panicked"));
    drop(Deferred::<u32>::fail(Failure::msg(
        "given to a panicking hook",
    )));
    println!("child: every report made");
}

// Before: `eprintln!` panicked on the closed pipe ("failed printing to stderr"): the panic came
// out of the Deferred's drop, and while the first panic unwound it aborted the child.
#[test]
fn reports_to_a_closed_stderr_neither_panic_nor_abort() {
    if in_a_child() {
        return;
    }
    let stdout = run_child(
        "reports_to_a_closed_stderr_neither_panic_nor_abort_child",
        true,
    );
    assert!(stdout.contains("child: every report made"), "{stdout}");
}

#[test]
fn a_hook_panic_whose_payload_panics_on_drop_stays_in_the_report_child() {
    if !is_child("a_hook_panic_whose_payload_panics_on_drop_stays_in_the_report_child") {
        return;
    }
    let calls = Arc::new(Mutex::new(0));
    let counted = calls.clone();
    set_unhandled_hook(move |_: &Failure| {
        *counted.lock().unwrap() += 1;
        std::panic::panic_any(PanicOnDrop)
    });
    let dropped = std::panic::catch_unwind(|| {
        drop(Deferred::<u32>::fail(Failure::msg("given to the hook")));
    });
    assert!(dropped.is_ok(), "the payload's panic came out of the drop");
    let unwound = std::panic::catch_unwind(|| {
        let _abandoned = Deferred::<u32>::fail(Failure::msg("dropped by the unwinding"));
        panic!("the first panic");
    });
    assert!(unwound.is_err());
    assert_eq!(*calls.lock().unwrap(), 2);
    println!("child: both reported");
}

// Before: the payload of the hook's panic was dropped at the end of the report, so its panic
// came out of the Deferred's drop (and aborted the child while the first panic unwound).
#[test]
fn a_hook_panic_whose_payload_panics_on_drop_stays_in_the_report() {
    if in_a_child() {
        return;
    }
    let stdout = run_child(
        "a_hook_panic_whose_payload_panics_on_drop_stays_in_the_report_child",
        false,
    );
    assert!(stdout.contains("child: both reported"), "{stdout}");
}

#[test]
fn a_hook_replaced_by_restore_may_report_as_it_drops_child() {
    if !is_child("a_hook_replaced_by_restore_may_report_as_it_drops_child") {
        return;
    }
    let seen = record_unhandled();
    // A hook that holds a chain with a failure nobody handles: dropping the hook reports it.
    let held = Deferred::<u32>::fail(Failure::msg("held by the replaced hook"));
    let recorder = set_unhandled_hook(move |_: &Failure| {
        let _ = &held;
    });
    restore_unhandled_hook(recorder);
    assert_eq!(
        *seen.lock().unwrap(),
        vec!["held by the replaced hook".to_string()]
    );
    restore_unhandled_hook(None);
    println!("child: the hook's failure reported");
}

// Before: `restore_unhandled_hook` dropped the hook it replaced while it held the hook's lock
// for writing; the report of the failure the hook held waited for that lock to read the hook,
// and the child hung.
#[test]
fn a_hook_replaced_by_restore_may_report_as_it_drops() {
    if in_a_child() {
        return;
    }
    let stdout = run_child(
        "a_hook_replaced_by_restore_may_report_as_it_drops_child",
        false,
    );
    assert!(
        stdout.contains("child: the hook's failure reported"),
        "{stdout}"
    );
}

/// An error whose `Drop` panics, as a failure's error and as a chain's own error type.
#[derive(Debug)]
struct DropPanics;

impl std::fmt::Display for DropPanics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an error whose drop panics")
    }
}

impl std::error::Error for DropPanics {}

impl From<Failure> for DropPanics {
    fn from(_: Failure) -> DropPanics {
        DropPanics
    }
}

impl Drop for DropPanics {
    fn drop(&mut self) {
        panic!("the error's drop panicked");
    }
}

#[test]
fn an_error_whose_drop_panics_is_reported_and_dropped_in_the_report_child() {
    if !is_child("an_error_whose_drop_panics_is_reported_and_dropped_in_the_report_child") {
        return;
    }
    let seen = record_unhandled();
    let dropped = std::panic::catch_unwind(|| {
        drop(Deferred::<u32>::fail(Failure::new(DropPanics)));
    });
    assert!(
        dropped.is_ok(),
        "a failure's error's drop panicked out of the report"
    );
    let dropped = std::panic::catch_unwind(|| {
        drop(LocalDeferred::<u32, DropPanics>::fail(DropPanics));
    });
    assert!(
        dropped.is_ok(),
        "a chain's error's drop panicked out of the report"
    );
    let unwound = std::panic::catch_unwind(|| {
        let _abandoned = Deferred::<u32, DropPanics>::fail(DropPanics);
        panic!("the first panic");
    });
    assert!(unwound.is_err());
    // Each error is reported, then the panic of its drop is.
    let drop_panicked = "the drop of a reported error panicked: the error's drop panicked";
    let error_of_its_type = "an error of type `reporting::DropPanics` (use `Failure` as the error \
                             type to see its message)";
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "an error whose drop panics",
            drop_panicked,
            error_of_its_type,
            drop_panicked,
            error_of_its_type,
            drop_panicked,
        ]
    );
    println!("child: each reported once");
}

// Before: the report dropped the failure (or the chain's own error) once the hook had seen it,
// and the error's `Drop` panicked out of the Deferred's drop (while the first panic unwound, an
// abort).
#[test]
fn an_error_whose_drop_panics_is_reported_and_dropped_in_the_report() {
    if in_a_child() {
        return;
    }
    let stdout = run_child(
        "an_error_whose_drop_panics_is_reported_and_dropped_in_the_report_child",
        false,
    );
    assert!(stdout.contains("child: each reported once"), "{stdout}");
}

#[test]
fn a_forgotten_capture_passes_its_failures_on_at_thread_exit_child() {
    if !is_child("a_forgotten_capture_passes_its_failures_on_at_thread_exit_child") {
        return;
    }
    let seen = record_unhandled();
    std::thread::spawn(|| {
        std::mem::forget(deferred_core::UnhandledCapture::start());
        drop(Deferred::<u32>::fail(Failure::msg(
            "held by a forgotten capture",
        )));
    })
    .join()
    .unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        vec!["held by a forgotten capture".to_string()]
    );
    println!("child: passed on at the thread's exit");
}

// Before: the thread's stack of captures was dropped at its exit with what the forgotten
// capture held: the failure was never reported.
#[test]
fn a_forgotten_capture_passes_its_failures_on_at_thread_exit() {
    if in_a_child() {
        return;
    }
    let stdout = run_child(
        "a_forgotten_capture_passes_its_failures_on_at_thread_exit_child",
        false,
    );
    assert!(
        stdout.contains("child: passed on at the thread's exit"),
        "{stdout}"
    );
}

#[test]
fn a_report_from_the_panic_hook_to_a_closed_stderr_does_not_abort_child() {
    if !is_child("a_report_from_the_panic_hook_to_a_closed_stderr_does_not_abort_child") {
        return;
    }
    wait_for_stdin_to_close();
    // The user's panic hook drops a chain with a failure nobody handled: its report is made
    // while the hook runs, where a second panic aborts the process.
    std::panic::set_hook(Box::new(|_| {
        drop(Deferred::<u32>::fail(Failure::msg(
            "dropped by the panic hook",
        )));
    }));
    let unwound = std::panic::catch_unwind(|| panic!("the panic the hook sees"));
    assert!(unwound.is_err());
    let _ = std::panic::take_hook();
    println!("child: the hook's report made");
}

// The report's write to the closed pipe must not panic: a panic that starts inside a panic hook
// aborts the process, caught or not.
#[test]
fn a_report_from_the_panic_hook_to_a_closed_stderr_does_not_abort() {
    if in_a_child() {
        return;
    }
    let stdout = run_child(
        "a_report_from_the_panic_hook_to_a_closed_stderr_does_not_abort_child",
        true,
    );
    assert!(stdout.contains("child: the hook's report made"), "{stdout}");
}
