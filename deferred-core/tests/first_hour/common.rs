// The tests of tests/first_hour.rs, written once and included for each kind (module `send`:
// `Deferred`; module `local`: `LocalDeferred`).

use std::sync::{Arc, Mutex};

use deferred_core::{Cancelled, Failure};
use kind::{Deferred, Resolver, map_concurrent};

use super::support::Count;

// ---------------------------------------------------------------------------------------------
// map_concurrent after a cancel
// ---------------------------------------------------------------------------------------------

/// The newcomer's batch: each item turns its own failure into a value (`add_both(|o| Ok(o))`,
/// to collect every outcome), and the batch is cancelled while the first items run. Before the
/// fix, each cancelled item's "success" released its token to the next item, which started:
/// 100 items, 106 attempts, and the batch fired `Ok`.
#[test]
fn a_cancelled_map_concurrent_starts_no_item_even_when_items_turn_failures_into_values() {
    let attempts = Count::new();
    let cancels = Count::new();
    let running: Arc<Mutex<Vec<Resolver<u32>>>> = Arc::default();
    let (a, c, keep) = (attempts.clone(), cancels.clone(), running.clone());
    let batch = map_concurrent(0..100u32, 3, move |_item: u32| {
        a.bump();
        let c = c.clone();
        let (work, resolver) = Deferred::<u32>::with_canceller(move || c.bump());
        keep.lock().unwrap().push(resolver);
        // Every outcome becomes a value: a cancellation too.
        work.add_both(|outcome: Result<u32, Failure>| Ok::<_, Failure>(outcome.map_err(|f| f.to_string())))
    });
    assert_eq!(attempts.get(), 3, "three items run");
    batch.cancel();
    assert_eq!(cancels.get(), 3, "the running items were cancelled");
    assert_eq!(attempts.get(), 3, "no item started after the cancel");
    let failure = batch.wait().expect_err("a cancelled batch does not succeed");
    assert!(format!("{failure:#}").contains("cancel"), "{failure:#}");
    drop(running);
}

/// The same, when the items answer their cancellation with a success of their own (a canceller
/// that fires its Resolver with a value).
#[test]
fn a_cancelled_map_concurrent_starts_no_item_even_when_cancellers_answer_with_values() {
    let attempts = Count::new();
    let (a,) = (attempts.clone(),);
    let batch = map_concurrent(0..10u32, 2, move |item: u32| {
        a.bump();
        let slot: Arc<Mutex<Option<Resolver<u32>>>> = Arc::default();
        let in_canceller = slot.clone();
        let (work, resolver) = Deferred::<u32>::with_canceller(move || {
            if let Some(resolver) = in_canceller.lock().unwrap().take() {
                resolver.callback(item); // "cancelled: here is what I had"
            }
        });
        *slot.lock().unwrap() = Some(resolver);
        work
    });
    assert_eq!(attempts.get(), 2);
    batch.cancel();
    assert_eq!(attempts.get(), 2, "no item started after the cancel");
    assert!(batch.wait().is_err());
}

// ---------------------------------------------------------------------------------------------
// Resolver::set_canceller
// ---------------------------------------------------------------------------------------------

#[test]
fn a_canceller_set_after_the_work_started_runs_on_cancel() {
    let cancels = Count::new();
    let (d, resolver) = Deferred::<u32>::pending();
    let d = d.add_callback(|n| Ok(n + 1));
    let request_id = 7; // known only once the work has started
    let c = cancels.clone();
    resolver.set_canceller(move || {
        assert_eq!(request_id, 7);
        c.bump();
    });
    d.cancel();
    assert_eq!(cancels.get(), 1);
    assert!(d.wait().unwrap_err().is::<Cancelled>());
    resolver.callback(1); // ignored: the Deferred was cancelled
}

#[test]
fn set_canceller_replaces_the_canceller_given_before_which_never_runs() {
    let (first, second) = (Count::new(), Count::new());
    let (f, s) = (first.clone(), second.clone());
    let (d, resolver) = Deferred::<u32>::with_canceller(move || f.bump());
    resolver.set_canceller(move || s.bump());
    d.cancel();
    assert_eq!((first.get(), second.get()), (0, 1));
    assert!(d.wait().unwrap_err().is_cancelled());
    drop(resolver);
}

#[test]
fn a_canceller_set_after_the_chain_was_cancelled_runs_at_once() {
    let cancels = Count::new();
    let (d, resolver) = Deferred::<u32>::pending();
    d.cancel(); // before the producer knew how to stop its work
    assert!(d.wait().unwrap_err().is_cancelled());
    let c = cancels.clone();
    resolver.set_canceller(move || c.bump());
    assert_eq!(cancels.get(), 1, "the cancel already happened: the work is stopped now");
    resolver.set_canceller(|| {}); // and again, for a second one
    drop(resolver);
}

#[test]
fn a_canceller_set_while_the_old_one_runs_runs_at_once_too() {
    let cancels = Count::new();
    let slot: Arc<Mutex<Option<Resolver<u32>>>> = Arc::default();
    let (in_canceller, c) = (slot.clone(), cancels.clone());
    let (d, resolver) = Deferred::<u32>::with_canceller(move || {
        // The producer learns how to stop the work while the first canceller runs.
        let c = c.clone();
        if let Some(resolver) = &*in_canceller.lock().unwrap() {
            resolver.set_canceller(move || c.bump());
        }
    });
    *slot.lock().unwrap() = Some(resolver);
    d.cancel();
    assert_eq!(cancels.get(), 1);
    assert!(d.wait().unwrap_err().is_cancelled());
}

#[test]
fn a_canceller_set_but_never_needed_is_dropped_when_the_deferred_fires() {
    let dropped = Count::new();
    struct OnDrop(Count);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            self.0.bump();
        }
    }
    let guard = OnDrop(dropped.clone());
    let (d, resolver) = Deferred::<u32>::pending();
    resolver.set_canceller(move || {
        let _keep = &guard;
        unreachable!("never cancelled");
    });
    assert_eq!(dropped.get(), 0);
    resolver.callback(3);
    assert_eq!(dropped.get(), 1);
    assert_eq!(d.wait().unwrap(), 3);
}
