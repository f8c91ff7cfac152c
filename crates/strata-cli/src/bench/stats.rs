//! What a benchmark measures: the operations it times ([`Op`]), one HDR latency histogram and
//! outcome counters per operation, and the totals of what the stores acknowledged. Each
//! worker task records into its own [`Recorder`] (no lock on the hot path); recorders are
//! merged per configuration.

use std::time::Duration;

use hdrhistogram::Histogram;

/// A timed operation. Most are one trait method; some are the commit and load calls the
/// workload makes for a different purpose, kept apart so they do not blur the main figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `SessionStoreFactory::create_store`: opening a session for its first turn.
    CreateStore,
    /// `save_session_meta` when a session starts.
    SaveSessionMeta,
    /// `enqueue_queued_work`: one turn input.
    Enqueue,
    /// `claim_ready_queued_work`: the turn's inputs.
    Claim,
    /// `list_pending_queued_work`: only under `--faults`, to learn whether a claim whose
    /// reply the drill took was applied.
    ListPending,
    /// A put through the session's scoped attachment store: the manifest intent, the
    /// reference and the bytes.
    AttachmentPut,
    /// `commit_runtime_state`: the turn's stamped commit.
    Commit,
    /// The same commit sent again (answered from the stamp).
    CommitReplay,
    /// A stale writer's commit (refused: head-revision conflict, expected).
    CommitStale,
    /// `load_session` of the active path on an open session.
    LoadActivePath,
    /// `tombstone_nodes` of the superseded drafts.
    Tombstone,
    /// `vacuum`.
    Vacuum,
    /// `gc_unreachable`.
    Gc,
    /// `SessionStoreFactory::open_existing_store` after every handle was dropped.
    Reopen,
    /// `load_session` of the active path right after the reopen.
    LoadAfterReopen,
}

impl Op {
    /// Every operation, in table order.
    pub const ALL: [Op; 15] = [
        Op::CreateStore,
        Op::SaveSessionMeta,
        Op::Enqueue,
        Op::Claim,
        Op::ListPending,
        Op::AttachmentPut,
        Op::Commit,
        Op::CommitReplay,
        Op::CommitStale,
        Op::LoadActivePath,
        Op::Tombstone,
        Op::Vacuum,
        Op::Gc,
        Op::Reopen,
        Op::LoadAfterReopen,
    ];

    /// Stable name (tables, JSON, charts): the trait method, qualified where the workload
    /// calls it for a special purpose.
    pub fn name(self) -> &'static str {
        match self {
            Op::CreateStore => "create_store",
            Op::SaveSessionMeta => "save_session_meta",
            Op::Enqueue => "enqueue_queued_work",
            Op::Claim => "claim_ready_queued_work",
            Op::ListPending => "list_pending_queued_work",
            Op::AttachmentPut => "attachment.put",
            Op::Commit => "commit_runtime_state",
            Op::CommitReplay => "commit_runtime_state.replay",
            Op::CommitStale => "commit_runtime_state.stale",
            Op::LoadActivePath => "load_session.active_path",
            Op::Tombstone => "tombstone_nodes",
            Op::Vacuum => "vacuum",
            Op::Gc => "gc_unreachable",
            Op::Reopen => "open_existing_store",
            Op::LoadAfterReopen => "load_session.after_reopen",
        }
    }

    /// True for calls on a store handle, each one trait call that every layer of the stack
    /// sees; false for the factory's calls and for attachment puts (whose manifest intent is
    /// one such call, their bytes none).
    pub fn is_store_call(self) -> bool {
        !matches!(self, Op::CreateStore | Op::Reopen | Op::AttachmentPut)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Latencies and outcomes of one operation.
#[derive(Clone)]
pub struct OpStats {
    /// Latency of every call (successful or not), in nanoseconds.
    pub latency: Histogram<u64>,
    /// Calls that succeeded.
    pub ok: u64,
    /// Calls that returned the error the workload provoked on purpose.
    pub expected: u64,
    /// Calls that failed with a fault of the drill (`--faults`) the layers did not absorb,
    /// whose effect the workload then knew or resolved.
    pub faulted: u64,
    /// Calls that failed with a fault of the drill, whose effect the workload could not
    /// resolve (it went on without it, or stopped the session).
    pub ambiguous: u64,
    /// Calls that failed otherwise, or whose result contradicted the workload.
    pub failed: u64,
}

impl Default for OpStats {
    fn default() -> Self {
        Self {
            // Three significant digits, growing to whatever range the calls need.
            latency: Histogram::new(3).expect("3 significant digits are valid"),
            ok: 0,
            expected: 0,
            faulted: 0,
            ambiguous: 0,
            failed: 0,
        }
    }
}

impl OpStats {
    /// Calls made.
    pub fn calls(&self) -> u64 {
        self.ok + self.expected + self.faulted + self.ambiguous + self.failed
    }
}

/// How a timed call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Succeeded as the workload expects.
    Ok,
    /// Returned the error the workload provoked on purpose.
    Expected,
    /// Failed with a fault of the drill; the workload knows (or learned) its effect.
    Faulted,
    /// Failed with a fault of the drill; its effect is unknown to the workload.
    Ambiguous,
    /// Anything else: an error or a result contradicting the workload.
    Failed,
}

