//! [`Sweeper`]: removes the bytes and manifest rows of attachments whose turn never committed.
//!
//! # What it removes
//!
//! A manifest row still uncommitted after the grace period belongs to a put whose turn never
//! committed. The sweeper forgets every such row (of this crate's intent ids; rows written by
//! other tools are counted and left alone) and deletes the row's bytes **only if** no other put
//! still needs them: every [`AttachmentReference`] to that content must be *dead*, meaning
//!
//! - its row is one of the stale rows of this sweep, or
//! - its session is no longer listed by the factory (deleted), unless
//!   [`keep_unlisted_sessions`](Sweeper::keep_unlisted_sessions) says the factory does not see
//!   every session writing to the store.
//!
//! Any other reference keeps the bytes: a committed row (the contract's manifest lists only
//! uncommitted rows, so a committed row is known by its reference), a fresh intent, a put
//! that has just begun, or a session whose manifest could not be read (e.g. locked by another
//! process: reported in [`SweepReport::unreadable_sessions`], its rows left for a later sweep).
//!
//! # Steps, and why a put racing a sweep never loses its bytes
//!
//! 1. List the trash (left by an interrupted sweep), the sessions, and each session's
//!    uncommitted rows; rows at or before `now - grace` are stale.
//! 2. Candidates: the contents of stale rows, plus the trash. Read their references, then list
//!    the sessions again; candidates with only dead references are *free*, the others kept.
//!    (A dry run reports here and stops.)
//! 3. Move the free contents to the trash ([`AttachmentStore::delete`]).
//! 4. Read their references again, then list the sessions again. Purge those whose references
//!    are all dead; restore the others (and kept contents found in the trash).
//! 5. Remove the dead references (durably), then forget the stale rows.
//!
//! A scoped put of content `X` does: record its intent; add its reference; check whether `X`
//! is stored and write it if not. Suppose a sweep purges `X` in step 4 while the put skipped its
//! write because it found `X` stored. It found `X` before step 3 moved it away (after that, `X`
//! is stored only if written again). So the put's reference existed before step 3, hence before
//! step 4 read the references; its row is not stale (the put just recorded it) and its session
//! existed before step 4 listed the sessions (the put recorded an intent in it). So step 4 saw a
//! live reference and restored `X`, not purged it: a contradiction. If instead the put checked
//! after step 3, it wrote `X` itself, and purging touches only the trash. Readers never see `X`
//! go missing either: `get` also reads the trash.
//!
//! A reference is removed only once found dead, and a stale row is forgotten only after its
//! reference is durably gone, so a crash between leaves a stale row without a reference
//! (forgotten by the next sweep), never a reference that looks like a commit. Every
//! put has its own row ([`IntentId`]), so forgetting a stale row never erases
//! a concurrent put's intent. Crash at any point of a sweep leaves content in the trash (the
//! next sweep decides it again), references and rows to finish, or nothing.
//!
//! # Assumptions
//!
//! - The grace period exceeds the longest turn: from a put's intent to its commit. A row older
//!   than that is taken as never to be committed; a commit arriving later still succeeds, but
//!   its attachment may already be gone. Default: one hour.
//! - The factory lists every session writing to the attachment store (or use
//!   [`keep_unlisted_sessions`](Sweeper::keep_unlisted_sessions)).
//! - One sweep at a time per attachment store.
//!
//! Attachments of sessions deleted through the factory are not collected by this sweep (their
//! rows are gone with the session; only a full scan of the store could find them).
//!
//! # Progress
//!
//! Each sweep runs in an `attachment_sweep` span (`tracing`): one `info` event per step with
//! its counts, `debug` events per content deleted or restored, `warn` for unreadable sessions.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt, stream};
use strata_core::{
    AttachmentManifestEntry, RuntimePersistence, SessionStoreFactory, SharedClock, SystemClock,
};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::error::AttachmentError;
use crate::id::{AttachmentId, IntentId};
use crate::store::AttachmentStore;
use crate::types::AttachmentReference;

