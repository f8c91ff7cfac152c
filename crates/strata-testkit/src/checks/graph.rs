//! Graph reads (full graph, active paths), graph deltas, duplicate ids, tombstones, vacuum
//! and blob garbage collection.

use strata_core::*;

use super::commit::minted;
use super::*;
use crate::fixtures::*;

pub(super) const CHECKS: &[Check] = checks![
    "graph::full_graph_insertion_order_and_head_leaf" Nothing => full_graph_order_and_leaf,
    "graph::active_path_root_to_leaf" Nothing => active_path,
    "graph::replace_full_drops_everything" Nothing => replace_full_drops_everything,
    "graph::duplicate_id_against_stored_rejected" Nothing => duplicate_against_stored,
    "graph::duplicate_id_within_commit_rejected" Nothing => duplicate_within_commit,
    "tombstone::hidden_from_every_read" Nothing => tombstone_hides,
    "tombstone::vacuum_counts_once" Nothing => vacuum_counts_once,
    "tombstone::unknown_ids_not_remembered" Nothing => unknown_tombstones_forgotten,
    "gc::deletes_exactly_the_unreachable_blobs" Nothing => gc_deletes_unreachable,
    "gc::empty_store_collects_nothing" Nothing => gc_empty_store,
];

async fn full_graph_order_and_leaf(env: &Env) -> Outcome {
    let store = env.store().await?;
    // Ids deliberately out of lexical order: the read must keep insertion order.
    commit_ok(
        &*store,
        "first append",
        commit(SESSION).append([node("z", None), node("m", Some("z"))]).build(),
    )
    .await?;
    commit_ok(
        &*store,
        "second append",
        commit(SESSION).append([node("b", Some("m")), node("y", Some("z"))]).build(),
    )
    .await?;
    let read = full(&*store).await?;
    expect_eq("FullGraph node order", &vec!["z", "m", "b", "y"], &ids(&read.graph.nodes))?;
    expect_eq("FullGraph leaf after Append", &Some("y".to_owned()), &read.graph.leaf_node_id)?;
    commit_ok(&*store, "Unchanged commit", commit(SESSION).leaf(Some("b")).build()).await?;
    let read = full(&*store).await?;
    expect_eq(
        "FullGraph node order after Unchanged",
        &vec!["z", "m", "b", "y"],
        &ids(&read.graph.nodes),
    )?;
    expect_eq("FullGraph leaf after Unchanged", &Some("b".to_owned()), &read.graph.leaf_node_id)
}

async fn active_path(env: &Env) -> Outcome {
    let store = env.store().await?;
    // r → a → b is the head's path; r → c is a sibling branch.
    let nodes = [node("r", None), node("a", Some("r")), node("c", Some("r")), node("b", Some("a"))];
    commit_ok(&*store, "append a tree", commit(SESSION).append(nodes).build()).await?;
    let head = path(&*store, None).await?;
    expect_eq("ActivePath with the head leaf", &vec!["r", "a", "b"], &ids(&head.graph.nodes))?;
    expect_eq("ActivePath nodes are full records", &node("a", Some("r")), &head.graph.nodes[1])?;
    let sibling = path(&*store, Some("c")).await?;
    expect_eq("ActivePath with explicit leaf c", &vec!["r", "c"], &ids(&sibling.graph.nodes))?;
    let unknown = path(&*store, Some("missing")).await?;
    expect_eq("ActivePath with an unknown leaf", &Vec::<&str>::new(), &ids(&unknown.graph.nodes))?;
    commit_ok(&*store, "commit with no leaf", commit(SESSION).leaf(None).build()).await?;
    let absent = path(&*store, None).await?;
    expect_eq(
        "ActivePath when the head has no leaf",
        &Vec::<&str>::new(),
        &ids(&absent.graph.nodes),
    )
}

