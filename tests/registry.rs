//! The pending-chain registry (feature `registry`): `pending_chains()` shows every chain that
//! has not fired — where it was made, its steps not run, what it waits on (its resolver, or
//! another chain, shown as the path down to the deepest wait) — and forgets chains that fire or
//! are dropped; local chains are shown on their own thread only.
//!
//! Other tests of this binary make chains at the same time on other threads, and the `Send`
//! kind's registry is global: every check here looks only at the chains made on its own lines.
#![cfg(feature = "registry")]
#![deny(warnings, clippy::all)]

use std::time::Duration;

use deferred::{
    Deferred, DeferredSemaphore, Failure, Inbox, LocalDeferred, ManualClock, PendingChain,
    PendingChains, WaitsOn, defer_to_thread, pending_chains,
};

/// `tests/registry.rs:LINE:`, the start of a location on `line` of this file.
fn at_line(line: u32) -> String {
    format!("{}:{line}:", file!())
}

/// The chains of `dump` made on `line` of this file.
fn made_on(dump: &PendingChains, line: u32) -> Vec<&PendingChain> {
    dump.iter()
        .filter(|chain| chain.created_at().file() == file!() && chain.created_at().line() == line)
        .collect()
}

/// The one chain of `dump` made on `line`.
fn one_made_on(dump: &PendingChains, line: u32) -> &PendingChain {
    match made_on(dump, line)[..] {
        [chain] => chain,
        ref other => panic!("{} chains made on line {line} in:\n{dump}", other.len()),
    }
}

#[test]
fn a_chain_waiting_on_a_chain_waiting_on_its_resolver_is_shown_as_that_path() {
    let inner_line = line!() + 1;
    let (inner, resolver) = Deferred::<u32>::pending();
    let inner = inner.add_callback(|n| Ok(n * 2));
    let outer_line = line!() + 1;
    let (outer, start) = Deferred::<u32>::pending();
    let outer = outer
        .add_callback(move |_| inner) // returns the pending inner chain: the outer waits on it
        .add_callback(|n| Ok(n + 1));
    start.callback(1);

    let dump = pending_chains();
    let shown = one_made_on(&dump, outer_line);
    let waited = one_made_on(&dump, inner_line);
    assert_eq!(shown.waits_on(), WaitsOn::Chain(waited.id()), "{dump}");
    assert_eq!(shown.steps().len(), 1, "the step after the wait: {dump}");
    assert_eq!(shown.steps()[0].line(), outer_line + 3);
    assert_eq!(waited.waits_on(), WaitsOn::Root);
    assert_eq!(waited.steps().len(), 1);
    assert!(!shown.is_local() && !waited.is_local());
    assert!(shown.pending_for() < Duration::from_secs(60));

    // The tree: the outer chain, then the inner one under it, then the resolver.
    let text = dump.to_string();
    let lines: Vec<&str> = text.lines().collect();
    let outer_at = lines
        .iter()
        .position(|line| line.contains(&format!("created at {}", at_line(outer_line))))
        .unwrap_or_else(|| panic!("the outer chain in:\n{text}"));
    assert!(lines[outer_at].starts_with("Deferred #"), "{text}");
    assert!(
        lines[outer_at].contains("1 step to run"),
        "{}",
        lines[outer_at]
    );
    assert!(
        lines[outer_at + 1].starts_with("└─ waits on Deferred #")
            && lines[outer_at + 1].contains(&at_line(inner_line)),
        "{text}"
    );
    assert!(
        lines[outer_at + 2].starts_with(&format!(
            "   └─ waits on its resolver, created at {}",
            at_line(inner_line)
        )),
        "{text}"
    );

    resolver.callback(20);
    assert_eq!(outer.wait().unwrap(), 41);
}

#[test]
fn a_chain_waiting_inside_its_run_lists_its_catch_where_it_is() {
    let (inner, resolver) = Deferred::<u32>::pending();
    let (start, start_resolver) = Deferred::<u32>::pending();
    let outer_line = line!() + 1;
    let outer = deferred::chain! {
        start
        then |n| inner.add_callback(move |m| Ok(n + m)) // the run waits on `inner`
        catch |_| 0
    };
    let catch_line = outer_line + 3;
    start_resolver.callback(1);

    let dump = pending_chains();
    let shown = dump
        .iter()
        .find(|chain| {
            chain.created_at().file() == file!() && chain.created_at().line() == outer_line - 2
        })
        .unwrap_or_else(|| panic!("the chain! in:\n{dump}"));
    // The run has run; its catch waits, at its own keyword, for what `inner` gives.
    assert_eq!(shown.steps().len(), 1, "{dump}");
    assert_eq!(shown.steps()[0].line(), catch_line, "{dump}");
    assert!(matches!(shown.waits_on(), WaitsOn::Chain(_)), "{dump}");

    resolver.callback(20);
    assert_eq!(outer.wait().unwrap(), 21);
}

#[test]
fn chains_that_fire_or_are_dropped_leave_the_registry() {
    let fired_line = line!() + 1;
    let (fired, resolver) = Deferred::<u32>::pending();
    let dropped_line = line!() + 1;
    let (dropped, never) = Deferred::<u32>::pending();
    let kept_line = line!() + 1;
    let (kept, _kept_resolver) = Deferred::<u32>::pending();
    let dump = pending_chains();
    for line in [fired_line, dropped_line, kept_line] {
        one_made_on(&dump, line);
    }

    resolver.callback(1); // fired: the Deferred still holds its result, the chain has fired
    drop((dropped, never)); // dropped (its resolver fails it with NeverFired, nobody sees it)
    let after = pending_chains();
    assert!(made_on(&after, fired_line).is_empty(), "{after}");
    assert!(made_on(&after, dropped_line).is_empty(), "{after}");
    one_made_on(&after, kept_line);
    // The earlier dump is data: it kept nothing alive, and still says what it saw.
    assert_eq!(made_on(&dump, fired_line).len(), 1);
    assert_eq!(fired.wait().unwrap(), 1);
    assert!(format!("{kept:?}").contains("pending"));
}

