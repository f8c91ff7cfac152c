//! The synchronous lash manifest over async Strata stores, and the async Strata manifest over
//! synchronous lash stores, on every kind of runtime: no deadlock, no stalled executor.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lash_core::{AttachmentId, AttachmentIntent, AttachmentManifest as _};
use strata_core::{AttachmentManifest as _, Operation, StoreBuilder, StoreError};
use strata_lash::{ForLash, FromLash, mapping};
use strata_memory::MemoryStore;
use strata_testkit::faults::FaultInjection;

fn intent(id: &str) -> AttachmentIntent {
    AttachmentIntent {
        attachment_id: AttachmentId::new(id.to_owned()),
        session_id: "s".to_owned(),
        canonical_uri: format!("mem://{id}"),
        intent_at_epoch_ms: 10,
    }
}

/// A lash handle over a memory store whose `record_intent` first sleeps on tokio's timer:
/// a future that needs a running timer to finish.
fn delayed_store(delay: Duration) -> ForLash<dyn strata_core::RuntimePersistence> {
    let faults = FaultInjection::new();
    faults.delay_next(Operation::RecordIntent, 1, delay);
    ForLash::from_arc(StoreBuilder::new().layer(faults).build_shared(MemoryStore::new()))
}

fn listed(store: &dyn lash_core::AttachmentManifest) -> Vec<String> {
    let rows = store.list_uncommitted(u64::MAX).expect("list_uncommitted");
    rows.into_iter().map(|row| row.attachment_id.as_str().to_owned()).collect()
}

/// On a current-thread runtime the call cannot run on the (blocked) caller's thread: the
/// timer it waits for would never fire. It completes on the bridge's manifest thread.
#[tokio::test]
async fn sync_manifest_on_a_current_thread_runtime_completes() {
    let store = delayed_store(Duration::from_millis(20));
    store.record_intent(intent("a")).expect("record_intent");
    assert_eq!(listed(&store), ["a"]);
}

/// On a multi-thread runtime with a single worker, the call hands that worker's other tasks
/// over (`block_in_place`): a task spawned before the call keeps ticking while it waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn sync_manifest_on_a_multi_thread_runtime_does_not_stall_other_tasks() {
    let ticks = Arc::new(AtomicU64::new(0));
    let ticker = {
        let ticks = Arc::clone(&ticks);
        tokio::spawn(async move {
            loop {
                ticks.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    tokio::task::yield_now().await;
    let before = ticks.load(Ordering::Relaxed);
    let store = delayed_store(Duration::from_millis(300));
    store.record_intent(intent("a")).expect("record_intent");
    let during = ticks.load(Ordering::Relaxed) - before;
    ticker.abort();
    assert!(during > 0, "the other task made no progress while the manifest call waited");
    assert_eq!(listed(&store), ["a"]);
}

/// Outside any runtime the call still completes (on the manifest thread).
#[test]
fn sync_manifest_without_a_runtime_completes() {
    let store = delayed_store(Duration::from_millis(5));
    store.record_intent(intent("a")).expect("record_intent");
    store.commit_refs("s", &[AttachmentId::new("a".to_owned())]).expect("commit_refs");
    assert!(listed(&store).is_empty());
    store.forget(&AttachmentId::new("a".to_owned())).expect("forget");
}

/// Strata errors cross the synchronous manifest as lash `Backend` errors that name the exact
/// Strata variant, which the reverse mapping restores.
#[tokio::test]
async fn sync_manifest_errors_keep_their_strata_variant() {
    let faults = FaultInjection::new();
    faults.fail_next(Operation::RecordIntent, 1, StoreError::Unavailable("disk".into()));
    let store =
        ForLash::from_arc(StoreBuilder::new().layer(faults).build_shared(MemoryStore::new()));
    let error = store.record_intent(intent("a")).expect_err("the injected fault");
    assert!(matches!(&error, lash_core::StoreError::Backend(text) if text.contains("disk")));
    assert_eq!(mapping::error_to_strata(error), StoreError::Unavailable("disk".into()));
}

/// The async Strata manifest over lash-sqlite-store's synchronous one (which itself blocks on
/// its connection thread), on a current-thread runtime: the lash call runs on the blocking
/// pool.
#[tokio::test]
async fn async_manifest_over_a_lash_store() {
    let store = FromLash::new(Arc::new(lash_sqlite_store::Store::memory().await.expect("sqlite")));
    let strata_intent = mapping::intent_to_strata(intent("a"));
    store.record_intent(strata_intent.clone()).await.expect("record_intent");
    let rows = store.list_uncommitted(100).await.expect("list_uncommitted");
    assert_eq!(rows, vec![strata_core::AttachmentManifestEntry::uncommitted(&strata_intent)]);
    store.commit_refs("s", &["a".to_owned()]).await.expect("commit_refs");
    assert!(store.list_uncommitted(100).await.expect("list_uncommitted").is_empty());
    store.forget("a").await.expect("forget");
}
