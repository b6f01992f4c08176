//! `Failure`: conversion from std errors (`?` in callbacks), `is` / `downcast_ref` / `trap`,
//! Display and `{:#}`, the Debug form (origin and trail of chain steps, with this file's source
//! locations), and the backtrace.

use std::backtrace::{Backtrace, BacktraceStatus};
use std::error::Error;
use std::fmt;
use std::num::ParseIntError;
use std::panic::Location;
use std::time::Duration;

use deferred::{Cancelled, Deferred, Failure, NeverFired, Panicked, TimedOut};

// ---------------------------------------------------------------------------------------------
// Test errors
// ---------------------------------------------------------------------------------------------

#[derive(Debug, PartialEq)]
struct NotFound(String);

impl fmt::Display for NotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no such employee: {}", self.0)
    }
}

impl Error for NotFound {}

#[derive(Debug)]
struct Timeout;

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("timed out")
    }
}

impl Error for Timeout {}

/// An error with a source chain: outer -> middle -> root.
#[derive(Debug)]
struct Layer {
    message: &'static str,
    source: Option<Box<Layer>>,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message)
    }
}

impl Error for Layer {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

fn layered() -> Layer {
    Layer {
        message: "lookup failed",
        source: Some(Box::new(Layer {
            message: "connection reset",
            source: Some(Box::new(Layer {
                message: "broken pipe",
                source: None,
            })),
        })),
    }
}

/// `file:line` of a step added on `line` of this file.
fn at(line: u32) -> String {
    format!("{}:{line}:", file!())
}

fn line_of(location: Option<&'static Location<'static>>) -> Option<(&'static str, u32)> {
    location.map(|l| (l.file(), l.line()))
}

// ---------------------------------------------------------------------------------------------
// From any std error: `?` in a callback
// ---------------------------------------------------------------------------------------------

#[test]
fn question_mark_on_std_error_in_callback() {
    let d = Deferred::<_>::succeed("forty-two").add_callback(|s: &str| Ok(s.parse::<u32>()?));
    let f = d.wait().unwrap_err();
    assert!(f.is::<ParseIntError>());
    let expected = "forty-two".parse::<u32>().unwrap_err();
    assert_eq!(f.downcast_ref::<ParseIntError>(), Some(&expected));
    assert_eq!(f.to_string(), expected.to_string());
}

#[test]
fn question_mark_on_io_error_and_custom_error() {
    let io = Deferred::<u32>::succeed(1).add_callback(|_| {
        Err(std::io::Error::new(std::io::ErrorKind::NotFound, "no file"))?;
        Ok(0u32)
    });
    let f = io.wait().unwrap_err();
    assert_eq!(
        f.downcast_ref::<std::io::Error>().map(|e| e.kind()),
        Some(std::io::ErrorKind::NotFound)
    );
    assert_eq!(f.to_string(), "no file");

    let custom = Deferred::<u32>::succeed(1).add_callback(|_| {
        Err(NotFound("alice".into()))?;
        Ok(0u32)
    });
    let f = custom.wait().unwrap_err();
    assert_eq!(
        f.downcast_ref::<NotFound>(),
        Some(&NotFound("alice".into()))
    );
}

#[test]
fn question_mark_in_errback_and_plain_functions() {
    fn parse(s: &str) -> Result<u32, Failure> {
        Ok(s.parse::<u32>()?)
    }
    assert_eq!(parse("7").unwrap(), 7);
    assert!(parse("x").unwrap_err().is::<ParseIntError>());

    let d = Deferred::<u32>::fail(Failure::msg("bad")).add_errback(|_| Ok("12".parse::<u32>()?));
    assert_eq!(d.wait().unwrap(), 12);
}

#[test]
fn from_into_and_boxed() {
    let f: Failure = NotFound("bob".into()).into();
    assert!(f.is::<NotFound>());
    let f = Failure::from(Timeout);
    assert!(f.is::<Timeout>());
    let boxed: Box<dyn Error + Send + Sync> = Box::new(NotFound("carol".into()));
    let f = Failure::from_boxed(boxed);
    assert!(f.is::<NotFound>(), "the boxed error itself, not the box");
    assert_eq!(f.to_string(), "no such employee: carol");
    let back = f.into_error();
    assert_eq!(
        back.downcast_ref::<NotFound>(),
        Some(&NotFound("carol".into()))
    );
}

/// `?` takes a chain's failure out of a function that returns `Result<_, Box<dyn Error>>`: the
/// box says the failure's message, its `Debug` the steps the failure passed, and its source is
/// the wrapped error's.
#[test]
fn question_mark_into_a_boxed_error() {
    fn parse_later(text: &'static str) -> Result<u32, Box<dyn Error>> {
        let d = Deferred::<&str>::succeed(text).add_callback(|t| Ok(t.parse::<u32>()?));
        Ok(d.wait()?)
    }
    assert_eq!(parse_later("7").unwrap(), 7);
    let boxed = parse_later("seven").unwrap_err();
    assert_eq!(boxed.to_string(), "invalid digit found in string");
    assert!(format!("{boxed:?}").contains("raised at step"), "{boxed:?}");

    fn sendable() -> Result<(), Box<dyn Error + Send + Sync>> {
        Deferred::<()>::fail(Failure::new(layered())).wait()?;
        Ok(())
    }
    let boxed = sendable().unwrap_err();
    assert_eq!(boxed.to_string(), "lookup failed");
    assert_eq!(
        boxed.source().map(ToString::to_string).as_deref(),
        Some("connection reset")
    );
    // Back from the box, the failure is the one that went in, not a failure of a failure.
    let back = Failure::from_boxed(boxed);
    assert!(back.is::<Layer>());
    assert_eq!(back.to_string(), "lookup failed");
}

/// README ("Compared with what you may know"): `d.wait()?` into a `Box<dyn Error>` — "the box
/// says the failure's message, its `Debug` the steps it passed": each step the failure skipped
/// after it was raised is in the box's `Debug`.
#[test]
fn question_mark_into_a_boxed_error_keeps_the_steps_the_failure_passed() {
    fn parse_later(text: &'static str) -> (Result<u32, Box<dyn Error>>, [u32; 2]) {
        let raised = Deferred::<&str>::succeed(text).add_callback(|t| Ok(t.parse::<u32>()?));
        let first = line!() + 1;
        let d = raised.add_callback(|n| Ok(n + 1));
        let second = line!() + 1;
        let d = d.add_callback(|n| Ok(n * 2));
        ((|| Ok(d.wait()?))(), [first, second])
    }
    let (boxed, passed) = parse_later("seven");
    let shown = format!("{:?}", boxed.unwrap_err());
    for line in passed {
        assert!(
            shown.contains(&format!("passed step {}:{line}:", file!())),
            "step at line {line} not in {shown}"
        );
    }
}

#[test]
fn msg_failure() {
    let f = Failure::msg("disk on fire");
    assert_eq!(f.to_string(), "disk on fire");
    assert_eq!(f.error().to_string(), "disk on fire");
    assert!(!f.is::<NotFound>());
    assert!(!f.is_cancelled());
}

// ---------------------------------------------------------------------------------------------
// is / downcast_ref / trap
// ---------------------------------------------------------------------------------------------

#[test]
fn is_and_downcast_ref() {
    let f = Failure::new(NotFound("dave".into()));
    assert!(f.is::<NotFound>());
    assert!(!f.is::<Timeout>());
    assert_eq!(f.downcast_ref::<NotFound>(), Some(&NotFound("dave".into())));
    assert!(f.downcast_ref::<Timeout>().is_none());
    assert!(f.error().is::<NotFound>());
}

#[test]
fn trap_takes_matching_error() {
    let f = Failure::new(NotFound("erin".into()));
    assert_eq!(f.trap::<NotFound>().unwrap(), NotFound("erin".into()));
}

#[test]
fn trap_mismatch_hands_back_whole_failure() {
    let (d, r) = Deferred::<u32>::pending();
    let skipped = line!() + 1;
    let d = d.add_callback(|v| Ok(v + 1));
    r.errback(Failure::new(NotFound("frank".into())));
    let f = d.wait().unwrap_err();
    let back = f.trap::<Timeout>().expect_err("not a Timeout");
    assert!(back.is::<NotFound>());
    assert_eq!(back.to_string(), "no such employee: frank");
    assert_eq!(back.trail().len(), 1, "the trail is kept");
    assert_eq!(back.trail()[0].line(), skipped);
}

#[test]
fn trap_in_errback_passes_others_on() {
    let handled =
        Deferred::<String>::fail(Failure::new(NotFound("gina".into()))).add_errback(|f| {
            let e = f.trap::<NotFound>()?;
            Ok(format!("handled {e}"))
        });
    assert_eq!(handled.wait().unwrap(), "handled no such employee: gina");

    let passed = Deferred::<String>::fail(Failure::new(Timeout))
        .add_errback(|f| {
            let e = f.trap::<NotFound>()?;
            Ok(format!("handled {e}"))
        })
        .add_errback(|f| Ok(format!("second errback: {f}")));
    assert_eq!(passed.wait().unwrap(), "second errback: timed out");
}

// ---------------------------------------------------------------------------------------------
// Display and {:#}
// ---------------------------------------------------------------------------------------------

#[test]
fn display_is_the_message() {
    let f = Failure::new(layered());
    assert_eq!(f.to_string(), "lookup failed");
    assert_eq!(format!("{f}"), "lookup failed");
}

#[test]
fn alternate_display_includes_sources() {
    let f = Failure::new(layered());
    assert_eq!(
        format!("{f:#}"),
        "lookup failed: connection reset: broken pipe"
    );
    let plain = Failure::msg("alone");
    assert_eq!(format!("{plain:#}"), "alone");
}

#[test]
fn display_through_a_chain_is_unchanged() {
    let d = Deferred::<u32>::succeed(1)
        .add_callback(|_| Err::<u32, _>(Failure::new(layered())))
        .add_callback(|v| Ok(v + 1));
    let f = d.wait().unwrap_err();
    assert_eq!(f.to_string(), "lookup failed");
    assert_eq!(
        format!("{f:#}"),
        "lookup failed: connection reset: broken pipe"
    );
}

// ---------------------------------------------------------------------------------------------
// Debug: origin and the trail of steps, with source locations
// ---------------------------------------------------------------------------------------------

#[test]
fn debug_includes_message_sources_origin_and_trail_in_order() {
    let (d, r) = Deferred::<u32>::pending();
    let raised = line!() + 1;
    let d = d.add_callback(|_| Err::<u32, _>(Failure::new(layered())));
    let passed1 = line!() + 1;
    let d = d.add_callback(|v| Ok(v + 1));
    let passed2 = line!() + 1;
    let d = d.add_callback(|v| Ok(v.to_string()));
    r.callback(1);
    let f = d.wait().unwrap_err();
    let debug = format!("{f:?}");
    assert!(
        debug.starts_with("lookup failed: connection reset: broken pipe"),
        "{debug}"
    );
    let raised_at = debug
        .find(&format!("raised at step {}", at(raised)))
        .unwrap_or_else(|| panic!("origin missing: {debug}"));
    let first = debug
        .find(&format!("passed step {}", at(passed1)))
        .unwrap_or_else(|| panic!("first step missing: {debug}"));
    let second = debug
        .find(&format!("passed step {}", at(passed2)))
        .unwrap_or_else(|| panic!("second step missing: {debug}"));
    assert!(raised_at < first && first < second, "in order: {debug}");
    assert_eq!(line_of(f.origin()), Some((file!(), raised)));
    let trail: Vec<u32> = f.trail().iter().map(|l| l.line()).collect();
    assert_eq!(trail, [passed1, passed2]);
    assert!(f.trail().iter().all(|l| l.file() == file!()));
}

#[test]
fn trail_of_failure_fired_by_resolver_lists_skipped_steps() {
    let (d, r) = Deferred::<u32>::pending();
    let s1 = line!() + 1;
    let d = d.add_callback(|v| Ok(v + 1));
    let s2 = line!() + 1;
    let d = d.add_callback(|v| Ok(v * 2));
    r.errback(Failure::new(NotFound("hal".into())));
    let f = d.wait().unwrap_err();
    assert_eq!(f.origin(), None, "raised outside the chain");
    let lines: Vec<u32> = f.trail().iter().map(|l| l.line()).collect();
    assert_eq!(lines, [s1, s2]);
    let debug = format!("{f:?}");
    assert!(!debug.contains("raised at step"), "{debug}");
    let first = debug.find(&format!("passed step {}", at(s1)));
    let second = debug.find(&format!("passed step {}", at(s2)));
    assert!(first.is_some() && first < second, "{debug}");
}

/// A failure raised outside the chain (by a Resolver) that an errback hands back unchanged was
/// not raised by that errback: the errback should join the trail, in order. Today the errback
/// becomes the origin, so Debug prints "raised at step <errback>" *before* the steps the failure
/// passed earlier, which reads as if it was raised later than it was.
#[test]
fn errback_handing_back_outside_failure_joins_trail_in_order() {
    let (d, r) = Deferred::<u32>::pending();
    let s1 = line!() + 1;
    let d = d.add_callback(|v| Ok(v + 1));
    let s2 = line!() + 1;
    let d = d.add_errback(|f| if f.is::<Timeout>() { Ok(0) } else { Err(f) });
    let s3 = line!() + 1;
    let d = d.add_callback(|v| Ok(v * 2));
    r.errback(Failure::new(NotFound("hal".into())));
    let f = d.wait().unwrap_err();
    assert_eq!(f.origin(), None, "raised outside the chain: {f:?}");
    let lines: Vec<u32> = f.trail().iter().map(|l| l.line()).collect();
    assert_eq!(lines, [s1, s2, s3], "{f:?}");
}

#[test]
fn failure_passed_on_by_errback_keeps_its_origin() {
    let (d, r) = Deferred::<u32>::pending();
    let raised = line!() + 1;
    let d = d.add_callback(|_| Err::<u32, _>(Failure::new(Timeout)));
    let passer = line!() + 1;
    let d = d.add_errback(Err);
    r.callback(1);
    let f = d.wait().unwrap_err();
    assert_eq!(line_of(f.origin()), Some((file!(), raised)));
    let lines: Vec<u32> = f.trail().iter().map(|l| l.line()).collect();
    assert_eq!(
        lines,
        [passer],
        "the errback that passed it on joins the trail"
    );
}

#[test]
fn origin_for_err_returning_steps_of_each_kind() {
    let cb = line!() + 1;
    let d = Deferred::<u32>::succeed(1).add_callback(|_| Err::<u32, _>(Failure::new(Timeout)));
    assert_eq!(line_of(d.wait().unwrap_err().origin()), Some((file!(), cb)));

    let base = Deferred::<u32>::fail(Failure::msg("first"));
    let eb = line!() + 1;
    let d = base.add_errback(|_| Err(Failure::new(Timeout)));
    assert_eq!(line_of(d.wait().unwrap_err().origin()), Some((file!(), eb)));

    let both = line!() + 1;
    let d = Deferred::<u32>::succeed(1).add_both(|_| Err::<u32, _>(Failure::new(Timeout)));
    assert_eq!(
        line_of(d.wait().unwrap_err().origin()),
        Some((file!(), both))
    );

    let pair = line!() + 1;
    let d = Deferred::<u32>::succeed(1).add_callbacks(|_| Err(Failure::new(Timeout)), Ok);
    assert_eq!(
        line_of(d.wait().unwrap_err().origin()),
        Some((file!(), pair))
    );

    let base = Deferred::<u32>::fail(Failure::msg("x"));
    let pair_eb = line!() + 1;
    let d = base.add_callbacks(Ok, |_| Err(Failure::new(Timeout)));
    assert_eq!(
        line_of(d.wait().unwrap_err().origin()),
        Some((file!(), pair_eb))
    );

    let base = Deferred::<u32>::succeed(1);
    let returned = line!() + 1;
    let d = base.add_callback(|_| Deferred::<u32>::fail(Failure::new(Timeout)));
    assert_eq!(
        line_of(d.wait().unwrap_err().origin()),
        Some((file!(), returned)),
        "a returned fired failing Deferred is raised at that step"
    );
}

#[test]
fn origin_for_err_returning_step_on_pending_chain() {
    let (d, r) = Deferred::<u32>::pending();
    let cb = line!() + 1;
    let d = d.add_callback(|_| Err::<u32, _>(Failure::new(Timeout)));
    r.callback(1);
    let f = d.wait().unwrap_err();
    assert_eq!(line_of(f.origin()), Some((file!(), cb)));
    assert!(format!("{f:?}").contains(&format!("raised at step {}", at(cb))));
}

#[test]
fn origin_for_panicking_steps() {
    let (d, r) = Deferred::<u32>::pending();
    let cb = line!() + 1;
    let d = d.add_callback(|_| -> Result<u32, Failure> { panic!("failure.rs boom") });
    let skipped = line!() + 1;
    let d = d.add_callback(|v| Ok(v + 1));
    r.callback(1);
    let f = d.wait().unwrap_err();
    assert_eq!(line_of(f.origin()), Some((file!(), cb)));
    assert_eq!(
        f.trail().iter().map(|l| l.line()).collect::<Vec<_>>(),
        [skipped]
    );
    let p = f.downcast_ref::<Panicked>().expect("Panicked");
    assert_eq!(p.message(), "failure.rs boom");
    assert_eq!(f.to_string(), "a step panicked: failure.rs boom");
    let debug = format!("{f:?}");
    assert!(
        debug.contains(&format!("raised at step {}", at(cb))),
        "{debug}"
    );

    let base = Deferred::<u32>::fail(Failure::msg("x"));
    let eb = line!() + 1;
    let d = base.add_errback(|_| -> Result<u32, Failure> { panic!("eb boom") });
    assert_eq!(line_of(d.wait().unwrap_err().origin()), Some((file!(), eb)));

    let base = Deferred::<u32>::succeed(1);
    let sync = line!() + 1;
    let d = base.add_callback(|_| -> Result<u32, Failure> { panic!("sync boom") });
    assert_eq!(
        line_of(d.wait().unwrap_err().origin()),
        Some((file!(), sync))
    );
}

#[test]
fn origin_of_inner_failure_survives_the_outer_chain() {
    let (inner, inner_r) = Deferred::<u32>::pending();
    let inner_step = line!() + 1;
    let inner = inner.add_callback(|_| Err::<u32, _>(Failure::new(Timeout)));
    let outer = Deferred::<u32>::succeed(1).add_callback(move |_| inner);
    let after = line!() + 1;
    let outer = outer.add_callback(|v| Ok(v + 1));
    inner_r.callback(1);
    let f = outer.wait().unwrap_err();
    assert_eq!(line_of(f.origin()), Some((file!(), inner_step)));
    assert!(f.trail().iter().any(|l| l.line() == after));
}

#[test]
fn no_origin_and_empty_trail_outside_chains() {
    let f = Failure::new(Timeout);
    assert_eq!(f.origin(), None);
    assert!(f.trail().is_empty());
    let debug = format!("{f:?}");
    assert!(!debug.contains("raised at step"), "{debug}");
    assert!(!debug.contains("passed step"), "{debug}");
}

/// A failure that no step raised says where it entered the chain: the `errback` that fired
/// the Resolver with it. Before, an unhandled report of it gave its message alone.
#[test]
fn an_unhandled_failure_fired_by_errback_says_where_it_entered() {
    let ((), reported) = deferred::capture_unhandled(|| {
        let (d, resolver) = Deferred::<u32>::pending();
        drop(d.add_callback(|v| Ok(v + 1)));
        resolver.errback(Failure::msg("connection refused"));
    });
    let errback_line = line!() - 2;
    assert_eq!(reported.len(), 1);
    let failure = &reported[0];
    assert_eq!(line_of(failure.entered_at()), Some((file!(), errback_line)));
    assert_eq!(failure.origin(), None, "no step raised it");
    let debug = format!("{failure:?}");
    assert!(
        debug.contains(&format!("entered the chain at {}", at(errback_line))),
        "{debug}"
    );
    assert!(debug.contains(", by errback"), "{debug}");
    // The step it skipped is on its trail, after where it entered.
    assert!(
        debug.find("entered the chain") < debug.find("passed step"),
        "{debug}"
    );
}

/// `fire(Err(..))`, `try_fire` and `Deferred::fail` say so too, each by its name; a step that
/// raised a failure gives it an origin, and no entry point.
#[test]
fn each_way_a_failure_enters_a_chain_is_named() {
    let entered = |failure: &Failure| {
        let debug = format!("{failure:?}");
        let by = debug
            .split_once(", by ")
            .and_then(|(_, rest)| rest.lines().next())
            .map(str::to_owned);
        (line_of(failure.entered_at()).map(|(_, line)| line), by)
    };

    let (d, resolver) = Deferred::<u32>::pending();
    resolver.fire(Err(Failure::msg("no")));
    let fired = line!() - 1;
    assert_eq!(
        entered(&d.wait().unwrap_err()),
        (Some(fired), Some("fire".into()))
    );

    let (d, resolver) = Deferred::<u32>::pending();
    resolver.try_fire(Err(Failure::msg("no"))).unwrap();
    let tried = line!() - 1;
    assert_eq!(
        entered(&d.wait().unwrap_err()),
        (Some(tried), Some("try_fire".into()))
    );

    let failed = Deferred::<u32>::fail(Failure::msg("no"));
    let made = line!() - 1;
    assert_eq!(
        entered(&failed.wait().unwrap_err()),
        (Some(made), Some("fail".into()))
    );

    let raised = Deferred::<u32>::succeed(1).add_callback(|_| Err::<u32, _>(Failure::msg("no")));
    let failure = raised.wait().unwrap_err();
    assert_eq!(failure.entered_at(), None);
    assert!(failure.origin().is_some());
}

/// The local kind says so too.
#[test]
fn a_failure_fired_into_a_local_chain_says_where_it_entered() {
    let (d, resolver) = deferred::LocalDeferred::<u32>::pending();
    resolver.errback(Failure::msg("no"));
    let line = line!() - 1;
    let failure = d.wait().unwrap_err();
    assert_eq!(line_of(failure.entered_at()), Some((file!(), line)));
}

/// A failure that `try_fire` gives back (the chain was cancelled first) entered no chain
/// there: where it enters next is what it says.
#[test]
fn a_failure_try_fire_gives_back_did_not_enter_there() {
    let (cancelled, resolver) = Deferred::<u32>::pending();
    cancelled.cancel();
    let Err(Err(failure)) = resolver.try_fire(Err(Failure::msg("no"))) else {
        panic!("a cancelled chain gives the result back");
    };
    assert_eq!(failure.entered_at(), None);
    let (d, resolver) = Deferred::<u32>::pending();
    resolver.errback(failure);
    let line = line!() - 1;
    let failure = d.wait().unwrap_err();
    assert_eq!(line_of(failure.entered_at()), Some((file!(), line)));
    drop(cancelled);
}

/// `drive_future`'s failure entered at the `drive_future` call, and says so.
#[test]
fn a_failure_of_a_driven_future_entered_at_drive_future() {
    let d: Deferred<u32> = Deferred::drive_future(async { Err(Failure::msg("no")) });
    let line = line!() - 1;
    let failure = d.wait().unwrap_err();
    assert_eq!(line_of(failure.entered_at()), Some((file!(), line)));
    assert!(
        format!("{failure:?}").contains(", by drive_future"),
        "{failure:?}"
    );
}

/// A `chain!` started with an `Err(..)`: the failure entered the chain at the start, and says
/// so; a step it skips is on its trail after that.
#[test]
fn a_failure_a_chain_starts_with_entered_at_the_start() {
    let d = deferred::chain! {
        Err::<u32, Failure>(Failure::msg("no"))
        then |x| x + 1
    };
    let line = line!() - 3;
    let failure = d.wait().unwrap_err();
    assert_eq!(line_of(failure.entered_at()), Some((file!(), line)));
    assert_eq!(failure.origin(), None, "no step raised it");
    let debug = format!("{failure:?}");
    assert!(debug.contains(", by chain!'s start"), "{debug}");
    assert!(
        debug.find("entered the chain") < debug.find("passed step"),
        "{debug}"
    );

    // A start that is a Deferred keeps what its own failure says (here: `fail`).
    let d = deferred::chain! {
        Deferred::<u32>::fail(Failure::msg("no"))
        then |x| x + 1
    };
    let line = line!() - 3;
    let failure = d.wait().unwrap_err();
    assert_eq!(line_of(failure.entered_at()), Some((file!(), line)));
    assert!(format!("{failure:?}").contains(", by fail"), "{failure:?}");
}

/// A failure keeps the first place it entered a chain: handed on by another Resolver (or a
/// step that raised it first), it is not moved.
#[test]
fn a_failure_keeps_where_it_first_entered() {
    let (first, resolver) = Deferred::<u32>::pending();
    resolver.errback(Failure::msg("no"));
    let line = line!() - 1;
    let failure = first.wait().unwrap_err();
    let (second, resolver) = Deferred::<u32>::pending();
    resolver.errback(failure);
    let failure = second.wait().unwrap_err();
    assert_eq!(line_of(failure.entered_at()), Some((file!(), line)));
}

/// The work of `defer_to_thread` fails: the failure entered the chain where the work was
/// handed to the thread.
#[test]
fn a_failure_of_work_on_a_thread_entered_at_defer_to_thread() {
    let d = deferred::defer_to_thread(|| Err::<u32, _>(Failure::msg("disk full")));
    let line = line!() - 1;
    let failure = d.wait().unwrap_err();
    assert_eq!(line_of(failure.entered_at()), Some((file!(), line)));
    assert!(
        format!("{failure:?}").contains(", by defer_to_thread"),
        "{failure:?}"
    );
}

/// The helpers that call the user's function for the user (`DeferredSemaphore::run`, `retry`,
/// `LoopingCall`, `map_concurrent`, `defer_later`) place a failure it gives or raises, and
/// their own steps it passes, at the user's call: no location of the library's own files.
#[test]
fn a_failure_of_a_helpers_call_is_placed_at_the_users_call() {
    use deferred::{DeferredSemaphore, LoopingCall, ManualClock, RetryPolicy};
    let ours = |failure: &Failure| {
        for at in failure
            .origin()
            .into_iter()
            .chain(failure.trail().iter().copied())
        {
            assert_eq!(at.file(), file!(), "{failure:?}");
        }
    };

    let semaphore = DeferredSemaphore::new(1);
    let line = line!() + 1;
    let run = semaphore.run(|| Err::<u32, _>(Failure::msg("sem work failed")));
    let failure = run.wait().unwrap_err();
    assert_eq!(line_of(failure.origin()), Some((file!(), line)));
    ours(&failure);
    let line = line!() + 1;
    let run = semaphore.run(|| -> Result<u32, Failure> { panic!("sem work panicked") });
    let failure = run.wait().unwrap_err();
    assert_eq!(line_of(failure.origin()), Some((file!(), line)));
    ours(&failure);

    let clock = ManualClock::new();
    let policy = RetryPolicy::exponential(Duration::from_secs(1)).max_attempts(2);
    let line = line!() + 1;
    let attempts = deferred::retry(clock.clone(), policy, || {
        Err::<u32, _>(Failure::msg("refused"))
    });
    clock.advance(Duration::from_secs(10));
    let failure = attempts.wait().unwrap_err();
    assert_eq!(line_of(failure.origin()), Some((file!(), line)));
    // The last attempt's message is said once, by the retry's own message.
    assert_eq!(
        format!("{failure:#}").matches("refused").count(),
        1,
        "{failure:#}"
    );
    assert_eq!(
        format!("{failure:?}").matches("refused").count(),
        1,
        "{failure:?}"
    );
    let gave_up = failure.downcast_ref::<deferred::RetryError>().unwrap();
    for attempt in &gave_up.attempts {
        assert_eq!(line_of(attempt.origin()), Some((file!(), line)));
        ours(attempt);
    }
    ours(&failure);

    let line = line!() + 1;
    let ticks = LoopingCall::new(clock.clone(), || Err::<(), _>(Failure::msg("tick failed")));
    let done = ticks.start(Duration::from_secs(1), true);
    let failure = done.wait().unwrap_err();
    assert_eq!(line_of(failure.origin()), Some((file!(), line)));
    ours(&failure);

    let line = line!() + 1;
    let all = deferred::map_concurrent([1, 2], 1, |n: u32| {
        if n == 2 {
            Err(Failure::msg("item failed"))
        } else {
            Ok(n)
        }
    });
    let failure = all.wait().unwrap_err();
    let first = failure.downcast_ref::<deferred::FirstError>().unwrap();
    assert_eq!(line_of(first.failure.origin()), Some((file!(), line)));
    ours(&failure);
}

/// `Debug`'s `entered the chain at .., by cancel` line, if the failure has one: the line of
/// this file it names.
fn cancelled_at(failure: &Failure) -> Option<u32> {
    let debug = format!("{failure:?}");
    let line = debug
        .lines()
        .find(|line| line.contains("entered the chain at") && line.ends_with(", by cancel"))?;
    let (_, place) = line.split_once("entered the chain at ")?;
    let rest = place.strip_prefix(file!())?.strip_prefix(':')?;
    rest.split(':').next()?.parse().ok()
}

/// The `Cancelled` failure a user's cancel of a pending Deferred makes says where the cancel
/// was called, for each public way to cancel, of both kinds.
#[test]
fn a_users_cancel_says_where_it_was_called() {
    let (d, _resolver) = Deferred::<u32>::pending();
    d.cancel();
    let line = line!() - 1;
    let failure = d.wait().unwrap_err();
    assert!(failure.is::<Cancelled>());
    assert_eq!(line_of(failure.entered_at()), Some((file!(), line)));
    assert_eq!(cancelled_at(&failure), Some(line), "{failure:?}");
    assert_eq!(failure.origin(), None, "no step raised it");

    let (d, _resolver) = Deferred::<u32>::pending();
    let handle = d.cancel_handle();
    let d = d.add_callback(|x| Ok(x + 1));
    handle.cancel();
    let line = line!() - 1;
    let failure = d.wait().unwrap_err();
    assert_eq!(line_of(failure.entered_at()), Some((file!(), line)));
    assert_eq!(cancelled_at(&failure), Some(line), "{failure:?}");

    let (d, _resolver) = deferred::LocalDeferred::<u32>::pending();
    d.cancel();
    let line = line!() - 1;
    let failure = d.wait().unwrap_err();
    assert_eq!(line_of(failure.entered_at()), Some((file!(), line)));
    assert_eq!(cancelled_at(&failure), Some(line), "{failure:?}");

    let (d, _resolver) = deferred::LocalDeferred::<u32>::pending();
    let handle = d.cancel_handle();
    let d = d.add_callback(|x| Ok(x + 1));
    handle.cancel();
    let line = line!() - 1;
    let failure = d.wait().unwrap_err();
    assert_eq!(line_of(failure.entered_at()), Some((file!(), line)));
    assert_eq!(cancelled_at(&failure), Some(line), "{failure:?}");
}

/// An unhandled cancellation, reported, says where the cancel was called.
#[test]
fn an_unhandled_cancellation_says_where_the_cancel_was_called() {
    let (line, reported) = deferred::capture_unhandled(|| {
        let (d, _resolver) = Deferred::<u32>::pending();
        d.cancel();
        let line = line!() - 1;
        drop(d);
        line
    });
    assert_eq!(reported.len(), 1);
    assert_eq!(line_of(reported[0].entered_at()), Some((file!(), line)));
    assert_eq!(cancelled_at(&reported[0]), Some(line), "{:?}", reported[0]);
}

/// A cancel of a chain waiting on another reaches that one's root: the `Cancelled` it makes
/// there says where the outer chain's cancel was called, for both kinds.
#[test]
fn a_cancel_through_an_outer_chain_says_where_it_was_called() {
    let (inner, _resolver) = Deferred::<u32>::pending();
    let outer = Deferred::<u32>::succeed(1).add_callback(move |_| inner);
    outer.cancel();
    let line = line!() - 1;
    let failure = outer.wait().unwrap_err();
    assert!(failure.is::<Cancelled>());
    assert_eq!(line_of(failure.entered_at()), Some((file!(), line)));
    assert_eq!(cancelled_at(&failure), Some(line), "{failure:?}");

    let (inner, _resolver) = deferred::LocalDeferred::<u32>::pending();
    let outer = deferred::LocalDeferred::<u32>::succeed(1).add_callback(move |_| inner);
    let handle = outer.cancel_handle();
    handle.cancel();
    let line = line!() - 1;
    let failure = outer.wait().unwrap_err();
    assert_eq!(line_of(failure.entered_at()), Some((file!(), line)));
    assert_eq!(cancelled_at(&failure), Some(line), "{failure:?}");
}

/// A canceller that answers the cancel with a failure of its own: that failure keeps its own
/// place (the `errback` in the canceller), not the cancel's. One that does not fire the root
/// leaves it to the cancel, whose `Cancelled` says where the cancel was called.
#[test]
fn a_cancellers_own_failure_keeps_its_own_place() {
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::sync::{Arc, Mutex};

    let (d, resolver) = Deferred::<u32>::pending();
    let slot = Arc::new(Mutex::new(None::<deferred::Resolver<u32>>));
    let answer = slot.clone();
    let answered = line!() + 3;
    resolver.set_canceller(move || {
        if let Some(resolver) = answer.lock().unwrap().take() {
            resolver.errback(Failure::msg("aborted the transfer"));
        }
    });
    *slot.lock().unwrap() = Some(resolver);
    d.cancel();
    let failure = d.wait().unwrap_err();
    assert!(!failure.is::<Cancelled>());
    assert_eq!(line_of(failure.entered_at()), Some((file!(), answered)));
    assert!(
        format!("{failure:?}").contains(", by errback"),
        "{failure:?}"
    );

    // A canceller's own `Cancelled`, given by `errback`, is placed there too.
    let (d, resolver) = deferred::LocalDeferred::<u32>::pending();
    let slot = Rc::new(RefCell::new(None::<deferred::LocalResolver<u32>>));
    let answer = slot.clone();
    let answered = line!() + 3;
    resolver.set_canceller(move || {
        if let Some(resolver) = answer.borrow_mut().take() {
            resolver.errback(Failure::cancelled());
        }
    });
    *slot.borrow_mut() = Some(resolver);
    d.cancel();
    let failure = d.wait().unwrap_err();
    assert!(failure.is::<Cancelled>());
    assert_eq!(line_of(failure.entered_at()), Some((file!(), answered)));
    assert_eq!(cancelled_at(&failure), None, "{failure:?}");

    // A canceller that does not fire the root: the walk's `Cancelled` has the cancel's place.
    let (d, resolver) = Deferred::<u32>::pending();
    resolver.set_canceller(|| {});
    d.cancel();
    let line = line!() - 1;
    let failure = d.wait().unwrap_err();
    assert_eq!(line_of(failure.entered_at()), Some((file!(), line)));
    drop(resolver);
}

/// The helpers whose cancellers fail their Deferred with a `Cancelled` of their own
/// (`DeferredSemaphore::acquire`, `DeferredQueue::get`, `defer_later`, `retry`, `LoopingCall`,
/// a `SharedResult`'s consumer) and the combinators whose inputs a cancel walks to
/// (`gather_results`), and `map_err`: the `Cancelled` says where the user's cancel was called.
#[test]
fn a_cancel_of_a_helpers_deferred_says_where_it_was_called() {
    use deferred::{
        DeferredQueue, DeferredSemaphore, LoopingCall, ManualClock, RetryPolicy, SharedResult,
    };
    let check = |failure: &Failure, line: u32| {
        assert!(failure.is_cancelled(), "{failure:?}");
        assert_eq!(
            line_of(failure.entered_at()),
            Some((file!(), line)),
            "{failure:?}"
        );
    };

    let semaphore = DeferredSemaphore::new(1);
    let held = semaphore.acquire();
    let waiting = semaphore.acquire();
    waiting.cancel();
    check(&waiting.wait().unwrap_err(), line!() - 1);
    drop(held);

    let queue = DeferredQueue::<u32>::new();
    let get = queue.get();
    get.cancel();
    check(&get.wait().unwrap_err(), line!() - 1);

    let clock = ManualClock::new();
    let later = deferred::defer_later(&clock, Duration::from_secs(1), || Ok::<u32, Failure>(1));
    later.cancel();
    check(&later.wait().unwrap_err(), line!() - 1);

    let policy = RetryPolicy::exponential(Duration::from_secs(1)).max_attempts(3);
    let attempts = deferred::retry(clock.clone(), policy, || {
        Err::<u32, _>(Failure::msg("refused"))
    });
    attempts.cancel();
    check(&attempts.wait().unwrap_err(), line!() - 1);

    let ticks = LoopingCall::new(clock.clone(), || Ok::<(), Failure>(()));
    let done = ticks.start(Duration::from_secs(1), false);
    done.cancel();
    check(&done.wait().unwrap_err(), line!() - 1);

    let (source, _resolver) = Deferred::<u32>::pending();
    let shared = SharedResult::new(source);
    let consumer = shared.consumer();
    consumer.cancel();
    check(&consumer.wait().unwrap_err(), line!() - 1);

    let (slow, _resolver) = Deferred::<u32>::pending();
    let batch = deferred::gather_results([Deferred::succeed(1), slow]);
    batch.cancel();
    let line = line!() - 1;
    let failure = batch.wait().unwrap_err();
    let first = failure.downcast_ref::<deferred::FirstError>().unwrap();
    check(&first.failure, line);

    let (source, _resolver) = Deferred::<u32>::pending();
    let converted: Deferred<u32> = source.map_err(|f: Failure| f);
    converted.cancel();
    check(&converted.wait().unwrap_err(), line!() - 1);
}

/// The library's own cancels (a timeout's, a race's of its losers) name no line of the
/// library's files: a failure they cause has no place, or the user's.
#[test]
fn a_librarys_own_cancel_names_no_library_line() {
    use deferred::ManualClock;
    use std::sync::{Arc, Mutex};

    let seen = Arc::new(Mutex::new(Vec::<Option<&'static Location<'static>>>::new()));
    let record = |seen: &Arc<Mutex<Vec<_>>>| {
        let seen = seen.clone();
        move |failure: Failure| {
            seen.lock().unwrap().push(failure.entered_at());
            Err::<u32, _>(failure)
        }
    };

    let clock = ManualClock::new();
    let (d, _resolver) = Deferred::<u32>::pending();
    let d = d
        .add_errback(record(&seen))
        .add_timeout(Duration::from_secs(1), &clock);
    clock.advance(Duration::from_secs(2));
    let failure = d.wait().unwrap_err();
    assert!(failure.is::<TimedOut>(), "{failure:?}");
    assert_eq!(failure.entered_at(), None, "{failure:?}");

    let (loser, _resolver) = Deferred::<u32>::pending();
    let loser = loser.add_errback(record(&seen));
    let won = deferred::race([Deferred::succeed(1), loser]);
    assert_eq!(won.wait().unwrap(), (0, 1));

    let local_seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let (slow, _resolver) = deferred::LocalDeferred::<u32>::pending();
    let slow = slow.add_errback({
        let seen = local_seen.clone();
        move |failure: Failure| {
            seen.borrow_mut().push(failure.entered_at());
            Err::<u32, _>(failure)
        }
    });
    let d = slow.add_timeout(Duration::from_secs(1), &clock);
    clock.advance(Duration::from_secs(2));
    let failure = d.wait().unwrap_err();
    assert!(failure.is::<TimedOut>(), "{failure:?}");
    assert_eq!(failure.entered_at(), None, "{failure:?}");

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(local_seen.borrow().len(), 1);
    for at in seen.iter().chain(local_seen.borrow().iter()) {
        assert_eq!(*at, None, "a library cancel named {at:?}");
    }
}

/// A panic in the user's code the crate runs outside a step says what panicked: the work of
/// `defer_to_thread`, `map_err`'s conversion, posted work, a canceller.
#[test]
fn a_panic_outside_a_step_says_what_panicked() {
    let work = deferred::defer_to_thread(|| -> Result<u32, Failure> { panic!("disk on fire") });
    assert_eq!(
        work.wait().unwrap_err().to_string(),
        "the work panicked: disk on fire"
    );
    let converted: Deferred<u32> = Deferred::<u32, DbError>::fail(DbError::NoRow)
        .map_err(|_| -> Failure { panic!("no conversion") });
    assert_eq!(
        converted.wait().unwrap_err().to_string(),
        "map_err's conversion panicked: no conversion"
    );
    let (d, _resolver) = Deferred::<u32>::with_canceller(|| panic!("stuck"));
    d.cancel();
    assert_eq!(
        d.wait().unwrap_err().to_string(),
        "a canceller panicked: stuck"
    );
    let capture = deferred::UnhandledCapture::start();
    let inbox = deferred::Inbox::new(|| {});
    inbox.handle().post(|| panic!("bad post")).unwrap();
    inbox.run_pending();
    let reported = capture.take();
    assert_eq!(reported.len(), 1);
    assert_eq!(reported[0].to_string(), "posted work panicked: bad post");
}

/// A cancel that lands while a driven future is polled leaves the cancel of what the poll left
/// it awaiting to the poll, when it returns: that cancel has no place, even when the poll runs
/// inside another chain's canceller (here, a user's cancel of `outer`, whose canceller fires
/// what the future awaits): the outer cancel's place is not that chain's.
#[test]
fn a_cancel_during_a_poll_inside_a_canceller_takes_no_outer_place() {
    use std::sync::{Arc, Mutex};

    let seen = Arc::new(Mutex::new(Vec::<Option<&'static Location<'static>>>::new()));
    let (first, first_resolver) = Deferred::<(), Failure>::pending();
    let (next, _next_resolver) = Deferred::<(), Failure>::pending();
    let next = next.add_errback({
        let seen = seen.clone();
        move |failure: Failure| {
            seen.lock().unwrap().push(failure.entered_at());
            Err::<(), _>(failure)
        }
    });
    let own = Arc::new(Mutex::new(None::<deferred::CancelHandle>));
    let d = Deferred::<(), Failure>::drive_future({
        let own = own.clone();
        async move {
            first.await?;
            // Cancels its own Deferred, from inside its poll.
            let handle = own.lock().unwrap().take();
            if let Some(handle) = handle {
                handle.cancel();
            }
            next.await
        }
    });
    *own.lock().unwrap() = Some(d.cancel_handle());
    let (outer, resolver) = Deferred::<u32>::pending();
    resolver.set_canceller(move || first_resolver.callback(()));
    outer.cancel();
    assert!(outer.wait().unwrap_err().is_cancelled());
    assert!(d.wait().unwrap_err().is_cancelled());
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0], None, "the outer cancel's place leaked");
    drop(resolver);
}

