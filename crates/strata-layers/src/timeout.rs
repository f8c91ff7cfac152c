//! The timeout layer: gives every call a deadline, by what the call does, and fails it with
//! [`StoreError::Timeout`] when the deadline passes first.
//!
//! # Deadlines (defaults)
//!
//! | group | operations | default | setter |
//! |---|---|---|---|
//! | reads and queue claims | `load_session`, `load_node`, `load_session_meta`, `list_queued_work`, `list_pending_queued_work`, `list_uncommitted`, `claim_ready_queued_work`, `claim_ready_queued_work_by_batch_ids`, `renew_queued_work_claim`, `abandon_queued_work_claim`, `cancel_queued_work_batch` | 1 s | [`with_read_timeout`](TimeoutLayer::with_read_timeout) |
//! | writes | `commit_runtime_state`, `save_session_meta`, `enqueue_queued_work`, `tombstone_nodes`, `record_intent`, `commit_refs`, `forget` | 5 s | [`with_write_timeout`](TimeoutLayer::with_write_timeout) |
//! | maintenance | `vacuum`, `gc_unreachable` | 60 s | [`with_maintenance_timeout`](TimeoutLayer::with_maintenance_timeout) |
//!
//! [`with_operation_timeout`](TimeoutLayer::with_operation_timeout) sets (or, with `None`,
//! removes) one operation's deadline; [`with_timeout`](TimeoutLayer::with_timeout) sets all.
//! The defaults are generous for local backends (a durable commit takes a fraction of a
//! millisecond to a few milliseconds): a deadline is there to turn a stuck call into an error,
//! not to cut off a slow but healthy one.
//!
//! A deadline counts from the call's first wait: the layer polls the inner call once, and only
//! when it is not answered at once starts a timer (tokio's, so tests run on a paused clock). A
//! call answered at once (the in-memory store, a cache hit) costs no timer and no clock read.
//! A store's future does its work when polled and waits for I/O without blocking the thread
//! (the design notes' rule); a poll that blocks the thread could not be interrupted by any
//! timeout. When the call and its deadline are both ready, the call's answer wins. The layer
//! needs a tokio runtime with its timer enabled.
//!
//! # What a timeout means
//!
//! `Timeout { operation, elapsed }` is transient: the retry layer repeats a timed-out read,
//! idempotent write or keyed write (a stamped commit, a keyed enqueue). For an unkeyed write it
//! is ambiguous (the write may have applied just before the deadline), so retry returns it
//! unchanged. With the `metrics` feature the layer counts `strata_store_timeouts_total` by
//! operation (see the [crate docs](crate#metrics)).
//!
//! # Where it goes
//!
//! Inside retry: `… → retry → timeout → limit → breaker → [faults] → store`. Each attempt
//! then gets its own deadline and a hung attempt becomes a retryable `Timeout`. Put outside
//! retry, one deadline covers every attempt and their backoffs: a first attempt that hangs
//! uses it all and the call fails, although a retry would have succeeded (the crate docs show
//! it). The limiter sits inside the timeout, so that waiting for a permit counts against the
//! deadline.
//!
//! # Cancellation
//!
//! When the deadline passes, the layer drops the inner call. A dropped read has no effect; a
//! dropped write may still apply (the ambiguous outcome above). Dropping the timed call itself
//! drops the inner call and the timer; the layer keeps no other state.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

#[cfg(feature = "metrics")]
use crate::metrics::{PerOperation, PolicyTable, names};
use strata_core::{Around, Operation, Request, Response, Serve, StoreError};
use tokio::time::{Instant, Sleep};

/// How many operations there are (the size of the per-operation table).
const OPERATIONS: usize = Operation::ALL.len();

/// What an operation does, for its default deadline.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Group {
    ReadOrClaim,
    Write,
    Maintenance,
}

impl Group {
    const fn of(operation: Operation) -> Self {
        match operation {
            Operation::LoadSession
            | Operation::LoadNode
            | Operation::LoadSessionMeta
            | Operation::ListQueuedWork
            | Operation::ListPendingQueuedWork
            | Operation::ListUncommitted
            | Operation::ClaimReadyQueuedWork
            | Operation::ClaimReadyQueuedWorkByBatchIds
            | Operation::RenewQueuedWorkClaim
            | Operation::AbandonQueuedWorkClaim
            | Operation::CancelQueuedWorkBatch => Group::ReadOrClaim,
            Operation::CommitRuntimeState
            | Operation::SaveSessionMeta
            | Operation::EnqueueQueuedWork
            | Operation::TombstoneNodes
            | Operation::RecordIntent
            | Operation::CommitRefs
            | Operation::Forget => Group::Write,
            Operation::Vacuum | Operation::GcUnreachable => Group::Maintenance,
        }
    }

    const fn default_timeout(self) -> Duration {
        match self {
            Group::ReadOrClaim => Duration::from_secs(1),
            Group::Write => Duration::from_secs(5),
            Group::Maintenance => Duration::from_secs(60),
        }
    }
}

