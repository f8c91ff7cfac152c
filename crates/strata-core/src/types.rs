//! The data a store persists: session graph, head, checkpoint, usage ledger, metadata,
//! queued work and the attachment manifest (`docs/contract.md` §3).
//!
//! Opaque runtime payloads are [`Bytes`]: the store keeps them byte-for-byte and never
//! interprets them, and cloning one is a reference-count bump, so a cache hit or a fan-out
//! never deep-copies a graph.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Opaque runtime bytes, stored and returned verbatim. Cloning is cheap (shared buffer).
pub type Payload = Bytes;

/// A content-addressed blob reference minted by a store (`blake3:<64 hex digits>`).
pub type BlobRef = String;

/// One node of a session graph.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionNodeRecord {
    /// Unique within a session.
    pub node_id: String,
    /// Parent node; `None` for a root. The store follows it to build active paths.
    pub parent_node_id: Option<String>,
    /// Opaque node body.
    pub payload: Payload,
    /// Opaque timestamp chosen by the runtime.
    pub timestamp_ms: u64,
    /// Opaque id of the agent frame that produced the node.
    pub frame_id: Option<String>,
    /// Opaque cause (why the node exists).
    pub cause: Option<String>,
}

/// A session graph (or the part of it a read scope selected).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionGraph {
    /// Nodes: insertion order for a full graph, root → leaf for an active path.
    pub nodes: Vec<SessionNodeRecord>,
    /// The node the session stands on.
    pub leaf_node_id: Option<String>,
}

/// Which part of the graph a [`load_session`](crate::RuntimePersistence::load_session) returns.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SessionReadScope {
    /// Every live node, in insertion order; the leaf is the head's leaf.
    FullGraph,
    /// The ancestry of `leaf_node_id` (or of the head's leaf when `None`), root → leaf.
    /// An unknown or absent leaf gives an empty path.
    ActivePath {
        /// The leaf to walk up from; `None` means the head's leaf.
        leaf_node_id: Option<String>,
    },
}

/// How a commit changes the graph.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GraphCommitDelta {
    /// No node changes; the head's leaf becomes `leaf_node_id`.
    Unchanged {
        /// The new head leaf.
        leaf_node_id: Option<String>,
    },
    /// Append nodes (their ids must be new); the head's leaf becomes `leaf_node_id`.
    Append {
        /// Nodes to add, in order.
        nodes: Vec<SessionNodeRecord>,
        /// The new head leaf.
        leaf_node_id: Option<String>,
    },
    /// Drop every stored node (tombstoned ones too) and insert these, in order.
    ReplaceFull(SessionGraph),
}

impl GraphCommitDelta {
    /// The nodes this delta writes (appended or replacing).
    pub fn nodes(&self) -> &[SessionNodeRecord] {
        match self {
            Self::Unchanged { .. } => &[],
            Self::Append { nodes, .. } => nodes,
            Self::ReplaceFull(graph) => &graph.nodes,
        }
    }

    /// The head leaf after this delta.
    pub fn leaf_node_id(&self) -> Option<&str> {
        match self {
            Self::Unchanged { leaf_node_id } | Self::Append { leaf_node_id, .. } => {
                leaf_node_id.as_deref()
            }
            Self::ReplaceFull(graph) => graph.leaf_node_id.as_deref(),
        }
    }
}

/// One checkpoint part: a blob ref and/or its payload.
///
/// In a commit: a present `payload` is stored as a content-addressed blob and its ref is
/// minted (any given ref is replaced); with no payload the given ref is carried unchanged
/// (it must name a blob the store holds). In a read: both are filled (hydrated).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointBlob {
    /// The content-addressed ref.
    pub blob_ref: Option<BlobRef>,
    /// The blob's bytes.
    pub payload: Option<Payload>,
}

impl CheckpointBlob {
    /// A part carrying bytes to be stored.
    pub fn payload(bytes: impl Into<Payload>) -> Self {
        Self { blob_ref: None, payload: Some(bytes.into()) }
    }

    /// A part naming an already stored blob.
    pub fn reference(blob_ref: impl Into<BlobRef>) -> Self {
        Self { blob_ref: Some(blob_ref.into()), payload: None }
    }
}

