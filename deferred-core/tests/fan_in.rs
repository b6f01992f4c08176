//! The combinators' engine (`fan_in.rs`) when user code panics in it: a `Drop` of a result it
//! holds, an error's conversion to `Failure`. The panic is reported, or is that input's failure,
//! as a step's would be (rule 4), and no other result is lost. Before, a held value's panicking
//! `Drop` unwound past the output's settle (the output failed with `NeverFired`, and the
//! deciding failure and the other held ones were lost), and a panicking conversion lost the
//! other failures of a `race`.

mod support;

use std::sync::mpsc;
use std::time::Duration;

use deferred_core::{
    Deferred, DeferredList, Failure, FirstError, FirstSuccess, gather_results, race,
};
use support::unhandled;

/// A value whose `Drop` panics once.
struct PanicOnDrop(&'static str);
impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("{}", self.0);
        }
    }
}

fn settled<T: Send + 'static>(d: Deferred<T>) -> Result<T, Failure> {
    let (tx, rx) = mpsc::channel();
    drop(d.add_both(move |r| {
        let _ = tx.send(r);
        Ok(())
    }));
    rx.recv_timeout(Duration::from_secs(5))
        .expect("the output never fired")
}

/// gather_results: a kept value whose Drop panics, dropped when a later failure decides, must
/// not lose that failure: the output fails with FirstError{1, ..}.
#[test]
fn gather_panicking_drop_of_kept_value_keeps_the_deciding_failure() {
    unhandled("fan-in-t1");
    let (a, ra) = Deferred::<PanicOnDrop>::pending();
    let (b, rb) = Deferred::<PanicOnDrop>::pending();
    let out = gather_results([a, b]);
    ra.callback(PanicOnDrop("fan-in-t1-drop"));
    rb.errback(Failure::msg("fan-in-t1-fail"));
    let failure = settled(out).map(|_| ()).unwrap_err();
    let first = failure
        .downcast_ref::<FirstError>()
        .unwrap_or_else(|| panic!("not a FirstError: {failure:#}"));
    assert_eq!(first.index, 1);
    assert_eq!(first.failure.to_string(), "fan-in-t1-fail");
    // The drop's panic is reported.
    assert_eq!(unhandled("fan-in-t1-drop"), 1);
}

/// fire_on_one_callback: kept failures are reported when a success decides; a panicking Drop of
/// one kept value (an error type) must not lose the success or the other kept failures.
#[derive(Debug)]
struct PanickyErr(&'static str, bool);
impl std::fmt::Display for PanickyErr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}
impl Drop for PanickyErr {
    fn drop(&mut self) {
        if self.1 && !std::thread::panicking() {
            panic!("{}-drop", self.0);
        }
    }
}
impl From<Failure> for PanickyErr {
    fn from(_f: Failure) -> Self {
        PanickyErr("fan-in-from-failure", false)
    }
}

/// fire_on_one_callback: a kept failure whose Drop panics must not lose the success that
/// decided nor the other kept failures (each is reported).
#[test]
fn fire_on_one_callback_panicking_drop_of_kept_failure() {
    unhandled("fan-in-t2");
    let (a, ra) = Deferred::<u32, PanickyErr>::pending();
    let (b, rb) = Deferred::<u32, PanickyErr>::pending();
    let (c, rc) = Deferred::<u32, PanickyErr>::pending();
    let out = DeferredList::new([a, b, c]).fire_on_one_callback();
    ra.errback(PanickyErr("fan-in-t2-a", true));
    rb.errback(PanickyErr("fan-in-t2-b", false));
    rc.callback(7);
    let (tx, rx) = mpsc::channel();
    drop(out.add_both(move |r| {
        let _ = tx.send(
            r.map(|s| match s {
                FirstSuccess::Succeeded { index, value } => Some((index, value)),
                FirstSuccess::AllFailed(_) => None,
            })
            .map_err(|e| e.to_string()),
        );
        Ok(())
    }));
    let got = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("never fired");
    assert_eq!(got, Ok(Some((2, 7))));
    // a's Drop panic is reported; b's failure is reported (left out of the outcome).
    // (An error that is not a `Failure` is reported by its type's name.)
    assert_eq!(unhandled("fan-in-t2-a-drop"), 1);
    assert_eq!(unhandled("PanickyErr"), 2);
}

