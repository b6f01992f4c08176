// The tests of `SharedResult`, written once and included by tests/shared_result.rs for each
// kind (module `send`: `Deferred`; module `local`: `LocalDeferred`). The including module
// provides `kind` with the names used here. Steps capture only what is `Send` (Arc, atomics),
// so the same body fits both kinds.
//
// Ported: futures-rs tests/future_shared.rs (`one_thread`'s many waiters, `drop_on_one_task_ok`,
// `dont_do_unnecessary_clones_on_output`), named at each test; the rest test the rules stated in
// the docs of `SharedResult`.

use std::sync::{Arc, Mutex};

use deferred_core::{Cancelled, Failure, SharedFailure};
use kind::{Deferred, SharedResult};

use super::support::{Count, unhandled};

/// A pending source whose canceller counts its calls, its resolver, and the count.
fn counting_source() -> (Deferred<u32>, kind::Resolver<u32>, Count) {
    let cancels = Count::new();
    let c = cancels.clone();
    let (d, r) = Deferred::<u32>::with_canceller(move || c.bump());
    (d, r, cancels)
}

// futures-rs future_shared.rs: one_thread (many waiters on one result)
#[test]
fn every_consumer_gets_the_value() {
    let (source, resolver) = Deferred::<u32>::pending();
    let shared = SharedResult::new(source);
    let consumers: Vec<_> = (0..10).map(|_| shared.consumer()).collect();
    assert!(consumers.iter().all(|c| !c.is_fired()));
    resolver.callback(6);
    for consumer in consumers {
        assert_eq!(consumer.wait().unwrap(), 6);
    }
}

#[test]
fn waiting_consumers_fire_in_the_order_they_were_made() {
    let (source, resolver) = Deferred::<u32>::pending();
    let shared = SharedResult::new(source);
    let order = Arc::new(Mutex::new(Vec::new()));
    let consumers: Vec<_> = (0..5)
        .map(|i| {
            let order = order.clone();
            shared.consumer().add_callback(move |v| {
                order.lock().unwrap().push(i);
                Ok(v)
            })
        })
        .collect();
    resolver.callback(1);
    assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3, 4]);
    drop(consumers);
}

#[test]
fn a_consumer_made_after_the_source_fired_gets_the_result_at_once() {
    let (source, resolver) = Deferred::<u32>::pending();
    let shared = SharedResult::new(source);
    assert!(!shared.is_fired());
    resolver.callback(3);
    assert!(shared.is_fired());
    let late = shared.consumer();
    assert!(late.is_fired());
    assert_eq!(late.wait().unwrap(), 3);
    // A fired source at the start is the same.
    let already = SharedResult::new(Deferred::<u32>::succeed(4));
    assert!(already.consumer().is_fired());
}

#[test]
fn a_consumer_made_while_the_consumers_fire_gets_the_result_at_once() {
    let (source, resolver) = Deferred::<u32>::pending();
    let shared = SharedResult::new(source);
    let again = shared.clone();
    let inner = Arc::new(Mutex::new(None));
    let slot = inner.clone();
    let first = shared.consumer().add_callback(move |v| {
        let nested = again.consumer();
        *slot.lock().unwrap() = Some(nested.is_fired());
        nested.add_callback(move |w| Ok(v + w))
    });
    resolver.callback(5);
    assert_eq!(*inner.lock().unwrap(), Some(true));
    assert_eq!(first.wait().unwrap(), 10);
}

// futures-rs future_shared.rs: drop_on_one_task_ok (one consumer going away leaves the others)
#[test]
fn one_consumers_failure_cancel_or_drop_changes_nothing_for_the_others() {
    let (source, resolver, cancels) = counting_source();
    let shared = SharedResult::new(source);
    let failing = shared
        .consumer()
        .add_callback(|_| Err::<u32, _>(Failure::msg("my own failure")));
    let cancelled = shared.consumer();
    let dropped = shared.consumer();
    let fine = shared.consumer().add_callback(|v| Ok(v + 1));
    cancelled.cancel();
    drop(dropped);
    assert!(cancelled.is_fired());
    assert_eq!(cancels.get(), 0, "others still want the result");
    assert_eq!(shared.waiting(), 3);
    resolver.callback(1);
    assert_eq!(fine.wait().unwrap(), 2);
    assert_eq!(failing.wait().unwrap_err().to_string(), "my own failure");
    let f = cancelled.wait().unwrap_err();
    assert!(f.is::<Cancelled>() && f.is_cancelled());
}

