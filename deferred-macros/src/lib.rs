//! The `chain!` macro of the `deferred` crate (in progress).
