//! [`FileAttachmentStore`]: attachments as files under one local directory (`Durable` by
//! default).
//!
//! # Layout
//!
//! ```text
//! <root>/
//!   objects/<2 hex>/<64 hex>        one attachment: metadata header + bytes (see `encoding`)
//!   refs/<2 hex>/<64 hex>~<32 hex>  one reference (content: the session id)
//!   trash/<64 hex>                  deleted, not yet purged or restored
//!   tmp/<32 hex>.tmp                a write in progress (or interrupted: removed at open once
//!                                   older than an hour)
//! ```
//!
//! Objects and references are sharded by the first two hex digits of the content id into 256
//! directories, created at open, so no directory grows past 1/256 of the store and no put pays
//! for a `mkdir`.
//!
//! # Writes
//!
//! A new file (attachment or reference) is written to `tmp/`, `fdatasync`ed, hard-linked to its
//! name (the link fails if the name exists, so of two concurrent puts of the same bytes exactly
//! one publishes and the other returns what is stored: the first put's metadata wins), the
//! temporary name removed, and the directory fsynced, all before the call returns. A put that
//! finds the attachment already stored (intact: header and content hash checked) writes nothing but fsyncs its directory (a concurrent
//! put may have linked it and not yet synced). A stored file that fails its header check is
//! replaced by the next put of the same bytes (rename over it), so a damaged attachment is
//! repaired by writing it again. Deletes, restores and purges are renames and unlinks, each
//! directory they touch fsynced once per call (many at once: concurrent fsyncs share journal
//! commits).
//!
//! With [`SyncPolicy::OsBuffered`] nothing is fsynced and the store reports `Inline`.
//!
//! All file work runs on tokio's blocking pool: the future does it when polled, a timeout
//! around it fires on time, and a dropped call stops waiting (the blocking step still ends).

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use strata_core::DurabilityTier;
use strata_file::{SyncPolicy, ensure_dir, sync_dir};

use crate::encoding;
use crate::error::AttachmentError;
use crate::id::{AttachmentId, IntentId};
use crate::store::AttachmentStore;
use crate::types::*;

const OBJECTS: &str = "objects";
const REFS: &str = "refs";
const TRASH: &str = "trash";
const TMP: &str = "tmp";
const TMP_SUFFIX: &str = ".tmp";
/// Threads a batch of directory fsyncs is spread over.
const SYNC_THREADS: usize = 16;
/// A temporary file older than this at open belongs to an interrupted write.
const STALE_TMP_AGE: Duration = Duration::from_secs(3600);

/// How a [`FileAttachmentStore`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileAttachmentOptions {
    /// `Always` (default): fsync before acknowledging (`Durable`); `OsBuffered`: never
    /// (`Inline`).
    pub sync: SyncPolicy,
    /// The payload limit (default [`DEFAULT_MAX_BYTES`]).
    pub max_bytes: u64,
}

impl Default for FileAttachmentOptions {
    fn default() -> Self {
        Self { sync: SyncPolicy::Always, max_bytes: DEFAULT_MAX_BYTES }
    }
}

impl FileAttachmentOptions {
    /// With sync policy `sync`.
    pub fn with_sync(mut self, sync: SyncPolicy) -> Self {
        self.sync = sync;
        self
    }

    /// With a payload limit of `max_bytes`.
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }
}

/// Attachments as files under one directory (see the module docs). Clones share the root;
/// several processes may share it too (no lock: every write is an atomic link or rename).
#[derive(Clone, Debug)]
pub struct FileAttachmentStore {
    inner: Arc<Files>,
}

#[derive(Debug)]
struct Files {
    root: PathBuf,
    options: FileAttachmentOptions,
}

/// A file-system step's error as an [`AttachmentError::Io`] naming the step and path.
fn io_error(step: &str, path: &Path) -> impl FnOnce(io::Error) -> AttachmentError {
    move |error| AttachmentError::io(format_args!("{step} {}", path.display()), error)
}

