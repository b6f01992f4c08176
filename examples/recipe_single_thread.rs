//! Recipe: a single-thread loop — chains whose state is `Rc<RefCell<..>>`, blocking work on the
//! pool, results coming home through the loop's `Inbox`, a timeout on the loop's clock. No
//! tokio, no lock.
//!
//! ```text
//! cargo run --example recipe_single_thread
//! ```
//!
//! The loop is hand-written: it sleeps on a channel that the inbox's wake-up sends to. With a
//! toolkit, its own loop does that (see `Inbox::new`); with tokio or calloop, the `tokio` and
//! `calloop` features wire the inbox in for you.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use deferred::{Failure, Inbox, LocalDeferred, TimedOut, chain};

// recipe: begin
/// Looks `name` up: from the cache (on this thread, no lock) or by a slow query on the pool,
/// whose answer comes home to this thread and fills the cache. A query slower than 500 ms
/// fails with `TimedOut`.
fn lookup(
    inbox: &Inbox,
    cache: &Rc<RefCell<HashMap<String, u32>>>,
    name: &str,
) -> LocalDeferred<String> {
    if let Some(id) = cache.borrow().get(name) {
        return LocalDeferred::succeed(format!("{name}: #{id} (cached)"));
    }
    let (cache, key) = (cache.clone(), name.to_owned());
    let query = inbox.defer_to_thread(move || slow_query(&key)); // runs on the pool
    let name = name.to_owned();
    let name2 = name.clone(); // the `then`s move `name`; the `catch` needs its own
    chain! {
        query.add_timeout(Duration::from_millis(500), &inbox.clock())
        then |id| {                                     // back on this thread
            cache.borrow_mut().insert(name.clone(), id);
            format!("{name}: #{id}")
        }
        catch |e: TimedOut| format!("{name2}: {e}")
    }
}
// recipe: end

/// A blocking query: "zed" takes too long.
fn slow_query(name: &str) -> Result<u32, Failure> {
    let wait = if name == "zed" { 2_000 } else { 20 };
    std::thread::sleep(Duration::from_millis(wait));
    Ok(name.bytes().map(u32::from).sum())
}

fn main() {
    // The loop: it sleeps until the inbox's wake-up says something was posted.
    let (wake, woken) = std::sync::mpsc::channel::<()>();
    let inbox = Inbox::new(move || {
        let _ = wake.send(());
    });
    let cache = Rc::new(RefCell::new(HashMap::new()));

    let first = lookup(&inbox, &cache, "alice").add_callback(|line| {
        println!("{line}");
        Ok(())
    });
    let slow = lookup(&inbox, &cache, "zed").add_callback(|line| {
        println!("{line}");
        Ok(())
    });
    while !(first.is_fired() && slow.is_fired()) {
        woken.recv().unwrap(); // sleep until work is posted
        inbox.run_pending(); // run it here, on the loop's thread
    }
    // The second lookup of alice is answered from the cache, at once.
    println!("{}", lookup(&inbox, &cache, "alice").wait().unwrap());
    first.wait().unwrap();
    slow.wait().unwrap();
}
