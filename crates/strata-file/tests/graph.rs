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
