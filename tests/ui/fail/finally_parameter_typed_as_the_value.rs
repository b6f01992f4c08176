//! Twisted's `addBoth`, or a `then`, in mind: a `finally` whose parameter is typed as the value.
//! It is lent the outcome, a `&Result`: one error, at the type.
use deferred::chain;

fn main() {
    let d = chain! {
        20u32
        then |n| n + 1
        finally |n: u32| println!("done: {n}")
    };
    let _ = d.wait();
}
