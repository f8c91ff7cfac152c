//! Queued work: enqueue and source keys, listing, claims (boundary, availability, slots,
//! joins, limits, exact ids), leases (renew, abandon, expiry, reclaim, fencing), cancel, and
//! completion inside commits.

use strata_core::*;

use super::*;
use crate::fixtures::*;

pub(super) const CHECKS: &[Check] = checks![
    "queue::enqueue_round_trip" Nothing => enqueue_round_trip,
    "queue::source_key_idempotent_while_batch_exists" Nothing => source_key_idempotent,
    "queue::per_session_isolation_and_order" Nothing => per_session_isolation,
    "queue::enqueue_seq_never_reused" Nothing => enqueue_seq_never_reused,
    "queue::cancel_vs_live_and_expired_claims" Nothing => cancel_vs_claims,
    "queue::list_vs_list_pending" Nothing => list_vs_pending,
    "queue::exact_ids_claim_is_order_sensitive" Nothing => exact_ids_claim,
    "queue::boundary_gating" Nothing => boundary_gating,
    "queue::renew_keeps_ids_and_extends_expiry" Nothing => renew_extends,
    "queue::expired_claim_owned_until_reclaimed" Nothing => expired_claim_still_owned,
    "queue::abandon_then_reclaim_with_greater_fencing" Nothing => abandon_and_reclaim,
    "queue::availability_follows_the_clock" Nothing => availability,
    "queue::exclusive_head_claimed_alone" Nothing => exclusive_head,
    "queue::ttl_zero_claim_reclaimable" Nothing => ttl_zero_reclaim,
    "queue::max_batches_limits_the_claim" Nothing => max_batches,
    "queue::join_groups_by_policy_and_merge_key" Nothing => join_grouping,
    "queue::completion_requires_the_lease_token" Nothing => completion_lease_token,
    "queue::completion_of_a_subset_rejected" Nothing => completion_subset,
    "queue::completion_for_another_session_rejected" Nothing => completion_other_session,
    "queue::completions_are_atomic" Nothing => completions_atomic,
    "queue::completion_and_stamp_are_atomic" Nothing => completion_and_stamp,
    "queue::renew_and_complete_fail_after_reclaim" Nothing => fail_after_reclaim,
];

/// Lease long enough never to expire unless a check moves the clock on purpose.
const LONG_TTL: u64 = 60_000;

const OTHER: &str = "another-session";

async fn enqueue(
    store: &dyn RuntimePersistence,
    draft: DraftBuilder,
) -> Result<QueuedWorkBatch, String> {
    store.enqueue_queued_work(draft.build()).await.step("enqueue_queued_work")
}

/// Enqueues `count` default (joinable, same policy and key) batches.
async fn enqueue_many(
    store: &dyn RuntimePersistence,
    count: usize,
) -> Result<Vec<QueuedWorkBatch>, String> {
    let mut batches = Vec::with_capacity(count);
    for _ in 0..count {
        batches.push(enqueue(store, draft(SESSION)).await?);
    }
    Ok(batches)
}

async fn claim(
    store: &dyn RuntimePersistence,
    session: &str,
    owner: &str,
    boundary: QueuedWorkClaimBoundary,
    ttl: u64,
    max: usize,
) -> Result<Option<QueuedWorkClaim>, String> {
    store.claim_ready_queued_work(session, owner, boundary, ttl, max).await.step(&format!(
        "claim_ready_queued_work({session:?}, {owner:?}, {boundary:?}, ttl {ttl}, max {max})"
    ))
}

/// An idle claim on the main session that must succeed.
async fn claim_some(
    store: &dyn RuntimePersistence,
    owner: &str,
    ttl: u64,
    max: usize,
) -> Result<QueuedWorkClaim, String> {
    claim(store, SESSION, owner, QueuedWorkClaimBoundary::Idle, ttl, max)
        .await?
        .ok_or_else(|| format!("claim by {owner:?}: expected a claim, observed None"))
}

/// Fails unless an idle claim by `owner` returns None.
async fn claim_none(store: &dyn RuntimePersistence, owner: &str, what: &str) -> Outcome {
    let observed =
        claim(store, SESSION, owner, QueuedWorkClaimBoundary::Idle, LONG_TTL, 10).await?;
    expect_eq(what, &None, &observed.map(|claim| claim.batch_ids()))
}

