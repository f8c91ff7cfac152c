//! What both observability layers share about one call, written once: its [`Outcome`], its
//! [`Figures`] (counts and sizes taken from the request before dispatch and from the response
//! after; never ids, never payload contents), and [`Observed`], the future that runs the inner
//! call and tells an [`Observer`] how it ended.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use strata_core::{
    AgentFrame, Request, Response, RuntimeCheckpoint, RuntimeCommit, SessionNodeRecord, StoreError,
};

/// What a layer does while its call runs and when it ends. A call dropped before it ends is
/// the observer's own `Drop` (it sees that `finish` was never called).
pub(crate) trait Observer {
    /// Runs one poll of the inner call (tracing enters its span here).
    fn in_scope<R>(&self, poll: impl FnOnce() -> R) -> R {
        poll()
    }

    /// The inner call ended with `result`.
    fn finish(&mut self, result: &Result<Response, StoreError>);
}

pin_project_lite::pin_project! {
    /// The inner call and its observer, in one future: the inner call is pinned in place
    /// (no allocation per call; the inner store's future is small, since a `Request` is). A
    /// hand-written future rather than an `async` block, which would keep a second copy of the
    /// inner future.
    pub(crate) struct Observed<F, O> {
        #[pin]
        call: F,
        observer: O,
    }
}

impl<F, O> Observed<F, O> {
    /// Runs `call`, reporting to `observer`.
    pub(crate) fn new(call: F, observer: O) -> Self {
        Self { call, observer }
    }
}

impl<F, O> Future for Observed<F, O>
where
    F: Future<Output = Result<Response, StoreError>>,
    O: Observer,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut call = this.call;
        let result = ready!(this.observer.in_scope(|| call.as_mut().poll(cx)));
        this.observer.finish(&result);
        Poll::Ready(result)
    }
}

/// How a call ended; a bounded label for metrics and spans.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The call returned `Ok`.
    Ok,
    /// The call returned one of the four semantic outcomes (an answer, not a fault).
    Rejected,
    /// The call returned any other error.
    Error,
    /// The caller dropped the future before the call finished.
    Cancelled,
}

impl Outcome {
    /// The outcome of a finished call.
    pub(crate) fn of<T>(result: &Result<T, StoreError>) -> Self {
        match result {
            Ok(_) => Outcome::Ok,
            Err(error) if error.is_outcome() => Outcome::Rejected,
            Err(_) => Outcome::Error,
        }
    }

    /// The label value (`ok`, `rejected`, `error`, `cancelled`).
    pub(crate) const fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Rejected => "rejected",
            Outcome::Error => "error",
            Outcome::Cancelled => "cancelled",
        }
    }

    /// Position in declaration order, for array-indexed handle tables.
    #[cfg(feature = "metrics")]
    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

/// Counts and sizes of one call. `None` means "not applicable to this operation".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Figures {
    /// The head revision a commit expected (CAS).
    pub expected_head_revision: Option<u64>,
    /// The head revision after a commit, or of a loaded session.
    pub head_revision: Option<u64>,
    /// Nodes written (commit), named (tombstone) or returned (reads).
    pub nodes: Option<u64>,
    /// Opaque payload bytes written (commit, enqueue) or returned (reads).
    pub payload_bytes: Option<u64>,
    /// Usage rows appended by a commit.
    pub usage_rows: Option<u64>,
    /// Queued batches completed by a commit.
    pub completed_batches: Option<u64>,
    /// Attachment ids stamped by a commit or `commit_refs`, or manifest rows listed.
    pub attachment_ids: Option<u64>,
    /// Batches claimed, renewed, abandoned, cancelled or listed.
    pub batches: Option<u64>,
    /// Queued items enqueued or claimed.
    pub items: Option<u64>,
    /// The fencing token of a claim.
    pub fencing_token: Option<u64>,
    /// Nodes removed by `vacuum`.
    pub removed_nodes: Option<u64>,
    /// Roots considered by `gc_unreachable`.
    pub roots: Option<u64>,
    /// Blobs kept by `gc_unreachable`.
    pub retained_blobs: Option<u64>,
    /// Blobs deleted by `gc_unreachable`.
    pub deleted_blobs: Option<u64>,
}