/// What the stores acknowledged, summed over sessions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    /// Turns completed (committed and checked).
    pub turns: u64,
    /// Nodes appended by acknowledged commits (path nodes and drafts).
    pub nodes_appended: u64,
    /// Node payload bytes in acknowledged commits.
    pub node_payload_bytes: u64,
    /// Queued batches completed by acknowledged commits.
    pub batches_completed: u64,
    /// Attachments put (intent, reference and bytes acknowledged).
    pub attachments_put: u64,
    /// Bytes of those attachments.
    pub attachment_bytes: u64,
    /// Attachments committed by acknowledged commits (their manifest rows stamped).
    pub attachments_committed: u64,
    /// Puts the drill failed: the turn went on without them, and any intent row they left
    /// is an orphan for `strata sweep`.
    pub attachments_abandoned: u64,
    /// Usage rows appended by acknowledged commits.
    pub usage_rows: u64,
    /// Nodes tombstoned.
    pub nodes_tombstoned: u64,
    /// Nodes `vacuum` reported removing.
    pub nodes_vacuumed: u64,
    /// Blobs `gc_unreachable` reported deleting.
    pub blobs_collected: u64,
    /// Input batches left held by a claim whose reply the drill took (the claim applied;
    /// its id and lease token are unknown, so nothing can complete them before the lease,
    /// one hour, expires).
    pub batches_stranded: u64,
}

impl Totals {
    fn add(&mut self, other: &Totals) {
        let Totals {
            turns,
            nodes_appended,
            node_payload_bytes,
            batches_completed,
            attachments_put,
            attachment_bytes,
            attachments_committed,
            attachments_abandoned,
            usage_rows,
            nodes_tombstoned,
            nodes_vacuumed,
            blobs_collected,
            batches_stranded,
        } = other;
        self.turns += turns;
        self.nodes_appended += nodes_appended;
        self.node_payload_bytes += node_payload_bytes;
        self.batches_completed += batches_completed;
        self.attachments_put += attachments_put;
        self.attachment_bytes += attachment_bytes;
        self.attachments_committed += attachments_committed;
        self.attachments_abandoned += attachments_abandoned;
        self.usage_rows += usage_rows;
        self.nodes_tombstoned += nodes_tombstoned;
        self.nodes_vacuumed += nodes_vacuumed;
        self.blobs_collected += blobs_collected;
        self.batches_stranded += batches_stranded;
    }
}

/// Failure descriptions kept per configuration (the count is always exact).
const KEPT_FAILURES: usize = 20;

/// Everything measured for one configuration (or by one worker, before merging).
#[derive(Clone, Default)]
pub struct Recorder {
    ops: [OpStats; Op::ALL.len()],
    /// What the stores acknowledged.
    pub totals: Totals,
    /// Calls the attachment layer made through the stack for the workload: one manifest
    /// intent per put, one `commit_refs` after each successful commit that carried
    /// attachments.
    pub manifest_calls: u64,
    /// Sessions stopped by an outcome of the fault drill the workload could not resolve.
    pub ambiguous_stops: u64,
    /// The first failures, described (`operation: what happened`).
    pub failures: Vec<String>,
}

