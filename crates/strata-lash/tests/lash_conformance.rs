//! lash's own conformance suite (`lash_core::testing::conformance`) over Strata's stores
//! through [`ForLash`]: the memory store, the file store (reopened), both under the
//! recommended layer stack, and lash-sqlite-store under Strata's layers through both bridges.
//!
//! lash's suite panics on its first violated invariant and names it in the panic message; it
//! has no per-case report to filter. Every case passes here, so each test runs it whole.
//! lash's tests run on a current-thread runtime (`#[tokio::test]`), which exercises the
//! manifest bridge's manifest-thread path; the `multi_thread` variant exercises
//! `block_in_place`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use lash_core::testing::conformance::{
    ReopenableRuntimePersistence, runtime_persistence, runtime_persistence_reopenable,
};
use strata_core::{RuntimePersistence, StoreBuilder};
use strata_file::{FileStore, FileStoreOptions};
use strata_lash::{ForLash, FromLash};
use strata_layers::{
    CacheLayer, CircuitBreakerLayer, ConcurrencyLimitLayer, MetricsLayer, RetryLayer, TimeoutLayer,
    TracingLayer,
};
use strata_memory::MemoryStore;

/// `store` under the recommended stack, outermost first: tracing → metrics → cache → retry →
/// timeout → limit → breaker → the store; handed to lash through [`ForLash`].
fn stacked(store: Arc<dyn RuntimePersistence>) -> Arc<dyn lash_core::RuntimePersistence> {
    let stack = StoreBuilder::new()
        .layer(TracingLayer::default())
        .layer(MetricsLayer::default())
        .layer(CacheLayer::default())
        .layer(RetryLayer::default())
        .layer(TimeoutLayer::default())
        .layer(ConcurrencyLimitLayer::default())
        .layer(CircuitBreakerLayer::default())
        .build_shared(store);
    Arc::new(ForLash::from_arc(stack))
}

/// Fresh directories under one scratch root that lives as long as the test.
struct Dirs {
    root: tempfile::TempDir,
    next: AtomicUsize,
}

impl Dirs {
    fn new() -> Self {
        Self { root: tempfile::tempdir().expect("scratch root"), next: AtomicUsize::new(0) }
    }

    fn fresh(&self) -> PathBuf {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.root.path().join(format!("store-{n}"))
    }
}

fn file_store(dir: &PathBuf) -> FileStore {
    FileStore::open(dir, FileStoreOptions::default()).expect("open file store")
}

#[tokio::test]
async fn memory_store_passes_lash_suite() {
    runtime_persistence(|| Arc::new(ForLash::new(MemoryStore::new()))).await;
}

/// lash's reopenable suite over bare file stores through [`ForLash`].
async fn file_store_reopenable_suite() {
    let dirs = Dirs::new();
    runtime_persistence_reopenable(|| {
        let dir = dirs.fresh();
        ReopenableRuntimePersistence {
            open: Arc::new(ForLash::new(file_store(&dir))),
            reopen: Arc::new(ForLash::new(file_store(&dir))),
        }
    })
    .await;
}

#[tokio::test]
async fn file_store_passes_lash_reopenable_suite() {
    file_store_reopenable_suite().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_store_passes_lash_reopenable_suite_on_a_multi_thread_runtime() {
    file_store_reopenable_suite().await;
}

#[tokio::test]
async fn memory_store_under_the_recommended_stack_passes_lash_suite() {
    runtime_persistence(|| stacked(Arc::new(MemoryStore::new()))).await;
}

#[tokio::test]
async fn file_store_under_the_recommended_stack_passes_lash_reopenable_suite() {
    let dirs = Dirs::new();
    runtime_persistence_reopenable(|| {
        let dir = dirs.fresh();
        ReopenableRuntimePersistence {
            open: stacked(Arc::new(file_store(&dir))),
            reopen: stacked(Arc::new(file_store(&dir))),
        }
    })
    .await;
}

/// lash-sqlite-store under Strata's layers, handed back to lash: lash → Strata → layers →
/// lash. lash's own suite still holds, so the two mappings compose without loss.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_under_strata_layers_passes_lash_reopenable_suite() {
    let dirs = Dirs::new();
    let open = |path: PathBuf| {
        let handle = tokio::runtime::Handle::current();
        let store = tokio::task::block_in_place(|| {
            handle.block_on(lash_sqlite_store::Store::open(&path)).expect("open sqlite store")
        });
        stacked(Arc::new(FromLash::new(Arc::new(store))))
    };
    runtime_persistence_reopenable(|| {
        let path = dirs.fresh().with_extension("db");
        ReopenableRuntimePersistence { open: open(path.clone()), reopen: open(path) }
    })
    .await;
}
