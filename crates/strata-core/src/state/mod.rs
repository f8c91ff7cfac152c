//! The pure, I/O-free model of one store's durable state: the single implementation of the
//! contract's semantics (`docs/contract.md` §4–§6), shared by every backend.
//!
//! # Plan / apply
//!
//! Every write is split in two:
//!
//! - a **plan** (`plan_*`, or [`SessionState::plan`] over a [`Request`]) reads the state, runs
//!   every check, and resolves everything the write needs (new ids, times, blob refs and
//!   bytes, the new head, the stamp record with its result) into a [`Mutation`], returned with
//!   the call's output in a [`Planned`]. A failed check returns an error and plans nothing, so
//!   a failed write has no effect at all. A write that changes nothing (a stamped retry, an
//!   enqueue deduped by its source key, an abandon of a stale claim) plans no mutation.
//! - [`SessionState::apply`] performs a mutation: infallible, deterministic, reading no clock
//!   and minting no ids. Replaying the same mutations onto the same snapshot yields the
//!   identical state, which is what a write-ahead log needs.
//!
//! The in-memory backend plans and applies under one lock ([`SessionState::execute`]); the
//! file backend plans, appends the serialized mutation to its log, then applies it to its
//! image (whose graph sits on a base read lazily from its last snapshot: see [`GraphBase`]).
//!
//! # Costs
//!
//! `load_node` is one index lookup (a hash lookup in the graph's overlay, the base's own
//! index otherwise) and an `ActivePath` read O(path length) lookups (parents are followed by
//! id); only the nodes a read returns are materialized from a base. A commit costs O(size of its delta) plus the session's queue when it completes
//! claims: nothing here clones or scans the whole graph per commit. `FullGraph` reads,
//! `vacuum` and `ReplaceFull` are linear in the graph, as they must be.

mod graph;
mod manifest;
mod queue;
mod stamps;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

pub use graph::{GraphBase, StoredGraph, StoredNode};
pub use manifest::{ManifestMutation, ManifestState};
pub use queue::{ClaimHold, QueueMutation, QueueState, StoredBatch};
pub use stamps::{StampBase, StoredStamps};

use graph::GraphState;
use stamps::StampState;

use crate::call::{Request, Response};
use crate::error::StoreError;
use crate::hash::{blob_ref, checkpoint_ref};
use crate::types::*;

/// A planned write: the mutation to apply (none when nothing changes) and the call's output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planned<T> {
    /// What to apply; `None` when the write changes nothing.
    pub mutation: Option<Mutation>,
    /// What the call returns once the mutation is applied.
    pub output: T,
}

impl<T> Planned<T> {
    /// The same plan with its output transformed.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Planned<U> {
        Planned { mutation: self.mutation, output: f(self.output) }
    }
}

/// The head of a session: what the last successful commit wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// The session the store is bound to.
    pub session_id: String,
    /// Head revision (1 after the first commit).
    pub revision: u64,
    /// Opaque config.
    pub config: Payload,
    /// Agent frames.
    pub agent_frames: Vec<AgentFrame>,
    /// Current frame id.
    pub current_frame_id: Option<String>,
    /// The node the session stands on.
    pub leaf_node_id: Option<String>,
    /// Number of live (not tombstoned) nodes.
    pub live_node_count: u64,
    /// Ref of the checkpoint manifest.
    pub checkpoint_ref: Option<BlobRef>,
    /// The checkpoint manifest (refs only).
    pub checkpoint: Option<SessionCheckpoint>,
}

/// What a stamped commit recorded: its hash and the result returned to a retry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StampRecord {
    /// The stamp's `turn_commit_hash`.
    pub turn_commit_hash: String,
    /// The result of the commit that recorded it.
    pub result: RuntimeCommitResult,
}

