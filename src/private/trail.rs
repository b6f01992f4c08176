// Included by `kind.rs`, beside the kinds' types (see there): no `use` of its own.
//
// Where a failure was raised: in a run of `then`s, at the step whose body gave it (`raised`,
// and `raised_carrying` at the end of a segment of a long run). (The steps it skipped are
// recorded by the core, from the list each step of a run is added with: `add_run`.) One set of
// methods for each kind of chain.
//
// (The core marks the failure a step's function returns; in a run of `then`s the next step is
// added inside the function, so the failure would meet that step first.)

impl SendChain {
    /// The next link of a `then` step: what its body gave, with a failure it gave marked as
    /// raised at the step. `#[track_caller]`: the expansion calls it at the step's keyword.
    #[track_caller]
    #[inline(always)]
    pub fn raised<U, E>(self, outcome: StepOutcome<U, E, SendChain>) -> Deferred<U, E>
    where
        U: Sendable + 'static,
        E: ErrorType + Sendable,
    {
        let step = Location::caller();
        match outcome {
            StepOutcome::Value(value) => Deferred::succeed(value),
            StepOutcome::Failed(error) => Deferred::from_result(Err(error)).__raised_at(step),
            StepOutcome::Later(deferred) => deferred.__raised_at(step),
        }
    }

    /// [`raised`](SendChain::raised), for the last step of a segment of a long run of `then`s:
    /// the next link gives the step's value with the names the rest of the run uses,
    /// `(value, carried)`, for the next segment's first step to take apart. (A run nests its
    /// steps' closures; a long one is cut into segments, so that the compiler's recursion limit
    /// is not reached.)
    ///
    /// A value or a fired Deferred allocates nothing; a pending Deferred gets one more link.
    #[track_caller]
    #[inline(always)]
    pub fn raised_carrying<U, E, C>(
        self,
        outcome: StepOutcome<U, E, SendChain>,
        carried: C,
    ) -> Deferred<(U, C), E>
    where
        U: Sendable + 'static,
        E: ErrorType + Sendable,
        C: Sendable + 'static,
    {
        let step = Location::caller();
        match outcome {
            StepOutcome::Value(value) => Deferred::succeed((value, carried)),
            StepOutcome::Failed(error) => Deferred::from_result(Err(error)).__raised_at(step),
            // A link of the library's own: a failure it passes is not recorded as having
            // skipped this step (which ran), as `add_callback` would record it, and the
            // registry does not list it as a step to run.
            StepOutcome::Later(deferred) => deferred
                .__raised_at(step)
                .__add_carrying(move |value| (value, carried)),
        }
    }
}

impl LocalChain {
    /// [`SendChain::raised`], for a chain of `LocalDeferred`s.
    #[track_caller]
    #[inline(always)]
    pub fn raised<U, E>(self, outcome: StepOutcome<U, E, LocalChain>) -> LocalDeferred<U, E>
    where
        U: 'static,
        E: ErrorType,
    {
        let step = Location::caller();
        match outcome {
            StepOutcome::Value(value) => LocalDeferred::succeed(value),
            StepOutcome::Failed(error) => LocalDeferred::from_result(Err(error)).__raised_at(step),
            StepOutcome::Later(deferred) => deferred.__raised_at(step),
        }
    }

    /// [`SendChain::raised_carrying`], for a chain of `LocalDeferred`s.
    #[track_caller]
    #[inline(always)]
    pub fn raised_carrying<U, E, C>(
        self,
        outcome: StepOutcome<U, E, LocalChain>,
        carried: C,
    ) -> LocalDeferred<(U, C), E>
    where
        U: 'static,
        E: ErrorType,
        C: 'static,
    {
        let step = Location::caller();
        match outcome {
            StepOutcome::Value(value) => LocalDeferred::succeed((value, carried)),
            StepOutcome::Failed(error) => LocalDeferred::from_result(Err(error)).__raised_at(step),
            // A link of the library's own: a failure it passes is not recorded as having
            // skipped this step (which ran), as `add_callback` would record it, and the
            // registry does not list it as a step to run.
            StepOutcome::Later(deferred) => deferred
                .__raised_at(step)
                .__add_carrying(move |value| (value, carried)),
        }
    }
}
