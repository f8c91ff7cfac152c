//! The orphan sweeper and the layer's pending ids: what a sweep keeps and removes, sharing
//! across sessions, races with puts, dry runs, interrupted sweeps, and commits that fail.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use strata_attachments::*;
use strata_core::*;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_attachments_stay_and_uncommitted_ones_are_swept() {
    let world = World::memory();
    let store = world.open("s1").await;
    let kept = world.put("s1", b"committed chart").await;
    commit(&*store, "s1").await;
    let orphan = world.put("s1", b"never committed").await;
    assert_eq!(world.uncommitted("s1").await.len(), 1);

    let early = world.sweeper().sweep().await.unwrap();
    assert!(early.deleted.is_empty() && early.forgotten_rows.is_empty(), "within grace: {early:?}");

    world.age();
    let report = world.sweeper().sweep().await.unwrap();
    assert_eq!(report.deleted, vec![orphan.id.clone()]);
    assert_eq!(report.forgotten_rows.len(), 1);
    assert_eq!(report.references_removed, 1);
    assert!(world.readable(&kept.id).await);
    assert!(!world.readable(&orphan.id).await);
    assert!(world.uncommitted("s1").await.is_empty());
    assert!(world.attachments.references(&orphan.id).await.unwrap().is_empty());
    assert_eq!(world.attachments.references(&kept.id).await.unwrap().len(), 1);
    assert!(world.attachments.trashed().await.unwrap().is_empty());
    assert_eq!(
        world.sweeper().sweep().await.unwrap(),
        SweepReport { sessions: 1, ..Default::default() }
    );
}

