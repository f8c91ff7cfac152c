//! The metrics layer: calls, outcomes, errors, durations, in-flight calls and the figures of
//! commits, claims and maintenance, recorded through the [`metrics`] facade (so any recorder
//! works: Prometheus, OpenTelemetry, StatsD, a test recorder).
//!
//! The metric table (names, types, units, labels) is in the [crate docs](crate#metrics).
//!
//! # Defaults
//!
//! No store label; every series is labelled by `operation` (and `outcome` or `error_kind`
//! where stated). [`MetricsLayer::with_store_name`] adds a static `store` label. Labels are
//! bounded: never a session id, node id or path.
//!
//! # Handles and sharing
//!
//! The handle table is created on the layer's first call, against the recorder installed at
//! that time. Each handle (the counter and histogram of an (operation, outcome), the in-flight
//! gauge of an operation, the error counter of an (operation, error kind)) is built on its
//! first use and then reused by every call, so only series that happen are exported. Clones of a layer share the table, so applying one
//! layer to every handle of a factory records into one set of series. Install the recorder
//! before the first call.
//!
//! # Where it goes
//!
//! Inside tracing, outside everything else (`tracing → metrics → cache → retry → timeout →
//! …`): it then counts logical calls, and a retried call's duration includes its retries (put a
//! second metrics layer inside retry to count attempts).
//!
//! # Cancellation
//!
//! A call whose future is dropped before it finishes is counted with outcome `cancelled`, its
//! duration so far is recorded, and the in-flight gauge is decremented: the gauge stays exact
//! whatever the caller does.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use metrics::{Counter, Gauge, Histogram, Label, Unit};
use strata_core::{Around, Operation, Request, Response, Serve, StoreError};

use crate::call_info::{Figures, Observed, Observer, Outcome};

/// Names of every metric this layer records (documented in the crate docs).
pub mod names {
    /// Histogram, seconds: duration of calls by `operation` and `outcome`.
    pub const OPERATION_DURATION: &str = "strata_store_operation_duration_seconds";
    /// Counter: calls by `operation` and `outcome`.
    pub const OPERATIONS: &str = "strata_store_operations_total";
    /// Counter: failed calls by `operation` and `error_kind`.
    pub const ERRORS: &str = "strata_store_errors_total";
    /// Gauge: calls started and not yet finished or dropped, by `operation`.
    pub const IN_FLIGHT: &str = "strata_store_operations_in_flight";
    /// Counter: nodes written by successful commits.
    pub const COMMIT_NODES: &str = "strata_store_commit_nodes_total";
    /// Counter: usage rows appended by successful commits.
    pub const COMMIT_USAGE_ROWS: &str = "strata_store_commit_usage_rows_total";
    /// Counter, bytes: opaque payload bytes written by successful commits.
    pub const COMMIT_PAYLOAD_BYTES: &str = "strata_store_commit_payload_bytes_total";
    /// Counter: queued batches completed by successful commits.
    pub const COMMIT_COMPLETED_BATCHES: &str = "strata_store_commit_completed_batches_total";
    /// Counter: attachment ids stamped by successful commits.
    pub const COMMIT_ATTACHMENT_IDS: &str = "strata_store_commit_attachment_ids_total";
    /// Histogram: batches per non-empty claim, by `operation`.
    pub const CLAIM_BATCHES: &str = "strata_store_claim_batches";
    /// Counter: claims that found nothing to claim, by `operation`.
    pub const EMPTY_CLAIMS: &str = "strata_store_claims_empty_total";
    /// Counter: tombstoned nodes removed by `vacuum`.
    pub const VACUUM_REMOVED_NODES: &str = "strata_store_vacuum_removed_nodes_total";
    /// Counter: blobs deleted by `gc_unreachable`.
    pub const GC_DELETED_BLOBS: &str = "strata_store_gc_deleted_blobs_total";
    /// Gauge: blobs kept by the last `gc_unreachable`.
    pub const GC_RETAINED_BLOBS: &str = "strata_store_gc_retained_blobs";
    /// Counter: retries started by the retry layer, by `operation` and the `error_kind` that
    /// caused them.
    pub const RETRIES: &str = "strata_store_retries_total";
    /// Counter: calls the retry layer gave up on, by `operation` and last `error_kind`.
    pub const RETRIES_EXHAUSTED: &str = "strata_store_retries_exhausted_total";
    /// Counter: calls (attempts, inside retry) cut off by the timeout layer, by `operation`.
    pub const TIMEOUTS: &str = "strata_store_timeouts_total";
    /// Counter: calls that had to wait for a concurrency permit, by `operation`.
    pub const LIMITER_WAITS: &str = "strata_store_limiter_waits_total";
    /// Histogram, seconds: how long those calls waited, by `operation`.
    pub const LIMITER_WAIT_DURATION: &str = "strata_store_limiter_wait_duration_seconds";
    /// Counter: calls the concurrency limiter rejected, by `operation`.
    pub const LIMITER_REJECTIONS: &str = "strata_store_limiter_rejections_total";
    /// Gauge: the circuit breaker's state (0 closed, 1 open, 2 half-open).
    pub const CIRCUIT_STATE: &str = "strata_store_circuit_state";
    /// Counter: circuit breaker transitions, by the `state` entered.
    pub const CIRCUIT_TRANSITIONS: &str = "strata_store_circuit_transitions_total";
    /// Counter: calls the open circuit breaker turned away, by `operation`.
    pub const CIRCUIT_REJECTIONS: &str = "strata_store_circuit_rejections_total";
}

