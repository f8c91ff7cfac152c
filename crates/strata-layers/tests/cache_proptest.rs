//! Randomized: sequences of reads and writes spread over several handles of one session,
//! opened through a layered factory (one shared cache), applied to an uncached twin store as
//! well; every answer (reads, write results and errors) must equal the twin's.
//!
//! The writes cover what the cache updates or invalidates: appends (to the head, to any
//! node, as new roots, reviving tombstoned ids), leaf moves, full replacements, checkpoints
//! with payloads and with carried refs, usage, stale and blind CAS, stamped retries,
//! tombstones, vacuum, garbage collection and metadata saves.
//!
//! `PROPTEST_CASES=<n>` raises the case count (default 48).

#![cfg(feature = "cache")]

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use strata_core::*;
use strata_layers::CacheLayer;
use strata_layers::cache::Revalidation;
use strata_memory::{MemoryStore, MemoryStoreFactory};
use strata_testkit::fixtures::{checkpoint_with_payloads, commit, meta, node, usage};

const SESSION: &str = "prop";
const HANDLES: usize = 3;

/// One step; indices pick among the ids and refs known at that point.
#[derive(Clone, Debug)]
enum Step {
    Append { handle: usize, count: usize, parent: Pick, revive: Option<usize>, extra: Extra },
    MoveLeaf { handle: usize, leaf: Pick, extra: Extra },
    Replace { handle: usize, count: usize, extra: Extra },
    RetryLastStamp { handle: usize },
    Tombstone { handle: usize, pick: usize, unknown: bool },
    Vacuum { handle: usize },
    Gc { handle: usize },
    SaveMeta { handle: usize, tag: u8 },
    LoadSession { handle: usize, scope: ScopePick },
    LoadNode { handle: usize, pick: usize, unknown: bool },
    LoadMeta { handle: usize },
}

/// Where a new node hangs, or where the leaf goes.
#[derive(Clone, Copy, Debug)]
enum Pick {
    Head,
    Known(usize),
    Root,
    Unknown,
}

#[derive(Clone, Copy, Debug)]
enum ScopePick {
    Full,
    Head,
    Leaf(usize),
}

/// The rest of a commit: CAS expectation, stamp, checkpoint, usage.
#[derive(Clone, Copy, Debug)]
struct Extra {
    expect: Expect,
    stamped: bool,
    checkpoint: Option<(u8, Option<usize>)>,
    usage: bool,
}

#[derive(Clone, Copy, Debug)]
enum Expect {
    Current,
    Stale,
    Blind,
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![4 => Just(Pick::Head), 3 => any::<usize>().prop_map(Pick::Known), 1 => Just(Pick::Root), 1 => Just(Pick::Unknown)]
}

fn extra() -> impl Strategy<Value = Extra> {
    let expect =
        prop_oneof![6 => Just(Expect::Current), 1 => Just(Expect::Stale), 2 => Just(Expect::Blind)];
    let checkpoint =
        proptest::option::weighted(0.4, (0u8..4, proptest::option::of(any::<usize>())));
    (expect, any::<bool>(), checkpoint, any::<bool>()).prop_map(
        |(expect, stamped, checkpoint, usage)| Extra { expect, stamped, checkpoint, usage },
    )
}

fn step() -> impl Strategy<Value = Step> {
    let handle = 0..HANDLES;
    prop_oneof![
        6 => (handle.clone(), 1usize..4, pick(), proptest::option::weighted(0.15, any::<usize>()), extra())
            .prop_map(|(handle, count, parent, revive, extra)| Step::Append { handle, count, parent, revive, extra }),
        2 => (handle.clone(), pick(), extra()).prop_map(|(handle, leaf, extra)| Step::MoveLeaf { handle, leaf, extra }),
        1 => (handle.clone(), 0usize..4, extra()).prop_map(|(handle, count, extra)| Step::Replace { handle, count, extra }),
        1 => handle.clone().prop_map(|handle| Step::RetryLastStamp { handle }),
        2 => (handle.clone(), any::<usize>(), any::<bool>()).prop_map(|(handle, pick, unknown)| Step::Tombstone { handle, pick, unknown }),
        1 => handle.clone().prop_map(|handle| Step::Vacuum { handle }),
        1 => handle.clone().prop_map(|handle| Step::Gc { handle }),
        1 => (handle.clone(), 0u8..3).prop_map(|(handle, tag)| Step::SaveMeta { handle, tag }),
        8 => (handle.clone(), prop_oneof![Just(ScopePick::Full), Just(ScopePick::Head), any::<usize>().prop_map(ScopePick::Leaf)])
            .prop_map(|(handle, scope)| Step::LoadSession { handle, scope }),
        5 => (handle.clone(), any::<usize>(), any::<bool>()).prop_map(|(handle, pick, unknown)| Step::LoadNode { handle, pick, unknown }),
        2 => handle.prop_map(|handle| Step::LoadMeta { handle }),
    ]
}

