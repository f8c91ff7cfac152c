//! The cache layer (module docs written below, once the code settles).

mod entry;
mod rules;
mod scope;
mod stats;
mod update;

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use strata_core::{
    DurabilityTier, ErrorClass, GraphCommitDelta, Layer, Operation, PersistedSessionRead, Request,
    Response, RuntimeCommit, Serve, SessionMeta, SessionReadScope, StoreError,
};

use self::entry::{Entry, ItemRef, Key, KeyRef, NegativeExpiry, Value};
use self::rules::{Rule, rule};
use self::scope::{Alone, Class, Epochs, Invalidation, Outcome, Registry, Scope};
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
    cache: Cache<Key, Entry>,
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
            cache: builder.build(),
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
    Meta(Box<SessionMeta>),
}

struct CommitUpdate {
    commit: RuntimeCommit,
    full: Option<Entry>,
    path: Option<Entry>,
}

impl<S: Serve> CacheStore<S> {
    fn class_of(item: ItemRef<'_>) -> Class {
        match item {
            ItemRef::Session(_) => Class::Session,
            ItemRef::Node(_) => Class::Node,
            ItemRef::Meta => Class::Meta,
        }
    }

    fn stripe_of(&self, item: ItemRef<'_>) -> Option<usize> {
        match item {
            ItemRef::Node(id) => Some(self.shared.epochs.stripe(self.scope.id, id)),
            _ => None,
        }
    }

    /// Whether `entry` may be served now.
    fn serves(&self, entry: &Entry, class: Class, stripe: Option<usize>) -> bool {
        self.scope.serves(&self.shared.epochs, entry.read_at(), class, stripe)
    }

    /// Reads from the store into an entry read at `read_at`.
    async fn load(
        &self,
        operation: Operation,
        class: Class,
        request: Request<'_>,
        read_at: u64,
    ) -> Result<Entry, Fill> {
        self.shared.stats.record(operation, Event::Load, 1);
        let response = self.inner.serve(request).await.map_err(Fill::Store)?;
        let value = Value::read(class, response).map_err(Fill::Store)?;
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
        let fresh = head == cached.as_ref().map(|read| read.head_revision);
        self.shared.stats.revalidated(fresh);
        Ok(fresh)
    }

    /// A cached read: a valid entry, or one store read per key at a time (single flight).
    async fn read(&self, request: Request<'_>) -> Result<Response, StoreError> {
        let operation = request.operation();
        let shared = &*self.shared;
        let Some(item) = ItemRef::of(&request) else { return self.inner.serve(request).await };
        let (class, stripe) = (Self::class_of(item), self.stripe_of(item));
        if self.scope.is_retired() {
            shared.stats.record(operation, Event::Miss, 1);
            return self.inner.serve(request).await;
        }
        let key = KeyRef { scope: self.scope.id, item };
        if let Some(entry) = shared.cache.get(&key).await {
            if self.serves(&entry, class, stripe) && self.still_fresh(&entry).await? {
                shared.stats.record(operation, Event::Hit, 1);
                return Ok(entry.value().response());
            }
            // Stale: drop it so that the fill below replaces it.
            shared.cache.invalidate(&key).await;
        }
        shared.stats.record(operation, Event::Miss, 1);
        let key = key.to_key();
        let again = request.clone();
        let read_at = shared.epochs.now();
        let mut led = false;
        let filled = shared
            .cache
            .try_get_with(key.clone(), async {
                led = true;
                self.load(operation, class, request, read_at).await
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
        if led || self.serves(&entry, class, stripe) {
            return Ok(entry.value().response());
        }
        // Another caller's read began before a write this call must see: read again.
        match self.load(operation, class, again, shared.epochs.now()).await {
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
        self.serves(&entry, Class::Session, None).then_some(entry)
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
        match &request {
            Request::CommitRuntimeState { commit } => {
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
            Request::SaveSessionMeta { meta } => update = Update::Meta(meta.clone()),
            Request::TombstoneNodes { ids } => {
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
        if let (Ok(response), Some(alone)) = (&result, ended.alone) {
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
        match (update, response) {
            (Update::Commit(update), Response::Committed(result)) => {
                // A read older than the last invalidation before this commit is not its base.
                fn base(
                    entry: &Option<Entry>,
                    sessions_before: u64,
                ) -> Option<&Option<PersistedSessionRead>> {
                    match entry.as_ref()?.value() {
                        Value::Session(read) if entry.as_ref()?.read_at() >= sessions_before => {
                            Some(read)
                        }
                        _ => None,
                    }
                }
                let before = update::Before {
                    full: base(&update.full, alone.sessions_before),
                    path: base(&update.path, alone.sessions_before),
                };
                let after = update::after_commit(before, &update.commit, result);
                if let Some(full) = after.full {
                    let key = Key::session(self.scope.id, SessionReadScope::FullGraph);
                    inserts.push((key, entry(Value::Session(Some(full)))));
                }
                if let Some(path) = after.path {
                    let leaf = path.graph.leaf_node_id.clone();
                    let path = entry(Value::Session(Some(path)));
                    if leaf.is_some() {
                        let by_leaf = SessionReadScope::ActivePath { leaf_node_id: leaf };
                        inserts.push((Key::session(self.scope.id, by_leaf), path.clone()));
                    }
                    let head = SessionReadScope::ActivePath { leaf_node_id: None };
                    inserts.push((Key::session(self.scope.id, head), path));
                }
            }
            (Update::Meta(meta), Response::Done) => {
                inserts.push((Key::meta(self.scope.id), entry(Value::Meta(Some(*meta)))));
            }
            _ => {}
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
    fn serve<'a>(
        &'a self,
        request: Request<'a>,
    ) -> impl Future<Output = Result<Response, StoreError>> + Send + 'a {
        async move {
            match rule(request.operation()) {
                Rule::Cached => self.read(request).await,
                Rule::Bypass(_) => self.inner.serve(request).await,
                rule => self.write(rule, request).await,
            }
        }
    }

    fn tier(&self) -> DurabilityTier {
        self.inner.tier()
    }
}
