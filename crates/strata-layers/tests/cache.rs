//! The cache layer's behaviour: hits that never reach the store and never copy payloads,
//! single flight, no stale resurrection (deterministic interleavings), the effect of every
//! write, sharing across the handles of a session, negative caching, revalidation and the
//! bounds.
//!
//! Stores are built as `cache → [hold →] faults → memory store`: the testkit's
//! [`FaultInjection`] counts (and delays, hangs or fails) the calls that reach the store, and
//! a clone of the [`MemoryStore`] (which shares its state) reads or writes around the cache,
//! as another process would.

#![cfg(feature = "cache")]

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use futures::future::join_all;
use strata_core::*;
use strata_layers::CacheLayer;
use strata_layers::cache::{CacheStore, Revalidation};
use strata_memory::{MemoryStore, MemoryStoreFactory};
use strata_testkit::faults::FaultInjection;
use strata_testkit::fixtures::{chain, checkpoint_with_payloads, commit, meta, node, usage};
use tokio::sync::oneshot;

const SESSION: &str = "s1";
const FULL: SessionReadScope = SessionReadScope::FullGraph;

fn head_path() -> SessionReadScope {
    SessionReadScope::ActivePath { leaf_node_id: None }
}

/// Holds the next call of an operation *after* the store answered it, until released: a
/// read that has happened but not returned yet. [`FaultInjection`] delays calls before they
/// reach the store, so it cannot put a read's answer on the far side of a write; this can.
#[derive(Clone, Debug, Default)]
struct Hold {
    armed: Arc<Mutex<Vec<Held>>>,
}

/// An armed hold: the operation, where to report the answer, what releases it.
type Held = (Operation, oneshot::Sender<()>, oneshot::Receiver<()>);

impl Hold {
    /// Arms the next call of `operation`: `reached` resolves once the store answered it,
    /// sending on `release` lets it return.
    fn next(&self, operation: Operation) -> (oneshot::Receiver<()>, oneshot::Sender<()>) {
        let (reached_tx, reached) = oneshot::channel();
        let (release, release_rx) = oneshot::channel();
        self.armed.lock().unwrap().push((operation, reached_tx, release_rx));
        (reached, release)
    }
}

impl Around for Hold {
    async fn around<'a, S>(
        &'a self,
        inner: &'a S,
        request: Request<'a>,
    ) -> Result<Response, StoreError>
    where
        S: Serve + ?Sized + 'a,
    {
        let operation = request.operation();
        let held = {
            let mut armed = self.armed.lock().unwrap();
            let position = armed.iter().position(|(armed, ..)| *armed == operation);
            position.map(|position| armed.remove(position))
        };
        let answer = inner.serve(request).await;
        if let Some((_, reached, release)) = held {
            let _ = reached.send(());
            let _ = release.await;
        }
        answer
    }
}

type Cached = CacheStore<Decorated<Decorated<MemoryStore, FaultInjection>, Hold>>;

/// `cache → hold → faults → memory`, the fault injector, the hold, and a handle on the
/// memory store's state that bypasses the cache.
struct Fixture {
    store: Cached,
    faults: FaultInjection,
    hold: Hold,
    bare: MemoryStore,
}

fn fixture(layer: CacheLayer) -> Fixture {
    let (faults, hold, bare) = (FaultInjection::new(), Hold::default(), MemoryStore::new());
    let store = StoreBuilder::new()
        .layer(layer)
        .layer(hold.clone())
        .layer(faults.clone())
        .build(bare.clone());
    Fixture { store, faults, hold, bare }
}

/// A fixture whose session has `a → b` (revision 1) and a metadata record.
async fn seeded(layer: CacheLayer) -> Fixture {
    let fixture = fixture(layer);
    let first = commit(SESSION).append(chain("n", 2, None)).usage("agent", "m", usage(1, 2, 0, 0));
    fixture.bare.commit_runtime_state(first.build()).await.unwrap();
    fixture.bare.save_session_meta(meta(SESSION, "first")).await.unwrap();
    fixture
}

/// Reads `scope` through the store.
async fn read(store: &dyn RuntimePersistence, scope: SessionReadScope) -> PersistedSessionRead {
    store.load_session(scope).await.unwrap().expect("the session exists")
}

/// Polls `call` once; it must still be pending.
async fn start<F: Future + Unpin>(call: &mut F) {
    std::future::poll_fn(|cx| {
        assert!(Pin::new(&mut *call).poll(cx).is_pending(), "the call should be in flight");
        Poll::Ready(())
    })
    .await;
}

