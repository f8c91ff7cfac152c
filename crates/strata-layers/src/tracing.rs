//! The tracing layer: one span per store call, named after the operation, carrying the
//! OpenTelemetry database-client attributes and the call's counts and sizes, plus one event
//! when the call ends at a level chosen by its outcome.
//!
//! # What it records
//!
//! The span is created when the call starts, as a child of the caller's current span (so a
//! runtime's turn span contains its store calls). The inner call is polled inside it: entered
//! for each poll and exited before returning, exactly what [`tracing::Instrument`] does, done
//! by the layer's own call future so that the inner future is wrapped once, not twice.
//! No guard is ever held across an `.await`. Its fields:
//!
//! | field | when |
//! |---|---|
//! | `db.system.name` | always ([`TracingLayer::with_system_name`], default `"strata"`) |
//! | `db.operation.name` | always: the trait method, e.g. `commit_runtime_state` |
//! | `db.namespace` | when a store name is set ([`TracingLayer::with_namespace`]) |
//! | `error.type` | on failure: [`StoreError::kind`], e.g. `head_revision_conflict` |
//! | `strata.outcome` | at the end: `ok`, `rejected`, `error` or `cancelled` |
//! | `strata.session_id`, `strata.turn_id` | when the call names them |
//! | `strata.expected_head_revision`, `strata.head_revision` | commit (expected, resulting), `load_session` |
//! | `strata.nodes`, `strata.payload_bytes` | commit, tombstone, `load_session`, `load_node`, enqueue |
//! | `strata.usage_rows`, `strata.completed_batches`, `strata.attachment_ids` | commit (`attachment_ids` also for `commit_refs`, `list_uncommitted`) |
//! | `strata.batches`, `strata.items`, `strata.fencing_token` | claims, renew, abandon, cancel, lists, enqueue |
//! | `strata.removed_nodes`, `strata.roots`, `strata.retained_blobs`, `strata.deleted_blobs` | `vacuum`, `gc_unreachable` |
//!
//! Payload contents are never recorded, only their byte lengths.
//!
//! # Levels (defaults)
//!
//! | what | default | setter |
//! |---|---|---|
//! | the span | `DEBUG` | [`with_span_level`](TracingLayer::with_span_level) |
//! | success event | `DEBUG` | [`with_success_level`](TracingLayer::with_success_level) |
//! | semantic outcome (CAS conflict, stamp conflict, claim expired, binding mismatch) | `INFO` | [`with_outcome_level`](TracingLayer::with_outcome_level) |
//! | transient fault (unavailable, timeout, overloaded) | `WARN` | [`with_transient_level`](TracingLayer::with_transient_level) |
//! | any other fault (invalid input, corrupt data, permanent errors) | `ERROR` | [`with_fault_level`](TracingLayer::with_fault_level) |
//! | cancellation | `DEBUG` | [`with_cancelled_level`](TracingLayer::with_cancelled_level) |
//!
//! Events are emitted inside the span when it is enabled, and in the caller's span otherwise
//! (a warn-level subscriber still sees faults, with `db.operation.name` and `error.type`).
//!
//! # Where it goes
//!
//! Outermost: `tracing → metrics → cache → retry → timeout → …`, so that one span covers one
//! logical call including its retries (put it inside retry instead to get a span per attempt).
//!
//! # Cancellation
//!
//! If the caller drops the call's future, the span is closed with `strata.outcome =
//! "cancelled"` and a cancellation event is emitted; the layer holds no other state.
//!
//! # Cost
//!
//! When the span is disabled (no subscriber, or one filtering it out) the layer computes no
//! field and does not instrument the inner future: the cost is the callsite's cached interest
//! check (see the crate docs for measured figures).

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use strata_core::{Around, ErrorClass, Operation, Request, Response, Serve, StoreError};
use tracing::field::Empty;
use tracing::{Level, Span};

use crate::call_info::{Figures, Observed, Observer, Outcome};

/// The tracing decorator and its configuration (an [`Around`], hence a
/// [`Layer`](strata_core::Layer)). Cloning is cheap; clones share the configuration.
///
/// ```
/// use strata_layers::TracingLayer;
/// use tracing::Level;
///
/// let layer = TracingLayer::default()
///     .with_namespace("sessions")
///     .with_span_level(Level::INFO)
///     .with_outcome_level(Level::DEBUG);
/// assert_eq!(format!("{layer:?}"), "tracing");
/// ```
#[derive(Clone, Default)]
pub struct TracingLayer {
    config: Arc<Config>,
}

