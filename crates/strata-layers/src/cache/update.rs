//! Write-through of commits: the session reads a successful commit produced, derived from
//! the cached reads it applied to, whenever they can be derived exactly (otherwise the
//! caller just invalidates).
//!
//! The inputs are trusted only as far as the caller proved them: a cached read at revision
//! `r`, no other write of the session overlapping the commit, and a commit result at
//! `r + 1`, so the commit applied exactly on top of that read. From there the new head
//! fields come from the commit and its result, the ledger is the old one merged with the
//! commit's usage rows, the checkpoint is hydrated from the payloads the commit carried or
//! the old checkpoint's (blobs are content-addressed), the full graph grows by the appended
//! nodes (or is replaced), and the head's active path is walked again: over the old path and
//! the appended nodes when the new leaf hangs off them, over the whole new graph otherwise.

use std::collections::HashMap;

use strata_core::{
    BlobRef, Bytes, CheckpointBlob, GraphCommitDelta, PersistedSessionRead, RuntimeCheckpoint,
    RuntimeCommit, RuntimeCommitResult, SessionCheckpoint, SessionGraph, SessionNodeRecord,
    merge_token_ledger,
};

use super::read::{Nodes, SessionRead};

/// The cached reads a commit applied to (`Some(None)`: "no session yet" was cached).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Before<'a> {
    /// The `FullGraph` read.
    pub(super) full: Option<Option<&'a SessionRead>>,
    /// The head's `ActivePath` read.
    pub(super) path: Option<Option<&'a SessionRead>>,
}

/// The reads the commit produced, those that could be derived.
#[derive(Debug, Default)]
pub(super) struct After {
    /// The `FullGraph` read.
    pub(super) full: Option<SessionRead>,
    /// The head's `ActivePath` read (also the `ActivePath` read of the new leaf by id).
    pub(super) path: Option<SessionRead>,
}

fn revision(read: Option<&SessionRead>) -> u64 {
    read.map_or(0, |read| read.head.head_revision)
}

/// The reads after `commit` (which returned `result`) applied on top of `before`.
pub(super) fn after_commit(
    before: Before<'_>,
    commit: &RuntimeCommit,
    result: &RuntimeCommitResult,
) -> After {
    let applies_to = |read: &Option<&SessionRead>| {
        revision(*read) + 1 == result.head_revision
            && read.is_none_or(|read| read.head.session_id == commit.session_id)
    };
    let full = before.full.filter(applies_to);
    let path = before.path.filter(applies_to);
    let Some(base) = full.or(path) else { return After::default() };
    let Some(head) = head_after(base.map(|read| &read.head), commit, result) else {
        return After::default();
    };

    let nodes_of =
        |read: Option<&SessionRead>| read.map(|read| read.nodes.clone()).unwrap_or_default();
    let full_nodes = full.map(|full| match &commit.graph {
        GraphCommitDelta::Unchanged { .. } => nodes_of(full),
        GraphCommitDelta::Append { nodes, .. } => nodes_of(full).appended(nodes.iter().cloned()),
        GraphCommitDelta::ReplaceFull(graph) => Nodes::new(graph.nodes.clone()),
    });
    let leaf = commit.graph.leaf_node_id();
    let path_nodes = match leaf {
        None => Some(Nodes::default()),
        Some(leaf) => {
            let extended = path.and_then(|old| extend_path(&commit.graph, &nodes_of(old), leaf));
            extended.or_else(|| {
                let path = match &commit.graph {
                    GraphCommitDelta::ReplaceFull(graph) => walk(graph.nodes.iter(), leaf),
                    _ => walk(full_nodes.as_ref()?.iter(), leaf),
                };
                path.map(Nodes::new)
            })
        }
    };
    let read = |nodes: Nodes| SessionRead {
        head: PersistedSessionRead {
            graph: SessionGraph { nodes: Vec::new(), leaf_node_id: leaf.map(str::to_owned) },
            ..head.clone()
        },
        nodes,
    };
    After { full: full_nodes.map(read), path: path_nodes.map(read) }
}

/// The head fields after the commit, with an empty graph; `None` when the checkpoint cannot
/// be hydrated from what the cache holds.
fn head_after(
    before: Option<&PersistedSessionRead>,
    commit: &RuntimeCommit,
    result: &RuntimeCommitResult,
) -> Option<PersistedSessionRead> {
    let checkpoint = match &commit.checkpoint {
        // No checkpoint: the head keeps its own.
        None => {
            let kept_ref = before.and_then(|read| read.checkpoint_ref.as_ref());
            if kept_ref != result.checkpoint_ref.as_ref() {
                return None;
            }
            before.and_then(|read| read.checkpoint.clone())
        }
        Some(given) => Some(hydrate(
            given,
            result.manifest.as_ref()?,
            before.and_then(|read| read.checkpoint.as_ref()),
        )?),
    };
    let ledger_before = before.map_or(&[][..], |read| &read.token_ledger);
    Some(PersistedSessionRead {
        session_id: commit.session_id.clone(),
        head_revision: result.head_revision,
        config: commit.config.clone(),
        agent_frames: commit.agent_frames.clone(),
        current_frame_id: commit.current_frame_id.clone(),
        graph: SessionGraph::default(),
        checkpoint_ref: result.checkpoint_ref.clone(),
        checkpoint,
        token_ledger: merge_token_ledger(ledger_before.iter().chain(&commit.usage_deltas)),
    })
}

