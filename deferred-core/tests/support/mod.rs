//! Shared by the tests of the helpers written once for both kinds: counting the unhandled
//! failures a test caused, a small stack, and a canceller that counts; and by the loops' tests,
//! many threads posting to one inbox at once ([`posters`]).
//!
//! The unhandled-error hook is global and tests run in parallel, so the hook is installed once
//! per test binary and records every report; each test puts a marker unique to it in its failure
//! messages and counts only the reports that mention it.

#![allow(dead_code)]

pub mod posters;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once, PoisonError};

use deferred_core::{Failure, set_unhandled_hook};

static REPORTED: Mutex<Vec<String>> = Mutex::new(Vec::new());
static INSTALL: Once = Once::new();

/// The message in a `catch_unwind`'s payload (a `String` or a `&str`; empty for another).
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

/// How many unhandled failures mentioning `marker` have been reported so far. Call it before the
/// test's work too: the first call installs the recording hook.
pub fn unhandled(marker: &str) -> usize {
    INSTALL.call_once(|| {
        let _default = set_unhandled_hook(|failure: &Failure| {
            REPORTED
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(format!("{failure:#}"));
        });
    });
    REPORTED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .filter(|report| report.contains(marker))
        .count()
}

/// Runs `f` on a thread with a 256 KiB stack: what recursed per item would overflow.
pub fn on_small_stack<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    std::thread::Builder::new()
        .name("small-stack".into())
        .stack_size(256 * 1024)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("the small-stack thread panicked")
}

/// A counter shared with steps and cancellers (an `Arc` of an atomic: it fits both kinds).
#[derive(Clone, Debug, Default)]
pub struct Count(Arc<AtomicUsize>);

impl Count {
    pub fn new() -> Count {
        Count::default()
    }
    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Runs the test `test` of this binary in a child process, with `probe` set in its environment
/// (the test does its work only then), and gives its stderr once it has passed: for what a
/// test must read that the harness captures or that a process prints once (a warning on
/// stderr, a report with no subscriber).
pub fn stderr_of_child(test: &str, probe: &str) -> String {
    let exe = std::env::current_exe().expect("the test binary");
    let out = std::process::Command::new(exe)
        .args(["--exact", test, "--nocapture"])
        .env(probe, "1")
        .output()
        .expect("the child runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "the child failed:\n{stderr}");
    stderr
}