/// The grace period of a sweeper built with defaults.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(3600);
/// How many sessions (or contents) a sweep works on at once. The work is I/O (opening
/// session stores, listing directories, forgetting rows: one fsync each), and concurrent
/// fsyncs share the file system's journal commits.
const CONCURRENCY: usize = 32;

/// What a sweep did (or, dry run, would do).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// True when nothing was changed.
    pub dry_run: bool,
    /// Sessions whose manifest was read.
    pub sessions: usize,
    /// Sessions listed but not readable (session id, error): their rows are left alone and
    /// their references keep their contents.
    pub unreadable_sessions: Vec<(String, String)>,
    /// Uncommitted rows seen (stale or not).
    pub uncommitted_rows: usize,
    /// Stale rows forgotten (or that would be).
    pub forgotten_rows: Vec<AttachmentManifestEntry>,
    /// Stale rows whose id is not one of this crate's intent ids: left alone.
    pub foreign_rows: usize,
    /// Contents whose bytes were purged (or would be).
    pub deleted: Vec<AttachmentId>,
    /// Contents of stale rows (or of the trash) kept because a live reference holds them.
    pub kept: Vec<AttachmentId>,
    /// Contents moved to the trash and put back: a reference appeared meanwhile (a racing put)
    /// or an interrupted sweep had left them there.
    pub restored: Vec<AttachmentId>,
    /// Dead references removed (or that would be).
    pub references_removed: usize,
}

/// Collects orphaned attachments of every session of a factory (see the module docs).
#[derive(Clone)]
pub struct Sweeper {
    factory: Arc<dyn SessionStoreFactory>,
    store: Arc<dyn AttachmentStore>,
    clock: SharedClock,
    grace_period: Duration,
    dry_run: bool,
    keep_unlisted_sessions: bool,
}

impl std::fmt::Debug for Sweeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sweeper")
            .field("store", &self.store)
            .field("grace_period", &self.grace_period)
            .field("dry_run", &self.dry_run)
            .field("keep_unlisted_sessions", &self.keep_unlisted_sessions)
            .finish()
    }
}

/// The manifests as step 1 read them.
#[derive(Default)]
struct Scan {
    /// Handles of the sessions that have stale rows.
    handles: HashMap<String, Arc<dyn RuntimePersistence>>,
    /// Stale rows of this crate, by intent id.
    stale: BTreeMap<IntentId, AttachmentManifestEntry>,
    /// Sessions listed but not readable.
    unreadable: HashSet<String>,
}

impl Sweeper {
    /// A sweeper over the sessions of `factory` and the attachments of `store`: system clock,
    /// [`DEFAULT_GRACE_PERIOD`], not a dry run.
    pub fn new(factory: Arc<dyn SessionStoreFactory>, store: Arc<dyn AttachmentStore>) -> Self {
        Self {
            factory,
            store,
            clock: Arc::new(SystemClock),
            grace_period: DEFAULT_GRACE_PERIOD,
            dry_run: false,
            keep_unlisted_sessions: false,
        }
    }

    /// "Now" from `clock` (the clock intents are stamped with).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Rows uncommitted for longer than `grace_period` are stale.
    pub fn with_grace_period(mut self, grace_period: Duration) -> Self {
        self.grace_period = grace_period;
        self
    }

    /// Report what would be removed; change nothing.
    pub fn dry_run(mut self) -> Self {
        self.dry_run = true;
        self
    }

    /// Treat references of sessions the factory does not list as live (the store is shared
    /// with sessions of other factories) instead of deleted.
    pub fn keep_unlisted_sessions(mut self) -> Self {
        self.keep_unlisted_sessions = true;
        self
    }

    /// Runs one sweep.
    pub async fn sweep(&self) -> Result<SweepReport, AttachmentError> {
        let grace_ms = u64::try_from(self.grace_period.as_millis()).unwrap_or(u64::MAX);
        let span = info_span!("attachment_sweep", dry_run = self.dry_run, grace_ms);
        self.run(grace_ms).instrument(span).await
    }

