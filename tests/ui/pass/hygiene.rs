//! The macro's own names do not clash with the user's, and it names everything by full path.
#![deny(warnings)]

mod shadowing {
    // Names the expansion uses, taken by user code.
    #[allow(dead_code)]
    pub struct Deferred;
    #[allow(dead_code)]
    pub type Result<T> = std::result::Result<T, ()>;
    #[allow(dead_code)]
    pub fn probe() {}

    pub fn run() -> u32 {
        let __chain = 1;
        let __v = 2;
        let __outcome = 3;
        let __error = 4;
        let d = deferred::chain! {
            __chain
            then move |x| x + __v
            then move |x| Ok(x + __outcome)
            catch move |_| __error
            finally move || __v
        };
        d.wait().unwrap()
    }
}

#[no_implicit_prelude]
mod no_prelude {
    pub fn run() -> u32 {
        let d = ::deferred::chain! {
            1u32
            then |x| x + 1
            catch |_: ::deferred::Cancelled| 0
            finally |outcome| ::std::assert!(outcome.is_ok())
        };
        d.wait().unwrap()
    }
}

fn main() {
    assert_eq!(shadowing::run(), 6);
    assert_eq!(no_prelude::run(), 2);
}
