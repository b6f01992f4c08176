//! Method calls named `then` that are not JavaScript's, and error structs taken apart by a
//! `catch`: a typed one, or an untyped one on a chain whose error type is the struct.
#![deny(warnings)]

use std::fmt;

use deferred::{Deferred, Failure, chain};

#[derive(Debug)]
struct NotFound(String);

impl fmt::Display for NotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no such employee: {}", self.0)
    }
}

impl std::error::Error for NotFound {}

/// A chain's own error type, a tuple struct.
#[derive(Debug)]
struct Code(u32);

impl From<Failure> for Code {
    fn from(_: Failure) -> Code {
        Code(0)
    }
}

fn main() {
    // `bool::then` (its closure takes nothing), on the start and as a step's body.
    let d = chain! {
        (1 > 0).then(|| 5u32)
        then |n| n.unwrap_or(0) + 1
        then |n| (n > 5).then(|| n)
    };
    assert_eq!(d.wait().unwrap(), Some(6));

    // A typed `catch` may take its error apart.
    let d = chain! {
        Deferred::<usize>::fail(NotFound("bob".into()).into())
        catch |NotFound(name): NotFound| name.len()
    };
    assert_eq!(d.wait().unwrap(), 3);

    // An untyped `catch` takes the chain's own error type, which it may take apart.
    let start: Deferred<u32, Code> = Deferred::fail(Code(7));
    let d = chain! { start then |x| x + 1 catch |Code(code)| code };
    assert_eq!(d.wait().unwrap(), 7);
}
