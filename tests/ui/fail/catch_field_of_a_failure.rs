use deferred::{Deferred, Failure, chain};

#[derive(Debug)]
struct HttpError(u16);
impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "HTTP {}", self.0) }
}
impl std::error::Error for HttpError {}

fn main() {
    let d = chain! {
        Deferred::<u16>::fail(Failure::new(HttpError(404)))
        catch |e| e.0
    };
    let _ = d.wait();
}
