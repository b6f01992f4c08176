//! Cancelling combinators: Twisted's test_defer.py group "Cancellation of DeferredList and
//! gatherResults", plus cancelling from inside a callback and cancelling twice.

mod helpers_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use deferred::{
    Cancelled, Deferred, DeferredList, Failure, FirstError, FirstSuccess, Panicked, Resolver,
    gather_results, settle_all,
};
use helpers_support::Unhandled;

/// The far end of an input Deferred: fire it, and see whether and how often it was cancelled.
struct Input<T: Send + 'static> {
    resolver: Arc<Mutex<Option<Resolver<T>>>>,
    cancels: Arc<AtomicUsize>,
}

impl<T: Send + 'static> Input<T> {
    fn fire(&self, result: Result<T, Failure>) {
        let resolver = self.resolver.lock().unwrap().take();
        resolver.expect("fired once").fire(result);
    }

    fn cancels(&self) -> usize {
        self.cancels.load(Ordering::SeqCst)
    }

    /// Neither fired nor cancelled.
    fn is_untouched(&self) -> bool {
        self.cancels() == 0 && self.resolver.lock().unwrap().is_some()
    }
}

/// A pending input whose canceller counts its calls and fires it with `answer()`. The canceller
/// holds the input's Resolver (in the slot it shares with `Input`), and the Resolver holds the
/// Deferred and so the canceller: an input neither fired nor cancelled is never freed (a cycle,
/// which .ci/memcheck reports), so a test that leaves an input untouched fires it at its end.
fn input_answering<T: Send + 'static>(
    answer: impl FnOnce() -> Result<T, Failure> + Send + 'static,
) -> (Deferred<T>, Input<T>) {
    let slot: Arc<Mutex<Option<Resolver<T>>>> = Arc::default();
    let cancels = Arc::new(AtomicUsize::new(0));
    let (in_canceller, count) = (slot.clone(), cancels.clone());
    let (deferred, resolver) = Deferred::with_canceller(move || {
        count.fetch_add(1, Ordering::SeqCst);
        let resolver = in_canceller.lock().unwrap().take();
        if let Some(resolver) = resolver {
            resolver.fire(answer());
        }
    });
    *slot.lock().unwrap() = Some(resolver);
    (
        deferred,
        Input {
            resolver: slot,
            cancels,
        },
    )
}

/// A pending input whose canceller counts its calls and lets it fail with `Cancelled`.
fn input<T: Send + 'static>() -> (Deferred<T>, Input<T>) {
    input_answering(|| Err(Failure::cancelled()))
}

// Twisted: DeferredCancellerTests.test_cancelDeferredList
#[test]
fn cancelling_a_list_cancels_every_input() {
    let (d1, i1) = input::<u32>();
    let (d2, i2) = input::<u32>();
    let list = DeferredList::new([d1, d2]).all();
    list.cancel();
    assert_eq!((i1.cancels(), i2.cancels()), (1, 1));
    let results = list.wait().unwrap();
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().unwrap_err().is_cancelled())
    );
}

// Twisted: DeferredCancellerTests.test_cancelDeferredListCallback
#[test]
fn a_list_fires_with_what_the_cancellers_answer() {
    let (d1, _i1) = input_answering(|| Ok("Callback Result"));
    let (d2, _r2) = Deferred::<&str>::pending(); // no canceller
    let list = DeferredList::new([d1, d2]).all();
    list.cancel();
    let results = list.wait().unwrap();
    assert_eq!(results[0].as_ref().unwrap(), &"Callback Result");
    assert!(results[1].as_ref().unwrap_err().is::<Cancelled>());
}

// Twisted: DeferredCancellerTests.test_cancelDeferredListWithFireOnOneCallback
#[test]
fn cancelling_a_fire_on_one_callback_list_cancels_every_input() {
    let (d1, i1) = input::<u32>();
    let (d2, i2) = input::<u32>();
    let first = DeferredList::new([d1, d2]).fire_on_one_callback();
    first.cancel();
    assert_eq!((i1.cancels(), i2.cancels()), (1, 1));
    match first.wait().unwrap() {
        FirstSuccess::AllFailed(failures) => {
            assert_eq!(failures.len(), 2);
            assert!(failures.iter().all(Failure::is_cancelled));
        }
        FirstSuccess::Succeeded { .. } => panic!("nothing succeeded"),
    }
}

