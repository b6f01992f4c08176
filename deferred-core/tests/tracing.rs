//! Feature `tracing`: an unhandled failure, with no capture and no custom hook, is an
//! error-level `tracing` event carrying its message, origin and trail; a capture still comes
//! first. A tiny `Subscriber`, set as this thread's default, records the events.
//!
//! The tracing path is taken only when no global hook is set: every test here takes `SERIAL`,
//! so the one that sets a hook does not run beside the others.
#![cfg(feature = "tracing")]

mod support;

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deferred_core::{
    Deferred, Failure, ManualClock, capture_unhandled, restore_unhandled_hook, set_unhandled_hook,
};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// One recorded event: its level and its fields, as text.
#[derive(Debug, Default)]
struct Recorded {
    level: Option<Level>,
    target: String,
    fields: Vec<(String, String)>,
}

impl Recorded {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Records the events it sees; the chain's own trace-level events (target `deferred`) only when
/// `.1` is set, so the tests of unhandled failures see those alone.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Recorded>>>, bool);

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        if *event.metadata().level() == Level::TRACE && !self.1 {
            return;
        }
        let mut recorded = Recorded {
            level: Some(*event.metadata().level()),
            target: event.metadata().target().to_owned(),
            ..Recorded::default()
        };
        event.record(&mut Fields(&mut recorded.fields));
        self.0.lock().unwrap().push(recorded);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn an_unhandled_failure_is_an_error_event_with_message_origin_and_trail() {
    let _serial = serial();
    let recorder = Recorder::default();
    let events = recorder.0.clone();
    let origin_line = line!() + 3;
    tracing::subscriber::with_default(recorder, || {
        let d = Deferred::<u32>::succeed(1)
            .add_callback(|_| -> Result<u32, Failure> { Err(Failure::msg("traced failure")) })
            .add_callback(|v| Ok(v + 1))
            .add_callback(|v| Ok(v + 1));
        drop(d);
    });
    let events = events.lock().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event.level, Some(Level::ERROR));
    assert_eq!(event.field("message"), Some("Unhandled error in Deferred"));
    assert_eq!(event.field("error"), Some("traced failure"));
    let origin = event.field("origin").expect("an origin");
    assert!(
        origin.starts_with(&format!("{}:{origin_line}:", file!())),
        "{origin}"
    );
    let trail = event.field("trail").expect("a trail");
    let steps: Vec<&str> = trail.split("; ").collect();
    assert_eq!(steps.len(), 2, "{trail}");
    assert!(steps[0].starts_with(&format!("{}:{}:", file!(), origin_line + 1)));
    assert!(steps[1].starts_with(&format!("{}:{}:", file!(), origin_line + 2)));
}

#[test]
fn a_failure_with_no_origin_has_no_origin_field_and_an_empty_trail() {
    let _serial = serial();
    let recorder = Recorder::default();
    let events = recorder.0.clone();
    tracing::subscriber::with_default(recorder, || {
        drop(Deferred::<u32>::fail(Failure::msg(
            "raised outside any step",
        )));
    });
    let events = events.lock().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].field("error"), Some("raised outside any step"));
    assert_eq!(events[0].field("origin"), None);
    assert_eq!(events[0].field("trail"), Some(""));
}

#[test]
fn a_capture_comes_before_tracing() {
    let _serial = serial();
    let recorder = Recorder::default();
    let events = recorder.0.clone();
    let ((), captured) = tracing::subscriber::with_default(recorder, || {
        capture_unhandled(|| drop(Deferred::<u32>::fail(Failure::msg("captured"))))
    });
    assert_eq!(captured.len(), 1);
    assert!(
        events.lock().unwrap().is_empty(),
        "no event for a captured failure"
    );
}

#[test]
fn a_custom_hook_comes_before_tracing() {
    let _serial = serial();
    let hooked = Arc::new(Mutex::new(Vec::new()));
    let log = hooked.clone();
    let previous = set_unhandled_hook(move |f: &Failure| log.lock().unwrap().push(f.to_string()));
    let recorder = Recorder::default();
    let events = recorder.0.clone();
    tracing::subscriber::with_default(recorder, || {
        drop(Deferred::<u32>::fail(Failure::msg("hooked")));
    });
    restore_unhandled_hook(previous);
    assert_eq!(*hooked.lock().unwrap(), ["hooked"]);
    assert!(
        events.lock().unwrap().is_empty(),
        "no event for a hooked failure"
    );
}

