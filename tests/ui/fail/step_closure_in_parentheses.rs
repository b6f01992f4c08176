use deferred::{Deferred, chain};

fn main() {
    // As a method call would take it.
    let d = chain! {
        Deferred::<u32>::succeed(1)
        then(|x| x + 1)
    };
    let _ = d.wait();
}
