// The body of the port of Twisted's Deferred tests, written once and compiled for each kind of
// Deferred: included (`include!`) by tests/twisted_core.rs (the `Send` kind, `Deferred`) and
// tests/twisted_core_local.rs (the one-thread kind, `LocalDeferred`). It is not a test target of
// its own. The including file provides a module `kind` with the names used here for the kind
// under test: `Deferred`, `Resolver`, and `Value` (the bound on a kind's values and steps).
// Nothing here fires, waits on or cancels a chain from another thread; the scenarios that do
// are in tests/twisted_core.rs only.
//
// A Rust port of the core scenarios of Twisted's `test_defer.py` (and a few of
// `test_inlinecb.py` / `test_failure.py`), against the typed API of `deferred`.
//
// Each test names the Twisted test it ports. Where Twisted's dynamic behaviour has no typed
// equivalent, the test is adapted (and says how) or skipped (listed at the end of this file).
//
// Conventions of the port:
// - Twisted's `callbackArgs` / `callbackKeywords` are closure captures.
// - Twisted's "raise in a callback" is `Err(..)` (returned) or a panic; both are covered.
// - Twisted's "return a Failure" is returning `Err(failure)`.
// - Identity of exception objects (`is`) is checked through a unique id carried by the error.
// - A Deferred is consumed by each `add_*` call, so Twisted assertions about "the old Deferred
//   after its result was moved out" (it holds `None`) have no equivalent and are left out.

use std::error::Error;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use deferred::{Cancelled, Failure, NoUnhandled, Panicked, UnhandledCapture, capture_unhandled};
use kind::{Deferred, Resolver, Value};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

type Log<T> = Arc<Mutex<Vec<T>>>;

fn log<T>() -> Log<T> {
    Arc::new(Mutex::new(Vec::new()))
}

fn snapshot<T: Clone>(log: &Log<T>) -> Vec<T> {
    log.lock().unwrap().clone()
}

fn push<T>(log: &Log<T>, value: T) {
    log.lock().unwrap().push(value);
}

fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

/// Twisted's `GenericError` / a stand-in for `RuntimeError`, `ZeroDivisionError`...: a message
/// and a unique id, so tests can check that a failure carries *the same* error object.
#[derive(Debug)]
struct GenericError {
    message: String,
    id: usize,
}

impl GenericError {
    fn new(message: &str) -> GenericError {
        GenericError {
            message: message.to_owned(),
            id: NEXT_ID.fetch_add(1, SeqCst),
        }
    }
}

impl fmt::Display for GenericError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error for GenericError {}

/// A second error type, for `trap` mismatches.
#[derive(Debug)]
struct OtherError;

impl fmt::Display for OtherError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("other error")
    }
}

impl Error for OtherError {}

fn id_of(failure: &Failure) -> usize {
    failure
        .downcast_ref::<GenericError>()
        .expect("a GenericError")
        .id
}

/// The messages of `failures` (unhandled failures collected by a capture).
fn messages(failures: &[Failure]) -> Vec<String> {
    failures.iter().map(|f| f.to_string()).collect()
}

/// A Deferred whose canceller can fire it: the canceller takes the Resolver out of a slot.
fn with_firing_canceller<T: Value + 'static>(
    fire: impl FnOnce(Resolver<T>) + Value + 'static,
    calls: Arc<AtomicUsize>,
) -> Deferred<T> {
    let slot: Arc<Mutex<Option<Resolver<T>>>> = Arc::new(Mutex::new(None));
    let in_canceller = slot.clone();
    let (d, r) = Deferred::<T>::with_canceller(move || {
        calls.fetch_add(1, SeqCst);
        let resolver = in_canceller.lock().unwrap().take();
        if let Some(resolver) = resolver {
            fire(resolver);
        }
    });
    *slot.lock().unwrap() = Some(r);
    d
}

// ---------------------------------------------------------------------------------------------
// A. Basic callback, errback and ordering
// ---------------------------------------------------------------------------------------------

// Twisted: test_defer.DeferredTests.testCallbackWithoutArgs
#[test]
fn callback_without_args() {
    let seen = log();
    let errbacks = counter();
    let (d, r) = Deferred::<&str>::pending();
    let (s, e) = (seen.clone(), errbacks.clone());
    let d = d.add_callbacks(
        move |v| {
            push(&s, v);
            Ok(())
        },
        move |f: Failure| {
            e.fetch_add(1, SeqCst);
            Err(f)
        },
    );
    assert!(snapshot(&seen).is_empty(), "nothing runs before firing");
    r.callback("hello");
    assert_eq!(snapshot(&seen), ["hello"]);
    assert_eq!(errbacks.load(SeqCst), 0);
    d.wait().unwrap();
}

// Twisted: test_defer.DeferredTests.testCallbackWithArgs
// (adapted: extra positional args are closure captures)
#[test]
fn callback_with_args() {
    let seen = log();
    let (d, r) = Deferred::<&str>::pending();
    let s = seen.clone();
    let world = "world";
    let d = d.add_callback(move |hello| {
        push(&s, (hello, world));
        Ok(())
    });
    r.callback("hello");
    assert_eq!(snapshot(&seen), [("hello", "world")]);
    d.wait().unwrap();
}

// Twisted: test_defer.DeferredTests.testCallbackWithKwArgs
// (adapted: keyword args are captured struct fields)
#[test]
fn callback_with_kw_args() {
    struct Kw {
        world: &'static str,
    }
    let kw = Kw { world: "world" };
    let (d, r) = Deferred::<&str>::pending();
    let d = d.add_callback(move |hello| Ok(format!("{hello} {}", kw.world)));
    r.callback("hello");
    assert_eq!(d.wait().unwrap(), "hello world");
}

// Twisted: test_defer.DeferredTests.testTwoCallbacks
#[test]
fn two_callbacks() {
    let seen = log();
    let (d, r) = Deferred::<&str>::pending();
    let (s1, s2) = (seen.clone(), seen.clone());
    let d = d
        .add_callback(move |v| {
            push(&s1, ("cb1", v));
            Ok(v)
        })
        .add_callback(move |v| {
            push(&s2, ("cb2", v));
            Ok(())
        });
    r.callback("hello");
    assert_eq!(snapshot(&seen), [("cb1", "hello"), ("cb2", "hello")]);
    d.wait().unwrap();
}

// Twisted: test_defer.DeferredTests.test_addCallbacksNoneErrback
// (adapted: an absent errback half is one that passes the failure on)
#[test]
fn add_callbacks_none_errback() {
    let callbacks = counter();
    let errbacks = log();
    let (d, r) = Deferred::<u32>::pending();
    let c = callbacks.clone();
    let e = errbacks.clone();
    let d = d
        .add_callbacks(
            move |v| {
                c.fetch_add(1, SeqCst);
                Ok(v)
            },
            Err,
        )
        .add_errback(move |f: Failure| {
            push(&e, id_of(&f));
            Ok(0)
        });
    let error = GenericError::new("oopsie");
    let id = error.id;
    r.errback(Failure::new(error));
    assert_eq!(callbacks.load(SeqCst), 0);
    assert_eq!(
        snapshot(&errbacks),
        [id],
        "the errback sees that exact error"
    );
    assert_eq!(d.wait().unwrap(), 0);
}

// Twisted: test_defer.DeferredTests.test_addCallbacksNoneCallbackArgs
// (adapted: `add_callbacks` with a pass-through callback half)
#[test]
fn add_callbacks_pass_through_callback_half() {
    let (d, r) = Deferred::<&str>::pending();
    let d = d
        .add_callbacks(Ok, |f: Failure| Err(f))
        .add_callback(|v| Ok(v.len()));
    r.callback("hello");
    assert_eq!(d.wait().unwrap(), 5);
}

