//! The employee lookup: find an employee's id by name, then their details by id, then their
//! manager — one straight `chain!` instead of nested callbacks.
//!
//! ```text
//! cargo run --example employees -- alice          # the chain! version
//! cargo run --example employees -- alice --nested # the same lookup as nested callbacks
//! ```
//!
//! The directory is a real SQLite database, created and seeded on first run at
//! `examples/target/employees.sqlite3` (pass `--db PATH` for another file, `--db :memory:` for
//! none).
//! Queries run on a thread pool through `defer_to_thread`, as Twisted's `adbapi` runs them.

#[path = "directory/mod.rs"]
mod directory;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use deferred::{Deferred, Failure, chain};
use directory::sql::ManagerMissing;
use directory::{Db, Employee, NotFound, describe, fetch_details, fetch_manager, lookup_id};

/// The lookup as one chain: each step names what it gets, and `employee` stays in scope for the
/// steps after the one that bound it.
fn lookup(db: &Db, name: &str) -> Deferred<String> {
    let db = db.clone();
    chain! {
        lookup_id(&db, name)
        then |id| fetch_details(&db, id)
        then |employee| fetch_manager(&db, &employee)
        then |manager| describe(&employee, manager.as_ref())
    }
}

/// The same lookup written as nested callbacks, for comparison: every step that needs an
/// earlier value has to be nested inside the callback that produced it.
fn lookup_nested(db: &Db, name: &str) -> Deferred<String> {
    let db = db.clone();
    lookup_id(&db, name).add_callback(move |id| {
        fetch_details(&db, id).add_callback(move |employee: Employee| {
            fetch_manager(&db, &employee)
                .add_callback(move |manager| Ok(describe(&employee, manager.as_ref())))
        })
    })
}

const USAGE: &str = "usage: employees NAME [--nested] [--db PATH|:memory:]";

struct Args {
    name: String,
    nested: bool,
    db: Option<PathBuf>,
    /// The database is the default file, whose directory is made if it is not there (a path
    /// given with `--db` is taken as it is).
    default_db: bool,
}

/// The arguments; `Ok(None)` for `--help`.
fn parse_args() -> Result<Option<Args>, String> {
    let mut name = None;
    let mut nested = false;
    let mut db = Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/employees.sqlite3"));
    let mut default_db = true;
    // `args_os`, not `args`: a path need not be UTF-8 (and `args` panics on one that is not).
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        let Some(arg) = arg.to_str().map(str::to_owned) else {
            return Err(format!("`{}` is not UTF-8", arg.to_string_lossy()));
        };
        match arg.as_str() {
            "--help" | "-h" => return Ok(None),
            "--nested" => nested = true,
            "--db" => {
                default_db = false;
                match args.next() {
                    Some(path) if path == ":memory:" => db = None,
                    // (An empty path is no file: SQLite would open a temporary database, seed
                    // it, answer from it and delete it, as if the directory were there.)
                    Some(path) if !path.is_empty() => db = Some(PathBuf::from(path)),
                    _ => return Err("`--db` needs a path (or `:memory:`)".into()),
                }
            }
            "" => return Err("the name is empty: which employee?".into()),
            flag if flag.starts_with('-') => return Err(format!("unknown option `{flag}`")),
            _ if name.is_some() => return Err(format!("unexpected argument `{arg}`")),
            _ => name = Some(arg),
        }
    }
    let name = name.ok_or("which employee? e.g. `cargo run --example employees -- alice`")?;
    Ok(Some(Args {
        name,
        nested,
        db,
        default_db,
    }))
}

fn main() -> ExitCode {
    let args = match parse_args() {
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
    if args.default_db
        && let Some(dir) = args.db.as_ref().and_then(|p| p.parent())
    {
        let _ = std::fs::create_dir_all(dir);
    }
    let db = match Db::open(args.db.as_deref()) {
        Ok(db) => db,
        Err(failure) => {
            match &args.db {
                Some(path) => eprintln!(
                    "cannot open the employee database {}: {failure}",
                    path.display()
                ),
                None => eprintln!("cannot open the employee database: {failure}"),
            }
            return ExitCode::FAILURE;
        }
    };
    let line = if args.nested {
        lookup_nested(&db, &args.name)
    } else {
        lookup(&db, &args.name)
    };
    match line.wait() {
        // Written, not `println!`ed: a closed stdout (`| head -0`) is reported, not a panic.
        Ok(line) => match writeln!(std::io::stdout(), "{line}") {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("cannot write the answer: {error}");
                ExitCode::FAILURE
            }
        },
        Err(failure) => {
            report(&failure);
            ExitCode::FAILURE
        }
    }
}

fn report(failure: &Failure) {
    if let Some(not_found) = failure.downcast_ref::<NotFound>() {
        eprintln!("{not_found}");
    } else if let Some(missing) = failure.downcast_ref::<ManagerMissing>() {
        eprintln!("lookup failed: {missing}");
    } else {
        eprintln!("lookup failed: {failure:#}");
    }
}
