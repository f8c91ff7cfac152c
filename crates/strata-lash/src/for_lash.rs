//! [`ForLash`]: any Strata store or stack as a `lash_core::RuntimePersistence`, so the lash
//! runtime runs on Strata's backends with Strata's layers.

use std::sync::Arc;

use async_trait::async_trait;
use lash_core as lash;
use lash_core::runtime::{
    QueuedWorkBatch, QueuedWorkBatchDraft, QueuedWorkClaim, QueuedWorkClaimBoundary,
};
use lash_core::store::{PersistedSessionRead, RuntimeCommit, RuntimeCommitResult};
use strata_core::RuntimePersistence;

use crate::mapping::{self as map, Decode};
use crate::wait::{off_executor, wait_for};

/// A Strata store seen through lash's trait: `Arc::new(ForLash::new(store))` is an
/// `Arc<dyn lash_core::RuntimePersistence>`.
///
/// Every lash method maps its arguments ([`mapping`](crate::mapping)), calls the Strata method
/// of the same name, and maps the answer back; provided methods included, so the Strata
/// store's own semantics (its exact-ids claim, its `list_pending`) hold, not lash's defaults.
/// Reads decode leniently ([`Decode::Lenient`]). Errors cross with
/// [`error_to_lash`](map::error_to_lash). The synchronous manifest methods wait for the
/// async Strata call as [`wait`](crate::wait) describes.
pub struct ForLash<S: ?Sized> {
    store: Arc<S>,
}

impl<S: RuntimePersistence + 'static> ForLash<S> {
    /// Wraps `store`.
    pub fn new(store: S) -> Self {
        Self { store: Arc::new(store) }
    }
}

impl<S: RuntimePersistence + ?Sized + 'static> ForLash<S> {
    /// Wraps a shared store (`Arc<dyn RuntimePersistence>` included).
    pub fn from_arc(store: Arc<S>) -> Self {
        Self { store }
    }

    /// The Strata store underneath.
    pub fn inner(&self) -> &Arc<S> {
        &self.store
    }
}

impl<S: ?Sized> std::fmt::Debug for ForLash<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ForLash")
    }
}

