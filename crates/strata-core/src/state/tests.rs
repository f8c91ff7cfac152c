//! Unit tests of the subtle rules: commit check order and atomicity, claim selection and
//! grouping, fencing and ownership, the manifest, and apply determinism.

use super::*;
use crate::call::Request;
use crate::hash::commit_semantic_hash;

const S: &str = "s1";

fn node(id: &str, parent: Option<&str>) -> SessionNodeRecord {
    SessionNodeRecord {
        node_id: id.into(),
        parent_node_id: parent.map(Into::into),
        payload: Bytes::from(format!("body-{id}")),
        timestamp_ms: 1,
        frame_id: None,
        cause: None,
    }
}

fn append(expected: Option<u64>, nodes: Vec<SessionNodeRecord>) -> RuntimeCommit {
    let leaf = nodes.last().map(|n| n.node_id.clone());
    RuntimeCommit {
        session_id: S.into(),
        expected_head_revision: expected,
        graph: GraphCommitDelta::Append { nodes, leaf_node_id: leaf },
        ..Default::default()
    }
}

fn stamped(mut commit: RuntimeCommit, turn: &str) -> RuntimeCommit {
    commit.turn_commit = Some(RuntimeTurnCommitStamp {
        session_id: commit.session_id.clone(),
        turn_id: turn.into(),
        turn_commit_hash: commit_semantic_hash(&commit),
    });
    commit
}

fn commit(
    state: &mut SessionState,
    commit: RuntimeCommit,
) -> Result<RuntimeCommitResult, StoreError> {
    state
        .execute(&Request::CommitRuntimeState { commit: Arc::new(commit) }, 1_000)?
        .into_committed()
}

fn draft(slot: SlotPolicy, delivery: DeliveryPolicy, key: MergeKey) -> QueuedWorkBatchDraft {
    QueuedWorkBatchDraft {
        session_id: S.into(),
        source_key: None,
        delivery_policy: delivery,
        slot_policy: slot,
        merge_key: key,
        available_at_ms: 0,
        payloads: vec![Bytes::from_static(b"p0"), Bytes::from_static(b"p1")],
    }
}

fn enqueue(state: &mut SessionState, draft: QueuedWorkBatchDraft) -> QueuedWorkBatch {
    state
        .execute(&Request::EnqueueQueuedWork { draft: Arc::new(draft) }, 10)
        .unwrap()
        .into_enqueued()
        .unwrap()
}

fn claim(state: &mut SessionState, max: usize, now: u64) -> Option<QueuedWorkClaim> {
    let request = Request::ClaimReadyQueuedWork {
        session_id: S,
        owner_id: "owner",
        boundary: QueuedWorkClaimBoundary::Idle,
        lease_ttl_ms: 100,
        max_batches: max,
    };
    state.execute(&request, now).unwrap().into_claim().unwrap()
}

fn join(key: &str) -> QueuedWorkBatchDraft {
    draft(SlotPolicy::Join, DeliveryPolicy::EarliestSafeBoundary, MergeKey::Group(key.into()))
}

#[test]
fn commit_checks_run_in_contract_order() {
    let mut state = SessionState::new();
    let first = stamped(append(Some(0), vec![node("a", None)]), "t1");
    assert_eq!(commit(&mut state, first.clone()).unwrap().head_revision, 1);

    // Binding beats everything else, even a stale revision.
    let mut other = append(Some(9), vec![node("a", None)]);
    other.session_id = "s2".into();
    assert!(matches!(commit(&mut state, other), Err(StoreError::SessionBindingMismatch { .. })));

    // Stamp beats CAS: a retry with a stale revision returns the stored result verbatim.
    let retry = RuntimeCommit { expected_head_revision: Some(0), ..first.clone() };
    let before = state.clone();
    assert_eq!(commit(&mut state, retry).unwrap().head_revision, 1);
    assert_eq!(state, before, "a stamped retry applies nothing");
    let mut changed = first.clone();
    changed.turn_commit.as_mut().unwrap().turn_commit_hash = "other".into();
    assert!(matches!(
        commit(&mut state, changed),
        Err(StoreError::RuntimeTurnCommitConflict { .. })
    ));

    // CAS beats queue ownership and validation.
    let mut bad = append(Some(5), vec![node("a", None)]);
    bad.completed_queue_claims = vec![QueuedWorkCompletion {
        session_id: S.into(),
        claim_id: "nope".into(),
        lease_token: "nope".into(),
        batch_ids: vec!["nope".into()],
    }];
    assert!(matches!(
        commit(&mut state, bad.clone()),
        Err(StoreError::HeadRevisionConflict { expected: Some(5), actual: 1 })
    ));
    // Queue ownership beats validation (node "a" is a duplicate).
    bad.expected_head_revision = Some(1);
    assert!(matches!(
        commit(&mut state, bad.clone()),
        Err(StoreError::QueuedWorkClaimExpired { .. })
    ));
    bad.completed_queue_claims.clear();
    assert!(matches!(commit(&mut state, bad), Err(StoreError::InvalidInput(_))));
    assert_eq!(state, before, "failed commits leave no effect");
}

