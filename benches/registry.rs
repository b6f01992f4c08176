//! What the pending-chain registry (feature `registry`) costs: a pending 10-step chain — made,
//! ten `add_callback`s, fired, waited on — of each kind, timed by criterion and counted by
//! callgrind (instructions per chain). Run it twice, without and with the feature:
//!
//! ```sh
//! cargo bench -p deferred-benches --bench registry
//! cargo bench -p deferred-benches --bench registry --features deferred-chain/registry
//! ```
//!
//! (`--features registry`, this package's passthrough, is the same.) The binary finds out at
//! run time whether the registry is on (a pending Deferred's `Debug` says where it was made
//! only then), and says so in its report. BENCHMARKS.md has the figures.

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::Criterion;
use deferred::{Deferred, LocalDeferred};

/// Chains per callgrind run: the difference of two runs cancels start-up costs.
const SHORT: u64 = 2_000;
const LONG: u64 = 6_000;

/// A pending 10-step chain of the `Send` kind: made, extended, fired, waited on.
fn shared(i: u64) -> u64 {
    let (d, resolver) = Deferred::<u64>::pending();
    let d = d
        .add_callback(|x| Ok(x + 1))
        .add_callback(|x| Ok(x + 1))
        .add_callback(|x| Ok(x + 1))
        .add_callback(|x| Ok(x + 1))
        .add_callback(|x| Ok(x + 1))
        .add_callback(|x| Ok(x + 1))
        .add_callback(|x| Ok(x + 1))
        .add_callback(|x| Ok(x + 1))
        .add_callback(|x| Ok(x + 1))
        .add_callback(|x| Ok(x + 1));
    resolver.callback(i);
    d.wait().unwrap()
}

/// The same chain, of the local kind.
fn local(i: u64) -> u64 {
    let (d, resolver) = LocalDeferred::<u64>::pending();
    let d = d
        .add_callback(|x| Ok(x + 1))
        .add_callback(|x| Ok(x + 1))
        .add_callback(|x| Ok(x + 1))
        .add_callback(|x| Ok(x + 1))
        .add_callback(|x| Ok(x + 1))
        .add_callback(|x| Ok(x + 1))
        .add_callback(|x| Ok(x + 1))
        .add_callback(|x| Ok(x + 1))
        .add_callback(|x| Ok(x + 1))
        .add_callback(|x| Ok(x + 1));
    resolver.callback(i);
    d.wait().unwrap()
}

/// A chain to measure, by name.
type Case = (&'static str, fn(u64) -> u64);

const CASES: [Case; 2] = [("Deferred", shared), ("LocalDeferred", local)];

/// Whether this build has the registry: a pending Deferred's `Debug` says where it was made.
fn registry_on() -> bool {
    let (d, resolver) = Deferred::<u32>::pending();
    let on = format!("{d:?}").contains("created_at");
    resolver.callback(0);
    drop(d.wait());
    on
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [mode, index, count] = &args[..]
        && mode == "run"
    {
        let (_, chain) = CASES[index.parse::<usize>().expect("a case index")];
        let count: u64 = count.parse().expect("a count");
        for i in 0..count {
            black_box(chain(black_box(i)));
        }
        return;
    }
    let registry = if registry_on() {
        "registry on"
    } else {
        "registry off"
    };
    for (_, chain) in CASES {
        assert_eq!(chain(1), 11);
    }
    let mut c = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1500))
        .configure_from_args();
    let mut best = Vec::new();
    for (name, chain) in CASES {
        let mut fastest = f64::INFINITY;
        c.bench_function(
            &format!("registry/{name} pending 10 steps ({registry})"),
            |b| {
                b.iter_custom(|iterations| {
                    let start = Instant::now();
                    for i in 0..iterations {
                        black_box(chain(black_box(i)));
                    }
                    let elapsed = start.elapsed();
                    fastest = fastest.min(elapsed.as_nanos() as f64 / iterations as f64);
                    elapsed
                })
            },
        );
        best.push((name, fastest));
    }
    c.final_summary();
    if best.iter().all(|(_, ns)| ns.is_infinite()) {
        return; // filtered out, or `cargo test --benches`
    }
    println!();
    println!("a pending 10-step chain ({registry}): best criterion sample, ns per chain");
    for (name, ns) in &best {
        println!("{name:<14} {ns:>8.1}");
    }
    instructions(registry);
}

/// Instructions per chain, by callgrind (when valgrind is installed).
fn instructions(registry: &str) {
    if Command::new("valgrind").arg("--version").output().is_err() {
        println!("instructions: valgrind not found, skipped (apt-get install valgrind)");
        return;
    }
    let me = std::env::current_exe().expect("the bench binary");
    println!("a pending 10-step chain ({registry}): callgrind, instructions (Ir) per chain");
    for (index, (name, _)) in CASES.iter().enumerate() {
        let count = |n: u64| -> f64 {
            let output = Command::new("valgrind")
                .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
                .arg(&me)
                .args(["run", &index.to_string(), &n.to_string()])
                .output()
                .expect("valgrind runs");
            let stderr = String::from_utf8_lossy(&output.stderr);
            stderr
                .lines()
                .find_map(|line| line.split_once("Collected :")?.1.trim().parse().ok())
                .unwrap_or_else(|| panic!("no callgrind total in:\n{stderr}"))
        };
        let per_chain = (count(LONG) - count(SHORT)) / (LONG - SHORT) as f64;
        println!("{name:<14} {per_chain:>8.1}");
    }
}