/// The stored checkpoint `manifest`, hydrated from the payloads `given` carried (at the
/// manifest's minted refs) and the previous checkpoint's; `None` if a ref has no known bytes.
fn hydrate(
    given: &RuntimeCheckpoint,
    manifest: &SessionCheckpoint,
    previous: Option<&RuntimeCheckpoint>,
) -> Option<RuntimeCheckpoint> {
    let parts = |checkpoint: &RuntimeCheckpoint| {
        [
            checkpoint.tool_state.clone(),
            checkpoint.plugin_snapshot.clone(),
            checkpoint.execution_state.clone(),
        ]
    };
    let refs =
        [&manifest.tool_state_ref, &manifest.plugin_snapshot_ref, &manifest.execution_state_ref];
    let mut known: Vec<(BlobRef, Bytes)> = Vec::new();
    for (part, minted) in parts(given).into_iter().zip(refs) {
        if let (Some(payload), Some(minted)) = (part.payload, minted) {
            known.push((minted.clone(), payload));
        }
    }
    for part in previous.map(parts).into_iter().flatten() {
        if let (Some(blob_ref), Some(payload)) = (part.blob_ref, part.payload) {
            known.push((blob_ref, payload));
        }
    }
    let hydrated = |blob_ref: &Option<BlobRef>| match blob_ref {
        None => Some(CheckpointBlob::default()),
        Some(wanted) => known.iter().find(|(blob_ref, _)| blob_ref == wanted).map(|(_, bytes)| {
            CheckpointBlob { blob_ref: Some(wanted.clone()), payload: Some(bytes.clone()) }
        }),
    };
    Some(RuntimeCheckpoint {
        turn_state: manifest.turn_state.clone(),
        tool_state: hydrated(refs[0])?,
        plugin_snapshot: hydrated(refs[1])?,
        plugin_snapshot_revision: manifest.plugin_snapshot_revision,
        execution_state: hydrated(refs[2])?,
    })
}

/// The ancestry of `leaf` over the old head path and the nodes `delta` appended, when it
/// lies within them: the walk goes up through appended nodes and joins the old path (whose
/// prefix up to any of its nodes is that node's ancestry, shared rather than copied). `None`
/// when it leaves them (the parent may be live elsewhere in the graph) or when the appended
/// nodes extend the old path's root.
fn extend_path(delta: &GraphCommitDelta, old: &Nodes, leaf: &str) -> Option<Nodes> {
    let appended = match delta {
        GraphCommitDelta::Unchanged { .. } => &[][..],
        GraphCommitDelta::Append { nodes, .. } => nodes,
        GraphCommitDelta::ReplaceFull(_) => return None,
    };
    let find = |id: &str| appended.iter().find(|node| node.node_id == id);
    // The old root's parent was not live; appended now, it would extend the path upwards.
    if old
        .first()
        .and_then(|root| root.parent_node_id.as_deref())
        .is_some_and(|p| find(p).is_some())
    {
        return None;
    }
    let mut chain: Vec<&SessionNodeRecord> = Vec::new();
    let mut current = Some(leaf);
    while let Some(id) = current {
        let Some(node) = find(id) else {
            // Joins the old path (searched from its leaf end, where appends usually attach).
            let from_end = old.iter().rev().position(|node| node.node_id == id)?;
            let prefix = old.prefix(old.len() - from_end);
            return Some(prefix.appended(chain.into_iter().rev().cloned()));
        };
        if chain.len() == appended.len() {
            return None; // a cycle: the store reports it, the cache must not invent a path
        }
        chain.push(node);
        current = node.parent_node_id.as_deref();
    }
    Some(Nodes::new(chain.into_iter().rev().cloned().collect()))
}

/// The ancestry of `leaf` within `nodes`, every live node of the graph (root → leaf; empty
/// for an unknown leaf); `None` on a parent cycle.
fn walk<'a>(
    nodes: impl Iterator<Item = &'a SessionNodeRecord>,
    leaf: &str,
) -> Option<Vec<SessionNodeRecord>> {
    let by_id: HashMap<&str, &SessionNodeRecord> =
        nodes.map(|node| (node.node_id.as_str(), node)).collect();
    let mut chain: Vec<&SessionNodeRecord> = Vec::new();
    let mut next = by_id.get(leaf).copied();
    while let Some(node) = next {
        if chain.len() == by_id.len() {
            return None;
        }
        chain.push(node);
        next = node.parent_node_id.as_deref().and_then(|parent| by_id.get(parent).copied());
    }
    Some(chain.into_iter().rev().cloned().collect())
}