/// The effects of one commit, fully resolved by [`SessionState::plan_commit`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitEffects {
    /// The new head.
    pub head: Head,
    /// The graph delta (the head already carries the new leaf and live count).
    pub graph: GraphCommitDelta,
    /// Checkpoint blobs the store does not hold yet.
    pub blobs: Vec<(BlobRef, Bytes)>,
    /// Usage rows to add to the ledger.
    pub usage_deltas: Vec<TokenLedgerEntry>,
    /// Batches of completed claims to delete.
    pub completed_batch_ids: Vec<String>,
    /// Manifest rows of the session to stamp at `now_ms`.
    pub committed_attachment_ids: Vec<String>,
    /// The commit time (stamps attachment rows).
    pub now_ms: u64,
    /// The turn stamp to record: (turn id, record).
    pub stamp: Option<(String, StampRecord)>,
}

/// One resolved write. Serializable, so a durable backend can log it and replay it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mutation {
    /// A successful commit.
    Commit(Box<CommitEffects>),
    /// Replace the metadata record.
    SaveMeta(SessionMeta),
    /// Tombstone these live nodes.
    Tombstone {
        /// Ids of live nodes to hide.
        node_ids: Vec<String>,
    },
    /// Physically remove every tombstoned node.
    Vacuum,
    /// Delete these blobs.
    DeleteBlobs {
        /// Refs to delete.
        refs: Vec<BlobRef>,
    },
    /// A queue change.
    Queue(QueueMutation),
    /// A manifest change.
    Manifest(ManifestMutation),
}

/// Everything one store holds (see the module docs for the plan/apply discipline).
///
/// Its serde form holds everything **but the graph and the turn stamps**, the two parts that
/// grow with a session's age: a durable backend stores them separately, from
/// [`SessionState::stored_graph`] and [`SessionState::stored_stamps`], and puts them back as a
/// [`GraphBase`] and a [`StampBase`] with [`SessionState::rebase_graph`] and
/// [`SessionState::rebase_stamps`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionState {
    head: Option<Head>,
    #[serde(skip)]
    graph: GraphState,
    blobs: HashMap<BlobRef, Bytes>,
    /// Merged usage: source → model → counters.
    usage: BTreeMap<String, BTreeMap<String, TokenUsage>>,
    /// Turn stamps: session → turn id → record.
    #[serde(skip)]
    stamps: StampState,
    meta: Option<SessionMeta>,
    queue: QueueState,
    manifest: ManifestState,
}

fn invalid(message: impl Into<String>) -> StoreError {
    StoreError::InvalidInput(message.into())
}

fn planned<T>(mutation: Option<Mutation>, output: T) -> Planned<T> {
    Planned { mutation, output }
}

impl SessionState {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The head, if a commit ever succeeded.
    pub fn head(&self) -> Option<&Head> {
        self.head.as_ref()
    }

    /// The queued work of every session of this store.
    pub fn queue(&self) -> &QueueState {
        &self.queue
    }

    /// The attachment manifest.
    pub fn manifest(&self) -> &ManifestState {
        &self.manifest
    }

    /// The stored blob with this ref.
    pub fn blob(&self, blob_ref: &str) -> Option<&Bytes> {
        self.blobs.get(blob_ref)
    }

    /// Every stored blob, in no particular order (for tools that inspect a store).
    pub fn blobs(&self) -> impl Iterator<Item = (&str, &Bytes)> {
        self.blobs.iter().map(|(blob_ref, bytes)| (blob_ref.as_str(), bytes))
    }

    // ----- reads -------------------------------------------------------------------------

    /// `load_session`: `None` iff no commit ever succeeded; else a consistent snapshot.
    pub fn load_session(
        &self,
        scope: &SessionReadScope,
    ) -> Result<Option<PersistedSessionRead>, StoreError> {
        let Some(head) = &self.head else {
            return Ok(None);
        };
        let graph = match scope {
            SessionReadScope::FullGraph => SessionGraph {
                nodes: self.graph.live_nodes()?,
                leaf_node_id: head.leaf_node_id.clone(),
            },
            SessionReadScope::ActivePath { leaf_node_id } => {
                let leaf = leaf_node_id.as_ref().or(head.leaf_node_id.as_ref());
                let nodes = match leaf {
                    Some(leaf) => self.graph.active_path(leaf)?,
                    None => Vec::new(),
                };
                SessionGraph { nodes, leaf_node_id: leaf.cloned() }
            }
        };
        let checkpoint =
            head.checkpoint.as_ref().map(|manifest| self.hydrate(manifest)).transpose()?;
        Ok(Some(PersistedSessionRead {
            session_id: head.session_id.clone(),
            head_revision: head.revision,
            config: head.config.clone(),
            agent_frames: head.agent_frames.clone(),
            current_frame_id: head.current_frame_id.clone(),
            graph,
            checkpoint_ref: head.checkpoint_ref.clone(),
            checkpoint,
            token_ledger: self.token_ledger(),
        }))
    }

