//! Workload pieces shared by the benchmarks: nodes with a 256-byte payload and the blind
//! commit that appends them; and the realistic agent turn (four ~740-byte JSON nodes, a usage
//! row, a turn stamp, CAS).

#![allow(dead_code)] // each benchmark uses a subset

use std::time::Duration;

use strata::{
    Bytes, GraphCommitDelta, RuntimeCommit, RuntimeTurnCommitStamp, SessionNodeRecord,
    TokenLedgerEntry, TokenUsage, commit_semantic_hash,
};

/// Payload bytes of every benchmark node.
pub const PAYLOAD: usize = 256;

/// A node `id` under `parent`, carrying a [`PAYLOAD`]-byte body.
pub fn node(id: String, parent: Option<String>) -> SessionNodeRecord {
    SessionNodeRecord {
        node_id: id,
        parent_node_id: parent,
        payload: Bytes::from(vec![7u8; PAYLOAD]),
        timestamp_ms: 0,
        frame_id: None,
        cause: None,
    }
}

/// A blind commit (no expected revision) appending `nodes` and standing on `leaf`.
pub fn append(session: &str, nodes: Vec<SessionNodeRecord>, leaf: Option<String>) -> RuntimeCommit {
    RuntimeCommit {
        session_id: session.to_owned(),
        graph: GraphCommitDelta::Append { nodes, leaf_node_id: leaf },
        ..Default::default()
    }
}

/// Nodes per commit of the realistic workload.
pub const NODES_PER_COMMIT: usize = 4;
/// Turns per branch of the realistic workload: every branch restarts from a new root, so the
/// head's active path holds at most `TURNS_PER_BRANCH * NODES_PER_COMMIT` (1000) nodes.
pub const TURNS_PER_BRANCH: u64 = 250;

/// A ~740-byte JSON message body, as an agent runtime stores per node.
pub fn json_payload(turn: u64, k: usize) -> Bytes {
    let mut body = format!(
        "{{\"role\":\"assistant\",\"turn\":{turn},\"part\":{k},\"model\":\"m-large\",\"content\":\""
    );
    while body.len() < 720 {
        body.push_str("The quick brown fox jumps over the lazy dog. ");
    }
    body.truncate(720);
    body.push_str("\",\"stop\":\"end_turn\"}");
    Bytes::from(body)
}

/// Turn `turn` (0-based) of the realistic session: `NODES_PER_COMMIT` JSON nodes chained under
/// the previous turn's last node (a new root every `TURNS_PER_BRANCH` turns), one usage row,
/// a turn stamp hashed with `commit_semantic_hash`, and CAS on the previous revision.
pub fn realistic_commit(session: &str, turn: u64) -> RuntimeCommit {
    let id = |t: u64, k: usize| format!("t{t}-{k}");
    let nodes: Vec<SessionNodeRecord> = (0..NODES_PER_COMMIT)
        .map(|k| SessionNodeRecord {
            node_id: id(turn, k),
            parent_node_id: match k {
                0 if turn.is_multiple_of(TURNS_PER_BRANCH) => None,
                0 => Some(id(turn - 1, NODES_PER_COMMIT - 1)),
                _ => Some(id(turn, k - 1)),
            },
            payload: json_payload(turn, k),
            timestamp_ms: 1_700_000_000_000 + turn,
            frame_id: Some("frame-main".into()),
            cause: None,
        })
        .collect();
    let mut commit = RuntimeCommit {
        session_id: session.to_owned(),
        expected_head_revision: Some(turn),
        graph: GraphCommitDelta::Append {
            nodes,
            leaf_node_id: Some(id(turn, NODES_PER_COMMIT - 1)),
        },
        ..Default::default()
    };
    add_usage_and_stamp(&mut commit, turn);
    commit
}

/// Adds a turn's usage row and its turn stamp (`turn-<turn>`, hashed with
/// `commit_semantic_hash` over the rest of the commit) to `commit`.
pub fn add_usage_and_stamp(commit: &mut RuntimeCommit, turn: u64) {
    commit.usage_deltas.push(TokenLedgerEntry {
        source: "agent".into(),
        model: "m-large".into(),
        usage: TokenUsage { input_tokens: 1200, output_tokens: 300, ..Default::default() },
    });
    commit.turn_commit = Some(RuntimeTurnCommitStamp {
        session_id: commit.session_id.clone(),
        turn_id: format!("turn-{turn}"),
        turn_commit_hash: commit_semantic_hash(commit),
    });
}

/// The sample at `fraction` (0 to 1) of `sorted`, a non-empty ascending list.
pub fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * fraction).round() as usize]
}