#[derive(Debug)]
struct ConvErr(&'static str, bool);
impl From<Failure> for ConvErr {
    fn from(_f: Failure) -> Self {
        ConvErr("from-failure", false)
    }
}
impl From<ConvErr> for Failure {
    fn from(e: ConvErr) -> Failure {
        if e.1 {
            panic!("{}-conversion", e.0);
        }
        Failure::msg(e.0)
    }
}

/// race: every input failed, and the first one's conversion to `Failure` panics: the other
/// failure must not be lost (in the output's group, or reported), and the output must not be a
/// `NeverFired`.
#[test]
fn race_conversion_panic_keeps_other_failures() {
    unhandled("fan-in-t5");
    let (a, ra) = Deferred::<u32, ConvErr>::pending();
    let (b, rb) = Deferred::<u32, ConvErr>::pending();
    let out = race([a, b]);
    ra.errback(ConvErr("fan-in-t5-a", true));
    rb.errback(ConvErr("fan-in-t5-b", false));
    let failure = settled(out).unwrap_err();
    let text = format!("{failure:#}");
    assert!(!text.contains("never fired"), "{text}");
    let group = failure
        .downcast_ref::<deferred_core::FailureGroup>()
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(group.failures.len(), 2);
    assert_eq!(group.failures[1].to_string(), "fan-in-t5-b");
    assert!(format!("{:#}", group.failures[0]).contains("fan-in-t5-a-conversion"));
}

/// The same as the gather test above, for `LocalDeferred`.
#[test]
fn local_gather_panicking_drop_of_kept_value_keeps_the_deciding_failure() {
    use deferred_core::LocalDeferred;
    unhandled("fan-in-t8");
    let (a, ra) = LocalDeferred::<PanicOnDrop>::pending();
    let (b, rb) = LocalDeferred::<PanicOnDrop>::pending();
    let out = deferred_core::local::gather_results([a, b]);
    ra.callback(PanicOnDrop("fan-in-t8-drop"));
    rb.errback(Failure::msg("fan-in-t8-fail"));
    let failure = out.wait().map(|_| ()).unwrap_err();
    let first = failure
        .downcast_ref::<FirstError>()
        .unwrap_or_else(|| panic!("not a FirstError: {failure:#}"));
    assert_eq!(
        (first.index, first.failure.to_string()),
        (1, "fan-in-t8-fail".to_string())
    );
    assert_eq!(unhandled("fan-in-t8-drop"), 1);
}

/// Stress: the inputs of a combinator fire from 8 threads at once (half of them fail, each with
/// a failure of its own), lined up by a barrier with a thread that cancels the output in some
/// rounds. Every failure that entered its input (the fire was not refused by a cancel) is seen
/// exactly once: in the outcome, or reported as unhandled on the thread that made it so (each
/// thread captures its reports). Never lost, never twice.
#[test]
fn failures_fired_on_many_threads_racing_a_cancel_are_each_seen_exactly_once() {
    use deferred_core::{FirstSuccess, capture_unhandled, settle_all};
    use std::sync::{Arc, Barrier};
    const INPUTS: usize = 8;
    const ROUNDS: usize = 120;
    /// The messages of the input failures an outcome holds.
    fn in_outcome(outcome: Result<Vec<Result<usize, Failure>>, Failure>) -> Vec<String> {
        match outcome {
            Ok(results) => results
                .into_iter()
                .filter_map(Result::err)
                .map(|failure| failure.to_string())
                .collect(),
            Err(failure) => vec![failure.to_string()],
        }
    }
    for round in 0..ROUNDS {
        let kind = round % 3;
        let cancel = round % 2 == 1;
        let mut inputs = Vec::new();
        let mut resolvers = Vec::new();
        for _ in 0..INPUTS {
            let (input, resolver) = Deferred::<usize>::pending();
            inputs.push(input);
            resolvers.push(resolver);
        }
        // Every combinator's outcome, as the results it holds.
        let output: Deferred<Vec<Result<usize, Failure>>> = match kind {
            0 => gather_results(inputs).add_both(|outcome| match outcome {
                Ok(values) => Ok(values.into_iter().map(Ok).collect()),
                Err(failure) => match failure.trap::<FirstError>() {
                    Ok(first) => Ok(vec![Err(first.failure)]),
                    Err(other) => Err(other),
                },
            }),
            1 => settle_all(inputs),
            _ => DeferredList::new(inputs)
                .fire_on_one_callback()
                .add_callback(|first| {
                    Ok(match first {
                        FirstSuccess::Succeeded { value, .. } => vec![Ok(value)],
                        FirstSuccess::AllFailed(failures) => {
                            failures.into_iter().map(Err).collect()
                        }
                    })
                }),
        };
        let barrier = Arc::new(Barrier::new(INPUTS + 1));
        let handle = output.cancel_handle();
        let (fired, mut reports) = std::thread::scope(|scope| {
            let firing: Vec<_> = resolvers
                .into_iter()
                .enumerate()
                .map(|(i, resolver)| {
                    let barrier = barrier.clone();
                    scope.spawn(move || {
                        capture_unhandled(|| {
                            barrier.wait();
                            let result = if i % 2 == 0 {
                                Err(Failure::msg(format!("input {i} of round {round} failed")))
                            } else {
                                Ok(i)
                            };
                            i % 2 == 0 && resolver.try_fire(result).is_ok()
                        })
                    })
                })
                .collect();
            let cancelling = {
                let barrier = barrier.clone();
                scope.spawn(move || {
                    capture_unhandled(|| {
                        barrier.wait();
                        if cancel {
                            handle.cancel();
                        }
                    })
                    .1
                })
            };
            let mut reports = cancelling.join().unwrap();
            let mut fired = Vec::new();
            for (i, thread) in firing.into_iter().enumerate() {
                let (entered, seen) = thread.join().unwrap();
                reports.extend(seen);
                if entered {
                    fired.push(format!("input {i} of round {round} failed"));
                }
            }
            (fired, reports)
        });
        let (outcome, seen) = capture_unhandled(|| output.wait());
        reports.extend(seen);
        let held = in_outcome(outcome);
        for message in &fired {
            let times = held.iter().filter(|m| *m == message).count()
                + reports.iter().filter(|f| f.to_string() == *message).count();
            assert_eq!(
                times, 1,
                "round {round} (combinator {kind}, cancelled: {cancel}): {message} seen {times} times; outcome {held:?}, reports {reports:?}"
            );
        }
    }
}
