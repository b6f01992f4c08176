//! The rules of a Deferred (docs/rules.md, "The rules of a Deferred"), for the one-thread kind,
//! [`LocalDeferred`]: the tests both kinds share are written once in `tests/rules/common.rs`
//! (included here and by `tests/rules.rs`, which runs them against the `Send` kind); the tests
//! that prove the point of the local kind — steps holding what is not `Send` — follow it.

// The common body is written once for both kinds, so a slot a step shares is an
// `Arc<Mutex<..>>` (what the `Send` kind needs), even where, here, it holds a local handle.
#![allow(clippy::arc_with_non_send_sync)]

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use deferred::local::{
    DeferredList, DeferredLock, DeferredSemaphore, gather_results, map_concurrent, maybe_deferred,
    race, settle_all,
};
use deferred::{FailureGroup, FirstError, FirstSuccess, LocalDeferred, LocalResolver, ManualClock};
use deferred::{TimedOut, local};

/// The kind under test, by the names the common body uses.
mod kind {
    pub use deferred::local::{CancelHandle, gather_results};
    pub use deferred::{LocalDeferred as Deferred, LocalResolver as Resolver, LocalValue as Value};
}

include!("rules/common.rs");

// #############################################################################################
// The local kind only: what a local chain may hold that a `Send` one may not.
//
// Each test below would not compile with `Deferred`: its values, errors or steps hold `Rc`,
// `RefCell` or `Cell` state. (The common body above only uses what works in both kinds.)
// #############################################################################################

// ---------------------------------------------------------------------------------------------
// Not Send: checked at compile time.
// ---------------------------------------------------------------------------------------------

/// Implemented twice for every `Send` type (so naming `of::<X>` is ambiguous and does not
/// compile for them) and once for the others. The `static_assertions` crate's `assert_not_impl_any!`
/// trick, without the crate.
trait AmbiguousIfSend<A> {
    fn of() {}
}
impl<X: ?Sized> AmbiguousIfSend<()> for X {}
#[allow(dead_code)]
struct IsSend;
impl<X: ?Sized + Send> AmbiguousIfSend<IsSend> for X {}

/// The same for `Sync`.
trait AmbiguousIfSync<A> {
    fn of() {}
}
impl<X: ?Sized> AmbiguousIfSync<()> for X {}
#[allow(dead_code)]
struct IsSync;
impl<X: ?Sized + Sync> AmbiguousIfSync<IsSync> for X {}

// Each line compiles only if the type is not Send (resp. not Sync), even when its value is.
const _: fn() = || {
    let _ = <LocalDeferred<u32> as AmbiguousIfSend<_>>::of;
    let _ = <LocalResolver<u32> as AmbiguousIfSend<_>>::of;
    let _ = <local::CancelHandle as AmbiguousIfSend<_>>::of;
    let _ = <LocalDeferred<u32> as AmbiguousIfSync<_>>::of;
    let _ = <LocalResolver<u32> as AmbiguousIfSync<_>>::of;
};

#[test]
fn local_deferred_and_resolver_are_not_send_but_deferred_is() {
    // The negative half is the `const _` above: it would not compile if they were Send.
    fn send<X: Send>() {}
    send::<deferred::Deferred<u32>>();
    send::<deferred::Resolver<u32>>();
}

// ---------------------------------------------------------------------------------------------
// Rc, RefCell and non-Send errors in steps.
// ---------------------------------------------------------------------------------------------

#[test]
fn local_steps_capture_and_return_rc_refcell() {
    let widget = Rc::new(RefCell::new(Vec::<u32>::new()));
    let seen = Rc::new(Cell::new(0));
    let (d, r) = Deferred::<Rc<RefCell<Vec<u32>>>>::pending();
    let s = seen.clone();
    let d = d
        .add_callback(move |cell| {
            cell.borrow_mut().push(1);
            s.set(s.get() + 1);
            Ok(cell) // returns the Rc it was given
        })
        .add_callback(|cell| {
            let label: Rc<str> = Rc::from(format!("{} item(s)", cell.borrow().len()));
            Ok((cell, label)) // a new Rc, made by the step
        })
        .add_callback(|(cell, label)| {
            // A step returning a LocalDeferred of Rc state.
            cell.borrow_mut().push(2);
            Deferred::succeed((cell, label))
        });
    assert_eq!(seen.get(), 0, "nothing ran before the fire");
    r.callback(widget.clone());
    let (cell, label) = d.wait().unwrap();
    assert!(Rc::ptr_eq(&cell, &widget), "the same RefCell all the way");
    assert_eq!(*widget.borrow(), [1, 2]);
    assert_eq!(&*label, "1 item(s)");
    assert_eq!(seen.get(), 1);
    drop(cell);
    assert_eq!(
        Rc::strong_count(&widget),
        1,
        "the chain let go of the widget"
    );
}