/// Asserts that the cached store and the store itself answer every read alike.
async fn agrees_with_the_store(fixture: &Fixture, node_ids: &[&str]) {
    let scopes = [FULL, head_path()];
    for scope in scopes {
        let cached = fixture.store.load_session(scope.clone()).await.unwrap();
        let truth = fixture.bare.load_session(scope.clone()).await.unwrap();
        assert_eq!(cached, truth, "{scope:?}");
    }
    for id in node_ids {
        let cached = fixture.store.load_node(id).await.unwrap();
        assert_eq!(cached, fixture.bare.load_node(id).await.unwrap(), "node {id}");
    }
    let cached = fixture.store.load_session_meta().await.unwrap();
    assert_eq!(cached, fixture.bare.load_session_meta().await.unwrap(), "meta");
}

#[tokio::test]
async fn hits_never_reach_the_store() {
    let fixture = seeded(CacheLayer::default()).await;
    for _ in 0..3 {
        read(&fixture.store, FULL).await;
        read(&fixture.store, head_path()).await;
        fixture.store.load_node("n0").await.unwrap().expect("n0 exists");
        fixture.store.load_session_meta().await.unwrap().expect("meta exists");
    }
    assert_eq!(fixture.faults.calls(Operation::LoadSession), 2, "one fill per scope");
    assert_eq!(fixture.faults.calls(Operation::LoadNode), 1);
    assert_eq!(fixture.faults.calls(Operation::LoadSessionMeta), 1);
    agrees_with_the_store(&fixture, &["n0", "n1"]).await;
}

#[tokio::test]
async fn hits_share_payload_bytes_instead_of_copying_them() {
    let fixture = fixture(CacheLayer::default());
    let first = commit(SESSION)
        .append(chain("n", 3, None))
        .config(&b"config bytes"[..])
        .checkpoint(checkpoint_with_payloads("shared"));
    fixture.store.commit_runtime_state(first.build()).await.unwrap();

    let (one, two) = (read(&fixture.store, FULL).await, read(&fixture.store, FULL).await);
    assert_eq!(fixture.faults.calls(Operation::LoadSession), 1, "the second read is a hit");
    assert_eq!(one, two);
    let same = |a: &Bytes, b: &Bytes| a.as_ptr() == b.as_ptr() && !a.is_empty();
    assert!(same(&one.config, &two.config));
    for (a, b) in one.graph.nodes.iter().zip(&two.graph.nodes) {
        assert!(same(&a.payload, &b.payload), "node {} was copied", a.node_id);
    }
    let (a, b) = (one.checkpoint.unwrap(), two.checkpoint.unwrap());
    assert!(same(a.tool_state.payload.as_ref().unwrap(), b.tool_state.payload.as_ref().unwrap()));

    let first = fixture.store.load_node("n1").await.unwrap().unwrap();
    let second = fixture.store.load_node("n1").await.unwrap().unwrap();
    assert_eq!(fixture.faults.calls(Operation::LoadNode), 1, "the second read is a hit");
    assert!(same(&first.payload, &second.payload));
}

#[tokio::test(start_paused = true)]
async fn concurrent_misses_of_one_key_make_one_store_read() {
    let fixture = seeded(CacheLayer::default()).await;
    let delay = Duration::from_millis(50);
    fixture.faults.delay_next(Operation::LoadSession, 1, delay);
    fixture.faults.delay_next(Operation::LoadNode, 1, delay);
    fixture.faults.delay_next(Operation::LoadSessionMeta, 1, delay);
    let store = &fixture.store;
    let sessions = join_all((0..8).map(|_| store.load_session(FULL)));
    let nodes = join_all((0..8).map(|_| store.load_node("n1")));
    let metas = join_all((0..8).map(|_| store.load_session_meta()));
    let (sessions, nodes, metas) = tokio::join!(sessions, nodes, metas);
    assert_eq!(fixture.faults.calls(Operation::LoadSession), 1);
    assert_eq!(fixture.faults.calls(Operation::LoadNode), 1);
    assert_eq!(fixture.faults.calls(Operation::LoadSessionMeta), 1);
    let truth = fixture.bare.load_session(FULL).await.unwrap();
    assert!(sessions.into_iter().all(|read| read.unwrap() == truth));
    assert!(nodes.into_iter().all(|node| node.unwrap().unwrap().node_id == "n1"));
    assert!(metas.into_iter().all(|meta| meta.unwrap().is_some()));

    // Distinct keys are distinct flights.
    let (_, _) = tokio::join!(store.load_node("n0"), store.load_session(head_path()));
    assert_eq!(fixture.faults.calls(Operation::LoadNode), 2);
    assert_eq!(fixture.faults.calls(Operation::LoadSession), 2);
}

