//! What a `finally` may be.
#![deny(warnings)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use deferred::{Deferred, Failure, chain};

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
}
