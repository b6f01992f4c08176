use deferred::{chain, Deferred};

fn main() {
    let (d, resolver) = Deferred::<u32>::pending();
    let d = chain! { d then |x| x + 1 };
    resolver.callback(1);
    resolver.callback(2);
    let _ = d.wait();
}