#[test]
fn the_source_is_cancelled_when_every_consumer_cancelled_and_the_last_handle_went() {
    // Consumers first, then the handles.
    let (source, _resolver, cancels) = counting_source();
    let shared = SharedResult::new(source);
    let copy = shared.clone();
    let (a, b) = (shared.consumer(), copy.consumer());
    a.cancel();
    b.cancel();
    assert_eq!(cancels.get(), 0, "a handle could still make a consumer");
    drop(shared);
    assert_eq!(cancels.get(), 0, "a clone is still a handle");
    drop(copy);
    assert_eq!(cancels.get(), 1);

    // The handles first, then the consumers.
    let (source, _resolver, cancels) = counting_source();
    let shared = SharedResult::new(source);
    let (a, b) = (shared.consumer(), shared.consumer());
    drop(shared);
    a.cancel();
    assert_eq!(cancels.get(), 0, "`b` still wants it");
    b.cancel();
    assert_eq!(cancels.get(), 1);
    b.cancel(); // a fired consumer: nothing more
    assert_eq!(cancels.get(), 1);
    assert!(a.wait().unwrap_err().is_cancelled() && b.wait().unwrap_err().is_cancelled());
}

#[test]
fn no_consumer_and_no_handle_cancels_the_source() {
    let (source, _resolver, cancels) = counting_source();
    drop(SharedResult::new(source));
    assert_eq!(cancels.get(), 1);
}

#[test]
fn a_dropped_pending_consumer_still_counts_as_wanting_the_result() {
    let (source, resolver, cancels) = counting_source();
    let shared = SharedResult::new(source);
    drop(shared.consumer());
    drop(shared);
    assert_eq!(cancels.get(), 0);
    resolver.callback(1); // goes to the dropped consumer's chain, which drops it
}

#[test]
fn a_fired_source_is_never_cancelled() {
    let (source, resolver, cancels) = counting_source();
    let shared = SharedResult::new(source);
    let consumer = shared.consumer();
    resolver.callback(1);
    consumer.cancel();
    drop(shared);
    assert_eq!(cancels.get(), 0);
    assert_eq!(consumer.wait().unwrap(), 1);
}

#[test]
fn a_failure_reaches_every_consumer_reading_as_the_original() {
    let (source, resolver) = Deferred::<u32>::pending();
    let shared = SharedResult::new(source.add_callback(|_| Err::<u32, _>(Cancelled.into())));
    let (a, b) = (shared.consumer(), shared.consumer());
    resolver.callback(0);
    let (fa, fb) = (a.wait().unwrap_err(), b.wait().unwrap_err());
    for f in [&fa, &fb] {
        assert!(f.is::<Cancelled>() && f.is_cancelled());
        assert!(f.is::<SharedFailure>());
        assert_eq!(f.downcast_ref::<Cancelled>(), Some(&Cancelled));
        assert_eq!(f.to_string(), Cancelled.to_string());
        assert!(f.origin().is_some(), "raised at the source's step");
    }
    assert_eq!(fa.origin(), fb.origin());
    // Shared, not copied: the same failure behind both.
    let (sa, sb) = (
        fa.downcast_ref::<SharedFailure>().unwrap(),
        fb.downcast_ref::<SharedFailure>().unwrap(),
    );
    assert!(std::ptr::eq(sa.failure(), sb.failure()));
    // `trap` cannot take the error out while others share it.
    let fa = fa.trap::<Cancelled>().unwrap_err();
    drop(fa);
}

#[test]
fn a_source_cancelled_from_elsewhere_reaches_the_consumers_as_a_cancellation() {
    let (source, _resolver) = Deferred::<u32>::pending();
    let handle = source.cancel_handle();
    let shared = SharedResult::new(source);
    let consumer = shared.consumer();
    handle.cancel();
    assert!(consumer.wait().unwrap_err().is_cancelled());
}

#[test]
fn an_unhandled_failure_is_reported_once_per_consumer_that_did_not_handle_it() {
    let marker = "SHARED-UNHANDLED-PER-CONSUMER";
    let before = unhandled(marker);
    let shared = SharedResult::new(Deferred::<u32>::fail(Failure::msg(marker)));
    let handled = shared.consumer().add_errback(|_| Ok(0));
    let (dropped1, dropped2) = (shared.consumer(), shared.consumer());
    assert_eq!(handled.wait().unwrap(), 0);
    assert_eq!(
        unhandled(marker),
        before,
        "nothing yet: the consumers hold it"
    );
    drop(dropped1);
    assert_eq!(unhandled(marker), before + 1);
    drop(dropped2);
    drop(shared);
    assert_eq!(unhandled(marker), before + 2);
}

