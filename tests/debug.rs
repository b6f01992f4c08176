//! `Debug` of a Deferred and a Resolver: pending or fired (or spent), and for a pending one
//! what its chain waits on — its resolver or another chain. With
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
