//! Corruption tests over a real store's files: truncate at, and flip bytes around, every
//! record boundary of the log; flip every byte of a snapshot (its graph section, its stamp
//! section, its state record) and cut it at every length. Each open must yield exactly a prefix of the acknowledged history (a torn
//! tail) or the corrupt-data error naming the file and the damaged record's offset; never a
//! panic, never a skipped record.

mod common;

use std::fs;
use std::path::Path;

use strata_core::{RuntimePersistence, SessionReadScope, StoreError};
use strata_file::format::{FILE_HEADER_LEN, FRAME_HEADER_LEN, frame_at};
use strata_file::graph::{ENTRY_LEN, ORDER_LEN, SECTION_HEADER_LEN};
use strata_file::{FileStore, FileStoreOptions, bodies, stamps};

use common::*;

const COMMITS: u64 = 12;

/// A store holding `COMMITS` commits in its log (no snapshot), and the bytes of that log.
fn pristine(dir: &Path) -> Vec<u8> {
    run(async {
        let store = FileStore::open(dir, FileStoreOptions::default()).unwrap();
        for n in 1..=COMMITS {
            store.commit_runtime_state(nth_commit("s", n, 40)).await.unwrap();
        }
    });
    let log = fs::read(dir.join("log.0")).unwrap();
    let end = *boundaries(&log).last().unwrap();
    assert!(log[end..].iter().all(|&b| b == 0), "the log's tail is preallocated zeros");
    log
}

/// Offsets of every record of `log`, plus the end of the last one (zeros follow).
fn boundaries(log: &[u8]) -> Vec<usize> {
    let mut offsets = vec![FILE_HEADER_LEN];
    while let Ok((_, next)) = frame_at(log, *offsets.last().unwrap()) {
        offsets.push(next);
    }
    offsets
}

/// Opens `dir` with `log` as its log: `Ok(revision)` (after checking the history is whole)
/// or the error.
fn open_with(dir: &Path, log: &[u8]) -> Result<u64, StoreError> {
    fs::write(dir.join("log.0"), log).unwrap();
    run(async {
        let store = FileStore::open(dir, FileStoreOptions::default())?;
        Ok(check_linear_history(&store).await)
    })
}

#[test]
fn truncation_anywhere_near_a_boundary_keeps_exactly_the_whole_records() {
    let source = tempfile::tempdir().unwrap();
    let log = pristine(source.path());
    let bounds = boundaries(&log);
    let scratch = tempfile::tempdir().unwrap();
    for (index, &boundary) in bounds.iter().enumerate() {
        for cut in [boundary.saturating_sub(1), boundary, boundary + 1, boundary + FRAME_HEADER_LEN]
        {
            if cut < FILE_HEADER_LEN {
                continue;
            }
            let whole = bounds.iter().filter(|&&b| b <= cut).count() as u64 - 1;
            let revision = open_with(scratch.path(), &log[..cut]).unwrap();
            assert_eq!(revision, whole, "cut at {cut} (boundary {index})");
        }
    }
}

#[test]
fn flipped_bytes_give_a_prefix_or_corrupt_data_at_the_damaged_record() {
    let source = tempfile::tempdir().unwrap();
    let log = pristine(source.path());
    let bounds = boundaries(&log);
    let scratch = tempfile::tempdir().unwrap();
    let last_record = bounds[bounds.len() - 2];
    for &boundary in &bounds[..bounds.len() - 1] {
        for position in [boundary, boundary + 3, boundary + 8, boundary + 12, boundary + 17] {
            let mut damaged = log.clone();
            damaged[position] ^= 0x5a;
            if boundary > FILE_HEADER_LEN {
                let before = boundary - 1; // last byte of the previous record
                let mut other = log.clone();
                other[before] ^= 0x01;
                check_flip(scratch.path(), &other, &bounds, before, last_record);
            }
            check_flip(scratch.path(), &damaged, &bounds, position, last_record);
        }
    }
    // Garbage in the preallocated zeros after the last record is a torn tail: all kept.
    let end = *bounds.last().unwrap();
    for position in [end, end + 1, end + 100] {
        let mut damaged = log.clone();
        damaged[position] = 0xff;
        assert_eq!(open_with(scratch.path(), &damaged).unwrap(), COMMITS, "flip at {position}");
    }
}

