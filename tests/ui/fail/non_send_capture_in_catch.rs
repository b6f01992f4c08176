use std::rc::Rc;

use deferred::{Failure, chain};

fn main() {
    let fallback = Rc::new(0);
    let d = chain! {
        Err::<u32, Failure>(Failure::msg("no"))
        catch move |_| *fallback
        then |x| x + 1
    };
    let _ = d.wait();
}
