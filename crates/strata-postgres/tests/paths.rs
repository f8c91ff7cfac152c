//! Active paths against the reference model: random graph histories (chains across commits,
//! branches, parents appended after their children, cycles, tombstones, vacuums, re-appended
//! ids, full replacements, moved leaves) applied to the in-memory store and to PostgreSQL,
//! whose run-segment walk must return exactly the model's path (or the same error kind) from
//! every leaf.

mod common;

use strata_core::*;
use strata_memory::MemoryStore;
use strata_testkit::fixtures::{commit, node};

use common::TestDatabase;

/// Ids are drawn from a small pool so that parents, tombstones and re-appends collide often.
fn id(rng: &mut fastrand::Rng) -> String {
    format!("n{}", rng.u32(0..60))
}

/// One random commit (or maintenance call) on both stores.
async fn step(
    rng: &mut fastrand::Rng,
    stores: [&dyn RuntimePersistence; 2],
    leaf: &mut Option<String>,
) {
    let choice = rng.u32(0..100);
    if choice < 8 {
        let ids: Vec<String> = (0..rng.usize(1..4)).map(|_| id(rng)).collect();
        for store in stores {
            store.tombstone_nodes(&ids).await.expect("tombstone");
        }
        return;
    }
    if choice < 11 {
        for store in stores {
            store.vacuum().await.expect("vacuum");
        }
        return;
    }
    let built = if choice < 14 {
        // Replace the graph by a short chain.
        let nodes: Vec<SessionNodeRecord> = {
            let mut parent: Option<String> = None;
            (0..rng.usize(1..6))
                .map(|i| {
                    let record = node(&format!("r{i}-{}", rng.u32(0..5)), parent.as_deref());
                    parent = Some(record.node_id.clone());
                    record
                })
                .collect()
        };
        commit("s").replace(nodes).build()
    } else if choice < 20 {
        // Move the leaf (possibly to an unknown id).
        *leaf = Some(id(rng));
        commit("s").leaf(leaf.as_deref()).build()
    } else {
        // Append a few nodes: mostly a chain under the leaf, sometimes a branch elsewhere, a
        // parent that comes later, or a cycle.
        let count = rng.usize(1..5);
        let mut nodes = Vec::new();
        let mut parent = if rng.u32(0..4) == 0 { Some(id(rng)) } else { leaf.clone() };
        for _ in 0..count {
            let record = node(&id(rng), parent.as_deref());
            parent = Some(if rng.u32(0..10) == 0 { id(rng) } else { record.node_id.clone() });
            nodes.push(record);
        }
        let mut built = commit("s").append(nodes);
        if rng.u32(0..5) == 0 {
            built = built.leaf(leaf.clone().as_deref());
        }
        built.build()
    };
    let outcomes = [
        stores[0].commit_runtime_state(built.clone()).await.map(|_| ()),
        stores[1].commit_runtime_state(built.clone()).await.map(|_| ()),
    ];
    assert_eq!(
        outcomes[0].as_ref().map_err(StoreError::kind),
        outcomes[1].as_ref().map_err(StoreError::kind),
        "commit outcome: {built:?}"
    );
    if outcomes[0].is_ok() {
        *leaf = built.graph.leaf_node_id().map(str::to_owned);
    }
}

async fn path(
    store: &dyn RuntimePersistence,
    leaf: Option<String>,
) -> Result<Vec<String>, &'static str> {
    match store.load_session(SessionReadScope::ActivePath { leaf_node_id: leaf }).await {
        Ok(read) => Ok(read
            .map(|read| read.graph.nodes.into_iter().map(|node| node.node_id).collect())
            .unwrap_or_default()),
        Err(error) => Err(error.kind()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_segment_walks_match_the_reference_model() {
    let Some(database) = TestDatabase::create("paths").await else { return };
    let factory =
        strata_postgres::PostgresStoreFactory::connect(database.config()).await.expect("connect");
    let (mut cycles, mut longest) = (0, 0);
    for seed in 0..6u64 {
        let model = MemoryStore::new();
        let store = factory.open_store(&format!("seed{seed}")).await.expect("open");
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut leaf = None;
        for round in 0..120 {
            step(&mut rng, [&model, &store], &mut leaf).await;
            let mut leaves = vec![None, leaf.clone()];
            leaves.extend((0..3).map(|_| Some(id(&mut rng))));
            for probe in leaves {
                let expected = path(&model, probe.clone()).await;
                assert_eq!(
                    expected,
                    path(&store, probe.clone()).await,
                    "seed {seed}, round {round}: active path from {probe:?}"
                );
                match expected {
                    Ok(nodes) => longest = longest.max(nodes.len()),
                    Err(_) => cycles += 1,
                }
            }
        }
        let full = |read: Option<PersistedSessionRead>| read.map(|read| read.graph);
        assert_eq!(
            full(model.load_session(SessionReadScope::FullGraph).await.expect("model")),
            full(store.load_session(SessionReadScope::FullGraph).await.expect("postgres")),
            "seed {seed}: full graph"
        );
    }
    println!("longest path {longest}, cycle reports {cycles}");
    assert!(longest >= 20 && cycles > 0, "the histories exercised long runs and cycles");
}
