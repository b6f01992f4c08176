//! The directory served over TCP: one request per line, one reply per line, each request
//! handled by a `chain!` over the same database.
//!
//! ```text
//! > alice
//! < OK alice #2: Staff Engineer, reports to carol #1 (Director of Engineering)
//! > zed
//! < ERR no such employee: zed
//! > !!
//! < ERR bad request: a name is lowercase letters a-z, 1 to 32 of them
//! ```

use deferred::{Deferred, chain};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use super::{Db, NotFound, describe, fetch_details, fetch_manager, lookup_id};

/// The longest request line read; a longer one is answered as a bad request and the connection
/// closed (it cannot be resynchronised).
pub const MAX_LINE: usize = 256;

/// Accepts clients for ever, each on its own task.
pub async fn serve(listener: TcpListener, db: Db) -> std::io::Result<()> {
    loop {
        let (stream, _peer) = listener.accept().await?;
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
        line.clear();
        let read = (&mut lines)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .await?;
        if read == 0 {
            return Ok(());
        }
        let complete = line.ends_with(b"\n");
        if !complete && line.len() > MAX_LINE {
            write
                .write_all(format!("ERR bad request: longer than {MAX_LINE} bytes\n").as_bytes())
                .await?;
            return Ok(());
        }
        let reply = match std::str::from_utf8(&line) {
            // `respond` catches every failure; the `Err` arm is there for the type's sake.
            Ok(text) => respond(&db, text.trim_end_matches(['\n', '\r']))
                .await
                .unwrap_or_else(|failure| format!("ERR {failure}")),
            Err(_) => "ERR bad request: not UTF-8".to_owned(),
        };
        write.write_all(format!("{reply}\n").as_bytes()).await?;
    }
}

/// The reply to one request line (without its newline).
pub fn respond(db: &Db, request: &str) -> Deferred<String> {
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

fn parse_name(request: &str) -> Result<&str, &'static str> {
    let name = request.trim();
    let valid = (1..=32).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_lowercase());
    if valid {
        Ok(name)
    } else {
        Err("a name is lowercase letters a-z, 1 to 32 of them")
    }
}
