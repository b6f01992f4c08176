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

/// Creates the table if it is not there and adds the seed rows that are missing. A directory
/// that has them all is only read, so a lookup works on a read-only file, and while another
/// process is writing to it.
pub fn create_and_seed(conn: &Connection) -> Result<(), Failure> {
    let has_table: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'employees')",
        [],
        |row| row.get(0),
    )?;
    if !has_table {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS employees (
                 id INTEGER PRIMARY KEY,
                 name TEXT NOT NULL UNIQUE,
                 title TEXT NOT NULL,
                 manager_id INTEGER REFERENCES employees(id)
             );",
        )?;
    }
    for (id, name, title, manager) in SEED {
        // The row is there (or its id or name is taken, which the insert would ignore).
        let present: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM employees WHERE id = ?1 OR name = ?2)",
            params![id, name],
            |row| row.get(0),
        )?;
        if !present {
            conn.execute(
                "INSERT OR IGNORE INTO employees (id, name, title, manager_id) VALUES (?1, ?2, ?3, ?4)",
                params![id, name, title, manager],
            )?;
        }
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

/// The manager of `employee`, if they have one. A manager id with no row is the directory's
/// fault, not a name that is not there: it fails with [`ManagerMissing`], not [`NotFound`].
pub fn query_manager(conn: &Connection, employee: &Employee) -> Result<Option<Employee>, Failure> {
    let Some(manager_id) = employee.manager_id else {
        return Ok(None);
    };
    match query_details(conn, manager_id) {
        Ok(manager) => Ok(Some(manager)),
        Err(failure) if failure.is::<NotFound>() => Err(Failure::new(ManagerMissing {
            name: employee.name.clone(),
            id: employee.id,
            manager_id,
        })),
        Err(failure) => Err(failure),
    }
}

/// An employee's manager is not in the directory: the row names a manager id no row has.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagerMissing {
    pub name: String,
    pub id: i64,
    pub manager_id: i64,
}

impl fmt::Display for ManagerMissing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} #{} reports to #{}, who is not in the directory",
            self.name, self.id, self.manager_id
        )
    }
}

impl std::error::Error for ManagerMissing {}

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