// Twisted: test_defer.DeferredTests.testImmediateSuccess
#[test]
fn immediate_success() {
    let seen = log();
    let s = seen.clone();
    let d = Deferred::<_>::succeed("success").add_callback(move |v| {
        push(&s, v);
        Ok(())
    });
    assert_eq!(
        snapshot(&seen),
        ["success"],
        "ran before add_callback returned"
    );
    d.wait().unwrap();
}

// Twisted: test_defer.DeferredTests.test_succeedMatchesManualSuccess
// (adapted: the internal state is private; compare observable behaviour)
#[test]
fn succeed_matches_manual_success() {
    let by_succeed = Deferred::<u32>::succeed(7);
    let (manual, r) = Deferred::<u32>::pending();
    r.callback(7);
    assert!(by_succeed.is_fired());
    assert!(manual.is_fired());
    for d in [by_succeed, manual] {
        let ran = counter();
        let c = ran.clone();
        let d = d.add_callback(move |v| {
            c.fetch_add(1, SeqCst);
            Ok(v * 6)
        });
        assert_eq!(ran.load(SeqCst), 1, "both run a new callback at once");
        assert_eq!(d.wait().unwrap(), 42);
    }
}

// Twisted: test_defer.DeferredTests.testImmediateFailure
#[test]
fn immediate_failure() {
    let seen = log();
    let s = seen.clone();
    let d = Deferred::<()>::fail(Failure::new(GenericError::new("fail"))).add_errback(
        move |f: Failure| {
            push(&s, f.to_string());
            Ok(())
        },
    );
    assert_eq!(snapshot(&seen), ["fail"], "ran before add_errback returned");
    d.wait().unwrap();
}

// Twisted: test_defer.DeferredTests.testCallbackErrors (the "raise" half)
// (adapted: raising is a panic; it becomes a `Panicked` failure)
#[test]
fn callback_errors_raise() {
    let (d, r) = Deferred::<u32>::pending();
    let d = d
        .add_callback(|x| {
            if x == 0 {
                panic!("division by zero");
            }
            Ok(1 / x)
        })
        .add_errback(|f: Failure| {
            let p = f.downcast_ref::<Panicked>().expect("a Panicked failure");
            assert_eq!(p.message(), "division by zero");
            Ok(99)
        });
    r.callback(0);
    assert_eq!(d.wait().unwrap(), 99);
}

// Twisted: test_defer.DeferredTests.testCallbackErrors (the "return a Failure" half)
#[test]
fn callback_errors_return_failure() {
    let error = GenericError::new("ZeroDivisionError");
    let id = error.id;
    let (d, r) = Deferred::<u32>::pending();
    let d = d
        .add_callback(move |_| Err::<u32, _>(Failure::new(error)))
        .add_errback(move |f: Failure| {
            assert_eq!(id_of(&f), id);
            Ok(99)
        });
    r.callback(0);
    assert_eq!(d.wait().unwrap(), 99);
}

// Twisted: test_defer.DeferredTests.test_callbackMaybeReturnsFailure
#[test]
fn callback_maybe_returns_failure() {
    let fired = Deferred::<u32>::succeed(6).add_callback(|r| Ok(r + 1));
    assert_eq!(fired.wait().unwrap(), 7);

    let rte = GenericError::new("RuntimeError");
    let id = rte.id;
    let second = counter();
    let c = second.clone();
    let failed = Deferred::<u32>::succeed(6)
        .add_callback(move |_| Err::<u32, _>(Failure::new(rte)))
        .add_callback(move |r| {
            c.fetch_add(1, SeqCst);
            Ok(r + 1)
        });
    let f = failed.wait().unwrap_err();
    assert_eq!(id_of(&f), id, "the failure is the very error returned");
    assert_eq!(second.load(SeqCst), 0, "the next callback is skipped");
}

// Twisted: test_defer.DeferredTests.test_reentrantRunCallbacks
// (adapted: a callback cannot add to its own, consumed, Deferred; the typed equivalent is firing
// another Deferred from inside a callback. Its callbacks run after the current callback returns
// -- never nested in it -- and in firing order.)
#[test]
fn reentrant_run_callbacks() {
    let order = log();
    let (other, other_r) = Deferred::<()>::pending();
    let o3 = order.clone();
    let other = other.add_callback(move |_| {
        push(&o3, 3);
        Ok(())
    });
    let (d, r) = Deferred::<()>::pending();
    let (o1, o2) = (order.clone(), order.clone());
    let d = d
        .add_callback(move |_| {
            push(&o1, 1);
            other_r.callback(());
            push(&o1, 2);
            Ok(())
        })
        .add_callback(move |_| {
            push(&o2, 4);
            Ok(())
        });
    r.callback(());
    assert_eq!(snapshot(&order), [1, 2, 3, 4]);
    d.wait().unwrap();
    other.wait().unwrap();
}

// Twisted: test_defer.DeferredTests.test_nonReentrantCallbacks
// (adapted as above: the second chain does not run until the first callback returns)
#[test]
fn non_reentrant_callbacks() {
    let calls = log();
    let seen_inside = log();
    let (second, second_r) = Deferred::<()>::pending();
    let c2 = calls.clone();
    let second = second.add_callback(move |_| {
        push(&c2, 2);
        Ok(())
    });
    let (d, r) = Deferred::<()>::pending();
    let (c1, inside) = (calls.clone(), seen_inside.clone());
    let d = d.add_callback(move |_| {
        push(&c1, 1);
        second_r.callback(());
        *inside.lock().unwrap() = snapshot(&c1);
        Ok(())
    });
    r.callback(());
    assert_eq!(snapshot(&seen_inside), [1], "cb2 had not run inside cb1");
    assert_eq!(snapshot(&calls), [1, 2]);
    d.wait().unwrap();
    second.wait().unwrap();
}

// Same as `non_reentrant_callbacks`, when the outer callback runs because it was added to an
// already-fired Deferred (rule 2) rather than because a Resolver fired it. No chain is being
// delivered then, so (as `Resolver::callback` documents) the fired chain runs at once, nested
// inside the outer callback.
#[test]
fn non_reentrant_callbacks_on_fired_deferred() {
    let calls = log();
    let seen_inside = log();
    let (second, second_r) = Deferred::<()>::pending();
    let c2 = calls.clone();
    let second = second.add_callback(move |_| {
        push(&c2, 2);
        Ok(())
    });
    let (c1, inside) = (calls.clone(), seen_inside.clone());
    let d = Deferred::<()>::succeed(()).add_callback(move |_| {
        push(&c1, 1);
        second_r.callback(());
        *inside.lock().unwrap() = snapshot(&c1);
        Ok(())
    });
    assert_eq!(snapshot(&seen_inside), [1, 2], "cb2 ran inside cb1");
    assert_eq!(snapshot(&calls), [1, 2]);
    d.wait().unwrap();
    second.wait().unwrap();
}

// Twisted: test_defer.DeferredTests.test_reentrantRunCallbacksWithFailure
#[test]
fn reentrant_run_callbacks_with_failure() {
    let (second, second_r) = Deferred::<()>::pending();
    let second = second.add_callback(|_| Err::<(), _>(Failure::msg("callback raised exception")));
    let (d, r) = Deferred::<()>::pending();
    let d = d.add_callback(move |_| {
        second_r.callback(());
        Ok(())
    });
    r.callback(());
    d.wait().unwrap();
    assert_eq!(
        second.wait().unwrap_err().to_string(),
        "callback raised exception"
    );
}

// Twisted: test_defer.DeferredTests.test_repr / test_reprWithResult
// (adapted: `Debug` names the state instead of the address and the result)
#[test]
fn debug_repr() {
    let (d, r) = Deferred::<&str>::pending();
    assert!(format!("{d:?}").contains("pending"), "{d:?}");
    r.callback("orange");
    assert!(format!("{d:?}").contains("fired"), "{d:?}");
    let ok = Deferred::<&str>::succeed("orange");
    assert!(format!("{ok:?}").contains("success"), "{ok:?}");
    let bad = Deferred::<&str>::fail(Failure::msg("x"));
    assert!(format!("{bad:?}").contains("failure"), "{bad:?}");
    drop(d.wait());
    drop(ok.wait());
    drop(bad.wait());
}

