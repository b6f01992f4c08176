//! A chain whose last stage returned a pending Deferred hands that Deferred to the chain waiting
//! on it (the core's `Chain::hand_over`): the result goes to the waiting chain in one hop. None of
//! it may show: values, failures, cancellation through any chain of the path, and cycles behave
//! as when every chain relayed the result itself.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use deferred_core::{Deferred, Failure, LocalDeferred, Resolver};

/// A chain of `depth` relays: chain k's one step returns chain k+1's end; the last returns
/// `innermost`. Returns the outermost end and the roots' resolvers, outermost first.
fn relays(depth: usize, innermost: Deferred<u32>) -> (Deferred<u32>, Vec<Resolver<u32>>) {
    let mut inner = innermost;
    let mut roots = Vec::new();
    for _ in 0..depth {
        let (root, resolver) = Deferred::<u32>::pending();
        inner = root.add_callback(move |_| inner);
        roots.push(resolver);
    }
    roots.reverse();
    (inner, roots)
}

/// A pending Deferred whose canceller counts its calls, in the counter returned.
fn counting_canceller() -> (Deferred<u32>, Resolver<u32>, Arc<AtomicUsize>) {
    let cancelled = Arc::new(AtomicUsize::new(0));
    let seen = cancelled.clone();
    let (d, resolver) = Deferred::<u32>::with_canceller(move || {
        seen.fetch_add(1, Ordering::SeqCst);
    });
    (d, resolver, cancelled)
}

#[test]
fn a_value_reaches_the_outermost_chain_through_every_relay() {
    let (innermost, resolver) = Deferred::<u32>::pending();
    let (outer, roots) = relays(50, innermost);
    let outer = outer.add_callback(|n| Ok(n + 1));
    // The outermost root fires first: its step returns the next chain's end, which waits on
    // its root; firing them in order hands each wait over to the outermost chain.
    for root in roots {
        root.callback(0);
        assert!(!outer.is_fired());
    }
    resolver.callback(41);
    assert_eq!(outer.wait().unwrap(), 42);
}

#[test]
fn a_failure_reaches_the_outermost_errback_through_every_relay() {
    let (innermost, resolver) = Deferred::<u32>::pending();
    let (outer, roots) = relays(20, innermost);
    let outer = outer.add_errback(|f: Failure| Ok(f.to_string().len() as u32));
    for root in roots {
        root.callback(0);
    }
    resolver.errback(Failure::msg("disk full"));
    assert_eq!(outer.wait().unwrap(), "disk full".len() as u32);
}

#[test]
fn cancelling_the_outer_chain_after_the_hand_over_runs_the_innermost_canceller() {
    let (innermost, _resolver, cancelled) = counting_canceller();
    let (outer, roots) = relays(10, innermost);
    for root in roots {
        root.callback(0);
    }
    outer.cancel();
    assert_eq!(cancelled.load(Ordering::SeqCst), 1);
    assert!(outer.wait().unwrap_err().is_cancelled());
}

#[test]
fn a_cancel_handle_of_a_chain_between_still_cancels_what_the_path_waits_on() {
    let (innermost, _innermost_resolver, cancelled) = counting_canceller();
    // outer's step returns `between`, whose step returns `innermost`: `between` hands its wait
    // over, but a handle taken of it before still reaches `innermost`.
    let (between, between_root) = Deferred::<u32>::pending();
    let between = between.add_callback(move |_| innermost);
    let handle = between.cancel_handle();
    let (outer, outer_root) = Deferred::<u32>::pending();
    let outer = outer.add_callback(move |_| between);
    outer_root.callback(0);
    between_root.callback(0);
    handle.cancel();
    assert_eq!(cancelled.load(Ordering::SeqCst), 1);
    assert!(outer.wait().unwrap_err().is_cancelled());
}

