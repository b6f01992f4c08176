use std::rc::Rc;

use deferred::chain;

fn main() {
    let d = chain! {
        Rc::new(1)
        then |rc| *rc + 1
    };
    let _ = d.wait();
}
