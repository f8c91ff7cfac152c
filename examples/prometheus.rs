//! A durable file store under tracing and metrics, exported for Prometheus.
//!
//! ```text
//! cargo run --example prometheus            # run the workload, print, self-scrape, exit
//! cargo run --example prometheus -- --serve # …then keep serving until Ctrl-C
//! RUST_LOG=debug cargo run --example prometheus   # also see every store call's span/event
//! ```
//!
//! The stack is `tracing → metrics → file store`, built once and applied to every handle of
//! the factory, so all sessions share one metrics table. The recorder is
//! `metrics-exporter-prometheus`, with the OpenTelemetry database-client buckets for the
//! duration histogram, and its own HTTP listener serves `/metrics` on loopback port 9184 (set
//! `STRATA_METRICS_PORT` to change it).

use std::error::Error;
use std::net::SocketAddr;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use strata::file::{FileStoreFactory, FileStoreOptions};
use strata::layers::metrics::{DURATION_BUCKETS, names};
use strata::layers::{MetricsLayer, TracingLayer};
use strata::{
    Bytes, CheckpointBlob, DeliveryPolicy, GraphCommitDelta, MergeKey, QueuedWorkBatchDraft,
    QueuedWorkClaimBoundary, RuntimeCheckpoint, RuntimeCommit, RuntimePersistence,
    RuntimeTurnCommitStamp, SessionNodeRecord, SessionReadScope, SessionStoreFactory,
    SessionStoreRequest, SlotPolicy, StoreBuilder, StoreError, TokenLedgerEntry, TokenUsage,
};
use tracing_subscriber::EnvFilter;

/// The loopback port the exporter listens on unless `STRATA_METRICS_PORT` says otherwise.
const DEFAULT_PORT: u16 = 9184;

/// How long the exporter keeps serving without `--serve`.
const SERVE_FOR: Duration = Duration::from_secs(3);

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let keep_serving = std::env::args().any(|arg| arg == "--serve");
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();

    // 1. The recorder, installed before the layers' first call.
    let port = std::env::var("STRATA_METRICS_PORT").ok().and_then(|port| port.parse().ok());
    let address = SocketAddr::from(([127, 0, 0, 1], port.unwrap_or(DEFAULT_PORT)));
    let (recorder, exporter) = PrometheusBuilder::new()
        .with_http_listener(address)
        .set_buckets_for_metric(Matcher::Full(names::OPERATION_DURATION.into()), &DURATION_BUCKETS)?
        .build()?;
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)?;
    tokio::spawn(async move {
        if let Err(error) = exporter.await {
            tracing::error!(?error, "the metrics listener stopped");
        }
    });
    println!("scrape http://{address}/metrics");

    // 2. A file-store factory whose every handle is wrapped in tracing → metrics.
    let dir = tempfile::tempdir()?;
    let factory = StoreBuilder::new()
        .layer(TracingLayer::default().with_namespace("example"))
        .layer(MetricsLayer::default().with_store_name("example"))
        .build_factory(FileStoreFactory::open(dir.path(), FileStoreOptions::default())?);

    // 3. A small agent workload: three sessions, four turns each.
    for session in ["support-1", "support-2", "research-1"] {
        let store = factory.create_store(SessionStoreRequest::new(session)).await?;
        run_session(&*store, session, 4).await?;
    }

    // 4. What a scrape returns (the exporter renders the same text for its listener).
    let scraped = handle.render();
    let calls = scraped.lines().filter(|line| line.starts_with(names::OPERATIONS)).count();
    println!("scraped {} bytes, {calls} call series; for example:", scraped.len());
    for line in scraped.lines().filter(|line| {
        line.starts_with(names::OPERATIONS) && !line.ends_with(" 0")
            || line.starts_with(names::COMMIT_NODES)
            || line.starts_with(names::ERRORS)
    }) {
        println!("  {line}");
    }

    if keep_serving {
        println!("serving http://{address}/metrics until interrupted (Ctrl-C)");
        std::future::pending::<()>().await;
    } else {
        println!("serving for {SERVE_FOR:?} more (pass --serve to keep serving)");
        tokio::time::sleep(SERVE_FOR).await;
    }
    Ok(())
}

