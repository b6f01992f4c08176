//! `Deferred::pending()` as the start: it gives the Deferred and its Resolver, a pair, which
//! the chain took as a plain value (a step that ignores it compiled, and dropped the Resolver).
use deferred::{Deferred, chain};

fn main() {
    let d = chain! {
        Deferred::<u32>::pending()
        then |_| "started"
    };
    let _ = d.wait();
}
