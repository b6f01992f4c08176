use deferred::chain;

fn main() {
    let d = chain! {
        1
        catch |e, f| 0
    };
    let _ = d.wait();
}
