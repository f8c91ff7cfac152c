//! Races between concurrent callers sharing one store (or several handles of one session):
//! one CAS winner, no double-owned batch, one batch per source key, no torn reads.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::future::join_all;
use strata_core::*;
use tokio::sync::Barrier;

use super::*;
use crate::fixtures::*;

pub(super) const CHECKS: &[Check] = checks![
    "concurrency::cas_race_has_exactly_one_winner" Nothing => cas_race,
    "concurrency::racing_claims_never_double_own" Nothing => claim_race,
    "concurrency::same_source_key_enqueues_give_one_batch" Nothing => enqueue_race,
    "concurrency::reads_never_see_a_torn_commit" Nothing => torn_reads,
];

/// How many tasks race.
const RACERS: usize = 8;

/// Runs `task(index, handle)` on `RACERS` spawned tasks released together, and collects the
/// results in index order (a panicking task becomes an `Err`).
async fn race<T, F, Fut>(env: &Env, task: F) -> Result<Vec<T>, String>
where
    T: Send + 'static,
    F: Fn(usize, Arc<dyn RuntimePersistence>) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(RACERS));
    let mut tasks = Vec::with_capacity(RACERS);
    for (index, handle) in env.handles(RACERS).await?.into_iter().enumerate() {
        let barrier = Arc::clone(&barrier);
        let work = task(index, handle);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            work.await
        }));
    }
    join_all(tasks)
        .await
        .into_iter()
        .map(|joined| joined.map_err(|error| format!("a racing task failed: {error}")))
        .collect()
}

async fn cas_race(env: &Env) -> Outcome {
    let store = env.store().await?;
    commit_ok(&*store, "first commit", commit(SESSION).append([node("root", None)]).build())
        .await?;
    let results = race(env, |index, handle| async move {
        let racer =
            commit(SESSION).expect(1).append([node(&format!("w{index}"), Some("root"))]).build();
        handle.commit_runtime_state(racer).await
    })
    .await?;
    let conflict = StoreError::HeadRevisionConflict { expected: Some(1), actual: 2 };
    let winners = results.iter().filter(|result| result.is_ok()).count();
    let losers = results.iter().filter(|result| result.as_ref().err() == Some(&conflict)).count();
    ensure(winners == 1 && losers == RACERS - 1, || {
        format!(
            "{RACERS} commits racing with Some(1): expected 1 winner and {} HeadRevisionConflict {{ expected: Some(1), actual: 2 }}, observed {}",
            RACERS - 1,
            render(&results)
        )
    })?;
    let read = full(&*store).await?;
    expect_eq("revision after the race", &2, &read.head_revision)?;
    expect_eq("node count after the race (root and the winner's node)", &2, &read.graph.nodes.len())
}

/// Every owner claims single batches until none is left; returns (batch id, fencing token).
async fn claim_round(env: &Env, round: usize) -> Result<Vec<(String, u64)>, String> {
    let claims = race(env, move |index, handle| async move {
        let owner = format!("owner-{round}-{index}");
        let mut won = Vec::new();
        loop {
            match handle
                .claim_ready_queued_work(SESSION, &owner, QueuedWorkClaimBoundary::Idle, 60_000, 1)
                .await
            {
                Ok(Some(claim)) => won.extend(
                    claim.batches.iter().map(|batch| (batch.batch_id.clone(), claim.fencing_token)),
                ),
                Ok(None) => return Ok(won),
                Err(error) => return Err(format!("claim by {owner}: {error:?}")),
            }
        }
    })
    .await?;
    Ok(claims.into_iter().collect::<Result<Vec<_>, String>>()?.into_iter().flatten().collect())
}

/// Fails unless every batch of `batches` was claimed exactly once; returns fencing per batch.
fn once_each(
    what: &str,
    batches: &[String],
    won: Vec<(String, u64)>,
) -> Result<BTreeMap<String, u64>, String> {
    let mut fencing = BTreeMap::new();
    for (batch, token) in &won {
        if fencing.insert(batch.clone(), *token).is_some() {
            return Err(format!(
                "{what}: batch {batch} was claimed by two owners at once; claims {}",
                render(&won)
            ));
        }
    }
    let claimed: Vec<&String> = fencing.keys().collect();
    let mut expected: Vec<&String> = batches.iter().collect();
    expected.sort();
    expect_eq(&format!("{what}: batches claimed"), &expected, &claimed)?;
    Ok(fencing)
}

