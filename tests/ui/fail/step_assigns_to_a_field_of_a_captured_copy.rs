use deferred::{Deferred, chain};

#[derive(Clone, Copy, Debug, Default)]
struct Stats {
    count: u32,
    total: u64,
}

fn main() {
    let mut stats = Stats::default();
    let d = chain! {
        Deferred::<u64>::succeed(5)
        then |x| {
            stats.count += 1;
            stats.total += x;
            x
        }
    };
    d.wait().unwrap();
    println!("{stats:?}");
}
