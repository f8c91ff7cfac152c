//! The commit algorithm (`docs/contract.md` §5) as one transaction.
//!
//! 1. Lock the head row (`FOR UPDATE`: commits, tombstones, vacuums and collections of one
//!    store queue up here, on every host) and, pipelined after it, read the turn stamp.
//! 2. Checks, in the contract's order: binding, stamp (a stamped retry returns the stored
//!    result and applies nothing), CAS, queue ownership (the completed batches are locked and
//!    checked against their claim id and lease token), input validation.
//! 3. The effects, pipelined: blobs, usage, graph, head, completed batches, attachment
//!    stamps, the turn stamp with its result.
//! 4. `COMMIT`.
//!
//! A failed check drops the transaction (rolled back): a refused commit has no effect. An
//! appended id that is already live is reported by the node table's primary key, inside the
//! same transaction, after every other check.

use std::collections::{HashMap, HashSet};

use strata_core::*;
use tokio_postgres::Row;
use tokio_postgres::types::{Json, ToSql};

use crate::codec::{self, FrameEntry, RowReader, ordered, saturating};
use crate::sql::{Step, Tx};
use crate::store::{HEAD_KEY, LOCK_HEAD, PostgresStore, STAMP_ATTACHMENTS};

const LOAD_STAMP: &str = "SELECT store_id, turn_id, turn_commit_hash, head_revision,
        checkpoint_ref, turn_state, tool_state_ref, plugin_snapshot_ref,
        plugin_snapshot_revision, execution_state_ref
    FROM strata_turn_stamps WHERE store_id = $1 AND turn_id = $2";

const LOCK_COMPLETED: &str = "SELECT batch_id, claim_id, lease_token FROM strata_batches
    WHERE store_id = $1 AND session_id = $2 AND (batch_id = ANY($3) OR claim_id = ANY($4))
    FOR UPDATE";

const EXISTING_BLOBS: &str =
    "SELECT blob_ref FROM strata_blobs WHERE store_id = $1 AND blob_ref = ANY($2)";

const INSERT_BLOBS: &str = "INSERT INTO strata_blobs (store_id, blob_ref, bytes)
    SELECT $1, blob.blob_ref, blob.bytes FROM unnest($2::text[], $3::bytea[]) AS blob(blob_ref, bytes)
    ON CONFLICT DO NOTHING";

const ADD_USAGE: &str = "INSERT INTO strata_usage AS u (store_id, source, model, input_tokens,
        output_tokens, cached_input_tokens, reasoning_tokens)
    SELECT $1, d.source, d.model, d.input, d.output, d.cached, d.reasoning
    FROM unnest($2::text[], $3::text[], $4::int8[], $5::int8[], $6::int8[], $7::int8[])
        AS d(source, model, input, output, cached, reasoning)
    ON CONFLICT (store_id, source, model) DO UPDATE SET
        input_tokens = LEAST(u.input_tokens::numeric + excluded.input_tokens, 9223372036854775807)::bigint,
        output_tokens = LEAST(u.output_tokens::numeric + excluded.output_tokens, 9223372036854775807)::bigint,
        cached_input_tokens = LEAST(u.cached_input_tokens::numeric + excluded.cached_input_tokens, 9223372036854775807)::bigint,
        reasoning_tokens = LEAST(u.reasoning_tokens::numeric + excluded.reasoning_tokens, 9223372036854775807)::bigint";

const DROP_TOMBSTONED_IDS: &str =
    "DELETE FROM strata_nodes WHERE store_id = $1 AND node_id = ANY($2) AND tombstoned";

const DROP_GRAPH: &str = "DELETE FROM strata_nodes WHERE store_id = $1";

const INSERT_NODES: &str = "INSERT INTO strata_nodes (store_id, node_id, parent_node_id,
        payload, timestamp_ms, frame_id, cause, added_revision, ordinal, run_revision,
        run_ordinal, run_index)
    SELECT $1, n.node_id, n.parent_node_id, n.payload, n.timestamp_ms, n.frame_id, n.cause, $2,
           n.ordinal, n.run_revision, n.run_ordinal, n.run_index
    FROM unnest($3::text[], $4::text[], $5::bytea[], $6::int8[], $7::text[], $8::text[],
                $9::int8[], $10::int8[], $11::int8[])
        WITH ORDINALITY AS n(node_id, parent_node_id, payload, timestamp_ms, frame_id, cause,
                             run_revision, run_ordinal, run_index, ordinal)";

