//! Twisted's `addBoth` habit: a `finally` meant to replace a failure with a default. A
//! `finally` passes the outcome on and drops its body's value: a warning (an error here, under
//! `deny(warnings)`) says so, and to write `catch |_| 0`.
#![deny(warnings)]

use deferred::{Deferred, Failure, chain};

fn main() {
    let d = chain! {
        Deferred::<u32>::fail(Failure::msg("db down"))
        then |n| n * 2
        finally |outcome| match outcome {
            Ok(n) => *n,
            Err(_) => 0,
        }
    };
    drop(d.wait());
}
