//! Rows ↔ contract types: number mappings, enum spellings, and decoders that report an
//! undecodable row as [`StoreError::CorruptData`] naming its table and key.

use serde::{Deserialize, Serialize};
use strata_core::*;
use tokio_postgres::Row;
use tokio_postgres::types::FromSql;
pub(crate) use tokio_postgres::types::Json;

use crate::error::corrupt;

/// A `u64` the store compares (time, sequence, revision, counter) as `bigint`: values above
/// `i64::MAX` are refused.
pub(crate) fn ordered(what: &str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| {
        StoreError::InvalidInput(format!("{what} {value} exceeds this backend's limit of 2^63-1"))
    })
}

/// A `u64` bound or sum, saturated at `i64::MAX` (every stored value is at most that, so a
/// saturated bound compares exactly).
pub(crate) fn saturating(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// An opaque `u64` stored bit for bit in a `bigint`.
pub(crate) fn opaque(value: u64) -> i64 {
    value as i64
}

/// The inverse of [`opaque`].
pub(crate) fn from_opaque(value: i64) -> u64 {
    value as u64
}

pub(crate) fn delivery_name(policy: DeliveryPolicy) -> &'static str {
    match policy {
        DeliveryPolicy::EarliestSafeBoundary => "earliest_safe_boundary",
        DeliveryPolicy::AfterCurrentTurnCommit => "after_current_turn_commit",
    }
}

pub(crate) fn slot_name(policy: SlotPolicy) -> &'static str {
    match policy {
        SlotPolicy::Exclusive => "exclusive",
        SlotPolicy::Join => "join",
    }
}

/// The `(merge_key, merge_group)` columns of a merge key.
pub(crate) fn merge_columns(key: &MergeKey) -> (&'static str, Option<&str>) {
    match key {
        MergeKey::Never => ("never", None),
        MergeKey::PayloadDefault => ("payload_default", None),
        MergeKey::Group(group) => ("group", Some(group)),
    }
}

/// A batch's items: ids derived from the batch id (`<batch_id>/<index>`).
pub(crate) fn items(batch_id: &str, payloads: impl Iterator<Item = Bytes>) -> Vec<QueuedWorkItem> {
    payloads
        .enumerate()
        .map(|(index, payload)| QueuedWorkItem { item_id: format!("{batch_id}/{index}"), payload })
        .collect()
}

/// The id and blob refs of an agent frame, as the `agent_frames` JSON column holds them (the
/// payloads sit beside, in `agent_frame_payloads`).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct FrameEntry {
    pub(crate) frame_id: String,
    pub(crate) blob_refs: Vec<BlobRef>,
}

/// Reads the columns of one row, turning any undecodable value into `CorruptData` naming the
/// table and the row's key (read from the row's own key columns).
pub(crate) struct RowReader<'a> {
    row: &'a Row,
    table: &'static str,
    key_columns: &'static [&'static str],
}

