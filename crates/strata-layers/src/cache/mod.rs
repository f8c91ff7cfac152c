//! The cache layer: a read-through cache of `load_session` (per scope: the full graph, and
//! the active path per leaf), `load_node` and `load_session_meta` in front of any store, on
//! [`moka::future::Cache`]. Everything else (queued work, the attachment manifest, garbage
//! collection) always reaches the store.
//!
//! ```
//! use std::time::Duration;
//! use strata_core::StoreBuilder;
//! use strata_layers::CacheLayer;
//!
//! // In a full stack, add tracing and metrics first: they then sit outside the cache.
//! let stack = StoreBuilder::new()
//!     .layer(CacheLayer::default().with_negative_caching(Duration::from_millis(500)));
//! assert_eq!(format!("{stack:?}"), "StoreBuilder[cache]");
//! ```
//!
//! # Defaults
//!
//! | setting | default | setter |
//! |---|---|---|
//! | byte bound (payloads, ids, a fixed cost per entry) | 64 MiB | [`CacheLayer::with_max_bytes`] |
//! | entry bound | 100 000 | [`CacheLayer::with_max_entries`] |
//! | time to live (since the read) | 60 s | [`CacheLayer::with_time_to_live`] |
//! | time to idle (since the last hit) | none | [`CacheLayer::with_time_to_idle`] |
//! | negative caching of `load_node` misses | off | [`CacheLayer::with_negative_caching`] (its own time to live) |
//! | revalidation against the store | [`Revalidation::Off`] | [`CacheLayer::with_revalidation`] |
//! | `store` metric label | none | [`CacheLayer::with_store_name`] |
//!
//! Both bounds hold at once: moka bounds the total weight (the approximate bytes of an
//! entry), and every entry weighs at least `max_bytes / max_entries`. Payloads shared by
//! several entries (a node in the full graph, in a path and on its own) count in each. Clones
//! of a layer share one cache; all sessions a layer serves share its bounds.
//!
//! # Where it goes
//!
//! Inside metrics, outside everything else: `tracing → metrics → cache → retry → timeout →
//! limit → breaker → store`. Metrics then count the calls the application made (hits
//! included, and this layer's own `strata_store_cache_*` counters tell hits from misses);
//! retry, timeout, limit and breaker act only on the calls that reach the store, and a retried
//! read fills the cache once.
//!
//! # What every call does
//!
//! One table in the code (`RULES`, in this module's `rules.rs`) gives each [`Operation`] its
//! rule; every call is served by it, and a test fails when an operation has none. In short:
//!
//! | operation | rule |
//! |---|---|
//! | `load_session`, `load_node`, `load_session_meta` | served from the cache; a miss reads the store once per key at a time (concurrent misses share that read) |
//! | `commit_runtime_state` | on success, the full graph and the head's active path (by `None` and by the new leaf's id; the previous leaf's entry is dropped) are replaced by the state the commit produced, derived from the cached reads it applied to (new head fields, merged ledger, hydrated checkpoint, appended nodes or the replacing graph, the path walked again), when they can be derived exactly; every other session read is invalidated; `ReplaceFull` invalidates every node; with negative caching, the appended ids' node entries too. A head revision or turn commit conflict invalidates the session's reads and nodes: another writer moved the head |
//! | `save_session_meta` | on success, the cached record is replaced by the saved one |
//! | `tombstone_nodes` | invalidates the named nodes and every session read |
//! | `vacuum` | invalidates every session read and node |
//! | `gc_unreachable` | reaches the store; deletes only blobs unreachable from the head, which no read returns |
//! | queued work (8 operations), attachment manifest (4) | reach the store; never cached |
//!
//! A write that fails with an error proving nothing was applied (`NotApplied`, `Overloaded`,
//! `CircuitOpen`, invalid input, a binding mismatch or an expired claim) leaves the cache as
//! it is; the two conflicts invalidate as said above; any other failure may have applied, and
//! invalidates as success would (without updating).
//!
//! # Freshness within a process: never stale
//!
//! A read served from the cache never returns state that a write through this layer has
//! replaced, and never goes back behind a read that already saw a newer state:
//!
//! - Every entry carries the epoch its store read *started* at; a write, once the store
//!   answered, raises the generations of what it may have changed (per session: its reads,
//!   its nodes, its metadata; per node id: a stripe of a shared table) to a new epoch. An
//!   entry read before a generation that covers it is never served, so a fill that raced a
//!   write can land in moka but is never served (no stale resurrection), whatever the
//!   interleaving. While a write of the session is in flight, nothing of it is served.
//! - Concurrent misses of one key make one store read (moka's single flight). A caller that
//!   joined a read which started before a write it must see reads again.
//! - A write replaces entries (write-through) only if no other write of the session
//!   overlapped it, and only from cached reads it provably applied to (their revision is one
//!   below the commit's result).
//!
//! All of this holds for the writes that go through the layer's cache scope: every handle
//! of a session opened through a layered factory shares one scope
//! ([`Layer::layer_session`]), so a write through any handle is seen by all of them; so do the
//! stores of [`StoreBuilder::build_for_session`](strata_core::StoreBuilder::build_for_session)
//! with one session id. A store wrapped with plain [`Layer::layer`] has a scope of its own:
//! wrap two handles of one store that way and each caches only its own writes. When a
//! layered factory deletes a session, its scope is retired: handles still open serve nothing
//! from the cache, handles opened later start afresh. The session id is the sharing key:
//! give each factory (each namespace of session ids) a `CacheLayer` of its own, since clones
//! of one layer over two factories whose session ids overlap would share one scope between
//! unrelated sessions.
//!
//! # Several processes: bounded staleness, or revalidation
//!
//! A write made by another process (the PostgreSQL backend serves many hosts), or by a
//! handle that does not share this layer's scope, is not seen by the cache. With
//! [`Revalidation::Off`] (the default), an entry is served until it expires: **the time to
//! live (60 s by default) bounds how stale a read can be**. Set it to what the application
//! can tolerate, or use [`Revalidation::HeadRevision`]: before a cached `load_session` is
//! served, the store's head revision is read and the entry is served only if it matches
//! (otherwise the session is read again and re-cached). The trait has no "head revision
//! only" call; the cheapest honest probe is `load_session` of an active path to the leaf
//! `""`, which no node can have: one store call returning the head's fields, its hydrated
//! checkpoint and the merged ledger, and no graph node. It costs one round trip (and the
//! checkpoint's bytes) instead of the graph's: for a large graph still far less than the read
//! it saves, for a small one about as much. The probe sees commits (they move the head);
//! tombstones, vacuums and metadata saves by another process do not move it, and stay bounded
//! by the time to live; nodes and metadata are not revalidated.
//!
//! # Cancellation
//!
//! A dropped read leaves nothing behind: moka hands the flight to another waiting caller,
//! which reads the store itself, and the dropped read never inserts. A dropped write may have
//! applied: its guard ends it as an ambiguous write, raising the generations of everything
//! it could have changed, so the cache never serves what it might have replaced.
//!
//! # Costs
//!
//! A hit is a hash lookup and a clone of the cached value: payloads are
//! [`Bytes`](strata_core::Bytes) shared with the cache, never copied, but the trait returns
//! owned records, so the ids and other strings of every returned node are cloned: a
//! full-graph hit costs O(nodes), about what a store that keeps the graph in memory pays to
//! answer (the in-memory store, or the file store before its log is compacted). The cache pays
//! off where a read costs more than that copy: graphs read from disk or over a network, and
//! nodes and metadata of any store. A miss costs one clone more than the store read (the
//! cache keeps its own copy); an answer heavier than the byte bound is never kept. A commit's
//! write-through shares the unchanged nodes with the entries it replaces (appending a segment),
//! so its cost is the commit's own size, not the graph's. Measured figures are in the
//! [crate docs](crate#cost).
//!
//! # Why it implements `Serve`
//!
//! The cache needs per-method logic, so it is not an [`Around`](strata_core::Around)
//! decorator. It implements [`Serve`] and matches on the [`Request`], whose operation selects
//! its rule: the blanket implementation then provides every method of the trait (provided
//! ones and the manifest included), so no call can fall back to a provided default and
//! bypass the cache's rules, and a new trait method becomes a new [`Operation`] that the rules
//! test reports until it has a rule.
//!
//! Metrics (hits, misses, loads, invalidations, updates, evictions, revalidations) are listed
//! in the [crate docs](crate#metrics); names are constants in [`names`].

