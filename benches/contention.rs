//! Contention: several threads firing and chaining Deferreds on shared chains, and many threads
//! on one `DeferredSemaphore`, against the same pattern on futures-rs and tokio primitives.
//! Plain `fn main` (no criterion): fixed operation counts, timed with `Instant`, best of 5 runs.
//!
//! 1. Fire vs add. N pairs of threads (2N threads). Per round, thread A makes `BATCH` pending
//!    Deferreds and sends their Resolvers to thread B over a channel; B fires them while A adds 3
//!    `add_callback` steps to each (the race: one thread fires a chain while another adds steps),
//!    then A waits on each end. One operation = one Deferred made, given 3 steps, fired and
//!    waited. Peers: futures-rs `oneshot` (A: `receiver.map(..)` x3, `block_on`; B: `send`) and
//!    tokio's `oneshot` (the same, on the same `block_on`).
//! 2. Semaphore. N threads share one semaphore of 2 tokens; each does a fixed number of acquisitions,
//!    waiting for each (acquire, run nothing, release). `DeferredSemaphore::run(|| Ok(())).wait()`
//!    and `acquire().wait()` + `release()`, against tokio's `Semaphore` with
//!    `futures::executor::block_on(semaphore.acquire())` per acquisition, then the permit dropped
//!    (the thread blocks until it has the permit, as `wait()` does).
//!
//! `cargo bench -p deferred-benches --bench contention`; results in BENCHMARKS.md.

use std::hint::black_box;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use deferred::{Deferred, DeferredSemaphore, Failure, Resolver, chain};
use futures::FutureExt;

const RUNS: usize = 5;
const BATCH: usize = 1_000;
/// Rounds of `BATCH` per pair in the fire-vs-add pattern.
const ROUNDS: usize = 1_000;
/// Acquisitions per thread on the shared semaphore. Small: once a queue of waiters forms on a
/// fair semaphore with more threads than cores, every acquisition is a park and an unpark (a
/// convoy), 100x slower than without one, and a run may or may not fall into it.
const SEM_OPS: usize = 50_000;

/// The best (shortest) and the worst of `RUNS` runs of `f`.
fn best(mut f: impl FnMut()) -> (Duration, Duration) {
    let times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    (*times.iter().min().unwrap(), *times.iter().max().unwrap())
}

// ---------------------------------------------------------------------------------------------
// 1. Fire vs add.

fn pair_deferred() {
    pair_deferred_with(|d| {
        d.add_callback(|x| Ok(x + 1))
            .add_callback(|x| Ok(x * 2))
            .add_callback(|x| Ok(x + 3))
    });
}

/// The same three steps as one `chain!`: one stage added to the pending chain, where
/// `add_callback` adds three (each takes the chain's lock, on a cell the other thread fires).
fn pair_chain() {
    pair_deferred_with(|d| {
        chain! {
            d
            then |x| x + 1
            then |x| x * 2
            then |x| x + 3
        }
    });
}

/// The fire-vs-add pattern on Deferreds: thread A makes the chains and gives each its steps
/// with `steps`, while thread B fires them.
fn pair_deferred_with(steps: fn(Deferred<u64>) -> Deferred<u64>) {
    let (to_b, from_a) = mpsc::channel::<Vec<Resolver<u64>>>();
    std::thread::scope(|s| {
        s.spawn(move || {
            for resolvers in from_a {
                for (i, resolver) in resolvers.into_iter().enumerate() {
                    resolver.callback(i as u64);
                }
            }
        });
        let mut sum = 0u64;
        for _ in 0..ROUNDS {
            let (ds, rs): (Vec<_>, Vec<_>) = (0..BATCH).map(|_| Deferred::<u64>::pending()).unzip();
            to_b.send(rs).unwrap();
            let ends: Vec<_> = ds.into_iter().map(steps).collect();
            for end in ends {
                sum += end.wait().unwrap();
            }
        }
        drop(to_b);
        black_box(sum);
    });
}

/// The same pattern on a oneshot channel of futures-rs or tokio: `channel` makes one, `send`
/// fires its sender; the receiver gets the three steps as `map`s and is blocked on.
fn pair_oneshot<S, R, E>(channel: fn() -> (S, R), send: fn(S, u64))
where
    S: Send + 'static,
    R: std::future::Future<Output = Result<u64, E>>,
    E: std::fmt::Debug,
{
    let (to_b, from_a) = mpsc::channel::<Vec<S>>();
    std::thread::scope(|s| {
        s.spawn(move || {
            for senders in from_a {
                for (i, sender) in senders.into_iter().enumerate() {
                    send(sender, i as u64);
                }
            }
        });
        let mut sum = 0u64;
        for _ in 0..ROUNDS {
            let (ss, rs): (Vec<_>, Vec<_>) = (0..BATCH).map(|_| channel()).unzip();
            to_b.send(ss).unwrap();
            let ends: Vec<_> = rs
                .into_iter()
                .map(|r| r.map(|x| x.unwrap() + 1).map(|x| x * 2).map(|x| x + 3))
                .collect();
            for end in ends {
                sum += futures::executor::block_on(end);
            }
        }
        drop(to_b);
        black_box(sum);
    });
}

