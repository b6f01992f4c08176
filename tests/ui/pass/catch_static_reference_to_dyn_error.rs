//! A `catch` of a `'static` reference to a trait object: a failure made from such a reference
//! (a static error) holds that type, and the catch traps it.
#![deny(warnings)]

use std::error::Error;
use std::fmt;

use deferred::{Deferred, Failure, chain};

#[derive(Debug)]
struct Refused;

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection refused")
    }
}

impl Error for Refused {}

static REFUSED: Refused = Refused;

fn main() {
    let error: &'static (dyn Error + Send + Sync) = &REFUSED;
    let d = chain! {
        Deferred::<usize>::fail(Failure::new(error))
        catch |e: &'static (dyn Error + Send + Sync)| e.to_string().len()
    };
    assert_eq!(d.wait().unwrap(), "connection refused".len());
}
