//! The cache layer against the stores it fronts, in one run: `cargo bench --bench cache`.
//!
//! Sessions have the shape ordinary runtime commits leave: turns of two nodes (a user and an
//! assistant message, ~740-byte JSON payloads, frame id and cause set) under the previous
//! turn, each a stamped commit with a usage row, on the durable file store (fdatasync per
//! commit, not compacted unless stated).
//!
//! - `load_session_1k/*`: a `FullGraph` read of a 1k-node session: the bare file store as
//!   commits left it (most of its graph already in a snapshot's section: a session this small
//!   compacts once its live log segment passes 512 KiB; the newest nodes in the in-memory
//!   log image), the same after `compact()` (the whole graph read from the snapshot's
//!   section), and a cache hit.
//! - `load_node/*`: the bare in-memory store's `load_node` and a cache hit over it (both
//!   behind `Arc<dyn RuntimePersistence>`, as stacks are used), and the hit's overhead over
//!   the bare store measured back to back within each sample.
//! - `session_turns/*`: what a runtime does per turn, on the file store with and without the
//!   cache: one stamped commit appending a turn, then a reload of the head's active path
//!   (~1k nodes: every 100 turns the next turn branches off an early node, as after a rewind,
//!   so the path stays between 900 and 1100 nodes however long criterion runs): `durable/`
//!   with the default fdatasync per commit, `os_buffered/` without it (so that the disk's
//!   jitter does not drown the reads), on a session as commits left it and on one compacted
//!   before the turns (`compacted_`: its older nodes read from the snapshot's section, as in
//!   any session past its compaction threshold). The hit rate
//!   of the reloads is measured before the groups on 300 turns (store reads counted by the
//!   testkit's fault layer under the cache) and printed as `session_turns hit rate ...`.
//!
//! Every sample runs its calls in one loop inside one `block_on` (current-thread runtime).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use strata::file::{FileStore, FileStoreOptions, SyncPolicy};
use strata::layers::CacheLayer;
use strata::memory::MemoryStore;
use strata::{
    Bytes, GraphCommitDelta, Layer, Operation, RuntimeCommit, RuntimePersistence,
    RuntimeTurnCommitStamp, SessionNodeRecord, SessionReadScope, StoreBuilder, TokenLedgerEntry,
    TokenUsage, commit_semantic_hash,
};
use strata_testkit::faults::FaultInjection;
use tokio::runtime::Runtime;

const SESSION: &str = "bench";
/// Turns of the seeded session (two nodes each).
const SEED_TURNS: usize = 500;
/// Every this many turns, the next one branches off an early node of the seeded path.
const REWIND_EVERY: u64 = 100;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread().build().expect("runtime")
}

