//! What a `then` may be, and what its body may give.
#![deny(warnings)]

use deferred::{Deferred, Failure, chain};

fn double(x: u32) -> u32 {
    x * 2
}

fn checked(x: u32) -> Result<u32, Failure> {
    x.checked_sub(1).ok_or_else(|| Failure::msg("underflow"))
}

fn later(x: u32) -> Deferred<u32> {
    Deferred::succeed(x + 100)
}

fn main() {
    let d = chain! {
        1u32
        then |x| x + 1                                // a plain value
        then |x| Ok(x * 10)                           // a Result
        then |x| Deferred::<_>::succeed(x + 1)        // a Deferred
        then double                                   // the path of a function
        then checked
        then later
        then move |x: u32| x                          // `move` and a typed parameter
        then |x| -> Result<u32, Failure> { Ok(x) }    // a return type
        then |x| {                                    // `return` means: this step gives
            if x > 1000 {
                return 0;
            }
            x
        }
        then |x| Ok(x.to_string().parse::<u32>()?)    // `?` converts into a Failure
        then |x| (x, x + 1)
        then |(a, b)| a + b                           // a pattern
        then |_| "done"
    };
    assert_eq!(d.wait().unwrap(), "done");

    let d = chain! { 41 then |x| x + 1 };
    assert_eq!(d.wait().unwrap(), 42);
}