#[test]
fn a_chains_life_is_traced_at_trace_level() {
    let _serial = serial();
    let recorder = Recorder(Arc::default(), true);
    let events = recorder.0.clone();
    tracing::subscriber::with_default(recorder, || {
        let (d, resolver) = Deferred::<u32>::pending();
        let d = d.add_callback(|v| Ok(v + 1)).add_callback(|v| Ok(v * 2));
        resolver.callback(1);
        assert_eq!(d.wait().unwrap(), 4);
    });
    let events = events.lock().unwrap();
    let messages: Vec<&str> = events
        .iter()
        .filter(|e| e.level == Some(Level::TRACE))
        .filter_map(|e| e.field("message"))
        .collect();
    assert_eq!(
        messages,
        [
            "chain created",
            "fired",
            "step",
            "step",
            "chain fired: every step ran"
        ],
        "{events:?}"
    );
    let created = events
        .iter()
        .find(|e| e.field("message") == Some("chain created"))
        .and_then(|e| e.field("created_at"))
        .expect("where the chain was created");
    assert!(created.starts_with(file!()), "{created}");
}

/// README (feature `tracing`): a chain's life — "made, fired, each step, waits, cancels" — as
/// trace-level events, and the failures nobody handled as error events, "both with target
/// `deferred`".
#[test]
fn a_wait_and_a_cancel_are_traced_and_every_event_has_target_deferred() {
    let _serial = serial();
    let recorder = Recorder(Arc::default(), true);
    let events = recorder.0.clone();
    tracing::subscriber::with_default(recorder, || {
        let (inner, _inner_resolver) = Deferred::<u32>::pending();
        let (d, resolver) = Deferred::<u32>::pending();
        let d = d.add_callback(move |_| inner).add_callback(|v| Ok(v + 1));
        resolver.callback(1); // the chain now waits on `inner`
        d.cancel();
        drop(d); // its cancellation, unhandled: an error event
    });
    let events = events.lock().unwrap();
    let messages: Vec<&str> = events.iter().filter_map(|e| e.field("message")).collect();
    for expected in [
        "waiting on another chain",
        "cancel",
        "Unhandled error in Deferred",
    ] {
        assert!(
            messages.contains(&expected),
            "no {expected:?} in {messages:?}"
        );
    }
    assert!(events.iter().all(|e| e.target == "deferred"), "{events:?}");
}

/// `try_fire` is a fire like `callback`'s: its trace shows it.
#[test]
fn try_fire_is_traced_as_a_fire() {
    let _serial = serial();
    let messages = trace_messages(|| {
        let (d, resolver) = Deferred::<u32>::pending();
        assert!(resolver.try_fire(Ok(1)).is_ok());
        assert_eq!(d.wait().unwrap(), 1);
    });
    assert_eq!(
        messages,
        ["chain created", "fired", "chain fired: every step ran"]
    );
}

/// A `try_fire` given back (its Deferred dropped) says so after its "fired".
#[test]
fn a_refused_try_fire_is_traced_as_refused() {
    let _serial = serial();
    let messages = trace_messages(|| {
        let (d, resolver) = Deferred::<u32>::pending();
        drop(d);
        assert!(resolver.try_fire(Ok(1)).is_err());
    });
    assert_eq!(
        messages,
        [
            "chain created",
            "fired",
            "fire refused: the chain was cancelled, or nobody can see it"
        ]
    );
}

/// A `DeferredQueue::get` fired by a `put` is traced as every other fire is: its "fired" event
/// says where the chain was made and that it was a success (it had neither field: a subscriber
/// could not tell which chain fired, nor how).
#[test]
fn a_queue_get_fired_by_a_put_is_traced_with_where_and_how() {
    let _serial = serial();
    let recorder = Recorder(Arc::default(), true);
    let events = recorder.0.clone();
    tracing::subscriber::with_default(recorder, || {
        let queue = deferred_core::DeferredQueue::<u32>::new();
        let got = queue.get();
        queue.put(1).unwrap();
        assert_eq!(got.wait().unwrap(), 1);
    });
    let events = events.lock().unwrap();
    let fired: Vec<&Recorded> = events
        .iter()
        .filter(|e| e.field("message") == Some("fired"))
        .collect();
    assert_eq!(fired.len(), 1, "{events:?}");
    let created_at = fired[0].field("created_at").unwrap_or_default();
    assert!(created_at.starts_with(file!()), "{events:?}");
    assert_eq!(fired[0].field("ok"), Some("true"), "{events:?}");
}

