//! `chain!` in a crate that imports deferred-chain as `promises`: no crate named `deferred` is
//! in scope here, so an expansion that named `::deferred` would not compile.

#[cfg(test)]
mod tests {
    use promises::{Deferred, Failure, chain};

    #[derive(Debug)]
    struct NotFound;

    impl std::fmt::Display for NotFound {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("not found")
        }
    }

    impl std::error::Error for NotFound {}

    fn lookup(id: u32) -> Deferred<u32> {
        match id {
            0 => Deferred::fail(Failure::new(NotFound)),
            id => Deferred::succeed(id * 10),
        }
    }

    fn describe(id: u32) -> Deferred<String> {
        chain! {
            lookup(id)
            then |n| Ok::<_, Failure>(n + 1)
            then |m| format!("#{id}: {m}")
            catch |e: NotFound| format!("{e}")
            finally || ()
        }
    }

    #[test]
    fn chain_names_the_renamed_dependency() {
        assert_eq!(describe(4).wait().unwrap(), "#4: 41");
        assert_eq!(describe(0).wait().unwrap(), "not found");
    }
}
