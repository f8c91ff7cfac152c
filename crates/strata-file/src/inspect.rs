//! Read-only views of a store directory, for tools (`strata inspect`, `strata verify`): what a
//! store holds and whether its files are whole, without opening it as a store.
//!
//! - [`StoreView::open`] rebuilds the store's image exactly as [`FileStore::open`] does (the
//!   engine's own recovery: the snapshot with its graph and stamp sections, then the log
//!   chain) and exposes it as a [`SessionState`] to read, plus the directory's files and the
//!   torn tail an open would discard.
//! - [`verify`] checks every record's checksum (every frame of every log segment, the
//!   snapshot's sections and record, every node and stamp body the sections name) and every
//!   reference (the log chain the snapshot names, the body files the sections point into, the
//!   head's active path and its checkpoint's blobs, the head's live-node count, each blob's
//!   content hash), and lists each problem with its file and offset.
//!
//! Both are **read-only** and work while another process holds the store: they never take
//! the store's lock (not even a shared one, which would make the owner's open fail), never
//! cut a torn tail, never remove a temporary or stale file, never create a file or directory.
//! What the owner may do meanwhile is allowed for: a view that found a problem is taken again
//! (up to [`ATTEMPTS`] times) when the directory changed under it (a compaction replaced the
//! snapshot and removed files between two reads) or a process holds the store (a read of the
//! live segment racing the owner's appends can see a later record before an earlier one), so
//! that what is reported is still there on the last look; a write in flight at the end of the
//! live segment shows as a torn tail, which is what it is at that instant. [`lock_holder`]
//! tells whether a process holds the store (Linux: from `/proc/locks`, without touching the
//! lock). The view is the store as its files were at one instant; the owner's later writes
//! are not in it.
//!
//! [`FileStore::open`]: crate::FileStore::open

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use strata_core::state::StoredNode;
use strata_core::{Mutation, SessionReadScope, SessionState, StoreError, blob_ref};

use crate::bodies::BODIES_PREFIX;
use crate::engine::{self, LOCK_FILE, LOG_PREFIX, SNAPSHOT_FILE, TMP_SUFFIX};
use crate::format;

/// How many times a view is taken while the owner keeps changing the directory under it.
pub const ATTEMPTS: usize = 5;

/// What a file of a store directory is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileRole {
    /// `LOCK`: held by the process that has the store open; never read.
    Lock,
    /// `snapshot`.
    Snapshot,
    /// `log.<N>` of the chain the snapshot names (the last is the live segment).
    Log,
    /// `log.<N>` older than the snapshot: left by a compaction, removed at the next open.
    StaleLog,
    /// `bodies.<N>` used by the snapshot.
    Bodies,
    /// `bodies.<N>` the snapshot does not use: removed at the next open.
    UnusedBodies,
    /// `*.tmp`: an interrupted (or, while the store is open, an ongoing) atomic write.
    Temporary,
    /// Anything else (not written by this crate).
    Other,
}

impl FileRole {
    /// A short description for listings.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Lock => "lock",
            Self::Snapshot => "snapshot",
            Self::Log => "log segment",
            Self::StaleLog => "stale log segment (removed at the next open)",
            Self::Bodies => "body file",
            Self::UnusedBodies => "unused body file (removed at the next open)",
            Self::Temporary => "temporary file of an atomic write",
            Self::Other => "not a store file",
        }
    }
}

/// One file of a store directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreFile {
    /// File name.
    pub name: String,
    /// Size in bytes (log segments include their preallocated zeros).
    pub len: u64,
    /// What it is.
    pub role: FileRole,
}

/// The end of the live log segment that an open would cut off: an append interrupted before
/// it was acknowledged (or, while the store is open, one in flight).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// The segment.
    pub file: String,
    /// Where the torn bytes start (the end of the last whole record).
    pub offset: u64,
    /// How many bytes follow (the rest of the file, preallocated zeros included).
    pub len: u64,
}

