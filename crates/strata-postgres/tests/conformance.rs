//! The public conformance suite against a real PostgreSQL server: the store suite (one store
//! per check, reopenable: a reopen connects a new pool to the same store) and the factory
//! suite (one schema per check). Time comes from the suite's manual clock.

mod common;

use std::sync::Arc;

use strata_core::{DurabilityTier, RuntimePersistence, SessionStoreFactory};
use strata_postgres::PostgresStoreFactory;
use strata_testkit::{ManifestSupport, SuiteOptions, run_factory_suite, run_store_suite};

use common::{TestDatabase, tag};

const OPTIONS: SuiteOptions = SuiteOptions {
    tier: DurabilityTier::Durable,
    manifest: ManifestSupport::Real,
    reopenable: true,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_passes_the_store_suite() {
    let Some(database) = TestDatabase::create("store_suite").await else { return };
    let config = database.config().with_schema("store_suite").with_max_connections(8);
    let report = run_store_suite(OPTIONS, move |ctx| {
        let config = config.clone().with_clock(Arc::new(ctx.clock.clone()));
        async move {
            let factory = PostgresStoreFactory::connect(config).await.expect("connect");
            let store = factory.open_store(&tag(&ctx.dir)).await.expect("open store");
            Arc::new(store) as Arc<dyn RuntimePersistence>
        }
    })
    .await;
    println!("{report}");
    report.assert_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_factory_passes_the_factory_suite() {
    let Some(database) = TestDatabase::create("factory_suite").await else { return };
    let config = database.config().with_max_connections(8);
    let report = run_factory_suite(OPTIONS, move |ctx| {
        let config = config
            .clone()
            .with_schema(format!("f_{}", tag(&ctx.dir)))
            .with_clock(Arc::new(ctx.clock.clone()));
        async move {
            let factory = PostgresStoreFactory::connect(config).await.expect("connect");
            Arc::new(factory) as Arc<dyn SessionStoreFactory>
        }
    })
    .await;
    println!("{report}");
    report.assert_passed();
}
