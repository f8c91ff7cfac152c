//! Trait calls as values: [`Operation`] names a method, [`Request`] carries one call's
//! arguments, [`Response`] its result, and [`MethodClass`] says whether it may be retried.
//!
//! This is what lets a decorator that only acts *around* calls (tracing, metrics, retry,
//! timeout, limits, breaking, fault injection) write its behaviour once, as an
//! [`Around`](crate::Around), instead of 21 forwarding methods. [`Request::dispatch`] is the
//! single place that turns a request back into a trait call; [`Response`]'s `into_*`
//! conversions are the single place that turns results back.

use std::sync::Arc;

use crate::error::StoreError;
use crate::store::RuntimePersistence;
use crate::types::*;

macro_rules! operations {
    ($($variant:ident => $name:literal,)*) => {
        /// One method of [`RuntimePersistence`] or [`AttachmentManifest`](crate::AttachmentManifest)
        /// that a decorator can act around (every async method; `durability_tier` is forwarded
        /// directly).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Operation {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*
        }

        impl Operation {
            /// Every operation, in declaration order (for building per-operation tables).
            pub const ALL: &'static [Operation] = &[$(Operation::$variant,)*];

            /// The trait method's name (bounded; usable as a metric label or span name).
            pub const fn name(self) -> &'static str {
                match self {
                    $(Operation::$variant => $name,)*
                }
            }
        }
    };
}

operations! {
    LoadSession => "load_session",
    LoadNode => "load_node",
    CommitRuntimeState => "commit_runtime_state",
    SaveSessionMeta => "save_session_meta",
    LoadSessionMeta => "load_session_meta",
    TombstoneNodes => "tombstone_nodes",
    Vacuum => "vacuum",
    GcUnreachable => "gc_unreachable",
    EnqueueQueuedWork => "enqueue_queued_work",
    ClaimReadyQueuedWork => "claim_ready_queued_work",
    ClaimReadyQueuedWorkByBatchIds => "claim_ready_queued_work_by_batch_ids",
    RenewQueuedWorkClaim => "renew_queued_work_claim",
    AbandonQueuedWorkClaim => "abandon_queued_work_claim",
    CancelQueuedWorkBatch => "cancel_queued_work_batch",
    ListQueuedWork => "list_queued_work",
    ListPendingQueuedWork => "list_pending_queued_work",
    RecordIntent => "record_intent",
    CommitRefs => "commit_refs",
    ListUncommitted => "list_uncommitted",
    Forget => "forget",
}

impl Operation {
    /// Position in [`Operation::ALL`], for array-indexed per-operation tables.
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How safe a call is to repeat (DESIGN.md, "Per-method classes").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MethodClass {
    /// Reads: always safe to retry.
    Read,
    /// Writes whose repetition has no further effect.
    IdempotentWrite,
    /// Writes the store dedupes by a key (stamped commit, enqueue with a source key).
    KeyedWrite,
    /// Writes that apply again when repeated: retry only if the failure provably happened
    /// before the store applied anything.
    UnkeyedWrite,
}

impl MethodClass {
    /// True for reads.
    pub const fn is_read(self) -> bool {
        matches!(self, MethodClass::Read)
    }
}

/// The arguments of one trait call. Borrowed arguments stay borrowed; owned ones (commit,
/// draft, meta, scope, intent) are owned. The large owned arguments are behind an `Arc`: a
/// request is moved through every layer of a stack, and a small one keeps each layer's future
/// small (a commit is allocated once, not copied per layer), and a layer that must keep the
/// request to send it again (retry) clones a pointer, not the commit. Stores that plan from a
/// reference (Strata's backends) never copy it; [`Request::dispatch`] hands an owned value to
/// a [`RuntimePersistence`] implementation, copying it only while a retry still holds it.
#[derive(Clone, Debug)]
#[allow(missing_docs)] // fields mirror the trait methods' parameters
pub enum Request<'a> {
    LoadSession {
        scope: SessionReadScope,
    },
    LoadNode {
        node_id: &'a str,
    },
    CommitRuntimeState {
        commit: Arc<RuntimeCommit>,
    },
    SaveSessionMeta {
        meta: Arc<SessionMeta>,
    },
    LoadSessionMeta,
    TombstoneNodes {
        ids: &'a [String],
    },
    Vacuum,
    GcUnreachable,
    EnqueueQueuedWork {
        draft: Arc<QueuedWorkBatchDraft>,
    },
    ClaimReadyQueuedWork {
        session_id: &'a str,
        owner_id: &'a str,
        boundary: QueuedWorkClaimBoundary,
        lease_ttl_ms: u64,
        max_batches: usize,
    },
    ClaimReadyQueuedWorkByBatchIds {
        session_id: &'a str,
        owner_id: &'a str,
        boundary: QueuedWorkClaimBoundary,
        lease_ttl_ms: u64,
        batch_ids: &'a [String],
    },
    RenewQueuedWorkClaim {
        claim: &'a QueuedWorkClaim,
        lease_ttl_ms: u64,
    },
    AbandonQueuedWorkClaim {
        claim: &'a QueuedWorkClaim,
    },
    CancelQueuedWorkBatch {
        session_id: &'a str,
        batch_id: &'a str,
    },
    ListQueuedWork {
        session_id: &'a str,
    },
    ListPendingQueuedWork {
        session_id: &'a str,
    },
    RecordIntent {
        intent: AttachmentIntent,
    },
    CommitRefs {
        session_id: &'a str,
        attachment_ids: &'a [String],
    },
    ListUncommitted {
        older_than_ms: u64,
    },
    Forget {
        attachment_id: &'a str,
    },
}

