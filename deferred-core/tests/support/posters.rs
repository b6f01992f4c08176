//! Many threads posting to one loop's inbox at once, while the loop drains it: each fires its
//! own `HomeResolver`s, one after the other, and between them posts plain work through a
//! `LoopHandle`. The loop's test drives the loop until [`Posters::done`] (at once, or once
//! every poster is done: [`Posters::wait_posted`]), then calls
//! [`Posters::check`]: every result came home and ran its step on the loop's thread, every post
//! ran there, and each poster's results and posts ran in the order it made them (an inbox runs
//! what was posted in order). A wake-up lost between a post and a drain leaves the loop asleep
//! with work queued: the loop's test bounds its wait, and fails instead of hanging.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Barrier, Mutex, PoisonError};
use std::thread::{self, JoinHandle};

use deferred_core::{Failure, Inbox, LocalDeferred};

/// What one poster's work saw when it ran on the loop: its index, and whether it ran on the
/// loop's thread.
type Ran = Vec<(u32, bool)>;

pub struct Posters {
    threads: u32,
    each: u32,
    /// The chains of every result posted, each ended by a step that notes it in `results`.
    chains: Vec<LocalDeferred<()>>,
    /// Per poster, the results' steps as they ran (on the loop's thread: an `Rc`).
    results: Rc<RefCell<Vec<Ran>>>,
    /// Per poster, the plain posts as they ran.
    posts: Arc<Mutex<Vec<Ran>>>,
    posters: Vec<JoinHandle<()>>,
}

impl Posters {
    /// Starts `threads` posters on `inbox`, each posting `each` results and `each` plain works,
    /// all released at once. Call it on the loop's thread.
    pub fn start(inbox: &Inbox, threads: u32, each: u32) -> Posters {
        let home = thread::current().id();
        let results: Rc<RefCell<Vec<Ran>>> =
            Rc::new(RefCell::new(vec![Vec::new(); threads as usize]));
        let posts: Arc<Mutex<Vec<Ran>>> = Arc::new(Mutex::new(vec![Vec::new(); threads as usize]));
        let barrier = Arc::new(Barrier::new(threads as usize));
        let mut chains = Vec::new();
        let mut posters = Vec::new();
        for poster in 0..threads {
            let mut resolvers = Vec::new();
            for index in 0..each {
                let (result, resolver) = inbox.pending::<u32, Failure>();
                let noted = results.clone();
                chains.push(result.add_callback(move |value| {
                    assert_eq!(value, index, "a result is its own resolver's value");
                    noted.borrow_mut()[poster as usize]
                        .push((index, thread::current().id() == home));
                    Ok(())
                }));
                resolvers.push(resolver);
            }
            let handle = inbox.handle();
            let posts = posts.clone();
            let barrier = barrier.clone();
            posters.push(thread::spawn(move || {
                barrier.wait();
                for (index, resolver) in (0..).zip(resolvers) {
                    resolver.callback(index);
                    let posts = posts.clone();
                    let posted = handle.post(move || {
                        posts.lock().unwrap_or_else(PoisonError::into_inner)[poster as usize]
                            .push((index, thread::current().id() == home));
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
            results,
            posts,
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
        let total = (self.threads * self.each) as usize;
        let ran = |lists: &[Ran]| lists.iter().map(Vec::len).sum::<usize>();
        ran(&self.results.borrow()) == total
            && ran(&self.posts.lock().unwrap_or_else(PoisonError::into_inner)) == total
    }

    /// Once [`done`](Posters::done): each poster's results and posts ran in its order, all on
    /// the loop's thread, and every chain ended well.
    pub fn check(mut self) {
        self.wait_posted();
        let in_order: Ran = (0..self.each).map(|index| (index, true)).collect();
        for (poster, ran) in self.results.borrow().iter().enumerate() {
            assert!(
                *ran == in_order,
                "poster {poster}'s results ran out of order or off the loop's thread"
            );
        }
        let posts = self.posts.lock().unwrap_or_else(PoisonError::into_inner);
        for (poster, ran) in posts.iter().enumerate() {
            assert!(
                *ran == in_order,
                "poster {poster}'s posts ran out of order or off the loop's thread"
            );
        }
        for chain in self.chains {
            chain.wait().expect("every chain ends well");
        }
    }
}