/// OpenTelemetry's database-client duration buckets, in seconds (for a recorder that takes
/// explicit buckets, e.g. `PrometheusBuilder::set_buckets_for_metric`).
pub const DURATION_BUCKETS: [f64; 9] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0];

enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Every metric, the policy layers' included: name, kind, unit, description (one list, used
/// to describe them to the recorder and, in tests, checked against the crate docs' table).
const METRICS: [(&str, Kind, Unit, &str); 23] = [
    (names::OPERATION_DURATION, Kind::Histogram, Unit::Seconds, "Duration of store calls."),
    (names::OPERATIONS, Kind::Counter, Unit::Count, "Store calls by operation and outcome."),
    (names::ERRORS, Kind::Counter, Unit::Count, "Failed store calls by operation and error kind."),
    (names::IN_FLIGHT, Kind::Gauge, Unit::Count, "Store calls in progress."),
    (names::COMMIT_NODES, Kind::Counter, Unit::Count, "Nodes written by commits."),
    (names::COMMIT_USAGE_ROWS, Kind::Counter, Unit::Count, "Usage rows appended by commits."),
    (names::COMMIT_PAYLOAD_BYTES, Kind::Counter, Unit::Bytes, "Payload bytes written by commits."),
    (
        names::COMMIT_COMPLETED_BATCHES,
        Kind::Counter,
        Unit::Count,
        "Queued batches completed by commits.",
    ),
    (
        names::COMMIT_ATTACHMENT_IDS,
        Kind::Counter,
        Unit::Count,
        "Attachment ids stamped by commits.",
    ),
    (names::CLAIM_BATCHES, Kind::Histogram, Unit::Count, "Batches per non-empty claim."),
    (names::EMPTY_CLAIMS, Kind::Counter, Unit::Count, "Claims that found no ready work."),
    (names::VACUUM_REMOVED_NODES, Kind::Counter, Unit::Count, "Nodes removed by vacuum."),
    (names::GC_DELETED_BLOBS, Kind::Counter, Unit::Count, "Blobs deleted by garbage collection."),
    (names::GC_RETAINED_BLOBS, Kind::Gauge, Unit::Count, "Blobs kept by the last collection."),
    (
        names::RETRIES,
        Kind::Counter,
        Unit::Count,
        "Retries by operation and the error causing them.",
    ),
    (names::RETRIES_EXHAUSTED, Kind::Counter, Unit::Count, "Calls the retry layer gave up on."),
    (names::TIMEOUTS, Kind::Counter, Unit::Count, "Calls cut off at their deadline."),
    (names::LIMITER_WAITS, Kind::Counter, Unit::Count, "Calls that waited for a permit."),
    (
        names::LIMITER_WAIT_DURATION,
        Kind::Histogram,
        Unit::Seconds,
        "Time calls waited for a concurrency permit.",
    ),
    (names::LIMITER_REJECTIONS, Kind::Counter, Unit::Count, "Calls rejected by the limiter."),
    (
        names::CIRCUIT_STATE,
        Kind::Gauge,
        Unit::Count,
        "Circuit breaker state: 0 closed, 1 open, 2 half-open.",
    ),
    (
        names::CIRCUIT_TRANSITIONS,
        Kind::Counter,
        Unit::Count,
        "Circuit breaker transitions by state entered.",
    ),
    (names::CIRCUIT_REJECTIONS, Kind::Counter, Unit::Count, "Calls the open circuit turned away."),
];

