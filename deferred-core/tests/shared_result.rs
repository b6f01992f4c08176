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
