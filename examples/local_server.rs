//! The employee server on one thread, with no lock: the `server` example rewritten on a tokio
//! `LocalSet`, with a cache of recent answers every connection shares.
//!
//! ```text
//! cargo run --example local_server --features tokio                # listens on 127.0.0.1:7878
//! cargo run --example local_server --features tokio -- --port 0    # any free port (printed)
//! cargo run --example local_server --features tokio -- --db staff.sqlite3   # a directory in a file
//! printf 'alice\nzed\n!!\n/stats\n' | nc 127.0.0.1 7878
//! # OK alice #2: Staff Engineer, reports to carol #1 (Director of Engineering)
//! # ERR no such employee: zed
//! # ERR bad request: a name is lowercase letters a-z, 1 to 32 of them
//! # OK stats: hits 0, misses 2, joined 0, names 2, connections 1; this connection: requests 4, answers from the cache 0
//! ```
//!
//! It speaks the protocol of `server`, with the same replies (`directory/protocol.rs`), so a
//! client cannot tell the two apart — but for one request of its own: `/stats` answers the
//! cache's counters (it is not a name, so it hides no employee).
//!
//! What runs where:
//! - One thread runs the server: a tokio current-thread runtime and a `LocalSet`, with a task
//!   per connection (`spawn_local`). The server's state (the cache of the last
//!   [`CACHE_NAMES`] answers and its counters) and each connection's are `Rc<RefCell<..>>` and
//!   `Rc<Cell<..>>`: no `Mutex`, no `Arc`, no atomic.
//! - The SQL runs on tokio's blocking pool through `Inbox::defer_to_thread` (Twisted's
//!   `deferToThread`); each result comes home to this thread through the LocalSet's `Inbox`,
//!   and the steps after it run here, where they may touch the `Rc` state.
//! - Every request for a name is answered from the cache: now (the answer is there), or when
//!   the lookup of that name comes home. One lookup runs per name however many connections ask
//!   for it meanwhile: the cache keeps the lookup on its way as a [`SharedResult`], and each
//!   request waits on a consumer of its own (a chain of its own: what one request does with it
//!   changes nothing for the others).
//! - A query SQLite answers with "busy" or "locked" is tried again, twice at most, after up to
//!   10 ms then 20 ms ([`retry_if`] on the LocalSet's clock, with jitter); any other failure is
//!   the query's answer.
//! - Each pool thread opens its own connection to the directory (an in-memory SQLite database
//!   the connections of this process share, or the file given with `--db`), so the pool needs
//!   no lock either. A pool connection does not wait in SQLite for a database another program
//!   has locked (rusqlite's connections wait up to 5 s by default): SQLite answers "busy" at
//!   once, and the wait before the next try is on this thread's clock, with no pool thread
//!   held.

#[path = "directory/protocol.rs"]
mod protocol;
#[path = "directory/sql.rs"]
mod sql;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use deferred::local::{SharedResult, retry_if};
use deferred::{
    Failure, GaveUp, Inbox, LocalDeferred, RetryError, RetryPolicy, TokioLocalClock, chain,
};
use rusqlite::Connection;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use protocol::{Line, NOT_UTF8, announce, parse_name, read_line, too_long};
use sql::{Employee, NotFound, describe};

/// The directory when no `--db FILE` is given: an in-memory SQLite database shared by the
/// connections of this process (SQLite's `memdb` VFS, a name starting with `/`). It lives while
/// one of them is open.
const IN_MEMORY: &str = "file:/employees?vfs=memdb";

/// Where the directory is: the file given with `--db`, set by `main` before the first
/// connection; [`IN_MEMORY`] when none was given.
static DIRECTORY: OnceLock<PathBuf> = OnceLock::new();

/// A new connection to the directory.
fn open_directory() -> rusqlite::Result<Connection> {
    Connection::open(DIRECTORY.get_or_init(|| PathBuf::from(IN_MEMORY)))
}

/// How many names the cache remembers; the least recently used is forgotten first.
const CACHE_NAMES: usize = 256;

