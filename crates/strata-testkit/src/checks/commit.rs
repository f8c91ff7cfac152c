//! Head, commit algorithm, checkpoint, usage, CAS, turn stamps, atomicity of refused commits,
//! and session metadata.

use strata_core::*;

use super::*;
use crate::fixtures::*;

pub(super) const CHECKS: &[Check] = checks![
    "head::declared_tier" Nothing => declared_tier,
    "head::empty_store_reads_none" Nothing => empty_store_reads_none,
    "head::revision_increments_per_commit" Nothing => revision_increments_per_commit,
    "head::opaque_fields_round_trip" Nothing => opaque_fields_round_trip,
    "head::session_binding_mismatch" Nothing => session_binding_mismatch,
    "checkpoint::payload_minted_and_hydrated" Nothing => checkpoint_minted_and_hydrated,
    "checkpoint::ref_only_commit_keeps_blobs" Nothing => checkpoint_ref_only_keeps_blobs,
    "checkpoint::identical_content_identical_refs" Nothing => checkpoint_identical_refs,
    "checkpoint::none_keeps_previous" Nothing => checkpoint_none_keeps_previous,
    "checkpoint::dangling_ref_rejected" Nothing => checkpoint_dangling_ref_rejected,
    "usage::ledger_merges_and_drops_zero_rows" Nothing => usage_ledger_merges,
    "cas::stale_expected_revision_conflicts" Nothing => cas_stale_conflicts,
    "cas::blind_write_skips_the_check" Nothing => cas_blind_write,
    "stamp::retry_returns_stored_result" Nothing => stamp_retry_returns_stored_result,
    "stamp::changed_hash_conflicts" Nothing => stamp_changed_hash_conflicts,
    "stamp::session_mismatch_conflicts" Nothing => stamp_session_mismatch_conflicts,
    "atomicity::binding_mismatch_applies_nothing" Nothing => refused_binding,
    "atomicity::stamp_session_mismatch_applies_nothing" Nothing => refused_stamp_session,
    "atomicity::stamp_hash_conflict_applies_nothing" Nothing => refused_stamp_hash,
    "atomicity::head_conflict_applies_nothing" Nothing => refused_head_conflict,
    "atomicity::expired_claim_applies_nothing" Nothing => refused_claim,
    "atomicity::duplicate_node_applies_nothing" Nothing => refused_duplicate_node,
    "meta::none_before_save_then_round_trip" Nothing => meta_round_trip,
    "meta::last_writer_wins" Nothing => meta_last_writer_wins,
];

/// What a read returns for a committed checkpoint part that carried a payload.
pub(crate) fn minted(payload: &[u8]) -> CheckpointBlob {
    CheckpointBlob {
        blob_ref: Some(blob_ref(payload)),
        payload: Some(Bytes::copy_from_slice(payload)),
    }
}

/// The hydrated form of a checkpoint whose parts all carry payloads (or nothing).
pub(crate) fn hydrated(checkpoint: &RuntimeCheckpoint) -> RuntimeCheckpoint {
    let part = |blob: &CheckpointBlob| match &blob.payload {
        Some(payload) => minted(payload),
        None => blob.clone(),
    };
    RuntimeCheckpoint {
        turn_state: checkpoint.turn_state.clone(),
        tool_state: part(&checkpoint.tool_state),
        plugin_snapshot: part(&checkpoint.plugin_snapshot),
        plugin_snapshot_revision: checkpoint.plugin_snapshot_revision,
        execution_state: part(&checkpoint.execution_state),
    }
}

/// The manifest a store must report for a hydrated checkpoint.
pub(crate) fn manifest_of(checkpoint: &RuntimeCheckpoint) -> SessionCheckpoint {
    let checkpoint = hydrated(checkpoint);
    SessionCheckpoint {
        turn_state: checkpoint.turn_state,
        tool_state_ref: checkpoint.tool_state.blob_ref,
        plugin_snapshot_ref: checkpoint.plugin_snapshot.blob_ref,
        plugin_snapshot_revision: checkpoint.plugin_snapshot_revision,
        execution_state_ref: checkpoint.execution_state.blob_ref,
    }
}