#[test]
fn a_chain_with_no_step_left_hands_its_wait_to_the_chain_waiting_on_it() {
    let inner_line = line!() + 1;
    let (inner, resolver) = Deferred::<u32>::pending();
    let between_line = line!() + 1;
    let (between, between_start) = Deferred::<u32>::pending();
    let between = between.add_callback(move |_| inner); // its last step returns `inner`
    let outer_line = line!() + 1;
    let (outer, outer_start) = Deferred::<u32>::pending();
    let outer = outer
        .add_callback(move |_| between)
        .add_callback(|n| Ok(n + 1));
    outer_start.callback(0); // the outer chain waits on `between`
    between_start.callback(0); // `between` would wait on `inner`: it hands that wait over

    let dump = pending_chains();
    let shown = one_made_on(&dump, outer_line);
    let waited = one_made_on(&dump, inner_line);
    assert_eq!(shown.waits_on(), WaitsOn::Chain(waited.id()), "{dump}");
    assert!(
        made_on(&dump, between_line).is_empty(),
        "freed at the hand-over: {dump}"
    );
    resolver.callback(1);
    assert_eq!(outer.wait().unwrap(), 2);
}

/// A chain that handed its wait over (`between`) but is kept by a `CancelHandle` still waits on
/// `inner`, as the chain it handed the wait to does: two chains wait on one, and the tree says
/// so, not that they wait on each other (they are no cycle: `inner`'s resolver fires them).
#[test]
fn two_chains_waiting_on_one_are_not_shown_as_a_cycle() {
    let inner_line = line!() + 1;
    let (inner, resolver) = Deferred::<u32>::pending();
    let between_line = line!() + 1;
    let (between, between_start) = Deferred::<u32>::pending();
    let between = between.add_callback(move |_| inner);
    let handle = between.cancel_handle(); // keeps `between` after its hand-over
    let outer_line = line!() + 1;
    let (outer, outer_start) = Deferred::<u32>::pending();
    let outer = outer
        .add_callback(move |_| between)
        .add_callback(|n| Ok(n + 1));
    outer_start.callback(0);
    between_start.callback(0); // hands its wait on `inner` to `outer`

    let dump = pending_chains();
    let waited = one_made_on(&dump, inner_line).id();
    assert_eq!(
        one_made_on(&dump, outer_line).waits_on(),
        WaitsOn::Chain(waited),
        "{dump}"
    );
    for chain in made_on(&dump, between_line) {
        assert_eq!(chain.waits_on(), WaitsOn::Chain(waited), "{dump}");
    }
    let text = dump.to_string();
    assert!(!text.contains("wait on each other"), "no cycle:\n{text}");
    resolver.callback(1);
    assert_eq!(outer.wait().unwrap(), 2);
    drop(handle);
}

/// Chains that wait on each other (rule 9) print once each, and the tree says they do.
#[test]
fn chains_waiting_on_each_other_are_shown_as_a_cycle() {
    type Slot = std::sync::Arc<std::sync::Mutex<Option<Deferred<u32>>>>;
    let slots: [Slot; 2] = Default::default();
    let line = line!() + 1;
    let made = [Deferred::<u32>::pending(), Deferred::<u32>::pending()];
    let mut resolvers = Vec::new();
    let mut handles = Vec::new();
    for (i, (root, resolver)) in made.into_iter().enumerate() {
        let next = slots[1 - i].clone();
        let end = root
            .add_callback(move |_| next.lock().unwrap().take().expect("in its slot"))
            .add_errback(|_| Ok(0)); // the cancel that breaks the cycle
        handles.push(end.cancel_handle());
        *slots[i].lock().unwrap() = Some(end);
        resolvers.push(resolver);
    }
    for resolver in resolvers {
        resolver.callback(1);
    }
    let dump = pending_chains();
    let cycle = made_on(&dump, line);
    assert_eq!(cycle.len(), 2, "{dump}");
    assert_eq!(cycle[0].waits_on(), WaitsOn::Chain(cycle[1].id()), "{dump}");
    assert_eq!(cycle[1].waits_on(), WaitsOn::Chain(cycle[0].id()), "{dump}");
    let text = dump.to_string();
    let said = format!(
        "waits on Deferred {} (shown above: these chains wait on each other)",
        cycle[0].id()
    );
    let other = format!(
        "waits on Deferred {} (shown above: these chains wait on each other)",
        cycle[1].id()
    );
    assert!(text.contains(&said) || text.contains(&other), "{text}");
    handles[0].cancel();
    assert!(made_on(&pending_chains(), line).is_empty());
}

#[test]
fn a_long_path_prints_in_order_and_in_constant_stack() {
    const DEPTH: usize = 2_000;
    let root_line = line!() + 1;
    let (mut d, resolver) = Deferred::<u32>::pending();
    let mut starts = Vec::new();
    for _ in 0..DEPTH {
        let (outer, start) = Deferred::<u32>::pending();
        // A step after the wait: each chain has work left, so none hands its wait over to the
        // chain waiting on it (a chain with none does, and the path would be one chain long).
        d = outer.add_callback(move |_| d).add_callback(Ok);
        starts.push(start);
    }
    for start in starts.into_iter().rev() {
        start.callback(0);
    }
    // Run on a small stack: the tree is printed without recursion.
    let text = std::thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(|| pending_chains().to_string())
        .unwrap()
        .join()
        .unwrap();
    let resolver_line = format!("waits on its resolver, created at {}", at_line(root_line));
    let deepest = text.lines().position(|line| line.contains(&resolver_line));
    let deepest = deepest.unwrap_or_else(|| panic!("no resolver wait in the dump"));
    // The root chain, and the DEPTH chains waiting on it before it, one per line.
    assert!(deepest > DEPTH, "{deepest}");
    resolver.callback(5);
    assert_eq!(d.wait().unwrap(), 5);
}

#[test]
fn local_chains_are_shown_on_their_own_thread_only() {
    let inner_line = line!() + 1;
    let (inner, resolver) = LocalDeferred::<u32>::pending();
    let outer_line = line!() + 1;
    let (outer, start) = LocalDeferred::<u32>::pending();
    let outer = outer
        .add_callback(move |_| inner)
        .add_callback(|n| Ok(n + 1));
    start.callback(1);
    let dump = pending_chains();
    let shown = one_made_on(&dump, outer_line);
    let waited = one_made_on(&dump, inner_line);
    assert!(shown.is_local() && waited.is_local());
    assert_eq!(shown.waits_on(), WaitsOn::Chain(waited.id()));
    assert_eq!(waited.waits_on(), WaitsOn::Root);
    let text = dump.to_string();
    assert!(
        text.contains(&format!(
            "└─ waits on its resolver, created at {}",
            at_line(inner_line)
        )),
        "{text}"
    );
    assert!(text.contains("LocalDeferred #"), "{text}");

    let elsewhere = std::thread::spawn(move || {
        let dump = pending_chains();
        made_on(&dump, inner_line).len() + made_on(&dump, outer_line).len()
    });
    assert_eq!(elsewhere.join().unwrap(), 0);

    resolver.callback(2);
    assert!(made_on(&pending_chains(), inner_line).is_empty());
    assert_eq!(outer.wait().unwrap(), 3);
}

