//! A property test over random fault schedules and operation sequences: whatever the faults,
//! the retried stack's durable state equals a fault-free run's, or the call failed with an
//! error that says so — and no write is ever applied twice.
//!
//! The stack is `retry → timeout → faults → (a counter of calls that reached the store) →
//! memory store`. Each operation runs through it; a reference store, without faults, gets
//! what the faulty store applied:
//! - a call that succeeded was applied once;
//! - a keyed or idempotent call that failed must fail with `RetriesExhausted` (the layer says
//!   it gave up); the runtime drives it again later with the same key, which the test does
//!   straight on the store below the faults, and the store must not apply it twice;
//! - an unkeyed write that failed must fail with an ambiguous transient error (not retried:
//!   `Unavailable`, `Timeout`) or `RetriesExhausted` (after errors that proved nothing was
//!   applied); it reached the store at most once, and not at all when its error proves
//!   nothing was applied; the reference applies it as often as it reached the store.
//!
//! At the end both stores must hold the same session, metadata and queue. 48 cases by
//! default; `PROPTEST_CASES=2000 cargo test -p strata-layers --test properties` runs more.

#![cfg(all(feature = "retry", feature = "timeout"))]

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use strata_core::{
    ManualClock, MethodClass, Operation, RuntimeCommit, RuntimePersistence, SessionReadScope,
    StoreBuilder, StoreError,
};
use strata_layers::{RetryLayer, TimeoutLayer};
use strata_memory::MemoryStore;
use strata_testkit::START_MS;
use strata_testkit::faults::{Fault, FaultInjection};
use strata_testkit::fixtures::{self, node};

const SESSION: &str = "property-session";
const DEADLINE: Duration = Duration::from_millis(50);

/// One runtime call.
#[derive(Clone, Debug)]
enum Call {
    /// A stamped commit expecting the current head (keyed).
    StampedCommit,
    /// A blind commit without a stamp (unkeyed).
    BlindCommit,
    /// An enqueue with one of four source keys (keyed).
    KeyedEnqueue(u8),
    /// An enqueue without a key (unkeyed).
    UnkeyedEnqueue,
    /// A metadata save (idempotent).
    SaveMeta(u8),
    /// Tombstones the nodes of an earlier call (idempotent).
    Tombstone(u8),
}

fn calls() -> impl Strategy<Value = Vec<Call>> {
    let call = prop_oneof![
        3 => Just(Call::StampedCommit),
        2 => Just(Call::BlindCommit),
        2 => (0u8..4).prop_map(Call::KeyedEnqueue),
        1 => Just(Call::UnkeyedEnqueue),
        1 => (0u8..3).prop_map(Call::SaveMeta),
        1 => any::<u8>().prop_map(Call::Tombstone),
    ];
    prop::collection::vec(call, 1..30)
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        Just(Fault::FailBefore(StoreError::Unavailable("refused?".into()))),
        Just(Fault::FailBefore(StoreError::NotApplied("refused".into()))),
        Just(Fault::FailAfter(StoreError::Unavailable("reply lost".into()))),
        Just(Fault::Delay(DEADLINE / 5)),
        Just(Fault::Delay(DEADLINE * 2)),
        Just(Fault::Hang),
    ]
}

/// A schedule for one operation: a step per call, `None` letting the call through.
fn schedule() -> impl Strategy<Value = Vec<Option<Fault>>> {
    prop::collection::vec(prop::option::weighted(0.5, fault()), 0..40)
}

/// The faulted operations, in the order of [`Schedules`]' fields.
const FAULTED: [Operation; 4] = [
    Operation::CommitRuntimeState,
    Operation::EnqueueQueuedWork,
    Operation::SaveSessionMeta,
    Operation::TombstoneNodes,
];

type Schedules = [Vec<Option<Fault>>; 4];

fn schedules() -> impl Strategy<Value = Schedules> {
    [schedule(), schedule(), schedule(), schedule()]
}

fn memory() -> MemoryStore {
    MemoryStore::with_clock(Arc::new(ManualClock::new(START_MS)))
}

/// What a [`Call`] does, as the runtime would issue it: the `index`th call, with the head
/// the runtime last saw.
fn commit(index: usize, head: u64, stamped: bool) -> RuntimeCommit {
    let nodes = [node(&format!("n{index}a"), None), node(&format!("n{index}b"), None)];
    let builder = fixtures::commit(SESSION).append(nodes).usage(
        "agent",
        "m",
        fixtures::usage(index as u64 + 1, 1, 0, 0),
    );
    if stamped {
        builder.expect(head).stamp(&format!("turn-{index}")).build()
    } else {
        builder.build()
    }
}