async fn declared_tier(env: &Env) -> Outcome {
    let store = env.store().await?;
    expect_eq("durability_tier()", &env.options.tier, &store.durability_tier())
}

async fn empty_store_reads_none(env: &Env) -> Outcome {
    let store = env.store().await?;
    for scope in [SessionReadScope::FullGraph, SessionReadScope::ActivePath { leaf_node_id: None }]
    {
        let read = store.load_session(scope.clone()).await.step("load_session")?;
        expect_eq(&format!("load_session({scope:?}) before any commit"), &None, &read)?;
    }
    expect_eq("load_node before any commit", &None, &store.load_node("a").await.step("load_node")?)
}

async fn revision_increments_per_commit(env: &Env) -> Outcome {
    let store = env.store().await?;
    for revision in 1..=3u64 {
        let id = format!("n{revision}");
        let result =
            commit_ok(&*store, "commit", commit(SESSION).append([node(&id, None)]).build()).await?;
        expect_eq(
            &format!("head_revision returned by commit #{revision}"),
            &revision,
            &result.head_revision,
        )?;
        let read = full(&*store).await?;
        expect_eq(
            &format!("head_revision read after commit #{revision}"),
            &revision,
            &read.head_revision,
        )?;
        expect_eq("session_id of the read", &SESSION, &read.session_id.as_str())?;
    }
    Ok(())
}

async fn opaque_fields_round_trip(env: &Env) -> Outcome {
    let store = env.store().await?;
    let odd = Bytes::from_static(&[0xff, 0x00, 0xfe, 0x80]);
    let nodes = vec![
        SessionNodeRecord {
            node_id: "root".into(),
            parent_node_id: None,
            payload: Bytes::new(),
            timestamp_ms: 0,
            frame_id: None,
            cause: None,
        },
        SessionNodeRecord {
            node_id: "child ✓".into(),
            parent_node_id: Some("root".into()),
            payload: odd.clone(),
            timestamp_ms: u64::MAX,
            frame_id: Some(String::new()),
            cause: Some("ünïcode\nnewline".into()),
        },
    ];
    let frames = vec![
        AgentFrame { frame_id: "f-empty".into(), payload: Bytes::new(), blob_refs: vec![] },
        AgentFrame { frame_id: "f-odd".into(), payload: odd.clone(), blob_refs: vec![] },
    ];
    let checkpoint = RuntimeCheckpoint {
        turn_state: odd.clone(),
        tool_state: CheckpointBlob::payload(Bytes::new()),
        plugin_snapshot: CheckpointBlob::payload(odd.clone()),
        plugin_snapshot_revision: u64::MAX,
        execution_state: CheckpointBlob::default(),
    };
    let committed = commit(SESSION)
        .config(odd.clone())
        .frames(frames.clone(), Some("f-odd"))
        .append(nodes.clone())
        .checkpoint(checkpoint.clone())
        .build();
    commit_ok(&*store, "commit with odd opaque fields", committed).await?;
    let read = full(&*store).await?;
    expect_eq("config", &odd, &read.config)?;
    expect_eq("agent_frames", &frames, &read.agent_frames)?;
    expect_eq("current_frame_id", &Some("f-odd".to_owned()), &read.current_frame_id)?;
    expect_eq("graph nodes", &nodes, &read.graph.nodes)?;
    expect_eq("hydrated checkpoint", &Some(hydrated(&checkpoint)), &read.checkpoint)?;
    for node in &nodes {
        let loaded = store.load_node(&node.node_id).await.step("load_node")?;
        expect_eq(&format!("load_node({:?})", node.node_id), &Some(node), &loaded.as_ref())?;
    }
    Ok(())
}

async fn session_binding_mismatch(env: &Env) -> Outcome {
    let store = env.store().await?;
    commit_ok(&*store, "first commit", commit(SESSION).append([node("a", None)]).build()).await?;
    let before = Snapshot::take(&*store).await?;
    let foreign = commit("another-session")
        .append([node("b", None)])
        .usage("agent", "m", usage(1, 1, 1, 1))
        .build();
    expect_error(
        "commit for another session",
        store.commit_runtime_state(foreign).await,
        &StoreError::SessionBindingMismatch {
            bound_session_id: SESSION.into(),
            attempted_session_id: "another-session".into(),
        },
    )?;
    before.unchanged(&*store, "a SessionBindingMismatch").await?;
    expect_eq(
        "load_node of the refused node",
        &None,
        &store.load_node("b").await.step("load_node")?,
    )
}