fn check_flip(dir: &Path, log: &[u8], bounds: &[usize], position: usize, last_record: usize) {
    let record = *bounds.iter().rfind(|&&b| b <= position).unwrap();
    let index = bounds.iter().position(|&b| b == record).unwrap() as u64;
    match open_with(dir, log) {
        // Damage in the final record is indistinguishable from a torn append: that record
        // (and only it) is discarded.
        Ok(revision) => {
            assert_eq!(record, last_record, "flip at {position} silently accepted");
            assert_eq!(revision, index, "flip at {position}");
        }
        Err(StoreError::CorruptData { location, .. }) => {
            assert_ne!(record, last_record, "flip at {position}");
            assert_eq!(location, format!("log.0:{record}"), "flip at {position}");
        }
        Err(other) => panic!("flip at {position}: unexpected {other}"),
    }
}

fn u64_at(bytes: &[u8], at: usize) -> usize {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize
}

fn u32_at(bytes: &[u8], at: usize) -> usize {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize
}

/// A body a snapshot points at: its body file, `start..end` in that file, and what it is.
#[derive(Debug)]
struct Body {
    file: String,
    start: usize,
    end: usize,
    /// `Ok(node number)` for a node, `Err(stamp key)` for a stamp.
    holds: Result<u64, u64>,
}

/// Every body the snapshot's graph and stamp sections point at.
fn snapshot_bodies(snapshot: &[u8]) -> Vec<Body> {
    let body = |entry: usize, holds| Body {
        file: bodies::bodies_name(u32_at(snapshot, entry) as u32),
        start: u64_at(snapshot, entry + 4),
        end: u64_at(snapshot, entry + 4) + u32_at(snapshot, entry + 12),
        holds,
    };
    let graph = FILE_HEADER_LEN;
    let count = u64_at(snapshot, graph + 8);
    let ids_len = u64_at(snapshot, graph + 16);
    let entries = graph + SECTION_HEADER_LEN;
    // Graph entries are in insertion order: entry i holds node n<i+1>.
    let mut found: Vec<Body> =
        (0..count).map(|i| body(entries + i * ENTRY_LEN, Ok(i as u64 + 1))).collect();
    let stamps_at = entries + count * (ENTRY_LEN + ORDER_LEN) + ids_len;
    let stamp_count = u64_at(snapshot, stamps_at + 8);
    let stamp_entries = stamps_at + stamps::SECTION_HEADER_LEN;
    found.extend((0..stamp_count).map(|i| {
        let entry = stamp_entries + i * stamps::ENTRY_LEN;
        body(entry + 8, Err(u64_at(snapshot, entry) as u64))
    }));
    found
}

/// A store of `COMMITS` commits, compacted (snapshot and one body file), copied to a scratch
/// directory: (source, scratch, snapshot bytes).
fn compacted() -> (tempfile::TempDir, tempfile::TempDir, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    pristine(dir.path());
    FileStore::open(dir.path(), FileStoreOptions::default()).unwrap().compact().unwrap();
    let snapshot = fs::read(dir.path().join("snapshot")).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    for entry in fs::read_dir(dir.path()).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), scratch.path().join(entry.file_name())).unwrap();
    }
    (dir, scratch, snapshot)
}

fn open_error(dir: &Path) -> StoreError {
    FileStore::open(dir, FileStoreOptions::default()).unwrap_err()
}

