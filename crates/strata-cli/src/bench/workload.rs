//! The agent-session workload: what one session does at its start, in each turn and at its
//! end, each call timed and its result checked against what the workload did.
//!
//! A turn (0-based `t`) of session `s`:
//! 1. enqueue `inputs_per_turn` inputs (JSON user messages, `Join` slots, keyed by source key);
//! 2. claim them at the idle boundary: one claim holding exactly those batches;
//! 3. every `attachment_every` turns, record an attachment intent in the store's manifest;
//! 4. commit under a turn stamp (hash: [`commit_semantic_hash`]) with the expected revision:
//!    `nodes_per_turn` nodes on the active path (the first carries the first input's bytes)
//!    plus one superseded draft beside it, JSON payloads of `payload_bytes`; a checkpoint
//!    (a fresh tool-state blob of `checkpoint_bytes`, a shared plugin snapshot, a small
//!    execution state); one usage row; the claim's completion; the attachment id;
//! 5. every `replay_every` turns, send the same commit again: the store must answer the first
//!    reply from the stamp;
//! 6. every `conflict_every` turns, commit as a stale writer (the revision before this turn):
//!    the store must refuse with a head-revision conflict, the outcome provoked on purpose;
//! 7. every `reload_every` turns, load the active path: it must end at the new leaf and hold
//!    every path node;
//! 8. every `maintenance_every` turns, tombstone the drafts since the last maintenance, vacuum
//!    (which must report removing exactly those) and collect unreachable blobs.
//!
//! A session starts by opening its store and saving its metadata, and ends (after its last
//! turn) by dropping its handle, reopening it and loading the active path. A call that fails,
//! or whose result contradicts the workload, is recorded as failed and stops its session (its
//! state is no longer known); the other sessions go on.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use strata::{
    AttachmentIntent, Bytes, CheckpointBlob, DeliveryPolicy, GraphCommitDelta, MergeKey,
    PersistedSessionRead, QueuedWorkBatchDraft, QueuedWorkClaim, QueuedWorkClaimBoundary,
    RuntimeCheckpoint, RuntimeCommit, RuntimePersistence, RuntimeTurnCommitStamp, SessionMeta,
    SessionNodeRecord, SessionReadScope, SlotPolicy, StoreError, TokenLedgerEntry, TokenUsage,
    blob_ref, commit_semantic_hash,
};

use super::stats::{Op, Outcome, Recorder};
use crate::stack::OpenStack;

/// The claimant of every turn's inputs.
const OWNER: &str = "strata-bench";
/// Lease of a turn's claim: far longer than a turn takes.
const LEASE_MS: u64 = 60_000;
/// The model named in metadata and usage rows.
const MODEL: &str = "bench-model";

/// The workload's parameters (the `bench` flags of the same names).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Workload {
    /// Sessions per configuration.
    pub sessions: u32,
    /// Turns per session.
    pub turns: u32,
    /// Sessions running at once.
    pub concurrency: u32,
    /// Rounds the turns are split into.
    pub rounds: u32,
    /// Nodes a turn appends on the active path (plus one draft).
    pub nodes_per_turn: u32,
    /// Bytes of each node and input payload.
    pub payload_bytes: u32,
    /// Inputs a turn enqueues and claims.
    pub inputs_per_turn: u32,
    /// Bytes of the tool-state blob of each checkpoint.
    pub checkpoint_bytes: u32,
    /// An attachment intent every N turns (0: never).
    pub attachment_every: u32,
    /// Reload the active path every N turns (0: never).
    pub reload_every: u32,
    /// Replay the commit every N turns (0: never).
    pub replay_every: u32,
    /// A stale writer's commit every N turns (0: never).
    pub conflict_every: u32,
    /// Tombstone, vacuum and gc every N turns (0: never).
    pub maintenance_every: u32,
}

