//! The file backend against its physical limit and its usual peer, in one run:
//! `cargo bench --bench file_backend`.
//!
//! - `sequential_commit/*`: one durable commit (one 256-byte node + head) per iteration, on
//!   the file store, a raw `write` + `fdatasync` loop of the same record size (the physical
//!   limit the issue names), the same loop overwriting a zero-filled, synced file (the limit
//!   without file growth, which is what the store's preallocated log achieves), and SQLite (WAL, `synchronous=FULL`, one transaction inserting the node and
//!   updating a head row).
//! - `concurrent_commits/*`: one commit on one session vs one commit on each of 8 sessions at
//!   once (aggregate rate = 8 / time).
//! - `reopen/*`, `active_path/*`: sessions of 1k and 100k nodes, each with a 1k-node active
//!   path (the rest are side branches).
//! - `session_20k/*`: full-graph and active-path loads and `load_node` on a 20k-node session.
//! - `open_plus_active_path/100k`: open a 100k-node session and load a 1k-node active path.
//! - Commit latency p50 at 1k vs 20k nodes is measured outside criterion (per-commit samples)
//!   and printed as `commit p50 ...` lines before the criterion groups.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use strata::file::{FileStore, FileStoreFactory, FileStoreOptions};
use strata::{
    RuntimePersistence, SessionNodeRecord, SessionReadScope, SessionStoreFactory,
    SessionStoreRequest,
};
use tokio::runtime::Runtime;

mod support;
use support::{PAYLOAD, append, node};

/// Size of the zero-filled file the preallocated raw loop overwrites (wrapping around).
const PREALLOCATED_BYTES: usize = 64 << 20;
const PATH_LEN: usize = 1_000;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Appends node `n<i>` (child of `n<i-1>`) with a blind commit; `counter` numbers the nodes.
async fn commit_next(store: &dyn RuntimePersistence, session: &str, counter: &AtomicU64) {
    let i = counter.fetch_add(1, Ordering::Relaxed);
    let parent = i.checked_sub(1).map(|p| format!("c{p}"));
    let commit = append(session, vec![node(format!("c{i}"), parent)], Some(format!("c{i}")));
    store.commit_runtime_state(commit).await.unwrap();
}

/// Fills a session with `total` nodes: a `PATH_LEN`-node chain `p0..` (the head's active
/// path) and side chains `b<k>-<j>` hanging off the root, in commits of 1000 nodes.
async fn fill(store: &FileStore, total: usize) {
    let mut nodes: Vec<SessionNodeRecord> = (0..PATH_LEN)
        .map(|i| node(format!("p{i}"), i.checked_sub(1).map(|p| format!("p{p}"))))
        .collect();
    for i in 0..total.saturating_sub(PATH_LEN) {
        let parent = if i.is_multiple_of(100) { "p0".to_owned() } else { format!("b{}", i - 1) };
        nodes.push(node(format!("b{i}"), Some(parent)));
    }
    let leaf = Some(format!("p{}", PATH_LEN - 1));
    let mut chunks = nodes.chunks(1_000).peekable();
    while let Some(chunk) = chunks.next() {
        let leaf = if chunks.peek().is_none() { leaf.clone() } else { None };
        store.commit_runtime_state(append("bench", chunk.to_vec(), leaf)).await.unwrap();
    }
    store.compact().unwrap();
}

fn filled_dir(rt: &Runtime, total: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path(), FileStoreOptions::default()).unwrap();
    rt.block_on(fill(&store, total));
    dir
}

fn active_path() -> SessionReadScope {
    SessionReadScope::ActivePath { leaf_node_id: None }
}

fn sequential_commit(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("sequential_commit");
    let dir = tempfile::tempdir().unwrap();

    // The physical limit: append one record of the file store's size, then fdatasync.
    let raw_path = dir.path().join("raw.log");
    let mut raw = OpenOptions::new().create(true).append(true).open(&raw_path).unwrap();
    let record = vec![1u8; PAYLOAD + 64];
    group.bench_function("raw_append_fdatasync", |b| {
        b.iter(|| {
            raw.write_all(&record).unwrap();
            raw.sync_data().unwrap();
        })
    });

    // The same limit without file growth: overwrite records in a file zero-filled and synced
    // beforehand (what the store's preallocated log does), then fdatasync.
    let mut preallocated = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(dir.path().join("raw-preallocated.log"))
        .unwrap();
    preallocated.write_all(&vec![0u8; PREALLOCATED_BYTES]).unwrap();
    preallocated.sync_all().unwrap();
    let mut offset = 0usize;
    group.bench_function("raw_preallocated_fdatasync", |b| {
        b.iter(|| {
            if offset + record.len() > PREALLOCATED_BYTES {
                offset = 0;
            }
            preallocated.write_all_at(&record, offset as u64).unwrap();
            preallocated.sync_data().unwrap();
            offset += record.len();
        })
    });

    let store = FileStore::open(dir.path().join("store"), FileStoreOptions::default()).unwrap();
    let counter = AtomicU64::new(0);
    group.bench_function("file_store", |b| {
        b.to_async(&rt).iter(|| commit_next(&store, "bench", &counter))
    });

    let sqlite = sqlite_store(&dir.path().join("peer.sqlite"));
    let mut next = 0u64;
    group.bench_function("sqlite_wal_full", |b| {
        b.iter(|| {
            sqlite_commit(&sqlite, next);
            next += 1;
        })
    });
    group.finish();
}

fn sqlite_store(path: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.execute_batch(
        "CREATE TABLE nodes (session TEXT, node_id TEXT, parent TEXT, payload BLOB,
                             PRIMARY KEY (session, node_id));
         CREATE TABLE head (session TEXT PRIMARY KEY, revision INTEGER, leaf TEXT);
         INSERT INTO head VALUES ('bench', 0, NULL);",
    )
    .unwrap();
    conn
}

