//! Strata's file store against lash-sqlite-store, end to end as the lash runtime sees them
//! (`Arc<dyn lash_core::RuntimePersistence>`: typed lash nodes in and out, every encode and
//! decode included), plus the bridge's own cost and the payload encodings it chose between:
//! `cargo bench --bench lash`.
//!
//! Both stores hold one session of 20k realistic conversation nodes (~740 bytes each as lash
//! JSON) written by 5,000 ordinary stamped commits of 4 nodes (never compacted by hand); the
//! nodes form 20 chains of 1,000, so the head's active path is 1,000 nodes. The file store is
//! reached through [`ForLash`]; lash-sqlite-store natively (its default options, WAL).
//!
//! - `lash/commit/*`: the durable final-turn commit: 4 appended nodes, one usage row, a turn
//!   stamp, the CAS on the head revision, the checkpoint lash always writes.
//! - `lash/full_graph_20k/*`, `lash/active_path_20k/*`, `lash/load_node/*`: reads.
//! - `lash/reopen_active_path/*`: open the store from disk, load the active path, close.
//! - `bridge/*`: the bridge's cost per call over each side's bare store: `ForLash` over the
//!   file store vs the file store called with Strata's types, `FromLash` over
//!   lash-sqlite-store vs lash-sqlite-store called with lash's types.
//! - `encoding/*`: decoding 20k nodes back into lash nodes from lash's JSON (what
//!   lash-sqlite-store does), from MessagePack of lash's type, and from the bridge's encoding.
//!
//! Before the criterion groups, per-call latencies of 1,000 commits and 200 active-path loads
//! per store are printed as `latency …` lines (p50, p99, max).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use lash_core::RuntimePersistence as LashPersistence;
use lash_core::store::{GraphCommitDelta, RuntimeCommit};
use strata::RuntimePersistence as _;
use strata::file::{FileStore, FileStoreOptions};
use strata_lash::mapping::{self, Decode};
use strata_lash::{ForLash, FromLash};
use tokio::runtime::Runtime;

const SESSION: &str = "bench";
const NODES: usize = 20_000;
const PER_COMMIT: usize = 4;
const CHAIN: usize = 1_000;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Node `i`: an assistant message of 420 characters (~740 bytes as lash JSON); every
/// `CHAIN`-th node starts a new chain.
fn lash_node(i: usize) -> lash_core::SessionNodeRecord {
    let parent = (!i.is_multiple_of(CHAIN)).then(|| format!("node-{:06}", i - 1));
    let text = format!("{i:06} ").repeat(60);
    serde_json::from_value(serde_json::json!({
        "node_id": format!("node-{i:06}"),
        "parent_node_id": parent,
        "caused_by": {"type": "turn", "session_id": SESSION, "turn_id": format!("turn-{}", i / PER_COMMIT)},
        "agent_frame_id": "frame-1",
        "timestamp": "2026-06-02T10:11:12.123456789+00:00",
        "kind": "event",
        "event": {"Conversation": {"id": format!("m{i}"), "role": "Assistant", "parts": [
            {"id": format!("m{i}.p0"), "kind": "Text", "content": text, "prune_state": "Intact"}
        ]}}
    }))
    .expect("a valid lash node")
}

/// The final-turn commit number `turn`: nodes `4·turn..4·turn+4`, one usage row, the stamp,
/// the CAS, and the checkpoint lash always writes (turn state and a tool-state snapshot).
fn final_commit(turn: usize, expected: Option<u64>) -> RuntimeCommit {
    let nodes: Vec<_> = (turn * PER_COMMIT..(turn + 1) * PER_COMMIT).map(lash_node).collect();
    let leaf = nodes.last().map(|node| node.node_id.clone());
    let mut state = lash_core::RuntimeSessionState {
        session_id: SESSION.to_owned(),
        turn_index: turn,
        tool_state_snapshot: Some(lash_core::ToolState::default().with_generation(turn as u64)),
        ..Default::default()
    };
    state.ensure_agent_frame_initialized();
    let usage = lash_core::TokenLedgerEntry {
        source: "turn".into(),
        model: "bench-model".into(),
        usage: lash_core::TokenUsage {
            input_tokens: 900,
            output_tokens: 120,
            ..Default::default()
        },
    };
    let mut commit = RuntimeCommit::persisted_state(&state, &[usage]);
    commit.graph = GraphCommitDelta::Append { nodes, leaf_node_id: leaf };
    commit.expected_head_revision = expected;
    let hash = commit.turn_commit_hash().expect("turn commit hash");
    commit.with_turn_commit(lash_core::RuntimeTurnCommitStamp::new(
        SESSION,
        format!("turn-{turn}"),
        hash,
    ))
}