impl Figures {
    /// The figures a request carries (call before dispatching it).
    pub(crate) fn of_request(request: &Request<'_>) -> Self {
        match request {
            Request::CommitRuntimeState { commit } => Self::of_commit(commit),
            Request::TombstoneNodes { ids } => Self { nodes: Some(len(ids)), ..Self::default() },
            Request::EnqueueQueuedWork { draft } => Self {
                items: Some(len(&draft.payloads)),
                payload_bytes: Some(draft.payloads.iter().map(|p| len(p)).sum()),
                ..Self::default()
            },
            Request::RenewQueuedWorkClaim { claim, .. }
            | Request::AbandonQueuedWorkClaim { claim } => Self {
                fencing_token: Some(claim.fencing_token),
                batches: Some(len(&claim.batches)),
                ..Self::default()
            },
            Request::CommitRefs { attachment_ids, .. } => {
                Self { attachment_ids: Some(len(attachment_ids)), ..Self::default() }
            }
            Request::LoadSession { .. }
            | Request::LoadNode { .. }
            | Request::SaveSessionMeta { .. }
            | Request::LoadSessionMeta
            | Request::Vacuum
            | Request::GcUnreachable
            | Request::ClaimReadyQueuedWork { .. }
            | Request::ClaimReadyQueuedWorkByBatchIds { .. }
            | Request::CancelQueuedWorkBatch { .. }
            | Request::ListQueuedWork { .. }
            | Request::ListPendingQueuedWork { .. }
            | Request::RecordIntent { .. }
            | Request::ListUncommitted { .. }
            | Request::Forget { .. } => Self::default(),
        }
    }

    /// The figures of a commit: what it writes.
    fn of_commit(commit: &RuntimeCommit) -> Self {
        let nodes = commit.graph.nodes();
        let payload_bytes = len(&commit.config)
            + frame_bytes(&commit.agent_frames)
            + node_bytes(nodes)
            + commit.checkpoint.as_ref().map_or(0, checkpoint_bytes);
        Self {
            expected_head_revision: commit.expected_head_revision,
            nodes: Some(len(nodes)),
            payload_bytes: Some(payload_bytes),
            usage_rows: Some(len(&commit.usage_deltas)),
            completed_batches: Some(
                commit.completed_queue_claims.iter().map(|c| len(&c.batch_ids)).sum(),
            ),
            attachment_ids: Some(len(&commit.committed_attachment_ids)),
            ..Self::default()
        }
    }

    /// Adds what a successful response reports.
    pub(crate) fn add_response(&mut self, response: &Response) {
        match response {
            Response::Session(Some(read)) => {
                self.head_revision = Some(read.head_revision);
                self.nodes = Some(len(&read.graph.nodes));
                self.payload_bytes = Some(
                    len(&read.config)
                        + frame_bytes(&read.agent_frames)
                        + node_bytes(&read.graph.nodes)
                        + read.checkpoint.as_ref().map_or(0, checkpoint_bytes),
                );
            }
            Response::Node(node) => {
                self.nodes = Some(u64::from(node.is_some()));
                self.payload_bytes = Some(node.as_ref().map_or(0, |node| len(&node.payload)));
            }
            Response::Committed(result) => self.head_revision = Some(result.head_revision),
            Response::Vacuumed(report) => self.removed_nodes = Some(report.removed_node_count),
            Response::Collected(report) => {
                self.roots = Some(report.root_count);
                self.retained_blobs = Some(report.retained_blob_count);
                self.deleted_blobs = Some(report.deleted_blob_count);
            }
            Response::Claim(claim) => {
                self.batches = Some(claim.as_ref().map_or(0, |claim| len(&claim.batches)));
                if let Some(claim) = claim {
                    self.fencing_token = Some(claim.fencing_token);
                    self.items = Some(claim.batches.iter().map(|batch| len(&batch.items)).sum());
                }
            }
            Response::Renewed(claim) => {
                self.fencing_token = Some(claim.fencing_token);
                self.batches = Some(len(&claim.batches));
            }
            Response::Cancelled(batch) => self.batches = Some(u64::from(batch.is_some())),
            Response::Batches(batches) => self.batches = Some(len(batches)),
            Response::Uncommitted(entries) => self.attachment_ids = Some(len(entries)),
            Response::Session(None)
            | Response::Meta(_)
            | Response::Enqueued(_)
            | Response::Done => {}
        }
    }
}

