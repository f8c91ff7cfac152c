//! Fault drills: [`FaultInjection`] makes chosen calls of a store fail, fail *after* the store
//! applied them (a lost reply), take longer, or never complete, scripted call by call or at
//! random with a seeded generator, and counts every call per [`Operation`]. Tests use it (the
//! testkit re-exports it as `strata_testkit::faults`), and so can a staging stack, to check
//! that the policy layers above it and the runtime above them handle what it injects.
//!
//! # Faults
//!
//! | [`Fault`] | what the call does |
//! |---|---|
//! | [`FailBefore`](Fault::FailBefore) | returns the error **without** reaching the store: nothing was applied |
//! | [`FailAfter`](Fault::FailAfter) | runs the call against the store, then returns the error anyway (a lost reply: the effect happened, the caller cannot know). If the store itself failed, its error is returned instead |
//! | [`Delay`](Fault::Delay) | sleeps (`tokio::time::sleep`, so a paused test clock auto-advances), then runs the call: added latency |
//! | [`Hang`](Fault::Hang) | never completes and never reaches the store, until the call is dropped (for timeout and cancellation drills) |
//!
//! # Scripted and random faults
//!
//! - **Scripted**: [`inject`](FaultInjection::inject) (and its shorthands
//!   [`fail_next`](FaultInjection::fail_next), [`fail_after_next`](FaultInjection::fail_after_next),
//!   [`delay_next`](FaultInjection::delay_next), [`hang_next`](FaultInjection::hang_next)) arms
//!   a fault for the next calls of an operation; [`script`](FaultInjection::script) arms a
//!   sequence, one step per call, where `None` lets that call through. Armed faults are
//!   consumed in the order they were armed: each call of an operation takes the oldest armed
//!   step for that operation (at most one per call).
//! - **Random**: [`with_rate`](FaultInjection::with_rate) gives operations a probability of a
//!   fault on each call that has no scripted step. The draws come from one generator seeded
//!   with [`with_seed`](FaultInjection::with_seed) (default seed 0), in the order calls enter
//!   the layer: the same seed and the same sequence of calls give the same faults.
//!
//! Calls with neither pass through unchanged; while nothing is armed and no rate is set, a
//! call costs one counter increment and one flag read (no lock).
//! [`calls`](FaultInjection::calls) counts every call that entered the layer, faulted or not
//! (a hung call counts once it has entered); [`injected`](FaultInjection::injected) counts the
//! calls that got a fault. `durability_tier` is not a call and is forwarded directly.
//!
//! Clones share one state (faults, rates, generator and counters), so a handle kept by the
//! test or the drill controls every store the layer wrapped.
//!
//! # Where it goes
//!
//! Innermost, right above the store: `… → retry → timeout → limit → breaker → faults → store`,
//! so that every policy layer sees the injected faults as the store's.
//!
//! # Cancellation
//!
//! A fault is taken (and its repetition consumed) when the call is first polled. Dropping the
//! call's future afterwards never leaves the layer's state inconsistent: no lock is held
//! across an `.await`.
//!
//! ```
//! use strata_core::{Operation, StoreBuilder, StoreError};
//! use strata_layers::faults::{Fault, FaultInjection};
//!
//! let faults = FaultInjection::new()
//!     .with_seed(7)
//!     .with_rate(&[Operation::CommitRuntimeState], 0.3, Fault::FailAfter(StoreError::Unavailable("lost reply".into())));
//! faults.fail_next(Operation::LoadSession, 2, StoreError::Unavailable("disk".into()));
//! let builder = StoreBuilder::new().layer(faults.clone());
//! # let _ = builder;
//! assert_eq!(faults.calls(Operation::LoadSession), 0);
//! ```

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use strata_core::{Around, Operation, Request, Response, Serve, StoreError};