/// The checkpoint written by a commit and returned, hydrated, by a read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeCheckpoint {
    /// Opaque turn state, stored inline in the manifest.
    pub turn_state: Payload,
    /// Tool state blob.
    pub tool_state: CheckpointBlob,
    /// Plugin snapshot blob.
    pub plugin_snapshot: CheckpointBlob,
    /// Revision of the plugin snapshot (opaque to the store).
    pub plugin_snapshot_revision: u64,
    /// Execution state blob.
    pub execution_state: CheckpointBlob,
}

/// The stored checkpoint manifest: refs only, no blob bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SessionCheckpoint {
    /// Opaque turn state.
    pub turn_state: Payload,
    /// Tool state blob ref.
    pub tool_state_ref: Option<BlobRef>,
    /// Plugin snapshot blob ref.
    pub plugin_snapshot_ref: Option<BlobRef>,
    /// Plugin snapshot revision.
    pub plugin_snapshot_revision: u64,
    /// Execution state blob ref.
    pub execution_state_ref: Option<BlobRef>,
}

impl SessionCheckpoint {
    /// Every blob ref the manifest holds.
    pub fn blob_refs(&self) -> impl Iterator<Item = &BlobRef> {
        [&self.tool_state_ref, &self.plugin_snapshot_ref, &self.execution_state_ref]
            .into_iter()
            .flatten()
    }
}

/// One agent frame: opaque bytes plus the blob refs it holds (kept alive by `gc_unreachable`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentFrame {
    /// Frame id (opaque).
    pub frame_id: String,
    /// Opaque frame body.
    pub payload: Payload,
    /// Blob refs this frame holds; they count as reachable for garbage collection.
    pub blob_refs: Vec<BlobRef>,
}

/// Token counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TokenUsage {
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cached input tokens.
    pub cached_input_tokens: u64,
    /// Reasoning tokens.
    pub reasoning_tokens: u64,
}

impl TokenUsage {
    /// True when all four counters are zero.
    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }

    /// Counter-wise saturating sum.
    pub fn saturating_add(self, other: Self) -> Self {
        Self {
            input_tokens: self.input_tokens.saturating_add(other.input_tokens),
            output_tokens: self.output_tokens.saturating_add(other.output_tokens),
            cached_input_tokens: self.cached_input_tokens.saturating_add(other.cached_input_tokens),
            reasoning_tokens: self.reasoning_tokens.saturating_add(other.reasoning_tokens),
        }
    }
}

/// One usage row: counters for a (source, model) pair.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TokenLedgerEntry {
    /// Who spent the tokens (agent, tool, sub-agent…).
    pub source: String,
    /// Which model.
    pub model: String,
    /// The counters.
    pub usage: TokenUsage,
}

/// Merges usage rows by (source, model), summing counters, dropping all-zero rows;
/// the result is sorted by (source, model).
pub fn merge_token_ledger<'a>(
    entries: impl IntoIterator<Item = &'a TokenLedgerEntry>,
) -> Vec<TokenLedgerEntry> {
    let mut merged: std::collections::BTreeMap<(&str, &str), TokenUsage> = Default::default();
    for entry in entries {
        let slot = merged.entry((&entry.source, &entry.model)).or_default();
        *slot = slot.saturating_add(entry.usage);
    }
    merged
        .into_iter()
        .filter(|(_, usage)| !usage.is_zero())
        .map(|((source, model), usage)| TokenLedgerEntry {
            source: source.to_owned(),
            model: model.to_owned(),
            usage,
        })
        .collect()
}

/// The idempotency stamp of a final turn commit. The hash is opaque to the store; use
/// [`commit_semantic_hash`](crate::commit_semantic_hash) to compute one.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RuntimeTurnCommitStamp {
    /// Must equal the commit's session id.
    pub session_id: String,
    /// The turn being committed.
    pub turn_id: String,
    /// Hash of the logical commit.
    pub turn_commit_hash: String,
}

/// One atomic write of a session's settled state (`docs/contract.md` §5).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeCommit {
    /// The session this commit is for; binds the handle on first success.
    pub session_id: String,
    /// Optimistic CAS: `Some(e)` requires the head to be at `e` (absent head = 0); `None` is a blind write.
    pub expected_head_revision: Option<u64>,
    /// Opaque runtime config.
    pub config: Payload,
    /// Agent frames.
    pub agent_frames: Vec<AgentFrame>,
    /// Opaque id of the current frame.
    pub current_frame_id: Option<String>,
    /// Graph change.
    pub graph: GraphCommitDelta,
    /// New checkpoint; `None` keeps the head's current one.
    pub checkpoint: Option<RuntimeCheckpoint>,
    /// Usage rows appended to the ledger.
    pub usage_deltas: Vec<TokenLedgerEntry>,
    /// Final-turn idempotency stamp.
    pub turn_commit: Option<RuntimeTurnCommitStamp>,
    /// Queue claims completed by this commit (their batches are deleted).
    pub completed_queue_claims: Vec<QueuedWorkCompletion>,
    /// Attachment ids stamped committed in the manifest.
    pub committed_attachment_ids: Vec<String>,
}

