//! Freshness: the epochs and generations that decide whether a cached entry may be served,
//! the write protocol that moves them, and the registry that gives every handle of one
//! session the same [`Scope`].
//!
//! # The rule
//!
//! A layer has one epoch counter. A read that fills the cache notes the epoch when it starts
//! (`read_at`). A write, once the store answered (or its future was dropped), takes a new
//! epoch `e` and raises the generation of every class of entries it may have changed to `e`
//! (per session: session reads, nodes, metadata; per node id: a stripe of a shared table).
//! An entry is served only if it was read at or after every generation that covers it, and
//! no write of its session is in flight. So an entry is served only when no write overlapped
//! the time from the start of its read to the hit: a fill that raced a write can still land
//! in moka, but it is never served (no stale resurrection), and a dropped fill or write
//! leaves nothing to undo.
//!
//! Writes also learn whether they ran alone (no other write of the session in flight when
//! they ended, none started since they began): only then may they replace cached entries
//! with the state they produced (write-through), tagged with their own epoch.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::entry::ItemRef;

/// Number of per-node-id generation stripes, shared by every session of a layer. Two ids in
/// one stripe only cost each other spurious misses, never a stale hit.
const NODE_STRIPES: usize = 4096;

/// Classes of a session's entries a write may change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Classes {
    /// `load_session` entries, every scope.
    pub(crate) sessions: bool,
    /// Every `load_node` entry of the session.
    pub(crate) nodes: bool,
    /// The `load_session_meta` entry.
    pub(crate) meta: bool,
}

impl Classes {
    pub(crate) const NONE: Self = Self { sessions: false, nodes: false, meta: false };
    pub(crate) const SESSIONS: Self = Self { sessions: true, ..Self::NONE };
    pub(crate) const SESSIONS_AND_NODES: Self = Self { sessions: true, nodes: true, meta: false };
    pub(crate) const META: Self = Self { meta: true, ..Self::NONE };

    pub(crate) fn any(self) -> bool {
        self.sessions || self.nodes || self.meta
    }
}

/// What one write invalidates: classes, plus the stripes of the node ids it named.
#[derive(Clone, Debug, Default)]
pub(super) struct Invalidation {
    pub(super) classes: Classes,
    pub(super) stripes: Vec<usize>,
}

impl Invalidation {
    pub(super) fn is_empty(&self) -> bool {
        !self.classes.any() && self.stripes.is_empty()
    }
}

/// The layer-wide epoch counter and per-node-id generations.
pub(super) struct Epochs {
    now: AtomicU64,
    stripes: Box<[AtomicU64]>,
    hasher: foldhash::fast::RandomState,
}

impl Default for Epochs {
    fn default() -> Self {
        Self {
            now: AtomicU64::new(0),
            stripes: (0..NODE_STRIPES).map(|_| AtomicU64::new(0)).collect(),
            hasher: Default::default(),
        }
    }
}

impl Epochs {
    /// The epoch a read starting now notes.
    pub(super) fn now(&self) -> u64 {
        self.now.load(SeqCst)
    }

    /// The stripe of `node_id` in session scope `scope`.
    pub(super) fn stripe(&self, scope: u64, node_id: &str) -> usize {
        (self.hasher.hash_one((scope, node_id)) % NODE_STRIPES as u64) as usize
    }

    fn stripe_generation(&self, stripe: usize) -> u64 {
        self.stripes[stripe].load(SeqCst)
    }
}

/// The freshness state of one session (or of one handle opened without a session id).
#[derive(Debug)]
pub(crate) struct Scope {
    /// The key prefix of this scope's entries.
    pub(super) id: u64,
    /// Writes of this scope in flight; while any is, no entry is served.
    pending: AtomicU32,
    sessions: AtomicU64,
    nodes: AtomicU64,
    meta: AtomicU64,
    /// The last epoch at which a write of this scope raised node stripes.
    stripes_raised: AtomicU64,
    /// Writes begun so far (tickets). Held while a write begins or ends, so that beginning
    /// and ending are ordered.
    writes: Mutex<u64>,
}

/// A generation no epoch reaches: a retired scope serves nothing.
const RETIRED: u64 = u64::MAX;

impl Scope {
    fn new(id: u64) -> Self {
        Self {
            id,
            pending: AtomicU32::new(0),
            sessions: AtomicU64::new(0),
            nodes: AtomicU64::new(0),
            meta: AtomicU64::new(0),
            stripes_raised: AtomicU64::new(0),
            writes: Mutex::new(0),
        }
    }

    fn writes(&self) -> MutexGuard<'_, u64> {
        // Nothing panics while the lock is held; a poisoned count is still right.
        self.writes.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// True once the session was deleted: every call goes to the store.
    pub(super) fn is_retired(&self) -> bool {
        self.sessions.load(SeqCst) == RETIRED
    }

    /// Whether a value read at `read_at` may be served now as the answer to `item`.
    pub(super) fn serves(&self, epochs: &Epochs, read_at: u64, item: ItemRef<'_>) -> bool {
        let (generation, node_id) = match item {
            ItemRef::Session(_) => (&self.sessions, None),
            ItemRef::Node(id) => (&self.nodes, Some(id)),
            ItemRef::Meta => (&self.meta, None),
        };
        // The node's stripe is looked up only if this scope raised a stripe since the read.
        let stripe_fresh = |id| {
            read_at >= self.stripes_raised.load(SeqCst)
                || read_at >= epochs.stripe_generation(epochs.stripe(self.id, id))
        };
        self.pending.load(SeqCst) == 0
            && read_at >= generation.load(SeqCst)
            && node_id.is_none_or(stripe_fresh)
    }

