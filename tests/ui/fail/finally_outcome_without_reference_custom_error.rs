use deferred::{Failure, chain};

#[derive(Debug)]
enum AppError {
    Failed(Failure),
}

impl From<Failure> for AppError {
    fn from(failure: Failure) -> Self {
        AppError::Failed(failure)
    }
}

fn main() {
    let d = chain! {
        Ok::<u32, AppError>(1)
        finally |outcome: Result<u32, AppError>| {
            if let Err(AppError::Failed(failure)) = outcome {
                eprintln!("{failure}");
            }
        }
        then |x| x + 1
    };
    let _ = d.wait();
}
