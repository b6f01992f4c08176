//! The employee server on one thread, with no lock: the `server` example rewritten on a tokio
//! `LocalSet`, with a cache of recent answers every connection shares.
//!
//! ```text
//! cargo run --example local_server --features tokio                # listens on 127.0.0.1:7878
//! cargo run --example local_server --features tokio -- --port 0    # any free port (printed)
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
//! - Every request for a name is one `chain!` over a `LocalDeferred`: it starts from the cache,
//!   whose answer may be there now, or come when the lookup another connection started for the
//!   same name comes home, or not be there (then a second chain runs the queries and settles
//!   the name in the cache for everybody waiting on it).
//! - Each pool thread opens its own connection to the directory (an in-memory SQLite database
//!   the connections of this process share), so the pool needs no lock either.

#[path = "directory/protocol.rs"]
mod protocol;
#[path = "directory/sql.rs"]
mod sql;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::rc::Rc;

use deferred::{Failure, Inbox, LocalDeferred, LocalResolver, chain};
use rusqlite::Connection;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use protocol::{Line, NOT_UTF8, parse_name, read_line, too_long};
use sql::{Employee, NotFound, describe};

/// The directory: an in-memory SQLite database shared by the connections of this process
/// (SQLite's `memdb` VFS, a name starting with `/`). It lives while one of them is open.
const DIRECTORY: &str = "file:/employees?vfs=memdb";

/// How many names the cache remembers; the least recently used is forgotten first.
const CACHE_NAMES: usize = 256;

/// The request that answers the counters.
const STATS: &str = "/stats";

/// How many pool threads run queries (tokio's blocking pool; each has its own connection).
const POOL_THREADS: usize = 4;

thread_local! {
    /// A pool thread's own connection to the directory, opened by its first query: no thread
    /// shares one, so none needs a lock.
    static CONNECTION: RefCell<Option<Connection>> = const { RefCell::new(None) };
}

/// Runs `query` on this pool thread's connection.
fn on_own_connection<T>(
    query: impl FnOnce(&Connection) -> Result<T, Failure>,
) -> Result<T, Failure> {
    CONNECTION.with(|slot| {
        let mut slot = slot.borrow_mut();
        let conn = match &mut *slot {
            Some(conn) => conn,
            empty => empty.insert(Connection::open(DIRECTORY)?),
        };
        query(conn)
    })
}

/// What every connection shares, all of it on this thread: the inbox results come home
/// through, the cache, and a count of connections. Cloning it clones `Rc`s.
#[derive(Clone)]
struct Server {
    inbox: Inbox,
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
    /// A lookup on its way: the requests that wait for it.
    Waiting(Vec<LocalResolver<Option<String>>>),
}

impl Cache {
    /// The answer for `name`: `Some` now (a hit), `Some` later (a lookup for it is on its way),
    /// or `None` now (a miss: the caller looks it up, then [`settle`](Cache::settle)s it).
    fn get(&mut self, name: &str) -> LocalDeferred<Option<String>> {
        self.uses += 1;
        match self.entries.get_mut(name) {
            Some(Entry::Answered { line, used }) => {
                self.by_use.remove(used);
                *used = self.uses;
                self.by_use.insert(self.uses, name.to_owned());
                self.hits += 1;
                LocalDeferred::succeed(Some(line.clone()))
            }
            Some(Entry::Waiting(waiting)) => {
                self.joined += 1;
                let (answer, resolver) = LocalDeferred::pending();
                waiting.push(resolver);
                answer
            }
            None => {
                self.misses += 1;
                self.entries
                    .insert(name.to_owned(), Entry::Waiting(Vec::new()));
                LocalDeferred::succeed(None)
            }
        }
    }

    /// The lookup of `name` is over: remember `line` (if `keep`), and hand back the requests
    /// that waited for it — for the caller to fire once this borrow of the cache has ended.
    fn settle(&mut self, name: &str, line: &str, keep: bool) -> Vec<LocalResolver<Option<String>>> {
        let waiting = match self.entries.remove(name) {
            Some(Entry::Waiting(waiting)) => waiting,
            _ => Vec::new(),
        };
        if keep {
            self.uses += 1;
            let used = self.uses;
            let line = line.to_owned();
            self.entries
                .insert(name.to_owned(), Entry::Answered { line, used });
            self.by_use.insert(used, name.to_owned());
            while self.by_use.len() > CACHE_NAMES {
                if let Some((_, oldest)) = self.by_use.pop_first() {
                    self.entries.remove(&oldest);
                }
            }
        }
        waiting
    }
}

