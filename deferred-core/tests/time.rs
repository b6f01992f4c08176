//! `defer_later`, `LoopingCall` and `retry` on a `ManualClock`. The tests are written once
//! (tests/time/common.rs, tests/time/retry.rs) and run here for both kinds; those of a
//! `LoopingCall` shared by threads (tests/time/threads.rs) for the `Send` kind.

mod support;

mod send {
    mod kind {
        pub use deferred_core::{
            CancelHandle, Deferred, LoopingCall, Resolver, defer_later, retry, retry_if,
        };
    }
    include!("time/common.rs");
    include!("time/retry.rs");
    include!("time/threads.rs");
}

mod local {
    #![allow(clippy::arc_with_non_send_sync)]
    mod kind {
        pub use deferred_core::local::{CancelHandle, LoopingCall, defer_later, retry, retry_if};
        pub use deferred_core::{LocalDeferred as Deferred, LocalResolver as Resolver};
    }
    include!("time/common.rs");
    include!("time/retry.rs");
}

#[test]
fn looping_call_is_send_and_sync() {
    fn both<X: Send + Sync>() {}
    both::<deferred_core::LoopingCall>();
}

/// A program that picks its clock at run time keeps it boxed as a `dyn Clock`, and gives the
/// box (or an `Arc` of it, or a reference) wherever a clock is asked for.
#[test]
fn a_clock_picked_at_run_time_times_every_helper() {
    use deferred_core::{Clock, Deferred, ManualClock, ThreadClock, TimedOut, retry};
    use std::sync::Arc;
    use std::time::Duration;
    let manual = ManualClock::new();
    let testing = true;
    let clock: Arc<dyn Clock + Send + Sync> = if testing {
        Arc::new(manual.clone())
    } else {
        Arc::new(ThreadClock)
    };
    let (slow, _resolver) = Deferred::<u32>::pending();
    let slow = slow.add_timeout(Duration::from_secs(1), &*clock);
    let retried = retry(
        clock.clone(),
        deferred_core::RetryPolicy::exponential(Duration::from_secs(1)).max_attempts(1),
        || Ok::<u32, deferred_core::Failure>(7),
    );
    manual.advance(Duration::from_secs(1));
    assert!(slow.wait().unwrap_err().is::<TimedOut>());
    assert_eq!(retried.wait().unwrap(), 7);
    let boxed: Box<dyn Clock + Send + Sync> = Box::new(manual.clone());
    assert_eq!(boxed.now(), manual.now());
}

#[test]
fn a_policys_waits_say_how_many_are_left_and_stay_finished() {
    use deferred_core::RetryPolicy;
    use std::time::Duration;
    let policy = RetryPolicy::exponential(Duration::from_secs(1)).max_attempts(4);
    let mut delays = policy.delays();
    assert_eq!(delays.size_hint(), (3, Some(3)));
    assert_eq!(delays.by_ref().count(), 3);
    assert_eq!((delays.next(), delays.next()), (None, None));
    assert!(
        !format!("{policy:?}").contains("18446744073709551615"),
        "{policy:?}"
    );
}