impl Request<'_> {
    /// Which method this request calls.
    pub fn operation(&self) -> Operation {
        match self {
            Request::LoadSession { .. } => Operation::LoadSession,
            Request::LoadNode { .. } => Operation::LoadNode,
            Request::CommitRuntimeState { .. } => Operation::CommitRuntimeState,
            Request::SaveSessionMeta { .. } => Operation::SaveSessionMeta,
            Request::LoadSessionMeta => Operation::LoadSessionMeta,
            Request::TombstoneNodes { .. } => Operation::TombstoneNodes,
            Request::Vacuum => Operation::Vacuum,
            Request::GcUnreachable => Operation::GcUnreachable,
            Request::EnqueueQueuedWork { .. } => Operation::EnqueueQueuedWork,
            Request::ClaimReadyQueuedWork { .. } => Operation::ClaimReadyQueuedWork,
            Request::ClaimReadyQueuedWorkByBatchIds { .. } => {
                Operation::ClaimReadyQueuedWorkByBatchIds
            }
            Request::RenewQueuedWorkClaim { .. } => Operation::RenewQueuedWorkClaim,
            Request::AbandonQueuedWorkClaim { .. } => Operation::AbandonQueuedWorkClaim,
            Request::CancelQueuedWorkBatch { .. } => Operation::CancelQueuedWorkBatch,
            Request::ListQueuedWork { .. } => Operation::ListQueuedWork,
            Request::ListPendingQueuedWork { .. } => Operation::ListPendingQueuedWork,
            Request::RecordIntent { .. } => Operation::RecordIntent,
            Request::CommitRefs { .. } => Operation::CommitRefs,
            Request::ListUncommitted { .. } => Operation::ListUncommitted,
            Request::Forget { .. } => Operation::Forget,
        }
    }

    /// The idempotency class of this particular call (a stamped commit is keyed, an unstamped
    /// one is not; likewise enqueue with and without a source key).
    pub fn class(&self) -> MethodClass {
        match self {
            Request::LoadSession { .. }
            | Request::LoadNode { .. }
            | Request::LoadSessionMeta
            | Request::ListQueuedWork { .. }
            | Request::ListPendingQueuedWork { .. }
            | Request::ListUncommitted { .. } => MethodClass::Read,
            Request::SaveSessionMeta { .. }
            | Request::TombstoneNodes { .. }
            | Request::Vacuum
            | Request::GcUnreachable
            | Request::AbandonQueuedWorkClaim { .. }
            | Request::RecordIntent { .. }
            | Request::CommitRefs { .. }
            | Request::Forget { .. } => MethodClass::IdempotentWrite,
            Request::CommitRuntimeState { commit } if commit.turn_commit.is_some() => {
                MethodClass::KeyedWrite
            }
            Request::EnqueueQueuedWork { draft } if draft.source_key.is_some() => {
                MethodClass::KeyedWrite
            }
            Request::CommitRuntimeState { .. }
            | Request::EnqueueQueuedWork { .. }
            | Request::ClaimReadyQueuedWork { .. }
            | Request::ClaimReadyQueuedWorkByBatchIds { .. }
            | Request::RenewQueuedWorkClaim { .. }
            | Request::CancelQueuedWorkBatch { .. } => MethodClass::UnkeyedWrite,
        }
    }

    /// The session id the call names, when it names one (for span fields, never labels).
    pub fn session_id(&self) -> Option<&str> {
        match self {
            Request::CommitRuntimeState { commit } => Some(&commit.session_id),
            Request::SaveSessionMeta { meta } => Some(&meta.session_id),
            Request::EnqueueQueuedWork { draft } => Some(&draft.session_id),
            Request::ClaimReadyQueuedWork { session_id, .. }
            | Request::ClaimReadyQueuedWorkByBatchIds { session_id, .. }
            | Request::CancelQueuedWorkBatch { session_id, .. }
            | Request::ListQueuedWork { session_id }
            | Request::ListPendingQueuedWork { session_id }
            | Request::CommitRefs { session_id, .. } => Some(session_id),
            Request::RenewQueuedWorkClaim { claim, .. }
            | Request::AbandonQueuedWorkClaim { claim } => Some(&claim.session_id),
            Request::RecordIntent { intent } => Some(&intent.session_id),
            Request::LoadSession { .. }
            | Request::LoadNode { .. }
            | Request::LoadSessionMeta
            | Request::TombstoneNodes { .. }
            | Request::Vacuum
            | Request::GcUnreachable
            | Request::ListUncommitted { .. }
            | Request::Forget { .. } => None,
        }
    }

    /// Runs this request against `store`: the one place a request becomes a trait call.
    pub async fn dispatch<S: RuntimePersistence + ?Sized>(
        self,
        store: &S,
    ) -> Result<Response, StoreError> {
        Ok(match self {
            Request::LoadSession { scope } => {
                Response::Session(store.load_session(scope).await?.map(Box::new))
            }
            Request::LoadNode { node_id } => Response::Node(store.load_node(node_id).await?),
            Request::CommitRuntimeState { commit } => {
                Response::Committed(store.commit_runtime_state(Arc::unwrap_or_clone(commit)).await?)
            }
            Request::SaveSessionMeta { meta } => {
                store.save_session_meta(Arc::unwrap_or_clone(meta)).await?;
                Response::Done
            }
            Request::LoadSessionMeta => Response::Meta(store.load_session_meta().await?),
            Request::TombstoneNodes { ids } => {
                store.tombstone_nodes(ids).await?;
                Response::Done
            }
            Request::Vacuum => Response::Vacuumed(store.vacuum().await?),
            Request::GcUnreachable => Response::Collected(store.gc_unreachable().await?),
            Request::EnqueueQueuedWork { draft } => {
                Response::Enqueued(store.enqueue_queued_work(Arc::unwrap_or_clone(draft)).await?)
            }
            Request::ClaimReadyQueuedWork {
                session_id,
                owner_id,
                boundary,
                lease_ttl_ms,
                max_batches,
            } => Response::Claim(
                store
                    .claim_ready_queued_work(
                        session_id,
                        owner_id,
                        boundary,
                        lease_ttl_ms,
                        max_batches,
                    )
                    .await?,
            ),
            Request::ClaimReadyQueuedWorkByBatchIds {
                session_id,
                owner_id,
                boundary,
                lease_ttl_ms,
                batch_ids,
            } => Response::Claim(
                store
                    .claim_ready_queued_work_by_batch_ids(
                        session_id,
                        owner_id,
                        boundary,
                        lease_ttl_ms,
                        batch_ids,
                    )
                    .await?,
            ),
            Request::RenewQueuedWorkClaim { claim, lease_ttl_ms } => {
                Response::Renewed(store.renew_queued_work_claim(claim, lease_ttl_ms).await?)
            }
            Request::AbandonQueuedWorkClaim { claim } => {
                store.abandon_queued_work_claim(claim).await?;
                Response::Done
            }
            Request::CancelQueuedWorkBatch { session_id, batch_id } => {
                Response::Cancelled(store.cancel_queued_work_batch(session_id, batch_id).await?)
            }
            Request::ListQueuedWork { session_id } => {
                Response::Batches(store.list_queued_work(session_id).await?)
            }
            Request::ListPendingQueuedWork { session_id } => {
                Response::Batches(store.list_pending_queued_work(session_id).await?)
            }
            Request::RecordIntent { intent } => {
                store.record_intent(intent).await?;
                Response::Done
            }
            Request::CommitRefs { session_id, attachment_ids } => {
                store.commit_refs(session_id, attachment_ids).await?;
                Response::Done
            }
            Request::ListUncommitted { older_than_ms } => {
                Response::Uncommitted(store.list_uncommitted(older_than_ms).await?)
            }
            Request::Forget { attachment_id } => {
                store.forget(attachment_id).await?;
                Response::Done
            }
        })
    }
}