mod entry;
mod read;
mod rules;
mod scope;
mod stats;
mod update;

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use strata_core::{
    DurabilityTier, ErrorClass, GraphCommitDelta, Layer, Operation, Request, Response,
    RuntimeCommit, Serve, SessionMeta, SessionReadScope, StoreError,
};

use self::entry::{Entry, ItemRef, Key, KeyRef, NegativeExpiry, Value};
use self::read::SessionRead;
use self::rules::{Rule, rule};
use self::scope::{Alone, Epochs, Invalidation, Outcome, Registry, Scope};
pub use self::stats::names;
use self::stats::{Event, Stats};

/// Whether a cached session read is checked against the store before it is served.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Revalidation {
    /// Serve entries until they expire or a write through this layer invalidates them.
    #[default]
    Off,
    /// Before serving a cached `load_session`, read the store's head revision (one
    /// `load_session` of an empty active path) and serve the entry only if it is the same.
    HeadRevision,
}

/// The cache layer's configuration and shared state. Clones share one cache; every `with_*`
/// setter returns a layer with a cache of its own (configure first, then clone).
#[derive(Clone)]
pub struct CacheLayer {
    shared: Arc<Shared>,
}

#[derive(Clone, Debug)]
struct Config {
    max_bytes: u64,
    max_entries: u64,
    time_to_live: Option<Duration>,
    time_to_idle: Option<Duration>,
    negative_ttl: Option<Duration>,
    revalidation: Revalidation,
    store_name: Option<Cow<'static, str>>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_bytes: 64 << 20,
            max_entries: 100_000,
            time_to_live: Some(Duration::from_secs(60)),
            time_to_idle: None,
            negative_ttl: None,
            revalidation: Revalidation::Off,
            store_name: None,
        }
    }
}

