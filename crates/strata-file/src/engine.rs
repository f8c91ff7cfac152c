//! The durability engine: an image (in memory, but for the sections of the last snapshot it
//! reads lazily) made durable by a checksummed log of mutations written by a log writer
//! thread with group-committed `fdatasync`, snapshots made by crash-safe background
//! compaction, recovery at open, and the process lock.
//!
//! Generic over the [`Image`] (the store uses `strata_core::state::SessionState`), so the
//! engine knows nothing of sessions: it plans under a lock, queues the record, applies, and
//! acknowledges only durable effects.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use strata_core::StoreError;
use tokio::sync::{oneshot, watch};

use crate::format::{self, FILE_HEADER_LEN, FileKind};
use crate::options::FileStoreOptions;

/// A state the engine makes durable: serializable (snapshots), with serializable mutations
/// (log records) applied infallibly and deterministically.
///
/// A snapshot holds **sections** (bytes the image encodes itself and reads back lazily: the
/// session graph and the turn stamps, whose bodies may live in further files of the
/// directory, the **section files**) followed by one record holding the image's serde form.
pub trait Image: Serialize + DeserializeOwned + Default + Send + 'static {
    /// One logged change.
    type Mutation: Serialize + DeserializeOwned;
    /// A snapshot's sections, opened.
    type Sections;
    /// Name prefix of the section files in a store directory.
    const SECTION_FILE_PREFIX: &'static str;
    /// Applies `mutation`; must be deterministic and infallible (replay relies on it).
    fn apply_mutation(&mut self, mutation: &Self::Mutation);
    /// Encodes the sections of the snapshot of `generation` (what the serde form leaves
    /// out), written right after the file header; first writes the section files they add to
    /// `dir`, durable (with `sync`) before this returns. `full` asks for a rewrite of every
    /// body into new files (reclaiming the space of removed data).
    fn seal_sections(
        &self,
        dir: &Path,
        generation: u64,
        full: bool,
        sync: bool,
    ) -> Result<Vec<u8>, StoreError>;
    /// Opens the sections at `offset` of the snapshot `file` (named `name`, `file_len` bytes
    /// long) in `dir`: the sections and their length.
    fn open_sections(
        dir: &Path,
        file: &File,
        name: &str,
        offset: u64,
        file_len: u64,
    ) -> Result<(Self::Sections, u64), StoreError>;
    /// The names of the section files `sections` use.
    fn section_files(sections: &Self::Sections) -> Vec<String>;
    /// Puts opened sections back under the image decoded from the snapshot's record.
    fn attach_sections(&mut self, sections: Self::Sections);
}

/// Name of the lock file inside a store directory.
pub const LOCK_FILE: &str = "LOCK";
/// Name of the snapshot file inside a store directory.
pub const SNAPSHOT_FILE: &str = "snapshot";
/// Prefix of log segment files (`log.<generation>`, decimal).
pub const LOG_PREFIX: &str = "log.";
/// Suffix of the temporary file of an atomic write (never part of the store).
pub(crate) const TMP_SUFFIX: &str = ".tmp";

/// What a plan returns: the mutation to log (none for a no-op) and the caller's answer.
pub type Plan<M, O> = (Option<M>, O);

/// The durable image of one store directory, shared by every handle of that store.
///
/// Callers plan and apply under the image lock (CPU only, no I/O) and queue the encoded
/// record for the store's **log writer**, a thread of its own that appends, `fdatasync`s and
/// acknowledges records in order (group commit: everything queued while it syncs shares the
/// next sync). Callers await the acknowledgement asynchronously. Dropping the engine stops
/// the writer once it has written everything queued.
pub struct Engine<S: Image> {
    shared: Arc<Shared<S>>,
    jobs: Option<mpsc::Sender<Job>>,
    writer: Option<JoinHandle<()>>,
}

/// What the handles and the log writer share.
struct Shared<S> {
    dir: PathBuf,
    options: FileStoreOptions,
    image: Mutex<ImageState<S>>,
    /// Mirror of `progress.acknowledged`, so that a caller with nothing pending takes no lock.
    acknowledged: AtomicU64,
    progress: watch::Sender<Progress>,
}

struct ImageState<S> {
    state: S,
    /// Sequence number of the last record queued for the log (records count from 1).
    queued: u64,
    poisoned: Option<StoreError>,
}

/// How far the log writer got.
#[derive(Clone, Debug, Default)]
struct Progress {
    /// Every record up to this sequence number is written (and, with `SyncPolicy::Always`,
    /// `fdatasync`ed).
    acknowledged: u64,
    /// Why the writer stopped acknowledging, if it did.
    failed: Option<String>,
}

/// A compaction's caller, told the outcome.
type Reply = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// Work for the log writer.
enum Job {
    /// Write record `seq` (a complete frame) at the end of the log.
    Append { seq: u64, frame: Vec<u8> },
    /// Fold the log into a new snapshot, then reply.
    Compact(Reply),
}

/// The state of the spare segment: the next segment, created, preallocated and made durable
/// ahead of the rotation that will switch to it, so that a rotation (and the log's growth up to
/// the compaction threshold) never waits for a file creation or a journal commit on the log
/// writer's path.
enum Spare {
    /// Not created yet.
    Missing,
    /// Being created by a thread of its own.
    Preparing(JoinHandle<Result<(), StoreError>>),
    /// Created and durable.
    Ready,
    /// Its creation failed: the rotation creates the segment itself (and reports a failure).
    Failed,
}

/// The log writer: owns the live log segment and the process lock, writes queued records in
/// order, syncs them in groups, acknowledges them, and compacts.
struct LogWriter<S> {
    shared: Arc<Shared<S>>,
    jobs: mpsc::Receiver<Job>,
    log: File,
    log_gen: u64,
    log_len: u64,
    /// Physical length of the log file: `log_len` plus preallocated zeros.
    log_alloc: u64,
    /// The segment after the live one, `log.<log_gen + 1>`.
    spare: Spare,
    /// Sequence number of the last record written to the log.
    written: u64,
    /// Compactions asked for and not yet started.
    replies: Vec<Reply>,
    /// The compaction running in the background, if any: it rebuilds the image of the sealed
    /// segments, writes the snapshot, and returns the image opened on it.
    compaction: Option<JoinHandle<Result<(S, u64), StoreError>>>,
    /// The length of the snapshot the live image stands on (0 without one): it sets the
    /// compaction threshold (see [`compaction_threshold`]).
    snapshot_len: u64,
    /// While a compaction runs: the records written since its rotation and not yet replayed
    /// onto the image it rebuilds (its thread replays most of them, the installation the
    /// rest).
    since_rotation: Option<Arc<Mutex<Vec<Vec<u8>>>>>,
    /// Why a write or sync failed, once one did: nothing more is written.
    failure: Option<String>,
    _lock: File,
}

