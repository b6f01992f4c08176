use deferred::chain;

fn main() {
    let d = chain! {
        1
        catch || 0
    };
    let _ = d.wait();
}
