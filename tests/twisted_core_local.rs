//! The port of Twisted's Deferred tests (`test_defer.py`, and a few of `test_inlinecb.py` /
//! `test_failure.py`) for the one-thread kind, [`LocalDeferred`]: the scenarios both kinds
//! share are written once in `tests/twisted_core/common.rs` (included here and by
//! `tests/twisted_core.rs`, which runs them against `Deferred`). Twisted's Deferreds are
//! one-thread objects, so this is the kind closest to them; the scenarios that the `Send` suite
//! runs across threads follow, on one thread, with `Rc` state where Twisted would share objects.
//!
//! [`LocalDeferred`]: deferred::LocalDeferred

use std::cell::{Cell, RefCell};
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// The kind under test, by the names the common body uses.
mod kind {
    pub use deferred::{LocalDeferred as Deferred, LocalResolver as Resolver, LocalValue as Value};
}

include!("twisted_core/common.rs");

// #############################################################################################
// The local kind only: the scenarios tests/twisted_core.rs runs across threads, on one thread.
//
// A `LocalResolver` cannot be fired from another thread, so the chain is built, fired and
// awaited on the same one (the small-stack thread, for the stack-depth scenarios), and the
// values shared between steps are `Rc`s.
// #############################################################################################

/// Runs `f` on a thread with a 256 KiB stack: a chain that recursed per link would overflow.
fn on_small_stack<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("the small-stack thread panicked")
}

// Twisted issue #3229 / reference §O 157, as `chain_deferred_deep` (tests/twisted_core.rs):
// each forward fires the next LocalResolver from inside a callback; constant stack.
#[test]
fn local_chain_deferred_deep() {
    const N: usize = 100_000;
    let (tail, forwards) = on_small_stack(|| {
        let forwards = Rc::new(Cell::new(0usize));
        let (head, head_r) = Deferred::<Rc<u64>>::pending();
        let mut current = head;
        let mut ends = Vec::with_capacity(N);
        for _ in 0..N {
            let (next, next_r) = Deferred::<Rc<u64>>::pending();
            let count = forwards.clone();
            ends.push(current.add_both(move |result: Result<Rc<u64>, Failure>| {
                count.set(count.get() + 1);
                next_r.fire(result.map(|v| Rc::new(*v + 1)));
                Ok(())
            }));
            current = next;
        }
        head_r.callback(Rc::new(0));
        let tail = *current.wait().unwrap();
        for end in ends {
            end.wait().unwrap();
        }
        (tail, forwards.get())
    });
    assert_eq!((tail, forwards), (N as u64, N));
}

// Reference §O 158 / Twisted issue #9304, as `synchronous_release_cascade`
// (tests/twisted_core.rs): each waiter hands the lock to the next from its callback.
#[test]
fn local_synchronous_release_cascade() {
    const N: usize = 10_000;
    let done = on_small_stack(|| {
        let done = Rc::new(Cell::new(0usize));
        let mut resolvers = Vec::with_capacity(N);
        let mut chains = Vec::with_capacity(N);
        for _ in 0..N {
            let (d, r) = Deferred::<()>::pending();
            resolvers.push(r);
            chains.push(d);
        }
        let mut next_resolvers: Vec<Option<Resolver<()>>> =
            resolvers.into_iter().map(Some).collect();
        let first = next_resolvers[0].take().unwrap();
        let mut ends = Vec::with_capacity(N);
        for (i, d) in chains.into_iter().enumerate() {
            let next = next_resolvers.get_mut(i + 1).and_then(Option::take);
            let c = done.clone();
            ends.push(d.add_callback(move |_| {
                c.set(c.get() + 1);
                if let Some(next) = next {
                    next.callback(());
                }
                Ok(())
            }));
        }
        first.callback(());
        for end in ends {
            end.wait().unwrap();
        }
        done.get()
    });
    assert_eq!(done, N);
}

// Twisted: test_inlinecb.StackedInlineCallbacksTests.test_nonCalledDeferredSingleYield, as
// `non_called_deferred_single_await` (tests/twisted_core.rs), polled on this thread: the
// future is pending until the external LocalDeferred fires, then completes at the next poll.
#[test]
fn local_non_called_deferred_single_await() {
    let (external, external_r) = Deferred::<u32>::pending();
    let trace = Rc::new(RefCell::new(Vec::new()));
    let (t1, t2, t3) = (trace.clone(), trace.clone(), trace.clone());
    let f1 = async move {
        t1.borrow_mut().push("f1 enter");
        let v = external.await.unwrap() + 1;
        t1.borrow_mut().push("f1 exit");
        v
    };
    let f2 = async move {
        t2.borrow_mut().push("f2 enter");
        let v = f1.await + 2;
        t2.borrow_mut().push("f2 exit");
        v
    };
    let mut f3 = pin!(async move {
        t3.borrow_mut().push("f3 enter");
        let v = f2.await + 4;
        t3.borrow_mut().push("f3 exit");
        v
    });
    let mut cx = Context::from_waker(Waker::noop());
    assert!(f3.as_mut().poll(&mut cx).is_pending());
    assert_eq!(*trace.borrow(), ["f3 enter", "f2 enter", "f1 enter"]);
    external_r.callback(1);
    assert_eq!(f3.as_mut().poll(&mut cx), Poll::Ready(8));
    assert_eq!(
        *trace.borrow(),
        [
            "f3 enter", "f2 enter", "f1 enter", "f1 exit", "f2 exit", "f3 exit"
        ]
    );
}

// Twisted: test_inlinecb.StackedInlineCallbacksTests.test_intermediateAddCallbacksAndNoWaiting,
// as `intermediate_add_callbacks_before_await` (tests/twisted_core.rs), on this thread.
#[test]
fn local_intermediate_add_callbacks_before_await() {
    let (inner, inner_r) = Deferred::<u32>::pending();
    let inner = inner.add_callback(|x| Ok(x * 4));
    let mut awaiting = pin!(async move { inner.await.unwrap() + 4 });
    let mut cx = Context::from_waker(Waker::noop());
    assert!(awaiting.as_mut().poll(&mut cx).is_pending());
    inner_r.callback(1);
    assert_eq!(awaiting.as_mut().poll(&mut cx), Poll::Ready(8));
}

// Twisted: test_defer.DeferredTests.test_repr, as `debug_repr`: the Debug of a local Deferred
// and Resolver name their kind, as the panics and on_unimplemented notes of its methods do
// (`LocalDeferred::add_callback`).
#[test]
fn local_debug_repr_names_the_local_kind() {
    let (d, r) = Deferred::<u32>::pending();
    assert!(format!("{d:?}").starts_with("LocalDeferred"), "{d:?}");
    assert!(format!("{r:?}").starts_with("LocalResolver"), "{r:?}");
    r.callback(1);
    d.wait().unwrap();
}