#[test]
fn a_chain_with_steps_left_waits_itself_and_runs_them() {
    let (innermost, resolver) = Deferred::<u32>::pending();
    let (between, between_root) = Deferred::<u32>::pending();
    let between = between
        .add_callback(move |_| innermost)
        .add_callback(|n| Ok(n * 10));
    let (outer, outer_root) = Deferred::<u32>::pending();
    let outer = outer
        .add_callback(move |_| between)
        .add_callback(|n| Ok(n + 1));
    outer_root.callback(0);
    between_root.callback(0);
    resolver.callback(4);
    assert_eq!(outer.wait().unwrap(), 41);
}

#[test]
fn two_relays_that_wait_on_each_other_are_still_broken_by_a_cancel() {
    // a's step returns b's end, b's step returns a's end: each waits on the other. Nothing can
    // fire them; a cancel must still return and fail both.
    let (a, a_root) = Deferred::<u32>::pending();
    let (b, b_root) = Deferred::<u32>::pending();
    let (a_end_tx, a_end_rx) = mpsc::channel::<Deferred<u32>>();
    let b = b.add_callback(move |_| a_end_rx.recv().unwrap());
    let b_handle = b.cancel_handle();
    let a = a.add_callback(move |_| b);
    let a_handle = a.cancel_handle();
    a_end_tx.send(a).unwrap();
    a_root.callback(0);
    b_root.callback(0);
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        a_handle.cancel();
        b_handle.cancel();
        let _ = done.send(());
    });
    assert!(
        finished.recv_timeout(Duration::from_secs(30)).is_ok(),
        "the cancel did not return: the relays wait on each other and nothing broke the cycle"
    );
}

#[test]
fn local_relays_hand_over_too() {
    let (innermost, resolver) = LocalDeferred::<u32>::pending();
    let mut inner = innermost;
    let mut roots = Vec::new();
    for _ in 0..20 {
        let (root, start) = LocalDeferred::<u32>::pending();
        inner = root.add_callback(move |_| inner);
        roots.push(start);
    }
    for root in roots.into_iter().rev() {
        root.callback(0);
    }
    resolver.callback(7);
    assert_eq!(inner.wait().unwrap(), 7);
}

/// A cancel whose walk goes through a relay while the relay hands its wait over, and the
/// Deferred it handed over fires before the walk gets there: the result went to the chain
/// waiting in the relay's place, so the cancel goes there too — here, to the next Deferred that
/// chain waits on — and is not left with the relay, which runs no more. (The relay's canceller
/// answers with a value, and fires the Deferred it hands over, both during the cancel.)
#[test]
fn a_cancel_crossing_a_relay_as_it_hands_over_reaches_the_waiting_chains_next_deferred() {
    use std::sync::Mutex;
    type Slot = Arc<Mutex<Option<Resolver<u32>>>>;
    let (relay_root_slot, inner_slot): (Slot, Slot) = Default::default();
    let (root, root_resolver) = Deferred::<u32>::pending();
    let (first, first_resolver) = Deferred::<u32>::pending();
    let (second, _second_resolver, second_cancels) = counting_canceller();
    let (to_relay_root, to_first) = (relay_root_slot.clone(), inner_slot.clone());
    let (relay_root, relay_root_resolver) = Deferred::<u32>::with_canceller(move || {
        to_relay_root.lock().unwrap().take().unwrap().callback(0); // the cancel answered
        to_first.lock().unwrap().take().unwrap().callback(1); // the handed-over one fires
    });
    *relay_root_slot.lock().unwrap() = Some(relay_root_resolver);
    *inner_slot.lock().unwrap() = Some(first_resolver);
    let relay = relay_root.add_callback(move |_| first); // its last step returns `first`
    let outer = root
        .add_callback(move |_| relay)
        .add_callback(move |_| second);
    root_resolver.callback(0);
    outer.cancel();
    assert_eq!(
        second_cancels.load(Ordering::SeqCst),
        1,
        "the cancel reached `second`"
    );
    assert!(outer.wait().unwrap_err().is_cancelled());
}

