//! `join` and `join_settled`: Deferreds of different types as one Deferred of a tuple. The tests
//! are written once (tests/join/common.rs) and run here for both kinds.

mod support;

mod send {
    mod kind {
        pub use deferred_core::{Deferred, Join, Resolver, join, join_settled};
    }
    include!("join/common.rs");
}

mod local {
    // The body is written once for both kinds, so shared slots are `Arc<Mutex<..>>`.
    #![allow(clippy::arc_with_non_send_sync)]
    mod kind {
        pub use deferred_core::local::{Join, join, join_settled};
        pub use deferred_core::{LocalDeferred as Deferred, LocalResolver as Resolver};
    }
    include!("join/common.rs");
}

#[test]
fn inputs_fired_on_other_threads_are_joined() {
    use deferred_core::{Deferred, join};
    let (a, ra) = Deferred::<u32>::pending();
    let (b, rb) = Deferred::<String>::pending();
    let both = join((a, b));
    let threads = [
        std::thread::spawn(move || rb.callback("b".to_string())),
        std::thread::spawn(move || ra.callback(1)),
    ];
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(both.wait().unwrap(), (1, "b".to_string()));
}