#[test]
fn a_failed_commit_has_no_effect_at_all() {
    let mut state = SessionState::new();
    commit(&mut state, append(None, vec![node("a", None)])).unwrap();
    let batch = enqueue(&mut state, join("g"));
    let held = claim(&mut state, 1, 20).unwrap();
    let before = state.clone();
    let duplicate_within = append(None, vec![node("b", Some("a")), node("b", Some("a"))]);
    let dangling_ref = RuntimeCommit {
        checkpoint: Some(RuntimeCheckpoint {
            tool_state: CheckpointBlob::payload(Bytes::from_static(b"tool")),
            execution_state: CheckpointBlob::reference(blob_ref(b"missing")),
            ..Default::default()
        }),
        usage_deltas: vec![TokenLedgerEntry {
            source: "agent".into(),
            model: "m".into(),
            usage: TokenUsage { input_tokens: 3, ..Default::default() },
        }],
        completed_queue_claims: vec![held.completion()],
        ..append(None, vec![node("c", Some("a"))])
    };
    let empty_id = append(None, vec![node("", None)]);
    for bad in [duplicate_within, dangling_ref, empty_id] {
        assert!(matches!(commit(&mut state, bad), Err(StoreError::InvalidInput(_))));
        assert_eq!(state, before);
    }
    assert_eq!(state.queue().list(S), vec![batch]);
}

#[test]
fn commit_effects_checkpoint_usage_graph_and_stamps() {
    let mut state = SessionState::new();
    let checkpoint = RuntimeCheckpoint {
        turn_state: Bytes::from_static(b"turn"),
        tool_state: CheckpointBlob::payload(Bytes::from_static(b"tool")),
        plugin_snapshot: CheckpointBlob::default(),
        plugin_snapshot_revision: 4,
        execution_state: CheckpointBlob::payload(Bytes::from_static(b"tool")),
    };
    let usage = |n| TokenLedgerEntry {
        source: "agent".into(),
        model: "m".into(),
        usage: TokenUsage { output_tokens: n, ..Default::default() },
    };
    let first = RuntimeCommit {
        checkpoint: Some(checkpoint),
        usage_deltas: vec![usage(2)],
        ..append(Some(0), vec![node("a", None), node("b", Some("a"))])
    };
    let result = commit(&mut state, first).unwrap();
    let manifest = result.manifest.clone().unwrap();
    assert_eq!(result.checkpoint_ref, Some(checkpoint_ref(&manifest)));
    assert_eq!(manifest.tool_state_ref, Some(blob_ref(b"tool")));
    assert_eq!(manifest.execution_state_ref, manifest.tool_state_ref);
    let blobs: Vec<(&str, &Bytes)> = state.blobs().collect();
    assert_eq!(blobs, [(blob_ref(b"tool").as_str(), &Bytes::from_static(b"tool"))]);

    // No checkpoint keeps the head's; a ref-only part naming a held blob is accepted.
    let second = RuntimeCommit {
        usage_deltas: vec![usage(3)],
        ..append(Some(1), vec![node("c", Some("b"))])
    };
    let kept = commit(&mut state, second).unwrap();
    assert_eq!(kept.checkpoint_ref, result.checkpoint_ref);
    let read = state.load_session(&SessionReadScope::FullGraph).unwrap().unwrap();
    assert_eq!(read.head_revision, 2);
    assert_eq!(read.graph.leaf_node_id.as_deref(), Some("c"));
    assert_eq!(read.token_ledger, vec![usage(5)]);
    let hydrated = read.checkpoint.unwrap();
    assert_eq!(hydrated.tool_state.payload, Some(Bytes::from_static(b"tool")));
    assert_eq!(hydrated.plugin_snapshot, CheckpointBlob::default());

    let path = state
        .load_session(&SessionReadScope::ActivePath { leaf_node_id: Some("b".into()) })
        .unwrap()
        .unwrap();
    let ids: Vec<_> = path.graph.nodes.iter().map(|n| n.node_id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);

    // ReplaceFull drops everything, tombstoned nodes too.
    state.execute(&Request::TombstoneNodes { ids: &["b".into()] }, 0).unwrap();
    let replace = RuntimeCommit {
        session_id: S.into(),
        graph: GraphCommitDelta::ReplaceFull(SessionGraph {
            nodes: vec![node("x", None)],
            leaf_node_id: Some("x".into()),
        }),
        ..Default::default()
    };
    commit(&mut state, replace).unwrap();
    assert_eq!(state.head().unwrap().live_node_count, 1);
    assert_eq!(state.load_node("a"), Ok(None));
    assert_eq!(state.plan_vacuum().output.removed_node_count, 0);
}

