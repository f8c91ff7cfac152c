//! The in-memory [`RuntimePersistence`] backend of Strata, and its session-store factory.
//!
//! [`MemoryStore`] keeps one store's state in a [`SessionState`] (the contract's single,
//! I/O-free implementation in `strata-core`) behind a [`RwLock`]: reads take the read lock and
//! return clones of cheap shared [`Bytes`]; every write plans and applies
//! under the write lock, so a write is atomic and a read is a consistent snapshot. No lock is
//! ever held across an `.await`. State does not survive the process: the tier is
//! [`DurabilityTier::Inline`]. Clones of a store (and every handle a [`MemoryStoreFactory`]
//! opens for one session) share one state. Time comes from an injectable [`SharedClock`].
//!
//! ```
//! use strata_core::{RuntimeCommit, RuntimePersistence, SessionReadScope};
//! use strata_memory::MemoryStore;
//!
//! # tokio_test_block_on(async {
//! let store = MemoryStore::new();
//! let commit = RuntimeCommit { session_id: "s1".into(), ..Default::default() };
//! let result = store.commit_runtime_state(commit).await?;
//! assert_eq!(result.head_revision, 1);
//! let read = store.load_session(SessionReadScope::FullGraph).await?.expect("committed");
//! assert_eq!(read.session_id, "s1");
//! # Ok::<(), strata_core::StoreError>(())
//! # }).unwrap();
//! # fn tokio_test_block_on<F: std::future::Future>(future: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(future)
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use strata_core::*;

type SharedState = Arc<RwLock<SessionState>>;

fn poisoned() -> StoreError {
    StoreError::Backend("memory store lock poisoned by a panic".into())
}

/// An in-memory store: one session's state behind a lock. `Clone` shares the state.
#[derive(Clone)]
pub struct MemoryStore {
    state: SharedState,
    clock: SharedClock,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MemoryStore")
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store on the system clock.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// An empty store on `clock` (e.g. a [`ManualClock`] in tests).
    pub fn with_clock(clock: SharedClock) -> Self {
        Self::sharing(SharedState::default(), clock)
    }

    fn sharing(state: SharedState, clock: SharedClock) -> Self {
        Self { state, clock }
    }

    /// Serves `request`: reads under the read lock, writes planned and applied under the
    /// write lock. The clock is read inside the lock, so times follow the order of writes.
    fn call(&self, request: Request<'_>) -> Result<Response, StoreError> {
        if request.class().is_read() {
            let state = self.state.read().map_err(|_| poisoned())?;
            state.read(&request, self.clock.now_ms())
        } else {
            let mut state = self.state.write().map_err(|_| poisoned())?;
            state.execute(&request, self.clock.now_ms())
        }
    }
}

/// Every call does its work when its future is first polled, never when it is created: it
/// is served then under the state lock, with no `.await` inside. A dropped future that was
/// never polled did nothing; once polled, the call completes within that poll, so there is no
/// half-done call to cancel.
impl Serve for MemoryStore {
    async fn serve(&self, request: Request<'_>) -> Result<Response, StoreError> {
        self.call(request)
    }

    fn tier(&self) -> DurabilityTier {
        DurabilityTier::Inline
    }
}

/// Makes [`MemoryStore`] handles, one shared state per session id.
///
/// `create_store` creates the session's state on first use and reopens it after (every handle
/// of one session shares it); `open_existing_store` returns `None` for a session never
/// created (or deleted); `delete_session` drops the state and is idempotent. A handle still
/// held after its session was deleted keeps working on the detached state, which no later
/// handle sees.
#[derive(Clone)]
pub struct MemoryStoreFactory {
    sessions: Arc<Mutex<HashMap<String, SharedState>>>,
    clock: SharedClock,
}

impl fmt::Debug for MemoryStoreFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MemoryStoreFactory")
    }
}

impl Default for MemoryStoreFactory {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStoreFactory {
    /// A factory whose stores use the system clock.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// A factory whose stores use `clock`.
    pub fn with_clock(clock: SharedClock) -> Self {
        Self { sessions: Arc::default(), clock }
    }

