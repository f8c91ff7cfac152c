//! Decorators for any Strata store: observability — [`TracingLayer`] (one span per call) and
//! [`MetricsLayer`] (calls, outcomes, errors, durations, in-flight calls, sizes) — policy —
//! [`RetryLayer`], [`TimeoutLayer`], [`ConcurrencyLimitLayer`], [`CircuitBreakerLayer`] — and
//! fault drills — `FaultInjection` (feature `faults`).
//!
//! All are [`Around`](strata_core::Around) decorators: they wrap any store Strata can layer
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
//! # Policy layers and their order
//!
//! The recommended stack, outermost first (the first layer added is the outermost):
//!
//! ```text
//! tracing → metrics → [cache] → retry → timeout → limit → breaker → [faults] → store
//! ```
//!
//! - [`retry`] repeats a failed call when its error is transient *and* repeating it is safe
//!   for its method class (an unkeyed write only when the error proves nothing was applied),
//!   with jittered exponential backoff, bounded by attempts, total time and an optional
//!   shared budget.
//! - [`timeout`] gives each attempt a deadline by operation group (reads and claims 1 s,
//!   writes 5 s, maintenance 60 s).
//! - [`limit`] bounds the calls in flight across every handle (32 by default), waiting up to
//!   a deadline for a permit or rejecting with `Overloaded`.
//! - [`breaker`] fails calls at once with `CircuitOpen` after repeated failures, probes after
//!   a cool-down.
//! - `faults` (feature `faults`) injects failures, lost replies, latency and hangs, scripted
//!   or at seeded random rates: tests and staging drills.
//!
//! Why this order: metrics and tracing outside retry see logical calls; the timeout inside
//! retry bounds each attempt, so a hung attempt becomes a retryable `Timeout`; the limiter
//! inside the timeout makes waiting for a permit count against the deadline, and inside retry
//! releases the permit during backoff; the breaker inside the limiter never mistakes the
//! limiter's `Overloaded` for a store failure, and retry returns its `CircuitOpen` at once.
//!
//! The wrong order behaves worse. With retry *inside* the timeout, one deadline covers every
//! attempt and every backoff: an attempt that hangs uses it up and the call fails, where the
//! recommended order answers from the second attempt:
//!
//! ```
//! # #[cfg(all(feature = "retry", feature = "timeout", feature = "faults"))] {
//! use std::time::Duration;
//! use strata_core::{Operation, RuntimePersistence, StoreBuilder, StoreError};
//! use strata_layers::{FaultInjection, RetryLayer, TimeoutLayer};
//! use strata_memory::MemoryStore;
//!
//! let deadline = TimeoutLayer::default().with_read_timeout(Duration::from_millis(100));
//! let (right_faults, wrong_faults) = (FaultInjection::new(), FaultInjection::new());
//! let right = StoreBuilder::new()
//!     .layer(RetryLayer::default())
//!     .layer(deadline.clone()) // a deadline per attempt
//!     .layer(right_faults.clone())
//!     .build(MemoryStore::new());
//! let wrong = StoreBuilder::new()
//!     .layer(deadline) // one deadline for the attempts and their backoffs
//!     .layer(RetryLayer::default())
//!     .layer(wrong_faults.clone())
//!     .build(MemoryStore::new());
//! // The first attempt hangs; a second one would answer.
//! right_faults.hang_next(Operation::LoadNode, 1);
//! wrong_faults.hang_next(Operation::LoadNode, 1);
//!
//! let runtime = tokio::runtime::Builder::new_current_thread()
//!     .enable_time()
//!     .start_paused(true)
//!     .build()
//!     .unwrap();
//! // Attempt 1 timed out after 100 ms, attempt 2 answered.
//! assert_eq!(runtime.block_on(right.load_node("n")), Ok(None));
//! // The hang used up the only deadline; retry never got to try again.
//! let error = runtime.block_on(wrong.load_node("n")).unwrap_err();
//! assert!(matches!(error, StoreError::Timeout { .. }));
//! # }
//! ```
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
//! …). The breaker's transitions carry `state` (`closed`, `open`, `half_open`). Every series
//! also carries `store=<name>` when the layer was given `with_store_name` (each layer has
//! it). Ids are never labels. The metrics layer records the first 14 rows; the policy layers
//! (with the `metrics` feature) the rest, only when something happens (a retry, a timeout, a
//! wait for a permit, a breaker transition or rejection): a call that goes straight through
//! them records nothing.
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
//! | `strata_store_retries_total` | counter | retries | operation, error_kind | retries started by the retry layer, by the error that caused them |
//! | `strata_store_retries_exhausted_total` | counter | calls | operation, error_kind | calls the retry layer gave up on (`RetriesExhausted`), by the last error |
//! | `strata_store_timeouts_total` | counter | calls | operation | calls (attempts, inside retry) the timeout layer cut off at their deadline |
//! | `strata_store_limiter_waits_total` | counter | calls | operation | calls that waited for a concurrency permit |
//! | `strata_store_limiter_wait_duration_seconds` | histogram | seconds | operation | how long those calls waited (until a permit or the rejection) |
//! | `strata_store_limiter_rejections_total` | counter | calls | operation | calls the limiter rejected (`Overloaded`) |
//! | `strata_store_circuit_state` | gauge | state | — | the circuit breaker's state: 0 closed, 1 open, 2 half-open |
//! | `strata_store_circuit_transitions_total` | counter | transitions | state | breaker transitions, by the state entered (`closed`, `open`, `half_open`) |
//! | `strata_store_circuit_rejections_total` | counter | calls | operation | calls the open breaker turned away (`CircuitOpen`) |
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
//! variant) on the in-memory store, in one run with the bare store, on the quiet 2-core
//! development VM. "Overhead" is the time per call minus the bare store's, measured back to
//! back within each sample and taken from the fastest of ten back-to-back rounds on each
//! store (a round another process interrupted is not the fastest); nanoseconds per call.
//!
//! | variant | `load_node` | blind commit | goal |
//! |---|---|---|---|
//! | bare store, time per call | 245 | 680 | |
//! | `PassThrough` (the shared machinery alone) | +2 | +1 | |
//! | tracing, no subscriber | +37 | +40 | < 60 |
//! | metrics, no recorder | +83 | +102 | < 60 |
//! | tracing + metrics (two layers), nothing installed | +153 | +147 | |
//! | tracing, subscriber with a `warn` filter (spans filtered out) | +36 | +43 | < 400 |
//! | metrics, Prometheus recorder | +129 | +163 | < 400 |
//! | tracing + metrics (two layers), both installed | +130 | +149 | < 800 |
//! | retry (3 attempts, no failure) | +23 | +31 | < 60 |
//! | timeout (the call answers at once) | +0 | +1 | < 60 |
//! | concurrency limit (a permit free) | +15 | +33 | < 60 |
//! | circuit breaker (closed, clean window) | +28 | +42 | < 60 |
//! | fault drills, nothing armed | +17 | +46 | < 60 |
//! | retry + timeout + limit + breaker | +74 | +97 | < 250 |
//!
//! Single figures move by about ±20 ns between runs. Every layer but metrics-without-recorder
//! meets its goal. With nothing installed the metrics layer still reads the monotonic clock
//! twice (~50 ns) and updates its no-op handles, because the `metrics` facade does not tell
//! whether a recorder is installed. The shared machinery costs a few ns: a layer calls its
//! inner store through `Serve` directly, with no boxed future and no argument conversion, a
//! `Request` is small (its commit, metadata and draft behind an `Arc`), and the layers' call
//! future pins the inner call in place.
//!
//! What keeps the layers' own part small: handles are built once per (operation, outcome) and
//! indexed by [`Operation::index`](strata_core::Operation::index); span fields and figures
//! are computed only when the span is enabled; no allocation per call, except for an enabled
//! span or a commit's figures. Retry keeps each request for a possible next attempt by
//! cloning a pointer, not the commit (it cost ~100 ns per commit while `Request` boxed the
//! commit and retry had to copy it).
//!
//! In the policy layers, the timeout polls the call once before it starts a timer (a call
//! answered at once costs no timer and no clock read); the limiter takes its permits with
//! `try_acquire` and boxes only the waiting path; a closed breaker with a window full of
//! successes lets a call through and records its success with a few atomic loads, no lock;
//! an idle fault layer counts the call and reads one flag; timers (tokio's are large and
//! cache-line aligned) are boxed on the slow paths so that the call futures stay small.
//!
//! ## The cache layer
//!
//! Measured with `cargo bench --bench cache` (criterion, one run; the bench's docs describe
//! the session shape: stamped two-node turns, ~740-byte JSON payloads) on the quiet 2-core
//! development VM.
//!
//! | measurement | result | goal |
//! |---|---|---|
//! | `load_session` full graph, 1k nodes: hit vs the file store as commits left it (most of the graph in a snapshot section, the newest nodes in the log image) | 140 µs vs 323 µs: 2.30× faster | ≥ 20× |
//! | … vs the same session compacted (the whole graph read from the snapshot's section) | 140 µs vs 439 µs: 3.13× faster | |
//! | `load_node`: hit vs the bare in-memory store | 371 ns vs 277 ns; back to back within each sample +95 ns: 1.34× | ≤ 1.5× |
//! | a turn (stamped commit + reload of the ~1k-node head path), fdatasync per commit | 419 µs vs 835 µs: 1.99× | (reported) |
//! | … without fdatasync (`SyncPolicy::OsBuffered`) | 246 µs vs 659 µs: 2.67× | (reported) |
//! | … without fdatasync, on a compacted session | 293 µs vs 716 µs: 2.44× | (reported) |
//! | hit rate of those reloads | 99.7 % (one miss in 300 turns: the first) | |
//!
//! The 20× goal for full-graph hits is out of reach with the trait's owned return types: a
//! hit must clone every record it returns (four strings per node here, payloads shared), and
//! that clone costs about a third of what the file store spends reading and decoding the same
//! graph. A core change making graphs cheap to share (`SessionGraph::nodes` as
//! `Arc<[SessionNodeRecord]>`, or ids as `Arc<str>`) would make a hit O(1). A `load_node` hit costs moka's lookup (a clock read
//! and the read recorded for its eviction policy) on top of the record's clone; the layer's
//! own part is a generation check and no allocation. In a turn, the cache takes the reload
//! out of the turn (one miss in 300) and its write-through shares the path's unchanged nodes
//! instead of copying them.
//!
//! # Features and dependencies
//!
//! - `tracing` (default): the [`tracing`](mod@tracing) module, on the `tracing` crate (the
//!   de-facto span/event facade of async Rust; the subscriber is the application's choice).
//! - `metrics` (default): the [`metrics`](mod@metrics) module, on the `metrics` crate facade
//!   (the recorder, e.g. Prometheus or OpenTelemetry, is the application's choice).
//! - `retry`, `timeout`, `limit`, `breaker` (default): the policy modules; with `metrics`
//!   on, they record their own metrics (the table above).
//! - `faults` (off by default): the `faults` module, `FaultInjection`, the drill layer.
//! - `cache` (not default): the [`cache`] module, on `moka` (a concurrent cache with size
//!   bounds by weight, time to live and idle, per-entry expiry and single-flight loading,
//!   the field's standard; its `future` API never blocks an executor thread) and the
//!   `metrics` facade.
//! - `strata-core`: the contract and the [`Around`](strata_core::Around) machinery.
//! - `pin-project-lite`: safe pin projection for the shared call future and the policy
//!   layers' call futures (no `unsafe`, no proc-macro; the crate tokio itself uses).
//! - `tokio` (policy and fault layers): the timer (`sleep`, deadlines, a clock tests can
//!   pause) and the fair semaphore of the limiter; Strata's async runtime.
//! - `tower` (`retry`, only its `retry` feature): the retry budget, tower's `TpsBudget`, the
//!   field's reference implementation (a sliding window of deposits and withdrawals).
//! - `fastrand` (`retry`, `faults`): the seedable generator behind backoff jitter and random
//!   faults (small, no dependencies, reproducible from a seed).
//!
//! Tests only: `tracing-subscriber` (a capturing subscriber), `metrics-util` (the debugging
//! recorder), `metrics-exporter-prometheus` (rendering check of the documented names),
//! `tokio` (async tests, the paused clock), `strata-testkit` (conformance suite, fault
//! injection), `strata-memory` and `strata-file` (the backends the suite runs the layers
//! over), `proptest` (random fault schedules and operation sequences, the cache's randomized
//! comparison with an uncached twin), `tempfile`, `futures`.

