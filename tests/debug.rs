//! `Debug` of a Deferred and a Resolver: pending or fired (or spent), and for a pending one
//! what its chain waits on — its resolver, its inputs or another chain. With
//! the feature `registry` it says more (where the chain was made, for how long, its steps left:
//! tests/registry.rs); what is checked here holds with and without it.
#![deny(warnings, clippy::all)]

use std::future::Future;

use deferred::{Deferred, LocalDeferred};

#[test]
fn a_deferred_says_whether_it_is_pending_and_what_it_waits_on() {
    let (inner, resolver) = Deferred::<u32>::pending();
    let text = format!("{inner:?}");
    assert!(text.starts_with("Deferred { state: \"pending\""), "{text}");
    assert!(text.contains("waits_on: its resolver"), "{text}");
    let text = format!("{resolver:?}");
    assert!(text.contains("fired: false"), "{text}");
    assert!(
        text.contains(&format!("created_at: {}:", file!())),
        "a pending Resolver says where it was made: {text}"
    );

    let (outer, start) = Deferred::<u32>::pending();
    let outer = outer.add_callback(move |_| inner);
    start.callback(0);
    let text = format!("{outer:?}");
    assert!(text.contains("state: \"pending\""), "{text}");
    assert!(text.contains("waits_on: another chain"), "{text}");

    resolver.callback(2);
    assert_eq!(format!("{outer:?}"), "Deferred { state: \"fired\" }");
    assert_eq!(outer.wait().unwrap(), 2);
}

#[test]
fn a_fired_deferred_says_how_it_fired() {
    let ok = Deferred::<u32>::succeed(1);
    assert_eq!(format!("{ok:?}"), "Deferred { state: \"fired (success)\" }");
    let failed = Deferred::<u32>::fail(deferred::Failure::msg("no"));
    assert_eq!(
        format!("{failed:?}"),
        "Deferred { state: \"fired (failure)\" }"
    );
    drop(failed.wait());
    let mut spent = Deferred::<u32>::succeed(1);
    let waker = futures::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    assert!(std::pin::Pin::new(&mut spent).poll(&mut cx).is_ready());
    assert_eq!(format!("{spent:?}"), "Deferred { state: \"spent\" }");
    drop(ok);
}

#[test]
fn a_local_deferred_says_the_same() {
    let (d, resolver) = LocalDeferred::<u32>::pending();
    let text = format!("{d:?}");
    assert!(
        text.starts_with("LocalDeferred { state: \"pending\""),
        "{text}"
    );
    assert!(text.contains("waits_on: its resolver"), "{text}");
    resolver.callback(1);
    assert_eq!(format!("{d:?}"), "LocalDeferred { state: \"fired\" }");
    assert_eq!(d.wait().unwrap(), 1);
}

#[test]
fn a_resolver_whose_deferred_was_cancelled_says_it_has_fired() {
    let (d, resolver) = Deferred::<u32>::pending();
    d.cancel();
    // The cancel failed the root: the chain has its outcome, and no longer keeps where the
    // Resolver was made.
    assert_eq!(format!("{resolver:?}"), "Resolver { fired: true }");
    drop(resolver); // no `NeverFired`: the cancellation stays the outcome
    assert!(d.wait().unwrap_err().is_cancelled());

    let (d, resolver) = LocalDeferred::<u32>::pending();
    d.cancel();
    assert_eq!(format!("{resolver:?}"), "LocalResolver { fired: true }");
    drop(resolver);
    assert!(d.wait().unwrap_err().is_cancelled());
}

/// The public methods of both kinds checked against their docs: a spent Deferred polled again
/// panicked with its own message, not the one every other use of it gives; a Resolver whose
/// root a cancel failed said `fired: false` while its chain ran or waited; a combinator's or
/// `map_err`'s output said it waited on "its resolver", which nobody holds.
mod against_the_docs {
    use std::future::Future;
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    use deferred::Failure;

    fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    }

    macro_rules! both_kinds {
        ($m:ident, $D:ident) => {
            mod $m {
                use super::*;
                use deferred::$D as D;

                /// `Deferred`'s "# Panics": any use of a spent Deferred, "or polling it again —
                /// panics ("this Deferred's result was already taken")". Polling it again panicked
                /// with "Deferred polled after it completed" instead (and said "Deferred" for a
                /// `LocalDeferred`).
                #[test]
                fn polling_a_spent_deferred_panics_with_the_spent_message() {
                    let mut d = D::<u32>::succeed(1);
                    let mut cx = Context::from_waker(Waker::noop());
                    assert!(matches!(Pin::new(&mut d).poll(&mut cx), Poll::Ready(Ok(1))));
                    let p = catch_unwind(AssertUnwindSafe(|| {
                        let _ = Pin::new(&mut d).poll(&mut cx);
                    }))
                    .unwrap_err();
                    let m = panic_message(p);
                    assert!(m.contains("already taken"), "message: {m}");
                    // What `wait` says of the same spent Deferred.
                    let p = catch_unwind(AssertUnwindSafe(move || d.wait())).unwrap_err();
                    assert!(panic_message(p).contains("already taken"));
                }

                /// `Resolver`'s `Debug`: "whether it has fired yet (its chain has, or it has not)";
                /// tests/debug.rs: a Resolver whose Deferred was cancelled says it has fired. It said
                /// `fired: false` (and no `created_at`) when an errback of the cancellation returned
                /// a pending Deferred, so the chain was waiting, not `Fired`.
                #[test]
                fn a_resolver_cancelled_while_its_chain_waits_says_it_has_fired() {
                    let (d, r) = D::<u32>::pending();
                    let (inner, inner_r) = D::<u32>::pending();
                    let d = d.add_errback(move |_f: Failure| inner);
                    d.cancel();
                    let s = format!("{r:?}");
                    drop(r); // no `NeverFired`: the cancellation is the root's outcome
                    inner_r.callback(4);
                    assert_eq!(d.wait().unwrap(), 4);
                    assert!(s.contains("fired: true"), "{s}");
                }

                /// Same rule, while the chain's steps run after a cancel (inside its own errback).
                #[test]
                fn a_resolver_cancelled_while_its_steps_run_says_it_has_fired() {
                    use std::sync::{Arc, Mutex};
                    let seen = Arc::new(Mutex::new(String::new()));
                    let slot = Arc::new(Mutex::new(None));
                    let (d, r) = D::<u32>::pending();
                    let (s, sl) = (seen.clone(), slot.clone());
                    let d = d.add_errback(move |_f: Failure| {
                        let r = sl.lock().unwrap().take();
                        if let Some(r) = &r {
                            *s.lock().unwrap() = format!("{r:?}");
                        }
                        Ok(9)
                    });
                    *slot.lock().unwrap() = Some(r);
                    d.cancel();
                    assert_eq!(d.wait().unwrap(), 9);
                    let s = seen.lock().unwrap().clone();
                    assert!(s.contains("fired: true"), "{s}");
                }
            }
        };
    }

    both_kinds!(send, Deferred);
    both_kinds!(local, LocalDeferred);

    /// `Debug` of a Deferred: for a pending one, what its chain waits on — "its root's resolver,
    /// another chain, or nothing". A combinator's (or `map_err`'s) output has no resolver anyone
    /// holds: it waits on its inputs, as the `registry` build of the same `Debug` says ("N of its
    /// inputs, not arrived yet"). Without `registry` it said "waits_on: its resolver".
    #[test]
    fn a_fan_in_output_says_it_waits_on_its_inputs() {
        use deferred::{Deferred, LocalDeferred};
        let (d, r) = Deferred::<u32>::pending();
        let m: Deferred<u32, Failure> = d.map_err(|e: Failure| e);
        let s = format!("{m:?}");
        r.callback(1);
        assert_eq!(m.wait().unwrap(), 1);
        assert!(!s.contains("its resolver"), "{s}");

        let (d, r) = LocalDeferred::<u32>::pending();
        let g = deferred::local::gather_results(vec![d]);
        let s = format!("{g:?}");
        r.callback(1);
        assert_eq!(g.wait().unwrap(), vec![1]);
        assert!(!s.contains("its resolver"), "{s}");
    }
}