#[test]
fn missing_checkpoint_blob_is_corrupt_data() {
    let mut state = SessionState::new();
    let with_checkpoint = RuntimeCommit {
        checkpoint: Some(RuntimeCheckpoint {
            tool_state: CheckpointBlob::payload(Bytes::from_static(b"tool")),
            ..Default::default()
        }),
        ..append(None, vec![])
    };
    commit(&mut state, with_checkpoint).unwrap();
    state.apply(&Mutation::DeleteBlobs { refs: vec![blob_ref(b"tool")] });
    assert!(matches!(
        state.load_session(&SessionReadScope::FullGraph),
        Err(StoreError::CorruptData { .. })
    ));
}

#[test]
fn tombstone_vacuum_and_gc_report_what_they_did() {
    let mut state = SessionState::new();
    let frames = vec![AgentFrame {
        frame_id: "f".into(),
        payload: Bytes::new(),
        blob_refs: vec![blob_ref(b"old")],
    }];
    let first = RuntimeCommit {
        checkpoint: Some(RuntimeCheckpoint {
            tool_state: CheckpointBlob::payload(Bytes::from_static(b"old")),
            plugin_snapshot: CheckpointBlob::payload(Bytes::from_static(b"gone")),
            ..Default::default()
        }),
        ..append(None, vec![node("a", None), node("b", Some("a"))])
    };
    commit(&mut state, first).unwrap();
    let second = RuntimeCommit {
        agent_frames: frames.clone(),
        checkpoint: Some(RuntimeCheckpoint {
            tool_state: CheckpointBlob::payload(Bytes::from_static(b"new")),
            ..Default::default()
        }),
        ..append(None, vec![])
    };
    commit(&mut state, second).unwrap();

    let ids = ["b".to_owned(), "b".to_owned(), "unknown".to_owned()];
    state.execute(&Request::TombstoneNodes { ids: &ids }, 0).unwrap();
    assert_eq!(state.head().unwrap().live_node_count, 1);
    assert_eq!(state.head().unwrap().revision, 2);
    assert_eq!(state.load_node("b"), Ok(None));
    assert!(state.plan_tombstone(&ids).mutation.is_none(), "idempotent");
    let report = state.execute(&Request::Vacuum, 0).unwrap().into_vacuumed().unwrap();
    assert_eq!(report.removed_node_count, 1);
    assert_eq!(
        state.execute(&Request::Vacuum, 0).unwrap().into_vacuumed().unwrap().removed_node_count,
        0
    );
    // "b" may be appended again once it is no longer live.
    let reappend =
        RuntimeCommit { agent_frames: frames, ..append(None, vec![node("b", Some("a"))]) };
    commit(&mut state, reappend).unwrap();
    assert_eq!(state.head().unwrap().live_node_count, 2);

    let gc = state.execute(&Request::GcUnreachable, 0).unwrap().into_collected().unwrap();
    assert_eq!(gc, GcReport { root_count: 1, retained_blob_count: 2, deleted_blob_count: 1 });
    assert!(state.blob(&blob_ref(b"gone")).is_none());
    assert!(state.blob(&blob_ref(b"old")).is_some(), "held by an agent frame");
}