async fn checkpoint_minted_and_hydrated(env: &Env) -> Outcome {
    let store = env.store().await?;
    let checkpoint = checkpoint_with_payloads("one");
    let result =
        commit_ok(&*store, "commit", commit(SESSION).checkpoint(checkpoint.clone()).build())
            .await?;
    let manifest = manifest_of(&checkpoint);
    expect_eq("manifest returned by the commit", &Some(&manifest), &result.manifest.as_ref())?;
    expect_eq(
        "checkpoint_ref returned by the commit (strata_core::checkpoint_ref of the manifest)",
        &Some(checkpoint_ref(&manifest)),
        &result.checkpoint_ref,
    )?;
    let read = full(&*store).await?;
    expect_eq("checkpoint_ref of the read", &result.checkpoint_ref, &read.checkpoint_ref)?;
    expect_eq("hydrated checkpoint", &Some(hydrated(&checkpoint)), &read.checkpoint)
}

async fn checkpoint_ref_only_keeps_blobs(env: &Env) -> Outcome {
    let store = env.store().await?;
    let first = checkpoint_with_payloads("one");
    let manifest = manifest_of(&first);
    commit_ok(&*store, "commit with payloads", commit(SESSION).checkpoint(first.clone()).build())
        .await?;
    let reference =
        |blob_ref: &Option<BlobRef>| CheckpointBlob { blob_ref: blob_ref.clone(), payload: None };
    let second = RuntimeCheckpoint {
        turn_state: Bytes::from_static(b"turn state two"),
        tool_state: reference(&manifest.tool_state_ref),
        plugin_snapshot: reference(&manifest.plugin_snapshot_ref),
        plugin_snapshot_revision: 8,
        execution_state: reference(&manifest.execution_state_ref),
    };
    let result =
        commit_ok(&*store, "ref-only commit", commit(SESSION).checkpoint(second).build()).await?;
    let expected = RuntimeCheckpoint {
        turn_state: Bytes::from_static(b"turn state two"),
        plugin_snapshot_revision: 8,
        ..hydrated(&first)
    };
    let expected_manifest = SessionCheckpoint {
        turn_state: expected.turn_state.clone(),
        plugin_snapshot_revision: 8,
        ..manifest
    };
    expect_eq("manifest of the ref-only commit", &Some(expected_manifest), &result.manifest)?;
    expect_eq("hydrated checkpoint", &Some(expected), &full(&*store).await?.checkpoint)
}

async fn checkpoint_identical_refs(env: &Env) -> Outcome {
    let store = env.store().await?;
    let same = RuntimeCheckpoint {
        tool_state: CheckpointBlob::payload("shared bytes"),
        execution_state: CheckpointBlob::payload("shared bytes"),
        plugin_snapshot: CheckpointBlob::payload("other bytes"),
        ..Default::default()
    };
    let first =
        commit_ok(&*store, "commit", commit(SESSION).checkpoint(same.clone()).build()).await?;
    let second = commit_ok(&*store, "commit", commit(SESSION).checkpoint(same).build()).await?;
    let first = first.manifest.ok_or("first commit reported no manifest")?;
    let second = second.manifest.ok_or("second commit reported no manifest")?;
    expect_eq("refs of identical content in two commits", &first, &second)?;
    expect_eq(
        "ref of identical bytes in two parts",
        &first.tool_state_ref,
        &first.execution_state_ref,
    )?;
    ensure(first.tool_state_ref != first.plugin_snapshot_ref, || {
        format!("different bytes got the same ref {:?}", first.tool_state_ref)
    })
}