/// True on the turns (0-based `turn`) where something done "every `every` turns" happens.
fn every(every: u32, turn: u32) -> bool {
    every > 0 && (turn + 1).is_multiple_of(every)
}

/// The session stopped: the failure is recorded, its state is no longer known.
pub struct Stop;

/// One timed call, not yet judged.
struct Timed<T> {
    op: Op,
    elapsed: Duration,
    result: Result<T, StoreError>,
}

async fn timed<T>(op: Op, call: impl Future<Output = Result<T, StoreError>>) -> Timed<T> {
    let start = Instant::now();
    let result = call.await;
    Timed { op, elapsed: start.elapsed(), result }
}

fn fail(recorder: &mut Recorder, at: &str, op: Op, elapsed: Duration, problem: &str) -> Stop {
    recorder.record(op, elapsed, Outcome::Failed);
    recorder.describe_failure(format!("{at}: {}: {problem}", op.name()));
    Stop
}

impl<T> Timed<T> {
    /// A success that `judge` accepts (turning it into what the workload needs) is `Ok`;
    /// an error, or a value `judge` rejects with a description, is a failure.
    fn accept<U>(
        self,
        recorder: &mut Recorder,
        at: &str,
        judge: impl FnOnce(T) -> Result<U, String>,
    ) -> Result<U, Stop> {
        let Timed { op, elapsed, result } = self;
        match result.map_err(|error| error.to_string()).and_then(judge) {
            Ok(value) => {
                recorder.record(op, elapsed, Outcome::Ok);
                Ok(value)
            }
            Err(problem) => Err(fail(recorder, at, op, elapsed, &problem)),
        }
    }

    /// The call must be refused with the error `provoked` accepts: that is the expected
    /// outcome; a success or any other error is a failure.
    fn refused(
        self,
        recorder: &mut Recorder,
        at: &str,
        provoked: impl FnOnce(&StoreError) -> bool,
    ) -> Result<(), Stop> {
        let Timed { op, elapsed, result } = self;
        match result {
            Err(error) if provoked(&error) => {
                recorder.record(op, elapsed, Outcome::Expected);
                Ok(())
            }
            Err(error) => Err(fail(recorder, at, op, elapsed, &error.to_string())),
            Ok(_) => {
                Err(fail(recorder, at, op, elapsed, "the store applied it instead of refusing"))
            }
        }
    }
}

/// One session's run: its handle and what the workload knows of its state.
pub struct Session {
    id: String,
    store: Option<Arc<dyn RuntimePersistence>>,
    revision: u64,
    leaf: Option<String>,
    path_len: usize,
    drafts: Vec<String>,
    stopped: bool,
}

impl Session {
    /// Session number `index` (not yet opened).
    pub fn new(index: u32) -> Self {
        Self {
            id: format!("session-{index:05}"),
            store: None,
            revision: 0,
            leaf: None,
            path_len: 0,
            drafts: Vec::new(),
            stopped: false,
        }
    }

    /// The session id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// True once a failure stopped it.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Runs turns `turns` (opening the session before turn 0 and reopening it after the
    /// last of `workload.turns`), calling `on_turn` after each turn run or skipped.
    pub async fn run(
        &mut self,
        stack: &OpenStack,
        workload: &Workload,
        turns: std::ops::Range<u32>,
        recorder: &mut Recorder,
        on_turn: impl Fn(),
    ) {
        for turn in turns.clone() {
            if !self.stopped {
                let step = if turn == 0 {
                    match self.start(stack, recorder).await {
                        Ok(()) => self.turn(workload, turn, recorder).await,
                        Err(stop) => Err(stop),
                    }
                } else {
                    self.turn(workload, turn, recorder).await
                };
                self.stopped = step.is_err();
            }
            on_turn();
        }
        if turns.end == workload.turns && !self.stopped {
            self.stopped = self.reopen(stack, recorder).await.is_err();
        }
    }

