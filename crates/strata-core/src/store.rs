//! The `RuntimePersistence` trait (the seed's 17 methods), its `AttachmentManifest`
//! supertrait (async here, on purpose), the no-op manifest helper, and [`Serve`]: the single
//! place the trait's methods are forwarded, which also makes `Arc<T>`, `Box<T>` and
//! `Arc<dyn RuntimePersistence>` stores.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;

use crate::call::{Request, Response};
use crate::error::StoreError;
use crate::types::*;

/// The attachment write-ahead manifest (`docs/contract.md` §4, "Manifest").
///
/// Rows are keyed by (session, attachment id). Async, unlike the original trait, so that file
/// and network backends do not block executor threads.
#[async_trait]
pub trait AttachmentManifest: Send + Sync {
    /// Insert an uncommitted row before bytes are written. Idempotent on the id; a repeat
    /// refreshes `intent_at` of an uncommitted row and never un-commits a committed one.
    async fn record_intent(&self, intent: AttachmentIntent) -> Result<(), StoreError>;

    /// Stamp `committed_at` on the matching rows of `session_id` (existing stamps kept,
    /// unknown ids ignored).
    async fn commit_refs(
        &self,
        session_id: &str,
        attachment_ids: &[String],
    ) -> Result<(), StoreError>;

    /// Rows with no commit stamp and `intent_at <= older_than_ms`.
    async fn list_uncommitted(
        &self,
        older_than_ms: u64,
    ) -> Result<Vec<AttachmentManifestEntry>, StoreError>;

    /// Delete this store's rows for `attachment_id`, whatever their state; missing is a no-op.
    async fn forget(&self, attachment_id: &str) -> Result<(), StoreError>;
}

/// Implements [`AttachmentManifest`] as no-ops for a backend with no attachment story
/// (the seed's `NoopAttachmentManifest` helper): intents and stamps are accepted and dropped,
/// `list_uncommitted` is empty.
///
/// ```
/// # use strata_core::*;
/// struct ReadOnlyStore;
/// strata_core::noop_attachment_manifest!(ReadOnlyStore);
/// ```
#[macro_export]
macro_rules! noop_attachment_manifest {
    ($store:ty) => {
        #[$crate::async_trait]
        impl $crate::AttachmentManifest for $store {
            async fn record_intent(
                &self,
                _intent: $crate::AttachmentIntent,
            ) -> ::std::result::Result<(), $crate::StoreError> {
                Ok(())
            }
            async fn commit_refs(
                &self,
                _session_id: &str,
                _attachment_ids: &[String],
            ) -> ::std::result::Result<(), $crate::StoreError> {
                Ok(())
            }
            async fn list_uncommitted(
                &self,
                _older_than_ms: u64,
            ) -> ::std::result::Result<
                ::std::vec::Vec<$crate::AttachmentManifestEntry>,
                $crate::StoreError,
            > {
                Ok(::std::vec::Vec::new())
            }
            async fn forget(
                &self,
                _attachment_id: &str,
            ) -> ::std::result::Result<(), $crate::StoreError> {
                Ok(())
            }
        }
    };
}

/// A manifest that accepts everything and remembers nothing (see [`noop_attachment_manifest!`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopAttachmentManifest;

noop_attachment_manifest!(NoopAttachmentManifest);

/// Exact settled-session persistence protocol required by the runtime (`docs/contract.md` §4).
///
/// One handle holds one session's durable state; the first successful commit binds it.
/// Provided methods keep the seed's defaults; every backend of this project overrides them, and
/// every decorator forwards them.
#[async_trait]
pub trait RuntimePersistence: AttachmentManifest + Send + Sync {
    /// The head, hydrated checkpoint, merged ledger and graph per `scope`; `None` iff no commit
    /// ever succeeded. A consistent snapshot.
    async fn load_session(
        &self,
        scope: SessionReadScope,
    ) -> Result<Option<PersistedSessionRead>, StoreError>;

