//! A step whose parameter is named in a macro that does not use it as a value: its tokens may
//! mean anything (a field's name, `stringify!`'s text, a binding the macro writes), so neither
//! the `finally |x|` rule (the outcome used as the value) nor the rule of a `then` ending in
//! `;` before a step that uses what it takes reads them as a use.
#![allow(unused_variables)]

use deferred::{Deferred, Failure, chain};

/// A logging macro with tracing's field syntax: `name.sub = value` names a field.
macro_rules! fields {
    ($($($key:ident).+ = $value:expr),* $(,)?) => {{
        let mut out = Vec::<String>::new();
        $(out.push(format!("{}={:?}", stringify!($($key).+), $value));)*
        out
    }};
}

/// Binds `$outcome` again, as the value or 0.
macro_rules! value_or_zero {
    ($outcome:ident) => {
        let $outcome = match $outcome {
            Ok(value) => *value,
            Err(_) => 0,
        };
    };
}

fn main() {
    let d = chain! {
        Deferred::<u32>::succeed(1)
        finally |outcome| assert_eq!(fields!(outcome.ok = outcome.is_ok()), ["outcome.ok=true"])
        finally |o| assert_eq!(stringify!(o + 1), "o + 1")
        finally |o| {
            value_or_zero!(o);
            assert_eq!(o + 1, 2)
        }
        finally |o| assert_eq!(format!("{}", o.as_ref().map(|n| n + 1).unwrap()), "2")
    };
    assert_eq!(d.wait().unwrap(), 1);

    let d = chain! {
        Deferred::<u32>::succeed(1)
        then |x| { x.count_ones(); }
        then |n| fields!(n.unit = n)
        then |v| { v.len(); }
        then |n| stringify!(n + 1)
    };
    assert_eq!(d.wait().unwrap(), "n + 1");

    let d: Deferred<u32, Failure> = chain! {
        Ok::<_, Failure>(1)
        finally |o| println!("{}", stringify!(o.0))
    };
    assert_eq!(d.wait().unwrap(), 1);
}