/// Who holds a store's lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holder {
    /// Nobody: the store is closed.
    Nobody,
    /// The process with this id (as `/proc/locks` shows it; 0 when it runs in another pid
    /// namespace).
    Process(u32),
    /// Not known (no `/proc/locks` to read).
    Unknown,
}

/// True when `dir` holds a store (a snapshot or a log segment), as an open decides it.
pub fn holds_store(dir: &Path) -> bool {
    engine::store_exists(dir)
}

/// Who holds the lock of the store in `dir`, found without taking it: `/proc/locks` lists
/// the `flock` of the `LOCK` file's inode while a process has the store open.
pub fn lock_holder(dir: &Path) -> Holder {
    let Ok(lock) = fs::metadata(dir.join(LOCK_FILE)) else { return Holder::Nobody };
    match fs::read_to_string("/proc/locks") {
        Ok(locks) => holder_in(&locks, lock.dev(), lock.ino()),
        Err(_) => Holder::Unknown,
    }
}

/// The holder of the `flock` on inode `ino` of device `dev` (a `stat` device number) in the
/// text of `/proc/locks`. Lines look like `1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234 0 EOF`
/// (waiters are marked `->`). A line naming the inode on another device counts when no line
/// names both (some file systems show another device number there than `stat` does).
fn holder_in(locks: &str, dev: u64, ino: u64) -> Holder {
    let (major, minor) =
        ((dev >> 8) & 0xfff | (dev >> 32) & !0xfff, dev & 0xff | (dev >> 12) & !0xff);
    let mut inode_only = None;
    for line in locks.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(1) != Some(&"FLOCK") {
            continue; // another kind of lock, or a waiter (`->`)
        }
        let (Some(pid), Some(place)) = (fields.get(4), fields.get(5)) else { continue };
        let mut parts = place.split(':');
        let (Some(maj), Some(min), Some(inode)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if inode.parse::<u64>() != Ok(ino) {
            continue;
        }
        let holder = Holder::Process(
            pid.parse::<i64>().ok().and_then(|p| u32::try_from(p).ok()).unwrap_or(0),
        );
        let same_device =
            u64::from_str_radix(maj, 16) == Ok(major) && u64::from_str_radix(min, 16) == Ok(minor);
        if same_device {
            return holder;
        }
        inode_only.get_or_insert(holder);
    }
    inode_only.unwrap_or(Holder::Nobody)
}

/// A store's image and files, rebuilt read-only (see the module docs).
#[derive(Debug)]
pub struct StoreView {
    dir: PathBuf,
    state: SessionState,
    files: Vec<StoreFile>,
    torn_tail: Option<TornTail>,
    holder: Holder,
}

impl StoreView {
    /// Rebuilds the image of the store in `dir` as an open would, without changing anything.
    /// Fails as an open would on damage ([`StoreError::CorruptData`] naming file and offset,
    /// or [`StoreError::UnsupportedRecordSchemaVersion`]) and with `InvalidInput` when `dir`
    /// holds no store; never with `Locked`. Blocking.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        let dir = dir.as_ref();
        stable(dir, || view(dir), Result::is_err)
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The image: read it with the state's read methods (`head`, `load_session`,
    /// `load_node`, `queue`, `manifest`, `stored_graph`, …). Reads of nodes from the
    /// snapshot's body files are positioned reads, checked against their CRCs.
    pub fn state(&self) -> &SessionState {
        &self.state
    }

    /// The directory's files, by name.
    pub fn files(&self) -> &[StoreFile] {
        &self.files
    }

    /// The bytes the next open would cut off the live segment, if any.
    pub fn torn_tail(&self) -> Option<&TornTail> {
        self.torn_tail.as_ref()
    }

    /// Who held the store's lock when the view was taken.
    pub fn holder(&self) -> Holder {
        self.holder
    }
}

