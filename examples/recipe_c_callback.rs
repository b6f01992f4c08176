//! Recipe: a C-style callback API as a Deferred, with a canceller attached once the request id
//! is known.
//!
//! ```text
//! cargo run --example recipe_c_callback
//! ```
//!
//! The API (`c_api` below stands in for a C library) starts a request with a callback and hands
//! back a request id only once the call is made; the callback runs later, on the library's own
//! thread; `lookup_cancel(id)` stops a request, whose callback is then never called. With a real
//! C library the boxed closure is the `void *user_data` (`Box::into_raw`) and an `extern "C"`
//! trampoline calls it; the Deferred side is the same.

use std::sync::{Arc, Mutex};

use deferred::{Deferred, Failure};

// recipe: begin
/// `lookup(name)` as a Deferred: the library's callback fires it, and cancelling it cancels
/// the request.
fn lookup(name: &str) -> Deferred<u32> {
    let (answer, resolver) = Deferred::<u32>::pending();
    // Two places need the Resolver: the callback, to fire it, and the code after the call, to
    // give it a canceller once the request id is known.
    let resolver = Arc::new(Mutex::new(Some(resolver)));
    let for_callback = resolver.clone();
    let id = c_api::lookup_start(
        name,
        Box::new(move |status: Result<u32, i32>| {
            if let Some(resolver) = for_callback.lock().unwrap().take() {
                match status {
                    Ok(value) => resolver.callback(value),
                    Err(code) => resolver.errback(Failure::msg(format!("lookup error {code}"))),
                }
            }
        }),
    );
    // The request id exists only now. (Had the chain been cancelled already, the canceller
    // would run at once: the cancel happened.)
    if let Some(resolver) = &*resolver.lock().unwrap() {
        resolver.set_canceller(move || c_api::lookup_cancel(id));
    }
    answer
}
// recipe: end

fn main() {
    let id = lookup("alice").wait().unwrap();
    println!("alice has id {id}");

    let missing = lookup("zed").wait().unwrap_err();
    println!("zed: {missing}");

    let slow = lookup("slow");
    slow.cancel(); // cancels the request in the library
    assert!(slow.wait().unwrap_err().is_cancelled());
    println!(
        "slow: cancelled; requests the library cancelled: {}",
        c_api::cancelled()
    );
}

/// A stand-in for a C library with a callback API.
mod c_api {
    use std::collections::HashSet;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    pub type Callback = Box<dyn FnOnce(Result<u32, i32>) + Send>;

    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    static CANCELLED: Mutex<Option<HashSet<u64>>> = Mutex::new(None);

    /// Starts a lookup; `callback` runs later on the library's thread, unless the request is
    /// cancelled first. Returns the request id.
    pub fn lookup_start(name: &str, callback: Callback) -> u64 {
        let id = NEXT_ID.fetch_add(1, Ordering::SeqCst);
        let name = name.to_owned();
        std::thread::spawn(move || {
            let delay = if name == "slow" { 200 } else { 10 };
            std::thread::sleep(Duration::from_millis(delay));
            if is_cancelled(id) {
                return; // a cancelled request never calls back
            }
            callback(if name == "alice" { Ok(7) } else { Err(404) });
        });
        id
    }

    /// Cancels request `id`: its callback will not be called.
    pub fn lookup_cancel(id: u64) {
        CANCELLED
            .lock()
            .unwrap()
            .get_or_insert_with(HashSet::new)
            .insert(id);
    }

    fn is_cancelled(id: u64) -> bool {
        CANCELLED
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(|set| set.contains(&id))
    }

    /// How many requests were cancelled.
    pub fn cancelled() -> usize {
        CANCELLED.lock().unwrap().as_ref().map_or(0, HashSet::len)
    }
}
