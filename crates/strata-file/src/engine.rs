//! The durability engine: an image (in memory, but for the section of the last snapshot it
//! reads lazily) made durable by a checksummed log of mutations, group-committed `fdatasync`,
//! snapshots with crash-safe compaction, recovery at open, and the process lock.
//!
//! Generic over the [`Image`] (the store uses `strata_core::state::SessionState`), so the
//! engine knows nothing of sessions: it plans under a lock, logs, applies, and acknowledges
//! only durable effects.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use strata_core::{Bytes, StoreError};

use crate::format::{self, FILE_HEADER_LEN, FileKind};
use crate::options::FileStoreOptions;

/// A state the engine makes durable: serializable (snapshots), with serializable mutations
/// (log records) applied infallibly and deterministically.
///
/// A snapshot holds a **section** (bytes the image encodes itself and reads back lazily: the
/// session graph) followed by one record holding the image's serde form.
pub trait Image: Serialize + DeserializeOwned + Default + Send + 'static {
    /// One logged change.
    type Mutation: Serialize + DeserializeOwned;
    /// A snapshot's section, opened.
    type Section;
    /// Applies `mutation`; must be deterministic and infallible (replay relies on it).
    fn apply_mutation(&mut self, mutation: &Self::Mutation);
    /// Encodes the section of a snapshot about to be written at `offset` of the file `name`,
    /// and rebases the image on it (so that the serde form encoded next leaves it out). The
    /// image's content is unchanged.
    fn seal_section(&mut self, name: &str, offset: u64) -> Result<Bytes, StoreError>;
    /// Opens the section at `offset` of the snapshot `file` (named `name`, `file_len` bytes
    /// long): the section and its length.
    fn open_section(
        file: &File,
        name: &str,
        offset: u64,
        file_len: u64,
    ) -> Result<(Self::Section, u64), StoreError>;
    /// Puts an opened section back under the image decoded from the snapshot's record.
    fn attach_section(&mut self, section: Self::Section);
}

/// Name of the lock file inside a store directory.
pub const LOCK_FILE: &str = "LOCK";
/// Name of the snapshot file inside a store directory.
pub const SNAPSHOT_FILE: &str = "snapshot";
/// Prefix of log segment files (`log.<generation>`, decimal).
pub const LOG_PREFIX: &str = "log.";
const TMP_SUFFIX: &str = ".tmp";

/// What a plan returns: the mutation to log (none for a no-op) and the caller's answer.
pub type Plan<M, O> = (Option<M>, O);

/// The durable image of one store directory, shared by every handle of that store.
pub struct Engine<S: Image> {
    dir: PathBuf,
    options: FileStoreOptions,
    inner: Mutex<Inner<S>>,
    sync: Mutex<SyncState>,
    synced: Condvar,
    appended: AtomicU64,
    /// Mirror of `SyncState::synced`, so that a read with nothing pending takes no second lock.
    durable: AtomicU64,
    compaction: Mutex<()>,
    _lock: File,
}

struct Inner<S> {
    state: S,
    log: Arc<File>,
    log_gen: u64,
    log_len: u64,
    /// Physical length of the log file: `log_len` plus preallocated zeros.
    log_alloc: u64,
    snapshot_len: u64,
    poisoned: Option<StoreError>,
}

struct SyncState {
    synced: u64,
    syncing: bool,
    log: Arc<File>,
    failed: Option<String>,
}

#[derive(Serialize)]
struct SnapshotOut<'a, S> {
    first_log_gen: u64,
    state: &'a S,
}

#[derive(Deserialize)]
struct SnapshotIn<S> {
    first_log_gen: u64,
    state: S,
}

