//! Builders for test data: nodes, commits, queue drafts, usage rows, metadata and manifest
//! intents. The conformance suite uses them, and other crates' tests may reuse them.
//!
//! ```
//! use strata_testkit::fixtures::{commit, node};
//! let first = commit("s").expect(0).append([node("a", None), node("b", Some("a"))]).build();
//! assert_eq!(first.graph.leaf_node_id(), Some("b"));
//! assert_eq!(first.expected_head_revision, Some(0));
//! ```

use strata_core::*;

/// The session id the conformance suite uses for its main store.
pub const SESSION: &str = "conformance-session";

/// A node with deterministic opaque fields derived from its id.
pub fn node(id: &str, parent: Option<&str>) -> SessionNodeRecord {
    SessionNodeRecord {
        node_id: id.to_owned(),
        parent_node_id: parent.map(str::to_owned),
        payload: Bytes::from(format!("payload of {id}")),
        timestamp_ms: 1_000 + id.len() as u64,
        frame_id: Some(format!("frame-of-{id}")),
        cause: Some(format!("cause-of-{id}")),
    }
}

/// A chain of nodes `<prefix>0 → <prefix>1 → …`, the first one's parent being `parent`.
pub fn chain(prefix: &str, count: usize, parent: Option<&str>) -> Vec<SessionNodeRecord> {
    let mut parent = parent.map(str::to_owned);
    (0..count)
        .map(|index| {
            let id = format!("{prefix}{index}");
            let record = node(&id, parent.as_deref());
            parent = Some(id);
            record
        })
        .collect()
}

/// Token counters in the order input, output, cached input, reasoning.
pub fn usage(input: u64, output: u64, cached: u64, reasoning: u64) -> TokenUsage {
    TokenUsage {
        input_tokens: input,
        output_tokens: output,
        cached_input_tokens: cached,
        reasoning_tokens: reasoning,
    }
}

/// One usage row.
pub fn ledger(source: &str, model: &str, usage: TokenUsage) -> TokenLedgerEntry {
    TokenLedgerEntry { source: source.to_owned(), model: model.to_owned(), usage }
}

/// A checkpoint whose three parts carry payloads (`tag` makes their content distinct).
pub fn checkpoint_with_payloads(tag: &str) -> RuntimeCheckpoint {
    RuntimeCheckpoint {
        turn_state: Bytes::from(format!("turn state {tag}")),
        tool_state: CheckpointBlob::payload(format!("tool state {tag}")),
        plugin_snapshot: CheckpointBlob::payload(format!("plugin snapshot {tag}")),
        plugin_snapshot_revision: 7,
        execution_state: CheckpointBlob::payload(format!("execution state {tag}")),
    }
}

/// Builds a [`RuntimeCommit`]; start with [`commit`].
#[derive(Clone, Debug)]
pub struct CommitBuilder {
    commit: RuntimeCommit,
    stamp_turn: Option<String>,
}

/// A blind, empty commit for `session` (graph `Unchanged` with no leaf).
pub fn commit(session: &str) -> CommitBuilder {
    CommitBuilder {
        commit: RuntimeCommit { session_id: session.to_owned(), ..Default::default() },
        stamp_turn: None,
    }
}

impl CommitBuilder {
    /// Expects the head at `revision` (optimistic CAS).
    pub fn expect(mut self, revision: u64) -> Self {
        self.commit.expected_head_revision = Some(revision);
        self
    }

    /// Appends `nodes`; the leaf becomes the last appended node.
    pub fn append(mut self, nodes: impl IntoIterator<Item = SessionNodeRecord>) -> Self {
        let nodes: Vec<_> = nodes.into_iter().collect();
        let leaf_node_id = nodes.last().map(|node| node.node_id.clone());
        self.commit.graph = GraphCommitDelta::Append { nodes, leaf_node_id };
        self
    }

    /// Sets the head leaf explicitly (keeps appended nodes; `Unchanged` otherwise).
    pub fn leaf(mut self, leaf: Option<&str>) -> Self {
        let leaf = leaf.map(str::to_owned);
        match &mut self.commit.graph {
            GraphCommitDelta::Append { leaf_node_id, .. }
            | GraphCommitDelta::Unchanged { leaf_node_id } => *leaf_node_id = leaf,
            GraphCommitDelta::ReplaceFull(graph) => graph.leaf_node_id = leaf,
        }
        self
    }

    /// Replaces the whole graph with `nodes`; the leaf becomes the last node.
    pub fn replace(mut self, nodes: impl IntoIterator<Item = SessionNodeRecord>) -> Self {
        let nodes: Vec<_> = nodes.into_iter().collect();
        let leaf_node_id = nodes.last().map(|node| node.node_id.clone());
        self.commit.graph = GraphCommitDelta::ReplaceFull(SessionGraph { nodes, leaf_node_id });
        self
    }