/// What a fault does to one call (see the [module docs](self)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Return the error before reaching the store (nothing applied).
    FailBefore(StoreError),
    /// Run the call, then return the error (ambiguous failure: the effect happened).
    FailAfter(StoreError),
    /// Sleep this long, then run the call.
    Delay(Duration),
    /// Never complete, never reach the store.
    Hang,
}

/// One armed step and how many more calls it applies to (`None`: let the call through).
#[derive(Debug)]
struct Armed {
    operation: Operation,
    fault: Option<Fault>,
    remaining: u64,
}

/// What decides a call's fault, under the layer's lock.
#[derive(Debug)]
struct Plan {
    armed: Vec<Armed>,
    /// Indexed by [`Operation::index`]: `(probability, fault)` in the order they were set.
    rates: Vec<Vec<(f64, Fault)>>,
    generator: fastrand::Rng,
}

impl Plan {
    /// True when no call can get a fault.
    fn is_quiet(&self) -> bool {
        self.armed.is_empty() && self.rates.iter().all(Vec::is_empty)
    }

    /// The fault the next call of `operation` gets, if any.
    fn take(&mut self, operation: Operation) -> Option<Fault> {
        if let Some(position) = self.armed.iter().position(|armed| armed.operation == operation) {
            let slot = &mut self.armed[position];
            let fault = slot.fault.clone();
            slot.remaining -= 1;
            if slot.remaining == 0 {
                self.armed.remove(position);
            }
            return fault;
        }
        let rates = &self.rates[operation.index()];
        if rates.is_empty() {
            return None;
        }
        let mut draw = self.generator.f64();
        for (rate, fault) in rates {
            if draw < *rate {
                return Some(fault.clone());
            }
            draw -= rate;
        }
        None
    }
}

#[derive(Debug)]
struct State {
    plan: Mutex<Plan>,
    /// Mirrors [`Plan::is_quiet`], so that a quiet layer takes no lock.
    quiet: AtomicBool,
    calls: Vec<AtomicU64>,
    injected: Vec<AtomicU64>,
}

impl Default for State {
    fn default() -> Self {
        let counters = || Operation::ALL.iter().map(|_| AtomicU64::new(0)).collect();
        Self {
            plan: Mutex::new(Plan {
                armed: Vec::new(),
                rates: Operation::ALL.iter().map(|_| Vec::new()).collect(),
                generator: fastrand::Rng::with_seed(0),
            }),
            quiet: AtomicBool::new(true),
            calls: counters(),
            injected: counters(),
        }
    }
}

/// The fault-injecting decorator (an [`Around`], hence a [`Layer`](strata_core::Layer)).
/// Cheap to clone; clones share faults, rates, generator and counters.
#[derive(Clone, Default)]
pub struct FaultInjection {
    state: Arc<State>,
}

impl fmt::Debug for FaultInjection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("fault_injection")
    }
}

impl FaultInjection {
    /// A decorator with no fault armed, no rate, seed 0 and zeroed counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Changes the plan under the lock and republishes whether it is quiet.
    fn change<R>(&self, change: impl FnOnce(&mut Plan) -> R) -> R {
        let mut plan = self.plan();
        let result = change(&mut plan);
        self.state.quiet.store(plan.is_quiet(), Ordering::Release);
        result
    }

    fn plan(&self) -> MutexGuard<'_, Plan> {
        // A panic while holding this lock cannot leave the plan half-updated (every update is
        // a single push, decrement, draw or retain), so a poisoned lock is still usable.
        self.state.plan.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reseeds the generator of random faults (for every clone).
    pub fn with_seed(self, seed: u64) -> Self {
        self.change(|plan| plan.generator = fastrand::Rng::with_seed(seed));
        self
    }

