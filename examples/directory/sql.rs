//! The directory's SQL, with no lock and no thread pool: the schema and seed, the two queries,
//! and the line a lookup answers with. Each function takes the connection it runs on, so the
//! threaded examples run them under their `Db`'s lock and the one-thread server on each pool
//! thread's own connection.

use std::fmt;

use deferred::Failure;
use rusqlite::{Connection, OptionalExtension, params};

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

/// Creates the table if it is not there and adds the seed rows that are missing.
pub fn create_and_seed(conn: &Connection) -> Result<(), Failure> {
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
    Ok(())
}

/// Whether SQLite failed only for now: another connection had the database busy or locked (the
/// one-thread server tries such a query again).
#[allow(dead_code)] // the threaded examples run their queries one at a time, under a lock
pub fn is_busy(failure: &Failure) -> bool {
    failure
        .downcast_ref::<rusqlite::Error>()
        .and_then(rusqlite::Error::sqlite_error_code)
        .is_some_and(|code| {
            matches!(
                code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            )
        })
}

/// The id of the employee called `name`.
pub fn query_id(conn: &Connection, name: &str) -> Result<i64, Failure> {
    conn.query_row("SELECT id FROM employees WHERE name = ?1", [name], |row| {
        row.get(0)
    })
    .optional()?
    .ok_or_else(|| Failure::new(NotFound(name.to_owned())))
}

/// The details of employee `id`.
pub fn query_details(conn: &Connection, id: i64) -> Result<Employee, Failure> {
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
}

/// The line a lookup gives (the employees example prints it; the servers answer `OK` and it).
pub fn describe(employee: &Employee, manager: Option<&Employee>) -> String {
    match manager {
        Some(m) => format!(
            "{} #{}: {}, reports to {} #{} ({})",
            employee.name, employee.id, employee.title, m.name, m.id, m.title
        ),
        None => format!("{} #{}: {}", employee.name, employee.id, employee.title),
    }
}
