//! The policy layers' proof tests: retries that never apply a write twice under lost replies,
//! the recommended order against the wrong one, breaker transitions under scripted failure
//! runs, the limiter under 64 concurrent callers, and the conformance suite over the full
//! recommended stack (cache included). All timing runs on tokio's paused clock unless said otherwise.

#![cfg(all(
    feature = "tracing",
    feature = "metrics",
    feature = "cache",
    feature = "retry",
    feature = "timeout",
    feature = "limit",
    feature = "breaker"
))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use strata_core::{
    Around, DurabilityTier, Layer, ManualClock, Operation, PersistedSessionRead, Request, Response,
    RuntimePersistence, Serve, SessionReadScope, SessionStoreFactory, StoreBuilder, StoreError,
};
use strata_file::{FileStore, FileStoreFactory, FileStoreOptions};
use strata_layers::{
    CacheLayer, CircuitBreakerLayer, CircuitState, ConcurrencyLimitLayer, MetricsLayer, RetryLayer,
    TimeoutLayer, TracingLayer,
};
use strata_memory::{MemoryStore, MemoryStoreFactory};
use strata_testkit::faults::{Fault, FaultInjection};
use strata_testkit::fixtures::{self, chain, usage};
use strata_testkit::{START_MS, SuiteOptions, run_factory_suite, run_store_suite};

const SESSION: &str = "policy-session";

fn lost_reply() -> StoreError {
    StoreError::Unavailable("reply lost".into())
}

/// Turn `turn` of a session: two nodes chained under the previous turn's leaf, a usage row,
/// a checkpoint, stamped when `stamped`.
fn turn(turn: usize, expected: u64, stamped: bool) -> strata_core::RuntimeCommit {
    let parent = (turn > 0).then(|| format!("t{}-1", turn - 1));
    let builder = fixtures::commit(SESSION)
        .expect(expected)
        .append(chain(&format!("t{turn}-"), 2, parent.as_deref()))
        .usage("agent", "model", usage(10 + turn as u64, 5, 1, 2))
        .checkpoint(fixtures::checkpoint_with_payloads(&turn.to_string()))
        .config(format!("config {turn}"));
    if stamped { builder.stamp(&format!("turn-{turn}")).build() } else { builder.build() }
}

/// A memory store with the suite's fixed clock (so that two runs are comparable).
fn memory() -> MemoryStore {
    MemoryStore::with_clock(Arc::new(ManualClock::new(START_MS)))
}

fn file(dir: &std::path::Path) -> FileStore {
    let options = FileStoreOptions::default().with_clock(Arc::new(ManualClock::new(START_MS)));
    FileStore::open(dir, options).expect("the file store opens")
}

/// Runs `turns` turns through `store`, each commit expecting the revision the last one
/// returned (as a runtime does). Returns the final full read.
async fn run_turns(store: &dyn RuntimePersistence, turns: usize) -> PersistedSessionRead {
    let mut head = 0;
    for index in 0..turns {
        let result = store.commit_runtime_state(turn(index, head, true)).await;
        head = result.unwrap_or_else(|error| panic!("turn {index}: {error}")).head_revision;
    }
    store.load_session(SessionReadScope::FullGraph).await.unwrap().expect("the session exists")
}

/// Retry with room for long fault runs: a failure at a 30 % rate repeats 30 times with
/// probability 0.3³⁰, and the seed makes the run reproducible anyway.
fn patient_retry() -> RetryLayer {
    RetryLayer::default().with_max_attempts(30).with_max_elapsed(Duration::from_secs(600))
}

