//! `DeferredQueue`. The tests are written once (tests/queue/common.rs) and run here for both
//! kinds; a test of gets and puts on several threads follows, for the `Send` kind.

mod support;

mod send {
    mod kind {
        pub use deferred_core::{Deferred, DeferredQueue};
    }
    include!("queue/common.rs");
}

mod local {
    #![allow(clippy::arc_with_non_send_sync)]
    mod kind {
        pub use deferred_core::LocalDeferred as Deferred;
        pub use deferred_core::local::DeferredQueue;
    }
    include!("queue/common.rs");
}

#[test]
fn every_item_put_from_many_threads_reaches_exactly_one_get() {
    use deferred_core::DeferredQueue;
    let queue = DeferredQueue::<u32>::new();
    let gets: Vec<_> = (0..400).map(|_| queue.get()).collect();
    let putters: Vec<_> = (0..4)
        .map(|t| {
            let queue = queue.clone();
            std::thread::spawn(move || {
                for i in 0..200 {
                    queue.put(t * 1000 + i).unwrap();
                }
            })
        })
        .collect();
    for putter in putters {
        putter.join().unwrap();
    }
    let mut got: Vec<_> = gets.into_iter().map(|g| g.wait().unwrap()).collect();
    while !queue.is_empty() {
        got.push(queue.get().wait().unwrap());
    }
    got.sort_unstable();
    let mut expected: Vec<_> = (0..4)
        .flat_map(|t| (0..200).map(move |i| t * 1000 + i))
        .collect();
    expected.sort_unstable();
    assert_eq!(got, expected);
}

#[test]
fn a_get_given_to_a_combinator_whose_output_was_dropped_loses_no_item() {
    use deferred_core::{DeferredQueue, gather_results};
    let queue = DeferredQueue::<u32>::new();
    let both = gather_results(vec![queue.get(), queue.get()]);
    drop(both);
    assert_eq!(queue.waiting(), 0);
    queue.put(1).unwrap();
    queue.put(2).unwrap();
    assert_eq!(queue.len(), 2);
    // A combinator still waited on gets its items.
    let both = gather_results(vec![queue.get(), queue.get(), queue.get()]);
    queue.put(3).unwrap();
    assert_eq!(both.wait().unwrap(), [1, 2, 3]);
}

/// A combinator that has decided leaves its other inputs running: they are not closed, and a
/// late failure among them is still reported (as `gather_results` says).
#[test]
fn an_input_left_running_by_a_decided_combinator_is_not_closed() {
    use deferred_core::{Deferred, Failure, UnhandledCapture, gather_results};
    let capture = UnhandledCapture::start();
    let (a, ra) = Deferred::<u32>::pending();
    let (b, rb) = Deferred::<u32>::pending();
    let both = gather_results([a, b]);
    rb.errback(Failure::msg("b failed"));
    assert!(both.wait().is_err());
    assert!(!ra.is_closed());
    assert!(ra.try_fire(Err(Failure::msg("a failed late"))).is_ok());
    let reported: Vec<String> = capture.take().iter().map(|f| f.to_string()).collect();
    assert_eq!(reported, ["a failed late"]);
}

/// `tokio::select!` evaluates every branch's future before it polls any: a `get` made there,
/// handed an item by a branch that then wins, is dropped unread. The item is not lost.
#[cfg(feature = "tokio")]
#[test]
fn a_get_in_a_select_whose_other_branch_wins_loses_no_item() {
    use deferred_core::DeferredQueue;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let queue = DeferredQueue::<u32>::new();
    let mut taken = Vec::new();
    runtime.block_on(async {
        for round in 0..3 {
            tokio::select! {
                biased;
                () = async { queue.put(round).unwrap() } => {}
                item = queue.get() => taken.push(item.unwrap()),
            }
        }
    });
    assert!(taken.is_empty(), "the first branch always wins: {taken:?}");
    assert_eq!(queue.len(), 3);
    let left: Vec<u32> = (0..3).map(|_| queue.get().wait().unwrap()).collect();
    assert_eq!(left, [0, 1, 2]);
}

/// Stress: 4 threads put while 8 threads get, lined up by a barrier each round; each get is
/// waited for, cancelled at once, dropped at once, dropped after a moment (racing the put that
/// hands it an item), or read by a step. Every item put is delivered exactly once, or is back in
/// the queue, whatever the races.
#[test]
fn items_put_while_gets_are_cancelled_and_dropped_on_many_threads_are_each_delivered_once() {
    use deferred_core::DeferredQueue;
    use std::sync::{Arc, Barrier, Mutex};
    const PUTTERS: usize = 4;
    const GETTERS: usize = 8;
    const GETS: usize = 16; // per getter and round
    const ROUNDS: usize = 100;
    const ITEMS: usize = GETTERS * GETS; // per round: enough for every get
    let queue = DeferredQueue::<u32>::new();
    let got = Arc::new(Mutex::new(Vec::new()));
    for round in 0..ROUNDS {
        let barrier = Arc::new(Barrier::new(PUTTERS + GETTERS));
        std::thread::scope(|scope| {
            for p in 0..PUTTERS {
                let (queue, barrier) = (queue.clone(), barrier.clone());
                scope.spawn(move || {
                    barrier.wait();
                    for i in (p..ITEMS).step_by(PUTTERS) {
                        queue.put((round * ITEMS + i) as u32).unwrap();
                        if i % 3 == 0 {
                            std::thread::yield_now();
                        }
                    }
                });
            }
            for g in 0..GETTERS {
                let (queue, barrier, got) = (queue.clone(), barrier.clone(), got.clone());
                scope.spawn(move || {
                    let mut seed = (round * GETTERS + g) as u64 * 0x9E37_79B9 + 1;
                    let mut waiting = Vec::new();
                    barrier.wait();
                    for _ in 0..GETS {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        let get = queue.get();
                        match seed % 5 {
                            0 => waiting.push(get),
                            1 => {
                                get.cancel();
                                waiting.push(get);
                            }
                            2 => drop(get),
                            3 => {
                                std::thread::yield_now();
                                drop(get);
                            }
                            _ => {
                                let got = got.clone();
                                drop(get.add_callback(move |item| {
                                    got.lock().unwrap().push(item);
                                    Ok(())
                                }));
                            }
                        }
                    }
                    for get in waiting {
                        match get.wait() {
                            Ok(item) => got.lock().unwrap().push(item),
                            Err(failure) => assert!(failure.is_cancelled(), "{failure}"),
                        }
                    }
                });
            }
        });
        // Whatever is left was given back, or put after every get of the round was served.
        while !queue.is_empty() {
            got.lock().unwrap().push(queue.get().wait().unwrap());
        }
        assert_eq!(queue.waiting(), 0, "round {round}: a get was left waiting");
        let mut got = got.lock().unwrap();
        got.sort_unstable();
        let expected: Vec<u32> = (0..((round + 1) * ITEMS) as u32).collect();
        assert_eq!(
            *got, expected,
            "round {round}: an item was lost or delivered twice"
        );
    }
}
