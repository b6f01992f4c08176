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