/// Describes every metric (name, unit, help text) to the installed recorder. The layer does
/// this itself when it builds its handles; call it to have the descriptions before any call.
pub fn describe_metrics() {
    for (name, kind, unit, description) in METRICS {
        match kind {
            Kind::Counter => metrics::describe_counter!(name, unit, description),
            Kind::Gauge => metrics::describe_gauge!(name, unit, description),
            Kind::Histogram => metrics::describe_histogram!(name, unit, description),
        }
    }
}

/// The metrics decorator and its configuration (an [`Around`], hence a
/// [`Layer`](strata_core::Layer)). Clones share one handle table.
///
/// ```
/// use strata_layers::MetricsLayer;
///
/// let layer = MetricsLayer::default().with_store_name("sessions");
/// assert_eq!(format!("{layer:?}"), "metrics(sessions)");
/// ```
#[derive(Clone, Default)]
pub struct MetricsLayer {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    store_name: Option<Cow<'static, str>>,
    table: OnceLock<Table>,
}

impl MetricsLayer {
    /// No store label (see the module docs).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a `store` label with this static value to every series. Returns a layer with a
    /// table of its own: configure first, then clone.
    pub fn with_store_name(self, name: impl Into<Cow<'static, str>>) -> Self {
        Self { shared: Arc::new(Shared { store_name: Some(name.into()), table: OnceLock::new() }) }
    }

    fn table(&self) -> &Table {
        self.shared.table.get_or_init(|| Table::new(self.shared.store_name.as_deref()))
    }
}

impl fmt::Debug for MetricsLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.shared.store_name {
            Some(name) => write!(f, "metrics({name})"),
            None => f.write_str("metrics"),
        }
    }
}

/// Every handle the layer records into. Per-operation and per-outcome handles are built on
/// first use (so only series that happen are exported), then reused for every call.
struct Table {
    /// The labels every series carries (the optional store name).
    base: Vec<Label>,
    /// Indexed by [`Operation::index`].
    operations: Vec<OnceLock<OperationMetrics>>,
    commit_nodes: Counter,
    commit_usage_rows: Counter,
    commit_payload_bytes: Counter,
    commit_completed_batches: Counter,
    commit_attachment_ids: Counter,
    vacuum_removed_nodes: Counter,
    gc_deleted_blobs: Counter,
    gc_retained_blobs: Gauge,
}

/// The handles of one operation.
struct OperationMetrics {
    /// Labels of this operation's series (the base labels and `operation`).
    labels: Vec<Label>,
    /// Indexed by [`Outcome::index`].
    outcomes: [OnceLock<OutcomeMetrics>; 4],
    in_flight: Gauge,
    /// Built on each kind's first occurrence (error path only).
    errors: ErrorKindCounters,
    /// Claim operations only.
    claims: Option<ClaimMetrics>,
}

/// The handles of one (operation, outcome).
struct OutcomeMetrics {
    calls: Counter,
    duration: Histogram,
}

