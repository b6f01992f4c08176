//! `defer_later`, `LoopingCall` and `retry` on a `ManualClock`. The tests are written once
//! (tests/time/common.rs, tests/time/retry.rs) and run here for both kinds.

mod support;

mod send {
    mod kind {
        pub use deferred_core::{
            CancelHandle, Deferred, LoopingCall, Resolver, defer_later, retry, retry_if,
        };
    }
    include!("time/common.rs");
    include!("time/retry.rs");
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