fn ids_of(batches: &[&QueuedWorkBatch]) -> Vec<String> {
    batches.iter().map(|batch| batch.batch_id.clone()).collect()
}

async fn listed(store: &dyn RuntimePersistence, session: &str) -> Result<Vec<String>, String> {
    let batches = store.list_queued_work(session).await.step("list_queued_work")?;
    Ok(batches.into_iter().map(|batch| batch.batch_id).collect())
}

async fn pending(store: &dyn RuntimePersistence, session: &str) -> Result<Vec<String>, String> {
    let batches = store.list_pending_queued_work(session).await.step("list_pending_queued_work")?;
    Ok(batches.into_iter().map(|batch| batch.batch_id).collect())
}

fn expired(claim: &QueuedWorkClaim) -> StoreError {
    StoreError::QueuedWorkClaimExpired {
        session_id: claim.session_id.clone(),
        claim_id: claim.claim_id.clone(),
    }
}

/// Commits a completion (nothing else) on the main session.
async fn complete(
    store: &dyn RuntimePersistence,
    completion: QueuedWorkCompletion,
) -> Result<RuntimeCommitResult, StoreError> {
    store.commit_runtime_state(commit(SESSION).complete(completion).build()).await
}

async fn enqueue_round_trip(env: &Env) -> Outcome {
    let store = env.store().await?;
    let payloads =
        vec![Bytes::from_static(&[0xff, 0x00]), Bytes::new(), Bytes::from_static(b"text")];
    let sent = draft(SESSION)
        .source_key("key")
        .delivery(DeliveryPolicy::AfterCurrentTurnCommit)
        .exclusive()
        .merge_key(MergeKey::Group("g".into()))
        .available_at(env.clock.now_ms() + 5)
        .payloads(payloads.clone());
    let batch = enqueue(&*store, sent.clone()).await?;
    let sent = sent.build();
    let echoed = QueuedWorkBatchDraft {
        session_id: batch.session_id.clone(),
        source_key: batch.source_key.clone(),
        delivery_policy: batch.delivery_policy,
        slot_policy: batch.slot_policy,
        merge_key: batch.merge_key.clone(),
        available_at_ms: batch.available_at_ms,
        payloads: batch.items.iter().map(|item| item.payload.clone()).collect(),
    };
    expect_eq("the stored batch's draft fields", &sent, &echoed)?;
    expect_eq("enqueued_at_ms (the store clock)", &env.clock.now_ms(), &batch.enqueued_at_ms)?;
    let item_ids: Vec<String> = batch.items.iter().map(|item| item.item_id.clone()).collect();
    let derived: Vec<String> =
        (0..payloads.len()).map(|index| format!("{}/{index}", batch.batch_id)).collect();
    expect_eq("item ids (<batch_id>/<index>)", &derived, &item_ids)?;
    let stored = store.list_queued_work(SESSION).await.step("list_queued_work")?;
    expect_eq("list_queued_work", &vec![batch], &stored)
}

async fn source_key_idempotent(env: &Env) -> Outcome {
    let store = env.store().await?;
    let first = enqueue(&*store, draft(SESSION).source_key("k")).await?;
    let again =
        enqueue(&*store, draft(SESSION).source_key("k").payloads([Bytes::from_static(b"other")]))
            .await?;
    expect_eq("second enqueue with the same source key", &first, &again)?;
    let claimed = claim_some(&*store, "owner", LONG_TTL, 10).await?;
    let while_claimed = enqueue(&*store, draft(SESSION).source_key("k")).await?;
    expect_eq("enqueue with the key while its batch is claimed", &first, &while_claimed)?;
    expect_eq(
        "list after repeated enqueues",
        &vec![first.batch_id.clone()],
        &listed(&*store, SESSION).await?,
    )?;
    complete(&*store, claimed.completion()).await.step("completing the batch")?;
    let after_completion = enqueue(&*store, draft(SESSION).source_key("k")).await?;
    expect_new_batch("enqueue with the key after completion", &first, &after_completion)?;
    store.cancel_queued_work_batch(SESSION, &after_completion.batch_id).await.step("cancel")?;
    let after_cancel = enqueue(&*store, draft(SESSION).source_key("k")).await?;
    expect_new_batch("enqueue with the key after cancel", &after_completion, &after_cancel)
}

