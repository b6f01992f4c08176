use deferred::{chain, Deferred, Failure};

#[derive(Debug)]
struct AppError;
impl From<Failure> for AppError {
    fn from(_: Failure) -> AppError {
        AppError
    }
}

fn main() {
    let d = chain! {
        Deferred::<u32, AppError>::succeed(1)
        catch |_: Box<dyn std::error::Error>| 0
    };
    let _ = d.wait();
}
