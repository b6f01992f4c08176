//! What tripped a newcomer in their first hour, each fixed and tested for both kinds: a
//! cancelled `map_concurrent` starts nothing more, whatever its items do with their own
//! failures; a producer attaches (or replaces) its canceller after the work has started
//! (`Resolver::set_canceller`). The tests are written once (tests/first_hour/common.rs).

mod support;

mod send {
    mod kind {
        pub use deferred_core::{Deferred, Resolver, map_concurrent};
    }
    include!("first_hour/common.rs");
}

mod local {
    #![allow(clippy::arc_with_non_send_sync)]
    mod kind {
        pub use deferred_core::local::map_concurrent;
        pub use deferred_core::{LocalDeferred as Deferred, LocalResolver as Resolver};
    }
    include!("first_hour/common.rs");
}
