// The tests of `join` and `join_settled`, written once and included by tests/join.rs for each
// kind (module `send`: `Deferred`; module `local`: `LocalDeferred`). They test the rules in the
// docs of `join` and `join_settled`.

use deferred_core::{Cancelled, Failure};
use kind::{Deferred, Join, join, join_settled};

use super::support::{Count, unhandled};

/// A pending input whose canceller counts its calls, its resolver, and the count.
fn counted<T: Send + 'static>() -> (Deferred<T>, kind::Resolver<T>, Count) {
    let cancels = Count::new();
    let c = cancels.clone();
    let (d, r) = Deferred::<T>::with_canceller(move || c.bump());
    (d, r, cancels)
}

#[test]
fn values_of_different_types_come_in_input_order_whatever_order_they_fire_in() {
    let (name, name_resolver) = Deferred::<String>::pending();
    let (bytes, bytes_resolver) = Deferred::<Vec<u8>>::pending();
    let all = join((Deferred::<u32>::succeed(7), name, bytes));
    assert!(!all.is_fired());
    bytes_resolver.callback(vec![1, 2]);
    assert!(!all.is_fired(), "one input is still pending");
    name_resolver.callback("alice".to_string());
    let (id, name, bytes): (u32, String, Vec<u8>) = all.wait().unwrap();
    assert_eq!((id, name.as_str(), bytes), (7, "alice", vec![1, 2]));
}

#[test]
fn inputs_all_fired_before_the_call_give_a_fired_join() {
    let all = join((
        Deferred::<u32>::succeed(1),
        Deferred::<&str>::succeed("two"),
    ));
    assert!(all.is_fired());
    assert_eq!(all.wait().unwrap(), (1, "two"));
    let settled = join_settled((
        Deferred::<u32>::succeed(1),
        Deferred::<&str>::fail(Failure::msg("no")),
    ));
    assert!(settled.is_fired());
    let (one, two) = settled.wait().unwrap();
    assert_eq!(one.unwrap(), 1);
    assert_eq!(two.unwrap_err().to_string(), "no");
}

#[test]
fn the_method_form_is_the_same_function() {
    let (a, ra) = Deferred::<u32>::pending();
    let both = (a, Deferred::<char>::succeed('b')).join();
    ra.callback(1);
    assert_eq!(both.wait().unwrap(), (1, 'b'));
    let settled = (Deferred::<u32>::succeed(1), Deferred::<char>::succeed('b')).join_settled();
    let (a, b) = settled.wait().unwrap();
    assert_eq!((a.unwrap(), b.unwrap()), (1, 'b'));
}

#[test]
fn twelve_inputs_of_twelve_types() {
    let all = join((
        Deferred::<u8>::succeed(1),
        Deferred::<u16>::succeed(2),
        Deferred::<u32>::succeed(3),
        Deferred::<u64>::succeed(4),
        Deferred::<i8>::succeed(5),
        Deferred::<i16>::succeed(6),
        Deferred::<i32>::succeed(7),
        Deferred::<i64>::succeed(8),
        Deferred::<char>::succeed('9'),
        Deferred::<&str>::succeed("10"),
        Deferred::<String>::succeed("11".to_string()),
        Deferred::<bool>::succeed(true),
    ));
    let (a, b, c, d, e, f, g, h, i, j, k, l) = all.wait().unwrap();
    assert_eq!((a, b, c, d, e, f, g, h), (1, 2, 3, 4, 5, 6, 7, 8));
    assert_eq!((i, j, k.as_str(), l), ('9', "10", "11", true));
}

#[test]
fn the_first_failure_wins_and_every_other_pending_input_is_cancelled_once() {
    let marker = "JOIN-FIRST-FAILURE";
    let before = unhandled(marker);
    let (a, ra, ca) = counted::<u32>();
    let (b, rb, cb) = counted::<String>();
    let (c, rc, cc) = counted::<bool>();
    let all = join((a, b, c));
    rb.errback(Failure::msg(marker));
    assert!(all.is_fired(), "the failure decides at once");
    let failure = all.wait().unwrap_err();
    assert_eq!(
        failure.to_string(),
        marker,
        "the failure as it is, not wrapped"
    );
    assert_eq!((ca.get(), cb.get(), cc.get()), (1, 0, 1));
    // Nobody can see the losers' results any more.
    assert!(ra.is_closed() && rc.is_closed());
    ra.callback(1); // ignored: cancelled
    rc.errback(Failure::msg(marker)); // ignored too: not reported
    assert_eq!(
        unhandled(marker),
        before,
        "the failure was handled by the join's reader"
    );
}

#[test]
fn inputs_failed_before_the_call_decide_in_input_order_and_the_rest_is_dropped() {
    let marker = "JOIN-FAILED-BEFORE";
    let before = unhandled(marker);
    let (pending, _r, cancels) = counted::<u32>();
    let all = join((
        pending,
        Deferred::<&str>::fail(Failure::msg(format!("{marker} first"))),
        Deferred::<u8>::fail(Failure::msg(format!("{marker} second"))),
    ));
    assert_eq!(
        all.wait().unwrap_err().to_string(),
        format!("{marker} first")
    );
    assert_eq!(cancels.get(), 1);
    assert_eq!(
        unhandled(marker),
        before,
        "the second failure is dropped, not reported"
    );
}

#[test]
fn the_errors_type_is_kept() {
    #[derive(Debug, PartialEq)]
    enum MyError {
        Refused,
        Chain,
    }
    impl From<Failure> for MyError {
        fn from(_: Failure) -> MyError {
            MyError::Chain
        }
    }
    let all = join((
        Deferred::<u32, MyError>::succeed(1),
        Deferred::<char, MyError>::fail(MyError::Refused),
    ));
    assert_eq!(all.wait().unwrap_err(), MyError::Refused);
}

