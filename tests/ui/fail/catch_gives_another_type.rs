use deferred::chain;

fn main() {
    let d = chain! {
        "alice".to_owned()
        catch |f| "nobody"
    };
    let _ = d.wait();
}
