use std::rc::Rc;

use deferred::chain;

fn main() {
    let d = chain! {
        1
        then |x| Rc::new(x)
        then |rc| *rc + 1
    };
    let _ = d.wait();
}
