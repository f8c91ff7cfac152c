//! The conformance suite over the cache layer: alone over the in-memory and file stores, in
//! the recommended stack (tracing → metrics → cache → store), in its other modes (negative
//! caching, head-revision revalidation), and over layered factories, whose handles of one
//! session share one cache.

#![cfg(feature = "cache")]

use std::sync::Arc;
use std::time::Duration;

use strata_core::{
    DurabilityTier, Identity, Layer, RuntimePersistence, SessionStoreFactory, Stack, StoreBuilder,
};
use strata_file::{FileStore, FileStoreFactory, FileStoreOptions};
use strata_layers::CacheLayer;
use strata_layers::cache::Revalidation;
#[cfg(all(feature = "tracing", feature = "metrics"))]
use strata_layers::{MetricsLayer, TracingLayer};
use strata_memory::{MemoryStore, MemoryStoreFactory};
use strata_testkit::{StoreContext, SuiteOptions, run_factory_suite, run_store_suite};

fn durable() -> SuiteOptions {
    SuiteOptions { tier: DurabilityTier::Durable, reopenable: true, ..SuiteOptions::default() }
}

fn file_options(ctx: &StoreContext) -> FileStoreOptions {
    FileStoreOptions::default().with_clock(Arc::new(ctx.clock.clone()))
}

/// The store suite over `stack` on the in-memory store, then on the file store.
async fn over_both_stores<L>(stack: StoreBuilder<L>)
where
    L: Layer<MemoryStore> + Layer<FileStore> + Clone + Send + Sync + 'static,
    <L as Layer<MemoryStore>>::Store: RuntimePersistence + 'static,
    <L as Layer<FileStore>>::Store: RuntimePersistence + 'static,
{
    let memory = stack.clone();
    run_store_suite(SuiteOptions::default(), move |ctx| {
        let store = memory.build(MemoryStore::with_clock(Arc::new(ctx.clock)));
        async move { Arc::new(store) as Arc<dyn RuntimePersistence> }
    })
    .await
    .assert_passed();
    run_store_suite(durable(), move |ctx| {
        let store = FileStore::open(&ctx.dir, file_options(&ctx)).expect("the file store opens");
        let store = stack.build(store);
        async move { Arc::new(store) as Arc<dyn RuntimePersistence> }
    })
    .await
    .assert_passed();
}

fn alone(layer: CacheLayer) -> StoreBuilder<Stack<CacheLayer, Identity>> {
    StoreBuilder::new().layer(layer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_alone_conforms() {
    over_both_stores(alone(CacheLayer::default())).await;
}

#[cfg(all(feature = "tracing", feature = "metrics"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_in_the_recommended_stack_conforms() {
    let stack = StoreBuilder::new()
        .layer(TracingLayer::default())
        .layer(MetricsLayer::default())
        .layer(CacheLayer::default());
    over_both_stores(stack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negative_caching_and_revalidation_conform() {
    let layer = CacheLayer::default()
        .with_negative_caching(Duration::from_secs(1))
        .with_revalidation(Revalidation::HeadRevision);
    over_both_stores(alone(layer)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layered_factories_conform_with_one_cache_per_session() {
    run_factory_suite(SuiteOptions::default(), |ctx| async move {
        let factory = MemoryStoreFactory::with_clock(Arc::new(ctx.clock));
        let cache = CacheLayer::default().with_negative_caching(Duration::from_secs(1));
        #[cfg(all(feature = "tracing", feature = "metrics"))]
        let layered = StoreBuilder::new()
            .layer(TracingLayer::default())
            .layer(MetricsLayer::default())
            .layer(cache)
            .build_factory(factory);
        #[cfg(not(all(feature = "tracing", feature = "metrics")))]
        let layered = StoreBuilder::new().layer(cache).build_factory(factory);
        Arc::new(layered) as Arc<dyn SessionStoreFactory>
    })
    .await
    .assert_passed();
    run_factory_suite(durable(), |ctx| async move {
        let factory = FileStoreFactory::open(&ctx.dir, file_options(&ctx)).expect("open factory");
        let layered = StoreBuilder::new().layer(CacheLayer::default()).build_factory(factory);
        Arc::new(layered) as Arc<dyn SessionStoreFactory>
    })
    .await
    .assert_passed();
}