#[test]
fn a_local_chain_fired_from_another_thread_waits_on_its_home_resolver_then_on_the_inbox() {
    let inbox = Inbox::new(|| {});
    let line = line!() + 1;
    let (reply, resolver) = inbox.pending::<u32, Failure>();
    let reply = reply.add_callback(|n| Ok(n + 1));
    let dump = pending_chains();
    assert_eq!(one_made_on(&dump, line).waits_on(), WaitsOn::HomeResolver);
    let text = dump.to_string();
    let needle = format!(
        "└─ waits on its HomeResolver, which another thread fires, created at {}",
        at_line(line)
    );
    assert!(text.contains(&needle), "{needle} in:\n{text}");
    let debug = format!("{reply:?}");
    assert!(
        debug.contains("waits_on: its HomeResolver, created at"),
        "{debug}"
    );

    // Fired on another thread: the result is in the inbox until the loop runs it.
    std::thread::spawn(move || resolver.callback(41))
        .join()
        .unwrap();
    let dump = pending_chains();
    assert_eq!(one_made_on(&dump, line).waits_on(), WaitsOn::Inbox);
    let text = dump.to_string();
    assert!(
        text.contains(
            "└─ its result has come home: it waits in this thread's inbox until the loop runs \
             it (Inbox::run_pending)"
        ),
        "{text}"
    );
    let debug = format!("{reply:?}");
    assert!(debug.contains("this thread's inbox"), "{debug}");
    assert_eq!(inbox.run_pending(), 1);
    assert!(made_on(&pending_chains(), line).is_empty());
    assert_eq!(reply.wait().unwrap(), 42);

    // Dropped unfired on another thread: the drop is in the inbox too (it fails the chain
    // with `NeverFired` when the loop runs it).
    let lost_line = line!() + 1;
    let (lost, resolver) = inbox.pending::<u32, Failure>();
    std::thread::spawn(move || drop(resolver)).join().unwrap();
    assert_eq!(
        one_made_on(&pending_chains(), lost_line).waits_on(),
        WaitsOn::Inbox
    );
    inbox.run_pending();
    assert!(lost.wait().unwrap_err().is::<deferred::NeverFired>());
}

/// A dump taken by work the loop runs (a debug request posted to it) sees the results that
/// came home in the same batch, not run yet, as in the inbox.
#[test]
fn a_dump_taken_while_the_loop_drains_its_inbox_sees_what_waits_in_the_batch() {
    let inbox = Inbox::new(|| {});
    let line = line!() + 1;
    let (reply, resolver) = inbox.pending::<u32, Failure>();
    let (tx, rx) = std::sync::mpsc::channel();
    inbox
        .handle()
        .post(move || {
            let chains = pending_chains();
            let waits = made_on(&chains, line).first().map(|chain| chain.waits_on());
            tx.send(waits).unwrap();
        })
        .unwrap();
    // Posted after the dump: in the same batch, run after it.
    std::thread::spawn(move || resolver.callback(1))
        .join()
        .unwrap();
    assert_eq!(inbox.run_pending(), 2);
    assert_eq!(rx.recv().unwrap(), Some(WaitsOn::Inbox));
    assert_eq!(reply.wait().unwrap(), 1);
}

/// A Deferred's `Debug` in another thread-local's destructor, after the inbox's own thread-local
/// is gone, still prints (it used to abort the process).
#[test]
fn debug_of_a_deferred_in_a_thread_local_destructor_does_not_abort() {
    struct PrintsOnDrop(Option<LocalDeferred<u32>>, std::sync::mpsc::Sender<String>);
    impl Drop for PrintsOnDrop {
        fn drop(&mut self) {
            let _ = self.1.send(format!("{:?}", self.0));
        }
    }
    std::thread_local! {
        static KEPT: std::cell::RefCell<Option<PrintsOnDrop>> = const { std::cell::RefCell::new(None) };
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (d, resolver) = LocalDeferred::<u32>::pending();
        std::mem::forget(resolver);
        // Registered first, so destroyed after the inbox's thread-local, which a `Debug` of a
        // Deferred reads (touched here, after).
        KEPT.with(|kept| *kept.borrow_mut() = Some(PrintsOnDrop(Some(d), tx)));
        let inbox = Inbox::new(|| {});
        let (other, _home) = inbox.pending::<u32, Failure>();
        let _ = format!("{other:?}");
    })
    .join()
    .unwrap();
    assert!(rx.recv().unwrap().contains("LocalDeferred"));
}

#[test]
fn a_chain_the_inbox_adopted_waits_on_the_deferred_it_adopted() {
    let inbox = Inbox::new(|| {});
    let (release, hold) = std::sync::mpsc::channel::<()>();
    let line = line!() + 1;
    let job = inbox.defer_to_thread(move || {
        let _ = hold.recv();
        Ok::<u32, Failure>(7)
    });
    let dump = pending_chains();
    let made = made_on(&dump, line);
    let local = made.iter().find(|chain| chain.is_local()).unwrap();
    let work = made.iter().find(|chain| !chain.is_local()).unwrap();
    assert_eq!(local.waits_on(), WaitsOn::Chain(work.id()));
    assert_eq!(work.made_by(), Some("defer_to_thread"));
    assert_eq!(local.made_by(), Some("Inbox::defer_to_thread"));
    let text = dump.to_string();
    let needle = format!(
        "└─ waits on Deferred {} from defer_to_thread, created at {}",
        work.id(),
        at_line(line)
    );
    assert!(text.contains(&needle), "{needle} in:\n{text}");

    release.send(()).unwrap();
    while !inbox.has_pending() {
        std::thread::yield_now();
    }
    // The work has finished: its result is in the inbox. (The work's own chain may still be
    // running the step that posted it.)
    let dump = pending_chains();
    let local = made_on(&dump, line)
        .into_iter()
        .find(|chain| chain.is_local());
    assert_eq!(local.unwrap().waits_on(), WaitsOn::Inbox);
    assert_eq!(job.wait().unwrap(), 7); // the wait drains the inbox
}

