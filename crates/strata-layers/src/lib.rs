//! Observability decorators for any Strata store: [`TracingLayer`] (one span per call) and
//! [`MetricsLayer`] (calls, outcomes, errors, durations, in-flight calls, sizes).
//!
//! Both are [`Around`](strata_core::Around) decorators: they wrap any store Strata can layer
//! (its backends, decorated stores, `Arc<dyn RuntimePersistence>`; see
//! [`Serve`](strata_core::Serve)), forward every method through
//! [`Decorated`](strata_core::Decorated) (provided methods and the manifest included), return the inner store's errors unchanged and report its durability
//! tier. Put tracing outermost, metrics right inside it:
//!
//! ```
//! use strata_core::StoreBuilder;
//! use strata_layers::{MetricsLayer, TracingLayer};
//!
//! let stack = StoreBuilder::new()
//!     .layer(TracingLayer::default().with_namespace("sessions"))
//!     .layer(MetricsLayer::default());
//! assert_eq!(format!("{stack:?}"), "StoreBuilder[tracing → metrics]");
//! ```
//!
//! A call whose future is dropped is a first-class outcome (`cancelled`) in both layers; see
//! each module for its defaults and its cancellation behaviour.
//!
//! [`CacheLayer`] (feature `cache`) is a read-through cache of session, node and metadata
//! reads on `moka`, shared by every handle of a session, with one rule per operation for what
//! a write updates or invalidates; it goes right inside metrics. See the [`cache`] module.
//!
//! # Metrics
//!
//! Labels are bounded: `operation` is a trait method name (`load_node`,
//! `commit_runtime_state`, …), `outcome` is `ok`, `rejected` (one of the four semantic
//! outcomes: head revision conflict, turn commit conflict, session binding mismatch, claim
//! expired), `error` (any other error) or `cancelled` (the caller dropped the call), and
//! `error_kind` is `StoreError::kind()` (`head_revision_conflict`, `unavailable`, `timeout`,
//! …). Every series also carries `store=<name>` when the layer was given
//! `MetricsLayer::with_store_name`. Ids are never labels.
//!
//! | name | type | unit | labels | meaning |
//! |---|---|---|---|---|
//! | `strata_store_operation_duration_seconds` | histogram | seconds | operation, outcome | duration of each call, from its first poll to its end (or drop); OpenTelemetry database-client buckets 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10 |
//! | `strata_store_operations_total` | counter | calls | operation, outcome | calls ended, by outcome |
//! | `strata_store_errors_total` | counter | calls | operation, error_kind | calls that returned an error (semantic outcomes included), by error kind |
//! | `strata_store_operations_in_flight` | gauge | calls | operation | calls started and not yet ended or dropped |
//! | `strata_store_commit_nodes_total` | counter | nodes | — | nodes written by successful commits (appended, or the replacing graph) |
//! | `strata_store_commit_usage_rows_total` | counter | rows | — | usage rows appended by successful commits |
//! | `strata_store_commit_payload_bytes_total` | counter | bytes | — | opaque payload bytes written by successful commits (config, frames, nodes, checkpoint) |
//! | `strata_store_commit_completed_batches_total` | counter | batches | — | queued batches completed by successful commits |
//! | `strata_store_commit_attachment_ids_total` | counter | ids | — | attachment ids stamped committed by successful commits |
//! | `strata_store_claim_batches` | histogram | batches | operation | batches per successful non-empty claim (`claim_ready_queued_work`, `claim_ready_queued_work_by_batch_ids`) |
//! | `strata_store_claims_empty_total` | counter | claims | operation | successful claims that found no ready work |
//! | `strata_store_vacuum_removed_nodes_total` | counter | nodes | — | tombstoned nodes removed by `vacuum` |
//! | `strata_store_gc_deleted_blobs_total` | counter | blobs | — | blobs deleted by `gc_unreachable` |
//! | `strata_store_gc_retained_blobs` | gauge | blobs | — | blobs kept by the last `gc_unreachable` |
//! | `strata_store_cache_hits_total` | counter | reads | operation | cacheable reads (`load_session`, `load_node`, `load_session_meta`) the cache layer answered |
//! | `strata_store_cache_misses_total` | counter | reads | operation | cacheable reads it did not answer (absent, stale or expired entry, or a write of the session in flight) |
//! | `strata_store_cache_loads_total` | counter | reads | operation | store reads it made to answer misses (one per single-flight group, plus re-reads) |
//! | `strata_store_cache_invalidations_total` | counter | writes | operation | writes (successful, ambiguous or dropped) that invalidated cached entries |
//! | `strata_store_cache_updates_total` | counter | entries | operation | entries replaced by the state a successful write produced |
//! | `strata_store_cache_evictions_total` | counter | entries | cause | entries evicted by the bounds: `cause` is `size` or `expired` |
//! | `strata_store_cache_revalidations_total` | counter | probes | outcome | head-revision probes of revalidated session hits: `outcome` is `fresh` or `stale` |
//!
//! The cache layer's counters (the last seven rows) follow the same scheme, with the store
//! label of `CacheLayer::with_store_name`; their names are constants in [`cache::names`].
//!
//! The names are also constants in [`metrics::names`]; [`metrics::DURATION_BUCKETS`] holds the
//! duration buckets for recorders that take explicit buckets (e.g. Prometheus'
//! `set_buckets_for_metric`).
//!
//! # Cost
//!
//! Measured with `cargo bench --bench layers` (criterion; the bench's docs describe each
//! variant) on the in-memory store, in the same run as the bare store, on the 2-core
//! development VM, otherwise idle. "Overhead" is the time per call minus the bare store's,
//! measured back to back within each sample (samples where noise made the layered run faster
//! count as zero, so the figures are conservative); nanoseconds per call.
//!
//! | variant | `load_node` | blind commit |
//! |---|---|---|
//! | bare store, time per call | 246 | 698 |
//! | `PassThrough` (the shared machinery alone) | +13 | +37 |
//! | tracing, no subscriber | +57 | +40 |
//! | metrics, no recorder | +87 | +94 |
//! | tracing + metrics (two layers), nothing installed | +145 | +215 |
//! | tracing, subscriber with a `warn` filter (spans filtered out) | +60 | +46 |
//! | metrics, Prometheus recorder | +125 | +205 |
//! | tracing + metrics (two layers), both installed | +134 | +192 |
//!
//! Single figures move by about ±20 ns between runs on this VM (an earlier run gave, in the
//! same order: +13/+20, +36/+84, +93/+110, +121/+165, +50/+87, +144/+296, +127/+160).
//! Against the goals: with a recorder and a filtering subscriber every layer stays well under
//! 400 ns per call (at most ~300 ns, the metrics layer on a commit, which also counts the
//! commit's figures). With nothing installed the tracing layer is at the 60 ns goal (36–57 ns
//! on reads, 40–84 ns on commits) and the metrics layer is not (87–110 ns): it still reads
//! the monotonic clock twice (~50 ns) and updates its no-op handles, because the `metrics`
//! facade does not tell whether a recorder is installed. The shared machinery costs 13–37 ns:
//! a layer calls its inner store through `Serve` directly, with no boxed future and no
//! argument conversion, a `Request` is 80 bytes (its large arguments boxed), and the layers'
//! call future pins the inner call in place.
//!
//! What keeps the layers' own part small: handles are built once per (operation, outcome) and
//! indexed by [`Operation::index`](strata_core::Operation::index); span fields and figures
//! are computed only when the span is enabled; no allocation per call, except for an enabled
//! span or a commit's figures.
//!
//! ## The cache layer
//!
//! Measured with `cargo bench --bench cache` (criterion, one run; the bench's docs describe
//! the session shape: stamped two-node turns, ~740-byte JSON payloads) on the 2-core
//! development VM, **under load** (load average ~7 from other builds: single figures move by
//! ±30 % between runs, fdatasync latencies by far more).
//!
//! | measurement | result | goal |
//! |---|---|---|
//! | `load_session` full graph, 1k nodes: hit vs the file store as commits left it (graph in its in-memory log image) | 236 µs vs 298 µs: 1.26× faster | ≥ 20× |
//! | … vs the same session compacted (graph read from the snapshot's section) | 236 µs vs 610 µs: 2.6× faster | |
//! | `load_node`: hit vs the bare in-memory store | 386 ns vs 388 ns; back to back within each sample +134 ns: 1.35× | ≤ 1.5× |
//! | a turn (stamped commit + reload of the ~1k-node head path), fdatasync per commit | 3.88 ms vs 3.89 ms | (reported) |
//! | … without fdatasync (`SyncPolicy::OsBuffered`) | 571 µs vs 966 µs: 1 750 vs 1 035 turns/s, 1.69× | (reported) |
//! | … without fdatasync, on a compacted session | 502 µs vs 661 µs: 1.32× | (reported) |
//! | hit rate of those reloads | 99.7 % (one miss in 300 turns: the first) | |
//!
//! The 20× goal for full-graph hits is out of reach with the trait's owned return types: a
//! hit must clone every record it returns (four strings per node here, payloads shared), and
//! that clone is most of what the file store does when it answers from memory (an earlier run
//! of the same bench, under heavier load, measured 264 vs 370 µs; another, with the hit after
//! the compacted reads, 242 vs 159 µs). A core change making graphs cheap to share
//! (`SessionGraph::nodes` as `Arc<[SessionNodeRecord]>`, or ids as `Arc<str>`) would make a
//! hit O(1). A `load_node` hit costs moka's lookup (a clock read and the read recorded for its
//! eviction policy) on top of the record's clone; the layer's own part is a generation check
//! and no allocation. With fdatasync on, a turn is the commit's sync, which this busy VM
//! stretched from ~0.15 ms to ~3.5 ms; without it, the cache takes the reload out of the turn
//! (one miss in 300) and its write-through shares the path's unchanged nodes instead of
//! copying them.
//!
//! # Features and dependencies
//!
//! - `tracing` (default): the [`tracing`](mod@tracing) module, on the `tracing` crate (the
//!   de-facto span/event facade of async Rust; the subscriber is the application's choice).
//! - `metrics` (default): the [`metrics`](mod@metrics) module, on the `metrics` crate facade
//!   (the recorder, e.g. Prometheus or OpenTelemetry, is the application's choice).
//! - `cache` (not default): the [`cache`] module, on `moka` (a concurrent cache with size
//!   bounds by weight, time to live and idle, per-entry expiry and single-flight loading,
//!   the field's standard; its `future` API never blocks an executor thread) and the
//!   `metrics` facade.
//! - `strata-core`: the contract and the [`Around`](strata_core::Around) machinery.
//! - `pin-project-lite`: safe pin projection for the shared call future (no `unsafe`, no
//!   proc-macro; the crate tokio itself uses).
//!
//! Tests only: `tracing-subscriber` (a capturing subscriber), `metrics-util` (the debugging
//! recorder), `metrics-exporter-prometheus` (rendering check of the documented names),
//! `tokio` (async tests), `strata-testkit` (conformance suite, fault injection),
//! `strata-memory` and `strata-file` (the backends the suite runs the layers over),
//! `proptest` (the cache's randomized comparison with an uncached twin), `futures`.

#[cfg(feature = "cache")]
pub mod cache;
#[cfg(any(feature = "tracing", feature = "metrics"))]
mod call_info;
#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(test)]
mod test_support;
#[cfg(feature = "tracing")]
pub mod tracing;

#[cfg(feature = "cache")]
pub use self::cache::CacheLayer;
#[cfg(feature = "metrics")]
pub use self::metrics::MetricsLayer;
#[cfg(feature = "tracing")]
pub use self::tracing::TracingLayer;