// Twisted: DeferredCancellerTests.test_cancelDeferredListWithFireOnOneCallbackAndDeferredCallback
#[test]
fn a_canceller_that_succeeds_wins_a_fire_on_one_callback_list() {
    let marker = "fire-on-one-callback-cancelled-loser";
    let unhandled = Unhandled::start(marker);

    let (d1, _i1) = input_answering(|| Ok("Callback Result"));
    let (d2, i2) = input_answering(move || Err(Failure::msg(marker)));
    let first = DeferredList::new([d1, d2]).fire_on_one_callback();
    first.cancel();
    assert!(matches!(
        first.wait().unwrap(),
        FirstSuccess::Succeeded {
            index: 0,
            value: "Callback Result"
        }
    ));
    assert_eq!(i2.cancels(), 1);
    // d2's canceller answers with a failure of its own, not a cancellation: the outcome does
    // not carry it, so it is reported (as Twisted logs it), where a cancellation, the expected
    // answer to the list's cancel, would not be.
    assert_eq!(unhandled.count(), 1);
}

// Twisted: DeferredCancellerTests.test_cancelDeferredListWithFireOnOneErrback
#[test]
fn cancelling_a_fire_on_one_errback_list_fails_with_the_first_cancellation() {
    let (d1, i1) = input::<u32>();
    let (d2, i2) = input::<u32>();
    let gathered = DeferredList::new([d1, d2]).fire_on_one_errback();
    gathered.cancel();
    assert_eq!((i1.cancels(), i2.cancels()), (1, 1));
    let first = gathered.wait().unwrap_err().trap::<FirstError>().unwrap();
    assert_eq!(first.index, 0);
    assert!(first.failure.is_cancelled());
}

// Twisted: DeferredCancellerTests.test_cancelDeferredListWithFireOnOneErrbackAllDeferredsCallback
#[test]
fn a_fire_on_one_errback_list_whose_cancellers_all_succeed_succeeds() {
    let (d1, _i1) = input_answering(|| Ok("Callback Result"));
    let (d2, _i2) = input_answering(|| Ok("Callback Result"));
    let gathered = DeferredList::new([d1, d2]).fire_on_one_errback();
    gathered.cancel();
    assert_eq!(
        gathered.wait().unwrap(),
        ["Callback Result", "Callback Result"]
    );
}

// Twisted: DeferredCancellerTests.test_cancelDeferredListWithOriginalDeferreds
// (Twisted checks that appending to the caller's list afterwards changes nothing; here the list
// owns its inputs, so that cannot happen: a Deferred outside the list is simply never touched.)
#[test]
fn cancelling_a_list_touches_only_its_own_inputs() {
    let (d1, i1) = input::<u32>();
    let (d2, i2) = input::<u32>();
    let (_d3, i3) = input::<u32>();
    let list = DeferredList::new([d1, d2]).all();
    list.cancel();
    assert_eq!((i1.cancels(), i2.cancels()), (1, 1));
    assert!(i3.is_untouched());
    assert_eq!(list.wait().unwrap().len(), 2);
    i3.fire(Ok(3));
}

// Twisted: DeferredCancellerTests.test_cancelDeferredListWithException
#[test]
fn a_panicking_canceller_does_not_stop_the_others_nor_escape_cancel() {
    let (d1, _r1) = Deferred::<u32>::with_canceller(|| panic!("canceller failed"));
    let (d2, i2) = input::<u32>();
    let list = DeferredList::new([d1, d2]).all();
    list.cancel();
    assert_eq!(i2.cancels(), 1);
    let results = list.wait().unwrap();
    let panicked = results[0].as_ref().unwrap_err();
    assert_eq!(
        panicked.downcast_ref::<Panicked>().unwrap().message(),
        "canceller failed"
    );
    assert!(results[1].as_ref().unwrap_err().is_cancelled());
}

// Twisted: DeferredCancellerTests.test_cancelFiredOnOneCallbackDeferredList
#[test]
fn cancelling_a_fired_fire_on_one_callback_list_does_nothing() {
    let (d1, i1) = input::<u32>();
    let (d2, i2) = input::<u32>();
    let first = DeferredList::new([d1, d2]).fire_on_one_callback();
    i1.fire(Ok(1));
    first.cancel();
    assert!(i2.is_untouched());
    assert!(matches!(
        first.wait().unwrap(),
        FirstSuccess::Succeeded { index: 0, value: 1 }
    ));
    i2.fire(Ok(2));
}