impl Default for GraphCommitDelta {
    fn default() -> Self {
        Self::Unchanged { leaf_node_id: None }
    }
}

/// What a successful commit reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeCommitResult {
    /// The new head revision (`previous + 1`).
    pub head_revision: u64,
    /// Content-addressed ref of the stored checkpoint manifest, if the head has one.
    pub checkpoint_ref: Option<BlobRef>,
    /// The stored checkpoint manifest, if the head has one.
    pub manifest: Option<SessionCheckpoint>,
}

/// A consistent snapshot of a session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistedSessionRead {
    /// Session id.
    pub session_id: String,
    /// Head revision.
    pub head_revision: u64,
    /// Opaque config of the head.
    pub config: Payload,
    /// Agent frames of the head.
    pub agent_frames: Vec<AgentFrame>,
    /// Current frame id of the head.
    pub current_frame_id: Option<String>,
    /// Graph per the requested scope.
    pub graph: SessionGraph,
    /// Ref of the head's checkpoint manifest.
    pub checkpoint_ref: Option<BlobRef>,
    /// The head's checkpoint, hydrated from its blobs.
    pub checkpoint: Option<RuntimeCheckpoint>,
    /// Merged usage ledger (sorted by source, model; all-zero rows dropped).
    pub token_ledger: Vec<TokenLedgerEntry>,
}

/// How a session relates to another (fork, sub-agent…). Opaque to the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRelation {
    /// Relation kind, e.g. `"fork"`.
    pub kind: String,
    /// The related session.
    pub session_id: String,
}

/// Session metadata: one last-writer-wins record per store, round-tripped exactly.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionMeta {
    /// Session id.
    pub session_id: String,
    /// Display name.
    pub session_name: Option<String>,
    /// Creation time (opaque to the store).
    pub created_at_epoch_ms: u64,
    /// Model name.
    pub model: Option<String>,
    /// Working directory.
    pub cwd: Option<String>,
    /// Relation to another session.
    pub relation: Option<SessionRelation>,
}

/// Result of [`vacuum`](crate::RuntimePersistence::vacuum).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VacuumReport {
    /// Tombstoned nodes physically removed by this call.
    pub removed_node_count: u64,
}

/// Result of [`gc_unreachable`](crate::RuntimePersistence::gc_unreachable).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcReport {
    /// Roots considered (1 with a head checkpoint, else 0).
    pub root_count: u64,
    /// Blobs kept.
    pub retained_blob_count: u64,
    /// Blobs deleted.
    pub deleted_blob_count: u64,
}

/// How strongly an acknowledged write survives. Ordered: `Inline < Durable`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum DurabilityTier {
    /// State does not survive the process.
    #[default]
    Inline,
    /// An acknowledged write survives a process crash and a power loss (fsynced before return).
    Durable,
}

/// When a queued batch may be delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DeliveryPolicy {
    /// At the earliest safe boundary, including mid-turn checkpoints.
    EarliestSafeBoundary,
    /// Only once the current turn has committed (idle boundary).
    AfterCurrentTurnCommit,
}

/// Whether a batch is claimed alone or joins its neighbours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SlotPolicy {
    /// Claimed alone.
    Exclusive,
    /// Joins following `Join` batches with the same delivery policy and merge key.
    Join,
}

/// Grouping key for `Join` batches; compared by equality only.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MergeKey {
    /// Never merge on key grounds (still equal to another `Never`).
    Never,
    /// The payload's default grouping.
    PayloadDefault,
    /// A named group.
    Group(String),
}

