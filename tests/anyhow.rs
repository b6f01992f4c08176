//! `anyhow::Error` as a chain's error type (feature `anyhow`): `?` on any error in a step, the
//! chain's own failures (a panic) as `anyhow::Error`s, and `?` from a `Failure` into an
//! `anyhow::Result`.
#![cfg(feature = "anyhow")]

use anyhow::Context;
use deferred::{Deferred, Failure, Panicked, chain};

fn parse(text: &str) -> Deferred<u32, anyhow::Error> {
    chain! {
        Deferred::<String, anyhow::Error>::succeed(text.to_owned())
        then |text| text.trim().parse::<u32>().context("not a number")
        then |n| n * 2
    }
}

#[test]
fn a_chain_fails_with_anyhow_errors() {
    assert_eq!(parse(" 21 ").wait().unwrap(), 42);
    let error = parse("x").wait().unwrap_err();
    assert_eq!(error.to_string(), "not a number");
    assert!(
        error
            .chain()
            .any(|cause| cause.is::<std::num::ParseIntError>())
    );

    let recovered = chain! {
        parse("x")
        catch |e| if e.to_string() == "not a number" { 0 } else { 1 }
    };
    assert_eq!(recovered.wait().unwrap(), 0);
}

#[test]
fn the_chains_own_failures_become_anyhow_errors_and_come_back() {
    let panicked = chain! {
        Deferred::<u32, anyhow::Error>::succeed(1)
        then |_| -> u32 { panic!("step broke") }
    };
    let error = panicked.wait().unwrap_err();
    assert!(error.to_string().contains("step broke"), "{error}");
    let failure = Failure::from_anyhow(error);
    assert!(
        failure.is::<Panicked>(),
        "the same failure, back: {failure:?}"
    );

    let (d, resolver) = Deferred::<u32, anyhow::Error>::pending();
    drop(resolver);
    let never = Failure::from_anyhow(d.wait().unwrap_err());
    assert!(never.is::<deferred::NeverFired>());
}

#[test]
fn question_mark_takes_a_failure_into_an_anyhow_result() {
    fn lookup() -> anyhow::Result<u32> {
        Ok(Deferred::<u32>::fail(Failure::msg("no such user")).wait()?)
    }
    assert_eq!(lookup().unwrap_err().to_string(), "no such user");
    let wrapped = Failure::from_anyhow(anyhow::anyhow!("disk full"));
    assert_eq!(wrapped.to_string(), "disk full");
}

// A chain of `anyhow::Error`s whose Resolver is dropped, nobody reading it: the report is the
// `NeverFired` failure the chain made (what a chain of `Failure`s reports), not a type name.
#[test]
fn an_unhandled_failure_of_an_anyhow_chain_is_reported_with_its_message() {
    let ((), failures) = deferred::capture_unhandled(|| {
        let (d, resolver) = Deferred::<u32, anyhow::Error>::pending();
        drop(d.add_callback(|v| Ok(v + 1)));
        drop(resolver);
    });
    assert_eq!(failures.len(), 1);
    assert!(
        failures[0].is::<deferred::NeverFired>(),
        "{:?}",
        failures[0]
    );

    let ((), failures) = deferred::capture_unhandled(|| {
        drop(Deferred::<u32, anyhow::Error>::fail(anyhow::anyhow!(
            "disk full"
        )));
    });
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].to_string(), "disk full");

    let ((), failures) = deferred::capture_unhandled(|| {
        let d = deferred::LocalDeferred::<u32, anyhow::Error>::succeed(1)
            .add_callback(|_| -> anyhow::Result<u32> { panic!("step broke") });
        drop(d);
    });
    assert_eq!(failures.len(), 1);
    assert!(failures[0].is::<deferred::Panicked>(), "{:?}", failures[0]);
}

// A chain of `anyhow::Error`s (which says whether it holds a cancellation, as the combinators
// and `map_err` ask it) given a deadline: a canceller that fails with its own error keeps that
// failure, as on a chain of `Failure`s; a plain cancellation still becomes the timeout.
#[test]
fn add_timeout_on_an_anyhow_chain_keeps_the_cancellers_own_failure() {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    let clock = deferred::ManualClock::new();
    let slot: Arc<Mutex<Option<deferred::Resolver<u32, anyhow::Error>>>> = Arc::default();
    let in_canceller = slot.clone();
    let (d, resolver) = Deferred::<u32, anyhow::Error>::with_canceller(move || {
        if let Some(resolver) = in_canceller.lock().unwrap().take() {
            resolver.errback(anyhow::anyhow!("connection reset while aborting"));
        }
    });
    *slot.lock().unwrap() = Some(resolver);
    let d = d.add_timeout(Duration::from_secs(10), &clock);
    clock.advance(Duration::from_secs(15));
    let error = d.wait().unwrap_err();
    assert_eq!(error.to_string(), "connection reset while aborting");

    let (d, _resolver) = Deferred::<u32, anyhow::Error>::pending();
    let d = d.add_timeout(Duration::from_secs(10), &clock);
    clock.advance(Duration::from_secs(15));
    let failure = Failure::from_anyhow(d.wait().unwrap_err());
    assert!(failure.is::<deferred::TimedOut>(), "{failure:?}");
}

