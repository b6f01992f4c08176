//! The glue that `chain!` expands to. Not public API: anything here may change in any release.
//!
//! A chain is of the kind of its start (`kind.rs`): a `LocalDeferred` start makes a chain of
//! `LocalDeferred`s, anything else (a `Deferred`, a `Result`, a plain value) a chain of
//! `Deferred`s. The expansion takes the kind from the start once
//! (`let __kind = kind_of(&__chain)`) and adds every step through it
//! (`__kind.add_callback(__chain, ...)`), so each kind keeps its own rules: a [`SendChain`]
//! asks for what `Deferred` asks (`Send` steps and values), a [`LocalChain`] for nothing more.
//!
//! The other jobs, one file each, are done by the type system so that a mistake becomes a
//! compile error that reads as a sentence (the `#[diagnostic::on_unimplemented]` traits):
//!
//! | file | job |
//! | --- | --- |
//! | `kind.rs` | the two kinds of chain, and how a step is added to each |
//! | `body.rs` | what a step's body gives: a Deferred, a `Result` or a plain value ([`probe`]) |
//! | `catch.rs` | what a typed `catch` traps ([`catch_as`]), that it gives the chain's value type, and a `catch` of two types (`\|`, [`or_in_catch`]) |
//! | `finally.rs` | what a `finally` does with the outcome, and the functions it may name (included by `kind.rs`) |
//! | `trail.rs` | where a failure was raised: the step whose body gave it ([`SendChain::raised`]) (included by `kind.rs`) |

mod body;
mod catch;
mod kind; // includes finally.rs and trail.rs

pub use body::*;
pub use catch::*;
pub use kind::*;
