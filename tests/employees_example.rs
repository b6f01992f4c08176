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
        &[""],
        // An empty path (`--db "$UNSET"`) is no directory: not a temporary one, seeded and
        // answered from as if it were the directory.
        &["alice", "--db", ""],
    ] {
        let out = employees(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stdout)
        );
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

/// A fresh directory of its own for a test, seeded by a first run: its file.
fn seeded_directory(test: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir =
        std::env::temp_dir().join(format!("deferred-employees-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("directory.sqlite3");
    let out = employees(&["carol", "--db", db.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    (dir, db)
}

/// A lookup only reads: a seeded directory opened read-only answers (not "attempt to write a
/// readonly database": the seed rows are not inserted again on every run).
#[test]
fn a_read_only_directory_is_looked_up() {
    let (dir, db) = seeded_directory("read-only");
    let uri = format!("file:{}?mode=ro", db.display());
    let out = employees(&["dave", "--db", &uri]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "dave #4: Engineer, reports to alice #2 (Staff Engineer)\n"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Another process writing to the directory (holding SQLite's write lock) does not stop a
/// lookup, which only reads (no 5 s wait, then "database is locked").
#[test]
fn a_directory_another_process_is_writing_to_is_looked_up() {
    let (dir, db) = seeded_directory("locked");
    let writer = rusqlite::Connection::open(&db).unwrap();
    writer
        .execute_batch("BEGIN IMMEDIATE; UPDATE employees SET title = title WHERE id = 1;")
        .unwrap();
    let out = employees(&["dave", "--db", db.to_str().unwrap()]);
    writer.execute_batch("ROLLBACK").unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "dave #4: Engineer, reports to alice #2 (Staff Engineer)\n"
    );
    drop(writer);
    let _ = std::fs::remove_dir_all(&dir);
}

/// An employee whose manager's row is missing is not "no such employee: #99" (alice is there):
/// the message says what is wrong with the directory.
#[test]
fn a_missing_manager_row_is_named() {
    let (dir, db) = seeded_directory("missing-manager");
    // (As a hand edit does, with the foreign key check off: SQLite's default.)
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
    conn.execute(
        "UPDATE employees SET manager_id = 99 WHERE name = 'alice'",
        [],
    )
    .unwrap();
    drop(conn);
    for nested in [false, true] {
        let mut args = vec!["alice", "--db", db.to_str().unwrap()];
        if nested {
            args.push("--nested");
        }
        let out = employees(&args);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "");
        assert_eq!(
            text(&out.stderr),
            "lookup failed: alice #2 reports to #99, who is not in the directory\n"
        );
    }
    // A manager who manages themself is no loop: one level is looked up.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute(
        "UPDATE employees SET manager_id = 2 WHERE name = 'alice'",
        [],
    )
    .unwrap();
    drop(conn);
    let out = employees(&["alice", "--db", db.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "alice #2: Staff Engineer, reports to alice #2 (Staff Engineer)\n"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Another database error (a manager id that is text, written by hand) is one line naming it,
/// with its sources, not the failure's `Debug` form (whose backtrace a user's `RUST_BACKTRACE=1`
/// would print).
#[test]
fn another_database_error_is_one_line() {
    let (dir, db) = seeded_directory("bad-manager-id");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
    conn.execute(
        "UPDATE employees SET manager_id = 'abc' WHERE name = 'alice'",
        [],
    )
    .unwrap();
    drop(conn);
    let binary = example("employees");
    let out = Command::new(&binary)
        .args(["alice", "--db", db.to_str().unwrap()])
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with("lookup failed: "), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--help` is no mistake: the usage on stdout, and exit code 0.
#[test]
fn help_prints_the_usage_and_exit_code_0() {
    for flag in ["--help", "-h"] {
        let out = employees(&[flag]);
        assert_eq!(out.status.code(), Some(0), "{flag}: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).starts_with("usage: employees NAME"),
            "{flag}"
        );
        assert_eq!(text(&out.stderr), "", "{flag}");
    }
    // A word that starts with `-` is a flag, not a name to look up.
    let out = employees(&["-x"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "usage: employees NAME [--nested] [--db PATH|:memory:]\nunknown option `-x`\n"
    );
}

/// A `--db` path whose directory is not there is an error naming the path: its directories
/// are not made (only the default file's are).
#[test]
fn a_db_path_in_a_missing_directory_is_named_and_not_made() {
    let dir = std::env::temp_dir().join(format!("deferred-employees-nodir-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = dir.join("sub").join("directory.sqlite3");
    let out = employees(&["alice", "--db", db.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with(&format!(
            "cannot open the employee database {}: ",
            db.display()
        )),
        "{}",
        text(&out.stderr)
    );
    assert!(!dir.exists(), "{} was made", dir.display());
}

/// A stdout that cannot be written is an error on stderr and exit code 1, not a panic.
#[cfg(target_os = "linux")]
#[test]
fn a_stdout_that_cannot_be_written_is_reported_not_a_panic() {
    let binary = example("employees");
    let out = Command::new(&binary)
        .args(["alice", "--db", ":memory:"])
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        "cannot write the answer: No space left on device (os error 28)\n"
    );
}

/// Arguments need not be UTF-8 (a Unix path is bytes): a `--db` path that is not UTF-8 is
/// opened, and a name that is not is a usage error, exit code 2 — not a panic in
/// `std::env::args` (exit code 101 and a backtrace).
#[cfg(unix)]
#[test]
fn arguments_that_are_not_utf8_are_no_panic() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    let dir = std::env::temp_dir().join(format!("deferred-employees-bytes-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join(OsStr::from_bytes(b"directory-\xff.sqlite3"));
    let binary = example("employees");
    let out = Command::new(&binary)
        .arg("dave")
        .arg("--db")
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "dave #4: Engineer, reports to alice #2 (Staff Engineer)\n"
    );
    assert!(db.exists());

    let out = Command::new(&binary)
        .arg(OsStr::from_bytes(b"al\xffce"))
        .args(["--db", ":memory:"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        "usage: employees NAME [--nested] [--db PATH|:memory:]\n`al\u{fffd}ce` is not UTF-8\n"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
