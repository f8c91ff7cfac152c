//! The session graph: an optional immutable **base** (nodes a durable backend keeps outside
//! memory, read on demand through [`GraphBase`]) under an in-memory **overlay** (nodes
//! appended since, tombstones and removals of base entries).
//!
//! The in-memory backend never has a base: its whole graph is overlay. The file backend puts
//! the graph of its last snapshot in a base (see `strata-file`'s graph section), so that
//! opening a store does not decode every node; compaction writes a new base from
//! [`GraphState::stored`] (base entries are named, not materialized, so that the backend that
//! wrote them can copy them as they are) and installs it with [`GraphState::rebase`].
//!
//! Insertion order is base entries first (in entry order), then overlay slots: a base is
//! always older than its overlay. A node id lives in at most one place: inserting an id whose
//! base entry is tombstoned marks that entry removed.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::types::SessionNodeRecord;

/// Immutable node storage under a graph's overlay, addressed by entry number
/// (`0..entry_count()`, in insertion order). Implemented by durable backends.
///
/// Lookups, tombstone flags and parent ids must be cheap (an index in memory): an active path
/// is walked with them alone, and only then are its nodes materialized, in one batch. Node
/// bodies may be read on demand, so materializing fails with the backend's error
/// (`CorruptData` naming the file and offset of a damaged body).
pub trait GraphBase: Send + Sync + fmt::Debug {
    /// Number of entries, live and tombstoned.
    fn entry_count(&self) -> usize;
    /// The entry holding `node_id`, if any.
    fn find(&self, node_id: &str) -> Option<usize>;
    /// Whether `entry` was tombstoned when the base was written.
    fn tombstoned(&self, entry: usize) -> bool;
    /// The `parent_node_id` of `entry`'s node (without materializing it).
    fn parent_id(&self, entry: usize) -> Result<Option<&str>, StoreError>;
    /// Materializes the nodes of `entries`, in that order.
    fn nodes_at(&self, entries: &[usize]) -> Result<Vec<SessionNodeRecord>, StoreError>;
    /// The base as `Any`, so that the backend that made it can recognize it (and copy its
    /// entries into a new base without decoding them).
    fn as_any(&self) -> &dyn Any;
}

/// One stored node (live or tombstoned) of a graph, as a new base must hold it.
#[derive(Clone, Copy, Debug)]
pub enum StoredNode<'a> {
    /// Entry `entry` of the graph's current base.
    Base {
        /// The entry number.
        entry: usize,
        /// Whether the node is tombstoned now.
        tombstoned: bool,
    },
    /// A node of the overlay.
    Overlay {
        /// The node.
        node: &'a SessionNodeRecord,
        /// Whether the node is tombstoned now.
        tombstoned: bool,
    },
}

/// Every stored node of a graph, in insertion order: what a new base must hold.
#[derive(Debug)]
pub struct StoredGraph<'a> {
    /// The current base, which [`StoredNode::Base`] entries refer to.
    pub base: Option<&'a dyn GraphBase>,
    /// The nodes, in insertion order.
    pub nodes: Vec<StoredNode<'a>>,
}

/// What became of a base entry since the base was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hidden {
    /// Tombstoned (vacuum removes it).
    Tombstoned,
    /// Removed by a vacuum, or superseded by a new node with the same id.
    Removed,
}

/// A stored overlay node and its tombstone flag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct NodeSlot {
    node: SessionNodeRecord,
    tombstoned: bool,
}

