//! Input safety, limits, versioning, tiers, sharing, deletion under a lock, and space
//! reclamation. (The two-process lock test lives alone in `lock.rs`: see there why.)

mod common;

use std::fs;
use std::path::Path;

use strata_core::*;
use strata_file::format::FORMAT_VERSION;
use strata_file::{FileStore, FileStoreFactory, FileStoreOptions, SyncPolicy};

use common::*;

#[test]
fn escaping_session_ids_are_invalid_input_and_create_nothing() {
    let root = tempfile::tempdir().unwrap();
    let factory =
        FileStoreFactory::open(root.path().join("root"), FileStoreOptions::default()).unwrap();
    let long = "s".repeat(300);
    for bad in ["", ".", "..", "../escape", "a/b", "a\\b", "nul\0id", long.as_str()] {
        let error = run(factory.create_store(SessionStoreRequest::new(bad))).err().unwrap();
        assert_eq!(error.kind(), "invalid_input", "{bad:?}");
        let error = run(factory.open_existing_store(bad)).err().unwrap();
        assert_eq!(error.kind(), "invalid_input", "{bad:?}");
        assert_eq!(run(factory.delete_session(bad)).unwrap_err().kind(), "invalid_input");
    }
    let entries: Vec<_> =
        fs::read_dir(root.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(entries, vec!["root"], "nothing was created outside the root");
    assert_eq!(fs::read_dir(root.path().join("root")).unwrap().count(), 0);
}

#[test]
fn escaping_node_and_attachment_ids_are_invalid_input_and_apply_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path(), FileStoreOptions::default()).unwrap();
    run(async {
        store.commit_runtime_state(nth_commit("s", 1, 8)).await.unwrap();
        let mut bad_node = nth_commit("s", 2, 8);
        if let GraphCommitDelta::Append { nodes, .. } = &mut bad_node.graph {
            nodes[0].node_id = "../n2".into();
        }
        let error = store.commit_runtime_state(bad_node).await.unwrap_err();
        assert_eq!(error.kind(), "invalid_input");
        let mut bad_attachment = nth_commit("s", 2, 8);
        bad_attachment.committed_attachment_ids = vec!["a/../../b".into()];
        let error = store.commit_runtime_state(bad_attachment).await.unwrap_err();
        assert_eq!(error.kind(), "invalid_input");
        let intent = AttachmentIntent {
            attachment_id: "x\0".into(),
            session_id: "s".into(),
            canonical_uri: "file:///x".into(),
            intent_at_epoch_ms: 1,
        };
        assert_eq!(store.record_intent(intent).await.unwrap_err().kind(), "invalid_input");
        assert_eq!(check_linear_history(&store).await, 1);
    });
}

#[test]
fn oversize_writes_name_the_limit_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let options = FileStoreOptions::default().with_max_record_bytes(4096);
    let store = FileStore::open(dir.path(), options).unwrap();
    run(async {
        store.commit_runtime_state(nth_commit("s", 1, 100)).await.unwrap();
        let error = store.commit_runtime_state(nth_commit("s", 2, 10_000)).await.unwrap_err();
        assert_eq!(error.kind(), "invalid_input");
        assert!(error.to_string().contains("max_record_bytes = 4096"), "{error}");
        store.commit_runtime_state(nth_commit("s", 2, 100)).await.unwrap();
        assert_eq!(check_linear_history(&store).await, 2);
    });
}

fn set_version(path: &Path, version: u32) {
    let mut bytes = fs::read(path).unwrap();
    bytes[8..12].copy_from_slice(&version.to_le_bytes());
    fs::write(path, bytes).unwrap();
}

#[test]
fn files_of_a_newer_format_version_are_refused_with_the_schema_error() {
    for file in ["log.1", "snapshot"] {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path(), FileStoreOptions::default()).unwrap();
        run(store.commit_runtime_state(nth_commit("s", 1, 8))).unwrap();
        store.compact().unwrap();
        drop(store);
        set_version(&dir.path().join(file), FORMAT_VERSION + 1);
        let error = FileStore::open(dir.path(), FileStoreOptions::default()).unwrap_err();
        assert!(
            matches!(
                error,
                StoreError::UnsupportedRecordSchemaVersion { actual, expected, .. }
                    if actual == FORMAT_VERSION + 1 && expected == FORMAT_VERSION
            ),
            "{file}: {error}"
        );
    }
}