    fn store(&self, state: SharedState) -> Arc<dyn RuntimePersistence> {
        Arc::new(MemoryStore::sharing(state, self.clock.clone()))
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl SessionStoreFactory for MemoryStoreFactory {
    fn durability_tier(&self) -> DurabilityTier {
        DurabilityTier::Inline
    }

    async fn create_store(
        &self,
        request: SessionStoreRequest,
    ) -> Result<Arc<dyn RuntimePersistence>, StoreError> {
        if request.session_id.is_empty() {
            return Err(StoreError::InvalidInput("a session store needs a session id".into()));
        }
        let mut sessions = self.sessions.lock().map_err(|_| poisoned())?;
        let state = sessions.entry(request.session_id).or_default().clone();
        Ok(self.store(state))
    }

    async fn open_existing_store(
        &self,
        session_id: &str,
    ) -> Result<Option<Arc<dyn RuntimePersistence>>, StoreError> {
        let sessions = self.sessions.lock().map_err(|_| poisoned())?;
        Ok(sessions.get(session_id).cloned().map(|state| self.store(state)))
    }

    async fn delete_session(&self, session_id: &str) -> Result<(), StoreError> {
        self.sessions.lock().map_err(|_| poisoned())?.remove(session_id);
        Ok(())
    }

    async fn list_sessions(&self) -> Result<Vec<String>, StoreError> {
        let mut ids: Vec<String> =
            self.sessions.lock().map_err(|_| poisoned())?.keys().cloned().collect();
        ids.sort_unstable();
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(session: &str, expected: Option<u64>) -> RuntimeCommit {
        RuntimeCommit {
            session_id: session.into(),
            expected_head_revision: expected,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn clones_share_one_state_and_debug_names_the_store() {
        let store = MemoryStore::new();
        let other = store.clone();
        store.commit_runtime_state(commit("s", Some(0))).await.unwrap();
        let read = other.load_session(SessionReadScope::FullGraph).await.unwrap().unwrap();
        assert_eq!(read.head_revision, 1);
        assert_eq!(format!("{store:?}"), "MemoryStore");
        assert_eq!(store.durability_tier(), DurabilityTier::Inline);
    }

    #[tokio::test]
    async fn a_call_does_its_work_when_polled_not_when_created() {
        let store = MemoryStore::new();
        // Through `Serve` itself, as a wrapper holding the inner store's future sees it.
        let created = Serve::serve(
            &store,
            Request::CommitRuntimeState { commit: Arc::new(commit("s", Some(0))) },
        );
        assert!(store.load_session(SessionReadScope::FullGraph).await.unwrap().is_none());
        drop(created);
        assert!(store.load_session(SessionReadScope::FullGraph).await.unwrap().is_none());
        store.commit_runtime_state(commit("s", Some(0))).await.unwrap();
        let read = store.load_session(SessionReadScope::FullGraph).await.unwrap().unwrap();
        assert_eq!(read.head_revision, 1);
    }

    #[tokio::test]
    async fn store_time_comes_from_the_injected_clock() {
        let clock = ManualClock::new(5_000);
        let store = MemoryStore::with_clock(Arc::new(clock.clone()));
        let draft = QueuedWorkBatchDraft {
            session_id: "s".into(),
            source_key: None,
            delivery_policy: DeliveryPolicy::EarliestSafeBoundary,
            slot_policy: SlotPolicy::Exclusive,
            merge_key: MergeKey::Never,
            available_at_ms: 6_000,
            payloads: vec![],
        };
        let batch = store.enqueue_queued_work(draft).await.unwrap();
        assert_eq!(batch.enqueued_at_ms, 5_000);
        let idle = QueuedWorkClaimBoundary::Idle;
        assert!(store.claim_ready_queued_work("s", "o", idle, 10, 1).await.unwrap().is_none());
        clock.advance(1_000);
        let claim = store.claim_ready_queued_work("s", "o", idle, 10, 1).await.unwrap().unwrap();
        assert_eq!(claim.expires_at_epoch_ms, 6_010);
        assert!(store.list_pending_queued_work("s").await.unwrap().is_empty());
        assert_eq!(store.list_queued_work("s").await.unwrap(), vec![batch]);
    }

    /// A layer that wraps nothing and records the sessions it was told about.
    #[derive(Clone, Default)]
    struct RecordSessions(Arc<Mutex<Vec<String>>>);

    impl<S> Layer<S> for RecordSessions {
        type Store = S;
        fn layer(&self, inner: S) -> S {
            self.0.lock().unwrap().push("(no session)".into());
            inner
        }
        fn layer_session(&self, session_id: &str, inner: S) -> S {
            self.0.lock().unwrap().push(session_id.into());
            inner
        }
    }

    #[tokio::test]
    async fn a_layered_factory_tells_every_layer_of_the_stack_its_session() {
        let recorded = RecordSessions::default();
        let builder = StoreBuilder::new().layer(recorded.clone()).layer(PassThrough::default());
        let factory = builder.clone().build_factory(MemoryStoreFactory::new());
        factory.create_store(SessionStoreRequest::new("a")).await.unwrap();
        factory.open_existing_store("a").await.unwrap().unwrap();
        assert!(factory.open_existing_store("never").await.unwrap().is_none());
        builder.build_for_session("b", MemoryStore::new());
        builder.build(MemoryStore::new());
        assert_eq!(*recorded.0.lock().unwrap(), ["a", "a", "b", "(no session)"]);
    }

    #[tokio::test]
    async fn factory_shares_state_per_session_and_deletes_idempotently() {
        let factory = MemoryStoreFactory::new();
        assert!(factory.open_existing_store("a").await.unwrap().is_none());
        let first = factory.create_store(SessionStoreRequest::new("a")).await.unwrap();
        first.commit_runtime_state(commit("a", None)).await.unwrap();
        let again = factory.create_store(SessionStoreRequest::new("a")).await.unwrap();
        let reopened = factory.open_existing_store("a").await.unwrap().unwrap();
        for handle in [&again, &reopened] {
            let read = handle.load_session(SessionReadScope::FullGraph).await.unwrap();
            assert_eq!(read.map(|r| r.head_revision), Some(1));
        }
        let other = factory.create_store(SessionStoreRequest::new("b")).await.unwrap();
        assert!(other.load_session(SessionReadScope::FullGraph).await.unwrap().is_none());
        factory.delete_session("a").await.unwrap();
        factory.delete_session("a").await.unwrap();
        assert!(factory.open_existing_store("a").await.unwrap().is_none());
        let fresh = factory.create_store(SessionStoreRequest::new("a")).await.unwrap();
        assert!(fresh.load_session(SessionReadScope::FullGraph).await.unwrap().is_none());
        assert!(matches!(
            factory.create_store(SessionStoreRequest::new("")).await,
            Err(StoreError::InvalidInput(_))
        ));
    }
}
