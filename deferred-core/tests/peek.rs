//! Looking without consuming: `is_pending`, `peek` and `poll_fired` on the Deferred, and
//! `is_closed` on the Resolver (whether anybody can still see the result). The tests are
//! written once (tests/peek/common.rs) and run here for both kinds.

mod support;

mod send {
    mod kind {
        pub use deferred_core::{Deferred, SharedResult};
    }
    include!("peek/common.rs");
}

mod local {
    mod kind {
        pub use deferred_core::LocalDeferred as Deferred;
        pub use deferred_core::local::SharedResult;
    }
    include!("peek/common.rs");
}

#[test]
fn a_result_fired_on_another_thread_is_polled_in() {
    use deferred_core::Deferred;
    let (d, resolver) = Deferred::<String>::pending();
    let mut d = d.add_callback(|s: String| Ok(s.len()));
    std::thread::spawn(move || resolver.callback("four".to_string()))
        .join()
        .unwrap();
    assert_eq!(d.poll_fired().unwrap().ok(), Some(&4));
}

#[test]
fn a_worker_sees_the_cancel_and_stops() {
    use deferred_core::Deferred;
    use std::sync::mpsc;
    let (d, resolver) = Deferred::<u64>::pending();
    let (started, has_started) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        let open_at_first = !resolver.is_closed();
        started.send(()).unwrap();
        while !resolver.is_closed() {
            std::thread::yield_now(); // a piece of the work
        }
        open_at_first
    });
    has_started.recv().unwrap();
    d.cancel();
    assert!(
        worker.join().unwrap(),
        "open until the cancel, and the worker stopped after it"
    );
    assert!(d.wait().unwrap_err().is_cancelled());
}
