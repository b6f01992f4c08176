//! The example servers at their limits, run as a user runs them: out of file descriptors (a
//! failed accept costs that client, not the server), a line of exactly `MAX_LINE` bytes ending
//! in `\r\n`, `--port 0`, and `/stats` counting every line. Each test starts the built example
//! (or the threaded server's `serve`, as tests/server.rs does) and talks to it on loopback,
//! every read with a deadline; the server processes are killed when a test ends. (`cargo test`
//! builds the examples first; with `--test server_limits`, build them:
//! `cargo build --examples --features tokio`.)
#![cfg(all(feature = "tokio", target_os = "linux"))]

#[path = "../examples/directory/mod.rs"]
mod directory;

mod examples_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use directory::server::MAX_LINE;
use examples_support::{BAD_NAME, CASES, ServerProcess, example};

const DEADLINE: Duration = Duration::from_secs(10);
const ALICE: &str = CASES[0].1;

/// Starts the server example `name` with `args` under `sh -c 'ulimit -n FDS; exec ...'` (no
/// limit of its own if `fds` is `None`); returns it and the first line it printed.
fn spawn(name: &str, fds: Option<u32>, args: &[&str]) -> (ServerProcess, String) {
    let binary = example(name);
    assert!(binary.exists(), "{} is not built", binary.display());
    let limit = fds.map_or(String::new(), |n| format!("ulimit -n {n} && "));
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("{limit}exec \"$0\" \"$@\""))
        .arg(&binary)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("sh");
    let stdout = child.stdout.take().unwrap();
    let (first, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = first.send(lines.next());
        for _ in lines {}
    });
    let server = ServerProcess {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
    };
    let line = match rx.recv_timeout(DEADLINE) {
        Ok(Some(Ok(line))) => line,
        other => panic!("{name} printed no first line: {other:?}"),
    };
    (server, line)
}

/// Starts `name` on a free port, with at most `fds` file descriptors.
fn start(name: &str, fds: Option<u32>) -> ServerProcess {
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (mut server, line) = spawn(name, fds, &["--port", &port.to_string()]);
        if line.starts_with("listening on ") {
            server.addr = SocketAddr::from(([127, 0, 0, 1], port));
            return server;
        }
    }
    panic!("{name} did not start listening");
}

/// Sends `script`, closes the sending side, and reads every reply until the server closes.
fn transcript(addr: SocketAddr, script: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream.write_all(script).unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut replies = String::new();
    stream
        .read_to_string(&mut replies)
        .expect("all replies within the deadline");
    replies
}

/// Many clients at once take every file descriptor the server may open: while they are
/// connected it cannot accept more, but once they are gone it must serve the next client, not
/// have stopped for good ("server stopped: Too many open files").
fn survives_running_out_of_descriptors(name: &str) {
    let mut server = start(name, Some(32));
    // (A connect may be refused once the server is gone: the assertion below says why.)
    let crowd: Vec<TcpStream> = (0..48)
        .filter_map(|_| TcpStream::connect(server.addr).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    drop(crowd);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "{name} exited when it ran out of file descriptors"
    );
    assert_eq!(transcript(server.addr, b"alice\n"), format!("{ALICE}\n"));
}

#[test]
fn the_threaded_server_survives_running_out_of_file_descriptors() {
    survives_running_out_of_descriptors("server");
}

#[test]
fn the_local_server_survives_running_out_of_file_descriptors() {
    survives_running_out_of_descriptors("local_server");
}

/// A line of `MAX_LINE` bytes is not "longer than MAX_LINE bytes", whether it ends with `\n` or
/// `\r\n`: both are answered, and the connection goes on.
fn a_crlf_line_of_max_line_bytes(addr: SocketAddr) {
    for end in ["\n", "\r\n"] {
        let script = format!("{}{end}alice{end}", "a".repeat(MAX_LINE));
        assert_eq!(
            transcript(addr, script.as_bytes()),
            format!("{BAD_NAME}\n{ALICE}\n"),
            "a line of {MAX_LINE} bytes ending {end:?}"
        );
    }
    // One byte more is too long, with either ending.
    for end in ["\n", "\r\n"] {
        let script = format!("{}{end}alice{end}", "a".repeat(MAX_LINE + 1));
        assert_eq!(
            transcript(addr, script.as_bytes()),
            format!("ERR bad request: longer than {MAX_LINE} bytes\n"),
        );
    }
}

#[test]
fn a_crlf_line_of_max_line_bytes_is_answered_by_the_threaded_server() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let addr = runtime.block_on(async {
        let db = directory::Db::open(None).expect("an in-memory directory");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(directory::server::serve(listener, db));
        addr
    });
    a_crlf_line_of_max_line_bytes(addr);
}

#[test]
fn a_crlf_line_of_max_line_bytes_is_answered_by_the_local_server() {
    let server = start("local_server", None);
    a_crlf_line_of_max_line_bytes(server.addr);
}