/// As above, for a task an `Inbox` spawned (the local kind), polled by `run_pending` inside a
/// user's canceller.
#[test]
fn a_cancel_during_a_spawned_tasks_poll_inside_a_canceller_takes_no_outer_place() {
    use std::cell::RefCell;
    use std::rc::Rc;

    let inbox = deferred::Inbox::new(|| {});
    let seen = Rc::new(RefCell::new(
        Vec::<Option<&'static Location<'static>>>::new(),
    ));
    let (first, first_resolver) = deferred::LocalDeferred::<(), Failure>::pending();
    let (next, _next_resolver) = deferred::LocalDeferred::<(), Failure>::pending();
    let next = next.add_errback({
        let seen = seen.clone();
        move |failure: Failure| {
            seen.borrow_mut().push(failure.entered_at());
            Err::<(), _>(failure)
        }
    });
    let own = Rc::new(RefCell::new(None::<deferred::local::CancelHandle>));
    let d = inbox.spawn({
        let own = own.clone();
        async move {
            first.await?;
            let handle = own.borrow_mut().take();
            if let Some(handle) = handle {
                handle.cancel();
            }
            next.await
        }
    });
    *own.borrow_mut() = Some(d.cancel_handle());
    let (outer, resolver) = deferred::LocalDeferred::<u32>::pending();
    let runs = inbox.clone();
    resolver.set_canceller(move || {
        first_resolver.callback(());
        runs.run_pending();
    });
    outer.cancel();
    assert!(outer.wait().unwrap_err().is_cancelled());
    assert!(d.wait().unwrap_err().is_cancelled());
    let seen = seen.borrow();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0], None, "the outer cancel's place leaked");
    drop(resolver);
}

