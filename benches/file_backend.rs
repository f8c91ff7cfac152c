//! The file backend against its physical limit, in one run: `cargo bench --bench file_backend`
//! (the store users would pick instead, lash's SQLite store, is measured against it in
//! `cargo bench --bench lash`).
//!
//! - `sequential_commit/*`: one durable commit (one 256-byte node + head) per iteration, on
//!   the file store, a raw `write` + `fdatasync` loop of the same record size (the physical
//!   limit the issue names), and the same loop overwriting a zero-filled, synced file (the
//!   limit without file growth, which is what the store's preallocated log achieves).
//! - `concurrent_commits/*`: one commit on one session vs one commit on each of 8 sessions at
//!   once (aggregate rate = 8 / time).
//! - `reopen/*`, `active_path/*`: sessions of 1k and 100k nodes, each with a 1k-node active
//!   path (the rest are side branches).
//! - `session_20k/*`: full-graph and active-path loads and `load_node` on a 20k-node session.
//! - `open_plus_active_path/100k`: open a 100k-node session and load a 1k-node active path.
//! - Commit latency p50 at 1k vs 20k nodes is measured outside criterion (per-commit samples)
//!   and printed as `commit p50 ...` lines before the criterion groups.
//!
//! The realistic shape (issue 13), `realistic_*` and `commit_hash/*`: every commit is an agent
//! turn of four ~740-byte JSON nodes, a usage row, a turn stamp and CAS (`support`); a
//! session grows by such commits to 100k nodes and is measured **as those commits left it**
//! (log not compacted), and after `compact()`.
//!
//! - Printed before the criterion groups (`realistic ...` lines): durable realistic commits
//!   against the raw loop overwriting a preallocated file + `fdatasync`, interleaved in
//!   rounds (the ratio of medians); durable commit latency p50,
//!   p99 and the **largest single commit** while the session grows to 100k nodes; the first
//!   open of the 100k-node session in this process; resident memory per node after open and
//!   its peak during open, read from `VmRSS`/`VmHWM` of a fresh child process (this bench
//!   binary re-run with `STRATA_BENCH_RSS_DIR` set), as left and compacted.
//! - `realistic_open/*`: open + `ActivePath` (1k nodes) of the 100k-node session as left and
//!   compacted (warm: repeated opens), and open alone of a 20k-node session as left.
//! - `commit_hash/realistic`: `commit_semantic_hash` of one such commit.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use strata::file::{FileStore, FileStoreFactory, FileStoreOptions};
use strata::{
    RuntimePersistence, SessionNodeRecord, SessionReadScope, SessionStoreFactory,
    SessionStoreRequest,
};
use tokio::runtime::Runtime;

mod support;
use support::{NODES_PER_COMMIT, PAYLOAD, TURNS_PER_BRANCH, append, node, realistic_commit};

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
    let preallocated = preallocated_file(&dir.path().join("raw-preallocated.log"));
    let mut offset = 0usize;
    group.bench_function("raw_preallocated_fdatasync", |b| {
        b.iter(|| overwrite_and_sync(&preallocated, &record, &mut offset))
    });

    let store = FileStore::open(dir.path().join("store"), FileStoreOptions::default()).unwrap();
    let counter = AtomicU64::new(0);
    group.bench_function("file_store", |b| {
        b.to_async(&rt).iter(|| commit_next(&store, "bench", &counter))
    });
    group.finish();
}

/// A file of `PREALLOCATED_BYTES` zeros, synced: what the raw preallocated loops overwrite.
fn preallocated_file(path: &Path) -> std::fs::File {
    let mut file =
        OpenOptions::new().create(true).truncate(true).read(true).write(true).open(path).unwrap();
    file.write_all(&vec![0u8; PREALLOCATED_BYTES]).unwrap();
    file.sync_all().unwrap();
    file
}

