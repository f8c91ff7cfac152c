//! Factories across the bridge: lash-sqlite-store's factory inside a Strata layered factory,
//! and Strata's file factory handed to lash.

use std::sync::Arc;

use lash_core::SessionStoreFactory as _;
use strata_core::{
    DurabilityTier, RuntimePersistence as _, SessionReadScope, SessionStoreFactory,
    SessionStoreRequest, StoreBuilder, StoreError,
};
use strata_file::{FileStoreFactory, FileStoreOptions};
use strata_lash::{ForLashFactory, FromLashFactory};
use strata_layers::MetricsLayer;
use strata_testkit::fixtures::{commit, node};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layered_factory_over_lash_sqlite_store() {
    let root = tempfile::tempdir().unwrap();
    let sqlite = lash_sqlite_store::SqliteSessionStoreFactory::new(root.path());
    let factory = StoreBuilder::new()
        .layer(MetricsLayer::default())
        .build_factory(FromLashFactory::new(Arc::new(sqlite)));
    assert_eq!(factory.durability_tier(), DurabilityTier::Durable);

    let store = factory.create_store(SessionStoreRequest::new("s")).await.unwrap();
    let first = commit("s").expect(0).append([node("a", None), node("b", Some("a"))]).build();
    store.commit_runtime_state(first).await.unwrap();
    drop(store);
    let again = factory.create_store(SessionStoreRequest::new("s")).await.unwrap();
    let read = again.load_session(SessionReadScope::FullGraph).await.unwrap().unwrap();
    assert_eq!(read.graph.nodes, vec![node("a", None), node("b", Some("a"))]);
    assert!(matches!(
        factory.open_existing_store("s").await,
        Err(StoreError::Unsupported("open_existing_store"))
    ));
    factory.delete_session("s").await.unwrap();
}

#[tokio::test]
async fn strata_file_factory_for_lash() {
    let root = tempfile::tempdir().unwrap();
    let factory = ForLashFactory::new(
        FileStoreFactory::open(root.path(), FileStoreOptions::default()).unwrap(),
    );
    assert_eq!(factory.durability_tier(), lash_core::DurabilityTier::Durable);
    let request = lash_core::SessionStoreCreateRequest {
        session_id: "s".into(),
        relation: lash_core::SessionRelation::Root,
        policy: lash_core::SessionPolicy::default(),
    };
    let store = factory.create_store(&request).await.unwrap();
    let state = lash_core::RuntimeSessionState { session_id: "s".into(), ..Default::default() };
    let result =
        store.commit_runtime_state(lash_core::RuntimeCommit::persisted_state(&state, &[])).await;
    assert_eq!(result.unwrap().head_revision, 1);
    drop(store);
    factory.delete_session("s").await.unwrap();
    let fresh = factory.create_store(&request).await.unwrap();
    assert!(fresh.load_session(lash_core::SessionReadScope::FullGraph).await.unwrap().is_none());
    let bad = lash_core::SessionStoreCreateRequest { session_id: "../escape".into(), ..request };
    assert!(factory.create_store(&bad).await.is_err(), "an id escaping the root is refused");
}

/// A read of `LARGE_READ_NODES` or more is decoded on the blocking pool: same answer, on a
/// current-thread runtime too.
#[tokio::test]
async fn large_reads_decode_off_the_executor_with_the_same_answer() {
    use lash_core::RuntimePersistence as _;
    let count = strata_lash::mapping::LARGE_READ_NODES + 1;
    let store = strata_lash::ForLash::new(strata_memory::MemoryStore::new());
    let nodes: Vec<lash_core::SessionNodeRecord> = (0..count)
        .map(|i| {
            serde_json::from_value(serde_json::json!({
                "node_id": format!("n{i}"), "timestamp": "", "kind": "plugin",
                "plugin_type": "p", "body": {"i": i},
            }))
            .unwrap()
        })
        .collect();
    let state = lash_core::RuntimeSessionState { session_id: "s".into(), ..Default::default() };
    let mut first = lash_core::RuntimeCommit::persisted_state(&state, &[]);
    first.graph = lash_core::store::GraphCommitDelta::Append { nodes, leaf_node_id: None };
    store.commit_runtime_state(first).await.unwrap();
    let read = store.load_session(lash_core::SessionReadScope::FullGraph).await.unwrap().unwrap();
    assert_eq!(read.graph.nodes.len(), count);
    assert_eq!(
        read.graph.nodes[count - 1].plugin().map(|(_, body)| body.clone()),
        Some(serde_json::json!({"i": count - 1}))
    );
}