#[tokio::test(start_paused = true)]
async fn stamped_commits_under_30_percent_lost_replies_end_like_a_fault_free_run() {
    const TURNS: usize = 60;
    let expected = run_turns(&memory(), TURNS).await;
    assert_eq!(expected.head_revision, TURNS as u64);

    let lost_replies = |seed| {
        FaultInjection::new().with_seed(seed).with_rate(
            &[Operation::CommitRuntimeState],
            0.3,
            Fault::FailAfter(lost_reply()),
        )
    };
    // In memory.
    let faults = lost_replies(11);
    let store = StoreBuilder::new().layer(patient_retry()).layer(faults.clone()).build(memory());
    assert_eq!(run_turns(&store, TURNS).await, expected, "in memory");
    let injected = faults.injected(Operation::CommitRuntimeState);
    assert!(injected >= 12, "only {injected} lost replies injected");

    // On the durable file store, and again after reopening it.
    let dir = tempfile::tempdir().unwrap();
    let faults = lost_replies(12);
    let store =
        StoreBuilder::new().layer(patient_retry()).layer(faults.clone()).build(file(dir.path()));
    assert_eq!(run_turns(&store, TURNS).await, expected, "on the file store");
    assert!(faults.injected(Operation::CommitRuntimeState) >= 12);
    drop(store);
    let reopened = file(dir.path()).load_session(SessionReadScope::FullGraph).await.unwrap();
    assert_eq!(reopened, Some(expected), "after reopening");
}

#[tokio::test(start_paused = true)]
async fn unstamped_commits_are_never_retried_after_a_lost_reply() {
    let faults = FaultInjection::new();
    let store = StoreBuilder::new().layer(patient_retry()).layer(faults.clone()).build(memory());
    faults.fail_after_next(Operation::CommitRuntimeState, 5, lost_reply());
    for index in 0..5 {
        // A blind commit (no CAS) would apply again on every retry.
        let mut commit = turn(index, 0, false);
        commit.expected_head_revision = None;
        assert_eq!(
            store.commit_runtime_state(commit).await,
            Err(lost_reply()),
            "the caller sees it"
        );
    }
    assert_eq!(faults.calls(Operation::CommitRuntimeState), 5, "one attempt each");
    let read = store.load_session(SessionReadScope::FullGraph).await.unwrap().unwrap();
    assert_eq!(read.head_revision, 5, "each applied exactly once");
    assert_eq!(read.token_ledger[0].usage.input_tokens, (10..15).sum::<u64>());
}

#[tokio::test(start_paused = true)]
async fn keyed_enqueues_under_faults_give_exactly_one_batch_per_key() {
    let faults = FaultInjection::new()
        .with_seed(5)
        .with_rate(&[Operation::EnqueueQueuedWork], 0.3, Fault::FailAfter(lost_reply()))
        .with_rate(
            &[Operation::EnqueueQueuedWork],
            0.2,
            Fault::FailBefore(StoreError::NotApplied("refused".into())),
        );
    let store = StoreBuilder::new().layer(patient_retry()).layer(faults.clone()).build(memory());
    // Every key is enqueued twice, as a runtime re-delivering its input would.
    for round in 0..2 {
        for key in 0..20 {
            let draft = fixtures::draft(SESSION).source_key(&format!("key-{key}")).build();
            let batch = store.enqueue_queued_work(draft).await;
            assert!(batch.is_ok(), "round {round}, key {key}: {batch:?}");
        }
    }
    let batches = store.list_queued_work(SESSION).await.unwrap();
    let keys: Vec<_> = batches.iter().map(|batch| batch.source_key.clone().unwrap()).collect();
    assert_eq!(keys, (0..20).map(|key| format!("key-{key}")).collect::<Vec<_>>());
    assert!(faults.injected(Operation::EnqueueQueuedWork) >= 10, "faults were injected");
}

/// A store behind `layers`, with fault injection right above it.
fn stacked<L>(layers: StoreBuilder<L>) -> (L::Store, FaultInjection)
where
    L: Layer<strata_core::Decorated<MemoryStore, FaultInjection>>,
{
    let faults = FaultInjection::new();
    let store = layers.build(StoreBuilder::new().layer(faults.clone()).build(memory()));
    (store, faults)
}