async fn replace_full_drops_everything(env: &Env) -> Outcome {
    let store = env.store().await?;
    commit_ok(&*store, "append", commit(SESSION).append(chain("n", 3, None)).build()).await?;
    store.tombstone_nodes(&["n2".to_owned()]).await.step("tombstone_nodes")?;
    commit_ok(
        &*store,
        "ReplaceFull",
        commit(SESSION).replace([node("x", None), node("y", Some("x"))]).build(),
    )
    .await?;
    let read = full(&*store).await?;
    expect_eq("FullGraph after ReplaceFull", &vec!["x", "y"], &ids(&read.graph.nodes))?;
    expect_eq("leaf after ReplaceFull", &Some("y".to_owned()), &read.graph.leaf_node_id)?;
    for id in ["n0", "n2"] {
        expect_eq(
            &format!("load_node({id}) after ReplaceFull"),
            &None,
            &store.load_node(id).await.step("load_node")?,
        )?;
    }
    // The dropped ids (live and tombstoned) are free again.
    commit_ok(
        &*store,
        "re-append dropped ids",
        commit(SESSION).append([node("n0", None), node("n2", None)]).build(),
    )
    .await?;
    expect_eq(
        "vacuum after ReplaceFull dropped the tombstone",
        &0,
        &store.vacuum().await.step("vacuum")?.removed_node_count,
    )?;
    expect_eq(
        "FullGraph after re-appending",
        &vec!["x", "y", "n0", "n2"],
        &ids(&full(&*store).await?.graph.nodes),
    )
}

async fn duplicate_rejected(env: &Env, duplicate: Vec<SessionNodeRecord>, what: &str) -> Outcome {
    let store = env.store().await?;
    commit_ok(
        &*store,
        "append",
        commit(SESSION).append([node("a", None)]).usage("agent", "m", usage(1, 0, 0, 0)).build(),
    )
    .await?;
    let before = Snapshot::take(&*store).await?;
    let refused = commit(SESSION).append(duplicate).usage("agent", "m", usage(1, 0, 0, 0)).build();
    expect_kind(what, store.commit_runtime_state(refused).await, "invalid_input")?;
    before.unchanged(&*store, what).await
}

async fn duplicate_against_stored(env: &Env) -> Outcome {
    duplicate_rejected(
        env,
        vec![node("fresh", None), node("a", None)],
        "appending an id already stored",
    )
    .await
}

async fn duplicate_within_commit(env: &Env) -> Outcome {
    duplicate_rejected(
        env,
        vec![node("twice", None), node("twice", None)],
        "appending one id twice in a commit",
    )
    .await
}

async fn tombstone_hides(env: &Env) -> Outcome {
    let store = env.store().await?;
    let result =
        commit_ok(&*store, "append", commit(SESSION).append(chain("n", 3, None)).build()).await?;
    let hidden = vec!["n1".to_owned()];
    store.tombstone_nodes(&hidden).await.step("tombstone_nodes")?;
    store.tombstone_nodes(&hidden).await.step("tombstone_nodes again (idempotent)")?;
    expect_eq(
        "load_node of a tombstoned node",
        &None,
        &store.load_node("n1").await.step("load_node")?,
    )?;
    let read = full(&*store).await?;
    expect_eq("FullGraph after tombstoning n1", &vec!["n0", "n2"], &ids(&read.graph.nodes))?;
    expect_eq(
        "head revision after tombstoning (unchanged)",
        &result.head_revision,
        &read.head_revision,
    )?;
    for leaf in [None, Some("n2"), Some("n1")] {
        let active = path(&*store, leaf).await?;
        ensure(!ids(&active.graph.nodes).contains(&"n1"), || {
            format!(
                "ActivePath({leaf:?}) after tombstoning n1: expected n1 absent, observed {:?}",
                ids(&active.graph.nodes)
            )
        })?;
    }
    Ok(())
}

async fn vacuum_counts_once(env: &Env) -> Outcome {
    let store = env.store().await?;
    commit_ok(&*store, "append", commit(SESSION).append(chain("n", 4, None)).build()).await?;
    let dead = vec!["n2".to_owned(), "n3".to_owned()];
    store.tombstone_nodes(&dead).await.step("tombstone_nodes")?;
    expect_eq("first vacuum", &2, &store.vacuum().await.step("vacuum")?.removed_node_count)?;
    expect_eq("second vacuum", &0, &store.vacuum().await.step("vacuum")?.removed_node_count)?;
    store.tombstone_nodes(&dead).await.step("tombstone_nodes of vacuumed ids")?;
    expect_eq(
        "vacuum after re-tombstoning vacuumed ids",
        &0,
        &store.vacuum().await.step("vacuum")?.removed_node_count,
    )?;
    expect_eq("FullGraph after vacuum", &vec!["n0", "n1"], &ids(&full(&*store).await?.graph.nodes))
}

