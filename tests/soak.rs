//! A soak of both servers, as built examples on loopback: `server` (threads: tokio's multi-thread
//! runtime, the chains' queries on the library's pool) and `local_server` (one thread, a
//! `LocalSet`, `LocalDeferred` chains and a cache). Each gets thousands of connections from
//! client threads: well-behaved ones, ones that pipeline a burst and read the replies slowly,
//! ones that write a request a byte at a time, ones that disconnect mid-request, ones that send
//! garbage (non-UTF-8, random bytes) or over-long lines. Every reply that comes is checked
//! against what the protocol says.
//!
//! At the end: the server's resident memory (VmRSS from /proc) has not grown beyond a bound since
//! the warm-up, nor has its thread count; every name asked during the soak is answered again at
//! once (a chain left pending — a cache entry still waiting for a lookup that never came home —
//! would hang it); and the local server's `/stats` counters add up.
//!
//! Each server is soaked twice: with its directory in memory, where no query fails; and with it
//! in a file (`--db`) whose table another connection takes away for 30 ms every 150 ms from the
//! warm-up to the end, so queries fail all through the soak. A request for a name may then be
//! answered with the failure (`ERR lookup failed: ...`), every other reply is as before; memory
//! stays as flat, and once the table is back every name is answered right: no failure is kept.
//!
//! Bounded: a fixed number of connections, every read and write with a deadline, and the whole
//! soak of one server under `SOAK_DEADLINE` (scaled with the connections); the servers are
//! killed when a test ends. Loopback only. `SOAK_CONNECTIONS` scales the connections per server
//! (default 12,000, after a warm-up of 2,000).
//! (`cargo test` builds the examples first; with `--test soak`, build them:
//! `cargo build --examples --features tokio`.)
#![cfg(all(feature = "tokio", target_os = "linux"))]

#[allow(dead_code)] // the soak uses the protocol's constants and its name check
#[path = "../examples/directory/protocol.rs"]
mod protocol;

mod rng;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use protocol::{MAX_LINE, NOT_UTF8, too_long};

mod examples_support;
use examples_support::{BAD_NAME, CASES, FileDirectory, ServerProcess, counter, start_server_with};
use rng::Rng;

/// Client threads per server.
const CLIENT_THREADS: usize = 16;
/// The longest one read or write may take.
const IO_DEADLINE: Duration = Duration::from_secs(10);
/// The longest the soak of one server may take at the default 12,000 connections (it takes a
/// few seconds); a soak of more connections may take as much longer ([`soak_deadline`]).
const SOAK_DEADLINE: Duration = Duration::from_secs(90);
/// How long a request after the soak may take to be answered ("at once").
const AT_ONCE: Duration = Duration::from_secs(1);
/// How much the server's resident memory may grow over the second half of the soak (6,000
/// connections, about 27,000 requests by default). A leak per connection or per request crosses
/// it many times over: a leaked 8 KiB read buffer per connection is 47 MiB, a leaked chain (a
/// few hundred bytes with its steps and captures) per request 5+ MiB, even 40 bytes per request
/// 1 MiB. What moves without a leak is the allocator's free lists and per-thread arenas, and the
/// stacks of blocking-pool threads tokio starts when more queries are in flight at once than
/// before (the threaded server); the first half sets those high-water marks.
const RSS_FLAT_BOUND_KIB: u64 = 1024;
/// How much it may grow from the end of the warm-up to the end: the same, plus the blocking pool
/// growing to the soak's concurrency (about 100–150 KiB of stack and arena per thread, 20 or so
/// threads more for the threaded server).
const RSS_GROWTH_BOUND_KIB: u64 = 4 * 1024;
/// Connections of the warm-up, at the soak's own concurrency.
const WARM_UP: usize = 2_000;

fn connections() -> usize {
    std::env::var("SOAK_CONNECTIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(12_000)
}

/// [`SOAK_DEADLINE`], for [`connections`] in proportion to the default's 12,000.
fn soak_deadline() -> Duration {
    SOAK_DEADLINE.mul_f64((connections() as f64 / 12_000.0).max(1.0))
}

// ---- the server's process ---------------------------------------------------------------------

/// `(VmRSS in KiB, threads)` of a process, from /proc.
fn rss_and_threads(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("Threads:"))
}