/// A user's canceller that cancels another chain, and answers a third with a `Cancelled` of its
/// own: each failure has its own place, not the outer cancel's; the outer one keeps its own
/// after the nested cancels (and after a nested canceller that panics).
#[test]
fn a_cancel_inside_a_canceller_has_its_own_place() {
    use deferred::DeferredQueue;
    use std::sync::{Arc, Mutex};

    let queue = DeferredQueue::<u32>::new();
    let get = queue.get();
    let get_handle = get.cancel_handle();
    let (other, other_resolver) = Deferred::<u32>::pending();
    let (panicky, panicky_resolver) = Deferred::<u32>::pending();
    panicky_resolver.set_canceller(|| panic!("a canceller that panics"));
    let lines = Arc::new(Mutex::new((0, 0)));
    let (outer, resolver) = Deferred::<u32>::pending();
    resolver.set_canceller({
        let lines = lines.clone();
        move || {
            get_handle.cancel();
            let inner_line = line!() - 1;
            other_resolver.errback(Failure::cancelled());
            let errback_line = line!() - 1;
            panicky.cancel();
            *lines.lock().unwrap() = (inner_line, errback_line);
            drop(panicky);
        }
    });
    outer.cancel();
    let outer_line = line!() - 1;
    let (inner_line, errback_line) = *lines.lock().unwrap();
    let failure = get.wait().unwrap_err();
    assert_eq!(cancelled_at(&failure), Some(inner_line), "{failure:?}");
    let failure = other.wait().unwrap_err();
    assert_eq!(line_of(failure.entered_at()), Some((file!(), errback_line)));
    assert_eq!(cancelled_at(&failure), None, "{failure:?}");
    let failure = outer.wait().unwrap_err();
    assert_eq!(cancelled_at(&failure), Some(outer_line), "{failure:?}");
    drop((resolver, panicky_resolver));
}