    async fn start(&mut self, stack: &OpenStack, recorder: &mut Recorder) -> Result<(), Stop> {
        let at = format!("{} start", self.id);
        let store =
            timed(Op::CreateStore, stack.create_store(&self.id)).await.accept(recorder, &at, Ok)?;
        let meta = SessionMeta {
            session_id: self.id.clone(),
            session_name: Some(format!("benchmark {}", self.id)),
            created_at_epoch_ms: now_ms(),
            model: Some(MODEL.into()),
            cwd: Some("/work/project".into()),
            relation: None,
        };
        timed(Op::SaveSessionMeta, store.save_session_meta(meta))
            .await
            .accept(recorder, &at, Ok)?;
        self.store = Some(store);
        Ok(())
    }

    async fn turn(
        &mut self,
        workload: &Workload,
        turn: u32,
        recorder: &mut Recorder,
    ) -> Result<(), Stop> {
        let at = format!("{} turn {turn}", self.id);
        let store = Arc::clone(self.store.as_ref().expect("a running session has a handle"));

        // 1–3. The turn's inputs, claimed; sometimes an attachment's intent.
        let claim = self.take_inputs(&*store, workload, turn, recorder, &at).await?;
        let attachment_ids = if every(workload.attachment_every, turn) {
            vec![self.record_attachment(&*store, turn, recorder, &at).await?]
        } else {
            Vec::new()
        };

        // 4. The turn's commit, stamped.
        let commit = self.turn_commit(workload, turn, &claim, attachment_ids);
        let replay = every(workload.replay_every, turn).then(|| commit.clone());
        let appended = commit.graph.nodes();
        let (node_count, node_payload_bytes) =
            (appended.len(), appended.iter().map(|node| node.payload.len()).sum::<usize>());
        let draft = appended.last().expect("a turn appends nodes").node_id.clone();
        let leaf = commit.graph.leaf_node_id().map(str::to_owned);
        let attachments = commit.committed_attachment_ids.len();
        let expected_revision = self.revision + 1;
        let committed = timed(Op::Commit, store.commit_runtime_state(commit)).await.accept(
            recorder,
            &at,
            |result| {
                if result.head_revision == expected_revision {
                    Ok(result)
                } else {
                    Err(format!(
                        "head revision {} after the commit, expected {expected_revision}",
                        result.head_revision
                    ))
                }
            },
        )?;
        let previous_revision = std::mem::replace(&mut self.revision, committed.head_revision);
        self.leaf = leaf;
        self.path_len += workload.nodes_per_turn as usize;
        self.drafts.push(draft);
        let totals = &mut recorder.totals;
        totals.nodes_appended += node_count as u64;
        totals.node_payload_bytes += node_payload_bytes as u64;
        totals.batches_completed += claim.batches.len() as u64;
        totals.attachments_committed += attachments as u64;
        totals.usage_rows += 1;

        // 5. A retry after a lost reply: answered from the stamp, nothing applied again.
        if let Some(commit) = replay {
            let again = timed(Op::CommitReplay, store.commit_runtime_state(commit)).await;
            again.accept(recorder, &at, |again| {
                if again == committed {
                    Ok(())
                } else {
                    Err(format!("the retry answered {again:?}, not the first reply {committed:?}"))
                }
            })?;
        }

        // 6. A stale writer: must be refused.
        if every(workload.conflict_every, turn) {
            let stale = RuntimeCommit {
                session_id: self.id.clone(),
                expected_head_revision: Some(previous_revision),
                graph: GraphCommitDelta::Unchanged { leaf_node_id: self.leaf.clone() },
                ..Default::default()
            };
            timed(Op::CommitStale, store.commit_runtime_state(stale)).await.refused(
                recorder,
                &at,
                |error| matches!(error, StoreError::HeadRevisionConflict { .. }),
            )?;
        }

        // 7. Reload the active path.
        if every(workload.reload_every, turn) {
            let read = timed(Op::LoadActivePath, store.load_session(active_path())).await;
            read.accept(recorder, &at, |read| self.check_path(read))?;
        }

        // 8. Maintenance.
        if every(workload.maintenance_every, turn) {
            self.maintain(&*store, &at, recorder).await?;
        }
        recorder.totals.turns += 1;
        Ok(())
    }

