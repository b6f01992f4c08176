//! DeferredList, settle_all and gather_results: Twisted's test_defer.py groups for
//! `DeferredList` and `gatherResults`, typed, plus the failure-reporting and threading cases.

mod helpers_support;

use std::sync::Arc;
use std::thread;

use deferred::{
    Deferred, DeferredList, Failure, FirstError, FirstSuccess, gather_results, settle_all,
};
use helpers_support::Unhandled;

#[derive(Debug)]
struct GenericError(&'static str);

impl std::fmt::Display for GenericError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for GenericError {}

fn message<T>(result: &Result<T, Failure>) -> String {
    result.as_ref().err().expect("a failure").to_string()
}

// Twisted: DeferredTests.testDeferredList
#[test]
fn list_fires_with_every_result_in_input_order() {
    let (d1, r1) = Deferred::<&str>::pending();
    let (d2, r2) = Deferred::<&str>::pending();
    let (d3, r3) = Deferred::<&str>::pending();
    let list = DeferredList::new([d1, d2, d3]).all();

    r1.callback("1");
    assert!(!list.is_fired());
    r2.errback(Failure::new(GenericError("2")));
    assert!(!list.is_fired());
    r3.callback("3");

    let results = list.wait().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0].as_ref().unwrap(), &"1");
    assert_eq!(message(&results[1]), "2");
    assert!(results[1].as_ref().unwrap_err().is::<GenericError>());
    assert_eq!(results[2].as_ref().unwrap(), &"3");
}

// Twisted: DeferredTests.testEmptyDeferredList
// Twisted: DeferredListEmptyTests.testDeferredListEmpty
#[test]
fn empty_list_fires_at_once_with_nothing() {
    let all = DeferredList::<u32>::new([]).all();
    assert!(all.is_fired());
    assert!(all.wait().unwrap().is_empty());

    assert!(
        settle_all(Vec::<Deferred<u32>>::new())
            .wait()
            .unwrap()
            .is_empty()
    );

    // Twisted's `DeferredList([], fireOnOneCallback=True)` never fires; ours says at once that
    // none of its (no) inputs succeeded, so nobody hangs on it.
    let first = DeferredList::<u32>::new([]).fire_on_one_callback();
    match first.wait().unwrap() {
        FirstSuccess::AllFailed(failures) => assert!(failures.is_empty()),
        FirstSuccess::Succeeded { .. } => panic!("nothing can succeed"),
    }
}

// Twisted: DeferredTests.testDeferredListFireOnOneError
#[test]
fn fire_on_one_errback_fails_with_the_first_failure_and_its_index() {
    let (d1, r1) = Deferred::<&str>::pending();
    let (d2, r2) = Deferred::<&str>::pending();
    let (d3, _r3) = Deferred::<&str>::pending();
    let list = DeferredList::new([d1, d2, d3]).fire_on_one_errback();

    r1.callback("1");
    assert!(!list.is_fired());
    r2.errback(Failure::new(GenericError("from def2")));
    assert!(list.is_fired());

    let first = list.wait().unwrap_err().trap::<FirstError>().unwrap();
    assert_eq!(first.index, 1);
    assert!(first.failure.is::<GenericError>());
    assert_eq!(first.failure.to_string(), "from def2");
}

// Twisted: DeferredTests.testDeferredListDontConsumeErrors
// Twisted lets a failure both fill the list's slot and flow on in the input (where it is logged
// unless handled). Here the list owns its inputs: a failure the result carries is handed over
// once and, taken, never reported (one nobody takes is:
// `an_unread_settled_list_reports_its_failures_once`); a failure the result does not carry is
// reported exactly once.
#[test]
fn failures_the_result_does_not_carry_are_reported_once() {
    let marker = "list-keeps-errors-bang";
    let unhandled = Unhandled::start(marker);

    let (d1, r1) = Deferred::<u32>::pending();
    let list = DeferredList::new([d1]).all();
    r1.errback(Failure::msg(marker));
    let results = list.wait().unwrap();
    assert_eq!(message(&results[0]), marker);
    drop(results);
    assert_eq!(
        unhandled.count(),
        0,
        "a failure in the result is the caller's"
    );

    let (late, late_resolver) = Deferred::<u32>::pending();
    let first = DeferredList::new([Deferred::succeed(1), late]).fire_on_one_callback();
    assert!(matches!(
        first.wait().unwrap(),
        FirstSuccess::Succeeded { index: 0, value: 1 }
    ));
    late_resolver.errback(Failure::msg(marker));
    assert_eq!(
        unhandled.count(),
        1,
        "a late failure nobody can see is reported"
    );
}

/// A cancellation that reached an input before the list cancelled anything is no answer to
/// a cancel of the list's: left out of the result, it is reported — whether or not the list
/// cancels its inputs later.
#[test]
fn a_cancellation_kept_before_the_list_cancelled_is_reported_when_left_out() {
    for list_cancels_later in [false, true] {
        let unhandled = deferred::UnhandledCapture::start();
        let (a, _a_resolver) = Deferred::<u32>::pending();
        let a_handle = a.cancel_handle();
        let (b, b_resolver) = Deferred::<u32>::with_canceller(|| {});
        // Recovers from the list's cancel, so the list still fires with a success.
        let b = b.add_errback(|_: Failure| Ok(1));
        let first = DeferredList::new([a, b]).fire_on_one_callback();
        a_handle.cancel(); // kept by the list: no success yet
        if list_cancels_later {
            first.cancel();
        } else {
            b_resolver.callback(1);
        }
        assert!(matches!(
            first.wait().unwrap(),
            FirstSuccess::Succeeded { index: 1, value: 1 }
        ));
        let reported = unhandled.finish();
        assert_eq!(
            reported.len(),
            1,
            "list cancels later: {list_cancels_later}"
        );
        assert!(reported[0].is_cancelled());
    }
}

// Twisted: DeferredTests.testDeferredListConsumeErrors
#[test]
fn consume_errors_drops_the_failures_the_result_does_not_carry() {
    let marker = "consume-errors-bang";
    let unhandled = Unhandled::start(marker);

    let (late, late_resolver) = Deferred::<u32>::pending();
    let first = DeferredList::new([
        Deferred::fail(Failure::msg(marker)),
        Deferred::succeed(2),
        late,
    ])
    .consume_errors()
    .fire_on_one_callback();
    late_resolver.errback(Failure::msg(marker));
    assert!(matches!(
        first.wait().unwrap(),
        FirstSuccess::Succeeded { index: 1, value: 2 }
    ));
    assert_eq!(unhandled.count(), 0);
}

// Twisted: DeferredTests.testDeferredListFireOnOneErrorWithAlreadyFiredDeferreds
#[test]
fn fire_on_one_errback_with_an_already_failed_input_fires_at_construction() {
    let d1 = Deferred::<u32>::fail(Failure::new(GenericError("Bang")));
    let (d2, _r2) = Deferred::<u32>::pending();
    let list = DeferredList::new([d1, d2]).fire_on_one_errback();
    assert!(list.is_fired());
    let first = list.wait().unwrap_err().trap::<FirstError>().unwrap();
    assert_eq!((first.index, first.failure.to_string()), (0, "Bang".into()));
}

