//! Server faults and how they surface: a backend killed mid-transaction (stamped commits end
//! applied exactly once under retries), a connection dropped before `COMMIT` (nothing applied,
//! `NotApplied`) or during a single-statement write (`Unavailable`, ambiguous), a read-only
//! server, a server that refuses connections.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use strata_core::*;
use strata_layers::RetryLayer;
use strata_postgres::{PostgresConfig, PostgresStoreFactory};
use strata_testkit::fixtures::{commit, draft, meta, node};

use common::TestDatabase;

/// Terminates every pooled Strata connection of the database (not the caller's own).
const KILL_STRATA_BACKENDS: &str = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
    WHERE datname = current_database() AND application_name = 'strata'
      AND pid <> pg_backend_pid()";

/// Commit number `n` of a linear history: node `n<n>`, one input token, stamp `t<n>`.
fn nth(n: u64) -> RuntimeCommit {
    commit("s")
        .expect(n - 1)
        .append([node(&format!("n{n}"), (n > 1).then(|| format!("n{}", n - 1)).as_deref())])
        .usage("agent", "m", TokenUsage { input_tokens: 1, ..Default::default() })
        .stamp(&format!("t{n}"))
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stamped_commits_apply_exactly_once_while_backends_are_killed() {
    let Some(database) = TestDatabase::create("kill").await else { return };
    let factory = PostgresStoreFactory::connect(database.config().with_max_connections(2))
        .await
        .expect("connect");
    let store = factory.open_store("s").await.expect("open");
    let killer_client = database.raw().await;
    let stop = Arc::new(AtomicBool::new(false));
    let killed = Arc::new(AtomicU64::new(0));
    let killer = {
        let (stop, killed) = (Arc::clone(&stop), Arc::clone(&killed));
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let row = killer_client.query_one(KILL_STRATA_BACKENDS, &[]).await.expect("kill");
                killed.fetch_add(row.get::<_, i64>(0) as u64, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(fastrand::u64(5..30))).await;
            }
        })
    };
    const COMMITS: u64 = 80;
    // The retry layer over the store: a stamped commit is a keyed write, so every retryable
    // error (NotApplied and the ambiguous Unavailable alike) is retried; the stamp makes the
    // ambiguous ones safe. The hook counts which kind each retry followed.
    let (not_applied, ambiguous) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let retry = {
        let (not_applied, ambiguous) = (Arc::clone(&not_applied), Arc::clone(&ambiguous));
        RetryLayer::default()
            .with_max_attempts(100)
            .with_backoff(Duration::from_millis(1), Duration::from_millis(20))
            .with_max_elapsed(Duration::from_secs(60))
            .with_on_retry(move |event| {
                let count =
                    if event.error.proves_nothing_applied() { &not_applied } else { &ambiguous };
                count.fetch_add(1, Ordering::SeqCst);
            })
    };
    let store = StoreBuilder::new().layer(retry).build(store);
    for n in 1..=COMMITS {
        let result = store.commit_runtime_state(nth(n)).await;
        let result = result.unwrap_or_else(|error| panic!("commit {n}: {error:?}"));
        assert_eq!(result.head_revision, n, "commit {n} (after retries) reports its own revision");
    }
    let (not_applied, ambiguous) =
        (not_applied.load(Ordering::SeqCst), ambiguous.load(Ordering::SeqCst));
    stop.store(true, Ordering::SeqCst);
    killer.await.expect("killer");
    let read = store.load_session(SessionReadScope::FullGraph).await.expect("load").expect("head");
    assert_eq!(read.head_revision, COMMITS, "one revision per logical commit");
    let ids: Vec<String> = read.graph.nodes.iter().map(|node| node.node_id.clone()).collect();
    let expected: Vec<String> = (1..=COMMITS).map(|n| format!("n{n}")).collect();
    assert_eq!(ids, expected, "each node once, in order");
    assert_eq!(read.token_ledger[0].usage.input_tokens, COMMITS, "usage appended once per commit");
    println!(
        "{} backends killed; {not_applied} NotApplied and {ambiguous} ambiguous failures retried",
        killed.load(Ordering::SeqCst)
    );
    assert!(not_applied + ambiguous > 0, "no kill landed inside a call: the test proved nothing");
}

