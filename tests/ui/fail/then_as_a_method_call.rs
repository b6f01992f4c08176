use deferred::{Deferred, chain};

fn fetch(id: u32) -> Deferred<u32> {
    Deferred::succeed(id)
}

fn main() {
    // A JavaScript promise chain, written as it is in JavaScript.
    let d = chain! {
        fetch(1).then(|id| id * 10).catch(|e| 0)
    };
    let _ = d.wait();
}
