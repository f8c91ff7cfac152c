//! Helpers shared by the command tests: running the binary, one-line error checks, and a
//! scripted data directory written through the library.

#![allow(dead_code)] // each test binary uses a subset

use std::path::{Path, PathBuf};
use std::sync::Arc;

use assert_cmd::Command;
use strata::attachments::{
    AttachmentLayer, AttachmentMeta, AttachmentStore, Content, FileAttachmentOptions,
    FileAttachmentStore,
};
use strata::file::{FileStoreFactory, FileStoreOptions};
use strata::{
    Bytes, DeliveryPolicy, GraphCommitDelta, MergeKey, QueuedWorkBatchDraft,
    QueuedWorkClaimBoundary, RuntimeCommit, RuntimePersistence, SessionMeta, SessionNodeRecord,
    SessionStoreFactory, SessionStoreRequest, SlotPolicy, StoreBuilder,
};

/// The built `strata` binary.
pub fn strata() -> Command {
    Command::cargo_bin("strata").expect("the strata binary is built")
}

/// Runs `strata` with `args` and checks the exit status and that stderr is exactly one
/// `error: …` line containing `message`; returns stdout.
pub fn assert_one_line_error(args: &[&str], code: i32, message: &str) -> String {
    let output = strata().args(args).output().unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(code), "{args:?}: {stderr}");
    assert!(stderr.starts_with("error: ") && stderr.ends_with('\n'), "{args:?}: {stderr:?}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr:?}");
    assert!(stderr.contains(message), "{args:?}: {stderr:?} should contain {message:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// The session the scripted data directory holds.
pub const SESSION: &str = "scripted";

/// What [`scripted_data_dir`] wrote, to compare with what the commands report.
pub struct Scripted {
    /// The data directory.
    pub dir: PathBuf,
    /// The session's store directory.
    pub session_dir: PathBuf,
    /// The attachment committed with turn 2.
    pub committed: PathBuf,
    /// The attachment put in turn 3, whose turn never committed.
    pub orphan: PathBuf,
}

fn node(id: &str, parent: Option<&str>, payload: &str) -> SessionNodeRecord {
    SessionNodeRecord {
        node_id: id.into(),
        parent_node_id: parent.map(Into::into),
        payload: Bytes::from(payload.to_owned()),
        timestamp_ms: 1_700_000_000_000,
        frame_id: None,
        cause: None,
    }
}

fn message(role: &str, content: &str) -> String {
    format!(r#"{{"type":"message","role":"{role}","content":"{content}"}}"#)
}

/// A data directory (`sessions/`, `attachments/`) holding one session written through the
/// library as a runtime would: two turns (the second with an attachment and a superseded
/// draft), a compaction (so there is a snapshot and a body file), a third turn in the log,
/// one queued batch claimed and one pending, and an attachment put whose turn never
/// committed (an orphan).
pub fn scripted_data_dir(root: &Path) -> Scripted {
    let dir = root.join("data");
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    runtime.unwrap().block_on(async {
        let sessions =
            FileStoreFactory::open(dir.join("sessions"), FileStoreOptions::default()).unwrap();
        let store = Arc::new(
            FileAttachmentStore::open(dir.join("attachments"), FileAttachmentOptions::default())
                .unwrap(),
        );
        let layer = AttachmentLayer::new(store.clone());
        let factory = StoreBuilder::new().layer(layer.clone()).build_factory(sessions.clone());
        let handle = factory.create_store(SessionStoreRequest::new(SESSION)).await.unwrap();
        let meta = SessionMeta {
            session_id: SESSION.into(),
            session_name: Some("scripted session".into()),
            model: Some("test-model".into()),
            ..Default::default()
        };
        handle.save_session_meta(meta).await.unwrap();
        let commit = |expected, nodes: Vec<SessionNodeRecord>, leaf: &str| RuntimeCommit {
            session_id: SESSION.into(),
            expected_head_revision: Some(expected),
            graph: GraphCommitDelta::Append { nodes, leaf_node_id: Some(leaf.into()) },
            ..Default::default()
        };
        let first = vec![
            node("u1", None, &message("user", "hello there")),
            node("a1", Some("u1"), &message("assistant", "hi, how can I help")),
        ];
        handle.commit_runtime_state(commit(0, first, "a1")).await.unwrap();
        let scoped = layer.scoped(SESSION).unwrap();
        let committed = scoped
            .put(
                Content::new(&b"committed attachment bytes"[..]),
                AttachmentMeta::new("text/plain"),
            )
            .await
            .unwrap();
        let second = vec![
            node("u2", Some("a1"), &message("user", "fix the parser")),
            node("draft", Some("u2"), &message("assistant", "a draft nobody kept")),
            node("a2", Some("u2"), &message("assistant", "fixed it")),
        ];
        handle.commit_runtime_state(commit(1, second, "a2")).await.unwrap();
        sessions.open_store(SESSION).unwrap().compact().unwrap();

        let third = vec![node("u3", Some("a2"), &message("user", "thanks"))];
        handle.commit_runtime_state(commit(2, third, "u3")).await.unwrap();
        let draft = |key: &str| QueuedWorkBatchDraft {
            session_id: SESSION.into(),
            source_key: Some(key.into()),
            delivery_policy: DeliveryPolicy::AfterCurrentTurnCommit,
            slot_policy: SlotPolicy::Exclusive,
            merge_key: MergeKey::Never,
            available_at_ms: 0,
            payloads: vec![Bytes::from_static(b"{\"input\":1}")],
        };
        handle.enqueue_queued_work(draft("claimed")).await.unwrap();
        handle.enqueue_queued_work(draft("pending")).await.unwrap();
        let claim = handle
            .claim_ready_queued_work(SESSION, "worker", QueuedWorkClaimBoundary::Idle, 3_600_000, 1)
            .await
            .unwrap();
        assert!(claim.is_some());
        let orphan = scoped
            .put(
                Content::new(&b"bytes of a turn that never committed"[..]),
                AttachmentMeta::new("text/plain"),
            )
            .await
            .unwrap();
        let path = |id: &strata::attachments::AttachmentId| {
            PathBuf::from(store.uri(id).strip_prefix("file://").unwrap())
        };
        Scripted {
            session_dir: dir.join("sessions").join(SESSION),
            committed: path(&committed.id),
            orphan: path(&orphan.id),
            dir: dir.clone(),
        }
    })
}

/// Copies the directory tree `from` to `to`.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Flips one bit of byte `offset` of `path`.
pub fn flip(path: &Path, offset: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset] ^= 0x10;
    std::fs::write(path, bytes).unwrap();
}