/// Where a live node is stored.
enum Live<'a> {
    Overlay(&'a SessionNodeRecord),
    Base(&'a dyn GraphBase, usize),
}

/// The session graph (see the module docs).
#[derive(Clone, Debug, Default)]
pub(super) struct GraphState {
    base: Option<Arc<dyn GraphBase>>,
    /// Base entries hidden since the base was written.
    hidden: HashMap<usize, Hidden>,
    /// Overlay slots in insertion order.
    slots: BTreeMap<u64, NodeSlot>,
    index: HashMap<String, u64>,
    next_slot: u64,
}

/// Equal when both sit on the same base object (or none) with equal overlays.
impl PartialEq for GraphState {
    fn eq(&self, other: &Self) -> bool {
        let same_base = match (&self.base, &other.base) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        same_base
            && self.hidden == other.hidden
            && self.slots == other.slots
            && self.index == other.index
            && self.next_slot == other.next_slot
    }
}

impl Eq for GraphState {}

impl GraphState {
    /// Whether base `entry` is still visible.
    fn base_live(&self, base: &dyn GraphBase, entry: usize) -> bool {
        !self.hidden.contains_key(&entry) && !base.tombstoned(entry)
    }

    /// Whether base `entry` is tombstoned and not yet removed.
    fn base_tombstoned(&self, base: &dyn GraphBase, entry: usize) -> bool {
        match self.hidden.get(&entry) {
            Some(hidden) => *hidden == Hidden::Tombstoned,
            None => base.tombstoned(entry),
        }
    }

    fn live(&self, node_id: &str) -> Option<Live<'_>> {
        if let Some(slot) = self.index.get(node_id).and_then(|position| self.slots.get(position)) {
            return (!slot.tombstoned).then_some(Live::Overlay(&slot.node));
        }
        let base = self.base.as_deref()?;
        let entry = base.find(node_id)?;
        self.base_live(base, entry).then_some(Live::Base(base, entry))
    }

    /// Whether a live node has this id (an index lookup; reads no node body).
    pub(super) fn is_live(&self, node_id: &str) -> bool {
        self.live(node_id).is_some()
    }

    /// Whether loading the live node `node_id` materializes it from the base.
    pub(super) fn load_reads_base(&self, node_id: &str) -> bool {
        matches!(self.live(node_id), Some(Live::Base(..)))
    }

    /// Whether the graph sits on a base holding entries (a graph read may materialize some).
    pub(super) fn has_base_entries(&self) -> bool {
        self.base.as_deref().is_some_and(|base| base.entry_count() > 0)
    }

    /// The live node with this id, materialized.
    pub(super) fn load(&self, node_id: &str) -> Result<Option<SessionNodeRecord>, StoreError> {
        match self.live(node_id) {
            None => Ok(None),
            Some(Live::Overlay(node)) => Ok(Some(node.clone())),
            Some(Live::Base(base, entry)) => Ok(base.nodes_at(&[entry])?.pop()),
        }
    }

    /// Inserts a node at the end; a tombstoned node with the same id is replaced.
    pub(super) fn insert(&mut self, node: &SessionNodeRecord) {
        if let Some(previous) = self.index.remove(&node.node_id) {
            self.slots.remove(&previous);
        }
        if let Some(entry) = self.base.as_deref().and_then(|base| base.find(&node.node_id)) {
            self.hidden.insert(entry, Hidden::Removed);
        }
        self.index.insert(node.node_id.clone(), self.next_slot);
        self.slots.insert(self.next_slot, NodeSlot { node: node.clone(), tombstoned: false });
        self.next_slot += 1;
    }

    /// Drops every node, base included.
    pub(super) fn clear(&mut self) {
        *self = Self { next_slot: self.next_slot, ..Self::default() };
    }

    /// Hides the live node `node_id`; true when there was one.
    pub(super) fn tombstone(&mut self, node_id: &str) -> bool {
        if let Some(slot) = self.index.get(node_id).and_then(|p| self.slots.get_mut(p)) {
            return !std::mem::replace(&mut slot.tombstoned, true);
        }
        let Some(base) = self.base.clone() else { return false };
        match base.find(node_id) {
            Some(entry) if self.base_live(base.as_ref(), entry) => {
                self.hidden.insert(entry, Hidden::Tombstoned);
                true
            }
            _ => false,
        }
    }

    /// Number of tombstoned nodes (what a vacuum would remove).
    pub(super) fn tombstoned_count(&self) -> usize {
        let overlay = self.slots.values().filter(|slot| slot.tombstoned).count();
        let base = self.base.as_deref().map_or(0, |base| {
            (0..base.entry_count()).filter(|&entry| self.base_tombstoned(base, entry)).count()
        });
        overlay + base
    }

    /// Physically removes every tombstoned node.
    pub(super) fn vacuum(&mut self) {
        self.slots.retain(|_, slot| !slot.tombstoned);
        let slots = &self.slots;
        self.index.retain(|_, position| slots.contains_key(position));
        if let Some(base) = self.base.clone() {
            for entry in 0..base.entry_count() {
                if self.base_tombstoned(base.as_ref(), entry) {
                    self.hidden.insert(entry, Hidden::Removed);
                }
            }
        }
    }

    /// Every live node, in insertion order.
    pub(super) fn live_nodes(&self) -> Result<Vec<SessionNodeRecord>, StoreError> {
        let mut nodes = match self.base.as_deref() {
            Some(base) => {
                let entries: Vec<usize> =
                    (0..base.entry_count()).filter(|&e| self.base_live(base, e)).collect();
                base.nodes_at(&entries)?
            }
            None => Vec::new(),
        };
        nodes.extend(self.slots.values().filter(|slot| !slot.tombstoned).map(|s| s.node.clone()));
        Ok(nodes)
    }

    /// Every stored node, tombstoned ones included, in insertion order (base entries named,
    /// not materialized).
    pub(super) fn stored(&self) -> StoredGraph<'_> {
        let base = self.base.as_deref();
        let mut nodes = Vec::new();
        if let Some(base) = base {
            nodes.extend(
                (0..base.entry_count())
                    .filter(|entry| self.hidden.get(entry) != Some(&Hidden::Removed))
                    .map(|entry| StoredNode::Base {
                        entry,
                        tombstoned: self.base_tombstoned(base, entry),
                    }),
            );
        }
        nodes.extend(
            self.slots
                .values()
                .map(|slot| StoredNode::Overlay { node: &slot.node, tombstoned: slot.tombstoned }),
        );
        StoredGraph { base, nodes }
    }

    /// Replaces the graph by `base`, which holds exactly what [`Self::stored`] described
    /// (or, at open, what the snapshot's graph section holds).
    pub(super) fn rebase(&mut self, base: Arc<dyn GraphBase>) {
        *self = Self { base: Some(base), next_slot: self.next_slot, ..Self::default() };
    }

    /// The ancestry of `leaf`, root → leaf; stops at a missing or tombstoned parent. Walked
    /// over ids and parent ids alone, then the base nodes of the path are materialized in one
    /// batch.
    pub(super) fn active_path(&self, leaf: &str) -> Result<Vec<SessionNodeRecord>, StoreError> {
        let stored = self.base.as_deref().map_or(0, |base| base.entry_count()) + self.slots.len();
        let mut chain: Vec<Live<'_>> = Vec::new();
        let mut next = self.live(leaf);
        while let Some(live) = next {
            if chain.len() > stored {
                return Err(StoreError::CorruptData {
                    location: format!("node {leaf}"),
                    detail: "its parent chain forms a cycle".into(),
                });
            }
            let parent = match &live {
                Live::Overlay(node) => node.parent_node_id.as_deref(),
                Live::Base(base, entry) => base.parent_id(*entry)?,
            };
            next = parent.and_then(|parent| self.live(parent));
            chain.push(live);
        }
        chain.reverse();
        let entries: Vec<usize> = chain
            .iter()
            .filter_map(|live| match live {
                Live::Base(_, entry) => Some(*entry),
                Live::Overlay(_) => None,
            })
            .collect();
        let mut from_base = match self.base.as_deref() {
            Some(base) if !entries.is_empty() => base.nodes_at(&entries)?,
            _ => Vec::new(),
        }
        .into_iter();
        chain
            .into_iter()
            .map(|live| match live {
                Live::Overlay(node) => Ok(node.clone()),
                Live::Base(..) => from_base.next().ok_or_else(|| {
                    StoreError::Backend("graph base returned fewer nodes than asked".into())
                }),
            })
            .collect()
    }
}
