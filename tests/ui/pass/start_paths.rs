// Starts written as paths: a Deferred, a constant, a `Result`, a function pointer of another shape.
use deferred::{Deferred, chain};

const START: u32 = 4;
fn add(x: u32) -> u32 {
    x + 1
}

fn main() {
    let d = Deferred::<u32>::succeed(1);
    let a = chain! { d then |x| x + 1 };
    let b = chain! { START then |x| x + 1 };
    let r: Result<u32, deferred::Failure> = Ok(3);
    let c = chain! { r then add };
    let f = add;
    let e = chain! { f then |f| f(1) };
    assert_eq!(a.wait().unwrap(), 2);
    assert_eq!(b.wait().unwrap(), 5);
    assert_eq!(c.wait().unwrap(), 4);
    assert_eq!(e.wait().unwrap(), 2);
}
