//! What a chain may start from, and chains with their own error type.
#![deny(warnings)]

use std::fmt;

use deferred::{Deferred, Failure, chain};

#[derive(Debug)]
enum AppError {
    Lost,
    Failed(String),
}

impl From<Failure> for AppError {
    fn from(f: Failure) -> AppError {
        AppError::Failed(f.to_string())
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

mod mine {
    pub struct Deferred;

    impl Deferred {
        pub fn pending() -> u32 {
            6
        }
    }
}

fn main() {
    // A value, a Result, a Deferred, a pending Deferred.
    assert_eq!(chain! { 1 then |x| x + 1 }.wait().unwrap(), 2);
    let ok: Result<u32, Failure> = Ok(2);
    assert_eq!(chain! { ok then |x| x + 1 }.wait().unwrap(), 3);
    assert_eq!(chain! { Deferred::<u32>::succeed(3) then |x| x + 1 }.wait().unwrap(), 4);
    let (d, resolver) = Deferred::<u32>::pending();
    let d = chain! { d then |x| x + 1 then |x| x * 2 };
    assert!(!d.is_fired());
    resolver.callback(4);
    assert_eq!(d.wait().unwrap(), 10);
    // No steps at all: the start, as a Deferred.
    assert_eq!(chain! { 5 }.wait().unwrap(), 5);
    // A type of one's own named `Deferred`, whose `pending()` gives no pair: a value.
    assert_eq!(chain! { mine::Deferred::pending() then |x| x + 1 }.wait().unwrap(), 7);

    // A chain whose error type is AppError: `catch |e: AppError|` and `catch |e|` take it.
    let d = chain! {
        Deferred::<u32, AppError>::fail(AppError::Lost)
        then |x| Ok(x + 1)
        catch |e: AppError| match e { AppError::Lost => Ok(0), other => Err(other) }
    };
    assert_eq!(d.wait().unwrap(), 0);
    let d = chain! {
        Deferred::<u32, AppError>::succeed(1)
        then |_| -> Result<u32, AppError> { Err(AppError::Lost) }
        catch |e| e.to_string().len() as u32
    };
    assert_eq!(d.wait().unwrap(), 4);
}