#[derive(Clone, Debug)]
struct Config {
    system_name: Cow<'static, str>,
    namespace: Option<Cow<'static, str>>,
    span_level: Level,
    success_level: Level,
    outcome_level: Level,
    transient_level: Level,
    fault_level: Level,
    cancelled_level: Level,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            system_name: Cow::Borrowed("strata"),
            namespace: None,
            span_level: Level::DEBUG,
            success_level: Level::DEBUG,
            outcome_level: Level::INFO,
            transient_level: Level::WARN,
            fault_level: Level::ERROR,
            cancelled_level: Level::DEBUG,
        }
    }
}

impl TracingLayer {
    /// The default configuration (see the module docs).
    pub fn new() -> Self {
        Self::default()
    }

    fn configure(mut self, change: impl FnOnce(&mut Config)) -> Self {
        change(Arc::make_mut(&mut self.config));
        self
    }

    /// `db.system.name` (default `"strata"`).
    pub fn with_system_name(self, name: impl Into<Cow<'static, str>>) -> Self {
        self.configure(|config| config.system_name = name.into())
    }

    /// `db.namespace`: a name for the store (default: unset, field omitted).
    pub fn with_namespace(self, namespace: impl Into<Cow<'static, str>>) -> Self {
        self.configure(|config| config.namespace = Some(namespace.into()))
    }

    /// Level of the per-call span (default `DEBUG`).
    pub fn with_span_level(self, level: Level) -> Self {
        self.configure(|config| config.span_level = level)
    }

    /// Level of the event ending a successful call (default `DEBUG`).
    pub fn with_success_level(self, level: Level) -> Self {
        self.configure(|config| config.success_level = level)
    }

    /// Level of the event ending a call with a semantic outcome (default `INFO`).
    pub fn with_outcome_level(self, level: Level) -> Self {
        self.configure(|config| config.outcome_level = level)
    }

    /// Level of the event ending a call with a transient fault (default `WARN`).
    pub fn with_transient_level(self, level: Level) -> Self {
        self.configure(|config| config.transient_level = level)
    }

    /// Level of the event ending a call with any other fault (default `ERROR`).
    pub fn with_fault_level(self, level: Level) -> Self {
        self.configure(|config| config.fault_level = level)
    }

    /// Level of the event emitted when the caller drops a call (default `DEBUG`).
    pub fn with_cancelled_level(self, level: Level) -> Self {
        self.configure(|config| config.cancelled_level = level)
    }
}

impl fmt::Debug for TracingLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tracing")
    }
}

impl Config {
    /// The level of the event that ends a call with `outcome` (`error` when it failed).
    fn event_level(&self, outcome: Outcome, error: Option<&StoreError>) -> Level {
        match (outcome, error.map(StoreError::class)) {
            (Outcome::Ok, _) => self.success_level,
            (Outcome::Rejected, _) => self.outcome_level,
            (Outcome::Cancelled, _) => self.cancelled_level,
            (Outcome::Error, Some(ErrorClass::Transient)) => self.transient_level,
            (Outcome::Error, _) => self.fault_level,
        }
    }
}

impl Around for TracingLayer {
    fn around<'a, S>(
        &'a self,
        inner: &'a S,
        request: Request<'a>,
    ) -> impl Future<Output = Result<Response, StoreError>> + Send + 'a
    where
        S: Serve + ?Sized + 'a,
    {
        let config = &*self.config;
        let span = new_span(config, &request);
        // Figures only for an enabled span; boxed so the common (disabled) future stays small.
        let figures = (!span.is_disabled()).then(|| Box::new(Figures::of_request(&request)));
        let end =
            CallEnd { config, operation: request.operation(), span, figures, finished: false };
        Observed::new(inner.serve(request), end)
    }
}

/// Ends the call's span and emits its event: on completion via [`CallEnd::finish`], on
/// cancellation from `Drop`.
struct CallEnd<'a> {
    config: &'a Config,
    operation: Operation,
    span: Span,
    /// The request's figures, when the span is enabled.
    figures: Option<Box<Figures>>,
    finished: bool,
}

