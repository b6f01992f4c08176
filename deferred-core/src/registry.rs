//! (Feature `registry`.) Every chain that has not fired, for a dump: [`pending_chains`].
//!
//! Each pending chain (made by `pending`/`with_canceller`, or by a helper that needs a link of
//! its own) enters a registry when it is made: a global one for the `Send` kind, one per thread
//! for the local kind. An entry is a `Weak` reference, so the registry never keeps a chain
//! alive; entries of chains that were dropped are pruned when the list has doubled since the
//! last prune, and those of chains that have fired when a dump finds them. (A weak reference
//! keeps the memory block of a dropped chain, not its contents: its steps, captures and result
//! are dropped with it, and the block is freed when its entry is pruned.) A chain knows where
//! and when it was made (two words, set at creation) and, under its lock, its steps and what it
//! waits on; the dump asks each chain, outside the registry's lock.
//!
//! The cost, measured in BENCHMARKS.md ("The pending-chain registry: its cost"): a clock read,
//! a weak reference and one push under a lock per pending chain made; nothing per step.
#![forbid(unsafe_code)]

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::panic::Location;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};
use std::{cell::RefCell, rc, sync};

/// Where and when a chain was made: kept in the chain, never changed.
pub(crate) struct Born {
    pub(crate) at: &'static Location<'static>,
    pub(crate) since: Instant,
}

impl Born {
    /// Made at the caller's location (`#[track_caller]` through `pending` and the helpers).
    #[track_caller]
    pub(crate) fn here() -> Born {
        Born {
            at: Location::caller(),
            since: Instant::now(),
        }
    }
}

/// What a chain says of itself; `None` once it has fired.
pub(crate) trait Inspect {
    fn inspect(&self) -> Option<Seen>;
}

/// One pending chain as it saw itself.
pub(crate) struct Seen {
    /// `Deferred` or `LocalDeferred`.
    pub(crate) kind: &'static str,
    /// The chain's address: what a chain waiting on it names it by.
    pub(crate) address: usize,
    pub(crate) born: (&'static Location<'static>, Instant),
    /// The helper that made it (`defer_to_thread`, `add_timeout`, `gather_results`, ...), if
    /// one said.
    pub(crate) made_by: Option<&'static str>,
    /// Its steps not run yet, in order.
    pub(crate) steps: Vec<&'static Location<'static>>,
    pub(crate) waits: Waits,
    /// The chain is input number `.1` of the combinator (or `map_err`) whose output chain is
    /// at address `.0`.
    pub(crate) feeds: Option<(usize, u32)>,
}

/// What a pending chain waits on, as it saw it (and, for a local chain fired from another
/// thread, as its thread's inbox sees it: `inbox::see_home`).
#[derive(Clone, Copy)]
pub(crate) enum Waits {
    Resolver,
    /// Its root is fired by a `HomeResolver` that has not fired yet.
    HomeResolver,
    /// Its `HomeResolver` fired (or was dropped): that is posted to the thread's inbox, not run
    /// yet.
    Inbox,
    /// A combinator's output (or `map_err`'s): this many of its inputs have not arrived.
    Inputs(usize),
    Chain {
        address: usize,
        created_at: &'static Location<'static>,
    },
    Running,
}

/// How a chain enters its kind's registry: an `Arc` the global one, an `Rc` this thread's.
pub(crate) trait Enter {
    fn enter(&self);
}

impl<X: Inspect + Send + Sync + 'static> Enter for sync::Arc<X> {
    fn enter(&self) {
        let weak: SharedEntry = sync::Arc::downgrade(self) as sync::Weak<X>;
        SHARED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(weak);
    }
}

impl<X: Inspect + 'static> Enter for rc::Rc<X> {
    fn enter(&self) {
        let weak: LocalEntry = rc::Rc::downgrade(self) as rc::Weak<X>;
        // A chain made while this thread's registry is being destroyed (at thread exit) is
        // not shown.
        let _ = LOCAL.try_with(|local| local.borrow_mut().push(weak));
    }
}

type SharedEntry = sync::Weak<dyn Inspect + Send + Sync>;
type LocalEntry = rc::Weak<dyn Inspect>;

static SHARED: Mutex<Entries<SharedEntry>> = Mutex::new(Entries::new());

