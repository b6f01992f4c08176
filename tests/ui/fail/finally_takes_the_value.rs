//! Twisted's `addBoth`, or a `then`, in mind: a `finally` whose parameter is used as the value.
//! It is the outcome, a `&Result`, and the message says how to reach the value.
use deferred::chain;

fn main() {
    let d = chain! {
        20u32
        then |n| n + 1
        finally |n| println!("done: {}", n * 2)
    };
    let _ = d.wait();
}
