//! `chain!` over a `LocalDeferred`: the chain is local (its start decides), so its steps may
//! hold `Rc<RefCell<..>>` state and give non-`Send` values (`Rc<str>`), and it keeps every rule
//! of a chain: `then`, typed and catch-all `catch`, `finally`, waiting on a pending Deferred,
//! names in scope across a run of `then`s, a panic becoming a `Failure`.
#![deny(warnings, clippy::all)]

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use deferred::{Failure, LocalDeferred, Panicked, chain};

#[derive(Debug)]
struct MyError(&'static str);

impl fmt::Display for MyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "my error: {}", self.0)
    }
}

impl std::error::Error for MyError {}

type Log = Rc<RefCell<Vec<String>>>;

fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

/// A local chain whose steps mutate `log` and give `Rc<str>`.
fn describe(start: LocalDeferred<u32>, log: Log) -> LocalDeferred<Rc<str>> {
    let seen = log.clone();
    let done = log.clone();
    chain! {
        start
        then |id| {
            seen.borrow_mut().push(format!("id {id}"));
            if id == 0 {
                return Err(MyError("no id").into());
            }
            Ok::<_, Failure>(Rc::<str>::from(format!("#{id}")))
        }
        then |name| {
            log.borrow_mut().push(format!("name {name}"));
            Rc::<str>::from(format!("{name} (id {id})"))    // `id` is still in scope
        }
        catch |e: MyError| Rc::<str>::from(format!("trapped: {e}"))
        catch |f| Rc::<str>::from(format!("caught: {f}"))
        finally || done.borrow_mut().push("finally".to_owned())
    }
}

#[test]
fn steps_hold_rc_state_and_give_rc_values() {
    let log = log();
    let d = describe(LocalDeferred::succeed(7), log.clone());
    assert_eq!(&*d.wait().unwrap(), "#7 (id 7)");
    assert_eq!(*log.borrow(), ["id 7", "name #7", "finally"]);
}

#[test]
fn a_typed_catch_traps_its_error() {
    let log = log();
    let d = describe(LocalDeferred::succeed(0), log.clone());
    assert_eq!(&*d.wait().unwrap(), "trapped: my error: no id");
    assert_eq!(*log.borrow(), ["id 0", "finally"]);
}

#[test]
fn a_catch_all_takes_the_rest() {
    let log = log();
    let d = describe(LocalDeferred::fail(Failure::msg("down")), log.clone());
    assert_eq!(&*d.wait().unwrap(), "caught: down");
    assert_eq!(*log.borrow(), ["finally"]);
}

#[test]
fn a_pending_start_runs_the_steps_when_it_fires() {
    let log = log();
    let (start, resolver) = LocalDeferred::<u32>::pending();
    let d = describe(start, log.clone());
    assert!(!d.is_fired());
    assert!(log.borrow().is_empty());
    resolver.callback(3);
    assert_eq!(*log.borrow(), ["id 3", "name #3", "finally"]);
    assert_eq!(&*d.wait().unwrap(), "#3 (id 3)");
}

#[test]
fn a_step_waits_on_a_pending_local_deferred() {
    let (inner, resolver) = LocalDeferred::<Rc<str>>::pending();
    let counter = Rc::new(RefCell::new(0));
    let count = counter.clone();
    let d = chain! {
        1
        then |_| 2
        catch |_| 0
    };
    // A chain of Deferreds (its start is a value) is not touched by the local one below.
    assert_eq!(d.wait().unwrap(), 2);
    let d = chain! {
        LocalDeferred::<u32>::succeed(1)
        then move |x| {
            *count.borrow_mut() += x;
            inner                                   // waits for it
        }
        then |name| Rc::<str>::from(format!("{name}!"))
    };
    assert!(!d.is_fired());
    resolver.callback(Rc::from("later"));
    assert_eq!(&*d.wait().unwrap(), "later!");
    assert_eq!(*counter.borrow(), 1);
}

#[test]
fn a_panic_in_a_step_becomes_a_failure() {
    let d = chain! {
        LocalDeferred::<u32>::succeed(1)
        then |x| -> u32 {
            if x == 1 {
                panic!("boom");
            }
            x
        }
        then |x| x + 1
    };
    let failure = d.wait().unwrap_err();
    assert!(failure.is::<Panicked>(), "{failure}");
}

#[test]
fn a_finally_that_waits_on_a_local_deferred() {
    let (cleanup, resolver) = LocalDeferred::<()>::pending();
    let d = chain! {
        LocalDeferred::<u32>::succeed(5)
        finally |outcome| {
            assert!(outcome.is_ok());
            cleanup
        }
    };
    assert!(!d.is_fired());
    resolver.callback(());
    assert_eq!(d.wait().unwrap(), 5);
}

