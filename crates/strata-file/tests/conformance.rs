//! The public conformance suite over the file backend: a store per check, a factory per
//! check, both reopenable (the suite drops every handle and reopens the same directory).

use std::sync::Arc;

use strata_core::{DurabilityTier, RuntimePersistence, SessionStoreFactory};
use strata_file::{FileStore, FileStoreFactory, FileStoreOptions};
use strata_testkit::{
    ManifestSupport, StoreContext, SuiteOptions, run_factory_suite, run_store_suite,
};

const OPTIONS: SuiteOptions = SuiteOptions {
    tier: DurabilityTier::Durable,
    manifest: ManifestSupport::Real,
    reopenable: true,
};

fn options(ctx: &StoreContext) -> FileStoreOptions {
    FileStoreOptions::default().with_clock(Arc::new(ctx.clock.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_store_passes_the_store_suite() {
    let report = run_store_suite(OPTIONS, |ctx| async move {
        let store = FileStore::open(&ctx.dir, options(&ctx)).expect("open file store");
        Arc::new(store) as Arc<dyn RuntimePersistence>
    })
    .await;
    println!("{report}");
    report.assert_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_store_factory_passes_the_factory_suite() {
    let report = run_factory_suite(OPTIONS, |ctx| async move {
        let factory = FileStoreFactory::open(&ctx.dir, options(&ctx)).expect("open factory");
        Arc::new(factory) as Arc<dyn SessionStoreFactory>
    })
    .await;
    println!("{report}");
    report.assert_passed();
}
