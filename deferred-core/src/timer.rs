//! One shared timer thread: it sleeps until the earliest deadline and runs the calls that are
//! due. Used by clocks of loops that have no timers of their own ([`InboxClock`]: the call it
//! runs only posts to the loop, which does the real work on its own thread), and by
//! [`ThreadClock`], real time for programs with no loop (its calls report their panics).
//!
//! [`InboxClock`]: crate::InboxClock
//! [`ThreadClock`]: crate::ThreadClock
#![forbid(unsafe_code)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

type Call = Box<dyn FnOnce() + Send>;

struct Timers {
    due: Mutex<Schedule>,
    changed: Condvar,
}

#[derive(Default)]
struct Schedule {
    /// By deadline, then by order of scheduling.
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    calls: std::collections::HashMap<u64, Call>,
    next: u64,
}

fn timers() -> &'static Timers {
    static TIMERS: OnceLock<&'static Timers> = OnceLock::new();
    TIMERS.get_or_init(|| {
        let timers: &'static Timers = Box::leak(Box::new(Timers {
            due: Mutex::new(Schedule::default()),
            changed: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("deferred-timer".into())
            .spawn(move || timers.run())
            .expect("could not start the timer thread");
        timers
    })
}

impl Schedule {
    /// Drops the deadlines of cancelled calls, and the room they took.
    fn compact(&mut self) {
        let calls = &self.calls;
        self.heap.retain(|Reverse((_, id))| calls.contains_key(id));
        self.heap.shrink_to_fit();
        self.calls.shrink_to_fit();
    }
}

impl Timers {
    fn run(&self) {
        let mut schedule = self.due.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let now = Instant::now();
            match schedule.heap.peek() {
                Some(Reverse((deadline, _))) if *deadline <= now => {
                    let Some(Reverse((_, id))) = schedule.heap.pop() else {
                        continue;
                    };
                    if let Some(call) = schedule.calls.remove(&id) {
                        drop(schedule);
                        // A call only posts to a loop; a panic there must not stop the thread.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(call));
                        schedule = self.due.lock().unwrap_or_else(PoisonError::into_inner);
                    }
                }
                Some(Reverse((deadline, _))) => {
                    let wait = *deadline - now;
                    schedule = self
                        .changed
                        .wait_timeout(schedule, wait)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                None => {
                    schedule = self
                        .changed
                        .wait(schedule)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            }
        }
    }
}

/// A call scheduled by [`after`], for [`cancel`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct TimerId(u64);

/// Runs `call` on the timer thread once `delay` has passed (a delay too long to represent is
/// never reached: the call waits for ever, or until cancelled).
pub(crate) fn after(delay: Duration, call: impl FnOnce() + Send + 'static) -> TimerId {
    let timers = timers();
    let id = {
        let mut schedule = timers.due.lock().unwrap_or_else(PoisonError::into_inner);
        let id = schedule.next;
        schedule.next += 1;
        schedule.calls.insert(id, Box::new(call));
        if let Some(deadline) = Instant::now().checked_add(delay) {
            schedule.heap.push(Reverse((deadline, id)));
        }
        id
    };
    timers.changed.notify_one();
    TimerId(id)
}

/// Drops a call scheduled by [`after`] if it has not run yet. Its deadline stays in the heap
/// (skipped when it comes) until cancelled deadlines are half the heap: then the heap keeps
/// only the live ones, and both gives memory back — so timers set and cancelled for ever (a
/// long timeout per request) hold memory for the live ones only.
pub(crate) fn cancel(timer: TimerId) {
    let removed = {
        let mut schedule = timers().due.lock().unwrap_or_else(PoisonError::into_inner);
        let removed = schedule.calls.remove(&timer.0);
        if schedule.heap.len() > 2 * schedule.calls.len() + 16 {
            schedule.compact();
        }
        removed
    };
    // Dropped outside the lock: its captures may be anything.
    drop(removed);
}
