//! Many threads posting to one loop's inbox at once: each fires its own `HomeResolver`s, one
//! after the other, and after each posts plain work through a `LoopHandle`. The loop's test
//! drives the loop until [`Posters::done`] (while the posters post, or once they all have:
//! [`Posters::wait_posted`]), then calls [`Posters::check`]: every result came home and ran its
//! step on the loop's thread, every post ran there, and each poster's results and posts ran in
//! the one order it made them (an inbox runs what was posted in order, and a chain a result
//! fires runs before the next item). A wake-up lost between a post and a drain leaves the loop
//! asleep with work queued: the loop's test bounds its wait, and fails instead of hanging.

use std::sync::{Arc, Barrier, Mutex, PoisonError};
use std::thread::{self, JoinHandle};

use deferred_core::{Failure, Inbox, LocalDeferred};

/// What ran of one poster's, in the order it ran: a result's step (`Result`) or a plain post
/// (`Post`), its index, and whether it ran on the loop's thread.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Ran {
    Result(u32, bool),
    Post(u32, bool),
}

/// Per poster, what ran of its work.
type Log = Arc<Mutex<Vec<Vec<Ran>>>>;

fn note(log: &Log, poster: u32, ran: Ran) {
    log.lock().unwrap_or_else(PoisonError::into_inner)[poster as usize].push(ran);
}

pub struct Posters {
    threads: u32,
    each: u32,
    /// The chains of every result posted, each ended by a step that notes it in `log`.
    chains: Vec<LocalDeferred<()>>,
    log: Log,
    posters: Vec<JoinHandle<()>>,
}

impl Posters {
    /// Starts `threads` posters on `inbox`, each posting `each` results and `each` plain works,
    /// all released at once. Call it on the loop's thread.
    pub fn start(inbox: &Inbox, threads: u32, each: u32) -> Posters {
        let home = thread::current().id();
        let log: Log = Arc::new(Mutex::new(vec![Vec::new(); threads as usize]));
        let barrier = Arc::new(Barrier::new(threads as usize));
        let mut chains = Vec::new();
        let mut posters = Vec::new();
        for poster in 0..threads {
            let mut resolvers = Vec::new();
            for index in 0..each {
                let (result, resolver) = inbox.pending::<u32, Failure>();
                let log = log.clone();
                chains.push(result.add_callback(move |value| {
                    assert_eq!(value, index, "a result is its own resolver's value");
                    let home = thread::current().id() == home;
                    note(&log, poster, Ran::Result(index, home));
                    Ok(())
                }));
                resolvers.push(resolver);
            }
            let handle = inbox.handle();
            let log = log.clone();
            let barrier = barrier.clone();
            posters.push(thread::spawn(move || {
                barrier.wait();
                for (index, resolver) in (0..).zip(resolvers) {
                    resolver.callback(index);
                    let log = log.clone();
                    let posted = handle.post(move || {
                        let home = thread::current().id() == home;
                        note(&log, poster, Ran::Post(index, home));
                    });
                    assert!(posted.is_ok(), "the loop runs until the test ends");
                    // Now and then, let the loop drain while this poster waits: posts land
                    // before, during and after drains.
                    if index % 64 == 63 {
                        thread::yield_now();
                    }
                }
            }));
        }
        Posters {
            threads,
            each,
            chains,
            log,
            posters,
        }
    }

    /// Waits until every poster has posted everything: then the work waits in the inbox, piled
    /// up, for the loop's next drain (which every post woke).
    pub fn wait_posted(&mut self) {
        for poster in self.posters.drain(..) {
            poster.join().expect("a poster does not panic");
        }
    }

    /// Whether every result and every post has run.
    pub fn done(&self) -> bool {
        let log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        log.iter().map(Vec::len).sum::<usize>() == (2 * self.threads * self.each) as usize
    }

    /// Once [`done`](Posters::done): each poster's results and posts ran in its order, all on
    /// the loop's thread, and every chain ended well.
    pub fn check(mut self) {
        self.wait_posted();
        let in_order: Vec<Ran> = (0..self.each)
            .flat_map(|index| [Ran::Result(index, true), Ran::Post(index, true)])
            .collect();
        let log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        for (poster, ran) in log.iter().enumerate() {
            if let Some(at) = (0..ran.len()).find(|&at| ran.get(at) != in_order.get(at)) {
                panic!(
                    "poster {poster}'s work ran out of its order or off the loop's thread: {:?} \
                     where {:?} was due",
                    ran[at], in_order[at]
                );
            }
            assert_eq!(ran.len(), in_order.len(), "poster {poster}'s work all ran");
        }
        drop(log);
        for chain in self.chains {
            chain.wait().expect("every chain ends well");
        }
    }
}
