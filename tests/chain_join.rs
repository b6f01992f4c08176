//! `chain!` with `join`: a step joins Deferreds of different types, the next step takes the
//! tuple apart (`then |(details, manager)| ...`), and those names stay in scope for the steps
//! after it like any other — for both kinds, with the inputs pending or fired.
#![deny(warnings, clippy::all)]

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use deferred::{Deferred, Failure, LocalDeferred, chain, join, local};

#[derive(Debug)]
struct Details {
    name: String,
    manager_id: u32,
}

/// The details of employee `id`.
fn details(id: u32) -> Deferred<Details> {
    Deferred::succeed(Details {
        name: format!("employee {id}"),
        manager_id: id / 2,
    })
}

#[test]
fn a_joined_tuple_is_taken_apart_and_its_names_stay_in_scope() {
    let (manager, answer) = Deferred::<String>::pending();
    let d = chain! {
        4_u32
        then |id| join((details(id), manager))
        then |(details, manager)| format!("{} reports to {manager}", details.name)
        then |line| format!("{line} (#{}, manager #{})", id, details.manager_id)
        then |full| (full, manager.len())            // `manager` is still in scope
    };
    assert!(!d.is_fired());
    answer.callback("carol".to_string());
    let (line, manager_len) = d.wait().unwrap();
    assert_eq!(line, "employee 4 reports to carol (#4, manager #2)");
    assert_eq!(manager_len, 5);
}

#[test]
fn a_failed_join_goes_to_the_catch_and_cancels_the_other_input() {
    let cancels = Arc::new(AtomicUsize::new(0));
    let counted = cancels.clone();
    let (manager, _answer) = Deferred::<String>::with_canceller(move || {
        counted.fetch_add(1, Ordering::SeqCst);
    });
    let d = chain! {
        join((Deferred::<Details>::fail(Failure::msg("no such employee")), manager))
        then |(details, manager)| format!("{} reports to {manager}", details.name)
        catch |f| format!("ERR {f}")
    };
    assert_eq!(d.wait().unwrap(), "ERR no such employee");
    assert_eq!(
        cancels.load(Ordering::SeqCst),
        1,
        "the manager's lookup was cancelled"
    );
}

#[test]
fn a_local_join_of_rc_values_is_taken_apart_too() {
    let (title, answer) = LocalDeferred::<Rc<str>>::pending();
    let d = chain! {
        LocalDeferred::<u32>::succeed(7)
        then |id| local::join((LocalDeferred::succeed(Rc::<str>::from("alice")), title))
        then |(name, title)| format!("{name}, {title}")
        then |line| format!("#{id} {line} ({} letters in the title)", title.len())
    };
    answer.callback(Rc::from("Staff Engineer"));
    assert_eq!(
        d.wait().unwrap(),
        "#7 alice, Staff Engineer (14 letters in the title)"
    );
}