/// One session: each turn enqueues a user message, claims it, and commits the turn (two
/// nodes, a checkpoint, usage, the claim's completion) with a turn stamp; a stale writer then
/// loses the CAS race; finally the session is compacted.
async fn run_session(
    store: &dyn RuntimePersistence,
    session: &str,
    turns: u64,
) -> Result<(), StoreError> {
    let mut leaf: Option<String> = None;
    for turn in 1..=turns {
        store.enqueue_queued_work(user_message(session, turn)).await?;
        let claim = store
            .claim_ready_queued_work(session, "worker", QueuedWorkClaimBoundary::Idle, 30_000, 8)
            .await?;
        let user = node(format!("{session}-u{turn}"), leaf.clone(), "user message");
        let reply = node(format!("{session}-a{turn}"), Some(user.node_id.clone()), "reply");
        leaf = Some(reply.node_id.clone());
        let mut commit = RuntimeCommit {
            session_id: session.to_owned(),
            expected_head_revision: Some(turn - 1),
            config: Bytes::from_static(b"{\"model\":\"m\"}"),
            graph: GraphCommitDelta::Append {
                nodes: vec![user, reply],
                leaf_node_id: leaf.clone(),
            },
            checkpoint: Some(RuntimeCheckpoint {
                turn_state: Bytes::from(format!("turn {turn}")),
                tool_state: CheckpointBlob::payload(format!("tools after turn {turn}")),
                ..RuntimeCheckpoint::default()
            }),
            usage_deltas: vec![TokenLedgerEntry {
                source: "agent".into(),
                model: "m".into(),
                usage: TokenUsage { input_tokens: 120, output_tokens: 40, ..TokenUsage::default() },
            }],
            completed_queue_claims: claim.iter().map(|claim| claim.completion()).collect(),
            ..RuntimeCommit::default()
        };
        commit.turn_commit = Some(RuntimeTurnCommitStamp {
            session_id: session.to_owned(),
            turn_id: format!("turn-{turn}"),
            turn_commit_hash: strata::commit_semantic_hash(&commit),
        });
        store.commit_runtime_state(commit).await?;
    }
    // A stale writer: its expected revision is behind the head (a semantic outcome).
    let stale = RuntimeCommit {
        session_id: session.to_owned(),
        expected_head_revision: Some(0),
        ..RuntimeCommit::default()
    };
    let conflict = store.commit_runtime_state(stale).await;
    assert!(matches!(conflict, Err(StoreError::HeadRevisionConflict { .. })));

    store.load_session(SessionReadScope::ActivePath { leaf_node_id: None }).await?;
    store.tombstone_nodes(&[format!("{session}-a1")]).await?;
    store.vacuum().await?;
    store.gc_unreachable().await?;
    Ok(())
}

fn user_message(session: &str, turn: u64) -> QueuedWorkBatchDraft {
    QueuedWorkBatchDraft {
        session_id: session.to_owned(),
        source_key: Some(format!("message-{turn}")),
        delivery_policy: DeliveryPolicy::AfterCurrentTurnCommit,
        slot_policy: SlotPolicy::Join,
        merge_key: MergeKey::PayloadDefault,
        available_at_ms: 0,
        payloads: vec![Bytes::from(format!("user message {turn}"))],
    }
}

fn node(id: String, parent: Option<String>, text: &'static str) -> SessionNodeRecord {
    SessionNodeRecord {
        node_id: id,
        parent_node_id: parent,
        payload: Bytes::from_static(text.as_bytes()),
        timestamp_ms: 0,
        frame_id: None,
        cause: None,
    }
}