struct ClaimMetrics {
    batches: Histogram,
    empty: Counter,
}

impl Table {
    fn new(store_name: Option<&str>) -> Self {
        describe_metrics();
        let base: Vec<Label> =
            store_name.map(|name| Label::new("store", name.to_owned())).into_iter().collect();
        let counter = |name: &'static str| metrics::counter!(name, base.clone());
        Self {
            operations: Operation::ALL.iter().map(|_| OnceLock::new()).collect(),
            commit_nodes: counter(names::COMMIT_NODES),
            commit_usage_rows: counter(names::COMMIT_USAGE_ROWS),
            commit_payload_bytes: counter(names::COMMIT_PAYLOAD_BYTES),
            commit_completed_batches: counter(names::COMMIT_COMPLETED_BATCHES),
            commit_attachment_ids: counter(names::COMMIT_ATTACHMENT_IDS),
            vacuum_removed_nodes: counter(names::VACUUM_REMOVED_NODES),
            gc_deleted_blobs: counter(names::GC_DELETED_BLOBS),
            gc_retained_blobs: metrics::gauge!(names::GC_RETAINED_BLOBS, base.clone()),
            base,
        }
    }

    fn operation(&self, operation: Operation) -> &OperationMetrics {
        self.operations[operation.index()]
            .get_or_init(|| OperationMetrics::new(operation, &self.base))
    }

    /// Records a successful call's figures (`commit`: the request's figures, commits only).
    fn record_success(&self, operation: Operation, commit: Option<&Figures>, response: &Response) {
        let count = |value: Option<u64>| value.unwrap_or(0);
        let mut figures = Figures::default();
        match operation {
            Operation::CommitRuntimeState => {
                let figures = commit.copied().unwrap_or_default();
                self.commit_nodes.increment(count(figures.nodes));
                self.commit_usage_rows.increment(count(figures.usage_rows));
                self.commit_payload_bytes.increment(count(figures.payload_bytes));
                self.commit_completed_batches.increment(count(figures.completed_batches));
                self.commit_attachment_ids.increment(count(figures.attachment_ids));
            }
            Operation::ClaimReadyQueuedWork | Operation::ClaimReadyQueuedWorkByBatchIds => {
                figures.add_response(response);
                if let Some(claims) = &self.operation(operation).claims {
                    match count(figures.batches) {
                        0 => claims.empty.increment(1),
                        batches => claims.batches.record(batches as f64),
                    }
                }
            }
            Operation::Vacuum => {
                figures.add_response(response);
                self.vacuum_removed_nodes.increment(count(figures.removed_nodes));
            }
            Operation::GcUnreachable => {
                figures.add_response(response);
                self.gc_deleted_blobs.increment(count(figures.deleted_blobs));
                self.gc_retained_blobs.set(count(figures.retained_blobs) as f64);
            }
            _ => {}
        }
    }
}

impl OperationMetrics {
    fn new(operation: Operation, base: &[Label]) -> Self {
        let mut labels = base.to_vec();
        labels.push(Label::from_static_parts("operation", operation.name()));
        let claims = matches!(
            operation,
            Operation::ClaimReadyQueuedWork | Operation::ClaimReadyQueuedWorkByBatchIds
        )
        .then(|| ClaimMetrics {
            batches: metrics::histogram!(names::CLAIM_BATCHES, labels.clone()),
            empty: metrics::counter!(names::EMPTY_CLAIMS, labels.clone()),
        });
        Self {
            outcomes: Default::default(),
            in_flight: metrics::gauge!(names::IN_FLIGHT, labels.clone()),
            errors: ErrorKindCounters::new(names::ERRORS, labels.clone()),
            claims,
            labels,
        }
    }

    fn outcome(&self, outcome: Outcome) -> &OutcomeMetrics {
        self.outcomes[outcome.index()].get_or_init(|| {
            let mut labels = self.labels.clone();
            labels.push(Label::from_static_parts("outcome", outcome.label()));
            OutcomeMetrics {
                calls: metrics::counter!(names::OPERATIONS, labels.clone()),
                duration: metrics::histogram!(names::OPERATION_DURATION, labels),
            }
        })
    }
}