/// `cancel` called through a method reference, on Deferreds in a `Vec` and on cloned handles:
/// the place is never a line of this library's files.
#[test]
fn a_cancel_through_a_method_reference_names_no_library_line() {
    let (a, _ra) = Deferred::<u32>::pending();
    let (b, _rb) = Deferred::<u32>::pending();
    let all = vec![a, b];
    all.iter().for_each(|d| d.cancel());
    let line = line!() - 1;
    let handles: Vec<_> = all.iter().map(Deferred::cancel_handle).collect();
    let (c, _rc) = deferred::LocalDeferred::<u32>::pending();
    let local = c.cancel_handle();
    local.clone().cancel();
    let local_line = line!() - 1;
    let (e, _re) = Deferred::<u32>::pending();
    [&e].into_iter().for_each(Deferred::cancel);
    drop(handles);
    for d in all {
        let failure = d.wait().unwrap_err();
        assert_eq!(cancelled_at(&failure), Some(line), "{failure:?}");
    }
    let failure = c.wait().unwrap_err();
    assert_eq!(cancelled_at(&failure), Some(local_line), "{failure:?}");
    let failure = e.wait().unwrap_err();
    let at = failure.entered_at().expect("a user's cancel has a place");
    assert!(
        !at.file().contains("deferred-core") && !at.file().starts_with("src/"),
        "{failure:?}"
    );
}