#[test]
fn helpers_name_what_a_chain_waits_on() {
    let (release, hold) = std::sync::mpsc::channel::<()>();
    let job_line = line!() + 1;
    let job: Deferred<u32> = defer_to_thread(move || {
        let _ = hold.recv();
        Ok(7)
    });
    let semaphore = DeferredSemaphore::new(1);
    let permit = semaphore.acquire().wait().unwrap();
    let acquire_line = line!() + 1;
    let waiting = semaphore.acquire();
    let clock = ManualClock::new();
    let (slow, _resolver) = Deferred::<u32>::pending();
    let timeout_line = line!() + 1;
    let slow = slow.add_timeout(Duration::from_secs(5), &clock);

    let dump = pending_chains();
    assert_eq!(
        one_made_on(&dump, job_line).made_by(),
        Some("defer_to_thread")
    );
    assert_eq!(
        one_made_on(&dump, acquire_line).made_by(),
        Some("DeferredSemaphore::acquire")
    );
    assert_eq!(
        one_made_on(&dump, timeout_line).made_by(),
        Some("add_timeout")
    );
    let text = dump.to_string();
    for needle in [
        format!(
            "waits on defer_to_thread's resolver, created at {}",
            at_line(job_line)
        ),
        format!(
            "waits on DeferredSemaphore::acquire's resolver, created at {}",
            at_line(acquire_line)
        ),
        format!("from add_timeout, created at {}", at_line(timeout_line)),
    ] {
        assert!(text.contains(&needle), "{needle} in:\n{text}");
    }

    release.send(()).unwrap();
    assert_eq!(job.wait().unwrap(), 7);
    drop(permit);
    drop(waiting.wait().unwrap());
    clock.advance(Duration::from_secs(5));
    assert!(slow.wait().unwrap_err().is::<deferred::TimedOut>());
}

#[test]
fn a_loop_a_retry_and_a_shared_result_are_placed_at_the_users_calls() {
    let clock = ManualClock::new();
    let ticks = deferred::LoopingCall::new(clock.clone(), || Ok(()));
    let start_line = line!() + 1;
    let done = ticks.start(Duration::from_secs(1), false);
    let policy = deferred::RetryPolicy::exponential(Duration::from_secs(1)).max_attempts(3);
    let (attempt, attempt_resolver) = Deferred::<u32>::pending();
    let mut attempt = Some(attempt);
    let retry_line = line!() + 1;
    let retried = deferred::retry(clock.clone(), policy, move || attempt.take().unwrap());
    let (source, source_resolver) = Deferred::<u32>::pending();
    let shared_line = line!() + 1;
    let shared = source.into_shared();

    let dump = pending_chains();
    let looping = one_made_on(&dump, start_line);
    assert_eq!(looping.made_by(), Some("LoopingCall::start"));
    assert_eq!(one_made_on(&dump, retry_line).made_by(), Some("retry"));
    let text = dump.to_string();
    for line in [start_line, retry_line] {
        let chain = one_made_on(&dump, line);
        assert!(
            chain.steps().iter().all(|at| at.file() == file!()),
            "{text}"
        );
    }
    let source_steps: Vec<_> = dump
        .iter()
        .filter(|chain| chain.steps().iter().any(|at| at.line() == shared_line))
        .collect();
    assert_eq!(source_steps.len(), 1, "{text}");

    ticks.stop();
    done.wait().unwrap();
    attempt_resolver.callback(4);
    assert_eq!(retried.wait().unwrap(), 4);
    source_resolver.callback(5);
    assert_eq!(shared.consumer().wait().unwrap(), 5);
}

#[test]
fn debug_of_a_deferred_says_where_it_was_made_and_what_it_waits_on() {
    let inner_line = line!() + 1;
    let (inner, resolver) = Deferred::<u32>::pending();
    let inner_debug = format!("{inner:?}");
    assert!(
        inner_debug.starts_with("Deferred { state: \"pending\""),
        "{inner_debug}"
    );
    assert!(
        inner_debug.contains(&format!("created_at: {}", at_line(inner_line))),
        "{inner_debug}"
    );
    assert!(
        inner_debug.contains(&format!(
            "waits_on: its resolver, created at {}",
            at_line(inner_line)
        )),
        "{inner_debug}"
    );
    let (outer, start) = Deferred::<u32>::pending();
    let outer = outer.add_callback(move |_| inner);
    start.callback(1);
    let outer_debug = format!("{outer:?}");
    assert!(
        outer_debug.contains(&format!(
            "waits_on: another chain, created at {}",
            at_line(inner_line)
        )),
        "{outer_debug}"
    );
    assert!(outer_debug.contains("steps_to_run: 0"), "{outer_debug}");
    resolver.callback(3);
    assert_eq!(format!("{outer:?}"), "Deferred { state: \"fired\" }");
    assert_eq!(outer.wait().unwrap(), 3);
}

/// A combinator whose outcome is decided waits on none of its inputs, while it fires its
/// output and cancels the losers: a dump taken from a loser's canceller said the output waited
/// on that loser.
#[test]
fn a_decided_races_output_waits_on_none_of_its_losers() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let s = seen.clone();
    let race_line = line!() + 8;
    let (loser, _loser_resolver) = Deferred::<u32>::with_canceller(move || {
        let dump = pending_chains();
        *s.lock().unwrap() = made_on(&dump, race_line)
            .first()
            .map(|chain| chain.waits_on());
    });
    let (winner, winner_resolver) = Deferred::<u32>::pending();
    let raced = deferred::race([loser, winner]);
    winner_resolver.callback(7); // decides; then the loser is cancelled
    assert_eq!(raced.wait().unwrap(), (1, 7));
    let seen = seen.lock().unwrap().take();
    assert!(
        seen.is_some(),
        "the output was listed while the loser was cancelled"
    );
    assert!(
        !matches!(seen, Some(WaitsOn::Inputs(n)) if n > 0),
        "the decided output was seen as {seen:?}"
    );
}

