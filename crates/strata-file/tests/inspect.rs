//! The read-only view and the verifier (`strata_file::inspect`) over real stores: what they
//! report of a whole store, that they change nothing (not even where an open would), and that
//! damage in a log record, the snapshot or a body file is named by file and offset.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use strata_core::{RuntimePersistence, SessionReadScope, StoreError};
use strata_file::format::{FILE_HEADER_LEN, FRAME_HEADER_LEN, SECTION_HEADER_LEN, frame_at};
use strata_file::inspect::{FileRole, Holder, Problem, StoreView, TornTail, holds_store, verify};
use strata_file::{FileStore, FileStoreOptions};

use common::*;

/// Commits written with a small compaction threshold, then with the default one (so that
/// the live log segment keeps several records).
const COMPACTED: u64 = 60;
const LOGGED: u64 = 6;
const COMMITS: u64 = COMPACTED + LOGGED;

/// A closed store of `COMMITS` commits and a tombstone: a snapshot, body files, and a live
/// log segment holding at least `LOGGED` records.
fn build(dir: &Path) {
    run(async {
        let small = FileStoreOptions::default().with_compact_min_log_bytes(8 << 10);
        let store = FileStore::open(dir, small).unwrap();
        for n in 1..=COMPACTED {
            store.commit_runtime_state(nth_commit("s", n, 300)).await.unwrap();
        }
        drop(store);
        let store = FileStore::open(dir, FileStoreOptions::default()).unwrap();
        for n in COMPACTED + 1..=COMMITS {
            store.commit_runtime_state(nth_commit("s", n, 300)).await.unwrap();
        }
        store.tombstone_nodes(&["n2".to_owned()]).await.unwrap();
    });
}

/// Every file of `dir`: name → (bytes, modification time).
fn contents(dir: &Path) -> BTreeMap<String, (Vec<u8>, std::time::SystemTime)> {
    fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let modified = entry.metadata().unwrap().modified().unwrap();
            let name = entry.file_name().into_string().unwrap();
            (name, (fs::read(entry.path()).unwrap(), modified))
        })
        .collect()
}

fn files_with(dir: &Path, role: FileRole) -> Vec<String> {
    let view = StoreView::open(dir).unwrap();
    view.files().iter().filter(|file| file.role == role).map(|file| file.name.clone()).collect()
}

/// The live log segment: the last one holding records (an empty spare may follow it).
fn live_segment(dir: &Path) -> String {
    let holds_records =
        |name: &String| !record_offsets(&fs::read(dir.join(name)).unwrap()).is_empty();
    files_with(dir, FileRole::Log).into_iter().rev().find(holds_records).unwrap()
}

/// Offsets of the records of log segment `bytes`.
fn record_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut at = FILE_HEADER_LEN;
    while let Ok((_, next)) = frame_at(bytes, at) {
        offsets.push(at);
        at = next;
    }
    offsets
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn flip(path: &Path, offset: usize) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset] ^= 0x20;
    fs::write(path, bytes).unwrap();
}

#[test]
fn a_view_reads_what_the_store_holds_and_verify_finds_it_whole() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    assert!(holds_store(dir.path()));
    let view = StoreView::open(dir.path()).unwrap();
    let head = view.state().head().expect("a head");
    assert_eq!(head.revision, COMMITS);
    assert_eq!(head.live_node_count, COMMITS - 1, "one node is tombstoned");
    let path = view.state().load_session(&SessionReadScope::ActivePath { leaf_node_id: None });
    assert_eq!(path.unwrap().unwrap().graph.nodes.len() as u64, COMMITS - 2, "n2 hides n1");
    assert_eq!(view.holder(), Holder::Nobody);
    assert_eq!(view.torn_tail(), None);
    let roles: Vec<FileRole> = view.files().iter().map(|file| file.role).collect();
    for role in [FileRole::Lock, FileRole::Snapshot, FileRole::Log, FileRole::Bodies] {
        assert!(roles.contains(&role), "{role:?} in {:?}", view.files());
    }

    let verification = verify(dir.path()).unwrap();
    assert_eq!(verification.problems, Vec::<Problem>::new());
    assert!(verification.records > 0, "the live segment has records");
    assert!(verification.node_bodies > 0 && verification.stamp_bodies > 0);
    assert_eq!(verification.blobs, COMMITS / 3, "a checkpoint blob every third commit");
    assert_eq!(verification.view.unwrap().state().head().unwrap().revision, COMMITS);
}

