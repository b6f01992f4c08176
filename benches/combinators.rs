//! Joining pending inputs: `join` of a tuple, `gather_results` of a list, against futures-rs'
//! `try_join` / `try_join_all` and tokio's `try_join!` over oneshot channels. Each iteration
//! makes the pending inputs, joins them, fires each input, and takes the joined values, as a
//! program that waits on two queries at once does.
//!
//! `cargo bench -p deferred-benches --bench combinators` prints criterion's report, then a table
//! of the best sample of each case (ns per join) and its ratio to futures-rs. The futures are
//! polled with a no-op waker, without a runtime: once before the inputs fire (so that each has
//! registered its waker, as it would in a runtime), once after.

use std::cell::RefCell;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll};
use std::time::Instant;

use criterion::Criterion;
use deferred::{Deferred, LocalDeferred, gather_results, join};
use futures::channel::oneshot;
use futures::task::noop_waker_ref;

/// Inputs of the list cases.
const MANY: usize = 25;

/// Polls `future` once (it must be pending), runs `fire`, and polls it again (it must be ready).
fn poll_around<F: Future>(future: F, fire: impl FnOnce()) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(noop_waker_ref());
    assert!(future.as_mut().poll(&mut cx).is_pending());
    fire();
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => unreachable!("every input was sent"),
    }
}

fn join_deferred(x: u64) -> u64 {
    let (a, resolve_a) = Deferred::<u64>::pending();
    let (b, resolve_b) = Deferred::<u32>::pending();
    let both = join((a, b));
    resolve_a.callback(x);
    resolve_b.callback(1);
    let (a, b) = both.wait().unwrap();
    a + u64::from(b)
}

fn join_local(x: u64) -> u64 {
    let (a, resolve_a) = LocalDeferred::<u64>::pending();
    let (b, resolve_b) = LocalDeferred::<u32>::pending();
    let both = deferred::local::join((a, b));
    resolve_a.callback(x);
    resolve_b.callback(1);
    let (a, b) = both.wait().unwrap();
    a + u64::from(b)
}

fn gather_two(x: u64) -> u64 {
    let (a, resolve_a) = Deferred::<u64>::pending();
    let (b, resolve_b) = Deferred::<u64>::pending();
    let both = gather_results([a, b]);
    resolve_a.callback(x);
    resolve_b.callback(1);
    both.wait().unwrap().iter().sum()
}

fn futures_try_join(x: u64) -> u64 {
    let (tx_a, rx_a) = oneshot::channel::<u64>();
    let (tx_b, rx_b) = oneshot::channel::<u32>();
    let (a, b) = poll_around(futures::future::try_join(rx_a, rx_b), || {
        tx_a.send(x).unwrap();
        tx_b.send(1).unwrap();
    })
    .unwrap();
    a + u64::from(b)
}

fn tokio_try_join(x: u64) -> u64 {
    let (tx_a, rx_a) = tokio::sync::oneshot::channel::<u64>();
    let (tx_b, rx_b) = tokio::sync::oneshot::channel::<u32>();
    let both = async move { tokio::try_join!(rx_a, rx_b) };
    let (a, b) = poll_around(both, || {
        tx_a.send(x).unwrap();
        tx_b.send(1).unwrap();
    })
    .unwrap();
    a + u64::from(b)
}

fn gather_many(x: u64) -> u64 {
    let (inputs, resolvers): (Vec<Deferred<u64>>, Vec<_>) =
        (0..MANY).map(|_| Deferred::pending()).unzip();
    let all = gather_results(inputs);
    for resolver in resolvers {
        resolver.callback(x);
    }
    all.wait().unwrap().iter().sum()
}

fn futures_try_join_all(x: u64) -> u64 {
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..MANY).map(|_| oneshot::channel::<u64>()).unzip();
    poll_around(futures::future::try_join_all(receivers), || {
        for sender in senders {
            sender.send(x).unwrap();
        }
    })
    .unwrap()
    .iter()
    .sum()
}

fn tokio_try_join_all(x: u64) -> u64 {
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..MANY)
        .map(|_| tokio::sync::oneshot::channel::<u64>())
        .unzip();
    poll_around(futures::future::try_join_all(receivers), || {
        for sender in senders {
            sender.send(x).unwrap();
        }
    })
    .unwrap()
    .iter()
    .sum()
}

/// One case: `(group, case, function)`.
type Case = (&'static str, &'static str, fn(u64) -> u64);

/// The cases, in the order of the table.
const CASES: &[Case] = &[
    ("two", "join (Deferred)", join_deferred),
    ("two", "join (LocalDeferred)", join_local),
    ("two", "gather_results [a, b]", gather_two),
    ("two", "futures try_join", futures_try_join),
    ("two", "tokio try_join! (async block)", tokio_try_join),
    ("25", "gather_results (Vec)", gather_many),
    ("25", "futures try_join_all", futures_try_join_all),
    (
        "25",
        "futures try_join_all (tokio oneshots)",
        tokio_try_join_all,
    ),
];

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let best: RefCell<Vec<f64>> = RefCell::new(vec![f64::INFINITY; CASES.len()]);
    for (index, &(group, case, function)) in CASES.iter().enumerate() {
        let expected = if group == "two" { 8 } else { 7 * MANY as u64 };
        assert_eq!(function(7), expected, "{group} {case}");
        let mut group = c.benchmark_group(format!("join {group}"));
        group.bench_function(case, |b| {
            b.iter_custom(|iterations| {
                let start = Instant::now();
                for i in 0..iterations {
                    black_box(function(black_box(i)));
                }
                let elapsed = start.elapsed();
                let mut best = best.borrow_mut();
                best[index] = best[index].min(elapsed.as_nanos() as f64 / iterations as f64);
                elapsed
            })
        });
        group.finish();
    }
    c.final_summary();
    let best = best.into_inner();
    println!(
        "\n{:<6} {:<40} {:>10} {:>12}",
        "inputs", "case", "ns/join", "x futures"
    );
    for (index, &(group, case, _)) in CASES.iter().enumerate() {
        if best[index].is_infinite() {
            continue; // not run: filtered out
        }
        let futures = CASES
            .iter()
            .position(|&(g, c, _)| g == group && c.starts_with("futures"))
            .map(|i| best[i]);
        let ratio = futures.map_or(String::new(), |f| format!("{:.2}", best[index] / f));
        println!("{group:<6} {case:<40} {:>10.1} {ratio:>12}", best[index]);
    }
}