#[derive(Serialize)]
struct SnapshotOut<'a, S> {
    first_log_gen: u64,
    state: &'a S,
}

/// A snapshot's closing record, decoded.
#[derive(Deserialize)]
pub(crate) struct SnapshotIn<S> {
    /// The first log segment the snapshot does not hold.
    pub(crate) first_log_gen: u64,
    /// The image, without its sections.
    pub(crate) state: S,
}

fn io(context: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> StoreError {
    move |error| StoreError::io(context, error)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn writer_gone() -> StoreError {
    StoreError::Unavailable("the store's log writer has stopped; reopen".into())
}

/// `fsync`s the directory `dir` so that entries created, renamed or removed in it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(io(format_args!("fsync directory {}", dir.display())))
}

/// Creates `dir` (and missing parents); with `sync`, fsyncs the parent of every level created.
pub fn ensure_dir(dir: &Path, sync: bool) -> Result<(), StoreError> {
    let missing: Vec<&Path> = dir.ancestors().take_while(|level| !level.exists()).collect();
    fs::create_dir_all(dir).map_err(io(format_args!("create {}", dir.display())))?;
    if sync {
        for level in missing.iter().rev() {
            if let Some(parent) = level.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
        }
    }
    Ok(())
}

/// True when `dir` holds a store (a log segment or a snapshot).
pub fn store_exists(dir: &Path) -> bool {
    dir.join(SNAPSHOT_FILE).exists() || list_logs(dir).is_ok_and(|logs| !logs.is_empty())
}

/// The log generations present in `dir`, ascending (temporary files excluded).
pub(crate) fn list_logs(dir: &Path) -> Result<Vec<u64>, StoreError> {
    let mut gens = Vec::new();
    for entry in fs::read_dir(dir).map_err(io(format_args!("list {}", dir.display())))? {
        let entry = entry.map_err(io(format_args!("list {}", dir.display())))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(gen_text) = name.strip_prefix(LOG_PREFIX)
            && let Ok(generation) = gen_text.parse::<u64>()
        {
            gens.push(generation);
        }
    }
    gens.sort_unstable();
    Ok(gens)
}

/// Removes temporary files of an interrupted atomic write (never renamed into place, so never
/// part of the store).
fn remove_leftover_tmp_files(dir: &Path) -> Result<(), StoreError> {
    for entry in fs::read_dir(dir).map_err(io(format_args!("list {}", dir.display())))? {
        let path = entry.map_err(io(format_args!("list {}", dir.display())))?.path();
        if path.extension().is_some_and(|ext| ext == &TMP_SUFFIX[1..]) {
            fs::remove_file(&path).map_err(io(format_args!("remove {}", path.display())))?;
        }
    }
    Ok(())
}

/// Creates log segment `generation` in `dir` atomically (temporary file, fsync, rename,
/// directory fsync): its header followed by `preallocate` zero bytes.
fn create_segment(
    dir: &Path,
    generation: u64,
    preallocate: u64,
    sync: bool,
) -> Result<(), StoreError> {
    let zeros = vec![0u8; preallocate as usize];
    write_atomically(
        dir,
        &log_name(generation),
        &[&format::file_header(FileKind::Log), &zeros],
        sync,
    )
}

/// The name of log segment `generation`.
pub(crate) fn log_name(generation: u64) -> String {
    format!("{LOG_PREFIX}{generation}")
}

/// A large file written in the background (a snapshot, a body file) is `fdatasync`ed after
/// every this many bytes, so that it never leaves much dirty data behind: on ext4 (ordered
/// data) a journal commit waits for such data, and the log writer's syncs would otherwise
/// wait for a compaction's whole file.
pub const SYNC_CHUNK_BYTES: usize = 1 << 20;

/// Writes `parts` (concatenated) to `dir/name` atomically: a temporary file, fsynced, renamed
/// into place, and the directory fsynced (the fsyncs only with `sync`).
fn write_atomically(dir: &Path, name: &str, parts: &[&[u8]], sync: bool) -> Result<(), StoreError> {
    let tmp = dir.join(format!("{name}{TMP_SUFFIX}"));
    let target = dir.join(name);
    let mut file = File::create(&tmp).map_err(io(format_args!("create {}", tmp.display())))?;
    let mut unsynced = 0;
    for chunk in parts.iter().flat_map(|part| part.chunks(SYNC_CHUNK_BYTES)) {
        file.write_all(chunk).map_err(io(format_args!("write {}", tmp.display())))?;
        unsynced += chunk.len();
        if sync && unsynced >= SYNC_CHUNK_BYTES {
            file.sync_data().map_err(io(format_args!("fdatasync {}", tmp.display())))?;
            unsynced = 0;
        }
    }
    if sync {
        file.sync_all().map_err(io(format_args!("fsync {}", tmp.display())))?;
    }
    drop(file);
    fs::rename(&tmp, &target).map_err(io(format_args!("rename to {}", target.display())))?;
    if sync {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Reads the snapshot at `path`: the image decoded from its record, its section (opened, not
/// read), and the file's length. Reads the header, the section's index and the record; no
/// node body.
pub(crate) fn read_snapshot<S: Image>(
    dir: &Path,
) -> Result<(SnapshotIn<S>, S::Sections, u64), StoreError> {
    let name = SNAPSHOT_FILE;
    let path = &dir.join(SNAPSHOT_FILE);
    let file = File::open(path).map_err(io(format_args!("open {}", path.display())))?;
    let len = file.metadata().map_err(io(format_args!("stat {}", path.display())))?.len();
    let header = format::read_at(&file, name, 0, FILE_HEADER_LEN.min(len as usize))?;
    format::check_file_header(name, &header, FileKind::Snapshot)?;
    let (section, section_len) = S::open_sections(dir, &file, name, FILE_HEADER_LEN as u64, len)?;
    let record_offset = FILE_HEADER_LEN as u64 + section_len;
    let rest = format::read_at(&file, name, record_offset, (len - record_offset) as usize)?;
    let payload = format::read_snapshot_record(name, record_offset, &rest)?;
    let image = format::decode(name, record_offset, payload)?;
    Ok((image, section, len))
}

fn open_for_writing(path: &Path) -> Result<File, StoreError> {
    OpenOptions::new().write(true).open(path).map_err(io(format_args!("open {}", path.display())))
}

/// How far the log is extended with zeros at a time. Records are then written over blocks
/// that are already allocated, so `fdatasync` flushes data without a journal commit for a
/// changed file size on every write (the cost that makes plain appends slow).
const PREALLOCATE_BYTES: u64 = 1 << 20;

/// Takes the exclusive process lock of `dir` (held while the returned file is open).
pub fn take_lock(dir: &Path) -> Result<File, StoreError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io(format_args!("open {}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => {
            Err(StoreError::Locked { path: dir.display().to_string() })
        }
        Err(TryLockError::Error(error)) => {
            Err(StoreError::io(format!("lock {}", path.display()), error))
        }
    }
}

/// What [`recover`] found: the image and where the log chain ends.
pub(crate) struct Recovered<S> {
    pub(crate) state: S,
    /// The first segment of the chain (named by the snapshot); older ones are stale.
    pub(crate) first_gen: u64,
    /// The snapshot file's length (0 without one).
    pub(crate) snapshot_len: u64,
    /// The section files the snapshot uses; others are leftovers.
    pub(crate) section_files: Vec<String>,
    /// The live segment: the last one of the chain holding a record (or a torn tail), or
    /// the chain's first when none does (`None` only for a directory holding nothing).
    pub(crate) live_gen: Option<u64>,
    /// The segments after the live one: empty **spares**, prepared ahead of a rotation (see
    /// [`LogWriter::rotate`]).
    pub(crate) spares: Vec<u64>,
    /// End of the live segment's valid records.
    pub(crate) log_len: u64,
    /// The live segment's file length.
    pub(crate) log_alloc: u64,
    /// True when the live segment ends in a torn tail (bytes after `log_len` to discard).
    pub(crate) torn: bool,
}

/// Loads the snapshot of `dir` (if any) and replays its log chain (the segments up to
/// `through`, when given) into an image. Reads only: an open then discards a torn tail, and
/// removes stale segments and temporary files; a background compaction rebuilds the image of
/// the sealed segments this way, without touching the live one; and [`crate::inspect`]
/// views a store this way, without its lock.
pub(crate) fn recover<S: Image>(
    dir: &Path,
    through: Option<u64>,
) -> Result<Recovered<S>, StoreError> {
    let mut state = S::default();
    let mut first_gen = 0;
    let mut snapshot_len = 0;
    let snapshot_path = dir.join(SNAPSHOT_FILE);
    let has_snapshot = snapshot_path.exists();
    let mut section_files = Vec::new();
    if has_snapshot {
        let (image, sections, len) = read_snapshot::<S>(dir)?;
        snapshot_len = len;
        section_files = S::section_files(&sections);
        state = image.state;
        state.attach_sections(sections);
        first_gen = image.first_log_gen;
    }
    let gens = list_logs(dir)?;
    let chain: Vec<u64> = gens
        .iter()
        .copied()
        .filter(|&g| g >= first_gen && through.is_none_or(|last| g <= last))
        .collect();
    for (index, &generation) in chain.iter().enumerate() {
        if generation != first_gen + index as u64 {
            let name = log_name(generation);
            return Err(format::corrupt(&name, 0, "log segment out of sequence"));
        }
    }
    if chain.is_empty() && has_snapshot {
        let name = log_name(first_gen);
        return Err(format::corrupt(&name, 0, "log segment named by the snapshot is missing"));
    }
    let mut recovered = Recovered {
        state,
        first_gen,
        snapshot_len,
        section_files,
        live_gen: chain.first().copied(),
        spares: Vec::new(),
        log_len: 0,
        log_alloc: 0,
        torn: false,
    };
    // Records are only ever appended to the live segment, so only it may end in a torn tail
    // (an interrupted append), and every segment after it is an empty spare. One buffer serves
    // every segment (their records are applied before the next is read).
    let mut bytes = Vec::new();
    for &generation in &chain {
        let name = log_name(generation);
        let path = dir.join(&name);
        bytes.clear();
        File::open(&path)
            .and_then(|mut file| file.read_to_end(&mut bytes))
            .map_err(io(format_args!("read {}", path.display())))?;
        let scan = format::scan_log(&name, &bytes)?;
        let torn = !scan.zero_tail;
        if scan.records.is_empty() && !torn {
            if recovered.live_gen != Some(generation) {
                recovered.spares.push(generation);
            }
            if generation == first_gen {
                recovered.log_len = scan.valid_end;
                recovered.log_alloc = bytes.len() as u64;
            }
            continue;
        }
        if recovered.torn {
            let damaged = log_name(recovered.live_gen.unwrap_or(first_gen));
            let detail = "damaged record in a sealed log segment";
            return Err(format::corrupt(&damaged, recovered.log_len, detail));
        }
        // Empty segments before this one were sealed empty (a rotation with nothing written).
        recovered.spares.clear();
        for &(offset, payload) in &scan.records {
            let mutation: S::Mutation = format::decode(&name, offset, payload)?;
            recovered.state.apply_mutation(&mutation);
        }
        recovered.live_gen = Some(generation);
        recovered.torn = torn;
        recovered.log_len = scan.valid_end;
        recovered.log_alloc = bytes.len() as u64;
    }
    Ok(recovered)
}

impl<S: Image> Engine<S> {
    /// Opens (creating if needed) the store in `dir`: takes the process lock, loads the
    /// snapshot, replays the log chain, discards a torn tail, removes leftovers of an
    /// interrupted compaction, and starts the log writer. Blocking: call it off the async
    /// workers.
    pub fn open(dir: &Path, options: FileStoreOptions) -> Result<Self, StoreError> {
        let sync = options.sync.syncs();
        ensure_dir(dir, sync)?;
        let lock_file = take_lock(dir)?;
        if !store_exists(dir) {
            create_segment(dir, 0, 0, sync)?;
        }
        let Recovered {
            state,
            first_gen,
            snapshot_len,
            section_files,
            live_gen,
            spares,
            log_len,
            log_alloc,
            torn,
        } = recover::<S>(dir, None)?;
        remove_unused_section_files::<S>(dir, &section_files)?;
        let Some(live_gen) = live_gen else {
            return Err(format::corrupt(&log_name(0), 0, "no log segment"));
        };
        // One spare is kept for the next rotation; it may be a rename a crash left unsynced,
        // so the directory is synced before records go into it. Further spares are removed.
        let spare = spares.first().copied();
        for extra in spares.iter().skip(1) {
            let path = dir.join(log_name(*extra));
            fs::remove_file(&path).map_err(io(format_args!("remove {}", path.display())))?;
        }
        if sync && !spares.is_empty() {
            sync_dir(dir)?;
        }
        for stale in list_logs(dir)?.into_iter().filter(|&g| g < first_gen) {
            let path = dir.join(log_name(stale));
            fs::remove_file(&path).map_err(io(format_args!("remove {}", path.display())))?;
        }
        if torn {
            let path = dir.join(log_name(live_gen));
            let file = open_for_writing(&path)?;
            file.set_len(log_len)
                .and_then(|()| if sync { file.sync_all() } else { Ok(()) })
                .map_err(io(format_args!("truncate torn tail of {}", path.display())))?;
        }
        let log_alloc = if torn { log_len } else { log_alloc };
        remove_leftover_tmp_files(dir)?;
        let log = open_for_writing(&dir.join(log_name(live_gen)))?;
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            options,
            image: Mutex::new(ImageState { state, queued: 0, poisoned: None }),
            acknowledged: AtomicU64::new(0),
            progress: watch::Sender::new(Progress::default()),
        });
        let (jobs, receiver) = mpsc::channel();
        let writer = LogWriter {
            shared: shared.clone(),
            jobs: receiver,
            log,
            log_gen: live_gen,
            log_len,
            log_alloc,
            spare: if spare.is_some() { Spare::Ready } else { Spare::Missing },
            written: 0,
            replies: Vec::new(),
            compaction: None,
            snapshot_len,
            since_rotation: None,
            failure: None,
            _lock: lock_file,
        };
        let writer = std::thread::Builder::new()
            .name("strata-file-log".into())
            .spawn(move || writer.run())
            .map_err(io("start the log writer thread"))?;
        Ok(Self { shared, jobs: Some(jobs), writer: Some(writer) })
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The options the engine was opened with.
    pub fn options(&self) -> &FileStoreOptions {
        &self.shared.options
    }

    fn send(&self, job: Job) -> Result<(), StoreError> {
        let jobs = self.jobs.as_ref().ok_or_else(writer_gone)?;
        jobs.send(job).map_err(|_| writer_gone())
    }

    /// Runs `read` over the image. Returns its answer and the sequence number of the last
    /// record it may have observed: pass it to [`Self::acknowledged`] before answering, so
    /// that a read never returns state a crash could take back.
    pub fn read<R>(&self, read: impl FnOnce(&S) -> R) -> Result<(R, u64), StoreError> {
        let image = lock(&self.shared.image);
        if let Some(error) = &image.poisoned {
            return Err(error.clone());
        }
        Ok((read(&image.state), image.queued))
    }

    /// Plans a write over the image and, when it changes something, encodes its mutation,
    /// queues the record for the log writer and applies it to the image, all under the image
    /// lock (CPU work only). Returns the answer and the sequence number to pass to
    /// [`Self::acknowledged`]: the write is durable once that resolves. A plan error or an
    /// oversize record changes nothing.
    pub fn submit<O>(
        &self,
        plan: impl FnOnce(&S) -> Result<Plan<S::Mutation, O>, StoreError>,
    ) -> Result<(O, u64), StoreError> {
        self.submit_unless(|_| false, plan).map(|submitted| submitted.expect("never deferred"))
    }

    /// [`Self::submit`], unless `defer` says (under the same lock, before planning) that the
    /// plan would read storage: then nothing is planned and `None` returned, for the caller
    /// to submit it from a thread that may block.
    pub fn submit_unless<O>(
        &self,
        defer: impl FnOnce(&S) -> bool,
        plan: impl FnOnce(&S) -> Result<Plan<S::Mutation, O>, StoreError>,
    ) -> Result<Option<(O, u64)>, StoreError> {
        let mut image = lock(&self.shared.image);
        if let Some(error) = &image.poisoned {
            return Err(error.clone());
        }
        if defer(&image.state) {
            return Ok(None);
        }
        let (mutation, answer) = plan(&image.state)?;
        let Some(mutation) = mutation else {
            // A no-op may answer from state not yet durable (a stamped retry of a commit
            // still being synced): wait for everything queued.
            return Ok(Some((answer, image.queued)));
        };
        let frame = self.frame(&mutation)?;
        let seq = image.queued + 1;
        self.send(Job::Append { seq, frame })?;
        image.queued = seq;
        image.state.apply_mutation(&mutation);
        Ok(Some((answer, seq)))
    }

    /// One log frame holding `mutation`, or `InvalidInput` when it exceeds the record limit.
    fn frame(&self, mutation: &S::Mutation) -> Result<Vec<u8>, StoreError> {
        let payload = format::encode(mutation)?;
        let limit = self.shared.options.max_record_bytes;
        if payload.len() as u64 > limit {
            return Err(StoreError::InvalidInput(format!(
                "write of {} bytes exceeds the limit max_record_bytes = {limit}",
                payload.len()
            )));
        }
        let mut frame = Vec::with_capacity(payload.len() + format::FRAME_HEADER_LEN);
        format::push_frame(&mut frame, &payload);
        Ok(frame)
    }

    /// Resolves once record `seq` is acknowledged by the log writer (written, and with
    /// `SyncPolicy::Always` `fdatasync`ed), or fails when the writer failed before it. Never
    /// blocks a thread; dropping the future stops the waiting, not the write.
    pub async fn acknowledged(&self, seq: u64) -> Result<(), StoreError> {
        if self.shared.acknowledged.load(Ordering::Acquire) >= seq {
            return Ok(());
        }
        let mut progress = self.shared.progress.subscribe();
        let progress = progress
            .wait_for(|progress| progress.acknowledged >= seq || progress.failed.is_some())
            .await
            .map_err(|_| writer_gone())?;
        match &progress.failed {
            Some(reason) if progress.acknowledged < seq => {
                Err(StoreError::Unavailable(reason.clone()))
            }
            _ => Ok(()),
        }
    }

    /// Makes every later call on this engine fail with `error` (used when the store's
    /// directory is deleted under live handles).
    pub fn retire(&self, error: StoreError) {
        lock(&self.shared.image).poisoned = Some(error);
    }

    /// Asks the log writer to fold the log into a new snapshot; `reply` is called with the
    /// outcome, on the writer's thread.
    fn request_compaction(&self, reply: Reply) -> Result<(), StoreError> {
        self.send(Job::Compact(reply))
    }

    /// Folds the log into a new snapshot and starts a new log segment (crash-safe at every
    /// step; see the crate docs), blocking the calling thread until it is done.
    pub fn compact(&self) -> Result<(), StoreError> {
        let (done, outcome) = mpsc::channel();
        self.request_compaction(Box::new(move |result| {
            let _ = done.send(result);
        }))?;
        outcome.recv().map_err(|_| writer_gone())?
    }

    /// [`Self::compact`], awaited instead of blocking.
    pub async fn compact_async(&self) -> Result<(), StoreError> {
        let (done, outcome) = oneshot::channel();
        self.request_compaction(Box::new(move |result| {
            let _ = done.send(result);
        }))?;
        outcome.await.map_err(|_| writer_gone())?
    }
}

/// Closes the job queue and waits for the log writer to finish what was queued (normally
/// nothing: every caller awaits its write; a compaction in progress completes first), so
/// that the lock is released when the last handle is dropped.
impl<S: Image> Drop for Engine<S> {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl<S: Image> LogWriter<S> {
    /// Serves jobs until every engine handle is gone: takes whatever is queued, writes it,
    /// syncs once for all of it (group commit), acknowledges; starts a compaction when asked
    /// or when the live segment has grown past the threshold, and installs its result when it
    /// is done.
    fn run(mut self) {
        loop {
            let job = match &self.compaction {
                None => self.jobs.recv().ok(),
                // While a compaction runs, look in on it now and then even when idle.
                Some(_) => match self.jobs.recv_timeout(COMPACTION_POLL) {
                    Ok(job) => Some(job),
                    Err(mpsc::RecvTimeoutError::Timeout) => None,
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                },
            };
            if self.compaction.is_none() && job.is_none() {
                break; // every handle is gone
            }
            if let Some(job) = job {
                self.take(job);
            }
            while let Ok(job) = self.jobs.try_recv() {
                self.take(job);
            }
            self.settle();
            if self.compaction.as_ref().is_some_and(JoinHandle::is_finished) {
                self.install();
            }
            if self.compaction.is_none() && (!self.replies.is_empty() || self.log_is_long()) {
                self.start_compaction();
            }
            self.prepare_spare();
        }
        if self.compaction.is_some() {
            self.install();
        }
        if let Spare::Preparing(thread) = std::mem::replace(&mut self.spare, Spare::Missing) {
            let _ = thread.join();
        }
    }

    /// Acknowledges what was written; on a failure, poisons the image.
    fn settle(&mut self) {
        self.acknowledge();
        if self.failure.is_some() {
            let shared = self.shared.clone();
            self.poison(&mut lock(&shared.image));
        }
    }

    /// Writes a queued record (unless writing has failed), or notes a compaction request.
    /// While a compaction runs, the records written are kept for its installation.
    fn take(&mut self, job: Job) {
        match job {
            Job::Append { seq, frame } => {
                if self.failure.is_some() {
                    return;
                }
                match self.append(&frame) {
                    Ok(()) => self.written = seq,
                    Err(reason) => self.failure = Some(reason),
                }
                if let Some(frames) = &self.since_rotation {
                    lock(frames).push(frame);
                }
            }
            Job::Compact(reply) => self.replies.push(reply),
        }
    }

    /// Writes one frame at the end of the live segment, preallocating as needed.
    fn append(&mut self, frame: &[u8]) -> Result<(), String> {
        let end = self.log_len + frame.len() as u64;
        if end > self.log_alloc {
            let grown = end + PREALLOCATE_BYTES;
            let zeros = vec![0u8; (grown - self.log_alloc) as usize];
            self.log
                .write_all_at(&zeros, self.log_alloc)
                .map_err(|error| format!("preallocating the log failed: {error}"))?;
            self.log_alloc = grown;
        }
        self.log
            .write_all_at(frame, self.log_len)
            .map_err(|error| format!("appending to the log failed: {error}"))?;
        self.log_len = end;
        Ok(())
    }

    /// Makes every record written so far durable with one `fdatasync` (after the drill
    /// delay, when one is set) and acknowledges them.
    fn acknowledge(&mut self) {
        if self.failure.is_some()
            || self.written <= self.shared.acknowledged.load(Ordering::Acquire)
        {
            return;
        }
        if let Some(delay) = self.shared.options.write_delay {
            std::thread::sleep(delay);
        }
        if self.shared.options.sync.syncs()
            && let Err(error) = self.log.sync_data()
        {
            self.failure = Some(format!("fdatasync of the log failed: {error}"));
            return;
        }
        let written = self.written;
        self.shared.acknowledged.store(written, Ordering::Release);
        self.shared.progress.send_modify(|progress| progress.acknowledged = written);
    }

    /// After a failed write or sync: the image holds records the log may not (and after a
    /// failed `fdatasync` the kernel may have dropped dirty pages), so every later call fails
    /// until the store is reopened; waiters of unacknowledged records get the reason.
    fn poison(&self, image: &mut ImageState<S>) {
        let Some(reason) = &self.failure else { return };
        let reason = format!("{reason}; reopen the store");
        image.poisoned = Some(StoreError::Unavailable(reason.clone()));
        self.shared.progress.send_modify(|progress| progress.failed = Some(reason));
    }

    /// True when the live segment has outgrown the compaction threshold.
    fn log_is_long(&self) -> bool {
        self.log_len > self.compaction_threshold()
    }

    /// See [`compaction_threshold`].
    fn compaction_threshold(&self) -> u64 {
        compaction_threshold(self.shared.options.compact_min_log_bytes, self.snapshot_len)
    }

    /// Compaction steps 1–2, on this thread: seals the live segment `log.N` (everything
    /// written is already `fdatasync`ed by [`Self::settle`]) and switches appends to a new
    /// `log.N+1`. Then starts the background thread for steps 3–4, which rebuilds the image
    /// of the sealed segments from the files and writes the snapshot; the compactions asked
    /// for are answered once it is durable.
    fn start_compaction(&mut self) {
        let replies = std::mem::take(&mut self.replies);
        let refuse = |replies: Vec<Reply>, error: StoreError| {
            replies.into_iter().for_each(|reply| reply(Err(error.clone())));
        };
        if let Some(error) = lock(&self.shared.image).poisoned.clone() {
            return refuse(replies, error);
        }
        if let Err(error) = self.rotate() {
            return refuse(replies, error);
        }
        let dir = self.shared.dir.clone();
        let sync = self.shared.options.sync.syncs();
        let sealed = self.log_gen - 1;
        // A compaction someone asked for (`vacuum`, `compact`) rewrites every body, so that
        // the space of removed data comes back.
        let full = !replies.is_empty();
        let frames = Arc::new(Mutex::new(Vec::new()));
        let since_rotation = frames.clone();
        let work = move || {
            let outcome = compact_sealed::<S>(&dir, sealed, full, sync);
            let answer = outcome.as_ref().map(|_| ()).map_err(Clone::clone);
            replies.into_iter().for_each(|reply| reply(answer.clone()));
            let (state, snapshot_len) = outcome?;
            Ok((catch_up(state, &since_rotation)?, snapshot_len))
        };
        // Without a thread to be had, the callers that asked see their reply dropped (an
        // error); the size trigger tries again after a later write.
        let thread = std::thread::Builder::new().name("strata-file-compact".into()).spawn(work);
        if let Ok(thread) = thread {
            self.compaction = Some(thread);
            self.since_rotation = Some(frames);
        }
    }

    /// Appends to `log.N+1` from now on: the spare, when it is ready (opening it is all the
    /// rotation does on this thread), or else a segment created here (a compaction asked for
    /// before the live segment was half way to the threshold, or a spare that failed).
    fn rotate(&mut self) -> Result<(), StoreError> {
        let dir = &self.shared.dir;
        let next = self.log_gen + 1;
        let prepared = match std::mem::replace(&mut self.spare, Spare::Missing) {
            Spare::Ready => true,
            Spare::Preparing(thread) => thread.join().is_ok_and(|created| created.is_ok()),
            Spare::Missing | Spare::Failed => false,
        };
        if !prepared {
            create_segment(dir, next, 0, self.shared.options.sync.syncs())?;
        }
        let path = dir.join(log_name(next));
        self.log = open_for_writing(&path)?;
        self.log_alloc =
            self.log.metadata().map_err(io(format_args!("stat {}", path.display())))?.len();
        self.log_gen = next;
        self.log_len = FILE_HEADER_LEN as u64;
        Ok(())
    }

    /// Starts creating the spare `log.N+1` on a thread of its own once the live segment is
    /// half way to the compaction threshold, preallocated to the threshold and a margin, so
    /// that neither the rotation nor the live segment's growth up to the next rotation
    /// changes a file's size on this thread; notes when it is done.
    fn prepare_spare(&mut self) {
        match &self.spare {
            Spare::Preparing(thread) if thread.is_finished() => {
                let Spare::Preparing(thread) = std::mem::replace(&mut self.spare, Spare::Failed)
                else {
                    unreachable!("matched above")
                };
                if thread.join().is_ok_and(|created| created.is_ok()) {
                    self.spare = Spare::Ready;
                }
            }
            Spare::Missing if self.log_len > self.compaction_threshold() / 2 => {
                let dir = self.shared.dir.clone();
                let generation = self.log_gen + 1;
                let preallocate = self.compaction_threshold() + PREALLOCATE_BYTES;
                let sync = self.shared.options.sync.syncs();
                let work = move || create_segment(&dir, generation, preallocate, sync);
                self.spare = match std::thread::Builder::new()
                    .name("strata-file-spare".into())
                    .spawn(work)
                {
                    Ok(thread) => Spare::Preparing(thread),
                    Err(_) => Spare::Failed,
                };
            }
            _ => {}
        }
    }

    /// Installs a finished compaction: the rebuilt image (on the new snapshot), which its
    /// thread has caught up on nearly every record written since the rotation, replays the
    /// last few under the image lock and replaces the live image; the replaced image is
    /// dropped on a thread of its own. The live image stays as it is when the compaction
    /// failed (it is still right; the next trigger tries again) or the store is poisoned.
    fn install(&mut self) {
        let Some(thread) = self.compaction.take() else { return };
        let rebuilt = thread
            .join()
            .unwrap_or_else(|_| Err(StoreError::Backend("the compaction thread panicked".into())));
        let Ok((mut state, snapshot_len)) = rebuilt else {
            self.since_rotation = None;
            return;
        };
        self.snapshot_len = snapshot_len;
        let shared = self.shared.clone();
        let mut image = lock(&shared.image);
        // Records queued before the lock was taken are in the live image: write them, and
        // replay them onto the rebuilt one too.
        while let Ok(job) = self.jobs.try_recv() {
            self.take(job);
        }
        let rest = self.since_rotation.take().map(|frames| std::mem::take(&mut *lock(&frames)));
        let replaced = (image.poisoned.is_none()
            && replay(&mut state, &rest.unwrap_or_default()).is_ok())
        .then(|| std::mem::replace(&mut image.state, state));
        drop(image);
        self.settle();
        if let Some(replaced) = replaced {
            // Freeing a large image takes milliseconds that the log writer does not wait for
            // (dropped here when no thread can be had).
            let _ = std::thread::Builder::new()
                .name("strata-file-free".into())
                .spawn(move || drop(replaced));
        }
    }
}

/// On the compaction thread, once the snapshot is durable: replays onto `state` the records
/// the log writer has written since the rotation (taking them from `frames` in batches) until
/// only a few are left, so that the installation replays those few on the log writer. Gives
/// up after [`CATCH_UP_ROUNDS`] batches, should writes outpace the replay.
fn catch_up<S: Image>(mut state: S, frames: &Mutex<Vec<Vec<u8>>>) -> Result<S, StoreError> {
    for _ in 0..CATCH_UP_ROUNDS {
        let batch = {
            let mut frames = lock(frames);
            if frames.len() <= CATCH_UP_LEFT {
                break;
            }
            std::mem::take(&mut *frames)
        };
        replay(&mut state, &batch)?;
    }
    Ok(state)
}

/// Batches [`catch_up`] replays at most.
const CATCH_UP_ROUNDS: usize = 8;
/// Records a compaction thread leaves for the installation to replay.
const CATCH_UP_LEFT: usize = 16;

/// How often the log writer looks in on a running compaction while no write arrives.
const COMPACTION_POLL: Duration = Duration::from_millis(5);

/// Applies the records of `frames` (as the log writer wrote them) to `state`.
fn replay<S: Image>(state: &mut S, frames: &[Vec<u8>]) -> Result<(), StoreError> {
    for frame in frames {
        let mutation: S::Mutation = format::decode("log", 0, &frame[format::FRAME_HEADER_LEN..])?;
        state.apply_mutation(&mutation);
    }
    Ok(())
}

/// Compaction steps 3–4, off the log writer: rebuilds the image of the segments up to and
/// including `sealed` from the files (the snapshot, then those segments), encodes it as a new
/// snapshot naming `sealed + 1` as its first segment (writing the section files it adds
/// first; every body anew with `full`), writes it (temporary file, fsync, rename, directory
/// fsync), deletes the older segments and the section files it no longer uses, and returns
/// the image opened on the new snapshot (its sections read lazily, as after an open).
fn compact_sealed<S: Image>(
    dir: &Path,
    sealed: u64,
    full: bool,
    sync: bool,
) -> Result<(S, u64), StoreError> {
    let state = recover::<S>(dir, Some(sealed))?.state;
    let first_gen = sealed + 1;
    let sections = state.seal_sections(dir, first_gen, full, sync)?;
    let encoded = format::encode(&SnapshotOut { first_log_gen: first_gen, state: &state })?;
    drop(state);
    write_snapshot(dir, &sections, &encoded, first_gen, sync)?;
    drop((sections, encoded));
    let (image, sections, snapshot_len) = read_snapshot::<S>(dir)?;
    remove_unused_section_files::<S>(dir, &S::section_files(&sections))?;
    let mut state = image.state;
    state.attach_sections(sections);
    Ok((state, snapshot_len))
}

/// The size of the live segment that starts a compaction: half the snapshot's size, within
/// [`MIN_COMPACTION_THRESHOLD`] and `cap` ([`FileStoreOptions::compact_min_log_bytes`]). A
/// small session thus compacts sooner and its open replays little, while the snapshot tables
/// a compaction rewrites stay at most about twice the log written between two of them; a
/// large session's replay stays bounded by `cap`.
fn compaction_threshold(cap: u64, snapshot_len: u64) -> u64 {
    (snapshot_len / 2).clamp(MIN_COMPACTION_THRESHOLD.min(cap), cap)
}

/// The smallest compaction threshold [`compaction_threshold`] sets (unless the cap is lower).
const MIN_COMPACTION_THRESHOLD: u64 = 512 << 10;

/// Deletes the section files of `dir` not named in `keep` (leftovers of a compaction that
/// did not finish, or files a newer snapshot no longer uses).
fn remove_unused_section_files<S: Image>(dir: &Path, keep: &[String]) -> Result<(), StoreError> {
    for entry in fs::read_dir(dir).map_err(io(format_args!("list {}", dir.display())))? {
        let entry = entry.map_err(io(format_args!("list {}", dir.display())))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with(S::SECTION_FILE_PREFIX)
            && !name.ends_with(TMP_SUFFIX)
            && !keep.iter().any(|kept| kept == name)
        {
            let path = entry.path();
            fs::remove_file(&path).map_err(io(format_args!("remove {}", path.display())))?;
        }
    }
    Ok(())
}

/// Compaction steps 3–4, off the log writer: writes the snapshot (temporary file, fsync,
/// rename, directory fsync) naming `first_gen` as its first segment, then deletes the older
/// segments.
fn write_snapshot(
    dir: &Path,
    section: &[u8],
    encoded: &[u8],
    first_gen: u64,
    sync: bool,
) -> Result<(), StoreError> {
    let header = format::file_header(FileKind::Snapshot);
    let mut record = Vec::with_capacity(format::FRAME_HEADER_LEN + encoded.len());
    format::push_frame(&mut record, encoded);
    write_atomically(dir, SNAPSHOT_FILE, &[&header, section, &record], sync)?;
    for old in list_logs(dir)?.into_iter().filter(|&g| g < first_gen) {
        let path = dir.join(log_name(old));
        fs::remove_file(&path).map_err(io(format_args!("remove {}", path.display())))?;
    }
    if sync {
        sync_dir(dir)?;
    }
    Ok(())
}

impl<S: Image> std::fmt::Debug for Engine<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Engine({})", self.shared.dir.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy image: the list of numbers written so far.
    #[derive(Default, Serialize, Deserialize)]
    struct Numbers(Vec<u64>);

    impl Image for Numbers {
        type Mutation = u64;
        type Sections = ();
        const SECTION_FILE_PREFIX: &'static str = "numbers.";
        fn apply_mutation(&mut self, mutation: &u64) {
            self.0.push(*mutation);
        }
        fn seal_sections(&self, _: &Path, _: u64, _: bool, _: bool) -> Result<Vec<u8>, StoreError> {
            Ok(Vec::new())
        }
        fn open_sections(
            _: &Path,
            _: &File,
            _: &str,
            _: u64,
            _: u64,
        ) -> Result<((), u64), StoreError> {
            Ok(((), 0))
        }
        fn section_files((): &()) -> Vec<String> {
            Vec::new()
        }
        fn attach_sections(&mut self, (): ()) {}
    }

    /// Awaits `future` on a throwaway current-thread runtime.
    fn wait<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(future)
    }

    fn push(engine: &Engine<Numbers>, value: u64) {
        let ((), seq) = engine.submit(|_| Ok((Some(value), ()))).unwrap();
        wait(engine.acknowledged(seq)).unwrap();
    }

    fn numbers(engine: &Engine<Numbers>) -> Vec<u64> {
        engine.read(|image| image.0.clone()).unwrap().0
    }

    fn small_log() -> FileStoreOptions {
        FileStoreOptions::default().with_compact_min_log_bytes(256)
    }

    #[test]
    fn the_compaction_threshold_is_half_the_snapshot_within_the_floor_and_the_cap() {
        let cap = 2 << 20;
        assert_eq!(compaction_threshold(cap, 0), MIN_COMPACTION_THRESHOLD, "no snapshot yet");
        assert_eq!(compaction_threshold(cap, 1 << 20), 512 << 10, "a small session");
        assert_eq!(compaction_threshold(cap, 64 << 20), cap, "a large session");
        assert_eq!(compaction_threshold(4 << 10, 0), 4 << 10, "a cap below the floor wins");
    }

    #[test]
    fn writes_survive_reopen_across_compactions() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::<Numbers>::open(dir.path(), small_log()).unwrap();
        for value in 0..100 {
            push(&engine, value);
        }
        drop(engine);
        let logs = list_logs(dir.path()).unwrap();
        assert!(logs.len() <= 2, "old segments are removed (a spare may follow): {logs:?}");
        assert!(logs[0] > 0, "the log was compacted at least once");
        let engine = Engine::<Numbers>::open(dir.path(), small_log()).unwrap();
        assert_eq!(numbers(&engine), (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn concurrent_writers_share_syncs_and_all_survive() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::<Numbers>::open(dir.path(), small_log()).unwrap();
        std::thread::scope(|scope| {
            for writer in 0..8u64 {
                let engine = &engine;
                scope.spawn(move || (0..50).for_each(|i| push(engine, writer * 1000 + i)));
            }
        });
        drop(engine);
        let engine = Engine::<Numbers>::open(dir.path(), small_log()).unwrap();
        let mut values = numbers(&engine);
        values.sort_unstable();
        let expected: Vec<u64> = (0..8).flat_map(|w| (0..50).map(move |i| w * 1000 + i)).collect();
        assert_eq!(values, expected);
    }

    #[test]
    fn a_second_engine_on_the_same_dir_is_locked_out() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Engine::<Numbers>::open(dir.path(), small_log()).unwrap();
        let second = Engine::<Numbers>::open(dir.path(), small_log()).unwrap_err();
        assert!(matches!(second, StoreError::Locked { .. }), "{second}");
    }

    #[test]
    fn a_torn_tail_is_cut_off_and_writing_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::<Numbers>::open(dir.path(), FileStoreOptions::default()).unwrap();
        push(&engine, 1);
        push(&engine, 2);
        drop(engine);
        let path = dir.path().join(log_name(0));
        let bytes = fs::read(&path).unwrap();
        let end = format::scan_log("log.0", &bytes).unwrap().valid_end;
        assert!(end < bytes.len() as u64, "the log is preallocated");
        OpenOptions::new().write(true).open(&path).unwrap().set_len(end - 3).unwrap();
        let engine = Engine::<Numbers>::open(dir.path(), FileStoreOptions::default()).unwrap();
        assert_eq!(numbers(&engine), vec![1]);
        push(&engine, 3);
        drop(engine);
        let engine = Engine::<Numbers>::open(dir.path(), FileStoreOptions::default()).unwrap();
        assert_eq!(numbers(&engine), vec![1, 3]);
    }

    #[test]
    fn a_spare_segment_is_prepared_in_the_background_and_taken_by_the_next_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let threshold = 64 << 10;
        let options = FileStoreOptions::default().with_compact_min_log_bytes(threshold);
        let engine = Engine::<Numbers>::open(dir.path(), options.clone()).unwrap();
        let spare = dir.path().join(log_name(1));
        let prepared = FILE_HEADER_LEN as u64 + threshold + PREALLOCATE_BYTES;
        let mut value = 0;
        while !spare.exists() {
            push(&engine, value);
            value += 1;
            assert!(value < 100_000, "no spare was ever prepared");
        }
        // Wait for it to be complete, then write on until the rotation switches to it.
        for _ in 0..500 {
            if fs::metadata(&spare).unwrap().len() == prepared {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        while list_logs(dir.path()).unwrap().first() == Some(&0) {
            push(&engine, value);
            value += 1;
        }
        assert_eq!(
            fs::metadata(&spare).unwrap().len(),
            prepared,
            "the rotation took the prepared segment as it was (no growth on the writer's path)"
        );
        drop(engine);
        let engine = Engine::<Numbers>::open(dir.path(), options).unwrap();
        assert_eq!(numbers(&engine), (0..value).collect::<Vec<_>>());
    }

    #[test]
    fn a_torn_tail_before_a_spare_is_cut_off_and_the_spare_kept() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::<Numbers>::open(dir.path(), FileStoreOptions::default()).unwrap();
        push(&engine, 1);
        push(&engine, 2);
        drop(engine);
        let live = dir.path().join(log_name(0));
        let end = format::scan_log("log.0", &fs::read(&live).unwrap()).unwrap().valid_end;
        OpenOptions::new().write(true).open(&live).unwrap().set_len(end - 3).unwrap();
        create_segment(dir.path(), 1, 4096, true).unwrap();
        let engine = Engine::<Numbers>::open(dir.path(), FileStoreOptions::default()).unwrap();
        assert_eq!(numbers(&engine), vec![1], "the torn record is cut off, not corruption");
        push(&engine, 3);
        drop(engine);
        assert_eq!(list_logs(dir.path()).unwrap(), vec![0, 1], "the spare is kept for later");
        let engine = Engine::<Numbers>::open(dir.path(), FileStoreOptions::default()).unwrap();
        assert_eq!(numbers(&engine), vec![1, 3]);
    }

    #[test]
    fn a_torn_tail_followed_by_records_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::<Numbers>::open(dir.path(), FileStoreOptions::default()).unwrap();
        push(&engine, 1);
        engine.compact().unwrap();
        push(&engine, 2);
        drop(engine);
        // Damage the end of a segment that has a successor holding records.
        write_atomically(dir.path(), &log_name(0), &[&format::file_header(FileKind::Log)], true)
            .unwrap();
        let first = dir.path().join(log_name(1));
        let mut bytes = fs::read(&first).unwrap();
        let end = format::scan_log("log.1", &bytes).unwrap().valid_end as usize;
        bytes[end - 1] ^= 0xff;
        fs::write(&first, &bytes).unwrap();
        create_segment(dir.path(), 2, 0, true).unwrap();
        let second = dir.path().join(log_name(2));
        let frame = Engine::<Numbers>::open(tempfile::tempdir().unwrap().path(), small_log())
            .unwrap()
            .frame(&9)
            .unwrap();
        OpenOptions::new().append(true).open(&second).unwrap().write_all(&frame).unwrap();
        let error = Engine::<Numbers>::open(dir.path(), FileStoreOptions::default()).unwrap_err();
        assert!(
            matches!(&error, StoreError::CorruptData { location, .. } if location.starts_with("log.1:")),
            "{error}"
        );
    }

    #[test]
    fn an_interrupted_compaction_replays_the_whole_chain() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::<Numbers>::open(dir.path(), FileStoreOptions::default()).unwrap();
        push(&engine, 1);
        engine.compact().unwrap();
        push(&engine, 2);
        // Simulate a crash after the rotation and before the new snapshot was renamed in.
        write_atomically(dir.path(), &log_name(2), &[&format::file_header(FileKind::Log)], true)
            .unwrap();
        fs::write(dir.path().join("snapshot.tmp"), b"half a snapshot").unwrap();
        drop(engine);
        let engine = Engine::<Numbers>::open(dir.path(), FileStoreOptions::default()).unwrap();
        assert_eq!(numbers(&engine), vec![1, 2]);
        assert!(!dir.path().join("snapshot.tmp").exists());
    }

    #[test]
    fn an_oversize_write_is_refused_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let options = FileStoreOptions::default().with_max_record_bytes(4);
        let engine = Engine::<Numbers>::open(dir.path(), options).unwrap();
        let error = engine.submit(|_| Ok((Some(u64::MAX), ()))).unwrap_err();
        assert!(error.to_string().contains("max_record_bytes = 4"), "{error}");
        push(&engine, 7);
        assert_eq!(numbers(&engine), vec![7]);
    }

    #[test]
    fn a_missing_segment_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::<Numbers>::open(dir.path(), FileStoreOptions::default()).unwrap();
        push(&engine, 1);
        engine.compact().unwrap();
        drop(engine);
        fs::remove_file(dir.path().join(log_name(1))).unwrap();
        let error = Engine::<Numbers>::open(dir.path(), FileStoreOptions::default()).unwrap_err();
        assert!(
            matches!(error, StoreError::CorruptData { ref location, .. } if location == "log.1:0")
        );
    }
}
