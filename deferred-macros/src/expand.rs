//! [`Chain`] -> tokens.
//!
//! The expansion is a block that builds the chain one statement per segment, where a segment is
//! a run of `then`s (with the `catch` right after it, if there is one), one `catch` or one
//! `finally`:
//!
//! ```text
//! {
//!     const __CHAIN_STEPS: Steps = &[here(), here(), here(), here(), here()]; // each keyword
//!     let __chain = <start, as a Deferred or a LocalDeferred>;
//!     let __kind = kind_of(&__chain);                              // SendChain or LocalChain
//!     let __chain = __kind.add_run(__chain, move |a| {             // then |a| A
//!         let __v = A;
//!         __kind.add_run(<__v as a link>, move |b| {               // then |b| B   (`a` in scope)
//!             let __v = B;
//!             __kind.add_callback(<__v as a link>, move |c| {      // then |c| C   (the last)
//!                 let __v = C;
//!                 <__v as a link>
//!             })
//!         }, move || &__CHAIN_STEPS[1..3])                         // a failure skips B, C
//!     }, move || &__CHAIN_STEPS[0..3]);                            // a failure skips A, B, C
//!     let __chain = __kind.add_errback(__chain, ...);              // catch
//!     let __chain = __kind.add_both(__chain, ...);                 // finally
//!     __chain
//! }
//! ```
//!
//! A run of `then`s followed by a `catch` is one statement, one step of the Deferred before it:
//!
//! ```text
//! let __chain = __kind.add_run_catch(__chain,
//!     move |a| { ... },                                  // then |a| A then |b| B, as above
//!     move || &__CHAIN_STEPS[0..2],                      // a failure skips A, B
//!     move |__chain| __kind.add_errback(__chain, ...),   // catch, on the run's outcome
//!     __private::here(),                                 // where the catch is
//! );
//! ```
//!
//! The run's outcome (a success's, or the failure that skipped the run, or the failure of a
//! step's panic) is handed to the last closure, which adds the `catch` to it as a statement of
//! its own would add it to the chain after the run. On a pending start, an outcome that is
//! itself pending (a step returned a pending Deferred) is waited on first, and the closure runs
//! on it once it has arrived, as the start's chain's next stage
//! (`Deferred::__add_callbacks_then`): the `catch` runs at once on a fired outcome. So a start
//! still pending when the chain is built gets one stage for the run and its `catch`, the links
//! of Deferreds the run's steps return keep nothing after its last step (the last can hand its
//! wait over), and a synchronous chain still allocates nothing. (A start that has fired runs
//! the run at once, and the `catch` is added to the run's outcome, pending or not.)
//!
//! - The start decides the chain's kind: a `LocalDeferred` start makes a chain of
//!   `LocalDeferred`s, any other start (a `Deferred`, a `Result`, a value) one of `Deferred`s.
//!   The expansion never names either type: every step goes through `__kind`, whose `add_*`
//!   methods ask for what the kind's own methods ask for (`Send` steps for a `Deferred`).
//! - A run of `then`s nests: step k+1 is added, inside step k's closure, to step k's outcome. So
//!   the names bound by step k are in scope in step k+1, each step's code appears once, and
//!   synchronous steps allocate nothing. A pending run allocates one link: the whole run is one
//!   callback of the Deferred before it.
//! - A failure skips every step after the one it reaches, which are nested inside that step's
//!   closure and so never added: each step but a segment's last is added with the steps from it
//!   to the end of its segment, a slice of the chain's constant `__CHAIN_STEPS` (where each step
//!   of the chain is, `here()` at its keyword, evaluated at compile time), which a failure records
//!   on its trail in order (a panic in the step: the steps after it). The closure that gives
//!   the slice captures nothing, so a stage is no larger, and the expansion stays linear.
//! - Each `add_*` call is spanned at its step's keyword. The `add_*` methods are
//!   `#[track_caller]`, so the keyword's location is the step's location in a `Failure`'s trail.
//! - What a body gives (a value, a `Result`, a Deferred) is sorted out by `::deferred::__private`
//!   (see its docs; `deferred` stands for the name the user's crate gives the library, see
//!   [`facade_name`]), in calls located at the body, so that a type error lands on the body; the
//!   closures the expansion builds are located at the user's closures, for the same reason.
//! - What the steps take from around the chain is checked at the top of the block, each check
//!   spanned at the name in the user's step: the syntax finds the names ([`captured_by_step`],
//!   [`assigned_captures`]), the types decide. `__kind.captured(&name)`: a `Deferred`'s steps
//!   take only `Send` values. `__private::captured_again(&name)`: a value two of the block's
//!   closures take must be `Copy` ([`captured_again`]). `__private::assigned_in_step`: a step
//!   written without `move` does not assign to a `Copy` variable, which would change its own copy.
//! - The macro's own names are `__`-prefixed and resolve at `Span::mixed_site()`: user code
//!   cannot see its variables. `__CHAIN_STEPS` is an item, which that hygiene does not hide: user
//!   code in the chain could name it (and a binding of its own of that name would meet it).

use std::cell::RefCell;

use proc_macro_crate::FoundCrate;
use proc_macro2::{Delimiter, Group, Ident, Span, TokenStream, TokenTree};
use quote::{ToTokens, quote, quote_spanned};
use syn::Token;
use syn::ext::IdentExt;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::visit::Visit;

use crate::parse::{Chain, Handler, Step, StepClosure, StepKind};

thread_local! {
    /// The name of the facade library in the crate whose `chain!` is being expanded: set by
    /// [`expand`] from [`facade_name`], read by [`krate`].
    static FACADE: RefCell<String> = RefCell::new(String::from("deferred"));
}

/// The name under which the crate being compiled sees the facade library, found as the
/// `proc-macro-crate` crate finds it, in that crate's Cargo.toml:
/// - a dependency renamed in Cargo.toml (`promises = { package = "deferred-chain", .. }`):
///   that name (`promises`);
/// - the dependency under its package name (`deferred-chain = "0.1"`), the package's own tests,
///   examples and doctests, or a lookup that fails: `deferred`, the library's name.
///
/// `proc-macro-crate` gives `deferred_chain` for the dependency under its package name: it does
/// not read the library's name (`[lib] name = "deferred"`). So a dependency renamed to exactly
/// `deferred_chain` is not told apart from it, and is named `deferred` too.
fn facade_name() -> String {
    match proc_macro_crate::crate_name("deferred-chain") {
        Ok(FoundCrate::Name(name)) if name != "deferred_chain" => name,
        _ => String::from("deferred"),
    }
}

