use std::rc::Rc;

use deferred::{LocalDeferred, chain};

#[derive(Debug)]
enum CacheError {
    Missing,
}

fn cached(key: &str) -> LocalDeferred<Rc<String>, CacheError> {
    if key.is_empty() {
        LocalDeferred::fail(CacheError::Missing)
    } else {
        LocalDeferred::succeed(Rc::new(key.to_owned()))
    }
}

fn main() {
    let d = chain! {
        cached("greeting")
        then |text| text.len()
    };
    let _ = d.wait();
}
