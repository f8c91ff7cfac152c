//! A cached session read: the head's fields, and the graph's nodes in shared immutable
//! segments, so that a commit's write-through shares every node it did not change instead of
//! copying the graph (a hit still clones each returned record: the trait returns owned ones).

use std::sync::Arc;

use strata_core::{PersistedSessionRead, SessionNodeRecord};

/// Past this many segments, an append folds them into one (amortized over as many commits).
const MAX_SEGMENTS: usize = 32;

/// A graph's nodes, in order, as shared segments.
#[derive(Clone, Debug, Default)]
pub(super) struct Nodes {
    segments: Vec<Arc<[SessionNodeRecord]>>,
    len: usize,
}

impl Nodes {
    pub(super) fn new(nodes: Vec<SessionNodeRecord>) -> Self {
        let len = nodes.len();
        let segments = if nodes.is_empty() { Vec::new() } else { vec![Arc::from(nodes)] };
        Self { segments, len }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn iter(&self) -> impl DoubleEndedIterator<Item = &SessionNodeRecord> {
        self.segments.iter().flat_map(|segment| segment.iter())
    }

    pub(super) fn first(&self) -> Option<&SessionNodeRecord> {
        self.iter().next()
    }

    /// Every node, cloned (payloads shared).
    pub(super) fn to_vec(&self) -> Vec<SessionNodeRecord> {
        let mut nodes = Vec::with_capacity(self.len);
        nodes.extend(self.iter().cloned());
        nodes
    }

    /// These nodes followed by `more` (cloned); the existing segments are shared.
    pub(super) fn appended(&self, more: impl IntoIterator<Item = SessionNodeRecord>) -> Self {
        let more: Vec<SessionNodeRecord> = more.into_iter().collect();
        if more.is_empty() {
            return self.clone();
        }
        if self.segments.len() >= MAX_SEGMENTS {
            return Self::new(self.iter().cloned().chain(more).collect());
        }
        let mut nodes = self.clone();
        nodes.len += more.len();
        nodes.segments.push(Arc::from(more));
        nodes
    }

    /// The first `len` nodes: whole segments shared, the one cut in two copied.
    pub(super) fn prefix(&self, len: usize) -> Self {
        let mut kept = Self::default();
        for segment in &self.segments {
            let take = (len - kept.len).min(segment.len());
            if take == 0 {
                break;
            }
            kept.segments.push(if take == segment.len() {
                Arc::clone(segment)
            } else {
                Arc::from(&segment[..take])
            });
            kept.len += take;
        }
        kept
    }
}

/// A cached `load_session` answer.
#[derive(Debug)]
pub(super) struct SessionRead {
    /// Every field but the graph's nodes (`graph.nodes` is empty, `graph.leaf_node_id` set).
    pub(super) head: PersistedSessionRead,
    pub(super) nodes: Nodes,
}

impl SessionRead {
    /// Takes a store's answer apart (the nodes are moved, not cloned).
    pub(super) fn new(mut read: PersistedSessionRead) -> Self {
        let nodes = Nodes::new(std::mem::take(&mut read.graph.nodes));
        Self { head: read, nodes }
    }

    /// The answer, put back together (records cloned, payloads shared).
    pub(super) fn to_read(&self) -> PersistedSessionRead {
        let mut read = self.head.clone();
        read.graph.nodes = self.nodes.to_vec();
        read
    }
}

#[cfg(test)]
mod tests {
    use strata_core::Bytes;

    use super::*;

    fn nodes(ids: std::ops::Range<usize>) -> Vec<SessionNodeRecord> {
        ids.map(|id| SessionNodeRecord {
            node_id: id.to_string(),
            parent_node_id: None,
            payload: Bytes::from_static(b"p"),
            timestamp_ms: 0,
            frame_id: None,
            cause: None,
        })
        .collect()
    }

    fn ids(nodes: &Nodes) -> Vec<String> {
        nodes.iter().map(|node| node.node_id.clone()).collect()
    }

    #[test]
    fn appends_share_segments_and_prefixes_cut_them() {
        let base = Nodes::new(nodes(0..3));
        let grown = base.appended(nodes(3..5)).appended(nodes(5..6));
        assert_eq!(ids(&grown), (0..6).map(|id| id.to_string()).collect::<Vec<_>>());
        assert!(Arc::ptr_eq(&base.segments[0], &grown.segments[0]), "shared, not copied");
        assert_eq!(grown.len(), 6);
        for len in 0..=6 {
            let prefix = grown.prefix(len);
            assert_eq!(ids(&prefix), ids(&grown)[..len]);
            assert_eq!(prefix.len(), len);
        }
        assert_eq!(grown.prefix(3).segments.len(), 1, "a whole segment is kept as is");
    }

    #[test]
    fn many_appends_fold_into_one_segment() {
        let mut nodes_so_far = Nodes::default();
        for id in 0..(3 * MAX_SEGMENTS) {
            nodes_so_far = nodes_so_far.appended(nodes(id..id + 1));
            assert!(nodes_so_far.segments.len() <= MAX_SEGMENTS);
        }
        assert_eq!(nodes_so_far.len(), 3 * MAX_SEGMENTS);
        assert_eq!(nodes_so_far.to_vec(), nodes(0..3 * MAX_SEGMENTS));
    }
}
