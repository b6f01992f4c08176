// The leak scenarios that hold for both kinds of Deferred, written once: `tests/leaks.rs`
// includes this file into one module per kind, each naming its kind's `Deferred` and
// `Resolver`.

/// Pending chains of three steps, fired with a success.
pub fn fired(n: usize) {
    for i in 0..n {
        let (d, r) = Deferred::<usize>::pending();
        let p = payload();
        let d = d
            .add_callback(move |x| Ok(x + p.len()))
            .add_callback(|x| Ok(x * 2))
            .add_errback(Err);
        r.callback(i);
        assert_eq!(d.wait().unwrap(), (i + 64) * 2);
    }
}

/// Failures, handled by an errback (skipping callbacks on the way).
pub fn failed(n: usize) {
    for _ in 0..n {
        let (d, r) = Deferred::<usize>::pending();
        let p = payload();
        let d = d
            .add_callback(move |x| Ok(x + p.len()))
            .add_errback(|f| Ok(f.to_string().len()));
        r.errback(Failure::msg("x"));
        assert_eq!(d.wait().unwrap(), 1);
    }
}

/// Cancelled at the end of the chain, with a canceller capturing a payload; the Resolver is
/// kept alive past the cancel, then dropped (its late `NeverFired` is ignored).
pub fn cancelled(n: usize) {
    for _ in 0..n {
        let p = payload();
        let (d, r) = Deferred::<usize>::with_canceller(move || drop(p));
        let q = payload();
        let d = d.add_callback(move |x| Ok(x + q.len())).add_callback(Ok);
        d.cancel();
        assert!(d.wait().unwrap_err().is_cancelled());
        drop(r);
    }
}

/// Never fired: the Resolver is dropped (the handle still held, then waited on).
pub fn resolver_dropped(n: usize) {
    for _ in 0..n {
        let (d, r) = Deferred::<usize>::pending();
        let p = payload();
        let d = d.add_callback(move |x| Ok(x + p.len())).add_callback(Ok);
        drop(r);
        assert!(d.wait().is_err());
    }
}

/// The handle is dropped first, then the Resolver: the never-fired failure reaches nobody and
/// is reported as unhandled.
pub fn handle_dropped_then_resolver(n: usize) {
    let before = UNHANDLED.load(SeqCst);
    for _ in 0..n {
        let (d, r) = Deferred::<usize>::pending();
        let p = payload();
        drop(d.add_callback(move |x| Ok(x + p.len())).add_callback(Ok));
        drop(r);
    }
    assert_eq!(UNHANDLED.load(SeqCst) - before, n);
}

/// Resolvers kept alive while every handle is dropped, and only then dropped, all at once (the
/// cycle link <-> next link lives until then).
pub fn resolvers_outlive_handles(n: usize) {
    let mut resolvers: Vec<Resolver<usize>> = Vec::with_capacity(n);
    for _ in 0..n {
        let (d, r) = Deferred::<usize>::pending();
        let p = payload();
        drop(d.add_callback(move |x| Ok(x + p.len())).add_callback(Ok));
        resolvers.push(r);
    }
    for (i, r) in resolvers.into_iter().enumerate() {
        if i % 2 == 0 {
            r.callback(i); // a success nobody sees: nothing to report
        } else {
            drop(r); // never fired: reported
        }
    }
}

/// A callback captures another pending Deferred (and its Resolver lives outside); another
/// captures the cancel handle of its own chain (a cycle through the handle).
pub fn callbacks_capture_deferreds(n: usize) {
    for i in 0..n {
        let (other, other_resolver) = Deferred::<usize>::pending();
        let (d, r) = Deferred::<usize>::pending();
        let own = d.cancel_handle();
        let d = d
            .add_callback(move |x| {
                let _ = &own; // holds a handle to its own chain's root
                Ok(x)
            })
            .add_callback(move |x| Ok(other.add_callback(move |y| Ok(x + y))));
        match i % 3 {
            0 => {
                r.callback(1);
                other_resolver.callback(2);
                assert_eq!(d.wait().unwrap().wait().unwrap(), 3);
            }
            1 => {
                // Never fired: the captured Deferred is dropped unfired with its callbacks.
                drop(r);
                drop(d.add_errback(|_| Ok(Deferred::succeed(0))));
                drop(other_resolver);
            }
            _ => {
                // Dropped before anything fires; the Resolvers go last.
                drop(d.add_errback(|_| Ok(Deferred::succeed(0))));
                drop(other_resolver);
                drop(r);
            }
        }
    }
}

