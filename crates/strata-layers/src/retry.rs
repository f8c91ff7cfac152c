//! The retry layer: repeats a call that failed with a transient error, when repeating that
//! call is safe.
//!
//! # What is retried
//!
//! The decision takes the error *and* the call's idempotency class ([`Request::class`], the
//! design notes' per-method classes); [`may_retry`] is the rule:
//!
//! | class | calls | retried after |
//! |---|---|---|
//! | read | `load_*`, `list_*` | a transient error ([`StoreError::is_retryable`]: unavailable, not applied, timeout, overloaded) |
//! | idempotent write | `save_session_meta`, `tombstone_nodes`, `vacuum`, `gc_unreachable`, `abandon_queued_work_claim`, `record_intent`, `commit_refs`, `forget` | a transient error |
//! | keyed write | a commit with a turn stamp, an enqueue with a source key | a transient error: the store dedupes the repeat (a stamped commit whose lost first attempt applied answers with the stored result) |
//! | unkeyed write | an unstamped commit, an enqueue without a key, claims, `renew_queued_work_claim`, `cancel_queued_work_batch` | only an error that proves nothing was applied ([`StoreError::proves_nothing_applied`]: not applied, overloaded). `Unavailable` and `Timeout` are ambiguous (the write may have applied before the failure) and are returned unchanged: a retry could apply it twice |
//!
//! Never retried: the four semantic outcomes (answers, not faults), invalid input, corrupt
//! data, permanent errors, and `CircuitOpen` (a breaker fails fast on purpose; a retry a few
//! milliseconds later would meet it again).
//!
//! # Bounds and backoff (defaults)
//!
//! | setting | default | setter |
//! |---|---|---|
//! | attempts, the first included | 3 | [`with_max_attempts`](RetryLayer::with_max_attempts) |
//! | backoff before retry *n* | uniform in `[0, min(max, initial × 2^(n−1))]` ("full jitter", so that callers failing together do not retry together) | [`with_backoff`](RetryLayer::with_backoff): initial 5 ms, max 250 ms |
//! | total time | 10 s: no retry starts whose backoff would end after it (counted from the call's first wait, see below) | [`with_max_elapsed`](RetryLayer::with_max_elapsed) |
//! | retry budget | none | [`with_budget`](RetryLayer::with_budget) |
//! | jitter source | seeded from the OS | [`with_jitter_seed`](RetryLayer::with_jitter_seed) (reproducible delays) |
//!
//! The defaults are sized for local backends (the in-memory and file stores answer in
//! microseconds to milliseconds); raise them for a networked store. A [`RetryBudget`] bounds
//! retries as a fraction of calls over a sliding window (tower's `TpsBudget`): shared by every
//! handle the layer wraps (and by any other layer given the same budget), it keeps a sick
//! backend from being stormed by every caller's retries at once.
//!
//! Time is tokio's clock, so tests run the layer on a paused clock. The clock is first read
//! when the first attempt waits (or fails): a call answered at once costs no clock read.
//!
//! # When it gives up
//!
//! When the last attempt failed with an error the layer would retry but a bound stopped it
//! (attempts, total time or budget), the call fails with
//! [`StoreError::RetriesExhausted`] `{ operation, attempts, last_error }`: the last error stays
//! reachable. Any other error is returned unchanged (a retried stamped commit that meets a
//! conflict returns the conflict).
//!
//! # Observing retries
//!
//! [`with_on_retry`](RetryLayer::with_on_retry) runs a hook before each retry's backoff with a
//! [`RetryEvent`] (operation, attempt that failed, its error, the delay). With the `metrics`
//! feature the layer counts `strata_store_retries_total` and
//! `strata_store_retries_exhausted_total` by operation and error kind (see the
//! [crate docs](crate#metrics)).
//!
//! # Where it goes
//!
//! `tracing → metrics → cache → retry → timeout → limit → breaker → [faults] → store`. The
//! timeout goes *inside* retry, so that it bounds each attempt and a hung attempt becomes a
//! retryable `Timeout`. Outside retry, one hung attempt uses up the whole deadline and the call
//! fails although a retry would have succeeded (the crate docs show it). Metrics and tracing
//! go outside to see logical calls (put a second metrics layer inside retry to count attempts).
//!
//! # Cancellation
//!
//! Dropping the call drops the attempt in flight or the backoff sleep; the layer keeps no
//! per-call state. A budget's deposit and withdrawals stay counted. As with any dropped write,
//! the attempt in flight may still apply; repeating a keyed write later is safe.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use strata_core::{Around, MethodClass, Operation, Request, Response, Serve, StoreError};
use tokio::time::Instant;
use tower::retry::budget::{Budget, TpsBudget};

