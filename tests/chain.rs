//! `chain!` at run time: the employee chain of README.md against a fake database that answers
//! later, scoping, `catch`, `finally`, panics, pending starts and the trail of a failure.
#![deny(warnings, clippy::all)]

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use deferred::{Deferred, Failure, Panicked, chain};

// ---------------------------------------------------------------------------------------------
// A fake database whose answers arrive later: each query queues its answer, and `answer_all`
// delivers them, as a reactor would.

#[derive(Debug)]
struct NotFound(String);

impl fmt::Display for NotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no employee named {}", self.0)
    }
}

impl std::error::Error for NotFound {}

#[derive(Debug)]
struct Timeout;

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the database timed out")
    }
}

impl std::error::Error for Timeout {}

#[derive(Clone, Debug, PartialEq)]
struct Details {
    name: String,
    title: String,
}

type Answer = Box<dyn FnOnce() + Send>;

#[derive(Clone, Default)]
struct Db {
    ids: Arc<HashMap<&'static str, u32>>,
    details: Arc<HashMap<u32, Details>>,
    queue: Arc<Mutex<Vec<Answer>>>,
    down: bool,
}

impl Db {
    fn new() -> Db {
        let details = Details {
            name: "Alice".to_owned(),
            title: "engineer".to_owned(),
        };
        Db {
            ids: Arc::new(HashMap::from([("alice", 7)])),
            details: Arc::new(HashMap::from([(7, details)])),
            ..Db::default()
        }
    }

    /// Answers `result` later, when `answer_all` runs.
    fn later<T: Send + 'static>(&self, result: Result<T, Failure>) -> Deferred<T> {
        let (d, resolver) = Deferred::pending();
        self.queue
            .lock()
            .unwrap()
            .push(Box::new(move || resolver.fire(result)));
        d
    }

    /// Delivers every queued answer, including those queued while delivering.
    fn answer_all(&self) {
        loop {
            let answers = std::mem::take(&mut *self.queue.lock().unwrap());
            if answers.is_empty() {
                return;
            }
            for answer in answers {
                answer();
            }
        }
    }
}

fn lookup_id(db: &Db, name: &str) -> Deferred<u32> {
    let result = match db.ids.get(name) {
        _ if db.down => Err(Timeout.into()),
        Some(id) => Ok(*id),
        None => Err(NotFound(name.to_owned()).into()),
    };
    db.later(result)
}

fn fetch_details(db: &Db, id: u32) -> Deferred<Details> {
    db.later(Ok(db.details[&id].clone()))
}

static DONE: AtomicUsize = AtomicUsize::new(0);

fn log_done() {
    DONE.fetch_add(1, Ordering::SeqCst);
}

/// The employee chain: look the id up, fetch the details, then the manager (README.md).
fn describe(db: &Db, name: &str) -> Deferred<String> {
    let db = db.clone();
    chain! {
        lookup_id(&db, name)
        then |id| fetch_details(&db, id)
        then |details| format!("{} #{id}: {}", details.name, details.title)
        catch |e: NotFound| format!("no such employee: {e}")
        catch |f| format!("lookup failed: {f}")
        finally || log_done()
    }
}

#[test]
fn the_employee_chain_waits_for_each_answer() {
    let db = Db::new();
    let before = DONE.load(Ordering::SeqCst);
    let alice = describe(&db, "alice");
    let bob = describe(&db, "bob");
    let down_db = Db {
        down: true,
        ..Db::new()
    };
    let down = describe(&down_db, "alice");
    assert!(!alice.is_fired() && !bob.is_fired());

    db.answer_all();
    assert_eq!(alice.wait().unwrap(), "Alice #7: engineer");
    assert_eq!(
        bob.wait().unwrap(),
        "no such employee: no employee named bob"
    );
    assert!(!down.is_fired(), "its own database has not answered");
    assert!(DONE.load(Ordering::SeqCst) >= before + 2);

    // Its database answers last. (Left unanswered, its queue would keep the chain's Resolver and
    // the chain's steps the queue: a cycle, never freed.)
    down_db.answer_all();
    assert_eq!(
        down.wait().unwrap(),
        "lookup failed: the database timed out"
    );
}

#[test]
fn a_failure_no_typed_catch_traps_reaches_the_catch_all() {
    let db = Db {
        down: true,
        ..Db::new()
    };
    let line = describe(&db, "alice");
    db.answer_all();
    assert_eq!(
        line.wait().unwrap(),
        "lookup failed: the database timed out"
    );
}

// ---------------------------------------------------------------------------------------------
// Scoping.

/// Names a formatting macro's arguments bind themselves — a closure's parameter, a `match`
/// arm's — are not taken for names from around the chain (the macro used to check them as
/// captures: "cannot find value `x`", or, with a `!Send` variable of that name around the
/// chain, "a step of this chain captures `Rc<..>`").
#[test]
#[allow(clippy::useless_format)] // the arguments' shapes are the point
fn names_bound_inside_a_formatting_macros_arguments_are_not_captures() {
    let x = std::rc::Rc::new(5); // a `!Send` name the arguments' closure binds again
    let chained = chain! {
        Deferred::<Vec<u32>>::succeed(vec![1, 2, 3])
        then |v| {
            let joined = format!("{}", v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(","));
            let first = format!("{}", match v.first() { Some(s) => s.to_string(), None => String::new() });
            format!("{joined};{first};{n}", n = v.len())
        }
        catch |f| format!("{}", f.origin().map(|l| l.line()).unwrap_or(0))
    };
    assert_eq!(chained.wait().unwrap(), "1,2,3;1;3");
    assert_eq!(*x, 5);
}

#[test]
fn a_start_may_call_a_method_named_as_a_step() {
    // A type's own `then` and `finally` taking closures are the start's.
    struct Lazy(u32);
    impl Lazy {
        fn then(self, f: impl FnOnce(u32) -> u32) -> u32 {
            f(self.0)
        }
    }
    impl Lazy {
        fn finally(self, f: impl FnOnce()) -> Lazy {
            f();
            self
        }
    }
    let own = chain! { Lazy(1).finally(|| ()).then(|x| x + 1) then |v| v * 2 };
    assert_eq!(own.wait().unwrap(), 4);
    // `.then(|| ..)` with no parameter is `bool::then`: a start is any expression, and steps
    // written as a promise's methods on it are left to the compiler ("no method named `then`
    // found for struct `Deferred`"), which cannot be told from a type's own `then`.
    let ready = true;
    let chained =
        chain! { ready.then(|| String::from("ok")) then |x: Option<String>| x.map(|s| s.len()) };
    assert_eq!(chained.wait().unwrap(), Some(2));
}

/// A `then` that gives `()` (its body ends with `;`) before a step that uses that `()` as
/// `()` can be used — printed, passed on — compiles (one that does arithmetic or calls a method
/// on it is a compile error at the `;`: tests/ui/fail/then_ends_with_a_semicolon.rs).
#[test]
fn a_step_may_take_the_unit_a_step_ending_with_a_semicolon_gives() {
    let chained = chain! {
        Deferred::<u32>::succeed(1)
        then |x: u32| { std::hint::black_box(x); }
        then |done| { println!("{done:?}"); done }
        then |done| done.partial_cmp(&())
    };
    assert_eq!(chained.wait().unwrap(), Some(std::cmp::Ordering::Equal));
}

#[test]
fn a_start_named_start_is_a_variable() {
    // `start` is no keyword (a `start` followed by anything but a step is a compile error that
    // says so: tests/ui/fail/start_keyword.rs), so a variable of that name starts a chain.
    let start = Deferred::<u32>::succeed(1);
    let chained = chain! { start then |x| x + 1 };
    assert_eq!(chained.wait().unwrap(), 2);
}

