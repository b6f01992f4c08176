use deferred::{Deferred, join};

fn main() {
    let a = Deferred::<u32>::succeed(1);
    let b = Deferred::<u32>::succeed(2);
    let both = join(vec![a, b]);
    let _ = both.wait();
}