/// Takes `attempt` again (up to [`ATTEMPTS`] times) while it went `wrong` and the store may
/// have changed under it: the directory changed (a compaction of the owner replaced files
/// between two reads), or a process holds the store (a read of the live segment racing the
/// owner's appends can see a later record before an earlier one reached the page cache).
/// Real damage is still there on the last attempt.
fn stable<T>(dir: &Path, attempt: impl Fn() -> T, wrong: impl Fn(&T) -> bool) -> T {
    let mut tries = 1;
    loop {
        let before = signature(dir);
        let result = attempt();
        let settled = signature(dir) == before && lock_holder(dir) == Holder::Nobody;
        if !wrong(&result) || tries == ATTEMPTS || settled {
            return result;
        }
        tries += 1;
        std::thread::sleep(Duration::from_millis(10 * tries as u64));
    }
}

/// The snapshot, log segments and body files of `dir`, by name and inode: what a compaction
/// changes (an append to the live segment does not).
fn signature(dir: &Path) -> Vec<(String, u64)> {
    let mut entries: Vec<(String, u64)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let kept = name == SNAPSHOT_FILE
                || (name.starts_with(LOG_PREFIX) || name.starts_with(BODIES_PREFIX))
                    && !name.ends_with(TMP_SUFFIX);
            kept.then(|| Some((name, entry.metadata().ok()?.ino())))?
        })
        .collect();
    entries.sort();
    entries
}

/// One attempt of [`StoreView::open`].
fn view(dir: &Path) -> Result<StoreView, StoreError> {
    require_store(dir)?;
    let holder = lock_holder(dir);
    let recovered = engine::recover::<SessionState>(dir, None)?;
    let files = list_files(dir, Some((recovered.first_gen, &recovered.section_files)))?;
    let torn_tail = recovered.torn.then(|| TornTail {
        file: engine::log_name(recovered.live_gen.unwrap_or(recovered.first_gen)),
        offset: recovered.log_len,
        len: recovered.log_alloc - recovered.log_len,
    });
    Ok(StoreView { dir: dir.to_path_buf(), state: recovered.state, files, torn_tail, holder })
}

/// `InvalidInput` unless `dir` holds a store.
fn require_store(dir: &Path) -> Result<(), StoreError> {
    if holds_store(dir) {
        return Ok(());
    }
    Err(StoreError::InvalidInput(format!(
        "{} holds no strata-file store (no snapshot, no log segment)",
        dir.display()
    )))
}

