//! The examples of `deferred-chain`, one program each (see this package's `[[example]]`
//! targets); their shared employee directory is `directory/`. Nothing to use from here.
