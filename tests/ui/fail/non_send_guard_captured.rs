use std::sync::Mutex;

use deferred::chain;

static TOTAL: Mutex<u32> = Mutex::new(0);

fn main() {
    let total = TOTAL.lock().unwrap();
    let d = chain! {
        1
        then |x| x + 1
        then move |x| x + *total
        then |sum| sum * 2
    };
    let _ = d.wait();
}
