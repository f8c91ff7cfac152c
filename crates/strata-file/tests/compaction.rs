//! Compaction across snapshots: a stamped retry of a very old turn, folded into snapshots by
//! several compactions, is still answered from its stored result (and a different hash for it
//! is still a conflict), live and after a reopen; a compaction triggered by the log's size
//! writes only the bodies added since the last one, and an explicit one rewrites them all.

mod common;

use strata_core::*;
use strata_file::{FileStore, FileStoreOptions};

use common::*;

/// Tiny segments: a compaction every few commits.
fn options() -> FileStoreOptions {
    FileStoreOptions::default().with_compact_min_log_bytes(2 << 10)
}

fn first_log_gen(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|entry| {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            name.strip_prefix("log.").and_then(|generation| generation.parse().ok())
        })
        .min()
        .unwrap()
}

#[test]
fn a_stamped_retry_of_a_very_old_turn_returns_its_stored_result() {
    let dir = tempfile::tempdir().unwrap();
    let first = run(async {
        let store = FileStore::open(dir.path(), options()).unwrap();
        let first = store.commit_runtime_state(nth_commit("s", 1, 400)).await.unwrap();
        for n in 2..=120 {
            store.commit_runtime_state(nth_commit("s", n, 400)).await.unwrap();
            if n % 20 == 0 {
                store.compact().unwrap();
            }
        }
        first
    });
    assert!(first_log_gen(dir.path()) >= 6, "several compactions ran");
    for reopened in [false, true] {
        let store = FileStore::open(dir.path(), options()).unwrap();
        run(async {
            // The retry carries a stale expected revision: the stamp answers before the CAS.
            let retried = store.commit_runtime_state(nth_commit("s", 1, 400)).await.unwrap();
            assert_eq!(retried, first, "reopened: {reopened}");
            let mut other = nth_commit("s", 1, 400);
            other.turn_commit.as_mut().unwrap().turn_commit_hash = "another hash".into();
            let conflict = store.commit_runtime_state(other).await.unwrap_err();
            assert!(matches!(conflict, StoreError::RuntimeTurnCommitConflict { .. }), "{conflict}");
            assert_eq!(check_linear_history(&store).await, 120, "nothing applied twice");
        });
        drop(store);
    }
}

fn body_files(dir: &std::path::Path) -> Vec<(String, u64)> {
    let mut files: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap())
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("bodies."))
        .map(|entry| {
            (entry.file_name().to_string_lossy().into_owned(), entry.metadata().unwrap().len())
        })
        .collect();
    files.sort();
    files
}

#[test]
fn size_triggered_compactions_write_only_new_bodies_and_explicit_ones_rewrite_all() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path(), options()).unwrap();
    run(async {
        // 40 bodies of 110 kB: a file a tier above the small ones that follow, which tiered
        // merges therefore leave alone.
        for n in 1..=40 {
            store.commit_runtime_state(nth_commit("s", n, 110_000)).await.unwrap();
        }
    });
    store.compact().unwrap();
    let first = body_files(dir.path());
    assert_eq!(first.len(), 1, "an explicit compaction leaves one body file: {first:?}");
    run(async {
        for n in 41..=50 {
            store.commit_runtime_state(nth_commit("s", n, 4000)).await.unwrap();
        }
    });
    drop(store); // waits for the compactions under way
    let files = body_files(dir.path());
    assert!(files.len() > 1, "size-triggered compactions added body files: {files:?}");
    assert_eq!(files[0], first[0], "the older bodies stay where they are");
    let added: u64 = files[1..].iter().map(|(_, len)| len).sum();
    assert!(added < first[0].1 / 2, "only the 10 new bodies were written: {files:?}");
    let store = FileStore::open(dir.path(), options()).unwrap();
    assert_eq!(run(check_linear_history(&store)), 50);
    store.compact().unwrap();
    assert_eq!(body_files(dir.path()).len(), 1, "an explicit compaction rewrites every body");
    assert_eq!(run(check_linear_history(&store)), 50);
}

#[test]
fn a_compaction_merges_the_lowest_tier_holding_a_fanout_of_files() {
    use strata_file::bodies::{MAX_BODY_FILES, MERGE_FANOUT, Rewrite};
    const MIB: u64 = 1 << 20;
    assert_eq!(Rewrite::choose(true, &[(1, MIB)]), Rewrite::All, "a full compaction");
    let small = |from: u32, count: u32| (from..from + count).map(|file| (file, MIB / 2));
    let three: Vec<(u32, u64)> = small(1, 3).collect();
    assert_eq!(Rewrite::choose(false, &three), Rewrite::Files(vec![]), "no tier is full");
    // A 40 MiB file (tier 2), two of 8 MiB (tier 1), four small ones (tier 0).
    let mut files = vec![(1, 40 * MIB), (2, 8 * MIB), (3, 8 * MIB)];
    files.extend(small(4, MERGE_FANOUT as u32));
    assert_eq!(Rewrite::choose(false, &files), Rewrite::Files(vec![4, 5, 6, 7]));
    // Four files of tier 1 and four of tier 0: the lowest tier goes first.
    let mut files: Vec<(u32, u64)> = (1..=4).map(|file| (file, 8 * MIB)).collect();
    files.extend(small(5, 4));
    assert_eq!(Rewrite::choose(false, &files), Rewrite::Files(vec![5, 6, 7, 8]));
    // Three files in each of six tiers: no tier to merge, too many files to keep.
    let files: Vec<(u32, u64)> = (0..18).map(|file| (file, MIB << (2 * (file / 3)))).collect();
    assert!(files.len() >= MAX_BODY_FILES);
    assert_eq!(Rewrite::choose(false, &files), Rewrite::All);
}
