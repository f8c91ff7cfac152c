//! Conformance: the attachment-store suite over every store and the scoped wrapper (and a
//! broken store, to prove the suite can fail), and the `RuntimePersistence` suite over the
//! attachment layer (memory and file, single stores and layered factories).

use std::sync::Arc;

use async_trait::async_trait;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use strata_attachments::*;
use strata_core::{DurabilityTier, RuntimePersistence, SessionStoreFactory, StoreBuilder};
use strata_file::{FileStore, FileStoreFactory, FileStoreOptions};
use strata_memory::{MemoryStore, MemoryStoreFactory};
use strata_testkit::attachments::{
    AttachmentContext, AttachmentSuiteOptions, attachment_check_names, run_attachment_suite,
};
use strata_testkit::{SuiteOptions, SuiteReport, run_factory_suite, run_store_suite};

/// Passes, and the only checks not run are the reopen check of a store that is not
/// reopenable (or ones the name filter excluded).
fn assert_complete(report: &SuiteReport, options: AttachmentSuiteOptions) {
    report.assert_passed();
    for (name, reason) in report.skipped() {
        let expected = (!options.reopenable && name.contains("reopen"))
            || reason.contains("STRATA_CONFORMANCE_FILTER");
        assert!(expected, "{name} skipped unexpectedly: {reason}");
    }
    assert_eq!(
        report.passed() + report.skipped().len(),
        attachment_check_names().len(),
        "{report}"
    );
}