/// The timeout decorator and its configuration (an [`Around`], hence a
/// [`Layer`](strata_core::Layer)). Clones share the configuration and the metric handles.
///
/// ```
/// use std::time::Duration;
/// use strata_core::Operation;
/// use strata_layers::TimeoutLayer;
///
/// let layer = TimeoutLayer::default()
///     .with_read_timeout(Duration::from_millis(200))
///     .with_operation_timeout(Operation::GcUnreachable, None);
/// assert_eq!(layer.timeout_for(Operation::LoadNode), Some(Duration::from_millis(200)));
/// assert_eq!(layer.timeout_for(Operation::CommitRuntimeState), Some(Duration::from_secs(5)));
/// assert_eq!(layer.timeout_for(Operation::GcUnreachable), None);
/// assert_eq!(format!("{layer:?}"), "timeout");
/// ```
#[derive(Clone)]
pub struct TimeoutLayer {
    /// Indexed by [`Operation::index`]; `None`: no deadline.
    limits: Arc<[Option<Duration>; OPERATIONS]>,
    #[cfg(feature = "metrics")]
    metrics: Arc<PolicyTable<PerOperation<metrics::Counter>>>,
}

impl Default for TimeoutLayer {
    fn default() -> Self {
        let mut limits = [None; OPERATIONS];
        for &operation in Operation::ALL {
            limits[operation.index()] = Some(Group::of(operation).default_timeout());
        }
        Self {
            limits: Arc::new(limits),
            #[cfg(feature = "metrics")]
            metrics: Arc::default(),
        }
    }
}

impl TimeoutLayer {
    /// The default deadlines (see the module docs).
    pub fn new() -> Self {
        Self::default()
    }

    fn configure(mut self, change: impl FnOnce(&mut [Option<Duration>; OPERATIONS])) -> Self {
        change(Arc::make_mut(&mut self.limits));
        self
    }

    fn set_group(self, group: Group, timeout: Duration) -> Self {
        self.configure(|limits| {
            for &operation in Operation::ALL {
                if Group::of(operation) == group {
                    limits[operation.index()] = Some(timeout);
                }
            }
        })
    }

    /// The deadline of reads and queue claims, renewals, abandons and cancels (default 1 s).
    pub fn with_read_timeout(self, timeout: Duration) -> Self {
        self.set_group(Group::ReadOrClaim, timeout)
    }

    /// The deadline of commits and the other writes (default 5 s).
    pub fn with_write_timeout(self, timeout: Duration) -> Self {
        self.set_group(Group::Write, timeout)
    }

    /// The deadline of `vacuum` and `gc_unreachable` (default 60 s).
    pub fn with_maintenance_timeout(self, timeout: Duration) -> Self {
        self.set_group(Group::Maintenance, timeout)
    }

    /// One deadline for every operation.
    pub fn with_timeout(self, timeout: Duration) -> Self {
        self.configure(|limits| *limits = [Some(timeout); OPERATIONS])
    }

    /// The deadline of `operation`; `None` removes it.
    pub fn with_operation_timeout(self, operation: Operation, timeout: Option<Duration>) -> Self {
        self.configure(|limits| limits[operation.index()] = timeout)
    }

    /// Adds a `store` label with this static value to the layer's metrics. Returns a layer
    /// with a metric table of its own: configure first, then clone.
    #[cfg(feature = "metrics")]
    pub fn with_store_name(mut self, name: impl Into<std::borrow::Cow<'static, str>>) -> Self {
        self.metrics = Arc::new(PolicyTable::new(Some(name.into())));
        self
    }

    /// The deadline of `operation`, if it has one.
    pub fn timeout_for(&self, operation: Operation) -> Option<Duration> {
        self.limits[operation.index()]
    }

    fn timed_out(&self, operation: Operation, elapsed: Duration) -> StoreError {
        #[cfg(feature = "metrics")]
        self.metrics
            .get(|base| PerOperation::new(&base))
            .get(operation, |labels| metrics::counter!(names::TIMEOUTS, labels))
            .increment(1);
        StoreError::Timeout { operation: operation.name(), elapsed }
    }
}

impl fmt::Debug for TimeoutLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("timeout")
    }
}

impl Around for TimeoutLayer {
    fn around<'a, S>(
        &'a self,
        inner: &'a S,
        request: Request<'a>,
    ) -> impl Future<Output = Result<Response, StoreError>> + Send + 'a
    where
        S: Serve + ?Sized + 'a,
    {
        let operation = request.operation();
        Deadline {
            layer: self,
            operation,
            limit: self.timeout_for(operation),
            call: inner.serve(request),
            timer: None,
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner call and its deadline, started at the call's first wait.
    struct Deadline<'a, F> {
        layer: &'a TimeoutLayer,
        operation: Operation,
        limit: Option<Duration>,
        #[pin]
        call: F,
        // Boxed: allocated only for a call that waits, and keeps the future small (a tokio
        // timer is large and cache-line aligned).
        timer: Option<Pin<Box<Sleep>>>,
    }
}