#[test]
fn a_failure_every_consumer_handled_is_never_reported() {
    let marker = "SHARED-ALL-HANDLED";
    let before = unhandled(marker);
    let (source, resolver) = Deferred::<u32>::pending();
    let shared = SharedResult::new(source);
    let (a, b) = (shared.consumer(), shared.consumer());
    resolver.errback(Failure::msg(marker));
    drop(shared);
    assert!(a.wait().is_err() && b.wait().is_err());
    assert_eq!(unhandled(marker), before);
}

#[test]
fn a_failure_no_consumer_ever_saw_is_reported_once_when_the_last_handle_goes() {
    let marker = "SHARED-NOBODY-SAW";
    let before = unhandled(marker);
    let shared = SharedResult::new(Deferred::<u32>::fail(Failure::msg(marker)));
    let copy = shared.clone();
    drop(shared);
    assert_eq!(unhandled(marker), before);
    drop(copy);
    assert_eq!(unhandled(marker), before + 1);

    // A consumer made, then the last handle gone, then the failure: the consumer's to report.
    let marker = "SHARED-NOBODY-SAW-LATE";
    let before = unhandled(marker);
    let (source, resolver) = Deferred::<u32>::pending();
    let source = source.add_errback(|f: Failure| Err(f)); // a chain waiting on the root
    let shared = SharedResult::new(source);
    let consumer = shared.consumer();
    drop(shared);
    resolver.errback(Failure::msg(marker));
    drop(consumer);
    assert_eq!(unhandled(marker), before + 1, "the one consumer dropped it");
}

#[test]
fn the_answer_to_its_own_cancel_of_the_source_is_not_reported() {
    // Captured on this thread: the hook's count of reports saying "cancelled" would take in
    // those of the tests running beside this one.
    let (source, _resolver) = Deferred::<u32>::pending();
    let ((), reported) =
        deferred_core::capture_unhandled(|| drop(SharedResult::new(source)));
    assert!(reported.is_empty(), "{reported:?}");
}

/// A source whose canceller fails it with `message`, a failure of its own (as one fired from
/// another thread as the cancel lands would arrive).
fn failing_when_cancelled(message: &str) -> Deferred<u32> {
    let slot: Arc<Mutex<Option<kind::Resolver<u32>>>> = Arc::default();
    let in_canceller = slot.clone();
    let message = message.to_owned();
    let (source, resolver) = Deferred::<u32>::with_canceller(move || {
        if let Some(resolver) = in_canceller.lock().unwrap().take() {
            resolver.errback(Failure::msg(message));
        }
    });
    *slot.lock().unwrap() = Some(resolver);
    source
}

/// The source fails with a failure of its own as the last handle goes (which cancels it: here
/// its canceller fails it so, as a failure fired from another thread at that moment would
/// arrive): that failure is no answer to the cancel, and nobody saw it: it is reported.
#[test]
fn a_failure_that_is_no_answer_to_its_cancel_is_reported() {
    // The kind's own marker: both kinds' tests run at once, and count reports process-wide.
    let marker = format!("{}: SHARED-FAILED-AS-THE-LAST-HANDLE-WENT", module_path!());
    let before = unhandled(&marker);
    drop(SharedResult::new(failing_when_cancelled(&marker)));
    assert_eq!(unhandled(&marker), before + 1);

    // The same after a consumer was made and cancelled (the last one: the source is
    // cancelled once the last handle is gone too).
    let shared = SharedResult::new(failing_when_cancelled(&marker));
    let consumer = shared.consumer();
    drop(shared);
    consumer.cancel();
    assert!(consumer.wait().unwrap_err().is_cancelled());
    assert_eq!(unhandled(&marker), before + 2);
}

/// A value that counts its clones.
#[derive(Debug)]
struct Counted(Count);

impl Clone for Counted {
    fn clone(&self) -> Counted {
        self.0.bump();
        Counted(self.0.clone())
    }
}

// futures-rs future_shared.rs: dont_do_unnecessary_clones_on_output
#[test]
fn the_value_is_cloned_once_per_consumer() {
    let clones = Count::new();
    let (source, resolver) = Deferred::<Counted>::pending();
    let shared = SharedResult::new(source);
    let waiting: Vec<_> = (0..3).map(|_| shared.consumer()).collect();
    resolver.callback(Counted(clones.clone()));
    assert_eq!(clones.get(), 3);
    let late = shared.consumer();
    assert_eq!(clones.get(), 4);
    drop((waiting, late));
}

#[test]
fn into_shared_is_shared_result_new() {
    let shared = Deferred::<u32>::succeed(2).into_shared();
    assert_eq!(shared.consumer().wait().unwrap(), 2);
    assert!(format!("{shared:?}").contains("fired: true"));
}

