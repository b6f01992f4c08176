// A chain whose error type is named (here by the function's return type) as one that cannot
// hold a failure: one error, at the start, with a message of its own, not one per step.
use deferred::{Deferred, chain};

fn parsed() -> Deferred<i32, String> {
    chain! { Ok(5) then |x| x + 1 then |x| x * 2 }
}

fn main() {
    let _ = parsed();
}