    /// The merged ledger, sorted by (source, model), all-zero rows dropped.
    fn token_ledger(&self) -> Vec<TokenLedgerEntry> {
        self.usage
            .iter()
            .flat_map(|(source, models)| {
                models.iter().filter(|(_, usage)| !usage.is_zero()).map(|(model, usage)| {
                    TokenLedgerEntry { source: source.clone(), model: model.clone(), usage: *usage }
                })
            })
            .collect()
    }

    /// Fills a manifest's payloads from the blobs; a missing blob is corrupt data.
    fn hydrate(&self, manifest: &SessionCheckpoint) -> Result<RuntimeCheckpoint, StoreError> {
        let part = |blob_ref: &Option<BlobRef>| -> Result<CheckpointBlob, StoreError> {
            let Some(blob_ref) = blob_ref else {
                return Ok(CheckpointBlob::default());
            };
            let bytes = self.blobs.get(blob_ref).ok_or_else(|| StoreError::CorruptData {
                location: format!("blob {blob_ref}"),
                detail: "the head's checkpoint names a blob the store does not hold".into(),
            })?;
            Ok(CheckpointBlob { blob_ref: Some(blob_ref.clone()), payload: Some(bytes.clone()) })
        };
        Ok(RuntimeCheckpoint {
            turn_state: manifest.turn_state.clone(),
            tool_state: part(&manifest.tool_state_ref)?,
            plugin_snapshot: part(&manifest.plugin_snapshot_ref)?,
            plugin_snapshot_revision: manifest.plugin_snapshot_revision,
            execution_state: part(&manifest.execution_state_ref)?,
        })
    }

    /// `load_node`: the live node with this id.
    pub fn load_node(&self, node_id: &str) -> Result<Option<SessionNodeRecord>, StoreError> {
        self.graph.load(node_id)
    }