impl Observer for CallEnd<'_> {
    /// Polls the inner call inside the span (`Instrument`'s behaviour, without a second
    /// wrapper future).
    fn in_scope<R>(&self, poll: impl FnOnce() -> R) -> R {
        in_span(&self.span, poll)
    }

    fn finish(&mut self, result: &Result<Response, StoreError>) {
        self.finished = true;
        let outcome = Outcome::of(result);
        let error = result.as_ref().err();
        if let Some(figures) = &mut self.figures {
            if let Ok(response) = result {
                figures.add_response(response);
            }
            record_figures(&self.span, figures);
            self.span.record("strata.outcome", outcome.label());
            if let Some(error) = error {
                self.span.record("error.type", error.kind());
            }
        }
        self.event(outcome, error);
    }
}

impl CallEnd<'_> {
    fn event(&self, outcome: Outcome, error: Option<&StoreError>) {
        let level = self.config.event_level(outcome, error);
        let operation = self.operation.name();
        let error_type = error.map(StoreError::kind);
        in_span(&self.span, || {
            event_at!(
                level,
                db.operation.name = operation,
                strata.outcome = outcome.label(),
                error.type = error_type,
                error = error.map(tracing::field::display),
                "store call ended"
            )
        });
    }
}

impl Drop for CallEnd<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.span.record("strata.outcome", Outcome::Cancelled.label());
            self.event(Outcome::Cancelled, None);
        }
    }
}

/// Runs `f` inside `span` when it is enabled (entering a disabled span is a no-op that still
/// costs a few branches per poll, on the hot path when tracing is off).
fn in_span<R>(span: &Span, f: impl FnOnce() -> R) -> R {
    if span.is_disabled() { f() } else { span.in_scope(f) }
}

/// `tracing::event!` at a level known only at run time (one callsite per level).
macro_rules! event_at {
    ($level:expr, $($fields:tt)*) => {
        match $level {
            Level::ERROR => tracing::event!(Level::ERROR, $($fields)*),
            Level::WARN => tracing::event!(Level::WARN, $($fields)*),
            Level::INFO => tracing::event!(Level::INFO, $($fields)*),
            Level::DEBUG => tracing::event!(Level::DEBUG, $($fields)*),
            Level::TRACE => tracing::event!(Level::TRACE, $($fields)*),
        }
    };
}
use event_at;

fn record_figures(span: &Span, figures: &Figures) {
    let Figures {
        expected_head_revision,
        head_revision,
        nodes,
        payload_bytes,
        usage_rows,
        completed_batches,
        attachment_ids,
        batches,
        items,
        fencing_token,
        removed_nodes,
        roots,
        retained_blobs,
        deleted_blobs,
    } = *figures;
    span.record("strata.expected_head_revision", expected_head_revision);
    span.record("strata.head_revision", head_revision);
    span.record("strata.nodes", nodes);
    span.record("strata.payload_bytes", payload_bytes);
    span.record("strata.usage_rows", usage_rows);
    span.record("strata.completed_batches", completed_batches);
    span.record("strata.attachment_ids", attachment_ids);
    span.record("strata.batches", batches);
    span.record("strata.items", items);
    span.record("strata.fencing_token", fencing_token);
    span.record("strata.removed_nodes", removed_nodes);
    span.record("strata.roots", roots);
    span.record("strata.retained_blobs", retained_blobs);
    span.record("strata.deleted_blobs", deleted_blobs);
}

