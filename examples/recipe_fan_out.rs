//! Recipe: a bounded fan-out with retry — fetch many pages, at most three at once, each retried
//! with backoff while the server says it is unavailable, all under one deadline.
//!
//! ```text
//! cargo run --example recipe_fan_out
//! ```
//!
//! The clock is `ThreadClock`, real time on the crate's timer thread, for a program of plain
//! threads: with the `tokio` feature use `TokioClock`, on an event loop its own clock. The fetch
//! is blocking work on the pool (`defer_to_thread`); the first attempt at every third page fails
//! as "unavailable".

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deferred::{
    Deferred, Failure, RetryPolicy, ThreadClock, defer_to_thread, map_concurrent, retry_if,
};

/// The server's "try again later": the one failure worth retrying.
#[derive(Debug)]
struct Unavailable;

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("503 unavailable")
    }
}

impl std::error::Error for Unavailable {}

// recipe: begin
/// Fetches every page, at most 3 at once; each fetch is retried (up to 4 attempts, backing off
/// from 10 ms) while it fails with `Unavailable`, and not for any other failure. The first
/// failure that is not retried fails the batch and cancels the rest; so does the deadline.
fn fetch_all(pages: Vec<u32>, clock: ThreadClock, server: Server) -> Deferred<Vec<String>> {
    let policy = RetryPolicy::exponential(Duration::from_millis(10)).max_attempts(4);
    let timer = clock.clone();
    map_concurrent(pages, 3, move |page: u32| {
        let server = server.clone();
        retry_if(
            clock.clone(),
            policy.clone(),
            |f: &Failure| f.is::<Unavailable>(),
            move || server.fetch(page),
        )
    })
    .add_timeout(Duration::from_secs(10), &timer)
}
// recipe: end

fn main() {
    let server = Server::default();
    let pages = fetch_all((1..=9).collect(), ThreadClock, server.clone())
        .wait()
        .unwrap();
    for page in &pages {
        println!("{page}");
    }
    println!(
        "{} pages, {} attempts, at most {} at once",
        pages.len(),
        server.attempts.load(Ordering::SeqCst),
        server.peak.load(Ordering::SeqCst)
    );
}

/// A server that is unavailable for the first attempt at every third page.
#[derive(Clone, Default)]
struct Server {
    tries: Arc<Mutex<HashMap<u32, u32>>>,
    attempts: Arc<AtomicUsize>,
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

impl Server {
    fn fetch(&self, page: u32) -> Deferred<String> {
        let server = self.clone();
        defer_to_thread(move || {
            server.attempts.fetch_add(1, Ordering::SeqCst);
            let now = server.running.fetch_add(1, Ordering::SeqCst) + 1;
            server.peak.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(5));
            server.running.fetch_sub(1, Ordering::SeqCst);
            let tries = {
                let mut tries = server.tries.lock().unwrap();
                let n = tries.entry(page).or_insert(0);
                *n += 1;
                *n
            };
            if page.is_multiple_of(3) && tries == 1 {
                return Err(Failure::new(Unavailable));
            }
            Ok(format!(
                "page {page}: {} bytes (attempt {tries})",
                100 * page
            ))
        })
    }
}
