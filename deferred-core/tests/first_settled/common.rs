// The tests of `first_settled`, written once and included by tests/first_settled.rs for each
// kind (module `send`: `Deferred`; module `local`: `LocalDeferred`).
//
// Ported: Bluebird's test/mocha/race.js (`Promise.race`), named at each test; Bluebird's
// "remains forever pending when passed an empty array" is replaced by rule 4 (fails with
// `NoInputs`). The rest test the rules in the docs of `first_settled`.

use deferred_core::{Cancelled, Failure, NoInputs};
use kind::{Deferred, DeferredQueue, first_settled};

use super::support::{Count, unhandled};

/// A pending input whose canceller counts its calls, its resolver, and the count.
fn counted() -> (Deferred<u32>, kind::Resolver<u32>, Count) {
    let cancels = Count::new();
    let c = cancels.clone();
    let (d, r) = Deferred::<u32>::with_canceller(move || c.bump());
    (d, r, cancels)
}

// Bluebird race.js: "fulfills when passed an immediate value" / "an immediately fulfilled value"
#[test]
fn inputs_fired_before_the_call_decide_in_input_order() {
    let first = first_settled([
        Deferred::<u32>::succeed(1),
        Deferred::succeed(2),
        Deferred::succeed(3),
    ]);
    assert_eq!(first.wait().unwrap(), (0, 1));
    let (pending, _r, cancels) = counted();
    let first = first_settled([
        pending,
        Deferred::fail(Failure::msg("at once")),
        Deferred::succeed(3),
    ]);
    assert_eq!(first.wait().unwrap_err().to_string(), "at once");
    assert_eq!(cancels.get(), 1, "the pending loser was cancelled");
}

// Bluebird race.js: "rejects when passed an immediately rejected value"
#[test]
fn a_failure_that_comes_first_ends_it() {
    let first = first_settled([
        Deferred::<u32>::fail(Failure::msg("no")),
        Deferred::succeed(2),
    ]);
    assert_eq!(first.wait().unwrap_err().to_string(), "no");
}

// Bluebird race.js: "fulfills when passed an eventually fulfilled value"
#[test]
fn the_first_to_fire_later_wins_and_every_other_input_is_cancelled_once() {
    for winner in 0..3 {
        let inputs: Vec<_> = (0..3).map(|_| counted()).collect();
        let (deferreds, mut ends): (Vec<_>, Vec<_>) = inputs
            .into_iter()
            .map(|(d, r, c)| (d, (Some(r), c)))
            .unzip();
        let first = first_settled(deferreds);
        assert!(!first.is_fired());
        ends[winner].0.take().unwrap().callback(10 + winner as u32);
        assert_eq!(first.wait().unwrap(), (winner, 10 + winner as u32));
        for (index, (_, cancels)) in ends.iter().enumerate() {
            assert_eq!(cancels.get(), usize::from(index != winner), "input {index}");
        }
    }
}

// Bluebird race.js: "rejects when passed an eventually rejected value"
#[test]
fn a_failure_that_fires_first_later_ends_it_and_cancels_the_others() {
    let (a, _ra, ca) = counted();
    let (b, rb, cb) = counted();
    let first = first_settled([a, b]);
    rb.errback(Failure::msg("b failed first"));
    assert_eq!(first.wait().unwrap_err().to_string(), "b failed first");
    assert_eq!((ca.get(), cb.get()), (1, 0));
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
    let first = first_settled([Deferred::<u32, MyError>::fail(MyError::Refused)]);
    assert_eq!(first.wait().unwrap_err(), MyError::Refused);
}

#[test]
fn what_the_losers_answer_is_dropped_not_reported() {
    let marker = "FIRST-SETTLED-LOSER-ANSWER";
    let before = unhandled(marker);
    // A loser whose canceller answers with a failure of its own.
    let slot = std::sync::Arc::new(std::sync::Mutex::new(None::<kind::Resolver<u32>>));
    let in_canceller = slot.clone();
    let (loser, loser_resolver) = Deferred::<u32>::with_canceller(move || {
        if let Some(r) = in_canceller.lock().unwrap().take() {
            r.errback(Failure::msg(marker));
        }
    });
    *slot.lock().unwrap() = Some(loser_resolver);
    let (winner, winner_resolver) = Deferred::<u32>::pending();
    let first = first_settled([loser, winner]);
    winner_resolver.callback(1);
    assert_eq!(first.wait().unwrap(), (1, 1));
    assert!(
        slot.lock().unwrap().is_none(),
        "the loser was cancelled and answered"
    );
    assert_eq!(unhandled(marker), before);
}

