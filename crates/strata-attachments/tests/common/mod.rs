//! A test world shared by the integration tests: sessions from a layered factory (memory or
//! file backend), an attachment store, the layer, a manual clock, and a sweeper.

#![allow(dead_code)] // each test binary uses a subset

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::oneshot;

use strata_attachments::*;
use strata_core::*;
use strata_file::{FileStoreFactory, FileStoreOptions};
use strata_memory::MemoryStoreFactory;
use strata_testkit::START_MS;
use strata_testkit::faults::FaultInjection;

/// The sweeper's grace period in these tests.
pub const GRACE: Duration = Duration::from_secs(60);

/// Sessions, attachments, the layer between them, and the clock they share.
pub struct World {
    pub clock: ManualClock,
    pub attachments: Arc<dyn AttachmentStore>,
    pub layer: AttachmentLayer,
    pub faults: FaultInjection,
    pub factory: Arc<dyn SessionStoreFactory>,
}

impl World {
    /// Memory sessions and memory attachments.
    pub fn memory() -> Self {
        Self::memory_over(Arc::new(MemoryAttachmentStore::new()))
    }

    /// Memory sessions over `attachments`.
    pub fn memory_over(attachments: Arc<dyn AttachmentStore>) -> Self {
        let clock = ManualClock::new(START_MS);
        let factory = MemoryStoreFactory::with_clock(Arc::new(clock.clone()));
        Self::build(clock, attachments, factory)
    }

    /// File sessions under `dir/sessions`, file attachments under `dir/attachments` (durable).
    pub fn file(dir: &Path, clock: ManualClock) -> Self {
        Self::file_over(dir, clock, Arc::new(file_attachments(dir)))
    }

    /// File sessions under `dir/sessions` over `attachments`.
    pub fn file_over(
        dir: &Path,
        clock: ManualClock,
        attachments: Arc<dyn AttachmentStore>,
    ) -> Self {
        let options = FileStoreOptions::default().with_clock(Arc::new(clock.clone()));
        let factory = FileStoreFactory::open(dir.join("sessions"), options).expect("open sessions");
        Self::build(clock, attachments, factory)
    }

    fn build(
        clock: ManualClock,
        attachments: Arc<dyn AttachmentStore>,
        factory: impl SessionStoreFactory + 'static,
    ) -> Self {
        let layer = AttachmentLayer::with_clock(Arc::clone(&attachments), Arc::new(clock.clone()));
        let faults = FaultInjection::new();
        let factory =
            StoreBuilder::new().layer(layer.clone()).layer(faults.clone()).build_factory(factory);
        Self { clock, attachments, layer, faults, factory: Arc::new(factory) }
    }

    /// A handle of `session`.
    pub async fn open(&self, session: &str) -> Arc<dyn RuntimePersistence> {
        self.factory.create_store(SessionStoreRequest::new(session)).await.expect("create_store")
    }

    /// Puts `bytes` as `session` (whose handle must be open).
    pub async fn put(&self, session: &str, bytes: &[u8]) -> AttachmentInfo {
        let scoped = self.layer.scoped(session).expect("scoped store");
        scoped
            .put(Content::new(bytes.to_vec()), AttachmentMeta::new("image/png"))
            .await
            .expect("put")
    }

    /// A sweeper over the world with the test grace period.
    pub fn sweeper(&self) -> Sweeper {
        Sweeper::new(Arc::clone(&self.factory), Arc::clone(&self.attachments))
            .with_clock(Arc::new(self.clock.clone()))
            .with_grace_period(GRACE)
    }

    /// Moves the clock past the grace period.
    pub fn age(&self) {
        self.clock.advance(GRACE.as_millis() as u64 + 1);
    }

    /// Every uncommitted manifest row of `session`.
    pub async fn uncommitted(&self, session: &str) -> Vec<AttachmentManifestEntry> {
        self.open(session).await.list_uncommitted(u64::MAX).await.expect("list_uncommitted")
    }

    /// True when `get` finds the attachment.
    pub async fn readable(&self, id: &AttachmentId) -> bool {
        match self.attachments.get(id).await {
            Ok(_) => true,
            Err(AttachmentError::NotFound { .. }) => false,
            Err(error) => panic!("get({id}): {error}"),
        }
    }
}

/// The durable file attachment store under `dir/attachments`.
pub fn file_attachments(dir: &Path) -> FileAttachmentStore {
    FileAttachmentStore::open(dir.join("attachments"), FileAttachmentOptions::default())
        .expect("open attachments")
}