// ---------------------------------------------------------------------------------------------
// B. Chaining nested Deferreds (sync and async)
// ---------------------------------------------------------------------------------------------

// Twisted: test_defer.DeferredTests.test_callbackReturnsDeferred
// (adapted: without `pause`; the outer chain waits for the returned Deferred)
#[test]
fn callback_returns_deferred() {
    let seen = log();
    let (d1, r1) = Deferred::<u32>::pending();
    let (d2, r2) = Deferred::<u32>::pending();
    let s = seen.clone();
    let d1 = d1.add_callback(move |_| d2).add_callback(move |v| {
        push(&s, v);
        Ok(())
    });
    r1.callback(1);
    assert!(snapshot(&seen).is_empty(), "waits for d2");
    assert!(!d1.is_fired());
    r2.callback(2);
    assert_eq!(snapshot(&seen), [2]);
    d1.wait().unwrap();
}

// Reference §2.4 (last bullet): callbacks added to the outer Deferred while it waits on a
// returned one are queued, not run, and run in order once the inner one fires.
#[test]
fn callbacks_added_while_waiting_are_queued() {
    let seen = log();
    let (d1, r1) = Deferred::<u32>::pending();
    let (d2, r2) = Deferred::<u32>::pending();
    let d1 = d1.add_callback(move |_| d2);
    r1.callback(1);
    let (s1, s2) = (seen.clone(), seen.clone());
    let d1 = d1
        .add_callback(move |v| {
            push(&s1, ("first", v));
            Ok(v + 1)
        })
        .add_callback(move |v| {
            push(&s2, ("second", v));
            Ok(v)
        });
    assert!(snapshot(&seen).is_empty(), "queued while waiting");
    r2.callback(2);
    assert_eq!(snapshot(&seen), [("first", 2), ("second", 3)]);
    assert_eq!(d1.wait().unwrap(), 3);
}

// Twisted: test_defer.DeferredTests.test_errbackReturnsDeferred
#[test]
fn errback_returns_deferred() {
    let seen = log();
    let (d, r) = Deferred::<&str>::pending();
    let (d2, r2) = Deferred::<&str>::pending();
    let s = seen.clone();
    let d = d.add_errback(move |_| d2).add_callback(move |v| {
        push(&s, v);
        Ok(())
    });
    r.errback(Failure::new(GenericError::new("ValueError")));
    assert!(!d.is_fired(), "no result yet");
    r2.callback("result");
    assert_eq!(snapshot(&seen), ["result"]);
    d.wait().unwrap();
}

// Twisted: test_defer.DeferredTests.test_synchronousImplicitChain
// (adapted: `first` is consumed when returned; identity of the value is checked)
#[test]
fn synchronous_implicit_chain() {
    let obj = Arc::new("object");
    let first = Deferred::<Arc<&str>>::succeed(obj.clone());
    let (second, r) = Deferred::<()>::pending();
    let second = second.add_callback(move |_| first);
    r.callback(());
    assert!(Arc::ptr_eq(&second.wait().unwrap(), &obj));
}

// Twisted: test_defer.DeferredTests.test_asynchronousImplicitChain
#[test]
fn asynchronous_implicit_chain() {
    let obj = Arc::new("object");
    let seen = log();
    let (first, first_r) = Deferred::<Arc<&str>>::pending();
    let (second, r) = Deferred::<()>::pending();
    let s = seen.clone();
    let second = second.add_callback(move |_| first).add_callback(move |v| {
        push(&s, v.clone());
        Ok(v)
    });
    r.callback(());
    assert!(snapshot(&seen).is_empty(), "both sides wait");
    first_r.callback(obj.clone());
    assert_eq!(snapshot(&seen).len(), 1);
    assert!(Arc::ptr_eq(&second.wait().unwrap(), &obj));
}

// Twisted: test_defer.DeferredTests.test_synchronousImplicitErrorChain
#[test]
fn synchronous_implicit_error_chain() {
    // The failure moved out of `first` is not reported: the guard panics if it is.
    let _no_unhandled = NoUnhandled::start();
    let tag = "synchronous_implicit_error_chain: RuntimeError";
    let first = Deferred::<()>::fail(Failure::msg(tag));
    let (second, r) = Deferred::<()>::pending();
    let second = second.add_callback(move |_| first);
    r.callback(());
    let f = second.wait().unwrap_err();
    assert_eq!(f.to_string(), tag);
}

// Twisted: test_defer.DeferredTests.test_asynchronousImplicitErrorChain
#[test]
fn asynchronous_implicit_error_chain() {
    // The failure moved out of `first` into `second` is not reported (Twisted: nothing logged).
    let _no_unhandled = NoUnhandled::start();
    let errbacks = log();
    let trailing = log();
    let (first, first_r) = Deferred::<u32>::pending();
    let (second, r) = Deferred::<()>::pending();
    let (e, t) = (errbacks.clone(), trailing.clone());
    let second = second
        .add_callback(move |_| first)
        .add_errback(move |f: Failure| {
            push(&e, f.to_string());
            Ok(7)
        })
        .add_callback(move |v| {
            push(&t, v);
            Ok(())
        });
    r.callback(());
    assert!(snapshot(&errbacks).is_empty());
    first_r.errback(Failure::new(GenericError::new("RuntimeError")));
    assert_eq!(snapshot(&errbacks), ["RuntimeError"]);
    assert_eq!(snapshot(&trailing), [7], "the trailing callback ran once");
    second.wait().unwrap();
}

// Twisted: test_defer.DeferredTests.test_doubleAsynchronousImplicitChaining
#[test]
fn double_asynchronous_implicit_chaining() {
    let obj = Arc::new(42u32);
    let (c, c_r) = Deferred::<Arc<u32>>::pending();
    let (b, b_r) = Deferred::<()>::pending();
    let b = b.add_callback(move |_| c);
    let (a, a_r) = Deferred::<()>::pending();
    let seen = log();
    let s = seen.clone();
    let a = a.add_callback(move |_| b).add_callback(move |v| {
        push(&s, v.clone());
        Ok(v)
    });
    b_r.callback(());
    a_r.callback(());
    assert!(snapshot(&seen).is_empty(), "A waits on B waits on C");
    c_r.callback(obj.clone());
    assert!(Arc::ptr_eq(&a.wait().unwrap(), &obj));
    assert_eq!(snapshot(&seen).len(), 1);
}

/// The scenario of `test_nestedAsynchronousChainedDeferreds` and its variants.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    StartOfCb(String),
    FirstCallback(String),
    SecondCallback(Vec<String>),
    Final(Vec<String>),
}

// Twisted: test_defer.DeferredTests.test_nestedAsynchronousChainedDeferreds
#[test]
fn nested_asynchronous_chained_deferreds() {
    let results = log();
    let (inner, inner_r) = Deferred::<String>::pending();
    let (r1, r2) = (results.clone(), results.clone());
    let outer = Deferred::<_>::succeed("outer".to_owned())
        .add_callback(move |result: String| {
            push(&r1, Step::StartOfCb(result));
            let (ra, rb) = (r1.clone(), r1.clone());
            Deferred::<_>::succeed("inner".to_owned())
                .add_callback(move |_| {
                    push(&ra, Step::FirstCallback("inner".to_owned()));
                    inner
                })
                .add_callback(move |result: String| {
                    push(&rb, Step::SecondCallback(vec![result.clone()]));
                    Ok(result.repeat(2))
                })
        })
        .add_callback(move |v: String| {
            push(&r2, Step::Final(vec![v]));
            Ok(())
        });
    assert_eq!(
        snapshot(&results),
        [
            Step::StartOfCb("outer".into()),
            Step::FirstCallback("inner".into())
        ]
    );
    inner_r.callback("orange".to_owned());
    assert_eq!(
        snapshot(&results),
        [
            Step::StartOfCb("outer".into()),
            Step::FirstCallback("inner".into()),
            Step::SecondCallback(vec!["orange".into()]),
            Step::Final(vec!["orangeorange".into()]),
        ]
    );
    outer.wait().expect("no failures");
}

