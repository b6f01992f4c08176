// An `Inbox` moved to a worker thread, to make the Deferreds the worker fires: it stays on its
// loop's thread. Make them there with `inbox.pending()` and send the `HomeResolver`, or post
// through `inbox.handle()`.
use deferred::Failure;
use deferred::local::Inbox;

fn main() {
    let inbox = Inbox::new(|| {});
    let worker = std::thread::spawn(move || {
        let (_answer, resolver) = inbox.pending::<u32, Failure>();
        resolver.callback(42);
    });
    let _ = worker.join();
}
