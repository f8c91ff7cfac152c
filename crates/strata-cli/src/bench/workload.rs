//! The agent-session workload: what one session does at its start, in each turn and at its
//! end, each call timed and its result checked against what the workload did.
//!
//! A turn (0-based `t`) of session `s`:
//! 1. enqueue `inputs_per_turn` inputs (JSON user messages, `Join` slots, keyed by source key);
//! 2. claim them at the idle boundary: one claim holding exactly those batches;
//! 3. every `attachment_every` turns, put an attachment of `attachment_bytes` distinct bytes
//!    through the session's scoped attachment store (its manifest intent through the stack,
//!    a reference and the bytes in the attachment store): the attachment layer carries it
//!    into the turn's commit;
//! 4. commit under a turn stamp (hash: [`commit_semantic_hash`]) with the expected revision:
//!    `nodes_per_turn` nodes on the active path (the first carries the first input's bytes)
//!    plus one superseded draft beside it, JSON payloads of `payload_bytes`; a checkpoint
//!    (a fresh tool-state blob of `checkpoint_bytes`, a shared plugin snapshot, a small
//!    execution state); one usage row; the claim's completion; the pending attachment id
//!    (added by the attachment layer, which then stamps it with `commit_refs`);
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
//!
//! # Under the fault drill (`--faults`)
//!
//! An error the drill caused ([`caused_by_drill`]) is a fault the layers did not absorb, not
//! a failure. The workload then does what a runtime would, and records the call as `faulted`
//! when it knows the call's effect and as `ambiguous` when it cannot:
//!
//! - keyed and idempotent calls it needs (an input's enqueue, keyed by its source key; the
//!   turn's stamped commit; the read that resolves a claim) are sent again, up to
//!   [`RESENDS`] more times (each a call of its operation; after an open breaker's cool-down
//!   when the breaker turned the call away); if every attempt faulted, the last is ambiguous
//!   and the session stops;
//! - a claim (unkeyed) whose error proves nothing was applied is made again; otherwise the
//!   session's pending batches tell: the inputs all pending means the claim did not apply
//!   (claim again), none pending means it applied and its reply was lost (ambiguous: the
//!   batches stay held by a claim nobody knows, until its one-hour lease expires, and the
//!   turn commits without completing them: `batches_stranded`);
//! - a failed attachment put leaves the turn without its attachment (`attachments_abandoned`;
//!   an intent row it recorded is an orphan for `strata sweep`);
//! - the replay, the stale writer, reloads, `gc_unreachable` and metadata saves are skipped
//!   when faulted; a faulted tombstone or vacuum widens the next vacuum's check to a range
//!   (those nodes may or may not have been removed);
//! - a vacuum's report is checked only against its upper bound: when the retry layer sends a
//!   vacuum again after a lost reply, the answer is the last attempt's, which found nothing
//!   left to remove (the effect is idempotent, its report is not), so the `vacuumed` total
//!   may fall short of the `tombstoned` one.
//!
//! Anything else, including a result that contradicts the workload (a commit applied twice,
//! a claim holding the wrong batches), is a failure.

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata::attachments::{AttachmentError, AttachmentMeta, AttachmentStore, Content};
use strata::{
    Bytes, CheckpointBlob, Clock, DeliveryPolicy, GraphCommitDelta, MergeKey, PersistedSessionRead,
    QueuedWorkBatchDraft, QueuedWorkClaim, QueuedWorkClaimBoundary, RuntimeCheckpoint,
    RuntimeCommit, RuntimeCommitResult, RuntimePersistence, RuntimeTurnCommitStamp, SessionMeta,
    SessionNodeRecord, SessionReadScope, SlotPolicy, StoreError, SystemClock, TokenLedgerEntry,
    TokenUsage, commit_semantic_hash,
};

use super::stats::{Op, Outcome, Recorder};
use crate::stack::{FaultDrill, OpenStack, caused_by_drill};

