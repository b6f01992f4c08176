//! A step from another crate, for the benchmarks: a `pub fn` as a user's library would export.

use std::hint::black_box;

use deferred::Failure;

/// `+1` on an opaque value, as `common::inc`. `#[inline(never)]`: rustc inlines a function this
/// small across crates (a leaf function is inlinable without `#[inline]`); this one stands for
/// a step too large for that, which the calling crate sees only as a symbol (it cannot know
/// that the step always succeeds either).
#[inline(never)]
pub fn ok_inc(x: u64) -> Result<u64, Failure> {
    Ok(black_box(x) + 1)
}