/// An error type that is not `Send` (it holds an `Rc`): fine as the `E` of a local chain.
#[derive(Debug)]
enum LocalOnlyWidgetError {
    Failed(Failure),
    Widget(Rc<str>),
}

impl From<Failure> for LocalOnlyWidgetError {
    fn from(f: Failure) -> Self {
        LocalOnlyWidgetError::Failed(f)
    }
}

impl fmt::Display for LocalOnlyWidgetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LocalOnlyWidgetError::Failed(failure) => write!(f, "failed: {failure}"),
            LocalOnlyWidgetError::Widget(name) => write!(f, "widget {name}"),
        }
    }
}

#[test]
fn local_non_send_error_type_routes_like_any_error() {
    type D<T> = Deferred<T, LocalOnlyWidgetError>;
    let (d, r) = D::<u32>::pending();
    let d = d
        .add_callback(|v| {
            if v > 1 {
                Err(LocalOnlyWidgetError::Widget(Rc::from("too big")))
            } else {
                Ok(v)
            }
        })
        .add_callback(|v| Ok(v + 100)) // skipped
        .add_errback(|e| match e {
            LocalOnlyWidgetError::Widget(name) => Ok(name.len() as u32),
            other => Err(other),
        });
    r.callback(2);
    assert_eq!(d.wait().unwrap(), "too big".len() as u32);

    // The failures the chain makes itself arrive in the error type, through From<Failure>.
    let panicked = D::<u32>::succeed(1)
        .add_callback(|_| -> Result<u32, LocalOnlyWidgetError> { panic!("local widget boom") });
    match panicked.wait().unwrap_err() {
        LocalOnlyWidgetError::Failed(f) => {
            assert_eq!(
                f.downcast_ref::<Panicked>().map(Panicked::message),
                Some("local widget boom")
            );
        }
        other => panic!("expected the panic, got {other}"),
    }
    let (d, r) = D::<u32>::pending();
    drop(r);
    match d.wait().unwrap_err() {
        LocalOnlyWidgetError::Failed(f) => assert!(f.is::<NeverFired>(), "{f}"),
        other => panic!("expected NeverFired, got {other}"),
    }
    let (d, _r) = D::<u32>::pending();
    d.cancel();
    match d.wait().unwrap_err() {
        LocalOnlyWidgetError::Failed(f) => assert!(f.is_cancelled(), "{f}"),
        other => panic!("expected Cancelled, got {other}"),
    }
}

#[test]
fn local_unhandled_non_send_error_reported_once_by_type_name() {
    let unhandled = Captured::start();
    let (d, r) = Deferred::<u32, LocalOnlyWidgetError>::pending();
    let d = d.add_callback(|v| Ok(v + 1)).add_errback(Err);
    drop(d);
    assert!(unhandled.of("LocalOnlyWidgetError").is_empty());
    r.errback(LocalOnlyWidgetError::Widget(Rc::from("gone")));
    let seen = unhandled.of("LocalOnlyWidgetError");
    assert_eq!(seen.len(), 1, "{seen:?}");
}

#[test]
fn local_unhandled_failure_reported_once_when_the_chain_is_dropped() {
    let unhandled = Captured::start();
    let tag = "local unhandled_when_dropped";
    let state = Rc::new(RefCell::new(0));
    let (d, r) = Deferred::<Rc<RefCell<u32>>>::pending();
    let s = state.clone();
    let d = d
        .add_callback(move |cell| {
            *cell.borrow_mut() += 1;
            *s.borrow_mut() += 10;
            Err::<Rc<RefCell<u32>>, _>(Failure::msg(tag))
        })
        .add_callback(Ok)
        .add_errback(Err);
    r.callback(state.clone());
    assert_eq!(*state.borrow(), 11);
    assert!(unhandled.of(tag).is_empty(), "not while the handle lives");
    drop(d);
    let seen = unhandled.of(tag);
    assert_eq!(seen.len(), 1, "once for the chain, not once per link");
    assert_eq!(
        seen[0].trail, 2,
        "the report carries the steps it passed after the one that raised it"
    );
    // Handled, never reported.
    let handled = Deferred::<Rc<str>>::fail(Failure::msg(tag)).add_errback(|_| Ok(Rc::from("ok")));
    drop(handled);
    assert_eq!(unhandled.of(tag).len(), 1);
}