/// What the test knows while it runs: ids ever appended, refs ever minted, the last stamped
/// commit, and a counter for fresh ids.
#[derive(Default)]
struct Known {
    ids: Vec<String>,
    tombstoned: Vec<String>,
    refs: Vec<String>,
    last_stamped: Option<RuntimeCommit>,
    next: usize,
}

impl Known {
    fn id(&self, index: usize) -> Option<String> {
        (!self.ids.is_empty()).then(|| self.ids[index % self.ids.len()].clone())
    }

    fn fresh(&mut self) -> String {
        self.next += 1;
        format!("n{}", self.next)
    }

    /// `count` new nodes in a chain under `parent`; with `revive`, the first one takes the id
    /// of a tombstoned node.
    fn chain(
        &mut self,
        count: usize,
        mut parent: Option<String>,
        revive: Option<usize>,
    ) -> Vec<SessionNodeRecord> {
        let mut nodes = Vec::new();
        for position in 0..count {
            let revived = revive.filter(|_| position == 0 && !self.tombstoned.is_empty());
            let id = match revived {
                Some(index) => self.tombstoned[index % self.tombstoned.len()].clone(),
                None => self.fresh(),
            };
            nodes.push(node(&id, parent.as_deref()));
            parent = Some(id);
        }
        nodes
    }

    /// The node id `pick` names (`None`: no parent / no leaf).
    fn resolve(&self, pick: Pick, head_leaf: Option<String>) -> Option<String> {
        match pick {
            Pick::Head => head_leaf,
            Pick::Known(index) => self.id(index).or(head_leaf),
            Pick::Root => None,
            Pick::Unknown => Some("never-appended".to_owned()),
        }
    }
}

/// Applies the `Extra` part of a commit.
fn finish(
    known: &mut Known,
    mut builder: strata_testkit::fixtures::CommitBuilder,
    extra: Extra,
    head: u64,
) -> RuntimeCommit {
    builder = match extra.expect {
        Expect::Current => builder.expect(head),
        Expect::Stale => builder.expect(head + 3),
        Expect::Blind => builder,
    };
    if let Some((tag, carry)) = extra.checkpoint {
        let mut checkpoint = checkpoint_with_payloads(&format!("t{tag}"));
        if let Some(index) = carry.filter(|_| !known.refs.is_empty()) {
            let blob_ref = known.refs[index % known.refs.len()].clone();
            checkpoint.tool_state = CheckpointBlob::reference(blob_ref);
        }
        builder = builder.checkpoint(checkpoint);
    }
    if extra.usage {
        builder = builder.usage("agent", "m", usage(1, 2, 3, 0));
    }
    if extra.stamped {
        known.next += 1;
        builder = builder.stamp(&format!("turn-{}", known.next));
    }
    builder.build()
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(48)
}