/// The files of `dir` with their roles; `chain` (the snapshot's first log segment and the
/// body files it uses) tells stale and unused files apart, when known.
fn list_files(dir: &Path, chain: Option<(u64, &[String])>) -> Result<Vec<StoreFile>, StoreError> {
    let listing = |error| StoreError::io(format!("list {}", dir.display()), error);
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(listing)? {
        let entry = entry.map_err(listing)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let len = entry.metadata().map(|meta| meta.len()).unwrap_or(0);
        let generation = |prefix: &str| name.strip_prefix(prefix)?.parse::<u64>().ok();
        let role = if name.ends_with(TMP_SUFFIX) {
            FileRole::Temporary
        } else if name == LOCK_FILE {
            FileRole::Lock
        } else if name == SNAPSHOT_FILE {
            FileRole::Snapshot
        } else if let Some(generation) = generation(LOG_PREFIX) {
            match chain {
                Some((first, _)) if generation < first => FileRole::StaleLog,
                _ => FileRole::Log,
            }
        } else if generation(BODIES_PREFIX).is_some() {
            match chain {
                Some((_, used)) if !used.contains(&name) => FileRole::UnusedBodies,
                _ => FileRole::Bodies,
            }
        } else {
            FileRole::Other
        };
        files.push(StoreFile { name, len, role });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

/// A problem [`verify`] found: where, and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// `<file>:<offset>` for damage in a file; otherwise what is wrong where (`head`,
    /// `blob <ref>`, a file name).
    pub location: String,
    /// What is wrong.
    pub detail: String,
}

impl Problem {
    /// The problem an error describes (a `CorruptData` error carries its own location;
    /// any other is placed at `context`).
    fn from_error(error: StoreError, context: &str) -> Self {
        match error {
            StoreError::CorruptData { location, detail } => Self { location, detail },
            other => Self { location: context.to_owned(), detail: other.to_string() },
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location, self.detail)
    }
}

/// What [`verify`] found.
#[derive(Debug)]
pub struct Verification {
    /// Every problem, each once, in the order found.
    pub problems: Vec<Problem>,
    /// The bytes the next open would discard (not a problem: an append that was never
    /// acknowledged).
    pub torn_tail: Option<TornTail>,
    /// The directory's files.
    pub files: Vec<StoreFile>,
    /// Log records whose frame checksums held and whose payload decoded.
    pub records: u64,
    /// Node bodies read and checked.
    pub node_bodies: u64,
    /// Stamp bodies read and checked.
    pub stamp_bodies: u64,
    /// Blobs whose bytes were hashed against their ref.
    pub blobs: u64,
    /// Who held the store's lock when it was checked.
    pub holder: Holder,
    /// The image, when the store recovers (`None` when an open would fail: see `problems`).
    pub view: Option<StoreView>,
}

impl Verification {
    /// True when nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks every record and every reference of the store in `dir`, read-only (see the module
/// docs). Returns an error only when `dir` cannot be listed or holds no store; damage is
/// reported in [`Verification::problems`]. Blocking.
pub fn verify(dir: impl AsRef<Path>) -> Result<Verification, StoreError> {
    let dir = dir.as_ref();
    require_store(dir)?;
    stable(dir, || verify_once(dir), |result| result.as_ref().is_ok_and(|found| !found.is_ok()))
}

/// Problems, each kept once (recovery and the file-by-file checks may both find one).
#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn push(&mut self, problem: Problem) {
        if !self.0.contains(&problem) {
            self.0.push(problem);
        }
    }

    fn error(&mut self, error: StoreError, context: &str) {
        self.push(Problem::from_error(error, context));
    }
}

/// One attempt of [`verify`].
fn verify_once(dir: &Path) -> Result<Verification, StoreError> {
    let holder = lock_holder(dir);
    let mut problems = Problems::default();
    // The image, exactly as an open recovers it (its first problem stops it).
    let recovered = engine::recover::<SessionState>(dir, None);
    let chain =
        recovered.as_ref().ok().map(|found| (found.first_gen, found.section_files.as_slice()));
    let files = list_files(dir, chain)?;
    // The live segment: the last holding records (spares follow it), or (when recovery
    // failed) the newest.
    let live_segment = match &recovered {
        Ok(found) => found.live_gen.map(engine::log_name),
        Err(_) => engine::list_logs(dir)?.last().copied().map(engine::log_name),
    };

    // Every frame and record of every segment of the chain, past any damage.
    let mut records = 0;
    let mut torn_tail = None;
    for file in files.iter().filter(|file| file.role == FileRole::Log) {
        let bytes = match fs::read(dir.join(&file.name)) {
            Ok(bytes) => bytes,
            Err(error) => {
                problems.error(StoreError::io(format!("read {}", file.name), error), &file.name);
                continue;
            }
        };
        let scan = match format::scan_log_all(&file.name, &bytes) {
            Ok(scan) => scan,
            Err(error) => {
                problems.error(error, &file.name);
                continue;
            }
        };
        for damage in &scan.damage {
            problems.error(damage.to_error(&file.name), &file.name);
        }
        for &(offset, payload) in &scan.records {
            match format::decode::<Mutation>(&file.name, offset, payload) {
                Ok(_) => records += 1,
                Err(error) => problems.error(error, &file.name),
            }
        }
        if !scan.zero_tail {
            if live_segment.as_deref() == Some(file.name.as_str()) {
                let len = bytes.len() as u64 - scan.valid_end;
                torn_tail = Some(TornTail { file: file.name.clone(), offset: scan.valid_end, len });
            } else {
                let error = format::corrupt(
                    &file.name,
                    scan.valid_end,
                    "damaged record in a sealed log segment",
                );
                problems.error(error, &file.name);
            }
        }
    }

    // The snapshot, and every body its sections name.
    let (mut node_bodies, mut stamp_bodies) = (0, 0);
    if dir.join(SNAPSHOT_FILE).exists() {
        match engine::read_snapshot::<SessionState>(dir) {
            Ok((_, (graph, stamps), _)) => {
                node_bodies = graph.check_bodies(&mut |error| problems.error(error, SNAPSHOT_FILE));
                stamp_bodies =
                    stamps.check_bodies(&mut |error| problems.error(error, SNAPSHOT_FILE));
            }
            Err(error) => problems.error(error, SNAPSHOT_FILE),
        }
    }

    // What recovery found, then the references of the image it rebuilt.
    let (view, blobs) = match recovered {
        Err(error) => {
            problems.error(error, "recovery");
            (None, 0)
        }
        Ok(recovered) => {
            let blobs = check_references(&recovered.state, &mut problems);
            let view = StoreView {
                dir: dir.to_path_buf(),
                state: recovered.state,
                files: files.clone(),
                torn_tail: torn_tail.clone(),
                holder,
            };
            (Some(view), blobs)
        }
    };
    Ok(Verification {
        problems: problems.0,
        torn_tail,
        files,
        records,
        node_bodies,
        stamp_bodies,
        blobs,
        holder,
        view,
    })
}

