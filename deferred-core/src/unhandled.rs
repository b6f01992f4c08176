//! Rule 5: a failure nobody handled is reported, once, through a replaceable hook.
//!
//! A Deferred dropped while it holds a failure — or whose failure arrives after its handle was
//! dropped — reports it here ("Unhandled error in Deferred"). A failure that reached an errback,
//! `wait`, an `.await` or a `catch` was handled and is never reported.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, RwLock};

use crate::failure::Failure;

/// The function that receives unhandled failures.
pub type UnhandledHook = dyn Fn(&Failure) + Send + Sync + 'static;

static HOOK: RwLock<Option<Arc<UnhandledHook>>> = RwLock::new(None);

/// Replaces the function that receives failures nobody handled; returns the previous one
/// (`None` for the default, which writes `Unhandled error in Deferred:` and the failure's
/// `Debug` form — message, steps and backtrace — to stderr).
///
/// The hook runs on the thread that dropped the last handle or fired the abandoned chain. A
/// panic in the hook is caught and written to stderr; it never unwinds into the chain.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use deferred_core::{Deferred, Failure, set_unhandled_hook};
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let log = seen.clone();
/// let previous = set_unhandled_hook(move |f: &Failure| log.lock().unwrap().push(f.to_string()));
///
/// drop(Deferred::<u32>::fail(Failure::msg("nobody listened")));
/// assert!(seen.lock().unwrap().contains(&"nobody listened".to_string()));
///
/// deferred_core::restore_unhandled_hook(previous);
/// ```
pub fn set_unhandled_hook(
    hook: impl Fn(&Failure) + Send + Sync + 'static,
) -> Option<Arc<UnhandledHook>> {
    let mut slot = HOOK
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    slot.replace(Arc::new(hook))
}

/// Puts back a hook returned by [`set_unhandled_hook`] (`None` restores the default).
pub fn restore_unhandled_hook(previous: Option<Arc<UnhandledHook>>) {
    *HOOK
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = previous;
}

/// Reports `result` if it is an error: the end of the line for a result nobody will see.
pub(crate) fn report_result<T, E: 'static>(result: Result<T, E>) {
    if let Err(error) = result {
        report(error);
    }
}

/// Reports an error nobody handled. A `Failure` is reported as it is; another error type is
/// named by its type (use `Failure` as the error type to get messages and trails).
pub(crate) fn report<E: 'static>(error: E) {
    let mut error = Some(error);
    let failure = match (&mut error as &mut dyn Any).downcast_mut::<Option<Failure>>() {
        Some(failure) => failure.take().expect("just wrapped"),
        None => Failure::msg(format!(
            "an error of type `{}` (use `Failure` as the error type to see its message)",
            std::any::type_name::<E>()
        )),
    };
    let hook = HOOK
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let delivered = catch_unwind(AssertUnwindSafe(|| match hook {
        Some(hook) => hook(&failure),
        None => eprintln!("Unhandled error in Deferred:\n{failure:?}"),
    }));
    if delivered.is_err() {
        eprintln!(
            "Unhandled error in Deferred (and the unhandled-error hook panicked):\n{failure:?}"
        );
    }
    drop(error);
}