/// A callback captures the Resolver of another chain; the first chain never fires, so dropping
/// its Resolver drops the second's, and both chains settle.
pub fn callbacks_capture_resolvers(n: usize) {
    for _ in 0..n {
        let (a, a_resolver) = Deferred::<usize>::pending();
        let (b, b_resolver) = Deferred::<usize>::pending();
        let a = a.add_callback(move |x| {
            b_resolver.callback(x);
            Ok(x)
        });
        let b = b.add_callback(Ok);
        drop(a_resolver);
        assert!(a.wait().is_err());
        assert!(b.wait().is_err());
    }
}

/// A callback returns an inner pending Deferred; the inner is fired, dropped, or cancelled
/// through the outer chain while the outer chain waits on it.
pub fn nested(n: usize) {
    for i in 0..n {
        let (outer, outer_resolver) = Deferred::<usize>::pending();
        let (inner, inner_resolver) = Deferred::<usize>::pending();
        let p = payload();
        let d = outer
            .add_callback(move |x| inner.add_callback(move |y| Ok(x + y + p.len())))
            .add_callback(Ok);
        outer_resolver.callback(1);
        match i % 4 {
            0 => {
                inner_resolver.callback(2);
                assert_eq!(d.wait().unwrap(), 67);
            }
            1 => {
                drop(inner_resolver);
                assert!(d.wait().is_err());
            }
            2 => {
                d.cancel();
                assert!(d.wait().unwrap_err().is_cancelled());
                inner_resolver.callback(2); // ignored
            }
            _ => {
                // The outer handle goes first, then the inner Resolver: reported, freed.
                drop(d);
                drop(inner_resolver);
            }
        }
    }
}

/// Failures nobody handles: the handle is dropped while holding one, or before it arrives.
pub fn unhandled(n: usize) {
    let before = UNHANDLED.load(SeqCst);
    for i in 0..n {
        let (d, r) = Deferred::<usize>::pending();
        let d = d.add_callback(Ok);
        if i % 2 == 0 {
            r.errback(Failure::msg("lost"));
            drop(d);
        } else {
            drop(d);
            r.errback(Failure::msg("lost"));
        }
    }
    assert_eq!(UNHANDLED.load(SeqCst) - before, n);
}

/// One long chain (constant stack), fired at the end; and one cancelled through all its links.
pub fn long_chains(n: usize) {
    let (d, r) = Deferred::<usize>::pending();
    let mut d = d;
    for _ in 0..n {
        d = d.add_callback(|x| Ok(x + 1));
    }
    r.callback(0);
    assert_eq!(d.wait().unwrap(), n);

    let (d, r) = Deferred::<usize>::pending();
    let mut d = d;
    for _ in 0..n {
        d = d.add_callback(|x| Ok(x + 1));
    }
    d.cancel();
    assert!(d.wait().unwrap_err().is_cancelled());
    drop(r);
}

/// Relays: a chain whose last step returned a pending Deferred, while another chain waits on
/// it, hands that wait over and is freed before the result comes, holding the Deferred it
/// waited on and its step's output slot (its step changed the value's type): both are given
/// back, whatever the result then is.
pub fn relays(n: usize) {
    for i in 0..n {
        let (a, ra) = Deferred::<usize>::pending();
        let (b, rb) = Deferred::<usize>::pending();
        let (c, rc) = Deferred::<String>::pending();
        let p = payload();
        let b = b.add_callback(move |_| c);
        let d = a
            .add_callback(move |_| b)
            .add_callback(move |s: String| Ok(s.len() + p.len()));
        ra.callback(1);
        rb.callback(2); // b's step returns c, pending: a waits on c instead of b
        match i % 3 {
            0 => {
                rc.callback("abc".to_string());
                assert_eq!(d.wait().unwrap(), 3 + 64);
            }
            1 => {
                drop(rc);
                assert!(d.wait().is_err());
            }
            _ => {
                d.cancel();
                assert!(d.wait().unwrap_err().is_cancelled());
                drop(rc);
            }
        }
    }
}