/// The call's span: named after the operation, at the configured level, child of the
/// caller's current span. Field values are evaluated only when the span is enabled.
fn new_span(config: &Config, request: &Request<'_>) -> Span {
    // One callsite per (operation, level): a span's name and level are static metadata.
    macro_rules! span_at {
        ($name:literal) => {
            match config.span_level {
                Level::ERROR => span_at!(Level::ERROR, $name),
                Level::WARN => span_at!(Level::WARN, $name),
                Level::INFO => span_at!(Level::INFO, $name),
                Level::DEBUG => span_at!(Level::DEBUG, $name),
                Level::TRACE => span_at!(Level::TRACE, $name),
            }
        };
        ($level:expr, $name:literal) => {
            tracing::span!(
                $level,
                $name,
                db.system.name = &*config.system_name,
                db.operation.name = $name,
                db.namespace = config.namespace.as_deref(),
                error.type = Empty,
                strata.outcome = Empty,
                strata.session_id = request.session_id(),
                strata.turn_id = turn_id(request),
                strata.expected_head_revision = Empty,
                strata.head_revision = Empty,
                strata.nodes = Empty,
                strata.payload_bytes = Empty,
                strata.usage_rows = Empty,
                strata.completed_batches = Empty,
                strata.attachment_ids = Empty,
                strata.batches = Empty,
                strata.items = Empty,
                strata.fencing_token = Empty,
                strata.removed_nodes = Empty,
                strata.roots = Empty,
                strata.retained_blobs = Empty,
                strata.deleted_blobs = Empty,
            )
        };
    }
    match request.operation() {
        Operation::LoadSession => span_at!("load_session"),
        Operation::LoadNode => span_at!("load_node"),
        Operation::CommitRuntimeState => span_at!("commit_runtime_state"),
        Operation::SaveSessionMeta => span_at!("save_session_meta"),
        Operation::LoadSessionMeta => span_at!("load_session_meta"),
        Operation::TombstoneNodes => span_at!("tombstone_nodes"),
        Operation::Vacuum => span_at!("vacuum"),
        Operation::GcUnreachable => span_at!("gc_unreachable"),
        Operation::EnqueueQueuedWork => span_at!("enqueue_queued_work"),
        Operation::ClaimReadyQueuedWork => span_at!("claim_ready_queued_work"),
        Operation::ClaimReadyQueuedWorkByBatchIds => {
            span_at!("claim_ready_queued_work_by_batch_ids")
        }
        Operation::RenewQueuedWorkClaim => span_at!("renew_queued_work_claim"),
        Operation::AbandonQueuedWorkClaim => span_at!("abandon_queued_work_claim"),
        Operation::CancelQueuedWorkBatch => span_at!("cancel_queued_work_batch"),
        Operation::ListQueuedWork => span_at!("list_queued_work"),
        Operation::ListPendingQueuedWork => span_at!("list_pending_queued_work"),
        Operation::RecordIntent => span_at!("record_intent"),
        Operation::CommitRefs => span_at!("commit_refs"),
        Operation::ListUncommitted => span_at!("list_uncommitted"),
        Operation::Forget => span_at!("forget"),
    }
}