/// The counters of one metric by `error_kind` (on top of fixed labels), each built on its
/// kind's first occurrence (error paths only) and then reused.
pub(crate) struct ErrorKindCounters {
    name: &'static str,
    labels: Vec<Label>,
    counters: Mutex<Vec<(&'static str, Counter)>>,
}

impl ErrorKindCounters {
    pub(crate) fn new(name: &'static str, labels: Vec<Label>) -> Self {
        Self { name, labels, counters: Mutex::new(Vec::new()) }
    }

    /// Counts one `error`, under its kind.
    pub(crate) fn increment(&self, error: &StoreError) {
        let kind = error.kind();
        // A poisoned lock only means another thread panicked while pushing a handle; the
        // list is still valid.
        let mut counters = self.counters.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let counter = match counters.iter().find(|(known, _)| *known == kind) {
            Some((_, counter)) => counter.clone(),
            None => {
                let mut labels = self.labels.clone();
                labels.push(Label::from_static_parts("error_kind", kind));
                let counter = metrics::counter!(self.name, labels);
                counters.push((kind, counter.clone()));
                counter
            }
        };
        drop(counters);
        counter.increment(1);
    }
}

/// A policy layer's handle table: built on the first event, against the recorder installed
/// then, with the optional `store` label; clones of the layer share it.
pub(crate) struct PolicyTable<T> {
    store_name: Option<Cow<'static, str>>,
    table: OnceLock<T>,
}

impl<T> Default for PolicyTable<T> {
    fn default() -> Self {
        Self::new(None)
    }
}

impl<T> PolicyTable<T> {
    pub(crate) fn new(store_name: Option<Cow<'static, str>>) -> Self {
        Self { store_name, table: OnceLock::new() }
    }

    /// The table, built by `build` from the base labels on first use.
    pub(crate) fn get(&self, build: impl FnOnce(Vec<Label>) -> T) -> &T {
        self.table.get_or_init(|| {
            describe_metrics();
            build(
                self.store_name.iter().map(|name| Label::new("store", name.to_string())).collect(),
            )
        })
    }
}

/// One handle per operation, each built on its operation's first event (so only series
/// that happen are exported) and then reused.
pub(crate) struct PerOperation<H> {
    base: Vec<Label>,
    handles: Box<[OnceLock<H>]>,
}

impl<H> PerOperation<H> {
    /// Handles labelled `base` plus `operation`.
    pub(crate) fn new(base: &[Label]) -> Self {
        Self {
            base: base.to_vec(),
            handles: Operation::ALL.iter().map(|_| OnceLock::new()).collect(),
        }
    }

    /// The handle of `operation`, built by `build` from its labels on first use.
    pub(crate) fn get(&self, operation: Operation, build: impl FnOnce(Vec<Label>) -> H) -> &H {
        self.handles[operation.index()].get_or_init(|| {
            let mut labels = self.base.clone();
            labels.push(Label::from_static_parts("operation", operation.name()));
            build(labels)
        })
    }
}

impl Around for MetricsLayer {
    fn around<'a, S>(
        &'a self,
        inner: &'a S,
        request: Request<'a>,
    ) -> impl Future<Output = Result<Response, StoreError>> + Send + 'a
    where
        S: Serve + ?Sized + 'a,
    {
        let table = self.table();
        let operation = request.operation();
        // A commit's figures are counted on success; boxed so other calls' futures stay small.
        let commit = matches!(operation, Operation::CommitRuntimeState)
            .then(|| Box::new(Figures::of_request(&request)));
        let in_flight = InFlight::start(table, operation, commit);
        Observed::new(inner.serve(request), in_flight)
    }
}

