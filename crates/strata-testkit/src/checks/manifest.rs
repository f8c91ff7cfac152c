//! The attachment write-ahead manifest (real, or the no-op one).

use strata_core::*;

use super::*;
use crate::fixtures::*;

pub(super) const CHECKS: &[Check] = checks![
    "manifest::uncommitted_listing_has_an_inclusive_age_bound" RealManifest => uncommitted_listing,
    "manifest::repeated_intent_refreshes_and_never_uncommits" RealManifest => repeated_intent,
    "manifest::commit_refs_stamps_known_rows_of_its_session" RealManifest => commit_refs,
    "manifest::commit_stamps_committed_attachment_ids" RealManifest => commit_stamps,
    "manifest::forget_removes_rows" RealManifest => forget,
    "manifest::rows_keyed_by_session" RealManifest => keyed_by_session,
    "manifest::noop_accepts_everything_lists_nothing" NoopManifest => noop,
];

const OTHER: &str = "another-session";

/// The uncommitted row `intent` must produce (spelled out field by field on purpose: the
/// suite states the contract independently of `strata_core`'s own constructor).
fn row(intent: &AttachmentIntent) -> AttachmentManifestEntry {
    AttachmentManifestEntry {
        attachment_id: intent.attachment_id.clone(),
        session_id: intent.session_id.clone(),
        canonical_uri: intent.canonical_uri.clone(),
        intent_at_epoch_ms: intent.intent_at_epoch_ms,
        committed_at_epoch_ms: None,
    }
}

/// `list_uncommitted(older_than)`, sorted by (session, id).
async fn uncommitted(
    store: &dyn RuntimePersistence,
    older_than: u64,
) -> Result<Vec<AttachmentManifestEntry>, String> {
    let mut rows = store
        .list_uncommitted(older_than)
        .await
        .step(&format!("list_uncommitted({older_than})"))?;
    rows.sort_by(|a, b| (&a.session_id, &a.attachment_id).cmp(&(&b.session_id, &b.attachment_id)));
    Ok(rows)
}

async fn record(store: &dyn RuntimePersistence, intent: &AttachmentIntent) -> Outcome {
    store
        .record_intent(intent.clone())
        .await
        .step(&format!("record_intent({:?})", intent.attachment_id))
}

async fn uncommitted_listing(env: &Env) -> Outcome {
    let store = env.store().await?;
    let intents = [intent("a", SESSION, 100), intent("b", SESSION, 200), intent("c", SESSION, 300)];
    for intent in &intents {
        record(&*store, intent).await?;
    }
    expect_eq("list_uncommitted(99)", &vec![], &uncommitted(&*store, 99).await?)?;
    expect_eq(
        "list_uncommitted(200) (bound inclusive)",
        &vec![row(&intents[0]), row(&intents[1])],
        &uncommitted(&*store, 200).await?,
    )?;
    expect_eq(
        "list_uncommitted(MAX)",
        &intents.iter().map(row).collect::<Vec<_>>(),
        &uncommitted(&*store, u64::MAX).await?,
    )
}

async fn repeated_intent(env: &Env) -> Outcome {
    let store = env.store().await?;
    record(&*store, &intent("a", SESSION, 100)).await?;
    let refreshed = intent("a", SESSION, 500);
    record(&*store, &refreshed).await?;
    expect_eq(
        "list_uncommitted(100) after the refresh",
        &vec![],
        &uncommitted(&*store, 100).await?,
    )?;
    expect_eq(
        "list_uncommitted(500) after the refresh",
        &vec![row(&refreshed)],
        &uncommitted(&*store, 500).await?,
    )?;
    store.commit_refs(SESSION, &["a".to_owned()]).await.step("commit_refs")?;
    record(&*store, &intent("a", SESSION, 600)).await?;
    expect_eq(
        "list_uncommitted after re-recording a committed id (never un-commits)",
        &vec![],
        &uncommitted(&*store, u64::MAX).await?,
    )
}