#[tokio::test(start_paused = true)]
async fn retry_inside_the_timeout_behaves_worse_than_the_timeout_inside_retry() {
    let deadline = TimeoutLayer::default().with_timeout(Duration::from_millis(100));
    let retry = || RetryLayer::default().with_jitter_seed(3);
    let (right, right_faults) = stacked(StoreBuilder::new().layer(retry()).layer(deadline.clone()));
    let (wrong, wrong_faults) = stacked(StoreBuilder::new().layer(deadline).layer(retry()));

    // One hung attempt: the recommended order retries it, the wrong one times out.
    right_faults.hang_next(Operation::LoadSessionMeta, 1);
    wrong_faults.hang_next(Operation::LoadSessionMeta, 1);
    let started = tokio::time::Instant::now();
    assert_eq!(right.load_session_meta().await, Ok(None));
    assert!(started.elapsed() < Duration::from_millis(110), "one deadline and one short backoff");
    let started = tokio::time::Instant::now();
    assert!(matches!(wrong.load_session_meta().await, Err(StoreError::Timeout { .. })));
    assert_eq!(started.elapsed(), Duration::from_millis(100));
    assert_eq!(
        (
            right_faults.calls(Operation::LoadSessionMeta),
            wrong_faults.calls(Operation::LoadSessionMeta)
        ),
        (2, 1),
        "the wrong order never got to retry"
    );
}

/// Breaker transitions as `(from, to)`.
type Transitions = Arc<Mutex<Vec<(CircuitState, CircuitState)>>>;

#[tokio::test(start_paused = true)]
async fn breaker_transitions_follow_a_scripted_failure_run_in_the_recommended_stack() {
    use CircuitState::{Closed, HalfOpen, Open};
    let transitions: Transitions = Arc::default();
    let record = transitions.clone();
    let breaker = CircuitBreakerLayer::default()
        .with_consecutive_failures(3)
        .with_failure_rate(0.5, 8, 8)
        .with_cool_down(Duration::from_secs(2))
        .with_on_transition(move |change| record.lock().unwrap().push((change.from, change.to)));
    let (store, faults) = stacked(
        StoreBuilder::new()
            .layer(RetryLayer::default().with_max_attempts(2).with_jitter_seed(9))
            .layer(TimeoutLayer::default())
            .layer(ConcurrencyLimitLayer::default())
            .layer(breaker.clone()),
    );
    let fail = || Some(Fault::FailBefore(StoreError::Unavailable("down".into())));

    // 1. Three consecutive failed attempts open it: the first call fails twice and gives up;
    // the second call's attempt fails, and its retry meets the open breaker (not retried).
    faults.script(Operation::LoadNode, [fail(), fail(), fail()]);
    assert!(matches!(
        store.load_node("n").await,
        Err(StoreError::RetriesExhausted { attempts: 2, .. })
    ));
    assert!(matches!(store.load_node("n").await, Err(StoreError::CircuitOpen { .. })));
    assert_eq!(faults.calls(Operation::LoadNode), 3);
    assert_eq!(breaker.state(), Open);
    // 2. While open, calls are turned away at once, not retried, not sent on.
    let reached = faults.calls(Operation::LoadNode);
    assert!(matches!(store.load_node("n").await, Err(StoreError::CircuitOpen { .. })));
    assert_eq!(faults.calls(Operation::LoadNode), reached);
    // 3. After the cool-down a failed probe reopens it; the next probe closes it.
    tokio::time::advance(Duration::from_secs(2)).await;
    faults.script(Operation::LoadNode, [fail()]);
    assert!(store.load_node("n").await.is_err());
    assert_eq!(breaker.state(), Open);
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(store.load_node("n").await, Ok(None));
    assert_eq!(breaker.state(), Closed);
    // 4. A failure rate of one in two over eight calls opens it again, never two in a row.
    faults.script(Operation::LoadNode, (0..4).flat_map(|_| [None, fail()]));
    for _ in 0..6 {
        let _ = store.load_node("n").await;
    }
    assert_eq!(breaker.state(), Open);
    assert_eq!(
        *transitions.lock().unwrap(),
        [
            (Closed, Open),
            (Open, HalfOpen),
            (HalfOpen, Open),
            (Open, HalfOpen),
            (HalfOpen, Closed),
            (Closed, Open)
        ]
    );
}

