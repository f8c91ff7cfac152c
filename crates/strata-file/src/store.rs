//! [`FileStore`]: the `RuntimePersistence` implementation over one store directory, and the
//! process-wide registry that makes every handle of one directory share one engine.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

use strata_core::{
    DurabilityTier, Mutation, Request, Response, Serve, SessionReadScope, SessionState, StoreError,
};

use crate::bodies::{self, BodyFiles, NewBodies, Rewrite};
use crate::engine::{self, Engine, Image};
use crate::graph::{self, GraphSection};
use crate::ids::{validate_id, validate_ids};
use crate::options::FileStoreOptions;
use crate::stamps::{self, StampSection};

/// A snapshot's sections: the session graph ([`GraphSection`]), then the turn stamps
/// ([`StampSection`]), their bodies in body files ([`bodies`]); written by compaction and
/// opened lazily at open.
impl Image for SessionState {
    type Mutation = Mutation;
    type Sections = (GraphSection, StampSection);
    const SECTION_FILE_PREFIX: &'static str = bodies::BODIES_PREFIX;
    fn apply_mutation(&mut self, mutation: &Mutation) {
        self.apply(mutation);
    }
    fn seal_sections(
        &self,
        dir: &Path,
        generation: u64,
        full: bool,
        sync: bool,
    ) -> Result<Vec<u8>, StoreError> {
        let generation = u32::try_from(generation)
            .map_err(|_| StoreError::Backend("log generations exhausted".into()))?;
        let graph = self.stored_graph();
        let stamps = self.stored_stamps();
        let graph_base = graph.base.and_then(|base| base.as_any().downcast_ref::<GraphSection>());
        let stamp_base = stamps.base.and_then(|base| base.as_any().downcast_ref::<StampSection>());
        let mut in_use: Vec<u32> =
            graph_base.map(|base| base.body_files().to_vec()).unwrap_or_default();
        in_use.extend(stamp_base.into_iter().flat_map(|base| base.body_files().iter().copied()));
        in_use.sort_unstable();
        in_use.dedup();
        let files: Vec<(u32, u64)> = in_use
            .into_iter()
            .map(|file| (file, graph_base.and_then(|base| base.bodies().len_of(file)).unwrap_or(0)))
            .collect();
        let rewrite = Rewrite::choose(full, &files);
        let mut new = NewBodies::create(dir, generation, sync)?;
        let mut bytes = graph::encode(&graph, &mut new, &rewrite)?;
        bytes.extend_from_slice(&stamps::encode(&stamps, &mut new, &rewrite)?);
        new.finish(dir, sync)?;
        Ok(bytes)
    }
    fn open_sections(
        dir: &Path,
        file: &File,
        name: &str,
        offset: u64,
        file_len: u64,
    ) -> Result<(Self::Sections, u64), StoreError> {
        let bodies = Arc::new(BodyFiles::open(dir)?);
        let (graph, graph_len) = GraphSection::open(file, name, offset, file_len, bodies.clone())?;
        let (stamps, stamps_len) =
            StampSection::open(file, name, offset + graph_len, file_len, bodies)?;
        Ok(((graph, stamps), graph_len + stamps_len))
    }
    fn section_files((graph, stamps): &Self::Sections) -> Vec<String> {
        let mut files = graph.body_files().to_vec();
        files.extend(stamps.body_files());
        files.sort_unstable();
        files.dedup();
        files.into_iter().map(bodies::bodies_name).collect()
    }
    fn attach_sections(&mut self, (graph, stamps): Self::Sections) {
        self.rebase_graph(Arc::new(graph));
        self.rebase_stamps(Arc::new(stamps));
    }
}

type SessionEngine = Engine<SessionState>;

/// Engines open in this process, by canonical directory: a second `open` of the same
/// directory (from any factory or handle) shares the first one's engine instead of racing it
/// for the lock.
static OPEN_ENGINES: LazyLock<Mutex<HashMap<PathBuf, Weak<SessionEngine>>>> =
    LazyLock::new(Default::default);

fn registry() -> std::sync::MutexGuard<'static, HashMap<PathBuf, Weak<SessionEngine>>> {
    OPEN_ENGINES.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn canonical(dir: &Path) -> Result<PathBuf, StoreError> {
    dir.canonicalize().map_err(|error| StoreError::io(format!("resolve {}", dir.display()), error))
}