struct Shared {
    config: Config,
    cache: Cache<Key, Entry, foldhash::fast::RandomState>,
    /// Every entry weighs at least this, so that `max_bytes` also bounds the entry count.
    min_weight: u32,
    epochs: Epochs,
    registry: Registry,
    stats: Arc<Stats>,
}

impl Shared {
    fn new(config: Config) -> Self {
        let stats = Arc::new(Stats::new(config.store_name.clone()));
        let evictions = Arc::clone(&stats);
        let mut builder = Cache::builder()
            .max_capacity(config.max_bytes)
            .weigher(|_key: &Key, entry: &Entry| entry.weight())
            .eviction_listener(move |_key, _entry, cause| evictions.removed(cause));
        if let Some(ttl) = config.time_to_live {
            builder = builder.time_to_live(ttl);
        }
        if let Some(tti) = config.time_to_idle {
            builder = builder.time_to_idle(tti);
        }
        if let Some(ttl) = config.negative_ttl {
            builder = builder.expire_after(NegativeExpiry { ttl });
        }
        let min_weight =
            u32::try_from(config.max_bytes / config.max_entries.max(1)).unwrap_or(u32::MAX);
        Self {
            cache: builder.build_with_hasher(foldhash::fast::RandomState::default()),
            min_weight,
            epochs: Epochs::default(),
            registry: Registry::default(),
            stats,
            config,
        }
    }
}

impl Default for CacheLayer {
    fn default() -> Self {
        Self::configured(Config::default())
    }
}

impl CacheLayer {
    /// The defaults (see the module docs).
    pub fn new() -> Self {
        Self::default()
    }

    fn configured(config: Config) -> Self {
        Self { shared: Arc::new(Shared::new(config)) }
    }

