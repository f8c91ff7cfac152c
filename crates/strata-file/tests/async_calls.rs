//! Calls as futures: work happens when a call is polled (never when it is created), a slow
//! durable write never stalls a current-thread runtime, and cancellation is as documented: a
//! dropped read has no effect, a dropped write may still apply and leaves the store
//! consistent, and a stamped retry of it is answered from its stamp.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;

use strata_core::*;
use strata_file::{FileStore, FileStoreFactory, FileStoreOptions};

use common::*;

/// Long enough that the other task's few milliseconds of work finish well before it ends.
const SLOW_WRITE: Duration = Duration::from_millis(600);

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn slowed() -> FileStoreOptions {
    FileStoreOptions::default().with_write_delay(SLOW_WRITE)
}

#[test]
fn a_slow_durable_write_does_not_stall_a_current_thread_runtime() {
    let dir = tempfile::tempdir().unwrap();
    current_thread().block_on(async {
        let store = FileStore::open(dir.path(), slowed()).unwrap();
        let committed = Arc::new(AtomicBool::new(false));
        let write = {
            let (store, committed) = (store.clone(), committed.clone());
            tokio::spawn(async move {
                store.commit_runtime_state(nth_commit("s", 1, 64)).await.unwrap();
                committed.store(true, Ordering::SeqCst);
            })
        };
        // Another task on the same (only) thread: twenty timer ticks and some yields. It can
        // only run if the write's task is parked while the write is in flight.
        let other = tokio::spawn(async {
            for _ in 0..20 {
                tokio::time::sleep(Duration::from_millis(1)).await;
                tokio::task::yield_now().await;
            }
        });
        other.await.unwrap();
        assert!(
            !committed.load(Ordering::SeqCst),
            "the other task finished only after the slowed write: the runtime was stalled"
        );
        write.await.unwrap();
        assert_eq!(check_linear_history(&store).await, 1);
    });
    let store = FileStore::open(dir.path(), FileStoreOptions::default()).unwrap();
    assert_eq!(current_thread().block_on(check_linear_history(&store)), 1);
}

#[test]
fn a_call_does_nothing_until_it_is_polled() {
    let dir = tempfile::tempdir().unwrap();
    current_thread().block_on(async {
        let store = FileStore::open(dir.path(), FileStoreOptions::default()).unwrap();
        let created = store.commit_runtime_state(nth_commit("s", 1, 64));
        assert_eq!(check_linear_history(&store).await, 0, "creating the call did nothing");
        drop(created);
        assert_eq!(check_linear_history(&store).await, 0, "a call never polled never applies");
        let mut polled = store.commit_runtime_state(nth_commit("s", 1, 64));
        let first = std::future::poll_fn(|cx| Poll::Ready(polled.as_mut().poll(cx))).await;
        assert!(first.is_pending(), "a durable write is pending on its first poll: {first:?}");
        polled.await.unwrap();
        assert_eq!(check_linear_history(&store).await, 1);
    });
}

#[test]
fn a_dropped_write_leaves_the_store_consistent_and_a_stamped_retry_returns_its_result() {
    let dir = tempfile::tempdir().unwrap();
    let commit = nth_commit("s", 1, 64);
    current_thread().block_on(async {
        let store = FileStore::open(dir.path(), slowed()).unwrap();
        // Give up on the write while it waits for its (slowed) fdatasync.
        let timed_out = tokio::time::timeout(
            Duration::from_millis(50),
            store.commit_runtime_state(commit.clone()),
        )
        .await;
        assert!(timed_out.is_err(), "the slowed write finished within 50 ms: {timed_out:?}");
        // A dropped read has no effect either: this one waits for the write it observed.
        let read = tokio::time::timeout(
            Duration::from_millis(10),
            store.load_session(SessionReadScope::FullGraph),
        )
        .await;
        assert!(read.is_err(), "the read answered before the write it observed was durable");
        // The dropped write applied (the ambiguous outcome): whole, once.
        assert_eq!(check_linear_history(&store).await, 1);
        // The stamped retry is answered from its stamp: same result, nothing applied twice.
        let retried = store.commit_runtime_state(commit.clone()).await.unwrap();
        assert_eq!(retried.head_revision, 1);
        assert_eq!(check_linear_history(&store).await, 1);
        store.commit_runtime_state(nth_commit("s", 2, 64)).await.unwrap();
    });
    let store = FileStore::open(dir.path(), FileStoreOptions::default()).unwrap();
    current_thread().block_on(async {
        assert_eq!(check_linear_history(&store).await, 2, "reopens clean");
        let again = store.commit_runtime_state(commit).await.unwrap();
        assert_eq!(again.head_revision, 1, "the stamp survives the reopen");
    });
}

#[test]
fn dropping_the_last_handle_with_a_write_in_flight_keeps_the_write_whole() {
    let dir = tempfile::tempdir().unwrap();
    current_thread().block_on(async {
        let store = FileStore::open(dir.path(), slowed()).unwrap();
        let write = store.commit_runtime_state(nth_commit("s", 1, 64));
        let timed_out = tokio::time::timeout(Duration::from_millis(20), write).await;
        assert!(timed_out.is_err());
        drop(store); // waits for the log writer to finish the queued write
    });
    let store = FileStore::open(dir.path(), FileStoreOptions::default()).unwrap();
    assert_eq!(current_thread().block_on(check_linear_history(&store)), 1);
}

#[test]
fn factories_work_on_a_current_thread_runtime() {
    let root = tempfile::tempdir().unwrap();
    current_thread().block_on(async {
        let factory = FileStoreFactory::open(root.path(), FileStoreOptions::default()).unwrap();
        let store = factory.create_store(SessionStoreRequest::new("s")).await.unwrap();
        store.commit_runtime_state(nth_commit("s", 1, 8)).await.unwrap();
        let again = factory.open_existing_store("s").await.unwrap().expect("created");
        assert_eq!(check_linear_history(again.as_ref()).await, 1);
        assert_eq!(factory.list_sessions().await.unwrap(), ["s"]);
        factory.delete_session("s").await.unwrap();
        assert!(factory.open_existing_store("s").await.unwrap().is_none());
    });
}