fn store_error(error: strata_core::StoreError) -> AttachmentError {
    AttachmentError::Io(error.to_string())
}

impl FileAttachmentStore {
    /// Opens (creating it and its shard directories if needed) the store at `root`, and removes
    /// temporary files of writes interrupted over an hour ago.
    pub fn open(
        root: impl AsRef<Path>,
        options: FileAttachmentOptions,
    ) -> Result<Self, AttachmentError> {
        let files = Files { root: root.as_ref().to_path_buf(), options };
        files.create_layout()?;
        files.remove_stale_tmp_files()?;
        Ok(Self { inner: Arc::new(files) })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Runs `work` on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Files) -> Result<T, AttachmentError> + Send + 'static,
    ) -> Result<T, AttachmentError> {
        let files = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || work(&files))
            .await
            .map_err(|error| AttachmentError::Io(format!("attachment file task failed: {error}")))?
    }
}

impl Files {
    fn syncs(&self) -> bool {
        self.options.sync.syncs()
    }

    fn object_path(&self, id: &AttachmentId) -> PathBuf {
        self.root.join(OBJECTS).join(id.shard()).join(id.hex())
    }

    fn trash_path(&self, id: &AttachmentId) -> PathBuf {
        self.root.join(TRASH).join(id.hex())
    }

    fn reference_path(&self, intent: &IntentId) -> PathBuf {
        self.root.join(REFS).join(intent.attachment_id().shard()).join(intent.file_name())
    }

    fn create_layout(&self) -> Result<(), AttachmentError> {
        let sync = self.syncs();
        for top in [OBJECTS, REFS, TRASH, TMP] {
            ensure_dir(&self.root.join(top), sync).map_err(store_error)?;
        }
        for top in [OBJECTS, REFS] {
            let dir = self.root.join(top);
            let mut created = false;
            for shard in 0..=255u8 {
                let path = dir.join(format!("{shard:02x}"));
                match fs::create_dir(&path) {
                    Ok(()) => created = true,
                    Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(error) => return Err(io_error("create", &path)(error)),
                }
            }
            if created && sync {
                sync_dir(&dir).map_err(store_error)?;
            }
        }
        Ok(())
    }

