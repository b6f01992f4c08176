//! The chain: the state machine of a Deferred and everything built on it, written once and
//! compiled once for each kind of Deferred.
//!
//! This folder is not a module of its own: [`crate::shared`] (the `Send` kind, [`Deferred`])
//! and [`crate::local`] (the one-thread kind, [`LocalDeferred`]) each include it, after saying
//! in a few lines what sets their kind apart (their `kind` module: the pointer a chain is
//! shared through, the lock around its state, and the bound its values and steps must meet).
//! So the rules below are stated and enforced once, and both kinds keep them.
//!
//! | file | what |
//! | --- | --- |
//! | `deferred.rs` | the `add_*` methods, `pending`, `Future`, `wait`, the `Resolver` (included by each kind beside its types, not a module here) |
//! | `pending/` | a pending chain: its state machine and run (`mod.rs`, `run.rs`), its stages and slots (`stage.rs`), its cancellation (`cancel.rs`, with `CancelHandle`) |
//! | `fan_in.rs` | the bookkeeping the combinators share |
//! | `list.rs`, `gather.rs`, `race.rs` | `DeferredList`, `settle_all`, `gather_results`, `race` |
//! | `first_settled.rs` | `first_settled`: the first to fire, either way, decides |
//! | `join.rs` | `join`, `join_settled`: Deferreds of different types as one of a tuple |
//! | `maybe.rs` | `maybe_deferred` |
//! | `semaphore.rs` | `DeferredSemaphore`, `DeferredLock`, `map_concurrent` |
//! | `shared_result.rs` | `SharedResult`: one result, many consumers |
//! | `timeout.rs` | `add_timeout` |
//! | `later.rs` | `defer_later` |
//! | `looping.rs` | `LoopingCall` |
//! | `retry.rs` | `retry`, `retry_if` |
//! | `queue.rs` | `DeferredQueue` |
//!
//! [`Deferred`]: crate::Deferred
//! [`LocalDeferred`]: crate::LocalDeferred

pub(crate) use super::kind::*;
// What the including kind defines beside its types (`chain/deferred.rs`, included there).
pub(crate) use super::{Outcome, SPENT, run_step, unwound_at};

pub(crate) mod fan_in;
pub(crate) mod first_settled;
pub(crate) mod gather;
pub(crate) mod join;
pub(crate) mod later;
pub(crate) mod line;
pub(crate) mod list;
pub(crate) mod looping;
pub(crate) mod maybe;
pub(crate) mod pending;
pub(crate) mod queue;
pub(crate) mod race;
pub(crate) mod retry;
pub(crate) mod semaphore;
pub(crate) mod shared_result;
pub(crate) mod timeout;