use crate::first_wait::FirstWait;
#[cfg(feature = "metrics")]
use crate::metrics::{ErrorKindCounters, PerOperation, PolicyTable, names};

/// True when a call of `class` that failed with `error` may be repeated (the table in the
/// [module docs](self)).
pub fn may_retry(class: MethodClass, error: &StoreError) -> bool {
    match class {
        MethodClass::Read | MethodClass::IdempotentWrite | MethodClass::KeyedWrite => {
            error.is_retryable()
        }
        MethodClass::UnkeyedWrite => error.is_retryable() && error.proves_nothing_applied(),
    }
}

/// One retry about to happen, as the [`with_on_retry`](RetryLayer::with_on_retry) hook sees it.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct RetryEvent<'e> {
    /// The call being retried.
    pub operation: Operation,
    /// The attempt that failed (the first call is attempt 1).
    pub attempt: u32,
    /// Its error.
    pub error: &'e StoreError,
    /// The backoff before the next attempt.
    pub delay: Duration,
}

type RetryHook = Arc<dyn Fn(&RetryEvent<'_>) + Send + Sync>;

/// A retry budget: retries allowed as a fraction of calls over a sliding window, plus a
/// minimum rate (tower's `TpsBudget`). Clones share one budget.
///
/// Every call entering a retry layer deposits into the budget; every retry withdraws. A retry
/// the budget refuses is not made: the call fails with `RetriesExhausted`.
#[derive(Clone)]
pub struct RetryBudget(Arc<TpsBudget>);

impl RetryBudget {
    /// Allows `retry_ratio` retries per call made in the last `window`, plus
    /// `min_retries_per_sec` retries per second whatever the traffic (so that a quiet caller
    /// can still retry).
    ///
    /// # Panics
    ///
    /// If `window` is not within 1 to 60 seconds or `retry_ratio` not within 0 to 1000.
    pub fn new(window: Duration, min_retries_per_sec: u32, retry_ratio: f32) -> Self {
        assert!(
            (Duration::from_secs(1)..=Duration::from_secs(60)).contains(&window),
            "a retry budget's window must be within 1 and 60 seconds, not {window:?}"
        );
        assert!(
            (0.0..=1000.0).contains(&retry_ratio),
            "a retry budget's ratio must be within 0 and 1000, not {retry_ratio}"
        );
        Self(Arc::new(TpsBudget::new(window, min_retries_per_sec, retry_ratio)))
    }
}

/// 20 % of calls over 10 s, plus 10 retries per second.
impl Default for RetryBudget {
    fn default() -> Self {
        Self::new(Duration::from_secs(10), 10, 0.2)
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The retry decorator and its configuration (an [`Around`], hence a
/// [`Layer`](strata_core::Layer)). Clones share the configuration, the budget, the jitter
/// source and the metric handles.
///
/// ```
/// use std::time::Duration;
/// use strata_layers::retry::{RetryBudget, RetryLayer};
///
/// let layer = RetryLayer::default()
///     .with_max_attempts(4)
///     .with_backoff(Duration::from_millis(10), Duration::from_millis(500))
///     .with_max_elapsed(Duration::from_secs(30))
///     .with_budget(RetryBudget::default())
///     .with_on_retry(|event| eprintln!("retrying {} after {}", event.operation, event.error));
/// assert_eq!(format!("{layer:?}"), "retry");
/// ```
#[derive(Clone, Default)]
pub struct RetryLayer {
    config: Arc<Config>,
    jitter: Arc<Mutex<fastrand::Rng>>,
    #[cfg(feature = "metrics")]
    metrics: Arc<PolicyTable<RetryMetrics>>,
}

#[derive(Clone)]
struct Config {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    max_elapsed: Duration,
    budget: Option<RetryBudget>,
    on_retry: Option<RetryHook>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(250),
            max_elapsed: Duration::from_secs(10),
            budget: None,
            on_retry: None,
        }
    }
}

impl RetryLayer {
    /// The default configuration (see the module docs).
    pub fn new() -> Self {
        Self::default()
    }

    fn configure(mut self, change: impl FnOnce(&mut Config)) -> Self {
        change(Arc::make_mut(&mut self.config));
        self
    }

    /// Attempts per call, the first included (default 3; 1 disables retrying).
    ///
    /// # Panics
    ///
    /// If `attempts` is 0.
    pub fn with_max_attempts(self, attempts: u32) -> Self {
        assert!(attempts > 0, "a call makes at least one attempt");
        self.configure(|config| config.max_attempts = attempts)
    }

    /// The backoff before the first retry, doubling for each later one up to `max` (defaults
    /// 5 ms and 250 ms); each delay is drawn uniformly below that bound.
    pub fn with_backoff(self, initial: Duration, max: Duration) -> Self {
        self.configure(|config| {
            config.initial_backoff = initial;
            config.max_backoff = max.max(initial);
        })
    }

    /// No retry starts whose backoff would end more than `max_elapsed` after the call first
    /// waited (default 10 s).
    pub fn with_max_elapsed(self, max_elapsed: Duration) -> Self {
        self.configure(|config| config.max_elapsed = max_elapsed)
    }

    /// Bounds retries by `budget` (default: no budget).
    pub fn with_budget(self, budget: RetryBudget) -> Self {
        self.configure(|config| config.budget = Some(budget))
    }

    /// Runs `hook` before each retry's backoff.
    pub fn with_on_retry(self, hook: impl Fn(&RetryEvent<'_>) + Send + Sync + 'static) -> Self {
        self.configure(|config| config.on_retry = Some(Arc::new(hook)))
    }

    /// Draws backoff delays from a generator seeded with `seed`, so that a run's delays are
    /// reproducible (default: seeded from the OS). Returns a layer with a generator of its
    /// own: configure first, then clone.
    pub fn with_jitter_seed(mut self, seed: u64) -> Self {
        self.jitter = Arc::new(Mutex::new(fastrand::Rng::with_seed(seed)));
        self
    }

    /// Adds a `store` label with this static value to the layer's metrics. Returns a layer
    /// with a metric table of its own: configure first, then clone.
    #[cfg(feature = "metrics")]
    pub fn with_store_name(mut self, name: impl Into<std::borrow::Cow<'static, str>>) -> Self {
        self.metrics = Arc::new(PolicyTable::new(Some(name.into())));
        self
    }

    /// The delay before the retry that follows failed attempt `attempt` (from 1).
    fn backoff(&self, attempt: u32) -> Duration {
        let config = &*self.config;
        let doublings = attempt.saturating_sub(1).min(31);
        let ceiling = config.initial_backoff.saturating_mul(1 << doublings).min(config.max_backoff);
        // A poisoned lock only means a panic elsewhere; the generator is still valid.
        ceiling.mul_f64(self.jitter.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).f64())
    }

    /// True when the bounds allow a retry after failed attempt `attempt` of a call that first
    /// waited at `started`, with `delay` to go.
    fn bounds_allow(&self, attempt: u32, started: Instant, delay: Duration) -> bool {
        let config = &*self.config;
        attempt < config.max_attempts
            && started.elapsed().saturating_add(delay) <= config.max_elapsed
            // The budget is asked last, so that a retry refused for another reason costs
            // nothing.
            && config.budget.as_ref().is_none_or(|budget| budget.0.withdraw())
    }

    fn retrying(&self, event: &RetryEvent<'_>) {
        #[cfg(feature = "metrics")]
        self.metrics()
            .retries
            .get(event.operation, counters(names::RETRIES))
            .increment(event.error);
        if let Some(hook) = &self.config.on_retry {
            hook(event);
        }
    }

    fn gave_up(&self, operation: Operation, attempts: u32, last_error: StoreError) -> StoreError {
        #[cfg(feature = "metrics")]
        self.metrics()
            .exhausted
            .get(operation, counters(names::RETRIES_EXHAUSTED))
            .increment(&last_error);
        StoreError::RetriesExhausted {
            operation: operation.name(),
            attempts,
            last_error: Box::new(last_error),
        }
    }

    #[cfg(feature = "metrics")]
    fn metrics(&self) -> &RetryMetrics {
        self.metrics.get(|base| RetryMetrics {
            retries: PerOperation::new(&base),
            exhausted: PerOperation::new(&base),
        })
    }
}

/// The retry layer's handles: counters by operation, then by error kind.
#[cfg(feature = "metrics")]
struct RetryMetrics {
    retries: PerOperation<ErrorKindCounters>,
    exhausted: PerOperation<ErrorKindCounters>,
}

#[cfg(feature = "metrics")]
fn counters(name: &'static str) -> impl FnOnce(Vec<metrics::Label>) -> ErrorKindCounters {
    move |labels| ErrorKindCounters::new(name, labels)
}

impl fmt::Debug for RetryLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("retry")
    }
}

