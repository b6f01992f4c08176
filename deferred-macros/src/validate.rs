//! The rules that involve more than one step. Each adds an error to the chain; none changes its
//! types, so the chain is still expanded in full and the user sees only these errors.

use quote::ToTokens;
use syn::Error;

use crate::parse::{Chain, Handler, StepKind};

/// Checks the cross-step rules:
///
/// - A `catch` right after a catch-all (`catch |f|`) can never run: the catch-all already took
///   every failure, and nothing between them can fail again. (Unless the catch-all visibly
///   passes a failure on: `catch |f| Err(wrap(f))` may be followed by another `catch`.)
/// - A `catch |e: T|` right after another `catch |e: T|` can never run either (unless a catch
///   between them, or the first one, visibly passes a failure on).
///
/// A `then` or `finally` in between can raise new failures, so it starts a new run of catches.
pub fn validate(chain: &mut Chain) {
    let mut catch_all_before = false;
    let mut trapped_before: Vec<String> = Vec::new();
    for step in &chain.steps {
        let StepKind::Catch { ty } = &step.kind else {
            catch_all_before = false;
            trapped_before.clear();
            continue;
        };
        if matches!(step.handler, Handler::Invalid(_)) {
            continue;
        }
        if catch_all_before {
            chain.errors.push(Error::new(
                step.keyword.span(),
                "this `catch` can never run: the `catch` before it takes every failure and \
                 passes none on; remove this one, or give the earlier one a type: \
                 `catch |e: ErrorType| ...`",
            ));
            continue;
        }
        if !step.keeps_failures_in() {
            // Its body may give a new failure, of any type: what the catches before it trap
            // may come again.
            trapped_before.clear();
        }
        if step.is_catch_all() {
            catch_all_before = step.keeps_failures_in();
            continue;
        }
        let Some(ty) = ty else { continue };
        let name = ty.to_token_stream().to_string();
        if trapped_before.contains(&name) {
            chain.errors.push(Error::new(
                step.keyword.span(),
                format!(
                    "this `catch` can never run: the `catch` before it already traps every \
                     `{name}`; remove one of them"
                ),
            ));
        } else if step.keeps_failures_in() {
            trapped_before.push(name);
        }
    }
}
