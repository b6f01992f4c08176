use deferred::{Deferred, chain};

fn main() {
    let (start, _resolver) = Deferred::<u32>::pending();
    let d = chain! {
        start
        then |x| x + 1
        timeout(1000)
        then |x| x * 2
    };
    drop(d);
}
