//! `SharedResult`: one result, many consumers. The tests are written once
//! (tests/shared_result/common.rs) and run here for both kinds: module `send` (`Deferred`) and
//! module `local` (`LocalDeferred`); the tests about threads follow, for the `Send` kind.

mod support;

mod send {
    mod kind {
        pub use deferred_core::{Deferred, Resolver, SharedResult};
    }
    include!("shared_result/common.rs");
}

mod local {
    // The body is written once for both kinds, so shared slots are `Arc<Mutex<..>>`.
    #![allow(clippy::arc_with_non_send_sync)]
    mod kind {
        pub use deferred_core::local::SharedResult;
        pub use deferred_core::{LocalDeferred as Deferred, LocalResolver as Resolver};
    }
    include!("shared_result/common.rs");
}

// futures-rs future_shared.rs: many_threads (send_shared_oneshot_and_wait_on_multiple_threads)
#[test]
fn consumers_on_many_threads_get_the_value_fired_from_another() {
    use deferred_core::{Deferred, SharedResult};
    let (source, resolver) = Deferred::<u32>::pending();
    let shared = SharedResult::new(source);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let shared = shared.clone();
            std::thread::spawn(move || shared.consumer().wait().unwrap())
        })
        .collect();
    std::thread::spawn(move || resolver.callback(6))
        .join()
        .unwrap();
    for thread in threads {
        assert_eq!(thread.join().unwrap(), 6);
    }
    assert_eq!(shared.consumer().wait().unwrap(), 6);
}

#[test]
fn shared_result_is_send_and_sync() {
    fn both<X: Send + Sync>() {}
    both::<deferred_core::SharedResult<String>>();
}

#[test]
fn sharing_a_copy_of_a_shared_failure_shares_the_same_one() {
    use deferred_core::{Failure, TimedOut};
    let shared = Failure::new(TimedOut::new(std::time::Duration::from_secs(2))).share();
    let again = shared.to_failure().share();
    assert!(std::ptr::eq(shared.failure(), again.failure()));
    // The last holder can take the error out.
    let copy = again.to_failure();
    drop((shared, again));
    assert_eq!(copy.trap::<TimedOut>().unwrap().after().as_secs(), 2);
}

#[test]
fn a_copy_keeps_the_originals_origin_and_trail_and_goes_on_from_there() {
    use deferred_core::{Deferred, Failure, SharedResult};
    let source = Deferred::<u32>::succeed(1)
        .add_callback(|_| Err::<u32, _>(Failure::msg("raised here")))
        .add_callback(Ok);
    let shared = SharedResult::new(source);
    let seen = shared.consumer().add_callback(Ok).wait().unwrap_err();
    let original = shared.consumer().wait().unwrap_err();
    assert_eq!(original.trail().len(), 1, "the source's skipped step");
    assert_eq!(seen.trail().len(), 2, "and the consumer's own");
    assert_eq!(seen.origin(), original.origin());
    assert!(format!("{seen:?}").contains("raised at step"));
}

