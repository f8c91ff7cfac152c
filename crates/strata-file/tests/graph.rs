//! The graph across snapshots: nodes in the snapshot's graph section (read lazily) and in the
//! overlay logged since give the same answers as a graph held in memory, through tombstones,
//! re-inserted ids, vacuum and full replacement, with a reopen (from the log, and from a new
//! snapshot) after every step.

mod common;

use std::path::Path;

use strata_core::*;
use strata_file::{FileStore, FileStoreOptions};
use strata_memory::MemoryStore;

use common::run;

fn node(id: &str, parent: Option<&str>) -> SessionNodeRecord {
    SessionNodeRecord {
        node_id: id.into(),
        parent_node_id: parent.map(Into::into),
        payload: Bytes::from(format!("body of {id}")),
        timestamp_ms: 7,
        frame_id: Some("f".into()),
        cause: None,
    }
}

fn append(nodes: Vec<SessionNodeRecord>) -> RuntimeCommit {
    let leaf = nodes.last().map(|node| node.node_id.clone());
    RuntimeCommit {
        session_id: "s".into(),
        graph: GraphCommitDelta::Append { nodes, leaf_node_id: leaf },
        ..Default::default()
    }
}

const IDS: [&str; 9] = ["a", "b", "c", "d", "e", "f", "x", "y", "z"];

/// Every graph read: the full graph, the active path of each id, each node.
async fn reads(store: &dyn RuntimePersistence) -> Vec<String> {
    let mut out = vec![format!("{:?}", store.load_session(SessionReadScope::FullGraph).await)];
    for id in IDS {
        let scope = SessionReadScope::ActivePath { leaf_node_id: Some(id.into()) };
        out.push(format!("{:?}", store.load_session(scope).await));
        out.push(format!("{:?}", store.load_node(id).await));
    }
    out
}

fn open(dir: &Path) -> FileStore {
    FileStore::open(dir, FileStoreOptions::default()).unwrap()
}

#[test]
fn a_graph_split_between_snapshot_and_log_reads_as_one() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let memory = MemoryStore::new();
        let steps: Vec<RuntimeCommit> = vec![
            // `z`'s parent is appended only at step 3 (after `z` is in a snapshot).
            append(vec![
                node("a", None),
                node("b", Some("a")),
                node("z", Some("y")),
                node("c", Some("b")),
            ]),
            append(vec![node("x", None)]),
            append(vec![node("d", Some("c")), node("e", Some("d"))]),
            append(vec![node("x", Some("a")), node("y", Some("x"))]),
            append(vec![node("b", Some("e"))]),
            RuntimeCommit {
                graph: GraphCommitDelta::ReplaceFull(SessionGraph {
                    nodes: vec![node("f", None), node("a", Some("f"))],
                    leaf_node_id: Some("a".into()),
                }),
                ..append(Vec::new())
            },
        ];
        let tombstones: [&[&str]; 6] = [&[], &["x"], &["b", "d"], &[], &["a"], &["f"]];
        for (index, (commit, hide)) in steps.into_iter().zip(tombstones).enumerate() {
            let hide: Vec<String> = hide.iter().map(|id| id.to_string()).collect();
            let store = open(dir.path());
            for target in [&store as &dyn RuntimePersistence, &memory] {
                target.commit_runtime_state(commit.clone()).await.unwrap();
                target.tombstone_nodes(&hide).await.unwrap();
            }
            if index == 3 {
                let (file, mem) = (store.vacuum().await.unwrap(), memory.vacuum().await.unwrap());
                assert_eq!(file, mem);
            }
            let expected = reads(&memory).await;
            assert_eq!(reads(&store).await, expected, "step {index}, live");
            drop(store);
            // Reopen: snapshot section (if any) + the log replayed over it.
            assert_eq!(reads(&open(dir.path())).await, expected, "step {index}, reopened");
            // Compact, reopen: everything in a new section.
            open(dir.path()).compact().unwrap();
            assert_eq!(reads(&open(dir.path())).await, expected, "step {index}, compacted");
        }
    });
}

/// A random tree written by many commits, with a compaction every few of them: its bodies
/// spread over several body files (merged by tiers as they come), in runs with gaps (batch
/// reads coalesce nearby bodies of one file into one read). The live store's graph, checked
/// every ten commits, and every read after a reopen equal the in-memory store's.
#[test]
fn reads_of_bodies_spread_over_many_body_files_equal_the_memory_store() {
    let dir = tempfile::tempdir().unwrap();
    let options = FileStoreOptions::default().with_compact_min_log_bytes(8 << 10);
    let mut rng = fastrand::Rng::with_seed(13);
    let memory = MemoryStore::new();
    let mut ids: Vec<String> = Vec::new();
    let body_files = |dir: &Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|entry| {
                entry.as_ref().unwrap().file_name().to_string_lossy().starts_with("bodies.")
            })
            .count()
    };
    let mut most_files = 0;
    run(async {
        let store = FileStore::open(dir.path(), options.clone()).unwrap();
        for turn in 0..120 {
            let nodes: Vec<SessionNodeRecord> = (0..3)
                .map(|k| {
                    let id = format!("n{turn}-{k}");
                    let parent = (!ids.is_empty()).then(|| ids[rng.usize(..ids.len())].clone());
                    ids.push(id.clone());
                    let mut record = node(&id, parent.as_deref());
                    record.payload = Bytes::from(id.repeat(rng.usize(1..400)));
                    record
                })
                .collect();
            let commit = append(nodes);
            memory.commit_runtime_state(commit.clone()).await.unwrap();
            store.commit_runtime_state(commit).await.unwrap();
            if turn % 10 == 9 {
                // The live image, rebuilt by each background compaction and caught up on
                // the commits written meanwhile, answers as the memory store does.
                let full = SessionReadScope::FullGraph;
                assert_eq!(
                    format!("{:?}", store.load_session(full.clone()).await),
                    format!("{:?}", memory.load_session(full).await),
                    "after turn {turn}"
                );
                most_files = most_files.max(body_files(dir.path()));
            }
        }
    });
    assert!(most_files >= 2, "the bodies spread over several files: {most_files}");
    let store = FileStore::open(dir.path(), options).unwrap();
    run(async {
        let full = SessionReadScope::FullGraph;
        assert_eq!(
            format!("{:?}", store.load_session(full.clone()).await),
            format!("{:?}", memory.load_session(full).await)
        );
        for _ in 0..40 {
            let id = &ids[rng.usize(..ids.len())];
            let scope = SessionReadScope::ActivePath { leaf_node_id: Some(id.clone()) };
            assert_eq!(
                format!("{:?}", store.load_session(scope.clone()).await),
                format!("{:?}", memory.load_session(scope).await),
                "path to {id}"
            );
            assert_eq!(
                format!("{:?}", store.load_node(id).await),
                format!("{:?}", memory.load_node(id).await)
            );
        }
    });
}
