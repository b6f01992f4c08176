use deferred::{Deferred, chain};

fn main() {
    let mut total = 0;
    let (start, resolver) = Deferred::<u32>::pending();
    // A later step binds `total`: the first step's `total` is still the variable outside.
    let d = chain! {
        start
        then |x| {
            total += x;
            x
        }
        then |total| total * 2
    };
    resolver.callback(5);
    let _ = d.wait();
    println!("{total}");
}