/// A collection's length as a metric/span value.
fn len<T>(items: &[T]) -> u64 {
    items.len() as u64
}

fn node_bytes(nodes: &[SessionNodeRecord]) -> u64 {
    nodes.iter().map(|node| len(&node.payload)).sum()
}

fn frame_bytes(frames: &[AgentFrame]) -> u64 {
    frames.iter().map(|frame| len(&frame.payload)).sum()
}

fn checkpoint_bytes(checkpoint: &RuntimeCheckpoint) -> u64 {
    let blobs = [&checkpoint.tool_state, &checkpoint.plugin_snapshot, &checkpoint.execution_state];
    len(&checkpoint.turn_state)
        + blobs.iter().filter_map(|blob| blob.payload.as_deref()).map(len).sum::<u64>()
}

#[cfg(test)]
mod tests {
    use strata_core::{
        Bytes, CheckpointBlob, GcReport, GraphCommitDelta, QueuedWorkCompletion, TokenLedgerEntry,
    };

    use super::*;

    fn node(id: &str, payload: &'static [u8]) -> SessionNodeRecord {
        SessionNodeRecord {
            node_id: id.into(),
            parent_node_id: None,
            payload: Bytes::from_static(payload),
            timestamp_ms: 0,
            frame_id: None,
            cause: None,
        }
    }

    #[test]
    fn a_commit_reports_what_it_writes_and_never_contents() {
        let commit = RuntimeCommit {
            session_id: "s".into(),
            expected_head_revision: Some(4),
            config: Bytes::from_static(b"cfg"),
            agent_frames: vec![AgentFrame {
                frame_id: "f".into(),
                payload: Bytes::from_static(b"frame"),
                blob_refs: vec![],
            }],
            graph: GraphCommitDelta::Append {
                nodes: vec![node("a", b"12"), node("b", b"3456")],
                leaf_node_id: Some("b".into()),
            },
            checkpoint: Some(RuntimeCheckpoint {
                turn_state: Bytes::from_static(b"t"),
                tool_state: CheckpointBlob::payload(&b"tool"[..]),
                plugin_snapshot: CheckpointBlob::reference("blake3:00"),
                ..RuntimeCheckpoint::default()
            }),
            usage_deltas: vec![TokenLedgerEntry::default(); 3],
            completed_queue_claims: vec![QueuedWorkCompletion {
                session_id: "s".into(),
                claim_id: "c".into(),
                lease_token: "l".into(),
                batch_ids: vec!["b1".into(), "b2".into()],
            }],
            committed_attachment_ids: vec!["x".into()],
            ..RuntimeCommit::default()
        };
        let figures = Figures::of_request(&Request::CommitRuntimeState {
            commit: std::sync::Arc::new(commit),
        });
        assert_eq!(
            figures,
            Figures {
                expected_head_revision: Some(4),
                nodes: Some(2),
                payload_bytes: Some(3 + 5 + 2 + 4 + 1 + 4),
                usage_rows: Some(3),
                completed_batches: Some(2),
                attachment_ids: Some(1),
                ..Figures::default()
            }
        );
    }

    #[test]
    fn responses_add_their_counts() {
        let mut figures = Figures::default();
        figures.add_response(&Response::Node(Some(node("a", b"xyz"))));
        assert_eq!((figures.nodes, figures.payload_bytes), (Some(1), Some(3)));
        figures.add_response(&Response::Claim(None));
        assert_eq!(figures.batches, Some(0));
        figures.add_response(&Response::Collected(GcReport {
            root_count: 1,
            retained_blob_count: 2,
            deleted_blob_count: 3,
        }));
        assert_eq!(
            (figures.roots, figures.retained_blobs, figures.deleted_blobs),
            (Some(1), Some(2), Some(3))
        );
    }

    #[test]
    fn outcomes_separate_answers_from_faults() {
        let conflict: Result<(), _> =
            Err(StoreError::HeadRevisionConflict { expected: Some(1), actual: 2 });
        let fault: Result<(), _> = Err(StoreError::Unavailable("disk".into()));
        assert_eq!(Outcome::of(&Ok::<(), StoreError>(())), Outcome::Ok);
        assert_eq!(Outcome::of(&conflict), Outcome::Rejected);
        assert_eq!(Outcome::of(&fault), Outcome::Error);
    }
}
