//! The compile-time tests of `chain!`: `pass/` must compile and run, `fail/` must fail with the
//! `.stderr` next to it. Regenerate those with `TRYBUILD=overwrite cargo test --test ui`, then
//! read every one as a user would.
//!
//! Compiler messages change between releases, so the suite runs on the one toolchain the
//! `.stderr` files were written with.

#[rustversion::stable(1.95)]
#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