async fn checkpoint_none_keeps_previous(env: &Env) -> Outcome {
    let store = env.store().await?;
    let checkpoint = checkpoint_with_payloads("kept");
    let first =
        commit_ok(&*store, "commit", commit(SESSION).checkpoint(checkpoint.clone()).build())
            .await?;
    let second = commit_ok(
        &*store,
        "commit with checkpoint None",
        commit(SESSION).append([node("a", None)]).build(),
    )
    .await?;
    expect_eq(
        "checkpoint_ref reported after checkpoint None",
        &first.checkpoint_ref,
        &second.checkpoint_ref,
    )?;
    expect_eq("manifest reported after checkpoint None", &first.manifest, &second.manifest)?;
    let read = full(&*store).await?;
    expect_eq(
        "checkpoint_ref read after checkpoint None",
        &first.checkpoint_ref,
        &read.checkpoint_ref,
    )?;
    expect_eq(
        "checkpoint read after checkpoint None",
        &Some(hydrated(&checkpoint)),
        &read.checkpoint,
    )
}

async fn checkpoint_dangling_ref_rejected(env: &Env) -> Outcome {
    let store = env.store().await?;
    commit_ok(&*store, "commit", commit(SESSION).checkpoint(checkpoint_with_payloads("a")).build())
        .await?;
    let before = Snapshot::take(&*store).await?;
    let dangling = RuntimeCheckpoint {
        tool_state: CheckpointBlob::reference(blob_ref(b"never stored")),
        ..Default::default()
    };
    expect_kind(
        "commit naming a blob the store does not hold",
        store.commit_runtime_state(commit(SESSION).checkpoint(dangling).build()).await,
        "invalid_input",
    )?;
    before.unchanged(&*store, "a dangling checkpoint ref").await
}

async fn usage_ledger_merges(env: &Env) -> Outcome {
    let store = env.store().await?;
    let first = commit(SESSION)
        .usage("agent", "m1", usage(1, 2, 3, 4))
        .usage("agent", "m1", usage(10, 0, 0, 0))
        .usage("tool", "m2", usage(0, 0, 0, 0))
        .build();
    commit_ok(&*store, "first commit", first).await?;
    let second = commit(SESSION)
        .usage("agent", "m2", usage(5, 5, 5, 5))
        .usage("agent", "m1", usage(0, 1, 0, 0))
        .usage("zero", "m", usage(0, 0, 0, 0))
        .build();
    commit_ok(&*store, "second commit", second).await?;
    let expected =
        vec![ledger("agent", "m1", usage(11, 3, 3, 4)), ledger("agent", "m2", usage(5, 5, 5, 5))];
    expect_eq(
        "merged token ledger (by source and model, sorted, all-zero rows dropped)",
        &expected,
        &full(&*store).await?.token_ledger,
    )
}

async fn cas_stale_conflicts(env: &Env) -> Outcome {
    let store = env.store().await?;
    let conflict = |expected: u64, actual: u64| StoreError::HeadRevisionConflict {
        expected: Some(expected),
        actual,
    };
    expect_error(
        "Some(1) on a fresh store",
        store.commit_runtime_state(commit(SESSION).expect(1).build()).await,
        &conflict(1, 0),
    )?;
    expect_eq(
        "load_session after a refused first commit",
        &None,
        &store.load_session(SessionReadScope::FullGraph).await.step("load_session")?,
    )?;
    commit_ok(&*store, "Some(0) on a fresh store", commit(SESSION).expect(0).build()).await?;
    expect_error(
        "Some(0) after one commit",
        store.commit_runtime_state(commit(SESSION).expect(0).build()).await,
        &conflict(0, 1),
    )?;
    expect_error(
        "Some(5) after one commit",
        store.commit_runtime_state(commit(SESSION).expect(5).build()).await,
        &conflict(5, 1),
    )?;
    let result =
        commit_ok(&*store, "Some(1) after one commit", commit(SESSION).expect(1).build()).await?;
    expect_eq("revision after the CAS commit", &2, &result.head_revision)
}

async fn cas_blind_write(env: &Env) -> Outcome {
    let store = env.store().await?;
    commit_ok(&*store, "CAS commit", commit(SESSION).expect(0).build()).await?;
    commit_ok(&*store, "CAS commit", commit(SESSION).expect(1).build()).await?;
    let result = commit_ok(&*store, "blind commit", commit(SESSION).build()).await?;
    expect_eq("revision after a blind write", &3, &result.head_revision)
}