/// A combinator's output, and a `map_err`'s, says how many of its inputs have not arrived
/// (they are pending chains of their own, in the same dump), not "its resolver"; each input
/// says which output it is an input of.
#[test]
fn a_combinators_output_waits_on_its_inputs() {
    let (first, first_resolver) = Deferred::<u32>::pending();
    let second_line = line!() + 1;
    let (second, second_resolver) = Deferred::<u32>::pending();
    let gather_line = line!() + 1;
    let gathered = deferred::gather_results([first, second]);
    let source_line = line!() + 1;
    let (source, source_resolver) = Deferred::<u32>::pending();
    let map_line = line!() + 1;
    let mapped = source.map_err(|failure: deferred::Failure| failure);
    first_resolver.callback(1);

    let dump = pending_chains();
    assert_eq!(
        one_made_on(&dump, gather_line).waits_on(),
        WaitsOn::Inputs(1)
    );
    assert_eq!(one_made_on(&dump, map_line).waits_on(), WaitsOn::Inputs(1));
    // Each input says which output it feeds, and where.
    let gathered_id = one_made_on(&dump, gather_line).id();
    let mapped_id = one_made_on(&dump, map_line).id();
    assert_eq!(
        one_made_on(&dump, second_line).input_of(),
        Some((gathered_id, 1))
    );
    assert_eq!(
        one_made_on(&dump, source_line).input_of(),
        Some((mapped_id, 0))
    );
    let text = dump.to_string();
    assert!(
        text.contains(&format!("; input #1 of Deferred {gathered_id}")),
        "{text}"
    );
    assert!(
        text.contains("waits on 1 input of map_err, a pending chain listed apart"),
        "{text}"
    );
    // The output names the combinator the user called.
    assert_eq!(
        one_made_on(&dump, gather_line).made_by(),
        Some("gather_results"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "Deferred {gathered_id} from gather_results, created at {}",
            at_line(gather_line)
        )),
        "{text}"
    );
    assert!(
        text.contains("waits on 1 input of gather_results, a pending chain listed apart"),
        "{text}"
    );

    second_resolver.callback(2);
    source_resolver.callback(3);
    assert_eq!(gathered.wait().unwrap(), [1, 2]);
    assert_eq!(mapped.wait().unwrap(), 3);
}

/// `map_concurrent`'s items, waiting for a token or running, are placed where the user called
/// it (its own acquires and steps are the helper's, not lines of the library).
#[test]
fn map_concurrent_items_are_placed_at_its_call() {
    let kept = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = kept.clone();
    let call_line = line!() + 1;
    let mapped = deferred::map_concurrent(0..3u32, 1, move |_| {
        let (item, resolver) = Deferred::<u32>::pending();
        keep.lock().unwrap().push(resolver);
        item
    });
    let dump = pending_chains();
    let text = dump.to_string();
    assert!(!text.contains("deferred-core/src"), "{text}");
    assert!(!text.contains("src/private"), "{text}");
    let placed = made_on(&dump, call_line);
    assert!(
        placed.len() >= 3,
        "the output and the waiting items:\n{text}"
    );
    mapped.cancel();
    drop(deferred::capture_unhandled(|| {
        drop(mapped);
        drop(kept);
    }));
}

/// A chain whose steps run on another thread, held in a slow step, shows the steps it has not
/// run yet, in order (`PendingChain::steps`).
#[test]
fn a_running_chain_shows_the_steps_it_has_not_run_yet() {
    let (entered, is_entered) = std::sync::mpsc::channel();
    let (go, wait_for_go) = std::sync::mpsc::channel::<()>();
    let made = line!() + 1;
    let (d, resolver) = Deferred::<u32>::pending();
    let d = d
        .add_callback(move |v| {
            entered.send(()).unwrap();
            wait_for_go.recv().unwrap(); // a slow step (I/O, a lock): the chain is running
            Ok(v + 1)
        })
        .add_callback(|v| Ok(v + 2))
        .add_callback(|v| Ok(v + 3));
    let steps_at = [line!() - 2, line!() - 1];
    let firer = std::thread::spawn(move || resolver.callback(0));
    is_entered.recv().unwrap();
    let dump = pending_chains();
    let chain = one_made_on(&dump, made);
    assert_eq!(chain.waits_on(), WaitsOn::Running, "{dump}");
    let lines: Vec<u32> = chain.steps().iter().map(|step| step.line()).collect();
    go.send(()).unwrap();
    firer.join().unwrap();
    assert_eq!(d.wait().unwrap(), 6);
    assert_eq!(lines, steps_at, "the steps not run yet:\n{dump}");
}

/// A combinator's output counts only the inputs that can still arrive: an input that ended
/// unread (its output dropped, then its Resolver dropped) is not one of them.
#[test]
fn a_combinators_output_does_not_count_an_input_that_ended_unread() {
    let (first, first_resolver) = Deferred::<u32>::pending();
    let (second, second_resolver) = Deferred::<u32>::pending();
    let (third, third_resolver) = Deferred::<u32>::pending();
    let gather_line = line!() + 1;
    let gathered = deferred::gather_results([first, second, third]);
    assert_eq!(
        one_made_on(&pending_chains(), gather_line).waits_on(),
        WaitsOn::Inputs(3)
    );
    // Nobody can see the output now: an input whose Resolver goes ends with nothing to report.
    drop(gathered);
    assert!(first_resolver.is_closed());
    drop(first_resolver);
    let dump = pending_chains();
    let waiting: Vec<WaitsOn> = made_on(&dump, gather_line)
        .iter()
        .map(|chain| chain.waits_on())
        .collect();
    assert_eq!(waiting, [WaitsOn::Inputs(2)], "{dump}");
    drop((second_resolver, third_resolver));
}

/// `drive_future` added a step of its own to the chain of a future still pending after its first
/// poll (to keep the slot where a cancelled task parks its Resolver alive), placed at the
/// user's call: the registry and `Debug` showed "1 step to run" on a chain the user gave no
/// step, and the future's failure carried that step on its trail, which the same failure from
/// a future done at its first poll did not.
#[test]
fn drive_future_shows_no_step_the_user_did_not_add() {
    let (price, resolver) = Deferred::<u32>::pending();
    let line = line!() + 1;
    let total: Deferred<u32> = Deferred::drive_future(async move {
        price.await?;
        Err(Failure::msg("out of stock"))
    });
    let dump = pending_chains();
    let shown = one_made_on(&dump, line);
    assert_eq!(shown.made_by(), Some("drive_future"), "{dump}");
    assert!(shown.steps().is_empty(), "{dump}");
    let debug = format!("{total:?}");
    assert!(debug.contains("steps_to_run: 0"), "{debug}");

    resolver.callback(1);
    let failure = total.wait().unwrap_err();
    assert_eq!(failure.to_string(), "out of stock");
    assert!(failure.trail().is_empty(), "{:?}", failure.trail());
}

