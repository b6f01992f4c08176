//! race: Twisted's test_defer.py `RaceTests`, plus the empty race and failure reporting.

mod helpers_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use deferred::{Deferred, Failure, FailureGroup, Resolver, race};
use helpers_support::Unhandled;

/// Where an input's Resolver waits to be fired by the test or by its canceller.
type Slot = Arc<Mutex<Option<Resolver<&'static str>>>>;

/// A pending input whose canceller counts its calls, then fires it with `answer()`, or lets it
/// fail with `Cancelled` when `answer` is `None`.
fn counted(
    answer: Option<fn() -> Result<&'static str, Failure>>,
) -> (Deferred<&'static str>, Slot, Arc<AtomicUsize>) {
    let slot: Slot = Arc::default();
    let cancels = Arc::new(AtomicUsize::new(0));
    let (in_canceller, count) = (slot.clone(), cancels.clone());
    let (deferred, resolver) = Deferred::with_canceller(move || {
        count.fetch_add(1, Ordering::SeqCst);
        let resolver = in_canceller.lock().unwrap().take();
        if let Some(resolver) = resolver {
            resolver.fire(answer.map_or_else(|| Err(Failure::cancelled()), |answer| answer()));
        }
    });
    *slot.lock().unwrap() = Some(resolver);
    (deferred, slot, cancels)
}

fn fire(slot: &Mutex<Option<Resolver<&'static str>>>, result: Result<&'static str, Failure>) {
    let resolver = slot.lock().unwrap().take();
    resolver.expect("not fired yet").fire(result);
}

// Twisted: RaceTests.test_success
#[test]
fn the_first_success_wins_and_every_other_input_is_cancelled_once() {
    for before in 0..3 {
        for after in 0..3 {
            let inputs: Vec<_> = (0..before + 1 + after).map(|_| counted(None)).collect();
            let (deferreds, ends): (Vec<_>, Vec<_>) =
                inputs.into_iter().map(|(d, s, c)| (d, (s, c))).unzip();
            let winner = race(deferreds);
            fire(&ends[before].0, Ok("obj"));
            assert_eq!(winner.wait().unwrap(), (before, "obj"));
            for (index, (_, cancels)) in ends.iter().enumerate() {
                let expected = usize::from(index != before);
                assert_eq!(cancels.load(Ordering::SeqCst), expected, "input {index}");
            }
        }
    }
}

// Twisted: RaceTests.test_failure
#[test]
fn when_every_input_fails_the_race_fails_with_all_failures_in_order() {
    for before in 0..3 {
        for after in 0..3 {
            let count = before + 1 + after;
            let inputs: Vec<_> = (0..count).map(|_| counted(None)).collect();
            let (deferreds, ends): (Vec<_>, Vec<_>) =
                inputs.into_iter().map(|(d, s, c)| (d, (s, c))).unzip();
            let lost = race(deferreds);
            for (index, (slot, _)) in ends.iter().enumerate().rev() {
                fire(slot, Err(Failure::msg(format!("F{index}"))));
            }
            let group = lost.wait().unwrap_err().trap::<FailureGroup>().unwrap();
            let messages: Vec<String> = group.failures.iter().map(ToString::to_string).collect();
            let expected: Vec<String> = (0..count).map(|i| format!("F{i}")).collect();
            assert_eq!(messages, expected);
            assert!(ends.iter().all(|(_, c)| c.load(Ordering::SeqCst) == 0));
        }
    }
}

// Twisted: RaceTests.test_resultAfterCancel
#[test]
fn a_late_result_from_a_cancelled_loser_is_ignored_and_nothing_is_reported() {
    let marker = "race-result-after-cancel";
    let unhandled = Unhandled::start(marker);

    // No cancellers: a late fire after the cancellation is ignored, as Twisted swallows it.
    let (d0, r0) = Deferred::<&str>::pending();
    let (d1, r1) = Deferred::<&str>::pending();
    let (d2, r2) = Deferred::<&str>::pending();
    let winner = race([d0, d1, d2]);
    r0.callback("winner");
    r1.callback("late success");
    r2.errback(Failure::msg(marker));
    assert_eq!(winner.wait().unwrap(), (0, "winner"));
    assert_eq!(unhandled.count(), 0);
}

