//! The server example's `debug` request (feature `registry`): the dump of the chains that have
//! not fired, over the wire, ended by a line `.`. The server runs in this process, so a chain
//! this test leaves pending is in the dump, with where it was made.
#![cfg(all(feature = "registry", feature = "tokio"))]

#[path = "../examples/directory/mod.rs"]
mod directory;

use std::time::Duration;

use deferred::Deferred;
use directory::Db;
use directory::server::serve;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_answers_with_the_dump_of_pending_chains() {
    let db = Db::open(None).expect("an in-memory directory");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, db));

    let held_line = line!() + 1;
    let (held, resolver) = Deferred::<u32>::pending();
    let held = held.add_callback(|n| Ok(n + 1));

    let stream = TcpStream::connect(addr).await.expect("connect");
    let (read, mut write) = stream.into_split();
    let mut replies = BufReader::new(read).lines();
    write.write_all(b"debug\nalice\n").await.unwrap();
    let mut dump = Vec::new();
    let read_all = async {
        loop {
            let line = replies.next_line().await.unwrap().expect("a reply line");
            if line == "." {
                break;
            }
            dump.push(line);
        }
        replies
            .next_line()
            .await
            .unwrap()
            .expect("the reply to alice")
    };
    let after = tokio::time::timeout(Duration::from_secs(20), read_all)
        .await
        .expect("the replies in time");

    assert!(
        dump[0].starts_with("OK ") && dump[0].contains("pending chain"),
        "{dump:#?}"
    );
    let made_here = format!("created at {}:{held_line}:", file!());
    assert!(
        dump.iter().any(|line| line.contains(&made_here)),
        "{made_here} in {dump:#?}"
    );
    assert!(
        dump.iter()
            .any(|line| line.contains("waits on its resolver"))
    );
    // The connection goes on answering requests after the dump.
    assert!(after.starts_with("OK alice #2"), "{after}");

    resolver.callback(1);
    assert_eq!(held.wait().unwrap(), 2);
}