/// The interleaving a naive read-through cache gets wrong: a fill reads revision 1, a commit
/// lands and invalidates, then the fill inserts what it read.
#[tokio::test]
async fn a_fill_that_raced_a_commit_is_never_served() {
    let fixture = seeded(CacheLayer::default()).await;
    let (reached, release) = fixture.hold.next(Operation::LoadSession);
    let mut fill = pin!(fixture.store.load_session(FULL));
    start(&mut fill).await;
    reached.await.unwrap(); // the fill has read revision 1 and not inserted it yet

    let next = commit(SESSION).expect(1).append([node("n2", Some("n1"))]);
    fixture.store.commit_runtime_state(next.build()).await.unwrap();
    release.send(()).unwrap();
    assert_eq!(fill.await.unwrap().unwrap().head_revision, 1, "the racing read saw revision 1");

    assert_eq!(read(&fixture.store, FULL).await.head_revision, 2, "revision 1 was resurrected");
    assert_eq!(fixture.faults.calls(Operation::LoadSession), 2, "the stale fill was refilled");
    agrees_with_the_store(&fixture, &["n2"]).await;
}

#[tokio::test]
async fn a_node_fill_that_raced_a_tombstone_is_never_served() {
    let fixture = seeded(CacheLayer::default()).await;
    let (reached, release) = fixture.hold.next(Operation::LoadNode);
    let mut fill = pin!(fixture.store.load_node("n1"));
    start(&mut fill).await;
    reached.await.unwrap();
    fixture.store.tombstone_nodes(&["n1".to_owned()]).await.unwrap();
    release.send(()).unwrap();
    assert!(fill.await.unwrap().is_some(), "the racing read saw the live node");
    assert_eq!(fixture.store.load_node("n1").await.unwrap(), None, "the tombstoned node is back");
}

#[tokio::test]
async fn a_meta_fill_that_raced_a_save_is_never_served() {
    let fixture = seeded(CacheLayer::default()).await;
    let (reached, release) = fixture.hold.next(Operation::LoadSessionMeta);
    let mut fill = pin!(fixture.store.load_session_meta());
    start(&mut fill).await;
    reached.await.unwrap();
    fixture.store.save_session_meta(meta(SESSION, "second")).await.unwrap();
    release.send(()).unwrap();
    assert_eq!(fill.await.unwrap(), Some(meta(SESSION, "first")));
    assert_eq!(fixture.store.load_session_meta().await.unwrap(), Some(meta(SESSION, "second")));
}

/// A caller that joins a flight started before a commit it must see reads again.
#[tokio::test]
async fn a_caller_that_joins_a_flight_older_than_a_commit_reads_again() {
    let fixture = seeded(CacheLayer::default()).await;
    let (reached, release) = fixture.hold.next(Operation::LoadSession);
    let mut leader = pin!(fixture.store.load_session(FULL));
    start(&mut leader).await;
    reached.await.unwrap();
    let next = commit(SESSION).expect(1).append([node("n2", Some("n1"))]);
    fixture.store.commit_runtime_state(next.build()).await.unwrap();

    // Started after the commit returned: it waits for the leader's flight, then must not
    // take its revision-1 answer.
    let mut joiner = pin!(fixture.store.load_session(FULL));
    start(&mut joiner).await;
    release.send(()).unwrap();
    assert_eq!(leader.await.unwrap().unwrap().head_revision, 1);
    assert_eq!(joiner.await.unwrap().unwrap().head_revision, 2);
    assert_eq!(fixture.faults.calls(Operation::LoadSession), 2);
}