/// One call in progress: counted in the in-flight gauge until it ends or is dropped.
struct InFlight<'a> {
    table: &'a Table,
    operation: Operation,
    metrics: &'a OperationMetrics,
    /// A commit's request figures.
    commit: Option<Box<Figures>>,
    started: Instant,
    finished: bool,
}

impl<'a> InFlight<'a> {
    fn start(table: &'a Table, operation: Operation, commit: Option<Box<Figures>>) -> Self {
        let metrics = table.operation(operation);
        metrics.in_flight.increment(1.0);
        Self { table, operation, metrics, commit, started: Instant::now(), finished: false }
    }

    fn end(&mut self, outcome: Outcome) {
        self.finished = true;
        let handles = self.metrics.outcome(outcome);
        handles.duration.record(self.started.elapsed().as_secs_f64());
        handles.calls.increment(1);
        self.metrics.in_flight.decrement(1.0);
    }
}

impl Observer for InFlight<'_> {
    fn finish(&mut self, result: &Result<Response, StoreError>) {
        self.end(Outcome::of(result));
        match result {
            Ok(response) => {
                self.table.record_success(self.operation, self.commit.as_deref(), response)
            }
            Err(error) => self.metrics.errors.increment(error),
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.end(Outcome::Cancelled);
        }
    }
}

#[cfg(test)]
mod tests {
    use metrics_util::MetricKind::{Counter as C, Gauge as G, Histogram as H};
    use metrics_util::debugging::DebugValue;
    use strata_core::{
        AttachmentManifest, Layer, QueuedWorkBatchDraft, QueuedWorkClaimBoundary,
        RuntimePersistence, SessionReadScope, SessionStoreFactory, SessionStoreRequest,
        StoreBuilder,
    };
    use strata_memory::MemoryStoreFactory;

    use super::*;
    use crate::test_support::fixtures::{commit, node, stack, start_then_drop};
    use crate::test_support::recorder::{Series, exclusive, snapshot};
    use crate::test_support::run_conformance;

    fn series(kind: metrics_util::MetricKind, name: &str, labels: &[&str]) -> Series {
        (kind, name.to_owned(), labels.iter().map(|label| label.to_string()).collect())
    }

    fn counter(value: u64) -> DebugValue {
        DebugValue::Counter(value)
    }

    fn gauge(value: f64) -> DebugValue {
        DebugValue::Gauge(value.into())
    }

