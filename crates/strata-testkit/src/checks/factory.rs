//! Factory behaviour (factory suite only): tier, create/open/delete, handle sharing and
//! session isolation.

use strata_core::*;

use super::*;
use crate::fixtures::*;

pub(super) const CHECKS: &[Check] = checks![
    "factory::declared_tier" Factory => declared_tier,
    "factory::open_existing_only_after_create" Factory => open_existing,
    "factory::delete_session_is_idempotent" Factory => delete_session,
    "factory::handles_of_one_session_share_state" Factory => handles_share_state,
    "factory::sessions_are_isolated" Factory => sessions_isolated,
    "factory::list_sessions_names_created_not_deleted" Factory => list_sessions,
];

async fn create(
    factory: &dyn SessionStoreFactory,
    session: &str,
) -> Result<Arc<dyn RuntimePersistence>, String> {
    factory
        .create_store(SessionStoreRequest::new(session))
        .await
        .step(&format!("create_store({session:?})"))
}

async fn exists(factory: &dyn SessionStoreFactory, session: &str) -> Result<bool, String> {
    let opened = factory
        .open_existing_store(session)
        .await
        .step(&format!("open_existing_store({session:?})"))?;
    Ok(opened.is_some())
}

async fn declared_tier(env: &Env) -> Outcome {
    let factory = env.factory().await?;
    expect_eq("factory durability_tier()", &env.options.tier, &factory.durability_tier())?;
    let store = env.store().await?;
    expect_eq("durability_tier() of a handle", &env.options.tier, &store.durability_tier())
}

async fn open_existing(env: &Env) -> Outcome {
    let factory = env.factory().await?;
    expect_eq(
        "open_existing_store before create_store",
        &false,
        &exists(&*factory, "fresh").await?,
    )?;
    let created = create(&*factory, "fresh").await?;
    expect_eq("open_existing_store after create_store", &true, &exists(&*factory, "fresh").await?)?;
    commit_ok(&*created, "commit", commit("fresh").append([node("a", None)]).build()).await?;
    let opened = factory
        .open_existing_store("fresh")
        .await
        .step("open_existing_store")?
        .ok_or("open_existing_store returned None")?;
    expect_eq("head seen through the opened handle", &1, &full(&*opened).await?.head_revision)
}

async fn delete_session(env: &Env) -> Outcome {
    let factory = env.factory().await?;
    let store = create(&*factory, "doomed").await?;
    commit_ok(&*store, "commit", commit("doomed").append([node("a", None)]).build()).await?;
    drop(store);
    factory.delete_session("doomed").await.step("delete_session")?;
    expect_eq(
        "open_existing_store after delete_session",
        &false,
        &exists(&*factory, "doomed").await?,
    )?;
    factory.delete_session("doomed").await.step("delete_session again (idempotent)")?;
    factory.delete_session("never-created").await.step("delete_session of an unknown session")?;
    let recreated = create(&*factory, "doomed").await?;
    let read = recreated.load_session(SessionReadScope::FullGraph).await.step("load_session")?;
    expect_eq(
        "load_session of a recreated session (no state left)",
        &None,
        &read.map(|read| read.head_revision),
    )
}

async fn handles_share_state(env: &Env) -> Outcome {
    let first = env.store().await?;
    let second = env.store().await?;
    commit_ok(
        &*first,
        "commit through the first handle",
        commit(SESSION).append([node("a", None)]).build(),
    )
    .await?;
    expect_eq("head through the second handle", &1, &full(&*second).await?.head_revision)?;
    let batch = second
        .enqueue_queued_work(draft(SESSION).build())
        .await
        .step("enqueue through the second handle")?;
    let listed = first.list_queued_work(SESSION).await.step("list through the first handle")?;
    expect_eq("queue through the first handle", &vec![batch], &listed)?;
    first.save_session_meta(meta(SESSION, "shared")).await.step("save_session_meta")?;
    expect_eq(
        "meta through the second handle",
        &Some(meta(SESSION, "shared")),
        &second.load_session_meta().await.step("load_session_meta")?,
    )
}

async fn sessions_isolated(env: &Env) -> Outcome {
    let factory = env.factory().await?;
    let a = create(&*factory, "session-a").await?;
    let b = create(&*factory, "session-b").await?;
    commit_ok(&*a, "commit on session-a", commit("session-a").append([node("a", None)]).build())
        .await?;
    a.save_session_meta(meta("session-a", "a")).await.step("save_session_meta")?;
    let read =
        b.load_session(SessionReadScope::FullGraph).await.step("load_session on session-b")?;
    expect_eq(
        "session-b's head after a commit on session-a",
        &None,
        &read.map(|read| read.head_revision),
    )?;
    expect_eq("session-b's meta", &None, &b.load_session_meta().await.step("load_session_meta")?)?;
    commit_ok(&*b, "first commit on session-b", commit("session-b").build()).await?;
    expect_eq("session-b's revision", &1, &full(&*b).await?.head_revision)
}

async fn list_sessions(env: &Env) -> Outcome {
    let factory = env.factory().await?;
    let before = factory.list_sessions().await.step("list_sessions of a fresh factory")?;
    expect_eq("list_sessions of a fresh factory", &Vec::<String>::new(), &before)?;
    for session in ["list-b", "list-a", "list-c"] {
        let store = create(&*factory, session).await?;
        commit_ok(&*store, "commit", commit(session).append([node("n", None)]).build()).await?;
    }
    factory.delete_session("list-c").await.step("delete_session(\"list-c\")")?;
    let listed = factory.list_sessions().await.step("list_sessions")?;
    expect_eq(
        "list_sessions after creating list-b, list-a, list-c and deleting list-c (sorted)",
        &vec!["list-a".to_owned(), "list-b".to_owned()],
        &listed,
    )
}
