//! Panic safety: a panic in a callback, an errback, a canceller, the unhandled-error hook, or in
//! the `Drop` of a value a callback captured, never poisons a Deferred, never aborts, never
//! unwinds through the code that fired the chain (rule 4), and never loses the chain's outcome:
//! the panic becomes the `Failure` the next errback sees, and the chain — and every other chain
//! on the same thread — goes on.
//!
//! The tests run one at a time (`serial()`): the panic hook is process-wide, and so is the
//! unhandled-error hook one test replaces. The others collect their unhandled failures with a
//! capture (`Unhandled`), which sees only their own thread's.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard, Once};
use std::time::Duration;

use deferred::{Deferred, Failure, NeverFired, Panicked};

/// Panics raised on purpose start with this, and the panic hook keeps them quiet.
const PREFIX: &str = "deliberate panic: ";

/// One test at a time, with quiet deliberate panics.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    static QUIET: Once = Once::new();
    QUIET.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            if !message.starts_with(PREFIX) {
                default(info);
            }
        }));
    });
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A value whose `Drop` panics (once: a second panic while unwinding would abort).
struct PanicOnDrop(&'static str);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("{PREFIX}{}", self.0);
        }
    }
}

/// The unhandled failures reported on this test's thread while it is alive (a capture: the
/// global hook stays as it is).
struct Unhandled {
    capture: deferred::UnhandledCapture,
    seen: Vec<String>,
}

impl Unhandled {
    fn capture() -> Unhandled {
        Unhandled {
            capture: deferred::UnhandledCapture::start(),
            seen: Vec::new(),
        }
    }
    fn seen(&mut self) -> Vec<String> {
        let new = self.capture.take();
        self.seen.extend(new.iter().map(|f| f.to_string()));
        self.seen.clone()
    }
}

/// The panic message inside a failure, if it is a panic.
fn panic_message(f: &Failure) -> Option<String> {
    f.downcast_ref::<Panicked>().map(|p| p.message().to_owned())
}

/// Waits for `d` on another thread, failing the test instead of hanging if it never fires.
fn settle<T: Send + 'static>(d: Deferred<T>) -> Result<T, Failure> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(d.wait());
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the chain never fired: its outcome was lost")
}

#[test]
fn panic_in_a_callback_becomes_the_next_errbacks_failure() {
    let _serial = serial();
    let errbacks = Arc::new(AtomicUsize::new(0));
    let seen = errbacks.clone();
    let (d, resolver) = Deferred::<u32>::pending();
    let d = d
        .add_callback(|_| -> Result<u32, Failure> { panic!("{PREFIX}callback") })
        .add_callback(|x| Ok(x + 1)) // skipped
        .add_errback(move |f| {
            seen.fetch_add(1, SeqCst);
            assert_eq!(
                panic_message(&f).as_deref(),
                Some("deliberate panic: callback")
            );
            assert!(
                f.origin().is_some(),
                "the failure names the step that panicked"
            );
            Ok(0)
        });
    // The firer does not unwind (a panic here would fail the test).
    resolver.callback(1);
    assert_eq!(settle(d).unwrap(), 0);
    assert_eq!(errbacks.load(SeqCst), 1);
}

#[test]
fn panic_in_an_errback_and_in_add_both_flow_on_as_failures() {
    let _serial = serial();
    let (d, resolver) = Deferred::<u32>::pending();
    let d = d
        .add_errback(|_| -> Result<u32, Failure> { panic!("{PREFIX}errback") })
        .add_both(|r: Result<u32, Failure>| -> Result<u32, Failure> {
            let f = r.unwrap_err();
            assert_eq!(
                panic_message(&f).as_deref(),
                Some("deliberate panic: errback")
            );
            panic!("{PREFIX}both")
        });
    resolver.errback(Failure::msg("first"));
    let f = settle(d).unwrap_err();
    assert_eq!(panic_message(&f).as_deref(), Some("deliberate panic: both"));
}

#[test]
fn panic_in_a_callback_added_to_a_fired_deferred_does_not_unwind_into_add_callback() {
    let _serial = serial();
    let d = Deferred::<u32>::succeed(1)
        .add_callback(|_| -> Result<u32, Failure> { panic!("{PREFIX}inline") });
    let f = d.wait().unwrap_err();
    assert_eq!(
        panic_message(&f).as_deref(),
        Some("deliberate panic: inline")
    );
}