async fn stamp_retry_returns_stored_result(env: &Env) -> Outcome {
    let store = env.store().await?;
    let stamped = commit(SESSION)
        .expect(0)
        .append([node("a", None)])
        .checkpoint(checkpoint_with_payloads("turn"))
        .usage("agent", "m", usage(1, 2, 3, 4))
        .stamp("turn-1")
        .build();
    let stored = commit_ok(&*store, "stamped commit", stamped.clone()).await?;
    commit_ok(&*store, "a later commit", commit(SESSION).append([node("b", Some("a"))]).build())
        .await?;
    let before = Snapshot::take(&*store).await?;
    let retried = store
        .commit_runtime_state(stamped)
        .await
        .step("retry of the stamped commit with its (now stale) expected revision Some(0)")?;
    expect_eq("result of the retry (the stored result)", &stored, &retried)?;
    before.unchanged(&*store, "a stamped retry").await
}

async fn stamp_changed_hash_conflicts(env: &Env) -> Outcome {
    let store = env.store().await?;
    commit_ok(
        &*store,
        "stamped commit",
        commit(SESSION).append([node("a", None)]).stamp("turn-1").build(),
    )
    .await?;
    let before = Snapshot::take(&*store).await?;
    let changed = commit(SESSION).append([node("other", None)]).stamp("turn-1").build();
    expect_error(
        "same turn id with another hash",
        store.commit_runtime_state(changed).await,
        &StoreError::RuntimeTurnCommitConflict {
            session_id: SESSION.into(),
            turn_id: "turn-1".into(),
        },
    )?;
    before.unchanged(&*store, "a RuntimeTurnCommitConflict").await
}

async fn stamp_session_mismatch_conflicts(env: &Env) -> Outcome {
    let store = env.store().await?;
    let mut mismatched = commit(SESSION).append([node("a", None)]).stamp("turn-1").build();
    if let Some(stamp) = &mut mismatched.turn_commit {
        stamp.session_id = "another-session".into();
    }
    expect_error(
        "stamp naming another session than the commit",
        store.commit_runtime_state(mismatched).await,
        &StoreError::RuntimeTurnCommitConflict {
            session_id: "another-session".into(),
            turn_id: "turn-1".into(),
        },
    )?;
    expect_eq(
        "load_session after the refused commit",
        &None,
        &store.load_session(SessionReadScope::FullGraph).await.step("load_session")?,
    )
}

/// The ways a commit can be refused; each must leave no effect at all.
#[derive(Clone, Copy, Debug)]
enum Refusal {
    Binding,
    StampSession,
    StampHash,
    HeadConflict,
    Claim,
    DuplicateNode,
}

