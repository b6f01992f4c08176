//! The server example, end to end on loopback: 1,000 requests from 50 concurrent clients, every
//! reply checked, bad input answered. Bounded in count and time.
#![cfg(feature = "tokio")]

#[path = "../examples/directory/mod.rs"]
mod directory;

use std::time::Duration;

use directory::Db;
use directory::server::{MAX_LINE, serve};
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
    let db = Db::open(None).expect("an in-memory directory");
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