// ---- clients ----------------------------------------------------------------------------------

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, IO_DEADLINE).expect("connect");
    stream.set_read_timeout(Some(IO_DEADLINE)).unwrap();
    stream.set_write_timeout(Some(IO_DEADLINE)).unwrap();
    stream
}

/// Reads one reply line (without its newline).
fn reply(reader: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    let n = reader
        .read_line(&mut line)
        .unwrap_or_else(|e| panic!("a reply within {IO_DEADLINE:?}: {e}"));
    assert!(
        n > 0,
        "the server closed the connection instead of replying"
    );
    assert!(line.ends_with('\n'), "a whole line: {line:?}");
    line.pop();
    line
}

/// What one soak client saw.
#[derive(Default)]
struct Tally {
    connections: u64,
    answered: u64,
    /// Replies that were a failed lookup (counted in `answered` too).
    failed: u64,
    names: HashSet<String>,
}

/// How many names the directory does not have the soak asks while the directory fails: more
/// than the local server's cache holds (256), so its lookups do not stop once it is warm.
const UNKNOWN_NAMES: usize = 400;

/// Name `i` of those: lowercase letters, none an employee's (`nobody` and two letters).
fn unknown_name(i: usize) -> String {
    let letter = |n: usize| char::from(b'a' + (n % 26) as u8);
    format!("nobody{}{}", letter(i / 26), letter(i))
}

/// How a request for a name is answered when its lookup failed.
const LOOKUP_FAILED: &str = "ERR lookup failed: ";

/// Checks the reply to `request` against `expected`: the same, or, while the directory fails
/// (`failing`), the failure of a lookup for a request for a name. Counts the reply.
fn check(request: &str, reply: &str, expected: &str, failing: bool, tally: &mut Tally) {
    tally.answered += 1;
    if reply == expected {
        return;
    }
    assert!(
        failing && protocol::parse_name(request).is_ok() && reply.starts_with(LOOKUP_FAILED),
        "request {request:?}: {reply:?}, not {expected:?}"
    );
    tally.failed += 1;
}

