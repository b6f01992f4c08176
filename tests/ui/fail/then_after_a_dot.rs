//! Steps on lines of their own, with JavaScript's leading `.` (which made the start
//! `fetch(1).then | id | id * 10`, a field and two `|` operators): one error, at the first.
use deferred::{Deferred, chain};

fn fetch(id: u32) -> Deferred<u32> {
    Deferred::succeed(id + 1)
}

fn main() {
    let d = chain! {
        fetch(1)
        .then |id| id * 10
        .catch |_| 0
    };
    let _ = d.wait();
}
