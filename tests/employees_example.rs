//! The README's main job, run as a user runs it: `employees NAME`, its output and exit codes.
//! (`cargo test` builds the examples before it runs the tests.)

use std::process::{Command, Output};

mod examples_support;
use examples_support::example;

fn employees(args: &[&str]) -> Output {
    let binary = example("employees");
    Command::new(&binary)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn looks_up_an_employee_and_their_manager() {
    for nested in [false, true] {
        let mut args = vec!["alice", "--db", ":memory:"];
        if nested {
            args.push("--nested");
        }
        let out = employees(&args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(
            text(&out.stdout),
            "alice #2: Staff Engineer, reports to carol #1 (Director of Engineering)\n"
        );
    }
}

#[test]
fn an_employee_without_a_manager() {
    let out = employees(&["carol", "--db", ":memory:"]);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), "carol #1: Director of Engineering\n");
}

#[test]
fn an_unknown_name_is_a_clear_message_and_exit_code_1() {
    let out = employees(&["zed", "--db", ":memory:"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(text(&out.stderr), "no such employee: zed\n");
}

#[test]
fn bad_arguments_print_the_usage_and_exit_code_2() {
    for args in [
        &[][..],
        &["alice", "bob"],
        &["--colour"],
        &["alice", "--db"],
    ] {
        let out = employees(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).starts_with("usage: employees NAME"),
            "{args:?}"
        );
    }
}

#[test]
fn the_database_file_is_created_and_seeded_on_first_run() {
    let dir = std::env::temp_dir().join(format!("deferred-employees-{}", std::process::id()));
    let db = dir.join("directory.sqlite3");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for _ in 0..2 {
        let out = employees(&["dave", "--db", db.to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(
            text(&out.stdout),
            "dave #4: Engineer, reports to alice #2 (Staff Engineer)\n"
        );
    }
    assert!(db.exists());
    let _ = std::fs::remove_dir_all(&dir);
}
