//! Shared by the `helpers_*` tests: counting the unhandled failures a test caused.
//!
//! The unhandled-error hook is global and tests run in parallel, so the hook is installed once
//! per test binary and records every report; each test puts a marker unique to it in its failure
//! messages and counts only the reports that mention it.

use std::sync::{Mutex, Once, PoisonError};

use deferred::{Failure, set_unhandled_hook};

static REPORTED: Mutex<Vec<String>> = Mutex::new(Vec::new());
static INSTALL: Once = Once::new();

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
