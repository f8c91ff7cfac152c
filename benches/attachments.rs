//! Attachments, in one run: `cargo bench --bench attachments`.
//!
//! - `put_4KiB/*`, `put_1MiB/*`: one new attachment per iteration (distinct bytes each time)
//!   on the durable file attachment store (hash, temp file, `fdatasync`, link, directory
//!   fsync), against a raw write of the same bytes: temp file + `fdatasync` + rename (the peer
//!   the issue names), and the same plus the directory fsync a durable rename needs. Both run
//!   their file work on tokio's blocking pool, as an async caller would.
//! - Before them, the same three puts interleaved round by round, outside criterion, printed as
//!   `put … interleaved medians` lines with the ratios (fairer on a machine whose disk load
//!   drifts, as criterion measures one variant after the other).
//! - `get_4KiB/*`, `get_1MiB/*`: reading one (checking its content hash) vs a raw
//!   `std::fs::read` of a file of the same size on the blocking pool (what `tokio::fs::read`
//!   does).
//! - `sweep_100k_rows/dry_run`: a dry-run sweep of 100 file-backend sessions holding 100k
//!   manifest rows (1 000 puts each in 10 stamped turns; the last put of each session never
//!   committed: 100 orphans), over the file attachment store. After it, the real sweep of the
//!   same store (which deletes the 100 orphans, so it runs once) is timed and printed as a
//!   `sweep: …` line.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use strata::attachments::{
    AttachmentLayer, AttachmentMeta, AttachmentStore, Content, FileAttachmentOptions,
    FileAttachmentStore, Sweeper,
};
use strata::file::{FileStoreFactory, FileStoreOptions, SyncPolicy};
use strata::{
    Bytes, ManualClock, RuntimeTurnCommitStamp, SessionStoreFactory, SessionStoreRequest,
    StoreBuilder,
};
use tokio::runtime::Runtime;

mod support;
use support::{append, node};

const SIZES: [(&str, usize); 2] = [("4KiB", 4 << 10), ("1MiB", 1 << 20)];
const SESSIONS: usize = 100;
const TURNS: usize = 10;
const PUTS_PER_TURN: usize = 100;
const START_MS: u64 = 1_700_000_000_000;
const GRACE: Duration = Duration::from_secs(3600);

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// `len` bytes, distinct for each `n`.
fn payload(len: usize, n: u64) -> Vec<u8> {
    let mut bytes = vec![0x5a; len];
    bytes[..8].copy_from_slice(&n.to_le_bytes());
    bytes
}

fn file_store(dir: &Path, sync: SyncPolicy) -> FileAttachmentStore {
    let options = FileAttachmentOptions::default().with_sync(sync).with_max_bytes(64 << 20);
    FileAttachmentStore::open(dir, options).unwrap()
}

/// Writes `bytes` as `dir/name` the raw way: temp file, fdatasync, rename (and, with
/// `sync_dir`, fsync of the directory).
fn raw_write(dir: &Path, name: &str, bytes: &[u8], sync_dir: bool) {
    use std::io::Write;
    let tmp = dir.join(format!("{name}.tmp"));
    let mut file = std::fs::File::create(&tmp).unwrap();
    file.write_all(bytes).unwrap();
    file.sync_data().unwrap();
    drop(file);
    std::fs::rename(&tmp, dir.join(name)).unwrap();
    if sync_dir {
        std::fs::File::open(dir).unwrap().sync_all().unwrap();
    }
}

