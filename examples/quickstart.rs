//! Quickstart: one realistic agent session on the embedded default store.
//!
//! Runs three turns against a store opened from a factory: each turn appends nodes to the
//! session graph, records token usage and writes a checkpoint; a queued follow-up message
//! arrives mid-session, is claimed at the idle boundary and completed inside a stamped commit
//! (retried once, as after a lost reply, to show idempotency); then the runtime "restarts",
//! reopens the session and reloads its active path.
//!
//! ```text
//! cargo run --example quickstart [STORE_DIR]
//! ```
//! Without `STORE_DIR` the store lives in a fresh temporary directory.

use std::path::PathBuf;
use std::sync::Arc;

use strata::file::{FileStoreFactory, FileStoreOptions};
use strata::{
    Bytes, CheckpointBlob, DeliveryPolicy, GraphCommitDelta, MergeKey, QueuedWorkBatchDraft,
    QueuedWorkClaimBoundary, RuntimeCheckpoint, RuntimeCommit, RuntimePersistence,
    RuntimeTurnCommitStamp, SessionMeta, SessionNodeRecord, SessionReadScope, SessionStoreFactory,
    SessionStoreRequest, SlotPolicy, StoreError, TokenLedgerEntry, TokenUsage,
    commit_semantic_hash,
};

const SESSION: &str = "quickstart-session";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (root, _temporary) = store_root()?;
    println!("store root: {}", root.display());

    let factory = open_factory(&root)?;
    println!("backend tier: {:?}", factory.durability_tier());
    // Start from scratch when pointed at a directory used by an earlier run.
    factory.delete_session(SESSION).await?;
    let store = factory.create_store(SessionStoreRequest::new(SESSION)).await?;

    store
        .save_session_meta(SessionMeta {
            session_id: SESSION.into(),
            session_name: Some("Refactor the parser".into()),
            created_at_epoch_ms: 1_700_000_000_000,
            model: Some("example-model".into()),
            cwd: Some("/work/project".into()),
            relation: None,
        })
        .await?;

    let mut revision = 0;
    let mut parent: Option<String> = None;
    for turn in 1..=3 {
        let user = node(format!("t{turn}-user"), parent.clone(), format!("user message {turn}"));
        let reply = node(format!("t{turn}-reply"), Some(user.node_id.clone()), "assistant reply");
        let leaf = reply.node_id.clone();
        let commit = RuntimeCommit {
            session_id: SESSION.into(),
            expected_head_revision: Some(revision),
            config: Bytes::from_static(b"{\"temperature\":0.2}"),
            graph: GraphCommitDelta::Append {
                nodes: vec![user, reply],
                leaf_node_id: Some(leaf.clone()),
            },
            checkpoint: Some(checkpoint(turn)),
            usage_deltas: vec![usage("agent", 1_000 * turn, 250)],
            ..Default::default()
        };
        let result = store.commit_runtime_state(commit).await?;
        revision = result.head_revision;
        parent = Some(leaf);
        println!(
            "turn {turn}: committed revision {revision}, checkpoint {}",
            short(result.checkpoint_ref.as_deref())
        );
    }

    // A follow-up arrives while the agent works; the runtime enqueues it durably.
    let follow_up = QueuedWorkBatchDraft {
        session_id: SESSION.into(),
        source_key: Some("chat-message-42".into()),
        delivery_policy: DeliveryPolicy::AfterCurrentTurnCommit,
        slot_policy: SlotPolicy::Exclusive,
        merge_key: MergeKey::PayloadDefault,
        available_at_ms: 0,
        payloads: vec![Bytes::from_static(b"also update the docs")],
    };
    let batch = store.enqueue_queued_work(follow_up.clone()).await?;
    let duplicate = store.enqueue_queued_work(follow_up).await?;
    println!(
        "queued batch {} (seq {}); re-sent with the same source key -> same batch: {}",
        batch.batch_id,
        batch.enqueue_seq,
        duplicate.batch_id == batch.batch_id
    );

    // At the idle boundary the runtime claims it, runs a turn, and completes it in the commit.
    let claim = store
        .claim_ready_queued_work(SESSION, "worker-1", QueuedWorkClaimBoundary::Idle, 30_000, 8)
        .await?
        .ok_or("the follow-up should be claimable at the idle boundary")?;
    println!("claimed {} batch(es), fencing token {}", claim.batches.len(), claim.fencing_token);

    let reply = node("t4-reply", parent.clone(), "done: docs updated too");
    let mut commit = RuntimeCommit {
        session_id: SESSION.into(),
        expected_head_revision: Some(revision),
        graph: GraphCommitDelta::Append {
            nodes: vec![reply],
            leaf_node_id: Some("t4-reply".into()),
        },
        usage_deltas: vec![usage("agent", 800, 120)],
        completed_queue_claims: vec![claim.completion()],
        ..Default::default()
    };
    commit.turn_commit = Some(RuntimeTurnCommitStamp {
        session_id: SESSION.into(),
        turn_id: "turn-4".into(),
        turn_commit_hash: commit_semantic_hash(&commit),
    });
    let first = store.commit_runtime_state(commit.clone()).await?;
    let retried = store.commit_runtime_state(commit).await?;
    println!(
        "stamped commit -> revision {}; retry after a 'lost reply' -> same result: {}",
        first.head_revision,
        first == retried
    );
    println!("queue after completion: {} batch(es)", store.list_queued_work(SESSION).await?.len());

    // A stale writer loses the optimistic check with a typed error.
    let stale = RuntimeCommit {
        session_id: SESSION.into(),
        expected_head_revision: Some(1),
        ..Default::default()
    };
    match store.commit_runtime_state(stale).await {
        Err(StoreError::HeadRevisionConflict { expected, actual }) => {
            println!("stale writer refused: expected {expected:?}, actual {actual}")
        }
        other => return Err(format!("expected a revision conflict, got {other:?}").into()),
    }

    // The runtime restarts: drop every handle, reopen, reload.
    drop(store);
    drop(factory);
    let factory = open_factory(&root)?;
    let store = factory
        .open_existing_store(SESSION)
        .await?
        .ok_or("the session should exist after a restart")?;
    let session = store
        .load_session(SessionReadScope::ActivePath { leaf_node_id: None })
        .await?
        .ok_or("the session should have a head")?;
    let path: Vec<&str> = session.graph.nodes.iter().map(|node| node.node_id.as_str()).collect();
    println!("after restart: revision {}, active path {path:?}", session.head_revision);
    for entry in &session.token_ledger {
        println!(
            "usage {}/{}: {} in, {} out",
            entry.source, entry.model, entry.usage.input_tokens, entry.usage.output_tokens
        );
    }
    let meta = store.load_session_meta().await?.ok_or("metadata should survive")?;
    println!("session name: {}", meta.session_name.unwrap_or_default());
    Ok(())
}

