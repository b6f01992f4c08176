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

// ---------------------------------------------------------------------------------------------
// L/M. Coroutines as Deferreds: `Deferred::drive_future` (Twisted's `ensureDeferred` /
// `Deferred.fromCoroutine` / inlineCallbacks), the `Send` kind only (the local kind has no
// runtime-free driver)
// ---------------------------------------------------------------------------------------------

// Twisted: test_defer.DeferredTests.test_maybeDeferredCoroutineSuccess / ...Indirect /
// test_maybeDeferredCoroutineFailure, and EnsureDeferredTests (an async function that awaits
// `succeed("foo")` gives "foo"): a future as a Deferred.
#[test]
fn maybe_deferred_of_a_driven_future() {
    let d = deferred::maybe_deferred(|| Deferred::<u32>::drive_future(async { Ok(7) }));
    assert!(
        d.is_fired(),
        "a ready future fires before drive_future returns"
    );
    assert_eq!(d.add_callback(|x| Ok(x + 1)).wait().unwrap(), 8);

    let foo = Deferred::<&str>::drive_future(async { Deferred::<&str>::succeed("foo").await });
    assert_eq!(foo.wait().unwrap(), "foo");

    let failed = Deferred::<u32>::drive_future(async {
        Err(Failure::new(GenericError::new("SomeException")))
    });
    let f = failed.wait().unwrap_err();
    assert!(f.is::<GenericError>(), "exactly that error: {f}");
}

// Twisted: test_inlinecb.BasicTests.testNothing / testReturnNoValue / testYieldNonDeferred
// (a coroutine with no await, or that awaits a plain value, gives its return value at once)
#[test]
fn driven_future_with_nothing_to_wait_on_fires_at_once() {
    let nothing = Deferred::<()>::drive_future(async { Ok(()) });
    assert!(nothing.is_fired());
    nothing.wait().unwrap();
    let five = Deferred::<u32>::drive_future(async { Ok(std::future::ready(5).await) });
    assert_eq!(five.wait().unwrap(), 5);
}

// Twisted: test_defer.CoroutineContextVarsTests... test_coroutineNoCircularReference: after the
// coroutine completes, what it held is freed at once.
#[test]
fn driven_future_frees_what_it_held_on_completion() {
    let held = Arc::new(());
    let h = held.clone();
    let (inner, inner_r) = Deferred::<u32>::pending();
    let d = Deferred::<u32>::drive_future(async move {
        let _h = h;
        inner.await
    });
    assert_eq!(Arc::strong_count(&held), 2);
    inner_r.callback(1);
    assert_eq!(
        Arc::strong_count(&held),
        1,
        "the future was dropped when it completed"
    );
    assert_eq!(d.wait().unwrap(), 1);
}

// Twisted: test_inlinecb.CancellationTests.doErrbackCancelledErrorOnCancel (cancel D, no
// handling: D fails with CancelledError) and doCascadeCancellingOnCancel (the Deferred D awaits
// is cancelled too: its canceller runs once).
#[test]
fn cancelling_a_driven_future_cancels_what_it_awaits() {
    let cancels = counter();
    let c = cancels.clone();
    let (awaited, awaited_r) = Deferred::<u32>::with_canceller(move || {
        c.fetch_add(1, SeqCst);
    });
    let d = Deferred::<u32>::drive_future(async move {
        let v = awaited.await?;
        Ok(v + 1)
    });
    assert!(!d.is_fired());
    d.cancel();
    assert!(d.wait().unwrap_err().is_cancelled());
    assert!(awaited_r.is_closed());
    assert_eq!(
        cancels.load(SeqCst),
        1,
        "the awaited Deferred was cancelled"
    );
}