impl Around for RetryLayer {
    async fn around<'a, S>(
        &'a self,
        inner: &'a S,
        request: Request<'a>,
    ) -> Result<Response, StoreError>
    where
        S: Serve + ?Sized + 'a,
    {
        if let Some(budget) = &self.config.budget {
            budget.0.deposit();
        }
        if self.config.max_attempts == 1 {
            return inner.serve(request).await;
        }
        let (operation, class) = (request.operation(), request.class());
        // When the call first waited or failed: the start of the elapsed-time bound.
        let mut started = None;
        let mut attempt = 0;
        loop {
            attempt += 1;
            // One await of the inner call (not one per attempt kind) keeps the future small.
            let error = match FirstWait::new(inner.serve(request.clone()), &mut started).await {
                Ok(response) => return Ok(response),
                Err(error) => error,
            };
            if !may_retry(class, &error) {
                return Err(error);
            }
            let started = *started.get_or_insert_with(Instant::now);
            let delay = self.backoff(attempt);
            if !self.bounds_allow(attempt, started, delay) {
                return Err(self.gave_up(operation, attempt, error));
            }
            self.retrying(&RetryEvent { operation, attempt, error: &error, delay });
            if !delay.is_zero() {
                // Boxed: only a retry pays for the (large) timer.
                Box::pin(tokio::time::sleep(delay)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use strata_core::{
        AttachmentManifest, RuntimePersistence, SessionStoreFactory, SessionStoreRequest,
        StoreBuilder,
    };
    use strata_memory::MemoryStoreFactory;

    use super::*;
    use crate::test_support::fixtures::{commit, node, stack, start_then_drop};
    use crate::test_support::run_conformance;

    fn unavailable() -> StoreError {
        StoreError::Unavailable("injected".into())
    }

    /// Retry events as (operation, attempt, error kind, delay).
    type Events = Arc<StdMutex<Vec<(Operation, u32, &'static str, Duration)>>>;

    /// A layer that keeps every retry event it sees.
    fn recording(layer: RetryLayer) -> (RetryLayer, Events) {
        let events = Arc::new(StdMutex::new(Vec::new()));
        let seen = events.clone();
        let layer = layer.with_on_retry(move |event| {
            seen.lock().unwrap().push((
                event.operation,
                event.attempt,
                event.error.kind(),
                event.delay,
            ))
        });
        (layer, events)
    }

    #[test]
    fn the_decision_takes_the_error_and_the_method_class() {
        let timeout = StoreError::Timeout { operation: "x", elapsed: Duration::ZERO };
        let open = StoreError::CircuitOpen { operation: "x", retry_after: Duration::ZERO };
        let conflict = StoreError::HeadRevisionConflict { expected: Some(1), actual: 2 };
        let invalid = StoreError::InvalidInput("bad".into());
        let not_applied = StoreError::NotApplied("refused".into());
        let overloaded = StoreError::Overloaded("full".into());
        for class in [MethodClass::Read, MethodClass::IdempotentWrite, MethodClass::KeyedWrite] {
            for error in [&unavailable(), &timeout, &not_applied, &overloaded] {
                assert!(may_retry(class, error), "{class:?} after {error}");
            }
            for error in [&open, &conflict, &invalid] {
                assert!(!may_retry(class, error), "{class:?} after {error}");
            }
        }
        let unkeyed = MethodClass::UnkeyedWrite;
        assert!(may_retry(unkeyed, &not_applied) && may_retry(unkeyed, &overloaded));
        for error in [&unavailable(), &timeout, &open, &conflict, &invalid] {
            assert!(!may_retry(unkeyed, error), "unkeyed write after {error}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_is_retried_until_it_succeeds_and_the_hook_sees_each_retry() {
        let (layer, events) = recording(RetryLayer::default().with_jitter_seed(1));
        let (store, faults) = stack(layer);
        faults.fail_next(Operation::LoadNode, 2, unavailable());
        assert_eq!(store.load_node("missing").await, Ok(None));
        assert_eq!(faults.calls(Operation::LoadNode), 3);
        let events = events.lock().unwrap().clone();
        let attempts: Vec<_> =
            events.iter().map(|(op, attempt, kind, _)| (*op, *attempt, *kind)).collect();
        assert_eq!(
            attempts,
            [(Operation::LoadNode, 1, "unavailable"), (Operation::LoadNode, 2, "unavailable")]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_stamped_commit_whose_reply_was_lost_is_retried_and_applied_once() {
        let (store, faults) = stack(RetryLayer::default());
        faults.fail_after_next(Operation::CommitRuntimeState, 1, unavailable());
        let stamped = commit("s1", Some(0), vec![node("a", None, b"1")], Some("t1"));
        let result = store.commit_runtime_state(stamped).await.unwrap();
        assert_eq!(result.head_revision, 1, "the retry got the stored result");
        assert_eq!(faults.calls(Operation::CommitRuntimeState), 2);
        let head = store.load_session(strata_core::SessionReadScope::FullGraph).await.unwrap();
        assert_eq!(head.map(|read| read.head_revision), Some(1));
    }

    #[tokio::test(start_paused = true)]
    async fn an_unkeyed_write_is_retried_only_when_nothing_was_applied() {
        let (store, faults) = stack(RetryLayer::default());
        faults.fail_after_next(Operation::CommitRuntimeState, 1, unavailable());
        let blind = || commit("s1", None, vec![], None);
        assert_eq!(store.commit_runtime_state(blind()).await, Err(unavailable()));
        assert_eq!(
            faults.calls(Operation::CommitRuntimeState),
            1,
            "an ambiguous failure is not retried"
        );

        let timeout =
            StoreError::Timeout { operation: "commit_runtime_state", elapsed: Duration::ZERO };
        faults.fail_next(Operation::CommitRuntimeState, 1, timeout.clone());
        assert_eq!(store.commit_runtime_state(blind()).await, Err(timeout));
        assert_eq!(faults.calls(Operation::CommitRuntimeState), 2);

        faults.fail_next(
            Operation::CommitRuntimeState,
            1,
            StoreError::NotApplied("refused".into()),
        );
        assert_eq!(store.commit_runtime_state(blind()).await.unwrap().head_revision, 2);
        assert_eq!(faults.calls(Operation::CommitRuntimeState), 4, "retried once");
    }

    #[tokio::test(start_paused = true)]
    async fn answers_and_permanent_errors_are_returned_unchanged() {
        let (store, faults) = stack(RetryLayer::default());
        let conflict = store.commit_runtime_state(commit("s1", Some(3), vec![], Some("t"))).await;
        assert!(matches!(conflict, Err(StoreError::HeadRevisionConflict { .. })));
        let open =
            StoreError::CircuitOpen { operation: "load_node", retry_after: Duration::from_secs(1) };
        faults.fail_next(Operation::LoadNode, 1, open.clone());
        assert_eq!(store.load_node("n").await, Err(open));
        faults.fail_next(Operation::Vacuum, 1, StoreError::Backend("broken".into()));
        assert_eq!(store.vacuum().await, Err(StoreError::Backend("broken".into())));
        assert_eq!(
            faults.calls(Operation::CommitRuntimeState)
                + faults.calls(Operation::LoadNode)
                + faults.calls(Operation::Vacuum),
            3
        );
    }

    #[tokio::test(start_paused = true)]
    async fn it_gives_up_after_max_attempts_keeping_the_last_error() {
        let (store, faults) = stack(RetryLayer::default().with_max_attempts(4));
        faults.fail_next(Operation::SaveSessionMeta, 3, unavailable());
        faults.fail_next(Operation::SaveSessionMeta, 5, StoreError::Overloaded("busy".into()));
        let error = store.save_session_meta(Default::default()).await.unwrap_err();
        assert_eq!(
            error,
            StoreError::RetriesExhausted {
                operation: "save_session_meta",
                attempts: 4,
                last_error: Box::new(StoreError::Overloaded("busy".into())),
            }
        );
        assert_eq!(faults.calls(Operation::SaveSessionMeta), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_doubles_under_full_jitter_and_repeats_with_the_seed() {
        let run = |seed| async move {
            let layer = RetryLayer::default()
                .with_max_attempts(8)
                .with_backoff(Duration::from_millis(10), Duration::from_millis(50))
                .with_jitter_seed(seed);
            let (layer, events) = recording(layer);
            let (store, faults) = stack(layer);
            faults.fail_next(Operation::LoadSessionMeta, 8, unavailable());
            let started = tokio::time::Instant::now();
            assert!(matches!(
                store.load_session_meta().await,
                Err(StoreError::RetriesExhausted { attempts: 8, .. })
            ));
            let delays: Vec<Duration> =
                events.lock().unwrap().iter().map(|event| event.3).collect();
            // Tokio's timer fires on whole milliseconds: each sleep ends within 1 ms after.
            let (slept, elapsed) = (delays.iter().sum::<Duration>(), started.elapsed());
            assert!(elapsed >= slept && elapsed <= slept + Duration::from_millis(7), "{elapsed:?}");
            delays
        };
        let delays = run(7).await;
        assert_eq!(delays.len(), 7);
        for (retry, delay) in delays.iter().enumerate() {
            let ceiling = Duration::from_millis((10u64 << retry).min(50));
            assert!(*delay <= ceiling, "retry {retry}: {delay:?} over {ceiling:?}");
        }
        assert!(delays.iter().collect::<std::collections::HashSet<_>>().len() > 1, "jittered");
        assert_eq!(run(7).await, delays, "same seed, same delays");
        assert_ne!(run(8).await, delays);
    }

    #[tokio::test(start_paused = true)]
    async fn no_retry_starts_past_the_elapsed_bound() {
        let retry = RetryLayer::default()
            .with_max_attempts(10)
            .with_backoff(Duration::from_millis(1), Duration::from_millis(1))
            .with_max_elapsed(Duration::from_millis(350));
        let timeout = crate::TimeoutLayer::default().with_timeout(Duration::from_millis(100));
        let faults = strata_testkit::faults::FaultInjection::new();
        let store = StoreBuilder::new()
            .layer(retry)
            .layer(timeout)
            .layer(faults.clone())
            .build(strata_memory::MemoryStore::new());
        faults.hang_next(Operation::LoadNode, 10);
        let started = tokio::time::Instant::now();
        let error = store.load_node("n").await.unwrap_err();
        // Attempts end at about 100, 201, 302 and 403 ms; the fourth retry would start past 350.
        assert!(
            matches!(&error, StoreError::RetriesExhausted { attempts: 4, last_error, .. }
            if last_error.kind() == "timeout"),
            "{error:?}"
        );
        let elapsed = started.elapsed();
        assert!(
            elapsed >= Duration::from_millis(400) && elapsed <= Duration::from_millis(404),
            "{elapsed:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_shared_budget_lets_through_only_its_share_of_retries() {
        // Each call deposits one token; a retry withdraws two; no reserve: every other call may
        // retry. Two handles of one factory share the budget.
        let (layer, events) = recording(RetryLayer::default().with_budget(RetryBudget::new(
            Duration::from_secs(10),
            0,
            0.5,
        )));
        let faults = strata_testkit::faults::FaultInjection::new();
        let factory = StoreBuilder::new()
            .layer(layer)
            .layer(faults.clone())
            .build_factory(MemoryStoreFactory::default());
        let first = factory.create_store(SessionStoreRequest::new("a")).await.unwrap();
        let second = factory.create_store(SessionStoreRequest::new("b")).await.unwrap();
        let mut exhausted = 0;
        for call in 0..10 {
            faults.fail_next(Operation::LoadSessionMeta, 1, unavailable());
            let store = if call % 2 == 0 { &first } else { &second };
            match store.load_session_meta().await {
                Ok(_) => {}
                Err(StoreError::RetriesExhausted { attempts: 1, .. }) => exhausted += 1,
                Err(other) => panic!("unexpected {other}"),
            }
        }
        assert_eq!((events.lock().unwrap().len(), exhausted), (5, 5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_dropped_during_its_backoff_leaves_the_layer_usable() {
        let layer = RetryLayer::default()
            .with_backoff(Duration::from_secs(1), Duration::from_secs(1))
            .with_jitter_seed(1);
        let (store, faults) = stack(layer);
        faults.fail_next(Operation::LoadNode, 1, unavailable());
        start_then_drop(store.load_node("n")).await;
        assert_eq!(faults.calls(Operation::LoadNode), 1, "dropped before its retry");
        assert_eq!(store.load_node("n").await, Ok(None));
        assert_eq!(faults.calls(Operation::LoadNode), 2);
    }

    #[tokio::test]
    async fn a_layer_with_one_attempt_passes_errors_through() {
        let (store, faults) = stack(RetryLayer::default().with_max_attempts(1));
        faults.fail_next(Operation::LoadNode, 1, unavailable());
        assert_eq!(store.load_node("n").await, Err(unavailable()));
        assert_eq!(faults.calls(Operation::LoadNode), 1);
    }

    #[cfg(feature = "metrics")]
    #[tokio::test(start_paused = true)]
    async fn retries_and_give_ups_are_counted_by_operation_and_error_kind() {
        use crate::test_support::recorder::{exclusive, snapshot};
        use metrics_util::MetricKind;
        use metrics_util::debugging::DebugValue;

        let _exclusive = exclusive().await;
        let (store, faults) = stack(RetryLayer::default().with_store_name("retry-metrics"));
        faults.fail_next(Operation::LoadNode, 1, unavailable());
        store.load_node("n").await.unwrap();
        faults.fail_next(Operation::Forget, 3, StoreError::Overloaded("busy".into()));
        store.forget("a").await.unwrap_err();

        let counters: Vec<_> = snapshot("retry-metrics")
            .into_iter()
            .filter(|((kind, ..), _)| *kind == MetricKind::Counter)
            .map(|((_, name, labels), value)| (name, labels.join(","), value))
            .collect();
        assert_eq!(
            counters,
            [
                (
                    names::RETRIES_EXHAUSTED.to_owned(),
                    "error_kind=overloaded,operation=forget".to_owned(),
                    DebugValue::Counter(1)
                ),
                (
                    names::RETRIES.to_owned(),
                    "error_kind=overloaded,operation=forget".to_owned(),
                    DebugValue::Counter(2)
                ),
                (
                    names::RETRIES.to_owned(),
                    "error_kind=unavailable,operation=load_node".to_owned(),
                    DebugValue::Counter(1)
                ),
            ]
        );
    }

    #[tokio::test]
    async fn conformance_over_memory_and_file_stores() {
        run_conformance(RetryLayer::default()).await;
    }
}