/// Pairs of chains whose steps return each other's end (a cycle nothing can fire), broken by a
/// cancel: every link, step and captured payload is freed. (`Arc` slots: the Send kind needs
/// them; for the local kind they hold non-Send Deferreds, which is fine on one thread.)
#[allow(clippy::arc_with_non_send_sync)]
pub fn cycles(n: usize) {
    use std::sync::{Arc, Mutex};
    for _ in 0..n {
        let slots: [Arc<Mutex<Option<Deferred<usize>>>>; 2] =
            [Arc::new(Mutex::new(None)), Arc::new(Mutex::new(None))];
        let mut resolvers = Vec::new();
        let mut handles = Vec::new();
        for i in 0..2 {
            let (root, resolver) = Deferred::<usize>::pending();
            let next = slots[(i + 1) % 2].clone();
            let p = payload();
            let end = root
                .add_callback(move |_| next.lock().unwrap().take().expect("in its slot"))
                .add_errback(move |_| Ok(p.len()));
            handles.push(end.cancel_handle());
            *slots[i].lock().unwrap() = Some(end);
            resolvers.push(resolver);
        }
        for resolver in resolvers {
            resolver.callback(1);
        }
        handles[0].cancel();
    }
}

/// The helpers on a `ManualClock`, each settled at one of its points: `defer_later` fired or
/// cancelled before its call; `retry` succeeding after failures, cancelled waiting on the clock,
/// cancelled with an attempt in flight; a `LoopingCall` stopped between calls or cancelled with a
/// call in flight; every timer, attempt, call and captured payload is freed.
pub fn timed_helpers(n: usize) {
    use deferred::{ManualClock, RetryPolicy};
    use std::time::Duration;
    let clock = ManualClock::new();
    let second = Duration::from_secs(1);
    let policy = || RetryPolicy::exponential(second).jitter(0.0).max_attempts(4);
    for i in 0..n {
        let p = payload();
        match i % 7 {
            0 => {
                let d = defer_later(&clock, second, move || Ok::<usize, Failure>(p.len()));
                clock.advance(second);
                assert_eq!(d.wait().unwrap(), 64);
            }
            1 => {
                let d = defer_later(&clock, second, move || Ok::<usize, Failure>(p.len()));
                d.cancel();
                assert!(d.wait().unwrap_err().is_cancelled());
            }
            2 => {
                let mut failures = 0;
                let d = retry(clock.clone(), policy(), move || {
                    failures += 1;
                    if failures < 3 {
                        Err(Failure::msg("again"))
                    } else {
                        Ok(p.len())
                    }
                });
                clock.advance(second);
                clock.advance(second * 2);
                assert_eq!(d.wait().unwrap(), 64);
            }
            3 => {
                let d = retry(clock.clone(), policy(), move || {
                    Err::<usize, Failure>(Failure::msg(format!("{}", p.len())))
                });
                d.cancel(); // waiting on the clock
                assert!(d.wait().unwrap_err().is_cancelled());
            }
            4 => {
                let kept = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
                let k = kept.clone();
                let d = retry(clock.clone(), policy(), move || {
                    let q = p.clone();
                    let (attempt, resolver) = Deferred::<usize>::with_canceller(move || drop(q));
                    k.lock().unwrap().push(resolver);
                    attempt
                });
                d.cancel(); // the attempt in flight
                assert!(d.wait().unwrap_err().is_cancelled());
                drop(kept);
            }
            5 => {
                let lc = LoopingCall::new(clock.clone(), move || {
                    let _ = &p;
                    Ok::<(), Failure>(())
                });
                let done = lc.start(second, true);
                clock.advance(second);
                lc.stop();
                done.wait().unwrap();
            }
            _ => {
                let kept = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
                let k = kept.clone();
                let lc = LoopingCall::new(clock.clone(), move || {
                    let q = p.clone();
                    let (call, resolver) = Deferred::<()>::with_canceller(move || drop(q));
                    k.lock().unwrap().push(resolver);
                    call
                });
                let done = lc.start(second, true);
                done.cancel(); // the call in flight
                assert!(done.wait().unwrap_err().is_cancelled());
                drop((lc, kept));
            }
        }
    }
    assert_eq!(clock.pending(), 0);
}