/// `add_timeout` on a pending chain puts the steps added after it in a new link: its creation is
/// traced, at the user's call, as every other chain's is.
#[test]
fn the_link_add_timeout_makes_is_traced_as_created() {
    let _serial = serial();
    let recorder = Recorder(Arc::default(), true);
    let events = recorder.0.clone();
    tracing::subscriber::with_default(recorder, || {
        let clock = ManualClock::new();
        let (d, resolver) = Deferred::<u32>::pending();
        let d = d.add_timeout(Duration::from_secs(1), &clock);
        resolver.callback(1);
        assert_eq!(d.wait().unwrap(), 1);
    });
    let events = events.lock().unwrap();
    let created: Vec<&str> = events
        .iter()
        .filter(|e| e.field("message") == Some("chain created"))
        .filter_map(|e| e.field("created_at"))
        .collect();
    assert_eq!(created.len(), 2, "{events:?}");
    assert!(
        created.iter().all(|at| at.starts_with(file!())),
        "{created:?}"
    );
    let fired_in_full = events
        .iter()
        .filter(|e| e.field("message") == Some("chain fired: every step ran"))
        .count();
    assert_eq!(fired_in_full, 2, "{events:?}");
}

/// The messages of the trace-level events `run` makes.
fn trace_messages(run: impl FnOnce()) -> Vec<String> {
    let recorder = Recorder(Arc::default(), true);
    let events = recorder.0.clone();
    tracing::subscriber::with_default(recorder, run);
    let events = events.lock().unwrap();
    events
        .iter()
        .filter(|e| e.level == Some(Level::TRACE))
        .filter_map(|e| e.field("message"))
        .map(str::to_owned)
        .collect()
}

/// The "step" events of `chain!`'s run of `then`s and the `catch` after it (as the macro expands
/// them: `__add_callbacks_then`), whose run waits on a pending Deferred: one for the run, one for
/// each step of the Deferred it waits on, one for the `catch`, whether the chain's start had fired
/// when the run was added or fired later. (The `catch` waits as a stage of its own while the run's
/// outcome is pending; that stage is not a step.)
#[test]
fn a_run_and_its_catch_trace_the_same_steps_on_a_fired_and_a_pending_start() {
    fn steps_traced(start_fired: bool) -> usize {
        let recorder = Recorder(Arc::default(), true);
        let events = recorder.0.clone();
        tracing::subscriber::with_default(recorder, || {
            let (start, started) = Deferred::<u32>::pending();
            let mut started = Some(started);
            if start_fired && let Some(started) = started.take() {
                started.callback(1);
            }
            let (inner, answered) = Deferred::<u32>::pending();
            let d = start.__add_callbacks_then(
                move |x| inner.add_callback(move |y| Ok(x + y)),
                || &[],
                |outcome| outcome.add_errback(|_| Ok::<u32, Failure>(0)),
                std::panic::Location::caller(),
            );
            if let Some(started) = started.take() {
                started.callback(1);
            }
            answered.callback(10);
            assert_eq!(d.wait().unwrap(), 11);
        });
        let events = events.lock().unwrap();
        events
            .iter()
            .filter(|e| e.field("message") == Some("step"))
            .count()
    }
    let _serial = serial();
    assert_eq!(steps_traced(true), 3, "the run, the inner step, the catch");
    assert_eq!(steps_traced(false), 3, "the run, the inner step, the catch");
}

/// The child side of `with_no_subscriber_an_unhandled_failure_is_still_printed`: a failure
/// nobody handles, in a process with no subscriber. Does nothing when run directly.
#[test]
fn unhandled_with_no_subscriber_in_child() {
    if std::env::var_os("DEFERRED_NO_SUBSCRIBER_PROBE").is_none() {
        return;
    }
    drop(deferred_core::Deferred::<u32>::fail(
        deferred_core::Failure::msg("nobody subscribed"),
    ));
}