#[test]
fn local_resolver_dropped_fails_with_never_fired() {
    let here = line!() + 1;
    let (d, r) = Deferred::<Rc<str>>::pending();
    let skipped = Rc::new(Cell::new(0));
    let k = skipped.clone();
    let d = d
        .add_callback(move |s| {
            k.set(k.get() + 1);
            Ok(s)
        })
        .add_errback(|f| {
            let never = f.downcast_ref::<NeverFired>().expect("NeverFired");
            Ok(Rc::from(format!(
                "{}:{}",
                never.created_at().file(),
                never.created_at().line()
            )))
        });
    drop(r);
    assert_eq!(&*d.wait().unwrap(), format!("{}:{here}", file!()));
    assert_eq!(skipped.get(), 0);
}

// ---------------------------------------------------------------------------------------------
// Nesting and constant stack.
// ---------------------------------------------------------------------------------------------

#[test]
fn local_nested_local_deferreds() {
    let order = Rc::new(RefCell::new(Vec::<&str>::new()));
    let (innermost, innermost_r) = Deferred::<Rc<String>>::pending();
    let (middle, middle_r) = Deferred::<u32>::pending();
    let (outer, outer_r) = Deferred::<u32>::pending();
    let (o1, o2, o3) = (order.clone(), order.clone(), order.clone());
    let middle = middle
        .add_callback(move |_| {
            o1.borrow_mut().push("middle step");
            innermost
        })
        .add_callback(move |s: Rc<String>| {
            o2.borrow_mut().push("after innermost");
            Ok(Rc::new(format!("{s}+middle")))
        });
    let outer = outer
        .add_callback(move |_| middle)
        .add_callback(move |s: Rc<String>| {
            o3.borrow_mut().push("outer end");
            Ok(s.len())
        });
    outer_r.callback(0);
    middle_r.callback(0);
    assert!(!outer.is_fired());
    assert_eq!(*order.borrow(), ["middle step"]);
    innermost_r.callback(Rc::new("inner".to_owned()));
    assert_eq!(
        *order.borrow(),
        ["middle step", "after innermost", "outer end"]
    );
    assert_eq!(outer.wait().unwrap(), "inner+middle".len());
}

/// A million local links holding `Rc`/`Cell` state, on a 256 KiB stack: constant stack, like
/// the `Send` kind (the chain is made, fired and ended on the small-stack thread).
#[test]
fn local_million_link_chain_with_rc_state_in_constant_stack() {
    let (value, runs) = on_small_stack(|| {
        let runs = Rc::new(Cell::new(0usize));
        let (d, r) = Deferred::<Rc<u64>>::pending();
        let mut d = d;
        for _ in 0..MILLION {
            let runs = runs.clone();
            d = d.add_callback(move |v: Rc<u64>| {
                runs.set(runs.get() + 1);
                Ok(Rc::new(*v + 1))
            });
        }
        assert!(!d.is_fired());
        r.callback(Rc::new(0));
        let value = *d.wait().unwrap();
        assert_eq!(Rc::strong_count(&runs), 1, "every step was released");
        (value, runs.get())
    });
    assert_eq!((value, runs), (MILLION as u64, MILLION));
}