    fn remove_stale_tmp_files(&self) -> Result<(), AttachmentError> {
        let dir = self.root.join(TMP);
        let now = SystemTime::now();
        for entry in fs::read_dir(&dir).map_err(io_error("list", &dir))? {
            let entry = entry.map_err(io_error("list", &dir))?;
            let path = entry.path();
            let modified = entry.metadata().and_then(|meta| meta.modified());
            let stale =
                modified.is_ok_and(|at| now.duration_since(at).unwrap_or_default() > STALE_TMP_AGE);
            if stale && path.to_string_lossy().ends_with(TMP_SUFFIX) {
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                    Err(error) => return Err(io_error("remove", &path)(error)),
                }
            }
        }
        Ok(())
    }

    /// Fsyncs `dirs` (with the `Always` policy). Several directories are fsynced from up to
    /// [`SYNC_THREADS`] threads at once: concurrent fsyncs share the file system's journal
    /// commits, so a sweep touching 100 shard directories pays for a few commits, not 100.
    fn sync_dirs<'a>(
        &self,
        dirs: impl IntoIterator<Item = &'a Path>,
    ) -> Result<(), AttachmentError> {
        if !self.syncs() {
            return Ok(());
        }
        let dirs: Vec<&Path> = dirs.into_iter().collect();
        if dirs.len() <= 1 {
            return dirs.into_iter().try_for_each(|dir| sync_dir(dir).map_err(store_error));
        }
        let per_thread = dirs.len().div_ceil(SYNC_THREADS);
        std::thread::scope(|scope| {
            let workers: Vec<_> = dirs
                .chunks(per_thread)
                .map(|chunk| scope.spawn(move || chunk.iter().try_for_each(|dir| sync_dir(dir))))
                .collect();
            workers.into_iter().try_for_each(|worker| {
                worker.join().unwrap_or_else(|_| {
                    Err(strata_core::StoreError::Unavailable(
                        "directory fsync thread panicked".into(),
                    ))
                })
            })
        })
        .map_err(store_error)
    }

    /// Writes `parts` to a new temporary file (fdatasynced).
    fn write_tmp(&self, parts: &[&[u8]]) -> Result<PathBuf, AttachmentError> {
        let path = self.root.join(TMP).join(format!("{:032x}{TMP_SUFFIX}", fastrand::u128(..)));
        let write = || -> io::Result<()> {
            let mut file = OpenOptions::new().write(true).create_new(true).open(&path)?;
            for part in parts {
                file.write_all(part)?;
            }
            if self.syncs() { file.sync_data() } else { Ok(()) }
        };
        if let Err(error) = write() {
            let _ = fs::remove_file(&path);
            return Err(io_error("write", &path)(error));
        }
        Ok(path)
    }

    /// Publishes `parts` as `target`: written to a temporary file, then linked (or, with
    /// `replace`, renamed over an existing file), then the directory fsynced. Returns false
    /// when `target` already existed (and was not replaced): nothing was published.
    fn publish(
        &self,
        target: &Path,
        parts: &[&[u8]],
        replace: bool,
    ) -> Result<bool, AttachmentError> {
        let tmp = self.write_tmp(parts)?;
        let published = if replace {
            fs::rename(&tmp, target).map_err(io_error("rename to", target))?;
            true
        } else {
            let linked = match fs::hard_link(&tmp, target) {
                Ok(()) => Ok(true),
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(false),
                Err(error) => Err(io_error("link", target)(error)),
            };
            fs::remove_file(&tmp).map_err(io_error("remove", &tmp))?;
            linked?
        };
        self.sync_dirs(target.parent())?;
        Ok(published)
    }

    /// The stored attachment at `path`, checked against `id` (header and content hash).
    fn read_checked(&self, path: &Path, id: &AttachmentId) -> Result<Attachment, AttachmentError> {
        match fs::read(path) {
            Ok(stored) => encoding::decode(&path.display().to_string(), id, Bytes::from(stored)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                Err(AttachmentError::NotFound { id: id.clone() })
            }
            Err(error) => Err(io_error("read", path)(error)),
        }
    }

    fn put(
        &self,
        content: &Content,
        meta: &AttachmentMeta,
    ) -> Result<AttachmentInfo, AttachmentError> {
        let info = check_put(content, meta, self.options.max_bytes)?;
        let path = self.object_path(&info.id);
        let replace = match self.read_checked(&path, &info.id) {
            Ok(stored) => {
                self.sync_dirs(path.parent())?;
                return Ok(stored.info);
            }
            Err(AttachmentError::NotFound { .. }) => false,
            Err(
                AttachmentError::CorruptMetadata { .. } | AttachmentError::CorruptContent { .. },
            ) => true,
            Err(error) => return Err(error),
        };
        let header = encoding::header(&info);
        if self.publish(&path, &[&header, content.bytes()], replace)? {
            Ok(info)
        } else {
            // A concurrent put published the same bytes first.
            self.read_checked(&path, &info.id).map(|stored| stored.info)
        }
    }

    fn get(&self, id: &AttachmentId) -> Result<Attachment, AttachmentError> {
        match self.read_checked(&self.object_path(id), id) {
            Err(AttachmentError::NotFound { .. }) => self.read_checked(&self.trash_path(id), id),
            found => found,
        }
    }

    fn contains(&self, id: &AttachmentId) -> Result<bool, AttachmentError> {
        let path = self.object_path(id);
        match fs::metadata(&path) {
            Ok(_) => Ok(true),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(io_error("stat", &path)(error)),
        }
    }

    /// Applies `step` to each id; a `NotFound` skips it. Fsyncs the directories of the paths
    /// `touched` returns for the ids done, once each. Returns the ids done.
    fn each(
        &self,
        ids: &[AttachmentId],
        step: impl Fn(&AttachmentId) -> io::Result<()>,
        touched: impl Fn(&AttachmentId) -> Vec<PathBuf>,
    ) -> Result<Vec<AttachmentId>, AttachmentError> {
        let mut done = Vec::new();
        let mut dirs = BTreeSet::new();
        for id in ids {
            match step(id) {
                Ok(()) => {
                    dirs.extend(
                        touched(id)
                            .into_iter()
                            .filter_map(|path| path.parent().map(Path::to_path_buf)),
                    );
                    done.push(id.clone());
                }
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => {
                    return Err(AttachmentError::io(
                        format_args!("{} ({})", id, self.root.display()),
                        error,
                    ));
                }
            }
        }
        self.sync_dirs(dirs.iter().map(PathBuf::as_path))?;
        Ok(done)
    }

    fn delete(&self, ids: &[AttachmentId]) -> Result<Vec<AttachmentId>, AttachmentError> {
        self.each(
            ids,
            |id| fs::rename(self.object_path(id), self.trash_path(id)),
            |id| vec![self.object_path(id), self.trash_path(id)],
        )
    }

    fn restore(&self, ids: &[AttachmentId]) -> Result<Vec<AttachmentId>, AttachmentError> {
        self.each(
            ids,
            |id| {
                let trashed = self.trash_path(id);
                match fs::hard_link(&trashed, self.object_path(id)) {
                    // Stored again meanwhile: that copy stays.
                    Ok(()) => {}
                    Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(error) => return Err(error),
                }
                fs::remove_file(trashed)
            },
            |id| vec![self.object_path(id), self.trash_path(id)],
        )
    }

    fn purge(&self, ids: &[AttachmentId]) -> Result<Vec<AttachmentId>, AttachmentError> {
        self.each(ids, |id| fs::remove_file(self.trash_path(id)), |id| vec![self.trash_path(id)])
    }

    fn trashed(&self) -> Result<Vec<AttachmentId>, AttachmentError> {
        let dir = self.root.join(TRASH);
        let mut ids = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_error("list", &dir))? {
            let name = entry.map_err(io_error("list", &dir))?.file_name();
            if let Some(id) = name.to_str().and_then(|name| AttachmentId::from_hex(name).ok()) {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    fn add_reference(&self, reference: &AttachmentReference) -> Result<(), AttachmentError> {
        let path = self.reference_path(&reference.intent_id);
        if path.exists() {
            return Ok(());
        }
        self.publish(&path, &[reference.session_id.as_bytes()], false).map(drop)
    }

    fn references(&self, id: &AttachmentId) -> Result<Vec<AttachmentReference>, AttachmentError> {
        let dir = self.root.join(REFS).join(id.shard());
        let prefix = format!("{}~", id.hex());
        let mut references = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_error("list", &dir))? {
            let entry = entry.map_err(io_error("list", &dir))?;
            let name = entry.file_name();
            let Some(intent_id) = name
                .to_str()
                .filter(|name| name.starts_with(&prefix))
                .and_then(IntentId::from_file_name)
            else {
                continue;
            };
            let path = entry.path();
            let session = match fs::read(&path) {
                Ok(session) => session,
                // Removed meanwhile by a sweep.
                Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
                Err(error) => return Err(io_error("read", &path)(error)),
            };
            let session_id =
                String::from_utf8(session).map_err(|_| AttachmentError::CorruptMetadata {
                    location: path.display().to_string(),
                    detail: "the reference's session id is not UTF-8".to_owned(),
                })?;
            references.push(AttachmentReference { intent_id, session_id });
        }
        Ok(references)
    }

    fn remove_references(&self, references: &[AttachmentReference]) -> Result<(), AttachmentError> {
        let mut dirs = BTreeSet::new();
        for reference in references {
            let path = self.reference_path(&reference.intent_id);
            match fs::remove_file(&path) {
                Ok(()) => {
                    dirs.insert(path.parent().map(Path::to_path_buf).unwrap_or_default());
                }
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => return Err(io_error("remove", &path)(error)),
            }
        }
        self.sync_dirs(dirs.iter().map(PathBuf::as_path))
    }
}

