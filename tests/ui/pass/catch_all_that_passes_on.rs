//! A catch-all that passes failures on may be followed by more `catch`es.
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

fn main() {
    let logged = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = logged.clone();
    let d = chain! {
        Deferred::<u32>::fail(Busy.into())
        catch move |f| { log.lock().unwrap().push(f.to_string()); Err(f) }
        catch |_: Busy| 1
        catch |f: Failure| { drop(f); 2 }
    };
    assert_eq!(d.wait().unwrap(), 1);
    assert_eq!(*logged.lock().unwrap(), ["busy"]);
}
