use deferred::{Deferred, chain};

fn main() {
    let mut total = 0;
    let (start, resolver) = Deferred::<u32>::pending();
    let d = chain! {
        start
        then |x| {
            total += x;
            x
        }
        then |x| x * 2
    };
    resolver.callback(5);
    let _ = d.wait();
    println!("{total}");
}