fn file_store(ctx: &AttachmentContext) -> FileAttachmentStore {
    let options = FileAttachmentOptions::default().with_max_bytes(ctx.max_bytes);
    FileAttachmentStore::open(&ctx.dir, options).expect("open file attachment store")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_conforms() {
    let options = AttachmentSuiteOptions::inline();
    let report = run_attachment_suite(options, |ctx| async move {
        Arc::new(MemoryAttachmentStore::new().with_max_bytes(ctx.max_bytes))
            as Arc<dyn AttachmentStore>
    })
    .await;
    assert_complete(&report, options);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_store_conforms() {
    let options = AttachmentSuiteOptions::durable();
    let report = run_attachment_suite(options, |ctx| async move {
        Arc::new(file_store(&ctx)) as Arc<dyn AttachmentStore>
    })
    .await;
    assert_complete(&report, options);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_store_in_memory_conforms() {
    let options = AttachmentSuiteOptions::inline();
    let report = run_attachment_suite(options, |ctx| async move {
        let objects: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        Arc::new(
            ObjectAttachmentStore::new(objects, DurabilityTier::Inline)
                .with_prefix("attachments")
                .with_max_bytes(ctx.max_bytes),
        ) as Arc<dyn AttachmentStore>
    })
    .await;
    assert_complete(&report, options);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_store_on_the_local_file_system_conforms() {
    let options = AttachmentSuiteOptions::durable();
    let report = run_attachment_suite(options, |ctx| async move {
        let local = LocalFileSystem::new_with_prefix(&ctx.dir)
            .expect("local object store")
            .with_fsync(true);
        Arc::new(
            ObjectAttachmentStore::new(Arc::new(local), DurabilityTier::Durable)
                .with_max_bytes(ctx.max_bytes),
        ) as Arc<dyn AttachmentStore>
    })
    .await;
    assert_complete(&report, options);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoped_wrapper_over_the_file_store_conforms() {
    let options = AttachmentSuiteOptions::durable();
    let report = run_attachment_suite(options, |ctx| async move {
        let manifest = FileStore::open(ctx.dir.join("session"), FileStoreOptions::default())
            .expect("open manifest");
        Arc::new(SessionScopedAttachmentStore::new(
            "s1",
            Arc::new(file_store(&ctx)),
            Arc::new(manifest),
        )) as Arc<dyn AttachmentStore>
    })
    .await;
    assert_complete(&report, options);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoped_wrapper_over_the_memory_store_conforms() {
    let options = AttachmentSuiteOptions::inline();
    let report = run_attachment_suite(options, |ctx| async move {
        let store = MemoryAttachmentStore::new().with_max_bytes(ctx.max_bytes);
        Arc::new(SessionScopedAttachmentStore::new(
            "s1",
            Arc::new(store),
            Arc::new(MemoryStore::new()),
        )) as Arc<dyn AttachmentStore>
    })
    .await;
    assert_complete(&report, options);
}

/// A store that forgets metadata and never finds a trashed attachment: the suite must fail it.
#[derive(Debug)]
struct Forgetful(MemoryAttachmentStore);

#[async_trait]
impl AttachmentStore for Forgetful {
    fn durability_tier(&self) -> DurabilityTier {
        self.0.durability_tier()
    }
    fn max_bytes(&self) -> u64 {
        self.0.max_bytes()
    }
    fn uri(&self, id: &AttachmentId) -> String {
        self.0.uri(id)
    }
    async fn put(
        &self,
        content: Content,
        _meta: AttachmentMeta,
    ) -> Result<AttachmentInfo, AttachmentError> {
        self.0.put(content, AttachmentMeta::new("application/octet-stream")).await
    }
    async fn get(&self, id: &AttachmentId) -> Result<Attachment, AttachmentError> {
        if self.0.trashed().await?.contains(id) {
            return Err(AttachmentError::NotFound { id: id.clone() });
        }
        self.0.get(id).await
    }
    async fn contains(&self, id: &AttachmentId) -> Result<bool, AttachmentError> {
        self.0.contains(id).await
    }
    async fn delete(&self, ids: &[AttachmentId]) -> Result<Vec<AttachmentId>, AttachmentError> {
        self.0.delete(ids).await
    }
    async fn restore(&self, ids: &[AttachmentId]) -> Result<Vec<AttachmentId>, AttachmentError> {
        self.0.restore(ids).await
    }
    async fn purge(&self, ids: &[AttachmentId]) -> Result<Vec<AttachmentId>, AttachmentError> {
        self.0.purge(ids).await
    }
    async fn trashed(&self) -> Result<Vec<AttachmentId>, AttachmentError> {
        self.0.trashed().await
    }
    async fn add_reference(&self, reference: &AttachmentReference) -> Result<(), AttachmentError> {
        self.0.add_reference(reference).await
    }
    async fn references(
        &self,
        id: &AttachmentId,
    ) -> Result<Vec<AttachmentReference>, AttachmentError> {
        self.0.references(id).await
    }
    async fn remove_references(
        &self,
        references: &[AttachmentReference],
    ) -> Result<(), AttachmentError> {
        self.0.remove_references(references).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_loses_metadata_or_trashed_bytes_fails_the_suite() {
    let report = run_attachment_suite(AttachmentSuiteOptions::inline(), |ctx| async move {
        Arc::new(Forgetful(MemoryAttachmentStore::new().with_max_bytes(ctx.max_bytes)))
            as Arc<dyn AttachmentStore>
    })
    .await;
    let round_trip =
        report.failure("attachments::round_trip_of_bytes_and_metadata").expect("round trip fails");
    assert!(round_trip.message.contains("put: info"), "{round_trip}");
    let trash =
        report.failure("attachments::trash_delete_restore_purge").expect("trash check fails");
    assert!(trash.message.contains("get reads the trash"), "{trash}");
}

/// The layer in front of every store under the `RuntimePersistence` suites.
fn layer() -> AttachmentLayer {
    AttachmentLayer::new(Arc::new(MemoryAttachmentStore::new()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layer_over_the_memory_store_passes_the_store_suite() {
    run_store_suite(SuiteOptions::default(), |ctx| async move {
        StoreBuilder::new()
            .layer(layer())
            .build_shared(MemoryStore::with_clock(Arc::new(ctx.clock)))
    })
    .await
    .assert_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layer_over_the_file_store_passes_the_store_suite() {
    let options =
        SuiteOptions { tier: DurabilityTier::Durable, reopenable: true, ..Default::default() };
    run_store_suite(options, |ctx| async move {
        let store =
            FileStore::open(&ctx.dir, FileStoreOptions::default().with_clock(Arc::new(ctx.clock)))
                .expect("open file store");
        StoreBuilder::new().layer(layer()).build_shared(store)
    })
    .await
    .assert_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layer_over_the_memory_factory_passes_the_factory_suite() {
    run_factory_suite(SuiteOptions::default(), |ctx| async move {
        let factory = MemoryStoreFactory::with_clock(Arc::new(ctx.clock));
        Arc::new(StoreBuilder::new().layer(layer()).build_factory(factory))
            as Arc<dyn SessionStoreFactory>
    })
    .await
    .assert_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layer_over_the_file_factory_passes_the_factory_suite() {
    let options =
        SuiteOptions { tier: DurabilityTier::Durable, reopenable: true, ..Default::default() };
    run_factory_suite(options, |ctx| async move {
        let factory = FileStoreFactory::open(
            &ctx.dir,
            FileStoreOptions::default().with_clock(Arc::new(ctx.clock)),
        )
        .expect("open file factory");
        Arc::new(StoreBuilder::new().layer(layer()).build_factory(factory))
            as Arc<dyn SessionStoreFactory>
    })
    .await
    .assert_passed();
}

/// The layer forwards every call it does not act on, so a stack with it stays a store.
#[test]
fn the_layer_shows_in_a_stacks_debug() {
    let store = StoreBuilder::new().layer(layer()).build(MemoryStore::new());
    assert!(format!("{store:?}").starts_with("attachments → "), "{store:?}");
    let _: &dyn RuntimePersistence = &store;
}