/// An error type of its own, `From<Failure>` so that it can be a chain's.
#[derive(Debug, PartialEq)]
enum DbError {
    NoRow,
    Chain(String),
}

impl From<Failure> for DbError {
    fn from(failure: Failure) -> DbError {
        DbError::Chain(failure.to_string())
    }
}

/// `map_err` converts a chain's error type, fired or pending; a value passes through.
#[test]
fn map_err_converts_the_error_type_of_a_fired_or_pending_chain() {
    let to_failure = |e: DbError| Failure::msg(format!("db: {e:?}"));
    let fired: Deferred<u32> = Deferred::<u32, DbError>::fail(DbError::NoRow).map_err(to_failure);
    assert_eq!(fired.wait().unwrap_err().to_string(), "db: NoRow");
    let value: Deferred<u32> = Deferred::<u32, DbError>::succeed(4).map_err(to_failure);
    assert_eq!(value.wait().unwrap(), 4);

    let (pending, resolver) = Deferred::<u32, DbError>::pending();
    let converted = pending.add_callback(|n| Ok(n + 1)).map_err(to_failure);
    let converted = converted.add_callback(|n| Ok(n * 10));
    resolver.callback(1);
    assert_eq!(converted.wait().unwrap(), 20);

    // A Deferred of an error type no chain could have (a fired one: `io::Error` is not
    // `From<Failure>`), as `chain!`'s message for a step giving one says to write.
    let io: Deferred<u32, std::io::Error> = Deferred::fail(std::io::Error::other("disk on fire"));
    let fitted: Deferred<u32> = io.map_err(Failure::from);
    assert!(fitted.wait().unwrap_err().is::<std::io::Error>());

    // And back: a chain of `Failure`s to one of `DbError`s.
    let back: Deferred<u32, DbError> =
        Deferred::<u32>::fail(Failure::msg("timeout")).map_err(DbError::from);
    assert_eq!(back.wait().unwrap_err(), DbError::Chain("timeout".into()));
}