    fn with(&self, change: impl FnOnce(&mut Config)) -> Self {
        let mut config = self.shared.config.clone();
        change(&mut config);
        Self::configured(config)
    }

    /// Bounds the approximate bytes held (payloads, ids and a fixed cost per entry).
    pub fn with_max_bytes(self, bytes: u64) -> Self {
        self.with(|config| config.max_bytes = bytes)
    }

    /// Bounds the number of entries.
    pub fn with_max_entries(self, entries: u64) -> Self {
        self.with(|config| config.max_entries = entries)
    }

    /// Entries expire this long after they were read (`None`: never).
    pub fn with_time_to_live(self, ttl: Option<Duration>) -> Self {
        self.with(|config| config.time_to_live = ttl)
    }

    /// Entries expire this long after their last hit (`None`: never).
    pub fn with_time_to_idle(self, tti: Option<Duration>) -> Self {
        self.with(|config| config.time_to_idle = tti)
    }

    /// Caches `load_node` misses too, for `ttl` each.
    pub fn with_negative_caching(self, ttl: Duration) -> Self {
        self.with(|config| config.negative_ttl = Some(ttl))
    }

    /// Sets the revalidation mode.
    pub fn with_revalidation(self, revalidation: Revalidation) -> Self {
        self.with(|config| config.revalidation = revalidation)
    }

    /// Adds a `store` label with this static value to every cache metric.
    pub fn with_store_name(self, name: impl Into<Cow<'static, str>>) -> Self {
        let name = name.into();
        self.with(|config| config.store_name = Some(name))
    }

    /// Approximate number of entries held (exact after [`run_pending_tasks`]).
    ///
    /// [`run_pending_tasks`]: Self::run_pending_tasks
    pub fn entry_count(&self) -> u64 {
        self.shared.cache.entry_count()
    }

    /// Approximate weight of the entries held, in the bytes [`with_max_bytes`] bounds
    /// (exact after [`run_pending_tasks`]).
    ///
    /// [`with_max_bytes`]: Self::with_max_bytes
    /// [`run_pending_tasks`]: Self::run_pending_tasks
    pub fn weighted_size(&self) -> u64 {
        self.shared.cache.weighted_size()
    }

    /// Runs moka's pending maintenance now (evictions by the bounds, expiry), which it
    /// otherwise does in small steps during calls.
    pub async fn run_pending_tasks(&self) {
        self.shared.cache.run_pending_tasks().await;
    }

    fn wrap<S>(&self, inner: S, scope: Arc<Scope>) -> CacheStore<S> {
        CacheStore { inner, shared: Arc::clone(&self.shared), scope }
    }
}

impl fmt::Debug for CacheLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.shared.stats.store_name() {
            Some(name) => write!(f, "cache({name})"),
            None => f.write_str("cache"),
        }
    }
}

impl<S: Serve> Layer<S> for CacheLayer {
    type Store = CacheStore<S>;

    /// A store with a cache scope of its own.
    fn layer(&self, inner: S) -> CacheStore<S> {
        self.wrap(inner, self.shared.registry.private())
    }

    /// A store sharing one cache scope with every other handle of `session_id`.
    fn layer_session(&self, session_id: &str, inner: S) -> CacheStore<S> {
        self.wrap(inner, self.shared.registry.session(session_id))
    }

    fn forget_session(&self, session_id: &str) {
        self.shared.registry.forget(session_id);
    }
}

/// A store whose reads are cached (see the module docs).
pub struct CacheStore<S> {
    inner: S,
    shared: Arc<Shared>,
    scope: Arc<Scope>,
}

impl<S: fmt::Debug> fmt::Debug for CacheStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} → {:?}", CacheLayer { shared: Arc::clone(&self.shared) }, self.inner)
    }
}

/// Why a fill produced no entry for moka to keep.
#[derive(Debug)]
enum Fill {
    /// The store failed.
    Store(StoreError),
    /// A value that is not cached (a `load_node` miss without negative caching), with the
    /// epoch it was read at.
    Uncached(Entry),
}

