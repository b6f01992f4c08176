//! Shared by the `helpers_*` tests: counting the unhandled failures a test caused.
//!
//! Each test collects the failures reported on its own thread with a capture
//! (`deferred::UnhandledCapture`), so it never sees another test's, though tests run in
//! parallel; each report must also mention the test's marker (no stray failure goes unnoticed).

use std::cell::Cell;

use deferred::UnhandledCapture;

/// The unhandled failures reported on this test's thread since `start`.
pub struct Unhandled {
    capture: UnhandledCapture,
    marker: &'static str,
    count: Cell<usize>,
}

impl Unhandled {
    /// Starts counting; every failure reported from now on must mention `marker`.
    pub fn start(marker: &'static str) -> Unhandled {
        Unhandled {
            capture: UnhandledCapture::start(),
            marker,
            count: Cell::new(0),
        }
    }

    /// How many unhandled failures have been reported on this thread so far.
    pub fn count(&self) -> usize {
        for failure in self.capture.take() {
            let report = format!("{failure:#}");
            assert!(
                report.contains(self.marker),
                "an unhandled failure without the marker `{}`: {failure:?}",
                self.marker
            );
            self.count.set(self.count.get() + 1);
        }
        self.count.get()
    }
}