/// Cancelling the converted Deferred cancels the chain it came from, whose answer (its
/// cancellation, in its own error type) is converted as any failure; a panic in the conversion
/// is a failure of the converted Deferred, raised at the `map_err`.
#[test]
fn map_err_passes_a_cancel_on_and_turns_a_panic_into_a_failure() {
    let cancelled = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = cancelled.clone();
    let (pending, _resolver) = Deferred::<u32, DbError>::with_canceller(move || {
        seen.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let converted: Deferred<u32> = pending.map_err(|e| Failure::msg(format!("{e:?}")));
    converted.cancel();
    assert!(cancelled.load(std::sync::atomic::Ordering::SeqCst));
    // The chain's answer to the cancel, a cancellation in its own error type, converted.
    assert_eq!(
        converted.wait().unwrap_err().to_string(),
        "Chain(\"the Deferred was cancelled\")"
    );

    let (pending, resolver) = Deferred::<u32, DbError>::pending();
    let converted: Deferred<u32> = pending.map_err(|_| -> Failure { panic!("no conversion") });
    let line = line!() - 1;
    resolver.errback(DbError::NoRow);
    let failure = converted.wait().unwrap_err();
    assert!(failure.is::<Panicked>(), "{failure:?}");
    assert_eq!(line_of(failure.origin()), Some((file!(), line)));
}

/// A cancel of the converted Deferred that lands while the chain's step runs is remembered by
/// the chain, as without `map_err`: the step's own failure comes through, converted, not a
/// cancellation made up before the chain answered.
#[test]
fn map_err_waits_for_the_chains_answer_to_a_cancel() {
    use std::sync::mpsc;
    let (running_tx, running) = mpsc::channel();
    let (go, go_rx) = mpsc::channel::<()>();
    let (start, resolver) = Deferred::<u32>::pending();
    let converted: Deferred<u32, DbError> = start
        .add_callback(move |_| {
            running_tx.send(()).unwrap();
            go_rx.recv().unwrap();
            Err::<u32, _>(Failure::msg("the step's own failure"))
        })
        .map_err(DbError::from);
    let firing = std::thread::spawn(move || resolver.callback(1));
    running.recv().unwrap();
    converted.cancel(); // the step is running on the other thread
    go.send(()).unwrap();
    firing.join().unwrap();
    assert_eq!(
        converted.wait().unwrap_err(),
        DbError::Chain("the step's own failure".into())
    );
}

/// A cancel made from inside another chain's callback (where the chain's answer is queued,
/// not given before `cancel` returns) ends the same way as one made outside.
#[test]
fn map_err_ends_the_same_whether_cancelled_inside_a_callback_or_not() {
    let recovering = || {
        let (start, resolver) = Deferred::<u32>::pending();
        let converted: Deferred<u32, DbError> =
            start.add_errback(|_| Ok(99)).map_err(DbError::from);
        (converted, resolver)
    };
    let (outside, _kept) = recovering();
    outside.cancel();
    assert_eq!(outside.wait().unwrap(), 99);

    let (inside, _kept) = recovering();
    let handle = inside.cancel_handle();
    let (trigger, fire) = Deferred::<u32>::pending();
    let trigger = trigger.add_callback(move |n| {
        handle.cancel(); // inside the delivery of `trigger`'s chain
        Ok(n)
    });
    fire.callback(0);
    assert_eq!(trigger.wait().unwrap(), 0);
    assert_eq!(inside.wait().unwrap(), 99);
}

/// The local kind has it too, for an error type that is not `Send`.
#[test]
fn map_err_on_a_local_chain() {
    use std::rc::Rc;
    #[derive(Debug)]
    struct LocalError(Rc<str>);
    impl From<Failure> for LocalError {
        fn from(failure: Failure) -> LocalError {
            LocalError(failure.to_string().into())
        }
    }
    let (pending, resolver) = deferred::LocalDeferred::<u32, LocalError>::pending();
    let converted = pending.map_err(|e| Failure::msg(e.0.to_string()));
    resolver.errback(LocalError("gone".into()));
    assert_eq!(converted.wait().unwrap_err().to_string(), "gone");
}

// ---------------------------------------------------------------------------------------------
// Backtrace (as std's RUST_BACKTRACE / RUST_LIB_BACKTRACE say)
// ---------------------------------------------------------------------------------------------

/// Whatever the environment says, a Failure captures a backtrace exactly when
/// `Backtrace::capture` does (both read the same, cached, environment).
#[test]
fn backtrace_follows_std_capture_setting() {
    let f = Failure::new(Timeout);
    let std_status = Backtrace::capture().status();
    assert_eq!(f.backtrace().status(), std_status);
    let debug = format!("{f:?}");
    assert_eq!(
        debug.contains("\nbacktrace:\n"),
        std_status == BacktraceStatus::Captured,
        "{debug}"
    );
    let from_chain = Deferred::<u32>::succeed(1)
        .add_callback(|_| Err::<u32, _>(Failure::new(Timeout)))
        .wait()
        .unwrap_err();
    assert_eq!(from_chain.backtrace().status(), std_status);
}

const PROBE_ENV: &str = "DEFERRED_FAILURE_BACKTRACE_PROBE";

/// Runs the probe below in a child process of this test binary with the given environment
/// (the environment of this process is left alone: tests run in parallel).
fn run_probe(expect: &str, lib_backtrace: &str) {
    let exe = std::env::current_exe().expect("test binary");
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "backtrace_probe_in_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(PROBE_ENV, expect)
        .env("RUST_BACKTRACE", "1")
        .env("RUST_LIB_BACKTRACE", lib_backtrace)
        .output()
        .expect("run the probe");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "probe failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("probe ran"),
        "the probe did not run"
    );
}

/// The child side of `backtrace_captured_when_enabled` / `backtrace_absent_when_disabled`;
/// does nothing when run directly.
#[test]
fn backtrace_probe_in_child() {
    let Ok(expect) = std::env::var(PROBE_ENV) else {
        return;
    };
    eprintln!("probe ran");
    let f = Deferred::<u32>::succeed(1)
        .add_callback(|_| Err::<u32, _>(Failure::new(Timeout)))
        .wait()
        .unwrap_err();
    let debug = format!("{f:?}");
    match expect.as_str() {
        "captured" => {
            assert_eq!(f.backtrace().status(), BacktraceStatus::Captured);
            assert!(debug.contains("\nbacktrace:\n"), "{debug}");
            // Where the failure was made, by name: a build with debug assertions (the test
            // profile) keeps this function's frame; an optimized one may inline it away.
            if cfg!(debug_assertions) {
                assert!(
                    debug.contains("backtrace_probe_in_child"),
                    "the backtrace shows where the failure was made: {debug}"
                );
            }
        }
        "disabled" => {
            assert_eq!(f.backtrace().status(), BacktraceStatus::Disabled);
            assert!(!debug.contains("backtrace:"), "{debug}");
        }
        other => panic!("unknown probe {other}"),
    }
}

#[test]
fn backtrace_captured_when_enabled() {
    run_probe("captured", "1");
}

#[test]
fn backtrace_absent_when_disabled() {
    run_probe("disabled", "0");
}

// ---------------------------------------------------------------------------------------------
// The errors the chain raises itself
// ---------------------------------------------------------------------------------------------

#[test]
fn cancelled_failure() {
    let f = Failure::cancelled();
    assert!(f.is_cancelled());
    assert!(f.is::<Cancelled>());
    assert_eq!(f.to_string(), Cancelled.to_string());
    assert!(f.to_string().contains("cancelled"));
}

#[test]
fn never_fired_failure() {
    let here = line!() + 1;
    let (d, r) = Deferred::<u32>::pending();
    drop(r);
    let f = d.wait().unwrap_err();
    let e = f.downcast_ref::<NeverFired>().expect("NeverFired");
    assert_eq!(
        (e.created_at().file(), e.created_at().line()),
        (file!(), here)
    );
    assert!(f.to_string().contains(&at(here)), "{f}");
    assert!(f.to_string().contains("never fired"), "{f}");
}

#[test]
fn panicked_failure_message_and_payload() {
    let n = std::hint::black_box(2); // a runtime argument: the payload is a `String`
    let f = Deferred::<u32>::succeed(1)
        .add_callback(move |_| -> Result<u32, Failure> { panic!("with {n} args") })
        .wait()
        .unwrap_err();
    let p = f.downcast_ref::<Panicked>().expect("Panicked");
    assert_eq!(p.message(), "with 2 args");
    assert!(format!("{p:?}").contains("with 2 args"));
    let payload = p.take_payload().expect("payload");
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("with 2 args")
    );
}

#[test]
fn timed_out_error() {
    let e = TimedOut::new(Duration::from_secs(10));
    assert_eq!(e.after(), Duration::from_secs(10));
    assert!(e.to_string().contains("10s"), "{e}");
    let f = Failure::new(e);
    assert!(f.is::<TimedOut>());
    assert!(!f.is_cancelled());
}

// ---------------------------------------------------------------------------------------------
// A custom error type: any E: From<Failure>
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
enum AppError {
    NotFound(String),
    Other(Failure),
}

impl From<Failure> for AppError {
    fn from(f: Failure) -> Self {
        AppError::Other(f)
    }
}

#[test]
fn custom_error_type_gets_panics_and_never_fired_as_failures() {
    let d = Deferred::<u32, AppError>::succeed(1)
        .add_callback(|_| -> Result<u32, AppError> { panic!("custom boom") });
    match d.wait().unwrap_err() {
        AppError::Other(f) => {
            assert_eq!(
                f.downcast_ref::<Panicked>().unwrap().message(),
                "custom boom"
            )
        }
        other => panic!("expected a wrapped Failure, got {other:?}"),
    }

    let (d, r) = Deferred::<u32, AppError>::pending();
    drop(r);
    match d.wait().unwrap_err() {
        AppError::Other(f) => assert!(f.is::<NeverFired>()),
        other => panic!("expected a wrapped Failure, got {other:?}"),
    }

    let d = Deferred::<u32, AppError>::fail(AppError::NotFound("ivy".into()))
        .add_callback(|v| Ok(v + 1))
        .add_errback(|e| match e {
            AppError::NotFound(who) => Ok(who.len() as u32),
            other => Err(other),
        });
    assert_eq!(d.wait().unwrap(), 3);
}