/// One connection of the kind `kind`, its replies checked and counted in `tally`; `failing`:
/// whether the server's directory fails meanwhile.
fn one_connection(addr: SocketAddr, kind: usize, rng: &mut Rng, failing: bool, tally: &mut Tally) {
    let case = |rng: &mut Rng| CASES[rng.below(CASES.len())];
    let remember = |tally: &mut Tally, request: &str| {
        if let Ok(name) = protocol::parse_name(request) {
            tally.names.insert(name.to_owned());
        }
    };
    let stream = connect(addr);
    tally.connections += 1;
    match kind {
        // Well-behaved: a request, its reply, up to six times; then a clean close.
        // While the directory fails, half of their requests are for a name it does not have, of
        // more than the local server's cache holds: lookups go on all through the soak.
        0..=4 => {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut writer = stream;
            for _ in 0..1 + rng.below(6) {
                let (request, expected) = if failing && rng.below(2) == 0 {
                    let name = unknown_name(rng.below(UNKNOWN_NAMES));
                    let expected = format!("ERR no such employee: {name}");
                    (name, expected)
                } else {
                    let (request, expected) = case(rng);
                    (request.to_owned(), expected.to_owned())
                };
                remember(tally, &request);
                writer.write_all(format!("{request}\n").as_bytes()).unwrap();
                check(&request, &reply(&mut reader), &expected, failing, tally);
            }
        }
        // A burst of pipelined requests, the replies read slowly, a few bytes at a time.
        5 => {
            let requests: Vec<_> = (0..10 + rng.below(20)).map(|_| case(rng)).collect();
            let mut burst = Vec::new();
            for (request, _) in &requests {
                remember(tally, request);
                burst.extend_from_slice(request.as_bytes());
                burst.push(b'\n');
            }
            let mut writer = stream.try_clone().unwrap();
            writer.write_all(&burst).unwrap();
            writer.shutdown(Shutdown::Write).unwrap();
            let mut replies = Vec::new();
            let mut reader = stream;
            let mut chunk = [0u8; 7];
            let mut reads = 0;
            loop {
                let n = reader
                    .read(&mut chunk)
                    .expect("a reply within the deadline");
                if n == 0 {
                    break;
                }
                replies.extend_from_slice(&chunk[..n]);
                reads += 1;
                if reads % 8 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            let replies = String::from_utf8(replies).unwrap();
            assert!(replies.ends_with('\n'), "whole lines: {replies:?}");
            let lines: Vec<&str> = replies.lines().collect();
            assert_eq!(
                lines.len(),
                requests.len(),
                "a reply a request: {replies:?}"
            );
            for ((request, expected), line) in requests.iter().zip(lines) {
                check(request, line, expected, failing, tally);
            }
        }
        // A request written a byte at a time.
        6 => {
            let (request, expected) = case(rng);
            remember(tally, request);
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut writer = stream;
            for byte in format!("{request}\n").bytes() {
                writer.write_all(&[byte]).unwrap();
                if rng.below(3) == 0 {
                    std::thread::sleep(Duration::from_micros(300));
                }
            }
            check(request, &reply(&mut reader), expected, failing, tally);
        }
        // Gone mid-request: half a line, or a whole one, then the connection is dropped without
        // reading the reply (the server's write may fail: its problem alone).
        7 => {
            let (request, _) = case(rng);
            let mut writer = stream;
            let line = format!("{request}\n");
            let cut = if rng.below(2) == 0 {
                line.len()
            } else {
                rng.below(line.len())
            };
            // What the server reads, if it reads before it sees the close: maybe a prefix.
            remember(tally, line[..cut].trim_end_matches(['\n', '\r']));
            writer.write_all(&line.as_bytes()[..cut]).unwrap();
            if rng.below(2) == 0 {
                let _ = writer.shutdown(Shutdown::Both);
            }
        }
        // Garbage: lines of random bytes that are not UTF-8, lines of random ASCII that are not
        // a name; then a real request, answered on the same connection.
        8 => {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut writer = stream;
            for _ in 0..1 + rng.below(4) {
                let mut line = vec![0xFF]; // never UTF-8
                for _ in 0..rng.below(MAX_LINE - 2) {
                    line.push(match rng.next() as u8 {
                        b'\n' => b'?',
                        byte => byte,
                    });
                }
                line.push(b'\n');
                writer.write_all(&line).unwrap();
                assert_eq!(reply(&mut reader), NOT_UTF8);
                let mut ascii = vec![b'0' + rng.below(10) as u8]; // a digit: never a name
                for _ in 0..rng.below(40) {
                    ascii.push(b' ' + rng.below(95) as u8);
                }
                ascii.push(b'\n');
                writer.write_all(&ascii).unwrap();
                assert_eq!(
                    reply(&mut reader),
                    BAD_NAME,
                    "{:?}",
                    String::from_utf8_lossy(&ascii)
                );
                tally.answered += 2;
            }
            let (request, expected) = case(rng);
            remember(tally, request);
            writer.write_all(format!("{request}\n").as_bytes()).unwrap();
            check(request, &reply(&mut reader), expected, failing, tally);
        }
        // Over-long: more than MAX_LINE bytes with no newline (letters, or random bytes):
        // answered, then closed by the server.
        _ => {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut writer = stream;
            let len = MAX_LINE + 1 + rng.below(MAX_LINE * 3);
            let letters = rng.below(2) == 0;
            let mut line: Vec<u8> = (0..len)
                .map(|_| match rng.next() as u8 {
                    b if letters => b'a' + b % 26,
                    b'\n' => b'x',
                    b => b,
                })
                .collect();
            // `MAX_LINE` bytes and a `\r` may be a line whose `\n` is still to come: the server
            // rightly waits for the next byte. An over-long line must be one already.
            if line.len() == MAX_LINE + 1 && line.ends_with(b"\r") {
                line[MAX_LINE] = b'x';
            }
            // The server may close before reading it all: a reset is its right here.
            let _ = writer.write_all(&line);
            assert_eq!(reply(&mut reader), too_long());
            let mut rest = Vec::new();
            match reader.read_to_end(&mut rest) {
                Ok(_) => assert!(rest.is_empty(), "nothing after the too-long reply"),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
                Err(e) => panic!("reading the close: {e}"),
            }
            tally.answered += 1;
        }
    }
}

/// `n` connections from `CLIENT_THREADS` threads; the names asked. Panics (with the seed) on a
/// wrong reply, and if the deadline passes. `failing`: whether the directory fails meanwhile.
fn load(addr: SocketAddr, n: usize, seed: u64, failing: bool, deadline: Instant) -> Tally {
    let total = Arc::new(Mutex::new(Tally::default()));
    let threads: Vec<_> = (0..CLIENT_THREADS)
        .map(|t| {
            let total = total.clone();
            std::thread::spawn(move || {
                let mut tally = Tally::default();
                let mut rng = Rng::new(seed ^ ((t as u64 + 1) << 32));
                for i in (t..n).step_by(CLIENT_THREADS) {
                    assert!(
                        Instant::now() < deadline,
                        "the soak took longer than its bound"
                    );
                    let kind = rng.below(10);
                    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        one_connection(addr, kind, &mut rng, failing, &mut tally)
                    }));
                    if let Err(panic) = result {
                        eprintln!("soak: connection {i} (kind {kind}, seed {seed}) failed");
                        std::panic::resume_unwind(panic);
                    }
                }
                let mut total = total.lock().unwrap();
                total.connections += tally.connections;
                total.answered += tally.answered;
                total.failed += tally.failed;
                total.names.extend(tally.names);
            })
        })
        .collect();
    let mut failed = None;
    for thread in threads {
        if let Err(panic) = thread.join() {
            failed.get_or_insert(panic);
        }
    }
    if let Some(panic) = failed {
        std::panic::resume_unwind(panic);
    }
    Arc::try_unwrap(total)
        .ok()
        .expect("every client thread has ended")
        .into_inner()
        .unwrap()
}

