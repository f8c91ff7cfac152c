//! The PostgreSQL backend, with the file backend's commit measured in the same run for
//! reference: `cargo bench --bench postgres` (needs a server: `STRATA_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432`; without one it prints why and measures nothing).
//!
//! Every commit is the shape runtimes send: one ~740-byte JSON node, a usage row and a turn
//! stamp (semantic hash), appended under the previous leaf.
//!
//! - `commit/*`: one stamped commit on one session (PostgreSQL, and the file store on local
//!   disk), and one commit on each of 16 sessions at once through one pool (aggregate rate =
//!   16 / time; goal ≥ 4× one session).
//! - `claim/8_workers_one_queue`: 8 workers each claim one batch of the same queue at once
//!   (ttl 0, so every claimed batch is claimable again: the workers keep contending for the
//!   same head rows); a claim that fails or finds nothing while work is there is counted and
//!   printed (goal: none).
//! - `load_20k/*`: a 20k-node session built by commits of 100 nodes: `load_session` with the
//!   active path of the head when it is 1k nodes long (the rest side branches, as in the file
//!   backend's bench) and when the session is one 20k-node chain, `FullGraph`, `load_node`.
//! - Commit latency p50 / p99 / max over 2 000 single commits is printed before the groups.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use strata::file::{FileStore, FileStoreOptions};
use strata::postgres::{PostgresConfig, PostgresStore, PostgresStoreFactory};
use strata::{
    Bytes, DeliveryPolicy, GraphCommitDelta, MergeKey, QueuedWorkBatchDraft,
    QueuedWorkClaimBoundary, RuntimeCommit, RuntimePersistence, SessionNodeRecord,
    SessionReadScope, SlotPolicy,
};
use tokio::runtime::Runtime;

mod support;

const SESSIONS: usize = 16;
const WORKERS: usize = 8;
const LARGE: usize = 20_000;
const PATH_LEN: usize = 1_000;

fn server() -> String {
    std::env::var("STRATA_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// A database created for this run and dropped at its end.
struct BenchDatabase {
    name: String,
}

async fn admin() -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) =
        tokio_postgres::connect(&format!("{}/postgres", server()), tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

impl BenchDatabase {
    fn create(rt: &Runtime) -> Option<Self> {
        let name = format!("strata_bench_{}", std::process::id());
        let created = rt.block_on(async {
            admin().await?.batch_execute(&format!("CREATE DATABASE {name}")).await
        });
        match created {
            Ok(()) => Some(Self { name }),
            Err(error) => {
                eprintln!("SKIPPED: no PostgreSQL server at {} ({error})", server());
                None
            }
        }
    }

    fn config(&self) -> PostgresConfig {
        PostgresConfig::new(format!("{}/{}", server(), self.name))
            .with_max_connections(SESSIONS + 4)
    }
}

impl Drop for BenchDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            runtime().block_on(async {
                admin().await?.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)")).await
            })
        })
        .join();
    }
}

/// A ~740-byte JSON node body, as runtimes store them.
fn payload(i: u64) -> Bytes {
    let text = "lorem ipsum dolor sit amet ".repeat(30);
    Bytes::from(format!(
        r#"{{"type":"message","role":"assistant","turn":{i},"content":[{{"type":"text","text":"{}"}}]}}"#,
        &text[..660]
    ))
}

fn node(id: String, parent: Option<String>, i: u64) -> SessionNodeRecord {
    SessionNodeRecord {
        node_id: id,
        parent_node_id: parent,
        payload: payload(i),
        timestamp_ms: i,
        frame_id: None,
        cause: None,
    }
}

/// A stamped commit of `nodes`, standing on the last one.
fn stamped(session: &str, turn: u64, nodes: Vec<SessionNodeRecord>) -> RuntimeCommit {
    let leaf = nodes.last().map(|node| node.node_id.clone());
    let mut commit = support::append(session, nodes, leaf);
    support::add_usage_and_stamp(&mut commit, turn);
    commit
}

/// Appends the next node of a linear session with a stamped commit.
async fn commit_next(store: &dyn RuntimePersistence, session: &str, counter: &AtomicU64) {
    let i = counter.fetch_add(1, Ordering::Relaxed);
    let parent = i.checked_sub(1).map(|p| format!("c{p}"));
    store
        .commit_runtime_state(stamped(session, i, vec![node(format!("c{i}"), parent, i)]))
        .await
        .unwrap();
}

/// p50 / p99 / max of single stamped commits, printed before the criterion groups.
fn commit_latencies(rt: &Runtime, factory: &PostgresStoreFactory) {
    let store = rt.block_on(factory.open_store("latency")).unwrap();
    let counter = AtomicU64::new(0);
    let mut samples: Vec<Duration> = (0..2_000)
        .map(|_| {
            let started = Instant::now();
            rt.block_on(commit_next(&store, "latency", &counter));
            started.elapsed()
        })
        .collect();
    samples.sort();
    println!(
        "postgres stamped commit latency over {} commits: p50 {:?}, p99 {:?}, max {:?}",
        samples.len(),
        support::percentile(&samples, 0.5),
        support::percentile(&samples, 0.99),
        samples.last().unwrap()
    );
}