    /// Each call of one of `operations` without a scripted step gets `fault` with
    /// probability `rate`, in addition to the rates set before for that operation (one draw
    /// per call picks at most one of them).
    ///
    /// # Panics
    ///
    /// If `rate` is not within 0 and 1, or an operation's rates add up to more than 1.
    pub fn with_rate(self, operations: &[Operation], rate: f64, fault: Fault) -> Self {
        assert!((0.0..=1.0).contains(&rate), "a fault rate is a probability, not {rate}");
        self.change(|plan| {
            for operation in operations {
                let rates = &mut plan.rates[operation.index()];
                rates.push((rate, fault.clone()));
                let total: f64 = rates.iter().map(|(rate, _)| rate).sum();
                assert!(total <= 1.0, "the fault rates of {operation} add up to {total}");
            }
        });
        self
    }

    /// Arms `fault` for the next `times` calls of `operation` (after the steps armed earlier
    /// for that operation are used up). `times == 0` arms nothing.
    pub fn inject(&self, operation: Operation, times: u64, fault: Fault) -> &Self {
        if times > 0 {
            self.change(|plan| {
                plan.armed.push(Armed { operation, fault: Some(fault), remaining: times })
            });
        }
        self
    }

    /// Arms one step per call of `operation`, in order: `Some(fault)` injects it, `None`
    /// lets that call through.
    pub fn script(
        &self,
        operation: Operation,
        steps: impl IntoIterator<Item = Option<Fault>>,
    ) -> &Self {
        self.change(|plan| {
            plan.armed.extend(steps.into_iter().map(|fault| Armed {
                operation,
                fault,
                remaining: 1,
            }))
        });
        self
    }

    /// The next `times` calls of `operation` fail with `error` before reaching the store.
    pub fn fail_next(&self, operation: Operation, times: u64, error: StoreError) -> &Self {
        self.inject(operation, times, Fault::FailBefore(error))
    }

    /// The next `times` calls of `operation` reach the store and are applied, then report
    /// `error` (an ambiguous failure).
    pub fn fail_after_next(&self, operation: Operation, times: u64, error: StoreError) -> &Self {
        self.inject(operation, times, Fault::FailAfter(error))
    }

    /// The next `times` calls of `operation` sleep for `delay` before running.
    pub fn delay_next(&self, operation: Operation, times: u64, delay: Duration) -> &Self {
        self.inject(operation, times, Fault::Delay(delay))
    }

    /// The next `times` calls of `operation` never complete.
    pub fn hang_next(&self, operation: Operation, times: u64) -> &Self {
        self.inject(operation, times, Fault::Hang)
    }

    /// Disarms every scripted step not yet used and removes every rate (counters, seed and
    /// generator state are kept).
    pub fn clear(&self) {
        self.change(|plan| {
            plan.armed.clear();
            plan.rates.iter_mut().for_each(Vec::clear);
        });
    }

    /// How many armed scripted steps for `operation` are left.
    pub fn armed_for(&self, operation: Operation) -> u64 {
        self.plan()
            .armed
            .iter()
            .filter(|armed| armed.operation == operation)
            .map(|armed| armed.remaining)
            .sum()
    }

    /// How many calls of `operation` entered the decorator (faulted ones included).
    pub fn calls(&self, operation: Operation) -> u64 {
        self.state.calls[operation.index()].load(Ordering::SeqCst)
    }

    /// How many calls of any operation entered the decorator.
    pub fn total_calls(&self) -> u64 {
        self.state.calls.iter().map(|count| count.load(Ordering::SeqCst)).sum()
    }

    /// How many calls of `operation` got a fault.
    pub fn injected(&self, operation: Operation) -> u64 {
        self.state.injected[operation.index()].load(Ordering::SeqCst)
    }

    /// Counts the call and takes the fault it must suffer, if any.
    fn enter(&self, operation: Operation) -> Option<Fault> {
        self.state.calls[operation.index()].fetch_add(1, Ordering::SeqCst);
        if self.state.quiet.load(Ordering::Acquire) {
            return None;
        }
        let fault = self.change(|plan| plan.take(operation))?;
        self.state.injected[operation.index()].fetch_add(1, Ordering::SeqCst);
        Some(fault)
    }
}