    /// Enqueues the turn's inputs and claims them: one claim holding exactly those batches.
    async fn take_inputs(
        &self,
        store: &dyn RuntimePersistence,
        workload: &Workload,
        turn: u32,
        recorder: &mut Recorder,
        at: &str,
    ) -> Result<QueuedWorkClaim, Stop> {
        let mut input_ids = Vec::with_capacity(workload.inputs_per_turn as usize);
        for input in 0..workload.inputs_per_turn {
            let payload =
                json_payload("user", &self.id, turn, input, workload.payload_bytes as usize);
            let draft = QueuedWorkBatchDraft {
                session_id: self.id.clone(),
                source_key: Some(format!("turn-{turn}-input-{input}")),
                delivery_policy: DeliveryPolicy::AfterCurrentTurnCommit,
                slot_policy: SlotPolicy::Join,
                merge_key: MergeKey::PayloadDefault,
                available_at_ms: 0,
                payloads: vec![payload],
            };
            let batch = timed(Op::Enqueue, store.enqueue_queued_work(draft))
                .await
                .accept(recorder, at, Ok)?;
            input_ids.push(batch.batch_id);
        }
        let claim = store.claim_ready_queued_work(
            &self.id,
            OWNER,
            QueuedWorkClaimBoundary::Idle,
            LEASE_MS,
            input_ids.len(),
        );
        timed(Op::Claim, claim).await.accept(recorder, at, |claim| match claim {
            Some(claim) if claim.batch_ids() == input_ids => Ok(claim),
            Some(claim) => Err(format!(
                "claimed batches {:?}, not the turn's inputs {input_ids:?}",
                claim.batch_ids()
            )),
            None => Err("nothing to claim, though the turn's inputs were enqueued".into()),
        })
    }

    /// Records the write-ahead intent of the turn's attachment; returns its id.
    async fn record_attachment(
        &self,
        store: &dyn RuntimePersistence,
        turn: u32,
        recorder: &mut Recorder,
        at: &str,
    ) -> Result<String, Stop> {
        let attachment_id = blob_ref(format!("{} attachment of turn {turn}", self.id).as_bytes());
        let intent = AttachmentIntent {
            attachment_id: attachment_id.clone(),
            session_id: self.id.clone(),
            canonical_uri: format!("bench://attachments/{attachment_id}"),
            intent_at_epoch_ms: now_ms(),
        };
        timed(Op::RecordIntent, store.record_intent(intent)).await.accept(recorder, at, Ok)?;
        Ok(attachment_id)
    }

