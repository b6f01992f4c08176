use deferred::{Deferred, chain};

fn main() {
    let (d, resolver) = Deferred::<u32>::pending();
    let fired = chain! { &d then |_| "d fired" };
    resolver.callback(1);
    let _ = fired.wait();
    let _ = d.wait();
}