#[test]
fn names_bound_by_a_then_stay_in_scope_until_the_next_catch() {
    let d = chain! {
        2
        then |a| a * 10
        then |b| b + a                   // `a` from the step before
        then |c| (a, b, c)               // every earlier name
        then |(x, y, z)| x + y + z + a   // patterns bind names too
    };
    assert_eq!(d.wait().unwrap(), 2 + 20 + 22 + 2);
}

#[test]
fn a_later_then_may_shadow_an_earlier_name() {
    let d = chain! {
        1
        then |x| x + 1
        then |x| x * 10
        catch |_| 0
        then |x| x + 1
    };
    assert_eq!(d.wait().unwrap(), 21);
}

#[test]
fn steps_take_what_they_use_from_around_the_chain() {
    let prefix = String::from("employee #");
    let shared = Arc::new(AtomicUsize::new(0));
    let counter = shared.clone();
    let d = chain! {
        7
        then move |id| format!("{prefix}{id}")
        finally move || counter.fetch_add(1, Ordering::SeqCst)
    };
    assert_eq!(d.wait().unwrap(), "employee #7");
    assert_eq!(shared.load(Ordering::SeqCst), 1);
}

/// A run of `then`s shares what it takes from around the chain, but the `catch` and `finally`
/// after it are closures of their own, each taking what it uses: a `Copy` value is copied into
/// each, another is cloned before the chain for the later one (without the clone, the message of
/// `tests/ui/fail/value_used_by_a_run_and_its_catch.rs`). A string nested in a format macro's
/// arguments is not its format string: `{not_a_name}` there names nothing.
#[test]
fn a_run_and_the_steps_after_it_each_take_what_they_use() {
    let limit = 3_u32;
    let label: &'static str = "hours";
    let name = String::from("Ada");
    let name_in_catch = name.clone();
    let finished = Arc::new(AtomicUsize::new(0));
    let counter = finished.clone();
    for hours in [2_u32, 5] {
        let (name, name_in_catch, counter) = (name.clone(), name_in_catch.clone(), counter.clone());
        let d = chain! {
            Deferred::<u32>::succeed(hours)
            then |n| if n > limit { Err(Failure::msg(format!("{n} {label}"))) } else { Ok(n) }
            then |n| format!("{name}: {n} {label} of {limit}, {}", "{not_a_name}")
            catch |f| format!("{name_in_catch}: {f}, over {limit} {label}")
            finally move || counter.fetch_add(usize::from(limit == 3), Ordering::SeqCst)
        };
        let expected = match hours {
            2 => "Ada: 2 hours of 3, {not_a_name}",
            _ => "Ada: 5 hours, over 3 hours",
        };
        assert_eq!(d.wait().unwrap(), expected);
    }
    assert_eq!(finished.load(Ordering::SeqCst), 2);

    // A closure that names only a field of a value takes only that field: two closures may each
    // take a `Copy` field, or different fields, of a value that is not `Copy`.
    struct Config {
        limit: u32,
        unit: String,
        fallback: String,
    }
    let cfg = Config {
        limit: 3,
        unit: "hours".to_owned(),
        fallback: "none".to_owned(),
    };
    let d = chain! {
        Deferred::<u32>::succeed(5)
        then |n| if n > cfg.limit { Err(Failure::msg(cfg.unit)) } else { Ok(n.to_string()) }
        catch |f| format!("{f} over {}, {}", cfg.limit, cfg.fallback)
    };
    assert_eq!(d.wait().unwrap(), "hours over 3, none");
}

/// A step may assign to what it binds itself: its parameter (`|mut a|`), a `let` in its body, a
/// nested closure's parameter, its own copy of a value from around the chain once it has rebound
/// it (`let mut budget = budget;`) or when it is written `move`, and a value that is not `Copy`,
/// which it took whole. Only a step without `move` that assigns to a `Copy` value from around the
/// chain is an error (`tests/ui/fail/step_assigns_to_a_captured_counter.rs`): it would change its
/// own copy, never the variable.
#[test]
fn a_step_assigns_to_its_own_names() {
    let mut log = String::from("log:");
    let mut spent = 0_u32;
    let d = chain! {
        Deferred::<u32>::succeed(4)
        then |n| {
            log += &format!(" {n}");
            log
        }
        then move |line| {
            spent += 1;
            format!("{line} ({spent})")
        }
    };
    assert_eq!(d.wait().unwrap(), "log: 4 (1)");
    assert_eq!(spent, 0, "the `move` step changed its own copy");

    let budget = 10_u32;
    let d = chain! {
        Deferred::<u32>::succeed(3)
        then |mut a| {
            a += 1;
            a
        }
        then |b| {
            let mut total = 0;
            total += b;
            (1..=b).fold(total, |mut acc, n| {
                acc += n;
                acc
            })
        }
        then |c| {
            let mut budget = budget;
            budget -= 1;
            c + budget
        }
    };
    // 3 + 1 = 4; 4 + (1 + 2 + 3 + 4) = 14; 14 + 9 = 23.
    assert_eq!(d.wait().unwrap(), 23);
    assert_eq!(budget, 10);

    // Fields: of a value that is not `Copy`, moved into the step (and given on), of the step's
    // own parameter, and of a `Copy` value in a step written `move`.
    #[derive(Default)]
    struct Tally {
        count: u32,
        names: Vec<String>,
    }
    #[derive(Clone, Copy, Default)]
    struct Position {
        x: u32,
    }
    let mut tally = Tally::default();
    let mut position = Position::default();
    let d = chain! {
        Deferred::<u32>::succeed(5)
        then |n| {
            tally.count += 1;
            tally.names.push(n.to_string());
            tally
        }
        then |mut t| {
            t.count += 1;
            t.count + t.names.len() as u32
        }
        then move |c| {
            position.x += c;
            position.x
        }
    };
    // 1 + 1 = 2, + one name = 3.
    assert_eq!(d.wait().unwrap(), 3);
    assert_eq!(position.x, 0, "the `move` step changed its own copy");

    // A method that takes `self` by value: nobody outside sees its copy, so its steps may
    // change it.
    impl Position {
        fn moved_by(mut self, d: Deferred<u32>) -> Deferred<u32> {
            chain! {
                d
                then |n| {
                    self.x += n;
                    self.x
                }
            }
        }
    }
    let start = Position { x: 1 };
    assert_eq!(start.moved_by(Deferred::succeed(2)).wait().unwrap(), 3);
}

// ---------------------------------------------------------------------------------------------
// `catch`.

/// Each consumer of a `SharedResult` holds the one failure with the others: a typed `catch`
/// takes a clone of its error when the type is `Clone`, while the others still hold it. A type
/// that is not `Clone` can be taken by the last holder only (`Failure::trap`).
#[test]
fn a_typed_catch_traps_a_clone_of_a_shared_failure() {
    #[derive(Clone, Debug, PartialEq)]
    struct Gone(u32);
    impl fmt::Display for Gone {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "record {} is gone", self.0)
        }
    }
    impl std::error::Error for Gone {}

    let (source, resolver) = Deferred::<u32>::pending();
    let shared = source.into_shared();
    let first = chain! {
        shared.consumer()
        then |x| x + 1
        catch |e: Gone| e.0
    };
    let second = chain! {
        shared.consumer()
        catch |e: Gone| e.0 + 100
    };
    let other = chain! {
        shared.consumer()
        catch |_: Timeout| 0
    };
    resolver.errback(Failure::new(Gone(7)));
    assert_eq!(first.wait().unwrap(), 7);
    assert_eq!(second.wait().unwrap(), 107);
    assert!(
        other.wait().unwrap_err().is::<Gone>(),
        "a Timeout catch passes it on"
    );

    // Not `Clone`: the consumers that still share it pass it on.
    let (source, resolver) = Deferred::<u32>::pending();
    let shared = source.into_shared();
    let trapped = chain! {
        shared.consumer()
        catch |_: Timeout| 1
    };
    let other = shared.consumer();
    resolver.errback(Failure::new(Timeout));
    assert!(trapped.wait().unwrap_err().is::<Timeout>());
    assert!(other.wait().unwrap_err().is::<Timeout>());
}

