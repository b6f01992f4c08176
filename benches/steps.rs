//! Per-step cost of a 10-step `+1` chain, in four shapes (sync, pending, nested, error), written
//! with `chain!`, hand-written `add_callback`s, plain closures (the limit), futures-rs
//! combinators and async/await. The chains are in `common/mod.rs`.
//!
//! `cargo bench -p deferred-benches --bench steps` prints criterion's report (time per chain, and
//! elements = steps per second), then a table of ns per step: the best criterion sample of each
//! chain (the least disturbed by other processes on a shared machine) divided by 10, with the
//! ratios the quality bars of docs/rules.md speak of. BENCHMARKS.md has the numbers and how they
//! were taken.

use std::cell::RefCell;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};

mod common;

use common::STEPS;

/// Best time per chain seen for each `(shape, peer)`, in ns.
type Best = RefCell<Vec<(&'static str, &'static str, f64)>>;

/// Times one chain: criterion's samples, and the best one kept for the table.
fn bench(
    c: &mut Criterion,
    best: &Best,
    shape: &'static str,
    peer: &'static str,
    chain: impl Fn(u64) -> u64,
) {
    assert_eq!(chain(1), common::expected(shape, 1), "{shape} {peer}");
    let mut group = c.benchmark_group(shape);
    group.throughput(Throughput::Elements(STEPS));
    // A criterion id is a path: no `/` in it.
    group.bench_function(peer.replace('/', "-"), |b| {
        b.iter_custom(|iterations| {
            let start = Instant::now();
            for i in 0..iterations {
                black_box(chain(black_box(i)));
            }
            let elapsed = start.elapsed();
            let per_chain = elapsed.as_nanos() as f64 / iterations as f64;
            let mut best = best.borrow_mut();
            match best.iter_mut().find(|(s, p, _)| *s == shape && *p == peer) {
                Some((_, _, ns)) => *ns = ns.min(per_chain),
                None => best.push((shape, peer, per_chain)),
            }
            elapsed
        })
    });
    group.finish();
}

macro_rules! bench_all {
    ($(($shape:ident, $peer:literal, $function:ident)),* $(,)?) => {
        fn bench_all(c: &mut Criterion, best: &Best) {
            $(bench(c, best, stringify!($shape), $peer, common::$shape::$function);)*
        }
    };
}
common::for_each_case!(bench_all);

fn main() {
    // The `error` chains make a `Failure`, which captures a backtrace when RUST_BACKTRACE asks
    // (about 5 us here, which would swamp the chain). Measure the production default unless
    // RUST_LIB_BACKTRACE says otherwise.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: single-threaded here: nothing else reads the environment yet.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(800))
        .configure_from_args();
    let best = Best::default();
    bench_all(&mut c, &best);
    c.final_summary();
    print_table(&best.borrow());
}

/// The table of ns per step, with each chain's ratio to the peers the quality bars name.
fn print_table(best: &[(&str, &str, f64)]) {
    if best.is_empty() {
        return; // filtered out, or `cargo test --benches`
    }
    let per_step = |shape: &str, peer: &str| {
        best.iter()
            .find(|(s, p, _)| *s == shape && *p == peer)
            .map(|(_, _, ns)| ns / STEPS as f64)
    };
    println!();
    println!("ns per step (best sample / {STEPS}), and ratios");
    println!(
        "{:<8} {:<30} {:>9} {:>12} {:>16}",
        "shape", "peer", "ns/step", "x closures", "x add_callback"
    );
    for (shape, peer, ns) in best {
        let ns = ns / STEPS as f64;
        let ratio = |other: Option<f64>| match other {
            Some(other) if other > 0.0 => format!("{:.2}", ns / other),
            _ => "-".to_string(),
        };
        println!(
            "{shape:<8} {peer:<30} {ns:>9.2} {:>12} {:>16}",
            ratio(per_step(shape, "closures")),
            ratio(per_step(shape, "add_callback")),
        );
    }
    const MAP: &str = "futures ready().map()";
    const ONESHOT: &str = "futures oneshot+map";
    const CALLBACKS: &str = "add_callback";
    const NOT_SLOWER: &str = "never slower than add_callback";
    const TOKIO: &str = "tokio oneshot, async";
    // Like for like: a peer's future polled once before the value is sent has registered its
    // waker, as a chain built before its root fires has its steps in place; one polled only
    // after the send never waits (its ready path), as a chain whose root fired before its
    // steps were added runs them at once ("fired first").
    const TOKIO_POLLED: &str = "tokio oneshot, async, polled";
    const ONESHOT_POLLED: &str = "futures oneshot+map, polled";
    let bars = [
        ("sync", "chain!", MAP, 2.0, "within 2x of futures-rs"),
        ("sync", CALLBACKS, MAP, 2.0, "within 2x of futures-rs"),
        ("pending", "chain!", ONESHOT, 0.8, "at most 0.8x futures-rs"),
        ("pending", "chain!", TOKIO, 1.0, "at least as fast as tokio"),
        (
            "pending",
            "chain!",
            TOKIO_POLLED,
            1.0,
            "like for like, steps first: at least as fast as tokio",
        ),
        (
            "pending",
            "chain!, fired first",
            TOKIO,
            1.0,
            "like for like, value first: at least as fast as tokio",
        ),
        (
            "pending",
            CALLBACKS,
            ONESHOT,
            2.0,
            "within 2x of futures-rs",
        ),
        (
            "pending",
            "local add_callback",
            ONESHOT,
            1.0,
            "local kind: at least as fast as futures-rs",
        ),
        (
            "pending",
            "local add_callback",
            ONESHOT_POLLED,
            1.0,
            "local kind, like for like, steps first: at least as fast as futures-rs",
        ),
        (
            "pending",
            "local add_callback, fired first",
            ONESHOT,
            1.0,
            "local kind, like for like, value first: at least as fast as futures-rs",
        ),
        (
            "pending",
            "local chain!",
            ONESHOT,
            0.5,
            "local kind: at most half of futures-rs",
        ),
        (
            "sync",
            "local add_callback",
            MAP,
            2.0,
            "within 2x of futures-rs",
        ),
        ("sync", "chain!", CALLBACKS, 1.0, NOT_SLOWER),
        ("pending", "chain!", CALLBACKS, 1.0, NOT_SLOWER),
        ("nested", "chain!", CALLBACKS, 1.0, NOT_SLOWER),
        ("error", "chain!", CALLBACKS, 1.0, NOT_SLOWER),
    ];
    println!();
    println!("quality bars (docs/rules.md)");
    for (shape, peer, other, limit, bar) in bars {
        let (Some(ns), Some(other_ns)) = (per_step(shape, peer), per_step(shape, other)) else {
            continue;
        };
        let ratio = ns / other_ns;
        let verdict = if ratio <= limit {
            "met"
        } else if ratio <= limit * 1.05 {
            "within 5% (noise?): see the instruction counts"
        } else {
            "NOT MET"
        };
        println!("{shape:<8} {peer:<14} vs {other:<24} {ratio:>6.2}x  ({bar}): {verdict}");
    }
}