// Twisted: doCascadeCancellingOnCancel's stacked variants: the cancel reaches the Deferred a
// driven future awaits through another driven future, and through a chain waiting on it.
#[test]
fn cancelling_a_chain_on_nested_driven_futures_reaches_the_innermost_await() {
    let cancels = counter();
    let c = cancels.clone();
    let (awaited, _awaited_r) = Deferred::<u32>::with_canceller(move || {
        c.fetch_add(1, SeqCst);
    });
    let inner = Deferred::<u32>::drive_future(async move { Ok(awaited.await? + 1) });
    let outer = Deferred::<u32>::drive_future(async move { Ok(inner.await? * 2) });
    let end = outer.add_callback(|v| Ok(v + 1000));
    end.cancel();
    assert!(end.wait().unwrap_err().is_cancelled());
    assert_eq!(cancels.load(SeqCst), 1);
}

// Twisted: doErrorToErrorTranslation and doErrorToSuccessTranslation: the awaited Deferred's
// canceller answers (here with a failure of its own), the future catches it and gives a value
// (4321 - 2 + 1) or another failure: that is D's result.
#[test]
fn a_driven_future_translates_the_cancellation_of_what_it_awaits() {
    #[derive(Debug)]
    struct DontFail(u32);
    impl fmt::Display for DontFail {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "don't fail: {}", self.0)
        }
    }
    impl Error for DontFail {}

    let translated = |to_success: bool| {
        let (awaited, awaited_r) = Deferred::<u32>::pending();
        let answer = Arc::new(Mutex::new(Some(awaited_r)));
        let (awaited, _) = (
            awaited.add_errback(move |f| {
                // The canceller's answer, as Twisted's `d.errback(DontFail(4321))`.
                if f.is_cancelled() {
                    Err(Failure::new(DontFail(4321)))
                } else {
                    Err(f)
                }
            }),
            answer.clone(),
        );
        let d = Deferred::<u32>::drive_future(async move {
            match awaited.await {
                Ok(v) => Ok(v),
                Err(f) => match f.downcast_ref::<DontFail>() {
                    Some(DontFail(n)) if to_success => Ok(n - 2 + 1),
                    Some(_) => Err(Failure::msg("translated")),
                    None => Err(f),
                },
            }
        });
        d.cancel();
        drop(answer);
        d.wait()
    };
    assert_eq!(translated(true).unwrap(), 4320);
    assert_eq!(translated(false).unwrap_err().to_string(), "translated");
}

// A future that awaits two Deferreds at once (a join): a cancel cancels both.
#[test]
fn cancelling_a_driven_future_cancels_every_deferred_it_awaits() {
    let cancels = counter();
    let make = || {
        let c = cancels.clone();
        Deferred::<u32>::with_canceller(move || {
            c.fetch_add(1, SeqCst);
        })
    };
    let ((a, _a_r), (b, _b_r)) = (make(), make());
    let d = Deferred::<u32>::drive_future(async move {
        let (a, b) = futures_join(a, b).await;
        Ok(a? + b?)
    });
    d.cancel();
    assert!(d.wait().unwrap_err().is_cancelled());
    assert_eq!(cancels.load(SeqCst), 2);
}

/// Both futures' outputs, polling each until it is ready (a join with no crate).
async fn futures_join<A: std::future::Future, B: std::future::Future>(
    a: A,
    b: B,
) -> (A::Output, B::Output) {
    use std::pin::pin;
    use std::task::Poll;
    let (mut a, mut b) = (pin!(a), pin!(b));
    let (mut a_out, mut b_out) = (None, None);
    std::future::poll_fn(move |cx| {
        if a_out.is_none()
            && let Poll::Ready(out) = a.as_mut().poll(cx)
        {
            a_out = Some(out);
        }
        if b_out.is_none()
            && let Poll::Ready(out) = b.as_mut().poll(cx)
        {
            b_out = Some(out);
        }
        match (a_out.take(), b_out.take()) {
            (Some(a), Some(b)) => Poll::Ready((a, b)),
            (a, b) => {
                (a_out, b_out) = (a, b);
                Poll::Pending
            }
        }
    })
    .await
}

