use deferred::{chain, Deferred};

fn fetch(x: u32) -> Deferred<u32> {
    Deferred::succeed(x)
}

async fn run() {
    let d = chain! {
        1
        then |x| fetch(x).await
    };
    let _ = d.await;
}

fn main() {
    let _ = run();
}