#[test]
fn claim_selection_groups_joins_and_respects_boundaries() {
    let mut state = SessionState::new();
    let a = enqueue(&mut state, join("g"));
    let b = enqueue(&mut state, join("g"));
    let c = enqueue(&mut state, join("g"));
    let d = enqueue(&mut state, join("other"));
    let late = QueuedWorkBatchDraft { available_at_ms: 1_000, ..join("other") };
    let e = enqueue(&mut state, late);
    assert!(a.enqueue_seq < b.enqueue_seq && b.enqueue_seq < c.enqueue_seq);
    assert_eq!(a.items[1].item_id, format!("{}/1", a.batch_id));

    assert!(claim(&mut state, 0, 20).is_none(), "max_batches 0 claims nothing");
    let first = claim(&mut state, 2, 20).unwrap();
    assert_eq!(first.batch_ids(), [a.batch_id.clone(), b.batch_id.clone()]);
    let second = claim(&mut state, 5, 20).unwrap();
    assert_eq!(second.batch_ids(), [c.batch_id], "stops at another merge key");
    assert_ne!(first.claim_id, second.claim_id);
    assert_ne!(first.lease_token, second.lease_token);
    let third = claim(&mut state, 5, 20).unwrap();
    assert_eq!(third.batch_ids(), [d.batch_id], "not-yet-available batch excluded");
    assert!(claim(&mut state, 5, 20).is_none());
    let pending: Vec<_> =
        state.queue().list_pending(S, 20).into_iter().map(|b| b.batch_id).collect();
    assert_eq!(pending, [e.batch_id]);

    let mut exclusive_state = SessionState::new();
    let x = enqueue(
        &mut exclusive_state,
        draft(SlotPolicy::Exclusive, DeliveryPolicy::AfterCurrentTurnCommit, MergeKey::Never),
    );
    enqueue(&mut exclusive_state, join("g"));
    let at_checkpoint = exclusive_state.queue().plan_claim(
        S,
        "o",
        QueuedWorkClaimBoundary::ActiveTurnCheckpoint,
        10,
        5,
        20,
    );
    assert!(at_checkpoint.output.is_none() && at_checkpoint.mutation.is_none());
    let idle = claim(&mut exclusive_state, 5, 20).unwrap();
    assert_eq!(idle.batch_ids(), [x.batch_id], "an exclusive head is claimed alone");
}

#[test]
fn fencing_ownership_renew_complete_and_cancel() {
    let mut state = SessionState::new();
    let batch = enqueue(&mut state, join("g"));
    let first = claim(&mut state, 1, 20).unwrap();
    assert_eq!((first.fencing_token, first.expires_at_epoch_ms), (1, 120));
    let stored: Vec<_> = state.queue().stored_batches().collect();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].batch, batch);
    assert_eq!(
        stored[0].hold.as_ref().map(|hold| hold.claim_id.as_str()),
        Some(first.claim_id.as_str())
    );
    // Live: not reclaimable, not cancellable.
    assert!(claim(&mut state, 1, 50).is_none());
    assert!(state.queue().plan_cancel(S, &batch.batch_id, 50).output.is_none());
    // Expired but not reclaimed: the holder can still renew.
    let renew = Request::RenewQueuedWorkClaim { claim: &first, lease_ttl_ms: 100 };
    let renewed = state.execute(&renew, 200).unwrap().into_renewed().unwrap();
    assert_eq!(renewed.expires_at_epoch_ms, 300);
    // Reclaimed after expiry: fencing increases, the old holder lost it.
    let second = claim(&mut state, 1, 400).unwrap();
    assert_eq!(second.fencing_token, 2);
    assert!(matches!(state.execute(&renew, 400), Err(StoreError::QueuedWorkClaimExpired { .. })));
    let stale =
        RuntimeCommit { completed_queue_claims: vec![first.completion()], ..append(None, vec![]) };
    assert!(matches!(commit(&mut state, stale), Err(StoreError::QueuedWorkClaimExpired { .. })));
    // Abandon of the stale claim is a silent no-op; of the live one it releases.
    assert!(state.queue().plan_abandon(&first).mutation.is_none());
    state.execute(&Request::AbandonQueuedWorkClaim { claim: &second }, 400).unwrap();
    let third = claim(&mut state, 1, 400).unwrap();
    assert_eq!(third.fencing_token, 3);
    // A completion must list every batch of its claim, and the commit deletes them.
    let mut partial = third.completion();
    partial.batch_ids.clear();
    let incomplete =
        RuntimeCommit { completed_queue_claims: vec![partial], ..append(None, vec![]) };
    assert!(commit(&mut state, incomplete).is_err());
    let done =
        RuntimeCommit { completed_queue_claims: vec![third.completion()], ..append(None, vec![]) };
    commit(&mut state, done).unwrap();
    assert!(state.queue().list(S).is_empty());
    // enqueue_seq is never reused after deletes.
    assert!(enqueue(&mut state, join("g")).enqueue_seq > batch.enqueue_seq);
}