/// `SharedResult`, `DeferredQueue` and `first_settled`, settled every way: consumers fired,
/// cancelled one by one until the source is, made after the fire, or dropped with a failure
/// (reported); items put before and after the gets, gets cancelled, a queue dropped with gets
/// waiting; a race won by one input, or cancelled before any fired.
pub fn sharing_helpers(n: usize) {
    for i in 0..n {
        let p = payload();
        match i % 8 {
            0 => {
                let (source, resolver) = Deferred::<Vec<u8>>::pending();
                let shared = SharedResult::new(source);
                let a = shared.consumer().add_callback(|v| Ok(v.len()));
                let b = shared.consumer();
                resolver.callback(p);
                assert_eq!(a.wait().unwrap(), 64);
                assert_eq!(b.wait().unwrap().len(), 64);
                assert_eq!(shared.consumer().wait().unwrap().len(), 64);
            }
            1 => {
                let (source, resolver) = Deferred::<Vec<u8>>::with_canceller(move || drop(p));
                let shared = SharedResult::new(source);
                let consumers = [shared.consumer(), shared.consumer()];
                drop(shared);
                for c in &consumers {
                    c.cancel();
                }
                for c in consumers {
                    assert!(c.wait().unwrap_err().is_cancelled());
                }
                drop(resolver);
            }
            2 => {
                let before = UNHANDLED.load(SeqCst);
                let (source, resolver) = Deferred::<Vec<u8>>::pending();
                let shared = SharedResult::new(source);
                drop(shared.consumer());
                resolver.errback(Failure::msg(format!("{}", p.len())));
                drop(shared);
                assert_eq!(UNHANDLED.load(SeqCst) - before, 1);
            }
            3 => {
                let queue = DeferredQueue::<Vec<u8>>::with_limits(Some(4), Some(4));
                let waiting = [queue.get(), queue.get()];
                waiting[0].cancel();
                queue.put(p.clone()).unwrap();
                queue.put(p).unwrap();
                let [cancelled, got] = waiting;
                assert!(cancelled.wait().unwrap_err().is_cancelled());
                assert_eq!(got.wait().unwrap().len(), 64);
                assert_eq!(queue.get().wait().unwrap().len(), 64);
            }
            4 => {
                let queue = DeferredQueue::<Vec<u8>>::new();
                queue.put(p).unwrap();
                let waiting = [queue.get(), queue.get()];
                drop(queue); // the second get never gets an item
                let [got, never] = waiting;
                assert_eq!(got.wait().unwrap().len(), 64);
                assert!(never.wait().is_err());
            }
            5 => {
                // Gets dropped, one converted by `map_err`: the item stays in the queue, and
                // the gets' chains (and the conversion, which holds its source) are freed.
                let queue = DeferredQueue::<Vec<u8>>::new();
                drop(queue.get().map_err(|failure| failure));
                drop(queue.get());
                queue.put(p).unwrap();
                assert_eq!(queue.len(), 1);
                assert_eq!(queue.get().wait().unwrap().len(), 64);
            }
            6 => {
                // A combinator's output dropped: its inputs are closed; one input's Resolver
                // is dropped, the other's `try_fire` is refused. Both chains, and the fan-in
                // they pointed at, are freed.
                let (a, ra) = Deferred::<Vec<u8>>::pending();
                let (b, rb) = Deferred::<Vec<u8>>::pending();
                drop(first_settled([a, b]));
                assert!(ra.is_closed() && rb.is_closed());
                drop(ra);
                assert_eq!(rb.try_fire(Ok(p)).unwrap_err().unwrap().len(), 64);
            }
            _ => {
                let (a, ra) = Deferred::<usize>::with_canceller(move || drop(p));
                let (b, rb) = Deferred::<usize>::pending();
                let (c, _rc) = Deferred::<usize>::pending();
                let d = first_settled([a, b, c]);
                if i % 12 == 5 {
                    rb.callback(2);
                    assert_eq!(d.wait().unwrap(), (1, 2));
                } else {
                    d.cancel();
                    assert!(d.wait().unwrap_err().is_cancelled());
                    drop(rb);
                }
                drop(ra);
            }
        }
    }
}
