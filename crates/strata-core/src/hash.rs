//! Content addressing: blob refs, checkpoint-manifest refs, and the semantic commit hash used
//! in turn stamps. All use BLAKE3 (fast, collision-resistant, no configuration).

use std::io::Write;

use crate::types::{BlobRef, RuntimeCommit, SessionCheckpoint};

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

/// The semantic hash of a commit, for [`RuntimeTurnCommitStamp::turn_commit_hash`](crate::RuntimeTurnCommitStamp::turn_commit_hash).
///
/// Stable across processes and builds of the same format; excludes
/// `expected_head_revision` and the stamp itself, so a retry of the same logical commit
/// after a lost reply hashes the same even though its expected revision is now stale.
///
/// ```
/// use strata_core::{RuntimeCommit, commit_semantic_hash};
/// let commit = RuntimeCommit { session_id: "s".into(), expected_head_revision: Some(1), ..Default::default() };
/// let retry = RuntimeCommit { expected_head_revision: Some(7), ..commit.clone() };
/// assert_eq!(commit_semantic_hash(&commit), commit_semantic_hash(&retry));
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
    let mut hasher = blake3::Hasher::new();
    let semantic = (
        session_id,
        config,
        agent_frames,
        current_frame_id,
        graph,
        checkpoint,
        usage_deltas,
        completed_queue_claims,
        committed_attachment_ids,
    );
    hasher.write_all(b"strata.commit.v1\0").expect("hashing never fails to write");
    serde_json::to_writer(&mut hasher, &semantic).expect("hashing never fails to write");
    hasher.finalize().to_hex().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{GraphCommitDelta, RuntimeTurnCommitStamp};

    #[test]
    fn identical_bytes_give_identical_refs() {
        assert_eq!(blob_ref(b"abc"), blob_ref(b"abc"));
        assert_ne!(blob_ref(b"abc"), blob_ref(b"abd"));
        assert!(blob_ref(b"abc").starts_with("blake3:"));
    }

    #[test]
    fn commit_hash_ignores_revision_and_stamp_but_not_content() {
        let commit = RuntimeCommit {
            session_id: "s".into(),
            expected_head_revision: Some(3),
            graph: GraphCommitDelta::Unchanged { leaf_node_id: Some("n1".into()) },
            ..Default::default()
        };
        let mut retried = commit.clone();
        retried.expected_head_revision = Some(4);
        retried.turn_commit = Some(RuntimeTurnCommitStamp {
            session_id: "s".into(),
            turn_id: "t".into(),
            turn_commit_hash: "x".into(),
        });
        assert_eq!(commit_semantic_hash(&commit), commit_semantic_hash(&retried));
        let mut changed = commit.clone();
        changed.graph = GraphCommitDelta::Unchanged { leaf_node_id: Some("n2".into()) };
        assert_ne!(commit_semantic_hash(&commit), commit_semantic_hash(&changed));
    }
}
