//! maybe_deferred: Twisted's test_defer.py `maybeDeferred` tests, plus panics.

use std::sync::Arc;

use deferred::{Deferred, Failure, Panicked, maybe_deferred};

#[derive(Debug)]
struct ValueError {
    message: &'static str,
    id: u32,
}

impl std::fmt::Display for ValueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message)
    }
}

impl std::error::Error for ValueError {}

// Twisted: DeferredTests.test_maybeDeferredSync
#[test]
fn a_value_becomes_a_fired_success_with_that_very_value() {
    let obj = Arc::new("object");
    let same = obj.clone();
    let d = maybe_deferred(move || Ok(same));
    assert!(d.is_fired());
    assert!(Arc::ptr_eq(&d.wait().unwrap(), &obj));
}

// Twisted: DeferredTests.test_maybeDeferredSyncWithArgs
#[test]
fn arguments_are_captured_by_the_closure() {
    let plus_five = |x: u32| Ok(x + 5);
    let d = maybe_deferred(move || plus_five(10));
    assert_eq!(d.wait().unwrap(), 15);
}

// Twisted: DeferredTests.test_maybeDeferredSyncException
#[test]
fn an_error_becomes_a_fired_failure() {
    let d = maybe_deferred(|| -> Result<u32, Failure> {
        Err(ValueError {
            message: "that value is unacceptable",
            id: 80,
        })?
    });
    let d = d.add_callback(|_| -> Result<u32, Failure> { panic!("the callback must not run") });
    let failure = d.wait().unwrap_err();
    assert_eq!(failure.to_string(), "that value is unacceptable");
}

// Twisted: DeferredTests.test_maybeDeferredSyncFailure
#[test]
fn a_returned_failure_is_that_very_failure() {
    let d = maybe_deferred(|| -> Result<u32, Failure> {
        Err(Failure::new(ValueError {
            message: "returned",
            id: 81,
        }))
    });
    let failure = d.wait().unwrap_err();
    assert_eq!(failure.downcast_ref::<ValueError>().unwrap().id, 81);
    let origin = failure
        .origin()
        .expect("the maybe_deferred call is its origin");
    assert_eq!(origin.file(), file!());
}

// Twisted: DeferredTests.test_maybeDeferredAsync
#[test]
fn a_returned_pending_deferred_is_handed_back() {
    let (d1, resolver) = Deferred::<&str>::pending();
    let d = maybe_deferred(move || d1);
    assert!(!d.is_fired());
    resolver.callback("Success");
    assert_eq!(d.wait().unwrap(), "Success");
}

// Twisted: DeferredTests.test_maybeDeferredAsyncError
#[test]
fn a_returned_deferred_that_fails_fails() {
    let (d1, resolver) = Deferred::<u32>::pending();
    let d = maybe_deferred(move || d1);
    resolver.errback(Failure::msg("RuntimeError"));
    assert!(d.is_fired());
    assert_eq!(d.wait().unwrap_err().to_string(), "RuntimeError");
}

// (Twisted's test_maybeDeferredCoroutine* have no counterpart: a Rust future becomes a Deferred
// through the tokio glue, `Deferred::from_future`.)

#[test]
fn a_panic_becomes_a_failure_that_says_where() {
    let line = line!() + 1;
    let d = maybe_deferred(|| -> Result<u32, Failure> { panic!("maybe panicked") });
    let failure = d.wait().unwrap_err();
    assert_eq!(
        failure.downcast_ref::<Panicked>().unwrap().message(),
        "maybe panicked"
    );
    let origin = failure.origin().unwrap();
    assert_eq!((origin.file(), origin.line()), (file!(), line));
}

#[test]
fn a_fired_deferred_returned_is_passed_on() {
    let d = maybe_deferred(|| Deferred::<u32>::succeed(3)).add_callback(|x| Ok(x + 1));
    assert_eq!(d.wait().unwrap(), 4);
}

/// `maybe_deferred` hands a Deferred `f` returns back "as it is (pending or not)", and a fired
/// queue `get` dropped unread gives its item back to the queue: handed back through
/// `maybe_deferred`, it still does (its result was taken out of the get's chain, and lost).
#[test]
fn a_fired_get_handed_back_and_dropped_loses_no_item() {
    let queue = deferred::DeferredQueue::<u32>::new();
    queue.put(1).unwrap();
    let got = maybe_deferred(|| queue.get());
    assert!(got.is_fired());
    drop(got);
    assert_eq!(
        queue.len(),
        1,
        "the item went with the Deferred maybe_deferred made"
    );

    let queue = deferred::local::DeferredQueue::<u32>::new();
    queue.put(1).unwrap();
    let got = deferred::local::maybe_deferred(|| queue.get());
    assert!(got.is_fired());
    drop(got);
    assert_eq!(
        queue.len(),
        1,
        "the item went with the Deferred maybe_deferred made"
    );
}