// Twisted: test_defer.DeferredTests.test_nestedAsynchronousChainedDeferredsWithExtraCallbacks
// (callbacks already on the inner Deferred run before the outer chain sees its value)
#[test]
fn nested_asynchronous_chained_deferreds_with_extra_callbacks() {
    let results = log();
    let (inner, inner_r) = Deferred::<String>::pending();
    let inner = inner.add_callback(|x| Ok(vec![x])); // transform, added before it is returned
    let (r1, r2) = (results.clone(), results.clone());
    let outer = Deferred::<_>::succeed("outer".to_owned())
        .add_callback(move |result: String| {
            push(&r1, Step::StartOfCb(result));
            let (ra, rb) = (r1.clone(), r1.clone());
            Deferred::<_>::succeed("inner".to_owned())
                .add_callback(move |_| {
                    push(&ra, Step::FirstCallback("inner".to_owned()));
                    inner
                })
                .add_callback(move |result: Vec<String>| {
                    push(&rb, Step::SecondCallback(result.clone()));
                    Ok([result.clone(), result].concat())
                })
        })
        .add_callback(move |v: Vec<String>| {
            push(&r2, Step::Final(v));
            Ok(())
        });
    assert_eq!(snapshot(&results).len(), 2);
    inner_r.callback("withers".to_owned());
    assert_eq!(
        snapshot(&results),
        [
            Step::StartOfCb("outer".into()),
            Step::FirstCallback("inner".into()),
            Step::SecondCallback(vec!["withers".into()]),
            Step::Final(vec!["withers".into(), "withers".into()]),
        ]
    );
    outer.wait().expect("no failures");
}

// Twisted: test_defer.DeferredTests.test_innerCallbacksPreserved
// (the inner Deferred fires before the outer chain gets its final callback)
#[test]
fn inner_callbacks_preserved() {
    let results = log();
    let (inner, inner_r) = Deferred::<String>::pending();
    let r1 = results.clone();
    let outer = Deferred::<_>::succeed("outer".to_owned()).add_callback(move |result: String| {
        push(&r1, Step::StartOfCb(result));
        let (ra, rb) = (r1.clone(), r1.clone());
        Deferred::<_>::succeed("inner".to_owned())
            .add_callback(move |_| {
                push(&ra, Step::FirstCallback("inner".to_owned()));
                inner
            })
            .add_callback(move |result: String| {
                push(&rb, Step::SecondCallback(vec![result.clone()]));
                Ok(result.repeat(2))
            })
    });
    inner_r.callback("orange".to_owned());
    let r2 = results.clone();
    let outer = outer.add_callback(move |v: String| {
        push(&r2, Step::Final(vec![v]));
        Ok(())
    });
    assert_eq!(
        snapshot(&results),
        [
            Step::StartOfCb("outer".into()),
            Step::FirstCallback("inner".into()),
            Step::SecondCallback(vec!["orange".into()]),
            Step::Final(vec!["orangeorange".into()]),
        ]
    );
    outer.wait().expect("no failures");
}

// Twisted: test_defer.DeferredTests.test_continueCallbackNotFirst
// (adapted: `gatherResults([a])` is stood in for by `a` with a list-making callback, so the
// Deferred the chain waits on has a callback of its own before the continuation)
#[test]
fn continue_callback_not_first() {
    let results = log();
    let (a, a_r) = Deferred::<String>::pending();
    let r1 = results.clone();
    let outer = Deferred::<_>::succeed("outer".to_owned()).add_callback(move |result: String| {
        push(&r1, Step::StartOfCb(result));
        let (ra, rb) = (r1.clone(), r1.clone());
        Deferred::<_>::succeed("inner".to_owned())
            .add_callback(move |_| {
                push(&ra, Step::FirstCallback("inner".to_owned()));
                a.add_callback(|x| Ok(vec![x]))
            })
            .add_callback(move |result: Vec<String>| {
                push(&rb, Step::SecondCallback(result.clone()));
                Ok(result)
            })
    });
    a_r.callback("withers".to_owned());
    assert_eq!(
        snapshot(&results),
        [
            Step::StartOfCb("outer".into()),
            Step::FirstCallback("inner".into()),
            Step::SecondCallback(vec!["withers".into()]),
        ]
    );
    assert_eq!(outer.wait().unwrap(), ["withers"]);
}

// Twisted: test_defer.DeferredTests.test_callbackOrderPreserved
// (the outer Deferred is unfired and has its final callback before it fires)
#[test]
fn callback_order_preserved() {
    let results = log();
    let (a, a_r) = Deferred::<String>::pending();
    let (outer, outer_r) = Deferred::<String>::pending();
    let (r1, r2) = (results.clone(), results.clone());
    let outer = outer
        .add_callback(move |result: String| {
            push(&r1, Step::StartOfCb(result));
            let (ra, rb) = (r1.clone(), r1.clone());
            Deferred::<_>::succeed("inner".to_owned())
                .add_callback(move |_| {
                    push(&ra, Step::FirstCallback("inner".to_owned()));
                    a.add_callback(|x| Ok(vec![x]))
                })
                .add_callback(move |result: Vec<String>| {
                    push(&rb, Step::SecondCallback(result.clone()));
                    Ok(result)
                })
        })
        .add_callback(move |v: Vec<String>| {
            push(&r2, Step::Final(v));
            Ok(())
        });
    outer_r.callback("outer".to_owned());
    a_r.callback("withers".to_owned());
    assert_eq!(
        snapshot(&results),
        [
            Step::StartOfCb("outer".into()),
            Step::FirstCallback("inner".into()),
            Step::SecondCallback(vec!["withers".into()]),
            Step::Final(vec!["withers".into()]),
        ]
    );
    outer.wait().unwrap();
}

// Twisted: test_defer.DeferredTests.test_resultOfDeferredResultOfDeferredOfFiredDeferredCalled
// (adapted: the final check is on the end of `first`'s chain, as `second` is consumed)
#[test]
fn result_of_deferred_result_of_deferred_of_fired_deferred_called() {
    let (third, third_r) = Deferred::<&str>::pending();
    let (second, second_r) = Deferred::<()>::pending();
    let second = second.add_callback(move |_| third);
    let (first, first_r) = Deferred::<()>::pending();
    let first = first.add_callback(move |_| second);
    second_r.callback(());
    first_r.callback(());
    third_r.callback("done");
    let ran = counter();
    let c = ran.clone();
    let first = first.add_callback(move |v| {
        c.fetch_add(1, SeqCst);
        Ok(v)
    });
    assert_eq!(
        ran.load(SeqCst),
        1,
        "a callback added afterwards runs at once"
    );
    assert_eq!(first.wait().unwrap(), "done");
}

/// The address of a local inside the last callback of a chain that waits on `n` nested
/// Deferreds, when the innermost one fires: a measure of the stack depth.
#[inline(never)]
fn stack_depth_when_last_fires(n: usize) -> usize {
    let depth = counter();
    let (top, top_r) = Deferred::<()>::pending();
    let (last, last_r) = Deferred::<()>::pending();
    let mut next = last;
    let mut resolvers = Vec::new();
    for _ in 0..n {
        let (inner, r) = Deferred::<()>::pending();
        resolvers.push(r);
        let waits_on = next;
        next = inner.add_callback(move |_| waits_on);
    }
    let d = depth.clone();
    let top = top.add_callback(move |_| next).add_callback(move |_| {
        let marker = 0u8;
        d.store(std::hint::black_box(&marker) as *const u8 as usize, SeqCst);
        Ok(())
    });
    top_r.callback(());
    for r in resolvers {
        r.callback(());
    }
    fire_last(last_r);
    top.wait().unwrap();
    depth.load(SeqCst)
}

