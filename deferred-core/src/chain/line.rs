//! A line of waiting Resolvers by ticket (the order they came): a `DeferredQueue`'s gets, a
//! `DeferredSemaphore`'s acquires. A waiter whose Deferred was dropped (`Resolver::is_closed`)
//! is not counted as waiting, and leaves the line at the next sweep, due whenever the line has
//! doubled since the last one: a loop of waiters dropped unanswered does not grow it for ever.

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};

use super::Resolver;

/// The fewest waiters a line is swept at.
const MIN_SWEEP: usize = 16;

pub(crate) struct Line<T> {
    by_ticket: BTreeMap<u64, Resolver<T>>,
    /// The length at which the next sweep is due: twice what the last one left.
    sweep_at: usize,
}

impl<T> Line<T> {
    pub(crate) fn new() -> Line<T> {
        Line {
            by_ticket: BTreeMap::new(),
            sweep_at: MIN_SWEEP,
        }
    }

    /// The waiters whose Deferred was not dropped.
    pub(crate) fn open(&self) -> usize {
        self.by_ticket
            .values()
            .filter(|waiter| !waiter.is_closed())
            .count()
    }

    /// Whether the line has doubled since the last sweep.
    pub(crate) fn sweep_due(&self) -> bool {
        self.by_ticket.len() >= self.sweep_at
    }

    /// Takes the waiters whose Deferred was dropped out of the line, for the caller to drop
    /// after its lock is released.
    pub(crate) fn sweep(&mut self) -> Vec<Resolver<T>> {
        let dropped = self
            .by_ticket
            .extract_if(.., |_, waiter| waiter.is_closed())
            .map(|(_, waiter)| waiter)
            .collect();
        self.sweep_at = (self.by_ticket.len() * 2).max(MIN_SWEEP);
        dropped
    }
}

/// The waiters by ticket.
impl<T> Deref for Line<T> {
    type Target = BTreeMap<u64, Resolver<T>>;

    fn deref(&self) -> &Self::Target {
        &self.by_ticket
    }
}

impl<T> DerefMut for Line<T> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.by_ticket
    }
}
