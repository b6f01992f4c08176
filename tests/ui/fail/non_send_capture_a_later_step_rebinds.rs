use std::rc::Rc;

use deferred::chain;

fn main() {
    let shared = Rc::new(10);
    // A later step binds `shared`: the first step's `shared` is still the `Rc` outside.
    let d = chain! {
        1
        then move |x| x + *shared
        then |shared| shared * 2
    };
    let _ = d.wait();
}