#[test]
fn cancelling_the_join_cancels_every_input() {
    let (a, _ra, ca) = counted::<u32>();
    let (b, _rb, cb) = counted::<String>();
    let (c, _rc, cc) = counted::<()>();
    let all = join((a, b, c));
    all.cancel();
    assert_eq!((ca.get(), cb.get(), cc.get()), (1, 1, 1));
    assert!(all.wait().unwrap_err().is::<Cancelled>());
}

#[test]
fn cancelling_a_settled_join_gives_each_inputs_answer() {
    let (a, _ra, ca) = counted::<u32>();
    let (b, _rb, cb) = counted::<String>();
    let all = join_settled((a, Deferred::<u8>::succeed(3), b));
    all.cancel();
    assert_eq!((ca.get(), cb.get()), (1, 1));
    let (a, three, b) = all.wait().unwrap();
    assert!(a.unwrap_err().is_cancelled());
    assert_eq!(three.unwrap(), 3);
    assert!(b.unwrap_err().is_cancelled());
}

#[test]
fn the_settled_join_waits_for_every_input_and_keeps_each_outcome() {
    let marker = "JOIN-SETTLED-MIXED";
    let before = unhandled(marker);
    let (a, ra, ca) = counted::<u32>();
    let (b, rb, cb) = counted::<String>();
    let (c, rc, cc) = counted::<Vec<u8>>();
    let all = join_settled((a, b, c));
    rb.errback(Failure::msg(marker));
    assert!(!all.is_fired(), "a failure decides nothing here");
    rc.callback(vec![3]);
    assert!(!all.is_fired());
    ra.callback(1);
    let (a, b, c) = all.wait().unwrap();
    assert_eq!(a.unwrap(), 1);
    assert_eq!(b.unwrap_err().to_string(), marker);
    assert_eq!(c.unwrap(), [3]);
    assert_eq!(
        (ca.get(), cb.get(), cc.get()),
        (0, 0, 0),
        "nothing was cancelled"
    );
    assert_eq!(
        unhandled(marker),
        before,
        "the failure is in the tuple, handled"
    );
}

#[test]
fn a_failure_in_the_settled_tuple_is_the_readers_and_not_reported() {
    let marker = "JOIN-SETTLED-UNREAD";
    let before = unhandled(marker);
    let all = join_settled((
        Deferred::<u32>::succeed(1),
        Deferred::<u32>::fail(Failure::msg(marker)),
    ));
    // The tuple's `Err` is a plain `Result` once taken: dropping it is the reader's choice.
    let (_one, _two) = all.wait().unwrap();
    assert_eq!(unhandled(marker), before);
}

#[test]
fn an_unread_settled_join_reports_its_failures_once() {
    // Each kind's own: the two kinds' tests run at once, and the hook counts every thread's.
    let marker = &format!("JOIN-SETTLED-DROPPED in {}", module_path!());
    let before = unhandled(marker);
    // Fired as it is made (its inputs had fired), dropped unread.
    drop(join_settled((
        Deferred::<u32>::succeed(1),
        Deferred::<&str>::fail(Failure::msg(marker)),
    )));
    assert_eq!(unhandled(marker), before + 1, "dropped after it fired");

    // Fired by its inputs, then dropped.
    let (a, ra) = Deferred::<u32>::pending();
    let (b, rb) = Deferred::<String>::pending();
    let all = join_settled((a, b));
    rb.errback(Failure::msg(marker));
    ra.callback(1);
    assert!(all.is_fired());
    assert_eq!(unhandled(marker), before + 1, "not while it can be read");
    drop(all);
    assert_eq!(unhandled(marker), before + 2, "dropped once its inputs fired it");

    // Dropped before it fires: each failure is reported as the inputs fire it.
    let (a, ra) = Deferred::<u32>::pending();
    let (b, rb) = Deferred::<String>::pending();
    drop(join_settled((a, b)));
    ra.errback(Failure::msg(marker));
    rb.errback(Failure::msg(marker));
    assert_eq!(unhandled(marker), before + 4, "dropped before it fired");

    // Dropped before it fires, and one input never does (nobody can see it: its producer
    // stops): the failure kept from the other is reported.
    let (a, ra) = Deferred::<u32>::pending();
    let (b, rb) = Deferred::<String>::pending();
    drop(join_settled((a, b)));
    ra.errback(Failure::msg(marker));
    assert!(rb.is_closed());
    drop(rb);
    assert_eq!(unhandled(marker), before + 5, "kept, and let go unread");
}

#[test]
fn a_settled_join_read_by_a_step_reports_nothing() {
    // Each kind's own: the two kinds' tests run at once, and the hook counts every thread's.
    let marker = &format!("JOIN-SETTLED-STEP in {}", module_path!());
    let before = unhandled(marker);
    let (a, ra) = Deferred::<u32>::pending();
    let read = join_settled((a, Deferred::<u8>::fail(Failure::msg(marker))))
        .add_callback(|(a, b)| Ok::<_, Failure>(a.is_err() && b.is_err()));
    ra.errback(Failure::msg(marker));
    assert!(read.wait().unwrap());
    // A step added once it fired, whose own result nobody reads.
    drop(
        join_settled((
            Deferred::<u32>::succeed(1),
            Deferred::<u8>::fail(Failure::msg(marker)),
        ))
        .add_callback(|_| Ok::<_, Failure>(())),
    );
    assert_eq!(unhandled(marker), before);
}
