// The tests of `DeferredQueue`, written once and included by tests/queue.rs for each kind
// (module `send`: `Deferred`; module `local`: `LocalDeferred`).
//
// Ported: Twisted's twisted/test/test_defer.py, `OtherPrimitivesTests.test_queue`,
// `test_cancelQueueAfterSynchronousGet` and `test_cancelQueueAfterGet`, named at each test.

use std::sync::{Arc, Mutex};

use deferred_core::{Cancelled, QueueOverflow, QueueUnderflow};
use kind::{Deferred, DeferredQueue};

/// A list the gets' callbacks append to.
#[derive(Clone, Default)]
struct Gotten(Arc<Mutex<Vec<u32>>>);

impl Gotten {
    fn append(&self, d: Deferred<u32>) {
        let list = self.0.clone();
        drop(d.add_callback(move |v| {
            list.lock().unwrap().push(v);
            Ok(())
        }));
    }
    fn get(&self) -> Vec<u32> {
        self.0.lock().unwrap().clone()
    }
}

// Twisted: OtherPrimitivesTests.test_queue
#[test]
fn twisted_test_queue() {
    const N: u32 = 2;
    const M: u32 = 2;
    let queue = DeferredQueue::<u32>::with_limits(Some(N as usize), Some(M as usize));
    let gotten = Gotten::default();
    for _ in 0..M {
        gotten.append(queue.get());
    }
    assert!(queue.get().wait().unwrap_err().is::<QueueUnderflow>());
    for i in 0..M {
        queue.put(i).unwrap();
        assert_eq!(gotten.get(), (0..=i).collect::<Vec<_>>());
    }
    for i in 0..N {
        queue.put(N + i).unwrap();
        assert_eq!(gotten.get(), (0..M).collect::<Vec<_>>());
    }
    let QueueOverflow(back) = queue.put(99).unwrap_err();
    assert_eq!(back, 99);

    let gotten = Gotten::default();
    for i in 0..N {
        gotten.append(queue.get());
        assert_eq!(gotten.get(), (N..=N + i).collect::<Vec<_>>());
    }

    let queue = DeferredQueue::<u32>::new();
    let gotten = Gotten::default();
    for _ in 0..N {
        gotten.append(queue.get());
    }
    for i in 0..N {
        queue.put(i).unwrap();
    }
    assert_eq!(gotten.get(), (0..N).collect::<Vec<_>>());

    let queue = DeferredQueue::<u32>::with_limits(Some(0), None);
    assert!(queue.put(1).is_err());
    let queue = DeferredQueue::<u32>::with_limits(None, Some(0));
    assert!(queue.get().wait().unwrap_err().is::<QueueUnderflow>());
}

// Twisted: OtherPrimitivesTests.test_cancelQueueAfterSynchronousGet
#[test]
fn cancelling_a_get_that_fired_at_once_does_nothing() {
    let queue = DeferredQueue::<u32>::new();
    queue.put(1).unwrap();
    let d = queue.get();
    d.cancel();
    assert_eq!(d.wait().unwrap(), 1);
    assert_eq!(queue.waiting(), 0);
}

// Twisted: OtherPrimitivesTests.test_cancelQueueAfterGet
#[test]
fn a_cancelled_get_leaves_the_line_and_the_next_put_goes_to_the_one_after_it() {
    let queue = DeferredQueue::<u32>::new();
    let (a, b, c) = (queue.get(), queue.get(), queue.get());
    b.cancel();
    assert_eq!(queue.waiting(), 2);
    assert!(b.wait().unwrap_err().is::<Cancelled>());
    queue.put(1).unwrap();
    queue.put(2).unwrap();
    assert_eq!((a.wait().unwrap(), c.wait().unwrap()), (1, 2));
    assert_eq!(queue.len(), 0);
    // The next get is served from what is put next, not from the cancelled one's turn.
    queue.put(3).unwrap();
    assert_eq!(queue.get().wait().unwrap(), 3);
}

#[test]
fn items_and_gets_are_served_first_come_first_served() {
    let queue = DeferredQueue::<u32>::new();
    for i in 0..5 {
        queue.put(i).unwrap();
    }
    let got: Vec<_> = (0..5).map(|_| queue.get().wait().unwrap()).collect();
    assert_eq!(got, [0, 1, 2, 3, 4]);
    assert!(queue.is_empty());
}