/// The claimant of every turn's inputs.
const OWNER: &str = "strata-bench";
/// Lease of a turn's claim: longer than any run, so that batches a claim stranded under the
/// fault drill (see the module docs) never become claimable again during it.
const LEASE_MS: u64 = 3_600_000;
/// The model named in metadata and usage rows.
const MODEL: &str = "bench-model";
/// How many more times a call the drill failed is sent before the workload gives up on it.
pub const RESENDS: u32 = 2;

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
    /// An attachment put every N turns (0: never).
    pub attachment_every: u32,
    /// Bytes of each attachment.
    pub attachment_bytes: u32,
    /// Reload the active path every N turns (0: never).
    pub reload_every: u32,
    /// Replay the commit every N turns (0: never).
    pub replay_every: u32,
    /// A stale writer's commit every N turns (0: never).
    pub conflict_every: u32,
    /// Tombstone, vacuum and gc every N turns (0: never).
    pub maintenance_every: u32,
    /// The fault drill, if on.
    pub faults: Option<FaultDrill>,
}

impl Workload {
    /// True when the workload writes attachments (the stack then has the attachment layer).
    pub fn writes_attachments(&self) -> bool {
        self.attachment_every > 0
    }

    fn drilled(&self) -> bool {
        self.faults.is_some()
    }
}

/// True on the turns (0-based `turn`) where something done "every `every` turns" happens.
fn every(every: u32, turn: u32) -> bool {
    every > 0 && (turn + 1).is_multiple_of(every)
}

/// The session stopped: the failure is recorded, its state is no longer known.
pub struct Stop;

/// An error a call can end with, as the drill sees it.
trait CallError: Display {
    /// The store error inside, when there is one.
    fn store_error(&self) -> Option<&StoreError>;
}

impl CallError for StoreError {
    fn store_error(&self) -> Option<&StoreError> {
        Some(self)
    }
}

impl CallError for AttachmentError {
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            AttachmentError::Manifest(error) => Some(error),
            _ => None,
        }
    }
}

/// One timed call, not yet judged.
struct Timed<T, E> {
    op: Op,
    elapsed: Duration,
    result: Result<T, E>,
    /// Calls the layers saw besides this one when it succeeded (the attachment layer's
    /// `commit_refs` after a commit carrying attachments).
    follow_up_calls: u64,
}

async fn timed<T, E>(op: Op, call: impl Future<Output = Result<T, E>>) -> Timed<T, E> {
    let start = Instant::now();
    let result = call.await;
    Timed { op, elapsed: start.elapsed(), result, follow_up_calls: 0 }
}

fn fail(recorder: &mut Recorder, at: &str, op: Op, elapsed: Duration, problem: &str) -> Stop {
    recorder.record(op, elapsed, Outcome::Failed);
    recorder.describe_failure(format!("{at}: {}: {problem}", op.name()));
    Stop
}

/// A call the fault drill failed, not yet recorded: whether it is `faulted` or `ambiguous`
/// depends on what the workload learns next.
#[must_use = "record the fault with its outcome"]
struct DrillFault {
    op: Op,
    elapsed: Duration,
    /// The error proves the store applied nothing.
    nothing_applied: bool,
    /// An open breaker's cool-down: a runtime waits it out before sending the call again.
    retry_after: Option<Duration>,
}

impl DrillFault {
    fn record(self, recorder: &mut Recorder, outcome: Outcome) {
        recorder.record(self.op, self.elapsed, outcome);
    }

    /// Records the fault as `faulted` and waits as a runtime would before sending the call
    /// again: out the breaker's cool-down when it turned the call away.
    async fn before_resend(self, recorder: &mut Recorder) {
        let wait = self.retry_after;
        self.record(recorder, Outcome::Faulted);
        if let Some(wait) = wait {
            tokio::time::sleep(wait).await;
        }
    }

    /// Records the fault as `ambiguous`: the session's state is unknown, it stops.
    fn give_up(self, recorder: &mut Recorder) -> Stop {
        self.record(recorder, Outcome::Ambiguous);
        recorder.ambiguous_stops += 1;
        Stop
    }
}

