//! The local_server example run as a user runs it: the built binary started on a free port, then
//! 1,000 requests from 50 concurrent clients on loopback (known names, unknown names, bad
//! requests), every reply checked, and the cache seen working through `/stats`; and the same
//! bytes sent to it and to the threaded server give the same replies; and with its directory in a
//! file (`--db`) that another connection breaks or locks, each request says what went wrong, a
//! failure is not remembered, and the server recovers. Bounded: every read has a
//! deadline, and the server process is killed when a test ends, passed or failed.
//! (`cargo test` builds the examples before it runs the tests; with `--test local_server`, build
//! it first: `cargo build --example local_server --features tokio`.)
#![cfg(feature = "tokio")]

#[path = "../examples/directory/mod.rs"]
mod directory;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

mod examples_support;
use examples_support::{CASES, Client, FileDirectory, counter, start_server, start_server_with};

const CLIENTS: usize = 50;
const REQUESTS_PER_CLIENT: usize = 20;

/// The longest wait for one reply; the whole load has its own bound.
const READ_DEADLINE: Duration = Duration::from_secs(10);
const LOAD_DEADLINE: Duration = Duration::from_secs(60);

/// The request client `client` sends `i`-th.
fn case(client: usize, i: usize) -> (&'static str, &'static str) {
    CASES[(client * 7 + i) % CASES.len()]
}

/// The next reply line, within the deadline.
async fn reply<R: AsyncBufReadExt + Unpin>(lines: &mut tokio::io::Lines<R>) -> String {
    timeout(READ_DEADLINE, lines.next_line())
        .await
        .expect("a reply within the deadline")
        .expect("a readable reply")
        .expect("a reply line, not the end of the stream")
}

async fn client(addr: SocketAddr, client: usize) -> usize {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (read, mut write) = stream.into_split();
    let mut replies = BufReader::new(read).lines();
    for i in 0..REQUESTS_PER_CLIENT {
        let (request, expected) = case(client, i);
        write
            .write_all(format!("{request}\n").as_bytes())
            .await
            .unwrap();
        assert_eq!(reply(&mut replies).await, expected, "request {request:?}");
    }
    REQUESTS_PER_CLIENT
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_requests_from_fifty_clients_and_the_cache_answers_most() {
    let server = start_server("local_server");
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| tokio::spawn(client(server.addr, c)))
        .collect();
    let answered = timeout(LOAD_DEADLINE, async {
        let mut answered = 0;
        for c in clients {
            answered += c.await.expect("a client's replies were all right");
        }
        answered
    })
    .await
    .expect("all answered within the time bound");
    let elapsed = started.elapsed();
    assert_eq!(answered, CLIENTS * REQUESTS_PER_CLIENT);
    eprintln!("local_server: {answered} requests from {CLIENTS} clients answered in {elapsed:?}");

    // What the cache must have done: each name asked was looked up once (nothing was forgotten,
    // nothing failed), and every other request for it was a hit or joined a lookup on its way.
    let mut names_asked = 0;
    let mut names = HashSet::new();
    for c in 0..CLIENTS {
        for i in 0..REQUESTS_PER_CLIENT {
            let (request, _) = case(c, i);
            if let Ok(name) = directory::protocol::parse_name(request) {
                names_asked += 1;
                names.insert(name);
            }
        }
    }
    let stream = TcpStream::connect(server.addr).await.expect("connect");
    let (read, mut write) = stream.into_split();
    let mut replies = BufReader::new(read).lines();
    write.write_all(b"/stats\n").await.unwrap();
    let stats = reply(&mut replies).await;
    eprintln!("local_server: {stats}");
    assert!(stats.starts_with("OK stats: "), "{stats}");
    let (hits, misses, joined) = (
        counter(&stats, "hits"),
        counter(&stats, "misses"),
        counter(&stats, "joined"),
    );
    assert!(hits > 0, "the cache answered nothing: {stats}");
    assert_eq!(misses, names.len() as u64, "one lookup per name: {stats}");
    assert_eq!(hits + misses + joined, names_asked, "{stats}");
    assert_eq!(counter(&stats, "names"), names.len() as u64, "{stats}");
    assert_eq!(
        counter(&stats, "connections"),
        CLIENTS as u64 + 1,
        "{stats}"
    );
    assert_eq!(counter(&stats, "requests"), 1, "this connection's: {stats}");

    // A name asked again on this connection is answered from the cache.
    write.write_all(b"alice\n/stats\n").await.unwrap();
    assert_eq!(reply(&mut replies).await, CASES[0].1);
    let stats = reply(&mut replies).await;
    assert_eq!(counter(&stats, "hits"), hits + 1, "{stats}");
    assert_eq!(counter(&stats, "requests"), 3, "{stats}");
    assert_eq!(
        counter(&stats, "cache"),
        1,
        "answers from the cache: {stats}"
    );
}

