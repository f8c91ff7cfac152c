//! Body files: `bodies.<generation>`, immutable files holding node and stamp bodies, written
//! by the compaction that made the snapshot of that generation and referenced by the
//! entries of that snapshot and of later ones (see the crate docs).
//!
//! A compaction writes only the bodies its snapshot adds (the nodes and stamps recorded since
//! the previous snapshot); entries of older bodies are copied into the new snapshot's tables
//! as they are, still naming the file that holds them. So a compaction's cost follows what
//! was written since the last one, not the session's size. To keep the number of files
//! small, a compaction also **merges** a tier of body files (see [`Rewrite::choose`]): once
//! [`MERGE_FANOUT`] files of about the same size exist, their live bodies are copied into the
//! new file, so each body is copied about once per tier (a logarithmic number of times) and
//! no merge rewrites more than the files of one tier. A **full** compaction (asked for
//! explicitly, as `vacuum` does, or when tiers alone would leave more than
//! [`MAX_BODY_FILES`] files) copies every live body into its one new file, so that removed
//! nodes give their space back.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use strata_core::StoreError;

use crate::engine::SYNC_CHUNK_BYTES;
use crate::format::{self, FILE_HEADER_LEN, FileKind, corrupt};

/// Prefix of body file names (`bodies.<generation>`, decimal).
pub const BODIES_PREFIX: &str = "bodies.";
/// Once a snapshot would reference more body files than this, its compaction is full.
pub const MAX_BODY_FILES: usize = 16;
/// Files of one tier merged at once; also the size ratio between tiers.
pub const MERGE_FANOUT: usize = 4;
/// Body files below `MERGE_FANOUT` times this size are the lowest tier.
const TIER_BASE_BYTES: u64 = 1 << 20;

/// Which bodies of the current snapshot a compaction copies into its new body file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rewrite {
    /// Every body (a full compaction).
    All,
    /// The bodies held by these files (a merge of one tier; none when empty).
    Files(Vec<u32>),
}

impl Rewrite {
    /// The rewrite of a compaction over a snapshot whose bodies are in `files` ((generation,
    /// length), ascending): everything when `full`; else the files of the lowest tier that
    /// holds [`MERGE_FANOUT`] or more (a file's tier: how many times its length reaches
    /// `MERGE_FANOUT` times the last tier's bound, from 1 MiB up); and everything when the
    /// snapshot would otherwise reference more than [`MAX_BODY_FILES`] files.
    pub fn choose(full: bool, files: &[(u32, u64)]) -> Self {
        if full {
            return Self::All;
        }
        let tier = |len: u64| {
            let (mut tier, mut bound) = (0u32, TIER_BASE_BYTES * MERGE_FANOUT as u64);
            while len >= bound {
                tier += 1;
                bound = bound.saturating_mul(MERGE_FANOUT as u64);
            }
            tier
        };
        let mut tiers: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for &(generation, len) in files {
            tiers.entry(tier(len)).or_default().push(generation);
        }
        let merged =
            tiers.into_values().find(|tier| tier.len() >= MERGE_FANOUT).unwrap_or_default();
        if files.len() - merged.len() + 1 > MAX_BODY_FILES {
            return Self::All;
        }
        Self::Files(merged)
    }

    /// True when the bodies of `file` are copied.
    pub fn copies(&self, file: u32) -> bool {
        match self {
            Self::All => true,
            Self::Files(files) => files.contains(&file),
        }
    }
}

/// The name of the body file of `generation`.
pub fn bodies_name(generation: u32) -> String {
    format!("{BODIES_PREFIX}{generation}")
}

/// The body files of a store directory, open for positioned reads, by generation.
#[derive(Debug, Default)]
pub struct BodyFiles {
    files: BTreeMap<u32, (File, u64)>,
}

impl BodyFiles {
    /// The length of body file `generation`, if it is open.
    pub fn len_of(&self, generation: u32) -> Option<u64> {
        self.files.get(&generation).map(|&(_, len)| len)
    }

