//! Run-time misuse: what a user sees when they use the API wrongly — a message that says what is
//! wrong and what to do instead, at the user's line.

mod support;

use std::cell::RefCell;
use std::future::Future;
use std::panic::{AssertUnwindSafe, Location, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Waker};
use std::time::Duration;

use deferred_core::{DeferredSemaphore, Failure, LoopingCall, ManualClock, RetryPolicy};

std::thread_local! {
    /// Where the last panic on this thread was raised (file, line), as the panic hook saw it.
    static PANICKED_AT: RefCell<Option<(String, u32)>> = const { RefCell::new(None) };
}

/// Runs `f`, which must panic; gives its message and where it panicked. The hook records the
/// place for this thread only, so tests that run at once on other threads do not disturb it.
fn panic_of(f: impl FnOnce()) -> (String, Option<(String, u32)>) {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let at = info.location().map(|l| (l.file().to_owned(), l.line()));
            PANICKED_AT.with(|p| *p.borrow_mut() = at);
            default(info);
        }));
    });
    PANICKED_AT.with(|p| *p.borrow_mut() = None);
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("it should panic");
    let message = support::panic_text(&*payload);
    let at = PANICKED_AT.with(|p| p.borrow_mut().take());
    (message, at)
}

/// The line after the caller's: where the call under test is written.
#[track_caller]
fn next_line() -> (String, u32) {
    lines_down(1)
}

/// The line `n` lines below the caller's.
#[track_caller]
fn lines_down(n: u32) -> (String, u32) {
    let here = Location::caller();
    (here.file().to_owned(), here.line() + n)
}

/// The caller's place (file, line). In the tests `both_kinds!` makes, every line is the macro's
/// call: the place a panic at the user's line has there too.
#[track_caller]
fn this_line() -> (String, u32) {
    let here = Location::caller();
    (here.file().to_owned(), here.line())
}

/// A Display that panics: the user's bug, met by the crate when it reports the failure.
#[derive(Debug)]
struct PanickyDisplay;

impl std::fmt::Display for PanickyDisplay {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        panic!("the Display of PanickyDisplay panics")
    }
}

impl std::error::Error for PanickyDisplay {}

macro_rules! both_kinds {
    ($m:ident, $D:ident) => {
        mod $m {
            use super::*;
            use deferred_core::$D as D;

            /// A Deferred whose result was taken by a poll.
            fn spent() -> D<u32> {
                let mut d = D::<u32>::succeed(1);
                let mut cx = Context::from_waker(Waker::noop());
                assert!(Pin::new(&mut d).poll(&mut cx).is_ready());
                d
            }

            /// `add_callback` and `add_both` on a spent Deferred panicked inside the crate
            /// (`add_callback_at`, `add_both_at` were not `#[track_caller]`), where
            /// `add_errback` and `add_callbacks` panic at the user's line.
            #[test]
            fn an_add_on_a_spent_deferred_panics_at_the_users_line() {
                let d = spent();
                let line = this_line();
                let (message, at) = panic_of(move || drop(d.add_callback(|x| Ok(x + 1))));
                assert!(message.contains("already taken"), "{message}");
                assert_eq!(at, Some(line), "add_callback");

                let d = spent();
                let line = this_line();
                let (_, at) = panic_of(move || drop(d.add_both(|r: Result<u32, Failure>| r)));
                assert_eq!(at, Some(line), "add_both");

                let d = spent();
                let line = this_line();
                let (_, at) = panic_of(move || drop(d.add_errback(|f: Failure| Err(f))));
                assert_eq!(at, Some(line), "add_errback");
            }

            /// A failure nobody handled, whose error's `Display` panics, is reported by the
            /// default report, which formats it: the panic got out of the Deferred's `Drop`
            /// (the fallback formatted the failure again, outside `catch_unwind`), an abort if
            /// the drop runs while a panic unwinds.
            #[test]
            fn an_unhandled_failure_whose_display_panics_does_not_panic_out_of_drop() {
                let d = D::<u32>::fail(Failure::new(PanickyDisplay));
                let dropped = catch_unwind(AssertUnwindSafe(move || drop(d)));
                assert!(dropped.is_ok(), "the report's panic got out of the drop");
            }
        }
    };
}

both_kinds!(send, Deferred);
both_kinds!(local, LocalDeferred);

/// `start` on a running loop said only "LoopingCall::start on a running loop", not what to do.
#[test]
fn looping_call_started_twice_says_what_to_do() {
    let clock = ManualClock::new();
    let call = LoopingCall::new(clock.clone(), || Ok(()));
    let _done = call.start(Duration::from_secs(1), false);
    let line = next_line();
    let (message, at) = panic_of(|| drop(call.start(Duration::from_secs(1), false)));
    assert!(message.contains("running loop"), "{message}");
    assert!(message.contains("`stop` it first"), "{message}");
    assert_eq!(at, Some(line));
    call.stop();
}

/// The RetryPolicy's checks did not say the number given (a NaN, a computed 0.5), nor, for
/// `max_attempts(0)`, what to give instead.
#[test]
fn retry_policy_checks_say_the_number_given_and_what_to_do() {
    let policy = || RetryPolicy::exponential(Duration::from_millis(100));
    let line = lines_down(2); // the call, inside the closure
    let (message, at) = panic_of(|| {
        let _ = policy().multiplier(0.5);
    });
    assert!(message.contains("not 0.5"), "{message}");
    assert_eq!(at, Some(line));
    let (message, _) = panic_of(|| {
        let _ = policy().multiplier(f64::NAN);
    });
    assert!(message.contains("not NaN"), "{message}");
    let (message, _) = panic_of(|| {
        let _ = policy().jitter(1.5);
    });
    assert!(message.contains("not 1.5"), "{message}");
    let line = lines_down(2); // the call, inside the closure
    let (message, at) = panic_of(|| {
        let _ = policy().max_attempts(0);
    });
    assert!(message.contains("`max_attempts(1)`"), "{message}");
    assert_eq!(at, Some(line));
}

/// `DeferredSemaphore::new(0)` said "needs at least one token", not what to use instead.
#[test]
fn a_semaphore_of_no_token_says_what_to_do() {
    let line = next_line();
    let (message, at) = panic_of(|| drop(DeferredSemaphore::new(0)));
    assert!(message.contains("at least one token"), "{message}");
    assert!(message.contains("`DeferredLock`"), "{message}");
    assert_eq!(at, Some(line));
}
