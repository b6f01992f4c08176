//! The compile-time tests of `chain!`: `pass/` must compile and run, `fail/` must fail with the
//! `.stderr` next to it. Regenerate those with `TRYBUILD=overwrite cargo test --test ui`, then
//! read every one as a user would.
//!
//! Compiler messages change between releases, so the suite runs on the one toolchain the
//! `.stderr` files were written with.

#[rustversion::stable(1.95)]
#[test]
fn ui() {
    // Two runs of trybuild, not one: a run with only `compile_fail` cases checks them all in one
    // `cargo check --keep-going`, two at a time on two cores, where a run that also has `pass`
    // cases builds each case alone, one after another (68 s against 21 s for this suite on a
    // 2-core machine).
    {
        let cases = trybuild::TestCases::new();
        cases.pass("tests/ui/pass/*.rs");
    }
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/fail/*.rs");
    // The cases whose message the feature `registry` changes: those that name a local chain's
    // shared pointer (`std::rc::Rc` with it; without, the crate's own pointer, which is `Send`
    // as the `Rc` it is like, so the message names that `Rc` within it), and the `Inbox`'s
    // (with it, the registry has an item of that name too, so the message says
    // `deferred::Inbox`): the same source, with the message of each build.
    if cfg!(feature = "registry") {
        cases.compile_fail("tests/ui/fail_with_registry/*.rs");
    } else {
        cases.compile_fail("tests/ui/fail_without_registry/*.rs");
    }
}
