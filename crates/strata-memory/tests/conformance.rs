//! The public conformance suite over the in-memory backend: every store check over
//! [`MemoryStore`] and every factory check over [`MemoryStoreFactory`].

use std::sync::Arc;

use strata_core::{RuntimePersistence, SessionStoreFactory, SharedClock};
use strata_memory::{MemoryStore, MemoryStoreFactory};
use strata_testkit::{
    StoreContext, SuiteOptions, SuiteReport, factory_check_names, run_factory_suite,
    run_store_suite, store_check_names,
};

fn clock(ctx: &StoreContext) -> SharedClock {
    Arc::new(ctx.clock.clone())
}

/// No failure, and every check of the suite either ran and passed or was skipped.
fn assert_complete(report: &SuiteReport, names: &[&str]) {
    report.assert_passed();
    assert_eq!(report.passed() + report.skipped().len(), names.len(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_passes_the_store_suite() {
    let report = run_store_suite(SuiteOptions::default(), |ctx: StoreContext| async move {
        Arc::new(MemoryStore::with_clock(clock(&ctx))) as Arc<dyn RuntimePersistence>
    })
    .await;
    assert_complete(&report, &store_check_names());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_factory_passes_the_factory_suite() {
    let report = run_factory_suite(SuiteOptions::default(), |ctx: StoreContext| async move {
        Arc::new(MemoryStoreFactory::with_clock(clock(&ctx))) as Arc<dyn SessionStoreFactory>
    })
    .await;
    assert_complete(&report, &factory_check_names());
}