const UPDATE_HEAD: &str = "UPDATE strata_heads SET session_id = $2, revision = $3, config = $4,
        agent_frames = $5, agent_frame_payloads = $6, current_frame_id = $7, leaf_node_id = $8,
        live_node_count = $9, leaf_run_revision = $17, leaf_run_ordinal = $18,
        leaf_run_index = $19,
        checkpoint_ref = CASE WHEN $10::boolean THEN $11::text ELSE checkpoint_ref END,
        turn_state = CASE WHEN $10::boolean THEN $12::bytea ELSE turn_state END,
        tool_state_ref = CASE WHEN $10::boolean THEN $13::text ELSE tool_state_ref END,
        plugin_snapshot_ref = CASE WHEN $10::boolean THEN $14::text ELSE plugin_snapshot_ref END,
        plugin_snapshot_revision =
            CASE WHEN $10::boolean THEN $15::int8 ELSE plugin_snapshot_revision END,
        execution_state_ref = CASE WHEN $10::boolean THEN $16::text ELSE execution_state_ref END
    WHERE store_id = $1";

const DELETE_COMPLETED: &str = "DELETE FROM strata_batches
    WHERE store_id = $1 AND session_id = $2 AND batch_id = ANY($3)";

const INSERT_STAMP: &str = "INSERT INTO strata_turn_stamps (store_id, turn_id, turn_commit_hash,
        head_revision, checkpoint_ref, turn_state, tool_state_ref, plugin_snapshot_ref,
        plugin_snapshot_revision, execution_state_ref)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

/// The checkpoint manifest as SQL parameters (all `NULL` without a checkpoint).
struct ManifestParams<'a> {
    checkpoint_ref: Option<&'a str>,
    turn_state: Option<&'a [u8]>,
    tool_state_ref: Option<&'a str>,
    plugin_snapshot_ref: Option<&'a str>,
    plugin_snapshot_revision: Option<i64>,
    execution_state_ref: Option<&'a str>,
}

impl<'a> ManifestParams<'a> {
    fn new(manifest: Option<&'a (BlobRef, SessionCheckpoint)>) -> Self {
        Self {
            checkpoint_ref: manifest.map(|(reference, _)| reference.as_str()),
            turn_state: manifest.map(|(_, m)| &m.turn_state[..]),
            tool_state_ref: manifest.and_then(|(_, m)| m.tool_state_ref.as_deref()),
            plugin_snapshot_ref: manifest.and_then(|(_, m)| m.plugin_snapshot_ref.as_deref()),
            plugin_snapshot_revision: manifest
                .map(|(_, m)| codec::opaque(m.plugin_snapshot_revision)),
            execution_state_ref: manifest.and_then(|(_, m)| m.execution_state_ref.as_deref()),
        }
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 6] {
        [
            &self.checkpoint_ref,
            &self.turn_state,
            &self.tool_state_ref,
            &self.plugin_snapshot_ref,
            &self.plugin_snapshot_revision,
            &self.execution_state_ref,
        ]
    }
}

/// A resolved checkpoint: its manifest (with ref) and the blobs it writes.
type Resolved = ((BlobRef, SessionCheckpoint), Vec<(BlobRef, Bytes)>);

impl PostgresStore {
    /// `commit_runtime_state` (see the module docs).
    pub(crate) async fn commit(
        &self,
        commit: &RuntimeCommit,
    ) -> Result<RuntimeCommitResult, StoreError> {
        let mut transaction = Tx::write(self.shared.client().await?);
        let result = self.commit_in(&mut transaction, commit).await;
        transaction.finish().await;
        result
    }

