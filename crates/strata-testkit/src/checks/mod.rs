//! The conformance checks, one named async function each, and the assertion helpers whose
//! messages say what was expected and what was observed.

use std::fmt::Debug;
use std::sync::Arc;

use futures::future::BoxFuture;
use strata_core::*;

use crate::fixtures::SESSION;
use crate::suite::{Env, ManifestSupport, SuiteOptions};

mod commit;
mod concurrency;
mod factory;
mod graph;
mod manifest;
mod queue;
mod reopen;

/// What a check needs from the store under test to be meaningful.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Needs {
    /// Runs everywhere.
    Nothing,
    /// `reopenable: true`.
    Reopen,
    /// `ManifestSupport::Real`.
    RealManifest,
    /// `ManifestSupport::Noop`.
    NoopManifest,
    /// The factory suite.
    Factory,
}

impl Needs {
    /// Why the check cannot run with `options`, if it cannot.
    pub(crate) fn unmet(self, options: &SuiteOptions) -> Option<&'static str> {
        match self {
            Needs::Reopen if !options.reopenable => Some("store is not reopenable"),
            Needs::RealManifest if options.manifest == ManifestSupport::Noop => {
                Some("store uses the no-op manifest")
            }
            Needs::NoopManifest if options.manifest == ManifestSupport::Real => {
                Some("store has a real manifest")
            }
            _ => None,
        }
    }
}

/// The result of a check: `Err` holds the failure message.
pub(crate) type Outcome = Result<(), String>;

/// A named check.
pub(crate) struct Check {
    pub(crate) name: &'static str,
    pub(crate) needs: Needs,
    pub(crate) run: fn(Arc<Env>) -> BoxFuture<'static, Outcome>,
}

/// Declares a list of checks: `"name" [needs] => async fn(&Env) -> Outcome`.
macro_rules! checks {
    ($($name:literal $needs:ident => $function:path,)*) => {
        &[$(
            Check {
                name: $name,
                needs: Needs::$needs,
                run: |env| Box::pin(async move { $function(&env).await }),
            },
        )*]
    };
}
pub(crate) use checks;

/// Every check, in run order.
pub(crate) fn all() -> Vec<&'static Check> {
    [
        commit::CHECKS,
        graph::CHECKS,
        queue::CHECKS,
        manifest::CHECKS,
        reopen::CHECKS,
        concurrency::CHECKS,
        factory::CHECKS,
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Longest rendering of a value in a failure message.
const MAX_RENDERED: usize = 600;

/// `{value:?}`, shortened to [`MAX_RENDERED`] characters.
pub(crate) fn render(value: &impl Debug) -> String {
    shorten(&format!("{value:?}"))
}

/// `text`, shortened to [`MAX_RENDERED`] characters.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(MAX_RENDERED) {
        Some((cut, _)) => format!("{}… ({} more bytes)", &text[..cut], text.len() - cut),
        None => text.to_owned(),
    }
}

/// Fails with "`what`: expected …, observed …" unless equal.
pub(crate) fn expect_eq<T: Debug + PartialEq + ?Sized>(
    what: &str,
    expected: &T,
    observed: &T,
) -> Outcome {
    if expected == observed {
        return Ok(());
    }
    let (expected, observed) = (format!("{expected:?}"), format!("{observed:?}"));
    let mut message =
        format!("{what}: expected {}, observed {}", shorten(&expected), shorten(&observed));
    if expected.len() > DIFF_CONTEXT * 2 || observed.len() > DIFF_CONTEXT * 2 {
        message.push_str(&first_difference(&expected, &observed));
    }
    Err(message)
}

/// Characters shown before the first difference between two long renderings (twice as many
/// after it).
const DIFF_CONTEXT: usize = 40;

/// "; first difference at char N: expected `…`, observed `…`" for two long renderings.
fn first_difference(expected: &str, observed: &str) -> String {
    let at = expected.chars().zip(observed.chars()).take_while(|(a, b)| a == b).count();
    let window = |text: &str| -> String {
        text.chars().skip(at.saturating_sub(DIFF_CONTEXT)).take(DIFF_CONTEXT * 3).collect()
    };
    format!(
        "; first difference at char {at}: expected `…{}…`, observed `…{}…`",
        window(expected),
        window(observed)
    )
}

/// Fails with `what` (and the observation) unless `condition` holds.
pub(crate) fn ensure(condition: bool, what: impl FnOnce() -> String) -> Outcome {
    if condition { Ok(()) } else { Err(what()) }
}

/// Fails with "`what`: expected > `bound`, observed …" unless `observed > bound`.
pub(crate) fn expect_greater(what: &str, bound: u64, observed: u64) -> Outcome {
    ensure(observed > bound, || format!("{what}: expected > {bound}, observed {observed}"))
}

/// Fails unless `batch` is a new batch: another id and a greater `enqueue_seq` than `old`.
pub(crate) fn expect_new_batch(
    what: &str,
    old: &QueuedWorkBatch,
    batch: &QueuedWorkBatch,
) -> Outcome {
    ensure(batch.batch_id != old.batch_id, || {
        format!("{what}: expected a new batch id (not {:?}), observed the same", old.batch_id)
    })?;
    expect_greater(&format!("{what}: enqueue_seq"), old.enqueue_seq, batch.enqueue_seq)
}