impl<F> Future for Deadline<'_, F>
where
    F: Future<Output = Result<Response, StoreError>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(result) = this.call.poll(cx) {
            return Poll::Ready(result);
        }
        let Some(limit) = *this.limit else {
            return Poll::Pending;
        };
        let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        let elapsed = limit + Instant::now().saturating_duration_since(timer.deadline());
        Poll::Ready(Err(this.layer.timed_out(*this.operation, elapsed)))
    }
}

#[cfg(test)]
mod tests {
    use strata_core::{RuntimePersistence, SessionMeta};
    use tokio::time::Instant;

    use super::*;
    use crate::test_support::fixtures::{commit, stack};
    use crate::test_support::run_conformance;

    #[tokio::test(start_paused = true)]
    async fn a_call_past_its_deadline_fails_with_timeout_and_never_reaches_the_store() {
        let (store, faults) =
            stack(TimeoutLayer::default().with_read_timeout(Duration::from_millis(200)));
        faults.hang_next(Operation::LoadNode, 1);
        let started = Instant::now();
        assert_eq!(
            store.load_node("n").await,
            Err(StoreError::Timeout {
                operation: "load_node",
                elapsed: Duration::from_millis(200)
            })
        );
        assert_eq!(started.elapsed(), Duration::from_millis(200));
        assert_eq!(store.load_node("n").await, Ok(None), "the next call is not affected");
    }

    #[tokio::test(start_paused = true)]
    async fn deadlines_follow_the_operation_group_and_its_overrides() {
        let (store, faults) =
            stack(TimeoutLayer::default().with_operation_timeout(Operation::ListQueuedWork, None));
        let slow = Duration::from_secs(3);
        faults.delay_next(Operation::SaveSessionMeta, 1, slow);
        store.save_session_meta(SessionMeta::default()).await.expect("a write has 5 s");
        faults.delay_next(Operation::LoadSessionMeta, 1, slow);
        assert!(matches!(
            store.load_session_meta().await,
            Err(StoreError::Timeout { elapsed, .. }) if elapsed == Duration::from_secs(1)
        ));
        faults.delay_next(Operation::Vacuum, 1, Duration::from_secs(59));
        store.vacuum().await.expect("maintenance has 60 s");
        faults.delay_next(Operation::ListQueuedWork, 1, Duration::from_secs(3600));
        store.list_queued_work("s").await.expect("no deadline for this operation");
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_ready_at_once_wins_even_over_a_zero_deadline() {
        let (store, faults) = stack(TimeoutLayer::default().with_timeout(Duration::ZERO));
        store.commit_runtime_state(commit("s", None, vec![], None)).await.unwrap();
        faults.delay_next(Operation::LoadNode, 1, Duration::from_millis(1));
        assert!(matches!(store.load_node("n").await, Err(StoreError::Timeout { .. })));
    }

    #[test]
    fn every_operation_has_a_default_deadline_by_its_group() {
        let layer = TimeoutLayer::default();
        let limits: Vec<_> = [
            Operation::LoadNode,
            Operation::ClaimReadyQueuedWork,
            Operation::CommitRuntimeState,
            Operation::Forget,
            Operation::GcUnreachable,
        ]
        .map(|operation| layer.timeout_for(operation).map(|limit| limit.as_secs()))
        .to_vec();
        assert_eq!(limits, [Some(1), Some(1), Some(5), Some(5), Some(60)]);
        assert!(Operation::ALL.iter().all(|&operation| layer.timeout_for(operation).is_some()));
        let tuned = layer
            .clone()
            .with_write_timeout(Duration::from_millis(20))
            .with_maintenance_timeout(Duration::from_millis(30));
        assert_eq!(tuned.timeout_for(Operation::TombstoneNodes), Some(Duration::from_millis(20)));
        assert_eq!(tuned.timeout_for(Operation::Vacuum), Some(Duration::from_millis(30)));
        assert_eq!(
            layer.timeout_for(Operation::Vacuum),
            Some(Duration::from_secs(60)),
            "clones configure apart"
        );
    }

    #[cfg(feature = "metrics")]
    #[tokio::test(start_paused = true)]
    async fn timeouts_are_counted_by_operation() {
        use crate::test_support::recorder::{exclusive, snapshot};
        use metrics_util::MetricKind;
        use metrics_util::debugging::DebugValue;

        let _exclusive = exclusive().await;
        let layer = TimeoutLayer::default().with_store_name("timeout-metrics");
        let (store, faults) = stack(layer.with_timeout(Duration::from_millis(5)));
        faults.hang_next(Operation::LoadNode, 2);
        store.load_node("n").await.unwrap_err();
        store.load_node("n").await.unwrap_err();
        store.load_node("n").await.unwrap();
        let labels = vec!["operation=load_node".to_owned()];
        assert_eq!(
            snapshot("timeout-metrics"),
            [((MetricKind::Counter, names::TIMEOUTS.to_owned(), labels), DebugValue::Counter(2))]
        );
    }

    #[tokio::test]
    async fn conformance_over_memory_and_file_stores() {
        run_conformance(TimeoutLayer::default()).await;
    }
}