    async fn commit_in(
        &self,
        transaction: &mut Tx,
        commit: &RuntimeCommit,
    ) -> Result<RuntimeCommitResult, StoreError> {
        let store_id = &*self.store_id;
        let session_id = commit.session_id.as_str();
        // A turn id the server would refuse names no stored stamp (validation reports it).
        let stamp_turn = commit
            .turn_commit
            .as_ref()
            .map(|stamp| stamp.turn_id.as_str())
            .filter(|turn| self.shared.storable(turn));

        // 1. Lock the head, then read the stamp (pipelined, in this order).
        let mut steps = vec![Step::new(LOCK_HEAD, vec![&store_id])];
        if let Some(turn) = &stamp_turn {
            steps.push(Step::new(LOAD_STAMP, vec![&store_id, turn]));
        }
        let mut results = transaction.run(&steps).await?.into_iter();
        let heads = results.next().unwrap_or_default();
        let stamps = results.next().unwrap_or_default();
        let Some(head) = heads.first() else { return Err(self.deleted()) };
        let head = RowReader::new(head, "strata_heads", HEAD_KEY);
        let actual = head.ordered_u64("revision")?;

        // 2a. Binding.
        if let Some(bound) = head.get::<Option<String>>("session_id")?
            && actual > 0
            && bound != session_id
        {
            return Err(StoreError::SessionBindingMismatch {
                bound_session_id: bound,
                attempted_session_id: session_id.to_owned(),
            });
        }
        // 2b. Stamp.
        if let Some(stamp) = &commit.turn_commit {
            let conflict = || StoreError::RuntimeTurnCommitConflict {
                session_id: stamp.session_id.clone(),
                turn_id: stamp.turn_id.clone(),
            };
            if stamp.session_id != session_id {
                return Err(conflict());
            }
            if let Some(row) = stamps.first() {
                let row = RowReader::new(row, "strata_turn_stamps", &["store_id", "turn_id"]);
                return if row.get::<&str>("turn_commit_hash")? == stamp.turn_commit_hash {
                    let manifest = row.manifest()?;
                    Ok(RuntimeCommitResult {
                        head_revision: row.ordered_u64("head_revision")?,
                        checkpoint_ref: manifest.as_ref().map(|(reference, _)| reference.clone()),
                        manifest: manifest.map(|(_, manifest)| manifest),
                    })
                } else {
                    Err(conflict())
                };
            }
        }
        // 2c. CAS.
        if let Some(expected) = commit.expected_head_revision
            && expected != actual
        {
            return Err(StoreError::HeadRevisionConflict { expected: Some(expected), actual });
        }

        // 2d. Queue ownership, and which given blob refs the store holds (pipelined).
        let completions = &commit.completed_queue_claims;
        let listed: Vec<&str> = completions
            .iter()
            .flat_map(|completion| completion.batch_ids.iter().map(String::as_str))
            .filter(|id| self.shared.storable(id))
            .collect();
        let claims: Vec<&str> = completions
            .iter()
            .map(|completion| completion.claim_id.as_str())
            .filter(|id| self.shared.storable(id))
            .collect();
        let given_refs: Vec<&str> = commit
            .checkpoint
            .iter()
            .flat_map(checkpoint_parts)
            .filter(|(_, part)| part.payload.is_none())
            .filter_map(|(_, part)| part.blob_ref.as_deref())
            .filter(|id| self.shared.storable(id))
            .collect();
        let mut checks = Vec::new();
        if !completions.is_empty() {
            checks.push(Step::new(LOCK_COMPLETED, vec![&store_id, &session_id, &listed, &claims]));
        }
        if !given_refs.is_empty() {
            checks.push(Step::new(EXISTING_BLOBS, vec![&store_id, &given_refs]));
        }
        let mut checked = transaction.run(&checks).await?.into_iter();
        let held =
            if completions.is_empty() { Vec::new() } else { checked.next().unwrap_or_default() };
        let completed_batch_ids = check_completions(session_id, completions, &held)?;
        let held_blobs: HashSet<String> = checked
            .next()
            .unwrap_or_default()
            .iter()
            .map(|row| RowReader::new(row, "strata_blobs", &["blob_ref"]).get("blob_ref"))
            .collect::<Result<_, _>>()?;

        // 2e. Input validation.
        self.validate(commit)?;
        let (manifest, new_blobs) = match &commit.checkpoint {
            Some(checkpoint) => {
                let (manifest, blobs) = resolve_checkpoint(checkpoint, &held_blobs)?;
                (Some(manifest), blobs)
            }
            None => (head.manifest()?, Vec::new()),
        };

        // 3. Effects.
        let revision = actual + 1;
        let revision_param = ordered("head revision", revision)?;
        let live_before = head.ordered_u64("live_node_count")?;
        let nodes = commit.graph.nodes();
        let live_node_count = saturating(match &commit.graph {
            GraphCommitDelta::Unchanged { .. } => live_before,
            GraphCommitDelta::Append { .. } => live_before + nodes.len() as u64,
            GraphCommitDelta::ReplaceFull(graph) => graph.nodes.len() as u64,
        });
        let blob_refs: Vec<&str> =
            new_blobs.iter().map(|(reference, _)| reference.as_str()).collect();
        let blob_bytes: Vec<&[u8]> = new_blobs.iter().map(|(_, bytes)| &bytes[..]).collect();
        let usage = UsageParams::new(&commit.usage_deltas);
        let runs = Runs::of(&head, &commit.graph, saturating(revision))?;
        let node_params = NodeParams::new(nodes, &runs.nodes);
        let leaf_run =
            (runs.leaf.map(|run| run.0), runs.leaf.map(|run| run.1), runs.leaf.map(|run| run.2));
        let frames: Vec<FrameEntry> = commit
            .agent_frames
            .iter()
            .map(|frame| FrameEntry {
                frame_id: frame.frame_id.clone(),
                blob_refs: frame.blob_refs.clone(),
            })
            .collect();
        let frames = Json(frames);
        let frame_payloads: Vec<&[u8]> =
            commit.agent_frames.iter().map(|frame| &frame.payload[..]).collect();
        let leaf = commit.graph.leaf_node_id();
        let replace_checkpoint = commit.checkpoint.is_some();
        let config: &[u8] = &commit.config;
        let head_manifest = ManifestParams::new(manifest.as_ref());
        let attachment_ids = self.storable_ids(&commit.committed_attachment_ids);
        let now = self.shared.now_param();
        let stamp_record = commit
            .turn_commit
            .as_ref()
            .map(|stamp| (stamp.turn_id.as_str(), stamp.turn_commit_hash.as_str()));

        let mut effects = Vec::new();
        if !new_blobs.is_empty() {
            effects.push(Step::new(INSERT_BLOBS, vec![&store_id, &blob_refs, &blob_bytes]));
        }
        if !usage.sources.is_empty() {
            effects.push(Step::new(ADD_USAGE, usage.params(&store_id)));
        }
        match &commit.graph {
            GraphCommitDelta::Unchanged { .. } => {}
            GraphCommitDelta::Append { .. } => {
                if !nodes.is_empty() {
                    effects.push(Step::new(DROP_TOMBSTONED_IDS, vec![&store_id, &node_params.ids]));
                }
            }
            GraphCommitDelta::ReplaceFull(_) => {
                effects.push(Step::new(DROP_GRAPH, vec![&store_id]))
            }
        }
        if !nodes.is_empty() {
            effects.push(Step::new(INSERT_NODES, node_params.params(&store_id, &revision_param)));
        }
        let mut head_params: Vec<&(dyn ToSql + Sync)> = vec![
            &store_id,
            &session_id,
            &revision_param,
            &config,
            &frames,
            &frame_payloads,
            &commit.current_frame_id,
            &leaf,
            &live_node_count,
            &replace_checkpoint,
        ];
        head_params.extend(head_manifest.params());
        head_params.extend([&leaf_run.0 as &(dyn ToSql + Sync), &leaf_run.1, &leaf_run.2]);
        effects.push(Step::new(UPDATE_HEAD, head_params));
        if !completed_batch_ids.is_empty() {
            effects.push(Step::new(
                DELETE_COMPLETED,
                vec![&store_id, &session_id, &completed_batch_ids],
            ));
        }
        if !attachment_ids.is_empty() {
            effects.push(Step::new(
                STAMP_ATTACHMENTS,
                vec![&store_id, &session_id, &attachment_ids, &now],
            ));
        }
        if let Some((turn_id, hash)) = &stamp_record {
            let mut params: Vec<&(dyn ToSql + Sync)> =
                vec![&store_id, turn_id, hash, &revision_param];
            params.extend(head_manifest.params());
            effects.push(Step::new(INSERT_STAMP, params));
        }
        transaction.commit(&effects).await.map_err(|error| duplicate_node(error, nodes))?;
        Ok(RuntimeCommitResult {
            head_revision: revision,
            checkpoint_ref: manifest.as_ref().map(|(reference, _)| reference.clone()),
            manifest: manifest.map(|(_, manifest)| manifest),
        })
    }