#[inline(never)]
fn fire_last(r: Resolver<()>) {
    r.callback(());
}

// Twisted: test_defer.DeferredTests.test_boundedStackDepth
#[test]
fn bounded_stack_depth() {
    let one = stack_depth_when_last_fires(1);
    let two = stack_depth_when_last_fires(2);
    let hundred = stack_depth_when_last_fires(100);
    assert_eq!(two, hundred, "the stack does not grow with nesting");
    // One level is delivered on another path (the chain between hands its wait to the top
    // chain, so the result goes there straight from the run's first delivery, not through the
    // queue): a frame or two apart, whatever the nesting.
    assert!(
        one.abs_diff(two) < 512,
        "one level: {one:#x}, two: {two:#x}"
    );
}

// Twisted: test_defer.DeferredTests.test_chainDeferredRecordsExplicitChain (and chainDeferred)
// (adapted: `chainDeferred` is an `add_both` that fires the other Deferred's Resolver; it is
// one-directional: firing the second does not touch the first)
#[test]
fn chain_deferred_is_one_directional() {
    let (d1, r1) = Deferred::<u32>::pending();
    let (d2, r2) = Deferred::<u32>::pending();
    let d1 = d1.add_both(move |result| {
        r2.fire(result);
        Ok("forwarded")
    });
    r1.callback(5);
    assert_eq!(d2.wait().unwrap(), 5);
    assert_eq!(d1.wait().unwrap(), "forwarded");
}

// Twisted: test_defer.DeferredTests.test_circularChainWarning / test_circularChainException,
// reference §O 159 (a callback returning its own Deferred: Twisted warns, then the Deferred is
// stuck for ever). Here no warning: the chain waits on itself, which nothing can fire; a cancel
// returns and the chain goes on with the cancellation (docs/rules.md, rule 9: cycles).
#[test]
// The slot is an `Arc<Mutex<..>>` for both kinds (the local kind's content is not `Send`).
#[allow(clippy::arc_with_non_send_sync)]
fn callback_returning_its_own_chain_waits_until_cancelled() {
    let slot: Arc<Mutex<Option<Deferred<u32>>>> = Arc::new(Mutex::new(None));
    let own = slot.clone();
    let steps = log();
    let s = steps.clone();
    let (d, r) = Deferred::<u32>::pending();
    let end = d
        .add_errback(move |f: Failure| {
            push(
                &s,
                if f.is_cancelled() {
                    "errback: cancelled"
                } else {
                    "errback: other"
                },
            );
            Err(f)
        })
        .add_callback(move |_| own.lock().unwrap().take().expect("the end is in its slot"));
    let handle = end.cancel_handle();
    *slot.lock().unwrap() = Some(end);
    let unhandled = UnhandledCapture::start();
    r.callback(1); // the step returns the chain's own end
    assert!(slot.lock().unwrap().is_none(), "the step took its own end");
    assert!(
        snapshot(&steps).is_empty(),
        "stuck: nothing fires a chain waiting on itself"
    );
    handle.cancel(); // returns: it cancels the wait that closes the cycle
    handle.cancel(); // and a second cancel is harmless
    assert!(
        snapshot(&steps).is_empty(),
        "the errback before the step is not re-run"
    );
    // The cancellation is the answer to the cancel: nothing is reported.
    assert!(messages(&unhandled.finish()).is_empty());
}

// Twisted: test_defer.DeferredCancellerTests.test_raisesAfterCancelAndCallback /
// test_raisesAfterCancelAndErrback / test_simpleCanceller (the late fire after a cancel). Twisted
// swallows one late fire without a canceller and raises AlreadyCalledError with one; here a late
// fire is always dropped (`Resolver::fire`), `try_fire` gives it back instead, and `is_closed`
// tells the producer beforehand.
#[test]
fn late_fire_after_cancel_is_dropped_or_given_back() {
    for with_canceller in [false, true] {
        let cancels = counter();
        let c = cancels.clone();
        let (d, r) = if with_canceller {
            Deferred::<u32>::with_canceller(move || {
                c.fetch_add(1, SeqCst);
            })
        } else {
            Deferred::<u32>::pending()
        };
        let ran = log();
        let s = ran.clone();
        let d = d.add_both(move |result: Result<u32, Failure>| {
            push(&s, result.as_ref().map_err(|f| f.is_cancelled()).copied());
            result
        });
        assert!(!r.is_closed());
        d.cancel();
        assert_eq!(cancels.load(SeqCst), usize::from(with_canceller));
        assert!(
            r.is_closed(),
            "the producer can see the chain was cancelled"
        );
        let back = r.try_fire(Err(Failure::new(GenericError::new("late"))));
        let back = back.expect_err("the late fire is given back");
        assert_eq!(back.unwrap_err().to_string(), "late");
        assert_eq!(
            snapshot(&ran),
            [Err(true)],
            "the chain ran once, with the cancellation"
        );
        assert!(d.wait().unwrap_err().is_cancelled());
    }
}

// ---------------------------------------------------------------------------------------------
// Routing details of pairs (reference §2.3 / §O 164)
// ---------------------------------------------------------------------------------------------

// Reference §O 164 / Twisted: addCallbacks(cb_raises, eb) does not call eb for cb's exception.
#[test]
fn add_callbacks_error_in_callback_half_skips_own_errback() {
    let own_errback = counter();
    let next_errback = log();
    let (d, r) = Deferred::<u32>::pending();
    let (o, n) = (own_errback.clone(), next_errback.clone());
    let d = d
        .add_callbacks(
            |_| Err::<u32, _>(Failure::msg("raised by the callback half")),
            move |f: Failure| {
                o.fetch_add(1, SeqCst);
                Err(f)
            },
        )
        .add_errback(move |f: Failure| {
            push(&n, f.to_string());
            Ok(0)
        });
    r.callback(1);
    assert_eq!(own_errback.load(SeqCst), 0);
    assert_eq!(snapshot(&next_errback), ["raised by the callback half"]);
    assert_eq!(d.wait().unwrap(), 0);
}

// Same as above with a panicking callback half.
#[test]
fn add_callbacks_panic_in_callback_half_skips_own_errback() {
    let own_errback = counter();
    let o = own_errback.clone();
    let d = Deferred::<u32>::succeed(1)
        .add_callbacks(
            |_| -> Result<u32, Failure> { panic!("panicked in the callback half") },
            move |f: Failure| {
                o.fetch_add(1, SeqCst);
                Err(f)
            },
        )
        .add_errback(|f: Failure| {
            Ok(f.downcast_ref::<Panicked>()
                .map(|p| p.message().len() as u32)
                .unwrap_or(0))
        });
    assert_eq!(own_errback.load(SeqCst), 0);
    assert_eq!(
        d.wait().unwrap(),
        "panicked in the callback half".len() as u32
    );
}

// Twisted: test_defer.DeferredTests.testCallbackErrors + routing of §2.3: an errback that
// returns a value recovers, and processing continues on the callback path.
#[test]
fn errback_recovery_continues_on_callback_path() {
    let path = log();
    let (p1, p2, p3) = (path.clone(), path.clone(), path.clone());
    let d = Deferred::<u32>::fail(Failure::msg("boom"))
        .add_callback(move |v| {
            push(&p1, "skipped callback");
            Ok(v)
        })
        .add_errback(move |_| {
            push(&p2, "errback");
            Ok(10)
        })
        .add_callbacks(
            move |v| {
                push(&p3, "callback");
                Ok(v + 1)
            },
            |f: Failure| Err(f),
        );
    assert_eq!(snapshot(&path), ["errback", "callback"]);
    assert_eq!(d.wait().unwrap(), 11);
}