/// A `chain!` run longer than 32 `then`s is cut into segments; when the last step of a segment
/// returns a pending Deferred, the link that carries the run's names on to the next segment is
/// not listed as a step to run (at that step, which has run), in the dump or in `Debug`: only
/// the steps the chain has left are.
#[test]
fn the_link_carrying_names_across_32_steps_is_no_step_to_run() {
    type Slot = std::sync::Arc<std::sync::Mutex<Option<deferred::Resolver<u32>>>>;
    /// Step `k` gives `a + 1`; step 32, the last of the first segment, a pending Deferred.
    fn step(a: u32, k: u32, slot: &Slot) -> Deferred<u32> {
        if k == 32 {
            let (d, r) = Deferred::<u32>::pending();
            *slot.lock().unwrap() = Some(r);
            return d;
        }
        Deferred::<u32>::succeed(a + 1)
    }
    let held: Slot = Default::default();
    let slot = held.clone();
    let first = line!() + 3;
    let d: Deferred<u32> = deferred::chain! {
        Deferred::<u32>::succeed(0)
        then |a| step(a, 1, &slot)
        then |a| step(a, 2, &slot)
        then |a| step(a, 3, &slot)
        then |a| step(a, 4, &slot)
        then |a| step(a, 5, &slot)
        then |a| step(a, 6, &slot)
        then |a| step(a, 7, &slot)
        then |a| step(a, 8, &slot)
        then |a| step(a, 9, &slot)
        then |a| step(a, 10, &slot)
        then |a| step(a, 11, &slot)
        then |a| step(a, 12, &slot)
        then |a| step(a, 13, &slot)
        then |a| step(a, 14, &slot)
        then |a| step(a, 15, &slot)
        then |a| step(a, 16, &slot)
        then |a| step(a, 17, &slot)
        then |a| step(a, 18, &slot)
        then |a| step(a, 19, &slot)
        then |a| step(a, 20, &slot)
        then |a| step(a, 21, &slot)
        then |a| step(a, 22, &slot)
        then |a| step(a, 23, &slot)
        then |a| step(a, 24, &slot)
        then |a| step(a, 25, &slot)
        then |a| step(a, 26, &slot)
        then |a| step(a, 27, &slot)
        then |a| step(a, 28, &slot)
        then |a| step(a, 29, &slot)
        then |a| step(a, 30, &slot)
        then |a| step(a, 31, &slot)
        then |a| step(a, 32, &slot)
        then |a| a + 1
    };
    let last = first + 32;
    let dump = pending_chains();
    let lines: Vec<Vec<u32>> = dump
        .iter()
        .filter(|chain| {
            chain
                .steps()
                .iter()
                .any(|at| at.file() == file!() && (first..=last).contains(&at.line()))
        })
        .map(|chain| chain.steps().iter().map(|at| at.line()).collect())
        .collect();
    let debug = format!("{d:?}");
    let resolver = held.lock().unwrap().take().unwrap();
    resolver.callback(100);
    assert_eq!(d.wait().unwrap(), 101);
    assert_eq!(lines, [vec![last]], "only step 33 is left to run:\n{dump}");
    assert!(debug.contains("steps_to_run: 1,"), "{debug}");
}

/// The same, for the local kind.
#[test]
fn the_link_carrying_names_across_32_steps_is_no_step_to_run_local() {
    type Slot = std::sync::Arc<std::sync::Mutex<Option<deferred::LocalResolver<u32>>>>;
    /// Step `k` gives `a + 1`; step 32, the last of the first segment, a pending Deferred.
    fn step(a: u32, k: u32, slot: &Slot) -> LocalDeferred<u32> {
        if k == 32 {
            let (d, r) = LocalDeferred::<u32>::pending();
            *slot.lock().unwrap() = Some(r);
            return d;
        }
        LocalDeferred::<u32>::succeed(a + 1)
    }
    let held: Slot = Default::default();
    let slot = held.clone();
    let first = line!() + 3;
    let d: LocalDeferred<u32> = deferred::chain! {
        LocalDeferred::<u32>::succeed(0)
        then |a| step(a, 1, &slot)
        then |a| step(a, 2, &slot)
        then |a| step(a, 3, &slot)
        then |a| step(a, 4, &slot)
        then |a| step(a, 5, &slot)
        then |a| step(a, 6, &slot)
        then |a| step(a, 7, &slot)
        then |a| step(a, 8, &slot)
        then |a| step(a, 9, &slot)
        then |a| step(a, 10, &slot)
        then |a| step(a, 11, &slot)
        then |a| step(a, 12, &slot)
        then |a| step(a, 13, &slot)
        then |a| step(a, 14, &slot)
        then |a| step(a, 15, &slot)
        then |a| step(a, 16, &slot)
        then |a| step(a, 17, &slot)
        then |a| step(a, 18, &slot)
        then |a| step(a, 19, &slot)
        then |a| step(a, 20, &slot)
        then |a| step(a, 21, &slot)
        then |a| step(a, 22, &slot)
        then |a| step(a, 23, &slot)
        then |a| step(a, 24, &slot)
        then |a| step(a, 25, &slot)
        then |a| step(a, 26, &slot)
        then |a| step(a, 27, &slot)
        then |a| step(a, 28, &slot)
        then |a| step(a, 29, &slot)
        then |a| step(a, 30, &slot)
        then |a| step(a, 31, &slot)
        then |a| step(a, 32, &slot)
        then |a| a + 1
    };
    let last = first + 32;
    let dump = pending_chains();
    let lines: Vec<Vec<u32>> = dump
        .iter()
        .filter(|chain| {
            chain
                .steps()
                .iter()
                .any(|at| at.file() == file!() && (first..=last).contains(&at.line()))
        })
        .map(|chain| chain.steps().iter().map(|at| at.line()).collect())
        .collect();
    let debug = format!("{d:?}");
    let resolver = held.lock().unwrap().take().unwrap();
    resolver.callback(100);
    assert_eq!(d.wait().unwrap(), 101);
    assert_eq!(lines, [vec![last]], "only step 33 is left to run:\n{dump}");
    assert!(debug.contains("steps_to_run: 1,"), "{debug}");
}

/// A retry whose attempt failed waits for its next attempt on the clock: once its Deferred and
/// every handle of its `ManualClock` are dropped (nobody can advance the clock), it leaves the
/// registry, instead of the clock's schedule and the retry keeping each other for ever.
#[test]
fn a_retry_waiting_on_a_dropped_manual_clock_leaves_the_registry() {
    let clock = ManualClock::new();
    let policy = deferred::RetryPolicy::exponential(Duration::from_secs(1)).seed(1);
    let line = line!() + 1;
    let retried = deferred::retry(clock.clone(), policy, || {
        Err::<(), _>(Failure::msg("refused"))
    });
    assert_eq!(made_on(&pending_chains(), line).len(), 1);
    drop(retried);
    drop(clock);
    assert!(made_on(&pending_chains(), line).is_empty());
}

