//! A test world shared by the integration tests: sessions from a layered factory (memory or
//! file backend), an attachment store, the layer, a manual clock, and a sweeper.

#![allow(dead_code)] // each test binary uses a subset

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

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
        let attachments =
            FileAttachmentStore::open(dir.join("attachments"), FileAttachmentOptions::default())
                .expect("open attachments");
        let options = FileStoreOptions::default().with_clock(Arc::new(clock.clone()));
        let factory = FileStoreFactory::open(dir.join("sessions"), options).expect("open sessions");
        Self::build(clock, Arc::new(attachments), factory)
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