/// The request that answers the counters.
const STATS: &str = "/stats";

/// How many pool threads run queries (tokio's blocking pool; each has its own connection).
const POOL_THREADS: usize = 4;

/// How many times a query SQLite finds busy is tried in all, and the first wait between tries
/// (then twice as long; each wait shortened by up to half, at random, so retries spread out).
const QUERY_ATTEMPTS: u32 = 3;
const FIRST_RETRY_AFTER: Duration = Duration::from_millis(10);

thread_local! {
    /// A pool thread's own connection to the directory, opened by its first query: no thread
    /// shares one, so none needs a lock.
    static CONNECTION: RefCell<Option<Connection>> = const { RefCell::new(None) };
}

/// Runs `query` on this pool thread's connection, which answers "busy" at once when another
/// connection has the database locked (the retry waits on the loop's clock, not here).
fn on_own_connection<T>(
    query: impl FnOnce(&Connection) -> Result<T, Failure>,
) -> Result<T, Failure> {
    CONNECTION.with(|slot| {
        let mut slot = slot.borrow_mut();
        let conn = match &mut *slot {
            Some(conn) => conn,
            empty => {
                let conn = open_directory()?;
                conn.busy_timeout(Duration::ZERO)?;
                empty.insert(conn)
            }
        };
        query(conn)
    })
}

/// What every connection shares, all of it on this thread: the inbox results come home
/// through, the clock retries wait on, the cache, and a count of connections. Cloning it
/// clones `Rc`s.
#[derive(Clone)]
struct Server {
    inbox: Inbox,
    clock: TokioLocalClock,
    cache: Rc<RefCell<Cache>>,
    connections: Rc<Cell<u64>>,
}

/// One connection's state, shown in its `/stats` reply.
#[derive(Default)]
struct Session {
    requests: u64,
    from_cache: u64,
}

/// Recent answers by name, and what the cache did.
#[derive(Default)]
struct Cache {
    entries: HashMap<String, Entry>,
    /// The answered names by last use, oldest first (keyed by the `uses` count then).
    by_use: BTreeMap<u64, String>,
    uses: u64,
    /// Requests answered from the cache at once.
    hits: u64,
    /// Requests that started a lookup.
    misses: u64,
    /// Requests that waited for the lookup another request had started for the same name.
    joined: u64,
}

enum Entry {
    /// The answer, and its key in `by_use`.
    Answered { line: String, used: u64 },
    /// The lookup on its way, shared by every request for the name until it comes home.
    InFlight(SharedResult<String>),
}

/// What the cache has for a name.
enum Cached {
    /// The answer, now.
    Hit(String),
    /// The answer when the lookup on its way comes home: a consumer of its own.
    Joined(LocalDeferred<String>),
    /// Nothing: the caller starts the lookup, and puts it [`in_flight`](Cache::in_flight).
    Miss,
}

impl Cache {
    /// What the cache has for `name`, counted.
    fn get(&mut self, name: &str) -> Cached {
        self.uses += 1;
        match self.entries.get_mut(name) {
            Some(Entry::Answered { line, used }) => {
                self.by_use.remove(used);
                *used = self.uses;
                self.by_use.insert(self.uses, name.to_owned());
                self.hits += 1;
                Cached::Hit(line.clone())
            }
            Some(Entry::InFlight(lookup)) => {
                self.joined += 1;
                Cached::Joined(lookup.consumer())
            }
            None => {
                self.misses += 1;
                Cached::Miss
            }
        }
    }

    /// The lookup of `name` is on its way: the requests for it wait on it from now on.
    fn in_flight(&mut self, name: &str, lookup: SharedResult<String>) {
        self.entries
            .insert(name.to_owned(), Entry::InFlight(lookup));
    }

