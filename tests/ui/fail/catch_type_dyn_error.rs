use deferred::{Deferred, chain};

fn main() {
    // "Any error", as a function parameter would take it.
    let d = chain! {
        Deferred::<u32>::succeed(1)
        catch |e: &dyn std::error::Error| { eprintln!("failed: {e}"); 0 }
    };
    let _ = d.wait();
}