/// Runs blocking file work on tokio's blocking pool, so that no async worker waits on the
/// disk; outside a tokio runtime (nothing to stall) it runs inline. A panic in `work` is a
/// `Backend` error.
pub(crate) async fn offload<R: Send + 'static>(
    work: impl FnOnce() -> R + Send + 'static,
) -> Result<R, StoreError> {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => runtime
            .spawn_blocking(work)
            .await
            .map_err(|error| StoreError::Backend(format!("blocking file work failed: {error}"))),
        Err(_) => Ok(work()),
    }
}

/// A read that may need node bodies from the snapshot file, owned so that it can move to the
/// blocking pool.
enum FileRead {
    Node(String),
    Session(SessionReadScope),
}

impl FileRead {
    /// The owned form of `request`, for the reads that can touch the graph base.
    fn of(request: &Request<'_>) -> Option<Self> {
        match request {
            Request::LoadNode { node_id } => Some(Self::Node((*node_id).to_owned())),
            Request::LoadSession { scope } => Some(Self::Session(scope.clone())),
            _ => None,
        }
    }

    fn request(&self) -> Request<'_> {
        match self {
            Self::Node(node_id) => Request::LoadNode { node_id },
            Self::Session(scope) => Request::LoadSession { scope: scope.clone() },
        }
    }
}

/// Rejects ids of a write that would be persisted and could escape a directory.
fn validate_request(request: &Request<'_>) -> Result<(), StoreError> {
    match request {
        Request::CommitRuntimeState { commit } => {
            validate_id("session id", &commit.session_id)?;
            validate_ids("node id", commit.graph.nodes().iter().map(|node| &node.node_id))?;
            validate_ids("attachment id", &commit.committed_attachment_ids)
        }
        Request::RecordIntent { intent } => {
            validate_id("session id", &intent.session_id)?;
            validate_id("attachment id", &intent.attachment_id)
        }
        Request::EnqueueQueuedWork { draft } => validate_id("session id", &draft.session_id),
        _ => Ok(()),
    }
}

/// A durable store over one directory (see the crate docs for layout, format and
/// guarantees). Clones and every other handle opened on the same directory in this process
/// share one engine; another process gets [`StoreError::Locked`].
#[derive(Clone)]
pub struct FileStore {
    engine: Arc<SessionEngine>,
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileStore({})", self.engine.dir().display())
    }
}

impl FileStore {
    /// Opens (creating if needed) the store in `dir`. If this process already has the
    /// directory open, the new handle shares that engine (and its options: the first opener's
    /// win). Fails with [`StoreError::Locked`] when another process holds it, with
    /// [`StoreError::CorruptData`] or [`StoreError::UnsupportedRecordSchemaVersion`] when its
    /// files cannot be read. Blocking (it reads and replays files): from async code, open
    /// stores through a [`FileStoreFactory`](crate::FileStoreFactory), which does this on the
    /// blocking pool, or call it through `spawn_blocking`.
    pub fn open(dir: impl AsRef<Path>, options: FileStoreOptions) -> Result<Self, StoreError> {
        let dir = dir.as_ref();
        engine::ensure_dir(dir, options.sync.syncs())?;
        let key = canonical(dir)?;
        let mut open = registry();
        let previous = open.get(&key).cloned();
        if let Some(engine) = previous.as_ref().and_then(Weak::upgrade) {
            return Ok(Self { engine });
        }
        // A handle dropped on another thread may still be closing its lock file: when this
        // process had the directory open, give that close a moment before calling it locked.
        let mut attempts = if previous.is_some() { 100 } else { 1 };
        let engine = loop {
            attempts -= 1;
            match Engine::open(&key, options.clone()) {
                Err(StoreError::Locked { .. }) if attempts > 0 => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                result => break Arc::new(result?),
            }
        };
        open.retain(|_, weak| weak.strong_count() > 0);
        open.insert(key, Arc::downgrade(&engine));
        Ok(Self { engine })
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        self.engine.dir()
    }

    /// Folds the log into a fresh snapshot now, rewriting every node and stamp body into one
    /// new body file (so the space of removed data comes back; compaction is otherwise
    /// automatic and incremental, see the crate docs). Blocks the calling thread until the
    /// snapshot is durable: from async code, call it through `spawn_blocking`.
    pub fn compact(&self) -> Result<(), StoreError> {
        self.engine.compact()
    }

