use std::cell::RefCell;
use std::rc::Rc;

use deferred::chain;

fn main() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let d = chain! {
        1
        then move |x| chain! {
            x + 1
            then move |y| { log.borrow_mut().push(y); y }
        }
        then |y| y * 2
    };
    let _ = d.wait();
}