/// Sends `script` on one connection, closes the sending side, and reads every reply until the
/// server closes the connection.
async fn transcript(addr: SocketAddr, script: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(script).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut replies = String::new();
    timeout(READ_DEADLINE, stream.read_to_string(&mut replies))
        .await
        .expect("all replies within the deadline")
        .expect("readable replies");
    replies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_cannot_tell_it_from_the_threaded_server() {
    let local = start_server("local_server");
    let threaded = {
        let db = directory::Db::open(None).expect("an in-memory directory");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let addr = listener.local_addr().unwrap();
        tokio::spawn(directory::server::serve(listener, db));
        addr
    };
    let mut requests: Vec<u8> = Vec::new();
    for (request, _) in CASES {
        requests.extend_from_slice(request.as_bytes());
        requests.push(b'\n');
    }
    let scripts: [&[u8]; 4] = [
        &requests,
        b"alice\r\n\xff\xfe\nalice\n\n  bob\nzed\nalice", // CRLF, not UTF-8, no final newline
        &[b'a'; directory::server::MAX_LINE * 2],         // too long: answered, then closed
        b"carol\n",
    ];
    for script in scripts {
        let expected = transcript(threaded, script).await;
        assert!(!expected.is_empty());
        assert_eq!(
            transcript(local.addr, script).await,
            expected,
            "script {:?}",
            String::from_utf8_lossy(script)
        );
    }
    let expected: String = CASES
        .iter()
        .map(|(_, reply)| format!("{reply}\n"))
        .collect();
    assert_eq!(transcript(local.addr, &requests).await, expected);
}

/// `local_server --db FILE`, its directory in `directory`'s file (the server makes it, with the
/// sample employees).
fn start_on_file(directory: &FileDirectory) -> examples_support::ServerProcess {
    start_server_with(
        "local_server",
        &[std::ffi::OsStr::new("--db"), directory.path().as_os_str()],
    )
}

/// The reply to a request whose lookup ran into the table renamed away.
const NO_TABLE: &str = "ERR lookup failed: no such table: employees";

/// A directory whose table another connection renames away: a name the cache holds is still
/// answered from it; any other is answered with what went wrong, every time it is asked (a
/// failed lookup is not remembered: each request tries again); once the table is back, the same
/// names are answered and remembered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_directory_is_answered_each_time_and_the_server_recovers() {
    let directory = FileDirectory::new("local-failing");
    let server = start_on_file(&directory);
    let other = directory.other();
    let (alice, carol) = (CASES[0], CASES[1]);
    let mut client = Client::connect(server.addr).await;
    assert_eq!(client.ask(alice.0).await, alice.1);

    other
        .execute_batch("ALTER TABLE employees RENAME TO away")
        .unwrap();
    assert_eq!(client.ask(alice.0).await, alice.1, "from the cache");
    for _ in 0..3 {
        assert_eq!(client.ask(carol.0).await, NO_TABLE);
    }
    let stats = client.ask("/stats").await;
    assert_eq!(
        counter(&stats, "misses"),
        4,
        "alice once, carol each time: {stats}"
    );
    assert_eq!(counter(&stats, "hits"), 1, "{stats}");
    assert_eq!(
        counter(&stats, "names"),
        1,
        "no failure remembered: {stats}"
    );

    other
        .execute_batch("ALTER TABLE away RENAME TO employees")
        .unwrap();
    assert_eq!(client.ask(carol.0).await, carol.1);
    assert_eq!(client.ask(carol.0).await, carol.1);
    let stats = client.ask("/stats").await;
    assert_eq!(counter(&stats, "misses"), 5, "{stats}");
    assert_eq!(counter(&stats, "hits"), 2, "carol from the cache: {stats}");
    assert_eq!(counter(&stats, "names"), 2, "{stats}");
    // Every case as before, on a connection that saw none of this.
    let mut fresh = Client::connect(server.addr).await;
    for (request, expected) in CASES {
        assert_eq!(fresh.ask(request).await, *expected, "request {request:?}");
    }
}