// Twisted: DeferredCancellerTests.test_cancelFiredOnOneErrbackDeferredList
#[test]
fn cancelling_a_fired_fire_on_one_errback_list_does_nothing() {
    let (d1, i1) = input::<u32>();
    let (d2, i2) = input::<u32>();
    let gathered = DeferredList::new([d1, d2])
        .consume_errors()
        .fire_on_one_errback();
    i1.fire(Err(Failure::msg("GenericError")));
    gathered.cancel();
    assert!(i2.is_untouched());
    let first = gathered.wait().unwrap_err().trap::<FirstError>().unwrap();
    assert_eq!(
        (first.index, first.failure.to_string()),
        (0, "GenericError".into())
    );
    i2.fire(Ok(2));
}

// Twisted: DeferredCancellerTests.test_cancelGatherResults
#[test]
fn cancelling_gather_results_cancels_every_input() {
    let (d1, i1) = input::<u32>();
    let (d2, i2) = input::<u32>();
    let gathered = gather_results([d1, d2]);
    gathered.cancel();
    assert_eq!((i1.cancels(), i2.cancels()), (1, 1));
    let first = gathered.wait().unwrap_err().trap::<FirstError>().unwrap();
    assert!(first.failure.is_cancelled());
}

// Twisted: DeferredCancellerTests.test_cancelGatherResultsWithAllDeferredsCallback
#[test]
fn gather_results_whose_cancellers_all_succeed_succeeds() {
    let (d1, _i1) = input_answering(|| Ok("Callback Result"));
    let (d2, _i2) = input_answering(|| Ok("Callback Result"));
    let gathered = gather_results([d1, d2]);
    gathered.cancel();
    assert_eq!(
        gathered.wait().unwrap(),
        ["Callback Result", "Callback Result"]
    );
}

/// A list of an input whose canceller answers "Callback Result" and one whose canceller does
/// not answer, cancelled `times` times from inside a callback: its inputs, and what it fires
/// with. Inside a callback the inputs' answers are queued on the run loop, not delivered before
/// `cancel` returns.
#[allow(clippy::type_complexity)]
fn list_cancelled_inside_a_callback(
    times: usize,
) -> (
    Input<&'static str>,
    Input<&'static str>,
    Vec<Result<&'static str, Failure>>,
) {
    let (d1, i1) = input_answering(|| Ok("Callback Result"));
    let (d2, i2) = input::<&str>();
    let list = Arc::new(DeferredList::new([d1, d2]).all());
    let (trigger, fire) = Deferred::<()>::pending();
    let in_callback = list.clone();
    let done = trigger.add_callback(move |()| {
        for _ in 0..times {
            in_callback.cancel();
        }
        Ok(())
    });
    fire.callback(());
    done.wait().unwrap();
    let list = Arc::try_unwrap(list).expect("the callback has run");
    (i1, i2, list.wait().unwrap())
}

#[test]
fn cancelling_from_inside_a_callback_gives_the_same_outcome() {
    // The list must still fire with the inputs' answers, not with a bare `Cancelled`.
    let (_i1, i2, results) = list_cancelled_inside_a_callback(1);
    assert_eq!(i2.cancels(), 1);
    assert_eq!(results[0].as_ref().unwrap(), &"Callback Result");
    assert!(results[1].as_ref().unwrap_err().is_cancelled());
}

#[test]
fn cancelling_twice_calls_each_canceller_once() {
    let (d1, i1) = input::<u32>();
    let (d2, i2) = input::<u32>();
    let all = settle_all([d1, d2]);
    all.cancel();
    all.cancel();
    assert_eq!((i1.cancels(), i2.cancels()), (1, 1));
    assert_eq!(all.wait().unwrap().len(), 2);
}

#[test]
fn cancelling_a_combinator_cancels_chains_through_to_what_they_wait_on() {
    let (inner, inner_input) = input::<u32>();
    let outer = Deferred::<u32>::succeed(1).add_callback(move |_| inner);
    let gathered = gather_results([outer]);
    gathered.cancel();
    assert_eq!(inner_input.cancels(), 1);
    assert!(gathered.wait().is_err());
}

#[test]
fn cancelling_twice_from_inside_a_callback_still_gives_the_inputs_answers() {
    // The second cancel comes before the inputs' answers to the first (queued on the run
    // loop): the inputs are cancelled again (their cancellers ran once already, so nothing
    // more happens), and the list still fires with their answers.
    let (i1, i2, results) = list_cancelled_inside_a_callback(2);
    assert_eq!((i1.cancels(), i2.cancels()), (1, 1));
    assert_eq!(results[0].as_ref().unwrap(), &"Callback Result");
    assert!(results[1].as_ref().unwrap_err().is_cancelled());
}
