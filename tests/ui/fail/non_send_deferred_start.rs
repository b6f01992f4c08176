use std::rc::Rc;

use deferred::{chain, Deferred};

fn main() {
    let d = chain! {
        Deferred::<_>::succeed(Rc::new(1))
        then |rc| *rc + 1
    };
    let _ = d.wait();
}