/// A read that starts while a commit is in flight (delayed by the fault layer before it
/// reaches the store) fills with the old revision; once the commit returns, that entry is
/// never served.
#[tokio::test(start_paused = true)]
async fn a_fill_during_a_commit_in_flight_is_never_served_after_it() {
    let fixture = seeded(CacheLayer::default()).await;
    fixture.faults.delay_next(Operation::CommitRuntimeState, 1, Duration::from_secs(1));
    let next = commit(SESSION).expect(1).append([node("n2", Some("n1"))]);
    let mut committing = pin!(fixture.store.commit_runtime_state(next.build()));
    start(&mut committing).await;
    assert_eq!(read(&fixture.store, FULL).await.head_revision, 1, "read before the commit");
    committing.await.unwrap();
    assert_eq!(read(&fixture.store, FULL).await.head_revision, 2);
}

/// Starts a commit appending `n2` on a seeded fixture and waits until the store applied it;
/// the hold keeps its answer until `release` is sent.
async fn commit_held_after_applying(
    fixture: &Fixture,
) -> (
    Pin<Box<impl Future<Output = Result<RuntimeCommitResult, StoreError>> + '_>>,
    oneshot::Sender<()>,
) {
    let (applied, release) = fixture.hold.next(Operation::CommitRuntimeState);
    let next = commit(SESSION).expect(1).append([node("n2", Some("n1"))]);
    let mut committing = Box::pin(fixture.store.commit_runtime_state(next.build()));
    start(&mut committing).await;
    applied.await.unwrap();
    (committing, release)
}

/// While a commit that the store applied has not returned to the cache, a read that begins
/// after another reader saw the new revision must not go back to the old one.
#[tokio::test]
async fn no_read_goes_back_in_time_while_a_write_is_in_flight() {
    let fixture = seeded(CacheLayer::default()).await;
    read(&fixture.store, FULL).await;
    let (committing, release) = commit_held_after_applying(&fixture).await;
    assert_eq!(read(&fixture.bare, FULL).await.head_revision, 2, "another reader sees it");
    assert_eq!(read(&fixture.store, FULL).await.head_revision, 2, "the cache went back");
    release.send(()).unwrap();
    committing.await.unwrap();
}

/// A commit's write-through is skipped when another write of the session overlapped it: here
/// a tombstone starts and ends while the commit (already applied) is on its way back.
#[tokio::test]
async fn a_write_that_overlapped_another_does_not_write_through() {
    let fixture = seeded(CacheLayer::default()).await;
    read(&fixture.store, FULL).await;
    let (committing, release) = commit_held_after_applying(&fixture).await;
    fixture.store.tombstone_nodes(&["n0".to_owned()]).await.unwrap();
    release.send(()).unwrap();
    committing.await.unwrap();
    let ids: Vec<String> =
        read(&fixture.store, FULL).await.graph.nodes.into_iter().map(|n| n.node_id).collect();
    assert_eq!(ids, ["n1", "n2"], "the tombstoned n0 came back with the commit's update");

    // Two metadata saves: the first (held after the store applied it) returns last.
    fixture.store.load_session_meta().await.unwrap();
    let (applied, release) = fixture.hold.next(Operation::SaveSessionMeta);
    let mut first = pin!(fixture.store.save_session_meta(meta(SESSION, "older")));
    start(&mut first).await;
    applied.await.unwrap();
    fixture.store.save_session_meta(meta(SESSION, "newer")).await.unwrap();
    release.send(()).unwrap();
    first.await.unwrap();
    assert_eq!(fixture.store.load_session_meta().await.unwrap(), Some(meta(SESSION, "newer")));
}

#[tokio::test]
async fn a_dropped_fill_neither_poisons_the_key_nor_inserts() {
    let fixture = seeded(CacheLayer::default()).await;
    fixture.faults.hang_next(Operation::LoadSession, 1);
    let mut leader = Box::pin(fixture.store.load_session(FULL));
    start(&mut leader).await;
    let mut waiter = pin!(fixture.store.load_session(FULL));
    start(&mut waiter).await;
    drop(leader);
    assert_eq!(waiter.await.unwrap().unwrap().head_revision, 1, "the waiter took over");
    assert_eq!(fixture.faults.calls(Operation::LoadSession), 2);
    read(&fixture.store, FULL).await;
    assert_eq!(fixture.faults.calls(Operation::LoadSession), 2, "the waiter's read was cached");
}