    /// Opens every body file of `dir` and checks its header.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let mut files = BTreeMap::new();
        for (generation, path) in list(dir)? {
            let name = bodies_name(generation);
            let file = File::open(&path)
                .map_err(|error| StoreError::io(format!("open {}", path.display()), error))?;
            let len = file
                .metadata()
                .map_err(|error| StoreError::io(format!("stat {}", path.display()), error))?
                .len();
            let header = format::read_at(&file, &name, 0, FILE_HEADER_LEN.min(len as usize))?;
            format::check_file_header(&name, &header, FileKind::Bodies)?;
            files.insert(generation, (file, len));
        }
        Ok(Self { files })
    }

    /// A checker of body spans, for a table's entries (consecutive entries mostly name one
    /// file, so it looks a file up only when the generation changes). It also collects the
    /// generations it was asked about.
    pub fn spans(&self) -> Spans<'_> {
        Spans { files: self, current: None, used: Vec::new() }
    }

    /// `len` bytes at `offset` of body file `generation` (one positioned read). Inside
    /// [`from_page_cache`], the read never waits for the disk.
    pub fn read(&self, generation: u32, offset: u64, len: usize) -> Result<Vec<u8>, StoreError> {
        let name = bodies_name(generation);
        let (file, _) = self
            .files
            .get(&generation)
            .ok_or_else(|| corrupt(&name, 0, "a snapshot entry names a missing body file"))?;
        if PAGE_CACHE_ONLY.get() {
            return read_cached(file, offset, len).ok_or_else(|| {
                PAGE_CACHE_MISSED.set(true);
                StoreError::Unavailable(format!("{name} at {offset} is not in the page cache"))
            });
        }
        format::read_at(file, &name, offset, len)
    }
}

thread_local! {
    /// True while [`from_page_cache`] runs on this thread.
    static PAGE_CACHE_ONLY: Cell<bool> = const { Cell::new(false) };
    /// Set when a body read inside [`from_page_cache`] would have waited for the disk.
    static PAGE_CACHE_MISSED: Cell<bool> = const { Cell::new(false) };
}

/// Runs `read` (a read of the image) with body reads served only from the page cache, never
/// waiting for the disk: `None` when one of them would have had to wait, for the caller to
/// run `read` again where blocking is allowed (tokio's blocking pool). This is what keeps a
/// `load_node` of a snapshot node in the low microseconds (one `preadv2` of cached pages in
/// the caller's task, against a hand-off to the blocking pool and back) without ever
/// blocking an async worker on the disk.
pub fn from_page_cache<R>(read: impl FnOnce() -> R) -> Option<R> {
    /// Leaves the thread in its normal mode however `read` ends (a panic included).
    struct Restore;
    impl Drop for Restore {
        fn drop(&mut self) {
            PAGE_CACHE_ONLY.set(false);
        }
    }
    PAGE_CACHE_ONLY.set(true);
    PAGE_CACHE_MISSED.set(false);
    let restore = Restore;
    let answer = read();
    drop(restore);
    (!PAGE_CACHE_MISSED.replace(false)).then_some(answer)
}

/// `len` bytes at `offset` of `file` if the page cache holds all of them: one `preadv2` with
/// `RWF_NOWAIT`, which returns `EAGAIN` (or a short read) instead of waiting for the disk.
#[cfg(target_os = "linux")]
fn read_cached(file: &File, offset: u64, len: usize) -> Option<Vec<u8>> {
    use rustix::io::{IoSliceMut, ReadWriteFlags, preadv2};
    let mut buffer = vec![0u8; len];
    let read = preadv2(file, &mut [IoSliceMut::new(&mut buffer)], offset, ReadWriteFlags::NOWAIT);
    (read.ok()? == len).then_some(buffer)
}

/// Elsewhere there is no such read: every body read goes to the blocking pool.
#[cfg(not(target_os = "linux"))]
fn read_cached(_file: &File, _offset: u64, _len: usize) -> Option<Vec<u8>> {
    None
}

/// Checks that bodies lie inside body files; see [`BodyFiles::spans`].
pub struct Spans<'a> {
    files: &'a BodyFiles,
    /// The generation looked up last and its file length (`None` when it is missing).
    current: Option<(u32, Option<u64>)>,
    used: Vec<u32>,
}

impl Spans<'_> {
    /// Whether `len` bytes at `offset` of body file `generation` exist (past its header).
    pub fn holds(&mut self, generation: u32, offset: u64, len: u32) -> bool {
        let file_len = match self.current {
            Some((current, file_len)) if current == generation => file_len,
            _ => {
                let file_len = self.files.files.get(&generation).map(|(_, len)| *len);
                self.current = Some((generation, file_len));
                if !self.used.contains(&generation) {
                    self.used.push(generation);
                }
                file_len
            }
        };
        file_len.is_some_and(|file_len| {
            offset >= FILE_HEADER_LEN as u64
                && offset.checked_add(u64::from(len)).is_some_and(|end| end <= file_len)
        })
    }

    /// The generations asked about, ascending.
    pub fn used(mut self) -> Vec<u32> {
        self.used.sort_unstable();
        self.used
    }
}