async fn unknown_tombstones_forgotten(env: &Env) -> Outcome {
    let store = env.store().await?;
    commit_ok(&*store, "append", commit(SESSION).append([node("a", None)]).build()).await?;
    store.tombstone_nodes(&["ghost".to_owned()]).await.step("tombstone_nodes of an unknown id")?;
    commit_ok(&*store, "append ghost", commit(SESSION).append([node("ghost", Some("a"))]).build())
        .await?;
    expect_eq(
        "load_node(ghost)",
        &Some(node("ghost", Some("a"))),
        &store.load_node("ghost").await.step("load_node")?,
    )?;
    expect_eq(
        "FullGraph with ghost",
        &vec!["a", "ghost"],
        &ids(&full(&*store).await?.graph.nodes),
    )?;
    expect_eq("vacuum", &0, &store.vacuum().await.step("vacuum")?.removed_node_count)
}

async fn gc_deletes_unreachable(env: &Env) -> Outcome {
    let store = env.store().await?;
    let first = RuntimeCheckpoint {
        tool_state: CheckpointBlob::payload("blob A (superseded)"),
        plugin_snapshot: CheckpointBlob::payload("blob B (kept by reference)"),
        execution_state: CheckpointBlob::payload("blob C (kept by an agent frame)"),
        ..Default::default()
    };
    commit_ok(&*store, "first checkpoint", commit(SESSION).checkpoint(first).build()).await?;
    let frame = AgentFrame {
        frame_id: "frame".into(),
        payload: Bytes::from_static(b"frame"),
        blob_refs: vec![blob_ref(b"blob C (kept by an agent frame)")],
    };
    let second = RuntimeCheckpoint {
        tool_state: CheckpointBlob::payload("blob D (new)"),
        plugin_snapshot: CheckpointBlob::reference(blob_ref(b"blob B (kept by reference)")),
        ..Default::default()
    };
    commit_ok(
        &*store,
        "second checkpoint",
        commit(SESSION).frames(vec![frame], Some("frame")).checkpoint(second).build(),
    )
    .await?;
    let report = store.gc_unreachable().await.step("gc_unreachable")?;
    let expected = GcReport { root_count: 1, retained_blob_count: 3, deleted_blob_count: 1 };
    expect_eq("first gc report (blobs B, C, D retained; A deleted)", &expected, &report)?;
    let again = store.gc_unreachable().await.step("second gc_unreachable")?;
    expect_eq(
        "second gc deletes nothing",
        &GcReport { deleted_blob_count: 0, ..expected },
        &again,
    )?;
    let read = full(&*store).await?;
    let checkpoint = read.checkpoint.ok_or("checkpoint missing after gc")?;
    expect_eq("tool state hydrated after gc", &minted(b"blob D (new)"), &checkpoint.tool_state)?;
    expect_eq(
        "plugin snapshot hydrated after gc",
        &minted(b"blob B (kept by reference)"),
        &checkpoint.plugin_snapshot,
    )?;
    // C survives (it can be referenced and hydrated); A is gone (a reference to it dangles).
    let keep_c = RuntimeCheckpoint {
        execution_state: CheckpointBlob::reference(blob_ref(b"blob C (kept by an agent frame)")),
        ..Default::default()
    };
    commit_ok(
        &*store,
        "referencing frame-held blob C after gc",
        commit(SESSION).checkpoint(keep_c).build(),
    )
    .await?;
    let hydrated_c = full(&*store).await?.checkpoint.map(|checkpoint| checkpoint.execution_state);
    expect_eq(
        "blob C hydrated after gc",
        &Some(minted(b"blob C (kept by an agent frame)")),
        &hydrated_c,
    )?;
    let revive_a = RuntimeCheckpoint {
        tool_state: CheckpointBlob::reference(blob_ref(b"blob A (superseded)")),
        ..Default::default()
    };
    expect_kind(
        "referencing collected blob A after gc",
        store.commit_runtime_state(commit(SESSION).checkpoint(revive_a).build()).await,
        "invalid_input",
    )
}

async fn gc_empty_store(env: &Env) -> Outcome {
    let store = env.store().await?;
    expect_eq(
        "gc on an empty store",
        &GcReport::default(),
        &store.gc_unreachable().await.step("gc_unreachable")?,
    )
}