#[tokio::test(start_paused = true)]
async fn a_dropped_write_counts_as_applied() {
    let fixture = seeded(CacheLayer::default()).await;
    read(&fixture.store, FULL).await;
    fixture.faults.delay_next(Operation::TombstoneNodes, 1, Duration::from_secs(60));
    let ids = ["n1".to_owned()];
    let mut tombstone = Box::pin(fixture.store.tombstone_nodes(&ids));
    start(&mut tombstone).await;
    drop(tombstone); // the store may or may not have applied it: the cache cannot know
    fixture.bare.tombstone_nodes(&ids).await.unwrap();
    assert_eq!(read(&fixture.store, FULL).await.graph.nodes.len(), 1);
    assert_eq!(fixture.faults.calls(Operation::LoadSession), 2);
}

#[tokio::test]
async fn a_commit_updates_the_session_reads_it_applied_to() {
    let fixture = seeded(CacheLayer::default()).await;
    read(&fixture.store, FULL).await;
    read(&fixture.store, head_path()).await;
    let commits = [
        // Append with a checkpoint, usage and frames.
        commit(SESSION)
            .expect(1)
            .append([node("n2", Some("n1")), node("n3", Some("n2"))])
            .checkpoint(checkpoint_with_payloads("one"))
            .usage("agent", "m", usage(5, 0, 1, 0))
            .frames(
                vec![AgentFrame {
                    frame_id: "f".into(),
                    payload: Bytes::from_static(b"frame"),
                    blob_refs: vec![],
                }],
                Some("f"),
            )
            .stamp("turn-1"),
        // A leaf move back up the path, no checkpoint (the head keeps its own).
        commit(SESSION).expect(2).leaf(Some("n1")),
        // A branch off the path, a checkpoint carrying an earlier part by ref.
        commit(SESSION).expect(3).append([node("b0", Some("n0"))]).checkpoint(RuntimeCheckpoint {
            tool_state: CheckpointBlob::reference(strata_core::blob_ref(&Bytes::from(
                "tool state one",
            ))),
            ..checkpoint_with_payloads("two")
        }),
        // A new root.
        commit(SESSION).expect(4).append([node("r", None)]),
    ];
    for (revision, next) in commits.into_iter().enumerate() {
        fixture.store.commit_runtime_state(next.build()).await.unwrap();
        let reads_before = fixture.faults.calls(Operation::LoadSession);
        let (full, path) =
            (read(&fixture.store, FULL).await, read(&fixture.store, head_path()).await);
        assert_eq!(fixture.faults.calls(Operation::LoadSession), reads_before, "commit {revision}");
        assert_eq!(Some(full), fixture.bare.load_session(FULL).await.unwrap());
        assert_eq!(Some(path), fixture.bare.load_session(head_path()).await.unwrap());
    }
    // The path of the new leaf by id is the head path, also served from the cache.
    let by_id = SessionReadScope::ActivePath { leaf_node_id: Some("r".into()) };
    let reads_before = fixture.faults.calls(Operation::LoadSession);
    assert_eq!(read(&fixture.store, by_id.clone()).await, read(&fixture.bare, by_id).await);
    assert_eq!(fixture.faults.calls(Operation::LoadSession), reads_before);
}

#[tokio::test]
async fn commits_leave_no_dead_path_entries_behind() {
    let layer = CacheLayer::default();
    let fixture = seeded(layer.clone()).await;
    read(&fixture.store, head_path()).await;
    let mut parent = "n1".to_owned();
    for turn in 0..50 {
        let id = format!("turn{turn}");
        let next = commit(SESSION).append([node(&id, Some(&parent))]);
        fixture.store.commit_runtime_state(next.build()).await.unwrap();
        assert_eq!(read(&fixture.store, head_path()).await.graph.nodes.len(), turn + 3);
        parent = id;
    }
    assert_eq!(fixture.faults.calls(Operation::LoadSession), 1, "every reload was a hit");
    layer.run_pending_tasks().await;
    assert_eq!(layer.entry_count(), 2, "the head path, by `None` and by the current leaf");
}

#[tokio::test]
async fn the_first_commit_updates_a_cached_absent_session() {
    let fixture = fixture(CacheLayer::default());
    assert_eq!(fixture.store.load_session(FULL).await.unwrap(), None);
    let first =
        commit(SESSION).append(chain("n", 3, None)).checkpoint(checkpoint_with_payloads("x"));
    fixture.store.commit_runtime_state(first.build()).await.unwrap();
    assert_eq!(read(&fixture.store, FULL).await, read(&fixture.bare, FULL).await);
    assert_eq!(fixture.faults.calls(Operation::LoadSession), 1, "served from the update");
}