/// Sets up a store with a head, a stamp, metadata, a live claim and an uncommitted intent;
/// sends a commit carrying every kind of effect that `refusal` breaks; checks that nothing
/// changed; then sends the corrected commit and checks it applies.
async fn refused_commit_applies_nothing(env: &Env, refusal: Refusal) -> Outcome {
    let store = env.store().await?;
    commit_ok(
        &*store,
        "setup commit",
        commit(SESSION)
            .append([node("a", None)])
            .checkpoint(checkpoint_with_payloads("setup"))
            .usage("agent", "m", usage(1, 1, 1, 1))
            .stamp("turn-setup")
            .build(),
    )
    .await?;
    store.save_session_meta(meta(SESSION, "setup")).await.step("save_session_meta")?;
    store.enqueue_queued_work(draft(SESSION).build()).await.step("enqueue")?;
    let claim = store
        .claim_ready_queued_work(SESSION, "owner", QueuedWorkClaimBoundary::Idle, 60_000, 10)
        .await
        .step("claim")?
        .ok_or("setup claim returned None")?;
    store
        .record_intent(intent("att-1", SESSION, env.clock.now_ms()))
        .await
        .step("record_intent")?;

    let full_commit = |nodes: Vec<SessionNodeRecord>, completion: QueuedWorkCompletion| {
        commit(SESSION)
            .expect(1)
            .config("new config")
            .append(nodes)
            .checkpoint(checkpoint_with_payloads("refused"))
            .usage("agent", "m", usage(5, 5, 5, 5))
            .complete(completion)
            .attachments(&["att-1"])
    };
    let good = full_commit(vec![node("b", Some("a"))], claim.completion());
    let bad = match refusal {
        Refusal::Binding => {
            RuntimeCommit { session_id: "another-session".into(), ..good.clone().build() }
        }
        Refusal::StampSession => {
            let mut commit = good.clone().stamp("turn-2").build();
            if let Some(stamp) = &mut commit.turn_commit {
                stamp.session_id = "another-session".into();
            }
            commit
        }
        Refusal::StampHash => good.clone().stamp("turn-setup").build(),
        Refusal::HeadConflict => {
            RuntimeCommit { expected_head_revision: Some(7), ..good.clone().build() }
        }
        Refusal::Claim => {
            let mut completion = claim.completion();
            completion.lease_token.push_str("-forged");
            full_commit(vec![node("b", Some("a"))], completion).build()
        }
        Refusal::DuplicateNode => {
            full_commit(vec![node("b", Some("a")), node("a", None)], claim.completion()).build()
        }
    };
    let before = Snapshot::take(&*store).await?;
    let what = format!("commit refused by {refusal:?}");
    match store.commit_runtime_state(bad).await {
        Ok(result) => {
            return Err(format!("{what}: expected an error, observed success {}", render(&result)));
        }
        Err(error) => {
            let expected_kind = match refusal {
                Refusal::Binding => "session_binding_mismatch",
                Refusal::StampSession | Refusal::StampHash => "turn_commit_conflict",
                Refusal::HeadConflict => "head_revision_conflict",
                Refusal::Claim => "claim_expired",
                Refusal::DuplicateNode => "invalid_input",
            };
            expect_eq(&format!("{what}: error kind ({error})"), &expected_kind, &error.kind())?;
        }
    }
    before.unchanged(&*store, &what).await?;
    expect_eq(
        "load_node of a refused node",
        &None,
        &store.load_node("b").await.step("load_node")?,
    )?;
    let result = commit_ok(&*store, "the corrected commit after the refusal", good.build()).await?;
    expect_eq("revision of the corrected commit", &2, &result.head_revision)?;
    expect_eq(
        "queue after the corrected commit completed the claim",
        &Vec::<&str>::new(),
        &batch_ids(&store.list_queued_work(SESSION).await.step("list_queued_work")?),
    )
}

async fn refused_binding(env: &Env) -> Outcome {
    refused_commit_applies_nothing(env, Refusal::Binding).await
}

async fn refused_stamp_session(env: &Env) -> Outcome {
    refused_commit_applies_nothing(env, Refusal::StampSession).await
}

async fn refused_stamp_hash(env: &Env) -> Outcome {
    refused_commit_applies_nothing(env, Refusal::StampHash).await
}

async fn refused_head_conflict(env: &Env) -> Outcome {
    refused_commit_applies_nothing(env, Refusal::HeadConflict).await
}

async fn refused_claim(env: &Env) -> Outcome {
    refused_commit_applies_nothing(env, Refusal::Claim).await
}

async fn refused_duplicate_node(env: &Env) -> Outcome {
    refused_commit_applies_nothing(env, Refusal::DuplicateNode).await
}

async fn meta_round_trip(env: &Env) -> Outcome {
    let store = env.store().await?;
    expect_eq(
        "load_session_meta before any save",
        &None,
        &store.load_session_meta().await.step("load_session_meta")?,
    )?;
    let saved = meta(SESSION, "one");
    store.save_session_meta(saved.clone()).await.step("save_session_meta")?;
    expect_eq(
        "load_session_meta",
        &Some(saved),
        &store.load_session_meta().await.step("load_session_meta")?,
    )
}

async fn meta_last_writer_wins(env: &Env) -> Outcome {
    let store = env.store().await?;
    store.save_session_meta(meta(SESSION, "one")).await.step("save_session_meta")?;
    let sparse = SessionMeta { session_id: SESSION.into(), ..Default::default() };
    store.save_session_meta(sparse.clone()).await.step("save_session_meta")?;
    expect_eq(
        "load_session_meta after two saves",
        &Some(sparse),
        &store.load_session_meta().await.step("load_session_meta")?,
    )
}
