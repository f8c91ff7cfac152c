//! Helpers shared by the integration tests: a runtime, commit fixtures, and re-executing the
//! test binary as a child process.

#![allow(dead_code)] // each test binary uses a subset

use std::path::Path;
use std::process::{Command, Stdio};

use strata_core::*;

/// Runs `future` on a small multi-threaded runtime.
pub fn run<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

/// Commit number `n` (1-based) of the linear test history: node `n<n>` under `n<n-1>`, one
/// input token of usage, a stamp, and a checkpoint blob every third commit.
pub fn nth_commit(session: &str, n: u64, payload_len: usize) -> RuntimeCommit {
    let node = SessionNodeRecord {
        node_id: format!("n{n}"),
        parent_node_id: (n > 1).then(|| format!("n{}", n - 1)),
        payload: Bytes::from(vec![(n % 251) as u8; payload_len]),
        timestamp_ms: n,
        frame_id: None,
        cause: None,
    };
    let checkpoint = n.is_multiple_of(3).then(|| RuntimeCheckpoint {
        turn_state: Bytes::from(format!("turn {n}")),
        tool_state: CheckpointBlob::payload(format!("tool state {n}")),
        ..Default::default()
    });
    RuntimeCommit {
        session_id: session.to_owned(),
        expected_head_revision: Some(n - 1),
        graph: GraphCommitDelta::Append { nodes: vec![node], leaf_node_id: Some(format!("n{n}")) },
        checkpoint,
        usage_deltas: vec![TokenLedgerEntry {
            source: "agent".into(),
            model: "m".into(),
            usage: TokenUsage { input_tokens: 1, ..Default::default() },
        }],
        turn_commit: Some(RuntimeTurnCommitStamp {
            session_id: session.to_owned(),
            turn_id: format!("t{n}"),
            turn_commit_hash: format!("h{n}"),
        }),
        ..Default::default()
    }
}

/// Checks a reopened store holds exactly the first `revision` commits of the linear history,
/// each whole (node, usage and head agree), and returns that revision.
pub async fn check_linear_history(store: &dyn RuntimePersistence) -> u64 {
    let Some(read) = store.load_session(SessionReadScope::FullGraph).await.expect("load") else {
        return 0;
    };
    let revision = read.head_revision;
    let ids: Vec<String> = read.graph.nodes.iter().map(|node| node.node_id.clone()).collect();
    let expected: Vec<String> = (1..=revision).map(|n| format!("n{n}")).collect();
    assert_eq!(ids, expected, "nodes of revision {revision}");
    assert_eq!(read.graph.leaf_node_id, Some(format!("n{revision}")));
    let tokens: u64 = read.token_ledger.iter().map(|entry| entry.usage.input_tokens).sum();
    assert_eq!(tokens, revision, "usage of revision {revision}");
    let path = store
        .load_session(SessionReadScope::ActivePath { leaf_node_id: None })
        .await
        .expect("load path")
        .expect("head");
    assert_eq!(path.graph.nodes.len() as u64, revision);
    revision
}

/// Starts this test binary again, running only the test `name`, with `env` set.
pub fn child(name: &str, env: &[(&str, &Path)]) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("test binary"));
    command.args(["--exact", name, "--ignored", "--nocapture", "--test-threads=1", "--quiet"]);
    for (key, value) in env {
        command.env(key, value);
    }
    command.stdout(Stdio::piped()).stderr(Stdio::null());
    command
}