fn commits(c: &mut Criterion, rt: &Runtime, factory: &PostgresStoreFactory) {
    let mut group = c.benchmark_group("commit");
    let sessions: Vec<(String, PostgresStore, Arc<AtomicU64>)> = (0..SESSIONS)
        .map(|i| {
            let id = format!("s{i}");
            let store = rt.block_on(factory.open_store(&id)).unwrap();
            (id, store, Arc::new(AtomicU64::new(0)))
        })
        .collect();
    group.bench_function("postgres_1_session", |b| {
        let (id, store, counter) = &sessions[0];
        b.to_async(rt).iter(|| commit_next(store, id, counter))
    });
    group.bench_function("postgres_16_sessions_1_commit_each", |b| {
        b.to_async(rt).iter(|| async {
            let tasks: Vec<_> = sessions
                .iter()
                .map(|(id, store, counter)| {
                    let (id, store, counter) = (id.clone(), store.clone(), counter.clone());
                    tokio::spawn(async move { commit_next(&store, &id, &counter).await })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
        })
    });
    let dir = tempfile::tempdir().unwrap();
    let file = FileStore::open(dir.path(), FileStoreOptions::default()).unwrap();
    let counter = AtomicU64::new(0);
    group.bench_function("file_1_session", |b| {
        b.to_async(rt).iter(|| commit_next(&file, "file", &counter))
    });
    group.finish();
}

fn claims(c: &mut Criterion, rt: &Runtime, factory: &PostgresStoreFactory) {
    let store = rt.block_on(factory.open_store("queue")).unwrap();
    for i in 0..(WORKERS * 8) {
        let draft = QueuedWorkBatchDraft {
            session_id: "queue".into(),
            source_key: None,
            delivery_policy: DeliveryPolicy::EarliestSafeBoundary,
            slot_policy: SlotPolicy::Exclusive,
            merge_key: MergeKey::Never,
            available_at_ms: 0,
            payloads: vec![payload(i as u64)],
        };
        rt.block_on(store.enqueue_queued_work(draft)).unwrap();
    }
    let failed = Arc::new(AtomicU64::new(0));
    let made = Arc::new(AtomicU64::new(0));
    let mut group = c.benchmark_group("claim");
    group.bench_function("8_workers_one_queue", |b| {
        b.to_async(rt).iter(|| async {
            let tasks: Vec<_> = (0..WORKERS)
                .map(|worker| {
                    let (store, failed, made) = (store.clone(), failed.clone(), made.clone());
                    tokio::spawn(async move {
                        let owner = format!("worker-{worker}");
                        let claimed = store
                            .claim_ready_queued_work(
                                "queue",
                                &owner,
                                QueuedWorkClaimBoundary::Idle,
                                0,
                                1,
                            )
                            .await;
                        made.fetch_add(1, Ordering::Relaxed);
                        if !matches!(claimed, Ok(Some(_))) {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
        })
    });
    group.finish();
    println!(
        "claims made: {}, failed or empty while work was there: {}",
        made.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed)
    );
}

/// A 20k-node session in commits of 100 nodes. `chain`: one linear chain (the active path is
/// every node); otherwise a 1k-node active path with side branches off its root.
fn large_session(
    rt: &Runtime,
    factory: &PostgresStoreFactory,
    name: &str,
    chain: bool,
) -> PostgresStore {
    let store = rt.block_on(factory.open_store(name)).unwrap();
    let mut nodes = Vec::with_capacity(LARGE);
    let path_len = if chain { LARGE } else { PATH_LEN };
    for i in 0..path_len {
        nodes.push(node(format!("p{i}"), i.checked_sub(1).map(|p| format!("p{p}")), i as u64));
    }
    for i in 0..LARGE - path_len {
        let parent = if i % 100 == 0 { "p0".to_owned() } else { format!("b{}", i - 1) };
        nodes.push(node(format!("b{i}"), Some(parent), i as u64));
    }
    let leaf = format!("p{}", path_len - 1);
    // The head's path ends the session: write the side branches first.
    nodes.rotate_left(path_len);
    let chunks: Vec<Vec<SessionNodeRecord>> = nodes.chunks(100).map(<[_]>::to_vec).collect();
    rt.block_on(async {
        for (turn, chunk) in chunks.into_iter().enumerate() {
            let mut commit = stamped(name, turn as u64, chunk);
            if let GraphCommitDelta::Append { leaf_node_id, .. } = &mut commit.graph {
                *leaf_node_id = Some(leaf.clone());
            }
            store.commit_runtime_state(commit).await.unwrap();
        }
    });
    store
}

fn loads(c: &mut Criterion, rt: &Runtime, factory: &PostgresStoreFactory) {
    let branched = large_session(rt, factory, "branched", false);
    let chain = large_session(rt, factory, "chain", true);
    let active = SessionReadScope::ActivePath { leaf_node_id: None };
    let mut group = c.benchmark_group("load_20k");
    group.bench_function("active_path_1k_of_20k", |b| {
        b.to_async(rt)
            .iter(|| async { branched.load_session(active.clone()).await.unwrap().unwrap() })
    });
    group.bench_function("active_path_20k_chain", |b| {
        b.to_async(rt).iter(|| async { chain.load_session(active.clone()).await.unwrap().unwrap() })
    });
    group.bench_function("full_graph", |b| {
        b.to_async(rt).iter(|| async {
            branched.load_session(SessionReadScope::FullGraph).await.unwrap().unwrap()
        })
    });
    group.bench_function("load_node", |b| {
        b.to_async(rt).iter(|| async { branched.load_node("p500").await.unwrap().unwrap() })
    });
    group.finish();
}

fn postgres_benches(c: &mut Criterion) {
    let rt = runtime();
    let Some(database) = BenchDatabase::create(&rt) else { return };
    let factory = rt.block_on(PostgresStoreFactory::connect(database.config())).unwrap();
    commit_latencies(&rt, &factory);
    commits(c, &rt, &factory);
    claims(c, &rt, &factory);
    loads(c, &rt, &factory);
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = postgres_benches
}
criterion_main!(benches);