/// A store under test, as lash sees it, and how to reopen it from disk.
struct Subject {
    name: &'static str,
    path: PathBuf,
    open: fn(&Path) -> Arc<dyn LashPersistence>,
}

fn open_file(path: &Path) -> Arc<dyn LashPersistence> {
    Arc::new(ForLash::new(FileStore::open(path, FileStoreOptions::default()).unwrap()))
}

fn open_sqlite(path: &Path) -> Arc<dyn LashPersistence> {
    let open = lash_sqlite_store::Store::open(path);
    let store = tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(open));
    Arc::new(store.unwrap())
}

/// Writes the 20k-node session with 5,000 ordinary commits; returns the head revision.
async fn seed(store: &dyn LashPersistence) -> u64 {
    let mut head = None;
    for turn in 0..NODES / PER_COMMIT {
        head =
            Some(store.commit_runtime_state(final_commit(turn, head)).await.unwrap().head_revision);
    }
    head.unwrap()
}

/// Prints the latency percentiles of `samples` (nothing when a filter skipped the group that
/// collects them).
fn percentiles(name: &str, what: &str, mut samples: Vec<Duration>) {
    if samples.is_empty() {
        return;
    }
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    println!(
        "latency {what} {name}: p50 {:?}, p99 {:?}, max {:?} ({} calls)",
        at(0.5),
        at(0.99),
        samples[samples.len() - 1],
        samples.len()
    );
}