#[test]
fn enqueue_dedupes_by_source_key_while_the_batch_exists() {
    let mut state = SessionState::new();
    let keyed = QueuedWorkBatchDraft { source_key: Some("k".into()), ..join("g") };
    let first = enqueue(&mut state, keyed.clone());
    assert!(state.queue().plan_enqueue(&keyed, 99).unwrap().mutation.is_none());
    assert_eq!(enqueue(&mut state, keyed.clone()), first);
    state
        .execute(&Request::CancelQueuedWorkBatch { session_id: S, batch_id: &first.batch_id }, 50)
        .unwrap();
    let again = enqueue(&mut state, keyed);
    assert_ne!(again.batch_id, first.batch_id);
    assert_eq!(again.enqueued_at_ms, 10);
}

#[test]
fn claim_by_exact_ids_is_atomic() {
    let mut state = SessionState::new();
    let a = enqueue(&mut state, join("g"));
    let b = enqueue(&mut state, join("g"));
    let by_ids = |ids: &[String]| {
        state.queue().plan_claim_by_batch_ids(S, "o", QueuedWorkClaimBoundary::Idle, 10, ids, 20)
    };
    for wrong in [vec![b.batch_id.clone()], vec![b.batch_id.clone(), a.batch_id.clone()], vec![]] {
        let plan = by_ids(&wrong);
        assert!(plan.output.is_none() && plan.mutation.is_none(), "{wrong:?}");
    }
    let right = vec![a.batch_id.clone(), b.batch_id.clone()];
    assert_eq!(by_ids(&right).output.unwrap().batch_ids(), right);
    assert_eq!(by_ids(&right[..1]).output.unwrap().batch_ids(), right[..1]);
}

#[test]
fn manifest_intents_stamps_and_forget() {
    let mut state = SessionState::new();
    let intent = |session: &str, at| AttachmentIntent {
        attachment_id: "att".into(),
        session_id: session.into(),
        canonical_uri: "mem://att".into(),
        intent_at_epoch_ms: at,
    };
    let run =
        |state: &mut SessionState, request: Request<'_>, now| state.execute(&request, now).unwrap();
    run(&mut state, Request::RecordIntent { intent: intent(S, 5) }, 0);
    run(&mut state, Request::RecordIntent { intent: intent("s2", 5) }, 0);
    run(&mut state, Request::RecordIntent { intent: intent(S, 8) }, 0);
    let uncommitted = state.manifest().list_uncommitted(8);
    assert_eq!(uncommitted.len(), 2);
    assert!(state.manifest().list_uncommitted(7).iter().all(|row| row.session_id == "s2"));

    let ids = ["att".to_owned(), "unknown".to_owned()];
    run(&mut state, Request::CommitRefs { session_id: S, attachment_ids: &ids }, 30);
    run(&mut state, Request::CommitRefs { session_id: S, attachment_ids: &ids }, 40);
    run(&mut state, Request::RecordIntent { intent: intent(S, 50) }, 0);
    let left = state.manifest().list_uncommitted(u64::MAX);
    assert_eq!(left.len(), 1);
    let every: Vec<(&str, Option<u64>)> = state
        .manifest()
        .entries()
        .map(|row| (row.session_id.as_str(), row.committed_at_epoch_ms))
        .collect();
    assert_eq!(every, [(S, Some(30)), ("s2", None)], "entries lists committed rows too");
    assert_eq!(
        left[0].session_id, "s2",
        "the committed row keeps its stamp and is never un-committed"
    );
    assert!(matches!(
        state.plan(&Request::RecordIntent { intent: intent("", 1) }, 0),
        Err(StoreError::InvalidInput(_))
    ));
    run(&mut state, Request::Forget { attachment_id: "att" }, 0);
    assert!(state.manifest().list_uncommitted(u64::MAX).is_empty());
    assert!(state.manifest().plan_forget("att").mutation.is_none());
}