    /// The lookup of `name` is over: remember its reply; forget a failure (the next request
    /// tries again).
    fn settle(&mut self, name: &str, outcome: &Result<String, Failure>) {
        self.entries.remove(name);
        if let Ok(line) = outcome {
            self.uses += 1;
            let used = self.uses;
            let line = line.clone();
            self.entries
                .insert(name.to_owned(), Entry::Answered { line, used });
            self.by_use.insert(used, name.to_owned());
            while self.by_use.len() > CACHE_NAMES {
                if let Some((_, oldest)) = self.by_use.pop_first() {
                    self.entries.remove(&oldest);
                }
            }
        }
    }
}

impl Server {
    fn new(inbox: Inbox) -> Server {
        Server {
            inbox,
            clock: TokioLocalClock::new(),
            cache: Rc::default(),
            connections: Rc::default(),
        }
    }

    /// Runs `query` on a pool thread; its result comes home to this thread. Tried again while
    /// SQLite says the database is busy ([`QUERY_ATTEMPTS`] in all); another failure (a
    /// `NotFound`, say) is the query's answer as it is.
    fn query<T: Send + 'static>(
        &self,
        query: impl Fn(&Connection) -> Result<T, Failure> + Send + Sync + 'static,
    ) -> LocalDeferred<T> {
        let (inbox, query) = (self.inbox.clone(), Arc::new(query));
        let policy = RetryPolicy::exponential(FIRST_RETRY_AFTER).max_attempts(QUERY_ATTEMPTS);
        retry_if(self.clock, policy, sql::is_busy, move || {
            let query = query.clone();
            inbox.defer_to_thread(move || on_own_connection(|conn| query(conn)))
        })
        .add_errback(|failure: Failure| Err::<T, _>(not_retried(failure)))
    }

    /// The manager of `employee`, if they have one.
    fn manager_of(&self, employee: &Employee) -> LocalDeferred<Option<Employee>> {
        match employee.manager_id {
            Some(_) => {
                let employee = employee.clone();
                self.query(move |conn| sql::query_manager(conn, &employee))
            }
            None => LocalDeferred::succeed(None),
        }
    }

    /// Looks `name` up — the chain of the `server` example, its queries on the pool and its
    /// steps here: the reply line, or the failure of a query.
    fn look_up(&self, name: String) -> LocalDeferred<String> {
        let db = self.clone();
        chain! {
            db.query(move |conn| sql::query_id(conn, &name))
            then |id| db.query(move |conn| sql::query_details(conn, id))
            then |employee| db.manager_of(&employee)
            then |manager| format!("OK {}", describe(&employee, manager.as_ref()))
            catch |e: NotFound| format!("ERR {e}")
        }
    }

    /// Starts the lookup of `name`, which the cache missed, and puts it in the cache for the
    /// requests for `name` that come while it is on its way: the reply for this request.
    fn start_lookup(&self, name: String) -> LocalDeferred<String> {
        let lookup = self.look_up(name.clone()).into_shared();
        self.cache.borrow_mut().in_flight(&name, lookup.clone());
        // The cache's own consumer, made first, so the cache has settled the name before any
        // request's chain goes on.
        let cache = self.cache.clone();
        let settled = lookup.consumer().add_both(move |outcome| {
            cache.borrow_mut().settle(&name, &outcome);
            Ok::<(), Failure>(())
        });
        drop(settled); // it never fails: nothing to report
        lookup.consumer()
    }

    fn stats(&self, session: &Session) -> String {
        let cache = self.cache.borrow();
        format!(
            "OK stats: hits {}, misses {}, joined {}, names {}, connections {}; \
             this connection: requests {}, answers from the cache {}",
            cache.hits,
            cache.misses,
            cache.joined,
            cache.by_use.len(),
            self.connections.get(),
            session.requests,
            session.from_cache,
        )
    }
}

fn lookup_failed(failure: &Failure) -> String {
    format!("ERR lookup failed: {failure}")
}

/// The failure of a query's retry as the query's own when it was not one to retry (a
/// `NotFound` is an answer, tried once); a retry that gave up on a busy database says so.
fn not_retried(failure: Failure) -> Failure {
    match failure.trap::<RetryError>() {
        Ok(RetryError {
            reason: GaveUp::NotRetryable,
            mut attempts,
            ..
        }) => attempts.pop().unwrap_or_else(|| Failure::msg("no attempt")),
        Ok(gave_up) => Failure::new(gave_up),
        Err(failure) => failure,
    }
}

