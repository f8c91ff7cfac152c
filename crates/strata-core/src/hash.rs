//! Content addressing: blob refs, checkpoint-manifest refs, and the versioned semantic commit
//! hash used in turn stamps. All use BLAKE3 (fast, collision-resistant, no configuration).

use crate::types::{
    AgentFrame, BlobRef, CheckpointBlob, GraphCommitDelta, QueuedWorkCompletion, RuntimeCheckpoint,
    RuntimeCommit, SessionCheckpoint, SessionGraph, SessionNodeRecord, TokenLedgerEntry,
    TokenUsage,
};

const REF_PREFIX: &str = "blake3:";

/// The content-addressed ref of `bytes`: `blake3:<64 hex digits>`. Identical bytes give
/// identical refs.
pub fn blob_ref(bytes: &[u8]) -> BlobRef {
    format!("{REF_PREFIX}{}", blake3::hash(bytes).to_hex())
}

/// The content-addressed ref of a checkpoint manifest (of its canonical JSON encoding).
pub fn checkpoint_ref(manifest: &SessionCheckpoint) -> BlobRef {
    let mut hasher = blake3::Hasher::new();
    serde_json::to_writer(&mut hasher, manifest).expect("hashing never fails to write");
    format!("{REF_PREFIX}{}", hasher.finalize().to_hex())
}

/// The version of [`commit_semantic_hash`]: the prefix of every hash it returns (`v2:`) and
/// part of what is hashed. A hash of another version never equals one of this version, so a
/// stamp recorded by a build hashing differently reads as a conflict, never as a false match.
pub const COMMIT_HASH_VERSION: u32 = 2;

/// Feeds fields into BLAKE3 unambiguously: every variable-length field is preceded by its
/// length, every optional one by a presence byte, every enum by its variant number, so two
/// different commits can never feed the same byte stream.
struct Fields(blake3::Hasher);

impl Fields {
    fn u64(&mut self, value: u64) {
        self.0.update(&value.to_le_bytes());
    }

    fn len(&mut self, len: usize) {
        self.u64(len as u64);
    }

    fn bytes(&mut self, bytes: &[u8]) {
        self.len(bytes.len());
        self.0.update(bytes);
    }

    fn str(&mut self, text: &str) {
        self.bytes(text.as_bytes());
    }

    fn opt<T: ?Sized>(&mut self, value: Option<&T>, field: impl FnOnce(&mut Self, &T)) {
        match value {
            None => {
                self.0.update(&[0]);
            }
            Some(value) => {
                self.0.update(&[1]);
                field(self, value);
            }
        }
    }

    fn opt_str(&mut self, text: Option<&str>) {
        self.opt(text, Self::str);
    }

    fn list<T>(&mut self, items: &[T], mut item: impl FnMut(&mut Self, &T)) {
        self.len(items.len());
        items.iter().for_each(|value| item(self, value));
    }

    fn node(&mut self, node: &SessionNodeRecord) {
        let SessionNodeRecord { node_id, parent_node_id, payload, timestamp_ms, frame_id, cause } =
            node;
        self.str(node_id);
        self.opt_str(parent_node_id.as_deref());
        self.bytes(payload);
        self.u64(*timestamp_ms);
        self.opt_str(frame_id.as_deref());
        self.opt_str(cause.as_deref());
    }

    fn graph(&mut self, graph: &GraphCommitDelta) {
        match graph {
            GraphCommitDelta::Unchanged { leaf_node_id } => {
                self.0.update(&[0]);
                self.opt_str(leaf_node_id.as_deref());
            }
            GraphCommitDelta::Append { nodes, leaf_node_id } => {
                self.0.update(&[1]);
                self.list(nodes, Self::node);
                self.opt_str(leaf_node_id.as_deref());
            }
            GraphCommitDelta::ReplaceFull(SessionGraph { nodes, leaf_node_id }) => {
                self.0.update(&[2]);
                self.list(nodes, Self::node);
                self.opt_str(leaf_node_id.as_deref());
            }
        }
    }

