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

/// Where a link of the library's own is added to a chain, one that runs no step of the user's
/// (`chain!`'s link that carries a long run's names on to its next segment): the registry does
/// not list it among the steps to run, and no `step` event is emitted for it. One location, here,
/// compared by address.
#[inline(never)]
pub(crate) fn unlisted() -> &'static std::panic::Location<'static> {
    std::panic::Location::caller()
}

/// Whether `step` is [`unlisted`]'s.
#[cfg(any(feature = "registry", feature = "tracing"))]
#[inline]
pub(crate) fn is_unlisted(step: &'static std::panic::Location<'static>) -> bool {
    std::ptr::eq(step, unlisted())
}
