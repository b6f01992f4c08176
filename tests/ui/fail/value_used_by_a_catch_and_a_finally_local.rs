use std::rc::Rc;

use deferred::{LocalDeferred, chain};

fn main() {
    let log = Rc::new(std::cell::RefCell::new(Vec::<String>::new()));
    let d = chain! {
        LocalDeferred::<u32>::succeed(1)
        catch |f| { log.borrow_mut().push(f.to_string()); 0 }
        then |n| n + 1
        finally || log.borrow_mut().push("done".to_owned())
    };
    let _ = d.wait();
}