    /// Retires the open engine of `dir` in this process, if any: its handles fail from now on
    /// with `error`, and a later `open` starts afresh. True when there was one.
    pub(crate) fn retire(dir: &Path, error: StoreError) -> bool {
        let Ok(key) = dir.canonicalize() else { return false };
        let live = registry().remove(&key).and_then(|weak| weak.upgrade());
        live.map(|engine| engine.retire(error)).is_some()
    }

    fn now_ms(&self) -> u64 {
        self.engine.options().clock.now_ms()
    }

    /// Serves a read from the image in the caller's task when it needs memory only or the
    /// snapshot bodies it reads are in the page cache ([`bodies::from_page_cache`]), and on the
    /// blocking pool when a body must come from the disk. Answers once every write it observed
    /// is acknowledged.
    async fn read(&self, request: Request<'_>) -> Result<Response, StoreError> {
        let now_ms = self.now_ms();
        let (served, observed) = self.engine.read(|state| match FileRead::of(&request) {
            Some(read) if state.read_touches_base(&request) => {
                bodies::from_page_cache(|| state.read(&request, now_ms)).ok_or(read)
            }
            _ => Ok(state.read(&request, now_ms)),
        })?;
        let (answer, observed) = match served {
            Ok(answer) => (answer, observed),
            Err(read) => {
                let engine = self.engine.clone();
                offload(move || engine.read(|state| state.read(&read.request(), now_ms))).await??
            }
        };
        self.engine.acknowledged(observed).await?;
        answer
    }

    /// Plans, queues and applies under the image lock, then awaits the log writer's
    /// acknowledgement; returns the call's answer. A stamped commit whose stamp may be in the
    /// snapshot's stamp section (a retry of an older turn) is planned on the blocking pool,
    /// since its plan reads that stamp from the file.
    async fn write(&self, request: Request<'_>) -> Result<Response, StoreError> {
        validate_request(&request)?;
        let now_ms = self.now_ms();
        let plan = move |state: &SessionState, request: &Request<'_>| {
            let planned = state.plan(request, now_ms)?;
            Ok((planned.mutation, planned.output))
        };
        let submitted = self.engine.submit_unless(
            |state| state.plan_touches_base(&request),
            |state| plan(state, &request),
        )?;
        let (answer, seq) = match (submitted, request) {
            (Some(submitted), _) => submitted,
            (None, Request::CommitRuntimeState { commit }) => {
                let engine = self.engine.clone();
                offload(move || {
                    let request = Request::CommitRuntimeState { commit };
                    engine.submit(|state| plan(state, &request))
                })
                .await??
            }
            (None, request) => self.engine.submit(|state| plan(state, &request))?,
        };
        self.engine.acknowledged(seq).await?;
        Ok(answer)
    }

    /// A write that removed data, followed by a compaction so the space is reclaimed on disk.
    async fn write_then_reclaim(
        &self,
        request: Request<'_>,
        removed: impl FnOnce(&Response) -> bool,
    ) -> Result<Response, StoreError> {
        let response = self.write(request).await?;
        if removed(&response) {
            self.engine.compact_async().await?;
        }
        Ok(response)
    }
}

/// Every call does its work when its future is polled, never when it is created. Reads come
/// from the in-memory image (node bodies of the snapshot from the page cache, or on the
/// blocking pool when the disk must be read); writes are
/// planned and applied in the caller's task and made durable by the log writer thread, which
/// the caller awaits; `vacuum` and `gc_unreachable` compact afterwards when they removed
/// something, so the space comes back on disk. See the crate docs for cancellation.
impl Serve for FileStore {
    async fn serve(&self, request: Request<'_>) -> Result<Response, StoreError> {
        match request {
            Request::Vacuum => {
                self.write_then_reclaim(Request::Vacuum, |response| {
                    matches!(response, Response::Vacuumed(report) if report.removed_node_count > 0)
                })
                .await
            }
            Request::GcUnreachable => {
                self.write_then_reclaim(Request::GcUnreachable, |response| {
                    matches!(response, Response::Collected(report) if report.deleted_blob_count > 0)
                })
                .await
            }
            request if request.class().is_read() => self.read(request).await,
            request => self.write(request).await,
        }
    }

    fn tier(&self) -> DurabilityTier {
        self.engine.options().sync.tier()
    }
}
