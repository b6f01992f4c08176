use deferred::{LocalDeferred, chain};

fn main() {
    let d = chain! {
        1
        then |x| LocalDeferred::<u32>::succeed(x + 1)
    };
    let _ = d.wait();
}
