use deferred::chain;

fn main() {
    let d = chain! {
        1
        catch |_: NotFound| 0
        then |x| x + 1
    };
    let _ = d.wait();
}