/// A `SharedResult`'s consumer is a chain of its own, whose Resolver the shared result holds
/// until the source fires: the dump names it (`WaitsOn::Root`: "named by `made_by` when a
/// helper made it"), not "its resolver", which the user never held.
#[test]
fn a_shared_results_consumer_names_what_holds_its_resolver() {
    let (source, resolver) = Deferred::<u32>::pending();
    let shared = source.into_shared();
    let line = line!() + 1;
    let consumer = shared.consumer().add_callback(|n| Ok(n + 1));
    let dump = pending_chains();
    let shown = one_made_on(&dump, line);
    assert_eq!(shown.made_by(), Some("SharedResult::consumer"), "{dump}");
    assert_eq!(shown.waits_on(), WaitsOn::Root, "{dump}");
    let text = dump.to_string();
    let needle = format!(
        "waits on SharedResult::consumer's resolver, created at {}",
        at_line(line)
    );
    assert!(text.contains(&needle), "{needle} in:\n{text}");
    assert!(format!("{consumer:?}").contains("made_by: \"SharedResult::consumer\""));
    resolver.callback(1);
    assert_eq!(consumer.wait().unwrap(), 2);
}

/// A waiting acquire is named after the helper the user called: a `DeferredLock`'s acquire and
/// run, a semaphore's run, `map_concurrent`'s items waiting for a token (which make a
/// semaphore of their own), not `DeferredSemaphore::acquire` for all of them.
#[test]
fn a_waiting_acquire_names_the_helper_the_user_called() {
    let lock = deferred::DeferredLock::new();
    let held = lock.acquire().wait().unwrap();
    let lock_line = line!() + 1;
    let lock_acquire = lock.acquire();
    let lock_run_line = line!() + 1;
    let lock_run = lock.run(|| Ok(1));
    let semaphore = DeferredSemaphore::new(1);
    let permit = semaphore.acquire().wait().unwrap();
    let run_line = line!() + 1;
    let run = semaphore.run(|| Ok(2));
    let (first, first_resolver) = Deferred::<u32>::pending();
    let first = std::sync::Mutex::new(Some(first));
    let map_line = line!() + 1;
    let mapped = deferred::map_concurrent(0..2u32, 1, move |n| {
        let first = first.lock().unwrap().take();
        first.unwrap_or_else(|| Deferred::succeed(n))
    });

    let dump = pending_chains();
    for (line, helper) in [
        (lock_line, "DeferredLock::acquire"),
        (lock_run_line, "DeferredLock::run"),
        (run_line, "DeferredSemaphore::run"),
    ] {
        assert_eq!(one_made_on(&dump, line).made_by(), Some(helper), "{dump}");
        let text = dump.to_string();
        let needle = format!("waits on {helper}'s resolver, created at {}", at_line(line));
        assert!(text.contains(&needle), "{needle} in:\n{text}");
    }
    // The second item waits for the token the first holds.
    let waiting: Vec<_> = made_on(&dump, map_line)
        .into_iter()
        .filter(|chain| chain.waits_on() == WaitsOn::Root)
        .collect();
    assert_eq!(waiting.len(), 1, "{dump}");
    assert_eq!(waiting[0].made_by(), Some("map_concurrent"), "{dump}");
    assert!(
        !dump.to_string().contains("DeferredSemaphore::acquire"),
        "{dump}"
    );

    drop(held);
    drop(lock_acquire.wait().unwrap());
    assert_eq!(lock_run.wait().unwrap(), 1);
    drop(permit);
    assert_eq!(run.wait().unwrap(), 2);
    first_resolver.callback(0);
    assert_eq!(mapped.wait().unwrap(), [0, 1]);
}

/// `pending_chains`: "A chain whose first step had already run when it began to wait (a
/// Deferred that had fired, given a step that returned a pending one) is the chain it waits on,
/// with the steps after added to it: it shows as that chain, made where that one was."
#[test]
fn a_fired_start_whose_step_waits_shows_as_the_chain_it_waits_on() {
    let inner_line = line!() + 1;
    let (inner, resolver) = Deferred::<u32>::pending();
    let started_line = line!() + 1;
    let d = Deferred::<u32>::succeed(1)
        .add_callback(move |_| inner)
        .add_callback(|n| Ok(n + 1));
    let dump = pending_chains();
    let shown = one_made_on(&dump, inner_line);
    assert_eq!(shown.waits_on(), WaitsOn::Root, "{dump}");
    let steps: Vec<u32> = shown.steps().iter().map(|at| at.line()).collect();
    assert_eq!(steps, [started_line + 2], "{dump}");
    assert!(made_on(&dump, started_line).is_empty(), "{dump}");
    resolver.callback(1);
    assert_eq!(d.wait().unwrap(), 2);
}

/// A cancelled chain has fired (with `Cancelled`) and leaves the registry, both kinds; one
/// whose errback answered the cancellation with a pending Deferred waits on that one, and the
/// dump says so.
#[test]
fn a_cancelled_chain_leaves_the_registry_unless_its_errback_waits() {
    let line = line!() + 1;
    let (d, _resolver) = Deferred::<u32>::pending();
    let d = d.add_callback(|n| Ok(n + 1));
    let local_line = line!() + 1;
    let (local, _local_resolver) = LocalDeferred::<u32>::pending();
    let local = local.add_callback(|n| Ok(n + 1));
    let (inner, inner_resolver) = Deferred::<u32>::pending();
    let waits_line = line!() + 1;
    let (waits, _waits_resolver) = Deferred::<u32>::pending();
    let waits = waits
        .add_errback(move |_| inner)
        .add_callback(|n| Ok(n + 1));
    let inner_line = waits_line - 2;
    d.cancel();
    local.cancel();
    waits.cancel();

    let dump = pending_chains();
    assert!(made_on(&dump, line).is_empty(), "{dump}");
    assert!(made_on(&dump, local_line).is_empty(), "{dump}");
    let shown = one_made_on(&dump, waits_line);
    let inner = one_made_on(&dump, inner_line);
    assert_eq!(shown.waits_on(), WaitsOn::Chain(inner.id()), "{dump}");
    assert_eq!(shown.steps().len(), 1, "{dump}");
    assert!(d.wait().unwrap_err().is_cancelled());
    assert!(local.wait().unwrap_err().is_cancelled());
    inner_resolver.callback(1);
    assert_eq!(waits.wait().unwrap(), 2);
}

