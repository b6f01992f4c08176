// A start `Ok(..)` whose error type nothing states (no annotation, no use that decides it): one
// error, at the `Ok`, not one more at each step listing the types that implement
// `From<Failure>`.
use deferred::chain;

fn main() {
    let d = chain! { Ok(5) then |x| x + 1 finally || () };
    let _ = d;
}

#[allow(dead_code)]
fn waited() {
    let v = chain! { Ok(5) then |x| x + 1 catch |_e| 0 }.wait();
    let _ = v;
}