    fn blob(&mut self, blob: &CheckpointBlob) {
        self.opt_str(blob.blob_ref.as_deref());
        self.opt(blob.payload.as_deref(), Self::bytes);
    }

    fn checkpoint(&mut self, checkpoint: &RuntimeCheckpoint) {
        let RuntimeCheckpoint {
            turn_state,
            tool_state,
            plugin_snapshot,
            plugin_snapshot_revision,
            execution_state,
        } = checkpoint;
        self.bytes(turn_state);
        self.blob(tool_state);
        self.blob(plugin_snapshot);
        self.u64(*plugin_snapshot_revision);
        self.blob(execution_state);
    }
}

/// The semantic hash of a commit, for [`RuntimeTurnCommitStamp::turn_commit_hash`](crate::RuntimeTurnCommitStamp::turn_commit_hash):
/// `v2:` followed by 64 hex digits (see [`COMMIT_HASH_VERSION`]).
///
/// Equal for equal logical commits, stable across processes, platforms and builds of the same
/// version; excludes `expected_head_revision` and the stamp itself, so a retry of the same
/// logical commit after a lost reply hashes the same even though its expected revision is now
/// stale. Every other field is fed straight into BLAKE3 with length prefixes (no
/// serialization, payload bytes hashed in place): a few microseconds for a commit of four
/// ~740-byte nodes.
///
/// ```
/// use strata_core::{RuntimeCommit, commit_semantic_hash};
/// let commit = RuntimeCommit { session_id: "s".into(), expected_head_revision: Some(1), ..Default::default() };
/// let retry = RuntimeCommit { expected_head_revision: Some(7), ..commit.clone() };
/// assert_eq!(commit_semantic_hash(&commit), commit_semantic_hash(&retry));
/// assert!(commit_semantic_hash(&commit).starts_with("v2:"));
/// ```
pub fn commit_semantic_hash(commit: &RuntimeCommit) -> String {
    let RuntimeCommit {
        session_id,
        expected_head_revision: _,
        config,
        agent_frames,
        current_frame_id,
        graph,
        checkpoint,
        usage_deltas,
        turn_commit: _,
        completed_queue_claims,
        committed_attachment_ids,
    } = commit;
    let mut fields = Fields(blake3::Hasher::new());
    fields.0.update(b"strata.commit\0");
    fields.u64(u64::from(COMMIT_HASH_VERSION));
    fields.str(session_id);
    fields.bytes(config);
    fields.list(agent_frames, |fields, frame| {
        let AgentFrame { frame_id, payload, blob_refs } = frame;
        fields.str(frame_id);
        fields.bytes(payload);
        fields.list(blob_refs, |fields, blob_ref| fields.str(blob_ref));
    });
    fields.opt_str(current_frame_id.as_deref());
    fields.graph(graph);
    fields.opt(checkpoint.as_ref(), Fields::checkpoint);
    fields.list(usage_deltas, |fields, entry| {
        let TokenLedgerEntry { source, model, usage } = entry;
        fields.str(source);
        fields.str(model);
        let TokenUsage { input_tokens, output_tokens, cached_input_tokens, reasoning_tokens } =
            *usage;
        [input_tokens, output_tokens, cached_input_tokens, reasoning_tokens]
            .into_iter()
            .for_each(|count| fields.u64(count));
    });
    fields.list(completed_queue_claims, |fields, completion| {
        let QueuedWorkCompletion { session_id, claim_id, lease_token, batch_ids } = completion;
        fields.str(session_id);
        fields.str(claim_id);
        fields.str(lease_token);
        fields.list(batch_ids, |fields, batch_id| fields.str(batch_id));
    });
    fields.list(committed_attachment_ids, |fields, id| fields.str(id));
    format!("v{COMMIT_HASH_VERSION}:{}", fields.0.finalize().to_hex())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{RuntimeTurnCommitStamp, TokenLedgerEntry};
    use bytes::Bytes;

    #[test]
    fn identical_bytes_give_identical_refs() {
        assert_eq!(blob_ref(b"abc"), blob_ref(b"abc"));
        assert_ne!(blob_ref(b"abc"), blob_ref(b"abd"));
        assert!(blob_ref(b"abc").starts_with("blake3:"));
    }

    fn node(id: &str, parent: Option<&str>, payload: &str) -> SessionNodeRecord {
        SessionNodeRecord {
            node_id: id.into(),
            parent_node_id: parent.map(Into::into),
            payload: Bytes::from(payload.to_owned()),
            timestamp_ms: 7,
            frame_id: None,
            cause: None,
        }
    }

    fn realistic() -> RuntimeCommit {
        RuntimeCommit {
            session_id: "s".into(),
            expected_head_revision: Some(3),
            config: Bytes::from_static(b"{\"model\":\"m\"}"),
            graph: GraphCommitDelta::Append {
                nodes: vec![node("n1", None, "{\"a\":1}"), node("n2", Some("n1"), "{\"b\":2}")],
                leaf_node_id: Some("n2".into()),
            },
            usage_deltas: vec![TokenLedgerEntry {
                source: "agent".into(),
                model: "m".into(),
                usage: TokenUsage { input_tokens: 10, output_tokens: 5, ..Default::default() },
            }],
            ..Default::default()
        }
    }

    #[test]
    fn commit_hash_ignores_revision_and_stamp_but_not_content() {
        let commit = realistic();
        let mut retried = commit.clone();
        retried.expected_head_revision = Some(4);
        retried.turn_commit = Some(RuntimeTurnCommitStamp {
            session_id: "s".into(),
            turn_id: "t".into(),
            turn_commit_hash: "x".into(),
        });
        assert_eq!(commit_semantic_hash(&commit), commit_semantic_hash(&retried));
        let changes: Vec<fn(&mut RuntimeCommit)> = vec![
            |c| c.session_id = "t".into(),
            |c| c.config = Bytes::from_static(b"{}"),
            |c| c.current_frame_id = Some(String::new()),
            |c| c.graph = GraphCommitDelta::Unchanged { leaf_node_id: Some("n2".into()) },
            |c| {
                if let GraphCommitDelta::Append { nodes, .. } = &mut c.graph {
                    nodes[1].timestamp_ms = 8;
                }
            },
            |c| c.checkpoint = Some(RuntimeCheckpoint::default()),
            |c| c.usage_deltas[0].usage.reasoning_tokens = 1,
            |c| c.committed_attachment_ids = vec!["a".into()],
        ];
        for (index, change) in changes.into_iter().enumerate() {
            let mut changed = commit.clone();
            change(&mut changed);
            assert_ne!(commit_semantic_hash(&commit), commit_semantic_hash(&changed), "{index}");
        }
    }

    #[test]
    fn field_boundaries_are_unambiguous() {
        // The same bytes split differently between two fields hash differently.
        let split = |id: &str, payload: &str| {
            let mut commit = realistic();
            commit.graph = GraphCommitDelta::Append {
                nodes: vec![node(id, None, payload)],
                leaf_node_id: None,
            };
            commit_semantic_hash(&commit)
        };
        assert_ne!(split("ab", "c"), split("a", "bc"));
        let absent = RuntimeCommit { current_frame_id: None, ..realistic() };
        let empty = RuntimeCommit { current_frame_id: Some(String::new()), ..realistic() };
        assert_ne!(commit_semantic_hash(&absent), commit_semantic_hash(&empty));
    }

    #[test]
    fn the_version_2_hash_is_pinned() {
        // Changing what is hashed, or how, must bump COMMIT_HASH_VERSION: stored stamps
        // compare against hashes computed by later builds.
        assert_eq!(commit_semantic_hash(&realistic()), PINNED);
    }

    const PINNED: &str = "v2:443f69ed1a2ce91ce9fd56d562183197ea9731472d10d9d4d8d5c9ee5627a93b";
}