fn io(context: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> StoreError {
    move |error| StoreError::io(context, error)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
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
fn list_logs(dir: &Path) -> Result<Vec<u64>, StoreError> {
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

fn log_name(generation: u64) -> String {
    format!("{LOG_PREFIX}{generation}")
}

/// Writes `parts` (concatenated) to `dir/name` atomically: a temporary file, fsynced, renamed
/// into place, and the directory fsynced (the fsyncs only with `sync`).
fn write_atomically(dir: &Path, name: &str, parts: &[&[u8]], sync: bool) -> Result<(), StoreError> {
    let tmp = dir.join(format!("{name}{TMP_SUFFIX}"));
    let target = dir.join(name);
    let mut file = File::create(&tmp).map_err(io(format_args!("create {}", tmp.display())))?;
    for part in parts {
        file.write_all(part).map_err(io(format_args!("write {}", tmp.display())))?;
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
fn read_snapshot<S: Image>(path: &Path) -> Result<(SnapshotIn<S>, S::Section, u64), StoreError> {
    let name = SNAPSHOT_FILE;
    let file = File::open(path).map_err(io(format_args!("open {}", path.display())))?;
    let len = file.metadata().map_err(io(format_args!("stat {}", path.display())))?.len();
    let header = format::read_at(&file, name, 0, FILE_HEADER_LEN.min(len as usize))?;
    format::check_file_header(name, &header, FileKind::Snapshot)?;
    let (section, section_len) = S::open_section(&file, name, FILE_HEADER_LEN as u64, len)?;
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

impl<S: Image> Engine<S> {
    /// Opens (creating if needed) the store in `dir`: takes the process lock, loads the
    /// snapshot, replays the log chain, discards a torn tail, removes leftovers of an
    /// interrupted compaction.
    pub fn open(dir: &Path, options: FileStoreOptions) -> Result<Self, StoreError> {
        let sync = options.sync.syncs();
        ensure_dir(dir, sync)?;
        let lock_file = take_lock(dir)?;
        let mut state = S::default();
        let mut first_gen = 0;
        let snapshot_path = dir.join(SNAPSHOT_FILE);
        let mut snapshot_len = 0;
        if snapshot_path.exists() {
            let (image, section, len) = read_snapshot::<S>(&snapshot_path)?;
            state = image.state;
            state.attach_section(section);
            first_gen = image.first_log_gen;
            snapshot_len = len;
        }
        let gens = list_logs(dir)?;
        let chain: Vec<u64> = gens.iter().copied().filter(|&g| g >= first_gen).collect();
        for (index, &generation) in chain.iter().enumerate() {
            if generation != first_gen + index as u64 {
                let name = log_name(generation);
                return Err(format::corrupt(&name, 0, "log segment out of sequence"));
            }
        }
        if chain.is_empty() {
            if snapshot_path.exists() {
                let name = log_name(first_gen);
                return Err(format::corrupt(
                    &name,
                    0,
                    "log segment named by the snapshot is missing",
                ));
            }
            write_atomically(dir, &log_name(0), &[&format::file_header(FileKind::Log)], sync)?;
        }
        let last_gen = chain.last().copied().unwrap_or(0);
        let mut log_len = FILE_HEADER_LEN as u64;
        let mut log_alloc = log_len;
        for &generation in &chain {
            let name = log_name(generation);
            let path = dir.join(&name);
            let bytes = fs::read(&path).map_err(io(format_args!("read {}", path.display())))?;
            let scan = format::scan_log(&name, &bytes)?;
            let torn = !scan.zero_tail;
            if torn && generation != last_gen {
                return Err(format::corrupt(
                    &name,
                    scan.valid_end,
                    "damaged record in a sealed log segment",
                ));
            }
            for &(offset, payload) in &scan.records {
                let mutation: S::Mutation = format::decode(&name, offset, payload)?;
                state.apply_mutation(&mutation);
            }
            log_len = scan.valid_end;
            log_alloc = bytes.len() as u64;
            if torn {
                let file = open_for_writing(&path)?;
                file.set_len(scan.valid_end)
                    .and_then(|()| if sync { file.sync_all() } else { Ok(()) })
                    .map_err(io(format_args!("truncate torn tail of {}", path.display())))?;
                log_alloc = log_len;
            }
        }
        for stale in gens.iter().filter(|&&g| g < first_gen) {
            let path = dir.join(log_name(*stale));
            fs::remove_file(&path).map_err(io(format_args!("remove {}", path.display())))?;
        }
        remove_leftover_tmp_files(dir)?;
        let log = Arc::new(open_for_writing(&dir.join(log_name(last_gen)))?);
        Ok(Self {
            dir: dir.to_path_buf(),
            options,
            inner: Mutex::new(Inner {
                state,
                log: log.clone(),
                log_gen: last_gen,
                log_len,
                log_alloc,
                snapshot_len,
                poisoned: None,
            }),
            sync: Mutex::new(SyncState { synced: 0, syncing: false, log, failed: None }),
            synced: Condvar::new(),
            appended: AtomicU64::new(0),
            durable: AtomicU64::new(0),
            compaction: Mutex::new(()),
            _lock: lock_file,
        })
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The options the engine was opened with.
    pub fn options(&self) -> &FileStoreOptions {
        &self.options
    }

    /// Runs `read` over the image and returns its answer once everything it may have observed
    /// is durable (a read never returns state that a crash could take back).
    pub fn read<R>(&self, read: impl FnOnce(&S) -> R) -> Result<R, StoreError> {
        let (answer, observed) = {
            let inner = lock(&self.inner);
            if let Some(error) = &inner.poisoned {
                return Err(error.clone());
            }
            (read(&inner.state), self.appended.load(Ordering::SeqCst))
        };
        self.wait_durable(observed)?;
        Ok(answer)
    }

    /// Plans a write over the image, logs its mutation, applies it, and returns the answer
    /// once the record is durable. A plan error or an oversize record changes nothing.
    pub fn write<O>(
        &self,
        plan: impl FnOnce(&S) -> Result<Plan<S::Mutation, O>, StoreError>,
    ) -> Result<O, StoreError> {
        let (answer, lsn, compact) = {
            let mut inner = lock(&self.inner);
            if let Some(error) = &inner.poisoned {
                return Err(error.clone());
            }
            let (mutation, answer) = plan(&inner.state)?;
            match mutation {
                None => (answer, self.appended.load(Ordering::SeqCst), false),
                Some(mutation) => {
                    let lsn = self.append(&mut inner, &mutation)?;
                    inner.state.apply_mutation(&mutation);
                    (answer, lsn, self.log_is_long(&inner))
                }
            }
        };
        self.wait_durable(lsn)?;
        if compact {
            // The write is durable and acknowledged whatever happens here; a failed compaction
            // leaves the log longer and is retried by the next write that crosses the threshold
            // (and reported by `compact` callers such as `vacuum`).
            let _ = self.compact_if(|engine, inner| engine.log_is_long(inner));
        }
        Ok(answer)
    }

    fn append(&self, inner: &mut Inner<S>, mutation: &S::Mutation) -> Result<u64, StoreError> {
        let payload = format::encode(mutation)?;
        let limit = self.options.max_record_bytes;
        if payload.len() as u64 > limit {
            return Err(StoreError::InvalidInput(format!(
                "write of {} bytes exceeds the limit max_record_bytes = {limit}",
                payload.len()
            )));
        }
        let mut frame = Vec::with_capacity(payload.len() + format::FRAME_HEADER_LEN);
        format::push_frame(&mut frame, &payload);
        let end = inner.log_len + frame.len() as u64;
        if end > inner.log_alloc {
            let grown = end + PREALLOCATE_BYTES;
            let zeros = vec![0u8; (grown - inner.log_alloc) as usize];
            inner
                .log
                .write_all_at(&zeros, inner.log_alloc)
                .map_err(io(format_args!("preallocate log in {}", self.dir.display())))?;
            inner.log_alloc = grown;
        }
        if let Err(error) = inner.log.write_all_at(&frame, inner.log_len) {
            // Cut a partial write back off so it can never look like a damaged record later.
            match inner.log.set_len(inner.log_len) {
                Ok(()) => inner.log_alloc = inner.log_len,
                Err(cut) => {
                    inner.poisoned = Some(StoreError::Unavailable(format!(
                        "log write failed ({error}) and could not be undone ({cut}); reopen"
                    )));
                }
            }
            return Err(StoreError::io(format!("append to {}", self.dir.display()), error));
        }
        inner.log_len = end;
        Ok(self.appended.fetch_add(1, Ordering::SeqCst) + 1)
    }

    /// Blocks until record `lsn` is durable. Group commit: one caller at a time runs
    /// `fdatasync` and covers every record appended before it started; the others wait.
    fn wait_durable(&self, lsn: u64) -> Result<(), StoreError> {
        if !self.options.sync.syncs() || self.durable.load(Ordering::SeqCst) >= lsn {
            return Ok(());
        }
        let mut sync = lock(&self.sync);
        loop {
            if sync.synced >= lsn {
                return Ok(());
            }
            if let Some(reason) = &sync.failed {
                return Err(StoreError::Unavailable(reason.clone()));
            }
            if sync.syncing {
                sync = self.synced.wait(sync).unwrap_or_else(|poisoned| poisoned.into_inner());
                continue;
            }
            sync.syncing = true;
            let target = self.appended.load(Ordering::SeqCst);
            let log = sync.log.clone();
            drop(sync);
            let result = log.sync_data();
            sync = lock(&self.sync);
            sync.syncing = false;
            match result {
                Ok(()) => {
                    sync.synced = sync.synced.max(target);
                    self.durable.store(sync.synced, Ordering::SeqCst);
                }
                // After a failed fdatasync the kernel may have dropped the dirty pages: the
                // in-memory image can no longer be trusted to match the disk.
                Err(error) => {
                    sync.failed = Some(format!("fdatasync of the log failed: {error}; reopen"));
                }
            }
            self.synced.notify_all();
        }
    }

    /// Makes every later call on this engine fail with `error` (used when the store's
    /// directory is deleted under live handles).
    pub fn retire(&self, error: StoreError) {
        lock(&self.inner).poisoned = Some(error);
    }

    /// Folds the log into a new snapshot and starts a new log segment (crash-safe at every
    /// step; see the crate docs). The image is encoded under the lock; file writes are not.
    pub fn compact(&self) -> Result<(), StoreError> {
        self.compact_if(|_, _| true)
    }

    /// True when the live segment has outgrown both the minimum and the last snapshot.
    fn log_is_long(&self, inner: &Inner<S>) -> bool {
        inner.log_len > self.options.compact_min_log_bytes.max(inner.snapshot_len)
    }

    /// Compacts when `needed` still holds once this caller has the compaction to itself (so
    /// writers that crossed the threshold together compact once).
    fn compact_if(&self, needed: impl FnOnce(&Self, &Inner<S>) -> bool) -> Result<(), StoreError> {
        let _one_at_a_time = lock(&self.compaction);
        let sync = self.options.sync.syncs();
        let (section, encoded, first_gen) = {
            let mut inner = lock(&self.inner);
            if let Some(error) = &inner.poisoned {
                return Err(error.clone());
            }
            if !needed(self, &inner) {
                return Ok(());
            }
            let mut sync_state = lock(&self.sync);
            if sync {
                inner.log.sync_data().map_err(io("fdatasync log before compaction"))?;
            }
            let new_gen = inner.log_gen + 1;
            let name = log_name(new_gen);
            write_atomically(&self.dir, &name, &[&format::file_header(FileKind::Log)], sync)?;
            let log = Arc::new(open_for_writing(&self.dir.join(&name))?);
            sync_state.synced = self.appended.load(Ordering::SeqCst);
            self.durable.store(sync_state.synced, Ordering::SeqCst);
            sync_state.log = log.clone();
            drop(sync_state);
            inner.log = log;
            inner.log_gen = new_gen;
            inner.log_len = FILE_HEADER_LEN as u64;
            inner.log_alloc = inner.log_len;
            let section = inner.state.seal_section(SNAPSHOT_FILE, FILE_HEADER_LEN as u64)?;
            let image = SnapshotOut { first_log_gen: new_gen, state: &inner.state };
            (section, format::encode(&image)?, new_gen)
        };
        let header = format::file_header(FileKind::Snapshot);
        let mut record = Vec::with_capacity(format::FRAME_HEADER_LEN + encoded.len());
        format::push_frame(&mut record, &encoded);
        write_atomically(&self.dir, SNAPSHOT_FILE, &[&header, &section, &record], sync)?;
        lock(&self.inner).snapshot_len = (header.len() + section.len() + record.len()) as u64;
        for old in list_logs(&self.dir)?.into_iter().filter(|&g| g < first_gen) {
            let path = self.dir.join(log_name(old));
            fs::remove_file(&path).map_err(io(format_args!("remove {}", path.display())))?;
        }
        if sync {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }
}

impl<S: Image> std::fmt::Debug for Engine<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Engine({})", self.dir.display())
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
        type Section = ();
        fn apply_mutation(&mut self, mutation: &u64) {
            self.0.push(*mutation);
        }
        fn seal_section(&mut self, _: &str, _: u64) -> Result<Bytes, StoreError> {
            Ok(Bytes::new())
        }
        fn open_section(_: &File, _: &str, _: u64, _: u64) -> Result<((), u64), StoreError> {
            Ok(((), 0))
        }
        fn attach_section(&mut self, (): ()) {}
    }

    fn push(engine: &Engine<Numbers>, value: u64) {
        engine.write(|_| Ok((Some(value), ()))).unwrap();
    }

    fn numbers(engine: &Engine<Numbers>) -> Vec<u64> {
        engine.read(|image| image.0.clone()).unwrap()
    }

    fn small_log() -> FileStoreOptions {
        FileStoreOptions::default().with_compact_min_log_bytes(256)
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
        assert_eq!(logs.len(), 1, "old segments are removed: {logs:?}");
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
        let error = engine.write(|_| Ok((Some(u64::MAX), ()))).unwrap_err();
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
