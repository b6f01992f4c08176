//! The port of Twisted's Deferred tests (`test_defer.py`, and a few of `test_inlinecb.py` /
//! `test_failure.py`) for the `Send` kind, [`Deferred`]: the scenarios both kinds share are
//! written once in `tests/twisted_core/common.rs` (included here and by
//! `tests/twisted_core_local.rs`, which runs them against `LocalDeferred`); the scenarios that
//! involve another thread follow it.

/// The kind under test, by the names the common body uses.
mod kind {
    pub use deferred::{Deferred, Resolver, Sendable as Value};
}

include!("twisted_core/common.rs");

// #############################################################################################
// The `Send` kind only: scenarios with another thread.
//
// These fire a Resolver on another thread (a small-stack one, to show the stack stays
// constant) or await on a worker thread while this one fires. A `LocalResolver` cannot move
// to another thread, so they do not apply to the local kind as written;
// tests/twisted_core_local.rs has their single-thread versions.
// #############################################################################################

// ---------------------------------------------------------------------------------------------
// B. Chaining nested Deferreds, fired on a small-stack thread
// ---------------------------------------------------------------------------------------------

// Twisted issue #3229 / reference §O 157: `chainDeferred` recursion breaks at ~332 links in
// Twisted. Here each forward fires the next Resolver from inside a callback: constant stack.
#[test]
fn chain_deferred_deep() {
    const N: usize = 100_000;
    let (head, head_r) = Deferred::<u64>::pending();
    let mut current = head;
    let mut ends = Vec::with_capacity(N);
    for _ in 0..N {
        let (next, next_r) = Deferred::<u64>::pending();
        ends.push(current.add_both(move |result: Result<u64, Failure>| {
            next_r.fire(result.map(|v| v + 1));
            Ok(())
        }));
        current = next;
    }
    let tail = current;
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || head_r.callback(0))
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(tail.wait().unwrap(), N as u64);
    for end in ends {
        end.wait().unwrap();
    }
}

// Reference §O 158 / Twisted issue #9304: a lock hand-off cascade where each waiter releases
// synchronously in its callback (Twisted: 199 of N complete, then RecursionError).
#[test]
fn synchronous_release_cascade() {
    const N: usize = 10_000;
    let done = counter();
    let mut resolvers = Vec::with_capacity(N);
    let mut chains = Vec::with_capacity(N);
    for _ in 0..N {
        let (d, r) = Deferred::<()>::pending();
        resolvers.push(r);
        chains.push(d);
    }
    // Waiter i, when it gets the lock, releases it: it hands the lock to waiter i + 1.
    let mut next_resolvers: Vec<Option<Resolver<()>>> = resolvers.into_iter().map(Some).collect();
    let first = next_resolvers[0].take().unwrap();
    let mut ends = Vec::with_capacity(N);
    for (i, d) in chains.into_iter().enumerate() {
        let next = next_resolvers.get_mut(i + 1).and_then(Option::take);
        let c = done.clone();
        ends.push(d.add_callback(move |_| {
            c.fetch_add(1, SeqCst);
            if let Some(next) = next {
                next.callback(());
            }
            Ok(())
        }));
    }
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || first.callback(()))
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(done.load(SeqCst), N);
    for end in ends {
        end.wait().unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// M. inlineCallbacks, as async/await, awaited on a worker thread
// ---------------------------------------------------------------------------------------------

// Twisted: test_inlinecb.StackedInlineCallbacksTests.test_nonCalledDeferredSingleYield
// (f3 -> f2 -> f1, each adds 4, 2, 1 after its await; f1 waits on an external Deferred)
#[test]
fn non_called_deferred_single_await() {
    let (external, external_r) = Deferred::<u32>::pending();
    let trace = log();
    let (t1, t2, t3) = (trace.clone(), trace.clone(), trace.clone());
    let f1 = async move {
        push(&t1, "f1 enter");
        let v = external.await.unwrap() + 1;
        push(&t1, "f1 exit");
        v
    };
    let f2 = async move {
        push(&t2, "f2 enter");
        let v = f1.await + 2;
        push(&t2, "f2 exit");
        v
    };
    let f3 = async move {
        push(&t3, "f3 enter");
        let v = f2.await + 4;
        push(&t3, "f3 exit");
        v
    };
    let worker = std::thread::spawn(move || block_on(f3));
    // Fire from this thread; the awaiting chain completes on the worker.
    external_r.callback(1);
    assert_eq!(worker.join().unwrap(), 8);
    assert_eq!(
        snapshot(&trace),
        [
            "f3 enter", "f2 enter", "f1 enter", "f1 exit", "f2 exit", "f3 exit"
        ]
    );
}

// Twisted: test_inlinecb.StackedInlineCallbacksTests.test_intermediateAddCallbacksAndNoWaiting
// (a callback added to an inner Deferred before it is awaited runs before the await resumes)
#[test]
fn intermediate_add_callbacks_before_await() {
    let (inner, inner_r) = Deferred::<u32>::pending();
    let inner = inner.add_callback(|x| Ok(x * 4));
    let worker = std::thread::spawn(move || block_on(async move { inner.await.unwrap() + 4 }));
    inner_r.callback(1);
    assert_eq!(worker.join().unwrap(), 8);
}
