// `Deferred::fail("..")` makes a Deferred whose error type is `&str`; waiting on it says that a
// chain's error type must be `From<Failure>` (and to use `Failure`), at the call.
use deferred::Deferred;

fn main() {
    let d = Deferred::<u32, _>::fail("not found");
    let _ = d.wait();
}
