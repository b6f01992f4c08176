// The tests of `is_pending`, `peek`, `poll_fired` and `Resolver::is_closed`, written once and
// included by tests/peek.rs for each kind (module `send`: `Deferred`; module `local`:
// `LocalDeferred`).

use deferred_core::Failure;
use kind::{Deferred, SharedResult};

use super::support::{Count, unhandled};

#[test]
fn peek_sees_a_result_held_here_and_leaves_it() {
    let d = Deferred::<u32>::succeed(1).add_callback(|x| Ok(x + 1));
    assert!(!d.is_pending());
    assert_eq!(d.peek().unwrap().ok(), Some(&2));
    assert_eq!(
        d.peek().unwrap().ok(),
        Some(&2),
        "peeking twice sees it twice"
    );
    assert_eq!(d.wait().unwrap(), 2, "and it is still there to take");
}

#[test]
fn peeking_at_a_failure_does_not_handle_it() {
    let marker = "PEEK-FAILURE-UNHANDLED";
    let before = unhandled(marker);
    let d = Deferred::<u32>::fail(Failure::msg(marker));
    assert_eq!(d.peek().unwrap().unwrap_err().to_string(), marker);
    drop(d);
    assert_eq!(unhandled(marker), before + 1);
}

#[test]
fn peek_sees_nothing_of_a_pending_chain_even_once_it_has_fired() {
    let (d, resolver) = Deferred::<u32>::pending();
    let d = d.add_callback(|x| Ok(x * 10));
    assert!(d.is_pending() && !d.is_fired());
    assert!(d.peek().is_none());
    resolver.callback(4);
    assert!(!d.is_pending() && d.is_fired());
    assert!(
        d.peek().is_none(),
        "the result is in the chain, behind its lock"
    );
    assert_eq!(d.wait().unwrap(), 40);
}

#[test]
fn poll_fired_brings_a_fired_chains_result_here() {
    let (d, resolver) = Deferred::<String>::pending();
    let mut d = d.add_callback(|s: String| Ok(s.to_uppercase()));
    assert!(d.poll_fired().is_none(), "not fired yet");
    assert!(d.is_pending());
    resolver.callback("ok".to_string());
    assert_eq!(d.poll_fired().unwrap().ok().map(String::as_str), Some("OK"));
    // It is held here now: `peek` sees it, and `poll_fired` again sees the same.
    assert_eq!(d.peek().unwrap().ok().map(String::as_str), Some("OK"));
    assert_eq!(d.poll_fired().unwrap().ok().map(String::as_str), Some("OK"));
    assert_eq!(d.wait().unwrap(), "OK");
}

#[test]
fn after_poll_fired_the_deferred_is_a_fired_one() {
    let (d, resolver) = Deferred::<u32>::pending();
    let mut d = d.add_callback(|x| Ok(x + 1));
    resolver.callback(1);
    assert!(d.poll_fired().is_some());
    d.cancel(); // nothing to cancel
    let ran = Count::new();
    let seen = ran.clone();
    let d = d.add_callback(move |x| {
        seen.bump();
        Ok(x * 2)
    });
    assert_eq!(ran.get(), 1, "a step added now runs at once");
    assert_eq!(d.peek().unwrap().ok(), Some(&4));
    assert_eq!(d.wait().unwrap(), 4);
}

#[test]
fn a_failure_polled_in_is_still_reported_if_nobody_takes_it() {
    let marker = "POLL-FIRED-FAILURE-UNHANDLED";
    let before = unhandled(marker);
    let (d, resolver) = Deferred::<u32>::pending();
    let mut d = d.add_callback(|x| Ok(x + 1));
    resolver.errback(Failure::msg(marker));
    assert_eq!(d.poll_fired().unwrap().unwrap_err().to_string(), marker);
    assert_eq!(unhandled(marker), before, "not while it is held");
    drop(d);
    assert_eq!(unhandled(marker), before + 1, "once, when dropped");
}

#[test]
fn a_frame_loop_polls_until_the_result_is_here() {
    let (d, resolver) = Deferred::<u32>::pending();
    let mut d = d.add_callback(|x| Ok(x + 1));
    let mut resolver = Some(resolver);
    let mut frames = 0;
    let value = loop {
        frames += 1;
        if frames == 3 {
            resolver.take().unwrap().callback(41); // the work ends during frame 3
        }
        if let Some(result) = d.poll_fired() {
            break *result.unwrap();
        }
    };
    assert_eq!((frames, value), (3, 42));
}

#[test]
fn a_resolver_is_open_while_the_end_or_a_step_can_see_the_result() {
    let (d, resolver) = Deferred::<u32>::pending();
    assert!(!resolver.is_closed());
    let d = d.add_callback(|x| Ok(x + 1));
    assert!(!resolver.is_closed());
    drop(d); // a step is left to run: it will see the result
    assert!(!resolver.is_closed());
    resolver.callback(1);
}

#[test]
fn a_resolver_is_closed_once_its_deferred_is_cancelled() {
    let (d, resolver) = Deferred::<u32>::pending();
    let d = d.add_errback(|f| if f.is_cancelled() { Ok(0) } else { Err(f) });
    d.cancel();
    assert!(resolver.is_closed());
    resolver.callback(5); // ignored
    assert_eq!(d.wait().unwrap(), 0);
}

#[test]
fn a_resolver_is_closed_once_its_deferred_is_dropped_with_no_step_left() {
    let (d, resolver) = Deferred::<u32>::pending();
    drop(d);
    assert!(resolver.is_closed());
    resolver.callback(5); // nobody sees it, and it is no failure: nothing reported
}

#[test]
fn a_resolver_is_closed_when_a_chain_waiting_on_it_is_cancelled() {
    let (inner, resolver) = Deferred::<u32>::pending();
    let outer = Deferred::<u32>::succeed(1).add_callback(move |_| inner);
    assert!(!resolver.is_closed(), "the outer chain waits on it");
    outer.cancel();
    assert!(resolver.is_closed());
    assert!(outer.wait().unwrap_err().is_cancelled());
}

#[test]
fn a_resolver_is_open_while_a_task_polls_its_end() {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Waker};
    let (d, resolver) = Deferred::<u32>::pending();
    let mut d = pin!(d);
    assert!(
        d.as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
            .is_pending()
    );
    assert!(!resolver.is_closed());
    resolver.callback(1);
    assert!(d.is_fired());
}

#[test]
fn a_shared_results_source_is_closed_once_every_consumer_gave_up() {
    let (source, resolver) = Deferred::<u32>::pending();
    let shared = SharedResult::new(source);
    let (a, b) = (shared.consumer(), shared.consumer());
    drop(shared);
    a.cancel();
    assert!(!resolver.is_closed(), "`b` still wants it");
    b.cancel();
    assert!(resolver.is_closed());
    assert!(a.wait().unwrap_err().is_cancelled() && b.wait().unwrap_err().is_cancelled());
}