    /// Every stored node, tombstoned ones included, in insertion order: what a durable
    /// backend writes as the graph of a snapshot.
    pub fn stored_graph(&self) -> StoredGraph<'_> {
        self.graph.stored()
    }

    /// Replaces the graph by `base`, which must hold exactly what [`Self::stored_graph`]
    /// described (a compaction installing the base it just wrote, or an open attaching the
    /// snapshot's graph to the rest of the state decoded from it).
    pub fn rebase_graph(&mut self, base: Arc<dyn GraphBase>) {
        self.graph.rebase(base);
    }

    /// Every turn stamp (the base named, the overlay's listed): what a durable backend writes
    /// as the stamps of a snapshot.
    pub fn stored_stamps(&self) -> StoredStamps<'_> {
        self.stamps.stored()
    }

    /// Replaces the stamps by `base`, which must hold exactly what [`Self::stored_stamps`]
    /// described.
    pub fn rebase_stamps(&mut self, base: Arc<dyn StampBase>) {
        self.stamps.rebase(base);
    }

    /// Whether planning `request` may read a stored stamp from the stamp base (a stamped
    /// commit whose turn the base may hold: a retry), which a durable backend reads from
    /// storage. Every other plan uses memory alone.
    pub fn plan_touches_base(&self, request: &Request<'_>) -> bool {
        match request {
            Request::CommitRuntimeState { commit } => {
                commit.turn_commit.as_ref().is_some_and(|stamp| {
                    stamp.session_id == commit.session_id
                        && self.stamps.lookup_reads_base(&stamp.session_id, &stamp.turn_id)
                })
            }
            _ => false,
        }
    }

    /// `load_session_meta`: the last saved record.
    pub fn load_session_meta(&self) -> Option<SessionMeta> {
        self.meta.clone()
    }

    /// Whether serving the read `request` may materialize nodes from the graph's base, which a
    /// durable backend reads from storage (so it serves such a read off its async callers'
    /// threads). Every other read is answered from memory alone.
    pub fn read_touches_base(&self, request: &Request<'_>) -> bool {
        match request {
            Request::LoadNode { node_id } => self.graph.load_reads_base(node_id),
            Request::LoadSession { .. } => self.head.is_some() && self.graph.has_base_entries(),
            _ => false,
        }
    }

    /// Serves a read request at `now_ms`; a write request is a `Backend` error (a caller bug).
    pub fn read(&self, request: &Request<'_>, now_ms: u64) -> Result<Response, StoreError> {
        Ok(match request {
            Request::LoadSession { scope } => {
                Response::Session(self.load_session(scope)?.map(Box::new))
            }
            Request::LoadNode { node_id } => Response::Node(self.load_node(node_id)?),
            Request::LoadSessionMeta => Response::Meta(self.load_session_meta()),
            Request::ListQueuedWork { session_id } => {
                Response::Batches(self.queue.list(session_id))
            }
            Request::ListPendingQueuedWork { session_id } => {
                Response::Batches(self.queue.list_pending(session_id, now_ms))
            }
            Request::ListUncommitted { older_than_ms } => {
                Response::Uncommitted(self.manifest.list_uncommitted(*older_than_ms))
            }
            write => {
                return Err(StoreError::Backend(format!(
                    "SessionState::read called with the write {}",
                    write.operation()
                )));
            }
        })
    }

    // ----- writes: one entry point ------------------------------------------------------

    /// Plans any request at `now_ms` (a read plans no mutation and returns its answer).
    pub fn plan(
        &self,
        request: &Request<'_>,
        now_ms: u64,
    ) -> Result<Planned<Response>, StoreError> {
        Ok(match request {
            Request::CommitRuntimeState { commit } => {
                self.plan_commit(commit, now_ms)?.map(Response::Committed)
            }
            Request::SaveSessionMeta { meta } => self.plan_save_meta(meta).map(done),
            Request::TombstoneNodes { ids } => self.plan_tombstone(ids).map(done),
            Request::Vacuum => self.plan_vacuum().map(Response::Vacuumed),
            Request::GcUnreachable => self.plan_gc().map(Response::Collected),
            Request::EnqueueQueuedWork { draft } => {
                self.queue.plan_enqueue(draft, now_ms)?.map(Response::Enqueued)
            }
            Request::ClaimReadyQueuedWork {
                session_id,
                owner_id,
                boundary,
                lease_ttl_ms,
                max_batches,
            } => self
                .queue
                .plan_claim(session_id, owner_id, *boundary, *lease_ttl_ms, *max_batches, now_ms)
                .map(Response::Claim),
            Request::ClaimReadyQueuedWorkByBatchIds {
                session_id,
                owner_id,
                boundary,
                lease_ttl_ms,
                batch_ids,
            } => self
                .queue
                .plan_claim_by_batch_ids(
                    session_id,
                    owner_id,
                    *boundary,
                    *lease_ttl_ms,
                    batch_ids,
                    now_ms,
                )
                .map(Response::Claim),
            Request::RenewQueuedWorkClaim { claim, lease_ttl_ms } => {
                self.queue.plan_renew(claim, *lease_ttl_ms, now_ms)?.map(Response::Renewed)
            }
            Request::AbandonQueuedWorkClaim { claim } => self.queue.plan_abandon(claim).map(done),
            Request::CancelQueuedWorkBatch { session_id, batch_id } => {
                self.queue.plan_cancel(session_id, batch_id, now_ms).map(Response::Cancelled)
            }
            Request::RecordIntent { intent } => self.manifest.plan_record_intent(intent)?.map(done),
            Request::CommitRefs { session_id, attachment_ids } => {
                self.manifest.plan_commit_refs(session_id, attachment_ids, now_ms).map(done)
            }
            Request::Forget { attachment_id } => self.manifest.plan_forget(attachment_id).map(done),
            read => planned(None, self.read(read, now_ms)?),
        })
    }

    /// Plans then applies `request` (for backends that need no log between the two).
    pub fn execute(&mut self, request: &Request<'_>, now_ms: u64) -> Result<Response, StoreError> {
        let Planned { mutation, output } = self.plan(request, now_ms)?;
        if let Some(mutation) = &mutation {
            self.apply(mutation);
        }
        Ok(output)
    }

    // ----- writes: planners -------------------------------------------------------------

    /// The commit algorithm (`docs/contract.md` §5): binding, stamp, CAS, queue ownership, input
    /// validation, in this order; then the effects, resolved into one mutation.
    pub fn plan_commit(
        &self,
        commit: &RuntimeCommit,
        now_ms: u64,
    ) -> Result<Planned<RuntimeCommitResult>, StoreError> {
        let session_id = &commit.session_id;
        // 1. Binding.
        if let Some(head) = &self.head
            && head.session_id != *session_id
        {
            return Err(StoreError::SessionBindingMismatch {
                bound_session_id: head.session_id.clone(),
                attempted_session_id: session_id.clone(),
            });
        }
        // 2. Stamp.
        if let Some(stamp) = &commit.turn_commit {
            let conflict = || StoreError::RuntimeTurnCommitConflict {
                session_id: stamp.session_id.clone(),
                turn_id: stamp.turn_id.clone(),
            };
            if stamp.session_id != *session_id {
                return Err(conflict());
            }
            if let Some(record) = self.stamps.get(session_id, &stamp.turn_id)? {
                return if record.turn_commit_hash == stamp.turn_commit_hash {
                    Ok(planned(None, record.result.clone()))
                } else {
                    Err(conflict())
                };
            }
        }
        // 3. CAS.
        let actual = self.head.as_ref().map_or(0, |head| head.revision);
        if let Some(expected) = commit.expected_head_revision
            && expected != actual
        {
            return Err(StoreError::HeadRevisionConflict { expected: Some(expected), actual });
        }
        // 4. Queue ownership of every completion.
        let completed_batch_ids =
            self.queue.check_completions(session_id, &commit.completed_queue_claims)?;
        // 5. Input validation.
        self.validate_commit(commit)?;
        let (checkpoint, blobs) = match &commit.checkpoint {
            Some(checkpoint) => {
                let (manifest, blobs) = self.resolve_checkpoint(checkpoint)?;
                (Some(manifest), blobs)
            }
            None => (self.head.as_ref().and_then(|head| head.checkpoint.clone()), Vec::new()),
        };

        // Effects.
        let live_node_count = match &commit.graph {
            GraphCommitDelta::Unchanged { .. } => self.live_node_count(),
            GraphCommitDelta::Append { nodes, .. } => self.live_node_count() + nodes.len() as u64,
            GraphCommitDelta::ReplaceFull(graph) => graph.nodes.len() as u64,
        };
        let checkpoint_ref = checkpoint.as_ref().map(checkpoint_ref);
        let result = RuntimeCommitResult {
            head_revision: actual + 1,
            checkpoint_ref: checkpoint_ref.clone(),
            manifest: checkpoint.clone(),
        };
        let head = Head {
            session_id: session_id.clone(),
            revision: actual + 1,
            config: commit.config.clone(),
            agent_frames: commit.agent_frames.clone(),
            current_frame_id: commit.current_frame_id.clone(),
            leaf_node_id: commit.graph.leaf_node_id().map(str::to_owned),
            live_node_count,
            checkpoint_ref,
            checkpoint,
        };
        let stamp = commit.turn_commit.as_ref().map(|stamp| {
            let record = StampRecord {
                turn_commit_hash: stamp.turn_commit_hash.clone(),
                result: result.clone(),
            };
            (stamp.turn_id.clone(), record)
        });
        let effects = CommitEffects {
            head,
            graph: commit.graph.clone(),
            blobs,
            usage_deltas: commit.usage_deltas.clone(),
            completed_batch_ids,
            committed_attachment_ids: self
                .manifest
                .stampable(session_id, &commit.committed_attachment_ids),
            now_ms,
            stamp,
        };
        Ok(planned(Some(Mutation::Commit(Box::new(effects))), result))
    }

    fn live_node_count(&self) -> u64 {
        self.head.as_ref().map_or(0, |head| head.live_node_count)
    }

    /// Commit step 5: ids non-empty, appended ids new and unique, leaf id non-empty.
    fn validate_commit(&self, commit: &RuntimeCommit) -> Result<(), StoreError> {
        if commit.session_id.is_empty() {
            return Err(invalid("a commit needs a session id"));
        }
        if commit.turn_commit.as_ref().is_some_and(|stamp| stamp.turn_id.is_empty()) {
            return Err(invalid("a turn stamp needs a turn id"));
        }
        if commit.graph.leaf_node_id() == Some("") {
            return Err(invalid("the leaf node id is empty"));
        }
        if commit.committed_attachment_ids.iter().any(String::is_empty) {
            return Err(invalid("a committed attachment id is empty"));
        }
        let appending = matches!(commit.graph, GraphCommitDelta::Append { .. });
        let mut seen = HashSet::new();
        for node in commit.graph.nodes() {
            if node.node_id.is_empty() {
                return Err(invalid("a node id is empty"));
            }
            if node.parent_node_id.as_deref() == Some("") {
                return Err(invalid(format!("node {:?} has an empty parent id", node.node_id)));
            }
            if !seen.insert(node.node_id.as_str()) {
                return Err(invalid(format!(
                    "node {:?} appears twice in the commit",
                    node.node_id
                )));
            }
            if appending && self.graph.is_live(&node.node_id) {
                return Err(invalid(format!("node {:?} already exists", node.node_id)));
            }
        }
        Ok(())
    }

    /// Resolves a checkpoint into its manifest and the blobs to store: payload parts are
    /// content-addressed; ref-only parts must name a blob held (or written by this commit).
    fn resolve_checkpoint(
        &self,
        checkpoint: &RuntimeCheckpoint,
    ) -> Result<(SessionCheckpoint, Vec<(BlobRef, Bytes)>), StoreError> {
        let parts = [
            ("tool_state", &checkpoint.tool_state),
            ("plugin_snapshot", &checkpoint.plugin_snapshot),
            ("execution_state", &checkpoint.execution_state),
        ];
        let mut blobs: Vec<(BlobRef, Bytes)> = Vec::new();
        for (_, part) in parts {
            if let Some(payload) = &part.payload {
                let minted = blob_ref(payload);
                if !self.blobs.contains_key(&minted) && !blobs.iter().any(|(r, _)| *r == minted) {
                    blobs.push((minted, payload.clone()));
                }
            }
        }
        let mut refs = parts.into_iter().map(|(name, part)| match (&part.payload, &part.blob_ref) {
            (Some(payload), _) => Ok(Some(blob_ref(payload))),
            (None, Some(given)) => {
                if self.blobs.contains_key(given) || blobs.iter().any(|(r, _)| r == given) {
                    Ok(Some(given.clone()))
                } else {
                    Err(invalid(format!(
                        "checkpoint part {name} names blob {given:?}, which this store does not hold"
                    )))
                }
            }
            (None, None) => Ok(None),
        });
        let mut next = || refs.next().expect("three checkpoint parts");
        let manifest = SessionCheckpoint {
            turn_state: checkpoint.turn_state.clone(),
            tool_state_ref: next()?,
            plugin_snapshot_ref: next()?,
            plugin_snapshot_revision: checkpoint.plugin_snapshot_revision,
            execution_state_ref: next()?,
        };
        Ok((manifest, blobs))
    }

    /// `save_session_meta`: replaces the record (no mutation when identical).
    pub fn plan_save_meta(&self, meta: &SessionMeta) -> Planned<()> {
        let changed = self.meta.as_ref() != Some(meta);
        planned(changed.then(|| Mutation::SaveMeta(meta.clone())), ())
    }

    /// `tombstone_nodes`: hides the live ones among `ids`; unknown ids are ignored.
    pub fn plan_tombstone(&self, ids: &[String]) -> Planned<()> {
        let mut seen = HashSet::new();
        let node_ids: Vec<String> = ids
            .iter()
            .filter(|id| self.graph.is_live(id) && seen.insert(id.as_str()))
            .cloned()
            .collect();
        planned((!node_ids.is_empty()).then_some(Mutation::Tombstone { node_ids }), ())
    }

    /// `vacuum`: removes every tombstoned node; reports how many.
    pub fn plan_vacuum(&self) -> Planned<VacuumReport> {
        let removed = self.graph.tombstoned_count() as u64;
        planned(
            (removed > 0).then_some(Mutation::Vacuum),
            VacuumReport { removed_node_count: removed },
        )
    }

    /// `gc_unreachable`: roots are the head's checkpoint manifest and its agent frames' refs;
    /// every other blob is deleted.
    pub fn plan_gc(&self) -> Planned<GcReport> {
        let mut reachable: HashSet<&str> = HashSet::new();
        let mut root_count = 0;
        if let Some(head) = &self.head {
            if let Some(manifest) = &head.checkpoint {
                root_count = 1;
                reachable.extend(manifest.blob_refs().map(String::as_str));
            }
            reachable.extend(
                head.agent_frames
                    .iter()
                    .flat_map(|frame| frame.blob_refs.iter().map(String::as_str)),
            );
        }
        let mut refs: Vec<BlobRef> =
            self.blobs.keys().filter(|r| !reachable.contains(r.as_str())).cloned().collect();
        refs.sort();
        let report = GcReport {
            root_count,
            retained_blob_count: (self.blobs.len() - refs.len()) as u64,
            deleted_blob_count: refs.len() as u64,
        };
        planned((!refs.is_empty()).then_some(Mutation::DeleteBlobs { refs }), report)
    }

    // ----- apply ------------------------------------------------------------------------

    /// Performs a planned mutation: infallible, deterministic, no clock, no id minting.
    pub fn apply(&mut self, mutation: &Mutation) {
        match mutation {
            Mutation::Commit(effects) => self.apply_commit(effects),
            Mutation::SaveMeta(meta) => self.meta = Some(meta.clone()),
            Mutation::Tombstone { node_ids } => {
                let mut hidden = 0;
                for node_id in node_ids {
                    hidden += u64::from(self.graph.tombstone(node_id));
                }
                if let Some(head) = &mut self.head {
                    head.live_node_count = head.live_node_count.saturating_sub(hidden);
                }
            }
            Mutation::Vacuum => self.graph.vacuum(),
            Mutation::DeleteBlobs { refs } => {
                for blob_ref in refs {
                    self.blobs.remove(blob_ref);
                }
            }
            Mutation::Queue(change) => self.queue.apply(change),
            Mutation::Manifest(change) => self.manifest.apply(change),
        }
    }

    fn apply_commit(&mut self, effects: &CommitEffects) {
        let session_id = &effects.head.session_id;
        for (blob_ref, bytes) in &effects.blobs {
            self.blobs.insert(blob_ref.clone(), bytes.clone());
        }
        for entry in &effects.usage_deltas {
            let slot = self
                .usage
                .entry(entry.source.clone())
                .or_default()
                .entry(entry.model.clone())
                .or_default();
            *slot = slot.saturating_add(entry.usage);
        }
        match &effects.graph {
            GraphCommitDelta::Unchanged { .. } => {}
            GraphCommitDelta::Append { nodes, .. } => {
                nodes.iter().for_each(|n| self.graph.insert(n))
            }
            GraphCommitDelta::ReplaceFull(graph) => {
                self.graph.clear();
                graph.nodes.iter().for_each(|n| self.graph.insert(n));
            }
        }
        self.queue.remove(session_id, &effects.completed_batch_ids);
        self.manifest.stamp(session_id, &effects.committed_attachment_ids, effects.now_ms);
        if let Some((turn_id, record)) = &effects.stamp {
            self.stamps.insert(session_id, turn_id, record.clone());
        }
        self.head = Some(effects.head.clone());
    }
}

fn done(_: ()) -> Response {
    Response::Done
}