/// `WaitsOn::Inputs`: "a combinator's output (`gather_results`, `join`, `race`, a
/// `DeferredList`, ...)": each output counts its inputs not arrived, names the combinator the
/// user called, and each input names its output and its index.
#[test]
fn race_join_a_list_and_first_settled_wait_on_their_inputs() {
    let mut resolvers = Vec::new();
    let mut input = || {
        let (d, resolver) = Deferred::<u32>::pending();
        resolvers.push(resolver);
        d
    };
    let race_line = line!() + 1;
    let raced = deferred::race([input(), input()]);
    let join_line = line!() + 1;
    let joined = deferred::join((input(), input()));
    let list_line = line!() + 1;
    let listed = deferred::DeferredList::new([input(), input()]).all();
    let first_line = line!() + 1;
    let first = deferred::first_settled([input(), input()]);
    let settled_join_line = line!() + 1;
    let settled_join = deferred::join_settled((input(), input()));
    let settle_line = line!() + 1;
    let settled = deferred::settle_all([input(), input()]);
    let callback_line = line!() + 1;
    let on_callback = deferred::DeferredList::new([input(), input()]).fire_on_one_callback();
    let errback_line = line!() + 1;
    let on_errback = deferred::DeferredList::new([input(), input()]).fire_on_one_errback();
    let dump = pending_chains();
    let text = dump.to_string();
    for (k, (line, name)) in [
        (race_line, "race"),
        (join_line, "join"),
        (list_line, "DeferredList::all"),
        (first_line, "first_settled"),
        (settled_join_line, "join_settled"),
        (settle_line, "settle_all"),
        (callback_line, "DeferredList::fire_on_one_callback"),
        (errback_line, "DeferredList::fire_on_one_errback"),
    ]
    .into_iter()
    .enumerate()
    {
        let output = one_made_on(&dump, line);
        assert_eq!(output.waits_on(), WaitsOn::Inputs(2), "{dump}");
        assert_eq!(output.made_by(), Some(name), "output {k}:\n{dump}");
        assert!(
            text.contains(&format!(
                "Deferred {} from {name}, created at {}",
                output.id(),
                at_line(line)
            )),
            "output {k}:\n{text}"
        );
        assert!(
            text.contains(&format!(
                "waits on 2 inputs of {name}, pending chains listed apart"
            )),
            "output {k}:\n{text}"
        );
        let mut fed: Vec<u32> = dump
            .iter()
            .filter_map(|chain| chain.input_of())
            .filter(|(of, _)| *of == output.id())
            .map(|(_, index)| index)
            .collect();
        fed.sort_unstable();
        assert_eq!(fed, [0, 1], "output {k}:\n{dump}");
    }
    for resolver in resolvers {
        resolver.callback(1);
    }
    assert_eq!(raced.wait().unwrap(), (0, 1));
    assert_eq!(joined.wait().unwrap(), (1, 1));
    assert_eq!(listed.wait().unwrap().len(), 2);
    assert_eq!(first.wait().unwrap(), (0, 1));
    assert!(matches!(settled_join.wait().unwrap(), (Ok(1), Ok(1))));
    assert_eq!(settled.wait().unwrap().len(), 2);
    assert!(on_callback.wait().is_ok());
    assert_eq!(on_errback.wait().unwrap(), [1, 1]);
}

/// The same for the local kind's combinators, and `map_concurrent`'s output.
#[test]
fn local_combinators_and_map_concurrent_name_themselves() {
    use deferred::local;
    let mut resolvers = Vec::new();
    let mut input = || {
        let (d, resolver) = LocalDeferred::<u32>::pending();
        resolvers.push(resolver);
        d
    };
    let gather_line = line!() + 1;
    let gathered = local::gather_results([input(), input()]);
    let race_line = line!() + 1;
    let raced = local::race([input(), input()]);
    let join_line = line!() + 1;
    let joined = local::join((input(), input()));
    let settled_join_line = line!() + 1;
    let settled_join = local::join_settled((input(), input()));
    let list_line = line!() + 1;
    let listed = local::DeferredList::new([input(), input()]).all();
    let settle_line = line!() + 1;
    let settled = local::settle_all([input(), input()]);
    let first_line = line!() + 1;
    let first = local::first_settled([input(), input()]);
    let map_err_line = line!() + 1;
    let mapped = input().map_err(|failure: Failure| failure);
    let (item, item_resolver) = LocalDeferred::<u32>::pending();
    let item = std::cell::Cell::new(Some(item));
    let concurrent_line = line!() + 1;
    let concurrent = local::map_concurrent([0_u32], 1, move |_| item.take().unwrap());
    let dump = pending_chains();
    let text = dump.to_string();
    for (line, name, inputs) in [
        (gather_line, "gather_results", 2),
        (race_line, "race", 2),
        (join_line, "join", 2),
        (settled_join_line, "join_settled", 2),
        (list_line, "DeferredList::all", 2),
        (settle_line, "settle_all", 2),
        (first_line, "first_settled", 2),
        (map_err_line, "map_err", 1),
    ] {
        let output = one_made_on(&dump, line);
        assert!(output.is_local(), "{text}");
        assert_eq!(output.made_by(), Some(name), "{text}");
        assert_eq!(output.waits_on(), WaitsOn::Inputs(inputs), "{text}");
        assert!(
            text.contains(&format!(
                "LocalDeferred {} from {name}, created at {}",
                output.id(),
                at_line(line)
            )),
            "{text}"
        );
    }
    // The output and its item, both placed at the call: the output is the one whose inputs
    // it waits on.
    let outputs: Vec<_> = made_on(&dump, concurrent_line)
        .into_iter()
        .filter(|chain| matches!(chain.waits_on(), WaitsOn::Inputs(_)))
        .collect();
    assert_eq!(outputs.len(), 1, "{text}");
    assert_eq!(outputs[0].made_by(), Some("map_concurrent"), "{text}");
    assert!(
        text.contains("waits on 1 input of map_concurrent, a pending chain listed apart"),
        "{text}"
    );

    for resolver in resolvers {
        resolver.callback(1);
    }
    item_resolver.callback(5);
    assert_eq!(gathered.wait().unwrap(), [1, 1]);
    assert_eq!(raced.wait().unwrap(), (0, 1));
    assert_eq!(joined.wait().unwrap(), (1, 1));
    assert!(matches!(settled_join.wait().unwrap(), (Ok(1), Ok(1))));
    assert_eq!(listed.wait().unwrap().len(), 2);
    assert_eq!(settled.wait().unwrap().len(), 2);
    assert_eq!(first.wait().unwrap(), (0, 1));
    assert_eq!(mapped.wait().unwrap(), 1);
    assert_eq!(concurrent.wait().unwrap(), [5]);
}
