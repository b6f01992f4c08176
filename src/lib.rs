//! Twisted-style promise chains for Rust: a typed [`Deferred`] and the `chain!` macro.
//!
//! ```
//! use deferred::{Deferred, Failure};
//!
//! let (id, resolver) = Deferred::<u32>::pending();
//! let line = id.add_callback(|id| Ok(format!("employee #{id}")));
//! resolver.callback(7);
//! assert_eq!(line.wait().unwrap(), "employee #7");
//! ```
#![forbid(unsafe_code)]

pub use deferred_core::*;
