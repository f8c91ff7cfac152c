//! The attachment write-ahead manifest (`docs/contract.md` §4, "Manifest"): rows keyed by
//! (session id, attachment id), their planners and the one mutation applier.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Mutation, Planned};
use crate::error::StoreError;
use crate::types::*;

/// Every manifest row of a store, by session then attachment id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestState {
    rows: BTreeMap<String, BTreeMap<String, AttachmentManifestEntry>>,
}

/// A change to the manifest, resolved by a planner and applied by [`ManifestState::apply`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ManifestMutation {
    /// Insert an uncommitted row, or refresh `intent_at` of an uncommitted one.
    RecordIntent(AttachmentIntent),
    /// Stamp the uncommitted rows of `session_id` among `attachment_ids`.
    CommitRefs {
        /// Session whose rows are stamped.
        session_id: String,
        /// Ids to stamp (rows already stamped keep their stamp).
        attachment_ids: Vec<String>,
        /// The stamp.
        committed_at_ms: u64,
    },
    /// Delete every row with this id, whatever its session and state.
    Forget {
        /// The attachment id.
        attachment_id: String,
    },
}

fn planned<T>(mutation: Option<ManifestMutation>, output: T) -> Planned<T> {
    Planned { mutation: mutation.map(Mutation::Manifest), output }
}

impl ManifestState {
    fn row(&self, session_id: &str, attachment_id: &str) -> Option<&AttachmentManifestEntry> {
        self.rows.get(session_id)?.get(attachment_id)
    }

    /// Every row, committed or not, by (session, id) (for tools that inspect a store).
    pub fn entries(&self) -> impl Iterator<Item = &AttachmentManifestEntry> {
        self.rows.values().flat_map(BTreeMap::values)
    }

    /// Rows with no commit stamp and `intent_at <= older_than_ms`, by (session, id).
    pub fn list_uncommitted(&self, older_than_ms: u64) -> Vec<AttachmentManifestEntry> {
        self.rows
            .values()
            .flat_map(BTreeMap::values)
            .filter(|row| {
                row.committed_at_epoch_ms.is_none() && row.intent_at_epoch_ms <= older_than_ms
            })
            .cloned()
            .collect()
    }

    /// Record an intent; ids must be non-empty. No change for a committed row or an identical
    /// uncommitted one.
    pub fn plan_record_intent(&self, intent: &AttachmentIntent) -> Result<Planned<()>, StoreError> {
        if intent.attachment_id.is_empty() || intent.session_id.is_empty() {
            return Err(StoreError::InvalidInput(
                "an attachment intent needs a session id and an attachment id".into(),
            ));
        }
        let unchanged = self.row(&intent.session_id, &intent.attachment_id).is_some_and(|row| {
            row.committed_at_epoch_ms.is_some()
                || row.intent_at_epoch_ms == intent.intent_at_epoch_ms
        });
        let mutation = (!unchanged).then(|| ManifestMutation::RecordIntent(intent.clone()));
        Ok(planned(mutation, ()))
    }

    /// The ids among `attachment_ids` that name an uncommitted row of `session_id`.
    pub fn stampable(&self, session_id: &str, attachment_ids: &[String]) -> Vec<String> {
        let mut ids: Vec<String> = attachment_ids
            .iter()
            .filter(|id| {
                self.row(session_id, id).is_some_and(|row| row.committed_at_epoch_ms.is_none())
            })
            .cloned()
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// Stamp `committed_at = now_ms` on the uncommitted rows of `session_id` among the ids.
    pub fn plan_commit_refs(
        &self,
        session_id: &str,
        attachment_ids: &[String],
        now_ms: u64,
    ) -> Planned<()> {
        let attachment_ids = self.stampable(session_id, attachment_ids);
        let mutation = (!attachment_ids.is_empty()).then(|| ManifestMutation::CommitRefs {
            session_id: session_id.to_owned(),
            attachment_ids,
            committed_at_ms: now_ms,
        });
        planned(mutation, ())
    }

    /// Delete this store's rows for `attachment_id`; a no-op when there are none.
    pub fn plan_forget(&self, attachment_id: &str) -> Planned<()> {
        let present = self.rows.values().any(|rows| rows.contains_key(attachment_id));
        let mutation =
            present.then(|| ManifestMutation::Forget { attachment_id: attachment_id.to_owned() });
        planned(mutation, ())
    }

    /// Applies one manifest mutation: infallible and deterministic.
    pub fn apply(&mut self, mutation: &ManifestMutation) {
        match mutation {
            ManifestMutation::RecordIntent(intent) => {
                let rows = self.rows.entry(intent.session_id.clone()).or_default();
                let row = rows
                    .entry(intent.attachment_id.clone())
                    .or_insert_with(|| AttachmentManifestEntry::uncommitted(intent));
                if row.committed_at_epoch_ms.is_none() {
                    row.intent_at_epoch_ms = intent.intent_at_epoch_ms;
                }
            }
            ManifestMutation::CommitRefs { session_id, attachment_ids, committed_at_ms } => {
                self.stamp(session_id, attachment_ids, *committed_at_ms);
            }
            ManifestMutation::Forget { attachment_id } => {
                self.rows.retain(|_, rows| {
                    rows.remove(attachment_id);
                    !rows.is_empty()
                });
            }
        }
    }

    /// Stamps uncommitted rows (shared by `commit_refs` and the commit's effects).
    pub(super) fn stamp(&mut self, session_id: &str, attachment_ids: &[String], at_ms: u64) {
        let Some(rows) = self.rows.get_mut(session_id) else {
            return;
        };
        for attachment_id in attachment_ids {
            if let Some(row) = rows.get_mut(attachment_id) {
                row.committed_at_epoch_ms.get_or_insert(at_ms);
            }
        }
    }
}