/// A million nested LocalDeferreds, each made by the step before it (a recursive protocol),
/// their Resolvers kept in an `Rc<RefCell<..>>` queue, on a 256 KiB stack.
#[test]
fn local_million_nested_deferreds_created_by_callbacks_in_constant_stack() {
    fn level(depth: usize, queue: Rc<RefCell<Vec<Resolver<u64>>>>) -> Deferred<u64> {
        if depth == MILLION {
            return Deferred::succeed(depth as u64);
        }
        let (d, r) = Deferred::<u64>::pending();
        queue.borrow_mut().push(r);
        d.add_callback(move |_| level(depth + 1, queue))
    }
    let value = on_small_stack(|| {
        let queue = Rc::new(RefCell::new(Vec::new()));
        let d = level(0, queue.clone());
        loop {
            let next = queue.borrow_mut().pop();
            match next {
                Some(r) => r.callback(0),
                None => break,
            }
        }
        d.wait().unwrap()
    });
    assert_eq!(value, MILLION as u64);
}

// ---------------------------------------------------------------------------------------------
// Cancellation with Rc state.
// ---------------------------------------------------------------------------------------------

#[test]
fn local_cancel_reaches_local_deferred_whose_canceller_touches_rc_state() {
    let stopped = Rc::new(RefCell::new(Vec::<&str>::new()));
    let s = stopped.clone();
    let (inner, _inner_r) =
        Deferred::<Rc<str>>::with_canceller(move || s.borrow_mut().push("inner stopped"));
    let root = stopped.clone();
    let (d, r) = Deferred::<u32>::with_canceller(move || root.borrow_mut().push("root stopped"));
    let d = d
        .add_callback(move |_| inner)
        .add_callback(|s: Rc<str>| Ok(s.len()));
    r.callback(1); // the chain now waits on `inner`
    let handle = d.cancel_handle();
    handle.cancel();
    assert_eq!(*stopped.borrow(), ["inner stopped"]);
    assert!(d.wait().unwrap_err().is_cancelled());
    handle.cancel(); // fired: nothing more
    assert_eq!(stopped.borrow().len(), 1);
}

#[test]
fn local_canceller_may_fire_its_own_resolver_from_rc_slot() {
    let slot: Rc<RefCell<Option<Resolver<Rc<str>>>>> = Rc::new(RefCell::new(None));
    let in_canceller = slot.clone();
    let (d, r) = Deferred::<Rc<str>>::with_canceller(move || {
        if let Some(r) = in_canceller.borrow_mut().take() {
            r.callback(Rc::from("stopped politely"));
        }
    });
    *slot.borrow_mut() = Some(r);
    let d = d.add_callback(|s| Ok(s.len()));
    d.cancel();
    assert_eq!(d.wait().unwrap(), "stopped politely".len());
}

// ---------------------------------------------------------------------------------------------
// wait() on a local chain.
// ---------------------------------------------------------------------------------------------

#[test]
fn local_wait_on_a_pending_chain_with_no_inbox_panics() {
    let (d, _r) = Deferred::<u32>::pending();
    let waited = catch_unwind(AssertUnwindSafe(move || d.wait()));
    let payload = waited.expect_err("nothing could fire it: wait panics");
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or_default();
    assert!(message.contains("no Inbox"), "{message}");
}

// ---------------------------------------------------------------------------------------------
// The helpers, on local Deferreds.
// ---------------------------------------------------------------------------------------------

#[test]
fn local_gather_results() {
    let (b, rb) = Deferred::<Rc<str>>::pending();
    let both = gather_results([Deferred::succeed(Rc::from("alice")), b]);
    assert!(!both.is_fired());
    rb.callback(Rc::from("bob"));
    let names: Vec<String> = both.wait().unwrap().iter().map(|s| s.to_string()).collect();
    assert_eq!(names, ["alice", "bob"]);

    let (slow, _r) = Deferred::<Rc<u32>>::pending();
    let failed = gather_results([slow, Deferred::fail(Failure::msg("no route"))]);
    let first = failed.wait().unwrap_err().trap::<FirstError>().unwrap();
    assert_eq!(
        (first.index, first.failure.to_string()),
        (1, "no route".into())
    );
}

#[test]
fn local_race_cancels_the_losers_through_rc_state() {
    let stopped = Rc::new(Cell::new(0));
    let s = stopped.clone();
    let (primary, _p) = Deferred::<Rc<str>>::with_canceller(move || s.set(s.get() + 1));
    let (mirror, mirror_r) = Deferred::<Rc<str>>::pending();
    let winner = race([primary, mirror]);
    mirror_r.callback(Rc::from("from the mirror"));
    let (index, value) = winner.wait().unwrap();
    assert_eq!((index, &*value), (1, "from the mirror"));
    assert_eq!(stopped.get(), 1, "the loser was cancelled");

    let failed = race([
        Deferred::<Rc<u32>>::fail(Failure::msg("a")),
        Deferred::fail(Failure::msg("b")),
    ]);
    let group = failed.wait().unwrap_err().trap::<FailureGroup>().unwrap();
    assert_eq!(group.failures.len(), 2);
}