/// Each name asked during the soak, asked again on one connection: each answered at once.
fn every_name_answered_at_once(addr: SocketAddr, names: &HashSet<String>) -> Duration {
    let stream = connect(addr);
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut slowest = Duration::ZERO;
    for name in names {
        let asked = Instant::now();
        writer.write_all(format!("{name}\n").as_bytes()).unwrap();
        let line = reply(&mut reader);
        let took = asked.elapsed();
        slowest = slowest.max(took);
        // A name from CASES, or a prefix of one that a client cut short.
        match CASES.iter().find(|(request, _)| request.trim() == name) {
            Some((_, expected)) => assert_eq!(line, *expected),
            None => assert!(
                line == format!("ERR no such employee: {name}")
                    || line.starts_with(&format!("OK {name} #")),
                "{name:?}: {line:?}"
            ),
        }
        assert!(took < AT_ONCE, "{name:?} took {took:?} after the soak");
    }
    slowest
}

/// What a soak saw: the server (still running), and the replies that were a failed lookup.
struct Soaked {
    server: ServerProcess,
    failed: u64,
}

/// The soak of one server; `max_threads`: the most threads it may have at the end. With a
/// `directory`, the server keeps it in that file (`--db`), and its table is taken away all
/// through the soak (`FileDirectory::take_the_table_away`: 30 ms every 150 ms).
fn soak(name: &str, seed: u64, max_threads: u64, directory: Option<&FileDirectory>) -> Soaked {
    let server = match directory {
        Some(directory) => start_server_with(name, &["--db".as_ref(), directory.path().as_ref()]),
        None => start_server_with(name, &[]),
    };
    let failing = directory.is_some();
    let pid = server.child.id();
    let started = Instant::now();
    let deadline = started + soak_deadline();
    let taker = directory.map(|directory| {
        directory.take_the_table_away(Duration::from_millis(150), Duration::from_millis(30), None)
    });
    // Warm-up at the soak's concurrency: the runtime's threads, the pool, the allocator's arenas
    // and the SQLite cache reach their working size (and, with the table taken away, the paths
    // of a failed lookup theirs).
    let warm = load(server.addr, WARM_UP, seed ^ 0xA5A5, failing, deadline);
    std::thread::sleep(Duration::from_millis(200));
    let (rss_warm, threads_warm) = rss_and_threads(pid);
    let n = connections();
    let half = load(server.addr, n / 2, seed, failing, deadline);
    let (rss_half, _) = rss_and_threads(pid);
    let rest = load(
        server.addr,
        n - n / 2,
        seed.rotate_left(17),
        failing,
        deadline,
    );
    let taken_away = taker.map_or(0, |taker| taker.stop());
    std::thread::sleep(Duration::from_millis(200));
    let (rss_end, threads_end) = rss_and_threads(pid);
    let mut names = half.names;
    names.extend(rest.names);
    names.extend(warm.names);
    let slowest = every_name_answered_at_once(server.addr, &names);
    let failed = warm.failed + half.failed + rest.failed;
    let with = match directory {
        Some(_) => format!(
            " with its table taken away {taken_away} times ({failed} replies a failed lookup)"
        ),
        None => String::new(),
    };
    eprintln!(
        "soak {name}{with}: {} connections, {} replies checked in {:?} (after a warm-up of {} \
         connections); VmRSS {rss_warm} KiB after the warm-up, {rss_half} KiB at half, \
         {rss_end} KiB at the end ({:+} KiB); threads {threads_warm} -> {threads_end}; \
         every name answered again within {slowest:?}",
        half.connections + rest.connections,
        half.answered + rest.answered,
        started.elapsed(),
        warm.connections,
        rss_end as i64 - rss_warm as i64,
    );
    assert_eq!(half.connections + rest.connections, n as u64);
    if failing {
        // Both kinds of reply to a name were seen: the soak made lookups fail, and not all.
        assert!(
            failed > 0 && failed < warm.answered + half.answered + rest.answered,
            "{name}: {failed} of the replies a failed lookup"
        );
    }
    assert!(
        rss_end <= rss_half + RSS_FLAT_BOUND_KIB,
        "{name}'s memory grew from {rss_half} KiB at half to {rss_end} KiB at the end"
    );
    assert!(
        rss_end <= rss_warm + RSS_GROWTH_BOUND_KIB,
        "{name}'s memory grew from {rss_warm} KiB to {rss_end} KiB"
    );
    assert!(
        threads_end <= max_threads,
        "{name} has {threads_end} threads (after the warm-up: {threads_warm})"
    );
    Soaked { server, failed }
}