async fn per_session_isolation(env: &Env) -> Outcome {
    let store = env.store().await?;
    let b1 = enqueue(&*store, draft(SESSION)).await?;
    let c1 = enqueue(&*store, draft(OTHER)).await?;
    let b2 = enqueue(&*store, draft(SESSION)).await?;
    expect_new_batch("second enqueue of the main session", &b1, &b2)?;
    expect_eq("list of the main session", &ids_of(&[&b1, &b2]), &listed(&*store, SESSION).await?)?;
    expect_eq("list of the other session", &ids_of(&[&c1]), &listed(&*store, OTHER).await?)?;
    let other = claim(&*store, OTHER, "owner", QueuedWorkClaimBoundary::Idle, LONG_TTL, 10)
        .await?
        .ok_or("claim on the other session returned None")?;
    expect_eq("claim on the other session", &ids_of(&[&c1]), &other.batch_ids())?;
    expect_eq("session of that claim", &OTHER, &other.session_id.as_str())?;
    let main = claim_some(&*store, "owner", LONG_TTL, 10).await?;
    expect_eq("claim on the main session", &ids_of(&[&b1, &b2]), &main.batch_ids())
}

async fn enqueue_seq_never_reused(env: &Env) -> Outcome {
    let store = env.store().await?;
    let batches = enqueue_many(&*store, 2).await?;
    store
        .cancel_queued_work_batch(SESSION, &batches[1].batch_id)
        .await
        .step("cancel the last batch")?;
    let third = enqueue(&*store, draft(SESSION)).await?;
    expect_new_batch("enqueue after cancelling the last batch", &batches[1], &third)?;
    let claimed = claim_some(&*store, "owner", LONG_TTL, 10).await?;
    complete(&*store, claimed.completion()).await.step("completing every batch")?;
    let fourth = enqueue(&*store, draft(SESSION)).await?;
    expect_new_batch("enqueue after completing every batch", &third, &fourth)
}

async fn cancel_vs_claims(env: &Env) -> Outcome {
    let store = env.store().await?;
    let batch = enqueue(&*store, draft(SESSION)).await?;
    claim_some(&*store, "owner", 1_000, 10).await?;
    let live = store.cancel_queued_work_batch(SESSION, &batch.batch_id).await.step("cancel")?;
    expect_eq("cancel of a live-claimed batch", &None, &live)?;
    expect_eq(
        "list after the refused cancel",
        &ids_of(&[&batch]),
        &listed(&*store, SESSION).await?,
    )?;
    env.clock.advance(1_001);
    let cancelled =
        store.cancel_queued_work_batch(SESSION, &batch.batch_id).await.step("cancel")?;
    expect_eq("cancel of an expired-claim batch", &Some(&batch), &cancelled.as_ref())?;
    expect_eq("list after cancel", &Vec::<String>::new(), &listed(&*store, SESSION).await?)?;
    let missing = store.cancel_queued_work_batch(SESSION, &batch.batch_id).await.step("cancel")?;
    expect_eq("cancel of a missing batch", &None, &missing)
}

async fn list_vs_pending(env: &Env) -> Outcome {
    let store = env.store().await?;
    let claimed = enqueue(&*store, draft(SESSION)).await?;
    let later = enqueue(&*store, draft(SESSION).available_at(env.clock.now_ms() + 10_000)).await?;
    let free = enqueue(&*store, draft(SESSION).exclusive()).await?;
    let claim = claim_some(&*store, "owner", 1_000, 1).await?;
    expect_eq("claimed batch", &ids_of(&[&claimed]), &claim.batch_ids())?;
    let everything = ids_of(&[&claimed, &later, &free]);
    expect_eq(
        "list_queued_work (claimed and future batches included)",
        &everything,
        &listed(&*store, SESSION).await?,
    )?;
    expect_eq(
        "list_pending_queued_work (live claim excluded)",
        &ids_of(&[&later, &free]),
        &pending(&*store, SESSION).await?,
    )?;
    env.clock.advance(1_000);
    expect_eq(
        "list_pending_queued_work once the claim expired",
        &everything,
        &pending(&*store, SESSION).await?,
    )
}