// Routing §2.3: an errback that returns a failure stays on the error path; `trap` with no match
// hands the failure on (Twisted's `f.trap(...)` re-raise).
#[test]
fn errback_trap_mismatch_stays_on_error_path() {
    let d = Deferred::<u32>::fail(Failure::new(GenericError::new("ValueError")))
        .add_errback(|f: Failure| f.trap::<OtherError>().map(|_| 1))
        .add_errback(|f: Failure| f.trap::<GenericError>().map(|e| e.message.len() as u32));
    assert_eq!(d.wait().unwrap(), "ValueError".len() as u32);
}

// Routing §2.3: `add_both` receives either kind of result.
#[test]
fn add_both_receives_either() {
    let ok = Deferred::<u32>::succeed(1).add_both(|r: Result<u32, Failure>| Ok(r.is_ok()));
    let err =
        Deferred::<u32>::fail(Failure::msg("x")).add_both(|r: Result<u32, Failure>| Ok(r.is_ok()));
    assert!(ok.wait().unwrap());
    assert!(!err.wait().unwrap());
}

// ---------------------------------------------------------------------------------------------
// D. Cancellation of single Deferreds
// ---------------------------------------------------------------------------------------------

// Twisted: test_defer.DeferredCancellerTests.test_noCanceller
#[test]
fn no_canceller() {
    let callbacks = counter();
    let errbacks = log();
    let (d, _r) = Deferred::<u32>::pending();
    let (c, e) = (callbacks.clone(), errbacks.clone());
    let d = d.add_callbacks(
        move |v| {
            c.fetch_add(1, SeqCst);
            Ok(v)
        },
        move |f: Failure| {
            push(&e, f.is::<Cancelled>());
            Ok(0)
        },
    );
    d.cancel();
    assert_eq!(snapshot(&errbacks), [true]);
    assert_eq!(callbacks.load(SeqCst), 0);
    d.wait().unwrap();
}

// Twisted: test_defer.DeferredCancellerTests.test_raisesAfterCancelAndCallback
// (adapted: a second fire is a compile error; the one fire after `cancel` is swallowed)
#[test]
fn fire_after_cancel_and_callback_is_swallowed() {
    let (d, r) = Deferred::<u32>::pending();
    d.cancel();
    r.callback(1);
    assert!(d.wait().unwrap_err().is_cancelled());
}

// Twisted: test_defer.DeferredCancellerTests.test_raisesAfterCancelAndErrback
#[test]
fn fire_after_cancel_and_errback_is_swallowed() {
    let (d, r) = Deferred::<u32>::pending();
    d.cancel();
    r.errback(Failure::new(GenericError::new("late")));
    assert!(d.wait().unwrap_err().is_cancelled());
}

// Twisted: test_defer.DeferredCancellerTests.test_noCancellerMultipleCancelsAfterCancelAndCallback
#[test]
fn no_canceller_multiple_cancels_after_cancel_and_callback() {
    let errbacks = counter();
    let (d, r) = Deferred::<u32>::pending();
    d.cancel();
    r.callback(1);
    d.cancel();
    let e = errbacks.clone();
    let d = d.add_errback(move |f: Failure| {
        e.fetch_add(1, SeqCst);
        Err(f)
    });
    assert_eq!(errbacks.load(SeqCst), 1);
    assert!(d.wait().unwrap_err().is_cancelled());
}

// Twisted: test_defer.DeferredCancellerTests.test_noCancellerMultipleCancelsAfterCancelAndErrback
#[test]
fn no_canceller_multiple_cancels_after_cancel_and_errback() {
    let (d, r) = Deferred::<u32>::pending();
    d.cancel();
    r.errback(Failure::new(GenericError::new("GenericError")));
    d.cancel();
    let f = d.wait().unwrap_err();
    assert!(f.is_cancelled(), "still the CancelledError: {f}");
}

// Twisted: test_defer.DeferredCancellerTests.test_noCancellerMultipleCancel
#[test]
fn no_canceller_multiple_cancel() {
    let errbacks = counter();
    let (d, _r) = Deferred::<u32>::pending();
    let e = errbacks.clone();
    let d = d.add_errback(move |f: Failure| {
        e.fetch_add(1, SeqCst);
        Err(f)
    });
    d.cancel();
    d.cancel();
    assert_eq!(errbacks.load(SeqCst), 1);
    assert!(d.wait().unwrap_err().is_cancelled());
}

// Twisted: test_defer.DeferredCancellerTests.test_cancellerMultipleCancel
#[test]
fn canceller_multiple_cancel() {
    let cancels = counter();
    let c = cancels.clone();
    let (d, _r) = Deferred::<u32>::with_canceller(move || {
        c.fetch_add(1, SeqCst);
    });
    let d = d.add_callback(Ok);
    d.cancel();
    d.cancel();
    assert_eq!(cancels.load(SeqCst), 1);
    assert!(d.wait().unwrap_err().is_cancelled());
}

// Twisted: test_defer.DeferredCancellerTests.test_simpleCanceller
// (adapted: later fires are ignored instead of raising AlreadyCalledError)
#[test]
fn simple_canceller() {
    let cancels = counter();
    let c = cancels.clone();
    let (d, r) = Deferred::<u32>::with_canceller(move || {
        c.fetch_add(1, SeqCst);
    });
    let callbacks = counter();
    let cb = callbacks.clone();
    let d = d.add_callback(move |v| {
        cb.fetch_add(1, SeqCst);
        Ok(v)
    });
    d.cancel();
    assert_eq!(cancels.load(SeqCst), 1);
    r.callback(1);
    assert_eq!(callbacks.load(SeqCst), 0);
    assert!(d.wait().unwrap_err().is_cancelled());
}

// Twisted: test_defer.DeferredCancellerTests.test_cancelAfterCallback
#[test]
fn cancel_after_callback() {
    let cancels = counter();
    let c = cancels.clone();
    let (d, r) = Deferred::<&str>::with_canceller(move || {
        c.fetch_add(1, SeqCst);
    });
    let d = d.add_callback(Ok);
    r.callback("biff!");
    d.cancel();
    assert_eq!(cancels.load(SeqCst), 0);
    assert_eq!(d.wait().unwrap(), "biff!");
}

// Twisted: test_defer.DeferredCancellerTests.test_cancelAfterErrback
#[test]
fn cancel_after_errback() {
    let cancels = counter();
    let c = cancels.clone();
    let (d, r) = Deferred::<&str>::with_canceller(move || {
        c.fetch_add(1, SeqCst);
    });
    let error = GenericError::new("GenericError");
    let id = error.id;
    r.errback(Failure::new(error));
    d.cancel();
    assert_eq!(cancels.load(SeqCst), 0);
    assert_eq!(id_of(&d.wait().unwrap_err()), id);
}

// Twisted: test_defer.DeferredCancellerTests.test_cancellerThatErrbacks
#[test]
fn canceller_that_errbacks() {
    let cancels = counter();
    let d = with_firing_canceller::<&str>(
        |r| r.errback(Failure::new(GenericError::new("GenericError"))),
        cancels.clone(),
    );
    let d = d.add_callback(Ok);
    d.cancel();
    assert_eq!(cancels.load(SeqCst), 1);
    let f = d.wait().unwrap_err();
    assert!(f.is::<GenericError>(), "not CancelledError: {f}");
}