fn bench_lash(c: &mut Criterion) {
    let runtime = runtime();
    let scratch = tempfile::tempdir().unwrap();
    let subjects = [
        Subject { name: "strata_file", path: scratch.path().join("file"), open: open_file },
        Subject { name: "lash_sqlite", path: scratch.path().join("sqlite.db"), open: open_sqlite },
    ];
    let mut heads = Vec::new();
    for subject in &subjects {
        let started = Instant::now();
        let head = runtime.block_on(async { seed(&*(subject.open)(&subject.path)).await });
        println!("seeded {} with {NODES} nodes in {:?}", subject.name, started.elapsed());
        heads.push(head);
    }

    // Reopen first, while no handle is open (the file store shares one engine per directory
    // within a process, so an open handle would make "reopen" free).
    let mut group = c.benchmark_group("lash");
    group.sample_size(20);
    for subject in &subjects {
        let samples = Mutex::new(Vec::new());
        group.bench_function(BenchmarkId::new("reopen_active_path", subject.name), |b| {
            b.to_async(&runtime).iter(|| async {
                let started = Instant::now();
                let store = (subject.open)(&subject.path);
                let read = store
                    .load_session(lash_core::SessionReadScope::ActivePath { leaf_node_id: None })
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(read.graph.nodes.len(), CHAIN);
                drop(store);
                samples.lock().unwrap().push(started.elapsed());
            })
        });
        percentiles(subject.name, "reopen+active_path", samples.into_inner().unwrap());
    }

    let stores: Vec<_> = runtime
        .block_on(async { subjects.iter().map(|subject| (subject.open)(&subject.path)).collect() });
    for (subject, store) in subjects.iter().zip(&stores) {
        let mut samples = Vec::new();
        for _ in 0..200 {
            let started = Instant::now();
            runtime
                .block_on(
                    store.load_session(lash_core::SessionReadScope::ActivePath {
                        leaf_node_id: None,
                    }),
                )
                .unwrap();
            samples.push(started.elapsed());
        }
        percentiles(subject.name, "active_path_20k", samples);
    }
    for (subject, store) in subjects.iter().zip(&stores) {
        group.bench_function(BenchmarkId::new("full_graph_20k", subject.name), |b| {
            b.to_async(&runtime).iter(|| async {
                let read = store.load_session(lash_core::SessionReadScope::FullGraph).await;
                assert_eq!(read.unwrap().unwrap().graph.nodes.len(), NODES);
            })
        });
        group.bench_function(BenchmarkId::new("active_path_20k", subject.name), |b| {
            b.to_async(&runtime).iter(|| async {
                let scope = lash_core::SessionReadScope::ActivePath { leaf_node_id: None };
                let read = store.load_session(scope).await;
                assert_eq!(read.unwrap().unwrap().graph.nodes.len(), CHAIN);
            })
        });
        let next = AtomicU64::new(0);
        group.bench_function(BenchmarkId::new("load_node", subject.name), |b| {
            b.to_async(&runtime).iter(|| {
                let id =
                    format!("node-{:06}", next.fetch_add(7919, Ordering::Relaxed) % NODES as u64);
                async move { assert!(store.load_node(&id).await.unwrap().is_some()) }
            })
        });
    }

    // Commits grow the sessions past 20k: measured after the reads.
    for ((subject, store), head) in subjects.iter().zip(&stores).zip(&mut heads) {
        let mut turn = NODES / PER_COMMIT;
        let mut samples = Vec::new();
        for _ in 0..1_000 {
            let commit = final_commit(turn, Some(*head));
            let started = Instant::now();
            *head = runtime.block_on(store.commit_runtime_state(commit)).unwrap().head_revision;
            samples.push(started.elapsed());
            turn += 1;
        }
        percentiles(subject.name, "durable_commit", samples);
        let head = AtomicU64::new(*head);
        group.bench_function(BenchmarkId::new("commit", subject.name), |b| {
            b.to_async(&runtime).iter_batched(
                || {
                    turn += 1;
                    final_commit(turn, Some(head.load(Ordering::Relaxed)))
                },
                |commit| async {
                    let result = store.commit_runtime_state(commit).await.unwrap();
                    head.store(result.head_revision, Ordering::Relaxed);
                },
                criterion::BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

/// The bridge's own cost per call: each bridge against the bare store it wraps, with the
/// arguments already in that store's types.
fn bench_bridge(c: &mut Criterion) {
    let runtime = runtime();
    let scratch = tempfile::tempdir().unwrap();
    let file = FileStore::open(scratch.path().join("file"), FileStoreOptions::default()).unwrap();
    let file = Arc::new(file);
    let bridged_file = ForLash::from_arc(Arc::clone(&file));
    let sqlite = open_on(&runtime, &scratch.path().join("sqlite.db"));
    let bridged_sqlite = FromLash::new(Arc::clone(&sqlite) as Arc<dyn LashPersistence>);
    let seeded: Vec<_> = (0..CHAIN).map(lash_node).collect();
    runtime.block_on(async {
        let mut commit = final_commit(0, None);
        commit.graph = GraphCommitDelta::Append { nodes: seeded.clone(), leaf_node_id: None };
        commit.turn_commit = None;
        bridged_file.commit_runtime_state(commit.clone()).await.unwrap();
        sqlite.commit_runtime_state(commit).await.unwrap();
    });

    let mut group = c.benchmark_group("bridge");
    let next = AtomicU64::new(0);
    let id = || format!("node-{:06}", next.fetch_add(7, Ordering::Relaxed) % CHAIN as u64);
    group.bench_function("load_node/strata_file_bare", |b| {
        b.to_async(&runtime).iter(|| {
            let id = id();
            let file = &file;
            async move { file.load_node(&id).await.unwrap().unwrap() }
        })
    });
    group.bench_function("load_node/strata_file_for_lash", |b| {
        b.to_async(&runtime).iter(|| {
            let id = id();
            let store = &bridged_file;
            async move { LashPersistence::load_node(store, &id).await.unwrap().unwrap() }
        })
    });
    group.bench_function("load_node/lash_sqlite_bare", |b| {
        b.to_async(&runtime).iter(|| {
            let id = id();
            let store = &sqlite;
            async move { store.load_node(&id).await.unwrap().unwrap() }
        })
    });
    group.bench_function("load_node/lash_sqlite_from_lash", |b| {
        b.to_async(&runtime).iter(|| {
            let id = id();
            let store = &bridged_sqlite;
            async move { store.load_node(&id).await.unwrap().unwrap() }
        })
    });

    // Commits: one 4-node blind append with usage and checkpoint; ids from a counter.
    let counter = AtomicU64::new(0);
    let lash_commit = || {
        let base = CHAIN + PER_COMMIT * counter.fetch_add(1, Ordering::Relaxed) as usize;
        let mut commit = final_commit(0, None);
        let nodes: Vec<_> = (base..base + PER_COMMIT).map(lash_node).collect();
        commit.graph = GraphCommitDelta::Append { nodes, leaf_node_id: None };
        commit.turn_commit = None;
        commit
    };
    group.bench_function("commit/strata_file_bare", |b| {
        b.to_async(&runtime).iter_batched(
            || mapping::commit_to_strata(lash_commit()).unwrap(),
            |commit| async { file.commit_runtime_state(commit).await.unwrap() },
            criterion::BatchSize::SmallInput,
        )
    });
    group.bench_function("commit/strata_file_for_lash", |b| {
        b.to_async(&runtime).iter_batched(
            lash_commit,
            |commit| async { bridged_file.commit_runtime_state(commit).await.unwrap() },
            criterion::BatchSize::SmallInput,
        )
    });
    group.bench_function("commit/lash_sqlite_bare", |b| {
        b.to_async(&runtime).iter_batched(
            lash_commit,
            |commit| async { sqlite.commit_runtime_state(commit).await.unwrap() },
            criterion::BatchSize::SmallInput,
        )
    });
    group.bench_function("commit/lash_sqlite_from_lash", |b| {
        b.to_async(&runtime).iter_batched(
            || mapping::commit_to_strata(lash_commit()).unwrap(),
            |commit| async { bridged_sqlite.commit_runtime_state(commit).await.unwrap() },
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn open_on(runtime: &Runtime, path: &Path) -> Arc<lash_sqlite_store::Store> {
    Arc::new(runtime.block_on(lash_sqlite_store::Store::open(path)).unwrap())
}

/// Decoding 20k stored nodes back into lash nodes, per encoding.
fn bench_encoding(c: &mut Criterion) {
    let nodes: Vec<_> = (0..NODES).map(lash_node).collect();
    let json: Vec<Vec<u8>> = nodes.iter().map(|node| serde_json::to_vec(node).unwrap()).collect();
    let msgpack: Vec<Vec<u8>> =
        nodes.iter().map(|node| rmp_serde::to_vec_named(node).unwrap()).collect();
    let bridge: Vec<_> =
        nodes.iter().cloned().map(|node| mapping::node_to_strata(node).unwrap()).collect();
    println!(
        "encoding sizes per node: lash JSON {} B, MessagePack of lash's type {} B, bridge {} B",
        json[0].len(),
        msgpack[0].len(),
        bridge[0].payload.len()
    );
    let mut group = c.benchmark_group("encoding");
    group.sample_size(20);
    group.bench_function("decode_20k/lash_json", |b| {
        b.iter(|| {
            for bytes in &json {
                black_box(serde_json::from_slice::<lash_core::SessionNodeRecord>(bytes).unwrap());
            }
        })
    });
    group.bench_function("decode_20k/msgpack_lash_type", |b| {
        b.iter(|| {
            for bytes in &msgpack {
                black_box(rmp_serde::from_slice::<lash_core::SessionNodeRecord>(bytes).unwrap());
            }
        })
    });
    group.bench_function("decode_20k/bridge", |b| {
        b.iter_batched(
            || bridge.clone(),
            |nodes| {
                for node in nodes {
                    black_box(mapping::node_to_lash(node, Decode::Lenient));
                }
            },
            criterion::BatchSize::LargeInput,
        )
    });
    group.bench_function("encode_20k/lash_json", |b| {
        b.iter(|| nodes.iter().map(|node| serde_json::to_vec(node).unwrap().len()).sum::<usize>())
    });
    group.bench_function("encode_20k/bridge", |b| {
        b.iter_batched(
            || nodes.clone(),
            |nodes| {
                nodes
                    .into_iter()
                    .map(|node| mapping::node_to_strata(node).unwrap().payload.len())
                    .sum::<usize>()
            },
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench_encoding, bench_bridge, bench_lash);
criterion_main!(benches);