    /// Sets the checkpoint.
    pub fn checkpoint(mut self, checkpoint: RuntimeCheckpoint) -> Self {
        self.commit.checkpoint = Some(checkpoint);
        self
    }

    /// Appends a usage row.
    pub fn usage(mut self, source: &str, model: &str, usage: TokenUsage) -> Self {
        self.commit.usage_deltas.push(ledger(source, model, usage));
        self
    }

    /// Sets the opaque config.
    pub fn config(mut self, config: impl Into<Bytes>) -> Self {
        self.commit.config = config.into();
        self
    }

    /// Sets the agent frames and current frame id.
    pub fn frames(mut self, frames: Vec<AgentFrame>, current: Option<&str>) -> Self {
        self.commit.agent_frames = frames;
        self.commit.current_frame_id = current.map(str::to_owned);
        self
    }

    /// Completes a queue claim in this commit.
    pub fn complete(mut self, completion: QueuedWorkCompletion) -> Self {
        self.commit.completed_queue_claims.push(completion);
        self
    }

    /// Stamps these attachment ids committed.
    pub fn attachments(mut self, ids: &[&str]) -> Self {
        self.commit.committed_attachment_ids.extend(ids.iter().map(|id| (*id).to_owned()));
        self
    }

    /// Adds a turn stamp for `turn_id` with the commit's semantic hash, computed at
    /// [`build`](Self::build) time (so it covers everything set on the builder).
    pub fn stamp(mut self, turn_id: &str) -> Self {
        self.stamp_turn = Some(turn_id.to_owned());
        self
    }

    /// The commit.
    pub fn build(self) -> RuntimeCommit {
        let mut commit = self.commit;
        if let Some(turn_id) = self.stamp_turn {
            commit.turn_commit = Some(RuntimeTurnCommitStamp {
                session_id: commit.session_id.clone(),
                turn_id,
                turn_commit_hash: commit_semantic_hash(&commit),
            });
        }
        commit
    }
}

/// Builds a [`QueuedWorkBatchDraft`]; start with [`draft`].
#[derive(Clone, Debug)]
pub struct DraftBuilder {
    draft: QueuedWorkBatchDraft,
}

/// A draft for `session`: no source key, `EarliestSafeBoundary`, `Join`, `PayloadDefault`,
/// available at 0, one payload `b"item"`.
pub fn draft(session: &str) -> DraftBuilder {
    DraftBuilder {
        draft: QueuedWorkBatchDraft {
            session_id: session.to_owned(),
            source_key: None,
            delivery_policy: DeliveryPolicy::EarliestSafeBoundary,
            slot_policy: SlotPolicy::Join,
            merge_key: MergeKey::PayloadDefault,
            available_at_ms: 0,
            payloads: vec![Bytes::from_static(b"item")],
        },
    }
}

impl DraftBuilder {
    /// Sets the idempotency source key.
    pub fn source_key(mut self, key: &str) -> Self {
        self.draft.source_key = Some(key.to_owned());
        self
    }

    /// Sets the delivery policy.
    pub fn delivery(mut self, policy: DeliveryPolicy) -> Self {
        self.draft.delivery_policy = policy;
        self
    }

    /// Makes the batch `Exclusive`.
    pub fn exclusive(mut self) -> Self {
        self.draft.slot_policy = SlotPolicy::Exclusive;
        self
    }

    /// Sets the merge key.
    pub fn merge_key(mut self, key: MergeKey) -> Self {
        self.draft.merge_key = key;
        self
    }

    /// Not claimable before `ms` (store clock).
    pub fn available_at(mut self, ms: u64) -> Self {
        self.draft.available_at_ms = ms;
        self
    }

    /// Sets the item payloads.
    pub fn payloads(mut self, payloads: impl IntoIterator<Item = Bytes>) -> Self {
        self.draft.payloads = payloads.into_iter().collect();
        self
    }

    /// The draft.
    pub fn build(self) -> QueuedWorkBatchDraft {
        self.draft
    }
}

/// A metadata record with every field set (`tag` varies the name).
pub fn meta(session: &str, tag: &str) -> SessionMeta {
    SessionMeta {
        session_id: session.to_owned(),
        session_name: Some(format!("séance {tag} ✓")),
        created_at_epoch_ms: 1_700_000_000_123,
        model: Some("model-x".to_owned()),
        cwd: Some("/tmp/ünïcode dir".to_owned()),
        relation: Some(SessionRelation {
            kind: "fork".to_owned(),
            session_id: "parent".to_owned(),
        }),
    }
}

/// An attachment intent.
pub fn intent(attachment_id: &str, session: &str, intent_at_ms: u64) -> AttachmentIntent {
    AttachmentIntent {
        attachment_id: attachment_id.to_owned(),
        session_id: session.to_owned(),
        canonical_uri: format!("mem://{session}/{attachment_id}"),
        intent_at_epoch_ms: intent_at_ms,
    }
}
