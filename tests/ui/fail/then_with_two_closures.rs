//! Twisted's `addCallbacks(callback, errback)`: a step given a second closure, after a `,`.
use deferred::{Deferred, chain};

fn main() {
    let d = chain! {
        Deferred::<u32>::succeed(1)
        then |x| x + 1, |_failure| 0
        then |y| y * 2
    };
    let _ = d.wait();
}