/// The store's root directory: the first argument, or a temporary directory removed on exit.
fn store_root() -> std::io::Result<(PathBuf, Option<tempfile::TempDir>)> {
    match std::env::args_os().nth(1) {
        Some(dir) => Ok((PathBuf::from(dir), None)),
        None => {
            let temporary = tempfile::tempdir()?;
            Ok((temporary.path().to_path_buf(), Some(temporary)))
        }
    }
}

/// The embedded default: the durable file backend, fsync on every acknowledged write.
fn open_factory(root: &std::path::Path) -> Result<Arc<dyn SessionStoreFactory>, StoreError> {
    Ok(Arc::new(FileStoreFactory::open(root, FileStoreOptions::default())?))
}

fn node(
    id: impl Into<String>,
    parent: Option<String>,
    text: impl Into<String>,
) -> SessionNodeRecord {
    SessionNodeRecord {
        node_id: id.into(),
        parent_node_id: parent,
        payload: Bytes::from(text.into()),
        timestamp_ms: 1_700_000_000_000,
        frame_id: Some("main".into()),
        cause: None,
    }
}

fn checkpoint(turn: u64) -> RuntimeCheckpoint {
    RuntimeCheckpoint {
        turn_state: Bytes::from(format!("turn {turn} settled")),
        tool_state: CheckpointBlob::payload(format!("tool state after turn {turn}")),
        plugin_snapshot: CheckpointBlob::payload("plugins: none"),
        plugin_snapshot_revision: 1,
        execution_state: CheckpointBlob::payload(format!("execution state {turn}")),
    }
}

fn usage(source: &str, input_tokens: u64, output_tokens: u64) -> TokenLedgerEntry {
    TokenLedgerEntry {
        source: source.into(),
        model: "example-model".into(),
        usage: TokenUsage { input_tokens, output_tokens, ..Default::default() },
    }
}

fn short(reference: Option<&str>) -> String {
    reference.map_or_else(|| "-".into(), |reference| reference.chars().take(19).collect())
}