#[tokio::test]
async fn replace_full_updates_the_session_and_invalidates_every_node() {
    let fixture = seeded(CacheLayer::default()).await;
    read(&fixture.store, FULL).await;
    fixture.store.load_node("n0").await.unwrap().expect("n0");
    let replaced = commit(SESSION).expect(1).replace([node("x", None), node("n0", Some("x"))]);
    fixture.store.commit_runtime_state(replaced.build()).await.unwrap();
    agrees_with_the_store(&fixture, &["n0", "n1", "x"]).await;
    assert_eq!(fixture.faults.calls(Operation::LoadNode), 4, "n0 was read again");
}

#[tokio::test]
async fn tombstone_and_vacuum_invalidate_the_nodes_and_reads_they_touch() {
    let fixture = seeded(CacheLayer::default()).await;
    agrees_with_the_store(&fixture, &["n0", "n1"]).await;
    fixture.store.tombstone_nodes(&["n1".to_owned()]).await.unwrap();
    assert_eq!(fixture.store.load_node("n1").await.unwrap(), None);
    assert_eq!(read(&fixture.store, FULL).await.graph.nodes.len(), 1);
    let n0_reads = fixture.faults.calls(Operation::LoadNode);
    fixture.store.load_node("n0").await.unwrap().expect("n0");
    assert_eq!(fixture.faults.calls(Operation::LoadNode), n0_reads, "n0 stays cached");

    let sessions = fixture.faults.calls(Operation::LoadSession);
    assert_eq!(fixture.store.vacuum().await.unwrap().removed_node_count, 1);
    agrees_with_the_store(&fixture, &["n0", "n1"]).await;
    assert!(fixture.faults.calls(Operation::LoadSession) > sessions, "vacuum invalidated");
}

#[tokio::test]
async fn a_metadata_save_replaces_the_cached_record() {
    let fixture = seeded(CacheLayer::default()).await;
    fixture.store.load_session_meta().await.unwrap();
    fixture.store.save_session_meta(meta(SESSION, "second")).await.unwrap();
    assert_eq!(fixture.store.load_session_meta().await.unwrap(), Some(meta(SESSION, "second")));
    assert_eq!(fixture.faults.calls(Operation::LoadSessionMeta), 1, "served from the update");
}

#[tokio::test]
async fn a_head_revision_conflict_invalidates_what_another_writer_moved() {
    let fixture = seeded(CacheLayer::default()).await;
    read(&fixture.store, FULL).await;
    // Another writer (bypassing this cache) moves the head.
    let other = commit(SESSION).expect(1).append([node("o", Some("n1"))]);
    fixture.bare.commit_runtime_state(other.build()).await.unwrap();
    assert_eq!(read(&fixture.store, FULL).await.head_revision, 1, "still cached");
    let stale = commit(SESSION).expect(1).append([node("mine", Some("n1"))]);
    let conflict = fixture.store.commit_runtime_state(stale.build()).await;
    assert_eq!(conflict, Err(StoreError::HeadRevisionConflict { expected: Some(1), actual: 2 }));
    assert_eq!(read(&fixture.store, FULL).await.head_revision, 2);
}

#[tokio::test]
async fn failures_invalidate_unless_they_prove_nothing_was_applied() {
    let fixture = seeded(CacheLayer::default()).await;
    read(&fixture.store, FULL).await;
    let next = || commit(SESSION).append([node(&format!("x{}", rand_id()), Some("n1"))]).build();

    fixture.faults.fail_next(
        Operation::CommitRuntimeState,
        1,
        StoreError::NotApplied("refused".into()),
    );
    fixture.store.commit_runtime_state(next()).await.unwrap_err();
    read(&fixture.store, FULL).await;
    assert_eq!(fixture.faults.calls(Operation::LoadSession), 1, "nothing applied, still cached");

    // An ambiguous failure: the commit applied, the caller got an error.
    let lost = StoreError::Unavailable("reply lost".into());
    fixture.faults.fail_after_next(Operation::CommitRuntimeState, 1, lost);
    fixture.store.commit_runtime_state(next()).await.unwrap_err();
    assert_eq!(read(&fixture.store, FULL).await.head_revision, 2);
    assert_eq!(fixture.faults.calls(Operation::LoadSession), 2);
}

