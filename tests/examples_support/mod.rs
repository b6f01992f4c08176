//! What the tests that run the examples share: where cargo put an example's binary, and the
//! requests the directory servers answer with the replies they must give.
#![allow(dead_code)] // each test uses what it needs

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

/// The built example `name` (`cargo test --workspace` builds the examples package's examples
/// before it runs the tests).
pub fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/<this test> -> target/<profile>/examples/<name>
    let mut path = std::env::current_exe().expect("the test binary's path");
    path.pop();
    path.pop();
    path.push("examples");
    path.push(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    path
}

pub const BAD_NAME: &str = "ERR bad request: a name is lowercase letters a-z, 1 to 32 of them";

/// Requests and the replies they must get (from either server).
pub const CASES: &[(&str, &str)] = &[
    (
        "alice",
        "OK alice #2: Staff Engineer, reports to carol #1 (Director of Engineering)",
    ),
    ("carol", "OK carol #1: Director of Engineering"),
    ("zed", "ERR no such employee: zed"),
    (
        "dave",
        "OK dave #4: Engineer, reports to alice #2 (Staff Engineer)",
    ),
    ("ALICE", BAD_NAME),
    (
        "bob",
        "OK bob #3: Site Reliability Engineer, reports to carol #1 (Director of Engineering)",
    ),
    ("nobody", "ERR no such employee: nobody"),
    ("", BAD_NAME),
    (
        "erin",
        "OK erin #5: Engineer, reports to alice #2 (Staff Engineer)",
    ),
    ("drop table employees;", BAD_NAME),
    ("  carol  ", "OK carol #1: Director of Engineering"),
];

/// The number after `name` in the local server's `/stats` reply.
pub fn counter(stats: &str, name: &str) -> u64 {
    let words: Vec<&str> = stats
        .split(|c: char| c == ',' || c == ';' || c == ':' || c.is_whitespace())
        .filter(|word| !word.is_empty())
        .collect();
    words
        .windows(2)
        .find(|pair| pair[0] == name)
        .and_then(|pair| pair[1].parse().ok())
        .unwrap_or_else(|| panic!("no `{name} N` in {stats:?}"))
}

/// A server example's process, killed when dropped (so a failing test leaves no server behind).
pub struct ServerProcess {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free now (`server` prints the port it was given, so it is chosen here).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a loopback port")
        .port()
}

/// Starts the server example `name` on a free loopback port and waits until it listens.
pub fn start_server(name: &str) -> ServerProcess {
    start_server_with(name, &[])
}

/// [`start_server`], with more arguments after `--port PORT`.
pub fn start_server_with(name: &str, args: &[&std::ffi::OsStr]) -> ServerProcess {
    let binary = example(name);
    assert!(
        binary.exists(),
        "{} is not built: run `cargo build --examples --features tokio`",
        binary.display()
    );
    for _ in 0..5 {
        let port = free_port();
        let mut child = Command::new(&binary)
            .args(["--port", &port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
        let stdout = child.stdout.take().expect("a piped stdout");
        let (first_line, listening) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = first_line.send(lines.next());
            for _ in lines {}
        });
        let server = ServerProcess {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        match listening.recv_timeout(Duration::from_secs(20)) {
            Ok(Some(Ok(line))) if line.starts_with("listening on ") => return server,
            _ => continue, // the port was taken meanwhile: another one
        }
    }
    panic!("{name} did not start listening");
}

/// A file of a test's own for a directory, which a second connection ([`FileDirectory::other`])
/// can break as another program might; the file is removed when this is dropped.
pub struct FileDirectory {
    path: PathBuf,
}

impl FileDirectory {
    /// A path in the temporary directory, for the test `test` (no file there yet).
    pub fn new(test: &str) -> FileDirectory {
        let path = std::env::temp_dir().join(format!(
            "deferred-server-{test}-{}.sqlite3",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        FileDirectory { path }
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// A second path beside the file, where a test can move it aside (removed on drop too).
    pub fn aside(&self) -> PathBuf {
        self.path.with_extension("aside")
    }

    /// A connection of the test's own to the file.
    pub fn other(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(&self.path).expect("a second connection")
    }
}

impl FileDirectory {
    /// From a thread and a connection of its own, as another program might: every `every`,
    /// takes the `employees` table away (renamed) for `away` and gives it back, until
    /// [`TableTakenAway::stop`], or `times` times if given.
    pub fn take_the_table_away(
        &self,
        every: Duration,
        away: Duration,
        times: Option<u32>,
    ) -> TableTakenAway {
        let other = self.other();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut taken = 0;
            while !stopped.load(Ordering::SeqCst) && times.is_none_or(|times| taken < times) {
                std::thread::sleep(every);
                other
                    .execute_batch("ALTER TABLE employees RENAME TO away")
                    .expect("the table taken away");
                std::thread::sleep(away);
                other
                    .execute_batch("ALTER TABLE away RENAME TO employees")
                    .expect("the table given back");
                taken += 1;
            }
            taken
        });
        TableTakenAway { stop, thread }
    }
}

/// The thread of [`FileDirectory::take_the_table_away`].
pub struct TableTakenAway {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u32>,
}

impl TableTakenAway {
    /// Stops, with the table back; how many times it was taken away.
    pub fn stop(self) -> u32 {
        self.stop.store(true, Ordering::SeqCst);
        self.finish()
    }

    /// Waits for its `times` to run out, with the table back; how many times it was taken away.
    pub fn finish(self) -> u32 {
        self.thread.join().expect("the table's taker ends")
    }
}

#[cfg(feature = "tokio")]
impl FileDirectory {
    /// While `clients` run, takes the `employees` table away for 50 ms and gives it back, five
    /// times ([`FileDirectory::take_the_table_away`]); then sets `stop` and waits for every
    /// client to end. Bounded: a hang fails instead.
    pub async fn take_the_table_away_during(
        &self,
        clients: Vec<tokio::task::JoinHandle<()>>,
        stop: Arc<AtomicBool>,
    ) {
        let taker = self.take_the_table_away(
            Duration::from_millis(50),
            Duration::from_millis(50),
            Some(5),
        );
        let toggler = tokio::task::spawn_blocking(move || {
            taker.finish();
            stop.store(true, Ordering::SeqCst);
        });
        // A guard against a hang, not a timing assertion.
        tokio::time::timeout(Duration::from_secs(120), async {
            toggler.await.unwrap();
            for client in clients {
                client
                    .await
                    .expect("every client's connection lasts to the end");
            }
        })
        .await
        .expect("the load ends within the bound");
    }
}

impl Drop for FileDirectory {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_dir(&self.path);
        let _ = std::fs::remove_file(self.aside());
    }
}

/// One client connection to a server, asking one request at a time.
#[cfg(feature = "tokio")]
pub struct Client {
    write: tokio::net::tcp::OwnedWriteHalf,
    replies: tokio::io::Lines<tokio::io::BufReader<tokio::net::tcp::OwnedReadHalf>>,
}

#[cfg(feature = "tokio")]
impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        use tokio::io::AsyncBufReadExt;
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (read, write) = stream.into_split();
        Client {
            write,
            replies: tokio::io::BufReader::new(read).lines(),
        }
    }

    /// The reply to `request`.
    pub async fn ask(&mut self, request: &str) -> String {
        use tokio::io::AsyncWriteExt;
        self.write
            .write_all(format!("{request}\n").as_bytes())
            .await
            .unwrap();
        // A guard against a hang, not a timing assertion.
        tokio::time::timeout(Duration::from_secs(60), self.replies.next_line())
            .await
            .expect("a reply within the bound")
            .unwrap()
            .expect("a reply line")
    }
}
