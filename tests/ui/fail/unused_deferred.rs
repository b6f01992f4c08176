#![deny(unused_must_use)]

use deferred::chain;

fn main() {
    chain! {
        1
        then |x| x + 1
    };
}
