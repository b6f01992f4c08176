use std::error::Error;
use std::error::Error as StdError;

use deferred::chain;

#[derive(Debug)]
struct NotFound;
impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not found")
    }
}
impl Error for NotFound {}

fn main() {
    let d = chain! {
        1
        catch |e: Box<dyn Error + Send + Sync>| e.to_string().len()
        catch |e: NotFound| 1
    };
    let _ = d.wait();
    let e = chain! {
        2
        catch |e: Box<dyn StdError + Send>| e.to_string().len()
        catch |e: NotFound| 1
    };
    let _ = e.wait();
}