// Twisted: doAsynchronousCancellation and test_inlineCallbacksCancelCaptured. Twisted leaves D
// pending when the coroutine catches the cancellation and awaits something else; here a cancel
// ends D (the docs of `drive_future`): what the future awaits is cancelled, and the future,
// which did not complete, is dropped, with what it awaits next unstarted.
#[test]
fn a_driven_future_that_awaits_again_after_a_cancel_is_dropped() {
    let cancels = counter();
    let c = cancels.clone();
    let (first, _first_r) = Deferred::<u32>::with_canceller(move || {
        c.fetch_add(1, SeqCst);
    });
    let (second, second_r) = Deferred::<u32>::pending();
    let d = Deferred::<u32>::drive_future(async move {
        match first.await {
            Ok(v) => Ok(v),
            Err(_) => Ok(second.await? + 1),
        }
    });
    d.cancel();
    assert!(d.wait().unwrap_err().is_cancelled());
    assert_eq!(cancels.load(SeqCst), 1);
    assert!(
        second_r.is_closed(),
        "the future, and `second` in it, were dropped"
    );
}

// Inside a callback too (this thread's run loop running), the awaited Deferred's failure
// wakes the future during the cancel, and what the future makes of it answers the cancel.
#[test]
fn cancelling_a_driven_future_inside_a_callback_cancels_what_it_awaits() {
    let cancels = counter();
    let c = cancels.clone();
    let (awaited, _awaited_r) = Deferred::<u32>::with_canceller(move || {
        c.fetch_add(1, SeqCst);
    });
    let ran = counter();
    let r = ran.clone();
    let d = Deferred::<u32>::drive_future(async move {
        let v = awaited.await;
        r.fetch_add(1, SeqCst);
        Ok(v.unwrap_or(7))
    });
    let handle = d.cancel_handle();
    let (trigger, trigger_r) = Deferred::<()>::pending();
    let done = trigger.add_callback(move |()| {
        handle.cancel();
        Ok(())
    });
    trigger_r.callback(());
    done.wait().unwrap();
    assert_eq!(d.wait().unwrap(), 7);
    assert_eq!(cancels.load(SeqCst), 1);
    assert_eq!(ran.load(SeqCst), 1);
}

/// The trace of `test_intermediateAddCallbacksWithWaiting*`: the inner coroutine awaits `first`
/// then `second` (one of them pending); a callback is added to its Deferred before the outer
/// coroutine awaits it.
fn intermediate_callback_trace(pending_on_second: bool) -> (u32, Vec<&'static str>) {
    let trace = log();
    let (waiting, waiting_r) = Deferred::<u32>::pending();
    let (first, second) = if pending_on_second {
        (Deferred::<u32>::succeed(1), waiting)
    } else {
        (waiting, Deferred::<u32>::succeed(1))
    };
    let t = trace.clone();
    let inner = Deferred::<u32>::drive_future(async move {
        push(&t, "inner enter");
        let a = first.await?;
        let b = second.await?;
        push(&t, "inner exit");
        Ok(a + b)
    });
    let t = trace.clone();
    let inner = inner.add_callback(move |x| {
        push(&t, "intermediate callback");
        Ok(x * 4)
    });
    let t = trace.clone();
    let outer = Deferred::<u32>::drive_future(async move {
        push(&t, "outer enter");
        let v = inner.await?;
        push(&t, "outer resume");
        Ok(v + 1)
    });
    assert!(!outer.is_fired());
    waiting_r.callback(1);
    (outer.wait().unwrap(), snapshot(&trace))
}

// Twisted: test_inlinecb.StackedInlineCallbacksTests.test_intermediateAddCallbacksWithWaitingFirstYield
// / ...WithWaitingSecondYield (a callback added to an inner coroutine's Deferred before it is
// awaited runs between the inner exit and the outer resume, whichever await waited)
#[test]
fn intermediate_add_callbacks_with_waiting_first_and_second_await() {
    for pending_on_second in [false, true] {
        let (result, trace) = intermediate_callback_trace(pending_on_second);
        assert_eq!(result, 9, "pending on second: {pending_on_second}");
        assert_eq!(
            trace,
            [
                "inner enter",
                "outer enter",
                "inner exit",
                "intermediate callback",
                "outer resume"
            ],
            "pending on second: {pending_on_second}"
        );
    }
}
