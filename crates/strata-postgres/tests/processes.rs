//! Two OS processes standing for two hosts, sharing one session through one database: racing
//! CAS commits on the session (exactly one winner per revision) and racing claims on its queue
//! (no batch owned twice, every batch completed exactly once). The children are ignored tests
//! of this binary, started with `--ignored`.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};

use strata_core::*;
use strata_postgres::{PostgresConfig, PostgresStore, PostgresStoreFactory};
use strata_testkit::fixtures::{commit, draft, node};

use common::{TestDatabase, child};

const URL_ENV: &str = "STRATA_PG_CHILD_URL";
const NAME_ENV: &str = "STRATA_PG_CHILD_NAME";
const SESSION: &str = "shared";
/// Revisions the two processes race to commit.
const REVISIONS: u64 = 200;
/// Batches the two processes race to claim.
const BATCHES: usize = 200;

fn child_env() -> Option<(String, String)> {
    Some((std::env::var(URL_ENV).ok()?, std::env::var(NAME_ENV).ok()?))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

async fn open(url: &str) -> PostgresStore {
    let factory = PostgresStoreFactory::connect(PostgresConfig::new(url).with_max_connections(2))
        .await
        .expect("child connect");
    factory.open_store(SESSION).await.expect("child open")
}

/// Child: commits with CAS until the head reaches `REVISIONS`; prints `won <revision>` per
/// successful commit.
#[test]
#[ignore = "child-process entry point, started by the parent test with --ignored"]
fn commit_racer() {
    let Some((url, name)) = child_env() else { return };
    runtime().block_on(async {
        let store = open(&url).await;
        loop {
            let revision = store
                .load_session(SessionReadScope::ActivePath { leaf_node_id: None })
                .await
                .expect("read")
                .map_or(0, |read| read.head_revision);
            if revision >= REVISIONS {
                return;
            }
            let next = revision + 1;
            let parent = (revision > 0).then(|| format!("r{revision}"));
            let attempt = commit(SESSION)
                .expect(revision)
                .append([node(&format!("r{next}"), parent.as_deref())])
                .config(name.clone().into_bytes())
                .build();
            match store.commit_runtime_state(attempt).await {
                Ok(result) => println!("won {}", result.head_revision),
                Err(StoreError::HeadRevisionConflict { .. }) => {}
                Err(error) => panic!("{name}: commit: {error:?}"),
            }
        }
    });
}

/// Child: claims one batch at a time and completes it in a commit until the queue is empty;
/// prints `done <batch> <fencing>` per completed batch.
#[test]
#[ignore = "child-process entry point, started by the parent test with --ignored"]
fn claim_racer() {
    let Some((url, name)) = child_env() else { return };
    runtime().block_on(async {
        let store = open(&url).await;
        loop {
            let claim = store
                .claim_ready_queued_work(SESSION, &name, QueuedWorkClaimBoundary::Idle, 60_000, 1)
                .await
                .expect("claim");
            let Some(claim) = claim else {
                if store.list_queued_work(SESSION).await.expect("list").is_empty() {
                    return;
                }
                continue; // the rest is held by the other process at this instant
            };
            store
                .commit_runtime_state(commit(SESSION).complete(claim.completion()).build())
                .await
                .expect("complete");
            println!("done {} {}", claim.batches[0].batch_id, claim.fencing_token);
        }
    });
}

/// Runs the child test `name` twice at once against `database`; returns each one's lines.
fn race(database: &TestDatabase, name: &str) -> Vec<Vec<String>> {
    let url = database.url();
    let children: Vec<_> = ["host-a", "host-b"]
        .iter()
        .map(|host| child(name, &[(URL_ENV, &url), (NAME_ENV, host)]).spawn().expect("spawn"))
        .collect();
    children
        .into_iter()
        .map(|mut process| {
            let lines: Vec<String> = BufReader::new(process.stdout.take().expect("stdout"))
                .lines()
                .map_while(Result::ok)
                .collect();
            assert!(process.wait().expect("wait").success(), "a child process failed");
            lines
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_racing_commits_have_one_winner_per_revision() {
    let Some(database) = TestDatabase::create("proccommits").await else { return };
    let factory = PostgresStoreFactory::connect(database.config()).await.expect("connect");
    let store = factory.open_store(SESSION).await.expect("open");
    let outputs = tokio::task::block_in_place(|| race(&database, "commit_racer"));
    let mut winners: BTreeMap<u64, usize> = BTreeMap::new();
    for (host, lines) in outputs.iter().enumerate() {
        for revision in lines.iter().filter_map(|line| line.strip_prefix("won ")) {
            let revision: u64 = revision.parse().expect("revision");
            assert!(winners.insert(revision, host).is_none(), "revision {revision} won twice");
        }
    }
    assert_eq!(winners.keys().copied().collect::<Vec<_>>(), (1..=REVISIONS).collect::<Vec<_>>());
    let read = store.load_session(SessionReadScope::FullGraph).await.expect("load").expect("head");
    assert_eq!(read.head_revision, REVISIONS);
    assert_eq!(read.graph.nodes.len() as u64, REVISIONS, "one node per revision: no loser applied");
    let hosts: std::collections::BTreeSet<usize> = winners.values().copied().collect();
    let per_host: Vec<usize> =
        (0..2).map(|host| winners.values().filter(|h| **h == host).count()).collect();
    println!("revisions won per host: {per_host:?}");
    assert_eq!(hosts.len(), 2, "both processes won revisions (they really raced)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_racing_claims_complete_every_batch_exactly_once() {
    let Some(database) = TestDatabase::create("procclaims").await else { return };
    let factory = PostgresStoreFactory::connect(database.config()).await.expect("connect");
    let store = factory.open_store(SESSION).await.expect("open");
    let mut enqueued = Vec::new();
    for _ in 0..BATCHES {
        let batch =
            store.enqueue_queued_work(draft(SESSION).exclusive().build()).await.expect("enqueue");
        enqueued.push(batch.batch_id);
    }
    let outputs = tokio::task::block_in_place(|| race(&database, "claim_racer"));
    let mut done: BTreeMap<String, u64> = BTreeMap::new();
    for lines in &outputs {
        for done_line in lines.iter().filter_map(|line| line.strip_prefix("done ")) {
            let mut parts = done_line.split(' ');
            let batch = parts.next().expect("batch").to_owned();
            let fencing: u64 = parts.next().expect("fencing").parse().expect("fencing");
            assert!(done.insert(batch.clone(), fencing).is_none(), "batch {batch} completed twice");
        }
    }
    enqueued.sort();
    assert_eq!(done.keys().cloned().collect::<Vec<_>>(), enqueued, "every batch completed once");
    assert!(done.values().all(|fencing| *fencing == 1), "no batch was ever claimed twice");
    let per_host: Vec<usize> = outputs
        .iter()
        .map(|lines| lines.iter().filter(|line| line.starts_with("done ")).count())
        .collect();
    println!("batches completed per host: {per_host:?}");
    assert!(per_host.iter().all(|count| *count > 0), "both processes completed batches");
    assert_eq!(store.list_queued_work(SESSION).await.expect("list"), vec![]);
}