    /// The turn's commit: its nodes (the first carries the first input's bytes), checkpoint,
    /// usage row, the claim's completion and the attachment ids, under a turn stamp.
    fn turn_commit(
        &self,
        workload: &Workload,
        turn: u32,
        claim: &QueuedWorkClaim,
        attachment_ids: Vec<String>,
    ) -> RuntimeCommit {
        let first_input = claim.batches.first().and_then(|batch| batch.items.first());
        let nodes = self.turn_nodes(workload, turn, first_input.map(|item| item.payload.clone()));
        let leaf = nodes[workload.nodes_per_turn as usize - 1].node_id.clone();
        let mut commit = RuntimeCommit {
            session_id: self.id.clone(),
            expected_head_revision: Some(self.revision),
            config: Bytes::from_static(br#"{"model":"bench-model","temperature":0.2}"#),
            current_frame_id: Some("main".into()),
            graph: GraphCommitDelta::Append { nodes, leaf_node_id: Some(leaf) },
            checkpoint: Some(checkpoint(&self.id, turn, workload.checkpoint_bytes as usize)),
            usage_deltas: vec![usage(turn)],
            completed_queue_claims: vec![claim.completion()],
            committed_attachment_ids: attachment_ids,
            ..Default::default()
        };
        commit.turn_commit = Some(RuntimeTurnCommitStamp {
            session_id: self.id.clone(),
            turn_id: format!("turn-{turn}"),
            turn_commit_hash: commit_semantic_hash(&commit),
        });
        commit
    }

    /// The turn's nodes: the path nodes (chained to the previous leaf) and the draft.
    fn turn_nodes(
        &self,
        workload: &Workload,
        turn: u32,
        first_input: Option<Bytes>,
    ) -> Vec<SessionNodeRecord> {
        let size = workload.payload_bytes as usize;
        let path_nodes = workload.nodes_per_turn;
        let mut parent = self.leaf.clone();
        let mut nodes = Vec::with_capacity(path_nodes as usize + 1);
        for index in 0..path_nodes {
            let role = match index {
                0 => "user",
                _ if index + 1 == path_nodes => "assistant",
                _ if index % 2 == 1 => "tool_call",
                _ => "tool_result",
            };
            let payload = match (&first_input, index) {
                (Some(input), 0) => input.clone(),
                _ => json_payload(role, &self.id, turn, index, size),
            };
            let node_id = format!("t{turn}-n{index}");
            nodes.push(node(node_id.clone(), parent.replace(node_id), payload, turn));
        }
        // A superseded draft reply beside the path, under the turn's first node.
        let draft_parent = format!("t{turn}-n0");
        let payload = json_payload("assistant", &self.id, turn, path_nodes, size);
        nodes.push(node(format!("t{turn}-draft"), Some(draft_parent), payload, turn));
        nodes
    }

    /// The read must hold the head's whole active path, ending at the session's leaf.
    fn check_path(&self, read: Option<PersistedSessionRead>) -> Result<(), String> {
        let read = read.ok_or("the session has no head")?;
        let nodes = &read.graph.nodes;
        let last = nodes.last().map(|node| &node.node_id);
        if read.head_revision != self.revision {
            Err(format!("head revision {}, expected {}", read.head_revision, self.revision))
        } else if nodes.len() != self.path_len || last != self.leaf.as_ref() {
            Err(format!(
                "active path of {} nodes ending at {last:?}, expected {} ending at {:?}",
                nodes.len(),
                self.path_len,
                self.leaf
            ))
        } else {
            Ok(())
        }
    }

    async fn maintain(
        &mut self,
        store: &dyn RuntimePersistence,
        at: &str,
        recorder: &mut Recorder,
    ) -> Result<(), Stop> {
        let drafts = std::mem::take(&mut self.drafts);
        timed(Op::Tombstone, store.tombstone_nodes(&drafts)).await.accept(recorder, at, Ok)?;
        recorder.totals.nodes_tombstoned += drafts.len() as u64;
        let removed = timed(Op::Vacuum, store.vacuum()).await.accept(recorder, at, |report| {
            if report.removed_node_count == drafts.len() as u64 {
                Ok(report.removed_node_count)
            } else {
                Err(format!(
                    "removed {} nodes, but {} were tombstoned",
                    report.removed_node_count,
                    drafts.len()
                ))
            }
        })?;
        recorder.totals.nodes_vacuumed += removed;
        let report = timed(Op::Gc, store.gc_unreachable()).await.accept(recorder, at, Ok)?;
        recorder.totals.blobs_collected += report.deleted_blob_count;
        Ok(())
    }

    /// Drops the handle, reopens the session and loads its active path.
    async fn reopen(&mut self, stack: &OpenStack, recorder: &mut Recorder) -> Result<(), Stop> {
        let at = format!("{} reopen", self.id);
        self.store = None;
        let store = timed(Op::Reopen, stack.open_existing_store(&self.id)).await.accept(
            recorder,
            &at,
            |store| store.ok_or_else(|| "the session does not exist after its turns".to_owned()),
        )?;
        let read = timed(Op::LoadAfterReopen, store.load_session(active_path())).await;
        read.accept(recorder, &at, |read| self.check_path(read))
    }
}

fn active_path() -> SessionReadScope {
    SessionReadScope::ActivePath { leaf_node_id: None }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_millis() as u64)
}

