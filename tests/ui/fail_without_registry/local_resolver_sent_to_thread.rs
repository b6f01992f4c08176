// A `LocalResolver` given to a worker thread to fire: a local chain is fired on its own thread.
// A worker fires a `HomeResolver` (`inbox.pending()`), whose result comes home to the loop.
use deferred::LocalDeferred;

fn main() {
    let (answer, resolver) = LocalDeferred::<u32>::pending();
    let worker = std::thread::spawn(move || resolver.callback(42));
    let _ = worker.join();
    let _ = answer.wait();
}