/// True for a stored node hidden by a tombstone.
pub fn is_tombstoned(node: &StoredNode<'_>) -> bool {
    match node {
        StoredNode::Base { tombstoned, .. } | StoredNode::Overlay { tombstoned, .. } => *tombstoned,
    }
}

/// The image's references: the head's active path (every node on it readable, no cycle) and
/// checkpoint (every blob it names held), the head's live-node count against the graph, and
/// every blob's bytes against its content-addressed ref. Returns how many blobs were hashed.
fn check_references(state: &SessionState, problems: &mut Problems) -> u64 {
    let active_path = SessionReadScope::ActivePath { leaf_node_id: None };
    if let Err(error) = state.load_session(&active_path) {
        problems.error(error, "head");
    }
    if let Some(head) = state.head() {
        let graph = state.stored_graph();
        let live = graph.nodes.iter().filter(|node| !is_tombstoned(node)).count() as u64;
        if live != head.live_node_count {
            problems.push(Problem {
                location: "head".into(),
                detail: format!(
                    "the head counts {} live nodes, the graph holds {live}",
                    head.live_node_count
                ),
            });
        }
    }
    let mut blobs = 0;
    for (stored_ref, bytes) in state.blobs() {
        blobs += 1;
        let actual = blob_ref(bytes);
        if actual != stored_ref {
            problems.push(Problem {
                location: format!("blob {stored_ref}"),
                detail: format!("its bytes hash to {actual}"),
            });
        }
    }
    blobs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_holder_is_read_from_proc_locks_by_inode_and_device() {
        // st_dev of device fd:01 (major 253, minor 1) as stat reports it.
        let dev = (253 << 8) | 1;
        let locks = "\
1: POSIX  ADVISORY  WRITE 17 fd:01:777 0 EOF
2: FLOCK  ADVISORY  WRITE 4242 fd:01:1234 0 EOF
2: -> FLOCK  ADVISORY  WRITE 99 fd:01:1234 0 EOF
3: FLOCK  ADVISORY  WRITE 5151 00:2a:1234 0 EOF
";
        assert_eq!(holder_in(locks, dev, 1234), Holder::Process(4242));
        assert_eq!(holder_in(locks, dev, 777), Holder::Nobody, "a POSIX lock is not the store's");
        assert_eq!(holder_in(locks, dev, 5), Holder::Nobody);
        // Shown under another device number only: still the holder.
        assert_eq!(holder_in(locks, (8 << 8) | 3, 1234), Holder::Process(4242));
    }
}
