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