// Twisted: RaceTests.test_resultFromCancel
#[test]
fn a_loser_whose_canceller_succeeds_does_not_change_the_winner() {
    let (d0, s0, c0) = counted(None);
    let (d1, _s1, c1) = counted(Some(|| Ok("from the canceller")));
    let winner = race([d0, d1]);
    fire(&s0, Ok("expected"));
    assert_eq!(winner.wait().unwrap(), (0, "expected"));
    assert_eq!(
        (c0.load(Ordering::SeqCst), c1.load(Ordering::SeqCst)),
        (0, 1)
    );
}

// Twisted: RaceTests.test_cancel
#[test]
fn cancelling_the_race_cancels_every_input_once() {
    for count in 1..=3 {
        let inputs: Vec<_> = (0..count).map(|_| counted(None)).collect();
        let (deferreds, cancels): (Vec<_>, Vec<_>) =
            inputs.into_iter().map(|(d, _, c)| (d, c)).unzip();
        let cancelled = race(deferreds);
        cancelled.cancel();
        assert!(cancels.iter().all(|c| c.load(Ordering::SeqCst) == 1));
        let group = cancelled
            .wait()
            .unwrap_err()
            .trap::<FailureGroup>()
            .unwrap();
        assert_eq!(group.failures.len(), count);
        assert!(group.failures.iter().all(Failure::is_cancelled));
    }
}

#[test]
fn a_canceller_that_succeeds_wins_a_cancelled_race() {
    let (d0, _s0, _c0) = counted(None);
    let (d1, _s1, _c1) = counted(Some(|| Ok("answer from cancel")));
    let cancelled = race([d0, d1]);
    cancelled.cancel();
    assert_eq!(cancelled.wait().unwrap(), (1, "answer from cancel"));
}

#[test]
fn an_empty_race_fails_at_once_with_no_failures() {
    // Twisted's `race([])` never fires; ours fails at once (as JavaScript's `Promise.any([])`).
    let empty = race(Vec::<Deferred<u32>>::new());
    assert!(empty.is_fired());
    let group = empty.wait().unwrap_err().trap::<FailureGroup>().unwrap();
    assert!(group.failures.is_empty());
}

// Twisted: catalogue O.163 (the losers' results are consumed by the race)
#[test]
fn failures_of_losers_are_consumed_not_reported() {
    let marker = "race-loser-failed-first";
    let unhandled = Unhandled::start(marker);

    let (slow, slow_resolver) = Deferred::<&str>::pending();
    let winner = race([Deferred::fail(Failure::msg(marker)), slow]);
    assert!(!winner.is_fired(), "one failure does not end a race");
    slow_resolver.callback("slow but fine");
    assert_eq!(winner.wait().unwrap(), (1, "slow but fine"));
    assert_eq!(unhandled.count(), 0);
}

#[test]
fn an_already_fired_success_wins_at_construction() {
    let (later, later_cancels) = {
        let (d, _slot, cancels) = counted(None);
        (d, cancels)
    };
    let winner = race([later, Deferred::succeed("ready")]);
    assert!(winner.is_fired());
    assert_eq!(later_cancels.load(Ordering::SeqCst), 1);
    assert_eq!(winner.wait().unwrap(), (1, "ready"));
}

#[test]
fn a_dropped_race_that_fails_reports_once() {
    let marker = "dropped-race";
    let unhandled = Unhandled::start(marker);
    let (d, resolver) = Deferred::<u32>::pending();
    drop(race([d]));
    resolver.errback(Failure::msg(marker));
    assert_eq!(unhandled.count(), 1);
}

/// The failure of a race every input lost says each input's failure once, with what caused it:
/// the group's message holds them, so it has no `source()` of its own.
#[test]
fn a_lost_race_says_each_failure_once_with_its_cause() {
    #[derive(Debug)]
    struct Query(std::io::Error);
    impl std::fmt::Display for Query {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("query failed")
        }
    }
    impl std::error::Error for Query {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
    let lost = race([
        Deferred::<u32>::fail(Failure::new(Query(std::io::Error::other("disk full")))),
        Deferred::fail(Failure::msg("timed out")),
    ]);
    let failure = lost.wait().unwrap_err();
    assert_eq!(
        format!("{failure:#}"),
        "all 2 inputs failed: #0: query failed: disk full; #1: timed out"
    );
    assert!(std::error::Error::source(failure.error()).is_none());
}