// Twisted: test_defer.DeferredCancellerTests.test_cancellerThatCallbacks
#[test]
fn canceller_that_callbacks() {
    let cancels = counter();
    let errbacks = counter();
    let d = with_firing_canceller::<&str>(|r| r.callback("hello!"), cancels.clone());
    let e = errbacks.clone();
    let d = d.add_errback(move |f: Failure| {
        e.fetch_add(1, SeqCst);
        Err(f)
    });
    d.cancel();
    assert_eq!(cancels.load(SeqCst), 1);
    assert_eq!(errbacks.load(SeqCst), 0);
    assert_eq!(d.wait().unwrap(), "hello!");
}

// Twisted: test_defer.DeferredCancellerTests.test_cancelNestedDeferred
#[test]
fn cancel_nested_deferred() {
    let inner_cancels = counter();
    let outer_cancels = counter();
    let ic = inner_cancels.clone();
    let (b, _b_r) = Deferred::<u32>::with_canceller(move || {
        ic.fetch_add(1, SeqCst);
    });
    let oc = outer_cancels.clone();
    let (a, a_r) = Deferred::<()>::with_canceller(move || {
        oc.fetch_add(1, SeqCst);
    });
    let errbacks = log();
    let e = errbacks.clone();
    let a = a.add_callback(move |_| b).add_errback(move |f: Failure| {
        push(&e, f.is_cancelled());
        Err(f)
    });
    a_r.callback(());
    a.cancel();
    assert_eq!(inner_cancels.load(SeqCst), 1);
    assert_eq!(snapshot(&errbacks), [true]);
    assert_eq!(
        outer_cancels.load(SeqCst),
        0,
        "a's own canceller never runs"
    );
    assert!(a.wait().unwrap_err().is_cancelled());
}

// Reference §2.9 (transitive forwarding [verified]) / test_cancelNestedDeferred, two levels: a
// cancel of A, which waits on B, which waits on C, calls only C's canceller; the cancellation
// then flows back through B's later steps before A's, and neither A's nor B's canceller runs.
#[test]
fn cancel_forwards_through_two_nested_deferreds() {
    let cancels = log();
    let order = log();
    let (c, _c_r) = {
        let k = cancels.clone();
        Deferred::<u32>::with_canceller(move || push(&k, "c"))
    };
    let (b, b_r) = {
        let k = cancels.clone();
        Deferred::<()>::with_canceller(move || push(&k, "b"))
    };
    let (a, a_r) = {
        let k = cancels.clone();
        Deferred::<()>::with_canceller(move || push(&k, "a"))
    };
    let (ob, oa) = (order.clone(), order.clone());
    let b = b.add_callback(move |_| c).add_errback(move |f: Failure| {
        push(
            &ob,
            if f.is_cancelled() {
                "b errback: cancelled"
            } else {
                "b errback: other"
            },
        );
        Err(f)
    });
    let a = a.add_callback(move |_| b).add_errback(move |f: Failure| {
        push(
            &oa,
            if f.is_cancelled() {
                "a errback: cancelled"
            } else {
                "a errback: other"
            },
        );
        Err(f)
    });
    b_r.callback(());
    a_r.callback(());
    assert!(snapshot(&order).is_empty());
    a.cancel();
    assert_eq!(
        snapshot(&cancels),
        ["c"],
        "only the innermost canceller runs"
    );
    assert_eq!(
        snapshot(&order),
        ["b errback: cancelled", "a errback: cancelled"]
    );
    assert!(a.wait().unwrap_err().is_cancelled());
}

// Reference §2.9: the inner canceller may answer with a value; the outer chain, cancelled while
// waiting on it, then goes on with that value on its callback path.
#[test]
fn cancel_nested_deferred_whose_canceller_succeeds() {
    let cancels = counter();
    let inner = with_firing_canceller::<u32>(|r| r.callback(41), cancels.clone());
    let (a, a_r) = Deferred::<()>::pending();
    let errbacks = counter();
    let e = errbacks.clone();
    let a = a.add_callback(move |_| inner).add_callbacks(
        |v| Ok(v + 1),
        move |f: Failure| {
            e.fetch_add(1, SeqCst);
            Err(f)
        },
    );
    a_r.callback(());
    a.cancel();
    assert_eq!(cancels.load(SeqCst), 1);
    assert_eq!(errbacks.load(SeqCst), 0);
    assert_eq!(a.wait().unwrap(), 42);
}

// Reference §2.9: `cancel()` of a Deferred that has fired (here: from inside one of its own
// callbacks, while its chain runs; Twisted's `called` is true and its result is no Deferred) is a
// no-op: the steps after go on with the value.
#[test]
// The slot is an `Arc<Mutex<..>>` for both kinds (the local kind's content is not `Send`).
#[allow(clippy::arc_with_non_send_sync)]
fn cancel_from_inside_own_callback_is_a_no_op() {
    let (d, r) = Deferred::<u32>::pending();
    let in_step = Arc::new(Mutex::new(Some(d.cancel_handle())));
    let d = d.add_callback(move |v| {
        let handle = in_step
            .lock()
            .unwrap()
            .take()
            .expect("the handle is in its slot");
        handle.cancel();
        Ok(v + 1)
    });
    let d = d.add_callback(|v| Ok(v * 2));
    r.callback(1);
    assert_eq!(d.wait().unwrap(), 4);
}

// Reference §2.9: `chainDeferred` links do not forward a cancel upward: cancelling `d2` leaves
// `d1` untouched, and `d1`'s later fire into `d2` is dropped (Twisted swallows it once).
#[test]
fn chain_deferred_cancel_does_not_go_upward() {
    let cancels = counter();
    let c = cancels.clone();
    let (d1, r1) = Deferred::<u32>::with_canceller(move || {
        c.fetch_add(1, SeqCst);
    });
    let (d2, r2) = Deferred::<u32>::pending();
    let d1 = d1.add_both(move |result| {
        r2.fire(result);
        Ok("forwarded")
    });
    d2.cancel();
    assert_eq!(cancels.load(SeqCst), 0, "d1's canceller is not called");
    assert!(!d1.is_fired());
    r1.callback(5);
    assert_eq!(d1.wait().unwrap(), "forwarded");
    assert!(d2.wait().unwrap_err().is_cancelled());
}

// Twisted: test_defer.DeferredCancellerTests.test_canceller_circular_reference_callback
// (a fired Deferred drops its canceller, so a canceller holding a reference leaks nothing)
#[test]
fn canceller_dropped_after_callback() {
    let held = Arc::new(());
    let h = held.clone();
    let (d, r) = Deferred::<u32>::with_canceller(move || drop(h));
    assert_eq!(Arc::strong_count(&held), 2);
    r.callback(1);
    assert_eq!(Arc::strong_count(&held), 1, "canceller dropped on fire");
    assert_eq!(d.wait().unwrap(), 1);
}

// Twisted: test_defer.DeferredCancellerTests.test_canceller_circular_reference_errback
#[test]
fn canceller_dropped_after_errback() {
    let held = Arc::new(());
    let h = held.clone();
    let (d, r) = Deferred::<u32>::with_canceller(move || drop(h));
    r.errback(Failure::msg("x"));
    assert_eq!(Arc::strong_count(&held), 1, "canceller dropped on fire");
    assert!(d.wait().is_err());
}

// Twisted: test_defer.DeferredCancellerTests.test_canceller_circular_reference_non_final
#[test]
fn canceller_dropped_after_callback_returning_pending() {
    let held = Arc::new(());
    let h = held.clone();
    let (d, r) = Deferred::<u32>::with_canceller(move || drop(h));
    let (inner, inner_r) = Deferred::<u32>::pending();
    let d = d.add_callback(move |_| inner);
    r.callback(1);
    assert_eq!(Arc::strong_count(&held), 1, "canceller dropped on fire");
    inner_r.callback(2);
    assert_eq!(d.wait().unwrap(), 2);
}

