use deferred::{Deferred, Failure};

fn main() {
    let d = Deferred::<u32>::fail(Failure::msg("no route"));
    let d = d.add_errback(|_failure| 0);
    let _ = d.wait();
}