async fn commit_refs(env: &Env) -> Outcome {
    let store = env.store().await?;
    let a = intent("a", SESSION, 100);
    let b = intent("b", SESSION, 100);
    record(&*store, &a).await?;
    record(&*store, &b).await?;
    store
        .commit_refs(SESSION, &["a".to_owned(), "unknown".to_owned()])
        .await
        .step("commit_refs with an unknown id")?;
    expect_eq(
        "uncommitted rows after committing a",
        &vec![row(&b)],
        &uncommitted(&*store, u64::MAX).await?,
    )?;
    store.commit_refs(OTHER, &["b".to_owned()]).await.step("commit_refs for another session")?;
    expect_eq(
        "uncommitted rows after commit_refs of another session",
        &vec![row(&b)],
        &uncommitted(&*store, u64::MAX).await?,
    )?;
    env.clock.advance(1_000);
    store.commit_refs(SESSION, &["a".to_owned()]).await.step("commit_refs again (stamp kept)")?;
    expect_eq(
        "uncommitted rows after committing a twice",
        &vec![row(&b)],
        &uncommitted(&*store, u64::MAX).await?,
    )
}

async fn commit_stamps(env: &Env) -> Outcome {
    let store = env.store().await?;
    let kept = intent("pending", SESSION, 100);
    record(&*store, &intent("used", SESSION, 100)).await?;
    record(&*store, &kept).await?;
    commit_ok(
        &*store,
        "commit with committed_attachment_ids",
        commit(SESSION).attachments(&["used"]).build(),
    )
    .await?;
    expect_eq(
        "uncommitted rows after the commit",
        &vec![row(&kept)],
        &uncommitted(&*store, u64::MAX).await?,
    )
}

async fn forget(env: &Env) -> Outcome {
    let store = env.store().await?;
    record(&*store, &intent("open", SESSION, 100)).await?;
    record(&*store, &intent("done", SESSION, 100)).await?;
    store.commit_refs(SESSION, &["done".to_owned()]).await.step("commit_refs")?;
    for id in ["open", "done", "never-recorded"] {
        store.forget(id).await.step(&format!("forget({id:?})"))?;
    }
    expect_eq("uncommitted rows after forget", &vec![], &uncommitted(&*store, u64::MAX).await?)?;
    // The committed row is gone too: recording it again gives a fresh, uncommitted row.
    let again = intent("done", SESSION, 200);
    record(&*store, &again).await?;
    expect_eq(
        "re-recorded id after forget",
        &vec![row(&again)],
        &uncommitted(&*store, u64::MAX).await?,
    )
}

async fn keyed_by_session(env: &Env) -> Outcome {
    let store = env.store().await?;
    let mine = intent("shared", SESSION, 100);
    let theirs = intent("shared", OTHER, 200);
    record(&*store, &mine).await?;
    record(&*store, &theirs).await?;
    let mut both = vec![row(&theirs), row(&mine)];
    both.sort_by(|a, b| a.session_id.cmp(&b.session_id));
    expect_eq(
        "rows of two sessions with the same id",
        &both,
        &uncommitted(&*store, u64::MAX).await?,
    )?;
    store.commit_refs(SESSION, &["shared".to_owned()]).await.step("commit_refs")?;
    expect_eq(
        "rows after committing the main session's row",
        &vec![row(&theirs)],
        &uncommitted(&*store, u64::MAX).await?,
    )
}

async fn noop(env: &Env) -> Outcome {
    let store = env.store().await?;
    record(&*store, &intent("a", SESSION, 100)).await?;
    store.commit_refs(SESSION, &["a".to_owned()]).await.step("commit_refs")?;
    record(&*store, &intent("b", SESSION, 100)).await?;
    expect_eq("no-op manifest list_uncommitted", &vec![], &uncommitted(&*store, u64::MAX).await?)?;
    store.forget("b").await.step("forget")?;
    commit_ok(
        &*store,
        "commit with committed_attachment_ids",
        commit(SESSION).attachments(&["b"]).build(),
    )
    .await?;
    Ok(())
}