/// The cool-down of an open breaker that turned a call away (also as a retry layer's last
/// error).
fn breaker_cool_down(error: &StoreError) -> Option<Duration> {
    match error {
        StoreError::CircuitOpen { retry_after, .. } => Some(*retry_after),
        StoreError::RetriesExhausted { last_error, .. } => breaker_cool_down(last_error),
        _ => None,
    }
}

impl<T, E: CallError> Timed<T, E> {
    /// A success that `judge` accepts (turning it into what the workload needs) is `Ok`;
    /// an error, or a value `judge` rejects with a description, is a failure.
    fn accept<U>(
        self,
        recorder: &mut Recorder,
        at: &str,
        judge: impl FnOnce(T) -> Result<U, String>,
    ) -> Result<U, Stop> {
        match self.accept_or_drill(recorder, at, false, judge)? {
            Ok(value) => Ok(value),
            Err(_) => unreachable!("no drill fault without the drill"),
        }
    }

    /// [`accept`](Self::accept), except that under the drill (`drilled`) an error the drill
    /// caused comes back as a [`DrillFault`], unrecorded.
    fn accept_or_drill<U>(
        self,
        recorder: &mut Recorder,
        at: &str,
        drilled: bool,
        judge: impl FnOnce(T) -> Result<U, String>,
    ) -> Result<Result<U, DrillFault>, Stop> {
        let Timed { op, elapsed, result, follow_up_calls } = self;
        if result.is_ok() {
            recorder.manifest_calls += follow_up_calls;
        }
        let problem = match result {
            Ok(value) => match judge(value) {
                Ok(value) => {
                    recorder.record(op, elapsed, Outcome::Ok);
                    return Ok(Ok(value));
                }
                Err(problem) => problem,
            },
            Err(error) => match error.store_error() {
                Some(store_error) if drilled && caused_by_drill(store_error) => {
                    return Ok(Err(DrillFault {
                        op,
                        elapsed,
                        nothing_applied: store_error.proves_nothing_applied(),
                        retry_after: breaker_cool_down(store_error),
                    }));
                }
                _ => error.to_string(),
            },
        };
        Err(fail(recorder, at, op, elapsed, &problem))
    }

    /// [`accept_or_drill`](Self::accept_or_drill) for a call the workload can do without:
    /// a drill fault is recorded `faulted` and gives `None`.
    fn accept_or_skip<U>(
        self,
        recorder: &mut Recorder,
        at: &str,
        drilled: bool,
        judge: impl FnOnce(T) -> Result<U, String>,
    ) -> Result<Option<U>, Stop> {
        Ok(match self.accept_or_drill(recorder, at, drilled, judge)? {
            Ok(value) => Some(value),
            Err(fault) => {
                fault.record(recorder, Outcome::Faulted);
                None
            }
        })
    }