async fn exact_ids_claim(env: &Env) -> Outcome {
    let store = env.store().await?;
    let batches = enqueue_many(&*store, 3).await?;
    let all = ids_of(&batches.iter().collect::<Vec<_>>());
    let reversed = vec![all[1].clone(), all[0].clone()];
    let wrong = store
        .claim_ready_queued_work_by_batch_ids(
            SESSION,
            "owner",
            QueuedWorkClaimBoundary::Idle,
            LONG_TTL,
            &reversed,
        )
        .await
        .step("claim by ids in the wrong order")?;
    expect_eq("claim by ids in the wrong order", &None, &wrong.map(|claim| claim.batch_ids()))?;
    expect_eq(
        "pending after the refused exact claim (nothing claimed)",
        &all,
        &pending(&*store, SESSION).await?,
    )?;
    let exact = all[..2].to_vec();
    let claimed = store
        .claim_ready_queued_work_by_batch_ids(
            SESSION,
            "owner",
            QueuedWorkClaimBoundary::Idle,
            LONG_TTL,
            &exact,
        )
        .await
        .step("claim by exact ids")?;
    expect_eq("claim by exact ids", &Some(exact), &claimed.map(|claim| claim.batch_ids()))?;
    expect_eq(
        "pending after the exact claim",
        &all[2..].to_vec(),
        &pending(&*store, SESSION).await?,
    )
}

async fn boundary_gating(env: &Env) -> Outcome {
    let store = env.store().await?;
    let after_turn =
        enqueue(&*store, draft(SESSION).delivery(DeliveryPolicy::AfterCurrentTurnCommit)).await?;
    let safe = enqueue(&*store, draft(SESSION)).await?;
    let mid_turn = claim(
        &*store,
        SESSION,
        "owner",
        QueuedWorkClaimBoundary::ActiveTurnCheckpoint,
        LONG_TTL,
        10,
    )
    .await?;
    expect_eq(
        "ActiveTurnCheckpoint claim with an AfterCurrentTurnCommit head",
        &None,
        &mid_turn.map(|claim| claim.batch_ids()),
    )?;
    let idle = claim_some(&*store, "owner", LONG_TTL, 10).await?;
    expect_eq(
        "Idle claim (stops at the differing delivery policy)",
        &ids_of(&[&after_turn]),
        &idle.batch_ids(),
    )?;
    let next = claim(
        &*store,
        SESSION,
        "owner",
        QueuedWorkClaimBoundary::ActiveTurnCheckpoint,
        LONG_TTL,
        10,
    )
    .await?;
    expect_eq(
        "ActiveTurnCheckpoint claim with an EarliestSafeBoundary head",
        &Some(ids_of(&[&safe])),
        &next.map(|claim| claim.batch_ids()),
    )
}

async fn renew_extends(env: &Env) -> Outcome {
    let store = env.store().await?;
    enqueue(&*store, draft(SESSION)).await?;
    let claimed = claim_some(&*store, "owner", 1_000, 10).await?;
    let now = env.clock.now_ms();
    expect_eq(
        "claim times (claimed_at, expires_at)",
        &(now, now + 1_000),
        &(claimed.claimed_at_epoch_ms, claimed.expires_at_epoch_ms),
    )?;
    env.clock.advance(500);
    let renewed = store.renew_queued_work_claim(&claimed, 2_000).await.step("renew")?;
    let expected = QueuedWorkClaim { expires_at_epoch_ms: now + 500 + 2_000, ..claimed.clone() };
    let comparable = QueuedWorkClaim { batches: claimed.batches.clone(), ..renewed.clone() };
    expect_eq("renewed claim (same ids, tokens and batches; new expiry)", &expected, &comparable)?;
    expect_eq("renewed claim's batch ids", &claimed.batch_ids(), &renewed.batch_ids())?;
    env.clock.advance(1_000);
    claim_none(
        &*store,
        "intruder",
        "claim by another owner past the old expiry but within the renewed lease",
    )
    .await
}

