//! Trace-level events of a chain's life (feature `tracing`): created, fired, each step run (a
//! `step` event, where the step was added, and `input_ok`: whether it was handed a value rather
//! than a failure; a step that a failure skips is run too, and says `input_ok=false`), a wait
//! on another chain, a cancel. Without the feature the macro expands to nothing; with it, a
//! disabled level costs tracing's usual check (a load and a branch: about 20 instructions a
//! step, BENCHMARKS.md), and the fields are computed only when the level is on; tracing's
//! static filter (`tracing/max_level_debug`) compiles them out. Target: `deferred`.
#![forbid(unsafe_code)]

/// A trace event of the chain's life, at `TRACE` level, target `deferred`.
macro_rules! chain_event {
    ($($event:tt)*) => {
        #[cfg(feature = "tracing")]
        ::tracing::trace!(target: "deferred", $($event)*);
    };
}

pub(crate) use chain_event;