#[test]
fn viewing_and_verifying_write_nothing_even_where_an_open_would() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    // What an open cleans up: a temporary file, and a torn tail (half a record's header after
    // the last record of the live segment).
    fs::write(dir.path().join("snapshot.tmp"), b"an interrupted compaction").unwrap();
    let live = live_segment(dir.path());
    let live_path = dir.path().join(&live);
    let mut log = fs::read(&live_path).unwrap();
    let last = *record_offsets(&log).last().unwrap();
    let end = frame_at(&log, last).unwrap().1;
    log[end..end + FRAME_HEADER_LEN / 2].copy_from_slice(&[7; FRAME_HEADER_LEN / 2]);
    fs::write(&live_path, &log).unwrap();
    let before = contents(dir.path());

    let view = StoreView::open(dir.path()).unwrap();
    let torn = TornTail { file: live.clone(), offset: end as u64, len: (log.len() - end) as u64 };
    assert_eq!(view.torn_tail(), Some(&torn));
    assert!(view.files().iter().any(|file| file.role == FileRole::Temporary));
    let verification = verify(dir.path()).unwrap();
    assert!(verification.is_ok(), "a torn tail is not a problem: {:?}", verification.problems);
    assert_eq!(verification.torn_tail, Some(torn));
    assert_eq!(contents(dir.path()), before, "nothing was changed");

    // An open does clean up (so the check above could have failed).
    drop(FileStore::open(dir.path(), FileStoreOptions::default()).unwrap());
    assert!(!dir.path().join("snapshot.tmp").exists());
    assert_eq!(fs::metadata(&live_path).unwrap().len(), end as u64, "the torn tail was cut");
}

#[test]
fn verify_names_the_file_and_offset_of_damage_in_a_log_record_the_snapshot_and_a_body() {
    let pristine = tempfile::tempdir().unwrap();
    build(pristine.path());
    let damaged = |damage: &dyn Fn(&Path)| {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(pristine.path(), copy.path());
        damage(copy.path());
        verify(copy.path()).unwrap()
    };

    // Two log records, each in the middle of the live segment: both are named.
    let live = live_segment(pristine.path());
    let records = record_offsets(&fs::read(pristine.path().join(&live)).unwrap());
    assert!(records.len() >= 4, "{records:?}");
    let found = damaged(&|dir| {
        flip(&dir.join(&live), records[0] + FRAME_HEADER_LEN + 2);
        flip(&dir.join(&live), records[2] + 3);
    });
    let locations: Vec<&str> = found.problems.iter().map(|p| p.location.as_str()).collect();
    assert_eq!(
        locations,
        [format!("{live}:{}", records[0]), format!("{live}:{}", records[2])],
        "{:?}",
        found.problems
    );
    assert!(found.problems[0].detail.starts_with("record payload checksum mismatch"));
    assert!(found.view.is_none(), "an open would fail, so there is no image");

    // The snapshot's graph table.
    let table = FILE_HEADER_LEN + SECTION_HEADER_LEN;
    let found = damaged(&|dir| flip(&dir.join("snapshot"), table + 5));
    assert_eq!(
        found.problems,
        [Problem {
            location: format!("snapshot:{table}"),
            detail: "graph table checksum mismatch".into()
        }]
    );

    // A node body in a body file: an open would not notice (it reads no body), verify does.
    let bodies = files_with(pristine.path(), FileRole::Bodies);
    let first = bodies.first().unwrap().clone();
    let found = damaged(&|dir| flip(&dir.join(&first), FILE_HEADER_LEN + 4));
    assert_eq!(
        found.problems,
        [Problem {
            location: format!("{first}:{FILE_HEADER_LEN}"),
            detail: "body checksum mismatch".into()
        }]
    );
    assert!(found.view.is_some(), "the store still opens");
}

#[test]
fn a_directory_without_a_store_is_invalid_input() {
    let dir = tempfile::tempdir().unwrap();
    assert!(!holds_store(dir.path()));
    assert!(matches!(StoreView::open(dir.path()), Err(StoreError::InvalidInput(_))));
    assert!(matches!(verify(dir.path()), Err(StoreError::InvalidInput(_))));
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "nothing was created");
}