fn sqlite_commit(conn: &rusqlite::Connection, i: u64) {
    let payload = vec![7u8; PAYLOAD];
    let id = format!("c{i}");
    let parent = i.checked_sub(1).map(|p| format!("c{p}"));
    let tx = conn.unchecked_transaction().unwrap();
    tx.prepare_cached("INSERT INTO nodes VALUES ('bench', ?1, ?2, ?3)")
        .unwrap()
        .execute(rusqlite::params![id, parent, payload])
        .unwrap();
    tx.prepare_cached("UPDATE head SET revision = revision + 1, leaf = ?1 WHERE session = 'bench'")
        .unwrap()
        .execute([&id])
        .unwrap();
    tx.commit().unwrap();
}

fn concurrent_commits(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("concurrent_commits");
    let dir = tempfile::tempdir().unwrap();
    let factory = FileStoreFactory::open(dir.path(), FileStoreOptions::default()).unwrap();
    let sessions: Vec<(String, Arc<dyn RuntimePersistence>, Arc<AtomicU64>)> = (0..8)
        .map(|i| {
            let id = format!("s{i}");
            let store = rt.block_on(factory.create_store(SessionStoreRequest::new(&id))).unwrap();
            (id, store, Arc::new(AtomicU64::new(0)))
        })
        .collect();
    group.bench_function("1_session", |b| {
        let (id, store, counter) = &sessions[0];
        b.to_async(&rt).iter(|| commit_next(store.as_ref(), id, counter))
    });
    group.bench_function("8_sessions_1_commit_each", |b| {
        b.to_async(&rt).iter(|| async {
            let tasks: Vec<_> = sessions
                .iter()
                .map(|(id, store, counter)| {
                    let (id, store, counter) = (id.clone(), store.clone(), counter.clone());
                    tokio::spawn(async move { commit_next(store.as_ref(), &id, &counter).await })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
        })
    });
    group.finish();
}

/// Per-commit latency p50 (outside criterion, from individual samples) on sessions grown to
/// each of `sizes` nodes. The sessions take turns commit by commit, so that background noise
/// hits every size alike.
fn commit_p50s(rt: &Runtime, sizes: &[usize]) -> Vec<Duration> {
    let dirs: Vec<_> = sizes.iter().map(|&size| filled_dir(rt, size)).collect();
    let stores: Vec<FileStore> = dirs
        .iter()
        .map(|dir| FileStore::open(dir.path(), FileStoreOptions::default()).unwrap())
        .collect();
    let mut samples = vec![Vec::new(); stores.len()];
    for i in 0..1_000 {
        for (store, samples) in stores.iter().zip(&mut samples) {
            let commit = append("bench", vec![node(format!("x{i}"), None)], Some(format!("x{i}")));
            let start = Instant::now();
            rt.block_on(store.commit_runtime_state(commit)).unwrap();
            samples.push(start.elapsed());
        }
    }
    samples
        .into_iter()
        .map(|mut samples| {
            samples.sort();
            samples[samples.len() / 2]
        })
        .collect()
}

fn sizes(c: &mut Criterion) {
    let rt = runtime();
    let p50 = commit_p50s(&rt, &[1_000, 20_000]);
    let (small, large) = (p50[0], p50[1]);
    eprintln!(
        "commit p50 at 1k nodes: {small:?}; at 20k nodes: {large:?}; ratio {:.2}",
        large.as_secs_f64() / small.as_secs_f64()
    );

    let dirs = [(1_000, filled_dir(&rt, 1_000)), (100_000, filled_dir(&rt, 100_000))];
    let mut reopen = c.benchmark_group("reopen");
    for (size, dir) in &dirs {
        reopen.bench_function(format!("{}k_nodes", size / 1000), |b| {
            b.iter(|| drop(FileStore::open(dir.path(), FileStoreOptions::default()).unwrap()))
        });
    }
    reopen.finish();

    let mut path = c.benchmark_group("active_path");
    for (size, dir) in &dirs {
        let store = FileStore::open(dir.path(), FileStoreOptions::default()).unwrap();
        path.bench_function(format!("{}k_nodes", size / 1000), |b| {
            b.to_async(&rt).iter(|| async {
                let read = store.load_session(active_path()).await.unwrap().unwrap();
                assert_eq!(read.graph.nodes.len(), PATH_LEN);
            })
        });
    }
    path.finish();

    let mut open_path = c.benchmark_group("open_plus_active_path");
    open_path.bench_function("100k_nodes", |b| {
        b.to_async(&rt).iter(|| async {
            let store = FileStore::open(dirs[1].1.path(), FileStoreOptions::default()).unwrap();
            let read = store.load_session(active_path()).await.unwrap().unwrap();
            assert_eq!(read.graph.nodes.len(), PATH_LEN);
        })
    });
    open_path.finish();
    drop(dirs);

    let dir = filled_dir(&rt, 20_000);
    let store = FileStore::open(dir.path(), FileStoreOptions::default()).unwrap();
    let mut loads = c.benchmark_group("session_20k");
    loads.bench_function("full_graph", |b| {
        b.to_async(&rt).iter(|| async {
            let read = store.load_session(SessionReadScope::FullGraph).await.unwrap().unwrap();
            assert_eq!(read.graph.nodes.len(), 20_000);
        })
    });
    loads.bench_function("active_path", |b| {
        b.to_async(&rt).iter(|| async { store.load_session(active_path()).await.unwrap() })
    });
    loads.bench_function("load_node", |b| {
        b.to_async(&rt).iter(|| async { store.load_node("b12345").await.unwrap().unwrap() })
    });
    loads.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = sequential_commit, concurrent_commits, sizes
}
criterion_main!(benches);