#[test]
fn many_consumers_fire_in_constant_stack() {
    super::support::on_small_stack(|| {
        let (source, resolver) = Deferred::<u32>::pending();
        let shared = SharedResult::new(source);
        let consumers: Vec<_> = (0..100_000)
            .map(|_| shared.consumer().add_callback(|v| Ok(v + 1)))
            .collect();
        resolver.callback(1);
        assert!(consumers.into_iter().all(|c| c.wait().unwrap() == 2));
    });
}

/// The source fails after its only consumer was cancelled, then the last handle goes: nobody
/// saw the failure, and it is reported once (as when the handle goes first).
#[test]
fn a_failure_after_every_consumer_was_cancelled_is_reported_when_the_last_handle_goes() {
    let marker = format!("{}: SHARED-FAILED-AFTER-ITS-CONSUMERS-LEFT", module_path!());
    let before = unhandled(&marker);
    let (source, resolver) = Deferred::<u32>::pending();
    let shared = SharedResult::new(source);
    let consumer = shared.consumer();
    consumer.cancel();
    assert!(consumer.wait().unwrap_err().is_cancelled());
    resolver.errback(Failure::msg(marker.clone()));
    assert_eq!(unhandled(&marker), before);
    drop(shared);
    assert_eq!(unhandled(&marker), before + 1);
}

/// A value whose `clone` panics the `n`th time it is cloned (counting from 1).
#[derive(Debug)]
struct PanicsOnClone {
    clones: Arc<std::sync::atomic::AtomicUsize>,
    panic_at: usize,
}

impl Clone for PanicsOnClone {
    fn clone(&self) -> PanicsOnClone {
        let n = self.clones.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        assert!(n != self.panic_at, "clone number {n} panics");
        PanicsOnClone {
            clones: self.clones.clone(),
            panic_at: self.panic_at,
        }
    }
}

/// Rule 1 (each consumer is its own chain) and the Deferred's rule 4 (a panic in user
/// code becomes a failure): a clone that panics as the source fires failed that
/// consumer, and every consumer after it, with a `NeverFired` ("its Resolver was
/// dropped without calling callback") that no dropped Resolver caused; made after the
/// source fired, the panic unwound out of `consumer()`. The consumer whose clone
/// panicked fails with the panic; the others get their clones.
#[test]
fn a_clone_that_panics_fails_only_its_consumer_with_the_panic() {
    let (source, resolver) = Deferred::<PanicsOnClone>::pending();
    let shared = SharedResult::new(source);
    let (a, b, c) = (shared.consumer(), shared.consumer(), shared.consumer());
    resolver.callback(PanicsOnClone {
        clones: Arc::default(),
        panic_at: 2,
    });
    assert!(a.wait().is_ok());
    let failure = b.wait().unwrap_err();
    assert!(failure.is::<deferred_core::Panicked>(), "{failure}");
    assert!(c.wait().is_ok(), "only `b`'s clone panicked");

    let (source, resolver) = Deferred::<PanicsOnClone>::pending();
    let shared = SharedResult::new(source);
    resolver.callback(PanicsOnClone {
        clones: Arc::default(),
        panic_at: 1,
    });
    let late = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| shared.consumer()))
        .expect("consumer() does not unwind");
    assert!(late.wait().unwrap_err().is::<deferred_core::Panicked>());
    assert!(shared.consumer().wait().is_ok());
}

/// A source whose error type's conversion into `Failure` panics: the panic is the failure each
/// consumer gets (rule 4), not a hang (the consumers were never fired) and a report.
#[test]
fn a_panicking_conversion_of_the_sources_error_is_the_consumers_failure() {
    #[derive(Debug)]
    struct Unconvertible;
    impl From<Failure> for Unconvertible {
        fn from(_: Failure) -> Unconvertible {
            Unconvertible
        }
    }
    impl From<Unconvertible> for Failure {
        fn from(_: Unconvertible) -> Failure {
            panic!("shared-conversion-panics")
        }
    }
    let (consumers, reported) = deferred_core::capture_unhandled(|| {
        let (source, resolver) = Deferred::<u32, Unconvertible>::pending();
        let shared = SharedResult::new(source);
        let (first, second) = (shared.consumer(), shared.consumer());
        resolver.errback(Unconvertible);
        [first, second].map(|consumer| consumer.wait().unwrap_err())
    });
    assert!(reported.is_empty(), "{reported:?}");
    for failure in consumers {
        assert!(failure.is::<deferred_core::Panicked>(), "{failure}");
        assert!(
            failure.to_string().contains("shared-conversion-panics"),
            "{failure}"
        );
    }
}