#[test]
fn replaying_serialized_mutations_on_a_snapshot_gives_the_identical_state() {
    let mut live = SessionState::new();
    commit(&mut live, append(None, vec![node("a", None)])).unwrap();
    let snapshot = live.clone();

    let mut log = Vec::new();
    let mut run = |state: &mut SessionState, request: Request<'_>, now: u64| {
        let Planned { mutation, output } = state.plan(&request, now).unwrap();
        if let Some(mutation) = mutation {
            state.apply(&mutation);
            log.push(serde_json::to_string(&mutation).unwrap());
        }
        output
    };
    let checkpointed = RuntimeCommit {
        checkpoint: Some(RuntimeCheckpoint {
            tool_state: CheckpointBlob::payload(Bytes::from_static(b"t")),
            ..Default::default()
        }),
        ..stamped(append(Some(1), vec![node("b", Some("a")), node("c", Some("b"))]), "t1")
    };
    run(&mut live, Request::CommitRuntimeState { commit: Arc::new(checkpointed) }, 100);
    let batch = run(&mut live, Request::EnqueueQueuedWork { draft: Arc::new(join("g")) }, 110)
        .into_enqueued()
        .unwrap();
    run(&mut live, Request::EnqueueQueuedWork { draft: Arc::new(join("g")) }, 111);
    let claimed = run(
        &mut live,
        Request::ClaimReadyQueuedWorkByBatchIds {
            session_id: S,
            owner_id: "o",
            boundary: QueuedWorkClaimBoundary::Idle,
            lease_ttl_ms: 50,
            batch_ids: std::slice::from_ref(&batch.batch_id),
        },
        120,
    )
    .into_claim()
    .unwrap()
    .unwrap();
    run(&mut live, Request::RenewQueuedWorkClaim { claim: &claimed, lease_ttl_ms: 70 }, 130);
    let meta = SessionMeta { session_id: S.into(), model: Some("m".into()), ..Default::default() };
    run(&mut live, Request::SaveSessionMeta { meta: Arc::new(meta) }, 140);
    let intent = AttachmentIntent {
        attachment_id: "x".into(),
        session_id: S.into(),
        canonical_uri: "u".into(),
        intent_at_epoch_ms: 3,
    };
    run(&mut live, Request::RecordIntent { intent }, 150);
    let finish = RuntimeCommit {
        completed_queue_claims: vec![claimed.completion()],
        committed_attachment_ids: vec!["x".into()],
        ..append(None, vec![node("d", Some("c"))])
    };
    run(&mut live, Request::CommitRuntimeState { commit: Arc::new(finish) }, 160);
    run(&mut live, Request::TombstoneNodes { ids: &["b".into()] }, 170);
    run(&mut live, Request::Vacuum, 180);
    run(&mut live, Request::GcUnreachable, 190);
    assert!(log.len() >= 10, "every write above changed something: {}", log.len());

    let mut replayed = snapshot;
    for line in &log {
        replayed.apply(&serde_json::from_str(line).unwrap());
    }
    assert_eq!(replayed, live);
    assert_eq!(
        replayed.load_session(&SessionReadScope::FullGraph).unwrap(),
        live.load_session(&SessionReadScope::FullGraph).unwrap()
    );
}

/// A graph base held in a vector, as a durable backend would hold it on disk.
#[derive(Debug)]
struct VecBase(Vec<(SessionNodeRecord, bool)>);