    /// Commit step 5 without the database: the checks of `strata_core`'s planner plus this
    /// backend's limits (id length, NUL, value sizes).
    fn validate(&self, commit: &RuntimeCommit) -> Result<(), StoreError> {
        let invalid = |message: String| Err(StoreError::InvalidInput(message));
        let shared = &self.shared;
        shared.check_id("session id", &commit.session_id)?;
        if let Some(stamp) = &commit.turn_commit {
            shared.check_id("turn id", &stamp.turn_id)?;
            if stamp.turn_commit_hash.contains('\0') {
                return invalid("the turn commit hash contains NUL".into());
            }
        }
        if let Some(leaf) = commit.graph.leaf_node_id() {
            shared.check_id("leaf node id", leaf)?;
        }
        for id in &commit.committed_attachment_ids {
            shared.check_id("committed attachment id", id)?;
        }
        let mut seen = HashSet::new();
        for node in commit.graph.nodes() {
            shared.check_id("node id", &node.node_id)?;
            if let Some(parent) = &node.parent_node_id {
                shared.check_id(&format!("parent id of node {:?}", node.node_id), parent)?;
            }
            for text in [&node.frame_id, &node.cause].into_iter().flatten() {
                if text.contains('\0') {
                    return invalid(format!("node {:?} has a field containing NUL", node.node_id));
                }
            }
            if !seen.insert(node.node_id.as_str()) {
                return invalid(format!("node {:?} appears twice in the commit", node.node_id));
            }
        }
        for frame in &commit.agent_frames {
            if frame.frame_id.contains('\0') || frame.blob_refs.iter().any(|r| r.contains('\0')) {
                return invalid(format!("agent frame {:?} contains NUL", frame.frame_id));
            }
        }
        let values = commit
            .graph
            .nodes()
            .iter()
            .map(|node| node.payload.len())
            .chain(commit.agent_frames.iter().map(|frame| frame.payload.len()))
            .chain([commit.config.len()])
            .chain(commit.checkpoint.iter().flat_map(|checkpoint| {
                checkpoint_parts(checkpoint)
                    .filter_map(|(_, part)| part.payload.as_ref().map(Bytes::len))
                    .chain([checkpoint.turn_state.len()])
            }));
        self.check_sizes("commit", values)
    }

