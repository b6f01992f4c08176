use deferred::{Deferred, LocalDeferred, join};

fn main() {
    let a = Deferred::<u32>::succeed(1);
    let b = LocalDeferred::<String>::succeed("x".into());
    let both = join((a, b));
    let _ = both.wait();
}
