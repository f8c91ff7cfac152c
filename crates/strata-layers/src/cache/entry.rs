//! What the cache holds: keys (a session scope and an item), entries (a shared value, the
//! epoch its read started at, and its weight), and the per-entry expiry of negative entries.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::{Equivalent, Expiry};
use strata_core::{
    AgentFrame, PersistedSessionRead, Request, Response, RuntimeCheckpoint, SessionMeta,
    SessionNodeRecord, SessionReadScope, StoreError,
};

use super::read::SessionRead;
use super::scope::Scope;

/// A cache key: which session scope, and which read.
#[derive(Clone, Debug)]
pub(super) struct Key {
    pub(super) scope: u64,
    pub(super) item: Item,
}

/// The read a key stands for.
#[derive(Clone, Debug)]
pub(super) enum Item {
    Session(SessionReadScope),
    Node(String),
    Meta,
}

/// A key borrowed from a request: lookups build no owned key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct KeyRef<'a> {
    pub(super) scope: u64,
    pub(super) item: ItemRef<'a>,
}

/// The borrowed form of [`Item`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ItemRef<'a> {
    Session(&'a SessionReadScope),
    Node(&'a str),
    Meta,
}

impl<'a> ItemRef<'a> {
    /// The item a cached read asks for; `None` for requests the cache does not hold.
    pub(super) fn of(request: &'a Request<'_>) -> Option<Self> {
        match request {
            Request::LoadSession { scope } => Some(ItemRef::Session(scope)),
            Request::LoadNode { node_id } => Some(ItemRef::Node(node_id)),
            Request::LoadSessionMeta => Some(ItemRef::Meta),
            _ => None,
        }
    }
}

impl Key {
    pub(super) fn session(scope: u64, read: SessionReadScope) -> Self {
        Self { scope, item: Item::Session(read) }
    }

    pub(super) fn meta(scope: u64) -> Self {
        Self { scope, item: Item::Meta }
    }

    /// The read this key stands for, borrowed.
    pub(super) fn item(&self) -> ItemRef<'_> {
        self.as_ref().item
    }

    fn as_ref(&self) -> KeyRef<'_> {
        let item = match &self.item {
            Item::Session(read) => ItemRef::Session(read),
            Item::Node(id) => ItemRef::Node(id),
            Item::Meta => ItemRef::Meta,
        };
        KeyRef { scope: self.scope, item }
    }
}

impl KeyRef<'_> {
    pub(super) fn to_key(self) -> Key {
        let item = match self.item {
            ItemRef::Session(read) => Item::Session(read.clone()),
            ItemRef::Node(id) => Item::Node(id.to_owned()),
            ItemRef::Meta => Item::Meta,
        };
        Key { scope: self.scope, item }
    }
}

/// One word for the scope and the kind of read, then the id, if any (the only part of
/// variable length): every lookup hashes a key, so it takes as few hasher calls as it can.
impl Hash for KeyRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let (kind, id) = match self.item {
            ItemRef::Session(SessionReadScope::FullGraph) => (0, None),
            ItemRef::Session(SessionReadScope::ActivePath { leaf_node_id: None }) => (1, None),
            ItemRef::Session(SessionReadScope::ActivePath { leaf_node_id: Some(leaf) }) => {
                (2, Some(leaf.as_str()))
            }
            ItemRef::Node(id) => (3, Some(id)),
            ItemRef::Meta => (4, None),
        };
        state.write_u64(self.scope << 3 | kind);
        if let Some(id) = id {
            state.write(id.as_bytes());
        }
    }
}

/// Hashed and compared through [`KeyRef`], so that both forms agree (moka's contract for
/// [`Equivalent`] lookups).
impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_ref().hash(state);
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.as_ref() == other.as_ref()
    }
}

impl Eq for Key {}

impl Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        *self == key.as_ref()
    }
}

/// A cached read. Values are immutable and shared: a hit clones the `Arc`, then the value
/// into the response (payloads are [`Bytes`](strata_core::Bytes): reference counts, never
/// copies).
#[derive(Clone, Debug)]
pub(super) struct Entry(Arc<Cached>);

#[derive(Debug)]
pub(super) struct Cached {
    /// The epoch the read that produced the value started at (see the scope module).
    read_at: u64,
    /// Keeps the session's scope (its generations) alive while it has entries, so that a
    /// handle opened later for the session finds its cache warm.
    _scope: Arc<Scope>,
    value: Value,
    weight: u32,
}

/// A cached answer.
#[derive(Debug)]
pub(super) enum Value {
    /// Boxed: node and metadata entries stay small.
    Session(Option<Box<SessionRead>>),
    Node(Option<SessionNodeRecord>),
    Meta(Option<SessionMeta>),
}

impl Value {
    /// The value of the response to a read of `item` (a mismatched response is the inner
    /// store's typed error).
    pub(super) fn read(item: ItemRef<'_>, response: Response) -> Result<Self, StoreError> {
        Ok(match item {
            ItemRef::Session(_) => match response {
                Response::Session(read) => {
                    Value::Session(read.map(|read| Box::new(SessionRead::new(*read))))
                }
                // Another response: `into_session` names the mismatch.
                other => Value::Session(
                    other.into_session()?.map(|read| Box::new(SessionRead::new(read))),
                ),
            },
            ItemRef::Node(_) => Value::Node(response.into_node()?),
            ItemRef::Meta => Value::Meta(response.into_meta()?),
        })
    }