#[test]
fn local_deferred_list_and_settle_all() {
    let (a, ra) = Deferred::<Rc<u32>>::pending();
    let (b, rb) = Deferred::<Rc<u32>>::pending();
    let list = DeferredList::new([a, b, Deferred::fail(Failure::msg("c failed"))]);
    assert_eq!(list.len(), 3);
    let all = list.all();
    rb.callback(Rc::new(2));
    assert!(!all.is_fired());
    ra.callback(Rc::new(1));
    let results = all.wait().unwrap();
    assert_eq!(**results[0].as_ref().unwrap(), 1);
    assert_eq!(**results[1].as_ref().unwrap(), 2);
    assert_eq!(results[2].as_ref().unwrap_err().to_string(), "c failed");

    let (a, ra) = Deferred::<Rc<str>>::pending();
    let (b, rb) = Deferred::<Rc<str>>::pending();
    let first = DeferredList::new([a, b]).fire_on_one_callback();
    rb.callback(Rc::from("b"));
    match first.wait().unwrap() {
        FirstSuccess::Succeeded { index, value } => assert_eq!((index, &*value), (1, "b")),
        FirstSuccess::AllFailed(failures) => panic!("{} failures", failures.len()),
    }
    ra.callback(Rc::from("a")); // ignored: the list has fired

    let (d, _r) = Deferred::<Rc<u32>>::pending();
    let settled = settle_all([d, Deferred::fail(Failure::msg("no"))]);
    settled.cancel();
    let results = settled.wait().unwrap();
    assert!(results[0].as_ref().unwrap_err().is_cancelled());
    assert_eq!(results[1].as_ref().unwrap_err().to_string(), "no");
}

#[test]
fn local_maybe_deferred_with_rc_state() {
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    let d = maybe_deferred(move || {
        c.set(c.get() + 1);
        Ok(Rc::new(7u32))
    });
    assert_eq!(*d.wait().unwrap(), 7);
    let panicked = maybe_deferred(|| -> Result<Rc<u32>, Failure> { panic!("local maybe boom") });
    assert!(panicked.wait().unwrap_err().is::<Panicked>());
    assert_eq!(calls.get(), 1);
}

#[test]
fn local_semaphore_lock_and_map_concurrent() {
    // DeferredSemaphore: the closures hold Rc state; at most `limit` at once.
    let semaphore = DeferredSemaphore::new(2);
    let running = Rc::new(Cell::new(0usize));
    let peak = Rc::new(Cell::new(0usize));
    let mut resolvers = Vec::new();
    let mut runs = Vec::new();
    for i in 0..5u32 {
        let (d, r) = Deferred::<u32>::pending();
        resolvers.push(r);
        let (running, peak) = (running.clone(), peak.clone());
        runs.push(
            semaphore
                .run(move || {
                    running.set(running.get() + 1);
                    peak.set(peak.get().max(running.get()));
                    d.add_callback(move |v| {
                        running.set(running.get() - 1);
                        Ok(v)
                    })
                })
                .add_callback(move |v| Ok(v + i)),
        );
    }
    assert_eq!((running.get(), semaphore.waiting()), (2, 3));
    for r in resolvers {
        r.callback(10);
    }
    let values: Vec<u32> = runs.into_iter().map(|d| d.wait().unwrap()).collect();
    assert_eq!(values, [10, 11, 12, 13, 14]);
    assert_eq!((peak.get(), semaphore.available()), (2, 2));

    // DeferredLock: hands off in order; the holder keeps Rc state.
    let lock = DeferredLock::new();
    let log = Rc::new(RefCell::new(Vec::new()));
    let first = lock.acquire();
    let (l1, l2) = (log.clone(), log.clone());
    let second = lock.acquire().add_callback(move |permit| {
        l1.borrow_mut().push("second");
        Ok(permit)
    });
    let third = lock.run(move || {
        l2.borrow_mut().push("third");
        Ok(Rc::new(3))
    });
    assert!(lock.is_locked());
    assert_eq!(lock.waiting(), 2);
    first.wait().unwrap().release();
    assert_eq!(*log.borrow(), ["second"]);
    second.wait().unwrap().release();
    assert_eq!(*log.borrow(), ["second", "third"]);
    assert_eq!(*third.wait().unwrap(), 3);
    assert!(!lock.is_locked());

    // map_concurrent: the mapping function holds Rc state; failure stops the rest.
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    let squares = map_concurrent(1..=5u64, 2, move |n| {
        s.borrow_mut().push(n);
        Ok(Rc::new(n * n))
    });
    let squares: Vec<u64> = squares.wait().unwrap().iter().map(|n| **n).collect();
    assert_eq!(squares, [1, 4, 9, 16, 25]);
    assert_eq!(*seen.borrow(), [1, 2, 3, 4, 5]);
    let failed = map_concurrent(["1", "x", "3"], 1, |s: &str| Ok(Rc::new(s.parse::<u32>()?)));
    let first = failed.wait().unwrap_err().trap::<FirstError>().unwrap();
    assert_eq!(first.index, 1);
}