#[test]
fn a_cancelled_get_frees_its_place_in_the_backlog() {
    let queue = DeferredQueue::<u32>::with_limits(None, Some(1));
    let first = queue.get();
    assert!(queue.get().wait().unwrap_err().is::<QueueUnderflow>());
    first.cancel();
    let second = queue.get();
    queue.put(5).unwrap();
    assert_eq!(second.wait().unwrap(), 5);
    assert_eq!((queue.size(), queue.backlog()), (None, Some(1)));
}

#[test]
fn a_dropped_get_leaves_the_line_and_loses_no_item() {
    let queue = DeferredQueue::<u32>::new();
    let here = line!() + 1;
    let dropped = queue.get();
    let waiting = queue.get();
    drop(dropped); // as `tokio::select!` drops the get when another branch wins
    assert_eq!(queue.waiting(), 1);
    queue.put(1).unwrap();
    assert_eq!(waiting.wait().unwrap(), 1);
    // A hundred gets dropped unanswered, then a hundred puts: every item is kept.
    for _ in 0..100 {
        drop(queue.get());
    }
    assert_eq!(queue.waiting(), 0);
    for i in 0..100 {
        queue.put(i).unwrap();
    }
    assert_eq!(queue.len(), 100);
    assert_eq!(queue.get().wait().unwrap(), 0);
    drop(queue);
    // Nobody is told that a get nobody holds never got an item.
    let marker = format!("{}:{here}:", file!());
    assert_eq!(super::support::unhandled(&marker), 0);
}

/// A get dropped after it was handed its item, before anything took it — as `tokio::select!`
/// drops the get of a branch it did not take, however the item came — gives the item back, to
/// the queue's front, or to the oldest get waiting.
#[test]
fn a_get_dropped_with_its_item_unread_gives_it_back() {
    let queue = DeferredQueue::<u32>::new();
    // Handed while it waited.
    let get = queue.get();
    queue.put(1).unwrap();
    drop(get);
    assert_eq!(queue.len(), 1);
    // Handed at once, from the queue: the item goes back to the front, before the ones after it.
    queue.put(2).unwrap();
    let get = queue.get();
    drop(get);
    assert_eq!((queue.len(), queue.get().wait().unwrap()), (2, 1));
    // To the oldest get waiting, if one is.
    let given = queue.get(); // takes 2
    let waiting = queue.get();
    drop(given);
    assert_eq!((queue.len(), waiting.wait().unwrap()), (0, 2));
    // Taken by a step, or by the end, it is the consumer's: nothing goes back.
    queue.put(3).unwrap();
    let seen = queue.get().add_callback(|item| Ok(item * 10));
    assert_eq!(seen.wait().unwrap(), 30);
    queue.put(4).unwrap();
    assert_eq!(queue.get().wait().unwrap(), 4);
    assert!(queue.is_empty());
    // With a size limit reached meanwhile, the item given back is kept all the same.
    let limited = DeferredQueue::<u32>::with_limits(Some(1), None);
    limited.put(5).unwrap();
    let get = limited.get();
    limited.put(6).unwrap();
    drop(get);
    assert_eq!(limited.len(), 2);
    assert_eq!(limited.get().wait().unwrap(), 5);
}

#[test]
fn a_get_converted_by_map_err_and_dropped_loses_no_item() {
    let queue = DeferredQueue::<u32>::new();
    let converted = queue.get().map_err(|failure| failure);
    drop(converted); // nobody can see the get's item now
    assert_eq!(queue.waiting(), 0);
    queue.put(9).unwrap();
    assert_eq!(queue.len(), 1);
    assert_eq!(queue.get().wait().unwrap(), 9);
}

#[test]
fn dropped_gets_do_not_count_against_the_backlog() {
    let queue = DeferredQueue::<u32>::with_limits(None, Some(4));
    for _ in 0..4 {
        drop(queue.get());
    }
    let waiting = queue.get(); // not refused: the four dropped gets left the line
    queue.put(7).unwrap();
    assert_eq!(waiting.wait().unwrap(), 7);
    // A line that grows by gets dropped unanswered is swept as it grows.
    let unlimited = DeferredQueue::<u32>::new();
    for _ in 0..10_000 {
        drop(unlimited.get());
    }
    assert!(format!("{unlimited:?}").contains("waiting: 0"));
}

#[test]
fn a_get_dropped_with_a_step_left_still_gets_its_item() {
    let queue = DeferredQueue::<u32>::new();
    let got = Gotten::default();
    got.append(queue.get()); // the Deferred is dropped, its step is not
    queue.put(3).unwrap();
    assert_eq!(got.get(), [3]);
    assert!(queue.is_empty());
}