#[test]
fn panic_in_a_nested_chain_reaches_the_outer_errback() {
    let _serial = serial();
    let (outer, outer_resolver) = Deferred::<u32>::pending();
    let (inner, inner_resolver) = Deferred::<u32>::pending();
    let d = outer
        .add_callback(move |_| {
            inner.add_callback(|_| -> Result<u32, Failure> { panic!("{PREFIX}inner") })
        })
        .add_errback(|f| {
            assert_eq!(
                panic_message(&f).as_deref(),
                Some("deliberate panic: inner")
            );
            Ok(7)
        });
    outer_resolver.callback(1);
    std::thread::spawn(move || inner_resolver.callback(2))
        .join()
        .expect("the firing thread does not unwind");
    assert_eq!(settle(d).unwrap(), 7);
}

#[test]
fn panicking_canceller_does_not_escape_cancel_and_becomes_the_failure() {
    let _serial = serial();
    let (d, resolver) = Deferred::<u32>::with_canceller(|| panic!("{PREFIX}canceller"));
    let callbacks = Arc::new(AtomicUsize::new(0));
    let count = callbacks.clone();
    let d = d.add_callback(move |x| {
        count.fetch_add(1, SeqCst);
        Ok(x)
    });
    d.cancel(); // must not unwind
    d.cancel(); // a second cancel of a fired chain does nothing
    resolver.callback(1); // too late: ignored, does not unwind
    let f = settle(d).unwrap_err();
    assert_eq!(
        panic_message(&f).as_deref(),
        Some("deliberate panic: canceller")
    );
    assert_eq!(callbacks.load(SeqCst), 0);
}

#[test]
fn canceller_that_fires_then_panics_keeps_its_result() {
    let _serial = serial();
    let slot: Arc<Mutex<Option<deferred::Resolver<u32>>>> = Arc::new(Mutex::new(None));
    let from_canceller = slot.clone();
    let (d, resolver) = Deferred::<u32>::with_canceller(move || {
        if let Some(resolver) = from_canceller.lock().unwrap().take() {
            resolver.callback(5);
        }
        panic!("{PREFIX}after firing")
    });
    *slot.lock().unwrap() = Some(resolver);
    let d = d.add_callback(|x| Ok(x * 2));
    d.cancel();
    assert_eq!(settle(d).unwrap(), 10, "the canceller's own fire wins");
}

#[test]
fn cancelled_deferred_stays_usable_after_a_panicking_canceller() {
    let _serial = serial();
    // Not poisoned: every later operation on the chain still works.
    let (d, resolver) = Deferred::<u32>::with_canceller(|| panic!("{PREFIX}poison?"));
    let handle = d.cancel_handle();
    handle.cancel();
    assert!(d.is_fired());
    let d = d
        .add_errback(|f| {
            assert!(panic_message(&f).is_some());
            Ok(1)
        })
        .add_callback(|x| Ok(x + 1));
    handle.cancel();
    drop(resolver);
    assert_eq!(settle(d).unwrap(), 2);
}

#[test]
fn panicking_unhandled_hook_never_unwinds_and_the_thread_keeps_working() {
    let _serial = serial();
    let calls = Arc::new(AtomicUsize::new(0));
    let count = calls.clone();
    let previous = deferred::set_unhandled_hook(move |_f: &Failure| {
        count.fetch_add(1, SeqCst);
        panic!("{PREFIX}hook");
    });
    // Reported from `Drop`, outside any chain.
    drop(Deferred::<u32>::fail(Failure::msg("nobody listened")));
    // Reported from inside the run loop: the failure reaches a dropped end while the chain runs,
    // and other chains are queued on the same run loop behind it.
    let (a, a_resolver) = Deferred::<()>::pending();
    let (b, b_resolver) = Deferred::<u32>::pending();
    let (c, c_resolver) = Deferred::<u32>::pending();
    drop(b.add_callback(|x| Ok(x + 1))); // the end nobody holds
    let c = c.add_callback(|x| Ok(x + 1));
    let a = a.add_callback(move |()| {
        b_resolver.errback(Failure::msg("unhandled inside the loop"));
        c_resolver.callback(41);
        Ok(())
    });
    a_resolver.callback(());
    deferred::restore_unhandled_hook(previous);
    assert_eq!(
        calls.load(SeqCst),
        2,
        "the hook ran once per unhandled failure"
    );
    assert!(a.wait().is_ok());
    assert_eq!(
        settle(c).unwrap(),
        42,
        "a chain queued behind the report still ran"
    );
    // And the thread's run loop is not wedged: a fresh chain still runs.
    let (d, r) = Deferred::<u32>::pending();
    let d = d.add_callback(|x| Ok(x * 3));
    r.callback(2);
    assert_eq!(settle(d).unwrap(), 6);
}

