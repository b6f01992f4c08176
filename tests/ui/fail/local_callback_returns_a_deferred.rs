use deferred::{Deferred, LocalDeferred};

fn main() {
    let d = LocalDeferred::<u32>::succeed(1);
    let d = d.add_callback(|x| Deferred::<u32>::succeed(x + 1));
    let _ = d.wait();
}