/// The body files present in `dir`: (generation, path), ascending.
fn list(dir: &Path) -> Result<Vec<(u32, PathBuf)>, StoreError> {
    let listing = |error| StoreError::io(format!("list {}", dir.display()), error);
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(listing)? {
        let entry = entry.map_err(listing)?;
        let name = entry.file_name();
        if let Some(generation) = name
            .to_str()
            .and_then(|name| name.strip_prefix(BODIES_PREFIX))
            .and_then(|generation| generation.parse().ok())
        {
            found.push((generation, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// A body file being written by a compaction: bodies are appended in order, then the file is
/// made durable and renamed into place.
pub struct NewBodies {
    generation: u32,
    tmp: PathBuf,
    target: PathBuf,
    out: BufWriter<File>,
    len: u64,
    /// Bytes written since the last `fdatasync`, when syncing.
    unsynced: Option<usize>,
}

impl NewBodies {
    /// Starts `bodies.<generation>` in `dir` (as a temporary file); with `sync`, it is
    /// `fdatasync`ed after every MiB on the way, so that it never holds much dirty data.
    pub fn create(dir: &Path, generation: u32, sync: bool) -> Result<Self, StoreError> {
        let target = dir.join(bodies_name(generation));
        let tmp = dir.join(format!("{}.tmp", bodies_name(generation)));
        let file = File::create(&tmp)
            .map_err(|error| StoreError::io(format!("create {}", tmp.display()), error))?;
        let unsynced = sync.then_some(0);
        let mut new = Self { generation, tmp, target, out: BufWriter::new(file), len: 0, unsynced };
        new.push(&format::file_header(FileKind::Bodies))?;
        Ok(new)
    }

    /// The generation this file gets.
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// Appends `body`; returns its offset in the file.
    pub fn push(&mut self, body: &[u8]) -> Result<u64, StoreError> {
        let offset = self.len;
        let failed = |error| StoreError::io(format!("write {}", self.tmp.display()), error);
        self.out.write_all(body).map_err(failed)?;
        self.len += body.len() as u64;
        if let Some(unsynced) = &mut self.unsynced {
            *unsynced += body.len();
            if *unsynced >= SYNC_CHUNK_BYTES {
                self.out.flush().map_err(failed)?;
                self.out.get_ref().sync_data().map_err(failed)?;
                *unsynced = 0;
            }
        }
        Ok(offset)
    }

    /// Flushes, fsyncs (with `sync`) and renames the file into place, then fsyncs the
    /// directory: its bodies are durable before a snapshot names them.
    pub fn finish(self, dir: &Path, sync: bool) -> Result<(), StoreError> {
        let context = |step: &str| format!("{step} {}", self.tmp.display());
        let file = self
            .out
            .into_inner()
            .map_err(|error| StoreError::io(context("write"), error.into_error()))?;
        if sync {
            file.sync_all().map_err(|error| StoreError::io(context("fsync"), error))?;
        }
        drop(file);
        fs::rename(&self.tmp, &self.target)
            .map_err(|error| StoreError::io(context("rename"), error))?;
        if sync {
            crate::engine::sync_dir(dir)?;
        }
        Ok(())
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// Drops `path`'s clean pages from the page cache.
    fn evict(path: &Path) {
        let file = File::open(path).unwrap();
        rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed).unwrap();
    }

    #[test]
    fn page_cache_reads_answer_cached_bodies_and_give_way_on_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let mut new = NewBodies::create(dir.path(), 7, true).unwrap();
        let body = vec![42u8; 64 << 10];
        let offset = new.push(&body).unwrap();
        new.finish(dir.path(), true).unwrap();
        let files = BodyFiles::open(dir.path()).unwrap();
        let read = || files.read(7, offset, body.len()).map_err(|error| error.to_string());

        evict(&dir.path().join(bodies_name(7)));
        assert_eq!(from_page_cache(read), None, "evicted pages must not be waited for");
        assert_eq!(read().unwrap(), body, "a normal read waits for the disk");
        assert_eq!(from_page_cache(read), Some(Ok(body.clone())), "now cached");
        assert!(!PAGE_CACHE_ONLY.get(), "the thread is back in its normal mode");
        assert_eq!(read().unwrap(), body);
    }
}