#[test]
fn cancelling_the_result_cancels_every_input_and_the_first_answer_decides() {
    let (a, _ra, ca) = counted();
    let (b, _rb, cb) = counted();
    let first = first_settled([a, b]);
    first.cancel();
    assert_eq!((ca.get(), cb.get()), (1, 1));
    let failure = first.wait().unwrap_err();
    assert!(failure.is::<Cancelled>());
}

#[test]
fn a_canceller_that_succeeds_wins() {
    let slot = std::sync::Arc::new(std::sync::Mutex::new(None::<kind::Resolver<u32>>));
    let in_canceller = slot.clone();
    let (a, ra) = Deferred::<u32>::with_canceller(move || {
        if let Some(r) = in_canceller.lock().unwrap().take() {
            r.callback(99);
        }
    });
    *slot.lock().unwrap() = Some(ra);
    let (b, _rb) = Deferred::<u32>::pending();
    let first = first_settled([a, b]);
    first.cancel();
    assert_eq!(first.wait().unwrap(), (0, 99));
}

/// Rule 3: the inputs are cancelled in input order, and the first answer decides: a later
/// input's canceller that succeeds answers after the first input's `Cancelled`, too late.
#[test]
fn a_later_inputs_canceller_that_succeeds_comes_after_the_first_answer() {
    let slot = std::sync::Arc::new(std::sync::Mutex::new(None::<kind::Resolver<u32>>));
    let in_canceller = slot.clone();
    let (a, _ra) = Deferred::<u32>::pending();
    let (b, rb) = Deferred::<u32>::with_canceller(move || {
        if let Some(r) = in_canceller.lock().unwrap().take() {
            r.callback(99);
        }
    });
    *slot.lock().unwrap() = Some(rb);
    let first = first_settled([a, b]);
    first.cancel();
    assert!(first.wait().unwrap_err().is::<Cancelled>());
}

/// Rule 3 when nobody can see the output (dropped, a `CancelHandle` kept): an input whose
/// producer saw that and ended it unread never answers, and the cancel still reaches the
/// inputs after it (its Resolver dropped, or its `try_fire` refused; a queue's `get`, whose
/// item goes back to the queue).
#[test]
fn a_cancel_of_a_dropped_output_reaches_the_inputs_after_one_ended_unread() {
    for end_unread in 0..3 {
        let queue = DeferredQueue::<u32>::new();
        let (a, ra) = Deferred::<u32>::pending();
        let a = if end_unread == 2 { queue.get() } else { a };
        let (b, _rb, cb) = counted();
        let first = first_settled([a, b]);
        let handle = first.cancel_handle();
        drop(first);
        match end_unread {
            0 => drop(ra),
            1 => assert!(ra.try_fire(Ok(1)).is_err(), "nobody can see it"),
            _ => queue.put(1).unwrap(),
        }
        handle.cancel();
        assert_eq!(cb.get(), 1, "case {end_unread}: the second input is cancelled");
        if end_unread == 2 {
            assert_eq!(queue.len(), 1, "the item went back to the queue");
        }
    }
}

#[test]
fn no_inputs_fails_at_once() {
    let none = first_settled(Vec::<Deferred<u32>>::new());
    assert!(none.is_fired());
    let failure = none.wait().unwrap_err();
    assert!(failure.is::<NoInputs>());
    assert_eq!(failure.to_string(), "there were no inputs to settle");
}

#[test]
fn a_losers_failure_before_the_decision_cannot_be_it_is_the_decision() {
    // With one input, its failure is the outcome, not a leftover.
    let marker = "FIRST-SETTLED-ONLY-INPUT";
    let before = unhandled(marker);
    let (only, r) = Deferred::<u32>::pending();
    let first = first_settled([only]);
    r.errback(Failure::msg(marker));
    assert!(first.wait().is_err());
    assert_eq!(unhandled(marker), before);
}