async fn expired_claim_still_owned(env: &Env) -> Outcome {
    let store = env.store().await?;
    let batch = enqueue(&*store, draft(SESSION)).await?;
    let claimed = claim_some(&*store, "owner", 100, 10).await?;
    env.clock.advance(200);
    expect_eq(
        "pending after the lease expired",
        &ids_of(&[&batch]),
        &pending(&*store, SESSION).await?,
    )?;
    store
        .renew_queued_work_claim(&claimed, LONG_TTL)
        .await
        .step("renew of an expired, not reclaimed claim")?;
    expect_eq("pending after renewal", &Vec::<String>::new(), &pending(&*store, SESSION).await?)?;
    complete(&*store, claimed.completion()).await.step("completion of the revived claim")?;
    expect_eq("list after completion", &Vec::<String>::new(), &listed(&*store, SESSION).await?)
}

async fn abandon_and_reclaim(env: &Env) -> Outcome {
    let store = env.store().await?;
    let batch = enqueue(&*store, draft(SESSION)).await?;
    let first = claim_some(&*store, "first", LONG_TTL, 10).await?;
    store.abandon_queued_work_claim(&first).await.step("abandon")?;
    expect_eq("pending after abandon", &ids_of(&[&batch]), &pending(&*store, SESSION).await?)?;
    let second = claim_some(&*store, "second", LONG_TTL, 10).await?;
    expect_greater("fencing token of the reclaim", first.fencing_token, second.fencing_token)?;
    ensure(second.claim_id != first.claim_id && second.lease_token != first.lease_token, || {
        "claim_id and lease_token must be unique per claim".to_owned()
    })?;
    store.abandon_queued_work_claim(&first).await.step("abandon of a stale claim (idempotent)")?;
    expect_eq(
        "pending after abandoning the stale claim (the new claim keeps the batch)",
        &Vec::<String>::new(),
        &pending(&*store, SESSION).await?,
    )?;
    store.renew_queued_work_claim(&second, LONG_TTL).await.step("renew of the new claim")?;
    Ok(())
}

async fn availability(env: &Env) -> Outcome {
    let store = env.store().await?;
    let batch = enqueue(&*store, draft(SESSION).available_at(env.clock.now_ms() + 1_000)).await?;
    claim_none(&*store, "owner", "claim before available_at").await?;
    env.clock.advance(999);
    claim_none(&*store, "owner", "claim 1 ms before available_at").await?;
    env.clock.advance(1);
    let claimed = claim_some(&*store, "owner", LONG_TTL, 10).await?;
    expect_eq("claim at available_at", &ids_of(&[&batch]), &claimed.batch_ids())
}

async fn exclusive_head(env: &Env) -> Outcome {
    let store = env.store().await?;
    let exclusive = enqueue(&*store, draft(SESSION).exclusive()).await?;
    let join_a = enqueue(&*store, draft(SESSION)).await?;
    let join_b = enqueue(&*store, draft(SESSION)).await?;
    expect_eq(
        "claim with an Exclusive head",
        &ids_of(&[&exclusive]),
        &claim_some(&*store, "owner", LONG_TTL, 10).await?.batch_ids(),
    )?;
    expect_eq(
        "next claim (Join group)",
        &ids_of(&[&join_a, &join_b]),
        &claim_some(&*store, "owner", LONG_TTL, 10).await?.batch_ids(),
    )
}

async fn ttl_zero_reclaim(env: &Env) -> Outcome {
    let store = env.store().await?;
    let batch = enqueue(&*store, draft(SESSION)).await?;
    let first = claim_some(&*store, "first", 0, 10).await?;
    let now = env.clock.now_ms();
    expect_eq(
        "ttl-0 claim times (expired at birth)",
        &(now, now),
        &(first.claimed_at_epoch_ms, first.expires_at_epoch_ms),
    )?;
    expect_eq(
        "pending with an expired-at-birth claim",
        &ids_of(&[&batch]),
        &pending(&*store, SESSION).await?,
    )?;
    let second = claim_some(&*store, "second", LONG_TTL, 10).await?;
    expect_greater("fencing token of the reclaim", first.fencing_token, second.fencing_token)?;
    expect_error(
        "renew of the reclaimed ttl-0 claim",
        store.renew_queued_work_claim(&first, LONG_TTL).await,
        &expired(&first),
    )
}