/// Stress: the source fails on one thread while every consumer is cancelled on others, lined
/// up by a barrier. Whichever way each race goes, the failure is seen exactly once: by a
/// consumer that got it (here each one that did handles it), or, when none did (each was
/// cancelled first, or while the consumers were being fired), reported once as unhandled when
/// the last handle goes. Each thread captures what it reports.
#[test]
fn a_failure_whose_consumers_are_cancelled_as_it_fires_is_seen_exactly_once() {
    use deferred_core::{Deferred, Failure, SharedResult, capture_unhandled};
    use std::sync::{Arc, Barrier};
    const CANCELLERS: usize = 4;
    const ROUNDS: usize = 1000;
    const MESSAGE: &str = "the source failed while its consumers were cancelled";
    let mut lost = 0;
    for round in 0..ROUNDS {
        let ((reports_before, got), mut reports) = capture_unhandled(|| {
            let (source, resolver) = Deferred::<u32>::pending();
            let shared = SharedResult::new(source);
            let consumers: Vec<_> = (0..CANCELLERS).map(|_| shared.consumer()).collect();
            let barrier = Arc::new(Barrier::new(CANCELLERS + 1));
            let reports_before = std::thread::scope(|scope| {
                let threads: Vec<_> = consumers
                    .iter()
                    .map(|consumer| {
                        let handle = consumer.cancel_handle();
                        let barrier = barrier.clone();
                        scope.spawn(move || {
                            capture_unhandled(|| {
                                barrier.wait();
                                handle.cancel();
                            })
                            .1
                        })
                    })
                    .collect();
                let firing = {
                    let barrier = barrier.clone();
                    scope.spawn(move || {
                        capture_unhandled(|| {
                            barrier.wait();
                            resolver.errback(Failure::msg(MESSAGE));
                        })
                        .1
                    })
                };
                let mut reports = firing.join().unwrap();
                for thread in threads {
                    reports.extend(thread.join().unwrap());
                }
                reports
            });
            let got = consumers
                .into_iter()
                .map(|consumer| consumer.wait().unwrap_err())
                .filter(|failure| !failure.is_cancelled())
                .inspect(|failure| assert_eq!(failure.to_string(), MESSAGE))
                .count();
            drop(shared);
            (reports_before, got)
        });
        reports.extend(reports_before);
        let reported = reports.iter().filter(|f| f.to_string() == MESSAGE).count();
        let expected = usize::from(got == 0);
        if reported != expected {
            lost += 1;
            eprintln!("round {round}: {got} consumers got the failure, reported {reported} times");
        }
    }
    assert_eq!(
        lost, 0,
        "rounds where the failure was not seen exactly once"
    );
}

/// The same race, made deterministic: a `tracing` subscriber (feature `tracing`) sees the
/// "fired" event each consumer's fire emits, on the firing thread, after the `SharedResult`
/// took its waiting consumers and before it fires them, and cancels the only consumer there —
/// as another thread can at that moment. Nobody got the failure: it must be reported once.
#[cfg(feature = "tracing")]
#[test]
fn a_consumer_cancelled_while_the_source_fires_it_loses_no_failure() {
    use deferred_core::{CancelHandle, Deferred, Failure, SharedResult, capture_unhandled};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    /// Cancels `cancel` at the `at`th "fired" event.
    struct CancelAtFire {
        fired: AtomicUsize,
        at: usize,
        cancel: Mutex<Option<CancelHandle>>,
    }
    impl Subscriber for CancelAtFire {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut fired = false;
            event.record(
                &mut |field: &tracing::field::Field, value: &dyn std::fmt::Debug| {
                    fired |= field.name() == "message" && format!("{value:?}") == "fired";
                },
            );
            if fired && self.fired.fetch_add(1, Ordering::SeqCst) + 1 == self.at {
                let cancel = self.cancel.lock().unwrap().take();
                if let Some(cancel) = cancel {
                    cancel.cancel();
                }
            }
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    const MESSAGE: &str = "the source failed as its only consumer was cancelled";
    let (((), got), reports) = capture_unhandled(|| {
        let (source, resolver) = Deferred::<u32>::pending();
        let shared = SharedResult::new(source);
        let consumer = shared.consumer();
        // The first "fired" is the source's, the second the consumer's.
        let subscriber = CancelAtFire {
            fired: AtomicUsize::new(0),
            at: 2,
            cancel: Mutex::new(Some(consumer.cancel_handle())),
        };
        tracing::subscriber::with_default(subscriber, || {
            resolver.errback(Failure::msg(MESSAGE));
        });
        let got = consumer.wait().unwrap_err();
        drop(shared);
        ((), got)
    });
    assert!(got.is_cancelled(), "{got}");
    assert_eq!(
        reports.iter().filter(|f| f.to_string() == MESSAGE).count(),
        1,
        "nobody saw the failure: {reports:?}"
    );
}