/// `::deferred` (the name [`facade_name`] found), spanned at `span`, as `quote_spanned!(span=>
/// ::deferred)` would span it.
fn krate(span: Span) -> TokenStream {
    let name = FACADE.with(|name| Ident::new(&name.borrow(), span));
    quote_spanned!(span=> ::#name)
}

/// Expands a parsed and validated chain. Errors recorded in the chain are emitted as well: the
/// chain's own ones as statements, a step's where its value would be.
pub fn expand(chain: &Chain) -> TokenStream {
    FACADE.with(|name| *name.borrow_mut() = facade_name());
    let site = Span::mixed_site();
    let krate = krate(site);
    let chain_var = local("__chain", site);
    let kind_var = local("__kind", site);
    let errors = chain.errors.iter().map(syn::Error::to_compile_error);
    let start = expand_start(&chain.start);

    let mut segments = Vec::new();
    let mut input = Input::chain_var(chain.start.span());
    for piece in pieces(&chain.steps) {
        let last = match piece {
            Piece::Run { run, at, catch } => {
                segments.extend(expand_run(input, run, at, catch));
                catch.or(run.last()).expect("a run is not empty")
            }
            Piece::Alone(step) => {
                segments.push(match step.kind {
                    StepKind::Catch { .. } => expand_catch(input, step),
                    StepKind::Finally => expand_finally(input, step),
                    StepKind::Then => unreachable!("a `then` is in a run"),
                });
                step
            }
        };
        input = Input::chain_var(last.keyword.span());
    }
    let typed_catch = chain
        .steps
        .iter()
        .any(|step| matches!(step.kind, StepKind::Catch { ty: Some(_) }));
    let catch_traits = typed_catch.then(|| {
        quote_spanned! {site=>
            #[allow(unused_imports)]
            use #krate::__private::{
                CatchBoxedError as _, CatchCloneableError as _, CatchErrorType as _, CatchOther as _,
                CatchOwnError as _,
            };
        }
    });
    // Where each step is, in order, for the runs' lists of the steps a failure skips: `here()`
    // at each keyword, evaluated at compile time (see `expand_steps`).
    let steps_var = local("__CHAIN_STEPS", site);
    let step_locations = chain.steps.iter().map(|step| {
        let keyword = step.keyword.span();
        let facade = self::krate(keyword);
        quote_spanned!(keyword=> #facade::__private::here())
    });
    let steps_const = quote_spanned! {site=>
        #[allow(dead_code)]
        const #steps_var: #krate::__private::Steps = &[#(#step_locations),*];
    };
    let collected = collect_steps(chain);
    let captured = captured_by_step(&collected);
    let captures = captured_names(&captured).into_iter().map(|name| {
        let check = quote_spanned!(name.span()=> #kind_var.captured(&#name));
        quote_spanned!(site=> let #kind_var = #check;)
    });
    let assigned = assigned_captures(chain, &collected);
    let assigned = assigned.iter().map(assigned_check);
    let captured_again = captured_again(chain, &captured).into_iter().map(|name| {
        let facade = self::krate(name.span());
        quote_spanned!(name.span()=> #facade::__private::captured_again(&#name);)
    });
    quote_spanned! {site=> {
        #(#errors)*
        #(#assigned)*
        #[allow(unused_imports)]
        use #krate::__private::{
            CatchAnyParam as _, CatchFailureParam as _, FinallyDropped as _, FinallySettles as _,
            FinallyUnit as _, FutureStep as _, PlainStep as _, SettlesStep as _,
            StartFunction as _, StartNotAPair as _, StartPair as _, StartValue as _,
        };
        #catch_traits
        #steps_const
        let #chain_var = #start;
        let #kind_var = #krate::__private::kind_of(&#chain_var);
        #(#captures)*
        #(#captured_again)*
        #(let #chain_var = #segments;)*
        #chain_var
    }}
}

/// A part of a chain the expansion adds to the chain the part before it gave: a run of
/// `then`s, with the `catch` right after it if there is one (added in the same call), or a
/// `catch` or `finally` of its own. [`expand`] adds each; [`closure_of_each_step`] numbers the
/// closures they make.
#[derive(Clone, Copy)]
enum Piece<'a> {
    /// `run` is the chain's steps from `at`.
    Run {
        run: &'a [Step],
        at: usize,
        catch: Option<&'a Step>,
    },
    Alone(&'a Step),
}

/// The chain's steps, cut into [`Piece`]s, in order.
fn pieces(steps: &[Step]) -> Vec<Piece<'_>> {
    let mut pieces = Vec::new();
    let mut at = 0;
    while let Some(step) = steps.get(at) {
        if !matches!(step.kind, StepKind::Then) {
            pieces.push(Piece::Alone(step));
            at += 1;
            continue;
        }
        let len = steps[at..]
            .iter()
            .take_while(|step| matches!(step.kind, StepKind::Then))
            .count();
        let catch = steps
            .get(at + len)
            .filter(|step| matches!(step.kind, StepKind::Catch { .. }));
        pieces.push(Piece::Run {
            run: &steps[at..at + len],
            at,
            catch,
        });
        at += len + usize::from(catch.is_some());
    }
    pieces
}

/// The start, as a Deferred.
fn expand_start(start: &syn::Expr) -> TokenStream {
    let value = local("__v", Span::mixed_site());
    // Where the start is, for a failure it starts with (`Failure::entered_at`): a call spanned
    // at the start's first token, as a step's keyword's place is taken (`expand`).
    let at = start.span();
    let facade = krate(at);
    let start_at = quote_spanned!(at=> #facade::__private::here());
    let as_deferred = dispatch_start(start.span(), start_at);
    let called = start_path_check(start);
    let pair = pending_start_check(start);
    quote_spanned! {Span::mixed_site()=> {
        let #value = #start;
        #called
        #pair
        #as_deferred
    }}
}

/// `chain! { Deferred::pending() then .. }`: `pending()` gives the Deferred and its Resolver, a
/// pair, which the chain would take as a plain value. Checked by its type
/// (`__private::PendingStart`), at the start: the pair is reported, and the chain goes on from
/// its Deferred; a type of the user's own named `Deferred`, whose `pending()` gives something
/// else, is the start as it is.
fn pending_start_check(start: &syn::Expr) -> Option<TokenStream> {
    let syn::Expr::Call(call) = start else {
        return None;
    };
    let syn::Expr::Path(path) = &*call.func else {
        return None;
    };
    let [.., kind, function] = path.path.segments.iter().collect::<Vec<_>>()[..] else {
        return None;
    };
    if !call.args.is_empty()
        || path.qself.is_some()
        || function.ident != "pending"
        || !(kind.ident == "Deferred" || kind.ident == "LocalDeferred")
    {
        return None;
    }
    Some(start_checked_by_type(
        start.span(),
        "PendingStart",
        "__pending_start",
    ))
}

/// `chain! { fetch_user then .. }`: a start written as a path may be a function that gives a
/// Deferred or a `Result`, not called. Checked by its type (`__private::StartPath`), at the
/// path: such a function is reported, and the chain goes on with what it would give; any other
/// value (a variable, a constant) is the start as it is.
fn start_path_check(start: &syn::Expr) -> Option<TokenStream> {
    let syn::Expr::Path(path) = start else {
        return None;
    };
    Some(start_checked_by_type(
        path.span(),
        "StartPath",
        "__start_path",
    ))
}

/// The start's value, `__v`, passed through `__private::{check}`'s `{method}`, at `at`: the
/// traits found by autoref there say whether the start is a mistake (an error at `at`) and
/// give the value the chain goes on from (`start_path_check`, `pending_start_check`).
fn start_checked_by_type(at: Span, check: &str, method: &str) -> TokenStream {
    let (check, method) = (Ident::new(check, at), Ident::new(method, at));
    let value = local("__v", Span::mixed_site());
    let krate = krate(at);
    // The argument in a block spanned at `at`, as the input of `add_step` (which says why).
    let start_var = local("__start", at);
    let mut argument = Group::new(
        Delimiter::Brace,
        quote_spanned!(Span::mixed_site()=> let #start_var = #value; #start_var),
    );
    argument.set_span(at);
    let call = quote_spanned! {at=>
        (&&#krate::__private::#check::of(&#value)).#method(#argument)
    };
    quote_spanned! {Span::mixed_site()=>
        let #value = #call;
    }
}

/// The most steps of a run that nest: a longer run is cut into segments of at most this many
/// steps. The compiler instantiates each closure inside the one around it, and stops at its
/// recursion limit (128 by default, counting the caller's own depth): a segment stays well
/// under it. (The message of `__private::TakenTwice`, which says why two segments cannot share
/// a value, names this number.)
pub(crate) const SEGMENT_STEPS: usize = 32;

/// A run of `then`s, added to `input`: one statement, or one per segment for a run longer than
/// [`SEGMENT_STEPS`].
///
/// A segment but the last gives, instead of its last step's value, `(value, (names,))`: the
/// names its steps and the segments before it bound that a later step of the run uses
/// ([`carried_names`]). The next segment's first closure takes that tuple apart, so that the
/// later steps still see those names:
///
/// ```text
/// let __chain = __kind.add_run(__chain, move |a| {                            // then |a| A
///     ... move |y| { let __v = Y; __kind.raised_carrying(<__v>, (a,)) } ...   // step 32
/// }, move || &__CHAIN_STEPS[0..32]);
/// let __chain = __kind.add_run(__chain, move |__carried| {                    // step 33: then |z| Z
///     let (__value, (a,)) = __carried;
///     let z = __value;
///     ...
/// }, move || &__CHAIN_STEPS[32..N]);
/// ```
fn expand_run(input: Input, steps: &[Step], at: usize, catch: Option<&Step>) -> Vec<TokenStream> {
    if steps.len() <= SEGMENT_STEPS {
        return vec![expand_thens(input, steps, at, None, None, catch)];
    }
    let mut segments = Vec::new();
    let mut input = input;
    let mut carried_in: Option<Vec<Binding>> = None;
    for (index, segment) in steps.chunks(SEGMENT_STEPS).enumerate() {
        let end = index * SEGMENT_STEPS + segment.len();
        let carried_out = (end < steps.len()).then(|| carried_names(&steps[..end], &steps[end..]));
        segments.push(expand_thens(
            input,
            segment,
            at + index * SEGMENT_STEPS,
            carried_in.as_deref(),
            carried_out.as_deref(),
            catch.filter(|_| end == steps.len()),
        ));
        let last = segment.last().expect("chunks are not empty");
        input = Input::chain_var(last.keyword.span());
        carried_in = carried_out;
    }
    segments
}

/// A segment of a run of `then`s, added to `input`: each step is added inside the one before it.
/// `carried_in`: the first step's input carries these names (see [`expand_run`]);
/// `carried_out`: the last step's outcome carries these names; `catch`: the `catch` right after
/// the segment, added in the same step of `input` (see [`expand_steps`]).
fn expand_thens(
    input: Input,
    steps: &[Step],
    at: usize,
    carried_in: Option<&[Binding]>,
    carried_out: Option<&[Binding]>,
    catch: Option<&Step>,
) -> TokenStream {
    expand_steps(input, steps, at, carried_in, carried_out, catch)
}

/// The steps of a segment after its first, added inside the first's closure.
fn expand_thens_after(
    input: Input,
    steps: &[Step],
    at: usize,
    carried_out: Option<&[Binding]>,
) -> TokenStream {
    expand_steps(input, steps, at, None, carried_out, None)
}

/// [`expand_thens`], from `steps[0]` (the segment's first step, or a step nested in the one
/// before it) to the segment's end.
///
/// A step with steps after it in the segment is added with `__kind.add_run` and the list of it
/// and them, which a failure records on its trail (see below); the last, with `add_callback`.
///
/// With a `catch` (after the segment), the segment's first step and the `catch` are one step of
/// `input` (`__kind.add_run_catch`): a success runs the segment, a failure is recorded as
/// skipping the segment (as with `add_run`), and either outcome is handed (once it has
/// fired, on a pending `input`) to a closure that adds the `catch` to it, as [`expand_catch`]
/// adds it to the chain after the segment:
///
/// ```text
/// __kind.add_run_catch(__chain,
///     move |a| { ... },                                   // the segment, as without a catch
///     move || &__CHAIN_STEPS[a..b],                       // a failure skips every step
///     move |__chain| { __kind.add_errback(__chain, ...) }, // catch, on the segment's outcome
///     __private::here(),                                   // at the catch keyword
/// )
/// ```
fn expand_steps(
    input: Input,
    steps: &[Step],
    at: usize,
    carried_in: Option<&[Binding]>,
    carried_out: Option<&[Binding]>,
    catch: Option<&Step>,
) -> TokenStream {
    let Some((step, rest)) = steps.split_first() else {
        return input.tokens;
    };
    let site = Span::mixed_site();
    let (param, computed, place) = handler_parts(step, "__arrived");
    let carried = match rest {
        [] => carried_out.map(|names| {
            let names = names.iter().map(|name| &name.ident);
            quote_spanned!(site=> (#(#names,)*))
        }),
        _ => None,
    };
    let outcome = Input {
        tokens: raised(
            step,
            place.body,
            dispatch("step", place.body, None),
            carried,
        ),
        at: place.body,
    };
    let next = expand_thens_after(outcome, rest, at + 1, carried_out);
    let body = place.then_value(computed, deferred_of_any(), next);
    let closure = match carried_in {
        None => step_closure(&param, body, &place),
        Some(names) => {
            let carried = local("__carried", site);
            let value = local("__value", site);
            let names = names.iter().map(Binding::pattern);
            // A typed parameter takes the value through `__private::arrived`, at its type: a
            // parameter of the wrong type is reported there, not at the whole chain.
            let value_in = match &step.handler {
                Handler::Closure(closure) => match &closure.param {
                    Some(syn::Pat::Type(typed)) => {
                        let (at, ty) = (typed.ty.span(), &typed.ty);
                        let value = local("__value", at);
                        let krate = krate(at);
                        quote_spanned!(at=> #krate::__private::arrived::<_, #ty>(#value))
                    }
                    _ => value.to_token_stream(),
                },
                _ => value.to_token_stream(),
            };
            let body = quote_spanned! {site=>
                #[allow(unused_mut, unused_variables)]
                let (#value, (#(#names,)*)) = #carried;
                let #param = #value_in;
                #body
            };
            step_closure(&carried.to_token_stream(), body, &place)
        }
    };
    match (rest, catch) {
        ([], None) => add_step("add_callback", step, input, closure),
        _ => {
            // A failure that reaches this step skips it and every step after it in the segment
            // (they are added inside this step's closure, which does not run): `add_run`
            // records them all on its trail, in order — at the segment's first step for a
            // failure from before the segment, at the step after the one that raised it for a
            // failure raised inside. Success is the same as with `add_callback`. The steps are
            // given by a closure that captures nothing (no size in the stage): a slice of the
            // chain's constant list of where its steps are, so the expansion stays linear.
            let steps_var = local("__CHAIN_STEPS", site);
            let end = at + steps.len();
            let skipped = quote_spanned! {site=>
                move || &#steps_var[#at..#end]
            };
            match catch {
                None => add_step("add_run", step, input, quote!(#closure, #skipped)),
                Some(catch) => {
                    // The catch is added to the segment's outcome, which is where the chain
                    // would be after the segment: at its last step's keyword.
                    let last = steps
                        .last()
                        .expect("split_first gave a step")
                        .keyword
                        .span();
                    let chain = local("__chain", last);
                    let keyword = catch.keyword.span();
                    let catch = expand_catch(Input::chain_var(last), catch);
                    let catch = quote_spanned! {site=>
                        move |#chain| #catch
                    };
                    // Where the catch is, for the stage it is while the run's outcome is
                    // pending (`#[track_caller]`, called at its keyword).
                    let krate = krate(keyword);
                    let catch_at = quote_spanned!(keyword=> #krate::__private::here());
                    add_step(
                        "add_run_catch",
                        step,
                        input,
                        quote!(#closure, #skipped, #catch, #catch_at),
                    )
                }
            }
        }
    }
}

/// A name a step's closure parameter binds.
pub(crate) struct Binding {
    ident: Ident,
    mutable: bool,
}

impl Binding {
    /// `name` or `mut name`, to bind it again.
    fn pattern(&self) -> TokenStream {
        let ident = &self.ident;
        match self.mutable {
            true => quote!(mut #ident),
            false => ident.to_token_stream(),
        }
    }

    pub(crate) fn name(&self) -> String {
        self.ident.unraw().to_string()
    }
}

/// The names bound by the parameters of `bound` (the latest binding of each) that a step of
/// `later` uses ([`step_uses`]: not a binding of the step's own body of the same name) before
/// a step of `later` binds the name again.
pub(crate) fn carried_names(bound: &[Step], later: &[Step]) -> Vec<Binding> {
    let mut names: Vec<Binding> = Vec::new();
    for binding in bound.iter().flat_map(bindings_of) {
        names.retain(|name| name.name() != binding.name());
        names.push(binding);
    }
    names.retain(|binding| {
        let name = binding.name();
        for step in later {
            if bindings_of(step).iter().any(|other| other.name() == name) {
                return false;
            }
            if step_uses(step, &name) {
                return true;
            }
        }
        false
    });
    names
}

/// The names a step's body uses from around it, and those it assigns to (see
/// [`captured_by_step`], [`assigned_captures`]).
///
/// Walks a step's body in the order its names come into scope: a use of a name before
/// anything in the body binds it is a use of a name from around the step (a binding's
/// scope comes after it: `let`'s pattern is walked after its value, `if let`'s and `for`'s
/// after the expression they take apart). Uses after a binding of the name are left out,
/// whichever they mean.
#[derive(Default)]
struct Collect {
    /// Each name used before the body binds it, and whether that use takes the value whole.
    used: Vec<(Ident, bool)>,
    /// Each name assigned to (`name = ..`, `name += ..`) before the body binds it.
    assigned: Vec<Ident>,
    bound: Vec<String>,
}
impl Collect {
    fn operand(&mut self, expr: &syn::Expr, whole: bool) {
        if let syn::Expr::Path(path) = expr
            && path.qself.is_none()
            && path.attrs.is_empty()
            && let Some(ident) = path.path.get_ident()
        {
            self.name(ident, whole);
        }
    }

    /// `name = ..` or `name += ..`, with `name` from around the body; or the same to a field of
    /// it (`name.count += 1`, `name.0 = ..`), which changes `name`'s copy when `name` is `Copy`
    /// (the check asks `name`'s type: a value that is not `Copy` was moved into the step, or
    /// only the field was taken, and is left to the compiler's "never read" warning).
    fn assignee(&mut self, mut expr: &syn::Expr) {
        while let syn::Expr::Field(field) = expr {
            expr = &field.base;
        }
        if let syn::Expr::Path(path) = expr
            && path.qself.is_none()
            && let Some(ident) = path.path.get_ident()
            && self.may_be_from_around(ident)
        {
            self.assigned.push(ident.clone());
        }
    }

    fn name(&mut self, ident: &Ident, whole: bool) {
        if self.may_be_from_around(ident) {
            self.used.push((ident.clone(), whole));
        }
    }

    /// Whether `ident` may name a variable from around the body: a lowercase name, not `self`,
    /// that nothing in the body has bound so far.
    fn may_be_from_around(&self, ident: &Ident) -> bool {
        let text = ident.to_string();
        text != "self"
            && text.starts_with(|c: char| c.is_lowercase() || c == '_')
            && !self.bound.contains(&text)
    }

    /// `name.` in a formatting macro's arguments that are not read as expressions (not
    /// `a.name.` or `path::name.`): a method's receiver or a field's base, which the tokens do
    /// not tell apart.
    fn tokens(&mut self, tokens: TokenStream) {
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        for (index, token) in tokens.iter().enumerate() {
            match token {
                TokenTree::Group(group) => self.tokens(group.stream()),
                TokenTree::Ident(ident) => {
                    let is = |at: Option<&TokenTree>, c: char| matches!(at, Some(TokenTree::Punct(p)) if p.as_char() == c);
                    let before = index.checked_sub(1).and_then(|i| tokens.get(i));
                    let dot_after = matches!(
                        tokens.get(index + 1),
                        Some(TokenTree::Punct(p))
                            if p.as_char() == '.' && p.spacing() == proc_macro2::Spacing::Alone
                    );
                    if dot_after && !is(before, '.') && !is(before, ':') {
                        self.name(ident, false);
                    }
                }
                _ => {}
            }
        }
    }

    /// `{name}` in a formatting macro's format string (see [`format_string_arguments`]).
    fn format_string(&mut self, tokens: &TokenStream) {
        if let Some((at, names)) = format_string_arguments(tokens) {
            for name in names {
                self.name(&Ident::new(&name, at), true);
            }
        }
    }
}

/// The names a formatting macro's format string, its first string literal (after the writer,
/// for `write!`), names inline (`{name}`), but those an argument of the macro is named
/// (`name = ..`); and where the string is. `None` for tokens with no literal.
fn format_string_arguments(tokens: &TokenStream) -> Option<(Span, Vec<String>)> {
    let tokens: Vec<TokenTree> = tokens.clone().into_iter().collect();
    let literal = tokens.iter().find_map(|token| match token {
        TokenTree::Literal(literal) => Some(literal),
        _ => None,
    })?;
    let named_arguments: Vec<String> = tokens
        .windows(3)
        .filter_map(|window| match window {
            [
                TokenTree::Punct(comma),
                TokenTree::Ident(name),
                TokenTree::Punct(equals),
            ] if comma.as_char() == ','
                && equals.as_char() == '='
                && equals.spacing() == proc_macro2::Spacing::Alone =>
            {
                Some(name.to_string())
            }
            _ => None,
        })
        .collect();
    let mut names = format_string_names(literal);
    names.retain(|name| !named_arguments.contains(name));
    Some((literal.span(), names))
}

/// A `let` walked in the order its names come into scope: its value, and a let-else's `else`,
/// before its pattern binds.
fn visit_local_in_scope_order<'ast, V: Visit<'ast>>(visitor: &mut V, node: &'ast syn::Local) {
    if let Some(init) = &node.init {
        visitor.visit_expr(&init.expr);
        if let Some((_, diverge)) = &init.diverge {
            visitor.visit_expr(diverge);
        }
    }
    visitor.visit_pat(&node.pat);
}

impl<'ast> Visit<'ast> for Collect {
    fn visit_item(&mut self, _: &'ast syn::Item) {}
    fn visit_pat_ident(&mut self, node: &'ast syn::PatIdent) {
        self.bound.push(node.ident.to_string());
        syn::visit::visit_pat_ident(self, node);
    }
    fn visit_local(&mut self, node: &'ast syn::Local) {
        visit_local_in_scope_order(self, node);
    }
    fn visit_expr_let(&mut self, node: &'ast syn::ExprLet) {
        self.visit_expr(&node.expr);
        self.visit_pat(&node.pat);
    }
    fn visit_expr_for_loop(&mut self, node: &'ast syn::ExprForLoop) {
        self.visit_expr(&node.expr);
        self.visit_pat(&node.pat);
        self.visit_block(&node.body);
    }
    fn visit_expr_method_call(&mut self, node: &'ast syn::ExprMethodCall) {
        self.operand(&node.receiver, true);
        syn::visit::visit_expr_method_call(self, node);
    }
    fn visit_expr_field(&mut self, node: &'ast syn::ExprField) {
        self.operand(&node.base, false);
        syn::visit::visit_expr_field(self, node);
    }
    fn visit_expr_unary(&mut self, node: &'ast syn::ExprUnary) {
        self.operand(&node.expr, true);
        syn::visit::visit_expr_unary(self, node);
    }
    fn visit_expr_reference(&mut self, node: &'ast syn::ExprReference) {
        self.operand(&node.expr, true);
        syn::visit::visit_expr_reference(self, node);
    }
    fn visit_expr_binary(&mut self, node: &'ast syn::ExprBinary) {
        if is_compound_assignment(&node.op) {
            self.assignee(&node.left);
        }
        self.operand(&node.left, true);
        self.operand(&node.right, true);
        syn::visit::visit_expr_binary(self, node);
    }
    fn visit_expr_assign(&mut self, node: &'ast syn::ExprAssign) {
        self.assignee(&node.left);
        syn::visit::visit_expr_assign(self, node);
    }
    fn visit_expr_index(&mut self, node: &'ast syn::ExprIndex) {
        self.operand(&node.expr, true);
        syn::visit::visit_expr_index(self, node);
    }
    fn visit_macro(&mut self, node: &'ast syn::Macro) {
        let Some(name) = node.path.get_ident() else {
            return;
        };
        if FORMATTING.iter().any(|known| name == known) {
            if name != "panic" {
                self.format_string(&node.tokens);
            }
            // The arguments are expressions (a named one, `name = value`, is read as an
            // assignment): walked as the body is, so that the names their own closures and
            // `match` arms bind are bound there. Tokens that are not read as expressions are
            // scanned for `name.` instead.
            match formatting_arguments(node) {
                Ok(arguments) => {
                    for argument in arguments {
                        self.visit_expr(&argument);
                    }
                }
                Err(_) => self.tokens(node.tokens.clone()),
            }
        }
    }
}

/// The macros whose arguments are a format string and expressions ([`formatting_arguments`]).
pub(crate) const FORMATTING: [&str; 8] = [
    "format", "print", "println", "eprint", "eprintln", "write", "writeln", "panic",
];

/// A formatting macro's arguments, each read as an expression, and of a named one (`name =
/// value`) its value; an error for tokens that are not expressions.
fn formatting_arguments(node: &syn::Macro) -> syn::Result<Vec<syn::Expr>> {
    let arguments = node.parse_body_with(Punctuated::<syn::Expr, Token![,]>::parse_terminated)?;
    Ok(arguments
        .into_iter()
        .map(|argument| match argument {
            syn::Expr::Assign(named)
                if matches!(&*named.left, syn::Expr::Path(path) if path.path.get_ident().is_some()) =>
            {
                *named.right
            }
            other => other,
        })
        .collect())
}

/// The names the steps' closures capture from around the chain, as far as their syntax shows: a
/// lone lowercase name used as a method's receiver (`log.push(x)`), a field's base, an operand
/// (`*total`, `x + n`, `&config`) or an index's base, in a step's body or a formatting macro's
/// arguments (walked as the body is) or (but in `panic!`, a plain string before the 2021
/// edition) inline in its format string (`{name}`), that nothing in the chain binds. (A name passed as an argument may be a
/// generic function, which the check would ask the type of: it is left to the compiler.)
///
/// By step, in order: each name a step's closure captures, once, and whether the closure takes
/// the value whole somewhere (any use but as a field's base, `cfg.limit`, or before a `.` in a
/// formatting macro's arguments not read as expressions: a closure that names only a field
/// takes only that field).
fn captured_by_step(collected: &[Collect]) -> Vec<Vec<(Ident, bool)>> {
    collected
        .iter()
        .map(|collect| {
            let mut names: Vec<(Ident, bool)> = Vec::new();
            for (name, whole) in collect.used.iter().cloned() {
                match names.iter_mut().find(|(known, _)| *known == name) {
                    Some((_, taken_whole)) => *taken_whole |= whole,
                    None => names.push((name, whole)),
                }
            }
            names
        })
        .collect()
}

/// Each step's body walked once ([`Collect`]), for [`captured_by_step`] and
/// [`assigned_captures`]: the names it uses and assigns to from around it, but those the
/// chain's steps up to it bind (its own parameter's, and those of the steps before it: in
/// scope in it, or a name used out of its scope, which the compiler reports). A name only a
/// later step binds is still the one from around the chain here. A step with no closure: none.
fn collect_steps(chain: &Chain) -> Vec<Collect> {
    let mut bound_so_far: Vec<String> = Vec::new();
    chain
        .steps
        .iter()
        .map(|step| {
            bound_so_far.extend(
                bindings_of(step)
                    .into_iter()
                    .map(|name| name.ident.to_string()),
            );
            let from_around = |name: &Ident| !bound_so_far.contains(&name.to_string());
            let mut collect = Collect::default();
            if let Handler::Closure(closure) = &step.handler {
                collect.visit_expr(&closure.body);
            }
            collect.used.retain(|(name, _)| from_around(name));
            collect.assigned.retain(from_around);
            collect
        })
        .collect()
}

/// `+=`, `-=`, and the other operators that assign.
pub(crate) fn is_compound_assignment(op: &syn::BinOp) -> bool {
    use syn::BinOp::*;
    matches!(
        op,
        AddAssign(_)
            | SubAssign(_)
            | MulAssign(_)
            | DivAssign(_)
            | RemAssign(_)
            | BitXorAssign(_)
            | BitAndAssign(_)
            | BitOrAssign(_)
            | ShlAssign(_)
            | ShrAssign(_)
    )
}

/// Names from around the chain that a step written without `move` assigns to (`total += x`,
/// `done = true`), each at the assignment. A step's closure is `move` all the same: it assigns
/// to its own copy, and for a `Copy` value the variable outside the chain never changes, with no
/// error from the compiler (at most an "unused assignment" warning, and none when the step reads
/// its copy after). The expansion checks each one's type (`__private::assigned_in_step`): an
/// error for a `Copy` value, nothing for another, which the step took whole.
fn assigned_captures(chain: &Chain, collected: &[Collect]) -> Vec<Ident> {
    let mut assigned = Vec::new();
    for (step, collect) in chain.steps.iter().zip(collected) {
        let Handler::Closure(closure) = &step.handler else {
            continue;
        };
        if closure.written.capture.is_some() {
            // `move |..|`: the step says it owns what it uses.
            continue;
        }
        for name in &collect.assigned {
            // Each name once, at its first assignment: one error says it.
            if !assigned.contains(name) {
                assigned.push(name.clone());
            }
        }
    }
    assigned
}

/// The check of a name from around the chain that a step assigns to (see
/// [`assigned_captures`]), spanned at the name.
fn assigned_check(name: &Ident) -> TokenStream {
    let facade = krate(name.span());
    quote_spanned! {name.span()=> {
        #[allow(unused_imports)]
        use #facade::__private::{AssignedCopy as _, AssignedMoved as _};
        #facade::__private::assigned_in_step(
            &#name,
            (&#facade::__private::Assigned::of(&#name)).assigned(),
        );
    }}
}

/// The names the chain's steps capture ([`captured_by_step`]), each once, at its first use.
///
/// The expansion checks each at the top of the chain (`__kind.captured(&name)`, at the name), so
/// that a value a `Deferred`'s steps cannot take is reported there, with the fix, once.
fn captured_names(captured: &[Vec<(Ident, bool)>]) -> Vec<Ident> {
    let mut names: Vec<Ident> = Vec::new();
    for (name, _) in captured.iter().flatten() {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

/// The names from around the chain ([`captured_by_step`]) that two of its closures take whole,
/// each at its first use in the later closure.
///
/// The expansion's closures are `move`. The `then`s of a segment of a run nest, so they take a
/// name once between them; the segment, each `catch` and each `finally` are closures of their
/// own ([`closure_of_each_step`]), each taking what it uses, so a value two of them take must be
/// `Copy`. The expansion checks each of these names there (`__private::captured_again`), which
/// says so at the name, instead of the compiler's "use of moved value" at the whole chain. A
/// closure that names only a field of the value (`cfg.limit`) takes only that field, which two
/// closures may both take when it is `Copy`, or when they name different fields: such a use is
/// left to the compiler.
fn captured_again(chain: &Chain, captured: &[Vec<(Ident, bool)>]) -> Vec<Ident> {
    let closures = closure_of_each_step(&chain.steps);
    let mut first: Vec<(&Ident, usize)> = Vec::new();
    let mut again: Vec<Ident> = Vec::new();
    for (names, &closure) in captured.iter().zip(&closures) {
        for (name, _) in names.iter().filter(|(_, whole)| *whole) {
            match first.iter().find(|(known, _)| *known == name) {
                None => first.push((name, closure)),
                Some((_, earlier)) if *earlier != closure && !again.contains(name) => {
                    again.push(name.clone());
                }
                Some(_) => {}
            }
        }
    }
    again
}

/// Which of the expansion's top-level closures each step is in, numbered from 1 in order: one
/// for each segment of a run of `then`s (the `SEGMENT_STEPS`-step chunks [`expand_run`] cuts),
/// and one for each `catch` and each `finally` (a `catch` right after a run is added with it,
/// `add_run_catch`, but is a closure of its own). The same [`pieces`] as [`expand`]'s.
fn closure_of_each_step(steps: &[Step]) -> Vec<usize> {
    let mut closures = Vec::with_capacity(steps.len());
    let mut closure = 0;
    for piece in pieces(steps) {
        let (run, alone) = match piece {
            Piece::Run { run, catch, .. } => (run, catch),
            Piece::Alone(step) => (&[][..], Some(step)),
        };
        for segment in run.chunks(SEGMENT_STEPS) {
            closure += 1;
            closures.extend(std::iter::repeat_n(closure, segment.len()));
        }
        if alone.is_some() {
            closure += 1;
            closures.push(closure);
        }
    }
    closures
}

/// The names a step's closure parameter binds.
fn bindings_of(step: &Step) -> Vec<Binding> {
    struct Collect(Vec<Binding>);
    impl<'ast> Visit<'ast> for Collect {
        fn visit_pat_ident(&mut self, node: &'ast syn::PatIdent) {
            if node.ident != "_" {
                self.0.push(Binding {
                    ident: node.ident.clone(),
                    mutable: node.mutability.is_some(),
                });
            }
            syn::visit::visit_pat_ident(self, node);
        }
    }
    let mut collect = Collect(Vec::new());
    if let Handler::Closure(closure) = &step.handler
        && let Some(param) = &closure.param
    {
        collect.visit_pat(param);
    }
    collect.0
}

/// Whether a step's code uses `name` from before the step (a binding of an earlier step's
/// parameter), as [`Uses`] finds it; for a step that is a path, whether the path mentions it.
fn step_uses(step: &Step, name: &str) -> bool {
    match &step.handler {
        Handler::Closure(closure) => {
            let mut uses = Uses {
                name,
                scopes: vec![false],
                found: false,
            };
            uses.visit_return_type(&closure.output);
            uses.visit_expr(&closure.body);
            uses.found
        }
        Handler::Path(path) => tokens_mention(path.to_token_stream(), name),
        Handler::Invalid(_) => false,
    }
}

/// Whether a step's body uses `name` from around it: a path that is `name` alone, where no
/// binding of the body's own (a `let`, a closure's parameter, a `match` arm's or an `if let`'s,
/// `while let`'s or `for`'s pattern) is in scope. Each binding is in scope from where it
/// binds to the end of what holds it: the rest of its block, the closure's body, the arm, the
/// `if`'s condition and first branch (not its `else`), the loop's body.
///
/// The tokens the walk does not read as code are scanned ([`tokens_mention`]): those of a
/// macro but a formatting one (whose arguments are walked, and whose format string's inline
/// names are uses), of a formatting macro whose arguments are not expressions, and of what syn
/// leaves unparsed. There a mention of `name` counts as a use unless a binding of the body's
/// is in scope, whatever the macro makes of it: a name carried that is not used is only kept
/// alive longer, a name not carried that is used is an error.
struct Uses<'a> {
    name: &'a str,
    /// For each scope the walk is in, outermost first: whether it binds `name` so far.
    scopes: Vec<bool>,
    found: bool,
}

impl Uses<'_> {
    fn shadowed(&self) -> bool {
        self.scopes.contains(&true)
    }

    /// `walk` in a scope of its own, whose bindings end with it.
    fn scoped(&mut self, walk: impl FnOnce(&mut Self)) {
        self.scopes.push(false);
        walk(self);
        self.scopes.pop();
    }

    fn tokens(&mut self, tokens: TokenStream) {
        if !self.shadowed() && tokens_mention(tokens, self.name) {
            self.found = true;
        }
    }
}

impl<'ast> Visit<'ast> for Uses<'_> {
    fn visit_item(&mut self, node: &'ast syn::Item) {
        // An item cannot use a local variable; a `macro_rules!` defined in the body may.
        match node {
            syn::Item::Macro(item) => self.tokens(item.mac.tokens.clone()),
            syn::Item::Verbatim(tokens) => self.tokens(tokens.clone()),
            _ => {}
        }
    }
    fn visit_expr(&mut self, node: &'ast syn::Expr) {
        match node {
            syn::Expr::Verbatim(tokens) => self.tokens(tokens.clone()),
            _ => syn::visit::visit_expr(self, node),
        }
    }
    fn visit_expr_path(&mut self, node: &'ast syn::ExprPath) {
        if node.qself.is_none()
            && let Some(ident) = node.path.get_ident()
            && ident.unraw() == self.name
            && !self.shadowed()
        {
            self.found = true;
        }
        syn::visit::visit_expr_path(self, node);
    }
    fn visit_pat_ident(&mut self, node: &'ast syn::PatIdent) {
        if node.ident.unraw() == self.name {
            *self.scopes.last_mut().expect("the body's scope") = true;
        }
        syn::visit::visit_pat_ident(self, node);
    }
    fn visit_block(&mut self, node: &'ast syn::Block) {
        self.scoped(|uses| syn::visit::visit_block(uses, node));
    }
    fn visit_local(&mut self, node: &'ast syn::Local) {
        visit_local_in_scope_order(self, node);
    }
    fn visit_expr_closure(&mut self, node: &'ast syn::ExprClosure) {
        self.scoped(|uses| syn::visit::visit_expr_closure(uses, node));
    }
    fn visit_arm(&mut self, node: &'ast syn::Arm) {
        self.scoped(|uses| syn::visit::visit_arm(uses, node));
    }
    fn visit_expr_let(&mut self, node: &'ast syn::ExprLet) {
        self.visit_expr(&node.expr);
        self.visit_pat(&node.pat);
    }
    fn visit_expr_if(&mut self, node: &'ast syn::ExprIf) {
        self.scoped(|uses| {
            uses.visit_expr(&node.cond);
            uses.visit_block(&node.then_branch);
        });
        if let Some((_, otherwise)) = &node.else_branch {
            self.visit_expr(otherwise);
        }
    }
    fn visit_expr_while(&mut self, node: &'ast syn::ExprWhile) {
        self.scoped(|uses| syn::visit::visit_expr_while(uses, node));
    }
    fn visit_expr_for_loop(&mut self, node: &'ast syn::ExprForLoop) {
        self.visit_expr(&node.expr);
        self.scoped(|uses| {
            uses.visit_pat(&node.pat);
            uses.visit_block(&node.body);
        });
    }
    fn visit_macro(&mut self, node: &'ast syn::Macro) {
        let formatting = node
            .path
            .get_ident()
            .is_some_and(|name| FORMATTING.iter().any(|known| name == known));
        let arguments = match formatting {
            true => formatting_arguments(node).ok(),
            false => None,
        };
        let Some(arguments) = arguments else {
            self.tokens(node.tokens.clone());
            return;
        };
        // `panic!`'s string is a plain one before the 2021 edition: its names count all the same.
        if let Some((_, names)) = format_string_arguments(&node.tokens)
            && names.iter().any(|named| named == self.name)
            && !self.shadowed()
        {
            self.found = true;
        }
        for argument in &arguments {
            self.visit_expr(argument);
        }
    }
}

/// Whether `tokens` mention `name`: as an identifier (not a field or method after a `.`), or as
/// an inline argument of a string literal read as a format string (`"{name}"`, `"{name:?}"`).
fn tokens_mention(tokens: TokenStream, name: &str) -> bool {
    // The last two tokens, when they are `.`: a name after a single `.` is a field or method.
    let (mut dot, mut dot_dot) = (false, false);
    for token in tokens {
        let found = match &token {
            TokenTree::Ident(ident) => {
                let field_or_method = dot && !dot_dot;
                !field_or_method && ident.unraw() == name
            }
            TokenTree::Literal(literal) => format_string_mentions(literal, name),
            TokenTree::Group(group) => tokens_mention(group.stream(), name),
            TokenTree::Punct(_) => false,
        };
        if found {
            return true;
        }
        let is_dot = matches!(&token, TokenTree::Punct(punct) if punct.as_char() == '.');
        (dot_dot, dot) = (dot && is_dot, is_dot);
    }
    false
}

/// The names a format string's arguments name inline (`{name}`, `{name:?}`, and a width or a
/// precision: `{:>width$}`, `{:.prec$}`), if `literal` is a string literal: read from its value
/// (escapes such as `\u{b0}` resolved), each a valid identifier (not a keyword), each once.
fn format_string_names(literal: &proc_macro2::Literal) -> Vec<String> {
    let syn::Lit::Str(string) = syn::Lit::new(literal.clone()) else {
        return Vec::new();
    };
    let value = string.value();
    let mut names = Vec::new();
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '{' {
            continue;
        }
        if chars.peek() == Some(&'{') {
            chars.next();
            continue;
        }
        let mut argument = String::new();
        while let Some(&c) = chars.peek() {
            if !(c.is_ascii_alphanumeric() || c == '_') {
                break;
            }
            argument.push(c);
            chars.next();
        }
        if !matches!(chars.peek(), Some('}' | ':')) {
            continue;
        }
        let mut found = vec![argument];
        if chars.peek() == Some(&':') {
            // The spec's width and precision may name arguments too: `{:>width$}`, `{:.prec$}`.
            let mut run = String::new();
            for c in chars.by_ref() {
                match c {
                    '}' => break,
                    '$' => found.push(std::mem::take(&mut run)),
                    c if c.is_alphanumeric() || c == '_' => run.push(c),
                    _ => run.clear(),
                }
            }
        }
        for name in found {
            if syn::parse_str::<Ident>(&name).is_ok() && !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

/// Whether `literal`, if it is a string literal, names `name` in it (`{name}`, `{name:...}`,
/// `{:>name$}`: see [`format_string_names`]).
fn format_string_mentions(literal: &proc_macro2::Literal, name: &str) -> bool {
    format_string_names(literal)
        .iter()
        .any(|named| named == name)
}

/// A `catch`: an errback that traps what it names, and recovers with its body's value.
fn expand_catch(input: Input, step: &Step) -> TokenStream {
    let site = Span::mixed_site();
    let krate = krate(site);
    let error_var = local("__error", site);
    let chain_value = local("__chain_value", site);
    let StepKind::Catch { ty } = &step.kind else {
        unreachable!("expand_catch is called on catch steps")
    };
    let (param, computed, place) = handler_parts(step, "__error");
    let computed = match (&step.handler, ty) {
        (Handler::Closure(closure), Some(_)) => or_in_catch(closure).unwrap_or(computed),
        _ => computed,
    };
    let chain_input = input.tokens.clone();
    let recovered = dispatch("recover", place.body, Some(&chain_value));
    let handle = place.then_value(computed, deferred_of_any(), recovered);
    let handle = match catch_param_field(step) {
        Some(check) => quote_spanned!(site=> #check #handle),
        None => handle,
    };
    let (setup, closure) = match ty {
        Some(ty) if !matches!(step.handler, Handler::Invalid(_)) => {
            let catch_as = local("__catch_as", site);
            let fail = fail(&error_var);
            let trap = quote_spanned! {ty.span()=>
                (&&&&&#catch_as).__catch_kind().trap(#error_var)
            };
            let trap_or_pass = quote_spanned! {site=>
                match #trap {
                    ::core::result::Result::Ok(#param) => { #handle }
                    ::core::result::Result::Err(#error_var) => {
                        #fail
                    }
                }
            };
            (
                quote_spanned! {site=>
                    let #catch_as = #krate::__private::catch_as::<#ty, _>(&#chain_input);
                },
                step_closure(&error_var.to_token_stream(), trap_or_pass, &place),
            )
        }
        _ => (TokenStream::new(), step_closure(&param, handle, &place)),
    };
    let add = add_step("add_errback", step, input, closure);
    quote_spanned! {site=> {
        let #chain_value = #krate::__private::value_of(&#chain_input);
        #setup
        #add
    }}
}

/// `catch |e| e.0`: a body that reads a field of the catch's parameter `e` (before anything in
/// it binds `e` again, as far as a walk in order can tell). The parameter is passed through
/// `__private::CatchParam` first, at the first such field's base: a `Failure` (which has no
/// fields: the catch takes every failure, or names `Failure`) is said to be one there, with what
/// to write instead; any other type (the chain's own error type, a typed catch's) is given back
/// as it is, so that the body means what it says.
fn catch_param_field(step: &Step) -> Option<TokenStream> {
    struct Fields<'a> {
        name: &'a Ident,
        rebound: bool,
        found: Option<Span>,
    }
    impl<'ast> Visit<'ast> for Fields<'_> {
        fn visit_item(&mut self, _: &'ast syn::Item) {}
        fn visit_pat_ident(&mut self, node: &'ast syn::PatIdent) {
            if node.ident == *self.name {
                self.rebound = true;
            }
            syn::visit::visit_pat_ident(self, node);
        }
        fn visit_expr_field(&mut self, node: &'ast syn::ExprField) {
            if !self.rebound
                && self.found.is_none()
                && let syn::Expr::Path(path) = &*node.base
                && path.qself.is_none()
                && path.path.is_ident(self.name)
            {
                self.found = Some(path.span());
            }
            syn::visit::visit_expr_field(self, node);
        }
    }
    let Handler::Closure(closure) = &step.handler else {
        return None;
    };
    let Some(syn::Pat::Ident(param)) = &closure.param else {
        return None;
    };
    if param.by_ref.is_some() || param.mutability.is_some() || param.subpat.is_some() {
        return None;
    }
    let name = &param.ident;
    let mut fields = Fields {
        name,
        rebound: false,
        found: None,
    };
    fields.visit_expr(&closure.body);
    let at = fields.found?;
    let krate = krate(at);
    let call = quote_spanned! {at=>
        (&&#krate::__private::CatchParam::new(#name)).__catch_param()
    };
    Some(quote_spanned! {Span::mixed_site()=>
        let #name = #call;
    })
}

/// `catch |e: NotFound | Timeout| 0`, a `catch` of two error types: the `|` after the first ends
/// the parameter, so `Timeout | 0` is the body. For a typed `catch` whose body is a `|` of a name
/// that starts in upper case (as a type's does) and something, each `|` of the body's left spine
/// is written `__private::or_in_catch(left, right)`, which is `left | right` where `|` applies,
/// and otherwise says the mistake at `left` instead of "no implementation for `Timeout |
/// {integer}`" (whose help is to implement `BitOr`). A body that means `|` (flags: `Read |
/// Write`, `READ | WRITE`) keeps its meaning.
fn or_in_catch(closure: &StepClosure) -> Option<TokenStream> {
    fn leftmost(expr: &syn::Expr) -> &syn::Expr {
        match expr {
            syn::Expr::Binary(binary) if matches!(binary.op, syn::BinOp::BitOr(_)) => {
                leftmost(&binary.left)
            }
            other => other,
        }
    }
    fn wrap(expr: &syn::Expr) -> TokenStream {
        match expr {
            syn::Expr::Binary(binary) if matches!(binary.op, syn::BinOp::BitOr(_)) => {
                let left = wrap(&binary.left);
                let right = &binary.right;
                let at = binary.left.span();
                let krate = krate(at);
                quote_spanned!(at=> #krate::__private::or_in_catch(#left, #right))
            }
            other => other.to_token_stream(),
        }
    }
    let body = &closure.body;
    if closure.framed() || !matches!(body, syn::Expr::Binary(_)) {
        return None;
    }
    let syn::Expr::Path(path) = leftmost(body) else {
        return None;
    };
    let name = path.path.get_ident()?.to_string();
    name.starts_with(char::is_uppercase).then(|| wrap(body))
}

/// A `finally`: runs its body on both paths, then passes the outcome on unless the body failed.
fn expand_finally(input: Input, step: &Step) -> TokenStream {
    let site = Span::mixed_site();
    let outcome = local("__outcome", site);
    let done = local("__done", site);
    // `reads_outcome`: a closure with a parameter that is not `_` (`finally |_|` reads no
    // outcome, as `finally ||`).
    let (param, computed, place, reads_outcome) = match &step.handler {
        Handler::Path(path) => {
            let outcome = local("__outcome", path.span());
            let krate = krate(path.span());
            (
                None,
                quote_spanned! {path.span()=>
                    #krate::__private::FinallyFn::call_finally(#path, &#outcome)
                },
                Place::at(path.span()),
                false,
            )
        }
        _ => {
            let (param, computed, place) = handler_parts(step, "_");
            let pattern = match &step.handler {
                Handler::Closure(closure) => closure.param.as_ref(),
                _ => None,
            };
            let wild = |pattern: &syn::Pat| match pattern {
                syn::Pat::Wild(_) => true,
                syn::Pat::Type(typed) => matches!(*typed.pat, syn::Pat::Wild(_)),
                _ => false,
            };
            let reads_outcome = pattern.is_some_and(|pattern| !wild(pattern));
            (pattern.map(|_| param), computed, place, reads_outcome)
        }
    };
    let dispatch = if reads_outcome {
        dispatch_finally_of_outcome(place.body)
    } else {
        dispatch("finally", place.body, None)
    };
    // A parameter typed by name takes the outcome through `__private::lent`, at its type: one
    // of another type (`finally |x: u32|`, the value in mind) is reported at it, not as a
    // mismatch at the whole chain. Any other type is bound as written, where the outcome may
    // be coerced to it (`|outcome: &dyn Debug|`).
    let named_at = |ty: &syn::Type| {
        // At the type, or at what a reference refers to (`u32` in `&u32`: one token is
        // underlined, and the `&` alone says little).
        let mut named = ty;
        while let syn::Type::Reference(reference) = named {
            named = &reference.elem;
        }
        matches!(named, syn::Type::Path(_)).then_some(named.span())
    };
    let bind = param.map(|param| match &step.handler {
        Handler::Closure(closure)
            if let Some(syn::Pat::Type(typed)) = &closure.param
                && let Some(at) = named_at(&typed.ty) =>
        {
            let (pattern, ty) = (&typed.pat, &typed.ty);
            let outcome = local("__outcome", at);
            let krate = krate(at);
            quote_spanned! {at=>
                let #pattern = #krate::__private::lent::<_, #ty>(&#outcome);
            }
        }
        _ => quote_spanned!(site=> let #param = &#outcome;),
    });
    let finished = place.then_value(computed, quote!(()), dispatch);
    let kind = local("__kind", step.keyword.span());
    // The call's parentheses at the keyword too, as `add_step`'s and `raised`'s: a
    // `#[track_caller]` method's location is its name through its arguments, which taken from
    // the macro's own span would be the `chain!` call's, not the step's. (`finally` waits on a
    // Deferred the body gave at the caller's location: a failure that passes it names it.)
    let mut args = Group::new(
        Delimiter::Parenthesis,
        quote_spanned!(site=> #done, #outcome),
    );
    args.set_span(step.keyword.span());
    let pass_on = quote_spanned!(step.keyword.span()=> #kind.finally #args);
    let closure = step_closure(
        &outcome.to_token_stream(),
        quote_spanned! {site=>
            let #done = {
                #bind
                #finished
            };
            #pass_on
        },
        &place,
    );
    add_step("add_both", step, input, closure)
}

/// Where a step's code is in the user's source: its closure (start and end) and its body.
struct Place {
    start: Span,
    end: Span,
    body: Span,
    /// The body never gives a value (see `StepClosure::diverges`).
    diverges: bool,
}

impl Place {
    fn at(span: Span) -> Place {
        Place {
            start: span,
            end: span,
            body: span,
            diverges: false,
        }
    }

    /// `let __v = computed;` then `rest`. A body that never gives a value runs in a closure that
    /// says what type it gives (`never_type`): the compiler cannot infer one for it.
    fn then_value(
        &self,
        computed: TokenStream,
        never_type: TokenStream,
        rest: TokenStream,
    ) -> TokenStream {
        let site = Span::mixed_site();
        let value = local("__v", site);
        let computed = if self.diverges {
            quote_spanned!(site=> (|| -> #never_type { #computed })())
        } else {
            computed
        };
        quote_spanned! {site=>
            let #value = #computed;
            #rest
        }
    }
}

/// What a `then` or `catch` step's handler contributes: the parameter of the closure the
/// expansion builds, what computes the step's value from it, and where it is. A path is called
/// with the parameter `arrived`; an invalid handler computes its error.
fn handler_parts(step: &Step, arrived: &str) -> (TokenStream, TokenStream, Place) {
    let site = Span::mixed_site();
    match &step.handler {
        Handler::Closure(closure) => {
            let param = match &closure.param {
                Some(param) => param.to_token_stream(),
                None => quote_spanned!(site=> _),
            };
            let place = Place {
                start: closure.start,
                end: closure.end,
                body: closure.body.span(),
                diverges: closure.diverges(),
            };
            (param, body_value(closure), place)
        }
        Handler::Path(path) => {
            let arg = local(arrived, path.span());
            let call = if names_a_method(path) {
                let krate = krate(path.span());
                quote_spanned!(path.span()=> #krate::__private::Arrived(#arg).call(#path))
            } else {
                quote_spanned!(path.span()=> #path(#arg))
            };
            (
                local(arrived, site).to_token_stream(),
                call,
                Place::at(path.span()),
            )
        }
        Handler::Invalid(error) => (
            quote_spanned!(site=> _),
            error.to_compile_error(),
            Place::at(error.span()),
        ),
    }
}

/// Whether `path` names an associated function (`String::len`, `str::trim`): perhaps a method
/// that borrows its receiver, which is called through `__private::StepFn` so that, given the
/// value itself, the error says to write a closure.
fn names_a_method(path: &syn::ExprPath) -> bool {
    const PRIMITIVES: [&str; 17] = [
        "str", "bool", "char", "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32",
        "i64", "i128", "isize", "f32", "f64",
    ];
    let segments: Vec<String> = path
        .path
        .segments
        .iter()
        .map(|segment| segment.ident.to_string())
        .collect();
    let [.., ty, function] = &segments[..] else {
        return false;
    };
    function.starts_with(|c: char| c.is_lowercase())
        && (ty.starts_with(|c: char| c.is_uppercase()) || PRIMITIVES.contains(&ty.as_str()))
}

/// `move |param| { body }`, spanned as the user's closure (the names in it keep their own
/// spans), so that errors about the closure point at it.
fn step_closure(param: &TokenStream, body: TokenStream, place: &Place) -> TokenStream {
    let mut block = Group::new(Delimiter::Brace, body);
    block.set_span(place.end);
    quote_spanned!(place.start=> move |#param| #block)
}

/// What a step is added to: a Deferred, and where in the user's code it comes from (the start,
/// the body of the step before, the keyword of the step before).
struct Input {
    tokens: TokenStream,
    at: Span,
}

impl Input {
    /// The chain so far, in `__chain`.
    fn chain_var(at: Span) -> Input {
        Input {
            tokens: local("__chain", at).to_token_stream(),
            at,
        }
    }
}

/// `__kind.METHOD((input), closure)` (`closure, skipped` for `add_run`): the chain's kind
/// adds the step as that kind's `Deferred::METHOD` would (see `__private::kind`). Spanned at the
/// step's keyword so that the `#[track_caller]` location of the step is the keyword's.
fn add_step(method: &str, step: &Step, input: Input, closure: TokenStream) -> TokenStream {
    let keyword = step.keyword.span();
    let method = Ident::new(method, keyword);
    // The input in a block spanned at the user's code it comes from (the start, the body
    // before): the compiler blames an argument for an unmet bound (a value that is not `Send`)
    // at the argument only when the argument is in the call's own context. A statement in the
    // block keeps the `unused_braces` lint quiet.
    let input_var = local("__input", input.at);
    let tokens = input.tokens;
    let mut input_group = Group::new(
        Delimiter::Brace,
        quote_spanned!(Span::mixed_site()=> let #input_var = #tokens; #input_var),
    );
    input_group.set_span(input.at);
    let mut args = Group::new(Delimiter::Parenthesis, quote!(#input_group, #closure));
    args.set_span(keyword);
    let kind = local("__kind", keyword);
    quote_spanned!(keyword=> #kind.#method #args)
}

/// `__kind.raised({outcome})`: called at the step's keyword, so that a failure the body gave is
/// raised at that step (see `__private::trail`). With `carried`, the last step of a segment:
/// `__kind.raised_carrying({outcome}, carried)` gives `(value, carried)`.
fn raised(
    step: &Step,
    body: Span,
    outcome: TokenStream,
    carried: Option<TokenStream>,
) -> TokenStream {
    let keyword = step.keyword.span();
    // In a block at the body, for the same reason as the input of `add_step`; a statement in it
    // keeps the `unused_braces` lint quiet.
    let outcome_var = local("__outcome", body);
    let mut outcome = Group::new(
        Delimiter::Brace,
        quote_spanned!(Span::mixed_site()=> let #outcome_var = #outcome; #outcome_var),
    );
    outcome.set_span(body);
    let (glue, args) = match carried {
        None => ("raised", outcome.to_token_stream()),
        Some(carried) => ("raised_carrying", quote!(#outcome, #carried)),
    };
    let glue = Ident::new(glue, keyword);
    let mut args = Group::new(Delimiter::Parenthesis, args);
    args.set_span(keyword);
    // In a block at the keyword: a step after a body that never returns is unreachable, and
    // the compiler says so at this call, which must be at the user's keyword (the receiver is
    // the macro's own `__kind`, so the call alone would not be).
    let kind = local("__kind", keyword);
    let next = local("__next", keyword);
    let mut call = Group::new(
        Delimiter::Brace,
        quote_spanned!(Span::mixed_site()=> let #next = #kind.#glue #args; #next),
    );
    call.set_span(keyword);
    call.into_token_stream()
}

/// What computes a body's value: the body itself, or, when it uses `return` or `?` or has a
/// return type, a closure around it called at once (so that they mean what they do in a closure).
fn body_value(closure: &StepClosure) -> TokenStream {
    let body = &closure.body;
    if closure.framed() {
        let output = &closure.output;
        // At the body: the compiler's messages about `?` and `return` name "this closure".
        let at_body = Span::mixed_site().located_at(body.span());
        quote_spanned!(at_body=> (|| #output #body)())
    } else {
        body.to_token_stream()
    }
}

/// Turns the body's value in `__v` into what the step gives (`start`, `step`, `recover` or
/// `finally`, see `__private`), choosing by its type. Located at the body, where type errors
/// belong.
fn dispatch(method: &str, body: Span, chain_value: Option<&Ident>) -> TokenStream {
    let at_body = Span::mixed_site().located_at(body);
    let value = local("__v", body);
    let method = Ident::new(method, at_body);
    let chain_value = chain_value.map(|chain_value| {
        let chain_value = local(&chain_value.to_string(), body);
        quote!(, #chain_value)
    });
    let kind = (method != "start").then(|| {
        let kind = local("__kind", body);
        quote!(#kind,)
    });
    let krate = krate(at_body);
    quote_spanned! {at_body=>
        (&&&#krate::__private::probe(&#value)).__step_kind().#method(#kind #value #chain_value)
    }
}

/// [`dispatch`] of the start, with `at`, where it is, as the tags' `start` takes it.
fn dispatch_start(body: Span, at: TokenStream) -> TokenStream {
    let at_body = Span::mixed_site().located_at(body);
    let value = local("__v", body);
    let method = Ident::new("start", at_body);
    let krate = krate(at_body);
    quote_spanned! {at_body=>
        (&&&#krate::__private::probe(&#value)).__step_kind().#method(#value, #at)
    }
}

/// [`dispatch`] of a `finally |outcome| BODY`, which warns when the body gives a value other than
/// `()`, a `Result` or a Deferred (`__private::FinallyValue`): the `finally` drops it, where
/// Twisted's `addBoth`, which a body that reads the outcome and gives a value looks like, would
/// give it on. (A `finally || BODY` that gives a value, `counter.fetch_add(1, ..)`, is a side
/// effect whose value nobody meant to give on: no warning.)
fn dispatch_finally_of_outcome(body: Span) -> TokenStream {
    let at_body = Span::mixed_site().located_at(body);
    let value = local("__v", body);
    let krate = krate(at_body);
    let dispatch = dispatch("finally", body, None);
    quote_spanned! {at_body=> {
        (&&&#krate::__private::FinallyValue::of(&#value)).finally_value();
        #dispatch
    }}
}

/// `Result<_, _>`: the type given to a `then` or `catch` body that never gives a value (a
/// `Result` settles a step of either kind of chain).
fn deferred_of_any() -> TokenStream {
    quote_spanned!(Span::mixed_site()=> ::core::result::Result<_, _>)
}

/// `::deferred::__private::Kind::fail(__kind, ..)`: a fired link of the chain's kind, failed.
fn fail(error: &Ident) -> TokenStream {
    let site = Span::mixed_site();
    let krate = krate(site);
    let kind = local("__kind", site);
    quote_spanned!(site=> #krate::__private::Kind::fail(#kind, #error))
}

/// One of the macro's own names, resolved at the macro's site, located at `location`.
fn local(name: &str, location: Span) -> Ident {
    Ident::new(name, Span::mixed_site().located_at(location))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain_of(tokens: TokenStream) -> Chain {
        crate::parse::parse(tokens).expect("a chain")
    }

    #[test]
    fn each_catch_finally_and_segment_of_a_run_is_a_closure_of_its_own() {
        let mut tokens = quote!(start);
        for _ in 0..70 {
            tokens.extend(quote!(then | a | a + 1));
        }
        tokens.extend(quote!(catch |e| 0 catch |e| 1 finally || () then |b| b then |c| c));
        let closures = closure_of_each_step(&chain_of(tokens).steps);
        let mut expected = vec![1; SEGMENT_STEPS];
        expected.extend(vec![2; SEGMENT_STEPS]);
        expected.extend(vec![3; 70 - 2 * SEGMENT_STEPS]);
        expected.extend([4, 5, 6, 7, 7]);
        assert_eq!(closures, expected);
    }

    #[test]
    fn a_value_two_closures_take_whole_is_checked_once_at_its_later_use() {
        let chain = chain_of(quote! {
            start
            then |a| a + name.len() + cfg.limit
            then |b| b + name.len()
            catch |e| format!("{name}: {e} {}", cfg.limit)
            finally || drop(&name)
        });
        let captured = captured_by_step(&collect_steps(&chain));
        let again: Vec<String> = captured_again(&chain, &captured)
            .iter()
            .map(ToString::to_string)
            .collect();
        // `name` is taken whole by the run and the catch; `cfg` only by its field.
        assert_eq!(again, ["name"]);
        let names: Vec<String> = captured_names(&captured)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(names, ["name", "cfg"]);
    }

    #[test]
    fn a_name_used_before_the_body_binds_it_is_captured() {
        let chain = chain_of(quote! {
            start
            then |a| { let total = total + a; total }
            then |b| { let limit = 3; b.min(limit) }
            then |c| { if let Some(x) = x.get(c) { *x } else { 0 } }
            then |d| { for item in items.iter() { let _ = item; } d }
            then |e| { let rest = e; rest + rest }
        });
        let names: Vec<Vec<String>> = captured_by_step(&collect_steps(&chain))
            .iter()
            .map(|names| names.iter().map(|(name, _)| name.to_string()).collect())
            .collect();
        assert_eq!(
            names,
            [
                vec!["total".to_owned()],
                vec![],
                vec!["x".to_owned()],
                vec!["items".to_owned()],
                vec![]
            ]
        );
    }

    #[test]
    fn a_format_string_names_its_inline_arguments_not_its_escapes_or_named_ones() {
        let literal = |text: &str| proc_macro2::Literal::string(text);
        assert_eq!(
            format_string_names(&literal(
                "{a} {b:?} {{c}} {0} {:>5} {d:>width$} {type} {a} {:x>1$} {:.prec$} {:_<w$.p$}"
            )),
            ["a", "b", "d", "width", "prec", "w", "p"]
        );
        assert_eq!(format_string_names(&literal("{t}\u{b0}C")), ["t"]);
        let chain = chain_of(quote! {
            start
            then |a| format!("{n} items, {a}", n = a + 1)
            catch |e| format!("{n}")
        });
        let captured = captured_by_step(&collect_steps(&chain));
        let names: Vec<Vec<String>> = captured
            .iter()
            .map(|names| names.iter().map(|(name, _)| name.to_string()).collect())
            .collect();
        assert_eq!(names, [Vec::<String>::new(), vec!["n".to_owned()]]);
    }

    #[test]
    fn a_name_a_later_step_binds_again_before_it_uses_it_is_not_carried() {
        let carried = |later: &str| {
            let later: TokenStream = later.parse().expect("tokens");
            let chain = chain_of(quote!(start then |g| g then |x| x #later));
            carried_names(&chain.steps[..2], &chain.steps[2..])
                .iter()
                .map(Binding::name)
                .collect::<Vec<_>>()
        };
        // The step's own binding is in scope wherever the step names `g`.
        for later in [
            "then |y| { let g = 5; y + g }",
            "then |y| [y].iter().map(|g| g + 1).sum::<u32>()",
            "then |y| match y { 0 => 0, g => g + 1 }",
            "then |y| if let Some(g) = Some(y) { g } else { 0 }",
            "then |y| { for g in 0..y { drop(g) } y }",
            r#"then |y| { let g = y; println!("{g}"); format!("{}", g) }"#,
            r#"then |y| { let g = y; m!(g, "{g}") }"#,
            "then |g| g then |z| z + g",
        ] {
            assert_eq!(carried(later), Vec::<String>::new(), "{later}");
        }
        // The earlier step's `g`: used before the step binds its own, or out of that binding's
        // scope, or in a later step; and, whatever a binding inside them may mean, in a format
        // string or in a macro's tokens that the walk does not read as code.
        for later in [
            "then |y| { let g = g + y; g }",
            "then |y| { { let g = 1; drop(g) } y + g }",
            "then |y| [y].iter().map(|g| g + 1).sum::<u32>() + g",
            "then |y| match y { 0 => g, g => g + 1 }",
            "then |y| if let Some(g) = Some(y) { g } else { g }",
            "then |y| { let Some(g) = Some(y) else { return g }; g }",
            "then |y| S { g, y }",
            r#"then |y| format!("{g}{y}")"#,
            r#"then |y| write!(out, "{:>g$}", y)"#,
            r#"then |y| println!("{}", y + g)"#,
            "then |y| m!(y, g)",
            r#"then |y| m!(y, "{g}")"#,
            "then |y| m!(|g| g)",
            "then |y| matches!(y, g if g > 1)",
            "then |y| { macro_rules! m { () => { g } } m!() }",
            "then |y| y then |z| z + g",
            "then |y| { let g = y; g } then |z| z + g",
        ] {
            assert_eq!(carried(later), ["g"], "{later}");
        }
    }
}