/// The turn id of a stamped commit.
fn turn_id<'r>(request: &'r Request<'_>) -> Option<&'r str> {
    match request {
        Request::CommitRuntimeState { commit } => {
            commit.turn_commit.as_ref().map(|stamp| stamp.turn_id.as_str())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use strata_core::{AttachmentManifest, DurabilityTier, RuntimePersistence};
    use strata_core::{DeliveryPolicy, MergeKey, QueuedWorkClaimBoundary, SlotPolicy};
    use strata_core::{Layer, QueuedWorkBatchDraft, SessionMeta, SessionReadScope};
    use strata_memory::MemoryStore;

    use super::*;
    use crate::test_support::fixtures::{commit, node, stack, start_then_drop};
    use tracing::Instrument;

    use crate::test_support::{Capture, run_conformance};

    fn draft(session: &str) -> QueuedWorkBatchDraft {
        QueuedWorkBatchDraft {
            session_id: session.into(),
            source_key: None,
            delivery_policy: DeliveryPolicy::EarliestSafeBoundary,
            slot_policy: SlotPolicy::Exclusive,
            merge_key: MergeKey::Never,
            available_at_ms: 0,
            payloads: vec![Bytes::from_static(b"work"), Bytes::from_static(b"more")],
        }
    }

    use strata_core::Bytes;

    #[tokio::test]
    async fn each_method_class_gets_a_span_named_after_its_operation_with_its_figures() {
        let capture = Capture::default();
        let _subscriber = tracing::subscriber::set_default(capture.subscriber(Level::TRACE));
        let (store, _faults) = stack(TracingLayer::default().with_namespace("tests"));

        // A read, an idempotent write, a keyed write (stamped commit), unkeyed writes (claim).
        assert_eq!(store.load_node("missing").await.unwrap(), None);
        store
            .save_session_meta(SessionMeta { session_id: "s1".into(), ..Default::default() })
            .await
            .unwrap();
        let nodes = vec![node("a", None, b"12345"), node("b", Some("a"), b"678")];
        let payload_bytes = (b"config".len() + 5 + 3).to_string();
        store.commit_runtime_state(commit("s1", Some(0), nodes, Some("turn-1"))).await.unwrap();
        store.enqueue_queued_work(draft("s1")).await.unwrap();
        let claim = store
            .claim_ready_queued_work("s1", "owner", QueuedWorkClaimBoundary::Idle, 1_000, 4)
            .await
            .unwrap()
            .expect("the batch is ready");

        let spans = capture.spans();
        let names: Vec<_> = spans.iter().map(|span| span.name).collect();
        assert_eq!(
            names,
            [
                "load_node",
                "save_session_meta",
                "commit_runtime_state",
                "enqueue_queued_work",
                "claim_ready_queued_work"
            ]
        );
        for span in &spans {
            assert_eq!(span.level, Level::DEBUG, "{span:?}");
            assert!(span.closed, "{span:?}");
            assert_eq!(span.field("db.system.name"), Some("strata"));
            assert_eq!(span.field("db.operation.name"), Some(span.name));
            assert_eq!(span.field("db.namespace"), Some("tests"));
            assert_eq!(span.field("strata.outcome"), Some("ok"));
            assert_eq!(span.field("error.type"), None);
        }
        assert_eq!(spans[0].field("strata.nodes"), Some("0"));
        assert_eq!(spans[0].field("strata.session_id"), None);
        assert_eq!(spans[1].field("strata.session_id"), Some("s1"));
        let commit_span = &spans[2];
        assert_eq!(commit_span.field("strata.turn_id"), Some("turn-1"));
        assert_eq!(commit_span.field("strata.expected_head_revision"), Some("0"));
        assert_eq!(commit_span.field("strata.head_revision"), Some("1"));
        assert_eq!(commit_span.field("strata.nodes"), Some("2"));
        assert_eq!(commit_span.field("strata.usage_rows"), Some("1"));
        assert_eq!(commit_span.field("strata.payload_bytes"), Some(payload_bytes.as_str()));
        assert_eq!(spans[3].field("strata.items"), Some("2"));
        assert_eq!(spans[3].field("strata.payload_bytes"), Some("8"));
        assert_eq!(spans[4].field("strata.batches"), Some("1"));
        assert_eq!(
            spans[4].field("strata.fencing_token"),
            Some(claim.fencing_token.to_string().as_str())
        );
        // Never payload contents.
        assert!(spans.iter().flat_map(|span| span.fields.values()).all(|value| value != "12345"));

        let events = capture.events();
        assert_eq!(events.len(), spans.len());
        for (event, span) in events.iter().zip(&spans) {
            assert_eq!(event.level, Level::DEBUG);
            assert_eq!(event.parent, Some(span.name));
            assert_eq!(event.field("strata.outcome"), Some("ok"));
        }
    }

    #[tokio::test]
    async fn outcomes_and_faults_are_logged_at_their_levels_with_error_type() {
        let capture = Capture::default();
        let _subscriber = tracing::subscriber::set_default(capture.subscriber(Level::TRACE));
        let (store, faults) = stack(TracingLayer::default());

        let conflict = store.commit_runtime_state(commit("s1", Some(7), vec![], None)).await;
        assert!(matches!(conflict, Err(StoreError::HeadRevisionConflict { .. })));
        faults.fail_next(Operation::LoadNode, 1, StoreError::Unavailable("disk".into()));
        assert_eq!(store.load_node("n").await, Err(StoreError::Unavailable("disk".into())));
        faults.fail_next(Operation::Vacuum, 1, StoreError::Backend("broken".into()));
        assert!(store.vacuum().await.is_err());

        let spans = capture.spans();
        let failures: Vec<_> = spans
            .iter()
            .map(|span| (span.name, span.field("strata.outcome"), span.field("error.type")))
            .collect();
        assert_eq!(
            failures,
            [
                ("commit_runtime_state", Some("rejected"), Some("head_revision_conflict")),
                ("load_node", Some("error"), Some("unavailable")),
                ("vacuum", Some("error"), Some("backend")),
            ]
        );
        let levels: Vec<_> = capture.events().iter().map(|event| event.level).collect();
        assert_eq!(levels, [Level::INFO, Level::WARN, Level::ERROR]);
        let event = &capture.events()[1];
        assert_eq!(event.field("error.type"), Some("unavailable"));
        assert_eq!(event.field("error"), Some("store unavailable: disk"));
    }

    #[tokio::test]
    async fn levels_are_configurable() {
        let capture = Capture::default();
        let _subscriber = tracing::subscriber::set_default(capture.subscriber(Level::TRACE));
        let layer = TracingLayer::default()
            .with_span_level(Level::INFO)
            .with_success_level(Level::TRACE)
            .with_outcome_level(Level::DEBUG)
            .with_transient_level(Level::ERROR)
            .with_system_name("custom");
        let (store, faults) = stack(layer);

        store.load_session_meta().await.unwrap();
        store.commit_runtime_state(commit("s1", Some(3), vec![], None)).await.unwrap_err();
        faults.fail_next(Operation::ListQueuedWork, 1, StoreError::Overloaded("full".into()));
        store.list_queued_work("s1").await.unwrap_err();

        let spans = capture.spans();
        assert!(spans.iter().all(|span| span.level == Level::INFO));
        assert!(spans.iter().all(|span| span.field("db.system.name") == Some("custom")));
        let levels: Vec<_> = capture.events().iter().map(|event| event.level).collect();
        assert_eq!(levels, [Level::TRACE, Level::DEBUG, Level::ERROR]);
    }

    #[tokio::test]
    async fn a_cancelled_call_closes_its_span_as_cancelled() {
        let capture = Capture::default();
        let _subscriber = tracing::subscriber::set_default(capture.subscriber(Level::TRACE));
        let (store, faults) = stack(TracingLayer::default());

        faults.hang_next(Operation::LoadSession, 1);
        start_then_drop(store.load_session(SessionReadScope::FullGraph)).await;

        let spans = capture.spans();
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].name, "load_session");
        assert_eq!(spans[0].field("strata.outcome"), Some("cancelled"));
        assert!(spans[0].closed);
        let events = capture.events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].level, Level::DEBUG);
        assert_eq!(events[0].parent, Some("load_session"));
        assert_eq!(events[0].field("strata.outcome"), Some("cancelled"));
    }

    #[tokio::test]
    async fn store_spans_are_children_of_the_callers_span() {
        let capture = Capture::default();
        let _subscriber = tracing::subscriber::set_default(capture.subscriber(Level::TRACE));
        let (store, _faults) = stack(TracingLayer::default());

        let turn = tracing::info_span!("turn");
        async {
            store.load_session_meta().await.unwrap();
            store.list_pending_queued_work("s1").await.unwrap();
        }
        .instrument(turn)
        .await;

        let parents: Vec<_> = capture.spans().iter().map(|span| (span.name, span.parent)).collect();
        assert_eq!(
            parents,
            [
                ("turn", None),
                ("load_session_meta", Some("turn")),
                ("list_pending_queued_work", Some("turn"))
            ]
        );
    }

    #[tokio::test]
    async fn with_spans_filtered_out_faults_are_still_reported() {
        let capture = Capture::default();
        let _subscriber = tracing::subscriber::set_default(capture.subscriber(Level::WARN));
        let (store, faults) = stack(TracingLayer::default());

        store.load_node("n").await.unwrap();
        store.commit_runtime_state(commit("s1", Some(9), vec![], None)).await.unwrap_err();
        faults.fail_next(
            Operation::Forget,
            1,
            StoreError::Timeout {
                operation: "forget",
                elapsed: std::time::Duration::from_millis(5),
            },
        );
        store.forget("attachment").await.unwrap_err();

        assert!(capture.spans().is_empty());
        let events = capture.events();
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].level, Level::WARN);
        assert_eq!(events[0].parent, None);
        assert_eq!(events[0].field("db.operation.name"), Some("forget"));
        assert_eq!(events[0].field("error.type"), Some("timeout"));
    }

    #[test]
    fn every_operation_has_its_own_span_name() {
        let capture = Capture::default();
        let config = Config::default();
        tracing::subscriber::with_default(capture.subscriber(Level::TRACE), || {
            for &operation in Operation::ALL {
                let span = new_span(&config, &request_for(operation));
                assert_eq!(span.metadata().map(|meta| meta.name()), Some(operation.name()));
            }
        });
    }

    /// Some request of `operation` (arguments do not matter for naming).
    fn request_for(operation: Operation) -> Request<'static> {
        const IDS: &[String] = &[];
        const CLAIM: &strata_core::QueuedWorkClaim = &strata_core::QueuedWorkClaim {
            session_id: String::new(),
            claim_id: String::new(),
            owner_id: String::new(),
            lease_token: String::new(),
            fencing_token: 0,
            claimed_at_epoch_ms: 0,
            expires_at_epoch_ms: 0,
            batches: Vec::new(),
        };
        let boundary = QueuedWorkClaimBoundary::Idle;
        match operation {
            Operation::LoadSession => Request::LoadSession { scope: SessionReadScope::FullGraph },
            Operation::LoadNode => Request::LoadNode { node_id: "n" },
            Operation::CommitRuntimeState => {
                Request::CommitRuntimeState { commit: Arc::new(commit("s", None, vec![], None)) }
            }
            Operation::SaveSessionMeta => {
                Request::SaveSessionMeta { meta: Arc::new(SessionMeta::default()) }
            }
            Operation::LoadSessionMeta => Request::LoadSessionMeta,
            Operation::TombstoneNodes => Request::TombstoneNodes { ids: IDS },
            Operation::Vacuum => Request::Vacuum,
            Operation::GcUnreachable => Request::GcUnreachable,
            Operation::EnqueueQueuedWork => {
                Request::EnqueueQueuedWork { draft: Arc::new(draft("s")) }
            }
            Operation::ClaimReadyQueuedWork => Request::ClaimReadyQueuedWork {
                session_id: "s",
                owner_id: "o",
                boundary,
                lease_ttl_ms: 1,
                max_batches: 1,
            },
            Operation::ClaimReadyQueuedWorkByBatchIds => Request::ClaimReadyQueuedWorkByBatchIds {
                session_id: "s",
                owner_id: "o",
                boundary,
                lease_ttl_ms: 1,
                batch_ids: IDS,
            },
            Operation::RenewQueuedWorkClaim => {
                Request::RenewQueuedWorkClaim { claim: CLAIM, lease_ttl_ms: 1 }
            }
            Operation::AbandonQueuedWorkClaim => Request::AbandonQueuedWorkClaim { claim: CLAIM },
            Operation::CancelQueuedWorkBatch => {
                Request::CancelQueuedWorkBatch { session_id: "s", batch_id: "b" }
            }
            Operation::ListQueuedWork => Request::ListQueuedWork { session_id: "s" },
            Operation::ListPendingQueuedWork => Request::ListPendingQueuedWork { session_id: "s" },
            Operation::RecordIntent => Request::RecordIntent {
                intent: strata_core::AttachmentIntent {
                    attachment_id: "a".into(),
                    session_id: "s".into(),
                    canonical_uri: "u".into(),
                    intent_at_epoch_ms: 0,
                },
            },
            Operation::CommitRefs => Request::CommitRefs { session_id: "s", attachment_ids: IDS },
            Operation::ListUncommitted => Request::ListUncommitted { older_than_ms: 0 },
            Operation::Forget => Request::Forget { attachment_id: "a" },
        }
    }

    #[tokio::test]
    async fn the_wrapped_store_keeps_the_inner_tier() {
        let store = TracingLayer::default().layer(MemoryStore::new());
        assert_eq!(store.durability_tier(), DurabilityTier::Inline);
    }

    #[tokio::test]
    async fn conformance_over_memory_and_file_stores_with_spans_enabled() {
        let capture = Capture::default();
        let _subscriber = tracing::subscriber::set_default(capture.subscriber(Level::TRACE));
        run_conformance(TracingLayer::default()).await;
        let seen: std::collections::BTreeSet<_> =
            capture.spans().iter().map(|span| span.name).collect();
        let all: std::collections::BTreeSet<_> =
            Operation::ALL.iter().map(|operation| operation.name()).collect();
        assert_eq!(seen, all, "the suite calls every method through the layer");
    }
}