#[test]
fn damaged_snapshots_and_headers_are_corrupt_data() {
    let (_source, scratch, snapshot) = compacted();
    let path = scratch.path().join("snapshot");
    // The snapshot holds tables and state, all checked at open: every flip is refused.
    for position in 0..snapshot.len() {
        let mut damaged = snapshot.clone();
        damaged[position] ^= 0x10;
        fs::write(&path, &damaged).unwrap();
        match open_error(scratch.path()) {
            // A changed format version reads as a file of another version.
            StoreError::UnsupportedRecordSchemaVersion { .. } if (8..12).contains(&position) => {}
            StoreError::CorruptData { location, .. } => {
                assert!(location.starts_with("snapshot:"), "flip at {position}: {location}")
            }
            error => panic!("snapshot flip at {position}: {error}"),
        }
    }
    for len in 0..snapshot.len() {
        fs::write(&path, &snapshot[..len]).unwrap();
        let error = open_error(scratch.path());
        assert!(matches!(error, StoreError::CorruptData { .. }), "cut at {len}: {error}");
    }
    fs::write(&path, &snapshot).unwrap();
    let store = FileStore::open(scratch.path(), FileStoreOptions::default()).unwrap();
    assert_eq!(run(check_linear_history(&store)), COMMITS);
}

#[test]
fn damaged_node_and_stamp_bodies_are_reported_by_the_reads_that_need_them() {
    let (_source, scratch, snapshot) = compacted();
    let bodies = snapshot_bodies(&snapshot);
    assert_eq!(bodies.len() as u64, 2 * COMMITS, "a node and a stamp per commit");
    let file = &bodies[0].file;
    assert!(bodies.iter().all(|body| body.file == *file), "one body file after a compaction");
    let path = scratch.path().join(file);
    let pristine_bodies = fs::read(&path).unwrap();
    let turn_of_key = |key: u64| {
        (1..=COMMITS).find(|&n| stamps::stamp_key("s", &format!("t{n}")) == key).unwrap()
    };
    for position in 0..pristine_bodies.len() {
        let mut damaged = pristine_bodies.clone();
        damaged[position] ^= 0x10;
        fs::write(&path, &damaged).unwrap();
        let opened = FileStore::open(scratch.path(), FileStoreOptions::default());
        let Some(body) = bodies.iter().find(|body| (body.start..body.end).contains(&position))
        else {
            // The file header, checked at open.
            assert!(position < FILE_HEADER_LEN, "flip at {position} outside every body");
            assert!(opened.is_err(), "flip in the body file header at {position} accepted");
            continue;
        };
        // Bodies are read (and checked) only when a read needs them: open succeeds, and
        // exactly the reads of the damaged body fail, naming it.
        let store = opened.unwrap();
        let expected = format!("{}:{}", body.file, body.start);
        let errors = run(async {
            match body.holds {
                Ok(node) => {
                    let node = format!("n{node}");
                    vec![
                        store.load_node(&node).await.unwrap_err(),
                        store.load_session(SessionReadScope::FullGraph).await.unwrap_err(),
                    ]
                }
                Err(key) => {
                    assert_eq!(check_linear_history(&store).await, COMMITS, "flip at {position}");
                    let retry = nth_commit("s", turn_of_key(key), 40);
                    vec![store.commit_runtime_state(retry).await.unwrap_err()]
                }
            }
        });
        for error in errors {
            let StoreError::CorruptData { location, .. } = &error else {
                panic!("body flip at {position}: {error}")
            };
            assert_eq!(*location, expected, "flip at {position}");
        }
    }
    // A body file cut short leaves entries pointing past its end: refused at open.
    for len in [0, FILE_HEADER_LEN, pristine_bodies.len() / 2, pristine_bodies.len() - 1] {
        fs::write(&path, &pristine_bodies[..len]).unwrap();
        let error = open_error(scratch.path());
        assert!(matches!(error, StoreError::CorruptData { .. }), "cut at {len}: {error}");
    }
}
