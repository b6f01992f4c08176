//! Features `tracing` and `registry` together: a subscriber that looks at the pending chains
//! (`pending_chains()`) from inside a `deferred` event. The chain events are emitted once the
//! chain's lock is released: two were emitted under it, and such a subscriber hung the
//! `Deferred` kind's thread (its spin lock) and panicked the local kind's (its `RefCell`).
#![cfg(all(feature = "tracing", feature = "registry"))]

use std::sync::mpsc;
use std::time::Duration;

use deferred_core::{Deferred, LocalDeferred, pending_chains};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// A guard against a hung test, not a timing assertion.
const HUNG: Duration = Duration::from_secs(60);

/// A subscriber that lists the pending chains at every event of target `deferred`.
struct Dumper;

impl Subscriber for Dumper {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        if event.metadata().target() == "deferred" {
            let _ = pending_chains().len();
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// Runs `f` on a thread of its own with the `Dumper` as its subscriber.
fn with_dumper(f: impl FnOnce() -> u32 + Send + 'static) -> u32 {
    let (sent, got) = mpsc::channel();
    std::thread::spawn(move || {
        let _subscriber = tracing::subscriber::set_default(Dumper);
        let _ = sent.send(f());
    });
    got.recv_timeout(HUNG)
        .expect("hung, or panicked: a chain's lock was held while the subscriber ran")
}

#[test]
fn a_subscriber_lists_the_chains_as_a_chain_fires() {
    let shared = with_dumper(|| {
        let (d, resolver) = Deferred::<u32>::pending();
        let d = d.add_callback(|n| Ok(n + 1));
        resolver.callback(1);
        d.wait().unwrap()
    });
    assert_eq!(shared, 2);
    let local = with_dumper(|| {
        let (d, resolver) = LocalDeferred::<u32>::pending();
        let d = d.add_callback(|n| Ok(n + 1));
        resolver.callback(1);
        d.wait().unwrap()
    });
    assert_eq!(local, 2);
}

#[test]
fn a_subscriber_lists_the_chains_as_a_chain_waits_on_another() {
    let waited = with_dumper(|| {
        let (inner, inner_resolver) = Deferred::<u32>::pending();
        let (d, resolver) = Deferred::<u32>::pending();
        let d = d.add_callback(move |_| inner);
        resolver.callback(1);
        inner_resolver.callback(5);
        d.wait().unwrap()
    });
    assert_eq!(waited, 5);
}
