//! The status_board example (calloop) run as a user runs it: its output and exit codes. Only the
//! parts that do not depend on timing are checked exactly — the tick lines and the summary; the
//! order in which a late tick's line and the next tick's line print is the clock's business.
//! (`cargo test` builds the examples before it runs the tests; with `--test calloop_example`,
//! build it first: `cargo build --example status_board --features calloop`.)
#![cfg(feature = "calloop")]

use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

mod examples_support;
use examples_support::example;

/// Runs `status_board ARGS` to its end, within a bound (it takes `ticks` x 100 ms).
fn status_board(args: &[&str]) -> Output {
    let binary = example("status_board");
    assert!(
        binary.exists(),
        "{} is not built: run `cargo build --example status_board --features calloop` \
         (a plain `cargo test` builds it)",
        binary.display()
    );
    let child = Command::new(&binary)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
    let id = child.id();
    let (done, output) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match output.recv_timeout(Duration::from_secs(30)) {
        Ok(output) => output.expect("its output"),
        Err(_) => {
            // Stop the one process this test started, then fail.
            let _ = Command::new("kill").arg(id.to_string()).status();
            panic!("status_board {args:?} did not end within 30 s");
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The tick lines, sorted by tick, and the other lines.
fn tick_lines(stdout: &str) -> (Vec<(u32, String)>, Vec<String>) {
    let mut ticks = Vec::new();
    let mut others = Vec::new();
    for line in stdout.lines() {
        let tick = line
            .strip_prefix("tick ")
            .and_then(|rest| rest.split(':').next())
            .and_then(|n| n.trim().parse().ok());
        match tick {
            Some(tick) => ticks.push((tick, line.to_owned())),
            None => others.push(line.to_owned()),
        }
    }
    ticks.sort_by_key(|(tick, _)| *tick);
    (ticks, others)
}

#[test]
fn ten_ticks_two_late_readings_and_a_summary() {
    let out = status_board(&[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "", "nothing reported as unhandled");

    let (ticks, others) = tick_lines(&stdout);
    assert_eq!(
        ticks.iter().map(|(tick, _)| *tick).collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>(),
        "one line per tick:\n{stdout}"
    );
    for (tick, line) in &ticks {
        if tick % 4 == 0 {
            assert_eq!(
                line,
                &format!("tick {tick:>2}: no reading within 150ms, skipped")
            );
        } else {
            assert!(line.contains(" °C  (low "), "{line}");
        }
    }
    assert_eq!(ticks[0].1, "tick  1: 23.7 °C  (low 23.7 °C, high 23.7 °C)");
    assert_eq!(
        others,
        [
            "status board: 10 ticks, one every 100ms; a reading later than 150ms is skipped",
            "summary: 10 ticks, 8 readings, 2 late, 0 failed; low 20.9 °C, high 23.7 °C, mean 22.39 °C",
        ],
        "{stdout}"
    );
    assert!(stdout.ends_with("mean 22.39 °C\n"), "the summary is last");
}

#[test]
fn fewer_ticks_none_late() {
    let out = status_board(&["--ticks", "3"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let (ticks, others) = tick_lines(&stdout);
    assert_eq!(ticks.len(), 3, "{stdout}");
    assert_eq!(
        others.last().map(String::as_str),
        Some(
            "summary: 3 ticks, 3 readings, 0 late, 0 failed; low 21.1 °C, high 23.7 °C, mean 22.40 °C"
        )
    );
}

#[test]
fn bad_arguments_print_the_usage_and_exit_code_2() {
    for args in [
        &["--ticks"][..],
        &["--ticks", "0"],
        &["--ticks", "many"],
        &["--colour", "red"],
    ] {
        let out = status_board(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(text(&out.stdout), "", "{args:?}");
        assert!(
            text(&out.stderr).starts_with("usage: status_board"),
            "{args:?}"
        );
    }
}

#[test]
fn help_prints_the_usage_and_exit_code_0() {
    let out = status_board(&["--help"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("usage: status_board"));
    assert_eq!(text(&out.stderr), "");
}

/// A value out of range names the value, not `--ticks` as "unexpected".
#[test]
fn a_bad_tick_count_is_named() {
    for (args, says) in [
        (
            &["--ticks", "1001"][..],
            "`--ticks 1001`: N is a number from 1 to 1000",
        ),
        (
            &["--ticks", "0"],
            "`--ticks 0`: N is a number from 1 to 1000",
        ),
        (&["--ticks"], "`--ticks` needs a number"),
        (&["--colour"], "unexpected argument `--colour`"),
    ] {
        let out = status_board(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(
            text(&out.stderr),
            format!(
                "usage: status_board [--ticks N]   (N from 1 to 1000; 10 if not given)\n{says}\n"
            ),
            "{args:?}"
        );
    }
}

/// A stdout that cannot be written stops the board with a message and exit code 1: no panic
/// in a step, and no failure reported as unhandled.
#[cfg(target_os = "linux")]
#[test]
fn a_stdout_that_cannot_be_written_stops_the_board_with_a_message() {
    let binary = example("status_board");
    let out = Command::new(&binary)
        .args(["--ticks", "3"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        "status board stopped: cannot write to stdout: No space left on device (os error 28)\n"
    );
}

/// An argument that is not UTF-8 is named, with exit code 2: not a panic in `std::env::args`
/// (exit code 101).
#[cfg(unix)]
#[test]
fn an_argument_that_is_not_utf8_is_named() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    let binary = example("status_board");
    for (args, says) in [
        (
            vec![OsStr::from_bytes(b"--t\xffcks")],
            "unexpected argument `--t\u{fffd}cks`",
        ),
        (
            vec![OsStr::new("--ticks"), OsStr::from_bytes(b"1\xff")],
            "`--ticks 1\u{fffd}`: N is a number from 1 to 1000",
        ),
    ] {
        let out = Command::new(&binary)
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert_eq!(
            text(&out.stderr),
            format!(
                "usage: status_board [--ticks N]   (N from 1 to 1000; 10 if not given)\n{says}\n"
            ),
            "{args:?}"
        );
    }
}