/// Fails unless `result` is exactly `expected`.
pub(crate) fn expect_error<T: Debug>(
    what: &str,
    result: Result<T, StoreError>,
    expected: &StoreError,
) -> Outcome {
    match result {
        Err(error) if &error == expected => Ok(()),
        Err(error) => Err(format!("{what}: expected error {expected:?}, observed error {error:?}")),
        Ok(value) => {
            Err(format!("{what}: expected error {expected:?}, observed success {}", render(&value)))
        }
    }
}

/// Fails unless `result` is an error of kind `kind` (see [`StoreError::kind`]).
pub(crate) fn expect_kind<T: Debug>(
    what: &str,
    result: Result<T, StoreError>,
    kind: &str,
) -> Outcome {
    match result {
        Err(error) if error.kind() == kind => Ok(()),
        Err(error) => Err(format!("{what}: expected a {kind} error, observed error {error:?}")),
        Ok(value) => {
            Err(format!("{what}: expected a {kind} error, observed success {}", render(&value)))
        }
    }
}

/// Turns a store error into a failure message naming the step.
pub(crate) trait Step<T> {
    /// `Ok` value, or "`what`: expected success, observed error …".
    fn step(self, what: &str) -> Result<T, String>;
}

impl<T> Step<T> for Result<T, StoreError> {
    fn step(self, what: &str) -> Result<T, String> {
        self.map_err(|error| format!("{what}: expected success, observed error {error:?}"))
    }
}

/// The head read with `scope`, which must exist.
pub(crate) async fn load(
    store: &dyn RuntimePersistence,
    scope: SessionReadScope,
) -> Result<PersistedSessionRead, String> {
    let what = format!("load_session({scope:?})");
    store.load_session(scope).await.step(&what)?.ok_or_else(|| {
        format!("{what}: expected a session (a commit succeeded before), observed None")
    })
}

/// The full graph read, which must exist.
pub(crate) async fn full(store: &dyn RuntimePersistence) -> Result<PersistedSessionRead, String> {
    load(store, SessionReadScope::FullGraph).await
}

/// The active path of `leaf` (or of the head leaf), which must exist.
pub(crate) async fn path(
    store: &dyn RuntimePersistence,
    leaf: Option<&str>,
) -> Result<PersistedSessionRead, String> {
    load(store, SessionReadScope::ActivePath { leaf_node_id: leaf.map(str::to_owned) }).await
}

/// Ids of `nodes`, in order.
pub(crate) fn ids(nodes: &[SessionNodeRecord]) -> Vec<&str> {
    nodes.iter().map(|node| node.node_id.as_str()).collect()
}

/// Ids of `batches`, in order.
pub(crate) fn batch_ids(batches: &[QueuedWorkBatch]) -> Vec<&str> {
    batches.iter().map(|batch| batch.batch_id.as_str()).collect()
}

/// Commits `commit`, which must succeed.
pub(crate) async fn commit_ok(
    store: &dyn RuntimePersistence,
    what: &str,
    commit: RuntimeCommit,
) -> Result<RuntimeCommitResult, String> {
    store.commit_runtime_state(commit).await.step(what)
}

/// Everything observable about the store, to compare before and after a refused call.
#[derive(Debug, PartialEq)]
pub(crate) struct Snapshot {
    head: Option<PersistedSessionRead>,
    path: Option<PersistedSessionRead>,
    meta: Option<SessionMeta>,
    queue: Vec<QueuedWorkBatch>,
    pending: Vec<QueuedWorkBatch>,
    uncommitted: Vec<AttachmentManifestEntry>,
}

impl Snapshot {
    /// Reads everything about the main session (and the queue of `SESSION`).
    pub(crate) async fn take(store: &dyn RuntimePersistence) -> Result<Self, String> {
        let mut uncommitted = store.list_uncommitted(u64::MAX).await.step("list_uncommitted")?;
        uncommitted.sort_by(|a, b| {
            (&a.session_id, &a.attachment_id).cmp(&(&b.session_id, &b.attachment_id))
        });
        Ok(Self {
            head: store.load_session(SessionReadScope::FullGraph).await.step("load_session")?,
            path: store
                .load_session(SessionReadScope::ActivePath { leaf_node_id: None })
                .await
                .step("load_session(ActivePath)")?,
            meta: store.load_session_meta().await.step("load_session_meta")?,
            queue: store.list_queued_work(SESSION).await.step("list_queued_work")?,
            pending: store
                .list_pending_queued_work(SESSION)
                .await
                .step("list_pending_queued_work")?,
            uncommitted,
        })
    }

    /// Fails unless the store still looks exactly like this snapshot.
    pub(crate) async fn unchanged(&self, store: &dyn RuntimePersistence, after: &str) -> Outcome {
        let now = Self::take(store).await?;
        expect_eq(&format!("store state after {after} (nothing may be applied)"), self, &now)
    }
}
