//! The directory served over TCP: one request per line, one reply per line, each request
//! handled by a `chain!` over the same database (the protocol is `protocol.rs`).
//!
//! ```text
//! > alice
//! < OK alice #2: Staff Engineer, reports to carol #1 (Director of Engineering)
//! > zed
//! < ERR no such employee: zed
//! > !!
//! < ERR bad request: a name is lowercase letters a-z, 1 to 32 of them
//! ```
//!
//! Built with the feature `registry` (`cargo run --example server --features tokio,registry`), the
//! request `debug` answers with the dump of the chains that have not fired (`pending_chains()`:
//! the requests in flight, each down to what it waits on), a line per chain or wait, and a line
//! `.` at the end. Here one request runs its steps (the steps being run are not listed) and
//! its next query waits on the pool:
//!
//! ```text
//! > debug
//! < OK 2 pending chains
//! < Deferred #1 from defer_to_thread, created at examples/directory/mod.rs:48:9, pending for 3.9ms, no step to run
//! < └─ runs its steps (or is queued to run them)
//! < Deferred #2 from defer_to_thread, created at examples/directory/mod.rs:48:9, pending for 775.0ns, no step to run
//! < └─ waits on defer_to_thread's resolver, created at examples/directory/mod.rs:48:9
//! < .
//! ```

use deferred::{Deferred, chain};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[allow(unused_imports)] // tests/server.rs reads it here
pub use super::protocol::MAX_LINE;
use super::protocol::{Line, NOT_UTF8, parse_name, read_line, too_long};
use super::{Db, NotFound, describe, fetch_details, fetch_manager, lookup_id};

/// Accepts clients for ever, each on its own task (a failed accept, such as running out of
/// file descriptors, costs the one client, not the server).
pub async fn serve(listener: TcpListener, db: Db) -> std::io::Result<()> {
    loop {
        let (stream, _peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                super::protocol::accept_failed(&error).await;
                continue;
            }
        };
        let db = db.clone();
        tokio::spawn(async move {
            // A client that goes away mid-line is no error of the server's.
            let _ = handle_client(stream, db).await;
        });
    }
}

async fn handle_client(stream: TcpStream, db: Db) -> std::io::Result<()> {
    // Replies are single short lines: send each at once rather than wait to batch them.
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let mut line = Vec::new();
    loop {
        let reply = match read_line(&mut lines, &mut line).await? {
            None => return Ok(()),
            Some(Line::TooLong) => {
                write
                    .write_all(format!("{}\n", too_long()).as_bytes())
                    .await?;
                return Ok(());
            }
            // `respond` catches every failure; the `Err` arm is there for the type's sake.
            Some(Line::Text(text)) => respond(&db, &text)
                .await
                .unwrap_or_else(|failure| format!("ERR {failure}")),
            Some(Line::NotUtf8) => NOT_UTF8.to_owned(),
        };
        write.write_all(format!("{reply}\n").as_bytes()).await?;
    }
}

/// The reply to one request line (without its newline).
pub fn respond(db: &Db, request: &str) -> Deferred<String> {
    #[cfg(feature = "registry")]
    if request.trim() == DEBUG {
        return Deferred::succeed(debug_reply());
    }
    let name = match parse_name(request) {
        Ok(name) => name,
        Err(problem) => return Deferred::succeed(format!("ERR bad request: {problem}")),
    };
    let db = db.clone();
    chain! {
        lookup_id(&db, name)
        then |id| fetch_details(&db, id)
        then |employee| fetch_manager(&db, &employee)
        then |manager| format!("OK {}", describe(&employee, manager.as_ref()))
        catch |e: NotFound| format!("ERR {e}")
        catch |f| format!("ERR lookup failed: {f}")
    }
}

/// The request that asks for the dump of pending chains (feature `registry`).
#[cfg(feature = "registry")]
pub const DEBUG: &str = "debug";

/// The reply to `debug`: `OK`, the dump's lines, and a line `.` that ends it.
#[cfg(feature = "registry")]
fn debug_reply() -> String {
    format!("OK {}.", deferred::pending_chains())
}