impl GraphBase for VecBase {
    fn entry_count(&self) -> usize {
        self.0.len()
    }
    fn find(&self, node_id: &str) -> Option<usize> {
        self.0.iter().position(|(node, _)| node.node_id == node_id)
    }
    fn tombstoned(&self, entry: usize) -> bool {
        self.0[entry].1
    }
    fn parent_id(&self, entry: usize) -> Result<Option<&str>, StoreError> {
        Ok(self.0[entry].0.parent_node_id.as_deref())
    }
    fn nodes_at(&self, entries: &[usize]) -> Result<Vec<SessionNodeRecord>, StoreError> {
        Ok(entries.iter().map(|&e| self.0[e].0.clone()).collect())
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl VecBase {
    /// A new base holding the stored graph of `state`, as a compaction writes it.
    fn of(state: &SessionState) -> Arc<Self> {
        let stored = state.stored_graph();
        let nodes = stored.nodes.iter().map(|stored_node| match *stored_node {
            StoredNode::Base { entry, tombstoned } => {
                let base = stored.base.expect("a base entry has a base");
                (base.nodes_at(&[entry]).unwrap().remove(0), tombstoned)
            }
            StoredNode::Overlay { node, tombstoned } => (node.clone(), tombstoned),
        });
        Arc::new(Self(nodes.collect()))
    }
}

/// Every read a graph answers, for comparing two states holding the same graph differently.
fn graph_reads(state: &SessionState) -> Vec<Result<Option<PersistedSessionRead>, StoreError>> {
    let mut reads = vec![state.load_session(&SessionReadScope::FullGraph)];
    for leaf in ["a", "b", "c", "d", "e", "f", "x", "y"] {
        let scope = SessionReadScope::ActivePath { leaf_node_id: Some(leaf.into()) };
        reads.push(state.load_session(&scope));
    }
    reads
}

#[test]
fn a_graph_on_a_base_behaves_as_the_same_graph_in_memory() {
    let mut memory = SessionState::new();
    let chain = vec![node("a", None), node("b", Some("a")), node("c", Some("b")), node("x", None)];
    commit(&mut memory, append(None, chain)).unwrap();
    memory.execute(&Request::TombstoneNodes { ids: &["x".into()] }, 0).unwrap();

    // What a durable backend does at compaction, and at open (serde form + graph base).
    let mut based: SessionState =
        serde_json::from_str(&serde_json::to_string(&memory).unwrap()).unwrap();
    based.rebase_graph(VecBase::of(&memory));
    assert_eq!(graph_reads(&based), graph_reads(&memory));

    type Step = Box<dyn Fn(&mut SessionState)>;
    let steps: Vec<Step> = vec![
        Box::new(|s| {
            commit(s, append(None, vec![node("d", Some("c")), node("e", Some("d"))])).unwrap();
        }),
        Box::new(|s| {
            s.execute(&Request::TombstoneNodes { ids: &["b".into(), "d".into()] }, 0)
                .map(drop)
                .unwrap()
        }),
        // A tombstoned base node replaced by a new node with the same id.
        Box::new(|s| {
            commit(s, append(None, vec![node("x", Some("a")), node("y", Some("x"))])).unwrap();
        }),
        Box::new(|s| {
            let report = s.execute(&Request::Vacuum, 0).unwrap().into_vacuumed().unwrap();
            assert_eq!(report.removed_node_count, 2);
        }),
        Box::new(|s| commit(s, append(None, vec![node("b", Some("a"))])).map(drop).unwrap()),
        Box::new(|s| {
            let graph = SessionGraph { nodes: vec![node("f", None)], leaf_node_id: None };
            let replace = RuntimeCommit {
                graph: GraphCommitDelta::ReplaceFull(graph),
                ..append(None, Vec::new())
            };
            commit(s, replace).unwrap();
        }),
    ];
    for (index, step) in steps.iter().enumerate() {
        step(&mut memory);
        step(&mut based);
        assert_eq!(graph_reads(&based), graph_reads(&memory), "after step {index}");
        for id in ["a", "b", "c", "d", "e", "f", "x", "y"] {
            assert_eq!(based.load_node(id), memory.load_node(id), "node {id} after {index}");
        }
        // A new base written from a based state holds the same graph again.
        let mut rebased = based.clone();
        rebased.rebase_graph(VecBase::of(&based));
        assert_eq!(graph_reads(&rebased), graph_reads(&memory), "rebased after {index}");
    }
}

#[test]
fn active_path_stops_at_hidden_ancestors_and_reports_cycles() {
    let mut state = SessionState::new();
    let chain = vec![node("a", None), node("b", Some("a")), node("c", Some("b"))];
    commit(&mut state, append(None, chain)).unwrap();
    state.execute(&Request::TombstoneNodes { ids: &["a".into()] }, 0).unwrap();
    let ids = |state: &SessionState, leaf: &str| -> Result<Vec<String>, StoreError> {
        let scope = SessionReadScope::ActivePath { leaf_node_id: Some(leaf.into()) };
        let read = state.load_session(&scope)?.expect("committed");
        Ok(read.graph.nodes.into_iter().map(|n| n.node_id).collect())
    };
    assert_eq!(ids(&state, "c").unwrap(), ["b", "c"]);
    assert!(ids(&state, "a").unwrap().is_empty());
    assert!(ids(&state, "unknown").unwrap().is_empty());

    // Parents are not required to exist when appended, so a cycle can be stored; reading it
    // is reported, never an endless walk.
    let looped = vec![node("x", Some("y")), node("y", Some("x"))];
    commit(&mut state, append(None, looped)).unwrap();
    assert!(matches!(ids(&state, "x"), Err(StoreError::CorruptData { .. })));
    assert!(state.read(&Request::Vacuum, 0).is_err(), "read refuses a write request");
}

/// A stamp base holding stamps in a vector, as a durable backend's section would, counting
/// the records it reads.
#[derive(Debug, Default)]
struct VecStamps {
    stamps: Vec<(String, String, StampRecord)>,
    reads: std::sync::atomic::AtomicUsize,
}

impl StampBase for VecStamps {
    fn contains(&self, session_id: &str, turn_id: &str) -> bool {
        self.stamps.iter().any(|(s, t, _)| s == session_id && t == turn_id)
    }
    fn find(&self, session_id: &str, turn_id: &str) -> Result<Option<StampRecord>, StoreError> {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let found = self.stamps.iter().find(|(s, t, _)| s == session_id && t == turn_id);
        Ok(found.map(|(_, _, record)| record.clone()))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl VecStamps {
    /// A new base holding every stamp of `state` (base and overlay), as a compaction writes it.
    fn of(state: &SessionState) -> Arc<Self> {
        let stored = state.stored_stamps();
        let mut stamps: Vec<(String, String, StampRecord)> = stored
            .overlay
            .iter()
            .map(|&(s, t, record)| (s.to_owned(), t.to_owned(), record.clone()))
            .collect();
        if let Some(base) = stored.base {
            let base = base.as_any().downcast_ref::<VecStamps>().expect("a VecStamps base");
            stamps.extend(base.stamps.iter().cloned());
        }
        Arc::new(Self { stamps, reads: Default::default() })
    }
}

#[test]
fn stamps_on_a_base_answer_retries_and_only_retries_read_it() {
    let mut state = SessionState::new();
    let first = stamped(append(Some(0), vec![node("a", None)]), "t1");
    let result = commit(&mut state, first.clone()).unwrap();
    let base = VecStamps::of(&state);
    state.rebase_stamps(base.clone());
    assert!(state.stored_stamps().overlay.is_empty(), "the overlay moved into the base");

    let request =
        |commit: &RuntimeCommit| Request::CommitRuntimeState { commit: Arc::new(commit.clone()) };
    // A new turn: the base does not hold it, so planning reads nothing from it.
    let second = stamped(append(Some(1), vec![node("b", Some("a"))]), "t2");
    assert!(!state.plan_touches_base(&request(&second)));
    commit(&mut state, second.clone()).unwrap();
    // A retry of the old turn is answered from the base (one read), applying nothing.
    assert!(state.plan_touches_base(&request(&first)));
    assert_eq!(commit(&mut state, first.clone()).unwrap(), result);
    assert_eq!(base.reads.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(state.head().unwrap().revision, 2);
    // A retry of the newer turn is answered from the overlay; its conflict too.
    assert!(!state.plan_touches_base(&request(&second)));
    assert_eq!(commit(&mut state, second.clone()).unwrap().head_revision, 2);
    let mut conflicting = first.clone();
    conflicting.turn_commit.as_mut().unwrap().turn_commit_hash = "other".into();
    assert!(matches!(
        commit(&mut state, conflicting),
        Err(StoreError::RuntimeTurnCommitConflict { .. })
    ));
    // Rebased again, both stamps are in the new base and still answer.
    state.rebase_stamps(VecStamps::of(&state));
    assert_eq!(commit(&mut state, first).unwrap(), result);
    assert_eq!(commit(&mut state, second).unwrap().head_revision, 2);
}

#[test]
fn only_reads_of_base_nodes_touch_the_graph_base() {
    let mut state = SessionState::new();
    commit(&mut state, append(None, vec![node("a", None)])).unwrap();
    let load_a = Request::LoadNode { node_id: "a" };
    let session = Request::LoadSession { scope: SessionReadScope::FullGraph };
    assert!(!state.read_touches_base(&load_a) && !state.read_touches_base(&session));
    state.rebase_graph(VecBase::of(&state));
    commit(&mut state, append(None, vec![node("b", Some("a"))])).unwrap();
    assert!(state.read_touches_base(&load_a), "a is in the base");
    assert!(!state.read_touches_base(&Request::LoadNode { node_id: "b" }), "b is in memory");
    assert!(state.read_touches_base(&session));
    assert!(!state.read_touches_base(&Request::LoadSessionMeta));
}