async fn max_batches(env: &Env) -> Outcome {
    let store = env.store().await?;
    let batches = enqueue_many(&*store, 3).await?;
    let zero = claim(&*store, SESSION, "owner", QueuedWorkClaimBoundary::Idle, LONG_TTL, 0).await?;
    expect_eq("claim with max_batches 0", &None, &zero.map(|claim| claim.batch_ids()))?;
    let all = ids_of(&batches.iter().collect::<Vec<_>>());
    expect_eq("pending after max_batches 0", &all, &pending(&*store, SESSION).await?)?;
    expect_eq(
        "claim with max_batches 2",
        &all[..2].to_vec(),
        &claim_some(&*store, "owner", LONG_TTL, 2).await?.batch_ids(),
    )?;
    expect_eq(
        "next claim",
        &all[2..].to_vec(),
        &claim_some(&*store, "owner", LONG_TTL, 5).await?.batch_ids(),
    )
}

async fn join_grouping(env: &Env) -> Outcome {
    let store = env.store().await?;
    use DeliveryPolicy::{AfterCurrentTurnCommit as After, EarliestSafeBoundary as Safe};
    let group = |name: &str| MergeKey::Group(name.to_owned());
    let plan = [
        (Safe, group("g"), false),
        (Safe, group("g"), false),
        (Safe, group("h"), false),
        (Safe, group("g"), false),
        (After, group("g"), false),
        (After, group("g"), false),
        (After, group("g"), true),
        (After, group("g"), false),
    ];
    let mut ids = Vec::new();
    for (delivery, key, exclusive) in plan {
        let mut builder = draft(SESSION).delivery(delivery).merge_key(key);
        if exclusive {
            builder = builder.exclusive();
        }
        ids.push(enqueue(&*store, builder).await?.batch_id);
    }
    let expected_groups: [&[usize]; 6] = [&[0, 1], &[2], &[3], &[4, 5], &[6], &[7]];
    for (round, group) in expected_groups.iter().enumerate() {
        let expected: Vec<String> = group.iter().map(|index| ids[*index].clone()).collect();
        let claimed = claim_some(&*store, "owner", LONG_TTL, 10).await?;
        expect_eq(
            &format!("claim #{} (batches {group:?} of the plan)", round + 1),
            &expected,
            &claimed.batch_ids(),
        )?;
    }
    claim_none(&*store, "owner", "claim once everything is claimed").await
}

async fn completion_lease_token(env: &Env) -> Outcome {
    let store = env.store().await?;
    let batch = enqueue(&*store, draft(SESSION)).await?;
    let claimed = claim_some(&*store, "owner", LONG_TTL, 10).await?;
    let mut forged = claimed.completion();
    forged.lease_token.push_str("-forged");
    expect_error(
        "completion with a wrong lease token",
        complete(&*store, forged).await,
        &expired(&claimed),
    )?;
    expect_eq(
        "list after the refused completion",
        &ids_of(&[&batch]),
        &listed(&*store, SESSION).await?,
    )?;
    let result =
        complete(&*store, claimed.completion()).await.step("completion with the right token")?;
    expect_eq("revision after the completing commit", &1, &result.head_revision)?;
    expect_eq("list after completion", &Vec::<String>::new(), &listed(&*store, SESSION).await?)
}

async fn completion_subset(env: &Env) -> Outcome {
    let store = env.store().await?;
    enqueue_many(&*store, 2).await?;
    let claimed = claim_some(&*store, "owner", LONG_TTL, 10).await?;
    let mut subset = claimed.completion();
    subset.batch_ids.truncate(1);
    expect_error(
        "completion listing a subset of the claim",
        complete(&*store, subset).await,
        &expired(&claimed),
    )?;
    expect_eq(
        "list after the refused completion",
        &claimed.batch_ids(),
        &listed(&*store, SESSION).await?,
    )
}