#[test]
fn a_local_finally_that_waits_is_named_at_its_keyword_in_the_trail() {
    let (start, resolver) = LocalDeferred::<u32>::pending();
    let (cleanup, cleaned) = LocalDeferred::<()>::pending();
    let at = line!() + 4;
    let d = chain! {
        start
        then |x| x + 1
        finally move || cleanup
        then |y| y * 2
    };
    resolver.errback(Failure::msg("refused"));
    cleaned.callback(());
    let failure = d.wait().unwrap_err();
    let lines: Vec<u32> = failure.trail().iter().map(|step| step.line()).collect();
    assert_eq!(lines, [at - 1, at, at + 1], "{failure:?}");
}

#[test]
fn a_long_run_of_thens_keeps_its_names() {
    let total = Rc::new(RefCell::new(0u32));
    let t = total.clone();
    let (start, resolver) = LocalDeferred::<u32>::pending();
    let d = chain! {
        start
        then |first| first
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| {
            *t.borrow_mut() = x;
            Rc::<str>::from(format!("{first} -> {x}"))   // `first`, across segments
        }
    };
    resolver.callback(10);
    assert_eq!(&*d.wait().unwrap(), "10 -> 45");
    assert_eq!(*total.borrow(), 45);
}

#[test]
fn the_chain_is_a_local_deferred() {
    let state = Rc::new(RefCell::new(0));
    let d: LocalDeferred<_> = chain! {
        LocalDeferred::<u32>::succeed(1)
        then move |x| {
            *state.borrow_mut() += x;
            state
        }
    };
    assert_eq!(*d.wait().unwrap().borrow(), 1);
}

// The trail of a failure raised inside a local chain's run: every step after it, in order, then
// the `finally`; a panic is raised at its step the same way.
#[test]
fn a_failure_inside_a_local_run_records_the_steps_after_it() {
    let here = line!();
    let failed = chain! {
        LocalDeferred::<u32>::succeed(1)
        then |x| x + 1
        then |_x| Err::<u32, _>(Failure::msg("step two failed"))
        then |x| x + 3
        then |x| x + 4
        finally || ()
    };
    let panicked = chain! {
        LocalDeferred::<u32>::succeed(1)
        then |_x| -> u32 { panic!("in step one") }
        then |x| x + 2
        then |x| x + 3
    };
    let lines = |failure: &Failure| -> Vec<u32> {
        failure.trail().iter().map(|step| step.line()).collect()
    };
    let failure = failed.wait().unwrap_err();
    assert_eq!(failure.origin().map(|step| step.line()), Some(here + 4));
    assert_eq!(lines(&failure), [here + 5, here + 6, here + 7]);
    let failure = panicked.wait().unwrap_err();
    assert!(failure.is::<Panicked>(), "{failure:?}");
    assert_eq!(failure.origin().map(|step| step.line()), Some(here + 11));
    assert_eq!(lines(&failure), [here + 12, here + 13]);
}

/// Both kinds' conversion traits in scope at once (`use deferred::*`): each names its method
/// apart, so a `Result`'s `.into_deferred()` is the `Send` kind's, not an ambiguous call.
#[test]
fn both_kinds_conversions_in_scope_do_not_clash() {
    #[allow(unused_imports)]
    use deferred::*;
    let sent: Deferred<u32> = Ok::<u32, Failure>(1).into_deferred();
    let local: LocalDeferred<u32> = Ok::<u32, Failure>(2).into_local_deferred();
    assert_eq!(sent.wait().unwrap() + local.wait().unwrap(), 3);
}

/// README ("One thread, no locks"): its example, as written there, run in a `LocalSet` — blocking
/// work on the pool, its result back on the loop's thread, where the step touches `Rc` state.
#[cfg(feature = "tokio")]
#[test]
fn the_readmes_one_thread_example_runs_as_written() {
    use deferred::Inbox;

    let thread = std::thread::current().id();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let result: Result<(), Failure> = tokio::task::LocalSet::new().block_on(&runtime, async move {
        let inbox = Inbox::on_tokio_local_set(); // in a LocalSet (feature tokio)
        let seen = Rc::new(RefCell::new(Vec::new())); // the loop's state: no Mutex, no Arc
        let log = seen.clone();
        let line = chain! {
            inbox.defer_to_thread(|| Ok::<_, Failure>(6 * 7))     // blocking work, on the pool
            then |n| {                                             // its result, back here
                assert_eq!(std::thread::current().id(), thread);
                log.borrow_mut().push(n);
                format!("answer: {n}")
            }
        };
        assert_eq!(line.await?, "answer: 42");
        assert_eq!(*seen.borrow(), [42]);
        Ok(())
    });
    result.unwrap();
}