    /// The value of one series in a snapshot.
    fn value<'a>(snapshot: &'a [(Series, DebugValue)], wanted: &Series) -> Option<&'a DebugValue> {
        snapshot.iter().find(|(series, _)| series == wanted).map(|(_, value)| value)
    }

    /// How many durations a histogram series holds.
    fn samples(snapshot: &[(Series, DebugValue)], operation: &str, outcome: &str) -> usize {
        let labels = [&format!("operation={operation}")[..], &format!("outcome={outcome}")];
        match value(snapshot, &series(H, names::OPERATION_DURATION, &labels)) {
            Some(DebugValue::Histogram(values)) => values.len(),
            other => panic!("no duration histogram for {operation}/{outcome}: {other:?}"),
        }
    }

    fn draft(session: &str) -> QueuedWorkBatchDraft {
        strata_testkit::fixtures::draft(session).exclusive().build()
    }

    #[tokio::test]
    async fn a_scripted_sequence_records_exact_values() {
        let _exclusive = exclusive().await;
        let (store, faults) = stack(MetricsLayer::default().with_store_name("scripted"));

        store.load_node("missing").await.unwrap();
        store.load_node("missing").await.unwrap();
        let nodes = vec![node("a", None, b"12345"), node("b", Some("a"), b"678")];
        store.commit_runtime_state(commit("s1", Some(0), nodes, Some("t1"))).await.unwrap();
        let conflict = store.commit_runtime_state(commit("s1", Some(5), vec![], None)).await;
        assert!(matches!(conflict, Err(StoreError::HeadRevisionConflict { .. })));
        faults.fail_next(Operation::LoadNode, 1, StoreError::Unavailable("disk".into()));
        store.load_node("a").await.unwrap_err();
        let idle = QueuedWorkClaimBoundary::Idle;
        assert!(store.claim_ready_queued_work("s1", "o", idle, 1_000, 4).await.unwrap().is_none());
        store.enqueue_queued_work(draft("s1")).await.unwrap();
        store.enqueue_queued_work(draft("s1")).await.unwrap();
        let claim = store.claim_ready_queued_work("s1", "o", idle, 1_000, 4).await.unwrap();
        assert_eq!(claim.map(|claim| claim.batches.len()), Some(1), "exclusive batches");
        store.tombstone_nodes(&["b".to_owned()]).await.unwrap();
        let vacuumed = store.vacuum().await.unwrap();
        let collected = store.gc_unreachable().await.unwrap();
        faults.hang_next(Operation::LoadSession, 1);
        start_then_drop(store.load_session(SessionReadScope::FullGraph)).await;

        let snapshot = snapshot("scripted");
        let op_outcome = |kind, name, operation: &str, outcome: &str| {
            series(kind, name, &[&format!("operation={operation}"), &format!("outcome={outcome}")])
        };
        let calls = |operation, outcome| op_outcome(C, names::OPERATIONS, operation, outcome);
        let expected_calls = [
            ("load_node", "ok", 2),
            ("load_node", "error", 1),
            ("commit_runtime_state", "ok", 1),
            ("commit_runtime_state", "rejected", 1),
            ("claim_ready_queued_work", "ok", 2),
            ("enqueue_queued_work", "ok", 2),
            ("tombstone_nodes", "ok", 1),
            ("vacuum", "ok", 1),
            ("gc_unreachable", "ok", 1),
            ("load_session", "cancelled", 1),
        ];
        for (operation, outcome, count) in expected_calls {
            assert_eq!(
                value(&snapshot, &calls(operation, outcome)),
                Some(&counter(count)),
                "{operation}/{outcome}"
            );
            assert_eq!(samples(&snapshot, operation, outcome), count as usize);
            let in_flight = series(G, names::IN_FLIGHT, &[&format!("operation={operation}")]);
            assert_eq!(value(&snapshot, &in_flight), Some(&gauge(0.0)), "{operation}");
        }
        // Only (operation, outcome) pairs that happened have series.
        assert_eq!(value(&snapshot, &calls("load_node", "cancelled")), None);
        let calls_series = snapshot.iter().filter(|(series, _)| series.1 == names::OPERATIONS);
        assert_eq!(calls_series.count(), expected_calls.len());

        let errors = |operation: &str, kind: &str| {
            series(
                C,
                names::ERRORS,
                &[&format!("error_kind={kind}"), &format!("operation={operation}")],
            )
        };
        assert_eq!(
            value(&snapshot, &errors("commit_runtime_state", "head_revision_conflict")),
            Some(&counter(1))
        );
        assert_eq!(value(&snapshot, &errors("load_node", "unavailable")), Some(&counter(1)));
        let error_series = snapshot.iter().filter(|(series, _)| series.1 == names::ERRORS);
        assert_eq!(error_series.count(), 2);

        let total = |name: &str| value(&snapshot, &series(C, name, &[]));
        assert_eq!(total(names::COMMIT_NODES), Some(&counter(2)));
        assert_eq!(total(names::COMMIT_USAGE_ROWS), Some(&counter(1)));
        assert_eq!(total(names::COMMIT_PAYLOAD_BYTES), Some(&counter((6 + 5 + 3) as u64)));
        assert_eq!(total(names::COMMIT_COMPLETED_BATCHES), Some(&counter(0)));
        assert_eq!(total(names::COMMIT_ATTACHMENT_IDS), Some(&counter(0)));
        assert_eq!(total(names::VACUUM_REMOVED_NODES), Some(&counter(vacuumed.removed_node_count)));
        assert_eq!(vacuumed.removed_node_count, 1);
        assert_eq!(total(names::GC_DELETED_BLOBS), Some(&counter(collected.deleted_blob_count)));
        assert_eq!(
            value(&snapshot, &series(G, names::GC_RETAINED_BLOBS, &[])),
            Some(&gauge(collected.retained_blob_count as f64))
        );
        let claim_op = ["operation=claim_ready_queued_work"];
        assert_eq!(value(&snapshot, &series(C, names::EMPTY_CLAIMS, &claim_op)), Some(&counter(1)));
        assert_eq!(
            value(&snapshot, &series(H, names::CLAIM_BATCHES, &claim_op)),
            Some(&DebugValue::Histogram(vec![1.0.into()]))
        );
    }

    #[tokio::test]
    async fn in_flight_counts_calls_until_they_end_or_are_dropped() {
        let _exclusive = exclusive().await;
        let (store, faults) = stack(MetricsLayer::default().with_store_name("in-flight"));
        faults.hang_next(Operation::ListQueuedWork, 2);
        let in_flight = series(G, names::IN_FLIGHT, &["operation=list_queued_work"]);

        let mut first = std::pin::pin!(store.list_queued_work("s1"));
        let mut second = std::pin::pin!(store.list_queued_work("s1"));
        std::future::poll_fn(|cx| {
            assert!(first.as_mut().poll(cx).is_pending());
            assert!(second.as_mut().poll(cx).is_pending());
            std::task::Poll::Ready(())
        })
        .await;
        assert_eq!(value(&snapshot("in-flight"), &in_flight), Some(&gauge(2.0)));
    }

    #[tokio::test]
    async fn a_factory_layered_once_shares_one_table_across_handles() {
        let _exclusive = exclusive().await;
        let layer = MetricsLayer::default().with_store_name("factory");
        let factory =
            StoreBuilder::new().layer(layer.clone()).build_factory(MemoryStoreFactory::default());
        for session in ["s1", "s2", "s3"] {
            let store = factory.create_store(SessionStoreRequest::new(session)).await.unwrap();
            store.load_session_meta().await.unwrap();
            store.list_uncommitted(0).await.unwrap();
        }
        assert!(layer.shared.table.get().is_some(), "the factory's handles used this table");

        let snapshot = snapshot("factory");
        let calls = series(C, names::OPERATIONS, &["operation=load_session_meta", "outcome=ok"]);
        assert_eq!(value(&snapshot, &calls), Some(&counter(3)));
        let duplicates = snapshot.windows(2).filter(|pair| pair[0].0 == pair[1].0).count();
        assert_eq!(duplicates, 0);
    }

    #[test]
    fn every_metric_is_in_the_crate_docs_table_and_nothing_else_is() {
        let docs = include_str!("lib.rs");
        let documented: Vec<&str> = docs
            .lines()
            .filter_map(|line| line.strip_prefix("//! | `"))
            .filter_map(|row| row.split('`').next())
            .filter(|name| name.starts_with("strata_") && !name.starts_with("strata_store_cache_"))
            .collect();
        let recorded: Vec<&str> = METRICS.iter().map(|(name, ..)| *name).collect();
        assert_eq!(documented, recorded);
    }

    #[test]
    fn clones_share_a_table_and_a_new_store_name_starts_another() {
        let layer = MetricsLayer::default();
        assert!(Arc::ptr_eq(&layer.shared, &layer.clone().shared));
        assert!(!Arc::ptr_eq(&layer.shared, &layer.clone().with_store_name("x").shared));
        assert_eq!(format!("{layer:?}"), "metrics");
    }

    #[tokio::test]
    async fn the_wrapped_store_keeps_the_inner_tier() {
        let store = MetricsLayer::default().layer(strata_memory::MemoryStore::new());
        assert_eq!(
            strata_core::RuntimePersistence::durability_tier(&store),
            strata_core::DurabilityTier::Inline
        );
    }

    #[tokio::test]
    async fn conformance_over_memory_and_file_stores() {
        run_conformance(MetricsLayer::default().with_store_name("conformance")).await;
    }
}