async fn completion_other_session(env: &Env) -> Outcome {
    let store = env.store().await?;
    let foreign = enqueue(&*store, draft(OTHER)).await?;
    let claimed = claim(&*store, OTHER, "owner", QueuedWorkClaimBoundary::Idle, LONG_TTL, 10)
        .await?
        .ok_or("claim on the other session returned None")?;
    expect_kind(
        "a commit of the main session completing another session's claim",
        complete(&*store, claimed.completion()).await,
        "claim_expired",
    )?;
    let mut relabelled = claimed.completion();
    relabelled.session_id = SESSION.to_owned();
    expect_kind(
        "the same completion relabelled with the main session",
        complete(&*store, relabelled).await,
        "claim_expired",
    )?;
    expect_eq(
        "other session's list after the refusals",
        &ids_of(&[&foreign]),
        &listed(&*store, OTHER).await?,
    )
}

async fn completions_atomic(env: &Env) -> Outcome {
    let store = env.store().await?;
    enqueue(&*store, draft(SESSION).exclusive()).await?;
    enqueue(&*store, draft(SESSION).exclusive()).await?;
    let first = claim_some(&*store, "owner", LONG_TTL, 10).await?;
    let second = claim_some(&*store, "owner", LONG_TTL, 10).await?;
    let mut forged = second.completion();
    forged.lease_token.push_str("-forged");
    let before = Snapshot::take(&*store).await?;
    let refused = commit(SESSION).complete(first.completion()).complete(forged).build();
    expect_error(
        "commit with one good and one bad completion",
        store.commit_runtime_state(refused).await,
        &expired(&second),
    )?;
    before.unchanged(&*store, "a commit with one bad completion").await?;
    store
        .renew_queued_work_claim(&first, LONG_TTL)
        .await
        .step("renew of the good claim after the refusal")?;
    let both = commit(SESSION).complete(first.completion()).complete(second.completion()).build();
    commit_ok(&*store, "commit completing both claims", both).await?;
    expect_eq("list after completing both", &Vec::<String>::new(), &listed(&*store, SESSION).await?)
}

async fn completion_and_stamp(env: &Env) -> Outcome {
    let store = env.store().await?;
    enqueue(&*store, draft(SESSION).exclusive()).await?;
    enqueue(&*store, draft(SESSION).exclusive()).await?;
    let first = claim_some(&*store, "owner", LONG_TTL, 10).await?;
    let second = claim_some(&*store, "owner", LONG_TTL, 10).await?;
    let stamped = commit(SESSION).complete(first.completion()).stamp("turn-q").build();
    let stored = commit_ok(&*store, "stamped commit with a completion", stamped.clone()).await?;
    let retried =
        store.commit_runtime_state(stamped).await.step("retry of the stamped completing commit")?;
    expect_eq("result of the retry", &stored, &retried)?;
    expect_eq("list after the retry", &second.batch_ids(), &listed(&*store, SESSION).await?)?;
    let mut forged = second.completion();
    forged.lease_token.push_str("-forged");
    let refused = commit(SESSION).complete(forged).stamp("turn-r").build();
    expect_error(
        "stamped commit with a bad completion",
        store.commit_runtime_state(refused).await,
        &expired(&second),
    )?;
    // Had the refused commit recorded its stamp, this different commit for the same turn would
    // conflict.
    let fixed = commit(SESSION).complete(second.completion()).stamp("turn-r").build();
    commit_ok(
        &*store,
        "the corrected commit for the same turn (no stamp may remain from the refusal)",
        fixed,
    )
    .await?;
    Ok(())
}

async fn fail_after_reclaim(env: &Env) -> Outcome {
    let store = env.store().await?;
    enqueue(&*store, draft(SESSION)).await?;
    let first = claim_some(&*store, "first", 100, 10).await?;
    env.clock.advance(200);
    let second = claim_some(&*store, "second", LONG_TTL, 10).await?;
    expect_error(
        "renew by the first owner after a reclaim",
        store.renew_queued_work_claim(&first, LONG_TTL).await,
        &expired(&first),
    )?;
    expect_error(
        "completion by the first owner after a reclaim",
        complete(&*store, first.completion()).await,
        &expired(&first),
    )?;
    complete(&*store, second.completion()).await.step("completion by the new owner")?;
    expect_eq("list after completion", &Vec::<String>::new(), &listed(&*store, SESSION).await?)
}
