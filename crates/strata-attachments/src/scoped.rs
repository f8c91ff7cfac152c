//! [`SessionScopedAttachmentStore`]: the write-ahead wrapper around an attachment store for
//! one session (the contract's §7), and [`PendingIds`], the ids it hands to the next commit.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use strata_core::{AttachmentIntent, AttachmentManifest, DurabilityTier, SharedClock, SystemClock};

use crate::error::AttachmentError;
use crate::id::{AttachmentId, IntentId};
use crate::store::AttachmentStore;
use crate::types::*;

/// Manifest row ids of puts whose commit has not been seen yet. Clones share one set: the
/// attachment layer keeps one per session, shared by every scoped store and store handle of
/// that session.
#[derive(Clone, Debug, Default)]
pub struct PendingIds(Arc<Mutex<BTreeSet<String>>>);

impl PendingIds {
    fn set(&self) -> MutexGuard<'_, BTreeSet<String>> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The pending ids, sorted.
    pub fn snapshot(&self) -> Vec<String> {
        self.set().iter().cloned().collect()
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.set().is_empty()
    }

    pub(crate) fn insert(&self, id: String) {
        self.set().insert(id);
    }

    /// Forgets `ids` (their commit succeeded); ids added since stay pending.
    pub fn committed(&self, ids: &[String]) {
        let mut set = self.set();
        for id in ids {
            set.remove(id);
        }
    }

    /// True when another clone (a scoped store, a layered handle) still holds this set.
    pub(crate) fn is_shared(&self) -> bool {
        Arc::strong_count(&self.0) > 1
    }
}

/// One session's view of an attachment store that records every put in the session's manifest
/// before writing its bytes.
///
/// A [`put`](AttachmentStore::put): checks the payload limit and metadata (an error records
/// nothing); records an intent for a fresh [`IntentId`] in the session's manifest (if that
/// fails, nothing else happens: [`AttachmentError::Manifest`]); adds the
/// [`AttachmentReference`] of that row to the store; writes the bytes; and adds the intent id
/// to the [pending ids](Self::pending_ids). The runtime passes those in
/// `committed_attachment_ids` of its next commit, which stamps them in the same transaction,
/// then calls [`mark_committed`](Self::mark_committed); the [attachment
/// layer](crate::AttachmentLayer) does both itself. A crash anywhere leaves nothing, an
/// uncommitted row (the sweeper removes it and its bytes after the grace period), or a
/// committed row (kept).
///
/// Every other method goes to the wrapped store unchanged.
#[derive(Clone)]
pub struct SessionScopedAttachmentStore {
    session_id: String,
    store: Arc<dyn AttachmentStore>,
    manifest: Arc<dyn AttachmentManifest>,
    clock: SharedClock,
    pending: PendingIds,
}

impl fmt::Debug for SessionScopedAttachmentStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionScoped({:?}) → {:?}", self.session_id, self.store)
    }
}

impl SessionScopedAttachmentStore {
    /// The scoped store of `session_id` over `store`, recording intents in `manifest` (the
    /// session's `RuntimePersistence` store: `Arc<dyn RuntimePersistence>` coerces), with its
    /// own pending set and the system clock.
    pub fn new(
        session_id: impl Into<String>,
        store: Arc<dyn AttachmentStore>,
        manifest: Arc<dyn AttachmentManifest>,
    ) -> Self {
        Self::sharing(
            session_id.into(),
            store,
            manifest,
            Arc::new(SystemClock),
            PendingIds::default(),
        )
    }

    pub(crate) fn sharing(
        session_id: String,
        store: Arc<dyn AttachmentStore>,
        manifest: Arc<dyn AttachmentManifest>,
        clock: SharedClock,
        pending: PendingIds,
    ) -> Self {
        Self { session_id, store, manifest, clock, pending }
    }

    /// Intent times from `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The session.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// Manifest ids of puts not yet marked committed, for the next commit's
    /// `committed_attachment_ids`.
    pub fn pending_ids(&self) -> Vec<String> {
        self.pending.snapshot()
    }

    /// Marks `ids` committed (call after the commit carrying them succeeded).
    pub fn mark_committed(&self, ids: &[String]) {
        self.pending.committed(ids);
    }
}

#[async_trait]
impl AttachmentStore for SessionScopedAttachmentStore {
    fn durability_tier(&self) -> DurabilityTier {
        self.store.durability_tier()
    }

    fn max_bytes(&self) -> u64 {
        self.store.max_bytes()
    }

    fn uri(&self, id: &AttachmentId) -> String {
        self.store.uri(id)
    }

    async fn put(
        &self,
        content: Content,
        meta: AttachmentMeta,
    ) -> Result<AttachmentInfo, AttachmentError> {
        check_put(&content, &meta, self.store.max_bytes())?;
        let intent_id = IntentId::new(content.id().clone());
        let intent = AttachmentIntent {
            attachment_id: intent_id.to_string(),
            session_id: self.session_id.clone(),
            canonical_uri: self.store.uri(content.id()),
            intent_at_epoch_ms: self.clock.now_ms(),
        };
        self.manifest.record_intent(intent).await.map_err(AttachmentError::Manifest)?;
        let reference = AttachmentReference {
            intent_id: intent_id.clone(),
            session_id: self.session_id.clone(),
        };
        self.store.add_reference(&reference).await?;
        let info = self.store.put(content, meta).await?;
        tracing::debug!(session_id = %self.session_id, %intent_id, bytes = info.byte_len, "attachment written, pending commit");
        self.pending.insert(intent_id.to_string());
        Ok(info)
    }

    async fn get(&self, id: &AttachmentId) -> Result<Attachment, AttachmentError> {
        self.store.get(id).await
    }

    async fn contains(&self, id: &AttachmentId) -> Result<bool, AttachmentError> {
        self.store.contains(id).await
    }

    async fn delete(&self, ids: &[AttachmentId]) -> Result<Vec<AttachmentId>, AttachmentError> {
        self.store.delete(ids).await
    }

    async fn restore(&self, ids: &[AttachmentId]) -> Result<Vec<AttachmentId>, AttachmentError> {
        self.store.restore(ids).await
    }

    async fn purge(&self, ids: &[AttachmentId]) -> Result<Vec<AttachmentId>, AttachmentError> {
        self.store.purge(ids).await
    }

    async fn trashed(&self) -> Result<Vec<AttachmentId>, AttachmentError> {
        self.store.trashed().await
    }

    async fn add_reference(&self, reference: &AttachmentReference) -> Result<(), AttachmentError> {
        self.store.add_reference(reference).await
    }

    async fn references(
        &self,
        id: &AttachmentId,
    ) -> Result<Vec<AttachmentReference>, AttachmentError> {
        self.store.references(id).await
    }

    async fn remove_references(
        &self,
        references: &[AttachmentReference],
    ) -> Result<(), AttachmentError> {
        self.store.remove_references(references).await
    }
}