#[async_trait]
impl AttachmentStore for FileAttachmentStore {
    fn durability_tier(&self) -> DurabilityTier {
        self.inner.options.sync.tier()
    }

    fn max_bytes(&self) -> u64 {
        self.inner.options.max_bytes
    }

    fn uri(&self, id: &AttachmentId) -> String {
        format!("file://{}", self.inner.object_path(id).display())
    }

    async fn put(
        &self,
        content: Content,
        meta: AttachmentMeta,
    ) -> Result<AttachmentInfo, AttachmentError> {
        self.blocking(move |files| files.put(&content, &meta)).await
    }

    async fn get(&self, id: &AttachmentId) -> Result<Attachment, AttachmentError> {
        let id = id.clone();
        self.blocking(move |files| files.get(&id)).await
    }

    async fn contains(&self, id: &AttachmentId) -> Result<bool, AttachmentError> {
        let id = id.clone();
        self.blocking(move |files| files.contains(&id)).await
    }

    async fn delete(&self, ids: &[AttachmentId]) -> Result<Vec<AttachmentId>, AttachmentError> {
        let ids = ids.to_vec();
        self.blocking(move |files| files.delete(&ids)).await
    }

    async fn restore(&self, ids: &[AttachmentId]) -> Result<Vec<AttachmentId>, AttachmentError> {
        let ids = ids.to_vec();
        self.blocking(move |files| files.restore(&ids)).await
    }