async fn cross_session_sharing(world: World) {
    let (a, b) = (world.open("a").await, world.open("b").await);
    let shared = world.put("a", b"shared bytes").await;
    commit(&*a, "a").await;
    assert_eq!(world.put("b", b"shared bytes").await, shared, "same bytes, same stored info");
    drop(b);
    world.age();
    let report = world.sweeper().sweep().await.unwrap();
    assert_eq!(report.kept, vec![shared.id.clone()]);
    assert!(report.deleted.is_empty(), "{report:?}");
    assert_eq!(report.forgotten_rows.len(), 1);
    assert_eq!(report.forgotten_rows[0].session_id, "b");
    assert!(world.readable(&shared.id).await);
    let references = world.attachments.references(&shared.id).await.unwrap();
    assert_eq!(references.len(), 1);
    assert_eq!(references[0].session_id, "a");
    assert!(world.uncommitted("b").await.is_empty());
    // The bytes stay for good: a's row is committed.
    world.age();
    assert!(world.sweeper().sweep().await.unwrap().deleted.is_empty());
    assert!(world.readable(&shared.id).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_committed_by_one_session_survives_another_sessions_orphan_memory() {
    cross_session_sharing(World::memory()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_committed_by_one_session_survives_another_sessions_orphan_file() {
    let dir = tempfile::tempdir().unwrap();
    cross_session_sharing(World::file(dir.path(), ManualClock::new(strata_testkit::START_MS)))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_intent_of_another_session_keeps_the_content() {
    let world = World::memory();
    let (_a, _b) = (world.open("a").await, world.open("b").await);
    let x = world.put("a", b"x").await;
    world.age();
    world.put("b", b"x").await; // fresh: within the grace period
    let report = world.sweeper().sweep().await.unwrap();
    assert_eq!((report.kept.clone(), report.deleted.clone()), (vec![x.id.clone()], vec![]));
    assert!(world.uncommitted("a").await.is_empty(), "a's stale row is forgotten");
    assert_eq!(world.uncommitted("b").await.len(), 1, "b's fresh row stays");
    world.age();
    assert_eq!(world.sweeper().sweep().await.unwrap().deleted, vec![x.id]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_reports_and_changes_nothing() {
    let world = World::memory();
    let _store = world.open("s1").await;
    let orphan = world.put("s1", b"orphan").await;
    world.age();
    let dry = world.sweeper().dry_run().sweep().await.unwrap();
    assert!(dry.dry_run);
    assert_eq!(dry.deleted, vec![orphan.id.clone()]);
    assert_eq!((dry.forgotten_rows.len(), dry.references_removed), (1, 1));
    assert!(
        world.readable(&orphan.id).await && world.attachments.contains(&orphan.id).await.unwrap()
    );
    assert_eq!(world.uncommitted("s1").await.len(), 1);
    assert_eq!(world.attachments.references(&orphan.id).await.unwrap().len(), 1);
    let real = world.sweeper().sweep().await.unwrap();
    assert_eq!(SweepReport { dry_run: true, ..real }, dry, "the dry run predicted the sweep");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn references_of_deleted_sessions_no_longer_hold_content() {
    for keep_unlisted in [false, true] {
        let world = World::memory();
        let (a, _b) = (world.open("a").await, world.open("b").await);
        let x = world.put("a", b"x").await;
        commit(&*a, "a").await;
        world.put("b", b"x").await;
        drop(a);
        world.factory.delete_session("a").await.unwrap();
        world.age();
        let sweeper =
            if keep_unlisted { world.sweeper().keep_unlisted_sessions() } else { world.sweeper() };
        let report = sweeper.sweep().await.unwrap();
        if keep_unlisted {
            assert_eq!(
                report.kept,
                vec![x.id.clone()],
                "an unlisted session may be another factory's"
            );
            assert!(world.readable(&x.id).await);
        } else {
            assert_eq!(report.deleted, vec![x.id.clone()]);
            assert_eq!(report.references_removed, 2, "b's and the deleted session's");
            assert!(!world.readable(&x.id).await);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_sweeps_trash_is_decided_by_the_next_sweep() {
    let world = World::memory();
    let store = world.open("s1").await;
    let committed = world.put("s1", b"committed").await;
    commit(&*store, "s1").await;
    let orphan = world.put("s1", b"orphan").await;
    // As if a sweep had moved both to the trash and crashed.
    world.attachments.delete(&[committed.id.clone(), orphan.id.clone()]).await.unwrap();
    assert!(world.readable(&committed.id).await, "get reads the trash");
    world.age();
    let report = world.sweeper().sweep().await.unwrap();
    assert_eq!(report.restored, vec![committed.id.clone()]);
    assert_eq!(report.deleted, vec![orphan.id.clone()]);
    assert!(world.attachments.contains(&committed.id).await.unwrap());
    assert!(world.attachments.trashed().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orphan_both_trashed_and_stored_again_is_removed_whole() {
    let world = World::memory();
    let (_s1, _s2) = (world.open("s1").await, world.open("s2").await);
    let orphan = world.put("s1", b"orphan").await;
    world.attachments.delete(std::slice::from_ref(&orphan.id)).await.unwrap(); // an interrupted sweep
    world.put("s2", b"orphan").await; // stored again; this turn never commits either
    assert!(world.attachments.contains(&orphan.id).await.unwrap());
    world.age();
    let report = world.sweeper().sweep().await.unwrap();
    assert_eq!(report.deleted, vec![orphan.id.clone()]);
    assert!(!world.readable(&orphan.id).await, "neither the stored nor the trashed copy is left");
    assert!(world.attachments.trashed().await.unwrap().is_empty());
}

/// A factory whose sessions named `locked` cannot be opened (as when another process holds
/// a file store's lock).
struct LockedSessions(Arc<dyn SessionStoreFactory>);

#[async_trait]
impl SessionStoreFactory for LockedSessions {
    fn durability_tier(&self) -> DurabilityTier {
        self.0.durability_tier()
    }
    async fn create_store(
        &self,
        request: SessionStoreRequest,
    ) -> Result<Arc<dyn RuntimePersistence>, StoreError> {
        self.0.create_store(request).await
    }
    async fn open_existing_store(
        &self,
        session_id: &str,
    ) -> Result<Option<Arc<dyn RuntimePersistence>>, StoreError> {
        if session_id == "locked" {
            return Err(StoreError::Locked { path: format!("/sessions/{session_id}") });
        }
        self.0.open_existing_store(session_id).await
    }
    async fn delete_session(&self, session_id: &str) -> Result<(), StoreError> {
        self.0.delete_session(session_id).await
    }
    async fn list_sessions(&self) -> Result<Vec<String>, StoreError> {
        self.0.list_sessions().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_sessions_references_keep_their_content() {
    let world = World::memory();
    let (_locked, _b) = (world.open("locked").await, world.open("b").await);
    let x = world.put("locked", b"x").await; // uncommitted, but unreadable to the sweeper
    world.put("b", b"x").await;
    world.age();
    let factory = Arc::new(LockedSessions(Arc::clone(&world.factory)));
    let report = Sweeper::new(factory, Arc::clone(&world.attachments))
        .with_clock(Arc::new(world.clock.clone()))
        .with_grace_period(GRACE)
        .sweep()
        .await
        .unwrap();
    assert_eq!(report.unreadable_sessions.len(), 1);
    assert_eq!(report.unreadable_sessions[0].0, "locked");
    assert_eq!(report.kept, vec![x.id.clone()]);
    assert_eq!(
        world.uncommitted("locked").await.len(),
        1,
        "its rows wait for a sweep that can read them"
    );
    assert!(world.uncommitted("b").await.is_empty());
}

/// Session a wrote X and never committed (its row is stale); session b is about to write X.
async fn race_world() -> (World, Arc<Gated>, Arc<dyn RuntimePersistence>, AttachmentId) {
    let gated = Arc::new(Gated::new(Arc::new(MemoryAttachmentStore::new())));
    let world = World::memory_over(Arc::clone(&gated) as Arc<dyn AttachmentStore>);
    let _a = world.open("a").await;
    let b = world.open("b").await;
    let x = world.put("a", b"x").await.id;
    world.age();
    (world, gated, b, x)
}

/// The sweep reads X's references (only a's stale one: X looks free); then b's whole put runs
/// and finds X stored, so it skips the write; then the sweep moves X to the trash. The sweep
/// must see b's reference when it looks again, and put X back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_that_found_the_bytes_stored_keeps_them_through_a_sweep() {
    let (world, gated, b, x) = race_world().await;
    let (reached, release) = gated.arm(Pause::AfterReferences);
    let sweeper = world.sweeper();
    let sweep = tokio::spawn(async move { sweeper.sweep().await });
    reached.await.unwrap(); // the sweep decided X is free
    world.put("b", b"x").await; // intent, reference, X found stored: no write
    release.send(()).unwrap();
    let report = sweep.await.unwrap().unwrap();
    assert_eq!(report.restored, vec![x.clone()], "{report:?}");
    assert!(report.deleted.is_empty(), "{report:?}");
    assert!(world.attachments.contains(&x).await.unwrap());
    commit(&*b, "b").await;
    world.age();
    assert!(world.sweeper().sweep().await.unwrap().deleted.is_empty());
    assert!(world.readable(&x).await);
}

/// The sweep moves X to the trash; b's whole put runs (finds X gone, writes it again) before the
/// sweep re-checks. The sweep must keep b's copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_that_wrote_the_bytes_during_a_sweep_keeps_them() {
    let (world, gated, b, x) = race_world().await;
    let (reached, release) = gated.arm(Pause::AfterDelete);
    let sweeper = world.sweeper();
    let sweep = tokio::spawn(async move { sweeper.sweep().await });
    reached.await.unwrap(); // X is in the trash
    assert!(!world.attachments.contains(&x).await.unwrap());
    assert!(world.readable(&x).await, "a reader still finds X");
    world.put("b", b"x").await;
    release.send(()).unwrap();
    let report = sweep.await.unwrap().unwrap();
    assert_eq!(report.restored, vec![x.clone()], "{report:?}");
    assert!(report.deleted.is_empty());
    assert!(world.attachments.contains(&x).await.unwrap());
    assert!(world.attachments.trashed().await.unwrap().is_empty());
    commit(&*b, "b").await;
    world.age();
    assert!(world.sweeper().sweep().await.unwrap().deleted.is_empty());
    assert!(world.readable(&x).await);
}

/// Many sessions put the same bytes while sweeps run, over and over: whatever the scheduling,
/// every put that returned and committed finds its bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn puts_and_sweeps_running_together_never_lose_committed_bytes() {
    let world = Arc::new(World::memory());
    for round in 0..20 {
        let sessions: Vec<String> = (0..4).map(|n| format!("r{round}-s{n}")).collect();
        let mut handles = Vec::new();
        for session in &sessions {
            handles.push(world.open(session).await);
        }
        world.put(&sessions[0], b"contended").await; // stale orphan-to-be
        world.age();
        let writers = sessions[1..].iter().zip(&handles[1..]).map(|(session, handle)| {
            let (world, session, handle) =
                (Arc::clone(&world), session.clone(), Arc::clone(handle));
            tokio::spawn(async move {
                let info = world.put(&session, b"contended").await;
                commit(&*handle, &session).await;
                info.id
            })
        });
        let writers: Vec<_> = writers.collect();
        let sweeper = world.sweeper();
        let sweeps = tokio::spawn(async move {
            for _ in 0..3 {
                sweeper.sweep().await.unwrap();
            }
        });
        for writer in writers {
            let id = writer.await.unwrap();
            assert!(world.readable(&id).await, "round {round}");
        }
        sweeps.await.unwrap();
        world.age();
        world.sweeper().sweep().await.unwrap();
        assert!(
            world.attachments.contains(&AttachmentId::of(b"contended")).await.unwrap(),
            "round {round}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_ids_ride_on_the_next_commit_until_one_succeeds() {
    let world = World::memory();
    let store = world.open("s1").await;
    world.put("s1", b"x").await;
    assert_eq!(world.layer.pending_ids("s1").len(), 1);

    world.faults.fail_next(
        Operation::CommitRuntimeState,
        1,
        StoreError::NotApplied("refused".into()),
    );
    assert!(store.commit_runtime_state(empty_commit("s1")).await.is_err());
    assert_eq!(world.layer.pending_ids("s1").len(), 1, "a failed commit keeps them pending");

    let conflict = RuntimeCommit { expected_head_revision: Some(7), ..empty_commit("s1") };
    assert!(matches!(
        store.commit_runtime_state(conflict).await,
        Err(StoreError::HeadRevisionConflict { .. })
    ));
    assert_eq!(world.layer.pending_ids("s1").len(), 1, "a refused commit keeps them pending");

    // Applied, but the caller saw an error (ambiguous): still pending, stamped again next time.
    world.faults.fail_after_next(
        Operation::CommitRuntimeState,
        1,
        StoreError::Unavailable("lost reply".into()),
    );
    assert!(store.commit_runtime_state(empty_commit("s1")).await.is_err());
    assert!(world.uncommitted("s1").await.is_empty(), "the applied commit stamped the row");
    assert_eq!(world.layer.pending_ids("s1").len(), 1);

    commit(&*store, "s1").await;
    assert!(world.layer.pending_ids("s1").is_empty());
    assert!(world.uncommitted("s1").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stamped_retry_answered_from_its_stored_result_still_stamps_later_puts() {
    let world = World::memory();
    let store = world.open("s1").await;
    world.put("s1", b"x").await;
    let stamp = RuntimeTurnCommitStamp {
        session_id: "s1".into(),
        turn_id: "t1".into(),
        turn_commit_hash: "h1".into(),
    };
    let stamped = RuntimeCommit { turn_commit: Some(stamp), ..empty_commit("s1") };
    // The commit applies, its reply is lost.
    world.faults.fail_after_next(
        Operation::CommitRuntimeState,
        1,
        StoreError::Timeout {
            operation: "commit_runtime_state",
            elapsed: std::time::Duration::ZERO,
        },
    );
    assert!(store.commit_runtime_state(stamped.clone()).await.is_err());
    let y = world.put("s1", b"y").await;
    // The retry is answered from the stamp and applies nothing; y must still be stamped.
    let first = store.commit_runtime_state(stamped).await.unwrap();
    assert_eq!(first.head_revision, 1);
    assert!(world.layer.pending_ids("s1").is_empty());
    assert!(world.uncommitted("s1").await.is_empty(), "y's row is stamped too");
    world.age();
    world.sweeper().sweep().await.unwrap();
    assert!(world.readable(&y.id).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_whose_intent_fails_writes_nothing() {
    let world = World::memory();
    let _store = world.open("s1").await;
    world.faults.fail_next(Operation::RecordIntent, 1, StoreError::Unavailable("disk".into()));
    let scoped = world.layer.scoped("s1").unwrap();
    let content = Content::new(&b"x"[..]);
    let error = scoped.put(content.clone(), AttachmentMeta::new("image/png")).await.unwrap_err();
    assert_eq!(error, AttachmentError::Manifest(StoreError::Unavailable("disk".into())));
    assert!(error.is_retryable());
    assert!(!world.attachments.contains(content.id()).await.unwrap());
    assert!(world.attachments.references(content.id()).await.unwrap().is_empty());
    assert!(world.layer.pending_ids("s1").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_or_badly_described_put_records_nothing() {
    let attachments = Arc::new(MemoryAttachmentStore::new().with_max_bytes(16));
    let world = World::memory_over(attachments);
    let _store = world.open("s1").await;
    let scoped = world.layer.scoped("s1").unwrap();
    let big = Content::new(vec![0u8; 17]);
    assert_eq!(
        scoped.put(big.clone(), AttachmentMeta::new("image/png")).await.unwrap_err(),
        AttachmentError::TooLarge { len: 17, limit: 16 }
    );
    let bad = scoped.put(Content::new(&b"ok"[..]), AttachmentMeta::new("")).await.unwrap_err();
    assert!(matches!(bad, AttachmentError::InvalidMetadata(_)), "{bad}");
    assert!(world.uncommitted("s1").await.is_empty(), "no intent recorded");
    assert!(!world.attachments.contains(big.id()).await.unwrap());
    assert_eq!(world.faults.calls(Operation::RecordIntent), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scoped_store_needs_an_open_handle_of_its_session() {
    let world = World::memory();
    assert_eq!(
        world.layer.scoped("nobody").unwrap_err(),
        AttachmentError::SessionNotOpen { session_id: "nobody".into() }
    );
    let store = world.open("s1").await;
    assert!(world.layer.scoped("s1").is_ok());
    drop(store);
    assert!(world.layer.scoped("s1").is_err(), "the handle is gone");
}