    /// Starts a write: no entry is served until it ends. Dropping the guard without
    /// [`WriteGuard::finish`] ends it as an ambiguous write (it may have applied).
    pub(super) fn begin_write<'a>(
        &'a self,
        epochs: &'a Epochs,
        touches: Invalidation,
    ) -> WriteGuard<'a> {
        let mut writes = self.writes();
        *writes += 1;
        self.pending.fetch_add(1, SeqCst);
        WriteGuard { scope: self, epochs, ticket: *writes, touches: Some(touches) }
    }

    /// Raises the generations of `invalidation` to a new epoch, ends the write `ticket`, and
    /// says whether it ran alone.
    fn end_write(&self, epochs: &Epochs, ticket: u64, invalidation: &Invalidation) -> Ended {
        let writes = self.writes();
        let alone = *writes == ticket && self.pending.load(SeqCst) == 1;
        let sessions_before = self.sessions.load(SeqCst);
        let epoch = epochs.now.fetch_add(1, SeqCst) + 1;
        let raise = |generation: &AtomicU64, on: bool| {
            if on {
                generation.fetch_max(epoch, SeqCst);
            }
        };
        raise(&self.sessions, invalidation.classes.sessions);
        raise(&self.nodes, invalidation.classes.nodes);
        raise(&self.meta, invalidation.classes.meta);
        for &stripe in &invalidation.stripes {
            epochs.stripes[stripe].fetch_max(epoch, SeqCst);
        }
        raise(&self.stripes_raised, !invalidation.stripes.is_empty());
        self.pending.fetch_sub(1, SeqCst);
        drop(writes);
        Ended { alone: alone.then_some(Alone { epoch, sessions_before }) }
    }

    /// Retires the scope (its session was deleted): nothing is served from it again.
    fn retire(&self) {
        let _writes = self.writes();
        for generation in [&self.sessions, &self.nodes, &self.meta] {
            generation.store(RETIRED, SeqCst);
        }
    }
}

/// How a write ended.
#[derive(Debug)]
pub(super) struct Ended {
    /// Set when no other write of the session overlapped this one.
    pub(super) alone: Option<Alone>,
}

/// A write that ran alone may insert the state it produced, tagged `epoch`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Alone {
    /// The epoch this write ended at: the `read_at` of the entries it inserts.
    pub(super) epoch: u64,
    /// The session-reads generation just before this write raised it: a cached read older
    /// than that was already stale and must not be built upon.
    pub(super) sessions_before: u64,
}

/// What became of a write, as far as the cache can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// It applied, or may have (an ambiguous failure).
    MayHaveApplied,
    /// It provably applied nothing.
    AppliedNothing,
    /// It applied nothing, and it proves another writer moved the session (a head revision
    /// or turn commit conflict): the session's reads and nodes are invalidated.
    MovedByAnother,
}

/// One write in flight (see [`Scope::begin_write`]).
pub(super) struct WriteGuard<'a> {
    scope: &'a Scope,
    epochs: &'a Epochs,
    ticket: u64,
    /// What the write changes if it applied; taken when the write ends.
    touches: Option<Invalidation>,
}

impl WriteGuard<'_> {
    /// Ends the write with `outcome`; returns how it ended and what it invalidated.
    pub(super) fn finish(mut self, outcome: Outcome) -> (Ended, Invalidation) {
        let touches = self.touches.take().unwrap_or_default();
        let invalidation = match outcome {
            Outcome::MayHaveApplied => touches,
            Outcome::AppliedNothing => Invalidation::default(),
            Outcome::MovedByAnother => {
                Invalidation { classes: Classes::SESSIONS_AND_NODES, stripes: Vec::new() }
            }
        };
        (self.scope.end_write(self.epochs, self.ticket, &invalidation), invalidation)
    }
}

/// A write whose future was dropped may have applied: invalidate what it touches.
impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        if let Some(touches) = self.touches.take() {
            self.scope.end_write(self.epochs, self.ticket, &touches);
        }
    }
}

/// The scopes of the sessions a layer has seen. Scopes are held weakly: a scope lives while
/// a handle or a cached entry of its session does.
#[derive(Default)]
pub(super) struct Registry {
    next_id: AtomicU64,
    sessions: Mutex<Sessions>,
}

#[derive(Default)]
struct Sessions {
    scopes: HashMap<String, Weak<Scope>>,
    /// Map size after the last sweep of dead scopes.
    swept_at: usize,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, Sessions> {
        self.sessions.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A scope of its own, for a handle of no known session.
    pub(super) fn private(&self) -> Arc<Scope> {
        Arc::new(Scope::new(self.next_id.fetch_add(1, SeqCst)))
    }

    /// The scope every handle of `session_id` shares.
    pub(super) fn session(&self, session_id: &str) -> Arc<Scope> {
        let mut sessions = self.lock();
        if let Some(scope) = sessions.scopes.get(session_id).and_then(Weak::upgrade) {
            return scope;
        }
        let scope = self.private();
        if sessions.scopes.len() >= 2 * sessions.swept_at.max(64) {
            sessions.scopes.retain(|_, scope| scope.strong_count() > 0);
            sessions.swept_at = sessions.scopes.len();
        }
        sessions.scopes.insert(session_id.to_owned(), Arc::downgrade(&scope));
        scope
    }

    /// Retires `session_id`'s scope: its handles serve nothing from the cache again, and a
    /// handle opened later gets a fresh scope.
    pub(super) fn forget(&self, session_id: &str) {
        let removed = self.lock().scopes.remove(session_id);
        if let Some(scope) = removed.and_then(|scope| scope.upgrade()) {
            scope.retire();
        }
    }
}