#[test]
fn a_failure_may_be_held_across_catch_unwind() {
    fn unwind_safe<X: std::panic::UnwindSafe + std::panic::RefUnwindSafe>(_: &X) {}
    let failure = Failure::msg("kept");
    unwind_safe(&failure);
    let message = std::panic::catch_unwind(|| failure.to_string()).unwrap();
    assert_eq!(message, "kept");
}

/// `{:#}` of a failure that went through a boxed error (`?` into `Box<dyn Error>`,
/// `io::Error::other(failure)`, `anyhow::Error::from(failure)`) and back said its sources twice:
/// the boxed error's `Display` passed `#` on to the failure, which said its sources itself, and
/// its `source()` gave them again.
mod alternate_display_says_each_source_once {
    use std::error::Error;

    use deferred::Failure;

    use super::layered;

    // A failure turned into an `io::Error` (`io::Error::other(failure)`, through the boxed-error
    // conversion) and back into a failure (`?` in a step): `{:#}` says each source once.
    #[test]
    fn alternate_display_of_a_failure_inside_an_io_error_says_each_source_once() {
        let io = std::io::Error::other(Failure::new(layered()));
        let failure = Failure::new(io);
        assert_eq!(
            format!("{failure:#}"),
            "lookup failed: connection reset: broken pipe"
        );
        assert_eq!(failure.to_string(), "lookup failed");
    }

    // The boxed error a failure becomes, formatted by code that walks its sources itself (as
    // anyhow's and eyre's reports do, and `{:#}` of a failure): its message is the message alone.
    #[test]
    fn alternate_display_of_a_boxed_failure_is_its_message_alone() {
        let boxed: Box<dyn Error + Send + Sync> = Failure::new(layered()).into();
        let mut report = format!("{boxed:#}");
        let mut source = boxed.source();
        while let Some(cause) = source {
            report.push_str(&format!(": {cause:#}"));
            source = cause.source();
        }
        assert_eq!(report, "lookup failed: connection reset: broken pipe");
    }

    // A failure shared (`SharedResult` consumers' copies) reads as the original: `{:#}` too.
    #[test]
    fn alternate_display_of_a_shared_copy_says_each_source_once() {
        let shared = Failure::new(std::io::Error::other(Failure::new(layered()))).share();
        assert_eq!(
            format!("{:#}", shared.to_failure()),
            "lookup failed: connection reset: broken pipe"
        );
    }
}

/// An error whose own `{:#}` says its sources (as `anyhow::Error`'s and `eyre`'s do): `{:#}`
/// and `{:?}` of a failure wrapping it (or a shared copy of one) say each source once. They
/// said the wrapped error's `{:#}` and then its sources again ("outer: inner: inner").
#[test]
fn alternate_display_says_each_source_once_for_an_error_whose_alternate_says_them() {
    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            if f.alternate() {
                write!(f, "outer: {:#}", self.0)
            } else {
                f.write_str("outer")
            }
        }
    }
    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }
    let failure = Failure::new(Outer(std::io::Error::other("inner")));
    assert_eq!(failure.to_string(), "outer");
    assert_eq!(format!("{failure:#}"), "outer: inner");
    assert_eq!(
        format!("{failure:?}").matches("inner").count(),
        1,
        "{failure:?}"
    );
    let shared = failure.share();
    assert_eq!(format!("{:#}", shared.to_failure()), "outer: inner");
    assert_eq!(format!("{shared:#}"), "outer");
    let group = Failure::new(deferred::FailureGroup::new(vec![shared.to_failure()]));
    assert_eq!(
        format!("{group:#}"),
        "all 1 inputs failed: #0: outer: inner"
    );
}

/// A combinator's failure that holds its inputs' (`gather_results`' `FirstError`, `race`'s
/// `FailureGroup`) says in `{:?}` (the unhandled report) where each input's failure was raised
/// and the steps it passed, each line led by its input's number: the report of an unhandled
/// `gather_results` failure names the places in the user's code.
#[test]
fn a_combinators_failure_says_where_its_inputs_failures_were_raised() {
    let raised = line!() + 1;
    let a = Deferred::<u32>::succeed(1).add_callback(|_| Err::<u32, _>(Failure::msg("in a")));
    let skipped = line!() + 1;
    let a = a.add_callback(|x| Ok(x + 1));
    let gathered = line!() + 1;
    let all = deferred::gather_results(vec![Deferred::succeed(0), a]).add_callback(|v| Ok(v.len()));
    let failure = all.wait().unwrap_err();
    let debug = format!("{failure:?}");
    let origin = debug
        .find(&format!("\n  input #1 raised at step {}", at(raised)))
        .unwrap_or_else(|| panic!("no input's origin: {debug}"));
    let passed = debug
        .find(&format!("\n  input #1 passed step {}", at(skipped)))
        .unwrap_or_else(|| panic!("no input's trail: {debug}"));
    let own = debug
        .find(&format!("\n  passed step {}", at(gathered)))
        .unwrap_or_else(|| panic!("no step of its own: {debug}"));
    assert!(origin < passed && passed < own, "in order: {debug}");
    assert_eq!(debug.matches("in a").count(), 1, "{debug}");

    let (b, resolver) = Deferred::<u32>::pending();
    let errback = line!() + 1;
    resolver.errback(Failure::msg("in b"));
    let a = Deferred::<u32>::succeed(1).add_callback(|_| Err::<u32, _>(Failure::msg("in a")));
    let failure = deferred::race(vec![a, b]).wait().unwrap_err();
    let debug = format!("{failure:?}");
    assert!(
        debug.contains(&format!("\n  input #0 raised at step {}", at(errback + 1))),
        "{debug}"
    );
    assert!(
        debug.contains(&format!(
            "\n  input #1 entered the chain at {}",
            at(errback)
        )),
        "{debug}"
    );
}