    /// The call must be refused with the error `provoked` accepts: that is the expected
    /// outcome; a success or any other error is a failure (a drill fault, under the drill,
    /// is recorded `faulted`).
    fn refused(
        self,
        recorder: &mut Recorder,
        at: &str,
        drilled: bool,
        provoked: impl FnOnce(&StoreError) -> bool,
    ) -> Result<(), Stop> {
        let Timed { op, elapsed, result, follow_up_calls } = self;
        if result.is_ok() {
            recorder.manifest_calls += follow_up_calls;
        }
        match result {
            Err(error) => match error.store_error() {
                Some(error) if provoked(error) => {
                    recorder.record(op, elapsed, Outcome::Expected);
                    Ok(())
                }
                Some(error) if drilled && caused_by_drill(error) => {
                    recorder.record(op, elapsed, Outcome::Faulted);
                    Ok(())
                }
                _ => Err(fail(recorder, at, op, elapsed, &error.to_string())),
            },
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
    /// Nodes tombstoned since the last vacuum.
    tombstoned: u64,
    /// Nodes whose tombstone or vacuum the drill failed: the next vacuum may remove them.
    unsure: u64,
    stopped: bool,
}

/// The turn's inputs once claimed: the claim (`None` when the drill stranded it) and the
/// first input's payload, which the turn's first node carries.
struct Inputs {
    claim: Option<QueuedWorkClaim>,
    first_payload: Bytes,
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
            tombstoned: 0,
            unsure: 0,
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
                    match self.start(stack, workload, recorder).await {
                        Ok(()) => self.turn(stack, workload, turn, recorder).await,
                        Err(stop) => Err(stop),
                    }
                } else {
                    self.turn(stack, workload, turn, recorder).await
                };
                self.stopped = step.is_err();
            }
            on_turn();
        }
        if turns.end == workload.turns && !self.stopped {
            self.stopped = self.reopen(stack, workload, recorder).await.is_err();
        }
    }

    async fn start(
        &mut self,
        stack: &OpenStack,
        workload: &Workload,
        recorder: &mut Recorder,
    ) -> Result<(), Stop> {
        let at = format!("{} start", self.id);
        let store =
            timed(Op::CreateStore, stack.create_store(&self.id)).await.accept(recorder, &at, Ok)?;
        let meta = SessionMeta {
            session_id: self.id.clone(),
            session_name: Some(format!("benchmark {}", self.id)),
            created_at_epoch_ms: SystemClock.now_ms(),
            model: Some(MODEL.into()),
            cwd: Some("/work/project".into()),
            relation: None,
        };
        timed(Op::SaveSessionMeta, store.save_session_meta(meta)).await.accept_or_skip(
            recorder,
            &at,
            workload.drilled(),
            Ok,
        )?;
        self.store = Some(store);
        Ok(())
    }

    async fn turn(
        &mut self,
        stack: &OpenStack,
        workload: &Workload,
        turn: u32,
        recorder: &mut Recorder,
    ) -> Result<(), Stop> {
        let at = format!("{} turn {turn}", self.id);
        let store = Arc::clone(self.store.as_ref().expect("a running session has a handle"));
        let drilled = workload.drilled();

        // 1–3. The turn's inputs, claimed; sometimes an attachment.
        let inputs = self.take_inputs(&*store, workload, turn, recorder, &at).await?;
        let attached = if every(workload.attachment_every, turn) {
            self.put_attachment(stack, workload, turn, recorder, &at).await?
        } else {
            false
        };

        // 4. The turn's commit, stamped (sent again while the drill fails it).
        let commit = self.turn_commit(workload, turn, &inputs);
        let replay = every(workload.replay_every, turn).then(|| commit.clone());
        let appended = commit.graph.nodes();
        let (node_count, node_payload_bytes) =
            (appended.len(), appended.iter().map(|node| node.payload.len()).sum::<usize>());
        let draft = appended.last().expect("a turn appends nodes").node_id.clone();
        let leaf = commit.graph.leaf_node_id().map(str::to_owned);
        let expected_revision = self.revision + 1;
        let this = &*self;
        let send = || this.commit_through(stack, Op::Commit, &*store, commit.clone());
        let committed = resend(recorder, &at, drilled, send, |result: RuntimeCommitResult| {
            if result.head_revision == expected_revision {
                Ok(result)
            } else {
                Err(format!(
                    "head revision {} after the commit, expected {expected_revision}",
                    result.head_revision
                ))
            }
        })
        .await?;
        let previous_revision = std::mem::replace(&mut self.revision, committed.head_revision);
        self.leaf = leaf;
        self.path_len += workload.nodes_per_turn as usize;
        self.drafts.push(draft);
        let totals = &mut recorder.totals;
        totals.nodes_appended += node_count as u64;
        totals.node_payload_bytes += node_payload_bytes as u64;
        let completed = inputs.claim.as_ref().map_or(0, |claim| claim.batches.len());
        totals.batches_completed += completed as u64;
        totals.attachments_committed += u64::from(attached);
        totals.usage_rows += 1;

        // 5. A retry after a lost reply: answered from the stamp, nothing applied again.
        if let Some(commit) = replay {
            let again = self.commit_through(stack, Op::CommitReplay, &*store, commit);
            again.await.accept_or_skip(recorder, &at, drilled, |again| {
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
            let stale = self.commit_through(stack, Op::CommitStale, &*store, stale);
            stale.await.refused(recorder, &at, drilled, |error| {
                matches!(error, StoreError::HeadRevisionConflict { .. })
            })?;
        }

        // 7. Reload the active path.
        if every(workload.reload_every, turn) {
            let read = timed(Op::LoadActivePath, store.load_session(active_path())).await;
            read.accept_or_skip(recorder, &at, drilled, |read| self.check_path(read))?;
        }

        // 8. Maintenance.
        if every(workload.maintenance_every, turn) {
            self.maintain(&*store, drilled, &at, recorder).await?;
        }
        recorder.totals.turns += 1;
        Ok(())
    }

    /// Sends `commit` through the stack as `op`; when it carried pending attachments and
    /// succeeded, the attachment layer's `commit_refs` after it is one more call.
    async fn commit_through(
        &self,
        stack: &OpenStack,
        op: Op,
        store: &dyn RuntimePersistence,
        commit: RuntimeCommit,
    ) -> Timed<RuntimeCommitResult, StoreError> {
        let carries_attachments = stack.pending_attachments(&self.id) > 0;
        let mut call = timed(op, store.commit_runtime_state(commit)).await;
        call.follow_up_calls = u64::from(carries_attachments && call.result.is_ok());
        call
    }

    /// Enqueues the turn's inputs and claims them: one claim holding exactly those batches
    /// (see the module docs for what the drill changes).
    async fn take_inputs(
        &self,
        store: &dyn RuntimePersistence,
        workload: &Workload,
        turn: u32,
        recorder: &mut Recorder,
        at: &str,
    ) -> Result<Inputs, Stop> {
        let drilled = workload.drilled();
        let mut input_ids = Vec::with_capacity(workload.inputs_per_turn as usize);
        let mut first_payload = None;
        for input in 0..workload.inputs_per_turn {
            let payload =
                json_payload("user", &self.id, turn, input, workload.payload_bytes as usize);
            first_payload.get_or_insert_with(|| payload.clone());
            let draft = QueuedWorkBatchDraft {
                session_id: self.id.clone(),
                source_key: Some(format!("turn-{turn}-input-{input}")),
                delivery_policy: DeliveryPolicy::AfterCurrentTurnCommit,
                slot_policy: SlotPolicy::Join,
                merge_key: MergeKey::PayloadDefault,
                available_at_ms: 0,
                payloads: vec![payload],
            };
            let enqueue = || timed(Op::Enqueue, store.enqueue_queued_work(draft.clone()));
            let batch = resend(recorder, at, drilled, enqueue, Ok).await?;
            input_ids.push(batch.batch_id);
        }
        let first_payload = first_payload.expect("a turn has at least one input");
        let mut attempt = 0;
        loop {
            let claim = store.claim_ready_queued_work(
                &self.id,
                OWNER,
                QueuedWorkClaimBoundary::Idle,
                LEASE_MS,
                input_ids.len(),
            );
            let judge = |claim: Option<QueuedWorkClaim>| match claim {
                Some(claim) if claim.batch_ids() == input_ids => Ok(claim),
                Some(claim) => Err(format!(
                    "claimed batches {:?}, not the turn's inputs {input_ids:?}",
                    claim.batch_ids()
                )),
                None => Err("nothing to claim, though the turn's inputs were enqueued".into()),
            };
            let fault = match timed(Op::Claim, claim)
                .await
                .accept_or_drill(recorder, at, drilled, judge)?
            {
                Ok(claim) => return Ok(Inputs { claim: Some(claim), first_payload }),
                Err(fault) => fault,
            };
            // Did the claim apply? Its error may say; else the pending batches tell.
            let applied = !fault.nothing_applied && {
                let list = || timed(Op::ListPending, store.list_pending_queued_work(&self.id));
                let pending = resend(recorder, at, drilled, list, Ok).await?;
                let pending: Vec<&str> =
                    pending.iter().map(|batch| batch.batch_id.as_str()).collect();
                let held = input_ids.iter().filter(|id| !pending.contains(&id.as_str())).count();
                if held != 0 && held != input_ids.len() {
                    fault.record(recorder, Outcome::Failed);
                    recorder.describe_failure(format!(
                        "{at}: claim_ready_queued_work: {held} of the turn's {} inputs are held \
                         after a failed claim, though a claim is all or nothing",
                        input_ids.len()
                    ));
                    return Err(Stop);
                }
                held == input_ids.len()
            };
            if applied {
                fault.record(recorder, Outcome::Ambiguous);
                recorder.totals.batches_stranded += input_ids.len() as u64;
                return Ok(Inputs { claim: None, first_payload });
            }
            if attempt == RESENDS {
                return Err(fault.give_up(recorder));
            }
            fault.before_resend(recorder).await;
            attempt += 1;
        }
    }

    /// Puts the turn's attachment through the session's scoped attachment store; true when
    /// it is pending for the turn's commit.
    async fn put_attachment(
        &self,
        stack: &OpenStack,
        workload: &Workload,
        turn: u32,
        recorder: &mut Recorder,
        at: &str,
    ) -> Result<bool, Stop> {
        let scoped = match stack.attachments(&self.id) {
            Some(Ok(scoped)) => scoped,
            Some(Err(error)) => {
                return Err(fail(
                    recorder,
                    at,
                    Op::AttachmentPut,
                    Duration::ZERO,
                    &error.to_string(),
                ));
            }
            None => return Ok(false),
        };
        let bytes = attachment_bytes(&self.id, turn, workload.attachment_bytes as usize);
        let len = bytes.len() as u64;
        let meta =
            AttachmentMeta::new("application/octet-stream").with_label(format!("turn {turn}"));
        // The put's manifest intent is one call through the stack.
        recorder.manifest_calls += 1;
        let put = timed(Op::AttachmentPut, scoped.put(Content::new(bytes), meta)).await;
        let put = put.accept_or_skip(recorder, at, workload.drilled(), |info| {
            if info.byte_len == len {
                Ok(())
            } else {
                Err(format!("stored {} bytes of {len}", info.byte_len))
            }
        })?;
        let totals = &mut recorder.totals;
        if put.is_some() {
            totals.attachments_put += 1;
            totals.attachment_bytes += len;
        } else {
            totals.attachments_abandoned += 1;
        }
        Ok(put.is_some())
    }

    /// The turn's commit: its nodes (the first carries the first input's bytes), checkpoint,
    /// usage row and the claim's completion, under a turn stamp (the attachment layer adds
    /// the pending attachment ids after the hash: the store compares the hash verbatim).
    fn turn_commit(&self, workload: &Workload, turn: u32, inputs: &Inputs) -> RuntimeCommit {
        let nodes = self.turn_nodes(workload, turn, inputs.first_payload.clone());
        let leaf = nodes[workload.nodes_per_turn as usize - 1].node_id.clone();
        let mut commit = RuntimeCommit {
            session_id: self.id.clone(),
            expected_head_revision: Some(self.revision),
            config: Bytes::from_static(br#"{"model":"bench-model","temperature":0.2}"#),
            current_frame_id: Some("main".into()),
            graph: GraphCommitDelta::Append { nodes, leaf_node_id: Some(leaf) },
            checkpoint: Some(checkpoint(&self.id, turn, workload.checkpoint_bytes as usize)),
            usage_deltas: vec![usage(turn)],
            completed_queue_claims: inputs.claim.iter().map(QueuedWorkClaim::completion).collect(),
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
        first_input: Bytes,
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
            let payload = match index {
                0 => first_input.clone(),
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
        drilled: bool,
        at: &str,
        recorder: &mut Recorder,
    ) -> Result<(), Stop> {
        let drafts = std::mem::take(&mut self.drafts);
        let tombstone = timed(Op::Tombstone, store.tombstone_nodes(&drafts)).await;
        if tombstone.accept_or_skip(recorder, at, drilled, Ok)?.is_some() {
            self.tombstoned += drafts.len() as u64;
            recorder.totals.nodes_tombstoned += drafts.len() as u64;
        } else {
            self.unsure += drafts.len() as u64;
        }
        // Under the drill, a vacuum the retry layer sent again after a lost reply reports
        // only what its last attempt removed: anything from none to all of them.
        let least = if drilled { 0 } else { self.tombstoned };
        let most = self.tombstoned + self.unsure;
        let vacuum = timed(Op::Vacuum, store.vacuum()).await;
        let removed = vacuum.accept_or_skip(recorder, at, drilled, |report| {
            let removed = report.removed_node_count;
            if (least..=most).contains(&removed) {
                Ok(removed)
            } else if least == most {
                Err(format!("removed {removed} nodes, but {least} were tombstoned"))
            } else {
                Err(format!("removed {removed} nodes, but {least} to {most} were tombstoned"))
            }
        })?;
        match removed {
            Some(removed) => {
                (self.tombstoned, self.unsure) = (0, 0);
                recorder.totals.nodes_vacuumed += removed;
            }
            None => {
                self.unsure += self.tombstoned;
                self.tombstoned = 0;
            }
        }
        let gc = timed(Op::Gc, store.gc_unreachable()).await;
        if let Some(report) = gc.accept_or_skip(recorder, at, drilled, Ok)? {
            recorder.totals.blobs_collected += report.deleted_blob_count;
        }
        Ok(())
    }

    /// Drops the handle, reopens the session and loads its active path.
    async fn reopen(
        &mut self,
        stack: &OpenStack,
        workload: &Workload,
        recorder: &mut Recorder,
    ) -> Result<(), Stop> {
        let at = format!("{} reopen", self.id);
        self.store = None;
        let store = timed(Op::Reopen, stack.open_existing_store(&self.id)).await.accept(
            recorder,
            &at,
            |store| store.ok_or_else(|| "the session does not exist after its turns".to_owned()),
        )?;
        let read = timed(Op::LoadAfterReopen, store.load_session(active_path())).await;
        read.accept_or_skip(recorder, &at, workload.drilled(), |read| self.check_path(read))?;
        Ok(())
    }
}

/// Sends `call` until `judge` accepts its result: under the drill, an attempt the drill
/// failed is recorded `faulted` and the call is sent again (after an open breaker's
/// cool-down), up to [`RESENDS`] more times; when every attempt faulted, the last is
/// recorded `ambiguous` and the session stops. For calls safe to repeat: reads, keyed and
/// idempotent writes.
async fn resend<T, U, Fut>(
    recorder: &mut Recorder,
    at: &str,
    drilled: bool,
    mut call: impl FnMut() -> Fut,
    judge: impl Fn(T) -> Result<U, String>,
) -> Result<U, Stop>
where
    Fut: Future<Output = Timed<T, StoreError>>,
{
    let mut attempt = 0;
    loop {
        let fault = match call().await.accept_or_drill(recorder, at, drilled, &judge)? {
            Ok(value) => return Ok(value),
            Err(fault) => fault,
        };
        if attempt == RESENDS {
            return Err(fault.give_up(recorder));
        }
        fault.before_resend(recorder).await;
        attempt += 1;
    }
}

/// `len` bytes of attachment content, distinct per session and turn (so that every put
/// writes new bytes): a header naming them, then pseudo-random filler (xorshift).
fn attachment_bytes(session: &str, turn: u32, len: usize) -> Bytes {
    let header = format!("strata-bench attachment of {session}, turn {turn}\n");
    let mut bytes = Vec::with_capacity(len.max(header.len()));
    bytes.extend_from_slice(header.as_bytes());
    let seed = session.bytes().fold(u64::from(turn) ^ 0x9e37_79b9_7f4a_7c15, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut state = seed | 1;
    while bytes.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(len.max(header.len()));
    Bytes::from(bytes)
}

fn active_path() -> SessionReadScope {
    SessionReadScope::ActivePath { leaf_node_id: None }
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
            attachment_bytes: 256,
            reload_every: 1,
            replay_every: 3,
            conflict_every: 3,
            maintenance_every: 4,
            faults: None,
        }
    }

    fn open(spec: &str, workload: &Workload) -> OpenStack {
        let options = crate::stack::StackOptions {
            attachments: workload.writes_attachments(),
            faults: workload.faults,
        };
        crate::stack::StackSpec::parse(spec).unwrap().open("test", None, &options).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_session_runs_its_turns_and_every_check_passes_on_the_memory_store() {
        let workload = workload();
        let stack = open("memory", &workload);
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
        assert_eq!(calls(Op::AttachmentPut), 3);
        assert_eq!(calls(Op::ListPending), 0, "only the drill needs it");
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
        assert_eq!((totals.attachments_put, totals.attachment_bytes), (3, 3 * 256));
        // Each put's intent, and the commit_refs after each commit that carried one.
        assert_eq!(recorder.manifest_calls, 3 + 3);
        // Each of the first four turns wrote its own tool-state and execution-state blobs;
        // the gc after turn 4 keeps the head's and deletes the three turns' before it.
        assert_eq!(totals.blobs_collected, 6);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_contradicting_result_is_a_failure_that_stops_the_session() {
        let workload = workload();
        let stack = open("memory", &workload);
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_drill_fault_on_every_call_stops_the_session_as_ambiguous_not_failed() {
        let workload = Workload { faults: Some(FaultDrill { rate: 1.0, seed: 1 }), ..workload() };
        let stack = open("memory", &workload);
        let mut session = Session::new(0);
        let mut recorder = Recorder::default();
        session.run(&stack, &workload, 0..6, &mut recorder, || ()).await;
        assert!(session.stopped());
        assert_eq!(recorder.failed(), 0, "{:?}", recorder.failures);
        let meta = recorder.op(Op::SaveSessionMeta);
        assert_eq!((meta.faulted, meta.ambiguous), (1, 0), "the session goes on without it");
        let enqueue = recorder.op(Op::Enqueue);
        assert_eq!((enqueue.faulted, enqueue.ambiguous), (RESENDS as u64, 1));
        assert_eq!(recorder.ambiguous_stops, 1);
        assert_eq!(recorder.totals.turns, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn under_the_drill_the_full_stack_absorbs_faults_and_every_turn_completes() {
        let workload =
            Workload { turns: 30, faults: Some(FaultDrill { rate: 0.3, seed: 11 }), ..workload() };
        let stack = open("memory+full", &workload);
        let mut session = Session::new(0);
        let mut recorder = Recorder::default();
        session.run(&stack, &workload, 0..30, &mut recorder, || ()).await;
        assert_eq!(recorder.failed(), 0, "{:?}", recorder.failures);
        assert!(!session.stopped());
        let (injected, _) = stack.faults_injected().unwrap();
        let injected: u64 = injected.iter().map(|(_, count)| count).sum();
        let ops = || Op::ALL.iter().map(|&op| recorder.op(op));
        let surfaced: u64 = ops().map(|stats| stats.faulted + stats.ambiguous).sum();
        assert!(injected > 0 && surfaced < injected, "{surfaced} of {injected} surfaced");
        let totals = recorder.totals;
        assert_eq!(totals.turns, 30);
        assert_eq!(recorder.op(Op::Commit).ok, 30, "one acknowledged commit per turn");
        assert_eq!(recorder.op(Op::Enqueue).ok, 60, "every input enqueued once");
        let claims = recorder.op(Op::Claim);
        assert_eq!(claims.ok + claims.ambiguous, 30, "each turn claimed or stranded its inputs");
        assert_eq!(totals.batches_completed, 2 * claims.ok);
        assert_eq!(totals.batches_stranded, 2 * claims.ambiguous);
        assert_eq!(totals.attachments_put + totals.attachments_abandoned, 15);
        assert_eq!(totals.attachments_committed, totals.attachments_put);
    }
}
