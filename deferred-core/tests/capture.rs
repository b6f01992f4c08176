//! Scoped capture of unhandled failures: per thread, nested, restored by unwinding, and the
//! guard that fails a test.
//!
//! Every test here captures on its own thread, except `a_chain_fired_on_another_thread_*`,
//! which is about the global hook receiving another thread's report: it sets the hook, and
//! records only the failures carrying its own marker.

use std::panic::catch_unwind;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;

use deferred_core::{
    Deferred, Failure, NoUnhandled, UnhandledCapture, capture_unhandled, expect_no_unhandled,
    restore_unhandled_hook, set_unhandled_hook,
};

fn messages(failures: &[Failure]) -> Vec<String> {
    failures.iter().map(|f| f.to_string()).collect()
}

/// Drops a chain that failed with `message`: reported on this thread, now.
fn abandon(message: &str) {
    drop(Deferred::<u32>::fail(Failure::msg(message.to_owned())));
}

/// The text of a panic payload.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else {
        String::from("<not a string>")
    }
}

#[test]
fn eight_threads_each_capture_exactly_their_own_failures() {
    const THREADS: usize = 8;
    // Every thread is inside its capture before any reports, and reports before any ends.
    let started = Arc::new(Barrier::new(THREADS));
    let reported = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|n| {
            let (started, reported) = (started.clone(), reported.clone());
            thread::spawn(move || {
                let ((), failures) = capture_unhandled(|| {
                    started.wait();
                    let (d, resolver) = Deferred::<u32>::pending();
                    drop(d.add_callback(|v| Ok(v + 1)));
                    resolver.errback(Failure::msg(format!("capture thread {n}")));
                    abandon(&format!("capture thread {n} again"));
                    reported.wait();
                });
                messages(&failures)
            })
        })
        .collect();
    for (n, thread) in threads.into_iter().enumerate() {
        let seen = thread.join().unwrap();
        assert_eq!(
            seen,
            [
                format!("capture thread {n}"),
                format!("capture thread {n} again")
            ]
        );
    }
}

#[test]
fn the_innermost_capture_receives_and_what_it_leaves_goes_to_the_outer() {
    let outer = UnhandledCapture::start();
    abandon("to outer 1");
    {
        let inner = UnhandledCapture::start();
        abandon("to inner, taken");
        assert!(outer.len() == 1, "the innermost capture wins");
        assert_eq!(messages(&inner.take()), ["to inner, taken"]);
        abandon("to inner, left");
        {
            let (_, innermost) = capture_unhandled(|| abandon("to the closure"));
            assert_eq!(messages(&innermost), ["to the closure"]);
        }
        assert_eq!(inner.len(), 1, "the closure's capture kept its own");
    }
    abandon("to outer 2");
    assert_eq!(
        messages(&outer.finish()),
        ["to outer 1", "to inner, left", "to outer 2"],
        "an ended capture's untaken failures go on to the enclosing one; taken ones do not"
    );
}

#[test]
fn captures_dropped_out_of_order_each_leave_the_stack() {
    let outer = UnhandledCapture::start();
    let first = UnhandledCapture::start();
    let second = UnhandledCapture::start();
    drop(first);
    abandon("to second");
    assert_eq!(messages(&second.finish()), ["to second"]);
    abandon("to outer");
    assert_eq!(messages(&outer.finish()), ["to outer"]);
}

#[test]
fn a_capture_ended_by_unwinding_restores_the_outer_capture() {
    let outer = UnhandledCapture::start();
    let unwound = catch_unwind(|| {
        capture_unhandled(|| {
            abandon("before the panic");
            panic!("the test body panicked");
        })
    });
    assert_eq!(panic_text(&*unwound.unwrap_err()), "the test body panicked");
    abandon("after the panic");
    assert_eq!(
        messages(&outer.finish()),
        ["before the panic", "after the panic"],
        "the unwound capture passed its failure on, and the outer one receives again"
    );
}

#[test]
fn no_unhandled_does_not_panic_again_while_unwinding() {
    let outer = UnhandledCapture::start();
    let unwound = catch_unwind(|| {
        expect_no_unhandled(|| {
            abandon("found while unwinding");
            panic!("the first panic");
        })
    });
    // A second panic in the guard's drop would have aborted the process; the first one goes on.
    assert_eq!(panic_text(&*unwound.unwrap_err()), "the first panic");
    assert_eq!(messages(&outer.finish()), ["found while unwinding"]);
}