#[test]
fn a_put_inside_a_gets_callback_goes_to_the_next_get_after_it_returns() {
    let queue = DeferredQueue::<u32>::new();
    let order = Arc::new(Mutex::new(Vec::new()));
    let (q, o) = (queue.clone(), order.clone());
    let first = queue.get().add_callback(move |v| {
        o.lock().unwrap().push(format!("first got {v}"));
        q.put(v + 1).unwrap();
        o.lock().unwrap().push("first put".to_string());
        Ok(v)
    });
    let o = order.clone();
    let second = queue.get().add_callback(move |v| {
        o.lock().unwrap().push(format!("second got {v}"));
        Ok(v)
    });
    queue.put(1).unwrap();
    assert_eq!(
        *order.lock().unwrap(),
        ["first got 1", "first put", "second got 2"]
    );
    assert_eq!((first.wait().unwrap(), second.wait().unwrap()), (1, 2));
}

#[test]
fn a_queue_dropped_with_gets_waiting_fails_them_never_fired() {
    let queue = DeferredQueue::<u32>::new();
    let waiting = queue.get();
    drop(queue);
    assert!(
        waiting
            .wait()
            .unwrap_err()
            .is::<deferred_core::NeverFired>()
    );
}

#[test]
fn a_hundred_thousand_waiters_are_released_in_constant_stack() {
    super::support::on_small_stack(|| {
        const WAITERS: u32 = 100_000;
        // Each waiter's callback puts the next item: the release of one releases the next.
        let queue = DeferredQueue::<u32>::new();
        let released = super::support::Count::new();
        let gets: Vec<_> = (0..WAITERS)
            .map(|_| {
                let (q, r) = (queue.clone(), released.clone());
                queue.get().add_callback(move |v| {
                    r.bump();
                    if v + 1 < WAITERS {
                        q.put(v + 1).unwrap();
                    }
                    Ok(v)
                })
            })
            .collect();
        queue.put(0).unwrap();
        assert_eq!(released.get(), WAITERS as usize);
        for (i, get) in gets.into_iter().enumerate() {
            assert_eq!(get.wait().unwrap(), i as u32);
        }
        // And released by puts from outside, one by one.
        let gets: Vec<_> = (0..WAITERS).map(|_| queue.get()).collect();
        for i in 0..WAITERS {
            queue.put(i).unwrap();
        }
        assert!(gets.into_iter().map(|g| g.wait().unwrap()).eq(0..WAITERS));
    });
}

/// Rule 1 (FIFO) with rule 3 (a get dropped unread gives its item back): gets handed
/// items and dropped unread, in the order they were made (as a `Vec` of them is
/// dropped), leave the items in the order they were put. They came back reversed: each
/// went to the very front, before the one given back just before it.
#[test]
fn gets_dropped_unread_in_the_order_they_were_made_keep_the_items_in_order() {
    let queue = DeferredQueue::<u32>::new();
    for i in 0..5 {
        queue.put(i).unwrap();
    }
    let batch: Vec<_> = (0..3).map(|_| queue.get()).collect(); // hold 0, 1, 2
    drop(batch); // dropped unread, first to last
    let left: Vec<_> = (0..5).map(|_| queue.get().wait().unwrap()).collect();
    assert_eq!(left, [0, 1, 2, 3, 4]);

    // Handed while they waited, the same.
    let batch: Vec<_> = (0..3).map(|_| queue.get()).collect();
    for i in 10..13 {
        queue.put(i).unwrap();
    }
    queue.put(13).unwrap(); // kept
    drop(batch);
    let left: Vec<_> = (0..4).map(|_| queue.get().wait().unwrap()).collect();
    assert_eq!(left, [10, 11, 12, 13]);
    assert!(queue.is_empty());
}

/// A step added to a get that holds its item takes the item; what the step gives, left unread
/// in the Deferred it makes, is the consumer's, and goes nowhere when that Deferred is dropped:
/// not back to the queue as if it were an item.
#[test]
fn a_steps_output_left_unread_does_not_go_back_to_the_queue() {
    let queue = DeferredQueue::<u32>::new();
    queue.put(3).unwrap();
    let stepped = queue.get().add_callback(|item| Ok(item * 10));
    drop(stepped);
    assert!(queue.is_empty(), "{queue:?}");
    // The same, with the item handed to a get that waited.
    let stepped = queue.get().add_callback(|item| Ok(item * 10));
    queue.put(4).unwrap();
    drop(stepped);
    assert!(queue.is_empty(), "{queue:?}");
}