#[test]
fn drop_panic_of_a_value_captured_by_a_callback_that_ran_becomes_the_failure() {
    let _serial = serial();
    let guard = PanicOnDrop("captured by a callback that ran");
    let (d, resolver) = Deferred::<u32>::pending();
    let d = d.add_callback(move |x| {
        let _keep = &guard;
        Ok(x + 1)
    });
    resolver.callback(1);
    let f = settle(d).unwrap_err();
    assert_eq!(
        panic_message(&f).as_deref(),
        Some("deliberate panic: captured by a callback that ran")
    );
}

#[test]
fn drop_panic_of_a_value_captured_by_a_skipped_callback_keeps_the_chain_failed() {
    let _serial = serial();
    let mut unhandled = Unhandled::capture();
    let guard = PanicOnDrop("captured by a skipped callback");
    let errbacks = Arc::new(AtomicUsize::new(0));
    let seen = errbacks.clone();
    let (d, resolver) = Deferred::<u32>::pending();
    let d = d
        .add_callback(move |x| {
            let _keep = &guard;
            Ok(x + 1)
        })
        .add_errback(move |f| {
            seen.fetch_add(1, SeqCst);
            Err(f)
        });
    resolver.errback(Failure::msg("the original failure"));
    let f = settle(d).unwrap_err();
    assert_eq!(errbacks.load(SeqCst), 1);
    // The drop's panic replaces the failure the chain was carrying (as an errback that raises
    // would), and the replaced failure is reported as unhandled: never lost silently, never
    // leaked.
    assert_eq!(
        panic_message(&f).as_deref(),
        Some("deliberate panic: captured by a skipped callback")
    );
    assert_eq!(unhandled.seen(), vec!["the original failure".to_string()]);
}

#[test]
fn drop_panic_of_a_value_captured_by_a_skipped_errback_fails_the_chain() {
    let _serial = serial();
    let guard = PanicOnDrop("captured by a skipped errback");
    let (d, resolver) = Deferred::<u32>::pending();
    let d = d.add_errback(move |f| {
        let _keep = &guard;
        Err(f)
    });
    resolver.callback(1);
    let f = settle(d).unwrap_err();
    assert_eq!(
        panic_message(&f).as_deref(),
        Some("deliberate panic: captured by a skipped errback")
    );
}

#[test]
fn drop_panic_of_a_value_captured_by_a_callback_on_a_fired_deferred() {
    let _serial = serial();
    let guard = PanicOnDrop("captured, fired path");
    let d = Deferred::<u32>::succeed(1).add_callback(move |x| {
        let _keep = &guard;
        Ok(x)
    });
    let f = d.wait().unwrap_err();
    assert_eq!(
        panic_message(&f).as_deref(),
        Some("deliberate panic: captured, fired path")
    );
}

#[test]
fn drop_panic_of_a_value_captured_by_a_callback_of_a_never_fired_chain() {
    let _serial = serial();
    let mut unhandled = Unhandled::capture();
    let guard = PanicOnDrop("captured, never fired");
    let (d, resolver) = Deferred::<u32>::pending();
    let d = d.add_callback(move |x| {
        let _keep = &guard;
        Ok(x)
    });
    drop(resolver); // NeverFired skips the callback, whose captures are dropped
    let f = settle(d).unwrap_err();
    assert_eq!(
        panic_message(&f).as_deref(),
        Some("deliberate panic: captured, never fired")
    );
    let seen = unhandled.seen();
    assert_eq!(
        seen.len(),
        1,
        "the NeverFired it replaced is reported: {seen:?}"
    );
    assert!(seen[0].contains("never fired"), "{seen:?}");
}

#[test]
fn drop_panic_of_a_value_captured_by_an_uncalled_canceller_does_not_lose_the_chain() {
    let _serial = serial();
    // The Deferred fires normally, so its canceller is dropped without being called.
    let guard = PanicOnDrop("captured by a canceller");
    let (d, resolver) = Deferred::<u32>::with_canceller(move || drop(guard));
    let d = d.add_callback(|x| Ok(x + 1));
    let fired = catch_unwind(AssertUnwindSafe(|| resolver.callback(1)));
    // The chain got its result first; then the drop's panic goes on to the firer, as a panicking
    // `Drop` does in std.
    assert!(fired.is_err());
    assert_eq!(settle(d).unwrap(), 2);
}