impl Around for FaultInjection {
    async fn around<'a, S>(
        &'a self,
        inner: &'a S,
        request: Request<'a>,
    ) -> Result<Response, StoreError>
    where
        S: Serve + ?Sized + 'a,
    {
        // What happens before the call, then one await of it (which keeps the future small).
        let after = match self.enter(request.operation()) {
            None => None,
            Some(Fault::FailBefore(error)) => return Err(error),
            Some(Fault::FailAfter(error)) => Some(error),
            Some(Fault::Delay(delay)) => {
                // Boxed: only a delayed call pays for the (large) timer.
                Box::pin(tokio::time::sleep(delay)).await;
                None
            }
            Some(Fault::Hang) => std::future::pending().await,
        };
        let response = inner.serve(request).await?;
        match after {
            None => Ok(response),
            Some(error) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use strata_core::*;

    use super::*;
    use crate::test_support::run_conformance;

    /// A minimal store whose only observable state is its metadata record.
    #[derive(Debug, Default)]
    struct MetaOnly {
        meta: StdMutex<Option<SessionMeta>>,
    }

    noop_attachment_manifest!(MetaOnly);

    #[async_trait]
    impl RuntimePersistence for MetaOnly {
        async fn load_session(
            &self,
            _scope: SessionReadScope,
        ) -> Result<Option<PersistedSessionRead>, StoreError> {
            Ok(None)
        }
        async fn load_node(&self, _id: &str) -> Result<Option<SessionNodeRecord>, StoreError> {
            Ok(None)
        }
        async fn commit_runtime_state(
            &self,
            _commit: RuntimeCommit,
        ) -> Result<RuntimeCommitResult, StoreError> {
            Err(StoreError::Unsupported("commit_runtime_state"))
        }
        async fn save_session_meta(&self, meta: SessionMeta) -> Result<(), StoreError> {
            *self.meta.lock().unwrap() = Some(meta);
            Ok(())
        }
        async fn load_session_meta(&self) -> Result<Option<SessionMeta>, StoreError> {
            Ok(self.meta.lock().unwrap().clone())
        }
        async fn tombstone_nodes(&self, _ids: &[String]) -> Result<(), StoreError> {
            Ok(())
        }
        async fn vacuum(&self) -> Result<VacuumReport, StoreError> {
            Ok(VacuumReport::default())
        }
        async fn gc_unreachable(&self) -> Result<GcReport, StoreError> {
            Ok(GcReport::default())
        }
        fn durability_tier(&self) -> DurabilityTier {
            DurabilityTier::Durable
        }
    }

    fn meta(name: &str) -> SessionMeta {
        SessionMeta {
            session_id: "s".into(),
            session_name: Some(name.into()),
            ..Default::default()
        }
    }

    fn unavailable() -> StoreError {
        StoreError::Unavailable("injected".into())
    }

    fn wrapped(faults: &FaultInjection) -> Decorated<Arc<MetaOnly>, FaultInjection> {
        StoreBuilder::new().layer(faults.clone()).build(Arc::new(MetaOnly::default()))
    }

    #[tokio::test]
    async fn fail_next_fails_before_the_store_then_passes_through() {
        let faults = FaultInjection::new();
        let store = wrapped(&faults);
        faults.fail_next(Operation::SaveSessionMeta, 2, unavailable());
        for attempt in 0..2 {
            let result = store.save_session_meta(meta("lost")).await;
            assert_eq!(result, Err(unavailable()), "attempt {attempt}");
            assert_eq!(store.inner().load_session_meta().await.unwrap(), None);
        }
        store.save_session_meta(meta("kept")).await.unwrap();
        assert_eq!(store.load_session_meta().await.unwrap(), Some(meta("kept")));
        assert_eq!(faults.calls(Operation::SaveSessionMeta), 3);
        assert_eq!(faults.injected(Operation::SaveSessionMeta), 2);
        assert_eq!(faults.calls(Operation::LoadSessionMeta), 1);
        assert_eq!(faults.total_calls(), 4);
        assert_eq!(faults.armed_for(Operation::SaveSessionMeta), 0);
    }

    #[tokio::test]
    async fn fail_after_applies_the_call_and_still_reports_the_error() {
        let faults = FaultInjection::new();
        let store = wrapped(&faults);
        faults.fail_after_next(Operation::SaveSessionMeta, 1, unavailable());
        assert_eq!(store.save_session_meta(meta("applied")).await, Err(unavailable()));
        assert_eq!(store.load_session_meta().await.unwrap(), Some(meta("applied")));
    }

    #[tokio::test]
    async fn fail_after_returns_the_store_error_when_the_store_fails() {
        let faults = FaultInjection::new();
        let store = wrapped(&faults);
        faults.fail_after_next(Operation::CommitRuntimeState, 1, unavailable());
        let result = store.commit_runtime_state(RuntimeCommit::default()).await;
        assert_eq!(result, Err(StoreError::Unsupported("commit_runtime_state")));
    }

    #[tokio::test]
    async fn faults_apply_per_operation_in_arming_order() {
        let faults = FaultInjection::new();
        let store = wrapped(&faults);
        faults.fail_next(Operation::LoadSessionMeta, 1, unavailable()).fail_next(
            Operation::LoadSessionMeta,
            1,
            StoreError::Overloaded("second".into()),
        );
        store.save_session_meta(meta("untouched")).await.unwrap();
        assert_eq!(store.load_session_meta().await, Err(unavailable()));
        assert_eq!(store.load_session_meta().await, Err(StoreError::Overloaded("second".into())));
        assert_eq!(store.load_session_meta().await.unwrap(), Some(meta("untouched")));
    }

    #[tokio::test]
    async fn a_script_runs_one_step_per_call_and_none_lets_a_call_through() {
        let faults = FaultInjection::new();
        let store = wrapped(&faults);
        let fail = || Some(Fault::FailBefore(unavailable()));
        faults.script(Operation::SaveSessionMeta, [fail(), None, fail()]);
        assert_eq!(faults.armed_for(Operation::SaveSessionMeta), 3);
        assert!(store.save_session_meta(meta("1")).await.is_err());
        store.save_session_meta(meta("2")).await.unwrap();
        assert!(store.save_session_meta(meta("3")).await.is_err());
        store.save_session_meta(meta("4")).await.unwrap();
        assert_eq!(store.load_session_meta().await.unwrap(), Some(meta("4")));
        assert_eq!(faults.injected(Operation::SaveSessionMeta), 2);
    }

    /// Which of `calls` calls of `load_session_meta` failed, under `faults`.
    async fn failures(faults: &FaultInjection, calls: usize) -> Vec<bool> {
        let store = wrapped(faults);
        let mut failed = Vec::new();
        for _ in 0..calls {
            failed.push(store.load_session_meta().await.is_err());
        }
        failed
    }

    #[tokio::test]
    async fn random_faults_follow_their_rate_and_repeat_with_the_seed() {
        let drill = |seed| {
            FaultInjection::new().with_seed(seed).with_rate(
                &[Operation::LoadSessionMeta],
                0.3,
                Fault::FailBefore(unavailable()),
            )
        };
        let first = failures(&drill(42), 1_000).await;
        let failed = first.iter().filter(|failed| **failed).count();
        assert!((230..=370).contains(&failed), "{failed} of 1000 calls failed at a 0.3 rate");
        assert_eq!(failures(&drill(42), 1_000).await, first, "same seed, same faults");
        assert_ne!(failures(&drill(43), 1_000).await, first, "another seed, other faults");
    }

    #[tokio::test]
    async fn scripted_steps_come_before_random_ones_and_clear_removes_both() {
        let faults = FaultInjection::new().with_rate(
            &[Operation::LoadSessionMeta],
            1.0,
            Fault::FailBefore(unavailable()),
        );
        faults.script(Operation::LoadSessionMeta, [None]);
        assert_eq!(failures(&faults, 3).await, [false, true, true]);
        faults.clear();
        assert_eq!(failures(&faults, 3).await, [false, false, false]);
        assert_eq!(faults.calls(Operation::LoadSessionMeta), 6);
    }

    #[test]
    #[should_panic(expected = "add up to")]
    fn rates_of_one_operation_cannot_exceed_one() {
        let _ = FaultInjection::new().with_rate(&[Operation::Vacuum], 0.6, Fault::Hang).with_rate(
            &[Operation::Vacuum],
            0.6,
            Fault::Hang,
        );
    }

    #[tokio::test]
    async fn clear_disarms_and_keeps_counters() {
        let faults = FaultInjection::new();
        let store = wrapped(&faults);
        faults.fail_next(Operation::Vacuum, 5, unavailable());
        assert!(store.vacuum().await.is_err());
        assert_eq!(faults.armed_for(Operation::Vacuum), 4);
        faults.clear();
        assert_eq!(faults.armed_for(Operation::Vacuum), 0);
        assert!(store.vacuum().await.is_ok());
        assert_eq!(faults.calls(Operation::Vacuum), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn delay_sleeps_on_the_tokio_clock_then_runs() {
        let faults = FaultInjection::new();
        let store = wrapped(&faults);
        faults.delay_next(Operation::SaveSessionMeta, 1, Duration::from_secs(30));
        let started = tokio::time::Instant::now();
        store.save_session_meta(meta("late")).await.unwrap();
        assert!(started.elapsed() >= Duration::from_secs(30), "the call did not wait");
        assert_eq!(store.load_session_meta().await.unwrap(), Some(meta("late")));
    }

    #[tokio::test(start_paused = true)]
    async fn hang_never_completes_and_never_reaches_the_store() {
        let faults = FaultInjection::new();
        let store = wrapped(&faults);
        faults.hang_next(Operation::SaveSessionMeta, 1);
        let hung =
            tokio::time::timeout(Duration::from_secs(3600), store.save_session_meta(meta("x")));
        assert!(hung.await.is_err(), "a hung call completed");
        assert_eq!(store.load_session_meta().await.unwrap(), None);
        assert_eq!(faults.calls(Operation::SaveSessionMeta), 1);
        store.save_session_meta(meta("after")).await.unwrap();
        assert_eq!(store.load_session_meta().await.unwrap(), Some(meta("after")));
    }

    #[tokio::test]
    async fn a_fault_is_taken_when_the_call_is_first_polled() {
        let faults = FaultInjection::new();
        let store = wrapped(&faults);
        faults.fail_next(Operation::LoadNode, 1, unavailable());
        drop(store.load_node("never polled"));
        assert_eq!(
            (faults.calls(Operation::LoadNode), faults.armed_for(Operation::LoadNode)),
            (0, 1)
        );
        assert!(store.load_node("n").await.is_err());
    }

    #[tokio::test]
    async fn clones_share_state_and_the_tier_is_forwarded() {
        let faults = FaultInjection::new();
        let store = wrapped(&faults.clone());
        faults.fail_next(Operation::LoadNode, 1, unavailable());
        assert!(store.load_node("n").await.is_err());
        assert_eq!(faults.calls(Operation::LoadNode), 1);
        assert_eq!(store.durability_tier(), DurabilityTier::Durable);
        assert!(format!("{store:?}").starts_with("fault_injection → MetaOnly"), "{store:?}");
    }

    #[tokio::test]
    async fn conformance_over_memory_and_file_stores() {
        run_conformance(FaultInjection::new()).await;
    }
}