fn put(c: &mut Criterion) {
    let rt = runtime();
    let counter = Arc::new(AtomicU64::new(0));
    for (label, len) in SIZES {
        let mut group = c.benchmark_group(format!("put_{label}"));
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(&dir.path().join("store"), SyncPolicy::Always);
        group.bench_function("file_store", |b| {
            b.to_async(&rt).iter(|| async {
                let bytes = payload(len, counter.fetch_add(1, Ordering::Relaxed));
                store.put(Content::new(bytes), AttachmentMeta::new("image/png")).await.unwrap()
            })
        });
        for (name, sync_dir) in [("raw_fsync_rename", false), ("raw_fsync_rename_dirsync", true)] {
            let raw = dir.path().join(name);
            std::fs::create_dir_all(&raw).unwrap();
            group.bench_function(name, |b| {
                b.to_async(&rt).iter(|| {
                    let raw = raw.clone();
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    async move {
                        tokio::task::spawn_blocking(move || {
                            raw_write(&raw, &format!("{n:016x}"), &payload(len, n), sync_dir)
                        })
                        .await
                        .unwrap()
                    }
                })
            });
        }
        group.finish();
    }
}

/// The put comparison again outside criterion, interleaved (store, raw, raw + dir fsync, in
/// turn, `ROUNDS` times) so that the disk load of a shared machine weighs on all three alike;
/// prints the medians and the ratios (raw time / store time: above 1 means the store is faster).
fn put_interleaved(_: &mut Criterion) {
    const ROUNDS: usize = 100;
    let rt = runtime();
    for (label, len) in SIZES {
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(&dir.path().join("store"), SyncPolicy::Always);
        let raw = dir.path().join("raw");
        std::fs::create_dir_all(&raw).unwrap();
        let mut samples = [Vec::new(), Vec::new(), Vec::new()];
        for n in 0..ROUNDS as u64 {
            let started = Instant::now();
            let content = Content::new(payload(len, n));
            rt.block_on(store.put(content, AttachmentMeta::new("image/png"))).unwrap();
            samples[0].push(started.elapsed());
            for (variant, sync_dir) in [(1, false), (2, true)] {
                let (raw, bytes) = (raw.clone(), payload(len, n));
                let started = Instant::now();
                rt.block_on(async move {
                    tokio::task::spawn_blocking(move || {
                        raw_write(&raw, &format!("{variant}-{n}"), &bytes, sync_dir)
                    })
                    .await
                })
                .unwrap();
                samples[variant].push(started.elapsed());
            }
        }
        let [store, raw, raw_dirsync] = samples.map(|mut times| {
            times.sort();
            times[times.len() / 2].as_secs_f64() * 1e3
        });
        println!(
            "put {label} interleaved medians ({ROUNDS} rounds): file store {store:.2} ms; raw fsync+rename {raw:.2} ms ({:.2}x); raw fsync+rename+dir fsync {raw_dirsync:.2} ms ({:.2}x)",
            raw / store,
            raw_dirsync / store,
        );
    }
}

fn get(c: &mut Criterion) {
    let rt = runtime();
    const FILES: u64 = 64;
    for (label, len) in SIZES {
        let mut group = c.benchmark_group(format!("get_{label}"));
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(&dir.path().join("store"), SyncPolicy::Always);
        let raw = dir.path().join("raw");
        std::fs::create_dir_all(&raw).unwrap();
        let ids: Vec<_> = (0..FILES)
            .map(|n| {
                raw_write(&raw, &format!("{n}"), &payload(len, n), false);
                let content = Content::new(payload(len, n));
                rt.block_on(store.put(content, AttachmentMeta::new("image/png"))).unwrap().id
            })
            .collect();
        let next = AtomicU64::new(0);
        group.bench_function("file_store", |b| {
            b.to_async(&rt).iter(|| async {
                let id = &ids[(next.fetch_add(1, Ordering::Relaxed) % FILES) as usize];
                assert_eq!(store.get(id).await.unwrap().bytes.len(), len);
            })
        });
        group.bench_function("raw_read", |b| {
            b.to_async(&rt).iter(|| async {
                let path = raw.join(format!("{}", next.fetch_add(1, Ordering::Relaxed) % FILES));
                let bytes = tokio::task::spawn_blocking(move || std::fs::read(path)).await.unwrap();
                assert_eq!(bytes.unwrap().len(), len);
            })
        });
        group.finish();
    }
}

