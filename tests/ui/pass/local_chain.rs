// A chain that starts from a LocalDeferred is a chain of LocalDeferreds: its steps may hold and
// give `Rc` state, which a chain of Deferreds would refuse.
use std::cell::RefCell;
use std::rc::Rc;

use deferred::{Failure, LocalDeferred, chain};

fn main() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let log = seen.clone();
    let (start, resolver) = LocalDeferred::<u32>::pending();
    let d: LocalDeferred<Rc<str>> = chain! {
        start
        then |id| {
            log.borrow_mut().push(id);
            Rc::<str>::from(format!("#{id}"))
        }
        then |name| LocalDeferred::<_>::succeed(name)
        catch |f: Failure| Rc::from(f.to_string())
        finally || seen.borrow_mut().push(0)
    };
    resolver.callback(7);
    assert_eq!(&*d.wait().unwrap(), "#7");
}
