use deferred::chain;

#[derive(Debug)]
struct NotFound;
impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not found")
    }
}
impl std::error::Error for NotFound {}

fn main() {
    let d = chain! {
        1
        catch |f| 0
        catch |e: NotFound| 1
    };
    let _ = d.wait();
}
