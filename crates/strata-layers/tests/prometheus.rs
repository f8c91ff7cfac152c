//! Renders the metrics layer's and the policy layers' output through the Prometheus exporter
//! (no network) and checks that every metric of the crate docs' table is exported, with its
//! documented type.

#![cfg(all(
    feature = "metrics",
    feature = "retry",
    feature = "timeout",
    feature = "limit",
    feature = "breaker"
))]

use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use strata_core::{
    Bytes, GraphCommitDelta, Operation, QueuedWorkClaimBoundary, RuntimeCommit, RuntimePersistence,
    SessionNodeRecord, SessionReadScope, StoreBuilder, StoreError,
};
use strata_layers::metrics::{DURATION_BUCKETS, names};
use strata_layers::{
    CircuitBreakerLayer, ConcurrencyLimitLayer, MetricsLayer, RetryLayer, TimeoutLayer,
};
use strata_memory::MemoryStore;
use strata_testkit::faults::FaultInjection;
use strata_testkit::fixtures;

/// `(name, type)` of every row of the metric table in the crate docs naming a metric of the
/// metrics layer (the cache layer's `strata_store_cache_` rows are checked with that layer).
fn documented_metrics() -> Vec<(&'static str, &'static str)> {
    include_str!("../src/lib.rs")
        .lines()
        .filter_map(|line| line.strip_prefix("//! | `"))
        .map(|row| {
            let mut cells = row.split('|').map(str::trim);
            let name = cells.next().unwrap().trim_end_matches('`');
            (name, cells.next().unwrap())
        })
        .filter(|(name, _)| name.starts_with("strata_") && !name.starts_with("strata_store_cache_"))
        .collect()
}

fn commit(expected: u64, node_id: &str) -> RuntimeCommit {
    let node = SessionNodeRecord {
        node_id: node_id.into(),
        parent_node_id: None,
        payload: Bytes::from_static(b"node"),
        timestamp_ms: 0,
        frame_id: None,
        cause: None,
    };
    RuntimeCommit {
        session_id: "s1".into(),
        expected_head_revision: Some(expected),
        graph: GraphCommitDelta::Append { nodes: vec![node], leaf_node_id: Some(node_id.into()) },
        ..RuntimeCommit::default()
    }
}

#[tokio::test]
async fn every_documented_metric_is_exported_with_its_type() {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(names::OPERATION_DURATION.into()), &DURATION_BUCKETS)
        .expect("valid buckets")
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).expect("the only recorder of this test binary");

    let faults = FaultInjection::new();
    let store = StoreBuilder::new()
        .layer(MetricsLayer::default().with_store_name("exporter"))
        .layer(faults.clone())
        .build(MemoryStore::new());
    store.commit_runtime_state(commit(0, "a")).await.unwrap();
    store.commit_runtime_state(commit(0, "b")).await.unwrap_err();
    store.tombstone_nodes(&["a".to_owned()]).await.unwrap();
    store.vacuum().await.unwrap();
    store.gc_unreachable().await.unwrap();
    let idle = QueuedWorkClaimBoundary::Idle;
    assert!(store.claim_ready_queued_work("s1", "o", idle, 100, 1).await.unwrap().is_none());
    store.enqueue_queued_work(fixtures::draft("s1").exclusive().build()).await.unwrap();
    assert!(store.claim_ready_queued_work("s1", "o", idle, 100, 1).await.unwrap().is_some());
    faults.fail_next(Operation::LoadSession, 1, StoreError::Unavailable("disk".into()));
    store.load_session(SessionReadScope::FullGraph).await.unwrap_err();

    exercise_policy_layers().await;

    let rendered = handle.render();
    let documented = documented_metrics();
    assert_eq!(documented.len(), 23, "the table lists every metric");
    for (name, kind) in documented {
        let kind = match kind {
            "histogram" if name == names::OPERATION_DURATION => "histogram",
            // Without explicit buckets the exporter renders a histogram as a summary.
            "histogram" => "summary",
            other => other,
        };
        assert!(
            rendered.contains(&format!("# TYPE {name} {kind}\n")),
            "{name} ({kind}) missing from:\n{rendered}"
        );
    }
    assert!(rendered.contains(
        "strata_store_operation_duration_seconds_bucket{store=\"exporter\",operation=\"commit_runtime_state\",outcome=\"ok\",le=\"0.001\"}"
    ), "{rendered}");
    assert!(rendered.contains("# HELP strata_store_operations_total"), "descriptions exported");
}

/// Makes every policy layer record each of its metrics: retries and a give-up, timeouts, a
/// wait for a permit and a rejection, a breaker that opens and turns a call away.
async fn exercise_policy_layers() {
    let faults = FaultInjection::new();
    let store = StoreBuilder::new()
        .layer(RetryLayer::default().with_max_attempts(2).with_store_name("exporter"))
        .layer(TimeoutLayer::default().with_timeout(Duration::from_millis(1)))
        .layer(ConcurrencyLimitLayer::new(1).with_max_wait(Duration::from_millis(1)))
        .layer(CircuitBreakerLayer::default().with_consecutive_failures(2))
        .layer(faults.clone())
        .build(MemoryStore::new());

    faults.hang_next(Operation::LoadNode, 2);
    store.load_node("n").await.unwrap_err();

    faults.hang_next(Operation::ListQueuedWork, 1);
    let mut holder = Box::pin(store.list_queued_work("s1"));
    std::future::poll_fn(|cx| {
        assert!(holder.as_mut().poll(cx).is_pending(), "holds the only permit");
        std::task::Poll::Ready(())
    })
    .await;
    store.load_session_meta().await.unwrap_err();
    drop(holder);

    faults.fail_next(Operation::Vacuum, 2, StoreError::Unavailable("disk".into()));
    store.vacuum().await.unwrap_err();
    let open = store.vacuum().await.unwrap_err();
    assert!(matches!(open, StoreError::CircuitOpen { .. }), "{open}");
}
