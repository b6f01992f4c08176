//! What the tests that run the examples share: where cargo put an example's binary, and the
//! requests the directory servers answer with the replies they must give.
#![allow(dead_code)] // each test uses what it needs

use std::path::PathBuf;

/// The built example `name` (`cargo test --workspace` builds the examples package's examples
/// before it runs the tests).
pub fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/<this test> -> target/<profile>/examples/<name>
    let mut path = std::env::current_exe().expect("the test binary's path");
    path.pop();
    path.pop();
    path.push("examples");
    path.push(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    path
}

pub const BAD_NAME: &str = "ERR bad request: a name is lowercase letters a-z, 1 to 32 of them";

/// Requests and the replies they must get (from either server).
pub const CASES: &[(&str, &str)] = &[
    (
        "alice",
        "OK alice #2: Staff Engineer, reports to carol #1 (Director of Engineering)",
    ),
    ("carol", "OK carol #1: Director of Engineering"),
    ("zed", "ERR no such employee: zed"),
    (
        "dave",
        "OK dave #4: Engineer, reports to alice #2 (Staff Engineer)",
    ),
    ("ALICE", BAD_NAME),
    (
        "bob",
        "OK bob #3: Site Reliability Engineer, reports to carol #1 (Director of Engineering)",
    ),
    ("nobody", "ERR no such employee: nobody"),
    ("", BAD_NAME),
    (
        "erin",
        "OK erin #5: Engineer, reports to alice #2 (Staff Engineer)",
    ),
    ("drop table employees;", BAD_NAME),
    ("  carol  ", "OK carol #1: Director of Engineering"),
];
