//! Baseline: the bare in-memory backend, one benchmark per method class (read, idempotent
//! write, keyed write, unkeyed write, queue round trip). Every decorator's overhead is measured
//! against these figures in the same run (`benches/layers.rs` repeats the bare case beside
//! each layer).
//!
//! ```text
//! cargo bench --bench baseline
//! ```

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use strata::memory::MemoryStore;
use strata::{
    QueuedWorkClaimBoundary, RuntimeCommit, RuntimePersistence, RuntimeTurnCommitStamp,
    SessionMeta, SessionReadScope,
};
use strata_testkit::fixtures;

mod support;
use support::{append, node};

const SESSION: &str = "bench";
const SEEDED_NODES: usize = 1_000;

/// A store holding one chain of `SEEDED_NODES` nodes.
async fn seeded_store() -> MemoryStore {
    let store = MemoryStore::new();
    let nodes: Vec<_> = (0..SEEDED_NODES)
        .map(|index| {
            node(format!("n{index}"), index.checked_sub(1).map(|parent| format!("n{parent}")))
        })
        .collect();
    let leaf = nodes.last().map(|node| node.node_id.clone());
    store.commit_runtime_state(append(SESSION, nodes, leaf)).await.expect("seeding commit");
    store
}

fn bench_baseline(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let store = runtime.block_on(seeded_store());
    let mut group = c.benchmark_group("memory");

    group.bench_function("read/load_node", |b| {
        b.to_async(&runtime).iter(|| async { black_box(store.load_node("n500").await.unwrap()) })
    });
    group.bench_function("read/load_session_active_path_1k", |b| {
        b.to_async(&runtime).iter(|| async {
            black_box(
                store
                    .load_session(SessionReadScope::ActivePath { leaf_node_id: None })
                    .await
                    .unwrap(),
            )
        })
    });
    group.bench_function("idempotent_write/save_session_meta", |b| {
        b.to_async(&runtime).iter(|| async {
            store
                .save_session_meta(SessionMeta { session_id: SESSION.into(), ..Default::default() })
                .await
                .unwrap()
        })
    });

    let mut sequence = 0u64;
    group.bench_function("unkeyed_write/commit_append_1", |b| {
        b.to_async(&runtime).iter(|| {
            sequence += 1;
            let id = format!("u{sequence}");
            let commit = append(SESSION, vec![node(id.clone(), Some("n0".into()))], Some(id));
            let store = &store;
            async move { black_box(store.commit_runtime_state(commit).await.unwrap()) }
        })
    });

    let stamped_retry = {
        let mut commit = RuntimeCommit { session_id: SESSION.into(), ..Default::default() };
        commit.turn_commit = Some(RuntimeTurnCommitStamp {
            session_id: SESSION.into(),
            turn_id: "retried-turn".into(),
            turn_commit_hash: strata::commit_semantic_hash(&commit),
        });
        runtime.block_on(store.commit_runtime_state(commit.clone())).expect("stamped commit");
        commit
    };
    group.bench_function("keyed_write/stamped_commit_retry", |b| {
        b.to_async(&runtime).iter(|| async {
            black_box(store.commit_runtime_state(stamped_retry.clone()).await.unwrap())
        })
    });

    group.bench_function("queue/enqueue_claim_complete", |b| {
        b.to_async(&runtime).iter(|| async {
            store.enqueue_queued_work(fixtures::draft(SESSION).exclusive().build()).await.unwrap();
            let claim = store
                .claim_ready_queued_work(SESSION, "owner", QueuedWorkClaimBoundary::Idle, 60_000, 1)
                .await
                .unwrap()
                .expect("claimable");
            store
                .commit_runtime_state(RuntimeCommit {
                    session_id: SESSION.into(),
                    completed_queue_claims: vec![claim.completion()],
                    ..Default::default()
                })
                .await
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench_baseline);
criterion_main!(benches);
