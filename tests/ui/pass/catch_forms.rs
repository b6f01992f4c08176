//! What a `catch` may be.
#![deny(warnings)]

use std::fmt;

use deferred::{Deferred, Failure, chain};

#[derive(Debug)]
struct Busy;

impl fmt::Display for Busy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("busy")
    }
}

impl std::error::Error for Busy {}

fn fallback(f: Failure) -> String {
    format!("fell back: {f}")
}

fn failing(error: Failure) -> Deferred<String> {
    Deferred::fail(error)
}

fn main() {
    // A typed catch traps its type; the catch-all after it takes the rest.
    let d = chain! {
        failing(Busy.into())
        catch |_: Busy| "trapped busy".to_owned()
        catch |f| format!("other: {f}")
    };
    assert_eq!(d.wait().unwrap(), "trapped busy");

    let d = chain! {
        failing(Failure::msg("disk"))
        catch |_: Busy| "trapped busy".to_owned()
        catch |f| format!("other: {f}")
    };
    assert_eq!(d.wait().unwrap(), "other: disk");

    // `catch |f: Failure|` takes every failure; so does a function.
    let d = chain! { failing(Failure::msg("a")) catch |f: Failure| f.to_string() };
    assert_eq!(d.wait().unwrap(), "a");
    let d = chain! { failing(Failure::msg("b")) catch fallback };
    assert_eq!(d.wait().unwrap(), "fell back: b");

    // A catch may give a Result (Err passes a failure on) or a Deferred.
    let d = chain! {
        failing(Failure::msg("c"))
        catch |f| Err(Failure::msg(format!("wrapped {f}")))
        then |s: String| s.len()
        catch |f| Deferred::<_>::succeed(f.to_string().len() * 100)
    };
    assert_eq!(d.wait().unwrap(), 900);

    // A success skips every catch.
    let d = chain! { 5 catch |_| 0 then |x| x + 1 };
    assert_eq!(d.wait().unwrap(), 6);
}