/// A blind commit of `session` (the layer adds the pending attachment ids).
pub async fn commit(store: &dyn RuntimePersistence, session: &str) -> RuntimeCommitResult {
    store.commit_runtime_state(empty_commit(session)).await.expect("commit")
}

/// A commit of `session` that changes nothing but the head.
pub fn empty_commit(session: &str) -> RuntimeCommit {
    RuntimeCommit { session_id: session.to_owned(), ..Default::default() }
}

/// Runs `future` on a small multi-threaded runtime.
pub fn run<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

/// Where a [`Gated`] store pauses.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Pause {
    /// Before the inner `put` (after the scoped store's intent and reference).
    BeforePut,
    /// After the inner `references` (the sweep's first look at a content), before returning.
    AfterReferences,
    /// After the inner `delete` (the sweep's move to the trash), before returning it.
    AfterDelete,
}

type Gate = (oneshot::Sender<()>, oneshot::Receiver<()>);

/// Pauses the first call at `pause` until the test releases it: deterministic interleavings of
/// a put and a sweep.
#[derive(Debug)]
pub struct Gated {
    pub inner: Arc<dyn AttachmentStore>,
    pause: Mutex<Option<(Pause, Gate)>>,
}

impl std::fmt::Debug for Pause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if *self == Pause::AfterReferences {
            "after references"
        } else {
            "after delete"
        })
    }
}

impl Gated {
    /// `inner`, not armed.
    pub fn new(inner: Arc<dyn AttachmentStore>) -> Self {
        Self { inner, pause: Mutex::new(None) }
    }

    /// Arms the gate at `pause`; returns (reached, release).
    pub fn arm(&self, pause: Pause) -> (oneshot::Receiver<()>, oneshot::Sender<()>) {
        let (reached_tx, reached_rx) = oneshot::channel();
        let (release_tx, release_rx) = oneshot::channel();
        *self.pause.lock().unwrap() = Some((pause, (reached_tx, release_rx)));
        (reached_rx, release_tx)
    }

    async fn maybe_pause(&self, at: Pause) {
        let gate = {
            let mut armed = self.pause.lock().unwrap();
            if armed.as_ref().is_some_and(|(pause, _)| *pause == at) { armed.take() } else { None }
        };
        if let Some((_, (reached, release))) = gate {
            reached.send(()).unwrap();
            release.await.unwrap();
        }
    }
}

#[async_trait]
impl AttachmentStore for Gated {
    fn durability_tier(&self) -> DurabilityTier {
        self.inner.durability_tier()
    }
    fn max_bytes(&self) -> u64 {
        self.inner.max_bytes()
    }
    fn uri(&self, id: &AttachmentId) -> String {
        self.inner.uri(id)
    }
    async fn put(
        &self,
        content: Content,
        meta: AttachmentMeta,
    ) -> Result<AttachmentInfo, AttachmentError> {
        self.maybe_pause(Pause::BeforePut).await;
        self.inner.put(content, meta).await
    }
    async fn get(&self, id: &AttachmentId) -> Result<Attachment, AttachmentError> {
        self.inner.get(id).await
    }
    async fn contains(&self, id: &AttachmentId) -> Result<bool, AttachmentError> {
        self.inner.contains(id).await
    }
    async fn delete(&self, ids: &[AttachmentId]) -> Result<Vec<AttachmentId>, AttachmentError> {
        let moved = self.inner.delete(ids).await;
        self.maybe_pause(Pause::AfterDelete).await;
        moved
    }
    async fn restore(&self, ids: &[AttachmentId]) -> Result<Vec<AttachmentId>, AttachmentError> {
        self.inner.restore(ids).await
    }
    async fn purge(&self, ids: &[AttachmentId]) -> Result<Vec<AttachmentId>, AttachmentError> {
        self.inner.purge(ids).await
    }
    async fn trashed(&self) -> Result<Vec<AttachmentId>, AttachmentError> {
        self.inner.trashed().await
    }
    async fn add_reference(&self, reference: &AttachmentReference) -> Result<(), AttachmentError> {
        self.inner.add_reference(reference).await
    }
    async fn references(
        &self,
        id: &AttachmentId,
    ) -> Result<Vec<AttachmentReference>, AttachmentError> {
        let references = self.inner.references(id).await;
        self.maybe_pause(Pause::AfterReferences).await;
        references
    }
    async fn remove_references(
        &self,
        references: &[AttachmentReference],
    ) -> Result<(), AttachmentError> {
        self.inner.remove_references(references).await
    }
}
