//! A `let` statement before the start, as in a block: the chain starts from an expression.
use deferred::{Deferred, chain};

fn fetch(id: u32) -> Deferred<u32> {
    Deferred::succeed(id + 1)
}

fn main() {
    let d = chain! {
        let d = fetch(1);
        d
        then |x| x * 2
    };
    let _ = d.wait();
}
