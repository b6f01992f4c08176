//! The employee chain of README.md (id, details, manager), with a fake database.
#![deny(warnings)]

use std::fmt;

use deferred::{Deferred, chain};

#[derive(Debug)]
struct NotFound(String);

impl fmt::Display for NotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::error::Error for NotFound {}

#[derive(Clone)]
struct Db;

struct Details {
    name: String,
    title: String,
}

fn lookup_id(_db: &Db, name: &str) -> Deferred<u32> {
    match name {
        "alice" => Deferred::succeed(7),
        _ => Deferred::fail(NotFound(name.to_owned()).into()),
    }
}

fn fetch_details(_db: &Db, id: u32) -> Deferred<Details> {
    Deferred::succeed(Details { name: "Alice".into(), title: format!("engineer {id}") })
}

fn log_done() {}

fn describe(name: &str) -> deferred::Deferred<String> {
    let db = Db;
    chain! {
        lookup_id(&db, name)
        then |id| fetch_details(&db, id)
        then |details| format!("{} #{id}: {}", details.name, details.title)
        catch |e: NotFound| format!("no such employee: {e}")
        catch |f| format!("lookup failed: {f}")
        finally || log_done()
    }
}

fn main() {
    assert_eq!(describe("alice").wait().unwrap(), "Alice #7: engineer 7");
    assert_eq!(describe("bob").wait().unwrap(), "no such employee: bob");
}