/// `server --port 0` listens on a free port: the line it prints must say which.
#[test]
fn the_threaded_server_on_port_0_prints_the_port_it_listens_on() {
    let (_server, line) = spawn("server", None, &["--port", "0"]);
    let addr: SocketAddr = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{line:?}"))
        .parse()
        .unwrap();
    assert_ne!(addr.port(), 0, "{line:?}");
    assert_eq!(transcript(addr, b"alice\n"), format!("{ALICE}\n"));
}

/// `/stats` counts the requests of the connection: a line that is not UTF-8 is a request (it
/// is answered as a bad one) like any other.
#[test]
fn stats_counts_every_request_of_the_connection() {
    let server = start("local_server", None);
    let replies = transcript(server.addr, b"\xff\nzed\n\xfe\n/stats\n");
    let stats = replies.lines().last().unwrap();
    assert!(
        stats.ends_with("this connection: requests 4, answers from the cache 0"),
        "{replies}"
    );
}

/// Bad command lines name what is wrong (not the usage alone), with exit code 2; `--help`
/// is the usage on stdout and exit code 0.
#[test]
fn bad_arguments_are_named_and_help_is_no_error() {
    for (name, usage) in [
        ("server", "usage: server [--port PORT] [--db FILE]"),
        (
            "local_server",
            "usage: local_server [--port PORT] [--db FILE]   (0: any free port)",
        ),
    ] {
        let binary = example(name);
        let run = |args: &[&str]| {
            Command::new(&binary)
                .args(args)
                .stdin(Stdio::null())
                .output()
                .expect("the example")
        };
        for (args, says) in [
            (&["--port"][..], "`--port` needs a port number"),
            (
                &["--port", "99999"],
                "`--port 99999`: a port is a number from 0 to 65535",
            ),
            (
                &["--port", "x"],
                "`--port x`: a port is a number from 0 to 65535",
            ),
            (&["--colour"], "unexpected argument `--colour`"),
            (&["--db"], "`--db` needs the path of a SQLite file"),
            (&["--db", ""], "`--db` needs the path of a SQLite file"),
        ] {
            let out = run(args);
            assert_eq!(out.status.code(), Some(2), "{name} {args:?}");
            assert_eq!(
                String::from_utf8_lossy(&out.stderr),
                format!("{usage}\n{says}\n"),
                "{name} {args:?}"
            );
        }
        // An argument that is not UTF-8 is named too (not a panic in `std::env::args`).
        {
            use std::os::unix::ffi::OsStrExt;
            let bad = std::ffi::OsStr::from_bytes(b"--p\xffrt");
            for (args, says) in [
                (vec![bad], "unexpected argument `--p\u{fffd}rt`"),
                (
                    vec![std::ffi::OsStr::new("--port"), bad],
                    "`--port --p\u{fffd}rt`: a port is a number from 0 to 65535",
                ),
            ] {
                let out = Command::new(&binary)
                    .args(&args)
                    .stdin(Stdio::null())
                    .output()
                    .expect("the example");
                assert_eq!(out.status.code(), Some(2), "{name} {args:?}");
                assert_eq!(
                    String::from_utf8_lossy(&out.stderr),
                    format!("{usage}\n{says}\n"),
                    "{name} {args:?}"
                );
            }
        }
        // A directory file that cannot be opened is named, with exit code 1.
        let out = run(&[
            "--port",
            "0",
            "--db",
            "/nonexistent-directory/staff.sqlite3",
        ]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{name} with a file it cannot open"
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "cannot open the employee database: unable to open database file: \
             /nonexistent-directory/staff.sqlite3\n",
            "{name}"
        );
        let out = run(&["--help"]);
        assert_eq!(out.status.code(), Some(0), "{name} --help");
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{usage}\n"));
    }
}

/// A stdout that cannot be written does not stop a server (no panic on its "listening on"
/// line): it says where it listens on stderr, and serves.
#[test]
fn a_server_whose_stdout_cannot_be_written_serves() {
    for name in ["server", "local_server"] {
        let binary = example(name);
        let mut child = Command::new(&binary)
            .args(["--port", "0"])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create("/dev/full").unwrap())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the example");
        let stderr = child.stderr.take().unwrap();
        let mut server = ServerProcess {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let (first, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stderr).lines();
            let _ = first.send(lines.next());
            for _ in lines {}
        });
        let line = match rx.recv_timeout(DEADLINE) {
            Ok(Some(Ok(line))) => line,
            other => panic!("{name} said nothing on stderr: {other:?}"),
        };
        let addr = line
            .strip_prefix("listening on ")
            .and_then(|rest| rest.split(' ').next())
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("{name}: {line:?}"));
        assert!(
            line.ends_with("(cannot write to stdout: No space left on device (os error 28))"),
            "{line}"
        );
        server.addr = addr;
        assert_eq!(transcript(server.addr, b"alice\n"), format!("{ALICE}\n"));
    }
}

/// `/stats` with spaces around it is `/stats`, as a name with spaces around it is the name.
#[test]
fn stats_with_spaces_around_it_is_stats() {
    let server = start("local_server", None);
    let replies = transcript(server.addr, b"  carol \n /stats \n");
    let stats = replies.lines().last().unwrap();
    assert!(stats.starts_with("OK stats: "), "{replies}");
}