    async fn run(&self, grace_ms: u64) -> Result<SweepReport, AttachmentError> {
        let cutoff = self.clock.now_ms().saturating_sub(grace_ms);
        let mut report = SweepReport { dry_run: self.dry_run, ..SweepReport::default() };
        let trashed: BTreeSet<AttachmentId> = self.store.trashed().await?.into_iter().collect();
        let scan = self.scan(cutoff, &mut report).await?;
        info!(
            sessions = report.sessions,
            unreadable = report.unreadable_sessions.len(),
            uncommitted = report.uncommitted_rows,
            stale = scan.stale.len(),
            trashed = trashed.len(),
            "manifests scanned"
        );

        let mut candidates: BTreeSet<AttachmentId> =
            scan.stale.keys().map(|intent| intent.attachment_id().clone()).collect();
        candidates.extend(trashed.iter().cloned());
        let first = self.references(&candidates).await?;
        let listed = self.listed_sessions().await?;
        let (free, kept) = self.partition(&first, &scan, &listed);
        info!(free = free.len(), kept = kept.len(), "candidates decided");
        report.kept = kept.clone();
        report.forgotten_rows = scan.stale.values().cloned().collect();
        let mut dead = self.dead_references(kept.iter(), &first, &scan, &listed);

        if self.dry_run {
            dead.extend(self.dead_references(free.iter(), &first, &scan, &listed));
            report.references_removed = dead.len();
            report.deleted = free;
            return Ok(report);
        }

        // Trashed ones too: a put may have stored them again since an interrupted sweep.
        self.store.delete(&free).await?;
        let second = self.references(&free.iter().cloned().collect()).await?;
        let listed = self.listed_sessions().await?;
        let (purge, racing) = self.partition(&second, &scan, &listed);
        dead.extend(self.dead_references(free.iter(), &second, &scan, &listed));
        report.deleted = self.store.purge(&purge).await?;
        let put_back: Vec<AttachmentId> = racing
            .into_iter()
            .chain(kept.iter().filter(|id| trashed.contains(*id)).cloned())
            .collect();
        report.restored = self.store.restore(&put_back).await?;
        for id in &report.deleted {
            debug!(attachment_id = %id, "attachment bytes deleted");
        }
        for id in &report.restored {
            debug!(attachment_id = %id, "attachment restored: a reference holds it");
        }
        info!(deleted = report.deleted.len(), restored = report.restored.len(), "bytes swept");

        self.store.remove_references(&dead).await?;
        report.references_removed = dead.len();
        self.forget(&scan).await?;
        info!(
            references = report.references_removed,
            rows = report.forgotten_rows.len(),
            "references removed, rows forgotten"
        );
        Ok(report)
    }

