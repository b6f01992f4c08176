use std::rc::Rc;

use deferred::chain;

fn main() {
    let shared = Rc::new(10);
    let d = chain! {
        1
        then move |x| x + *shared
    };
    let _ = d.wait();
}
