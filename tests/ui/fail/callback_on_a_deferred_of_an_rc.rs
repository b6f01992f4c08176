// A Deferred of a value that is not `Send` can be made (`succeed` asks for nothing), but adding
// a step to it says why it cannot be a `Deferred`'s value and points to `LocalDeferred`.
use std::rc::Rc;

use deferred::Deferred;

fn main() {
    let d = Deferred::succeed(Rc::new(1_u32)).add_callback(|n| Ok(*n + 1));
    drop(d);
}