/// Distinct node ids for commits built in a loop.
fn rand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[tokio::test]
async fn queue_and_manifest_calls_always_reach_the_store() {
    let fixture = seeded(CacheLayer::default()).await;
    for _ in 0..2 {
        fixture.store.list_queued_work(SESSION).await.unwrap();
        fixture.store.list_pending_queued_work(SESSION).await.unwrap();
        fixture.store.list_uncommitted(u64::MAX).await.unwrap();
        fixture.store.gc_unreachable().await.unwrap();
    }
    for operation in [
        Operation::ListQueuedWork,
        Operation::ListPendingQueuedWork,
        Operation::ListUncommitted,
        Operation::GcUnreachable,
    ] {
        assert_eq!(fixture.faults.calls(operation), 2, "{operation}");
    }
}

#[tokio::test]
async fn handles_of_one_session_share_one_cache() {
    let faults = FaultInjection::new();
    let factory = StoreBuilder::new()
        .layer(CacheLayer::default().with_negative_caching(Duration::from_secs(60)))
        .layer(faults.clone())
        .build_factory(MemoryStoreFactory::default());
    let first = factory.create_store(SessionStoreRequest::new(SESSION)).await.unwrap();
    let second = factory.create_store(SessionStoreRequest::new(SESSION)).await.unwrap();
    first.commit_runtime_state(commit(SESSION).append(chain("n", 2, None)).build()).await.unwrap();
    assert_eq!(second.load_node("later").await.unwrap(), None);
    read(&*second, FULL).await;
    read(&*first, FULL).await;
    assert_eq!(
        faults.calls(Operation::LoadSession),
        1,
        "the second handle's fill served the first"
    );

    let next = commit(SESSION).expect(1).append([node("later", Some("n1"))]);
    first.commit_runtime_state(next.build()).await.unwrap();
    assert_eq!(read(&*second, FULL).await.head_revision, 2, "the write through the first handle");
    assert!(second.load_node("later").await.unwrap().is_some(), "the cached miss was invalidated");
    first.save_session_meta(meta(SESSION, "shared")).await.unwrap();
    assert_eq!(second.load_session_meta().await.unwrap(), Some(meta(SESSION, "shared")));

    // Another session's handle has a cache scope of its own.
    let other = factory.create_store(SessionStoreRequest::new("s2")).await.unwrap();
    assert_eq!(other.load_session(FULL).await.unwrap(), None);
}

#[tokio::test]
async fn a_deleted_session_starts_afresh_even_while_an_old_handle_lives() {
    let factory = StoreBuilder::new()
        .layer(CacheLayer::default())
        .build_factory(MemoryStoreFactory::default());
    let old = factory.create_store(SessionStoreRequest::new(SESSION)).await.unwrap();
    old.commit_runtime_state(commit(SESSION).append(chain("n", 2, None)).build()).await.unwrap();
    read(&*old, FULL).await;
    factory.delete_session(SESSION).await.unwrap();
    let fresh = factory.create_store(SessionStoreRequest::new(SESSION)).await.unwrap();
    assert_eq!(fresh.load_session(FULL).await.unwrap(), None, "the deleted state came back");
    // The old handle keeps working on its detached state (the memory factory's contract).
    assert_eq!(read(&*old, FULL).await.head_revision, 1);
}

#[tokio::test]
async fn handles_layered_without_a_session_have_caches_of_their_own() {
    let layer = CacheLayer::default();
    let store = MemoryStore::new();
    let (first, second) = (layer.layer(store.clone()), layer.layer(store.clone()));
    first.commit_runtime_state(commit(SESSION).build()).await.unwrap();
    read(&second, FULL).await;
    first.commit_runtime_state(commit(SESSION).build()).await.unwrap();
    assert_eq!(read(&second, FULL).await.head_revision, 1, "a private scope misses the write");
    // `build_for_session` shares the scope, as a layered factory does.
    let builder = StoreBuilder::new().layer(layer);
    let (third, fourth) = (
        builder.build_for_session(SESSION, store.clone()),
        builder.build_for_session(SESSION, store),
    );
    read(&fourth, FULL).await;
    third.commit_runtime_state(commit(SESSION).build()).await.unwrap();
    assert_eq!(read(&fourth, FULL).await.head_revision, 3);
}