/// A failure `map_err`'s conversion makes (`map_err(Failure::new)` on a Deferred of a library's
/// error type) says it entered the chain at that `map_err`, pending or fired, as one a
/// Resolver's `errback` hands in does.
#[test]
fn a_failure_map_err_makes_entered_at_the_map_err() {
    #[derive(Debug)]
    enum DbError {
        NoRow,
        Chain(Failure),
    }
    impl fmt::Display for DbError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                DbError::NoRow => write!(f, "no row"),
                DbError::Chain(failure) => write!(f, "{failure}"),
            }
        }
    }
    impl std::error::Error for DbError {}
    impl From<Failure> for DbError {
        fn from(failure: Failure) -> DbError {
            DbError::Chain(failure)
        }
    }
    let (pending, resolver) = Deferred::<u32, DbError>::pending();
    let pending: Deferred<u32> = pending.map_err(Failure::new);
    let pending_line = line!() - 1;
    resolver.errback(DbError::NoRow);
    let fired: Deferred<u32> = Deferred::<u32, DbError>::fail(DbError::NoRow).map_err(Failure::new);
    let fired_line = line!() - 1;
    for (d, line) in [(pending, pending_line), (fired, fired_line)] {
        let failure = d.wait().unwrap_err();
        let at = failure.entered_at().map(|at| (at.file(), at.line()));
        assert_eq!(at, Some((file!(), line)), "{failure:?}");
        assert!(
            format!("{failure:?}").contains(", by map_err"),
            "{failure:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Deeply nested failures: dropped, formatted and reported in bounded stack
// ---------------------------------------------------------------------------------------------

/// How deep the nested failures below are: far more than a recursion per level fits in a
/// test thread's default stack (2 MiB).
const DEEP: usize = 100_000;

/// Runs `f` on a new thread with the default stack: a recursion per level of a deep failure
/// overflows it, which aborts the test binary.
fn on_a_default_stack<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    std::thread::spawn(f).join().unwrap()
}

/// `levels` `FirstError`s, each holding the next, around `root`.
fn nested_first_errors(levels: usize, root: Failure) -> Failure {
    let mut failure = root;
    for _ in 0..levels {
        failure = Failure::new(deferred::FirstError::new(0, failure));
    }
    failure
}

/// `levels` `FailureGroup`s of one failure each, around `root`.
fn nested_groups(levels: usize, root: Failure) -> Failure {
    let mut failure = root;
    for _ in 0..levels {
        failure = Failure::new(deferred::FailureGroup::new(vec![failure]));
    }
    failure
}

/// `levels` `FirstError`s, each holding a shared copy of the next (as a `SharedResult`'s
/// consumer has), around `root`.
fn nested_shared(levels: usize, root: Failure) -> Failure {
    let mut failure = root;
    for _ in 0..levels {
        failure = Failure::new(deferred::FirstError::new(0, failure.share().to_failure()));
    }
    failure
}

/// `{:?}` without the backtrace (`RUST_BACKTRACE` may ask for one).
fn debug_without_backtrace(failure: &Failure) -> String {
    let debug = format!("{failure:?}");
    match debug.split_once("\nbacktrace:\n") {
        Some((head, _)) => head.to_owned(),
        None => debug,
    }
}

#[test]
fn a_deep_failure_of_first_errors_drops_in_bounded_stack() {
    on_a_default_stack(|| drop(nested_first_errors(DEEP, Failure::msg("root"))));
}

#[test]
fn a_deep_failure_of_failure_groups_drops_in_bounded_stack() {
    on_a_default_stack(|| drop(nested_groups(DEEP, Failure::msg("root"))));
}

#[test]
fn a_deep_failure_of_shared_copies_drops_in_bounded_stack() {
    on_a_default_stack(|| drop(nested_shared(DEEP, Failure::msg("root"))));
    // A shared copy whose original another holder keeps: dropping the copy leaves it whole.
    on_a_default_stack(|| {
        let shared = nested_first_errors(3, Failure::msg("root")).share();
        drop(Failure::new(deferred::FirstError::new(
            1,
            shared.to_failure(),
        )));
        assert_eq!(
            shared.failure().to_string(),
            "input #0 failed: input #0 failed: input #0 failed: root"
        );
    });
}

/// `{}`, `{:#}` and `{:?}` show 32 levels of nested failures, then say how many more there
/// are; the root's sources still close `{:#}`.
#[test]
fn a_deep_failure_formats_32_levels_then_says_how_many_are_left_out() {
    let (display, alternate, debug) = on_a_default_stack(|| {
        let failure = nested_first_errors(DEEP, Failure::new(layered()));
        (
            failure.to_string(),
            format!("{failure:#}"),
            debug_without_backtrace(&failure),
        )
    });
    // 100,001 failures: levels 0 to 31 shown, 100,001 - 32 left out.
    let shown = format!(
        "{}... 99,969 more nested failures not shown",
        "input #0 failed: ".repeat(32)
    );
    assert_eq!(display, shown);
    assert_eq!(alternate, format!("{shown}: connection reset: broken pipe"));
    assert_eq!(
        debug,
        format!(
            "{alternate}\n  {}... 99,969 more nested failures not shown",
            "input #0 ".repeat(32)
        )
    );

    let groups = on_a_default_stack(|| nested_groups(DEEP, Failure::msg("root")).to_string());
    let one = "all 1 inputs failed: #0: ";
    assert_eq!(
        groups,
        format!(
            "{}... 99,969 more nested failures not shown",
            one.repeat(32)
        )
    );
    let shared = on_a_default_stack(|| nested_shared(DEEP, Failure::msg("root")).to_string());
    assert!(
        shared.starts_with(&"input #0 failed: ".repeat(32)),
        "{}",
        &shared[..600]
    );
    assert!(
        shared.ends_with(" more nested failures not shown"),
        "{}",
        &shared[shared.len() - 600..]
    );
}

/// The cut is at the 33rd level exactly: 32 levels are shown whole, as before.
#[test]
fn a_failure_32_levels_deep_formats_whole() {
    let whole = nested_first_errors(31, Failure::msg("root"));
    assert_eq!(
        whole.to_string(),
        format!("{}root", "input #0 failed: ".repeat(31))
    );
    let cut = nested_first_errors(32, Failure::msg("root"));
    assert_eq!(
        cut.to_string(),
        format!(
            "{}... 1 more nested failure not shown",
            "input #0 failed: ".repeat(32)
        )
    );
    // FirstError's own Display counts from its input: 32 failures are shown, as above.
    let first = deferred::FirstError::new(7, nested_first_errors(31, Failure::msg("root")));
    assert_eq!(
        first.to_string(),
        format!("input #7 failed: {}root", "input #0 failed: ".repeat(31))
    );
    let first = deferred::FirstError::new(7, nested_first_errors(32, Failure::msg("root")));
    assert_eq!(
        first.to_string(),
        format!(
            "input #7 failed: {}... 1 more nested failure not shown",
            "input #0 failed: ".repeat(32)
        )
    );
    // `{:?}`: the places of the input past 32 levels are left out, in one line.
    let cut = Deferred::<u32>::fail(nested_first_errors(32, Failure::msg("root")));
    let debug = debug_without_backtrace(&cut.wait().unwrap_err());
    let fail_line = line!() - 2;
    let expected = format!(
        "{}... 1 more nested failure not shown\n  {}... 1 more nested failure not shown\n  \
         entered the chain at {}",
        "input #0 failed: ".repeat(32),
        "input #0 ".repeat(32),
        at(fail_line),
    );
    assert!(debug.starts_with(&expected), "{debug}");
    assert!(debug.ends_with(", by fail"), "{debug}");
}

/// A deep failure's `source()`, `is_cancelled` and a user's error with a deep source chain.
#[test]
fn a_deep_failure_answers_questions_in_bounded_stack() {
    on_a_default_stack(|| {
        // `source()` takes one small frame a level: 400,000 levels overflowed.
        let failure = nested_first_errors(4 * DEEP, Failure::new(layered()));
        let source = failure.error().source().map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("connection reset"));
        assert!(!failure.is_cancelled());
        assert!(nested_first_errors(DEEP, Failure::cancelled()).is_cancelled());
        assert!(nested_groups(DEEP, Failure::cancelled()).is_cancelled());
        assert!(nested_shared(DEEP, Failure::cancelled()).is_cancelled());
        assert!(!nested_groups(DEEP, Failure::msg("root")).is_cancelled());
    });
}

/// A user's error whose `source()` chain is `DEEP` long: `{:#}` walks it without recursion.
#[test]
fn a_users_deep_source_chain_formats_in_bounded_stack() {
    #[derive(Debug)]
    struct Deep {
        level: usize,
        next: Option<Box<Deep>>,
    }
    impl Drop for Deep {
        // Its own drop would recurse: unlink the chain first.
        fn drop(&mut self) {
            let mut next = self.next.take();
            while let Some(mut deep) = next {
                next = deep.next.take();
            }
        }
    }
    impl fmt::Display for Deep {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "level {}", self.level)
        }
    }
    impl Error for Deep {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.next.as_deref().map(|e| e as &(dyn Error + 'static))
        }
    }
    let alternate = on_a_default_stack(|| {
        let mut deep = Deep {
            level: DEEP - 1,
            next: None,
        };
        for level in (0..DEEP - 1).rev() {
            deep = Deep {
                level,
                next: Some(Box::new(deep)),
            };
        }
        let failure = Failure::new(deferred::FirstError::new(2, Failure::new(deep)));
        (format!("{failure:#}"), debug_without_backtrace(&failure))
    });
    let (alternate, debug) = alternate;
    assert!(alternate.starts_with("input #2 failed: level 0: level 1: level 2"));
    assert!(alternate.ends_with(&format!(": level {}", DEEP - 1)));
    assert_eq!(debug, alternate);
}

/// An unhandled deep failure is reported (its `Debug` form on stderr, here) without
/// overflowing, and one a capture takes is dropped with it.
#[test]
fn a_deep_unhandled_failure_is_reported_in_bounded_stack() {
    on_a_default_stack(|| {
        drop(Deferred::<u32>::fail(nested_first_errors(
            DEEP,
            Failure::msg("deep unhandled failure (expected in this test's output)"),
        )));
    });
    let debug = on_a_default_stack(|| {
        let ((), reported) = deferred::capture_unhandled(|| {
            drop(Deferred::<u32>::fail(nested_groups(
                DEEP,
                Failure::msg("root"),
            )));
        });
        assert_eq!(reported.len(), 1);
        debug_without_backtrace(&reported[0])
    });
    let lines: Vec<&str> = debug.lines().collect();
    assert_eq!(lines.len(), 3, "{debug}");
    assert!(
        lines[0].ends_with("#0: ... 99,969 more nested failures not shown"),
        "{debug}"
    );
    assert_eq!(
        lines[1],
        format!(
            "  {}... 99,969 more nested failures not shown",
            "input #0 ".repeat(32)
        )
    );
    assert!(lines[2].starts_with("  entered the chain at "), "{debug}");
    assert!(lines[2].ends_with(", by fail"), "{debug}");
}

/// Failures nested by the combinators themselves: `gather_results` and `race` in each other,
/// deep enough to overflow a recursion per level, with the steps each level passed.
#[test]
fn a_failure_nested_by_real_combinators_is_dropped_and_formatted_in_bounded_stack() {
    const LEVELS: usize = 20_000;
    let (display, debug) = on_a_default_stack(|| {
        let mut d =
            Deferred::<u32>::succeed(1).add_callback(|_| Err::<u32, _>(Failure::msg("root")));
        for level in 0..LEVELS {
            d = if level % 2 == 0 {
                deferred::gather_results([d]).add_callback(|values: Vec<u32>| Ok(values[0]))
            } else {
                deferred::race([d]).add_callback(|(_, value): (usize, u32)| Ok(value))
            };
        }
        let failure = d.wait().unwrap_err();
        (failure.to_string(), debug_without_backtrace(&failure))
    });
    let head = "all 1 inputs failed: #0: input #0 failed: ".repeat(16);
    assert_eq!(
        display,
        format!("{head}... 19,969 more nested failures not shown")
    );
    assert!(debug.starts_with(&format!("{display}\n  ")), "{debug}");
    assert!(
        debug.contains(&format!(
            "{}... 19,969 more nested failures not shown",
            "input #0 ".repeat(32)
        )),
        "{debug}"
    );
}

/// A user's canceller that fires another chain runs that chain's steps: a library's own cancel
/// a step makes there (dropping the last handle of a `SharedResult`, which cancels its source)
/// has no place, not the outer cancel's.
#[test]
fn a_library_cancel_in_a_step_run_by_a_canceller_takes_no_outer_place() {
    use deferred::{DeferredQueue, SharedResult};
    use std::sync::{Arc, Mutex};

    let seen = Arc::new(Mutex::new(Vec::<Option<&'static Location<'static>>>::new()));
    let queue = DeferredQueue::<u32>::new();
    let source = queue.get().add_errback({
        let seen = seen.clone();
        move |failure: Failure| {
            seen.lock().unwrap().push(failure.entered_at());
            Err::<u32, _>(failure)
        }
    });
    let shared = SharedResult::new(source);
    let (other, other_resolver) = Deferred::<u32>::pending();
    let other = other.add_callback(move |n| {
        drop(shared); // the last handle, no consumer: the source is cancelled
        Ok(n)
    });
    let (outer, resolver) = Deferred::<u32>::pending();
    resolver.set_canceller(move || other_resolver.callback(1));
    outer.cancel();
    assert!(outer.wait().unwrap_err().is_cancelled());
    assert_eq!(other.wait().unwrap(), 1);
    let seen = seen.lock().unwrap();
    assert_eq!(*seen, [None], "the outer cancel's place leaked");
    drop(resolver);
}
