//! `first_settled`: the first input to fire, either way, decides; the others are cancelled. The
//! tests are written once (tests/first_settled/common.rs) and run here for both kinds.

mod support;

mod send {
    mod kind {
        pub use deferred_core::{Deferred, DeferredQueue, Resolver, first_settled};
    }
    include!("first_settled/common.rs");
}

mod local {
    // The body is written once for both kinds, so shared slots are `Arc<Mutex<..>>`.
    #![allow(clippy::arc_with_non_send_sync)]
    mod kind {
        pub use deferred_core::local::{DeferredQueue, first_settled};
        pub use deferred_core::{LocalDeferred as Deferred, LocalResolver as Resolver};
    }
    include!("first_settled/common.rs");
}

#[test]
fn the_first_of_inputs_fired_on_other_threads_wins() {
    use deferred_core::{Deferred, first_settled};
    let (a, ra) = Deferred::<u32>::pending();
    let (b, rb) = Deferred::<u32>::pending();
    let first = first_settled([a, b]);
    std::thread::spawn(move || rb.callback(2)).join().unwrap();
    std::thread::spawn(move || ra.callback(1)).join().unwrap();
    assert_eq!(first.wait().unwrap(), (1, 2));
}