#[test]
fn a_typed_catch_traps_only_its_type() {
    let trapped = chain! {
        Deferred::<u32>::fail(Timeout.into())
        catch |_: NotFound| 1
        catch |_: Timeout| 2
        catch |_| 3
    };
    assert_eq!(trapped.wait().unwrap(), 2);

    let passed = chain! {
        Deferred::<u32>::fail(Failure::msg("other"))
        catch |_: NotFound| 1
    };
    let failure = passed.wait().unwrap_err();
    assert_eq!(failure.to_string(), "other");
}

/// A typed `catch` whose body is a `|` of flags means `|` (two error types in one `catch` are
/// the compile error of `tests/ui/fail/catch_two_types_with_a_bar.rs`).
#[test]
fn a_typed_catch_may_give_flags_joined_by_a_bar() {
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct Perm(u8);
    #[allow(non_upper_case_globals)]
    const Read: Perm = Perm(1);
    #[allow(non_upper_case_globals)]
    const Write: Perm = Perm(2);
    impl std::ops::BitOr for Perm {
        type Output = Perm;
        fn bitor(self, other: Perm) -> Perm {
            Perm(self.0 | other.0)
        }
    }
    let d = chain! {
        Deferred::<Perm>::fail(NotFound("dave".to_owned()).into())
        catch |_: NotFound| Read | Write
    };
    assert_eq!(d.wait().unwrap(), Perm(3));
}

#[test]
fn a_typed_catch_gets_the_error_itself() {
    let d = chain! {
        Deferred::<String>::fail(NotFound("carol".to_owned()).into())
        catch |NotFound(name): NotFound| format!("{name}?")
    };
    assert_eq!(d.wait().unwrap(), "carol?");
}

/// `catch |e: Box<dyn Error + Send + Sync>|`, as code written with boxed errors has it: every
/// failure is one, so it catches everything, and gets the error the failure holds (its
/// `downcast_ref` finds the error's own type). Without `Sync`, or `Send`, the same.
#[test]
fn a_catch_of_a_boxed_error_takes_every_failure_as_its_error() {
    use std::error::Error;
    let not_found = || Deferred::<String>::fail(NotFound("erin".to_owned()).into());
    let d = chain! {
        not_found()
        catch |e: Box<dyn Error + Send + Sync>| match e.downcast_ref::<NotFound>() {
            Some(NotFound(name)) => format!("no {name}"),
            None => format!("other: {e}"),
        }
    };
    assert_eq!(d.wait().unwrap(), "no erin");
    let d = chain! {
        not_found()
        then |s| s + "!"
        catch |e: Box<dyn Error + Send>| e.to_string()
    };
    assert_eq!(d.wait().unwrap(), "no employee named erin");
    let d = chain! {
        Deferred::<u32>::succeed(1)
        then |_| -> u32 { panic!("step blew up") }
        catch |e: Box<dyn std::error::Error>| u32::from(e.is::<Panicked>())
    };
    assert_eq!(d.wait().unwrap(), 1);
    // A typed catch before it still traps its own type first.
    let d = chain! {
        not_found()
        catch |_: fmt::Error| "fmt".to_owned()
        catch |e: Box<dyn Error + Send + Sync>| e.to_string()
    };
    assert_eq!(d.wait().unwrap(), "no employee named erin");
}

/// A chain whose error type is left to be inferred from a `catch` of a boxed error is a chain
/// of boxed errors (the `catch` names its own error type), not of `Failure`s.
#[test]
fn a_catch_of_a_boxed_error_can_give_the_chain_its_error_type() {
    use std::error::Error;
    let (start, resolver) = Deferred::pending();
    let d = chain! {
        start
        catch |e: Box<dyn Error + Send + Sync>| format!("caught: {e}")
    };
    let error: Box<dyn Error + Send + Sync> = Box::new(NotFound("frank".to_owned()));
    resolver.errback(error);
    let caught: String = d.wait().unwrap();
    assert_eq!(caught, "caught: no employee named frank");
}