/// Fills `dir` with the sweep workload (see the module docs), writing without fsyncs.
fn fill_sweep_store(rt: &Runtime, dir: &Path) {
    let clock = ManualClock::new(START_MS);
    let attachments = Arc::new(file_store(&dir.join("attachments"), SyncPolicy::OsBuffered));
    let layer = AttachmentLayer::with_clock(attachments, Arc::new(clock));
    let options = FileStoreOptions::default().with_sync(SyncPolicy::OsBuffered);
    let factory = StoreBuilder::new()
        .layer(layer.clone())
        .build_factory(FileStoreFactory::open(dir.join("sessions"), options).unwrap());
    rt.block_on(async {
        let mut n = 0u64;
        for s in 0..SESSIONS {
            let session = format!("session-{s:03}");
            let store = factory.create_store(SessionStoreRequest::new(&session)).await.unwrap();
            let scoped = layer.scoped(&session).unwrap();
            let mut parent = None;
            let mut put_next = || {
                n += 1;
                scoped.put(
                    Content::new(Bytes::from(payload(256, n))),
                    AttachmentMeta::new("image/png"),
                )
            };
            for turn in 0..TURNS {
                // The last turn commits one put fewer; that put comes after it and never commits.
                let puts = if turn + 1 == TURNS { PUTS_PER_TURN - 1 } else { PUTS_PER_TURN };
                for _ in 0..puts {
                    put_next().await.unwrap();
                }
                let id = format!("t{turn}");
                let mut commit =
                    append(&session, vec![node(id.clone(), parent.take())], Some(id.clone()));
                commit.turn_commit = Some(RuntimeTurnCommitStamp {
                    session_id: session.clone(),
                    turn_id: id.clone(),
                    turn_commit_hash: format!("h{turn}"),
                });
                parent = Some(id);
                store.commit_runtime_state(commit).await.unwrap();
            }
            put_next().await.unwrap();
        }
    });
}

/// A sweeper over `dir` (durable: fsyncs on), its clock past the grace period.
fn sweeper(dir: &Path) -> Sweeper {
    let factory =
        FileStoreFactory::open(dir.join("sessions"), FileStoreOptions::default()).unwrap();
    let attachments = file_store(&dir.join("attachments"), SyncPolicy::Always);
    let clock = ManualClock::new(START_MS);
    clock.advance(GRACE.as_millis() as u64 + 1);
    Sweeper::new(Arc::new(factory) as Arc<dyn SessionStoreFactory>, Arc::new(attachments))
        .with_clock(Arc::new(clock))
        .with_grace_period(GRACE)
}

fn sweep(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    // Filled on first use, so a run filtered to other groups skips the minutes of setup.
    let mut filled = false;
    let mut group = c.benchmark_group("sweep_100k_rows");
    group.sample_size(10);
    group.bench_function(BenchmarkId::from_parameter("dry_run"), |b| {
        if !filled {
            fill_sweep_store(&rt, dir.path());
            filled = true;
        }
        let dry_run = sweeper(dir.path()).dry_run();
        b.to_async(&rt).iter(|| async {
            let report = dry_run.sweep().await.unwrap();
            assert_eq!(report.deleted.len(), SESSIONS);
        })
    });
    group.finish();
    if !filled {
        return;
    }
    // The real sweep deletes the orphans: one run on this store. `STRATA_BENCH_LOG=info` shows
    // its steps (the sweeper's `tracing` events) with timestamps.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("STRATA_BENCH_LOG"))
        .try_init();
    let started = Instant::now();
    let report = rt.block_on(sweeper(dir.path()).sweep()).unwrap();
    let elapsed = started.elapsed();
    assert_eq!(report.deleted.len(), SESSIONS);
    println!(
        "sweep: {} rows in {} sessions, {} orphans deleted and forgotten: {:.0} ms",
        SESSIONS * TURNS * PUTS_PER_TURN,
        report.sessions,
        report.deleted.len(),
        elapsed.as_secs_f64() * 1e3
    );
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
    targets = put_interleaved, put, get, sweep
}
criterion_main!(benches);
