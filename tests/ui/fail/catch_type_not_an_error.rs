use deferred::chain;

fn main() {
    let d = chain! {
        1
        catch |code: u32| code
    };
    let _ = d.wait();
}
