//! [`FromLash`]: any `lash_core::RuntimePersistence` (lash-sqlite-store, lash's in-memory
//! store, your own) as a Strata store, so Strata's layers, layered factories and conformance
//! suite apply to it.

use std::future::Future;
use std::sync::Arc;

use lash_core as lash;
use strata_core::{DurabilityTier, Request, Response, Serve, StoreError};

use crate::mapping::{self as map, Decode};
use crate::wait::off_executor;

/// A lash store seen through Strata's trait. It implements [`Serve`], so it is a
/// `strata_core::RuntimePersistence` and every Strata layer wraps it:
///
/// ```no_run
/// # async fn demo(sqlite: std::sync::Arc<dyn lash_core::RuntimePersistence>) {
/// use strata_core::StoreBuilder;
/// use strata_lash::FromLash;
///
/// let store = StoreBuilder::new().build(FromLash::new(sqlite));
/// # }
/// ```
///
/// Every call maps its arguments ([`mapping`](crate::mapping)), calls the lash method of the
/// same name and maps the answer back; the lash store's semantics hold (see the crate docs
/// for where they differ from Strata's contract). Values written are mapped with
/// [`Decode::Exact`], so Strata bytes come back byte for byte. lash's errors cross with
/// [`error_to_strata`](map::error_to_strata). The synchronous lash manifest runs on tokio's
/// blocking pool ([`wait`](crate::wait)).
#[derive(Clone)]
pub struct FromLash {
    store: Arc<dyn lash::RuntimePersistence>,
}

impl FromLash {
    /// Wraps a lash store.
    pub fn new(store: Arc<dyn lash::RuntimePersistence>) -> Self {
        Self { store }
    }

    /// The lash store underneath.
    pub fn inner(&self) -> &Arc<dyn lash::RuntimePersistence> {
        &self.store
    }
}

impl std::fmt::Debug for FromLash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FromLash")
    }
}

impl Serve for FromLash {
    fn serve<'a>(
        &'a self,
        request: Request<'a>,
    ) -> impl Future<Output = Result<Response, StoreError>> + Send + 'a {
        self.call(request)
    }

    fn tier(&self) -> DurabilityTier {
        map::tier_to_strata(self.store.durability_tier())
    }
}

