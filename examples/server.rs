//! The employee directory as a TCP server on 127.0.0.1: send a name per line, get a line back.
//!
//! ```text
//! cargo run --example server --features tokio                 # listens on 127.0.0.1:7878
//! cargo run --example server --features tokio -- --port 9000
//! cargo run --example server --features tokio -- --db staff.sqlite3   # a directory in a file
//! printf 'alice\nzed\n' | nc 127.0.0.1 7878
//! ```
//!
//! Every request is one `chain!` (look the id up, fetch the details, fetch the manager, format),
//! with the queries on a thread pool; many clients are answered at once.

#[path = "directory/mod.rs"]
mod directory;

use std::process::ExitCode;

use directory::Db;
use directory::protocol::announce;
use directory::server::serve;

const USAGE: &str = "usage: server [--port PORT] [--db FILE]";

fn main() -> ExitCode {
    // The queries share one SQLite connection (behind a lock, see `directory::Db`), so more pool
    // threads than this would only wait for it: bound tokio's blocking pool (512 by default).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(16)
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(run()),
        Err(error) => {
            eprintln!("cannot start the runtime: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> ExitCode {
    let args = match directory::protocol::parse_args(std::env::args_os().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("{USAGE}\n{message}");
            return ExitCode::from(2);
        }
    };
    let port = args.port;
    let db = match Db::open(args.db.as_deref()) {
        Ok(db) => db,
        Err(failure) => {
            // (SQLite's message names the file.)
            eprintln!("cannot open the employee database: {failure}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("cannot listen on 127.0.0.1:{port}: {error}");
            return ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(addr) => announce(addr),
        Err(_) => announce(std::net::SocketAddr::from(([127, 0, 0, 1], port))),
    }
    match serve(listener, db).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("server stopped: {error}");
            ExitCode::FAILURE
        }
    }
}