    /// The live node with this id, or `None` (also when tombstoned).
    async fn load_node(&self, node_id: &str) -> Result<Option<SessionNodeRecord>, StoreError>;

    /// Apply one commit atomically (`docs/contract.md` §5). The only write that advances the head.
    async fn commit_runtime_state(
        &self,
        commit: RuntimeCommit,
    ) -> Result<RuntimeCommitResult, StoreError>;

    /// Replace the metadata record.
    async fn save_session_meta(&self, meta: SessionMeta) -> Result<(), StoreError>;

    /// The last saved metadata record, or `None`.
    async fn load_session_meta(&self) -> Result<Option<SessionMeta>, StoreError>;

    /// Hide nodes from every read; idempotent; unknown ids ignored; no revision change.
    async fn tombstone_nodes(&self, ids: &[String]) -> Result<(), StoreError>;

    /// Physically remove tombstoned nodes; reports how many this call removed.
    async fn vacuum(&self) -> Result<VacuumReport, StoreError>;

    /// Delete blobs unreachable from the head's checkpoint manifest and agent frames.
    async fn gc_unreachable(&self) -> Result<GcReport, StoreError>;

    /// Durability tier this store provides; constant for its lifetime. Default `Inline`.
    fn durability_tier(&self) -> DurabilityTier {
        DurabilityTier::Inline
    }

    /// Persist a queued-work batch. Default: loud "unsupported" error.
    async fn enqueue_queued_work(
        &self,
        _batch: QueuedWorkBatchDraft,
    ) -> Result<QueuedWorkBatch, StoreError> {
        Err(StoreError::Unsupported("enqueue_queued_work"))
    }

    /// Claim the next ready group for `owner_id`. Default: loud "unsupported" error.
    async fn claim_ready_queued_work(
        &self,
        _session_id: &str,
        _owner_id: &str,
        _boundary: QueuedWorkClaimBoundary,
        _lease_ttl_ms: u64,
        _max_batches: usize,
    ) -> Result<Option<QueuedWorkClaim>, StoreError> {
        Err(StoreError::Unsupported("claim_ready_queued_work"))
    }

    /// Claim exactly `batch_ids` (in order). Default: claim the next `len` batches and return
    /// the claim only if its ids equal the requested ids in order; otherwise abandon it.
    async fn claim_ready_queued_work_by_batch_ids(
        &self,
        session_id: &str,
        owner_id: &str,
        boundary: QueuedWorkClaimBoundary,
        lease_ttl_ms: u64,
        batch_ids: &[String],
    ) -> Result<Option<QueuedWorkClaim>, StoreError> {
        let Some(claim) = self
            .claim_ready_queued_work(session_id, owner_id, boundary, lease_ttl_ms, batch_ids.len())
            .await?
        else {
            return Ok(None);
        };
        if claim.batches.iter().map(|batch| &batch.batch_id).eq(batch_ids.iter()) {
            Ok(Some(claim))
        } else {
            self.abandon_queued_work_claim(&claim).await?;
            Ok(None)
        }
    }

    /// Extend a held claim's lease. Default: the claim is reported expired.
    async fn renew_queued_work_claim(
        &self,
        claim: &QueuedWorkClaim,
        _lease_ttl_ms: u64,
    ) -> Result<QueuedWorkClaim, StoreError> {
        Err(StoreError::QueuedWorkClaimExpired {
            session_id: claim.session_id.clone(),
            claim_id: claim.claim_id.clone(),
        })
    }

    /// Release a claim without completing it; idempotent. Default: no-op.
    async fn abandon_queued_work_claim(&self, _claim: &QueuedWorkClaim) -> Result<(), StoreError> {
        Ok(())
    }

    /// Remove an unclaimed (or expired-claim) batch and return it; `None` if missing or
    /// live-claimed. Default: `None`.
    async fn cancel_queued_work_batch(
        &self,
        _session_id: &str,
        _batch_id: &str,
    ) -> Result<Option<QueuedWorkBatch>, StoreError> {
        Ok(None)
    }

