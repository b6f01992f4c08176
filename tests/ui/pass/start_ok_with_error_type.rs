//! A start `Ok(..)` or `Err(..)` whose error type is named, through each kind of step (the
//! bound the steps put on the chain's error type, `__private::ErrorType`).
#![deny(warnings)]

use deferred::{Deferred, Failure, LocalDeferred, chain};

#[derive(Debug)]
struct MyError;

impl From<Failure> for MyError {
    fn from(_: Failure) -> MyError {
        MyError
    }
}

fn tail() -> Deferred<i32> {
    chain! { Ok::<_, Failure>(5) then |x| x + 1 }
}

fn main() {
    let d = chain! { Ok::<_, Failure>(5) then |x| x + 1 finally || () };
    assert_eq!(d.wait().unwrap(), 6);
    let d: Deferred<i32, MyError> = chain! { Ok::<_, MyError>(5) };
    assert_eq!(d.wait().unwrap(), 5);
    let d = chain! {
        Err::<i32, _>(MyError)
        then |x| x + 1
        catch |_e| 0
        finally |outcome| assert!(outcome.is_ok())
    };
    assert_eq!(d.wait().unwrap(), 0);
    assert_eq!(tail().wait().unwrap(), 6);
    let d = chain! {
        LocalDeferred::<i32, MyError>::succeed(1)
        then |x| -> Result<i32, MyError> { Ok(x + 1) }
        then |x| x * 2
        catch |_e: MyError| 0
        finally || ()
    };
    assert_eq!(d.wait().unwrap(), 4);
}