    /// Every value within `max_value_bytes`, their sum within `max_call_bytes`.
    pub(crate) fn check_sizes(
        &self,
        what: &str,
        sizes: impl Iterator<Item = usize>,
    ) -> Result<(), StoreError> {
        let limits = self.shared.limits;
        let mut total = 0usize;
        for size in sizes {
            if size > limits.max_value_bytes {
                return Err(StoreError::InvalidInput(format!(
                    "{what}: a value of {size} bytes is over the limit of {} bytes",
                    limits.max_value_bytes
                )));
            }
            total = total.saturating_add(size);
        }
        if total > limits.max_call_bytes {
            return Err(StoreError::InvalidInput(format!(
                "{what}: {total} bytes in one call is over the limit of {} bytes",
                limits.max_call_bytes
            )));
        }
        Ok(())
    }
}

/// The three blob parts of a checkpoint, named.
fn checkpoint_parts(
    checkpoint: &RuntimeCheckpoint,
) -> impl Iterator<Item = (&'static str, &CheckpointBlob)> {
    [
        ("tool_state", &checkpoint.tool_state),
        ("plugin_snapshot", &checkpoint.plugin_snapshot),
        ("execution_state", &checkpoint.execution_state),
    ]
    .into_iter()
}

/// Mints refs for payload parts; a ref-only part must name a blob the store holds (`held`) or
/// one this commit writes.
fn resolve_checkpoint(
    checkpoint: &RuntimeCheckpoint,
    held: &HashSet<String>,
) -> Result<Resolved, StoreError> {
    let mut blobs: Vec<(BlobRef, Bytes)> = Vec::new();
    for (_, part) in checkpoint_parts(checkpoint) {
        if let Some(payload) = &part.payload {
            let minted = blob_ref(payload);
            if !blobs.iter().any(|(reference, _)| *reference == minted) {
                blobs.push((minted, payload.clone()));
            }
        }
    }
    let mut refs = Vec::with_capacity(3);
    for (name, part) in checkpoint_parts(checkpoint) {
        refs.push(match (&part.payload, &part.blob_ref) {
            (Some(payload), _) => Some(blob_ref(payload)),
            (None, Some(given))
                if held.contains(given) || blobs.iter().any(|(r, _)| r == given) =>
            {
                Some(given.clone())
            }
            (None, Some(given)) => {
                return Err(StoreError::InvalidInput(format!(
                    "checkpoint part {name} names blob {given:?}, which this store does not hold"
                )));
            }
            (None, None) => None,
        });
    }
    let [tool_state_ref, plugin_snapshot_ref, execution_state_ref] =
        <[Option<BlobRef>; 3]>::try_from(refs).expect("three checkpoint parts");
    let manifest = SessionCheckpoint {
        turn_state: checkpoint.turn_state.clone(),
        tool_state_ref,
        plugin_snapshot_ref,
        plugin_snapshot_revision: checkpoint.plugin_snapshot_revision,
        execution_state_ref,
    };
    Ok(((checkpoint_ref(&manifest), manifest), blobs))
}