thread_local! {
    static LOCAL: RefCell<Entries<LocalEntry>> = const { RefCell::new(Entries::new()) };
}

/// A registry's entries.
struct Entries<W> {
    list: Vec<W>,
    /// The length at which the next push first drops the entries of dropped chains.
    prune_at: usize,
}

/// The fewest entries a registry prunes at.
const MIN_PRUNE: usize = 64;
/// The room a registry makes at its first entry: twice what it prunes at, so that while fewer
/// than `MIN_PRUNE` chains are pending at once, registering allocates nothing after the first.
const FIRST_CAPACITY: usize = 2 * MIN_PRUNE;

impl<W: Entry> Entries<W> {
    const fn new() -> Entries<W> {
        Entries {
            list: Vec::new(),
            prune_at: MIN_PRUNE,
        }
    }

    /// Adds an entry; when the list has doubled since the last prune, first drops the entries
    /// of dropped chains (freeing no chain: they are gone; amortized constant time).
    fn push(&mut self, entry: W) {
        if self.list.capacity() == 0 {
            self.list.reserve_exact(FIRST_CAPACITY);
        }
        if self.list.len() >= self.prune_at {
            self.list.retain(|entry| !entry.is_dropped());
            self.prune_at = (self.list.len() * 2).max(MIN_PRUNE);
        }
        self.list.push(entry);
    }

    /// Drops the entries of dropped chains and of those in `fired`, and gives back the room
    /// the list no longer needs (after a burst of pending chains). Only a dump prunes so, and a
    /// dump is rare, so the list's room after one is what its live entries need, whatever the
    /// bursts before.
    fn prune(&mut self, fired: &HashSet<usize>) {
        self.list
            .retain(|entry| !entry.is_dropped() && !fired.contains(&entry.address()));
        self.prune_at = (self.list.len() * 2).max(MIN_PRUNE);
        self.list.shrink_to(self.prune_at.max(FIRST_CAPACITY));
    }
}

/// A registry's entry: a weak reference to a chain.
trait Entry: Clone {
    fn is_dropped(&self) -> bool;
    fn address(&self) -> usize;
    /// `None`: dropped; `Some(None)`: fired.
    fn look(&self) -> Option<Option<Seen>>;
}

impl Entry for SharedEntry {
    fn is_dropped(&self) -> bool {
        self.strong_count() == 0
    }
    fn address(&self) -> usize {
        self.as_ptr() as *const () as usize
    }
    fn look(&self) -> Option<Option<Seen>> {
        // The strong reference is dropped here, outside every registry lock: if it is the last
        // one, the chain's steps are dropped on this thread, and they may make chains.
        self.upgrade().map(|chain| chain.inspect())
    }
}

impl Entry for LocalEntry {
    fn is_dropped(&self) -> bool {
        self.strong_count() == 0
    }
    fn address(&self) -> usize {
        self.as_ptr() as *const () as usize
    }
    fn look(&self) -> Option<Option<Seen>> {
        self.upgrade().map(|chain| chain.inspect())
    }
}