/// A directory another connection holds locked (`BEGIN EXCLUSIVE`): a lookup is tried three
/// times (SQLite answers "busy" at once, and the waits between tries are on the server's
/// clock), then answered with the retry's account; a name the cache holds is answered from it
/// meanwhile; once the lock is let go, the name is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_directory_is_tried_three_times_then_answered_and_the_server_recovers() {
    let directory = FileDirectory::new("local-locked");
    let server = start_on_file(&directory);
    let other = directory.other();
    let (alice, carol) = (CASES[0], CASES[1]);
    let mut client = Client::connect(server.addr).await;
    assert_eq!(client.ask(alice.0).await, alice.1);

    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    assert_eq!(
        client.ask(carol.0).await,
        "ERR lookup failed: gave up after 3 attempts (every attempt allowed failed); \
         the last failed with: database is locked"
    );
    assert_eq!(client.ask(alice.0).await, alice.1, "from the cache");
    other.execute_batch("COMMIT").unwrap();

    assert_eq!(client.ask(carol.0).await, carol.1);
    let stats = client.ask("/stats").await;
    assert_eq!(counter(&stats, "misses"), 3, "alice, carol twice: {stats}");
    assert_eq!(counter(&stats, "names"), 2, "{stats}");
}

/// A directory the pool cannot open (its file moved aside, a folder in its place) before any
/// lookup: each pool thread's first query fails to open its connection, and each request that
/// queries is answered with that; the pool keeps no broken connection, so once the file is back,
/// the next queries open it and every case is answered as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_the_pool_cannot_open_is_answered_and_opened_once_it_can_be() {
    let directory = FileDirectory::new("local-unopenable");
    let server = start_on_file(&directory);
    std::fs::rename(directory.path(), directory.aside()).unwrap();
    std::fs::create_dir(directory.path()).unwrap();
    let cannot_open = format!(
        "ERR lookup failed: unable to open database file: {}",
        directory.path().display()
    );
    let mut client = Client::connect(server.addr).await;
    // More lookups than the pool has threads: whichever threads run them, none can open it.
    for _ in 0..2 {
        for (request, _) in CASES
            .iter()
            .filter(|(_, reply)| !reply.contains("bad request"))
        {
            assert_eq!(
                client.ask(request).await,
                cannot_open,
                "request {request:?}"
            );
        }
    }
    assert_eq!(
        client.ask(CASES[4].0).await,
        CASES[4].1,
        "no lookup, no failure"
    );

    std::fs::remove_dir(directory.path()).unwrap();
    std::fs::rename(directory.aside(), directory.path()).unwrap();
    for (request, expected) in CASES.iter().chain(CASES) {
        assert_eq!(client.ask(request).await, *expected, "request {request:?}");
    }
}