/// Waits until a Strata backend is waiting for a lock, then terminates it.
async fn kill_the_waiter(client: &tokio_postgres::Client) {
    for _ in 0..500 {
        let row = client
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                 WHERE datname = current_database() AND application_name = 'strata'
                   AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .expect("kill");
        if row.get::<_, i64>(0) > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no Strata backend ever waited for the lock");
}

/// A full read, retried while it fails transiently: a pooled connection killed a moment ago
/// can be handed out once before the pool notices it closed (reads are always safe to retry).
async fn read_retrying(store: &dyn RuntimePersistence) -> PersistedSessionRead {
    for _ in 0..10 {
        match store.load_session(SessionReadScope::FullGraph).await {
            Ok(read) => return read.expect("head"),
            Err(error) if error.is_retryable() => continue,
            Err(error) => panic!("load: {error:?}"),
        }
    }
    panic!("load kept failing")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_lost_before_commit_applied_nothing() {
    let Some(database) = TestDatabase::create("lostbefore").await else { return };
    let (_factory, store) = common::store_with_root(database.config()).await;
    let holder = common::hold_row_lock(&database, "strata_heads").await;
    let blocked = {
        let store = store.clone();
        tokio::spawn(async move {
            store.commit_runtime_state(commit("s").append([node("b", Some("a"))]).build()).await
        })
    };
    kill_the_waiter(&holder).await;
    let error = blocked.await.expect("task").expect_err("the commit's connection was killed");
    assert!(error.proves_nothing_applied(), "killed before COMMIT: {error:?}");
    holder.batch_execute("ROLLBACK").await.expect("release");
    let read = read_retrying(&store).await;
    assert_eq!(
        (read.head_revision, read.graph.nodes.len()),
        (1, 1),
        "nothing of the killed commit"
    );
    // The pool replaced the dead connection: the retry (even unkeyed) is safe and applies.
    store
        .commit_runtime_state(commit("s").append([node("b", Some("a"))]).build())
        .await
        .expect("retry after NotApplied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_lost_during_a_single_statement_write_is_ambiguous() {
    let Some(database) = TestDatabase::create("lostduring").await else { return };
    let factory = PostgresStoreFactory::connect(database.config()).await.expect("connect");
    let store = factory.open_store("s").await.expect("open");
    store.save_session_meta(meta("s", "one")).await.expect("save");
    let holder = common::hold_row_lock(&database, "strata_session_meta").await;
    let blocked = {
        let store = store.clone();
        tokio::spawn(async move { store.save_session_meta(meta("s", "two")).await })
    };
    kill_the_waiter(&holder).await;
    let error = blocked.await.expect("task").expect_err("the write's connection was killed");
    assert_eq!(error.kind(), "unavailable", "{error:?}");
    assert!(error.is_retryable() && !error.proves_nothing_applied(), "{error:?}");
    holder.batch_execute("ROLLBACK").await.expect("release");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_server_refuses_writes_with_a_typed_error() {
    let Some(database) = TestDatabase::create("readonly").await else { return };
    let (_writable, store) = common::store_with_root(database.config()).await;
    let before = store.load_session(SessionReadScope::FullGraph).await.expect("load");
    let admin = database.raw().await;
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {} SET default_transaction_read_only = on",
            database.name
        ))
        .await
        .expect("make read-only");
    // New connections are read-only (as on a standby).
    let read_only =
        PostgresStoreFactory::connect(database.config()).await.expect("connect read-only");
    let store = read_only.open_existing_store("s").await.expect("open").expect("exists");
    let refused = [
        store
            .commit_runtime_state(commit("s").append([node("b", Some("a"))]).build())
            .await
            .map(drop),
        store.enqueue_queued_work(draft("s").build()).await.map(drop),
        store.save_session_meta(meta("s", "x")).await,
        store.tombstone_nodes(&["a".to_owned()]).await,
    ];
    for result in refused {
        let error = result.expect_err("a write on a read-only server");
        assert!(
            error.proves_nothing_applied() && error.to_string().contains("read-only"),
            "{error:?}"
        );
    }
    assert_eq!(store.load_session(SessionReadScope::FullGraph).await.expect("reads work"), before);
    assert_eq!(store.list_queued_work("s").await.expect("list"), vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_proves_nothing_was_applied() {
    let config = PostgresConfig::new("postgres://postgres@127.0.0.1:1/none")
        .with_connect_timeout(Duration::from_secs(2));
    let error = PostgresStoreFactory::connect(config).await.expect_err("nothing listens on port 1");
    assert!(error.proves_nothing_applied(), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_dropped_mid_transaction_leaves_no_transaction_behind() {
    let Some(database) = TestDatabase::create("cancelled").await else { return };
    let (_factory, store) =
        common::store_with_root(database.config().with_max_connections(1)).await;
    let holder = common::hold_row_lock(&database, "strata_heads").await;
    // The commit sends BEGIN and locks the head (waiting behind the holder) when polled, then
    // is dropped by the timeout in the middle of its transaction.
    let cancelled = tokio::time::timeout(
        Duration::from_millis(200),
        store.commit_runtime_state(commit("s").append([node("b", Some("a"))]).build()),
    )
    .await;
    assert!(cancelled.is_err(), "the commit was waiting for the lock: {cancelled:?}");
    holder.batch_execute("ROLLBACK").await.expect("release");
    // The only pooled connection was inside the dropped transaction: it was closed, not reused.
    let result = store
        .commit_runtime_state(commit("s").append([node("c", Some("a"))]).build())
        .await
        .expect("the next call runs on a fresh connection, outside any stale transaction");
    assert_eq!(result.head_revision, 2, "the dropped commit applied nothing");
    let stale: i64 = holder
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
               AND application_name = 'strata' AND state LIKE 'idle in transaction%'",
            &[],
        )
        .await
        .expect("activity")
        .get(0);
    assert_eq!(stale, 0, "no Strata connection sits inside an open transaction");
}