/// Every chain that has not fired: this thread's [`LocalDeferred`](crate::LocalDeferred)
/// chains and every thread's [`Deferred`](crate::Deferred) chains, with where each was made,
/// how long ago, its steps not run yet, and what it waits on. (Feature `registry`.) A
/// `LocalDeferred` chain is seen only from its own thread: a watchdog thread sees the
/// `Deferred` chains alone.
///
/// The registry holds no chain alive: a chain dropped or fired leaves it. Print the value for
/// a tree of who waits on whom, the deepest wait last:
///
/// ```
/// # extern crate deferred_core as deferred;
/// use deferred::{Deferred, pending_chains};
///
/// let (inner, _resolver) = Deferred::<u32>::pending();
/// let (start, fire) = Deferred::<u32>::pending();
/// let outer = start
///     .add_callback(move |_| inner)         // waits on `inner`
///     .add_callback(|n| Ok(n + 1));         // not run yet
/// fire.callback(1);
/// let dump = pending_chains();
/// println!("{dump}");
/// // 2 pending chains
/// // Deferred #2, created at src/main.rs:5:25, pending for 16.0µs, 1 step to run (src/main.rs:8:10)
/// // └─ waits on Deferred #1, created at src/main.rs:4:30, pending for 29.3µs, no step to run
/// //    └─ waits on its resolver, created at src/main.rs:4:30
/// # assert_eq!(dump.len(), 2);
/// # assert!(dump.to_string().contains("└─ waits on Deferred #1"));
/// # drop(outer);
/// ```
///
/// Each chain is read at its own moment, not all at once: while other threads fire chains, a
/// dump may show a chain as waiting on one that has moved on since.
///
/// "Pending for" is the time since the chain was made. A step is one `add_*` call, or one run
/// of `chain!`'s `then`s (which is one stage of the chain). A chain whose first step had already
/// run when it began to wait (a Deferred that had fired, given a step that returned a pending
/// one) is the chain it waits on, with the steps after added to it: it shows as that chain,
/// made where that one was.
#[cfg(feature = "registry")] // on the item too: docs.rs shows it on the facade's pages
#[cfg_attr(docsrs, doc(cfg(feature = "registry")))]
pub fn pending_chains() -> PendingChains {
    let now = Instant::now();
    let mut seen = Vec::new();
    // A copy of each list, taken under the lock and looked at outside it; the copy's weak
    // references keep every address in it from being reused until the fired ones are pruned.
    let shared = SHARED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .list
        .clone();
    let fired = look(&shared, &mut seen);
    SHARED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .prune(&fired);
    drop(shared);
    if let Ok(local) = LOCAL.try_with(|local| local.borrow().list.clone()) {
        let from = seen.len();
        let fired = look(&local, &mut seen);
        crate::inbox::see_home(&mut seen[from..]);
        let _ = LOCAL.try_with(|registry| registry.borrow_mut().prune(&fired));
        drop(local);
    }
    PendingChains::new(seen, now)
}

/// Asks each chain of `entries` what it is doing; gives the addresses of those that fired.
fn look<W: Entry>(entries: &[W], into: &mut Vec<Seen>) -> HashSet<usize> {
    let mut fired = HashSet::new();
    for entry in entries {
        match entry.look() {
            Some(Some(seen)) => into.push(seen),
            Some(None) => {
                fired.insert(entry.address());
            }
            None => {}
        }
    }
    fired
}

/// Every chain that had not fired when [`pending_chains`] looked: iterate it for the data,
/// print it for a tree of who waits on whom, the deepest wait last.
#[cfg(feature = "registry")] // on the item too: docs.rs shows it on the facade's pages
#[cfg_attr(docsrs, doc(cfg(feature = "registry")))]
pub struct PendingChains {
    chains: Vec<PendingChain>,
}

/// A chain's place in a [`PendingChains`] dump (`#1`, `#2`, ...): what a chain waiting on it
/// names it by.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg(feature = "registry")] // on the item too: docs.rs shows it on the facade's pages
#[cfg_attr(docsrs, doc(cfg(feature = "registry")))]
pub struct ChainId(usize);

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0 + 1)
    }
}

/// What a pending chain waits on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
#[cfg(feature = "registry")] // on the item too: docs.rs shows it on the facade's pages
#[cfg_attr(docsrs, doc(cfg(feature = "registry")))]
pub enum WaitsOn {
    /// Its root has not fired: it waits on its resolver, made with it (where the chain was
    /// created), held by whoever will fire it — named by [`PendingChain::made_by`] when a
    /// helper made it.
    Root,
    /// One of its steps returned a pending Deferred: it waits on that chain, in the same dump.
    Chain(ChainId),
    /// It is a combinator's output (`gather_results`, `join`, `race`, a `DeferredList`, ...) or
    /// a `map_err`'s, named by [`PendingChain::made_by`]: it waits on this many inputs that
    /// have not arrived yet. They are pending
    /// chains of their own, each in the dump with where it was made (a chain made by `pending`
    /// there, or one with steps of its own).
    Inputs(usize),
    /// It waited on a chain that has fired since: that result is on its way.
    Arriving,
    /// Its root is fired by a [`HomeResolver`](crate::HomeResolver) (from
    /// [`Inbox::pending`](crate::Inbox::pending)) that another thread holds and has not fired.
    HomeResolver,
    /// Its [`HomeResolver`](crate::HomeResolver) has fired (or was dropped, which fails the
    /// chain with `NeverFired`), or the `Deferred` it adopted ([`Inbox::adopt`](crate::Inbox::adopt),
    /// [`Inbox::defer_to_thread`](crate::Inbox::defer_to_thread)) has: the result is in this
    /// thread's [`Inbox`](crate::Inbox), and the chain goes on when the loop runs it
    /// ([`Inbox::run_pending`](crate::Inbox::run_pending)). A chain that stays here is on a loop
    /// that does not drain its inbox.
    Inbox,
    /// Its steps are running, on some thread (or are queued to run on one).
    Running,
}

