// A `catch` that reads a field of what it takes: the chain's own error type, a typed catch's, a name bound again.
use deferred::{Deferred, Failure, chain};

#[derive(Debug)]
struct HttpError(u16);
impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "HTTP {}", self.0) }
}
impl std::error::Error for HttpError {}
impl From<Failure> for HttpError { fn from(_: Failure) -> Self { HttpError(500) } }

struct P { code: u16 }

fn main() {
    let d = chain! {
        Deferred::<u16, HttpError>::fail(HttpError(404))
        catch |e| e.0
    };
    let d2 = chain! {
        Deferred::<u16>::fail(Failure::new(HttpError(404)))
        catch |e: HttpError| e.0
        catch |e| { let e = P { code: e.to_string().len() as u16 }; e.code }
    };
    let d3 = chain! {
        Deferred::<u16>::fail(Failure::new(HttpError(404)))
        catch |e| e.downcast_ref::<HttpError>().map(|e| e.0).unwrap_or(0)
    };
    assert_eq!(d.wait().unwrap(), 404);
    assert_eq!(d2.wait().unwrap(), 404);
    assert_eq!(d3.wait().unwrap(), 404);
}
