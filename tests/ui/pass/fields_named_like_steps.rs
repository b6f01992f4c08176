//! Fields named `then`, `catch` and `finally`, followed by a `|` or a `||` (bitwise or logical
//! or), in the start and in a step's body: valid code, not a step written after a `.`.
#![deny(warnings)]

use deferred::{Deferred, chain};

#[derive(Clone, Copy)]
struct Rule {
    then: u32,
    catch: bool,
    finally: bool,
}

fn main() {
    let rule = Rule {
        then: 1,
        catch: false,
        finally: true,
    };
    let d = chain! { rule.then | 2 then |x| x + 1 };
    assert_eq!(d.wait().unwrap(), 4);
    let d = chain! { rule.finally || rule.catch then |b| !b };
    assert!(!d.wait().unwrap());
    let d = chain! {
        Deferred::<u32>::succeed(4)
        then |x| rule.then | x
        then |x| rule.catch || x > 4
        finally || assert!(rule.finally | rule.catch)
    };
    assert!(d.wait().unwrap());
}
