//! Steps whose bodies never return (`todo!()`, `panic!`) compile: the chain fails there.
#![deny(warnings)]

use deferred::{Panicked, chain};

fn main() {
    std::panic::set_hook(Box::new(|_| {}));
    let d = chain! {
        1u32
        then |x| x + 1
        then |_| todo!()
        then |y: u32| y * 2
        catch |_| unreachable!("a catch that never returns")
        finally || panic!("and a finally")
    };
    assert!(d.wait().unwrap_err().is::<Panicked>());
}
