//! Per-step cost of a 10-step `+1` chain, in four shapes (sync, pending, nested, error), written
//! with `chain!`, hand-written `add_callback`s, plain closures (the limit), futures-rs
//! combinators and async/await. The chains are in `common/mod.rs`.
//!
//! `cargo bench -p deferred-benches --bench steps` prints criterion's report (time per chain, and
//! elements = steps per second), then a table of ns per step: the best criterion sample of each
//! chain (the least disturbed by other processes on a shared machine) divided by 10, with the
//! ratios the quality bars of docs/rules.md speak of. BENCHMARKS.md has the numbers and how they
//! were taken.
//!
//! `cargo bench -p deferred-benches --bench steps -- --interleaved [FILTER]` prints the same
//! table without criterion: it times the chains whose "shape/peer" contains FILTER in rounds, a
//! batch of each chain per round, each round starting with the next chain, and keeps each
//! chain's best batch. Criterion times one chain after another, so a slow spell of the machine
//! (another guest's load on the host, lasting seconds) lands on some chains and not on others,
//! and a ratio between two of them can move by more than the difference it measures. In rounds,
//! a slow spell lands on every chain alike.

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
    let c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(800));
    let best = Best::default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|arg| arg == "--interleaved") {
        let filter = args.iter().find(|arg| !arg.starts_with("--"));
        interleaved(filter.map(String::as_str), &best);
    } else {
        let mut c = c.configure_from_args();
        bench_all(&mut c, &best);
        c.final_summary();
    }
    print_table(&best.borrow());
}

/// A chain (shape, peer) and the function that times it (`timed_all`).
type Timed = (&'static str, &'static str, fn(u64) -> f64);

macro_rules! timed_all {
    ($(($shape:ident, $peer:literal, $function:ident)),* $(,)?) => {
        /// Every chain, with a function that runs it `n` times and gives the ns a chain took: a
        /// function of its own for each chain, which calls the chain directly.
        const TIMED: &[Timed] =
            &[$((stringify!($shape), $peer, |n| time_chain(common::$shape::$function, n))),*];
    };
}
common::for_each_case!(timed_all);

/// Runs `chain` `n` times, in ns a chain.
#[inline(always)]
fn time_chain(chain: impl Fn(u64) -> u64, n: u64) -> f64 {
    let start = Instant::now();
    for i in 0..n {
        black_box(chain(black_box(i)));
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

/// `--interleaved` (see the crate docs): rounds of a batch of each chosen chain, for at least
/// 10 rounds and then until 20 s have passed (at most 200 rounds); the best batch of each.
fn interleaved(filter: Option<&str>, best: &Best) {
    let chosen: Vec<Timed> = TIMED
        .iter()
        .copied()
        .filter(|(shape, peer, _)| filter.is_none_or(|f| format!("{shape}/{peer}").contains(f)))
        .collect();
    if chosen.is_empty() {
        println!("--interleaved: no chain's \"shape/peer\" contains {filter:?}");
        return;
    }
    for (shape, peer, chain) in common::CASES {
        if chosen.iter().any(|(s, p, _)| s == shape && p == peer) {
            assert_eq!(chain(1), common::expected(shape, 1), "{shape} {peer}");
        }
    }
    // A batch of each chain long enough to time (about 2 ms; warms it up too).
    let batches: Vec<u64> = chosen
        .iter()
        .map(|(_, _, timed)| {
            let mut n = 1_000;
            while timed(n) * (n as f64) < 2e6 && n < 1 << 30 {
                n *= 2;
            }
            n
        })
        .collect();
    let mut best = best.borrow_mut();
    best.extend(
        chosen
            .iter()
            .map(|&(shape, peer, _)| (shape, peer, f64::MAX)),
    );
    let began = Instant::now();
    let mut rounds = 0;
    while rounds < 10 || (rounds < 200 && began.elapsed() < Duration::from_secs(20)) {
        for k in 0..chosen.len() {
            let i = (rounds + k) % chosen.len();
            let ns = chosen[i].2(batches[i]);
            best[i].2 = best[i].2.min(ns);
        }
        rounds += 1;
    }
    println!(
        "interleaved: {} chains, {rounds} rounds in {:.1} s, the best batch of each",
        chosen.len(),
        began.elapsed().as_secs_f64()
    );
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
    // The same chains against the peer in the same order of events, and chain! awaited in
    // async code: what the bars' ratios are made of, not bars of docs/rules.md themselves.
    let alike = [
        ("pending", "chain!", TOKIO_POLLED, "steps first"),
        ("pending", "chain!, fired first", TOKIO, "value first"),
        (
            "pending",
            "chain!, awaited",
            TOKIO_POLLED,
            "awaited in async code",
        ),
        (
            "pending",
            "local add_callback",
            ONESHOT_POLLED,
            "local kind, steps first",
        ),
        (
            "pending",
            "local add_callback, fired first",
            ONESHOT,
            "local kind, value first",
        ),
    ];
    let ratio_of = |shape: &str, peer: &str, other: &str| {
        Some(per_step(shape, peer)? / per_step(shape, other)?)
    };
    println!();
    println!("quality bars (docs/rules.md)");
    for (shape, peer, other, limit, bar) in bars {
        let Some(ratio) = ratio_of(shape, peer, other) else {
            continue;
        };
        let verdict = if ratio <= limit {
            "met"
        } else if ratio <= limit * 1.05 {
            "within 5% (noise?): see the instruction counts"
        } else {
            "NOT MET"
        };
        println!("{shape:<8} {peer:<14} vs {other:<24} {ratio:>6.2}x  ({bar}): {verdict}");
    }
    println!();
    println!("like for like: the same order of events on both sides (not bars of docs/rules.md)");
    for (shape, peer, other, order) in alike {
        let Some(ratio) = ratio_of(shape, peer, other) else {
            continue;
        };
        let side = if ratio <= 1.0 { "ahead" } else { "behind" };
        println!("{shape:<8} {peer:<14} vs {other:<24} {ratio:>6.2}x  ({order}): {side}");
    }
    // The bar of 2 ns a synchronous step holds in every shape, a step the optimizer cannot
    // inline among them: such a step costs its own call, which no library saves. Each is shown
    // beside the same step called by hand, so what is the library's is what is above that.
    let by_hand = [
        (
            "add_callback, #[inline(never)] step",
            "#[inline(never)] step, called by hand",
        ),
        (
            "add_callback, another crate's fn",
            "another crate's fn, called by hand",
        ),
    ];
    for (peer, hand) in by_hand {
        let (Some(ns), Some(hand_ns)) = (per_step("sync", peer), per_step("sync", hand)) else {
            continue;
        };
        let verdict = if ns <= 2.0 { "met" } else { "NOT MET" };
        println!(
            "sync     {peer:<14} {ns:>6.2} ns  (at most 2 ns a step): {verdict}; called by hand \
             {hand_ns:.2} ns, {:.2}x",
            ns / hand_ns
        );
    }
}