    /// Every stored batch of the session, claimed ones included, ascending `enqueue_seq`.
    /// Default: empty.
    async fn list_queued_work(
        &self,
        _session_id: &str,
    ) -> Result<Vec<QueuedWorkBatch>, StoreError> {
        Ok(Vec::new())
    }

    /// [`list_queued_work`](Self::list_queued_work) minus batches held by a live claim.
    /// Default: delegates to `list_queued_work`.
    async fn list_pending_queued_work(
        &self,
        session_id: &str,
    ) -> Result<Vec<QueuedWorkBatch>, StoreError> {
        self.list_queued_work(session_id).await
    }
}

impl std::fmt::Debug for dyn RuntimePersistence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dyn RuntimePersistence")
    }
}

/// A store written as one request handler: implement [`Serve`] and the blanket impls below
/// provide every method of [`RuntimePersistence`] and [`AttachmentManifest`] (provided ones
/// included) by turning the call into a [`Request`] and the [`Response`] back into the
/// method's return type.
///
/// This is the one place the trait's methods are forwarded: backends that serve requests
/// (in-memory, file), around-decorators ([`Decorated`](crate::Decorated)) and smart pointers
/// (`Arc<T>`, `Box<T>`, `Arc<dyn RuntimePersistence>`) all go through it, so a new trait method
/// is one edit in [`crate::call`] and here, and it cannot silently fall back to a provided
/// default in any of them. Stores that need per-method logic implement
/// [`RuntimePersistence`] directly instead.
pub trait Serve: Send + Sync {
    /// Performs one call.
    fn serve<'a>(
        &'a self,
        request: Request<'a>,
    ) -> impl Future<Output = Result<Response, StoreError>> + Send + 'a;

    /// The tier [`RuntimePersistence::durability_tier`] reports; constant for the store's
    /// lifetime.
    fn tier(&self) -> DurabilityTier;
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl<T: Serve> AttachmentManifest for T {
    async fn record_intent(&self, intent: AttachmentIntent) -> Result<(), StoreError> {
        self.serve(Request::RecordIntent { intent }).await?.into_done()
    }
    async fn commit_refs(
        &self,
        session_id: &str,
        attachment_ids: &[String],
    ) -> Result<(), StoreError> {
        self.serve(Request::CommitRefs { session_id, attachment_ids }).await?.into_done()
    }
    async fn list_uncommitted(
        &self,
        older_than_ms: u64,
    ) -> Result<Vec<AttachmentManifestEntry>, StoreError> {
        self.serve(Request::ListUncommitted { older_than_ms }).await?.into_uncommitted()
    }
    async fn forget(&self, attachment_id: &str) -> Result<(), StoreError> {
        self.serve(Request::Forget { attachment_id }).await?.into_done()
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl<T: Serve> RuntimePersistence for T {
    async fn load_session(
        &self,
        scope: SessionReadScope,
    ) -> Result<Option<PersistedSessionRead>, StoreError> {
        self.serve(Request::LoadSession { scope }).await?.into_session()
    }
    async fn load_node(&self, node_id: &str) -> Result<Option<SessionNodeRecord>, StoreError> {
        self.serve(Request::LoadNode { node_id }).await?.into_node()
    }
    async fn commit_runtime_state(
        &self,
        commit: RuntimeCommit,
    ) -> Result<RuntimeCommitResult, StoreError> {
        self.serve(Request::CommitRuntimeState { commit: Arc::new(commit) }).await?.into_committed()
    }
    async fn save_session_meta(&self, meta: SessionMeta) -> Result<(), StoreError> {
        self.serve(Request::SaveSessionMeta { meta: Arc::new(meta) }).await?.into_done()
    }
    async fn load_session_meta(&self) -> Result<Option<SessionMeta>, StoreError> {
        self.serve(Request::LoadSessionMeta).await?.into_meta()
    }
    async fn tombstone_nodes(&self, ids: &[String]) -> Result<(), StoreError> {
        self.serve(Request::TombstoneNodes { ids }).await?.into_done()
    }
    async fn vacuum(&self) -> Result<VacuumReport, StoreError> {
        self.serve(Request::Vacuum).await?.into_vacuumed()
    }
    async fn gc_unreachable(&self) -> Result<GcReport, StoreError> {
        self.serve(Request::GcUnreachable).await?.into_collected()
    }
    fn durability_tier(&self) -> DurabilityTier {
        self.tier()
    }
    async fn enqueue_queued_work(
        &self,
        batch: QueuedWorkBatchDraft,
    ) -> Result<QueuedWorkBatch, StoreError> {
        self.serve(Request::EnqueueQueuedWork { draft: Arc::new(batch) }).await?.into_enqueued()
    }
    async fn claim_ready_queued_work(
        &self,
        session_id: &str,
        owner_id: &str,
        boundary: QueuedWorkClaimBoundary,
        lease_ttl_ms: u64,
        max_batches: usize,
    ) -> Result<Option<QueuedWorkClaim>, StoreError> {
        self.serve(Request::ClaimReadyQueuedWork {
            session_id,
            owner_id,
            boundary,
            lease_ttl_ms,
            max_batches,
        })
        .await?
        .into_claim()
    }
    async fn claim_ready_queued_work_by_batch_ids(
        &self,
        session_id: &str,
        owner_id: &str,
        boundary: QueuedWorkClaimBoundary,
        lease_ttl_ms: u64,
        batch_ids: &[String],
    ) -> Result<Option<QueuedWorkClaim>, StoreError> {
        self.serve(Request::ClaimReadyQueuedWorkByBatchIds {
            session_id,
            owner_id,
            boundary,
            lease_ttl_ms,
            batch_ids,
        })
        .await?
        .into_claim()
    }
    async fn renew_queued_work_claim(
        &self,
        claim: &QueuedWorkClaim,
        lease_ttl_ms: u64,
    ) -> Result<QueuedWorkClaim, StoreError> {
        self.serve(Request::RenewQueuedWorkClaim { claim, lease_ttl_ms }).await?.into_renewed()
    }
    async fn abandon_queued_work_claim(&self, claim: &QueuedWorkClaim) -> Result<(), StoreError> {
        self.serve(Request::AbandonQueuedWorkClaim { claim }).await?.into_done()
    }
    async fn cancel_queued_work_batch(
        &self,
        session_id: &str,
        batch_id: &str,
    ) -> Result<Option<QueuedWorkBatch>, StoreError> {
        self.serve(Request::CancelQueuedWorkBatch { session_id, batch_id }).await?.into_cancelled()
    }
    async fn list_queued_work(&self, session_id: &str) -> Result<Vec<QueuedWorkBatch>, StoreError> {
        self.serve(Request::ListQueuedWork { session_id }).await?.into_batches()
    }
    async fn list_pending_queued_work(
        &self,
        session_id: &str,
    ) -> Result<Vec<QueuedWorkBatch>, StoreError> {
        self.serve(Request::ListPendingQueuedWork { session_id }).await?.into_batches()
    }
}

/// A smart pointer to a store is a store with no behaviour of its own.
macro_rules! serve_through_pointer {
    ($($pointer:ident),*) => {$(
        impl<T: RuntimePersistence + ?Sized> Serve for $pointer<T> {
            fn serve<'a>(
                &'a self,
                request: Request<'a>,
            ) -> impl Future<Output = Result<Response, StoreError>> + Send + 'a {
                request.dispatch(&**self)
            }
            fn tier(&self) -> DurabilityTier {
                (**self).durability_tier()
            }
        }
    )*};
}

serve_through_pointer!(Arc, Box);
