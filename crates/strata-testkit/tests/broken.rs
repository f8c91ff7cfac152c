//! Deliberately broken stores must fail the suite, and the report must name the right checks
//! with informative messages.

use std::sync::Arc;

use strata_core::{
    Around, DurabilityTier, Operation, Request, Response, RuntimePersistence, StoreBuilder,
    StoreError,
};
use strata_memory::MemoryStore;
use strata_testkit::faults::FaultInjection;
use strata_testkit::{ManifestSupport, StoreContext, SuiteOptions, SuiteReport, run_store_suite};

/// The bug a [`Broken`] decorator plants.
#[derive(Clone, Copy, Debug)]
enum Bug {
    /// Commits report one revision less than they made.
    RevisionDoesNotBump,
    /// `list_pending_queued_work` answers like `list_queued_work` (includes live claims).
    PendingIncludesLiveClaims,
    /// `vacuum` panics.
    VacuumPanics,
}

#[derive(Clone, Debug)]
struct Broken(Bug);

impl Around for Broken {
    async fn around<'a, S>(
        &'a self,
        inner: &'a S,
        request: Request<'a>,
    ) -> Result<Response, StoreError>
    where
        S: RuntimePersistence + ?Sized + 'a,
    {
        match (self.0, request) {
            (Bug::RevisionDoesNotBump, request) => match request.dispatch(inner).await? {
                Response::Committed(mut result) => {
                    result.head_revision -= 1;
                    Ok(Response::Committed(result))
                }
                other => Ok(other),
            },
            (Bug::PendingIncludesLiveClaims, Request::ListPendingQueuedWork { session_id }) => {
                Request::ListQueuedWork { session_id }.dispatch(inner).await
            }
            (Bug::VacuumPanics, Request::Vacuum) => panic!("planted vacuum bug"),
            (_, request) => request.dispatch(inner).await,
        }
    }
}

fn memory(ctx: &StoreContext) -> MemoryStore {
    MemoryStore::with_clock(Arc::new(ctx.clock.clone()))
}

async fn run_broken(bug: Bug) -> SuiteReport {
    run_store_suite(SuiteOptions::default(), move |ctx| async move {
        StoreBuilder::new().layer(Broken(bug)).build_shared(memory(&ctx))
    })
    .await
}

/// The failure message of `check`, which must have failed.
fn failure<'r>(report: &'r SuiteReport, check: &str) -> &'r str {
    match report.failure(check) {
        Some(failure) => &failure.message,
        None => panic!("expected check {check} to fail; report:\n{report}"),
    }
}

#[tokio::test]
async fn a_revision_that_does_not_bump_is_reported() {
    let report = run_broken(Bug::RevisionDoesNotBump).await;
    let message = failure(&report, "head::revision_increments_per_commit");
    assert!(
        message.contains("head_revision returned by commit #1: expected 1, observed 0"),
        "uninformative message: {message}"
    );
    assert!(report.failure("cas::blind_write_skips_the_check").is_some());
    assert!(report.failure("graph::active_path_root_to_leaf").is_none(), "{report}");
    let panic = std::panic::catch_unwind(|| report.assert_passed()).expect_err("must panic");
    let text = panic.downcast_ref::<String>().expect("a formatted panic message");
    assert!(text.contains("FAILED [head::revision_increments_per_commit]"), "{text}");
}

#[tokio::test]
async fn pending_that_includes_live_claims_is_reported() {
    let report = run_broken(Bug::PendingIncludesLiveClaims).await;
    let message = failure(&report, "queue::list_vs_list_pending");
    assert!(message.contains("list_pending_queued_work (live claim excluded)"), "{message}");
    assert!(message.contains("expected") && message.contains("observed"), "{message}");
    assert!(report.failure("head::revision_increments_per_commit").is_none(), "{report}");
}

#[tokio::test]
async fn a_panicking_call_fails_its_check_and_the_suite_goes_on() {
    let report = run_broken(Bug::VacuumPanics).await;
    let message = failure(&report, "tombstone::vacuum_counts_once");
    assert!(message.contains("panicked: planted vacuum bug"), "{message}");
    assert!(report.passed() > 40, "the suite stopped early: {report}");
}

#[tokio::test(start_paused = true)]
async fn a_hanging_call_is_reported_as_a_hang() {
    let report = run_store_suite(SuiteOptions::default(), |ctx| async move {
        let faults = FaultInjection::new();
        faults.hang_next(Operation::GcUnreachable, 1);
        StoreBuilder::new().layer(faults).build_shared(memory(&ctx))
    })
    .await;
    let message = failure(&report, "gc::empty_store_collects_nothing");
    assert!(message.contains("did not finish within"), "{message}");
}

#[tokio::test]
async fn wrong_declared_options_are_reported() {
    let options = SuiteOptions {
        tier: DurabilityTier::Durable,
        manifest: ManifestSupport::Noop,
        reopenable: false,
    };
    let report = run_store_suite(options, |ctx| async move {
        Arc::new(memory(&ctx)) as Arc<dyn RuntimePersistence>
    })
    .await;
    let message = failure(&report, "head::declared_tier");
    assert!(message.contains("expected Durable, observed Inline"), "{message}");
    let message = failure(&report, "manifest::noop_accepts_everything_lists_nothing");
    assert!(message.contains("no-op manifest list_uncommitted"), "{message}");
    assert!(report.skipped().iter().any(|(name, _)| *name == "manifest::forget_removes_rows"));
}