/// The local server's `/stats` reply.
fn stats(server: &ServerProcess) -> String {
    let stream = connect(server.addr);
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    writer.write_all(b"/stats\n").unwrap();
    let stats = reply(&mut reader);
    eprintln!("soak local_server: {stats}");
    stats
}

#[test]
fn the_threaded_server_survives_a_soak_with_flat_memory() {
    // Its queries go to tokio's blocking pool (`defer_to_thread` inside a runtime), which grows
    // with the queries in flight and lets a thread go after 10 s idle: bounded by the clients'
    // concurrency (one request in flight per connection, one connection per client thread, plus
    // the requests of connections that went away), not by the number of connections.
    drop(soak("server", 0x5EED_0001, 64, None));
}

#[test]
fn the_threaded_server_survives_a_soak_with_its_directory_failing() {
    let directory = FileDirectory::new("soak-server");
    drop(soak("server", 0x5EED_0003, 64, Some(&directory)));
}

#[test]
fn the_local_server_survives_a_soak_with_flat_memory_and_no_chain_left_waiting() {
    // Its thread and the 4 pool threads it allows tokio (`max_blocking_threads`).
    let soaked = soak("local_server", 0x5EED_0002, 5, None);
    let stats = stats(&soaked.server);
    // Every lookup that was started ended in the cache (none failed, none is still on its way
    // with requests waiting for it): one answered entry per lookup, fewer than the cache holds.
    assert_eq!(
        counter(&stats, "names"),
        counter(&stats, "misses"),
        "{stats}"
    );
    assert!(counter(&stats, "names") < 256, "{stats}");
}

#[test]
fn the_local_server_survives_a_soak_with_its_directory_failing_and_keeps_no_failure() {
    let directory = FileDirectory::new("soak-local_server");
    let soaked = soak("local_server", 0x5EED_0004, 5, Some(&directory));
    let stats = stats(&soaked.server);
    // A lookup that failed left nothing in the cache, and each failed reply was a request that
    // missed the cache (a lookup started for it, or joined on its way): the cache holds fewer
    // names than lookups were started (some of them forgotten, past its bound), and the misses
    // and joins cover the failures. Every name was answered right after the soak (`soak`): none
    // was remembered failed.
    let (names, misses, joined) = (
        counter(&stats, "names"),
        counter(&stats, "misses"),
        counter(&stats, "joined"),
    );
    assert!(names < misses, "some lookups failed: {stats}");
    assert!(names <= 256, "the cache's bound: {stats}");
    assert!(
        misses + joined >= names + soaked.failed,
        "{} failed replies, each a miss or a join that did not end in the cache: {stats}",
        soaked.failed
    );
}