/// A cancel from the handle of a chain that handed its wait over, when the chain it handed
/// over to has handed over too and the innermost Deferred has fired: nothing is left to
/// cancel, and the cancel returns (it used to go round that stale path for ever).
#[test]
fn a_cancel_from_a_chain_that_handed_over_twice_returns() {
    let (a_root, a_resolver) = Deferred::<u32>::pending();
    let (b_root, b_resolver) = Deferred::<u32>::pending();
    let (c_root, c_resolver) = Deferred::<u32>::pending();
    let (d, d_resolver) = Deferred::<u32>::pending();
    let c = c_root.add_callback(move |_| d);
    let b = b_root.add_callback(move |_| c);
    let handle = b.cancel_handle();
    let a = a_root.add_callback(move |_| b);
    a_resolver.callback(0);
    b_resolver.callback(0); // b hands its wait over to a
    c_resolver.callback(0); // then c does
    d_resolver.callback(5);
    assert_eq!(a.wait().unwrap(), 5);
    handle.cancel();

    // While the innermost is pending, the same cancel reaches it.
    let (a_root, a_resolver) = Deferred::<u32>::pending();
    let (b_root, b_resolver) = Deferred::<u32>::pending();
    let (c_root, c_resolver) = Deferred::<u32>::pending();
    let (d, _d_resolver, d_cancels) = counting_canceller();
    let c = c_root.add_callback(move |_| d);
    let b = b_root.add_callback(move |_| c);
    let handle = b.cancel_handle();
    let a = a_root.add_callback(move |_| b);
    a_resolver.callback(0);
    b_resolver.callback(0);
    c_resolver.callback(0);
    handle.cancel();
    assert_eq!(d_cancels.load(Ordering::SeqCst), 1);
    assert!(a.wait().unwrap_err().is_cancelled());
}

/// A cancel from the handle of a chain that handed its wait over, while the Deferred it handed
/// over runs a step: that step remembers the cancel for itself, not for the chain that now
/// waits in the relay's place, whose next Deferred is not cancelled (as when the chain between
/// is no relay).
#[test]
fn a_cancel_from_a_relays_handle_is_not_passed_to_the_chain_in_its_place() {
    fn case(relay: bool) -> (usize, u32) {
        use std::sync::Mutex;
        let slot: Arc<Mutex<Option<deferred_core::CancelHandle>>> = Arc::default();
        let in_step = slot.clone();
        let (x_root, x_resolver) = Deferred::<u32>::pending();
        let x = x_root.add_callback(move |v| {
            in_step.lock().unwrap().take().unwrap().cancel(); // while this step runs
            Ok(v)
        });
        let (between_root, between_resolver) = Deferred::<u32>::pending();
        let between = between_root.add_callback(move |_| x);
        let between = if relay {
            between
        } else {
            between.add_callback(Ok)
        };
        *slot.lock().unwrap() = Some(between.cancel_handle());
        let (root, root_resolver) = Deferred::<u32>::pending();
        let (next, next_resolver, next_cancels) = counting_canceller();
        let outer = root
            .add_callback(move |_| between)
            .add_callback(move |_| next);
        root_resolver.callback(0);
        between_resolver.callback(0);
        x_resolver.callback(7);
        let cancels = next_cancels.load(Ordering::SeqCst);
        next_resolver.callback(9);
        (cancels, outer.wait().unwrap_or(0))
    }
    assert_eq!(case(false), (0, 9));
    assert_eq!(case(true), (0, 9));
}

