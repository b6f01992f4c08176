use deferred::{Deferred, LocalDeferred, chain};

fn main() {
    let d = chain! {
        LocalDeferred::<u32>::succeed(1)
        then |x| Deferred::<u32>::succeed(x + 1)
    };
    let _ = d.wait();
}
