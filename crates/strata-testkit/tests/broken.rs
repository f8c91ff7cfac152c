//! Deliberately broken stores must fail the suite, and the report must name the right checks
//! with informative messages.

use std::sync::Arc;

use strata_core::{
    Around, DurabilityTier, Operation, Request, Response, RuntimePersistence, Serve,
    SessionReadScope, StoreBuilder, StoreError,
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
    /// `list_queued_work` returns batches newest first.
    ListNewestFirst,
    /// Active paths come back leaf → root.
    PathLeafFirst,
    /// Reads return the checkpoint without blob bytes.
    CheckpointNotHydrated,
    /// Claims always report fencing token 1.
    FencingStuck,
    /// A lost CAS surfaces as a generic backend error.
    ConflictFlattened,
    /// `tombstone_nodes` does nothing.
    TombstonesIgnored,
    /// `max_batches == 0` claims one batch.
    ZeroMaxClaimsOne,
    /// `save_session_meta` does nothing.
    MetaDropped,
    /// `commit_refs` does nothing.
    CommitRefsIgnored,
    /// Enqueue forgets the source key.
    SourceKeyIgnored,
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
        S: Serve + ?Sized + 'a,
    {
        let is_path =
            matches!(request, Request::LoadSession { scope: SessionReadScope::ActivePath { .. } });
        match (self.0, request) {
            (Bug::PendingIncludesLiveClaims, Request::ListPendingQueuedWork { session_id }) => {
                inner.serve(Request::ListQueuedWork { session_id }).await
            }
            (Bug::VacuumPanics, Request::Vacuum) => panic!("planted vacuum bug"),
            (Bug::TombstonesIgnored, Request::TombstoneNodes { .. })
            | (Bug::MetaDropped, Request::SaveSessionMeta { .. })
            | (Bug::CommitRefsIgnored, Request::CommitRefs { .. }) => Ok(Response::Done),
            (
                Bug::ZeroMaxClaimsOne,
                Request::ClaimReadyQueuedWork {
                    max_batches: 0,
                    session_id,
                    owner_id,
                    boundary,
                    lease_ttl_ms,
                },
            ) => {
                inner
                    .serve(Request::ClaimReadyQueuedWork {
                        session_id,
                        owner_id,
                        boundary,
                        lease_ttl_ms,
                        max_batches: 1,
                    })
                    .await
            }
            (Bug::SourceKeyIgnored, Request::EnqueueQueuedWork { mut draft }) => {
                std::sync::Arc::make_mut(&mut draft).source_key = None;
                inner.serve(Request::EnqueueQueuedWork { draft }).await
            }
            (Bug::ConflictFlattened, request) => {
                inner.serve(request).await.map_err(|error| match error {
                    StoreError::HeadRevisionConflict { .. } => {
                        StoreError::Backend(error.to_string())
                    }
                    other => other,
                })
            }
            (bug, request) => Ok(corrupt(bug, is_path, inner.serve(request).await?)),
        }
    }
}

/// Plants the response-rewriting bugs.
fn corrupt(bug: Bug, is_path: bool, response: Response) -> Response {
    match (bug, response) {
        (Bug::RevisionDoesNotBump, Response::Committed(mut result)) => {
            result.head_revision -= 1;
            Response::Committed(result)
        }
        (Bug::ListNewestFirst, Response::Batches(mut batches)) => {
            batches.reverse();
            Response::Batches(batches)
        }
        (Bug::PathLeafFirst, Response::Session(Some(mut read))) if is_path => {
            read.graph.nodes.reverse();
            Response::Session(Some(read))
        }
        (Bug::CheckpointNotHydrated, Response::Session(Some(mut read))) => {
            if let Some(checkpoint) = &mut read.checkpoint {
                checkpoint.tool_state.payload = None;
            }
            Response::Session(Some(read))
        }
        (Bug::FencingStuck, Response::Claim(Some(mut claim))) => {
            claim.fencing_token = 1;
            Response::Claim(Some(claim))
        }
        (_, response) => response,
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
async fn every_planted_bug_is_caught_by_its_check() {
    let expectations = [
        (Bug::ListNewestFirst, "queue::per_session_isolation_and_order"),
        (Bug::PathLeafFirst, "graph::active_path_root_to_leaf"),
        (Bug::CheckpointNotHydrated, "checkpoint::payload_minted_and_hydrated"),
        (Bug::CheckpointNotHydrated, "checkpoint::ref_only_commit_keeps_blobs"),
        (Bug::FencingStuck, "queue::abandon_then_reclaim_with_greater_fencing"),
        (Bug::FencingStuck, "concurrency::racing_claims_never_double_own"),
        (Bug::ConflictFlattened, "cas::stale_expected_revision_conflicts"),
        (Bug::ConflictFlattened, "concurrency::cas_race_has_exactly_one_winner"),
        (Bug::ConflictFlattened, "atomicity::head_conflict_applies_nothing"),
        (Bug::TombstonesIgnored, "tombstone::hidden_from_every_read"),
        (Bug::TombstonesIgnored, "tombstone::vacuum_counts_once"),
        (Bug::ZeroMaxClaimsOne, "queue::max_batches_limits_the_claim"),
        (Bug::MetaDropped, "meta::none_before_save_then_round_trip"),
        (Bug::MetaDropped, "meta::last_writer_wins"),
        (Bug::CommitRefsIgnored, "manifest::commit_refs_stamps_known_rows_of_its_session"),
        (Bug::CommitRefsIgnored, "manifest::repeated_intent_refreshes_and_never_uncommits"),
        (Bug::SourceKeyIgnored, "queue::source_key_idempotent_while_batch_exists"),
        (Bug::SourceKeyIgnored, "concurrency::same_source_key_enqueues_give_one_batch"),
    ];
    let mut missed = Vec::new();
    for (bug, check) in expectations {
        let report = run_broken(bug).await;
        match report.failure(check) {
            Some(failure) => assert!(
                failure.message.contains("expected") && failure.message.contains("observed"),
                "{bug:?}: message of {check} lacks expected/observed: {}",
                failure.message
            ),
            None => missed.push(format!("{bug:?} not caught by {check}:\n{report}")),
        }
    }
    assert!(missed.is_empty(), "{}", missed.join("\n"));
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
