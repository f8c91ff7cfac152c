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
use strata_file::{FileStore, FileStoreOptions, stamps};

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

/// The node bodies of a snapshot's graph section (`(start, end)` file offsets, in order), and
/// where the section ends.
fn snapshot_bodies(snapshot: &[u8]) -> (Vec<(usize, usize)>, usize) {
    let section = FILE_HEADER_LEN;
    let count = u64_at(snapshot, section + 8);
    let ids_len = u64_at(snapshot, section + 16);
    let bodies_len = u64_at(snapshot, section + 24);
    let entries = section + SECTION_HEADER_LEN;
    let bodies = entries + count * (ENTRY_LEN + ORDER_LEN) + ids_len;
    let ranges = (0..count)
        .map(|index| {
            let entry = entries + index * ENTRY_LEN;
            let offset = u64_at(snapshot, entry);
            (bodies + offset, bodies + offset + u32_at(snapshot, entry + 8))
        })
        .collect();
    (ranges, bodies + bodies_len)
}

/// The stamp bodies of the stamp section starting at `section`: `(start, end, key)`, in
/// table order.
fn snapshot_stamps(snapshot: &[u8], section: usize) -> Vec<(usize, usize, u64)> {
    let count = u64_at(snapshot, section + 8);
    let entries = section + stamps::SECTION_HEADER_LEN;
    let bodies = entries + count * stamps::ENTRY_LEN;
    (0..count)
        .map(|index| {
            let entry = entries + index * stamps::ENTRY_LEN;
            let offset = u64_at(snapshot, entry + 8);
            let len = u32_at(snapshot, entry + 16);
            (bodies + offset, bodies + offset + len, u64_at(snapshot, entry) as u64)
        })
        .collect()
}

#[test]
fn damaged_snapshots_and_headers_are_corrupt_data() {
    let dir = tempfile::tempdir().unwrap();
    pristine(dir.path());
    run(async { FileStore::open(dir.path(), FileStoreOptions::default()).unwrap().compact() })
        .unwrap();
    let snapshot = fs::read(dir.path().join("snapshot")).unwrap();
    let (bodies, graph_end) = snapshot_bodies(&snapshot);
    assert_eq!(bodies.len() as u64, COMMITS);
    let stamp_bodies = snapshot_stamps(&snapshot, graph_end);
    assert_eq!(stamp_bodies.len() as u64, COMMITS);
    let turn_of_key = |key: u64| {
        (1..=COMMITS).find(|&n| stamps::stamp_key("s", &format!("t{n}")) == key).unwrap()
    };
    let scratch = tempfile::tempdir().unwrap();
    for entry in fs::read_dir(dir.path()).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), scratch.path().join(entry.file_name())).unwrap();
    }
    for position in 0..snapshot.len() {
        let mut damaged = snapshot.clone();
        damaged[position] ^= 0x10;
        fs::write(scratch.path().join("snapshot"), &damaged).unwrap();
        let opened = FileStore::open(scratch.path(), FileStoreOptions::default());
        let body = bodies.iter().position(|&(start, end)| (start..end).contains(&position));
        let stamp = stamp_bodies.iter().find(|&&(start, end, _)| (start..end).contains(&position));
        if let (Ok(store), Some(&(start, _, key))) = (&opened, stamp) {
            // Stamp bodies are read (and checked) only by a retry of their turn: open
            // succeeds, reads succeed, and that retry fails, naming the stamp's body.
            let turn = turn_of_key(key);
            let error = run(async {
                assert_eq!(check_linear_history(store).await, COMMITS, "flip at {position}");
                store.commit_runtime_state(nth_commit("s", turn, 40)).await.unwrap_err()
            });
            let StoreError::CorruptData { location, .. } = &error else {
                panic!("stamp flip at {position}: {error}")
            };
            assert_eq!(*location, format!("snapshot:{start}"), "flip at {position}");
            continue;
        }
        let error = match (opened, body) {
            // Node bodies are read (and checked) only when a read returns them: open succeeds,
            // and every read of the damaged node fails, naming its body.
            (Ok(store), Some(index)) => {
                let node = format!("n{}", index + 1);
                let (by_id, full) = run(async {
                    (
                        store.load_node(&node).await.unwrap_err(),
                        store.load_session(SessionReadScope::FullGraph).await.unwrap_err(),
                    )
                });
                assert_eq!(by_id, full, "flip at {position}");
                let StoreError::CorruptData { location, .. } = &full else {
                    panic!("flip at {position}: {full}")
                };
                assert_eq!(*location, format!("snapshot:{}", bodies[index].0));
                full
            }
            (Ok(_), None) => panic!("snapshot flip at {position} accepted at open"),
            // A changed format version reads as a file of another version.
            (Err(StoreError::UnsupportedRecordSchemaVersion { .. }), _)
                if (8..12).contains(&position) =>
            {
                continue;
            }
            (Err(error), _) => error,
        };
        let StoreError::CorruptData { location, .. } = error else {
            panic!("snapshot flip at {position}: {error}")
        };
        assert!(location.starts_with("snapshot:"), "{location}");
    }
    for len in 0..snapshot.len() {
        fs::write(scratch.path().join("snapshot"), &snapshot[..len]).unwrap();
        let error = FileStore::open(scratch.path(), FileStoreOptions::default()).unwrap_err();
        assert!(matches!(error, StoreError::CorruptData { .. }), "cut at {len}: {error}");
    }
    fs::write(scratch.path().join("snapshot"), &snapshot).unwrap();
    let revision = run(async {
        check_linear_history(&FileStore::open(scratch.path(), FileStoreOptions::default()).unwrap())
            .await
    });
    assert_eq!(revision, COMMITS);
}