/// A ~740-byte JSON message.
fn message(role: &str, turn: u64) -> Bytes {
    let text = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(12);
    Bytes::from(format!(r#"{{"role":"{role}","turn":{turn},"content":"{text}"}}"#))
}

fn node(id: String, parent: Option<String>, role: &str, turn: u64) -> SessionNodeRecord {
    SessionNodeRecord {
        node_id: id,
        parent_node_id: parent,
        payload: message(role, turn),
        timestamp_ms: 1_700_000_000_000 + turn,
        frame_id: Some("frame-main".to_owned()),
        cause: Some(if role == "user" { "input" } else { "model" }.to_owned()),
    }
}

/// Turn `turn`'s commit: a user and an assistant node under `parent`, stamped, one usage row.
fn turn_commit(turn: u64, parent: Option<String>) -> RuntimeCommit {
    let user = format!("t{turn}-user");
    let assistant = format!("t{turn}-assistant");
    let nodes = vec![
        node(user.clone(), parent, "user", turn),
        node(assistant.clone(), Some(user), "assistant", turn),
    ];
    let mut commit = RuntimeCommit {
        session_id: SESSION.to_owned(),
        config: Bytes::from_static(br#"{"model":"m","temperature":0.2}"#),
        graph: GraphCommitDelta::Append { nodes, leaf_node_id: Some(assistant) },
        usage_deltas: vec![TokenLedgerEntry {
            source: "agent".to_owned(),
            model: "m".to_owned(),
            usage: TokenUsage { input_tokens: 900, output_tokens: 200, ..TokenUsage::default() },
        }],
        ..RuntimeCommit::default()
    };
    commit.turn_commit = Some(RuntimeTurnCommitStamp {
        session_id: SESSION.to_owned(),
        turn_id: format!("turn-{turn}"),
        turn_commit_hash: commit_semantic_hash(&commit),
    });
    commit
}

/// The parent of turn `turn` (> the seeded turns): the previous assistant node, or an early
/// node of the seeded path every `REWIND_EVERY` turns.
fn parent_of(turn: u64) -> String {
    if turn.is_multiple_of(REWIND_EVERY) {
        "t449-assistant".to_owned()
    } else {
        format!("t{}-assistant", turn - 1)
    }
}

/// A file store holding `SEED_TURNS` turns (1k nodes), committed one turn at a time.
fn seeded_file_store(rt: &Runtime, dir: &std::path::Path, sync: SyncPolicy) -> FileStore {
    let store = FileStore::open(dir, FileStoreOptions::default().with_sync(sync)).expect("open");
    rt.block_on(async {
        for turn in 0..SEED_TURNS as u64 {
            let parent = turn.checked_sub(1).map(|previous| format!("t{previous}-assistant"));
            store.commit_runtime_state(turn_commit(turn, parent)).await.expect("seed commit");
        }
    });
    store
}

/// Runs `iterations` calls of `call`; the elapsed time.
fn timed<F, Fut, T>(rt: &Runtime, iterations: u64, mut call: F) -> Duration
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    rt.block_on(async {
        let start = Instant::now();
        for iteration in 0..iterations {
            black_box(call(iteration).await);
        }
        start.elapsed()
    })
}

fn load_session_1k(c: &mut Criterion) {
    let rt = runtime();
    let (uncompacted_dir, compacted_dir) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let uncompacted: Arc<dyn RuntimePersistence> =
        Arc::new(seeded_file_store(&rt, uncompacted_dir.path(), SyncPolicy::Always));
    let compacted = seeded_file_store(&rt, compacted_dir.path(), SyncPolicy::Always);
    compacted.compact().expect("compact");
    let compacted: Arc<dyn RuntimePersistence> = Arc::new(compacted);
    let cached: Arc<dyn RuntimePersistence> =
        Arc::new(CacheLayer::default().layer(uncompacted.clone()));
    let full = || SessionReadScope::FullGraph;
    let read = rt.block_on(cached.load_session(full())).unwrap().expect("seeded");
    assert_eq!(read.graph.nodes.len(), 2 * SEED_TURNS);

    let mut group = c.benchmark_group("load_session_1k");
    // The hit runs right after the read it is compared with (both are mostly allocation: run
    // after the compacted store's churn, the same hit measured up to 1.5x slower).
    for (name, store) in
        [("file_store", &uncompacted), ("cache_hit", &cached), ("file_store_compacted", &compacted)]
    {
        group.bench_function(name, |b| {
            b.iter_custom(|iterations| {
                timed(&rt, iterations, |_| async { store.load_session(full()).await.unwrap() })
            })
        });
    }
    group.finish();
}

fn load_node(c: &mut Criterion) {
    let rt = runtime();
    let memory = MemoryStore::new();
    rt.block_on(memory.commit_runtime_state(turn_commit(0, None))).expect("seed");
    let bare: Arc<dyn RuntimePersistence> = Arc::new(memory.clone());
    let cached: Arc<dyn RuntimePersistence> = Arc::new(CacheLayer::default().layer(memory));
    rt.block_on(cached.load_node("t0-user")).unwrap().expect("warm-up read");

    let reads = |store: &Arc<dyn RuntimePersistence>, iterations| {
        timed(&rt, iterations, |_| async { store.load_node(black_box("t0-user")).await.unwrap() })
    };
    let mut group = c.benchmark_group("load_node");
    for (name, store) in [("memory_store", &bare), ("cache_hit", &cached)] {
        group.bench_function(name, |b| b.iter_custom(|iterations| reads(store, iterations)));
    }
    // The hit's extra cost over the bare store, both measured back to back within each sample
    // (so that load drifting between samples cancels); a sample where noise made the hit
    // faster counts as 1 ns.
    group.bench_function("cache_hit_overhead", |b| {
        b.iter_custom(|iterations| {
            let hit = reads(&cached, iterations);
            hit.saturating_sub(reads(&bare, iterations)).max(Duration::from_nanos(1))
        })
    });
    group.finish();
}

/// One turn: commit it, then reload the head's active path.
async fn turn(store: &dyn RuntimePersistence, turn: u64) -> usize {
    store.commit_runtime_state(turn_commit(turn, Some(parent_of(turn)))).await.expect("commit");
    let path = SessionReadScope::ActivePath { leaf_node_id: None };
    store.load_session(path).await.unwrap().expect("session").graph.nodes.len()
}

/// The share of reloads the cache answered, over 300 turns.
fn hit_rate(rt: &Runtime) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let faults = FaultInjection::new();
    let store = StoreBuilder::new()
        .layer(CacheLayer::default())
        .layer(faults.clone())
        .build(seeded_file_store(rt, dir.path(), SyncPolicy::Always));
    const TURNS: u64 = 300;
    let first = SEED_TURNS as u64;
    rt.block_on(async {
        for number in first..first + TURNS {
            turn(&store, number).await;
        }
    });
    1.0 - faults.calls(Operation::LoadSession) as f64 / TURNS as f64
}

fn session_turns(c: &mut Criterion) {
    let rt = runtime();
    println!("session_turns hit rate (cache): {:.3}", hit_rate(&rt));
    let shapes = [
        ("durable/", SyncPolicy::Always, false),
        ("os_buffered/", SyncPolicy::OsBuffered, false),
        ("os_buffered/compacted_", SyncPolicy::OsBuffered, true),
    ];
    let dirs: Vec<_> = (0..2 * shapes.len()).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut variants: Vec<(String, Arc<dyn RuntimePersistence>)> = Vec::new();
    for ((prefix, sync, compacted), dirs) in shapes.into_iter().zip(dirs.chunks(2)) {
        let stores = dirs.iter().map(|dir| seeded_file_store(&rt, dir.path(), sync));
        for (store, cached) in stores.zip([false, true]) {
            if compacted {
                store.compact().expect("compact");
            }
            let (name, store): (_, Arc<dyn RuntimePersistence>) = if cached {
                ("cache", Arc::new(CacheLayer::default().layer(store)))
            } else {
                ("file_store", Arc::new(store))
            };
            variants.push((format!("{prefix}{name}"), store));
        }
    }

    let mut group = c.benchmark_group("session_turns");
    for (name, store) in &variants {
        let mut next = SEED_TURNS as u64;
        group.bench_function(name, |b| {
            b.iter_custom(|iterations| {
                let first = next;
                next += iterations;
                timed(&rt, iterations, |offset| turn(store.as_ref(), first + offset))
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(50);
    targets = load_session_1k, load_node, session_turns
}
criterion_main!(benches);