/// One step of the raw preallocated loop: overwrite `record` at `offset` (wrapping around),
/// `fdatasync`, advance.
fn overwrite_and_sync(file: &std::fs::File, record: &[u8], offset: &mut usize) {
    if *offset + record.len() > PREALLOCATED_BYTES {
        *offset = 0;
    }
    file.write_all_at(record, *offset as u64).unwrap();
    file.sync_data().unwrap();
    *offset += record.len();
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

/// Set (to a store directory) in the child that measures resident memory after open.
const RSS_CHILD_ENV: &str = "STRATA_BENCH_RSS_DIR";
const REALISTIC_NODES: u64 = 100_000;
const SESSION: &str = "realistic";

/// Copies the store files of `from` (not its lock) into a fresh directory.
fn copy_store(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "LOCK" {
            std::fs::copy(entry.path(), to.path().join(entry.file_name())).unwrap();
        }
    }
    to
}

/// Grows a durable session by realistic commits to `nodes` nodes, timing each commit; returns
/// the session's directory as the commits left it (once its last handle is dropped), and the
/// commit times with their turn numbers.
fn grow(rt: &Runtime, nodes: u64) -> (tempfile::TempDir, Vec<(Duration, u64)>) {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path(), FileStoreOptions::default()).unwrap();
    let turns = nodes / NODES_PER_COMMIT as u64;
    let mut samples = Vec::with_capacity(turns as usize);
    for turn in 0..turns {
        let commit = realistic_commit(SESSION, turn);
        let start = Instant::now();
        rt.block_on(store.commit_runtime_state(commit)).unwrap();
        samples.push((start.elapsed(), turn));
    }
    drop(store);
    (dir, samples)
}

/// Grows the 100k-node session, reporting commit latency; returns it as left.
fn grow_and_report(rt: &Runtime) -> tempfile::TempDir {
    let (dir, samples) = grow(rt, REALISTIC_NODES);
    let turns = samples.len();
    let (largest, largest_turn) = *samples.iter().max().unwrap();
    let mut times: Vec<Duration> = samples.into_iter().map(|(time, _)| time).collect();
    times.sort();
    eprintln!(
        "realistic commit while growing to {REALISTIC_NODES} nodes ({turns} stamped commits): \
         p50 {:?}, p99 {:?}, largest {largest:?} (commit {largest_turn})",
        support::percentile(&times, 0.5),
        support::percentile(&times, 0.99),
    );
    dir
}

/// Bytes of log segments in `dir` (what an open replays) and of body files.
fn log_and_body_bytes(dir: &Path) -> (u64, u64) {
    let mut sizes = (0, 0);
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        let len = entry.metadata().unwrap().len();
        if name.starts_with("log.") {
            sizes.0 += len;
        } else if name.starts_with("bodies.") {
            sizes.1 += len;
        }
    }
    sizes
}

/// Opens `dir` and reads the head's active path (1k nodes).
fn open_and_read_path(dir: &Path) -> FileStore {
    let store = FileStore::open(dir, FileStoreOptions::default()).unwrap();
    let read = block_on_current(store.load_session(active_path())).unwrap().unwrap();
    assert_eq!(read.graph.nodes.len() as u64, TURNS_PER_BRANCH * NODES_PER_COMMIT as u64);
    store
}

fn block_on_current<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(future)
}

/// `VmRSS` and `VmHWM` of this process, in bytes.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        let line = status.lines().find(|line| line.starts_with(name)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The child's side: open the store (first open in a fresh process), read the active path,
/// report memory and time.
fn rss_child(dir: &Path) {
    let (before, _) = memory();
    let start = Instant::now();
    let store = open_and_read_path(dir);
    let elapsed = start.elapsed();
    let (after, peak) = memory();
    drop(store);
    println!("rss {before} {after} {peak} {}", elapsed.as_nanos());
}