/// The result of one trait call (the success side; errors stay [`StoreError`]). A session read
/// is boxed so that every response stays small as it moves out through a stack.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // variants mirror the trait methods' return types
pub enum Response {
    Session(Option<Box<PersistedSessionRead>>),
    Node(Option<SessionNodeRecord>),
    Committed(RuntimeCommitResult),
    Meta(Option<SessionMeta>),
    Vacuumed(VacuumReport),
    Collected(GcReport),
    Enqueued(QueuedWorkBatch),
    Claim(Option<QueuedWorkClaim>),
    Renewed(QueuedWorkClaim),
    Cancelled(Option<QueuedWorkBatch>),
    Batches(Vec<QueuedWorkBatch>),
    Uncommitted(Vec<AttachmentManifestEntry>),
    /// Methods returning `()`.
    Done,
}

macro_rules! response_conversions {
    ($($method:ident: $variant:ident => $ty:ty,)*) => {
        impl Response {
            $(
                #[doc = concat!("The `", stringify!($variant), "` payload, or a `Backend` error naming the mismatch (a decorator bug).")]
                pub fn $method(self) -> Result<$ty, StoreError> {
                    match self {
                        Response::$variant(value) => Ok(value),
                        other => Err(other.mismatch(stringify!($variant))),
                    }
                }
            )*
        }
    };
}