// Twisted: DeferredTests.testDeferredListWithAlreadyFiredDeferreds
#[test]
fn list_of_already_fired_inputs_fires_at_construction() {
    let d1 = Deferred::<u32>::fail(Failure::new(GenericError("Bang")));
    let d2 = Deferred::<u32>::succeed(2);
    let list = DeferredList::new([d1, d2]).all();
    assert!(list.is_fired());
    let results = list.wait().unwrap();
    assert_eq!(message(&results[0]), "Bang");
    assert_eq!(results[1].as_ref().unwrap(), &2);
}

// Twisted: DeferredTests.test_gatherResults
#[test]
fn gather_results_gives_the_values_or_one_failure() {
    let values = gather_results([Deferred::<u32>::succeed(1), Deferred::succeed(2)]);
    assert_eq!(values.wait().unwrap(), [1, 2]);

    let failed = gather_results([
        Deferred::<u32>::succeed(1),
        Deferred::fail(Failure::new(GenericError("ValueError"))),
    ]);
    let first = failed.wait().unwrap_err().trap::<FirstError>().unwrap();
    assert_eq!(first.index, 1);
    assert!(first.failure.is::<GenericError>());

    assert!(
        gather_results(Vec::<Deferred<u32>>::new())
            .wait()
            .unwrap()
            .is_empty()
    );
}

// Twisted: DeferredTests.test_gatherResultsWithConsumeErrors
#[test]
fn gather_with_consume_errors_reports_nothing_but_still_fails() {
    let marker = "gather-consume-oh-noes";
    let unhandled = Unhandled::start(marker);

    let (later, later_resolver) = Deferred::<u32>::pending();
    let gathered = DeferredList::new([
        Deferred::succeed(1),
        Deferred::fail(Failure::msg(format!("{marker} first"))),
        later,
    ])
    .consume_errors()
    .fire_on_one_errback();
    later_resolver.errback(Failure::msg(format!("{marker} later")));

    let first = gathered.wait().unwrap_err().trap::<FirstError>().unwrap();
    assert_eq!(first.index, 1);
    assert_eq!(first.failure.to_string(), format!("{marker} first"));
    assert_eq!(unhandled.count(), 0);
}

#[test]
fn gather_without_consume_errors_reports_a_later_failure_once() {
    let marker = "gather-later-failure";
    let unhandled = Unhandled::start(marker);

    let (later, later_resolver) = Deferred::<u32>::pending();
    let gathered = gather_results([Deferred::fail(Failure::msg("first")), later]);
    assert!(gathered.wait().is_err());
    later_resolver.errback(Failure::msg(marker));
    assert_eq!(unhandled.count(), 1);
}

#[test]
fn a_dropped_gather_reports_its_failure_once() {
    let marker = "dropped-gather";
    let unhandled = Unhandled::start(marker);

    let (input, resolver) = Deferred::<u32>::pending();
    drop(gather_results([input]));
    resolver.errback(Failure::msg(marker));
    assert_eq!(unhandled.count(), 1);
}

// Twisted: FirstErrorTests.test_str
// Twisted: FirstErrorTests.test_repr
#[test]
fn first_error_says_which_input_failed() {
    let first = FirstError::new(5, Failure::new(GenericError("some text")));
    assert_eq!(first.to_string(), "input #5 failed: some text");
    assert!(format!("{first:?}").contains("index: 5"));
    // The input's error is in the message: its source is what caused it (none here), so that
    // a report of the chain of sources says "some text" once.
    assert!(std::error::Error::source(&first).is_none());
    assert_eq!(first.failure.to_string(), "some text");
    assert_eq!(
        format!("{:#}", Failure::new(first)),
        "input #5 failed: some text"
    );
}

#[test]
fn fire_on_one_callback_fires_with_the_first_success() {
    let (d1, r1) = Deferred::<&str>::pending();
    let (d2, r2) = Deferred::<&str>::pending();
    let (d3, r3) = Deferred::<&str>::pending();
    let first = DeferredList::new([d1, d2, d3])
        .consume_errors()
        .fire_on_one_callback();
    r1.errback(Failure::msg("down"));
    assert!(!first.is_fired());
    r3.callback("third");
    r2.callback("second");
    assert!(matches!(
        first.wait().unwrap(),
        FirstSuccess::Succeeded {
            index: 2,
            value: "third"
        }
    ));
}

// Twisted: the ambiguous all-failed `fireOnOneCallback` result (issue #4919; catalogue O.162,
// `fireOnOneCallback=True, consumeErrors=True` with every input failing).
#[test]
fn fire_on_one_callback_when_every_input_fails_gives_every_failure() {
    let first = DeferredList::new([
        Deferred::<u32>::fail(Failure::msg("F1")),
        Deferred::fail(Failure::msg("F2")),
    ])
    .consume_errors()
    .fire_on_one_callback();
    match first.wait().unwrap() {
        FirstSuccess::AllFailed(failures) => {
            let messages: Vec<String> = failures.iter().map(ToString::to_string).collect();
            assert_eq!(messages, ["F1", "F2"]);
        }
        FirstSuccess::Succeeded { .. } => panic!("every input failed"),
    }
}

#[test]
fn failures_kept_before_the_first_success_are_reported_unless_consumed() {
    let marker = "kept-before-success";
    let unhandled = Unhandled::start(marker);

    let (winner, winner_resolver) = Deferred::<u32>::pending();
    let first =
        DeferredList::new([Deferred::fail(Failure::msg(marker)), winner]).fire_on_one_callback();
    assert_eq!(
        unhandled.count(),
        0,
        "still part of a possible all-failed result"
    );
    winner_resolver.callback(1);
    assert!(matches!(
        first.wait().unwrap(),
        FirstSuccess::Succeeded { index: 1, .. }
    ));
    assert_eq!(unhandled.count(), 1);
}

#[test]
fn settle_all_is_the_plain_list() {
    let (d, resolver) = Deferred::<u32>::pending();
    let all = settle_all([Deferred::fail(Failure::msg("no")), d]);
    resolver.callback(2);
    let results = all.wait().unwrap();
    assert_eq!(message(&results[0]), "no");
    assert_eq!(results[1].as_ref().unwrap(), &2);
}