/// The probe of [`Revalidation::HeadRevision`]: the head's fields with an empty active path
/// (no node has an empty id, so the path is always empty).
fn head_probe() -> SessionReadScope {
    SessionReadScope::ActivePath { leaf_node_id: Some(String::new()) }
}

/// What a failed write proves about the store.
fn outcome_of(error: &StoreError) -> Outcome {
    match error {
        StoreError::HeadRevisionConflict { .. } | StoreError::RuntimeTurnCommitConflict { .. } => {
            Outcome::MovedByAnother
        }
        error
            if error.proves_nothing_applied()
                || matches!(error.class(), ErrorClass::Outcome | ErrorClass::InvalidInput) =>
        {
            Outcome::AppliedNothing
        }
        _ => Outcome::MayHaveApplied,
    }
}

/// What a write may put in the cache once it succeeded alone.
enum Update {
    None,
    /// A commit, with the cached reads it may apply to.
    Commit(Box<CommitUpdate>),
    Meta(Arc<SessionMeta>),
}

struct CommitUpdate {
    commit: RuntimeCommit,
    full: Option<Entry>,
    path: Option<Entry>,
}

impl<S: Serve> CacheStore<S> {
    /// Whether `entry` may be served now as the answer to `item`.
    fn serves(&self, entry: &Entry, item: ItemRef<'_>) -> bool {
        self.scope.serves(&self.shared.epochs, entry.read_at(), item)
    }

    /// Reads from the store into an entry read at `read_at`.
    async fn load(
        &self,
        operation: Operation,
        item: ItemRef<'_>,
        request: Request<'_>,
        read_at: u64,
    ) -> Result<Entry, Fill> {
        self.shared.stats.record(operation, Event::Load, 1);
        let response = self.inner.serve(request).await.map_err(Fill::Store)?;
        let value = Value::read(item, response).map_err(Fill::Store)?;
        let negative = value.is_negative_node();
        let entry = Entry::new(read_at, Arc::clone(&self.scope), value, self.shared.min_weight);
        if negative && self.shared.config.negative_ttl.is_none() {
            Err(Fill::Uncached(entry))
        } else {
            Ok(entry)
        }
    }

    /// With [`Revalidation::HeadRevision`], whether a cached session read still has the
    /// store's head revision.
    async fn still_fresh(&self, entry: &Entry) -> Result<bool, StoreError> {
        let (Revalidation::HeadRevision, Value::Session(cached)) =
            (self.shared.config.revalidation, entry.value())
        else {
            return Ok(true);
        };
        let probe = self.inner.serve(Request::LoadSession { scope: head_probe() }).await?;
        let head = probe.into_session()?.map(|read| read.head_revision);
        let fresh = head == cached.as_ref().map(|read| read.head.head_revision);
        self.shared.stats.revalidated(fresh);
        Ok(fresh)
    }

    /// A valid entry: served, unless revalidation finds the store moved on.
    async fn hit_or_fill(
        &self,
        operation: Operation,
        entry: Entry,
        request: Request<'_>,
    ) -> Result<Response, StoreError> {
        if self.still_fresh(&entry).await? {
            self.shared.stats.record(operation, Event::Hit, 1);
            return Ok(entry.value().response());
        }
        self.fill(operation, request, true).await
    }

    /// A miss: one store read per key at a time (single flight), cached when it may be.
    /// `stale`: the key holds an entry that must not be served.
    async fn fill(
        &self,
        operation: Operation,
        request: Request<'_>,
        stale: bool,
    ) -> Result<Response, StoreError> {
        let shared = &*self.shared;
        shared.stats.record(operation, Event::Miss, 1);
        let Some(item) = ItemRef::of(&request) else { return self.inner.serve(request).await };
        if self.scope.is_retired() {
            return self.inner.serve(request).await;
        }
        let key = KeyRef { scope: self.scope.id, item }.to_key();
        if stale {
            // The single flight below would return it: drop it first.
            shared.cache.invalidate(&key).await;
        }
        let again = request.clone();
        let read_at = shared.epochs.now();
        let mut led = false;
        let filled = shared
            .cache
            .try_get_with(key.clone(), async {
                led = true;
                self.load(operation, key.item(), request, read_at).await
            })
            .await;
        let entry = match filled {
            Ok(entry) => entry,
            Err(failed) => match &*failed {
                Fill::Store(error) => return Err(error.clone()),
                Fill::Uncached(entry) => entry.clone(),
            },
        };
        // Our own read, or another caller's that no write overlapped since it started.
        if led || self.serves(&entry, key.item()) {
            return Ok(entry.value().response());
        }
        // Another caller's read began before a write this call must see: read again.
        match self.load(operation, key.item(), again, shared.epochs.now()).await {
            Ok(entry) => {
                shared.cache.insert(key, entry.clone()).await;
                Ok(entry.value().response())
            }
            Err(Fill::Uncached(entry)) => Ok(entry.value().response()),
            Err(Fill::Store(error)) => Err(error),
        }
    }