fn pair_futures() {
    use futures::channel::oneshot;
    pair_oneshot(oneshot::channel::<u64>, |sender, value| {
        let _ = sender.send(value);
    });
}

fn pair_tokio() {
    use tokio::sync::oneshot;
    pair_oneshot(oneshot::channel::<u64>, |sender, value| {
        let _ = sender.send(value);
    });
}

/// `pairs` pairs at once, each running `pair`.
fn pairs(pairs: usize, pair: fn()) {
    std::thread::scope(|s| {
        for _ in 0..pairs {
            s.spawn(pair);
        }
    });
}

// ---------------------------------------------------------------------------------------------
// 2. One semaphore, many threads.

fn sem_run(threads: usize) {
    let semaphore = DeferredSemaphore::new(2);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..SEM_OPS {
                    semaphore.run(|| Ok::<(), Failure>(())).wait().unwrap();
                }
            });
        }
    });
}

fn sem_acquire(threads: usize) {
    let semaphore = DeferredSemaphore::new(2);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..SEM_OPS {
                    let permit = semaphore.acquire().wait().unwrap();
                    black_box(&permit);
                    permit.release();
                }
            });
        }
    });
}

fn sem_tokio(threads: usize) {
    let semaphore = tokio::sync::Semaphore::new(2);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..SEM_OPS {
                    let permit = futures::executor::block_on(semaphore.acquire()).unwrap();
                    black_box(&permit);
                    drop(permit);
                }
            });
        }
    });
}

// ---------------------------------------------------------------------------------------------

fn row(
    threads: usize,
    name: &str,
    ops: usize,
    (time, worst): (Duration, Duration),
    peer: Option<f64>,
) -> f64 {
    let total = ops as f64 / time.as_secs_f64();
    let ratio = peer.map_or("1.00 (peer)".to_string(), |p| format!("{:.2}", total / p));
    println!(
        "| {threads} | {name} | {:.2} M | {:.2} M | {ratio} | {:.1} / {:.1} ms |",
        total / 1e6,
        total / threads as f64 / 1e6,
        time.as_secs_f64() * 1e3,
        worst.as_secs_f64() * 1e3,
    );
    total
}

fn main() {
    println!(
        "load average at start: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    println!(
        "\nFire vs add: N pairs (2N threads), {ROUNDS} x {BATCH} Deferreds per pair, 3 steps each; best of {RUNS}\n"
    );
    println!(
        "| threads | variant | ops/s total | ops/s per thread | ratio to futures-rs | best / worst run |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for n in [1, 2, 4, 8] {
        let ops = n * ROUNDS * BATCH;
        let threads = 2 * n;
        let futures = row(
            threads,
            "futures-rs oneshot + map x3",
            ops,
            best(|| pairs(n, pair_futures)),
            None,
        );
        row(
            threads,
            "tokio oneshot + map x3",
            ops,
            best(|| pairs(n, pair_tokio)),
            Some(futures),
        );
        row(
            threads,
            "Deferred add_callback x3",
            ops,
            best(|| pairs(n, pair_deferred)),
            Some(futures),
        );
        row(
            threads,
            "Deferred chain! of 3 steps",
            ops,
            best(|| pairs(n, pair_chain)),
            Some(futures),
        );
    }
    println!("\nOne semaphore of 2 tokens, N threads x {SEM_OPS} acquisitions; best of {RUNS}\n");
    println!(
        "| threads | variant | ops/s total | ops/s per thread | ratio to tokio | best / worst run |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for n in [1, 2, 4, 8] {
        let tokio = row(
            n,
            "tokio Semaphore, block_on(acquire())",
            n * SEM_OPS,
            best(|| sem_tokio(n)),
            None,
        );
        row(
            n,
            "DeferredSemaphore run(|| Ok(())).wait()",
            n * SEM_OPS,
            best(|| sem_run(n)),
            Some(tokio),
        );
        row(
            n,
            "DeferredSemaphore acquire().wait() + release()",
            n * SEM_OPS,
            best(|| sem_acquire(n)),
            Some(tokio),
        );
    }
    println!(
        "\nload average at end: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
}
