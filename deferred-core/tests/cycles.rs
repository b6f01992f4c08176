//! Chains that wait on each other (a step of A returns B's end, a step of B returns A's): nothing
//! can fire them, and a cancel (or a deadline) must still return, breaking the cycle. Each test
//! runs its cancel on another thread and fails after a generous bound instead of hanging: the
//! bug these guard against was a cancellation walk going round the cycle for ever.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use deferred_core::{CancelHandle, Deferred, Failure, ManualClock, Resolver};

/// Runs `f` on another thread; fails the test if it has not returned after 30 s.
fn returns_in_time(what: &str, f: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        f();
        let _ = done.send(());
    });
    if finished.recv_timeout(Duration::from_secs(30)).is_err() {
        panic!("{what} did not return: the chains wait on each other and nothing broke the cycle");
    }
}

type Slot = Arc<Mutex<Option<Deferred<u32>>>>;

/// `n` chains in a ring: a step of chain `i` returns chain `i + 1`'s end (the last returns the
/// first's). Each chain ends with an errback that recovers from the cancellation, then a step
/// that counts the chains that went on. Returns the roots' resolvers, a cancel handle for each
/// chain, and the count.
fn ring(n: usize) -> (Vec<Resolver<u32>>, Vec<CancelHandle>, Arc<AtomicUsize>) {
    let slots: Vec<Slot> = (0..n).map(|_| Arc::new(Mutex::new(None))).collect();
    let went_on = Arc::new(AtomicUsize::new(0));
    let mut resolvers = Vec::new();
    let mut handles = Vec::new();
    for i in 0..n {
        let (root, resolver) = Deferred::<u32>::pending();
        let next = slots[(i + 1) % n].clone();
        let counted = went_on.clone();
        let end = root
            .add_callback(move |_| {
                next.lock()
                    .unwrap()
                    .take()
                    .expect("every end is in its slot")
            })
            .add_errback(move |f: Failure| {
                assert!(
                    f.is_cancelled(),
                    "the cycle is broken by a cancellation: {f:?}"
                );
                Ok(0)
            })
            .add_both(move |result| {
                counted.fetch_add(1, Ordering::SeqCst);
                result
            });
        handles.push(end.cancel_handle());
        *slots[i].lock().unwrap() = Some(end);
        resolvers.push(resolver);
    }
    (resolvers, handles, went_on)
}

#[test]
fn two_chains_waiting_on_each_other_cancel_and_return() {
    let (resolvers, handles, went_on) = ring(2);
    for resolver in resolvers {
        resolver.callback(1); // each chain's step returns the other's end: a cycle
    }
    assert_eq!(
        went_on.load(Ordering::SeqCst),
        0,
        "nothing fires a cycle by itself"
    );
    let handle = handles[0].clone();
    returns_in_time("cancel of a chain in a 2-cycle", move || handle.cancel());
    // Both chains went on: the one whose wait closed the cycle with the cancellation, the other
    // with what that one gave.
    assert_eq!(went_on.load(Ordering::SeqCst), 2);
}

#[test]
fn cycles_of_3_and_100_chains_cancel_and_return() {
    for n in [3, 100] {
        let (resolvers, handles, went_on) = ring(n);
        for resolver in resolvers {
            resolver.callback(1);
        }
        let handle = handles[n / 2].clone();
        returns_in_time("cancel of a chain in a long cycle", move || handle.cancel());
        assert_eq!(
            went_on.load(Ordering::SeqCst),
            n,
            "every chain of the {n}-cycle went on"
        );
    }
}

#[test]
fn a_cycle_formed_from_two_threads_at_once_cancels() {
    for _ in 0..200 {
        let (resolvers, handles, went_on) = ring(2);
        let start = Arc::new(Barrier::new(2));
        let firing: Vec<_> = resolvers
            .into_iter()
            .map(|resolver| {
                let start = start.clone();
                std::thread::spawn(move || {
                    start.wait();
                    resolver.callback(1);
                })
            })
            .collect();
        for thread in firing {
            thread.join().unwrap();
        }
        let handle = handles[1].clone();
        returns_in_time("cancel of a cycle formed by two threads", move || {
            handle.cancel()
        });
        assert_eq!(went_on.load(Ordering::SeqCst), 2);
    }
}

#[test]
fn cancelling_a_cycle_twice_is_harmless() {
    let (resolvers, handles, went_on) = ring(2);
    for resolver in resolvers {
        resolver.callback(1);
    }
    let first = handles[0].clone();
    let second = handles[1].clone();
    returns_in_time("two cancels of a cycle", move || {
        first.cancel();
        second.cancel();
    });
    assert_eq!(went_on.load(Ordering::SeqCst), 2);
}