// `anyhow::Context` on a chain's failure: `Failure::from_anyhow` keeps the context layers (its
// message, `{:#}`, the `source()` chain) and what the failure inside says (its type, where a
// step raised it); it gave the failure back without them.
#[test]
fn from_anyhow_keeps_the_context_added_to_a_failure() {
    #[derive(Debug)]
    struct Refused;
    impl std::fmt::Display for Refused {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("connection refused")
        }
    }
    impl std::error::Error for Refused {}

    let d = Deferred::<u32>::succeed(1).add_callback(|_| Err::<u32, _>(Failure::new(Refused)));
    let raised = line!() - 1;
    let error = d
        .wait()
        .map_err(anyhow::Error::from)
        .context("connecting to db")
        .context("loading config")
        .unwrap_err();
    assert_eq!(
        format!("{error:#}"),
        "loading config: connecting to db: connection refused"
    );
    let failure = Failure::from_anyhow(error);
    assert_eq!(failure.to_string(), "loading config");
    assert_eq!(
        format!("{failure:#}"),
        "loading config: connecting to db: connection refused"
    );
    let mut sources = Vec::new();
    let mut source = failure.error().source();
    while let Some(cause) = source {
        sources.push(cause.to_string());
        source = cause.source();
    }
    assert_eq!(sources, ["connecting to db", "connection refused"]);
    // What the failure inside says stays.
    assert!(failure.is::<Refused>(), "{failure:?}");
    assert_eq!(failure.origin().map(|at| at.line()), Some(raised));
    let debug = format!("{failure:?}");
    assert!(
        debug.starts_with("loading config: connecting to db: connection refused\n  raised at step"),
        "{debug}"
    );
    // `trap` takes the error out, as from any failure.
    assert!(matches!(failure.trap::<Refused>(), Ok(Refused)));
}

// A chain of `anyhow::Error`s whose failure a step gave context: the unhandled report says it.
#[test]
fn an_unhandled_anyhow_failure_with_context_is_reported_with_it() {
    let ((), failures) = deferred::capture_unhandled(|| {
        let (d, resolver) = Deferred::<u32, anyhow::Error>::pending();
        drop(d.add_errback(|e: anyhow::Error| -> anyhow::Result<u32> {
            Err(e.context("fetching the user"))
        }));
        drop(resolver);
    });
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].to_string(), "fetching the user");
    assert!(
        format!("{:#}", failures[0]).starts_with("fetching the user: the Deferred created at"),
        "{:#}",
        failures[0]
    );
    assert!(
        failures[0].is::<deferred::NeverFired>(),
        "{:?}",
        failures[0]
    );
}

// Context added twice through `Failure::from_anyhow` (each layer of code converting its
// failure to add its own context): `is` looks through both layers, and so must `trap` (and a
// typed `catch`, which traps), rather than handing the failure back.
#[test]
fn trap_looks_through_context_added_twice_as_is_does() {
    #[derive(Debug, PartialEq)]
    struct Refused;
    impl std::fmt::Display for Refused {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("connection refused")
        }
    }
    impl std::error::Error for Refused {}

    let add_context = |failure: Failure, context: &'static str| {
        Failure::from_anyhow(anyhow::Error::from(failure).context(context))
    };
    let twice = || add_context(add_context(Failure::new(Refused), "connecting"), "loading");
    let failure = twice();
    assert_eq!(
        format!("{failure:#}"),
        "loading: connecting: connection refused"
    );
    assert!(failure.is::<Refused>());
    assert!(matches!(failure.trap::<Refused>(), Ok(Refused)));

    let d = chain! {
        Deferred::<u32>::fail(twice())
        catch |e: Refused| if e == Refused { 7 } else { 0 }
    };
    assert_eq!(d.wait().unwrap(), 7);

    // Through a shared copy of it, once the last holder.
    let copy = twice().share().to_failure();
    assert!(matches!(copy.trap::<Refused>(), Ok(Refused)));
}
