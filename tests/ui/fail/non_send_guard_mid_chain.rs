use std::sync::Mutex;

use deferred::chain;

static TOTAL: Mutex<u32> = Mutex::new(0);

fn main() {
    let d = chain! {
        1
        then |x| (x, TOTAL.lock().unwrap())
        then |(x, total)| x + *total
        then |sum| sum * 2
    };
    let _ = d.wait();
}