/// The reply to one request line (without its newline).
fn respond(
    server: &Server,
    session: &Rc<RefCell<Session>>,
    request: &str,
) -> LocalDeferred<String> {
    if request.trim() == STATS {
        return LocalDeferred::succeed(server.stats(&session.borrow()));
    }
    let name = match parse_name(request) {
        Ok(name) => name.to_owned(),
        Err(problem) => return LocalDeferred::succeed(format!("ERR bad request: {problem}")),
    };
    let cached = server.cache.borrow_mut().get(&name);
    let reply = match cached {
        Cached::Hit(line) => {
            session.borrow_mut().from_cache += 1;
            return LocalDeferred::succeed(line);
        }
        Cached::Joined(reply) => reply, // the lookup another request started
        Cached::Miss => server.start_lookup(name), // the queries: a chain of their own
    };
    chain! {
        reply
        catch |f| lookup_failed(&f)                // a query failed: this request says so
    }
}

/// Accepts clients for ever, each on a task of this thread's `LocalSet` (a failed accept, such
/// as running out of file descriptors, costs the one client, not the server).
async fn serve(listener: TcpListener, server: Server) -> std::io::Result<()> {
    loop {
        let (stream, _peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                protocol::accept_failed(&error).await;
                continue;
            }
        };
        server.connections.set(server.connections.get() + 1);
        let server = server.clone();
        tokio::task::spawn_local(async move {
            // A client that goes away mid-line is no error of the server's.
            let _ = handle_client(stream, server).await;
        });
    }
}

async fn handle_client(stream: TcpStream, server: Server) -> std::io::Result<()> {
    // Replies are single short lines: send each at once rather than wait to batch them.
    stream.set_nodelay(true)?;
    let session = Rc::new(RefCell::new(Session::default()));
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let mut line = Vec::new();
    loop {
        let read = read_line(&mut lines, &mut line).await?;
        if read.is_some() {
            session.borrow_mut().requests += 1; // every line is a request, answered or not
        }
        let reply = match read {
            None => return Ok(()),
            Some(Line::TooLong) => {
                write
                    .write_all(format!("{}\n", too_long()).as_bytes())
                    .await?;
                return Ok(());
            }
            // `respond` catches every failure; the `Err` arm is there for the type's sake.
            Some(Line::Text(text)) => respond(&server, &session, &text)
                .await
                .unwrap_or_else(|failure| format!("ERR {failure}")),
            Some(Line::NotUtf8) => NOT_UTF8.to_owned(),
        };
        write.write_all(format!("{reply}\n").as_bytes()).await?;
    }
}

const USAGE: &str = "usage: local_server [--port PORT] [--db FILE]   (0: any free port)";

fn main() -> ExitCode {
    let args = match protocol::parse_args(std::env::args_os().skip(1)) {
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
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(POOL_THREADS)
        .build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(file) = args.db {
        // Before any connection: nothing has read `DIRECTORY` yet.
        let _ = DIRECTORY.set(file);
    }
    tokio::task::LocalSet::new().block_on(&runtime, run(args.port))
}

async fn run(port: u16) -> ExitCode {
    // An in-memory directory lives while a connection to it is open: this one, for the
    // server's life.
    let directory = open_directory()
        .map_err(Failure::from)
        .and_then(|conn| sql::create_and_seed(&conn).map(|()| conn));
    let _directory = match directory {
        Ok(conn) => conn,
        Err(failure) => {
            // (SQLite's message names the file.)
            eprintln!("cannot open the employee database: {failure}");
            return ExitCode::FAILURE;
        }
    };
    // This thread's inbox, drained by a task of the LocalSet: results come home through it.
    let inbox = Inbox::on_tokio_local_set();
    let listener = match TcpListener::bind(("127.0.0.1", port)).await {
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
    match serve(listener, Server::new(inbox)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("server stopped: {error}");
            ExitCode::FAILURE
        }
    }
}