fn node(id: String, parent: Option<String>, payload: Bytes, turn: u32) -> SessionNodeRecord {
    SessionNodeRecord {
        node_id: id,
        parent_node_id: parent,
        payload,
        timestamp_ms: 1_700_000_000_000 + u64::from(turn) * 1_000,
        frame_id: Some("main".into()),
        cause: None,
    }
}

/// The turn's checkpoint: a fresh tool-state blob (so older ones become garbage), the same
/// plugin snapshot every turn, a small execution state.
fn checkpoint(session: &str, turn: u32, tool_state_bytes: usize) -> RuntimeCheckpoint {
    let tool_state = if tool_state_bytes == 0 {
        CheckpointBlob::default()
    } else {
        CheckpointBlob::payload(json_payload("tool_state", session, turn, 0, tool_state_bytes))
    };
    RuntimeCheckpoint {
        turn_state: Bytes::from(format!(r#"{{"turn":{turn},"phase":"settled"}}"#)),
        tool_state,
        plugin_snapshot: CheckpointBlob::payload(Bytes::from_static(
            br#"{"plugins":["search","shell"]}"#,
        )),
        plugin_snapshot_revision: 1,
        execution_state: CheckpointBlob::payload(Bytes::from(format!(
            r#"{{"turn":{turn},"step":"done"}}"#
        ))),
    }
}

fn usage(turn: u32) -> TokenLedgerEntry {
    TokenLedgerEntry {
        source: "agent".into(),
        model: MODEL.into(),
        usage: TokenUsage {
            input_tokens: 1_200 + u64::from(turn % 500),
            output_tokens: 350,
            cached_input_tokens: 800,
            reasoning_tokens: 120,
        },
    }
}

/// Filler text for payloads (ASCII, nothing to escape in JSON).
const FILLER: &str = "The agent read the file, ran the tests and found two failures in the parser; \
                      it proposes a fix that keeps the public interface and adds a regression test. ";

/// A JSON chat message of exactly `size` bytes (or the bare envelope, at most about 120
/// bytes, when `size` is smaller): role, session, turn, index and filler content.
pub fn json_payload(role: &str, session: &str, turn: u32, index: u32, size: usize) -> Bytes {
    let head = format!(
        r#"{{"type":"message","role":"{role}","session":"{session}","turn":{turn},"index":{index},"content":""#
    );
    const TAIL: &str = r#""}"#;
    let filler = size.saturating_sub(head.len() + TAIL.len());
    let offset = (turn as usize * 7 + index as usize * 13) % FILLER.len();
    let mut text = String::with_capacity(head.len() + filler + TAIL.len());
    text.push_str(&head);
    text.extend(FILLER.chars().cycle().skip(offset).take(filler));
    text.push_str(TAIL);
    Bytes::from(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_json_of_the_requested_size() {
        for size in [128, 740, 4096] {
            let payload = json_payload("tool_result", "session-00042", 12_345, 3, size);
            assert_eq!(payload.len(), size);
            let value: serde_json::Value = serde_json::from_slice(&payload).unwrap();
            assert_eq!(value["role"], "tool_result");
            assert_eq!(value["turn"], 12_345);
        }
        let tiny = json_payload("user", "s", 0, 0, 1);
        serde_json::from_slice::<serde_json::Value>(&tiny).unwrap();
    }

    #[test]
    fn periodic_steps_happen_on_every_nth_turn_and_never_for_zero() {
        let turns: Vec<u32> = (0..10).filter(|&turn| every(3, turn)).collect();
        assert_eq!(turns, [2, 5, 8]);
        assert!((0..10).all(|turn| !every(0, turn)));
        assert!((0..10).all(|turn| every(1, turn)));
    }

    fn workload() -> Workload {
        Workload {
            sessions: 1,
            turns: 6,
            concurrency: 1,
            rounds: 2,
            nodes_per_turn: 3,
            payload_bytes: 200,
            inputs_per_turn: 2,
            checkpoint_bytes: 300,
            attachment_every: 2,
            reload_every: 1,
            replay_every: 3,
            conflict_every: 3,
            maintenance_every: 4,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_session_runs_its_turns_and_every_check_passes_on_the_memory_store() {
        let workload = workload();
        let stack = crate::stack::StackSpec::parse("memory").unwrap().open("test", None).unwrap();
        let mut session = Session::new(0);
        let mut recorder = Recorder::default();
        let turns_seen = std::sync::atomic::AtomicU32::new(0);
        let count = || {
            turns_seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        };
        session.run(&stack, &workload, 0..3, &mut recorder, count).await;
        session.run(&stack, &workload, 3..6, &mut recorder, count).await;
        assert_eq!(recorder.failures, Vec::<String>::new());
        assert!(!session.stopped());
        assert_eq!(turns_seen.into_inner(), 6);
        let calls = |op| recorder.op(op).calls();
        assert_eq!(calls(Op::CreateStore), 1);
        assert_eq!(calls(Op::Enqueue), 12);
        assert_eq!(calls(Op::Claim), 6);
        assert_eq!(calls(Op::RecordIntent), 3);
        assert_eq!(calls(Op::Commit), 6);
        assert_eq!(calls(Op::CommitReplay), 2);
        assert_eq!(recorder.op(Op::CommitStale).expected, 2);
        assert_eq!(calls(Op::LoadActivePath), 6);
        assert_eq!((calls(Op::Tombstone), calls(Op::Vacuum), calls(Op::Gc)), (1, 1, 1));
        assert_eq!((calls(Op::Reopen), calls(Op::LoadAfterReopen)), (1, 1));
        let totals = recorder.totals;
        assert_eq!((totals.turns, totals.nodes_appended, totals.usage_rows), (6, 24, 6));
        assert_eq!((totals.nodes_tombstoned, totals.nodes_vacuumed), (4, 4));
        assert_eq!((totals.batches_completed, totals.attachments_committed), (12, 3));
        // Each of the first four turns wrote its own tool-state and execution-state blobs;
        // the gc after turn 4 keeps the head's and deletes the three turns' before it.
        assert_eq!(totals.blobs_collected, 6);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_contradicting_result_is_a_failure_that_stops_the_session() {
        let workload = workload();
        let stack = crate::stack::StackSpec::parse("memory").unwrap().open("test", None).unwrap();
        let mut session = Session::new(0);
        let mut recorder = Recorder::default();
        session.run(&stack, &workload, 0..1, &mut recorder, || ()).await;
        // Another writer moves the head behind the session's back: its next commit conflicts.
        let intruder = stack.create_store(&session.id).await.unwrap();
        let blind = RuntimeCommit { session_id: session.id.clone(), ..Default::default() };
        intruder.commit_runtime_state(blind).await.unwrap();
        session.run(&stack, &workload, 1..6, &mut recorder, || ()).await;
        assert!(session.stopped());
        assert_eq!(recorder.op(Op::Commit).failed, 1);
        assert_eq!(recorder.failed(), 1);
        assert_eq!(recorder.totals.turns, 1);
        assert!(
            recorder.failures[0]
                .starts_with("session-00000 turn 1: commit_runtime_state: head revision conflict"),
            "{:?}",
            recorder.failures
        );
        assert_eq!(recorder.op(Op::Reopen).calls(), 0, "a stopped session is not reopened");
    }
}