#[test]
fn older_logs_are_read_and_older_snapshots_refused() {
    for old in [1, 2] {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path(), FileStoreOptions::default()).unwrap();
        run(store.commit_runtime_state(nth_commit("s", 1, 8))).unwrap();
        drop(store);
        // Versions 2 and 3 changed the snapshot only: older log segments read as they are.
        set_version(&dir.path().join("log.0"), old);
        let store = FileStore::open(dir.path(), FileStoreOptions::default()).unwrap();
        assert_eq!(run(check_linear_history(&store)), 1);
        store.compact().unwrap();
        drop(store);
        // A version-2 snapshot has no stamp section (version 1 no graph section either).
        set_version(&dir.path().join("snapshot"), old);
        let error = FileStore::open(dir.path(), FileStoreOptions::default()).unwrap_err();
        assert!(
            matches!(
                error,
                StoreError::UnsupportedRecordSchemaVersion { actual, expected, .. }
                    if actual == old && expected == FORMAT_VERSION
            ),
            "version {old}: {error}"
        );
    }
}

#[test]
fn tiers_are_honest() {
    let dir = tempfile::tempdir().unwrap();
    let durable =
        FileStoreFactory::open(dir.path().join("a"), FileStoreOptions::default()).unwrap();
    assert_eq!(SessionStoreFactory::durability_tier(&durable), DurabilityTier::Durable);
    let buffered = FileStoreOptions::default().with_sync(SyncPolicy::OsBuffered);
    let store = FileStore::open(dir.path().join("b"), buffered).unwrap();
    assert_eq!(store.durability_tier(), DurabilityTier::Inline);
    run(store.commit_runtime_state(nth_commit("s", 1, 8))).unwrap();
    drop(store);
    let store = FileStore::open(dir.path().join("b"), FileStoreOptions::default()).unwrap();
    assert_eq!(run(check_linear_history(&store)), 1);
}

#[test]
fn two_factories_on_one_root_share_one_core() {
    let root = tempfile::tempdir().unwrap();
    let first = FileStoreFactory::open(root.path(), FileStoreOptions::default()).unwrap();
    let second = FileStoreFactory::open(root.path(), FileStoreOptions::default()).unwrap();
    run(async {
        let a = first.create_store(SessionStoreRequest::new("s")).await.unwrap();
        let b = second.open_existing_store("s").await.unwrap().expect("exists after create");
        a.commit_runtime_state(nth_commit("s", 1, 8)).await.unwrap();
        assert_eq!(check_linear_history(b.as_ref()).await, 1);
        second.delete_session("s").await.unwrap();
        assert!(first.open_existing_store("s").await.unwrap().is_none());
        assert!(a.load_session_meta().await.is_err(), "a deleted session's handles fail");
        let fresh = first.create_store(SessionStoreRequest::new("s")).await.unwrap();
        assert_eq!(check_linear_history(fresh.as_ref()).await, 0);
    });
}

/// Bytes of the files holding data: the snapshot and the body files (log segments are
/// preallocated, and a spare may come and go with background compactions).
fn data_bytes(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap())
        .filter(|entry| !entry.file_name().to_string_lossy().starts_with("log."))
        .map(|entry| entry.metadata().unwrap().len())
        .sum()
}

#[test]
fn vacuum_and_gc_reclaim_disk_space() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path(), FileStoreOptions::default()).unwrap();
    run(async {
        for n in 1..=30 {
            store.commit_runtime_state(nth_commit("s", n, 20_000)).await.unwrap();
        }
        store.compact().unwrap();
        let before = data_bytes(dir.path());
        let ids: Vec<String> = (1..=20).map(|n| format!("n{n}")).collect();
        store.tombstone_nodes(&ids).await.unwrap();
        let report = store.vacuum().await.unwrap();
        assert_eq!(report.removed_node_count, 20);
        let after = data_bytes(dir.path());
        assert!(after < before / 2, "vacuum reclaimed disk: {before} -> {after}");
        let gc = store.gc_unreachable().await.unwrap();
        assert_eq!(gc.retained_blob_count, 1);
        assert_eq!(gc.deleted_blob_count, 9);
        assert_eq!(store.vacuum().await.unwrap().removed_node_count, 0);
    });
    drop(store);
    let store = FileStore::open(dir.path(), FileStoreOptions::default()).unwrap();
    let read = run(store.load_session(SessionReadScope::FullGraph)).unwrap().unwrap();
    assert_eq!(read.graph.nodes.len(), 10);
    assert_eq!(read.head_revision, 30);
    assert!(read.checkpoint.is_some());
}

#[test]
fn delete_refuses_a_session_locked_by_someone_else() {
    let root = tempfile::tempdir().unwrap();
    let factory = FileStoreFactory::open(root.path(), FileStoreOptions::default()).unwrap();
    drop(run(factory.create_store(SessionStoreRequest::new("s"))).unwrap());
    // Another open file description holding the lock stands in for another process.
    let holder = fs::File::options().write(true).open(root.path().join("s/LOCK")).unwrap();
    holder.try_lock().unwrap();
    assert_eq!(run(factory.delete_session("s")).unwrap_err().kind(), "locked");
    assert!(root.path().join("s").exists());
    drop(holder);
    run(factory.delete_session("s")).unwrap();
    assert!(run(factory.open_existing_store("s")).unwrap().is_none());
}