impl FromLash {
    async fn call(&self, request: Request<'_>) -> Result<Response, StoreError> {
        let store = &self.store;
        Ok(match request {
            Request::LoadSession { scope } => {
                let read = store.load_session(map::scope_to_lash(scope)).await;
                let read = read.map_err(map::error_to_strata)?;
                Response::Session(read.map(map::session_read_to_strata).transpose()?.map(Box::new))
            }
            Request::LoadNode { node_id } => {
                let node = store.load_node(node_id).await.map_err(map::error_to_strata)?;
                Response::Node(node.map(map::node_to_strata).transpose()?)
            }
            Request::CommitRuntimeState { commit } => {
                let commit = map::commit_to_lash(Arc::unwrap_or_clone(commit), Decode::Exact)?;
                let result =
                    store.commit_runtime_state(commit).await.map_err(map::error_to_strata)?;
                Response::Committed(map::commit_result_to_strata(result)?)
            }
            Request::SaveSessionMeta { meta } => {
                let meta = map::meta_to_lash(Arc::unwrap_or_clone(meta), Decode::Exact);
                store.save_session_meta(meta).await.map_err(map::error_to_strata)?;
                Response::Done
            }
            Request::LoadSessionMeta => {
                let meta = store.load_session_meta().await.map_err(map::error_to_strata)?;
                Response::Meta(meta.map(map::meta_to_strata).transpose()?)
            }
            Request::TombstoneNodes { ids } => {
                store.tombstone_nodes(ids).await.map_err(map::error_to_strata)?;
                Response::Done
            }
            Request::Vacuum => Response::Vacuumed(map::vacuum_to_strata(
                store.vacuum().await.map_err(map::error_to_strata)?,
            )),
            Request::GcUnreachable => Response::Collected(map::gc_to_strata(
                store.gc_unreachable().await.map_err(map::error_to_strata)?,
            )),
            Request::EnqueueQueuedWork { draft } => {
                let draft = map::draft_to_lash(Arc::unwrap_or_clone(draft), Decode::Exact);
                let batch = store.enqueue_queued_work(draft).await.map_err(map::error_to_strata)?;
                Response::Enqueued(map::batch_to_strata(batch)?)
            }
            Request::ClaimReadyQueuedWork {
                session_id,
                owner_id,
                boundary,
                lease_ttl_ms,
                max_batches,
            } => {
                let boundary = map::boundary_to_lash(boundary);
                let claim = store
                    .claim_ready_queued_work(
                        session_id,
                        owner_id,
                        boundary,
                        lease_ttl_ms,
                        max_batches,
                    )
                    .await
                    .map_err(map::error_to_strata)?;
                Response::Claim(claim.map(map::claim_to_strata).transpose()?)
            }
            Request::ClaimReadyQueuedWorkByBatchIds {
                session_id,
                owner_id,
                boundary,
                lease_ttl_ms,
                batch_ids,
            } => {
                let boundary = map::boundary_to_lash(boundary);
                let claim = store
                    .claim_ready_queued_work_by_batch_ids(
                        session_id,
                        owner_id,
                        boundary,
                        lease_ttl_ms,
                        batch_ids,
                    )
                    .await
                    .map_err(map::error_to_strata)?;
                Response::Claim(claim.map(map::claim_to_strata).transpose()?)
            }
            Request::RenewQueuedWorkClaim { claim, lease_ttl_ms } => {
                let claim = map::claim_to_lash(claim.clone(), Decode::Exact);
                let renewed = store
                    .renew_queued_work_claim(&claim, lease_ttl_ms)
                    .await
                    .map_err(map::error_to_strata)?;
                Response::Renewed(map::claim_to_strata(renewed)?)
            }
            Request::AbandonQueuedWorkClaim { claim } => {
                let claim = map::claim_to_lash(claim.clone(), Decode::Exact);
                store.abandon_queued_work_claim(&claim).await.map_err(map::error_to_strata)?;
                Response::Done
            }
            Request::CancelQueuedWorkBatch { session_id, batch_id } => {
                let batch = store
                    .cancel_queued_work_batch(session_id, batch_id)
                    .await
                    .map_err(map::error_to_strata)?;
                Response::Cancelled(batch.map(map::batch_to_strata).transpose()?)
            }
            Request::ListQueuedWork { session_id } => {
                let batches =
                    store.list_queued_work(session_id).await.map_err(map::error_to_strata)?;
                Response::Batches(
                    batches.into_iter().map(map::batch_to_strata).collect::<Result<_, _>>()?,
                )
            }
            Request::ListPendingQueuedWork { session_id } => {
                let batches = store
                    .list_pending_queued_work(session_id)
                    .await
                    .map_err(map::error_to_strata)?;
                Response::Batches(
                    batches.into_iter().map(map::batch_to_strata).collect::<Result<_, _>>()?,
                )
            }
            Request::RecordIntent { intent } => {
                let (store, intent) = (Arc::clone(store), map::intent_to_lash(intent));
                off_executor(move || store.record_intent(intent).map_err(map::error_to_strata))
                    .await?;
                Response::Done
            }
            Request::CommitRefs { session_id, attachment_ids } => {
                let store = Arc::clone(store);
                let session_id = session_id.to_owned();
                let ids = map::attachment_ids_to_lash(attachment_ids);
                off_executor(move || {
                    store.commit_refs(&session_id, &ids).map_err(map::error_to_strata)
                })
                .await?;
                Response::Done
            }
            Request::ListUncommitted { older_than_ms } => {
                let store = Arc::clone(store);
                let rows = off_executor(move || {
                    store.list_uncommitted(older_than_ms).map_err(map::error_to_strata)
                })
                .await?;
                Response::Uncommitted(rows.into_iter().map(map::manifest_entry_to_strata).collect())
            }
            Request::Forget { attachment_id } => {
                let store = Arc::clone(store);
                let id = lash::AttachmentId::new(attachment_id.to_owned());
                off_executor(move || store.forget(&id).map_err(map::error_to_strata)).await?;
                Response::Done
            }
        })
    }
}