async fn claim_race(env: &Env) -> Outcome {
    let store = env.store().await?;
    let mut batches = Vec::new();
    for _ in 0..2 * RACERS {
        let batch =
            store.enqueue_queued_work(draft(SESSION).exclusive().build()).await.step("enqueue")?;
        batches.push(batch.batch_id);
    }
    let first = once_each("first race", &batches, claim_round(env, 1).await?)?;
    env.clock.advance(60_000);
    let second = once_each("race to reclaim expired claims", &batches, claim_round(env, 2).await?)?;
    for (batch, token) in &second {
        expect_greater(
            &format!("fencing token of batch {batch} after a reclaim"),
            first[batch],
            *token,
        )?;
    }
    Ok(())
}

async fn enqueue_race(env: &Env) -> Outcome {
    let store = env.store().await?;
    let results = race(env, |_, handle| async move {
        handle.enqueue_queued_work(draft(SESSION).source_key("same-key").build()).await
    })
    .await?;
    let mut ids = Vec::new();
    for result in results {
        ids.push(result.step("racing enqueue")?.batch_id);
    }
    ids.dedup();
    expect_eq(
        "distinct batch ids returned to racing enqueues with one source key",
        &1,
        &ids.len(),
    )?;
    let listed = store.list_queued_work(SESSION).await.step("list_queued_work")?;
    expect_eq(
        "batches stored",
        &ids,
        &batch_ids(&listed).into_iter().map(str::to_owned).collect::<Vec<_>>(),
    )
}

/// Nodes each writer commit appends.
const PER_COMMIT: usize = 3;
/// Commits the writer makes.
const WRITES: usize = 25;

fn last_id(revision: u64) -> String {
    format!("c{revision}-{}", PER_COMMIT - 1)
}

/// One consistency check of a concurrent read: counts and leaf agree with the revision.
async fn read_once(store: &dyn RuntimePersistence) -> Outcome {
    let Some(read) =
        store.load_session(SessionReadScope::FullGraph).await.step("concurrent FullGraph read")?
    else {
        return Ok(());
    };
    let revision = read.head_revision;
    let expected = (revision as usize * PER_COMMIT, Some(last_id(revision)));
    expect_eq(
        &format!("FullGraph at revision {revision} (node count, leaf)"),
        &expected,
        &(read.graph.nodes.len(), read.graph.leaf_node_id.clone()),
    )?;
    let Some(active) = store
        .load_session(SessionReadScope::ActivePath { leaf_node_id: None })
        .await
        .step("concurrent ActivePath read")?
    else {
        return Err(
            "ActivePath read returned None after a FullGraph read returned a session".to_owned()
        );
    };
    let revision = active.head_revision;
    let tip = active.graph.nodes.last().map(|node| node.node_id.clone());
    expect_eq(
        &format!("ActivePath at revision {revision} (length, last node)"),
        &(revision as usize * PER_COMMIT, Some(last_id(revision))),
        &(active.graph.nodes.len(), tip),
    )
}

async fn torn_reads(env: &Env) -> Outcome {
    let writer_store = env.store().await?;
    let done = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for reader in env.handles(3).await? {
        let done = Arc::clone(&done);
        readers.push(tokio::spawn(async move {
            let mut reads = 0u64;
            while !done.load(Ordering::SeqCst) || reads == 0 {
                read_once(&*reader).await?;
                reads += 1;
                tokio::task::yield_now().await;
            }
            Ok::<u64, String>(reads)
        }));
    }
    let writer = tokio::spawn(async move {
        let mut parent: Option<String> = None;
        for revision in 1..=WRITES as u64 {
            let nodes = chain(&format!("c{revision}-"), PER_COMMIT, parent.as_deref());
            parent = Some(last_id(revision));
            writer_store
                .commit_runtime_state(commit(SESSION).append(nodes).build())
                .await
                .step("writer commit")?;
            tokio::task::yield_now().await;
        }
        Ok::<(), String>(())
    });
    let written = writer.await.map_err(|error| format!("writer task failed: {error}"));
    done.store(true, Ordering::SeqCst);
    for reader in join_all(readers).await {
        reader.map_err(|error| format!("reader task failed: {error}"))??;
    }
    written?
}
