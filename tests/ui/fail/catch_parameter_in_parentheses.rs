use deferred::{Deferred, chain};

fn fetch(id: u32) -> Deferred<u32> {
    Deferred::succeed(id)
}

fn main() {
    // JavaScript's `catch (e) { ... }`: the parameter in parentheses, the body a block.
    let d = chain! {
        fetch(1)
        then |id| id * 10
        catch (e) { eprintln!("lookup failed: {e}"); 0 }
    };
    let _ = d.wait();
}
