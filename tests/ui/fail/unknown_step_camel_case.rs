use deferred::{Deferred, chain};

fn main() {
    // Twisted's name for it.
    let d = chain! {
        Deferred::<u32>::succeed(1)
        addCallback |x| x + 1
    };
    let _ = d.wait();
}
