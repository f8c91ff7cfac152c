//! [`MemoryAttachmentStore`]: attachments in process memory (`Inline` tier), for tests and for
//! runtimes whose sessions are in memory too.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use strata_core::DurabilityTier;

use crate::error::AttachmentError;
use crate::id::AttachmentId;
use crate::store::AttachmentStore;
use crate::types::*;

#[derive(Debug, Default)]
struct State {
    live: HashMap<AttachmentId, Attachment>,
    trash: HashMap<AttachmentId, Attachment>,
    references: HashMap<AttachmentId, BTreeSet<AttachmentReference>>,
}

/// Attachments in memory. Clones share one store; every method runs under one mutex, without
/// awaiting inside it.
#[derive(Clone, Debug)]
pub struct MemoryAttachmentStore {
    state: Arc<Mutex<State>>,
    max_bytes: u64,
}

impl Default for MemoryAttachmentStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryAttachmentStore {
    /// An empty store with the [`DEFAULT_MAX_BYTES`] payload limit.
    pub fn new() -> Self {
        Self { state: Arc::default(), max_bytes: DEFAULT_MAX_BYTES }
    }

    /// With a payload limit of `max_bytes`.
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Moves the entries of `ids` present in `from` to `to`; returns the ids moved.
    fn shift(
        &self,
        ids: &[AttachmentId],
        pick: impl Fn(
            &mut State,
        ) -> (
            &mut HashMap<AttachmentId, Attachment>,
            &mut HashMap<AttachmentId, Attachment>,
        ),
    ) -> Vec<AttachmentId> {
        let mut state = self.state();
        let (from, to) = pick(&mut state);
        let mut moved = Vec::new();
        for id in ids {
            if let Some(attachment) = from.remove(id) {
                to.entry(id.clone()).or_insert(attachment);
                moved.push(id.clone());
            }
        }
        moved
    }
}

#[async_trait]
impl AttachmentStore for MemoryAttachmentStore {
    fn durability_tier(&self) -> DurabilityTier {
        DurabilityTier::Inline
    }

    fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    fn uri(&self, id: &AttachmentId) -> String {
        format!("memory:{id}")
    }

    async fn put(
        &self,
        content: Content,
        meta: AttachmentMeta,
    ) -> Result<AttachmentInfo, AttachmentError> {
        let info = check_put(&content, &meta, self.max_bytes)?;
        let mut state = self.state();
        let stored = state
            .live
            .entry(info.id.clone())
            .or_insert_with(|| Attachment { info, bytes: content.bytes().clone() });
        Ok(stored.info.clone())
    }

    async fn get(&self, id: &AttachmentId) -> Result<Attachment, AttachmentError> {
        let state = self.state();
        state
            .live
            .get(id)
            .or_else(|| state.trash.get(id))
            .cloned()
            .ok_or_else(|| AttachmentError::NotFound { id: id.clone() })
    }

    async fn contains(&self, id: &AttachmentId) -> Result<bool, AttachmentError> {
        Ok(self.state().live.contains_key(id))
    }

    async fn delete(&self, ids: &[AttachmentId]) -> Result<Vec<AttachmentId>, AttachmentError> {
        Ok(self.shift(ids, |state| (&mut state.live, &mut state.trash)))
    }

    async fn restore(&self, ids: &[AttachmentId]) -> Result<Vec<AttachmentId>, AttachmentError> {
        Ok(self.shift(ids, |state| (&mut state.trash, &mut state.live)))
    }

    async fn purge(&self, ids: &[AttachmentId]) -> Result<Vec<AttachmentId>, AttachmentError> {
        let mut state = self.state();
        Ok(ids.iter().filter(|id| state.trash.remove(id).is_some()).cloned().collect())
    }

    async fn trashed(&self) -> Result<Vec<AttachmentId>, AttachmentError> {
        Ok(self.state().trash.keys().cloned().collect())
    }

    async fn add_reference(&self, reference: &AttachmentReference) -> Result<(), AttachmentError> {
        let mut state = self.state();
        state
            .references
            .entry(reference.attachment_id().clone())
            .or_default()
            .insert(reference.clone());
        Ok(())
    }

    async fn references(
        &self,
        id: &AttachmentId,
    ) -> Result<Vec<AttachmentReference>, AttachmentError> {
        Ok(self
            .state()
            .references
            .get(id)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default())
    }

    async fn remove_references(
        &self,
        references: &[AttachmentReference],
    ) -> Result<(), AttachmentError> {
        let mut state = self.state();
        for reference in references {
            let id = reference.attachment_id();
            if let Some(set) = state.references.get_mut(id) {
                set.remove(reference);
                if set.is_empty() {
                    state.references.remove(id);
                }
            }
        }
        Ok(())
    }
}