impl<'a> RowReader<'a> {
    pub(crate) fn new(
        row: &'a Row,
        table: &'static str,
        key_columns: &'static [&'static str],
    ) -> Self {
        Self { row, table, key_columns }
    }

    /// "store_id 's', node_id 'n1'": the key of this row, for error messages.
    fn key(&self) -> String {
        self.key_columns
            .iter()
            .map(|column| match self.row.try_get::<_, Option<String>>(*column) {
                Ok(Some(text)) => format!("{column} {text:?}"),
                _ => match self.row.try_get::<_, i64>(*column) {
                    Ok(number) => format!("{column} {number}"),
                    Err(_) => format!("{column} (unreadable)"),
                },
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub(crate) fn corrupt(&self, detail: impl Into<String>) -> StoreError {
        corrupt(self.table, &self.key(), detail)
    }

    pub(crate) fn get<T: FromSql<'a>>(&self, column: &str) -> Result<T, StoreError> {
        self.row.try_get(column).map_err(|error| self.corrupt(format!("column {column}: {error}")))
    }

    pub(crate) fn bytes(&self, column: &str) -> Result<Bytes, StoreError> {
        self.get::<Vec<u8>>(column).map(Bytes::from)
    }

    pub(crate) fn opaque_u64(&self, column: &str) -> Result<u64, StoreError> {
        self.get::<i64>(column).map(from_opaque)
    }

    pub(crate) fn ordered_u64(&self, column: &str) -> Result<u64, StoreError> {
        let value = self.get::<i64>(column)?;
        u64::try_from(value).map_err(|_| self.corrupt(format!("column {column}: negative {value}")))
    }

    /// The checkpoint manifest in the standard columns (`checkpoint_ref`, `turn_state`,
    /// `*_ref`, `plugin_snapshot_revision`), checked against its content-addressed ref.
    pub(crate) fn manifest(&self) -> Result<Option<(BlobRef, SessionCheckpoint)>, StoreError> {
        let Some(stored_ref) = self.get::<Option<String>>("checkpoint_ref")? else {
            return Ok(None);
        };
        let turn_state = self
            .get::<Option<Vec<u8>>>("turn_state")?
            .ok_or_else(|| self.corrupt("a checkpoint without turn_state"))?;
        let revision = self
            .get::<Option<i64>>("plugin_snapshot_revision")?
            .ok_or_else(|| self.corrupt("a checkpoint without plugin_snapshot_revision"))?;
        let manifest = SessionCheckpoint {
            turn_state: Bytes::from(turn_state),
            tool_state_ref: self.get("tool_state_ref")?,
            plugin_snapshot_ref: self.get("plugin_snapshot_ref")?,
            plugin_snapshot_revision: from_opaque(revision),
            execution_state_ref: self.get("execution_state_ref")?,
        };
        if checkpoint_ref(&manifest) != stored_ref {
            return Err(self.corrupt(format!(
                "checkpoint_ref {stored_ref} does not match the manifest's content"
            )));
        }
        Ok(Some((stored_ref, manifest)))
    }

    /// The agent frames (`agent_frames` JSON + `agent_frame_payloads`).
    pub(crate) fn agent_frames(&self) -> Result<Vec<AgentFrame>, StoreError> {
        let Json(entries) = self.get::<Json<Vec<FrameEntry>>>("agent_frames")?;
        let payloads = self.get::<Vec<Vec<u8>>>("agent_frame_payloads")?;
        if entries.len() != payloads.len() {
            return Err(self.corrupt(format!(
                "{} agent frames but {} frame payloads",
                entries.len(),
                payloads.len()
            )));
        }
        Ok(entries
            .into_iter()
            .zip(payloads)
            .map(|(entry, payload)| AgentFrame {
                frame_id: entry.frame_id,
                payload: Bytes::from(payload),
                blob_refs: entry.blob_refs,
            })
            .collect())
    }

    /// A node from the standard node columns.
    pub(crate) fn node(&self) -> Result<SessionNodeRecord, StoreError> {
        Ok(SessionNodeRecord {
            node_id: self.get("node_id")?,
            parent_node_id: self.get("parent_node_id")?,
            payload: self.bytes("payload")?,
            timestamp_ms: self.opaque_u64("timestamp_ms")?,
            frame_id: self.get("frame_id")?,
            cause: self.get("cause")?,
        })
    }

    /// A batch from the `strata_batches` columns.
    pub(crate) fn batch(&self) -> Result<QueuedWorkBatch, StoreError> {
        let batch_id: String = self.get("batch_id")?;
        let delivery_policy = match self.get::<&str>("delivery_policy")? {
            "earliest_safe_boundary" => DeliveryPolicy::EarliestSafeBoundary,
            "after_current_turn_commit" => DeliveryPolicy::AfterCurrentTurnCommit,
            other => return Err(self.corrupt(format!("unknown delivery_policy {other:?}"))),
        };
        let slot_policy = match self.get::<&str>("slot_policy")? {
            "exclusive" => SlotPolicy::Exclusive,
            "join" => SlotPolicy::Join,
            other => return Err(self.corrupt(format!("unknown slot_policy {other:?}"))),
        };
        let merge_key =
            match (self.get::<&str>("merge_key")?, self.get::<Option<String>>("merge_group")?) {
                ("never", None) => MergeKey::Never,
                ("payload_default", None) => MergeKey::PayloadDefault,
                ("group", Some(group)) => MergeKey::Group(group),
                (kind, group) => {
                    return Err(
                        self.corrupt(format!("invalid merge key {kind:?} with group {group:?}"))
                    );
                }
            };
        let items =
            items(&batch_id, self.get::<Vec<Vec<u8>>>("payloads")?.into_iter().map(Bytes::from));
        Ok(QueuedWorkBatch {
            session_id: self.get("session_id")?,
            enqueue_seq: self.ordered_u64("enqueue_seq")?,
            source_key: self.get("source_key")?,
            delivery_policy,
            slot_policy,
            merge_key,
            available_at_ms: self.ordered_u64("available_at_ms")?,
            enqueued_at_ms: self.ordered_u64("enqueued_at_ms")?,
            items,
            batch_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opaque_values_round_trip_bit_for_bit() {
        for value in [0, 1, i64::MAX as u64, i64::MAX as u64 + 1, u64::MAX] {
            assert_eq!(from_opaque(opaque(value)), value);
        }
    }

    #[test]
    fn ordered_values_refuse_what_bigint_cannot_order() {
        assert_eq!(ordered("t", 5), Ok(5));
        assert_eq!(ordered("t", i64::MAX as u64), Ok(i64::MAX));
        assert_eq!(ordered("t", u64::MAX).unwrap_err().kind(), "invalid_input");
        assert_eq!(saturating(u64::MAX), i64::MAX);
    }
}