/// Cancels that meet a root's running canceller, relays handing over, combinators of relays and
/// the run loop. A second cancel that reached a root while its canceller ran failed the root at
/// once with `Cancelled`, so the canceller's own answer (it fires the Deferred itself, which
/// wins) was ignored as a late fire; the first three tests failed so.
mod cancels {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex, mpsc};
    use std::time::Duration;

    use deferred_core::{
        CancelHandle, Deferred, Failure, LocalDeferred, Resolver, capture_unhandled,
        gather_results, race,
    };

    /// Runs `f` on another thread; fails the test if it has not returned after 20 s.
    fn returns_in_time<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
        let (done, finished) = mpsc::channel();
        std::thread::spawn(move || {
            let r = f();
            let _ = done.send(r);
        });
        match finished.recv_timeout(Duration::from_secs(20)) {
            Ok(r) => r,
            Err(_) => panic!("{what} did not return in time"),
        }
    }

    fn counting_canceller() -> (Deferred<u32>, Resolver<u32>, Arc<AtomicUsize>) {
        let cancelled = Arc::new(AtomicUsize::new(0));
        let seen = cancelled.clone();
        let (d, resolver) = Deferred::<u32>::with_canceller(move || {
            seen.fetch_add(1, Ordering::SeqCst);
        });
        (d, resolver, cancelled)
    }

    /// A second cancel, from another thread, that lands while the first cancel's canceller runs:
    /// the canceller answers with a value, and that answer wins (Twisted: a canceller that fires
    /// the Deferred itself wins). The second cancel must not fail the root under the canceller.
    #[test]
    fn a_second_cancel_while_the_canceller_runs_does_not_beat_its_answer() {
        let r = returns_in_time("the cancels", || {
            let slot: Arc<Mutex<Option<Resolver<u32>>>> = Arc::default();
            let handle_slot: Arc<Mutex<Option<CancelHandle>>> = Arc::default();
            let (in_canceller, handle_in) = (slot.clone(), handle_slot.clone());
            let calls = Arc::new(AtomicUsize::new(0));
            let calls_in = calls.clone();
            let (d, resolver) = Deferred::<u32>::with_canceller(move || {
                calls_in.fetch_add(1, Ordering::SeqCst);
                // Another thread cancels the same chain while this canceller runs.
                let h = handle_in.lock().unwrap().take().unwrap();
                std::thread::spawn(move || h.cancel()).join().unwrap();
                // The canceller's answer.
                in_canceller.lock().unwrap().take().unwrap().callback(7);
            });
            *slot.lock().unwrap() = Some(resolver);
            *handle_slot.lock().unwrap() = Some(d.cancel_handle());
            d.cancel();
            (
                d.wait().map_err(|f| f.to_string()),
                calls.load(Ordering::SeqCst),
            )
        });
        assert_eq!(r, (Ok(7), 1), "the canceller's answer wins");
    }

    /// The same, the second cancel made by the canceller itself on its own thread (a canceller
    /// that cancels a group the Deferred is part of).
    #[test]
    fn a_cancel_from_inside_the_canceller_does_not_beat_its_answer() {
        let r = returns_in_time("the cancels", || {
            let slot: Arc<Mutex<Option<Resolver<u32>>>> = Arc::default();
            let handle_slot: Arc<Mutex<Option<CancelHandle>>> = Arc::default();
            let (in_canceller, handle_in) = (slot.clone(), handle_slot.clone());
            let calls = Arc::new(AtomicUsize::new(0));
            let calls_in = calls.clone();
            let (d, resolver) = Deferred::<u32>::with_canceller(move || {
                calls_in.fetch_add(1, Ordering::SeqCst);
                if let Some(h) = handle_in.lock().unwrap().take() {
                    h.cancel();
                }
                in_canceller.lock().unwrap().take().unwrap().callback(7);
            });
            *slot.lock().unwrap() = Some(resolver);
            *handle_slot.lock().unwrap() = Some(d.cancel_handle());
            d.cancel();
            (
                d.wait().map_err(|f| f.to_string()),
                calls.load(Ordering::SeqCst),
            )
        });
        assert_eq!(r, (Ok(7), 1), "the canceller's answer wins");
    }

    /// A relay of chains handing over from one waited-on Deferred to the next on one thread while
    /// another thread cancels the outermost: the cancel is never lost, each canceller runs at most
    /// once, and the outer chain always fires.
    #[test]
    fn relays_handing_over_while_another_thread_cancels() {
        for round in 0..100 {
            returns_in_time("relay round", move || {
                let depth = 6;
                let mut counters = Vec::new();
                let mut resolvers = Vec::new();
                let (innermost, inner_resolver, inner_count) = counting_canceller();
                let mut inner = innermost;
                for _ in 0..depth {
                    let (root, resolver, count) = counting_canceller();
                    inner = root.add_callback(move |_| inner);
                    resolvers.push(resolver);
                    counters.push(count);
                }
                resolvers.reverse();
                let outer = inner;
                let handle = outer.cancel_handle();
                let (go_tx, go_rx) = mpsc::channel::<()>();
                let canceller = std::thread::spawn(move || {
                    go_rx.recv().unwrap();
                    for _ in 0..(round % 7) {
                        std::hint::spin_loop();
                    }
                    handle.cancel();
                });
                go_tx.send(()).unwrap();
                for r in resolvers {
                    r.callback(0);
                }
                canceller.join().unwrap();
                // Whatever is pending now: the cancel reached it (or it fired with Cancelled).
                let result = outer.wait_timeout_check();
                for c in counters.iter().chain([&inner_count]) {
                    assert!(c.load(Ordering::SeqCst) <= 1, "a canceller ran twice");
                }
                match result {
                    Some(Err(f)) => assert!(f.is_cancelled(), "{f:?}"),
                    Some(Ok(v)) => panic!("round {round}: fired with {v} after a cancel"),
                    None => panic!("round {round}: the chain is pending after a cancel"),
                }
                drop(inner_resolver);
            });
        }
    }

    trait WaitCheck {
        fn wait_timeout_check(self) -> Option<Result<u32, Failure>>;
    }

    impl WaitCheck for Deferred<u32> {
        fn wait_timeout_check(self) -> Option<Result<u32, Failure>> {
            if !self.is_fired() {
                return None;
            }
            Some(self.wait())
        }
    }

    /// A chain waits on `gather_results` of two chains that each wait on an inner Deferred: a cancel
    /// of the outer chain runs both inner cancellers, and the outer chain fails with a cancel.
    #[test]
    fn cancel_of_a_chain_waiting_on_gather_of_waiting_chains() {
        let (i1, _r1, c1) = counting_canceller();
        let (i2, _r2, c2) = counting_canceller();
        let (a, ar) = Deferred::<u32>::pending();
        let (b, br) = Deferred::<u32>::pending();
        let a = a.add_callback(move |_| i1);
        let b = b.add_callback(move |_| i2);
        ar.callback(0);
        br.callback(0);
        let g = gather_results([a, b]);
        let (root, rr) = Deferred::<u32>::pending();
        let outer = root
            .add_callback(move |_| g)
            .add_callback(|v| Ok(v.len() as u32));
        rr.callback(0);
        let (res, unhandled) = capture_unhandled(|| {
            outer.cancel();
            outer.wait()
        });
        assert_eq!(
            (c1.load(Ordering::SeqCst), c2.load(Ordering::SeqCst)),
            (1, 1)
        );
        assert!(res.unwrap_err().is_cancelled());
        assert!(unhandled.is_empty(), "{unhandled:?}");
    }

    /// The same with `race`, the inputs relays (their last step returns the inner Deferred).
    #[test]
    fn cancel_of_a_chain_waiting_on_race_of_relays() {
        let (i1, _r1, c1) = counting_canceller();
        let (i2, _r2, c2) = counting_canceller();
        let (a, ar) = Deferred::<u32>::pending();
        let (b, br) = Deferred::<u32>::pending();
        let a = a.add_callback(move |_| i1);
        let b = b.add_callback(move |_| i2);
        let g = race([a, b]);
        let (root, rr) = Deferred::<u32>::pending();
        let outer = root
            .add_callback(move |_| g)
            .add_callback(|(i, v)| Ok(i as u32 + v));
        rr.callback(0);
        ar.callback(0);
        br.callback(0);
        let (res, unhandled) = capture_unhandled(|| {
            outer.cancel();
            outer.wait()
        });
        assert_eq!(
            (c1.load(Ordering::SeqCst), c2.load(Ordering::SeqCst)),
            (1, 1)
        );
        assert!(res.unwrap_err().is_cancelled());
        assert!(unhandled.is_empty(), "{unhandled:?}");
    }

    /// A shared inner Deferred: one consumer waited on by a chain's step, another held. Cancelling
    /// the chain cancels its consumer only; the other still gets the source's value.
    #[test]
    fn cancel_of_a_chain_waiting_on_one_consumer_of_a_shared_result() {
        let (src, src_r, src_c) = counting_canceller();
        let shared = src.into_shared();
        let c1 = shared.consumer();
        let c2 = shared.consumer();
        let (root, rr) = Deferred::<u32>::pending();
        let outer = root.add_callback(move |_| c1);
        rr.callback(0);
        outer.cancel();
        assert!(outer.wait().unwrap_err().is_cancelled());
        assert_eq!(src_c.load(Ordering::SeqCst), 0);
        src_r.callback(5);
        assert_eq!(c2.wait().unwrap(), 5);
    }

    /// A cancel made by a step of the chain itself, which then returns a pending Deferred: that
    /// Deferred is cancelled at once.
    #[test]
    fn cancel_from_a_step_of_the_same_chain_cancels_what_it_returns() {
        let slot: Arc<Mutex<Option<CancelHandle>>> = Arc::default();
        let in_step = slot.clone();
        let (inner, _ir, c) = counting_canceller();
        let (root, rr) = Deferred::<u32>::pending();
        let d = root.add_callback(move |_| {
            in_step.lock().unwrap().take().unwrap().cancel();
            inner
        });
        *slot.lock().unwrap() = Some(d.cancel_handle());
        rr.callback(0);
        assert_eq!(c.load(Ordering::SeqCst), 1);
        assert!(d.wait().unwrap_err().is_cancelled());
    }

    /// A relay's inner Deferred fired inside a callback of another chain (through the run loop),
    /// and the outer chain cancelled in the same callback: the value is delivered, and the outer
    /// chain's next Deferred is cancelled.
    #[test]
    fn cancel_while_a_result_crosses_the_run_loop() {
        let (inner, ir) = Deferred::<u32>::pending();
        let (between, br) = Deferred::<u32>::pending();
        let between = between.add_callback(move |_| inner);
        let (next, _nr, nc) = counting_canceller();
        let (root, rr) = Deferred::<u32>::pending();
        let outer = root
            .add_callback(move |_| between)
            .add_callback(move |_| next);
        let handle = outer.cancel_handle();
        rr.callback(0);
        br.callback(0);
        let (trigger, tr) = Deferred::<u32>::pending();
        let t = trigger.add_callback(move |v| {
            ir.callback(v);
            handle.cancel();
            Ok(v)
        });
        tr.callback(1);
        assert_eq!(t.wait().unwrap(), 1);
        assert_eq!(nc.load(Ordering::SeqCst), 1);
        assert!(outer.wait().unwrap_err().is_cancelled());
    }

    /// Local kind: a relay chain cancelled while it hands over, from inside a step of the inner
    /// chain.
    #[test]
    fn local_cancel_from_a_relays_inner_step() {
        let slot: std::rc::Rc<std::cell::RefCell<Option<deferred_core::local::CancelHandle>>> =
            Default::default();
        let in_step = slot.clone();
        let (x, xr) = LocalDeferred::<u32>::pending();
        let cancels = std::rc::Rc::new(std::cell::Cell::new(0));
        let cc = cancels.clone();
        let (y, _yr) = LocalDeferred::<u32>::with_canceller(move || cc.set(cc.get() + 1));
        let x = x.add_callback(move |_| {
            let h = in_step.borrow_mut().take();
            if let Some(h) = h {
                h.cancel();
            }
            y
        });
        let (m, mr) = LocalDeferred::<u32>::pending();
        let m = m.add_callback(move |_| x);
        let (o, or) = LocalDeferred::<u32>::pending();
        let o = o.add_callback(move |_| m);
        *slot.borrow_mut() = Some(o.cancel_handle());
        or.callback(0);
        mr.callback(0);
        xr.callback(0);
        assert_eq!(cancels.get(), 1);
        assert!(o.wait().unwrap_err().is_cancelled());
    }

    /// Local kind: a cancel made from inside the root's canceller (the canceller cancels a group the
    /// Deferred is part of), then the canceller answers: its answer wins.
    #[test]
    fn local_a_cancel_from_inside_the_canceller_does_not_beat_its_answer() {
        use std::cell::RefCell;
        use std::rc::Rc;
        let slot: Rc<RefCell<Option<deferred_core::LocalResolver<u32>>>> = Default::default();
        let handle_slot: Rc<RefCell<Option<deferred_core::local::CancelHandle>>> =
            Default::default();
        let (in_canceller, handle_in) = (slot.clone(), handle_slot.clone());
        let (d, resolver) = LocalDeferred::<u32>::with_canceller(move || {
            let h = handle_in.borrow_mut().take();
            if let Some(h) = h {
                h.cancel();
            }
            let r = in_canceller.borrow_mut().take();
            r.unwrap().callback(7);
        });
        *slot.borrow_mut() = Some(resolver);
        *handle_slot.borrow_mut() = Some(d.cancel_handle());
        d.cancel();
        assert_eq!(d.wait().map_err(|f| f.to_string()), Ok(7));
    }

    /// `race` whose losers wait on relays: the losers' cancellations are dropped, not reported, and
    /// each inner canceller runs once.
    #[test]
    fn race_losers_waiting_on_relays_are_cancelled_quietly() {
        let (res, unhandled) = capture_unhandled(|| {
            let mut inputs = Vec::new();
            let mut counts = Vec::new();
            let mut roots = Vec::new();
            // The inner roots' resolvers, kept until the race has cancelled them (dropped then,
            // they are ignored: their roots failed with the cancel).
            let mut inner_roots = Vec::new();
            for _ in 0..3 {
                let (i, ir, c) = counting_canceller();
                inner_roots.push(ir);
                let (m, mr) = Deferred::<u32>::pending();
                let m = m.add_callback(move |_| i);
                let (l, lr) = Deferred::<u32>::pending();
                let l = l.add_callback(move |_| m);
                inputs.push(l);
                counts.push(c);
                roots.push((lr, mr));
            }
            let (w, wr) = Deferred::<u32>::pending();
            inputs.push(w);
            let r = race(inputs);
            for (lr, mr) in roots {
                lr.callback(0);
                mr.callback(0);
            }
            wr.callback(9);
            let v = r.wait().unwrap();
            drop(inner_roots);
            (
                v,
                counts
                    .iter()
                    .map(|c| c.load(Ordering::SeqCst))
                    .collect::<Vec<_>>(),
            )
        });
        assert_eq!(res, ((3, 9), vec![1, 1, 1]));
        assert!(unhandled.is_empty(), "{unhandled:?}");
    }

    /// A Deferred a thread waits on (as a future, `wait`), cancelled from another thread while
    /// it waits on a relay: the waiting thread wakes with the cancellation.
    #[test]
    fn cancel_of_a_waited_deferred_from_another_thread() {
        let (i, _ir, c) = counting_canceller();
        let (m, mr) = Deferred::<u32>::pending();
        let m = m.add_callback(move |_| i);
        let (o, or) = Deferred::<u32>::pending();
        let o = o.add_callback(move |_| m);
        let h = o.cancel_handle();
        or.callback(0);
        mr.callback(0);
        let waiter = std::thread::spawn(move || o.wait());
        std::thread::sleep(Duration::from_millis(20));
        h.cancel();
        let r = returns_in_time("wait", move || waiter.join().unwrap());
        assert!(r.unwrap_err().is_cancelled());
        assert_eq!(c.load(Ordering::SeqCst), 1);
    }
}
