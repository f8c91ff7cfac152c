//! Test support for Strata stores.
//!
//! - The public conformance suite: [`run_store_suite`] runs every check of the
//!   `RuntimePersistence` contract (the contract, `docs/contract.md`) against fresh stores from your constructor;
//!   [`run_factory_suite`] runs them on handles from a `SessionStoreFactory` plus the factory
//!   checks. Every backend and every decorator stack runs it:
//!
//!   ```no_run
//!   # async fn demo(make_store: fn(strata_core::ManualClock) -> std::sync::Arc<dyn strata_core::RuntimePersistence>) {
//!   use strata_testkit::{SuiteOptions, run_store_suite};
//!   run_store_suite(SuiteOptions::default(), move |ctx| async move { make_store(ctx.clock) })
//!       .await
//!       .assert_passed();
//!   # }
//!   ```
//!
//!   Each check has a name (`area::what`); a failure names the check, what was expected and
//!   what was observed. Areas: `head`, `checkpoint`, `usage`, `cas`, `stamp`, `atomicity`
//!   (a refused commit of each kind applies nothing), `meta`, `graph`, `tombstone`, `gc`,
//!   `queue`, `manifest`, `reopen` (with `reopenable: true`), `concurrency` (racing tasks on one
//!   store, or on several handles of one session in the factory suite) and `factory`. Set `STRATA_CONFORMANCE_FILTER=<substring>` to run only matching
//!   checks; [`store_check_names`] and [`factory_check_names`] list them.
//! - [`faults`]: the [`FaultInjection`](faults::FaultInjection) decorator (fail before or after
//!   the store, delay, hang, scripted or at seeded random rates, count calls), re-exported
//!   from `strata_layers::faults`.
//! - [`fixtures`]: builders for nodes, commits, drafts and intents.
//! - [`attachments`]: the conformance suite for attachment stores (`strata-attachments`).

pub mod attachments;
mod checks;
pub mod faults;
pub mod fixtures;
mod suite;

pub use suite::{
    CheckFailure, FILTER_ENV, ManifestSupport, START_MS, StoreContext, SuiteOptions, SuiteReport,
    factory_check_names, run_factory_suite, run_store_suite, store_check_names,
};