/// One pending chain of a [`PendingChains`] dump.
#[derive(Clone, Debug)]
#[cfg(feature = "registry")] // on the item too: docs.rs shows it on the facade's pages
#[cfg_attr(docsrs, doc(cfg(feature = "registry")))]
pub struct PendingChain {
    id: ChainId,
    kind: &'static str,
    created_at: &'static Location<'static>,
    pending_for: Duration,
    made_by: Option<&'static str>,
    steps: Vec<&'static Location<'static>>,
    waits_on: WaitsOn,
    input_of: Option<(ChainId, u32)>,
}

impl PendingChain {
    /// Its place in the dump.
    pub fn id(&self) -> ChainId {
        self.id
    }

    /// Whether it is a [`LocalDeferred`](crate::LocalDeferred)'s chain (of this thread).
    pub fn is_local(&self) -> bool {
        self.kind != "Deferred"
    }

    /// Where it was made: where `pending`/`with_canceller` (or the helper that made it, such
    /// as `defer_to_thread`) was called, or the step that made a link of its own (such as
    /// `add_timeout`).
    pub fn created_at(&self) -> &'static Location<'static> {
        self.created_at
    }

    /// How long since it was made, when the dump was taken.
    pub fn pending_for(&self) -> Duration {
        self.pending_for
    }

    /// The helper that made it, when one says (`"defer_to_thread"`, `"add_timeout"`,
    /// `"DeferredSemaphore::acquire"`, ...). A combinator's output (or a `map_err`'s) is named
    /// by the function the user called: `"gather_results"`, `"race"`, `"join"`,
    /// `"join_settled"`, `"first_settled"`, `"settle_all"`, `"map_concurrent"`, `"map_err"`,
    /// or a [`DeferredList`](crate::DeferredList)'s `"DeferredList::all"`,
    /// `"DeferredList::fire_on_one_callback"`, `"DeferredList::fire_on_one_errback"`. A waiting
    /// acquire is named by the helper the user called too: `"DeferredSemaphore::acquire"`,
    /// `"DeferredSemaphore::run"`, `"DeferredLock::acquire"`, `"DeferredLock::run"`, or
    /// `"map_concurrent"` for an item waiting for its turn; a
    /// [`SharedResult`](crate::SharedResult) consumer waiting on its source is
    /// `"SharedResult::consumer"`.
    pub fn made_by(&self) -> Option<&'static str> {
        self.made_by
    }

    /// Where its steps not run yet were added, in the order they will run.
    pub fn steps(&self) -> &[&'static Location<'static>] {
        &self.steps
    }

    /// What it waits on.
    pub fn waits_on(&self) -> WaitsOn {
        self.waits_on
    }

    /// The combinator (or `map_err`) it is an input of, as that one's output chain in the same
    /// dump, and its index there: `gather_results([a, b])` makes `b` input 1 of the output.
    /// (Each chain of a dump is read at its own moment: while other threads fire chains, the
    /// output it names may already have moved on, to running its steps.)
    pub fn input_of(&self) -> Option<(ChainId, u32)> {
        self.input_of
    }
}

