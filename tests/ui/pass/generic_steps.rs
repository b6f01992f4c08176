//! Generic code over a chain's values: a type parameter a `Deferred` carries is bounded with
//! `Sendable` (which is `Send + 'static`, what the compiler's message on a missing bound
//! suggests) or with `Send + 'static` itself.
#![deny(warnings)]

use std::fmt::Display;

use deferred::{Deferred, Sendable, chain};

fn describe<T: Display + Sendable>(d: Deferred<T>) -> Deferred<String> {
    chain! {
        d
        then |x| format!("value: {x}")
    }
}

fn twice<T: Clone + Send + 'static>(d: Deferred<T>) -> Deferred<(T, T)> {
    chain! {
        d
        then |x| (x.clone(), x)
    }
}

fn main() {
    assert_eq!(describe(Deferred::succeed(1_u32)).wait().unwrap(), "value: 1");
    assert_eq!(twice(Deferred::succeed('a')).wait().unwrap(), ('a', 'a'));
}