#[deny(clippy::missing_trait_methods)]
impl<S: RuntimePersistence + ?Sized + 'static> lash::AttachmentManifest for ForLash<S> {
    fn record_intent(&self, intent: lash::AttachmentIntent) -> Result<(), lash::StoreError> {
        let store = Arc::clone(&self.store);
        let intent = map::intent_to_strata(intent);
        wait_for(async move { store.record_intent(intent).await }).map_err(map::error_to_lash)
    }

    fn commit_refs(
        &self,
        session_id: &str,
        attachment_ids: &[lash::AttachmentId],
    ) -> Result<(), lash::StoreError> {
        let store = Arc::clone(&self.store);
        let session_id = session_id.to_owned();
        let ids = map::attachment_ids_to_strata(attachment_ids);
        wait_for(async move { store.commit_refs(&session_id, &ids).await })
            .map_err(map::error_to_lash)
    }

    fn list_uncommitted(
        &self,
        older_than_epoch_ms: u64,
    ) -> Result<Vec<lash::AttachmentManifestEntry>, lash::StoreError> {
        let store = Arc::clone(&self.store);
        let rows = wait_for(async move { store.list_uncommitted(older_than_epoch_ms).await })
            .map_err(map::error_to_lash)?;
        Ok(rows.into_iter().map(map::manifest_entry_to_lash).collect())
    }

    fn forget(&self, attachment_id: &lash::AttachmentId) -> Result<(), lash::StoreError> {
        let store = Arc::clone(&self.store);
        let id = attachment_id.as_str().to_owned();
        wait_for(async move { store.forget(&id).await }).map_err(map::error_to_lash)
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl<S: RuntimePersistence + ?Sized + 'static> lash::RuntimePersistence for ForLash<S> {
    fn durability_tier(&self) -> lash::DurabilityTier {
        map::tier_to_lash(self.store.durability_tier())
    }

    async fn load_session(
        &self,
        scope: lash::SessionReadScope,
    ) -> Result<Option<PersistedSessionRead>, lash::StoreError> {
        let read = self
            .store
            .load_session(map::scope_to_strata(scope))
            .await
            .map_err(map::error_to_lash)?;
        let Some(read) = read else { return Ok(None) };
        let large = read.graph.nodes.len() >= map::LARGE_READ_NODES;
        let decode = move || map::session_read_to_lash(read, Decode::Lenient);
        // Decoding a large graph takes milliseconds: on the blocking pool, not on an executor
        // thread (lash-sqlite-store decodes on its connection thread for the same reason).
        let read = if large { off_executor(decode).await } else { decode() };
        read.map(Some).map_err(map::error_to_lash)
    }

    async fn load_node(
        &self,
        node_id: &str,
    ) -> Result<Option<lash::SessionNodeRecord>, lash::StoreError> {
        let node = self.store.load_node(node_id).await.map_err(map::error_to_lash)?;
        Ok(node.map(|node| map::node_to_lash(node, Decode::Lenient)))
    }

    async fn commit_runtime_state(
        &self,
        commit: RuntimeCommit,
    ) -> Result<RuntimeCommitResult, lash::StoreError> {
        let commit = map::commit_to_strata(commit).map_err(map::error_to_lash)?;
        let result = self.store.commit_runtime_state(commit).await.map_err(map::error_to_lash)?;
        Ok(map::commit_result_to_lash(result, Decode::Lenient))
    }

    async fn enqueue_queued_work(
        &self,
        batch: QueuedWorkBatchDraft,
    ) -> Result<QueuedWorkBatch, lash::StoreError> {
        let draft = map::draft_to_strata(batch).map_err(map::error_to_lash)?;
        let batch = self.store.enqueue_queued_work(draft).await.map_err(map::error_to_lash)?;
        Ok(map::batch_to_lash(batch, Decode::Lenient))
    }

    async fn claim_ready_queued_work(
        &self,
        session_id: &str,
        owner_id: &str,
        boundary: QueuedWorkClaimBoundary,
        lease_ttl_ms: u64,
        max_batches: usize,
    ) -> Result<Option<QueuedWorkClaim>, lash::StoreError> {
        let boundary = map::boundary_to_strata(boundary);
        let claim = self
            .store
            .claim_ready_queued_work(session_id, owner_id, boundary, lease_ttl_ms, max_batches)
            .await
            .map_err(map::error_to_lash)?;
        Ok(claim.map(|claim| map::claim_to_lash(claim, Decode::Lenient)))
    }

    async fn claim_ready_queued_work_by_batch_ids(
        &self,
        session_id: &str,
        owner_id: &str,
        boundary: QueuedWorkClaimBoundary,
        lease_ttl_ms: u64,
        batch_ids: &[String],
    ) -> Result<Option<QueuedWorkClaim>, lash::StoreError> {
        let boundary = map::boundary_to_strata(boundary);
        let claim = self
            .store
            .claim_ready_queued_work_by_batch_ids(
                session_id,
                owner_id,
                boundary,
                lease_ttl_ms,
                batch_ids,
            )
            .await
            .map_err(map::error_to_lash)?;
        Ok(claim.map(|claim| map::claim_to_lash(claim, Decode::Lenient)))
    }

    async fn renew_queued_work_claim(
        &self,
        claim: &QueuedWorkClaim,
        lease_ttl_ms: u64,
    ) -> Result<QueuedWorkClaim, lash::StoreError> {
        let claim = map::claim_to_strata(claim.clone()).map_err(map::error_to_lash)?;
        let renewed = self
            .store
            .renew_queued_work_claim(&claim, lease_ttl_ms)
            .await
            .map_err(map::error_to_lash)?;
        Ok(map::claim_to_lash(renewed, Decode::Lenient))
    }

    async fn abandon_queued_work_claim(
        &self,
        claim: &QueuedWorkClaim,
    ) -> Result<(), lash::StoreError> {
        let claim = map::claim_to_strata(claim.clone()).map_err(map::error_to_lash)?;
        self.store.abandon_queued_work_claim(&claim).await.map_err(map::error_to_lash)
    }

    async fn cancel_queued_work_batch(
        &self,
        session_id: &str,
        batch_id: &str,
    ) -> Result<Option<QueuedWorkBatch>, lash::StoreError> {
        let batch = self
            .store
            .cancel_queued_work_batch(session_id, batch_id)
            .await
            .map_err(map::error_to_lash)?;
        Ok(batch.map(|batch| map::batch_to_lash(batch, Decode::Lenient)))
    }

    async fn list_queued_work(
        &self,
        session_id: &str,
    ) -> Result<Vec<QueuedWorkBatch>, lash::StoreError> {
        let batches = self.store.list_queued_work(session_id).await.map_err(map::error_to_lash)?;
        Ok(batches.into_iter().map(|batch| map::batch_to_lash(batch, Decode::Lenient)).collect())
    }

    async fn list_pending_queued_work(
        &self,
        session_id: &str,
    ) -> Result<Vec<QueuedWorkBatch>, lash::StoreError> {
        let batches =
            self.store.list_pending_queued_work(session_id).await.map_err(map::error_to_lash)?;
        Ok(batches.into_iter().map(|batch| map::batch_to_lash(batch, Decode::Lenient)).collect())
    }

    async fn save_session_meta(&self, meta: lash::SessionMeta) -> Result<(), lash::StoreError> {
        let meta = map::meta_to_strata(meta).map_err(map::error_to_lash)?;
        self.store.save_session_meta(meta).await.map_err(map::error_to_lash)
    }

    async fn load_session_meta(&self) -> Result<Option<lash::SessionMeta>, lash::StoreError> {
        let meta = self.store.load_session_meta().await.map_err(map::error_to_lash)?;
        Ok(meta.map(|meta| map::meta_to_lash(meta, Decode::Lenient)))
    }

    async fn tombstone_nodes(&self, ids: &[String]) -> Result<(), lash::StoreError> {
        self.store.tombstone_nodes(ids).await.map_err(map::error_to_lash)
    }

    async fn vacuum(&self) -> Result<lash::VacuumReport, lash::StoreError> {
        Ok(map::vacuum_to_lash(self.store.vacuum().await.map_err(map::error_to_lash)?))
    }

    async fn gc_unreachable(&self) -> Result<lash::GcReport, lash::StoreError> {
        Ok(map::gc_to_lash(self.store.gc_unreachable().await.map_err(map::error_to_lash)?))
    }
}
