use deferred::{Deferred, chain};

fn main() {
    // "Any error", with the markers a trait object needs parentheses for.
    let d = chain! {
        Deferred::<u32>::succeed(1)
        catch |e: &(dyn std::error::Error + Send + Sync)| { eprintln!("failed: {e}"); 0 }
    };
    let _ = d.wait();
}
