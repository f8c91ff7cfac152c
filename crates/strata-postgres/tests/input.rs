//! Bad input and bad data: oversize values and ids, NUL, values the server refuses (typed
//! `InvalidInput`, nothing applied); undecodable rows (`CorruptData` naming table and key); a
//! schema written by a newer build (`UnsupportedRecordSchemaVersion`); the database clock;
//! LISTEN/NOTIFY wake-ups.

mod common;

use std::time::Duration;

use strata_core::*;
use strata_postgres::{Limits, PostgresStoreFactory, SCHEMA_VERSION};
use strata_testkit::fixtures::{checkpoint_with_payloads, commit, draft, intent, node};

use common::TestDatabase;

fn small_limits() -> Limits {
    Limits { max_id_bytes: 64, max_value_bytes: 1024, max_call_bytes: 4096 }
}

async fn snapshot(
    store: &dyn RuntimePersistence,
) -> (Option<PersistedSessionRead>, Vec<QueuedWorkBatch>) {
    (
        store.load_session(SessionReadScope::FullGraph).await.expect("load"),
        store.list_queued_work("s").await.expect("list"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_typed_error_and_applies_nothing() {
    let Some(database) = TestDatabase::create("badinput").await else { return };
    let (factory, store) =
        common::store_with_root(database.config().with_limits(small_limits())).await;
    let before = snapshot(&store).await;
    let big = Bytes::from(vec![0u8; 2048]);
    let mut oversize_node = node("b", Some("a"));
    oversize_node.payload = big.clone();
    let refused = [
        ("oversize node", commit("s").append([oversize_node]).build()),
        ("oversize config", commit("s").config(big.clone()).build()),
        (
            "too much in one call",
            commit("s")
                .append((0..8).map(|i| {
                    let mut n = node(&format!("m{i}"), None);
                    n.payload = Bytes::from(vec![1u8; 1000]);
                    n
                }))
                .build(),
        ),
        ("over-long node id", commit("s").append([node(&"x".repeat(65), None)]).build()),
        ("NUL in a node id", commit("s").append([node("nul\0id", None)]).build()),
        ("NUL in a parent id", commit("s").append([node("c", Some("p\0"))]).build()),
        ("empty turn id", commit("s").stamp("").build()),
    ];
    for (what, refused) in refused {
        let error = store.commit_runtime_state(refused).await.expect_err(what);
        assert_eq!(error.kind(), "invalid_input", "{what}: {error:?}");
    }
    let drafts = [
        ("oversize item", draft("s").payloads([big.clone()]).build()),
        ("available_at beyond 2^63-1", draft("s").available_at(u64::MAX).build()),
        ("NUL in a source key", draft("s").source_key("k\0").build()),
    ];
    for (what, refused) in drafts {
        let error = store.enqueue_queued_work(refused).await.expect_err(what);
        assert_eq!(error.kind(), "invalid_input", "{what}: {error:?}");
    }
    let error = store.record_intent(intent(&"i".repeat(65), "s", 1)).await.expect_err("long id");
    assert_eq!(error.kind(), "invalid_input", "{error:?}");
    assert_eq!(snapshot(&store).await, before, "nothing of the refused calls was applied");
    // On an unbound store the session id itself is checked (a bound one answers with the
    // binding mismatch first, as the contract orders the checks).
    let fresh = factory.open_store("fresh").await.expect("open");
    let error = fresh.commit_runtime_state(commit("s\0").build()).await.expect_err("NUL session");
    assert_eq!(error.kind(), "invalid_input", "{error:?}");
    assert_eq!(fresh.load_session(SessionReadScope::FullGraph).await.expect("load"), None);
    // Lookups with ids that could never be stored find nothing (and never reach the server).
    assert_eq!(store.load_node("nul\0id").await.expect("load_node"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_the_server_refuses_are_invalid_input() {
    let Some(database) = TestDatabase::create("serverrefuses").await else { return };
    // Limits raised past what PostgreSQL accepts: the server's refusal must still be typed.
    let limits = Limits { max_id_bytes: 1 << 20, ..Limits::default() };
    let (_factory, store) = common::store_with_root(database.config().with_limits(limits)).await;
    let before = snapshot(&store).await;
    // A b-tree key over ~2.7 kB (random, so that compression cannot shrink it).
    let long_id: String = (0..6000).map(|_| fastrand::alphanumeric()).collect();
    let error = store
        .commit_runtime_state(
            commit("s")
                .append([node("fresh", Some("a")), node(&long_id, None)])
                .usage("a", "m", TokenUsage { input_tokens: 1, ..Default::default() })
                .build(),
        )
        .await
        .expect_err("an index key over the page limit");
    assert_eq!(error.kind(), "invalid_input", "{error:?}");
    let mut bad_utf8_frame = commit("s").build();
    bad_utf8_frame.current_frame_id = Some("nul\0frame".into());
    let error = store.commit_runtime_state(bad_utf8_frame).await.expect_err("NUL in text");
    assert_eq!(error.kind(), "invalid_input", "{error:?}");
    assert_eq!(snapshot(&store).await, before, "nothing of the refused commits was applied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_rows_are_corrupt_data_naming_table_and_key() {
    let Some(database) = TestDatabase::create("corrupt").await else { return };
    let factory = PostgresStoreFactory::connect(database.config()).await.expect("connect");
    let store = factory.open_store("s").await.expect("open");
    store
        .commit_runtime_state(
            commit("s").append([node("a", None)]).checkpoint(checkpoint_with_payloads("x")).build(),
        )
        .await
        .expect("commit");
    store.enqueue_queued_work(draft("s").build()).await.expect("enqueue");
    let raw = database.raw().await;
    raw.batch_execute("UPDATE strata.strata_batches SET delivery_policy = 'someday'")
        .await
        .expect("corrupt");
    let error = store.list_queued_work("s").await.expect_err("undecodable batch");
    let StoreError::CorruptData { location, detail } = &error else { panic!("{error:?}") };
    assert!(location.contains("strata_batches") && location.contains("batch-1"), "{location}");
    assert!(detail.contains("someday"), "{detail}");

    // A head whose checkpoint ref no longer matches its manifest: reads and gc refuse it, and
    // gc deletes nothing.
    raw.batch_execute("UPDATE strata.strata_heads SET turn_state = 'tampered'")
        .await
        .expect("corrupt");
    let error = store.load_session(SessionReadScope::FullGraph).await.expect_err("tampered head");
    assert!(
        matches!(&error, StoreError::CorruptData { location, .. } if location.contains("strata_heads")),
        "{error:?}"
    );
    let error = store.gc_unreachable().await.expect_err("gc over an undecodable root");
    assert_eq!(error.kind(), "corrupt_data");
    let blobs: i64 =
        raw.query_one("SELECT count(*) FROM strata.strata_blobs", &[]).await.unwrap().get(0);
    assert_eq!(blobs, 3, "gc deleted nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_from_a_newer_build_is_refused_and_migration_is_idempotent() {
    let Some(database) = TestDatabase::create("schema").await else { return };
    // Hosts starting together migrate once (advisory lock) and all succeed.
    let (a, b) = tokio::join!(
        PostgresStoreFactory::connect(database.config()),
        PostgresStoreFactory::connect(database.config())
    );
    a.expect("first host");
    b.expect("second host");
    PostgresStoreFactory::connect(database.config()).await.expect("reconnect to a current schema");
    let raw = database.raw().await;
    raw.batch_execute("UPDATE strata.strata_schema_version SET version = 99").await.expect("bump");
    let error = PostgresStoreFactory::connect(database.config()).await.expect_err("newer schema");
    assert_eq!(
        error,
        StoreError::UnsupportedRecordSchemaVersion {
            record_kind: "strata postgres schema".into(),
            actual: 99,
            expected: SCHEMA_VERSION,
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_follow_the_database_clock() {
    let Some(database) = TestDatabase::create("dbclock").await else { return };
    let factory = PostgresStoreFactory::connect(database.config()).await.expect("connect");
    let store = factory.open_store("s").await.expect("open");
    let raw = database.raw().await;
    let db_now = || async {
        let row = raw
            .query_one("SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint", &[])
            .await
            .unwrap();
        row.get::<_, i64>(0) as u64
    };
    let before = db_now().await;
    let batch = store.enqueue_queued_work(draft("s").build()).await.expect("enqueue");
    let first = store
        .claim_ready_queued_work("s", "a", QueuedWorkClaimBoundary::Idle, 300, 1)
        .await
        .expect("claim")
        .expect("a claim");
    let after = db_now().await;
    for time in [batch.enqueued_at_ms, first.claimed_at_epoch_ms] {
        assert!(
            (before..=after).contains(&time),
            "{time} within the database's [{before}, {after}]"
        );
    }
    assert_eq!(first.expires_at_epoch_ms, first.claimed_at_epoch_ms + 300);
    let live = store.claim_ready_queued_work("s", "b", QueuedWorkClaimBoundary::Idle, 300, 1).await;
    assert_eq!(live.expect("claim"), None, "the lease is live on the database clock");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let second = store
        .claim_ready_queued_work("s", "b", QueuedWorkClaimBoundary::Idle, 60_000, 1)
        .await
        .expect("claim")
        .expect("the expired lease is reclaimable");
    assert!(second.fencing_token > first.fencing_token);
    let error = store.renew_queued_work_claim(&first, 1_000).await.expect_err("reclaimed");
    assert_eq!(error.kind(), "claim_expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_wake_on_committed_enqueues_only() {
    let Some(database) = TestDatabase::create("listen").await else { return };
    let factory = PostgresStoreFactory::connect(database.config()).await.expect("connect");
    let mut listener = factory.queue_listener().await.expect("listen");
    let other_host = PostgresStoreFactory::connect(database.config()).await.expect("connect");
    let store = other_host.open_store("s").await.expect("open");
    store.enqueue_queued_work(draft("s").source_key("k").build()).await.expect("enqueue");
    let wakeup = tokio::time::timeout(Duration::from_secs(5), listener.next())
        .await
        .expect("woken within 5 s")
        .expect("wake-up");
    assert_eq!((wakeup.store_id.as_str(), wakeup.session_id.as_str()), ("s", "s"));
    // A deduplicated enqueue rolls back: no notification. The next real one wakes.
    store.enqueue_queued_work(draft("s").source_key("k").build()).await.expect("dedup");
    store.enqueue_queued_work(draft("other").build()).await.expect("enqueue");
    let next = tokio::time::timeout(Duration::from_secs(5), listener.next())
        .await
        .expect("woken")
        .expect("wake-up");
    assert_eq!(next.session_id, "other", "the deduplicated enqueue sent nothing");
    store.enqueue_queued_work(draft("s").build()).await.expect("enqueue");
    tokio::time::timeout(Duration::from_secs(5), listener.wait_for("s", "s"))
        .await
        .expect("woken")
        .expect("wake-up for s");
}
