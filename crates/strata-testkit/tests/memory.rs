//! The conformance suite over the in-memory backend, its factory, and decorator stacks built
//! with `StoreBuilder` (static and type-erased).

use std::sync::Arc;

use strata_core::{PassThrough, RuntimePersistence, SessionStoreFactory, StoreBuilder};
use strata_memory::{MemoryStore, MemoryStoreFactory};
use strata_testkit::{
    SuiteOptions, SuiteReport, factory_check_names, run_factory_suite, run_store_suite,
    store_check_names,
};

/// Passes, and every check not run was skipped for a stated reason: the in-memory store is not
/// reopenable and has a real manifest (or the name filter excluded the check).
fn assert_complete(report: &SuiteReport, all: &[&str]) {
    report.assert_passed();
    for (name, reason) in report.skipped() {
        let expected = name.starts_with("reopen::")
            || *name == "manifest::noop_accepts_everything_lists_nothing"
            || reason.contains("STRATA_CONFORMANCE_FILTER");
        assert!(expected, "{name} skipped unexpectedly: {reason}");
    }
    assert_eq!(report.passed() + report.skipped().len(), all.len(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_passes() {
    let report = run_store_suite(SuiteOptions::default(), |ctx| async move {
        Arc::new(MemoryStore::with_clock(Arc::new(ctx.clock))) as Arc<dyn RuntimePersistence>
    })
    .await;
    assert_complete(&report, &store_check_names());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_factory_passes() {
    let report = run_factory_suite(SuiteOptions::default(), |ctx| async move {
        Arc::new(MemoryStoreFactory::with_clock(Arc::new(ctx.clock)))
            as Arc<dyn SessionStoreFactory>
    })
    .await;
    assert_complete(&report, &factory_check_names());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pass_through_stack_passes() {
    let report = run_store_suite(SuiteOptions::default(), |ctx| async move {
        let builder = StoreBuilder::new()
            .layer(PassThrough::named("outer"))
            .layer(PassThrough::named("inner"));
        Arc::new(builder.build(MemoryStore::with_clock(Arc::new(ctx.clock))))
            as Arc<dyn RuntimePersistence>
    })
    .await;
    assert_complete(&report, &store_check_names());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_stack_passes() {
    let report = run_store_suite(SuiteOptions::default(), |ctx| async move {
        let backend: Arc<dyn RuntimePersistence> =
            Arc::new(MemoryStore::with_clock(Arc::new(ctx.clock)));
        StoreBuilder::new().layer(PassThrough::default()).build_shared(backend)
    })
    .await;
    assert_complete(&report, &store_check_names());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layered_factory_passes() {
    let report = run_factory_suite(SuiteOptions::default(), |ctx| async move {
        let factory = MemoryStoreFactory::with_clock(Arc::new(ctx.clock));
        Arc::new(StoreBuilder::new().layer(PassThrough::default()).build_factory(factory))
            as Arc<dyn SessionStoreFactory>
    })
    .await;
    assert_complete(&report, &factory_check_names());
}

#[test]
fn check_names_are_unique_and_factory_runs_a_superset() {
    let store = store_check_names();
    let factory = factory_check_names();
    let mut unique = factory.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), factory.len(), "duplicate check names");
    assert!(store.iter().all(|name| factory.contains(name)));
    assert!(factory.iter().any(|name| name.starts_with("factory::")));
    assert!(!store.iter().any(|name| name.starts_with("factory::")));
}