    /// A session read cached and valid now.
    async fn cached_session(&self, read: SessionReadScope) -> Option<Entry> {
        let key = KeyRef { scope: self.scope.id, item: ItemRef::Session(&read) };
        let entry = self.shared.cache.get(&key).await?;
        self.serves(&entry, ItemRef::Session(&read)).then_some(entry)
    }

    /// What a commit may update, known before it runs: the cached reads it may apply to.
    async fn commit_update(&self, commit: &RuntimeCommit) -> Update {
        let full = self.cached_session(SessionReadScope::FullGraph).await;
        let path = self.cached_session(SessionReadScope::ActivePath { leaf_node_id: None }).await;
        if full.is_none() && path.is_none() {
            return Update::None;
        }
        Update::Commit(Box::new(CommitUpdate { commit: commit.clone(), full, path }))
    }

    /// A write: served by the store, then the cache follows the operation's rule.
    async fn write(&self, rule: Rule, request: Request<'_>) -> Result<Response, StoreError> {
        let operation = request.operation();
        let shared = &*self.shared;
        let mut touches = Invalidation { classes: rule.classes(), stripes: Vec::new() };
        let stripes = |ids: &mut dyn Iterator<Item = &str>| -> Vec<usize> {
            ids.map(|id| shared.epochs.stripe(self.scope.id, id)).collect()
        };
        let mut update = Update::None;
        match (rule, &request) {
            (Rule::Commit, Request::CommitRuntimeState { commit }) => {
                match &commit.graph {
                    GraphCommitDelta::ReplaceFull(_) => touches.classes.nodes = true,
                    // Appended ids may be cached as misses.
                    GraphCommitDelta::Append { nodes, .. }
                        if shared.config.negative_ttl.is_some() =>
                    {
                        touches.stripes =
                            stripes(&mut nodes.iter().map(|node| node.node_id.as_str()));
                    }
                    _ => {}
                }
                update = self.commit_update(commit).await;
            }
            (Rule::SaveMeta, Request::SaveSessionMeta { meta }) => {
                update = Update::Meta(meta.clone());
            }
            (Rule::Tombstone, Request::TombstoneNodes { ids }) => {
                touches.stripes = stripes(&mut ids.iter().map(String::as_str));
            }
            _ => {}
        }
        let guard = self.scope.begin_write(&shared.epochs, touches);
        let result = self.inner.serve(request).await;
        let outcome = result.as_ref().err().map_or(Outcome::MayHaveApplied, outcome_of);
        let (ended, invalidated) = guard.finish(outcome);
        if !invalidated.is_empty() {
            shared.stats.record(operation, Event::Invalidation, 1);
        }
        if let (Ok(response), Some(alone)) = (&result, ended.alone)
            && !self.scope.is_retired()
        {
            self.write_through(operation, update, response, alone).await;
        }
        result
    }