#[tokio::test]
async fn node_misses_are_cached_only_when_negative_caching_is_on() {
    for negative in [false, true] {
        let layer = CacheLayer::default();
        let layer =
            if negative { layer.with_negative_caching(Duration::from_secs(60)) } else { layer };
        let fixture = seeded(layer).await;
        for _ in 0..2 {
            assert_eq!(fixture.store.load_node("missing").await.unwrap(), None);
        }
        let expected = if negative { 1 } else { 2 };
        assert_eq!(fixture.faults.calls(Operation::LoadNode), expected, "negative: {negative}");
        let next = commit(SESSION).expect(1).append([node("missing", Some("n1"))]);
        fixture.store.commit_runtime_state(next.build()).await.unwrap();
        assert!(
            fixture.store.load_node("missing").await.unwrap().is_some(),
            "negative: {negative}"
        );
    }
}

/// Expiry is moka's own clock (real time): these wait past a short time-to-live.
#[tokio::test]
async fn negative_entries_expire_after_their_own_time_to_live() {
    let ttl = Duration::from_millis(300);
    let fixture = seeded(CacheLayer::default().with_negative_caching(ttl)).await;
    fixture.store.load_node("missing").await.unwrap();
    fixture.store.load_node("n0").await.unwrap();
    tokio::time::sleep(ttl * 2).await;
    fixture.store.load_node("missing").await.unwrap();
    fixture.store.load_node("n0").await.unwrap();
    assert_eq!(fixture.faults.calls(Operation::LoadNode), 3, "only the miss expired");
}

#[tokio::test]
async fn another_writer_is_seen_after_the_time_to_live() {
    let ttl = Duration::from_millis(300);
    let fixture = seeded(CacheLayer::default().with_time_to_live(Some(ttl))).await;
    read(&fixture.store, FULL).await;
    fixture.bare.commit_runtime_state(commit(SESSION).build()).await.unwrap();
    tokio::time::sleep(ttl * 2).await;
    assert_eq!(read(&fixture.store, FULL).await.head_revision, 2);
}

#[tokio::test]
async fn revalidation_probes_the_head_revision_before_serving_a_session() {
    for mode in [Revalidation::Off, Revalidation::HeadRevision] {
        let fixture = seeded(CacheLayer::default().with_revalidation(mode)).await;
        read(&fixture.store, FULL).await;
        read(&fixture.store, FULL).await;
        // Another process commits (bypassing this cache).
        fixture.bare.commit_runtime_state(commit(SESSION).build()).await.unwrap();
        let seen = read(&fixture.store, FULL).await.head_revision;
        match mode {
            Revalidation::Off => assert_eq!(seen, 1, "trusted until the time-to-live"),
            Revalidation::HeadRevision => {
                assert_eq!(seen, 2);
                // Fill; hit + probe; probe + refill; hit + probe.
                read(&fixture.store, FULL).await;
                assert_eq!(fixture.faults.calls(Operation::LoadSession), 5);
            }
        }
    }
}

#[tokio::test]
async fn entries_are_bounded_by_count_and_by_bytes() {
    const BYTES: u64 = 16 << 10;
    let by_count = CacheLayer::default().with_max_entries(8);
    let by_bytes = CacheLayer::default().with_max_bytes(BYTES);
    let within_count: fn(&CacheLayer) -> bool = |layer| layer.entry_count() <= 8;
    let within_bytes: fn(&CacheLayer) -> bool = |layer| layer.weighted_size() <= BYTES;
    for (layer, within) in [(by_count, within_count), (by_bytes, within_bytes)] {
        let fixture = seeded(layer.clone()).await;
        let nodes = chain("m", 200, Some("n1"));
        fixture
            .store
            .commit_runtime_state(commit(SESSION).expect(1).append(nodes).build())
            .await
            .unwrap();
        for index in 0..200 {
            fixture.store.load_node(&format!("m{index}")).await.unwrap().expect("node");
        }
        layer.run_pending_tasks().await;
        assert!(
            within(&layer),
            "{layer:?}: {} entries, {} bytes",
            layer.entry_count(),
            layer.weighted_size()
        );
        assert!(layer.entry_count() > 0, "something stays cached");
    }
}

#[tokio::test]
async fn debug_names_the_layer_in_the_stack_order() {
    let layer = CacheLayer::default().with_store_name("sessions");
    assert_eq!(format!("{layer:?}"), "cache(sessions)");
    let store = StoreBuilder::new().layer(CacheLayer::default()).build(MemoryStore::new());
    assert_eq!(format!("{store:?}"), "cache → MemoryStore");
    assert_eq!(store.durability_tier(), DurabilityTier::Inline);
}