#[test]
fn drop_panic_of_a_result_nobody_holds_does_not_strand_other_chains() {
    let _serial = serial();
    // Chain `b`'s end is dropped, so its success value is dropped by the chain machinery, inside
    // the run loop; chain `c` is queued behind it on the same thread.
    let (a, a_resolver) = Deferred::<()>::pending();
    let (b, b_resolver) = Deferred::<()>::pending();
    let (c, c_resolver) = Deferred::<u32>::pending();
    drop(b.add_callback(|()| Ok(PanicOnDrop("a result nobody holds"))));
    let c = c.add_callback(|x| Ok(x + 1));
    let a = a.add_callback(move |()| {
        b_resolver.callback(());
        c_resolver.callback(1);
        Ok(())
    });
    let fired = std::thread::spawn(move || {
        // Chain `c` runs; then the drop's panic goes on to the firer.
        catch_unwind(AssertUnwindSafe(|| a_resolver.callback(()))).is_err()
    });
    assert!(fired.join().unwrap());
    assert!(a.wait().is_ok());
    assert_eq!(
        settle(c).unwrap(),
        2,
        "the chain queued behind the panic was lost"
    );
}

#[test]
fn drop_panic_of_a_value_captured_by_an_inner_callback() {
    let _serial = serial();
    let guard = PanicOnDrop("captured by an inner callback");
    let (outer, outer_resolver) = Deferred::<u32>::pending();
    let (inner, inner_resolver) = Deferred::<u32>::pending();
    let d = outer.add_callback(move |x| {
        inner.add_callback(move |y| {
            let _keep = &guard;
            Ok(x + y)
        })
    });
    outer_resolver.callback(1);
    inner_resolver.callback(2);
    let f = settle(d).unwrap_err();
    assert_eq!(
        panic_message(&f).as_deref(),
        Some("deliberate panic: captured by an inner callback")
    );
}

#[test]
fn panics_everywhere_in_one_chain_still_end_it_exactly_once() {
    let _serial = serial();
    let mut unhandled = Unhandled::capture();
    let ends = Arc::new(AtomicUsize::new(0));
    let count = ends.clone();
    let (d, resolver) = Deferred::<u32>::with_canceller(|| panic!("{PREFIX}canceller"));
    let d = d
        .add_callback(|_| -> Result<u32, Failure> { panic!("{PREFIX}1") })
        .add_errback(|_| -> Result<u32, Failure> { panic!("{PREFIX}2") })
        .add_both(|_| -> Result<u32, Failure> { panic!("{PREFIX}3") })
        .add_errback(|f| {
            assert_eq!(panic_message(&f).as_deref(), Some("deliberate panic: 3"));
            Ok(3)
        })
        .add_both(move |r| {
            count.fetch_add(1, SeqCst);
            r
        });
    let handle = d.cancel_handle();
    resolver.callback(0);
    handle.cancel(); // fired: nothing to cancel, the canceller never runs
    assert_eq!(settle(d).unwrap(), 3);
    assert_eq!(ends.load(SeqCst), 1);
    let seen = unhandled.seen();
    assert!(seen.is_empty(), "{seen:?}");
}

#[test]
fn drop_panic_of_an_unused_errback_of_add_callbacks_does_not_lose_the_failure() {
    let _serial = serial();
    let mut unhandled = Unhandled::capture();
    let guard = PanicOnDrop("captured by the errback that did not run");
    let (d, resolver) = Deferred::<u32>::pending();
    let d = d.add_callbacks(
        |_| Err::<u32, _>(Failure::msg("raised by on_ok")),
        move |f| {
            let _keep = &guard;
            Err(f)
        },
    );
    resolver.callback(1);
    let f = settle(d).unwrap_err();
    assert!(panic_message(&f).is_some(), "{f:?}");
    assert_eq!(unhandled.seen(), vec!["raised by on_ok".to_string()]);
}

