use std::rc::Rc;

use deferred::{Failure, LocalDeferred, chain};

fn main() {
    let d = chain! {
        LocalDeferred::<_, Failure>::succeed(Rc::new(5))
        then |rc| *rc + 1
        finally |outcome: Result<i32, _>| drop(outcome)
    };
    let _ = d.wait();
}
