use std::rc::Rc;

use deferred::chain;

fn main() {
    let d = chain! {
        1
        then |x| Rc::new(x)
    };
    let _ = d.wait();
}
