//! The `chain!` macro of the [`deferred-chain`](https://docs.rs/deferred-chain) crate. Use it through
//! `deferred::chain!`: its documentation is there.
//!
//! The macro reads its input in three steps, one module each: `parse` (tokens to a `Chain`,
//! the model of the input, and nothing else), `validate` (the rules a step and the steps together
//! must follow) and `expand` (the model to tokens); `suggest` finds the keyword a misspelled word
//! was meant to be. Each takes and gives `proc_macro2` types, so that they run in tests and fuzzing, away
//! from the compiler.

#![warn(missing_docs)]

mod expand;
mod parse;
mod suggest;
mod validate;

#[cfg(test)]
mod props;

use proc_macro2::TokenStream;

/// (The macro is implemented in the `deferred-macros` crate; use it as `deferred::chain!`.)
#[proc_macro]
pub fn chain(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    chain_tokens(input.into()).into()
}

/// The whole macro on `proc_macro2` tokens. A mistake that leaves no chain to expand (an empty
/// input, a missing start, a start that is no expression) becomes the expansion's only content.
fn chain_tokens(input: TokenStream) -> TokenStream {
    match parse::parse(input) {
        Ok(mut chain) => {
            validate::validate(&mut chain);
            expand::expand(&chain)
        }
        Err(error) => error.into_compile_error(),
    }
}