#[cfg(feature = "breaker")]
pub mod breaker;

#[cfg(feature = "cache")]
pub mod cache;
#[cfg(any(feature = "tracing", feature = "metrics"))]
mod call_info;
#[cfg(feature = "faults")]
pub mod faults;
#[cfg(any(feature = "retry", feature = "breaker"))]
mod first_wait;
#[cfg(feature = "limit")]
pub mod limit;
#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(feature = "retry")]
pub mod retry;
#[cfg(test)]
mod test_support;
#[cfg(feature = "timeout")]
pub mod timeout;
#[cfg(feature = "tracing")]
pub mod tracing;

#[cfg(feature = "breaker")]
pub use self::breaker::{CircuitBreakerLayer, CircuitState};
#[cfg(feature = "cache")]
pub use self::cache::CacheLayer;
#[cfg(feature = "faults")]
pub use self::faults::{Fault, FaultInjection};
#[cfg(feature = "limit")]
pub use self::limit::ConcurrencyLimitLayer;
#[cfg(feature = "metrics")]
pub use self::metrics::MetricsLayer;
#[cfg(feature = "retry")]
pub use self::retry::{RetryBudget, RetryLayer};
#[cfg(feature = "timeout")]
pub use self::timeout::TimeoutLayer;
#[cfg(feature = "tracing")]
pub use self::tracing::TracingLayer;
