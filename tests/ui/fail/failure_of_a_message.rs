use deferred::{Deferred, Failure};

fn main() {
    let d = Deferred::<u32>::fail(Failure::new("no such user"));
    let _ = d.wait();
}