/// On a failure that a `SharedResult` consumer holds last, a `catch` of a boxed error gets the
/// original error (its `downcast_ref` finds it); while other consumers still hold it, it gets
/// the `SharedFailure`, which reads the original through `failure()`.
#[test]
fn a_catch_of_a_boxed_error_on_a_shared_failure() {
    use deferred::{SharedFailure, SharedResult};
    use std::error::Error;
    let shared = SharedResult::new(Deferred::<String>::fail(NotFound("gil".to_owned()).into()));
    let (first, second) = (shared.consumer(), shared.consumer());
    drop(shared);
    fn name_of(e: &(dyn Error + Send + Sync + 'static)) -> String {
        match e.downcast_ref::<NotFound>() {
            Some(NotFound(name)) => format!("own: {name}"),
            None => match e.downcast_ref::<SharedFailure>() {
                Some(shared) => format!("shared: {}", shared.failure()),
                None => "neither".to_owned(),
            },
        }
    }
    let d = chain! { first catch |e: Box<dyn Error + Send + Sync>| name_of(&*e) };
    assert_eq!(d.wait().unwrap(), "shared: no employee named gil");
    let d = chain! { second catch |e: Box<dyn Error + Send + Sync>| name_of(&*e) };
    assert_eq!(d.wait().unwrap(), "own: gil");
}

#[test]
fn a_catch_recovers_with_a_value_a_result_or_a_deferred() {
    let value = chain! { Deferred::<u32>::fail(Timeout.into()) catch |_| 1 };
    let result = chain! { Deferred::<u32>::fail(Timeout.into()) catch |_| Ok(2) };
    let deferred = chain! {
        Deferred::<u32>::fail(Timeout.into())
        catch |_| Deferred::<_>::succeed(3)
    };
    assert_eq!(value.wait().unwrap(), 1);
    assert_eq!(result.wait().unwrap(), 2);
    assert_eq!(deferred.wait().unwrap(), 3);
}

#[test]
fn a_catch_that_gives_err_passes_a_failure_on() {
    let d = chain! {
        Deferred::<u32>::fail(Timeout.into())
        catch |f| Err(Failure::msg(format!("while looking up: {f}")))
        catch |f| f.to_string().len() as u32
    };
    assert_eq!(
        d.wait().unwrap(),
        "while looking up: the database timed out".len() as u32
    );
}

#[test]
fn success_skips_catches_and_failure_skips_thens() {
    let ran = Arc::new(AtomicUsize::new(0));
    let seen = ran.clone();
    let d = chain! {
        Deferred::<u32>::fail(Timeout.into())
        then move |x| { seen.fetch_add(1, Ordering::SeqCst); x }
        catch |_: NotFound| 4
        catch |_| 5
        then |x| x * 2
    };
    assert_eq!(d.wait().unwrap(), 10);
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

/// A `catch` right after a run of `then`s is added with the run, as one step of the chain
/// before it: it still handles a failure of the start, of a step, and of a Deferred a step
/// returned, for a fired start, a pending one fired later and one whose chain fired before the
/// steps were added, and a typed one still passes the rest on.
#[test]
fn a_catch_after_a_run_of_thens_handles_the_start_and_every_step() {
    fn run(start: Deferred<u32>, fail_at: u32, later: Deferred<u32>) -> Deferred<String> {
        chain! {
            start
            then |a| if fail_at == 1 { Err(NotFound(format!("step {a}")).into()) } else { Ok(a + 1) }
            then move |b| if fail_at == 2 { later } else { Deferred::succeed(b + 1) }
            then |c| if fail_at == 3 { panic!("step {c}") } else { format!("ok {}", c + 1) }
            catch |e: NotFound| format!("caught {e}")
        }
    }
    #[derive(Clone, Copy, Debug)]
    enum Start {
        Fired,
        FiredLater,
        FiredBefore,
    }
    for kind in [Start::Fired, Start::FiredLater, Start::FiredBefore] {
        let start = |outcome: Result<u32, Failure>| {
            let (start, resolver) = Deferred::pending();
            let fire = move || match outcome {
                Ok(value) => resolver.callback(value),
                Err(failure) => resolver.errback(failure),
            };
            match kind {
                Start::Fired => {
                    fire();
                    (Deferred::from_result(start.wait()), None)
                }
                Start::FiredLater => (start, Some(fire)),
                Start::FiredBefore => {
                    fire();
                    (start, None)
                }
            }
        };
        let cases: [(Result<u32, Failure>, u32, &str); 5] = [
            (Ok(1), 0, "ok 4"),
            (
                Err(NotFound("start".to_owned()).into()),
                0,
                "caught no employee named start",
            ),
            (Ok(1), 1, "caught no employee named step 1"),
            (Ok(1), 2, "caught no employee named later"),
            (Ok(1), 3, "passed on: a step panicked: step 3"),
        ];
        for (outcome, fail_at, expected) in cases {
            let (start, fire) = start(outcome);
            // What step 2 returns: a Deferred that fails later, when it is to fail.
            let (later, resolver) = Deferred::<u32>::pending();
            let d = run(start, fail_at, later);
            if let Some(fire) = fire {
                fire();
            }
            match fail_at {
                2 => resolver.errback(NotFound("later".to_owned()).into()),
                _ => resolver.callback(0),
            }
            let got = match d.wait() {
                Ok(text) => text,
                Err(failure) => {
                    assert!(failure.is::<Panicked>());
                    format!("passed on: {failure}")
                }
            };
            assert_eq!(got, expected, "start: {kind:?}, fail at: {fail_at}");
        }
    }
}

#[test]
fn a_catch_waiting_on_its_run_runs_before_the_steps_added_after_it() {
    // The run waits on `io`; meanwhile steps are added after the chain! (one, then enough to fill
    // the list's buffer): the catch still runs first, then they run in the order added.
    for added in [1_usize, 12] {
        let log = Arc::new(Mutex::new(Vec::new()));
        let (start, fire_start) = Deferred::<u32>::pending();
        let (io, fire_io) = Deferred::<u32>::pending();
        let seen = log.clone();
        let mut d = chain! {
            start
            then move |a| io.add_callback(move |b| Ok(a + b))
            catch move |_| {
                seen.lock().unwrap().push("catch".to_owned());
                0
            }
        };
        fire_start.callback(1); // the run runs, and waits on `io`
        for n in 0..added {
            let seen = log.clone();
            d = d.add_callback(move |x| {
                seen.lock().unwrap().push(format!("step {n} got {x}"));
                Ok(x + 1)
            });
        }
        fire_io.errback(Failure::msg("io failed"));
        assert_eq!(d.wait().unwrap(), added as u32);
        let mut expected = vec!["catch".to_owned()];
        expected.extend((0..added).map(|n| format!("step {n} got {n}")));
        assert_eq!(*log.lock().unwrap(), expected, "{added} steps added");
    }
}

#[test]
fn a_catch_waiting_on_its_run_may_itself_wait() {
    let (start, fire_start) = Deferred::<u32>::pending();
    let (io, fire_io) = Deferred::<u32>::pending();
    let (fallback, fire_fallback) = Deferred::<u32>::pending();
    let d = chain! {
        start
        then move |a| io.add_callback(move |b| Ok(a + b))
        catch move |_| fallback // a pending Deferred: the chain waits on it
        then |x| x * 10
    };
    fire_start.callback(1);
    fire_io.errback(Failure::msg("io failed"));
    assert!(!d.is_fired());
    fire_fallback.callback(7);
    assert_eq!(d.wait().unwrap(), 70);
}

/// A run that changes the value's type and waits: while it waits, its `catch` is a stage of its
/// own, first in the list (the run's box is the chain's slot), so it still runs first on what
/// arrives, before the steps added after the chain!, and may itself wait; so too when the start
/// had fired before the run was added (the `catch` then waits on the run's Deferred).
#[test]
fn a_catch_after_a_type_changing_run_that_waits_runs_first_and_may_wait() {
    for fired_before in [false, true] {
        for added in [1_usize, 12] {
            for fails in [false, true] {
                let log = Arc::new(Mutex::new(Vec::new()));
                let (start, fire_start) = Deferred::<u32>::pending();
                let (io, fire_io) = Deferred::<u32>::pending();
                let (fallback, fire_fallback) = Deferred::<String>::pending();
                let mut fire_start = Some(fire_start);
                if fired_before {
                    fire_start.take().unwrap().callback(1);
                }
                let seen = log.clone();
                let mut d = chain! {
                    start
                    then move |a| io.add_callback(move |b| Ok(a + b))
                    then |c| format!("got {c}")
                    catch move |f| {
                        seen.lock().unwrap().push(format!("catch {f}"));
                        fallback // a pending Deferred: the chain waits on it
                    }
                };
                if let Some(fire_start) = fire_start {
                    fire_start.callback(1); // the run runs, and waits on `io`
                }
                for n in 0..added {
                    let seen = log.clone();
                    d = d.add_callback(move |x: String| {
                        seen.lock().unwrap().push(format!("step {n} got {x}"));
                        Ok(format!("{x}+"))
                    });
                }
                match fails {
                    true => fire_io.errback(Failure::msg("io failed")),
                    false => fire_io.callback(2),
                }
                let case = format!("fired before: {fired_before}, {added} added, fails: {fails}");
                if fails {
                    assert!(!d.is_fired(), "{case}: the catch waits on its fallback");
                    fire_fallback.callback("fallback".to_owned());
                } else {
                    drop(fire_fallback);
                }
                let first = if fails { "fallback" } else { "got 3" };
                let expected_value = format!("{first}{}", "+".repeat(added));
                assert_eq!(d.wait().unwrap(), expected_value, "{case}");
                let mut expected: Vec<String> = Vec::new();
                if fails {
                    expected.push("catch io failed".to_owned());
                }
                expected
                    .extend((0..added).map(|n| format!("step {n} got {first}{}", "+".repeat(n))));
                assert_eq!(*log.lock().unwrap(), expected, "{case}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// `finally`.

#[test]
fn finally_runs_on_both_paths_and_passes_the_outcome_on() {
    let runs = Arc::new(AtomicUsize::new(0));
    let (a, b) = (runs.clone(), runs.clone());
    let ok = chain! {
        1u32
        finally move || a.fetch_add(1, Ordering::SeqCst)
    };
    let failed = chain! {
        Deferred::<u32>::fail(Timeout.into())
        finally move |outcome| {
            assert!(outcome.as_ref().unwrap_err().is::<Timeout>());
            b.fetch_add(1, Ordering::SeqCst);
        }
    };
    assert_eq!(ok.wait().unwrap(), 1);
    assert!(failed.wait().unwrap_err().is::<Timeout>());
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[test]
fn a_finally_that_fails_replaces_the_outcome() {
    let on_success = chain! {
        1u32
        finally || Err::<(), _>(Failure::msg("cleanup failed"))
    };
    assert_eq!(on_success.wait().unwrap_err().to_string(), "cleanup failed");

    let on_failure = chain! {
        Deferred::<u32>::fail(Timeout.into())
        finally || -> Result<(), Failure> { Err(NotFound("x".to_owned()).into()) }
    };
    assert!(on_failure.wait().unwrap_err().is::<NotFound>());

    let panicking = chain! {
        1u32
        finally || panic!("cleanup panicked")
    };
    assert!(panicking.wait().unwrap_err().is::<Panicked>());
}

#[test]
fn a_finally_that_gives_a_deferred_holds_the_outcome_until_it_fires() {
    let (cleanup, cleaned) = Deferred::<()>::pending();
    let d = chain! {
        1u32
        finally move || cleanup
    };
    assert!(!d.is_fired());
    cleaned.callback(());
    assert_eq!(d.wait().unwrap(), 1);

    let (cleanup, cleaned) = Deferred::<()>::pending();
    let d = chain! { 1u32 finally move || cleanup };
    cleaned.errback(Failure::msg("cleanup failed later"));
    assert_eq!(d.wait().unwrap_err().to_string(), "cleanup failed later");
}

#[test]
fn a_finally_that_waits_is_named_at_its_keyword_in_the_trail() {
    // The failure passes the `finally` while it waits on the Deferred the body gave: the trail
    // names the `finally` (it named the `chain!` call), then the `then` after it.
    let (start, resolver) = Deferred::<u32>::pending();
    let (cleanup, cleaned) = Deferred::<()>::pending();
    let at = line!() + 4;
    let d = chain! {
        start
        then |x| x + 1
        finally move || cleanup
        then |y| y * 2
    };
    resolver.errback(Timeout.into());
    cleaned.callback(());
    let failure = d.wait().unwrap_err();
    assert!(failure.is::<Timeout>(), "{failure}");
    let lines: Vec<u32> = failure.trail().iter().map(|step| step.line()).collect();
    assert_eq!(lines, [at - 1, at, at + 1], "{failure:?}");

    // A failure the finally's Deferred gives later passes it the same way.
    let (start, resolver) = Deferred::<u32>::pending();
    let (cleanup, cleaned) = Deferred::<()>::pending();
    let at = line!() + 3;
    let d = chain! {
        start
        finally move || cleanup
        then |y| y * 2
    };
    resolver.callback(1);
    cleaned.errback(Failure::msg("cleanup failed later"));
    let failure = d.wait().unwrap_err();
    let lines: Vec<u32> = failure.trail().iter().map(|step| step.line()).collect();
    assert_eq!(lines, [at, at + 1], "{failure:?}");
}

// ---------------------------------------------------------------------------------------------
// Panics, pending starts, values of generic types.

#[test]
fn a_panic_in_a_step_becomes_a_failure_the_next_catch_sees() {
    let d = chain! {
        1u32
        then |x| if x == 1 { panic!("boom at {x}") } else { x }
        then |x| x + 1
        catch |p: Panicked| p.message().len() as u32
    };
    assert_eq!(d.wait().unwrap(), "boom at 1".len() as u32);
}

#[test]
fn a_pending_start_runs_the_steps_when_it_fires_on_another_thread() {
    let (start, resolver) = Deferred::<u32>::pending();
    let d = chain! {
        start
        then |x| x + 1
        then |y| format!("{x}+1={y}")
    };
    assert!(!d.is_fired());
    std::thread::spawn(move || resolver.callback(41))
        .join()
        .unwrap();
    assert_eq!(d.wait().unwrap(), "41+1=42");
}

#[test]
fn a_chain_is_a_future() {
    let (start, resolver) = Deferred::<u32>::pending();
    let d = chain! { start then |x| x * 2 };
    resolver.callback(21);
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut d = std::pin::pin!(d);
    assert!(matches!(
        std::future::Future::poll(d.as_mut(), &mut cx),
        std::task::Poll::Ready(Ok(42))
    ));
}

/// A value of a generic type is a plain value, whatever type it turns out to be.
fn passed_on<T: Send + 'static>(value: T) -> Deferred<T> {
    chain! { 0 then move |_| value }
}

#[test]
fn a_value_of_a_generic_type_is_plain() {
    let result: Result<u32, Failure> = Err(Failure::msg("kept as a value"));
    let d = passed_on(result);
    assert!(
        d.wait().unwrap().is_err(),
        "the Result is the value, not the outcome"
    );
}

#[test]
fn a_then_may_use_question_mark_and_return() {
    let parse = |text: &'static str| {
        chain! {
            text
            then |s| Ok(s.parse::<u32>()?)
            then |n| {
                if n == 0 {
                    return Err(Failure::msg("zero"));
                }
                Ok(100 / n)
            }
        }
    };
    assert_eq!(parse("4").wait().unwrap(), 25);
    assert!(
        parse("x")
            .wait()
            .unwrap_err()
            .is::<std::num::ParseIntError>()
    );
    assert_eq!(parse("0").wait().unwrap_err().to_string(), "zero");
}

#[test]
fn a_question_mark_or_return_in_a_closure_inside_a_macro_is_the_closures() {
    // The `?` and the `return` belong to the closures in `format!`'s and `assert!`'s arguments:
    // the steps give plain values.
    let d = chain! {
        vec!["1", "x", "3"]
        then |texts| {
            let line = format!(
                "{:?}",
                texts
                    .iter()
                    .map(|s| -> Result<u32, std::num::ParseIntError> { Ok(s.parse::<u32>()? + 1) })
                    .collect::<Vec<_>>()
            );
            line.len() + 1
        }
        then |n| {
            assert!((0..3).all(|i| {
                if i > 1 {
                    return true;
                }
                i < 2
            }));
            n * 2
        }
    };
    let expected = format!(
        "{:?}",
        ["2".parse::<u32>(), "x".parse::<u32>(), "4".parse::<u32>()]
    );
    assert_eq!(d.wait().unwrap(), (expected.len() + 1) * 2);
}

// ---------------------------------------------------------------------------------------------
// The trail: where a failure was raised, and the steps it passed.

#[test]
fn the_trail_names_the_steps_a_failure_came_from_and_passed() {
    let here = line!();
    let d = chain! {
        1u32
        then |x| x + 1
        then |_| Err::<u32, _>(Failure::msg("step 2 failed"))
        then |x| x + 1
        finally || ()
    };
    let failure = d.wait().unwrap_err();
    let origin = failure
        .origin()
        .unwrap_or_else(|| panic!("a step raised it: {failure:?}"));
    assert_eq!(origin.file(), file!());
    assert_eq!(origin.line(), here + 4, "the failing `then`: {failure:?}");
    assert_eq!(origin.column(), 9, "the `then` keyword: {failure:?}");
    let lines: Vec<u32> = failure.trail().iter().map(|step| step.line()).collect();
    assert!(
        lines.contains(&(here + 5)),
        "the `then` it skipped: {failure:?}"
    );
    assert!(
        lines.contains(&(here + 6)),
        "the `finally` it passed: {failure:?}"
    );
}

#[test]
fn a_panic_is_raised_at_the_step_that_panicked() {
    let here = line!();
    let d = chain! {
        1u32
        then |x| x + 1
        then |_| -> u32 { panic!("in step 2") }
    };
    let failure = d.wait().unwrap_err();
    assert!(failure.is::<Panicked>());
    assert_eq!(failure.origin().map(|at| at.line()), Some(here + 4));
}

// ---------------------------------------------------------------------------------------------
// Long runs of `then`s: a run nests its steps' closures, and a long one is cut into segments
// that carry the names later steps use. No `recursion_limit` attribute is needed.

#[test]
fn a_200_step_chain_compiles_and_keeps_names_in_scope() {
    let d = chain! {
        1u64
        then |first| first + 1 // step 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + format!("{first}").len() as u64 + format!("[{first:>5}]").len() as u64 // 150
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + first // step 199
        then |x| x * 2 // step 200
    };
    // 1 + 1 at step 1, +1 at steps 2-149 and 151-198, +"1".len() + "[    1]".len() at 150,
    // +1 at 199, *2 at 200.
    assert_eq!(d.wait().unwrap(), (2 + 148 + 48 + 1 + 7 + 1) * 2);
}

#[test]
fn a_long_run_may_consume_and_rebind_a_name_at_every_step() {
    let d = chain! {
        String::new()
        then |s| s + "." then |s| s + "." then |s| s + "." then |s| s + "." then |s| s + "."
        then |s| s + "." then |s| s + "." then |s| s + "." then |s| s + "." then |s| s + "."
        then |s| s + "." then |s| s + "." then |s| s + "." then |s| s + "." then |s| s + "."
        then |s| s + "." then |s| s + "." then |s| s + "." then |s| s + "." then |s| s + "."
        then |s| s + "." then |s| s + "." then |s| s + "." then |s| s + "." then |s| s + "."
        then |s| s + "." then |s| s + "." then |s| s + "." then |s| s + "." then |s| s + "."
        then |s| s + "." then |s| s + "." then |s| s + "." then |s| s + "." then |s| s + "."
        then |s| s + "." then |s| s + "." then |s| s + "." then |s| s + "." then |s| s + "."
        then |s| s + "." then |s| s + "." then |s| s + "." then |s| s + "." then |s| s + "."
        then |s| s + "." then |s| s + "." then |s| s + "." then |s| s + "." then |s| s + "."
        then |s| s + "." then |s| s + "." then |s| s + "." then |s| s + "." then |s| s + "."
        then |s| s + "." then |s| s + "." then |s| s + "." then |s| s + "." then |s| s + "."
        then |s| s + "." then |s| s + "." then |s| s + "." then |s| s + "." then |s| s + "."
        then |s| s + "." then |s| s + "." then |s| s + "." then |s| s + "." then |s| s + "."
        then |s| s + "." then |s| s + "." then |s| s + "." then |s| s + "." then |s| s + "."
        then |s| s + "." then |s| s + "." then |s| s + "." then |s| s + "." then |s| s + "."
        then |s| s + "." then |s| s + "." then |s| s + "." then |s| s + "." then |s| s + "."
        then |s| s + "." then |s| s + "." then |s| s + "." then |s| s + "." then |s| s + "."
        then |s| s + "." then |s| s + "." then |s| s + "." then |s| s + "." then |s| s + "."
        then |s| s + "." then |s| s + "." then |s| s + "." then |s| s + "." then |s| s + "."
        then |s| s.len()
    };
    assert_eq!(d.wait().unwrap(), 100);
}

#[test]
fn a_long_run_carries_mutable_and_pattern_names_across_pending_steps() {
    let (inner, resolver) = Deferred::<u32>::pending();
    let (start, started) = Deferred::<(u32, u32)>::pending();
    let d = chain! {
        start
        then |(mut a, b)| { a += 1; a + b } // step 1: a = 2, b = 10
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then move |x| inner.add_callback(move |y| Ok(x + y)) // step 32, pending
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| { a *= 10; x + a + b } // step 43
    };
    started.callback((1, 10));
    assert!(!d.is_fired());
    resolver.callback(100);
    assert_eq!(d.wait().unwrap(), 12 + 30 + 100 + 10 + 20 + 10);
}

#[test]
fn a_long_run_carries_a_name_used_only_as_a_format_width() {
    let d = chain! {
        (6usize, 2usize)
        then |(width, prec)| 1.5f64 // step 1 binds `width` and `prec`
        then |x| x + 1.0 then |x| x + 1.0 then |x| x + 1.0 then |x| x + 1.0 then |x| x + 1.0
        then |x| x + 1.0 then |x| x + 1.0 then |x| x + 1.0 then |x| x + 1.0 then |x| x + 1.0
        then |x| x + 1.0 then |x| x + 1.0 then |x| x + 1.0 then |x| x + 1.0 then |x| x + 1.0
        then |x| x + 1.0 then |x| x + 1.0 then |x| x + 1.0 then |x| x + 1.0 then |x| x + 1.0
        then |x| x + 1.0 then |x| x + 1.0 then |x| x + 1.0 then |x| x + 1.0 then |x| x + 1.0
        then |x| x + 1.0 then |x| x + 1.0 then |x| x + 1.0 then |x| x + 1.0 then |x| x + 1.0
        then |x| x + 1.0 then |x: f64| x + 1.0 then |x| x + 1.0 then |x| x + 1.0 then |x| x + 1.0
        then |x| format!("[{x:>width$.prec$}]") // step 37, past the first segment of 32
        // (step 33, the first of the second segment, has a typed parameter)
    };
    assert_eq!(d.wait().unwrap(), "[ 36.50]");
}

#[test]
fn a_failure_that_skips_a_run_of_thens_records_every_step_of_it() {
    let here = line!();
    let d = chain! {
        Deferred::<u32>::fail(Failure::msg("before the run"))
        then |x| x + 1
        then |x| x + 2
        then |x| x + 3
        finally || ()
    };
    let failure = d.wait().unwrap_err();
    let lines: Vec<u32> = failure.trail().iter().map(|step| step.line()).collect();
    let expected: Vec<u32> = (here + 3..=here + 6).collect();
    assert_eq!(
        lines, expected,
        "every `then` and the `finally`: {failure:?}"
    );
}

// A failure raised inside a run of `then`s: raised at the step that gave it; its trail is every
// step after it in the run, in order (they are nested inside the next step's closure, which never
// runs), then the `finally`; the steps before it, which it came back out through, are not on it.
#[test]
fn a_failure_raised_inside_a_run_records_its_origin_then_the_steps_after_it() {
    let here = line!();
    let d = chain! {
        Deferred::<u32>::succeed(1)
        then |x| x + 1
        then |_x| Err::<u32, _>(Failure::msg("step two failed"))
        then |x| x + 3
        then |x| x + 4
        finally || ()
    };
    let failure = d.wait().unwrap_err();
    assert_eq!(failure.origin().map(|step| step.line()), Some(here + 4));
    let lines: Vec<u32> = failure.trail().iter().map(|step| step.line()).collect();
    assert_eq!(lines, [here + 5, here + 6, here + 7], "{failure:?}");
}

// The same across the segments a long run is cut into (32 steps each): a failure raised at step
// 30 skips steps 31-40, in order, then reaches the `catch`.
#[test]
fn a_failure_raised_inside_a_long_run_records_every_step_after_it_across_segments() {
    let here = line!();
    let d = chain! {
        Deferred::<u32>::succeed(0)
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 // 1-5
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 // 26-29
        then |x| if x == 29 { Err(Failure::msg("step 30 failed")) } else { Ok(x) } // 30
        then |x| x + 1 // 31
        then |x| x + 1 // 32, the first segment's last
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 // 33-36
        then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 // 37-40
        catch |failure| Err::<u32, _>(failure)
    };
    let failure = d.wait().unwrap_err();
    assert_eq!(failure.origin().map(|step| step.line()), Some(here + 9));
    let at: Vec<(u32, u32)> = failure
        .trail()
        .iter()
        .map(|step| (step.line(), step.column()))
        .collect();
    let expected: Vec<(u32, u32)> = [(here + 10, 9), (here + 11, 9)]
        .into_iter()
        .chain((0..4).map(|n| (here + 12, 9 + 15 * n)))
        .chain((0..4).map(|n| (here + 13, 9 + 15 * n)))
        .chain([(here + 14, 9)])
        .collect();
    assert_eq!(at, expected, "{failure:?}");
}

/// The lines of a failure's trail.
fn trail_lines(failure: &Failure) -> Vec<u32> {
    failure.trail().iter().map(|step| step.line()).collect()
}

// A panic inside a run is raised at the step that panicked, and skips the steps after it: they
// are on its trail, in order.
#[test]
fn a_panic_inside_a_run_records_the_steps_after_it() {
    let here = line!();
    let d = chain! {
        Deferred::<u32>::succeed(1)
        then |x| x + 1
        then |_x| -> u32 { panic!("in step two") }
        then |x| x + 3
        then |x| x + 4
        finally || ()
    };
    let failure = d.wait().unwrap_err();
    assert!(failure.is::<Panicked>(), "{failure:?}");
    assert_eq!(failure.origin().map(|step| step.line()), Some(here + 4));
    assert_eq!(trail_lines(&failure), [here + 5, here + 6, here + 7]);

    // The same on a pending start: the run is a stage that runs when the start fires.
    let (start, resolver) = Deferred::<u32>::pending();
    let here = line!();
    let d = chain! {
        start
        then |x| x + 1
        then |_x| -> u32 { panic!("in step two") }
        then |x| x + 3
        then |x| x + 4
        finally || ()
    };
    resolver.callback(1);
    let failure = d.wait().unwrap_err();
    assert!(failure.is::<Panicked>(), "{failure:?}");
    assert_eq!(failure.origin().map(|step| step.line()), Some(here + 4));
    assert_eq!(trail_lines(&failure), [here + 5, here + 6, here + 7]);
}

// A run followed by a `catch` is one stage (the run and the `catch` on its outcome): a panic in
// its first step reaches the `catch` raised there, with the steps after it on its trail, on a
// fired start and on a pending one. A panic in a plain `add_callback` afterwards, on the same
// thread, has an empty trail: nothing of the first is left over.
#[test]
fn a_panic_in_a_run_before_a_catch_records_the_steps_after_it() {
    fn caught(trail: &Arc<Mutex<Vec<u32>>>, failure: &Failure) -> u32 {
        assert!(failure.is::<Panicked>(), "{failure:?}");
        *trail.lock().unwrap() = trail_lines(failure);
        failure.origin().map_or(0, |step| step.line())
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let here = line!();
    let fired = chain! {
        Deferred::<u32>::succeed(1)
        then |_x| -> u32 { panic!("in step one") }
        then |x| x + 2
        then |x| x + 3
        catch |failure| caught(&record, &failure)
    };
    assert_eq!(fired.wait().unwrap(), here + 3);
    assert_eq!(*seen.lock().unwrap(), [here + 4, here + 5]);

    let (start, resolver) = Deferred::<u32>::pending();
    let record = seen.clone();
    let here = line!();
    let pending = chain! {
        start
        then |_x| -> u32 { panic!("in step one") }
        then |x| x + 2
        then |x| x + 3
        catch |failure| caught(&record, &failure)
    };
    resolver.callback(1);
    assert_eq!(pending.wait().unwrap(), here + 3);
    assert_eq!(*seen.lock().unwrap(), [here + 4, here + 5]);

    let plain = Deferred::<u32>::succeed(1)
        .add_callback(|_| -> Result<u32, Failure> { panic!("in a plain step") });
    let failure = plain.wait().unwrap_err();
    assert!(failure.is::<Panicked>(), "{failure:?}");
    assert!(failure.trail().is_empty(), "{failure:?}");
}

// A failure that comes later, from a pending Deferred a step of the run returned: the steps after
// that step were added to the pending Deferred's chain, and are on the trail, in order; so is
// the `catch` that passes it on.
#[test]
fn a_failure_from_a_pending_deferred_inside_a_run_records_the_steps_after_it() {
    let (pending, resolver) = Deferred::<u32>::pending();
    let here = line!();
    let d = chain! {
        Deferred::<u32>::succeed(1)
        then |x| x + 1
        then move |_x| pending
        then |x| x + 3
        then |x| Deferred::<u32>::succeed(x + 4)
        then |x| x + 5
        catch |failure| Err::<u32, _>(failure)
    };
    assert!(!d.is_fired());
    resolver.errback(Failure::msg("the answer failed"));
    let failure = d.wait().unwrap_err();
    assert_eq!(failure.to_string(), "the answer failed");
    assert_eq!(
        trail_lines(&failure),
        [here + 5, here + 6, here + 7, here + 8],
        "{failure:?}"
    );
}

// A run followed by a `catch`: a failure raised inside the run reaches the `catch` with the
// steps after it on its trail.
#[test]
fn a_catch_after_a_run_sees_the_steps_a_failure_raised_inside_skipped() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let here = line!();
    let d = chain! {
        Deferred::<u32>::succeed(1)
        then |x| x + 1
        then |_x| Err::<u32, _>(Failure::msg("step two failed"))
        then |x| x + 3
        then |x| x + 4
        catch |failure| {
            *record.lock().unwrap() = trail_lines(&failure);
            0
        }
    };
    assert_eq!(d.wait().unwrap(), 0);
    assert_eq!(*seen.lock().unwrap(), [here + 5, here + 6]);
}

// A `chain!` inside a step's body has its own steps: a failure in the inner chain is traced by
// the inner chain's steps it skipped, then by the outer step that returned it, then by the outer
// chain's steps it skips, each at its own place.
#[test]
fn a_chain_inside_a_step_traces_its_own_steps_then_the_outer_ones() {
    let here = line!();
    let d = chain! {
        Deferred::<u32>::succeed(1)
        then |x| chain! {
            Deferred::<u32>::succeed(x)
            then |_y| Err::<u32, _>(Failure::msg("inner step failed"))
            then |y| y + 10
            then |y| y + 20
        }
        then |x| x + 3
        then |x| x + 4
    };
    let failure = d.wait().unwrap_err();
    assert_eq!(failure.origin().map(|step| step.line()), Some(here + 5));
    assert_eq!(
        trail_lines(&failure),
        [here + 6, here + 7, here + 3, here + 9, here + 10],
        "{failure:?}"
    );
}

/// A long run of `then`s is expanded in segments of 32 steps; the border must not show. A failure
/// from a Deferred that the last step of a segment (step 32, 64, ...) gave was put on the trail
/// as having passed that step, which ran (and gave it): the trail names the steps a failure
/// skipped or passed (docs/rules.md), as it does for the same Deferred from any other step.
mod segment_border {
    use std::cell::RefCell;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use deferred::{Deferred, Failure, LocalDeferred, chain};

    use super::Timeout;

    fn counter() -> Arc<AtomicUsize> {
        Arc::new(AtomicUsize::new(0))
    }

    fn lines(f: &Failure) -> Vec<u32> {
        f.trail().iter().map(|s| s.line()).collect()
    }

    // Long runs: a failure from a pending Deferred returned by a step in the middle of a segment vs
    // the last step of a segment (step 32).
    fn long_run_pending_fail(at: u32) -> (u32, Failure) {
        let (p, r) = Deferred::<u32>::pending();
        let p = Mutex::new(Some(p));
        let here = line!();
        let d = chain! {
            Deferred::<u32>::succeed(0)
            then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
            then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
            then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
            then move |x| if x == at - 1 { p.lock().unwrap().take().unwrap() } else { Deferred::succeed(x + 1) } // 31
            then move |x| if x == at - 1 { p.lock().unwrap().take().unwrap() } else { Deferred::succeed(x + 1) } // 32
            then |x| x + 1 // 33
            then |x| x + 1 // 34
            catch |f| Err::<u32, _>(f)
        };
        assert!(!d.is_fired());
        r.errback(Failure::msg("late"));
        (here, d.wait().unwrap_err())
    }

    #[test]
    fn a_late_failure_from_step_31_has_step_32_on_its_trail() {
        let (here, f) = long_run_pending_fail(31);
        let l: Vec<u32> = lines(&f).into_iter().map(|x| x - here).collect();
        assert_eq!(l, vec![7, 8, 9, 10], "{f:?}");
    }

    #[test]
    fn a_late_failure_from_step_32_the_segment_end_is_not_on_its_own_trail() {
        let (here, f) = long_run_pending_fail(32);
        let l: Vec<u32> = lines(&f).into_iter().map(|x| x - here).collect();
        // Step 32 (line 7) ran: it returned the Deferred that failed, it did not skip it.
        assert_eq!(l, vec![8, 9, 10], "{f:?}");
    }

    // Step 32, the last of the first segment, gives a Deferred that has failed already: the failure
    // is raised there (its origin), and is not also "passed" there.
    #[test]
    fn a_failed_deferred_from_the_segment_end_is_raised_there_not_passed() {
        let here = line!();
        let d = chain! {
            Deferred::<u32>::succeed(0)
            then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
            then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
            then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
            then |x| x + 1 // 31
            then |_x| Deferred::<u32>::fail(Failure::new(Timeout)) // 32
            then |x| x + 1 // 33
            then |x| x + 1 // 34
        };
        let f = d.wait().unwrap_err();
        assert_eq!(f.origin().map(|o| o.line()), Some(here + 7), "{f:?}");
        assert_eq!(lines(&f), vec![here + 8, here + 9], "{f:?}");
    }

    // The local kind: the same as `a_late_failure_from_step_32_the_segment_end_is_not_on_its_own_trail`.
    #[test]
    fn local_a_late_failure_from_the_segment_end_is_not_on_its_own_trail() {
        let (p, r) = LocalDeferred::<u32>::pending();
        let p = RefCell::new(Some(p));
        let here = line!();
        let d = chain! {
            LocalDeferred::<u32>::succeed(0)
            then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
            then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
            then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
            then |x| x + 1 // 31
            then move |_x| p.borrow_mut().take().unwrap() // 32
            then |x| x + 1 // 33
            then |x| x + 1 // 34
        };
        r.errback(Failure::msg("late"));
        let f = d.wait().unwrap_err();
        assert_eq!(lines(&f), vec![here + 8, here + 9], "{f:?}");
    }

    // The carrying link the fix changes still passes a cancel on to the Deferred it waits on.
    fn long_cancel(at: u32) -> (usize, Result<u32, Failure>, usize) {
        let stopped = counter();
        let s2 = stopped.clone();
        let (inner, _r) = Deferred::<u32>::with_canceller(move || {
            s2.fetch_add(1, Ordering::SeqCst);
        });
        let inner = Arc::new(Mutex::new(Some(inner)));
        let inner2 = inner.clone();
        let fin = counter();
        let f2 = fin.clone();
        let (s, sr) = Deferred::<u32>::pending();
        let d = chain! {
            s
            then |first| first + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
            then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
            then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
            then |x| x + 1 // 31
            then move |x| if x == at - 1 { inner.lock().unwrap().take().unwrap() } else { Deferred::succeed(x + 1) } // 32
            then move |x| x + first + 1 // 33
            then move |x| if x == at - 1 { inner2.lock().unwrap().take().unwrap() } else { Deferred::succeed(x + 1) } // 34
            then |x| x + 1 // 35
            catch |_e: Timeout| 1
            finally move || { f2.fetch_add(1, Ordering::SeqCst); }
        };
        sr.callback(0);
        assert!(!d.is_fired());
        d.cancel();
        let out = d.wait();
        (
            stopped.load(Ordering::SeqCst),
            out,
            fin.load(Ordering::SeqCst),
        )
    }

    #[test]
    fn a_cancel_reaches_the_deferred_the_segment_end_waits_on() {
        let (stopped, out, fin) = long_cancel(32);
        assert_eq!(stopped, 1);
        assert!(out.unwrap_err().is_cancelled());
        assert_eq!(fin, 1);
    }

    /// Sets its flag when it is dropped.
    struct Tracked(Arc<AtomicBool>, u32);

    impl Drop for Tracked {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    // A name bound in step 1 that the steps after the border only bind again (a `let`, a
    // closure's parameter, a `match` arm's pattern) is not carried across it: the value is dropped
    // when the run first waits, as in a run of 32 steps or fewer, not kept until the wait is over.
    #[test]
    fn a_name_later_steps_only_bind_again_is_dropped_before_the_wait() {
        let dropped = Arc::new(AtomicBool::new(false));
        let (p, r) = Deferred::<u32>::pending();
        let p = Mutex::new(Some(p));
        let d = chain! {
            Deferred::<Tracked>::succeed(Tracked(dropped.clone(), 1))
            then |g| g.1 // 1
            then move |_x| p.lock().unwrap().take().unwrap() // 2
            then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
            then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
            then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 // 32
            then |x| { let g = 5; x + g } // 33
            then |x| [x].iter().map(|g| g + 1).sum::<u32>() // 34
            then |x| match x { 0 => 0, g => g + 1 } // 35
            then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 // 36-40
        };
        assert!(!d.is_fired());
        assert!(
            dropped.load(Ordering::SeqCst),
            "step 1's value is kept while the run waits"
        );
        r.callback(10);
        assert_eq!(d.wait().unwrap(), 10 + 30 + 5 + 1 + 1 + 5);
    }

    // Where a step after the border names step 1's `g` outside its own binding's scope (after a
    // block, in an `else`, after a closure), in a format string or in another macro, `g` is
    // carried: the run compiles and each step sees step 1's value.
    #[test]
    fn a_name_used_outside_a_later_binding_of_its_own_is_carried() {
        let d = chain! {
            Deferred::<u32>::succeed(7)
            then |g| g + 1 // 1
            then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
            then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
            then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1 then |x| x + 1
            then |x| x + 1 // 32
            then |x| { { let g = 1; assert_eq!(g, 1) } x + g } // 33
            then |x| if let Some(g) = None::<u32> { g } else { x + g } // 34
            then |x| [x].iter().map(|g| g + 1).sum::<u32>() + g // 35
            then |x| format!("{x} {g}") // 36
            then |s| { assert_eq!(g, 7); s } // 37
        };
        assert_eq!(d.wait().unwrap(), "61 7");
    }
}

/// A `catch` whose body gives a Deferred or a `Result` may fail in turn (a fallback that is
/// down too): the `catch` after it can run, and compiles. Only a `catch` whose value is visibly
/// plain (`catch |_| 0`) makes the one after it unreachable (`tests/ui/fail/catch_after_*`).
#[test]
fn a_catch_after_a_fallback_that_can_fail_runs() {
    fn primary() -> Deferred<u32> {
        Deferred::fail(Failure::msg("primary down"))
    }
    fn backup() -> Deferred<u32> {
        Deferred::fail(Failure::msg("backup down"))
    }
    fn parsed(text: &str) -> Result<u32, Failure> {
        Ok(text.parse()?)
    }
    let d = chain! {
        primary()
        catch |_f| backup()
        catch |f| f.to_string().len() as u32
    };
    assert_eq!(d.wait().unwrap(), "backup down".len() as u32);

    let d = chain! {
        primary()
        catch |_f| parsed("not a number")
        catch |_f| 7
    };
    assert_eq!(d.wait().unwrap(), 7);
}
