//! The employee directory both examples use: a real SQLite database, queried on a thread pool
//! through `defer_to_thread`, the way Twisted's `adbapi` runs queries.
//!
//! Every query function returns a `Deferred` at once; the query runs on a pool thread.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use deferred::{Deferred, Failure, defer_to_thread};
use rusqlite::{Connection, OptionalExtension, params};

#[allow(dead_code)] // the employees example does not serve
pub mod server;

/// A cheap clonable handle to the database (the `db` of the chains): clone it into each step.
#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

/// One row of the directory.
#[derive(Debug, Clone, PartialEq)]
pub struct Employee {
    pub id: i64,
    pub name: String,
    pub title: String,
    pub manager_id: Option<i64>,
}

/// Nobody by that name (or id) in the directory.
#[derive(Debug, Clone, PartialEq)]
pub struct NotFound(pub String);

impl fmt::Display for NotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no such employee: {}", self.0)
    }
}

impl std::error::Error for NotFound {}

const SEED: &[(i64, &str, &str, Option<i64>)] = &[
    (1, "carol", "Director of Engineering", None),
    (2, "alice", "Staff Engineer", Some(1)),
    (3, "bob", "Site Reliability Engineer", Some(1)),
    (4, "dave", "Engineer", Some(2)),
    (5, "erin", "Engineer", Some(2)),
];

impl Db {
    /// Opens (creating and seeding on first use) the directory at `path`; `None` for an
    /// in-memory one.
    pub fn open(path: Option<&Path>) -> Result<Db, Failure> {
        let conn = match path {
            Some(path) => Connection::open(path)?,
            None => Connection::open_in_memory()?,
        };
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS employees (
                 id INTEGER PRIMARY KEY,
                 name TEXT NOT NULL UNIQUE,
                 title TEXT NOT NULL,
                 manager_id INTEGER REFERENCES employees(id)
             );",
        )?;
        for (id, name, title, manager) in SEED {
            conn.execute(
                "INSERT OR IGNORE INTO employees (id, name, title, manager_id) VALUES (?1, ?2, ?3, ?4)",
                params![id, name, title, manager],
            )?;
        }
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
    db.run(move |conn| {
        conn.query_row("SELECT id FROM employees WHERE name = ?1", [&name], |row| {
            row.get(0)
        })
        .optional()?
        .ok_or_else(|| Failure::new(NotFound(name)))
    })
}

/// The details of employee `id`.
pub fn fetch_details(db: &Db, id: i64) -> Deferred<Employee> {
    db.run(move |conn| {
        conn.query_row(
            "SELECT id, name, title, manager_id FROM employees WHERE id = ?1",
            [id],
            |row| {
                Ok(Employee {
                    id: row.get(0)?,
                    name: row.get(1)?,
                    title: row.get(2)?,
                    manager_id: row.get(3)?,
                })
            },
        )
        .optional()?
        .ok_or_else(|| Failure::new(NotFound(format!("#{id}"))))
    })
}

/// The manager of `employee`, if they have one.
pub fn fetch_manager(db: &Db, employee: &Employee) -> Deferred<Option<Employee>> {
    match employee.manager_id {
        Some(id) => fetch_details(db, id).add_callback(|manager| Ok(Some(manager))),
        None => Deferred::succeed(None),
    }
}

/// The line both versions of the lookup print.
pub fn describe(employee: &Employee, manager: Option<&Employee>) -> String {
    match manager {
        Some(m) => format!(
            "{} #{}: {}, reports to {} #{} ({})",
            employee.name, employee.id, employee.title, m.name, m.id, m.title
        ),
        None => format!("{} #{}: {}", employee.name, employee.id, employee.title),
    }
}