// Reference §O 166: in Twisted a raising canceller propagates out of `cancel()`; here it does not
// escape, and its panic becomes the failure (docs/rules.md, rule 7: cancellation).
#[test]
fn raising_canceller_does_not_escape() {
    let (d, _r) = Deferred::<u32>::with_canceller(|| panic!("canceller exploded"));
    let d = d.add_callback(Ok);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| d.cancel()));
    assert!(outcome.is_ok(), "cancel() did not unwind");
    let f = d.wait().unwrap_err();
    let p = f.downcast_ref::<Panicked>().expect("the canceller's panic");
    assert_eq!(p.message(), "canceller exploded");
}

// ---------------------------------------------------------------------------------------------
// I. Unhandled error logging
// ---------------------------------------------------------------------------------------------

// Twisted: test_defer.LogTests.test_errorLog
#[test]
fn error_log() {
    let tag = "twisted_core::error_log ZeroDivisionError";
    let unhandled = UnhandledCapture::start();
    let (d, r) = Deferred::<u32>::pending();
    let d = d.add_callback(move |_| Err::<u32, _>(Failure::msg(tag)));
    r.callback(1);
    assert!(unhandled.is_empty(), "not before it is dropped");
    drop(d);
    assert_eq!(messages(&unhandled.finish()), [tag]);
}

// Twisted: test_defer.LogTests.test_errorLog, with the callback raising (`1/0`) as a panic: the
// Panicked failure is reported once, when the Deferred is dropped, and not before.
#[test]
fn error_log_of_a_panicking_callback() {
    let tag = "twisted_core::error_log_of_a_panicking_callback";
    let unhandled = UnhandledCapture::start();
    let (d, r) = Deferred::<u32>::pending();
    let d = d.add_callback(move |_| -> Result<u32, Failure> { panic!("{tag}") });
    r.callback(1);
    assert!(unhandled.is_empty(), "not before it is dropped");
    drop(d);
    let reported = unhandled.finish();
    assert_eq!(reported.len(), 1);
    assert_eq!(
        reported[0].downcast_ref::<Panicked>().unwrap().message(),
        tag
    );
}

// Twisted: test_defer.LogTests.test_errorLogWithInnerFrameRef
#[test]
fn error_log_with_inner_frame_ref() {
    let tag = "twisted_core::error_log_with_inner_frame_ref";
    fn helper(tag: &'static str) {
        let (d, r) = Deferred::<u32>::pending();
        let _d = d.add_callback(move |_| Err::<u32, _>(Failure::msg(tag)));
        r.callback(1);
    }
    let ((), unhandled) = capture_unhandled(|| helper(tag));
    assert_eq!(messages(&unhandled), [tag]);
}

// Twisted: test_defer.LogTests.test_chainedErrorCleanup
#[test]
fn chained_error_cleanup() {
    let _no_unhandled = NoUnhandled::start();
    let tag = "twisted_core::chained_error_cleanup zoop";
    let (d, r) = Deferred::<u32>::pending();
    let d = d
        .add_callback(move |_| Deferred::<u32>::fail(Failure::msg(tag)))
        .add_errback(|_| Ok(0));
    r.callback(1);
    drop(d);
}

// Twisted: test_defer.LogTests.test_errorClearedByChaining
// (the failure of `bad` is handled by an errback that returns an unfired `good`)
#[test]
fn error_cleared_by_chaining() {
    let tag = "twisted_core::error_cleared_by_chaining";
    let no_unhandled = NoUnhandled::start();
    let (good, good_r) = Deferred::<u32>::pending();
    let bad = Deferred::<u32>::fail(Failure::msg(tag)).add_errback(move |_| good);
    drop(bad);
    assert!(no_unhandled.take().is_empty());
    good_r.callback(1);
    drop(no_unhandled); // panics if `good`'s firing reported anything
}

// ---------------------------------------------------------------------------------------------
// M. inlineCallbacks, as async/await (IC)
// ---------------------------------------------------------------------------------------------

mod block_on {
    use std::future::Future;
    use std::pin::pin;
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    use std::thread::Thread;

    struct Unpark(Thread);

    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }

    /// A minimal executor: polls `future` on this thread, parking between wake-ups.
    pub fn block_on<F: Future>(future: F) -> F::Output {
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut future = pin!(future);
        loop {
            if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
                return v;
            }
            std::thread::park();
        }
    }
}
use block_on::block_on;

// Twisted: test_inlinecb.BasicTests.testStackUsage (5000 yields of succeed(1))
#[test]
fn await_many_fired_deferreds() {
    let total = block_on(async {
        let mut total = 0u32;
        for _ in 0..5000 {
            total += Deferred::<u32>::succeed(1).await.unwrap();
        }
        total
    });
    assert_eq!(total, 5000);
}

// Twisted: test_inlinecb.BasicTests.testBasics / testProducesException
// (a failure awaited is raised at the await: `?`)
#[test]
fn await_failure_raises_at_the_await() {
    async fn f() -> Result<u32, Failure> {
        let a = Deferred::<u32>::succeed(5).await?;
        let b = Deferred::<u32>::fail(Failure::msg("raised at the await")).await?;
        Ok(a + b)
    }
    assert_eq!(
        block_on(f()).unwrap_err().to_string(),
        "raised at the await"
    );
}

// ---------------------------------------------------------------------------------------------
// N. Failure (TF)
// ---------------------------------------------------------------------------------------------

// Twisted: test_failure.FailureTests.test_failAndTrap
#[test]
fn fail_and_trap() {
    let f = Failure::new(GenericError::new("NotImplementedError"));
    let e = f.trap::<GenericError>().expect("it is a GenericError");
    assert_eq!(e.message, "NotImplementedError");
}

// Twisted: test_failure.FailureTests.test_trapRaisesWrappedException
// (adapted: a mismatched trap hands back the same failure, with the same error inside)
#[test]
fn trap_mismatch_hands_back_same_failure() {
    let error = GenericError::new("ValueError");
    let id = error.id;
    let f = Failure::new(error);
    let back = f.trap::<OtherError>().expect_err("not an OtherError");
    assert_eq!(id_of(&back), id);
}

// Twisted: test_failure.FailureTests.test_ExplictPass
#[test]
fn trap_explicit_pass() {
    let f = Failure::new(GenericError::new("RuntimeError"));
    assert!(f.is::<GenericError>());
    assert!(!f.is::<OtherError>());
    assert_eq!(f.to_string(), "RuntimeError");
}

// Twisted: test_failure.FailureTests.test_repr
// (adapted: Display is the error's message; Debug starts with it)
#[test]
fn failure_repr() {
    let f = Failure::new(GenericError::new("division by zero"));
    assert_eq!(f.to_string(), "division by zero");
    assert!(format!("{f:?}").starts_with("division by zero"));
}

// ---------------------------------------------------------------------------------------------
// Not ported (no typed equivalent), for the record:
// - testAlreadyCalled_CC/_CE/_EC/_EE, testAlreadyCalledDebug_*, testNoDebugging,
//   testSwitchDebugging: a Resolver's fire methods take `self`; a second fire does not compile.
// - testPausedFailure, testUnpauseBeforeCallback, test_chainedPausedDeferredWithResult,
//   test_pausedDeferredChained: there is no pause()/unpause() in the API.
// - test_errbackWithNoArgs*, test_errorInCallback*CaptureVars*: no "current exception" and no
//   frame locals in Rust.
// - test_circularChainWarning / test_circularChainException: no warning; a step that returns
//   its own chain's end (through a slot, as `add_*` consumes it) is ported as
//   `callback_returning_its_own_chain_waits_until_cancelled`.
// - test_chainDeferredRecords*/test_explicitChainClearedWhenResolved: `_chainedTo` is internal.
// - test_cancellerArg: a canceller takes no argument (it captures what it needs).
// - test_addCallbacksNone*Args: there are no separate args tuples.
// - DeferredList / gatherResults / race / maybeDeferred / timeouts / lock / semaphore / queue:
//   combinators outside the core; tested with them.
// ---------------------------------------------------------------------------------------------