#[test]
fn a_step_returning_its_own_chain_past_a_timeout_times_out_at_the_deadline() {
    // The end the step returns is the chain's own end to the user, but `add_timeout` put the
    // steps after it on a second internal link that waits on the first: a cycle of two links.
    let clock = ManualClock::new();
    let slot: Slot = Arc::new(Mutex::new(None));
    let (root, resolver) = Deferred::<u32>::pending();
    let own = slot.clone();
    let outcome = Arc::new(Mutex::new(None));
    let seen = outcome.clone();
    let end = root
        .add_callback(move |_| own.lock().unwrap().take().expect("the end is in its slot"))
        .add_timeout(Duration::from_secs(1), &clock)
        .add_both(move |result: Result<u32, Failure>| {
            *seen.lock().unwrap() = Some(result.as_ref().map_err(|f| f.to_string()).copied());
            result
        });
    *slot.lock().unwrap() = Some(end);
    resolver.callback(1); // the step returns the chain's own end
    assert!(outcome.lock().unwrap().is_none());
    let advancing = clock.clone();
    returns_in_time("ManualClock::advance past the deadline", move || {
        advancing.advance(Duration::from_secs(2))
    });
    let outcome = outcome.lock().unwrap().clone();
    assert!(
        matches!(&outcome, Some(Err(message)) if message.contains("cancelled") || message.contains("timed out")),
        "the chain goes on with the cancellation at the deadline: {outcome:?}"
    );
}

/// Where a cancel of a cycle through combinators starts.
const FROM: [&str; 3] = ["the input", "the first combinator", "the output"];

/// A chain whose step returns a combinator of the chain itself (`map_err`'s output, or with
/// `gather`, `gather_results`'), through `nested` combinators: the output waits on its input,
/// and the input on the output. `recover` is the input's errback, after that step. Fires the
/// input's root, which makes the cycle, and gives the cancel handle of the place `from` names
/// (one of [`FROM`]).
fn cycle_through_combinators(
    nested: usize,
    gather: bool,
    from: &str,
    recover: impl FnOnce(Failure) -> Result<u32, Failure> + Send + 'static,
) -> CancelHandle {
    let slot: Slot = Arc::new(Mutex::new(None));
    let (root, resolver) = Deferred::<u32>::pending();
    let next = slot.clone();
    let input = root
        .add_callback(move |_| next.lock().unwrap().take().expect("in its slot"))
        .add_errback(recover);
    let mut handles = vec![input.cancel_handle()];
    let output = (0..nested).fold(input, |d, _| {
        let d = if gather {
            deferred_core::gather_results([d])
                .add_callback(|mut values| Ok(values.pop().expect("one input")))
        } else {
            d.map_err(|f: Failure| f)
        };
        handles.push(d.cancel_handle());
        d
    });
    let handle = match from {
        "the input" => handles[0].clone(),
        "the first combinator" => handles[1].clone(),
        _ => output.cancel_handle(),
    };
    *slot.lock().unwrap() = Some(output);
    resolver.callback(1); // the input's step returns the output: a cycle
    handle
}

/// A cancel of a cycle through combinators ([`cycle_through_combinators`]) cancels the
/// output's inputs, each in a walk of its own, which comes back to the output: it must see
/// that it went round, and break the cycle, wherever it starts (the input, a combinator
/// between, the output), and past the 16 nested calls after which cancels are put off.
#[test]
fn a_cycle_through_combinators_cancels_and_returns() {
    for nested in [1, 2, 40] {
        for gather in [false, true] {
            for from in FROM {
                let went_on = Arc::new(AtomicUsize::new(0));
                let counted = went_on.clone();
                let handle = cycle_through_combinators(nested, gather, from, move |f| {
                    assert!(f.is_cancelled(), "the cycle is broken by a cancel: {f:?}");
                    counted.fetch_add(1, Ordering::SeqCst);
                    Ok(0)
                });
                assert_eq!(went_on.load(Ordering::SeqCst), 0, "nothing fires a cycle");
                returns_in_time("cancel of a cycle through combinators", move || {
                    handle.cancel()
                });
                assert_eq!(
                    went_on.load(Ordering::SeqCst),
                    1,
                    "the input went on ({nested} nested, gather {gather}, from {from})"
                );
            }
        }
    }
}

/// As above, with an input whose errback fails again (not with the cancellation): however the
/// cycle is broken — the input's wait cancelled, or a combinator's output failed where its
/// inputs' answers would have decided it, which leaves those answers out — that failure is
/// reported once, not lost.
#[test]
fn a_failure_left_over_when_a_cycle_through_combinators_breaks_is_reported() {
    for nested in [1, 2, 3, 40] {
        for gather in [false, true] {
            for from in FROM {
                let handle = cycle_through_combinators(nested, gather, from, |_| {
                    Err(Failure::msg("left over"))
                });
                let (reported_tx, reported) = mpsc::channel();
                returns_in_time("cancel of a cycle through combinators", move || {
                    let ((), failures) = deferred_core::capture_unhandled(|| handle.cancel());
                    let left_over = failures
                        .iter()
                        .filter(|f| format!("{f:?}").contains("left over"))
                        .count();
                    reported_tx.send(left_over).unwrap();
                });
                assert_eq!(
                    reported.recv().unwrap(),
                    1,
                    "the failure is reported once ({nested} nested, gather {gather}, from {from})"
                );
            }
        }
    }
}