/// Commit step 4 over the locked rows (`batch_id`, `claim_id`, `lease_token` of the session's
/// batches listed or held by a completing claim): every completion is for `session_id`,
/// lists only batches it holds and every batch it holds. Returns the batch ids to delete.
fn check_completions(
    session_id: &str,
    completions: &[QueuedWorkCompletion],
    rows: &[Row],
) -> Result<Vec<String>, StoreError> {
    let mut holds: HashMap<String, (Option<String>, Option<String>)> = HashMap::new();
    for row in rows {
        let row = RowReader::new(row, "strata_batches", &["batch_id"]);
        holds.insert(row.get("batch_id")?, (row.get("claim_id")?, row.get("lease_token")?));
    }
    let held_by = |hold: &(Option<String>, Option<String>), completion: &QueuedWorkCompletion| {
        hold.0.as_deref() == Some(completion.claim_id.as_str())
            && hold.1.as_deref() == Some(completion.lease_token.as_str())
    };
    let mut completed = Vec::new();
    let mut seen = HashSet::new();
    for completion in completions {
        let expired = || StoreError::QueuedWorkClaimExpired {
            session_id: completion.session_id.clone(),
            claim_id: completion.claim_id.clone(),
        };
        if completion.session_id != session_id || completion.batch_ids.is_empty() {
            return Err(expired());
        }
        let listed: HashSet<&str> = completion.batch_ids.iter().map(String::as_str).collect();
        let all_listed_held = listed
            .iter()
            .all(|batch_id| holds.get(*batch_id).is_some_and(|hold| held_by(hold, completion)));
        let all_held_listed = holds
            .iter()
            .filter(|(_, hold)| held_by(hold, completion))
            .all(|(batch_id, _)| listed.contains(batch_id.as_str()));
        if !(all_listed_held && all_held_listed) {
            return Err(expired());
        }
        for batch_id in &completion.batch_ids {
            if seen.insert(batch_id.as_str()) {
                completed.push(batch_id.clone());
            }
        }
    }
    Ok(completed)
}

/// An appended id already live violates the node table's primary key: invalid input.
fn duplicate_node(error: StoreError, nodes: &[SessionNodeRecord]) -> StoreError {
    match &error {
        StoreError::Backend(message) if message.contains("strata_nodes_pkey") => {
            StoreError::InvalidInput(format!(
                "an appended node id already exists ({} nodes in the commit): {message}",
                nodes.len()
            ))
        }
        _ => error,
    }
}

/// Usage deltas merged per (source, model), as column arrays.
struct UsageParams {
    sources: Vec<String>,
    models: Vec<String>,
    counters: [Vec<i64>; 4],
}

impl UsageParams {
    fn new(deltas: &[TokenLedgerEntry]) -> Self {
        // `ON CONFLICT DO UPDATE` may touch a row once per statement: merge first.
        let mut params =
            Self { sources: Vec::new(), models: Vec::new(), counters: Default::default() };
        for entry in merge_token_ledger(deltas) {
            let usage = entry.usage;
            let values = [
                usage.input_tokens,
                usage.output_tokens,
                usage.cached_input_tokens,
                usage.reasoning_tokens,
            ];
            for (column, value) in params.counters.iter_mut().zip(values) {
                column.push(saturating(value));
            }
            params.sources.push(entry.source);
            params.models.push(entry.model);
        }
        params
    }

