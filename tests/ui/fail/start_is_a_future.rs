use deferred::chain;

async fn fetch() -> u32 {
    1
}

fn main() {
    let d = chain! {
        fetch()
        then |x| x + 1
    };
    let _ = d.wait();
}