impl PendingChains {
    fn new(seen: Vec<Seen>, now: Instant) -> PendingChains {
        let ids: HashMap<usize, ChainId> = seen
            .iter()
            .enumerate()
            .map(|(index, seen)| (seen.address, ChainId(index)))
            .collect();
        let chains = seen
            .into_iter()
            .enumerate()
            .map(|(index, seen)| PendingChain {
                id: ChainId(index),
                kind: seen.kind,
                created_at: seen.born.0,
                pending_for: now.saturating_duration_since(seen.born.1),
                made_by: seen.made_by,
                steps: seen.steps,
                input_of: seen
                    .feeds
                    .and_then(|(output, index)| Some((*ids.get(&output)?, index))),
                waits_on: match seen.waits {
                    Waits::Resolver => WaitsOn::Root,
                    Waits::HomeResolver => WaitsOn::HomeResolver,
                    Waits::Inbox => WaitsOn::Inbox,
                    Waits::Inputs(pending) => WaitsOn::Inputs(pending),
                    Waits::Running => WaitsOn::Running,
                    Waits::Chain { address, .. } => ids
                        .get(&address)
                        .map_or(WaitsOn::Arriving, |id| WaitsOn::Chain(*id)),
                },
            })
            .collect();
        PendingChains { chains }
    }

    /// How many chains.
    pub fn len(&self) -> usize {
        self.chains.len()
    }

    /// Whether no chain was pending.
    pub fn is_empty(&self) -> bool {
        self.chains.is_empty()
    }

    /// The chains, oldest registration first (the `Send` kind's, then this thread's local
    /// ones).
    pub fn iter(&self) -> std::slice::Iter<'_, PendingChain> {
        self.chains.iter()
    }

    /// The chain with `id`.
    pub fn get(&self, id: ChainId) -> Option<&PendingChain> {
        self.chains.get(id.0)
    }
}

impl<'a> IntoIterator for &'a PendingChains {
    type Item = &'a PendingChain;
    type IntoIter = std::slice::Iter<'a, PendingChain>;
    fn into_iter(self) -> Self::IntoIter {
        self.chains.iter()
    }
}

impl fmt::Debug for PendingChains {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.chains).finish()
    }
}

/// The most step locations a line shows.
const SHOWN_STEPS: usize = 4;
/// The deepest a tree indents (a wait a million chains deep prints in linear size).
const MAX_INDENT: usize = 16;

impl PendingChain {
    /// The chain's own line: kind, id, maker, place, age, steps.
    fn headline(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.id)?;
        if let Some(made_by) = self.made_by {
            write!(f, " from {made_by}")?;
        }
        write!(
            f,
            ", created at {}, pending for {:.1?}, ",
            self.created_at, self.pending_for
        )?;
        match self.steps.len() {
            0 => write!(f, "no step to run")?,
            1 => write!(f, "1 step to run (")?,
            n => write!(f, "{n} steps to run (")?,
        }
        for (i, step) in self.steps.iter().take(SHOWN_STEPS).enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{step}")?;
        }
        if self.steps.len() > SHOWN_STEPS {
            write!(f, ", and {} more", self.steps.len() - SHOWN_STEPS)?;
        }
        if !self.steps.is_empty() {
            write!(f, ")")?;
        }
        if let Some((output, index)) = self.input_of {
            // A fan-in's output is of its inputs' kind.
            write!(f, "; input #{index} of {} {output}", self.kind)?;
        }
        Ok(())
    }
}