    fn params<'s>(&'s self, store_id: &'s &'s str) -> Vec<&'s (dyn ToSql + Sync)> {
        let [input, output, cached, reasoning] = &self.counters;
        vec![store_id, &self.sources, &self.models, input, output, cached, reasoning]
    }
}

/// A node's run: (run revision, run ordinal, index in the run). See `schema_v1.sql`.
type Run = (i64, i64, i64);

/// The runs of a commit's nodes, and the head leaf's run after it (set only while the leaf is
/// the last node of its run).
struct Runs {
    nodes: Vec<Run>,
    leaf: Option<Run>,
}

impl Runs {
    /// A node continues the run of the node appended just before it (the previous node of
    /// the commit, or for the first node of an `Append` the head's leaf while that leaf ends
    /// its run) when its parent is that node; otherwise it starts a run at its own position.
    fn of(
        head: &RowReader<'_>,
        graph: &GraphCommitDelta,
        revision: i64,
    ) -> Result<Self, StoreError> {
        let old_leaf: Option<String> = head.get("leaf_node_id")?;
        let old_run = match (
            head.get::<Option<i64>>("leaf_run_revision")?,
            head.get::<Option<i64>>("leaf_run_ordinal")?,
            head.get::<Option<i64>>("leaf_run_index")?,
        ) {
            (Some(revision), Some(ordinal), Some(index)) => Some((revision, ordinal, index)),
            _ => None,
        };
        let mut previous: Option<(&str, Run)> = match graph {
            GraphCommitDelta::Append { .. } => old_leaf.as_deref().zip(old_run),
            _ => None,
        };
        let mut nodes = Vec::with_capacity(graph.nodes().len());
        for (position, node) in graph.nodes().iter().enumerate() {
            let run = match previous {
                Some((id, (run_revision, run_ordinal, index)))
                    if node.parent_node_id.as_deref() == Some(id) =>
                {
                    (run_revision, run_ordinal, index + 1)
                }
                _ => (revision, position as i64 + 1, 0),
            };
            nodes.push(run);
            previous = Some((&node.node_id, run));
        }
        let leaf = graph.leaf_node_id();
        let leaf_run = match (graph.nodes().last(), nodes.last()) {
            (Some(last), Some(run)) if leaf == Some(last.node_id.as_str()) => Some(*run),
            (None, _) if leaf == old_leaf.as_deref() => old_run,
            _ => None,
        };
        Ok(Self { nodes, leaf: leaf_run })
    }
}

/// Nodes as column arrays (one `INSERT … SELECT FROM unnest(…)` writes them all).
struct NodeParams<'a> {
    ids: Vec<&'a str>,
    parents: Vec<Option<&'a str>>,
    payloads: Vec<&'a [u8]>,
    timestamps: Vec<i64>,
    frames: Vec<Option<&'a str>>,
    causes: Vec<Option<&'a str>>,
    run_revisions: Vec<i64>,
    run_ordinals: Vec<i64>,
    run_indexes: Vec<i64>,
}

impl<'a> NodeParams<'a> {
    fn new(nodes: &'a [SessionNodeRecord], runs: &[Run]) -> Self {
        Self {
            run_revisions: runs.iter().map(|run| run.0).collect(),
            run_ordinals: runs.iter().map(|run| run.1).collect(),
            run_indexes: runs.iter().map(|run| run.2).collect(),
            ids: nodes.iter().map(|node| node.node_id.as_str()).collect(),
            parents: nodes.iter().map(|node| node.parent_node_id.as_deref()).collect(),
            payloads: nodes.iter().map(|node| &node.payload[..]).collect(),
            timestamps: nodes.iter().map(|node| codec::opaque(node.timestamp_ms)).collect(),
            frames: nodes.iter().map(|node| node.frame_id.as_deref()).collect(),
            causes: nodes.iter().map(|node| node.cause.as_deref()).collect(),
        }
    }

    fn params<'s>(
        &'s self,
        store_id: &'s &'s str,
        revision: &'s i64,
    ) -> Vec<&'s (dyn ToSql + Sync)> {
        vec![
            store_id,
            revision,
            &self.ids,
            &self.parents,
            &self.payloads,
            &self.timestamps,
            &self.frames,
            &self.causes,
            &self.run_revisions,
            &self.run_ordinals,
            &self.run_indexes,
        ]
    }
}
