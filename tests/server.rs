//! The server example, end to end on loopback: 1,000 requests from 50 concurrent clients, every
//! reply checked, bad input answered, and a database that fails under it answered and
//! recovered from. Bounded in count and time.
#![cfg(feature = "tokio")]

#[path = "../examples/directory/mod.rs"]
mod directory;
mod examples_support;

use std::time::Duration;

use directory::Db;
use directory::server::{MAX_LINE, serve};
use examples_support::{Client, FileDirectory};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const CLIENTS: usize = 50;
const REQUESTS_PER_CLIENT: usize = 20;

/// Requests and the replies they must get.
const CASES: &[(&str, &str)] = &[
    (
        "alice",
        "OK alice #2: Staff Engineer, reports to carol #1 (Director of Engineering)",
    ),
    ("carol", "OK carol #1: Director of Engineering"),
    (
        "dave",
        "OK dave #4: Engineer, reports to alice #2 (Staff Engineer)",
    ),
    ("zed", "ERR no such employee: zed"),
    (
        "ALICE",
        "ERR bad request: a name is lowercase letters a-z, 1 to 32 of them",
    ),
    (
        "",
        "ERR bad request: a name is lowercase letters a-z, 1 to 32 of them",
    ),
    (
        "drop table employees;",
        "ERR bad request: a name is lowercase letters a-z, 1 to 32 of them",
    ),
];

async fn start() -> std::net::SocketAddr {
    serve_db(Db::open(None).expect("an in-memory directory")).await
}

/// Serves `db` on a loopback port of its own.
async fn serve_db(db: Db) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, db));
    addr
}

async fn client(addr: std::net::SocketAddr, client: usize) -> usize {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (read, mut write) = stream.into_split();
    let mut replies = BufReader::new(read).lines();
    for i in 0..REQUESTS_PER_CLIENT {
        let (request, expected) = CASES[(client + i) % CASES.len()];
        write
            .write_all(format!("{request}\n").as_bytes())
            .await
            .unwrap();
        let reply = replies.next_line().await.unwrap().expect("a reply line");
        assert_eq!(reply, expected, "request {request:?}");
    }
    REQUESTS_PER_CLIENT
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_requests_from_fifty_clients() {
    let addr = start().await;
    let clients = (0..CLIENTS).map(|c| tokio::spawn(client(addr, c)));
    let answered = tokio::time::timeout(Duration::from_secs(120), async {
        let mut answered = 0;
        for c in clients {
            answered += c.await.expect("client task");
        }
        answered
    })
    .await
    .expect("all answered within the time bound");
    assert_eq!(answered, CLIENTS * REQUESTS_PER_CLIENT);
}

#[tokio::test]
async fn bad_bytes_and_long_lines_are_answered() {
    let addr = start().await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"\xff\xfe\n").await.unwrap();
    stream.write_all(b"alice\r\n").await.unwrap();
    let mut lines = BufReader::new(&mut stream).lines();
    assert_eq!(
        lines.next_line().await.unwrap().unwrap(),
        "ERR bad request: not UTF-8"
    );
    assert!(
        lines
            .next_line()
            .await
            .unwrap()
            .unwrap()
            .starts_with("OK alice #2")
    );

    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(&vec![b'a'; MAX_LINE * 2]).await.unwrap();
    let mut lines = BufReader::new(&mut stream).lines();
    assert_eq!(
        lines.next_line().await.unwrap().unwrap(),
        format!("ERR bad request: longer than {MAX_LINE} bytes")
    );
    assert_eq!(lines.next_line().await.unwrap(), None, "then closed");
}

/// The database failing under the server: a query fails, the request is answered with what
/// went wrong, the connection and the server go on, and once the database is whole again the
/// same request is answered as before. The table is renamed away and back by a second
/// connection to the same file, as another program might.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_database_is_answered_and_the_server_goes_on() {
    let directory = FileDirectory::new("failing");
    let db = Db::open(Some(directory.path())).expect("a directory in a file");
    let addr = serve_db(db).await;
    let other = directory.other();
    let mut client = Client::connect(addr).await;
    let whole = CASES[0];
    assert_eq!(client.ask(whole.0).await, whole.1);

    other
        .execute_batch("ALTER TABLE employees RENAME TO away")
        .unwrap();
    for (request, _) in CASES.iter().take(4) {
        assert_eq!(
            client.ask(request).await,
            "ERR lookup failed: no such table: employees",
            "request {request:?}"
        );
    }
    // What needs no query is answered as before.
    assert_eq!(client.ask(CASES[4].0).await, CASES[4].1);

    other
        .execute_batch("ALTER TABLE away RENAME TO employees")
        .unwrap();
    for (request, expected) in CASES {
        assert_eq!(client.ask(request).await, *expected, "request {request:?}");
    }
}

/// The same under load: 20 clients ask without pause while another connection takes the table
/// away for 50 ms and gives it back, five times. Every reply is the request's own answer or,
/// for a request that queries, `ERR lookup failed: ...`; both are seen; every client's
/// connection lasts to the end; and once the table is back for good, every request is answered
/// as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_failing_under_load_are_answered_and_the_server_recovers() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    let directory = FileDirectory::new("failing-under-load");
    let db = Db::open(Some(directory.path())).expect("a directory in a file");
    let addr = serve_db(db).await;

    let toggled = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..20)
        .map(|c| {
            let (toggled, failed, answered) = (toggled.clone(), failed.clone(), answered.clone());
            tokio::spawn(async move {
                let mut client = Client::connect(addr).await;
                let mut i = c;
                while !toggled.load(Ordering::SeqCst) {
                    let (request, expected) = CASES[i % CASES.len()];
                    i += 1;
                    let reply = client.ask(request).await;
                    if reply == expected {
                        answered.fetch_add(1, Ordering::SeqCst);
                    } else {
                        // Only what queries the database can fail: the first four cases.
                        assert!(
                            CASES[..4].iter().any(|(r, _)| *r == request)
                                && reply.starts_with("ERR lookup failed: "),
                            "request {request:?}: {reply:?}"
                        );
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();

    directory.take_the_table_away_during(clients, toggled).await;
    assert!(failed.load(Ordering::SeqCst) > 0, "the table was away");
    assert!(answered.load(Ordering::SeqCst) > 0);

    // Back for good: every request is answered as before.
    let mut client = Client::connect(addr).await;
    for (request, expected) in CASES {
        assert_eq!(client.ask(request).await, *expected);
    }
}
