use std::cell::RefCell;
use std::rc::Rc;

use deferred::{Failure, map_concurrent};

fn main() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let d = map_concurrent(vec![1_u32, 2, 3], 2, move |n| {
        seen.borrow_mut().push(n);
        Ok::<_, Failure>(n * 2)
    });
    let _ = d.wait();
}
