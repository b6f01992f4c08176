use deferred::{Deferred, chain};

fn lookup(id: u32) -> Deferred<u32> {
    Deferred::succeed(id)
}

fn main() {
    // `start` is no keyword: the chain begins with the expression itself.
    let _ = chain! {
        start lookup(7)
        then |x| x + 1
    };
}