    async fn purge(&self, ids: &[AttachmentId]) -> Result<Vec<AttachmentId>, AttachmentError> {
        let ids = ids.to_vec();
        self.blocking(move |files| files.purge(&ids)).await
    }

    async fn trashed(&self) -> Result<Vec<AttachmentId>, AttachmentError> {
        self.blocking(Files::trashed).await
    }

    async fn add_reference(&self, reference: &AttachmentReference) -> Result<(), AttachmentError> {
        let reference = reference.clone();
        self.blocking(move |files| files.add_reference(&reference)).await
    }

    async fn references(
        &self,
        id: &AttachmentId,
    ) -> Result<Vec<AttachmentReference>, AttachmentError> {
        let id = id.clone();
        self.blocking(move |files| files.references(&id)).await
    }

    async fn remove_references(
        &self,
        references: &[AttachmentReference],
    ) -> Result<(), AttachmentError> {
        let references = references.to_vec();
        self.blocking(move |files| files.remove_references(&references)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupted_write_older_than_an_hour_is_removed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            FileAttachmentStore::open(dir.path(), FileAttachmentOptions::default()).unwrap();
        let tmp = dir.path().join(TMP);
        let (old, fresh) =
            (tmp.join(format!("{:032x}.tmp", 1)), tmp.join(format!("{:032x}.tmp", 2)));
        for path in [&old, &fresh] {
            fs::write(path, b"half an attachment").unwrap();
        }
        let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
        fs::File::options().write(true).open(&old).unwrap().set_modified(two_hours_ago).unwrap();
        drop(store);
        FileAttachmentStore::open(dir.path(), FileAttachmentOptions::default()).unwrap();
        assert!(!old.exists(), "the interrupted write is removed");
        assert!(fresh.exists(), "a write that may still be in progress is kept");
    }

    #[test]
    fn the_layout_is_sharded_and_reports_its_tier() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            FileAttachmentStore::open(dir.path(), FileAttachmentOptions::default()).unwrap();
        assert!(dir.path().join("objects/00").is_dir() && dir.path().join("refs/ff").is_dir());
        assert_eq!(store.durability_tier(), DurabilityTier::Durable);
        let buffered = FileAttachmentOptions::default().with_sync(SyncPolicy::OsBuffered);
        let store = FileAttachmentStore::open(dir.path(), buffered).unwrap();
        assert_eq!(store.durability_tier(), DurabilityTier::Inline);
        let id = AttachmentId::of(b"x");
        assert!(store.uri(&id).ends_with(&format!("objects/{}/{}", id.shard(), id.hex())));
    }
}