/// A name of lowercase letters for `n`, none of the directory's.
fn unknown_name(n: u64) -> String {
    let mut name = String::from("q");
    let mut n = n;
    loop {
        name.push(char::from(b'a' + (n % 26) as u8));
        n /= 26;
        if n == 0 {
            return name;
        }
    }
}

/// How many names not in the directory the load below asks, more than the cache holds (256):
/// they go out of it and are looked up again, so lookups go on all through the load.
const UNKNOWN_NAMES: u64 = 400;

/// Under load: 20 clients ask without pause, every other request one of [`UNKNOWN_NAMES`] names
/// (the clients ask the same ones, so requests join lookups on their way), while another
/// connection takes the table away for 50 ms and gives it back, five times. Every reply is the
/// request's own answer or, for a request for a name, `ERR lookup failed: ...` (a request that
/// joined a lookup gets its failure too); both are seen, and every connection lasts to the end.
/// Then every case and every one of those names is answered as before (no failure was kept),
/// and `/stats` accounts for every request for a name (a hit, a miss or a join): none was lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_failing_under_load_are_answered_and_the_server_recovers() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    let directory = FileDirectory::new("local-failing-under-load");
    let server = start_on_file(&directory);
    let addr = server.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let (failed, answered, names_asked) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let clients: Vec<_> = (0..20)
        .map(|c| {
            let (stop, failed, answered, names_asked) = (
                stop.clone(),
                failed.clone(),
                answered.clone(),
                names_asked.clone(),
            );
            tokio::spawn(async move {
                let mut client = Client::connect(addr).await;
                let mut i = c;
                while !stop.load(Ordering::SeqCst) {
                    let unknown = unknown_name((c as u64 * 37 + i as u64 * 7) % UNKNOWN_NAMES);
                    let not_found = format!("ERR no such employee: {unknown}");
                    let (request, expected) = match i % 2 {
                        0 => (unknown.as_str(), not_found.as_str()),
                        _ => CASES[i / 2 % CASES.len()],
                    };
                    i += 1;
                    let queries = directory::protocol::parse_name(request).is_ok();
                    if queries {
                        names_asked.fetch_add(1, Ordering::SeqCst);
                    }
                    let reply = client.ask(request).await;
                    if reply == expected {
                        answered.fetch_add(1, Ordering::SeqCst);
                    } else {
                        assert!(
                            queries && reply.starts_with("ERR lookup failed: "),
                            "request {request:?}: {reply:?}"
                        );
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();

    directory.take_the_table_away_during(clients, stop).await;
    assert!(failed.load(Ordering::SeqCst) > 0, "the table was away");
    assert!(answered.load(Ordering::SeqCst) > 0);

    // Back for good: every case as before, twice (the second time from the cache).
    let mut client = Client::connect(addr).await;
    let mut asked_here = 0;
    for (request, expected) in CASES.iter().chain(CASES) {
        assert_eq!(client.ask(request).await, *expected, "request {request:?}");
        if directory::protocol::parse_name(request).is_ok() {
            asked_here += 1;
        }
    }
    for n in 0..UNKNOWN_NAMES {
        let name = unknown_name(n);
        assert_eq!(
            client.ask(&name).await,
            format!("ERR no such employee: {name}")
        );
        asked_here += 1;
    }
    let stats = client.ask("/stats").await;
    eprintln!(
        "local_server, its table away five times under 20 clients: {} answered, {} failed; {stats}",
        answered.load(Ordering::SeqCst),
        failed.load(Ordering::SeqCst)
    );
    assert!(
        counter(&stats, "names") <= 256,
        "the cache's bound: {stats}"
    );
    assert_eq!(
        counter(&stats, "hits") + counter(&stats, "misses") + counter(&stats, "joined"),
        names_asked.load(Ordering::SeqCst) + asked_here,
        "every request for a name is a hit, a miss or a join: {stats}"
    );
}
