//! What a `finally` may be.
#![deny(warnings)]

use std::fmt::Debug;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use deferred::{Deferred, Failure, LocalDeferred, chain};

/// The outcome of the chains below, by another name.
type Outcome = Result<u32, Failure>;

static RUNS: AtomicUsize = AtomicUsize::new(0);

fn count() {
    RUNS.fetch_add(1, Ordering::SeqCst);
}

fn inspect(outcome: &Result<u32, Failure>) {
    assert!(outcome.is_ok());
}

fn main() {
    let seen = Arc::new(AtomicUsize::new(0));
    let seen2 = seen.clone();
    let d = chain! {
        1u32
        finally || count()
        finally count
        finally inspect
        finally |outcome| assert_eq!(*outcome.as_ref().unwrap(), 1)
        finally move |outcome: &Result<u32, Failure>| {
            seen2.store(*outcome.as_ref().unwrap() as usize, Ordering::SeqCst)
        }
        finally |_| Ok(())                                  // Ok: the outcome passes on
        finally || RUNS.fetch_add(0, Ordering::SeqCst)      // a side effect's value: dropped
        finally |_| RUNS.fetch_add(0, Ordering::SeqCst)     // the same, reading no outcome
        finally || Deferred::<_>::succeed("ignored")        // waited for, then passes on
        finally |n| if let Ok(n) = n { assert_eq!(n + 0, 1) } // the value, from the outcome
        finally |n| assert_eq!(n.as_ref().map(|n| n * 2).ok(), Some(2)) // methods of the outcome
        finally |outcome: &Outcome| assert!(outcome.is_ok())  // a type alias of the outcome
        finally |outcome: &_| assert!(outcome.is_ok())       // its type inferred
        finally |_: &Result<u32, Failure>| ()               // typed, and not read
        finally |outcome: &dyn Debug| assert_eq!(format!("{outcome:?}"), "Ok(1)") // coerced
        finally |outcome: &(dyn Debug + Send)| assert!(!format!("{outcome:?}").is_empty())
        finally |ref outcome: &Result<u32, Failure>| assert!(outcome.is_ok())
        finally move |outcome: &'_ Result<u32, Failure>| assert!(outcome.is_ok())
    };
    assert_eq!(d.wait().unwrap(), 1);
    assert_eq!(RUNS.load(Ordering::SeqCst), 2);
    assert_eq!(seen.load(Ordering::SeqCst), 1);

    // On the failure path too; a failing body replaces the outcome.
    let d = chain! {
        Deferred::<u32>::fail(Failure::msg("first"))
        finally |outcome| assert!(outcome.is_err())
        finally || Err::<(), _>(Failure::msg("second"))
        catch |f| { assert_eq!(f.to_string(), "second"); 0 }
    };
    assert_eq!(d.wait().unwrap(), 0);

    // Typed, on a chain of its own error type, of the local kind, in a nested chain, and after
    // the 32 steps of a segment.
    let d = chain! {
        Deferred::<u32, AppError>::succeed(1)
        finally |_: &Result<u32, AppError>| ()
        finally |outcome: &Result<u32, AppError>| assert!(outcome.is_ok())
    };
    assert_eq!(d.wait().unwrap(), 1);
    let d = chain! {
        LocalDeferred::<Rc<u32>>::succeed(Rc::new(1))
        finally |outcome: &Result<Rc<u32>, Failure>| assert_eq!(**outcome.as_ref().unwrap(), 1)
    };
    assert_eq!(*d.wait().unwrap(), 1);
    let d = chain! {
        1u32
        then |n| chain! { n finally |outcome: &Result<u32, Failure>| assert!(outcome.is_ok()) }
    };
    assert_eq!(d.wait().unwrap(), 1);
    let d = chain! {
        0u32
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        finally |outcome: &Outcome| assert_eq!(*outcome.as_ref().unwrap(), 35)
    };
    assert_eq!(d.wait().unwrap(), 35);
}

/// A chain's own error type.
#[derive(Debug)]
struct AppError;

impl From<Failure> for AppError {
    fn from(_: Failure) -> AppError {
        AppError
    }
}
