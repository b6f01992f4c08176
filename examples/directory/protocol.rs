//! The line protocol both servers speak (`server`, threads and a lock; `local_server`, one
//! thread): one request per line, one reply per line. Reading a request and parsing a name are
//! here, so a client cannot tell the two servers apart.
//!
//! ```text
//! > alice
//! < OK alice #2: Staff Engineer, reports to carol #1 (Director of Engineering)
//! > zed
//! < ERR no such employee: zed
//! > !!
//! < ERR bad request: a name is lowercase letters a-z, 1 to 32 of them
//! ```

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

/// The longest request line read; a longer one is answered as a bad request and the connection
/// closed (it cannot be resynchronised).
pub const MAX_LINE: usize = 256;

/// The reply to a request that is not UTF-8.
pub const NOT_UTF8: &str = "ERR bad request: not UTF-8";

/// One request line, as read.
pub enum Line {
    /// A line of text, without its `\n` or `\r\n`.
    Text(String),
    /// A line that is not UTF-8 (answered, and the connection goes on).
    NotUtf8,
    /// More than [`MAX_LINE`] bytes with no end in sight (answered, and the connection closed).
    TooLong,
}

/// The reply to a line longer than [`MAX_LINE`] bytes.
pub fn too_long() -> String {
    format!("ERR bad request: longer than {MAX_LINE} bytes")
}

/// Reads the next request line into `buf`; `None` at the end of the stream.
pub async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<Line>> {
    buf.clear();
    let read = (&mut *reader)
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', buf)
        .await?;
    if read == 0 {
        return Ok(None);
    }
    // A line of `MAX_LINE` bytes that ends with `\r\n` is not too long: its `\n` is the byte
    // after the `\r` read last.
    if buf.len() == MAX_LINE + 1 && buf.ends_with(b"\r") {
        reader.take(1).read_until(b'\n', buf).await?;
    }
    let text = match buf.strip_suffix(b"\n") {
        Some(line) => line.strip_suffix(b"\r").unwrap_or(line),
        None => buf.as_slice(),
    };
    if text.len() > MAX_LINE {
        return Ok(Some(Line::TooLong));
    }
    Ok(Some(match std::str::from_utf8(buf) {
        Ok(text) => Line::Text(text.trim_end_matches(['\n', '\r']).to_owned()),
        Err(_) => Line::NotUtf8,
    }))
}

/// What a server does when it could not accept a client: the error is that client's (gone
/// before it was accepted) or passing (no file descriptor free until a client leaves), never
/// a reason to stop serving the others. It says so, and waits a little before the next accept
/// (a full descriptor table would fail it again at once).
pub async fn accept_failed(error: &std::io::Error) {
    eprintln!("cannot accept a client: {error}");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
}

/// The name a request asks for, or what is wrong with it.
pub fn parse_name(request: &str) -> Result<&str, &'static str> {
    let name = request.trim();
    let valid = (1..=32).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_lowercase());
    if valid {
        Ok(name)
    } else {
        Err("a name is lowercase letters a-z, 1 to 32 of them")
    }
}

/// A server's command line.
#[derive(Debug, PartialEq, Eq)]
pub struct Args {
    /// `--port PORT`: where to listen on 127.0.0.1 (0: any free port; 7878 if not given).
    pub port: u16,
    /// `--db FILE`: the directory in a SQLite file (made, with the sample employees, when it has
    /// no `employees` table); without it, a directory in memory with the sample employees.
    pub db: Option<std::path::PathBuf>,
}

/// Parses a server's command line, `[--port PORT] [--db FILE]`: the arguments, or `None` for
/// `--help`, or what is wrong with them.
/// (The arguments are `OsString`s, as `std::env::args_os` gives them: `std::env::args` panics
/// on one that is not UTF-8, and a file's path need not be UTF-8.)
pub fn parse_args(
    mut args: impl Iterator<Item = std::ffi::OsString>,
) -> Result<Option<Args>, String> {
    let mut parsed = Args {
        port: 7878,
        db: None,
    };
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--help" | "-h") => return Ok(None),
            Some("--port") => match args.next() {
                None => return Err("`--port` needs a port number".into()),
                Some(p) => match p.to_str().and_then(|p| p.parse().ok()) {
                    Some(p) => parsed.port = p,
                    None => {
                        let p = p.to_string_lossy();
                        return Err(format!("`--port {p}`: a port is a number from 0 to 65535"));
                    }
                },
            },
            Some("--db") => match args.next() {
                Some(file) if !file.is_empty() => parsed.db = Some(file.into()),
                _ => return Err("`--db` needs the path of a SQLite file".into()),
            },
            _ => return Err(format!("unexpected argument `{}`", arg.to_string_lossy())),
        }
    }
    Ok(Some(parsed))
}

/// Says where the server listens, on stdout. A stdout that cannot be written (closed, or a full
/// disk) does not stop a server: it says so on stderr and serves on.
pub fn announce(addr: std::net::SocketAddr) {
    use std::io::Write;
    if let Err(error) = writeln!(std::io::stdout(), "listening on {addr}") {
        eprintln!("listening on {addr} (cannot write to stdout: {error})");
    }
}