/// Runs `rss_child` in a fresh process over `dir` and prints its figures.
fn report_fresh_process(label: &str, dir: &Path) {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .env(RSS_CHILD_ENV, dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().find_map(|line| line.strip_prefix("rss ")).expect("child report");
    let values: Vec<u64> = line.split(' ').map(|v| v.parse().unwrap()).collect();
    let per_node = |bytes: u64| bytes.saturating_sub(values[0]) as f64 / REALISTIC_NODES as f64;
    eprintln!(
        "realistic {label}: first open + active path in a fresh process {:?}; resident after \
         open {:.0} B/node, peak {:.0} B/node (VmRSS {} -> {} bytes, VmHWM {})",
        Duration::from_nanos(values[3]),
        per_node(values[1]),
        per_node(values[2]),
        values[0],
        values[1],
        values[2],
    );
}

/// Durable realistic commits against the raw limit for a preallocated log (overwrite a
/// zero-filled, synced file with a record of the same size, then `fdatasync`), alternating
/// in rounds so that the disk's changing load hits both alike; prints the medians and the
/// ratio.
fn interleaved_commit_ratio(rt: &Runtime) {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path().join("store"), FileStoreOptions::default()).unwrap();
    let raw = preallocated_file(&dir.path().join("raw"));
    // The store's record for one realistic commit: four framed ~780-byte nodes and the rest.
    let record = vec![1u8; 3_400];
    let (mut ours, mut limit) = (Vec::new(), Vec::new());
    let (mut turn, mut offset) = (0, 0);
    for _round in 0..20 {
        for _ in 0..50 {
            let commit = realistic_commit(SESSION, turn);
            turn += 1;
            let start = Instant::now();
            rt.block_on(store.commit_runtime_state(commit)).unwrap();
            ours.push(start.elapsed());
        }
        for _ in 0..50 {
            let start = Instant::now();
            overwrite_and_sync(&raw, &record, &mut offset);
            limit.push(start.elapsed());
        }
    }
    ours.sort();
    limit.sort();
    eprintln!(
        "realistic durable commit p50 {:?} vs raw preallocated overwrite + fdatasync p50 {:?} \
         (interleaved): {:.2}x the raw rate; p99 {:?} vs {:?}, largest {:?} vs {:?}",
        support::percentile(&ours, 0.5),
        support::percentile(&limit, 0.5),
        support::percentile(&limit, 0.5).as_secs_f64()
            / support::percentile(&ours, 0.5).as_secs_f64(),
        support::percentile(&ours, 0.99),
        support::percentile(&limit, 0.99),
        ours.last().unwrap(),
        limit.last().unwrap(),
    );
}

fn realistic(c: &mut Criterion) {
    let rt = runtime();
    interleaved_commit_ratio(&rt);
    let mut hash = c.benchmark_group("commit_hash");
    let commit = realistic_commit(SESSION, 7);
    hash.bench_function("realistic", |b| b.iter(|| strata::commit_semantic_hash(&commit)));
    hash.finish();

    let as_left = grow_and_report(&rt);
    let (at_20k, _) = grow(&rt, 20_000);
    let compacted = copy_store(as_left.path());
    FileStore::open(compacted.path(), FileStoreOptions::default()).unwrap().compact().unwrap();
    for (label, dir) in [("as left", &as_left), ("compacted", &compacted), ("20k as left", &at_20k)]
    {
        let (log, bodies) = log_and_body_bytes(dir.path());
        eprintln!(
            "realistic {label}: log segments {log} bytes (preallocated zeros included), body \
             files {bodies} bytes"
        );
    }
    for (label, dir) in [("as left", &as_left), ("compacted", &compacted)] {
        report_fresh_process(label, dir.path());
        let start = Instant::now();
        drop(open_and_read_path(dir.path()));
        eprintln!(
            "realistic {label}: first open + active path in this process {:?}",
            start.elapsed()
        );
    }

    let mut open = c.benchmark_group("realistic_open");
    open.sample_size(10);
    open.bench_function("100k_as_left_plus_active_path", |b| {
        b.iter(|| drop(open_and_read_path(as_left.path())))
    });
    open.bench_function("100k_compacted_plus_active_path", |b| {
        b.iter(|| drop(open_and_read_path(compacted.path())))
    });
    open.bench_function("20k_as_left_alone", |b| {
        b.iter(|| drop(FileStore::open(at_20k.path(), FileStoreOptions::default()).unwrap()))
    });
    open.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = realistic, sequential_commit, concurrent_commits, sizes
}

fn main() {
    if let Some(dir) = std::env::var_os(RSS_CHILD_ENV) {
        rss_child(Path::new(&dir));
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