/// With the feature on and no subscriber set (a dependency turned the feature on; the program
/// never installed one), a failure nobody handled is printed on stderr as without the feature,
/// not sent to no one.
#[test]
fn with_no_subscriber_an_unhandled_failure_is_still_printed() {
    let stderr = support::stderr_of_child(
        "unhandled_with_no_subscriber_in_child",
        "DEFERRED_NO_SUBSCRIBER_PROBE",
    );
    assert!(
        stderr.contains("Unhandled error in Deferred:\nnobody subscribed"),
        "{stderr}"
    );
}

/// The `step` and `step panicked` events of `events`: each one's step, as its line less
/// `first`, its message and its `input_ok`.
fn step_events(events: &[Recorded], first: u32) -> Vec<(u32, String, Option<String>)> {
    events
        .iter()
        .filter(|e| matches!(e.field("message"), Some("step" | "step panicked")))
        .map(|e| {
            let step = e.field("step").unwrap_or_default();
            assert!(step.starts_with(file!()), "{events:?}");
            let line: u32 = step.split(':').nth(1).and_then(|l| l.parse().ok()).unwrap();
            (
                line - first,
                e.field("message").unwrap_or_default().to_owned(),
                e.field("input_ok").map(str::to_owned),
            )
        })
        .collect()
}

/// What a chain's steps trace, as lines from its first step: a step that a failure skips is
/// run too and says `input_ok=false`, an errback handed a failure says so too, a panicking step
/// is a `step panicked` event at its place, and a wait on another chain is traced.
fn expected_steps() -> Vec<(u32, String, Option<String>)> {
    let (t, f) = (Some("true".to_owned()), Some("false".to_owned()));
    vec![
        (0, "step".into(), t.clone()),
        (1, "step".into(), f.clone()),
        (2, "step".into(), f.clone()),
        (3, "step".into(), t),
        (3, "step panicked".into(), None),
        (4, "step".into(), f),
    ]
}

/// README (feature `tracing`): "each step" of a chain's life, for both kinds; trace.rs: "a step
/// that a failure skips is run too, and says `input_ok=false`".
#[test]
fn a_skipped_step_says_input_ok_false_and_a_panic_is_traced_in_both_kinds() {
    let _serial = serial();
    let recorder = Recorder(Arc::default(), true);
    let events = recorder.0.clone();
    let first = line!() + 5;
    tracing::subscriber::with_default(recorder, || {
        let (inner, inner_resolver) = Deferred::<u32>::pending();
        let (d, resolver) = Deferred::<u32>::pending();
        let d = d
            .add_callback(|_| Err::<u32, _>(Failure::msg("refused"))) // raises
            .add_callback(|v| Ok(v + 1)) // skipped
            .add_errback(move |_| inner) // handed the failure: waits on `inner`
            .add_callback(|_| -> Result<u32, Failure> { panic!("step panics") })
            .add_errback(|_| Ok(0));
        resolver.callback(1);
        inner_resolver.callback(2);
        assert_eq!(d.wait().unwrap(), 0);
    });
    let events = std::mem::take(&mut *events.lock().unwrap());
    assert_eq!(step_events(&events, first), expected_steps(), "{events:?}");
    let waited = |e: &Recorded| e.field("message") == Some("waiting on another chain");
    assert!(events.iter().any(waited), "{events:?}");

    let recorder = Recorder(Arc::default(), true);
    let events = recorder.0.clone();
    let first = line!() + 5;
    tracing::subscriber::with_default(recorder, || {
        let (inner, inner_resolver) = deferred_core::LocalDeferred::<u32>::pending();
        let (d, resolver) = deferred_core::LocalDeferred::<u32>::pending();
        let d = d
            .add_callback(|_| Err::<u32, _>(Failure::msg("refused"))) // raises
            .add_callback(|v| Ok(v + 1)) // skipped
            .add_errback(move |_| inner) // handed the failure: waits on `inner`
            .add_callback(|_| -> Result<u32, Failure> { panic!("step panics") })
            .add_errback(|_| Ok(0));
        resolver.callback(1);
        inner_resolver.callback(2);
        assert_eq!(d.wait().unwrap(), 0);
    });
    let events = std::mem::take(&mut *events.lock().unwrap());
    assert_eq!(step_events(&events, first), expected_steps(), "{events:?}");
    assert!(events.iter().any(waited), "{events:?}");
}