#[test]
fn no_unhandled_panics_with_the_failures_message_origin_and_trail() {
    let origin_line = line!() + 4;
    let checked = catch_unwind(|| {
        let guard = NoUnhandled::start();
        let d = Deferred::<u32>::succeed(1)
            .add_callback(|_| -> Result<u32, Failure> { Err(Failure::msg("raised by a step")) });
        let d = d.add_callback(|v| Ok(v + 1));
        drop(d);
        drop(guard);
    });
    let text = panic_text(&*checked.unwrap_err());
    assert!(text.contains("1 unhandled failure reported"), "{text}");
    assert!(text.contains("raised by a step"), "{text}");
    assert!(
        text.contains(&format!("raised at step {}:{origin_line}:", file!())),
        "the origin: {text}"
    );
    assert!(
        text.contains(&format!("passed step {}:{}:", file!(), origin_line + 1)),
        "the trail: {text}"
    );
}

/// An error whose `Display` panics.
#[derive(Debug)]
struct ShowPanics;

impl std::fmt::Display for ShowPanics {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        panic!("the display panicked")
    }
}

impl std::error::Error for ShowPanics {}

/// A failure whose `Display` panics: the guard still panics with what it found (the count, the
/// failure said to be unshowable, where it was raised), not with the formatting's panic.
#[test]
fn no_unhandled_describes_a_failure_whose_display_panics() {
    let origin_line = line!() + 4;
    let checked = catch_unwind(|| {
        let guard = NoUnhandled::start();
        let d = Deferred::<u32>::succeed(1)
            .add_callback(|_| -> Result<u32, Failure> { Err(Failure::new(ShowPanics)) });
        drop(d);
        drop(guard);
    });
    let text = panic_text(&*checked.unwrap_err());
    assert!(text.contains("1 unhandled failure reported"), "{text}");
    assert!(text.contains("could not be shown"), "{text}");
    assert!(text.contains("the display panicked"), "{text}");
    assert!(
        text.contains(&format!("raised at step {}:{origin_line}:", file!())),
        "the origin: {text}"
    );
}

#[test]
fn no_unhandled_lists_every_failure_and_spares_the_taken_ones() {
    let checked = catch_unwind(|| {
        let guard = NoUnhandled::start();
        abandon("expected by the test");
        assert_eq!(messages(&guard.take()), ["expected by the test"]);
        abandon("left one");
        abandon("left two");
    });
    let text = panic_text(&*checked.unwrap_err());
    assert!(text.starts_with("2 unhandled failures reported"), "{text}");
    assert!(text.contains("[1] left one"), "{text}");
    assert!(text.contains("[2] left two"), "{text}");
    assert!(!text.contains("expected by the test"), "{text}");
}

#[test]
fn expect_no_unhandled_returns_the_value_when_every_failure_was_handled() {
    let n = expect_no_unhandled(|| {
        let (d, resolver) = Deferred::<u32>::pending();
        let d = d.add_errback(|_| Ok(5));
        resolver.errback(Failure::msg("handled"));
        d.wait().unwrap()
    });
    assert_eq!(n, 5);
}

#[test]
fn a_capture_on_the_firing_thread_sees_what_that_thread_reports() {
    let (d, resolver) = Deferred::<u32>::pending();
    let ((), here) = capture_unhandled(|| drop(d.add_callback(|v| Ok(v + 1))));
    assert!(here.is_empty(), "dropping a pending chain reports nothing");
    let there = thread::spawn(move || {
        capture_unhandled(|| resolver.errback(Failure::msg("fired over there"))).1
    })
    .join()
    .unwrap();
    assert_eq!(messages(&there), ["fired over there"]);
}

/// About the global hook: a chain fired on another thread reports there, so the test thread's
/// capture does not see it and the hook (that thread has no capture) does.
#[test]
fn a_chain_fired_on_another_thread_reports_to_the_hook_not_to_this_threads_capture() {
    const MARKER: &str = "fired on a thread with no capture";
    let hooked = Arc::new(Mutex::new(Vec::new()));
    let log = hooked.clone();
    let previous = set_unhandled_hook(move |f: &Failure| {
        if f.to_string() == MARKER {
            log.lock().unwrap().push(f.to_string());
        }
    });
    let (d, resolver) = Deferred::<u32>::pending();
    let capture = UnhandledCapture::start();
    drop(d.add_callback(|v| Ok(v + 1)));
    thread::spawn(move || resolver.errback(Failure::msg(MARKER)))
        .join()
        .unwrap();
    assert!(capture.finish().is_empty(), "not reported on this thread");
    restore_unhandled_hook(previous);
    assert_eq!(*hooked.lock().unwrap(), [MARKER]);
}

#[test]
fn a_captures_debug_shows_its_count() {
    let capture = UnhandledCapture::start();
    abandon("counted");
    assert_eq!(format!("{capture:?}"), "UnhandledCapture { failures: 1 }");
    assert_eq!(capture.take().len(), 1);
}