#[test]
fn list_keeps_input_order_when_inputs_fire_on_many_threads() {
    const INPUTS: usize = 400;
    let (deferreds, resolvers): (Vec<_>, Vec<_>) =
        (0..INPUTS).map(|_| Deferred::<usize>::pending()).unzip();
    let gathered = gather_results(deferreds);
    let resolvers = Arc::new(std::sync::Mutex::new(
        resolvers.into_iter().enumerate().rev().collect::<Vec<_>>(),
    ));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let resolvers = resolvers.clone();
            thread::spawn(move || {
                while let Some((index, resolver)) = resolvers.lock().unwrap().pop() {
                    resolver.callback(index * 10);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let values = gathered.wait().unwrap();
    assert_eq!(values, (0..INPUTS).map(|i| i * 10).collect::<Vec<_>>());
}

#[test]
fn list_works_with_a_custom_error_type() {
    #[derive(Debug)]
    enum AppError {
        NotFound,
        Chain(Failure),
    }
    impl From<Failure> for AppError {
        fn from(failure: Failure) -> AppError {
            AppError::Chain(failure)
        }
    }

    let results = settle_all([
        Deferred::<u32, AppError>::succeed(1),
        Deferred::fail(AppError::NotFound),
    ])
    .wait()
    .unwrap();
    assert!(matches!(results[0], Ok(1)));
    match &results[1] {
        Err(AppError::NotFound) => {}
        Err(AppError::Chain(failure)) => panic!("unexpected failure: {failure}"),
        Ok(value) => panic!("unexpected success: {value}"),
    }
}

#[test]
fn gathers_nested_a_hundred_thousand_deep_fire_in_constant_stack() {
    // Each gather is the one input of the next: the innermost input's result reaches the
    // outermost through every gather's output, through the run loop, not nested calls.
    let (innermost, resolver) = Deferred::<u64>::pending();
    let mut gathered = innermost.add_callback(|n| Ok(vec![n]));
    for _ in 0..100_000 {
        gathered = gather_results([gathered]).add_callback(|mut nested| Ok(nested.remove(0)));
    }
    // A thread with a small stack: a nested delivery per gather would overflow it.
    thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            resolver.callback(7);
            assert_eq!(gathered.wait().unwrap(), [7]);
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn a_panic_in_an_arrival_is_the_outputs_failure_not_passed_to_the_firer() {
    // An error type whose conversion into `Failure` panics: `fire_on_one_errback` converts
    // the first failure as it arrives, on the thread that fired the input. The panic is that
    // input's failure (rule 4), in the `FirstError`, as `race` keeps one in its group.
    #[derive(Debug)]
    struct Unconvertible;
    impl From<Failure> for Unconvertible {
        fn from(_: Failure) -> Unconvertible {
            Unconvertible
        }
    }
    impl From<Unconvertible> for Failure {
        fn from(_: Unconvertible) -> Failure {
            panic!("arrival-conversion-panics")
        }
    }
    let unhandled = Unhandled::start("arrival-conversion-panics");
    let (input, resolver) = Deferred::<u32, Unconvertible>::pending();
    let gathered = DeferredList::new([input]).fire_on_one_errback();
    resolver.errback(Unconvertible); // does not panic here
    let failure = gathered.wait().unwrap_err();
    let first = failure
        .downcast_ref::<deferred::FirstError>()
        .expect("the first failure");
    assert_eq!(first.index, 0);
    let panicked = first.failure.downcast_ref::<deferred::Panicked>();
    assert_eq!(
        panicked.map(deferred::Panicked::message),
        Some("arrival-conversion-panics")
    );
    assert_eq!(unhandled.count(), 0, "handled by whoever reads the output");
}

/// Awaiting a list awaits `all` (Twisted's `yield DeferredList(ds)`), on either kind.
#[test]
fn awaiting_a_list_awaits_every_result() {
    let (slow, resolver) = Deferred::<u32>::pending();
    let list = DeferredList::new([
        Deferred::succeed(1),
        slow,
        Deferred::fail(Failure::msg("no")),
    ]);
    thread::spawn(move || resolver.callback(2));
    let results = futures::executor::block_on(async { list.await }).unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(*results[0].as_ref().unwrap(), 1);
    assert_eq!(*results[1].as_ref().unwrap(), 2);
    assert_eq!(results[2].as_ref().unwrap_err().to_string(), "no");

    let rc = std::rc::Rc::new(5_u32); // not Send: the local kind's
    let local = deferred::local::DeferredList::new([deferred::LocalDeferred::<_>::succeed(rc)]);
    let results = futures::executor::block_on(async { local.await }).unwrap();
    assert_eq!(**results[0].as_ref().unwrap(), 5);
}

#[test]
fn a_list_is_collected_from_deferreds_and_a_deferred_made_from_a_result() {
    let list: DeferredList<u32> = [Ok(1), Err(Failure::msg("two"))]
        .into_iter()
        .map(Deferred::from)
        .collect();
    let outcomes = list.consume_errors().all().wait().unwrap();
    assert_eq!(outcomes.len(), 2);
    assert_eq!(outcomes[0].as_ref().unwrap(), &1);
}

/// A failure that came before the list was cancelled is no answer to the cancel: when the
/// outcome does not carry it (here a success, a canceller's answer, decides), it is reported.
#[test]
fn a_failure_before_the_cancel_is_reported_though_the_list_was_cancelled() {
    use std::sync::{Arc, Mutex};
    let marker = "list-failed-before-its-cancel";
    let unhandled = Unhandled::start(marker);
    let slot: Arc<Mutex<Option<deferred::Resolver<u32>>>> = Arc::default();
    let in_canceller = slot.clone();
    let (answering, resolver) = Deferred::<u32>::with_canceller(move || {
        if let Some(resolver) = in_canceller.lock().unwrap().take() {
            resolver.callback(7); // a canceller may answer with a value
        }
    });
    *slot.lock().unwrap() = Some(resolver);
    let list =
        DeferredList::new([Deferred::fail(Failure::msg(marker)), answering]).fire_on_one_callback();
    list.cancel();
    assert!(matches!(
        list.wait().unwrap(),
        FirstSuccess::Succeeded { index: 1, value: 7 }
    ));
    assert_eq!(unhandled.count(), 1, "the earlier failure is reported");

    // The cancel's own answers are not.
    let (a, _ra) = Deferred::<u32>::pending();
    let (b, _rb) = Deferred::<u32>::pending();
    let gathered = deferred::gather_results([a, b]);
    gathered.cancel();
    assert!(gathered.wait().unwrap_err().is_cancelled());
    assert_eq!(unhandled.count(), 1);
}

/// `Resolver::is_closed` never turns back: an input told that nobody can see the combinator's
/// outcome stays so once another input decides it, and its producer, stopping for that, drops
/// its Resolver quietly (no `NeverFired` report).
#[test]
fn an_input_told_it_is_closed_stays_closed_when_another_decides() {
    let marker = "closed-input-stays-closed";
    let unhandled = Unhandled::start(marker);
    let (a, ra) = Deferred::<u32>::pending();
    let (b, rb) = Deferred::<u32>::pending();
    drop(gather_results([a, b])); // nobody can see the outcome
    assert!(rb.is_closed());
    ra.errback(Failure::msg(marker)); // decides the unseen outcome
    assert!(rb.is_closed(), "still closed");
    drop(rb);
    // The decided failure is the outcome's, dropped unseen: reported once; nothing else is.
    assert_eq!(unhandled.count(), 1);

    // Closed when decided, though nobody asked before: the same.
    let (a, ra) = Deferred::<u32>::pending();
    let (b, rb) = Deferred::<u32>::pending();
    drop(gather_results([a, b]));
    ra.errback(Failure::msg(marker));
    assert!(rb.is_closed());
    drop(rb);
    assert_eq!(unhandled.count(), 2);
}

/// A list that consumes errors drops whatever its other inputs give once it has decided (a
/// value as any late one, a failure consumed): nobody can see it, so they are closed — their
/// producers can stop, and `try_fire` gives the result back — for both kinds. (A list that
/// reports failures leaves them open: see the test before this one.)
#[test]
fn inputs_a_decided_list_that_consumes_errors_leaves_running_are_closed() {
    let unhandled = deferred::UnhandledCapture::start();
    // fire_on_one_errback (gather_results with consume_errors), decided by a failure.
    let (a, ra) = Deferred::<u32>::pending();
    let (b, rb) = Deferred::<u32>::pending();
    let gathered = DeferredList::new([a, b])
        .consume_errors()
        .fire_on_one_errback();
    assert!(!rb.is_closed(), "open while the outcome is undecided");
    ra.errback(Failure::msg("first"));
    assert_eq!(
        gathered.wait().unwrap_err().to_string(),
        "input #0 failed: first"
    );
    assert!(rb.is_closed());
    assert!(matches!(rb.try_fire(Ok(2)), Err(Ok(2))), "given back");

    // fire_on_one_callback, decided by a success; the producer stops and drops its Resolver.
    let (a, ra) = Deferred::<u32>::pending();
    let (b, rb) = Deferred::<u32>::pending();
    let first = DeferredList::new([a, b])
        .consume_errors()
        .fire_on_one_callback();
    ra.callback(1);
    assert!(matches!(
        first.wait().unwrap(),
        FirstSuccess::Succeeded { index: 0, value: 1 }
    ));
    assert!(rb.is_closed());
    drop(rb);

    // A queue's get left running so is skipped: the item goes to the next get, not into a
    // list that would drop it.
    let queue = deferred::DeferredQueue::<u32>::new();
    let first = DeferredList::new([Deferred::succeed(1), queue.get()])
        .consume_errors()
        .fire_on_one_callback();
    assert!(first.is_fired());
    queue.put(7).unwrap();
    assert_eq!(queue.get().wait().unwrap(), 7, "the item was not lost");

    // The local kind's list is the same.
    let (a, ra) = deferred::LocalDeferred::<u32>::pending();
    let (b, rb) = deferred::LocalDeferred::<u32>::pending();
    let gathered = deferred::local::DeferredList::new([a, b])
        .consume_errors()
        .fire_on_one_errback();
    ra.errback(Failure::msg("first"));
    assert!(gathered.wait().is_err());
    assert!(rb.is_closed());
    assert!(matches!(
        rb.try_fire(Err(Failure::msg("late"))),
        Err(Err(_))
    ));
    assert!(unhandled.finish().is_empty(), "nothing is reported");
}

/// A decided combinator that does not consume errors leaves its other inputs running (their
/// failures are still reported), but drops a late success unseen. A `DeferredQueue::get` among
/// them is handed the next `put`'s item: that item goes back to the queue, for the next `get`,
/// instead of being lost — and a late failure is still reported. For both kinds, for every
/// combinator that leaves inputs running once decided (`fire_on_one_callback`,
/// `fire_on_one_errback`, `gather_results`), and for those that cancel them (`join`, `race`).
macro_rules! a_late_item_goes_back_to_the_queue {
    ($name:ident, $Deferred:ty, $Queue:ty, $List:ident, $gather:path, $join:path, $race:path) => {
        #[test]
        fn $name() {
            // The next get has the item at once (a lost item would leave it waiting).
            fn assert_next(queue: &$Queue, item: u32, lost: &str) {
                let next = queue.get();
                assert!(next.is_fired(), "{lost}");
                assert_eq!(next.wait().unwrap(), item);
            }
            let ((), reported) = deferred::capture_unhandled(|| {
                // fire_on_one_callback, decided by another input's success.
                let queue = <$Queue>::new();
                let (other, r_other) = <$Deferred>::pending();
                let first = $List::new([queue.get(), other]).fire_on_one_callback();
                r_other.callback(1);
                assert!(matches!(
                    first.wait().unwrap(),
                    FirstSuccess::Succeeded { index: 1, value: 1 }
                ));
                queue.put(7).unwrap();
                assert_next(&queue, 7, "fire_on_one_callback lost it");

                // The item goes to the next get waiting, if there is one.
                let queue = <$Queue>::new();
                let first =
                    $List::new([queue.get(), <$Deferred>::succeed(1)]).fire_on_one_callback();
                assert!(first.is_fired());
                let next = queue.get();
                queue.put(8).unwrap();
                assert!(next.is_fired(), "not handed to the next get");
                assert_eq!(next.wait().unwrap(), 8);
                assert!(queue.is_empty());

                // fire_on_one_errback and gather_results, decided by another input's failure.
                let queue = <$Queue>::new();
                let (other, r_other) = <$Deferred>::pending();
                let gathered = $List::new([queue.get(), other]).fire_on_one_errback();
                r_other.errback(Failure::msg("decides"));
                assert!(gathered.wait().is_err());
                queue.put(9).unwrap();
                assert_next(&queue, 9, "fire_on_one_errback lost it");

                let queue = <$Queue>::new();
                let (other, r_other) = <$Deferred>::pending();
                let gathered = $gather([queue.get(), other]);
                r_other.errback(Failure::msg("decides"));
                assert!(gathered.wait().is_err());
                queue.put(10).unwrap();
                assert_next(&queue, 10, "gather_results lost it");

                // join and race cancel the inputs they leave: the get leaves the line.
                let queue = <$Queue>::new();
                let joined = $join((queue.get(), <$Deferred>::fail(Failure::msg("joined"))));
                assert!(joined.wait().is_err());
                queue.put(11).unwrap();
                assert_next(&queue, 11, "join lost it");

                let queue = <$Queue>::new();
                let won = $race([queue.get(), <$Deferred>::succeed(1)]);
                assert_eq!(won.wait().unwrap(), (1, 1));
                queue.put(12).unwrap();
                assert_next(&queue, 12, "race lost it");

                // A late failure of an input left running is still accepted, and reported.
                let (late, r_late) = <$Deferred>::pending();
                let first = $List::new([late, <$Deferred>::succeed(1)]).fire_on_one_callback();
                assert!(first.is_fired());
                drop(first);
                assert!(!r_late.is_closed(), "its failure would be reported");
                assert!(r_late.try_fire(Err(Failure::msg("late"))).is_ok());
            });
            let reported: Vec<String> = reported.iter().map(ToString::to_string).collect();
            assert_eq!(reported, ["late"]);
        }
    };
}

a_late_item_goes_back_to_the_queue!(
    a_late_item_goes_back_to_the_queue,
    Deferred<u32>,
    deferred::DeferredQueue<u32>,
    DeferredList,
    gather_results,
    deferred::join,
    deferred::race
);

a_late_item_goes_back_to_the_queue!(
    a_late_item_goes_back_to_the_queue_local,
    deferred::LocalDeferred<u32>,
    deferred::local::DeferredQueue<u32>,
    LocalList,
    deferred::local::gather_results,
    deferred::local::join,
    deferred::local::race
);

/// A `DeferredQueue::get` that already holds its item when a combinator is built, and that the
/// combinator leaves out of its outcome because an earlier input decides it at once: the item
/// goes back to the queue, for the next `get`, instead of being lost. For both kinds, for every
/// combinator.
macro_rules! an_item_held_at_build_goes_back_to_the_queue {
    (
        $name:ident, $Deferred:ty, $Queue:ty, $List:ident, $gather:path, $join:path,
        $race:path, $first_settled:path
    ) => {
        #[test]
        fn $name() {
            // The next get has the item at once (a lost item would leave it waiting).
            fn assert_next(queue: &$Queue, item: u32, lost: &str) {
                let next = queue.get();
                assert!(next.is_fired(), "{lost}");
                assert_eq!(next.wait().unwrap(), item);
                assert!(queue.is_empty());
            }
            let ((), reported) = deferred::capture_unhandled(|| {
                let queue = <$Queue>::new();
                queue.put(7).unwrap();
                let first =
                    $List::new([<$Deferred>::succeed(1), queue.get()]).fire_on_one_callback();
                assert!(matches!(
                    first.wait().unwrap(),
                    FirstSuccess::Succeeded { index: 0, value: 1 }
                ));
                assert_next(&queue, 7, "fire_on_one_callback lost it");

                let queue = <$Queue>::new();
                queue.put(8).unwrap();
                let failed = $List::new([<$Deferred>::fail(Failure::msg("decides")), queue.get()])
                    .consume_errors()
                    .fire_on_one_errback();
                assert!(failed.wait().is_err());
                assert_next(&queue, 8, "fire_on_one_errback lost it");

                let queue = <$Queue>::new();
                queue.put(9).unwrap();
                let gathered = $gather([<$Deferred>::fail(Failure::msg("decides")), queue.get()]);
                assert!(gathered.wait().is_err());
                assert_next(&queue, 9, "gather_results lost it");

                // The item goes to the next get waiting, if there is one.
                let queue = <$Queue>::new();
                queue.put(10).unwrap();
                let held = queue.get();
                let next = queue.get();
                let first = $List::new([<$Deferred>::succeed(1), held]).fire_on_one_callback();
                assert!(first.is_fired());
                assert!(next.is_fired(), "not handed to the next get");
                assert_eq!(next.wait().unwrap(), 10);

                let queue = <$Queue>::new();
                queue.put(11).unwrap();
                let joined = $join((<$Deferred>::fail(Failure::msg("joined")), queue.get()));
                assert!(joined.wait().is_err());
                assert_next(&queue, 11, "join lost it");

                let queue = <$Queue>::new();
                queue.put(12).unwrap();
                let won = $race([<$Deferred>::succeed(1), queue.get()]);
                assert_eq!(won.wait().unwrap(), (0, 1));
                assert_next(&queue, 12, "race lost it");

                let queue = <$Queue>::new();
                queue.put(13).unwrap();
                let settled = $first_settled([<$Deferred>::succeed(1), queue.get()]);
                assert!(settled.wait().is_ok());
                assert_next(&queue, 13, "first_settled lost it");
            });
            let reported: Vec<String> = reported.iter().map(ToString::to_string).collect();
            assert!(reported.is_empty(), "{reported:?}");
        }
    };
}

an_item_held_at_build_goes_back_to_the_queue!(
    an_item_held_at_build_goes_back_to_the_queue,
    Deferred<u32>,
    deferred::DeferredQueue<u32>,
    DeferredList,
    gather_results,
    deferred::join,
    deferred::race,
    deferred::first_settled
);

an_item_held_at_build_goes_back_to_the_queue!(
    an_item_held_at_build_goes_back_to_the_queue_local,
    deferred::LocalDeferred<u32>,
    deferred::local::DeferredQueue<u32>,
    LocalList,
    deferred::local::gather_results,
    deferred::local::join,
    deferred::local::race,
    deferred::local::first_settled
);

use deferred::LocalDeferred;
use deferred::local::DeferredList as LocalList;

/// `assert_items(queue, items, lost)` for a queue of type `$Queue`: the next gets have the
/// items at once, in the order they were put (a lost item would leave a get waiting, or hand it
/// the next item), and nothing else is left.
macro_rules! assert_items {
    ($Queue:ty) => {
        fn assert_items(queue: &$Queue, items: &[u32], lost: &str) {
            for &item in items {
                let next = queue.get();
                assert!(next.is_fired(), "{lost}: no item for the next get");
                assert_eq!(next.wait().unwrap(), item, "{lost}");
            }
            assert!(queue.is_empty(), "{lost}: items left over");
        }
    };
}

/// A `DeferredQueue::get` handed its item before the combinator decides, whose item the
/// combinator keeps for its outcome (`gather_results`, `fire_on_one_errback`, `join`,
/// `settle_all`, `join_settled`), and whose outcome then leaves it out — another input's
/// failure decides, a cancel of the output does, or the combinator is let go of undecided
/// (nobody could see its output, and its other input's producer stopped): the item goes back
/// to the queue, before the items put after it, for the next `get`, instead of being dropped
/// with the values kept. For both kinds.
macro_rules! an_item_kept_before_the_outcome_is_decided_goes_back_to_the_queue {
    (
        $name:ident, $D:ident, $Queue:ty, $List:ident, $gather:path, $join:path,
        $settle_all:path, $join_settled:path
    ) => {
        #[test]
        fn $name() {
            assert_items!($Queue);
            let ((), reported) = deferred::capture_unhandled(|| {
                // gather_results: the get is handed its item, then another input's failure
                // decides.
                let queue = <$Queue>::new();
                let (other, r_other) = $D::<u32>::pending();
                let gathered = $gather([queue.get(), other]);
                queue.put(1).unwrap(); // to the get: kept by the combinator
                queue.put(2).unwrap(); // kept by the queue
                r_other.errback(Failure::msg("decides"));
                assert!(gathered.wait().is_err());
                assert_items(&queue, &[1, 2], "gather_results dropped the item it kept");

                // Two gets kept, and an item put after them: back in the order they were put.
                let queue = <$Queue>::new();
                let (other, r_other) = $D::<u32>::pending();
                let gathered = $gather([queue.get(), other, queue.get()]);
                for item in 1..=3 {
                    queue.put(item).unwrap();
                }
                r_other.errback(Failure::msg("decides"));
                assert!(gathered.wait().is_err());
                assert_items(&queue, &[1, 2, 3], "gather_results, two gets kept");

                // A get that held its item when the combinator was built.
                let queue = <$Queue>::new();
                queue.put(1).unwrap();
                let (other, r_other) = $D::<u32>::pending();
                let gathered = $gather([queue.get(), other]);
                queue.put(2).unwrap();
                r_other.errback(Failure::msg("decides"));
                assert!(gathered.wait().is_err());
                assert_items(&queue, &[1, 2], "gather_results, an item held at build");

                // fire_on_one_errback, consuming errors.
                let queue = <$Queue>::new();
                let (other, r_other) = $D::<u32>::pending();
                let gathered = $List::new([queue.get(), other])
                    .consume_errors()
                    .fire_on_one_errback();
                queue.put(1).unwrap();
                r_other.errback(Failure::msg("decides"));
                assert!(gathered.wait().is_err());
                assert_items(&queue, &[1], "fire_on_one_errback dropped the item it kept");

                // join, of inputs of different types: another input's failure decides.
                let queue = <$Queue>::new();
                let (other, r_other) = $D::<&'static str>::pending();
                let joined = $join((other, queue.get()));
                queue.put(1).unwrap();
                r_other.errback(Failure::msg("decides"));
                assert!(joined.wait().is_err());
                assert_items(&queue, &[1], "join dropped the item it kept");

                // join cancelled: the other input's `Cancelled` decides.
                let queue = <$Queue>::new();
                let (other, _r_other) = $D::<&'static str>::pending();
                let joined = $join((queue.get(), other));
                queue.put(1).unwrap();
                joined.cancel();
                assert!(joined.wait().unwrap_err().is_cancelled());
                assert_items(&queue, &[1], "a cancelled join dropped the item it kept");

                // gather_results cancelled.
                let queue = <$Queue>::new();
                let (other, _r_other) = $D::<u32>::pending();
                let gathered = $gather([queue.get(), other]);
                queue.put(1).unwrap();
                gathered.cancel();
                assert!(gathered.wait().is_err());
                assert_items(&queue, &[1], "a cancelled gather_results dropped its item");

                // Let go of undecided: the output dropped unread (the get had its item), then
                // the other input's producer, told nobody can see its result, stops.
                let queue = <$Queue>::new();
                queue.put(1).unwrap();
                let (other, r_other) = $D::<u32>::pending();
                drop($settle_all([queue.get(), other]));
                queue.put(2).unwrap();
                assert!(r_other.is_closed());
                drop(r_other);
                assert_items(&queue, &[1, 2], "settle_all let go of dropped its item");

                let queue = <$Queue>::new();
                queue.put(1).unwrap();
                let (other, r_other) = $D::<u32>::pending();
                drop($gather([other, queue.get()]));
                assert!(r_other.is_closed());
                drop(r_other);
                assert_items(&queue, &[1], "gather_results let go of dropped its item");

                let queue = <$Queue>::new();
                queue.put(1).unwrap();
                let (other, r_other) = $D::<&'static str>::pending();
                drop($join_settled((queue.get(), other)));
                assert!(r_other.is_closed());
                drop(r_other);
                assert_items(&queue, &[1], "join_settled let go of dropped its item");

                // The output dropped unread, and the other input's producer fires all the same:
                // nobody can see the outcome the item would be in.
                let queue = <$Queue>::new();
                queue.put(1).unwrap();
                let (other, r_other) = $D::<u32>::pending();
                drop($gather([queue.get(), other]));
                r_other.callback(2);
                assert_items(&queue, &[1], "gather_results fired unseen dropped its item");

                let queue = <$Queue>::new();
                queue.put(1).unwrap();
                let (other, r_other) = $D::<&'static str>::pending();
                drop($join((other, queue.get())));
                r_other.callback("fired all the same");
                assert_items(&queue, &[1], "join fired unseen dropped its item");
            });
            let reported: Vec<String> = reported.iter().map(ToString::to_string).collect();
            assert!(reported.is_empty(), "{reported:?}");
        }
    };
}

an_item_kept_before_the_outcome_is_decided_goes_back_to_the_queue!(
    an_item_kept_before_the_outcome_is_decided_goes_back_to_the_queue,
    Deferred,
    deferred::DeferredQueue<u32>,
    DeferredList,
    gather_results,
    deferred::join,
    settle_all,
    deferred::join_settled
);

an_item_kept_before_the_outcome_is_decided_goes_back_to_the_queue!(
    an_item_kept_before_the_outcome_is_decided_goes_back_to_the_queue_local,
    LocalDeferred,
    deferred::local::DeferredQueue<u32>,
    LocalList,
    deferred::local::gather_results,
    deferred::local::join,
    deferred::local::settle_all,
    deferred::local::join_settled
);

/// The same through nested combinators: a `DeferredQueue::get` in a combinator that is itself
/// an input of another one. The inner combinator keeps the item while its outcome is undecided;
/// when that outcome leaves it out — the inner combinator, left running by the outer one that
/// decided, is decided by its other input's failure; or the outer one cancels it; or both are
/// let go of — the item goes back to the queue. For both kinds.
macro_rules! an_item_kept_by_a_nested_combinator_goes_back_to_the_queue {
    ($name:ident, $D:ident, $Queue:ty, $List:ident, $gather:path, $join:path) => {
        #[test]
        fn $name() {
            assert_items!($Queue);
            let ((), reported) = deferred::capture_unhandled(|| {
                // The outer gather_results decided by its other input's failure leaves the
                // inner one running; its other input's failure then decides it.
                let queue = <$Queue>::new();
                let (x, rx) = $D::<u32>::pending();
                let (y, ry) = $D::<Vec<u32>>::pending();
                let outer = $gather([$gather([queue.get(), x]), y]);
                queue.put(1).unwrap(); // kept by the inner combinator
                ry.errback(Failure::msg("the outer one decides"));
                assert!(outer.wait().is_err());
                assert!(!rx.is_closed(), "left running, its failure reported");
                rx.errback(Failure::msg("the inner one decides"));
                assert_items(&queue, &[1], "the inner gather_results dropped its item");

                // A join decided by its other input's failure cancels the inner combinator.
                let queue = <$Queue>::new();
                let (x, _rx) = $D::<u32>::pending();
                let (y, ry) = $D::<&'static str>::pending();
                let joined = $join(($gather([queue.get(), x]), y));
                queue.put(1).unwrap();
                ry.errback(Failure::msg("the join decides"));
                assert!(joined.wait().is_err());
                assert_items(
                    &queue,
                    &[1],
                    "the cancelled inner gather_results dropped it",
                );

                // Both let go of undecided: the outer output dropped unread, then the other
                // inputs' producers, told nobody can see their results, stop.
                let queue = <$Queue>::new();
                queue.put(1).unwrap();
                let (x, rx) = $D::<u32>::pending();
                let (y, ry) = $D::<Vec<u32>>::pending();
                drop($gather([$gather([queue.get(), x]), y]));
                assert!(rx.is_closed() && ry.is_closed());
                drop((rx, ry));
                assert_items(
                    &queue,
                    &[1],
                    "the inner gather_results let go of dropped it",
                );

                // An outer list that consumes errors, decided, closes the inner combinator it
                // leaves running: nobody can see the outcome that combinator then settles with.
                let queue = <$Queue>::new();
                let (x, rx) = $D::<u32>::pending();
                let (y, ry) = $D::<Vec<u32>>::pending();
                let outer = $List::new([$gather([queue.get(), x]), y])
                    .consume_errors()
                    .fire_on_one_errback();
                queue.put(1).unwrap();
                ry.errback(Failure::msg("the outer one decides"));
                assert!(outer.wait().is_err());
                assert!(rx.is_closed());
                rx.callback(2);
                assert_items(&queue, &[1], "the closed inner gather_results dropped it");
            });
            let reported: Vec<String> = reported.iter().map(ToString::to_string).collect();
            // The inner combinator's failure reaches the outer one after it decided: reported.
            assert_eq!(reported, ["input #1 failed: the inner one decides"]);
        }
    };
}

/// The first case raced: an item put on one thread while another input's failure decides the
/// `gather_results` on another. Whichever comes first, the item ends in the queue — kept by the
/// combinator and given back as the failure decides, or handed to the get left running after
/// it and put back — never lost.
#[test]
fn an_item_put_while_another_input_decides_on_another_thread_is_never_lost() {
    let unhandled = deferred::UnhandledCapture::start();
    for round in 0..1_000 {
        let queue = deferred::DeferredQueue::<u32>::new();
        let (other, r_other) = Deferred::<u32>::pending();
        let gathered = gather_results([queue.get(), other]);
        let putter = {
            let queue = queue.clone();
            thread::spawn(move || queue.put(round).unwrap())
        };
        let failer = thread::spawn(move || r_other.errback(Failure::msg("decides")));
        putter.join().unwrap();
        failer.join().unwrap();
        assert!(gathered.wait().is_err());
        let next = queue.get();
        assert!(next.is_fired(), "round {round}: the item was lost");
        assert_eq!(next.wait().unwrap(), round);
        assert!(queue.is_empty());
    }
    assert!(unhandled.finish().is_empty(), "nothing is reported");
}

an_item_kept_by_a_nested_combinator_goes_back_to_the_queue!(
    an_item_kept_by_a_nested_combinator_goes_back_to_the_queue,
    Deferred,
    deferred::DeferredQueue<u32>,
    DeferredList,
    gather_results,
    deferred::join
);

an_item_kept_by_a_nested_combinator_goes_back_to_the_queue!(
    an_item_kept_by_a_nested_combinator_goes_back_to_the_queue_local,
    LocalDeferred,
    deferred::local::DeferredQueue<u32>,
    LocalList,
    deferred::local::gather_results,
    deferred::local::join
);

/// The failures a settled list holds as values of its result (`settle_all`, `all`; the
/// `AllFailed` of `fire_on_one_callback`) are reported, each once, when nobody ever takes that
/// result: its Deferred dropped unread after it fired, or before (then as its inputs fire, or as
/// the list lets go of the failures it kept for an input that never will: its producer saw
/// `is_closed` and stopped). As a Deferred dropped with its failure unread reports it; Twisted's
/// `DeferredList` leaves the failures in its inputs, where they are logged. For both kinds.
macro_rules! an_unread_settled_list_reports_its_failures_once {
    ($name:ident, $Deferred:ty, $List:ident, $settle_all:path) => {
        #[test]
        fn $name() {
            let marker = concat!(stringify!($name), "-bang");
            let unhandled = Unhandled::start(marker);
            let failing = || <$Deferred>::fail(Failure::msg(marker));

            // Fired as it is made (its inputs had fired), dropped unread.
            drop($settle_all([<$Deferred>::succeed(1), failing()]));
            assert_eq!(unhandled.count(), 1, "settle_all dropped after it fired");
            drop($List::new([failing(), <$Deferred>::succeed(2)]).all());
            assert_eq!(unhandled.count(), 2, "all dropped after it fired");

            // Fired by its inputs, then dropped.
            let (a, ra) = <$Deferred>::pending();
            let (b, rb) = <$Deferred>::pending();
            let all = $settle_all([a, b]);
            ra.errback(Failure::msg(marker));
            rb.callback(2);
            assert!(all.is_fired());
            assert_eq!(unhandled.count(), 2, "not while it can still be read");
            drop(all);
            assert_eq!(unhandled.count(), 3, "dropped once its inputs fired it");

            // Dropped before it fires: reported as its inputs fire it.
            let (a, ra) = <$Deferred>::pending();
            let (b, rb) = <$Deferred>::pending();
            drop($List::new([a, b]).all());
            ra.callback(1);
            rb.errback(Failure::msg(marker));
            assert_eq!(unhandled.count(), 4, "dropped before it fired");

            // Dropped before it fires, and one input never does: nobody can see it any more, so
            // its producer stops. The failure kept from the other input is reported.
            let (a, ra) = <$Deferred>::pending();
            let (b, rb) = <$Deferred>::pending();
            drop($settle_all([a, b]));
            ra.errback(Failure::msg(marker));
            assert_eq!(unhandled.count(), 4, "kept while an input may still fire");
            assert!(rb.is_closed());
            drop(rb);
            assert_eq!(unhandled.count(), 5, "kept, and let go unread");

            // Polled as a future (a task listens), fired, and the future dropped unfinished.
            let (a, ra) = <$Deferred>::pending();
            let mut all = $settle_all([a]);
            let mut context = std::task::Context::from_waker(std::task::Waker::noop());
            assert!(std::pin::Pin::new(&mut all).poll(&mut context).is_pending());
            ra.errback(Failure::msg(marker));
            drop(all);
            assert_eq!(unhandled.count(), 6, "a task's, dropped unread");

            // `fire_on_one_callback` when every input failed: `AllFailed` holds each failure.
            let (a, ra) = <$Deferred>::pending();
            let first = $List::new([a, failing()]).fire_on_one_callback();
            ra.errback(Failure::msg(marker));
            assert!(first.is_fired());
            drop(first);
            assert_eq!(unhandled.count(), 8, "each failure of AllFailed");
        }
    };
}

an_unread_settled_list_reports_its_failures_once!(
    an_unread_settled_list_reports_its_failures_once,
    Deferred<u32>,
    DeferredList,
    settle_all
);

an_unread_settled_list_reports_its_failures_once!(
    an_unread_settled_list_reports_its_failures_once_local,
    deferred::LocalDeferred<u32>,
    LocalList,
    deferred::local::settle_all
);

/// A settled list whose result is taken — waited on, given to a step (added before it fired or
/// after), run through `chain!` — reports nothing: its failures are the reader's, and go with
/// the `Vec` if the reader drops it. For both kinds.
macro_rules! a_read_settled_list_reports_nothing {
    ($name:ident, $Deferred:ty, $List:ident, $settle_all:path) => {
        #[test]
        fn $name() {
            let marker = concat!(stringify!($name), "-bang");
            let unhandled = Unhandled::start(marker);
            let failing = || <$Deferred>::fail(Failure::msg(marker));

            let results = $settle_all([failing(), <$Deferred>::succeed(1)])
                .wait()
                .unwrap();
            assert_eq!(message(&results[0]), marker);
            drop(results);

            // A step added after it fired, whose own result nobody reads.
            drop($List::new([failing()]).all().add_callback(|results| {
                assert_eq!(results.len(), 1);
                Ok::<_, Failure>(())
            }));

            // A step added before it fired, the same.
            let (a, ra) = <$Deferred>::pending();
            drop($settle_all([a]).add_callback(|results| Ok::<_, Failure>(results.len())));
            ra.errback(Failure::msg(marker));

            // `chain!` over it.
            let (a, ra) = <$Deferred>::pending();
            let counted = deferred::chain! {
                $settle_all([a, failing()])
                then |results| results.iter().filter(|result| result.is_err()).count()
            };
            ra.errback(Failure::msg(marker));
            assert_eq!(counted.wait().unwrap(), 2);

            // `fire_on_one_callback`'s `AllFailed`, taken.
            match $List::new([failing()])
                .fire_on_one_callback()
                .wait()
                .unwrap()
            {
                FirstSuccess::AllFailed(failures) => assert_eq!(failures.len(), 1),
                FirstSuccess::Succeeded { .. } => panic!("nothing succeeded"),
            }
            assert_eq!(unhandled.count(), 0);
        }
    };
}

a_read_settled_list_reports_nothing!(
    a_read_settled_list_reports_nothing,
    Deferred<u32>,
    DeferredList,
    settle_all
);

a_read_settled_list_reports_nothing!(
    a_read_settled_list_reports_nothing_local,
    deferred::LocalDeferred<u32>,
    LocalList,
    deferred::local::settle_all
);

/// A list that consumes errors reports none of the failures its result holds, read or not: the
/// user asked for silence. For both kinds.
macro_rules! an_unread_list_that_consumes_errors_reports_nothing {
    ($name:ident, $Deferred:ty, $List:ident) => {
        #[test]
        fn $name() {
            let unhandled = deferred::UnhandledCapture::start();
            let failing = || <$Deferred>::fail(Failure::msg("consumed"));

            drop(
                $List::new([failing(), <$Deferred>::succeed(1)])
                    .consume_errors()
                    .all(),
            );

            let (a, ra) = <$Deferred>::pending();
            drop($List::new([a]).consume_errors().all());
            ra.errback(Failure::msg("consumed"));

            let (a, ra) = <$Deferred>::pending();
            let (b, rb) = <$Deferred>::pending();
            drop($List::new([a, b]).consume_errors().all());
            ra.errback(Failure::msg("consumed"));
            drop(rb);

            drop(
                $List::new([failing()])
                    .consume_errors()
                    .fire_on_one_callback(),
            );
            let reported: Vec<String> =
                unhandled.finish().iter().map(ToString::to_string).collect();
            assert!(reported.is_empty(), "{reported:?}");
        }
    };
}

an_unread_list_that_consumes_errors_reports_nothing!(
    an_unread_list_that_consumes_errors_reports_nothing,
    Deferred<u32>,
    DeferredList
);

an_unread_list_that_consumes_errors_reports_nothing!(
    an_unread_list_that_consumes_errors_reports_nothing_local,
    deferred::LocalDeferred<u32>,
    LocalList
);

/// A settled list's result returned by a step (or by `chain!`'s) is not read by the chain that
/// waits on it: with no step of its own left to take the `Vec`, that chain keeps it as the
/// list's output did, and its end, dropped unread, reports each failure once — dropped before
/// the list fires or after, and for a list that had fired when the step returned it. Read at
/// that end (or by a step after), it reports nothing. For both kinds.
macro_rules! a_settled_list_returned_by_a_step_reports_its_failures_once_unread {
    ($name:ident, $Deferred:ty, $settle_all:path) => {
        #[test]
        fn $name() {
            let marker = concat!(stringify!($name), "-bang");
            let unhandled = Unhandled::start(marker);

            // The chain's end dropped before the list fires.
            let (d, r) = <$Deferred>::pending();
            let (a, ra) = <$Deferred>::pending();
            let outer = d.add_callback(move |_| $settle_all([a]));
            r.callback(0);
            drop(outer);
            ra.errback(Failure::msg(marker));
            assert_eq!(unhandled.count(), 1, "dropped before the list fired");

            // ... after it fired.
            let (d, r) = <$Deferred>::pending();
            let (a, ra) = <$Deferred>::pending();
            let outer = d.add_callback(move |_| $settle_all([a]));
            r.callback(0);
            ra.errback(Failure::msg(marker));
            assert!(outer.is_fired());
            assert_eq!(unhandled.count(), 1, "not while it can still be read");
            drop(outer);
            assert_eq!(unhandled.count(), 2, "dropped after the list fired");

            // A list that had fired when the step returned it.
            let (d, r) = <$Deferred>::pending();
            let outer =
                d.add_callback(move |_| $settle_all([<$Deferred>::fail(Failure::msg(marker))]));
            r.callback(0);
            drop(outer);
            assert_eq!(unhandled.count(), 3, "a fired list returned by a step");

            // `chain!`, whose step returns it.
            let (d, r) = <$Deferred>::pending();
            let (a, ra) = <$Deferred>::pending();
            let chained = deferred::chain! { d then move |_| $settle_all([a]) };
            r.callback(0);
            ra.errback(Failure::msg(marker));
            drop(chained);
            assert_eq!(unhandled.count(), 4, "chain! dropped unread");

            // Read at the end, or by a step added after: nothing.
            let (d, r) = <$Deferred>::pending();
            let (a, ra) = <$Deferred>::pending();
            let outer = d.add_callback(move |_| $settle_all([a]));
            r.callback(0);
            ra.errback(Failure::msg(marker));
            assert_eq!(outer.wait().unwrap().len(), 1);
            let (d, r) = <$Deferred>::pending();
            let outer =
                d.add_callback(move |_| $settle_all([<$Deferred>::fail(Failure::msg(marker))]));
            r.callback(0);
            drop(outer.add_callback(|results| Ok::<_, Failure>(results.len())));
            let (d, r) = <$Deferred>::pending();
            let (a, ra) = <$Deferred>::pending();
            let outer = d
                .add_callback(move |_| $settle_all([a]))
                .add_callback(|results| Ok::<_, Failure>(results.len()));
            r.callback(0);
            ra.errback(Failure::msg(marker));
            drop(outer);
            assert_eq!(unhandled.count(), 4, "read");
        }
    };
}

a_settled_list_returned_by_a_step_reports_its_failures_once_unread!(
    a_settled_list_returned_by_a_step_reports_its_failures_once_unread,
    Deferred<u32>,
    settle_all
);

a_settled_list_returned_by_a_step_reports_its_failures_once_unread!(
    a_settled_list_returned_by_a_step_reports_its_failures_once_unread_local,
    deferred::LocalDeferred<u32>,
    deferred::local::settle_all
);