async fn issue(
    store: &dyn RuntimePersistence,
    call: &Call,
    index: usize,
    head: u64,
) -> Result<(), StoreError> {
    match call {
        Call::StampedCommit => {
            store.commit_runtime_state(commit(index, head, true)).await.map(drop)
        }
        Call::BlindCommit => store.commit_runtime_state(commit(index, head, false)).await.map(drop),
        Call::KeyedEnqueue(key) => {
            let draft = fixtures::draft(SESSION).source_key(&format!("key-{key}")).build();
            store.enqueue_queued_work(draft).await.map(drop)
        }
        Call::UnkeyedEnqueue => {
            store.enqueue_queued_work(fixtures::draft(SESSION).build()).await.map(drop)
        }
        Call::SaveMeta(tag) => {
            store.save_session_meta(fixtures::meta(SESSION, &tag.to_string())).await
        }
        Call::Tombstone(of) => {
            let of = usize::from(*of) % index.max(1);
            store.tombstone_nodes(&[format!("n{of}a")]).await
        }
    }
}

fn operation(call: &Call) -> Operation {
    match call {
        Call::StampedCommit | Call::BlindCommit => Operation::CommitRuntimeState,
        Call::KeyedEnqueue(_) | Call::UnkeyedEnqueue => Operation::EnqueueQueuedWork,
        Call::SaveMeta(_) => Operation::SaveSessionMeta,
        Call::Tombstone(_) => Operation::TombstoneNodes,
    }
}

fn class(call: &Call) -> MethodClass {
    match call {
        Call::StampedCommit | Call::KeyedEnqueue(_) => MethodClass::KeyedWrite,
        Call::BlindCommit | Call::UnkeyedEnqueue => MethodClass::UnkeyedWrite,
        Call::SaveMeta(_) | Call::Tombstone(_) => MethodClass::IdempotentWrite,
    }
}

/// True when `error` says what happened to a call of `class`: the retry layer gave up, or an
/// unkeyed write failed ambiguously (not retried).
fn says_so(class: MethodClass, error: &StoreError) -> bool {
    matches!(error, StoreError::RetriesExhausted { .. })
        || (class == MethodClass::UnkeyedWrite && error.is_retryable())
}

/// True when `error` proves a call of `class` applied nothing.
fn proves_nothing_applied(class: MethodClass, error: &StoreError) -> bool {
    match error {
        StoreError::RetriesExhausted { last_error, .. } => {
            class == MethodClass::UnkeyedWrite && last_error.proves_nothing_applied()
        }
        other => other.proves_nothing_applied(),
    }
}

async fn check(calls: Vec<Call>, schedules: Schedules, seed: u64) -> Result<(), TestCaseError> {
    let store = Arc::new(memory());
    let reached = FaultInjection::new();
    let below_faults = Arc::new(StoreBuilder::new().layer(reached.clone()).build(store.clone()));
    let faults = FaultInjection::new();
    for (operation, steps) in FAULTED.into_iter().zip(schedules) {
        faults.script(operation, steps);
    }
    let stack = StoreBuilder::new()
        .layer(RetryLayer::default().with_max_attempts(4).with_jitter_seed(seed))
        .layer(TimeoutLayer::default().with_timeout(DEADLINE))
        .layer(faults)
        .build(below_faults.clone());
    let reference = memory();

    let mut head = 0;
    for (index, call) in calls.iter().enumerate() {
        let operation = operation(call);
        let before = reached.calls(operation);
        let result = issue(&stack, call, index, head).await;
        let reached_store = reached.calls(operation) - before;
        let applied = match &result {
            Ok(()) => 1,
            Err(error) => {
                let class = class(call);
                prop_assert!(says_so(class, error), "call {index} {call:?} failed with {error:?}");
                if class == MethodClass::UnkeyedWrite {
                    prop_assert!(
                        reached_store <= 1,
                        "{call:?} reached the store {reached_store} times"
                    );
                    if proves_nothing_applied(class, error) {
                        prop_assert_eq!(reached_store, 0, "{:?} claims nothing was applied", error);
                    }
                    reached_store
                } else {
                    // The runtime drives a keyed or idempotent call again later.
                    let again = issue(&*below_faults, call, index, head).await;
                    prop_assert!(again.is_ok(), "driving {call:?} again: {again:?}");
                    1
                }
            }
        };
        for _ in 0..applied {
            let expected = issue(&reference, call, index, head).await;
            prop_assert!(expected.is_ok(), "reference {call:?}: {expected:?}");
        }
        head = reference
            .load_session(SessionReadScope::FullGraph)
            .await?
            .map_or(0, |read| read.head_revision);
    }

    let scope = SessionReadScope::FullGraph;
    prop_assert_eq!(store.load_session(scope.clone()).await?, reference.load_session(scope).await?);
    prop_assert_eq!(store.load_session_meta().await?, reference.load_session_meta().await?);
    prop_assert_eq!(
        store.list_queued_work(SESSION).await?,
        reference.list_queued_work(SESSION).await?
    );
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(48)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn the_retried_stack_ends_like_a_fault_free_run_or_says_why_not(
        calls in calls(),
        schedules in schedules(),
        seed in any::<u64>(),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(check(calls, schedules, seed))?;
    }
}