    /// A `load_node` miss (cached only with negative caching on).
    pub(super) fn is_negative_node(&self) -> bool {
        matches!(self, Value::Node(None))
    }

    /// The response a hit returns: a clone of the value (shared payloads).
    pub(super) fn response(&self) -> Response {
        match self {
            Value::Session(read) => {
                Response::Session(read.as_ref().map(|read| Box::new(read.to_read())))
            }
            Value::Node(node) => Response::Node(node.clone()),
            Value::Meta(meta) => Response::Meta(meta.clone()),
        }
    }

    /// Approximate heap bytes held: every id, payload and fixed-size part. Payloads shared
    /// by several entries count in each, so the byte bound errs on the safe side.
    fn bytes(&self) -> usize {
        match self {
            Value::Session(read) => read.as_deref().map_or(0, |read| {
                read_bytes(&read.head) + read.nodes.iter().map(node_bytes).sum::<usize>()
            }),
            Value::Node(node) => node.as_ref().map_or(0, node_bytes),
            Value::Meta(meta) => meta.as_ref().map_or(0, meta_bytes),
        }
    }
}

/// Fixed cost of one entry beyond its value: moka's node, the key, the `Arc`.
const ENTRY_OVERHEAD: usize = 160;

impl Entry {
    /// A value read at epoch `read_at`; `min_weight` is the weight floor that makes the
    /// byte bound an entry bound too (see `CacheLayer::with_max_entries`).
    pub(super) fn new(read_at: u64, scope: Arc<Scope>, value: Value, min_weight: u32) -> Self {
        let bytes = u32::try_from(value.bytes() + ENTRY_OVERHEAD).unwrap_or(u32::MAX);
        Self(Arc::new(Cached { read_at, _scope: scope, value, weight: bytes.max(min_weight) }))
    }

    pub(super) fn read_at(&self) -> u64 {
        self.0.read_at
    }

    pub(super) fn value(&self) -> &Value {
        &self.0.value
    }

    pub(super) fn weight(&self) -> u32 {
        self.0.weight
    }
}

fn opt_len(text: &Option<String>) -> usize {
    text.as_ref().map_or(0, String::len)
}

fn node_bytes(node: &SessionNodeRecord) -> usize {
    size_of::<SessionNodeRecord>()
        + node.node_id.len()
        + opt_len(&node.parent_node_id)
        + node.payload.len()
        + opt_len(&node.frame_id)
        + opt_len(&node.cause)
}

fn frame_bytes(frame: &AgentFrame) -> usize {
    size_of::<AgentFrame>()
        + frame.frame_id.len()
        + frame.payload.len()
        + frame.blob_refs.iter().map(String::len).sum::<usize>()
}

fn checkpoint_bytes(checkpoint: &RuntimeCheckpoint) -> usize {
    let parts = [&checkpoint.tool_state, &checkpoint.plugin_snapshot, &checkpoint.execution_state];
    size_of::<RuntimeCheckpoint>()
        + checkpoint.turn_state.len()
        + parts
            .iter()
            .map(|part| opt_len(&part.blob_ref) + part.payload.as_ref().map_or(0, |p| p.len()))
            .sum::<usize>()
}

fn read_bytes(read: &PersistedSessionRead) -> usize {
    size_of::<PersistedSessionRead>()
        + read.session_id.len()
        + read.config.len()
        + read.agent_frames.iter().map(frame_bytes).sum::<usize>()
        + opt_len(&read.current_frame_id)
        + read.graph.nodes.iter().map(node_bytes).sum::<usize>()
        + opt_len(&read.graph.leaf_node_id)
        + opt_len(&read.checkpoint_ref)
        + read.checkpoint.as_ref().map_or(0, checkpoint_bytes)
        + read
            .token_ledger
            .iter()
            .map(|row| size_of_val(row) + row.source.len() + row.model.len())
            .sum::<usize>()
}

fn meta_bytes(meta: &SessionMeta) -> usize {
    size_of::<SessionMeta>()
        + meta.session_id.len()
        + opt_len(&meta.session_name)
        + opt_len(&meta.model)
        + opt_len(&meta.cwd)
        + meta.relation.as_ref().map_or(0, |r| r.kind.len() + r.session_id.len())
}

/// Negative `load_node` entries live `ttl` (within the cache-wide time-to-live and
/// time-to-idle, which moka applies too); every other entry has no expiry of its own.
pub(super) struct NegativeExpiry {
    pub(super) ttl: Duration,
}

impl NegativeExpiry {
    fn of(&self, value: &Entry) -> Option<Duration> {
        value.value().is_negative_node().then_some(self.ttl)
    }
}

impl Expiry<Key, Entry> for NegativeExpiry {
    fn expire_after_create(&self, _key: &Key, value: &Entry, _at: Instant) -> Option<Duration> {
        self.of(value)
    }

    fn expire_after_update(
        &self,
        _key: &Key,
        value: &Entry,
        _at: Instant,
        _remaining: Option<Duration>,
    ) -> Option<Duration> {
        self.of(value)
    }
}
