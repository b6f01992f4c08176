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