/// The tree, iteratively (a path of any depth prints in constant stack): each chain nobody
/// waits on starts a path, followed down to what its deepest chain waits on; chains left over
/// wait on each other in a cycle, and are shown from any one of them.
impl fmt::Display for PendingChains {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.chains.len() {
            0 => return writeln!(f, "no pending chain"),
            1 => writeln!(f, "1 pending chain")?,
            n => writeln!(f, "{n} pending chains")?,
        }
        let mut waited_on = vec![false; self.chains.len()];
        for chain in &self.chains {
            if let WaitsOn::Chain(on) = chain.waits_on {
                waited_on[on.0] = true;
            }
        }
        // The path each chain was shown on (the chain it started at), if shown yet: a wait on a
        // chain shown on this path closes a cycle; one on a chain an earlier path showed does
        // not (two chains wait on it: one that handed its wait over and is kept for a cancel,
        // or a dump that read them at different moments).
        let mut shown: Vec<Option<usize>> = vec![None; self.chains.len()];
        let starts = (0..self.chains.len()).filter(|&i| !waited_on[i]);
        // Then the cycles: any chain not shown by a path.
        let starts = starts.chain(0..self.chains.len());
        for start in starts {
            if shown[start].is_some() {
                continue;
            }
            let mut at = start;
            let mut depth = 0;
            loop {
                let chain = &self.chains[at];
                shown[at] = Some(start);
                indent(f, depth)?;
                if depth > 0 {
                    write!(f, "waits on ")?;
                }
                chain.headline(f)?;
                writeln!(f)?;
                depth += 1;
                match chain.waits_on {
                    WaitsOn::Chain(on) if shown[on.0].is_none() => at = on.0,
                    WaitsOn::Chain(on) => {
                        indent(f, depth)?;
                        let cycle = shown[on.0] == Some(start);
                        let on = &self.chains[on.0];
                        write!(f, "waits on {} {} (shown above", on.kind, on.id)?;
                        if cycle {
                            write!(f, ": these chains wait on each other")?;
                        }
                        writeln!(f, ")")?;
                        break;
                    }
                    WaitsOn::Root => {
                        indent(f, depth)?;
                        match chain.made_by {
                            Some(made_by) => write!(f, "waits on {made_by}'s resolver")?,
                            None => write!(f, "waits on its resolver")?,
                        }
                        writeln!(f, ", created at {}", chain.created_at)?;
                        break;
                    }
                    WaitsOn::Inputs(pending) => {
                        indent(f, depth)?;
                        let what = chain.made_by.unwrap_or("the combinator");
                        match pending {
                            1 => writeln!(
                                f,
                                "waits on 1 input of {what}, a pending chain listed apart"
                            )?,
                            n => writeln!(
                                f,
                                "waits on {n} inputs of {what}, pending chains listed apart"
                            )?,
                        }
                        break;
                    }
                    WaitsOn::HomeResolver => {
                        indent(f, depth)?;
                        writeln!(
                            f,
                            "waits on its HomeResolver, which another thread fires, created at {}",
                            chain.created_at
                        )?;
                        break;
                    }
                    WaitsOn::Inbox => {
                        indent(f, depth)?;
                        writeln!(
                            f,
                            "its result has come home: it waits in this thread's inbox until the \
                             loop runs it (Inbox::run_pending)"
                        )?;
                        break;
                    }
                    WaitsOn::Arriving => {
                        indent(f, depth)?;
                        writeln!(
                            f,
                            "waits on a chain that has just fired (its result is on its way)"
                        )?;
                        break;
                    }
                    WaitsOn::Running => {
                        indent(f, depth)?;
                        writeln!(f, "runs its steps (or is queued to run them)")?;
                        break;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The start of a line `depth` waits deep: `└─ ` under the chain above.
fn indent(f: &mut fmt::Formatter<'_>, depth: usize) -> fmt::Result {
    if depth == 0 {
        return Ok(());
    }
    for _ in 1..depth.min(MAX_INDENT) {
        write!(f, "   ")?;
    }
    write!(f, "└─ ")
}

/// A pending chain's `Debug` fields, from what it says of itself.
pub(crate) fn debug_fields(seen: &Seen, out: &mut fmt::DebugStruct<'_, '_>) {
    out.field("state", &"pending");
    out.field("created_at", &format_args!("{}", seen.born.0));
    out.field(
        "pending_for",
        &format_args!("{:.1?}", seen.born.1.elapsed()),
    );
    if let Some(made_by) = seen.made_by {
        out.field("made_by", &made_by);
    }
    out.field("steps_to_run", &seen.steps.len());
    match seen.waits {
        Waits::Resolver => out.field(
            "waits_on",
            &format_args!("its resolver, created at {}", seen.born.0),
        ),
        Waits::HomeResolver => out.field(
            "waits_on",
            &format_args!("its HomeResolver, created at {}", seen.born.0),
        ),
        Waits::Inbox => out.field(
            "waits_on",
            &format_args!("this thread's inbox: its result has come home"),
        ),
        Waits::Chain { created_at, .. } => out.field(
            "waits_on",
            &format_args!("another chain, created at {created_at}"),
        ),
        Waits::Inputs(pending) => out.field(
            "waits_on",
            &format_args!("{pending} of its inputs, not arrived yet"),
        ),
        Waits::Running => out.field("waits_on", &format_args!("nothing: its steps are running")),
    };
}