/// Counts the calls in flight through it and the most seen at once.
#[derive(Clone, Debug, Default)]
struct InFlight {
    now: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

impl Around for InFlight {
    async fn around<'a, S>(
        &'a self,
        inner: &'a S,
        request: Request<'a>,
    ) -> Result<Response, StoreError>
    where
        S: Serve + ?Sized + 'a,
    {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        let result = inner.serve(request).await;
        self.now.fetch_sub(1, Ordering::SeqCst);
        result
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limiter_never_exceeds_its_permits_under_64_concurrent_callers() {
    let in_flight = InFlight::default();
    let faults = FaultInjection::new().with_rate(
        Operation::ALL,
        1.0,
        Fault::Delay(Duration::from_millis(2)),
    );
    let store: Arc<dyn RuntimePersistence> = StoreBuilder::new()
        .layer(ConcurrencyLimitLayer::new(8).with_max_wait(Duration::from_secs(30)))
        .layer(in_flight.clone())
        .layer(faults)
        .build_shared(memory());
    let mut callers = tokio::task::JoinSet::new();
    for caller in 0..64 {
        let store = store.clone();
        callers.spawn(async move {
            for call in 0..4 {
                let node = format!("{caller}-{call}");
                store.load_node(&node).await.expect("every call gets a permit in time");
                store.load_session_meta().await.expect("every call gets a permit in time");
            }
        });
    }
    while let Some(caller) = callers.join_next().await {
        caller.unwrap();
    }
    assert_eq!(in_flight.most.load(Ordering::SeqCst), 8, "the limit was reached, never passed");
    assert_eq!(in_flight.now.load(Ordering::SeqCst), 0);
}

/// The recommended stack, outermost first: tracing → metrics → cache → retry → timeout →
/// limit → breaker. Every store built from one call shares the layers' state; a layered
/// factory gives each session one cache scope.
fn recommended() -> StoreBuilder<
    impl Layer<MemoryStore, Store: RuntimePersistence + std::fmt::Debug + 'static>
    + Layer<FileStore, Store: RuntimePersistence + 'static>
    + Layer<Arc<dyn RuntimePersistence>, Store: RuntimePersistence + 'static>
    + Clone
    + Send
    + Sync
    + 'static,
> {
    StoreBuilder::new()
        .layer(TracingLayer::default())
        .layer(MetricsLayer::default())
        .layer(CacheLayer::default())
        .layer(RetryLayer::default())
        .layer(TimeoutLayer::default())
        .layer(ConcurrencyLimitLayer::default())
        .layer(CircuitBreakerLayer::default())
}

#[tokio::test]
async fn the_recommended_stack_prints_its_order() {
    assert_eq!(
        format!("{:?}", recommended().build(MemoryStore::new())),
        "tracing → metrics → cache → retry → timeout → concurrency_limit(32) → circuit_breaker → \
         MemoryStore"
    );
}

#[tokio::test]
async fn the_recommended_stack_conforms_over_memory_and_file_stores() {
    let stack = recommended();
    run_store_suite(SuiteOptions::default(), move |ctx| {
        let store = stack.build(MemoryStore::with_clock(Arc::new(ctx.clock)));
        async move { Arc::new(store) as Arc<dyn RuntimePersistence> }
    })
    .await
    .assert_passed();

    let stack = recommended();
    let durable =
        SuiteOptions { tier: DurabilityTier::Durable, reopenable: true, ..Default::default() };
    run_store_suite(durable, move |ctx| {
        let options = FileStoreOptions::default().with_clock(Arc::new(ctx.clock));
        let store = stack.build(FileStore::open(&ctx.dir, options).expect("the file store opens"));
        async move { Arc::new(store) as Arc<dyn RuntimePersistence> }
    })
    .await
    .assert_passed();
}

#[tokio::test]
async fn the_recommended_stack_over_factories_conforms() {
    run_factory_suite(SuiteOptions::default(), |ctx| async move {
        let factory = MemoryStoreFactory::with_clock(Arc::new(ctx.clock));
        Arc::new(recommended().build_factory(factory)) as Arc<dyn SessionStoreFactory>
    })
    .await
    .assert_passed();

    let durable =
        SuiteOptions { tier: DurabilityTier::Durable, reopenable: true, ..Default::default() };
    run_factory_suite(durable, |ctx| async move {
        let options = FileStoreOptions::default().with_clock(Arc::new(ctx.clock));
        let factory = FileStoreFactory::open(&ctx.dir, options).expect("the factory opens");
        Arc::new(recommended().build_factory(factory)) as Arc<dyn SessionStoreFactory>
    })
    .await
    .assert_passed();
}

/// The file store's durable writes are held this long on its I/O side (the backend's drill
/// hook), far longer than the write deadline below.
const SLOW_DISK: Duration = Duration::from_millis(600);
const WRITE_DEADLINE: Duration = Duration::from_millis(100);

/// Retries as (failed attempt, error kind, time since the call started).
type RetryLog = Arc<Mutex<Vec<(u32, &'static str, Duration)>>>;

/// Over a file store whose durable writes take [`SLOW_DISK`]: the timeout inside retry fires
/// at each attempt's deadline while the write is in flight, the stamped retry that comes after
/// the write landed is answered from its stamp, the store holds the commit once and reopens
/// clean, a stamped retry on the reopened store applies nothing, and an unstamped commit that
/// times out is ambiguous: returned as `Timeout`, not retried, applied once.
async fn timeout_inside_retry_over_a_slow_file_store(dir: &std::path::Path) {
    let started = tokio::time::Instant::now();
    let retries: RetryLog = Arc::default();
    let seen = retries.clone();
    let stack = StoreBuilder::new()
        .layer(
            RetryLayer::default()
                .with_max_attempts(50)
                .with_backoff(Duration::from_millis(1), Duration::from_millis(5))
                .with_max_elapsed(Duration::from_secs(30))
                .with_on_retry(move |event| {
                    seen.lock().unwrap().push((
                        event.attempt,
                        event.error.kind(),
                        started.elapsed(),
                    ))
                }),
        )
        .layer(TimeoutLayer::default().with_write_timeout(WRITE_DEADLINE));
    let options = || FileStoreOptions::default().with_clock(Arc::new(ManualClock::new(START_MS)));
    let slow = FileStore::open(dir, options().with_write_delay(SLOW_DISK)).unwrap();
    let store = stack.build(slow);

    let first = turn(0, 0, true);
    let result = store.commit_runtime_state(first.clone()).await.expect("a retry got through");
    assert_eq!(result.head_revision, 1);
    let events = retries.lock().unwrap().clone();
    let (first_attempt, kind, at) = events[0];
    assert_eq!((first_attempt, kind), (1, "timeout"));
    // A timeout (not the write's answer) ended the first attempt, at its deadline or later.
    assert!(at >= WRITE_DEADLINE, "the first attempt timed out at {at:?}");
    assert!(events.iter().all(|(_, kind, _)| *kind == "timeout"), "{events:?}");
    assert!(started.elapsed() >= SLOW_DISK, "answered only once the write was durable");
    let read = store.load_session(SessionReadScope::FullGraph).await.unwrap().unwrap();
    assert_eq!((read.head_revision, read.graph.nodes.len()), (1, 2), "applied once");

    // An unstamped commit that times out: ambiguous, not retried, applied (once) anyway.
    let blind = strata_testkit::fixtures::commit(SESSION).config("blind").build();
    assert!(matches!(
        store.commit_runtime_state(blind).await,
        Err(StoreError::Timeout { operation: "commit_runtime_state", .. })
    ));
    assert_eq!(retries.lock().unwrap().len(), events.len(), "not retried");
    tokio::time::sleep(SLOW_DISK).await;
    drop(store);

    let reopened = stack.build(FileStore::open(dir, options()).unwrap());
    let read = reopened.load_session(SessionReadScope::FullGraph).await.unwrap().unwrap();
    assert_eq!(read.head_revision, 2, "the timed-out blind write applied once");
    assert_eq!(read.graph.nodes.len(), 2);
    assert_eq!(
        reopened.commit_runtime_state(first).await.unwrap().head_revision,
        1,
        "from the stamp"
    );
    let again = reopened.load_session(SessionReadScope::FullGraph).await.unwrap().unwrap();
    assert_eq!(again, read, "the stamped retry applied nothing");
}

#[test]
fn a_timeout_inside_retry_bounds_a_slow_durable_write_on_a_current_thread_runtime() {
    let dir = tempfile::tempdir().unwrap();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(timeout_inside_retry_over_a_slow_file_store(dir.path()));
}

#[test]
fn a_timeout_inside_retry_bounds_a_slow_durable_write_on_a_multi_thread_runtime() {
    let dir = tempfile::tempdir().unwrap();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(timeout_inside_retry_over_a_slow_file_store(dir.path()));
}