impl Server {
    fn new(inbox: Inbox) -> Server {
        Server {
            inbox,
            cache: Rc::default(),
            connections: Rc::default(),
        }
    }

    /// Runs `query` on a pool thread; its result comes home to this thread.
    fn query<T: Send + 'static>(
        &self,
        query: impl FnOnce(&Connection) -> Result<T, Failure> + Send + 'static,
    ) -> LocalDeferred<T> {
        self.inbox.defer_to_thread(move || on_own_connection(query))
    }

    /// The manager of `employee`, if they have one.
    fn manager_of(&self, employee: &Employee) -> LocalDeferred<Option<Employee>> {
        match employee.manager_id {
            Some(id) => self.query(move |conn| sql::query_details(conn, id).map(Some)),
            None => LocalDeferred::succeed(None),
        }
    }

    /// Looks `name` up — the chain of the `server` example, its queries on the pool and its
    /// steps here — and settles it in the cache.
    fn look_up(&self, name: String) -> LocalDeferred<String> {
        let (db, cache) = (self.clone(), self.clone());
        let asked = name.clone();
        chain! {
            db.query(move |conn| sql::query_id(conn, &asked))
            then |id| db.query(move |conn| sql::query_details(conn, id))
            then |employee| db.manager_of(&employee)
            then |manager| format!("OK {}", describe(&employee, manager.as_ref()))
            catch |e: NotFound| format!("ERR {e}")
            finally |outcome| cache.settle(&name, outcome)
            catch |f| lookup_failed(&f)
        }
    }

    /// The lookup of `name` is over: a reply is remembered, a failure is not (the next request
    /// tries again); the requests that waited for it get the reply either way.
    fn settle(&self, name: &str, outcome: &Result<String, Failure>) {
        let (line, keep) = match outcome {
            Ok(line) => (line.clone(), true),
            Err(failure) => (lookup_failed(failure), false),
        };
        let waiting = self.cache.borrow_mut().settle(name, &line, keep);
        // Fired with the cache no longer borrowed: their chains go on now, and may use it.
        for request in waiting {
            request.callback(Some(line.clone()));
        }
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

/// The reply to one request line (without its newline).
fn respond(
    server: &Server,
    session: &Rc<RefCell<Session>>,
    request: &str,
) -> LocalDeferred<String> {
    session.borrow_mut().requests += 1;
    if request == STATS {
        return LocalDeferred::succeed(server.stats(&session.borrow()));
    }
    let name = match parse_name(request) {
        Ok(name) => name.to_owned(),
        Err(problem) => return LocalDeferred::succeed(format!("ERR bad request: {problem}")),
    };
    let (lookups, session) = (server.clone(), session.clone());
    let cached = server.cache.borrow_mut().get(&name);
    chain! {
        cached                                     // the cache's answer: now, later or `None`
        then |answer| match answer {
            Some(line) => {
                session.borrow_mut().from_cache += 1;
                LocalDeferred::succeed(line)
            }
            None => lookups.look_up(name),         // the queries: a chain of their own
        }
    }
}

/// Accepts clients for ever, each on a task of this thread's `LocalSet`.
async fn serve(listener: TcpListener, server: Server) -> std::io::Result<()> {
    loop {
        let (stream, _peer) = listener.accept().await?;
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
        let reply = match read_line(&mut lines, &mut line).await? {
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

fn main() -> ExitCode {
    let mut port: u16 = 7878;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next().map(|p| p.parse())) {
            ("--port", Some(Ok(p))) => port = p,
            _ => {
                eprintln!("usage: local_server [--port PORT]   (0: any free port)");
                return ExitCode::from(2);
            }
        }
    }
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
    tokio::task::LocalSet::new().block_on(&runtime, run(port))
}

async fn run(port: u16) -> ExitCode {
    // The directory lives while a connection to it is open: this one, for the server's life.
    let directory = Connection::open(DIRECTORY)
        .map_err(Failure::from)
        .and_then(|conn| sql::create_and_seed(&conn).map(|()| conn));
    let _directory = match directory {
        Ok(conn) => conn,
        Err(failure) => {
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
        Ok(addr) => println!("listening on {addr}"),
        Err(_) => println!("listening on 127.0.0.1:{port}"),
    }
    match serve(listener, Server::new(inbox)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("server stopped: {error}");
            ExitCode::FAILURE
        }
    }
}