response_conversions! {
    into_node: Node => Option<SessionNodeRecord>,
    into_committed: Committed => RuntimeCommitResult,
    into_meta: Meta => Option<SessionMeta>,
    into_vacuumed: Vacuumed => VacuumReport,
    into_collected: Collected => GcReport,
    into_enqueued: Enqueued => QueuedWorkBatch,
    into_claim: Claim => Option<QueuedWorkClaim>,
    into_renewed: Renewed => QueuedWorkClaim,
    into_cancelled: Cancelled => Option<QueuedWorkBatch>,
    into_batches: Batches => Vec<QueuedWorkBatch>,
    into_uncommitted: Uncommitted => Vec<AttachmentManifestEntry>,
}

impl Response {
    /// The `Session` payload, unboxed, or a `Backend` error naming the mismatch.
    pub fn into_session(self) -> Result<Option<PersistedSessionRead>, StoreError> {
        match self {
            Response::Session(read) => Ok(read.map(|read| *read)),
            other => Err(other.mismatch("Session")),
        }
    }

    /// `Ok(())` for [`Response::Done`], or a `Backend` error naming the mismatch.
    pub fn into_done(self) -> Result<(), StoreError> {
        match self {
            Response::Done => Ok(()),
            other => Err(other.mismatch("Done")),
        }
    }

    fn mismatch(&self, expected: &str) -> StoreError {
        StoreError::Backend(format!(
            "decorator returned a mismatched response: expected {expected}, got {self:?}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_names_are_the_trait_method_names_and_indices_are_dense() {
        for (position, operation) in Operation::ALL.iter().enumerate() {
            assert_eq!(operation.index(), position);
        }
        assert_eq!(Operation::ALL.len(), 20);
        assert_eq!(Operation::CommitRuntimeState.name(), "commit_runtime_state");
    }

    #[test]
    fn commit_class_depends_on_the_stamp() {
        let mut commit = RuntimeCommit { session_id: "s".into(), ..Default::default() };
        let unstamped = Request::CommitRuntimeState { commit: Arc::new(commit.clone()) };
        assert_eq!(unstamped.class(), MethodClass::UnkeyedWrite);
        commit.turn_commit = Some(RuntimeTurnCommitStamp {
            session_id: "s".into(),
            turn_id: "t".into(),
            turn_commit_hash: "h".into(),
        });
        let stamped = Request::CommitRuntimeState { commit: Arc::new(commit) };
        assert_eq!(stamped.class(), MethodClass::KeyedWrite);
        assert_eq!(stamped.session_id(), Some("s"));
    }

    #[test]
    fn a_mismatched_response_is_a_typed_error_not_a_panic() {
        let error = Response::Done.into_node().unwrap_err();
        assert!(matches!(error, StoreError::Backend(message) if message.contains("expected Node")));
    }
}