/// The failing item's token starts the next waiting item before its failure reaches the
/// result; the batch skips that item, and the failure decides (it used to be the skipped
/// item's `Cancelled`).
#[test]
fn local_map_concurrent_fails_with_the_failure_that_stopped_it() {
    type Resolvers = Rc<RefCell<Vec<Option<LocalResolver<Rc<u32>>>>>>;
    let resolvers: Resolvers = Rc::default();
    let made = resolvers.clone();
    let mapped = map_concurrent(0..4u32, 2, move |_item| {
        let (d, resolver) = LocalDeferred::<Rc<u32>>::pending();
        made.borrow_mut().push(Some(resolver));
        d
    });
    let take = |i: usize| resolvers.borrow_mut()[i].take().unwrap();
    take(0).callback(Rc::new(0));
    take(2).errback(deferred::Failure::msg("item 2 failed"));
    let first = mapped.wait().unwrap_err().trap::<FirstError>().unwrap();
    assert_eq!(
        (first.index, first.failure.to_string()),
        (2, "item 2 failed".to_owned())
    );
    assert_eq!(resolvers.borrow().len(), 3, "item 3 never started");
}

#[test]
fn local_add_timeout_with_manual_clock_as_local_clock() {
    let clock = ManualClock::new();
    // Too late: the deadline cancels the covered chain (its canceller touches Rc state) and the
    // chain fails with TimedOut.
    let stopped = Rc::new(Cell::new(false));
    let s = stopped.clone();
    let (slow, _r) = Deferred::<Rc<str>>::with_canceller(move || s.set(true));
    let slow = slow.add_timeout(Duration::from_secs(2), &clock);
    assert_eq!(clock.pending(), 1);
    clock.advance(Duration::from_secs(1));
    assert!(!slow.is_fired());
    clock.advance(Duration::from_secs(1));
    assert!(stopped.get(), "the canceller ran");
    let f = slow.wait().unwrap_err();
    assert_eq!(
        f.downcast_ref::<TimedOut>().map(TimedOut::after),
        Some(Duration::from_secs(2))
    );

    // In time: the timer is cancelled, the value passes.
    let (fast, r) = Deferred::<Rc<u32>>::pending();
    let fast = fast.add_timeout(Duration::from_secs(1), &clock);
    assert_eq!(clock.pending(), 1);
    r.callback(Rc::new(1));
    assert_eq!(clock.pending(), 0);
    assert_eq!(*fast.wait().unwrap(), 1);

    // add_timeout_with: your own translation of the timeout, holding Rc state.
    let note = Rc::new(RefCell::new(String::new()));
    let n = note.clone();
    let (d, _r) = Deferred::<Rc<str>>::pending();
    let d = d.add_timeout_with(Duration::from_secs(1), &clock, move |_, after| {
        *n.borrow_mut() = format!("gave up after {after:?}");
        Ok(Rc::from("fallback"))
    });
    clock.advance(Duration::from_secs(1));
    assert_eq!(&*d.wait().unwrap(), "fallback");
    assert_eq!(*note.borrow(), "gave up after 1s");
}