impl Recorder {
    /// Records one call of `op` that took `elapsed` and ended with `outcome`.
    pub fn record(&mut self, op: Op, elapsed: Duration, outcome: Outcome) {
        let stats = &mut self.ops[op.index()];
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX).max(1);
        // Growing never fails on 64-bit targets (it fails only when a count array would not
        // fit in memory addresses).
        stats.latency.record(nanos).expect("an auto-resizing histogram records any value");
        match outcome {
            Outcome::Ok => stats.ok += 1,
            Outcome::Expected => stats.expected += 1,
            Outcome::Faulted => stats.faulted += 1,
            Outcome::Ambiguous => stats.ambiguous += 1,
            Outcome::Failed => stats.failed += 1,
        }
    }

    /// Keeps the description of a failure (the first 20; the count is always exact).
    pub fn describe_failure(&mut self, description: String) {
        if self.failures.len() < KEPT_FAILURES {
            self.failures.push(description);
        }
    }

    /// The figures of `op`.
    pub fn op(&self, op: Op) -> &OpStats {
        &self.ops[op.index()]
    }

    /// Calls that failed unexpectedly, over every operation.
    pub fn failed(&self) -> u64 {
        self.ops.iter().map(|stats| stats.failed).sum()
    }

    /// Calls made on store handles, as every layer below the attachment layer sees them:
    /// the workload's store calls and the attachment layer's manifest calls.
    pub fn store_calls(&self) -> u64 {
        let workload: u64 =
            Op::ALL.iter().filter(|op| op.is_store_call()).map(|&op| self.op(op).calls()).sum();
        workload + self.manifest_calls
    }

    /// Adds `other`'s figures to these.
    pub fn merge(&mut self, other: &Recorder) {
        for (mine, theirs) in self.ops.iter_mut().zip(&other.ops) {
            mine.latency.add(&theirs.latency).expect("auto-resizing histograms always add");
            mine.ok += theirs.ok;
            mine.expected += theirs.expected;
            mine.faulted += theirs.faulted;
            mine.ambiguous += theirs.ambiguous;
            mine.failed += theirs.failed;
        }
        self.totals.add(&other.totals);
        self.manifest_calls += other.manifest_calls;
        self.ambiguous_stops += other.ambiguous_stops;
        for failure in &other.failures {
            self.describe_failure(failure.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_adds_latencies_outcomes_and_totals() {
        let mut first = Recorder::default();
        first.record(Op::Commit, Duration::from_micros(100), Outcome::Ok);
        first.record(Op::CommitStale, Duration::from_micros(5), Outcome::Expected);
        first.record(Op::Claim, Duration::from_micros(5), Outcome::Ambiguous);
        first.totals.turns = 1;
        let mut second = Recorder::default();
        second.record(Op::Commit, Duration::from_millis(3), Outcome::Failed);
        second.record(Op::Commit, Duration::from_millis(1), Outcome::Faulted);
        second.describe_failure("commit_runtime_state: boom".into());
        second.totals.turns = 2;
        second.manifest_calls = 4;
        first.merge(&second);
        let commit = first.op(Op::Commit);
        assert_eq!((commit.ok, commit.faulted, commit.failed, commit.calls()), (1, 1, 1, 3));
        assert_eq!(first.op(Op::Claim).ambiguous, 1);
        assert!(commit.latency.max() >= 2_990_000, "{}", commit.latency.max());
        assert_eq!(first.op(Op::CommitStale).expected, 1);
        assert_eq!(first.failed(), 1);
        assert_eq!(first.store_calls(), 5 + 4, "the attachment layer's calls count");
        assert_eq!(first.totals.turns, 3);
        assert_eq!(first.failures, ["commit_runtime_state: boom"]);
    }

    #[test]
    fn factory_calls_are_not_store_calls() {
        let mut recorder = Recorder::default();
        recorder.record(Op::CreateStore, Duration::from_micros(1), Outcome::Ok);
        recorder.record(Op::Reopen, Duration::from_micros(1), Outcome::Ok);
        recorder.record(Op::AttachmentPut, Duration::from_micros(1), Outcome::Ok);
        recorder.record(Op::Vacuum, Duration::from_micros(1), Outcome::Ok);
        assert_eq!(recorder.store_calls(), 1);
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<&str> = Op::ALL.iter().map(|op| op.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Op::ALL.len());
        assert!(Op::ALL.iter().enumerate().all(|(index, op)| op.index() == index));
    }
}
