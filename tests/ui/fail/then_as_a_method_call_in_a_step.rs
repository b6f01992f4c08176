use deferred::{Deferred, chain};

fn fetch(id: u32) -> Deferred<u32> {
    Deferred::succeed(id)
}

fn main() {
    // A nested JavaScript `.then` inside a step.
    let d = chain! {
        fetch(1)
        then |id| fetch(id + 1).then(|next| next * 10)
    };
    let _ = d.wait();
}
