//! Workload pieces shared by the benchmarks: nodes with a realistic 256-byte payload and the
//! blind commit that appends them.

use strata::{Bytes, GraphCommitDelta, RuntimeCommit, SessionNodeRecord};

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
