//! Fault injection for tests: [`FaultInjection`] is an [`Around`] decorator (so it is a
//! [`Layer`](strata_core::Layer) for free) that makes chosen calls of a store fail, fail
//! *after* the store applied them, stall for a while, or never complete, and that counts
//! every call per [`Operation`].
//!
//! # Behaviours
//!
//! Faults are armed per operation and consumed in the order they were armed: each call of an
//! operation takes the oldest armed fault for that operation that still has repetitions left
//! (at most one fault per call), and runs it:
//!
//! | armed with | what the call does |
//! |---|---|
//! | [`fail_next`](FaultInjection::fail_next) | returns the error **without** reaching the store: nothing was applied |
//! | [`fail_after_next`](FaultInjection::fail_after_next) | runs the call against the store, then returns the error anyway (an *ambiguous* failure: the effect happened, the caller cannot know). If the store itself failed, its error is returned instead |
//! | [`delay_next`](FaultInjection::delay_next) | sleeps (`tokio::time::sleep`, so a paused test clock auto-advances) and then runs the call |
//! | [`hang_next`](FaultInjection::hang_next) | never completes and never reaches the store (for cancellation and timeout tests; drop the future to end it) |
//!
//! Calls without an armed fault pass through unchanged. [`calls`](FaultInjection::calls)
//! counts every call that entered the decorator, faulted or not (a hung call counts once it
//! has entered). `durability_tier` is not a call and is forwarded directly.
//!
//! Clones share one state (armed faults and counters), so a handle kept by the test controls
//! every store the layer wrapped.
//!
//! # Cancellation
//!
//! A fault is taken (and its repetition consumed) when the call enters the decorator. Dropping
//! the call's future afterwards never leaves the decorator's state inconsistent: no lock is
//! held across an `.await`.
//!
//! ```
//! use std::sync::Arc;
//! use strata_core::{Operation, StoreBuilder, StoreError};
//! use strata_testkit::faults::FaultInjection;
//!
//! let faults = FaultInjection::new();
//! faults.fail_next(Operation::LoadSession, 2, StoreError::Unavailable("disk".into()));
//! let builder = StoreBuilder::new().layer(faults.clone());
//! # let _ = builder;
//! assert_eq!(faults.calls(Operation::LoadSession), 0);
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use strata_core::{Around, Operation, Request, Response, Serve, StoreError};

/// What an armed fault does to one call (see the [module docs](self)).
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

/// One armed fault and how many more calls it applies to.
#[derive(Debug)]
struct Armed {
    operation: Operation,
    fault: Fault,
    remaining: u64,
}

#[derive(Debug)]
struct State {
    armed: Mutex<Vec<Armed>>,
    calls: Vec<AtomicU64>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            armed: Mutex::new(Vec::new()),
            calls: Operation::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

/// The fault-injecting decorator. Cheap to clone; clones share armed faults and counters.
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
    /// A decorator with no armed fault and zeroed counters.
    pub fn new() -> Self {
        Self::default()
    }

    fn armed(&self) -> MutexGuard<'_, Vec<Armed>> {
        // A panic while holding this lock cannot leave the list half-updated (every update is
        // a single push, decrement or retain), so a poisoned lock is still usable.
        self.state.armed.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Arms `fault` for the next `times` calls of `operation` (after faults armed earlier
    /// for that operation are used up). `times == 0` arms nothing.
    pub fn inject(&self, operation: Operation, times: u64, fault: Fault) -> &Self {
        if times > 0 {
            self.armed().push(Armed { operation, fault, remaining: times });
        }
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

    /// Disarms every fault not yet used (counters are kept).
    pub fn clear(&self) {
        self.armed().clear();
    }

    /// How many armed repetitions of faults for `operation` are left.
    pub fn armed_for(&self, operation: Operation) -> u64 {
        self.armed()
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

    /// Counts the call and takes the fault it must suffer, if any.
    fn enter(&self, operation: Operation) -> Option<Fault> {
        self.state.calls[operation.index()].fetch_add(1, Ordering::SeqCst);
        let mut armed = self.armed();
        let position = armed.iter().position(|armed| armed.operation == operation)?;
        let slot = &mut armed[position];
        let fault = slot.fault.clone();
        slot.remaining -= 1;
        if slot.remaining == 0 {
            armed.remove(position);
        }
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
        match self.enter(request.operation()) {
            None => inner.serve(request).await,
            Some(Fault::FailBefore(error)) => Err(error),
            Some(Fault::FailAfter(error)) => {
                inner.serve(request).await?;
                Err(error)
            }
            Some(Fault::Delay(delay)) => {
                tokio::time::sleep(delay).await;
                inner.serve(request).await
            }
            Some(Fault::Hang) => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use strata_core::*;

    use super::*;

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
    async fn clones_share_state_and_the_tier_is_forwarded() {
        let faults = FaultInjection::new();
        let store = wrapped(&faults.clone());
        faults.fail_next(Operation::LoadNode, 1, unavailable());
        assert!(store.load_node("n").await.is_err());
        assert_eq!(faults.calls(Operation::LoadNode), 1);
        assert_eq!(store.durability_tier(), DurabilityTier::Durable);
        assert!(format!("{store:?}").starts_with("fault_injection → MetaOnly"), "{store:?}");
    }
}