/// A batch to enqueue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedWorkBatchDraft {
    /// Owning session.
    pub session_id: String,
    /// Idempotency key: while a batch with this (session, key) exists, enqueue returns it.
    pub source_key: Option<String>,
    /// Delivery policy.
    pub delivery_policy: DeliveryPolicy,
    /// Slot policy.
    pub slot_policy: SlotPolicy,
    /// Merge key.
    pub merge_key: MergeKey,
    /// Not claimable before this time (store clock, epoch ms).
    pub available_at_ms: u64,
    /// Opaque item payloads.
    pub payloads: Vec<Payload>,
}

/// One item of a stored batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedWorkItem {
    /// Derived from the batch id (`<batch_id>/<index>`).
    pub item_id: String,
    /// Opaque payload.
    pub payload: Payload,
}

/// A stored batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedWorkBatch {
    /// Opaque unique id.
    pub batch_id: String,
    /// Owning session.
    pub session_id: String,
    /// Strictly increasing, never reused within a store.
    pub enqueue_seq: u64,
    /// Idempotency key.
    pub source_key: Option<String>,
    /// Delivery policy.
    pub delivery_policy: DeliveryPolicy,
    /// Slot policy.
    pub slot_policy: SlotPolicy,
    /// Merge key.
    pub merge_key: MergeKey,
    /// Not claimable before this time.
    pub available_at_ms: u64,
    /// When the store accepted it (store clock).
    pub enqueued_at_ms: u64,
    /// Items with ids.
    pub items: Vec<QueuedWorkItem>,
}

/// The boundary at which a runtime claims work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum QueuedWorkClaimBoundary {
    /// Mid-turn checkpoint: only `EarliestSafeBoundary` heads are claimable.
    ActiveTurnCheckpoint,
    /// Between turns: any head is claimable.
    Idle,
}

/// A claim on one or more batches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedWorkClaim {
    /// Session of the batches.
    pub session_id: String,
    /// Unique per claim.
    pub claim_id: String,
    /// Who claimed.
    pub owner_id: String,
    /// Unique per claim; required to renew or complete.
    pub lease_token: String,
    /// The head batch's fencing counter after this claim (strictly increasing per batch).
    pub fencing_token: u64,
    /// Claim time (store clock).
    pub claimed_at_epoch_ms: u64,
    /// Lease expiry (store clock).
    pub expires_at_epoch_ms: u64,
    /// Claimed batches, ascending `enqueue_seq`.
    pub batches: Vec<QueuedWorkBatch>,
}

impl QueuedWorkClaim {
    /// Ids of the claimed batches, in order.
    pub fn batch_ids(&self) -> Vec<String> {
        self.batches.iter().map(|batch| batch.batch_id.clone()).collect()
    }

    /// The completion that settles every batch of this claim.
    pub fn completion(&self) -> QueuedWorkCompletion {
        QueuedWorkCompletion {
            session_id: self.session_id.clone(),
            claim_id: self.claim_id.clone(),
            lease_token: self.lease_token.clone(),
            batch_ids: self.batch_ids(),
        }
    }
}

/// Completion of a claim, applied inside a commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedWorkCompletion {
    /// Must equal the commit's session.
    pub session_id: String,
    /// The claim.
    pub claim_id: String,
    /// The claim's lease token.
    pub lease_token: String,
    /// Every batch held under the claim.
    pub batch_ids: Vec<String>,
}

/// A write-ahead intent recorded before attachment bytes are written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentIntent {
    /// Content-addressed attachment id.
    pub attachment_id: String,
    /// Session that writes it.
    pub session_id: String,
    /// Where the bytes live.
    pub canonical_uri: String,
    /// Intent time (epoch ms).
    pub intent_at_epoch_ms: u64,
}

/// A manifest row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentManifestEntry {
    /// Content-addressed attachment id.
    pub attachment_id: String,
    /// Session that wrote it.
    pub session_id: String,
    /// Where the bytes live.
    pub canonical_uri: String,
    /// Intent time (epoch ms).
    pub intent_at_epoch_ms: u64,
    /// Commit time; `None` while uncommitted.
    pub committed_at_epoch_ms: Option<u64>,
}

impl AttachmentManifestEntry {
    /// The uncommitted row an intent records.
    pub fn uncommitted(intent: &AttachmentIntent) -> Self {
        Self {
            attachment_id: intent.attachment_id.clone(),
            session_id: intent.session_id.clone(),
            canonical_uri: intent.canonical_uri.clone(),
            intent_at_epoch_ms: intent.intent_at_epoch_ms,
            committed_at_epoch_ms: None,
        }
    }
}