    /// Step 1: every listed session's uncommitted rows.
    async fn scan(&self, cutoff: u64, report: &mut SweepReport) -> Result<Scan, AttachmentError> {
        let sessions = self.factory.list_sessions().await?;
        // The stream's closures own what they use (no borrows of `self`), so the sweep's
        // future is `Send` and can be spawned.
        let factory = Arc::clone(&self.factory);
        let reads: Vec<_> = stream::iter(sessions)
            .map(move |session_id| {
                let factory = Arc::clone(&factory);
                async move {
                    let read = async {
                        let Some(store) = factory.open_existing_store(&session_id).await? else {
                            return Ok(None);
                        };
                        let rows = store.list_uncommitted(u64::MAX).await?;
                        Ok(Some((store, rows)))
                    }
                    .await;
                    (session_id, read)
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut scan = Scan::default();
        for (session_id, read) in reads {
            let (store, rows) = match read {
                Ok(Some(read)) => read,
                // Deleted since it was listed.
                Ok(None) => continue,
                Err(error) => {
                    let error: strata_core::StoreError = error;
                    warn!(%session_id, %error, "session manifest unreadable; its rows are left for a later sweep");
                    report.unreadable_sessions.push((session_id.clone(), error.to_string()));
                    scan.unreadable.insert(session_id);
                    continue;
                }
            };
            report.sessions += 1;
            report.uncommitted_rows += rows.len();
            for row in rows.into_iter().filter(|row| row.intent_at_epoch_ms <= cutoff) {
                match IntentId::parse(&row.attachment_id) {
                    Some(intent) if row.session_id == session_id => {
                        scan.handles
                            .entry(session_id.clone())
                            .or_insert_with(|| Arc::clone(&store));
                        scan.stale.insert(intent, row);
                    }
                    _ => report.foreign_rows += 1,
                }
            }
        }
        report.unreadable_sessions.sort();
        Ok(scan)
    }

    async fn listed_sessions(&self) -> Result<HashSet<String>, AttachmentError> {
        Ok(self.factory.list_sessions().await?.into_iter().collect())
    }

    /// The references of each of `ids`.
    async fn references(
        &self,
        ids: &BTreeSet<AttachmentId>,
    ) -> Result<BTreeMap<AttachmentId, Vec<AttachmentReference>>, AttachmentError> {
        let store = Arc::clone(&self.store);
        stream::iter(ids.iter().cloned())
            .map(move |id| {
                let store = Arc::clone(&store);
                async move { store.references(&id).await.map(|refs| (id, refs)) }
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await
    }

    /// Whether `reference` no longer holds its content (see the module docs).
    fn is_dead(
        &self,
        reference: &AttachmentReference,
        scan: &Scan,
        listed: &HashSet<String>,
    ) -> bool {
        let stale = scan
            .stale
            .get(&reference.intent_id)
            .is_some_and(|row| row.session_id == reference.session_id);
        let deleted = !self.keep_unlisted_sessions && !listed.contains(&reference.session_id);
        stale || deleted
    }

    /// Splits the contents of `references` into (every reference dead, some reference live).
    fn partition(
        &self,
        references: &BTreeMap<AttachmentId, Vec<AttachmentReference>>,
        scan: &Scan,
        listed: &HashSet<String>,
    ) -> (Vec<AttachmentId>, Vec<AttachmentId>) {
        let (free, kept): (Vec<_>, Vec<_>) = references.iter().partition(|(_, refs)| {
            refs.iter().all(|reference| self.is_dead(reference, scan, listed))
        });
        let ids =
            |part: Vec<(&AttachmentId, _)>| part.into_iter().map(|(id, _)| id.clone()).collect();
        (ids(free), ids(kept))
    }

    /// The dead references of `ids`.
    fn dead_references<'a>(
        &self,
        ids: impl Iterator<Item = &'a AttachmentId>,
        references: &BTreeMap<AttachmentId, Vec<AttachmentReference>>,
        scan: &Scan,
        listed: &HashSet<String>,
    ) -> Vec<AttachmentReference> {
        ids.filter_map(|id| references.get(id))
            .flatten()
            .filter(|reference| self.is_dead(reference, scan, listed))
            .cloned()
            .collect()
    }

    /// Step 5, last part: forgets every stale row (sessions in parallel).
    async fn forget(&self, scan: &Scan) -> Result<(), AttachmentError> {
        let mut by_session: HashMap<&str, Vec<String>> = HashMap::new();
        for (intent, row) in &scan.stale {
            by_session.entry(row.session_id.as_str()).or_default().push(intent.to_string());
        }
        let work: Vec<_> = by_session
            .into_iter()
            .map(|(session_id, intents)| (Arc::clone(&scan.handles[session_id]), intents))
            .collect();
        for batch in work.chunks(CONCURRENCY) {
            futures::future::try_join_all(batch.iter().cloned().map(forget_rows)).await?;
        }
        Ok(())
    }
}

/// Forgets the rows `intents` of one session's `store`, one after the other.
async fn forget_rows(
    (store, intents): (Arc<dyn RuntimePersistence>, Vec<String>),
) -> Result<(), AttachmentError> {
    for intent in intents {
        store.forget(&intent).await?;
    }
    Ok(())
}