async fn run(steps: Vec<Step>, negative: bool, revalidate: bool) -> Result<(), TestCaseError> {
    let mut layer = CacheLayer::default();
    if negative {
        layer = layer.with_negative_caching(Duration::from_secs(60));
    }
    if revalidate {
        layer = layer.with_revalidation(Revalidation::HeadRevision);
    }
    let factory = StoreBuilder::new().layer(layer).build_factory(MemoryStoreFactory::default());
    let mut handles = Vec::new();
    for _ in 0..HANDLES {
        handles.push(factory.create_store(SessionStoreRequest::new(SESSION)).await.unwrap());
    }
    let twin: Arc<dyn RuntimePersistence> = Arc::new(MemoryStore::new());
    let mut known = Known::default();

    for (index, step) in steps.into_iter().enumerate() {
        let head = twin.load_session(SessionReadScope::FullGraph).await.unwrap();
        let head_revision = head.as_ref().map_or(0, |read| read.head_revision);
        let head_leaf = head.and_then(|read| read.graph.leaf_node_id);
        let at = format!("step {index}: {step:?}");
        macro_rules! both {
            ($handle:expr, |$store:ident| $call:expr) => {{
                let cached = {
                    let $store = &handles[$handle];
                    $call.await
                };
                let truth = {
                    let $store = &twin;
                    $call.await
                };
                prop_assert_eq!(&cached, &truth, "{}", at);
                cached
            }};
        }
        let committed = match step {
            Step::Append { handle, count, parent, revive, extra } => {
                let parent = known.resolve(parent, head_leaf);
                let nodes = known.chain(count, parent, revive);
                let next = finish(&mut known, commit(SESSION).append(nodes), extra, head_revision);
                Some((both!(handle, |store| store.commit_runtime_state(next.clone())), next))
            }
            Step::MoveLeaf { handle, leaf, extra } => {
                let leaf = known.resolve(leaf, head_leaf);
                let next =
                    finish(&mut known, commit(SESSION).leaf(leaf.as_deref()), extra, head_revision);
                Some((both!(handle, |store| store.commit_runtime_state(next.clone())), next))
            }
            Step::Replace { handle, count, extra } => {
                let nodes = known.chain(count, None, None);
                let next = finish(&mut known, commit(SESSION).replace(nodes), extra, head_revision);
                Some((both!(handle, |store| store.commit_runtime_state(next.clone())), next))
            }
            Step::RetryLastStamp { handle } => match known.last_stamped.clone() {
                Some(last) => {
                    let _ = both!(handle, |store| store.commit_runtime_state(last.clone()));
                    None
                }
                None => None,
            },
            Step::Tombstone { handle, pick, unknown } => {
                let id = if unknown { Some("never-appended".to_owned()) } else { known.id(pick) };
                if let Some(id) = id {
                    let ids = [id.clone()];
                    let _ = both!(handle, |store| store.tombstone_nodes(&ids));
                    known.tombstoned.push(id);
                }
                None
            }
            Step::Vacuum { handle } => {
                let _ = both!(handle, |store| store.vacuum());
                None
            }
            Step::Gc { handle } => {
                let _ = both!(handle, |store| store.gc_unreachable());
                None
            }
            Step::SaveMeta { handle, tag } => {
                let record = meta(SESSION, &tag.to_string());
                let _ = both!(handle, |store| store.save_session_meta(record.clone()));
                None
            }
            Step::LoadSession { handle, scope } => {
                let scope = match scope {
                    ScopePick::Full => SessionReadScope::FullGraph,
                    ScopePick::Head => SessionReadScope::ActivePath { leaf_node_id: None },
                    ScopePick::Leaf(index) => {
                        SessionReadScope::ActivePath { leaf_node_id: known.id(index) }
                    }
                };
                let _ = both!(handle, |store| store.load_session(scope.clone()));
                None
            }
            Step::LoadNode { handle, pick, unknown } => {
                let id = if unknown { Some("never-appended".to_owned()) } else { known.id(pick) };
                if let Some(id) = id {
                    let _ = both!(handle, |store| store.load_node(&id));
                }
                None
            }
            Step::LoadMeta { handle } => {
                let _ = both!(handle, |store| store.load_session_meta());
                None
            }
        };
        if let Some((Ok(result), next)) = committed {
            known.ids.extend(next.graph.nodes().iter().map(|node| node.node_id.clone()));
            known.refs.extend(result.manifest.iter().flat_map(|m| m.blob_refs().cloned()));
            if next.turn_commit.is_some() {
                known.last_stamped = Some(next);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn every_cached_answer_equals_the_uncached_twin(
        steps in proptest::collection::vec(step(), 1..80),
        negative in any::<bool>(),
        revalidate in any::<bool>(),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(run(steps, negative, revalidate))?;
    }
}
