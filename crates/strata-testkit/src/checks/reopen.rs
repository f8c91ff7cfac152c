//! Durability across a reopen (reopenable stores only): head, graph, tombstones, blobs,
//! ledger, stamps, binding, metadata, queue (claims and the sequence counter) and manifest.

use strata_core::*;

use super::*;
use crate::fixtures::*;

pub(super) const CHECKS: &[Check] = checks![
    "reopen::head_graph_blobs_ledger_and_stamps_survive" Reopen => head_survives,
    "reopen::queue_claims_and_sequence_survive" Reopen => queue_survives,
    "reopen::meta_and_manifest_survive" Reopen => meta_and_manifest_survive,
];

async fn head_survives(env: &Env) -> Outcome {
    let store = env.store().await?;
    let stamped = commit(SESSION)
        .expect(0)
        .append(chain("n", 3, None))
        .checkpoint(checkpoint_with_payloads("durable"))
        .usage("agent", "m", usage(1, 2, 3, 4))
        .frames(
            vec![AgentFrame {
                frame_id: "f".into(),
                payload: Bytes::from_static(&[0xff]),
                blob_refs: vec![],
            }],
            Some("f"),
        )
        .config(Bytes::from_static(&[0x00, 0xfe]))
        .stamp("turn-1")
        .build();
    let stored = commit_ok(&*store, "stamped commit", stamped.clone()).await?;
    commit_ok(
        &*store,
        "superseding checkpoint",
        commit(SESSION).checkpoint(checkpoint_with_payloads("newer")).build(),
    )
    .await?;
    store.tombstone_nodes(&["n2".to_owned()]).await.step("tombstone_nodes")?;
    let before = Snapshot::take(&*store).await?;
    let store = env.reopen(vec![store]).await?;
    before.unchanged(&*store, "reopen").await?;
    expect_eq(
        "load_node of a tombstoned node after reopen",
        &None,
        &store.load_node("n2").await.step("load_node")?,
    )?;
    let retried = store.commit_runtime_state(stamped).await.step("stamped retry after reopen")?;
    expect_eq("stamped retry after reopen returns the stored result", &stored, &retried)?;
    expect_error(
        "commit for another session after reopen (binding survives)",
        store.commit_runtime_state(commit("another-session").build()).await,
        &StoreError::SessionBindingMismatch {
            bound_session_id: SESSION.into(),
            attempted_session_id: "another-session".into(),
        },
    )?;
    expect_eq(
        "vacuum after reopen (the tombstone survived)",
        &1,
        &store.vacuum().await.step("vacuum")?.removed_node_count,
    )?;
    let report = store.gc_unreachable().await.step("gc_unreachable after reopen")?;
    expect_eq(
        "gc after reopen (the superseded blobs are still there to collect)",
        &GcReport { root_count: 1, retained_blob_count: 3, deleted_blob_count: 3 },
        &report,
    )
}

async fn queue_survives(env: &Env) -> Outcome {
    let store = env.store().await?;
    store.enqueue_queued_work(draft(SESSION).exclusive().build()).await.step("enqueue")?;
    let free =
        store.enqueue_queued_work(draft(SESSION).source_key("k").build()).await.step("enqueue")?;
    let cancelled =
        store.enqueue_queued_work(draft(SESSION).exclusive().build()).await.step("enqueue")?;
    store.cancel_queued_work_batch(SESSION, &cancelled.batch_id).await.step("cancel")?;
    let claim = store
        .claim_ready_queued_work(SESSION, "owner", QueuedWorkClaimBoundary::Idle, 10_000, 1)
        .await
        .step("claim")?
        .ok_or("claim returned None")?;
    let before = Snapshot::take(&*store).await?;
    let store = env.reopen(vec![store]).await?;
    before.unchanged(&*store, "reopen").await?;
    let again = store
        .enqueue_queued_work(draft(SESSION).source_key("k").build())
        .await
        .step("enqueue with a source key after reopen")?;
    expect_eq("source-key enqueue after reopen returns the stored batch", &free, &again)?;
    let fresh =
        store.enqueue_queued_work(draft(SESSION).build()).await.step("enqueue after reopen")?;
    expect_new_batch("enqueue after reopen (vs the cancelled batch)", &cancelled, &fresh)?;
    let renewed = store
        .renew_queued_work_claim(&claim, 10_000)
        .await
        .step("renew of a claim made before reopen")?;
    expect_eq("renewed claim's lease token", &claim.lease_token, &renewed.lease_token)?;
    store.abandon_queued_work_claim(&claim).await.step("abandon after reopen")?;
    let reclaimed = store
        .claim_ready_queued_work(SESSION, "other", QueuedWorkClaimBoundary::Idle, 10_000, 1)
        .await
        .step("reclaim after reopen")?
        .ok_or("reclaim after reopen returned None")?;
    expect_eq("reclaimed batch", &claim.batch_ids(), &reclaimed.batch_ids())?;
    expect_greater("fencing token after reopen", claim.fencing_token, reclaimed.fencing_token)
}

async fn meta_and_manifest_survive(env: &Env) -> Outcome {
    let store = env.store().await?;
    store.save_session_meta(meta(SESSION, "durable")).await.step("save_session_meta")?;
    store.record_intent(intent("open", SESSION, 100)).await.step("record_intent")?;
    store.record_intent(intent("done", SESSION, 100)).await.step("record_intent")?;
    commit_ok(
        &*store,
        "commit stamping an attachment",
        commit(SESSION).attachments(&["done"]).build(),
    )
    .await?;
    let before = Snapshot::take(&*store).await?;
    let store = env.reopen(vec![store]).await?;
    before.unchanged(&*store, "reopen").await?;
    if env.options.manifest == ManifestSupport::Real {
        store
            .record_intent(intent("done", SESSION, 200))
            .await
            .step("record_intent of a committed id")?;
        let rows = store.list_uncommitted(u64::MAX).await.step("list_uncommitted")?;
        let ids: Vec<&str> = rows.iter().map(|row| row.attachment_id.as_str()).collect();
        expect_eq("uncommitted ids after reopen (the commit stamp survived)", &vec!["open"], &ids)?;
    }
    Ok(())
}
