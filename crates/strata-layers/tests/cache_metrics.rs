//! The cache layer's metrics, read through a debugging recorder (installed once for this
//! test binary): a scripted sequence records exact hit, miss, load, invalidation, update and
//! revalidation counts, and the bounds record evictions by cause.

#![cfg(feature = "cache")]

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use strata_core::*;
use strata_layers::CacheLayer;
use strata_layers::cache::{Revalidation, names};
use strata_memory::MemoryStore;
use strata_testkit::faults::FaultInjection;
use strata_testkit::fixtures::{chain, commit, meta, node};
use tokio::sync::Mutex;

const SESSION: &str = "s1";
const FULL: SessionReadScope = SessionReadScope::FullGraph;

static SNAPSHOTTER: OnceLock<Snapshotter> = OnceLock::new();
static EXCLUSIVE: Mutex<()> = Mutex::const_new(());

/// Counter values labelled `store=<store>`, by `name{label=value}` (other labels sorted).
async fn counters(store: &str) -> BTreeMap<String, u64> {
    let snapshot = SNAPSHOTTER.get().expect("installed").snapshot();
    let mut counters = BTreeMap::new();
    for (key, _, _, value) in snapshot.into_vec() {
        let key = key.key();
        if !key.labels().any(|label| label.key() == "store" && label.value() == store) {
            continue;
        }
        let mut labels: Vec<String> = key
            .labels()
            .filter(|label| label.key() != "store")
            .map(|label| format!("{}={}", label.key(), label.value()))
            .collect();
        labels.sort();
        if let DebugValue::Counter(count) = value {
            counters.insert(format!("{}{{{}}}", key.name(), labels.join(",")), count);
        }
    }
    counters
}

/// Installs the recorder once; metrics tests run one at a time (a snapshot resets counters).
async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    SNAPSHOTTER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder.install().expect("the only recorder of this binary");
        snapshotter
    });
    EXCLUSIVE.lock().await
}

fn layered(layer: CacheLayer) -> (impl RuntimePersistence, FaultInjection, MemoryStore) {
    let (faults, bare) = (FaultInjection::new(), MemoryStore::new());
    let store = StoreBuilder::new().layer(layer).layer(faults.clone()).build(bare.clone());
    (store, faults, bare)
}

fn count(counters: &BTreeMap<String, u64>, name: &str, label: &str) -> u64 {
    counters.get(&format!("{name}{{{label}}}")).copied().unwrap_or(0)
}

#[tokio::test]
async fn a_scripted_sequence_records_exact_counts() {
    let _exclusive = exclusive().await;
    let (store, faults, bare) = layered(CacheLayer::default().with_store_name("scripted"));
    bare.commit_runtime_state(commit(SESSION).append(chain("n", 2, None)).build()).await.unwrap();
    bare.save_session_meta(meta(SESSION, "one")).await.unwrap();

    for _ in 0..2 {
        store.load_session(FULL).await.unwrap();
        store.load_session(SessionReadScope::ActivePath { leaf_node_id: None }).await.unwrap();
        store.load_node("n0").await.unwrap();
    }
    store.load_node("missing").await.unwrap();
    store.load_session_meta().await.unwrap();
    let next = commit(SESSION).expect(1).append([node("n2", Some("n1"))]);
    store.commit_runtime_state(next.build()).await.unwrap();
    store.save_session_meta(meta(SESSION, "two")).await.unwrap();
    store.tombstone_nodes(&["n2".to_owned()]).await.unwrap();
    store.vacuum().await.unwrap();
    store.gc_unreachable().await.unwrap();
    let refused = StoreError::NotApplied("refused".into());
    faults.fail_next(Operation::CommitRuntimeState, 1, refused);
    store.commit_runtime_state(commit(SESSION).build()).await.unwrap_err();

    let counters = counters("scripted").await;
    let op = |name: &str| format!("operation={name}");
    let expected = [
        (names::HITS, op("load_session"), 2),
        (names::MISSES, op("load_session"), 2),
        (names::LOADS, op("load_session"), 2),
        (names::HITS, op("load_node"), 1),
        (names::MISSES, op("load_node"), 2),
        (names::LOADS, op("load_node"), 2),
        (names::MISSES, op("load_session_meta"), 1),
        (names::LOADS, op("load_session_meta"), 1),
        // The commit, the metadata save, the tombstone and the vacuum; not the refused commit.
        (names::INVALIDATIONS, op("commit_runtime_state"), 1),
        (names::INVALIDATIONS, op("save_session_meta"), 1),
        (names::INVALIDATIONS, op("tombstone_nodes"), 1),
        (names::INVALIDATIONS, op("vacuum"), 1),
        // Full graph, head path by `None` and by the new leaf; the metadata record.
        (names::UPDATES, op("commit_runtime_state"), 3),
        (names::UPDATES, op("save_session_meta"), 1),
    ];
    for (name, label, value) in &expected {
        assert_eq!(count(&counters, name, label), *value, "{name}{{{label}}} in {counters:#?}");
    }
    let nonzero = counters.values().filter(|value| **value > 0).count();
    assert_eq!(nonzero, expected.len(), "unexpected series: {counters:#?}");
    assert!(counters.keys().all(|key| !key.contains("session_id") && !key.contains("n0")));
}

#[tokio::test]
async fn revalidation_probes_are_counted_fresh_or_stale() {
    let _exclusive = exclusive().await;
    let layer = CacheLayer::default()
        .with_revalidation(Revalidation::HeadRevision)
        .with_store_name("revalidated");
    let (store, _faults, bare) = layered(layer);
    bare.commit_runtime_state(commit(SESSION).build()).await.unwrap();
    store.load_session(FULL).await.unwrap();
    store.load_session(FULL).await.unwrap();
    bare.commit_runtime_state(commit(SESSION).build()).await.unwrap();
    store.load_session(FULL).await.unwrap();
    let counters = counters("revalidated").await;
    assert_eq!(count(&counters, names::REVALIDATIONS, "outcome=fresh"), 1);
    assert_eq!(count(&counters, names::REVALIDATIONS, "outcome=stale"), 1);
    assert_eq!(count(&counters, names::HITS, "operation=load_session"), 1);
    assert_eq!(count(&counters, names::LOADS, "operation=load_session"), 2);
}

#[tokio::test]
async fn the_bounds_record_evictions_by_cause() {
    let _exclusive = exclusive().await;
    let layer = CacheLayer::default()
        .with_max_entries(4)
        .with_time_to_live(Some(Duration::from_millis(100)))
        .with_store_name("bounded");
    let (store, _faults, bare) = layered(layer.clone());
    bare.commit_runtime_state(commit(SESSION).append(chain("n", 50, None)).build()).await.unwrap();
    for index in 0..50 {
        store.load_node(&format!("n{index}")).await.unwrap();
    }
    layer.run_pending_tasks().await;
    assert!(layer.entry_count() <= 4);
    tokio::time::sleep(Duration::from_millis(300)).await;
    layer.run_pending_tasks().await;
    assert_eq!(layer.entry_count(), 0, "every entry expired");
    let counters = counters("bounded").await;
    let by_size = count(&counters, names::EVICTIONS, "cause=size");
    let expired = count(&counters, names::EVICTIONS, "cause=expired");
    assert!(by_size >= 46, "{counters:#?}");
    assert!(expired >= 1, "{counters:#?}");
    assert_eq!(by_size + expired, 50, "every entry left once: {counters:#?}");
}