/// The child half of the test below: runs in its own process, since an abort would take the
/// whole test binary down.
#[test]
fn resolver_in_a_thread_local_dropped_at_thread_exit_child() {
    if std::env::var_os("DEFERRED_TLS_CHILD").is_none() {
        return;
    }
    use std::cell::RefCell;
    thread_local! {
        static PENDING: RefCell<Vec<deferred::Resolver<u32>>> = const { RefCell::new(Vec::new()) };
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // The user's thread-local is registered first...
        let (d, resolver) = Deferred::<u32>::pending();
        PENDING.with(|p| p.borrow_mut().push(resolver));
        let d = d.add_callback(|x| Ok(x + 1)).add_callback(|x| Ok(x + 1));
        drop(d.add_both(move |r: Result<u32, Failure>| {
            let _ = tx.send(r.map_err(|f| f.is::<NeverFired>()));
            Ok::<(), Failure>(())
        }));
        // ...then the run loop's (its queue is destroyed first at thread exit).
        let (e, r) = Deferred::<u32>::pending();
        let e = e.add_callback(Ok);
        r.callback(1);
        e.wait().unwrap();
        // Thread exit: PENDING drops the Resolver after the run loop's queue is gone.
    })
    .join()
    .unwrap();
    assert_eq!(
        rx.recv().unwrap(),
        Err(true),
        "the chain ended with NeverFired"
    );
    println!("child: chain ended");
}

#[test]
fn resolver_in_a_thread_local_dropped_at_thread_exit_does_not_abort() {
    let _serial = serial();
    if std::env::var_os("DEFERRED_TLS_CHILD").is_some() {
        return;
    }
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "resolver_in_a_thread_local_dropped_at_thread_exit_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("DEFERRED_TLS_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("child: chain ended"),
        "the child aborted or lost the chain ({}):\n{stdout}\n{stderr}",
        output.status
    );
}

// A step that panics with a payload whose own `Drop` panics (`panic_any` of a guard): the
// failure is `Panicked`, and dropping it — in an errback that recovered, in the code that
// waited for it, in the report of an unhandled one — does not panic. The errback's recovery
// was turned into a failure of the chain, and a drop outside any step unwound into its caller.
#[test]
fn a_panic_payload_whose_drop_panics_is_dropped_quietly_with_its_failure() {
    let _serial = serial();
    let recovered = Deferred::<u32>::succeed(1)
        .add_callback(|_| -> Result<u32, Failure> {
            std::panic::panic_any(PanicOnDrop("a payload recovered from"))
        })
        .add_errback(|f: Failure| {
            assert!(f.is::<Panicked>(), "{f:?}");
            Ok(0)
        });
    assert_eq!(settle(recovered).unwrap(), 0);

    let failed = Deferred::<u32>::succeed(1).add_callback(|_| -> Result<u32, Failure> {
        std::panic::panic_any(PanicOnDrop("a payload waited for"))
    });
    let failure = failed.wait().unwrap_err();
    assert_eq!(
        panic_message(&failure).as_deref(),
        Some("a panic with a non-string payload")
    );
    assert!(catch_unwind(AssertUnwindSafe(move || drop(failure))).is_ok());

    let mut unhandled = Unhandled::capture();
    let fired = catch_unwind(AssertUnwindSafe(|| {
        let (d, resolver) = Deferred::<u32>::pending();
        drop(d.add_callback(|_| -> Result<u32, Failure> {
            std::panic::panic_any(PanicOnDrop("a payload nobody handled"))
        }));
        resolver.callback(1);
        unhandled.seen()
    }));
    assert!(fired.is_ok_and(|seen| seen == ["a step panicked: a panic with a non-string payload"]));
    assert!(catch_unwind(AssertUnwindSafe(move || drop(unhandled))).is_ok());
}

// The panic of a payload's `Drop` (caught as the failure drops) has a payload of its own, which
// is freed too, not leaked: one per such failure dropped (memcheck counts them as lost).
#[test]
fn the_payload_of_a_panic_in_a_payloads_drop_is_freed() {
    let _serial = serial();
    /// The payload of the panic in `PanicsWith`'s drop: counts its drops.
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, SeqCst);
        }
    }
    /// A payload whose drop panics with a `Counted`.
    struct PanicsWith(Option<Counted>);
    impl Drop for PanicsWith {
        fn drop(&mut self) {
            if let Some(counted) = self.0.take() {
                std::panic::panic_any(counted);
            }
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let payload = PanicsWith(Some(Counted(drops.clone())));
    let failed = Deferred::<u32>::succeed(1)
        .add_callback(move |_| -> Result<u32, Failure> { std::panic::panic_any(payload) });
    let failure = failed.wait().unwrap_err();
    assert!(failure.is::<Panicked>(), "{failure:?}");
    assert_eq!(drops.load(SeqCst), 0);
    assert!(catch_unwind(AssertUnwindSafe(move || drop(failure))).is_ok());
    assert_eq!(
        drops.load(SeqCst),
        1,
        "the second panic's payload is dropped"
    );
}
