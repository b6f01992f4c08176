//! The employee directory both examples use: a real SQLite database, queried on a thread pool
//! through `defer_to_thread`, the way Twisted's `adbapi` runs queries.
//!
//! Every query function returns a `Deferred` at once; the query runs on a pool thread. The SQL
//! itself is in `sql.rs` and the servers' line protocol in `protocol.rs`, which hold no lock:
//! the one-thread server (`local_server`) uses them without this module's `Db`.

use std::path::Path;
use std::sync::{Arc, Mutex};

use deferred::{Deferred, Failure, defer_to_thread};
use rusqlite::Connection;

#[allow(dead_code)] // the employees example does not serve
#[cfg(feature = "tokio")]
pub mod protocol;
#[allow(dead_code)] // the employees example does not serve
#[cfg(feature = "tokio")]
pub mod server;
pub mod sql;

pub use sql::{Employee, NotFound, describe};

/// A cheap clonable handle to the database (the `db` of the chains): clone it into each step.
#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

impl Db {
    /// Opens (creating and seeding on first use) the directory at `path`; `None` for an
    /// in-memory one.
    pub fn open(path: Option<&Path>) -> Result<Db, Failure> {
        let conn = match path {
            Some(path) => Connection::open(path)?,
            None => Connection::open_in_memory()?,
        };
        sql::create_and_seed(&conn)?;
        Ok(Db {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `query` on a pool thread with the connection.
    fn run<T: Send + 'static>(
        &self,
        query: impl FnOnce(&Connection) -> Result<T, Failure> + Send + 'static,
    ) -> Deferred<T> {
        let conn = self.conn.clone();
        defer_to_thread(move || {
            let conn = conn
                .lock()
                .map_err(|_| Failure::msg("the database lock is poisoned"))?;
            query(&conn)
        })
    }
}

/// The id of the employee called `name`.
pub fn lookup_id(db: &Db, name: &str) -> Deferred<i64> {
    let name = name.to_owned();
    db.run(move |conn| sql::query_id(conn, &name))
}

/// The details of employee `id`.
pub fn fetch_details(db: &Db, id: i64) -> Deferred<Employee> {
    db.run(move |conn| sql::query_details(conn, id))
}

/// The manager of `employee`, if they have one (a manager id with no row fails with
/// `sql::ManagerMissing`).
pub fn fetch_manager(db: &Db, employee: &Employee) -> Deferred<Option<Employee>> {
    match employee.manager_id {
        Some(_) => {
            let employee = employee.clone();
            db.run(move |conn| sql::query_manager(conn, &employee))
        }
        None => Deferred::succeed(None),
    }
}