    /// Inserts what a write that ran alone produced, tagged with its epoch.
    async fn write_through(
        &self,
        operation: Operation,
        update: Update,
        response: &Response,
        alone: Alone,
    ) {
        let shared = &*self.shared;
        let entry =
            |value| Entry::new(alone.epoch, Arc::clone(&self.scope), value, shared.min_weight);
        let mut inserts: Vec<(Key, Entry)> = Vec::new();
        let mut dropped: Option<Key> = None;
        match (update, response) {
            (Update::Commit(update), Response::Committed(result)) => {
                // A read older than the last invalidation before this commit is not its base.
                fn base(entry: &Option<Entry>, after: u64) -> Option<Option<&SessionRead>> {
                    let entry = entry.as_ref().filter(|entry| entry.read_at() >= after)?;
                    match entry.value() {
                        Value::Session(read) => Some(read.as_deref()),
                        _ => None,
                    }
                }
                let before = update::Before {
                    full: base(&update.full, alone.sessions_before),
                    path: base(&update.path, alone.sessions_before),
                };
                let after = update::after_commit(before, &update.commit, result);
                // The previous leaf's path entry (inserted by the previous commit) is dead now.
                let old_leaf = [&update.path, &update.full]
                    .into_iter()
                    .flatten()
                    .find_map(|entry| match entry.value() {
                        Value::Session(Some(read)) => read.head.graph.leaf_node_id.clone(),
                        _ => None,
                    })
                    .filter(|leaf| Some(leaf.as_str()) != update.commit.graph.leaf_node_id());
                dropped = old_leaf.map(|leaf| {
                    let by_leaf = SessionReadScope::ActivePath { leaf_node_id: Some(leaf) };
                    Key::session(self.scope.id, by_leaf)
                });
                if let Some(full) = after.full {
                    let key = Key::session(self.scope.id, SessionReadScope::FullGraph);
                    inserts.push((key, entry(Value::Session(Some(Box::new(full))))));
                }
                if let Some(path) = after.path {
                    let leaf = path.head.graph.leaf_node_id.clone();
                    let path = entry(Value::Session(Some(Box::new(path))));
                    if leaf.is_some() {
                        let by_leaf = SessionReadScope::ActivePath { leaf_node_id: leaf };
                        inserts.push((Key::session(self.scope.id, by_leaf), path.clone()));
                    }
                    let head = SessionReadScope::ActivePath { leaf_node_id: None };
                    inserts.push((Key::session(self.scope.id, head), path));
                }
            }
            (Update::Meta(meta), Response::Done) => {
                inserts.push((
                    Key::meta(self.scope.id),
                    entry(Value::Meta(Some(Arc::unwrap_or_clone(meta)))),
                ));
            }
            _ => {}
        }
        if let Some(key) = dropped {
            shared.cache.invalidate(&key).await;
        }
        let updated = inserts.len() as u64;
        for (key, entry) in inserts {
            shared.cache.insert(key, entry).await;
        }
        if updated > 0 {
            shared.stats.record(operation, Event::Update, updated);
        }
    }
}

/// Every call is served by its row of the rules table.
impl<S: Serve> Serve for CacheStore<S> {
    async fn serve(&self, request: Request<'_>) -> Result<Response, StoreError> {
        let operation = request.operation();
        match rule(operation) {
            // A hit is served inline, so that its future stays small (moka's lookup is most
            // of it); revalidation and fills are boxed.
            Rule::Cached => {
                let shared = &*self.shared;
                let mut stale = false;
                if let Some(item) = ItemRef::of(&request)
                    && !self.scope.is_retired()
                    && let Some(entry) =
                        shared.cache.get(&KeyRef { scope: self.scope.id, item }).await
                {
                    if !self.serves(&entry, item) {
                        stale = true;
                    } else if shared.config.revalidation == Revalidation::Off {
                        shared.stats.record(operation, Event::Hit, 1);
                        return Ok(entry.value().response());
                    } else {
                        return Box::pin(self.hit_or_fill(operation, entry, request)).await;
                    }
                }
                Box::pin(self.fill(operation, request, stale)).await
            }
            Rule::Bypass(_) => self.inner.serve(request).await,
            // Boxed: a write costs far more than an allocation, and reads stay small.
            rule => Box::pin(self.write(rule, request)).await,
        }
    }

    fn tier(&self) -> DurabilityTier {
        self.inner.tier()
    }
}
